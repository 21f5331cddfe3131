//! Live market data between checks: a provider's stream when it can, its REST API polled when
//! it cannot. Every price carries the provider's time; the feed says which way it is getting
//! prices, so the dashboard can show it.
//!
//! A [`Provider`] knows one service's protocol (its symbols, its messages); [`run`] does the
//! rest for every provider alike: connect, subscribe, reconnect with back-off and jitter, fall
//! back to polling when the stream is refused, and go back to the stream after a while.

pub mod alpaca;
pub mod coinbase;
mod feed;
pub(crate) mod rest;
mod ws;

pub use feed::{MAX_RETRY_AFTER, Policy, run, run_plan};

use std::time::Duration;
use tokio::sync::mpsc;

/// One price update of one symbol, as the provider gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// The configured symbol (`BTC/USD`), not the provider's own name for it.
    pub symbol: String,
    /// The last trade, when the update carries one.
    pub last: Option<f64>,
    /// The best bid and ask, when the update carries a quote.
    pub bid: Option<f64>,
    pub ask: Option<f64>,
    /// The provider's time of the update, ms since the epoch (UTC).
    pub at_ms: i64,
}

impl Tick {
    /// The price a position is marked at: the last trade, else the middle of the quote.
    pub fn mark(&self) -> Option<f64> {
        self.last.or(match (self.bid, self.ask) {
            (Some(b), Some(a)) if b > 0.0 && a >= b => Some((a + b) / 2.0),
            _ => None,
        })
    }
}

/// How the feed is getting prices now.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedState {
    /// Opening the stream (the first time, or again after it dropped).
    Connecting,
    /// Prices stream in.
    Streaming,
    /// The stream is refused or keeps failing: prices come from polling every `every`.
    Polling { every: Duration, why: String },
    /// Neither the stream nor polling works.
    Down { why: String },
}

/// What the feed tells the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    Ticks(Vec<Tick>),
    State(FeedState),
    /// The provider does not know this symbol (or refused it): one error, said once.
    SymbolError {
        symbol: String,
        message: String,
    },
}

/// Why a stream ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnd {
    /// The provider will not stream to us (the handshake or the subscription was refused,
    /// authentication failed, too many connections): poll instead.
    Refused(String),
    /// The connection dropped or went silent: connect again.
    Dropped(String),
    /// The receiver of the events is gone: stop.
    Closed,
}

/// Why a poll failed.
#[derive(Debug, Clone, PartialEq)]
pub struct PollError {
    pub message: String,
    /// How long the provider asked us to wait (HTTP 429 with `Retry-After` or a reset time).
    pub retry_after: Option<Duration>,
}

/// One market-data service's protocol.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// `"alpaca"`, `"coinbase"`.
    fn name(&self) -> &'static str;
    /// Why this provider cannot stream at all (Alpaca streams only to an account), if so: the
    /// feed then polls from the start and never tries the stream.
    fn cannot_stream(&self) -> Option<String> {
        None
    }
    /// Stream `symbols` into `tx` until the stream ends; say why it ended. Sends
    /// `FeedState::Streaming` once subscribed.
    async fn stream(&self, symbols: &[String], tx: &mpsc::Sender<FeedEvent>) -> StreamEnd;
    /// The latest price of each of `symbols`, as few requests as the provider allows. A symbol
    /// the provider does not know is an error of its own (second), not a failure of the poll.
    async fn poll(
        &self,
        symbols: &[String],
    ) -> Result<(Vec<Tick>, Vec<(String, String)>), PollError>;
}

/// One half of a feed: a provider and the symbols it prices, with its own stream, back-off and
/// polling.
pub struct Part {
    /// How the feed's state names this half ("crypto", "US stocks").
    pub label: &'static str,
    pub provider: std::sync::Arc<dyn Provider>,
    pub symbols: Vec<String>,
}

/// What a feed runs: its parts, and the symbols no part can price, each with why (said once,
/// like a symbol the provider does not know).
pub struct Plan {
    /// The provider's name (`"alpaca"`), as the dashboard shows it.
    pub name: &'static str,
    pub parts: Vec<Part>,
    pub refused: Vec<(String, String)>,
}

impl Plan {
    pub fn new(name: &'static str) -> Plan {
        Plan {
            name,
            parts: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// One provider for every symbol.
    pub fn single(provider: std::sync::Arc<dyn Provider>, symbols: Vec<String>) -> Plan {
        Plan {
            name: provider.name(),
            parts: vec![Part {
                label: provider.name(),
                provider,
                symbols,
            }],
            refused: Vec::new(),
        }
    }
}

/// The feed `[market_data]` asks for `symbols`, at its configured addresses (the public hosts
/// when none are given); `None` when prices come with the checks (ML engine, simulated
/// market). With only `url` set, the stream is looked for on the same host. Alpaca's
/// `stream_url` is its stream host: the crypto stream is at `/v1beta3/crypto/us` on it, the
/// stocks' at `/v2/iex` (or `/v2/sip`).
pub fn for_config(
    md: &crate::config::MarketData,
    symbols: &[String],
) -> Result<Option<Plan>, String> {
    use crate::config::PriceSource;
    let stream_on = |path: &str| -> Option<String> {
        md.stream_url.clone().or_else(|| {
            let url = md.url.as_ref()?;
            let ws = url
                .strip_prefix("https://")
                .map(|rest| format!("wss://{rest}"))
                .or_else(|| {
                    url.strip_prefix("http://")
                        .map(|rest| format!("ws://{rest}"))
                })?;
            Some(format!("{ws}{path}"))
        })
    };
    Ok(match md.provider {
        PriceSource::Coinbase => Some(Plan::single(
            std::sync::Arc::new(coinbase::Coinbase::new(
                &stream_on("").unwrap_or_else(|| coinbase::WS_URL.to_string()),
                md.url.as_deref().unwrap_or(coinbase::REST_URL),
            )?),
            symbols.to_vec(),
        )),
        PriceSource::Alpaca => {
            let host = stream_on("").unwrap_or_else(|| alpaca::STREAM_HOST.to_string());
            let host = host.trim_end_matches('/');
            let data = md.url.as_deref().unwrap_or(alpaca::DATA_URL);
            let keys = alpaca::Keys::from_env();
            let feed = md.stock_feed;
            Some(alpaca::plan(
                symbols,
                alpaca::Alpaca::new(&format!("{host}/v1beta3/crypto/us"), data, keys.clone())?,
                alpaca::Alpaca::stocks(&format!("{host}/v2/{}", feed.as_str()), data, keys, feed)?,
            ))
        }
        PriceSource::MlEngine | PriceSource::Simulated => None,
    })
}
