//! The candle CSV: a hand-written, single-pass parser (the file is read whole and split by lines).
//!
//! Header `timestamp,open,high,low,close,volume` (the six names in any order, case-insensitive,
//! surrounding quotes and spaces allowed). Timestamps are ISO-8601 (`2024-01-01T00:00:00Z`,
//! `2024-01-01 00:00`, `…+02:00`, a bare date) or epoch seconds or milliseconds, decided by size
//! (below 10^11 seconds, else milliseconds); every row must use the kind of the first row.
//! Rows may come oldest or newest first (or in any order): they are sorted.
//!
//! Bad rows are refused, never skipped (see the module doc of [`crate::backtest`]): the error lists
//! each bad row with its line number. Gaps in time are reported, not refused.

use crate::simulated::{Candle, MarketGenerator};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How the file wrote its timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    Iso,
    EpochSeconds,
    EpochMillis,
}

impl TimeKind {
    pub fn describe(self) -> &'static str {
        match self {
            TimeKind::Iso => "ISO-8601",
            TimeKind::EpochSeconds => "epoch seconds",
            TimeKind::EpochMillis => "epoch milliseconds",
        }
    }
}

/// The order the rows came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOrder {
    Ascending,
    Descending,
    /// Neither: the rows were sorted by time.
    Unordered,
}

/// A stretch of missing bars: the bar at `line` opens `missing` intervals later than expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The line of the first bar after the gap.
    pub line: u32,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Whole bar intervals absent between the two bars.
    pub missing: i64,
}

/// Candles read from a file, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct CandleSeries {
    /// `Candle::ts` is the open time in epoch seconds (floored).
    pub candles: Vec<Candle>,
    /// The open time of each candle in epoch milliseconds.
    pub times_ms: Vec<i64>,
    /// The 1-based line of each candle in the file.
    pub lines: Vec<u32>,
    pub time_kind: TimeKind,
    pub order: RowOrder,
    /// The typical (median) spacing between bars, when there are at least two.
    pub interval_ms: Option<i64>,
    pub gaps: Vec<Gap>,
}

impl CandleSeries {
    pub fn len(&self) -> usize {
        self.candles.len()
    }
    pub fn is_empty(&self) -> bool {
        self.candles.is_empty()
    }
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: u32,
    pub message: String,
}

/// Why a candle file could not be used. The message names the file and the line.
#[derive(Debug)]
pub enum CsvError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Invalid {
        path: PathBuf,
        /// The first bad rows, in line order (at most [`MAX_LISTED`]).
        rows: Vec<BadRow>,
        /// How many bad rows the file has in all.
        total: usize,
    },
}

/// Bad rows listed in an error message; the rest are counted.
pub const MAX_LISTED: usize = 10;

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvError::Read { path, source } => {
                write!(f, "cannot read candles file {}: {source}", path.display())
            }
            CsvError::Invalid { path, rows, total } => {
                let p = path.display();
                let mut first = true;
                for r in rows {
                    if !first {
                        writeln!(f)?;
                    }
                    first = false;
                    write!(f, "{p}:{}: {}", r.line, r.message)?;
                }
                if *total > rows.len() {
                    write!(
                        f,
                        "\n{p}: {} more bad rows not listed ({total} in all)",
                        total - rows.len()
                    )?;
                }
                if *total > 0 {
                    write!(
                        f,
                        "\n{p}: refused: fix or remove the bad rows (a backtest never skips a row)"
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CsvError {}

impl CsvError {
    /// The line of the first bad row, if the file was read.
    pub fn first_line(&self) -> Option<u32> {
        match self {
            CsvError::Invalid { rows, .. } => rows.first().map(|r| r.line),
            CsvError::Read { .. } => None,
        }
    }
}

/// Read and parse a candle file. `progress` is told the bytes parsed so far now and then.
pub fn read_csv(
    path: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CandleSeries, CsvError> {
    let bytes = std::fs::read(path).map_err(|source| CsvError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_csv(&bytes, progress).map_err(|(rows, total)| CsvError::Invalid {
        path: path.to_path_buf(),
        rows,
        total,
    })
}

const COLUMNS: [&str; 6] = ["timestamp", "open", "high", "low", "close", "volume"];

/// Collects bad rows: the first few with their messages, the rest counted.
struct Problems {
    rows: Vec<BadRow>,
    total: usize,
}

impl Problems {
    fn add(&mut self, line: u32, message: impl FnOnce() -> String) {
        self.total += 1;
        if self.rows.len() < MAX_LISTED {
            self.rows.push(BadRow {
                line,
                message: message(),
            });
        }
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    if s.len() >= 2 && s[0] == b'"' && s[s.len() - 1] == b'"' {
        s = &s[1..s.len() - 1];
    }
    s
}

fn show(field: &[u8]) -> String {
    let s = String::from_utf8_lossy(field);
    let s = s.trim();
    if s.is_empty() {
        "(empty)".into()
    } else if s.chars().count() > 40 {
        format!("{:?}…", s.chars().take(40).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

/// Parse a whole file already in memory. On failure: the first bad rows and how many in all.
pub fn parse_csv(
    bytes: &[u8],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CandleSeries, (Vec<BadRow>, usize)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut problems = Problems {
        rows: Vec::new(),
        total: 0,
    };
    let fail = |p: Problems| Err((p.rows, p.total));

    // The header: the first line that is not blank.
    let mut pos = 0usize;
    let mut line_no: u32 = 0;
    let mut header: Option<(u32, &[u8])> = None;
    while pos < bytes.len() {
        let end = next_newline(bytes, pos);
        line_no += 1;
        let line = &bytes[pos..end];
        pos = (end + 1).min(bytes.len());
        if !trim(line).is_empty() {
            header = Some((line_no, line));
            break;
        }
    }
    let Some((header_line, header)) = header else {
        problems.add(1, || {
            "the file is empty: expected the header timestamp,open,high,low,close,volume".into()
        });
        return fail(problems);
    };
    // slot[k] = which of the six columns field k holds.
    let mut slot = [usize::MAX; 6];
    let names: Vec<&[u8]> = header.split(|&b| b == b',').map(trim).collect();
    let mut header_ok = names.len() == 6;
    for (k, name) in names.iter().enumerate().take(6) {
        match COLUMNS
            .iter()
            .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        {
            Some(c) if !slot.contains(&c) => slot[k] = c,
            _ => header_ok = false,
        }
    }
    if !header_ok {
        problems.add(header_line, || {
            format!(
                "header {} is not timestamp,open,high,low,close,volume",
                show(header)
            )
        });
        return fail(problems);
    }

    let estimate = bytes.len() / 48 + 1;
    let mut candles: Vec<Candle> = Vec::with_capacity(estimate);
    let mut times: Vec<i64> = Vec::with_capacity(estimate);
    let mut lines: Vec<u32> = Vec::with_capacity(estimate);
    let mut kind: Option<(TimeKind, u32)> = None;
    let mut fields: [&[u8]; 6] = [&[]; 6];
    let total_bytes = bytes.len();

    while pos < bytes.len() {
        let end = next_newline(bytes, pos);
        line_no += 1;
        let line = &bytes[pos..end];
        pos = end + 1;
        if line_no & 0xFFFF == 0 {
            progress(pos.min(total_bytes), total_bytes);
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        // Split into exactly six fields.
        let mut n = 0usize;
        let mut start = 0usize;
        let mut too_many = false;
        for (i, &b) in line.iter().enumerate() {
            if b == b',' {
                if n < 5 {
                    fields[slot[n]] = &line[start..i];
                    n += 1;
                    start = i + 1;
                } else {
                    too_many = true;
                    break;
                }
            }
        }
        if too_many || n < 5 {
            let count = line.iter().filter(|&&b| b == b',').count() + 1;
            problems.add(line_no, || {
                format!("expected 6 fields (timestamp,open,high,low,close,volume), found {count}")
            });
            continue;
        }
        fields[slot[5]] = &line[start..];

        let ts_field = trim(fields[0]);
        let ts = match parse_timestamp(ts_field) {
            Ok((ms, k)) => {
                match kind {
                    None => kind = Some((k, line_no)),
                    Some((first, first_line)) if first != k => {
                        problems.add(line_no, || {
                            format!(
                                "timestamp {} is in {} but the first row (line {first_line}) is in {}",
                                show(ts_field),
                                k.describe(),
                                first.describe()
                            )
                        });
                        continue;
                    }
                    Some(_) => {}
                }
                ms
            }
            Err(why) => {
                problems.add(line_no, || {
                    format!("timestamp {} is not valid: {why}", show(ts_field))
                });
                continue;
            }
        };
        let mut values = [0.0f64; 5];
        let mut bad = false;
        for (c, v) in values.iter_mut().enumerate() {
            let raw = trim(fields[c + 1]);
            match parse_number(raw) {
                Some(x) => *v = x,
                None => {
                    problems.add(line_no, || {
                        format!("{} {} is not a finite number", COLUMNS[c + 1], show(raw))
                    });
                    bad = true;
                    break;
                }
            }
        }
        if bad {
            continue;
        }
        let [open, high, low, close, volume] = values;
        if let Some(why) = check_bar(open, high, low, close, volume) {
            problems.add(line_no, || why);
            continue;
        }
        candles.push(Candle {
            ts: ts.div_euclid(1000),
            open,
            high,
            low,
            close,
            volume,
        });
        times.push(ts);
        lines.push(line_no);
    }
    progress(total_bytes, total_bytes);
    if problems.total > 0 {
        return fail(problems);
    }
    if candles.is_empty() {
        problems.add(line_no.max(header_line + 1), || {
            "no candles after the header".into()
        });
        return fail(problems);
    }

    let (mut asc, mut desc) = (true, true);
    for w in times.windows(2) {
        asc &= w[0] < w[1];
        desc &= w[0] > w[1];
    }
    let order = if asc {
        RowOrder::Ascending
    } else if desc {
        candles.reverse();
        times.reverse();
        lines.reverse();
        RowOrder::Descending
    } else {
        let mut idx: Vec<u32> = (0..times.len() as u32).collect();
        idx.sort_by_key(|&i| (times[i as usize], lines[i as usize]));
        candles = idx.iter().map(|&i| candles[i as usize]).collect();
        times = idx.iter().map(|&i| times[i as usize]).collect();
        lines = idx.iter().map(|&i| lines[i as usize]).collect();
        for i in 1..times.len() {
            if times[i] == times[i - 1] {
                let (a, b) = (lines[i - 1].min(lines[i]), lines[i - 1].max(lines[i]));
                let t = times[i];
                problems.add(b, || {
                    format!(
                        "duplicate timestamp {} (also on line {a})",
                        format_time_ms(t)
                    )
                });
            }
        }
        if problems.total > 0 {
            problems.rows.sort_by_key(|r| r.line);
            return fail(problems);
        }
        RowOrder::Unordered
    };

    let interval_ms = median_spacing(&times);
    let mut gaps = Vec::new();
    if let Some(iv) = interval_ms {
        for i in 1..times.len() {
            let d = times[i] - times[i - 1];
            // Half an interval of slack: a bar late by less than that is jitter, not a gap.
            if d * 2 > iv * 3 {
                gaps.push(Gap {
                    line: lines[i],
                    from_ms: times[i - 1],
                    to_ms: times[i],
                    missing: (d + iv / 2) / iv - 1,
                });
            }
        }
    }
    Ok(CandleSeries {
        candles,
        times_ms: times,
        lines,
        time_kind: kind.map(|k| k.0).unwrap_or(TimeKind::Iso),
        order,
        interval_ms,
        gaps,
    })
}

fn next_newline(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| from + i)
}

fn median_spacing(times: &[i64]) -> Option<i64> {
    let mut d: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if d.is_empty() {
        return None;
    }
    let mid = d.len() / 2;
    let (_, m, _) = d.select_nth_unstable(mid);
    Some((*m).max(1))
}

/// A bar that cannot be a candle, in the trader's words.
fn check_bar(open: f64, high: f64, low: f64, close: f64, volume: f64) -> Option<String> {
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
fn parse_number(s: &[u8]) -> Option<f64> {
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

fn digits(s: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = s.get(at..at + n)?;
    let mut v = 0i64;
    for &b in part {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(b - b'0');
    }
    Some(v)
}

/// `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH[:MM]]`; no zone means UTC.
fn parse_iso(s: &[u8]) -> Result<i64, &'static str> {
    const BAD: &str = "expected YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM]";
    let year = digits(s, 0, 4).ok_or(BAD)?;
    let month = digits(s, 5, 2).ok_or(BAD)?;
    let day = digits(s, 8, 2).ok_or(BAD)?;
    if s[7] != b'-' {
        return Err(BAD);
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("no such date");
    }
    let mut secs_of_day = 0i64;
    let mut millis = 0i64;
    let mut i = 10;
    if i < s.len() && (s[i] == b'T' || s[i] == b't' || s[i] == b' ') {
        let hour = digits(s, i + 1, 2).ok_or(BAD)?;
        if s.get(i + 3) != Some(&b':') {
            return Err(BAD);
        }
        let minute = digits(s, i + 4, 2).ok_or(BAD)?;
        i += 6;
        let mut second = 0;
        if s.get(i) == Some(&b':') {
            second = digits(s, i + 1, 2).ok_or(BAD)?;
            i += 3;
            if s.get(i) == Some(&b'.') || s.get(i) == Some(&b',') {
                i += 1;
                let start = i;
                let mut scale = 100;
                while i < s.len() && s[i].is_ascii_digit() {
                    millis += i64::from(s[i] - b'0') * scale;
                    scale /= 10;
                    i += 1;
                }
                if i == start {
                    return Err(BAD);
                }
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err("no such time of day");
        }
        secs_of_day = hour * 3600 + minute * 60 + second;
    }
    let mut offset = 0i64;
    match s.get(i) {
        None => {}
        Some(b'Z' | b'z') if i + 1 == s.len() => {}
        Some(&sign @ (b'+' | b'-')) => {
            let h = digits(s, i + 1, 2).ok_or(BAD)?;
            let m = match s.len() - (i + 3) {
                0 => 0,
                2 => digits(s, i + 3, 2).ok_or(BAD)?,
                3 if s[i + 3] == b':' => digits(s, i + 4, 2).ok_or(BAD)?,
                _ => return Err(BAD),
            };
            if h > 23 || m > 59 {
                return Err("no such time zone offset");
            }
            offset = (h * 3600 + m * 60) * if sign == b'-' { -1 } else { 1 };
        }
        _ => return Err(BAD),
    }
    let days = days_from_civil(year, month, day);
    Ok((days * 86_400 + secs_of_day - offset) * 1000 + millis)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2024-01-01T00:00:00Z` (with `.123` when the milliseconds are not zero).
pub fn format_time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
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

/// 2024-01-01T00:00:00Z: where [`write_simulated_csv`] starts.
pub const SIMULATED_START_S: i64 = 1_704_067_200;

/// Write `bars` hourly candles of the simulated market (seed `seed`, BTC-like prices from 65,000)
/// as a backtest CSV with ISO-8601 timestamps, oldest first. Test data, made on the spot.
pub fn write_simulated_csv(path: &Path, seed: u64, bars: usize) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(b"timestamp,open,high,low,close,volume\n")?;
    let mut g = MarketGenerator::new(seed, 65_000.0, SIMULATED_START_S, 3600);
    for _ in 0..bars {
        let (c, _) = g.next_candle();
        // Rounding is monotonic, so low <= open, close <= high still holds.
        writeln!(
            out,
            "{},{:.2},{:.2},{:.2},{:.2},{:.4}",
            format_time_ms(c.ts * 1000),
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

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
