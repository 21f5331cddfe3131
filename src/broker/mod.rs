//! Execution behind one trait. An order carries a client order id (the decision's `log_id`,
//! with `-close-N` for a closing order); the desk stores it as submitted before
//! [`Broker::submit`] is called, and an outcome that is not known is asked for again with
//! [`Broker::lookup`], never sent twice.
//!
//! Two kinds of broker sit behind it. The built-in paper broker is a ledger: its book is the
//! store, every order fills at once, and the engine watches every exit. A real broker (Alpaca)
//! holds the truth: the desk asks it for the account, the positions it holds and what became
//! of each order, and records what it says.

pub mod alpaca;
pub mod paper;

/// The broker `[broker]` names: the paper ledger, or Alpaca (its paper endpoint unless
/// `paper_trading = false`; the caller has checked that live is armed on purpose). Keys come
/// from the environment; a missing one is named.
pub fn for_config(config: &crate::config::Config) -> Result<std::sync::Arc<dyn Broker>, String> {
    use crate::config::BrokerKind;
    match config.broker.kind {
        BrokerKind::Paper => Ok(std::sync::Arc::new(paper::PaperBroker)),
        BrokerKind::Alpaca => {
            let live = !config.auto_trade.paper_trading;
            let keys = alpaca::AlpacaKeys::from_env(live)
                .map_err(|e| format!("[broker] kind = \"alpaca\" in {}: {e}", config.source))?;
            let url = config.broker.trading_url.as_deref().unwrap_or(if live {
                alpaca::LIVE_URL
            } else {
                alpaca::PAPER_URL
            });
            Ok(std::sync::Arc::new(alpaca::AlpacaBroker::new(
                url,
                keys,
                config.broker.timeout(),
            )?))
        }
    }
}

use crate::domain::Side;
pub use crate::domain::lifecycle::ExitsHeldBy;
pub use crate::domain::records::Order;
use serde::{Deserialize, Serialize};

/// What the broker says of an order.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderUpdate {
    /// Done: filled in whole, or ended (cancelled, expired) after part of it filled. The
    /// broker's filled quantity and average price.
    Filled { quantity: f64, price: f64 },
    /// Accepted and still working at the broker; `filled` is what has filled so far (quantity,
    /// average price), if anything.
    Working { filled: Option<(f64, f64)> },
    /// Refused, or ended with nothing filled, with the broker's reason.
    Rejected { reason: String },
    /// No answer that says what happened (a timeout, a lost connection, a 5xx): look it up later.
    Unknown { why: String },
    /// The broker has no order with that client order id: it never arrived.
    NotFound,
}

/// The broker's account, as the header shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub equity: f64,
    pub cash: f64,
    pub buying_power: f64,
    /// Why the broker will not take orders now (`trading_blocked`, `account_blocked`, a crypto
    /// status that is not active), in its words.
    pub blocked: Option<String>,
}

/// A position held at the broker, its symbol in the config's form (`BTC/USD`, `AAPL`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holding {
    pub symbol: String,
    pub side: Side,
    /// Always > 0; the side says which way.
    pub quantity: f64,
    pub avg_entry_price: f64,
}

/// What the broker said at the last reconciliation: its account, the positions it holds that
/// this program did not open (shown as external, never touched), and whether it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerView {
    pub broker: String,
    /// When it was last asked (ms).
    pub at_ms: i64,
    /// The account as of the last answer (kept through an outage, with `error` set).
    pub account: Option<Account>,
    pub external: Vec<Holding>,
    /// Why the last reconciliation failed, and since when it has been failing.
    pub error: Option<String>,
    pub error_since_ms: Option<i64>,
}

/// An order about to be sent, for the broker's rules to judge before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent<'a> {
    pub symbol: &'a str,
    pub side: Side,
    pub quantity: f64,
    /// The price it is expected to fill at (for buying power and notional minimums).
    pub price: f64,
    /// Opens a position (a sell opens a short), or closes the one held.
    pub closing: bool,
}

/// A closing fill the broker made by itself: a protective order (take-profit or stop-loss)
/// that it held for the position.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerExit {
    /// `take_profit` or `stop_loss`.
    pub reason: &'static str,
    pub quantity: f64,
    pub price: f64,
}

/// A request the broker did not answer as asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BrokerError {
    /// The keys were refused (401, 403 on the account): nothing will work until they are fixed.
    #[error("the broker refused the keys: {0}")]
    Auth(String),
    /// Too many requests; the broker asked to wait.
    #[error("the broker is rate limiting: {0}")]
    RateLimited(String),
    /// No answer, a timeout or a 5xx.
    #[error("the broker is unreachable: {0}")]
    Unavailable(String),
    /// An answer this program could not read, or another error in the broker's words.
    #[error("{0}")]
    Other(String),
}

#[async_trait::async_trait]
pub trait Broker: Send + Sync {
    /// `paper`, or the broker's name.
    fn name(&self) -> &'static str;

    /// The program's own ledger (paper): the store is the book, every exit is the engine's,
    /// and there is no account, position list or order state to ask for.
    fn is_ledger(&self) -> bool {
        false
    }

    /// Who will watch the take-profit and stop-loss of a position opened on `symbol` with
    /// `quantity`: the broker when it takes them as protective orders with the entry (Alpaca:
    /// a bracket order, US stocks in whole shares), else the engine.
    fn exits_held_by(&self, symbol: &str, quantity: f64) -> ExitsHeldBy;

    /// The broker's rules for an order (tradable, shortable, minimum size, fractions, buying
    /// power): a refusal says which rule and the figures.
    async fn check(&self, intent: &Intent<'_>) -> Result<(), String>;

    /// Send an order that is already stored as submitted: its client order id, kind, symbol,
    /// side, quantity, the reference price the fill check passed it at, and (for an opening
    /// order whose exits the broker holds) its take-profit and stop-loss.
    async fn submit(&self, order: &Order) -> OrderUpdate;

    /// What became of the order with this client order id.
    async fn lookup(&self, client_order_id: &str) -> OrderUpdate;

    /// The account, or `None` for a ledger.
    async fn account(&self) -> Result<Option<Account>, BrokerError>;

    /// Every position the broker holds, or `None` for a ledger.
    async fn holdings(&self) -> Result<Option<Vec<Holding>>, BrokerError>;

    /// The protective order that closed the position opened by `client_order_id`, when the
    /// broker held its exits and one of them filled.
    async fn exit_fill(&self, client_order_id: &str) -> Result<Option<BrokerExit>, BrokerError>;
}
