//! Fake market-data services on 127.0.0.1 for the live feed's tests: a WebSocket server that
//! runs a script per connection (or refuses the upgrade) and records what the client sent,
//! and a REST server that answers like Coinbase Exchange.
//! Each message shape is the provider's documented one; the source is beside each fake.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
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
