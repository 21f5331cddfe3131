//! The AMD phase read from the latest readings.

use serde_json::json;

use super::Analyzer;
use super::math::{clamp01, ramp, round_dp, round_sig};
use crate::domain::{AmdAnalysis, Phase};

impl Analyzer {
    /// The phase and its confidence without the indicators object: the allocation-free path for
    /// hot loops such as a backtest (`phase()` spends most of its time building the JSON).
    pub fn phase_and_confidence(&self) -> Option<(Phase, f64)> {
        let r = self.readings.as_ref()?;
        let [acc, man, dist] = r.scores;
        // Ties go to the event-like phases: manipulation, then distribution.
        let mut ranked = [
            (Phase::Manipulation, man),
            (Phase::Distribution, dist),
            (Phase::Accumulation, acc),
        ];
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (phase, best) = ranked[0];
        if best <= 0.0 {
            // No evidence for anything: a dead market reads as a (zero-confidence) range.
            return Some((Phase::Accumulation, 0.0));
        }
        let margin = best - ranked[1].1;
        let confidence = clamp01(best * (0.5 + 0.5 * ramp(margin, 0.0, 0.3)));
        Some((phase, round_dp(confidence, 4)))
    }

    /// The AMD phase of the latest bar; `None` until warm.
    pub fn phase(&self) -> Option<AmdAnalysis> {
        let (phase, confidence) = self.phase_and_confidence()?;
        let r = self.readings.as_ref()?;
        let [acc, man, dist] = r.scores;
        let indicators = json!({
            "atr": round_sig(r.atr, 6),
            "chop": round_dp(r.chop, 2),
            "efficiency": round_dp(r.efficiency, 4),
            "width_atr": round_dp(r.width_atr, 3),
            "move_atr": round_dp(r.move_atr, 3),
            "outside_atr": round_dp(r.outside_atr, 3),
            "volume_ratio": round_dp(r.volume_ratio, 3),
            "cmf": round_dp(r.cmf, 4),
            "bars_since_sweep": r.bars_since_sweep,
            "accumulation_score": round_dp(acc, 4),
            "manipulation_score": round_dp(man, 4),
            "distribution_score": round_dp(dist, 4),
        });
        Some(AmdAnalysis {
            phase,
            confidence,
            indicators,
        })
    }
}
