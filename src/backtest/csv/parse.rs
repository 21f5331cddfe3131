//! The file as a whole: the header, six fields a row, one timestamp kind, order, duplicates, gaps.

use super::row::{check_bar, parse_number};
use super::time::{format_time_ms, parse_timestamp};
use super::{BadRow, CandleSeries, Gap, MAX_LISTED, RowOrder, TimeKind};
use crate::simulated::Candle;

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
        // An empty first name is the timestamp: pandas writes its index column unnamed
        // (`,Open,High,Low,Close,Volume`).
        let column = if k == 0 && name.is_empty() {
            Some(0)
        } else {
            COLUMNS
                .iter()
                .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        };
        match column {
            Some(c) if !slot.contains(&c) => slot[k] = c,
            _ => header_ok = false,
        }
    }
    if !header_ok {
        problems.add(header_line, || {
            format!(
                "header {} is not timestamp,open,high,low,close,volume (the first name may be empty)",
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
