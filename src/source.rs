//! The one seam between the monitoring loop and where its inputs come from: the ML engine
//! over HTTP or the built-in simulated market. Nothing downstream knows which.

use serde_json::Value;
use std::time::Duration;

/// Why a source could not answer for a symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchError {
    pub message: String,
    /// The source itself is unreachable or overloaded (timeout, connection, 429, 5xx),
    /// as opposed to answering with bad data.
    pub unreachable: bool,
    /// A `Retry-After` the source asked for.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a source said about one symbol: the raw answers, so that validation happens in one place.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolReport {
    pub symbol: String,
    pub signal: Result<Value, FetchError>,
    pub phase: Result<Value, FetchError>,
    /// The latest market price, when the source knows one.
    pub price: Option<f64>,
}

impl SymbolReport {
    pub fn signal_input(&self) -> Result<Value, String> {
        self.signal.clone().map_err(|e| e.message)
    }
    pub fn phase_input(&self) -> Result<Value, String> {
        self.phase.clone().map_err(|e| e.message)
    }
    /// The first transport failure, if the source could not be reached for this symbol.
    pub fn unreachable(&self) -> Option<&FetchError> {
        [&self.signal, &self.phase]
            .into_iter()
            .filter_map(|r| r.as_ref().err())
            .find(|e| e.unreachable)
    }
}

#[async_trait::async_trait]
pub trait MarketSource: Send + Sync {
    /// `"ml_engine"` or `"simulated"`.
    fn name(&self) -> &'static str;
    /// The signal and the AMD phase for one symbol.
    async fn fetch(&self, symbol: &str) -> SymbolReport;
    /// The market price now, when the source has one at no cost (no request). The loop
    /// uses it between checks; sources that would have to ask a server return `None`.
    fn latest_price(&self, _symbol: &str) -> Option<f64> {
        None
    }
}

/// The price a valid signal implies (its entry), when the source has no other.
pub fn price_from_signal(signal: &Result<Value, FetchError>) -> Option<f64> {
    let v = signal.as_ref().ok()?;
    crate::domain::rules::parse_signal(v)
        .ok()
        .map(|s| s.entry_price)
}
