//! What one user's store recorded after a point: new decisions, decisions whose status (or
//! size) changed, fills and event rows, read in one snapshot, for the API's event stream.
//!
//! The point is a [`Cursor`] of three high-water marks: the decisions' `seq`, the events'
//! `id` and the fills' `id`. A decision's status change has no row of its own, but every
//! change of a decision (`settle`, an expiry, an execution, the kill switch, a resize) writes
//! an event row in the same transaction, stamped with the same `now` as the decision's
//! `updated_at`: a decision changed after the cursor is one whose `updated_at` is the time of
//! an event row after it. So no schema change is needed, nothing is ever skipped, and the
//! only repeat possible is a decision changed in the same millisecond as an unrelated later
//! transaction (it is sent again, unchanged).

use super::db::{Db, OptionalExtension, params};
use super::{DecisionLog, Event, Position, Result, fmt_ts, rows};
use rusqlite::Connection;
use serde_json::{Value, json};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

/// Where a reader of the changes stands: everything up to these marks has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub seq: i64,
    pub event: i64,
    pub fill: i64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.seq, self.event, self.fill)
    }
}

impl FromStr for Cursor {
    type Err = String;

    /// `SEQ-EVENT-FILL`, three numbers ≥ 0.
    fn from_str(s: &str) -> std::result::Result<Cursor, String> {
        let bad = || format!("{s:?} is not an event id of this stream (SEQ-EVENT-FILL)");
        let mut parts = s.trim().split('-').map(|p| {
            p.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0 && p.bytes().all(|b| b.is_ascii_digit()))
        });
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Some(seq)), Some(Some(event)), Some(Some(fill)), None) => {
                Ok(Cursor { seq, event, fill })
            }
            _ => Err(bad()),
        }
    }
}

impl Cursor {
    /// No mark past `head`'s: a cursor from this store.
    pub fn within(&self, head: &Cursor) -> bool {
        self.seq <= head.seq && self.event <= head.event && self.fill <= head.fill
    }
}

/// One execution, with the position it opened or closed.
#[derive(Debug, Clone, PartialEq)]
pub struct FillRecord {
    pub id: i64,
    pub kind: String,
    pub decision_id: String,
    pub position_id: i64,
    pub symbol: String,
    pub side: String,
    pub quantity: f64,
    pub price: f64,
    pub at_ms: i64,
    pub reason: String,
    pub position: Option<Position>,
    /// The symbol's latest price, to mark an open position.
    pub last_price: Option<f64>,
}

impl FillRecord {
    /// The fill, with its position as `positions --json` shows it (and how it closed, once
    /// closed).
    pub fn to_json(&self) -> Value {
        let position = self.position.as_ref().map(|p| {
            let closed = p.closed_at_ms.is_some();
            let mut v = p.to_json(if closed {
                p.exit_price
            } else {
                self.last_price
            });
            v["status"] = json!(if closed { "closed" } else { "open" });
            v["closed_at"] = json!(p.closed_at_ms.map(fmt_ts));
            v["exit_price"] = json!(p.exit_price);
            v["realized_pnl"] = json!(p.realized_pnl);
            v["close_reason"] = json!(p.close_reason);
            v
        });
        json!({
            "fill_id": self.id,
            "kind": self.kind,
            "log_id": self.decision_id,
            "position_id": self.position_id,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": self.quantity,
            "price": self.price,
            "at": fmt_ts(self.at_ms),
            "reason": self.reason,
            "position": position,
        })
    }
}

/// One thing the store recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new decision, or one whose status or size changed, as it stands now.
    Decision(DecisionLog),
    Fill(FillRecord),
    Event(Event),
}

impl Change {
    /// Its name and JSON, as the event stream sends them (the same JSON as `--json`).
    pub fn to_json(&self) -> (&'static str, Value) {
        match self {
            Change::Decision(log) => ("decision", log.to_json()),
            Change::Fill(f) => ("fill", f.to_json()),
            Change::Event(e) => (
                "event",
                json!({ "id": e.id, "at": fmt_ts(e.at_ms), "level": e.level, "message": e.message }),
            ),
        }
    }

    /// When it happened (ms): a decision's creation, a fill's or an event's time.
    pub fn at_ms(&self) -> i64 {
        match self {
            Change::Decision(log) => log.created_at_ms,
            Change::Fill(f) => f.at_ms,
            Change::Event(e) => e.at_ms,
        }
    }
}

/// What changed after a cursor, oldest first, and the cursor after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    pub changes: Vec<Change>,
    pub cursor: Cursor,
}

/// A connection of its own that only reads, for following the store.
pub struct ChangeReader {
    source: Source,
}

enum Source {
    Lite(Mutex<Connection>),
    /// PostgreSQL: the process's pool; each read is one snapshot. A user's rows are written
    /// under that user's lock only, so they commit in the order of their ids and a cursor of
    /// high-water marks skips nothing there either.
    Pg(std::sync::Arc<super::pg::Shared>),
}

impl ChangeReader {
    /// Open the data dir's store (made and migrated already by the program's own store); the
    /// PostgreSQL database instead when this process opened the data dir's store there.
    pub fn open(data_dir: &Path) -> Result<ChangeReader> {
        if let Some(shared) = super::pg::for_data_dir(data_dir) {
            return Ok(ChangeReader {
                source: Source::Pg(shared),
            });
        }
        let conn = Connection::open(data_dir.join(super::DB_FILE))?;
        conn.busy_timeout(super::BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(ChangeReader {
            source: Source::Lite(Mutex::new(conn)),
        })
    }

    /// `f` in one read snapshot.
    fn snapshot<T>(&self, f: impl FnOnce(Db<'_>) -> Result<T>) -> Result<T> {
        match &self.source {
            Source::Lite(m) => {
                let mut conn = m.lock().unwrap_or_else(|p| p.into_inner());
                let tx = conn.transaction()?;
                let out = f(Db::Lite(&tx))?;
                tx.commit()?;
                Ok(out)
            }
            Source::Pg(shared) => shared.read(f),
        }
    }

    /// A counter that changes when any other connection commits.
    pub fn data_version(&self) -> Result<i64> {
        match &self.source {
            Source::Lite(m) => Ok(m.lock().unwrap_or_else(|p| p.into_inner()).query_row(
                "PRAGMA data_version",
                [],
                |r| r.get(0),
            )?),
            Source::Pg(shared) => Ok(shared.version()),
        }
    }

    /// The cursor at the newest of `user`'s rows: a reader starting now reads after it.
    pub fn head(&self, user: &str) -> Result<Cursor> {
        self.snapshot(|db| head(db, user))
    }

    /// The head, with the decisions pending at it (one snapshot): a reader that starts now
    /// knows those as already there.
    pub fn start(&self, user: &str) -> Result<(Cursor, Vec<String>)> {
        self.snapshot(|db| {
            let cursor = head(db, user)?;
            let pending = db.query_map(
                "SELECT log_id FROM decisions WHERE user_id = ?1 AND status = 'pending' AND seq <= ?2",
                params![user, cursor.seq],
                |r| r.get(0),
            )?;
            Ok((cursor, pending))
        })
    }

    /// What `user`'s store recorded after `from`, in one snapshot; `Ok(None)` when that is
    /// more than `max` rows (a reader too far behind).
    pub fn since(&self, user: &str, from: Cursor, max: usize) -> Result<Option<Changes>> {
        self.snapshot(|db| since(db, user, from, max))
    }
}

fn head(conn: Db<'_>, user: &str) -> Result<Cursor> {
    let max = |sql: &str| -> Result<i64> {
        Ok(conn
            .query_row(sql, params![user], |r| r.get::<_, Option<i64>>(0))?
            .unwrap_or(0))
    };
    Ok(Cursor {
        seq: max("SELECT MAX(seq) FROM decisions WHERE user_id = ?1")?,
        event: max("SELECT MAX(id) FROM events WHERE user_id = ?1")?,
        fill: max("SELECT MAX(id) FROM fills WHERE user_id = ?1")?,
    })
}

/// Decisions, fills and events of one snapshot, ordered by when they happened: a decision's
/// change before the fill and the event row its transaction wrote.
fn since(conn: Db<'_>, user: &str, from: Cursor, max: usize) -> Result<Option<Changes>> {
    let limit = max.saturating_add(1).min(i64::MAX as usize) as i64;
    let mut cursor = from;
    // (when, order within a transaction, id)
    let mut keyed: Vec<((i64, u8, i64), Change)> = Vec::new();

    let events: Vec<Event> = conn.query_map(
        "SELECT id, at, level, message FROM events WHERE user_id = ?1 AND id > ?2
             ORDER BY id LIMIT ?3",
        params![user, from.event, limit],
        |r| {
            Ok(Event {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                level: r.get(2)?,
                message: r.get(3)?,
            })
        },
    )?;

    let new: Vec<(DecisionLog, i64, i64)> = conn.query_map(
        "SELECT * FROM decisions WHERE user_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        params![user, from.seq, limit],
        |r| Ok((rows::decision(r)?, r.get("seq")?, r.get("updated_at")?)),
    )?;

    // Decisions read before that changed since: their updated_at is an event row's time.
    // HOLDs never change, so only the actionable ones are looked at (by the status index).
    let changed: Vec<(DecisionLog, i64, i64)> = if events.is_empty() {
        Vec::new()
    } else {
        conn.query_map(
            "SELECT * FROM decisions INDEXED BY decisions_by_status
             WHERE user_id = ?1
               AND status IN ('pending', 'executed', 'cancelled', 'expired', 'failed')
               AND seq <= ?2
               AND updated_at IN (SELECT at FROM events WHERE user_id = ?1 AND id > ?3)",
            params![user, from.seq, from.event],
            |r| Ok((rows::decision(r)?, r.get("seq")?, r.get("updated_at")?)),
        )?
    };

    let fills: Vec<FillRecord> = conn.query_map(
        "SELECT id, kind, decision_id, position_id, symbol, side, quantity, price, at, reason
             FROM fills WHERE user_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        params![user, from.fill, limit],
        |r| {
            Ok(FillRecord {
                id: r.get(0)?,
                kind: r.get(1)?,
                decision_id: r.get(2)?,
                position_id: r.get(3)?,
                symbol: r.get(4)?,
                side: r.get(5)?,
                quantity: r.get(6)?,
                price: r.get(7)?,
                at_ms: r.get(8)?,
                reason: r.get(9)?,
                position: None,
                last_price: None,
            })
        },
    )?;

    if events.len() + new.len() + changed.len() + fills.len() > max {
        return Ok(None);
    }

    // A decision comes once, as it stands, at the time of its latest change: a reader that
    // missed several changes of it gets the stream it missed without the superseded states.
    for (log, seq, updated_at) in new {
        cursor.seq = cursor.seq.max(seq);
        keyed.push(((updated_at, 0, seq), Change::Decision(log)));
    }
    for (log, seq, updated_at) in changed {
        keyed.push(((updated_at, 0, seq), Change::Decision(log)));
    }
    for mut f in fills {
        cursor.fill = cursor.fill.max(f.id);
        f.position = conn
            .query_row(
                "SELECT * FROM positions WHERE id = ?1 AND user_id = ?2",
                params![f.position_id, user],
                rows::position,
            )
            .optional()?;
        f.last_price = conn
            .query_row(
                "SELECT price FROM prices WHERE symbol = ?1",
                params![f.symbol],
                |r| r.get(0),
            )
            .optional()?;
        keyed.push(((f.at_ms, 1, f.id), Change::Fill(f)));
    }
    for e in events {
        cursor.event = cursor.event.max(e.id);
        keyed.push(((e.at_ms, 2, e.id), Change::Event(e)));
    }
    keyed.sort_by_key(|(k, _)| *k);
    Ok(Some(Changes {
        changes: keyed.into_iter().map(|(_, c)| c).collect(),
        cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Origin, Status, Store};

    #[test]
    fn cursors_read_back_and_refuse_anything_else() {
        let c: Cursor = "12-40-3".parse().unwrap();
        assert_eq!(
            c,
            Cursor {
                seq: 12,
                event: 40,
                fill: 3
            }
        );
        assert_eq!(c.to_string(), "12-40-3");
        for bad in [
            "", "1-2", "1-2-3-4", "a-2-3", "-1-2-3", "1--2-3", "+1-2-3", "1-2-3 x",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn new_decisions_status_changes_and_events_each_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "u1", true).unwrap();
        let other = Store::open(dir.path(), "u2", true).unwrap();
        let reader = ChangeReader::open(dir.path()).unwrap();
        let start = reader.head("u1").unwrap();
        let d = crate::domain::rules::Decision::untrusted(
            "BTC/USD",
            "test".into(),
            serde_json::Value::Null,
            None,
        );
        let pending = store
            .write(|tx| {
                tx.insert_decision(
                    &d,
                    Status::Pending,
                    Origin::Manual,
                    "paper",
                    &serde_json::Value::Null,
                )
            })
            .unwrap();
        other.add_event("info", "someone else's").unwrap();
        let first = reader.since("u1", start, 100).unwrap().unwrap();
        assert_eq!(first.changes.len(), 1, "{first:?}");
        assert!(matches!(&first.changes[0], Change::Decision(l) if l.status == Status::Pending));
        // Nothing new: nothing again.
        let again = reader.since("u1", first.cursor, 100).unwrap().unwrap();
        assert!(again.changes.is_empty());
        assert_eq!(again.cursor, first.cursor);
        // A status change with its event row: the decision as it stands, then the event.
        std::thread::sleep(std::time::Duration::from_millis(2));
        store
            .write(|tx| {
                tx.set_status(&pending.log_id, Status::Cancelled, "test")?;
                tx.add_event("info", "cancelled")
            })
            .unwrap();
        let second = reader.since("u1", first.cursor, 100).unwrap().unwrap();
        assert_eq!(second.changes.len(), 2, "{second:?}");
        assert!(matches!(&second.changes[0], Change::Decision(l) if l.status == Status::Cancelled));
        assert!(matches!(&second.changes[1], Change::Event(e) if e.message == "cancelled"));
        // From the start: the decision once (as it stands), and the event.
        let all = reader.since("u1", start, 100).unwrap().unwrap();
        assert_eq!(all.changes.len(), 2, "{all:?}");
        assert_eq!(all.cursor, second.cursor);
        // Too many for the limit.
        assert!(reader.since("u1", start, 1).unwrap().is_none());
    }
}
