#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! A new user with no config and no ML engine: the built-in simulated market decides,
//! says SIMULATED, keeps its store in the XDG data dir, and its prices move.

mod support;
use std::path::Path;
use std::process::Command;
use support::json_lines;
use support::pty::{Dashboard, wait_for};

/// The binary as a new user runs it: a fresh HOME, no config, no data dir given.
fn fresh(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(support::bin())
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn once_in_a_fresh_home_decides_three_symbols_on_the_simulated_market() {
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = fresh(home.path(), &["once", "--json"]);
    assert_eq!(code, 0, "{err}");
    let logs = json_lines(&out);
    assert!(logs.len() >= 3, "{out}");
    let mut symbols: Vec<&str> = logs
        .iter()
        .filter_map(|l| l["decision"]["symbol"].as_str())
        .collect();
    symbols.sort();
    assert_eq!(symbols, vec!["BTC/USD", "ETH/USD", "SOL/USD"]);
    for l in &logs {
        let d = &l["decision"];
        let dir = d["ml_signal"]["direction"].as_str().unwrap_or("");
        assert!(["bullish", "bearish", "neutral"].contains(&dir), "{l}");
        assert!(d["ml_signal"]["entry_price"].as_f64().unwrap() > 0.0, "{l}");
        let phase = d["amd_phase"].as_str().unwrap_or("");
        assert!(
            ["accumulation", "manipulation", "distribution"].contains(&phase),
            "{l}"
        );
        assert!(d["reasoning"].as_str().unwrap().len() > 10, "{l}");
        assert_eq!(l["mode"], "paper");
    }
    let (code, out, _) = fresh(home.path(), &["status", "--json"]);
    assert_eq!(code, 0);
    let st = &json_lines(&out)[0];
    assert_eq!(st["source"], "simulated");
    assert_eq!(st["mode"], "paper");
    assert_eq!(st["config"], "built-in defaults");
    let db = home.path().join(".local/share/autotrade-tui/autotrade.db");
    assert!(
        db.exists(),
        "the store lands in the XDG data dir: {}",
        db.display()
    );
}

/// The BTC/USD price on the signals table, as shown.
fn btc_price(screen: &str) -> Option<String> {
    let line = screen.lines().find(|l| l.contains("│BTC/USD"))?;
    line.split_whitespace()
        .nth(1)
        .filter(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

#[test]
fn the_dashboard_in_a_fresh_home_says_simulated_and_its_prices_move() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join(".local/share/autotrade-tui");
    let mut d = Dashboard::start_with(&[], &[("HOME", home.path().as_os_str())], data.clone());
    let first = d.wait_screen("the simulated market with prices", |t| {
        t.contains("SIMULATED") && t.contains("PAPER") && btc_price(t).is_some()
    });
    let p0 = btc_price(&first).unwrap();
    let started = std::time::Instant::now();
    let moved = d.wait_screen("the BTC/USD price to move", |t| {
        btc_price(t).is_some_and(|p| p != p0)
    });
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "prices moved only after {:?}",
        started.elapsed()
    );
    assert!(moved.contains("SIMULATED"));
    // A first decision is stored for every symbol.
    wait_for("a decision for each symbol", || {
        let store = d.store();
        (store.latest_per_symbol().ok()?.len() == 3).then_some(())
    });
    d.press("\u{3}");
    assert_eq!(d.wait_exit(), 0);
    d.assert_terminal_restored();
}
