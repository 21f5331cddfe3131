//! What every request passes before a handler sees it: the per-client rate limit, the
//! cross-origin and Host checks, the bearer token and the body size.

use super::error::ApiError;
use super::tokens::{Caller, Tokens};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest request body taken (413 above).
pub const MAX_BODY: usize = 64 * 1024;

pub struct Guard {
    /// `AUTOTRADE_API_TOKEN`: when set, every request carries it as `Authorization: Bearer`.
    pub token: Option<String>,
    /// Without a token, only loopback `Host` names are served, so that a web page cannot
    /// reach the API through a DNS name rebound to 127.0.0.1.
    pub loopback_hosts_only: bool,
    pub limiter: Option<RateLimiter>,
    /// How long a request's body may take to arrive (408 after).
    pub body_timeout: Duration,
    /// The users' own tokens.
    pub users: Arc<Tokens>,
}

pub async fn check(
    State(guard): State<Arc<Guard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    match admit(&guard, peer.ip(), req.headers(), req.uri().path()) {
        Ok(caller) => match read_body(&guard, req).await {
            Ok(mut req) => {
                req.extensions_mut().insert(caller);
                next.run(req).await
            }
            Err(e) => e.into_response(),
        },
        Err(e) => {
            let mut resp = e.into_response();
            // The body was not read: the connection cannot carry another request.
            if has_body(req.headers()) {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            resp
        }
    }
}

/// The rate limit alone (`GET /health`, which needs no token).
pub async fn limit_only(
    State(guard): State<Arc<Guard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    match one_host(req.headers()).and_then(|()| rate_limit(&guard, peer.ip())) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// The whole body, read within the time-out (a client sending it a byte at a time cannot
/// hold the connection), then handed on as it came.
async fn read_body(guard: &Guard, req: Request) -> Result<Request, ApiError> {
    if !has_body(req.headers()) {
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(guard.body_timeout, async move {
        use futures::StreamExt;
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(format!("the request body could not be read: {e}"))
            })?;
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(body_too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    })
    .await;
    let bytes = match read {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Err(e.closing()),
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    guard.body_timeout.as_secs_f64()
                ),
            )
            .closing());
        }
    };
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

fn rate_limit(guard: &Guard, ip: IpAddr) -> Result<(), ApiError> {
    rate_limit_for(guard, BucketKey::Addr(ip), &ip.to_string())
}

/// Take one request from `key`'s bucket; `who` names it in the refusal.
fn rate_limit_for(guard: &Guard, key: BucketKey, who: &str) -> Result<(), ApiError> {
    if let Some(limiter) = &guard.limiter
        && let Err(wait) = limiter.take(key)
    {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many requests from {who}: at most {} a second (bursts of {}); retry in {} ms",
                limiter.per_second,
                limiter.burst,
                wait.as_millis().max(1)
            ),
        );
        e.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        return Err(e);
    }
    Ok(())
}

/// Two Host headers could name two different servers to two different readers (a proxy and
/// this server): refused, not the last one taken.
fn one_host(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.get_all(header::HOST).iter().count() > 1 {
        return Err(ApiError::bad_request(
            "the request has more than one Host header: send exactly one",
        )
        .field("Host")
        .closing());
    }
    Ok(())
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// The `{user_id}` of a route under `/api/v1/auto-trade/<route>/{user_id}`, decoded.
fn path_user(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/v1/auto-trade/")?;
    let mut segments = rest.split('/');
    let _route = segments.next()?;
    let user = segments.next()?;
    Some(
        percent_encoding::percent_decode_str(user)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

fn admit(guard: &Guard, ip: IpAddr, headers: &HeaderMap, path: &str) -> Result<Caller, ApiError> {
    one_host(headers)?;
    rate_limit(guard, ip)?;
    // Browsers send Origin on every cross-origin request that could change something; CORS
    // is off, so no web page may drive this API (e.g. POST enable from a malicious site).
    if headers.contains_key(header::ORIGIN) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-origin requests are refused: this API serves no web pages and CORS is off",
        ));
    }
    if guard.loopback_hosts_only
        && let Some(host) = headers.get(header::HOST)
        && !host.to_str().is_ok_and(is_loopback_host)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the Host header must name this machine (localhost, 127.0.0.1 or [::1]) when no \
             AUTOTRADE_API_TOKEN is set",
        ));
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let admin = guard
        .token
        .as_ref()
        .zip(given)
        .is_some_and(|(token, g)| constant_time_eq(g.as_bytes(), token.as_bytes()));
    let caller = if admin {
        Caller::Admin
    } else if let Some(user) = given.and_then(|g| guard.users.user_of(g)) {
        Caller::User(user)
    } else if guard.token.is_some() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            if given.is_some() {
                "wrong bearer token"
            } else {
                "this API needs `Authorization: Bearer <token>`: the user's own token, or \
                 AUTOTRADE_API_TOKEN"
            },
        ));
    } else {
        // Loopback with no AUTOTRADE_API_TOKEN: open, as it always was.
        Caller::Open
    };
    if let Some(user) = path_user(path)
        && !caller.may_act_for(&user)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this token acts for one user only, not the one in the path",
        )
        .field("user_id"));
    }
    if let Some(bucket) = caller.bucket() {
        // Per token as well as per address: another address does not get a fresh bucket.
        rate_limit_for(guard, BucketKey::Token(bucket.clone()), &bucket)?;
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(body_too_large());
    }
    Ok(caller)
}

pub fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is over {} KiB", MAX_BODY / 1024),
    )
}

/// Equal, in a time that depends only on the expected token's length, not on where the
/// given one first differs.
pub fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(g ^ e);
    }
    std::hint::black_box(diff) == 0
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What one bucket of the rate limit counts for: a client address, or a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BucketKey {
    Addr(IpAddr),
    Token(String),
}

impl From<IpAddr> for BucketKey {
    fn from(ip: IpAddr) -> BucketKey {
        BucketKey::Addr(ip)
    }
}

/// A token bucket per client address and per bearer token.
pub struct RateLimiter {
    pub per_second: f64,
    pub burst: f64,
    buckets: Mutex<HashMap<BucketKey, Bucket>>,
    /// On PostgreSQL: the buckets live in the database, shared by every instance (the local
    /// ones count only while the database cannot be reached).
    shared: Option<std::sync::Arc<crate::store::pg::Shared>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Clients remembered before the idle ones (whose buckets are full again) are forgotten.
const MAX_TRACKED_CLIENTS: usize = 10_000;

impl RateLimiter {
    pub fn new(per_second: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            per_second,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Keep the buckets in the PostgreSQL database every instance shares.
    pub fn shared(mut self, db: std::sync::Arc<crate::store::pg::Shared>) -> RateLimiter {
        self.shared = Some(db);
        self
    }

    /// Take one token for `key`, or say how long until one is there.
    pub fn take(&self, key: impl Into<BucketKey>) -> Result<(), Duration> {
        let key = key.into();
        if let Some(db) = &self.shared {
            let name = match &key {
                BucketKey::Addr(ip) => format!("addr {ip}"),
                BucketKey::Token(t) => t.clone(),
            };
            match db.take_token(&name, self.per_second, self.burst) {
                Ok(verdict) => return verdict,
                Err(e) => tracing::warn!(
                    "rate limit: the shared buckets cannot be read ({e}); counting here"
                ),
            }
        }
        self.take_at(key, Instant::now())
    }

    /// [`take`](Self::take) at `now`.
    fn take_at(&self, key: impl Into<BucketKey>, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_CLIENTS {
            let refill = Duration::from_secs_f64(self.burst / self.per_second);
            buckets.retain(|_, b| now.duration_since(b.at) < refill);
        }
        let b = buckets.entry(key.into()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.at).as_secs_f64() * self.per_second).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"s3cret-token", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret-tokeN", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret-token-and-more", b"s3cret-token"));
        assert!(!constant_time_eq(b"", b"s3cret-token"));
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:8003",
            "127.0.0.1:8003",
            "127.0.0.2",
            "[::1]:8003",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "evil.example:8003",
            "10.0.0.1:8003",
            "0.0.0.0:8003",
            "[::]:1",
            "localhost.evil",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn bucket_allows_a_burst_then_refuses_then_refills() {
        // The clock is given, so a slow machine cannot refill the bucket mid-test.
        let l = RateLimiter::new(1000.0, 5.0);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.take_at(ip, t0).is_ok());
        }
        let wait = l.take_at(ip, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(1));
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(l.take_at(other, t0).is_ok(), "buckets are per client");
        // Half a token later: still refused, for the other half.
        let half = t0 + Duration::from_micros(500);
        let wait = l.take_at(ip, half).unwrap_err();
        assert!(
            wait > Duration::from_micros(499) && wait <= Duration::from_micros(501),
            "{wait:?}"
        );
        // A token's time later it is there, and only one.
        let later = t0 + Duration::from_millis(1);
        assert!(l.take_at(ip, later).is_ok());
        assert!(l.take_at(ip, later).is_err());
        // Long idle: the bucket is full again, no fuller than the burst.
        let idle = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(l.take_at(ip, idle).is_ok());
        }
        assert!(l.take_at(ip, idle).is_err());
    }
}
