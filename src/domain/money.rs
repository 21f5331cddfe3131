//! Money, quantities and prices: the one place where numbers cross between f64 and decimal.
//!
//! Amounts are computed on the decimal a number reads as (0.1 is 0.1), rounded half away from
//! zero to the cent, quantities rounded down to 8 places; and printed with fixed precision.

use rust_decimal::prelude::*;

/// `x` as the decimal a trader would write: its shortest round-trip form (0.1 is 0.1).
pub(crate) fn dec(x: f64) -> Option<Decimal> {
    if !x.is_finite() {
        return None;
    }
    Decimal::from_str(&format!("{x}")).ok()
}

/// The f64 nearest to a decimal.
fn from_dec(d: Decimal) -> Option<f64> {
    d.to_string().parse::<f64>().ok()
}

/// Round to `dp` decimal places, half away from zero, on the decimal the number reads as
/// (so 1.005 rounds to 1.01, although the f64 nearest 1.005 is a hair below it).
pub fn round_dp(x: f64, dp: i32) -> f64 {
    if let (Ok(places), Some(d)) = (u32::try_from(dp), dec(x))
        && let Some(r) =
            from_dec(d.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero))
    {
        // `+ 0.0` turns -0.0 into 0.0, so nothing prints as "-0".
        return r + 0.0;
    }
    let m = 10f64.powi(dp);
    (x * m).round() / m + 0.0
}

/// Quantities are kept to 8 decimal places, rounded down so a cap is never exceeded.
pub const QTY_DP: i32 = 8;

/// `amount / per_unit` rounded down to [`QTY_DP`] places, computed in decimal so that
/// 150 / 1000 is 0.15 and 2000 / 50794.27 is 0.03937451, never 0.03937452.
pub(crate) fn floor_qty_div(amount: f64, per_unit: f64) -> f64 {
    if let (Some(a), Some(u)) = (dec(amount), dec(per_unit))
        && !u.is_zero()
        && let Some(q) = a.checked_div(u)
        && let Some(f) = from_dec(q.round_dp_with_strategy(QTY_DP as u32, RoundingStrategy::ToZero))
    {
        return f;
    }
    // Out of decimal range: a conservative floor in binary, and never an infinite size.
    let m = 10f64.powi(QTY_DP);
    let q = ((amount / per_unit) * m * (1.0 - 4.0 * f64::EPSILON)).floor() / m;
    if q.is_finite() { q } else { 0.0 }
}

/// `a × b / 100` in decimal (an amount from a percent of the account).
pub(crate) fn percent_of(a: f64, percent: f64) -> f64 {
    dec(a)
        .zip(dec(percent))
        .and_then(|(a, p)| a.checked_mul(p))
        .and_then(|x| from_dec(x / Decimal::ONE_HUNDRED))
        .unwrap_or(a * percent / 100.0)
}

/// `|a − b|` in decimal (a price distance: 45000 − 44999.9 is 0.1).
pub(crate) fn distance(a: f64, b: f64) -> f64 {
    dec(a)
        .zip(dec(b))
        .and_then(|(a, b)| a.checked_sub(b))
        .and_then(|d| from_dec(d.abs()))
        .unwrap_or((a - b).abs())
}

/// `a × b` in decimal when both fit (money: 0.01095 × 300 is 3.285, not 3.2849999).
pub fn mul_exact(a: f64, b: f64) -> f64 {
    dec(a)
        .zip(dec(b))
        .and_then(|(a, b)| a.checked_mul(b))
        .and_then(from_dec)
        .unwrap_or(a * b)
}

/// `a − b` in decimal when both fit.
pub fn sub_exact(a: f64, b: f64) -> f64 {
    dec(a)
        .zip(dec(b))
        .and_then(|(a, b)| a.checked_sub(b))
        .and_then(from_dec)
        .unwrap_or(a - b)
}

/// `a + b` in decimal when both fit.
pub fn add_exact(a: f64, b: f64) -> f64 {
    dec(a)
        .zip(dec(b))
        .and_then(|(a, b)| a.checked_add(b))
        .and_then(from_dec)
        .unwrap_or(a + b)
}

/// A number as the trader typed it: no trailing zeros, no exponent for ordinary prices.
pub fn fmt_num(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// `x` rounded to `dp` places as a decimal, for printing.
fn to_decimal(x: f64, dp: u32) -> Option<Decimal> {
    dec(x)
        .or_else(|| Decimal::from_f64(x).filter(|_| x.is_finite()))
        .map(|d| d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero))
}

fn group(int_part: &str) -> String {
    let bytes: Vec<char> = int_part.chars().collect();
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 3);
    for (i, c) in bytes.iter().enumerate() {
        if i > 0 && (bytes.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(*c);
    }
    out
}

/// `12,345.68` — a fixed number of decimals with thousands separators.
pub fn fmt_fixed(x: f64, dp: u32) -> String {
    let Some(d) = to_decimal(x, dp) else {
        return "—".into();
    };
    let neg = d.is_sign_negative() && !d.is_zero();
    let s = format!("{:.*}", dp as usize, d.abs());
    let (int_part, frac) = match s.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (s.clone(), None),
    };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(&group(&int_part));
    if let Some(f) = frac {
        out.push('.');
        out.push_str(&f);
    }
    out
}

/// Money in the account currency: two decimals.
pub fn fmt_money(x: f64) -> String {
    fmt_fixed(x, 2)
}

/// Money with an explicit sign: `+12.50`, `-3.00`.
pub fn fmt_signed(x: f64) -> String {
    let s = fmt_money(x);
    if s.starts_with('-') || s == "—" {
        s
    } else {
        format!("+{s}")
    }
}

/// Decimals that suit a price of this size: 2 above 1,000, more for small prices.
pub fn price_dp(x: f64) -> u32 {
    let a = x.abs();
    if a >= 1000.0 {
        2
    } else if a >= 1.0 {
        3
    } else if a >= 0.01 {
        5
    } else {
        8
    }
}

pub fn fmt_price(x: f64) -> String {
    fmt_fixed(x, price_dp(x))
}

/// A quantity: up to 8 decimals, trailing zeros removed, thousands separated
/// (`41,631,973,355.537056`).
pub fn fmt_qty(x: f64) -> String {
    let Some(d) = to_decimal(x, 8) else {
        return "—".into();
    };
    let s = d.normalize().to_string();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s.as_str()),
    };
    match digits.split_once('.') {
        Some((int_part, frac)) => format!("{sign}{}.{frac}", group(int_part)),
        None => format!("{sign}{}", group(digits)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_rounds_half_away_from_zero_exactly() {
        assert_eq!(fmt_money(1.005), "1.01");
        assert_eq!(fmt_money(-1.005), "-1.01");
        assert_eq!(fmt_money(1234567.891), "1,234,567.89");
        assert_eq!(fmt_money(0.0), "0.00");
        assert_eq!(fmt_money(-0.001), "0.00");
        assert_eq!(fmt_money(f64::NAN), "—");
    }

    #[test]
    fn signed_and_prices_and_quantities() {
        assert_eq!(fmt_signed(12.5), "+12.50");
        assert_eq!(fmt_signed(-3.0), "-3.00");
        assert_eq!(fmt_price(45000.0), "45,000.00");
        assert_eq!(fmt_price(2.5), "2.500");
        assert_eq!(fmt_qty(0.04444444), "0.04444444");
        assert_eq!(fmt_qty(1.5), "1.5");
        assert_eq!(fmt_qty(41_631_973_355.537_056), "41,631,973,355.537056");
        assert_eq!(fmt_qty(-1234.0), "-1,234");
        assert_eq!(fmt_qty(200.0), "200");
    }
}
