//! The figures that say whether the backtest found an edge: the win rate the trades needed to
//! break even, buy-and-hold over the same span, how well the analyzer's score sorts winners
//! from losers, and warnings when the sample is too small to say anything.

use super::csv::{CandleSeries, format_time_ms};
use super::replay::{Settings, Trade};
use super::report::max_drawdown_percent;
use crate::analytics::stats::{self, Interval, MIN_SAMPLE};
use crate::domain::money::fmt_fixed;
use crate::domain::rules::round_dp;
use serde::Serialize;

/// Fewer candles than this draw a warning. The analyzer warms up for 50 bars and then, on the
/// files measured (simulated hourly, GOOG daily, EURUSD hourly), trades about once every 50 to
/// 85 bars, one position at a time: 1,500 candles is about what [`MIN_SAMPLE`] trades take.
pub const MIN_CANDLES: usize = 1_500;

fn round_interval(i: Interval) -> Interval {
    Interval {
        low: round_dp(i.low, 4),
        high: round_dp(i.high, 4),
    }
}

/// The win rate the trades had to reach to break even, beside the one they reached.
///
/// Each trade i, of quantity qᵢ filled on a bar whose open is oᵢ, could win Wᵢ = qᵢ·|TPᵢ − oᵢ|
/// or lose Rᵢ = qᵢ·|oᵢ − SLᵢ| before costs, and paid Cᵢ in fees and slippage (both fills, as
/// charged). Trades that win with probability p break even when
/// p·W̄ − (1 − p)·R̄ − C̄ = 0, that is
///
/// **p = (R̄ + C̄) / (W̄ + R̄)** (`after_costs`),
///
/// with W̄, R̄, C̄ the means over the trades. Without costs this is 1 / (1 + W̄/R̄)
/// (`before_costs`, [`stats::break_even_win_rate`] of `reward_to_risk` = W̄/R̄). A value over 1
/// means no win rate pays the costs. A trade closed at the end of the file counts by its sign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakEven {
    /// The win rate reached (the summary's `win_rate`) and its Wilson 95 % interval.
    pub win_rate: Option<f64>,
    pub win_rate_interval: Option<Interval>,
    /// W̄ / R̄: mean reward over mean risk, in money, from each fill bar's open.
    pub reward_to_risk: Option<f64>,
    /// 1 / (1 + reward_to_risk).
    pub before_costs: Option<f64>,
    /// (R̄ + C̄) / (W̄ + R̄).
    pub after_costs: Option<f64>,
    /// C̄: fees and slippage paid per trade, in money.
    pub costs_per_trade: Option<f64>,
    /// Why the figures are null.
    pub reason: Option<String>,
}

pub fn break_even(series: &CandleSeries, trades: &[Trade]) -> BreakEven {
    let none = |reason: &str| BreakEven {
        win_rate: None,
        win_rate_interval: None,
        reward_to_risk: None,
        before_costs: None,
        after_costs: None,
        costs_per_trade: None,
        reason: Some(reason.to_string()),
    };
    if trades.is_empty() {
        return none("no trades");
    }
    let n = trades.len() as f64;
    let (mut reward, mut risk, mut costs) = (0.0, 0.0, 0.0);
    for t in trades {
        let open = series
            .candles
            .get(t.entry_bar)
            .map_or(t.entry_price, |c| c.open);
        // What it risked at the fill: with a trail, the tighter of the stop-loss and the trail.
        let stop = t.trail.map_or(t.stop_loss, |trail| {
            crate::domain::trail::Trailing::start(trail, t.side, open, t.stop_loss).1
        });
        reward += t.quantity * (t.take_profit - open).abs();
        risk += t.quantity * (open - stop).abs();
        costs += t.fees + t.slippage;
    }
    let (w, r, c) = (reward / n, risk / n, costs / n);
    if !(r > 0.0 && w > 0.0) {
        return none("the trades risk or aim at nothing");
    }
    let wins = trades.iter().filter(|t| t.pnl > 0.0).count();
    let rr = w / r;
    BreakEven {
        win_rate: Some(round_dp(wins as f64 / n, 4)),
        win_rate_interval: stats::wilson(wins, trades.len()).map(round_interval),
        reward_to_risk: Some(round_dp(rr, 4)),
        before_costs: stats::break_even_win_rate(rr).map(|p| round_dp(p, 4)),
        after_costs: Some(round_dp((r + c) / (w + r), 4)),
        costs_per_trade: Some(round_dp(c, 2)),
        reason: None,
    }
}

/// Buying at the first fill bar's open with the whole start equity and selling at the last
/// close, with the same fee on both sides and the same slippage against the buyer.
///
/// With entry price e = open × (1 + slippage) and fee rate f, the quantity is
/// q = equity / (e × (1 + f)) (the fee comes out of the equity), the exit price
/// x = last close × (1 − slippage), and the final equity q × x × (1 − f). The drawdown is
/// measured as the strategy's is: equity q × close marked at each close from the entry bar on
/// (the last one after the exit fee), against a running peak that starts at the start equity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuyAndHold {
    /// The fill bar's time: the strategy's first fill, or the first candle without a trade.
    pub start_time: String,
    pub end_time: String,
    pub entry_price: f64,
    pub exit_price: f64,
    pub quantity: f64,
    pub fees: f64,
    pub final_equity: f64,
    pub total_return_percent: f64,
    pub max_drawdown_percent: f64,
}

pub fn buy_and_hold(
    series: &CandleSeries,
    trades: &[Trade],
    start_equity: f64,
    settings: &Settings,
) -> Option<BuyAndHold> {
    let from = trades.iter().map(|t| t.entry_bar).min().unwrap_or(0);
    let bars = series.candles.get(from..)?;
    let (first, last) = (bars.first()?, bars.last()?);
    let f = settings.fee_percent / 100.0;
    let s = settings.slippage_percent / 100.0;
    let entry = first.open * (1.0 + s);
    let quantity = start_equity / (entry * (1.0 + f));
    let exit = last.close * (1.0 - s);
    let final_equity = quantity * exit * (1.0 - f);
    let mut marked: Vec<f64> = bars.iter().map(|c| quantity * c.close).collect();
    if let Some(e) = marked.last_mut() {
        *e = final_equity;
    }
    let fees = quantity * entry * f + quantity * exit * f;
    Some(BuyAndHold {
        start_time: format_time_ms(series.times_ms.get(from).copied().unwrap_or(0)),
        end_time: format_time_ms(series.times_ms.last().copied().unwrap_or(0)),
        entry_price: round_dp(entry, 8),
        exit_price: round_dp(exit, 8),
        quantity: round_dp(quantity, 8),
        fees: round_dp(fees, 2),
        final_equity: round_dp(final_equity, 2),
        total_return_percent: if start_equity > 0.0 {
            round_dp((final_equity - start_equity) / start_equity * 100.0, 4)
        } else {
            0.0
        },
        max_drawdown_percent: round_dp(max_drawdown_percent(start_equity, &marked), 4),
    })
}

/// How well the analyzer's score (a trade's `confidence`) sorts winners from losers. The score
/// is not a probability: the Brier score treats it as one to show what that costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreQuality {
    pub trades: usize,
    /// Mean of (score − won)², won being 1 or 0; lower is better.
    pub brier: Option<f64>,
    /// The same for the constant forecast "every trade wins at the observed win rate b":
    /// b·(1 − b). A score that does worse forecasts worse than knowing the average.
    pub brier_constant: Option<f64>,
    pub brier_reason: Option<String>,
    /// The chance a winner scored higher than a loser (ties half): 0.5 sorts nothing.
    pub auc: Option<f64>,
    /// An approximate 95 % interval on the AUC (Hanley and McNeil's standard error); none
    /// with fewer than [`AUC_INTERVAL_MIN`] winners or losers, where the approximation fails
    /// (at an AUC of 0 or 1 it gives a width of 0).
    pub auc_interval: Option<Interval>,
    pub auc_reason: Option<String>,
}

/// Winners and losers each needed for an interval on the AUC.
pub const AUC_INTERVAL_MIN: usize = 5;

/// Hanley and McNeil (1982): the standard error of an AUC `a` from `wins` winners and
/// `losses` losers.
fn auc_standard_error(a: f64, wins: usize, losses: usize) -> f64 {
    let (n1, n2) = (wins as f64, losses as f64);
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    let var = (a * (1.0 - a) + (n1 - 1.0) * (q1 - a * a) + (n2 - 1.0) * (q2 - a * a)) / (n1 * n2);
    var.max(0.0).sqrt()
}

pub fn score_quality(trades: &[Trade]) -> ScoreQuality {
    let outcomes: Vec<(f64, bool)> = trades.iter().map(|t| (t.confidence, t.pnl > 0.0)).collect();
    let wins = outcomes.iter().filter(|o| o.1).count();
    let losses = outcomes.len() - wins;
    let brier = stats::brier(&outcomes);
    let auc = stats::auc(&outcomes);
    let auc_reason = if auc.is_some() {
        None
    } else if outcomes.is_empty() {
        Some("no trades".to_string())
    } else if losses == 0 {
        Some("every trade won: the AUC needs winners and losers".to_string())
    } else {
        Some("no trade won: the AUC needs winners and losers".to_string())
    };
    ScoreQuality {
        trades: outcomes.len(),
        brier: brier.map(|b| round_dp(b, 4)),
        brier_constant: stats::brier_constant(&outcomes).map(|b| round_dp(b, 4)),
        brier_reason: brier.is_none().then(|| "no trades".to_string()),
        auc: auc.map(|a| round_dp(a, 4)),
        auc_interval: auc
            .filter(|_| wins.min(losses) >= AUC_INTERVAL_MIN)
            .map(|a| {
                let half = 1.959_964 * auc_standard_error(a, wins, losses);
                round_interval(Interval {
                    low: (a - half).max(0.0),
                    high: (a + half).min(1.0),
                })
            }),
        auc_reason,
    }
}

/// Why the figures may say nothing, in the trader's words.
pub fn warnings(candles: usize, trades: usize) -> Vec<String> {
    let mut w = Vec::new();
    if candles < MIN_CANDLES {
        w.push(format!(
            "only {} candles: fewer than {}, too few for the {MIN_SAMPLE} \
             trades a win rate needs (the analyzer warms up for 50 bars, then trades about \
             once every 50 to 85 bars)",
            fmt_fixed(candles as f64, 0),
            fmt_fixed(MIN_CANDLES as f64, 0)
        ));
    }
    if trades == 0 {
        w.push("no trades: there is nothing to judge".to_string());
    } else if trades < MIN_SAMPLE {
        w.push(format!(
            "only {trades} trades: fewer than {MIN_SAMPLE}, so the win rate, the score's Brier \
             and AUC and the random baseline say little (on {MIN_SAMPLE} trades a win rate's \
             95 % interval is still about ±18 points)"
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_standard_error_by_hand() {
        // A = 0.5, 10 winners, 10 losers: Q1 = 1/3, Q2 = 1/3;
        // var = (0.25 + 9 × (1/3 − 1/4) × 2) / 100 = 1.75 / 100.
        let se = auc_standard_error(0.5, 10, 10);
        assert!((se - 0.0175f64.sqrt()).abs() < 1e-12, "{se}");
    }

    #[test]
    fn warnings_for_short_files_and_few_trades() {
        assert!(warnings(MIN_CANDLES, MIN_SAMPLE).is_empty());
        let w = warnings(200, 3);
        assert_eq!(w.len(), 2);
        assert!(w[0].starts_with("only 200 candles"), "{w:?}");
        assert!(w[1].starts_with("only 3 trades"), "{w:?}");
        assert_eq!(
            warnings(5_000, 0),
            vec!["no trades: there is nothing to judge"]
        );
    }
}
