//! Views: what every front end shows, computed once here.

use super::{Desk, Result};
use crate::domain::money::round_dp;
use crate::store::{self, DecisionLog, Event, Position, PricePoint, RuntimeState, Status, Store};
use std::collections::BTreeMap;

/// Equity: the account size plus realized P&L plus open positions marked to market.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Equity {
    pub equity: f64,
    pub realized_pnl: f64,
    pub unrealized_pnl: f64,
}

/// Everything the dashboard shows from the store, as of one moment (its serde form is what
/// `serve` sends a remote dashboard).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub taken_at_ms: i64,
    pub state: RuntimeState,
    /// Pending decisions, newest first.
    pub pending: Vec<DecisionLog>,
    /// The latest decision of each symbol.
    pub latest: Vec<DecisionLog>,
    pub positions: Vec<Position>,
    pub prices: BTreeMap<String, PricePoint>,
    /// Each priced symbol's recent prices, oldest first (at most [`TREND_POINTS`]).
    pub trends: BTreeMap<String, Vec<PricePoint>>,
    /// Newest first.
    pub events: Vec<Event>,
    pub equity: f64,
    pub realized_pnl: f64,
    pub unrealized_pnl: f64,
    /// A real broker's account and the positions it holds that this program did not open, as
    /// of the last reconciliation; `None` on the paper ledger.
    pub broker: Option<crate::broker::BrokerView>,
}

/// The trade history view: closed positions and the events log, searched.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct History {
    /// What was searched for (empty: everything).
    pub query: String,
    /// Newest first, at most [`HISTORY_LIMIT`].
    pub closed: Vec<Position>,
    /// How many closed positions match in all.
    pub closed_total: usize,
    /// Newest first, at most [`HISTORY_LIMIT`].
    pub events: Vec<Event>,
    pub events_total: usize,
}

/// The most closed positions and events the history view loads at once.
pub const HISTORY_LIMIT: usize = 5_000;

/// Events and pending decisions the dashboard loads.
const SNAPSHOT_EVENTS: usize = 50;
const SNAPSHOT_PENDING: usize = 100;
/// The recent prices of each symbol the dashboard draws its trend from (all it shows).
pub const TREND_POINTS: usize = 16;

/// Equity from positions and prices already read.
pub(super) fn equity_of(
    account_size: f64,
    realized: f64,
    open: &[Position],
    prices: &BTreeMap<String, PricePoint>,
) -> Equity {
    let unrealized: f64 = open
        .iter()
        .filter_map(|p| p.unrealized_pnl(prices.get(&p.symbol).map(|x| x.price)))
        .sum();
    Equity {
        equity: account_size + realized + unrealized,
        realized_pnl: realized,
        unrealized_pnl: unrealized,
    }
}

impl Desk {
    pub fn equity(&self) -> Result<Equity> {
        let size = self.config.account.size;
        Ok(self.store.read(|tx| {
            Ok(equity_of(
                size,
                tx.realized_pnl()?,
                &tx.open_positions()?,
                &tx.prices()?,
            ))
        })?)
    }

    /// The dashboard's snapshot, read in one read transaction on `store` (the watcher's own
    /// connection, so that the loop's writes never wait behind it).
    pub fn snapshot(&self, store: &Store) -> Result<Snapshot> {
        let size = self.config.account.size;
        store.read_consistent(|| {
            let snap = store.read(|tx| {
                let positions = tx.open_positions()?;
                let prices = tx.prices()?;
                let eq = equity_of(size, tx.realized_pnl()?, &positions, &prices);
                Ok(Snapshot {
                    taken_at_ms: tx.now(),
                    state: tx.state()?,
                    pending: tx.decisions(SNAPSHOT_PENDING, Some(Status::Pending))?,
                    latest: tx.latest_per_symbol()?,
                    positions,
                    trends: prices
                        .keys()
                        .map(|s| Ok((s.clone(), tx.trend(s, TREND_POINTS)?)))
                        .collect::<crate::store::Result<_>>()?,
                    prices,
                    events: tx.recent_events(SNAPSHOT_EVENTS)?,
                    equity: eq.equity,
                    realized_pnl: eq.realized_pnl,
                    unrealized_pnl: eq.unrealized_pnl,
                    broker: tx.broker_view()?,
                })
            })?;
            Ok(snap)
        })
    }

    /// Closed positions and events containing `query` (any case), newest first.
    pub fn history(&self, query: &str) -> Result<History> {
        Ok(self.store.read(|tx| {
            let (closed, closed_total) = tx.search_closed(query, HISTORY_LIMIT)?;
            let (events, events_total) = tx.search_events(query, HISTORY_LIMIT)?;
            Ok(History {
                query: query.to_string(),
                closed,
                closed_total,
                events,
                events_total,
            })
        })?)
    }

    /// Decisions, newest first, after expiring stale ones.
    pub fn decisions(&self, limit: usize, status: Option<Status>) -> Result<Vec<DecisionLog>> {
        if !self.viewer {
            self.expire_stale()?;
        }
        Ok(self.store.decisions(limit, status)?)
    }

    /// Open positions with their latest prices: (position, last price).
    pub fn positions(&self) -> Result<Vec<(Position, Option<f64>)>> {
        Ok(self.store.read(|tx| {
            let prices = tx.prices()?;
            Ok(tx
                .open_positions()?
                .into_iter()
                .map(|p| {
                    let last = prices.get(&p.symbol).map(|x| x.price);
                    (p, last)
                })
                .collect())
        })?)
    }

    /// `positions --json`, one object a position.
    pub fn positions_json(&self) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .positions()?
            .iter()
            .map(|(p, last)| p.to_json(*last))
            .collect())
    }

    /// `status --json` (after expiring stale decisions).
    pub fn status_json(&self) -> Result<serde_json::Value> {
        if !self.viewer
            && let Err(e) = self.expire_stale()
            && !self.store.health().is_failing()
        {
            // A store that cannot write still shows its status, and says so ("store" below).
            return Err(e);
        }
        let cfg = &self.config;
        let (st, open, pending, health, feed, broker, scored) = self.store.read(|tx| {
            Ok((
                tx.state()?,
                tx.open_positions()?.len(),
                tx.count_decisions(Some(Status::Pending))?,
                tx.source_health()?,
                tx.feed_health()?,
                tx.broker_view()?,
                tx.scored_outcomes(cfg.score_source())?,
            ))
        })?;
        // What the decisions' confidence is: the raw score, or the win rate it earned.
        let calibration = serde_json::json!({
            "on": cfg.auto_trade.calibrated_confidence,
            "source": cfg.score_source(),
            "judged": scored.len(),
            "needed": crate::analytics::CALIBRATION_MIN_OUTCOMES,
            "applied": cfg.auto_trade.calibrated_confidence
                && crate::analytics::calibration_for(&scored).is_some(),
        });
        let eq = self.equity()?;
        let limits = self.loss_limits();
        let marks = crate::domain::halt::roll(st.marks, eq.equity, crate::store::now_ms());
        let (daily, drawdown) = crate::domain::halt::usage(&limits, &marks, eq.equity);
        let used = |u: Option<crate::domain::halt::Used>| {
            u.map(|u| {
                serde_json::json!({
                    "percent": round_dp(u.percent, 4),
                    "amount": round_dp(u.amount, 2),
                    "base": round_dp(u.base, 2),
                    "limit_percent": u.limit_percent,
                })
            })
        };
        Ok(serde_json::json!({
            "user_id": cfg.auto_trade.user_id,
            "store": self.store.health().to_json(),
            "enabled": st.enabled,
            "kill_switch": st.kill_switch,
            // A loss halt in force: no new entries until `enable --reset`.
            "halt": st.halt.as_ref().map(|h| serde_json::json!({
                "since": store::fmt_ts(h.at_ms),
                "reason": h.reason,
            })),
            // How much of each loss limit is used (null: the limit is off).
            "loss_limits": {
                "daily_loss": used(daily),
                "drawdown": used(drawdown),
            },
            "mode": cfg.mode(),
            "source": cfg.source_name(),
            // null until a cycle has asked the source; since: when the last change was seen.
            "source_reachable": health.as_ref().map(|h| h.reachable),
            "source_since": health.as_ref().map(|h| store::fmt_ts(h.since_ms)),
            "source_error": health.and_then(|h| h.error),
            // The built-in paper broker is this program's own ledger: always there. A real
            // broker: whether the last reconciliation reached it, its account, and the
            // positions it holds that this program did not open (external, never touched).
            "broker": self.broker.name(),
            "broker_reachable": broker.as_ref().is_none_or(|b| b.error.is_none()),
            "broker_error": broker.as_ref().and_then(|b| b.error.clone()),
            "broker_account": broker.as_ref().and_then(|b| b.account.as_ref()).map(|a| serde_json::json!({
                "equity": a.equity,
                "cash": a.cash,
                "buying_power": a.buying_power,
                "blocked": a.blocked,
            })),
            "external_positions": broker.as_ref().map(|b| b.external.iter().map(|h| serde_json::json!({
                "symbol": h.symbol,
                "side": h.side.as_str(),
                "quantity": h.quantity,
                "avg_entry_price": h.avg_entry_price,
            })).collect::<Vec<_>>()),
            // The live market-data feed: null without one (or before it first ran).
            "feed": cfg.market_data.provider.is_feed().then(|| feed.map(|f| serde_json::json!({
                "provider": f.provider,
                "state": f.state,
                "since": store::fmt_ts(f.since_ms),
                "why": f.why,
            }))).flatten(),
            "stale_after_seconds": cfg.market_data.provider.is_feed().then_some(cfg.market_data.stale_after_seconds),
            "symbols": cfg.auto_trade.symbols,
            "open_positions": open,
            "max_open_positions": cfg.auto_trade.max_open_positions,
            "pending": pending,
            "last_cycle": st.last_cycle_at_ms.map(store::fmt_ts),
            "calibration": calibration,
            "equity": round_dp(eq.equity, 2),
            "realized_pnl": round_dp(eq.realized_pnl, 2),
            "unrealized_pnl": round_dp(eq.unrealized_pnl, 2),
            "config": cfg.source,
            "data_dir": self.data_dir.display().to_string(),
            // Where the rows are: "sqlite", or the PostgreSQL URL without its password.
            "database": self.store.pg().map_or_else(|| "sqlite".to_string(), |db| db.shown().to_string()),
        }))
    }
}
