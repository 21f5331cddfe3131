#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! What the outbound clients other than the ML engine's (`engine_trust.rs`) refuse (#21):
//! a redirect off the configured origin, for the market-data REST poll and the Alpaca broker
//! like the webhook (`alerts_webhook.rs`): a loopback server answers 302 to another loopback
//! server, which must never be asked; and a market-data answer that names a key twice.

mod support;
use autotrade_tui::broker::Broker;
use autotrade_tui::broker::alpaca::{AlpacaBroker, AlpacaKeys};
use autotrade_tui::market::Provider;
use autotrade_tui::market::coinbase::Coinbase;
use axum::http::Uri;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A server on 127.0.0.1 that counts requests and answers `302 Location: {to}{path}`, or, with
/// `to` None, 200 `{}`; lives until the test process ends.
fn server(to: Option<String>) -> (String, Arc<AtomicUsize>) {
    server_answering(to, "{}")
}

fn server_answering(to: Option<String>, body: &'static str) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let (h, to) = (h.clone(), to.clone());
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            let b = axum::http::Response::builder();
            match to {
                Some(to) => b
                    .status(302)
                    .header("location", format!("{to}{}", uri.path()))
                    .body(axum::body::Body::empty())
                    .unwrap(),
                None => b
                    .status(200)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body))
                    .unwrap(),
            }
        }
    });
    let (addr, _thread) = support::serve_app(app, std::future::pending());
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn a_market_data_poll_redirected_off_its_origin_fails_naming_where() {
    let (other, other_hits) = server(None);
    let (front, front_hits) = server(Some(other.clone()));
    let provider = Coinbase::new("ws://127.0.0.1:9", &front)
        .unwrap()
        .with_timeout(Duration::from_secs(5))
        .unwrap();
    let e = provider
        .poll(&["BTC/USD".to_string()])
        .await
        .expect_err("a redirect elsewhere is no price");
    assert!(
        e.message.contains("off the configured origin") && e.message.contains(&other),
        "{}",
        e.message
    );
    assert_eq!(front_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "followed off the origin"
    );
}

#[tokio::test]
async fn the_broker_redirected_off_its_origin_fails_and_the_other_server_never_sees_the_keys() {
    let (other, other_hits) = server(None);
    let (front, front_hits) = server(Some(other.clone()));
    let keys = AlpacaKeys {
        key_id: "PKTEST".into(),
        secret: "secret-key".into(),
    };
    let broker = AlpacaBroker::new(&front, keys, Duration::from_secs(5)).unwrap();
    let e = broker
        .account()
        .await
        .expect_err("a redirect elsewhere is no account");
    let text = e.to_string();
    assert!(text.contains("off the configured origin"), "{text}");
    assert!(front_hits.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "followed off the origin"
    );
}

#[tokio::test]
async fn a_market_data_answer_that_names_the_price_twice_is_no_price() {
    let (url, hits) = server_answering(
        None,
        r#"{"trade_id":1,"price":"1.00","price":"6268.48","bid":"6265.15","ask":"6267.71","time":"2026-11-25T11:00:00Z","volume":"1"}"#,
    );
    let provider = Coinbase::new("ws://127.0.0.1:9", &url)
        .unwrap()
        .with_timeout(Duration::from_secs(5))
        .unwrap();
    let e = provider
        .poll(&["BTC/USD".to_string()])
        .await
        .expect_err("an answer that says two prices is none");
    assert!(
        e.message.contains(r#"duplicate key "price""#),
        "{}",
        e.message
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
