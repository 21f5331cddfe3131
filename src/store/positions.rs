//! The `positions`, `fills` and `prices` tables.

use super::{Fill, Position, PricePoint, Result, Tx, rows};
use crate::domain::Side;
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;

/// A position to open from a filled order.
pub struct NewPosition<'a> {
    pub decision_id: &'a str,
    pub symbol: &'a str,
    pub side: Side,
    pub quantity: f64,
    pub entry_price: f64,
    pub take_profit: f64,
    pub stop_loss: f64,
    pub mode: &'a str,
}

impl Tx<'_> {
    pub fn open_positions(&self) -> Result<Vec<Position>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT * FROM positions WHERE user_id = ?1 AND status = 'open' ORDER BY id",
        )?;
        Ok(stmt
            .query_map(params![self.user], rows::position)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn open_position(&self, symbol: &str) -> Result<Option<Position>> {
        Ok(self
            .conn
            .query_row(
                "SELECT * FROM positions WHERE user_id = ?1 AND symbol = ?2 AND status = 'open' ORDER BY id LIMIT 1",
                params![self.user, symbol],
                rows::position,
            )
            .optional()?)
    }

    pub fn closed_positions(&self, limit: usize) -> Result<Vec<Position>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT * FROM positions WHERE user_id = ?1 AND status = 'closed' ORDER BY closed_at DESC, id DESC LIMIT ?2",
        )?;
        Ok(stmt
            .query_map(params![self.user, limit as i64], rows::position)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn realized_pnl(&self) -> Result<f64> {
        let v: Option<f64> = self.conn.query_row(
            "SELECT SUM(realized_pnl) FROM positions WHERE user_id = ?1 AND status = 'closed'",
            params![self.user],
            |r| r.get(0),
        )?;
        Ok(v.unwrap_or(0.0))
    }

    fn position(&self, id: i64) -> Result<Position> {
        Ok(self.conn.query_row(
            "SELECT * FROM positions WHERE id = ?1",
            params![id],
            rows::position,
        )?)
    }

    /// Open a position and record its opening fill.
    pub fn open(&self, p: &NewPosition<'_>) -> Result<Position> {
        self.conn.execute(
            "INSERT INTO positions (user_id, decision_id, symbol, side, quantity, entry_price, take_profit, stop_loss,
                opened_at, mode, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'open')",
            params![
                self.user, p.decision_id, p.symbol, p.side.as_str(), p.quantity, p.entry_price,
                p.take_profit, p.stop_loss, self.now, p.mode
            ],
        )?;
        let id = self.conn.last_insert_rowid();
        self.conn.execute(
            "INSERT INTO fills (user_id, position_id, decision_id, symbol, side, quantity, price, at, kind, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open', 'decision executed')",
            params![self.user, id, p.decision_id, p.symbol, p.side.as_str(), p.quantity, p.entry_price, self.now],
        )?;
        self.position(id)
    }

    /// Close `pos` at `price` with its realized P&L, and record the closing fill.
    pub fn close(&self, pos: &Position, price: f64, pnl: f64, reason: &str) -> Result<Position> {
        self.conn.execute(
            "UPDATE positions SET status = 'closed', closed_at = ?2, exit_price = ?3, realized_pnl = ?4, close_reason = ?5
             WHERE id = ?1",
            params![pos.id, self.now, price, pnl, reason],
        )?;
        self.conn.execute(
            "INSERT INTO fills (user_id, position_id, decision_id, symbol, side, quantity, price, at, kind, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'close', ?9)",
            params![
                self.user, pos.id, pos.decision_id, pos.symbol, pos.side.closing().as_str(),
                pos.quantity, price, self.now, reason
            ],
        )?;
        self.position(pos.id)
    }

    pub fn fills(&self, limit: usize) -> Result<Vec<Fill>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT symbol, side, quantity, price, at, kind FROM fills WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        Ok(stmt
            .query_map(params![self.user, limit as i64], |r| {
                Ok(Fill {
                    symbol: r.get(0)?,
                    side: r.get(1)?,
                    quantity: r.get(2)?,
                    price: r.get(3)?,
                    at_ms: r.get(4)?,
                    kind: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }

    // ---------- prices ----------

    pub fn set_price(&self, symbol: &str, price: f64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO prices (symbol, price, at) VALUES (?1, ?2, ?3)
             ON CONFLICT(symbol) DO UPDATE SET price = excluded.price, at = excluded.at",
            params![symbol, price, self.now],
        )?;
        Ok(())
    }

    pub fn price(&self, symbol: &str) -> Result<Option<PricePoint>> {
        Ok(self
            .conn
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

    pub fn prices(&self) -> Result<BTreeMap<String, PricePoint>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT symbol, price, at FROM prices")?;
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
}
