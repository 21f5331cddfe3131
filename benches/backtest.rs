#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Backtest throughput: 2,000,000 generated one-hour candles, parse to report.
//! Criterion reports time per run; throughput is in candles (elements) per second.
//! `cargo bench --bench backtest`; one core does all the work (the backtest is single-threaded).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use autotrade_tui::backtest::{self, Settings};
use autotrade_tui::config::Config;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CANDLES: usize = 2_000_000;

/// Read, parse, replay and build the report, then serialize it as `--json` prints it.
fn parse_to_report(path: &Path, config: &Config) -> usize {
    let (_, _, _, report) = backtest::run_file(config, path, "BTC/USD").expect("bench file parses");
    serde_json::to_string(&report).expect("serializes").len()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("candles.csv");
    backtest::write_simulated_csv(&path, 7, CANDLES).expect("write the bench file");
    let config = Config::defaults();
    let bytes = std::fs::read(&path).expect("read the bench file");
    let series = backtest::parse_csv(&bytes, &mut |_, _| {}).expect("parses");
    let settings = Settings::from_config(&config, "BTC/USD");

    let mut group = c.benchmark_group("backtest_2m");
    group.throughput(Throughput::Elements(CANDLES as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("parse_to_report", |b| {
        b.iter(|| black_box(parse_to_report(&path, &config)))
    });
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("parse_only", |b| {
        b.iter(|| black_box(backtest::parse_csv(&bytes, &mut |_, _| {}).map(|s| s.len())))
    });
    group.bench_function("replay_and_report", |b| {
        b.iter(|| {
            let (_, report) = backtest::run_series(&series, &settings, &mut |_, _| {});
            black_box(report.summary.trades)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
