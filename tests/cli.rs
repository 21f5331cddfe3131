#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The command line as scripts use it: confirm/cancel, the decision log and its filters,
//! auto-execution under max_open_positions, status, enable/disable/kill, exit codes, and
//! config errors (exit 2, naming the key and the file).

mod support;
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::path::Path;
use support::*;
use tempfile::TempDir;

const THREE: &str = "symbols = [\"BTC/USD\", \"ETH/USD\", \"SOL/USD\"]";

/// An ML engine where BTC, ETH and SOL are all actionable (BUY, SELL, BUY).
fn three_actionable() -> MlServer {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.87, 45000.0, "accumulation");
    ml.set_symbol("ETH/USD", "bearish", 0.9, 2500.0, "distribution");
    ml.set_symbol("SOL/USD", "bullish", 0.9, 100.0, "accumulation");
    ml
}

fn setup(ml: &MlServer, auto_trade: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), Some(&ml.url), auto_trade, "");
    dir
}

fn id_of<'a>(logs: &'a [Value], symbol: &str) -> &'a str {
    logs.iter()
        .find(|l| l["decision"]["symbol"] == symbol)
        .and_then(|l| l["log_id"].as_str())
        .unwrap_or_else(|| panic!("no decision for {symbol} in {logs:?}"))
}

fn status_json(dir: &Path) -> Value {
    let (code, out, err) = run(dir, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let mut v = json_lines(&out);
    assert_eq!(v.len(), 1, "{out}");
    v.remove(0)
}

fn find<'a>(logs: &'a [Value], log_id: &str) -> &'a Value {
    logs.iter()
        .find(|l| l["log_id"] == log_id)
        .unwrap_or_else(|| panic!("{log_id} not in {logs:?}"))
}

/// What a refused command must leave untouched: the whole log and the status.
fn snapshot(dir: &Path) -> (Vec<Value>, Value) {
    let mut st = status_json(dir);
    st.as_object_mut().unwrap().remove("last_cycle");
    (decisions_json(dir, &[]), st)
}

// ---------------------------------------------------------------- confirm and cancel

#[test]
fn confirm_executes_a_pending_decision() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let logs = once_json(dir.path());
    assert_eq!(logs[0]["status"], "pending");
    let id = id_of(&logs, "BTC/USD");
    let (code, out, err) = run(dir.path(), &["confirm", id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("executed") && out.contains("BTC/USD"), "{out}");
    let after = decisions_json(dir.path(), &[]);
    let log = find(&after, id);
    assert_eq!(log["status"], "executed");
    assert_eq!(log["executed"], true);
    assert!(log["executed_at"].as_str().unwrap().ends_with('Z'), "{log}");
    let st = status_json(dir.path());
    assert_eq!(st["open_positions"], 1);
    assert_eq!(st["pending"], 0);
}

#[test]
fn cancel_cancels_a_pending_decision() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let logs = once_json(dir.path());
    let id = id_of(&logs, "BTC/USD");
    let (code, out, err) = run(dir.path(), &["cancel", id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cancelled"), "{out}");
    let log = decisions_json(dir.path(), &[]).remove(0);
    assert_eq!(log["log_id"], id);
    assert_eq!(log["status"], "cancelled");
    assert_eq!(log["executed"], false);
    assert!(log["executed_at"].is_null());
    let st = status_json(dir.path());
    assert_eq!(
        (st["open_positions"].as_u64(), st["pending"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn a_second_confirm_exits_1_and_changes_nothing() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let id = id_of(&once_json(dir.path()), "BTC/USD").to_string();
    assert_eq!(run(dir.path(), &["confirm", &id]).0, 0);
    let before = snapshot(dir.path());
    let (code, out, err) = run(dir.path(), &["confirm", &id]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains(&id) && err.contains("not pending"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(status_json(dir.path())["open_positions"], 1);
}

#[test]
fn confirm_after_cancel_exits_1_and_changes_nothing() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let id = id_of(&once_json(dir.path()), "BTC/USD").to_string();
    assert_eq!(run(dir.path(), &["cancel", &id]).0, 0);
    let before = snapshot(dir.path());
    let (code, _, err) = run(dir.path(), &["confirm", &id]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cancelled") && err.contains("not pending"),
        "{err}"
    );
    let (code, _, err) = run(dir.path(), &["cancel", &id]);
    assert_eq!(code, 1, "a second cancel is refused too");
    assert!(err.contains("not pending"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn cancel_after_confirm_exits_1_and_keeps_the_position() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let id = id_of(&once_json(dir.path()), "BTC/USD").to_string();
    assert_eq!(run(dir.path(), &["confirm", &id]).0, 0);
    let before = snapshot(dir.path());
    let (code, _, err) = run(dir.path(), &["cancel", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("executed"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn an_unknown_id_exits_1_with_a_message_and_changes_nothing() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    once_json(dir.path());
    let before = snapshot(dir.path());
    for cmd in ["confirm", "cancel"] {
        for id in ["decision_000000000000", "not-an-id"] {
            let (code, out, err) = run(dir.path(), &[cmd, id]);
            assert_eq!(code, 1, "{cmd} {id}: {out}");
            assert!(err.contains(id), "{cmd} {id}: {err}");
        }
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn confirm_rechecks_max_open_positions() {
    let ml = three_actionable();
    let dir = setup(&ml, &format!("{THREE}\nmax_open_positions = 1"));
    let logs = once_json(dir.path());
    assert_eq!(logs.iter().filter(|l| l["status"] == "pending").count(), 3);
    let btc = id_of(&logs, "BTC/USD");
    let eth = id_of(&logs, "ETH/USD");
    assert_eq!(run(dir.path(), &["confirm", btc]).0, 0);
    let (code, _, err) = run(dir.path(), &["confirm", eth]);
    assert_eq!(code, 1);
    assert!(err.contains("max_open_positions"), "{err}");
    assert_eq!(
        find(&decisions_json(dir.path(), &[]), eth)["status"],
        "pending"
    );
}

#[test]
fn confirm_is_refused_while_auto_trading_is_disabled() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let id = id_of(&once_json(dir.path()), "BTC/USD").to_string();
    assert_eq!(run(dir.path(), &["disable"]).0, 0);
    let (code, _, err) = run(dir.path(), &["confirm", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("disabled"), "{err}");
    assert_eq!(status_json(dir.path())["open_positions"], 0);
}

#[test]
fn confirming_an_expired_decision_is_refused() {
    let ml = three_actionable();
    // 0.00001 minutes is 0.6 ms: older than that by the time another process reads it.
    let dir = setup(
        &ml,
        "symbols = [\"BTC/USD\"]\npending_expiry_minutes = 0.00001",
    );
    let id = id_of(&once_json(dir.path()), "BTC/USD").to_string();
    let (code, _, err) = run(dir.path(), &["confirm", &id]);
    assert_eq!(code, 1);
    assert!(
        err.contains("expired") || err.contains("not pending"),
        "{err}"
    );
    assert_eq!(
        find(&decisions_json(dir.path(), &[]), &id)["status"],
        "expired"
    );
    assert_eq!(status_json(dir.path())["open_positions"], 0);
}

// ---------------------------------------------------------------- the decision log

/// Two cycles over BTC, ETH, SOL with BTC confirmed and ETH cancelled in between:
/// 1st: BTC pending→executed, ETH pending→cancelled, SOL pending;
/// 2nd: BTC hold (open position), ETH pending, SOL hold (pending).
fn two_cycles() -> (MlServer, TempDir, Vec<Value>, Vec<Value>) {
    let ml = three_actionable();
    let dir = setup(&ml, THREE);
    let first = once_json(dir.path());
    assert_eq!(run(dir.path(), &["confirm", id_of(&first, "BTC/USD")]).0, 0);
    assert_eq!(run(dir.path(), &["cancel", id_of(&first, "ETH/USD")]).0, 0);
    let second = once_json(dir.path());
    (ml, dir, first, second)
}

#[test]
fn decisions_lists_every_decision_newest_first() {
    let (_ml, dir, first, second) = two_cycles();
    let all = decisions_json(dir.path(), &[]);
    let ids: Vec<&str> = all.iter().map(|l| l["log_id"].as_str().unwrap()).collect();
    let expected = [
        id_of(&second, "SOL/USD"),
        id_of(&second, "ETH/USD"),
        id_of(&second, "BTC/USD"),
        id_of(&first, "SOL/USD"),
        id_of(&first, "ETH/USD"),
        id_of(&first, "BTC/USD"),
    ];
    assert_eq!(ids, expected);
    let statuses: Vec<&str> = all.iter().map(|l| l["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        [
            "hold",
            "pending",
            "hold",
            "pending",
            "cancelled",
            "executed"
        ]
    );
    let created: Vec<&str> = all
        .iter()
        .map(|l| l["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
}

#[test]
fn decisions_pending_shows_only_pending_newest_first() {
    let (_ml, dir, first, second) = two_cycles();
    let pending = decisions_json(dir.path(), &["--pending"]);
    let ids: Vec<&str> = pending
        .iter()
        .map(|l| l["log_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id_of(&second, "ETH/USD"), id_of(&first, "SOL/USD")]);
    assert!(pending.iter().all(|l| l["status"] == "pending"));
}

#[test]
fn decisions_executed_only_shows_only_executed() {
    let (_ml, dir, first, _) = two_cycles();
    let executed = decisions_json(dir.path(), &["--executed-only"]);
    assert_eq!(executed.len(), 1, "{executed:?}");
    assert_eq!(executed[0]["log_id"], id_of(&first, "BTC/USD"));
    assert_eq!(executed[0]["executed"], true);
}

#[test]
fn decisions_limit_keeps_the_newest() {
    let (_ml, dir, _, second) = two_cycles();
    let two = decisions_json(dir.path(), &["--limit", "2"]);
    let ids: Vec<&str> = two.iter().map(|l| l["log_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id_of(&second, "SOL/USD"), id_of(&second, "ETH/USD")]);
    assert_eq!(
        decisions_json(dir.path(), &["--limit", "1", "--pending"]).len(),
        1
    );
    assert!(decisions_json(dir.path(), &["--limit", "0"]).is_empty());
}

#[test]
fn decisions_limit_defaults_to_50() {
    let ml = MlServer::start();
    let symbols: Vec<String> = (0..26).map(|i| format!("S{i}/USD")).collect();
    for s in &symbols {
        ml.set_symbol(s, "neutral", 0.5, 10.0, "accumulation");
    }
    let list = symbols
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let dir = setup(&ml, &format!("symbols = [{list}]"));
    once_json(dir.path());
    once_json(dir.path());
    assert_eq!(decisions_json(dir.path(), &[]).len(), 50);
    assert_eq!(decisions_json(dir.path(), &["--limit", "100"]).len(), 52);
}

fn is_lower_hex_id(id: &str) -> bool {
    id.strip_prefix("decision_").is_some_and(|h| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

fn is_utc_timestamp(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z')
}

#[test]
fn decision_json_has_the_spec_shape() {
    let ml = three_actionable();
    ml.set_symbol("XRP/USD", "neutral", 0.5, 1.0, "manipulation");
    let dir = setup(&ml, "symbols = [\"BTC/USD\", \"XRP/USD\"]");
    once_json(dir.path());
    let logs = decisions_json(dir.path(), &[]);
    assert_eq!(logs.len(), 2);
    let mut ids = std::collections::HashSet::new();
    for log in &logs {
        for key in [
            "log_id",
            "created_at",
            "status",
            "executed",
            "executed_at",
            "mode",
            "decision",
            "risk_reward",
        ] {
            assert!(log.get(key).is_some(), "{key} missing: {log}");
        }
        let id = log["log_id"].as_str().unwrap();
        assert!(is_lower_hex_id(id), "{id}");
        assert!(ids.insert(id.to_string()), "duplicate {id}");
        assert!(
            is_utc_timestamp(log["created_at"].as_str().unwrap()),
            "{log}"
        );
        assert_eq!(log["executed"], false);
        assert!(log["executed_at"].is_null());
        assert_eq!(log["mode"], "paper");
        let d = &log["decision"];
        for key in [
            "symbol",
            "action",
            "confidence",
            "reasoning",
            "entry_price",
            "take_profit",
            "stop_loss",
            "position_size",
            "ml_signal",
            "amd_phase",
        ] {
            assert!(d.get(key).is_some(), "decision.{key} missing: {log}");
        }
        assert!(
            d["ml_signal"].is_object(),
            "the signal it was made from: {log}"
        );
    }
    let buy = logs
        .iter()
        .find(|l| l["decision"]["symbol"] == "BTC/USD")
        .unwrap();
    assert_eq!(buy["status"], "pending");
    assert_eq!(buy["decision"]["action"], "BUY");
    assert_eq!(buy["decision"]["ml_signal"]["direction"], "bullish");
    for key in [
        "risk_amount",
        "reward_amount",
        "risk_reward_ratio",
        "risk_percent",
        "reward_percent",
    ] {
        assert!(buy["risk_reward"][key].is_number(), "{key}: {buy}");
    }
    let hold = logs
        .iter()
        .find(|l| l["decision"]["symbol"] == "XRP/USD")
        .unwrap();
    assert_eq!(hold["status"], "hold");
    assert_eq!(hold["decision"]["action"], "HOLD");
    assert!(
        hold["risk_reward"].is_null(),
        "risk_reward is null on HOLD: {hold}"
    );
}

#[test]
fn once_json_prints_what_decisions_shows() {
    let ml = three_actionable();
    let dir = setup(&ml, THREE);
    let printed = once_json(dir.path());
    let stored = decisions_json(dir.path(), &[]);
    assert_eq!(
        printed, stored,
        "once prints exactly what it logged, newest first"
    );
}

#[test]
fn human_output_shows_ids_actions_and_reasons() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let (code, out, err) = run(dir.path(), &["decisions"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no decisions"), "{out}");
    let (code, out, err) = run(dir.path(), &["once"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("decision_") && out.contains("BUY") && out.contains("BTC/USD"),
        "{out}"
    );
    let (code, out, _) = run(dir.path(), &["decisions"]);
    assert_eq!(code, 0);
    assert!(out.contains("pending") && out.contains("bullish"), "{out}");
}

// ---------------------------------------------------------------- auto-execution

#[test]
fn without_confirmation_max_open_positions_1_executes_exactly_one() {
    let ml = three_actionable();
    let dir = setup(
        &ml,
        &format!("{THREE}\nrequire_confirmation = false\nmax_open_positions = 1"),
    );
    let first = once_json(dir.path());
    assert_eq!(first.len(), 3);
    let executed: Vec<&Value> = first.iter().filter(|l| l["status"] == "executed").collect();
    assert_eq!(executed.len(), 1, "{first:?}");
    assert_eq!(executed[0]["executed"], true);
    for l in first.iter().filter(|l| l["status"] != "executed") {
        assert_eq!(l["status"], "hold", "{l}");
        assert!(
            l["decision"]["reasoning"]
                .as_str()
                .unwrap()
                .contains("max_open_positions"),
            "{l}"
        );
    }
    let second = once_json(dir.path());
    assert_eq!(second.len(), 3);
    assert!(
        second.iter().all(|l| l["status"] == "hold"),
        "a second cycle executes none: {second:?}"
    );
    assert_eq!(decisions_json(dir.path(), &["--executed-only"]).len(), 1);
    assert!(decisions_json(dir.path(), &["--pending"]).is_empty());
    assert_eq!(status_json(dir.path())["open_positions"], 1);
}

// ---------------------------------------------------------------- status, enable, disable, kill

#[test]
fn status_json_reports_the_engine() {
    let ml = three_actionable();
    let dir = setup(
        &ml,
        &format!("{THREE}\nuser_id = \"trader7\"\nmax_open_positions = 2"),
    );
    let st = status_json(dir.path());
    assert_eq!(st["user_id"], "trader7");
    assert_eq!(st["enabled"], true);
    assert_eq!(st["mode"], "paper");
    assert_eq!(st["source"], "ml_engine");
    assert_eq!(
        st["symbols"],
        serde_json::json!(["BTC/USD", "ETH/USD", "SOL/USD"])
    );
    assert_eq!(st["open_positions"], 0);
    assert_eq!(st["max_open_positions"], 2);
    assert_eq!(st["pending"], 0);
    assert!(st["last_cycle"].is_null(), "{st}");
    once_json(dir.path());
    let st = status_json(dir.path());
    assert_eq!(st["pending"], 3);
    assert!(
        is_utc_timestamp(st["last_cycle"].as_str().unwrap_or("")),
        "{st}"
    );
    let (code, out, _) = run(dir.path(), &["status"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("trader7") && out.contains("PAPER") && out.contains("ML ENGINE"),
        "{out}"
    );
}

#[test]
fn status_on_the_simulated_market_names_the_analyzer_and_its_speed() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), None, "symbols = [\"BTC/USD\"]", "");
    let (code, out, err) = run(dir.path(), &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\nsource      SIMULATED: the built-in market and its analyzer\n"),
        "{out}"
    );
    assert!(
        out.contains("\nspeed       one 1-hour candle every 1.5 s = 2,400× real time\n"),
        "{out}"
    );
    assert!(!out.contains("ML"), "not an ML engine: {out}");
    // The speed is the config's, not a fixed text.
    write_config(
        dir.path(),
        None,
        "symbols = [\"BTC/USD\"]",
        "\n[simulation]\nseconds_per_candle = 0.75\n",
    );
    let (code, out, err) = run(dir.path(), &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\nspeed       one 1-hour candle every 0.75 s = 4,800× real time\n"),
        "{out}"
    );
}

#[test]
fn disable_then_enable() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    assert_eq!(run(dir.path(), &["disable"]).0, 0);
    assert_eq!(status_json(dir.path())["enabled"], false);
    let held = once_json(dir.path());
    assert_eq!(held[0]["status"], "hold");
    assert!(
        held[0]["decision"]["reasoning"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    assert_eq!(run(dir.path(), &["enable"]).0, 0);
    assert_eq!(status_json(dir.path())["enabled"], true);
    assert_eq!(once_json(dir.path())[0]["status"], "pending");
}

#[test]
fn kill_cancels_every_pending_and_once_then_queues_nothing() {
    let ml = three_actionable();
    let dir = setup(&ml, THREE);
    let first = once_json(dir.path());
    assert_eq!(first.iter().filter(|l| l["status"] == "pending").count(), 3);
    let (code, out, err) = run(dir.path(), &["kill"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains('3'), "says how many were cancelled: {out}");
    for l in decisions_json(dir.path(), &[]) {
        assert_eq!(l["status"], "cancelled", "{l}");
    }
    let st = status_json(dir.path());
    assert_eq!(
        (st["enabled"].as_bool(), st["kill_switch"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(st["pending"], 0);
    let after = once_json(dir.path());
    assert_eq!(after.len(), 3);
    for l in &after {
        assert_eq!(l["status"], "hold", "{l}");
        assert!(
            l["decision"]["reasoning"]
                .as_str()
                .unwrap()
                .contains("kill switch"),
            "{l}"
        );
    }
    assert!(decisions_json(dir.path(), &["--pending"]).is_empty());
    // `enable` clears the kill switch.
    assert_eq!(run(dir.path(), &["enable"]).0, 0);
    let st = status_json(dir.path());
    assert_eq!(
        (st["enabled"].as_bool(), st["kill_switch"].as_bool()),
        (Some(true), Some(false))
    );
}

#[test]
fn once_exits_1_when_every_symbol_failed_at_the_source() {
    let url = MlServer::start().url.clone();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), Some(&url), THREE, "");
    let (code, out, err) = run(dir.path(), &["once"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("3 unreachable"), "{out}");
    // Which source failed, and why, for every symbol.
    let err = err.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: the ML engine at {url} failed for every symbol (3 of 3)"
        )),
        "{err}"
    );
    for symbol in ["BTC/USD", "ETH/USD", "SOL/USD"] {
        assert!(
            err.contains(&format!("{symbol}: GET {url}/api/v1/")),
            "{err}"
        );
    }
    assert!(err.contains("cannot connect"), "{err}");
    let logs = decisions_json(dir.path(), &[]);
    assert_eq!(logs.len(), 3, "failed symbols are stored HOLDs");
    assert!(logs.iter().all(|l| l["status"] == "hold"));

    // With --json: the HOLDs on stdout, one JSON error on stderr.
    let (code, out, err) = run(dir.path(), &["once", "--json"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(json_lines(&out).len(), 3, "{out}");
    let e = one_json_error(&err);
    assert_eq!(e["error"], "source_failed");
    assert!(e["message"].as_str().unwrap().contains(&url), "{e}");
}

#[test]
fn once_exits_0_when_only_some_symbols_failed_at_the_source() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.87, 45000.0, "accumulation");
    ml.set(&signal_path("ETH/USD"), Reply::status(503, "{}"));
    // SOL/USD: no reply set, so the engine answers 404.
    let dir = setup(&ml, THREE);
    let (code, out, err) = run(dir.path(), &["once", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    let logs = json_lines(&out);
    assert_eq!(logs.len(), 3);
    assert_eq!(find(&logs, id_of(&logs, "BTC/USD"))["status"], "pending");
    let st = status_json(dir.path());
    assert_eq!(st["source_reachable"], true, "{st}");
    assert!(st["source_error"].is_null(), "{st}");
    assert_eq!(
        (&st["broker"], &st["broker_reachable"]),
        (&json!("paper"), &json!(true))
    );
    assert!(st["feed"].is_null(), "no live feed configured: {st}");
}

/// stderr that must be exactly one JSON error object: `{"error": kind, "message": text}`.
fn one_json_error(stderr: &str) -> Value {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one object on stderr: {stderr}");
    let v: Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{stderr}: {e}"));
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["error", "message"], "{v}");
    assert!(!v["message"].as_str().unwrap().is_empty(), "{v}");
    v
}

#[test]
fn status_says_whether_the_source_is_reachable_and_since_when() {
    let ml = MlServer::start();
    ml.set_every_symbol(Reply::status(503, "{}"), Reply::status(503, "{}"));
    let dir = setup(&ml, THREE);
    // Not checked yet.
    let st = status_json(dir.path());
    assert!(st["source_reachable"].is_null(), "{st}");
    assert!(st["source_since"].is_null(), "{st}");
    assert!(st["source_error"].is_null(), "{st}");
    let (_, out, _) = run(dir.path(), &["status"]);
    assert!(out.contains("reachable   not checked yet"), "{out}");

    // Down: since the first cycle that saw it down, with the reason.
    assert_eq!(run(dir.path(), &["once"]).0, 1);
    let down = status_json(dir.path());
    assert_eq!(down["source_reachable"], false, "{down}");
    let since = down["source_since"].as_str().unwrap().to_string();
    assert!(is_utc_timestamp(&since), "{down}");
    assert!(
        since.as_str() >= down["last_cycle"].as_str().unwrap(),
        "{down}"
    );
    let error = down["source_error"].as_str().unwrap();
    assert!(
        error.starts_with("BTC/USD: GET ") && error.contains("503"),
        "{down}"
    );
    let (_, out, _) = run(dir.path(), &["status"]);
    assert!(
        out.contains(&format!("reachable   NO, since {since}: BTC/USD: GET ")),
        "{out}"
    );
    // Still down: the time of the change stays.
    assert_eq!(run(dir.path(), &["once"]).0, 1);
    assert_eq!(status_json(dir.path())["source_since"], since.as_str());

    // Back up: reachable, since this cycle, no error.
    ml.set_symbol("BTC/USD", "bullish", 0.87, 45000.0, "accumulation");
    once_json(dir.path());
    let up = status_json(dir.path());
    assert_eq!(up["source_reachable"], true, "{up}");
    assert!(up["source_error"].is_null(), "{up}");
    let up_since = up["source_since"].as_str().unwrap();
    assert!(up_since >= since.as_str(), "{up}");
    let (_, out, _) = run(dir.path(), &["status"]);
    assert!(
        out.contains(&format!("reachable   yes, since {up_since}")),
        "{out}"
    );
}

#[test]
fn with_json_every_refusal_and_error_is_one_json_object_on_stderr() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let d = dir.path();
    let csv = d.join("missing.csv");
    let csv = csv.to_str().unwrap();
    for (args, kind, code) in [
        (&["trade", "DOGE/USD", "buy", "--json"][..], "refused", 1),
        (&["trade", "BTC-USD", "buy", "--json"], "usage", 2),
        (
            &["trade", "BTC/USD", "buy", "--size", "1000", "--json"],
            "refused",
            1,
        ),
        (&["status", "--json", "--user", "nobody"], "refused", 1),
        (&["positions", "--json", "--user", "nobody"], "refused", 1),
        (&["decisions", "--json", "--user", "nobody"], "refused", 1),
        (&["decisions", "--json", "--limit", "many"], "usage", 2),
        (&["once", "--json", "--no-such-flag"], "usage", 2),
        (&["backtest", "--candles", csv, "--json"], "refused", 1),
        (
            &[
                "backtest",
                "--candles",
                csv,
                "--symbol",
                "BTC-USD",
                "--json",
            ],
            "usage",
            2,
        ),
    ] {
        let (got, out, err) = run(d, args);
        assert_eq!(got, code, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        let e = one_json_error(&err);
        assert_eq!(e["error"], kind, "{args:?}: {e}");
        // Without --json the same failure is words.
        let words: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
        let (got, _, err) = run(d, &words);
        assert_eq!(got, code, "{words:?}: {err}");
        assert!(
            err.starts_with("refused: ") || err.starts_with("error: "),
            "{words:?}: {err}"
        );
    }
    // A bad config file: exit 2, kind config, naming the key.
    write_config(d, Some(&ml.url), "max_risk_percent = -1", "");
    for args in [
        &["once", "--json"][..],
        &["status", "--json"],
        &["decisions", "--json"],
        &["positions", "--json"],
        &["trade", "BTC/USD", "buy", "--json"],
    ] {
        let (code, _, err) = run(d, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        let e = one_json_error(&err);
        assert_eq!(e["error"], "config", "{e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("auto_trade.max_risk_percent"),
            "{e}"
        );
    }
}

// ---------------------------------------------------------------- usage

#[test]
fn usage_errors_exit_2() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    for args in [
        &["decisions", "--limit", "many"][..],
        &["decisions", "--limit", "-1"],
        &["decisions", "--pending", "--executed-only"],
        &["confirm"],
        &["no-such-command"],
    ] {
        let (code, _, err) = run(dir.path(), args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.is_empty(), "{args:?}");
    }
}

#[test]
fn global_flags_go_before_the_subcommand_too() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]\nuser_id = \"before\"");
    let d = dir.path();
    let args: Vec<&OsStr> = vec![
        OsStr::new("--config"),
        d.join("config.toml").into_os_string().leak(),
        OsStr::new("--data-dir"),
        d.join("data").into_os_string().leak(),
        OsStr::new("status"),
        OsStr::new("--json"),
    ];
    let (code, out, err) = run_with_env(&args, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out)[0]["user_id"], "before");
}

// ---------------------------------------------------------------- config errors

/// Run `status` with `config` and a fresh data dir; the data dir must stay untouched.
fn with_config(config: &Path) -> (i32, String) {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let (code, _, err) = run_with_env(
        &[
            OsStr::new("status"),
            OsStr::new("--config"),
            config.as_os_str(),
            OsStr::new("--data-dir"),
            data_dir.as_os_str(),
        ],
        &[],
    );
    assert!(
        !data_dir.exists(),
        "a bad config must stop the program before it writes anything"
    );
    (code, err)
}

#[test]
fn negative_max_risk_percent_is_refused_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(dir.path(), None, "max_risk_percent = -1.5", "");
    let (code, err) = with_config(&p);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("auto_trade.max_risk_percent"), "{err}");
    assert!(
        err.contains(&p.display().to_string()),
        "names the file: {err}"
    );
    // `once` too, against an ML engine: refused before any request.
    let ml = MlServer::start();
    write_config(dir.path(), Some(&ml.url), "max_risk_percent = -1.5", "");
    let (code, _, err) = run(dir.path(), &["once"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(ml.hits(&signal_path("BTC/USD")), 0);
}

#[test]
fn an_unknown_key_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(dir.path(), None, "max_risk_percnt = 1.0", "");
    let (code, err) = with_config(&p);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("max_risk_percnt"), "{err}");
    assert!(err.contains(&p.display().to_string()), "{err}");
}

#[test]
fn a_missing_config_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let (code, err) = with_config(&missing);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope.toml"), "{err}");
    // The same through $AUTOTRADE_CONFIG.
    let data = dir.path().join("data");
    let (code, _, err) = run_with_env(
        &[
            OsStr::new("status"),
            OsStr::new("--data-dir"),
            data.as_os_str(),
        ],
        &[("AUTOTRADE_CONFIG", missing.as_os_str())],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn autotrade_config_is_used_when_no_flag_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(dir.path(), None, "user_id = \"from-env\"", "");
    let data = dir.path().join("data");
    let (code, out, err) = run_with_env(
        &[OsStr::new("status"), OsStr::new("--json")],
        &[
            ("AUTOTRADE_CONFIG", p.as_os_str()),
            ("AUTOTRADE_DATA_DIR", data.as_os_str()),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out)[0]["user_id"], "from-env");
    assert!(
        data.join("autotrade.db").exists(),
        "$AUTOTRADE_DATA_DIR holds the store"
    );
}

#[test]
fn every_invalid_config_fixture_fails_naming_its_key() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid_configs");
    let mut paths: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 20, "{}", paths.len());
    let mut failures = Vec::new();
    for p in &paths {
        let text = std::fs::read_to_string(p).unwrap();
        // Every problem of a file is named at once: one `# key:` line each.
        let keys: Vec<&str> = text
            .lines()
            .map_while(|l| l.strip_prefix("# key: "))
            .collect();
        assert!(
            !keys.is_empty(),
            "{} must start with `# key: <name>`",
            p.display()
        );
        let (code, err) = with_config(p);
        let file = p.file_name().unwrap().to_str().unwrap();
        for key in keys {
            if code != 2 || !err.contains(key) || !err.contains(file) {
                failures.push(format!("{file}: exit {code}, wanted 2 and {key:?}: {err}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_config_with_several_problems_names_every_one_with_its_key() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/invalid_configs/several_problems.toml");
    let (code, err) = with_config(&p);
    assert_eq!(code, 2, "{err}");
    let mut lines = err.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("error: invalid config in {}: 9 problems:", p.display())
    );
    let problems: Vec<&str> = lines.map(str::trim).collect();
    assert_eq!(
        problems,
        [
            "auto_trade.enabled: invalid type: string \"yes\", expected a boolean",
            "auto_trade.max_risk_percnt: unknown key; did you mean auto_trade.max_risk_percent?",
            "auto_trade.symbols: \"BTC-USD\" is not a pair like BTC/USD (BASE/QUOTE, letters and digits) or a US stock ticker like AAPL or BRK.B",
            "auto_trade.max_risk_percent = 0 is out of range: must be > 0 and <= 100",
            "auto_trade.min_confidence = 1.5 is out of range: must be between 0 and 1",
            "account.size = -5 is out of range: must be > 0 and at most 1e12",
            "ml_engine.timeout_seconds = 0 is out of range: must be between 0.01 and 600",
            "[mlengine]: unknown table; did you mean [ml_engine]?",
            "verbose: unknown key at the top level; the tables are [auto_trade], [account], [ml_engine], [market_data], [broker], [risk], [notifications], [simulation], [backtest], [store]",
        ],
        "{err}"
    );
}

#[test]
fn two_confirms_at_once_execute_exactly_one_position() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let id = id_of(&once_json(dir.path()), "BTC/USD").to_string();
    let spawn = || {
        std::process::Command::new(bin())
            .args(["confirm", &id, "--config"])
            .arg(dir.path().join("config.toml"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_remove("AUTOTRADE_CONFIG")
            .env_remove("AUTOTRADE_DATA_DIR")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = (0..4).map(|_| spawn()).collect();
    let mut codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap_or(-1))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [0, 1, 1, 1],
        "one confirm wins, the others are refused"
    );
    assert_eq!(status_json(dir.path())["open_positions"], 1);
    assert_eq!(decisions_json(dir.path(), &["--executed-only"]).len(), 1);
}

#[test]
fn users_sharing_a_data_dir_see_only_their_own_decisions() {
    let ml = three_actionable();
    let a = setup(&ml, "symbols = [\"BTC/USD\"]\nuser_id = \"alice\"");
    let id = id_of(&once_json(a.path()), "BTC/USD").to_string();
    // Bob: same data dir, his own config (whose pending decisions expire within 60 ms).
    let b = tempfile::tempdir().unwrap();
    let bob = write_config(
        b.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\"]\nuser_id = \"bob\"\npending_expiry_minutes = 0.001",
        "",
    );
    let data = a.path().join("data");
    let bob_run = |args: &[&str]| {
        let mut v: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        v.extend([
            OsStr::new("--config"),
            bob.as_os_str(),
            OsStr::new("--data-dir"),
            data.as_os_str(),
        ]);
        run_with_env(&v, &[])
    };
    let (code, out, _) = bob_run(&["decisions", "--json"]);
    assert_eq!(code, 0);
    assert!(json_lines(&out).is_empty(), "bob sees alice's log: {out}");
    let (code, _, err) = bob_run(&["confirm", &id]);
    assert_eq!(code, 1, "bob cannot confirm alice's decision");
    assert!(err.contains(&id), "{err}");
    let (code, _, _) = bob_run(&["kill"]);
    assert_eq!(code, 0);
    assert_eq!(
        find(&decisions_json(a.path(), &[]), &id)["status"],
        "pending",
        "bob's kill is bob's"
    );
    assert_eq!(status_json(a.path())["enabled"], true);

    // Bob may look at alice's status, decisions and positions with --user.
    let (code, out, err) = bob_run(&["status", "--json", "--user", "alice"]);
    assert_eq!(code, 0, "{err}");
    let st = &json_lines(&out)[0];
    assert_eq!(st["user_id"], "alice");
    assert_eq!(st["enabled"], true);
    assert_eq!(st["pending"], 1);
    assert_eq!(st["source_reachable"], true);
    let (code, out, _) = bob_run(&["decisions", "--json", "--user", "alice"]);
    assert_eq!(code, 0);
    assert_eq!(json_lines(&out)[0]["log_id"], id.as_str());
    let (code, out, _) = bob_run(&["positions", "--user", "alice"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "no open positions");
    let (code, out, _) = bob_run(&["status", "--user", "alice"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("user        alice\n"), "{out}");
    // Looking expires nothing of alice's by bob's settings.
    assert_eq!(
        find(&decisions_json(a.path(), &[]), &id)["status"],
        "pending",
        "bob's views only read"
    );
    // His own, without it.
    let (_, out, _) = bob_run(&["status", "--json"]);
    assert_eq!(json_lines(&out)[0]["user_id"], "bob");
    assert_eq!(json_lines(&out)[0]["enabled"], false, "bob's kill");

    // A user the data dir has never seen is refused, naming those it knows, and not created.
    for _ in 0..2 {
        let (code, out, err) = bob_run(&["status", "--user", "alise"]);
        assert_eq!(code, 1, "{out}");
        assert!(
            err.starts_with("refused: no user \"alise\"")
                && err.contains("(did you mean alice?)")
                && err.contains("the users it knows are alice, bob"),
            "{err}"
        );
    }
}

#[test]
fn user_shows_a_user_the_rest_api_created_with_its_own_settings() {
    let ml = three_actionable();
    let dir = setup(&ml, THREE);
    let data = dir.path().join("data");
    let store = autotrade_tui::store::Store::open(&data, "default", true).unwrap();
    store
        .put_user_settings(
            "api-user",
            &serde_json::json!({"user_id": "api-user", "symbols": ["sol/usd"], "max_open_positions": 1}),
        )
        .unwrap();
    drop(store);
    let (code, out, err) = run(dir.path(), &["status", "--json", "--user", "api-user"]);
    assert_eq!(code, 0, "{err}");
    let st = &json_lines(&out)[0];
    assert_eq!(st["user_id"], "api-user");
    assert_eq!(st["symbols"], serde_json::json!(["SOL/USD"]));
    assert_eq!(st["max_open_positions"], 1);
    assert_eq!(st["config"], "POST /api/v1/auto-trade/config");
}

#[test]
fn the_config_seeds_enabled_once_and_the_store_keeps_it() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]\nenabled = false");
    assert_eq!(status_json(dir.path())["enabled"], false);
    assert_eq!(run(dir.path(), &["enable"]).0, 0);
    // The file still says false; `enable` wins until `disable` or `kill`.
    assert_eq!(once_json(dir.path())[0]["status"], "pending");
    assert!(
        std::fs::read_dir(dir.path().join("data"))
            .unwrap()
            .any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("autotrade-tui.log")),
        "the data dir holds the log file"
    );
}

#[test]
fn confirm_fills_at_the_latest_known_price() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let id = id_of(&once_json(dir.path()), "BTC/USD").to_string();
    // The next cycle sees 45500: inside SL 44100 .. TP 47250, and BTC stays pending.
    ml.set_signal("BTC/USD", signal("bullish", 0.87, 45500.0));
    assert_eq!(once_json(dir.path())[0]["status"], "hold");
    let (code, out, err) = run(dir.path(), &["confirm", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("45,500") || out.contains("45500"), "{out}");
    let (code, out, err) = run(dir.path(), &["positions", "--json"]);
    assert_eq!(code, 0, "{err}");
    let pos = json_lines(&out);
    assert_eq!(pos.len(), 1, "{out}");
    assert_eq!(pos[0]["entry_price"].as_f64(), Some(45500.0));
    assert_eq!(pos[0]["take_profit"].as_f64(), Some(45000.0 * 1.05));
    assert_eq!(pos[0]["log_id"], id.as_str());
}

#[test]
fn confirm_is_refused_once_the_price_moved_past_the_take_profit() {
    let ml = three_actionable();
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let id = id_of(&once_json(dir.path()), "BTC/USD").to_string();
    // 48000 is beyond the 47250 take-profit: buying now would not be the trade proposed.
    ml.set_signal("BTC/USD", signal("bullish", 0.87, 48000.0));
    once_json(dir.path());
    let (code, _, err) = run(dir.path(), &["confirm", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("48000") || err.contains("48,000"), "{err}");
    let log = find(&decisions_json(dir.path(), &[]), &id).clone();
    assert_ne!(log["status"], "executed", "{log}");
    assert_ne!(log["status"], "pending", "{log}");
    assert_eq!(status_json(dir.path())["open_positions"], 0);
}
