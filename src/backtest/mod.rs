//! Backtest: replay candles through the analyzer, the decision rules and the paper broker.

use crate::config::Config;
use std::path::Path;

/// `autotrade-tui backtest`: returns the exit code.
pub fn run_cli(
    _config: &Config,
    candles: &Path,
    _symbol: Option<&str>,
    _json: bool,
) -> color_eyre::Result<u8> {
    eprintln!(
        "error: backtest of {} is not available in this build",
        candles.display()
    );
    Ok(crate::commands::EXIT_USAGE)
}
