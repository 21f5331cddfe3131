//! The `events` table: the lines of the recent-events pane, also written to the log.

use super::db::params;
use super::{Event, Result, Tx};

impl Tx<'_> {
    pub fn add_event(&self, level: &str, message: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO events (user_id, at, level, message) VALUES (?1, ?2, ?3, ?4)",
            params![self.user, self.now, level, message],
        )?;
        let user_id = self.user;
        match level {
            "error" => tracing::error!(user_id, "{message}"),
            "warn" => tracing::warn!(user_id, "{message}"),
            _ => tracing::info!(user_id, "{message}"),
        }
        Ok(())
    }

    /// The newest `limit` events, newest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<Event>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT id, at, level, message FROM events WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
        );
        let rows = stmt_db.query_map(stmt_sql, params![self.user, limit as i64], event_row)?;
        Ok(rows)
    }

    /// The newest `limit` events whose text contains `query` (any case; empty: all), newest
    /// first, and how many there are in all.
    pub fn search_events(&self, query: &str, limit: usize) -> Result<(Vec<Event>, usize)> {
        let pattern = like_pattern(query);
        let total: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM events WHERE user_id = ?1 AND message LIKE ?2 ESCAPE '\\'",
            params![self.user, pattern],
            |r| r.get(0),
        )?;
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT id, at, level, message FROM events WHERE user_id = ?1
             AND message LIKE ?2 ESCAPE '\\' ORDER BY id DESC LIMIT ?3",
        );
        let rows = stmt_db.query_map(
            stmt_sql,
            params![self.user, pattern, limit as i64],
            event_row,
        )?;
        Ok((rows, total.max(0) as usize))
    }
}

fn event_row(r: &super::db::Row<'_>) -> Result<Event> {
    Ok(Event {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        level: r.get(2)?,
        message: r.get(3)?,
    })
}

/// A `LIKE` pattern that matches `text` anywhere, its own `%`, `_` and `\` taken literally.
pub fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
