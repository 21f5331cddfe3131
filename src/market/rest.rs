//! What the polling providers share: one HTTP client, a bounded JSON read, and the wait a
//! rate-limited answer asks for.

use super::PollError;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// Largest answer accepted from a market-data API.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(crate::net::same_origin_redirects())
        .user_agent(concat!("autotrade-tui/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// How long a 429 asks us to wait: `Retry-After` in seconds, else `X-RateLimit-Reset` (the
/// epoch second the limit resets at).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(secs) = header("retry-after") {
        return Some(Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let reset = header("x-ratelimit-reset")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some(Duration::from_secs_f64((reset - now).clamp(0.0, 86_400.0)))
}

/// The body of an answer as JSON (`Value::Null` when it is not JSON), at most
/// [`MAX_BODY_BYTES`]; one that names a key twice is an error.
pub(crate) async fn body_json(
    mut response: reqwest::Response,
    what: &str,
) -> Result<Value, PollError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(PollError {
                        message: format!("{what}: answer larger than {MAX_BODY_BYTES} bytes"),
                        retry_after: None,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(PollError {
                    message: format!("{what}: {}", without_url(&e)),
                    retry_after: None,
                });
            }
        }
    }
    // A price that names a key twice (two "price"s) is no price: refused, not last-one-wins.
    match crate::strict_json::from_slice(&body) {
        Ok(v) => Ok(v),
        Err(crate::strict_json::StrictError::Malformed(e)) => {
            tracing::debug!("{what}: answer is not JSON: {e}");
            Ok(Value::Null)
        }
        Err(dup) => Err(PollError {
            message: format!("{what}: {dup} in the answer: refused"),
            retry_after: None,
        }),
    }
}

/// A request error in words, without the URL (the caller says which request it was).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    crate::net::describe_error(e)
}

/// What a provider keeps between its calls: its HTTP client, how long its stream may stay
/// silent, how long a connection or an answer may take, and the symbols it said it does not
/// know (said once, then left out).
pub(crate) struct Link {
    pub http: reqwest::Client,
    pub silence: Duration,
    pub timeout: Duration,
    unknown: Mutex<HashSet<String>>,
}

impl Link {
    pub fn new() -> Result<Link, String> {
        let timeout = Duration::from_secs(10);
        Ok(Link {
            http: client(timeout)?,
            silence: Duration::from_secs(30),
            timeout,
            unknown: Mutex::new(HashSet::new()),
        })
    }

    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), String> {
        self.timeout = timeout;
        self.http = client(timeout)?;
        Ok(())
    }

    pub fn is_unknown(&self, symbol: &str) -> bool {
        self.unknown
            .lock()
            .map(|u| u.contains(symbol))
            .unwrap_or(false)
    }

    pub fn mark_unknown(&self, symbol: &str) {
        if let Ok(mut u) = self.unknown.lock() {
            u.insert(symbol.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_or_the_reset_time() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let mut h = HeaderMap::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        h.insert("x-ratelimit-reset", HeaderValue::from(now + 30));
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(28) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert("x-ratelimit-reset", HeaderValue::from(now - 30));
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
