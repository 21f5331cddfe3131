//! Execution behind one trait. An order carries a client order id (the decision's `log_id`);
//! the desk stores it as submitted before [`Broker::submit`] is called, and an outcome that is
//! not known is asked for again with [`Broker::lookup`], never sent twice.

pub mod paper;

pub use crate::domain::records::Order;

/// What the broker says of an order.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderUpdate {
    /// Filled (in whole): the broker's quantity and average price.
    Filled { quantity: f64, price: f64 },
    /// Refused, with the broker's reason.
    Rejected { reason: String },
    /// No answer that says what happened (a timeout, a lost connection): look it up later.
    Unknown { why: String },
    /// The broker has no order with that client order id: it never arrived.
    NotFound,
}

#[async_trait::async_trait]
pub trait Broker: Send + Sync {
    /// `paper`, or the broker's name.
    fn name(&self) -> &'static str;
    /// Send an order that is already stored as submitted: its client order id, symbol, side,
    /// quantity and the reference price the fill check passed it at.
    async fn submit(&self, order: &Order) -> OrderUpdate;
    /// What became of the order with this client order id.
    async fn lookup(&self, client_order_id: &str) -> OrderUpdate;
}
