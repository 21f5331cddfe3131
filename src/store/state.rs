//! The `state` table (runtime switches kept across restarts), `meta` (small named values)
//! and `user_settings` (the REST API's per-user settings).

use super::{Result, RuntimeState, Store, StoreError, Tx};
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

impl Tx<'_> {
    /// Seed the runtime switch the first time a user is seen.
    pub fn init_state(&self, enabled: bool) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO state (user_id, enabled, kill_switch, updated_at) VALUES (?1, ?2, 0, ?3)",
            params![self.user, enabled, self.now],
        )?;
        Ok(())
    }

    pub fn state(&self) -> Result<RuntimeState> {
        let st = self
            .conn
            .query_row(
                "SELECT enabled, kill_switch, last_cycle_at FROM state WHERE user_id = ?1",
                params![self.user],
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

    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn meta_get_or_init(&self, key: &str, value: &str) -> Result<String> {
        self.conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })?)
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

    /// Every user's stored settings, by user id.
    pub fn all_user_settings(&self) -> Result<Vec<(String, Value)>> {
        self.read(|tx| {
            let mut stmt = tx
                .conn
                .prepare("SELECT user_id, settings FROM user_settings ORDER BY user_id")?;
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
