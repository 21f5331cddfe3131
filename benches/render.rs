#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! One full frame of the dashboard at 120×40: 300 symbols, 100 pending decisions, 10 open
//! positions and 50 events, built from plain data (no store, no engine, no terminal).
//! `cargo bench --bench render`. Target: under 2 ms a frame.
//!
//! - `frame_120x40`: `Terminal::draw` on a terminal that keeps its previous frame, with the
//!   clock one second on (the once-a-second countdown redraw): widgets, diff and flush.
//! - `frame_120x40_cold`: a fresh terminal each time, so every cell is written to the backend.
//! - `widgets_only_120x40`: `ui::draw` into a buffer, no diff, no backend.

#[path = "../tests/support/mod.rs"]
mod support;

use autotrade_tui::app::{Action, App, Settings, Snapshot};
use autotrade_tui::domain::{Direction, Phase, Side};
use autotrade_tui::engine::{EngineEvent, Health, SymbolView};
use autotrade_tui::store::{DecisionLog, Event, Position, PricePoint, RuntimeState, Status};
use autotrade_tui::ui;
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::collections::BTreeMap;
use std::hint::black_box;
use support::fixtures::{NOW, SEC, actionable, event, position, symbol_view};

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

fn decision(i: usize, status: Status, age_s: i64) -> DecisionLog {
    let side = if i.is_multiple_of(2) {
        Side::Buy
    } else {
        Side::Sell
    };
    let log_id = format!("decision_{i:012x}");
    actionable(&log_id, &symbol(i), side, price_of(i), status, age_s)
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
            Position {
                decision_id: format!("decision_{:012x}", 1_000 + k),
                ..position(
                    k as i64 + 1,
                    &symbol(i),
                    Side::Buy,
                    1.234_567_89,
                    price_of(i),
                    3_600,
                )
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
                    bid: None,
                    ask: None,
                },
            )
        })
        .collect();
    let events: Vec<Event> = (0..EVENTS)
        .map(|k| {
            event(
                EVENTS - k,
                k * 7,
                if k % 5 == 0 { "warn" } else { "info" },
                &format!(
                    "executed BUY 1.23456789 {} @ 123.45 (paper)",
                    symbol(k as usize)
                ),
            )
        })
        .collect();
    Snapshot {
        taken_at_ms: NOW,
        state: RuntimeState {
            enabled: true,
            kill_switch: false,
            last_cycle_at_ms: Some(NOW - 5 * SEC),
            halt: None,
            marks: Default::default(),
        },
        pending,
        latest,
        positions,
        // Every symbol's trend full, as a long-running dashboard has it.
        trends: prices
            .iter()
            .map(|(sym, p)| {
                let walk: Vec<f64> = (0..40)
                    .map(|i| p.price * (1.0 + (i % 7) as f64 / 100.0))
                    .collect();
                (sym.clone(), support::fixtures::trend(&walk, NOW - 5 * SEC))
            })
            .collect(),
        prices,
        events,
        equity: 10_123.45,
        realized_pnl: 100.0,
        unrealized_pnl: 23.45,
        broker: None,
    }
}

fn view(i: usize, log: DecisionLog) -> SymbolView {
    let (direction, phase) = if i.is_multiple_of(2) {
        (Direction::Bullish, Phase::Accumulation)
    } else {
        (Direction::Bearish, Phase::Distribution)
    };
    symbol_view(&symbol(i), direction, phase, price_of(i) * 1.001, log)
}

/// A dashboard that has seen one snapshot and one full engine cycle.
fn app() -> App {
    let settings = Settings {
        user_id: "default".into(),
        live: false,
        simulated: false,
        seconds_per_candle: None,
        symbols: (0..SYMBOLS).map(symbol).collect(),
        max_open_positions: POSITIONS,
        account_size: 10_000.0,
        pending_expiry_ms: 600_000,
        stale_after_ms: None,
        broker: None,
        daily_loss_limit_percent: 0.0,
        max_drawdown_percent: 0.0,
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
