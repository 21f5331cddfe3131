//! The `decisions` table: every decision, HOLD included, with its status.

use super::db::{OptionalExtension, params};
use super::{DecisionLog, Result, Status, StoreError, Tx, rows};
use crate::domain::lifecycle::Origin;
use crate::domain::rules::{Decision, Gates, RiskReward};
use serde_json::Value;

/// A pending decision that outlived its expiry.
pub struct StalePending {
    pub log_id: String,
    pub symbol: String,
    pub action: String,
    pub created_at_ms: i64,
}

impl Tx<'_> {
    /// Store a decision with a status; returns it as stored (with its new `log_id`).
    pub fn insert_decision(
        &self,
        d: &Decision,
        status: Status,
        origin: Origin,
        mode: &str,
        amd_input: &Value,
    ) -> Result<DecisionLog> {
        let rr = match &d.risk_reward {
            Some(rr) => {
                Some(serde_json::to_string(rr).map_err(|e| StoreError::Other(e.to_string()))?)
            }
            None => None,
        };
        let ml = d.ml_signal.to_string();
        let amd = amd_input.to_string();
        let (trail_percent, trail_amount) = crate::domain::trail::Trail::columns(d.trail);
        // A 48-bit random id collides rarely; try again with a fresh one when it does.
        for _ in 0..8 {
            let log_id = super::new_log_id();
            // `ON CONFLICT DO NOTHING`: an id taken already inserts nothing (an error would
            // end a PostgreSQL transaction), and another id is tried.
            let res = self.conn.execute(
                "INSERT INTO decisions (log_id, user_id, created_at, updated_at, status, mode, origin, symbol, action,
                    confidence, reasoning, entry_price, take_profit, stop_loss, position_size, amd_phase, ml_signal,
                    amd_input, risk_reward, raw_confidence, trail_percent, trail_amount)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                    ?20, ?21)
                 ON CONFLICT (log_id) DO NOTHING",
                params![
                    log_id,
                    self.user,
                    self.now,
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
                    d.raw_confidence,
                    trail_percent,
                    trail_amount,
                ],
            );
            match res {
                Ok(0) => continue,
                Ok(_) => {
                    tracing::info!(
                        user_id = self.user,
                        log_id,
                        symbol = d.symbol,
                        action = d.action.as_str(),
                        status = status.as_str(),
                        "decision: {}",
                        d.reasoning
                    );
                    return self
                        .decision(&log_id)?
                        .ok_or_else(|| StoreError::Other(format!("{log_id} vanished")));
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Other(
            "could not find a unique decision id".into(),
        ))
    }

    pub fn decision(&self, log_id: &str) -> Result<Option<DecisionLog>> {
        self.conn
            .query_row(
                "SELECT * FROM decisions WHERE user_id = ?1 AND log_id = ?2",
                params![self.user, log_id],
                rows::decision,
            )
            .optional()
    }

    /// Newest first. `status`: only that status; `limit`: at most that many.
    pub fn decisions(&self, limit: usize, status: Option<Status>) -> Result<Vec<DecisionLog>> {
        let limit = limit.min(i64::MAX as usize) as i64;
        Ok(match status {
            Some(s) => self
                .conn
                .query_map("SELECT * FROM decisions WHERE user_id = ?1 AND status = ?2 ORDER BY seq DESC LIMIT ?3", params![self.user, s.as_str(), limit], rows::decision)?,
            None => self
                .conn
                .query_map("SELECT * FROM decisions WHERE user_id = ?1 ORDER BY seq DESC LIMIT ?2", params![self.user, limit], rows::decision)?,
        })
    }

    /// The latest decision for each symbol, newest first.
    pub fn latest_per_symbol(&self) -> Result<Vec<DecisionLog>> {
        let (stmt_db, stmt_sql) = (
            self.conn, // A skip-scan over the (user_id, symbol, seq) index: one seek per symbol, so the
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
        );
        stmt_db.query_map(stmt_sql, params![self.user], rows::decision)
    }

    pub fn count_decisions(&self, status: Option<Status>) -> Result<usize> {
        let n: i64 = match status {
            Some(s) => self.conn.query_row(
                "SELECT COUNT(*) FROM decisions WHERE user_id = ?1 AND status = ?2",
                params![self.user, s.as_str()],
                |r| r.get(0),
            )?,
            None => self.conn.query_row(
                "SELECT COUNT(*) FROM decisions WHERE user_id = ?1",
                params![self.user],
                |r| r.get(0),
            )?,
        };
        Ok(n as usize)
    }

    pub fn set_status(&self, log_id: &str, status: Status, reason: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE decisions SET status = ?3, status_reason = ?4, updated_at = ?5 WHERE user_id = ?1 AND log_id = ?2",
            params![self.user, log_id, status.as_str(), reason, self.now],
        )?;
        tracing::info!(
            user_id = self.user,
            log_id,
            status = status.as_str(),
            "status change: {reason}"
        );
        Ok(())
    }

    /// Executed at `now`, with the broker's fill in the reason.
    pub fn set_executed(&self, log_id: &str, reason: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE decisions SET status = 'executed', executed_at = ?3, updated_at = ?3, status_reason = ?4
             WHERE user_id = ?1 AND log_id = ?2",
            params![self.user, log_id, self.now, reason],
        )?;
        Ok(())
    }

    pub fn set_origin(&self, log_id: &str, origin: Origin) -> Result<()> {
        self.conn.execute(
            "UPDATE decisions SET origin = ?3 WHERE user_id = ?1 AND log_id = ?2",
            params![self.user, log_id, origin.as_str()],
        )?;
        Ok(())
    }

    pub fn set_size(&self, log_id: &str, size: f64, risk_reward: &RiskReward) -> Result<()> {
        let rr =
            serde_json::to_string(risk_reward).map_err(|e| StoreError::Other(e.to_string()))?;
        self.conn.execute(
            "UPDATE decisions SET position_size = ?3, risk_reward = ?4, updated_at = ?5 WHERE user_id = ?1 AND log_id = ?2",
            params![self.user, log_id, size, rr, self.now],
        )?;
        Ok(())
    }

    /// Pending decisions created before `cutoff_ms`, or after `ahead_ms` (stamped ahead of the
    /// clock), and not yet sent to a broker (a decision whose order is out waits for the
    /// broker's answer, whatever its age).
    pub fn pending_expired(&self, cutoff_ms: i64, ahead_ms: i64) -> Result<Vec<StalePending>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT log_id, symbol, action, created_at FROM decisions d
             WHERE user_id = ?1 AND status = 'pending' AND (created_at < ?2 OR created_at > ?3)
               AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.client_order_id = d.log_id)",
        );
        stmt_db.query_map(stmt_sql, params![self.user, cutoff_ms, ahead_ms], |r| {
            Ok(StalePending {
                log_id: r.get(0)?,
                symbol: r.get(1)?,
                action: r.get(2)?,
                created_at_ms: r.get(3)?,
            })
        })
    }

    /// When the oldest pending decision not yet sent to a broker was created (ms): the next
    /// one to expire, so the loop can sleep until then instead of checking every second. One
    /// stamped after `ahead_ms` (ahead of the clock) counts as made at the epoch: due now.
    pub fn oldest_pending_at(&self, ahead_ms: i64) -> Result<Option<i64>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT MIN(CASE WHEN created_at > ?2 THEN 0 ELSE created_at END) FROM decisions d
             WHERE user_id = ?1 AND status = 'pending'
               AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.client_order_id = d.log_id)",
        );
        stmt_db.query_row(stmt_sql, params![self.user, ahead_ms], |r| r.get(0))
    }

    /// Cancel every pending decision not yet sent to a broker; returns how many.
    pub fn cancel_all_pending(&self, reason: &str) -> Result<usize> {
        self.conn.execute(
            "UPDATE decisions SET status = 'cancelled', status_reason = ?3, updated_at = ?2
             WHERE user_id = ?1 AND status = 'pending'
               AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.client_order_id = decisions.log_id)",
            params![self.user, self.now, reason],
        )
    }

    /// Executed decisions with no position (only a crash between the two could leave one):
    /// (log_id, symbol, action).
    pub fn executed_without_position(&self) -> Result<Vec<(String, String, String)>> {
        let (stmt_db, stmt_sql) = (self.conn, "SELECT d.log_id, d.symbol, d.action FROM decisions d INDEXED BY decisions_executed
             WHERE d.user_id = ?1 AND d.status = 'executed'
               AND NOT EXISTS (SELECT 1 FROM positions p WHERE p.user_id = d.user_id AND p.decision_id = d.log_id)");
        stmt_db.query_map(stmt_sql, params![self.user], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
    }

    /// The gates for `symbol` as the store stands (rule 6).
    pub fn gates(&self, symbol: &str, max_open_positions: usize) -> Result<Gates> {
        let st = self.state()?;
        let count = |sql: &str, with_symbol: bool| -> Result<i64> {
            Ok(if with_symbol {
                self.conn
                    .query_row(sql, params![self.user, symbol], |r| r.get(0))?
            } else {
                self.conn.query_row(sql, params![self.user], |r| r.get(0))?
            })
        };
        // An opening order out at the broker will be a position: it counts against the limit
        // (a partly filled one has its position already).
        let open_positions = count(
            "SELECT (SELECT COUNT(*) FROM positions WHERE user_id = ?1 AND status = 'open')
                  + (SELECT COUNT(*) FROM orders WHERE user_id = ?1 AND kind = 'open' AND status IN ('submitted', 'unknown'))",
            false,
        )?;
        let symbol_open = count(
            "SELECT COUNT(*) FROM positions WHERE user_id = ?1 AND status = 'open' AND symbol = ?2",
            true,
        )?;
        let symbol_pending = count(
            "SELECT COUNT(*) FROM decisions WHERE user_id = ?1 AND status = 'pending' AND symbol = ?2",
            true,
        )?;
        Ok(Gates {
            enabled: st.enabled,
            kill_switch: st.kill_switch,
            halted: st.halt.is_some(),
            symbol_has_open_position: symbol_open > 0,
            symbol_has_pending: symbol_pending > 0,
            open_positions: open_positions as usize,
            max_open_positions,
        })
    }

    /// Many decisions in one transaction (imports and benchmarks).
    /// Keep the position cap a trader lifted on purpose for one decision.
    pub fn set_allowed_position_percent(&self, log_id: &str, percent: f64) -> Result<()> {
        self.conn.execute(
            "UPDATE decisions SET allowed_position_percent = ?3 WHERE user_id = ?1 AND log_id = ?2",
            params![self.user, log_id, percent],
        )?;
        Ok(())
    }

    pub fn insert_decisions_bulk(
        &self,
        decisions: &[Decision],
        status: Status,
        origin: Origin,
        mode: &str,
    ) -> Result<usize> {
        for d in decisions {
            let amd = serde_json::json!({ "phase": d.amd_phase.map(|p| p.as_str()) });
            self.insert_decision(d, status, origin, mode, &amd)?;
        }
        Ok(decisions.len())
    }
}
