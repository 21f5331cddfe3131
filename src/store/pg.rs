//! PostgreSQL (`[store] url`): the same tables as SQLite, shared by any number of `serve`
//! instances.
//!
//! - **One pool per process and database** ([`Shared::get`]): every user's [`super::Store`]
//!   borrows a connection for one transaction at a time.
//! - **Writes of one user are one at a time**, as SQLite's `BEGIN IMMEDIATE` makes them: each
//!   write transaction first takes the user's advisory transaction lock, so a confirm on one
//!   instance and a cycle on another never interleave their reads and writes.
//! - **Every write notifies** (`NOTIFY autotrade_changes, user`) at its commit; each process
//!   LISTENs on a connection of its own and counts what it hears ([`Shared::version`]), the
//!   counter SQLite's `PRAGMA data_version` is for the event streams.
//! - **One owner per user's loop** ([`Leases`]): a lease row with an expiry on the database's
//!   clock, renewed by its instance; a loop's writes are fenced by it ([`Lease`]).
//! - **Schema**: version 7 is SQLite's version 7 in PostgreSQL's types; version 8 adds what
//!   only a shared database needs (the loop leases and the API's rate limits). Migrations run in
//!   one transaction under a database-wide advisory lock, so instances starting together
//!   upgrade once.
//!
//! Connections are not encrypted (`NoTls`): the database is expected on loopback or a private
//! network. The password comes from the URL in `$AUTOTRADE_STORE_URL` or from `$PGPASSWORD`.

use super::db::{Db, PgTx, params};
use super::{Result, StoreError};
use postgres::fallible_iterator::FallibleIterator;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The PostgreSQL schema's version (see the module's notes).
pub const SCHEMA_VERSION: i64 = 8;
/// The channel every commit notifies.
pub const CHANNEL: &str = "autotrade_changes";
/// The database's clock in ms: leases are judged by it, never by an instance's own clock.
pub const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";
/// The database's clock at the statement's start, in ms (the same in every use within it).
const STMT_NOW_MS: &str = "(EXTRACT(EPOCH FROM statement_timestamp()) * 1000)::BIGINT";
/// The advisory lock every write of the shared `prices` rows takes (after its user's own).
pub(crate) const PRICES_LOCK: i64 = 0x6175_746f_7072_6963;
/// The advisory lock the migrations take (any constant no user's key is likely to be).
const MIGRATION_LOCK: i64 = 0x6175_746f_7472_6164;
/// How long `Shared::get` and a transaction wait for a pooled connection.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// While the database cannot be reached, how long a transaction waits for a connection: one
/// caller a second tries for this long; every other one fails at once, so that neither the
/// API nor the loops hang on a database that is down.
const DOWN_WAIT: Duration = Duration::from_secs(2);

const V7: &str = r#"
CREATE TABLE IF NOT EXISTS decisions (
    seq BIGSERIAL PRIMARY KEY,
    log_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    executed_at BIGINT,
    mode TEXT NOT NULL,
    origin TEXT NOT NULL,
    symbol TEXT NOT NULL,
    action TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    reasoning TEXT NOT NULL,
    entry_price DOUBLE PRECISION,
    take_profit DOUBLE PRECISION,
    stop_loss DOUBLE PRECISION,
    position_size DOUBLE PRECISION NOT NULL,
    amd_phase TEXT,
    ml_signal TEXT NOT NULL,
    amd_input TEXT NOT NULL,
    risk_reward TEXT,
    raw_confidence DOUBLE PRECISION,
    trail_percent DOUBLE PRECISION,
    trail_amount DOUBLE PRECISION,
    allowed_position_percent DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS decisions_by_user ON decisions(user_id, seq);
CREATE INDEX IF NOT EXISTS decisions_by_status ON decisions(user_id, status, seq);
CREATE INDEX IF NOT EXISTS decisions_by_symbol ON decisions(user_id, symbol, seq);
CREATE INDEX IF NOT EXISTS decisions_executed ON decisions(user_id, log_id) WHERE status = 'executed';
CREATE TABLE IF NOT EXISTS positions (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity DOUBLE PRECISION NOT NULL,
    entry_price DOUBLE PRECISION NOT NULL,
    take_profit DOUBLE PRECISION NOT NULL,
    stop_loss DOUBLE PRECISION NOT NULL,
    opened_at BIGINT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    closed_at BIGINT,
    exit_price DOUBLE PRECISION,
    realized_pnl DOUBLE PRECISION,
    close_reason TEXT,
    exits_held_by TEXT NOT NULL DEFAULT 'engine',
    trail_percent DOUBLE PRECISION,
    trail_amount DOUBLE PRECISION,
    best_price DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS positions_by_status ON positions(user_id, status, symbol);
CREATE INDEX IF NOT EXISTS positions_by_decision ON positions(decision_id, user_id);
CREATE TABLE IF NOT EXISTS fills (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    position_id BIGINT NOT NULL,
    decision_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity DOUBLE PRECISION NOT NULL,
    price DOUBLE PRECISION NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_by_user ON fills(user_id, id);
CREATE TABLE IF NOT EXISTS prices (
    symbol TEXT PRIMARY KEY,
    price DOUBLE PRECISION NOT NULL,
    at BIGINT NOT NULL,
    bid DOUBLE PRECISION,
    ask DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS state (
    user_id TEXT PRIMARY KEY,
    enabled BIGINT NOT NULL,
    kill_switch BIGINT NOT NULL,
    last_cycle_at BIGINT,
    updated_at BIGINT NOT NULL,
    halted_at BIGINT,
    halt_reason TEXT,
    equity_peak DOUBLE PRECISION,
    day_start_ms BIGINT,
    day_start_equity DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_user ON events(user_id, id);
CREATE TABLE IF NOT EXISTS orders (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL UNIQUE,
    decision_id TEXT NOT NULL,
    broker TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity DOUBLE PRECISION NOT NULL,
    reference_price DOUBLE PRECISION NOT NULL,
    take_profit DOUBLE PRECISION NOT NULL,
    stop_loss DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    filled_quantity DOUBLE PRECISION,
    fill_price DOUBLE PRECISION,
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'open',
    exits_held_by TEXT
);
CREATE INDEX IF NOT EXISTS orders_open ON orders(user_id, status)
    WHERE status IN ('submitted', 'partially_filled', 'unknown');
CREATE TABLE IF NOT EXISTS user_settings (
    user_id TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS price_ticks (
    symbol TEXT NOT NULL,
    price DOUBLE PRECISION NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS price_ticks_by_symbol ON price_ticks(symbol, at);
CREATE TABLE IF NOT EXISTS outcomes (
    decision_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    source TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    entry_price DOUBLE PRECISION NOT NULL,
    take_profit DOUBLE PRECISION NOT NULL,
    stop_loss DOUBLE PRECISION NOT NULL,
    started_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    last_price DOUBLE PRECISION,
    last_at BIGINT,
    exit_price DOUBLE PRECISION,
    resolved_at BIGINT,
    r_multiple DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS outcomes_open ON outcomes(user_id, symbol) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS outcomes_by_source ON outcomes(user_id, source, state);
CREATE TABLE IF NOT EXISTS api_tokens (
    user_id TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
"#;

/// Who runs each user's loop, until when (the database's clock, ms); and the REST API's
/// token buckets (per client address and per token), so that a limit holds across every
/// instance behind one address.
const V8: &str = r#"
CREATE TABLE IF NOT EXISTS loop_leases (
    user_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    taken_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS loop_leases_by_owner ON loop_leases(owner);
CREATE TABLE IF NOT EXISTS rate_limits (
    key TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    at BIGINT NOT NULL,
    allowed BIGINT NOT NULL
);
"#;

/// The statements that take the database to each version; a new database starts at 7.
const STEPS: [(i64, &str); 2] = [(7, V7), (8, V8)];

/// A pooled connection: the client and the statements prepared on it.
pub struct PgConn {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.config.connect(postgres::NoTls)?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// One process's way into one PostgreSQL database.
pub struct Shared {
    pool: r2d2::Pool<Manager>,
    /// The URL without its password, for messages.
    shown: String,
    /// Commits heard on [`CHANNEL`] (and reconnections of the listener, which may have
    /// missed some): what readers watch for a change.
    version: AtomicI64,
    /// Since when no connection could be had, and when one was last tried (`None`: up).
    down: Mutex<Option<Down>>,
}

#[derive(Clone, Copy)]
struct Down {
    since: std::time::Instant,
    tried: std::time::Instant,
}

/// The config for `url`, with `$PGPASSWORD` when the URL has no password of its own.
fn config_of(url: &str) -> Result<postgres::Config> {
    let mut config: postgres::Config = url.parse().map_err(|e| {
        StoreError::Other(format!(
            "{} is not a PostgreSQL URL: {e}",
            crate::net::redact_url(url)
        ))
    })?;
    if config.get_password().is_none()
        && let Some(pw) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty())
    {
        config.password(pw.as_encoded_bytes());
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.application_name("autotrade-tui");
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(10));
    Ok(config)
}

impl Shared {
    /// This process's pool for `url` (made, and the schema brought up to date, on first use).
    pub fn get(url: &str) -> Result<Arc<Shared>> {
        Shared::get_sized(url, 8)
    }

    /// [`get`](Self::get) with `pool_size` connections when the pool is made now.
    pub fn get_sized(url: &str, pool_size: u32) -> Result<Arc<Shared>> {
        off_runtime(|| Shared::get_now(url, pool_size))
    }

    fn get_now(url: &str, pool_size: u32) -> Result<Arc<Shared>> {
        static ALL: Mutex<Vec<(String, Arc<Shared>)>> = Mutex::new(Vec::new());
        let mut all = ALL.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, s)) = all.iter().find(|(u, _)| u == url) {
            return Ok(s.clone());
        }
        let shown = crate::net::redact_url(url);
        let config = config_of(url)?;
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(CONNECT_WAIT)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(Manager {
                config: config.clone(),
            })
            .map_err(|e| StoreError::Other(format!("cannot reach PostgreSQL at {shown}: {e}")))?;
        let shared = Arc::new(Shared {
            pool,
            shown,
            version: AtomicI64::new(0),
            down: Mutex::new(None),
        });
        shared.migrate()?;
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("pg-listen".into())
            .spawn(move || listen(config, weak))
            .map_err(|e| StoreError::Other(format!("cannot start the listener: {e}")))?;
        all.push((url.to_string(), shared.clone()));
        Ok(shared)
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A counter that moves when any instance commits.
    pub fn version(&self) -> i64 {
        self.version.load(Ordering::Acquire)
    }

    /// A pooled connection. While the database is down (the last try failed), an idle
    /// connection is still used if there is one; otherwise one caller a second waits
    /// [`DOWN_WAIT`] for a connection and every other fails at once, saying since when.
    fn conn_now(&self) -> Result<r2d2::PooledConnection<Manager>> {
        let now = std::time::Instant::now();
        let wait = {
            let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
            match down.as_mut() {
                None => CONNECT_WAIT,
                Some(d) if now.duration_since(d.tried) >= Duration::from_secs(1) => {
                    d.tried = now;
                    DOWN_WAIT
                }
                Some(d) => {
                    if let Some(c) = self.pool.try_get() {
                        return Ok(c);
                    }
                    let e = StoreError::Other(format!(
                        "cannot reach PostgreSQL at {} (for {} s)",
                        self.shown,
                        now.duration_since(d.since).as_secs()
                    ));
                    super::health::note_text(&e.to_string());
                    return Err(e);
                }
            }
        };
        match self.pool.get_timeout(wait) {
            Ok(c) => {
                *self.down.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(c)
            }
            Err(e) => {
                let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
                if down.is_none() {
                    *down = Some(Down {
                        since: now,
                        tried: now,
                    });
                }
                let e =
                    StoreError::Other(format!("cannot reach PostgreSQL at {}: {e}", self.shown));
                super::health::note_text(&e.to_string());
                Err(e)
            }
        }
    }

    /// One transaction that writes `user`'s rows: the user's advisory lock first; with a
    /// `fence`, the lease it names must still hold; a notification at its commit.
    pub fn write<T, E: From<StoreError>>(
        &self,
        user: &str,
        fence: Option<&Lease>,
        f: impl FnOnce(Db<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        off_runtime(|| self.write_now(user, fence, f))
    }

    fn write_now<T, E: From<StoreError>>(
        &self,
        user: &str,
        fence: Option<&Lease>,
        f: impl FnOnce(Db<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.run(false, |db| {
            db.execute("SELECT pg_advisory_xact_lock(?1)", params![user_key(user)])?;
            if let Some(lease) = fence {
                lease.check(db)?;
            }
            let out = f(db)?;
            db.execute("SELECT pg_notify(?1, ?2)", params![CHANNEL, user])?;
            Ok(out)
        })
    }

    /// `f` in one transaction on a pooled connection (`snapshot`: read-only, repeatable
    /// read), committed when it returns `Ok`.
    fn run<T, E: From<StoreError>>(
        &self,
        snapshot: bool,
        f: impl FnOnce(Db<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut conn = self.conn_now()?;
        let PgConn { client, statements } = &mut *conn;
        let mut builder = client.build_transaction();
        if snapshot {
            builder = builder
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true);
        }
        let tx = builder.start().map_err(StoreError::from)?;
        let cell = RefCell::new(PgTx::new(tx, statements));
        let out = f(Db::Pg(&cell))?;
        cell.into_inner().commit()?;
        Ok(out)
    }

    /// One read-only snapshot.
    pub fn read<T>(&self, f: impl FnOnce(Db<'_>) -> Result<T>) -> Result<T> {
        off_runtime(|| self.run(true, f))
    }

    /// Take one request from the token bucket `key` (`per_second`, bursts of `burst`), on the
    /// database's clock: `Ok(Err(wait))` when it is empty. One statement, so instances
    /// taking from one bucket at once each see the other's take.
    pub fn take_token(
        &self,
        key: &str,
        per_second: f64,
        burst: f64,
    ) -> Result<std::result::Result<(), Duration>> {
        static TAKES: AtomicI64 = AtomicI64::new(0);
        let refill = format!(
            "LEAST(CAST(?2 AS DOUBLE PRECISION), rate_limits.tokens + ({STMT_NOW_MS} - rate_limits.at) * CAST(?3 AS DOUBLE PRECISION) / 1000.0)"
        );
        let (allowed, tokens): (bool, f64) = self.transaction(|db| {
            // Now and then, the buckets idle for an hour (full again) go.
            if TAKES.fetch_add(1, Ordering::Relaxed) % 4096 == 0 {
                db.execute(
                    &format!("DELETE FROM rate_limits WHERE at < {STMT_NOW_MS} - 3600000"),
                    params![],
                )?;
            }
            db.query_row(
                &format!(
                    "INSERT INTO rate_limits (key, tokens, at, allowed)
                     VALUES (?1, CAST(?2 AS DOUBLE PRECISION) - 1, {STMT_NOW_MS}, 1)
                     ON CONFLICT (key) DO UPDATE SET
                        tokens = CASE WHEN {refill} >= 1 THEN {refill} - 1 ELSE {refill} END,
                        allowed = CASE WHEN {refill} >= 1 THEN 1 ELSE 0 END,
                        at = {STMT_NOW_MS}
                     RETURNING allowed, tokens"
                ),
                params![key, burst, per_second],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })?;
        if allowed {
            Ok(Ok(()))
        } else {
            Ok(Err(Duration::from_secs_f64(
                ((1.0 - tokens) / per_second).clamp(0.001, 86_400.0),
            )))
        }
    }

    /// One transaction of its own, for rows no single user owns (leases, rate limits).
    pub fn transaction<T>(&self, f: impl FnOnce(Db<'_>) -> Result<T>) -> Result<T> {
        off_runtime(|| self.run(false, f))
    }

    fn migrate(&self) -> Result<()> {
        let what = format!("the database {}", self.shown);
        self.transaction(|db| {
            db.execute("SELECT pg_advisory_xact_lock(?1)", params![MIGRATION_LOCK])?;
            super::schema::migrate_steps(db, &STEPS, SCHEMA_VERSION, SCHEMA_VERSION, &what)
        })
    }
}

/// The data dirs whose rows this process keeps in PostgreSQL (each opened through
/// `[store] url`): what follows a data dir's changes ([`super::ChangeReader::open`]) follows
/// the database then.
static DATA_DIRS: Mutex<Vec<(std::path::PathBuf, Arc<Shared>)>> = Mutex::new(Vec::new());

pub(super) fn serve_data_dir(data_dir: &std::path::Path, shared: &Arc<Shared>) {
    let mut dirs = DATA_DIRS.lock().unwrap_or_else(|p| p.into_inner());
    dirs.retain(|(d, _)| d != data_dir);
    dirs.push((data_dir.to_path_buf(), shared.clone()));
}

/// The database `data_dir`'s rows are kept in, when they are in PostgreSQL.
pub(super) fn for_data_dir(data_dir: &std::path::Path) -> Option<Arc<Shared>> {
    let dirs = DATA_DIRS.lock().unwrap_or_else(|p| p.into_inner());
    dirs.iter()
        .find(|(d, _)| d == data_dir)
        .map(|(_, s)| s.clone())
}

/// Bring the database at `url` to a given version (tests of upgrades start from an older one).
#[doc(hidden)]
pub fn migrate_to_for_tests(url: &str, version: i64) -> Result<()> {
    let mut client = config_of(url)?.connect(postgres::NoTls)?;
    let mut statements = HashMap::new();
    let cell = RefCell::new(PgTx::new(client.transaction()?, &mut statements));
    super::schema::migrate_steps(
        Db::Pg(&cell),
        &STEPS,
        version,
        SCHEMA_VERSION,
        &format!("the database {}", crate::net::redact_url(url)),
    )?;
    cell.into_inner().commit()
}

/// Run `f`, which blocks on PostgreSQL, from any thread: the client runs a small runtime of
/// its own, which may not start on a thread that drives tokio's tasks, so on a worker of a
/// multi-threaded runtime `f` runs through `block_in_place` (the worker's tasks move to
/// another thread meanwhile). On blocking threads and outside tokio it runs as it is. (A
/// single-threaded runtime's own thread cannot block: the program runs none.)
fn off_runtime<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The advisory lock key of a user: FNV-1a of its id, the same in every process.
pub fn user_key(user: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"autotrade:user:".iter().chain(user.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// Listen for commits until the pool is gone; on a broken connection, connect again (and
/// count that as a change: notifications may have been missed meanwhile).
fn listen(config: postgres::Config, shared: Weak<Shared>) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        drop(s);
        let mut client = match config.connect(postgres::NoTls) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("PostgreSQL listener cannot connect: {e}");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")) {
            tracing::warn!("PostgreSQL listener cannot LISTEN: {e}");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        if let Some(s) = shared.upgrade() {
            s.version.fetch_add(1, Ordering::AcqRel);
        }
        loop {
            let Some(s) = shared.upgrade() else { return };
            let mut heard = 0;
            let mut failed = false;
            {
                let mut n = client.notifications();
                let mut it = n.timeout_iter(Duration::from_millis(500));
                loop {
                    match it.next() {
                        Ok(Some(_)) => heard += 1,
                        Err(e) => {
                            tracing::warn!("PostgreSQL listener lost its connection: {e}");
                            failed = true;
                            break;
                        }
                        Ok(None) => break,
                    }
                    if heard >= 64 {
                        break;
                    }
                }
            }
            if heard > 0 {
                s.version.fetch_add(heard, Ordering::AcqRel);
            }
            if failed || client.is_closed() {
                break;
            }
        }
    }
}

/// A loop's lease, as its writes check it.
#[derive(Debug)]
pub struct Lease {
    pub user: String,
    pub owner: String,
}

impl Lease {
    /// In the write's transaction: the lease is this owner's and not expired. The row is
    /// locked for the transaction, so a takeover waits for this write's commit.
    fn check(&self, db: Db<'_>) -> Result<()> {
        let held = db.query_map(
            &format!(
                "SELECT 1 FROM loop_leases WHERE user_id = ?1 AND owner = ?2 AND expires_at > {DB_NOW_MS} FOR SHARE"
            ),
            params![self.user, self.owner],
            |_| Ok(()),
        )?;
        if held.is_empty() {
            return Err(StoreError::Other(format!(
                "this instance no longer holds the loop of user {:?}: another instance took it over; nothing was written",
                self.user
            )));
        }
        Ok(())
    }
}

/// The loop leases of a database, as one instance (`owner`) takes, renews and gives them up.
pub struct Leases {
    shared: Arc<Shared>,
    pub owner: String,
    /// How long a lease lives unrenewed (ms).
    pub ttl_ms: i64,
}

impl Leases {
    pub fn new(shared: Arc<Shared>, ttl: Duration) -> Leases {
        Leases {
            shared,
            owner: instance_id(),
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Take `user`'s lease if nobody holds it (or it expired, or it is ours already).
    pub fn try_take(&self, user: &str) -> Result<bool> {
        self.shared.transaction(|db| {
            let taken = db.query_map(
                &format!(
                    "INSERT INTO loop_leases (user_id, owner, expires_at, taken_at)
                     VALUES (?1, ?2, {DB_NOW_MS} + ?3, {DB_NOW_MS})
                     ON CONFLICT (user_id) DO UPDATE
                        SET owner = excluded.owner, expires_at = excluded.expires_at,
                            taken_at = CASE WHEN loop_leases.owner = excluded.owner
                                THEN loop_leases.taken_at ELSE excluded.taken_at END
                     WHERE loop_leases.owner = excluded.owner OR loop_leases.expires_at <= {DB_NOW_MS}
                     RETURNING user_id"
                ),
                params![user, self.owner, self.ttl_ms],
                |_| Ok(()),
            )?;
            Ok(!taken.is_empty())
        })
    }

    /// Renew every lease this instance still holds; the users whose lease it holds now (one
    /// that expired before this renewal is not renewed: another instance may have it).
    pub fn renew(&self) -> Result<Vec<String>> {
        self.shared.transaction(|db| {
            db.query_map(
                &format!(
                    "UPDATE loop_leases SET expires_at = {DB_NOW_MS} + ?2
                     WHERE owner = ?1 AND expires_at > {DB_NOW_MS} RETURNING user_id"
                ),
                params![self.owner, self.ttl_ms],
                |r| r.get(0),
            )
        })
    }

    /// Give `user`'s lease up (the loop stopped).
    pub fn release(&self, user: &str) -> Result<()> {
        self.shared.transaction(|db| {
            db.execute(
                "DELETE FROM loop_leases WHERE user_id = ?1 AND owner = ?2",
                params![user, self.owner],
            )?;
            Ok(())
        })
    }

    /// The fence for `user`'s loop.
    pub fn lease(&self, user: &str) -> Arc<Lease> {
        Arc::new(Lease {
            user: user.to_string(),
            owner: self.owner.clone(),
        })
    }

    /// The leases in force now: user, owner.
    pub fn live(&self) -> Result<Vec<(String, String)>> {
        self.shared.read(|db| {
            db.query_map(
                &format!("SELECT user_id, owner FROM loop_leases WHERE expires_at > {DB_NOW_MS}"),
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    /// Give every lease of this instance up (it stops): another takes them over at once.
    pub fn release_all(&self) -> Result<()> {
        self.shared.transaction(|db| {
            db.execute(
                "DELETE FROM loop_leases WHERE owner = ?1",
                params![self.owner],
            )?;
            Ok(())
        })
    }

    /// Every lease: user, owner, expiry (ms on the database's clock).
    pub fn all(&self) -> Result<Vec<(String, String, i64)>> {
        self.shared.read(|db| {
            db.query_map(
                "SELECT user_id, owner, expires_at FROM loop_leases ORDER BY user_id",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
    }
}

/// This process among the instances: host, pid and a random part (a restarted process on
/// the same pid is another owner).
pub fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let random = super::new_log_id();
    format!(
        "{host}-{}-{}",
        std::process::id(),
        random.trim_start_matches("decision_")
    )
}
