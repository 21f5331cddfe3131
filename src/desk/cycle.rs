//! Proposals: a monitoring cycle's decisions, an agent's, and the prices between checks.

use super::{Desk, Limits, Result, guard, outcomes};
use crate::domain::lifecycle::{self, Age, CLOCK_SKEW_ALLOWED, ExitsHeldBy, Origin, Status};
use crate::domain::money::{fmt_price, fmt_qty, round_dp};
use crate::domain::rules;
use crate::store::{DecisionLog, Order, Position, PricePoint, Tx};
use serde_json::Value;
use std::time::Duration;

/// What a cycle wants stored for one symbol.
pub struct CycleInput<'a> {
    pub symbol: &'a str,
    pub signal: &'a std::result::Result<Value, String>,
    pub phase: &'a std::result::Result<Value, String>,
    /// The latest market price the source reported, if any.
    pub price: Option<f64>,
}

/// What happened to one symbol in one cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleOutcome {
    pub log: DecisionLog,
    pub closed: Vec<Position>,
    pub executed: Option<Position>,
    /// Why the source could not give this symbol its signal or AMD phase, when it could not.
    pub source_error: Option<String>,
}

/// Expire pending decisions older than `expiry`, or stamped ahead of the clock (not those
/// already sent to a broker).
pub(super) fn expire_stale(tx: &Tx<'_>, expiry: Duration) -> crate::store::Result<usize> {
    let cutoff = tx.now() - expiry.as_millis().min(i64::MAX as u128) as i64;
    // A decision stamped ahead of the clock has an unknown age: it expires too, rather than
    // waiting for the clock to catch up with it.
    let ahead_of = tx
        .now()
        .saturating_add(CLOCK_SKEW_ALLOWED.as_millis() as i64);
    let stale = tx.pending_expired(cutoff, ahead_of)?;
    for s in &stale {
        let (level, reason, why) = match Age::at(s.created_at_ms, tx.now()) {
            age @ Age::Ahead(_) => {
                tracing::warn!(
                    log_id = %s.log_id,
                    created_at_ms = s.created_at_ms,
                    now_ms = tx.now(),
                    "pending decision {} {} {age}: expired",
                    s.action,
                    s.symbol,
                );
                ("warn", format!("expired: {age}"), format!(": {age}"))
            }
            Age::Ago(_) => (
                "info",
                format!("expired: pending longer than {}s", expiry.as_secs()),
                String::new(),
            ),
        };
        tx.set_status(&s.log_id, Status::Expired, &reason)?;
        tx.add_event(
            level,
            &format!(
                "{} {} expired unconfirmed ({}){why}",
                s.action, s.symbol, s.log_id
            ),
        )?;
    }
    Ok(stale.len())
}

/// Record prices (finite and positive ones) and close the positions they cross (see
/// [`close_crossed`]).
fn price_ticks(
    tx: &Tx<'_>,
    desk: &Desk,
    prices: &[(String, f64)],
    out: &mut Vec<Order>,
) -> crate::store::Result<Vec<Position>> {
    let mut closed = Vec::new();
    let mut followers = outcomes::Followers::load(tx, desk)?;
    for (symbol, price) in prices {
        if price.is_finite() && *price > 0.0 {
            closed.extend(price_tick(tx, desk, &mut followers, symbol, *price, out)?);
        }
    }
    prices_recorded(tx, desk, followers)?;
    Ok(closed)
}

/// Record a price and close the open position on `symbol` if it crosses its TP or SL.
pub(super) fn price_tick(
    tx: &Tx<'_>,
    desk: &Desk,
    followers: &mut outcomes::Followers,
    symbol: &str,
    price: f64,
    out: &mut Vec<Order>,
) -> crate::store::Result<Vec<Position>> {
    tx.set_price(symbol, price)?;
    let point = PricePoint {
        price,
        at_ms: tx.now(),
        bid: None,
        ask: None,
    };
    followers.price(tx, symbol, &point)?;
    close_crossed(tx, desk, symbol, &point, out)
}

/// The end of a write that recorded prices: the followed decisions' last prices kept, then
/// the equity measured against the loss limits (both once per write, not per price).
fn prices_recorded(
    tx: &Tx<'_>,
    desk: &Desk,
    followers: outcomes::Followers,
) -> crate::store::Result<()> {
    followers.finish(tx)?;
    guard::watch_losses(tx, desk)
}

/// [`price_tick`] for one price alone.
pub(super) fn one_price(
    tx: &Tx<'_>,
    desk: &Desk,
    symbol: &str,
    price: f64,
    out: &mut Vec<Order>,
) -> crate::store::Result<Vec<Position>> {
    let mut followers = outcomes::Followers::load(tx, desk)?;
    let closed = price_tick(tx, desk, &mut followers, symbol, price, out)?;
    prices_recorded(tx, desk, followers)?;
    Ok(closed)
}

/// A closing order refused this recently is not sent again for the same crossing: the next
/// price after it may try again.
const CLOSE_RETRY_MS: i64 = 60_000;

/// Close the open position on `symbol` if `point` crosses its TP or SL, judged at what closing
/// would get: a long sells at the bid, a short buys at the ask (the price without a quote).
/// On the paper ledger it closes at once (the position is returned). With a real broker a
/// closing order is stored and put in `out`, for the caller to send once the transaction has
/// committed; a position whose exits the broker holds is left to the broker.
pub(super) fn close_crossed(
    tx: &Tx<'_>,
    desk: &Desk,
    symbol: &str,
    point: &PricePoint,
    out: &mut Vec<Order>,
) -> crate::store::Result<Vec<Position>> {
    let mut closed = Vec::new();
    let Some(pos) = tx.open_position(symbol)? else {
        return Ok(closed);
    };
    let at = point.fill_price(pos.side.closing());
    // The exit at the stop as it stood; else a trailing stop moves with the price.
    let Some((exit, fill)) = super::trailing::step(tx, desk, &pos, at)? else {
        return Ok(closed);
    };
    if desk.broker.is_ledger() {
        closed.push(close_at(tx, &pos, fill, exit.as_str())?);
    } else if pos.exits_held_by == ExitsHeldBy::Engine
        && let Some(order) = closing_order(tx, desk, &pos, fill, exit.as_str())?
    {
        tx.add_event(
            "info",
            &format!(
                "{symbol} at {} crossed the {} of {} {}: closing order sent to the {} broker ({})",
                fmt_price(at),
                exit.as_str().replace('_', "-"),
                pos.side,
                fmt_qty(pos.quantity),
                desk.broker.name(),
                order.client_order_id
            ),
        )?;
        out.push(order);
    }
    Ok(closed)
}

/// Store the order that closes `pos` at a real broker, unless one is already out or one was
/// refused within [`CLOSE_RETRY_MS`]. Its client order id is the decision's log id with
/// `-close-N`, so every closing order is unique and can be looked up.
pub(super) fn closing_order(
    tx: &Tx<'_>,
    desk: &Desk,
    pos: &Position,
    reference_price: f64,
    reason: &str,
) -> crate::store::Result<Option<Order>> {
    let prior = tx.closing_orders(&pos.decision_id)?;
    if prior.iter().any(|o| o.status.is_open()) {
        return Ok(None);
    }
    if prior.last().is_some_and(|o| {
        o.status == crate::domain::lifecycle::OrderStatus::Rejected
            && tx.now() - o.updated_at_ms < CLOSE_RETRY_MS
    }) {
        return Ok(None);
    }
    let client_order_id = format!("{}-close-{}", pos.decision_id, prior.len() + 1);
    tx.insert_order(&crate::store::NewOrder {
        client_order_id: &client_order_id,
        kind: crate::domain::lifecycle::OrderKind::Close,
        reason: Some(reason),
        decision_id: &pos.decision_id,
        broker: desk.broker.name(),
        symbol: &pos.symbol,
        side: pos.side.closing(),
        quantity: pos.quantity,
        reference_price,
        take_profit: pos.take_profit,
        stop_loss: pos.stop_loss,
        exits_held_by: None,
    })
    .map(Some)
}

/// Close `pos` on the paper ledger at `price`, with its P&L and an event.
pub(super) fn close_at(
    tx: &Tx<'_>,
    pos: &Position,
    price: f64,
    reason: &str,
) -> crate::store::Result<Position> {
    let pnl = round_dp(
        lifecycle::pnl(pos.side, pos.quantity, pos.entry_price, price),
        2,
    );
    let closed = tx.close(pos, price, pnl, reason)?;
    tx.add_event(
        if pnl < 0.0 { "warn" } else { "info" },
        &format!(
            "closed {} {} {} @ {} ({reason}), P&L {}",
            pos.side,
            fmt_qty(pos.quantity),
            pos.symbol,
            fmt_price(price),
            crate::domain::money::fmt_signed(pnl)
        ),
    )?;
    Ok(closed)
}

/// The event row written when the source's recorded health turns to failing (the first
/// check ever included), followed by the reason; the alerts know an outage by it.
pub const SOURCE_DOWN_EVENT: &str = "ML engine unreachable";
/// The event row written when it answers again.
pub const SOURCE_BACK_EVENT: &str = "ML engine reachable again";

/// Whether the source answered this cycle: it failed when no symbol got its signal and AMD
/// phase (the error kept is the first symbol's). A cycle with no symbols checks nothing.
/// A change of the answer writes an event row in the same transaction: once per outage and
/// once per recovery, whichever process checked, across restarts.
fn record_source_check(tx: &Tx<'_>, inputs: &[OwnedCycleInput]) -> crate::store::Result<()> {
    let Some(first) = inputs.first() else {
        return Ok(());
    };
    let all_failed = inputs.iter().all(|i| i.borrow().source_error().is_some());
    let error = all_failed.then(|| {
        let why = first.borrow().source_error().unwrap_or_default();
        format!("{}: {why}", first.symbol)
    });
    let before = tx.source_health()?.map(|h| h.reachable);
    let now = tx.record_source_check(error.as_deref())?;
    match (before, now.reachable, &error) {
        (None | Some(true), false, Some(why)) => {
            tx.add_event("error", &format!("{SOURCE_DOWN_EVENT}: {why}"))?
        }
        (Some(false), true, _) => tx.add_event("info", SOURCE_BACK_EVENT)?,
        _ => {}
    }
    Ok(())
}

/// With a live feed and a fresh quote, what an actionable decision would fill at now (the
/// ask for a buy, the bid for a sell), when that differs from its entry.
fn live_fill_price(
    tx: &Tx<'_>,
    desk: &Desk,
    decision: &crate::domain::rules::Decision,
) -> crate::store::Result<Option<f64>> {
    let md = &desk.config.market_data;
    let Some(side) = decision.action.side() else {
        return Ok(None);
    };
    if !md.provider.is_feed() {
        return Ok(None);
    }
    let Some(p) = tx.price(&decision.symbol)? else {
        return Ok(None);
    };
    let fresh = p.age(tx.now()).within(md.stale_after());
    let fill = p.fill_price(side);
    Ok((fresh && Some(fill) != decision.entry_price).then_some(fill))
}

/// One symbol of a cycle: record the price, close positions it crosses, read the gates,
/// decide, store; with `auto_execute`, an actionable decision's order is stored too.
fn cycle_symbol(
    tx: &Tx<'_>,
    desk: &Desk,
    input: &CycleInput<'_>,
    limits: &Limits,
    origin: Origin,
    scoring: &mut outcomes::CycleScoring,
    out: &mut Vec<Order>,
) -> Result<(CycleOutcome, Option<Order>)> {
    let mut closed = Vec::new();
    // With a live feed the check's price (an ML signal's entry) is only the decision's
    // reference: the feed's prices are the market's.
    if let Some(p) = input.price.filter(|p| p.is_finite() && *p > 0.0)
        && !desk.config.market_data.provider.is_feed()
    {
        closed = price_tick(tx, desk, &mut scoring.followers, input.symbol, p, out)?;
    }
    let gates = tx.gates(input.symbol, limits.max_open_positions)?;
    let decide = |signal: &std::result::Result<Value, String>| {
        rules::decide_calibrated(
            &rules::DecisionInput {
                symbol: input.symbol,
                signal,
                phase: input.phase,
                risk: &limits.risk,
                gates: &gates,
            },
            scoring.calibration.as_ref(),
        )
    };
    let mut decision = decide(input.signal);
    if let Some(live) = live_fill_price(tx, desk, &decision)?
        && let Ok(signal) = input.signal
        && let Some(fields) = signal.as_object()
    {
        // Sized on what it would fill at now, so the spread never pushes the fill over the
        // cap or the risk limit; the ML signal stays as the engine gave it (the reference).
        let mut at_market = fields.clone();
        at_market.insert("entry_price".into(), serde_json::json!(live));
        let at_market = Value::Object(at_market);
        let ml_entry = decision.entry_price;
        decision = decide(&Ok(at_market));
        decision.ml_signal = signal.clone();
        if decision.action.is_actionable()
            && let Some(e) = ml_entry
        {
            decision.reasoning = format!(
                "{}; sized at the live {} {} (ML entry {})",
                decision.reasoning,
                if decision.action == crate::domain::Verdict::Buy {
                    "ask"
                } else {
                    "bid"
                },
                fmt_price(live),
                fmt_price(e)
            );
        }
    }
    super::trailing::give_default(&mut decision, &desk.config);
    let status = if decision.action.is_actionable() {
        Status::Pending
    } else {
        Status::Hold
    };
    let amd_input = match input.phase {
        Ok(v) => v.clone(),
        Err(e) => serde_json::json!({ "error": e }),
    };
    let log = tx.insert_decision(&decision, status, origin, limits.mode, &amd_input)?;
    outcomes::follow_new(tx, desk, &log, limits.risk.min_confidence)?;
    let mut order = None;
    if status == Status::Pending {
        if origin == Origin::Agent {
            tx.add_event(
                "info",
                &format!(
                    "agent {} {} {} proposed ({})",
                    decision.action,
                    fmt_qty(decision.position_size),
                    decision.symbol,
                    log.log_id
                ),
            )?;
        } else if !limits.require_confirmation {
            match desk.prepare_order(tx, &log, limits)? {
                Ok(o) => order = Some(o),
                Err(why) => tx.add_event(
                    "warn",
                    &format!("{} not executed automatically: {why}", log.log_id),
                )?,
            }
        }
    }
    let log = tx.decision(&log.log_id)?.unwrap_or(log);
    Ok((
        CycleOutcome {
            log,
            closed,
            executed: None,
            source_error: input.source_error().map(str::to_string),
        },
        order,
    ))
}

impl Desk {
    /// A whole cycle in one transaction (one disk sync instead of one per symbol): expire
    /// stale decisions, then decide the symbols in order, so earlier ones count against the
    /// gates of later ones. Decisions that need no confirmation are then sent to the broker.
    pub async fn record_cycle(&self, inputs: Vec<OwnedCycleInput>) -> Result<Vec<CycleOutcome>> {
        let (mut outcomes, orders) = self
            .blocking(move |desk| {
                let prices = || {
                    inputs
                        .iter()
                        .filter_map(|i| i.price.map(|p| (i.symbol.clone(), now_point(p))))
                        .collect()
                };
                desk.watching_exits(prices, || desk.record_cycle_now(&inputs))
            })
            .await?;
        self.send_queued().await;
        for (outcome, order) in outcomes.iter_mut().zip(orders) {
            let Some(order) = order else { continue };
            match self.send(order).await {
                Ok((log, pos)) => {
                    outcome.log = log;
                    outcome.executed = Some(pos);
                }
                Err(e) if e.is_refusal() => {
                    if let Ok(Some(log)) = self.store.decision(&outcome.log.log_id) {
                        outcome.log = log;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(outcomes)
    }

    /// [`Desk::record_cycle`]'s one transaction, and the orders it stored queued.
    #[allow(clippy::type_complexity)]
    fn record_cycle_now(
        &self,
        inputs: &[OwnedCycleInput],
    ) -> Result<(Vec<CycleOutcome>, Vec<Option<Order>>)> {
        let desk = self;
        let limits = desk.limits();
        let mut out = Vec::new();
        let done = desk.store.write(|tx| {
            expire_stale(tx, limits.pending_expiry)?;
            record_source_check(tx, inputs)?;
            outcomes::settle_due(tx, desk)?;
            // Read once for the cycle: a decision stored in it is followed from the
            // next price on, and this cycle recorded its symbol's price before it.
            let mut scoring = outcomes::CycleScoring::load(tx, desk)?;
            let done = inputs
                .iter()
                .map(|i| {
                    cycle_symbol(
                        tx,
                        desk,
                        &i.borrow(),
                        &limits,
                        Origin::Auto,
                        &mut scoring,
                        &mut out,
                    )
                })
                .collect::<Result<Vec<_>>>()
                .map(|v| v.into_iter().unzip::<_, _, Vec<_>, Vec<_>>())?;
            prices_recorded(tx, desk, scoring.followers)?;
            Ok::<_, super::DeskError>(done)
        })?;
        desk.queue(out);
        Ok(done)
    }

    /// A decision an agent asked for (MCP `auto_trade_decision`): the cycle's rules and gates
    /// in one transaction, stored with origin agent. An actionable decision always stays
    /// pending, whatever `require_confirmation` says: agents propose, people confirm.
    pub fn record_agent_decision(&self, input: &CycleInput<'_>) -> Result<CycleOutcome> {
        let limits = Limits {
            require_confirmation: true,
            ..self.limits()
        };
        let mut out = Vec::new();
        let outcome = self.store.write(|tx| {
            expire_stale(tx, limits.pending_expiry)?;
            let mut scoring = outcomes::CycleScoring::load(tx, self)?;
            let (outcome, _) = cycle_symbol(
                tx,
                self,
                input,
                &limits,
                Origin::Agent,
                &mut scoring,
                &mut out,
            )?;
            prices_recorded(tx, self, scoring.followers)?;
            Ok::<_, super::DeskError>(outcome)
        })?;
        self.queue(out);
        Ok(outcome)
    }

    /// Record a live feed's ticks in one transaction and close the positions they cross;
    /// returns the positions closed. A long position exits at the bid, a short one at the
    /// ask (the last trade without a quote). A tick older than the price already stored is
    /// dropped; one older than `stale_after_seconds` is stored but closes nothing.
    pub fn record_ticks(&self, ticks: &[crate::market::Tick]) -> Result<Vec<Position>> {
        let prices = || {
            let now = crate::store::now_ms();
            ticks
                .iter()
                .filter_map(|t| {
                    let price = t.mark().filter(|p| p.is_finite() && *p > 0.0)?;
                    let valid = |x: Option<f64>| x.filter(|v| v.is_finite() && *v > 0.0);
                    Some((
                        t.symbol.clone(),
                        PricePoint {
                            price,
                            at_ms: t.at_ms.min(now),
                            bid: valid(t.bid),
                            ask: valid(t.ask),
                        },
                    ))
                })
                .collect()
        };
        self.watching_exits(prices, || self.record_ticks_now(ticks))
    }

    fn record_ticks_now(&self, ticks: &[crate::market::Tick]) -> Result<Vec<Position>> {
        let stale_after = self.config.market_data.stale_after();
        let mut out = Vec::new();
        let closed = self.store.write(|tx| {
            let mut closed = Vec::new();
            let mut followers = outcomes::Followers::load(tx, self)?;
            for t in ticks {
                let Some(price) = t.mark().filter(|p| p.is_finite() && *p > 0.0) else {
                    continue;
                };
                let valid = |x: Option<f64>| x.filter(|v| v.is_finite() && *v > 0.0);
                let at_ms = t.at_ms.min(tx.now());
                let old = tx.price(&t.symbol)?;
                // A stored price stamped ahead of the clock is not newer than this one: it
                // would otherwise hold every tick off until the clock caught up with it.
                let old_ahead = old.and_then(|o| o.age(tx.now()).ahead());
                if let Some(ahead) = old_ahead {
                    tracing::warn!(
                        "{}: the stored price was stamped {}s ahead of this clock; replaced by the feed's",
                        t.symbol,
                        ahead.as_secs()
                    );
                    tx.add_event(
                        "warn",
                        &format!(
                            "{}: the stored price was stamped {}s ahead of this clock (a clock was wrong); replaced by the feed's",
                            t.symbol,
                            ahead.as_secs()
                        ),
                    )?;
                } else if old.is_some_and(|o| o.at_ms > at_ms) {
                    continue;
                }
                // A trade carries no quote: the last quote stands while it is fresh.
                let quote = old.filter(|o| o.age(tx.now()).within(stale_after));
                let point = PricePoint {
                    price,
                    at_ms,
                    bid: valid(t.bid).or(quote.and_then(|o| o.bid)),
                    ask: valid(t.ask).or(quote.and_then(|o| o.ask)),
                };
                tx.set_quote(&t.symbol, &point)?;
                followers.price(tx, &t.symbol, &point)?;
                if point.age(tx.now()).within(stale_after) {
                    closed.extend(close_crossed(tx, self, &t.symbol, &point, &mut out)?);
                }
            }
            prices_recorded(tx, self, followers)?;
            Ok::<_, crate::store::StoreError>(closed)
        })?;
        self.queue(out);
        Ok(closed)
    }

    /// Record prices between checks in one transaction; returns the positions they closed.
    pub fn record_prices(&self, prices: &[(String, f64)]) -> Result<Vec<Position>> {
        self.watching_exits(
            || now_points(prices),
            || {
                let mut out = Vec::new();
                let closed = self
                    .store
                    .write(|tx| price_ticks(tx, self, prices, &mut out))?;
                self.queue(out);
                Ok(closed)
            },
        )
    }

    /// Expire pending decisions older than the configured expiry; returns how many.
    pub fn expire_stale(&self) -> Result<usize> {
        let expiry = self.config.pending_expiry();
        Ok(self.store.write(|tx| expire_stale(tx, expiry))?)
    }

    /// Expire what is due (when `expire`), record `prices`, and say when the next pending
    /// decision expires (wall clock, ms), all in one transaction. Between checks the loop
    /// calls this only when something is due, so an idle store is not written every second.
    pub fn between_checks(&self, expire: bool, prices: &[(String, f64)]) -> Result<Option<i64>> {
        let expiry = self.config.pending_expiry();
        let expiry_ms = expiry.as_millis().min(i64::MAX as u128) as i64;
        let next = |tx: &Tx<'_>| -> crate::store::Result<Option<i64>> {
            Ok(tx
                .oldest_pending_at(
                    tx.now()
                        .saturating_add(CLOCK_SKEW_ALLOWED.as_millis() as i64),
                )?
                .map(|at| at.saturating_add(expiry_ms)))
        };
        self.watching_exits(
            || now_points(prices),
            || {
                if !expire && prices.is_empty() {
                    return Ok(self.store.read(next)?);
                }
                let mut out = Vec::new();
                let next = self.store.write(|tx| {
                    if expire {
                        expire_stale(tx, expiry)?;
                    }
                    price_ticks(tx, self, prices, &mut out)?;
                    next(tx)
                })?;
                self.queue(out);
                Ok(next)
            },
        )
    }

    /// When the loop last ran a cycle.
    pub fn set_last_cycle(&self, at_ms: i64) -> Result<()> {
        Ok(self.store.write(|tx| tx.set_last_cycle(at_ms))?)
    }
}

/// A price heard now, with no quote.
fn now_point(price: f64) -> PricePoint {
    PricePoint {
        price,
        at_ms: crate::store::now_ms(),
        bid: None,
        ask: None,
    }
}

fn now_points(prices: &[(String, f64)]) -> Vec<(String, PricePoint)> {
    prices
        .iter()
        .filter(|(_, p)| p.is_finite() && *p > 0.0)
        .map(|(s, p)| (s.clone(), now_point(*p)))
        .collect()
}

/// A [`CycleInput`] that owns its data, to cross onto a blocking thread.
pub struct OwnedCycleInput {
    pub symbol: String,
    pub signal: std::result::Result<Value, String>,
    pub phase: std::result::Result<Value, String>,
    pub price: Option<f64>,
}

impl<'a> CycleInput<'a> {
    /// Why the source could not answer for this symbol: its signal's error, else its phase's.
    pub fn source_error(&self) -> Option<&'a str> {
        match (self.signal, self.phase) {
            (Err(e), _) | (_, Err(e)) => Some(e),
            _ => None,
        }
    }
}

impl OwnedCycleInput {
    pub fn borrow(&self) -> CycleInput<'_> {
        CycleInput {
            symbol: &self.symbol,
            signal: &self.signal,
            phase: &self.phase,
            price: self.price,
        }
    }
}
