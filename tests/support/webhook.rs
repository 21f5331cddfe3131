//! A webhook endpoint on 127.0.0.1 that fails the first try of every alert (by its `id`),
//! as a flaky Slack or Discord would, answers the next ones 200, and keeps every try.

use axum::body::Bytes;
use axum::http::{HeaderMap, Response, StatusCode};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a first try gets.
#[derive(Clone, Debug)]
pub struct FirstTry {
    pub status: u16,
    pub retry_after: Option<&'static str>,
}

/// One request the endpoint received.
#[derive(Clone, Debug)]
pub struct Try {
    pub at: Instant,
    pub path: String,
    pub body: Value,
    pub answered: u16,
}

#[derive(Default)]
struct State {
    tries: Vec<Try>,
    /// The first try of an alert whose `event` is named here gets this instead of a 500.
    first_by_event: Vec<(String, FirstTry)>,
    /// Answer every try with this status (no second chance).
    always: Option<u16>,
}

pub struct WebhookServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn receive(
    state: Arc<Mutex<State>>,
    uri: axum::http::Uri,
    _headers: HeaderMap,
    body: Bytes,
) -> Response<axum::body::Body> {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = body["id"].as_str().unwrap_or_default().to_string();
    let event = body["event"].as_str().unwrap_or_default().to_string();
    let mut st = state.lock().unwrap();
    let first = !st.tries.iter().any(|t| t.body["id"] == id.as_str());
    let (status, retry_after) = match (st.always, first) {
        (Some(s), _) => (s, None),
        (None, true) => st
            .first_by_event
            .iter()
            .find(|(e, _)| *e == event)
            .map(|(_, f)| (f.status, f.retry_after))
            .unwrap_or((500, None)),
        (None, false) => (200, None),
    };
    st.tries.push(Try {
        at: Instant::now(),
        path: uri.path().to_string(),
        body,
        answered: status,
    });
    let mut b = Response::builder().status(StatusCode::from_u16(status).unwrap());
    if let Some(r) = retry_after {
        b = b.header("retry-after", r);
    }
    b.body(axum::body::Body::from("{}")).unwrap()
}

impl WebhookServer {
    pub fn start() -> WebhookServer {
        let state = Arc::new(Mutex::new(State::default()));
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                receive(st.clone(), uri, headers, body)
            },
        );
        let (addr, thread) = super::serve_app(app, async {
            let _ = shutdown_rx.await;
        });
        WebhookServer {
            url: format!("http://{addr}"),
            state,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// The first try of an alert of this `event` gets `first` instead of a 500.
    pub fn first_try(&self, event: &str, first: FirstTry) {
        self.state
            .lock()
            .unwrap()
            .first_by_event
            .push((event.to_string(), first));
    }

    /// Every try, of every alert, gets `status`.
    pub fn always(&self, status: u16) {
        self.state.lock().unwrap().always = Some(status);
    }

    pub fn tries(&self) -> Vec<Try> {
        self.state.lock().unwrap().tries.clone()
    }

    /// The bodies answered 200, in order.
    pub fn delivered(&self) -> Vec<Value> {
        self.tries()
            .into_iter()
            .filter(|t| t.answered == 200)
            .map(|t| t.body)
            .collect()
    }

    /// The tries of the alert `id`, in order.
    pub fn tries_of(&self, id: &str) -> Vec<Try> {
        self.tries()
            .into_iter()
            .filter(|t| t.body["id"] == id)
            .collect()
    }

    /// The first delivered body that satisfies `f`, waiting up to `limit`.
    pub fn wait_delivered(&self, what: &str, limit: Duration, f: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(v) = self.delivered().into_iter().find(|v| f(v)) {
                return v;
            }
            assert!(
                start.elapsed() < limit,
                "no {what} delivered within {limit:?}; tries: {:#?}",
                self.tries()
                    .iter()
                    .map(|t| (t.answered, t.body["event"].clone(), t.body["text"].clone()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
