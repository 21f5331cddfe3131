//! `report`: what the decisions made. Realized performance of the closed trades (overall, by
//! symbol, by origin), the outcome of every followed decision, the value of the veto (what the
//! cancelled and expired decisions would have made against what the executed ones did), and
//! for each source of scores a reliability table: is a higher score a likelier win?
//!
//! Definitions, so every figure can be checked by hand:
//! - A closed trade wins when its realized P&L is > 0. Its R is that P&L over what it risked
//!   at its stop-loss (quantity × |entry − stop-loss|); expectancy is the mean R.
//! - An outcome wins when it made more than 0 R (see `domain::outcome`): its take-profit, or
//!   a gain at the horizon. Open outcomes and those with no prices are counted, never judged.
//! - Money a vetoed decision would have made: its R times what it risked at its size, to the
//!   cent (half away from zero).
//! - Win rates carry a Wilson 95 % interval; below [`MIN_SAMPLE`] a figure says it is too
//!   few to judge. Break-even win rate: 1 / (1 + mean planned reward-to-risk), before fees.
//! - Brier score: the mean squared gap between the score and the result (1 won, 0 lost);
//!   `brier_constant` is what always forecasting the observed win rate scores. AUC: the
//!   chance a random winner carried a higher score than a random loser (0.5 = a coin).

use super::stats::{self, Bucket, Calibration, Drawdown, Interval, MIN_SAMPLE};
use crate::domain::lifecycle::{OutcomeState, Status};
use crate::domain::money::{mul_exact, round_dp};
use crate::store::{ClosedTrade, FollowedDecision};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Score buckets of the reliability tables.
pub const SCORE_EDGES: [f64; 7] = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// Realized performance of a set of closed trades.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    pub trades: usize,
    pub wins: usize,
    pub win_rate: Option<f64>,
    pub win_rate_interval: Option<Interval>,
    pub realized_pnl: f64,
    /// Mean R of the trades (P&L over the money risked at the stop).
    pub expectancy_r: Option<f64>,
    /// Gross profit over gross loss; null when there are winners and no loser (infinite).
    pub profit_factor: Option<f64>,
    /// From the account size, the realized P&L added in the order the trades closed.
    pub max_drawdown: Drawdown,
    pub too_few: bool,
}

/// What a group of followed decisions made or would have made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Followed {
    pub decisions: usize,
    pub open: usize,
    /// Resolved with an R multiple (take-profit, stop-loss or horizon).
    pub judged: usize,
    pub take_profit: usize,
    pub stop_loss: usize,
    pub horizon: usize,
    pub no_prices: usize,
    pub wins: usize,
    pub total_r: f64,
    pub mean_r: Option<f64>,
    /// Σ R × the money each risked at its size (decisions with a size only).
    pub money: f64,
}

/// The value of the veto: the decisions the trader (or the clock) turned down, against the
/// ones executed, and what the `min_confidence` filter turned down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Veto {
    pub executed: Followed,
    pub cancelled: Followed,
    pub expired: Followed,
    pub pending: Followed,
    pub below_min_confidence: Followed,
    /// Cancelled and expired together: what vetoing them saved (when < 0) or cost (> 0).
    pub vetoed: Followed,
}

/// How a source's scores sort winners from losers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reliability {
    pub source: String,
    /// Resolved outcomes with an R multiple: what every figure below is computed on.
    pub outcomes: usize,
    pub open: usize,
    pub wins: usize,
    pub win_rate: Option<f64>,
    pub win_rate_interval: Option<Interval>,
    pub mean_reward_to_risk: Option<f64>,
    pub break_even_win_rate: Option<f64>,
    pub brier: Option<f64>,
    pub brier_constant: Option<f64>,
    pub auc: Option<f64>,
    pub buckets: Vec<Bucket>,
    /// The isotonic map from score to observed win rate, once there are enough outcomes.
    pub calibration: Option<Calibration>,
    /// Why a figure is missing or not to be trusted; none when the sample is large enough.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub user_id: String,
    /// The first day (or instant) counted; null: everything.
    pub since: Option<String>,
    pub account_size: f64,
    pub outcome_horizon_hours: f64,
    pub performance: Performance,
    pub by_symbol: BTreeMap<String, Performance>,
    pub by_origin: BTreeMap<String, Performance>,
    pub veto: Veto,
    pub reliability: Vec<Reliability>,
}

/// What the report is built from.
pub struct Inputs<'a> {
    pub user_id: &'a str,
    pub since: Option<String>,
    pub account_size: f64,
    pub outcome_horizon_hours: f64,
    pub followed: &'a [FollowedDecision],
    pub closed: &'a [ClosedTrade],
}

fn r4(x: f64) -> f64 {
    round_dp(x, 4)
}

pub fn performance(trades: &[&ClosedTrade], account_size: f64) -> Performance {
    let pnls: Vec<f64> = trades.iter().map(|t| t.realized_pnl).collect();
    let wins = pnls.iter().filter(|p| **p > 0.0).count();
    let rs: Vec<f64> = trades
        .iter()
        .filter(|t| t.risk_amount() > 0.0)
        .map(|t| t.realized_pnl / t.risk_amount())
        .collect();
    let dd = stats::max_drawdown(account_size, &pnls);
    let n = trades.len();
    Performance {
        trades: n,
        wins,
        win_rate: (n > 0).then(|| r4(wins as f64 / n as f64)),
        win_rate_interval: stats::wilson(wins, n),
        realized_pnl: round_dp(pnls.iter().sum(), 2),
        expectancy_r: stats::mean(&rs).map(r4),
        profit_factor: stats::profit_factor(&pnls).map(r4),
        max_drawdown: Drawdown {
            amount: round_dp(dd.amount, 2),
            percent: round_dp(dd.percent, 2),
        },
        too_few: n < MIN_SAMPLE,
    }
}

fn followed<'a>(items: impl Iterator<Item = &'a FollowedDecision>) -> Followed {
    let mut f = Followed::default();
    for d in items {
        f.decisions += 1;
        match d.outcome.state {
            OutcomeState::Open => f.open += 1,
            OutcomeState::TakeProfit => f.take_profit += 1,
            OutcomeState::StopLoss => f.stop_loss += 1,
            OutcomeState::Horizon => f.horizon += 1,
            OutcomeState::NoPrices => f.no_prices += 1,
        }
        if let Some(r) = d
            .outcome
            .r_multiple
            .filter(|_| d.outcome.state.is_resolved())
        {
            f.judged += 1;
            f.wins += usize::from(r > 0.0);
            f.total_r += r;
            if let Some(risk) = d.risk_amount {
                // Each to the cent, as a realized P&L is.
                f.money += round_dp(mul_exact(r, risk), 2);
            }
        }
    }
    f.mean_r = (f.judged > 0).then(|| r4(f.total_r / f.judged as f64));
    f.total_r = r4(f.total_r);
    f.money = round_dp(f.money, 2);
    f
}

fn reliability(source: &str, items: &[&FollowedDecision]) -> Reliability {
    let judged: Vec<&FollowedDecision> = items
        .iter()
        .copied()
        .filter(|d| d.outcome.state.is_resolved() && d.outcome.r_multiple.is_some())
        .collect();
    let pairs: Vec<(f64, bool)> = judged
        .iter()
        .map(|d| (d.outcome.score, d.outcome.r_multiple.unwrap_or(0.0) > 0.0))
        .collect();
    let n = pairs.len();
    let wins = pairs.iter().filter(|p| p.1).count();
    let rr: Vec<f64> = judged
        .iter()
        .map(|d| d.outcome.levels.reward_to_risk())
        .collect();
    let mean_rr = stats::mean(&rr);
    let auc = stats::auc(&pairs);
    let note = if n == 0 {
        Some("no judged outcomes yet".to_string())
    } else if n < MIN_SAMPLE {
        Some(format!(
            "only {n} judged outcomes: too few to judge ({MIN_SAMPLE} needed)"
        ))
    } else if auc.is_none() {
        Some("every outcome went the same way: no AUC".to_string())
    } else {
        None
    };
    Reliability {
        source: source.to_string(),
        outcomes: n,
        open: items
            .iter()
            .filter(|d| d.outcome.state == OutcomeState::Open)
            .count(),
        wins,
        win_rate: (n > 0).then(|| r4(wins as f64 / n as f64)),
        win_rate_interval: stats::wilson(wins, n),
        mean_reward_to_risk: mean_rr.map(r4),
        break_even_win_rate: mean_rr.and_then(stats::break_even_win_rate).map(r4),
        brier: stats::brier(&pairs).map(r4),
        brier_constant: stats::brier_constant(&pairs).map(r4),
        auc: auc.map(r4),
        buckets: stats::buckets(&pairs, &SCORE_EDGES),
        calibration: super::calibration_for(&pairs),
        note,
    }
}

pub fn build(i: &Inputs<'_>) -> Report {
    let all: Vec<&ClosedTrade> = i.closed.iter().collect();
    let mut by_symbol: BTreeMap<String, Vec<&ClosedTrade>> = BTreeMap::new();
    let mut by_origin: BTreeMap<String, Vec<&ClosedTrade>> = BTreeMap::new();
    for t in i.closed {
        by_symbol.entry(t.symbol.clone()).or_default().push(t);
        by_origin
            .entry(t.origin.as_str().to_string())
            .or_default()
            .push(t);
    }
    let of = |s: Status| {
        followed(
            i.followed
                .iter()
                .filter(move |d| d.status == s && d.action.is_actionable()),
        )
    };
    let veto = Veto {
        executed: of(Status::Executed),
        cancelled: of(Status::Cancelled),
        expired: of(Status::Expired),
        pending: of(Status::Pending),
        below_min_confidence: followed(i.followed.iter().filter(|d| !d.action.is_actionable())),
        vetoed: followed(i.followed.iter().filter(|d| {
            d.action.is_actionable() && matches!(d.status, Status::Cancelled | Status::Expired)
        })),
    };
    let mut by_source: BTreeMap<&str, Vec<&FollowedDecision>> = BTreeMap::new();
    for d in i.followed {
        by_source.entry(&d.outcome.source).or_default().push(d);
    }
    Report {
        user_id: i.user_id.to_string(),
        since: i.since.clone(),
        account_size: i.account_size,
        outcome_horizon_hours: i.outcome_horizon_hours,
        performance: performance(&all, i.account_size),
        by_symbol: by_symbol
            .into_iter()
            .map(|(k, v)| (k, performance(&v, i.account_size)))
            .collect(),
        by_origin: by_origin
            .into_iter()
            .map(|(k, v)| (k, performance(&v, i.account_size)))
            .collect(),
        veto,
        reliability: by_source
            .into_iter()
            .map(|(s, v)| reliability(s, &v))
            .collect(),
    }
}

/// `--since`: a day (`2026-12-01`, from its start in UTC) or an RFC 3339 instant; ms.
pub fn parse_since(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|dt| dt.and_utc().timestamp_millis())
            .ok_or_else(|| format!("--since {s:?}: not a day"));
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|dt| dt.timestamp_millis())
        .map_err(|_| {
            format!(
                "--since {s:?}: expected a day like 2026-12-01 or a time like 2026-12-01T09:30:00Z"
            )
        })
}
