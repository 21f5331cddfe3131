#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The engine against an ML engine on 127.0.0.1: the decision matrix, the threshold, sizing
//! and the cap, the gates, every bad input of SPEC rule 2, and a concurrent cycle.
//! Each test runs the real binary (`once --json`) or a real `Engine` over real HTTP.

mod support;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;
use tempfile::TempDir;

const BTC: &str = "BTC/USD";

/// A config for one symbol (BTC/USD) against `ml`, plus extra `[auto_trade]` lines and tables.
fn setup(ml: &MlServer, auto_trade: &str, rest: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        &format!("symbols = [\"{BTC}\"]\n{auto_trade}"),
        rest,
    );
    dir
}

/// The one decision a cycle over BTC/USD logs. When the source failed for it, it failed for
/// every symbol: `once` exits 1 with a `source_failed` error on stderr; otherwise 0.
fn only(dir: &Path) -> Value {
    let (code, out, err) = run(dir, &["once", "--json"]);
    let logs = json_lines(&out);
    assert_eq!(logs.len(), 1, "one symbol, one decision: {logs:?} {err}");
    let log = logs.into_iter().next().unwrap();
    if reasoning(&log).contains(" unavailable: ") {
        assert_eq!(code, 1, "{log}");
        let e: Value = serde_json::from_str(err.trim()).unwrap();
        assert_eq!(e["error"], "source_failed", "{err}");
    } else {
        assert_eq!(code, 0, "{err}");
    }
    log
}

fn decide_once(ml: &MlServer, auto_trade: &str, rest: &str) -> Value {
    let dir = setup(ml, auto_trade, rest);
    only(dir.path())
}

fn reasoning(log: &Value) -> &str {
    log["decision"]["reasoning"].as_str().unwrap_or("")
}

/// SPEC rule 2: HOLD, confidence 0, nothing to trade, and a reasoning containing each needle.
#[track_caller]
fn assert_untrusted(log: &Value, needles: &[&str]) {
    let d = &log["decision"];
    assert_eq!(d["action"], "HOLD", "{log}");
    assert_eq!(d["confidence"].as_f64(), Some(0.0), "{log}");
    assert_eq!(d["position_size"].as_f64(), Some(0.0), "{log}");
    assert_eq!(log["status"], "hold", "{log}");
    assert!(log["risk_reward"].is_null(), "{log}");
    let r = reasoning(log);
    for n in needles {
        assert!(r.contains(n), "reasoning {r:?} should mention {n:?}");
    }
}

fn bullish_phase(ml: &MlServer) {
    ml.set_phase(BTC, phase("accumulation", 0.8));
}

// ---------------------------------------------------------------- rule 1: the matrix

fn matrix_case(direction: &str, ml_conf: f64, phase_name: &str, action: &str, confidence: f64) {
    let ml = MlServer::start();
    ml.set_symbol(BTC, direction, ml_conf, 45000.0, phase_name);
    // A low threshold so that the ×0.70 rows stay actionable: this is rule 1 alone.
    let log = decide_once(&ml, "min_confidence = 0.5", "");
    let d = &log["decision"];
    assert_eq!(d["action"], action, "{log}");
    assert_eq!(d["confidence"].as_f64(), Some(confidence), "{log}");
    assert_eq!(d["amd_phase"], phase_name, "{log}");
    assert_eq!(d["symbol"], BTC);
    let r = reasoning(&log);
    assert!(!r.is_empty(), "a decision needs a reasoning: {log}");
    assert!(r.contains(direction) && r.contains(phase_name), "{r}");
    if action == "HOLD" {
        assert_eq!(log["status"], "hold", "{log}");
        assert!(log["risk_reward"].is_null(), "{log}");
        assert_eq!(d["position_size"].as_f64(), Some(0.0));
    } else {
        assert_eq!(log["status"], "pending", "{log}");
        assert!(d["position_size"].as_f64().unwrap() > 0.0, "{log}");
        assert!(log["risk_reward"]["risk_reward_ratio"].is_number(), "{log}");
    }
    assert_eq!(ml.hits(&signal_path(BTC)), 1);
    assert_eq!(ml.hits(&phase_path(BTC)), 1);
}

macro_rules! matrix_row {
    ($name:ident: $dir:literal $conf:literal in $phase:literal => $action:literal $expect:literal) => {
        #[test]
        fn $name() {
            matrix_case($dir, $conf, $phase, $action, $expect);
        }
    };
}

matrix_row!(matrix_bullish_accumulation_buys_at_095: "bullish" 0.87 in "accumulation" => "BUY" 0.8265);
matrix_row!(matrix_bullish_manipulation_buys_at_070: "bullish" 0.9 in "manipulation" => "BUY" 0.63);
matrix_row!(matrix_bullish_distribution_holds_at_030: "bullish" 0.87 in "distribution" => "HOLD" 0.3);
matrix_row!(matrix_bearish_distribution_sells_at_095: "bearish" 0.8 in "distribution" => "SELL" 0.76);
matrix_row!(matrix_bearish_manipulation_sells_at_070: "bearish" 0.9 in "manipulation" => "SELL" 0.63);
matrix_row!(matrix_bearish_accumulation_holds_at_030: "bearish" 0.87 in "accumulation" => "HOLD" 0.3);
matrix_row!(matrix_neutral_accumulation_holds_at_0: "neutral" 0.9 in "accumulation" => "HOLD" 0.0);
matrix_row!(matrix_neutral_manipulation_holds_at_0: "neutral" 0.9 in "manipulation" => "HOLD" 0.0);
matrix_row!(matrix_neutral_distribution_holds_at_0: "neutral" 0.9 in "distribution" => "HOLD" 0.0);

// ---------------------------------------------------------------- rule 3: the threshold

#[test]
fn buy_below_min_confidence_is_a_hold_naming_both_numbers() {
    let ml = MlServer::start();
    ml.set_symbol(BTC, "bullish", 0.75, 45000.0, "accumulation");
    let log = decide_once(&ml, "min_confidence = 0.75", "");
    let d = &log["decision"];
    assert_eq!(d["action"], "HOLD", "{log}");
    assert_eq!(log["status"], "hold");
    assert!(log["risk_reward"].is_null());
    assert_eq!(d["position_size"].as_f64(), Some(0.0));
    let r = reasoning(&log);
    // 0.75 × 0.95 = 0.7125
    assert!(r.contains("0.7125"), "{r}");
    assert!(r.contains("0.75"), "{r}");
    assert!(r.contains("min_confidence"), "{r}");
}

#[test]
fn sell_below_min_confidence_is_a_hold_naming_both_numbers() {
    let ml = MlServer::start();
    ml.set_symbol(BTC, "bearish", 0.9, 45000.0, "manipulation");
    let log = decide_once(&ml, "min_confidence = 0.8", "");
    assert_eq!(log["decision"]["action"], "HOLD", "{log}");
    let r = reasoning(&log);
    // 0.9 × 0.70 = 0.63
    assert!(r.contains("0.63") && r.contains("0.8"), "{r}");
    assert!(r.contains("SELL"), "{r}");
}

#[test]
fn confidence_exactly_at_min_confidence_trades() {
    let ml = MlServer::start();
    // 0.8 × 0.95 = 0.76 (0.7599999… in binary floating point)
    ml.set_symbol(BTC, "bullish", 0.8, 45000.0, "accumulation");
    let log = decide_once(&ml, "min_confidence = 0.76", "");
    assert_eq!(log["decision"]["action"], "BUY", "{log}");
    assert_eq!(log["decision"]["confidence"].as_f64(), Some(0.76));
}

// ---------------------------------------------------------------- rules 4 and 5: sizing

fn levels(direction: &str, conf: f64, entry: f64, sl: f64, tp: f64) -> Value {
    json!({"direction": direction, "confidence": conf, "entry_price": entry,
           "take_profit": tp, "stop_loss": sl, "risk_reward_ratio": 2.5})
}

const ACCOUNT: &str = "[account]\nsize = 10000.0\nmax_position_percent = 20.0\n";

#[test]
fn buy_size_is_capped_at_max_position_percent_with_exact_risk_reward() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bullish", 0.87, 45000.0, 44000.0, 47500.0));
    bullish_phase(&ml);
    let log = decide_once(&ml, "max_risk_percent = 1.5", ACCOUNT);
    let d = &log["decision"];
    assert_eq!(d["action"], "BUY", "{log}");
    assert_eq!(d["confidence"].as_f64(), Some(0.8265));
    assert_eq!(d["entry_price"].as_f64(), Some(45000.0));
    assert_eq!(d["stop_loss"].as_f64(), Some(44000.0));
    assert_eq!(d["take_profit"].as_f64(), Some(47500.0));
    // Risk sizing says 150 / 1000 = 0.15; the cap is 2000 / 45000 = 0.0444444…, floored to 8 dp.
    let q = d["position_size"].as_f64().unwrap();
    assert_eq!(q, 0.04444444, "{log}");
    assert!(q * 45000.0 <= 2000.0, "the cap is never exceeded");
    let rr = &log["risk_reward"];
    assert_eq!(rr["risk_amount"].as_f64(), Some(44.44), "{rr}");
    assert_eq!(rr["reward_amount"].as_f64(), Some(111.11), "{rr}");
    assert_eq!(rr["risk_reward_ratio"].as_f64(), Some(2.5), "{rr}");
    assert_eq!(rr["risk_percent"].as_f64(), Some(2.22), "{rr}");
    assert_eq!(rr["reward_percent"].as_f64(), Some(5.56), "{rr}");
    assert!(reasoning(&log).contains("capped"), "{log}");
}

#[test]
fn buy_size_below_the_cap_is_risk_amount_over_risk_per_unit() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bullish", 0.87, 45000.0, 40000.0, 52500.0));
    bullish_phase(&ml);
    let log = decide_once(&ml, "max_risk_percent = 1.5", ACCOUNT);
    // 150 / 5000 = 0.03 units, 1350 of value: under the 2000 cap.
    assert_eq!(
        log["decision"]["position_size"].as_f64(),
        Some(0.03),
        "{log}"
    );
    let rr = &log["risk_reward"];
    assert_eq!(rr["risk_amount"].as_f64(), Some(150.0), "{rr}");
    assert_eq!(rr["reward_amount"].as_f64(), Some(225.0), "{rr}");
    assert_eq!(rr["risk_reward_ratio"].as_f64(), Some(1.5), "{rr}");
    assert_eq!(rr["risk_percent"].as_f64(), Some(11.11), "{rr}");
    assert_eq!(rr["reward_percent"].as_f64(), Some(16.67), "{rr}");
    assert!(!reasoning(&log).contains("capped"), "{log}");
}

#[test]
fn sell_size_and_risk_reward_use_distances_from_entry() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bearish", 0.9, 2500.0, 2550.0, 2350.0));
    ml.set_phase(BTC, phase("distribution", 0.8));
    let log = decide_once(&ml, "max_risk_percent = 1.5", ACCOUNT);
    assert_eq!(log["decision"]["action"], "SELL", "{log}");
    assert_eq!(log["decision"]["confidence"].as_f64(), Some(0.855));
    // 150 / 50 = 3 units is 7500 of value; the cap is 2000 / 2500 = 0.8.
    assert_eq!(
        log["decision"]["position_size"].as_f64(),
        Some(0.8),
        "{log}"
    );
    let rr = &log["risk_reward"];
    assert_eq!(rr["risk_amount"].as_f64(), Some(40.0), "{rr}");
    assert_eq!(rr["reward_amount"].as_f64(), Some(120.0), "{rr}");
    assert_eq!(rr["risk_reward_ratio"].as_f64(), Some(3.0), "{rr}");
    assert_eq!(rr["risk_percent"].as_f64(), Some(2.0), "{rr}");
    assert_eq!(rr["reward_percent"].as_f64(), Some(6.0), "{rr}");
}

#[test]
fn sizing_follows_the_configured_account_and_risk() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bullish", 0.87, 100.0, 95.0, 110.0));
    bullish_phase(&ml);
    let log = decide_once(
        &ml,
        "max_risk_percent = 2.0",
        "[account]\nsize = 50000.0\nmax_position_percent = 50.0\n",
    );
    // 1000 / 5 = 200 units, 20000 of value: under the 25000 cap.
    assert_eq!(
        log["decision"]["position_size"].as_f64(),
        Some(200.0),
        "{log}"
    );
    assert_eq!(log["risk_reward"]["risk_amount"].as_f64(), Some(1000.0));
    assert_eq!(log["risk_reward"]["reward_amount"].as_f64(), Some(2000.0));
}

// ---------------------------------------------------------------- rule 6: gates

#[test]
fn gate_disabled_gives_hold_with_reason() {
    let ml = MlServer::start();
    ml.set_symbol(BTC, "bullish", 0.87, 45000.0, "accumulation");
    let log = decide_once(&ml, "enabled = false", "");
    assert_eq!(log["decision"]["action"], "HOLD", "{log}");
    assert_eq!(log["status"], "hold");
    assert!(log["risk_reward"].is_null());
    assert!(reasoning(&log).contains("disabled"), "{log}");
}

#[test]
fn gate_kill_switch_gives_hold_with_reason() {
    let ml = MlServer::start();
    ml.set_symbol(BTC, "bullish", 0.87, 45000.0, "accumulation");
    let dir = setup(&ml, "", "");
    let (code, _, err) = run(dir.path(), &["kill"]);
    assert_eq!(code, 0, "{err}");
    let log = only(dir.path());
    assert_eq!(log["decision"]["action"], "HOLD", "{log}");
    assert!(reasoning(&log).contains("kill switch"), "{log}");
}

#[test]
fn gate_open_position_on_the_symbol_gives_hold() {
    let ml = MlServer::start();
    ml.set_symbol(BTC, "bullish", 0.87, 45000.0, "accumulation");
    let dir = setup(&ml, "require_confirmation = false", "");
    let first = only(dir.path());
    assert_eq!(first["status"], "executed", "{first}");
    let second = only(dir.path());
    assert_eq!(second["decision"]["action"], "HOLD", "{second}");
    assert_eq!(second["status"], "hold");
    let r = reasoning(&second);
    assert!(r.contains("BTC/USD") && r.contains("open position"), "{r}");
}

#[test]
fn gate_pending_decision_on_the_symbol_gives_hold() {
    let ml = MlServer::start();
    ml.set_symbol(BTC, "bullish", 0.87, 45000.0, "accumulation");
    let dir = setup(&ml, "require_confirmation = true", "");
    assert_eq!(only(dir.path())["status"], "pending");
    let second = only(dir.path());
    assert_eq!(second["decision"]["action"], "HOLD", "{second}");
    assert!(reasoning(&second).contains("pending"), "{second}");
    assert_eq!(decisions_json(dir.path(), &["--pending"]).len(), 1);
}

#[test]
fn gate_max_open_positions_gives_hold_naming_the_limit() {
    let ml = MlServer::start();
    for (s, p) in [
        ("BTC/USD", 45000.0),
        ("ETH/USD", 2500.0),
        ("SOL/USD", 100.0),
    ] {
        ml.set_symbol(s, "bullish", 0.87, p, "accumulation");
    }
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\", \"SOL/USD\"]\nrequire_confirmation = false\nmax_open_positions = 2",
        "",
    );
    let logs = once_json(dir.path());
    let executed: Vec<_> = logs.iter().filter(|l| l["status"] == "executed").collect();
    let held: Vec<_> = logs.iter().filter(|l| l["status"] == "hold").collect();
    assert_eq!(executed.len(), 2, "{logs:?}");
    assert_eq!(held.len(), 1, "{logs:?}");
    let r = reasoning(held[0]);
    assert!(r.contains("max_open_positions") && r.contains('2'), "{r}");
}

// ---------------------------------------------------------------- rule 2: bad inputs

#[test]
fn http_500_on_the_signal_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set(
        &signal_path(BTC),
        Reply::status(500, "{\"detail\":\"boom\"}"),
    );
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["ML signal", "HTTP 500"]);
}

#[test]
fn http_404_on_the_phase_endpoint_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, signal("bullish", 0.87, 45000.0));
    // No phase reply: the fixture answers 404.
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["AMD phase", "HTTP 404"]);
    assert_eq!(ml.hits(&phase_path(BTC)), 1);
}

#[test]
fn malformed_json_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set(
        &signal_path(BTC),
        Reply::status(200, "{\"direction\": \"bullish\", "),
    );
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["ML signal", "malformed JSON"]);
}

#[test]
fn nan_literal_in_the_body_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set(
        &signal_path(BTC),
        Reply::status(
            200,
            r#"{"direction": "bullish", "confidence": 0.87, "entry_price": NaN,
               "take_profit": 47500.0, "stop_loss": 44000.0, "risk_reward_ratio": 2.5}"#,
        ),
    );
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["ML signal", "malformed JSON"]);
}

#[test]
fn nan_string_price_is_an_untrusted_hold() {
    let ml = MlServer::start();
    let mut s = signal("bullish", 0.87, 45000.0);
    s["entry_price"] = json!("NaN");
    ml.set_signal(BTC, s);
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["entry_price", "NaN", "not finite"]);
}

#[test]
fn infinite_string_take_profit_is_an_untrusted_hold() {
    let ml = MlServer::start();
    let mut s = signal("bullish", 0.87, 45000.0);
    s["take_profit"] = json!("Infinity");
    ml.set_signal(BTC, s);
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["take_profit", "not finite"]);
}

#[test]
fn signal_confidence_above_one_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, signal("bullish", 1.7, 45000.0));
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["confidence 1.7", "0..=1"]);
}

#[test]
fn phase_confidence_below_zero_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, signal("bullish", 0.87, 45000.0));
    ml.set_phase(BTC, phase("accumulation", -0.2));
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["AMD phase", "confidence -0.2"]);
}

#[test]
fn stop_loss_equal_to_entry_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bullish", 0.87, 50.0, 50.0, 55.0));
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["stop_loss 50 equals entry_price 50"]);
}

#[test]
fn buy_with_take_profit_below_entry_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bullish", 0.87, 100.0, 95.0, 98.0));
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["BUY", "take_profit 98", "entry_price 100"]);
}

#[test]
fn buy_with_stop_loss_above_entry_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bullish", 0.87, 100.0, 101.0, 110.0));
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["BUY", "stop_loss 101", "entry_price 100"]);
}

#[test]
fn sell_with_take_profit_above_entry_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bearish", 0.87, 100.0, 105.0, 102.0));
    ml.set_phase(BTC, phase("distribution", 0.8));
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["SELL", "take_profit 102", "entry_price 100"]);
}

#[test]
fn sell_with_stop_loss_below_entry_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bearish", 0.87, 100.0, 98.0, 90.0));
    ml.set_phase(BTC, phase("distribution", 0.8));
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["SELL", "stop_loss 98", "entry_price 100"]);
}

#[test]
fn negative_entry_price_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bullish", 0.87, -5.0, -6.0, -4.0));
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["entry_price -5", "not > 0"]);
}

#[test]
fn negative_stop_loss_and_zero_take_profit_are_untrusted_holds() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bullish", 0.87, 100.0, -1.0, 110.0));
    bullish_phase(&ml);
    assert_untrusted(&decide_once(&ml, "", ""), &["stop_loss -1", "not > 0"]);
    ml.set_signal(BTC, levels("bullish", 0.87, 100.0, 95.0, 0.0));
    assert_untrusted(&decide_once(&ml, "", ""), &["take_profit 0", "not > 0"]);
}

#[test]
fn unknown_phase_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, signal("bullish", 0.87, 45000.0));
    ml.set_phase(BTC, phase("sideways", 0.8));
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["unknown phase", "sideways"]);
    assert!(log["decision"]["amd_phase"].is_null(), "{log}");
}

#[test]
fn unknown_direction_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, signal("sideways-up", 0.87, 45000.0));
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_untrusted(&log, &["unknown direction", "sideways-up"]);
}

#[test]
fn missing_field_is_an_untrusted_hold_naming_it() {
    let ml = MlServer::start();
    let mut s = signal("bullish", 0.87, 45000.0);
    s.as_object_mut().unwrap().remove("stop_loss");
    ml.set_signal(BTC, s);
    bullish_phase(&ml);
    assert_untrusted(&decide_once(&ml, "", ""), &["missing field stop_loss"]);
    ml.set_signal(BTC, signal("bullish", 0.87, 45000.0));
    ml.set_phase(BTC, json!({"phase": "accumulation"}));
    assert_untrusted(
        &decide_once(&ml, "", ""),
        &["AMD phase", "missing field confidence"],
    );
}

#[test]
fn a_json_array_instead_of_an_object_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, json!([1, 2, 3]));
    bullish_phase(&ml);
    assert_untrusted(&decide_once(&ml, "", ""), &["expected a JSON object"]);
}

#[test]
fn a_stall_longer_than_the_timeout_is_an_untrusted_hold() {
    let ml = MlServer::start();
    ml.set_signal(BTC, signal("bullish", 0.87, 45000.0));
    ml.set(
        &phase_path(BTC),
        Reply::Json(phase("accumulation", 0.8)).delayed(Duration::from_secs(10)),
    );
    let dir = tempfile::tempdir().unwrap();
    write_config_timeout(
        dir.path(),
        &ml.url,
        0.5,
        &format!("symbols = [\"{BTC}\"]"),
        "",
    );
    let started = Instant::now();
    let log = only(dir.path());
    let elapsed = started.elapsed();
    assert_untrusted(&log, &["AMD phase", "timed out after 0.5s"]);
    assert!(elapsed < Duration::from_secs(5), "once took {elapsed:?}");
}

#[test]
fn a_body_over_one_mib_is_refused() {
    let ml = MlServer::start();
    let mut s = signal("bullish", 0.87, 45000.0);
    s["padding"] = json!("x".repeat(1024 * 1024 + 16));
    ml.set_signal(BTC, s);
    bullish_phase(&ml);
    assert_untrusted(&decide_once(&ml, "", ""), &["ML signal", "1 MiB"]);
}

#[test]
fn a_body_just_under_one_mib_is_accepted() {
    let ml = MlServer::start();
    let mut s = signal("bullish", 0.87, 45000.0);
    s["padding"] = json!("x".repeat(1024 * 1024 - 1024));
    ml.set_signal(BTC, s);
    bullish_phase(&ml);
    let log = decide_once(&ml, "", "");
    assert_eq!(log["decision"]["action"], "BUY", "{}", reasoning(&log));
}

/// A bare HTTP/1.1 server (one request per connection) that answers the phase normally
/// and hands the signal's connection to `signal`, to misbehave in ways axum would not.
fn raw_server(signal: fn(&mut TcpStream)) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                if String::from_utf8_lossy(&req).contains("/amd/phase/") {
                    let body = phase("accumulation", 0.8).to_string();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                } else {
                    signal(&mut stream);
                }
            });
        }
    });
    format!("http://{addr}")
}

/// A chunked body (no Content-Length) of 4 MiB.
fn chunked_4_mib(stream: &mut TcpStream) {
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..64 {
        if write!(stream, "{:x}\r\n", chunk.len()).is_err()
            || stream.write_all(&chunk).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            return;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
}

/// Headers at once, then a body that stops halfway and never finishes.
fn body_stalls(stream: &mut TcpStream) {
    let body = signal("bullish", 0.87, 45000.0).to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        body.len(),
        &body[..body.len() / 2]
    );
    let _ = stream.flush();
    // Hold the connection open until the client gives up and closes it.
    let mut buf = [0u8; 64];
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}

#[test]
fn a_chunked_body_over_one_mib_is_refused_while_streaming() {
    let url = raw_server(chunked_4_mib);
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&url),
        &format!("symbols = [\"{BTC}\"]"),
        "",
    );
    let log = only(dir.path());
    assert_untrusted(&log, &["ML signal", "over the 1 MiB limit"]);
}

#[test]
fn a_refused_connection_is_an_untrusted_hold_and_once_exits_1() {
    let url = {
        let ml = MlServer::start();
        ml.url.clone()
    };
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&url),
        "symbols = [\"BTC/USD\", \"ETH/USD\"]",
        "",
    );
    let (code, out, err) = run(dir.path(), &["once", "--json"]);
    assert_eq!(code, 1, "every symbol failed at the source: {err}");
    let logs = json_lines(&out);
    assert_eq!(logs.len(), 2);
    for log in &logs {
        assert_untrusted(log, &["unavailable", "cannot connect"]);
    }
}

#[test]
fn a_bad_symbol_does_not_spoil_the_others_in_its_cycle() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.87, 45000.0, "accumulation");
    ml.set(&signal_path("ETH/USD"), Reply::status(503, "down"));
    ml.set_phase("ETH/USD", phase("accumulation", 0.8));
    ml.set_symbol("SOL/USD", "bearish", 0.9, 100.0, "distribution");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\", \"SOL/USD\"]",
        "",
    );
    let logs = once_json(dir.path());
    let by = |s: &str| logs.iter().find(|l| l["decision"]["symbol"] == s).unwrap();
    assert_eq!(by("BTC/USD")["decision"]["action"], "BUY");
    assert_untrusted(by("ETH/USD"), &["HTTP 503"]);
    assert_eq!(by("SOL/USD")["decision"]["action"], "SELL");
}

// ---------------------------------------------------------------- concurrency

fn many_symbols() -> Vec<String> {
    let mut v = vec!["BTC/USD".to_string()];
    v.extend((1..15).map(|i| format!("C{i}/USD")));
    v
}

#[test]
fn fifteen_symbols_with_one_stalled_finish_in_about_the_timeout() {
    const TIMEOUT: f64 = 0.5;
    let ml = MlServer::start();
    let symbols = many_symbols();
    let stalled = "C7/USD";
    let each = Duration::from_millis(400);
    for (i, s) in symbols.iter().enumerate() {
        let entry = 100.0 + i as f64;
        ml.set(
            &signal_path(s),
            Reply::Json(signal("bullish", 0.87, entry)).delayed(each),
        );
        ml.set(
            &phase_path(s),
            Reply::Json(phase("accumulation", 0.8)).delayed(each),
        );
    }
    ml.set(
        &signal_path(stalled),
        Reply::Json(signal("bullish", 0.87, 100.0)).delayed(Duration::from_secs(30)),
    );
    let list = symbols
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let dir = tempfile::tempdir().unwrap();
    write_config_timeout(
        dir.path(),
        &ml.url,
        TIMEOUT,
        &format!("symbols = [{list}]\nmax_open_positions = 20"),
        "",
    );
    let started = Instant::now();
    let logs = once_json(dir.path());
    let elapsed = started.elapsed();
    // Sequentially: 14 symbols × 2 requests × 0.4 s, plus the stalled symbol's timeout.
    let sum_of_delays = Duration::from_secs_f64(14.0 * 2.0 * 0.4 + TIMEOUT);
    assert!(
        elapsed < Duration::from_secs_f64(TIMEOUT + 2.5),
        "a cycle with one stalled symbol took {elapsed:?}; the timeout is {TIMEOUT}s"
    );
    assert!(
        elapsed * 3 < sum_of_delays,
        "{elapsed:?} vs {sum_of_delays:?}"
    );
    assert_eq!(logs.len(), 15);
    for log in &logs {
        let s = log["decision"]["symbol"].as_str().unwrap();
        if s == stalled {
            assert_untrusted(log, &["ML signal", "timed out after 0.5s"]);
        } else {
            assert_eq!(log["decision"]["action"], "BUY", "{log}");
        }
    }
    for s in &symbols {
        assert_eq!(ml.hits(&signal_path(s)), 1, "{s}");
        assert_eq!(ml.hits(&phase_path(s)), 1, "{s}");
    }
}

#[test]
fn both_endpoints_are_asked_with_the_symbol_percent_encoded() {
    let ml = MlServer::start();
    ml.set_symbol(BTC, "bullish", 0.87, 45000.0, "accumulation");
    let log = decide_once(&ml, "", "");
    assert_eq!(log["decision"]["action"], "BUY");
    assert_eq!(ml.hits("/api/v1/signals/BTC%2FUSD"), 1);
    assert_eq!(ml.hits("/api/v1/amd/phase/BTC%2FUSD"), 1);
    assert_eq!(ml.hits("/api/v1/signals/BTC/USD"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_run_cycle_asks_both_endpoints_of_a_symbol_at_once() {
    use autotrade_tui::engine::Engine;
    use autotrade_tui::ml_engine::MlEngineClient;
    use autotrade_tui::store::Store;
    use std::sync::Arc;
    let ml = MlServer::start();
    let each = Duration::from_millis(600);
    let symbols = ["BTC/USD", "ETH/USD", "SOL/USD"];
    for s in symbols {
        ml.set(
            &signal_path(s),
            Reply::Json(signal("bullish", 0.87, 100.0)).delayed(each),
        );
        ml.set(
            &phase_path(s),
            Reply::Json(phase("accumulation", 0.8)).delayed(each),
        );
    }
    let config = autotrade_tui::config::parse_str(
        &format!(
            "[auto_trade]\nsymbols = [\"BTC/USD\", \"ETH/USD\", \"SOL/USD\"]\n[ml_engine]\nurl = \"{}\"\ntimeout_seconds = 5\n",
            ml.url
        ),
        "test",
    )
    .unwrap();
    let store = Arc::new(Store::open_in_memory("default", true).unwrap());
    let client = MlEngineClient::new(&ml.url, Duration::from_secs(5), 64).unwrap();
    let desk = autotrade_tui::desk::Desk::new(Arc::new(config), "unused".into(), store.clone());
    let engine = Engine::new(desk, Arc::new(client));
    let started = Instant::now();
    let (views, summary) = engine.run_cycle().await;
    let elapsed = started.elapsed();
    assert_eq!(views.len(), 3);
    assert_eq!(summary.actionable, 3);
    // Six requests of 0.6 s each: 3.6 s one after another, 0.6 s all at once.
    assert!(elapsed >= each, "{elapsed:?}");
    assert!(
        elapsed < each * 3,
        "the requests were not concurrent: {elapsed:?}"
    );
    assert_eq!(store.count_decisions(None).unwrap(), 3);
}

#[test]
fn a_body_that_stalls_after_the_headers_times_out() {
    let url = raw_server(body_stalls);
    let dir = tempfile::tempdir().unwrap();
    write_config_timeout(dir.path(), &url, 0.5, &format!("symbols = [\"{BTC}\"]"), "");
    let started = Instant::now();
    let log = only(dir.path());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_untrusted(&log, &["ML signal", "timed out after 0.5s"]);
}

// ---------------------------------------------------------------- rule 8: paper execution

#[test]
fn a_later_price_through_take_profit_closes_the_position_with_its_pnl() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bullish", 0.87, 45000.0, 44000.0, 47500.0));
    bullish_phase(&ml);
    let dir = setup(&ml, "require_confirmation = false", ACCOUNT);
    let first = only(dir.path());
    assert_eq!(first["status"], "executed", "{first}");
    // The next cycle's signal says the price is 48000: through the 47500 take-profit.
    ml.set_signal(BTC, levels("bullish", 0.87, 48000.0, 47000.0, 50000.0));
    let (code, out, err) = run(dir.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out)[0]["open_positions"], 1);
    once_json(dir.path());
    let (_, out, _) = run(dir.path(), &["status", "--json"]);
    let st = &json_lines(&out)[0];
    // 0.04444444 × (47500 − 45000) = 111.1111: the take-profit fills at its own price.
    assert_eq!(st["realized_pnl"].as_f64(), Some(111.11), "{st}");
}

#[test]
fn a_later_price_through_the_stop_closes_the_position_at_a_loss() {
    let ml = MlServer::start();
    ml.set_signal(BTC, levels("bullish", 0.87, 45000.0, 44000.0, 47500.0));
    bullish_phase(&ml);
    let dir = setup(&ml, "require_confirmation = false", ACCOUNT);
    assert_eq!(only(dir.path())["status"], "executed");
    // A neutral signal at 43000: the stop is crossed, and nothing new is opened.
    ml.set_signal(BTC, levels("neutral", 0.5, 43000.0, 42000.0, 44000.0));
    assert_eq!(only(dir.path())["decision"]["action"], "HOLD");
    let (_, out, _) = run(dir.path(), &["status", "--json"]);
    let st = &json_lines(&out)[0];
    assert_eq!(st["open_positions"], 0, "{st}");
    // The stop fills at the price that crossed it: 0.04444444 × (43000 − 45000).
    assert_eq!(st["realized_pnl"].as_f64(), Some(-88.89), "{st}");
    assert_eq!(st["equity"].as_f64(), Some(10000.0 - 88.89), "{st}");
}

// ---------------------------------------------------------------- the monitoring loop

mod monitoring_loop {
    use super::*;
    use autotrade_tui::engine::{Engine, EngineCommand, EngineEvent, Health};
    use autotrade_tui::ml_engine::MlEngineClient;
    use autotrade_tui::store::{Status, Store};
    use std::sync::Arc;
    use tokio::sync::mpsc;

    fn engine(url: &str, interval_minutes: f64) -> (Engine, Arc<Store>) {
        let config = autotrade_tui::config::parse_str(
            &format!(
                "[auto_trade]\nsymbols = [\"BTC/USD\"]\ncheck_interval_minutes = {interval_minutes}\n\
                 [ml_engine]\nurl = \"{url}\"\ntimeout_seconds = 2\n"
            ),
            "test",
        )
        .unwrap();
        let store = Arc::new(Store::open_in_memory("default", true).unwrap());
        let client = MlEngineClient::new(url, Duration::from_secs(2), 8).unwrap();
        let desk = autotrade_tui::desk::Desk::new(Arc::new(config), "unused".into(), store.clone());
        (Engine::new(desk, Arc::new(client)), store)
    }

    /// Events up to and including the next CycleFinished and NextCheck.
    async fn next_cycle(rx: &mut mpsc::Receiver<EngineEvent>) -> Vec<EngineEvent> {
        let mut seen = Vec::new();
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
                .await
                .expect("the loop went quiet")
                .expect("the loop ended");
            let done = matches!(ev, EngineEvent::NextCheck { .. });
            seen.push(ev);
            if done {
                return seen;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_each_cycle_after_storing_it_and_obeys_check_now_and_stop() {
        let ml = MlServer::start();
        ml.set_symbol(BTC, "bullish", 0.87, 45000.0, "accumulation");
        let (engine, store) = engine(&ml.url, 60.0);
        let (tx, mut rx) = mpsc::channel(64);
        let (commands, handle) = engine.spawn(tx);

        let first = next_cycle(&mut rx).await;
        assert!(matches!(first[0], EngineEvent::CycleStarted), "{first:?}");
        let view = first
            .iter()
            .find_map(|e| match e {
                EngineEvent::Symbol(v) => Some(v.clone()),
                _ => None,
            })
            .expect("a Symbol event");
        let outcome = view.outcome.as_ref().expect("stored");
        assert_eq!(outcome.log.status, Status::Pending);
        // Stored before anyone heard of it.
        assert!(store.decision(&outcome.log.log_id).unwrap().is_some());
        assert!(
            first
                .iter()
                .any(|e| matches!(e, EngineEvent::Health(Health::Ok)))
        );
        let summary = first
            .iter()
            .find_map(|e| match e {
                EngineEvent::CycleFinished(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!((summary.symbols, summary.actionable), (1, 1));
        let EngineEvent::NextCheck { at_ms } = first.last().unwrap() else {
            unreachable!()
        };
        let in_ms = at_ms - autotrade_tui::store::now_ms();
        assert!(
            (3_500_000..=3_600_000).contains(&in_ms),
            "next check in {in_ms} ms"
        );

        // `r` on the dashboard: a cycle now, not in an hour.
        commands.send(EngineCommand::CheckNow).await.unwrap();
        let second = next_cycle(&mut rx).await;
        let held = second.iter().any(|e| {
            matches!(e, EngineEvent::Symbol(v)
                if v.outcome.as_ref().is_ok_and(|o| o.log.decision.reasoning.contains("pending")))
        });
        assert!(
            held,
            "the second cycle sees the pending decision: {second:?}"
        );
        assert_eq!(store.count_decisions(None).unwrap(), 2);

        commands.send(EngineCommand::Stop).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("the loop stops")
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_an_unreachable_source_and_backs_off() {
        let url = MlServer::start().url.clone();
        let (engine, store) = engine(&url, 0.01);
        let (tx, mut rx) = mpsc::channel(64);
        let (commands, handle) = engine.spawn(tx);
        let events = next_cycle(&mut rx).await;
        let health = events
            .iter()
            .find_map(|e| match e {
                EngineEvent::Health(h) => Some(h.clone()),
                _ => None,
            })
            .unwrap();
        match health {
            Health::Unreachable { message, failures } => {
                assert_eq!(failures, 1);
                assert!(message.contains("cannot connect"), "{message}");
            }
            Health::Ok => panic!("a dead source is not healthy"),
        }
        // Back-off: not the 0.6 s interval but about 2 s (± 20 %) after the first failure.
        let EngineEvent::NextCheck { at_ms } = events.last().unwrap() else {
            unreachable!()
        };
        assert!(at_ms - autotrade_tui::store::now_ms() >= 1_000, "backs off");
        let recent = store.recent_events(20).unwrap();
        assert!(
            recent.iter().any(|e| e.message.contains("unreachable")),
            "{recent:?}"
        );
        // The failed symbol is still a stored HOLD with its reason.
        let logs = store.decisions(10, None).unwrap();
        assert_eq!(logs.len(), 1);
        assert!(logs[0].decision.reasoning.contains("cannot connect"));
        commands.send(EngineCommand::Stop).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .unwrap()
            .unwrap();
    }
}
