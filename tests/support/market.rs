//! Fake market-data services on 127.0.0.1 for the live feed's tests: a WebSocket server that
//! runs a script per connection (or refuses the upgrade) and records what the client sent,
//! and REST servers that answer like Coinbase Exchange and Alpaca's crypto and US stock data
//! APIs.
//! Each message shape is the provider's documented one; the source is beside each fake.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request, Response as WsResponse,
};
use tokio_tungstenite::tungstenite::http;

/// One accepted WebSocket connection, seen from the server; records what the client sends.
pub struct Peer {
    ws: WebSocketStream<TcpStream>,
    pub conn: usize,
    received: Arc<Mutex<Vec<(usize, String)>>>,
}

impl Peer {
    /// The next text the client sends (None: it went away).
    pub async fn recv(&mut self) -> Option<String> {
        while let Some(Ok(m)) = self.ws.next().await {
            if let Message::Text(t) = m {
                let t = t.as_str().to_string();
                self.received.lock().unwrap().push((self.conn, t.clone()));
                return Some(t);
            }
        }
        None
    }

    /// The next text as JSON.
    pub async fn recv_json(&mut self) -> Option<Value> {
        let t = self.recv().await?;
        Some(serde_json::from_str(&t).unwrap_or(Value::Null))
    }

    pub async fn send(&mut self, v: Value) {
        let _ = self.ws.send(Message::text(v.to_string())).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        let _ = self.ws.send(Message::text(text.to_string())).await;
    }

    /// Drop the connection without a close frame (a network failure, as the client sees it).
    pub fn cut(self) {
        drop(self.ws);
    }

    /// Say nothing until the client goes away.
    pub async fn silent_until_gone(mut self) {
        while self.ws.next().await.is_some() {}
    }
}

/// How the WebSocket fake ends a connection after its script.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Then {
    /// Stay connected (and quiet) until the client goes away.
    Hold,
    /// Cut the connection.
    Cut,
    /// Stay connected and send nothing: a stalled stream.
    Silent,
}

/// A WebSocket server on 127.0.0.1 that accepts any number of connections.
pub struct WsFake {
    pub url: String,
    received: Arc<Mutex<Vec<(usize, String)>>>,
    connections: Arc<AtomicUsize>,
}

impl WsFake {
    /// Answer every upgrade with `refuse` (403 …) instead of accepting it.
    pub async fn refusing(refuse: u16) -> WsFake {
        Self::start(Some(refuse), |_peer| async {}).await
    }

    /// Run `session` for each connection (numbered from 0 in `Peer::conn`).
    pub async fn serving<F, Fut>(session: F) -> WsFake
    where
        F: Fn(Peer) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start(None, session).await
    }

    // tungstenite's refusal callback returns its own (large) error response.
    #[allow(clippy::result_large_err)]
    async fn start<F, Fut>(refuse: Option<u16>, session: F) -> WsFake
    where
        F: Fn(Peer) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (rec, count) = (received.clone(), connections.clone());
        let session = Arc::new(session);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let conn = count.fetch_add(1, Ordering::SeqCst);
                let (rec, session) = (rec.clone(), session.clone());
                tokio::spawn(async move {
                    let ws = match refuse {
                        Some(status) => {
                            let deny = move |_: &Request, _: WsResponse| -> Result<WsResponse, ErrorResponse> {
                                Err(http::Response::builder().status(status).body(None).unwrap())
                            };
                            let _ = tokio_tungstenite::accept_hdr_async(stream, deny).await;
                            return;
                        }
                        None => match tokio_tungstenite::accept_async(stream).await {
                            Ok(ws) => ws,
                            Err(_) => return,
                        },
                    };
                    session(Peer {
                        ws,
                        conn,
                        received: rec,
                    })
                    .await;
                });
            }
        });
        WsFake {
            url: format!("ws://{addr}"),
            received,
            connections,
        }
    }

    /// Every text the clients sent, with the connection it came on.
    pub fn received(&self) -> Vec<(usize, Value)> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(c, t)| (*c, serde_json::from_str(t).unwrap_or(Value::Null)))
            .collect()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(router: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

fn json_response(status: u16, body: Value, headers: &[(&str, String)]) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap(), body.to_string()).into_response();
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    for (k, v) in headers {
        r.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    r
}

// ------------------------------------------------------------------------------------------
// Coinbase Exchange

/// A Coinbase Exchange `ticker` message. Shape: the Ticker Channel example of
/// https://docs.cdp.coinbase.com/exchange/websocket-feed/channels (prices are strings,
/// `sequence` and `trade_id` integers).
pub fn coinbase_ticker(product: &str, price: &str, bid: &str, ask: &str, time: &str) -> Value {
    json!({"type": "ticker", "sequence": 37475248783u64, "product_id": product, "price": price,
           "open_24h": "1310.79", "volume_24h": "245532.79269678", "low_24h": "1280.52",
           "high_24h": "1313.8", "volume_30d": "9788783.60117027", "best_bid": bid,
           "best_bid_size": "0.46688654", "best_ask": ask, "best_ask_size": "1.56637040",
           "side": "buy", "time": time, "trade_id": 370843401, "last_size": "11.4396987"})
}

/// The products named in a Coinbase subscribe message, per-channel form
/// (`{"name":"ticker","product_ids":[…]}`) or root-level `product_ids`
/// (https://docs.cdp.coinbase.com/exchange/websocket-feed/overview, "Subscribe").
pub fn coinbase_products(subscribe: &Value) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut add = |v: &Value| {
        for p in v.as_array().into_iter().flatten() {
            if let Some(p) = p.as_str()
                && !ids.iter().any(|i| i == p)
            {
                ids.push(p.to_string());
            }
        }
    };
    add(&subscribe["product_ids"]);
    for c in subscribe["channels"].as_array().into_iter().flatten() {
        add(&c["product_ids"]);
    }
    ids
}

/// One Coinbase feed session: wait for a subscribe; a product not in `known` gets
/// `{"type":"error","message":"Failed to subscribe","reason":"X is not a valid product"}` and
/// the whole subscribe is ignored (the error shape is barter-data's, from the overview page's
/// subscribe docs; "ignored entirely": coinbase/coinbase-pro-node#174). A good one gets the
/// `subscriptions` reply (shape from ccxt `coinbaseexchange.ts`), a heartbeat
/// (channels page) and one ticker per product, priced from `prices`; then `then`.
pub async fn coinbase_session(
    mut peer: Peer,
    known: &[&str],
    prices: &HashMap<&str, (&str, &str, &str)>,
    then: Then,
) {
    let products = loop {
        let Some(msg) = peer.recv_json().await else {
            return;
        };
        if msg["type"] != "subscribe" {
            continue;
        }
        let products = coinbase_products(&msg);
        if let Some(bad) = products.iter().find(|p| !known.contains(&p.as_str())) {
            peer.send(json!({"type": "error", "message": "Failed to subscribe",
                             "reason": format!("{bad} is not a valid product")}))
                .await;
            continue;
        }
        break products;
    };
    peer.send(json!({"type": "subscriptions", "channels": [
        {"name": "ticker", "product_ids": products},
        {"name": "heartbeat", "product_ids": products}]}))
        .await;
    peer.send(
        json!({"type": "heartbeat", "sequence": 90, "last_trade_id": 20,
                     "product_id": products[0], "time": "2014-11-07T08:19:28.464459Z"}),
    )
    .await;
    // Malformed and unusable messages the client must skip without stopping.
    peer.send_raw("{not json").await;
    peer.send(
        json!({"type": "ticker", "product_id": products[0], "price": "-5",
                     "time": "2022-10-19T23:28:22.061769Z"}),
    )
    .await;
    peer.send(json!({"type": "ticker", "product_id": products[0], "price": 12}))
        .await;
    for p in &products {
        let (price, bid, ask) = prices.get(p.as_str()).copied().unwrap_or(("1", "1", "1"));
        peer.send(coinbase_ticker(
            p,
            price,
            bid,
            ask,
            "2022-10-19T23:28:22.061769Z",
        ))
        .await;
    }
    match then {
        Then::Hold | Then::Silent => peer.silent_until_gone().await,
        Then::Cut => peer.cut(),
    }
}

/// Coinbase Exchange's REST API: `GET /products/{id}/ticker`. Answer shape: the example of
/// https://docs.cdp.coinbase.com/api-reference/exchange-api/rest-api/products/get-product-ticker
/// (strings, `trade_id` an integer); unknown product → 404 `{"message":"NotFound"}`
/// (coinbase/coinbase-pro-node#158). The first `limited` requests get 429 with `Retry-After`.
pub struct CoinbaseRest {
    pub url: String,
    hits: Arc<AtomicUsize>,
    requested: Arc<Mutex<Vec<String>>>,
}

impl CoinbaseRest {
    pub async fn start(
        prices: HashMap<String, (String, String, String)>,
        limited: usize,
        retry_after: &str,
    ) -> CoinbaseRest {
        let hits = Arc::new(AtomicUsize::new(0));
        let requested = Arc::new(Mutex::new(Vec::new()));
        let state = (
            Arc::new(prices),
            hits.clone(),
            limited,
            retry_after.to_string(),
            requested.clone(),
        );
        type St = (
            Arc<HashMap<String, (String, String, String)>>,
            Arc<AtomicUsize>,
            usize,
            String,
            Arc<Mutex<Vec<String>>>,
        );
        async fn ticker(State(st): State<St>, Path(id): Path<String>) -> Response {
            let (prices, hits, limited, retry_after, requested) = st;
            requested.lock().unwrap().push(id.clone());
            if hits.fetch_add(1, Ordering::SeqCst) < limited {
                return json_response(
                    429,
                    json!({"message": "Too Many Requests"}),
                    &[("retry-after", retry_after)],
                );
            }
            match prices.get(&id) {
                Some((price, bid, ask)) => json_response(
                    200,
                    json!({"ask": ask, "bid": bid, "volume": "53602.03940154",
                           "trade_id": 86326522, "price": price, "size": "0.00698254",
                           "time": "2020-03-20T00:22:57.833Z", "rfq_volume": "123.122",
                           "conversions_volume": "0.00"}),
                    &[],
                ),
                None => json_response(404, json!({"message": "NotFound"}), &[]),
            }
        }
        let router = axum::Router::new()
            .route("/products/{id}/ticker", axum::routing::get(ticker))
            .with_state(state);
        CoinbaseRest {
            url: serve(router).await,
            hits,
            requested,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The product of each request, in order.
    pub fn requested(&self) -> Vec<String> {
        self.requested.lock().unwrap().clone()
    }
}

// ------------------------------------------------------------------------------------------
// Alpaca crypto market data v1beta3

/// The key and secret the Alpaca fakes accept.
pub const ALPACA_KEY: &str = "PKTESTKEY";
pub const ALPACA_SECRET: &str = "test-secret-value";

/// An Alpaca crypto trade. Shape: https://docs.alpaca.markets/docs/real-time-crypto-pricing-data
/// ("Trades": numbers are JSON numbers, `t` RFC 3339 with nanoseconds).
pub fn alpaca_trade(symbol: &str, price: f64, time: &str) -> Value {
    json!({"T": "t", "S": symbol, "p": price, "s": 29.205707815, "t": time,
           "i": 3447222699101865076u64, "tks": "S"})
}

/// An Alpaca crypto quote. Shape: same page, "Quotes".
pub fn alpaca_quote(symbol: &str, bid: f64, ask: f64, time: &str) -> Value {
    json!({"T": "q", "S": symbol, "bp": bid, "bs": 13445.46, "ap": ask, "as": 13561.902,
           "t": time})
}

/// One Alpaca stream session, as the wscat session of
/// https://docs.alpaca.markets/docs/crypto-pricing-data shows it: `[{"T":"success","msg":
/// "connected"}]`; `auth` → `[{"T":"success","msg":"authenticated"}]` or, with other keys,
/// `[{"T":"error","code":402,"msg":"auth failed"}]` (error list: alpacahq/alpaca-docs
/// `crypto-pricing-data/realtime.md`); `subscribe` → `[{"T":"subscription",…}]` listing the
/// whole current set, here only the symbols in `known` (Alpaca documents no error for an
/// unknown crypto symbol; this fake leaves it out of the set). Then one frame with a trade and
/// a quote per symbol (data frames may carry several messages), then `then`.
pub async fn alpaca_session(
    mut peer: Peer,
    known: &[&str],
    prices: &HashMap<&str, (f64, f64, f64)>,
    then: Then,
) {
    peer.send(json!([{"T": "success", "msg": "connected"}]))
        .await;
    let Some(auth) = peer.recv_json().await else {
        return;
    };
    if auth["action"] != "auth" || auth["key"] != ALPACA_KEY || auth["secret"] != ALPACA_SECRET {
        peer.send(json!([{"T": "error", "code": 402, "msg": "auth failed"}]))
            .await;
        return peer.silent_until_gone().await;
    }
    peer.send(json!([{"T": "success", "msg": "authenticated"}]))
        .await;
    let sub = loop {
        let Some(msg) = peer.recv_json().await else {
            return;
        };
        if msg["action"] == "subscribe" {
            break msg;
        }
    };
    let keep = |k: &str| -> Vec<String> {
        sub[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|s| known.contains(s))
            .map(String::from)
            .collect()
    };
    let (trades, quotes) = (keep("trades"), keep("quotes"));
    peer.send(
        json!([{"T": "subscription", "trades": trades, "quotes": quotes,
                      "orderbooks": [], "updatedBars": [], "dailyBars": []}]),
    )
    .await;
    // Unusable messages the client must skip.
    peer.send_raw("[{\"T\":\"t\",\"S\":").await;
    peer.send(json!([{"T": "t", "S": trades.first(), "p": "abc", "t": "2024-03-12T10:27:48Z"},
                     {"T": "q", "S": trades.first(), "bp": -1, "ap": 0, "t": "2024-03-12T10:27:48Z"}]))
        .await;
    let mut frame = Vec::new();
    let subscribed: HashSet<&String> = trades.iter().chain(quotes.iter()).collect();
    for s in subscribed {
        let (last, bid, ask) = prices.get(s.as_str()).copied().unwrap_or((1.0, 1.0, 1.0));
        frame.push(alpaca_trade(s, last, "2024-03-12T10:27:48.858228144Z"));
        frame.push(alpaca_quote(s, bid, ask, "2024-03-12T10:29:43.111588173Z"));
    }
    peer.send(Value::Array(frame)).await;
    match then {
        Then::Hold | Then::Silent => peer.silent_until_gone().await,
        Then::Cut => peer.cut(),
    }
}

/// Alpaca's data REST API: crypto `GET /v1beta3/crypto/us/latest/quotes?symbols=…` and
/// `…/latest/trades?symbols=…`; US stocks `GET /v2/stocks/quotes/latest?symbols=…&feed=iex`
/// and `/v2/stocks/trades/latest?…`, which answer only with the keys in the
/// `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` headers. Answer shapes: alpacahq/alpaca-trade-api-go
/// `marketdata/rest.go` and `rest_test.go` (`{"quotes": {SYMBOL: …}}`, a map keyed by symbol; a
/// symbol without data is left out, as its `GetLatestQuote` expects). The first `limited`
/// requests get 429 with `headers`.
pub struct AlpacaRest {
    pub url: String,
    hits: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<AlpacaRequest>>>,
}

/// One request the Alpaca REST fake got.
#[derive(Clone, Debug, PartialEq)]
pub struct AlpacaRequest {
    /// `quotes` or `trades`.
    pub kind: String,
    /// The `symbols` parameter, decoded.
    pub symbols: String,
    /// The `APCA-API-KEY-ID` header (None: sent without keys).
    pub key: Option<String>,
    /// Whether the `APCA-API-SECRET-KEY` header carried the secret the fake accepts.
    pub secret_ok: bool,
    /// A stock request (`/v2/stocks/…`), not a crypto one.
    pub stocks: bool,
    /// The `feed` parameter (stocks).
    pub feed: Option<String>,
}

type AlpacaSt = (
    Arc<HashMap<String, (f64, f64, f64)>>,
    Arc<AtomicUsize>,
    usize,
    Arc<Vec<(String, String)>>,
    Arc<Mutex<Vec<AlpacaRequest>>>,
    Arc<Vec<String>>,
);

async fn alpaca_latest(
    State(st): State<AlpacaSt>,
    Path(kind): Path<String>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let (prices, hits, limited, limit_headers, requests, invalid) = st;
    let param = |name: &str| {
        uri.query()
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(|v| {
                percent_encoding::percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            })
    };
    let symbols = param("symbols").unwrap_or_default();
    let stocks = uri.path().starts_with("/v2/stocks/");
    let key = headers
        .get("apca-api-key-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let secret_ok = headers
        .get("apca-api-secret-key")
        .is_some_and(|v| v.as_bytes() == ALPACA_SECRET.as_bytes());
    requests.lock().unwrap().push(AlpacaRequest {
        kind: kind.clone(),
        symbols: symbols.clone(),
        key: key.clone(),
        secret_ok,
        stocks,
        feed: param("feed"),
    });
    // Stock data only to an account: 403 without (or with wrong) keys
    // (https://docs.alpaca.markets/docs/market-data-faq, "Why am I getting HTTP 403").
    if stocks && (key.as_deref() != Some(ALPACA_KEY) || !secret_ok) {
        return json_response(403, json!({"message": "forbidden"}), &[]);
    }
    if hits.fetch_add(1, Ordering::SeqCst) < limited {
        let h: Vec<(&str, String)> = limit_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        return json_response(429, json!({"message": "too many requests."}), &h);
    }
    // A malformed symbol fails the whole request; the shape is the one third-party tests show
    // for stocks (400 {"message":"invalid symbol: XYZ"}), not documented for crypto.
    if let Some(bad) = symbols.split(',').find(|s| invalid.iter().any(|i| i == s)) {
        return json_response(
            400,
            json!({"message": format!("invalid symbol: {bad}")}),
            &[],
        );
    }
    let mut map = serde_json::Map::new();
    for s in symbols.split(',') {
        let Some((last, bid, ask)) = prices.get(s) else {
            continue;
        };
        // Stock shapes: alpacahq/alpaca-trade-api-go `marketdata/rest_test.go`
        // (TestLatestQuote, TestLatestTrades).
        let entry = match (stocks, kind.as_str()) {
            (false, "quotes") => json!({"t": "2022-02-25T12:56:22.338903764Z", "bp": bid,
                               "bs": 1.522012, "ap": ask, "as": 1.5}),
            (false, _) => json!({"t": "2021-11-22T08:32:39.313396Z", "p": last, "s": 0.0755,
                        "tks": "B", "i": 17209535}),
            (true, "quotes") => json!({"t": "2021-04-20T13:01:57.822745906Z", "ax": "Q",
                               "ap": ask, "as": 1, "bx": "K", "bp": bid, "bs": 29, "c": ["R"]}),
            (true, _) => json!({"t": "2021-10-11T23:42:47.895547Z", "x": "K", "p": last,
                        "s": 197, "c": [" ", "F", "T"], "i": 52983525503560u64, "z": "A"}),
        };
        map.insert(s.to_string(), entry);
    }
    let mut body = serde_json::Map::new();
    body.insert(kind, Value::Object(map));
    json_response(200, Value::Object(body), &[])
}

impl AlpacaRest {
    pub async fn start(
        prices: HashMap<String, (f64, f64, f64)>,
        limited: usize,
        limit_headers: Vec<(String, String)>,
    ) -> AlpacaRest {
        Self::start_rejecting(prices, limited, limit_headers, &[]).await
    }

    /// Like [`AlpacaRest::start`]; a request naming one of `invalid` gets a 400.
    pub async fn start_rejecting(
        prices: HashMap<String, (f64, f64, f64)>,
        limited: usize,
        limit_headers: Vec<(String, String)>,
        invalid: &[&str],
    ) -> AlpacaRest {
        let hits = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state: AlpacaSt = (
            Arc::new(prices),
            hits.clone(),
            limited,
            Arc::new(limit_headers),
            requests.clone(),
            Arc::new(invalid.iter().map(|s| s.to_string()).collect()),
        );
        let router = axum::Router::new()
            .route(
                "/v1beta3/crypto/us/latest/{kind}",
                axum::routing::get(alpaca_latest),
            )
            .route(
                "/v2/stocks/{kind}/latest",
                axum::routing::get(alpaca_latest),
            )
            .with_state(state);
        AlpacaRest {
            url: serve(router).await,
            hits,
            requests,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Every request, in order.
    pub fn requests(&self) -> Vec<AlpacaRequest> {
        self.requests.lock().unwrap().clone()
    }
}

// ------------------------------------------------------------------------------------------
// Alpaca US stock market data v2

/// An Alpaca stock trade. Shape: the Trade Schema example of alpacahq/alpaca-docs
/// `content/api-references/market-data-api/stock-pricing-data/realtime.md`
/// (docs.alpaca.markets/docs/real-time-stock-pricing-data): `s` an integer size, `t` RFC 3339.
pub fn alpaca_stock_trade(symbol: &str, price: f64, time: &str) -> Value {
    json!({"T": "t", "i": 96921, "S": symbol, "x": "D", "p": price, "s": 1, "t": time,
           "c": ["@", "I"], "z": "C"})
}

/// An Alpaca stock quote. Shape: the Quote Schema example of the same page.
pub fn alpaca_stock_quote(symbol: &str, bid: f64, ask: f64, time: &str) -> Value {
    json!({"T": "q", "S": symbol, "bx": "U", "bp": bid, "bs": 1, "ax": "Q", "ap": ask, "as": 4,
           "t": time, "c": ["R"], "z": "C"})
}

/// How the stock stream fake treats an authenticated connection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StockStream {
    /// Subscribe and send data, then `Then`.
    Serve(Then),
    /// Answer the auth with this error and stay connected (`406 connection limit exceeded`,
    /// `409 insufficient subscription`).
    Refuse(i64, &'static str),
}

/// One Alpaca US stock stream session (`wss://stream.data.alpaca.markets/v2/{iex|sip}`), as
/// alpacahq/alpaca-docs `content/api-references/market-data-api/stock-pricing-data/realtime.md`
/// describes it: `[{"T":"success","msg":"connected"}]`; `{"action":"auth","key","secret"}` →
/// `[{"T":"success","msg":"authenticated"}]`, or with other keys
/// `[{"T":"error","code":402,"msg":"auth failed"}]` (codes 400–409 and 500 listed there;
/// 406 "connection limit exceeded" also on docs.alpaca.markets/docs/streaming-market-data;
/// the same codes in alpacahq/alpaca-trade-api-go `marketdata/stream/errors.go`); `subscribe`
/// → `[{"T":"subscription","trades":[…],"quotes":[…],"bars":[]}]` listing the whole set
/// ("You will always receive your entire list of subscriptions"). The page documents no error
/// for a ticker that does not exist, so this fake subscribes whatever it is asked and sends
/// data only for `prices`' symbols: a trade and a quote each, in one frame, timed `at`
/// (RFC 3339; the trade a millisecond before the quote).
pub async fn alpaca_stock_session(
    mut peer: Peer,
    prices: &HashMap<&str, (f64, f64, f64)>,
    at: chrono::DateTime<chrono::Utc>,
    script: StockStream,
) {
    peer.send(json!([{"T": "success", "msg": "connected"}]))
        .await;
    let Some(auth) = peer.recv_json().await else {
        return;
    };
    if auth["action"] != "auth" || auth["key"] != ALPACA_KEY || auth["secret"] != ALPACA_SECRET {
        peer.send(json!([{"T": "error", "code": 402, "msg": "auth failed"}]))
            .await;
        return peer.silent_until_gone().await;
    }
    let then = match script {
        StockStream::Refuse(code, msg) => {
            peer.send(json!([{"T": "error", "code": code, "msg": msg}]))
                .await;
            return peer.silent_until_gone().await;
        }
        StockStream::Serve(then) => then,
    };
    peer.send(json!([{"T": "success", "msg": "authenticated"}]))
        .await;
    let sub = loop {
        let Some(msg) = peer.recv_json().await else {
            return;
        };
        if msg["action"] == "subscribe" {
            break msg;
        }
    };
    let list = |k: &str| -> Vec<String> {
        sub[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect()
    };
    let (trades, quotes) = (list("trades"), list("quotes"));
    peer.send(json!([{"T": "subscription", "trades": trades, "quotes": quotes, "bars": []}]))
        .await;
    let mut frame = Vec::new();
    for s in &trades {
        if let Some((last, bid, ask)) = prices.get(s.as_str()).copied() {
            let time = |t: chrono::DateTime<chrono::Utc>| {
                t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            };
            let trade_at = at - chrono::Duration::milliseconds(1);
            frame.push(alpaca_stock_trade(s, last, &time(trade_at)));
            frame.push(alpaca_stock_quote(s, bid, ask, &time(at)));
        }
    }
    peer.send(Value::Array(frame)).await;
    match then {
        Then::Hold | Then::Silent => peer.silent_until_gone().await,
        Then::Cut => peer.cut(),
    }
}
