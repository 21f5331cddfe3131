//! The live feed's side of the loop: ticks coalesced per symbol and written at most ten
//! times a second (so the store, the watchers and the screen follow a feed of any rate at a
//! bounded cost), the feed's state passed on to the dashboard, a symbol the provider does
//! not know said once (a stored event).

use super::EngineEvent;
use crate::desk::Desk;
use crate::market::{FeedEvent, Tick};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tokio::sync::mpsc;

/// Ticks are written together at most this often.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Take the feed's events until it ends: store the ticks (closing what they cross), tell
/// `events` the feed's state and each unknown symbol once.
pub async fn consume(
    desk: Desk,
    provider: &'static str,
    mut feed: mpsc::Receiver<FeedEvent>,
    events: mpsc::Sender<EngineEvent>,
) {
    let mut pending: BTreeMap<String, Tick> = BTreeMap::new();
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut unknown: HashSet<String> = HashSet::new();
    loop {
        let due = async {
            match flush_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = feed.recv() => match ev {
                Some(FeedEvent::Ticks(ticks)) => {
                    for t in ticks {
                        // The newest of each symbol counts, and what it lacks (a trade carries
                        // no quote, a quote no trade) the one before it gives.
                        let merged = match pending.remove(&t.symbol) {
                            Some(old) if old.at_ms > t.at_ms => merge(old, t),
                            Some(old) => merge(t, old),
                            None => t,
                        };
                        pending.insert(merged.symbol.clone(), merged);
                    }
                    if flush_at.is_none() && !pending.is_empty() {
                        flush_at = Some(tokio::time::Instant::now() + FLUSH_EVERY);
                    }
                }
                Some(FeedEvent::State(state)) => {
                    let d = desk.clone();
                    let kept = state.clone();
                    if let Ok(Err(e)) =
                        tokio::task::spawn_blocking(move || d.note_feed_state(provider, &kept)).await
                    {
                        tracing::warn!("recording the feed's state: {e}");
                    }
                    let _ = events.send(EngineEvent::Feed { provider, state }).await;
                }
                Some(FeedEvent::SymbolError { symbol, message }) => {
                    // Stored as an event, which the dashboard shows from the store: once.
                    if unknown.insert(symbol.clone()) {
                        let line = format!("market data for {symbol}: {message}");
                        record_event(&desk, "warn", line).await;
                    }
                }
                None => {
                    flush(&desk, &mut pending, &events).await;
                    return;
                }
            },
            _ = due => {
                flush_at = None;
                flush(&desk, &mut pending, &events).await;
            }
        }
    }
}

/// `newer` with the fields it lacks taken from `older`.
fn merge(newer: Tick, older: Tick) -> Tick {
    Tick {
        last: newer.last.or(older.last),
        bid: newer.bid.or(older.bid),
        ask: newer.ask.or(older.ask),
        ..newer
    }
}

async fn flush(
    desk: &Desk,
    pending: &mut BTreeMap<String, Tick>,
    events: &mpsc::Sender<EngineEvent>,
) {
    if pending.is_empty() {
        return;
    }
    let ticks: Vec<Tick> = std::mem::take(pending).into_values().collect();
    let d = desk.clone();
    match tokio::task::spawn_blocking(move || d.record_ticks(&ticks)).await {
        // Exits crossed at a real broker: their closing orders go out now, beside the ticks.
        Ok(Ok(_closed)) => {
            let d = desk.clone();
            tokio::spawn(async move { d.send_queued().await });
        }
        Ok(Err(e)) => {
            let _ = events
                .send(EngineEvent::Error(format!("storing prices failed: {e}")))
                .await;
        }
        Err(e) => {
            let _ = events
                .send(EngineEvent::Error(format!("the store task failed: {e}")))
                .await;
        }
    }
}

async fn record_event(desk: &Desk, level: &'static str, line: String) {
    let d = desk.clone();
    let _ = tokio::task::spawn_blocking(move || d.note(level, &line)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::FeedState;
    use crate::store::Store;
    use std::sync::Arc;

    fn desk(dir: &std::path::Path) -> Desk {
        let config = crate::config::parse_str(
            "[auto_trade]\nsymbols = [\"BTC/USD\"]\n[ml_engine]\nurl = \"http://127.0.0.1:9\"\n[market_data]\nprovider = \"coinbase\"\n",
            "test",
        )
        .unwrap();
        let store = Store::open(dir, "u", true).unwrap();
        Desk::new(Arc::new(config), dir.into(), Arc::new(store))
    }

    #[tokio::test]
    async fn a_burst_of_ticks_leaves_the_newest_and_states_and_unknown_symbols_pass_through_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path());
        let (tx, rx) = mpsc::channel(64);
        let (events_tx, mut events) = mpsc::channel(64);
        let task = tokio::spawn(consume(d.clone(), "coinbase", rx, events_tx));
        tx.send(FeedEvent::State(FeedState::Streaming))
            .await
            .unwrap();
        let now = crate::store::now_ms();
        for i in 0..1000 {
            let t = Tick {
                symbol: "BTC/USD".into(),
                last: Some(100.0 + i as f64 / 100.0),
                bid: None,
                ask: None,
                at_ms: now - 1000 + i,
            };
            tx.send(FeedEvent::Ticks(vec![t])).await.unwrap();
        }
        for _ in 0..2 {
            tx.send(FeedEvent::SymbolError {
                symbol: "XYZ/USD".into(),
                message: "not a product".into(),
            })
            .await
            .unwrap();
        }
        drop(tx);
        task.await.unwrap();
        assert_eq!(d.store.prices().unwrap()["BTC/USD"].price, 109.99);
        let mut got = Vec::new();
        while let Ok(e) = events.try_recv() {
            got.push(e);
        }
        assert!(matches!(
            &got[0],
            EngineEvent::Feed {
                provider: "coinbase",
                state: FeedState::Streaming
            }
        ));
        // Said once: as a stored event (the dashboard shows the store's events), not also as
        // a dashboard note beside it.
        let errors = got
            .iter()
            .filter(|e| matches!(e, EngineEvent::Error(m) if m.contains("XYZ/USD")))
            .count();
        assert_eq!(errors, 0, "not said twice on the dashboard: {got:?}");
        let stored = d.store.recent_events(10).unwrap();
        assert_eq!(
            stored
                .iter()
                .filter(|e| e.message.contains("market data for XYZ/USD"))
                .count(),
            1
        );
    }

    #[test]
    fn a_tick_takes_what_it_lacks_from_the_one_before() {
        let t = |last: Option<f64>, bid: Option<f64>, ask: Option<f64>, at_ms: i64| Tick {
            symbol: "BTC/USD".into(),
            last,
            bid,
            ask,
            at_ms,
        };
        let trade = t(Some(100.0), None, None, 1);
        let quote = t(None, Some(99.9), Some(100.1), 2);
        assert_eq!(
            merge(quote.clone(), trade.clone()),
            t(Some(100.0), Some(99.9), Some(100.1), 2)
        );
        let newer_trade = t(Some(100.2), None, None, 3);
        assert_eq!(
            merge(newer_trade, quote),
            t(Some(100.2), Some(99.9), Some(100.1), 3)
        );
    }
}
