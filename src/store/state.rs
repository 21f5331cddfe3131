//! The `state` table (runtime switches kept across restarts), `meta` (small named values:
//! also what the monitoring cycles learnt about the source, per user) and `user_settings`
//! (the REST API's per-user settings).

use super::db::{OptionalExtension, params};
use super::{Result, RuntimeState, Store, StoreError, Tx};
use crate::domain::halt::{EquityMarks, Halt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether the source answered the last monitoring cycle, and since when that is so. The
/// source failed a cycle when it could not give a single symbol its signal and AMD phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceHealth {
    pub reachable: bool,
    /// The first cycle that saw the source as it is now (ms).
    pub since_ms: i64,
    /// The last cycle that checked (ms).
    pub checked_at_ms: i64,
    /// Why it failed, when it did: the first symbol's error.
    pub error: Option<String>,
}

/// How the live market-data feed last got prices, and since when (kept in `meta` too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedHealth {
    pub provider: String,
    /// `connecting`, `streaming`, `polling` or `down`.
    pub state: String,
    /// Why it polls or is down.
    pub why: Option<String>,
    /// When it came to this state (ms).
    pub since_ms: i64,
    /// The last state an event was written for, and when: a feed that keeps failing over
    /// retries says so again at most every half hour.
    #[serde(default)]
    pub reported: Option<(String, i64)>,
}

fn feed_health_key(user_id: &str) -> String {
    format!("feed_health:{user_id}")
}

/// The `meta` key of a user's [`SourceHealth`] (kept there so that no migration is needed).
fn source_health_key(user_id: &str) -> String {
    format!("source_health:{user_id}")
}

impl Tx<'_> {
    /// Seed the runtime switch the first time a user is seen.
    pub fn init_state(&self, enabled: bool) -> Result<()> {
        self.conn.execute(
            "INSERT INTO state (user_id, enabled, kill_switch, updated_at) VALUES (?1, ?2, 0, ?3)
             ON CONFLICT DO NOTHING",
            params![self.user, enabled, self.now],
        )?;
        Ok(())
    }

    pub fn state(&self) -> Result<RuntimeState> {
        let st = self
            .conn
            .query_row(
                "SELECT enabled, kill_switch, last_cycle_at, halted_at, halt_reason, equity_peak,
                        day_start_ms, day_start_equity
                 FROM state WHERE user_id = ?1",
                params![self.user],
                |r| {
                    let halted_at: Option<i64> = r.get(3)?;
                    let reason: Option<String> = r.get(4)?;
                    Ok(RuntimeState {
                        enabled: r.get(0)?,
                        kill_switch: r.get(1)?,
                        last_cycle_at_ms: r.get(2)?,
                        halt: halted_at.map(|at_ms| Halt {
                            at_ms,
                            reason: reason.unwrap_or_default(),
                        }),
                        marks: EquityMarks {
                            peak: r.get(5)?,
                            day_start_ms: r.get(6)?,
                            day_start_equity: r.get(7)?,
                        },
                    })
                },
            )
            .optional()?;
        Ok(st.unwrap_or(RuntimeState {
            enabled: false,
            kill_switch: false,
            last_cycle_at_ms: None,
            halt: None,
            marks: EquityMarks::default(),
        }))
    }

    /// Keep the marks the loss halts are measured from.
    pub fn set_marks(&self, m: &EquityMarks) -> Result<()> {
        self.conn.execute(
            "UPDATE state SET equity_peak = ?2, day_start_ms = ?3, day_start_equity = ?4 WHERE user_id = ?1",
            params![self.user, m.peak, m.day_start_ms, m.day_start_equity],
        )?;
        Ok(())
    }

    /// Halt new entries (`Some`), or clear the halt (`None`).
    pub fn set_halt(&self, halt: Option<&Halt>) -> Result<()> {
        self.conn.execute(
            "UPDATE state SET halted_at = ?2, halt_reason = ?3, updated_at = ?4 WHERE user_id = ?1",
            params![
                self.user,
                halt.map(|h| h.at_ms),
                halt.map(|h| h.reason.as_str()),
                self.now
            ],
        )?;
        Ok(())
    }

    /// Set the switches: `enabled`, and the kill switch when given.
    pub fn set_switches(&self, enabled: bool, kill_switch: Option<bool>) -> Result<()> {
        match kill_switch {
            Some(k) => self.conn.execute(
                "UPDATE state SET enabled = ?2, kill_switch = ?3, updated_at = ?4 WHERE user_id = ?1",
                params![self.user, enabled, k, self.now],
            )?,
            None => self.conn.execute(
                "UPDATE state SET enabled = ?2, updated_at = ?3 WHERE user_id = ?1",
                params![self.user, enabled, self.now],
            )?,
        };
        Ok(())
    }

    pub fn set_last_cycle(&self, at_ms: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE state SET last_cycle_at = ?2 WHERE user_id = ?1",
            params![self.user, at_ms],
        )?;
        Ok(())
    }

    /// What the cycles learnt about the source; `None` before the first cycle (or when the
    /// stored value cannot be read: unknown, not an error).
    pub fn source_health(&self) -> Result<Option<SourceHealth>> {
        Ok(self
            .meta_get(&source_health_key(self.user))?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Record a cycle's check of the source: `error` when it failed for every symbol. The
    /// `since` time moves only when the answer changes.
    pub fn record_source_check(&self, error: Option<&str>) -> Result<SourceHealth> {
        let reachable = error.is_none();
        let since_ms = match self.source_health()? {
            Some(prev) if prev.reachable == reachable => prev.since_ms,
            _ => self.now,
        };
        let health = SourceHealth {
            reachable,
            since_ms,
            checked_at_ms: self.now,
            error: error.map(str::to_string),
        };
        let value = serde_json::to_string(&health)
            .map_err(|e| StoreError::Other(format!("source health: {e}")))?;
        self.meta_set(&source_health_key(self.user), &value)?;
        Ok(health)
    }

    /// How the feed last got prices (see [`FeedHealth`]); `None` before any feed ran.
    pub fn feed_health(&self) -> Result<Option<FeedHealth>> {
        Ok(self
            .meta_get(&feed_health_key(self.user))?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// The feed came to `state` (now); `reported`: an event was written for it now.
    pub fn record_feed_state(
        &self,
        provider: &str,
        state: &str,
        why: Option<&str>,
        reported: Option<(String, i64)>,
    ) -> Result<()> {
        // The same state again (a failed poll says "down" every time) keeps its `since`.
        let since_ms = match self.feed_health()? {
            Some(prev) if prev.state == state && prev.provider == provider => prev.since_ms,
            _ => self.now,
        };
        let health = FeedHealth {
            provider: provider.to_string(),
            state: state.to_string(),
            why: why.map(str::to_string),
            since_ms,
            reported,
        };
        let value = serde_json::to_string(&health)
            .map_err(|e| StoreError::Other(format!("feed health: {e}")))?;
        self.meta_set(&feed_health_key(self.user), &value)
    }

    /// What the broker said at the last reconciliation, if it is a real broker.
    pub fn broker_view(&self) -> Result<Option<crate::broker::BrokerView>> {
        Ok(self
            .meta_get(&format!("broker_view:{}", self.user))?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    pub fn set_broker_view(&self, view: &crate::broker::BrokerView) -> Result<()> {
        let json = serde_json::to_string(view).map_err(|e| StoreError::Other(e.to_string()))?;
        self.meta_set(&format!("broker_view:{}", self.user), &json)
    }

    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
    }

    pub fn meta_get_or_init(&self, key: &str, value: &str) -> Result<String> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![key, value],
        )?;
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
    }

    pub fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

impl Store {
    /// Create or replace `user_id`'s auto-trade settings (a JSON object); returns true when
    /// the user had none before. Store-wide: any user, not only this store's.
    pub fn put_user_settings(&self, user_id: &str, settings: &Value) -> Result<bool> {
        self.write(|tx| {
            let existed = tx
                .conn
                .query_row(
                    "SELECT 1 FROM user_settings WHERE user_id = ?1",
                    params![user_id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            tx.conn.execute(
                "INSERT INTO user_settings (user_id, settings, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
                params![user_id, settings.to_string(), tx.now],
            )?;
            Ok(!existed)
        })
    }

    /// Every user this store has seen: those with runtime state (anyone who ran a command or
    /// the dashboard on it) and those created through the REST API, sorted.
    /// Every user's stored settings as the text they are kept as, by user id (cheap to
    /// compare: nothing is parsed).
    pub fn user_settings_texts(&self) -> Result<Vec<(String, String)>> {
        self.read(|tx| {
            tx.conn.query_map(
                "SELECT user_id, settings FROM user_settings ORDER BY user_id",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    /// How many users have stored settings, `except` one (the config file's).
    pub fn count_user_settings(&self, except: &str) -> Result<usize> {
        self.read(|tx| {
            tx.conn.query_row(
                "SELECT COUNT(*) FROM user_settings WHERE user_id <> ?1",
                params![except],
                |r| r.get(0),
            )
        })
    }

    pub fn known_users(&self) -> Result<Vec<String>> {
        self.read(|tx| {
            let (stmt_db, stmt_sql) = (
                tx.conn,
                "SELECT user_id FROM state UNION SELECT user_id FROM user_settings ORDER BY 1",
            );
            let rows = stmt_db.query_map(stmt_sql, params![], |r| r.get::<_, String>(0))?;
            Ok(rows)
        })
    }

    /// Every user's `enabled` switch, which decides whether its loop runs.
    pub fn all_enabled(&self) -> Result<Vec<(String, bool)>> {
        self.read(|tx| {
            tx.conn.query_map(
                "SELECT user_id, enabled FROM state ORDER BY user_id",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    /// What the cycles learnt about the source (see [`Tx::source_health`]).
    pub fn source_health(&self) -> Result<Option<SourceHealth>> {
        self.read(|tx| tx.source_health())
    }

    /// Every user's stored settings, by user id.
    pub fn all_user_settings(&self) -> Result<Vec<(String, Value)>> {
        self.read(|tx| {
            let (stmt_db, stmt_sql) = (
                tx.conn,
                "SELECT user_id, settings FROM user_settings ORDER BY user_id",
            );
            let rows = stmt_db.query_map(stmt_sql, params![], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
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

    #[test]
    fn source_health_moves_since_only_when_the_answer_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "u", true).unwrap();
        assert_eq!(store.source_health().unwrap(), None, "not checked yet");
        // A failure seen long ago: another failure keeps its time, with the newer reason.
        let old = SourceHealth {
            reachable: false,
            since_ms: 1_000,
            checked_at_ms: 1_000,
            error: Some("old".into()),
        };
        store
            .meta_set("source_health:u", &serde_json::to_string(&old).unwrap())
            .unwrap();
        let h = store
            .write(|tx| tx.record_source_check(Some("BTC/USD: timed out")))
            .unwrap();
        assert_eq!(h.since_ms, 1_000);
        assert!(h.checked_at_ms > 1_000);
        assert_eq!(h.error.as_deref(), Some("BTC/USD: timed out"));
        // Reachable again: since now, no error; and another user's health is their own.
        let h = store.write(|tx| tx.record_source_check(None)).unwrap();
        assert!(
            h.reachable && h.since_ms > 1_000 && h.error.is_none(),
            "{h:?}"
        );
        assert_eq!(store.source_health().unwrap(), Some(h));
        let other = Store::open(dir.path(), "v", true).unwrap();
        assert_eq!(other.source_health().unwrap(), None);
        assert_eq!(other.known_users().unwrap(), ["u", "v"]);
    }

    #[test]
    fn unreadable_source_health_is_unknown_not_an_error() {
        let store = Store::open_in_memory("u", true).unwrap();
        store.meta_set("source_health:u", "{not json").unwrap();
        assert_eq!(store.source_health().unwrap(), None);
        let h = store.write(|tx| tx.record_source_check(None)).unwrap();
        assert!(h.reachable);
    }
}
