#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! One full frame of the dashboard at 120×40: 300 symbols, 100 pending decisions, 10 open
//! positions and 50 events, built from plain data (no store, no engine, no terminal).
//! `cargo bench --bench render`. Target: under 2 ms a frame.
//!
//! - `frame_120x40`: `Terminal::draw` on a terminal that keeps its previous frame, with the
//!   clock one second on (the once-a-second countdown redraw): widgets, diff and flush.
//! - `frame_120x40_cold`: a fresh terminal each time, so every cell is written to the backend.
//! - `widgets_only_120x40`: `ui::draw` into a buffer, no diff, no backend.

use autotrade_tui::app::{Action, App, Settings, Snapshot};
use autotrade_tui::desk::CycleOutcome;
use autotrade_tui::domain::rules::{self, Decision, RiskSettings};
use autotrade_tui::domain::{AmdAnalysis, Direction, MlSignal, Phase, Side};
use autotrade_tui::engine::{EngineEvent, Health, SymbolView};
use autotrade_tui::store::{
    DecisionLog, Event, Origin, Position, PricePoint, RuntimeState, Status,
};
use autotrade_tui::ui;
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;
use std::collections::BTreeMap;
use std::hint::black_box;

/// 2026-11-25T11:00:00Z.
const NOW: i64 = 1_795_604_400_000;
const SEC: i64 = 1000;
const SYMBOLS: usize = 300;
const PENDING: usize = 100;
const POSITIONS: usize = 10;
const EVENTS: i64 = 50;
const W: u16 = 120;
const H: u16 = 40;

fn symbol(i: usize) -> String {
    format!("S{i:03}/USD")
}

fn price_of(i: usize) -> f64 {
    10.0 + i as f64 * 97.31
}

fn risk() -> RiskSettings {
    RiskSettings {
        account_size: 10_000.0,
        max_risk_percent: 1.5,
        max_position_percent: 20.0,
        min_confidence: 0.75,
    }
}

fn decision(i: usize, status: Status, age_s: i64) -> DecisionLog {
    let entry = price_of(i);
    let (side, direction, phase, tp, sl) = if i.is_multiple_of(2) {
        (
            Side::Buy,
            "bullish",
            Phase::Accumulation,
            entry * 1.05,
            entry * 0.98,
        )
    } else {
        (
            Side::Sell,
            "bearish",
            Phase::Distribution,
            entry * 0.95,
            entry * 1.02,
        )
    };
    let qty = rules::size_position(&risk(), entry, sl).quantity;
    DecisionLog {
        log_id: format!("decision_{i:012x}"),
        user_id: "default".into(),
        created_at_ms: NOW - age_s * SEC,
        status,
        status_reason: None,
        executed_at_ms: None,
        mode: "paper".into(),
        origin: Origin::Auto,
        decision: Decision {
            symbol: symbol(i),
            action: side.into(),
            confidence: 0.855,
            reasoning: format!(
                "{side}: {direction} signal (0.90) during {phase} (0.80), confidence 0.8550"
            ),
            entry_price: Some(entry),
            take_profit: Some(tp),
            stop_loss: Some(sl),
            position_size: qty,
            ml_signal: json!({"direction": direction, "confidence": 0.9, "entry_price": entry,
                              "take_profit": tp, "stop_loss": sl, "risk_reward_ratio": 2.5}),
            amd_phase: Some(phase),
            risk_reward: Some(rules::risk_reward(qty, entry, tp, sl)),
        },
        amd_input: json!({"phase": phase.as_str(), "confidence": 0.8, "indicators": {}}),
    }
}

fn snapshot() -> Snapshot {
    // The first 100 symbols wait for a decision; the rest hold (shown as their last decision).
    let pending: Vec<DecisionLog> = (0..PENDING)
        .map(|i| decision(i, Status::Pending, 10 + i as i64))
        .collect();
    let latest: Vec<DecisionLog> = (0..SYMBOLS)
        .map(|i| {
            if i < PENDING {
                decision(i, Status::Pending, 10 + i as i64)
            } else {
                decision(i, Status::Hold, 5)
            }
        })
        .collect();
    let positions: Vec<Position> = (0..POSITIONS)
        .map(|k| {
            let i = SYMBOLS - 1 - k;
            let entry = price_of(i);
            Position {
                id: k as i64 + 1,
                decision_id: format!("decision_{:012x}", 1_000 + k),
                symbol: symbol(i),
                side: Side::Buy,
                quantity: 1.234_567_89,
                entry_price: entry,
                take_profit: entry * 1.05,
                stop_loss: entry * 0.98,
                opened_at_ms: NOW - 3_600 * SEC,
                mode: "paper".into(),
                closed_at_ms: None,
                exit_price: None,
                realized_pnl: None,
                close_reason: None,
            }
        })
        .collect();
    let prices: BTreeMap<String, PricePoint> = (0..SYMBOLS)
        .map(|i| {
            (
                symbol(i),
                PricePoint {
                    price: price_of(i) * 1.001,
                    at_ms: NOW - 5 * SEC,
                },
            )
        })
        .collect();
    let events: Vec<Event> = (0..EVENTS)
        .map(|k| Event {
            id: EVENTS - k,
            at_ms: NOW - k * 7 * SEC,
            level: if k % 5 == 0 { "warn" } else { "info" }.into(),
            message: format!(
                "executed BUY 1.23456789 {} @ 123.45 (paper)",
                symbol(k as usize)
            ),
        })
        .collect();
    Snapshot {
        taken_at_ms: NOW,
        state: RuntimeState {
            enabled: true,
            kill_switch: false,
            last_cycle_at_ms: Some(NOW - 5 * SEC),
        },
        pending,
        latest,
        positions,
        prices,
        events,
        equity: 10_123.45,
        realized_pnl: 100.0,
        unrealized_pnl: 23.45,
    }
}

fn view(i: usize, log: DecisionLog) -> SymbolView {
    let price = price_of(i) * 1.001;
    let (direction, phase) = if i.is_multiple_of(2) {
        (Direction::Bullish, Phase::Accumulation)
    } else {
        (Direction::Bearish, Phase::Distribution)
    };
    SymbolView {
        symbol: symbol(i),
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
        }),
    }
}

/// A dashboard that has seen one snapshot and one full engine cycle.
fn app() -> App {
    let settings = Settings {
        user_id: "default".into(),
        live: false,
        simulated: false,
        symbols: (0..SYMBOLS).map(symbol).collect(),
        max_open_positions: POSITIONS,
        account_size: 10_000.0,
        color: true,
    };
    let mut app = App::new(settings, NOW);
    let snap = snapshot();
    let latest = snap.latest.clone();
    app.update(Action::Snapshot(Box::new(snap)));
    for (i, log) in latest.into_iter().enumerate() {
        app.update(Action::Engine(EngineEvent::Symbol(Box::new(view(i, log)))));
    }
    app.update(Action::Engine(EngineEvent::Health(Health::Ok)));
    app.update(Action::Engine(EngineEvent::NextCheck {
        at_ms: NOW + 258 * SEC,
    }));
    app.take_dirty();
    app
}

fn bench_render(c: &mut Criterion) {
    let mut app = app();
    let mut g = c.benchmark_group("render");

    let mut term = Terminal::new(TestBackend::new(W, H)).expect("test terminal");
    term.draw(|f| ui::draw(f, &app)).expect("first frame");
    let mut now = NOW;
    g.bench_function("frame_120x40", |b| {
        b.iter(|| {
            now += SEC;
            app.update(Action::Tick { now_ms: now });
            term.draw(|f| ui::draw(f, black_box(&app))).expect("draw");
        })
    });

    g.bench_function("frame_120x40_cold", |b| {
        b.iter_batched(
            || Terminal::new(TestBackend::new(W, H)).expect("test terminal"),
            |mut t| {
                t.draw(|f| ui::draw(f, black_box(&app))).expect("draw");
                t
            },
            criterion::BatchSize::SmallInput,
        )
    });

    let mut widgets_term = Terminal::new(TestBackend::new(W, H)).expect("test terminal");
    g.bench_function("widgets_only_120x40", |b| {
        b.iter(|| {
            let mut frame = widgets_term.get_frame();
            ui::draw(&mut frame, black_box(&app));
        })
    });
    g.finish();
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
