//! Execution: a pending decision becomes an order, stored as submitted before the broker is
//! asked; the broker's answer moves the decision to executed (with the broker's fill) or
//! failed (with its reason); an answer that was lost is looked up by client order id, never
//! sent again.

use super::{Desk, DeskError, Limits, Result};
use crate::broker::OrderUpdate;
use crate::domain::lifecycle::{self, FillRefusal, OrderKind, OrderStatus, Quote, Status};
use crate::domain::money::{fmt_price, fmt_qty};
use crate::store::{DecisionLog, NewOrder, NewPosition, Order, Position, Tx};
use std::time::Duration;

/// An order stored as submitted this long ago with no answer was lost with its sender (a
/// crash between storing and hearing back): it is looked up.
pub const SUBMIT_GRACE: Duration = Duration::from_secs(60);

/// Refuse anything but a pending decision that is not already on its way to the broker.
pub(super) fn must_be_pending(tx: &Tx<'_>, log: &DecisionLog, verb: &str) -> Result<()> {
    let id = &log.log_id;
    if log.status != Status::Pending {
        return Err(DeskError::Refused(format!(
            "{id} is {}, not pending: only a pending decision can be {verb}",
            log.status.as_str()
        )));
    }
    if let Some(o) = tx.order(id)? {
        return Err(DeskError::Refused(format!(
            "{id} is executing (its order is {} at the {} broker), not pending: only a pending decision can be {verb}",
            o.status, o.broker
        )));
    }
    Ok(())
}

/// End a decision with `status` and `reason`, and tell the events pane.
pub(super) fn settle(
    tx: &Tx<'_>,
    log_id: &str,
    status: Status,
    reason: &str,
    (level, event): (&str, String),
) -> crate::store::Result<()> {
    tx.set_status(log_id, status, reason)?;
    tx.add_event(level, &event)
}

/// A confirm that finds its decision stale: mark it expired with the reason, record the
/// event, and return the refusal.
fn expire_on_confirm(tx: &Tx<'_>, log: &DecisionLog, reason: &str) -> Result<DeskError> {
    let (log_id, d) = (&log.log_id, &log.decision);
    let event = format!("{log_id} {} {}: {reason}", d.action, d.symbol);
    settle(tx, log_id, Status::Expired, reason, ("warn", event))?;
    Ok(DeskError::Refused(format!(
        "{log_id} not confirmed: {reason}"
    )))
}

/// A fill check's refusal as the trader reads it.
pub(super) fn fill_refusal(log_id: &str, e: &FillRefusal) -> DeskError {
    DeskError::Refused(match e {
        FillRefusal::OverCap { .. } | FillRefusal::NoLevels => format!("{log_id} {e}"),
        _ => format!("{log_id} not executed: {e}"),
    })
}

impl Desk {
    /// The fill check at the latest stored price and, when it passes, the order stored as
    /// submitted (inside the caller's transaction).
    pub(super) fn prepare_order(
        &self,
        tx: &Tx<'_>,
        log: &DecisionLog,
        limits: &Limits,
    ) -> crate::store::Result<std::result::Result<Order, FillRefusal>> {
        let d = &log.decision;
        // A buy pays the ask, a sell gets the bid, when the feed quotes them.
        let quote = tx.price(&d.symbol)?.map(|p| Quote {
            price: d.action.side().map_or(p.price, |side| p.fill_price(side)),
            age: p.age(tx.now()),
        });
        if quote.is_none() && self.config.market_data.provider.is_feed() {
            return Ok(Err(FillRefusal::NoPrice {
                symbol: d.symbol.clone(),
            }));
        }
        let fill = match lifecycle::check_fill(d, quote, limits.price_max_age, &limits.risk) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        let (Some(side), Some(tp), Some(sl)) = (d.action.side(), d.take_profit, d.stop_loss) else {
            return Ok(Err(FillRefusal::NoLevels));
        };
        tx.insert_order(&NewOrder {
            client_order_id: &log.log_id,
            kind: OrderKind::Open,
            reason: None,
            decision_id: &log.log_id,
            broker: self.broker.name(),
            symbol: &d.symbol,
            side,
            quantity: d.position_size,
            reference_price: fill,
            take_profit: tp,
            stop_loss: sl,
        })
        .map(Ok)
    }

    /// Confirm a pending decision: re-check expiry, the gates and the latest price, store the
    /// order, send it, and record the broker's answer.
    pub async fn confirm(&self, log_id: &str) -> Result<(DecisionLog, Position)> {
        let id = log_id.to_string();
        let order = self.blocking(move |desk| desk.prepare_confirm(&id)).await?;
        self.send(order).await
    }

    fn prepare_confirm(&self, log_id: &str) -> Result<Order> {
        let limits = self.limits();
        self.store
            .write(|tx| {
                let log = tx
                    .decision(log_id)?
                    .ok_or_else(|| DeskError::UnknownDecision(log_id.to_string()))?;
                must_be_pending(tx, &log, "confirmed")?;
                let age = Duration::from_millis((tx.now() - log.created_at_ms).max(0) as u64);
                if age > limits.pending_expiry {
                    let reason = format!(
                        "expired: {}s old, pending_expiry is {}s",
                        age.as_secs(),
                        limits.pending_expiry.as_secs()
                    );
                    return Ok(Err(expire_on_confirm(tx, &log, &reason)?));
                }
                let gates = tx.gates(&log.decision.symbol, limits.max_open_positions)?;
                let gates = crate::domain::rules::Gates {
                    symbol_has_pending: false,
                    ..gates
                };
                if let Some(g) = gates.blocked_by(&log.decision.symbol) {
                    return Err(DeskError::Refused(format!("{log_id} not confirmed: {g}")));
                }
                match self.prepare_order(tx, &log, &limits)? {
                    Ok(order) => Ok(Ok(order)),
                    Err(e) if e.is_final() => Ok(Err(expire_on_confirm(tx, &log, &e.to_string())?)),
                    Err(e) => Err(fill_refusal(log_id, &e)),
                }
            })
            .and_then(|r| r)
    }

    /// Send a stored order and record the broker's answer.
    pub(super) async fn send(&self, order: Order) -> Result<(DecisionLog, Position)> {
        let update = self.broker.submit(&order).await;
        self.blocking(move |desk| desk.apply_update(&order.client_order_id, update))
            .await
    }

    /// Record what the broker said of an order, once: an order already settled is left as it is.
    fn apply_update(
        &self,
        client_order_id: &str,
        update: OrderUpdate,
    ) -> Result<(DecisionLog, Position)> {
        self.store
            .write(|tx| {
                let id = client_order_id;
                let order = tx
                    .order(id)?
                    .ok_or_else(|| DeskError::Refused(format!("no order {id}")))?;
                let log = tx
                    .decision(&order.decision_id)?
                    .ok_or_else(|| DeskError::UnknownDecision(order.decision_id.clone()))?;
                if !order.status.is_open() {
                    return Err(DeskError::Refused(format!(
                        "{id}: its order is already {}",
                        order.status
                    )));
                }
                let fail = |status: OrderStatus, why: &str| -> Result<DeskError> {
                    tx.update_order(id, status, None, Some(why))?;
                    let (action, symbol) = (log.decision.action, &log.decision.symbol);
                    let event = format!("{action} {symbol} not executed: {why} ({id})");
                    settle(tx, id, Status::Failed, why, ("error", event))?;
                    Ok(DeskError::Refused(format!("{id} not executed: {why}")))
                };
                match update {
                    OrderUpdate::Filled { quantity, price } => {
                        tx.update_order(id, OrderStatus::Filled, Some((quantity, price)), None)?;
                        let pos = tx.open(&NewPosition {
                            decision_id: id,
                            symbol: &order.symbol,
                            side: order.side,
                            quantity,
                            entry_price: price,
                            take_profit: order.take_profit,
                            stop_loss: order.stop_loss,
                            mode: &log.mode,
                            exits_held_by: self.broker.exits_held_by(&order.symbol, quantity),
                        })?;
                        tx.set_executed(id, &format!("filled at {} ({})", fmt_price(price), log.mode))?;
                        tx.add_event(
                            "info",
                            &format!(
                                "executed {} {} {} @ {} ({}, {id})",
                                log.decision.action,
                                fmt_qty(quantity),
                                order.symbol,
                                fmt_price(price),
                                log.mode
                            ),
                        )?;
                        let log = tx
                            .decision(id)?
                            .ok_or_else(|| DeskError::UnknownDecision(id.to_string()))?;
                        Ok(Ok((log, pos)))
                    }
                    OrderUpdate::Rejected { reason } => Ok(Err(fail(
                        OrderStatus::Rejected,
                        &format!("rejected by the {} broker: {reason}", order.broker),
                    )?)),
                    OrderUpdate::NotFound => Ok(Err(fail(
                        OrderStatus::Rejected,
                        &format!("the {} broker has no such order: it was never sent", order.broker),
                    )?)),
                    OrderUpdate::Working { .. } => Err(DeskError::Refused(format!("{id}: accepted, not filled yet"))),
                    OrderUpdate::Unknown { why } => {
                        tx.update_order(id, OrderStatus::Unknown, None, Some(&why))?;
                        let msg = format!(
                            "{id}: the broker's answer was lost ({why}); it will be looked up, never sent again"
                        );
                        tx.add_event("warn", &msg)?;
                        Ok(Err(DeskError::Refused(msg)))
                    }
                }
            })
            .and_then(|r| r)
    }

    /// Look up every order whose outcome is not known (an `unknown` answer, or `submitted`
    /// longer than [`SUBMIT_GRACE`] ago) and record what the broker says. Returns a line for
    /// each, for the trader to see.
    pub async fn resolve_open_orders(&self) -> Result<Vec<String>> {
        let grace = SUBMIT_GRACE.as_millis() as i64;
        let open = self
            .blocking(move |desk| {
                Ok(desk.store.read(|tx| {
                    let now = tx.now();
                    Ok(tx
                        .open_orders()?
                        .into_iter()
                        .filter(|o| {
                            o.status == OrderStatus::Unknown || now - o.updated_at_ms > grace
                        })
                        .collect::<Vec<_>>())
                })?)
            })
            .await?;
        let mut found = Vec::new();
        for order in open {
            let update = self.broker.lookup(&order.client_order_id).await;
            let line = match self
                .blocking({
                    let id = order.client_order_id.clone();
                    move |desk| desk.apply_update(&id, update)
                })
                .await
            {
                Ok((log, _)) => format!(
                    "{} {} ({}): looked up at the broker after a restart: filled",
                    log.decision.action, log.decision.symbol, log.log_id
                ),
                Err(e) if e.is_refusal() => format!("looked up after a restart: {e}"),
                Err(e) => return Err(e),
            };
            found.push(line);
        }
        Ok(found)
    }

    /// After a crash: an `executed` decision with no position is marked `failed` (never
    /// executed silently), and every order whose outcome is not known is looked up. Returns
    /// what it found, for the trader to see.
    pub async fn recover(&self) -> Result<Vec<String>> {
        let mut found = self.blocking(|desk| desk.recover_executed()).await?;
        found.extend(self.resolve_open_orders().await?);
        Ok(found)
    }

    /// The store half of [`Desk::recover`].
    pub fn recover_executed(&self) -> Result<Vec<String>> {
        Ok(self.store.write(|tx| {
            let mut found = Vec::new();
            for (log_id, symbol, action) in tx.executed_without_position()? {
                let reason = "found executed without a position after a restart: marked failed, not executed";
                let msg = format!("{action} {symbol} ({log_id}) {reason}");
                settle(tx, &log_id, Status::Failed, reason, ("error", msg.clone()))?;
                found.push(msg);
            }
            Ok::<_, crate::store::StoreError>(found)
        })?)
    }
}
