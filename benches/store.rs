#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The store as it grows: 100,000 stored decisions (with a trading history: 5,000 executed and
//! closed positions, see `support::bench::fill_store`), then the queries the dashboard and
//! `decisions` run, and the real binary's `decisions --limit 50` end to end.
//! `cargo bench --bench store -- [decisions]` (default 100000).

#[path = "../tests/support/mod.rs"]
mod support;

use autotrade_tui::desk::Desk;
use autotrade_tui::store::{Status, Store};
use std::time::{Duration, Instant};
use support::bench::{fill_store, symbols};

fn time<T>(label: &str, runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(f());
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[runs / 2];
    println!(
        "{label:<48} median {:>8.3} ms  (of {runs})",
        median.as_secs_f64() * 1000.0
    );
    median
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let symbols = symbols(30);
    let t = Instant::now();
    fill_store(dir.path(), &symbols, n);
    println!("loaded {n} decisions in {:.1} s", t.elapsed().as_secs_f64());

    let config = autotrade_tui::config::parse_str(
        &format!("[auto_trade]\nsymbols = {symbols:?}\n"),
        "bench",
    )
    .expect("config");
    let config = std::sync::Arc::new(config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    time("Store::open (migrate + recovery check)", 20, || {
        let s = Store::open(dir.path(), "default", true).expect("open");
        let desk = Desk::new(config.clone(), dir.path().into(), std::sync::Arc::new(s));
        rt.block_on(desk.recover()).expect("recover")
    });
    let store = Store::open(dir.path(), "default", true).expect("store");
    let desk = Desk::new(
        config.clone(),
        dir.path().into(),
        std::sync::Arc::new(Store::open(dir.path(), "default", true).expect("store")),
    );
    time("decisions(limit 50)", 50, || {
        store.decisions(50, None).expect("q")
    });
    time("decisions(limit 50, pending)", 50, || {
        store.decisions(50, Some(Status::Pending)).expect("q")
    });
    time("decisions(limit 50, executed)", 50, || {
        store.decisions(50, Some(Status::Executed)).expect("q")
    });
    time("latest decision per symbol", 50, || {
        store.latest_per_symbol().expect("q")
    });
    time("open positions + prices + events", 50, || {
        (
            store.open_positions(),
            store.prices(),
            store.recent_events(50),
        )
    });
    time("count pending", 50, || {
        store.count_decisions(Some(Status::Pending)).expect("q")
    });
    time("realized P&L (closed positions)", 50, || {
        store.realized_pnl().expect("q")
    });
    time("the dashboard's snapshot (Desk::snapshot)", 50, || {
        desk.snapshot(&store).expect("snapshot")
    });

    let bin = support::bin();
    let cfg = dir.path().join("config.toml");
    let _ = std::fs::write(&cfg, "[auto_trade]\nsymbols = [\"S0/USD\"]\n");
    time(
        "process: autotrade-tui decisions --limit 50 --json",
        20,
        || {
            std::process::Command::new(&bin)
                .args(["decisions", "--limit", "50", "--json", "--config"])
                .arg(&cfg)
                .arg("--data-dir")
                .arg(dir.path())
                .output()
                .expect("run")
        },
    );
}
