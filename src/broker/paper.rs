//! The built-in paper broker: every order fills at once, in whole, at the price the fill
//! check passed it at. Its book is the store (positions and fills), so an order it never
//! answered for was never filled.

use super::{
    Account, Broker, BrokerError, BrokerExit, ExitsHeldBy, Holding, Intent, Order, OrderUpdate,
};

#[derive(Debug, Default, Clone, Copy)]
pub struct PaperBroker;

#[async_trait::async_trait]
impl Broker for PaperBroker {
    fn name(&self) -> &'static str {
        "paper"
    }

    fn is_ledger(&self) -> bool {
        true
    }

    fn exits_held_by(&self, _symbol: &str, _quantity: f64) -> ExitsHeldBy {
        ExitsHeldBy::Engine
    }

    async fn check(&self, _intent: &Intent<'_>) -> Result<(), String> {
        Ok(())
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

    async fn account(&self) -> Result<Option<Account>, BrokerError> {
        Ok(None)
    }

    async fn holdings(&self) -> Result<Option<Vec<Holding>>, BrokerError> {
        Ok(None)
    }

    async fn exit_fill(&self, _client_order_id: &str) -> Result<Option<BrokerExit>, BrokerError> {
        Ok(None)
    }
}
