//! SQLite, the audit trail and the source of truth: a repository of decisions, orders,
//! positions, fills, prices, events and runtime state, split by table. It stores and loads;
//! it decides nothing (the desk does).
//!
//! Every status change is one `BEGIN IMMEDIATE` transaction ([`Store::write`]); the database
//! runs in WAL mode with `synchronous=FULL` and an explicit busy timeout, so the dashboard,
//! the command line and the API can share one data dir.

pub mod backup;
mod changes;
pub(crate) mod db;
mod decisions;
mod events;
pub mod health;
mod orders;
mod outcomes;
pub mod pg;
mod positions;
mod rows;
mod schema;
mod state;
mod tokens;

pub use crate::domain::lifecycle::{OrderStatus, Origin, Status};
pub use crate::domain::records::*;
pub use changes::{Change, ChangeReader, Changes, Cursor, FillRecord};
/// The repository's SQL as PostgreSQL runs it (see [`db`]).
pub use db::pg_sql;
pub use decisions::StalePending;
pub use health::{STORE_BACK_EVENT, WriteHealth};
pub use orders::NewOrder;
pub use outcomes::{ClosedTrade, FollowedDecision, OutcomeRecord};
pub use positions::NewPosition;
pub use schema::SCHEMA_VERSION;
pub use state::SourceHealth;

use chrono::Utc;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

pub const DB_FILE: &str = "autotrade.db";
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`Store::write_urgent`] keeps trying.
pub const URGENT_WAIT: Duration = Duration::from_secs(30);

/// The busy handler of [`Store::write_urgent`]: look again every half millisecond (its own
/// deadline ends the retries; this bound only keeps one wait finite).
fn urgent_busy(attempt: i32) -> bool {
    std::thread::sleep(Duration::from_micros(500));
    attempt < 60_000
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(rusqlite::Error),
    #[error("store (PostgreSQL): {}", pg_message(.0))]
    Postgres(postgres::Error),
    /// A query that must find a row found none.
    #[error("store: no such row")]
    NoRow,
    #[error("store: {0}")]
    Other(String),
    /// The store file is damaged, emptied or not ours: refused, with where the last good
    /// backup is.
    #[error("{0}")]
    Damaged(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        health::note(&e);
        StoreError::Sqlite(e)
    }
}

/// What PostgreSQL said, not only "db error": its message, detail and SQLSTATE.
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{} ({detail}; SQLSTATE {})", d.message(), d.code().code()),
            None => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        },
        None => e.to_string(),
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        health::note_pg(&e);
        StoreError::Postgres(e)
    }
}

impl StoreError {
    /// SQLite's own word that the file is not a sound database.
    fn is_corruption(&self) -> bool {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, DatabaseCorrupt | NotADatabase))
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A new `decision_` id: 12 random lowercase hex digits.
pub fn new_log_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("decision_{:012x}", h.finish() & 0xffff_ffff_ffff)
}

pub struct Store {
    backend: Backend,
    user_id: String,
    health: std::sync::Arc<health::HealthCell>,
    /// Tests only: every write fails as on a full database (see [`Store::inject_full`]).
    full: std::sync::atomic::AtomicBool,
    /// PostgreSQL only: the loop lease this store's writes must hold (see [`pg::Lease`]).
    fence: Option<std::sync::Arc<pg::Lease>>,
}

/// Where the rows live: a SQLite file (one connection of this store's own) or a PostgreSQL
/// database (a pool this process shares between its users).
enum Backend {
    Lite(Mutex<Connection>),
    Pg(std::sync::Arc<pg::Shared>),
}

/// The repository inside one transaction (or one read): every query and write of a user's
/// rows, stamped with one `now`.
pub struct Tx<'a> {
    conn: db::Db<'a>,
    user: &'a str,
    now: i64,
    /// PostgreSQL: this transaction holds the lock every write of the shared `prices` rows
    /// takes (see [`pg::PRICES_LOCK`]).
    prices_locked: std::cell::Cell<bool>,
}

impl Tx<'_> {
    pub fn user_id(&self) -> &str {
        self.user
    }
    /// The wall clock when the transaction began, in ms.
    pub fn now(&self) -> i64 {
        self.now
    }
}

impl Store {
    /// Open the store in `data_dir` for `user_id`; `enabled` seeds the runtime switch. A data
    /// dir without a store gets a new one (made whole under another name, then linked into
    /// place, so that no other process ever sees it empty); one whose store is missing while
    /// backups of it exist, is empty (0 bytes), is not a database, or holds no autotrade-tui
    /// schema is refused with [`StoreError::Damaged`], which says where the last good backup is.
    pub fn open(data_dir: &Path, user_id: &str, enabled: bool) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Other(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DB_FILE);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() == 0 => {
                return Err(damaged(data_dir, "is empty (0 bytes)"));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !backup::list(data_dir).is_empty() {
                    return Err(damaged(
                        data_dir,
                        "is missing, though backups of it exist (to start a fresh store, move the backups directory aside too)",
                    ));
                }
                create_fresh(data_dir)?;
            }
            Err(e) => {
                return Err(StoreError::Other(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        }
        let opened = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(StoreError::from)
        .and_then(|conn| Store::from_connection(conn, user_id, enabled, true));
        opened.map_err(|e| match e {
            StoreError::Damaged(what) => damaged(data_dir, &what),
            e if e.is_corruption() => damaged(data_dir, &format!("is damaged ({e})")),
            e => e,
        })
    }

    /// `PRAGMA quick_check` of the whole file, at start: a damaged store is refused
    /// ([`StoreError::Damaged`]) before anything is written into it.
    pub fn check_whole(&self, data_dir: &Path) -> Result<()> {
        let Some(conn) = self.lock() else {
            // PostgreSQL checks its own pages.
            return Ok(());
        };
        let verdict: std::result::Result<Vec<String>, StoreError> = (|| {
            let mut stmt = conn.prepare("PRAGMA quick_check(5)")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })();
        match verdict {
            Ok(v) if v.len() == 1 && v[0] == "ok" => Ok(()),
            Ok(v) => Err(damaged(
                data_dir,
                &format!("is damaged (quick_check: {})", v.join("; ")),
            )),
            Err(e) if e.is_corruption() => Err(damaged(data_dir, &format!("is damaged ({e})"))),
            Err(e) => Err(e),
        }
    }

    /// An in-memory store, for tests and benchmarks.
    pub fn open_in_memory(user_id: &str, enabled: bool) -> Result<Store> {
        Store::from_connection(Connection::open_in_memory()?, user_id, enabled, false)
    }

    /// `ours`: the store must already hold the schema (a file this program made).
    fn from_connection(
        conn: Connection,
        user_id: &str,
        enabled: bool,
        ours: bool,
    ) -> Result<Store> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        if ours {
            let version: Option<String> = conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'schema_version'",
                    [],
                    |r| r.get(0),
                )
                .ok();
            if version.is_none() {
                let tables: i64 =
                    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
                return Err(StoreError::Damaged(if tables == 0 {
                    "holds no tables at all (emptied)".into()
                } else {
                    "holds no autotrade-tui schema (it is some other database)".into()
                }));
            }
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Store::prepared(Backend::Lite(Mutex::new(conn)), user_id, enabled)
    }

    /// The store of `user_id` in the PostgreSQL database at `url` (`[store] url`): the
    /// process's pool for that database, its schema brought up to date on first use.
    pub fn open_url(url: &str, user_id: &str, enabled: bool) -> Result<Store> {
        let shared = pg::Shared::get(url)?;
        Store::prepared(Backend::Pg(shared), user_id, enabled)
    }

    /// The store where `[store] url` says: PostgreSQL when set, else SQLite in `data_dir`.
    pub fn open_configured(
        config: &crate::config::Config,
        data_dir: &Path,
        user_id: &str,
        enabled: bool,
    ) -> Result<Store> {
        match config.store_url() {
            Some(url) => {
                let shared = pg::Shared::get_sized(&url, config.store.pool_size)?;
                pg::serve_data_dir(data_dir, &shared);
                Store::prepared(Backend::Pg(shared), user_id, enabled)
            }
            None => Store::open(data_dir, user_id, enabled),
        }
    }

    fn prepared(backend: Backend, user_id: &str, enabled: bool) -> Result<Store> {
        let store = Store {
            backend,
            user_id: user_id.to_string(),
            health: Default::default(),
            full: Default::default(),
            fence: None,
        };
        // Urgent: `kill` on the command line opens the store first, and must not queue
        // behind busy cycles there either.
        let prepared = store.write_urgent(|tx| {
            if let db::Db::Lite(conn) = tx.conn {
                schema::migrate(conn)?;
            }
            tx.init_state(enabled)
        });
        match prepared {
            Ok(()) => {}
            // A store that cannot write (a full disk) but is whole and current is still read:
            // the front ends say it is failing rather than nothing at all.
            Err(e) if store.health().is_failing() && store.readable_as_is()? => {
                tracing::error!("the store opened, but cannot write: {e}");
            }
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// Another handle on the same PostgreSQL store whose every write first checks, in its
    /// own transaction, that `lease` still holds this user's loop: a loop that lost its
    /// lease (its instance stalled past the lease's life) writes nothing more. SQLite has one
    /// engine per data dir (the data dir's lock) and needs no fence: the same store then.
    pub fn fenced(
        self: &std::sync::Arc<Self>,
        lease: std::sync::Arc<pg::Lease>,
    ) -> std::sync::Arc<Store> {
        match &self.backend {
            Backend::Pg(shared) => std::sync::Arc::new(Store {
                backend: Backend::Pg(shared.clone()),
                user_id: self.user_id.clone(),
                health: self.health.clone(),
                full: Default::default(),
                fence: Some(lease),
            }),
            Backend::Lite(_) => self.clone(),
        }
    }

    /// Whether the rows live in PostgreSQL.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Pg(_))
    }

    /// The PostgreSQL pool this store uses, if it is on PostgreSQL.
    pub fn pg(&self) -> Option<&std::sync::Arc<pg::Shared>> {
        match &self.backend {
            Backend::Pg(s) => Some(s),
            Backend::Lite(_) => None,
        }
    }

    /// The schema is this program's and the user's state row exists.
    fn readable_as_is(&self) -> Result<bool> {
        let current = match &self.backend {
            Backend::Lite(_) => SCHEMA_VERSION,
            Backend::Pg(_) => pg::SCHEMA_VERSION,
        };
        self.read(|t| {
            let version = t.meta_get("schema_version")?;
            let state: i64 = t.conn.query_row(
                "SELECT COUNT(*) FROM state WHERE user_id = ?1",
                db::params![t.user],
                |r| r.get(0),
            )?;
            Ok(version == Some(current.to_string()) && state == 1)
        })
    }

    /// For tests: while `on`, the database may not grow and every write must, so SQLite
    /// answers SQLITE_FULL as on a full disk (see [`health`]).
    pub fn inject_full(&self, on: bool) {
        self.full.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the store can write, as the last write found.
    pub fn health(&self) -> health::WriteHealth {
        self.health.get()
    }

    /// The cell every clone of this store shares: to watch, and to hold exits in.
    pub fn health_cell(&self) -> &std::sync::Arc<health::HealthCell> {
        &self.health
    }

    /// The SQLite connection (PostgreSQL has none of its own: `None`).
    pub(crate) fn lock(&self) -> Option<MutexGuard<'_, Connection>> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back
        // the open transaction when its guard drops.
        match &self.backend {
            Backend::Lite(m) => Some(match m.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            }),
            Backend::Pg(_) => None,
        }
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// What every write does after its own work, in its transaction: the first commit after
    /// an outage says so.
    fn after_write(&self, t: &Tx<'_>) -> Result<()> {
        if let Some(was) = self.health.failing() {
            t.add_event(
                "warn",
                &format!(
                    "{STORE_BACK_EVENT} after {}s of failures ({} writes failed: {})",
                    t.now.saturating_sub(was.since_ms) / 1000,
                    was.failures,
                    was.message
                ),
            )?;
        }
        Ok(())
    }

    /// Run `f` inside one transaction that writes (SQLite: `BEGIN IMMEDIATE`; PostgreSQL:
    /// the user's advisory lock first): committed when `f` returns `Ok`, rolled back when it
    /// returns `Err`.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let now = now_ms();
        health::take_noted();
        let result = match &self.backend {
            Backend::Lite(_) => {
                let Some(mut conn) = self.lock() else {
                    unreachable!("a SQLite store has its connection")
                };
                (|| {
                    let tx = conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .map_err(|e| E::from(e.into()))?;
                    health::inject(&tx, self.full.load(std::sync::atomic::Ordering::Relaxed))
                        .map_err(|e| E::from(e.into()))?;
                    let t = Tx {
                        conn: db::Db::Lite(&tx),
                        user: &self.user_id,
                        now,
                        prices_locked: Default::default(),
                    };
                    let out = f(&t)?;
                    self.after_write(&t).map_err(E::from)?;
                    tx.commit().map_err(|e| E::from(e.into()))?;
                    Ok(out)
                })()
            }
            Backend::Pg(shared) => shared.write(&self.user_id, self.fence.as_deref(), |conn| {
                let t = Tx {
                    conn,
                    user: &self.user_id,
                    now,
                    prices_locked: Default::default(),
                };
                let out = f(&t)?;
                self.after_write(&t).map_err(E::from)?;
                Ok(out)
            }),
        };
        match &result {
            Ok(_) => self.health.recovered(now),
            Err(_) => {
                if let Some(why) = health::take_noted() {
                    self.health.failed(&why, now);
                }
            }
        }
        result
    }

    /// [`write`](Self::write) for what must not wait behind other writers (the kill switch):
    /// while another connection writes, SQLite's own wait backs off to 100 ms between looks,
    /// so a busy store lets other writers in first; this one looks every half millisecond,
    /// takes the lock as soon as it is free, and tries again when refused as busy, for up to
    /// [`URGENT_WAIT`]. (PostgreSQL wakes a waiter as soon as the lock is free: a plain write.)
    pub fn write_urgent<T, E: From<StoreError>>(
        &self,
        f: impl Fn(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let Some(mut conn) = self.lock() else {
            return self.write(f);
        };
        let deadline = std::time::Instant::now() + URGENT_WAIT;
        let _ = conn.busy_handler(Some(urgent_busy));
        // Only BEGIN IMMEDIATE and COMMIT wait for the lock; statements inside hold it.
        let is_busy = |e: &rusqlite::Error| {
            matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            )
        };
        let out = loop {
            let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
                Ok(tx) => tx,
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => continue,
                Err(e) => break Err(E::from(e.into())),
            };
            let out = match f(&Tx {
                conn: db::Db::Lite(&tx),
                user: &self.user_id,
                now: now_ms(),
                prices_locked: Default::default(),
            }) {
                Ok(v) => v,
                Err(e) => break Err(e),
            };
            match tx.commit() {
                Ok(()) => break Ok(out),
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => continue,
                Err(e) => break Err(E::from(e.into())),
            }
        };
        // Back to the ordinary wait for everything else on this connection.
        let _ = conn.busy_timeout(BUSY_TIMEOUT);
        out
    }

    /// Run `f`'s reads (SQLite: on the connection, each statement on the latest commit;
    /// PostgreSQL: in one read-only snapshot).
    pub fn read<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Lite(_) => {
                let Some(conn) = self.lock() else {
                    unreachable!("a SQLite store has its connection")
                };
                f(&Tx {
                    conn: db::Db::Lite(&conn),
                    user: &self.user_id,
                    now: now_ms(),
                    prices_locked: Default::default(),
                })
            }
            Backend::Pg(shared) => shared.read(|conn| {
                f(&Tx {
                    conn,
                    user: &self.user_id,
                    now: now_ms(),
                    prices_locked: Default::default(),
                })
            }),
        }
    }

    /// Run `f`'s reads inside one read transaction, so that they all see the same committed
    /// state (a position closing between two reads is counted once, not twice or never).
    /// Only for a store that one thread uses at a time, such as the dashboard's watcher:
    /// a write from another thread on this connection would fail inside the transaction.
    /// (On PostgreSQL every [`read`](Self::read) is one snapshot already.)
    pub fn read_consistent<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let Some(conn) = self.lock() else {
            return f();
        };
        conn.execute_batch("BEGIN DEFERRED")
            .map_err(|e| E::from(StoreError::from(e)))?;
        drop(conn);
        let out = f();
        // Nothing was written: ending the transaction cannot lose anything.
        if let Some(conn) = self.lock() {
            let _ = conn.execute_batch("COMMIT");
        }
        out
    }

    /// A counter that changes when another connection commits (cheap change detection; on
    /// PostgreSQL, when a notification of a commit arrives).
    pub fn data_version(&self) -> Result<i64> {
        match &self.backend {
            Backend::Lite(_) => {
                let Some(conn) = self.lock() else {
                    unreachable!("a SQLite store has its connection")
                };
                Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
            }
            Backend::Pg(shared) => Ok(shared.version()),
        }
    }

    /// `PRAGMA integrity_check`: "ok" when the database file is sound (PostgreSQL keeps its
    /// own: "ok" once it answers).
    pub fn integrity_check(&self) -> Result<String> {
        match &self.backend {
            Backend::Lite(_) => {
                let Some(conn) = self.lock() else {
                    unreachable!("a SQLite store has its connection")
                };
                Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
            }
            Backend::Pg(shared) => {
                shared.read(|db| db.query_row("SELECT 1", db::params![], |_| Ok(())))?;
                Ok("ok".into())
            }
        }
    }
    /// The schema version the store is at.
    pub fn schema_version(&self) -> Result<Option<String>> {
        self.meta_get("schema_version")
    }
}

/// A new store in `data_dir`: made whole (schema, WAL mode) under a temporary name, then
/// hard-linked to its name, which fails if another process made one meanwhile (theirs is
/// used). Only a file system without hard links falls back to a rename.
fn create_fresh(data_dir: &Path) -> Result<()> {
    let path = data_dir.join(DB_FILE);
    let temp = data_dir.join(format!(
        ".{DB_FILE}.new-{}-{}",
        std::process::id(),
        now_ms()
    ));
    let made = (|| -> Result<()> {
        let mut conn = Connection::open(&temp)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let tx = conn.transaction()?;
        schema::migrate(&tx)?;
        tx.commit()?;
        conn.close().map_err(|(_, e)| StoreError::from(e))?;
        Ok(())
    })();
    let linked = made.and_then(|()| match std::fs::hard_link(&temp, &path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) if !path.exists() => std::fs::rename(&temp, &path)
            .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", path.display()))),
        Err(e) => Err(StoreError::Other(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    });
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", temp.display()));
    }
    linked
}

/// The refusal of a damaged, emptied or foreign store: what is wrong, and where the last
/// good backup is.
fn damaged(data_dir: &Path, what: &str) -> StoreError {
    StoreError::Damaged(format!(
        "the store {} {what}; it was not used. {}",
        data_dir.join(DB_FILE).display(),
        backup::advice(data_dir)
    ))
}

/// Reads the front ends make one at a time, each on the latest commit.
impl Store {
    pub fn state(&self) -> Result<RuntimeState> {
        self.read(|t| t.state())
    }
    pub fn decision(&self, log_id: &str) -> Result<Option<DecisionLog>> {
        self.read(|t| t.decision(log_id))
    }
    /// Newest first. `status`: only that status; `limit`: at most that many.
    pub fn decisions(&self, limit: usize, status: Option<Status>) -> Result<Vec<DecisionLog>> {
        self.read(|t| t.decisions(limit, status))
    }
    /// The latest decision for each symbol, newest first.
    pub fn latest_per_symbol(&self) -> Result<Vec<DecisionLog>> {
        self.read(|t| t.latest_per_symbol())
    }
    pub fn count_decisions(&self, status: Option<Status>) -> Result<usize> {
        self.read(|t| t.count_decisions(status))
    }
    pub fn open_positions(&self) -> Result<Vec<Position>> {
        self.read(|t| t.open_positions())
    }
    pub fn closed_positions(&self, limit: usize) -> Result<Vec<Position>> {
        self.read(|t| t.closed_positions(limit))
    }
    /// Sum of realized P&L over closed positions.
    pub fn realized_pnl(&self) -> Result<f64> {
        self.read(|t| t.realized_pnl())
    }
    pub fn latest_price(&self, symbol: &str) -> Result<Option<PricePoint>> {
        self.read(|t| t.price(symbol))
    }
    pub fn prices(&self) -> Result<std::collections::BTreeMap<String, PricePoint>> {
        self.read(|t| t.prices())
    }
    /// Fills, newest first (the audit trail of executions).
    pub fn fills(&self, limit: usize) -> Result<Vec<Fill>> {
        self.read(|t| t.fills(limit))
    }
    /// Orders, newest first.
    pub fn orders(&self, limit: usize) -> Result<Vec<Order>> {
        self.read(|t| t.orders(limit))
    }
    /// The newest `limit` events, newest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<Event>> {
        self.read(|t| t.recent_events(limit))
    }
    /// Store many decisions in one transaction (imports and benchmarks).
    pub fn insert_decisions_bulk(
        &self,
        decisions: &[crate::domain::rules::Decision],
        status: Status,
        origin: Origin,
        mode: &str,
    ) -> Result<usize> {
        self.write(|t| t.insert_decisions_bulk(decisions, status, origin, mode))
    }
    pub fn add_event(&self, level: &str, message: &str) -> Result<()> {
        self.write(|t| t.add_event(level, message))
    }
    /// A small named value kept with the store (e.g. the simulated market's origin).
    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        self.read(|t| t.meta_get(key))
    }
    /// Set `key` unless it is set already; returns the value in force.
    pub fn meta_get_or_init(&self, key: &str, value: &str) -> Result<String> {
        self.write(|t| t.meta_get_or_init(key, value))
    }
    pub fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        self.write(|t| t.meta_set(key, value))
    }
}
