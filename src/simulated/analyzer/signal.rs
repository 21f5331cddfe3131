//! The trend signal read from the latest readings.

use super::Analyzer;
use super::math::{clamp01, round_dp};
use crate::domain::{Direction, MlSignal};

impl Analyzer {
    /// The trend signal at the latest close; `None` until warm.
    pub fn signal(&self) -> Option<MlSignal> {
        let r = self.readings?;
        let entry = r.close;
        let trend = ((r.ema_fast - r.ema_slow) / r.atr).tanh();
        let momentum = (r.rsi - 50.0) / 50.0;
        let mut score = 0.6 * trend + 0.4 * momentum;
        if (score > 0.0 && r.rsi > 75.0) || (score < 0.0 && r.rsi < 25.0) {
            score *= 0.5;
        }
        let direction = if score > 0.25 {
            Direction::Bullish
        } else if score < -0.25 {
            Direction::Bearish
        } else {
            Direction::Neutral
        };
        let confidence = signal_confidence(score);
        // The ATR floor keeps SL off the entry; the cap keeps a long's SL above zero.
        let atr = r.atr.clamp(entry * 1e-4, entry * 0.3);
        let (stop_loss, take_profit) = match direction {
            Direction::Bearish => (entry + 1.5 * atr, entry - 3.0 * atr),
            Direction::Bullish | Direction::Neutral => (entry - 1.5 * atr, entry + 3.0 * atr),
        };
        Some(MlSignal {
            direction,
            confidence,
            entry_price: entry,
            take_profit,
            stop_loss,
            risk_reward_ratio: 2.0,
        })
    }
}

/// Maps |score| to 0..1 with a logistic curve: ≈0.05 at the ±0.25 direction threshold, 0.5 at
/// 0.55, ≈0.82 at 0.7 and ≈0.92 at 0.8 (the most an unstretched score reaches).
fn signal_confidence(score: f64) -> f64 {
    let c = 1.0 / (1.0 + (-10.0 * (score.abs() - 0.55)).exp());
    round_dp(clamp01(c), 4)
}
