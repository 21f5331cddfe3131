//! A fake of Alpaca's trading API (v2) on 127.0.0.1, with its own runtime thread: usable from
//! sync tests, async tests and tests that run the real binary.
//!
//! What it follows (read from Alpaca's docs and official SDKs; the routes cite theirs):
//! - docs.alpaca.markets "Orders at Alpaca" / api-references trading-api orders, positions,
//!   assets, account; alpacahq/alpaca-py `alpaca/trading/client.py`, `models.py`, `enums.py`;
//!   alpacahq/alpaca-trade-api-go `alpaca/rest.go`, `alpaca/entities.go`.
//! - Auth: headers `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY`; refused → 401
//!   `{"code": 40110000, "message": "request is not authorized"}`.
//! - Errors are `{"code", "message"}` (alpaca-trade-api-go `APIError`); numbers in bodies are
//!   strings (alpaca-py models: `qty: str`, `filled_avg_price`, `buying_power` …); timestamps
//!   RFC 3339.
//! - Crypto: orders `BTC/USD`; positions `BTCUSD` with `asset_class: "crypto"`;
//!   `/v2/positions/BTC/USD` is a 404 (alpaca-py issues #179, #537); assets by compact symbol
//!   or with the slash percent-encoded (crypto-api/assets); order class simple only, time in
//!   force gtc or ioc (alpaca-py `enums.py` OrderClass, TimeInForce); no shorting: a sell over
//!   the holding is 403 `insufficient balance for BTC (requested: …, available: …)`.
//! - Stocks: bracket orders (`order_class: "bracket"`, `take_profit.limit_price`,
//!   `stop_loss.stop_price`; alpaca-py `requests.py` TakeProfitRequest/StopLossRequest), legs
//!   shown under `legs` when asked `nested=true` (alpaca-py GetOrderByIdRequest); fractional
//!   quantities only as day orders (docs.alpaca.markets/docs/trading-1).
//!
//! Where the docs give no exact text (the 404 messages, the 422 messages for a bad time in
//! force or order class, the 403 for shares held by open orders) the fake uses plain words
//! with the documented codes; the client matches on status and code, not on those words.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub const DEFAULT_KEY_ID: &str = "PKTEST";
pub const DEFAULT_SECRET: &str = "SECRETTEST";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AssetClass {
    Crypto,
    Stock,
}

/// An asset as `GET /v2/assets/{symbol}` describes it.
#[derive(Clone, Debug)]
pub struct AssetSpec {
    pub class: AssetClass,
    pub tradable: bool,
    pub fractionable: bool,
    /// Stocks: shortable and easy to borrow. Crypto is never shortable.
    pub shortable: bool,
    /// Crypto only (0: none).
    pub min_order_size: f64,
    pub min_trade_increment: f64,
}

impl AssetSpec {
    /// A tradable coin pair: fractional, minimum 0.0001, step 0.0001 (Alpaca's BTC/USD example).
    pub fn crypto() -> AssetSpec {
        AssetSpec {
            class: AssetClass::Crypto,
            tradable: true,
            fractionable: true,
            shortable: false,
            min_order_size: 0.0001,
            min_trade_increment: 0.0001,
        }
    }
    /// A tradable, fractionable, shortable US stock.
    pub fn stock() -> AssetSpec {
        AssetSpec {
            class: AssetClass::Stock,
            tradable: true,
            fractionable: true,
            shortable: true,
            min_order_size: 0.0,
            min_trade_increment: 0.0,
        }
    }
}

/// How the next orders are answered (it stays until changed).
#[derive(Clone, Debug, PartialEq)]
pub enum FillMode {
    /// Filled in whole at the symbol's price: the answer says `filled`.
    Immediate,
    /// Answered `accepted`; stays open until [`AlpacaFake::fill_open`].
    Accept,
    /// This fraction fills at once (`partially_filled`); the rest on [`AlpacaFake::complete`].
    Partial(f64),
    /// Refused: 403 `{"code": 40310000, "message": …}`; nothing is recorded.
    Reject(String),
}

#[derive(Clone, Debug)]
struct FakeOrder {
    id: String,
    client_order_id: String,
    symbol: String,
    crypto: bool,
    side: String,
    qty: f64,
    kind: String,
    time_in_force: String,
    order_class: String,
    status: String,
    filled_qty: f64,
    filled_avg_price: Option<f64>,
    limit_price: Option<f64>,
    stop_price: Option<f64>,
    /// Indices of the legs (a bracket's take-profit, then stop-loss).
    legs: Vec<usize>,
    parent: Option<usize>,
    created_at: String,
    updated_at: String,
    filled_at: Option<String>,
    canceled_at: Option<String>,
}

#[derive(Clone, Debug)]
struct Position {
    /// Signed: negative is short.
    qty: f64,
    avg_entry: f64,
    crypto: bool,
}

struct Failure {
    route: String,
    status: u16,
    body: String,
    retry_after: Option<u64>,
}

struct State {
    key_id: String,
    secret: String,
    equity: f64,
    cash: f64,
    buying_power: f64,
    non_marginable_buying_power: f64,
    trading_blocked: bool,
    crypto_status: String,
    assets: HashMap<String, AssetSpec>,
    prices: HashMap<String, f64>,
    mode: FillMode,
    failures: Vec<Failure>,
    hang_next: bool,
    orders: Vec<FakeOrder>,
    /// By the order symbol (`BTC/USD`, `AAPL`).
    positions: BTreeMap<String, Position>,
    post_count: usize,
    /// The JSON body of every `POST /v2/orders`.
    order_bodies: Vec<Value>,
    requests: Vec<String>,
    next_id: u64,
}

impl State {
    fn new() -> State {
        State {
            key_id: DEFAULT_KEY_ID.into(),
            secret: DEFAULT_SECRET.into(),
            equity: 100_000.0,
            cash: 100_000.0,
            buying_power: 200_000.0,
            non_marginable_buying_power: 100_000.0,
            trading_blocked: false,
            crypto_status: "ACTIVE".into(),
            assets: HashMap::new(),
            prices: HashMap::new(),
            mode: FillMode::Immediate,
            failures: Vec::new(),
            hang_next: false,
            orders: Vec::new(),
            positions: BTreeMap::new(),
            post_count: 0,
            order_bodies: Vec::new(),
            requests: Vec::new(),
            next_id: 1,
        }
    }

    fn new_id(&mut self) -> String {
        let n = self.next_id;
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    /// The order symbol an asset/position path names: compact `BTCUSD`, `BTC%2FUSDT`
    /// (decoded before this), or a stock ticker.
    fn symbol_for_path(&self, raw: &str) -> Option<String> {
        if self.assets.contains_key(raw) {
            return Some(raw.to_string());
        }
        self.assets
            .iter()
            .find(|(s, a)| a.class == AssetClass::Crypto && s.replace('/', "") == raw)
            .map(|(s, _)| s.clone())
    }

    fn find_order(&self, client_or_id: &str) -> Option<usize> {
        self.orders
            .iter()
            .position(|o| o.client_order_id == client_or_id || o.id == client_or_id)
    }

    /// Fill `qty` more of order `i` at `price`; moves the position; a filled bracket parent
    /// wakes its legs; a filled leg cancels its sibling.
    fn fill(&mut self, i: usize, qty: f64, price: f64) {
        let now = now();
        let o = &mut self.orders[i];
        let before = o.filled_qty;
        let total = before + qty;
        let avg = match o.filled_avg_price {
            Some(p) if before > 0.0 => (p * before + price * qty) / total,
            _ => price,
        };
        o.filled_qty = total;
        o.filled_avg_price = Some(avg);
        o.updated_at = now.clone();
        if total + 1e-12 >= o.qty {
            o.status = "filled".into();
            o.filled_at = Some(now.clone());
        } else {
            o.status = "partially_filled".into();
        }
        let (symbol, crypto, signed) = (
            o.symbol.clone(),
            o.crypto,
            if o.side == "buy" { qty } else { -qty },
        );
        let status = o.status.clone();
        let legs = o.legs.clone();
        let parent = o.parent;
        self.move_position(&symbol, crypto, signed, price);
        if status == "filled" {
            for l in legs {
                if self.orders[l].status == "held" {
                    self.orders[l].status = "new".into();
                }
            }
            if let Some(p) = parent {
                let siblings = self.orders[p].legs.clone();
                for s in siblings {
                    if s != i && is_open(&self.orders[s].status) {
                        self.orders[s].status = "canceled".into();
                        self.orders[s].canceled_at = Some(now.clone());
                    }
                }
            }
        }
    }

    fn move_position(&mut self, symbol: &str, crypto: bool, signed: f64, price: f64) {
        let p = self
            .positions
            .entry(symbol.to_string())
            .or_insert(Position {
                qty: 0.0,
                avg_entry: price,
                crypto,
            });
        let new_qty = p.qty + signed;
        if p.qty == 0.0 || p.qty.signum() == signed.signum() {
            p.avg_entry = (p.avg_entry * p.qty.abs() + price * signed.abs()) / new_qty.abs();
        } else if new_qty.signum() != p.qty.signum() && new_qty.abs() > 1e-12 {
            p.avg_entry = price;
        }
        p.qty = new_qty;
        if p.qty.abs() < 1e-12 {
            self.positions.remove(symbol);
        }
    }

    /// Shares of `symbol` held by open sell (or buy-to-cover) orders.
    fn held_for_orders(&self, symbol: &str, side: &str) -> f64 {
        self.orders
            .iter()
            .filter(|o| o.symbol == symbol && o.side == side && is_open(&o.status))
            .filter(|o| {
                o.status != "held" || o.parent.is_none_or(|p| self.orders[p].status == "filled")
            })
            .map(|o| o.qty - o.filled_qty)
            .sum()
    }

    fn order_json(&self, i: usize, nested: bool) -> Value {
        let o = &self.orders[i];
        let legs = if nested && !o.legs.is_empty() {
            Value::Array(o.legs.iter().map(|l| self.order_json(*l, false)).collect())
        } else {
            Value::Null
        };
        json!({
            "id": o.id,
            "client_order_id": o.client_order_id,
            "created_at": o.created_at,
            "updated_at": o.updated_at,
            "submitted_at": o.created_at,
            "filled_at": o.filled_at,
            "expired_at": null,
            "canceled_at": o.canceled_at,
            "failed_at": null,
            "replaced_at": null,
            "replaced_by": null,
            "replaces": null,
            "asset_id": asset_id(&o.symbol),
            "symbol": o.symbol,
            "asset_class": if o.crypto { "crypto" } else { "us_equity" },
            "notional": null,
            "qty": num(o.qty),
            "filled_qty": num(o.filled_qty),
            "filled_avg_price": o.filled_avg_price.map(num),
            "order_class": o.order_class,
            "order_type": o.kind,
            "type": o.kind,
            "side": o.side,
            "time_in_force": o.time_in_force,
            "limit_price": o.limit_price.map(num),
            "stop_price": o.stop_price.map(num),
            "status": o.status,
            "extended_hours": false,
            "legs": legs,
            "trail_percent": null,
            "trail_price": null,
            "hwm": null,
        })
    }

    fn position_json(&self, symbol: &str, p: &Position) -> Value {
        let price = self.prices.get(symbol).copied().unwrap_or(p.avg_entry);
        let market_value = p.qty * price;
        let cost_basis = p.qty * p.avg_entry;
        json!({
            "asset_id": asset_id(symbol),
            "symbol": if p.crypto { symbol.replace('/', "") } else { symbol.to_string() },
            "exchange": if p.crypto { "CRYPTO" } else { "NASDAQ" },
            "asset_class": if p.crypto { "crypto" } else { "us_equity" },
            "asset_marginable": !p.crypto,
            "qty": num(p.qty),
            "qty_available": num(p.qty),
            "avg_entry_price": num(p.avg_entry),
            "side": if p.qty < 0.0 { "short" } else { "long" },
            "market_value": num(market_value),
            "cost_basis": num(cost_basis),
            "unrealized_pl": num(market_value - cost_basis),
            "unrealized_plpc": num(if cost_basis != 0.0 { (market_value - cost_basis) / cost_basis.abs() } else { 0.0 }),
            "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0",
            "current_price": num(price),
            "lastday_price": num(price),
            "change_today": "0",
        })
    }
}

fn is_open(status: &str) -> bool {
    matches!(
        status,
        "new"
            | "accepted"
            | "pending_new"
            | "partially_filled"
            | "held"
            | "accepted_for_bidding"
            | "pending_cancel"
            | "pending_replace"
    )
}

fn num(x: f64) -> String {
    // Alpaca sends numbers as decimal strings.
    let r = (x * 1e9).round() / 1e9;
    format!("{}", r + 0.0)
}

fn asset_id(symbol: &str) -> String {
    let h = symbol
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    format!("a55e7000-0000-4000-8000-{:012x}", h & 0xffff_ffff_ffff)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn reply(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn error(status: u16, code: i64, message: &str) -> Response<Body> {
    reply(status, json!({"code": code, "message": message}))
}

fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                percent_encoding::percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
        .collect()
}

/// A body number Alpaca accepts: a decimal string (or a JSON number).
fn body_number(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

type Shared = Arc<Mutex<State>>;

async fn answer(
    state: Shared,
    shutdown: tokio::sync::watch::Receiver<bool>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let path = uri.path().to_string();
    let route = format!("{method} {path}");
    let hang;
    let response = {
        let mut st = state.lock().unwrap();
        st.requests.push(match uri.query() {
            Some(q) => format!("{route}?{q}"),
            None => route.clone(),
        });
        if method == Method::POST && path == "/v2/orders" {
            st.post_count += 1;
            st.order_bodies
                .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
        }
        let key = headers.get("apca-api-key-id").and_then(|v| v.to_str().ok());
        let secret = headers
            .get("apca-api-secret-key")
            .and_then(|v| v.to_str().ok());
        if key != Some(st.key_id.as_str()) || secret != Some(st.secret.as_str()) {
            return error(401, 40110000, "request is not authorized");
        }
        if let Some(i) = st
            .failures
            .iter()
            .position(|f| route == f.route || route.starts_with(&format!("{}/", f.route)))
        {
            let f = st.failures.remove(i);
            let mut b = Response::builder()
                .status(StatusCode::from_u16(f.status).unwrap())
                .header("content-type", "application/json");
            if let Some(s) = f.retry_after {
                b = b.header("retry-after", s.to_string());
            }
            return b.body(Body::from(f.body)).unwrap();
        }
        hang = method == Method::POST && path == "/v2/orders" && std::mem::take(&mut st.hang_next);
        route_request(&mut st, &method, &path, &uri, &body)
    };
    if hang {
        // The order is recorded; the answer never comes (until the fake stops).
        let mut shutdown = shutdown;
        let _ = shutdown.wait_for(|stop| *stop).await;
        return error(503, 50300000, "shutting down");
    }
    response
}

fn route_request(
    st: &mut State,
    method: &Method,
    path: &str,
    uri: &Uri,
    body: &Bytes,
) -> Response<Body> {
    let q = query(uri);
    let nested = q.get("nested").map(|v| v == "true").unwrap_or(false);
    match (method.clone(), path) {
        // GET /v2/account — docs: api-references/trading-api/account; alpaca-py TradeAccount.
        (Method::GET, "/v2/account") => reply(
            200,
            json!({
                "id": "e6fe16f3-64a4-4921-8928-cadf02f92f98",
                "account_number": "PA0TEST0000",
                "status": "ACTIVE",
                "crypto_status": st.crypto_status,
                "currency": "USD",
                "buying_power": num(st.buying_power),
                "regt_buying_power": num(st.buying_power),
                "non_marginable_buying_power": num(st.non_marginable_buying_power),
                "cash": num(st.cash),
                "portfolio_value": num(st.equity),
                "equity": num(st.equity),
                "last_equity": num(st.equity),
                "long_market_value": "0",
                "short_market_value": "0",
                "multiplier": "2",
                "shorting_enabled": true,
                "pattern_day_trader": false,
                "trading_blocked": st.trading_blocked,
                "transfers_blocked": false,
                "account_blocked": false,
                "trade_suspended_by_user": false,
                "created_at": "2024-01-02T15:04:05.123456Z",
            }),
        ),
        // GET /v2/orders:by_client_order_id?client_order_id= — alpaca-py get_order_by_client_id.
        (Method::GET, "/v2/orders:by_client_order_id") => {
            let id = q.get("client_order_id").cloned().unwrap_or_default();
            match st.orders.iter().position(|o| o.client_order_id == id) {
                Some(i) => reply(200, st.order_json(i, nested)),
                None => error(404, 40410000, "order not found"),
            }
        }
        // GET /v2/orders?status=open|closed|all&symbols=&nested= — alpaca-py GetOrdersRequest.
        (Method::GET, "/v2/orders") => {
            let status = q.get("status").map(String::as_str).unwrap_or("open");
            let symbols: Vec<String> = q
                .get("symbols")
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            let list: Vec<Value> = (0..st.orders.len())
                .filter(|i| !nested || st.orders[*i].parent.is_none())
                .filter(|i| {
                    let o = &st.orders[*i];
                    let open = is_open(&o.status);
                    (status == "all" || (status == "open") == open)
                        && (symbols.is_empty()
                            || symbols
                                .iter()
                                .any(|s| *s == o.symbol || *s == o.symbol.replace('/', "")))
                })
                .map(|i| st.order_json(i, nested))
                .collect();
            reply(200, Value::Array(list))
        }
        // POST /v2/orders — docs: api-references/trading-api/orders; alpaca-py OrderRequest.
        (Method::POST, "/v2/orders") => post_order(st, body),
        // GET /v2/positions — alpaca-py get_all_positions.
        (Method::GET, "/v2/positions") => {
            let list: Vec<Value> = st
                .positions
                .iter()
                .map(|(s, p)| st.position_json(s, p))
                .collect();
            reply(200, Value::Array(list))
        }
        (m, p) if p.starts_with("/v2/orders/") => {
            let id = &p["/v2/orders/".len()..];
            let Some(i) = st.orders.iter().position(|o| o.id == id) else {
                return error(404, 40410000, "order not found");
            };
            match m {
                // GET /v2/orders/{order_id}?nested= — alpaca-py get_order_by_id.
                Method::GET => reply(200, st.order_json(i, nested)),
                // DELETE /v2/orders/{order_id} — alpaca-py cancel_order_by_id (204); a
                // bracket leg cancels its sibling (forum.alpaca.markets "Bracket Order -
                // Closing Positions").
                Method::DELETE => {
                    if !is_open(&st.orders[i].status) {
                        return error(422, 42210000, "order is not cancelable");
                    }
                    let mut cancel = vec![i];
                    if let Some(p) = st.orders[i].parent {
                        cancel.extend(st.orders[p].legs.clone());
                    }
                    cancel.extend(st.orders[i].legs.clone());
                    let at = now();
                    for c in cancel {
                        if is_open(&st.orders[c].status) {
                            st.orders[c].status = "canceled".into();
                            st.orders[c].canceled_at = Some(at.clone());
                        }
                    }
                    Response::builder().status(204).body(Body::empty()).unwrap()
                }
                _ => error(405, 40510000, "method not allowed"),
            }
        }
        (m, p) if p.starts_with("/v2/positions/") => {
            let raw = &p["/v2/positions/".len()..];
            // A raw slash makes another path: `/v2/positions/BTC/USD` is a 404 (alpaca-py #537).
            let known = (!raw.contains('/'))
                .then(|| st.symbol_for_path(raw))
                .flatten()
                .filter(|s| st.positions.contains_key(s));
            let Some(symbol) = known else {
                return error(404, 40410000, "position does not exist");
            };
            match m {
                Method::GET => {
                    let pos = st.positions[&symbol].clone();
                    reply(200, st.position_json(&symbol, &pos))
                }
                // DELETE /v2/positions/{symbol} — alpaca-py close_position: a market order for
                // the whole position, answered as that order; shares held by open orders are
                // not available (alpaca-py FailedClosePositionDetails: available,
                // existing_qty, held_for_orders).
                Method::DELETE => close_position(st, &symbol),
                _ => error(405, 40510000, "method not allowed"),
            }
        }
        // GET /v2/assets/{symbol_or_asset_id} — crypto-api/assets: compact `BTCUSD`, or a coin
        // pair with the slash encoded (`BTC%2FUSDT`).
        (Method::GET, p) if p.starts_with("/v2/assets/") => {
            let raw = &p["/v2/assets/".len()..];
            if raw.contains('/') {
                return error(404, 40410000, "asset not found");
            }
            let decoded = percent_encoding::percent_decode_str(raw)
                .decode_utf8_lossy()
                .into_owned();
            match st.symbol_for_path(&decoded) {
                Some(symbol) => {
                    let a = &st.assets[&symbol];
                    let crypto = a.class == AssetClass::Crypto;
                    let mut v = json!({
                        "id": asset_id(&symbol),
                        "class": if crypto { "crypto" } else { "us_equity" },
                        "exchange": if crypto { "CRYPTO" } else { "NASDAQ" },
                        "symbol": symbol,
                        "name": symbol,
                        "status": "active",
                        "tradable": a.tradable,
                        "marginable": !crypto,
                        "shortable": !crypto && a.shortable,
                        "easy_to_borrow": !crypto && a.shortable,
                        "fractionable": a.fractionable,
                        "attributes": [],
                    });
                    if crypto {
                        v["min_order_size"] = json!(num(a.min_order_size));
                        v["min_trade_increment"] = json!(num(a.min_trade_increment));
                        v["price_increment"] = json!("0.01");
                    } else {
                        v["maintenance_margin_requirement"] = json!(30);
                    }
                    reply(200, v)
                }
                None => error(404, 40410000, "asset not found"),
            }
        }
        _ => error(404, 40410000, "endpoint not found"),
    }
}

fn post_order(st: &mut State, body: &Bytes) -> Response<Body> {
    let Ok(b) = serde_json::from_slice::<Value>(body) else {
        return error(400, 40010000, "request body format is invalid");
    };
    let text = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
    let Some(symbol) = text("symbol") else {
        return error(422, 40010000, "symbol is required");
    };
    let client_order_id = text("client_order_id").unwrap_or_else(|| st.new_id());
    if st
        .orders
        .iter()
        .any(|o| o.client_order_id == client_order_id)
    {
        return error(422, 40010001, "client_order_id must be unique");
    }
    let Some(asset) = st.assets.get(&symbol).cloned() else {
        return error(422, 40010001, &format!("asset \"{symbol}\" not found"));
    };
    let crypto = asset.class == AssetClass::Crypto;
    let Some(qty) = b.get("qty").and_then(body_number).filter(|q| *q > 0.0) else {
        return error(422, 40010001, "qty must be > 0");
    };
    let side = text("side").unwrap_or_default();
    if side != "buy" && side != "sell" {
        return error(422, 40010001, "invalid side");
    }
    let kind = text("type").unwrap_or_default();
    let tif = text("time_in_force").unwrap_or_default();
    let order_class = text("order_class").unwrap_or_else(|| "simple".into());
    if !asset.tradable {
        return error(422, 42210000, &format!("asset {symbol} is not tradable"));
    }
    if st.trading_blocked {
        return error(403, 40310000, "trading is blocked for this account");
    }
    if crypto && tif != "gtc" && tif != "ioc" {
        return error(422, 42210000, "invalid crypto time_in_force");
    }
    if crypto && order_class != "simple" && !order_class.is_empty() {
        return error(
            422,
            42210000,
            "crypto orders not allowed for advanced order_class",
        );
    }
    if !crypto && qty.fract() != 0.0 {
        if !asset.fractionable {
            return error(
                422,
                40010001,
                &format!("asset {symbol} is not fractionable"),
            );
        }
        if tif != "day" || order_class == "bracket" {
            return error(422, 42210000, "fractional orders must be simple DAY orders");
        }
    }
    if crypto && asset.min_order_size > 0.0 && qty < asset.min_order_size {
        return error(
            422,
            42210000,
            &format!("qty must be >= {}", num(asset.min_order_size)),
        );
    }
    let held = st.positions.get(&symbol).map(|p| p.qty).unwrap_or(0.0);
    if crypto && side == "sell" && qty > held + 1e-12 {
        let base = symbol.split('/').next().unwrap_or(&symbol);
        return error(
            403,
            40310000,
            &format!(
                "insufficient balance for {base} (requested: {}, available: {})",
                num(qty),
                num(held.max(0.0))
            ),
        );
    }
    if !crypto && side == "sell" && held > 0.0 {
        let available = held - st.held_for_orders(&symbol, "sell");
        if qty > available + 1e-12 && qty <= held + 1e-12 {
            return reply(
                403,
                json!({"code": 40310000,
                       "message": format!("insufficient qty available for order (requested: {}, available: {})", num(qty), num(available.max(0.0))),
                       "symbol": symbol, "available": num(available.max(0.0)),
                       "existing_qty": num(held), "held_for_orders": num(held - available)}),
            );
        }
    }
    let (mut tp, mut sl) = (None, None);
    if order_class == "bracket" {
        tp = b.pointer("/take_profit/limit_price").and_then(body_number);
        sl = b.pointer("/stop_loss/stop_price").and_then(body_number);
        if tp.is_none() || sl.is_none() {
            return error(
                422,
                40010001,
                "bracket orders require take_profit.limit_price and stop_loss.stop_price",
            );
        }
        if tif != "day" && tif != "gtc" {
            return error(422, 42210000, "bracket orders must be day or gtc");
        }
    }
    if let FillMode::Reject(message) = &st.mode {
        return error(403, 40310000, message);
    }
    let at = now();
    let id = st.new_id();
    let index = st.orders.len();
    st.orders.push(FakeOrder {
        id,
        client_order_id,
        symbol: symbol.clone(),
        crypto,
        side: side.clone(),
        qty,
        kind,
        time_in_force: tif.clone(),
        order_class: order_class.clone(),
        status: "accepted".into(),
        filled_qty: 0.0,
        filled_avg_price: None,
        limit_price: None,
        stop_price: None,
        legs: vec![],
        parent: None,
        created_at: at.clone(),
        updated_at: at.clone(),
        filled_at: None,
        canceled_at: None,
    });
    if order_class == "bracket" {
        let exit_side = if side == "buy" { "sell" } else { "buy" };
        for (kind, limit, stop) in [("limit", tp, None), ("stop", None, sl)] {
            let leg_id = st.new_id();
            let leg = FakeOrder {
                id: leg_id.clone(),
                client_order_id: leg_id,
                symbol: symbol.clone(),
                crypto,
                side: exit_side.into(),
                qty,
                kind: kind.into(),
                time_in_force: tif.clone(),
                order_class: "bracket".into(),
                status: "held".into(),
                filled_qty: 0.0,
                filled_avg_price: None,
                limit_price: limit,
                stop_price: stop,
                legs: vec![],
                parent: Some(index),
                created_at: at.clone(),
                updated_at: at.clone(),
                filled_at: None,
                canceled_at: None,
            };
            let leg_index = st.orders.len();
            st.orders.push(leg);
            st.orders[index].legs.push(leg_index);
        }
    }
    let price = st.prices.get(&symbol).copied();
    match (st.mode.clone(), price) {
        (FillMode::Immediate, Some(p)) => st.fill(index, qty, p),
        (FillMode::Partial(f), Some(p)) => st.fill(index, qty * f, p),
        _ => {}
    }
    reply(200, st.order_json(index, true))
}

fn close_position(st: &mut State, symbol: &str) -> Response<Body> {
    let pos = st.positions[symbol].clone();
    let side = if pos.qty > 0.0 { "sell" } else { "buy" };
    let held_for = st.held_for_orders(symbol, side);
    let available = pos.qty.abs() - held_for;
    if held_for > 0.0 {
        return reply(
            403,
            json!({"code": 40310000,
                   "message": format!("insufficient qty available for order (requested: {}, available: {})", num(pos.qty.abs()), num(available.max(0.0))),
                   "symbol": symbol, "available": num(available.max(0.0)),
                   "existing_qty": num(pos.qty.abs()), "held_for_orders": num(held_for)}),
        );
    }
    let at = now();
    let id = st.new_id();
    let index = st.orders.len();
    st.orders.push(FakeOrder {
        id: id.clone(),
        client_order_id: id,
        symbol: symbol.to_string(),
        crypto: pos.crypto,
        side: side.into(),
        qty: pos.qty.abs(),
        kind: "market".into(),
        time_in_force: if pos.crypto { "gtc" } else { "day" }.into(),
        order_class: "simple".into(),
        status: "accepted".into(),
        filled_qty: 0.0,
        filled_avg_price: None,
        limit_price: None,
        stop_price: None,
        legs: vec![],
        parent: None,
        created_at: at.clone(),
        updated_at: at,
        filled_at: None,
        canceled_at: None,
    });
    if let Some(p) = st.prices.get(symbol).copied() {
        st.fill(index, pos.qty.abs(), p);
    }
    reply(200, st.order_json(index, false))
}

/// Alpaca's trading API on 127.0.0.1 with its own runtime thread; lives as long as the value.
pub struct AlpacaFake {
    pub url: String,
    state: Shared,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AlpacaFake {
    pub fn start() -> AlpacaFake {
        let state: Shared = Arc::new(Mutex::new(State::new()));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let st = state.clone();
        let hang_rx = stop_rx.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                answer(st.clone(), hang_rx.clone(), method, uri, headers, body)
            },
        );
        let mut stop_rx = stop_rx;
        let (addr, thread) = super::serve_app(app, async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        });
        AlpacaFake {
            url: format!("http://{addr}"),
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// The keys it accepts (default `PKTEST` / `SECRETTEST`).
    pub fn set_keys(&self, key_id: &str, secret: &str) {
        let mut st = self.st();
        st.key_id = key_id.into();
        st.secret = secret.into();
    }

    pub fn set_account(
        &self,
        equity: f64,
        cash: f64,
        buying_power: f64,
        non_marginable_buying_power: f64,
    ) {
        let mut st = self.st();
        st.equity = equity;
        st.cash = cash;
        st.buying_power = buying_power;
        st.non_marginable_buying_power = non_marginable_buying_power;
    }

    pub fn block_trading(&self, blocked: bool) {
        self.st().trading_blocked = blocked;
    }

    /// `ACTIVE` by default; anything else stops crypto orders at the client's check.
    pub fn set_crypto_status(&self, status: &str) {
        self.st().crypto_status = status.into();
    }

    /// An asset, by its order symbol (`BTC/USD`, `AAPL`).
    pub fn set_asset(&self, symbol: &str, spec: AssetSpec) {
        self.st().assets.insert(symbol.into(), spec);
    }

    /// The price market orders fill at.
    pub fn set_price(&self, symbol: &str, price: f64) {
        self.st().prices.insert(symbol.into(), price);
    }

    /// How the next orders are answered (stays until changed).
    pub fn set_fill_mode(&self, mode: FillMode) {
        self.st().mode = mode;
    }

    /// Fills the open order with this client order id (or order id), or every open order on
    /// this symbol, at the symbol's price.
    pub fn fill_open(&self, symbol_or_id: &str) {
        let mut st = self.st();
        let targets: Vec<usize> = (0..st.orders.len())
            .filter(|i| {
                let o = &st.orders[*i];
                (o.client_order_id == symbol_or_id
                    || o.id == symbol_or_id
                    || o.symbol == symbol_or_id)
                    && matches!(o.status.as_str(), "new" | "accepted" | "partially_filled")
                    && o.kind == "market"
            })
            .collect();
        for i in targets {
            let o = &st.orders[i];
            let (rest, symbol) = (o.qty - o.filled_qty, o.symbol.clone());
            let price = st.prices.get(&symbol).copied().expect("set_price first");
            st.fill(i, rest, price);
        }
    }

    /// Fills the rest of a partly filled order (by client order id).
    pub fn complete(&self, client_order_id: &str) {
        self.fill_open(client_order_id);
    }

    /// Cancels an open order (by client order id); what filled stays filled.
    pub fn cancel(&self, client_order_id: &str) {
        let mut st = self.st();
        let i = st.find_order(client_order_id).expect("no such order");
        st.orders[i].status = "canceled".into();
        st.orders[i].canceled_at = Some(now());
    }

    /// The next request to `route` (`"POST /v2/orders"`, `"GET /v2/account"`, a path prefix
    /// such as `"GET /v2/assets"`) is answered with this status and body instead.
    pub fn fail_next(&self, route: &str, status: u16, body: &str, retry_after: Option<u64>) {
        self.st().failures.push(Failure {
            route: route.into(),
            status,
            body: body.into(),
            retry_after,
        });
    }

    /// The next order is taken (it exists at the broker, filled per the fill mode) but its
    /// request is never answered: the connection stays open until the fake stops.
    pub fn hang_next_order(&self) {
        self.st().hang_next = true;
    }

    /// A position opened elsewhere (signed quantity: negative is short).
    pub fn add_external_position(&self, symbol: &str, qty: f64, avg_entry: f64) {
        let mut st = self.st();
        let crypto = symbol.contains('/');
        st.move_position(symbol, crypto, qty, avg_entry);
    }

    /// Fills the open `take_profit` or `stop_loss` leg on `symbol` at `price`, closing the
    /// position (the other leg is cancelled).
    pub fn trigger_leg(&self, symbol: &str, which: &str, price: f64) {
        let kind = match which {
            "take_profit" => "limit",
            "stop_loss" => "stop",
            other => panic!("no such leg: {other}"),
        };
        let mut st = self.st();
        let i = (0..st.orders.len())
            .find(|i| {
                let o = &st.orders[*i];
                o.symbol == symbol && o.parent.is_some() && o.kind == kind && o.status == "new"
            })
            .expect("no open leg of that kind on that symbol");
        let qty = st.orders[i].qty;
        st.fill(i, qty, price);
    }

    /// Every order the broker holds (legs included), as Alpaca shows them (nested).
    pub fn orders(&self) -> Vec<Value> {
        let st = self.st();
        (0..st.orders.len())
            .map(|i| st.order_json(i, true))
            .collect()
    }

    /// The order with this client order id, as Alpaca shows it (nested).
    pub fn order(&self, client_order_id: &str) -> Option<Value> {
        let st = self.st();
        st.orders
            .iter()
            .position(|o| o.client_order_id == client_order_id)
            .map(|i| st.order_json(i, true))
    }

    /// Every `POST /v2/orders` received, refused ones included.
    pub fn post_count(&self) -> usize {
        self.st().post_count
    }

    /// The JSON body of every `POST /v2/orders` received, in order.
    pub fn order_bodies(&self) -> Vec<Value> {
        self.st().order_bodies.clone()
    }

    /// Every request received: `"METHOD /path?query"`.
    pub fn requests(&self) -> Vec<String> {
        self.st().requests.clone()
    }

    /// The positions as `GET /v2/positions` answers them.
    pub fn positions(&self) -> Vec<Value> {
        let st = self.st();
        st.positions
            .iter()
            .map(|(s, p)| st.position_json(s, p))
            .collect()
    }
}

impl Drop for AlpacaFake {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
