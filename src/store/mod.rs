//! SQLite, the audit trail and the source of truth: a repository of decisions, orders,
//! positions, fills, prices, events and runtime state, split by table. It stores and loads;
//! it decides nothing (the desk does).
//!
//! Every status change is one `BEGIN IMMEDIATE` transaction ([`Store::write`]); the database
//! runs in WAL mode with `synchronous=FULL` and an explicit busy timeout, so the dashboard,
//! the command line and the API can share one data dir.

mod changes;
mod decisions;
mod events;
mod orders;
mod outcomes;
mod positions;
mod rows;
mod schema;
mod state;
mod tokens;

pub use crate::domain::lifecycle::{OrderStatus, Origin, Status};
pub use crate::domain::records::*;
pub use changes::{Change, ChangeReader, Changes, Cursor, FillRecord};
pub use decisions::StalePending;
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
    Sqlite(#[from] rusqlite::Error),
    #[error("store: {0}")]
    Other(String),
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
    conn: Mutex<Connection>,
    user_id: String,
}

/// The repository inside one transaction (or one read): every query and write of a user's
/// rows, stamped with one `now`.
pub struct Tx<'a> {
    conn: &'a Connection,
    user: &'a str,
    now: i64,
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
    /// Open (creating) the store in `data_dir` for `user_id`; `enabled` seeds the runtime switch.
    pub fn open(data_dir: &Path, user_id: &str, enabled: bool) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Other(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let conn = Connection::open(data_dir.join(DB_FILE))?;
        Store::from_connection(conn, user_id, enabled)
    }

    /// An in-memory store, for tests and benchmarks.
    pub fn open_in_memory(user_id: &str, enabled: bool) -> Result<Store> {
        Store::from_connection(Connection::open_in_memory()?, user_id, enabled)
    }

    fn from_connection(conn: Connection, user_id: &str, enabled: bool) -> Result<Store> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let store = Store {
            conn: Mutex::new(conn),
            user_id: user_id.to_string(),
        };
        // Urgent: `kill` on the command line opens the store first, and must not queue
        // behind busy cycles there either.
        store.write_urgent(|tx| {
            schema::migrate(tx.conn)?;
            tx.init_state(enabled)
        })?;
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back
        // the open transaction when its guard drops.
        match self.conn.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Run `f` inside one `BEGIN IMMEDIATE` transaction: committed when `f` returns `Ok`,
    /// rolled back when it returns `Err`.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| E::from(e.into()))?;
        let out = f(&Tx {
            conn: &tx,
            user: &self.user_id,
            now: now_ms(),
        })?;
        tx.commit().map_err(|e| E::from(e.into()))?;
        Ok(out)
    }

    /// [`write`](Self::write) for what must not wait behind other writers (the kill switch):
    /// while another connection writes, SQLite's own wait backs off to 100 ms between looks,
    /// so a busy store lets other writers in first; this one looks every half millisecond,
    /// takes the lock as soon as it is free, and tries again when refused as busy, for up to
    /// [`URGENT_WAIT`].
    pub fn write_urgent<T, E: From<StoreError>>(
        &self,
        f: impl Fn(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let deadline = std::time::Instant::now() + URGENT_WAIT;
        let mut conn = self.lock();
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
                conn: &tx,
                user: &self.user_id,
                now: now_ms(),
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

    /// Run `f`'s reads on the connection (each statement sees the latest commit).
    pub fn read<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let conn = self.lock();
        f(&Tx {
            conn: &conn,
            user: &self.user_id,
            now: now_ms(),
        })
    }

    /// Run `f`'s reads inside one read transaction, so that they all see the same committed
    /// state (a position closing between two reads is counted once, not twice or never).
    /// Only for a store that one thread uses at a time, such as the dashboard's watcher:
    /// a write from another thread on this connection would fail inside the transaction.
    pub fn read_consistent<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.lock()
            .execute_batch("BEGIN DEFERRED")
            .map_err(|e| E::from(StoreError::from(e)))?;
        let out = f();
        // Nothing was written: ending the transaction cannot lose anything.
        let _ = self.lock().execute_batch("COMMIT");
        out
    }

    /// A counter that changes when another connection commits (cheap change detection).
    pub fn data_version(&self) -> Result<i64> {
        let conn = self.lock();
        Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// `PRAGMA integrity_check`: "ok" when the database file is sound.
    pub fn integrity_check(&self) -> Result<String> {
        let conn = self.lock();
        Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }

    /// The schema version the store is at.
    pub fn schema_version(&self) -> Result<Option<String>> {
        self.meta_get("schema_version")
    }
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
