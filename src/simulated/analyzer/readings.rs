//! The numbers behind a bar: stop-run detection, efficiency ratios and the three phase scores.

use super::math::{clamp01, ramp};
use super::{Analyzer, Readings, Sweep};

impl Analyzer {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn detect_sweep(
        &mut self,
        o: f64,
        h: f64,
        l: f64,
        cl: f64,
        atr: f64,
        hi: f64,
        lo: f64,
        volume_ratio: f64,
    ) {
        let atr = atr.max(f64::MIN_POSITIVE);
        let min_beyond = self.p.sweep_min_atr * atr;
        let range = (h - l).max(f64::MIN_POSITIVE);
        let (dir, depth, wick, extreme) = if h > hi + min_beyond && cl < hi {
            (1.0, (h - hi) / atr, (h - o.max(cl)) / range, h)
        } else if l < lo - min_beyond && cl > lo {
            (-1.0, (lo - l) / atr, (o.min(cl) - l) / range, l)
        } else {
            return;
        };
        let long_wick = wick >= 0.4;
        let heavy = volume_ratio >= 1.5;
        if !(long_wick || heavy) {
            return;
        }
        // A run out of a trend is usually just a pullback: weigh it by how range-like the prior bars were.
        let prior_eff = self.efficiency().unwrap_or(0.0);
        let strength = (0.45
            + 0.15 * ramp(depth, self.p.sweep_min_atr, 1.0)
            + 0.1 * ramp(wick, 0.4, 0.8)
            + 0.3 * ramp(volume_ratio, 1.0, 2.5))
            * (1.0 - 0.5 * ramp(prior_eff, 0.25, 0.6));
        self.sweep = Some(Sweep {
            bar: self.bars,
            dir,
            extreme,
            strength,
        });
    }

    /// Kaufman efficiency ratio over the last N bars.
    fn efficiency(&self) -> Option<f64> {
        if !self.closes.is_full() {
            return None;
        }
        let net = (self.closes.back(0) - self.closes.oldest()?).abs();
        let path = self.abs_moves.sum();
        Some(if path > 0.0 { clamp01(net / path) } else { 0.0 })
    }

    /// Efficiency ratio over the last `fast_bars` bars.
    fn fast_efficiency(&self) -> Option<f64> {
        let k = self.fast_moves.cap();
        if !self.fast_moves.is_full() || self.closes.len() <= k {
            return None;
        }
        let net = (self.closes.back(0) - self.closes.back(k)).abs();
        let path = self.fast_moves.sum();
        Some(if path > 0.0 { clamp01(net / path) } else { 0.0 })
    }

    pub(super) fn compute(
        &self,
        close: f64,
        prior_hi: f64,
        prior_lo: f64,
        volume_ratio: f64,
    ) -> Option<Readings> {
        let atr = self.atr.value()?.max(close * 1e-9);
        let n = self.p.range_bars as f64;

        let chop_span = self.chop_hi.value()? - self.chop_lo.value()?;
        let chop = if chop_span > 0.0 {
            let ratio = self.chop_tr.sum() / chop_span;
            (100.0 * ratio.max(1.0).log10() / (self.p.chop_period as f64).log10()).clamp(0.0, 100.0)
        } else {
            100.0
        };

        let net_move = (close - self.closes.oldest()?).abs();
        let efficiency = self.efficiency()?;
        let width_atr = (prior_hi - prior_lo).max(0.0) / atr;
        let move_atr = net_move / (atr * n.sqrt());
        let outside_atr = (close - prior_hi).max(prior_lo - close).max(0.0) / atr;
        let vol_sum = self.volumes.sum();
        let cmf = if vol_sum > 0.0 {
            (self.money_flow.sum() / vol_sum).clamp(-1.0, 1.0)
        } else {
            0.0
        };

        let fast_eff = self.fast_efficiency()?;
        let accumulation = 0.35 * ramp(chop, 30.0, 55.0)
            + 0.35 * ramp(fast_eff, 0.5, 0.1)
            + 0.15 * ramp(efficiency, 0.45, 0.1)
            + 0.15 * ramp(width_atr, 8.0, 3.0);
        let distribution = 0.3 * ramp(fast_eff, 0.25, 0.65)
            + 0.2 * ramp(efficiency, 0.15, 0.5)
            + 0.3 * ramp(move_atr, 0.5, 1.4)
            + 0.2 * ramp(outside_atr, 0.0, 0.7);
        let bars_since_sweep = self.sweep.map(|s| self.bars - 1 - s.bar);
        let manipulation = match (self.sweep, bars_since_sweep) {
            (Some(s), Some(k)) => s.strength * 0.9f64.powi(k as i32),
            _ => 0.0,
        };

        Some(Readings {
            close,
            atr,
            chop,
            efficiency,
            width_atr,
            move_atr,
            outside_atr,
            volume_ratio,
            cmf,
            bars_since_sweep,
            // A bar that just ran the stops is not quiet, however range-like the window.
            scores: [
                clamp01(accumulation * (1.0 - 0.3 * manipulation)),
                clamp01(manipulation),
                clamp01(distribution),
            ],
            ema_fast: self.ema_fast.value()?,
            ema_slow: self.ema_slow.value()?,
            rsi: self.rsi.value()?,
        })
    }
}
