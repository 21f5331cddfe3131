//! Trailing stops on the desk: the trail a decision gets, who holds a trailing position's
//! exits, and each price's step of [`crate::domain::trail`] stored with the position.
//!
//! - A decision that names no trail gets `[risk] trailing_stop_percent` when it is above 0
//!   (auto, agent and manual decisions alike); it is stored on the decision and copied to the
//!   position at the fill, so a later change of the config leaves open positions as they were.
//! - The engine holds a trailing position's exits, whatever the broker could hold: a broker's
//!   protective order (an Alpaca bracket's stop leg) stays where it was placed, while the trail
//!   moves with every price the engine sees. Its opening order is stored saying so, and is sent
//!   as a simple order (no bracket).
//! - Each price the engine judges a position's exits by (the bid for a long, the ask for a
//!   short, fresh prices only) is first checked against the stop as it stood, then moves the
//!   trail: the moved stop and the best price are stored in the same transaction as the price.
//! - A stop that moves is said in the events pane with the stop before and after, at most once
//!   a minute per position (a live feed moves it on every new high); the stop shown on the
//!   positions pane is always the stored one.

use super::Desk;
use crate::config::Config;
use crate::domain::Side;
use crate::domain::lifecycle::{Exit, ExitsHeldBy};
use crate::domain::money::fmt_price;
use crate::domain::rules::Decision;
use crate::domain::trail::{self, Step, Trail};
use crate::store::{Position, Tx};
use std::collections::HashMap;
use std::sync::Mutex;

/// A stop that moved again within this long of the last event about it moves quietly.
pub const NOTE_EVERY_MS: i64 = 60_000;

/// The trail a decision without one gets: `[risk] trailing_stop_percent`, when above 0.
pub fn default_trail(config: &Config) -> Option<Trail> {
    let p = config.risk_limits.trailing_stop_percent;
    (p > 0.0).then_some(Trail::Percent(p))
}

/// Give an actionable decision that names no trail the config's default.
pub(super) fn give_default(decision: &mut Decision, config: &Config) {
    if decision.action.is_actionable() && decision.trail.is_none() {
        decision.trail = default_trail(config);
    }
}

/// Who is to hold the exits of the position `decision` opens, when the desk decides it: the
/// engine for a trailing stop; none leaves it to the broker.
pub(super) fn exits_for(decision: &Decision) -> Option<ExitsHeldBy> {
    decision.trail.map(|_| ExitsHeldBy::Engine)
}

/// The last event said about each position's trailing stop: when, and the stop it named.
#[derive(Debug, Default)]
pub struct Notes(Mutex<HashMap<i64, (i64, f64)>>);

impl Notes {
    /// Whether a move of position `id`'s stop at `now_ms` is to be said, and from which stop
    /// (`before` when nothing was said of it lately); remembers it when it is.
    fn say(&self, id: i64, now_ms: i64, before: f64, after: f64) -> Option<f64> {
        let mut notes = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let from = match notes.get(&id) {
            Some(&(at, _)) if now_ms - at < NOTE_EVERY_MS => return None,
            Some(&(_, said)) => said,
            None => before,
        };
        notes.insert(id, (now_ms, after));
        Some(from)
    }

    fn forget(&self, id: i64) {
        match self.0.lock() {
            Ok(mut g) => g.remove(&id),
            Err(p) => p.into_inner().remove(&id),
        };
    }
}

/// One price `at` for the open position `pos`: its exit and fill price, when the price crosses
/// its take-profit or its stop as it stood; else `None`, with the trail (if it has one and the
/// engine holds its exits) moved by the price and stored.
pub(super) fn step(
    tx: &Tx<'_>,
    desk: &Desk,
    pos: &Position,
    at: f64,
) -> crate::store::Result<Option<(Exit, f64)>> {
    let trailing = pos
        .trailing()
        .filter(|_| pos.exits_held_by == ExitsHeldBy::Engine);
    match trail::step_on_price(pos.side, at, pos.take_profit, pos.stop_loss, trailing) {
        Step::Exit(exit, fill) => {
            desk.trail_notes.forget(pos.id);
            Ok(Some((exit, fill)))
        }
        Step::Open {
            stop,
            trailing: Some(t),
        } if stop != pos.stop_loss || Some(t.best) != pos.best_price => {
            tx.move_stop(pos, stop, t.best)?;
            if stop != pos.stop_loss
                && let Some(from) = desk.trail_notes.say(pos.id, tx.now(), pos.stop_loss, stop)
            {
                tx.add_event(
                    "info",
                    &format!(
                        "{} {} trailing stop {} {} → {} (best {}, trail {})",
                        pos.symbol,
                        pos.side,
                        match pos.side {
                            Side::Buy => "raised",
                            Side::Sell => "lowered",
                        },
                        fmt_price(from),
                        fmt_price(stop),
                        fmt_price(t.best),
                        t.trail
                    ),
                )?;
            }
            Ok(None)
        }
        Step::Open { .. } => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use serde_json::json;
    use std::sync::Arc;

    fn desk(extra: &str) -> (tempfile::TempDir, Desk) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::parse_str(
            &format!(
                "[auto_trade]\nsymbols = [\"BTC/USD\"]\nrequire_confirmation = false\n{extra}"
            ),
            "test",
        )
        .unwrap();
        let store = Store::open(dir.path(), "u", true).unwrap();
        let desk = Desk::new(Arc::new(config), dir.path().into(), Arc::new(store));
        (dir, desk)
    }

    fn input(entry: f64) -> super::super::OwnedCycleInput {
        super::super::OwnedCycleInput {
            symbol: "BTC/USD".into(),
            signal: Ok(
                json!({"direction": "bullish", "confidence": 0.9, "entry_price": entry,
                "take_profit": 120.0, "stop_loss": 95.0, "risk_reward_ratio": 4.0}),
            ),
            phase: Ok(json!({"phase": "accumulation", "confidence": 0.8, "indicators": {}})),
            price: Some(entry),
        }
    }

    fn events(desk: &Desk) -> Vec<String> {
        let mut e: Vec<String> = desk
            .store
            .read(|t| t.recent_events(100))
            .unwrap()
            .into_iter()
            .map(|e| e.message)
            .filter(|m| m.contains("trailing stop"))
            .collect();
        e.reverse();
        e
    }

    #[tokio::test]
    async fn an_auto_decision_gets_the_config_trail_and_its_stop_follows_the_prices() {
        let (_dir, desk) = desk("[risk]\ntrailing_stop_percent = 1\n");
        let out = desk.record_cycle(vec![input(100.0)]).await.unwrap();
        let out = &out[0];
        assert_eq!(out.log.decision.trail, Some(Trail::Percent(1.0)));
        assert_eq!(out.log.decision.stop_loss, Some(95.0));
        // Filled at 100: the stop starts 1 % behind it, tighter than the 95 stop-loss.
        let pos = out.executed.clone().unwrap();
        assert_eq!(pos.trail, Some(Trail::Percent(1.0)));
        assert_eq!((pos.stop_loss, pos.best_price), (99.0, Some(100.0)));
        assert_eq!(pos.exits_held_by, ExitsHeldBy::Engine);
        // 102 → 100.98, 105 → 103.95, 104 leaves it: each in the store with the best price.
        for p in [102.0, 105.0, 104.0] {
            assert!(
                desk.record_prices(&[("BTC/USD".into(), p)])
                    .unwrap()
                    .is_empty()
            );
        }
        let open = desk.store.read(|t| t.open_positions()).unwrap();
        assert_eq!(
            (open[0].stop_loss, open[0].best_price),
            (103.95, Some(105.0))
        );
        // One event for the first move; the second came within the minute.
        assert_eq!(
            events(&desk),
            ["BTC/USD BUY trailing stop raised 99.000 → 100.980 (best 102.000, trail 1%)"]
        );
        // 103.9 crosses 103.95: closed there, a stop-loss exit at a gain.
        let closed = desk.record_prices(&[("BTC/USD".into(), 103.9)]).unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].close_reason.as_deref(), Some("stop_loss"));
        assert_eq!(closed[0].exit_price, Some(103.9));
        assert!(closed[0].realized_pnl.unwrap() > 0.0);
    }

    #[test]
    fn a_move_is_said_from_the_stop_last_said_once_a_minute() {
        let notes = Notes::default();
        assert_eq!(notes.say(1, 0, 99.0, 100.0), Some(99.0));
        assert_eq!(notes.say(1, 30_000, 100.0, 101.0), None);
        assert_eq!(notes.say(2, 30_000, 50.0, 49.0), Some(50.0));
        // A minute after the last event: from the stop it named, over the quiet moves.
        assert_eq!(notes.say(1, 60_000, 101.0, 102.0), Some(100.0));
        notes.forget(1);
        assert_eq!(notes.say(1, 61_000, 102.0, 103.0), Some(102.0));
    }

    fn tick(last: f64, bid: f64, ask: f64, age_ms: i64) -> crate::market::Tick {
        crate::market::Tick {
            symbol: "BTC/USD".into(),
            last: Some(last),
            bid: Some(bid),
            ask: Some(ask),
            at_ms: crate::store::now_ms() - age_ms,
        }
    }

    #[tokio::test]
    async fn with_a_feed_a_long_trails_the_bid_it_would_sell_at_and_an_old_tick_moves_nothing() {
        let (_dir, desk) = desk(
            "[risk]\ntrailing_stop_percent = 1\n[ml_engine]\nurl = \"http://127.0.0.1:9\"\n\
             [market_data]\nprovider = \"coinbase\"\nstale_after_seconds = 5\n",
        );
        let out = desk.record_cycle(vec![input(100.0)]).await.unwrap();
        desk.record_ticks(&[tick(100.0, 99.9, 100.1, 0)]).unwrap();
        // Bought at the ask, 100.1: the stop starts at 100.1 × 0.99 = 99.099.
        let (_, pos) = desk.confirm(&out[0].log.log_id).await.unwrap();
        assert_eq!((pos.entry_price, pos.best_price), (100.1, Some(100.1)));
        assert!((pos.stop_loss - 99.099).abs() < 1e-9, "{}", pos.stop_loss);
        // The last trade is 103 but a long sells at the bid, 102.9: stop 102.9 × 0.99 = 101.871.
        desk.record_ticks(&[tick(103.0, 102.9, 103.1, 0)]).unwrap();
        let open = desk.store.read(|t| t.open_positions()).unwrap();
        assert_eq!(open[0].best_price, Some(102.9));
        assert!(
            (open[0].stop_loss - 101.871).abs() < 1e-9,
            "{}",
            open[0].stop_loss
        );
        // A tick older than stale_after_seconds moves nothing.
        desk.record_ticks(&[tick(110.0, 109.9, 110.1, 6_000)])
            .unwrap();
        let open = desk.store.read(|t| t.open_positions()).unwrap();
        assert_eq!(open[0].best_price, Some(102.9));
        // The bid falls to 101.8, under the stop: closed there.
        let closed = desk.record_ticks(&[tick(102.0, 101.8, 102.2, 0)]).unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].exit_price, Some(101.8));
        assert_eq!(closed[0].close_reason.as_deref(), Some("stop_loss"));
    }

    #[tokio::test]
    async fn without_a_config_trail_the_stop_stays_put() {
        let (_dir, desk) = desk("");
        let out = desk.record_cycle(vec![input(100.0)]).await.unwrap();
        let pos = out[0].executed.clone().unwrap();
        assert_eq!(
            (pos.trail, pos.best_price, pos.stop_loss),
            (None, None, 95.0)
        );
        desk.record_prices(&[("BTC/USD".into(), 110.0)]).unwrap();
        let open = desk.store.read(|t| t.open_positions()).unwrap();
        assert_eq!((open[0].stop_loss, open[0].best_price), (95.0, None));
        assert!(events(&desk).is_empty());
    }
}
