//! Exits watched from memory while the store cannot write (a full disk): the prices the loop
//! and the feed bring are checked against the open positions' take-profits and stop-losses
//! as last read; a crossing is held here, announced, and closed at the price that crossed
//! it (on the paper ledger; at a real broker its closing order is stored and sent) by the
//! first write that works again. Reads still work on a full disk, so the positions are
//! fresh; when they do not, the last ones read serve.

use super::{Desk, Result, cycle};
use crate::domain::lifecycle::{self, ExitsHeldBy};
use crate::domain::money::{fmt_price, fmt_qty};
use crate::store::{Position, PricePoint};

/// A crossing the store could not record yet.
#[derive(Debug, Clone)]
pub(super) struct HeldExit {
    position_id: i64,
    symbol: String,
    point: PricePoint,
    line: String,
}

/// The held crossings and the open positions last read.
#[derive(Debug, Default)]
pub(super) struct Held {
    exits: Vec<HeldExit>,
    positions: Vec<Position>,
}

impl Desk {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `write` (a write of `prices`, among other things); while the store cannot write,
    /// first retry the closes held, and when `write` fails for the store's sake, check
    /// `prices` against the exits in memory.
    pub(super) fn watching_exits<T>(
        &self,
        prices: impl FnOnce() -> Vec<(String, PricePoint)>,
        write: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let pending = !self.held().exits.is_empty() || self.store.health().is_failing();
        if pending && let Err(e) = self.close_held() {
            self.hold_crossed(&prices());
            return Err(e);
        }
        let out = write();
        if out.is_err() && self.store.health().is_failing() {
            self.hold_crossed(&prices());
        }
        out
    }

    /// Check `prices` against the open positions whose exits the engine watches, in memory.
    fn hold_crossed(&self, prices: &[(String, PricePoint)]) {
        let read = self.store.open_positions();
        let mut held = self.held();
        if let Ok(p) = read {
            held.positions = p;
        }
        let mut found = Vec::new();
        for (symbol, point) in prices {
            for pos in held.positions.iter().filter(|p| &p.symbol == symbol) {
                let watched = self.broker.is_ledger() || pos.exits_held_by == ExitsHeldBy::Engine;
                if !watched || held.exits.iter().any(|h| h.position_id == pos.id) {
                    continue;
                }
                let at = point.fill_price(pos.side.closing());
                let Some(exit) =
                    lifecycle::exit_reason(pos.side, at, pos.take_profit, pos.stop_loss)
                else {
                    continue;
                };
                let line = format!(
                    "{symbol} {} {} crossed its {} at {} ({}): closed as soon as the store writes again",
                    pos.side,
                    fmt_qty(pos.quantity),
                    exit.as_str().replace('_', "-"),
                    fmt_price(at),
                    crate::store::fmt_ts(point.at_ms)
                );
                tracing::error!("{line}");
                found.push(HeldExit {
                    position_id: pos.id,
                    symbol: symbol.clone(),
                    point: *point,
                    line,
                });
            }
        }
        if !found.is_empty() {
            held.exits.extend(found);
            let lines = held.exits.iter().map(|h| h.line.clone()).collect();
            self.store.health_cell().set_held(lines);
        }
    }

    /// Close the exits held, in one write, at the prices that crossed them; with none held,
    /// a small write that finds out whether the store writes again.
    pub fn close_held(&self) -> Result<Vec<Position>> {
        let held: Vec<HeldExit> = self.held().exits.clone();
        if held.is_empty() {
            let now = crate::store::now_ms().to_string();
            self.store
                .write(|tx| tx.meta_set("store_checked_at", &now))?;
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let closed = self.store.write(|tx| {
            let mut closed = Vec::new();
            for h in &held {
                // Closed meanwhile (by the trader, a flatten): a later position on the symbol
                // is not this one, and the old crossing says nothing about it.
                if tx
                    .open_position(&h.symbol)?
                    .is_none_or(|p| p.id != h.position_id)
                {
                    continue;
                }
                let now = cycle::close_crossed(tx, self, &h.symbol, &h.point, &mut out)?;
                for pos in &now {
                    tx.add_event(
                        "warn",
                        &format!(
                            "{} {} closed at {}: its exit was crossed at {} while the store could not write",
                            pos.symbol,
                            pos.side,
                            pos.exit_price.map(fmt_price).unwrap_or_default(),
                            crate::store::fmt_ts(h.point.at_ms)
                        ),
                    )?;
                }
                closed.extend(now);
            }
            Ok::<_, crate::store::StoreError>(closed)
        })?;
        self.held().exits.clear();
        self.store.health_cell().set_held(Vec::new());
        self.queue(out);
        Ok(closed)
    }
}
