#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! A busy live feed: 50 symbols on a Coinbase Exchange stream on 127.0.0.1, 49 of them
//! ticking 20 times a second each, while the real release binary runs the dashboard in a pty
//! at 120×40. Reports the CPU of the whole dashboard process over the window (its own
//! utime + stime from /proc, so other load does not count) and tick-to-screen latency: every
//! 250 ms the first symbol gets a price it never had, and the time from sending it to the
//! screen first showing it is one sample.
//! `cargo bench --bench feed -- [seconds]` (default 20).

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::bench::{load, ml_engine, summary, symbols, write_symbols_config};
use support::market::{WsFake, coinbase_products, coinbase_ticker};
use support::pty::Dashboard;
use tokio::sync::broadcast;

const TICKS_PER_SECOND: u64 = 20;
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// utime + stime of `pid`, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// The price the `n`-th probe gives the first symbol: shown as `5,000.25`, `5,000.50`, …
fn probe_price(n: usize) -> f64 {
    5_000.0 + 0.25 * (n + 1) as f64
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let syms = symbols(50);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (ticks, _) = broadcast::channel::<Vec<Value>>(1024);
    let t = ticks.clone();
    // Coinbase's subscribe and `subscriptions` reply, then the tickers the bench sends
    // (https://docs.cdp.coinbase.com/exchange/websocket-feed/overview and …/channels).
    let ws = rt.block_on(WsFake::serving(move |mut peer| {
        let mut rx = t.subscribe();
        async move {
            let Some(sub) = peer.recv_json().await else {
                return;
            };
            let products = coinbase_products(&sub);
            peer.send(json!({"type": "subscriptions", "channels": [
                {"name": "ticker", "product_ids": products}]}))
                .await;
            while let Ok(batch) = rx.recv().await {
                for m in batch {
                    peer.send(m).await;
                }
            }
        }
    }));
    let engine = ml_engine(false);
    let dir = tempfile::tempdir().unwrap();
    write_symbols_config(
        dir.path(),
        &syms,
        Some(&engine.url),
        &format!(
            "\n[market_data]\nprovider = \"coinbase\"\nurl = \"http://127.0.0.1:9\"\nstream_url = \"{}\"\n",
            ws.url
        ),
    );
    let probes = (seconds * 1000 / PROBE_EVERY.as_millis() as u64) as usize;
    let markers: Vec<String> = (0..probes)
        .map(|n| autotrade_tui::domain::money::fmt_price(probe_price(n)))
        .collect();
    let marker_refs: Vec<&str> = markers.iter().map(String::as_str).collect();
    let d = Dashboard::start_watching(dir.path(), &marker_refs);
    d.wait_screen("the feed streaming", |t| t.contains("COINBASE streaming"));
    let pid = d.child.process_id().unwrap();
    println!(
        "feed: 50 symbols, 49 at {TICKS_PER_SECOND} ticks/s, {seconds} s, load {}",
        load()
    );

    let now_text = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let product = |s: &str| s.replace('/', "-");
    let start = Instant::now();
    let cpu_before = cpu_ticks(pid);
    let mut sent_at = Vec::with_capacity(probes);
    let mut next_probe = start;
    let mut k: u64 = 0;
    let tick_every = Duration::from_millis(1000 / TICKS_PER_SECOND);
    while start.elapsed() < Duration::from_secs(seconds) {
        // One tick for each of the other 49 symbols.
        let time = now_text();
        let batch: Vec<Value> = syms[1..]
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let p = 100.0 + i as f64 + ((k + i as u64) % 40) as f64 * 0.01;
                let (px, bid, ask) = (
                    format!("{p:.2}"),
                    format!("{:.2}", p - 0.01),
                    format!("{:.2}", p + 0.01),
                );
                coinbase_ticker(&product(s), &px, &bid, &ask, &time)
            })
            .collect();
        let _ = ticks.send(batch);
        k += 1;
        if Instant::now() >= next_probe && sent_at.len() < probes {
            let n = sent_at.len();
            let p = format!("{:.2}", probe_price(n));
            let _ = ticks.send(vec![coinbase_ticker(
                &product(&syms[0]),
                &p,
                &p,
                &p,
                &now_text(),
            )]);
            sent_at.push(Instant::now());
            next_probe += PROBE_EVERY;
        }
        std::thread::sleep(tick_every.saturating_sub(Duration::from_millis(1)));
    }
    let window = start.elapsed();
    let cpu = cpu_ticks(pid) - cpu_before;
    let mut latencies: Vec<Duration> = sent_at
        .iter()
        .enumerate()
        .map(|(n, at)| {
            let seen = d.marker_after_spawn(&markers[n]);
            (d.spawned_at + seen).saturating_duration_since(*at)
        })
        .collect();
    let pct = cpu as f64 / 100.0 / window.as_secs_f64() * 100.0;
    println!(
        "cpu {pct:.1} % of one core ({cpu} ticks of 1/100 s over {:.1} s)",
        window.as_secs_f64()
    );
    let n = latencies.len();
    latencies.sort();
    let p99 = latencies[(n * 99 / 100).min(n - 1)];
    println!(
        "tick to screen: {}  p99 {:.1} ms",
        summary(&mut latencies),
        p99.as_secs_f64() * 1000.0
    );
    d.quit();
    drop(rt);
}
