//! The `outcomes` table: what followed each BUY or SELL on later prices (see
//! `domain::outcome`), and the reads the report is made of.

use super::db::{Row, params};
use super::{Result, Tx, rows};
use crate::domain::lifecycle::{Origin, OutcomeState, Status};
use crate::domain::outcome::{Levels, Resolution, Seen};
use crate::domain::rules::RiskReward;
use crate::domain::{Side, Verdict};

/// One followed decision as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRecord {
    pub decision_id: String,
    pub symbol: String,
    pub levels: Levels,
    /// What scored it: `ml_engine`, `analyzer`, `agent`, `manual` (or `unrecorded`).
    pub source: String,
    /// The raw score the decision carried.
    pub score: f64,
    pub started_at_ms: i64,
    pub state: OutcomeState,
    pub last: Option<Seen>,
    pub exit_price: Option<f64>,
    pub resolved_at_ms: Option<i64>,
    pub r_multiple: Option<f64>,
}

/// An outcome with what became of its decision.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowedDecision {
    pub outcome: OutcomeRecord,
    pub status: Status,
    pub origin: Origin,
    /// HOLD for a BUY or SELL that fell below `min_confidence`.
    pub action: Verdict,
    /// What the decision risked in money at its size (none below `min_confidence`: no size).
    pub risk_amount: Option<f64>,
}

/// A closed position with the decision that opened it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedTrade {
    pub decision_id: String,
    pub symbol: String,
    pub origin: Origin,
    pub side: Side,
    pub quantity: f64,
    pub entry_price: f64,
    pub stop_loss: f64,
    pub realized_pnl: f64,
    pub closed_at_ms: i64,
}

impl ClosedTrade {
    /// What the position risked at its stop-loss, in money.
    pub fn risk_amount(&self) -> f64 {
        self.quantity * (self.entry_price - self.stop_loss).abs()
    }
}

fn record(row: &Row<'_>) -> Result<OutcomeRecord> {
    let last_price: Option<f64> = row.get("last_price")?;
    let last_at: Option<i64> = row.get("last_at")?;
    Ok(OutcomeRecord {
        decision_id: row.get("decision_id")?,
        symbol: row.get("symbol")?,
        levels: Levels {
            side: rows::side(row, "side")?,
            entry: row.get("entry_price")?,
            take_profit: row.get("take_profit")?,
            stop_loss: row.get("stop_loss")?,
        },
        source: row.get("source")?,
        score: row.get("score")?,
        started_at_ms: row.get("started_at")?,
        state: rows::parsed(row, "state")?,
        last: last_price
            .zip(last_at)
            .map(|(price, at_ms)| Seen { price, at_ms }),
        exit_price: row.get("exit_price")?,
        resolved_at_ms: row.get("resolved_at")?,
        r_multiple: row.get("r_multiple")?,
    })
}

impl Tx<'_> {
    /// Start following a decision from now (once: a second call changes nothing).
    pub fn follow_decision(
        &self,
        decision_id: &str,
        symbol: &str,
        levels: &Levels,
        source: &str,
        score: f64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO outcomes (decision_id, user_id, symbol, side, source, score,
                    entry_price, take_profit, stop_loss, started_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'open') ON CONFLICT DO NOTHING",
            params![
                decision_id,
                self.user,
                symbol,
                levels.side.as_str(),
                source,
                score,
                levels.entry,
                levels.take_profit,
                levels.stop_loss,
                self.now,
            ],
        )?;
        Ok(())
    }

    /// The open outcomes on `symbol`, or on every symbol.
    pub fn open_outcomes(&self, symbol: Option<&str>) -> Result<Vec<OutcomeRecord>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT * FROM outcomes WHERE user_id = ?1 AND state = 'open'
                AND (CAST(?2 AS TEXT) IS NULL OR symbol = ?2) ORDER BY started_at",
        );
        let v = stmt_db.query_map(stmt_sql, params![self.user, symbol], record)?;
        Ok(v)
    }

    /// The last price an open outcome was followed at.
    pub fn outcome_seen(&self, decision_id: &str, seen: &Seen) -> Result<()> {
        self.conn.execute(
            "UPDATE outcomes SET last_price = ?3, last_at = ?4
                 WHERE user_id = ?1 AND decision_id = ?2 AND state = 'open'",
            params![self.user, decision_id, seen.price, seen.at_ms],
        )?;
        Ok(())
    }

    /// Resolve an open outcome (a resolved one stays as it was).
    pub fn resolve_outcome(&self, decision_id: &str, r: &Resolution) -> Result<()> {
        self.conn.execute(
            "UPDATE outcomes SET state = ?3, exit_price = ?4, resolved_at = ?5, r_multiple = ?6
                 WHERE user_id = ?1 AND decision_id = ?2 AND state = 'open'",
            params![
                self.user,
                decision_id,
                r.state.as_str(),
                r.exit_price,
                r.at_ms,
                r.r_multiple
            ],
        )?;
        Ok(())
    }

    /// The recent prices the store kept for `symbol` after `after_ms`, oldest first.
    pub fn ticks_after(&self, symbol: &str, after_ms: i64) -> Result<Vec<(i64, f64)>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT at, price FROM price_ticks WHERE symbol = ?1 AND at > ?2 ORDER BY at",
        );
        let v = stmt_db.query_map(stmt_sql, params![symbol, after_ms], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(v)
    }

    /// (score, won) of every resolved outcome of `source` that has an R multiple: what a
    /// calibration map is fitted to. A win is an outcome that made more than 0 R.
    pub fn scored_outcomes(&self, source: &str) -> Result<Vec<(f64, bool)>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT score, r_multiple FROM outcomes
             WHERE user_id = ?1 AND source = ?2 AND state != 'open' AND r_multiple IS NOT NULL",
        );
        let v = stmt_db.query_map(stmt_sql, params![self.user, source], |r| {
            Ok((r.get::<_, f64>(0)?, r.get::<_, f64>(1)? > 0.0))
        })?;
        Ok(v)
    }

    /// Every followed decision made at or after `since_ms`, oldest first.
    pub fn followed_decisions(&self, since_ms: i64) -> Result<Vec<FollowedDecision>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT o.*, d.status AS d_status, d.origin AS d_origin, d.action AS d_action,
                    d.risk_reward AS d_risk_reward
             FROM outcomes o JOIN decisions d ON d.log_id = o.decision_id AND d.user_id = o.user_id
             WHERE o.user_id = ?1 AND o.started_at >= ?2 ORDER BY o.started_at, d.seq",
        );
        let v = stmt_db.query_map(stmt_sql, params![self.user, since_ms], |row| {
            let action: String = row.get("d_action")?;
            let rr: Option<String> = row.get("d_risk_reward")?;
            Ok(FollowedDecision {
                outcome: record(row)?,
                status: rows::parsed(row, "d_status")?,
                origin: rows::parsed(row, "d_origin")?,
                action: Verdict::parse(&action).unwrap_or(Verdict::Hold),
                risk_amount: rr
                    .and_then(|s| serde_json::from_str::<RiskReward>(&s).ok())
                    .map(|r| r.risk_amount),
            })
        })?;
        Ok(v)
    }

    /// Positions closed at or after `since_ms` with their decisions, in the order they closed.
    pub fn closed_trades(&self, since_ms: i64) -> Result<Vec<ClosedTrade>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT p.decision_id, p.symbol, p.side, p.quantity, p.entry_price, p.stop_loss,
                    p.realized_pnl, p.closed_at, d.origin AS d_origin
             FROM positions p JOIN decisions d ON d.log_id = p.decision_id AND d.user_id = p.user_id
             WHERE p.user_id = ?1 AND p.status = 'closed' AND p.realized_pnl IS NOT NULL
               AND p.closed_at >= ?2
             ORDER BY p.closed_at, p.id",
        );
        let v = stmt_db.query_map(stmt_sql, params![self.user, since_ms], |row| {
            Ok(ClosedTrade {
                decision_id: row.get("decision_id")?,
                symbol: row.get("symbol")?,
                origin: rows::parsed(row, "d_origin")?,
                side: rows::side(row, "side")?,
                quantity: row.get("quantity")?,
                entry_price: row.get("entry_price")?,
                stop_loss: row.get("stop_loss")?,
                realized_pnl: row.get("realized_pnl")?,
                closed_at_ms: row.get("closed_at")?,
            })
        })?;
        Ok(v)
    }
}
