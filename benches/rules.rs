#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Decisions per second from the pure rules module.

use autotrade_tui::domain::rules::{DecisionInput, Gates, RiskSettings, decide};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;

fn bench_rules(c: &mut Criterion) {
    let risk = RiskSettings {
        account_size: 10_000.0,
        max_risk_percent: 1.5,
        max_position_percent: 20.0,
        min_confidence: 0.75,
    };
    let gates = Gates {
        enabled: true,
        max_open_positions: 3,
        ..Gates::default()
    };
    let signal = Ok(
        json!({"direction": "bullish", "confidence": 0.87, "entry_price": 45000.0,
                          "take_profit": 47500.0, "stop_loss": 44000.0, "risk_reward_ratio": 2.5}),
    );
    let phase = Ok(json!({"phase": "accumulation", "confidence": 0.85, "indicators": {}}));
    let bad = Ok(json!({"direction": "bullish", "confidence": 1.7}));
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decide_actionable", |b| {
        b.iter(|| {
            decide(black_box(&DecisionInput {
                symbol: "BTC/USD",
                signal: &signal,
                phase: &phase,
                risk: &risk,
                gates: &gates,
            }))
        })
    });
    g.bench_function("decide_bad_input", |b| {
        b.iter(|| {
            decide(black_box(&DecisionInput {
                symbol: "BTC/USD",
                signal: &bad,
                phase: &phase,
                risk: &risk,
                gates: &gates,
            }))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_rules);
criterion_main!(benches);
