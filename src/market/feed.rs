//! The feed loop every provider shares: stream while the provider streams, reconnect with
//! back-off and jitter when the stream drops, poll the REST API while the stream is refused
//! or keeps failing, and go back to the stream after a while.

use super::{FeedEvent, FeedState, Plan, Provider, StreamEnd, Tick};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How the feed reconnects and polls.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// How often the REST API is asked while the stream is not used.
    pub poll_every: Duration,
    /// How long to poll before the stream is tried again.
    pub retry_stream_after: Duration,
    /// The first wait before reconnecting a dropped stream; it doubles per consecutive drop.
    pub backoff_min: Duration,
    /// The longest wait before reconnecting.
    pub backoff_max: Duration,
    /// Consecutive drops after which the feed polls instead (for `retry_stream_after`).
    pub failures_before_polling: u32,
    /// A stream that lasted this long before it dropped was healthy: its drop starts the
    /// count of consecutive failures again.
    pub healthy_after: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            poll_every: Duration::from_secs(2),
            retry_stream_after: Duration::from_secs(60),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            failures_before_polling: 3,
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// The longest wait a provider's `retry_after` can impose (a bad reset time must not stop
/// the feed for a day).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Run the feed for `symbols` until `tx`'s receiver is gone or the provider says `Closed`.
pub async fn run(
    provider: Arc<dyn Provider>,
    symbols: Vec<String>,
    tx: mpsc::Sender<FeedEvent>,
    policy: Policy,
) {
    let mut feed = Feed {
        provider,
        symbols,
        tx,
        policy,
        told: HashSet::new(),
        jitter: Jitter::new(),
    };
    feed.run().await;
    tracing::debug!("market feed stopped");
}

/// Run every part of `plan` until `tx`'s receiver is gone: first each refused symbol's error,
/// then the parts, each with its own stream, back-off and polling, their ticks and symbol
/// errors merged into `tx`. The feed has one state: the state of the part worse off
/// (streaming, connecting, polling, down), its reason naming each part (`crypto streaming;
/// US stocks polling: …`). One part runs as if alone.
pub async fn run_plan(plan: Plan, tx: mpsc::Sender<FeedEvent>, policy: Policy) {
    for (symbol, message) in plan.refused.iter().cloned() {
        if tx
            .send(FeedEvent::SymbolError { symbol, message })
            .await
            .is_err()
        {
            return;
        }
    }
    let mut parts = plan.parts;
    match parts.len() {
        0 => {
            let why = plan
                .refused
                .first()
                .map(|(_, m)| m.clone())
                .unwrap_or_else(|| "no symbol to price".into());
            if tx
                .send(FeedEvent::State(FeedState::Down { why }))
                .await
                .is_ok()
            {
                tx.closed().await;
            }
            return;
        }
        1 => {
            let part = parts.remove(0);
            return run(part.provider, part.symbols, tx, policy).await;
        }
        _ => {}
    }
    let labels: Vec<&'static str> = parts.iter().map(|p| p.label).collect();
    let (merged_tx, mut merged) = mpsc::channel::<(usize, FeedEvent)>(64);
    let mut tasks = Tasks(Vec::new());
    for (i, part) in parts.into_iter().enumerate() {
        let (part_tx, mut part_rx) = mpsc::channel(64);
        tasks.0.push(tokio::spawn(run(
            part.provider,
            part.symbols,
            part_tx,
            policy.clone(),
        )));
        let merged_tx = merged_tx.clone();
        tasks.0.push(tokio::spawn(async move {
            while let Some(event) = part_rx.recv().await {
                if merged_tx.send((i, event)).await.is_err() {
                    return;
                }
            }
        }));
    }
    drop(merged_tx);
    let mut states = vec![FeedState::Connecting; labels.len()];
    let mut said: Option<FeedState> = None;
    loop {
        let next = tokio::select! {
            next = merged.recv() => next,
            _ = tx.closed() => return,
        };
        let Some((i, event)) = next else { return };
        let event = match event {
            FeedEvent::State(state) => {
                states[i] = state;
                let now = combined(&labels, &states);
                if said.as_ref() == Some(&now) {
                    continue;
                }
                said = Some(now.clone());
                FeedEvent::State(now)
            }
            other => other,
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

/// The parts' tasks, stopped with the plan.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// One state for the parts: the one worse off, and why, naming every part.
fn combined(labels: &[&str], states: &[FeedState]) -> FeedState {
    let rank = |s: &FeedState| match s {
        FeedState::Streaming => 0,
        FeedState::Connecting => 1,
        FeedState::Polling { .. } => 2,
        FeedState::Down { .. } => 3,
    };
    let Some(worst) = states.iter().max_by_key(|s| rank(s)) else {
        return FeedState::Connecting;
    };
    let why = || {
        labels
            .iter()
            .zip(states)
            .map(|(label, s)| match s {
                FeedState::Streaming => format!("{label} streaming"),
                FeedState::Connecting => format!("{label} connecting"),
                FeedState::Polling { why, .. } => format!("{label} polling: {why}"),
                FeedState::Down { why } => format!("{label} down: {why}"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    match worst {
        FeedState::Streaming | FeedState::Connecting => worst.clone(),
        FeedState::Polling { every, .. } => FeedState::Polling {
            every: *every,
            why: why(),
        },
        FeedState::Down { .. } => FeedState::Down { why: why() },
    }
}

struct Feed {
    provider: Arc<dyn Provider>,
    symbols: Vec<String>,
    tx: mpsc::Sender<FeedEvent>,
    policy: Policy,
    /// Symbols whose error was already sent (by a poll): each is said once.
    told: HashSet<String>,
    jitter: Jitter,
}

/// The receiver is gone: stop.
struct Stop;

impl Feed {
    async fn run(&mut self) {
        if let Some(why) = self.provider.cannot_stream() {
            while self
                .poll_for(Duration::from_secs(24 * 3600), why.clone())
                .await
                .is_ok()
            {}
            return;
        }
        let mut failures: u32 = 0;
        loop {
            if self
                .send(FeedEvent::State(FeedState::Connecting))
                .await
                .is_err()
            {
                return;
            }
            let started = Instant::now();
            let end = self.provider.stream(&self.symbols, &self.tx).await;
            let lasted = started.elapsed();
            let outcome = match end {
                StreamEnd::Closed => return,
                StreamEnd::Refused(why) => {
                    tracing::info!("{} stream refused: {why}; polling", self.provider.name());
                    failures = 0;
                    self.poll_for(self.policy.retry_stream_after, why).await
                }
                StreamEnd::Dropped(why) => {
                    if lasted >= self.policy.healthy_after {
                        failures = 0;
                    }
                    failures = failures.saturating_add(1);
                    let name = self.provider.name();
                    if failures >= self.policy.failures_before_polling.max(1) {
                        tracing::info!("{name} stream dropped {failures} times in a row: {why}");
                        let why = format!("the stream dropped {failures} times in a row: {why}");
                        failures = 0;
                        self.poll_for(self.policy.retry_stream_after, why).await
                    } else {
                        let wait = self.backoff(failures);
                        tracing::debug!("{name} stream dropped ({why}); again in {wait:?}");
                        self.wait(wait).await
                    }
                }
            };
            if outcome.is_err() {
                return;
            }
        }
    }

    fn backoff(&mut self, failures: u32) -> Duration {
        backoff(&self.policy, failures, &mut self.jitter)
    }

    /// Poll every `poll_every` for `how_long`, then return to try the stream again.
    async fn poll_for(&mut self, how_long: Duration, why: String) -> Result<(), Stop> {
        let until = Instant::now() + how_long;
        let every = self.policy.poll_every;
        let polling = FeedEvent::State(FeedState::Polling {
            every,
            why: why.clone(),
        });
        self.send(polling.clone()).await?;
        let mut down = false;
        loop {
            let wanted: Vec<String> = self
                .symbols
                .iter()
                .filter(|s| !self.told.contains(*s))
                .cloned()
                .collect();
            let wait = if wanted.is_empty() {
                every
            } else {
                match self.provider.poll(&wanted).await {
                    Ok((ticks, errors)) => {
                        if down {
                            down = false;
                            self.send(polling.clone()).await?;
                        }
                        if !ticks.is_empty() {
                            self.send(FeedEvent::Ticks(ticks)).await?;
                        }
                        for (symbol, message) in errors {
                            if self.told.insert(symbol.clone()) {
                                self.send(FeedEvent::SymbolError { symbol, message })
                                    .await?;
                            }
                        }
                        every
                    }
                    Err(e) => {
                        tracing::warn!("{} poll failed: {}", self.provider.name(), e.message);
                        down = true;
                        self.send(FeedEvent::State(FeedState::Down { why: e.message }))
                            .await?;
                        e.retry_after
                            .map(|r| r.min(MAX_RETRY_AFTER).max(every))
                            .unwrap_or(every)
                    }
                }
            };
            let now = Instant::now();
            if now + wait >= until {
                // Try the stream at the end of the polling time, but never before the
                // provider's own `Retry-After` (the stream is the same service).
                let left = until.saturating_duration_since(now);
                return self.wait(if down { wait } else { left }).await;
            }
            self.wait(wait).await?;
        }
    }

    /// Sleep, or stop early when the receiver goes away.
    async fn wait(&self, d: Duration) -> Result<(), Stop> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.tx.closed() => Err(Stop),
        }
    }

    async fn send(&self, event: FeedEvent) -> Result<(), Stop> {
        self.tx.send(event).await.map_err(|_| Stop)
    }
}

/// Back-off before reconnect number `failures` (1, 2, …): doubling from the minimum, capped,
/// with ±20 % jitter.
fn backoff(policy: &Policy, failures: u32, jitter: &mut Jitter) -> Duration {
    let doubled = policy
        .backoff_min
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    jitter.apply(doubled.min(policy.backoff_max))
}

/// ±20 % jitter from a small xorshift generator (no need for a cryptographic one).
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        Jitter(h.finish() | 1)
    }

    fn apply(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let frac = (self.0 % 10_000) as f64 / 10_000.0;
        d.mul_f64(0.8 + 0.4 * frac)
    }
}

/// A price the provider sent, if it is one: finite and above zero.
pub(crate) fn price(v: f64) -> Option<f64> {
    (v.is_finite() && v > 0.0).then_some(v)
}

/// A price given as a JSON string (`"1285.22"`) or number.
pub(crate) fn price_value(v: Option<&serde_json::Value>) -> Option<f64> {
    match v? {
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok().and_then(price),
        serde_json::Value::Number(n) => n.as_f64().and_then(price),
        _ => None,
    }
}

/// An RFC 3339 time (`2022-10-19T23:28:22.061769Z`) as ms since the epoch.
pub(crate) fn time_ms(v: Option<&serde_json::Value>) -> Option<i64> {
    let s = v?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// A tick when it carries at least one price and a time; else nothing.
pub(crate) fn tick(
    symbol: &str,
    last: Option<f64>,
    bid: Option<f64>,
    ask: Option<f64>,
    at_ms: Option<i64>,
) -> Option<Tick> {
    if last.is_none() && bid.is_none() && ask.is_none() {
        return None;
    }
    Some(Tick {
        symbol: symbol.to_string(),
        last,
        bid,
        ask,
        at_ms: at_ms?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let policy = Policy {
            backoff_max: Duration::from_secs(4),
            ..Policy::default()
        };
        let mut j = Jitter::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            for (failures, base) in [(1u32, 0.5f64), (2, 1.0), (3, 2.0), (4, 4.0), (40, 4.0)] {
                let d = backoff(&policy, failures, &mut j).as_secs_f64();
                assert!(
                    d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9,
                    "{failures}: {d}"
                );
                seen.insert(d.to_bits());
            }
        }
        assert!(seen.len() > 50, "jittered, not fixed: {}", seen.len());
    }

    #[test]
    fn prices_must_be_positive_and_finite() {
        assert_eq!(price_value(Some(&json!("1285.22"))), Some(1285.22));
        assert_eq!(price_value(Some(&json!(47.299))), Some(47.299));
        assert_eq!(price_value(Some(&json!("0"))), None);
        assert_eq!(price_value(Some(&json!("-3"))), None);
        assert_eq!(price_value(Some(&json!("abc"))), None);
        assert_eq!(price_value(Some(&json!("NaN"))), None);
        assert_eq!(price_value(Some(&json!(null))), None);
        assert_eq!(price_value(Some(&json!([1]))), None);
        assert_eq!(price_value(None), None);
    }

    #[test]
    fn times_are_rfc3339_with_any_fraction() {
        assert_eq!(
            time_ms(Some(&json!("2022-10-19T23:28:22.061769Z"))),
            Some(1_666_222_102_061)
        );
        assert_eq!(
            time_ms(Some(&json!("2024-03-12T10:27:48.858228144Z"))),
            Some(1_710_239_268_858)
        );
        assert_eq!(time_ms(Some(&json!("yesterday"))), None);
        assert_eq!(time_ms(Some(&json!(12))), None);
    }
}
