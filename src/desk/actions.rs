//! The trader's actions: cancel, resize, kill, enable and disable, a manual trade, a close.

use super::cycle::{close_at, closing_order, one_price};
use super::execute::{fill_refusal, must_be_pending, settle};
use super::{Desk, DeskError, Result};
use crate::domain::lifecycle::{Origin, Status};
use crate::domain::manual::{self, ManualOrder, MarketContext};
use crate::domain::money::{fmt_price, fmt_qty};
use crate::domain::rules;
use crate::store::{DecisionLog, Position};

impl Desk {
    /// Cancel a pending decision (not one already sent to the broker).
    pub fn cancel(&self, log_id: &str, reason: &str) -> Result<DecisionLog> {
        self.store.write(|tx| {
            let log = tx
                .decision(log_id)?
                .ok_or_else(|| DeskError::UnknownDecision(log_id.to_string()))?;
            must_be_pending(tx, &log, "cancelled")?;
            let (action, symbol) = (log.decision.action, &log.decision.symbol);
            let event = format!("cancelled {action} {symbol} ({log_id})");
            settle(tx, log_id, Status::Cancelled, reason, ("info", event))?;
            tx.decision(log_id)?
                .ok_or_else(|| DeskError::UnknownDecision(log_id.to_string()))
        })
    }

    /// Change the size of a pending decision, within the cap, with its new risk/reward.
    pub fn resize(&self, log_id: &str, size: f64) -> Result<DecisionLog> {
        let risk = self.limits().risk;
        self.store.write(|tx| {
            let log = tx
                .decision(log_id)?
                .ok_or_else(|| DeskError::UnknownDecision(log_id.to_string()))?;
            must_be_pending(tx, &log, "resized")?;
            let resized = manual::resize(&log.decision, size, &risk).map_err(DeskError::Refused)?;
            manual::fat_finger(&resized, &risk, &manual::Overrides::default(), false)
                .map_err(DeskError::Refused)?;
            let rr = resized
                .risk_reward
                .ok_or_else(|| DeskError::Refused(format!("{log_id} has no risk/reward")))?;
            tx.set_size(log_id, size, &rr)?;
            tx.add_event(
                "info",
                &format!(
                    "resized {} {} from {} to {} ({log_id})",
                    log.decision.action,
                    log.decision.symbol,
                    fmt_qty(log.decision.position_size),
                    fmt_qty(size)
                ),
            )?;
            tx.decision(log_id)?
                .ok_or_else(|| DeskError::UnknownDecision(log_id.to_string()))
        })
    }

    /// Turn auto-trading on (also clears the kill switch) or off. Enabling is refused while a
    /// loss halt is in force: [`Desk::reset_halt`] clears it.
    pub fn set_enabled(&self, enabled: bool) -> Result<()> {
        self.store.write(|tx| {
            if enabled {
                Desk::refuse_if_halted(tx)?;
                tx.set_switches(true, Some(false))?;
                tx.add_event("info", "auto-trading enabled")?;
            } else {
                tx.set_switches(false, None)?;
                tx.add_event("info", "auto-trading disabled")?;
            }
            Ok::<_, DeskError>(())
        })
    }

    /// The runtime switches.
    pub fn state(&self) -> Result<crate::store::RuntimeState> {
        Ok(self.store.state()?)
    }

    /// One decision, whatever its status.
    pub fn decision(&self, log_id: &str) -> Result<Option<DecisionLog>> {
        Ok(self.store.decision(log_id)?)
    }

    /// A line for the events pane (and the log).
    pub fn note(&self, level: &str, message: &str) -> Result<()> {
        Ok(self.store.add_event(level, message)?)
    }

    /// The live feed came to `state`: kept for `status`, and an event when it goes down or
    /// comes back.
    pub fn note_feed_state(&self, provider: &str, state: &crate::market::FeedState) -> Result<()> {
        use crate::market::FeedState;
        let (name, why) = match state {
            // A reconnect is not news: the state kept is the last one prices came by.
            FeedState::Connecting => return Ok(()),
            FeedState::Streaming => ("streaming", None),
            FeedState::Polling { why, .. } => ("polling", Some(why.as_str())),
            FeedState::Down { why } => ("down", Some(why.as_str())),
        };
        Ok(self.store.write(|tx| {
            let before = tx.feed_health()?;
            let mut reported = before.as_ref().and_then(|h| h.reported.clone());
            // What a trader needs to hear: down, degraded to polling, or back from down; the
            // same news again only after half an hour (a feed that stays down retries often).
            let said_lately = |kind: &str| {
                reported
                    .as_ref()
                    .is_some_and(|(k, at)| k == kind && tx.now() - at < 30 * 60 * 1000)
            };
            let event = match (reported.as_ref().map(|(k, _)| k.as_str()), name) {
                (Some("down"), "streaming") => {
                    Some(("info", format!("{provider} market data back: streaming")))
                }
                (_, "down") if !said_lately("down") => Some((
                    "error",
                    format!(
                        "{provider} market data down: {}",
                        why.unwrap_or("no answer")
                    ),
                )),
                (Some("down"), _) => None,
                (_, "polling") if !said_lately("polling") => Some((
                    "warn",
                    format!(
                        "{provider} market data polling: {}",
                        why.unwrap_or("no stream")
                    ),
                )),
                _ => None,
            };
            if let Some((level, message)) = event {
                tx.add_event(level, &message)?;
                reported = Some((name.to_string(), tx.now()));
            } else if name == "streaming" {
                reported = None;
            }
            tx.record_feed_state(provider, name, why, reported)?;
            Ok::<_, crate::store::StoreError>(())
        })?)
    }

    /// Kill switch: disable and cancel every pending decision, in one transaction. Returns
    /// the number of decisions cancelled.
    pub fn kill(&self) -> Result<usize> {
        // The kill switch must win against busy cycles, not queue behind them.
        Ok(self.store.write_urgent(|tx| {
            tx.set_switches(false, Some(true))?;
            let n = tx.cancel_all_pending("kill switch")?;
            tx.add_event(
                "warn",
                &format!("KILL SWITCH: auto-trading disabled, {n} pending decision(s) cancelled"),
            )?;
            Ok::<_, crate::store::StoreError>(n)
        })?)
    }

    /// A manual order as `trade` places it (the dashboard's `t` and MCP's `execute_trade`
    /// too): a fresh market context, the manual rules, then the gates, in one transaction;
    /// pending, or executed at once when `execute` is set. A refusal stores nothing actionable
    /// and is recorded as an event.
    /// The fat-finger limits apply ([`manual::fat_finger`]); `allow` lifts them one by one,
    /// never for an agent.
    pub async fn trade(
        &self,
        order: &ManualOrder,
        origin: Origin,
        execute: bool,
        allow: &manual::Overrides,
    ) -> Result<(DecisionLog, Option<Position>)> {
        let market = market_context(self, &order.symbol).await?;
        let limits = self.limits();
        let order = &ManualOrder {
            trail: order
                .trail
                .or_else(|| super::trailing::default_trail(&self.config)),
            ..order.clone()
        };
        let allow = match origin {
            Origin::Agent => manual::Overrides::default(),
            _ => *allow,
        };
        let decision = match manual::checked_decision(order, &market, &limits.risk, origin, &allow)
        {
            Ok(d) => d,
            Err(e) => {
                let event = format!("{} trade refused: {e}", origin.as_str());
                self.blocking(move |desk| Ok(desk.store.add_event("warn", &event)?))
                    .await?;
                return Err(DeskError::Trade(e));
            }
        };
        let placed = self
            .blocking(move |desk| {
                desk.store
                    .write(|tx| {
                        let gates = tx.gates(&decision.symbol, limits.max_open_positions)?;
                        if let Some(g) = gates.blocked_by(&decision.symbol) {
                            let msg =
                                format!("{} {} refused: {g}", decision.action, decision.symbol);
                            tx.add_event("warn", &format!("{} trade {msg}", origin.as_str()))?;
                            return Ok(Err(DeskError::Refused(msg)));
                        }
                        let amd_input =
                            serde_json::json!({ "phase": decision.amd_phase.map(|p| p.as_str()) });
                        let mut log = tx.insert_decision(
                            &decision,
                            Status::Pending,
                            origin,
                            limits.mode,
                            &amd_input,
                        )?;
                        // A cap lifted on purpose stays with the decision, for its fill.
                        if let Some(p) = allow.position_percent
                            && decision.position_size
                                > crate::domain::rules::max_quantity(
                                    &limits.risk,
                                    decision.entry_price.unwrap_or(0.0),
                                )
                        {
                            tx.set_allowed_position_percent(&log.log_id, p)?;
                            log.allowed_position_percent = Some(p);
                        }
                        super::outcomes::follow_new(tx, desk, &log, limits.risk.min_confidence)?;
                        tx.add_event(
                            "info",
                            &format!(
                                "{} {} {} {} proposed ({})",
                                origin.as_str(),
                                decision.action,
                                fmt_qty(decision.position_size),
                                decision.symbol,
                                log.log_id
                            ),
                        )?;
                        if !execute {
                            return Ok(Ok((log, None)));
                        }
                        match desk.prepare_order(tx, &log, &limits)? {
                            Ok(order) => Ok(Ok((log, Some(order)))),
                            Err(e) => Err(fill_refusal(&log.log_id, &e)),
                        }
                    })
                    .and_then(|r| r)
            })
            .await?;
        match placed {
            (log, None) => Ok((log, None)),
            (_, Some(order)) => {
                let (log, pos) = self.send(order).await?;
                Ok((log, Some(pos)))
            }
        }
    }

    /// Close the open position on `symbol` at the latest price, brought up to date first
    /// (it may itself cross the take-profit or stop-loss). With `position_id`, only that
    /// position: the one the trader saw, not one opened since on the same symbol.
    pub async fn close(
        &self,
        symbol: &str,
        position_id: Option<i64>,
        reason: &str,
    ) -> Result<Position> {
        let sym = symbol.to_string();
        let open = self
            .blocking(move |desk| Ok(desk.store.read(|tx| tx.open_position(&sym))?))
            .await?;
        match (open, position_id) {
            (None, None) => {
                return Err(DeskError::Refused(format!("no open position on {symbol}")));
            }
            (None, Some(_)) => {
                return Err(DeskError::Refused(format!(
                    "that {symbol} position is no longer open"
                )));
            }
            (Some(p), Some(id)) if p.id != id => {
                return Err(DeskError::Refused(format!(
                    "that {symbol} position is no longer open"
                )));
            }
            _ => {}
        }
        market_context(self, symbol).await?;
        let (symbol, reason) = (symbol.to_string(), reason.to_string());
        let closed = self
            .blocking(move |desk| {
                desk.store.write(|tx| {
                    let Some(pos) = tx.open_position(&symbol)? else {
                        let why = match tx
                            .closed_positions(1)?
                            .into_iter()
                            .find(|p| p.symbol == symbol)
                        {
                            Some(p) => format!(
                                "{symbol} was just closed by its {} at {}",
                                p.close_reason.unwrap_or_default(),
                                p.exit_price.map(fmt_price).unwrap_or_default()
                            ),
                            None => format!("no open position on {symbol}"),
                        };
                        return Err(DeskError::Refused(why));
                    };
                    let point = tx.price(&symbol)?;
                    if !desk.broker.is_ledger() {
                        // A market order at the broker fills at the market's price: the latest
                        // known one is only its reference.
                        let at = point.map_or(pos.entry_price, |p| p.fill_price(pos.side.closing()));
                        return match closing_order(tx, desk, &pos, at, &reason)? {
                            Some(order) => Ok(Closing::Send(order)),
                            None => Err(DeskError::Refused(format!(
                                "{symbol}: a closing order is already out at the {} broker, or one was refused in the last minute",
                                desk.broker.name()
                            ))),
                        };
                    }
                    let point = point.ok_or_else(|| {
                        DeskError::Refused(format!("no known price for {symbol}: cannot close"))
                    })?;
                    let limits = desk.limits();
                    let age = point.age(tx.now());
                    if desk.config.market_data.provider.is_feed() && !age.within(limits.price_max_age) {
                        return Err(DeskError::Refused(format!(
                            "the latest {symbol} price ({}) is {age}; no close on a stale price",
                            fmt_price(point.price),
                        )));
                    }
                    // Closing a long sells at the bid, closing a short buys at the ask.
                    let at = point.fill_price(pos.side.closing());
                    Ok(Closing::Done(close_at(tx, &pos, at, &reason)?))
                })
            })
            .await?;
        match closed {
            Closing::Done(pos) => Ok(pos),
            Closing::Send(order) => self.send_close(order).await,
        }
    }

    /// The kill switch, then every open position closed: on the paper ledger at its latest
    /// price (a long at the bid, a short at the ask), at a real broker by a closing market order
    /// each. Returns how many pending decisions were cancelled and a line per position.
    pub async fn flatten(&self) -> Result<(usize, Vec<std::result::Result<Position, String>>)> {
        let cancelled = self.blocking(|desk| desk.kill()).await?;
        let open = self
            .blocking(|desk| Ok(desk.store.read(|tx| tx.open_positions())?))
            .await?;
        let n = open.len();
        self.blocking(move |desk| {
            Ok(desk
                .store
                .add_event("warn", &format!("FLATTEN: closing {n} open position(s)"))?)
        })
        .await?;
        let mut closed = Vec::new();
        for pos in open {
            closed.push(
                match self.close(&pos.symbol, Some(pos.id), "flatten").await {
                    Ok(p) => Ok(p),
                    Err(e) if e.is_refusal() => Err(format!("{}: not closed: {e}", pos.symbol)),
                    Err(e) => return Err(e),
                },
            );
        }
        Ok((cancelled, closed))
    }
}

/// The market as it stands for a manual order: a fresh report from the source (its price
/// recorded, which may close a position), with the store's latest price when the source has none.
pub async fn market_context(desk: &Desk, symbol: &str) -> Result<MarketContext> {
    let source = desk.source()?;
    let report = source.fetch(symbol).await;
    let sym = symbol.to_string();
    // With a live feed the source's price (an ML signal's entry) is not the market's: the
    // feed's stored price stands.
    let fresh = report
        .price
        .filter(|_| !desk.config.market_data.provider.is_feed());
    let stored = desk
        .blocking(move |desk| {
            let mut out = Vec::new();
            let stored = desk.store.write(|tx| {
                if let Some(p) = fresh.filter(|p| p.is_finite() && *p > 0.0) {
                    one_price(tx, desk, &sym, p, &mut out)?;
                }
                Ok::<_, crate::store::StoreError>(tx.price(&sym)?.map(|p| p.price))
            })?;
            desk.queue(out);
            Ok(stored)
        })
        .await?;
    desk.send_queued().await;
    Ok(MarketContext {
        price: stored,
        signal: report
            .signal
            .as_ref()
            .ok()
            .and_then(|v| rules::parse_signal(v).ok()),
        raw_signal: report.signal.clone().unwrap_or(serde_json::Value::Null),
        phase: report
            .phase
            .as_ref()
            .ok()
            .and_then(|v| rules::parse_phase(v).ok())
            .map(|a| a.phase),
    })
}

/// A close on the ledger is done in its transaction; at a real broker it is an order to send.
enum Closing {
    Done(Position),
    Send(crate::store::Order),
}
