//! The built-in paper broker: every order fills at once, in whole, at the price the fill
//! check passed it at. Its book is the store (positions and fills), so an order it never
//! answered for was never filled.

use super::{Broker, Order, OrderUpdate};

#[derive(Debug, Default, Clone, Copy)]
pub struct PaperBroker;

#[async_trait::async_trait]
impl Broker for PaperBroker {
    fn name(&self) -> &'static str {
        "paper"
    }

    async fn submit(&self, order: &Order) -> OrderUpdate {
        OrderUpdate::Filled {
            quantity: order.quantity,
            price: order.reference_price,
        }
    }

    async fn lookup(&self, _client_order_id: &str) -> OrderUpdate {
        // A fill is recorded in the same transaction that learns of it: an order still open
        // in the store after a restart never reached this broker.
        OrderUpdate::NotFound
    }
}
