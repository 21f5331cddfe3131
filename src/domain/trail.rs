//! Trailing stops: a stop that follows the best price since the fill by a distance (a percent
//! of that price, or an amount in price units) and never loosens. The one rule, for live
//! prices ([`step_on_price`]) and for the backtest's bars ([`step_in_bar`]) alike.
//!
//! - A long's best price is the highest it could have sold at since the fill, and its stop is
//!   the higher of the stop as it stood and best − distance; a short mirrors it (the lowest
//!   price, and the lower of the stop and best + distance).
//! - At the fill the best price is the fill price, so a trail tighter than the stop-loss takes
//!   over at once (as a broker's trailing-stop order does); a wider one waits until the price
//!   has moved the difference.
//! - Each price is first judged against the stop as it stood, then moves the trail. So the
//!   price that raises a stop never triggers it: a stop is always below the price that set it
//!   (above, for a short).
//! - The stop may pass the entry, to the take-profit side: it then locks in a profit (the exit
//!   is still a `stop_loss` exit, at a gain). It never reaches the take-profit: a price at the
//!   take-profit exits there before it could move the stop. The take-profit stays; a trader
//!   who wants a winner to run gives a distant one.
//! - A bar is read conservatively and exactly as its prices would be as ticks: its exit is
//!   judged against the stop as it stood at the bar's start ([`exit_in_bar`]: a gap at the open,
//!   then the stop before the take-profit), and only then does the bar's favourable extreme (the
//!   high for a long) move the trail. A path of prices given as bars with open = high = low =
//!   close exits exactly where the same prices given as ticks do.

use super::lifecycle::{Exit, exit_in_bar, exit_on_price};
use super::money::fmt_num;
use super::types::Side;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The widest trail in percent of the price: a stop half the price away is no trail.
pub const MAX_TRAIL_PERCENT: f64 = 50.0;

/// How far a trailing stop follows the best price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trail {
    /// A percent of the best price (1.0 is 1 %).
    Percent(f64),
    /// An amount in the symbol's price units.
    Amount(f64),
}

/// Why a trail cannot be used. Front ends name their own field or flag before it.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum TrailProblem {
    #[error("must be a number above 0")]
    NotPositive,
    #[error(
        "must be at most {} (percent of the price)",
        fmt_num(MAX_TRAIL_PERCENT)
    )]
    OverMaxPercent,
    /// An amount as large as the entry price: a long's stop would be at or below 0, and a
    /// short's never tighter than any stop-loss worth the name.
    #[error("must be below the entry price {}", fmt_num(*entry))]
    NotBelowEntry { entry: f64 },
}

impl Trail {
    /// A trail from the store's two columns (percent, amount); none when both are empty.
    pub fn from_columns(percent: Option<f64>, amount: Option<f64>) -> Option<Trail> {
        match (percent, amount) {
            (Some(p), _) => Some(Trail::Percent(p)),
            (None, Some(a)) => Some(Trail::Amount(a)),
            (None, None) => None,
        }
    }

    /// The store's two columns: (percent, amount).
    pub fn columns(trail: Option<Trail>) -> (Option<f64>, Option<f64>) {
        match trail {
            Some(Trail::Percent(p)) => (Some(p), None),
            Some(Trail::Amount(a)) => (None, Some(a)),
            None => (None, None),
        }
    }

    /// The number the trader gave: the percent, or the amount.
    pub fn value(self) -> f64 {
        match self {
            Trail::Percent(p) | Trail::Amount(p) => p,
        }
    }

    /// The trail's own bounds, before any price is known: a finite number above 0, and a
    /// percent at most [`MAX_TRAIL_PERCENT`].
    pub fn check(self) -> Result<Trail, TrailProblem> {
        let v = self.value();
        if !(v.is_finite() && v > 0.0) {
            return Err(TrailProblem::NotPositive);
        }
        if matches!(self, Trail::Percent(p) if p > MAX_TRAIL_PERCENT) {
            return Err(TrailProblem::OverMaxPercent);
        }
        Ok(self)
    }

    /// [`Trail::check`], and an amount below the `entry` price.
    pub fn check_at(self, entry: f64) -> Result<Trail, TrailProblem> {
        let t = self.check()?;
        match t {
            Trail::Amount(a) if a >= entry => Err(TrailProblem::NotBelowEntry { entry }),
            _ => Ok(t),
        }
    }

    /// How far the stop stays from `best`: the percent of it, or the amount.
    /// In decimal, as a trader works it out: 1% of 100.1 is 1.001, and 0.5% behind 100.1
    /// is 99.5995, not 99.59949999.
    pub fn distance(self, best: f64) -> f64 {
        match self {
            Trail::Percent(p) => super::money::percent_of(best, p),
            Trail::Amount(a) => a,
        }
    }

    /// The stop this trail sets behind `best` for a position on `side`.
    pub fn stop_behind(self, side: Side, best: f64) -> f64 {
        match side {
            Side::Buy => super::money::sub_exact(best, self.distance(best)),
            Side::Sell => super::money::add_exact(best, self.distance(best)),
        }
    }
}

impl fmt::Display for Trail {
    /// `1%`, or the amount as given (`250`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trail::Percent(p) => write!(f, "{}%", fmt_num(*p)),
            Trail::Amount(a) => f.write_str(&fmt_num(*a)),
        }
    }
}

/// The tighter of two stops of a position on `side`: the higher for a long, the lower for a
/// short. A stop only ever moves this way.
pub fn tighter(side: Side, a: f64, b: f64) -> f64 {
    match side {
        Side::Buy => a.max(b),
        Side::Sell => a.min(b),
    }
}

/// A trailing stop as it stands: its trail and the best price since the fill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trailing {
    pub trail: Trail,
    pub best: f64,
}

impl Trailing {
    /// At a fill at `fill`: the best price is the fill, and the stop the tighter of the
    /// stop-loss and the trail behind the fill. Returns the trailing stop and the stop.
    pub fn start(trail: Trail, side: Side, fill: f64, stop_loss: f64) -> (Trailing, f64) {
        let t = Trailing { trail, best: fill };
        (t, tighter(side, stop_loss, trail.stop_behind(side, fill)))
    }

    /// After `price` left the position open: the best price and the stop it gives, never
    /// looser than `stop`.
    pub fn follow(self, side: Side, stop: f64, price: f64) -> (Trailing, f64) {
        let best = match side {
            Side::Buy => self.best.max(price),
            Side::Sell => self.best.min(price),
        };
        let moved = Trailing { best, ..self };
        (
            moved,
            tighter(side, stop, self.trail.stop_behind(side, best)),
        )
    }
}

/// Where a position stands after a price or a bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// It exits, for this reason at this price.
    Exit(Exit, f64),
    /// It stays open with this stop (moved by its trail, if it has one) and trail.
    Open {
        stop: f64,
        trailing: Option<Trailing>,
    },
}

/// One price for a position on `side`: its exit at the stop as it stood (see
/// [`exit_on_price`]), or, when it stays open, its trail moved by the price.
pub fn step_on_price(
    side: Side,
    price: f64,
    take_profit: f64,
    stop: f64,
    trailing: Option<Trailing>,
) -> Step {
    if let Some((exit, fill)) = exit_on_price(side, price, take_profit, stop) {
        return Step::Exit(exit, fill);
    }
    follow(side, stop, trailing, price)
}

/// One bar (open, high, low) for a position on `side`: its exit against the stop as it stood
/// at the bar's start (see [`exit_in_bar`]), or, when it stays open, its trail moved by the
/// bar's favourable extreme (the high for a long, the low for a short).
pub fn step_in_bar(
    side: Side,
    (open, high, low): (f64, f64, f64),
    take_profit: f64,
    stop: f64,
    trailing: Option<Trailing>,
) -> Step {
    if let Some((exit, fill)) = exit_in_bar(side, open, high, low, take_profit, stop) {
        return Step::Exit(exit, fill);
    }
    let favourable = match side {
        Side::Buy => high,
        Side::Sell => low,
    };
    follow(side, stop, trailing, favourable)
}

fn follow(side: Side, stop: f64, trailing: Option<Trailing>, price: f64) -> Step {
    match trailing {
        Some(t) => {
            let (t, stop) = t.follow(side, stop, price);
            Step::Open {
                stop,
                trailing: Some(t),
            }
        }
        None => Step::Open {
            stop,
            trailing: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks through a path: the exit, or the stop and best after the last price.
    fn ticks(side: Side, path: &[f64], tp: f64, stop: f64, t: Trailing) -> Step {
        let (mut stop, mut trailing) = (stop, Some(t));
        for &p in path {
            match step_on_price(side, p, tp, stop, trailing) {
                Step::Open {
                    stop: s,
                    trailing: t,
                } => (stop, trailing) = (s, t),
                exit => return exit,
            }
        }
        Step::Open { stop, trailing }
    }

    #[test]
    fn a_long_trails_the_high_by_one_percent_and_exits_at_the_price_that_crosses_it() {
        // Filled at 100, SL 95, TP 120, trail 1 %: the trail (99) is tighter than 95 at once.
        let (t, stop) = Trailing::start(Trail::Percent(1.0), Side::Buy, 100.0, 95.0);
        assert_eq!((t.best, stop), (100.0, 99.0));
        // 102 → stop 100.98; 105 → 103.95; 104 and 104.5 leave it; 103.9 crosses 103.95.
        let out = ticks(Side::Buy, &[102.0, 105.0, 104.0, 104.5], 120.0, stop, t);
        let Step::Open {
            stop,
            trailing: Some(t),
        } = out
        else {
            panic!("{out:?}")
        };
        assert_eq!((t.best, stop), (105.0, 103.95));
        assert_eq!(
            step_on_price(Side::Buy, 103.9, 120.0, stop, Some(t)),
            Step::Exit(Exit::StopLoss, 103.9)
        );
    }

    #[test]
    fn a_short_mirrors_it() {
        // Sold at 100, SL 104, TP 80, trail 2 (an amount): stop min(104, 102) = 102.
        let (t, stop) = Trailing::start(Trail::Amount(2.0), Side::Sell, 100.0, 104.0);
        assert_eq!(stop, 102.0);
        // 97 → best 97, stop 99; 98.5 leaves it; 99 reaches it: exit at 99.
        let out = ticks(Side::Sell, &[97.0, 98.5, 99.0], 80.0, stop, t);
        assert_eq!(out, Step::Exit(Exit::StopLoss, 99.0));
        // A short's stop never rises: a rally to 98.9 after the low of 97 leaves it at 99.
        let out = ticks(Side::Sell, &[97.0, 98.9], 80.0, stop, t);
        assert!(
            matches!(out, Step::Open { stop, .. } if stop == 99.0),
            "{out:?}"
        );
    }

    #[test]
    fn a_wide_trail_waits_and_the_stop_loss_stands_until_it_takes_over() {
        // Trail 5 % behind 100 is 95, looser than the 98 stop-loss: 98 stands until the best
        // reaches 98 / 0.95 = 103.157…; at 105 the stop is 99.75.
        let (t, stop) = Trailing::start(Trail::Percent(5.0), Side::Buy, 100.0, 98.0);
        assert_eq!(stop, 98.0);
        let Step::Open { stop, trailing } = ticks(Side::Buy, &[103.0], 200.0, stop, t) else {
            panic!()
        };
        assert_eq!(stop, 98.0);
        let t = trailing.unwrap();
        let Step::Open { stop, .. } = ticks(Side::Buy, &[105.0], 200.0, stop, t) else {
            panic!()
        };
        assert_eq!(stop, 99.75);
    }

    #[test]
    fn the_stop_never_loosens_nor_reaches_the_price_that_moved_it() {
        // A pseudo-random walk, both sides, percent and amount: the stop only tightens, and
        // while open it stays on the losing side of every price seen since it last moved.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for (side, trail) in [
            (Side::Buy, Trail::Percent(1.5)),
            (Side::Sell, Trail::Percent(0.7)),
            (Side::Buy, Trail::Amount(0.8)),
            (Side::Sell, Trail::Amount(1.3)),
        ] {
            let sl = match side {
                Side::Buy => 90.0,
                Side::Sell => 110.0,
            };
            let tp = match side {
                Side::Buy => 1e6,
                Side::Sell => 1e-6,
            };
            let (mut t, mut stop) = Trailing::start(trail, side, 100.0, sl);
            let mut price = 100.0;
            for _ in 0..2_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                price *= 1.0 + ((x % 2001) as f64 - 1000.0) / 100_000.0;
                match step_on_price(side, price, tp, stop, Some(t)) {
                    Step::Exit(Exit::StopLoss, _) => {
                        // Re-enter at this price, as a fresh position would.
                        (t, stop) = Trailing::start(trail, side, price, sl * price / 100.0);
                    }
                    Step::Exit(e, _) => panic!("{e:?}"),
                    Step::Open {
                        stop: s,
                        trailing: Some(n),
                    } => {
                        assert_eq!(tighter(side, s, stop), s, "{side} loosened {stop} → {s}");
                        match side {
                            Side::Buy => assert!(s < price && n.best >= t.best),
                            Side::Sell => assert!(s > price && n.best <= t.best),
                        }
                        (t, stop) = (n, s);
                    }
                    Step::Open { trailing: None, .. } => panic!("the trail was lost"),
                }
            }
        }
    }

    #[test]
    fn bars_with_one_price_each_exit_exactly_as_ticks() {
        let path = [100.5, 101.0, 103.0, 102.2, 104.0, 103.7, 101.5, 100.0];
        for (side, trail, sl, tp) in [
            (Side::Buy, Trail::Percent(1.0), 97.0, 110.0),
            (Side::Sell, Trail::Amount(1.5), 105.0, 90.0),
        ] {
            let (t, stop) = Trailing::start(trail, side, 100.0, sl);
            let (mut b_stop, mut b_trail) = (stop, Some(t));
            let mut by_bars = None;
            for &p in &path {
                match step_in_bar(side, (p, p, p), tp, b_stop, b_trail) {
                    Step::Open { stop, trailing } => (b_stop, b_trail) = (stop, trailing),
                    exit => {
                        by_bars = Some(exit);
                        break;
                    }
                }
            }
            let by_ticks = ticks(side, &path, tp, stop, t);
            assert_eq!(by_bars, Some(by_ticks), "{side}");
        }
    }

    #[test]
    fn a_bar_exits_on_the_stop_as_it_stood_then_trails_its_extreme() {
        // Long, stop 99 (trail 1 % behind 100). A bar 100 / 105 / 99.5 / –: the low does not
        // reach 99, so it stays open; its high moves the stop to 103.95.
        let (t, stop) = Trailing::start(Trail::Percent(1.0), Side::Buy, 100.0, 95.0);
        let Step::Open {
            stop,
            trailing: Some(t),
        } = step_in_bar(Side::Buy, (100.0, 105.0, 99.5), 120.0, stop, Some(t))
        else {
            panic!()
        };
        assert_eq!((t.best, stop), (105.0, 103.95));
        // The next bar opens at 103 (a gap through 103.95): it exits at the open.
        assert_eq!(
            step_in_bar(Side::Buy, (103.0, 104.5, 102.0), 120.0, stop, Some(t)),
            Step::Exit(Exit::StopLoss, 103.0)
        );
        // One that opens at 104.5 and falls to 103: it exits at the stop.
        assert_eq!(
            step_in_bar(Side::Buy, (104.5, 104.8, 103.0), 120.0, stop, Some(t)),
            Step::Exit(Exit::StopLoss, 103.95)
        );
        // A bar that reaches the take-profit exits there: the stop never gets to it.
        assert_eq!(
            step_in_bar(Side::Buy, (104.5, 121.0, 104.0), 120.0, stop, Some(t)),
            Step::Exit(Exit::TakeProfit, 120.0)
        );
    }

    #[test]
    fn without_a_trail_a_step_is_the_plain_exit_rule() {
        assert_eq!(
            step_on_price(Side::Buy, 101.0, 105.0, 95.0, None),
            Step::Open {
                stop: 95.0,
                trailing: None
            }
        );
        assert_eq!(
            step_in_bar(Side::Buy, (100.0, 104.0, 94.0), 105.0, 95.0, None),
            Step::Exit(Exit::StopLoss, 95.0)
        );
    }

    #[test]
    fn trails_are_checked_and_named() {
        assert_eq!(Trail::Percent(1.0).check(), Ok(Trail::Percent(1.0)));
        assert_eq!(Trail::Percent(50.0).check(), Ok(Trail::Percent(50.0)));
        assert_eq!(
            Trail::Percent(50.5).check(),
            Err(TrailProblem::OverMaxPercent)
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(Trail::Percent(bad).check(), Err(TrailProblem::NotPositive));
            assert_eq!(Trail::Amount(bad).check(), Err(TrailProblem::NotPositive));
        }
        // An amount has no upper bound of its own, only the entry.
        assert_eq!(Trail::Amount(500.0).check(), Ok(Trail::Amount(500.0)));
        assert_eq!(
            Trail::Amount(100.0).check_at(100.0),
            Err(TrailProblem::NotBelowEntry { entry: 100.0 })
        );
        assert_eq!(Trail::Amount(99.5).check_at(100.0), Ok(Trail::Amount(99.5)));
        assert_eq!(
            TrailProblem::NotBelowEntry { entry: 45000.0 }.to_string(),
            "must be below the entry price 45000"
        );
        assert_eq!(Trail::Percent(1.5).to_string(), "1.5%");
        assert_eq!(Trail::Amount(250.0).to_string(), "250");
        assert_eq!(
            Trail::from_columns(None, Some(2.0)),
            Some(Trail::Amount(2.0))
        );
        assert_eq!(Trail::columns(Some(Trail::Percent(1.0))), (Some(1.0), None));
        assert_eq!(Trail::from_columns(None, None), None);
    }

    #[test]
    fn the_stop_is_worked_out_in_decimal_as_a_trader_would() {
        // 0.5% behind a fill at 100.1 is 99.5995 (binary arithmetic gives 99.59949999…, which
        // would show as 99.599), and shows as 99.600 at three decimals.
        let stop = Trail::Percent(0.5).stop_behind(Side::Buy, 100.1);
        assert_eq!(stop, 99.5995);
        assert_eq!(crate::domain::money::fmt_price(stop), "99.600");
        assert_eq!(Trail::Percent(0.5).stop_behind(Side::Sell, 100.1), 100.6005);
    }
}
