//! `autotrade-tui serve`: the engine headless, with the seed's REST API.
//!
//! One monitoring loop per enabled user (see [`users`]), the seed's endpoints (see [`routes`]),
//! and in front of them a per-client rate limit, a bearer token when one is set (required
//! off loopback), no CORS, and a 64 KiB body limit ([`guard`]). SIGTERM, SIGINT or SIGHUP
//! stops the server and the loops, and exits 0. `GET /health` answers without a token; the
//! events route streams what the store records ([`stream`]).

pub mod conn;
pub mod error;
pub mod guard;
pub mod headless;
pub mod routes;
pub mod settings;
pub mod stream;
pub mod strict;
pub mod tokens;
pub mod users;

use crate::commands::{EXIT_OK, EXIT_REFUSED, EXIT_USAGE};
use crate::desk::Desk;
use color_eyre::eyre::{Result, WrapErr};
use guard::{Guard, RateLimiter};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use users::Users;

/// Requests a second per client, unless `AUTOTRADE_API_RATE_LIMIT` says otherwise.
pub const DEFAULT_RATE_PER_SECOND: f64 = 50.0;
/// How long in-flight requests may take to finish after a stop signal.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

pub async fn serve(ctx: Desk, listen: &str) -> Result<u8> {
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(listen).await {
        Ok(a) => a.collect(),
        Err(e) => {
            eprintln!(
                "error: --listen {listen:?} is not an address to listen on (e.g. 127.0.0.1:8003): {e}"
            );
            return Ok(EXIT_USAGE);
        }
    };
    if addrs.is_empty() {
        eprintln!("error: --listen {listen:?} resolves to no address");
        return Ok(EXIT_USAGE);
    }
    let token = std::env::var("AUTOTRADE_API_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let loopback = addrs.iter().all(|a| a.ip().is_loopback());
    if !loopback && token.is_none() {
        eprintln!(
            "error: refusing to serve on {listen}: it is not a loopback address, so anyone who can \
             reach it could confirm trades, and AUTOTRADE_API_TOKEN is not set. Set \
             AUTOTRADE_API_TOKEN to a long random secret (clients send `Authorization: Bearer <token>`), \
             or listen on 127.0.0.1."
        );
        return Ok(EXIT_USAGE);
    }
    if let Some(t) = &token
        && t.len() < 16
    {
        eprintln!(
            "warning: AUTOTRADE_API_TOKEN is short ({} characters): use 16 or more random ones",
            t.len()
        );
    }
    if !loopback {
        eprintln!(
            "warning: {listen} is reachable from other machines over plain HTTP: put a TLS proxy \
             in front, or the token travels in the clear"
        );
    }
    let limiter = match rate_limit_from_env() {
        // On PostgreSQL the buckets are the database's: one limit across every instance.
        Ok(l) => l.map(|l| match ctx.store.pg() {
            Some(db) => l.shared(db.clone()),
            None => l,
        }),
        Err(msg) => {
            eprintln!("error: {msg}");
            return Ok(EXIT_USAGE);
        }
    };
    let io_timeout = match conn::io_timeout_from_env() {
        Ok(t) => t,
        Err(msg) => {
            eprintln!("error: {msg}");
            return Ok(EXIT_USAGE);
        }
    };
    // One engine per data dir: the dashboard and `run` run the same loop for the file's user.
    // On PostgreSQL each user's loop lease is the lock: any number of instances.
    let _lock = match ctx.store.is_shared() {
        true => None,
        false => match headless::engine_lock(&ctx.data_dir, "serve") {
            Some(l) => Some(l),
            None => return Ok(EXIT_REFUSED),
        },
    };
    let source = ctx
        .config
        .ml_engine
        .as_ref()
        .map(|m| crate::net::redact_url(&m.url));
    let data_dir = ctx.data_dir.clone();
    let users = Arc::new(
        tokio::task::spawn_blocking(move || Users::load(ctx))
            .await?
            .wrap_err("loading the users")?,
    );
    let listener = match tokio::net::TcpListener::bind(&addrs[..]).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            return Ok(EXIT_REFUSED);
        }
    };
    let local = listener.local_addr()?;
    let mut signals =
        headless::StopSignals::install(true).wrap_err("listening for stop signals")?;
    {
        // A reader that went away (a closed pipe) does not stop the server.
        crate::outln!(
            "listening on http://{local} — {} user(s), {}, {}",
            users.len(),
            source
                .map(|u| format!("ML engine {u}"))
                .unwrap_or_else(|| "simulated market".into()),
            if token.is_some() {
                "bearer token required"
            } else {
                "loopback only, no token"
            }
        )?;
    }
    tracing::info!("serve: listening on {local}");

    let guard = Arc::new(Guard {
        loopback_hosts_only: token.is_none(),
        token,
        limiter,
        body_timeout: io_timeout,
        users: users.tokens.clone(),
    });
    let loops = headless::Loops::start(users.clone());
    let follower = Arc::new(
        stream::Follower::open(&data_dir, loops.stopping())
            .wrap_err("opening the store to follow it")?,
    );
    let app = routes::router(users, guard, follower);
    let mut server = tokio::spawn(conn::serve(
        listener,
        app,
        conn::Limits::new(io_timeout),
        loops.stopping(),
    ));

    let why = tokio::select! {
        s = signals.recv() => s?,
        r = &mut server => {
            loops.stop().await;
            return match r {
                Ok(()) => Ok(EXIT_OK),
                Err(e) => Err(e).wrap_err("serving"),
            };
        }
    };
    eprintln!("{why}: stopping");
    tracing::info!("serve: {why}, stopping");
    loops.tell_stop();
    if tokio::time::timeout(DRAIN_GRACE, &mut server)
        .await
        .is_err()
    {
        tracing::warn!("serve: requests still open after {DRAIN_GRACE:?}, closing them");
        server.abort();
    }
    loops.stop().await;
    eprintln!("stopped");
    Ok(EXIT_OK)
}

/// `AUTOTRADE_API_RATE_LIMIT`: requests a second per client (bursts of twice that); 0 turns
/// the limit off (e.g. behind a proxy that limits, where every client has the proxy's address).
fn rate_limit_from_env() -> std::result::Result<Option<RateLimiter>, String> {
    let per_second = match std::env::var("AUTOTRADE_API_RATE_LIMIT") {
        // 0 (off) or 0.001..=1e6 requests a second: smaller rates would wait longer than a
        // `Duration` holds.
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| *r == 0.0 || (0.001..=1e6).contains(r))
            .ok_or_else(|| {
                format!(
                    "AUTOTRADE_API_RATE_LIMIT = {v:?} is not a number of requests a second \
                     between 0.001 and 1000000 (0 turns the limit off)"
                )
            })?,
        _ => DEFAULT_RATE_PER_SECOND,
    };
    Ok((per_second > 0.0).then(|| RateLimiter::new(per_second, (2.0 * per_second).ceil())))
}
