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

/// The exit one bar (open, high, low) triggers for a position on `side`, and its fill price,
/// for replaying candles: a gap through a level at the open exits as [`exit_on_price`] does at
/// that price; inside the bar the stop-loss is checked before the take-profit, because a bar that
/// touches both cannot tell which came first and the conservative reading is the loss.
pub fn exit_in_bar(
    side: Action,
    open: f64,
    high: f64,
    low: f64,
    take_profit: f64,
    stop_loss: f64,
) -> Option<(&'static str, f64)> {
    if let Some(exit) = exit_on_price(side, open, take_profit, stop_loss) {
        return Some(exit);
    }
    let (adverse, favourable) = match side {
        Action::Sell => (high, low),
        _ => (low, high),
    };
    if exit_reason(side, adverse, take_profit, stop_loss) == Some("stop_loss") {
        return Some(("stop_loss", stop_loss));
    }
    if exit_reason(side, favourable, take_profit, stop_loss) == Some("take_profit") {
        return Some(("take_profit", take_profit));
    }
    None
}

/// Profit or loss of `quantity` opened at `entry` and closed at `exit`.
pub fn pnl(side: Action, quantity: f64, entry: f64, exit: f64) -> f64 {
    use crate::domain::rules::{mul_exact, sub_exact};
    // In decimal, so 0.5 × (100.02 − 100.01) is 0.005 and rounds to the cent as it should.
    match side {
        Action::Sell => mul_exact(quantity, sub_exact(entry, exit)),
        _ => mul_exact(quantity, sub_exact(exit, entry)),
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
    fn bar_exits_stop_loss_first() {
        // BUY, TP 110, SL 95.
        assert_eq!(
            exit_in_bar(Action::Buy, 100.0, 108.0, 96.0, 110.0, 95.0),
            None
        );
        assert_eq!(
            exit_in_bar(Action::Buy, 100.0, 111.0, 96.0, 110.0, 95.0),
            Some(("take_profit", 110.0))
        );
        assert_eq!(
            exit_in_bar(Action::Buy, 100.0, 104.0, 94.0, 110.0, 95.0),
            Some(("stop_loss", 95.0))
        );
        // Both touched in one bar: the stop-loss counts.
        assert_eq!(
            exit_in_bar(Action::Buy, 100.0, 111.0, 94.0, 110.0, 95.0),
            Some(("stop_loss", 95.0))
        );
        // A gap through the stop fills at the open.
        assert_eq!(
            exit_in_bar(Action::Buy, 93.0, 97.0, 92.0, 110.0, 95.0),
            Some(("stop_loss", 93.0))
        );
        // SELL, TP 90, SL 105.
        assert_eq!(
            exit_in_bar(Action::Sell, 100.0, 106.0, 89.0, 90.0, 105.0),
            Some(("stop_loss", 105.0))
        );
        assert_eq!(
            exit_in_bar(Action::Sell, 100.0, 101.0, 89.0, 90.0, 105.0),
            Some(("take_profit", 90.0))
        );
        assert_eq!(
            exit_in_bar(Action::Sell, 100.0, 104.0, 91.0, 90.0, 105.0),
            None
        );
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

    #[test]
    fn pnl_is_exact_to_the_cent() {
        use crate::domain::rules::round_dp;
        assert_eq!(round_dp(pnl(Action::Buy, 0.5, 100.01, 100.02), 2), 0.01);
        assert_eq!(round_dp(pnl(Action::Sell, 0.5, 100.02, 100.01), 2), 0.01);
    }
}
