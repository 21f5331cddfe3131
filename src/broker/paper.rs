//! Paper execution rules: when a price closes a position, at what price, and its P&L.
//!
//! A take-profit is a resting limit order: it fills at the take-profit price. A stop-loss
//! becomes a market order when touched: it fills at the price that crossed it, so a gap
//! through the stop costs what it would cost on a real venue.

use crate::domain::Action;

/// Whether `price` is at or beyond the take-profit or stop-loss of a position on `side`.
pub fn exit_reason(
    side: Action,
    price: f64,
    take_profit: f64,
    stop_loss: f64,
) -> Option<&'static str> {
    match side {
        Action::Buy if price <= stop_loss => Some("stop_loss"),
        Action::Buy if price >= take_profit => Some("take_profit"),
        Action::Sell if price >= stop_loss => Some("stop_loss"),
        Action::Sell if price <= take_profit => Some("take_profit"),
        _ => None,
    }
}

/// The exit and its fill price when `price` closes the position.
pub fn exit_on_price(
    side: Action,
    price: f64,
    take_profit: f64,
    stop_loss: f64,
) -> Option<(&'static str, f64)> {
    exit_reason(side, price, take_profit, stop_loss).map(|reason| match reason {
        "take_profit" => (reason, take_profit),
        _ => (reason, price),
    })
}

/// Profit or loss of `quantity` opened at `entry` and closed at `exit`.
pub fn pnl(side: Action, quantity: f64, entry: f64, exit: f64) -> f64 {
    match side {
        Action::Sell => quantity * (entry - exit),
        _ => quantity * (exit - entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buy_exits() {
        assert_eq!(
            exit_on_price(Action::Buy, 110.0, 105.0, 95.0),
            Some(("take_profit", 105.0))
        );
        assert_eq!(
            exit_on_price(Action::Buy, 90.0, 105.0, 95.0),
            Some(("stop_loss", 90.0))
        );
        assert_eq!(exit_on_price(Action::Buy, 100.0, 105.0, 95.0), None);
    }

    #[test]
    fn sell_exits_and_pnl() {
        assert_eq!(
            exit_on_price(Action::Sell, 94.0, 95.0, 105.0),
            Some(("take_profit", 95.0))
        );
        assert_eq!(
            exit_on_price(Action::Sell, 105.0, 95.0, 105.0),
            Some(("stop_loss", 105.0))
        );
        assert_eq!(pnl(Action::Sell, 2.0, 100.0, 95.0), 10.0);
        assert_eq!(pnl(Action::Buy, 2.0, 100.0, 95.0), -10.0);
    }
}
