#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Start-up: from spawning the release binary in a pty (120×40) to the first frame (the
//! header's "PAPER"), and to the first frame that shows the store (the "ENABLED" badge
//! replaces "LOADING"), with an empty store and with 100,000 stored decisions (a history with
//! 5,000 executed and closed positions, see `support::bench::fill_store`), against a
//! loopback ML engine and on the simulated market. Target: first frame under 150 ms.
//! `cargo bench --bench startup -- [runs] [decisions]` (defaults 10, 100000).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::bench::{fill_store, load, ml_engine, summary, symbols, write_symbols_config};
use support::pty::Dashboard;

const SYMBOLS: usize = 30;

fn measure(label: &str, runs: usize, ml_url: Option<&str>, decisions: usize) {
    let syms = symbols(SYMBOLS);
    // The filled store is made once and reused: each run adds one cycle (30 decisions).
    let filled = tempfile::tempdir().expect("tempdir");
    if decisions > 0 {
        let t = Instant::now();
        fill_store(&filled.path().join("data"), &syms, decisions);
        println!(
            "  ({decisions} decisions loaded in {:.1} s)",
            t.elapsed().as_secs_f64()
        );
    }
    let mut first = Vec::with_capacity(runs);
    let mut loaded = Vec::with_capacity(runs);
    for _ in 0..runs {
        let fresh = tempfile::tempdir().expect("tempdir");
        let dir = if decisions > 0 {
            filled.path()
        } else {
            fresh.path()
        };
        write_symbols_config(dir, &syms, ml_url, "");
        let d = Dashboard::start_watching(dir, &["PAPER", "ENABLED"]);
        first.push(d.marker_after_spawn("PAPER"));
        loaded.push(d.marker_after_spawn("ENABLED"));
        d.quit();
        // Let the exit settle before the next launch.
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("{label:<44} first frame          {}", summary(&mut first));
    println!("{label:<44} first frame of data  {}", summary(&mut loaded));
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let decisions: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let engine = ml_engine(false);
    println!(
        "start-up: {SYMBOLS} symbols, 120x40, {runs} runs each, load {}",
        load()
    );
    measure(
        "empty store, loopback ML engine",
        runs,
        Some(&engine.url),
        0,
    );
    measure(
        &format!("{decisions} decisions, loopback ML engine"),
        runs,
        Some(&engine.url),
        decisions,
    );
    measure("empty store, simulated market", runs, None, 0);
    measure(
        &format!("{decisions} decisions, simulated market"),
        runs,
        None,
        decisions,
    );
}
