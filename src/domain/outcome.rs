//! What became of a decision: each BUY or SELL (executed, cancelled, expired or still
//! pending, and those that fell below `min_confidence`) is followed on later prices until its
//! take-profit or its stop-loss is touched first, or its horizon passes. A cancelled decision
//! thus has a "would have" result, and a score can be judged by what followed it.
//!
//! The outcome is measured in R, the multiple of what the decision risked: +reward/risk at
//! the take-profit, −1 at the stop-loss (more when the price gapped through it), the signed
//! move over the risk at the horizon. No fees: it judges the signal, not the execution.

use super::lifecycle;
pub use super::lifecycle::OutcomeState;
use super::matrix::matrix;
use super::rules::{Decision, parse_signal};
use super::types::{Side, Verdict};

/// Where a decision's confidence came from: the source that scored it.
pub mod source {
    pub const ML_ENGINE: &str = "ml_engine";
    pub const ANALYZER: &str = "analyzer";
    pub const AGENT: &str = "agent";
    pub const MANUAL: &str = "manual";
}

/// The levels a decision is followed on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    pub side: Side,
    pub entry: f64,
    pub take_profit: f64,
    pub stop_loss: f64,
}

impl Levels {
    /// The R multiple of leaving at `exit`: the signed move over the distance to the stop.
    pub fn r_multiple(&self, exit: f64) -> f64 {
        let risk = (self.entry - self.stop_loss).abs();
        if risk <= 0.0 || !risk.is_finite() {
            return 0.0;
        }
        let moved = match self.side {
            Side::Buy => exit - self.entry,
            Side::Sell => self.entry - exit,
        };
        moved / risk
    }

    /// The planned reward-to-risk ratio.
    pub fn reward_to_risk(&self) -> f64 {
        let risk = (self.entry - self.stop_loss).abs();
        if risk > 0.0 {
            (self.take_profit - self.entry).abs() / risk
        } else {
            0.0
        }
    }
}

/// What is followed for a decision, if anything: a BUY or SELL with its levels; a HOLD only
/// when it is a BUY or SELL that fell below `min_confidence` (rule 3), recognised by its
/// stored signal: the matrix gives an action, its confidence is the decision's, below the
/// threshold, and the levels are on the right side.
pub fn followed(d: &Decision, min_confidence: f64) -> Option<Levels> {
    let (entry, take_profit, stop_loss) = (d.entry_price?, d.take_profit?, d.stop_loss?);
    let side = match d.action {
        Verdict::Buy => Side::Buy,
        Verdict::Sell => Side::Sell,
        Verdict::Hold => {
            let signal = parse_signal(&d.ml_signal).ok()?;
            let (action, _) = matrix(signal.direction, d.amd_phase?, signal.confidence);
            if d.confidence >= min_confidence {
                return None;
            }
            action.side()?
        }
    };
    let levels = Levels {
        side,
        entry,
        take_profit,
        stop_loss,
    };
    super::rules::check_levels(Verdict::from(side), entry, take_profit, stop_loss).ok()?;
    Some(levels)
}

/// Prices over a span: a candle, or one tick (all four the same).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub at_ms: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
}

impl Bar {
    pub fn tick(at_ms: i64, price: f64) -> Bar {
        Bar {
            at_ms,
            open: price,
            high: price,
            low: price,
            close: price,
        }
    }
}

/// How a followed decision ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolution {
    pub state: OutcomeState,
    /// The price it is judged at; none for [`OutcomeState::NoPrices`].
    pub exit_price: Option<f64>,
    pub at_ms: i64,
    pub r_multiple: Option<f64>,
}

/// The last price seen while following, and when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    pub price: f64,
    pub at_ms: i64,
}

/// The outcome at the horizon (`horizon_at_ms`): judged at the last price seen before it.
pub fn at_horizon(levels: &Levels, last: Option<Seen>, horizon_at_ms: i64) -> Resolution {
    match last {
        Some(s) => Resolution {
            state: OutcomeState::Horizon,
            exit_price: Some(s.price),
            at_ms: horizon_at_ms,
            r_multiple: Some(levels.r_multiple(s.price)),
        },
        None => Resolution {
            state: OutcomeState::NoPrices,
            exit_price: None,
            at_ms: horizon_at_ms,
            r_multiple: None,
        },
    }
}

/// One bar of the path after the decision: resolved when the bar touches a level (both in one
/// bar: the stop-loss counts, as nobody can tell which came first) or comes after the
/// horizon; otherwise still open. Exits are read as a position's are
/// ([`lifecycle::exit_in_bar`]): the take-profit at its level, the stop-loss at the price
/// that crossed it (the open, when the bar gapped through it).
pub fn step(
    levels: &Levels,
    last: Option<Seen>,
    horizon_at_ms: i64,
    bar: &Bar,
) -> Option<Resolution> {
    if bar.at_ms > horizon_at_ms {
        return Some(at_horizon(levels, last, horizon_at_ms));
    }
    // The same reading as a position's exit: the take-profit fills at its level (a limit),
    // the stop-loss at the price that crossed it (a stop becomes a market order).
    let (exit, fill) = lifecycle::exit_in_bar(
        levels.side,
        bar.open,
        bar.high,
        bar.low,
        levels.take_profit,
        levels.stop_loss,
    )?;
    let state = match exit {
        lifecycle::Exit::TakeProfit => OutcomeState::TakeProfit,
        lifecycle::Exit::StopLoss => OutcomeState::StopLoss,
    };
    let exit = fill;
    Some(Resolution {
        state,
        exit_price: Some(exit),
        at_ms: bar.at_ms,
        r_multiple: Some(levels.r_multiple(exit)),
    })
}

/// Follow a whole path: the first resolution, or none (still open) when neither level is
/// touched and the last bar is not past the horizon.
pub fn follow(levels: &Levels, horizon_at_ms: i64, bars: &[Bar]) -> Option<Resolution> {
    follow_from(levels, None, horizon_at_ms, bars.iter().copied()).ok()
}

/// Follow a path on from the last price seen: the first resolution, or the last price seen
/// when it is still open.
pub fn follow_from(
    levels: &Levels,
    mut last: Option<Seen>,
    horizon_at_ms: i64,
    bars: impl IntoIterator<Item = Bar>,
) -> Result<Resolution, Option<Seen>> {
    for bar in bars {
        if let Some(r) = step(levels, last, horizon_at_ms, &bar) {
            return Ok(r);
        }
        last = Some(Seen {
            price: bar.close,
            at_ms: bar.at_ms,
        });
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rules::{self, DEFAULT_RISK, DecisionInput, Gates};
    use serde_json::json;

    /// A BUY at 100 with its take-profit at 110 and stop-loss at 95: 2 R to win.
    fn buy() -> Levels {
        Levels {
            side: Side::Buy,
            entry: 100.0,
            take_profit: 110.0,
            stop_loss: 95.0,
        }
    }

    fn bar(at_ms: i64, open: f64, high: f64, low: f64, close: f64) -> Bar {
        Bar {
            at_ms,
            open,
            high,
            low,
            close,
        }
    }

    const HORIZON: i64 = 10_000;

    #[test]
    fn take_profit_touched_first_is_a_win_of_the_planned_r() {
        let path = [
            bar(1_000, 100.0, 104.0, 97.0, 103.0),
            bar(2_000, 103.0, 110.5, 102.0, 109.0),
            bar(3_000, 109.0, 109.0, 90.0, 91.0),
        ];
        let r = follow(&buy(), HORIZON, &path).unwrap();
        assert_eq!(r.state, OutcomeState::TakeProfit);
        assert_eq!(r.exit_price, Some(110.0));
        assert_eq!(r.at_ms, 2_000);
        assert_eq!(r.r_multiple, Some(2.0));
    }

    #[test]
    fn stop_loss_touched_first_is_minus_one_r() {
        let path = [
            bar(1_000, 100.0, 101.0, 94.0, 96.0),
            bar(2_000, 96.0, 120.0, 96.0, 118.0),
        ];
        let r = follow(&buy(), HORIZON, &path).unwrap();
        assert_eq!(r.state, OutcomeState::StopLoss);
        assert_eq!(r.r_multiple, Some(-1.0));
    }

    #[test]
    fn both_levels_in_one_bar_count_the_stop() {
        let r = follow(&buy(), HORIZON, &[bar(1_000, 100.0, 111.0, 94.0, 105.0)]).unwrap();
        assert_eq!(r.state, OutcomeState::StopLoss);
        let sell = Levels {
            side: Side::Sell,
            entry: 100.0,
            take_profit: 90.0,
            stop_loss: 105.0,
        };
        let r = follow(&sell, HORIZON, &[bar(1_000, 100.0, 106.0, 89.0, 95.0)]).unwrap();
        assert_eq!(r.state, OutcomeState::StopLoss);
        assert_eq!(r.r_multiple, Some(-1.0));
    }

    #[test]
    fn a_gap_through_the_stop_loses_more_than_one_r() {
        // Opened at 90, beyond the stop at 95: the loss is 10 on a risk of 5.
        let r = follow(&buy(), HORIZON, &[bar(1_000, 90.0, 92.0, 88.0, 91.0)]).unwrap();
        assert_eq!((r.exit_price, r.r_multiple), (Some(90.0), Some(-2.0)));
    }

    #[test]
    fn nothing_touched_before_the_horizon_is_open_and_then_judged_at_the_last_price() {
        let path = [
            bar(1_000, 100.0, 104.0, 97.0, 103.0),
            bar(9_000, 103.0, 105.0, 101.0, 102.5),
        ];
        assert_eq!(follow(&buy(), HORIZON, &path), None);
        let mut later = path.to_vec();
        later.push(bar(11_000, 102.5, 130.0, 102.0, 125.0));
        let r = follow(&buy(), HORIZON, &later).unwrap();
        assert_eq!(r.state, OutcomeState::Horizon);
        assert_eq!(r.exit_price, Some(102.5));
        assert_eq!(r.at_ms, HORIZON);
        assert_eq!(r.r_multiple, Some(0.5));
        // Past the horizon with no price seen: nothing to judge.
        let none = follow(&buy(), HORIZON, &[bar(11_000, 100.0, 200.0, 1.0, 100.0)]).unwrap();
        assert_eq!(
            (none.state, none.r_multiple),
            (OutcomeState::NoPrices, None)
        );
    }

    #[test]
    fn ticks_resolve_like_bars_of_one_price() {
        let sell = Levels {
            side: Side::Sell,
            entry: 100.0,
            take_profit: 90.0,
            stop_loss: 105.0,
        };
        let ticks: Vec<Bar> = [99.0, 95.0, 89.5]
            .iter()
            .enumerate()
            .map(|(i, p)| Bar::tick(i as i64 * 1_000, *p))
            .collect();
        let r = follow(&sell, HORIZON, &ticks).unwrap();
        assert_eq!(r.state, OutcomeState::TakeProfit);
        // A take-profit is a limit: judged at its level even when the tick went past it.
        assert_eq!(r.r_multiple, Some(2.0));
    }

    fn decide(direction: &str, ml_conf: f64, phase: &str, min_confidence: f64) -> Decision {
        let signal = Ok(json!({"direction": direction, "confidence": ml_conf,
            "entry_price": 100.0, "take_profit": if direction == "bearish" { 90.0 } else { 110.0 },
            "stop_loss": if direction == "bearish" { 105.0 } else { 95.0 }, "risk_reward_ratio": 2.0}));
        let phase = Ok(json!({"phase": phase, "confidence": 0.8}));
        let risk = rules::RiskSettings {
            min_confidence,
            ..DEFAULT_RISK
        };
        let gates = Gates {
            enabled: true,
            max_open_positions: 3,
            ..Gates::default()
        };
        rules::decide(&DecisionInput {
            symbol: "BTC/USD",
            signal: &signal,
            phase: &phase,
            risk: &risk,
            gates: &gates,
        })
    }

    #[test]
    fn followed_takes_actions_and_the_holds_below_min_confidence_only() {
        let buy = decide("bullish", 0.9, "accumulation", 0.75);
        assert_eq!(buy.action, Verdict::Buy);
        assert_eq!(followed(&buy, 0.75).map(|l| l.side), Some(Side::Buy));
        let below = decide("bearish", 0.9, "manipulation", 0.75);
        assert_eq!(below.action, Verdict::Hold, "{}", below.reasoning);
        assert_eq!(followed(&below, 0.75).map(|l| l.side), Some(Side::Sell));
        let disagree = decide("bullish", 0.9, "distribution", 0.75);
        assert_eq!(followed(&disagree, 0.75), None);
        let neutral = decide("neutral", 0.9, "accumulation", 0.75);
        assert_eq!(followed(&neutral, 0.75), None);
    }
}
