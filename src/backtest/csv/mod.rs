//! The candle CSV: a single-pass parser (the file is read whole and split by lines).
//!
//! Header `timestamp,open,high,low,close,volume` (the six names in any order, case-insensitive,
//! surrounding quotes and spaces allowed; an empty first name is the timestamp, as pandas writes
//! an unnamed index: `,Open,High,Low,Close,Volume`). Timestamps are ISO-8601
//! (`2024-01-01T00:00:00Z`, `2024-01-01 00:00`, `…+02:00`, a bare date; without a zone they are
//! UTC) or epoch seconds or milliseconds, decided by size
//! (below 10^11 seconds, else milliseconds); every row must use the kind of the first row.
//! Rows may come oldest or newest first (or in any order): they are sorted.
//!
//! Bad rows are refused, never skipped (see the module doc of [`crate::backtest`]): the error lists
//! each bad row with its line number. Gaps in time are reported, not refused.
//!
//! - `parse`: the file: header, rows, order, duplicates and gaps.
//! - `row`: one row's fields: numbers and the checks that make a bar a candle.
//! - `time`: timestamps in and out (the calendar is chrono's).
//! - `simulated`: a test file written from the simulated market.

mod parse;
mod row;
mod simulated;
mod time;

pub use parse::parse_csv;
pub use simulated::{SIMULATED_START_S, write_simulated_csv};
pub use time::{format_interval, format_time_ms, parse_timestamp};

use crate::simulated::Candle;
use std::fmt;
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
