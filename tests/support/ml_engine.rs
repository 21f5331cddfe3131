//! The fake ML engine: an HTTP server on 127.0.0.1 that answers each path what the test or
//! bench told it to (404 otherwise), optionally after a delay, and counts the requests.

use axum::body::Body;
use axum::http::{Response, StatusCode, Uri};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SIGNALS: &str = "/api/v1/signals/";
const PHASES: &str = "/api/v1/amd/phase/";

/// What the fake ML engine answers for one path.
#[derive(Clone, Debug)]
pub enum Reply {
    Json(Value),
    /// Any status, body and headers (malformed JSON, HTTP errors, Retry-After …).
    Raw {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// Wait, then answer.
    Delay(Duration, Box<Reply>),
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Raw {
            status,
            body: body.to_string(),
            headers: vec![],
        }
    }
    pub fn delayed(self, d: Duration) -> Reply {
        Reply::Delay(d, Box::new(self))
    }
}

#[derive(Default)]
struct State {
    replies: HashMap<String, Reply>,
    /// For a signal or phase path with no reply of its own: every symbol alike.
    any_signal: Option<Reply>,
    any_phase: Option<Reply>,
    hits: HashMap<String, usize>,
}

/// An ML engine on 127.0.0.1 with its own runtime thread; lives as long as the value.
pub struct MlServer {
    pub url: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn signal_path(symbol: &str) -> String {
    format!("{SIGNALS}{}", symbol.replace('/', "%2F"))
}

pub fn phase_path(symbol: &str) -> String {
    format!("{PHASES}{}", symbol.replace('/', "%2F"))
}

/// A signal with TP/SL on the right side for the direction.
pub fn signal(direction: &str, confidence: f64, entry: f64) -> Value {
    let (tp, sl) = match direction {
        "bearish" => (entry * 0.95, entry * 1.02),
        _ => (entry * 1.05, entry * 0.98),
    };
    json!({"direction": direction, "confidence": confidence, "entry_price": entry,
           "take_profit": tp, "stop_loss": sl, "risk_reward_ratio": 2.5})
}

pub fn phase(name: &str, confidence: f64) -> Value {
    json!({"phase": name, "confidence": confidence,
           "indicators": {"volume_profile": "accumulating", "price_action": "consolidation"}})
}

async fn answer(state: Arc<Mutex<State>>, uri: Uri) -> Response<Body> {
    let path = uri.path().to_string();
    let reply = {
        let mut st = state.lock().unwrap();
        *st.hits.entry(path.clone()).or_default() += 1;
        let any = if path.starts_with(SIGNALS) {
            &st.any_signal
        } else if path.starts_with(PHASES) {
            &st.any_phase
        } else {
            &None
        };
        st.replies.get(&path).or(any.as_ref()).cloned()
    };
    let mut reply = match reply {
        Some(r) => r,
        None => Reply::status(404, "{\"detail\":\"not found\"}"),
    };
    loop {
        match reply {
            Reply::Delay(d, inner) => {
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            Reply::Json(v) => {
                return Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from(v.to_string()))
                    .unwrap();
            }
            Reply::Raw {
                status,
                body,
                headers,
            } => {
                let mut b = Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .header("content-type", "application/json");
                for (k, v) in headers {
                    b = b.header(k, v);
                }
                return b.body(Body::from(body)).unwrap();
            }
        }
    }
}

impl MlServer {
    pub fn start() -> MlServer {
        let state = Arc::new(Mutex::new(State::default()));
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let app = axum::Router::new().fallback(move |uri: Uri| answer(st.clone(), uri));
        let (addr, thread) = super::serve_app(app, async {
            let _ = shutdown_rx.await;
        });
        MlServer {
            url: format!("http://{addr}"),
            state,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .replies
            .insert(path.to_string(), reply);
    }

    pub fn set_signal(&self, symbol: &str, v: Value) {
        self.set(&signal_path(symbol), Reply::Json(v));
    }

    pub fn set_phase(&self, symbol: &str, v: Value) {
        self.set(&phase_path(symbol), Reply::Json(v));
    }

    /// A symbol that both endpoints answer: `direction` in `phase`.
    pub fn set_symbol(
        &self,
        symbol: &str,
        direction: &str,
        confidence: f64,
        entry: f64,
        phase_name: &str,
    ) {
        self.set_signal(symbol, signal(direction, confidence, entry));
        self.set_phase(symbol, phase(phase_name, 0.8));
    }

    /// Every symbol answers `signal` and `phase` (a path given its own reply still gets that).
    pub fn set_every_symbol(&self, signal: Reply, phase: Reply) {
        let mut st = self.state.lock().unwrap();
        st.any_signal = Some(signal);
        st.any_phase = Some(phase);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for MlServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
