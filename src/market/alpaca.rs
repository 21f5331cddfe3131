//! Alpaca's market data: crypto (v1beta3, US feed; symbols stay `BTC/USD`) and US stocks
//! (v2, the IEX or SIP feed; symbols are tickers, `AAPL`).
//!
//! Crypto stream: `wss://stream.data.alpaca.markets/v1beta3/crypto/us`; stocks:
//! `wss://stream.data.alpaca.markets/v2/{iex|sip}`. Both speak the same protocol: every frame
//! is a JSON array of messages keyed by `T`. The server greets (`connected`), we authenticate
//! (every stream needs an account's keys), subscribe to trades and quotes, and get `t` trades
//! and `q` quotes. Poll: crypto `GET /v1beta3/crypto/us/latest/quotes?symbols=…` and
//! `…/latest/trades?symbols=…` (no keys needed); stocks `GET /v2/stocks/quotes/latest?symbols=…
//! &feed=iex` and `/v2/stocks/trades/latest?…` (keys needed): one request each for every symbol.
//! Sources: docs.alpaca.markets/docs/real-time-crypto-pricing-data, …/crypto-pricing-data,
//! …/streaming-market-data (406 connection limit), alpacahq/alpaca-docs
//! `content/api-references/market-data-api/{crypto,stock}-pricing-data/realtime.md` (errors
//! 400–411, 500; IEX: one connection, 30 trade/quote channels), alpacahq/alpaca-trade-api-go
//! `marketdata/rest.go` (`/v2/stocks/{quotes,trades}/latest`, `feed`), `marketdata/entities.go`
//! (feeds iex, sip, …) and `marketdata/stream/errors.go`; alpaca-py `alpaca/data/live/stock.py`
//! (`/v2/` + feed, IEX by default, SIP needs a subscription).

use super::feed::{price_value, tick, time_ms};
use super::rest::Link;
use super::{FeedEvent, FeedState, PollError, Provider, StreamEnd, Tick, rest, ws};
use crate::config::StockFeed;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;

pub const STREAM_URL: &str = "wss://stream.data.alpaca.markets/v1beta3/crypto/us";
/// The stream host: the crypto stream is at `/v1beta3/crypto/us`, the stocks' at `/v2/{feed}`.
pub const STREAM_HOST: &str = "wss://stream.data.alpaca.markets";
pub const DATA_URL: &str = "https://data.alpaca.markets";

/// Why a US stock gets no price from Alpaca without keys (said once per stock symbol).
pub const NO_STOCK_KEYS: &str = "US stocks on Alpaca need APCA_API_KEY_ID and APCA_API_SECRET_KEY \
     in the environment (crypto needs no keys)";

/// Which of Alpaca's markets a feed prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    Crypto,
    Stocks(StockFeed),
}

/// An Alpaca account's API keys. They go into the auth message and the request headers and
/// nowhere else: not into a log line, an error or `Debug`.
#[derive(Clone)]
pub struct Keys {
    pub key_id: String,
    pub secret: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys { .. }")
    }
}

impl Keys {
    /// `APCA_API_KEY_ID` and `APCA_API_SECRET_KEY`, when both are set and not empty.
    pub fn from_env() -> Option<Keys> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Some(Keys {
            key_id: var("APCA_API_KEY_ID")?,
            secret: var("APCA_API_SECRET_KEY")?,
        })
    }
}

pub struct Alpaca {
    market: Market,
    /// How messages name this feed: "Alpaca" (crypto), "Alpaca US stocks".
    label: &'static str,
    stream_url: String,
    data_url: String,
    keys: Option<Keys>,
    /// The client, the silence that means a dead stream, the longest wait, the symbols
    /// Alpaca said it does not know.
    link: Link,
}

impl Alpaca {
    /// Alpaca's public hosts, US crypto feed.
    pub fn crypto_us(keys: Option<Keys>) -> Result<Self, String> {
        Self::new(STREAM_URL, DATA_URL, keys)
    }

    /// A crypto feed at these addresses: the stream's full URL and the data API's base.
    pub fn new(stream_url: &str, data_url: &str, keys: Option<Keys>) -> Result<Self, String> {
        Self::for_market(Market::Crypto, stream_url, data_url, keys)
    }

    /// A US stocks feed on `feed` at these addresses: the stream's full URL (`…/v2/iex`) and the
    /// data API's base.
    pub fn stocks(
        stream_url: &str,
        data_url: &str,
        keys: Option<Keys>,
        feed: StockFeed,
    ) -> Result<Self, String> {
        Self::for_market(Market::Stocks(feed), stream_url, data_url, keys)
    }

    fn for_market(
        market: Market,
        stream_url: &str,
        data_url: &str,
        keys: Option<Keys>,
    ) -> Result<Self, String> {
        Ok(Alpaca {
            market,
            label: match market {
                Market::Crypto => "Alpaca",
                Market::Stocks(_) => "Alpaca US stocks",
            },
            stream_url: stream_url.to_string(),
            data_url: data_url.trim_end_matches('/').to_string(),
            keys,
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

    /// Why the stream cannot be used without keys.
    fn no_keys(&self) -> String {
        match self.market {
            Market::Crypto => {
                "Alpaca streams only to an account (no APCA_API_KEY_ID / APCA_API_SECRET_KEY)"
                    .into()
            }
            Market::Stocks(_) => NO_STOCK_KEYS.into(),
        }
    }

    fn none_known(&self) -> StreamEnd {
        StreamEnd::Refused(format!("{} knows none of the symbols", self.label))
    }

    async fn stream_inner(
        &self,
        symbols: &[String],
        tx: &mpsc::Sender<FeedEvent>,
    ) -> Result<(), StreamEnd> {
        let Some(keys) = &self.keys else {
            return Err(StreamEnd::Refused(self.no_keys()));
        };
        if let Market::Stocks(_) = self.market {
            self.seed(symbols, tx).await?;
        }
        let mut wanted: Vec<String> = symbols
            .iter()
            .filter(|s| !self.link.is_unknown(s))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Err(self.none_known());
        }
        let mut ws = ws::connect(self.label, &self.stream_url, self.link.timeout).await?;
        let result = self.session(&mut ws, keys, &mut wanted, tx).await;
        ws::close(ws).await;
        result
    }

    /// Before a stock stream: one poll. Outside market hours the stream says nothing, so this
    /// gives each stock its latest price (as old as it is, so marked stale), and it names the
    /// tickers Alpaca does not know, which the stream would only leave silent. A poll that
    /// fails leaves it to the stream.
    async fn seed(
        &self,
        symbols: &[String],
        tx: &mpsc::Sender<FeedEvent>,
    ) -> Result<(), StreamEnd> {
        match self.poll(symbols).await {
            Ok((ticks, unknown)) => {
                for (symbol, message) in unknown {
                    ws::deliver(tx, FeedEvent::SymbolError { symbol, message }).await?;
                }
                if !ticks.is_empty() {
                    ws::deliver(tx, FeedEvent::Ticks(ticks)).await?;
                }
            }
            Err(e) => tracing::debug!(
                "{}: the latest prices before streaming: {}",
                self.label,
                e.message
            ),
        }
        Ok(())
    }

    async fn session(
        &self,
        ws: &mut ws::Ws,
        keys: &Keys,
        wanted: &mut Vec<String>,
        tx: &mpsc::Sender<FeedEvent>,
    ) -> Result<(), StreamEnd> {
        let mut streaming = false;
        let quiet_allowed = matches!(self.market, Market::Stocks(_));
        loop {
            let text =
                ws::next_text_or_ping(self.label, ws, self.link.silence, tx, quiet_allowed).await?;
            let messages = match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(items)) => items,
                Ok(Value::Object(one)) => vec![Value::Object(one)],
                Ok(_) | Err(_) => {
                    tracing::debug!("{} stream: frame is not a JSON array, skipped", self.label);
                    continue;
                }
            };
            let mut ticks = Vec::new();
            for m in &messages {
                match m.get("T").and_then(Value::as_str) {
                    Some("t") => ticks.extend(parse_trade(m, wanted)),
                    Some("q") => ticks.extend(parse_quote(m, wanted)),
                    Some("success") => match m.get("msg").and_then(Value::as_str) {
                        Some("connected") => {
                            let auth = json!({"action": "auth", "key": keys.key_id, "secret": keys.secret});
                            ws::send_text(self.label, ws, auth.to_string()).await?;
                        }
                        Some("authenticated") => {
                            ws::send_text(self.label, ws, subscribe_message(wanted)).await?;
                        }
                        _ => {}
                    },
                    Some("subscription") => {
                        for (symbol, message) in self.not_subscribed(m, wanted) {
                            ws::deliver(tx, FeedEvent::SymbolError { symbol, message }).await?;
                        }
                        if wanted.is_empty() {
                            return Err(self.none_known());
                        }
                        if !streaming {
                            streaming = true;
                            ws::deliver(tx, FeedEvent::State(FeedState::Streaming)).await?;
                        }
                    }
                    Some("error") => self.on_error(m, ws, wanted, tx).await?,
                    _ => {}
                }
            }
            if !ticks.is_empty() {
                ws::deliver(tx, FeedEvent::Ticks(ticks)).await?;
            }
        }
    }

    /// Symbols asked for that the subscription (which always lists the whole set) left out.
    fn not_subscribed(&self, reply: &Value, wanted: &mut Vec<String>) -> Vec<(String, String)> {
        let listed = |k: &str| -> HashSet<&str> {
            reply
                .get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        };
        let (trades, quotes) = (listed("trades"), listed("quotes"));
        let mut errors = Vec::new();
        wanted.retain(|s| {
            let known = trades.contains(s.as_str()) || quotes.contains(s.as_str());
            if !known {
                self.link.mark_unknown(s);
                errors.push((s.clone(), format!("{} did not subscribe {s}", self.label)));
            }
            known
        });
        errors
    }

    /// An error message: one that names a symbol is that symbol's; the ones about the
    /// account or the connection (auth failed, connection limit, plan…) refuse the stream.
    async fn on_error(
        &self,
        m: &Value,
        ws: &mut ws::Ws,
        wanted: &mut Vec<String>,
        tx: &mpsc::Sender<FeedEvent>,
    ) -> Result<(), StreamEnd> {
        let code = m.get("code").and_then(Value::as_i64).unwrap_or(0);
        let msg = m.get("msg").and_then(Value::as_str).unwrap_or("").trim();
        let named: Vec<String> = wanted
            .iter()
            .filter(|s| names_symbol(msg, s))
            .cloned()
            .collect();
        if !named.is_empty() {
            wanted.retain(|s| !named.contains(s));
            for symbol in named {
                self.link.mark_unknown(&symbol);
                let message = format!("{}: {msg} ({code})", self.label);
                ws::deliver(tx, FeedEvent::SymbolError { symbol, message }).await?;
            }
            if wanted.is_empty() {
                return Err(self.none_known());
            }
            return ws::send_text(self.label, ws, subscribe_message(wanted)).await;
        }
        let why = format!("{} stream: {msg} ({code})", self.label);
        match code {
            // 407 slow client, 500 internal error: a new connection may do better.
            407 | 500 => Err(StreamEnd::Dropped(why)),
            // 401 not authenticated, 402 auth failed, 404 auth timeout, 405 symbol limit
            // (IEX: 30 trade/quote channels), 406 connection limit, 409 insufficient
            // subscription (SIP without the plan), 411 insufficient scope…
            _ => Err(StreamEnd::Refused(why)),
        }
    }

    /// GET one of the latest-data endpoints for `symbols`; the map under `key`.
    async fn latest(&self, kind: &str, symbols: &[String]) -> Result<Map<String, Value>, Latest> {
        let path = match self.market {
            Market::Crypto => format!("/v1beta3/crypto/us/latest/{kind}"),
            Market::Stocks(_) => format!("/v2/stocks/{kind}/latest"),
        };
        let url = format!("{}{path}", self.data_url);
        let what = format!("Alpaca GET {path}");
        let mut request = self
            .link
            .http
            .get(&url)
            .query(&[("symbols", symbols.join(","))]);
        if let Market::Stocks(feed) = self.market {
            request = request.query(&[("feed", feed.as_str())]);
        }
        if let Some(keys) = &self.keys {
            for (name, value) in [
                ("apca-api-key-id", &keys.key_id),
                ("apca-api-secret-key", &keys.secret),
            ] {
                if let Ok(mut v) = HeaderValue::from_str(value) {
                    v.set_sensitive(true);
                    request = request.header(HeaderName::from_static(name), v);
                }
            }
        }
        let response = request.send().await.map_err(|e| {
            Latest::Failed(PollError {
                message: format!("{what}: {}", rest::without_url(&e)),
                retry_after: None,
            })
        })?;
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(Latest::Failed(PollError {
                message: format!("{}: too many requests (HTTP 429)", self.label),
                retry_after: rest::retry_after(response.headers()),
            }));
        }
        let body = rest::body_json(response, &what)
            .await
            .map_err(Latest::Failed)?;
        if !status.is_success() {
            let said = body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            // A malformed symbol: 400 {"message":"invalid symbol: XYZ"}.
            if let Some(bad) = symbols.iter().find(|s| names_symbol(said, s)) {
                return Err(Latest::Unknown(
                    bad.clone(),
                    format!("{}: {said}", self.label),
                ));
            }
            let said = if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            };
            return Err(Latest::Failed(PollError {
                message: format!("{what}: HTTP {status}{said}"),
                retry_after: None,
            }));
        }
        match body.get(kind) {
            Some(Value::Object(map)) => Ok(map.clone()),
            _ => Err(Latest::Failed(PollError {
                message: format!("{what}: the answer has no \"{kind}\""),
                retry_after: None,
            })),
        }
    }
}

enum Latest {
    Unknown(String, String),
    Failed(PollError),
}

#[async_trait::async_trait]
impl Provider for Alpaca {
    fn name(&self) -> &'static str {
        "alpaca"
    }

    fn cannot_stream(&self) -> Option<String> {
        self.keys.is_none().then(|| self.no_keys())
    }

    async fn stream(&self, symbols: &[String], tx: &mpsc::Sender<FeedEvent>) -> StreamEnd {
        match self.stream_inner(symbols, tx).await {
            Ok(()) => StreamEnd::Dropped(format!("{} stream ended", self.label)),
            Err(end) => end,
        }
    }

    async fn poll(
        &self,
        symbols: &[String],
    ) -> Result<(Vec<Tick>, Vec<(String, String)>), PollError> {
        if matches!(self.market, Market::Stocks(_)) && self.keys.is_none() {
            // Alpaca answers stock data only to an account: no request to make.
            let refused = symbols
                .iter()
                .map(|s| (s.clone(), NO_STOCK_KEYS.to_string()));
            return Ok((Vec::new(), refused.collect()));
        }
        let mut wanted: Vec<String> = symbols
            .iter()
            .filter(|s| !self.link.is_unknown(s))
            .cloned()
            .collect();
        let mut unknown = Vec::new();
        // Each round either answers or takes out one symbol Alpaca called invalid.
        loop {
            if wanted.is_empty() {
                return Ok((Vec::new(), unknown));
            }
            let (quotes, trades) = futures::join!(
                self.latest("quotes", &wanted),
                self.latest("trades", &wanted)
            );
            match (quotes, trades) {
                (Ok(quotes), Ok(trades)) => {
                    let mut ticks = Vec::new();
                    for symbol in wanted {
                        let (q, t) = (quotes.get(&symbol), trades.get(&symbol));
                        if q.is_none() && t.is_none() {
                            self.link.mark_unknown(&symbol);
                            let message =
                                format!("{} has no quote or trade for {symbol}", self.label);
                            unknown.push((symbol, message));
                            continue;
                        }
                        match merge(&symbol, q, t) {
                            Some(tick) => ticks.push(tick),
                            None => tracing::debug!("Alpaca poll: no usable price for {symbol}"),
                        }
                    }
                    return Ok((ticks, unknown));
                }
                (Err(Latest::Unknown(symbol, message)), _)
                | (_, Err(Latest::Unknown(symbol, message))) => {
                    self.link.mark_unknown(&symbol);
                    wanted.retain(|s| *s != symbol);
                    unknown.push((symbol, message));
                }
                (Err(Latest::Failed(a)), Err(Latest::Failed(b))) => {
                    return Err(if b.retry_after > a.retry_after { b } else { a });
                }
                (Err(Latest::Failed(e)), Ok(_)) | (Ok(_), Err(Latest::Failed(e))) => {
                    return Err(e);
                }
            }
        }
    }
}

/// Alpaca's feed for `symbols`: the pairs on `crypto`, the US stocks on `stocks`, each half
/// streaming or polling on its own. Without keys every stock is one error (`NO_STOCK_KEYS`)
/// and nothing asks Alpaca about it; the pairs are priced all the same.
pub fn plan(symbols: &[String], crypto: Alpaca, stocks: Alpaca) -> super::Plan {
    let (stock_symbols, pairs): (Vec<String>, Vec<String>) = symbols
        .iter()
        .cloned()
        .partition(|s| crate::config::is_stock(s));
    let mut plan = super::Plan::new("alpaca");
    if !pairs.is_empty() {
        plan.parts.push(super::Part {
            label: "crypto",
            provider: std::sync::Arc::new(crypto),
            symbols: pairs,
        });
    }
    if stocks.keys.is_none() {
        plan.refused.extend(
            stock_symbols
                .into_iter()
                .map(|s| (s, NO_STOCK_KEYS.to_string())),
        );
    } else if !stock_symbols.is_empty() {
        plan.parts.push(super::Part {
            label: "US stocks",
            provider: std::sync::Arc::new(stocks),
            symbols: stock_symbols,
        });
    }
    plan
}

fn subscribe_message(symbols: &[String]) -> String {
    json!({"action": "subscribe", "trades": symbols, "quotes": symbols}).to_string()
}

/// The configured symbol a message is about, if it is one we asked for.
fn our_symbol<'a>(m: &Value, wanted: &'a [String]) -> Option<&'a String> {
    let s = m.get("S")?.as_str()?;
    wanted.iter().find(|w| w.as_str() == s)
}

/// `{"T":"t","S":"AVAX/USD","p":47.299,"s":29.2,"t":"2024-03-12T10:27:48.858228144Z",…}`
fn parse_trade(m: &Value, wanted: &[String]) -> Option<Tick> {
    let symbol = our_symbol(m, wanted)?;
    tick(
        symbol,
        price_value(m.get("p")),
        None,
        None,
        time_ms(m.get("t")),
    )
}

/// `{"T":"q","S":"BAT/USD","bp":0.35718,"bs":…,"ap":0.3581,"as":…,"t":"…"}`
fn parse_quote(m: &Value, wanted: &[String]) -> Option<Tick> {
    let symbol = our_symbol(m, wanted)?;
    tick(
        symbol,
        None,
        price_value(m.get("bp")),
        price_value(m.get("ap")),
        time_ms(m.get("t")),
    )
}

/// A symbol's latest quote and trade as one tick, at the later of their times.
fn merge(symbol: &str, quote: Option<&Value>, trade: Option<&Value>) -> Option<Tick> {
    let last = trade.and_then(|t| price_value(t.get("p")));
    let (bid, ask) = match quote {
        Some(q) => (price_value(q.get("bp")), price_value(q.get("ap"))),
        None => (None, None),
    };
    let times = [
        trade
            .filter(|_| last.is_some())
            .and_then(|t| time_ms(t.get("t"))),
        quote
            .filter(|_| bid.is_some() || ask.is_some())
            .and_then(|q| time_ms(q.get("t"))),
    ];
    let at = times.into_iter().flatten().max();
    tick(symbol, last, bid, ask, at)
}

/// Does `text` name `symbol` (`invalid symbol: FOO/USD`)?
fn names_symbol(text: &str, symbol: &str) -> bool {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| {
                matches!(
                    c,
                    ':' | ',' | ';' | '"' | '\'' | '(' | ')' | '[' | ']' | '.'
                )
            })
        })
        .any(|word| word.eq_ignore_ascii_case(symbol))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn by_symbol(ticks: Vec<Tick>) -> BTreeMap<String, Tick> {
        ticks.into_iter().map(|t| (t.symbol.clone(), t)).collect()
    }

    fn wanted() -> Vec<String> {
        vec!["AVAX/USD".into(), "BAT/USD".into()]
    }

    #[test]
    fn trades_and_quotes_parse() {
        // Examples of docs.alpaca.markets/docs/real-time-crypto-pricing-data.
        let t: Value = serde_json::from_str(r#"{"T": "t", "S": "AVAX/USD", "p": 47.299, "s": 29.205707815, "t": "2024-03-12T10:27:48.858228144Z", "i": 3447222699101865076, "tks": "S"}"#).unwrap();
        let q: Value = serde_json::from_str(r#"{"T": "q", "S": "BAT/USD", "bp": 0.35718, "bs": 13445.46, "ap": 0.3581, "as": 13561.902, "t": "2024-03-12T10:29:43.111588173Z"}"#).unwrap();
        let t = parse_trade(&t, &wanted()).unwrap();
        assert_eq!(
            (t.last, t.bid, t.at_ms),
            (Some(47.299), None, 1_710_239_268_858)
        );
        let q = parse_quote(&q, &wanted()).unwrap();
        assert_eq!((q.last, q.bid, q.ask), (None, Some(0.35718), Some(0.3581)));
        for bad in [
            r#"{"T":"t","S":"AVAX/USD","p":"x","t":"2024-03-12T10:27:48Z"}"#,
            r#"{"T":"t","S":"AVAX/USD","p":0,"t":"2024-03-12T10:27:48Z"}"#,
            r#"{"T":"t","S":"AVAX/USD","p":3}"#,
            r#"{"T":"t","S":"DOGE/USD","p":3,"t":"2024-03-12T10:27:48Z"}"#,
            r#"{"T":"t","S":5,"p":3,"t":"2024-03-12T10:27:48Z"}"#,
        ] {
            let m: Value = serde_json::from_str(bad).unwrap();
            assert_eq!(parse_trade(&m, &wanted()), None, "{bad}");
        }
    }

    #[test]
    fn latest_quote_and_trade_merge_at_the_later_time() {
        let q = json!({"t":"2022-02-25T12:56:22.338903764Z","bp":39381.18,"bs":1.522012,"ap":39463.42,"as":1.5});
        let t =
            json!({"t":"2021-11-22T08:32:39.313396Z","p":57527,"s":0.0755,"tks":"B","i":17209535});
        let ticks = by_symbol(vec![merge("BTC/USD", Some(&q), Some(&t)).unwrap()]);
        let m = &ticks["BTC/USD"];
        assert_eq!(
            (m.last, m.bid, m.ask),
            (Some(57527.0), Some(39381.18), Some(39463.42))
        );
        assert_eq!(m.at_ms, 1_645_793_782_338);
        assert_eq!(
            merge("BTC/USD", None, Some(&json!({"p": -1, "t": "x"}))),
            None
        );
    }

    #[test]
    fn keys_never_show() {
        let k = Keys {
            key_id: "PKSECRETID".into(),
            secret: "very-secret".into(),
        };
        assert_eq!(format!("{k:?}"), "Keys { .. }");
    }

    #[test]
    fn errors_name_symbols() {
        assert!(names_symbol("invalid symbol: FOO/USD", "FOO/USD"));
        assert!(!names_symbol("invalid symbol: FOO/USDT", "FOO/USD"));
        assert!(!names_symbol("auth failed", "BTC/USD"));
        assert!(names_symbol("invalid symbol: \"BAD!\".", "BAD!"));
    }
}
