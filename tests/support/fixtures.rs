//! Dashboard fixtures from plain data with fixed times: decisions, positions, events and
//! engine reports as the rules would make them (the dashboard tests and the render bench).

use super::signal;
use autotrade_tui::desk::CycleOutcome;
use autotrade_tui::domain::rules::{self, Decision, RiskSettings};
use autotrade_tui::domain::{AmdAnalysis, Direction, MlSignal, Phase, Side, Verdict};
use autotrade_tui::engine::SymbolView;
use autotrade_tui::store::{DecisionLog, Event, Origin, Position, Status};
use serde_json::json;

/// 2026-11-25T11:00:00Z.
pub const NOW: i64 = 1_795_604_400_000;
pub const SEC: i64 = 1000;

pub fn risk() -> RiskSettings {
    RiskSettings {
        account_size: 10_000.0,
        max_risk_percent: 1.5,
        max_position_percent: 20.0,
        min_confidence: 0.75,
    }
}

/// An actionable decision as the rules would size it.
pub fn actionable(
    log_id: &str,
    symbol: &str,
    side: Side,
    entry: f64,
    status: Status,
    age_s: i64,
) -> DecisionLog {
    let (direction, phase, tp, sl) = match side {
        Side::Sell => ("bearish", Phase::Distribution, entry * 0.95, entry * 1.02),
        _ => ("bullish", Phase::Accumulation, entry * 1.05, entry * 0.98),
    };
    let qty = rules::size_position(&risk(), entry, sl).quantity;
    DecisionLog {
        log_id: log_id.into(),
        user_id: "default".into(),
        created_at_ms: NOW - age_s * SEC,
        status,
        status_reason: None,
        executed_at_ms: None,
        mode: "paper".into(),
        origin: Origin::Auto,
        decision: Decision {
            symbol: symbol.into(),
            action: side.into(),
            confidence: 0.855,
            reasoning: format!(
                "{side}: {direction} signal (0.90) during {phase} (0.80), score 0.8550"
            ),
            entry_price: Some(entry),
            take_profit: Some(tp),
            stop_loss: Some(sl),
            position_size: qty,
            ml_signal: signal(direction, 0.9, entry),
            amd_phase: Some(phase),
            risk_reward: Some(rules::risk_reward(qty, entry, tp, sl)),
            raw_confidence: None,
            trail: None,
        },
        amd_input: json!({"phase": phase.as_str(), "confidence": 0.8, "indicators": {}}),
        allowed_position_percent: None,
    }
}

pub fn hold(log_id: &str, symbol: &str, reasoning: &str, age_s: i64) -> DecisionLog {
    DecisionLog {
        log_id: log_id.into(),
        user_id: "default".into(),
        created_at_ms: NOW - age_s * SEC,
        status: Status::Hold,
        status_reason: None,
        executed_at_ms: None,
        mode: "paper".into(),
        origin: Origin::Auto,
        decision: Decision {
            symbol: symbol.into(),
            action: Verdict::Hold,
            confidence: 0.0,
            reasoning: reasoning.into(),
            entry_price: None,
            take_profit: None,
            stop_loss: None,
            position_size: 0.0,
            ml_signal: json!({"direction": "neutral", "confidence": 0.6, "entry_price": 150.0,
                              "take_profit": 157.5, "stop_loss": 147.0, "risk_reward_ratio": 2.5}),
            amd_phase: Some(Phase::Manipulation),
            risk_reward: None,
            raw_confidence: None,
            trail: None,
        },
        amd_input: json!({"phase": "manipulation", "confidence": 0.55}),
        allowed_position_percent: None,
    }
}

pub fn position(id: i64, symbol: &str, side: Side, qty: f64, entry: f64, age_s: i64) -> Position {
    let (tp, sl) = match side {
        Side::Sell => (entry * 0.95, entry * 1.02),
        _ => (entry * 1.05, entry * 0.98),
    };
    Position {
        id,
        decision_id: format!("decision_00000000000{id}"),
        symbol: symbol.into(),
        side,
        quantity: qty,
        entry_price: entry,
        take_profit: tp,
        stop_loss: sl,
        opened_at_ms: NOW - age_s * SEC,
        mode: "paper".into(),
        closed_at_ms: None,
        exit_price: None,
        realized_pnl: None,
        close_reason: None,
        exits_held_by: autotrade_tui::domain::lifecycle::ExitsHeldBy::Engine,
        best_price: None,
        trail: None,
    }
}

/// Recent prices a minute apart, the last at `last_at_ms`.
pub fn trend(prices: &[f64], last_at_ms: i64) -> Vec<autotrade_tui::store::PricePoint> {
    let n = prices.len() as i64;
    prices
        .iter()
        .enumerate()
        .map(|(i, p)| autotrade_tui::store::PricePoint {
            price: *p,
            at_ms: last_at_ms - (n - 1 - i as i64) * 60 * SEC,
            bid: None,
            ask: None,
        })
        .collect()
}

pub fn event(id: i64, age_s: i64, level: &str, message: &str) -> Event {
    Event {
        id,
        at_ms: NOW - age_s * SEC,
        level: level.into(),
        message: message.into(),
    }
}

/// What the engine reports for `symbol` after a cycle that logged `log`.
pub fn symbol_view(
    symbol: &str,
    direction: Direction,
    phase: Phase,
    price: f64,
    log: DecisionLog,
) -> SymbolView {
    SymbolView {
        symbol: symbol.into(),
        price: Some(price),
        signal: Ok(MlSignal {
            direction,
            confidence: 0.9,
            entry_price: price,
            take_profit: price * 1.05,
            stop_loss: price * 0.98,
            risk_reward_ratio: 2.5,
        }),
        phase: Ok(AmdAnalysis {
            phase,
            confidence: 0.8,
            indicators: json!({}),
        }),
        outcome: Ok(CycleOutcome {
            log,
            closed: vec![],
            executed: None,
            source_error: None,
        }),
    }
}

/// The dashboard drawn on a `w`×`h` test terminal.
pub fn screen_buffer(app: &autotrade_tui::app::App, w: u16, h: u16) -> ratatui::buffer::Buffer {
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    t.draw(|f| autotrade_tui::ui::draw(f, app)).unwrap();
    t.backend().buffer().clone()
}

/// The dashboard as text, one line per row, trailing spaces trimmed.
pub fn screen_text(app: &autotrade_tui::app::App, w: u16, h: u16) -> String {
    let buf = screen_buffer(app, w, h);
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
