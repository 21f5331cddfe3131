#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The backtest's replay: known answers on hand-built candles, no look-ahead, and the same
//! decisions as the live path.

use autotrade_tui::backtest::replay::Outcome;
use autotrade_tui::backtest::{
    AnalyzerDecider, BarDecision, Decider, Settings, decide_on_analysis, replay, report,
};
use autotrade_tui::config::Config;
use autotrade_tui::domain::rules::{self, DecisionInput, Gates, RiskSettings};
use autotrade_tui::domain::{Direction, MlSignal, Phase, Side, Verdict};
use autotrade_tui::simulated::{Analyzer, Candle, MarketGenerator, SimulatedSource};
use std::collections::HashMap;

const HOUR: i64 = 3600;

fn settings(fee_percent: f64, slippage_percent: f64) -> Settings {
    Settings {
        symbol: "BTC/USD".into(),
        risk: RiskSettings {
            account_size: 10_000.0,
            max_risk_percent: 1.5,
            max_position_percent: 100.0,
            min_confidence: 0.75,
        },
        max_open_positions: 3,
        fee_percent,
        slippage_percent,
        trail: None,
    }
}

/// Bar `i` of a hand-built series: open, high, low, close.
fn bars(rows: &[(f64, f64, f64, f64)]) -> Vec<Candle> {
    rows.iter()
        .enumerate()
        .map(|(i, &(open, high, low, close))| Candle {
            ts: 1_704_067_200 + i as i64 * HOUR,
            open,
            high,
            low,
            close,
            volume: 10.0,
        })
        .collect()
}

/// Decisions made by the live rules from hand-written signals: on bar `i`, a signal in
/// `direction` with confidence 0.9, entry at the bar's close and the given TP and SL.
fn scripted(
    plan: &[(usize, Direction, f64, f64)],
    s: &Settings,
) -> impl FnMut(usize, &Candle, &Gates) -> Option<BarDecision> + use<> {
    let plan: HashMap<usize, (Direction, f64, f64)> = plan
        .iter()
        .map(|&(i, d, tp, sl)| (i, (d, tp, sl)))
        .collect();
    let risk = s.risk;
    let symbol = s.symbol.clone();
    move |i, bar, gates| {
        let &(direction, take_profit, stop_loss) = plan.get(&i)?;
        let phase = match direction {
            Direction::Bearish => Phase::Distribution,
            _ => Phase::Accumulation,
        };
        let signal = MlSignal {
            direction,
            confidence: 0.9,
            entry_price: bar.close,
            take_profit,
            stop_loss,
            risk_reward_ratio: 2.0,
        };
        let d = decide_on_analysis(&symbol, &signal, phase, 0.8, &risk, gates);
        Some(BarDecision::from_decision(direction, d))
    }
}

fn run(candles: &[Candle], s: &Settings, plan: &[(usize, Direction, f64, f64)]) -> Outcome {
    let mut d = scripted(plan, s);
    replay(candles, s, &mut d, &mut |_, _| {})
}

fn close_to(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn buy_reaches_take_profit() {
    let s = settings(0.1, 0.0);
    let c = bars(&[
        (100.0, 101.0, 99.0, 100.0),  // 0: BUY at 100, TP 110, SL 95
        (100.0, 104.0, 98.0, 103.0),  // 1: fills at the open, 100
        (103.0, 111.0, 102.0, 109.0), // 2: high 111 ≥ TP
        (109.0, 110.0, 108.0, 109.0),
    ]);
    let o = run(&c, &s, &[(0, Direction::Bullish, 110.0, 95.0)]);
    assert_eq!(o.trades.len(), 1, "{o:?}");
    let t = &o.trades[0];
    assert_eq!(t.side, Side::Buy);
    assert_eq!((t.entry_bar, t.exit_bar), (1, 2));
    assert_eq!(t.exit_reason, "take_profit");
    // Risk 150 over 5 a unit: 30 units.
    assert_eq!(t.quantity, 30.0);
    assert_eq!((t.entry_price, t.exit_price), (100.0, 110.0));
    // Fees: 0.1 % of 3,000 in, 0.1 % of 3,300 out.
    assert!(close_to(t.fees, 6.3), "{t:?}");
    assert!(close_to(t.pnl, 300.0 - 6.3), "{t:?}");
    assert_eq!(t.confidence, 0.855);
    assert_eq!(t.phase, Phase::Accumulation);
    assert_eq!(o.decisions.actionable, 1);
    assert_eq!(o.decisions.filled, 1);
}

#[test]
fn buy_reaches_stop_loss() {
    let s = settings(0.1, 0.0);
    let c = bars(&[
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 104.0, 98.0, 103.0),
        (103.0, 104.0, 94.0, 96.0), // low 94 ≤ SL 95
        (96.0, 97.0, 95.5, 96.0),
    ]);
    let o = run(&c, &s, &[(0, Direction::Bullish, 110.0, 95.0)]);
    assert_eq!(o.trades.len(), 1);
    let t = &o.trades[0];
    assert_eq!(t.exit_reason, "stop_loss");
    assert_eq!(t.exit_bar, 2);
    assert_eq!(t.exit_price, 95.0);
    assert!(close_to(t.fees, 3.0 + 2.85), "{t:?}");
    assert!(close_to(t.pnl, -150.0 - 5.85), "{t:?}");
}

#[test]
fn a_bar_touching_both_counts_as_the_stop_loss() {
    let s = settings(0.1, 0.0);
    let c = bars(&[
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 104.0, 98.0, 103.0),
        (103.0, 112.0, 93.0, 108.0), // TP 110 and SL 95 both touched
        (108.0, 109.0, 107.0, 108.0),
    ]);
    let o = run(&c, &s, &[(0, Direction::Bullish, 110.0, 95.0)]);
    assert_eq!(o.trades.len(), 1);
    assert_eq!(o.trades[0].exit_reason, "stop_loss");
    assert_eq!(o.trades[0].exit_price, 95.0);

    // The same for a SELL: TP 90, SL 105.
    let c = bars(&[
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 102.0, 97.0, 98.0),
        (98.0, 106.0, 89.0, 95.0),
        (95.0, 96.0, 94.0, 95.0),
    ]);
    let o = run(&c, &s, &[(0, Direction::Bearish, 90.0, 105.0)]);
    assert_eq!(o.trades.len(), 1);
    let t = &o.trades[0];
    assert_eq!(t.side, Side::Sell);
    assert_eq!(t.exit_reason, "stop_loss");
    assert_eq!(t.exit_price, 105.0);
    assert!(close_to(t.pnl, -150.0 - (3.0 + 3.15)), "{t:?}");
}

#[test]
fn the_fill_bar_itself_can_close_the_trade() {
    // Filled at bar 1's open; bar 1's own low runs through the stop.
    let s = settings(0.0, 0.0);
    let c = bars(&[
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 101.0, 94.0, 96.0),
        (96.0, 97.0, 95.5, 96.0),
    ]);
    let o = run(&c, &s, &[(0, Direction::Bullish, 110.0, 95.0)]);
    assert_eq!(o.trades.len(), 1);
    assert_eq!((o.trades[0].entry_bar, o.trades[0].exit_bar), (1, 1));
    assert_eq!(o.trades[0].pnl, -150.0);
}

#[test]
fn fees_and_slippage_exactly() {
    // 0.25 % a side, 0.5 % slippage against the trader on both fills.
    let s = settings(0.25, 0.5);
    let c = bars(&[
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 104.0, 98.0, 103.0),
        (103.0, 111.0, 102.0, 109.0),
        (109.0, 110.0, 108.0, 109.0),
    ]);
    let o = run(&c, &s, &[(0, Direction::Bullish, 110.0, 95.0)]);
    let t = &o.trades[0];
    assert!(close_to(t.entry_price, 100.5), "{t:?}");
    assert!(close_to(t.exit_price, 109.45), "{t:?}");
    let fees: f64 = 30.0 * 100.5 * 0.0025 + 30.0 * 109.45 * 0.0025; // 15.74625
    assert!(close_to(t.fees, 15.75), "{t:?}");
    let gross = 30.0 * (109.45 - 100.5); // 268.5
    assert!(close_to(t.pnl, rules::round_dp(gross - fees, 2)), "{t:?}");
    assert!(close_to(t.pnl, 252.75), "{t:?}");

    // A SELL pays the slippage the other way: fills lower, covers higher.
    let c = bars(&[
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 101.0, 97.0, 98.0),
        (98.0, 99.0, 89.0, 91.0),
        (91.0, 92.0, 90.5, 91.0),
    ]);
    let o = run(&c, &s, &[(0, Direction::Bearish, 90.0, 105.0)]);
    let t = &o.trades[0];
    assert!(close_to(t.entry_price, 99.5), "{t:?}");
    assert!(close_to(t.exit_price, 90.45), "{t:?}");
    let fees = 30.0 * 99.5 * 0.0025 + 30.0 * 90.45 * 0.0025;
    assert!(close_to(t.fees, rules::round_dp(fees, 2)), "{t:?}");
    assert!(
        close_to(t.pnl, rules::round_dp(30.0 * (99.5 - 90.45) - fees, 2)),
        "{t:?}"
    );
}

#[test]
fn an_open_trade_closes_at_the_last_close_and_final_equity_is_start_plus_pnl() {
    let s = settings(0.1, 0.0);
    let c = bars(&[
        (100.0, 101.0, 99.0, 100.0),  // 0: BUY, TP 110, SL 95
        (100.0, 104.0, 98.0, 103.0),  // 1: fill 100
        (103.0, 111.0, 102.0, 109.0), // 2: TP → +293.70
        (109.0, 110.0, 108.0, 108.0), // 3: SELL at 108, TP 100, SL 112
        (108.0, 109.0, 104.0, 105.0), // 4: fill 108
        (105.0, 106.0, 103.0, 104.0), // 5: still open: closes at 104, "end"
    ]);
    let o = run(
        &c,
        &s,
        &[
            (0, Direction::Bullish, 110.0, 95.0),
            (3, Direction::Bearish, 100.0, 112.0),
        ],
    );
    assert_eq!(o.trades.len(), 2, "{o:?}");
    let end = &o.trades[1];
    assert_eq!(end.exit_reason, "end");
    assert_eq!((end.entry_bar, end.exit_bar), (4, 5));
    assert_eq!(end.exit_price, 104.0);
    // 150 / 4 = 37.5 units; 37.5 × 4 = 150 gross; fees 0.1 % of 4,050 and of 3,900.
    assert_eq!(end.quantity, 37.5);
    assert!(close_to(end.fees, 7.95), "{end:?}");
    assert!(close_to(end.pnl, 150.0 - 7.95), "{end:?}");

    let sum: f64 = o.trades.iter().map(|t| t.pnl).sum();
    let final_equity = *o.equity.last().unwrap();
    assert!(
        close_to(final_equity, 10_000.0 + sum),
        "{final_equity} {sum}"
    );
    let series = series_of(&c);
    let r = report::build(&series, &s, &o);
    assert!(close_to(r.summary.final_equity, 10_000.0 + sum));
    assert!(close_to(r.summary.final_equity, 10_435.75));
    assert_eq!(r.summary.trades, 2);
    assert_eq!(r.summary.wins, 2);
    assert!(close_to(r.summary.fees_paid, 6.3 + 7.95));
    assert!(close_to(r.summary.total_return_percent, 4.3575));
    assert_eq!(r.summary.profit_factor, None, "no loser: infinite");
}

fn series_of(c: &[Candle]) -> autotrade_tui::backtest::CandleSeries {
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    for b in c {
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            b.ts, b.open, b.high, b.low, b.close, b.volume
        ));
    }
    autotrade_tui::backtest::parse_csv(text.as_bytes(), &mut |_, _| {}).unwrap()
}

#[test]
fn max_drawdown_on_a_known_equity_path() {
    // No fees: equity is 10,000 + 30 × (close − 100) while the BUY is open.
    let s = settings(0.0, 0.0);
    let c = bars(&[
        (100.0, 101.0, 99.0, 100.0),  // 0: BUY, TP 110, SL 95 → 10,000
        (100.0, 104.5, 99.0, 104.0),  // 1: fill 100; close 104 → 10,120 (peak)
        (104.0, 104.0, 96.5, 97.0),   // 2: close 97 → 9,910: 210 below the peak
        (97.0, 111.0, 96.0, 108.0),   // 3: TP → 10,300
        (108.0, 109.0, 107.0, 108.0), // 4: flat
    ]);
    let o = run(&c, &s, &[(0, Direction::Bullish, 110.0, 95.0)]);
    assert_eq!(
        o.equity,
        vec![10_000.0, 10_120.0, 9_910.0, 10_300.0, 10_300.0]
    );
    let series = series_of(&c);
    let r = report::build(&series, &s, &o);
    assert_eq!(
        r.summary.max_drawdown_percent,
        rules::round_dp(210.0 / 10_120.0 * 100.0, 4)
    );
    assert_eq!(r.summary.max_drawdown_percent, 2.0751);
}

#[test]
fn one_position_at_a_time_and_gates_come_from_the_backtest_broker() {
    // A BUY signal on every bar: only the first fills until it closes.
    let s = settings(0.0, 0.0);
    let c = bars(&[
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 111.0, 99.0, 100.0), // TP of the first trade; a new decision at this close
        (100.0, 101.0, 99.0, 100.0), // the second fills here
        (100.0, 101.0, 99.0, 100.0),
    ]);
    let plan: Vec<_> = (0..6)
        .map(|i| (i, Direction::Bullish, 110.0, 95.0))
        .collect();
    let mut inner = scripted(&plan, &s);
    let mut seen = Vec::new();
    let mut d = |i: usize, c: &Candle, g: &Gates| {
        seen.push((i, g.symbol_has_open_position, g.open_positions));
        inner(i, c, g)
    };
    let o = replay(&c, &s, &mut d, &mut |_, _| {});
    assert_eq!(
        seen,
        vec![
            (0, false, 0),
            (1, true, 1),
            (2, true, 1),
            (3, false, 0),
            (4, true, 1),
            (5, true, 1)
        ]
    );
    assert_eq!(o.trades.len(), 2);
    assert_eq!(o.trades[0].exit_bar, 3);
    assert_eq!(o.trades[1].entry_bar, 4);
    assert_eq!(o.trades[1].exit_reason, "end");
    assert_eq!(o.decisions.actionable, 2);
}

#[test]
fn an_open_past_the_stop_expires_the_decision_and_the_last_bar_cannot_fill() {
    let s = settings(0.1, 0.0);
    let c = bars(&[
        (100.0, 101.0, 99.0, 100.0), // BUY, SL 95
        (94.0, 96.0, 93.0, 95.5),    // gaps below the stop: not filled
        (95.5, 96.0, 95.0, 95.5),    // BUY again on the last bar: nothing to fill at
    ]);
    let o = run(
        &c,
        &s,
        &[
            (0, Direction::Bullish, 110.0, 95.0),
            (2, Direction::Bullish, 105.0, 90.0),
        ],
    );
    assert!(o.trades.is_empty(), "{o:?}");
    assert_eq!(o.decisions.actionable, 2);
    assert_eq!(o.decisions.expired, 1);
    assert_eq!(o.decisions.unfilled_at_end, 1);
    assert_eq!(o.equity, vec![10_000.0; 3]);
}

#[test]
fn below_min_confidence_is_a_hold_and_is_not_traded() {
    let s = Settings {
        risk: RiskSettings {
            min_confidence: 0.9,
            ..settings(0.1, 0.0).risk
        },
        ..settings(0.1, 0.0)
    };
    let c = bars(&[(100.0, 101.0, 99.0, 100.0), (100.0, 111.0, 99.0, 100.0)]);
    // 0.9 × 0.95 = 0.855 < 0.9.
    let o = run(&c, &s, &[(0, Direction::Bullish, 110.0, 95.0)]);
    assert!(o.trades.is_empty());
    assert_eq!(o.decisions.actionable, 0);
}

fn simulated(seed: u64, n: usize) -> Vec<Candle> {
    let mut g = MarketGenerator::new(seed, 65_000.0, 1_704_067_200, HOUR);
    (0..n).map(|_| g.next_candle().0).collect()
}

fn analyzer_run(c: &[Candle], s: &Settings) -> Outcome {
    let mut d = AnalyzerDecider::new(s);
    replay(c, s, &mut d, &mut |_, _| {})
}

#[test]
fn no_look_ahead_trades_before_bar_k_do_not_depend_on_later_bars() {
    let s = Settings::from_config(&Config::defaults(), "BTC/USD");
    let candles = simulated(11, 8_000);
    let full = analyzer_run(&candles, &s);
    assert!(full.trades.len() > 20, "{} trades", full.trades.len());
    for k in [1_000, 2_500, 4_321, 6_000, 7_999] {
        let cut = analyzer_run(&candles[..k], &s);
        let closed: Vec<_> = cut
            .trades
            .iter()
            .filter(|t| t.exit_reason != "end")
            .cloned()
            .collect();
        let before_k: Vec<_> = full
            .trades
            .iter()
            .filter(|t| t.exit_bar < k)
            .cloned()
            .collect();
        assert_eq!(closed, before_k, "k = {k}");
        // At most the one position open at the cut is closed differently.
        assert!(cut.trades.len() - closed.len() <= 1);
        assert_eq!(cut.equity[..k - 1], full.equity[..k - 1], "k = {k}");
    }
    // The bars after k may be anything at all: the trades before k stay the same.
    let k = 5_000;
    let mut wild = candles.clone();
    for (i, c) in wild.iter_mut().enumerate().skip(k) {
        let f = if i % 2 == 0 { 1.5 } else { 0.6 };
        *c = Candle {
            open: c.open * f,
            high: c.high * f * 1.1,
            low: c.low * f * 0.9,
            close: c.close * f,
            ..*c
        };
    }
    let other = analyzer_run(&wild, &s);
    let a: Vec<_> = full.trades.iter().filter(|t| t.exit_bar < k).collect();
    let b: Vec<_> = other.trades.iter().filter(|t| t.exit_bar < k).collect();
    assert_eq!(a, b);
}

/// The live loop's decision for a source's answers: what `Store::record_cycle` computes.
fn live_decision(
    signal: &Result<serde_json::Value, String>,
    phase: &Result<serde_json::Value, String>,
    risk: &RiskSettings,
    gates: &Gates,
) -> rules::Decision {
    rules::decide(&DecisionInput {
        symbol: "BTC/USD",
        signal,
        phase,
        risk,
        gates,
    })
}

fn same_decision(live: &rules::Decision, bt: &rules::Decision) {
    assert_eq!(live.action, bt.action, "{live:?}\n{bt:?}");
    assert_eq!(live.confidence, bt.confidence);
    assert_eq!(live.reasoning, bt.reasoning);
    assert_eq!(live.entry_price, bt.entry_price);
    assert_eq!(live.take_profit, bt.take_profit);
    assert_eq!(live.stop_loss, bt.stop_loss);
    assert_eq!(live.position_size, bt.position_size);
    assert_eq!(live.amd_phase, bt.amd_phase);
    assert_eq!(live.risk_reward, bt.risk_reward);
}

#[test]
fn backtest_and_live_rules_decide_the_same_on_every_bar() {
    let s = Settings::from_config(&Config::defaults(), "BTC/USD");
    let candles = simulated(5, 20_000);
    let mut bt = AnalyzerDecider::new(&s);
    let mut live = Analyzer::new();
    let (mut compared, mut actionable, mut skipped) = (0, 0, 0);
    for (i, c) in candles.iter().enumerate() {
        // Every gate state the backtest can be in, in turn.
        let gates = Gates {
            enabled: true,
            kill_switch: false,
            halted: false,
            symbol_has_open_position: i % 3 == 1,
            symbol_has_pending: false,
            open_positions: usize::from(i % 3 == 1),
            max_open_positions: s.max_open_positions,
        };
        let ours = bt.decide(i, c, &gates);
        live.push(c);
        // What the simulated source hands the live loop: the analyzer's readings as JSON.
        let (Some(sig), Some(ph)) = (live.signal(), live.phase()) else {
            assert!(
                ours.is_none(),
                "bar {i}: decided before the analyzer is warm"
            );
            continue;
        };
        let signal = Ok(serde_json::to_value(&sig).unwrap());
        let phase = Ok(serde_json::to_value(&ph).unwrap());
        let theirs = live_decision(&signal, &phase, &s.risk, &gates);
        let ours = ours.expect("warm analyzer decides");
        assert_eq!(ours.direction, sig.direction);
        assert_eq!(ours.phase, ph.phase);
        match &ours.decision {
            Some(d) => same_decision(&theirs, d),
            None => {
                skipped += 1;
                assert_eq!(theirs.action, Verdict::Hold, "bar {i}: {theirs:?}");
            }
        }
        actionable += usize::from(theirs.action.is_actionable());
        compared += 1;
    }
    assert!(compared > 19_000);
    assert!(actionable > 50, "{actionable} actionable decisions");
    assert!(skipped > 10_000);
}

#[test]
fn backtest_rules_match_the_simulated_source_the_live_loop_uses() {
    let config = Config::defaults();
    let risk = config.risk();
    let origin = 1_700_000_000_000;
    let src = SimulatedSource::new(&config, origin);
    let mut actionable = 0;
    for minute in 0..3_000 {
        let r = src.report_at("BTC/USD", origin + minute * 60_000);
        let (signal, phase) = (r.signal_input(), r.phase_input());
        let sig = rules::parse_signal(signal.as_ref().unwrap()).unwrap();
        let ph = rules::parse_phase(phase.as_ref().unwrap()).unwrap();
        for gates in [
            Gates {
                enabled: true,
                max_open_positions: 3,
                ..Gates::default()
            },
            Gates {
                enabled: true,
                symbol_has_open_position: true,
                open_positions: 1,
                max_open_positions: 3,
                ..Gates::default()
            },
        ] {
            let live = live_decision(&signal, &phase, &risk, &gates);
            let bt = decide_on_analysis("BTC/USD", &sig, ph.phase, ph.confidence, &risk, &gates);
            same_decision(&live, &bt);
            let may = rules::may_act(
                "BTC/USD",
                sig.direction,
                ph.phase,
                sig.confidence,
                &risk,
                &gates,
            );
            assert!(may || !live.action.is_actionable(), "{live:?}");
            actionable += usize::from(live.action.is_actionable());
        }
    }
    assert!(actionable > 0, "the simulated source never gave a trade");
}

#[test]
fn may_act_is_never_false_when_the_rules_act() {
    let directions = [Direction::Bullish, Direction::Bearish, Direction::Neutral];
    let gate_states = [
        Gates {
            enabled: true,
            max_open_positions: 3,
            ..Gates::default()
        },
        Gates {
            enabled: false,
            max_open_positions: 3,
            ..Gates::default()
        },
        Gates {
            enabled: true,
            kill_switch: true,
            max_open_positions: 3,
            ..Gates::default()
        },
        Gates {
            enabled: true,
            symbol_has_open_position: true,
            open_positions: 1,
            max_open_positions: 3,
            ..Gates::default()
        },
        Gates {
            enabled: true,
            symbol_has_pending: true,
            max_open_positions: 3,
            ..Gates::default()
        },
        Gates {
            enabled: true,
            open_positions: 3,
            max_open_positions: 3,
            ..Gates::default()
        },
    ];
    let mut confidences: Vec<f64> = (0..=200).map(|i| i as f64 / 200.0).collect();
    for m in [0.75, 0.665, 0.5, 0.9] {
        // Right at the edges of every threshold, in both matrix factors.
        for f in [0.95, 0.70] {
            let c = m / f;
            confidences.extend([c, c - 1e-12, c + 1e-12, c - 1e-10, c + 1e-10]);
        }
    }
    confidences.retain(|c| (0.0..=1.0).contains(c));
    let mut acted = 0;
    for min_confidence in [0.0, 0.5, 0.665, 0.75, 0.9, 1.0] {
        let risk = RiskSettings {
            account_size: 10_000.0,
            max_risk_percent: 1.5,
            max_position_percent: 20.0,
            min_confidence,
        };
        for d in directions {
            let (tp, sl) = match d {
                Direction::Bearish => (90.0, 105.0),
                _ => (110.0, 95.0),
            };
            for p in Phase::ALL {
                for &c in &confidences {
                    let signal = MlSignal {
                        direction: d,
                        confidence: c,
                        entry_price: 100.0,
                        take_profit: tp,
                        stop_loss: sl,
                        risk_reward_ratio: 2.0,
                    };
                    for g in &gate_states {
                        let decision = decide_on_analysis("BTC/USD", &signal, p, 0.7, &risk, g);
                        if decision.action.is_actionable() {
                            acted += 1;
                            assert!(
                                rules::may_act("BTC/USD", d, p, c, &risk, g),
                                "{d} {p} {c} {min_confidence} {g:?}"
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(acted > 1000);
}

#[test]
fn default_config_trades_on_twenty_thousand_simulated_candles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.csv");
    autotrade_tui::backtest::write_simulated_csv(&path, 1, 20_000).unwrap();
    let config = Config::defaults();
    let (series, settings, outcome, r) =
        autotrade_tui::backtest::run_file(&config, &path, "BTC/USD").unwrap();
    assert_eq!(series.len(), 20_000);
    assert_eq!(settings.risk.min_confidence, 0.75);
    println!("{:?}", r.summary);
    assert!(r.summary.trades >= 20, "{:?}", r.summary);
    assert!(outcome.trades.iter().all(|t| t.confidence >= 0.75));
    let sum: f64 = r.trades.iter().map(|t| t.pnl).sum();
    assert!(close_to(
        r.summary.final_equity,
        rules::round_dp(10_000.0 + sum, 2)
    ));
    assert_eq!(
        r.calibration.iter().map(|b| b.trades).sum::<usize>(),
        r.summary.trades
    );
    let by_phase: usize = Phase::ALL.iter().map(|&p| r.by_phase.get(p).trades).sum();
    assert_eq!(by_phase, r.summary.trades);
}
