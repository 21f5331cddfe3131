//! Rule 1 of the product contract: ML direction × AMD phase → verdict and decision confidence.
//! The table reads as the contract writes it.

use super::types::{Direction, Phase, Verdict};

/// Rule 1: the matrix. Returns the verdict and the decision confidence.
pub fn matrix(direction: Direction, phase: Phase, ml_confidence: f64) -> (Verdict, f64) {
    use Direction::*;
    use Phase::*;
    match (direction, phase) {
        (Bullish, Accumulation) => (Verdict::Buy, ml_confidence * 0.95),
        (Bullish, Manipulation) => (Verdict::Buy, ml_confidence * 0.70),
        (Bullish, Distribution) => (Verdict::Hold, 0.30),
        (Bearish, Distribution) => (Verdict::Sell, ml_confidence * 0.95),
        (Bearish, Manipulation) => (Verdict::Sell, ml_confidence * 0.70),
        (Bearish, Accumulation) => (Verdict::Hold, 0.30),
        (Neutral, _) => (Verdict::Hold, 0.0),
    }
}
