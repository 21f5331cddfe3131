//! Following decisions on later prices: each BUY or SELL (and each that fell below
//! `min_confidence`) starts an outcome when it is stored; every price recorded for its symbol
//! steps it; the horizon judges what is left. The calibration map of a source is fitted here
//! from its resolved outcomes.

use super::{Desk, Result};
use crate::analytics::report::{self, Report};
use crate::analytics::stats::Calibration;
use crate::domain::lifecycle::Origin;
use crate::domain::outcome::{self, Bar, Seen, source};
use crate::store::{DecisionLog, OutcomeRecord, PricePoint, Tx};

/// What scored a decision of `origin`.
pub(super) fn source_of(desk: &Desk, origin: Origin) -> &'static str {
    match origin {
        Origin::Auto => desk.config.score_source(),
        Origin::Agent => source::AGENT,
        Origin::Manual => source::MANUAL,
    }
}

/// Start following a stored decision when it is a BUY or SELL, or one below `min_confidence`.
pub(super) fn follow_new(
    tx: &Tx<'_>,
    desk: &Desk,
    log: &DecisionLog,
    min_confidence: f64,
) -> crate::store::Result<()> {
    let d = &log.decision;
    if let Some(levels) = outcome::followed(d, min_confidence) {
        tx.follow_decision(
            &log.log_id,
            &d.symbol,
            &levels,
            source_of(desk, log.origin),
            d.raw_confidence.unwrap_or(d.confidence),
        )?;
    }
    Ok(())
}

/// The open outcomes of one write transaction, read once and stepped by every price it
/// records: a batch of feed ticks costs one read when nothing is followed, and one write per
/// outcome that moved (its last price) or ended.
pub(super) struct Followers {
    open: Vec<OutcomeRecord>,
    seen: Vec<bool>,
    horizon_ms: i64,
}

impl Followers {
    pub(super) fn load(tx: &Tx<'_>, desk: &Desk) -> crate::store::Result<Followers> {
        let open = tx.open_outcomes(None)?;
        Ok(Followers {
            seen: vec![false; open.len()],
            open,
            horizon_ms: desk.config.outcome_horizon_ms(),
        })
    }

    /// Step the open outcomes on `symbol` with a recorded price: a long is judged at what
    /// selling would get (the bid), a short at what buying back would pay (the ask), as
    /// positions are. A price from before an outcome began, or older than one it has seen,
    /// is not a step.
    pub(super) fn price(
        &mut self,
        tx: &Tx<'_>,
        symbol: &str,
        point: &PricePoint,
    ) -> crate::store::Result<()> {
        for (o, seen) in self.open.iter_mut().zip(self.seen.iter_mut()) {
            if o.symbol != symbol
                || o.state.is_resolved()
                || point.at_ms < o.started_at_ms
                || o.last.is_some_and(|l| l.at_ms > point.at_ms)
            {
                continue;
            }
            let price = point.fill_price(o.levels.side.closing());
            let bar = Bar::tick(point.at_ms, price);
            let horizon_at = o.started_at_ms.saturating_add(self.horizon_ms);
            match outcome::step(&o.levels, o.last, horizon_at, &bar) {
                Some(r) => {
                    tx.resolve_outcome(&o.decision_id, &r)?;
                    o.state = r.state;
                    *seen = false;
                }
                None => {
                    o.last = Some(Seen {
                        price,
                        at_ms: point.at_ms,
                    });
                    *seen = true;
                }
            }
        }
        Ok(())
    }

    /// Store the last price each outcome still open was followed at.
    pub(super) fn finish(self, tx: &Tx<'_>) -> crate::store::Result<()> {
        for (o, seen) in self.open.iter().zip(self.seen) {
            if let (true, Some(last)) = (seen, o.last) {
                tx.outcome_seen(&o.decision_id, &last)?;
            }
        }
        Ok(())
    }
}

/// What a cycle reads of the outcomes once: the calibration map its decisions are scored
/// with, and the open outcomes its prices step.
pub(super) struct CycleScoring {
    pub calibration: Option<Calibration>,
    pub followers: Followers,
}

impl CycleScoring {
    pub(super) fn load(tx: &Tx<'_>, desk: &Desk) -> crate::store::Result<CycleScoring> {
        Ok(CycleScoring {
            calibration: calibration(tx, desk)?,
            followers: Followers::load(tx, desk)?,
        })
    }
}

/// Bring every open outcome up to date: one that has seen no price yet (an upgraded store's
/// earlier decisions, or one made just before a restart) is first followed on the prices the
/// store kept since it started; one whose horizon has passed is judged at its last price.
pub(super) fn settle_due(tx: &Tx<'_>, desk: &Desk) -> crate::store::Result<usize> {
    let horizon = desk.config.outcome_horizon_ms();
    let mut settled = 0;
    for o in tx.open_outcomes(None)? {
        let horizon_at = o.started_at_ms.saturating_add(horizon);
        let mut last = o.last;
        if last.is_none() {
            let ticks = tx.ticks_after(&o.symbol, o.started_at_ms)?;
            let bars = ticks.into_iter().map(|(at, p)| Bar::tick(at, p));
            match outcome::follow_from(&o.levels, None, horizon_at, bars) {
                Ok(r) => {
                    tx.resolve_outcome(&o.decision_id, &r)?;
                    settled += 1;
                    continue;
                }
                Err(seen) => last = seen,
            }
            if let Some(seen) = last {
                tx.outcome_seen(&o.decision_id, &seen)?;
            }
        }
        if tx.now() > horizon_at {
            tx.resolve_outcome(
                &o.decision_id,
                &outcome::at_horizon(&o.levels, last, horizon_at),
            )?;
            settled += 1;
        }
    }
    Ok(settled)
}

/// The calibration map for the automatic decisions' source, when `calibrated_confidence` is
/// on and the source has enough resolved outcomes, with both wins and losses among them.
fn calibration(tx: &Tx<'_>, desk: &Desk) -> crate::store::Result<Option<Calibration>> {
    if !desk.config.auto_trade.calibrated_confidence {
        return Ok(None);
    }
    let scored = tx.scored_outcomes(desk.config.score_source())?;
    Ok(crate::analytics::calibration_for(&scored))
}

impl Desk {
    /// Judge the outcomes whose horizon has passed and catch up the ones that have seen no
    /// price; returns how many were resolved.
    pub fn settle_outcomes(&self) -> Result<usize> {
        Ok(self.store.write(|tx| settle_due(tx, self))?)
    }

    /// The report over the decisions made at or after `since` (label, ms): outcomes brought
    /// up to date first (unless this desk only views the store).
    pub fn report(&self, since: Option<(String, i64)>) -> Result<Report> {
        if !self.viewer {
            self.settle_outcomes()?;
        }
        let since_ms = since.as_ref().map_or(i64::MIN, |s| s.1);
        let (followed, closed) = self.store.read(|tx| {
            Ok((
                tx.followed_decisions(since_ms)?,
                tx.closed_trades(since_ms)?,
            ))
        })?;
        Ok(report::build(&report::Inputs {
            user_id: self.store.user_id(),
            since: since.map(|s| s.0),
            account_size: self.config.account.size,
            outcome_horizon_hours: self.config.auto_trade.outcome_horizon_hours,
            followed: &followed,
            closed: &closed,
        }))
    }
}
