#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! `autotrade-tui backtest` as a user runs it: the real binary, a config file, a data dir.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, config: &str, args: &[&str]) -> Run {
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_autotrade-tui"))
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .output()
        .expect("run the binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn json_report_has_the_spec_shape_and_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sim.csv");
    autotrade_tui::backtest::write_simulated_csv(&csv, 1, 20_000).unwrap();
    let r = run(
        dir.path(),
        "[backtest]\nfee_percent = 0.1\nslippage_percent = 0.0\n",
        &["backtest", "--candles", csv.to_str().unwrap(), "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "one JSON object");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        keys(&v),
        [
            "candles",
            "symbol",
            "summary",
            "trades",
            "by_phase",
            "calibration",
            "break_even_win_rate",
            "buy_and_hold",
            "baseline",
            "score",
            "warnings"
        ]
    );
    assert_eq!(v["candles"], 20_000);
    assert_eq!(v["symbol"], "BTC/USD");
    let s = &v["summary"];
    assert_eq!(
        keys(s),
        [
            "trades",
            "wins",
            "win_rate",
            "start_equity",
            "final_equity",
            "total_return_percent",
            "max_drawdown_percent",
            "sharpe",
            "profit_factor",
            "fees_paid"
        ]
    );
    assert_eq!(s["start_equity"], 10_000.0);
    let trades = v["trades"].as_array().unwrap();
    assert!(trades.len() >= 20, "{s}");
    assert_eq!(s["trades"].as_u64().unwrap() as usize, trades.len());
    for t in trades {
        assert_eq!(
            keys(t),
            [
                "side",
                "entry_time",
                "entry_price",
                "exit_time",
                "exit_price",
                "quantity",
                "pnl",
                "fees",
                "exit_reason",
                "confidence",
                "amd_phase"
            ]
        );
        assert!(matches!(t["side"].as_str(), Some("BUY" | "SELL")));
        assert!(matches!(
            t["exit_reason"].as_str(),
            Some("take_profit" | "stop_loss" | "end")
        ));
        assert!(t["confidence"].as_f64().unwrap() >= 0.75);
        assert!(t["entry_time"].as_str().unwrap() <= t["exit_time"].as_str().unwrap());
        assert!(t["entry_time"].as_str().unwrap().ends_with('Z'));
        assert!(t["fees"].as_f64().unwrap() > 0.0);
    }
    let sum: f64 = trades.iter().map(|t| t["pnl"].as_f64().unwrap()).sum();
    let final_equity = s["final_equity"].as_f64().unwrap();
    assert!(
        (final_equity - (10_000.0 + sum)).abs() < 1e-6,
        "{final_equity} vs {sum}"
    );
    let fees: f64 = trades.iter().map(|t| t["fees"].as_f64().unwrap()).sum();
    assert!((s["fees_paid"].as_f64().unwrap() - fees).abs() < 1e-6);
    let wins = trades
        .iter()
        .filter(|t| t["pnl"].as_f64().unwrap() > 0.0)
        .count();
    assert_eq!(s["wins"].as_u64().unwrap() as usize, wins);

    assert_eq!(
        keys(&v["by_phase"]),
        ["accumulation", "manipulation", "distribution"]
    );
    for (_, g) in v["by_phase"].as_object().unwrap() {
        assert_eq!(keys(g), ["trades", "win_rate", "pnl"]);
    }
    let cal = v["calibration"].as_array().unwrap();
    assert_eq!(cal.len(), 5);
    assert_eq!(cal[0]["confidence_min"], 0.75);
    assert_eq!(cal[0]["confidence_max"], 0.8);
    assert_eq!(cal[4]["confidence_max"], 1.0);
    for b in cal {
        assert_eq!(
            keys(b),
            [
                "confidence_min",
                "confidence_max",
                "trades",
                "win_rate",
                "wins",
                "interval"
            ]
        );
        // The interval holds the bucket's own win rate.
        if b["trades"].as_u64().unwrap() > 0 {
            let (lo, hi) = (
                b["interval"]["low"].as_f64().unwrap(),
                b["interval"]["high"].as_f64().unwrap(),
            );
            let w = b["win_rate"].as_f64().unwrap();
            assert!(lo <= w && w <= hi, "{b}");
        } else {
            assert_eq!(b["interval"], Value::Null);
        }
    }
    let in_buckets: u64 = cal.iter().map(|b| b["trades"].as_u64().unwrap()).sum();
    assert_eq!(in_buckets as usize, trades.len());

    // The honest numbers: all there on 20,000 candles, and no warning.
    let be = &v["break_even_win_rate"];
    assert_eq!(be["win_rate"], s["win_rate"]);
    assert!(be["after_costs"].as_f64().unwrap() > be["before_costs"].as_f64().unwrap());
    assert_eq!(
        keys(&v["buy_and_hold"]),
        [
            "start_time",
            "end_time",
            "entry_price",
            "exit_price",
            "quantity",
            "fees",
            "final_equity",
            "total_return_percent",
            "max_drawdown_percent"
        ]
    );
    assert_eq!(v["buy_and_hold"]["start_time"], trades[0]["entry_time"]);
    let b = &v["baseline"];
    assert_eq!(
        (b["runs"].as_u64(), b["seed"].as_u64()),
        (Some(200), Some(19))
    );
    assert_eq!(b["trades_per_run"], s["trades"]);
    assert!(b["total_return_percent"]["median"].is_number(), "{b}");
    assert!(v["score"]["brier"].is_number() && v["score"]["auc"].is_number());
    assert_eq!(v["warnings"], serde_json::json!([]));
}

#[test]
fn config_sets_fees_symbol_labels_the_report_and_min_confidence_sets_the_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sim.csv");
    autotrade_tui::backtest::write_simulated_csv(&csv, 2, 6_000).unwrap();
    let r = run(
        dir.path(),
        "[auto_trade]\nmin_confidence = 0.7\n[backtest]\nfee_percent = 0.0\n",
        &[
            "backtest",
            "--candles",
            csv.to_str().unwrap(),
            "--symbol",
            "eth/usd",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["symbol"], "ETH/USD", "symbols are upper-cased");
    assert_eq!(v["summary"]["fees_paid"], 0.0);
    assert!(v["summary"]["trades"].as_u64().unwrap() > 0);
    let cal = v["calibration"].as_array().unwrap();
    assert_eq!(cal.len(), 6);
    assert_eq!(cal[0]["confidence_min"], 0.7);
    assert_eq!(cal[0]["confidence_max"], 0.75);
}

#[test]
fn terminal_report_has_tables_and_charts_and_no_progress_bar_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sim.csv");
    autotrade_tui::backtest::write_simulated_csv(&csv, 1, 5_000).unwrap();
    let r = run(
        dir.path(),
        "",
        &["backtest", "--candles", csv.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for want in [
        "Backtest BTC/USD",
        "5,000 candles of 1h",
        "Summary",
        "Max drawdown",
        "By AMD phase",
        "By matrix cell",
        "bullish   accumulation BUY ×0.95",
        "Calibration",
        "0.75–0.80",
        "Equity",
        "Drawdown",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in\n{}", r.stdout);
    }
    let braille = r
        .stdout
        .chars()
        .filter(|c| ('\u{2801}'..='\u{28FF}').contains(c))
        .count();
    assert!(braille > 50, "no chart drawn:\n{}", r.stdout);
    assert!(r.stdout.lines().all(|l| l.chars().count() <= 100));
    assert_eq!(r.stderr, "", "stderr is not a terminal: no progress bar");
}

#[test]
fn a_bad_file_exits_1_naming_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "timestamp,open,high,low,close,volume\n\
         2024-01-01T00:00:00Z,100,101,99,100,1\n\
         2024-01-01T01:00:00Z,100,101,99,100,1\n\
         2024-01-01T02:00:00Z,100,98,99,100,1\n",
    )
    .unwrap();
    let r = run(
        dir.path(),
        "",
        &["backtest", "--candles", csv.to_str().unwrap(), "--json"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr
            .contains(&format!("{}:4: high 98 is below low 99", csv.display())),
        "{}",
        r.stderr
    );

    let missing = dir.path().join("missing.csv");
    let r = run(
        dir.path(),
        "",
        &["backtest", "--candles", missing.to_str().unwrap()],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("missing.csv"), "{}", r.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), "", &["backtest"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let csv = dir.path().join("sim.csv");
    autotrade_tui::backtest::write_simulated_csv(&csv, 1, 100).unwrap();
    let r = run(
        dir.path(),
        "",
        &[
            "backtest",
            "--candles",
            csv.to_str().unwrap(),
            "--symbol",
            "BTC-USD",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("BTC-USD"), "{}", r.stderr);
    let r = run(
        dir.path(),
        "[backtest]\nfee_percent = 50\n",
        &["backtest", "--candles", csv.to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("backtest.fee_percent"), "{}", r.stderr);
}

#[test]
fn gaps_are_warned_about_on_stderr_and_the_json_stays_clean() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("gaps.csv");
    autotrade_tui::backtest::write_simulated_csv(&csv, 1, 300).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    // Drop data lines 101..=105 (file lines 102..=106): five missing hours.
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| !(101..=105).contains(i))
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&csv, kept.join("\n")).unwrap();
    let r = run(
        dir.path(),
        "",
        &["backtest", "--candles", csv.to_str().unwrap(), "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("1 gaps in time"), "{}", r.stderr);
    assert!(
        r.stderr.contains("line 102 (5 bars missing"),
        "{}",
        r.stderr
    );
    // With --json the warning is JSON too: {"warning": "..."}.
    let w: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert!(
        w["warning"].as_str().unwrap().contains("1 gaps in time"),
        "{w}"
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["candles"], 295);
}
