//! Candle timestamps: ISO-8601, epoch seconds or epoch milliseconds in, epoch milliseconds out.
//!
//! The spellings accepted are fixed here, position by position; whether a date, a time of day
//! or a zone offset exists, and the arithmetic from them to an instant, are chrono's.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, Timelike};

use super::TimeKind;

/// Epoch seconds below this are seconds; at or above, milliseconds (10^11 s is the year 5138).
const MILLIS_FROM: i64 = 100_000_000_000;
/// Epoch milliseconds at or above this (the year 5138) are refused: microseconds or nanoseconds.
const MILLIS_UNTIL: i64 = 100_000_000_000_000;

/// A timestamp in epoch milliseconds and how it was written.
pub fn parse_timestamp(s: &[u8]) -> Result<(i64, TimeKind), &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    if s.len() >= 10 && s[4] == b'-' {
        return parse_iso(s).map(|ms| (ms, TimeKind::Iso));
    }
    parse_epoch(s)
}

fn parse_epoch(s: &[u8]) -> Result<(i64, TimeKind), &'static str> {
    let (int_part, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &s[s.len()..]),
    };
    if int_part.is_empty() || int_part.len() > 18 {
        return Err("expected ISO-8601 or epoch seconds or milliseconds");
    }
    let mut v: i64 = 0;
    for &b in int_part {
        if !b.is_ascii_digit() {
            return Err("expected ISO-8601 or epoch seconds or milliseconds");
        }
        v = v * 10 + i64::from(b - b'0');
    }
    if !frac.iter().all(u8::is_ascii_digit) {
        return Err("expected ISO-8601 or epoch seconds or milliseconds");
    }
    if v >= MILLIS_UNTIL {
        return Err("too large for epoch milliseconds (microseconds or nanoseconds are not read)");
    }
    if v >= MILLIS_FROM {
        return Ok((v, TimeKind::EpochMillis));
    }
    let mut ms = v * 1000;
    let mut scale = 100;
    for &b in frac.iter().take(3) {
        ms += i64::from(b - b'0') * scale;
        scale /= 10;
    }
    Ok((ms, TimeKind::EpochSeconds))
}

/// The ISO-8601 spellings read, for a timestamp that is none of them.
const ISO_FORMS: &str = "expected YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM]";

/// `n` ASCII digits at `at`, as a number.
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    let mut v = 0u32;
    for &b in part {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

/// `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH[:MM]]`; no zone means UTC.
fn parse_iso(s: &[u8]) -> Result<i64, &'static str> {
    let year = digits(s, 0, 4).ok_or(ISO_FORMS)?;
    let month = digits(s, 5, 2).ok_or(ISO_FORMS)?;
    let day = digits(s, 8, 2).ok_or(ISO_FORMS)?;
    if s[7] != b'-' {
        return Err(ISO_FORMS);
    }
    // Four digits are always a year chrono knows.
    let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or("no such date")?;
    let (time, zone_at) = match s.get(10) {
        Some(b'T' | b't' | b' ') => iso_time_of_day(s, 10)?,
        _ => (NaiveTime::MIN, 10),
    };
    let offset = iso_offset(s, zone_at)?;
    date.and_time(time)
        .and_local_timezone(offset)
        .single()
        .map(|t| t.timestamp_millis())
        .ok_or("no such date")
}

/// `(T| )HH:MM[:SS[(.|,)fff]]` from `at` (digits past the milliseconds are dropped): the time
/// of day and where the zone starts.
fn iso_time_of_day(s: &[u8], at: usize) -> Result<(NaiveTime, usize), &'static str> {
    let hour = digits(s, at + 1, 2).ok_or(ISO_FORMS)?;
    if s.get(at + 3) != Some(&b':') {
        return Err(ISO_FORMS);
    }
    let minute = digits(s, at + 4, 2).ok_or(ISO_FORMS)?;
    let mut i = at + 6;
    let mut second = 0;
    let mut millis = 0;
    if s.get(i) == Some(&b':') {
        second = digits(s, i + 1, 2).ok_or(ISO_FORMS)?;
        i += 3;
        if s.get(i) == Some(&b'.') || s.get(i) == Some(&b',') {
            i += 1;
            let start = i;
            let mut scale = 100;
            while i < s.len() && s[i].is_ascii_digit() {
                millis += u32::from(s[i] - b'0') * scale;
                scale /= 10;
                i += 1;
            }
            if i == start {
                return Err(ISO_FORMS);
            }
        }
    }
    // `millis` < 1000, so chrono refuses exactly an hour > 23, a minute > 59 or a second > 59.
    let time =
        NaiveTime::from_hms_milli_opt(hour, minute, second, millis).ok_or("no such time of day")?;
    Ok((time, i))
}

/// Nothing, `Z`, or `±HH`, `±HHMM`, `±HH:MM` from `at` to the end.
fn iso_offset(s: &[u8], at: usize) -> Result<FixedOffset, &'static str> {
    let east_secs = match s.get(at) {
        None => 0,
        Some(b'Z' | b'z') if at + 1 == s.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let h = digits(s, at + 1, 2).ok_or(ISO_FORMS)?;
            let m = match s.len() - (at + 3) {
                0 => 0,
                2 => digits(s, at + 3, 2).ok_or(ISO_FORMS)?,
                3 if s[at + 3] == b':' => digits(s, at + 4, 2).ok_or(ISO_FORMS)?,
                _ => return Err(ISO_FORMS),
            };
            // chrono takes any offset under a day; `+05:75` is still not one.
            if h > 23 || m > 59 {
                return Err("no such time zone offset");
            }
            let secs = (h * 3600 + m * 60) as i32;
            if sign == b'-' { -secs } else { secs }
        }
        _ => return Err(ISO_FORMS),
    };
    FixedOffset::east_opt(east_secs).ok_or("no such time zone offset")
}

/// `2024-01-01T00:00:00Z` (with `.123` when the milliseconds are not zero).
pub fn format_time_ms(ms: i64) -> String {
    let Some(t) = DateTime::from_timestamp_millis(ms) else {
        // Beyond chrono's ±262,000 years: no timestamp a file can hold gets here.
        return format!("{ms} ms after 1970-01-01T00:00:00Z");
    };
    // Fields rather than `%Y`, which signs a year before 0 differently (`-0001`, not `-001`).
    let (y, m, d) = (t.year(), t.month(), t.day());
    let (hh, mm, ss) = (t.hour(), t.minute(), t.second());
    let millis = t.timestamp_subsec_millis();
    if millis == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{millis:03}Z")
    }
}

/// A duration in the largest whole unit that fits: `1h`, `15m`, `1d`, `90s`.
pub fn format_interval(ms: i64) -> String {
    let s = ms / 1000;
    if ms % 1000 != 0 {
        format!("{ms}ms")
    } else if s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::super::SIMULATED_START_S;
    use super::*;

    /// The calendar is chrono's: its two directions, for the round trip below.
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let date = NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32).expect("a real date");
        i64::from(date.to_epoch_days())
    }

    fn civil_from_days(days: i64) -> (i64, i64, i64) {
        let date = NaiveDate::from_epoch_days(days as i32).expect("a day chrono knows");
        (
            i64::from(date.year()),
            i64::from(date.month()),
            i64::from(date.day()),
        )
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 365, 10_957, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_time_ms(SIMULATED_START_S * 1000),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(format_time_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }

    #[test]
    fn iso_forms() {
        let base = 1_704_067_200_000;
        for (s, want) in [
            ("2024-01-01", base),
            ("2024-01-01T00:00:00Z", base),
            ("2024-01-01 00:00:00", base),
            ("2024-01-01T00:00", base),
            ("2024-01-01T01:30:00+01:30", base),
            ("2024-01-01T01:30:00+0130", base),
            ("2023-12-31T23:00:00-01", base),
            ("2024-01-01T00:00:00.250Z", base + 250),
        ] {
            assert_eq!(
                parse_timestamp(s.as_bytes()),
                Ok((want, TimeKind::Iso)),
                "{s}"
            );
        }
        for s in [
            "2024-13-01",
            "2023-02-29",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00Q",
            "2024/01/01",
            "2024-01-01T00",
        ] {
            assert!(parse_timestamp(s.as_bytes()).is_err(), "{s}");
        }
    }

    #[test]
    fn epoch_forms() {
        assert_eq!(
            parse_timestamp(b"1704067200"),
            Ok((1_704_067_200_000, TimeKind::EpochSeconds))
        );
        assert_eq!(
            parse_timestamp(b"1704067200.5"),
            Ok((1_704_067_200_500, TimeKind::EpochSeconds))
        );
        assert_eq!(
            parse_timestamp(b"1704067200000"),
            Ok((1_704_067_200_000, TimeKind::EpochMillis))
        );
        assert!(parse_timestamp(b"1704067200000000").is_err());
        assert!(parse_timestamp(b"-5").is_err());
        assert!(parse_timestamp(b"12ab").is_err());
    }
}
