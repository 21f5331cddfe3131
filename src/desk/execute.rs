//! Execution: a pending decision becomes an order, stored as submitted before the broker is
//! asked; the broker's answer moves the decision to executed (with the broker's fill) or
//! failed (with its reason); an answer that was lost is looked up by client order id, never
//! sent again.

use super::{Desk, DeskError, Limits, Result};
use crate::broker::{Intent, OrderUpdate};
use crate::domain::lifecycle::{
    self, Age, ExitsHeldBy, FillRefusal, OrderKind, OrderStatus, Quote, Status,
};
use crate::domain::money::{fmt_price, fmt_qty};
use crate::domain::trail::Trailing;
use crate::store::{DecisionLog, NewOrder, NewPosition, Order, Position, Tx};
use std::time::Duration;

/// On the paper ledger, an order stored as submitted this long ago with no answer was lost
/// with its sender (a crash between storing and hearing back): it is looked up. At a real
/// broker the grace is twice the request timeout: no sender waits longer for its answer.
pub const SUBMIT_GRACE: Duration = Duration::from_secs(60);

/// What an order's answer did.
#[derive(Debug)]
pub(super) enum Settled {
    /// An opening order filled, in whole or in part so far: its decision and position.
    Opened(Box<DecisionLog>, Position),
    /// A closing order filled: the closed position.
    Closed(Position),
    /// The broker holds the order and has filled none of it yet.
    Working(Order),
}

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
        // A cap the trader lifted on purpose for this decision is its cap.
        let mut risk = limits.risk;
        if let Some(p) = log.allowed_position_percent {
            risk.max_position_percent = risk.max_position_percent.max(p);
        }
        let fill = match lifecycle::check_fill(d, quote, limits.price_max_age, &risk) {
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
            exits_held_by: super::trailing::exits_for(d),
        })
        .map(Ok)
    }

    /// Confirm a pending decision: re-check expiry, the gates and the latest price, store the
    /// order, send it, and record the broker's answer.
    pub async fn confirm(&self, log_id: &str) -> Result<(DecisionLog, Position)> {
        let checked = !self.broker.is_ledger();
        if checked {
            self.precheck(log_id).await?;
        }
        let id = log_id.to_string();
        let order = self.blocking(move |desk| desk.prepare_confirm(&id)).await?;
        self.send_order(order, checked).await
    }

    /// A real broker's rules, asked before a confirm stores anything: a refusal (or a broker
    /// that cannot be asked) leaves the decision pending, to resize, retry or cancel.
    async fn precheck(&self, log_id: &str) -> Result<()> {
        let id = log_id.to_string();
        let found = self
            .blocking(move |desk| {
                Ok(desk.store.read(|tx| {
                    let Some(log) = tx.decision(&id)? else {
                        return Ok(None);
                    };
                    let d = &log.decision;
                    let price = match (tx.price(&d.symbol)?, d.action.side()) {
                        (Some(p), Some(side)) => Some(p.fill_price(side)),
                        _ => d.entry_price,
                    };
                    Ok(d.action.side().zip(price).map(|(side, price)| {
                        (d.symbol.clone(), side, d.position_size, price, log.status)
                    }))
                })?)
            })
            .await?;
        // Not pending or not actionable: the confirm itself says so.
        let Some((symbol, side, quantity, price, Status::Pending)) = found else {
            return Ok(());
        };
        let intent = Intent {
            symbol: &symbol,
            side,
            quantity,
            price,
            closing: false,
        };
        // Each front end reports the refusal (the dashboard in its events pane).
        if let Err(rule) = self.broker.check(&intent).await {
            return Err(DeskError::Refused(format!(
                "{log_id} not sent to {}: {rule}; it stays pending (resize or cancel it)",
                self.broker.name()
            )));
        }
        Ok(())
    }

    fn prepare_confirm(&self, log_id: &str) -> Result<Order> {
        let limits = self.limits();
        self.store
            .write(|tx| {
                let log = tx
                    .decision(log_id)?
                    .ok_or_else(|| DeskError::UnknownDecision(log_id.to_string()))?;
                must_be_pending(tx, &log, "confirmed")?;
                match Age::at(log.created_at_ms, tx.now()) {
                    Age::Ago(age) if age <= limits.pending_expiry => {}
                    Age::Ago(age) => {
                        let reason = format!(
                            "expired: {}s old, pending_expiry is {}s",
                            age.as_secs(),
                            limits.pending_expiry.as_secs()
                        );
                        return Ok(Err(expire_on_confirm(tx, &log, &reason)?));
                    }
                    // Its age is unknown: never trusted to be young enough.
                    age @ Age::Ahead(_) => {
                        tracing::warn!(
                            log_id,
                            created_at_ms = log.created_at_ms,
                            now_ms = tx.now(),
                            "confirm: decision {age}: expired"
                        );
                        let reason = format!("expired: {age}");
                        return Ok(Err(expire_on_confirm(tx, &log, &reason)?));
                    }
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
                    // A price stamped ahead of the clock: the decision waits, and the event
                    // row says why (committed, unlike a plain refusal).
                    Err(
                        e @ FillRefusal::StalePrice {
                            age: Age::Ahead(_), ..
                        },
                    ) => {
                        tracing::warn!(log_id, "confirm refused: {e}");
                        tx.add_event("warn", &format!("{log_id} not confirmed: {e}"))?;
                        Ok(Err(fill_refusal(log_id, &e)))
                    }
                    Err(e) => Err(fill_refusal(log_id, &e)),
                }
            })
            .and_then(|r| r)
    }

    /// Send a stored opening order and record the broker's answer. A real broker's rules are
    /// asked first: an order they refuse is never sent, and its decision fails with the rule.
    /// A market order the broker accepted but has not filled yet is asked after for a few
    /// seconds; one still working after that is followed by every cycle.
    pub(super) async fn send(&self, order: Order) -> Result<(DecisionLog, Position)> {
        self.send_order(order, false).await
    }

    /// [`Desk::send`], with the broker's rules already asked (`checked`) or not.
    async fn send_order(&self, order: Order, checked: bool) -> Result<(DecisionLog, Position)> {
        let id = order.client_order_id.clone();
        let mut update = None;
        if !checked && !self.broker.is_ledger() && order.kind == OrderKind::Open {
            let intent = Intent {
                symbol: &order.symbol,
                side: order.side,
                quantity: order.quantity,
                price: order.reference_price,
                closing: false,
            };
            if let Err(rule) = self.broker.check(&intent).await {
                update = Some(OrderUpdate::Rejected {
                    reason: format!("not sent, the broker's rules refuse it: {rule}"),
                });
            }
        }
        let update = match update {
            Some(u) => u,
            None => self.broker.submit(&order).await,
        };
        match self.settle_update(&id, update).await? {
            Settled::Opened(log, pos) => Ok((*log, pos)),
            Settled::Closed(pos) => Err(DeskError::Refused(format!(
                "{id} closed the {} position instead of opening one",
                pos.symbol
            ))),
            Settled::Working(o) => Err(DeskError::Refused(format!(
                "{id}: {} {} {} sent to the {} broker and accepted, not filled yet; it is followed every cycle",
                o.side,
                fmt_qty(o.quantity),
                o.symbol,
                o.broker
            ))),
        }
    }

    /// Send a stored closing order (no rules asked: a close is always tried) and record the
    /// broker's answer: the closed position.
    pub(super) async fn send_close(&self, order: Order) -> Result<Position> {
        let id = order.client_order_id.clone();
        let update = self.broker.submit(&order).await;
        match self.settle_update(&id, update).await? {
            Settled::Closed(pos) => Ok(pos),
            Settled::Opened(_, pos) => Err(DeskError::Refused(format!(
                "{id} opened a {} position instead of closing one",
                pos.symbol
            ))),
            Settled::Working(o) => Err(DeskError::Refused(format!(
                "{id}: closing {} {} sent to the {} broker and accepted, not filled yet; it is followed every cycle",
                fmt_qty(o.quantity),
                o.symbol,
                o.broker
            ))),
        }
    }

    /// Record an answer; while the broker says an order it accepted is still working with
    /// nothing filled, ask again a few times (a market order normally fills within a second).
    pub(super) async fn settle_update(&self, id: &str, update: OrderUpdate) -> Result<Settled> {
        let mut settled = self.apply(id, update).await?;
        for wait_ms in [200, 400, 800, 1_600] {
            let Settled::Working(_) = settled else { break };
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            let update = self.broker.lookup(id).await;
            if let OrderUpdate::Unknown { .. } = update {
                continue;
            }
            settled = self.apply(id, update).await?;
        }
        Ok(settled)
    }

    async fn apply(&self, id: &str, update: OrderUpdate) -> Result<Settled> {
        let id = id.to_string();
        self.blocking(move |desk| desk.apply_update(&id, update))
            .await
    }

    /// Record what the broker said of an order, once: an order already settled is left as it
    /// is. An opening order's fill opens (or restates) its decision's position with the
    /// broker's quantity and price; a closing order's fill closes the position at its price.
    pub(super) fn apply_update(
        &self,
        client_order_id: &str,
        update: OrderUpdate,
    ) -> Result<Settled> {
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
                let (action, symbol) = (log.decision.action, &log.decision.symbol);
                let fail = |why: &str| -> Result<DeskError> {
                    tx.update_order(id, OrderStatus::Rejected, None, Some(why))?;
                    if order.kind == OrderKind::Close {
                        let event = format!(
                            "closing {symbol} not done: {why} ({id}); the position stays open"
                        );
                        tx.add_event("error", &event)?;
                        return Ok(DeskError::Refused(event));
                    }
                    let event = format!("{action} {symbol} not executed: {why} ({id})");
                    settle(tx, &log.log_id, Status::Failed, why, ("error", event))?;
                    Ok(DeskError::Refused(format!("{id} not executed: {why}")))
                };
                let filled = match update {
                    OrderUpdate::Filled { quantity, price } => (quantity, price, true),
                    OrderUpdate::Working { filled: Some((quantity, price)) } => {
                        (quantity, price, false)
                    }
                    OrderUpdate::Working { filled: None } => {
                        if order.status == OrderStatus::Unknown {
                            tx.update_order(id, OrderStatus::Submitted, None, None)?;
                        }
                        return Ok(Ok(Settled::Working(order)));
                    }
                    OrderUpdate::Rejected { reason } => {
                        let why = if reason.starts_with("not sent") {
                            reason
                        } else {
                            format!("rejected by the {} broker: {reason}", order.broker)
                        };
                        return Ok(Err(fail(&why)?));
                    }
                    OrderUpdate::NotFound => {
                        return Ok(Err(fail(&format!(
                            "the {} broker has no such order: it was never sent",
                            order.broker
                        ))?));
                    }
                    OrderUpdate::Unknown { why } => {
                        tx.update_order(id, OrderStatus::Unknown, None, Some(&why))?;
                        let msg = format!(
                            "{id}: the broker's answer was lost ({why}); it will be looked up, never sent again"
                        );
                        tx.add_event("warn", &msg)?;
                        return Ok(Err(DeskError::Refused(msg)));
                    }
                };
                let (quantity, price, done) = filled;
                if !(quantity.is_finite() && quantity > 0.0 && price.is_finite() && price > 0.0) {
                    tx.update_order(id, OrderStatus::Unknown, None, Some("an unreadable fill"))?;
                    return Err(DeskError::Refused(format!(
                        "{id}: the broker reported a fill of {quantity} at {price}; it will be looked up again"
                    )));
                }
                let status = if done {
                    OrderStatus::Filled
                } else {
                    OrderStatus::PartiallyFilled
                };
                if order.kind == OrderKind::Close {
                    tx.update_order(id, status, Some((quantity, price)), order.reason.as_deref())?;
                    if !done {
                        return Ok(Ok(Settled::Working(order)));
                    }
                    let pos = tx.position_of(&order.decision_id)?.filter(|p| p.closed_at_ms.is_none());
                    let Some(pos) = pos else {
                        tx.add_event(
                            "warn",
                            &format!("{id} filled at {} but its {symbol} position was already closed", fmt_price(price)),
                        )?;
                        return Err(DeskError::Refused(format!("{id}: the {symbol} position was already closed")));
                    };
                    let reason = order.reason.clone().unwrap_or_else(|| "closed".into());
                    let closed = super::cycle::close_at(tx, &pos, price, &reason)?;
                    return Ok(Ok(Settled::Closed(closed)));
                }
                tx.update_order(id, status, Some((quantity, price)), None)?;
                let part = if done {
                    String::new()
                } else {
                    format!(" (part of {}, the rest still working)", fmt_qty(order.quantity))
                };
                let open = tx.position_of(id)?.filter(|p| p.closed_at_ms.is_none());
                let pos = match open {
                    Some(p) if p.quantity == quantity && p.entry_price == price => p,
                    Some(p) => {
                        let p = tx.restate(&p, quantity, price)?;
                        tx.add_event(
                            "info",
                            &format!(
                                "{action} {symbol}: {} filled @ {}{part} ({id})",
                                fmt_qty(quantity),
                                fmt_price(price)
                            ),
                        )?;
                        p
                    }
                    None => {
                        let exits_held_by = order
                            .exits_held_by
                            .unwrap_or_else(|| self.broker.exits_held_by(&order.symbol, order.quantity));
                        // A trailing stop starts from the fill (the engine holds its exits).
                        let trailing = log
                            .decision
                            .trail
                            .filter(|_| exits_held_by == ExitsHeldBy::Engine)
                            .map(|t| Trailing::start(t, order.side, price, order.stop_loss));
                        let pos = tx.open(&NewPosition {
                            decision_id: id,
                            symbol: &order.symbol,
                            side: order.side,
                            quantity,
                            entry_price: price,
                            take_profit: order.take_profit,
                            stop_loss: trailing.map_or(order.stop_loss, |(_, stop)| stop),
                            mode: &log.mode,
                            exits_held_by,
                            trailing: trailing.map(|(t, _)| t),
                        })?;
                        tx.set_executed(id, &format!("filled at {} ({})", fmt_price(price), log.mode))?;
                        let trails = match trailing {
                            Some((t, stop)) => {
                                format!("; stop {} trails {}", fmt_price(stop), t.trail)
                            }
                            None => String::new(),
                        };
                        tx.add_event(
                            "info",
                            &format!(
                                "executed {action} {} {} @ {}{part} ({}, {id}){trails}",
                                fmt_qty(quantity),
                                order.symbol,
                                fmt_price(price),
                                log.mode
                            ),
                        )?;
                        pos
                    }
                };
                let log = tx
                    .decision(id)?
                    .ok_or_else(|| DeskError::UnknownDecision(id.to_string()))?;
                Ok(Ok(Settled::Opened(Box::new(log), pos)))
            })
            .and_then(|r| r)
    }

    /// Look up every order whose outcome is not known (an `unknown` answer, one partly
    /// filled, or one `submitted` longer than the grace ago (see [`SUBMIT_GRACE`]): younger ones may still be
    /// on their way) and record what the broker says. Returns a line for each that changed,
    /// for the trader to see.
    pub async fn resolve_open_orders(&self) -> Result<Vec<String>> {
        let grace = if self.broker.is_ledger() {
            SUBMIT_GRACE
        } else {
            self.config.broker.timeout() * 2
        }
        .as_millis() as i64;
        let open = self
            .blocking(move |desk| {
                Ok(desk.store.read(|tx| {
                    let now = tx.now();
                    Ok(tx
                        .open_orders()?
                        .into_iter()
                        .filter(|o| {
                            o.status != OrderStatus::Submitted || now - o.updated_at_ms > grace
                        })
                        .collect::<Vec<_>>())
                })?)
            })
            .await?;
        let mut found = Vec::new();
        for order in open {
            let update = self.broker.lookup(&order.client_order_id).await;
            if let OrderUpdate::Unknown { .. } = update {
                // Still not known (the broker is down): asked again next time, quietly.
                continue;
            }
            let what = format!("{} {} {}", order.side, order.symbol, order.client_order_id);
            let line = match self.apply(&order.client_order_id, update).await {
                Ok(Settled::Opened(_, pos)) => format!(
                    "{what}: looked up at the {} broker: {} filled @ {}",
                    order.broker,
                    fmt_qty(pos.quantity),
                    fmt_price(pos.entry_price)
                ),
                Ok(Settled::Closed(pos)) => format!(
                    "{what}: looked up at the {} broker: closed @ {}",
                    order.broker,
                    pos.exit_price.map(fmt_price).unwrap_or_default()
                ),
                Ok(Settled::Working(_)) => continue,
                Err(e) if e.is_refusal() => format!("{what}: looked up: {e}"),
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
        found.extend(self.reconcile().await?);
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
