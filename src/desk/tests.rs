//! The desk on a real SQLite file: the lifecycle of a decision, its order and its position.

use super::*;
use crate::broker::OrderUpdate;
use crate::domain::lifecycle::{OrderStatus, Status};
use crate::domain::money::round_dp;
use crate::store::Order;
use crate::store::Position;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Mutex;

struct Fixture {
    dir: tempfile::TempDir,
    desk: Desk,
}

impl Fixture {
    fn new(extra: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::parse_str(
            &format!(
                "[auto_trade]\nsymbols = [\"BTC/USD\", \"ETH/USD\"]\npending_expiry_minutes = 10\n{extra}"
            ),
            "test",
        )
        .unwrap();
        let store = Store::open(dir.path(), "u", true).unwrap();
        let desk = Desk::new(Arc::new(config), dir.path().into(), Arc::new(store));
        Fixture { dir, desk }
    }

    /// Another connection to the same file, for what only a crash or a clock could do.
    fn sql(&self, sql: &str) {
        let c = rusqlite::Connection::open(self.dir.path().join(crate::store::DB_FILE)).unwrap();
        c.execute_batch(sql).unwrap();
    }

    /// Why a confirm of `log_id` is refused.
    async fn confirm_err(&self, log_id: &str) -> String {
        self.desk.confirm(log_id).await.unwrap_err().to_string()
    }

    fn status(&self, log_id: &str) -> Status {
        self.desk.store.decision(log_id).unwrap().unwrap().status
    }

    async fn cycle(&self, symbol: &str, price: f64) -> CycleOutcome {
        let mut out = self
            .desk
            .record_cycle(vec![input(symbol, price)])
            .await
            .unwrap();
        out.remove(0)
    }
}

fn input(symbol: &str, entry: f64) -> OwnedCycleInput {
    OwnedCycleInput {
        symbol: symbol.into(),
        signal: Ok(
            json!({"direction": "bullish", "confidence": 0.9, "entry_price": entry,
                  "take_profit": entry * 1.05, "stop_loss": entry * 0.98, "risk_reward_ratio": 2.5}),
        ),
        phase: Ok(json!({"phase": "accumulation", "confidence": 0.8, "indicators": {}})),
        price: Some(entry),
    }
}

/// A broker that answers from a script and, at each send, records whether the store already
/// held the order as submitted.
struct ScriptedBroker {
    store: Arc<Store>,
    answers: Mutex<VecDeque<OrderUpdate>>,
    lookups: Mutex<VecDeque<OrderUpdate>>,
    sent: Mutex<Vec<(Order, Option<OrderStatus>)>>,
}

#[async_trait::async_trait]
impl crate::broker::Broker for ScriptedBroker {
    fn name(&self) -> &'static str {
        "scripted"
    }
    async fn submit(&self, order: &Order) -> OrderUpdate {
        let stored = self
            .store
            .read(|t| t.order(&order.client_order_id))
            .unwrap()
            .map(|o| o.status);
        self.sent.lock().unwrap().push((order.clone(), stored));
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(OrderUpdate::Filled {
                quantity: order.quantity,
                price: order.reference_price,
            })
    }
    async fn lookup(&self, _id: &str) -> OrderUpdate {
        self.lookups
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(OrderUpdate::NotFound)
    }
    fn exits_held_by(&self, _symbol: &str, _quantity: f64) -> crate::broker::ExitsHeldBy {
        crate::broker::ExitsHeldBy::Engine
    }
    async fn check(&self, _intent: &crate::broker::Intent<'_>) -> std::result::Result<(), String> {
        Ok(())
    }
    async fn account(
        &self,
    ) -> std::result::Result<Option<crate::broker::Account>, crate::broker::BrokerError> {
        Ok(None)
    }
    async fn holdings(
        &self,
    ) -> std::result::Result<Option<Vec<crate::broker::Holding>>, crate::broker::BrokerError> {
        Ok(None)
    }
    async fn exit_fill(
        &self,
        _id: &str,
    ) -> std::result::Result<Option<crate::broker::BrokerExit>, crate::broker::BrokerError> {
        Ok(None)
    }
}

fn scripted(
    f: &Fixture,
    answers: Vec<OrderUpdate>,
    lookups: Vec<OrderUpdate>,
) -> (Desk, Arc<ScriptedBroker>) {
    let broker = Arc::new(ScriptedBroker {
        store: f.desk.store.clone(),
        answers: Mutex::new(answers.into()),
        lookups: Mutex::new(lookups.into()),
        sent: Mutex::default(),
    });
    (f.desk.clone().with_broker(broker.clone()), broker)
}

fn open_positions(d: &Desk) -> Vec<Position> {
    d.store.open_positions().unwrap()
}

#[tokio::test]
async fn pending_then_confirm_then_second_confirm_refused() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    assert_eq!(out.log.status, Status::Pending);
    let (log, pos) = f.desk.confirm(&out.log.log_id).await.unwrap();
    assert_eq!(log.status, Status::Executed);
    assert_eq!(pos.entry_price, 100.0);
    let err = f.confirm_err(&out.log.log_id).await;
    assert!(err.contains("not pending"), "{err}");
    assert_eq!(open_positions(&f.desk).len(), 1);
    // The execution went through one order, filled, whose client order id is the log id.
    let orders = f.desk.store.orders(10).unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].client_order_id, out.log.log_id);
    assert_eq!(orders[0].status, OrderStatus::Filled);
    assert_eq!(orders[0].broker, "paper");
}

#[tokio::test]
async fn cancel_then_confirm_refused_and_unknown_id() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    f.desk.cancel(&out.log.log_id, "by trader").unwrap();
    assert!(f.desk.confirm(&out.log.log_id).await.is_err());
    assert!(f.desk.cancel(&out.log.log_id, "again").is_err());
    assert!(matches!(
        f.desk.confirm("decision_000000000000").await,
        Err(DeskError::UnknownDecision(_))
    ));
    assert!(open_positions(&f.desk).is_empty());
}

#[tokio::test]
async fn second_cycle_does_not_requeue_a_pending_symbol() {
    let f = Fixture::new("");
    f.cycle("BTC/USD", 100.0).await;
    let second = f.cycle("BTC/USD", 100.0).await;
    assert_eq!(second.log.status, Status::Hold);
    assert!(second.log.decision.reasoning.contains("pending"));
}

#[tokio::test]
async fn auto_execution_respects_max_open_positions() {
    let f = Fixture::new("require_confirmation = false\nmax_open_positions = 1\n");
    let out = f
        .desk
        .record_cycle(vec![input("BTC/USD", 100.0), input("ETH/USD", 50.0)])
        .await
        .unwrap();
    assert_eq!(out[0].log.status, Status::Executed);
    assert!(out[0].executed.is_some());
    assert_eq!(out[1].log.status, Status::Hold);
    assert!(out[1].log.decision.reasoning.contains("max_open_positions"));
}

#[tokio::test]
async fn price_crossing_take_profit_closes_with_pnl() {
    let f = Fixture::new("require_confirmation = false\n");
    let out = f.cycle("BTC/USD", 100.0).await;
    let pos = out.executed.unwrap();
    let closed = f.desk.record_prices(&[("BTC/USD".into(), 106.0)]).unwrap();
    assert_eq!(closed.len(), 1);
    let expected = round_dp(pos.quantity * (105.0 - 100.0), 2);
    assert_eq!(closed[0].realized_pnl, Some(expected));
    assert_eq!(f.desk.store.realized_pnl().unwrap(), expected);
    assert!(open_positions(&f.desk).is_empty());
}

#[tokio::test]
async fn kill_cancels_pending_and_blocks_until_enable() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    assert_eq!(f.desk.kill().unwrap(), 1);
    assert_eq!(f.status(&out.log.log_id), Status::Cancelled);
    let after = f.cycle("ETH/USD", 100.0).await;
    assert_eq!(after.log.status, Status::Hold);
    assert!(after.log.decision.reasoning.contains("kill switch"));
    f.desk.set_enabled(true).unwrap();
    assert_eq!(f.cycle("ETH/USD", 100.0).await.log.status, Status::Pending);
}

#[tokio::test]
async fn expired_decision_is_refused() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    f.sql("UPDATE decisions SET created_at = created_at - 3600000");
    let err = f.confirm_err(&out.log.log_id).await;
    assert!(err.contains("expired"), "{err}");
    assert_eq!(f.status(&out.log.log_id), Status::Expired);
}

#[tokio::test]
async fn confirm_refused_when_price_moved_past_stop() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    f.desk.record_prices(&[("BTC/USD".into(), 97.0)]).unwrap();
    let err = f.confirm_err(&out.log.log_id).await;
    assert!(err.contains("moved past"), "{err}");
    assert!(open_positions(&f.desk).is_empty());
}

#[tokio::test]
async fn decision_json_has_the_spec_shape() {
    let f = Fixture::new("");
    let j = f.cycle("BTC/USD", 100.0).await.log.to_json();
    assert!(j["log_id"].as_str().unwrap().starts_with("decision_"));
    assert_eq!(j["status"], "pending");
    assert_eq!(j["executed"], false);
    assert_eq!(j["mode"], "paper");
    assert_eq!(j["decision"]["action"], "BUY");
    assert_eq!(j["decision"]["amd_phase"], "accumulation");
    assert!(j["risk_reward"]["risk_amount"].is_number());
    assert!(j["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn recovery_marks_an_executed_decision_without_a_position_failed() {
    let f = Fixture::new("");
    let ok = f.cycle("BTC/USD", 100.0).await;
    f.desk.confirm(&ok.log.log_id).await.unwrap();
    let broken = f.cycle("ETH/USD", 100.0).await;
    f.sql(&format!(
        "UPDATE decisions SET status = 'executed' WHERE log_id = '{}'",
        broken.log.log_id
    ));
    let found = f.desk.recover().await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains(&broken.log.log_id));
    assert_eq!(f.status(&broken.log.log_id), Status::Failed);
    assert_eq!(f.status(&ok.log.log_id), Status::Executed);
    assert!(f.desk.recover().await.unwrap().is_empty());
    assert_eq!(f.desk.store.integrity_check().unwrap(), "ok");
}

#[tokio::test]
async fn latest_per_symbol_returns_each_symbols_newest_decision() {
    let f = Fixture::new("");
    let mut newest = std::collections::BTreeMap::new();
    for round in 0..3 {
        for sym in ["BTC/USD", "ETH/USD", "SOL/USD"] {
            let out = f.cycle(sym, 100.0 + round as f64).await;
            newest.insert(sym.to_string(), out.log.log_id);
        }
    }
    let latest = f.desk.store.latest_per_symbol().unwrap();
    assert_eq!(latest.len(), 3);
    for log in &latest {
        assert_eq!(newest[&log.decision.symbol], log.log_id);
    }
    assert_eq!(latest[0].decision.symbol, "SOL/USD", "newest first");
}

#[tokio::test]
async fn no_fill_on_a_stale_price() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    // The price stopped updating long ago (an outage), though the decision is fresh.
    f.sql("UPDATE prices SET at = at - 3600000");
    let err = f.confirm_err(&out.log.log_id).await;
    assert!(err.contains("stale price"), "{err}");
    assert!(open_positions(&f.desk).is_empty());
    assert_eq!(f.status(&out.log.log_id), Status::Pending);
    assert!(
        f.desk.store.orders(10).unwrap().is_empty(),
        "no order was stored"
    );
}

#[tokio::test]
async fn reads_inside_read_consistent_see_one_moment() {
    let f = Fixture::new("");
    let reader = Store::open(f.dir.path(), "u", true).unwrap();
    f.cycle("BTC/USD", 100.0).await;
    let writer = f.desk.clone();
    let handle = tokio::runtime::Handle::current();
    let (before, during) = tokio::task::spawn_blocking(move || {
        reader
            .read_consistent(|| -> crate::store::Result<(usize, usize)> {
                let before = reader.count_decisions(None)?;
                handle
                    .block_on(writer.record_cycle(vec![input("ETH/USD", 100.0)]))
                    .unwrap();
                Ok((before, reader.count_decisions(None)?))
            })
            .map(|r| (r, reader.count_decisions(None).unwrap()))
    })
    .await
    .unwrap()
    .map(|((b, d), after)| {
        assert_eq!(after, 2, "and is seen afterwards");
        (b, d)
    })
    .unwrap();
    assert_eq!((before, during), (1, 1), "a commit in between is not seen");
}

#[tokio::test]
async fn no_fill_that_would_risk_more_than_the_limit() {
    let f = Fixture::new("[account]\nmax_position_percent = 100\n");
    // BUY at 100, SL 98, TP 105: 1.5 % of 10,000 is 150 at risk, so 75 units.
    let out = f.cycle("BTC/USD", 100.0).await;
    assert_eq!(out.log.decision.position_size, 75.0);
    // Price runs up towards the TP: from 104.9 the stop is 6.9 away, 517.50 at risk.
    f.desk.record_prices(&[("BTC/USD".into(), 104.9)]).unwrap();
    let err = f.confirm_err(&out.log.log_id).await;
    assert!(
        err.contains("would risk 517.50, over the 150.00 allowed"),
        "{err}"
    );
    assert!(open_positions(&f.desk).is_empty());
    assert_eq!(f.status(&out.log.log_id), Status::Pending);
    // Back at the entry it fills.
    f.desk.record_prices(&[("BTC/USD".into(), 100.0)]).unwrap();
    f.desk.confirm(&out.log.log_id).await.unwrap();
}

#[tokio::test]
async fn the_order_is_stored_as_submitted_before_the_broker_is_asked() {
    let f = Fixture::new("");
    let (desk, broker) = scripted(&f, vec![], vec![]);
    let out = f.cycle("BTC/USD", 100.0).await;
    let (log, pos) = desk.confirm(&out.log.log_id).await.unwrap();
    let sent = broker.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.client_order_id, out.log.log_id);
    assert_eq!(
        sent[0].1,
        Some(OrderStatus::Submitted),
        "stored before sent"
    );
    assert_eq!(log.status, Status::Executed);
    assert_eq!(pos.quantity, out.log.decision.position_size);
}

#[tokio::test]
async fn the_brokers_fill_is_the_positions_quantity_and_price() {
    let f = Fixture::new("");
    let (desk, _) = scripted(
        &f,
        vec![OrderUpdate::Filled {
            quantity: 1.5,
            price: 100.25,
        }],
        vec![],
    );
    let out = f.cycle("BTC/USD", 100.0).await;
    let (log, pos) = desk.confirm(&out.log.log_id).await.unwrap();
    assert_eq!((pos.quantity, pos.entry_price), (1.5, 100.25));
    assert_eq!(
        log.status_reason.as_deref(),
        Some("filled at 100.250 (paper)")
    );
}

#[tokio::test]
async fn a_rejected_order_leaves_the_decision_failed_with_the_brokers_reason() {
    let f = Fixture::new("");
    let (desk, _) = scripted(
        &f,
        vec![OrderUpdate::Rejected {
            reason: "insufficient buying power".into(),
        }],
        vec![],
    );
    let out = f.cycle("BTC/USD", 100.0).await;
    let err = desk.confirm(&out.log.log_id).await.unwrap_err().to_string();
    assert!(err.contains("insufficient buying power"), "{err}");
    let log = desk.store.decision(&out.log.log_id).unwrap().unwrap();
    assert_eq!(log.status, Status::Failed);
    assert!(
        log.status_reason
            .unwrap()
            .contains("rejected by the scripted broker: insufficient buying power")
    );
    assert!(open_positions(&desk).is_empty());
    assert_eq!(
        desk.store.orders(1).unwrap()[0].status,
        OrderStatus::Rejected
    );
}

#[tokio::test]
async fn a_lost_answer_is_looked_up_never_sent_again() {
    let f = Fixture::new("");
    let (desk, broker) = scripted(
        &f,
        vec![OrderUpdate::Unknown {
            why: "timed out after 10s".into(),
        }],
        vec![OrderUpdate::Filled {
            quantity: 1.0,
            price: 100.5,
        }],
    );
    let out = f.cycle("BTC/USD", 100.0).await;
    let id = &out.log.log_id;
    let err = desk.confirm(id).await.unwrap_err().to_string();
    assert!(err.contains("never sent again"), "{err}");
    assert_eq!(
        desk.store.orders(1).unwrap()[0].status,
        OrderStatus::Unknown
    );
    // Neither a second confirm, nor a cancel, nor the kill switch, nor expiry touches it.
    let again = desk.confirm(id).await.unwrap_err().to_string();
    assert!(
        again.contains("is executing (its order is unknown at the scripted broker), not pending"),
        "{again}"
    );
    assert!(desk.cancel(id, "x").is_err());
    f.sql("UPDATE decisions SET created_at = created_at - 3600000");
    assert_eq!(desk.expire_stale().unwrap(), 0);
    assert_eq!(desk.kill().unwrap(), 0);
    // The gates count it: no second decision on the symbol, and it counts as a position.
    assert_eq!(
        desk.store
            .read(|t| t.gates("ETH/USD", 3))
            .unwrap()
            .open_positions,
        1
    );
    // The next look-up learns the fill.
    let found = desk.resolve_open_orders().await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let log = desk.store.decision(id).unwrap().unwrap();
    assert_eq!(log.status, Status::Executed);
    assert_eq!(open_positions(&desk)[0].entry_price, 100.5);
    assert_eq!(broker.sent.lock().unwrap().len(), 1, "sent exactly once");
    assert!(desk.resolve_open_orders().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_order_left_submitted_by_a_crash_is_looked_up_after_the_grace() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    let id = out.log.log_id.clone();
    // A crash between storing the order and hearing back: the order is submitted, nothing else.
    f.desk
        .store
        .write(|t| {
            t.insert_order(&crate::store::NewOrder {
                client_order_id: &id,
                kind: crate::domain::lifecycle::OrderKind::Open,
                reason: None,
                decision_id: &id,
                broker: "paper",
                symbol: "BTC/USD",
                side: crate::domain::Side::Buy,
                quantity: 1.0,
                reference_price: 100.0,
                take_profit: 105.0,
                stop_loss: 98.0,
                exits_held_by: None,
            })
        })
        .unwrap();
    // Within the grace it may still be in flight: left alone.
    assert!(f.desk.recover().await.unwrap().is_empty());
    f.sql("UPDATE orders SET updated_at = updated_at - 120000");
    let found = f.desk.recover().await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("never sent"), "{found:?}");
    let log = f.desk.store.decision(&id).unwrap().unwrap();
    assert_eq!(log.status, Status::Failed);
    assert!(open_positions(&f.desk).is_empty());
}

#[tokio::test]
async fn an_unknown_stored_status_fails_loudly() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    f.sql(&format!(
        "UPDATE decisions SET status = 'Pending' WHERE log_id = '{}'",
        out.log.log_id
    ));
    let err = f.desk.store.decisions(10, None).unwrap_err().to_string();
    assert!(err.contains("unknown decision status \"Pending\""), "{err}");
    f.sql("UPDATE decisions SET status = 'pending', origin = 'robot'");
    let err = f.desk.store.decisions(10, None).unwrap_err().to_string();
    assert!(err.contains("unknown decision origin \"robot\""), "{err}");
}

#[tokio::test]
async fn history_finds_closed_trades_and_events_by_any_part_in_any_case() {
    let f = Fixture::new("require_confirmation = false\n");
    f.cycle("BTC/USD", 100.0).await.executed.unwrap();
    f.desk.record_prices(&[("BTC/USD".into(), 106.0)]).unwrap();
    f.cycle("ETH/USD", 50.0).await.executed.unwrap();
    f.desk.record_prices(&[("ETH/USD".into(), 40.0)]).unwrap();
    f.sql("UPDATE positions SET close_reason = 'closed by trader: 100% done' WHERE symbol = 'ETH/USD'");

    let all = f.desk.history("").unwrap();
    assert_eq!(all.closed_total, 2);
    assert_eq!(all.closed[0].symbol, "ETH/USD", "newest first");
    assert_eq!(all.events_total, all.events.len());
    assert!(all.events.len() >= 4, "{:?}", all.events);

    let btc = f.desk.history("btc").unwrap();
    assert_eq!(btc.query, "btc");
    assert_eq!(btc.closed.len(), 1);
    assert_eq!(btc.closed[0].symbol, "BTC/USD");
    assert!(btc.events.iter().all(|e| e.message.contains("BTC")));
    assert!(!btc.events.is_empty());
    // The close reason is searched too; `%` and `_` are themselves, not wildcards.
    let by_reason = f.desk.history("100% done").unwrap();
    assert_eq!(by_reason.closed.len(), 1);
    assert_eq!(by_reason.closed[0].symbol, "ETH/USD");
    assert_eq!(f.desk.history("1%0").unwrap().closed_total, 0);
    assert_eq!(f.desk.history("B_C").unwrap().events_total, 0);
    assert!(f.desk.history("btc").unwrap().events_total > 0);
}

// ---------------------------------------------------------------- a live feed's ticks

const FEED: &str = "[ml_engine]\nurl = \"http://127.0.0.1:9\"\n[market_data]\nprovider = \"coinbase\"\nstale_after_seconds = 5\n";

fn tick(symbol: &str, last: f64, bid: f64, ask: f64, age_ms: i64) -> crate::market::Tick {
    crate::market::Tick {
        symbol: symbol.into(),
        last: Some(last),
        bid: Some(bid),
        ask: Some(ask),
        at_ms: crate::store::now_ms() - age_ms,
    }
}

#[tokio::test]
async fn a_stop_loss_fires_on_the_tick_that_crosses_it_at_the_bid() {
    let f = Fixture::new(&format!("require_confirmation = false\n{FEED}"));
    // No live price yet: nothing is executed without one.
    let out = f.cycle("BTC/USD", 100.0).await;
    assert!(out.executed.is_none());
    assert!(
        f.confirm_err(&out.log.log_id)
            .await
            .contains("no live BTC/USD price yet")
    );
    f.desk
        .record_ticks(&[tick("BTC/USD", 100.0, 99.99, 100.0, 0)])
        .unwrap();
    let (_, pos) = f.desk.confirm(&out.log.log_id).await.unwrap();
    assert_eq!(pos.stop_loss, 98.0);
    // The last trade is above the stop, but a long sells at the bid, which is below it.
    let closed = f
        .desk
        .record_ticks(&[tick("BTC/USD", 98.2, 97.9, 98.3, 0)])
        .unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].close_reason.as_deref(), Some("stop_loss"));
    let p = f.desk.store.prices().unwrap()["BTC/USD"];
    assert_eq!((p.price, p.bid, p.ask), (98.2, Some(97.9), Some(98.3)));
}

#[tokio::test]
async fn a_stale_tick_is_a_price_but_fires_nothing_and_an_older_one_is_dropped() {
    let f = Fixture::new(FEED);
    let out = f.cycle("BTC/USD", 100.0).await;
    f.desk
        .record_ticks(&[tick("BTC/USD", 100.0, 99.99, 100.0, 8_000)])
        .unwrap();
    f.sql("UPDATE prices SET at = at + 8000");
    f.desk.confirm(&out.log.log_id).await.unwrap();
    f.sql("UPDATE prices SET at = at - 8000");
    let closed = f
        .desk
        .record_ticks(&[tick("BTC/USD", 90.0, 89.9, 90.1, 6_000)])
        .unwrap();
    assert!(closed.is_empty(), "no stop-loss on a price 6 s old");
    assert_eq!(open_positions(&f.desk).len(), 1);
    assert_eq!(f.desk.store.prices().unwrap()["BTC/USD"].price, 90.0);
    // Out of order: a tick older than the stored price changes nothing.
    f.desk
        .record_ticks(&[tick("BTC/USD", 80.0, 79.9, 80.1, 60_000)])
        .unwrap();
    assert_eq!(f.desk.store.prices().unwrap()["BTC/USD"].price, 90.0);
    // Bad ticks are skipped, not stored and not a failure.
    f.desk
        .record_ticks(&[crate::market::Tick {
            symbol: "BTC/USD".into(),
            last: Some(f64::NAN),
            bid: None,
            ask: None,
            at_ms: crate::store::now_ms(),
        }])
        .unwrap();
    assert_eq!(f.desk.store.prices().unwrap()["BTC/USD"].price, 90.0);
}

#[tokio::test]
async fn a_buy_fills_at_the_ask_and_not_on_a_price_older_than_stale_after() {
    let f = Fixture::new(FEED);
    let out = f.cycle("BTC/USD", 100.0).await;
    // Two seconds old, spread 99.9 / 100.1: the buy is sent at the ask.
    f.desk
        .record_ticks(&[tick("BTC/USD", 100.0, 99.9, 100.1, 2_000)])
        .unwrap();
    let (_, pos) = f.desk.confirm(&out.log.log_id).await.unwrap();
    assert_eq!(pos.entry_price, 100.1);
    assert_eq!(f.desk.store.orders(1).unwrap()[0].reference_price, 100.1);

    // Another decision; the feed then goes quiet for longer than stale_after (5 s), though
    // far less than the pending expiry: confirm refuses.
    let out = f.cycle("ETH/USD", 50.0).await;
    f.desk
        .record_ticks(&[tick("ETH/USD", 50.0, 49.9, 50.1, 0)])
        .unwrap();
    f.sql("UPDATE prices SET at = at - 6000 WHERE symbol = 'ETH/USD'");
    let err = f.confirm_err(&out.log.log_id).await;
    assert!(err.contains("6s old; no fill on a stale price"), "{err}");
    assert_eq!(f.status(&out.log.log_id), Status::Pending);
}

#[tokio::test]
async fn with_a_feed_a_decision_is_sized_at_the_live_ask_and_keeps_the_ml_signal() {
    let f = Fixture::new(FEED);
    f.desk
        .record_ticks(&[tick("BTC/USD", 100.4, 100.3, 100.5, 0)])
        .unwrap();
    let out = f.cycle("BTC/USD", 100.0).await;
    let d = &out.log.decision;
    assert_eq!(d.entry_price, Some(100.5), "the live ask");
    assert_eq!(
        d.ml_signal["entry_price"], 100.0,
        "the engine's signal as it came"
    );
    assert!(
        d.reasoning
            .ends_with("sized at the live ask 100.500 (ML entry 100.000)"),
        "{}",
        d.reasoning
    );
    // Sized on the ask: the risk at the fill is within the limit, so it fills.
    let want = crate::domain::rules::size_position(&f.desk.config.risk(), 100.5, 98.0).quantity;
    assert_eq!(d.position_size, want);
    let (_, pos) = f.desk.confirm(&out.log.log_id).await.unwrap();
    assert_eq!(pos.entry_price, 100.5);
}

#[tokio::test]
async fn a_feed_that_stays_down_is_said_once_and_its_return_once() {
    use crate::market::FeedState;
    let f = Fixture::new(FEED);
    let events = |d: &Desk| -> Vec<String> {
        d.store
            .recent_events(50)
            .unwrap()
            .into_iter()
            .rev()
            .map(|e| e.message)
            .filter(|m| m.contains("market data"))
            .collect()
    };
    let down = || FeedState::Down {
        why: "cannot connect".into(),
    };
    let polling = || FeedState::Polling {
        every: std::time::Duration::from_secs(2),
        why: "the stream dropped 3 times in a row".into(),
    };
    for s in [
        FeedState::Connecting,
        FeedState::Streaming,
        FeedState::Connecting,
        FeedState::Streaming,
        polling(),
        down(),
        polling(),
        down(),
        FeedState::Connecting,
        polling(),
        down(),
        FeedState::Connecting,
        FeedState::Streaming,
        FeedState::Streaming,
    ] {
        f.desk.note_feed_state("coinbase", &s).unwrap();
    }
    assert_eq!(
        events(&f.desk),
        [
            "coinbase market data polling: the stream dropped 3 times in a row",
            "coinbase market data down: cannot connect",
            "coinbase market data back: streaming",
        ]
    );
    let h = f.desk.store.read(|t| t.feed_health()).unwrap().unwrap();
    assert_eq!(h.state, "streaming");
}

#[tokio::test]
async fn with_a_feed_a_close_sells_a_long_at_the_bid_and_never_on_a_stale_price() {
    let f = Fixture::new(FEED);
    let out = f.cycle("BTC/USD", 100.0).await;
    f.desk
        .record_ticks(&[tick("BTC/USD", 100.0, 99.9, 100.1, 0)])
        .unwrap();
    f.desk.confirm(&out.log.log_id).await.unwrap();
    f.desk
        .record_ticks(&[tick("BTC/USD", 101.0, 100.8, 101.2, 0)])
        .unwrap();
    // Stale: refused, the position stays open.
    f.sql("UPDATE prices SET at = at - 6000");
    let err = f.desk.close("BTC/USD", None, "by hand").await.unwrap_err();
    assert!(
        err.to_string().contains("no close on a stale price"),
        "{err}"
    );
    assert_eq!(open_positions(&f.desk).len(), 1);
    f.sql("UPDATE prices SET at = at + 6000");
    let closed = f.desk.close("BTC/USD", None, "by hand").await.unwrap();
    assert_eq!(closed.exit_price, Some(100.8), "a long sells at the bid");
    // The source (an ML engine that cannot be reached here) wrote no price of its own.
    assert_eq!(f.desk.store.prices().unwrap()["BTC/USD"].price, 101.0);
}

#[tokio::test]
async fn a_trade_tick_keeps_the_last_fresh_quote_and_a_stale_quote_is_dropped() {
    let f = Fixture::new(FEED);
    let quote = |bid: f64, ask: f64, age_ms: i64| crate::market::Tick {
        symbol: "BTC/USD".into(),
        last: None,
        bid: Some(bid),
        ask: Some(ask),
        at_ms: crate::store::now_ms() - age_ms,
    };
    let trade = |last: f64| crate::market::Tick {
        symbol: "BTC/USD".into(),
        last: Some(last),
        bid: None,
        ask: None,
        at_ms: crate::store::now_ms(),
    };
    f.desk.record_ticks(&[quote(99.9, 100.1, 0)]).unwrap();
    let p = f.desk.store.prices().unwrap()["BTC/USD"];
    assert_eq!(
        (p.price, p.bid, p.ask),
        (100.0, Some(99.9), Some(100.1)),
        "a quote marks at its middle"
    );
    f.desk.record_ticks(&[trade(100.05)]).unwrap();
    let p = f.desk.store.prices().unwrap()["BTC/USD"];
    assert_eq!((p.price, p.bid, p.ask), (100.05, Some(99.9), Some(100.1)));
    // A quote older than stale_after is not carried into a new trade.
    f.sql("UPDATE prices SET at = at - 6000");
    f.desk.record_ticks(&[trade(100.2)]).unwrap();
    let p = f.desk.store.prices().unwrap()["BTC/USD"];
    assert_eq!((p.price, p.bid, p.ask), (100.2, None, None));
}

/// `n` resolved outcomes of the analyzer at `score`, `wins` of them winners (+2 R, else −1 R).
fn scored(f: &Fixture, score: f64, n: usize, wins: usize) {
    for i in 0..n {
        let r = if i < wins { 2.0 } else { -1.0 };
        f.sql(&format!(
            "INSERT INTO outcomes (decision_id, user_id, symbol, side, source, score, entry_price,
                take_profit, stop_loss, started_at, state, r_multiple)
             VALUES ('past_{score}_{i}', 'u', 'BTC/USD', 'BUY', 'analyzer', {score}, 100, 110, 95, 0,
                '{}', {r})",
            if r > 0.0 { "take_profit" } else { "stop_loss" }
        ));
    }
}

#[tokio::test]
async fn calibrated_confidence_gates_on_the_win_rate_the_source_earned_and_keeps_the_raw_score() {
    // Scores of 0.855 won 12 of 30, scores of 0.6 won 9 of 30: the map says 0.4 and 0.3.
    let f = Fixture::new("calibrated_confidence = true\nmin_confidence = 0.35");
    scored(&f, 0.855, 30, 12);
    scored(&f, 0.6, 30, 9);
    let out = f.cycle("BTC/USD", 100.0).await;
    let d = &out.log.decision;
    assert_eq!(d.action, crate::domain::Verdict::Buy, "{}", d.reasoning);
    assert_eq!((d.confidence, d.raw_confidence), (0.4, Some(0.855)));
    assert!(
        d.reasoning
            .contains("calibrated confidence 0.4000 (raw score 0.8550)"),
        "{}",
        d.reasoning
    );
    // Stored as shown, and followed at its raw score (what a map is fitted to).
    let json = f
        .desk
        .store
        .decision(&out.log.log_id)
        .unwrap()
        .unwrap()
        .to_json();
    assert_eq!(json["decision"]["raw_confidence"], 0.855);
    assert_eq!(json["decision"]["confidence"], 0.4);
    let scores = f
        .desk
        .store
        .read(|tx| tx.scored_outcomes("analyzer"))
        .unwrap();
    let map = crate::analytics::calibration_for(&scores).unwrap();
    assert_eq!(
        map.steps.iter().map(|s| s.probability).collect::<Vec<_>>(),
        [0.3, 0.4]
    );
    let open = f.desk.store.read(|tx| tx.open_outcomes(None)).unwrap();
    assert_eq!((open.len(), open[0].score), (1, 0.855));

    // A threshold above what the source has earned turns the same signal into a HOLD.
    let strict = Fixture::new("calibrated_confidence = true\nmin_confidence = 0.75");
    scored(&strict, 0.855, 30, 12);
    scored(&strict, 0.6, 30, 9);
    let held = strict.cycle("BTC/USD", 100.0).await.log.decision;
    assert_eq!(held.action, crate::domain::Verdict::Hold);
    assert!(
        held.reasoning.contains(
            "BUY calibrated confidence 0.4000 (raw score 0.8550) is below min_confidence 0.7500"
        ),
        "{}",
        held.reasoning
    );
}

#[tokio::test]
async fn calibration_waits_for_enough_outcomes_and_the_raw_score_stands_until_then() {
    let f = Fixture::new("calibrated_confidence = true");
    scored(&f, 0.855, 49, 20);
    let d = f.cycle("BTC/USD", 100.0).await.log.decision;
    assert_eq!((d.confidence, d.raw_confidence), (0.855, None));
    assert!(d.reasoning.contains("score 0.8550"), "{}", d.reasoning);
}

#[tokio::test]
async fn feed_ticks_follow_a_cancelled_decision_at_the_bid_and_a_batch_is_read_in_order() {
    let f = Fixture::new(FEED);
    // A BUY at 100 (TP 105, SL 98), cancelled: it is followed all the same.
    let out = f.cycle("BTC/USD", 100.0).await;
    f.desk.cancel(&out.log.log_id, "test").unwrap();
    let state = |f: &Fixture| {
        let r = f.desk.report(None).unwrap();
        (
            r.veto.cancelled.open,
            r.veto.cancelled.take_profit,
            r.veto.cancelled.stop_loss,
            r.veto.cancelled.total_r,
        )
    };
    // A tick from before the decision is no step; one inside the levels leaves it open.
    f.desk
        .record_ticks(&[
            tick("BTC/USD", 90.0, 89.9, 90.1, 60_000),
            tick("BTC/USD", 101.0, 100.9, 101.1, 0),
        ])
        .unwrap();
    assert_eq!(state(&f), (1, 0, 0, 0.0));
    // One batch: the bid reaches the take-profit before a later tick falls through the stop.
    // The last trade 105.2 would do, but a long is judged at the bid, 104.9: not yet. Then 105.1.
    f.desk
        .record_ticks(&[
            tick("BTC/USD", 105.2, 104.9, 105.3, 0),
            tick("BTC/USD", 105.3, 105.1, 105.4, 0),
            tick("BTC/USD", 97.0, 96.9, 97.1, 0),
        ])
        .unwrap();
    // Judged at the take-profit (a limit): (105 − 100) / 2 = 2.5 R.
    assert_eq!(state(&f), (0, 1, 0, 2.5));
}

/// A cycle in which every symbol's source failed, or none did.
fn checked(down: bool) -> Vec<OwnedCycleInput> {
    ["BTC/USD", "ETH/USD"]
        .into_iter()
        .map(|s| {
            let mut i = input(s, 100.0);
            if down {
                i.signal = Err(format!("GET /signals/{s}: HTTP 503"));
            }
            i
        })
        .collect()
}

fn outage_events(desk: &Desk) -> Vec<String> {
    let mut ev: Vec<String> = desk
        .store
        .recent_events(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.message.starts_with("ML engine"))
        .map(|e| e.message)
        .collect();
    ev.reverse();
    ev
}

#[tokio::test]
async fn an_outage_is_one_event_each_way_across_restarts() {
    let f = Fixture::new("");
    // The first check answered: nothing to tell.
    f.desk.record_cycle(checked(false)).await.unwrap();
    assert!(outage_events(&f.desk).is_empty());
    // Down for three checks, one of them by a restarted process on the same store.
    f.desk.record_cycle(checked(true)).await.unwrap();
    f.desk.record_cycle(checked(true)).await.unwrap();
    let restarted = Desk::new(
        f.desk.config.clone(),
        f.dir.path().into(),
        Arc::new(Store::open(f.dir.path(), "u", true).unwrap()),
    );
    restarted.record_cycle(checked(true)).await.unwrap();
    assert_eq!(
        outage_events(&f.desk).len(),
        1,
        "told again after the restart"
    );
    // One symbol answering is the source answering: the recovery, told once.
    let mut partly = checked(true);
    partly[1] = input("ETH/USD", 50.0);
    restarted.record_cycle(partly).await.unwrap();
    restarted.record_cycle(checked(false)).await.unwrap();
    assert_eq!(
        outage_events(&f.desk),
        vec![
            format!("{SOURCE_DOWN_EVENT}: BTC/USD: GET /signals/BTC/USD: HTTP 503"),
            SOURCE_BACK_EVENT.to_string(),
        ]
    );
    // A store whose very first check fails tells it.
    let g = Fixture::new("");
    g.desk.record_cycle(checked(true)).await.unwrap();
    assert_eq!(outage_events(&g.desk).len(), 1);
}

// ---------------------------------------------------------------- stamps ahead of the clock

const DAY_MS: i64 = 86_400_000;

fn warned(d: &Desk, needle: &str) -> bool {
    d.store
        .recent_events(50)
        .unwrap()
        .iter()
        .any(|e| e.level == "warn" && e.message.contains(needle))
}

#[tokio::test]
async fn a_decision_stamped_a_day_ahead_expires_at_the_next_look_and_says_why() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    assert_eq!(out.log.status, Status::Pending);
    // Made while the clock was a day ahead; the clock has come back since.
    f.sql(&format!(
        "UPDATE decisions SET created_at = created_at + {DAY_MS}"
    ));
    // The loop's wake-up: due now, not in a day and ten minutes.
    let next = f.desk.between_checks(false, &[]).unwrap().unwrap();
    assert!(next <= crate::store::now_ms(), "due at {next}");
    assert_eq!(f.desk.expire_stale().unwrap(), 1);
    let log = f.desk.store.decision(&out.log.log_id).unwrap().unwrap();
    assert_eq!(log.status, Status::Expired);
    let reason = log.status_reason.unwrap();
    assert!(reason.contains("ahead of this clock"), "{reason}");
    assert!(warned(&f.desk, "ahead of this clock"));
    // A decision a second ahead (two connections' clocks read apart) is not touched.
    let out = f.cycle("ETH/USD", 50.0).await;
    f.sql("UPDATE decisions SET created_at = created_at + 1000 WHERE status = 'pending'");
    assert_eq!(f.desk.expire_stale().unwrap(), 0);
    assert_eq!(f.status(&out.log.log_id), Status::Pending);
}

#[tokio::test]
async fn confirm_refuses_a_decision_stamped_ahead_and_expires_it() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    f.sql(&format!(
        "UPDATE decisions SET created_at = created_at + {DAY_MS}"
    ));
    let err = f.confirm_err(&out.log.log_id).await;
    assert!(err.contains("ahead of this clock"), "{err}");
    assert_eq!(f.status(&out.log.log_id), Status::Expired);
    assert!(f.desk.store.orders(10).unwrap().is_empty(), "nothing sent");
    assert!(open_positions(&f.desk).is_empty());
    assert!(warned(&f.desk, "ahead of this clock"));
}

#[tokio::test]
async fn a_price_stamped_ahead_is_stale_until_a_fresh_tick_replaces_it() {
    let f = Fixture::new(FEED);
    let out = f.cycle("BTC/USD", 100.0).await;
    f.desk
        .record_ticks(&[tick("BTC/USD", 100.0, 99.9, 100.1, 0)])
        .unwrap();
    f.sql(&format!("UPDATE prices SET at = at + {DAY_MS}"));
    let err = f.confirm_err(&out.log.log_id).await;
    assert!(
        err.contains("ahead of this clock") && err.contains("no fill on a stale price"),
        "{err}"
    );
    assert_eq!(f.status(&out.log.log_id), Status::Pending, "it waits");
    assert!(warned(&f.desk, "not confirmed"));
    // The next tick is not "older" than the stamp from the future: it replaces it, and says so.
    f.desk
        .record_ticks(&[tick("BTC/USD", 100.2, 100.1, 100.3, 0)])
        .unwrap();
    let p = f.desk.store.prices().unwrap()["BTC/USD"];
    assert_eq!(p.price, 100.2);
    assert!(p.at_ms <= crate::store::now_ms());
    assert!(warned(&f.desk, "stored price was stamped"));
    let (_, pos) = f.desk.confirm(&out.log.log_id).await.unwrap();
    assert_eq!(pos.entry_price, 100.3);
}

#[test]
fn an_age_ahead_of_the_clock_is_never_within_a_maximum() {
    use crate::domain::lifecycle::Age;
    let now = 1_000_000_000;
    assert_eq!(Age::at(now - 5_000, now), Age::Ago(Duration::from_secs(5)));
    assert_eq!(Age::at(now + 1_500, now), Age::Ago(Duration::ZERO));
    let ahead = Age::at(now + DAY_MS, now);
    assert_eq!(ahead.ahead(), Some(Duration::from_millis(DAY_MS as u64)));
    assert!(!ahead.within(Duration::MAX));
    assert!(ahead.to_string().contains("86400s ahead of this clock"));
}

// ---------------------------------------------------------------- a store that cannot write

#[tokio::test]
async fn a_stop_loss_crossed_while_the_store_is_full_is_held_and_closed_when_it_writes_again() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    let (_, pos) = f.desk.confirm(&out.log.log_id).await.unwrap();
    assert_eq!((pos.take_profit, pos.stop_loss), (105.0, 98.0));
    let mut health = f.desk.store.health_cell().subscribe();
    health.borrow_and_update();

    f.desk.store.inject_full(true);
    let err = f
        .desk
        .record_prices(&[("BTC/USD".into(), 97.0)])
        .unwrap_err();
    assert!(err.to_string().contains("full"), "{err}");
    assert!(health.has_changed().unwrap(), "the watchers are told");
    let h = f.desk.store.health();
    assert!(
        h.failing.as_ref().unwrap().message.contains("full"),
        "{h:?}"
    );
    assert_eq!(h.held_exits.len(), 1, "{h:?}");
    assert!(h.held_exits[0].contains("stop-loss at 97.00"), "{h:?}");
    assert!(h.banner().unwrap().contains("STORE FAILING"));
    assert_eq!(open_positions(&f.desk).len(), 1, "reads still work");
    // Still failing: the price and the retry fail, the crossing is held once.
    assert!(f.desk.record_prices(&[("BTC/USD".into(), 96.0)]).is_err());
    assert!(f.desk.between_checks(false, &[]).is_err());
    assert_eq!(f.desk.store.health().held_exits.len(), 1);
    assert!(f.desk.store.health().failing.unwrap().failures >= 3);

    // The disk has room again: the next look closes the position at the price that crossed
    // its stop, and says the store writes again.
    f.desk.store.inject_full(false);
    f.desk.between_checks(false, &[]).unwrap();
    let h = f.desk.store.health();
    assert!(!h.is_failing() && h.held_exits.is_empty(), "{h:?}");
    assert!(h.recovered.is_some());
    assert!(open_positions(&f.desk).is_empty());
    let closed = f.desk.store.closed_positions(1).unwrap();
    assert_eq!(closed[0].exit_price, Some(97.0));
    assert_eq!(closed[0].close_reason.as_deref(), Some("stop_loss"));
    let events = f.desk.store.recent_events(10).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.message.starts_with(crate::store::STORE_BACK_EVENT)),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("while the store could not write")),
        "{events:?}"
    );
}

#[test]
fn a_store_that_cannot_write_still_opens_and_reads_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), "u", true).unwrap();
    store.add_event("info", "before").unwrap();
    store.inject_full(true);
    assert!(store.add_event("info", "during").is_err());
    assert!(store.health().is_failing());
    assert_eq!(store.recent_events(5).unwrap()[0].message, "before");
    store.inject_full(false);
    store.add_event("info", "after").unwrap();
    assert!(!store.health().is_failing());
}

#[tokio::test]
async fn a_held_exit_of_a_position_closed_meanwhile_closes_nothing_else() {
    let f = Fixture::new("");
    let out = f.cycle("BTC/USD", 100.0).await;
    let (_, pos) = f.desk.confirm(&out.log.log_id).await.unwrap();
    f.desk.store.inject_full(true);
    assert!(f.desk.record_prices(&[("BTC/USD".into(), 106.0)]).is_err());
    assert_eq!(f.desk.store.health().held_exits.len(), 1);
    // Another connection (the command line) closed it, and a new one opened on the symbol,
    // whose take-profit the old crossing would cross too.
    f.sql(&format!(
        "UPDATE positions SET status = 'closed', closed_at = 1, exit_price = 101, realized_pnl = 0, close_reason = 'closed by trader' WHERE id = {};
         INSERT INTO positions (user_id, decision_id, symbol, side, quantity, entry_price, take_profit, stop_loss, opened_at, mode, status)
         VALUES ('u', 'decision_other', 'BTC/USD', 'BUY', 1, 100, 104, 90, 1, 'paper', 'open');",
        pos.id
    ));
    f.desk.store.inject_full(false);
    f.desk.between_checks(false, &[]).unwrap();
    let open = open_positions(&f.desk);
    assert_eq!(open.len(), 1, "the new position stays open: {open:?}");
    assert_eq!(open[0].decision_id, "decision_other");
    assert!(f.desk.store.health().held_exits.is_empty());
}
