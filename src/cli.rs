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
    /// Arm live trading (needs paper_trading = false, [broker] kind = "alpaca" and Alpaca's live keys in the environment).
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
        /// Another user of the data dir (default: the config's user_id).
        #[arg(long, value_name = "ID")]
        user: Option<String>,
    },
    /// Confirm (execute) a pending decision.
    Confirm { log_id: String },
    /// Cancel a pending decision.
    Cancel { log_id: String },
    /// User, enabled, paper/live, source, symbols, positions, pending, last cycle.
    Status {
        #[arg(long)]
        json: bool,
        /// Another user of the data dir (default: the config's user_id).
        #[arg(long, value_name = "ID")]
        user: Option<String>,
    },
    /// Turn auto-trading on (also clears the kill switch); refused while a loss halt is in force.
    Enable {
        /// Clear a loss halt: the daily loss and drawdown limits start again from today's equity.
        #[arg(long)]
        reset: bool,
    },
    /// Turn auto-trading off.
    Disable,
    /// Kill switch: disable and cancel every pending decision (--flatten: and close every open position).
    Kill {
        /// Also close every open position: on the paper ledger at its latest price, at a real broker by a closing market order each.
        #[arg(long)]
        flatten: bool,
    },
    /// A manual trade: TP/SL from the symbol's signal and the size from the risk rules unless given; pending until confirmed, or at once with --yes.
    Trade {
        /// One of the configured symbols in any case: a pair like BTC/USD or a US stock ticker like AAPL.
        symbol: String,
        side: Side,
        /// Quantity; default: from max_risk_percent and the stop distance, capped.
        #[arg(long)]
        size: Option<f64>,
        /// Take-profit price; default: the signal's (ML engine or analyzer).
        #[arg(long)]
        tp: Option<f64>,
        /// Stop-loss price; default: the signal's (ML engine or analyzer).
        #[arg(long)]
        sl: Option<f64>,
        /// Take a risk above max_risk_percent, up to PCT % of the account (never above the whole account).
        #[arg(long, value_name = "PCT")]
        allow_risk: Option<f64>,
        /// Take a reward:risk below 1, down to RATIO.
        #[arg(long, value_name = "RATIO")]
        allow_rr: Option<f64>,
        /// Take a position worth more than max_position_percent, up to PCT % of the account (at most 100).
        #[arg(long, value_name = "PCT")]
        allow_value: Option<f64>,
        /// A trailing stop PCT % of the best price behind it (0 < PCT <= 50), never loosening; default: [risk] trailing_stop_percent.
        #[arg(
            long,
            value_name = "PCT",
            conflicts_with = "trail_by",
            allow_negative_numbers = true
        )]
        trail: Option<f64>,
        /// A trailing stop AMOUNT (in price units, below the entry) behind the best price, never loosening.
        #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
        trail_by: Option<f64>,
        /// Execute at once instead of leaving it pending.
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Open positions with unrealized P&L at the latest price.
    Positions {
        #[arg(long)]
        json: bool,
        /// Another user of the data dir (default: the config's user_id).
        #[arg(long, value_name = "ID")]
        user: Option<String>,
    },
    /// Close the open position on SYMBOL (any case) at the latest price.
    Close { symbol: String },
    /// The engine headless, with the auto-trade REST API.
    Serve {
        /// Address to listen on; anything but loopback needs AUTOTRADE_API_TOKEN.
        #[arg(long, default_value = "127.0.0.1:8003", value_name = "ADDR")]
        listen: String,
    },
    /// The dashboard of a `serve` on another machine, through its REST API and events stream (token: $AUTOTRADE_API_TOKEN).
    Attach {
        /// The server's address, e.g. http://tradebox:8003.
        url: String,
        /// The user whose desk to show.
        #[arg(long, default_value = "default", value_name = "ID")]
        user: String,
    },
    /// The engine headless for the config file's user, no HTTP: for a service manager (systemd).
    Run,
    /// The agent tools over MCP (JSON-RPC on stdio): an LLM agent analyses and proposes.
    Mcp,
    /// What the decisions made: realized performance, the outcome of every decision (executed
    /// or not), the value of the veto, and how well each source's scores sort winners.
    Report {
        /// Only decisions from this day (UTC) or RFC 3339 time on.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        #[arg(long)]
        json: bool,
        /// Another user of the data dir (default: the config's user_id).
        #[arg(long, value_name = "ID")]
        user: Option<String>,
    },
    /// Replay a CSV of candles through the analyzer, the rules and the paper broker.
    Backtest {
        /// CSV with header timestamp,open,high,low,close,volume.
        #[arg(long, value_name = "FILE.csv")]
        candles: PathBuf,
        /// The symbol the candles are for, any case (labels the report; default BTC/USD).
        #[arg(long)]
        symbol: Option<String>,
        /// Random-entry runs the strategy is ranked among (0: none; default 200, fewer when the
        /// strategy made over 10,000 trades: 2,000,000 random trades in all, at least 40 runs).
        #[arg(long, value_name = "N")]
        baseline_seeds: Option<usize>,
        /// Trail every stop PCT % behind the best price since the fill (0: fixed stops);
        /// default: [risk] trailing_stop_percent.
        #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
        trail: Option<f64>,
        /// Seed of the random entries: the same seed gives the same report on every machine.
        #[arg(long, value_name = "S", default_value_t = crate::backtest::baseline::DEFAULT_SEED)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// `--json` was given: errors go to stderr as one JSON object too.
    pub fn json(&self) -> bool {
        match &self.command {
            Some(
                Command::Once { json }
                | Command::Decisions { json, .. }
                | Command::Status { json, .. }
                | Command::Trade { json, .. }
                | Command::Positions { json, .. }
                | Command::Report { json, .. }
                | Command::Backtest { json, .. },
            ) => *json,
            _ => false,
        }
    }

    /// `--user ID`: the user whose status, positions or decisions to show.
    pub fn user(&self) -> Option<&str> {
        match &self.command {
            Some(
                Command::Decisions { user, .. }
                | Command::Status { user, .. }
                | Command::Positions { user, .. }
                | Command::Report { user, .. },
            ) => user.as_deref(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn side(self) -> crate::domain::Side {
        match self {
            Side::Buy => crate::domain::Side::Buy,
            Side::Sell => crate::domain::Side::Sell,
        }
    }
}
