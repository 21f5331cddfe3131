//! The `orders` table: an execution's order, stored before the broker is asked.

use super::db::{OptionalExtension, params};
use super::{Order, OrderStatus, Result, Tx, rows};
use crate::domain::Side;
use crate::domain::lifecycle::OrderKind;

/// An order about to be sent.
pub struct NewOrder<'a> {
    /// The decision's log id for its opening order; `<log id>-close-N` for a closing one.
    pub client_order_id: &'a str,
    pub kind: OrderKind,
    /// Why a closing order is sent (`take_profit`, `stop_loss`, a manual close, …).
    pub reason: Option<&'a str>,
    pub decision_id: &'a str,
    pub broker: &'a str,
    pub symbol: &'a str,
    pub side: Side,
    pub quantity: f64,
    pub reference_price: f64,
    pub take_profit: f64,
    pub stop_loss: f64,
    /// Who is to hold an opening order's exits, when the desk chose; none: the broker's way.
    pub exits_held_by: Option<crate::domain::lifecycle::ExitsHeldBy>,
}

impl Tx<'_> {
    /// Store an order as `submitted`. The client order id is unique: a second opening order
    /// for one decision fails.
    pub fn insert_order(&self, o: &NewOrder<'_>) -> Result<Order> {
        let id: i64 = self.conn.query_row(
            "INSERT INTO orders (user_id, client_order_id, decision_id, broker, symbol, side, quantity,
                reference_price, take_profit, stop_loss, status, created_at, updated_at, kind, reason,
                exits_held_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'submitted', ?11, ?11, ?12, ?13, ?14)
             RETURNING id",
            params![
                self.user, o.client_order_id, o.decision_id, o.broker, o.symbol, o.side.as_str(),
                o.quantity, o.reference_price, o.take_profit, o.stop_loss, self.now, o.kind.as_str(),
                o.reason, o.exits_held_by.map(|e| e.as_str())
            ],
            |r| r.get(0),
        )?;
        self.conn.query_row(
            "SELECT * FROM orders WHERE id = ?1",
            params![id],
            rows::order,
        )
    }

    pub fn order(&self, client_order_id: &str) -> Result<Option<Order>> {
        self.conn
            .query_row(
                "SELECT * FROM orders WHERE user_id = ?1 AND client_order_id = ?2",
                params![self.user, client_order_id],
                rows::order,
            )
            .optional()
    }

    /// Orders whose outcome is still to be learnt (submitted or unknown), oldest first.
    pub fn open_orders(&self) -> Result<Vec<Order>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT * FROM orders WHERE user_id = ?1 AND status IN ('submitted', 'partially_filled', 'unknown') ORDER BY id",
        );
        stmt_db.query_map(stmt_sql, params![self.user], rows::order)
    }

    /// The closing orders sent for a decision's position, oldest first.
    pub fn closing_orders(&self, decision_id: &str) -> Result<Vec<Order>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT * FROM orders WHERE user_id = ?1 AND decision_id = ?2 AND kind = 'close' ORDER BY id",
        );
        stmt_db.query_map(stmt_sql, params![self.user, decision_id], rows::order)
    }

    pub fn orders(&self, limit: usize) -> Result<Vec<Order>> {
        let (stmt_db, stmt_sql) = (
            self.conn,
            "SELECT * FROM orders WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
        );
        stmt_db.query_map(stmt_sql, params![self.user, limit as i64], rows::order)
    }

    /// Record what the broker said of an order.
    pub fn update_order(
        &self,
        client_order_id: &str,
        status: OrderStatus,
        fill: Option<(f64, f64)>,
        reason: Option<&str>,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE orders SET status = ?3, filled_quantity = ?4, fill_price = ?5, reason = ?6, updated_at = ?7
             WHERE user_id = ?1 AND client_order_id = ?2",
            params![
                self.user,
                client_order_id,
                status.as_str(),
                fill.map(|f| f.0),
                fill.map(|f| f.1),
                reason,
                self.now
            ],
        )?;
        Ok(())
    }
}
