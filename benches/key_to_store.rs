#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Key to store: from `y` written to the dashboard's terminal to the decision stored as
//! executed (target: under 50 ms). The real release binary runs in a pty at 120×40
//! against a loopback ML engine that makes every symbol an actionable BUY; the bench presses
//! `y` once per pending decision and polls the SQLite store (read-only) for the execution.
//! `cargo bench --bench key_to_store -- [runs]` (default 20).

#[path = "../tests/support/mod.rs"]
mod support;

use rusqlite::{Connection, OpenFlags};
use std::time::{Duration, Instant};
use support::bench::{load, ml_engine, summary, symbols, write_symbols_config};
use support::pty::{DEADLINE, Dashboard, wait_for_every};

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let engine = ml_engine(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let syms = symbols(runs);
    write_symbols_config(
        dir.path(),
        &syms,
        Some(&engine.url),
        &format!("max_open_positions = {}", runs + 1),
    );
    println!("key to store: {runs} runs, load {}", load());
    let mut d = Dashboard::start(dir.path());
    d.wait_screen("every decision pending on the screen", |t| {
        t.contains(&format!("pending {runs} ")) && t.contains("▶ BUY")
    });
    let db = Connection::open_with_flags(
        dir.path().join("data").join("autotrade.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open the store read-only");
    let executed = || -> usize {
        db.query_row(
            "SELECT COUNT(*) FROM decisions WHERE status = 'executed'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .expect("count executed") as usize
    };

    let mut to_store = Vec::with_capacity(runs);
    let mut to_screen = Vec::with_capacity(runs);
    for k in 0..runs {
        let left = runs - k;
        d.wait_screen("the next pending decision selected", |t| {
            t.contains(&format!("pending {left} ")) && t.contains("▶ BUY")
        });
        // The trader presses a key on a dashboard that has settled.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(executed(), k, "executed before the key");
        let t0 = Instant::now();
        d.press("y");
        loop {
            if executed() > k {
                break;
            }
            assert!(t0.elapsed() < DEADLINE, "never executed");
            std::thread::sleep(Duration::from_micros(200));
        }
        to_store.push(t0.elapsed());
        let shown = format!("pending {} ", left - 1);
        wait_for_every(
            Duration::from_millis(1),
            "the execution on the screen",
            || d.text().contains(&shown).then_some(()),
        );
        to_screen.push(t0.elapsed());
    }
    println!("y -> stored as executed   {}", summary(&mut to_store));
    println!("y -> shown on the screen  {}", summary(&mut to_screen));
    d.quit();
}
