//! How a confidence reads to a person. The source's confidences (the ML engine's, the
//! built-in analyzer's) and the decisions made from them are uncalibrated scores in 0..=1:
//! they rank signals, they are not probabilities of winning. Every text that shows one goes
//! through [`fmt_score`]: a number, or through [`decision_score`] and [`score_phrase`] a
//! decision's (its score, or the mark of why it has none), so that showing a calibrated
//! figure beside the raw one changes one place.

use super::lifecycle::Origin;
use super::rules::{self, Decision};
use super::types::{Direction, MlSignal, Verdict};

/// A score as a person reads it: `0.83`.
pub fn fmt_score(confidence: f64) -> String {
    super::money::fmt_fixed(confidence, 2)
}

/// How a manual or agent order stands to the symbol's signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// The order goes the signal's way (a BUY on a bullish signal): it keeps the signal's score.
    Along(Direction),
    /// The order goes against the signal (a BUY on a bearish one): a counter-signal trade,
    /// score 0.
    Against(Direction),
    /// The signal is neutral, or there is no valid signal: nothing supports the order, score 0.
    Unsupported(Option<Direction>),
}

impl Support {
    /// Where an order of `action` stands to `signal` (`None`: no valid signal).
    pub fn of(action: Verdict, signal: Option<&MlSignal>) -> Support {
        let Some(s) = signal else {
            return Support::Unsupported(None);
        };
        match (action, s.direction) {
            (Verdict::Buy, Direction::Bullish) | (Verdict::Sell, Direction::Bearish) => {
                Support::Along(s.direction)
            }
            (Verdict::Buy, Direction::Bearish) | (Verdict::Sell, Direction::Bullish) => {
                Support::Against(s.direction)
            }
            _ => Support::Unsupported(Some(s.direction)),
        }
    }

    /// What stands where the score would, when the order has no score of the signal's:
    /// `counter-signal` or `no signal support`.
    pub fn mark(self) -> Option<&'static str> {
        match self {
            Support::Along(_) => None,
            Support::Against(_) => Some("counter-signal"),
            Support::Unsupported(_) => Some("no signal support"),
        }
    }
}

/// Where a stored manual or agent decision stands to the signal stored with it; `None` for
/// the rules' own decisions (they follow their signal by construction) and for a HOLD.
pub fn decision_support(d: &Decision, origin: Origin) -> Option<Support> {
    if origin == Origin::Auto || !d.action.is_actionable() {
        return None;
    }
    let signal = rules::parse_signal(&d.ml_signal).ok();
    Some(Support::of(d.action, signal.as_ref()))
}

/// The mark a manual or agent decision that no signal supports carries instead of a score.
pub fn decision_mark(d: &Decision, origin: Origin) -> Option<&'static str> {
    decision_support(d, origin).and_then(Support::mark)
}

/// A decision's score as a table cell shows it: `0.83`, or, for a manual or agent order that
/// no signal supports, `counter-signal` / `no signal support` (its score is 0 by rule).
pub fn decision_score(d: &Decision, origin: Origin) -> String {
    match (decision_mark(d, origin), d.raw_confidence) {
        (Some(mark), _) => mark.to_string(),
        (None, Some(raw)) => calibrated(d.confidence, raw),
        (None, None) => fmt_score(d.confidence),
    }
}

/// A confidence calibrated on the source's outcomes beside the score it came from:
/// `0.41 calibrated, 0.86 raw`.
pub fn calibrated(confidence: f64, raw: f64) -> String {
    format!(
        "{} calibrated, {} raw",
        fmt_score(confidence),
        fmt_score(raw)
    )
}

/// A decision's score as a sentence says it: `score 0.83`, or the mark alone.
pub fn score_phrase(d: &Decision, origin: Origin) -> String {
    match (decision_mark(d, origin), d.raw_confidence) {
        (Some(mark), _) => mark.to_string(),
        (None, Some(raw)) => format!("confidence {}", calibrated(d.confidence, raw)),
        (None, None) => format!("score {}", fmt_score(d.confidence)),
    }
}

/// Who made the signals: `analyzer` (the built-in analyzer of the simulated market) or `ML`
/// (an ML engine).
pub fn signal_maker(simulated: bool) -> &'static str {
    if simulated { "analyzer" } else { "ML" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A decision as the store keeps it (through serde, so fields added later take their defaults).
    fn decision(action: Verdict, direction: &str) -> Decision {
        serde_json::from_value(json!({
            "symbol": "BTC/USD",
            "action": action,
            "confidence": if direction == "bullish" { 0.87 } else { 0.0 },
            "reasoning": "",
            "entry_price": 45000.0, "take_profit": 47500.0, "stop_loss": 44000.0,
            "position_size": 0.01,
            "ml_signal": {"direction": direction, "confidence": 0.87, "entry_price": 45000.0,
                          "take_profit": 47500.0, "stop_loss": 44000.0, "risk_reward_ratio": 2.5},
            "amd_phase": null,
        }))
        .expect("a decision")
    }

    #[test]
    fn a_calibrated_confidence_shows_beside_its_raw_score() {
        let mut d = decision(Verdict::Buy, "bullish");
        d.confidence = 0.41;
        d.raw_confidence = Some(0.8625);
        assert_eq!(
            decision_score(&d, Origin::Auto),
            "0.41 calibrated, 0.86 raw"
        );
        assert_eq!(
            score_phrase(&d, Origin::Auto),
            "confidence 0.41 calibrated, 0.86 raw"
        );
    }

    #[test]
    fn a_score_shows_two_places() {
        assert_eq!(fmt_score(0.8265), "0.83");
        assert_eq!(fmt_score(0.0), "0.00");
        assert_eq!(fmt_score(1.0), "1.00");
    }

    #[test]
    fn a_decision_against_or_without_its_signal_shows_the_mark_not_a_number() {
        let along = decision(Verdict::Buy, "bullish");
        assert_eq!(decision_score(&along, Origin::Manual), "0.87");
        let against = decision(Verdict::Sell, "bullish");
        assert_eq!(decision_score(&against, Origin::Agent), "counter-signal");
        let neutral = decision(Verdict::Buy, "neutral");
        assert_eq!(
            decision_score(&neutral, Origin::Manual),
            "no signal support"
        );
        let mut none = decision(Verdict::Buy, "bullish");
        none.ml_signal = serde_json::Value::Null;
        none.confidence = 0.0;
        assert_eq!(decision_score(&none, Origin::Manual), "no signal support");
        // The rules' own decisions are never marked: they follow their signal.
        assert_eq!(decision_score(&against, Origin::Auto), "0.87");
        assert_eq!(score_phrase(&along, Origin::Manual), "score 0.87");
        assert_eq!(score_phrase(&against, Origin::Manual), "counter-signal");
    }
}
