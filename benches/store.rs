//! The store as it grows: 100,000 stored decisions, then the queries the dashboard and
//! `decisions` run, and the real binary's `decisions --limit 50` end to end.
//! `cargo bench --bench store -- [decisions]` (default 100000).

use autotrade_tui::domain::rules::{Decision, RiskReward};
use autotrade_tui::domain::{Action, Phase};
use autotrade_tui::store::{Origin, Status, Store};
use std::time::{Duration, Instant};

fn time<T>(label: &str, runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(f());
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[runs / 2];
    println!(
        "{label:<48} median {:>8.3} ms  (of {runs})",
        median.as_secs_f64() * 1000.0
    );
    median
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), "default", true).expect("store");
    let symbols: Vec<String> = (0..30).map(|i| format!("S{i}/USD")).collect();
    let t = Instant::now();
    // Bulk-load through the store's own insert path (one transaction per decision would take
    // minutes at synchronous=FULL; the bench measures reads, so load in batches).
    let batch = 1000;
    for chunk in 0..n.div_ceil(batch) {
        let decisions: Vec<Decision> = (0..batch.min(n - chunk * batch))
            .map(|i| {
                let k = chunk * batch + i;
                let actionable = k % 10 == 0;
                Decision {
                    symbol: symbols[k % symbols.len()].clone(),
                    action: if actionable {
                        Action::Buy
                    } else {
                        Action::Hold
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
                }
            })
            .collect();
        store
            .insert_decisions_bulk(&decisions, Status::Hold, Origin::Auto, "paper")
            .expect("bulk insert");
    }
    println!("loaded {n} decisions in {:.1} s", t.elapsed().as_secs_f64());
    drop(store);

    time("Store::open (migrate + recovery check)", 20, || {
        let s = Store::open(dir.path(), "default", true).expect("open");
        s.recover_on_start().expect("recover")
    });
    let store = Store::open(dir.path(), "default", true).expect("store");
    time("decisions(limit 50)", 50, || {
        store.decisions(50, None).expect("q")
    });
    time("decisions(limit 50, pending)", 50, || {
        store.decisions(50, Some(Status::Pending)).expect("q")
    });
    time("decisions(limit 50, executed)", 50, || {
        store.decisions(50, Some(Status::Executed)).expect("q")
    });
    time("latest decision per symbol", 50, || {
        store.latest_per_symbol().expect("q")
    });
    time("open positions + prices + events", 50, || {
        (
            store.open_positions(),
            store.prices(),
            store.recent_events(50),
        )
    });
    time("count pending", 50, || {
        store.count_decisions(Some(Status::Pending)).expect("q")
    });

    let bin = env!("CARGO_BIN_EXE_autotrade-tui");
    let cfg = dir.path().join("config.toml");
    let _ = std::fs::write(&cfg, "[auto_trade]\nsymbols = [\"S0/USD\"]\n");
    time(
        "process: autotrade-tui decisions --limit 50 --json",
        20,
        || {
            std::process::Command::new(bin)
                .args(["decisions", "--limit", "50", "--json", "--config"])
                .arg(&cfg)
                .arg("--data-dir")
                .arg(dir.path())
                .output()
                .expect("run")
        },
    );
}
