//! Coinbase Exchange's public market data: no account, crypto only.
//!
//! Stream: `wss://ws-feed.exchange.coinbase.com`, the `ticker` channel (last trade, best bid and
//! ask) and the `heartbeat` channel (one message a second per product, so a quiet market is
//! not mistaken for a dead stream). Poll: `GET /products/{id}/ticker`, one request per product.
//! Sources: docs.cdp.coinbase.com/exchange/websocket-feed/overview and …/channels, and
//! docs.cdp.coinbase.com/api-reference/exchange-api/rest-api/products/get-product-ticker.

use super::feed::{price_value, tick, time_ms};
use super::rest::Link;
use super::{FeedEvent, FeedState, PollError, Provider, StreamEnd, Tick, rest, ws};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

pub const WS_URL: &str = "wss://ws-feed.exchange.coinbase.com";
pub const REST_URL: &str = "https://api.exchange.coinbase.com";

/// Characters kept as they are in a product id inside a URL path.
const PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// `BTC/USD` → `BTC-USD`.
pub fn product_id(symbol: &str) -> String {
    symbol.trim().replace('/', "-").to_ascii_uppercase()
}

/// `BTC-USD` → `BTC/USD`.
pub fn symbol_of(product_id: &str) -> String {
    product_id.replace('-', "/")
}

pub struct Coinbase {
    ws_url: String,
    rest_url: String,
    /// The client, the silence that means a dead stream (heartbeats come every second), the
    /// longest wait, the products Coinbase said it does not know.
    link: Link,
}

impl Coinbase {
    /// Coinbase's public hosts.
    pub fn public() -> Result<Self, String> {
        Self::new(WS_URL, REST_URL)
    }

    /// A feed at these addresses (a test server's, or the public hosts).
    pub fn new(ws_url: &str, rest_url: &str) -> Result<Self, String> {
        Ok(Coinbase {
            ws_url: ws_url.to_string(),
            rest_url: rest_url.trim_end_matches('/').to_string(),
            link: Link::new()?,
        })
    }

    /// How long the stream may stay silent before it counts as dropped.
    pub fn with_silence(mut self, silence: Duration) -> Self {
        self.link.silence = silence;
        self
    }

    /// How long to wait for a connection or an answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, String> {
        self.link.set_timeout(timeout)?;
        Ok(self)
    }

    async fn stream_inner(
        &self,
        symbols: &[String],
        tx: &mpsc::Sender<FeedEvent>,
    ) -> Result<(), StreamEnd> {
        // Product id → the configured symbol, for the symbols still worth asking for.
        let mut products: HashMap<String, String> = symbols
            .iter()
            .filter(|s| !self.link.is_unknown(s))
            .map(|s| (product_id(s), s.clone()))
            .collect();
        if products.is_empty() {
            return Err(StreamEnd::Refused(
                "Coinbase knows none of the symbols".into(),
            ));
        }
        let mut ws = ws::connect("Coinbase", &self.ws_url, self.link.timeout).await?;
        let result = self.subscribed(&mut ws, &mut products, tx).await;
        ws::close(ws).await;
        result
    }

    async fn subscribed(
        &self,
        ws: &mut ws::Ws,
        products: &mut HashMap<String, String>,
        tx: &mpsc::Sender<FeedEvent>,
    ) -> Result<(), StreamEnd> {
        ws::send_text("Coinbase", ws, subscribe_message(products)).await?;
        let mut streaming = false;
        loop {
            let text = ws::next_text("Coinbase", ws, self.link.silence, tx).await?;
            let message: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!("Coinbase stream: not JSON, skipped: {e}");
                    continue;
                }
            };
            match message.get("type").and_then(Value::as_str) {
                Some("ticker") => match parse_ticker(&message, products) {
                    Some(t) => ws::deliver(tx, FeedEvent::Ticks(vec![t])).await?,
                    None => tracing::debug!("Coinbase stream: ticker without a usable price"),
                },
                Some("subscriptions") if !streaming => {
                    streaming = true;
                    ws::deliver(tx, FeedEvent::State(FeedState::Streaming)).await?;
                }
                Some("error") => {
                    let text = error_text(&message);
                    let named: Vec<String> = products
                        .keys()
                        .filter(|p| names_product(&text, p))
                        .cloned()
                        .collect();
                    if named.is_empty() {
                        if !streaming {
                            return Err(StreamEnd::Refused(format!("Coinbase: {text}")));
                        }
                        // Errors that end a connection come before its close (ErrSlowConsume…).
                        tracing::warn!("Coinbase stream: {text}");
                        continue;
                    }
                    for p in named {
                        if let Some(symbol) = products.remove(&p) {
                            self.link.mark_unknown(&symbol);
                            let message = format!("Coinbase: {text}");
                            ws::deliver(tx, FeedEvent::SymbolError { symbol, message }).await?;
                        }
                    }
                    if products.is_empty() {
                        return Err(StreamEnd::Refused(
                            "Coinbase knows none of the symbols".into(),
                        ));
                    }
                    // One bad product makes Coinbase ignore the whole subscribe: ask again
                    // for the others.
                    ws::send_text("Coinbase", ws, subscribe_message(products)).await?;
                }
                // heartbeat, and the types Coinbase may add: "clients are expected to ignore
                // messages they do not support".
                _ => {}
            }
        }
    }

    async fn poll_one(&self, symbol: &str) -> Polled {
        let id = product_id(symbol);
        let url = format!(
            "{}/products/{}/ticker",
            self.rest_url,
            utf8_percent_encode(&id, PATH)
        );
        let what = format!("Coinbase GET /products/{id}/ticker");
        let response = match self.link.http.get(&url).send().await {
            Ok(r) => r,
            Err(e) => {
                return Polled::Failed(PollError {
                    message: format!("{what}: {}", rest::without_url(&e)),
                    retry_after: None,
                });
            }
        };
        let status = response.status();
        if status.as_u16() == 429 {
            return Polled::Failed(PollError {
                message: "Coinbase: too many requests (HTTP 429)".into(),
                retry_after: rest::retry_after(response.headers()),
            });
        }
        let body = match rest::body_json(response, &what).await {
            Ok(b) => b,
            Err(e) => return Polled::Failed(e),
        };
        if status.as_u16() == 404 {
            let said = body.get("message").and_then(Value::as_str).unwrap_or("");
            return Polled::Unknown(format!("Coinbase does not know {id} ({said})"));
        }
        if !status.is_success() {
            return Polled::Failed(PollError {
                message: format!("{what}: HTTP {status}"),
                retry_after: None,
            });
        }
        let t = tick(
            symbol,
            price_value(body.get("price")),
            price_value(body.get("bid")),
            price_value(body.get("ask")),
            time_ms(body.get("time")),
        );
        if t.is_none() {
            tracing::debug!("{what}: no usable price or time in the answer");
        }
        Polled::Tick(t)
    }
}

enum Polled {
    Tick(Option<Tick>),
    Unknown(String),
    Failed(PollError),
}

#[async_trait::async_trait]
impl Provider for Coinbase {
    fn name(&self) -> &'static str {
        "coinbase"
    }

    async fn stream(&self, symbols: &[String], tx: &mpsc::Sender<FeedEvent>) -> StreamEnd {
        match self.stream_inner(symbols, tx).await {
            Ok(()) => StreamEnd::Dropped("Coinbase stream ended".into()),
            Err(end) => end,
        }
    }

    async fn poll(
        &self,
        symbols: &[String],
    ) -> Result<(Vec<Tick>, Vec<(String, String)>), PollError> {
        let wanted: Vec<&String> = symbols
            .iter()
            .filter(|s| !self.link.is_unknown(s))
            .collect();
        // A few at a time: Coinbase allows about 10 public requests a second per address.
        use futures::StreamExt;
        let requests: Vec<_> = wanted.iter().map(|s| self.poll_one(s.as_str())).collect();
        let answers: Vec<Polled> = futures::stream::iter(requests)
            .buffered(POLL_AT_ONCE)
            .collect()
            .await;
        let mut ticks = Vec::new();
        let mut unknown = Vec::new();
        let mut failed: Option<PollError> = None;
        for (symbol, answer) in wanted.into_iter().zip(answers) {
            match answer {
                Polled::Tick(t) => ticks.extend(t),
                Polled::Unknown(message) => {
                    self.link.mark_unknown(symbol);
                    unknown.push((symbol.clone(), message));
                }
                Polled::Failed(e) => {
                    // Keep the longest wait asked for.
                    let longer = match &failed {
                        None => true,
                        Some(f) => e.retry_after > f.retry_after,
                    };
                    if longer {
                        failed = Some(e);
                    }
                }
            }
        }
        // Some answered: their prices count, the others wait for the next round. None did: the
        // poll failed (with the longest wait asked for).
        match failed {
            Some(e) if ticks.is_empty() => Err(e),
            _ => Ok((ticks, unknown)),
        }
    }
}

/// Ticker requests in flight at once while polling.
const POLL_AT_ONCE: usize = 5;

/// One subscribe for the ticker and heartbeat channels, products named per channel (the
/// root-level `product_ids` form has been reported to fail: gocryptotrader PR #1421).
fn subscribe_message(products: &HashMap<String, String>) -> String {
    let mut ids: Vec<&String> = products.keys().collect();
    ids.sort();
    json!({
        "type": "subscribe",
        "channels": [
            {"name": "ticker", "product_ids": ids},
            {"name": "heartbeat", "product_ids": ids},
        ]
    })
    .to_string()
}

/// A `ticker` message as a tick: last = price, bid = best_bid, ask = best_ask, at = time.
fn parse_ticker(message: &Value, products: &HashMap<String, String>) -> Option<Tick> {
    let symbol = products.get(message.get("product_id")?.as_str()?)?;
    tick(
        symbol,
        price_value(message.get("price")),
        price_value(message.get("best_bid")),
        price_value(message.get("best_ask")),
        time_ms(message.get("time")),
    )
}

/// `message` and `reason` of an error message, as one line.
fn error_text(message: &Value) -> String {
    let field = |k: &str| message.get(k).and_then(Value::as_str).unwrap_or("").trim();
    match (field("message"), field("reason")) {
        ("", "") => "error without a message".into(),
        (m, "") => m.into(),
        ("", r) => r.into(),
        (m, r) => format!("{m}: {r}"),
    }
}

/// Does `text` name `product` as a word (`GIBBERISH-USD is not a valid product`)?
fn names_product(text: &str, product: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .any(|word| word.eq_ignore_ascii_case(product))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_map_both_ways() {
        assert_eq!(product_id("BTC/USD"), "BTC-USD");
        assert_eq!(product_id("eth/usd"), "ETH-USD");
        assert_eq!(symbol_of("BTC-USD"), "BTC/USD");
    }

    #[test]
    fn ticker_parses_and_bad_ones_are_skipped() {
        let products = HashMap::from([("ETH-USD".to_string(), "ETH/USD".to_string())]);
        // The example of docs.cdp.coinbase.com/exchange/websocket-feed/channels (Ticker Channel).
        let m: Value = serde_json::from_str(
            r#"{"type":"ticker","sequence":37475248783,"product_id":"ETH-USD","price":"1285.22",
            "open_24h":"1310.79","volume_24h":"245532.79269678","low_24h":"1280.52",
            "high_24h":"1313.8","volume_30d":"9788783.60117027","best_bid":"1285.04",
            "best_bid_size":"0.46688654","best_ask":"1285.27","best_ask_size":"1.56637040",
            "side":"buy","time":"2022-10-19T23:28:22.061769Z","trade_id":370843401,
            "last_size":"11.4396987"}"#,
        )
        .unwrap();
        let t = parse_ticker(&m, &products).unwrap();
        assert_eq!(t.symbol, "ETH/USD");
        assert_eq!(t.last, Some(1285.22));
        assert_eq!(t.bid, Some(1285.04));
        assert_eq!(t.ask, Some(1285.27));
        assert_eq!(t.at_ms, 1_666_222_102_061);
        for bad in [
            r#"{"type":"ticker","product_id":"ETH-USD","price":"-1","time":"2022-10-19T23:28:22Z"}"#,
            r#"{"type":"ticker","product_id":"ETH-USD","price":"1","time":"later"}"#,
            r#"{"type":"ticker","product_id":"ETH-USD","price":1}"#,
            r#"{"type":"ticker","product_id":"BTC-USD","price":"1","time":"2022-10-19T23:28:22Z"}"#,
            r#"{"type":"ticker","product_id":7,"price":"1","time":"2022-10-19T23:28:22Z"}"#,
            r#"{"type":"ticker"}"#,
        ] {
            let m: Value = serde_json::from_str(bad).unwrap();
            assert_eq!(parse_ticker(&m, &products), None, "{bad}");
        }
    }

    #[test]
    fn errors_name_the_product() {
        let e = json!({"type":"error","message":"Failed to subscribe","reason":"GIBBERISH-USD is not a valid product"});
        let text = error_text(&e);
        assert_eq!(
            text,
            "Failed to subscribe: GIBBERISH-USD is not a valid product"
        );
        assert!(names_product(&text, "GIBBERISH-USD"));
        assert!(!names_product(&text, "BTC-USD"));
        assert!(!names_product(&text, "GIBBERISH"));
    }
}
