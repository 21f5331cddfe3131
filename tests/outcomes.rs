#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Honest numbers: every BUY and SELL is followed on later prices, whatever the trader did
//! with it, and `report` gives figures a trader can check by hand. Prices come from an ML
//! engine on loopback (each check's entry price is the market price: no feed).

mod support;
use serde_json::Value;
use std::time::{Duration, Instant};
use support::*;

fn report(dir: &std::path::Path) -> Value {
    let (code, out, err) = run(dir, &["report", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(out.trim()).unwrap()
}

fn pending_id(dir: &std::path::Path, symbol: &str) -> String {
    decisions_json(dir, &["--pending"])
        .into_iter()
        .find(|d| d["decision"]["symbol"] == symbol)
        .unwrap()["log_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// BTC/USD and ETH/USD at 100 (a BUY: TP 105, SL 98; a SELL: TP 95, SL 102), both sized 20
/// (the 20 % cap of 10,000), so each risks 20 × 2 = 40. SOL/USD's BUY scores 0.7125, below
/// `min_confidence` 0.75.
fn three_signals(extra: &str) -> (MlServer, tempfile::TempDir) {
    three_signals_on(extra, "")
}

/// [`three_signals`] with `store` after the `[auto_trade]` table (a `[store]`, or nothing).
fn three_signals_on(extra: &str, store: &str) -> (MlServer, tempfile::TempDir) {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 100.0, "accumulation");
    ml.set_symbol("ETH/USD", "bearish", 0.9, 100.0, "distribution");
    ml.set_symbol("SOL/USD", "bullish", 0.75, 100.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        &format!("symbols = [\"BTC/USD\", \"ETH/USD\", \"SOL/USD\"]\n{extra}"),
        store,
    );
    (ml, dir)
}

/// The next check's prices: every symbol neutral (no new decision) at `prices`.
fn move_to(ml: &MlServer, dir: &std::path::Path, prices: [f64; 3]) {
    for (s, p) in ["BTC/USD", "ETH/USD", "SOL/USD"].iter().zip(prices) {
        ml.set_symbol(s, "neutral", 0.5, p, "accumulation");
    }
    let (code, _, err) = run(dir, &["once"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn cancelled_decisions_have_would_have_results_and_the_veto_is_valued() {
    veto_valued("");
}

#[test]
fn on_postgresql_cancelled_decisions_have_would_have_results_and_the_veto_is_valued() {
    let Some(store) = pg_store_table() else {
        return support::pg::skip_note();
    };
    veto_valued(&store);
}

fn veto_valued(store: &str) {
    let (ml, dir) = three_signals_on("", store);
    let (code, _, err) = run(dir.path(), &["once"]);
    assert_eq!(code, 0, "{err}");
    for s in ["BTC/USD", "ETH/USD"] {
        let id = pending_id(dir.path(), s);
        assert_eq!(run(dir.path(), &["cancel", &id]).0, 0);
    }
    // BTC jumps through its take-profit to 106: a would-have win at the take-profit (a
    // limit), (105 − 100) / 2 = 2.5 R.
    // ETH rises through the SELL's stop-loss to 103: (100 − 103) / 2 = −1.5 R. SOL moves
    // inside its levels: still open, its horizon (24 h) far away.
    move_to(&ml, dir.path(), [106.0, 103.0, 101.0]);
    let r = report(dir.path());
    let c = &r["veto"]["cancelled"];
    assert_eq!(c["decisions"], 2, "{c}");
    assert_eq!(
        (c["take_profit"].as_u64(), c["stop_loss"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(c["total_r"], 1.0);
    assert_eq!(c["mean_r"], 0.5);
    // 2.5 × 40 − 1.5 × 40 in money at the sizes they were proposed at.
    assert_eq!(c["money"], 40.0);
    assert_eq!(r["veto"]["vetoed"]["total_r"], 1.0);
    let below = &r["veto"]["below_min_confidence"];
    assert_eq!(
        (below["decisions"].as_u64(), below["open"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(below["judged"], 0);
    // Nothing was executed: no realized trade.
    assert_eq!(r["performance"]["trades"], 0);
    // The ML engine's scores: two judged (both 0.855, one won), one open.
    let rel = &r["reliability"][0];
    assert_eq!(rel["source"], "ml_engine");
    assert_eq!(
        (rel["outcomes"].as_u64(), rel["open"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(rel["win_rate"], 0.5);
    // Mean planned reward:risk 5 / 2 = 2.5: break-even at 1 / 3.5.
    assert_eq!(rel["break_even_win_rate"], 0.2857);
    assert!(rel["note"].as_str().unwrap().contains("too few"), "{rel}");
    assert!(rel["calibration"].is_null());

    // In words: the veto's worth, and the small sample said as such.
    let (_, text, _) = run(dir.path(), &["report"]);
    assert!(
        text.contains("cancelled and expired decisions would have made +1.00 R over 2 judged (+40.00 at their sizes): turning them down cost that"),
        "{text}"
    );
    assert!(text.contains("too few to judge"), "{text}");
    // `status` says what the scores are, and how many outcomes judge them.
    let (_, status, _) = run(dir.path(), &["status"]);
    assert!(
        status.contains("scores      raw, uncalibrated: they rank signals, they are no win rates (2 judged outcomes of the ML engine: see `report`)"),
        "{status}"
    );
}

#[test]
fn status_says_a_calibration_waits_for_enough_outcomes() {
    let (_ml, dir) = three_signals("calibrated_confidence = true");
    assert_eq!(run(dir.path(), &["once"]).0, 0);
    let (_, status, _) = run(dir.path(), &["status"]);
    assert!(
        status.contains("raw: calibration waits for 50 judged outcomes of the ML engine, with wins and losses (0 so far)"),
        "{status}"
    );
    let (_, json, _) = run(dir.path(), &["status", "--json"]);
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        v["calibration"],
        serde_json::json!({"on": true, "source": "ml_engine", "judged": 0, "needed": 50, "applied": false})
    );
}

#[test]
fn an_outcome_untouched_until_its_horizon_is_judged_at_the_last_price_before_it() {
    // A horizon of 3.6 s: SOL's BUY below min_confidence, followed to 101 by the next check,
    // is open until then and judged at that price after it, (101 − 100) / 2 = 0.5 R.
    let (ml, dir) = three_signals("outcome_horizon_hours = 0.001");
    assert_eq!(run(dir.path(), &["once"]).0, 0);
    move_to(&ml, dir.path(), [101.0, 99.0, 101.0]);
    let first = report(dir.path());
    let end = Instant::now() + Duration::from_secs(20);
    let mut below = first["veto"]["below_min_confidence"].clone();
    while below["horizon"] != 1 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        below = report(dir.path())["veto"]["below_min_confidence"].clone();
    }
    assert_eq!(below["horizon"], 1, "{below}");
    assert_eq!(below["open"], 0);
    assert_eq!(below["total_r"], 0.5);
    // BTC's BUY (101: inside 98..105) and ETH's SELL (99: inside 95..102) too, at +0.5 R each.
    assert_eq!(report(dir.path())["veto"]["pending"]["total_r"], 1.0);
}

#[test]
fn report_json_gives_the_realized_figures_by_hand() {
    realized_by_hand("");
}

#[test]
fn on_postgresql_report_json_gives_the_realized_figures_by_hand() {
    let Some(store) = pg_store_table() else {
        return support::pg::skip_note();
    };
    realized_by_hand(&store);
}

fn realized_by_hand(store: &str) {
    let (ml, dir) = three_signals_on("require_confirmation = false", store);
    assert_eq!(run(dir.path(), &["once"]).0, 0);
    // BTC's BUY closes at its take-profit 105 (+20 × 5 = +100, 2.5 R); ETH's SELL at 103, the
    // price that crossed its stop-loss (−20 × 3 = −60, −1.5 R).
    move_to(&ml, dir.path(), [106.0, 103.0, 100.0]);
    let r = report(dir.path());
    let p = &r["performance"];
    assert_eq!(p["trades"], 2, "{p}");
    assert_eq!(p["wins"], 1);
    assert_eq!(p["win_rate"], 0.5);
    assert_eq!(p["realized_pnl"], 40.0);
    assert_eq!(p["expectancy_r"], 0.5);
    assert_eq!(p["profit_factor"], 1.6667);
    // 10,000 → 10,100 (BTC closed first) → 10,040: 60 below the peak, 0.59 % of it.
    assert_eq!(p["max_drawdown"]["amount"], 60.0);
    assert_eq!(p["max_drawdown"]["percent"], 0.59);
    assert_eq!(p["too_few"], true);
    assert_eq!(r["by_symbol"]["BTC/USD"]["realized_pnl"], 100.0);
    assert_eq!(r["by_symbol"]["ETH/USD"]["realized_pnl"], -60.0);
    assert_eq!(r["by_origin"]["auto"]["trades"], 2);
    // The executed decisions were followed too: the same two results in R.
    assert_eq!(r["veto"]["executed"]["total_r"], 1.0);
    // `--since` after everything: nothing counted. A bad date is a usage error naming it.
    let (code, out, _) = run(dir.path(), &["report", "--json", "--since", "2999-01-01"]);
    assert_eq!(code, 0);
    let later: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(later["performance"]["trades"], 0);
    assert_eq!(later["since"], "2999-01-01");
    let (code, _, err) = run(dir.path(), &["report", "--since", "yesterday"]);
    assert_eq!(code, 2);
    assert!(err.contains("--since \"yesterday\""), "{err}");
}
