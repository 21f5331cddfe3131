//! Reconciliation with a real broker, at start and on every cycle: the broker's account,
//! positions and orders are the truth. Orders whose outcome the store does not know are
//! looked up; a position the broker no longer holds is closed (at its protective order's fill
//! when the broker held the exits); a quantity or price that differs takes the broker's; a
//! position the broker holds that this program did not open is shown as external and never
//! touched. Every difference is an event.

use super::cycle::close_at;
use super::{Desk, Result};
use crate::broker::{BrokerExit, BrokerView, ExitsHeldBy, Holding};
use crate::domain::money::{fmt_price, fmt_qty};
use crate::store::Tx;
use std::collections::BTreeMap;

/// Two figures the same to this relative tolerance are the same (the broker rounds).
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

impl Desk {
    /// Bring the store in line with the broker. Returns a line for each thing it changed or
    /// found, for the trader to see (the events pane has them too). A ledger has only its
    /// orders whose outcome is not known to settle.
    pub async fn reconcile(&self) -> Result<Vec<String>> {
        let mut lines = self.resolve_open_orders().await?;
        if self.broker.is_ledger() {
            return Ok(lines);
        }
        // A position opened after this moment may be missing from the answer: it is judged next time.
        let asked_at_ms = crate::store::now_ms();
        let (account, holdings) =
            futures::future::join(self.broker.account(), self.broker.holdings()).await;
        let (account, holdings) = match (account, holdings) {
            (Ok(a), Ok(h)) => (a, h.unwrap_or_default()),
            (Err(e), _) | (_, Err(e)) => {
                let why = e.to_string();
                let line = self
                    .blocking(move |desk| Ok(desk.store.write(|tx| broker_down(tx, desk, &why))?))
                    .await?;
                lines.extend(line);
                return Ok(lines);
            }
        };
        // Positions whose exits the broker held and that it no longer holds: ask what closed them.
        let held: Vec<String> = holdings.iter().map(|h| h.symbol.clone()).collect();
        let gone = self
            .blocking(move |desk| {
                Ok(desk.store.read(|tx| {
                    Ok(tx
                        .open_positions()?
                        .into_iter()
                        .filter(|p| {
                            p.exits_held_by == ExitsHeldBy::Broker && !held.contains(&p.symbol)
                        })
                        .map(|p| p.decision_id)
                        .collect::<Vec<_>>())
                })?)
            })
            .await?;
        let mut exits = BTreeMap::new();
        for id in gone {
            if let Ok(Some(exit)) = self.broker.exit_fill(&id).await {
                exits.insert(id, exit);
            }
        }
        let found = self
            .blocking(move |desk| {
                Ok(desk
                    .store
                    .write(|tx| apply_book(tx, desk, account, &holdings, &exits, asked_at_ms))?)
            })
            .await?;
        lines.extend(found);
        Ok(lines)
    }
}

/// The broker did not answer: keep the last account, note the outage once.
fn broker_down(tx: &Tx<'_>, desk: &Desk, why: &str) -> crate::store::Result<Option<String>> {
    let prev = tx.broker_view()?;
    let was_down = prev.as_ref().is_some_and(|v| v.error.is_some());
    let view = BrokerView {
        broker: desk.broker.name().to_string(),
        at_ms: tx.now(),
        account: prev.as_ref().and_then(|v| v.account.clone()),
        external: prev
            .as_ref()
            .map(|v| v.external.clone())
            .unwrap_or_default(),
        error: Some(why.to_string()),
        error_since_ms: prev
            .as_ref()
            .and_then(|v| v.error_since_ms)
            .filter(|_| was_down)
            .or(Some(tx.now())),
    };
    tx.set_broker_view(&view)?;
    if was_down {
        return Ok(None);
    }
    let line = format!(
        "the {} broker did not answer the reconciliation: {why}; its account and positions are as last seen",
        desk.broker.name()
    );
    tx.add_event("error", &line)?;
    Ok(Some(line))
}

/// Compare the broker's book with the store's open positions, in one transaction.
fn apply_book(
    tx: &Tx<'_>,
    desk: &Desk,
    account: Option<crate::broker::Account>,
    holdings: &[Holding],
    exits: &BTreeMap<String, BrokerExit>,
    asked_at_ms: i64,
) -> crate::store::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut closed_by_broker = Vec::new();
    let mut note = |tx: &Tx<'_>, level: &str, line: String| -> crate::store::Result<()> {
        tx.add_event(level, &line)?;
        lines.push(line);
        Ok(())
    };
    let prev = tx.broker_view()?;
    if prev.as_ref().is_some_and(|v| v.error.is_some()) {
        note(
            tx,
            "info",
            format!("the {} broker answers again", desk.broker.name()),
        )?;
    }
    let broker = desk.broker.name();
    let busy: Vec<String> = tx.open_orders()?.into_iter().map(|o| o.symbol).collect();
    let open = tx.open_positions()?;
    for pos in &open {
        // An order on its way may change this position, and one opened since the broker was
        // asked may not be in its answer: judge them next time.
        if busy.contains(&pos.symbol) || pos.opened_at_ms >= asked_at_ms {
            continue;
        }
        let sym = &pos.symbol;
        match holdings.iter().find(|h| &h.symbol == sym) {
            Some(h) if h.side == pos.side => {
                if !same(h.quantity, pos.quantity) || !same(h.avg_entry_price, pos.entry_price) {
                    tx.restate(pos, h.quantity, h.avg_entry_price)?;
                    note(
                        tx,
                        "warn",
                        format!(
                            "{sym}: the {broker} broker holds {} {} @ {}, the store had {} @ {}; the position now says what the broker holds",
                            h.side,
                            fmt_qty(h.quantity),
                            fmt_price(h.avg_entry_price),
                            fmt_qty(pos.quantity),
                            fmt_price(pos.entry_price)
                        ),
                    )?;
                }
            }
            Some(h) => {
                note(
                    tx,
                    "error",
                    format!(
                        "{sym}: the {broker} broker holds {} {}, the store a {} position; left as it is, check it at the broker",
                        h.side,
                        fmt_qty(h.quantity),
                        pos.side
                    ),
                )?;
            }
            None => match exits.get(&pos.decision_id) {
                Some(exit) => {
                    // close_at writes the event.
                    close_at(tx, pos, exit.price, exit.reason)?;
                    closed_by_broker.push(format!(
                        "{sym}: the {broker} broker's {} filled @ {}",
                        exit.reason,
                        fmt_price(exit.price)
                    ));
                }
                None => {
                    let last = tx.price(sym)?.map(|p| p.price).unwrap_or(pos.entry_price);
                    close_at(tx, pos, last, "closed at the broker")?;
                    note(
                        tx,
                        "warn",
                        format!(
                            "{sym}: the {broker} broker no longer holds this position (closed outside this program); marked closed at the latest price {}",
                            fmt_price(last)
                        ),
                    )?;
                }
            },
        }
    }
    // Ours: open now, or closed since the broker was asked (its answer may predate the close).
    let recently_closed: Vec<String> = tx
        .closed_positions(50)?
        .into_iter()
        .filter(|p| p.closed_at_ms.is_some_and(|at| at >= asked_at_ms))
        .map(|p| p.symbol)
        .collect();
    let ours: Vec<&str> = open
        .iter()
        .map(|p| p.symbol.as_str())
        .chain(recently_closed.iter().map(String::as_str))
        .collect();
    let external: Vec<Holding> = holdings
        .iter()
        .filter(|h| !ours.contains(&h.symbol.as_str()) && !busy.contains(&h.symbol))
        .cloned()
        .collect();
    let known: Vec<String> = prev
        .as_ref()
        .map(|v| v.external.iter().map(|h| h.symbol.clone()).collect())
        .unwrap_or_default();
    for h in external.iter().filter(|h| !known.contains(&h.symbol)) {
        note(
            tx,
            "warn",
            format!(
                "{}: the {broker} broker holds {} {} @ {} that this program did not open; shown as external, never touched",
                h.symbol,
                h.side,
                fmt_qty(h.quantity),
                fmt_price(h.avg_entry_price)
            ),
        )?;
    }
    tx.set_broker_view(&BrokerView {
        broker: broker.to_string(),
        at_ms: tx.now(),
        account,
        external,
        error: None,
        error_since_ms: None,
    })?;
    lines.extend(closed_by_broker);
    Ok(lines)
}
