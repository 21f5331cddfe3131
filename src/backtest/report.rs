//! The backtest report: the SPEC's JSON, and the numbers the terminal report draws from.
//!
//! - `win_rate` is a fraction (0..=1, comparable with a confidence); a win is a trade whose P&L
//!   after fees is > 0.
//! - `max_drawdown_percent`: the largest fall from a running peak of the equity marked to market
//!   at each bar's close, in percent of that peak.
//! - `sharpe`: mean over standard deviation of the per-bar returns of that equity, annualized by
//!   √(bars per year) from the file's typical bar interval (365.25 days a year, risk-free rate 0).
//! - `profit_factor`: gross profit over gross loss of the trades after fees; 0 with no trades,
//!   `null` (infinite) when there are winners and no loser.
//! - `calibration`: 0.05-wide decision-confidence buckets from `min_confidence` up to 1 (the last
//!   one includes 1), each with its wins and the Wilson 95 % interval on its win rate (null
//!   when empty). The confidence is the analyzer's score, not a probability.
//! - `break_even_win_rate`, `buy_and_hold`, `score`, `warnings`: see [`super::edge`];
//!   `baseline`: see [`super::baseline`].

use super::baseline::{self, Baseline, BaselineOptions};
use super::csv::{CandleSeries, format_time_ms};
use super::edge::{self, BreakEven, BuyAndHold, ScoreQuality};
use super::replay::{Outcome, Settings, Trade};
use crate::analytics::stats::{self, Interval};
use crate::domain::Phase;
use crate::domain::rules::round_dp;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub trades: usize,
    pub wins: usize,
    pub win_rate: f64,
    pub start_equity: f64,
    pub final_equity: f64,
    pub total_return_percent: f64,
    pub max_drawdown_percent: f64,
    pub sharpe: f64,
    /// `None` (JSON null) when there are winners and no loser: infinite.
    pub profit_factor: Option<f64>,
    pub fees_paid: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TradeRow {
    pub side: &'static str,
    pub entry_time: String,
    pub entry_price: f64,
    pub exit_time: String,
    pub exit_price: f64,
    pub quantity: f64,
    pub pnl: f64,
    pub fees: f64,
    pub exit_reason: &'static str,
    pub confidence: f64,
    pub amd_phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Group {
    pub trades: usize,
    pub win_rate: f64,
    pub pnl: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ByPhase {
    pub accumulation: Group,
    pub manipulation: Group,
    pub distribution: Group,
}

impl ByPhase {
    pub fn get(&self, p: Phase) -> &Group {
        match p {
            Phase::Accumulation => &self.accumulation,
            Phase::Manipulation => &self.manipulation,
            Phase::Distribution => &self.distribution,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    pub confidence_min: f64,
    pub confidence_max: f64,
    pub trades: usize,
    pub win_rate: f64,
    pub wins: usize,
    /// The Wilson 95 % interval on `win_rate`; `None` (null) with no trades.
    pub interval: Option<Interval>,
}

/// The SPEC's `--json` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub candles: usize,
    pub symbol: String,
    pub summary: Summary,
    pub trades: Vec<TradeRow>,
    pub by_phase: ByPhase,
    pub calibration: Vec<Bucket>,
    pub break_even_win_rate: BreakEven,
    pub buy_and_hold: Option<BuyAndHold>,
    pub baseline: Baseline,
    pub score: ScoreQuality,
    pub warnings: Vec<String>,
}

fn group<'a>(trades: impl Iterator<Item = &'a Trade>) -> Group {
    let (mut n, mut wins, mut pnl) = (0usize, 0usize, 0.0);
    for t in trades {
        n += 1;
        wins += usize::from(t.pnl > 0.0);
        pnl += t.pnl;
    }
    Group {
        trades: n,
        win_rate: rate(wins, n),
        pnl: round_dp(pnl, 2),
    }
}

fn rate(wins: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        round_dp(wins as f64 / n as f64, 4)
    }
}

/// The largest fall from a running peak, in percent of the peak.
pub fn max_drawdown_percent(start: f64, equity: &[f64]) -> f64 {
    let mut peak = start;
    let mut worst = 0.0f64;
    for &e in equity {
        peak = peak.max(e);
        if peak > 0.0 {
            worst = worst.max((peak - e) / peak);
        }
    }
    worst * 100.0
}

/// The drawdown at each point, in percent (≤ 0).
pub fn drawdown_series(start: f64, equity: &[f64]) -> Vec<f64> {
    let mut peak = start;
    equity
        .iter()
        .map(|&e| {
            peak = peak.max(e);
            if peak > 0.0 {
                (e - peak) / peak * 100.0
            } else {
                0.0
            }
        })
        .collect()
}

/// Annualized Sharpe ratio of per-bar returns (risk-free 0); 0 when undefined.
pub fn sharpe(start: f64, equity: &[f64], interval_ms: Option<i64>) -> f64 {
    let Some(iv) = interval_ms.filter(|&v| v > 0) else {
        return 0.0;
    };
    if equity.len() < 2 {
        return 0.0;
    }
    let (mut n, mut mean, mut m2) = (0f64, 0f64, 0f64);
    let mut prev = start;
    for &e in equity {
        let r = if prev != 0.0 { e / prev - 1.0 } else { 0.0 };
        prev = e;
        // Welford: one pass, stable.
        n += 1.0;
        let d = r - mean;
        mean += d / n;
        m2 += d * (r - mean);
    }
    let sd = (m2 / (n - 1.0)).sqrt();
    if sd.is_nan() || sd <= 0.0 {
        return 0.0;
    }
    let bars_per_year = 365.25 * 86_400_000.0 / iv as f64;
    mean / sd * bars_per_year.sqrt()
}

/// The calibration buckets for `min_confidence`: (min, max) pairs, 0.05 wide, up to 1.
pub fn bucket_edges(min_confidence: f64) -> Vec<(f64, f64)> {
    let lo = min_confidence.clamp(0.0, 1.0);
    let count = (((1.0 - lo) / 0.05) - 1e-9).ceil().max(1.0) as usize;
    (0..count)
        .map(|k| {
            let a = round_dp(lo + 0.05 * k as f64, 4);
            let b = round_dp((lo + 0.05 * (k + 1) as f64).min(1.0), 4);
            (a, b)
        })
        .collect()
}

fn bucket_of(edges: &[(f64, f64)], confidence: f64) -> usize {
    edges
        .iter()
        .position(|&(_, hi)| confidence < hi)
        .unwrap_or(edges.len().saturating_sub(1))
}

/// The report, with the random baseline's default runs and seed.
pub fn build(series: &CandleSeries, settings: &Settings, outcome: &Outcome) -> Report {
    build_with(series, settings, outcome, BaselineOptions::default())
}

/// The report, with `options.runs` random-entry runs from `options.seed`.
pub fn build_with(
    series: &CandleSeries,
    settings: &Settings,
    outcome: &Outcome,
    options: BaselineOptions,
) -> Report {
    let trades = &outcome.trades;
    let start = outcome.start_equity;
    let wins = trades.iter().filter(|t| t.pnl > 0.0).count();
    let pnl_sum: f64 = trades.iter().map(|t| t.pnl).sum();
    let fees: f64 = trades.iter().map(|t| t.fees).sum();
    let gross_profit: f64 = trades.iter().filter(|t| t.pnl > 0.0).map(|t| t.pnl).sum();
    let gross_loss: f64 = -trades
        .iter()
        .filter(|t| t.pnl < 0.0)
        .map(|t| t.pnl)
        .sum::<f64>();
    let profit_factor = if gross_loss > 0.0 {
        Some(round_dp(gross_profit / gross_loss, 4))
    } else if gross_profit > 0.0 {
        None
    } else {
        Some(0.0)
    };
    let final_equity = round_dp(start + pnl_sum, 2);
    let summary = Summary {
        trades: trades.len(),
        wins,
        win_rate: rate(wins, trades.len()),
        start_equity: start,
        final_equity,
        total_return_percent: if start > 0.0 {
            round_dp((final_equity - start) / start * 100.0, 4)
        } else {
            0.0
        },
        max_drawdown_percent: round_dp(max_drawdown_percent(start, &outcome.equity), 4),
        sharpe: round_dp(sharpe(start, &outcome.equity, series.interval_ms), 4),
        profit_factor,
        fees_paid: round_dp(fees, 2),
    };
    let time = |bar: usize| format_time_ms(series.times_ms[bar]);
    let rows = trades
        .iter()
        .map(|t| TradeRow {
            side: t.side.as_str(),
            entry_time: time(t.entry_bar),
            entry_price: t.entry_price,
            exit_time: time(t.exit_bar),
            exit_price: t.exit_price,
            quantity: t.quantity,
            pnl: t.pnl,
            fees: t.fees,
            exit_reason: t.exit_reason,
            confidence: t.confidence,
            amd_phase: t.phase,
        })
        .collect();
    let of_phase = |p: Phase| group(trades.iter().filter(|t| t.phase == p));
    let edges = bucket_edges(settings.risk.min_confidence);
    let mut tally = vec![(0usize, 0usize); edges.len()];
    for t in trades {
        let k = bucket_of(&edges, t.confidence);
        tally[k].0 += 1;
        tally[k].1 += usize::from(t.pnl > 0.0);
    }
    let baseline = baseline::run(
        &series.candles,
        trades,
        outcome.first_decision_bar,
        settings,
        options,
        (summary.total_return_percent, summary.win_rate),
    );
    Report {
        candles: series.len(),
        symbol: settings.symbol.clone(),
        break_even_win_rate: edge::break_even(series, trades),
        buy_and_hold: edge::buy_and_hold(series, trades, start, settings),
        baseline,
        score: edge::score_quality(trades),
        warnings: edge::warnings(series.len(), trades.len()),
        summary,
        trades: rows,
        by_phase: ByPhase {
            accumulation: of_phase(Phase::Accumulation),
            manipulation: of_phase(Phase::Manipulation),
            distribution: of_phase(Phase::Distribution),
        },
        calibration: edges
            .iter()
            .zip(tally)
            .map(|(&(lo, hi), (n, w))| Bucket {
                confidence_min: lo,
                confidence_max: hi,
                trades: n,
                win_rate: rate(w, n),
                wins: w,
                interval: stats::wilson(w, n).map(|i| Interval {
                    low: round_dp(i.low, 4),
                    high: round_dp(i.high, 4),
                }),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_from_min_confidence() {
        let e = bucket_edges(0.75);
        assert_eq!(
            e,
            vec![
                (0.75, 0.8),
                (0.8, 0.85),
                (0.85, 0.9),
                (0.9, 0.95),
                (0.95, 1.0)
            ]
        );
        assert_eq!(bucket_of(&e, 0.75), 0);
        assert_eq!(bucket_of(&e, 0.7999), 0);
        assert_eq!(bucket_of(&e, 0.8), 1);
        assert_eq!(bucket_of(&e, 1.0), 4);
        assert_eq!(bucket_edges(0.0).len(), 20);
        assert_eq!(bucket_edges(1.0), vec![(1.0, 1.0)]);
        assert_eq!(bucket_edges(0.98), vec![(0.98, 1.0)]);
    }

    #[test]
    fn drawdown_on_a_known_path() {
        // 100 → 120 → 90 (−25 % from 120) → 130 → 117 (−10 %).
        let path = [120.0, 90.0, 130.0, 117.0];
        assert!((max_drawdown_percent(100.0, &path) - 25.0).abs() < 1e-12);
        let dd = drawdown_series(100.0, &path);
        assert_eq!(dd[0], 0.0);
        assert!((dd[1] + 25.0).abs() < 1e-12);
        assert!((dd[3] + 10.0).abs() < 1e-12);
        assert_eq!(max_drawdown_percent(100.0, &[101.0, 102.0]), 0.0);
    }

    #[test]
    fn sharpe_is_zero_when_flat_and_positive_when_rising() {
        assert_eq!(sharpe(100.0, &[100.0; 10], Some(3_600_000)), 0.0);
        let up: Vec<f64> = (1..50).map(|i| 100.0 + i as f64 + (i % 3) as f64).collect();
        assert!(sharpe(100.0, &up, Some(3_600_000)) > 0.0);
        assert_eq!(sharpe(100.0, &up, None), 0.0);
    }
}
