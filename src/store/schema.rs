//! The tables, and the migrations that bring a store made by an earlier release up to date
//! in place. Auditors read these tables with `sqlite3`: names and columns stay.

use super::db::{Db, OptionalExtension, params};
use super::{Result, StoreError};
use rusqlite::Connection;

/// Version 1: decisions, positions, fills, prices, state, events. Version 2: orders (and
/// user_settings, made on first use before). Version 3: price_ticks, the recent prices the
/// dashboard draws a trend from. Version 4: the best bid and ask beside each latest price.
/// Version 5: closing orders beside opening ones, partial fills, and who holds a position's
/// exits (the engine, or the broker's protective orders). Version 6: outcomes, what followed
/// each BUY or SELL on later prices, and the raw score beside a calibrated confidence.
/// Version 7: loss halts (the halt, the equity peak and the day's starting equity beside the
/// switches) and trailing stops (the trail a decision asks for, and on its position the trail
/// and the best price seen since it opened; on an opening order who is to hold its exits, when
/// the desk chose: the engine, for a trailing stop), and the position cap a trader lifted on
/// purpose for one decision; api_tokens, each REST API user's token as its SHA-256.
pub const SCHEMA_VERSION: i64 = 7;

const V1: &str = r#"
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

/// Every execution is an order, stored before the broker is asked; the client order id is
/// the decision's log id, unique, so one decision can never be sent twice.
const V2: &str = r#"
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL UNIQUE,
    decision_id TEXT NOT NULL,
    broker TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    reference_price REAL NOT NULL,
    take_profit REAL NOT NULL,
    stop_loss REAL NOT NULL,
    status TEXT NOT NULL,
    filled_quantity REAL,
    fill_price REAL,
    reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- The REST API's per-user settings (created on first use before version 2).
CREATE TABLE IF NOT EXISTS user_settings (
    user_id TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_open ON orders(user_id, status) WHERE status IN ('submitted', 'unknown');
"#;

/// Recent prices, at most one a minute per symbol (see `Tx::set_price`), the newest kept. An
/// upgraded store starts with the prices its decisions were made at (each cycle's ML signal
/// carries the symbol's price) and the latest price of each symbol.
const V3: &str = r#"
CREATE TABLE IF NOT EXISTS price_ticks (
    symbol TEXT NOT NULL,
    price REAL NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS price_ticks_by_symbol ON price_ticks(symbol, at);
INSERT INTO price_ticks (symbol, price, at)
    SELECT symbol, json_extract(ml_signal, '$.entry_price'), created_at FROM decisions
    WHERE json_valid(ml_signal)
      AND typeof(json_extract(ml_signal, '$.entry_price')) IN ('real', 'integer')
      AND json_extract(ml_signal, '$.entry_price') > 0;
INSERT INTO price_ticks (symbol, price, at)
    SELECT symbol, price, at FROM prices WHERE price > 0;
"#;

/// A live feed's quote: what a buy would pay (ask) and a sell would get (bid).
const V4: &str = r#"
ALTER TABLE prices ADD COLUMN bid REAL;
ALTER TABLE prices ADD COLUMN ask REAL;
"#;

/// An order opens a position or closes one (its client order id is then the decision's log id
/// with `-close` and a number); an order still working at the broker may be partly filled; a
/// position's take-profit and stop-loss are watched by the engine or held at the broker.
const V5: &str = r#"
ALTER TABLE orders ADD COLUMN kind TEXT NOT NULL DEFAULT 'open';
ALTER TABLE positions ADD COLUMN exits_held_by TEXT NOT NULL DEFAULT 'engine';
DROP INDEX IF EXISTS orders_open;
CREATE INDEX IF NOT EXISTS orders_open ON orders(user_id, status)
    WHERE status IN ('submitted', 'partially_filled', 'unknown');
"#;

/// Every BUY or SELL, and every one that fell below `min_confidence`, is followed on later
/// prices until its take-profit or stop-loss is touched or its horizon passes (see
/// `domain::outcome`). `source` is what scored it: ml_engine, analyzer, agent or manual.
/// An upgraded store follows its earlier decisions from the prices it kept (`price_ticks`);
/// their automatic decisions did not record whether the ML engine or the analyzer scored
/// them (`unrecorded`), and the ones below `min_confidence` are known by their reasoning.
const V6: &str = r#"
ALTER TABLE decisions ADD COLUMN raw_confidence REAL;
CREATE TABLE IF NOT EXISTS outcomes (
    decision_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    source TEXT NOT NULL,
    score REAL NOT NULL,
    entry_price REAL NOT NULL,
    take_profit REAL NOT NULL,
    stop_loss REAL NOT NULL,
    started_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    last_price REAL,
    last_at INTEGER,
    exit_price REAL,
    resolved_at INTEGER,
    r_multiple REAL
);
CREATE INDEX IF NOT EXISTS outcomes_open ON outcomes(user_id, symbol) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS outcomes_by_source ON outcomes(user_id, source, state);
INSERT OR IGNORE INTO outcomes (decision_id, user_id, symbol, side, source, score, entry_price,
        take_profit, stop_loss, started_at, state)
    SELECT log_id, user_id, symbol,
        CASE WHEN action = 'BUY' OR reasoning LIKE 'HOLD: BUY %' THEN 'BUY' ELSE 'SELL' END,
        CASE origin WHEN 'auto' THEN 'unrecorded' ELSE origin END,
        confidence, entry_price, take_profit, stop_loss, created_at, 'open'
    FROM decisions
    WHERE entry_price > 0 AND take_profit > 0 AND stop_loss > 0
      AND (action IN ('BUY', 'SELL')
           OR reasoning LIKE 'HOLD: BUY confidence % is below min_confidence %'
           OR reasoning LIKE 'HOLD: SELL confidence % is below min_confidence %');
"#;

const V7: &str = r#"
ALTER TABLE state ADD COLUMN halted_at INTEGER;
ALTER TABLE state ADD COLUMN halt_reason TEXT;
ALTER TABLE state ADD COLUMN equity_peak REAL;
ALTER TABLE state ADD COLUMN day_start_ms INTEGER;
ALTER TABLE state ADD COLUMN day_start_equity REAL;
ALTER TABLE decisions ADD COLUMN trail_percent REAL;
ALTER TABLE decisions ADD COLUMN trail_amount REAL;
ALTER TABLE decisions ADD COLUMN allowed_position_percent REAL;
ALTER TABLE positions ADD COLUMN trail_percent REAL;
ALTER TABLE positions ADD COLUMN trail_amount REAL;
ALTER TABLE positions ADD COLUMN best_price REAL;
ALTER TABLE orders ADD COLUMN exits_held_by TEXT;
CREATE TABLE IF NOT EXISTS api_tokens (
    user_id TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"#;

/// The statements that take a store to each version, from 1.
const STEPS: [(i64, &str); 7] = [
    (1, V1),
    (2, V2),
    (3, V3),
    (4, V4),
    (5, V5),
    (6, V6),
    (7, V7),
];

/// Bring the store to [`SCHEMA_VERSION`] in one transaction; refuse a store from a newer release.
pub fn migrate(tx: &Connection) -> Result<()> {
    migrate_steps(
        Db::Lite(tx),
        &STEPS,
        SCHEMA_VERSION,
        SCHEMA_VERSION,
        "the store",
    )
}

/// Bring the schema in `db` (inside the caller's transaction) from its stored version to
/// `target` by the `steps` after it, and store `target`; a version above `latest` (a newer
/// release's) or one that is not a number is refused, naming the store as `what`. SQLite's
/// and PostgreSQL's migrations both run here, each with its own steps.
pub(super) fn migrate_steps(
    db: Db<'_>,
    steps: &[(i64, &str)],
    target: i64,
    latest: i64,
    what: &str,
) -> Result<()> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    )?;
    let stored: Option<String> = db
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            params![],
            |r| r.get(0),
        )
        .optional()?;
    let from = match stored.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(v)) if (0..=latest).contains(&v) => v,
        Some(Ok(v)) if v > latest => {
            return Err(StoreError::Other(format!(
                "{what} has schema version {v}, newer than this program's {latest}: upgrade autotrade-tui"
            )));
        }
        Some(_) => {
            return Err(StoreError::Other(format!(
                "{what}'s schema version is unreadable"
            )));
        }
    };
    for (version, step) in steps {
        if *version > from && *version <= target {
            db.execute_batch(step)?;
        }
    }
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![target.to_string()],
    )?;
    Ok(())
}
