//! The AMD analyzer and signal: causal (bars ≤ t only) and O(1) per pushed bar.
//!
//! Phase: ATR(14, Wilder); the range of the previous N = 24 bars and its width in ATRs; choppiness
//! index(14); Kaufman efficiency ratio over 24 and over 10 bars; volume ratio; Chaikin money
//! flow(24). Each phase gets a score in 0..=1 — accumulation from high CHOP, low efficiency and a
//! narrow range; manipulation from a stop-run (a wick ≥ 0.2 ATR beyond the prior range that
//! closes back inside, with a long rejection wick or ≥ 1.5× volume), weighted by depth, wick,
//! volume and how range-like the bars before it were, decaying ×0.9 a bar and forgotten after 2
//! bars or when a close breaks beyond the wick; distribution from high efficiency, the move in
//! ATR·√N units and the distance outside the range. The phase is the best score; its confidence
//! is that score × (0.5 + 0.5·min(1, margin over the runner-up / 0.3)).
//!
//! Signal: trend = tanh((EMA20 − EMA50)/ATR), momentum = (RSI14 − 50)/50,
//! score = 0.6·trend + 0.4·momentum, halved when RSI is stretched (> 75 buying, < 25 selling);
//! bullish above +0.25, bearish below −0.25. Entry = last close, SL = entry ∓ 1.5·ATR,
//! TP = entry ± 3·ATR (a neutral signal carries the bullish layout). Its confidence is a logistic
//! map of |score| (a clear trend gives 0.8–0.95): an **uncalibrated score**, not a probability
//! that the trade wins.
//!
//! Here: the parameters, the state, and [`Analyzer::push`], which keeps every window and
//! indicator current. `readings`: the numbers behind a bar (stop-run detection, efficiency,
//! the phase scores). `phase` and `signal`: the two answers read from those numbers.

mod math;
mod phase;
mod readings;
mod signal;
#[cfg(test)]
mod tests;

use super::generator::Candle;
use super::indicators::{Ema, RollingExtreme, Rsi, Wilder, Window};

/// Tunable windows and thresholds; `Default` gives the documented values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalyzerParams {
    pub atr_period: usize,
    /// N: bars in the prior range, the efficiency ratio, the volume mean and the money flow.
    pub range_bars: usize,
    pub chop_period: usize,
    /// A shorter efficiency window (≤ N) so phase changes show up sooner.
    pub fast_bars: usize,
    /// How far (in ATRs) a wick must run beyond the prior range to count as a stop-run.
    pub sweep_min_atr: f64,
    /// Bars after which a stop-run no longer counts.
    pub sweep_memory: usize,
    pub ema_fast: usize,
    pub ema_slow: usize,
    pub rsi_period: usize,
    /// Bars before `phase()` and `signal()` answer.
    pub warmup_bars: usize,
}

impl Default for AnalyzerParams {
    fn default() -> Self {
        Self {
            atr_period: 14,
            range_bars: 24,
            chop_period: 14,
            fast_bars: 10,
            sweep_min_atr: 0.2,
            sweep_memory: 2,
            ema_fast: 20,
            ema_slow: 50,
            rsi_period: 14,
            warmup_bars: 50,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sweep {
    bar: usize,
    /// +1 above the range high, −1 below the range low.
    dir: f64,
    /// The wick's extreme: a later close beyond it means the run was a real breakout.
    extreme: f64,
    strength: f64,
}

/// The numbers behind the latest readings, computed once per pushed bar.
#[derive(Debug, Clone, Copy, Default)]
struct Readings {
    close: f64,
    atr: f64,
    chop: f64,
    efficiency: f64,
    width_atr: f64,
    move_atr: f64,
    outside_atr: f64,
    volume_ratio: f64,
    cmf: f64,
    bars_since_sweep: Option<usize>,
    scores: [f64; 3],
    ema_fast: f64,
    ema_slow: f64,
    rsi: f64,
}

/// Reads the AMD phase and a trend signal from a stream of candles.
#[derive(Debug, Clone)]
pub struct Analyzer {
    p: AnalyzerParams,
    bars: usize,
    prev_close: Option<f64>,
    atr: Wilder,
    range_hi: RollingExtreme,
    range_lo: RollingExtreme,
    chop_tr: Window,
    chop_hi: RollingExtreme,
    chop_lo: RollingExtreme,
    closes: Window,
    abs_moves: Window,
    fast_moves: Window,
    volumes: Window,
    money_flow: Window,
    ema_fast: Ema,
    ema_slow: Ema,
    rsi: Rsi,
    sweep: Option<Sweep>,
    readings: Option<Readings>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    /// An analyzer with the default parameters.
    pub fn new() -> Self {
        Self::with_params(AnalyzerParams::default())
    }

    pub fn with_params(p: AnalyzerParams) -> Self {
        let n = p.range_bars.max(2);
        let p = AnalyzerParams {
            range_bars: n,
            atr_period: p.atr_period.max(1),
            chop_period: p.chop_period.max(2),
            ..p
        };
        Self {
            p,
            bars: 0,
            prev_close: None,
            atr: Wilder::new(p.atr_period),
            range_hi: RollingExtreme::max(n),
            range_lo: RollingExtreme::min(n),
            chop_tr: Window::new(p.chop_period),
            chop_hi: RollingExtreme::max(p.chop_period),
            chop_lo: RollingExtreme::min(p.chop_period),
            closes: Window::new(n + 1),
            abs_moves: Window::new(n),
            fast_moves: Window::new(p.fast_bars.clamp(2, n)),
            volumes: Window::new(n),
            money_flow: Window::new(n),
            ema_fast: Ema::new(p.ema_fast),
            ema_slow: Ema::new(p.ema_slow),
            rsi: Rsi::new(p.rsi_period),
            sweep: None,
            readings: None,
        }
    }

    /// Bars accepted so far (a candle with a non-finite or non-positive price is ignored).
    pub fn bars(&self) -> usize {
        self.bars
    }

    /// Enough bars for both readings.
    pub fn is_warm(&self) -> bool {
        self.readings.is_some()
    }

    /// Adds the next bar (bars must come oldest first).
    pub fn push(&mut self, c: &Candle) {
        let prices = [c.open, c.high, c.low, c.close];
        if prices.iter().any(|v| !v.is_finite() || *v <= 0.0) {
            return;
        }
        let (o, cl) = (c.open, c.close);
        let h = prices.iter().cloned().fold(f64::MIN, f64::max);
        let l = prices.iter().cloned().fold(f64::MAX, f64::min);
        let v = if c.volume.is_finite() && c.volume > 0.0 {
            c.volume
        } else {
            0.0
        };
        let n = self.p.range_bars;

        // The previous N bars, before this one joins them.
        let prior_full = self.bars >= n;
        let prior_hi = self.range_hi.value().unwrap_or(h);
        let prior_lo = self.range_lo.value().unwrap_or(l);
        let prior_atr = self.atr.value();
        let prior_vol_mean = self.volumes.mean().unwrap_or(0.0);
        let volume_ratio = if prior_vol_mean > 0.0 {
            v / prior_vol_mean
        } else {
            1.0
        };

        let tr = match self.prev_close {
            Some(pc) => (h - l).max((h - pc).abs()).max((l - pc).abs()),
            None => h - l,
        };

        // A later close beyond the wick turns the stop-run into a breakout.
        if let Some(s) = self.sweep {
            let broke = (s.dir > 0.0 && cl > s.extreme) || (s.dir < 0.0 && cl < s.extreme);
            if broke || self.bars - s.bar > self.p.sweep_memory {
                self.sweep = None;
            }
        }
        if let (true, Some(atr)) = (prior_full, prior_atr) {
            self.detect_sweep(o, h, l, cl, atr, prior_hi, prior_lo, volume_ratio);
        }

        self.atr.push(tr);
        self.range_hi.push(h);
        self.range_lo.push(l);
        self.chop_tr.push(tr);
        self.chop_hi.push(h);
        self.chop_lo.push(l);
        self.closes.push(cl);
        if let Some(pc) = self.prev_close {
            self.abs_moves.push((cl - pc).abs());
            self.fast_moves.push((cl - pc).abs());
        }
        self.volumes.push(v);
        let clv = if h > l {
            ((cl - l) - (h - cl)) / (h - l)
        } else {
            0.0
        };
        self.money_flow.push(clv * v);
        self.ema_fast.push(cl);
        self.ema_slow.push(cl);
        self.rsi.push(cl);
        self.prev_close = Some(cl);
        self.bars += 1;

        self.readings = if self.bars >= self.p.warmup_bars.max(n + 1) {
            self.compute(cl, prior_hi, prior_lo, volume_ratio)
        } else {
            None
        };
    }
}
