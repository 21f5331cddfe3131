//! `GET /api/v1/auto-trade/events/{user_id}`: server-sent events, one per decision stored or
//! changed, fill and event row, as the store records them, whoever writes them (this server's
//! loops and API, the command line beside it, a dashboard attached to it).
//!
//! The server follows the store on a connection of its own: while any client listens it asks
//! `PRAGMA data_version` four times a second (one cheap query; nothing is read while nothing
//! was committed), and each client reads what is new for its user after its own cursor
//! ([`Cursor`]). Each batch's last message carries the cursor as its SSE `id`, so a client
//! that reconnects with `Last-Event-ID` gets exactly what it had not had.

use super::error::ApiError;
use super::users::Users;
use crate::store::{Change, ChangeReader, Changes, Cursor, FillRecord};
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often the store is asked whether anything was committed, while a client listens.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// A comment line this often keeps proxies and clients from closing an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Most rows one read sends: a client further behind is told to start afresh.
pub const MAX_BATCH: usize = 10_000;
/// How long a client waits before reconnecting.
const RETRY: Duration = Duration::from_secs(1);

/// The store, followed for the event streams.
pub struct Follower {
    reader: Arc<ChangeReader>,
    /// Moves on when the store's data version does.
    changed: watch::Sender<u64>,
    polling: Arc<AtomicBool>,
    /// Turns true when the server stops: every stream ends.
    stopping: watch::Receiver<bool>,
}

impl Follower {
    pub fn open(data_dir: &FsPath, stopping: watch::Receiver<bool>) -> crate::store::Result<Self> {
        Ok(Follower {
            reader: Arc::new(ChangeReader::open(data_dir)?),
            changed: watch::Sender::new(0),
            polling: Arc::new(AtomicBool::new(false)),
            stopping,
        })
    }

    /// A receiver told of every commit, and the poller started if it was not running.
    fn subscribe(&self) -> watch::Receiver<u64> {
        let rx = self.changed.subscribe();
        if !self.polling.swap(true, Ordering::SeqCst) {
            tokio::spawn(poll(
                self.reader.clone(),
                self.changed.clone(),
                self.polling.clone(),
            ));
        }
        rx
    }
}

/// Ask the store's data version every [`POLL_EVERY`] while anyone listens; stop when nobody does.
async fn poll(reader: Arc<ChangeReader>, changed: watch::Sender<u64>, polling: Arc<AtomicBool>) {
    let mut seen: Option<i64> = None;
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if changed.receiver_count() == 0 {
            polling.store(false, Ordering::SeqCst);
            // A client that came in just now found the poller still running: keep on for it.
            if changed.receiver_count() > 0 && !polling.swap(true, Ordering::SeqCst) {
                continue;
            }
            return;
        }
        let r = reader.clone();
        match tokio::task::spawn_blocking(move || r.data_version()).await {
            Ok(Ok(v)) => {
                if seen.is_some_and(|s| s != v) {
                    changed.send_modify(|n| *n = n.wrapping_add(1));
                }
                seen = Some(v);
            }
            Ok(Err(e)) => tracing::warn!("event stream: reading the store's version: {e}"),
            Err(e) => tracing::warn!("event stream: {e}"),
        }
    }
}

/// The JSON of one change, and its SSE event name.
pub fn change_json(change: &Change) -> (&'static str, Value) {
    change.to_json()
}

/// A fill, with its position as `positions --json` shows it (and how it closed, once closed).
pub fn fill_json(f: &FillRecord) -> Value {
    f.to_json()
}

/// One batch as SSE messages; the last carries the cursor after it.
fn batch_events(batch: Changes, out: &mut VecDeque<SseEvent>) {
    let n = batch.changes.len();
    for (i, c) in batch.changes.iter().enumerate() {
        let (name, value) = change_json(c);
        let mut ev = SseEvent::default().event(name).data(value.to_string());
        if i + 1 == n {
            ev = ev.id(batch.cursor.to_string());
        }
        out.push_back(ev);
    }
}

fn too_far(from: Cursor) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        format!(
            "more than {MAX_BATCH} changes were stored after Last-Event-ID {from}: reconnect \
             without it and read GET decisions/{{user_id}} for the history"
        ),
    )
}

async fn read<T: Send + 'static>(
    reader: &Arc<ChangeReader>,
    f: impl FnOnce(&ChangeReader) -> crate::store::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let r = reader.clone();
    tokio::task::spawn_blocking(move || f(&r))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// One client's stream.
struct Client {
    user: String,
    cursor: Cursor,
    queue: VecDeque<SseEvent>,
    reader: Arc<ChangeReader>,
    changed: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
    done: bool,
}

impl Client {
    async fn next(mut self) -> Option<(Result<SseEvent, Infallible>, Client)> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some((Ok(ev), self));
            }
            if self.done {
                return None;
            }
            tokio::select! {
                r = self.changed.changed() => if r.is_err() { return None },
                _ = self.stopping.wait_for(|s| *s) => return None,
            }
            let (user, from) = (self.user.clone(), self.cursor);
            match read(&self.reader, move |r| r.since(&user, from, MAX_BATCH)).await {
                Ok(Some(batch)) => {
                    self.cursor = batch.cursor;
                    batch_events(batch, &mut self.queue);
                }
                Ok(None) => {
                    // Far behind (a bulk import): say so and end; the client's reconnect
                    // with its Last-Event-ID is then answered 410.
                    tracing::warn!("event stream for {}: {}", self.user, too_far(from).detail);
                    self.queue
                        .push_back(SseEvent::default().comment(too_far(from).detail));
                    self.done = true;
                }
                // Told in the log; tried again at the next commit.
                Err(_) => {}
            }
        }
    }
}

pub async fn events(
    State(users): State<Arc<Users>>,
    Extension(follower): Extension<Arc<Follower>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(user_id) = path.map_err(|e| ApiError::bad_request(e.body_text()).field("user_id"))?;
    let user = users.get(&user_id)?;
    let user_id = user.ctx.config.auto_trade.user_id.clone();
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| "not text".to_string())
                .and_then(str::parse::<Cursor>)
                .map_err(|e| ApiError::bad_request(format!("Last-Event-ID: {e}")))?,
        ),
    };
    // Subscribed before reading, so that nothing committed from here on is missed.
    let changed = follower.subscribe();
    let uid = user_id.clone();
    let head = read(&follower.reader, move |r| r.head(&uid)).await?;
    let mut queue = VecDeque::new();
    let start = match resume {
        None => head,
        Some(from) if !from.within(&head) => {
            return Err(ApiError::bad_request(format!(
                "Last-Event-ID {from} is ahead of this store ({head}): it comes from another \
                 store; reconnect without it"
            )));
        }
        Some(from) => from,
    };
    // The first message says where the stream starts, so that a client that loses the
    // connection before anything happens can still resume from here.
    queue.push_back(
        SseEvent::default()
            .event("ready")
            .id(start.to_string())
            .retry(RETRY)
            .data(json!({ "user_id": user_id, "resumed": resume.is_some() }).to_string()),
    );
    let mut cursor = start;
    if resume.is_some() {
        let uid = user_id.clone();
        match read(&follower.reader, move |r| r.since(&uid, start, MAX_BATCH)).await? {
            Some(batch) => {
                cursor = batch.cursor;
                batch_events(batch, &mut queue);
            }
            None => return Err(too_far(start)),
        }
    }
    let client = Client {
        user: user_id,
        cursor,
        queue,
        reader: follower.reader.clone(),
        changed,
        stopping: follower.stopping.clone(),
        done: false,
    };
    let stream = futures::stream::unfold(client, Client::next);
    let mut resp = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response();
    // Proxies such as nginx would otherwise hold the events back in a buffer.
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}
