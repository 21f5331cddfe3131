#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! One fill check for live and backtest: a decision that a live confirm refuses (over the cap,
//! or risking more than the limit at the price it would fill at) is refused by the backtest's
//! fill at the next open too, through the same `lifecycle::check_fill`.

use autotrade_tui::backtest::replay::fill_at_open;
use autotrade_tui::backtest::{BarDecision, Settings, replay};
use autotrade_tui::desk::Desk;
use autotrade_tui::domain::lifecycle::{FillRefusal, Origin, Status};
use autotrade_tui::domain::rules::{self, Decision, RiskSettings};
use autotrade_tui::domain::{Direction, Phase, Verdict};
use autotrade_tui::simulated::Candle;
use autotrade_tui::store::Store;
use std::sync::Arc;

const RISK: RiskSettings = RiskSettings {
    account_size: 10_000.0,
    max_risk_percent: 1.5,
    max_position_percent: 20.0,
    min_confidence: 0.75,
};

/// A BUY at 100 with TP 110 and SL 95, of `size` units.
fn buy(size: f64) -> Decision {
    Decision {
        symbol: "BTC/USD".into(),
        action: Verdict::Buy,
        confidence: 0.9,
        reasoning: "test".into(),
        entry_price: Some(100.0),
        take_profit: Some(110.0),
        stop_loss: Some(95.0),
        position_size: size,
        ml_signal: serde_json::Value::Null,
        amd_phase: Some(Phase::Accumulation),
        risk_reward: Some(rules::risk_reward(size, 100.0, 110.0, 95.0)),
        raw_confidence: None,
        trail: None,
    }
}

fn settings(risk: RiskSettings) -> Settings {
    Settings {
        symbol: "BTC/USD".into(),
        risk,
        max_open_positions: 3,
        fee_percent: 0.0,
        slippage_percent: 0.0,
        trail: None,
    }
}

/// Bar 0 decides `decision`; bar 1 opens at `next_open`.
fn backtest(decision: &Decision, risk: RiskSettings, next_open: f64) -> (usize, usize) {
    let candles: Vec<Candle> = [(100.0, 100.0), (next_open, next_open)]
        .iter()
        .enumerate()
        .map(|(i, &(open, close))| Candle {
            ts: 1_704_067_200 + i as i64 * 3600,
            open,
            high: open.max(close) + 0.5,
            low: open.min(close) - 0.5,
            close,
            volume: 1.0,
        })
        .collect();
    let d = decision.clone();
    let mut decider = move |i: usize, _: &Candle, _: &rules::Gates| {
        (i == 0).then(|| BarDecision::from_decision(Direction::Bullish, d.clone()))
    };
    let out = replay(&candles, &settings(risk), &mut decider, &mut |_, _| {});
    (out.decisions.refused, out.trades.len())
}

/// The same decision stored pending on a live desk at `price`, then confirmed.
async fn live_confirm(decision: &Decision, risk: RiskSettings, price: f64) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let config = autotrade_tui::config::parse_str(
        &format!(
            "[auto_trade]\nsymbols = [\"BTC/USD\"]\nmax_risk_percent = {}\n[account]\nsize = {}\nmax_position_percent = {}\n",
            risk.max_risk_percent, risk.account_size, risk.max_position_percent
        ),
        "test",
    )
    .unwrap();
    let store = Arc::new(Store::open(dir.path(), "default", true).unwrap());
    let log = store
        .write(|t| {
            t.set_price("BTC/USD", price)?;
            t.insert_decision(
                decision,
                Status::Pending,
                Origin::Manual,
                "paper",
                &serde_json::Value::Null,
            )
        })
        .unwrap();
    let desk = Desk::new(Arc::new(config), dir.path().into(), store.clone());
    let out = desk
        .confirm(&log.log_id)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(
        store.decision(&log.log_id).unwrap().unwrap().status,
        if out.is_ok() {
            Status::Executed
        } else {
            Status::Pending
        }
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_over_cap_fill_is_refused_live_and_in_the_backtest() {
    // 20 % of 10,000 at 100 is 20 units: 30 is over the cap.
    let d = buy(30.0);
    let bar = Candle {
        ts: 0,
        open: 100.0,
        high: 100.0,
        low: 100.0,
        close: 100.0,
        volume: 1.0,
    };
    assert!(matches!(
        fill_at_open(&d, &bar, &settings(RISK)),
        Err(FillRefusal::OverCap { cap, .. }) if cap == 20.0
    ));
    assert_eq!(backtest(&d, RISK, 100.0), (1, 0), "refused, no trade");
    let err = live_confirm(&d, RISK, 100.0).await.unwrap_err();
    assert!(
        err.contains("size 30 is over the cap of 20 at entry 100"),
        "{err}"
    );
    // Within the cap, both fill.
    assert_eq!(backtest(&buy(20.0), RISK, 100.0), (0, 1));
    live_confirm(&buy(20.0), RISK, 100.0).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fill_that_would_risk_more_than_the_limit_is_refused_live_and_in_the_backtest() {
    // No cap to speak of: 1.5 % of 10,000 is 150 at risk, 30 units 5 from the stop.
    let risk = RiskSettings {
        max_position_percent: 100.0,
        ..RISK
    };
    let d = buy(30.0);
    // The market gaps up to 104 before the fill: 9 from the stop, 270 at risk.
    assert_eq!(backtest(&d, risk, 104.0), (1, 0));
    let err = live_confirm(&d, risk, 104.0).await.unwrap_err();
    assert!(
        err.contains("at 104 the position would risk 270.00, over the 150.00 allowed"),
        "{err}"
    );
    // At the entry both fill.
    assert_eq!(backtest(&d, risk, 100.0), (0, 1));
    live_confirm(&d, risk, 100.0).await.unwrap();
}

#[test]
fn a_stale_price_past_a_level_refuses_as_stale_and_does_not_end_the_decision() {
    use autotrade_tui::domain::lifecycle::{Quote, check_fill};
    use std::time::Duration;
    let d = buy(10.0);
    // Yesterday's price, below the stop-loss: it says nothing about now, so the decision waits.
    let stale = Quote {
        price: 90.0,
        age: Duration::from_secs(86_400).into(),
    };
    let e = check_fill(&d, Some(stale), Duration::from_secs(30), &RISK).unwrap_err();
    assert!(matches!(e, FillRefusal::StalePrice { .. }), "{e:?}");
    assert!(!e.is_final());
    // The same price, fresh: the premise is gone and the decision ends.
    let fresh = Quote {
        price: 90.0,
        age: Duration::from_secs(1).into(),
    };
    let e = check_fill(&d, Some(fresh), Duration::from_secs(30), &RISK).unwrap_err();
    assert!(
        matches!(e, FillRefusal::PastLevel { .. }) && e.is_final(),
        "{e:?}"
    );
}
