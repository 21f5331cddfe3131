#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Manual trades (the seed's execute_trade) against a loopback ML engine: `trade` with and
//! without overrides and its exact risk/reward, every refusal (exit 1, nothing actionable
//! stored), the gates, `--yes`, `positions --json` with P&L, and `close`. Then the
//! dashboard's own effects for `t`, `s` and `c`, performed as the runner performs them.

mod support;
use autotrade_tui::app::{Effect, Outcome};
use autotrade_tui::desk::Desk;
use autotrade_tui::domain::Side;
use autotrade_tui::domain::manual::ManualOrder;
use autotrade_tui::store::{Origin, Status};
use serde_json::{Value, json};
use std::path::Path;
use support::*;
use tempfile::TempDir;

const SYMBOLS: &str = "symbols = [\"BTC/USD\", \"ETH/USD\"]";

/// BTC/USD: bullish at 45000, TP 47500, SL 44000. ETH/USD: bearish at 2500, TP 2375, SL 2550.
fn btc_signal(entry: f64) -> Value {
    json!({"direction": "bullish", "confidence": 0.87, "entry_price": entry,
           "take_profit": 47500.0, "stop_loss": 44000.0, "risk_reward_ratio": 2.5})
}

fn engine() -> MlServer {
    let ml = MlServer::start();
    ml.set_signal("BTC/USD", btc_signal(45000.0));
    ml.set_phase("BTC/USD", phase("accumulation", 0.8));
    ml.set_symbol("ETH/USD", "bearish", 0.9, 2500.0, "distribution");
    ml
}

fn setup(ml: &MlServer, auto_trade: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        &format!("{SYMBOLS}\n{auto_trade}"),
        "",
    );
    dir
}

/// `trade ... --json`: exit 0 and the one decision log it printed.
fn trade_ok(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["trade"];
    all.extend_from_slice(args);
    all.push("--json");
    let (code, out, err) = run(dir, &all);
    assert_eq!(code, 0, "trade {args:?}: {err}");
    let mut logs = json_lines(&out);
    assert_eq!(logs.len(), 1, "{out}");
    logs.remove(0)
}

/// `trade ...` that must be refused: exit 1, and its message.
fn trade_refused(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["trade"];
    all.extend_from_slice(args);
    let (code, out, err) = run(dir, &all);
    assert_eq!(code, 1, "trade {args:?} should be refused: {out}{err}");
    assert!(out.is_empty(), "a refusal prints no decision: {out}");
    err
}

fn status_json(dir: &Path) -> Value {
    let (code, out, err) = run(dir, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    json_lines(&out).remove(0)
}

fn positions_json(dir: &Path) -> Vec<Value> {
    let (code, out, err) = run(dir, &["positions", "--json"]);
    assert_eq!(code, 0, "{err}");
    json_lines(&out)
}

/// Nothing pending, nothing executed, no position.
fn assert_nothing_actionable(dir: &Path) {
    assert!(decisions_json(dir, &["--pending"]).is_empty());
    assert!(decisions_json(dir, &["--executed-only"]).is_empty());
    assert!(positions_json(dir).is_empty());
}

fn rr(log: &Value) -> [f64; 5] {
    let r = &log["risk_reward"];
    [
        "risk_amount",
        "reward_amount",
        "risk_reward_ratio",
        "risk_percent",
        "reward_percent",
    ]
    .map(|k| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {log}"))
    })
}

// ---------------------------------------------------------------- trade

#[test]
fn a_sell_against_a_bullish_signal_is_a_counter_signal_trade_with_no_borrowed_score() {
    let ml = engine();
    let dir = setup(&ml, "");
    let (code, out, err) = run(
        dir.path(),
        &["trade", "BTC/USD", "sell", "--tp", "43000", "--sl", "46000"],
    );
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let first = lines.next().unwrap_or_default();
    // Where the score would be: the mark. The risk and reward say what each number is of.
    assert!(
        first
            .contains("SELL BTC/USD    pending   counter-signal  size 0.04444444  entry 45,000.00"),
        "{out}"
    );
    assert!(
        first.contains(
            "risk 44.44 = 0.44% of account (SL 2.22% from entry)  \
             reward 88.89 = 0.89% of account (TP 4.44% from entry)  R:R 2.00"
        ),
        "{out}"
    );
    assert!(!first.contains("score 0.87"), "{out}");
    let why = lines.next().unwrap_or_default();
    assert!(
        why.trim_start().starts_with(
            "manual trade against a bullish signal (counter-signal, score 0): SELL BTC/USD at 45000"
        ),
        "{out}"
    );
    assert!(out.contains("pending: confirm with"), "{out}");

    // Stored with confidence 0, not the bullish signal's 0.87; `decisions` marks it too.
    let pending = decisions_json(dir.path(), &["--pending"]);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["decision"]["confidence"].as_f64(), Some(0.0));
    assert_eq!(pending[0]["decision"]["ml_signal"]["direction"], "bullish");
    let (code, out, err) = run(dir.path(), &["decisions", "--pending"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pending   counter-signal"), "{out}");

    // A trade along its signal keeps the signal's score, and says so.
    let (code, out, err) = run(dir.path(), &["trade", "ETH/USD", "sell"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("SELL ETH/USD    pending   score 0.90  size"),
        "{out}"
    );
    assert!(
        out.contains("; along the bearish signal, score 0.90"),
        "{out}"
    );
}

#[test]
fn a_trade_on_a_neutral_signal_has_no_signal_support() {
    let ml = engine();
    ml.set_symbol("ETH/USD", "neutral", 0.9, 2500.0, "accumulation");
    let dir = setup(&ml, "");
    let log = trade_ok(
        dir.path(),
        &["ETH/USD", "buy", "--tp", "2600", "--sl", "2450"],
    );
    assert_eq!(log["decision"]["confidence"].as_f64(), Some(0.0));
    let why = log["decision"]["reasoning"].as_str().unwrap();
    assert!(
        why.starts_with(
            "manual trade with no signal support (the signal is neutral; score 0): BUY"
        ),
        "{why}"
    );
    let (_, out, _) = run(dir.path(), &["decisions", "--pending"]);
    assert!(out.contains("pending   no signal support"), "{out}");
}

#[test]
fn trade_takes_tp_sl_from_the_signal_and_the_capped_risk_size() {
    let ml = engine();
    let dir = setup(&ml, "");
    let log = trade_ok(dir.path(), &["BTC/USD", "buy"]);
    assert_eq!(log["status"], "pending");
    assert_eq!(log["executed"], false);
    assert_eq!(log["origin"], "manual");
    assert_eq!(log["mode"], "paper");
    let d = &log["decision"];
    assert_eq!(d["symbol"], "BTC/USD");
    assert_eq!(d["action"], "BUY");
    assert_eq!(d["entry_price"].as_f64(), Some(45000.0));
    assert_eq!(d["take_profit"].as_f64(), Some(47500.0));
    assert_eq!(d["stop_loss"].as_f64(), Some(44000.0));
    // 1.5 % of 10,000 over a 1,000 stop is 0.15: capped at 20 % of the account / 45,000.
    assert_eq!(d["position_size"].as_f64(), Some(0.04444444));
    assert_eq!(rr(&log), [44.44, 111.11, 2.5, 2.22, 5.56]);
    assert_eq!(d["confidence"].as_f64(), Some(0.87));
    assert_eq!(d["amd_phase"], "accumulation");
    let why = d["reasoning"].as_str().unwrap();
    assert!(
        why.starts_with("manual trade: BUY BTC/USD at 45000"),
        "{why}"
    );
    assert!(
        why.contains("take_profit 47500 (signal), stop_loss 44000 (signal)"),
        "{why}"
    );
    assert!(why.contains("capped at 20% of account"), "{why}");

    // Stored pending, and confirmable like any other decision.
    let pending = decisions_json(dir.path(), &["--pending"]);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["log_id"], log["log_id"]);
    assert_eq!(status_json(dir.path())["pending"], 1);
    let id = log["log_id"].as_str().unwrap();
    let (code, out, err) = run(dir.path(), &["confirm", id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("executed BUY 0.04444444 BTC/USD"), "{out}");
}

#[test]
fn trade_without_json_shows_the_risk_reward_and_how_to_confirm() {
    let ml = engine();
    let dir = setup(&ml, "");
    let (code, out, err) = run(dir.path(), &["trade", "BTC/USD", "buy"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("size 0.04444444"), "{out}");
    // Each figure says what it is of: the account, or the distance from the entry.
    assert!(
        out.contains(
            "pending   score 0.87  size 0.04444444  entry 45,000.00  TP 47,500.00  SL 44,000.00  \
             risk 44.44 = 0.44% of account (SL 2.22% from entry)  \
             reward 111.11 = 1.11% of account (TP 5.56% from entry)  R:R 2.50"
        ),
        "{out}"
    );
    assert!(
        out.contains("pending: confirm with `autotrade-tui confirm decision_"),
        "{out}"
    );
}

#[test]
fn a_far_stop_is_sized_by_risk_below_the_cap() {
    let ml = engine();
    let dir = setup(&ml, "");
    // 150 at risk over a 5,000 stop: 0.03, under the 0.04444444 cap. Its reward:risk of 0.5 is
    // below 1: refused with its figures unless taken on purpose.
    let (code, _, err) = run(dir.path(), &["trade", "BTC/USD", "buy", "--sl", "40000"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("reward:risk 0.5 (reward 75 for risk 150) is below 1 (to take it on purpose: --allow-rr 0.5)"),
        "{err}"
    );
    let log = trade_ok(
        dir.path(),
        &["BTC/USD", "buy", "--sl", "40000", "--allow-rr", "0.5"],
    );
    let d = &log["decision"];
    assert_eq!(d["position_size"].as_f64(), Some(0.03));
    assert_eq!(d["stop_loss"].as_f64(), Some(40000.0));
    assert_eq!(d["take_profit"].as_f64(), Some(47500.0));
    assert_eq!(rr(&log), [150.0, 75.0, 0.5, 11.11, 5.56]);
    let why = d["reasoning"].as_str().unwrap();
    assert!(
        why.contains("stop_loss 40000 (given)") && why.contains("size from risk rules (1.5% risk)"),
        "{why}"
    );
}

#[test]
fn size_tp_and_sl_given_are_honoured() {
    let ml = engine();
    let dir = setup(&ml, "");
    let log = trade_ok(
        dir.path(),
        &[
            "BTC/USD", "buy", "--size", "0.01", "--tp", "46000", "--sl", "44500",
        ],
    );
    let d = &log["decision"];
    assert_eq!(d["position_size"].as_f64(), Some(0.01));
    assert_eq!(d["take_profit"].as_f64(), Some(46000.0));
    assert_eq!(d["stop_loss"].as_f64(), Some(44500.0));
    assert_eq!(d["entry_price"].as_f64(), Some(45000.0));
    assert_eq!(rr(&log), [5.0, 10.0, 2.0, 1.11, 2.22]);
    let why = d["reasoning"].as_str().unwrap();
    assert!(
        why.contains("(given)") && why.contains("size given") && !why.contains("(signal)"),
        "{why}"
    );

    // A SELL with its own levels on the right side is a valid order too.
    let log = trade_ok(
        dir.path(),
        &["ETH/USD", "sell", "--tp", "2400", "--sl", "2600"],
    );
    let d = &log["decision"];
    assert_eq!(d["action"], "SELL");
    // 150 over a 100 stop is 1.5: capped at 2,000 / 2,500 = 0.8.
    assert_eq!(d["position_size"].as_f64(), Some(0.8));
    assert_eq!(rr(&log), [80.0, 80.0, 1.0, 4.0, 4.0]);
}

// ---------------------------------------------------------------- refusals

#[test]
fn a_size_over_the_cap_is_refused_naming_the_cap() {
    let ml = engine();
    let dir = setup(&ml, "");
    let err = trade_refused(dir.path(), &["BTC/USD", "buy", "--size", "0.05"]);
    assert!(
        err.contains("size 0.05 is over the cap of 0.04444444"),
        "{err}"
    );
    assert!(err.contains("max_position_percent 20%"), "{err}");
    assert_nothing_actionable(dir.path());
    assert!(
        decisions_json(dir.path(), &[]).is_empty(),
        "nothing stored at all"
    );
}

#[test]
fn tp_or_sl_on_the_wrong_side_is_refused() {
    let ml = engine();
    let dir = setup(&ml, "");
    for (args, says) in [
        (
            vec!["BTC/USD", "buy", "--tp", "44000"],
            "BUY needs take_profit > entry_price",
        ),
        (
            vec!["BTC/USD", "buy", "--sl", "46000"],
            "BUY needs stop_loss < entry_price",
        ),
        // The bullish signal's levels are on the wrong side for a SELL.
        (
            vec!["BTC/USD", "sell"],
            "SELL needs stop_loss > entry_price",
        ),
        (
            vec!["ETH/USD", "sell", "--tp", "2600", "--sl", "2700"],
            "SELL needs take_profit < entry_price",
        ),
    ] {
        let err = trade_refused(dir.path(), &args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // The bullish signal's levels suit only a BUY: the refusal says the SELL goes against it.
    let err = trade_refused(dir.path(), &["BTC/USD", "sell"]);
    assert!(
        err.contains(
            "(levels from the bullish signal, which this SELL goes against; give --tp/--sl to override)"
        ),
        "{err}"
    );
    assert_nothing_actionable(dir.path());
    assert!(decisions_json(dir.path(), &[]).is_empty());
}

#[test]
fn no_price_available_is_refused() {
    let ml = engine();
    ml.set(
        &signal_path("BTC/USD"),
        Reply::status(500, "{\"detail\":\"model down\"}"),
    );
    let dir = setup(&ml, "");
    let err = trade_refused(
        dir.path(),
        &["BTC/USD", "buy", "--tp", "47500", "--sl", "44000"],
    );
    assert!(err.contains("no price available for BTC/USD"), "{err}");
    assert_nothing_actionable(dir.path());
    assert!(decisions_json(dir.path(), &[]).is_empty());
}

#[test]
fn with_the_engine_down_a_stored_price_still_serves_but_levels_must_be_given() {
    let ml = engine();
    let dir = setup(&ml, "");
    // A cycle stores BTC's price (45000) and a pending decision; cancel it to free the symbol.
    let logs = once_json(dir.path());
    for l in logs.iter().filter(|l| l["status"] == "pending") {
        let (code, _, err) = run(dir.path(), &["cancel", l["log_id"].as_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
    ml.set(&signal_path("BTC/USD"), Reply::status(500, "{}"));
    let err = trade_refused(dir.path(), &["BTC/USD", "buy"]);
    assert!(
        err.contains("no take_profit given and no valid signal for BTC/USD"),
        "{err}"
    );
    let log = trade_ok(
        dir.path(),
        &["BTC/USD", "buy", "--tp", "47500", "--sl", "44000"],
    );
    assert_eq!(log["decision"]["entry_price"].as_f64(), Some(45000.0));
    assert_eq!(rr(&log), [44.44, 111.11, 2.5, 2.22, 5.56]);
}

#[test]
fn the_kill_switch_refuses_manual_trades() {
    let ml = engine();
    let dir = setup(&ml, "");
    let (code, _, err) = run(dir.path(), &["kill"]);
    assert_eq!(code, 0, "{err}");
    let err = trade_refused(dir.path(), &["BTC/USD", "buy"]);
    assert!(err.contains("kill switch"), "{err}");
    let err = trade_refused(dir.path(), &["BTC/USD", "buy", "--yes"]);
    assert!(err.contains("kill switch"), "{err}");
    assert_nothing_actionable(dir.path());
    // Enabled again, the same order goes through.
    assert_eq!(run(dir.path(), &["enable"]).0, 0);
    assert_eq!(
        trade_ok(dir.path(), &["BTC/USD", "buy"])["status"],
        "pending"
    );
}

#[test]
fn max_open_positions_and_the_symbol_gates_refuse_manual_trades() {
    let ml = engine();
    let dir = setup(&ml, "max_open_positions = 1");
    assert_eq!(
        trade_ok(dir.path(), &["BTC/USD", "buy", "--yes"])["status"],
        "executed"
    );
    let err = trade_refused(dir.path(), &["ETH/USD", "sell"]);
    assert!(err.contains("max_open_positions 1"), "{err}");
    let err = trade_refused(dir.path(), &["BTC/USD", "buy"]);
    assert!(
        err.contains("BTC/USD already has an open position"),
        "{err}"
    );
    assert!(decisions_json(dir.path(), &["--pending"]).is_empty());
    assert_eq!(positions_json(dir.path()).len(), 1);

    // A pending manual trade blocks a second one on the same symbol.
    let ml2 = engine();
    let dir2 = setup(&ml2, "");
    trade_ok(dir2.path(), &["ETH/USD", "sell"]);
    let err = trade_refused(dir2.path(), &["ETH/USD", "sell", "--size", "0.1"]);
    assert!(
        err.contains("ETH/USD already has a pending decision"),
        "{err}"
    );
    assert_eq!(decisions_json(dir2.path(), &["--pending"]).len(), 1);
}

#[test]
fn a_bad_symbol_is_a_usage_error() {
    let ml = engine();
    let dir = setup(&ml, "");
    let (code, _, err) = run(dir.path(), &["trade", "BTC-USD", "buy"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is not a pair like BTC/USD (BASE/QUOTE, letters and digits) or a US stock ticker like AAPL"),
        "{err}"
    );
}

#[test]
fn symbols_are_upper_cased_in_the_config_trade_and_close() {
    let ml = engine();
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"btc/usd\", \"Eth/Usd\"]",
        "",
    );
    assert_eq!(
        status_json(dir.path())["symbols"],
        json!(["BTC/USD", "ETH/USD"])
    );
    let log = trade_ok(dir.path(), &["btc/usd", "buy", "--yes"]);
    assert_eq!(log["decision"]["symbol"], "BTC/USD");
    assert_eq!(positions_json(dir.path())[0]["symbol"], "BTC/USD");
    let (code, out, err) = run(dir.path(), &["close", "bTc/UsD"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("closed BUY 0.04444444 BTC/USD @ "), "{out}");
}

#[test]
fn an_unknown_symbol_is_refused_naming_the_configured_ones_and_the_nearest() {
    let ml = engine();
    let dir = setup(&ml, "");
    let err = trade_refused(dir.path(), &["ETH/USDT", "buy"]);
    assert_eq!(
        err.trim(),
        "refused: ETH/USDT is not a configured symbol (did you mean ETH/USD?); \
         the configured symbols are BTC/USD, ETH/USD"
    );
    // No close match: the list alone.
    let err = trade_refused(dir.path(), &["doge/eur", "sell"]);
    assert_eq!(
        err.trim(),
        "refused: DOGE/EUR is not a configured symbol; the configured symbols are BTC/USD, ETH/USD"
    );
    assert_nothing_actionable(dir.path());
    assert_eq!(
        ml.hits(&signal_path("ETH/USDT")),
        0,
        "refused before asking"
    );
    // Neither a pair nor a stock ticker: a usage error, with the suggestion too.
    let (code, _, err) = run(dir.path(), &["trade", "btc_usd", "buy"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("(did you mean BTC/USD?)"), "{err}");
    // close says the same.
    let (code, _, err) = run(dir.path(), &["close", "SOL/USD"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "refused: SOL/USD is not a configured symbol; the configured symbols are BTC/USD, ETH/USD"
    );
}

// ---------------------------------------------------------------- --yes, positions, close

#[test]
fn yes_executes_positions_shows_pnl_and_close_records_it() {
    let ml = engine();
    let dir = setup(&ml, "");
    let log = trade_ok(dir.path(), &["BTC/USD", "buy", "--yes"]);
    assert_eq!(log["status"], "executed");
    assert_eq!(log["executed"], true);
    assert!(log["executed_at"].as_str().unwrap().ends_with('Z'), "{log}");
    let id = log["log_id"].as_str().unwrap().to_string();
    assert_eq!(
        decisions_json(dir.path(), &["--executed-only"])[0]["log_id"],
        id.as_str()
    );

    let pos = positions_json(dir.path());
    assert_eq!(pos.len(), 1, "{pos:?}");
    let p = &pos[0];
    assert_eq!(p["symbol"], "BTC/USD");
    assert_eq!(p["side"], "BUY");
    assert_eq!(p["quantity"].as_f64(), Some(0.04444444));
    assert_eq!(p["entry_price"].as_f64(), Some(45000.0));
    assert_eq!(p["take_profit"].as_f64(), Some(47500.0));
    assert_eq!(p["stop_loss"].as_f64(), Some(44000.0));
    assert!(p["opened_at"].as_str().unwrap().ends_with('Z'), "{p}");
    assert_eq!(p["last_price"].as_f64(), Some(45000.0));
    assert_eq!(p["unrealized_pnl"].as_f64(), Some(0.0));
    assert_eq!(p["log_id"], id.as_str());

    // The next cycle sees 46000: 0.04444444 × 1000 unrealized.
    ml.set_signal("BTC/USD", btc_signal(46000.0));
    once_json(dir.path());
    let p = &positions_json(dir.path())[0];
    assert_eq!(p["last_price"].as_f64(), Some(46000.0));
    assert_eq!(p["unrealized_pnl"].as_f64(), Some(44.44));
    let (code, out, _) = run(dir.path(), &["positions"]);
    assert_eq!(code, 0);
    assert!(out.contains("BTC/USD") && out.contains("+44.44"), "{out}");

    // `close` asks for the price first: 46500 now, so 0.04444444 × 1500 realized.
    ml.set_signal("BTC/USD", btc_signal(46500.0));
    let (code, out, err) = run(dir.path(), &["close", "BTC/USD"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("closed BUY 0.04444444 BTC/USD @ 46,500.00, realized P&L +66.67"),
        "{out}"
    );
    assert!(positions_json(dir.path()).is_empty());
    let st = status_json(dir.path());
    assert_eq!(st["open_positions"], 0);
    assert_eq!(st["realized_pnl"].as_f64(), Some(66.67));
    assert_eq!(st["equity"].as_f64(), Some(10066.67));
    // The decision stays executed: closing is the position's story, not the decision's.
    let log = decisions_json(dir.path(), &[])
        .into_iter()
        .find(|l| l["log_id"] == id.as_str())
        .unwrap();
    assert_eq!(log["status"], "executed");

    // Closed already, or never open: refused with a message.
    let (code, _, err) = run(dir.path(), &["close", "BTC/USD"]);
    assert_eq!(code, 1);
    assert!(err.contains("no open position on BTC/USD"), "{err}");
    let (code, _, err) = run(dir.path(), &["close", "ETH/USD"]);
    assert_eq!(code, 1);
    assert!(err.contains("no open position on ETH/USD"), "{err}");
    assert_eq!(
        status_json(dir.path())["realized_pnl"].as_f64(),
        Some(66.67)
    );
}

#[test]
fn a_sell_closed_at_a_loss_records_the_loss() {
    let ml = engine();
    let dir = setup(&ml, "");
    let log = trade_ok(dir.path(), &["ETH/USD", "sell", "--size", "0.5", "--yes"]);
    assert_eq!(log["status"], "executed");
    // ETH rises to 2520: a SELL of 0.5 loses 10.
    ml.set_signal(
        "ETH/USD",
        json!({"direction": "bearish", "confidence": 0.9, "entry_price": 2520.0,
               "take_profit": 2375.0, "stop_loss": 2550.0, "risk_reward_ratio": 2.5}),
    );
    let (code, out, err) = run(dir.path(), &["close", "ETH/USD"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("realized P&L -10.00"), "{out}");
    assert_eq!(
        status_json(dir.path())["realized_pnl"].as_f64(),
        Some(-10.0)
    );
}

#[test]
fn a_close_whose_refresh_crosses_the_stop_says_so() {
    let ml = engine();
    let dir = setup(&ml, "");
    trade_ok(dir.path(), &["BTC/USD", "buy", "--yes"]);
    // The fresh price is below the 44000 stop: the stop closes it, not the trader.
    ml.set_signal("BTC/USD", btc_signal(43900.0));
    let (code, _, err) = run(dir.path(), &["close", "BTC/USD"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("BTC/USD was just closed by its stop_loss"),
        "{err}"
    );
    assert!(positions_json(dir.path()).is_empty());
    assert!(status_json(dir.path())["realized_pnl"].as_f64().unwrap() < 0.0);
}

// ---------------------------------------------------------------- the dashboard's effects

fn context(dir: &Path) -> Desk {
    let config = autotrade_tui::config::load_file(&dir.join("config.toml")).unwrap();
    let broker = autotrade_tui::broker::for_config(&config).unwrap();
    Desk::open(config, dir.join("data"), broker).unwrap()
}

fn order(symbol: &str, side: Side) -> ManualOrder {
    ManualOrder {
        symbol: symbol.into(),
        side,
        size: None,
        take_profit: None,
        stop_loss: None,
        trail: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn t_s_and_c_on_the_dashboard_go_through_the_same_store() {
    use autotrade_tui::tui::execute;
    let ml = engine();
    let dir = setup(&ml, "");
    let ctx = context(dir.path());
    let store = ctx.store.clone();

    // `t`, Enter: a pending manual trade, sized by the rules at the fresh price.
    let trade = Effect::Trade {
        order: order("BTC/USD", Side::Buy),
        label: "BUY BTC/USD".into(),
        allow: Default::default(),
    };
    assert_eq!(execute(&ctx, trade).await, Outcome::Ok);
    let pending = store.decisions(10, Some(Status::Pending)).unwrap();
    assert_eq!(pending.len(), 1);
    let log = &pending[0];
    assert_eq!(log.origin, Origin::Manual);
    assert_eq!(log.decision.position_size, 0.04444444);
    assert!(log.decision.reasoning.starts_with("manual trade"));
    let id = log.log_id.clone();

    // `s`: a new size within the cap, with its new risk/reward.
    let resize = |size: f64| Effect::Resize {
        log_id: id.clone(),
        size,
        label: "BUY BTC/USD".into(),
    };
    assert_eq!(execute(&ctx, resize(0.02)).await, Outcome::Ok);
    let d = store.decision(&id).unwrap().unwrap().decision;
    assert_eq!(d.position_size, 0.02);
    let rr = d.risk_reward.unwrap();
    assert_eq!((rr.risk_amount, rr.reward_amount), (20.0, 50.0));
    // Over the cap: refused, the size unchanged.
    match execute(&ctx, resize(0.05)).await {
        Outcome::Refused(why) => assert!(why.contains("over the cap of 0.04444444"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.decision(&id).unwrap().unwrap().decision.position_size,
        0.02
    );
    let events: Vec<String> = store
        .recent_events(20)
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert!(
        events
            .iter()
            .any(|m| m.contains("manual BUY 0.04444444 BTC/USD proposed")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|m| m.contains("resized BUY BTC/USD from 0.04444444 to 0.02")),
        "{events:?}"
    );

    // Confirmed; then `c`, y: closed at the fresh price with its P&L recorded.
    let (_, pos) = ctx.confirm(&id).await.unwrap();
    ml.set_signal("BTC/USD", btc_signal(45500.0));
    let close = Effect::ClosePosition {
        position_id: pos.id,
        symbol: "BTC/USD".into(),
        label: "BUY 0.02 BTC/USD".into(),
    };
    assert_eq!(execute(&ctx, close.clone()).await, Outcome::Ok);
    assert!(store.open_positions().unwrap().is_empty());
    let closed = &store.closed_positions(1).unwrap()[0];
    assert_eq!(closed.exit_price, Some(45500.0));
    assert_eq!(closed.realized_pnl, Some(10.0));
    assert_eq!(store.realized_pnl().unwrap(), 10.0);
    assert!(store.recent_events(1).unwrap()[0].message.contains(
        "closed BUY 0.02 BTC/USD @ 45,500.00 (closed by trader on the dashboard), P&L +10.00"
    ));
    // Again: that position is gone.
    match execute(&ctx, close).await {
        Outcome::Refused(why) => assert!(why.contains("no longer open"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.realized_pnl().unwrap(), 10.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dashboard_trade_the_rules_or_gates_refuse_is_recorded_not_stored() {
    use autotrade_tui::tui::execute;
    let ml = engine();
    let dir = setup(&ml, "");
    let ctx = context(dir.path());
    let store = ctx.store.clone();
    // The form saw a valid SELL; by the time it is placed the signal is bullish again.
    let sell = Effect::Trade {
        order: order("BTC/USD", Side::Sell),
        label: "SELL BTC/USD".into(),
        allow: Default::default(),
    };
    assert_eq!(execute(&ctx, sell).await, Outcome::Recorded);
    assert_eq!(store.count_decisions(None).unwrap(), 0);
    let top = &store.recent_events(1).unwrap()[0];
    assert_eq!(top.level, "warn");
    assert!(
        top.message
            .starts_with("manual trade refused: SELL needs stop_loss > entry_price"),
        "{top:?}"
    );
    // The kill switch: refused by the store's gates, and recorded by it.
    ctx.kill().unwrap();
    let buy = Effect::Trade {
        order: order("BTC/USD", Side::Buy),
        label: "BUY BTC/USD".into(),
        allow: Default::default(),
    };
    assert_eq!(execute(&ctx, buy).await, Outcome::Recorded);
    assert_eq!(store.count_decisions(None).unwrap(), 0);
    assert!(
        store.recent_events(1).unwrap()[0]
            .message
            .contains("refused: kill switch is on")
    );
}

#[test]
fn fat_fingers_are_refused_with_their_figures_and_each_limit_lifts_only_on_purpose() {
    let ml = engine();
    let dir = setup(&ml, "");
    // Risking 99,749.9 on a 10,000 account at R:R 0.00: never, whatever is lifted.
    let (code, _, err) = run(
        dir.path(),
        &[
            "trade",
            "ETH/USD",
            "sell",
            "--size",
            "0.1",
            "--tp",
            "1",
            "--sl",
            "999999",
            "--yes",
            "--allow-risk",
            "100",
            "--allow-rr",
            "0",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("risk 99749.9 is more than the whole account 10000: never allowed"),
        "{err}"
    );
    // 0.03 BTC at 45,000 with the stop 5,000 away and TP 55,000: 150 at risk is 1.5 %, fine;
    // 0.04 risks 200, 2 % of the account, over max_risk_percent 1.5.
    let (code, _, err) = run(
        dir.path(),
        &[
            "trade", "BTC/USD", "buy", "--size", "0.04", "--tp", "55000", "--sl", "40000",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("risk 200 = 2% of account 10000 is over max_risk_percent 1.5% (to take it on purpose: --allow-risk 2)"),
        "{err}"
    );
    // Nothing was stored as pending by the refusals.
    assert!(decisions_json(dir.path(), &["--pending"]).is_empty());
    let log = trade_ok(
        dir.path(),
        &[
            "BTC/USD",
            "buy",
            "--size",
            "0.04",
            "--tp",
            "55000",
            "--sl",
            "40000",
            "--allow-risk",
            "2",
        ],
    );
    assert_eq!(rr(&log)[0], 200.0);
    // A lift that is not a percent is a usage error.
    let (code, _, err) = run(
        dir.path(),
        &["trade", "ETH/USD", "sell", "--allow-risk", "150"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--allow-risk 150"), "{err}");
}

#[test]
fn a_position_over_the_cap_is_refused_with_its_figure_and_lifted_only_by_allow_value() {
    let ml = engine();
    let dir = setup(&ml, "");
    // 0.05 BTC at 45,000 is worth 2,250 = 22.5% of the account, over max_position_percent 20
    // (the cap is 0.04444444); its risk, 0.05 × 1,000 = 50, is within the limit.
    let args = [
        "trade", "BTC/USD", "buy", "--size", "0.05", "--tp", "46000", "--sl", "44000",
    ];
    let (code, _, err) = run(dir.path(), &args);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("size 0.05 is over the cap of 0.04444444 BTC/USD (max_position_percent 20% of account 10000 at price 45000) (to take it on purpose: --allow-value 22.5)"),
        "{err}"
    );
    // Lifting it to less than it needs still refuses, naming the lifted cap.
    let mut short = args.to_vec();
    short.extend(["--allow-value", "22"]);
    let (code, _, err) = run(dir.path(), &short);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is over the cap of 0.04888888"), "{err}");
    let log = trade_ok(
        dir.path(),
        &[
            "BTC/USD",
            "buy",
            "--size",
            "0.05",
            "--tp",
            "46000",
            "--sl",
            "44000",
            "--allow-value",
            "22.5",
        ],
    );
    assert_eq!(log["decision"]["position_size"], 0.05);
    let (code, _, err) = run(
        dir.path(),
        &["trade", "BTC/USD", "buy", "--allow-value", "150"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--allow-value 150"), "{err}");
}
