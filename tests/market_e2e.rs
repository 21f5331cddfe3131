#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The live feed end to end: the real binary in a pseudo-terminal, an ML engine and a
//! Coinbase Exchange feed on 127.0.0.1. Ticks move the dashboard's price and P&L; a buy fills
//! at the ask; a stop-loss fires on the tick that crosses it (at the bid); a feed that goes
//! silent makes the price stale and confirm refuses it.

mod support;

use autotrade_tui::store::Status;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use support::market::WsFake;
use support::pty::{Dashboard, wait_for};
use support::{MlServer, run, write_config};
use tokio::sync::broadcast;

/// A Coinbase feed that subscribes every connection and forwards what the test sends. Message
/// shapes: https://docs.cdp.coinbase.com/exchange/websocket-feed/overview ("Subscribe", the
/// `subscriptions` reply) and …/websocket-feed/channels (the ticker channel's example).
struct Feed {
    rt: tokio::runtime::Runtime,
    ws: WsFake,
    ticks: broadcast::Sender<Value>,
    subscribed: Arc<Mutex<usize>>,
}

impl Feed {
    fn start() -> Feed {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (ticks, _) = broadcast::channel::<Value>(64);
        let subscribed = Arc::new(Mutex::new(0));
        let (t, s) = (ticks.clone(), subscribed.clone());
        let ws = rt.block_on(WsFake::serving(move |mut peer| {
            let mut rx = t.subscribe();
            let s = s.clone();
            async move {
                let Some(sub) = peer.recv_json().await else {
                    return;
                };
                let products = support::market::coinbase_products(&sub);
                peer.send(json!({"type": "subscriptions", "channels": [
                    {"name": "ticker", "product_ids": products}]}))
                    .await;
                *s.lock().unwrap() += 1;
                while let Ok(msg) = rx.recv().await {
                    peer.send(msg).await;
                }
            }
        }));
        Feed {
            rt,
            ws,
            ticks,
            subscribed,
        }
    }

    /// A BTC-USD ticker timed now.
    fn tick(&self, price: &str, bid: &str, ask: &str) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let msg = support::market::coinbase_ticker("BTC-USD", price, bid, ask, &now);
        self.ticks.send(msg).unwrap();
    }
}

#[test]
fn ticks_move_the_dashboard_a_stop_loss_fires_on_its_tick_and_a_silent_feed_goes_stale() {
    let feed = Feed::start();
    let ml = MlServer::start();
    // A BUY at 100 (TP 105, SL 98); its size is capped at 20 (20 % of 10,000 at 100).
    ml.set_symbol("BTC/USD", "bullish", 0.9, 100.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60",
        // No REST server: this test is about the stream.
        &format!(
            "\n[market_data]\nprovider = \"coinbase\"\nstale_after_seconds = 2\nurl = \"http://127.0.0.1:9\"\nstream_url = \"{}\"\n",
            feed.ws.url
        ),
    );
    let mut d = Dashboard::start(dir.path());
    d.wait_screen("the BUY pending and the feed streaming", |t| {
        t.contains("Pending decisions (1)") && t.contains("COINBASE streaming")
    });
    wait_for("the feed's subscription", || {
        (*feed.subscribed.lock().unwrap() > 0).then_some(())
    });

    // A tick: the signals pane shows its price.
    feed.tick("100.20", "100.10", "100.30");
    d.wait_screen("the live price", |t| {
        t.lines()
            .any(|l| l.contains("BTC/USD") && l.contains("100.200"))
    });
    // y: the buy pays the ask.
    d.press("y");
    let store = d.store();
    let pos = wait_for("the position", || store.open_positions().unwrap().pop());
    assert_eq!((pos.entry_price, pos.quantity), (100.3, 20.0));
    assert_eq!(store.orders(1).unwrap()[0].reference_price, 100.3);

    // The next tick marks it: (101 - 100.3) × 20.
    feed.tick("101.00", "100.90", "101.10");
    d.wait_screen("the P&L at the new price", |t| {
        t.contains("Open positions (1)") && t.contains("+14.00")
    });

    // A tick whose last trade is above the stop but whose bid is below it: a long sells at
    // the bid, so the stop-loss fires on this tick.
    feed.tick("98.05", "97.90", "98.10");
    d.wait_screen("the stop-loss", |t| {
        t.contains("Open positions (0)") && t.contains("@ 97.900 (stop_loss), P&L -48.00")
    });

    // Silence: the price goes stale on the dashboard…
    d.wait_screen("the stale mark", |t| {
        t.lines()
            .any(|l| l.contains("BTC/USD") && l.contains("stale"))
    });
    // …and a new decision is not confirmed on it.
    d.press("r");
    let id = wait_for("a new pending decision", || {
        store
            .decisions(10, Some(Status::Pending))
            .unwrap()
            .pop()
            .map(|l| l.log_id)
    });
    let (code, _, err) = run(dir.path(), &["confirm", &id]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no fill on a stale price"), "{err}");
    d.quit();
    drop(feed.rt);
}
