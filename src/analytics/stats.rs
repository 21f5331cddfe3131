//! The statistics a trader needs to judge a score: win rates with their 95 % intervals, the
//! win rate a reward-to-risk ratio needs to break even, the Brier score against a constant,
//! the AUC, an isotonic calibration map, profit factor and drawdown. Pure functions on plain
//! numbers; nothing here knows where the numbers came from.
//!
//! An outcome is `(score, won)`: the score a decision carried (0..=1) and whether it won.

use serde::{Deserialize, Serialize};

/// Below this many outcomes a rate, a Brier score or an AUC is printed with a warning that it
/// says little: a 95 % interval on 30 coin flips is still ±18 points wide.
pub const MIN_SAMPLE: usize = 30;

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// A 95 % interval on a rate, both ends in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// The Wilson score interval (95 %) of `wins` out of `n`; none when `n` is 0. Unlike the
/// normal approximation it stays inside 0..=1 and is honest at 0 or n wins.
pub fn wilson(wins: usize, n: usize) -> Option<Interval> {
    if n == 0 {
        return None;
    }
    let n_f = n as f64;
    let p = wins.min(n) as f64 / n_f;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = Z95 * ((p * (1.0 - p) / n_f) + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    Some(Interval {
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// The win rate at which trades that win `reward_to_risk` R or lose 1 R break even, before
/// fees: p·rr = (1 − p), so p = 1 / (1 + rr). None for a ratio that is not finite and > 0.
pub fn break_even_win_rate(reward_to_risk: f64) -> Option<f64> {
    (reward_to_risk.is_finite() && reward_to_risk > 0.0).then(|| 1.0 / (1.0 + reward_to_risk))
}

/// The mean squared error of the scores as probabilities of winning; none without outcomes.
pub fn brier(outcomes: &[(f64, bool)]) -> Option<f64> {
    if outcomes.is_empty() {
        return None;
    }
    let sum: f64 = outcomes
        .iter()
        .map(|&(p, won)| {
            let y = if won { 1.0 } else { 0.0 };
            (p - y) * (p - y)
        })
        .sum();
    Some(sum / outcomes.len() as f64)
}

/// The Brier score of the constant forecast that always says the observed win rate b:
/// b·(1 − b). A score that does no better than this sorts nothing.
pub fn brier_constant(outcomes: &[(f64, bool)]) -> Option<f64> {
    if outcomes.is_empty() {
        return None;
    }
    let b = outcomes.iter().filter(|o| o.1).count() as f64 / outcomes.len() as f64;
    Some(b * (1.0 - b))
}

/// The area under the ROC curve: the chance that a random winner carried a higher score than
/// a random loser (ties count half). 0.5 is no better than a coin; none unless there are both
/// winners and losers.
pub fn auc(outcomes: &[(f64, bool)]) -> Option<f64> {
    let wins = outcomes.iter().filter(|o| o.1).count();
    let losses = outcomes.len() - wins;
    if wins == 0 || losses == 0 || outcomes.iter().any(|o| !o.0.is_finite()) {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = outcomes.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mann–Whitney: the sum of the winners' ranks, ties given their average rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1].0 == sorted[i].0 {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * sorted[i..=j].iter().filter(|o| o.1).count() as f64;
        i = j + 1;
    }
    let (w, l) = (wins as f64, losses as f64);
    Some((rank_sum - w * (w + 1.0) / 2.0) / (w * l))
}

/// Outcomes whose score lies in `[min, max)` (the last bucket also takes `max`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub score_min: f64,
    pub score_max: f64,
    pub count: usize,
    pub wins: usize,
    /// None when the bucket is empty.
    pub win_rate: Option<f64>,
    pub interval: Option<Interval>,
}

/// Count outcomes into buckets between consecutive `edges` (ascending); scores outside every
/// bucket are left out.
pub fn buckets(outcomes: &[(f64, bool)], edges: &[f64]) -> Vec<Bucket> {
    let last = edges.len().saturating_sub(2);
    edges
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let (lo, hi) = (w[0], w[1]);
            let inside = |s: f64| s >= lo && (s < hi || (i == last && s <= hi));
            let (mut count, mut wins) = (0, 0);
            for &(s, won) in outcomes {
                if inside(s) {
                    count += 1;
                    wins += usize::from(won);
                }
            }
            Bucket {
                score_min: lo,
                score_max: hi,
                count,
                wins,
                win_rate: (count > 0).then(|| wins as f64 / count as f64),
                interval: wilson(wins, count),
            }
        })
        .collect()
}

/// One step of a calibration map: scores in `score_min..=score_max` won `probability` of the
/// time, over `count` outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub score_min: f64,
    pub score_max: f64,
    pub probability: f64,
    pub count: usize,
}

/// A map from a score to the win rate observed at that score, never decreasing as the score
/// rises (isotonic regression by pool-adjacent-violators).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub steps: Vec<Step>,
    /// How many outcomes it was fitted to.
    pub outcomes: usize,
}

impl Calibration {
    /// Fit the map to `outcomes` (scores that are not finite are left out); none without any.
    pub fn fit(outcomes: &[(f64, bool)]) -> Option<Calibration> {
        let mut sorted: Vec<(f64, bool)> = outcomes
            .iter()
            .copied()
            .filter(|o| o.0.is_finite())
            .collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Equal scores form one block before any pooling: a map gives one answer per score,
        // and the order of equal scores must not change it.
        let mut groups: Vec<(f64, f64, f64, usize)> = Vec::new(); // min, max, wins, count
        for (s, won) in &sorted {
            let y = if *won { 1.0 } else { 0.0 };
            match groups.last_mut() {
                Some(g) if g.1 == *s => {
                    g.2 += y;
                    g.3 += 1;
                }
                _ => groups.push((*s, *s, y, 1)),
            }
        }
        let mut blocks: Vec<(f64, f64, f64, usize)> = Vec::new();
        for g in groups {
            blocks.push(g);
            // Pool while the block before has a win rate as high: a violator, or a step
            // that says nothing the one before does not.
            while blocks.len() >= 2 {
                let n = blocks.len();
                let (prev, cur) = (blocks[n - 2], blocks[n - 1]);
                if prev.2 / prev.3 as f64 >= cur.2 / cur.3 as f64 {
                    blocks[n - 2] = (prev.0, cur.1, prev.2 + cur.2, prev.3 + cur.3);
                    blocks.pop();
                } else {
                    break;
                }
            }
        }
        Some(Calibration {
            steps: blocks
                .into_iter()
                .map(|(lo, hi, wins, n)| Step {
                    score_min: lo,
                    score_max: hi,
                    probability: wins / n as f64,
                    count: n,
                })
                .collect(),
            outcomes: sorted.len(),
        })
    }

    /// The calibrated probability of `score`: the step it falls in; between two steps, the
    /// lower one (a score has to reach a step to earn its rate); below the first step, the
    /// first step's rate.
    pub fn apply(&self, score: f64) -> f64 {
        let mut p = self.steps.first().map_or(0.0, |s| s.probability);
        for s in &self.steps {
            if score >= s.score_min {
                p = s.probability;
            } else {
                break;
            }
        }
        p
    }
}

/// Gross profit over gross loss; 0 with no trades or no winners, none (infinite) when there
/// are winners and no loser.
pub fn profit_factor(pnls: &[f64]) -> Option<f64> {
    let gains: f64 = pnls.iter().filter(|p| **p > 0.0).sum();
    let losses: f64 = -pnls.iter().filter(|p| **p < 0.0).sum::<f64>();
    if losses > 0.0 {
        Some(gains / losses)
    } else if gains > 0.0 {
        None
    } else {
        Some(0.0)
    }
}

/// The largest fall of an equity curve from a running peak.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Drawdown {
    /// In money.
    pub amount: f64,
    /// In percent of the peak it fell from.
    pub percent: f64,
}

/// The worst drawdown of `start` plus the running sum of `pnls`, in order.
pub fn max_drawdown(start: f64, pnls: &[f64]) -> Drawdown {
    let mut equity = start;
    let mut peak = start;
    let mut worst = Drawdown {
        amount: 0.0,
        percent: 0.0,
    };
    for p in pnls {
        equity += p;
        peak = peak.max(equity);
        let amount = peak - equity;
        if amount > worst.amount {
            worst = Drawdown {
                amount,
                percent: if peak > 0.0 {
                    amount / peak * 100.0
                } else {
                    0.0
                },
            };
        }
    }
    worst
}

/// The mean of `values`; none when empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn wilson_matches_the_textbook_figures() {
        // 8 of 10: the Wilson 95 % interval is 0.4902 to 0.9433.
        let i = wilson(8, 10).unwrap();
        assert!((i.low - 0.4902).abs() < 1e-4, "{i:?}");
        assert!((i.high - 0.9433).abs() < 1e-4, "{i:?}");
        // No wins in 10 still leaves up to 27.8 % possible.
        let z = wilson(0, 10).unwrap();
        assert_eq!(z.low, 0.0);
        assert!((z.high - 0.2775).abs() < 1e-4, "{z:?}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn break_even_of_two_to_one_is_a_third() {
        assert!(close(break_even_win_rate(2.0).unwrap(), 1.0 / 3.0));
        assert!(close(break_even_win_rate(1.0).unwrap(), 0.5));
        assert_eq!(break_even_win_rate(0.0), None);
        assert_eq!(break_even_win_rate(f64::NAN), None);
    }

    #[test]
    fn brier_of_a_constant_and_of_scores() {
        let o = [(0.9, true), (0.9, false), (0.1, false), (0.1, true)];
        // Each forecast is off by 0.1 or 0.9: (0.01 + 0.81 + 0.01 + 0.81) / 4.
        assert!(close(brier(&o).unwrap(), 0.41));
        // Half won: the constant 0.5 scores 0.25, better than these scores.
        assert!(close(brier_constant(&o).unwrap(), 0.25));
        assert_eq!(brier(&[]), None);
    }

    #[test]
    fn auc_ranks_winners_above_losers() {
        let perfect = [(0.9, true), (0.8, true), (0.3, false), (0.2, false)];
        assert!(close(auc(&perfect).unwrap(), 1.0));
        let inverted = [(0.1, true), (0.2, true), (0.8, false), (0.9, false)];
        assert!(close(auc(&inverted).unwrap(), 0.0));
        // One tie between a winner and a loser counts half: 3.5 of 4 pairs.
        let tied = [(0.9, true), (0.5, true), (0.5, false), (0.1, false)];
        assert!(close(auc(&tied).unwrap(), 0.875));
        assert_eq!(auc(&[(0.5, true)]), None);
    }

    #[test]
    fn buckets_count_and_bound_the_last_edge() {
        let o = [(0.75, true), (0.79, false), (0.8, true), (1.0, true)];
        let b = buckets(&o, &[0.75, 0.8, 1.0]);
        assert_eq!((b[0].count, b[0].wins), (2, 1));
        assert_eq!((b[1].count, b[1].wins), (2, 2));
        assert_eq!(b[0].win_rate, Some(0.5));
        assert!(b[0].interval.is_some());
        let empty = buckets(&[], &[0.0, 1.0]);
        assert_eq!((empty[0].count, empty[0].win_rate), (0, None));
    }

    #[test]
    fn isotonic_fit_pools_violators_and_never_falls() {
        // 0.6 won, 0.7 lost, 0.8 won twice: 0.6 and 0.7 pool to 0.5.
        let o = [(0.6, true), (0.7, false), (0.8, true), (0.8, true)];
        let c = Calibration::fit(&o).unwrap();
        assert_eq!(c.steps.len(), 2);
        assert_eq!((c.steps[0].score_min, c.steps[0].score_max), (0.6, 0.7));
        assert!(close(c.steps[0].probability, 0.5));
        assert!(close(c.steps[1].probability, 1.0));
        assert_eq!(c.outcomes, 4);
        assert!(close(c.apply(0.65), 0.5));
        assert!(close(c.apply(0.75), 0.5));
        assert!(close(c.apply(0.95), 1.0));
        assert!(close(c.apply(0.1), 0.5));
        for w in c.steps.windows(2) {
            assert!(w[0].probability <= w[1].probability);
        }
        assert_eq!(Calibration::fit(&[]), None);
        // The order of equal scores changes nothing: a loss first at 0.8 is no violator.
        let o = [
            (0.6, false),
            (0.6, true),
            (0.8, false),
            (0.8, true),
            (0.8, true),
        ];
        let c = Calibration::fit(&o).unwrap();
        assert_eq!(c.steps.len(), 2);
        assert!(close(c.steps[1].probability, 2.0 / 3.0));
    }

    #[test]
    fn profit_factor_and_drawdown_by_hand() {
        assert!(close(profit_factor(&[100.0, -50.0, 50.0]).unwrap(), 3.0));
        assert_eq!(profit_factor(&[10.0]), None);
        assert_eq!(profit_factor(&[]), Some(0.0));
        // 1000 → 1100 → 990 → 1040: the worst fall is 110 from 1100, 10 %.
        let d = max_drawdown(1000.0, &[100.0, -110.0, 50.0]);
        assert!(close(d.amount, 110.0));
        assert!(close(d.percent, 10.0));
    }
}
