//! The Alpaca trading client over real HTTP against the loopback fake of Alpaca's API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use autotrade_tui::broker::alpaca::{AlpacaBroker, AlpacaKeys, LIVE_URL, PAPER_URL};
use autotrade_tui::broker::{Broker, BrokerError, ExitsHeldBy, Intent, Order, OrderUpdate};
use autotrade_tui::domain::Side;
use autotrade_tui::domain::lifecycle::{OrderKind, OrderStatus};
use std::time::{Duration, Instant};
use support::alpaca::{AlpacaFake, AssetSpec, FillMode};

const SECRET: &str = "SECRETTEST";

fn keys(key_id: &str, secret: &str) -> AlpacaKeys {
    AlpacaKeys {
        key_id: key_id.into(),
        secret: secret.into(),
    }
}

fn broker_with(fake: &AlpacaFake, timeout: Duration) -> AlpacaBroker {
    AlpacaBroker::new(&fake.url, keys("PKTEST", SECRET), timeout).unwrap()
}

fn broker(fake: &AlpacaFake) -> AlpacaBroker {
    broker_with(fake, Duration::from_secs(5))
}

/// A fake with BTC/USD at 45,000 and AAPL at 190.
fn market() -> AlpacaFake {
    let fake = AlpacaFake::start();
    fake.set_asset("BTC/USD", AssetSpec::crypto());
    fake.set_price("BTC/USD", 45_000.0);
    fake.set_asset("AAPL", AssetSpec::stock());
    fake.set_price("AAPL", 190.0);
    fake
}

#[allow(clippy::too_many_arguments)]
fn order(
    id: &str,
    kind: OrderKind,
    symbol: &str,
    side: Side,
    quantity: f64,
    price: f64,
    take_profit: f64,
    stop_loss: f64,
) -> Order {
    Order {
        id: 1,
        client_order_id: id.into(),
        decision_id: id.into(),
        broker: "alpaca".into(),
        kind,
        symbol: symbol.into(),
        side,
        quantity,
        reference_price: price,
        take_profit,
        stop_loss,
        status: OrderStatus::Submitted,
        filled_quantity: None,
        fill_price: None,
        reason: None,
        created_at_ms: 0,
        updated_at_ms: 0,
        exits_held_by: None,
    }
}

fn buy_btc(id: &str, qty: f64) -> Order {
    order(
        id,
        OrderKind::Open,
        "BTC/USD",
        Side::Buy,
        qty,
        45_000.0,
        47_000.0,
        44_000.0,
    )
}

fn buy_aapl(id: &str, qty: f64) -> Order {
    order(
        id,
        OrderKind::Open,
        "AAPL",
        Side::Buy,
        qty,
        190.0,
        200.456,
        180.0,
    )
}

fn intent(symbol: &str, side: Side, quantity: f64, price: f64, closing: bool) -> Intent<'_> {
    Intent {
        symbol,
        side,
        quantity,
        price,
        closing,
    }
}

fn filled(quantity: f64, price: f64) -> OrderUpdate {
    OrderUpdate::Filled { quantity, price }
}

#[tokio::test]
async fn a_crypto_market_order_fills_as_a_simple_gtc_order_with_qty_as_a_string() {
    let fake = market();
    let b = broker(&fake);
    assert_eq!(b.name(), "alpaca");
    assert!(!b.is_ledger());
    assert_eq!(b.exits_held_by("BTC/USD", 1.0), ExitsHeldBy::Engine);
    assert_eq!(
        b.submit(&buy_btc("decision_a1", 0.5)).await,
        filled(0.5, 45_000.0)
    );
    let body = &fake.order_bodies()[0];
    assert_eq!(body["client_order_id"], "decision_a1");
    assert_eq!(body["symbol"], "BTC/USD");
    assert_eq!(body["qty"], "0.5");
    assert_eq!(body["side"], "buy");
    assert_eq!(body["type"], "market");
    assert_eq!(body["time_in_force"], "gtc");
    assert!(body.get("order_class").is_none(), "{body}");
    assert_eq!(fake.order("decision_a1").unwrap()["status"], "filled");
}

#[tokio::test]
async fn a_whole_share_stock_entry_is_a_bracket_order_carrying_its_legs() {
    let fake = market();
    let b = broker(&fake);
    assert_eq!(b.exits_held_by("AAPL", 10.0), ExitsHeldBy::Broker);
    assert_eq!(
        b.submit(&buy_aapl("decision_b1", 10.0)).await,
        filled(10.0, 190.0)
    );
    let body = &fake.order_bodies()[0];
    assert_eq!(body["order_class"], "bracket");
    assert_eq!(body["qty"], "10");
    // Prices at $1 and above go with 2 decimals.
    assert_eq!(body["take_profit"]["limit_price"], "200.46");
    assert_eq!(body["stop_loss"]["stop_price"], "180.00");
    assert_eq!(body["time_in_force"], "gtc");
    let held = fake.order("decision_b1").unwrap();
    let legs = held["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 2);
    assert_eq!(legs[0]["type"], "limit");
    assert_eq!(legs[0]["limit_price"], "200.46");
    assert_eq!(legs[1]["type"], "stop");
    assert_eq!(legs[1]["status"], "new");
}

#[tokio::test]
async fn a_fractional_stock_order_is_a_simple_day_order_and_its_exits_stay_with_the_engine() {
    let fake = market();
    let b = broker(&fake);
    assert_eq!(b.exits_held_by("AAPL", 1.5), ExitsHeldBy::Engine);
    assert_eq!(b.exits_held_by("BRK.B", 0.5), ExitsHeldBy::Engine);
    assert_eq!(
        b.submit(&buy_aapl("decision_c1", 1.5)).await,
        filled(1.5, 190.0)
    );
    let body = &fake.order_bodies()[0];
    assert!(body.get("order_class").is_none(), "{body}");
    assert!(body.get("take_profit").is_none(), "{body}");
    assert_eq!(body["time_in_force"], "day");
    assert_eq!(body["qty"], "1.5");
}

#[tokio::test]
async fn holdings_map_compact_crypto_positions_back_to_pairs_and_shorts_to_sells() {
    let fake = market();
    let b = broker(&fake);
    b.submit(&buy_btc("decision_d1", 0.5)).await;
    fake.add_external_position("TSLA", -5.0, 250.0);
    // The fake reports what Alpaca reports: compact crypto, negative short quantity.
    let raw = fake.positions();
    assert!(
        raw.iter()
            .any(|p| p["symbol"] == "BTCUSD" && p["asset_class"] == "crypto")
    );
    assert!(
        raw.iter()
            .any(|p| p["symbol"] == "TSLA" && p["qty"] == "-5" && p["side"] == "short")
    );
    let mut holdings = b.holdings().await.unwrap().unwrap();
    holdings.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    assert_eq!(holdings.len(), 2);
    assert_eq!(holdings[0].symbol, "BTC/USD");
    assert_eq!(holdings[0].side, Side::Buy);
    assert_eq!(holdings[0].quantity, 0.5);
    assert_eq!(holdings[0].avg_entry_price, 45_000.0);
    assert_eq!(holdings[1].symbol, "TSLA");
    assert_eq!(holdings[1].side, Side::Sell);
    assert_eq!(holdings[1].quantity, 5.0);
}

#[tokio::test]
async fn lookup_by_client_order_id_finds_the_order_or_says_it_never_arrived() {
    let fake = market();
    let b = broker(&fake);
    b.submit(&buy_btc("decision_e1", 0.25)).await;
    assert_eq!(b.lookup("decision_e1").await, filled(0.25, 45_000.0));
    assert_eq!(b.lookup("decision_never_sent").await, OrderUpdate::NotFound);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r == "GET /v2/orders:by_client_order_id?client_order_id=decision_e1"),
        "{:?}",
        fake.requests()
    );
}

#[tokio::test]
async fn a_duplicate_client_order_id_is_looked_up_not_sent_as_a_second_order() {
    let fake = market();
    let b = broker(&fake);
    let o = buy_btc("decision_f1", 0.5);
    assert_eq!(b.submit(&o).await, filled(0.5, 45_000.0));
    fake.set_price("BTC/USD", 46_000.0);
    // Sent again (an answer lost): Alpaca refuses the id, the client reports the first one.
    assert_eq!(b.submit(&o).await, filled(0.5, 45_000.0));
    assert_eq!(fake.post_count(), 2);
    assert_eq!(fake.orders().len(), 1);
    let holdings = b.holdings().await.unwrap().unwrap();
    assert_eq!(holdings[0].quantity, 0.5);
}

#[tokio::test]
async fn an_unanswered_order_is_unknown_within_the_timeout_then_found_filled() {
    let fake = market();
    let b = broker_with(&fake, Duration::from_millis(300));
    fake.hang_next_order();
    let started = Instant::now();
    let update = b.submit(&buy_btc("decision_g1", 0.5)).await;
    let took = started.elapsed();
    match &update {
        OrderUpdate::Unknown { why } => assert!(why.contains("timed out"), "{why}"),
        other => panic!("expected Unknown, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // The order reached the broker: the desk's lookup finds it, and nothing is sent twice.
    assert_eq!(b.lookup("decision_g1").await, filled(0.5, 45_000.0));
    assert_eq!(fake.post_count(), 1);
}

#[tokio::test]
async fn refused_keys_give_a_clear_message_without_the_keys() {
    let fake = market();
    let secret = "WRONG-SECRET-9f8e7d";
    let b = AlpacaBroker::new(
        &fake.url,
        keys("PKWRONGKEY123", secret),
        Duration::from_secs(5),
    )
    .unwrap();
    let mut texts = vec![];
    match b.submit(&buy_btc("decision_h1", 0.5)).await {
        OrderUpdate::Rejected { reason } => {
            assert!(reason.contains("the keys were refused"), "{reason}");
            texts.push(reason);
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    match b.account().await {
        Err(e @ BrokerError::Auth(_)) => texts.push(e.to_string()),
        other => panic!("expected Auth, got {other:?}"),
    }
    texts.push(format!("{:?}", b.holdings().await));
    texts.push(format!("{:?}", b.exit_fill("decision_h1").await));
    texts.push(format!("{:?}", b.lookup("decision_h1").await));
    let refusal = b
        .check(&intent("BTC/USD", Side::Buy, 0.1, 45_000.0, false))
        .await
        .unwrap_err();
    texts.push(refusal);
    texts.push(format!("{b:?}"));
    texts.push(format!("{:?}", keys("PKWRONGKEY123", secret)));
    for t in &texts {
        assert!(!t.contains(secret) && !t.contains("PKWRONGKEY123"), "{t}");
    }
    assert_eq!(fake.orders().len(), 0);
}

#[tokio::test]
async fn keys_never_appear_in_any_error_from_a_working_account() {
    let fake = market();
    let b = broker(&fake);
    fake.fail_next("GET /v2/account", 500, "{\"message\":\"boom\"}", None);
    fake.fail_next(
        "POST /v2/orders",
        422,
        "{\"code\":40010001,\"message\":\"qty is required\"}",
        None,
    );
    let texts = [
        format!("{:?}", b.account().await),
        format!("{:?}", b.submit(&buy_btc("decision_k1", 0.5)).await),
        format!(
            "{:?}",
            b.check(&intent("DOGE/USD", Side::Buy, 1.0, 0.1, false))
                .await
        ),
        format!("{b:?}"),
    ];
    for t in &texts {
        assert!(!t.contains(SECRET) && !t.contains("PKTEST"), "{t}");
    }
}

#[tokio::test]
async fn a_crypto_sell_over_the_holding_is_rejected_with_alpacas_message() {
    let fake = market();
    let b = broker(&fake);
    b.submit(&buy_btc("decision_i1", 0.2)).await;
    let sell = order(
        "decision_i1-close-1",
        OrderKind::Close,
        "BTC/USD",
        Side::Sell,
        0.5,
        45_000.0,
        0.0,
        0.0,
    );
    match b.submit(&sell).await {
        OrderUpdate::Rejected { reason } => assert!(
            reason.contains("insufficient balance for BTC (requested: 0.5, available: 0.2)"),
            "{reason}"
        ),
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn rate_limits_are_unknown_for_orders_and_rate_limited_for_reads() {
    let fake = market();
    let b = broker(&fake);
    let body = "{\"code\":42910000,\"message\":\"rate limit exceeded\"}";
    fake.fail_next("POST /v2/orders", 429, body, Some(7));
    match b.submit(&buy_btc("decision_j1", 0.5)).await {
        OrderUpdate::Unknown { why } => assert!(why.contains("rate limit"), "{why}"),
        other => panic!("expected Unknown, got {other:?}"),
    }
    fake.fail_next("GET /v2/account", 429, body, Some(7));
    match b.account().await {
        Err(BrokerError::RateLimited(m)) => assert!(m.contains("retry after 7s"), "{m}"),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    fake.fail_next("GET /v2/orders:by_client_order_id", 429, body, Some(1));
    assert!(matches!(
        b.lookup("decision_j1").await,
        OrderUpdate::Unknown { .. }
    ));
    // Nothing was retried blindly: one POST, no order.
    assert_eq!(fake.post_count(), 1);
    assert!(fake.orders().is_empty());
}

#[tokio::test]
async fn server_errors_and_unreadable_answers_are_unknown_or_unavailable() {
    let fake = market();
    let b = broker(&fake);
    fake.fail_next("POST /v2/orders", 503, "upstream down", None);
    assert!(matches!(
        b.submit(&buy_btc("decision_l1", 0.5)).await,
        OrderUpdate::Unknown { .. }
    ));
    fake.fail_next("POST /v2/orders", 200, "<html>not json</html>", None);
    assert!(matches!(
        b.submit(&buy_btc("decision_l2", 0.5)).await,
        OrderUpdate::Unknown { .. }
    ));
    fake.fail_next(
        "POST /v2/orders",
        200,
        "{\"status\":\"filled\",\"filled_qty\":\"0.5\",\"filled_avg_price\":\"NaN\"}",
        None,
    );
    assert!(matches!(
        b.submit(&buy_btc("decision_l3", 0.5)).await,
        OrderUpdate::Unknown { .. }
    ));
    fake.fail_next("GET /v2/orders:by_client_order_id", 502, "", None);
    assert!(matches!(
        b.lookup("decision_l1").await,
        OrderUpdate::Unknown { .. }
    ));
    fake.fail_next("GET /v2/account", 500, "{}", None);
    assert!(matches!(
        b.account().await,
        Err(BrokerError::Unavailable(_))
    ));
    fake.fail_next("GET /v2/account", 200, "{\"equity\":\"lots\"}", None);
    assert!(matches!(b.account().await, Err(BrokerError::Other(_))));
    fake.fail_next(
        "GET /v2/positions",
        200,
        "[{\"symbol\":\"AAPL\",\"qty\":\"3\",\"side\":\"long\",\"avg_entry_price\":\"-1\"}]",
        None,
    );
    assert!(matches!(b.holdings().await, Err(BrokerError::Other(_))));
    fake.fail_next(
        "GET /v2/account",
        403,
        "{\"code\":40310000,\"message\":\"forbidden\"}",
        None,
    );
    assert!(matches!(b.account().await, Err(BrokerError::Auth(_))));
    // A broker nobody answers for.
    let gone = AlpacaBroker::new(
        "http://127.0.0.1:9",
        keys("PKTEST", SECRET),
        Duration::from_millis(500),
    )
    .unwrap();
    assert!(matches!(
        gone.account().await,
        Err(BrokerError::Unavailable(_))
    ));
    assert!(matches!(
        gone.submit(&buy_btc("decision_l4", 0.5)).await,
        OrderUpdate::Unknown { .. }
    ));
}

#[tokio::test]
async fn check_refuses_what_alpaca_would_refuse_with_the_figures() {
    let fake = market();
    fake.set_asset(
        "ETH/USD",
        AssetSpec {
            min_order_size: 0.01,
            min_trade_increment: 0.001,
            ..AssetSpec::crypto()
        },
    );
    fake.set_asset(
        "GME",
        AssetSpec {
            fractionable: false,
            shortable: false,
            ..AssetSpec::stock()
        },
    );
    fake.set_asset(
        "DELISTED",
        AssetSpec {
            tradable: false,
            ..AssetSpec::stock()
        },
    );
    fake.set_account(10_000.0, 4_000.0, 8_000.0, 3_000.0);
    let b = broker(&fake);
    let refusal = |r: Result<(), String>| r.expect_err("expected a refusal");

    // Passes when within every rule.
    b.check(&intent("AAPL", Side::Buy, 10.0, 190.0, false))
        .await
        .unwrap();
    b.check(&intent("BTC/USD", Side::Buy, 0.05, 45_000.0, false))
        .await
        .unwrap();

    let r = refusal(
        b.check(&intent("BTC/USD", Side::Sell, 0.1, 45_000.0, false))
            .await,
    );
    assert!(r.contains("sold short"), "{r}");
    let r = refusal(
        b.check(&intent("BTC/USD", Side::Sell, 0.1, 45_000.0, true))
            .await,
    );
    assert!(r.contains("cannot sell 0.1 BTC/USD: Alpaca holds 0"), "{r}");
    let r = refusal(
        b.check(&intent("ETH/USD", Side::Buy, 0.005, 3_000.0, false))
            .await,
    );
    assert!(
        r.contains("0.005 ETH/USD is below Alpaca's minimum order size of 0.01"),
        "{r}"
    );
    let r = refusal(
        b.check(&intent("ETH/USD", Side::Buy, 0.0125, 3_000.0, false))
            .await,
    );
    assert!(
        r.contains("not a multiple of Alpaca's trade increment of 0.001"),
        "{r}"
    );
    let r = refusal(b.check(&intent("GME", Side::Buy, 1.5, 20.0, false)).await);
    assert!(
        r.contains("GME cannot be traded in fractions") && r.contains("1.5"),
        "{r}"
    );
    let r = refusal(b.check(&intent("GME", Side::Sell, 2.0, 20.0, false)).await);
    assert!(
        r.contains("GME cannot be sold short") && r.contains("not shortable"),
        "{r}"
    );
    // Stocks use buying power (8,000); crypto the cash-only buying power (3,000).
    let r = refusal(
        b.check(&intent("AAPL", Side::Buy, 50.0, 190.0, false))
            .await,
    );
    assert!(
        r.contains("50 AAPL at 190.000 needs 9,500.00; Alpaca's buying power is 8,000.00"),
        "{r}"
    );
    let r = refusal(
        b.check(&intent("BTC/USD", Side::Buy, 0.1, 45_000.0, false))
            .await,
    );
    assert!(
        r.contains("needs 4,500.00") && r.contains("cash buying power for crypto is 3,000.00"),
        "{r}"
    );
    // A closing order is not a buying-power question.
    b.check(&intent("AAPL", Side::Buy, 50.0, 190.0, true))
        .await
        .unwrap();
    let r = refusal(
        b.check(&intent("DELISTED", Side::Buy, 1.0, 5.0, false))
            .await,
    );
    assert!(r.contains("DELISTED is not tradable"), "{r}");
    let r = refusal(b.check(&intent("NOPE", Side::Buy, 1.0, 5.0, false)).await);
    assert!(r.contains("does not know the asset NOPE"), "{r}");

    fake.block_trading(true);
    let r = refusal(b.check(&intent("AAPL", Side::Buy, 1.0, 190.0, false)).await);
    assert!(r.contains("trading is blocked"), "{r}");
    fake.block_trading(false);
    fake.set_crypto_status("INACTIVE");
    let r = refusal(
        b.check(&intent("BTC/USD", Side::Buy, 0.01, 45_000.0, false))
            .await,
    );
    assert!(
        r.contains("crypto trading is not active (crypto status INACTIVE)"),
        "{r}"
    );
    b.check(&intent("AAPL", Side::Buy, 1.0, 190.0, false))
        .await
        .unwrap();
}

#[tokio::test]
async fn check_reads_assets_by_alpacas_symbology_and_caches_them() {
    let fake = market();
    fake.set_asset("ETH/USDT", AssetSpec::crypto());
    let b = broker(&fake);
    b.check(&intent("BTC/USD", Side::Buy, 0.01, 45_000.0, false))
        .await
        .unwrap();
    b.check(&intent("BTC/USD", Side::Buy, 0.01, 45_000.0, false))
        .await
        .unwrap();
    b.check(&intent("ETH/USDT", Side::Buy, 0.01, 3_000.0, false))
        .await
        .unwrap();
    let asked: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /v2/assets/"))
        .collect();
    assert_eq!(
        asked,
        vec!["GET /v2/assets/BTCUSD", "GET /v2/assets/ETH%2FUSDT"]
    );
}

#[tokio::test]
async fn a_check_the_broker_cannot_answer_is_a_refusal() {
    let fake = market();
    let b = broker(&fake);
    fake.fail_next("GET /v2/assets", 503, "{}", None);
    let r = b
        .check(&intent("AAPL", Side::Buy, 1.0, 190.0, false))
        .await
        .unwrap_err();
    assert!(r.contains("Alpaca could not be asked about AAPL"), "{r}");
    fake.fail_next("GET /v2/account", 500, "{}", None);
    let r = b
        .check(&intent("AAPL", Side::Buy, 1.0, 190.0, false))
        .await
        .unwrap_err();
    assert!(r.contains("could not be asked for the account"), "{r}");
}

#[tokio::test]
async fn account_figures_and_blocks_are_read() {
    let fake = market();
    fake.set_account(12_345.67, 2_000.5, 24_691.34, 2_000.5);
    let b = broker(&fake);
    let a = b.account().await.unwrap().unwrap();
    assert_eq!(a.equity, 12_345.67);
    assert_eq!(a.cash, 2_000.5);
    assert_eq!(a.buying_power, 24_691.34);
    assert_eq!(a.blocked, None);
    fake.block_trading(true);
    let a = b.account().await.unwrap().unwrap();
    assert_eq!(
        a.blocked.as_deref(),
        Some("trading is blocked on the account")
    );
}

#[tokio::test]
async fn working_and_partial_orders_report_what_filled_so_far() {
    let fake = market();
    let b = broker(&fake);
    fake.set_fill_mode(FillMode::Accept);
    assert_eq!(
        b.submit(&buy_btc("decision_m1", 0.5)).await,
        OrderUpdate::Working { filled: None }
    );
    assert_eq!(
        b.lookup("decision_m1").await,
        OrderUpdate::Working { filled: None }
    );
    fake.fill_open("decision_m1");
    assert_eq!(b.lookup("decision_m1").await, filled(0.5, 45_000.0));

    fake.set_fill_mode(FillMode::Partial(0.4));
    assert_eq!(
        b.submit(&buy_btc("decision_m2", 1.0)).await,
        OrderUpdate::Working {
            filled: Some((0.4, 45_000.0))
        }
    );
    fake.complete("decision_m2");
    assert_eq!(b.lookup("decision_m2").await, filled(1.0, 45_000.0));

    // Cancelled after part filled: done, with what filled.
    assert!(matches!(
        b.submit(&buy_btc("decision_m3", 1.0)).await,
        OrderUpdate::Working { .. }
    ));
    fake.cancel("decision_m3");
    assert_eq!(b.lookup("decision_m3").await, filled(0.4, 45_000.0));
    // Cancelled with nothing filled: rejected with a reason.
    fake.set_fill_mode(FillMode::Accept);
    b.submit(&buy_btc("decision_m4", 1.0)).await;
    fake.cancel("decision_m4");
    assert!(matches!(
        b.lookup("decision_m4").await,
        OrderUpdate::Rejected { .. }
    ));

    fake.set_fill_mode(FillMode::Reject("account is not allowed to short".into()));
    match b.submit(&buy_btc("decision_m5", 1.0)).await {
        OrderUpdate::Rejected { reason } => assert!(
            reason.contains("account is not allowed to short"),
            "{reason}"
        ),
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_filled_bracket_leg_is_reported_as_the_brokers_exit() {
    let fake = market();
    let b = broker(&fake);
    b.submit(&buy_aapl("decision_n1", 10.0)).await;
    assert_eq!(b.exit_fill("decision_n1").await.unwrap(), None);
    fake.trigger_leg("AAPL", "take_profit", 200.46);
    let exit = b.exit_fill("decision_n1").await.unwrap().unwrap();
    assert_eq!(exit.reason, "take_profit");
    assert_eq!(exit.quantity, 10.0);
    assert_eq!(exit.price, 200.46);
    assert!(b.holdings().await.unwrap().unwrap().is_empty());

    b.submit(&buy_aapl("decision_n2", 5.0)).await;
    fake.trigger_leg("AAPL", "stop_loss", 179.9);
    let exit = b.exit_fill("decision_n2").await.unwrap().unwrap();
    assert_eq!(
        (exit.reason, exit.quantity, exit.price),
        ("stop_loss", 5.0, 179.9)
    );
    // A simple order has no broker exit; an unknown id neither.
    b.submit(&buy_btc("decision_n3", 0.1)).await;
    assert_eq!(b.exit_fill("decision_n3").await.unwrap(), None);
    assert_eq!(b.exit_fill("decision_none").await.unwrap(), None);
}

#[tokio::test]
async fn closing_a_bracketed_stock_cancels_its_legs_first() {
    let fake = market();
    let b = broker(&fake);
    b.submit(&buy_aapl("decision_o1", 10.0)).await;
    fake.set_price("AAPL", 195.0);
    let close = order(
        "decision_o1-close-1",
        OrderKind::Close,
        "AAPL",
        Side::Sell,
        10.0,
        195.0,
        0.0,
        0.0,
    );
    assert_eq!(b.submit(&close).await, filled(10.0, 195.0));
    let legs = fake.order("decision_o1").unwrap()["legs"]
        .as_array()
        .unwrap()
        .clone();
    assert!(legs.iter().all(|l| l["status"] == "canceled"), "{legs:?}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("DELETE /v2/orders/"))
    );
    let body = fake.order_bodies().last().unwrap().clone();
    assert_eq!(body["client_order_id"], "decision_o1-close-1");
    assert!(body.get("order_class").is_none(), "{body}");
    assert!(b.holdings().await.unwrap().unwrap().is_empty());
}

#[tokio::test]
async fn the_fake_refuses_to_close_shares_held_by_legs_as_alpaca_does() {
    // What the client avoids by cancelling first: a sell of shares the legs hold.
    let fake = market();
    let b = broker(&fake);
    b.submit(&buy_aapl("decision_p1", 10.0)).await;
    let client = reqwest::Client::new();
    let answer = client
        .delete(format!("{}/v2/positions/AAPL", fake.url))
        .header("APCA-API-KEY-ID", "PKTEST")
        .header("APCA-API-SECRET-KEY", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 403);
    // Crypto positions are addressed compact; with the slash they are not found.
    b.submit(&buy_btc("decision_p2", 0.1)).await;
    let get = |path: &str| {
        client
            .get(format!("{}{path}", fake.url))
            .header("APCA-API-KEY-ID", "PKTEST")
            .header("APCA-API-SECRET-KEY", SECRET)
            .send()
    };
    assert_eq!(
        get("/v2/positions/BTC/USD")
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        get("/v2/positions/BTCUSD").await.unwrap().status().as_u16(),
        200
    );
}

#[test]
fn keys_come_from_their_own_variables_and_the_missing_one_is_named() {
    // Only this test touches these variables.
    unsafe {
        std::env::remove_var("APCA_LIVE_API_KEY_ID");
        std::env::remove_var("APCA_LIVE_API_SECRET_KEY");
    }
    let e = AlpacaKeys::from_env(true).unwrap_err();
    assert!(e.contains("APCA_LIVE_API_KEY_ID"), "{e}");
    unsafe { std::env::set_var("APCA_LIVE_API_KEY_ID", "PKLIVE") };
    let e = AlpacaKeys::from_env(true).unwrap_err();
    assert!(
        e.contains("APCA_LIVE_API_SECRET_KEY") && !e.contains("PKLIVE"),
        "{e}"
    );
    unsafe { std::env::set_var("APCA_LIVE_API_SECRET_KEY", "LIVESECRET") };
    let k = AlpacaKeys::from_env(true).unwrap();
    assert_eq!(
        (k.key_id.as_str(), k.secret.as_str()),
        ("PKLIVE", "LIVESECRET")
    );
    let shown = format!("{k:?}");
    assert!(
        !shown.contains("PKLIVE") && !shown.contains("LIVESECRET"),
        "{shown}"
    );
    assert_eq!(PAPER_URL, "https://paper-api.alpaca.markets");
    assert_eq!(LIVE_URL, "https://api.alpaca.markets");
}

#[test]
fn the_fake_is_usable_from_sync_code() {
    let fake = market();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let b = broker(&fake);
    let update = rt.block_on(b.submit(&buy_btc("decision_q1", 0.5)));
    assert_eq!(update, filled(0.5, 45_000.0));
    assert_eq!(fake.post_count(), 1);
}
