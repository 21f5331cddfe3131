//! The ML engine client: the seed's two endpoints over HTTP.

use crate::source::{FetchError, MarketSource, SymbolReport, price_from_signal};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The longest `Retry-After` honoured, in seconds.
pub const MAX_RETRY_AFTER_SECS: u64 = 600;

/// Largest response body accepted from the ML engine.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct MlEngineClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
    permits: Arc<Semaphore>,
}

impl MlEngineClient {
    pub fn new(base_url: &str, timeout: Duration, max_concurrent: usize) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            // The engine is a service on the trading box or its network: talk to it directly.
            .no_proxy()
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(600))
            .pool_max_idle_per_host(max_concurrent.max(1))
            // A redirect off the configured origin is an error: another server's answer is not traded on.
            .redirect(crate::net::same_origin_redirects())
            .user_agent(concat!("autotrade-tui/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(MlEngineClient {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            timeout,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        })
    }

    pub fn signal_url(&self, symbol: &str) -> String {
        format!(
            "{}/api/v1/signals/{}",
            self.base,
            utf8_percent_encode(symbol, NON_ALPHANUMERIC)
        )
    }

    pub fn phase_url(&self, symbol: &str) -> String {
        format!(
            "{}/api/v1/amd/phase/{}",
            self.base,
            utf8_percent_encode(symbol, NON_ALPHANUMERIC)
        )
    }

    /// GET a JSON document, within the timeout and the body limit. Its errors show the URL
    /// redacted (no password, no key in the query).
    pub async fn get_json(&self, url: &str) -> Result<Value, FetchError> {
        let shown = crate::net::redact_url(url);
        let _permit = self.permits.acquire().await.map_err(|_| FetchError {
            message: "client is shutting down".into(),
            unreachable: true,
            retry_after: None,
        })?;
        match tokio::time::timeout(self.timeout, self.get_json_inner(url, &shown)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError {
                message: format!("GET {shown}: timed out after {}", fmt_secs(self.timeout)),
                unreachable: true,
                retry_after: None,
            }),
        }
    }

    async fn get_json_inner(&self, url: &str, shown: &str) -> Result<Value, FetchError> {
        let unreachable = |message: String| FetchError {
            message,
            unreachable: true,
            retry_after: None,
        };
        let bad = |message: String| FetchError {
            message,
            unreachable: false,
            retry_after: None,
        };
        let mut resp = self.http.get(url).send().await.map_err(|e| {
            // The engine answered, with a redirect elsewhere: its answer is not one to trust.
            if let Some(r) = crate::net::redirect_refused(&e) {
                return bad(format!("GET {shown}: {r}"));
            }
            let why = if e.is_timeout() {
                format!("timed out after {}", fmt_secs(self.timeout))
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else {
                "request failed".to_string()
            };
            unreachable(format!("GET {shown}: {why} ({})", root_cause(&e)))
        })?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<u64>().ok())
                // An engine cannot park trading for longer than this by asking.
                .map(|s| Duration::from_secs(s.min(MAX_RETRY_AFTER_SECS)));
            let overloaded = status.is_server_error() || status.as_u16() == 429;
            return Err(FetchError {
                message: format!("GET {shown}: HTTP {status}"),
                unreachable: overloaded,
                retry_after,
            });
        }
        if let Some(len) = resp.content_length()
            && len > MAX_BODY_BYTES as u64
        {
            return Err(bad(format!(
                "GET {shown}: response of {len} bytes is over the 1 MiB limit"
            )));
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(bad(format!(
                            "GET {shown}: response is over the 1 MiB limit"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(unreachable(format!(
                        "GET {shown}: reading the body failed ({})",
                        root_cause(&e)
                    )));
                }
            }
        }
        // A key named twice is refused, not read as its last value.
        crate::strict_json::from_slice(&body).map_err(|e| match e {
            crate::strict_json::StrictError::Malformed(e) => {
                bad(format!("GET {shown}: malformed JSON: {e}"))
            }
            dup => bad(format!("GET {shown}: {dup} in the answer: refused")),
        })
    }
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s == s.trunc() {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

/// The innermost cause, with any address in it redacted.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    crate::net::redact_text(&cur.to_string())
}

#[async_trait::async_trait]
impl MarketSource for MlEngineClient {
    fn name(&self) -> &'static str {
        "ml_engine"
    }

    async fn fetch(&self, symbol: &str) -> SymbolReport {
        let (signal_url, phase_url) = (self.signal_url(symbol), self.phase_url(symbol));
        let (signal, phase) = tokio::join!(self.get_json(&signal_url), self.get_json(&phase_url));
        let price = price_from_signal(&signal);
        SymbolReport {
            symbol: symbol.to_string(),
            signal,
            phase,
            price,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_percent_encoded() {
        let c = MlEngineClient::new("http://127.0.0.1:8000/", Duration::from_secs(1), 4).unwrap();
        assert_eq!(
            c.signal_url("BTC/USD"),
            "http://127.0.0.1:8000/api/v1/signals/BTC%2FUSD"
        );
        assert_eq!(
            c.phase_url("ETH/USD"),
            "http://127.0.0.1:8000/api/v1/amd/phase/ETH%2FUSD"
        );
    }
}
