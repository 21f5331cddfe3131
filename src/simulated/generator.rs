//! A seeded, regime-switching OHLCV generator whose regimes follow the AMD cycle.
//!
//! accumulation (20–80 bars, mean-reverting around the range middle) → with p ≈ 0.65 a
//! manipulation (1–4 bars: the first wicks beyond the range edge and closes back inside, on
//! ~2.5× volume) → distribution (15–60 bars of drift, usually opposite the sweep) → accumulation
//! around the new price. Volatility is GARCH(1,1) times a slow log-volatility factor, with
//! Student-t (ν = 4) shocks over several sub-steps per bar; volume is log-normal and rises with
//! |return|/σ. Prices live in log space, so they stay finite and > 0.

use crate::domain::Phase;

/// One OHLCV bar. `ts` is the bar's open time in epoch seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    pub ts: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// A stable per-symbol seed (FNV-1a over the base seed and the symbol, then a SplitMix64 finalizer).
pub fn seed_for_symbol(base_seed: u64, symbol: &str) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = FNV_OFFSET;
    for b in base_seed.to_le_bytes().iter().chain(symbol.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    splitmix64_mix(h)
}

fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256** seeded through SplitMix64: small, fast and reproducible on every platform.
#[derive(Debug, Clone)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            splitmix64_mix(x)
        };
        let mut s = [next(), next(), next(), next()];
        if s.iter().all(|&v| v == 0) {
            s[0] = 1;
        }
        Self { s }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1], safe for `ln`.
    fn uniform_open(&mut self) -> f64 {
        1.0 - self.uniform()
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Integer uniform in lo..=hi.
    fn int(&mut self, lo: u32, hi: u32) -> u32 {
        let span = u64::from(hi.saturating_sub(lo)) + 1;
        lo + (self.next_u64() % span) as u32
    }

    fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    fn normal(&mut self) -> f64 {
        let u1 = self.uniform_open();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Student-t with ν = 4, scaled to unit variance (χ²₄ = −2·ln(U₁U₂)).
    fn student_t4(&mut self) -> f64 {
        let z = self.normal();
        let chi2 = -2.0 * (self.uniform_open() * self.uniform_open()).ln();
        let t = z / (chi2 / 4.0).max(1e-12).sqrt();
        // Var(t₄) = ν/(ν−2) = 2.
        t * std::f64::consts::FRAC_1_SQRT_2
    }
}

/// Long-run per-bar volatility of log price (≈ hourly crypto).
const BASE_SIGMA: f64 = 0.006;
const GARCH_ALPHA: f64 = 0.045;
const GARCH_BETA: f64 = 0.94;
const GARCH_CAP: f64 = 25.0;
const LOGVOL_PHI: f64 = 0.998;
const LOGVOL_SD: f64 = 0.35;
const SUB_STEPS: usize = 8;
const WICK_OVERSHOOT: f64 = 0.6;
/// Bars the generator looks back over to find the range edge a sweep runs beyond.
const RANGE_BARS: usize = 24;
const P_MANIPULATION: f64 = 0.65;
const P_OPPOSITE_SWEEP: f64 = 0.8;
/// Notional traded per bar at average activity, in quote currency.
const BASE_NOTIONAL: f64 = 5_000_000.0;

#[derive(Debug, Clone, Copy)]
enum Regime {
    Accumulation {
        mid: f64,
        kappa: f64,
        left: u32,
    },
    Manipulation {
        mid: f64,
        sweep_dir: f64,
        next_dir: f64,
        bar: u32,
        len: u32,
    },
    Distribution {
        dir: f64,
        drift_k: f64,
        left: u32,
    },
}

impl Regime {
    fn phase(&self) -> Phase {
        match self {
            Regime::Accumulation { .. } => Phase::Accumulation,
            Regime::Manipulation { .. } => Phase::Manipulation,
            Regime::Distribution { .. } => Phase::Distribution,
        }
    }
}

/// The simulated market for one symbol. Same seed and arguments ⇒ the same candles.
#[derive(Debug, Clone)]
pub struct MarketGenerator {
    rng: Rng,
    ts: i64,
    bar_seconds: i64,
    /// Log of the last close.
    x: f64,
    /// Log of the start price: distribution legs lean back toward it when price wanders far.
    anchor: f64,
    garch: f64,
    logvol: f64,
    base_volume: f64,
    regime: Regime,
    /// Log highs and lows of the last `RANGE_BARS` bars (ring buffers).
    highs: [f64; RANGE_BARS],
    lows: [f64; RANGE_BARS],
    filled: usize,
    head: usize,
}

/// The path of one bar in log space.
struct BarPath {
    high: f64,
    low: f64,
    close: f64,
    /// Sum of the unit shocks over the sub-steps, divided by √steps: the bar's standardized shock.
    z: f64,
}

impl MarketGenerator {
    /// A generator starting at `start_price` (non-positive or non-finite prices fall back to 100)
    /// with bars of `bar_seconds` (at least 1) opening at `start_ts`, `start_ts + bar_seconds`, ...
    pub fn new(seed: u64, start_price: f64, start_ts: i64, bar_seconds: i64) -> Self {
        let price = if start_price.is_finite() && start_price > 0.0 {
            start_price
        } else {
            100.0
        };
        let x = price.ln();
        let mut rng = Rng::new(seed);
        let left = rng.int(20, 80);
        let kappa = rng.range(0.08, 0.2);
        Self {
            rng,
            ts: start_ts,
            bar_seconds: bar_seconds.max(1),
            x,
            anchor: x,
            garch: 1.0,
            logvol: 0.0,
            base_volume: BASE_NOTIONAL / price,
            regime: Regime::Accumulation {
                mid: x,
                kappa,
                left,
            },
            highs: [x; RANGE_BARS],
            lows: [x; RANGE_BARS],
            filled: 0,
            head: 0,
        }
    }

    /// The next candle and the regime the generator was in while making it (the ground-truth label).
    pub fn next_candle(&mut self) -> (Candle, Phase) {
        let sigma = BASE_SIGMA * self.garch.sqrt() * self.logvol.exp();
        let phase = self.regime.phase();
        let open = self.x;
        let (path, vol_mult) = match self.regime {
            Regime::Accumulation { mid, kappa, .. } => {
                (self.walk(open, mid, kappa, 0.0, 0.7 * sigma), 1.0)
            }
            Regime::Manipulation {
                mid,
                sweep_dir,
                bar,
                ..
            } => {
                if bar == 0 {
                    (self.sweep(open, sweep_dir, 1.6 * sigma), 2.5)
                } else {
                    (self.walk(open, mid, 0.25, 0.0, 1.3 * sigma), 1.6)
                }
            }
            Regime::Distribution { dir, drift_k, .. } => (
                self.walk(open, open, 0.0, dir * drift_k * sigma, 1.2 * sigma),
                1.3,
            ),
        };

        // Volatility clustering: GARCH(1,1) on the standardized shock, and a slow log-vol AR(1).
        let z2 = (path.z * path.z).min(50.0);
        self.garch = ((1.0 - GARCH_ALPHA - GARCH_BETA)
            + GARCH_ALPHA * z2 * self.garch
            + GARCH_BETA * self.garch)
            .clamp(0.05, GARCH_CAP);
        self.logvol = LOGVOL_PHI * self.logvol
            + LOGVOL_SD * (1.0 - LOGVOL_PHI * LOGVOL_PHI).sqrt() * self.rng.normal();

        let ret_sigmas = ((path.close - open) / sigma.max(1e-12)).abs().min(8.0);
        let volume = self.base_volume
            * vol_mult
            * (0.35 * self.rng.normal() + 0.45 * ret_sigmas - 0.3).exp();

        // Keep the log price in a sane band; at 0.6 % a bar this never binds in practice.
        let lo_bound = self.anchor - 12.0;
        let hi_bound = self.anchor + 12.0;
        let close = path.close.clamp(lo_bound, hi_bound);
        let high = path.high.clamp(lo_bound, hi_bound).max(open).max(close);
        let low = path.low.clamp(lo_bound, hi_bound).min(open).min(close);

        let candle = Candle {
            ts: self.ts,
            open: open.exp(),
            high: high.exp(),
            low: low.exp(),
            close: close.exp(),
            volume: if volume.is_finite() { volume } else { 0.0 },
        };
        // exp() of values this close can round: restore the OHLC ordering exactly.
        let candle = Candle {
            high: candle.high.max(candle.open).max(candle.close),
            low: candle.low.min(candle.open).min(candle.close),
            ..candle
        };

        self.x = close;
        self.ts = self.ts.saturating_add(self.bar_seconds);
        self.highs[self.head] = high;
        self.lows[self.head] = low;
        self.head = (self.head + 1) % RANGE_BARS;
        self.filled = (self.filled + 1).min(RANGE_BARS);
        self.advance_regime();
        (candle, phase)
    }

    /// A sub-stepped walk: mean reversion at rate `kappa` per bar toward `mid`, plus `drift`
    /// per bar, with `sigma` per bar of Student-t noise.
    fn walk(&mut self, open: f64, mid: f64, kappa: f64, drift: f64, sigma: f64) -> BarPath {
        let n = SUB_STEPS as f64;
        let step_sd = sigma / n.sqrt();
        let (mut x, mut hi, mut lo, mut zsum) = (open, open, open, 0.0);
        for _ in 0..SUB_STEPS {
            let z = self.rng.student_t4();
            zsum += z;
            x += kappa / n * (mid - x) + drift / n + step_sd * z;
            hi = hi.max(x);
            lo = lo.min(x);
        }
        // Between sub-steps the path keeps moving: widen the extremes by an exponential overshoot.
        let (e1, e2) = (-self.rng.uniform_open().ln(), -self.rng.uniform_open().ln());
        BarPath {
            high: hi + WICK_OVERSHOOT * step_sd * e1,
            low: lo - WICK_OVERSHOOT * step_sd * e2,
            close: x,
            z: zsum / n.sqrt(),
        }
    }

    /// The stop-run bar: a wick beyond the recent range edge on the `dir` side, closing back inside.
    fn sweep(&mut self, open: f64, dir: f64, sigma: f64) -> BarPath {
        let (hi, lo) = self.recent_range(open);
        let width = (hi - lo).max(0.5 * sigma);
        let edge = if dir > 0.0 { hi } else { lo };
        let extreme = edge + dir * self.rng.range(0.3, 1.2) * sigma;
        let inside = edge - dir * self.rng.range(0.1, 0.5) * width;
        let close = inside.clamp(lo, hi);
        let back_wick = self.rng.normal().abs() * 0.25 * sigma;
        let (high, low) = if dir > 0.0 {
            (extreme, open.min(close) - back_wick)
        } else {
            (open.max(close) + back_wick, extreme)
        };
        BarPath {
            high,
            low,
            close,
            z: (close - open) / sigma.max(1e-12),
        }
    }

    fn recent_range(&self, fallback: f64) -> (f64, f64) {
        if self.filled == 0 {
            return (fallback, fallback);
        }
        let hi = self.highs[..self.filled]
            .iter()
            .cloned()
            .fold(f64::MIN, f64::max);
        let lo = self.lows[..self.filled]
            .iter()
            .cloned()
            .fold(f64::MAX, f64::min);
        (hi, lo)
    }

    /// Probability that a new leg goes up: 1/2, leaning back toward the start price when far from it.
    fn p_up(&self) -> f64 {
        0.5 - 0.4 * ((self.x - self.anchor) / 1.5).tanh()
    }

    fn start_distribution(&mut self, dir: f64) {
        self.regime = Regime::Distribution {
            dir,
            drift_k: self.rng.range(0.4, 0.8),
            left: self.rng.int(15, 60),
        };
    }

    fn advance_regime(&mut self) {
        match self.regime {
            Regime::Accumulation { mid, kappa, left } => {
                if left > 1 {
                    self.regime = Regime::Accumulation {
                        mid,
                        kappa,
                        left: left - 1,
                    };
                    return;
                }
                let p_up = self.p_up();
                if self.rng.chance(P_MANIPULATION) {
                    // Sweep the side opposite the leg that follows, most of the time.
                    let next_dir = if self.rng.chance(p_up) { 1.0 } else { -1.0 };
                    let sweep_dir = if self.rng.chance(P_OPPOSITE_SWEEP) {
                        -next_dir
                    } else {
                        next_dir
                    };
                    self.regime = Regime::Manipulation {
                        mid,
                        sweep_dir,
                        next_dir,
                        bar: 0,
                        len: self.rng.int(1, 4),
                    };
                } else {
                    let dir = if self.rng.chance(p_up) { 1.0 } else { -1.0 };
                    self.start_distribution(dir);
                }
            }
            Regime::Manipulation {
                mid,
                sweep_dir,
                next_dir,
                bar,
                len,
            } => {
                if bar + 1 < len {
                    self.regime = Regime::Manipulation {
                        mid,
                        sweep_dir,
                        next_dir,
                        bar: bar + 1,
                        len,
                    };
                } else {
                    self.start_distribution(next_dir);
                }
            }
            Regime::Distribution { dir, drift_k, left } => {
                if left > 1 {
                    self.regime = Regime::Distribution {
                        dir,
                        drift_k,
                        left: left - 1,
                    };
                } else {
                    self.regime = Regime::Accumulation {
                        mid: self.x,
                        kappa: self.rng.range(0.08, 0.2),
                        left: self.rng.int(20, 80),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, n: usize) -> Vec<(Candle, Phase)> {
        let mut g = MarketGenerator::new(seed, 60_000.0, 1_700_000_000, 3600);
        (0..n).map(|_| g.next_candle()).collect()
    }

    #[test]
    fn same_seed_same_candles_different_seed_different() {
        let a = run(42, 5_000);
        let b = run(42, 5_000);
        let c = run(43, 5_000);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let differing = a.iter().zip(&c).filter(|(x, y)| x.0 != y.0).count();
        assert!(differing > 4_900, "only {differing} candles differ");
    }

    #[test]
    fn candle_invariants_hold_over_100k_bars() {
        for seed in [1_u64, 7, 12345] {
            let mut g = MarketGenerator::new(seed, 60_000.0, 1_700_000_000, 3600);
            let mut prev_close = None;
            let mut prev_ts = None;
            for _ in 0..100_000 {
                let (c, _) = g.next_candle();
                for v in [c.open, c.high, c.low, c.close] {
                    assert!(v.is_finite() && v > 0.0, "bad price {c:?}");
                }
                assert!(c.volume.is_finite() && c.volume >= 0.0, "bad volume {c:?}");
                assert!(c.high >= c.open.max(c.close), "high below body {c:?}");
                assert!(c.low <= c.open.min(c.close), "low above body {c:?}");
                if let Some(p) = prev_close {
                    assert_eq!(c.open, p, "open must continue the last close");
                }
                if let Some(t) = prev_ts {
                    assert_eq!(c.ts, t + 3600);
                }
                prev_close = Some(c.close);
                prev_ts = Some(c.ts);
            }
        }
    }

    #[test]
    fn all_three_regimes_occur_with_sane_lengths() {
        let bars = run(9, 50_000);
        let mut counts = [0usize; 3];
        let mut runs: [Vec<usize>; 3] = Default::default();
        let mut cur = (bars[0].1, 0usize);
        for (_, p) in &bars {
            counts[*p as usize] += 1;
            if *p == cur.0 {
                cur.1 += 1;
            } else {
                runs[cur.0 as usize].push(cur.1);
                cur = (*p, 1);
            }
        }
        assert!(counts.iter().all(|&c| c > 500), "{counts:?}");
        assert!(runs[0].iter().all(|&r| (20..=80).contains(&r)));
        assert!(runs[1].iter().all(|&r| (1..=4).contains(&r)));
        assert!(runs[2].iter().all(|&r| (15..=60).contains(&r)));
        // Roughly 65 % of accumulations end in a stop-run.
        let share = runs[1].len() as f64 / runs[0].len() as f64;
        assert!((0.55..0.75).contains(&share), "manipulation share {share}");
    }

    #[test]
    fn sweep_bars_wick_beyond_the_range_and_close_inside() {
        let bars = run(5, 50_000);
        let mut sweeps = 0;
        for i in 24..bars.len() {
            let is_first_manip =
                bars[i].1 == Phase::Manipulation && bars[i - 1].1 != Phase::Manipulation;
            if !is_first_manip {
                continue;
            }
            sweeps += 1;
            let prior = &bars[i - 24..i];
            let hi = prior.iter().map(|b| b.0.high).fold(f64::MIN, f64::max);
            let lo = prior.iter().map(|b| b.0.low).fold(f64::MAX, f64::min);
            let c = bars[i].0;
            let above = c.high > hi && c.close <= hi;
            let below = c.low < lo && c.close >= lo;
            assert!(
                above || below,
                "bar {i} is not a sweep: {c:?} range {lo}..{hi}"
            );
        }
        assert!(sweeps > 100);
    }

    #[test]
    fn returns_are_fat_tailed_and_volatility_clusters() {
        let bars = run(3, 100_000);
        let r: Vec<f64> = bars.iter().map(|(c, _)| (c.close / c.open).ln()).collect();
        let n = r.len() as f64;
        let mean = r.iter().sum::<f64>() / n;
        let var = r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let kurt = r.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n / (var * var);
        assert!(kurt > 4.0, "kurtosis {kurt}");
        let a: Vec<f64> = r.iter().map(|x| x.abs()).collect();
        let am = a.iter().sum::<f64>() / n;
        let av = a.iter().map(|x| (x - am).powi(2)).sum::<f64>() / n;
        let ac1 = a.windows(2).map(|w| (w[0] - am) * (w[1] - am)).sum::<f64>() / n / av;
        assert!(ac1 > 0.1, "|r| autocorrelation at lag 1 {ac1}");
    }

    #[test]
    fn seed_for_symbol_is_stable_and_distinct() {
        let btc = seed_for_symbol(1, "BTC/USD");
        assert_eq!(btc, seed_for_symbol(1, "BTC/USD"));
        assert_ne!(btc, seed_for_symbol(1, "ETH/USD"));
        assert_ne!(btc, seed_for_symbol(2, "BTC/USD"));
    }

    #[test]
    fn bad_arguments_fall_back_to_sane_values() {
        let mut g = MarketGenerator::new(0, f64::NAN, 0, 0);
        let (c, _) = g.next_candle();
        assert!(c.open > 0.0 && c.open.is_finite());
        let (c2, _) = g.next_candle();
        assert_eq!(c2.ts, 1);
    }
}
