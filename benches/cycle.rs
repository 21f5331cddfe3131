#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! One monitoring cycle over N symbols against a loopback ML engine that answers every
//! request after a set delay. `cargo bench --bench cycle -- [symbols] [delay_ms] [cycles]`
//! (defaults 300, 200, 5). Prints each cycle's wall time.

#[path = "../tests/support/mod.rs"]
mod support;

use autotrade_tui::config;
use autotrade_tui::engine::Engine;
use autotrade_tui::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::MlServer;
use support::bench::one_call_for_all;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let symbols: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(300);
    let delay_ms: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let cycles: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let delay = Duration::from_millis(delay_ms);

    // A BUY for every symbol, each answer after `delay`.
    let server = MlServer::start();
    let (signal, phase) = one_call_for_all(true);
    server.set_every_symbol(signal.delayed(delay), phase.delayed(delay));

    let syms = support::bench::symbols(symbols);
    let toml = format!(
        "[auto_trade]\nsymbols = {:?}\n[ml_engine]\nurl = \"{}\"\ntimeout_seconds = 10\n",
        syms, server.url
    );
    let cfg = config::parse_str(&toml, "bench").expect("bench config");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path(), "bench", true).expect("store"));
    // The engine under test gets its own runtime (2 workers, as the product runs).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = Arc::new(cfg);
    let desk = autotrade_tui::desk::Desk::new(cfg.clone(), dir.path().into(), store);
    let engine = Engine::new(desk.clone(), desk.source().expect("source"));
    println!(
        "cycle bench: {symbols} symbols, {} requests per cycle, engine delay {delay_ms} ms, max_concurrent_requests {}",
        symbols * 2,
        cfg.ml_engine
            .as_ref()
            .map(|m| m.max_concurrent_requests)
            .unwrap_or(0)
    );
    let mut times = Vec::new();
    for i in 0..cycles {
        let t = Instant::now();
        let (_views, summary) = rt.block_on(engine.run_cycle());
        let el = t.elapsed();
        println!(
            "cycle {}: {:>7.1} ms  ({} symbols, {} unreachable)",
            i + 1,
            el.as_secs_f64() * 1000.0,
            summary.symbols,
            summary.unreachable
        );
        times.push(el);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "median {:.1} ms = {:.2} round trips of {delay_ms} ms",
        median.as_secs_f64() * 1000.0,
        median.as_secs_f64() * 1000.0 / delay_ms as f64
    );
}
