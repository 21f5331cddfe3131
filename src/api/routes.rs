//! The seed's endpoints under `/api/v1/auto-trade/`.

use super::error::{ApiError, from_json_error};
use super::guard::{self, Guard, MAX_BODY};
use super::settings::{ConfigRequest, settings_json};
use super::stream::{self, Follower};
use super::tokens::Caller;
use super::users::{User, Users};
use crate::desk::DeskError;
use crate::store::Status;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;

/// Most decisions one `GET decisions` returns.
pub const MAX_LIMIT: usize = 1000;

type Reply = Result<Json<Value>, ApiError>;

pub fn router(users: Arc<Users>, guard: Arc<Guard>, follower: Arc<Follower>) -> Router {
    // For load balancers and service managers: no token, only the rate limit.
    let health = Router::new()
        .route("/health", get(health))
        .layer(middleware::from_fn_with_state(
            guard.clone(),
            guard::limit_only,
        ))
        .with_state(users.clone());
    let api = Router::new()
        .route("/api/v1/auto-trade/config", post(post_config))
        .route("/api/v1/auto-trade/config/{user_id}", get(get_config))
        .route("/api/v1/auto-trade/status/{user_id}", get(get_status))
        .route("/api/v1/auto-trade/enable/{user_id}", post(enable))
        .route("/api/v1/auto-trade/disable/{user_id}", post(disable))
        .route("/api/v1/auto-trade/kill/{user_id}", post(kill))
        .route("/api/v1/auto-trade/dashboard/{user_id}", get(dashboard))
        .route("/api/v1/auto-trade/trade/{user_id}", post(trade))
        .route("/api/v1/auto-trade/close/{user_id}", post(close))
        .route("/api/v1/auto-trade/history/{user_id}", get(history))
        .route("/api/v1/auto-trade/report/{user_id}", get(report))
        .route("/api/v1/auto-trade/decisions/{user_id}", get(decisions))
        .route("/api/v1/auto-trade/pending/{user_id}", get(pending))
        .route(
            "/api/v1/auto-trade/decisions/{user_id}/confirm",
            post(confirm),
        )
        .route(
            "/api/v1/auto-trade/decisions/{user_id}/cancel",
            post(cancel),
        )
        .route(
            "/api/v1/auto-trade/decisions/{user_id}/resize",
            post(resize),
        )
        .route("/api/v1/auto-trade/events/{user_id}", get(stream::events))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(follower))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(guard, guard::check))
        .with_state(users);
    health.merge(api)
}

/// `GET /health`: 200 while the server runs, with how many users it trades for; 503
/// `"unhealthy"` while a store cannot write (a full disk: nothing new is stored, exits are
/// only watched from memory), with why. Reads nothing from the store.
async fn health(State(users): State<Arc<Users>>) -> (StatusCode, Json<Value>) {
    let failing = users
        .all()
        .iter()
        .map(|u| u.ctx.store.health())
        .find(|h| h.is_failing());
    let code = if failing.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let store = failing.unwrap_or_default();
    (
        code,
        Json(json!({
            "status": if store.is_failing() { "unhealthy" } else { "ok" },
            "users": users.len(),
            "version": env!("CARGO_PKG_VERSION"),
            "store": store.to_json(),
        })),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint: the API is under /api/v1/auto-trade/ (and GET /health)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}

/// Run store work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

fn desk_error(e: DeskError) -> ApiError {
    match e {
        DeskError::UnknownDecision(id) => {
            ApiError::not_found(format!("no decision {id:?} for this user")).field("log_id")
        }
        e if e.is_refusal() => ApiError::conflict(e.to_string()),
        other => ApiError::internal(other),
    }
}

fn user_of(
    users: &Users,
    path: Result<Path<String>, PathRejection>,
) -> Result<Arc<User>, ApiError> {
    let Path(user_id) = path.map_err(|e| ApiError::bad_request(e.body_text()).field("user_id"))?;
    users.get(&user_id)
}

/// A body that may be absent (a bare POST): its default then, else [`json_body`].
fn optional_json_body<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    match &body {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(T::default()),
        _ => json_body(headers, body),
    }
}

/// A JSON body: 415 without a JSON content type (which also keeps browsers' simple
/// cross-site posts out), 413 over the limit, 400 when it is not JSON or names a key twice
/// (naming it), 422 naming the field when it has the wrong shape.
fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            guard::body_too_large()
        } else {
            ApiError::new(e.status(), e.body_text())
        }
    })?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty: expected a JSON object",
        ));
    }
    let value = super::strict::from_slice(&body).map_err(|e| match e {
        super::strict::StrictError::Json(e) => from_json_error(".", &e),
        super::strict::StrictError::Duplicate { path, key } => {
            let field = super::strict::StrictError::field(&path, &key);
            ApiError::bad_request(format!(
                "{field} appears twice in the request body: send each key once"
            ))
            .field(field)
        }
    })?;
    // serde would take a struct from an array too; the seed's bodies are objects.
    if !value.is_object() {
        return Err(ApiError::invalid("body", "body: expected a JSON object"));
    }
    serde_path_to_error::deserialize(value)
        .map_err(|e| from_json_error(&e.path().to_string(), e.inner()))
}

async fn post_config(
    State(users): State<Arc<Users>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let req: Value = json_body(&headers, body)?;
    if req.get("config").is_some_and(|c| !c.is_object()) {
        return Err(ApiError::invalid(
            "config",
            "config: expected a JSON object of AutoTradeConfig fields",
        ));
    }
    let req: ConfigRequest = serde_path_to_error::deserialize(req)
        .map_err(|e| from_json_error(&e.path().to_string(), e.inner()))?;
    // A user's own token replaces that user's settings; only the admin token makes users.
    if let Some(Extension(caller)) = &caller
        && !caller.may_act_for(&req.config.user_id)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this token acts for one user only: creating users, or changing another's \
             settings, needs AUTOTRADE_API_TOKEN",
        )
        .field("config.user_id"));
    }
    let (user, created, token) = users.put(req.config).await?;
    let at = &user.ctx.config.auto_trade;
    let mut reply = json!({
        "user_id": at.user_id,
        "created": created,
        "config": settings_json(at, at.enabled),
    });
    if let Some(token) = token {
        reply["token"] = json!(token);
    }
    Ok(Json(reply))
}

async fn get_config(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let user = user_of(&users, path)?;
    blocking(move || {
        let st = user.ctx.state().map_err(desk_error)?;
        Ok(Json(settings_json(&user.ctx.config.auto_trade, st.enabled)))
    })
    .await
}

async fn get_status(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let user = user_of(&users, path)?;
    // A loop whose store cannot write stores no decision and closes nothing: not monitoring.
    let monitoring = users.is_monitoring(&user.ctx.config.auto_trade.user_id)
        && !user.ctx.store.health().is_failing();
    blocking(move || {
        let ctx = &user.ctx;
        let mut s = ctx.status_json().map_err(desk_error)?;
        s["monitoring"] = json!(monitoring);
        s["check_interval_minutes"] = json!(ctx.config.auto_trade.check_interval_minutes);
        s["require_confirmation"] = json!(ctx.config.auto_trade.require_confirmation);
        Ok(Json(s))
    })
    .await
}

/// `POST enable` may carry `{"reset": true}`: clear a loss halt (as `enable --reset`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EnableRequest {
    #[serde(default)]
    reset: bool,
}

/// `POST kill` may carry `{"flatten": true}`: also close every open position.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KillRequest {
    #[serde(default)]
    flatten: bool,
}

async fn set_enabled(users: Arc<Users>, user: Arc<User>, on: bool, reset: bool) -> Reply {
    let id = user.ctx.config.auto_trade.user_id.clone();
    let reply = blocking(move || {
        if reset {
            let cleared = user.ctx.reset_halt().map_err(desk_error)?;
            return Ok(Json(json!({
                "user_id": id,
                "enabled": true,
                "halt_cleared": cleared.map(|h| h.reason),
                "detail": "loss halt reset: the limits start again from today's equity; auto-trading enabled",
            })));
        }
        user.ctx.set_enabled(on).map_err(desk_error)?;
        Ok(Json(json!({
            "user_id": id,
            "enabled": on,
            "detail": if on { "auto-trading enabled" } else { "auto-trading disabled" },
        })))
    })
    .await;
    users.wake.notify_one();
    reply
}

/// The kill switch: disable and cancel every pending decision (as `kill` and `K`); with
/// `{"flatten": true}`, also close every open position (as `kill --flatten` and `F`).
async fn kill(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let user = user_of(&users, path)?;
    let req: KillRequest = optional_json_body(&headers, body)?;
    if req.flatten {
        let (cancelled, closed) = user.ctx.flatten().await.map_err(desk_error)?;
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for c in closed {
            match c {
                Ok(p) => {
                    let last = p.exit_price;
                    done.push(p.to_json(last));
                }
                Err(why) => failed.push(why),
            }
        }
        return Ok(Json(json!({
            "kill_switch": true,
            "enabled": false,
            "cancelled": cancelled,
            "closed": done,
            "not_closed": failed,
        })));
    }
    blocking(move || {
        // On a connection of its own: the user's shared one may be held by a cycle that is
        // itself waiting for the store's lock, and the kill must not queue behind it.
        let ctx = &user.ctx;
        let store = crate::store::Store::open_configured(
            &ctx.config,
            &ctx.data_dir,
            &ctx.config.auto_trade.user_id,
            ctx.config.auto_trade.enabled,
        )
        .map_err(ApiError::internal)?;
        let desk =
            crate::desk::Desk::new(ctx.config.clone(), ctx.data_dir.clone(), Arc::new(store));
        let cancelled = desk.kill().map_err(desk_error)?;
        Ok(Json(
            json!({ "kill_switch": true, "enabled": false, "cancelled": cancelled }),
        ))
    })
    .await
}

/// What a remote dashboard (`autotrade-tui attach URL`) shows: its settings and a snapshot of
/// the user's desk, in the program's own serde form.
async fn dashboard(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let user = user_of(&users, path)?;
    blocking(move || {
        let ctx = &user.ctx;
        let snapshot = ctx.snapshot(&ctx.store).map_err(desk_error)?;
        let settings = crate::app::Settings::from_config(&ctx.config, false);
        Ok(Json(json!({
            "settings": serde_json::to_value(settings).map_err(ApiError::internal)?,
            "snapshot": serde_json::to_value(snapshot).map_err(ApiError::internal)?,
        })))
    })
    .await
}

/// A manual trade, as `trade` without `--yes` and the dashboard's `t`: pending until confirmed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TradeRequest {
    symbol: String,
    side: crate::domain::Side,
    size: Option<f64>,
    take_profit: Option<f64>,
    stop_loss: Option<f64>,
    /// Limits a trader lifts on purpose (as `trade --allow-risk`, `--allow-rr`, `--allow-value`).
    allow_risk_percent: Option<f64>,
    allow_reward_to_risk: Option<f64>,
    allow_position_percent: Option<f64>,
    /// A trailing stop, in percent of the best price or as an amount: one or the other.
    trail_percent: Option<f64>,
    trail_amount: Option<f64>,
}

/// A trade's trail from its two optional fields, checked on its own (the entry is checked by
/// the rules).
fn trail_of(
    percent: Option<f64>,
    amount: Option<f64>,
) -> Result<Option<crate::domain::trail::Trail>, ApiError> {
    use crate::domain::trail::Trail;
    let (field, trail) = match (percent, amount) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "trail_amount",
                "give trail_percent or trail_amount, not both",
            ));
        }
        (Some(p), None) => ("trail_percent", Trail::Percent(p)),
        (None, Some(a)) => ("trail_amount", Trail::Amount(a)),
        (None, None) => return Ok(None),
    };
    trail
        .check()
        .map(Some)
        .map_err(|e| ApiError::invalid(field, format!("{field} {}: {e}", trail.value())))
}

async fn trade(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let user = user_of(&users, path)?;
    let req: TradeRequest = json_body(&headers, body)?;
    let order = crate::domain::manual::ManualOrder {
        symbol: crate::config::normalize_symbol(&req.symbol),
        side: req.side,
        size: req.size,
        take_profit: req.take_profit,
        stop_loss: req.stop_loss,
        trail: trail_of(req.trail_percent, req.trail_amount)?,
    };
    if !user.ctx.config.auto_trade.symbols.contains(&order.symbol) {
        return Err(ApiError::invalid(
            "symbol",
            format!("{} is not one of this user's symbols", order.symbol),
        ));
    }
    for (key, v, max) in [
        ("allow_risk_percent", req.allow_risk_percent, 100.0),
        ("allow_position_percent", req.allow_position_percent, 100.0),
        ("allow_reward_to_risk", req.allow_reward_to_risk, f64::MAX),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0 && v <= max)
        {
            return Err(ApiError::invalid(key, format!("{v} is out of range")));
        }
    }
    let allow = crate::domain::manual::Overrides {
        risk_percent: req.allow_risk_percent,
        reward_to_risk: req.allow_reward_to_risk,
        position_percent: req.allow_position_percent,
        from_command_line: false,
    };
    let (log, _) = user
        .ctx
        .trade(&order, crate::store::Origin::Manual, false, &allow)
        .await
        .map_err(desk_error)?;
    Ok(Json(log.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseRequest {
    symbol: String,
    /// The position the trader saw: refused when another one is open on the symbol now.
    position_id: Option<i64>,
}

/// Close the open position on a symbol at the latest price (at a real broker, by a closing
/// order), as `close` and the dashboard's `c`.
async fn close(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let user = user_of(&users, path)?;
    let req: CloseRequest = json_body(&headers, body)?;
    let symbol = crate::config::normalize_symbol(&req.symbol);
    let pos = user
        .ctx
        .close(&symbol, req.position_id, "closed through the API")
        .await
        .map_err(desk_error)?;
    let last = pos.exit_price;
    Ok(Json(pos.to_json(last)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResizeRequest {
    log_id: String,
    size: f64,
}

/// A new size for a pending decision, as the dashboard's `s`.
async fn resize(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let user = user_of(&users, path)?;
    let req: ResizeRequest = json_body(&headers, body)?;
    blocking(move || {
        let log = user.ctx.resize(&req.log_id, req.size).map_err(desk_error)?;
        Ok(Json(log.to_json()))
    })
    .await
}

/// The history view: closed positions and events containing `query` (any case), newest
/// first, in the program's own serde form (what a remote dashboard shows).
async fn history(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let user = user_of(&users, path)?;
    // `query=...`, percent-decoded as a URL's query is.
    let query = reqwest::Url::parse(&format!("http://q/?{}", raw.unwrap_or_default()))
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "query")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    blocking(move || {
        let h = user.ctx.history(&query).map_err(desk_error)?;
        Ok(Json(serde_json::to_value(h).map_err(ApiError::internal)?))
    })
    .await
}

/// `report --json` of the user: `since=DATE` (a day or an RFC 3339 time) counts from then.
async fn report(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let user = user_of(&users, path)?;
    let mut since = None;
    if let Ok(u) = reqwest::Url::parse(&format!("http://q/?{}", raw.unwrap_or_default())) {
        for (k, v) in u.query_pairs() {
            if k != "since" {
                return Err(ApiError::invalid(
                    k.to_string(),
                    format!("{k}: unknown parameter (expected since)"),
                ));
            }
            let ms = crate::analytics::report::parse_since(&v)
                .map_err(|e| ApiError::invalid("since", e.replace("--since", "since")))?;
            since = Some((v.trim().to_string(), ms));
        }
    }
    blocking(move || {
        let r = user.ctx.report(since).map_err(desk_error)?;
        Ok(Json(serde_json::to_value(r).map_err(ApiError::internal)?))
    })
    .await
}

async fn enable(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let user = user_of(&users, path)?;
    let req: EnableRequest = optional_json_body(&headers, body)?;
    set_enabled(users, user, true, req.reset).await
}

async fn disable(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let user = user_of(&users, path)?;
    set_enabled(users, user, false, false).await
}

/// `?limit=50&executed_only=false`, strictly: anything else is named and refused.
struct DecisionsQuery {
    limit: usize,
    executed_only: bool,
}

fn parse_query(raw: Option<&str>) -> Result<DecisionsQuery, ApiError> {
    let mut q = DecisionsQuery {
        limit: 50,
        executed_only: false,
    };
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        let (k, v) = (decode(k), decode(v));
        match k.as_str() {
            "limit" => {
                let n: i64 = v.trim().parse().map_err(|_| {
                    ApiError::invalid("limit", format!("limit: {v:?} is not a whole number"))
                })?;
                if !(1..=MAX_LIMIT as i64).contains(&n) {
                    return Err(ApiError::invalid(
                        "limit",
                        format!("limit = {n} is out of range: must be between 1 and {MAX_LIMIT}"),
                    ));
                }
                q.limit = n as usize;
            }
            "executed_only" => {
                q.executed_only = match v.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => {
                        return Err(ApiError::invalid(
                            "executed_only",
                            format!("executed_only: {v:?} is not true or false"),
                        ));
                    }
                }
            }
            other => {
                return Err(ApiError::invalid(
                    other.to_string(),
                    format!("unknown query parameter {other:?}: expected limit or executed_only"),
                ));
            }
        }
    }
    Ok(q)
}

fn logs_json(logs: &[crate::store::DecisionLog]) -> Json<Value> {
    Json(Value::Array(logs.iter().map(|l| l.to_json()).collect()))
}

async fn decisions(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let user = user_of(&users, path)?;
    let q = parse_query(raw.as_deref())?;
    blocking(move || {
        let status = q.executed_only.then_some(Status::Executed);
        let logs = user.ctx.decisions(q.limit, status).map_err(desk_error)?;
        Ok(logs_json(&logs))
    })
    .await
}

async fn pending(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    let user = user_of(&users, path)?;
    blocking(move || {
        let logs = user
            .ctx
            .decisions(MAX_LIMIT, Some(Status::Pending))
            .map_err(desk_error)?;
        Ok(logs_json(&logs))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogIdRequest {
    log_id: String,
}

/// Confirm or cancel: 404 for an unknown user or log id, 409 (with the decision's status)
/// when it is not pending or a gate refuses it.
async fn decide(
    users: Arc<Users>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    confirm: bool,
) -> Reply {
    let user = user_of(&users, path)?;
    let req: LogIdRequest = json_body(&headers, body)?;
    let ctx = user.ctx.clone();
    let done = if confirm {
        ctx.confirm(&req.log_id).await.map(|(log, _)| log)
    } else {
        let (desk, id) = (ctx.clone(), req.log_id.clone());
        tokio::task::spawn_blocking(move || desk.cancel(&id, "cancelled through the API"))
            .await
            .map_err(ApiError::internal)?
    };
    match done {
        Ok(log) => Ok(Json(log.to_json())),
        Err(e) => {
            let mut err = desk_error(e);
            if err.status == StatusCode::CONFLICT {
                let (desk, id) = (ctx.clone(), req.log_id.clone());
                if let Ok(Ok(Some(now))) =
                    tokio::task::spawn_blocking(move || desk.decision(&id)).await
                {
                    err = err
                        .with("log_id", json!(now.log_id))
                        .with("status", json!(now.status.as_str()));
                }
            }
            Err(err)
        }
    }
}

async fn confirm(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    decide(users, path, headers, body, true).await
}

async fn cancel(
    State(users): State<Arc<Users>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    decide(users, path, headers, body, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_describes_every_route() {
        let doc = include_str!("../../assets/openapi.yaml");
        let described: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("  /api/"))
            .map(|l| l.trim_end_matches(':'))
            .collect();
        let served = [
            "v1/auto-trade/config",
            "v1/auto-trade/config/{user_id}",
            "v1/auto-trade/status/{user_id}",
            "v1/auto-trade/enable/{user_id}",
            "v1/auto-trade/disable/{user_id}",
            "v1/auto-trade/kill/{user_id}",
            "v1/auto-trade/dashboard/{user_id}",
            "v1/auto-trade/trade/{user_id}",
            "v1/auto-trade/close/{user_id}",
            "v1/auto-trade/history/{user_id}",
            "v1/auto-trade/report/{user_id}",
            "v1/auto-trade/decisions/{user_id}",
            "v1/auto-trade/pending/{user_id}",
            "v1/auto-trade/decisions/{user_id}/confirm",
            "v1/auto-trade/decisions/{user_id}/cancel",
            "v1/auto-trade/decisions/{user_id}/resize",
            "v1/auto-trade/events/{user_id}",
        ];
        assert_eq!(described, served);
        let source = include_str!("routes.rs");
        for path in served {
            assert!(source.contains(&format!("\"/api/{path}\"")), "{path}");
        }
        assert!(doc.lines().any(|l| l == "  /health:"));
        assert!(source.contains("\"/health\""));
    }

    #[test]
    fn query_defaults_and_refusals() {
        let q = parse_query(None).unwrap();
        assert_eq!((q.limit, q.executed_only), (50, false));
        let q = parse_query(Some("limit=5&executed_only=true")).unwrap();
        assert_eq!((q.limit, q.executed_only), (5, true));
        for (raw, field) in [
            ("limit=0", "limit"),
            ("limit=abc", "limit"),
            ("limit=1001", "limit"),
            ("executed_only=maybe", "executed_only"),
            ("limt=5", "limt"),
        ] {
            let e = parse_query(Some(raw)).err().unwrap();
            assert_eq!(e.field.as_deref(), Some(field), "{raw}");
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{raw}");
        }
    }
}
