#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The live market-data feed: the loop every provider shares (driven by a fake provider in
//! tokio's paused time), and Coinbase Exchange and Alpaca (crypto, US stocks, and both at once)
//! against loopback servers that speak their documented protocols (tests/support/market.rs
//! cites the source of each message).

mod support;

use autotrade_tui::market::alpaca::{Alpaca, Keys};
use autotrade_tui::market::coinbase::Coinbase;
use autotrade_tui::market::{
    FeedEvent, FeedState, Policy, PollError, Provider, StreamEnd, Tick, run,
};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::market::*;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Longest real wait for one event from a loopback test.
const REAL: Duration = Duration::from_secs(5);
/// Longest virtual wait for one event in paused time.
const VIRTUAL: Duration = Duration::from_secs(3600);

async fn next(rx: &mut mpsc::Receiver<FeedEvent>, within: Duration) -> FeedEvent {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("no event in time")
        .expect("the feed stopped")
}

/// Events up to and including the first that `stop` accepts.
async fn until(
    rx: &mut mpsc::Receiver<FeedEvent>,
    within: Duration,
    stop: impl Fn(&FeedEvent) -> bool,
) -> Vec<FeedEvent> {
    let mut seen = Vec::new();
    loop {
        let e = next(rx, within).await;
        let done = stop(&e);
        seen.push(e);
        if done {
            return seen;
        }
    }
}

fn is_streaming(e: &FeedEvent) -> bool {
    *e == FeedEvent::State(FeedState::Streaming)
}

fn is_connecting(e: &FeedEvent) -> bool {
    *e == FeedEvent::State(FeedState::Connecting)
}

fn is_ticks(e: &FeedEvent) -> bool {
    matches!(e, FeedEvent::Ticks(_))
}

fn ticks_of(events: &[FeedEvent]) -> Vec<Tick> {
    events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Ticks(t) => Some(t.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn symbol_errors(events: &[FeedEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::SymbolError { symbol, .. } => Some(symbol.clone()),
            _ => None,
        })
        .collect()
}

fn symbols(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

/// Short waits for loopback tests: reconnect in tens of ms, poll every 50 ms, and stay on
/// polling for the rest of the test once there.
fn fast() -> Policy {
    Policy {
        poll_every: Duration::from_millis(50),
        retry_stream_after: Duration::from_secs(30),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        failures_before_polling: 3,
        healthy_after: Duration::from_secs(60),
    }
}

fn start(
    provider: Arc<dyn Provider>,
    syms: &[&str],
    policy: Policy,
) -> (mpsc::Receiver<FeedEvent>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(run(provider, symbols(syms), tx, policy));
    (rx, task)
}

// ------------------------------------------------------------------------------------------
// The feed loop, with a fake provider in paused time.

type Polled = Result<(Vec<Tick>, Vec<(String, String)>), PollError>;

/// A provider that ends each stream as scripted (after a virtual time), answers polls as
/// scripted, and records when it was asked.
struct FakeProvider {
    streams: Mutex<VecDeque<(Duration, StreamEnd)>>,
    polls: Mutex<VecDeque<Polled>>,
    default_poll: Polled,
    stream_calls: Mutex<Vec<Instant>>,
    poll_calls: Mutex<Vec<(Instant, Vec<String>)>>,
}

impl FakeProvider {
    fn new(
        streams: Vec<(Duration, StreamEnd)>,
        polls: Vec<Polled>,
        default_poll: Polled,
    ) -> Arc<Self> {
        Arc::new(FakeProvider {
            streams: Mutex::new(streams.into()),
            polls: Mutex::new(polls.into()),
            default_poll,
            stream_calls: Mutex::new(Vec::new()),
            poll_calls: Mutex::new(Vec::new()),
        })
    }

    fn stream_calls(&self) -> Vec<Instant> {
        self.stream_calls.lock().unwrap().clone()
    }

    fn poll_calls(&self) -> Vec<(Instant, Vec<String>)> {
        self.poll_calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Provider for FakeProvider {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn stream(&self, _symbols: &[String], tx: &mpsc::Sender<FeedEvent>) -> StreamEnd {
        self.stream_calls.lock().unwrap().push(Instant::now());
        let next = self.streams.lock().unwrap().pop_front();
        match next {
            Some((lasts, end)) => {
                if !lasts.is_zero() {
                    let _ = tx.send(FeedEvent::State(FeedState::Streaming)).await;
                    tokio::time::sleep(lasts).await;
                }
                end
            }
            // Script over: stream until the receiver goes away.
            None => {
                let _ = tx.send(FeedEvent::State(FeedState::Streaming)).await;
                tx.closed().await;
                StreamEnd::Closed
            }
        }
    }

    async fn poll(&self, symbols: &[String]) -> Polled {
        self.poll_calls
            .lock()
            .unwrap()
            .push((Instant::now(), symbols.to_vec()));
        let next = self.polls.lock().unwrap().pop_front();
        next.unwrap_or_else(|| self.default_poll.clone())
    }
}

fn btc(last: f64) -> Tick {
    Tick {
        symbol: "BTC/USD".into(),
        last: Some(last),
        bid: None,
        ask: None,
        at_ms: 1,
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn refused_stream_polls_then_tries_the_stream_again() {
    let fake = FakeProvider::new(
        vec![(Duration::ZERO, StreamEnd::Refused("HTTP 403".into()))],
        vec![],
        Ok((vec![btc(100.0)], vec![])),
    );
    let (mut rx, _task) = start(fake.clone(), &["BTC/USD"], Policy::default());
    assert!(is_connecting(&next(&mut rx, VIRTUAL).await));
    assert_eq!(
        next(&mut rx, VIRTUAL).await,
        FeedEvent::State(FeedState::Polling {
            every: Duration::from_secs(2),
            why: "HTTP 403".into()
        })
    );
    let seen = until(&mut rx, VIRTUAL, is_connecting).await;
    assert_eq!(
        ticks_of(&seen).len(),
        30,
        "polled every 2 s for 60 s: {seen:?}"
    );
    assert!(ticks_of(&seen).iter().all(|t| t.last == Some(100.0)));
    let calls = fake.stream_calls();
    let polls = fake.poll_calls();
    assert_eq!(calls.len(), 2);
    assert!(
        (secs(calls[1] - calls[0]) - 60.0).abs() < 0.01,
        "{:?}",
        calls[1] - calls[0]
    );
    for w in polls.windows(2) {
        assert!((secs(w[1].0 - w[0].0) - 2.0).abs() < 0.01);
    }
    assert!(is_streaming(&next(&mut rx, VIRTUAL).await));
}

#[tokio::test(start_paused = true)]
async fn drops_reconnect_with_growing_jittered_back_off_then_poll() {
    let dropped = || (Duration::ZERO, StreamEnd::Dropped("reset".into()));
    let fake = FakeProvider::new(
        vec![dropped(), dropped(), dropped()],
        vec![],
        Ok((vec![btc(1.0)], vec![])),
    );
    let (mut rx, _task) = start(fake.clone(), &["BTC/USD"], Policy::default());
    let seen = until(&mut rx, VIRTUAL, |e| {
        matches!(e, FeedEvent::State(FeedState::Polling { .. }))
    })
    .await;
    assert_eq!(seen.iter().filter(|e| is_connecting(e)).count(), 3);
    match seen.last().unwrap() {
        FeedEvent::State(FeedState::Polling { why, .. }) => {
            assert!(why.contains("3 times") && why.contains("reset"), "{why}")
        }
        e => panic!("{e:?}"),
    }
    let calls = fake.stream_calls();
    let (first, second) = (secs(calls[1] - calls[0]), secs(calls[2] - calls[1]));
    assert!((0.4..=0.6).contains(&first), "0.5 s ± 20 %: {first}");
    assert!((0.8..=1.2).contains(&second), "1 s ± 20 %: {second}");
    // Polling starts at once after the third drop.
    let polls = fake.poll_calls();
    assert!(secs(polls[0].0 - calls[2]) < 0.01);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_lasted_starts_the_failure_count_again() {
    let quick = || (Duration::ZERO, StreamEnd::Dropped("reset".into()));
    let fake = FakeProvider::new(
        vec![
            quick(),
            quick(),
            (Duration::from_secs(120), StreamEnd::Dropped("reset".into())),
            quick(),
            quick(),
        ],
        vec![],
        Ok((vec![], vec![])),
    );
    let (mut rx, _task) = start(fake.clone(), &["BTC/USD"], Policy::default());
    until(&mut rx, VIRTUAL, |e| {
        matches!(e, FeedEvent::State(FeedState::Polling { .. }))
    })
    .await;
    // Without the reset the third drop would have meant polling; it takes five.
    assert_eq!(fake.stream_calls().len(), 5);
    let calls = fake.stream_calls();
    let after_long = secs(calls[3] - calls[2]) - 120.0;
    assert!(
        (0.4..=0.6).contains(&after_long),
        "first back-off again: {after_long}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_poll_is_down_and_waits_as_asked() {
    let fake = FakeProvider::new(
        vec![(Duration::ZERO, StreamEnd::Refused("no".into()))],
        vec![Err(PollError {
            message: "Coinbase: too many requests (HTTP 429)".into(),
            retry_after: Some(Duration::from_secs(10)),
        })],
        Ok((vec![btc(5.0)], vec![])),
    );
    let (mut rx, _task) = start(fake.clone(), &["BTC/USD"], Policy::default());
    let seen = until(&mut rx, VIRTUAL, is_ticks).await;
    let states: Vec<&FeedEvent> = seen.iter().filter(|e| !is_ticks(e)).collect();
    assert!(matches!(
        states[1],
        FeedEvent::State(FeedState::Polling { .. })
    ));
    assert_eq!(
        *states[2],
        FeedEvent::State(FeedState::Down {
            why: "Coinbase: too many requests (HTTP 429)".into()
        })
    );
    // Polling again, said so, once the wait is over.
    assert!(matches!(
        states[3],
        FeedEvent::State(FeedState::Polling { .. })
    ));
    let polls = fake.poll_calls();
    assert!((secs(polls[1].0 - polls[0].0) - 10.0).abs() < 0.01);
}

#[tokio::test(start_paused = true)]
async fn a_symbol_error_from_polls_is_said_once_and_not_asked_again() {
    let fake = FakeProvider::new(
        vec![(Duration::ZERO, StreamEnd::Refused("no".into()))],
        vec![],
        Ok((
            vec![btc(5.0)],
            vec![("NOPE/USD".into(), "unknown product".into())],
        )),
    );
    let (mut rx, _task) = start(fake.clone(), &["BTC/USD", "NOPE/USD"], Policy::default());
    let mut seen = Vec::new();
    while ticks_of(&seen).len() < 5 {
        seen.push(next(&mut rx, VIRTUAL).await);
    }
    assert_eq!(symbol_errors(&seen), vec!["NOPE/USD".to_string()]);
    let polls = fake.poll_calls();
    assert_eq!(polls[0].1, symbols(&["BTC/USD", "NOPE/USD"]));
    assert_eq!(polls[1].1, symbols(&["BTC/USD"]));
}

#[tokio::test(start_paused = true)]
async fn the_feed_stops_when_nobody_listens() {
    // While polling …
    let fake = FakeProvider::new(
        vec![(Duration::ZERO, StreamEnd::Refused("no".into()))],
        vec![],
        Ok((vec![btc(5.0)], vec![])),
    );
    let (mut rx, task) = start(fake.clone(), &["BTC/USD"], Policy::default());
    until(&mut rx, VIRTUAL, is_ticks).await;
    drop(rx);
    tokio::time::timeout(VIRTUAL, task).await.unwrap().unwrap();
    // … while streaming, and when the provider says Closed.
    let fake = FakeProvider::new(vec![], vec![], Ok((vec![], vec![])));
    let (mut rx, task) = start(fake.clone(), &["BTC/USD"], Policy::default());
    until(&mut rx, VIRTUAL, is_streaming).await;
    drop(rx);
    tokio::time::timeout(VIRTUAL, task).await.unwrap().unwrap();
    let fake = FakeProvider::new(
        vec![(Duration::ZERO, StreamEnd::Closed)],
        vec![],
        Ok((vec![], vec![])),
    );
    let (_rx, task) = start(fake.clone(), &["BTC/USD"], Policy::default());
    tokio::time::timeout(VIRTUAL, task).await.unwrap().unwrap();
    assert_eq!(fake.stream_calls().len(), 1);
}

// ------------------------------------------------------------------------------------------
// Coinbase Exchange

fn cb_prices() -> HashMap<&'static str, (&'static str, &'static str, &'static str)> {
    HashMap::from([
        ("BTC-USD", ("64250.5", "64250.1", "64251.0")),
        ("ETH-USD", ("1285.22", "1285.04", "1285.27")),
    ])
}

/// A Coinbase feed: connection `n` ends with `plan(n)`.
async fn coinbase_ws(known: &'static [&'static str], plan: fn(usize) -> Then) -> WsFake {
    WsFake::serving(move |peer| async move {
        let then = plan(peer.conn);
        coinbase_session(peer, known, &cb_prices(), then).await
    })
    .await
}

fn coinbase(ws: &str, rest: &str) -> Coinbase {
    Coinbase::new(ws, rest)
        .unwrap()
        .with_timeout(Duration::from_secs(2))
        .unwrap()
}

fn subscribes(ws: &WsFake, key: &str, value: &str) -> Vec<(usize, Value)> {
    ws.received()
        .into_iter()
        .filter(|(_, m)| m[key] == value)
        .collect()
}

/// 2022-10-19T23:28:22.061769Z, the time of the fake's tickers.
const CB_STREAM_MS: i64 = 1_666_222_102_061;

#[tokio::test]
async fn coinbase_streams_ticks_with_bid_ask_last_and_time() {
    let ws = coinbase_ws(&["BTC-USD", "ETH-USD"], |_| Then::Hold).await;
    let provider = Arc::new(coinbase(&ws.url, "http://127.0.0.1:9"));
    let (mut rx, _task) = start(provider, &["BTC/USD", "ETH/USD"], fast());
    assert!(is_connecting(&next(&mut rx, REAL).await));
    assert!(is_streaming(&next(&mut rx, REAL).await));
    let mut ticks = Vec::new();
    while ticks.len() < 2 {
        match next(&mut rx, REAL).await {
            FeedEvent::Ticks(t) => ticks.extend(t),
            e => panic!("only ticks while streaming, got {e:?}"),
        }
    }
    ticks.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    assert_eq!(
        ticks,
        vec![
            Tick {
                symbol: "BTC/USD".into(),
                last: Some(64250.5),
                bid: Some(64250.1),
                ask: Some(64251.0),
                at_ms: CB_STREAM_MS
            },
            Tick {
                symbol: "ETH/USD".into(),
                last: Some(1285.22),
                bid: Some(1285.04),
                ask: Some(1285.27),
                at_ms: CB_STREAM_MS
            },
        ]
    );
    // One subscribe: ticker and heartbeat, the products named per channel.
    let subs = subscribes(&ws, "type", "subscribe");
    assert_eq!(subs.len(), 1);
    let channels = &subs[0].1["channels"];
    for (i, name) in ["ticker", "heartbeat"].iter().enumerate() {
        assert_eq!(channels[i]["name"], *name);
        assert_eq!(
            channels[i]["product_ids"],
            serde_json::json!(["BTC-USD", "ETH-USD"])
        );
    }
}

#[tokio::test]
async fn coinbase_unknown_symbol_is_one_error_and_the_others_stream() {
    let ws = coinbase_ws(&["BTC-USD"], |_| Then::Hold).await;
    let provider = Arc::new(coinbase(&ws.url, "http://127.0.0.1:9"));
    let (mut rx, _task) = start(provider, &["BTC/USD", "NOPE/USD"], fast());
    let seen = until(&mut rx, REAL, is_ticks).await;
    assert_eq!(symbol_errors(&seen), vec!["NOPE/USD".to_string()]);
    match seen
        .iter()
        .find(|e| matches!(e, FeedEvent::SymbolError { .. }))
    {
        Some(FeedEvent::SymbolError { message, .. }) => {
            assert!(
                message.contains("NOPE-USD is not a valid product"),
                "{message}"
            )
        }
        _ => unreachable!(),
    }
    assert!(seen.iter().any(is_streaming));
    assert_eq!(ticks_of(&seen)[0].symbol, "BTC/USD");
    // The whole subscribe was ignored, so it is asked again without the unknown product.
    let subs = subscribes(&ws, "type", "subscribe");
    assert_eq!(subs.len(), 2);
    assert_eq!(coinbase_products(&subs[0].1), vec!["BTC-USD", "NOPE-USD"]);
    assert_eq!(coinbase_products(&subs[1].1), vec!["BTC-USD"]);
}

#[tokio::test]
async fn coinbase_dropped_stream_reconnects_and_resubscribes() {
    let ws = coinbase_ws(
        &["BTC-USD"],
        |n| if n == 0 { Then::Cut } else { Then::Hold },
    )
    .await;
    let provider = Arc::new(coinbase(&ws.url, "http://127.0.0.1:9"));
    let (mut rx, _task) = start(provider, &["BTC/USD"], fast());
    let first = until(&mut rx, REAL, is_ticks).await;
    assert_eq!(
        first[..2],
        [
            FeedEvent::State(FeedState::Connecting),
            FeedEvent::State(FeedState::Streaming)
        ]
    );
    let again = until(&mut rx, REAL, is_ticks).await;
    assert!(is_connecting(&again[0]), "{again:?}");
    assert!(again.iter().any(is_streaming));
    assert_eq!(ticks_of(&again)[0].last, Some(64250.5));
    assert_eq!(ws.connections(), 2);
    let subs = subscribes(&ws, "type", "subscribe");
    assert_eq!(subs.iter().map(|(c, _)| *c).collect::<Vec<_>>(), vec![0, 1]);
}

#[tokio::test]
async fn coinbase_refused_stream_falls_back_to_polling() {
    let ws = WsFake::refusing(403).await;
    let rest = CoinbaseRest::start(
        HashMap::from([(
            "BTC-USD".to_string(),
            (
                "6268.48".to_string(),
                "6265.15".to_string(),
                "6267.71".to_string(),
            ),
        )]),
        0,
        "",
    )
    .await;
    let provider = Arc::new(coinbase(&ws.url, &rest.url));
    let (mut rx, _task) = start(provider, &["BTC/USD", "NOPE/USD"], fast());
    assert!(is_connecting(&next(&mut rx, REAL).await));
    match next(&mut rx, REAL).await {
        FeedEvent::State(FeedState::Polling { every, why }) => {
            assert_eq!(every, Duration::from_millis(50));
            assert!(why.contains("403"), "{why}");
        }
        e => panic!("{e:?}"),
    }
    let mut seen = Vec::new();
    while ticks_of(&seen).len() < 3 {
        seen.push(next(&mut rx, REAL).await);
    }
    assert_eq!(
        ticks_of(&seen)[0],
        Tick {
            symbol: "BTC/USD".into(),
            last: Some(6268.48),
            bid: Some(6265.15),
            ask: Some(6267.71),
            at_ms: 1_584_663_777_833
        }
    );
    // The unknown product's 404 is said once, and not asked for again.
    assert_eq!(symbol_errors(&seen), vec!["NOPE/USD".to_string()]);
    let asked = rest.requested();
    assert_eq!(asked.iter().filter(|p| *p == "NOPE-USD").count(), 1);
    assert!(asked.iter().filter(|p| *p == "BTC-USD").count() >= 3);
}

#[tokio::test]
async fn coinbase_silent_stream_counts_as_dropped_and_reconnects() {
    // Alone: the stream ends as dropped after the silence.
    let ws = coinbase_ws(&["BTC-USD"], |_| Then::Silent).await;
    let provider = coinbase(&ws.url, "http://127.0.0.1:9").with_silence(Duration::from_millis(150));
    let (tx, mut rx) = mpsc::channel(64);
    let started = std::time::Instant::now();
    let end = provider.stream(&symbols(&["BTC/USD"]), &tx).await;
    match end {
        StreamEnd::Dropped(why) => assert!(why.contains("nothing received"), "{why}"),
        e => panic!("{e:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(is_streaming(&next(&mut rx, REAL).await));
    // In the feed: it connects again.
    let ws = coinbase_ws(
        &["BTC-USD"],
        |n| if n == 0 { Then::Silent } else { Then::Hold },
    )
    .await;
    let provider =
        Arc::new(coinbase(&ws.url, "http://127.0.0.1:9").with_silence(Duration::from_millis(150)));
    let (mut rx, _task) = start(provider, &["BTC/USD"], fast());
    until(&mut rx, REAL, is_ticks).await;
    let again = until(&mut rx, REAL, is_ticks).await;
    assert!(is_connecting(&again[0]));
    assert_eq!(ws.connections(), 2);
    assert_eq!(subscribes(&ws, "type", "subscribe").len(), 2);
}

#[tokio::test]
async fn coinbase_429_on_poll_is_honoured() {
    let rest = CoinbaseRest::start(
        HashMap::from([(
            "BTC-USD".to_string(),
            (
                "6268.48".to_string(),
                "6265.15".to_string(),
                "6267.71".to_string(),
            ),
        )]),
        1,
        "7",
    )
    .await;
    let provider = coinbase("ws://127.0.0.1:9", &rest.url);
    let e = provider.poll(&symbols(&["BTC/USD"])).await.unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    assert!(e.message.contains("429"), "{}", e.message);
    let (ticks, errors) = provider.poll(&symbols(&["BTC/USD"])).await.unwrap();
    assert_eq!(ticks[0].last, Some(6268.48));
    assert!(errors.is_empty());
}

// ------------------------------------------------------------------------------------------
// Alpaca crypto

fn alpaca_prices() -> HashMap<&'static str, (f64, f64, f64)> {
    HashMap::from([
        ("BTC/USD", (57527.0, 57520.5, 57530.25)),
        ("ETH/USD", (1285.5, 1285.25, 1285.75)),
    ])
}

async fn alpaca_ws(known: &'static [&'static str], plan: fn(usize) -> Then) -> WsFake {
    WsFake::serving(move |peer| async move {
        let then = plan(peer.conn);
        alpaca_session(peer, known, &alpaca_prices(), then).await
    })
    .await
}

fn keys(secret: &str) -> Option<Keys> {
    Some(Keys {
        key_id: ALPACA_KEY.into(),
        secret: secret.into(),
    })
}

fn alpaca(ws: &str, rest: &str, keys: Option<Keys>) -> Alpaca {
    Alpaca::new(ws, rest, keys)
        .unwrap()
        .with_timeout(Duration::from_secs(2))
        .unwrap()
}

/// 2024-03-12T10:27:48.858228144Z and 2024-03-12T10:29:43.111588173Z: the fake's trade and
/// quote times.
const TRADE_MS: i64 = 1_710_239_268_858;
const QUOTE_MS: i64 = 1_710_239_383_111;

#[tokio::test]
async fn alpaca_streams_trades_and_quotes_as_ticks() {
    let ws = alpaca_ws(&["BTC/USD", "ETH/USD"], |_| Then::Hold).await;
    let provider = Arc::new(alpaca(&ws.url, "http://127.0.0.1:9", keys(ALPACA_SECRET)));
    let (mut rx, _task) = start(provider, &["BTC/USD", "ETH/USD"], fast());
    assert!(is_connecting(&next(&mut rx, REAL).await));
    assert!(is_streaming(&next(&mut rx, REAL).await));
    let FeedEvent::Ticks(ticks) = next(&mut rx, REAL).await else {
        panic!("ticks expected");
    };
    assert_eq!(
        ticks.len(),
        4,
        "a trade and a quote per symbol, in one frame: {ticks:?}"
    );
    let trade = ticks
        .iter()
        .find(|t| t.symbol == "BTC/USD" && t.last.is_some())
        .unwrap();
    assert_eq!(
        (trade.last, trade.bid, trade.at_ms),
        (Some(57527.0), None, TRADE_MS)
    );
    let quote = ticks
        .iter()
        .find(|t| t.symbol == "ETH/USD" && t.bid.is_some())
        .unwrap();
    assert_eq!(
        (quote.last, quote.bid, quote.ask, quote.at_ms),
        (None, Some(1285.25), Some(1285.75), QUOTE_MS)
    );
    // Authenticated with the keys, then subscribed to trades and quotes.
    let sent = ws.received();
    assert_eq!(sent[0].1["action"], "auth");
    assert_eq!(sent[0].1["key"], ALPACA_KEY);
    assert_eq!(sent[1].1["action"], "subscribe");
    assert_eq!(
        sent[1].1["trades"],
        serde_json::json!(["BTC/USD", "ETH/USD"])
    );
    assert_eq!(
        sent[1].1["quotes"],
        serde_json::json!(["BTC/USD", "ETH/USD"])
    );
}

#[tokio::test]
async fn alpaca_unknown_symbol_is_one_error_and_the_others_stream() {
    let ws = alpaca_ws(&["BTC/USD"], |_| Then::Hold).await;
    let provider = Arc::new(alpaca(&ws.url, "http://127.0.0.1:9", keys(ALPACA_SECRET)));
    let (mut rx, _task) = start(provider, &["BTC/USD", "NOPE/USD"], fast());
    let seen = until(&mut rx, REAL, is_ticks).await;
    assert_eq!(symbol_errors(&seen), vec!["NOPE/USD".to_string()]);
    assert!(seen.iter().any(is_streaming));
    assert!(ticks_of(&seen).iter().all(|t| t.symbol == "BTC/USD"));
    assert_eq!(ticks_of(&seen).len(), 2);
}

#[tokio::test]
async fn alpaca_dropped_stream_reconnects_authenticates_and_resubscribes() {
    let ws = alpaca_ws(
        &["BTC/USD"],
        |n| if n == 0 { Then::Cut } else { Then::Hold },
    )
    .await;
    let provider = Arc::new(alpaca(&ws.url, "http://127.0.0.1:9", keys(ALPACA_SECRET)));
    let (mut rx, _task) = start(provider, &["BTC/USD"], fast());
    until(&mut rx, REAL, is_ticks).await;
    let again = until(&mut rx, REAL, is_ticks).await;
    assert!(is_connecting(&again[0]), "{again:?}");
    assert!(again.iter().any(is_streaming));
    assert_eq!(ws.connections(), 2);
    let conns = |action: &str| -> Vec<usize> {
        subscribes(&ws, "action", action)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    };
    assert_eq!(conns("auth"), vec![0, 1]);
    assert_eq!(conns("subscribe"), vec![0, 1]);
}

fn alpaca_rest_prices() -> HashMap<String, (f64, f64, f64)> {
    HashMap::from([("BTC/USD".to_string(), (57527.0, 39381.18, 39463.42))])
}

/// The fake REST's latest quote (2022-02-25T12:56:22.338903764Z) is later than its trade.
const REST_QUOTE_MS: i64 = 1_645_793_782_338;

#[tokio::test]
async fn alpaca_refused_auth_falls_back_to_polling() {
    let ws = alpaca_ws(&["BTC/USD"], |_| Then::Hold).await;
    let rest = AlpacaRest::start(alpaca_rest_prices(), 0, vec![]).await;
    let provider = Arc::new(alpaca(&ws.url, &rest.url, keys("wrong-secret")));
    let (mut rx, _task) = start(provider, &["BTC/USD", "NOPE/USD"], fast());
    assert!(is_connecting(&next(&mut rx, REAL).await));
    match next(&mut rx, REAL).await {
        FeedEvent::State(FeedState::Polling { why, .. }) => {
            assert!(why.contains("auth failed") && why.contains("402"), "{why}");
            assert!(!why.contains("wrong-secret"));
        }
        e => panic!("{e:?}"),
    }
    let mut seen = Vec::new();
    while ticks_of(&seen).len() < 3 {
        seen.push(next(&mut rx, REAL).await);
    }
    assert_eq!(
        ticks_of(&seen)[0],
        Tick {
            symbol: "BTC/USD".into(),
            last: Some(57527.0),
            bid: Some(39381.18),
            ask: Some(39463.42),
            at_ms: REST_QUOTE_MS
        }
    );
    // Missing from the answer: said once, then asked only for the known symbol.
    assert_eq!(symbol_errors(&seen), vec!["NOPE/USD".to_string()]);
    // One request for the quotes and one for the trades per poll, with the keys.
    let asked = rest.requests();
    assert!(asked.len() >= 6, "{asked:?}");
    let mut first: Vec<&str> = asked[..2].iter().map(|r| r.kind.as_str()).collect();
    first.sort();
    assert_eq!(first, ["quotes", "trades"]);
    assert!(asked[..2].iter().all(|r| r.symbols == "BTC/USD,NOPE/USD"));
    assert!(asked[2..].iter().all(|r| r.symbols == "BTC/USD"));
    assert!(asked.iter().all(|r| r.key.as_deref() == Some(ALPACA_KEY)));
}

#[tokio::test]
async fn alpaca_without_keys_polls_and_never_connects() {
    let ws = alpaca_ws(&["BTC/USD"], |_| Then::Hold).await;
    let rest = AlpacaRest::start(alpaca_rest_prices(), 0, vec![]).await;
    let provider = Arc::new(alpaca(&ws.url, &rest.url, None));
    let (mut rx, _task) = start(provider, &["BTC/USD"], fast());
    let seen = until(&mut rx, REAL, is_ticks).await;
    // Polling from the start: not even a "connecting" it could never get past.
    match &seen[0] {
        FeedEvent::State(FeedState::Polling { why, .. }) => {
            assert!(why.contains("APCA_API_KEY_ID"), "{why}")
        }
        e => panic!("{e:?}"),
    }
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, FeedEvent::State(FeedState::Connecting))),
        "{seen:?}"
    );
    assert_eq!(ws.connections(), 0);
    assert!(rest.requests().iter().all(|r| r.key.is_none()));
}

#[tokio::test]
async fn alpaca_silent_stream_counts_as_dropped_and_reconnects() {
    let ws = alpaca_ws(
        &["BTC/USD"],
        |n| if n == 0 { Then::Silent } else { Then::Hold },
    )
    .await;
    let provider = alpaca(&ws.url, "http://127.0.0.1:9", keys(ALPACA_SECRET))
        .with_silence(Duration::from_millis(150));
    let (tx, _rx) = mpsc::channel(64);
    match provider.stream(&symbols(&["BTC/USD"]), &tx).await {
        StreamEnd::Dropped(why) => assert!(why.contains("nothing received"), "{why}"),
        e => panic!("{e:?}"),
    }
    let provider = Arc::new(provider);
    let (mut rx, _task) = start(provider, &["BTC/USD"], fast());
    until(&mut rx, REAL, is_ticks).await;
    assert_eq!(ws.connections(), 2);
    assert_eq!(subscribes(&ws, "action", "subscribe").len(), 2);
}

#[tokio::test]
async fn alpaca_429_on_poll_is_honoured() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let reset = vec![("X-RateLimit-Reset".to_string(), (now + 5).to_string())];
    let rest = AlpacaRest::start(alpaca_rest_prices(), 2, reset).await;
    let provider = alpaca("ws://127.0.0.1:9", &rest.url, None);
    let e = provider.poll(&symbols(&["BTC/USD"])).await.unwrap_err();
    let wait = e.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(3) && wait <= Duration::from_secs(5),
        "{wait:?}"
    );
    assert!(e.message.contains("429"));
    let (ticks, _) = provider.poll(&symbols(&["BTC/USD"])).await.unwrap();
    assert_eq!(ticks[0].last, Some(57527.0));

    let retry = vec![("Retry-After".to_string(), "7".to_string())];
    let rest = AlpacaRest::start(alpaca_rest_prices(), 1, retry).await;
    let provider = alpaca("ws://127.0.0.1:9", &rest.url, None);
    let e = provider.poll(&symbols(&["BTC/USD"])).await.unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn alpaca_poll_names_a_malformed_symbol_and_prices_the_others() {
    let rest = AlpacaRest::start_rejecting(alpaca_rest_prices(), 0, vec![], &["BAD!"]).await;
    let provider = alpaca("ws://127.0.0.1:9", &rest.url, None);
    let (ticks, errors) = provider.poll(&symbols(&["BTC/USD", "BAD!"])).await.unwrap();
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0].symbol, "BTC/USD");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "BAD!");
    assert!(errors[0].1.contains("invalid symbol"), "{}", errors[0].1);
    // Asked again without it, and not in later polls.
    provider.poll(&symbols(&["BTC/USD", "BAD!"])).await.unwrap();
    let asked: Vec<String> = rest.requests().into_iter().map(|r| r.symbols).collect();
    assert_eq!(asked.iter().filter(|s| s.contains("BAD!")).count(), 2);
    assert_eq!(asked.len(), 6);
}

#[tokio::test]
async fn coinbase_a_poll_that_partly_fails_still_prices_the_products_that_answered() {
    let price = |p: &str| (p.to_string(), p.to_string(), p.to_string());
    let rest = CoinbaseRest::start(
        HashMap::from([
            ("BTC-USD".to_string(), price("6268.48")),
            ("ETH-USD".to_string(), price("250.10")),
        ]),
        1,
        "7",
    )
    .await;
    let provider = coinbase("ws://127.0.0.1:9", &rest.url);
    // One of the two requests is rate-limited: the other's price still counts.
    let (ticks, errors) = provider
        .poll(&symbols(&["BTC/USD", "ETH/USD"]))
        .await
        .unwrap();
    assert_eq!(ticks.len(), 1, "{ticks:?}");
    assert!(errors.is_empty());
    // The next round prices both.
    let (ticks, _) = provider
        .poll(&symbols(&["BTC/USD", "ETH/USD"]))
        .await
        .unwrap();
    assert_eq!(ticks.len(), 2);
}

// ------------------------------------------------------------------------------------------
// Alpaca US stocks, alone and beside crypto (tests/support/market.rs cites Alpaca's stock
// protocol for each fake).

use autotrade_tui::config::StockFeed;
use autotrade_tui::market::{Plan, alpaca, run_plan};

/// What the stock stream trades and quotes at.
fn stock_stream_prices() -> HashMap<&'static str, (f64, f64, f64)> {
    HashMap::from([
        ("AAPL", (126.55, 126.5, 126.6)),
        ("MSFT", (253.87, 253.85, 253.9)),
    ])
}

/// What the REST API answers: other prices, so a test tells a poll from the stream.
fn stock_rest_prices() -> HashMap<String, (f64, f64, f64)> {
    HashMap::from([
        ("AAPL".to_string(), (142.2, 142.1, 142.3)),
        ("MSFT".to_string(), (294.1, 294.0, 294.2)),
        ("BTC/USD".to_string(), (57527.0, 39381.18, 39463.42)),
    ])
}

/// 2021-02-22T15:51:45.335Z: when the stock stream fake's quotes are timed in most tests.
const STOCK_QUOTE_MS: i64 = 1_614_009_105_335;
/// The REST fake's latest stock trade (2021-10-11T23:42:47.895547Z), later than its quote.
const REST_STOCK_MS: i64 = 1_633_995_767_895;

fn stock_quote_time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(STOCK_QUOTE_MS).unwrap()
}

async fn stock_ws(script: StockStream) -> WsFake {
    WsFake::serving(move |peer| async move {
        alpaca_stock_session(peer, &stock_stream_prices(), stock_quote_time(), script).await
    })
    .await
}

fn stocks(ws: &str, rest: &str, keys: Option<Keys>) -> Alpaca {
    Alpaca::stocks(ws, rest, keys, StockFeed::Iex)
        .unwrap()
        .with_timeout(Duration::from_secs(2))
        .unwrap()
}

fn start_plan(plan: Plan, policy: Policy) -> (mpsc::Receiver<FeedEvent>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(run_plan(plan, tx, policy));
    (rx, task)
}

fn tick(symbol: &str, last: Option<f64>, bid: Option<f64>, ask: Option<f64>, at_ms: i64) -> Tick {
    Tick {
        symbol: symbol.into(),
        last,
        bid,
        ask,
        at_ms,
    }
}

#[tokio::test]
async fn alpaca_stock_ticks_stream_with_the_keys_in_the_auth_message_and_the_headers() {
    let ws = stock_ws(StockStream::Serve(Then::Hold)).await;
    let rest = AlpacaRest::start(stock_rest_prices(), 0, vec![]).await;
    let provider = Arc::new(stocks(&ws.url, &rest.url, keys(ALPACA_SECRET)));
    let (mut rx, _task) = start(provider, &["AAPL", "MSFT"], fast());
    let mut seen = until(&mut rx, REAL, is_streaming).await;
    // Before the stream, the latest prices over REST: outside market hours the stream is
    // silent, and these are what the stocks last traded at (stale by their time).
    let mut seed = ticks_of(&seen);
    seed.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    assert_eq!(
        seed,
        vec![
            tick("AAPL", Some(142.2), Some(142.1), Some(142.3), REST_STOCK_MS),
            tick("MSFT", Some(294.1), Some(294.0), Some(294.2), REST_STOCK_MS),
        ]
    );
    while ticks_of(&seen).len() < 6 {
        seen.push(next(&mut rx, REAL).await);
    }
    let streamed = &ticks_of(&seen)[2..];
    assert!(streamed.contains(&tick("AAPL", Some(126.55), None, None, STOCK_QUOTE_MS - 1)));
    assert!(streamed.contains(&tick(
        "AAPL",
        None,
        Some(126.5),
        Some(126.6),
        STOCK_QUOTE_MS
    )));
    assert!(streamed.contains(&tick(
        "MSFT",
        None,
        Some(253.85),
        Some(253.9),
        STOCK_QUOTE_MS
    )));
    assert!(symbol_errors(&seen).is_empty(), "{seen:?}");
    // The stream: auth with the keys, then trades and quotes of every ticker.
    let sent = ws.received();
    assert_eq!(sent[0].1["action"], "auth");
    assert_eq!(sent[0].1["key"], ALPACA_KEY);
    assert_eq!(sent[0].1["secret"], ALPACA_SECRET);
    assert_eq!(sent[1].1["action"], "subscribe");
    assert_eq!(sent[1].1["trades"], serde_json::json!(["AAPL", "MSFT"]));
    assert_eq!(sent[1].1["quotes"], serde_json::json!(["AAPL", "MSFT"]));
    // REST: the stock endpoints on the free feed, both keys in the headers.
    let asked = rest.requests();
    let mut kinds: Vec<&str> = asked.iter().map(|r| r.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["quotes", "trades"]);
    for r in &asked {
        assert!(r.stocks, "{r:?}");
        assert_eq!(r.symbols, "AAPL,MSFT");
        assert_eq!(r.feed.as_deref(), Some("iex"));
        assert_eq!(r.key.as_deref(), Some(ALPACA_KEY));
        assert!(r.secret_ok, "{r:?}");
    }
}

#[tokio::test]
async fn alpaca_mixed_symbols_stream_both_halves_into_the_stored_bid_and_ask() {
    use autotrade_tui::desk::Desk;
    use autotrade_tui::store::Store;
    let now = chrono::Utc::now();
    let crypto_ws = alpaca_ws(&["BTC/USD"], |_| Then::Hold).await;
    let stock_ws = WsFake::serving(move |peer| async move {
        alpaca_stock_session(
            peer,
            &stock_stream_prices(),
            now,
            StockStream::Serve(Then::Hold),
        )
        .await
    })
    .await;
    let rest = AlpacaRest::start(stock_rest_prices(), 0, vec![]).await;
    let plan = alpaca::plan(
        &symbols(&["BTC/USD", "AAPL"]),
        alpaca(&crypto_ws.url, &rest.url, keys(ALPACA_SECRET)),
        stocks(&stock_ws.url, &rest.url, keys(ALPACA_SECRET)),
    );
    assert_eq!(plan.parts.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let config = autotrade_tui::config::parse_str(
        "[auto_trade]\nsymbols = [\"BTC/USD\", \"AAPL\"]\n[ml_engine]\nurl = \"http://127.0.0.1:9\"\n\
         [market_data]\nprovider = \"alpaca\"\n",
        "test",
    )
    .unwrap();
    let store = Store::open(dir.path(), "u", true).unwrap();
    let desk = Desk::new(Arc::new(config), dir.path().into(), Arc::new(store));
    let (tx, rx) = mpsc::channel(64);
    let (events_tx, mut events) = mpsc::channel(64);
    let _run = tokio::spawn(run_plan(plan, tx, fast()));
    let _consume = tokio::spawn(autotrade_tui::engine::feed::consume(
        desk.clone(),
        "alpaca",
        rx,
        events_tx,
    ));
    // One state for the feed: streaming once both halves stream.
    let deadline = Instant::now() + REAL;
    loop {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the feed did not stream")
            .unwrap();
        if let autotrade_tui::engine::EngineEvent::Feed { provider, state } = e {
            assert_eq!(provider, "alpaca");
            if state == FeedState::Streaming {
                break;
            }
            assert!(
                matches!(state, FeedState::Connecting),
                "nothing refused here: {state:?}"
            );
        }
    }
    // The stocks' stream ticks reach the store: the quote's bid and ask, the trade's price.
    let stored = loop {
        let prices = desk.store.prices().unwrap();
        if let (Some(aapl), Some(btc)) = (prices.get("AAPL"), prices.get("BTC/USD"))
            && aapl.bid == Some(126.5)
            && btc.bid.is_some()
        {
            break (*aapl, *btc);
        }
        assert!(Instant::now() < deadline, "not stored: {prices:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (aapl, btc) = stored;
    assert_eq!(
        (aapl.price, aapl.bid, aapl.ask),
        (126.55, Some(126.5), Some(126.6))
    );
    assert_eq!(aapl.at_ms, now.timestamp_millis());
    assert_eq!((btc.bid, btc.ask), (Some(57520.5), Some(57530.25)));
    assert_eq!((crypto_ws.connections(), stock_ws.connections()), (1, 1));
    // Each stream was asked only for its own kind of symbol.
    assert_eq!(
        subscribes(&crypto_ws, "action", "subscribe")[0].1["trades"],
        serde_json::json!(["BTC/USD"])
    );
    assert_eq!(
        subscribes(&stock_ws, "action", "subscribe")[0].1["trades"],
        serde_json::json!(["AAPL"])
    );
}

#[tokio::test]
async fn alpaca_without_keys_each_stock_is_one_error_and_crypto_still_ticks() {
    let crypto_ws = alpaca_ws(&["BTC/USD"], |_| Then::Hold).await;
    let stock_ws = stock_ws(StockStream::Serve(Then::Hold)).await;
    let rest = AlpacaRest::start(stock_rest_prices(), 0, vec![]).await;
    let plan = alpaca::plan(
        &symbols(&["AAPL", "BTC/USD", "BRK.B"]),
        alpaca(&crypto_ws.url, &rest.url, None),
        stocks(&stock_ws.url, &rest.url, None),
    );
    let (mut rx, _task) = start_plan(plan, fast());
    let mut seen = Vec::new();
    while ticks_of(&seen).len() < 4 {
        seen.push(next(&mut rx, REAL).await);
    }
    // One error per stock, first, saying what it needs; never a key's value.
    assert_eq!(
        symbol_errors(&seen),
        vec!["AAPL".to_string(), "BRK.B".to_string()]
    );
    for e in &seen[..2] {
        let FeedEvent::SymbolError { message, .. } = e else {
            panic!("{e:?}")
        };
        assert!(
            message.contains("US stocks on Alpaca need APCA_API_KEY_ID and APCA_API_SECRET_KEY"),
            "{message}"
        );
    }
    // Crypto needs no keys: polled.
    assert!(ticks_of(&seen).iter().all(|t| t.symbol == "BTC/USD"));
    assert!(matches!(
        seen[2],
        FeedEvent::State(FeedState::Polling { .. })
    ));
    // Nothing ever asked Alpaca about a stock.
    assert_eq!(stock_ws.connections(), 0);
    assert_eq!(crypto_ws.connections(), 0);
    let asked = rest.requests();
    assert!(
        asked.iter().all(|r| !r.stocks && r.symbols == "BTC/USD"),
        "{asked:?}"
    );
}

#[tokio::test]
async fn alpaca_only_stocks_without_keys_is_down_and_says_why() {
    let plan = alpaca::plan(
        &symbols(&["AAPL"]),
        alpaca("ws://127.0.0.1:9", "http://127.0.0.1:9", None),
        stocks("ws://127.0.0.1:9", "http://127.0.0.1:9", None),
    );
    assert!(plan.parts.is_empty());
    let (mut rx, task) = start_plan(plan, fast());
    assert_eq!(
        symbol_errors(&[next(&mut rx, REAL).await]),
        vec!["AAPL".to_string()]
    );
    match next(&mut rx, REAL).await {
        FeedEvent::State(FeedState::Down { why }) => {
            assert!(why.contains("APCA_API_KEY_ID"), "{why}")
        }
        e => panic!("{e:?}"),
    }
    // Nothing more: no loop, no retries; it ends with its receiver.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );
    drop(rx);
    tokio::time::timeout(REAL, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn alpaca_refused_stock_stream_polls_rest_while_crypto_streams() {
    let crypto_ws = alpaca_ws(&["BTC/USD"], |_| Then::Hold).await;
    let stock_ws = stock_ws(StockStream::Refuse(406, "connection limit exceeded")).await;
    let rest = AlpacaRest::start(stock_rest_prices(), 0, vec![]).await;
    let plan = alpaca::plan(
        &symbols(&["BTC/USD", "AAPL"]),
        alpaca(&crypto_ws.url, &rest.url, keys(ALPACA_SECRET)),
        stocks(&stock_ws.url, &rest.url, keys(ALPACA_SECRET)),
    );
    let (mut rx, _task) = start_plan(plan, fast());
    let mut seen = Vec::new();
    while ticks_of(&seen)
        .iter()
        .filter(|t| t.symbol == "AAPL")
        .count()
        < 4
        || !ticks_of(&seen).iter().any(|t| t.symbol == "BTC/USD")
    {
        seen.push(next(&mut rx, REAL).await);
    }
    // The feed reads as polling, and says which half polls and why.
    let polling: Vec<&String> = seen
        .iter()
        .filter_map(|e| match e {
            FeedEvent::State(FeedState::Polling { why, .. }) => Some(why),
            _ => None,
        })
        .collect();
    assert!(!polling.is_empty(), "{seen:?}");
    let why = polling.last().unwrap();
    assert!(
        why.contains("US stocks polling: Alpaca US stocks stream: connection limit exceeded (406)"),
        "{why}"
    );
    assert!(why.contains("crypto streaming"), "{why}");
    assert!(
        !why.contains(ALPACA_SECRET) && !why.contains(ALPACA_KEY),
        "{why}"
    );
    // The stocks' prices come from REST, the crypto's from its stream.
    let aapl: Vec<Tick> = ticks_of(&seen)
        .into_iter()
        .filter(|t| t.symbol == "AAPL")
        .collect();
    assert!(
        aapl.iter()
            .all(|t| *t == tick("AAPL", Some(142.2), Some(142.1), Some(142.3), REST_STOCK_MS))
    );
    let btc = ticks_of(&seen)
        .into_iter()
        .find(|t| t.symbol == "BTC/USD" && t.bid.is_some())
        .unwrap();
    assert_eq!((btc.bid, btc.at_ms), (Some(57520.5), QUOTE_MS));
    // Refused once: the stock stream is not hammered.
    assert_eq!(stock_ws.connections(), 1);
    assert_eq!(crypto_ws.connections(), 1);
    assert!(
        rest.requests()
            .iter()
            .all(|r| r.stocks && r.symbols == "AAPL")
    );
}

#[tokio::test]
async fn alpaca_unknown_stock_symbol_is_one_error_and_the_others_stream() {
    let ws = stock_ws(StockStream::Serve(Then::Hold)).await;
    let rest = AlpacaRest::start(stock_rest_prices(), 0, vec![]).await;
    let provider = Arc::new(stocks(&ws.url, &rest.url, keys(ALPACA_SECRET)));
    let (mut rx, _task) = start(provider, &["AAPL", "ZZZZ"], fast());
    let mut seen = until(&mut rx, REAL, is_streaming).await;
    while ticks_of(&seen).len() < 3 {
        seen.push(next(&mut rx, REAL).await);
    }
    assert_eq!(symbol_errors(&seen), vec!["ZZZZ".to_string()]);
    let message = seen
        .iter()
        .find_map(|e| match e {
            FeedEvent::SymbolError { message, .. } => Some(message.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(message, "Alpaca US stocks has no quote or trade for ZZZZ");
    assert!(ticks_of(&seen).iter().all(|t| t.symbol == "AAPL"));
    // The stream is asked only for the ticker Alpaca knows.
    let subs = subscribes(&ws, "action", "subscribe");
    assert_eq!(subs[0].1["trades"], serde_json::json!(["AAPL"]));
}
