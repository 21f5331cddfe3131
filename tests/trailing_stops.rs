#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap: a failure is the report.
//! Trailing stops end to end: one known price path, traded live through the real binary against
//! a loopback ML engine (a manual `trade --trail` and an automatic decision with the config's
//! default trail) and replayed as candles in the backtest, exits at the same price for the same
//! hand-worked reasons; the stop never loosens on the way; the flags are checked and named.
//!
//! The path, BTC/USD bought at 45,000 (TP 47,500, SL 44,000), trail 1 % of the best price:
//!
//! | price  | best   | stop                                   |
//! |--------|--------|----------------------------------------|
//! | 45,000 | 45,000 | max(44,000, 45,000 − 450) = 44,550     |
//! | 45,500 | 45,500 | 45,500 − 455 = 45,045                  |
//! | 46,000 | 46,000 | 46,000 − 460 = 45,540                  |
//! | 45,800 | 46,000 | 45,540 (a lower price never loosens it)|
//! | 45,600 | 46,000 | 45,540                                 |
//! | 45,500 | —      | 45,500 ≤ 45,540: closed at 45,500      |
//!
//! Size: 1.5 % of 10,000 at risk over the 1,000 to the stop-loss is 0.15 BTC, capped at 20 % of
//! the account (2,000 / 45,000 = 0.04444444). P&L 0.04444444 × (45,500 − 45,000) = 22.22.

mod support;

use autotrade_tui::backtest::{BarDecision, Settings, decide_on_analysis, read_csv, replay};
use autotrade_tui::domain::trail::Trail;
use autotrade_tui::domain::{Direction, MlSignal, Phase};
use rusqlite::Connection;
use serde_json::{Value, json};
use std::path::Path;
use support::*;

/// The path after the fill, and where each price leaves the best price and the stop (the
/// table above).
const PATH: [(f64, f64, f64); 4] = [
    (45_500.0, 45_500.0, 45_045.0),
    (46_000.0, 46_000.0, 45_540.0),
    (45_800.0, 46_000.0, 45_540.0),
    (45_600.0, 46_000.0, 45_540.0),
];
const EXIT: f64 = 45_500.0;
const PNL: f64 = 22.22;

fn btc_signal(price: f64) -> Value {
    json!({"direction": "bullish", "confidence": 0.9, "entry_price": price,
           "take_profit": 47_500.0, "stop_loss": 44_000.0, "risk_reward_ratio": 2.5})
}

fn setup(auto_trade: &str, rest: &str) -> (MlServer, tempfile::TempDir) {
    let ml = MlServer::start();
    ml.set_signal("BTC/USD", btc_signal(45_000.0));
    ml.set_phase("BTC/USD", phase("accumulation", 0.8));
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        &format!("symbols = [\"BTC/USD\"]\n{auto_trade}"),
        rest,
    );
    (ml, dir)
}

fn positions(dir: &Path) -> Vec<Value> {
    let (code, out, err) = run(dir, &["positions", "--json"]);
    assert_eq!(code, 0, "{err}");
    json_lines(&out)
}

/// The ML engine moves to each price of the path and a check sees it; the stop after each is
/// the table's. Then a check sees the exit price.
fn walk_the_path(ml: &MlServer, dir: &Path) {
    for (price, best, stop) in PATH {
        ml.set_signal("BTC/USD", btc_signal(price));
        once_json(dir);
        let p = &positions(dir)[0];
        assert_eq!(p["stop_loss"].as_f64(), Some(stop), "after {price}: {p}");
        assert_eq!(p["best_price"].as_f64(), Some(best), "after {price}: {p}");
        assert_eq!(p["take_profit"].as_f64(), Some(47_500.0));
    }
    ml.set_signal("BTC/USD", btc_signal(EXIT));
    once_json(dir);
}

/// The closed position as the store keeps it: exit price, P&L, reason, final stop, best price.
fn closed(dir: &Path) -> (f64, f64, String, f64, f64) {
    if let Some(url) = pg_url_of(dir) {
        let r = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap()
            .query_one(
                "SELECT exit_price, realized_pnl, close_reason, stop_loss, best_price FROM positions
                 WHERE status = 'closed'",
                &[],
            )
            .unwrap();
        return (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    }
    Connection::open(dir.join("data").join("autotrade.db"))
        .unwrap()
        .query_row(
            "SELECT exit_price, realized_pnl, close_reason, stop_loss, best_price FROM positions
             WHERE status = 'closed'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap()
}

fn trail_events(dir: &Path) -> Vec<String> {
    if let Some(url) = pg_url_of(dir) {
        return postgres::Client::connect(&url, postgres::NoTls)
            .unwrap()
            .query(
                "SELECT message FROM events WHERE message LIKE '%trailing stop%' ORDER BY id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    }
    let c = Connection::open(dir.join("data").join("autotrade.db")).unwrap();
    let mut stmt = c
        .prepare("SELECT message FROM events WHERE message LIKE '%trailing stop%' ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_manual_trailing_stop_follows_the_path_and_exits_where_the_arithmetic_says() {
    manual_trailing_stop("");
}

#[test]
fn on_postgresql_a_manual_trailing_stop_exits_where_the_arithmetic_says() {
    let Some(store) = pg_store_table() else {
        return support::pg::skip_note();
    };
    manual_trailing_stop(&store);
}

/// `store`: a `[store]` table, or nothing (SQLite).
fn manual_trailing_stop(store: &str) {
    let (ml, dir) = setup("", store);
    let (code, out, err) = run(
        dir.path(),
        &["trade", "BTC/USD", "buy", "--trail", "1", "--yes", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let log = &json_lines(&out)[0];
    assert_eq!(log["status"], "executed");
    assert_eq!(log["decision"]["trail_percent"].as_f64(), Some(1.0));
    assert!(log["decision"]["trail_amount"].is_null());
    // The decision keeps its stop-loss; the position's stop starts 1 % behind the fill.
    assert_eq!(log["decision"]["stop_loss"].as_f64(), Some(44_000.0));
    let p = &positions(dir.path())[0];
    assert_eq!(p["quantity"].as_f64(), Some(0.04444444));
    assert_eq!(p["trail_percent"].as_f64(), Some(1.0));
    assert_eq!(p["stop_loss"].as_f64(), Some(44_550.0));
    assert_eq!(p["best_price"].as_f64(), Some(45_000.0));
    // The text says where the stop is and that it trails.
    let (_, text, _) = run(dir.path(), &["positions"]);
    assert!(text.contains("SL 44,550.00 trail 1%"), "{text}");

    walk_the_path(&ml, dir.path());
    assert!(positions(dir.path()).is_empty(), "closed at {EXIT}");
    let (exit, pnl, reason, stop, best) = closed(dir.path());
    assert_eq!((exit, pnl, reason.as_str()), (EXIT, PNL, "stop_loss"));
    assert_eq!((stop, best), (45_540.0, 46_000.0));
    // Each check ran in its own process: each move is its own event, old → new.
    assert_eq!(
        trail_events(dir.path()),
        [
            "BTC/USD BUY trailing stop raised 44,550.00 → 45,045.00 (best 45,500.00, trail 1%)",
            "BTC/USD BUY trailing stop raised 45,045.00 → 45,540.00 (best 46,000.00, trail 1%)",
        ]
    );
    let (_, out, _) = run(dir.path(), &["status", "--json"]);
    assert_eq!(json_lines(&out)[0]["realized_pnl"].as_f64(), Some(PNL));
}

#[test]
fn an_automatic_decision_gets_the_config_trail_and_exits_at_the_same_price() {
    let (ml, dir) = setup(
        "require_confirmation = false",
        "[risk]\ntrailing_stop_percent = 1\n",
    );
    let logs = once_json(dir.path());
    assert_eq!(logs[0]["decision"]["action"], "BUY");
    assert_eq!(logs[0]["status"], "executed", "{}", logs[0]);
    assert_eq!(logs[0]["decision"]["trail_percent"].as_f64(), Some(1.0));
    let p = &positions(dir.path())[0];
    assert_eq!(
        (p["stop_loss"].as_f64(), p["trail_percent"].as_f64()),
        (Some(44_550.0), Some(1.0))
    );
    walk_the_path(&ml, dir.path());
    let (exit, pnl, reason, _, _) = closed(dir.path());
    assert_eq!((exit, pnl, reason.as_str()), (EXIT, PNL, "stop_loss"));
    // The check that closed it then bought again at 45,500, with the trail: 45,500 − 455.
    let p = &positions(dir.path())[0];
    assert_eq!(
        (p["entry_price"].as_f64(), p["stop_loss"].as_f64()),
        (Some(EXIT), Some(45_045.0))
    );
}

#[test]
fn without_a_trail_the_same_path_leaves_the_stop_where_it_was() {
    let (ml, dir) = setup("require_confirmation = false", "");
    let logs = once_json(dir.path());
    assert!(logs[0]["decision"]["trail_percent"].is_null());
    for price in PATH.map(|(p, _, _)| p).into_iter().chain([EXIT]) {
        ml.set_signal("BTC/USD", btc_signal(price));
        once_json(dir.path());
    }
    let p = &positions(dir.path())[0];
    assert_eq!(p["stop_loss"].as_f64(), Some(44_000.0));
    assert!(
        p["trail_percent"].is_null() && p["best_price"].is_null(),
        "{p}"
    );
}

/// The path as hourly candles of one price each: the decision on bar 0's close, the fill at
/// bar 1's open, then the path.
fn path_csv(dir: &Path) -> std::path::PathBuf {
    let mut csv = String::from("timestamp,open,high,low,close,volume\n");
    let prices = [45_000.0, 45_000.0]
        .into_iter()
        .chain(PATH.map(|(p, _, _)| p))
        .chain([EXIT, 45_000.0]);
    for (i, p) in prices.enumerate() {
        csv.push_str(&format!("{},{p},{p},{p},{p},1\n", 1_704_067_200 + i * 3600));
    }
    let path = dir.join("path.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

#[test]
fn the_backtest_replays_the_path_to_the_same_exit() {
    let dir = tempfile::tempdir().unwrap();
    let series = read_csv(&path_csv(dir.path()), &mut |_, _| {}).unwrap();
    // The config's trail, no fees or slippage: the live paper broker's terms.
    let config = autotrade_tui::config::parse_str(
        "[risk]\ntrailing_stop_percent = 1\n[backtest]\nfee_percent = 0\nslippage_percent = 0\n",
        "test",
    )
    .unwrap();
    let settings = Settings::from_config(&config, "BTC/USD");
    assert_eq!(settings.trail, Some(Trail::Percent(1.0)));
    let run = |settings: &Settings| {
        let risk = settings.risk;
        let mut decider = |i: usize, bar: &autotrade_tui::simulated::Candle, gates: &_| {
            (i == 0).then(|| {
                let signal = MlSignal {
                    direction: Direction::Bullish,
                    confidence: 0.9,
                    entry_price: bar.close,
                    take_profit: 47_500.0,
                    stop_loss: 44_000.0,
                    risk_reward_ratio: 2.5,
                };
                let d =
                    decide_on_analysis("BTC/USD", &signal, Phase::Accumulation, 0.8, &risk, gates);
                BarDecision::from_decision(Direction::Bullish, d)
            })
        };
        replay(&series.candles, settings, &mut decider, &mut |_, _| {})
    };
    let out = run(&settings);
    assert_eq!(out.trades.len(), 1);
    let t = &out.trades[0];
    assert_eq!(
        (t.entry_bar, t.entry_price, t.quantity),
        (1, 45_000.0, 0.04444444)
    );
    // Bar 6 is the 45,500 after 45,600: at or below the 45,540 stop.
    assert_eq!((t.exit_bar, t.exit_price), (6, EXIT));
    assert_eq!((t.exit_reason, t.pnl), ("stop_loss", PNL));
    assert_eq!(
        (t.stop_loss, t.trail),
        (44_000.0, Some(Trail::Percent(1.0)))
    );
    // With fixed stops the position is still open at the last close.
    let fixed = run(&Settings {
        trail: None,
        ..settings.clone()
    });
    assert_eq!(fixed.trades[0].exit_reason, "end");
}

#[test]
fn backtest_trail_flag_trails_like_the_config_and_zero_turns_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sim.csv");
    autotrade_tui::backtest::write_simulated_csv(&csv, 3, 10_000).unwrap();
    let csv = csv.to_str().unwrap();
    let backtest = |rest: &str, extra: &[&str]| -> Value {
        write_config(dir.path(), None, "", rest);
        let mut args = vec![
            "backtest",
            "--candles",
            csv,
            "--baseline-seeds",
            "2",
            "--json",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = run(dir.path(), &args);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let fixed = backtest("", &[]);
    let flag = backtest("", &["--trail", "0.5"]);
    let config = backtest("[risk]\ntrailing_stop_percent = 0.5\n", &[]);
    let off = backtest("[risk]\ntrailing_stop_percent = 0.5\n", &["--trail", "0"]);
    assert_eq!(
        flag, config,
        "--trail 0.5 is [risk] trailing_stop_percent = 0.5"
    );
    assert_eq!(off, fixed, "--trail 0 is fixed stops");
    assert_ne!(
        flag["trades"], fixed["trades"],
        "a 0.5 % trail changes the exits"
    );
    // The same JSON: the same keys, and a trailing exit is a stop-loss exit.
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&flag), keys(&fixed));
    assert_eq!(keys(&flag["trades"][0]), keys(&fixed["trades"][0]));
    for t in flag["trades"].as_array().unwrap() {
        let r = t["exit_reason"].as_str().unwrap();
        assert!(["take_profit", "stop_loss", "end"].contains(&r), "{t}");
    }
    // Out of range, named.
    let (code, _, err) = run(dir.path(), &["backtest", "--candles", csv, "--trail", "60"]);
    assert_eq!(code, 2);
    assert!(err.contains("--trail 60: must be a percent"), "{err}");
}

#[test]
fn the_trail_flags_are_checked_and_named() {
    let (_ml, dir) = setup("", "");
    let refused = |args: &[&str], code: i32| -> String {
        let mut all = vec!["trade", "BTC/USD"];
        all.extend_from_slice(args);
        let (c, out, err) = run(dir.path(), &all);
        assert_eq!(c, code, "{args:?}: {out}{err}");
        assert!(out.is_empty(), "{out}");
        err
    };
    let err = refused(&["buy", "--trail", "0"], 2);
    assert!(err.contains("--trail 0: must be a number above 0"), "{err}");
    let err = refused(&["buy", "--trail", "60"], 2);
    assert!(
        err.contains("--trail 60: must be at most 50 (percent of the price)"),
        "{err}"
    );
    let err = refused(&["buy", "--trail-by", "-5"], 2);
    assert!(
        err.contains("--trail-by -5: must be a number above 0"),
        "{err}"
    );
    let err = refused(&["buy", "--trail", "1", "--trail-by", "5"], 2);
    assert!(
        err.contains("--trail") && err.contains("--trail-by"),
        "{err}"
    );
    // An amount as large as the entry (45,000) cannot trail, either way.
    let err = refused(&["buy", "--trail-by", "45000"], 1);
    assert!(
        err.contains("--trail-by 45000: must be below the entry price 45000"),
        "{err}"
    );
    let err = refused(
        &[
            "sell",
            "--tp",
            "44000",
            "--sl",
            "46000",
            "--trail-by",
            "50000",
        ],
        1,
    );
    assert!(
        err.contains("--trail-by 50000: must be below the entry price"),
        "{err}"
    );
    assert!(decisions_json(dir.path(), &["--pending"]).is_empty());

    // An amount below the entry is taken as given: the stop 250 behind the best price.
    let (code, out, err) = run(
        dir.path(),
        &["trade", "BTC/USD", "buy", "--trail-by", "250", "--yes"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("SL 44,000.00 trail 250"), "{out}");
    let p = &positions(dir.path())[0];
    assert_eq!(
        (p["trail_amount"].as_f64(), p["stop_loss"].as_f64()),
        (Some(250.0), Some(44_750.0))
    );
    assert!(p["trail_percent"].is_null());
}
