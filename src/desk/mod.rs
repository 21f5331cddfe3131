//! The desk: the one application layer. The dashboard, the command line, `serve`, MCP and the
//! monitoring loop call it for every action (propose, confirm, cancel, resize, trade, close,
//! kill, enable) and every view (status, positions with P&L, decisions). It applies the
//! domain's rules to what the store holds, sends orders through the broker, and keeps each
//! status change one transaction. Front ends only parse input and render what it returns.

mod actions;
mod cycle;
mod execute;
mod guard;
mod held;
mod outcomes;
mod reconcile;
mod trailing;
mod views;

pub use actions::market_context;
pub use cycle::{CycleInput, CycleOutcome, OwnedCycleInput, SOURCE_BACK_EVENT, SOURCE_DOWN_EVENT};
pub use trailing::default_trail;
pub use views::{Equity, HISTORY_LIMIT, History, Snapshot, TREND_POINTS};

use crate::broker::Broker;
use crate::broker::paper::PaperBroker;
use crate::config::Config;
use crate::domain::manual::ManualRefusal;
use crate::domain::rules::RiskSettings;
use crate::source::MarketSource;
use crate::store::{Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why the desk did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// A refusal the trader should read (not pending, a gate, expiry, a fill check, …).
    #[error("{0}")]
    Refused(String),
    /// A manual order the rules refuse; each front end adds how to fix it in its own words.
    #[error("{0}")]
    Trade(ManualRefusal),
    #[error("no decision {0} for this user")]
    UnknownDecision(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The market source could not be made (a bad ML engine URL, …).
    #[error("{0}")]
    Source(String),
    #[error("a background task failed: {0}")]
    Task(String),
}

impl DeskError {
    /// A refusal (exit 1, HTTP 409/422), as opposed to a failure of the program.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            DeskError::Refused(_) | DeskError::Trade(_) | DeskError::UnknownDecision(_)
        )
    }
}

pub type Result<T> = std::result::Result<T, DeskError>;

/// The limits every status change respects, from the config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub risk: RiskSettings,
    pub max_open_positions: usize,
    pub require_confirmation: bool,
    pub pending_expiry: Duration,
    /// A price older than this fills nothing: `stale_after_seconds` with a live feed, else
    /// the pending expiry (prices then come with the checks).
    pub price_max_age: Duration,
    pub mode: &'static str,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            risk: RiskSettings {
                account_size: config.account.size,
                max_risk_percent: config.auto_trade.max_risk_percent,
                max_position_percent: config.account.max_position_percent,
                min_confidence: config.auto_trade.min_confidence,
            },
            max_open_positions: config.auto_trade.max_open_positions,
            require_confirmation: config.auto_trade.require_confirmation,
            pending_expiry: config.pending_expiry(),
            price_max_age: if config.market_data.provider.is_feed() {
                config.market_data.stale_after()
            } else {
                config.pending_expiry()
            },
            mode: config.mode(),
        }
    }
}

/// One user's desk: config, store, broker and market source.
#[derive(Clone)]
pub struct Desk {
    pub config: Arc<Config>,
    pub data_dir: PathBuf,
    pub store: Arc<Store>,
    pub broker: Arc<dyn Broker>,
    /// The source, made once and shared by the loop and every manual action (the simulated
    /// market regenerates its history when made, and the ML client keeps its connections).
    source: Arc<std::sync::Mutex<Option<Arc<dyn MarketSource>>>>,
    /// A view of another user (`--user`): reads only. Their pending decisions expire by
    /// their own settings, in their own engine, not by this config's.
    pub viewer: bool,
    /// Closing orders stored (with a real broker) and not yet sent: filled by the writes
    /// that find a position's exit crossed, after they commit; emptied by
    /// [`Desk::send_queued`].
    outbox: Arc<std::sync::Mutex<Vec<crate::store::Order>>>,
    /// What the events pane was last told of each trailing stop (see [`trailing`]).
    trail_notes: Arc<trailing::Notes>,
    /// Exits crossed while the store could not write (see [`held`]).
    held: Arc<std::sync::Mutex<held::Held>>,
}

impl Desk {
    /// Open the store in `data_dir`, with `broker` (the one `[broker]` names: see
    /// [`crate::broker::for_config`]).
    pub fn open(
        config: Config,
        data_dir: PathBuf,
        broker: Arc<dyn Broker>,
    ) -> color_eyre::Result<Desk> {
        use color_eyre::eyre::WrapErr;
        let store = Store::open_configured(
            &config,
            &data_dir,
            &config.auto_trade.user_id,
            config.auto_trade.enabled,
        )
        .wrap_err_with(|| format!("opening the store in {}", data_dir.display()))?;
        // Every command starts here: a damaged file is refused before anything writes to it.
        store
            .check_whole(&data_dir)
            .wrap_err_with(|| format!("checking the store in {}", data_dir.display()))?;
        Ok(Desk::new(Arc::new(config), data_dir, Arc::new(store)).with_broker(broker))
    }

    /// A desk on an open store, with the paper broker.
    pub fn new(config: Arc<Config>, data_dir: PathBuf, store: Arc<Store>) -> Desk {
        Desk {
            config,
            data_dir,
            store,
            broker: Arc::new(PaperBroker),
            source: Arc::default(),
            viewer: false,
            outbox: Arc::default(),
            trail_notes: Arc::default(),
            held: Arc::default(),
        }
    }

    pub fn with_broker(mut self, broker: Arc<dyn Broker>) -> Desk {
        self.broker = broker;
        self
    }

    pub fn limits(&self) -> Limits {
        Limits::from_config(&self.config)
    }

    /// The configured source: the ML engine, or the built-in simulated market.
    pub fn source(&self) -> Result<Arc<dyn MarketSource>> {
        let mut cached = match self.source.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let made = make_source(&self.config, &self.store)?;
        *cached = Some(made.clone());
        Ok(made)
    }

    /// Closing orders stored by a committed write, to be sent.
    fn queue(&self, orders: Vec<crate::store::Order>) {
        if orders.is_empty() {
            return;
        }
        match self.outbox.lock() {
            Ok(mut q) => q.extend(orders),
            Err(p) => p.into_inner().extend(orders),
        }
    }

    /// Send the closing orders queued by the writes that found exits crossed, and record each
    /// answer. Returns a line for each, for the trader to see (the events pane has them too).
    pub async fn send_queued(&self) -> Vec<String> {
        let orders = match self.outbox.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        let mut lines = Vec::new();
        for order in orders {
            lines.push(match self.send_close(order).await {
                Ok(pos) => format!(
                    "closed {} {} @ {}",
                    pos.side,
                    pos.symbol,
                    pos.exit_price
                        .map(crate::domain::money::fmt_price)
                        .unwrap_or_default()
                ),
                Err(e) => e.to_string(),
            });
        }
        lines
    }

    /// Run store work off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Desk) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let desk = self.clone();
        tokio::task::spawn_blocking(move || f(&desk))
            .await
            .map_err(|e| DeskError::Task(e.to_string()))?
    }
}

pub fn make_source(config: &Config, store: &Store) -> Result<Arc<dyn MarketSource>> {
    match &config.ml_engine {
        Some(ml) => {
            let client = crate::ml_engine::MlEngineClient::new(
                &ml.url,
                Duration::from_secs_f64(ml.timeout_seconds),
                ml.max_concurrent_requests,
            )
            .map_err(DeskError::Source)?;
            Ok(Arc::new(client))
        }
        None => Ok(Arc::new(
            crate::simulated::SimulatedSource::for_store(config, store)
                .map_err(|e| DeskError::Source(format!("{e:#}")))?,
        )),
    }
}

#[cfg(test)]
mod tests;
