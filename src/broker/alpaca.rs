//! Alpaca's trading API (v2) behind [`Broker`]: the account, assets, positions and orders of
//! one Alpaca account, paper by default.
//!
//! Sources followed (no network here: read from Alpaca's docs pages and official SDKs):
//! - paths and bodies: alpacahq/alpaca-py `alpaca/trading/client.py` (`/orders`,
//!   `/orders:by_client_order_id?client_order_id=…`, `/orders/{id}?nested=`, `/positions`,
//!   `/assets/{symbol}`, `/account`), alpacahq/alpaca-trade-api-go `alpaca/rest.go` (same
//!   paths, the `APCA-API-KEY-ID`/`APCA-API-SECRET-KEY` headers, errors as `{"code","message"}`);
//! - fields: alpaca-py `alpaca/trading/models.py` (Order, Position, Asset, TradeAccount: numbers
//!   are strings) and `enums.py` (order statuses; crypto: order class simple only, time in
//!   force gtc or ioc);
//! - crypto symbols: orders take `BTC/USD`; positions come back compact (`BTCUSD`) and
//!   `/v2/positions/BTC/USD` is a 404 (alpaca-py issues #179, #490, #537 and PR #538);
//!   `GET /v2/assets/{symbol}`: "For crypto, the symbol has to follow old symbology, e.g.
//!   BTCUSD. For coin pairs … use the URL encoded version, e.g. /v2/assets/BTC%2FUSDT"
//!   (docs.alpaca.markets crypto-api/assets);
//! - fractional shares: "supported only for day orders and any other type of orders will
//!   result in API error" (docs.alpaca.markets/docs/trading-1; alpaca.markets support "how can
//!   i pass a fractional order": market and day only), so a bracket takes whole shares;
//! - stock prices: 2 decimals at $1 and above, 4 below (alpaca-trade-api-go
//!   `alpaca/trading.go` RoundLimitPrice, written for the 42210000 "sub-penny increment" error);
//! - crypto is bought with cash only: `non_marginable_buying_power` ("cryptocurrencies are not
//!   eligible assets to be used as collateral for margin accounts", crypto-api/account).
//!
//! Not verified (no page found): whether `orders:by_client_order_id` takes `nested=true` (the
//! SDKs never send it), so bracket legs are read from `GET /v2/orders/{id}?nested=true`; the
//! exact time Alpaca takes to release shares held by bracket legs after a cancel.

use super::{
    Account, Broker, BrokerError, BrokerExit, ExitsHeldBy, Holding, Intent, Order, OrderUpdate,
};
use crate::domain::Side;
use crate::domain::lifecycle::OrderKind;
use crate::domain::money::{dec, fmt_price, fmt_qty, mul_exact, round_dp};
use crate::market::rest::retry_after;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Alpaca's paper trading host (the default).
pub const PAPER_URL: &str = "https://paper-api.alpaca.markets";
/// Alpaca's live trading host: real money.
pub const LIVE_URL: &str = "https://api.alpaca.markets";

const KEY_HEADER: &str = "APCA-API-KEY-ID";
const SECRET_HEADER: &str = "APCA-API-SECRET-KEY";

/// The quote currencies of Alpaca's crypto pairs, used to split a compact position symbol
/// (`BTCUSDT` → `BTC/USDT`). Longer names first, so `USDT` wins over `USD`.
const CRYPTO_QUOTES: [&str; 4] = ["USDT", "USDC", "USD", "BTC"];

/// Largest answer read from the trading API.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How long an asset's rules are trusted before they are asked for again.
const ASSET_TTL: Duration = Duration::from_secs(300);

/// Duplicate `client_order_id` (422): the order is already at the broker.
const DUPLICATE_CLIENT_ORDER_ID: i64 = 40010001;

/// An Alpaca account's API keys. They go into two request headers and nowhere else: not into
/// an error, a log line or `Debug`.
#[derive(Clone)]
pub struct AlpacaKeys {
    pub key_id: String,
    pub secret: String,
}

impl std::fmt::Debug for AlpacaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlpacaKeys { key_id: <redacted>, secret: <redacted> }")
    }
}

impl AlpacaKeys {
    /// The paper keys (`APCA_API_KEY_ID`, `APCA_API_SECRET_KEY`) or, with `live`, the live
    /// keys in their own variables (`APCA_LIVE_API_KEY_ID`, `APCA_LIVE_API_SECRET_KEY`): paper
    /// keys never reach the live host. The error names the variable that is missing.
    pub fn from_env(live: bool) -> Result<AlpacaKeys, String> {
        let (id_var, secret_var) = if live {
            ("APCA_LIVE_API_KEY_ID", "APCA_LIVE_API_SECRET_KEY")
        } else {
            ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY")
        };
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{name} is not set (Alpaca keys come from the environment)"))
        };
        Ok(AlpacaKeys {
            key_id: var(id_var)?,
            secret: var(secret_var)?,
        })
    }
}

/// What an asset allows, from `GET /v2/assets/{symbol}`.
#[derive(Debug, Clone, PartialEq)]
struct Asset {
    crypto: bool,
    tradable: bool,
    active: bool,
    fractionable: bool,
    shortable: bool,
    easy_to_borrow: bool,
    min_order_size: Option<f64>,
    min_trade_increment: Option<f64>,
}

/// The account figures `check` needs.
#[derive(Debug, Clone, PartialEq)]
struct AccountInfo {
    equity: f64,
    cash: f64,
    buying_power: f64,
    /// Cash-only buying power: what crypto may use.
    non_marginable_buying_power: f64,
    /// Reasons no order is taken at all.
    blocked: Vec<String>,
    /// Why crypto orders are not taken (the crypto status is not active).
    crypto_blocked: Option<String>,
}

/// An answer from the trading API, sorted by what the caller does with it.
#[derive(Debug)]
enum Answer {
    /// 2xx with its body (`Null` when empty).
    Ok(Value),
    /// An HTTP error with Alpaca's `{"code", "message"}` when it sent them.
    Status {
        status: u16,
        code: Option<i64>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer (timeout, connection) or one that could not be read.
    Failed { why: String, unreadable: bool },
}

impl Answer {
    fn into_error(self, what: &str) -> BrokerError {
        match self {
            Answer::Ok(_) => BrokerError::Other(format!("{what}: unexpected answer")),
            Answer::Status {
                status,
                code,
                message,
                retry_after,
            } => {
                let text = status_text(status, code, &message);
                match status {
                    401 | 403 => BrokerError::Auth(format!("{what}: {text}")),
                    429 => BrokerError::RateLimited(match retry_after {
                        Some(d) => format!("{what}: {text}; retry after {}s", d.as_secs()),
                        None => format!("{what}: {text}"),
                    }),
                    s if s >= 500 => BrokerError::Unavailable(format!("{what}: {text}")),
                    _ => BrokerError::Other(format!("{what}: {text}")),
                }
            }
            Answer::Failed { why, unreadable } => {
                if unreadable {
                    BrokerError::Other(format!("{what}: {why}"))
                } else {
                    BrokerError::Unavailable(format!("{what}: {why}"))
                }
            }
        }
    }
}

fn status_text(status: u16, code: Option<i64>, message: &str) -> String {
    let message = if status == 401 {
        // Alpaca's 401 says "request is not authorized"; say which thing failed.
        "the keys were refused"
    } else if message.is_empty() {
        "no message"
    } else {
        message
    };
    match code {
        Some(c) => format!("{message} (HTTP {status}, code {c})"),
        None => format!("{message} (HTTP {status})"),
    }
}

/// Alpaca's trading API for one account.
pub struct AlpacaBroker {
    url: String,
    live: bool,
    timeout: Duration,
    http: reqwest::Client,
    assets: Mutex<HashMap<String, (Instant, Asset)>>,
}

impl std::fmt::Debug for AlpacaBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlpacaBroker")
            .field("url", &crate::net::redact_url(&self.url))
            .field("keys", &"<redacted>")
            .finish()
    }
}

impl AlpacaBroker {
    /// A client of the trading API at `trading_url` ([`PAPER_URL`], [`LIVE_URL`] or a test
    /// server); every request gives up after `timeout`.
    pub fn new(
        trading_url: &str,
        keys: AlpacaKeys,
        timeout: Duration,
    ) -> Result<AlpacaBroker, String> {
        let header = |value: &str, what: &str| {
            let mut v = HeaderValue::from_str(value)
                .map_err(|_| format!("the Alpaca {what} is not a valid header value"))?;
            v.set_sensitive(true);
            Ok::<_, String>(v)
        };
        let mut headers = HeaderMap::new();
        headers.insert(KEY_HEADER, header(&keys.key_id, "key id")?);
        headers.insert(SECRET_HEADER, header(&keys.secret, "secret key")?);
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .default_headers(headers)
            .redirect(crate::net::same_origin_redirects())
            .user_agent(concat!("autotrade-tui/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let url = trading_url.trim_end_matches('/').to_string();
        Ok(AlpacaBroker {
            live: url == LIVE_URL,
            url,
            timeout,
            http,
            assets: Mutex::new(HashMap::new()),
        })
    }

    /// The trading API's address.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Answer::Failed {
                    why: describe(&e),
                    unreadable: false,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = match read_body(response).await {
            Ok(b) => b,
            Err(why) => {
                return Answer::Failed {
                    why,
                    unreadable: false,
                };
            }
        };
        let value: Option<Value> = if body.iter().all(u8::is_ascii_whitespace) {
            Some(Value::Null)
        } else {
            serde_json::from_slice(&body).ok()
        };
        if (200..300).contains(&status) {
            return match value {
                Some(v) => Answer::Ok(v),
                None => Answer::Failed {
                    why: format!("the answer (HTTP {status}) is not JSON"),
                    unreadable: true,
                },
            };
        }
        let value = value.unwrap_or(Value::Null);
        Answer::Status {
            status,
            code: value.get("code").and_then(Value::as_i64),
            message: value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect(),
            retry_after,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.url)))
            .await
    }

    async fn get_order(&self, client_order_id: &str) -> Answer {
        self.send(
            self.http
                .get(format!("{}/v2/orders:by_client_order_id", self.url))
                .query(&[("client_order_id", client_order_id)]),
        )
        .await
    }

    async fn account_info(&self) -> Result<AccountInfo, BrokerError> {
        match self.get("/v2/account").await {
            Answer::Ok(v) => parse_account(&v, self.live)
                .map_err(|e| BrokerError::Other(format!("the account: {e}"))),
            other => Err(other.into_error("the account")),
        }
    }

    async fn raw_positions(&self) -> Result<Vec<Holding>, BrokerError> {
        match self.get("/v2/positions").await {
            Answer::Ok(v) => {
                parse_positions(&v).map_err(|e| BrokerError::Other(format!("the positions: {e}")))
            }
            other => Err(other.into_error("the positions")),
        }
    }

    /// The asset's rules: `Ok(None)` when Alpaca does not know it.
    async fn asset(&self, symbol: &str) -> Result<Option<Asset>, String> {
        if let Ok(cache) = self.assets.lock()
            && let Some((at, asset)) = cache.get(symbol)
            && at.elapsed() < ASSET_TTL
        {
            return Ok(Some(asset.clone()));
        }
        let path = format!("/v2/assets/{}", asset_path_symbol(symbol));
        match self.get(&path).await {
            Answer::Ok(v) => {
                let asset = parse_asset(&v).map_err(|e| format!("the asset {symbol}: {e}"))?;
                if let Ok(mut cache) = self.assets.lock() {
                    cache.insert(symbol.to_string(), (Instant::now(), asset.clone()));
                }
                Ok(Some(asset))
            }
            Answer::Status { status: 404, .. } => Ok(None),
            other => Err(other.into_error(&format!("the asset {symbol}")).to_string()),
        }
    }

    /// Cancels the open orders on a stock symbol (the legs of a bracket hold its shares) and
    /// waits, within the timeout, until none is left open.
    async fn cancel_open_orders(&self, symbol: &str) -> Result<(), String> {
        let list = || {
            self.send(self.http.get(format!("{}/v2/orders", self.url)).query(&[
                ("status", "open"),
                ("symbols", symbol),
                ("limit", "500"),
            ]))
        };
        let open = match list().await {
            Answer::Ok(Value::Array(orders)) => orders,
            Answer::Ok(_) => return Err("the list of open orders is not a list".into()),
            other => return Err(other.into_error("the open orders").to_string()),
        };
        let ids: Vec<String> = open
            .iter()
            .filter(|o| o.get("symbol").and_then(Value::as_str) == Some(symbol))
            .filter_map(|o| o.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        for id in &ids {
            match self
                .send(self.http.delete(format!("{}/v2/orders/{id}", self.url)))
                .await
            {
                // 422: no longer cancelable (it filled or was cancelled with its sibling leg).
                Answer::Ok(_) | Answer::Status { status: 404, .. } => {}
                Answer::Status { status: 422, .. } => {}
                other => return Err(other.into_error("cancelling an open order").to_string()),
            }
        }
        // A cancel is asynchronous at Alpaca; the shares are free once nothing is open. Wait
        // at most one timeout, then send anyway: Alpaca answers a refusal if they are not.
        let started = Instant::now();
        while started.elapsed() < self.timeout {
            match list().await {
                Answer::Ok(Value::Array(orders))
                    if !orders
                        .iter()
                        .any(|o| o.get("symbol").and_then(Value::as_str) == Some(symbol)) =>
                {
                    return Ok(());
                }
                Answer::Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                other => return Err(other.into_error("the open orders").to_string()),
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Broker for AlpacaBroker {
    fn name(&self) -> &'static str {
        "alpaca"
    }

    fn is_ledger(&self) -> bool {
        false
    }

    fn exits_held_by(&self, symbol: &str, quantity: f64) -> ExitsHeldBy {
        // Brackets are for US stocks in whole shares: crypto takes simple orders only, and a
        // fractional quantity must be a simple day market order.
        if !is_crypto(symbol) && quantity.is_finite() && quantity >= 1.0 && quantity.fract() == 0.0
        {
            ExitsHeldBy::Broker
        } else {
            ExitsHeldBy::Engine
        }
    }

    async fn check(&self, intent: &Intent<'_>) -> Result<(), String> {
        let symbol = intent.symbol;
        let qty = intent.quantity;
        if !(qty.is_finite() && qty > 0.0) {
            return Err(format!("the quantity {} must be above 0", fmt_qty(qty)));
        }
        if !(intent.price.is_finite() && intent.price > 0.0) {
            return Err(format!(
                "the price {} must be above 0",
                fmt_price(intent.price)
            ));
        }
        let asset = match self.asset(symbol).await {
            Ok(Some(a)) => a,
            Ok(None) => return Err(format!("Alpaca does not know the asset {symbol}")),
            Err(e) => return Err(format!("Alpaca could not be asked about {symbol}: {e}")),
        };
        if !asset.tradable || !asset.active {
            return Err(format!("{symbol} is not tradable at Alpaca"));
        }
        let opening = !intent.closing;
        if asset.crypto {
            if intent.side == Side::Sell && opening {
                return Err(format!(
                    "crypto cannot be sold short at Alpaca: a sell of {symbol} must close a holding"
                ));
            }
            if let Some(min) = asset.min_order_size
                && below(qty, min)
            {
                return Err(format!(
                    "{} {symbol} is below Alpaca's minimum order size of {}",
                    fmt_qty(qty),
                    fmt_qty(min)
                ));
            }
            if let Some(step) = asset.min_trade_increment
                && !is_multiple(qty, step)
            {
                return Err(format!(
                    "{} {symbol} is not a multiple of Alpaca's trade increment of {}",
                    fmt_qty(qty),
                    fmt_qty(step)
                ));
            }
        } else {
            if qty.fract() != 0.0 && !asset.fractionable {
                return Err(format!(
                    "{symbol} cannot be traded in fractions at Alpaca (quantity {})",
                    fmt_qty(qty)
                ));
            }
            if intent.side == Side::Sell && opening && !(asset.shortable && asset.easy_to_borrow) {
                let why = if asset.shortable {
                    "hard to borrow"
                } else {
                    "not shortable"
                };
                return Err(format!("{symbol} cannot be sold short at Alpaca ({why})"));
            }
        }
        if asset.crypto && intent.side == Side::Sell && intent.closing {
            let held: f64 = match self.raw_positions().await {
                Ok(list) => list
                    .iter()
                    .filter(|h| h.symbol == symbol && h.side == Side::Buy)
                    .map(|h| h.quantity)
                    .sum(),
                Err(e) => return Err(format!("Alpaca could not be asked for the holdings: {e}")),
            };
            if below(held, qty) {
                return Err(format!(
                    "cannot sell {} {symbol}: Alpaca holds {} (crypto cannot be sold short)",
                    fmt_qty(qty),
                    fmt_qty(held)
                ));
            }
        }
        let account = match self.account_info().await {
            Ok(a) => a,
            Err(e) => return Err(format!("Alpaca could not be asked for the account: {e}")),
        };
        let mut blocked = account.blocked.clone();
        if asset.crypto
            && let Some(why) = &account.crypto_blocked
        {
            blocked.push(why.clone());
        }
        if !blocked.is_empty() {
            return Err(format!(
                "Alpaca will not take orders: {}",
                blocked.join("; ")
            ));
        }
        if opening {
            let needed = mul_exact(qty, intent.price);
            let (available, which) = if asset.crypto {
                (
                    account.non_marginable_buying_power,
                    "cash buying power for crypto",
                )
            } else {
                (account.buying_power, "buying power")
            };
            if needed > available {
                return Err(format!(
                    "{} {symbol} at {} needs {}; Alpaca's {which} is {}",
                    fmt_qty(qty),
                    fmt_price(intent.price),
                    fmt_price(needed),
                    fmt_price(available)
                ));
            }
        }
        Ok(())
    }

    async fn submit(&self, order: &Order) -> OrderUpdate {
        let symbol = order.symbol.as_str();
        let Some(qty) = qty_string(order.quantity) else {
            return OrderUpdate::Rejected {
                reason: format!("the quantity {} must be above 0", fmt_qty(order.quantity)),
            };
        };
        let crypto = is_crypto(symbol);
        if order.kind == OrderKind::Close
            && !crypto
            && let Err(e) = self.cancel_open_orders(symbol).await
        {
            // Nothing was sent: the desk may try again.
            return OrderUpdate::Rejected {
                reason: format!(
                    "could not cancel the open orders on {symbol} before closing it: {e}"
                ),
            };
        }
        // The desk may keep a position's exits (a trailing stop moves with every price): then
        // no bracket, whatever the symbol could take.
        let bracket = order.kind == OrderKind::Open
            && order
                .exits_held_by
                .unwrap_or_else(|| self.exits_held_by(symbol, order.quantity))
                == ExitsHeldBy::Broker;
        let mut body = json!({
            "client_order_id": order.client_order_id,
            "symbol": symbol,
            "qty": qty,
            "side": side_str(order.side),
            "type": "market",
            // Crypto: gtc or ioc. Stocks: fractional orders must be day orders; a bracket
            // (whole shares) is gtc so its exits outlive the session.
            "time_in_force": if crypto || bracket { "gtc" } else { "day" },
        });
        if bracket {
            let (Some(tp), Some(sl)) = (
                stock_price_string(order.take_profit),
                stock_price_string(order.stop_loss),
            ) else {
                return OrderUpdate::Rejected {
                    reason: format!(
                        "the take-profit {} and stop-loss {} must be above 0 for a bracket order",
                        fmt_price(order.take_profit),
                        fmt_price(order.stop_loss)
                    ),
                };
            };
            body["order_class"] = json!("bracket");
            body["take_profit"] = json!({ "limit_price": tp });
            body["stop_loss"] = json!({ "stop_price": sl });
        }
        let answer = self
            .send(
                self.http
                    .post(format!("{}/v2/orders", self.url))
                    .json(&body),
            )
            .await;
        match answer {
            Answer::Ok(v) => order_update(&v),
            Answer::Status {
                status: 422,
                code: Some(DUPLICATE_CLIENT_ORDER_ID),
                ..
            } => {
                // Already at the broker (an earlier send whose answer was lost): say what
                // became of that one, never send a second.
                self.lookup(&order.client_order_id).await
            }
            Answer::Status {
                status,
                code,
                message,
                ..
            } => match status {
                429 => OrderUpdate::Unknown {
                    why: format!(
                        "Alpaca is rate limiting: {}",
                        status_text(status, code, &message)
                    ),
                },
                s if s >= 500 => OrderUpdate::Unknown {
                    why: format!("Alpaca failed: {}", status_text(status, code, &message)),
                },
                _ => OrderUpdate::Rejected {
                    reason: format!(
                        "Alpaca refused the order: {}",
                        status_text(status, code, &message)
                    ),
                },
            },
            Answer::Failed { why, .. } => OrderUpdate::Unknown {
                why: format!("no answer from Alpaca to the order: {why}"),
            },
        }
    }

    async fn lookup(&self, client_order_id: &str) -> OrderUpdate {
        match self.get_order(client_order_id).await {
            Answer::Ok(v) => order_update(&v),
            Answer::Status { status: 404, .. } => OrderUpdate::NotFound,
            Answer::Status {
                status,
                code,
                message,
                ..
            } => OrderUpdate::Unknown {
                why: format!(
                    "Alpaca did not say what became of the order: {}",
                    status_text(status, code, &message)
                ),
            },
            Answer::Failed { why, .. } => OrderUpdate::Unknown {
                why: format!("no answer from Alpaca about the order: {why}"),
            },
        }
    }

    async fn account(&self) -> Result<Option<Account>, BrokerError> {
        let info = self.account_info().await?;
        let mut blocked = info.blocked;
        blocked.extend(info.crypto_blocked);
        Ok(Some(Account {
            equity: info.equity,
            cash: info.cash,
            buying_power: info.buying_power,
            blocked: if blocked.is_empty() {
                None
            } else {
                Some(blocked.join("; "))
            },
        }))
    }

    async fn holdings(&self) -> Result<Option<Vec<Holding>>, BrokerError> {
        self.raw_positions().await.map(Some)
    }

    async fn exit_fill(&self, client_order_id: &str) -> Result<Option<BrokerExit>, BrokerError> {
        let parent = match self.get_order(client_order_id).await {
            Answer::Ok(v) => v,
            Answer::Status { status: 404, .. } => return Ok(None),
            other => return Err(other.into_error("the bracket order")),
        };
        if parent.get("order_class").and_then(Value::as_str) != Some("bracket") {
            return Ok(None);
        }
        let legs = match parent.get("legs").and_then(Value::as_array) {
            Some(legs) if !legs.is_empty() => legs.clone(),
            _ => {
                let Some(id) = parent.get("id").and_then(Value::as_str) else {
                    return Err(BrokerError::Other(
                        "the bracket order has no id".to_string(),
                    ));
                };
                let path = format!("/v2/orders/{}?nested=true", encode_segment(id));
                match self.get(&path).await {
                    Answer::Ok(v) => v
                        .get("legs")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                    other => return Err(other.into_error("the bracket order's legs")),
                }
            }
        };
        for leg in &legs {
            let status = leg.get("status").and_then(Value::as_str).unwrap_or("");
            let filled = positive(leg, "filled_qty");
            let price = positive(leg, "filled_avg_price");
            let ended = matches!(
                status,
                "filled" | "canceled" | "expired" | "done_for_day" | "replaced"
            );
            let (true, Some(quantity), Some(price)) = (ended, filled, price) else {
                continue;
            };
            let reason = match leg.get("type").and_then(Value::as_str) {
                Some("limit") => "take_profit",
                Some("stop") | Some("stop_limit") | Some("trailing_stop") => "stop_loss",
                _ => continue,
            };
            return Ok(Some(BrokerExit {
                reason,
                quantity,
                price,
            }));
        }
        Ok(None)
    }
}

/// `BTC/USD` and other `BASE/QUOTE` pairs are crypto; anything else is a US stock ticker.
pub fn is_crypto(symbol: &str) -> bool {
    symbol.contains('/')
}

/// A position's symbol in the program's form: Alpaca reports crypto compact (`BTCUSD`), and
/// the program writes it `BTC/USD`.
pub fn symbol_from_position(symbol: &str, asset_class: &str) -> String {
    if asset_class != "crypto" || symbol.contains('/') {
        return symbol.to_string();
    }
    for quote in CRYPTO_QUOTES {
        if let Some(base) = symbol.strip_suffix(quote)
            && !base.is_empty()
        {
            return format!("{base}/{quote}");
        }
    }
    symbol.to_string()
}

/// How `GET /v2/assets/{symbol}` takes a symbol: USD pairs in the old compact symbology
/// (`BTCUSD`), other coin pairs with the slash percent-encoded (`BTC%2FUSDT`), stocks as
/// they are.
fn asset_path_symbol(symbol: &str) -> String {
    match symbol.split_once('/') {
        Some((base, "USD")) => format!("{base}USD"),
        Some((base, quote)) => format!("{}%2F{}", encode_segment(base), encode_segment(quote)),
        None => encode_segment(symbol),
    }
}

fn encode_segment(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'-').remove(b'_');
    utf8_percent_encode(s, SEGMENT).to_string()
}

fn side_str(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// A quantity as Alpaca takes it: a string, up to 9 decimals, no exponent.
fn qty_string(q: f64) -> Option<String> {
    if !(q.is_finite() && q > 0.0) {
        return None;
    }
    dec(q).map(|d| d.round_dp(9).normalize().to_string())
}

/// A stock order price as Alpaca accepts it: 2 decimals at $1 and above, 4 below.
fn stock_price_string(p: f64) -> Option<String> {
    if !(p.is_finite() && p > 0.0) {
        return None;
    }
    let dp = if p >= 1.0 { 2 } else { 4 };
    let r = round_dp(p, dp);
    (r > 0.0).then(|| format!("{r:.*}", dp as usize))
}

/// `a < b` beyond rounding noise.
fn below(a: f64, b: f64) -> bool {
    match (dec(a), dec(b)) {
        (Some(a), Some(b)) => a < b,
        _ => a < b,
    }
}

/// Whether `qty` is a whole number of `step`s (in decimal: 0.0003 is 3 × 0.0001).
fn is_multiple(qty: f64, step: f64) -> bool {
    if !(step.is_finite() && step > 0.0) {
        return true;
    }
    match (dec(qty), dec(step)) {
        (Some(q), Some(s)) => q.checked_rem(s).is_some_and(|r| r.is_zero()),
        _ => true,
    }
}

/// A number Alpaca sends as a string (or, leniently, as a number); `None` when absent, null
/// or not a finite number.
fn number(v: &Value, key: &str) -> Option<f64> {
    let x = match v.get(key)? {
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    x.is_finite().then_some(x)
}

fn positive(v: &Value, key: &str) -> Option<f64> {
    number(v, key).filter(|x| *x > 0.0)
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// What an order object says of the order.
fn order_update(v: &Value) -> OrderUpdate {
    let Some(status) = v.get("status").and_then(Value::as_str) else {
        return OrderUpdate::Unknown {
            why: "Alpaca's answer has no order status".to_string(),
        };
    };
    let filled_qty = number(v, "filled_qty").unwrap_or(0.0);
    let fill = if filled_qty > 0.0 {
        match positive(v, "filled_avg_price") {
            Some(p) => Some((filled_qty, p)),
            None => {
                return OrderUpdate::Unknown {
                    why: format!(
                        "Alpaca says {} filled ({status}) but gives no fill price",
                        fmt_qty(filled_qty)
                    ),
                };
            }
        }
    } else if filled_qty < 0.0 {
        return OrderUpdate::Unknown {
            why: "Alpaca's answer has a negative filled quantity".to_string(),
        };
    } else {
        None
    };
    match status {
        "filled" => match fill {
            Some((quantity, price)) => OrderUpdate::Filled { quantity, price },
            None => OrderUpdate::Unknown {
                why: "Alpaca says filled but gives no filled quantity".to_string(),
            },
        },
        "partially_filled" => OrderUpdate::Working { filled: fill },
        "new"
        | "accepted"
        | "pending_new"
        | "accepted_for_bidding"
        | "pending_cancel"
        | "pending_replace"
        | "pending_review"
        | "held"
        | "stopped"
        | "suspended"
        | "calculated" => match (status, fill) {
            // `calculated`: done and filled, settlement figures pending.
            ("calculated", Some((quantity, price))) => OrderUpdate::Filled { quantity, price },
            (_, filled) => OrderUpdate::Working { filled },
        },
        "canceled" | "expired" | "rejected" | "done_for_day" | "replaced" => match fill {
            Some((quantity, price)) => OrderUpdate::Filled { quantity, price },
            None => OrderUpdate::Rejected {
                reason: match status {
                    "rejected" => "Alpaca rejected the order".to_string(),
                    "canceled" => "the order was cancelled at Alpaca with nothing filled".into(),
                    "replaced" => "the order was replaced at Alpaca".into(),
                    other => format!("the order ended at Alpaca ({other}) with nothing filled"),
                },
            },
        },
        other => OrderUpdate::Unknown {
            why: format!("Alpaca answered an order status this program does not know: {other:?}"),
        },
    }
}

fn parse_account(v: &Value, live: bool) -> Result<AccountInfo, String> {
    let req = |key: &str| number(v, key).ok_or_else(|| format!("no readable {key}"));
    let equity = req("equity")?;
    let cash = req("cash")?;
    let buying_power = req("buying_power")?;
    // Older answers may lack it; cash is what a cash-only purchase can use then.
    let non_marginable_buying_power =
        number(v, "non_marginable_buying_power").unwrap_or(cash.max(0.0));
    let mut blocked = Vec::new();
    if flag(v, "account_blocked") {
        blocked.push("the account is blocked".to_string());
    }
    if flag(v, "trading_blocked") {
        blocked.push("trading is blocked on the account".to_string());
    }
    if flag(v, "trade_suspended_by_user") {
        blocked.push("trading is suspended by the account's owner".to_string());
    }
    if let Some(status) = v.get("status").and_then(Value::as_str)
        && status != "ACTIVE"
    {
        blocked.push(format!("the account status is {status}"));
    }
    // PAPER_ONLY appears in Alpaca's own account example; a paper account trades crypto.
    let crypto_blocked = match v.get("crypto_status").and_then(Value::as_str) {
        None | Some("ACTIVE") => None,
        Some("PAPER_ONLY") if !live => None,
        Some(other) => Some(format!(
            "crypto trading is not active (crypto status {other})"
        )),
    };
    Ok(AccountInfo {
        equity,
        cash,
        buying_power,
        non_marginable_buying_power,
        blocked,
        crypto_blocked,
    })
}

fn parse_positions(v: &Value) -> Result<Vec<Holding>, String> {
    let list = v.as_array().ok_or("the answer is not a list")?;
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        let raw = p
            .get("symbol")
            .and_then(Value::as_str)
            .ok_or("a position without a symbol")?;
        let class = p.get("asset_class").and_then(Value::as_str).unwrap_or("");
        let symbol = symbol_from_position(raw, class);
        let qty = number(p, "qty").ok_or_else(|| format!("{symbol}: no readable qty"))?;
        // A short's qty may come negative; the side says which way.
        let side = match p.get("side").and_then(Value::as_str) {
            Some("long") => Side::Buy,
            Some("short") => Side::Sell,
            _ if qty < 0.0 => Side::Sell,
            _ => Side::Buy,
        };
        let quantity = qty.abs();
        if quantity == 0.0 {
            continue;
        }
        let avg_entry_price = positive(p, "avg_entry_price")
            .ok_or_else(|| format!("{symbol}: no readable avg_entry_price above 0"))?;
        out.push(Holding {
            symbol,
            side,
            quantity,
            avg_entry_price,
        });
    }
    Ok(out)
}

fn parse_asset(v: &Value) -> Result<Asset, String> {
    let class = v
        .get("class")
        .and_then(Value::as_str)
        .ok_or("no asset class")?;
    let step = |key: &str| number(v, key).filter(|x| *x > 0.0);
    Ok(Asset {
        crypto: class == "crypto",
        tradable: flag(v, "tradable"),
        active: v.get("status").and_then(Value::as_str).unwrap_or("active") == "active",
        fractionable: flag(v, "fractionable"),
        shortable: flag(v, "shortable"),
        easy_to_borrow: flag(v, "easy_to_borrow"),
        min_order_size: step("min_order_size"),
        min_trade_increment: step("min_trade_increment"),
    })
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(format!("answer larger than {MAX_BODY_BYTES} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(describe(&e)),
        }
    }
}

/// A request error in words, without the URL or headers.
fn describe(e: &reqwest::Error) -> String {
    crate::market::rest::without_url(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_crypto_positions_map_back_to_pairs() {
        assert_eq!(symbol_from_position("BTCUSD", "crypto"), "BTC/USD");
        assert_eq!(symbol_from_position("ETHUSDT", "crypto"), "ETH/USDT");
        assert_eq!(symbol_from_position("SOLUSDC", "crypto"), "SOL/USDC");
        assert_eq!(symbol_from_position("ETHBTC", "crypto"), "ETH/BTC");
        assert_eq!(symbol_from_position("BTC/USD", "crypto"), "BTC/USD");
        assert_eq!(symbol_from_position("AAPL", "us_equity"), "AAPL");
        // A stock whose ticker ends like a currency stays as it is.
        assert_eq!(symbol_from_position("ABUSD", "us_equity"), "ABUSD");
    }

    #[test]
    fn asset_paths_follow_alpacas_symbology() {
        assert_eq!(asset_path_symbol("BTC/USD"), "BTCUSD");
        assert_eq!(asset_path_symbol("BTC/USDT"), "BTC%2FUSDT");
        assert_eq!(asset_path_symbol("BRK.B"), "BRK.B");
    }

    #[test]
    fn numbers_go_out_as_strings_alpaca_accepts() {
        assert_eq!(qty_string(0.5).as_deref(), Some("0.5"));
        assert_eq!(qty_string(10.0).as_deref(), Some("10"));
        assert_eq!(qty_string(0.0), None);
        assert_eq!(qty_string(f64::NAN), None);
        assert_eq!(stock_price_string(187.456).as_deref(), Some("187.46"));
        assert_eq!(stock_price_string(0.60127).as_deref(), Some("0.6013"));
        assert_eq!(stock_price_string(-1.0), None);
    }

    #[test]
    fn increments_are_checked_in_decimal() {
        assert!(is_multiple(0.0003, 0.0001));
        assert!(!is_multiple(0.00015, 0.0001));
        assert!(below(0.00009, 0.0001));
        assert!(!below(0.0001, 0.0001));
    }

    #[test]
    fn order_statuses_map_to_updates() {
        let o = |status: &str, q: &str, p: Value| {
            order_update(&json!({"status": status, "filled_qty": q, "filled_avg_price": p}))
        };
        assert_eq!(
            o("filled", "2", json!("10.5")),
            OrderUpdate::Filled {
                quantity: 2.0,
                price: 10.5
            }
        );
        assert_eq!(
            o("partially_filled", "1", json!("10")),
            OrderUpdate::Working {
                filled: Some((1.0, 10.0))
            }
        );
        assert_eq!(
            o("accepted", "0", Value::Null),
            OrderUpdate::Working { filled: None }
        );
        assert_eq!(
            o("canceled", "1", json!("10")),
            OrderUpdate::Filled {
                quantity: 1.0,
                price: 10.0
            }
        );
        assert!(matches!(
            o("expired", "0", Value::Null),
            OrderUpdate::Rejected { .. }
        ));
        assert!(matches!(
            o("filled", "1", Value::Null),
            OrderUpdate::Unknown { .. }
        ));
        assert!(matches!(
            o("mystery", "0", Value::Null),
            OrderUpdate::Unknown { .. }
        ));
        assert!(matches!(
            order_update(&json!([])),
            OrderUpdate::Unknown { .. }
        ));
    }

    #[test]
    fn keys_do_not_print() {
        let keys = AlpacaKeys {
            key_id: "PKSECRETID".into(),
            secret: "SHHH".into(),
        };
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains("PKSECRETID") && !shown.contains("SHHH"),
            "{shown}"
        );
        let broker = AlpacaBroker::new(PAPER_URL, keys, Duration::from_secs(1)).unwrap();
        let shown = format!("{broker:?}");
        assert!(
            !shown.contains("PKSECRETID") && !shown.contains("SHHH"),
            "{shown}"
        );
    }
}
