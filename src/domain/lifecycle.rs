//! The trade lifecycle: statuses and origins of decisions, orders and their outcomes, when a
//! price may fill a decision ([`check_fill`], the one check live confirms and the backtest
//! share), when a price closes a position, and what a position is worth at a price.

use super::money::{fmt_money, fmt_num, mul_exact, round_dp, sub_exact};
use super::rules::{self, Decision, RiskSettings};
use super::types::Side;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A stored value this program does not know: the store was written by something else, or
/// damaged. Reading it fails loudly instead of guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} in the store")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

/// Text names for the enums the store keeps, both ways, in one table each.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownValue { what: $what, value: s.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// The lifecycle of a decision (rule 7): `hold` is final; `pending` becomes `executed`,
    /// `cancelled`, `expired` or `failed`.
    Status, "decision status", {
        Hold => "hold",
        Pending => "pending",
        Executed => "executed",
        Cancelled => "cancelled",
        Expired => "expired",
        Failed => "failed",
    }
);

named_enum!(
    /// Where a followed decision stands (see [`crate::domain::outcome`]).
    /// `open`: neither level touched, horizon not passed; `horizon`: the horizon passed first
    /// (judged at the last price before it); `no_prices`: it passed with no price known after
    /// the decision, so there is nothing to judge.
    OutcomeState, "outcome state", {
        Open => "open",
        TakeProfit => "take_profit",
        StopLoss => "stop_loss",
        Horizon => "horizon",
        NoPrices => "no_prices",
    }
);

impl OutcomeState {
    pub fn is_resolved(self) -> bool {
        !matches!(self, OutcomeState::Open)
    }
}

named_enum!(
    /// Where a decision came from.
    Origin, "decision origin", {
        Auto => "auto",
        Manual => "manual",
        Agent => "agent",
    }
);

named_enum!(
    /// An order's state at the broker as far as this program knows it: stored `submitted`
    /// before it is sent; `partially_filled` while part of it has filled and the rest still
    /// works; `unknown` when the answer was lost (it is looked up, never re-sent).
    OrderStatus, "order status", {
        Submitted => "submitted",
        PartiallyFilled => "partially_filled",
        Filled => "filled",
        Rejected => "rejected",
        Unknown => "unknown",
    }
);

named_enum!(
    /// Whether an order opens a position or closes one.
    OrderKind, "order kind", {
        Open => "open",
        Close => "close",
    }
);

named_enum!(
    /// Who watches a position's take-profit and stop-loss: the engine on every price (and
    /// sends the closing order), or the broker, as protective orders placed with the entry.
    ExitsHeldBy, "exits held by", {
        Engine => "engine",
        Broker => "broker",
    }
);

impl OrderStatus {
    /// Submitted, partly filled or unknown: the outcome is still to be learnt from the broker.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::Submitted | Self::PartiallyFilled | Self::Unknown
        )
    }
}

/// Why a position closed at a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    TakeProfit,
    StopLoss,
}

impl Exit {
    pub fn as_str(self) -> &'static str {
        match self {
            Exit::TakeProfit => "take_profit",
            Exit::StopLoss => "stop_loss",
        }
    }
}

/// Whether `price` is at or beyond the take-profit or stop-loss of a position on `side`.
pub fn exit_reason(side: Side, price: f64, take_profit: f64, stop_loss: f64) -> Option<Exit> {
    match side {
        Side::Buy if price <= stop_loss => Some(Exit::StopLoss),
        Side::Buy if price >= take_profit => Some(Exit::TakeProfit),
        Side::Sell if price >= stop_loss => Some(Exit::StopLoss),
        Side::Sell if price <= take_profit => Some(Exit::TakeProfit),
        _ => None,
    }
}

/// The exit and its fill price when `price` closes the position. A take-profit is a resting
/// limit order: it fills at its price. A stop-loss becomes a market order when touched: it
/// fills at the price that crossed it, so a gap through the stop costs what it would.
pub fn exit_on_price(
    side: Side,
    price: f64,
    take_profit: f64,
    stop_loss: f64,
) -> Option<(Exit, f64)> {
    exit_reason(side, price, take_profit, stop_loss).map(|exit| match exit {
        Exit::TakeProfit => (exit, take_profit),
        Exit::StopLoss => (exit, price),
    })
}

/// The exit one bar (open, high, low) triggers for a position on `side`, and its fill price,
/// for replaying candles: a gap through a level at the open exits as [`exit_on_price`] does at
/// that price; inside the bar the stop-loss is checked before the take-profit, because a bar that
/// touches both cannot tell which came first and the conservative reading is the loss.
pub fn exit_in_bar(
    side: Side,
    open: f64,
    high: f64,
    low: f64,
    take_profit: f64,
    stop_loss: f64,
) -> Option<(Exit, f64)> {
    if let Some(exit) = exit_on_price(side, open, take_profit, stop_loss) {
        return Some(exit);
    }
    let (adverse, favourable) = match side {
        Side::Sell => (high, low),
        Side::Buy => (low, high),
    };
    if exit_reason(side, adverse, take_profit, stop_loss) == Some(Exit::StopLoss) {
        return Some((Exit::StopLoss, stop_loss));
    }
    if exit_reason(side, favourable, take_profit, stop_loss) == Some(Exit::TakeProfit) {
        return Some((Exit::TakeProfit, take_profit));
    }
    None
}

/// Profit or loss of `quantity` opened at `entry` and closed at `exit`, in decimal (so
/// 0.5 × (100.02 − 100.01) is 0.005 and rounds to the cent as it should).
pub fn pnl(side: Side, quantity: f64, entry: f64, exit: f64) -> f64 {
    match side {
        Side::Sell => mul_exact(quantity, sub_exact(entry, exit)),
        Side::Buy => mul_exact(quantity, sub_exact(exit, entry)),
    }
}

/// How far ahead of the clock a stamp may be and still count as made now: two connections
/// read the clock a few milliseconds apart, and a feed's clock is never quite ours.
pub const CLOCK_SKEW_ALLOWED: Duration = Duration::from_secs(2);

/// How old a stamp (a decision's creation, a price's time) is by this clock. A stamp further
/// ahead of the clock than [`CLOCK_SKEW_ALLOWED`] was written while a clock was wrong (this one
/// then, or now): its age is unknown, so whatever has a maximum age counts it as too old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    Ago(Duration),
    Ahead(Duration),
}

impl Age {
    /// The age at `now_ms` of a stamp made at `stamp_ms` (both ms since the epoch).
    pub fn at(stamp_ms: i64, now_ms: i64) -> Age {
        let ms = |d: i64| Duration::from_millis(d.unsigned_abs());
        let diff = now_ms.saturating_sub(stamp_ms);
        if diff >= 0 {
            Age::Ago(ms(diff))
        } else if ms(diff) <= CLOCK_SKEW_ALLOWED {
            Age::Ago(Duration::ZERO)
        } else {
            Age::Ahead(ms(diff))
        }
    }

    /// Known, and no older than `max`.
    pub fn within(self, max: Duration) -> bool {
        matches!(self, Age::Ago(d) if d <= max)
    }

    /// How far ahead of the clock the stamp is, when it is.
    pub fn ahead(self) -> Option<Duration> {
        match self {
            Age::Ahead(d) => Some(d),
            Age::Ago(_) => None,
        }
    }
}

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Age::Ago(d) => write!(f, "{}s old", d.as_secs()),
            Age::Ahead(d) => write!(
                f,
                "stamped {}s ahead of this clock (a clock was wrong; its age is unknown)",
                d.as_secs()
            ),
        }
    }
}

impl From<Duration> for Age {
    fn from(d: Duration) -> Age {
        Age::Ago(d)
    }
}

/// The latest price of a symbol and how old it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quote {
    pub price: f64,
    pub age: Age,
}

/// Why a price cannot fill a decision.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FillRefusal {
    #[error("it has no entry, take-profit or stop-loss")]
    NoLevels,
    /// Final: the decision's premise is gone, so it expires.
    #[error("price {} has moved past the take-profit or stop-loss since the decision", fmt_num(*price))]
    PastLevel { price: f64 },
    #[error("no live {symbol} price yet; no fill without one")]
    NoPrice { symbol: String },
    #[error("the latest {symbol} price ({}) is {age}; no fill on a stale price", fmt_num(*price))]
    StalePrice {
        symbol: String,
        price: f64,
        age: Age,
    },
    #[error(
        "size {} is over the cap of {} at entry {} (max_position_percent {})",
        fmt_num(*size), fmt_num(*cap), fmt_num(*entry), fmt_num(*max_position_percent)
    )]
    OverCap {
        size: f64,
        cap: f64,
        entry: f64,
        max_position_percent: f64,
    },
    #[error(
        "at {} the position would risk {}, over the {} allowed (max_risk_percent {}%); resize it or cancel it",
        fmt_num(*price), fmt_money(*risk), fmt_money(*allowed), fmt_num(*max_risk_percent)
    )]
    OverRisk {
        price: f64,
        risk: f64,
        allowed: f64,
        max_risk_percent: f64,
    },
}

impl FillRefusal {
    /// A refusal that ends the decision (it expires) rather than leaving it to resize or wait.
    pub fn is_final(&self) -> bool {
        matches!(self, FillRefusal::PastLevel { .. })
    }
}

/// The one fill check, for a live confirm and a backtest bar alike: may `decision` fill at
/// `quote` (`None`: no price known, fill at the decision's entry)? Returns the fill price.
///
/// In order: the price must not be past the take-profit or stop-loss; not older than
/// `max_age`; the size within the cap at the decision's entry; and at the fill price the
/// position must not risk more than `max_risk_percent` of the account (or, for a larger size
/// the trader chose, more than the decision's own risk amount).
pub fn check_fill(
    decision: &Decision,
    quote: Option<Quote>,
    max_age: Duration,
    risk: &RiskSettings,
) -> Result<f64, FillRefusal> {
    let (Some(side), Some(entry), Some(tp), Some(sl)) = (
        decision.action.side(),
        decision.entry_price,
        decision.take_profit,
        decision.stop_loss,
    ) else {
        return Err(FillRefusal::NoLevels);
    };
    // A stale price says nothing about the market now: it refuses (the decision waits) before
    // it could end the decision as past its take-profit or stop-loss. A price stamped ahead
    // of the clock is of unknown age: stale.
    if let Some(q) = quote
        && !q.age.within(max_age)
    {
        return Err(FillRefusal::StalePrice {
            symbol: decision.symbol.clone(),
            price: q.price,
            age: q.age,
        });
    }
    if let Some(q) = quote
        && exit_reason(side, q.price, tp, sl).is_some()
    {
        return Err(FillRefusal::PastLevel { price: q.price });
    }
    let fill = quote.map_or(entry, |q| q.price);
    let cap = rules::max_quantity(risk, entry);
    if decision.position_size > cap + 1e-12 {
        return Err(FillRefusal::OverCap {
            size: decision.position_size,
            cap,
            entry,
            max_position_percent: risk.max_position_percent,
        });
    }
    let risk_at_fill = round_dp(mul_exact(decision.position_size, (fill - sl).abs()), 2);
    let limit = round_dp(risk.account_size * risk.max_risk_percent / 100.0, 2);
    let allowed = decision
        .risk_reward
        .map_or(limit, |rr| rr.risk_amount.max(limit));
    if risk_at_fill > allowed {
        return Err(FillRefusal::OverRisk {
            price: fill,
            risk: risk_at_fill,
            allowed,
            max_risk_percent: risk.max_risk_percent,
        });
    }
    Ok(fill)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::round_dp;

    #[test]
    fn buy_exits() {
        assert_eq!(
            exit_on_price(Side::Buy, 110.0, 105.0, 95.0),
            Some((Exit::TakeProfit, 105.0))
        );
        assert_eq!(
            exit_on_price(Side::Buy, 90.0, 105.0, 95.0),
            Some((Exit::StopLoss, 90.0))
        );
        assert_eq!(exit_on_price(Side::Buy, 100.0, 105.0, 95.0), None);
    }

    #[test]
    fn bar_exits_stop_loss_first() {
        use Exit::*;
        // BUY, TP 110, SL 95.
        assert_eq!(
            exit_in_bar(Side::Buy, 100.0, 108.0, 96.0, 110.0, 95.0),
            None
        );
        assert_eq!(
            exit_in_bar(Side::Buy, 100.0, 111.0, 96.0, 110.0, 95.0),
            Some((TakeProfit, 110.0))
        );
        assert_eq!(
            exit_in_bar(Side::Buy, 100.0, 104.0, 94.0, 110.0, 95.0),
            Some((StopLoss, 95.0))
        );
        // Both touched in one bar: the stop-loss counts.
        assert_eq!(
            exit_in_bar(Side::Buy, 100.0, 111.0, 94.0, 110.0, 95.0),
            Some((StopLoss, 95.0))
        );
        // A gap through the stop fills at the open.
        assert_eq!(
            exit_in_bar(Side::Buy, 93.0, 97.0, 92.0, 110.0, 95.0),
            Some((StopLoss, 93.0))
        );
        // SELL, TP 90, SL 105.
        assert_eq!(
            exit_in_bar(Side::Sell, 100.0, 106.0, 89.0, 90.0, 105.0),
            Some((StopLoss, 105.0))
        );
        assert_eq!(
            exit_in_bar(Side::Sell, 100.0, 101.0, 89.0, 90.0, 105.0),
            Some((TakeProfit, 90.0))
        );
        assert_eq!(
            exit_in_bar(Side::Sell, 100.0, 104.0, 91.0, 90.0, 105.0),
            None
        );
    }

    #[test]
    fn sell_exits_and_pnl() {
        assert_eq!(
            exit_on_price(Side::Sell, 94.0, 95.0, 105.0),
            Some((Exit::TakeProfit, 95.0))
        );
        assert_eq!(
            exit_on_price(Side::Sell, 105.0, 95.0, 105.0),
            Some((Exit::StopLoss, 105.0))
        );
        assert_eq!(pnl(Side::Sell, 2.0, 100.0, 95.0), 10.0);
        assert_eq!(pnl(Side::Buy, 2.0, 100.0, 95.0), -10.0);
    }

    #[test]
    fn pnl_is_exact_to_the_cent() {
        assert_eq!(round_dp(pnl(Side::Buy, 0.5, 100.01, 100.02), 2), 0.01);
        assert_eq!(round_dp(pnl(Side::Sell, 0.5, 100.02, 100.01), 2), 0.01);
    }

    #[test]
    fn unknown_stored_values_fail_loudly() {
        assert_eq!("pending".parse::<Status>(), Ok(Status::Pending));
        let e = "Pending".parse::<Status>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown decision status \"Pending\" in the store"
        );
        assert!("robot".parse::<Origin>().is_err());
        assert!("filled ".parse::<OrderStatus>().is_err());
        assert_eq!("unknown".parse::<OrderStatus>(), Ok(OrderStatus::Unknown));
    }
}
