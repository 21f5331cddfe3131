//! What the benches add: many symbols, a one-call-for-everyone ML engine, a store that has
//! traded for a while, and timing summaries.

use super::{MlServer, Reply, signal, write_config};
use autotrade_tui::domain::rules::{Decision, RiskReward};
use autotrade_tui::domain::{Phase, Verdict};
use autotrade_tui::store::{Origin, Status, Store};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `S0/USD`, `S1/USD`, …
pub fn symbols(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("S{i}/USD")).collect()
}

/// A config for `symbols`, checked hourly; `ml_url` None means the simulated market.
pub fn write_symbols_config(
    dir: &Path,
    symbols: &[String],
    ml_url: Option<&str>,
    extra: &str,
) -> PathBuf {
    let auto_trade = format!("symbols = {symbols:?}\ncheck_interval_minutes = 60\n{extra}");
    write_config(dir, ml_url, &auto_trade, "")
}

/// The signal and the phase every symbol gets: `bullish`, a BUY in accumulation (actionable);
/// else neutral in manipulation (a HOLD).
pub fn one_call_for_all(bullish: bool) -> (Reply, Reply) {
    let (signal, phase) = if bullish {
        (
            signal("bullish", 0.9, 100.0),
            json!({"phase": "accumulation", "confidence": 0.8, "indicators": {}}),
        )
    } else {
        (
            signal("neutral", 0.6, 100.0),
            json!({"phase": "manipulation", "confidence": 0.55, "indicators": {}}),
        )
    };
    (Reply::Json(signal), Reply::Json(phase))
}

/// An ML engine that answers every symbol [`one_call_for_all`]`(bullish)` at once.
pub fn ml_engine(bullish: bool) -> MlServer {
    let engine = MlServer::start();
    let (signal, phase) = one_call_for_all(bullish);
    engine.set_every_symbol(signal, phase);
    engine
}

/// `median 4.2 ms  min … p90 … max … (n runs)`.
pub fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = times.len();
    format!(
        "median {:>7.1} ms  min {:>7.1}  p90 {:>7.1}  max {:>7.1}  ({n} runs)",
        ms(times[n / 2]),
        ms(times[0]),
        ms(times[(n * 9 / 10).min(n - 1)]),
        ms(times[n - 1]),
    )
}

/// The 1-minute load average, for the report.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A store that has traded for a while: `n` decisions over `symbols`, one in ten a BUY; of the
/// BUYs, half were executed (a position, closed at its take-profit, with both fills and their
/// events) and half cancelled; the rest are HOLDs. Loaded through the store's bulk insert in
/// batches, then the history in one SQL transaction (one transaction per decision would take
/// minutes at synchronous=FULL).
pub fn fill_store(data_dir: &Path, symbols: &[String], n: usize) {
    let store = Store::open(data_dir, "default", true).expect("store");
    let batch = 1000;
    for chunk in 0..n.div_ceil(batch) {
        let decisions: Vec<Decision> = (0..batch.min(n - chunk * batch))
            .map(|i| {
                let k = chunk * batch + i;
                let actionable = k % 10 == 0;
                Decision {
                    symbol: symbols[k % symbols.len()].clone(),
                    action: if actionable {
                        Verdict::Buy
                    } else {
                        Verdict::Hold
                    },
                    confidence: 0.8,
                    reasoning: "bench".into(),
                    entry_price: Some(100.0),
                    take_profit: Some(105.0),
                    stop_loss: Some(98.0),
                    position_size: if actionable { 1.0 } else { 0.0 },
                    ml_signal: serde_json::json!({"direction": "bullish", "confidence": 0.84}),
                    amd_phase: Some(Phase::Accumulation),
                    risk_reward: actionable.then_some(RiskReward {
                        risk_amount: 2.0,
                        reward_amount: 5.0,
                        risk_reward_ratio: 2.5,
                        risk_percent: 2.0,
                        reward_percent: 5.0,
                    }),
                    raw_confidence: None,
                    trail: None,
                }
            })
            .collect();
        store
            .insert_decisions_bulk(&decisions, Status::Hold, Origin::Auto, "paper")
            .expect("bulk insert");
    }
    drop(store);
    let mut conn = rusqlite::Connection::open(data_dir.join("autotrade.db")).expect("open db");
    let tx = conn.transaction().expect("transaction");
    tx.execute_batch(
        "UPDATE decisions SET
             status = CASE WHEN (seq / 10) % 2 = 0 THEN 'executed' ELSE 'cancelled' END,
             executed_at = CASE WHEN (seq / 10) % 2 = 0 THEN created_at END
         WHERE action = 'BUY';
         INSERT INTO positions (user_id, decision_id, symbol, side, quantity, entry_price,
             take_profit, stop_loss, opened_at, mode, status, closed_at, exit_price,
             realized_pnl, close_reason)
         SELECT user_id, log_id, symbol, action, position_size, entry_price, take_profit,
             stop_loss, created_at, mode, 'closed', created_at + 60000, take_profit, 5.0,
             'take-profit'
         FROM decisions WHERE status = 'executed' ORDER BY seq;
         INSERT INTO fills (user_id, position_id, decision_id, symbol, side, quantity, price,
             at, kind, reason)
         SELECT user_id, id, decision_id, symbol, side, quantity, entry_price, opened_at,
             'open', 'decision executed' FROM positions;
         INSERT INTO fills (user_id, position_id, decision_id, symbol, side, quantity, price,
             at, kind, reason)
         SELECT user_id, id, decision_id, symbol, 'SELL', quantity, exit_price, closed_at,
             'close', 'take-profit' FROM positions;
         INSERT INTO events (user_id, at, level, message)
         SELECT user_id, opened_at, 'info', 'executed BUY 1 ' || symbol || ' @ 100 (paper, '
             || decision_id || ')' FROM positions;
         INSERT INTO events (user_id, at, level, message)
         SELECT user_id, closed_at, 'info', 'closed BUY 1 ' || symbol || ' take-profit: +5.00'
             FROM positions;",
    )
    .expect("history");
    tx.commit().expect("commit");
}
