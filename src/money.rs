//! Money and prices as text: exact decimal rounding, fixed precision, thousands separators.

use rust_decimal::prelude::*;

fn to_decimal(x: f64, dp: u32) -> Option<Decimal> {
    if !x.is_finite() {
        return None;
    }
    // From the shortest decimal that round-trips the f64, so 0.125 stays 0.125 before rounding.
    Decimal::from_str(&format!("{x}"))
        .ok()
        .or_else(|| Decimal::from_f64(x))
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

/// A quantity: up to 8 decimals, trailing zeros removed.
pub fn fmt_qty(x: f64) -> String {
    let Some(d) = to_decimal(x, 8) else {
        return "—".into();
    };
    d.normalize().to_string()
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
    }
}
