//! Clamping, ramps and rounding shared by the readings and the two answers.

pub(super) fn clamp01(x: f64) -> f64 {
    if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// 0 at `lo`, 1 at `hi` (either order), linear between.
pub(super) fn ramp(x: f64, lo: f64, hi: f64) -> f64 {
    clamp01((x - lo) / (hi - lo))
}

pub(super) fn round_dp(x: f64, dp: i32) -> f64 {
    let f = 10f64.powi(dp);
    (x * f).round() / f
}

/// Rounds to `sig` significant digits (prices and ATRs come at every scale).
pub(super) fn round_sig(x: f64, sig: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let dp = sig - 1 - x.abs().log10().floor() as i32;
    round_dp(x, dp.clamp(-10, 12))
}
