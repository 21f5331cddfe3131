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
mod rest;
mod ws;

pub use feed::{MAX_RETRY_AFTER, Policy, run};

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

/// The provider `[market_data]` asks for, at its configured addresses (the public hosts when
/// none are given); `None` when prices come with the checks (ML engine, simulated market).
/// With only `url` set, the stream is looked for on the same host.
pub fn for_config(
    md: &crate::config::MarketData,
) -> Result<Option<std::sync::Arc<dyn Provider>>, String> {
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
        PriceSource::Coinbase => Some(std::sync::Arc::new(coinbase::Coinbase::new(
            &stream_on("").unwrap_or_else(|| coinbase::WS_URL.to_string()),
            md.url.as_deref().unwrap_or(coinbase::REST_URL),
        )?)),
        PriceSource::Alpaca => Some(std::sync::Arc::new(alpaca::Alpaca::new(
            &stream_on("/v1beta3/crypto/us").unwrap_or_else(|| alpaca::STREAM_URL.to_string()),
            md.url.as_deref().unwrap_or(alpaca::DATA_URL),
            alpaca::Keys::from_env(),
        )?)),
        PriceSource::MlEngine | PriceSource::Simulated => None,
    })
}
