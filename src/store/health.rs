//! Whether the store can write. A write that fails for the storage's sake (a full disk or
//! database, an I/O error, a file turned read-only or damaged) marks the store failing; the
//! next write that commits marks it well again, and writes the event row that says so in the
//! same transaction. Front ends watch it: the dashboard's banner, `status`, `/health`, stderr
//! of `serve` and `run`, and an alert.

use std::cell::RefCell;
use tokio::sync::watch;

/// The event row written when writes work again (the alerts know a recovery by it).
pub const STORE_BACK_EVENT: &str = "Store writes work again";

/// The store's ability to write, as the front ends show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteHealth {
    /// Writes fail: since when, why, how many failed.
    pub failing: Option<Failing>,
    /// The last recovery: when writes worked again, and for how long they had failed.
    pub recovered: Option<Recovered>,
    /// Take-profits and stop-losses crossed while the store could not write, held in memory
    /// until it can (one line each, for the trader).
    pub held_exits: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failing {
    pub since_ms: i64,
    pub message: String,
    pub failures: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recovered {
    pub at_ms: i64,
    pub down_ms: i64,
}

impl WriteHealth {
    pub fn is_failing(&self) -> bool {
        self.failing.is_some()
    }

    /// One line for a banner or stderr: `STORE FAILING since …: database or disk is full …`.
    pub fn banner(&self) -> Option<String> {
        let f = self.failing.as_ref()?;
        let mut s = format!(
            "STORE FAILING since {}: {} ({} write{} failed). Nothing new is stored: no decisions, fills or closes; exits are watched from memory",
            super::fmt_ts(f.since_ms),
            f.message,
            f.failures,
            if f.failures == 1 { "" } else { "s" }
        );
        if !self.held_exits.is_empty() {
            s.push_str(&format!(
                "; held until it writes: {}",
                self.held_exits.join("; ")
            ));
        }
        Some(s)
    }

    /// `{"healthy": …, "error": …, "since": …, "failed_writes": …, "held_exits": […]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "healthy": !self.is_failing(),
            "error": self.failing.as_ref().map(|f| f.message.clone()),
            "since": self.failing.as_ref().map(|f| super::fmt_ts(f.since_ms)),
            "failed_writes": self.failing.as_ref().map_or(0, |f| f.failures),
            "held_exits": self.held_exits,
        })
    }
}

/// Shared by every clone of a store's handle.
#[derive(Debug)]
pub struct HealthCell {
    tx: watch::Sender<WriteHealth>,
}

impl Default for HealthCell {
    fn default() -> Self {
        HealthCell {
            tx: watch::Sender::new(WriteHealth::default()),
        }
    }
}

impl HealthCell {
    pub fn get(&self) -> WriteHealth {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<WriteHealth> {
        self.tx.subscribe()
    }

    pub(super) fn failed(&self, message: &str, now_ms: i64) {
        let mut first = false;
        self.tx.send_modify(|h| match &mut h.failing {
            Some(f) => {
                f.failures += 1;
                f.message = message.to_string();
            }
            None => {
                first = true;
                h.failing = Some(Failing {
                    since_ms: now_ms,
                    message: message.to_string(),
                    failures: 1,
                });
            }
        });
        if first {
            tracing::error!("the store cannot write: {message}");
        }
    }

    /// The outage that a commit now ends, if one was going on.
    pub(super) fn failing(&self) -> Option<Failing> {
        self.tx.borrow().failing.clone()
    }

    pub(super) fn recovered(&self, now_ms: i64) {
        self.tx.send_if_modified(|h| {
            let Some(f) = h.failing.take() else {
                return false;
            };
            let down_ms = now_ms.saturating_sub(f.since_ms);
            tracing::warn!(
                "the store writes again after {}s ({} writes failed)",
                down_ms / 1000,
                f.failures
            );
            h.recovered = Some(Recovered {
                at_ms: now_ms,
                down_ms,
            });
            h.held_exits.clear();
            true
        });
    }

    /// The exits held in memory, as the trader reads them.
    pub fn set_held(&self, lines: Vec<String>) {
        self.tx.send_if_modified(|h| {
            if h.held_exits == lines {
                return false;
            }
            h.held_exits = lines;
            true
        });
    }
}

thread_local! {
    /// The last storage failure SQLite reported on this thread (see [`note`]): a write's
    /// errors pass through the caller's own error type, so it is noted on the way.
    static LAST_FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Note `e` if it is a failure of the storage rather than of the statement: the disk or the
/// database full, an I/O error, a file that became read-only, damaged, or cannot be opened.
pub(super) fn note(e: &rusqlite::Error) {
    use rusqlite::ErrorCode::*;
    if let rusqlite::Error::SqliteFailure(f, _) = e
        && matches!(
            f.code,
            DiskFull | SystemIoFailure | ReadOnly | DatabaseCorrupt | NotADatabase | CannotOpen
        )
    {
        LAST_FAILURE.with(|l| *l.borrow_mut() = Some(e.to_string()));
    }
}

/// [`note`] for PostgreSQL: a broken or refused connection, a full disk or out of memory
/// (SQLSTATE classes 08, 53 and 57P), or no answer at all.
pub(super) fn note_pg(e: &postgres::Error) {
    let storage = match e.code() {
        None => e.is_closed() || e.as_db_error().is_none(),
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || c.starts_with("53") || c.starts_with("57P")
        }
    };
    if storage {
        note_text(&e.to_string());
    }
}

/// Note a storage failure described by `why`.
pub(super) fn note_text(why: &str) {
    LAST_FAILURE.with(|l| *l.borrow_mut() = Some(why.to_string()));
}

pub(super) fn take_noted() -> Option<String> {
    LAST_FAILURE.with(|l| l.borrow_mut().take())
}

/// A test's way to fill the database: while `full` (a test's [`super::Store::inject_full`]),
/// or while the file `AUTOTRADE_TEST_STORE_FULL` names exists (a test of the binary), the
/// database may not grow (`PRAGMA max_page_count` at its size) and each write must, so SQLite
/// itself answers SQLITE_FULL, on the path a full disk takes. Unset (always, outside tests)
/// it costs nothing.
pub(super) fn inject(conn: &rusqlite::Connection, full: bool) -> rusqlite::Result<()> {
    static FAULT: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let file = FAULT.get_or_init(|| {
        std::env::var_os("AUTOTRADE_TEST_STORE_FULL").map(std::path::PathBuf::from)
    });
    if !full && file.is_none() {
        return Ok(());
    }
    if full || file.as_ref().is_some_and(|f| f.exists()) {
        // Clamped to the file's size: it cannot grow.
        conn.query_row("PRAGMA max_page_count = 1", [], |_| Ok(()))?;
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('injected_fault',
                 zeroblob((SELECT freelist_count + 2 FROM pragma_freelist_count) * (SELECT page_size FROM pragma_page_size)))",
            [],
        )?;
    } else {
        conn.query_row("PRAGMA max_page_count = 4294967294", [], |_| Ok(()))?;
    }
    Ok(())
}
