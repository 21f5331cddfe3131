//! The records of the trade lifecycle as the store keeps them and every front end shows them:
//! decisions, orders, positions, fills, prices, events and the runtime switches.

use super::lifecycle::{self, ExitsHeldBy, OrderKind, OrderStatus, Origin, Status};
use super::money::round_dp;
use super::rules::Decision;
use super::trail::{Trail, Trailing};
use super::types::Side;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `2026-11-25T11:00:00Z`.
pub fn fmt_ts(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        None => String::from("invalid-time"),
    }
}

pub fn to_datetime(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// One stored decision, as the decision log JSON shows it (its serde form carries a snapshot
/// to a remote dashboard; the SPEC's JSON is [`DecisionLog::to_json`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionLog {
    pub log_id: String,
    pub user_id: String,
    pub created_at_ms: i64,
    pub status: Status,
    pub status_reason: Option<String>,
    pub executed_at_ms: Option<i64>,
    pub mode: String,
    pub origin: Origin,
    pub decision: Decision,
    /// The AMD phase answer as received (or `{"error": ...}`).
    pub amd_input: Value,
    /// A position cap (percent of the account) the trader lifted on purpose for this
    /// decision (`trade --allow-value`, the form's second question): its fill is checked
    /// against it instead of `max_position_percent`.
    #[serde(default)]
    pub allowed_position_percent: Option<f64>,
}

impl DecisionLog {
    /// The SPEC's decision log JSON.
    pub fn to_json(&self) -> Value {
        let d = &self.decision;
        let (trail_percent, trail_amount) = Trail::columns(d.trail);
        serde_json::json!({
            "log_id": self.log_id,
            "created_at": fmt_ts(self.created_at_ms),
            "status": self.status.as_str(),
            "executed": self.status == Status::Executed,
            "executed_at": self.executed_at_ms.map(fmt_ts),
            "mode": self.mode,
            "origin": self.origin.as_str(),
            "status_reason": self.status_reason,
            "decision": {
                "symbol": d.symbol,
                "action": d.action.as_str(),
                "confidence": d.confidence,
                "raw_confidence": d.raw_confidence,
                "reasoning": d.reasoning,
                "entry_price": d.entry_price,
                "take_profit": d.take_profit,
                "stop_loss": d.stop_loss,
                "position_size": d.position_size,
                "ml_signal": d.ml_signal,
                "amd_phase": d.amd_phase.map(|p| p.as_str()),
                "trail_percent": trail_percent,
                "trail_amount": trail_amount,
            },
            "risk_reward": d.risk_reward,
        })
    }

    /// The AMD phase confidence as the source reported it, when it did.
    pub fn amd_confidence(&self) -> Option<f64> {
        self.amd_input.get("confidence").and_then(Value::as_f64)
    }
}

/// An open or closed paper position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub id: i64,
    pub decision_id: String,
    pub symbol: String,
    pub side: Side,
    pub quantity: f64,
    pub entry_price: f64,
    pub take_profit: f64,
    pub stop_loss: f64,
    pub opened_at_ms: i64,
    pub mode: String,
    pub closed_at_ms: Option<i64>,
    pub exit_price: Option<f64>,
    pub realized_pnl: Option<f64>,
    pub close_reason: Option<String>,
    /// Who watches the take-profit and stop-loss.
    pub exits_held_by: ExitsHeldBy,
    /// The trailing stop that moves `stop_loss`; none for a fixed stop (and for every
    /// position opened before trailing stops).
    #[serde(default)]
    pub trail: Option<Trail>,
    /// The best price since the fill (the highest a long could sell at, the lowest a short
    /// could buy at), while the stop trails.
    #[serde(default)]
    pub best_price: Option<f64>,
}

impl Position {
    /// The trailing stop as it stands, when the position has one.
    pub fn trailing(&self) -> Option<Trailing> {
        Some(Trailing {
            trail: self.trail?,
            best: self.best_price.unwrap_or(self.entry_price),
        })
    }

    /// Marks the position to market: its unrealized P&L at `last`, to the cent; `None`
    /// when no price is known. Every view of open P&L (header, positions, status) uses this.
    pub fn unrealized_pnl(&self, last: Option<f64>) -> Option<f64> {
        last.filter(|p| p.is_finite() && *p > 0.0).map(|p| {
            round_dp(
                lifecycle::pnl(self.side, self.quantity, self.entry_price, p),
                2,
            )
        })
    }

    /// `positions --json`: the position with its latest price and unrealized P&L, and its
    /// trail (`stop_loss` is then the stop as the trail has moved it).
    pub fn to_json(&self, last: Option<f64>) -> Value {
        let (trail_percent, trail_amount) = Trail::columns(self.trail);
        serde_json::json!({
            "symbol": self.symbol,
            "side": self.side.as_str(),
            "quantity": self.quantity,
            "entry_price": self.entry_price,
            "take_profit": self.take_profit,
            "stop_loss": self.stop_loss,
            "opened_at": fmt_ts(self.opened_at_ms),
            "last_price": last,
            "unrealized_pnl": self.unrealized_pnl(last),
            "mode": self.mode,
            "log_id": self.decision_id,
            "trail_percent": trail_percent,
            "trail_amount": trail_amount,
            "best_price": self.best_price,
        })
    }
}

/// An order to the broker for a decision; its client order id is the decision's `log_id`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    pub id: i64,
    pub client_order_id: String,
    pub decision_id: String,
    /// The broker it was sent to (`paper`, …).
    pub broker: String,
    /// Opens the decision's position, or closes it.
    pub kind: OrderKind,
    pub symbol: String,
    pub side: Side,
    pub quantity: f64,
    /// The price the fill check passed it at.
    pub reference_price: f64,
    pub take_profit: f64,
    pub stop_loss: f64,
    pub status: OrderStatus,
    pub filled_quantity: Option<f64>,
    pub fill_price: Option<f64>,
    /// The broker's reason for a rejection, or why the outcome is unknown.
    pub reason: Option<String>,
    /// Who is to hold an opening order's exits, when the desk chose (the engine, for a
    /// trailing stop); none: the broker's way for the symbol and quantity.
    pub exits_held_by: Option<ExitsHeldBy>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One execution on the paper broker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fill {
    pub symbol: String,
    pub side: String,
    pub quantity: f64,
    pub price: f64,
    pub at_ms: i64,
    /// `open` or `close`.
    pub kind: String,
}

/// Runtime switches kept across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeState {
    pub enabled: bool,
    pub kill_switch: bool,
    pub last_cycle_at_ms: Option<i64>,
    /// A loss halt in force: no new entries until the trader resets it.
    #[serde(default)]
    pub halt: Option<super::halt::Halt>,
    /// What the loss halts are measured from.
    #[serde(default)]
    pub marks: super::halt::EquityMarks,
}

/// A line of the recent-events pane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    pub at_ms: i64,
    pub level: String,
    pub message: String,
}

/// A latest known price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PricePoint {
    /// The price positions are marked at: the last trade, or the middle of the quote.
    pub price: f64,
    /// When the market said it (the provider's time when a feed gave it), ms since the epoch.
    pub at_ms: i64,
    /// The best bid and ask, when a feed with quotes gave the price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bid: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ask: Option<f64>,
}

impl PricePoint {
    /// How old the price is at `now_ms`; a time ahead of the clock is of unknown age (see
    /// [`lifecycle::Age`]), so no maximum age accepts it.
    pub fn age(&self, now_ms: i64) -> lifecycle::Age {
        lifecycle::Age::at(self.at_ms, now_ms)
    }

    /// What a fill on `side` would pay or get: the ask for a buy, the bid for a sell, the
    /// price itself when there is no quote.
    pub fn fill_price(&self, side: crate::domain::Side) -> f64 {
        let quoted = match side {
            crate::domain::Side::Buy => self.ask,
            crate::domain::Side::Sell => self.bid,
        };
        quoted
            .filter(|p| *p > 0.0 && p.is_finite())
            .unwrap_or(self.price)
    }
}
