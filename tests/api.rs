#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! `autotrade-tui serve` over real HTTP on 127.0.0.1: the real binary, a loopback ML engine,
//! every endpoint, status code and bad input of the API, the seed's five `curl` examples,
//! many users, the security rules, a confirm racing the command line's cancel, and shutdown.

mod support;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use support::*;
use tempfile::TempDir;

const API: &str = "/api/v1/auto-trade";
/// A short check interval (0.6 s) and pending decisions that outlive the test.
const FAST: &str = "check_interval_minutes = 0.01\npending_expiry_minutes = 30";

// ---------------------------------------------------------------- fixture

/// A running `serve`; killed when dropped.
struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    base: String,
    stderr: Arc<Mutex<String>>,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    token: Option<String>,
}

struct Resp {
    status: u16,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

fn serve_command(dir: &Path, listen: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--listen", listen, "--config"])
        .arg(dir.join("config.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .env_remove("AUTOTRADE_API_TOKEN")
        .env_remove("AUTOTRADE_API_RATE_LIMIT")
        .env_remove("AUTOTRADE_WEBHOOK_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Server {
    fn start(dir: &Path) -> Server {
        Server::start_with(dir, "127.0.0.1:0", &[])
    }

    /// Start `serve` and wait (with a deadline) for the address it prints.
    fn start_with(dir: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
        let mut child = serve_command(dir, listen, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        break rest.split_whitespace().next().unwrap().to_string();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "serve exited with {status} before listening: {}",
                            stderr.lock().unwrap()
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "serve never said where it listens: {}",
                        stderr.lock().unwrap()
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.wait();
                    panic!(
                        "serve closed stdout before listening: {}",
                        stderr.lock().unwrap()
                    );
                }
            }
        };
        let port = addr.rsplit(':').next().unwrap();
        Server {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            stderr,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            token: env
                .iter()
                .find(|(k, _)| *k == "AUTOTRADE_API_TOKEN")
                .map(|(_, v)| v.to_string()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn builder(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let b = self.http.request(method, self.url(path));
        match &self.token {
            Some(t) => b.bearer_auth(t),
            None => b,
        }
    }

    fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        self.rt.block_on(async {
            let r = req.send().await.expect("request");
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let text = r.text().await.unwrap();
            let body = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("not JSON ({status}): {text:?}: {e}"))
            };
            Resp {
                status,
                body,
                headers,
            }
        })
    }

    fn get(&self, path: &str) -> Resp {
        self.send(self.builder(Method::GET, path))
    }

    /// POST with a JSON body (`Content-Type: application/json`), or none.
    fn post(&self, path: &str, body: Option<&str>) -> Resp {
        let mut b = self.builder(Method::POST, path);
        if let Some(body) = body {
            b = b
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        self.send(b)
    }

    fn post_json(&self, path: &str, v: &Value) -> Resp {
        self.post(path, Some(&v.to_string()))
    }

    fn decisions(&self, user: &str) -> Vec<Value> {
        let r = self.get(&format!("{API}/decisions/{user}?limit=1000"));
        assert_eq!(r.status, 200, "{r:?}");
        r.body.as_array().unwrap().clone()
    }

    fn pending(&self, user: &str) -> Vec<Value> {
        let r = self.get(&format!("{API}/pending/{user}"));
        assert_eq!(r.status, 200, "{r:?}");
        r.body.as_array().unwrap().clone()
    }

    fn status(&self, user: &str) -> Value {
        let r = self.get(&format!("{API}/status/{user}"));
        assert_eq!(r.status, 200, "{r:?}");
        r.body
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Wait (with a deadline) for the process to end; its exit code and stderr.
    fn wait_exit(&mut self) -> (i32, String) {
        let mut child = self.child.take().unwrap();
        let status = wait_until(Duration::from_secs(20), "serve to exit", || {
            child.try_wait().unwrap()
        });
        // Let the stderr reader catch up with what the process wrote before it ended.
        let err = wait_until(Duration::from_secs(5), "stderr to close", || {
            let s = self.stderr.lock().unwrap().clone();
            (s.contains("stopped") || !status.success()).then_some(s)
        });
        (status.code().unwrap_or(-1), err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Poll `f` until it gives a value or the deadline passes (then fail, naming `what`).
fn wait_until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        // A poll interval, well under the API's default rate limit.
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ml_with(symbols: &[(&str, &str, f64, f64, &str)]) -> MlServer {
    let ml = MlServer::start();
    for (s, dir, conf, entry, phase) in symbols {
        ml.set_symbol(s, dir, *conf, *entry, phase);
    }
    ml
}

/// A data dir whose config file's user is `default` with `auto_trade` lines.
fn setup(ml: &MlServer, auto_trade: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        &format!("user_id = \"default\"\n{auto_trade}"),
        "",
    );
    dir
}

fn for_symbol<'a>(logs: &'a [Value], symbol: &str) -> Vec<&'a Value> {
    logs.iter()
        .filter(|l| l["decision"]["symbol"] == symbol)
        .collect()
}

fn detail(r: &Resp) -> String {
    r.body["detail"].as_str().unwrap_or_default().to_string()
}

/// Raw HTTP/1.1 over TCP, for requests reqwest will not make (chunked bodies, odd headers).
fn raw_http(base: &str, request: &[u8]) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer (413) and close before the whole body is sent.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    (status, text)
}

// ---------------------------------------------------------------- the seed's examples

/// The five `curl` examples of the seed's documentation, as written (host:port adapted).
#[test]
fn the_seeds_five_curl_examples_work_as_written() {
    let ml = ml_with(&[
        ("BTC/USD", "bullish", 0.87, 45000.0, "accumulation"),
        ("ETH/USD", "bearish", 0.9, 2500.0, "distribution"),
        ("SOL/USD", "neutral", 0.5, 100.0, "accumulation"),
    ]);
    let dir = setup(&ml, &format!("symbols = [\"SOL/USD\"]\n{FAST}"));
    let srv = Server::start(dir.path());

    // 1. Configure Auto-Trading
    let r = srv.post(
        "/api/v1/auto-trade/config",
        Some(
            r#"{
"config": {
"user_id": "user_123",
"enabled": true,
"symbols": ["BTC/USD", "ETH/USD"],
"max_risk_percent": 1.0,
"min_confidence": 0.75,
"paper_trading": true,
"require_confirmation": false,
"max_open_positions": 3,
"check_interval_minutes": 5
}
}"#,
        ),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["created"], true);
    assert_eq!(r.body["config"]["symbols"], json!(["BTC/USD", "ETH/USD"]));
    assert_eq!(r.body["config"]["require_confirmation"], false);

    // Its loop runs a first cycle at once; without confirmation both trades execute.
    let logs = wait_until(Duration::from_secs(20), "user_123's first cycle", || {
        let logs = srv.decisions("user_123");
        (logs.iter().filter(|l| l["status"] == "executed").count() == 2).then_some(logs)
    });
    assert!(logs.iter().all(|l| l["mode"] == "paper"));
    let btc = for_symbol(&logs, "BTC/USD");
    assert_eq!(btc[0]["decision"]["action"], "BUY");
    // 1.0 % of 10000 at risk over a 900 stop distance, capped at 20 % of the account.
    let size = btc[0]["decision"]["position_size"].as_f64().unwrap();
    assert!(
        (size - (100.0f64 / 900.0).min(2000.0 / 45000.0)).abs() < 1e-3,
        "{size}"
    );
    assert_eq!(
        for_symbol(&logs, "ETH/USD")[0]["decision"]["action"],
        "SELL"
    );

    // 2. Check Status
    let r = srv.get("/api/v1/auto-trade/status/user_123");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["user_id"], "user_123");
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["mode"], "paper");
    assert_eq!(r.body["source"], "ml_engine");
    assert_eq!(r.body["open_positions"], 2);
    assert_eq!(r.body["max_open_positions"], 3);
    assert_eq!(r.body["pending"], 0);

    // 3. View Pending Decisions: none, they were executed at once.
    let r = srv.get("/api/v1/auto-trade/pending/user_123");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!([]));

    // 4. Confirm Decision: the documented id is a placeholder that no store holds.
    let r = srv.post(
        "/api/v1/auto-trade/decisions/user_123/confirm",
        Some(r#"{"log_id": "decision_abc123"}"#),
    );
    assert_eq!(r.status, 404, "{r:?}");
    assert!(detail(&r).contains("decision_abc123"), "{r:?}");
    assert_eq!(r.body["field"], "log_id");

    // 5. Disable Auto-Trading
    let r = srv.post("/api/v1/auto-trade/disable/user_123", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["enabled"], false);
    let st = wait_until(Duration::from_secs(10), "user_123's loop to stop", || {
        let st = srv.status("user_123");
        (st["monitoring"] == false).then_some(st)
    });
    assert_eq!(st["enabled"], false);
    // The config file's user was not touched.
    assert_eq!(srv.status("default")["enabled"], true);
}

/// Example 4 with a real pending decision's id: it executes.
#[test]
fn the_confirm_example_executes_a_real_pending_decision() {
    let ml = ml_with(&[("BTC/USD", "bullish", 0.87, 45000.0, "accumulation")]);
    let dir = setup(&ml, &format!("symbols = [\"BTC/USD\"]\n{FAST}"));
    let srv = Server::start(dir.path());
    let r = srv.post(
        "/api/v1/auto-trade/config",
        Some(
            r#"{"config": {"user_id": "user_123", "enabled": true, "symbols": ["BTC/USD"],
                "max_risk_percent": 1.5, "min_confidence": 0.75}}"#,
        ),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let pending = wait_until(Duration::from_secs(20), "a pending decision", || {
        let p = srv.pending("user_123");
        (!p.is_empty()).then_some(p)
    });
    let id = pending[0]["log_id"].as_str().unwrap();
    let r = srv.post(
        "/api/v1/auto-trade/decisions/user_123/confirm",
        Some(&format!(r#"{{"log_id": "{id}"}}"#)),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["log_id"], id);
    assert_eq!(r.body["status"], "executed");
    assert_eq!(r.body["executed"], true);
    assert!(r.body["executed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(srv.status("user_123")["open_positions"], 1);
}

// ---------------------------------------------------------------- decisions, confirm, cancel

#[test]
fn confirm_and_cancel_move_pending_decisions_once() {
    let ml = ml_with(&[
        ("BTC/USD", "bullish", 0.87, 45000.0, "accumulation"),
        ("ETH/USD", "bearish", 0.9, 2500.0, "distribution"),
    ]);
    let dir = setup(
        &ml,
        &format!("symbols = [\"BTC/USD\", \"ETH/USD\"]\n{FAST}"),
    );
    let srv = Server::start(dir.path());
    let pending = wait_until(Duration::from_secs(20), "two pending decisions", || {
        let p = srv.pending("default");
        (p.len() == 2).then_some(p)
    });
    // The same JSON as the command line's `decisions --json`.
    let cli = decisions_json(dir.path(), &["--pending"]);
    assert_eq!(cli, pending);
    for p in &pending {
        assert!(p["log_id"].as_str().unwrap().starts_with("decision_"));
        assert_eq!(p["status"], "pending");
        assert_eq!(p["executed"], false);
        assert!(p["risk_reward"]["risk_reward_ratio"].is_number(), "{p}");
    }
    let btc = for_symbol(&pending, "BTC/USD")[0]["log_id"]
        .as_str()
        .unwrap()
        .to_string();
    let eth = for_symbol(&pending, "ETH/USD")[0]["log_id"]
        .as_str()
        .unwrap()
        .to_string();
    let confirm = format!("{API}/decisions/default/confirm");
    let cancel = format!("{API}/decisions/default/cancel");

    let r = srv.post_json(&confirm, &json!({"log_id": btc}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "executed");
    let r = srv.post_json(&confirm, &json!({"log_id": btc}));
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.body["status"], "executed");
    assert!(detail(&r).contains("not pending"), "{r:?}");
    let r = srv.post_json(&cancel, &json!({"log_id": btc}));
    assert_eq!(r.status, 409, "{r:?}");

    let r = srv.post_json(&cancel, &json!({"log_id": eth}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["status_reason"], "cancelled through the API");
    for path in [&confirm, &cancel] {
        let r = srv.post_json(path, &json!({"log_id": eth}));
        assert_eq!(r.status, 409, "{r:?}");
        assert_eq!(r.body["status"], "cancelled");
    }

    // Unknown log id, and a log id of another user.
    let r = srv.post_json(&confirm, &json!({"log_id": "decision_000000000000"}));
    assert_eq!((r.status, r.body["field"].clone()), (404, json!("log_id")));
    let r = srv.post_json(&cancel, &json!({"log_id": "decision_000000000000"}));
    assert_eq!(r.status, 404, "{r:?}");
    let r = srv.post_json(
        &format!("{API}/config"),
        &json!({"config": {"user_id": "other", "symbols": ["SOL/USD"]}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let r = srv.post_json(
        &format!("{API}/decisions/other/cancel"),
        &json!({"log_id": eth}),
    );
    assert_eq!(r.status, 404, "another user's decision: {r:?}");

    // The store agrees: what the command line reads.
    let cli = decisions_json(dir.path(), &[]);
    let status_of = |id: &str| {
        cli.iter()
            .find(|l| l["log_id"] == id)
            .map(|l| l["status"].clone())
    };
    assert_eq!(status_of(&btc), Some(json!("executed")));
    assert_eq!(status_of(&eth), Some(json!("cancelled")));
    // (A later cycle may propose ETH again, as a new decision.)
    let still = srv.pending("default");
    assert!(
        still
            .iter()
            .all(|p| p["log_id"] != btc.as_str() && p["log_id"] != eth.as_str())
    );
}

#[test]
fn confirm_and_cancel_bodies_are_checked() {
    let ml = ml_with(&[("BTC/USD", "bullish", 0.87, 45000.0, "accumulation")]);
    let dir = setup(&ml, &format!("symbols = [\"BTC/USD\"]\n{FAST}"));
    let srv = Server::start(dir.path());
    for action in ["confirm", "cancel"] {
        let path = format!("{API}/decisions/default/{action}");
        for (body, status, field) in [
            ("{\"log_id\": ", 400, None),
            ("not json", 400, None),
            ("{}", 422, Some("log_id")),
            ("{\"log_id\": 42}", 422, Some("log_id")),
            (
                "{\"log_id\": \"decision_1\", \"force\": true}",
                422,
                Some("force"),
            ),
            ("[\"decision_1\"]", 422, Some("body")),
            ("{\"log_id\": \"decision_1\"} trailing", 400, None),
        ] {
            let r = srv.post(&path, Some(body));
            assert_eq!(r.status, status, "{action} {body}: {r:?}");
            assert_eq!(r.body["field"].as_str(), field, "{action} {body}: {r:?}");
            assert!(!detail(&r).is_empty(), "{r:?}");
        }
        // Without a JSON content type, and without a body.
        let r = srv.send(
            srv.builder(Method::POST, &path)
                .header("Content-Type", "text/plain")
                .body("{\"log_id\": \"decision_1\"}"),
        );
        assert_eq!(r.status, 415, "{r:?}");
        let r = srv.post(&path, None);
        assert_eq!(r.status, 415, "{r:?}");
        let r = srv.post(&path, Some(""));
        assert_eq!(r.status, 400, "{r:?}");
    }
}

#[test]
fn decisions_take_limit_and_executed_only() {
    let ml = ml_with(&[
        ("BTC/USD", "bullish", 0.87, 45000.0, "accumulation"),
        ("ETH/USD", "neutral", 0.5, 2500.0, "distribution"),
    ]);
    let dir = setup(
        &ml,
        &format!("symbols = [\"BTC/USD\", \"ETH/USD\"]\n{FAST}"),
    );
    let srv = Server::start(dir.path());
    // Cycles go on: HOLDs pile up (ETH neutral, BTC already pending).
    let all = wait_until(Duration::from_secs(20), "six decisions", || {
        let d = srv.decisions("default");
        (d.len() >= 6).then_some(d)
    });
    let btc = for_symbol(&all, "BTC/USD")
        .into_iter()
        .find(|l| l["status"] == "pending")
        .unwrap()["log_id"]
        .clone();
    let r = srv.post_json(
        &format!("{API}/decisions/default/confirm"),
        &json!({"log_id": btc}),
    );
    assert_eq!(r.status, 200, "{r:?}");

    // Defaults: 50, everything, newest first.
    let r = srv.get(&format!("{API}/decisions/default"));
    assert_eq!(r.status, 200);
    let d = r.body.as_array().unwrap();
    assert!(!d.is_empty() && d.len() <= 50);
    let times: Vec<&str> = d
        .iter()
        .map(|l| l["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(d.iter().any(|l| l["status"] == "hold"));

    let r = srv.get(&format!("{API}/decisions/default?limit=2"));
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = srv.get(&format!(
        "{API}/decisions/default?limit=50&executed_only=false"
    ));
    assert!(r.body.as_array().unwrap().len() >= 6);
    let r = srv.get(&format!("{API}/decisions/default?executed_only=true"));
    let executed = r.body.as_array().unwrap();
    assert_eq!(executed.len(), 1, "{executed:?}");
    assert_eq!(executed[0]["log_id"], btc);
    assert_eq!(executed[0]["executed"], true);

    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=100000", "limit"),
        ("executed_only=perhaps", "executed_only"),
        ("status=pending", "status"),
    ] {
        let r = srv.get(&format!("{API}/decisions/default?{q}"));
        assert_eq!(r.status, 422, "{q}: {r:?}");
        assert_eq!(r.body["field"], field, "{q}: {r:?}");
    }
}

// ---------------------------------------------------------------- config

#[test]
fn config_creates_then_replaces_a_user_and_its_loop_follows() {
    let ml = ml_with(&[
        ("BTC/USD", "bullish", 0.87, 45000.0, "accumulation"),
        ("ETH/USD", "bearish", 0.9, 2500.0, "distribution"),
    ]);
    let dir = setup(&ml, &format!("symbols = [\"BTC/USD\"]\n{FAST}"));
    let srv = Server::start(dir.path());
    assert_eq!(srv.get(&format!("{API}/config/alice")).status, 404);

    let r = srv.post_json(
        &format!("{API}/config"),
        &json!({"config": {"user_id": "alice", "symbols": ["BTC/USD"],
                           "check_interval_minutes": 1, "pending_expiry_minutes": 30}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["created"], true);
    let got = srv.get(&format!("{API}/config/alice"));
    assert_eq!(got.status, 200);
    // Omitted fields take the config file's defaults.
    assert_eq!(
        got.body,
        json!({"user_id": "alice", "enabled": true, "symbols": ["BTC/USD"],
               "max_risk_percent": 1.5, "min_confidence": 0.75, "paper_trading": true,
               "require_confirmation": true, "max_open_positions": 3,
               "check_interval_minutes": 1.0, "pending_expiry_minutes": 30.0})
    );
    wait_until(Duration::from_secs(20), "alice's BTC decision", || {
        (!for_symbol(&srv.decisions("alice"), "BTC/USD").is_empty()).then_some(())
    });

    // Replace: ETH instead of BTC, a higher bar. The loop restarts with them.
    let r = srv.post_json(
        &format!("{API}/config"),
        &json!({"config": {"user_id": "alice", "symbols": ["ETH/USD"], "min_confidence": 0.9,
                           "check_interval_minutes": 1, "pending_expiry_minutes": 30}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["created"], false);
    assert_eq!(
        srv.get(&format!("{API}/config/alice")).body["symbols"],
        json!(["ETH/USD"])
    );
    let eth = wait_until(Duration::from_secs(20), "alice's ETH decision", || {
        let d = srv.decisions("alice");
        let eth: Vec<Value> = for_symbol(&d, "ETH/USD").into_iter().cloned().collect();
        (!eth.is_empty()).then_some(eth)
    });
    // 0.9 × 0.95 = 0.855 is under alice's new 0.9.
    assert_eq!(eth[0]["decision"]["action"], "HOLD", "{}", eth[0]);
    assert!(
        eth[0]["decision"]["reasoning"]
            .as_str()
            .unwrap()
            .contains("min_confidence"),
        "{}",
        eth[0]
    );
    let st = srv.status("alice");
    assert_eq!(st["symbols"], json!(["ETH/USD"]));
    assert_eq!(st["source"], "ml_engine");
    assert_eq!(st["monitoring"], true);
    // The file's user keeps its own settings.
    assert_eq!(srv.status("default")["symbols"], json!(["BTC/USD"]));

    // Posting enabled = false disables; the loop stops.
    let r = srv.post_json(
        &format!("{API}/config"),
        &json!({"config": {"user_id": "alice", "enabled": false, "symbols": ["ETH/USD"]}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    wait_until(Duration::from_secs(10), "alice's loop to stop", || {
        (srv.status("alice")["monitoring"] == false).then_some(())
    });
    assert_eq!(
        srv.get(&format!("{API}/config/alice")).body["enabled"],
        false
    );
}

#[test]
fn config_bad_inputs_are_refused_naming_the_field() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let srv = Server::start(dir.path());
    let path = format!("{API}/config");
    let cfg = |extra: Value| {
        let mut c = json!({"user_id": "bob", "symbols": ["BTC/USD"]});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        json!({ "config": c }).to_string()
    };
    let cases: Vec<(String, u16, Option<&str>)> = vec![
        ("{\"config\": {".into(), 400, None),
        ("{'config': {}}".into(), 400, None),
        ("null".into(), 422, Some("body")),
        ("{}".into(), 422, Some("config")),
        (
            json!({"user_id": "bob", "symbols": ["BTC/USD"]}).to_string(),
            422,
            Some("user_id"),
        ),
        (
            json!({"config": {"user_id": "bob"}, "extra": 1}).to_string(),
            422,
            Some("extra"),
        ),
        (
            json!({"config": {}}).to_string(),
            422,
            Some("config.user_id"),
        ),
        (
            cfg(json!({"max_risk_percnt": 1.0})),
            422,
            Some("config.max_risk_percnt"),
        ),
        (
            cfg(json!({"account_size": 1e9})),
            422,
            Some("config.account_size"),
        ),
        (cfg(json!({"enabled": "yes"})), 422, Some("config.enabled")),
        (
            cfg(json!({"max_risk_percent": "1.0"})),
            422,
            Some("config.max_risk_percent"),
        ),
        (
            cfg(json!({"max_open_positions": 2.5})),
            422,
            Some("config.max_open_positions"),
        ),
        (
            cfg(json!({"max_risk_percent": 0})),
            422,
            Some("config.max_risk_percent"),
        ),
        (
            cfg(json!({"max_risk_percent": 100.5})),
            422,
            Some("config.max_risk_percent"),
        ),
        (
            cfg(json!({"min_confidence": -0.1})),
            422,
            Some("config.min_confidence"),
        ),
        (
            cfg(json!({"min_confidence": 1.01})),
            422,
            Some("config.min_confidence"),
        ),
        (
            cfg(json!({"max_open_positions": 0})),
            422,
            Some("config.max_open_positions"),
        ),
        (
            cfg(json!({"check_interval_minutes": 0})),
            422,
            Some("config.check_interval_minutes"),
        ),
        (
            cfg(json!({"check_interval_minutes": 1e9})),
            422,
            Some("config.check_interval_minutes"),
        ),
        (
            cfg(json!({"pending_expiry_minutes": -1})),
            422,
            Some("config.pending_expiry_minutes"),
        ),
        (
            cfg(json!({"paper_trading": false})),
            422,
            Some("config.paper_trading"),
        ),
        (cfg(json!({"symbols": []})), 422, Some("config.symbols")),
        (
            cfg(json!({"symbols": ["BTC-USD"]})),
            422,
            Some("config.symbols"),
        ),
        (
            cfg(json!({"symbols": ["BTC/US-D"]})),
            422,
            Some("config.symbols"),
        ),
        (
            cfg(json!({"symbols": ["btc/usd/x"]})),
            422,
            Some("config.symbols"),
        ),
        (
            cfg(json!({"symbols": ["BTC/USD", "BTC/USD"]})),
            422,
            Some("config.symbols"),
        ),
        (
            cfg(json!({"symbols": "BTC/USD"})),
            422,
            Some("config.symbols"),
        ),
        (cfg(json!({"user_id": ""})), 422, Some("config.user_id")),
        (
            cfg(json!({"user_id": "x".repeat(65)})),
            422,
            Some("config.user_id"),
        ),
        (
            cfg(json!({"user_id": "a\u{7}b"})),
            422,
            Some("config.user_id"),
        ),
    ];
    for (body, status, field) in &cases {
        let r = srv.post(&path, Some(body));
        assert_eq!(r.status, *status, "{body}: {r:?}");
        assert_eq!(r.body["field"].as_str(), *field, "{body}: {r:?}");
        let d = detail(&r);
        if let Some(f) = field {
            assert!(d.contains(f), "{body}: the detail names {f}: {d}");
        } else {
            assert!(d.contains("JSON"), "{body}: {d}");
        }
    }
    // Nothing was created by any of them.
    assert_eq!(srv.get(&format!("{API}/config/bob")).status, 404);
    assert_eq!(srv.status("default")["enabled"], true);
}

#[test]
fn bodies_over_64_kib_get_413() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let srv = Server::start(dir.path());
    // Valid JSON, 70 KB: a user id padded with spaces.
    let big = format!(
        "{{\"config\": {{\"user_id\": \"bob\"{}}}}}",
        " ".repeat(70 * 1024)
    );
    let r = srv.post(&format!("{API}/config"), Some(&big));
    assert_eq!(r.status, 413, "{r:?}");
    assert!(detail(&r).contains("64 KiB"), "{r:?}");
    let r = srv.post(&format!("{API}/decisions/default/confirm"), Some(&big));
    assert_eq!(r.status, 413, "{r:?}");
    // Just under the limit is read (and refused for what it says, not for its size).
    let fits = format!(
        "{{\"config\": {{\"user_id\": \"bob\"{}}}}}",
        " ".repeat(60 * 1024)
    );
    let r = srv.post(&format!("{API}/config"), Some(&fits));
    assert_eq!(r.status, 200, "{r:?}");

    // Chunked, with no Content-Length: the limit holds while reading.
    let host = srv.base.trim_start_matches("http://").to_string();
    let chunk = " ".repeat(70 * 1024);
    let req = format!(
        "POST {API}/config HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, text) = raw_http(&srv.base, req.as_bytes());
    assert_eq!(status, 413, "{text}");
}

// ---------------------------------------------------------------- users

#[test]
fn unknown_users_get_404_on_every_endpoint() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let srv = Server::start(dir.path());
    let body = json!({"log_id": "decision_000000000000"});
    for (method, path) in [
        (Method::GET, "config/nobody"),
        (Method::GET, "status/nobody"),
        (Method::POST, "enable/nobody"),
        (Method::POST, "disable/nobody"),
        (Method::GET, "decisions/nobody"),
        (Method::GET, "pending/nobody"),
        (Method::GET, "report/nobody"),
        (Method::POST, "decisions/nobody/confirm"),
        (Method::POST, "decisions/nobody/cancel"),
    ] {
        let mut b = srv.builder(method.clone(), &format!("{API}/{path}"));
        if method == Method::POST {
            b = b.json(&body);
        }
        let r = srv.send(b);
        assert_eq!(r.status, 404, "{method} {path}: {r:?}");
        assert_eq!(r.body["field"], "user_id", "{path}: {r:?}");
        assert!(detail(&r).contains("nobody"), "{r:?}");
    }
    // Unknown endpoints and methods answer in JSON too.
    let r = srv.get("/api/v1/auto-trade/nothing/here");
    assert_eq!(r.status, 404, "{r:?}");
    let r = srv.get("/");
    assert_eq!(r.status, 404, "{r:?}");
    let r = srv.get(&format!("{API}/config"));
    assert_eq!(r.status, 405, "{r:?}");
    let r = srv.post(&format!("{API}/status/default"), None);
    assert_eq!(r.status, 405, "{r:?}");
    let r = srv.send(srv.builder(Method::DELETE, &format!("{API}/config/default")));
    assert_eq!(r.status, 405, "{r:?}");
}

/// Four users, four loops, each with its own symbols and thresholds; disabling one stops
/// its loop and only its loop.
#[test]
fn many_users_each_run_their_own_loop_with_their_own_settings() {
    let ml = ml_with(&[
        ("BTC/USD", "bullish", 0.87, 45000.0, "accumulation"),
        ("ETH/USD", "bearish", 0.9, 2500.0, "distribution"),
        ("SOL/USD", "bullish", 0.9, 100.0, "accumulation"),
        ("ADA/USD", "bullish", 0.9, 0.5, "manipulation"),
    ]);
    let dir = setup(&ml, &format!("symbols = [\"BTC/USD\"]\n{FAST}"));
    let srv = Server::start(dir.path());
    let users = [
        // user, symbols, min_confidence, require_confirmation
        ("u_eth", vec!["ETH/USD"], 0.75, true),
        ("u_sol", vec!["SOL/USD", "ADA/USD"], 0.6, false),
        ("u_strict", vec!["SOL/USD"], 0.99, true),
    ];
    for (u, syms, min_conf, confirm) in &users {
        let r = srv.post_json(
            &format!("{API}/config"),
            &json!({"config": {"user_id": u, "symbols": syms, "min_confidence": min_conf,
                               "require_confirmation": confirm,
                               "check_interval_minutes": 1, "pending_expiry_minutes": 30}}),
        );
        assert_eq!(r.status, 200, "{u}: {r:?}");
    }
    // Every user's loop has run, over its own symbols only.
    for (u, syms) in [
        ("default", vec!["BTC/USD"]),
        ("u_eth", vec!["ETH/USD"]),
        ("u_sol", vec!["SOL/USD", "ADA/USD"]),
        ("u_strict", vec!["SOL/USD"]),
    ] {
        let d = wait_until(Duration::from_secs(20), &format!("{u}'s cycles"), || {
            let d = srv.decisions(u);
            syms.iter()
                .all(|s| !for_symbol(&d, s).is_empty())
                .then_some(d)
        });
        for l in &d {
            let s = l["decision"]["symbol"].as_str().unwrap();
            assert!(syms.contains(&s), "{u} has a decision for {s}");
        }
        assert_eq!(srv.status(u)["monitoring"], true, "{u}");
    }
    // default and u_eth: pending; u_sol: executed at once (0.9 × 0.70 = 0.63 ≥ 0.6 for ADA too);
    // u_strict: HOLD under its 0.99.
    assert_eq!(srv.pending("default").len(), 1);
    assert_eq!(srv.pending("u_eth").len(), 1);
    let sol = srv.decisions("u_sol");
    for s in ["SOL/USD", "ADA/USD"] {
        assert!(
            for_symbol(&sol, s)
                .iter()
                .any(|l| l["status"] == "executed"),
            "{s}: {sol:?}"
        );
    }
    assert_eq!(srv.status("u_sol")["open_positions"], 2);
    let strict = srv.decisions("u_strict");
    assert!(strict.iter().all(|l| l["decision"]["action"] == "HOLD"));
    assert!(srv.pending("u_strict").is_empty());
    // Positions are per user: u_sol's SOL does not gate u_strict or show in its status.
    assert_eq!(srv.status("u_strict")["open_positions"], 0);

    // Disable u_eth: its loop stops, the others go on.
    let r = srv.post(&format!("{API}/disable/u_eth"), None);
    assert_eq!(r.status, 200, "{r:?}");
    wait_until(Duration::from_secs(10), "u_eth's loop to stop", || {
        (srv.status("u_eth")["monitoring"] == false).then_some(())
    });
    // Past any request the stopped loop had in flight, count.
    let before = ml.hits(&signal_path("BTC/USD"));
    wait_until(Duration::from_secs(20), "a cycle of default", || {
        (ml.hits(&signal_path("BTC/USD")) > before).then_some(())
    });
    let eth_hits = ml.hits(&signal_path("ETH/USD"));
    let btc_hits = ml.hits(&signal_path("BTC/USD"));
    wait_until(
        Duration::from_secs(20),
        "three more cycles of default",
        || (ml.hits(&signal_path("BTC/USD")) >= btc_hits + 3).then_some(()),
    );
    assert_eq!(
        ml.hits(&signal_path("ETH/USD")),
        eth_hits,
        "a disabled user's loop asked the ML engine"
    );
    for u in ["default", "u_sol", "u_strict"] {
        assert_eq!(srv.status(u)["monitoring"], true, "{u}");
    }
    // And enable brings it back.
    let r = srv.post(&format!("{API}/enable/u_eth"), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["enabled"], true);
    wait_until(Duration::from_secs(10), "u_eth's loop to run again", || {
        (ml.hits(&signal_path("ETH/USD")) > eth_hits).then_some(())
    });
    assert_eq!(srv.status("u_eth")["monitoring"], true);
}

/// The file's user is the command line's user: a change on either side shows on the other.
#[test]
fn the_file_user_is_shared_with_the_command_line() {
    let ml = ml_with(&[("BTC/USD", "bullish", 0.87, 45000.0, "accumulation")]);
    let dir = setup(&ml, &format!("symbols = [\"BTC/USD\"]\n{FAST}"));
    let srv = Server::start(dir.path());
    let r = srv.post(&format!("{API}/disable/default"), None);
    assert_eq!(r.status, 200, "{r:?}");
    let (code, out, err) = run(dir.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out)[0]["enabled"], false);
    wait_until(Duration::from_secs(10), "the loop to stop", || {
        (srv.status("default")["monitoring"] == false).then_some(())
    });
    // `enable` on the command line: the server notices and starts the loop again.
    let (code, _, err) = run(dir.path(), &["enable"]);
    assert_eq!(code, 0, "{err}");
    wait_until(Duration::from_secs(10), "the loop to start again", || {
        let st = srv.status("default");
        (st["enabled"] == true && st["monitoring"] == true).then_some(())
    });
    // `kill` on the command line: disabled, pending cancelled, loop stopped.
    wait_until(Duration::from_secs(20), "a pending decision", || {
        (!srv.pending("default").is_empty()).then_some(())
    });
    let (code, _, err) = run(dir.path(), &["kill"]);
    assert_eq!(code, 0, "{err}");
    assert!(srv.pending("default").is_empty());
    let st = wait_until(
        Duration::from_secs(10),
        "the loop to stop after kill",
        || {
            let st = srv.status("default");
            (st["monitoring"] == false).then_some(st)
        },
    );
    assert_eq!(st["kill_switch"], true);
    // API enable clears the kill switch, as `enable` does.
    let r = srv.post(&format!("{API}/enable/default"), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(srv.status("default")["kill_switch"], false);
}

#[test]
fn posted_users_survive_a_restart_and_the_file_user_keeps_the_files_settings() {
    let ml = ml_with(&[
        ("BTC/USD", "bullish", 0.87, 45000.0, "accumulation"),
        ("ETH/USD", "bearish", 0.9, 2500.0, "distribution"),
    ]);
    let dir = setup(&ml, &format!("symbols = [\"BTC/USD\"]\n{FAST}"));
    let mut srv = Server::start(dir.path());
    for (u, sym) in [("carol", "ETH/USD"), ("default", "ETH/USD")] {
        let r = srv.post_json(
            &format!("{API}/config"),
            &json!({"config": {"user_id": u, "symbols": [sym], "max_risk_percent": 0.5,
                               "check_interval_minutes": 1, "pending_expiry_minutes": 30}}),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
    // Until the restart, the posted settings are the file user's too.
    assert_eq!(srv.status("default")["symbols"], json!(["ETH/USD"]));
    srv.signal("TERM");
    let (code, err) = srv.wait_exit();
    assert_eq!(code, 0, "{err}");

    let srv = Server::start(dir.path());
    let carol = srv.get(&format!("{API}/config/carol"));
    assert_eq!(carol.status, 200, "{carol:?}");
    assert_eq!(carol.body["symbols"], json!(["ETH/USD"]));
    assert_eq!(carol.body["max_risk_percent"], 0.5);
    // The file's user: the file again.
    let def = srv.get(&format!("{API}/config/default")).body;
    assert_eq!(def["symbols"], json!(["BTC/USD"]));
    assert_eq!(def["max_risk_percent"], 1.5);
    wait_until(
        Duration::from_secs(20),
        "carol's loop after the restart",
        || (srv.status("carol")["monitoring"] == true).then_some(()),
    );
}

/// One server takes at most 100 users (each holds a store connection); replacing one still works.
#[test]
fn the_hundred_and_first_user_is_refused() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let srv = Server::start_with(
        dir.path(),
        "127.0.0.1:0",
        &[("AUTOTRADE_API_RATE_LIMIT", "0")],
    );
    let post = |u: &str| {
        srv.post_json(
            &format!("{API}/config"),
            &json!({"config": {"user_id": u, "enabled": false, "symbols": ["BTC/USD"]}}),
        )
    };
    // The file's user is the first.
    for i in 1..100 {
        let r = post(&format!("user_{i:03}"));
        assert_eq!(r.status, 200, "user {i}: {r:?}");
    }
    let r = post("one_too_many");
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.body["field"], "config.user_id");
    assert!(detail(&r).contains("100 users"), "{r:?}");
    assert_eq!(srv.get(&format!("{API}/config/one_too_many")).status, 404);
    let r = post("user_050");
    assert_eq!((r.status, r.body["created"].clone()), (200, json!(false)));
    // The file descriptors that cost stay far from the usual limit of 1024.
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", srv.pid())) {
        let n = fds.count();
        assert!(n < 600, "{n} open files for 100 users");
    }
}

/// `[store] max_users` sets the cap.
#[test]
fn the_user_cap_is_the_config_s() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let cfg = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}\n[store]\nmax_users = 3\n")).unwrap();
    let srv = Server::start_with(
        dir.path(),
        "127.0.0.1:0",
        &[("AUTOTRADE_API_RATE_LIMIT", "0")],
    );
    let post = |u: &str| {
        srv.post_json(
            &format!("{API}/config"),
            &json!({"config": {"user_id": u, "enabled": false, "symbols": ["BTC/USD"]}}),
        )
    };
    assert_eq!(post("user_1").status, 200);
    assert_eq!(post("user_2").status, 200);
    let r = post("user_3");
    assert_eq!(r.status, 409, "{r:?}");
    assert!(
        detail(&r).contains("3 users") && detail(&r).contains("max_users"),
        "{r:?}"
    );
}

// ---------------------------------------------------------------- races

/// A confirm through the API races a `cancel` on the command line, on eight decisions: each
/// time exactly one wins, the other is refused (409 / exit 1), and the store has one status.
/// The API's request leaves 0, 4, … 28 ms after the command starts (which takes about 20 ms
/// to reach the store), so that both orders and the close calls between them are tried; the
/// assertions hold whichever order happens.
#[test]
fn api_confirm_racing_cli_cancel_has_exactly_one_winner() {
    let symbols = [
        "BTC/USD", "ETH/USD", "SOL/USD", "ADA/USD", "XRP/USD", "DOT/USD", "LTC/USD", "BNB/USD",
    ];
    let ml = MlServer::start();
    for (i, s) in symbols.iter().enumerate() {
        ml.set_symbol(s, "bullish", 0.9, 100.0 * (i + 1) as f64, "accumulation");
    }
    let list = symbols
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let dir = setup(
        &ml,
        &format!("symbols = [{list}]\nmax_open_positions = 10\n{FAST}"),
    );
    let srv = Server::start(dir.path());
    let pending = wait_until(Duration::from_secs(20), "eight pending decisions", || {
        let p = srv.pending("default");
        (p.len() == symbols.len()).then_some(p)
    });
    let mut api_wins = 0;
    for (round, p) in pending.iter().enumerate() {
        let id = p["log_id"].as_str().unwrap().to_string();
        let barrier = std::sync::Barrier::new(2);
        let (api, cli) = std::thread::scope(|s| {
            let cli = s.spawn(|| {
                barrier.wait();
                run(dir.path(), &["cancel", &id])
            });
            barrier.wait();
            std::thread::sleep(Duration::from_millis(4 * round as u64));
            let api = srv.post_json(
                &format!("{API}/decisions/default/confirm"),
                &json!({"log_id": id}),
            );
            (api, cli.join().unwrap())
        });
        let (code, _out, err) = cli;
        let final_status = decisions_json(dir.path(), &[])
            .into_iter()
            .find(|l| l["log_id"] == id.as_str())
            .unwrap()["status"]
            .clone();
        match (api.status, code) {
            (200, 1) => {
                api_wins += 1;
                assert!(err.contains("not pending"), "{err}");
                assert_eq!(api.body["status"], "executed");
                assert_eq!(final_status, "executed");
            }
            (409, 0) => {
                assert_eq!(api.body["status"], "cancelled", "{api:?}");
                assert_eq!(final_status, "cancelled");
            }
            other => panic!("not exactly one winner for {id}: {other:?} {api:?} {err}"),
        }
    }
    eprintln!(
        "API confirm won {api_wins} of {} races, the command line's cancel the rest",
        pending.len()
    );
    // Every executed decision opened one position; nothing else did.
    assert_eq!(srv.status("default")["open_positions"], api_wins);
}

// ---------------------------------------------------------------- security

#[test]
fn a_non_loopback_address_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), None, "", "");
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let out = serve_command(dir.path(), listen, &[("AUTOTRADE_API_TOKEN", "  ")])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{listen}: {err}");
        assert!(err.contains("AUTOTRADE_API_TOKEN"), "{err}");
        assert!(err.contains("loopback"), "{err}");
        assert!(out.stdout.is_empty(), "it must not have listened");
    }
    // An address that is not one is a usage error too.
    let out = serve_command(dir.path(), "nowhere", &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_rate_limit_too_small_to_represent_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), None, "", "");
    let out = serve_command(
        dir.path(),
        "127.0.0.1:0",
        &[("AUTOTRADE_API_RATE_LIMIT", "1e-300")],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("AUTOTRADE_API_RATE_LIMIT"), "{err}");
    assert!(out.stdout.is_empty(), "it must not have listened");
}

#[test]
fn a_token_is_required_on_every_request_when_set() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let token = "t0ken-for-the-api-tests-0123456789";
    for listen in ["0.0.0.0:0", "127.0.0.1:0"] {
        let srv = Server::start_with(dir.path(), listen, &[("AUTOTRADE_API_TOKEN", token)]);
        let url = srv.url(&format!("{API}/status/default"));
        let anon = |b: reqwest::RequestBuilder| srv.send(b);
        let r = anon(srv.http.get(&url));
        assert_eq!(r.status, 401, "{listen}: {r:?}");
        assert!(r.headers.contains_key("www-authenticate"));
        for bad in [
            "Bearer wrong".to_string(),
            format!("Bearer {token}x"),
            format!("Bearer {}", &token[..token.len() - 1]),
            format!("Basic {token}"),
            token.to_string(),
        ] {
            let r = anon(srv.http.get(&url).header("Authorization", bad.clone()));
            assert_eq!(r.status, 401, "{listen} {bad}: {r:?}");
        }
        // Unknown paths and bad bodies are behind the token too.
        let r = anon(srv.http.get(srv.url("/nothing")));
        assert_eq!(r.status, 401);
        let r = anon(srv.http.post(srv.url(&format!("{API}/disable/default"))));
        assert_eq!(r.status, 401);
        assert_eq!(
            srv.status("default")["enabled"],
            true,
            "disable went through"
        );
        // With it, everything works (the fixture sends it).
        let r = srv.get(&format!("{API}/status/default"));
        assert_eq!(r.status, 200, "{r:?}");
        let r = anon(
            srv.http
                .get(&url)
                .header("Authorization", format!("bearer {token}")),
        );
        assert_eq!(r.status, 200, "the scheme is case-insensitive");
        drop(srv);
    }
}

#[test]
fn cors_is_off_and_web_pages_cannot_drive_the_api() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let srv = Server::start(dir.path());
    let url = srv.url(&format!("{API}/disable/default"));
    // A preflight gets no CORS headers, and a cross-site post is refused.
    let r = srv.send(
        srv.http
            .request(Method::OPTIONS, &url)
            .header("Origin", "https://evil.example")
            .header("Access-Control-Request-Method", "POST"),
    );
    assert!(r.status >= 400, "{r:?}");
    let r2 = srv.send(
        srv.http
            .post(&url)
            .header("Origin", "https://evil.example")
            .header("Content-Type", "text/plain"),
    );
    assert_eq!(r2.status, 403, "{r2:?}");
    for r in [&r, &r2] {
        assert!(
            !r.headers
                .keys()
                .any(|k| k.as_str().starts_with("access-control-")),
            "{:?}",
            r.headers
        );
    }
    assert_eq!(srv.status("default")["enabled"], true);
    // A DNS name rebound to 127.0.0.1 is not this machine's name.
    let host = srv.base.trim_start_matches("http://");
    let port = host.rsplit(':').next().unwrap();
    let (status, text) = raw_http(
        &srv.base,
        format!(
            "GET {API}/status/default HTTP/1.1\r\nHost: rebound.example:{port}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(status, 403, "{text}");
    for name in ["localhost", "127.0.0.1"] {
        let (status, text) = raw_http(
            &srv.base,
            format!(
                "GET {API}/status/default HTTP/1.1\r\nHost: {name}:{port}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(status, 200, "{text}");
    }
}

#[test]
fn a_client_over_the_rate_limit_gets_429_and_others_do_not() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    // 5 a second, bursts of 10.
    let srv = Server::start_with(
        dir.path(),
        "127.0.0.1:0",
        &[("AUTOTRADE_API_RATE_LIMIT", "5")],
    );
    let url = srv.url(&format!("{API}/status/default"));
    let statuses: Vec<(u16, Option<String>)> = srv.rt.block_on(async {
        let futs = (0..40).map(|_| {
            let http = srv.http.clone();
            let url = url.clone();
            async move {
                let r = http.get(&url).send().await.unwrap();
                let ra = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                (r.status().as_u16(), ra)
            }
        });
        futures::future::join_all(futs).await
    });
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(ok >= 10, "the burst is served: {statuses:?}");
    assert!(!limited.is_empty(), "{statuses:?}");
    assert_eq!(ok + limited.len(), 40, "{statuses:?}");
    assert!(limited.iter().all(|(_, ra)| ra.as_deref() == Some("1")));
    // Another client address has its own bucket.
    let reply = srv.rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let addr = srv.base.trim_start_matches("http://").parse().unwrap();
        let mut s = sock.connect(addr).await.unwrap();
        let req = format!(
            "GET {API}/status/default HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    });
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // The bucket refills.
    wait_until(Duration::from_secs(5), "the bucket to refill", || {
        (srv.get(&format!("{API}/status/default")).status == 200).then_some(())
    });
}

/// The default limit (50 a second, bursts of 100) is generous but real.
#[test]
fn the_default_rate_limit_holds_under_a_flood() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let srv = Server::start(dir.path());
    let url = srv.url(&format!("{API}/config/default"));
    let mut sent = 0;
    let mut ok = 0;
    let limited = loop {
        let statuses: Vec<u16> = srv.rt.block_on(async {
            let futs = (0..100).map(|_| {
                let http = srv.http.clone();
                let url = url.clone();
                async move { http.get(&url).send().await.unwrap().status().as_u16() }
            });
            futures::future::join_all(futs).await
        });
        sent += statuses.len();
        ok += statuses.iter().filter(|s| **s == 200).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        if limited > 0 {
            break limited;
        }
        assert!(sent < 3000, "3000 requests and no 429");
    };
    assert!(ok >= 100, "a burst of 100 is served: {ok} of {sent}");
    assert!(limited > 0);
}

// ---------------------------------------------------------------- lifecycle

#[test]
fn sigterm_and_sigint_stop_the_loops_and_exit_0() {
    let ml = ml_with(&[("BTC/USD", "bullish", 0.87, 45000.0, "accumulation")]);
    let dir = setup(&ml, &format!("symbols = [\"BTC/USD\"]\n{FAST}"));
    for sig in ["TERM", "INT"] {
        let mut srv = Server::start(dir.path());
        let hits = ml.hits(&signal_path("BTC/USD"));
        wait_until(Duration::from_secs(20), "a cycle", || {
            (ml.hits(&signal_path("BTC/USD")) > hits).then_some(())
        });
        srv.signal(sig);
        let (code, err) = srv.wait_exit();
        assert_eq!(code, 0, "SIG{sig}: {err}");
        assert!(err.contains(&format!("SIG{sig}")), "{err}");
        // The lock is given back: the next start (and the dashboard) can take it.
        assert!(autotrade_tui::lock::DashboardLock::acquire(&dir.path().join("data")).is_ok());
    }
}

#[test]
fn a_second_engine_on_the_same_data_dir_is_refused() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let _srv = Server::start(dir.path());
    let out = serve_command(dir.path(), "127.0.0.1:0", &[])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("monitoring loop"), "{err}");
}

/// The routes a remote dashboard uses beyond the seed's: a manual trade, a resize, the
/// confirm, a close, the history view, the kill switch and the dashboard's own snapshot.
#[test]
fn a_remote_dashboards_actions_go_through_the_api() {
    let ml = ml_with(&[("ETH/USD", "neutral", 0.5, 2_000.0, "accumulation")]);
    let dir = setup(&ml, "symbols = [\"ETH/USD\"]\ncheck_interval_minutes = 60");
    let srv = Server::start(dir.path());
    // A manual trade, pending.
    let r = srv.post_json(
        "/api/v1/auto-trade/trade/default",
        &json!({"symbol": "eth/usd", "side": "BUY", "size": 1, "take_profit": 2_100, "stop_loss": 1_950}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "pending");
    let id = r.body["log_id"].as_str().unwrap().to_string();
    // A symbol the user does not trade is refused, naming it.
    let r = srv.post_json(
        "/api/v1/auto-trade/trade/default",
        &json!({"symbol": "DOGE/USD", "side": "BUY"}),
    );
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.body.to_string().contains("DOGE/USD"), "{r:?}");
    // Resized, then confirmed.
    let r = srv.post_json(
        "/api/v1/auto-trade/decisions/default/resize",
        &json!({"log_id": id, "size": 0.5}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["decision"]["position_size"], 0.5);
    let r = srv.post_json(
        "/api/v1/auto-trade/decisions/default/confirm",
        &json!({"log_id": id}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    // The dashboard's snapshot has the position.
    let r = srv.get("/api/v1/auto-trade/dashboard/default");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["snapshot"]["positions"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["settings"]["symbols"], json!(["ETH/USD"]));
    // Closed at the latest price; a second close is refused.
    let r = srv.post_json(
        "/api/v1/auto-trade/close/default",
        &json!({"symbol": "ETH/USD"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["symbol"], "ETH/USD");
    let r = srv.post_json(
        "/api/v1/auto-trade/close/default",
        &json!({"symbol": "ETH/USD"}),
    );
    assert_eq!(r.status, 409, "{r:?}");
    // The history view finds it by its close reason.
    let r = srv.get("/api/v1/auto-trade/history/default?query=through%20the%20API");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["closed_total"], 1, "{r:?}");
    // The kill switch.
    let r = srv.post("/api/v1/auto-trade/kill/default", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["kill_switch"], true);
    let r = srv.get("/api/v1/auto-trade/status/default");
    assert_eq!(r.body["kill_switch"], true);
    // The analytics view's report: the closed trade, realized, and the veto's outcomes.
    let r = srv.get("/api/v1/auto-trade/report/default");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["performance"]["trades"], 1, "{r:?}");
    assert_eq!(r.body["by_origin"]["manual"]["trades"], 1, "{r:?}");
    assert_eq!(r.body["veto"]["executed"]["decisions"], 1, "{r:?}");
    let r = srv.get("/api/v1/auto-trade/report/default?since=2999-01-01");
    assert_eq!(r.body["performance"]["trades"], 0, "{r:?}");
    let r = srv.get("/api/v1/auto-trade/report/default?since=soon");
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (422, Some("since")),
        "{r:?}"
    );
    let r = srv.get("/api/v1/auto-trade/report/default?from=2026-01-01");
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (422, Some("from")),
        "{r:?}"
    );
}

#[test]
fn guards_over_the_api_lift_a_limit_on_purpose_flatten_and_reset_a_halt() {
    let ml = ml_with(&[
        ("BTC/USD", "neutral", 0.5, 45000.0, "accumulation"),
        ("ETH/USD", "neutral", 0.5, 2500.0, "accumulation"),
    ]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\", \"ETH/USD\"]");
    let srv = Server::start(dir.path());
    // 1 ETH at 2,500 is worth 25% of the account, over max_position_percent 20.
    let order = json!({"symbol": "ETH/USD", "side": "BUY", "size": 1.0,
                       "take_profit": 2600.0, "stop_loss": 2450.0});
    let r = srv.post_json(&format!("{API}/trade/default"), &order);
    assert_eq!(r.status, 409, "{r:?}");
    assert!(detail(&r).contains("is over the cap"), "{r:?}");
    let mut lifted = order.clone();
    lifted["allow_position_percent"] = json!(25.0);
    let r = srv.post_json(&format!("{API}/trade/default"), &lifted);
    assert_eq!(r.status, 200, "{r:?}");
    let log_id = r.body["log_id"].as_str().unwrap().to_string();
    let r = srv.post_json(
        &format!("{API}/decisions/default/confirm"),
        &json!({ "log_id": log_id }),
    );
    assert_eq!(r.status, 200, "{r:?}");
    // Flatten: the kill switch, and the one position closed at its latest price.
    let r = srv.post_json(&format!("{API}/kill/default"), &json!({"flatten": true}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["kill_switch"], true);
    assert_eq!(r.body["closed"].as_array().unwrap().len(), 1, "{r:?}");
    assert_eq!(r.body["closed"][0]["symbol"], "ETH/USD");
    assert_eq!(r.body["not_closed"], json!([]));
    let r = srv.post_json(&format!("{API}/kill/default"), &json!({"flaten": true}));
    assert_eq!(r.status, 422, "an unknown field is named: {r:?}");
    assert!(detail(&r).contains("unknown field `flaten`"), "{r:?}");
    // A loss halt in force: enable is refused, reset clears it.
    rusqlite::Connection::open(dir.path().join("data/autotrade.db"))
        .unwrap()
        .execute(
            "UPDATE state SET halted_at = 1, halt_reason = 'drawdown 60.00 = 0.59% below the peak 10,150.00 ≥ limit 0.5%' WHERE user_id = 'default'",
            [],
        )
        .unwrap();
    let r = srv.post(&format!("{API}/enable/default"), None);
    assert_eq!(r.status, 409, "{r:?}");
    assert!(detail(&r).contains("HALTED: drawdown 60.00"), "{r:?}");
    let r = srv.post_json(&format!("{API}/enable/default"), &json!({"reset": true}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["halt_cleared"],
        "drawdown 60.00 = 0.59% below the peak 10,150.00 ≥ limit 0.5%"
    );
    let st = srv.status("default");
    assert_eq!(st["enabled"], true);
    assert_eq!(st["kill_switch"], false);
}

/// A REST trade may name a trailing stop, by a percent or an amount, and a bad one is refused
/// naming its field; the position carries it (the remote dashboard's snapshot too).
#[test]
fn a_rest_trade_may_trail() {
    let ml = ml_with(&[("ETH/USD", "neutral", 0.5, 2_000.0, "accumulation")]);
    let dir = setup(&ml, "symbols = [\"ETH/USD\"]\ncheck_interval_minutes = 60");
    let srv = Server::start(dir.path());
    let trade = |extra: Value| {
        let mut body = json!({"symbol": "ETH/USD", "side": "BUY", "size": 1,
                              "take_profit": 2_100, "stop_loss": 1_950});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        srv.post_json("/api/v1/auto-trade/trade/default", &body)
    };
    let r = trade(json!({"trail_percent": 60}));
    assert_eq!(r.status, 422, "{r:?}");
    assert!(
        r.body
            .to_string()
            .contains("trail_percent 60: must be at most 50"),
        "{r:?}"
    );
    let r = trade(json!({"trail_percent": 1, "trail_amount": 20}));
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.body.to_string().contains("not both"), "{r:?}");
    let r = trade(json!({"trail_amount": 20}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["decision"]["trail_amount"], 20.0);
    let r = srv.post_json(
        "/api/v1/auto-trade/decisions/default/confirm",
        &json!({"log_id": r.body["log_id"]}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    // Filled at 2,000: the stop 20 behind it, tighter than the 1,950 stop-loss.
    let r = srv.get("/api/v1/auto-trade/dashboard/default");
    let p = &r.body["snapshot"]["positions"][0];
    assert_eq!(p["stop_loss"], 1_980.0, "{p}");
    assert_eq!(p["trail"], json!({"amount": 20.0}), "{p}");
    assert_eq!(p["best_price"], 2_000.0, "{p}");
}

// ---------------------------------------------------------------- slow and idle connections

/// A tokio connection to `srv` from `from` (another loopback address is another client).
async fn connect_from(srv: &Server, from: &str) -> tokio::net::TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let addr = srv.base.trim_start_matches("http://").parse().unwrap();
    sock.connect(addr).await.unwrap()
}

/// Everything the server sends on `s` until it closes, and how long that took (None: still
/// open after `limit`).
fn read_until_closed(s: &mut std::net::TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let t0 = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                return (
                    String::from_utf8_lossy(&out).into_owned(),
                    Some(t0.elapsed()),
                );
            }
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (
                    String::from_utf8_lossy(&out).into_owned(),
                    Some(t0.elapsed()),
                );
            }
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), None),
        }
        if t0.elapsed() > limit {
            return (String::from_utf8_lossy(&out).into_owned(), None);
        }
    }
}

/// A GET from `from`, timed: its status and how long the answer took.
fn timed_get(srv: &Server, from: &str, path: &str) -> (u16, Duration) {
    srv.rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let t0 = Instant::now();
        let mut s = connect_from(srv, from).await;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, t0.elapsed())
    })
}

/// Half a request line, no headers, a silent connection, a slow body, an idle keep-alive
/// connection: each is closed once the I/O time-out (here 1 s, 30 s by default) has passed.
#[test]
fn stalled_connections_are_closed_after_the_io_timeout() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let srv = Server::start_with(
        dir.path(),
        "127.0.0.1:0",
        &[("AUTOTRADE_API_IO_TIMEOUT", "1")],
    );
    let addr = srv.base.trim_start_matches("http://").to_string();
    let open = || std::net::TcpStream::connect(&addr).unwrap();
    let mut half_line = open();
    half_line.write_all(b"GET /api/v1/auto-tr").unwrap();
    let mut silent = open();
    let mut slow_headers = open();
    slow_headers
        .write_all(
            format!("GET {API}/status/default HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").as_bytes(),
        )
        .unwrap();
    let mut slow_body = open();
    slow_body
        .write_all(
            format!(
                "POST {API}/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                 Content-Length: 200\r\n\r\n{{\"config\": {{"
            )
            .as_bytes(),
        )
        .unwrap();
    let mut keep_alive = open();
    keep_alive
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    for (what, s) in [
        ("half a request line", &mut half_line),
        ("a silent connection", &mut silent),
        ("headers that never end", &mut slow_headers),
        ("an idle keep-alive connection", &mut keep_alive),
    ] {
        let (got, closed) = read_until_closed(s, Duration::from_secs(10));
        assert!(closed.is_some(), "{what} still open after 10 s: {got:?}");
        if what.contains("keep-alive") {
            assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        }
    }
    let (got, closed) = read_until_closed(&mut slow_body, Duration::from_secs(10));
    assert!(
        closed.is_some(),
        "a slow body still open after 10 s: {got:?}"
    );
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("did not arrive within 1 s"), "{got}");
    // Not at once: after the time-out.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // The server goes on serving.
    assert_eq!(srv.get("/health").status, 200);
}

#[test]
fn a_bad_io_timeout_is_refused_at_start() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let out = serve_command(
        dir.path(),
        "127.0.0.1:0",
        &[("AUTOTRADE_API_IO_TIMEOUT", "0")],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AUTOTRADE_API_IO_TIMEOUT"), "{err}");
}

/// 300 half-open connections from one address (over its 128), then 640 from five more
/// (over the 512 in all): the first address's extra ones are refused at once, the oldest
/// idle ones give way to newer ones, the open files stay far under 1,024, and another client
/// is answered in under a second throughout.
#[test]
fn a_connection_flood_is_capped_and_others_are_answered_within_a_second() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let srv = Server::start(dir.path());
    let flood = |from: &'static str, n: usize| {
        srv.rt.block_on(async {
            let mut held = Vec::new();
            for _ in 0..n {
                let mut s = connect_from(&srv, from).await;
                s.write_all(b"GET /api/v1/auto-tr").await.unwrap();
                held.push(s);
            }
            held
        })
    };
    // What each connection got within `wait`: the refusal's text, or None while held open.
    let answers = |conns: &mut Vec<tokio::net::TcpStream>, wait: Duration| -> Vec<Option<String>> {
        srv.rt.block_on(async {
            let futs = conns.iter_mut().map(|s| async move {
                let mut out = Vec::new();
                match tokio::time::timeout(wait, s.read_to_end(&mut out)).await {
                    Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
                    Err(_) => None,
                }
            });
            futures::future::join_all(futs).await
        })
    };
    let mut first = flood("127.0.0.1", 300);
    for _ in 0..5 {
        for path in ["/health", &format!("{API}/status/default")] {
            let (status, took) = timed_get(&srv, "127.0.0.2", path);
            assert_eq!(status, 200);
            assert!(took < Duration::from_secs(1), "{path} took {took:?}");
        }
    }
    let got = answers(&mut first, Duration::from_secs(2));
    let refused: Vec<&String> = got.iter().flatten().collect();
    assert_eq!(refused.len(), 300 - 128, "{:?}", refused.first());
    assert!(
        refused
            .iter()
            .all(|r| r.starts_with("HTTP/1.1 429")
                && r.contains("too many connections from 127.0.0.1")),
        "{:?}",
        refused.first()
    );
    // Five more addresses, 128 each: more than 512 in all.
    let mut more = Vec::new();
    for from in [
        "127.0.0.3",
        "127.0.0.4",
        "127.0.0.5",
        "127.0.0.6",
        "127.0.0.7",
    ] {
        more.extend(flood(from, 128));
        let (status, took) = timed_get(&srv, "127.0.0.2", &format!("{API}/status/default"));
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(1), "status took {took:?}");
    }
    let fds = std::fs::read_dir(format!("/proc/{}/fd", srv.pid())).map(|d| d.count());
    if let Ok(n) = fds {
        assert!(n < 700, "{n} open files under the flood");
    }
    // 128 held + 640 new: the oldest idle ones gave way, 512 at most are open.
    first.extend(more);
    let got = answers(&mut first, Duration::from_secs(2));
    let open = got.iter().filter(|g| g.is_none()).count();
    assert!(open <= 512, "{open} still open");
    assert!(open >= 400, "only {open} still open: the newest should be");
    let (status, took) = timed_get(&srv, "127.0.0.9", "/health");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "health took {took:?}");
}

// ---------------------------------------------------------------- what one request may ask

/// Thirty concurrent configs of ~6,000 symbols checked every 0.001 min are each refused
/// (413 over 64 KiB, 422 naming the field under it), the server stays small, another client
/// is answered within a second meanwhile, and the config file's user keeps the file's ranges.
#[test]
fn a_flood_of_large_configs_is_refused_and_api_users_are_bounded() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]");
    let srv = Server::start_with(
        dir.path(),
        "127.0.0.1:0",
        &[("AUTOTRADE_API_RATE_LIMIT", "0")],
    );
    let huge: Vec<String> = (0..6000).map(|i| format!("S{i}/USD")).collect();
    let big: Vec<String> = (0..5000).map(|i| format!("S{i}/U")).collect();
    let url = srv.url(&format!("{API}/config"));
    let bodies: Vec<String> = (0..30)
        .map(|i| {
            let symbols = if i % 2 == 0 { &huge } else { &big };
            json!({"config": {"user_id": format!("flood_{i}"), "symbols": symbols,
                              "check_interval_minutes": 0.001}})
            .to_string()
        })
        .collect();
    assert!(bodies[0].len() > 64 * 1024 && bodies[1].len() < 64 * 1024);
    let (statuses, answers) = srv.rt.block_on(async {
        let posts = bodies.iter().map(|b| {
            let (http, url) = (srv.http.clone(), url.clone());
            let b = b.clone();
            async move {
                let r = http
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(b)
                    .send()
                    .await;
                match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        (status, r.text().await.unwrap_or_default())
                    }
                    // The server may close before the whole 413 body is sent.
                    Err(e) => (0, e.to_string()),
                }
            }
        });
        let posts = futures::future::join_all(posts);
        let other = async {
            let mut took = Vec::new();
            for _ in 0..5 {
                let t0 = Instant::now();
                let r = srv.http.get(srv.url("/health")).send().await.unwrap();
                assert_eq!(r.status(), 200);
                took.push(t0.elapsed());
            }
            took
        };
        tokio::join!(posts, other)
    });
    for took in &answers {
        assert!(*took < Duration::from_secs(1), "{answers:?}");
    }
    for (i, (status, text)) in statuses.iter().enumerate() {
        if i % 2 == 0 {
            assert!(*status == 413 || *status == 0, "{i}: {status} {text}");
        } else {
            assert_eq!(*status, 422, "{i}: {text}");
            assert!(
                text.contains("config.symbols") && text.contains("at most 20"),
                "{text}"
            );
        }
    }
    assert_eq!(
        srv.get("/health").body["users"],
        1,
        "no flood user was made"
    );
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", srv.pid())) {
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        assert!(rss_kb < 200_000, "serve grew to {rss_kb} kB");
    }
    // The bounds: 20 symbols, once a minute.
    let twenty: Vec<String> = (0..20).map(|i| format!("S{i}/USD")).collect();
    let r = srv.post_json(
        &format!("{API}/config"),
        &json!({"config": {"user_id": "quick", "symbols": ["BTC/USD"], "check_interval_minutes": 0.5}}),
    );
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.body["field"], "config.check_interval_minutes");
    let r = srv.post_json(
        &format!("{API}/config"),
        &json!({"config": {"user_id": "wide", "enabled": false, "symbols": twenty,
                           "check_interval_minutes": 1}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    // The file's user keeps the SPEC's ranges (until the restart).
    let r = srv.post_json(
        &format!("{API}/config"),
        &json!({"config": {"user_id": "default", "enabled": false, "symbols": ["BTC/USD"],
                           "check_interval_minutes": 0.001}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
}

/// `autotrade-tui kill` and the API's kill each succeed within 2 s while the file user's
/// loop cycles 100 symbols every 60 ms and three other writers keep the store's write lock
/// nearly all the time.
#[test]
fn the_kill_switch_wins_within_two_seconds_while_cycles_hammer_the_store() {
    let symbols: Vec<String> = (0..100).map(|i| format!("C{i}/USD")).collect();
    let ml = ml_with(&[]);
    ml.set_every_symbol(
        Reply::Json(signal("bullish", 0.9, 100.0)),
        Reply::Json(phase("accumulation", 0.8)),
    );
    let list = symbols
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let dir = setup(
        &ml,
        &format!(
            "symbols = [{list}]\ncheck_interval_minutes = 0.001\npending_expiry_minutes = 30\nmax_open_positions = 1000"
        ),
    );
    let srv = Server::start_with(
        dir.path(),
        "127.0.0.1:0",
        &[("AUTOTRADE_API_RATE_LIMIT", "0")],
    );
    wait_until(Duration::from_secs(30), "the first cycle", || {
        (!srv.decisions("default").is_empty()).then_some(())
    });
    // Three more writers, each holding the write lock for 40 ms with 1 ms between: SQLite's
    // own wait, backing off to 100 ms between looks, seldom finds it free.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let commits: Arc<Vec<std::sync::atomic::AtomicU64>> = Arc::new(
        (0..3)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect(),
    );
    let hammers: Vec<_> = (0..3)
        .map(|i| {
            let (db, stop, commits) = (
                dir.path().join("data/autotrade.db"),
                stop.clone(),
                commits.clone(),
            );
            std::thread::spawn(move || {
                let conn = rusqlite::Connection::open(db).unwrap();
                conn.busy_timeout(Duration::from_secs(30)).unwrap();
                conn.execute_batch("CREATE TABLE IF NOT EXISTS hammer (who INTEGER, at INTEGER)")
                    .unwrap();
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                    conn.execute(
                        "INSERT INTO hammer VALUES (?1, ?2)",
                        rusqlite::params![i, n],
                    )
                    .unwrap();
                    std::thread::sleep(Duration::from_millis(40));
                    conn.execute_batch("COMMIT").unwrap();
                    n += 1;
                    commits[i].store(n, std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    let counts = || -> Vec<u64> {
        commits
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            .collect()
    };
    wait_until(
        Duration::from_secs(20),
        "every writer to be writing",
        || counts().iter().all(|n| *n >= 3).then_some(()),
    );
    let before = counts();
    for round in 0..3 {
        let t0 = Instant::now();
        let (code, out, err) = run(dir.path(), &["kill"]);
        let took = t0.elapsed();
        assert_eq!(code, 0, "round {round}: {out} {err}");
        assert!(out.contains("kill switch on"), "{out}");
        assert!(
            took < Duration::from_secs(2),
            "round {round}: the CLI kill took {took:?}"
        );
        let t0 = Instant::now();
        let r = srv.post(&format!("{API}/kill/default"), None);
        let took = t0.elapsed();
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            took < Duration::from_secs(2),
            "round {round}: the API kill took {took:?}"
        );
    }
    // The writers kept writing all along (one may starve another: SQLite is not fair).
    let after = counts();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hammers {
        h.join().unwrap();
    }
    assert!(
        after.iter().sum::<u64>() > before.iter().sum::<u64>(),
        "{before:?} → {after:?}"
    );
}

/// SIGTERM stops every user's loop at once: ten loops each stuck on an ML engine that
/// answers after a minute are all stopped within one grace period, not one each.
#[test]
fn sigterm_stops_every_users_loop_in_parallel() {
    let ml = ml_with(&[]);
    ml.set_every_symbol(
        Reply::Json(signal("bullish", 0.9, 100.0)).delayed(Duration::from_secs(60)),
        Reply::Json(phase("accumulation", 0.8)).delayed(Duration::from_secs(60)),
    );
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60");
    let mut srv = Server::start(dir.path());
    for i in 0..10 {
        let r = srv.post_json(
            &format!("{API}/config"),
            &json!({"config": {"user_id": format!("u{i}"), "symbols": ["BTC/USD"]}}),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
    wait_until(
        Duration::from_secs(20),
        "every loop stuck in its first cycle",
        || (ml.hits(&signal_path("BTC/USD")) >= 2).then_some(()),
    );
    let t0 = Instant::now();
    srv.signal("TERM");
    let (code, err) = srv.wait_exit();
    assert_eq!(code, 0, "{err}");
    // One grace period (5 s) and the drain, not 11 × 5 s.
    assert!(
        t0.elapsed() < Duration::from_secs(12),
        "{:?}: {err}",
        t0.elapsed()
    );
}

// ---------------------------------------------------------------- ambiguous requests

/// A second Host header, and a key named twice in a JSON body, are refused naming them: no
/// last-one-wins.
#[test]
fn a_second_host_and_duplicate_json_keys_are_refused() {
    let ml = ml_with(&[("BTC/USD", "neutral", 0.5, 45000.0, "accumulation")]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60");
    let srv = Server::start(dir.path());
    for path in ["/health", &format!("{API}/status/default")] {
        let (status, text) = raw_http(
            &srv.base,
            format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains("more than one Host header"), "{text}");
        assert!(text.contains("\"field\":\"Host\""), "{text}");
    }
    for (path, body, field) in [
        (
            format!("{API}/trade/default"),
            r#"{"symbol": "BTC/USD", "side": "BUY", "size": 0.01, "size": 100}"#,
            "size",
        ),
        (
            format!("{API}/config"),
            r#"{"config": {"user_id": "a", "symbols": ["BTC/USD"], "symbols": ["ETH/USD"]}}"#,
            "config.symbols",
        ),
        (
            format!("{API}/config"),
            r#"{"config": {"user_id": "a"}, "config": {"user_id": "b"}}"#,
            "config",
        ),
        (
            format!("{API}/decisions/default/confirm"),
            r#"{"log_id": "decision_1", "log_id": "decision_2"}"#,
            "log_id",
        ),
        (
            format!("{API}/kill/default"),
            r#"{"flatten": false, "flatten": true}"#,
            "flatten",
        ),
    ] {
        let r = srv.post(&path, Some(body));
        assert_eq!(r.status, 400, "{path} {body}: {r:?}");
        assert_eq!(r.body["field"], field, "{r:?}");
        assert!(detail(&r).contains("appears twice"), "{r:?}");
    }
    assert!(srv.pending("default").is_empty(), "no trade was proposed");
    assert_eq!(srv.get(&format!("{API}/config/a")).status, 404);
    assert_eq!(srv.status("default")["kill_switch"], false);
}

// ---------------------------------------------------------------- users' own tokens

/// A request from `from` with `token`: its status and body.
async fn request_as(
    srv: &Server,
    from: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = connect_from(srv, from).await;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

const ADMIN: &str = "admin-token-0123456789abcdef";

/// Each user made through the API gets its own token, shown once and stored hashed; it acts
/// for that user alone (403 on every other user's route, and no making users); the admin
/// token acts for all; without AUTOTRADE_API_TOKEN on loopback the API stays open.
#[test]
fn each_user_has_its_own_token_that_acts_for_it_alone() {
    let ml = ml_with(&[("BTC/USD", "neutral", 0.5, 45000.0, "accumulation")]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60");
    let mut srv = Server::start_with(dir.path(), "127.0.0.1:0", &[("AUTOTRADE_API_TOKEN", ADMIN)]);
    let mut tokens = Vec::new();
    for u in ["alice", "bob"] {
        let r = srv.post_json(
            &format!("{API}/config"),
            &json!({"config": {"user_id": u, "enabled": false, "symbols": ["BTC/USD"]}}),
        );
        assert_eq!(r.status, 200, "{r:?}");
        let t = r.body["token"].as_str().unwrap().to_string();
        assert!(t.starts_with("att_") && t.len() == 68, "{t}");
        tokens.push(t);
    }
    let (alice, bob) = (tokens[0].clone(), tokens[1].clone());
    // Shown once: replacing the settings makes no new token.
    let r = srv.post_json(
        &format!("{API}/config"),
        &json!({"config": {"user_id": "alice", "enabled": false, "symbols": ["ETH/USD"]}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.get("token").is_none(), "{r:?}");
    let call = |method: &str, path: &str, token: &str, body: Option<&str>| {
        srv.rt.block_on(request_as(
            &srv,
            "127.0.0.1",
            method,
            path,
            Some(token),
            body,
        ))
    };
    for path in [
        "status",
        "config",
        "decisions",
        "pending",
        "dashboard",
        "history",
        "report",
    ] {
        assert_eq!(
            call("GET", &format!("{API}/{path}/alice"), &alice, None).0,
            200,
            "{path}"
        );
        let (status, body) = call("GET", &format!("{API}/{path}/bob"), &alice, None);
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("\"field\":\"user_id\""), "{body}");
        // Users that do not exist, and the file's user, are as closed.
        assert_eq!(
            call("GET", &format!("{API}/{path}/nobody"), &alice, None).0,
            403
        );
        assert_eq!(
            call("GET", &format!("{API}/{path}/default"), &alice, None).0,
            403
        );
    }
    for (path, body) in [
        ("kill/bob", None),
        ("enable/bob", None),
        ("disable/bob", None),
        ("trade/bob", Some(r#"{"symbol": "BTC/USD", "side": "BUY"}"#)),
        ("close/bob", Some(r#"{"symbol": "BTC/USD"}"#)),
        ("decisions/bob/confirm", Some(r#"{"log_id": "decision_1"}"#)),
        ("decisions/bob/cancel", Some(r#"{"log_id": "decision_1"}"#)),
        (
            "decisions/bob/resize",
            Some(r#"{"log_id": "decision_1", "size": 1}"#),
        ),
    ] {
        assert_eq!(
            call("POST", &format!("{API}/{path}"), &alice, body).0,
            403,
            "{path}"
        );
    }
    assert_eq!(
        call("GET", &format!("{API}/events/bob"), &alice, None).0,
        403
    );
    assert_eq!(
        srv.status("bob")["kill_switch"],
        false,
        "alice's kill did not reach bob"
    );
    // Alice may change her own settings, not make users or change bob's.
    let own = r#"{"config": {"user_id": "alice", "enabled": false, "symbols": ["BTC/USD"]}}"#;
    assert_eq!(
        call("POST", &format!("{API}/config"), &alice, Some(own)).0,
        200
    );
    for other in ["bob", "carol"] {
        let body = format!(r#"{{"config": {{"user_id": "{other}", "symbols": ["BTC/USD"]}}}}"#);
        let (status, text) = call("POST", &format!("{API}/config"), &alice, Some(&body));
        assert_eq!(status, 403, "{text}");
        assert!(text.contains("config.user_id"), "{text}");
    }
    assert_eq!(srv.get(&format!("{API}/config/carol")).status, 404);
    assert_eq!(
        call("POST", &format!("{API}/kill/alice"), &alice, None).0,
        200
    );
    assert_eq!(call("GET", &format!("{API}/status/bob"), &bob, None).0, 200);
    assert_eq!(
        call("GET", &format!("{API}/status/alice"), &bob, None).0,
        403
    );
    assert_eq!(
        call("GET", &format!("{API}/status/alice"), "att_00", None).0,
        401
    );
    // Kept hashed: the store holds neither token.
    let mut db = std::fs::read(dir.path().join("data/autotrade.db")).unwrap();
    db.extend(std::fs::read(dir.path().join("data/autotrade.db-wal")).unwrap_or_default());
    let text = String::from_utf8_lossy(&db);
    assert!(!text.contains(&alice[4..]) && !text.contains(&bob[4..]));
    let hashed = rusqlite::Connection::open(dir.path().join("data/autotrade.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM api_tokens WHERE length(token_sha256) = 64",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    assert_eq!(hashed, 2);
    // Across a restart.
    srv.signal("TERM");
    assert_eq!(srv.wait_exit().0, 0);
    let srv = Server::start_with(dir.path(), "127.0.0.1:0", &[("AUTOTRADE_API_TOKEN", ADMIN)]);
    let call = |path: &str, token: Option<&str>| {
        srv.rt
            .block_on(request_as(&srv, "127.0.0.1", "GET", path, token, None))
            .0
    };
    assert_eq!(call(&format!("{API}/status/alice"), Some(&alice)), 200);
    assert_eq!(call(&format!("{API}/status/bob"), Some(&alice)), 403);
    drop(srv);
    // Loopback without AUTOTRADE_API_TOKEN: open as before, but a user's token still only
    // acts for its user.
    let srv = Server::start(dir.path());
    let call = |path: &str, token: Option<&str>| {
        srv.rt
            .block_on(request_as(&srv, "127.0.0.1", "GET", path, token, None))
            .0
    };
    assert_eq!(call(&format!("{API}/status/bob"), None), 200);
    assert_eq!(call(&format!("{API}/status/bob"), Some(&alice)), 403);
    assert_eq!(call(&format!("{API}/status/alice"), Some(&alice)), 200);
}

/// A token's requests share one bucket, whatever address they come from; the address's own
/// bucket still holds too; another token is not touched.
#[test]
fn the_rate_limit_counts_per_token_as_well_as_per_address() {
    let ml = ml_with(&[]);
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60");
    // 2 a second, bursts of 4.
    let srv = Server::start_with(
        dir.path(),
        "127.0.0.1:0",
        &[
            ("AUTOTRADE_API_TOKEN", ADMIN),
            ("AUTOTRADE_API_RATE_LIMIT", "2"),
        ],
    );
    let r = srv.post_json(
        &format!("{API}/config"),
        &json!({"config": {"user_id": "alice", "enabled": false, "symbols": ["BTC/USD"]}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let alice = r.body["token"].as_str().unwrap().to_string();
    let path = format!("{API}/status/alice");
    // Four fresh addresses, three requests each: under each address's burst of 4, twelve
    // on alice's token.
    let got: Vec<(u16, String)> = srv.rt.block_on(async {
        let futs = (0..12).map(|i| {
            let from = format!("127.0.1.{}", 1 + i % 4);
            let (srv, path, alice) = (&srv, &path, &alice);
            async move { request_as(srv, &from, "GET", path, Some(alice), None).await }
        });
        futures::future::join_all(futs).await
    });
    let ok = got.iter().filter(|(s, _)| *s == 200).count();
    let limited: Vec<&String> = got
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, b)| b)
        .collect();
    assert!((4..=6).contains(&ok), "{got:?}");
    assert_eq!(ok + limited.len(), 12, "{got:?}");
    assert!(
        limited[0].contains("user \\\"alice\\\"'s token"),
        "{}",
        limited[0]
    );
    // The admin token, from one of those addresses, has its own bucket.
    let (status, body) = srv.rt.block_on(request_as(
        &srv,
        "127.0.2.9",
        "GET",
        &path,
        Some(ADMIN),
        None,
    ));
    assert_eq!(status, 200, "{body}");
}

// ---------------------------------------------------------------- the published document

/// The YAML reader reads the whole document, and the validator catches what it should.
#[test]
fn the_openapi_document_reads_and_its_validator_bites() {
    let d = support::openapi::Document::load();
    assert_eq!(d.doc["openapi"], "3.0.3");
    assert_eq!(d.doc["paths"].as_object().unwrap().len(), 18);
    assert_eq!(
        d.template("/api/v1/auto-trade/decisions/x%20y/confirm")
            .as_deref(),
        Some("/api/v1/auto-trade/decisions/{user_id}/confirm")
    );
    let ok = json!({"detail": "no user", "field": "user_id"});
    assert!(
        d.check("GET", "/api/v1/auto-trade/status/x", 404, &ok)
            .is_empty()
    );
    for (status, body) in [
        (404, json!({"field": "user_id"})),
        (404, json!({"detail": 5})),
        (418, json!({"detail": "teapot"})),
    ] {
        assert!(
            !d.check("GET", "/api/v1/auto-trade/status/x", status, &body)
                .is_empty(),
            "{status} {body}"
        );
    }
    let s = json!({"$ref": "#/components/schemas/AutoTradeConfigInput"});
    let mut errors = Vec::new();
    d.validate(
        &s,
        &json!({"user_id": null, "paper_trading": null, "bogus": 1, "max_risk_percent": 0}),
        "c",
        &mut errors,
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
}

/// Real answers of every route, successes and refusals, checked against assets/openapi.yaml:
/// each status is declared for its operation, and each JSON body fits the schema declared.
#[test]
fn responses_agree_with_the_openapi_document() {
    let d = support::openapi::Document::load();
    let ml = ml_with(&[("BTC/USD", "neutral", 0.5, 45000.0, "accumulation")]);
    let dir = setup(
        &ml,
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60\npending_expiry_minutes = 30",
    );
    let srv = Server::start_with(dir.path(), "127.0.0.1:0", &[("AUTOTRADE_API_TOKEN", ADMIN)]);
    let mut seen: Vec<(String, String, u16, Value)> = Vec::new();
    let mut call =
        |method: &str, path: &str, token: Option<&str>, body: Option<&str>| -> (u16, Value) {
            let (status, text) =
                srv.rt
                    .block_on(request_as(&srv, "127.0.0.1", method, path, token, body));
            let v = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{method} {path}: {text}: {e}"))
            };
            seen.push((method.into(), path.into(), status, v.clone()));
            (status, v)
        };
    let a = Some(ADMIN);
    let cfg = r#"{"config": {"user_id": "alice", "symbols": ["BTC/USD"], "check_interval_minutes": 60, "pending_expiry_minutes": 30}}"#;
    let (s, v) = call("POST", &format!("{API}/config"), a, Some(cfg));
    assert_eq!(s, 200, "{v}");
    let alice = v["token"].as_str().unwrap().to_string();
    let t = Some(alice.as_str());
    call("POST", &format!("{API}/config"), a, Some(cfg));
    for bad in [
        r#"{"config": {"user_id": "x", "min_confidence": 2}}"#,
        r#"{"config": {"user_id": "x", "check_interval_minutes": 0.01}}"#,
        r#"{"config": {"user_id": "x", "enabled": true, "enabled": false}}"#,
        r#"{"config": {"user_id": "x", "paper_trading": false}}"#,
        r#"{"config": 5}"#,
        "{not json",
    ] {
        call("POST", &format!("{API}/config"), a, Some(bad));
    }
    call(
        "POST",
        &format!("{API}/config"),
        t,
        Some(r#"{"config": {"user_id": "bob"}}"#),
    );
    call("POST", &format!("{API}/config"), None, Some(cfg));
    for route in [
        "config",
        "status",
        "dashboard",
        "decisions",
        "pending",
        "history",
        "report",
    ] {
        call("GET", &format!("{API}/{route}/alice"), t, None);
        call("GET", &format!("{API}/{route}/nobody"), a, None);
        call("GET", &format!("{API}/{route}/default"), t, None);
    }
    call("GET", &format!("{API}/decisions/alice?limit=0"), t, None);
    call("GET", &format!("{API}/report/alice?bogus=1"), t, None);
    call(
        "GET",
        &format!("{API}/decisions/alice?limit=5&executed_only=true"),
        t,
        None,
    );
    let (s, v) = call(
        "POST",
        &format!("{API}/trade/alice"),
        t,
        Some(
            r#"{"symbol": "BTC/USD", "side": "BUY", "size": null, "take_profit": 47000, "stop_loss": 44000}"#,
        ),
    );
    assert_eq!(s, 200, "{v}");
    let log_id = v["log_id"].as_str().unwrap().to_string();
    call(
        "POST",
        &format!("{API}/trade/alice"),
        t,
        Some(r#"{"symbol": "BTC/USD", "side": "BUY", "take_profit": 1}"#),
    );
    call(
        "POST",
        &format!("{API}/trade/alice"),
        t,
        Some(r#"{"symbol": null, "side": "BUY"}"#),
    );
    call(
        "POST",
        &format!("{API}/trade/alice"),
        t,
        Some(r#"{"symbol": "DOGE/USD", "side": "BUY"}"#),
    );
    let resize = format!(r#"{{"log_id": "{log_id}", "size": 0.001}}"#);
    call(
        "POST",
        &format!("{API}/decisions/alice/resize"),
        t,
        Some(&resize),
    );
    let id = format!(r#"{{"log_id": "{log_id}"}}"#);
    let (s, v) = call(
        "POST",
        &format!("{API}/decisions/alice/confirm"),
        t,
        Some(&id),
    );
    assert_eq!(s, 200, "{v}");
    call(
        "POST",
        &format!("{API}/decisions/alice/confirm"),
        t,
        Some(&id),
    );
    call(
        "POST",
        &format!("{API}/decisions/alice/cancel"),
        t,
        Some(&id),
    );
    call(
        "POST",
        &format!("{API}/decisions/alice/cancel"),
        t,
        Some(r#"{"log_id": "decision_00"}"#),
    );
    call(
        "POST",
        &format!("{API}/decisions/alice/resize"),
        t,
        Some(&resize),
    );
    call(
        "POST",
        &format!("{API}/decisions/alice/confirm"),
        t,
        Some(r#"{"log_id": 5}"#),
    );
    let (s, v) = call(
        "POST",
        &format!("{API}/close/alice"),
        t,
        Some(r#"{"symbol": "BTC/USD", "position_id": null}"#),
    );
    assert_eq!(s, 200, "{v}");
    call(
        "POST",
        &format!("{API}/close/alice"),
        t,
        Some(r#"{"symbol": "BTC/USD"}"#),
    );
    call("POST", &format!("{API}/disable/alice"), t, None);
    call(
        "POST",
        &format!("{API}/enable/alice"),
        t,
        Some(r#"{"reset": null}"#),
    );
    call(
        "POST",
        &format!("{API}/enable/alice"),
        t,
        Some(r#"{"reset": true}"#),
    );
    call("POST", &format!("{API}/enable/alice"), t, None);
    call(
        "POST",
        &format!("{API}/kill/alice"),
        t,
        Some(r#"{"flatten": true}"#),
    );
    call("POST", &format!("{API}/kill/alice"), t, None);
    call(
        "POST",
        &format!("{API}/kill/alice"),
        t,
        Some("{\"flatten\": \"yes\"}"),
    );
    call("GET", &format!("{API}/events/bob"), t, None);
    call("GET", "/health", None, None);
    call("GET", &format!("{API}/nothing/here"), a, None);
    // Refusals a client may meet on any route.
    let mut raw = |path: &str, request: String| {
        let (status, text) = raw_http(&srv.base, request.as_bytes());
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        let v = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap()
        };
        seen.push((
            request.split_whitespace().next().unwrap().to_string(),
            path.to_string(),
            status,
            v,
        ));
    };
    let status = format!("{API}/status/alice");
    raw(
        &status,
        format!("GET {status} HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    raw(
        &status,
        format!(
            "GET {status} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
        ),
    );
    raw(
        "/health",
        "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n".to_string(),
    );
    let kill = format!("{API}/kill/alice");
    raw(
        &kill,
        format!(
            "POST {kill} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        ),
    );
    raw(
        &kill,
        format!(
            "POST {kill} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 70000\r\nConnection: close\r\n\r\n"
        ),
    );
    drop(srv);
    // 408 and 429 on a server with a short time-out and a low limit.
    let srv = Server::start_with(
        dir.path(),
        "127.0.0.1:0",
        &[
            ("AUTOTRADE_API_IO_TIMEOUT", "0.5"),
            ("AUTOTRADE_API_RATE_LIMIT", "1"),
        ],
    );
    let cfg_path = format!("{API}/config");
    let (s, text) = raw_http(
        &srv.base,
        format!("POST {cfg_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{{").as_bytes(),
    );
    seen.push((
        "POST".into(),
        cfg_path,
        s,
        serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap(),
    ));
    for path in ["/health".to_string(), format!("{API}/status/default")] {
        for _ in 0..4 {
            let r = srv.get(&path);
            seen.push(("GET".into(), path.clone(), r.status, r.body));
        }
    }
    let statuses: std::collections::BTreeSet<u16> = seen.iter().map(|s| s.2).collect();
    for want in [200, 400, 401, 403, 404, 408, 409, 413, 415, 422, 429] {
        assert!(
            statuses.contains(&want),
            "no {want} was exercised: {statuses:?}"
        );
    }
    let mut errors = Vec::new();
    for (method, path, status, body) in &seen {
        if path.contains("/nothing/") {
            continue;
        }
        errors.extend(d.check(method, path, *status, body));
    }
    assert!(
        errors.is_empty(),
        "{} disagreements:\n{}",
        errors.len(),
        errors.join("\n")
    );
}
