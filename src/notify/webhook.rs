//! The webhook: one JSON POST per alert, from the process that runs the engine.
//!
//! The body suits Slack's and Discord's incoming webhooks alike, and any endpoint that reads
//! JSON: Slack posts `text` (with `&`, `<` and `>` escaped, as Slack asks, so that no text
//! can become a link or an `<!channel>` mention); Discord posts `content` ("one of content,
//! file, embeds, poll" is required, at most 2000 characters:
//! <https://discord.com/developers/docs/resources/webhook#execute-webhook>) and takes
//! `allowed_mentions: {"parse": []}` so that nothing in a reason can ping `@everyone`
//! (<https://discord.com/developers/docs/resources/message#allowed-mentions-object>). Both
//! ignore the other's field and the structured ones (`event`, `id`, `user_id`, `symbol`,
//! `log_id`, `at`, `title`, `message`, and the figures), which scripts read.
//!
//! Sending never holds up the engine: alerts wait in a bounded queue (the oldest are dropped
//! when it is full, and counted in the log) and one task sends them in order. A send that
//! fails for sure (no connection made, HTTP 429, 408 or 5xx) is retried with exponential
//! back-off, after the `Retry-After` a 429 or 503 names; one that may have arrived (timed
//! out after it was sent) is not, nor one the endpoint refused (another 4xx): an alert is
//! delivered at most once per process. Redirects are followed only within the same
//! scheme, host and port. The body never carries a key; the webhook's address (a secret:
//! its path is the credential) is never logged, only its host.

use super::alert::{Alert, Recent};
use super::terminal::sanitize;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Alerts that may wait to be sent; beyond this the oldest are dropped.
pub const QUEUE: usize = 256;
/// Discord's `content` holds at most 2000 characters.
const CONTENT_CHARS: usize = 1900;

/// When to try again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The wait after the first failure; doubled after each further one.
    pub first: Duration,
    pub max_delay: Duration,
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The longest `Retry-After` obeyed (a longer one is cut to it).
    pub max_retry_after: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 0.5 s, 1 s, 2 s … up to a minute between tries, eight tries (about two minutes).
    fn default() -> Self {
        RetryPolicy {
            first: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            attempts: 8,
            max_retry_after: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before try `next` (2, 3, …).
    pub fn delay(&self, next: u32) -> Duration {
        let doublings = next.saturating_sub(2).min(20);
        self.first
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }
}

/// The webhook's host, the only part of its address ever shown.
pub fn host_of(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => "webhook".to_string(),
    }
}

/// Slack's escaping of message text: `&`, `<`, `>`.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The JSON body for one alert.
pub fn body(alert: &Alert) -> Value {
    let who = if alert.user_id == "default" {
        String::new()
    } else {
        format!(" [{}]", sanitize(&alert.user_id, 64))
    };
    let line = format!(
        "autotrade-tui{who}: {}",
        sanitize(&alert.line(), CONTENT_CHARS)
    );
    let mut v = json!({
        "text": slack_escape(&line),
        "content": sanitize(&line, CONTENT_CHARS),
        "allowed_mentions": {"parse": []},
        "event": alert.kind.as_str(),
        "id": alert.key,
        "user_id": alert.user_id,
        "symbol": alert.symbol,
        "log_id": alert.log_id,
        "at": alert.at,
        "title": sanitize(&alert.title, 200),
        "message": sanitize(&alert.body, 1000),
    });
    if let Value::Object(map) = &mut v {
        for (k, f) in &alert.fields {
            map.entry(k.clone()).or_insert_with(|| f.clone());
        }
    }
    v
}

struct Queue {
    waiting: VecDeque<Alert>,
    /// Every key queued once: an alert read twice is sent once.
    queued: Recent,
    dropped: u64,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
    closed: AtomicBool,
    /// The sender is between alerts (nothing in flight).
    idle: Notify,
    busy: AtomicBool,
}

/// The sending end; cheap to clone. The task that sends runs on the runtime it was started
/// on until [`Webhook::finish`].
#[derive(Clone)]
pub struct Webhook {
    shared: Arc<Shared>,
    host: String,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Webhook {
    /// Start sending to `url` (http or https; checked by the config already). The error
    /// names no more than the host.
    pub fn start(url: &str, policy: RetryPolicy) -> Result<Webhook, String> {
        let url = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| "the webhook address is not an http:// or https:// URL".to_string())?;
        let host = host_of(&url);
        let client = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .redirect(crate::net::same_origin_redirects())
            .user_agent(concat!("autotrade-tui/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("webhook ({host}): cannot build the HTTP client: {e}"))?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                queued: Recent::new(4 * QUEUE),
                dropped: 0,
            }),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            idle: Notify::new(),
            busy: AtomicBool::new(false),
        });
        let sender = Sender {
            shared: shared.clone(),
            client,
            url,
            host: host.clone(),
            policy,
        };
        let task = tokio::spawn(sender.run());
        tracing::info!("webhook ({host}): alerts are posted there");
        Ok(Webhook {
            shared,
            host,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Queue `alerts` without waiting (from any thread); each key once.
    pub fn push(&self, alerts: &[Alert]) {
        if alerts.is_empty() || self.shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let mut dropped_now = 0u64;
        let total = {
            let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            for a in alerts {
                if !q.queued.insert(&a.key) {
                    continue;
                }
                if q.waiting.len() >= QUEUE {
                    q.waiting.pop_front();
                    dropped_now += 1;
                }
                q.waiting.push_back(a.clone());
            }
            q.dropped += dropped_now;
            q.dropped
        };
        if dropped_now > 0 {
            tracing::warn!(
                "webhook ({}): {QUEUE} alerts already waiting: dropped the {dropped_now} oldest ({total} dropped since start)",
                self.host
            );
        }
        self.shared.wake.notify_one();
    }

    /// Stop taking alerts, give those waiting up to `grace` to go, then stop the sender.
    pub async fn finish(&self, grace: Duration) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(task) = task else { return };
        let abort = task.abort_handle();
        if tokio::time::timeout(grace, task).await.is_err() {
            abort.abort();
            let waiting = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .waiting
                .len();
            let left = waiting + usize::from(self.shared.busy.load(Ordering::SeqCst));
            tracing::warn!(
                "webhook ({}): stopping with {left} alert(s) not sent",
                self.host
            );
        }
    }

    /// Wait until nothing is queued or in flight (tests and shutdown).
    pub async fn drained(&self) {
        loop {
            let idle = self.shared.idle.notified();
            let empty = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .waiting
                .is_empty();
            if empty && !self.shared.busy.load(Ordering::SeqCst) {
                return;
            }
            idle.await;
        }
    }
}

struct Sender {
    shared: Arc<Shared>,
    client: reqwest::Client,
    url: reqwest::Url,
    host: String,
    policy: RetryPolicy,
}

/// How one try went.
enum Try {
    Delivered,
    /// Not delivered for sure: try again after this (or the back-off).
    Again(String, Option<Duration>),
    /// Refused, or perhaps delivered: never again.
    GiveUp(String),
}

impl Sender {
    async fn run(self) {
        loop {
            let next = {
                let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
                let next = q.waiting.pop_front();
                self.shared.busy.store(next.is_some(), Ordering::SeqCst);
                next
            };
            let Some(alert) = next else {
                self.shared.idle.notify_waiters();
                if self.shared.closed.load(Ordering::SeqCst) {
                    return;
                }
                self.shared.wake.notified().await;
                continue;
            };
            self.deliver(&alert).await;
        }
    }

    async fn deliver(&self, alert: &Alert) {
        let body = body(alert);
        let what = format!("{} alert {}", alert.kind.as_str(), alert.key);
        for attempt in 1..=self.policy.attempts {
            match self.try_once(&body).await {
                Try::Delivered => {
                    tracing::info!("webhook ({}): {what} delivered (try {attempt})", self.host);
                    return;
                }
                Try::GiveUp(why) => {
                    tracing::warn!("webhook ({}): {what} not sent: {why}", self.host);
                    return;
                }
                Try::Again(why, asked) => {
                    if attempt == self.policy.attempts {
                        tracing::warn!(
                            "webhook ({}): {what} not sent after {attempt} tries: {why}",
                            self.host
                        );
                        return;
                    }
                    let wait = asked
                        .map(|d| d.min(self.policy.max_retry_after))
                        .unwrap_or_else(|| self.policy.delay(attempt + 1));
                    tracing::info!(
                        "webhook ({}): {what}: {why}; trying again in {:.1} s",
                        self.host,
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn try_once(&self, body: &Value) -> Try {
        let r = self.client.post(self.url.clone()).json(body).send().await;
        let r = match r {
            Ok(r) => r,
            // No connection was made: the endpoint has not seen it.
            Err(e) if e.is_connect() => {
                return Try::Again(crate::market::rest::without_url(&e), None);
            }
            // The endpoint answered with a redirect off its origin: a refusal, not sent again.
            Err(e) if crate::net::redirect_refused(&e).is_some() => {
                return Try::GiveUp(crate::market::rest::without_url(&e));
            }
            Err(e) => {
                return Try::GiveUp(format!(
                    "{} (perhaps delivered: not sent again)",
                    crate::market::rest::without_url(&e)
                ));
            }
        };
        let status = r.status();
        if status.is_success() {
            return Try::Delivered;
        }
        let retry_after = r
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(86_400.0)));
        let code = status.as_u16();
        if code == 429 || code == 408 || status.is_server_error() {
            Try::Again(format!("HTTP {status}"), retry_after)
        } else if status.is_redirection() {
            Try::GiveUp(format!(
                "HTTP {status}: a redirect to another host is not followed (set the final address)"
            ))
        } else {
            Try::GiveUp(format!("HTTP {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::alert::AlertKind;

    fn alert(title: &str) -> Alert {
        Alert {
            kind: AlertKind::TakeProfit,
            key: "fill:7".into(),
            user_id: "default".into(),
            symbol: Some("BTC/USD".into()),
            log_id: Some("decision_ab12".into()),
            at: Some("2026-01-01T00:00:00Z".into()),
            title: title.into(),
            body: "closed BUY 0.0444 @ 47,250.00, P&L +99.90".into(),
            fields: [("realized_pnl".to_string(), json!(99.9))]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn the_body_suits_slack_and_discord_and_carries_the_fields() {
        let v = body(&alert("Take-profit BTC/USD <!channel> @everyone"));
        let text = v["text"].as_str().unwrap();
        assert!(
            text.starts_with("autotrade-tui: Take-profit BTC/USD"),
            "{text}"
        );
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        assert!(text.contains("P&amp;L +99.90"), "{text}");
        let content = v["content"].as_str().unwrap();
        assert!(content.contains("P&L +99.90"), "{content}");
        assert_eq!(v["allowed_mentions"], json!({"parse": []}));
        assert_eq!(v["event"], "take_profit");
        assert_eq!(v["id"], "fill:7");
        assert_eq!(v["symbol"], "BTC/USD");
        assert_eq!(v["log_id"], "decision_ab12");
        assert_eq!(v["realized_pnl"], 99.9);
        // A long reason is cut inside Discord's limit.
        let mut long = alert("x");
        long.body = "y".repeat(5000);
        let v = body(&long);
        assert!(v["content"].as_str().unwrap().chars().count() <= 2000);
    }

    #[test]
    fn back_off_doubles_up_to_its_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(2), Duration::from_millis(500));
        assert_eq!(p.delay(3), Duration::from_secs(1));
        assert_eq!(p.delay(5), Duration::from_secs(4));
        assert_eq!(p.delay(40), Duration::from_secs(60));
    }

    #[test]
    fn only_the_host_of_the_address_is_shown() {
        let u = reqwest::Url::parse("https://hooks.slack.com/services/T0/B0/SECRET").unwrap();
        assert_eq!(host_of(&u), "hooks.slack.com");
        let u = reqwest::Url::parse("http://127.0.0.1:9000/hook/SECRET").unwrap();
        assert_eq!(host_of(&u), "127.0.0.1:9000");
    }
}
