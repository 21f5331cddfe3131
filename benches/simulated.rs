#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Throughput of the simulated market and the analyzer.
//! Criterion reports time per batch; throughput is in candles (elements) per second.

use std::hint::black_box;

use autotrade_tui::simulated::{Analyzer, Candle, MarketGenerator};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BARS: usize = 100_000;

fn candles() -> Vec<Candle> {
    let mut g = MarketGenerator::new(1, 60_000.0, 0, 3600);
    (0..BARS).map(|_| g.next_candle().0).collect()
}

fn generator(c: &mut Criterion) {
    let mut group = c.benchmark_group("generator");
    group.throughput(Throughput::Elements(BARS as u64));
    group.bench_function("next_candle", |b| {
        b.iter(|| {
            let mut g = MarketGenerator::new(black_box(1), 60_000.0, 0, 3600);
            for _ in 0..BARS {
                black_box(g.next_candle());
            }
        })
    });
    group.finish();
}

fn analyzer(c: &mut Criterion) {
    let data = candles();
    let mut group = c.benchmark_group("analyzer");
    group.throughput(Throughput::Elements(BARS as u64));
    group.bench_function("push", |b| {
        b.iter(|| {
            let mut a = Analyzer::new();
            for candle in &data {
                a.push(black_box(candle));
            }
            black_box(a.bars())
        })
    });
    group.bench_function("push+phase_and_confidence+signal", |b| {
        b.iter(|| {
            let mut a = Analyzer::new();
            for candle in &data {
                a.push(black_box(candle));
                black_box(a.phase_and_confidence());
                black_box(a.signal());
            }
        })
    });
    group.bench_function("push+phase+signal", |b| {
        b.iter(|| {
            let mut a = Analyzer::new();
            for candle in &data {
                a.push(black_box(candle));
                black_box(a.phase());
                black_box(a.signal());
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = generator, analyzer
}
criterion_main!(benches);
