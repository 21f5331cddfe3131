//! SQLite: decisions, positions, fills, prices, events and runtime state.
//!
//! The store is the audit trail and the source of truth. Every status change is one
//! `BEGIN IMMEDIATE` transaction; the database runs in WAL mode with `synchronous=FULL`
//! and an explicit busy timeout, so the dashboard, the command line and the API can
//! share one data dir.

use crate::broker::paper;
use crate::domain::rules::{self, Decision, Gates, RiskReward, RiskSettings};
use crate::domain::{Action, Phase};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

pub const SCHEMA_VERSION: i64 = 1;
pub const DB_FILE: &str = "autotrade.db";
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Refused(String),
    #[error("no decision {0} for this user")]
    UnknownDecision(String),
    #[error("store: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Where a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Auto,
    Manual,
    Agent,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Auto => "auto",
            Origin::Manual => "manual",
            Origin::Agent => "agent",
        }
    }
    fn parse(s: &str) -> Origin {
        match s {
            "manual" => Origin::Manual,
            "agent" => Origin::Agent,
            _ => Origin::Auto,
        }
    }
}

/// The lifecycle of SPEC rule 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Hold,
    Pending,
    Executed,
    Cancelled,
    Expired,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Hold => "hold",
            Status::Pending => "pending",
            Status::Executed => "executed",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
            Status::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Status {
        match s {
            "pending" => Status::Pending,
            "executed" => Status::Executed,
            "cancelled" => Status::Cancelled,
            "expired" => Status::Expired,
            "failed" => Status::Failed,
            _ => Status::Hold,
        }
    }
}

/// One stored decision, as the decision log JSON shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionLog {
    pub log_id: String,
    pub user_id: String,
    pub created_at_ms: i64,
    pub status: Status,
    pub status_reason: Option<String>,
    pub executed_at_ms: Option<i64>,
    pub mode: String,
    pub origin: Origin,
    pub decision: Decision,
    /// The AMD phase answer as received (or `{"error": ...}`).
    pub amd_input: Value,
}

impl DecisionLog {
    /// The SPEC's decision log JSON.
    pub fn to_json(&self) -> Value {
        let d = &self.decision;
        serde_json::json!({
            "log_id": self.log_id,
            "created_at": fmt_ts(self.created_at_ms),
            "status": self.status.as_str(),
            "executed": self.status == Status::Executed,
            "executed_at": self.executed_at_ms.map(fmt_ts),
            "mode": self.mode,
            "origin": self.origin.as_str(),
            "status_reason": self.status_reason,
            "decision": {
                "symbol": d.symbol,
                "action": d.action.as_str(),
                "confidence": d.confidence,
                "reasoning": d.reasoning,
                "entry_price": d.entry_price,
                "take_profit": d.take_profit,
                "stop_loss": d.stop_loss,
                "position_size": d.position_size,
                "ml_signal": d.ml_signal,
                "amd_phase": d.amd_phase.map(|p| p.as_str()),
            },
            "risk_reward": d.risk_reward,
        })
    }

    /// The AMD phase confidence as the source reported it, when it did.
    pub fn amd_confidence(&self) -> Option<f64> {
        self.amd_input.get("confidence").and_then(Value::as_f64)
    }
}

/// An open or closed paper position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Position {
    pub id: i64,
    pub decision_id: String,
    pub symbol: String,
    pub side: Action,
    pub quantity: f64,
    pub entry_price: f64,
    pub take_profit: f64,
    pub stop_loss: f64,
    pub opened_at_ms: i64,
    pub mode: String,
    pub closed_at_ms: Option<i64>,
    pub exit_price: Option<f64>,
    pub realized_pnl: Option<f64>,
    pub close_reason: Option<String>,
}

/// One execution on the paper broker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fill {
    pub symbol: String,
    pub side: String,
    pub quantity: f64,
    pub price: f64,
    pub at_ms: i64,
    /// `open` or `close`.
    pub kind: String,
}

/// Runtime switches kept across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuntimeState {
    pub enabled: bool,
    pub kill_switch: bool,
    pub last_cycle_at_ms: Option<i64>,
}

/// A line of the recent-events pane.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    pub at_ms: i64,
    pub level: String,
    pub message: String,
}

/// A latest known price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PricePoint {
    pub price: f64,
    pub at_ms: i64,
}

/// What a cycle wants stored for one symbol.
pub struct CycleInput<'a> {
    pub symbol: &'a str,
    pub signal: &'a std::result::Result<Value, String>,
    pub phase: &'a std::result::Result<Value, String>,
    /// The latest market price the source reported, if any.
    pub price: Option<f64>,
}

/// The limits a status change must respect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub risk: RiskSettings,
    pub max_open_positions: usize,
    pub require_confirmation: bool,
    pub pending_expiry: Duration,
    pub mode: &'static str,
}

/// What happened to one symbol in one cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleOutcome {
    pub log: DecisionLog,
    pub closed: Vec<Position>,
    pub executed: Option<Position>,
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `2026-11-25T11:00:00Z`.
pub fn fmt_ts(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        None => String::from("invalid-time"),
    }
}

pub fn to_datetime(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
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

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    log_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    executed_at INTEGER,
    mode TEXT NOT NULL,
    origin TEXT NOT NULL,
    symbol TEXT NOT NULL,
    action TEXT NOT NULL,
    confidence REAL NOT NULL,
    reasoning TEXT NOT NULL,
    entry_price REAL,
    take_profit REAL,
    stop_loss REAL,
    position_size REAL NOT NULL,
    amd_phase TEXT,
    ml_signal TEXT NOT NULL,
    amd_input TEXT NOT NULL,
    risk_reward TEXT
);
CREATE INDEX IF NOT EXISTS decisions_by_user ON decisions(user_id, seq);
CREATE INDEX IF NOT EXISTS decisions_by_status ON decisions(user_id, status, seq);
CREATE INDEX IF NOT EXISTS decisions_by_symbol ON decisions(user_id, symbol, seq);
CREATE TABLE IF NOT EXISTS positions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    entry_price REAL NOT NULL,
    take_profit REAL NOT NULL,
    stop_loss REAL NOT NULL,
    opened_at INTEGER NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    closed_at INTEGER,
    exit_price REAL,
    realized_pnl REAL,
    close_reason TEXT
);
CREATE INDEX IF NOT EXISTS positions_by_status ON positions(user_id, status, symbol);
-- The recovery check at every start reads these two indexes only: every executed decision
-- and its position.
CREATE INDEX IF NOT EXISTS positions_by_decision ON positions(decision_id, user_id);
CREATE INDEX IF NOT EXISTS decisions_executed ON decisions(user_id, log_id) WHERE status = 'executed';
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    position_id INTEGER NOT NULL,
    decision_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    price REAL NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS prices (
    symbol TEXT PRIMARY KEY,
    price REAL NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    user_id TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    kill_switch INTEGER NOT NULL,
    last_cycle_at INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_user ON events(user_id, id);
"#;

fn decision_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DecisionLog> {
    let action: String = row.get("action")?;
    let status: String = row.get("status")?;
    let origin: String = row.get("origin")?;
    let phase: Option<String> = row.get("amd_phase")?;
    let ml_signal: String = row.get("ml_signal")?;
    let amd_input: String = row.get("amd_input")?;
    let rr: Option<String> = row.get("risk_reward")?;
    Ok(DecisionLog {
        log_id: row.get("log_id")?,
        user_id: row.get("user_id")?,
        created_at_ms: row.get("created_at")?,
        status: Status::parse(&status),
        status_reason: row.get("status_reason")?,
        executed_at_ms: row.get("executed_at")?,
        mode: row.get("mode")?,
        origin: Origin::parse(&origin),
        amd_input: serde_json::from_str(&amd_input).unwrap_or(Value::Null),
        decision: Decision {
            symbol: row.get("symbol")?,
            action: Action::parse(&action).unwrap_or(Action::Hold),
            confidence: row.get("confidence")?,
            reasoning: row.get("reasoning")?,
            entry_price: row.get("entry_price")?,
            take_profit: row.get("take_profit")?,
            stop_loss: row.get("stop_loss")?,
            position_size: row.get("position_size")?,
            ml_signal: serde_json::from_str(&ml_signal).unwrap_or(Value::Null),
            amd_phase: phase.as_deref().and_then(Phase::parse),
            risk_reward: rr.and_then(|s| serde_json::from_str::<RiskReward>(&s).ok()),
        },
    })
}

fn position_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Position> {
    let side: String = row.get("side")?;
    Ok(Position {
        id: row.get("id")?,
        decision_id: row.get("decision_id")?,
        symbol: row.get("symbol")?,
        side: Action::parse(&side).unwrap_or(Action::Buy),
        quantity: row.get("quantity")?,
        entry_price: row.get("entry_price")?,
        take_profit: row.get("take_profit")?,
        stop_loss: row.get("stop_loss")?,
        opened_at_ms: row.get("opened_at")?,
        mode: row.get("mode")?,
        closed_at_ms: row.get("closed_at")?,
        exit_price: row.get("exit_price")?,
        realized_pnl: row.get("realized_pnl")?,
        close_reason: row.get("close_reason")?,
    })
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
        let path = data_dir.join(DB_FILE);
        let conn = Connection::open(&path)?;
        let store = Store::from_connection(conn, user_id)?;
        store.init_state(enabled)?;
        Ok(store)
    }

    /// An in-memory store, for tests and benchmarks.
    pub fn open_in_memory(user_id: &str, enabled: bool) -> Result<Store> {
        let store = Store::from_connection(Connection::open_in_memory()?, user_id)?;
        store.init_state(enabled)?;
        Ok(store)
    }

    fn from_connection(conn: Connection, user_id: &str) -> Result<Store> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let store = Store {
            conn: Mutex::new(conn),
            user_id: user_id.to_string(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        let version: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match version.as_deref().map(str::parse::<i64>) {
            None => {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )?;
            }
            Some(Ok(v)) if v <= SCHEMA_VERSION => {}
            Some(Ok(v)) => {
                return Err(StoreError::Other(format!(
                    "the store has schema version {v}, newer than this program's {SCHEMA_VERSION}: upgrade autotrade-tui"
                )));
            }
            Some(Err(_)) => {
                return Err(StoreError::Other(
                    "the store's schema version is unreadable".into(),
                ));
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn init_state(&self, enabled: bool) -> Result<()> {
        let conn = self.lock();
        conn.execute(
            "INSERT OR IGNORE INTO state (user_id, enabled, kill_switch, updated_at) VALUES (?1, ?2, 0, ?3)",
            params![self.user_id, enabled, now_ms()],
        )?;
        Ok(())
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

    /// Run `f` inside one `BEGIN IMMEDIATE` transaction and commit it.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
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

    // ---------- state ----------

    pub fn state(&self) -> Result<RuntimeState> {
        let conn = self.lock();
        read_state(&conn, &self.user_id)
    }

    /// Turn auto-trading on; clears the kill switch.
    pub fn enable(&self) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE state SET enabled = 1, kill_switch = 0, updated_at = ?2 WHERE user_id = ?1",
                params![self.user_id, now_ms()],
            )?;
            add_event(tx, &self.user_id, "info", "auto-trading enabled")?;
            Ok(())
        })
    }

    pub fn disable(&self) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE state SET enabled = 0, updated_at = ?2 WHERE user_id = ?1",
                params![self.user_id, now_ms()],
            )?;
            add_event(tx, &self.user_id, "info", "auto-trading disabled")?;
            Ok(())
        })
    }

    /// Kill switch: disable and cancel every pending decision, in one transaction.
    /// Returns the number of decisions cancelled.
    pub fn kill(&self) -> Result<usize> {
        self.write(|tx| {
            let now = now_ms();
            tx.execute(
                "UPDATE state SET enabled = 0, kill_switch = 1, updated_at = ?2 WHERE user_id = ?1",
                params![self.user_id, now],
            )?;
            let n = tx.execute(
                "UPDATE decisions SET status = 'cancelled', status_reason = 'kill switch', updated_at = ?2
                 WHERE user_id = ?1 AND status = 'pending'",
                params![self.user_id, now],
            )?;
            add_event(
                tx,
                &self.user_id,
                "warn",
                &format!("KILL SWITCH: auto-trading disabled, {n} pending decision(s) cancelled"),
            )?;
            Ok(n)
        })
    }

    pub fn set_last_cycle(&self, at_ms: i64) -> Result<()> {
        let conn = self.lock();
        conn.execute(
            "UPDATE state SET last_cycle_at = ?2 WHERE user_id = ?1",
            params![self.user_id, at_ms],
        )?;
        Ok(())
    }

    // ---------- meta ----------

    /// A small named value kept with the store (e.g. the simulated market's origin).
    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        let conn = self.lock();
        Ok(conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Set `key` unless it is set already; returns the value in force.
    pub fn meta_get_or_init(&self, key: &str, value: &str) -> Result<String> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            Ok(
                tx.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                    r.get(0)
                })?,
            )
        })
    }

    pub fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    // ---------- events ----------

    pub fn add_event(&self, level: &str, message: &str) -> Result<()> {
        self.write(|tx| add_event(tx, &self.user_id, level, message))
    }

    /// The newest `limit` events, newest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<Event>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, at, level, message FROM events WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![self.user_id, limit as i64], |r| {
            Ok(Event {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                level: r.get(2)?,
                message: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    // ---------- prices ----------

    pub fn latest_price(&self, symbol: &str) -> Result<Option<PricePoint>> {
        let conn = self.lock();
        read_price(&conn, symbol)
    }

    pub fn prices(&self) -> Result<std::collections::BTreeMap<String, PricePoint>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT symbol, price, at FROM prices")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                PricePoint {
                    price: r.get(1)?,
                    at_ms: r.get(2)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Record a price and close any open position whose TP or SL it crosses.
    pub fn update_price(&self, symbol: &str, price: f64) -> Result<Vec<Position>> {
        self.write(|tx| price_tick(tx, &self.user_id, symbol, price, now_ms()))
    }

    /// Record several prices in one transaction; returns the positions they closed.
    pub fn update_prices(&self, prices: &[(String, f64)]) -> Result<Vec<Position>> {
        self.write(|tx| {
            let now = now_ms();
            let mut closed = Vec::new();
            for (symbol, price) in prices {
                if price.is_finite() && *price > 0.0 {
                    closed.extend(price_tick(tx, &self.user_id, symbol, *price, now)?);
                }
            }
            Ok(closed)
        })
    }

    // ---------- decisions ----------

    /// Store a decision with a status, in its own transaction.
    pub fn insert_decision(
        &self,
        decision: &Decision,
        status: Status,
        origin: Origin,
        mode: &str,
        amd_input: &Value,
    ) -> Result<DecisionLog> {
        self.write(|tx| {
            insert_decision(
                tx,
                &self.user_id,
                decision,
                status,
                origin,
                mode,
                amd_input,
                now_ms(),
            )
        })
    }

    /// Store many decisions in one transaction (imports and benchmarks).
    pub fn insert_decisions_bulk(
        &self,
        decisions: &[Decision],
        status: Status,
        origin: Origin,
        mode: &str,
    ) -> Result<usize> {
        self.write(|tx| {
            let now = now_ms();
            for d in decisions {
                let amd = serde_json::json!({ "phase": d.amd_phase.map(|p| p.as_str()) });
                insert_decision(tx, &self.user_id, d, status, origin, mode, &amd, now)?;
            }
            Ok(decisions.len())
        })
    }

    /// One symbol of a monitoring cycle, in one transaction: record the price, close
    /// positions it crosses, read the gates, decide, store, and execute at once when
    /// confirmation is not required.
    pub fn record_cycle(&self, input: &CycleInput<'_>, limits: &Limits) -> Result<CycleOutcome> {
        self.write(|tx| {
            let now = now_ms();
            expire_stale(tx, &self.user_id, limits.pending_expiry, now)?;
            cycle_symbol(tx, &self.user_id, input, limits, now)
        })
    }

    /// A whole cycle in one transaction (one disk sync instead of one per symbol); the
    /// symbols are decided in order, so earlier ones count against the gates of later ones.
    pub fn record_cycle_batch(
        &self,
        inputs: &[CycleInput<'_>],
        limits: &Limits,
    ) -> Result<Vec<CycleOutcome>> {
        self.write(|tx| {
            let now = now_ms();
            expire_stale(tx, &self.user_id, limits.pending_expiry, now)?;
            inputs
                .iter()
                .map(|input| cycle_symbol(tx, &self.user_id, input, limits, now))
                .collect()
        })
    }

    /// Store a decision that a person or an agent asked for, after the gates, in one
    /// transaction: pending, or executed at once when `execute` is set. A refusal stores
    /// nothing actionable (an event records it).
    pub fn record_manual(
        &self,
        decision: &Decision,
        origin: Origin,
        execute: bool,
        limits: &Limits,
    ) -> Result<(DecisionLog, Option<Position>)> {
        let outcome = self.write(|tx| {
            let now = now_ms();
            let gates = read_gates(
                tx,
                &self.user_id,
                &decision.symbol,
                limits.max_open_positions,
            )?;
            if let Some(g) = gates.blocked_by(&decision.symbol) {
                let msg = format!("{} {} refused: {g}", decision.action, decision.symbol);
                add_event(
                    tx,
                    &self.user_id,
                    "warn",
                    &format!("{} trade {msg}", origin.as_str()),
                )?;
                return Ok(Err(msg));
            }
            let amd_input = serde_json::json!({ "phase": decision.amd_phase.map(|p| p.as_str()) });
            let log = insert_decision(
                tx,
                &self.user_id,
                decision,
                Status::Pending,
                origin,
                limits.mode,
                &amd_input,
                now,
            )?;
            add_event(
                tx,
                &self.user_id,
                "info",
                &format!(
                    "{} {} {} {} proposed ({})",
                    origin.as_str(),
                    decision.action,
                    crate::money::fmt_qty(decision.position_size),
                    decision.symbol,
                    log.log_id
                ),
            )?;
            if execute {
                let (pos, updated) = execute_pending(tx, &self.user_id, &log, limits, now)?;
                return Ok(Ok((updated, Some(pos))));
            }
            Ok(Ok((log, None)))
        })?;
        outcome.map_err(StoreError::Refused)
    }

    /// A decision an agent asked for (MCP `auto_trade_decision`): the cycle's rules and
    /// gates in one transaction, stored with origin agent. An actionable decision always
    /// stays pending, whatever `require_confirmation` says: agents propose, people confirm.
    pub fn record_agent_decision(
        &self,
        input: &CycleInput<'_>,
        limits: &Limits,
    ) -> Result<CycleOutcome> {
        let limits = Limits {
            require_confirmation: true,
            ..*limits
        };
        self.write(|tx| {
            let now = now_ms();
            expire_stale(tx, &self.user_id, limits.pending_expiry, now)?;
            let mut outcome = cycle_symbol(tx, &self.user_id, input, &limits, now)?;
            tx.execute(
                "UPDATE decisions SET origin = ?3 WHERE user_id = ?1 AND log_id = ?2",
                params![self.user_id, outcome.log.log_id, Origin::Agent.as_str()],
            )?;
            outcome.log.origin = Origin::Agent;
            let d = &outcome.log.decision;
            if outcome.log.status == Status::Pending {
                add_event(
                    tx,
                    &self.user_id,
                    "info",
                    &format!(
                        "agent {} {} {} proposed ({})",
                        d.action,
                        crate::money::fmt_qty(d.position_size),
                        d.symbol,
                        outcome.log.log_id
                    ),
                )?;
            }
            Ok(outcome)
        })
    }

    /// Change the size of a pending decision (already validated against the cap).
    pub fn resize_pending(
        &self,
        log_id: &str,
        size: f64,
        risk_reward: &RiskReward,
    ) -> Result<DecisionLog> {
        self.write(|tx| {
            let log = read_decision(tx, &self.user_id, log_id)?
                .ok_or_else(|| StoreError::UnknownDecision(log_id.to_string()))?;
            if log.status != Status::Pending {
                return Err(StoreError::Refused(format!(
                    "{log_id} is {}, not pending: only a pending decision can be resized",
                    log.status.as_str()
                )));
            }
            let rr = serde_json::to_string(risk_reward).map_err(|e| StoreError::Other(e.to_string()))?;
            tx.execute(
                "UPDATE decisions SET position_size = ?3, risk_reward = ?4, updated_at = ?5 WHERE user_id = ?1 AND log_id = ?2",
                params![self.user_id, log_id, size, rr, now_ms()],
            )?;
            add_event(
                tx,
                &self.user_id,
                "info",
                &format!(
                    "resized {} {} from {} to {} ({log_id})",
                    log.decision.action,
                    log.decision.symbol,
                    crate::money::fmt_qty(log.decision.position_size),
                    crate::money::fmt_qty(size)
                ),
            )?;
            read_decision(tx, &self.user_id, log_id)?.ok_or_else(|| StoreError::UnknownDecision(log_id.to_string()))
        })
    }

    /// Confirm a pending decision: re-check the gates, expiry and the latest price, then
    /// fill it on the paper broker. Everything in one transaction.
    pub fn confirm(&self, log_id: &str, limits: &Limits) -> Result<(DecisionLog, Position)> {
        let outcome = self.write(|tx| {
            let now = now_ms();
            let log = read_decision(tx, &self.user_id, log_id)?
                .ok_or_else(|| StoreError::UnknownDecision(log_id.to_string()))?;
            if log.status != Status::Pending {
                return Err(StoreError::Refused(format!(
                    "{log_id} is {}, not pending: only a pending decision can be confirmed",
                    log.status.as_str()
                )));
            }
            let age = Duration::from_millis((now - log.created_at_ms).max(0) as u64);
            if age > limits.pending_expiry {
                let reason = format!(
                    "expired: {}s old, pending_expiry is {}s",
                    age.as_secs(),
                    limits.pending_expiry.as_secs()
                );
                return Ok(Err(refuse_as_expired(
                    tx,
                    &self.user_id,
                    &log,
                    &reason,
                    now,
                )?));
            }
            let gates = read_gates(
                tx,
                &self.user_id,
                &log.decision.symbol,
                limits.max_open_positions,
            )?;
            let gates = Gates {
                symbol_has_pending: false,
                ..gates
            };
            if let Some(g) = gates.blocked_by(&log.decision.symbol) {
                return Err(StoreError::Refused(format!("{log_id} not confirmed: {g}")));
            }
            if let (Some(tp), Some(sl)) = (log.decision.take_profit, log.decision.stop_loss)
                && let Some(p) = read_price(tx, &log.decision.symbol)?
                && paper::exit_reason(log.decision.action, p.price, tp, sl).is_some()
            {
                let reason = format!(
                    "price {} has moved past the take-profit or stop-loss since the decision",
                    rules::fmt_num(p.price)
                );
                return Ok(Err(refuse_as_expired(
                    tx,
                    &self.user_id,
                    &log,
                    &reason,
                    now,
                )?));
            }
            let (pos, updated) = execute_pending(tx, &self.user_id, &log, limits, now)?;
            Ok(Ok((updated, pos)))
        })?;
        outcome.map_err(StoreError::Refused)
    }

    /// Cancel a pending decision.
    pub fn cancel(&self, log_id: &str, reason: &str) -> Result<DecisionLog> {
        self.write(|tx| {
            let now = now_ms();
            let log = read_decision(tx, &self.user_id, log_id)?
                .ok_or_else(|| StoreError::UnknownDecision(log_id.to_string()))?;
            if log.status != Status::Pending {
                return Err(StoreError::Refused(format!(
                    "{log_id} is {}, not pending: only a pending decision can be cancelled",
                    log.status.as_str()
                )));
            }
            set_status(tx, &self.user_id, log_id, Status::Cancelled, reason, now)?;
            add_event(
                tx,
                &self.user_id,
                "info",
                &format!(
                    "cancelled {} {} ({log_id})",
                    log.decision.action, log.decision.symbol
                ),
            )?;
            read_decision(tx, &self.user_id, log_id)?
                .ok_or_else(|| StoreError::UnknownDecision(log_id.to_string()))
        })
    }

    /// After a crash: every execution is one transaction, so a decision is either executed
    /// with its position and fill, or not executed at all. This checks that it is so and
    /// resolves anything that is not: an `executed` decision with no position is marked
    /// `failed` (never executed silently). Returns what it found, for the trader to see.
    pub fn recover_on_start(&self) -> Result<Vec<String>> {
        self.write(|tx| {
            let mut stmt = tx.prepare(
                "SELECT d.log_id, d.symbol, d.action FROM decisions d INDEXED BY decisions_executed
                 WHERE d.user_id = ?1 AND d.status = 'executed'
                   AND NOT EXISTS (SELECT 1 FROM positions p WHERE p.user_id = d.user_id AND p.decision_id = d.log_id)",
            )?;
            let broken = stmt
                .query_map(params![self.user_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let now = now_ms();
            let mut found = Vec::new();
            for (log_id, symbol, action) in broken {
                let reason = "found executed without a position after a restart: marked failed, not executed";
                set_status(tx, &self.user_id, &log_id, Status::Failed, reason, now)?;
                let msg = format!("{action} {symbol} ({log_id}) {reason}");
                add_event(tx, &self.user_id, "error", &msg)?;
                found.push(msg);
            }
            Ok(found)
        })
    }

    /// `PRAGMA integrity_check`: "ok" when the database file is sound.
    pub fn integrity_check(&self) -> Result<String> {
        let conn = self.lock();
        Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }

    /// Expire pending decisions older than `expiry`; returns how many.
    pub fn expire_stale(&self, expiry: Duration) -> Result<usize> {
        self.write(|tx| expire_stale(tx, &self.user_id, expiry, now_ms()))
    }

    pub fn decision(&self, log_id: &str) -> Result<Option<DecisionLog>> {
        let conn = self.lock();
        read_decision(&conn, &self.user_id, log_id)
    }

    /// Newest first. `status`: only that status; `limit`: at most that many.
    pub fn decisions(&self, limit: usize, status: Option<Status>) -> Result<Vec<DecisionLog>> {
        let conn = self.lock();
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = match status {
            Some(s) => {
                let mut stmt = conn.prepare_cached(
                    "SELECT * FROM decisions WHERE user_id = ?1 AND status = ?2 ORDER BY seq DESC LIMIT ?3",
                )?;
                stmt.query_map(params![self.user_id, s.as_str(), limit], decision_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            }
            None => {
                let mut stmt = conn.prepare_cached(
                    "SELECT * FROM decisions WHERE user_id = ?1 ORDER BY seq DESC LIMIT ?2",
                )?;
                stmt.query_map(params![self.user_id, limit], decision_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            }
        };
        Ok(rows)
    }

    /// The latest decision for each symbol, newest first.
    pub fn latest_per_symbol(&self) -> Result<Vec<DecisionLog>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            // A skip-scan over the (user_id, symbol, seq) index: one seek per symbol, so the
            // cost grows with the number of symbols, not with the length of the log.
            "WITH RECURSIVE syms(s) AS (
                 SELECT MIN(symbol) FROM decisions WHERE user_id = ?1
                 UNION ALL
                 SELECT (SELECT MIN(symbol) FROM decisions WHERE user_id = ?1 AND symbol > syms.s)
                 FROM syms WHERE syms.s IS NOT NULL
             )
             SELECT d.* FROM syms
             JOIN decisions d ON d.seq = (
                 SELECT MAX(seq) FROM decisions WHERE user_id = ?1 AND symbol = syms.s
             )
             ORDER BY d.seq DESC",
        )?;
        let rows = stmt
            .query_map(params![self.user_id], decision_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn count_decisions(&self, status: Option<Status>) -> Result<usize> {
        let conn = self.lock();
        let n: i64 = match status {
            Some(s) => conn.query_row(
                "SELECT COUNT(*) FROM decisions WHERE user_id = ?1 AND status = ?2",
                params![self.user_id, s.as_str()],
                |r| r.get(0),
            )?,
            None => conn.query_row(
                "SELECT COUNT(*) FROM decisions WHERE user_id = ?1",
                params![self.user_id],
                |r| r.get(0),
            )?,
        };
        Ok(n as usize)
    }

    // ---------- positions ----------

    pub fn open_positions(&self) -> Result<Vec<Position>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT * FROM positions WHERE user_id = ?1 AND status = 'open' ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![self.user_id], position_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn closed_positions(&self, limit: usize) -> Result<Vec<Position>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT * FROM positions WHERE user_id = ?1 AND status = 'closed' ORDER BY closed_at DESC, id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![self.user_id, limit as i64], position_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Sum of realized P&L over closed positions.
    pub fn realized_pnl(&self) -> Result<f64> {
        let conn = self.lock();
        let v: Option<f64> = conn.query_row(
            "SELECT SUM(realized_pnl) FROM positions WHERE user_id = ?1 AND status = 'closed'",
            params![self.user_id],
            |r| r.get(0),
        )?;
        Ok(v.unwrap_or(0.0))
    }

    /// Close the open position on `symbol` at the latest known price.
    pub fn close_position(&self, symbol: &str, reason: &str) -> Result<Position> {
        self.write(|tx| {
            let now = now_ms();
            let pos = read_open_position(tx, &self.user_id, symbol)?
                .ok_or_else(|| StoreError::Refused(format!("no open position on {symbol}")))?;
            let price = read_price(tx, symbol)?.map(|p| p.price).ok_or_else(|| {
                StoreError::Refused(format!("no known price for {symbol}: cannot close"))
            })?;
            close_position(tx, &self.user_id, &pos, price, reason, now)
        })
    }

    /// Fills, newest first (the audit trail of executions).
    pub fn fills(&self, limit: usize) -> Result<Vec<Fill>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT symbol, side, quantity, price, at, kind FROM fills WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![self.user_id, limit as i64], |r| {
                Ok(Fill {
                    symbol: r.get(0)?,
                    side: r.get(1)?,
                    quantity: r.get(2)?,
                    price: r.get(3)?,
                    at_ms: r.get(4)?,
                    kind: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

/// One symbol of a cycle: record the price, close positions it crosses, read the gates,
/// decide, store, and execute at once when confirmation is not required. The caller expires
/// stale pending decisions first, once per transaction.
fn cycle_symbol(
    tx: &Connection,
    user_id: &str,
    input: &CycleInput<'_>,
    limits: &Limits,
    now: i64,
) -> Result<CycleOutcome> {
    let mut closed = Vec::new();
    if let Some(p) = input.price.filter(|p| p.is_finite() && *p > 0.0) {
        closed = price_tick(tx, user_id, input.symbol, p, now)?;
    }
    let gates = read_gates(tx, user_id, input.symbol, limits.max_open_positions)?;
    let decision = rules::decide(&rules::DecisionInput {
        symbol: input.symbol,
        signal: input.signal,
        phase: input.phase,
        risk: &limits.risk,
        gates: &gates,
    });
    let status = if decision.action.is_actionable() {
        Status::Pending
    } else {
        Status::Hold
    };
    let amd_input = match input.phase {
        Ok(v) => v.clone(),
        Err(e) => serde_json::json!({ "error": e }),
    };
    let mut log = insert_decision(
        tx,
        user_id,
        &decision,
        status,
        Origin::Auto,
        limits.mode,
        &amd_input,
        now,
    )?;
    let mut executed = None;
    if status == Status::Pending && !limits.require_confirmation {
        let (pos, updated) = execute_pending(tx, user_id, &log, limits, now)?;
        executed = Some(pos);
        log = updated;
    }
    Ok(CycleOutcome {
        log,
        closed,
        executed,
    })
}

fn read_state(conn: &Connection, user_id: &str) -> Result<RuntimeState> {
    let st = conn
        .query_row(
            "SELECT enabled, kill_switch, last_cycle_at FROM state WHERE user_id = ?1",
            params![user_id],
            |r| {
                Ok(RuntimeState {
                    enabled: r.get(0)?,
                    kill_switch: r.get(1)?,
                    last_cycle_at_ms: r.get(2)?,
                })
            },
        )
        .optional()?;
    Ok(st.unwrap_or(RuntimeState {
        enabled: false,
        kill_switch: false,
        last_cycle_at_ms: None,
    }))
}

fn read_price(conn: &Connection, symbol: &str) -> Result<Option<PricePoint>> {
    Ok(conn
        .query_row(
            "SELECT price, at FROM prices WHERE symbol = ?1",
            params![symbol],
            |r| {
                Ok(PricePoint {
                    price: r.get(0)?,
                    at_ms: r.get(1)?,
                })
            },
        )
        .optional()?)
}

fn read_decision(conn: &Connection, user_id: &str, log_id: &str) -> Result<Option<DecisionLog>> {
    Ok(conn
        .query_row(
            "SELECT * FROM decisions WHERE user_id = ?1 AND log_id = ?2",
            params![user_id, log_id],
            decision_from_row,
        )
        .optional()?)
}

fn read_open_position(conn: &Connection, user_id: &str, symbol: &str) -> Result<Option<Position>> {
    Ok(conn
        .query_row(
            "SELECT * FROM positions WHERE user_id = ?1 AND symbol = ?2 AND status = 'open' ORDER BY id LIMIT 1",
            params![user_id, symbol],
            position_from_row,
        )
        .optional()?)
}

fn read_gates(
    conn: &Connection,
    user_id: &str,
    symbol: &str,
    max_open_positions: usize,
) -> Result<Gates> {
    let st = read_state(conn, user_id)?;
    let open_positions: i64 = conn.query_row(
        "SELECT COUNT(*) FROM positions WHERE user_id = ?1 AND status = 'open'",
        params![user_id],
        |r| r.get(0),
    )?;
    let symbol_open: i64 = conn.query_row(
        "SELECT COUNT(*) FROM positions WHERE user_id = ?1 AND status = 'open' AND symbol = ?2",
        params![user_id, symbol],
        |r| r.get(0),
    )?;
    let symbol_pending: i64 = conn.query_row(
        "SELECT COUNT(*) FROM decisions WHERE user_id = ?1 AND status = 'pending' AND symbol = ?2",
        params![user_id, symbol],
        |r| r.get(0),
    )?;
    Ok(Gates {
        enabled: st.enabled,
        kill_switch: st.kill_switch,
        symbol_has_open_position: symbol_open > 0,
        symbol_has_pending: symbol_pending > 0,
        open_positions: open_positions as usize,
        max_open_positions,
    })
}

/// The gates for `symbol` as the store sees them now.
pub fn gates_for(store: &Store, symbol: &str, max_open_positions: usize) -> Result<Gates> {
    let conn = store.lock();
    read_gates(&conn, &store.user_id, symbol, max_open_positions)
}

fn add_event(tx: &Connection, user_id: &str, level: &str, message: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO events (user_id, at, level, message) VALUES (?1, ?2, ?3, ?4)",
        params![user_id, now_ms(), level, message],
    )?;
    match level {
        "error" => tracing::error!(user_id, "{message}"),
        "warn" => tracing::warn!(user_id, "{message}"),
        _ => tracing::info!(user_id, "{message}"),
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn insert_decision(
    tx: &Connection,
    user_id: &str,
    d: &Decision,
    status: Status,
    origin: Origin,
    mode: &str,
    amd_input: &Value,
    now: i64,
) -> Result<DecisionLog> {
    let rr = match &d.risk_reward {
        Some(rr) => Some(serde_json::to_string(rr).map_err(|e| StoreError::Other(e.to_string()))?),
        None => None,
    };
    let ml = d.ml_signal.to_string();
    let amd = amd_input.to_string();
    // A 48-bit random id collides rarely; try again with a fresh one when it does.
    for _ in 0..8 {
        let log_id = new_log_id();
        let res = tx.execute(
            "INSERT INTO decisions (log_id, user_id, created_at, updated_at, status, mode, origin, symbol, action,
                confidence, reasoning, entry_price, take_profit, stop_loss, position_size, amd_phase, ml_signal,
                amd_input, risk_reward)
             VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            params![
                log_id,
                user_id,
                now,
                status.as_str(),
                mode,
                origin.as_str(),
                d.symbol,
                d.action.as_str(),
                d.confidence,
                d.reasoning,
                d.entry_price,
                d.take_profit,
                d.stop_loss,
                d.position_size,
                d.amd_phase.map(|p| p.as_str()),
                ml,
                amd,
                rr,
            ],
        );
        match res {
            Ok(_) => {
                tracing::info!(
                    user_id,
                    log_id,
                    symbol = d.symbol,
                    action = d.action.as_str(),
                    status = status.as_str(),
                    "decision: {}",
                    d.reasoning
                );
                return read_decision(tx, user_id, &log_id)?
                    .ok_or(StoreError::UnknownDecision(log_id));
            }
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Other(
        "could not find a unique decision id".into(),
    ))
}

fn set_status(
    tx: &Connection,
    user_id: &str,
    log_id: &str,
    status: Status,
    reason: &str,
    now: i64,
) -> Result<()> {
    tx.execute(
        "UPDATE decisions SET status = ?3, status_reason = ?4, updated_at = ?5 WHERE user_id = ?1 AND log_id = ?2",
        params![user_id, log_id, status.as_str(), reason, now],
    )?;
    tracing::info!(
        user_id,
        log_id,
        status = status.as_str(),
        "status change: {reason}"
    );
    Ok(())
}

/// A confirm that finds its decision stale: mark it expired with the reason, record the
/// event, and return the refusal message.
fn refuse_as_expired(
    tx: &Connection,
    user_id: &str,
    log: &DecisionLog,
    reason: &str,
    now: i64,
) -> Result<String> {
    let log_id = &log.log_id;
    set_status(tx, user_id, log_id, Status::Expired, reason, now)?;
    add_event(
        tx,
        user_id,
        "warn",
        &format!(
            "{log_id} {} {}: {reason}",
            log.decision.action, log.decision.symbol
        ),
    )?;
    Ok(format!("{log_id} not confirmed: {reason}"))
}

fn expire_stale(tx: &Connection, user_id: &str, expiry: Duration, now: i64) -> Result<usize> {
    let cutoff = now - expiry.as_millis().min(i64::MAX as u128) as i64;
    let mut stmt = tx.prepare_cached(
        "SELECT log_id, symbol, action FROM decisions WHERE user_id = ?1 AND status = 'pending' AND created_at < ?2",
    )?;
    let stale = stmt
        .query_map(params![user_id, cutoff], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (log_id, symbol, action) in &stale {
        let reason = format!("expired: pending longer than {}s", expiry.as_secs());
        set_status(tx, user_id, log_id, Status::Expired, &reason, now)?;
        add_event(
            tx,
            user_id,
            "info",
            &format!("{action} {symbol} expired unconfirmed ({log_id})"),
        )?;
    }
    Ok(stale.len())
}

fn price_tick(
    tx: &Connection,
    user_id: &str,
    symbol: &str,
    price: f64,
    now: i64,
) -> Result<Vec<Position>> {
    tx.execute(
        "INSERT INTO prices (symbol, price, at) VALUES (?1, ?2, ?3)
         ON CONFLICT(symbol) DO UPDATE SET price = excluded.price, at = excluded.at",
        params![symbol, price, now],
    )?;
    let mut closed = Vec::new();
    if let Some(pos) = read_open_position(tx, user_id, symbol)?
        && let Some((reason, exit)) =
            paper::exit_on_price(pos.side, price, pos.take_profit, pos.stop_loss)
    {
        closed.push(close_position(tx, user_id, &pos, exit, reason, now)?);
    }
    Ok(closed)
}

/// Fill a pending decision on the paper broker: position, fill, status, event.
fn execute_pending(
    tx: &Connection,
    user_id: &str,
    log: &DecisionLog,
    limits: &Limits,
    now: i64,
) -> Result<(Position, DecisionLog)> {
    let d = &log.decision;
    let (Some(entry), Some(tp), Some(sl)) = (d.entry_price, d.take_profit, d.stop_loss) else {
        return Err(StoreError::Refused(format!(
            "{} has no entry, take-profit or stop-loss",
            log.log_id
        )));
    };
    let fill = match read_price(tx, &d.symbol)? {
        // Never fill on a price older than a pending decision may live (an outage).
        Some(p)
            if now - p.at_ms > limits.pending_expiry.as_millis().min(i64::MAX as u128) as i64 =>
        {
            return Err(StoreError::Refused(format!(
                "{} not executed: the latest {} price ({}) is {}s old; no fill on a stale price",
                log.log_id,
                d.symbol,
                rules::fmt_num(p.price),
                (now - p.at_ms) / 1000
            )));
        }
        Some(p) => p.price,
        None => entry,
    };
    // The cap is a property of the decision: checked against its entry price.
    let max_qty = rules::max_quantity(&limits.risk, entry);
    if d.position_size > max_qty + 1e-12 {
        return Err(StoreError::Refused(format!(
            "{} size {} is over the cap of {} at entry {} (max_position_percent {})",
            log.log_id,
            rules::fmt_num(d.position_size),
            rules::fmt_num(max_qty),
            rules::fmt_num(entry),
            rules::fmt_num(limits.risk.max_position_percent)
        )));
    }
    // The price may have moved away from the stop since the decision: the position must not
    // risk more at its fill than the risk limit (or than the trader chose for a manual size).
    let risk_at_fill = rules::round_dp(rules::mul_exact(d.position_size, (fill - sl).abs()), 2);
    let risk_limit = rules::round_dp(
        limits.risk.account_size * limits.risk.max_risk_percent / 100.0,
        2,
    );
    let allowed = d
        .risk_reward
        .map_or(risk_limit, |rr| rr.risk_amount.max(risk_limit));
    if risk_at_fill > allowed {
        return Err(StoreError::Refused(format!(
            "{} not executed: at {} the position would risk {}, over the {} allowed \
             (max_risk_percent {}%); resize it or cancel it",
            log.log_id,
            rules::fmt_num(fill),
            crate::money::fmt_money(risk_at_fill),
            crate::money::fmt_money(allowed),
            rules::fmt_num(limits.risk.max_risk_percent)
        )));
    }
    tx.execute(
        "INSERT INTO positions (user_id, decision_id, symbol, side, quantity, entry_price, take_profit, stop_loss,
            opened_at, mode, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'open')",
        params![user_id, log.log_id, d.symbol, d.action.as_str(), d.position_size, fill, tp, sl, now, log.mode],
    )?;
    let position_id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO fills (user_id, position_id, decision_id, symbol, side, quantity, price, at, kind, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open', 'decision executed')",
        params![user_id, position_id, log.log_id, d.symbol, d.action.as_str(), d.position_size, fill, now],
    )?;
    tx.execute(
        "UPDATE decisions SET status = 'executed', executed_at = ?3, updated_at = ?3, status_reason = ?4
         WHERE user_id = ?1 AND log_id = ?2",
        params![user_id, log.log_id, now, format!("filled at {} ({})", rules::fmt_num(fill), log.mode)],
    )?;
    add_event(
        tx,
        user_id,
        "info",
        &format!(
            "executed {} {} {} @ {} ({}, {})",
            d.action,
            rules::fmt_num(d.position_size),
            d.symbol,
            rules::fmt_num(fill),
            log.mode,
            log.log_id
        ),
    )?;
    let pos = tx.query_row(
        "SELECT * FROM positions WHERE id = ?1",
        params![position_id],
        position_from_row,
    )?;
    let updated = read_decision(tx, user_id, &log.log_id)?
        .ok_or_else(|| StoreError::UnknownDecision(log.log_id.clone()))?;
    Ok((pos, updated))
}

fn close_position(
    tx: &Connection,
    user_id: &str,
    pos: &Position,
    price: f64,
    reason: &str,
    now: i64,
) -> Result<Position> {
    let pnl = rules::round_dp(
        paper::pnl(pos.side, pos.quantity, pos.entry_price, price),
        2,
    );
    tx.execute(
        "UPDATE positions SET status = 'closed', closed_at = ?2, exit_price = ?3, realized_pnl = ?4, close_reason = ?5
         WHERE id = ?1",
        params![pos.id, now, price, pnl, reason],
    )?;
    let close_side = match pos.side {
        Action::Buy => "SELL",
        _ => "BUY",
    };
    tx.execute(
        "INSERT INTO fills (user_id, position_id, decision_id, symbol, side, quantity, price, at, kind, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'close', ?9)",
        params![user_id, pos.id, pos.decision_id, pos.symbol, close_side, pos.quantity, price, now, reason],
    )?;
    add_event(
        tx,
        user_id,
        if pnl < 0.0 { "warn" } else { "info" },
        &format!(
            "closed {} {} {} @ {} ({reason}), P&L {}",
            pos.side,
            rules::fmt_num(pos.quantity),
            pos.symbol,
            rules::fmt_num(price),
            crate::money::fmt_signed(pnl)
        ),
    )?;
    Ok(tx.query_row(
        "SELECT * FROM positions WHERE id = ?1",
        params![pos.id],
        position_from_row,
    )?)
}

// ---------- per-user settings (the REST API's POSTed AutoTradeConfig) ----------

const USER_SETTINGS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS user_settings (
    user_id TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_at INTEGER NOT NULL
)";

impl Store {
    /// Create or replace `user_id`'s auto-trade settings (a JSON object); returns true when
    /// the user had none before. Store-wide: any user, not only this store's.
    pub fn put_user_settings(&self, user_id: &str, settings: &Value) -> Result<bool> {
        self.write(|tx| {
            tx.execute_batch(USER_SETTINGS_SCHEMA)?;
            let existed: bool = tx
                .query_row(
                    "SELECT 1 FROM user_settings WHERE user_id = ?1",
                    params![user_id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            tx.execute(
                "INSERT INTO user_settings (user_id, settings, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
                params![user_id, settings.to_string(), now_ms()],
            )?;
            Ok(!existed)
        })
    }

    /// Every user's stored settings, by user id.
    pub fn all_user_settings(&self) -> Result<Vec<(String, Value)>> {
        self.write(|tx| {
            tx.execute_batch(USER_SETTINGS_SCHEMA)?;
            let mut stmt =
                tx.prepare("SELECT user_id, settings FROM user_settings ORDER BY user_id")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(u, s)| {
                    serde_json::from_str(&s)
                        .map(|v| (u.clone(), v))
                        .map_err(|e| StoreError::Other(format!("settings of {u}: {e}")))
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits(require_confirmation: bool, max_open: usize) -> Limits {
        Limits {
            risk: RiskSettings {
                account_size: 10_000.0,
                max_risk_percent: 1.5,
                max_position_percent: 20.0,
                min_confidence: 0.75,
            },
            max_open_positions: max_open,
            require_confirmation,
            pending_expiry: Duration::from_secs(600),
            mode: "paper",
        }
    }

    fn bullish(entry: f64) -> std::result::Result<Value, String> {
        Ok(
            json!({"direction": "bullish", "confidence": 0.9, "entry_price": entry,
                  "take_profit": entry * 1.05, "stop_loss": entry * 0.98, "risk_reward_ratio": 2.5}),
        )
    }

    fn accumulation() -> std::result::Result<Value, String> {
        Ok(json!({"phase": "accumulation", "confidence": 0.8, "indicators": {}}))
    }

    fn cycle(store: &Store, symbol: &str, price: f64, l: &Limits) -> CycleOutcome {
        store
            .record_cycle(
                &CycleInput {
                    symbol,
                    signal: &bullish(price),
                    phase: &accumulation(),
                    price: Some(price),
                },
                l,
            )
            .unwrap()
    }

    #[test]
    fn pending_then_confirm_then_second_confirm_refused() {
        let s = Store::open_in_memory("u", true).unwrap();
        let l = limits(true, 3);
        let out = cycle(&s, "BTC/USD", 100.0, &l);
        assert_eq!(out.log.status, Status::Pending);
        let (log, pos) = s.confirm(&out.log.log_id, &l).unwrap();
        assert_eq!(log.status, Status::Executed);
        assert_eq!(pos.entry_price, 100.0);
        let err = s.confirm(&out.log.log_id, &l).unwrap_err().to_string();
        assert!(err.contains("not pending"), "{err}");
        assert_eq!(s.open_positions().unwrap().len(), 1);
    }

    #[test]
    fn cancel_then_confirm_refused_and_unknown_id() {
        let s = Store::open_in_memory("u", true).unwrap();
        let l = limits(true, 3);
        let out = cycle(&s, "BTC/USD", 100.0, &l);
        s.cancel(&out.log.log_id, "by trader").unwrap();
        assert!(s.confirm(&out.log.log_id, &l).is_err());
        assert!(s.cancel(&out.log.log_id, "again").is_err());
        assert!(matches!(
            s.confirm("decision_000000000000", &l),
            Err(StoreError::UnknownDecision(_))
        ));
        assert!(s.open_positions().unwrap().is_empty());
    }

    #[test]
    fn second_cycle_does_not_requeue_a_pending_symbol() {
        let s = Store::open_in_memory("u", true).unwrap();
        let l = limits(true, 3);
        cycle(&s, "BTC/USD", 100.0, &l);
        let second = cycle(&s, "BTC/USD", 100.0, &l);
        assert_eq!(second.log.status, Status::Hold);
        assert!(
            second.log.decision.reasoning.contains("pending"),
            "{}",
            second.log.decision.reasoning
        );
    }

    #[test]
    fn auto_execution_respects_max_open_positions() {
        let s = Store::open_in_memory("u", true).unwrap();
        let l = limits(false, 1);
        let a = cycle(&s, "BTC/USD", 100.0, &l);
        let b = cycle(&s, "ETH/USD", 50.0, &l);
        assert_eq!(a.log.status, Status::Executed);
        assert_eq!(b.log.status, Status::Hold);
        assert!(b.log.decision.reasoning.contains("max_open_positions"));
    }

    #[test]
    fn price_crossing_take_profit_closes_with_pnl() {
        let s = Store::open_in_memory("u", true).unwrap();
        let l = limits(false, 3);
        let out = cycle(&s, "BTC/USD", 100.0, &l);
        let pos = out.executed.unwrap();
        let closed = s.update_price("BTC/USD", 106.0).unwrap();
        assert_eq!(closed.len(), 1);
        let expected = rules::round_dp(pos.quantity * (105.0 - 100.0), 2);
        assert_eq!(closed[0].realized_pnl, Some(expected));
        assert_eq!(s.realized_pnl().unwrap(), expected);
        assert!(s.open_positions().unwrap().is_empty());
    }

    #[test]
    fn kill_cancels_pending_and_blocks_until_enable() {
        let s = Store::open_in_memory("u", true).unwrap();
        let l = limits(true, 3);
        let out = cycle(&s, "BTC/USD", 100.0, &l);
        assert_eq!(s.kill().unwrap(), 1);
        assert_eq!(
            s.decision(&out.log.log_id).unwrap().unwrap().status,
            Status::Cancelled
        );
        let after = cycle(&s, "ETH/USD", 100.0, &l);
        assert_eq!(after.log.status, Status::Hold);
        assert!(after.log.decision.reasoning.contains("kill switch"));
        s.enable().unwrap();
        assert_eq!(cycle(&s, "ETH/USD", 100.0, &l).log.status, Status::Pending);
    }

    #[test]
    fn expired_decision_is_refused() {
        let s = Store::open_in_memory("u", true).unwrap();
        let mut l = limits(true, 3);
        let out = cycle(&s, "BTC/USD", 100.0, &l);
        l.pending_expiry = Duration::from_millis(0);
        // created_at is in the past relative to a zero expiry once a millisecond has passed.
        s.lock()
            .execute("UPDATE decisions SET created_at = created_at - 1000", [])
            .unwrap();
        let err = s.confirm(&out.log.log_id, &l).unwrap_err().to_string();
        assert!(err.contains("expired"), "{err}");
        assert_eq!(
            s.decision(&out.log.log_id).unwrap().unwrap().status,
            Status::Expired
        );
    }

    #[test]
    fn confirm_refused_when_price_moved_past_stop() {
        let s = Store::open_in_memory("u", true).unwrap();
        let l = limits(true, 3);
        let out = cycle(&s, "BTC/USD", 100.0, &l);
        s.update_price("BTC/USD", 97.0).unwrap();
        let err = s.confirm(&out.log.log_id, &l).unwrap_err().to_string();
        assert!(err.contains("moved past"), "{err}");
        assert!(s.open_positions().unwrap().is_empty());
    }

    #[test]
    fn decision_json_has_the_spec_shape() {
        let s = Store::open_in_memory("u", true).unwrap();
        let out = cycle(&s, "BTC/USD", 100.0, &limits(true, 3));
        let j = out.log.to_json();
        assert!(j["log_id"].as_str().unwrap().starts_with("decision_"));
        assert_eq!(j["status"], "pending");
        assert_eq!(j["executed"], false);
        assert_eq!(j["mode"], "paper");
        assert_eq!(j["decision"]["action"], "BUY");
        assert_eq!(j["decision"]["amd_phase"], "accumulation");
        assert!(j["risk_reward"]["risk_amount"].is_number());
        assert!(j["created_at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn recovery_marks_an_executed_decision_without_a_position_failed() {
        let s = Store::open_in_memory("u", true).unwrap();
        let l = limits(true, 3);
        let ok = cycle(&s, "BTC/USD", 100.0, &l);
        s.confirm(&ok.log.log_id, &l).unwrap();
        let broken = cycle(&s, "ETH/USD", 100.0, &l);
        s.lock()
            .execute(
                "UPDATE decisions SET status = 'executed' WHERE log_id = ?1",
                params![broken.log.log_id],
            )
            .unwrap();
        let found = s.recover_on_start().unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(&broken.log.log_id));
        assert_eq!(
            s.decision(&broken.log.log_id).unwrap().unwrap().status,
            Status::Failed
        );
        assert_eq!(
            s.decision(&ok.log.log_id).unwrap().unwrap().status,
            Status::Executed
        );
        assert!(s.recover_on_start().unwrap().is_empty());
        assert_eq!(s.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn latest_per_symbol_returns_each_symbols_newest_decision() {
        let s = Store::open_in_memory("u", true).unwrap();
        let l = limits(true, 3);
        let mut newest = std::collections::BTreeMap::new();
        for round in 0..3 {
            for sym in ["BTC/USD", "ETH/USD", "SOL/USD"] {
                let out = cycle(&s, sym, 100.0 + round as f64, &l);
                newest.insert(sym.to_string(), out.log.log_id);
            }
        }
        let latest = s.latest_per_symbol().unwrap();
        assert_eq!(latest.len(), 3);
        for log in &latest {
            assert_eq!(newest[&log.decision.symbol], log.log_id);
        }
        assert_eq!(latest[0].decision.symbol, "SOL/USD", "newest first");
    }

    #[test]
    fn no_fill_on_a_stale_price() {
        let s = Store::open_in_memory("u", true).unwrap();
        let l = limits(true, 3);
        let out = cycle(&s, "BTC/USD", 100.0, &l);
        // The price stopped updating long ago (an outage), though the decision is fresh.
        s.lock()
            .execute("UPDATE prices SET at = at - 3600000", [])
            .unwrap();
        let err = s.confirm(&out.log.log_id, &l).unwrap_err().to_string();
        assert!(err.contains("stale price"), "{err}");
        assert!(s.open_positions().unwrap().is_empty());
        assert_eq!(
            s.decision(&out.log.log_id).unwrap().unwrap().status,
            Status::Pending
        );
    }

    #[test]
    fn reads_inside_read_consistent_see_one_moment() {
        let dir = tempfile::tempdir().unwrap();
        let reader = Store::open(dir.path(), "u", true).unwrap();
        let writer = Store::open(dir.path(), "u", true).unwrap();
        let l = limits(true, 3);
        cycle(&writer, "BTC/USD", 100.0, &l);
        let (before, during) = reader
            .read_consistent(|| -> Result<(usize, usize)> {
                let before = reader.count_decisions(None)?;
                cycle(&writer, "ETH/USD", 100.0, &l);
                Ok((before, reader.count_decisions(None)?))
            })
            .unwrap();
        assert_eq!((before, during), (1, 1), "a commit in between is not seen");
        assert_eq!(
            reader.count_decisions(None).unwrap(),
            2,
            "and is seen afterwards"
        );
    }

    #[test]
    fn no_fill_that_would_risk_more_than_the_limit() {
        let s = Store::open_in_memory("u", true).unwrap();
        let mut l = limits(true, 3);
        l.risk.max_position_percent = 100.0;
        // BUY at 100, SL 98, TP 105: 1.5 % of 10,000 is 150 at risk, so 75 units.
        let out = cycle(&s, "BTC/USD", 100.0, &l);
        assert_eq!(out.log.decision.position_size, 75.0);
        // Price runs up towards the TP: from 104.9 the stop is 6.9 away, 517.50 at risk.
        s.update_price("BTC/USD", 104.9).unwrap();
        let err = s.confirm(&out.log.log_id, &l).unwrap_err().to_string();
        assert!(
            err.contains("would risk 517.50, over the 150.00 allowed"),
            "{err}"
        );
        assert!(s.open_positions().unwrap().is_empty());
        assert_eq!(
            s.decision(&out.log.log_id).unwrap().unwrap().status,
            Status::Pending
        );
        // Back at the entry it fills.
        s.update_price("BTC/USD", 100.0).unwrap();
        s.confirm(&out.log.log_id, &l).unwrap();
    }
}
