//! Test fixtures: an ML engine on 127.0.0.1 that answers what each test tells it to,
//! config files, and the path of the real binary.
#![allow(dead_code)]

pub mod pty;

use axum::body::Body;
use axum::http::{Response, StatusCode, Uri};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    format!("/api/v1/signals/{}", symbol.replace('/', "%2F"))
}

pub fn phase_path(symbol: &str) -> String {
    format!("/api/v1/amd/phase/{}", symbol.replace('/', "%2F"))
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
        st.replies.get(&path).cloned()
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
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(move |uri: Uri| answer(st.clone(), uri));
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = shutdown_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
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

/// Write a config file pointing at `url` (None: the simulated market), with extra TOML
/// lines for the `[auto_trade]` table and any further tables after it.
pub fn write_config(dir: &Path, url: Option<&str>, auto_trade: &str, rest: &str) -> PathBuf {
    let mut text = format!("[auto_trade]\n{auto_trade}\n");
    if let Some(u) = url {
        text.push_str(&format!(
            "\n[ml_engine]\nurl = \"{u}\"\ntimeout_seconds = 2\n"
        ));
    }
    text.push_str(rest);
    let p = dir.join("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The real binary built by cargo for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_autotrade-tui"))
}

/// Run the binary with a config and data dir in `dir`; returns (exit code, stdout, stderr).
pub fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parse `--json` output: one object per line.
pub fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Like [`write_config`], with the ML engine's `timeout_seconds` chosen by the test.
pub fn write_config_timeout(
    dir: &Path,
    url: &str,
    timeout_seconds: f64,
    auto_trade: &str,
    rest: &str,
) -> PathBuf {
    let text = format!(
        "[auto_trade]\n{auto_trade}\n\n[ml_engine]\nurl = \"{url}\"\ntimeout_seconds = {timeout_seconds}\n{rest}"
    );
    let p = dir.join("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Run the binary with exactly `args` (no `--config`/`--data-dir` added) and extra
/// environment; `AUTOTRADE_CONFIG`/`AUTOTRADE_DATA_DIR` are cleared unless `env` sets them.
pub fn run_with_env(
    args: &[&std::ffi::OsStr],
    env: &[(&str, &std::ffi::OsStr)],
) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(args)
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `decisions --json` (newest first) for the config and data dir in `dir`.
pub fn decisions_json(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["decisions", "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(dir, &args);
    assert_eq!(code, 0, "decisions failed: {err}");
    json_lines(&out)
}

/// `once --json` for the config and data dir in `dir`; asserts exit 0.
pub fn once_json(dir: &Path) -> Vec<Value> {
    let (code, out, err) = run(dir, &["once", "--json"]);
    assert_eq!(code, 0, "once failed: {err}");
    json_lines(&out)
}
