#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The backtest's candle CSV: timestamp forms, row order, and every kind of bad row refused
//! with its line number.

use autotrade_tui::backtest::csv::{BadRow, RowOrder, TimeKind};
use autotrade_tui::backtest::{CandleSeries, CsvError, parse_csv, read_csv};

const HEADER: &str = "timestamp,open,high,low,close,volume\n";
const T0: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z

fn parse(text: &str) -> Result<CandleSeries, (Vec<BadRow>, usize)> {
    parse_csv(text.as_bytes(), &mut |_, _| {})
}

fn ok(text: &str) -> CandleSeries {
    parse(text).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The single bad row of `text`: its line and message.
fn bad(text: &str) -> (u32, String) {
    let (rows, total) = parse(text).expect_err("the file should be refused");
    assert_eq!(total, 1, "{rows:?}");
    (rows[0].line, rows[0].message.clone())
}

const ROWS: [(f64, f64, f64, f64, f64); 3] = [
    (100.0, 101.5, 99.5, 101.0, 12.5),
    (101.0, 102.0, 100.25, 100.5, 8.0),
    (100.5, 100.75, 99.0, 99.25, 20.125),
];

fn file(stamp: impl Fn(i64) -> String, order: &[usize]) -> String {
    let mut s = HEADER.to_string();
    for &i in order {
        let (o, h, l, c, v) = ROWS[i];
        s.push_str(&format!(
            "{},{o},{h},{l},{c},{v}\n",
            stamp(T0 + i as i64 * 3600)
        ));
    }
    s
}

fn iso(t: i64) -> String {
    let h = (t - T0) / 3600;
    format!("2024-01-01T{h:02}:00:00Z")
}

fn assert_rows(s: &CandleSeries) {
    assert_eq!(s.len(), 3);
    for (i, c) in s.candles.iter().enumerate() {
        let (o, h, l, cl, v) = ROWS[i];
        assert_eq!((c.open, c.high, c.low, c.close, c.volume), (o, h, l, cl, v));
        assert_eq!(c.ts, T0 + i as i64 * 3600);
        assert_eq!(s.times_ms[i], (T0 + i as i64 * 3600) * 1000);
    }
    assert_eq!(s.interval_ms, Some(3_600_000));
    assert!(s.gaps.is_empty());
}

#[test]
fn iso_epoch_seconds_and_epoch_millis_read_the_same() {
    let a = ok(&file(iso, &[0, 1, 2]));
    assert_eq!(a.time_kind, TimeKind::Iso);
    let b = ok(&file(|t| t.to_string(), &[0, 1, 2]));
    assert_eq!(b.time_kind, TimeKind::EpochSeconds);
    let c = ok(&file(|t| (t * 1000).to_string(), &[0, 1, 2]));
    assert_eq!(c.time_kind, TimeKind::EpochMillis);
    for s in [&a, &b, &c] {
        assert_rows(s);
        assert_eq!(s.order, RowOrder::Ascending);
        assert_eq!(s.lines, vec![2, 3, 4]);
    }
    assert_eq!(a.candles, b.candles);
    assert_eq!(a.candles, c.candles);
    // Other ISO spellings of the same instants.
    let d = ok(&file(
        |t| {
            let h = (t - T0) / 3600;
            format!("2024-01-01 {:02}:30:00+00:30", h)
        },
        &[0, 1, 2],
    ));
    assert_eq!(d.candles, a.candles);
}

#[test]
fn descending_rows_are_sorted_oldest_first() {
    let s = ok(&file(iso, &[2, 1, 0]));
    assert_eq!(s.order, RowOrder::Descending);
    assert_rows(&s);
    // Lines still point into the file: the oldest bar was written last.
    assert_eq!(s.lines, vec![4, 3, 2]);
    let ms = ok(&file(|t| (t * 1000).to_string(), &[2, 1, 0]));
    assert_rows(&ms);
}

#[test]
fn rows_in_no_order_are_sorted() {
    let s = ok(&file(|t| t.to_string(), &[1, 2, 0]));
    assert_eq!(s.order, RowOrder::Unordered);
    assert_rows(&s);
    assert_eq!(s.lines, vec![4, 2, 3]);
}

#[test]
fn header_in_any_order_crlf_bom_quotes_and_blank_lines() {
    let text = "\u{feff}\"Close\", open ,HIGH,low,Volume,timestamp\r\n\
                101,100,101.5,99.5,12.5,\"2024-01-01T00:00:00Z\"\r\n\
                \r\n\
                100.5,101,102,100.25,8,2024-01-01T01:00:00Z\r\n\
                99.25,100.5,100.75,99,20.125,2024-01-01T02:00:00Z";
    let s = ok(text);
    assert_rows(&s);
    assert_eq!(s.lines, vec![2, 4, 5]);
}

#[test]
fn backtesting_py_files_are_read_as_they_are() {
    // backtesting.py's EURUSD.csv (hourly) and GOOG.csv (daily), as pandas writes them: the
    // index column unnamed, capitalized names, timestamps without a zone (read as UTC).
    let hourly = ",Open,High,Low,Close,Volume\n\
                  2017-04-19 09:00:00,1.0716,1.0722,1.07083,1.07219,1413\n\
                  2017-04-19 10:00:00,1.07214,1.07296,1.07214,1.0726,1241\n";
    let s = ok(hourly);
    assert_eq!(s.len(), 2);
    assert_eq!(s.time_kind, TimeKind::Iso);
    // 2017-04-19T09:00:00Z.
    assert_eq!(s.times_ms, vec![1_492_592_400_000, 1_492_596_000_000]);
    assert_eq!(s.interval_ms, Some(3_600_000));
    let c = &s.candles[0];
    assert_eq!(
        (c.open, c.high, c.low, c.close, c.volume),
        (1.0716, 1.0722, 1.07083, 1.07219, 1413.0)
    );
    let daily = ",Open,High,Low,Close,Volume\n\
                 2004-08-19,100,104.06,95.96,100.34,22351900\n\
                 2004-08-20,101.01,109.08,100.5,108.31,11428600\n";
    let s = ok(daily);
    // 2004-08-19T00:00:00Z.
    assert_eq!(s.times_ms, vec![1_092_873_600_000, 1_092_960_000_000]);
    assert_eq!(s.candles[1].close, 108.31);
    // Only the first name may be empty, and only once.
    for text in [
        "Open,,High,Low,Close,Volume\n",
        ",Open,High,Low,Close,Timestamp\n",
        ",Open,High,Low,Close\n",
    ] {
        let (rows, _) = parse(text).expect_err(text);
        assert!(
            rows[0].message.contains("is not timestamp,open"),
            "{text:?}: {rows:?}"
        );
    }
}

#[test]
fn an_unparseable_number_is_refused_with_its_line() {
    let text = format!(
        "{HEADER}{T0},1,2,0.5,1.5,10\n{},1,2,0.5,abc,10\n",
        T0 + 3600
    );
    let (line, msg) = bad(&text);
    assert_eq!(line, 3);
    assert!(msg.contains("close") && msg.contains("abc"), "{msg}");
    for (field, want) in [("nan", "close"), ("inf", "close"), ("", "close")] {
        let text = format!("{HEADER}{T0},1,2,0.5,{field},10\n");
        let (line, msg) = bad(&text);
        assert_eq!(line, 2);
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn high_below_low_is_refused_with_its_line() {
    let text = format!(
        "{HEADER}{T0},100,101,99,100,1\n{},100,101,99,100,1\n{},100,98,99,100,1\n",
        T0 + 3600,
        T0 + 7200
    );
    let (line, msg) = bad(&text);
    assert_eq!(line, 4);
    assert_eq!(msg, "high 98 is below low 99");
}

#[test]
fn a_duplicate_timestamp_is_refused_naming_both_lines() {
    let text = format!(
        "{HEADER}{T0},100,101,99,100,1\n{},100,101,99,100,1\n{T0},100,101,99,100,1\n",
        T0 + 3600
    );
    let (line, msg) = bad(&text);
    assert_eq!(line, 4);
    assert!(
        msg.contains("duplicate timestamp 2024-01-01T00:00:00Z"),
        "{msg}"
    );
    assert!(msg.contains("line 2"), "{msg}");
    // Adjacent duplicates too (the file is otherwise ascending).
    let text = format!("{HEADER}{T0},100,101,99,100,1\n{T0},100,101,99,100,1\n");
    assert_eq!(bad(&text).0, 3);
}

#[test]
fn every_other_bad_row_kind_is_refused_with_its_line() {
    let good = format!("{T0},100,101,99,100,1\n");
    let cases: [(&str, &str); 12] = [
        ("1704070800,100,101,99,100", "expected 6 fields"),
        ("1704070800,100,101,99,100,1,7", "expected 6 fields"),
        (
            "yesterday,100,101,99,100,1",
            "timestamp \"yesterday\" is not valid",
        ),
        ("2024-02-30T00:00:00Z,100,101,99,100,1", "no such date"),
        (
            "1704070800000,100,101,99,100,1",
            "epoch milliseconds but the first row (line 2) is in epoch seconds",
        ),
        ("1704070800,0,101,0,100,1", "open 0 is not > 0"),
        ("1704070800,-5,101,99,100,1", "open -5 is not > 0"),
        ("1704070800,100,101,99,100,-1", "volume -1 is negative"),
        ("1704070800,102,101,99,100,1", "open 102 is above high 101"),
        ("1704070800,100,101,99,98,1", "close 98 is below low 99"),
        (
            "1704070800,100,1e400,99,100,1",
            "high \"1e400\" is not a finite number",
        ),
        (
            "1704070800000000,100,101,99,100,1",
            "too large for epoch milliseconds",
        ),
    ];
    for (row, want) in cases {
        let text = format!("{HEADER}{good}{row}\n");
        let (line, msg) = bad(&text);
        assert_eq!(line, 3, "{row}: {msg}");
        assert!(msg.contains(want), "{row}: {msg} (want {want:?})");
    }
}

#[test]
fn bad_headers_and_empty_files_are_refused() {
    for (text, want) in [
        ("", "the file is empty"),
        ("\n\n", "the file is empty"),
        (
            "time,open,high,low,close,volume\n",
            "is not timestamp,open,high,low,close,volume",
        ),
        ("timestamp,open,high,low,close\n", "is not timestamp,open"),
        (
            "timestamp,open,open,low,close,volume\n",
            "is not timestamp,open",
        ),
        (HEADER, "no candles after the header"),
    ] {
        let (rows, total) = parse(text).expect_err(text);
        assert_eq!(total, 1);
        assert!(rows[0].message.contains(want), "{text:?}: {rows:?}");
    }
}

#[test]
fn every_bad_row_is_listed_up_to_ten_and_counted() {
    let mut text = HEADER.to_string();
    for i in 0..25 {
        // Every other row is bad: high below low.
        let high = if i % 2 == 1 { 98 } else { 101 };
        text.push_str(&format!("{},100,{high},99,100,1\n", T0 + i * 3600));
    }
    let (rows, total) = parse(&text).unwrap_err();
    assert_eq!(total, 12);
    assert_eq!(rows.len(), 10);
    let lines: Vec<u32> = rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![3, 5, 7, 9, 11, 13, 15, 17, 19, 21]);
}

#[test]
fn gaps_in_time_are_reported_with_their_line() {
    let mut text = HEADER.to_string();
    for i in [0, 1, 2, 3, 7, 8, 9] {
        text.push_str(&format!("{},100,101,99,100,1\n", T0 + i * 3600));
    }
    let s = ok(&text);
    assert_eq!(s.len(), 7);
    assert_eq!(s.interval_ms, Some(3_600_000));
    assert_eq!(s.gaps.len(), 1);
    let g = s.gaps[0];
    assert_eq!(g.line, 6);
    assert_eq!(g.missing, 3);
    assert_eq!(g.from_ms, (T0 + 3 * 3600) * 1000);
    assert_eq!(g.to_ms, (T0 + 7 * 3600) * 1000);
}

#[test]
fn read_errors_name_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.csv");
    let e = read_csv(&missing, &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, CsvError::Read { .. }));
    assert!(e.to_string().contains("nope.csv"), "{e}");

    let path = dir.path().join("bad.csv");
    std::fs::write(
        &path,
        format!(
            "{HEADER}{T0},100,101,99,100,1\n{},100,98,99,100,1\n",
            T0 + 3600
        ),
    )
    .unwrap();
    let e = read_csv(&path, &mut |_, _| {}).unwrap_err();
    assert_eq!(e.first_line(), Some(3));
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}:3: high 98 is below low 99", path.display())),
        "{msg}"
    );
}

#[test]
fn the_simulated_market_writes_a_file_the_parser_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.csv");
    autotrade_tui::backtest::write_simulated_csv(&path, 3, 500).unwrap();
    let s = read_csv(&path, &mut |_, _| {}).unwrap();
    assert_eq!(s.len(), 500);
    assert_eq!(s.time_kind, TimeKind::Iso);
    assert_eq!(s.interval_ms, Some(3_600_000));
    assert!(s.gaps.is_empty());
    assert_eq!(s.candles[0].ts, T0);
    assert_eq!(s.candles[0].open, 65_000.0);
}
