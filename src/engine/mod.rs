//! The monitoring loop: every check interval, ask the source about every symbol at once,
//! store each decision (before anything else sees it), execute at once when confirmation
//! is not required, and tell subscribers what happened over an mpsc channel.

use crate::config::Config;
use crate::desk::{CycleOutcome, Desk, OwnedCycleInput};
use crate::domain::rules;
use crate::domain::{AmdAnalysis, MlSignal};
use crate::source::{MarketSource, SymbolReport};
use crate::store::{self, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub mod feed;

/// What the loop tells its subscribers.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    CycleStarted,
    /// One symbol's inputs and what was stored for it.
    Symbol(Box<SymbolView>),
    CycleFinished(CycleSummary),
    /// The source is reachable again, or not.
    Health(Health),
    /// When the next check will run (wall clock, ms).
    NextCheck {
        at_ms: i64,
    },
    /// A failure that is not a symbol's (the store, for instance).
    Error(String),
    /// How the live market-data feed (`provider`) is getting prices (only with a feed).
    Feed {
        provider: &'static str,
        state: crate::market::FeedState,
    },
}

/// Commands the loop takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineCommand {
    CheckNow,
    Stop,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    Ok,
    Unreachable { message: String, failures: u32 },
}

/// A symbol as the dashboard's signals table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolView {
    pub symbol: String,
    pub price: Option<f64>,
    pub signal: Result<MlSignal, String>,
    pub phase: Result<AmdAnalysis, String>,
    pub outcome: Result<CycleOutcome, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CycleSummary {
    pub started_ms: i64,
    pub elapsed: Duration,
    pub symbols: usize,
    pub actionable: usize,
    pub executed: usize,
    pub unreachable: usize,
    pub store_errors: usize,
    /// The first transport failure of the cycle, if any.
    pub unreachable_message: Option<String>,
    /// The longest `Retry-After` the source asked for.
    pub retry_after: Option<Duration>,
}

/// The engine: the desk it hands decisions to and the source it asks, shared by the loop,
/// `once` and the API.
#[derive(Clone)]
pub struct Engine {
    pub desk: Desk,
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub source: Arc<dyn MarketSource>,
    /// Told when another connection commits (the dashboard's store watcher), so the loop
    /// can sleep until the next pending decision expires; without it the loop looks every
    /// second.
    pub store_changes: Option<Arc<tokio::sync::Notify>>,
    /// Keep the schedule of the loop this one takes over (another instance's, on a shared
    /// store): the first cycle comes a check interval after the user's last one, not at once,
    /// so a takeover never makes two cycles in one interval.
    pub resume: bool,
}

impl Engine {
    pub fn new(desk: Desk, source: Arc<dyn MarketSource>) -> Self {
        Engine {
            config: desk.config.clone(),
            store: desk.store.clone(),
            desk,
            source,
            store_changes: None,
            resume: false,
        }
    }

    /// See [`Engine::resume`].
    pub fn resuming(mut self) -> Self {
        self.resume = true;
        self
    }

    /// How long to wait before the first cycle: until a check interval after the user's last
    /// cycle when resuming, else not at all.
    async fn first_wait(&self) -> Duration {
        if !self.resume {
            return Duration::ZERO;
        }
        let store = self.store.clone();
        let last = tokio::task::spawn_blocking(move || store.state())
            .await
            .ok()
            .and_then(|r| r.ok())
            .and_then(|s| s.last_cycle_at_ms);
        let Some(last) = last else {
            return Duration::ZERO;
        };
        let interval = self.config.check_interval().min(MAX_DELAY);
        let due = last.saturating_add(i64::try_from(interval.as_millis()).unwrap_or(i64::MAX));
        // A stamp ahead of the clock counts as now: wait at most one interval.
        let wait = due.saturating_sub(store::now_ms()).max(0);
        Duration::from_millis(u64::try_from(wait).unwrap_or(0)).min(interval)
    }

    /// Have the loop told of other connections' commits (see [`Engine::store_changes`]).
    pub fn with_store_changes(mut self, changes: Arc<tokio::sync::Notify>) -> Self {
        self.store_changes = Some(changes);
        self
    }

    /// Ask the source about every symbol concurrently.
    pub async fn fetch_all(&self) -> Vec<SymbolReport> {
        let futs = self
            .config
            .auto_trade
            .symbols
            .iter()
            .map(|s| self.source.fetch(s));
        futures::future::join_all(futs).await
    }

    /// One monitoring cycle. Every decision is stored before it is returned.
    pub async fn run_cycle(&self) -> (Vec<SymbolView>, CycleSummary) {
        let started = Instant::now();
        let started_ms = store::now_ms();
        // The broker's book first (orders whose answer was lost, fills, positions closed at
        // the broker): it counts against the gates.
        match self.desk.reconcile().await {
            Ok(found) => found.iter().for_each(|f| tracing::warn!("{f}")),
            Err(e) => tracing::error!("reconciling with the broker failed: {e}"),
        }
        let reports = self.fetch_all().await;
        let views = self.record_all(&reports).await;
        let desk = self.desk.clone();
        let _ = tokio::task::spawn_blocking(move || desk.set_last_cycle(started_ms)).await;
        let summary = CycleSummary {
            started_ms,
            elapsed: started.elapsed(),
            symbols: views.len(),
            actionable: views
                .iter()
                .filter(|v| matches!(&v.outcome, Ok(o) if o.log.decision.action.is_actionable()))
                .count(),
            executed: views
                .iter()
                .filter(|v| matches!(&v.outcome, Ok(o) if o.executed.is_some()))
                .count(),
            unreachable: reports.iter().filter(|r| r.unreachable().is_some()).count(),
            store_errors: views.iter().filter(|v| v.outcome.is_err()).count(),
            unreachable_message: reports
                .iter()
                .find_map(|r| r.unreachable().map(|e| e.message.clone())),
            retry_after: reports
                .iter()
                .flat_map(|r| [&r.signal, &r.phase])
                .filter_map(|x| x.as_ref().err().and_then(|e| e.retry_after))
                .max(),
        };
        tracing::info!(
            symbols = summary.symbols,
            actionable = summary.actionable,
            executed = summary.executed,
            unreachable = summary.unreachable,
            elapsed_ms = summary.elapsed.as_millis() as u64,
            "cycle finished"
        );
        (views, summary)
    }

    /// Store the cycle's decisions in one transaction; a store failure becomes an error the UI
    /// can show on every symbol of the cycle.
    async fn record_all(&self, reports: &[SymbolReport]) -> Vec<SymbolView> {
        let inputs: Vec<OwnedCycleInput> = reports
            .iter()
            .map(|r| OwnedCycleInput {
                symbol: r.symbol.clone(),
                signal: r.signal_input(),
                phase: r.phase_input(),
                price: r.price,
            })
            .collect();
        let mut outcomes = match self.desk.record_cycle(inputs).await {
            Ok(o) => o.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => {
                tracing::error!("storing the cycle failed: {e}");
                reports
                    .iter()
                    .map(|r| Err(format!("storing the decision for {} failed: {e}", r.symbol)))
                    .collect()
            }
        }
        .into_iter();
        reports
            .iter()
            .map(|r| SymbolView {
                symbol: r.symbol.clone(),
                // With a live feed the check's price is only a reference: the feed prices.
                price: r
                    .price
                    .filter(|_| !self.config.market_data.provider.is_feed()),
                signal: r.signal_input().and_then(|v| rules::parse_signal(&v)),
                phase: r.phase_input().and_then(|v| rules::parse_phase(&v)),
                outcome: outcomes
                    .next()
                    .unwrap_or_else(|| Err(format!("no outcome stored for {}", r.symbol))),
            })
            .collect()
    }

    /// Start the loop on the current tokio runtime. Events go to `events`; commands come in
    /// on the returned sender. The loop runs its first cycle at once.
    pub fn spawn(
        self,
        events: mpsc::Sender<EngineEvent>,
    ) -> (mpsc::Sender<EngineCommand>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(16);
        let handle = tokio::spawn(self.run_loop(events, rx));
        (tx, handle)
    }

    /// Start the live market-data feed `[market_data]` asks for, if any: its provider's
    /// stream (or polling) and the task that stores its ticks. Both stop when the guard goes.
    fn start_feed(&self, events: &mpsc::Sender<EngineEvent>) -> Option<FeedGuard> {
        let symbols = self.config.auto_trade.symbols.clone();
        let plan = match crate::market::for_config(&self.config.market_data, &symbols) {
            Ok(p) => p?,
            Err(e) => {
                let _ = events.try_send(EngineEvent::Error(format!("market data: {e}")));
                return None;
            }
        };
        let (tx, rx) = mpsc::channel(1024);
        let name = plan.name;
        let run = tokio::spawn(crate::market::run_plan(
            plan,
            tx,
            crate::market::Policy::default(),
        ));
        let consume = tokio::spawn(feed::consume(self.desk.clone(), name, rx, events.clone()));
        Some(FeedGuard(vec![run, consume]))
    }

    async fn run_loop(
        self,
        events: mpsc::Sender<EngineEvent>,
        mut commands: mpsc::Receiver<EngineCommand>,
    ) {
        let _feed = self.start_feed(&events);
        let wait = self.first_wait().await;
        if !wait.is_zero() {
            let at_ms = store::now_ms().saturating_add(wait.as_millis() as i64);
            let _ = events.send(EngineEvent::NextCheck { at_ms }).await;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                cmd = commands.recv() => match cmd {
                    Some(EngineCommand::CheckNow) => {}
                    Some(EngineCommand::Stop) | None => return,
                }
            }
        }
        let mut failures: u32 = 0;
        let mut backoff = Backoff::new(self.config.check_interval());
        loop {
            let _ = events.send(EngineEvent::CycleStarted).await;
            let (views, summary) = self.run_cycle().await;
            let all_down = summary.symbols > 0 && summary.unreachable == summary.symbols;
            let retry_after = summary.retry_after;
            let first_unreachable = summary.unreachable_message.clone();
            for v in views {
                let _ = events.send(EngineEvent::Symbol(Box::new(v))).await;
            }
            let delay = if all_down {
                failures += 1;
                let message = first_unreachable.unwrap_or_else(|| "source unreachable".into());
                let _ = events
                    .send(EngineEvent::Health(Health::Unreachable {
                        message,
                        failures,
                    }))
                    .await;
                backoff.next_delay(failures, retry_after)
            } else {
                // The outage's event rows are the store's: the cycle writes them when the
                // source's recorded health changes, once however many processes check.
                failures = 0;
                let _ = events.send(EngineEvent::Health(Health::Ok)).await;
                self.config.check_interval()
            };
            let _ = events.send(EngineEvent::CycleFinished(summary)).await;
            // Bounded whatever the source asked for, so no clock arithmetic can overflow.
            let delay = delay.min(MAX_DELAY);
            let next_at_ms = store::now_ms().saturating_add(delay.as_millis() as i64);
            let _ = events
                .send(EngineEvent::NextCheck { at_ms: next_at_ms })
                .await;
            let deadline = tokio::time::Instant::now() + delay;
            let mut between = Between::new(&self);
            between.pass(&self, false).await;
            loop {
                let wake = between.next_wake().map_or(deadline, |t| t.min(deadline));
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => {
                        if tokio::time::Instant::now() >= deadline {
                            break;
                        }
                        between.pass(&self, true).await;
                    }
                    _ = changed(self.store_changes.as_deref()) => {
                        // Another connection committed (a decision queued by the command
                        // line or an agent, say): look again at when the next one expires,
                        // unless a pass that does so is due within the second anyway.
                        if !between.due_within(Duration::from_secs(1)) {
                            between.pass(&self, false).await;
                        }
                    }
                    cmd = commands.recv() => match cmd {
                        Some(EngineCommand::CheckNow) => break,
                        Some(EngineCommand::Stop) | None => return,
                    }
                }
            }
        }
    }
}

/// The feed's tasks, stopped with the loop.
struct FeedGuard(Vec<tokio::task::JoinHandle<()>>);

impl Drop for FeedGuard {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Wait for the next store change; never, when nobody reports them.
async fn changed(changes: Option<&tokio::sync::Notify>) {
    match changes {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// What the loop does between checks, each at its own time: expire a pending decision when
/// its time is up, record the source's live prices once a second (only sources that have
/// them, such as the simulated market), and without a change feed look again every second
/// for decisions queued by other connections. An ML engine with nothing pending sleeps
/// until the next check.
struct Between {
    /// The next pending decision expires at (wall clock, ms).
    expires_at_ms: Option<i64>,
    /// The next live-price tick, for sources that have prices between checks.
    next_prices: Option<tokio::time::Instant>,
    /// Nobody reports store changes: look again then.
    next_rescan: Option<tokio::time::Instant>,
    /// A failed pass is tried again then.
    retry_at: Option<tokio::time::Instant>,
    last_prices: HashMap<String, f64>,
    /// When the last timed pass ran: the next one is never sooner than 50 ms after.
    last_pass: tokio::time::Instant,
}

const SECOND: Duration = Duration::from_secs(1);

/// The next wall-clock second: prices tick then, with the dashboard's clock, so one timer
/// wake-up serves both.
fn next_second() -> tokio::time::Instant {
    let into = store::now_ms().rem_euclid(1000) as u64;
    tokio::time::Instant::now() + Duration::from_millis(1000 - into)
}

impl Between {
    fn new(engine: &Engine) -> Between {
        let now = tokio::time::Instant::now();
        // A live feed prices the symbols: the source's own prices are not the market's.
        let live_prices = !engine.config.market_data.provider.is_feed()
            && engine
                .config
                .auto_trade
                .symbols
                .iter()
                .any(|s| engine.source.latest_price(s).is_some());
        Between {
            expires_at_ms: None,
            next_prices: live_prices.then(next_second),
            next_rescan: engine.store_changes.is_none().then_some(now + SECOND),
            retry_at: None,
            last_prices: HashMap::new(),
            last_pass: now,
        }
    }

    /// When the loop must next run a timed pass; `None`: only at the next check.
    fn next_wake(&self) -> Option<tokio::time::Instant> {
        let expiry = self.expires_at_ms.map(|ms| {
            // The store expires what is strictly older than the expiry: one ms past it.
            let wait = ms.saturating_add(1).saturating_sub(store::now_ms()).max(0);
            tokio::time::Instant::now() + Duration::from_millis(wait as u64)
        });
        [expiry, self.next_prices, self.next_rescan, self.retry_at]
            .into_iter()
            .flatten()
            .min()
            .map(|w| w.max(self.last_pass + Duration::from_millis(50)))
    }

    fn due_within(&self, d: Duration) -> bool {
        self.next_wake()
            .is_some_and(|w| w <= tokio::time::Instant::now() + d)
    }

    /// Expire what is due and record new live prices (when `timed`), then find the next
    /// expiry.
    async fn pass(&mut self, engine: &Engine, timed: bool) {
        let now = tokio::time::Instant::now();
        let expire = timed && self.expires_at_ms.is_some_and(|ms| ms < store::now_ms());
        let mut ticks = Vec::new();
        if timed && self.next_prices.is_some_and(|t| t <= now) {
            ticks = engine
                .config
                .auto_trade
                .symbols
                .iter()
                .filter_map(|s| engine.source.latest_price(s).map(|p| (s.clone(), p)))
                .filter(|(s, p)| self.last_prices.get(s) != Some(p))
                .collect();
            for (s, p) in &ticks {
                self.last_prices.insert(s.clone(), *p);
            }
            self.next_prices = Some(next_second());
        }
        if timed {
            self.last_pass = now;
        }
        if self.next_rescan.is_some() {
            self.next_rescan = Some(now + SECOND);
        }
        let desk = engine.desk.clone();
        let found = tokio::task::spawn_blocking(move || desk.between_checks(expire, &ticks)).await;
        engine.desk.send_queued().await;
        let failure = match found {
            Ok(Ok(next)) => {
                self.expires_at_ms = next;
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("the store task failed: {e}")),
        };
        self.retry_at = failure.map(|e| {
            tracing::warn!("between checks: {e}");
            now + SECOND
        });
    }
}

/// The longest the loop ever waits between checks: the longest check interval (a week).
const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Exponential back-off with jitter while the source is down: never faster than the check
/// interval, at most five minutes (or the interval, when longer), and never before a `Retry-After`.
pub struct Backoff {
    interval: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(interval: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Backoff { interval, seed }
    }

    pub fn next_delay(&mut self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let base =
            Duration::from_secs(2).saturating_mul(1u32 << failures.saturating_sub(1).min(10));
        let cap = Duration::from_secs(300).max(self.interval);
        let raw = base.min(cap).max(self.interval);
        // xorshift jitter of ±20 %.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let frac = (self.seed % 10_000) as f64 / 10_000.0;
        let jittered = raw.mul_f64(0.8 + 0.4 * frac);
        match retry_after {
            Some(r) => jittered.max(r),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_honours_retry_after() {
        let mut b = Backoff::new(Duration::from_secs(3));
        let d1 = b.next_delay(1, None);
        let d5 = b.next_delay(5, None);
        assert!(
            d1 >= Duration::from_millis(2400) && d1 <= Duration::from_millis(3600),
            "{d1:?}"
        );
        assert!(
            d5 >= Duration::from_millis(25_600) && d5 <= Duration::from_millis(38_400),
            "{d5:?}"
        );
        assert!(b.next_delay(20, None) <= Duration::from_secs(360));
        assert!(b.next_delay(1, Some(Duration::from_secs(60))) >= Duration::from_secs(60));
    }
}
