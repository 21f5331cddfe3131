//! Alerts (`[notifications]`): a new pending decision, a fill, a take-profit or stop-loss (and,
//! quieter, any other close), a loss halt, the ML engine's outage and its recovery.
//!
//! The store is the source of truth: whoever wrote a change (the loop, a key on a dashboard,
//! the command line, an agent, the API), a follower of the store reads it after its cursor
//! ([`feed::Feed`], on the event stream's own changes) and turns it into [`Alert`]s, each
//! thing once. Two ends take them:
//! - the dashboard's terminal ([`terminal::Ringer`]: the bell, OSC 9 and OSC 777), written by
//!   the UI loop between draws, on every dashboard that shows the events (its own engine's,
//!   one attached on the same data dir, one attached to a remote `serve` through its events
//!   stream), for what happened after it started;
//! - the webhook ([`webhook::Webhook`]), only from the process that runs the engine (a
//!   dashboard with its own loop, `run`, `serve` for every one of its users), so that no
//!   alert is posted twice by the dashboards beside it.

pub mod alert;
pub mod feed;
pub mod terminal;
pub mod webhook;

pub use alert::{Alert, AlertKind, Classifier};
pub use feed::Feed;
pub use terminal::Ringer;
pub use webhook::{RetryPolicy, Webhook};

use crate::config::Notifications;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long alerts still waiting may take to go when the process stops.
pub const FINISH_GRACE: Duration = Duration::from_secs(3);
/// A dashboard quitting waits less: the trader is watching.
pub const DASHBOARD_GRACE: Duration = Duration::from_secs(1);
/// How often a headless engine looks for commits to tell the webhook of.
const HEADLESS_POLL: Duration = Duration::from_millis(500);

/// Start the webhook the config names, if any; a failure to start is logged (host only).
fn start_webhook(n: &Notifications) -> Option<Webhook> {
    let url = n.webhook_url.as_deref()?;
    match Webhook::start(url, RetryPolicy::default()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!("alerts: {e}");
            None
        }
    }
}

/// A dashboard's alerts beyond its terminal: the webhook, posted only while this dashboard
/// runs the engine (an attached one leaves it to the engine's process).
#[derive(Clone)]
pub struct Outbox {
    webhook: Option<Webhook>,
    sending: Arc<AtomicBool>,
}

impl Outbox {
    /// On the current runtime; sends nothing until [`Outbox::send_from_here`].
    pub fn start(n: &Notifications) -> Outbox {
        Outbox {
            webhook: start_webhook(n),
            sending: Arc::new(AtomicBool::new(false)),
        }
    }

    /// This process runs the engine from now on (`true`), or not.
    pub fn send_from_here(&self, on: bool) {
        self.sending.store(on, Ordering::SeqCst);
    }

    /// Post `alerts` if this process runs the engine; never waits.
    pub fn offer(&self, alerts: &[Alert]) {
        if let Some(w) = &self.webhook
            && self.sending.load(Ordering::SeqCst)
        {
            w.push(alerts);
        }
    }

    pub async fn finish(&self, grace: Duration) {
        if let Some(w) = &self.webhook {
            w.finish(grace).await;
        }
    }
}

/// The user ids a headless engine trades for, asked at every read (users come and go).
pub type UserIds = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// The webhook of a headless engine (`run`, `serve`): the store followed for every user.
pub struct HeadlessAlerts {
    webhook: Webhook,
    feed: Arc<Mutex<Feed>>,
    users: UserIds,
    task: tokio::task::JoinHandle<()>,
}

impl HeadlessAlerts {
    /// Follow the store for `users` from its head now (before the loops start, so that
    /// their first cycle is told), posting to the config's webhook until `stopping`. `None`
    /// without a webhook, or when the store cannot be followed (logged).
    pub async fn start(
        data_dir: PathBuf,
        n: &Notifications,
        users: UserIds,
        stopping: watch::Receiver<bool>,
    ) -> Option<HeadlessAlerts> {
        n.webhook_url.as_ref()?;
        let ids = users();
        let opened = tokio::task::spawn_blocking(move || {
            let mut feed = Feed::open(&data_dir)?;
            for id in &ids {
                feed.follow(id)?;
            }
            Ok::<_, crate::store::StoreError>(feed)
        })
        .await;
        let feed = match opened {
            Ok(Ok(f)) => Arc::new(Mutex::new(f)),
            Ok(Err(e)) => {
                tracing::error!("alerts: cannot follow the store, no webhook: {e}");
                return None;
            }
            Err(e) => {
                tracing::error!("alerts: cannot follow the store, no webhook: {e}");
                return None;
            }
        };
        let webhook = start_webhook(n)?;
        let task = tokio::spawn(follow(
            feed.clone(),
            users.clone(),
            webhook.clone(),
            stopping,
        ));
        Some(HeadlessAlerts {
            webhook,
            feed,
            users,
            task,
        })
    }

    /// After the loops stopped: read what they wrote last, then give the webhook
    /// [`FINISH_GRACE`] to post what waits.
    pub async fn finish(self) {
        let _ = self.task.await;
        read_all(&self.feed, &self.users, &self.webhook, None).await;
        self.webhook.finish(FINISH_GRACE).await;
    }
}

/// Every [`HEADLESS_POLL`], when another connection committed, read every user's changes.
async fn follow(
    feed: Arc<Mutex<Feed>>,
    users: UserIds,
    webhook: Webhook,
    mut stopping: watch::Receiver<bool>,
) {
    let mut seen: Option<i64> = None;
    let mut tick = tokio::time::interval(HEADLESS_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        if let Some(v) = read_all(&feed, &users, &webhook, seen).await {
            seen = Some(v);
        }
    }
}

/// Read every user's alerts unless the store's version is still `seen`, and queue them.
/// The version read, when every read succeeded (else the next look reads again).
async fn read_all(
    feed: &Arc<Mutex<Feed>>,
    users: &UserIds,
    webhook: &Webhook,
    seen: Option<i64>,
) -> Option<i64> {
    let ids = users();
    let feed = feed.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut f = feed.lock().unwrap_or_else(|p| p.into_inner());
        // The version first: a commit during the reads shows up at the next look.
        let version = f.data_version()?;
        if seen == Some(version) {
            return Ok((Some(version), Vec::new()));
        }
        let mut alerts = Vec::new();
        let mut all_read = true;
        for id in &ids {
            if !f.follows(id) {
                f.follow_new(id);
            }
            match f.poll(id) {
                Ok(a) => alerts.extend(a),
                Err(e) => {
                    all_read = false;
                    tracing::warn!("alerts for {id}: reading the store: {e}");
                }
            }
        }
        Ok::<_, crate::store::StoreError>((all_read.then_some(version), alerts))
    })
    .await;
    match read {
        Ok(Ok((version, alerts))) => {
            webhook.push(&alerts);
            version
        }
        Ok(Err(e)) => {
            tracing::warn!("alerts: reading the store: {e}");
            None
        }
        Err(e) => {
            tracing::warn!("alerts: {e}");
            None
        }
    }
}

/// A headless engine's (`serve`, `run`) word on its store: on stderr (and in the log) when it
/// stops writing, each exit held in memory meanwhile, and when it writes again; and the
/// webhook's alert when it stops (no event row can say so then; the recovery's event row
/// reaches the webhook through the store like any other).
pub async fn announce_store_health(
    mut health: watch::Receiver<crate::store::WriteHealth>,
    n: Notifications,
    user_id: String,
) {
    use std::io::Write;
    let webhook = start_webhook(&n);
    let say = |line: String| {
        // A closed stderr must not stop the engine.
        let _ = writeln!(std::io::stderr(), "{line}");
    };
    let mut last = crate::store::WriteHealth::default();
    loop {
        let now = health.borrow_and_update().clone();
        match (&last.failing, &now.failing) {
            (None, Some(_)) => {
                if let Some(b) = now.banner() {
                    say(format!("error: {b}"));
                }
                if let (Some(w), Some(a)) = (&webhook, alert::store_failing(&user_id, &now)) {
                    w.push(&[a]);
                }
            }
            (Some(_), None) => {
                if let Some(r) = now.recovered {
                    say(format!(
                        "the store writes again after {}s; trading goes on (exits held in memory are closed)",
                        r.down_ms / 1000
                    ));
                }
            }
            _ => {}
        }
        for line in now
            .held_exits
            .iter()
            .filter(|l| !last.held_exits.contains(l))
        {
            say(format!("error: {line}"));
        }
        last = now;
        if health.changed().await.is_err() {
            return;
        }
    }
}
