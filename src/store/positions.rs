//! The `positions`, `fills` and `prices` tables.

use super::db::{OptionalExtension, params};
use super::{Fill, Position, PricePoint, Result, Tx, rows};
use crate::domain::Side;
use crate::domain::lifecycle::ExitsHeldBy;
use std::collections::BTreeMap;

/// A trend keeps at most one price a minute per symbol…
const TICK_SPACING_MS: i64 = 60_000;
/// …and its newest 500 (over eight hours a minute apart, three weeks of hourly checks).
const TICKS_KEPT: i64 = 500;

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
    pub exits_held_by: ExitsHeldBy,
    /// A trailing stop: its trail and the best price so far (`stop_loss` is then the stop
    /// the trail set at the fill).
    pub trailing: Option<crate::domain::trail::Trailing>,
}

impl Tx<'_> {
    pub fn open_positions(&self) -> Result<Vec<Position>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT * FROM positions WHERE user_id = ?1 AND status = 'open' ORDER BY id",
        );
        stmt_db.query_map(stmt_sql, params![self.user], rows::position)
    }

    pub fn open_position(&self, symbol: &str) -> Result<Option<Position>> {
        self
            .conn
            .query_row(
                "SELECT * FROM positions WHERE user_id = ?1 AND symbol = ?2 AND status = 'open' ORDER BY id LIMIT 1",
                params![self.user, symbol],
                rows::position,
            )
            .optional()
    }

    pub fn closed_positions(&self, limit: usize) -> Result<Vec<Position>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT * FROM positions WHERE user_id = ?1 AND status = 'closed' ORDER BY closed_at DESC, id DESC LIMIT ?2",
        );
        stmt_db.query_map(stmt_sql, params![self.user, limit as i64], rows::position)
    }

    /// The newest `limit` closed positions whose symbol or close reason contains `query` (any
    /// case; empty: all), newest first, and how many there are in all.
    pub fn search_closed(&self, query: &str, limit: usize) -> Result<(Vec<Position>, usize)> {
        let pattern = super::events::like_pattern(query);
        // Both statements written out whole (no fragment): `pg_store.rs` prepares each on
        // PostgreSQL.
        let total: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM positions WHERE user_id = ?1 AND status = 'closed'
             AND (symbol LIKE ?2 ESCAPE '\\' OR COALESCE(close_reason, '') LIKE ?2 ESCAPE '\\')",
            params![self.user, pattern],
            |r| r.get(0),
        )?;
        let rows = self.conn.query_map(
            "SELECT * FROM positions WHERE user_id = ?1 AND status = 'closed'
             AND (symbol LIKE ?2 ESCAPE '\\' OR COALESCE(close_reason, '') LIKE ?2 ESCAPE '\\')
             ORDER BY closed_at DESC, id DESC LIMIT ?3",
            params![self.user, pattern, limit as i64],
            rows::position,
        )?;
        Ok((rows, total.max(0) as usize))
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
        self.conn.query_row(
            "SELECT * FROM positions WHERE id = ?1",
            params![id],
            rows::position,
        )
    }

    /// Open a position and record its opening fill.
    pub fn open(&self, p: &NewPosition<'_>) -> Result<Position> {
        let (trail_percent, trail_amount) =
            crate::domain::trail::Trail::columns(p.trailing.map(|t| t.trail));
        let id: i64 = self.conn.query_row(
            "INSERT INTO positions (user_id, decision_id, symbol, side, quantity, entry_price, take_profit, stop_loss,
                opened_at, mode, status, exits_held_by, trail_percent, trail_amount, best_price)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'open', ?11, ?12, ?13, ?14)
             RETURNING id",
            params![
                self.user, p.decision_id, p.symbol, p.side.as_str(), p.quantity, p.entry_price,
                p.take_profit, p.stop_loss, self.now, p.mode, p.exits_held_by.as_str(),
                trail_percent, trail_amount, p.trailing.map(|t| t.best)
            ],
            |r| r.get(0),
        )?;
        self.conn.execute(
            "INSERT INTO fills (user_id, position_id, decision_id, symbol, side, quantity, price, at, kind, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open', 'decision executed')",
            params![self.user, id, p.decision_id, p.symbol, p.side.as_str(), p.quantity, p.entry_price, self.now],
        )?;
        self.position(id)
    }

    /// The position a decision opened, open or closed.
    pub fn position_of(&self, decision_id: &str) -> Result<Option<Position>> {
        self
            .conn
            .query_row(
                "SELECT * FROM positions WHERE user_id = ?1 AND decision_id = ?2 ORDER BY id DESC LIMIT 1",
                params![self.user, decision_id],
                rows::position,
            )
            .optional()
    }

    /// The broker's figures for an open position (more of its order filled, or the broker's
    /// book says otherwise): its quantity and average entry price, and its opening fill with them.
    pub fn restate(&self, pos: &Position, quantity: f64, entry_price: f64) -> Result<Position> {
        self.conn.execute(
            "UPDATE positions SET quantity = ?2, entry_price = ?3 WHERE id = ?1",
            params![pos.id, quantity, entry_price],
        )?;
        self.conn.execute(
            "UPDATE fills SET quantity = ?2, price = ?3 WHERE position_id = ?1 AND kind = 'open'",
            params![pos.id, quantity, entry_price],
        )?;
        self.position(pos.id)
    }

    /// A trailing stop moved: the open position's stop and best price, as the trail left them.
    pub fn move_stop(&self, pos: &Position, stop_loss: f64, best_price: f64) -> Result<()> {
        self.conn
            .execute("UPDATE positions SET stop_loss = ?2, best_price = ?3 WHERE id = ?1 AND status = 'open'", params![pos.id, stop_loss, best_price])?;
        Ok(())
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
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT symbol, side, quantity, price, at, kind FROM fills WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
        );
        stmt_db.query_map(stmt_sql, params![self.user, limit as i64], |r| {
            Ok(Fill {
                symbol: r.get(0)?,
                side: r.get(1)?,
                quantity: r.get(2)?,
                price: r.get(3)?,
                at_ms: r.get(4)?,
                kind: r.get(5)?,
            })
        })
    }

    // ---------- prices ----------

    /// The latest price of `symbol` (now, no quote), and a tick of its trend when the last
    /// is a minute old.
    pub fn set_price(&self, symbol: &str, price: f64) -> Result<()> {
        self.set_quote(
            symbol,
            &PricePoint {
                price,
                at_ms: self.now,
                bid: None,
                ask: None,
            },
        )
    }

    /// The latest price of `symbol` as a feed gave it (its time, its bid and ask), and a tick
    /// of its trend when the last is a minute old. A time in the future is taken as now.
    pub fn set_quote(&self, symbol: &str, p: &PricePoint) -> Result<()> {
        // PostgreSQL: `prices` is every user's; writers of it take one lock (after their own
        // user's), so two users' cycles writing the same symbols in another order never
        // deadlock on its rows.
        if self.conn.is_pg() && !self.prices_locked.get() {
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(?1)",
                params![super::pg::PRICES_LOCK],
            )?;
            self.prices_locked.set(true);
        }
        let at = p.at_ms.min(self.now);
        self.conn.execute(
            "INSERT INTO prices (symbol, price, at, bid, ask) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(symbol) DO UPDATE SET price = excluded.price, at = excluded.at,
                     bid = excluded.bid, ask = excluded.ask",
            params![symbol, p.price, at, p.bid, p.ask],
        )?;
        let ticked = self
            .conn
            .execute("INSERT INTO price_ticks (symbol, price, at)
                 SELECT CAST(?1 AS TEXT), CAST(?2 AS DOUBLE PRECISION), CAST(?3 AS BIGINT)
                 WHERE NOT EXISTS (SELECT 1 FROM price_ticks WHERE symbol = ?1 AND at > CAST(?3 AS BIGINT) - CAST(?4 AS BIGINT))", params![symbol, p.price, at, TICK_SPACING_MS])?;
        if ticked > 0 {
            self.conn.execute(
                "DELETE FROM price_ticks WHERE symbol = ?1 AND at <= (
                         SELECT at FROM price_ticks WHERE symbol = ?1
                         ORDER BY at DESC LIMIT 1 OFFSET ?2)",
                params![symbol, TICKS_KEPT],
            )?;
        }
        Ok(())
    }

    /// The newest `n` ticks of `symbol`'s trend, oldest first.
    pub fn trend(&self, symbol: &str, n: usize) -> Result<Vec<PricePoint>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT price, at FROM price_ticks WHERE symbol = ?1 ORDER BY at DESC LIMIT ?2",
        );
        let mut points = stmt_db.query_map(stmt_sql, params![symbol, n as i64], |r| {
            Ok(PricePoint {
                price: r.get(0)?,
                at_ms: r.get(1)?,
                bid: None,
                ask: None,
            })
        })?;
        points.reverse();
        Ok(points)
    }

    pub fn price(&self, symbol: &str) -> Result<Option<PricePoint>> {
        self.conn
            .query_row(
                "SELECT price, at, bid, ask FROM prices WHERE symbol = ?1",
                params![symbol],
                |r| {
                    Ok(PricePoint {
                        price: r.get(0)?,
                        at_ms: r.get(1)?,
                        bid: r.get(2)?,
                        ask: r.get(3)?,
                    })
                },
            )
            .optional()
    }

    pub fn prices(&self) -> Result<BTreeMap<String, PricePoint>> {
        let rows = self.conn.query_map(
            "SELECT symbol, price, at, bid, ask FROM prices",
            params![],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    PricePoint {
                        price: r.get(1)?,
                        at_ms: r.get(2)?,
                        bid: r.get(3)?,
                        ask: r.get(4)?,
                    },
                ))
            },
        )?;
        Ok(rows.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    fn ticks(store: &Store, symbol: &str) -> Vec<(f64, i64)> {
        store
            .read(|t| t.trend(symbol, 1000))
            .unwrap()
            .into_iter()
            .map(|p| (p.price, p.at_ms))
            .collect()
    }

    #[test]
    fn a_trend_keeps_one_price_a_minute_and_its_newest_ticks() {
        let store = Store::open_in_memory("default", true).unwrap();
        store.write(|t| t.set_price("BTC/USD", 100.0)).unwrap();
        store.write(|t| t.set_price("BTC/USD", 101.0)).unwrap();
        let first = ticks(&store, "BTC/USD");
        assert_eq!(
            first.len(),
            1,
            "a second price within the minute is no new tick"
        );
        assert_eq!(first[0].0, 100.0);
        // Older ticks, as a store that has run for hours has them; then a new price a minute
        // after the last adds one and the oldest beyond what is kept go.
        store
            .write(|t| {
                t.conn.execute(
                    "UPDATE price_ticks SET at = at - 60000 * 600",
                    crate::store::db::params![],
                )?;
                for i in 1..600 {
                    t.conn.execute(
                        "INSERT INTO price_ticks (symbol, price, at) VALUES ('BTC/USD', ?1, ?2)",
                        crate::store::db::params![100.0 + i as f64, t.now() - 60_000 * (600 - i)],
                    )?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .unwrap();
        store.write(|t| t.set_price("BTC/USD", 777.0)).unwrap();
        let kept = ticks(&store, "BTC/USD");
        assert_eq!(kept.len(), super::TICKS_KEPT as usize);
        assert_eq!(kept.last().unwrap().0, 777.0, "the newest last");
        assert!(kept.windows(2).all(|w| w[0].1 < w[1].1), "oldest first");
        // The latest price is the price, whatever the trend keeps.
        assert_eq!(
            store.read(|t| t.price("BTC/USD")).unwrap().unwrap().price,
            777.0
        );
        assert!(ticks(&store, "ETH/USD").is_empty());
    }
}
