//! One row's values: a strict decimal number reader and the checks that make a bar a candle.

/// A bar that cannot be a candle, in the trader's words.
pub(super) fn check_bar(open: f64, high: f64, low: f64, close: f64, volume: f64) -> Option<String> {
    use crate::domain::rules::fmt_num;
    for (name, v) in [
        ("open", open),
        ("high", high),
        ("low", low),
        ("close", close),
    ] {
        if v <= 0.0 {
            return Some(format!("{name} {} is not > 0", fmt_num(v)));
        }
    }
    if volume < 0.0 {
        return Some(format!("volume {} is negative", fmt_num(volume)));
    }
    if high < low {
        return Some(format!(
            "high {} is below low {}",
            fmt_num(high),
            fmt_num(low)
        ));
    }
    for (name, v) in [("open", open), ("close", close)] {
        if v > high {
            return Some(format!(
                "{name} {} is above high {}",
                fmt_num(v),
                fmt_num(high)
            ));
        }
        if v < low {
            return Some(format!(
                "{name} {} is below low {}",
                fmt_num(v),
                fmt_num(low)
            ));
        }
    }
    None
}

/// Exact powers of ten as f64.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A decimal number (sign, digits, point, exponent); no `inf`, `nan` or empty field.
pub(super) fn parse_number(s: &[u8]) -> Option<f64> {
    let first = *s.first()?;
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return None;
    }
    // Fast path for plain `[-]ddd[.ddd]` with at most 15 digits: the mantissa and the power of
    // ten are exact in f64, so one division is correctly rounded (Clinger), the same f64 the
    // standard parser gives.
    let (neg, body) = match first {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut frac_digits = 0usize;
    let mut dot = false;
    let mut fast = body.len() <= 16;
    if fast {
        for &b in body {
            if b.is_ascii_digit() {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
                frac_digits += usize::from(dot);
            } else if b == b'.' && !dot {
                dot = true;
            } else {
                fast = false;
                break;
            }
        }
    }
    if fast && digits > 0 && digits <= 15 {
        let v = mantissa as f64 / POW10[frac_digits];
        return Some(if neg { -v } else { v });
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: f64 = text.parse().ok()?;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"1.5"), Some(1.5));
        assert_eq!(parse_number(b"1e3"), Some(1000.0));
        assert_eq!(parse_number(b".5"), Some(0.5));
        for bad in [
            &b""[..],
            b"nan",
            b"NaN",
            b"inf",
            b"-inf",
            b"1.2.3",
            b"1,5",
            b"abc",
            b"1e999",
        ] {
            assert_eq!(
                parse_number(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
