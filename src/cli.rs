//! The command line (SPEC "Command line").

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "autotrade-tui",
    version,
    about = "ML signals and AMD phases turned into sized, confirmable trading decisions",
    long_about = "Without a subcommand, runs the dashboard. With no config and no ML engine it runs on a \
                  built-in simulated market, paper trading."
)]
pub struct Cli {
    /// Config file (TOML). Default: $AUTOTRADE_CONFIG, then <config dir>/config.toml, then built-in defaults.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data dir for the store and the log. Default: $AUTOTRADE_DATA_DIR, then the user's data dir.
    #[arg(long, global = true, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// Arm live trading (needs paper_trading = false and a live execution backend).
    #[arg(long, global = true)]
    pub live: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one monitoring cycle and print what it logged.
    Once {
        #[arg(long)]
        json: bool,
    },
    /// The decision log, newest first.
    Decisions {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only executed decisions.
        #[arg(long, conflicts_with = "pending")]
        executed_only: bool,
        /// Only pending decisions.
        #[arg(long)]
        pending: bool,
        #[arg(long)]
        json: bool,
    },
    /// Confirm (execute) a pending decision.
    Confirm { log_id: String },
    /// Cancel a pending decision.
    Cancel { log_id: String },
    /// User, enabled, paper/live, source, symbols, positions, pending, last cycle.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Turn auto-trading on (also clears the kill switch).
    Enable,
    /// Turn auto-trading off.
    Disable,
    /// Kill switch: disable and cancel every pending decision.
    Kill,
}
