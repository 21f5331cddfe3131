//! Backtest: replay candles through the analyzer, the decision rules and the paper broker.
//!
//! One code path with the live loop: the same [`Analyzer`](crate::simulated::Analyzer), the same
//! [`rules::decide_validated`](crate::domain::rules::decide_validated) (matrix, min_confidence,
//! gates, sizing, risk/reward), the same fill check as a live confirm
//! ([`lifecycle::check_fill`](crate::domain::lifecycle::check_fill)) and the same paper exit rules
//! ([`lifecycle::exit_in_bar`](crate::domain::lifecycle::exit_in_bar),
//! [`lifecycle::pnl`](crate::domain::lifecycle::pnl)). What differs: the clock is
//! bar time, and every actionable decision is taken (no confirmation; the backtest's own broker
//! is enabled with no kill switch, whatever the data dir's live state).
//!
//! No look-ahead: the decision at bar t sees bars ≤ t and fills at bar t+1's open (plus
//! slippage against the trader); the take-profit and stop-loss are checked on the high and low
//! of every bar from the fill bar on, stop-loss first when one bar touches both. A fill whose
//! price is already past the take-profit or stop-loss is not made (the decision expires, as a
//! live confirm would refuse it); nor is one that at the open would be over the cap or risk
//! more than the limit (refused, as a live confirm refuses it). With a trail (`[risk]
//! trailing_stop_percent`, or `--trail PCT` over it) every stop follows the best price by the
//! live rule ([`trail::step_in_bar`](crate::domain::trail::step_in_bar)): a bar's exit is judged
//! against the stop as it stood at its start, then its high (a short's low) moves the trail; a
//! trailing exit is a `stop_loss` exit. Fees are `[backtest] fee_percent` of the traded value on each
//! side; slippage is `[backtest] slippage_percent` of the price on every fill. A position still
//! open after the last bar closes at the last close, `exit_reason` "end".
//!
//! ## Bad rows: refused, with their line numbers
//! A file with any bad row is refused (exit 1) and nothing is replayed: skipping a row would
//! quietly change every indicator after it. The error names the file and lists the first
//! [`csv::MAX_LISTED`] bad rows as `FILE:LINE: what is wrong`, then how many more there are.
//! Bad rows: a wrong number of fields; a timestamp that does not parse, or is of another kind
//! (ISO, epoch s, epoch ms) than the first row's; a price or volume that is not a finite
//! number; a price ≤ 0 or a negative volume; high < low, or an open or close outside
//! high..low; a duplicate timestamp (both lines are named). A bad header is refused the same way.
//! Blank lines are ignored. Rows in descending (or any) order are sorted, not refused.
//! **Gaps in time** (a bar more than 1.5 typical intervals after the one before) are not rows
//! and cannot be skipped: they are reported on stderr with the line after each gap and counted in
//! the report, and the bars either side are replayed as consecutive.
//!
//! ## Whether there is an edge
//! A return alone says little. The report sets beside it: the win rate the trades needed to
//! break even after the fees and slippage they paid, and the one they reached with its 95 %
//! interval ([`edge::break_even`]); buy-and-hold over the same span ([`edge::buy_and_hold`]);
//! the same trades entered at random bars, run over many seeds, and the strategy's percentile
//! among them ([`baseline`]); how well the analyzer's score (a trade's `confidence`) sorts
//! winners from losers: Brier score against a constant, AUC, and a Wilson interval on each
//! calibration bucket ([`edge::score_quality`]); and warnings when the file or the trades are
//! too few to say anything ([`edge::warnings`]).

pub mod baseline;
pub mod csv;
pub mod edge;
pub mod progress;
pub mod replay;
pub mod report;
pub mod terminal;

pub use baseline::BaselineOptions;
pub use csv::{CandleSeries, CsvError, parse_csv, read_csv, write_simulated_csv};
pub use replay::{
    AnalyzerDecider, BarDecision, Decider, Outcome, Settings, Trade, decide_on_analysis, replay,
};
pub use report::Report;

use crate::commands::{EXIT_OK, ErrorKind, report_error, report_warning};
use crate::config::Config;
use progress::Progress;
use std::io::IsTerminal;
use std::path::Path;

/// The symbol a report is labelled with when `--symbol` is not given.
pub const DEFAULT_SYMBOL: &str = "BTC/USD";

/// Replay a series with the built-in analyzer and the live rules, and build the report (with
/// the random baseline's default runs and seed).
pub fn run_series(
    series: &CandleSeries,
    settings: &Settings,
    progress: &mut dyn FnMut(usize, usize),
) -> (Outcome, Report) {
    run_series_with(series, settings, BaselineOptions::default(), progress)
}

/// [`run_series`] with the random baseline's runs and seed.
pub fn run_series_with(
    series: &CandleSeries,
    settings: &Settings,
    baseline: BaselineOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> (Outcome, Report) {
    let mut decider = AnalyzerDecider::new(settings);
    let outcome = replay(&series.candles, settings, &mut decider, progress);
    let report = report::build_with(series, settings, &outcome, baseline);
    (outcome, report)
}

/// Read `path` and backtest it with `config`'s rules: parse to report.
pub fn run_file(
    config: &Config,
    path: &Path,
    symbol: &str,
) -> Result<(CandleSeries, Settings, Outcome, Report), CsvError> {
    let series = read_csv(path, &mut |_, _| {})?;
    let settings = Settings::from_config(config, symbol);
    let (outcome, report) = run_series(&series, &settings, &mut |_, _| {});
    Ok((series, settings, outcome, report))
}

fn write_stdout(text: &str) -> std::io::Result<()> {
    crate::out::write_str(text)
}

/// `--baseline-seeds` above this is refused: a typo, not a wish to wait.
pub const MAX_BASELINE_SEEDS: usize = 100_000;

/// `autotrade-tui backtest`: returns the exit code. `trail`: `--trail PCT`, over the config's
/// `[risk] trailing_stop_percent` (0: fixed stops).
pub fn run_cli(
    config: &Config,
    candles: &Path,
    symbol: Option<&str>,
    baseline: BaselineOptions,
    trail: Option<f64>,
    json: bool,
) -> color_eyre::Result<u8> {
    if let Some(p) = trail
        && !(p == 0.0 || crate::domain::trail::Trail::Percent(p).check().is_ok())
    {
        return Ok(report_error(
            json,
            ErrorKind::Usage,
            &format!(
                "--trail {}: must be a percent of the price above 0 and at most {} (0: fixed stops)",
                crate::domain::money::fmt_num(p),
                crate::domain::money::fmt_num(crate::domain::trail::MAX_TRAIL_PERCENT)
            ),
        ));
    }
    if baseline.runs > MAX_BASELINE_SEEDS {
        return Ok(report_error(
            json,
            ErrorKind::Usage,
            &format!(
                "--baseline-seeds {} is over {MAX_BASELINE_SEEDS}",
                baseline.runs
            ),
        ));
    }
    let symbol = crate::config::normalize_symbol(symbol.unwrap_or(DEFAULT_SYMBOL));
    let symbol = symbol.as_str();
    if !crate::config::valid_symbol(symbol) {
        return Ok(report_error(
            json,
            ErrorKind::Usage,
            &format!("--symbol {symbol:?} is not {}", crate::config::SYMBOL_FORMS),
        ));
    }
    let mut bar = Progress::stderr();
    let series = match read_csv(candles, &mut |done, total| {
        bar.update("reading", done, total)
    }) {
        Ok(s) => s,
        Err(e) => {
            bar.finish();
            return Ok(report_error(json, ErrorKind::Refused, &e.to_string()));
        }
    };
    let mut settings = Settings::from_config(config, symbol);
    if let Some(p) = trail {
        settings.trail = (p > 0.0).then_some(crate::domain::trail::Trail::Percent(p));
    }
    let (outcome, report) = run_series_with(&series, &settings, baseline, &mut |done, total| {
        bar.update("replaying", done, total)
    });
    bar.finish();

    if !series.gaps.is_empty() {
        let shown: Vec<String> = series
            .gaps
            .iter()
            .take(5)
            .map(|g| {
                format!(
                    "line {} ({} bars missing after {})",
                    g.line,
                    g.missing,
                    csv::format_time_ms(g.from_ms)
                )
            })
            .collect();
        report_warning(
            json,
            &format!(
                "{}: {} gaps in time, replayed as consecutive bars: {}{}",
                candles.display(),
                series.gaps.len(),
                shown.join(", "),
                if series.gaps.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            ),
        );
    }

    let text = if json {
        let mut s = serde_json::to_string(&report)?;
        s.push('\n');
        s
    } else {
        let width = if std::io::stdout().is_terminal() {
            ratatui::crossterm::terminal::size().map_or(100, |(w, _)| w)
        } else {
            100
        };
        terminal::render(
            &candles.display().to_string(),
            &series,
            &settings,
            &outcome,
            &report,
            width.clamp(60, 160),
        )
    };
    match write_stdout(&text) {
        Ok(()) => Ok(EXIT_OK),
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
        Err(e) => Err(e.into()),
    }
}
