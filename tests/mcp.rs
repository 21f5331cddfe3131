#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! `autotrade-tui mcp` driven as an MCP client drives it: the real binary, JSON-RPC on its
//! stdin and stdout, one message per line, against a loopback ML engine. Proposals land in
//! the store for the command line (and the dashboard) to see and confirm; refusals are
//! tool errors with a reason, and the server keeps serving.

mod support;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tempfile::TempDir;

/// Long enough for a debug build on a busy machine; a healthy answer takes milliseconds.
const DEADLINE: Duration = Duration::from_secs(30);

const TWO: &str = "symbols = [\"BTC/USD\", \"ETH/USD\"]";

/// The real binary as an MCP server, with a reader thread so every read has a deadline.
struct McpClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Lines on stdout that are not JSON-RPC 2.0 messages (there must be none).
    noise: Arc<Mutex<Vec<String>>>,
    next_id: i64,
}

impl McpClient {
    fn start(dir: &Path) -> McpClient {
        let mut child = Command::new(bin())
            .arg("mcp")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env_remove("AUTOTRADE_CONFIG")
            .env_remove("AUTOTRADE_DATA_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting autotrade-tui mcp");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        let noise = Arc::new(Mutex::new(Vec::new()));
        let noise_w = noise.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let is_rpc = serde_json::from_str::<Value>(&line)
                    .map(|v| v["jsonrpc"] == "2.0")
                    .unwrap_or(false);
                if !is_rpc {
                    noise_w.lock().unwrap().push(line.clone());
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        McpClient {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            noise,
            next_id: 1,
        }
    }

    /// Start, `initialize` and `notifications/initialized`; returns the initialize result.
    fn ready(dir: &Path) -> (McpClient, Value) {
        let mut c = McpClient::start(dir);
        let init = c.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "autotrade-tests", "version": "1"}}),
        );
        c.notify("notifications/initialized");
        (c, init)
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str) {
        self.send_line(&json!({"jsonrpc": "2.0", "method": method}).to_string());
    }

    /// Send a request and wait for the response with its id; returns the whole response.
    fn raw_request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_line(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    if v["id"] == id {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no answer to {method} within {DEADLINE:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the server closed stdout during {method}")
                }
            }
        }
    }

    /// Send `line` as it is (a request with id `id`) and wait for its response.
    fn request_line(&mut self, id: i64, line: &str) -> Value {
        self.send_line(line);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let Ok(v) = serde_json::from_str::<Value>(&l) else {
                        continue;
                    };
                    if v["id"] == id {
                        return v;
                    }
                }
                Err(e) => panic!("no answer to {line}: {e:?}"),
            }
        }
    }

    /// A request that must succeed at the protocol level; returns its result.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let v = self.raw_request(method, params);
        assert!(v.get("error").is_none(), "{method} failed: {v}");
        v["result"].clone()
    }

    fn call(&mut self, tool: &str, arguments: Value) -> ToolResult {
        let r = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        ToolResult::from(r)
    }

    /// Close stdin (how a client ends the session) and wait for the exit code.
    fn finish(mut self) -> i32 {
        drop(self.stdin.take());
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let noise = self.noise.lock().unwrap().clone();
                assert!(noise.is_empty(), "non-protocol lines on stdout: {noise:?}");
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit after stdin closed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `tools/call` result taken apart.
#[derive(Debug)]
struct ToolResult {
    is_error: bool,
    /// All text content, joined by newlines.
    text: String,
    structured: Value,
}

impl From<Value> for ToolResult {
    fn from(r: Value) -> Self {
        let text = r["content"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        assert_eq!(c["type"], "text", "{r}");
                        c["text"].as_str().unwrap().to_string()
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        ToolResult {
            is_error: r["isError"] == true,
            text,
            structured: r["structuredContent"].clone(),
        }
    }
}

impl ToolResult {
    /// A success whose text content is the structured content, serialized.
    fn ok(self) -> Value {
        assert!(!self.is_error, "tool error: {}", self.text);
        let from_text: Value = serde_json::from_str(&self.text).expect("text content is JSON");
        assert_eq!(from_text, self.structured);
        self.structured
    }

    /// A tool error; returns its text (the reason).
    fn refused(self) -> String {
        assert!(self.is_error, "expected a tool error, got {}", self.text);
        // No structured content on an error: a client checks any against the output schema.
        assert!(self.structured.is_null(), "{}", self.structured);
        self.text
    }
}

fn setup(ml: &MlServer, auto_trade: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), Some(&ml.url), auto_trade, "");
    dir
}

/// BTC/USD a BUY (bullish during accumulation), ETH/USD a HOLD (neutral).
fn ml_engine() -> MlServer {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 45000.0, "accumulation");
    ml.set_symbol("ETH/USD", "neutral", 0.6, 2500.0, "manipulation");
    ml
}

fn status_cli(dir: &Path) -> Value {
    let (code, out, err) = run(dir, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    json_lines(&out).remove(0)
}

// ---------------------------------------------------------------- session

#[test]
fn initialize_and_list_the_seven_tools_with_schemas() {
    let ml = ml_engine();
    let dir = setup(&ml, TWO);
    let (mut c, init) = McpClient::ready(dir.path());
    assert_eq!(init["protocolVersion"], "2025-06-18");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");
    assert_eq!(init["serverInfo"]["name"], "autotrade-tui");
    let instructions = init["instructions"].as_str().unwrap();
    assert!(instructions.contains("no tool here confirms, cancels or executes"));

    let list = c.request("tools/list", json!({}));
    let tools = list["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "get_amd_phase",
            "get_ml_signal",
            "auto_trade_decision",
            "execute_trade",
            "list_pending",
            "get_status",
            "get_decisions"
        ]
    );
    for t in tools {
        let schema = &t["inputSchema"];
        assert_eq!(schema["type"], "object", "{t}");
        assert_eq!(schema["additionalProperties"], false, "{t}");
        assert!(t["description"].as_str().unwrap().len() > 100, "{t}");
    }
    let by_name = |n: &str| tools.iter().find(|t| t["name"] == n).unwrap();
    for n in ["get_amd_phase", "get_ml_signal", "auto_trade_decision"] {
        assert_eq!(by_name(n)["inputSchema"]["required"], json!(["symbol"]));
    }
    let trade = by_name("execute_trade");
    assert_eq!(trade["inputSchema"]["required"], json!(["symbol", "side"]));
    assert_eq!(
        trade["inputSchema"]["properties"]["side"]["enum"],
        json!(["buy", "sell"])
    );
    for p in ["size", "take_profit", "stop_loss"] {
        assert_eq!(
            trade["inputSchema"]["properties"][p]["exclusiveMinimum"], 0,
            "{p}"
        );
    }
    let d = trade["description"].as_str().unwrap();
    assert!(
        d.contains("does NOT execute") && d.contains("PENDING"),
        "{d}"
    );
    assert_eq!(trade["annotations"]["readOnlyHint"], false);
    assert_eq!(by_name("get_status")["annotations"]["readOnlyHint"], true);
    let limit = &by_name("get_decisions")["inputSchema"]["properties"]["limit"];
    assert_eq!(
        (limit["minimum"].clone(), limit["maximum"].clone()),
        (json!(1), json!(1000))
    );
    assert_eq!(c.finish(), 0, "closing stdin ends the server cleanly");
}

// ---------------------------------------------------------------- read tools

#[test]
fn signal_phase_and_status_come_from_the_engine_and_the_store() {
    let ml = ml_engine();
    let dir = setup(&ml, TWO);
    let (mut c, _) = McpClient::ready(dir.path());

    let sig = c.call("get_ml_signal", json!({"symbol": "BTC/USD"})).ok();
    assert_eq!(sig["symbol"], "BTC/USD");
    assert_eq!(sig["direction"], "bullish");
    assert_eq!(sig["confidence"], 0.9);
    assert_eq!(sig["entry_price"], 45000.0);
    assert!(ml.hits(&signal_path("BTC/USD")) >= 1);

    let phase = c.call("get_amd_phase", json!({"symbol": "btc/usd"})).ok();
    assert_eq!(
        phase["symbol"], "BTC/USD",
        "a configured symbol in any case"
    );
    assert_eq!(phase["phase"], "accumulation");
    assert_eq!(phase["confidence"], 0.8);
    assert_eq!(phase["indicators"]["volume_profile"], "accumulating");

    // The same JSON as `status --json`.
    let status = c.call("get_status", json!({})).ok();
    assert_eq!(status, status_cli(dir.path()));
    assert_eq!(status["source"], "ml_engine");
    assert_eq!(status["enabled"], true);

    // A symbol the engine does not know, and an answer that cannot be trusted.
    let e = c
        .call("get_ml_signal", json!({"symbol": "DOGE/USD"}))
        .refused();
    assert!(
        e.contains("ML signal for DOGE/USD unavailable") && e.contains("404"),
        "{e}"
    );
    ml.set_phase("ETH/USD", json!({"phase": "sideways", "confidence": 0.5}));
    let e = c
        .call("get_amd_phase", json!({"symbol": "ETH/USD"}))
        .refused();
    assert!(
        e.contains("cannot be trusted") && e.contains("sideways"),
        "{e}"
    );
    // Reading stored nothing.
    assert!(decisions_json(dir.path(), &[]).is_empty());
    assert_eq!(c.finish(), 0);
}

// ---------------------------------------------------------------- proposals

#[test]
fn auto_trade_decision_stays_pending_for_a_person_even_without_confirmation() {
    let ml = ml_engine();
    // Auto-execution is on for the monitoring loop; it must not apply to an agent.
    let dir = setup(&ml, &format!("{TWO}\nrequire_confirmation = false"));
    let (mut c, _) = McpClient::ready(dir.path());

    let log = c
        .call("auto_trade_decision", json!({"symbol": "BTC/USD"}))
        .ok();
    assert_eq!(log["status"], "pending", "{log}");
    assert_eq!(log["origin"], "agent");
    assert_eq!(log["executed"], false);
    assert_eq!(log["decision"]["action"], "BUY");
    assert_eq!(log["decision"]["confidence"], 0.855);
    assert_eq!(log["decision"]["amd_phase"], "accumulation");
    assert!(log["risk_reward"]["risk_reward_ratio"].as_f64().unwrap() > 0.0);
    let id = log["log_id"].as_str().unwrap();

    // The command line sees the same JSON; nothing was executed.
    let pending = decisions_json(dir.path(), &["--pending"]);
    assert_eq!(pending, vec![log.clone()]);
    let (_, out, _) = run(dir.path(), &["positions", "--json"]);
    assert!(json_lines(&out).is_empty(), "{out}");

    // A HOLD by the rules is an answer, not an error.
    let hold = c
        .call("auto_trade_decision", json!({"symbol": "ETH/USD"}))
        .ok();
    assert_eq!(hold["status"], "hold");
    assert_eq!(hold["origin"], "agent");
    assert_eq!(hold["risk_reward"], Value::Null);
    assert!(
        hold["decision"]["reasoning"]
            .as_str()
            .unwrap()
            .contains("neutral")
    );

    // One pending decision per symbol: a second proposal is refused, and says why.
    let e = c
        .call("auto_trade_decision", json!({"symbol": "BTC/USD"}))
        .refused();
    assert!(e.contains("BTC/USD already has a pending decision"), "{e}");
    let e = c
        .call(
            "execute_trade",
            json!({"symbol": "BTC/USD", "side": "sell", "take_profit": 40000, "stop_loss": 46000}),
        )
        .refused();
    assert!(e.contains("BTC/USD already has a pending decision"), "{e}");

    // list_pending and get_decisions carry the decision log lines of the command line.
    let listed = c.call("list_pending", json!({})).ok();
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["decisions"][0]["log_id"], id);
    assert_eq!(
        listed["decisions"],
        json!(decisions_json(dir.path(), &["--pending"]))
    );
    let all = c.call("get_decisions", json!({"limit": 2})).ok();
    assert_eq!(all["count"], 2);
    assert_eq!(
        all["decisions"],
        json!(decisions_json(dir.path(), &["--limit", "2"]))
    );
    let none = c.call("get_decisions", json!({"executed_only": true})).ok();
    assert_eq!(none["count"], 0);
    assert_eq!(c.finish(), 0);
}

#[test]
fn auto_trade_decision_on_inputs_that_cannot_be_trusted_is_a_tool_error() {
    let ml = ml_engine();
    ml.set(
        &signal_path("ETH/USD"),
        Reply::status(503, "{\"detail\":\"down\"}"),
    );
    let dir = setup(&ml, TWO);
    let (mut c, _) = McpClient::ready(dir.path());
    let e = c
        .call("auto_trade_decision", json!({"symbol": "ETH/USD"}))
        .refused();
    assert!(
        e.contains("no decision can be trusted for ETH/USD") && e.contains("503"),
        "{e}"
    );
    // The HOLD is in the audit trail all the same, and marked as the agent's.
    let logs = decisions_json(dir.path(), &[]);
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["status"], "hold");
    assert_eq!(logs[0]["origin"], "agent");
    assert!(e.contains(logs[0]["log_id"].as_str().unwrap()), "{e}");

    // Levels on the wrong side for the direction cannot be trusted either.
    ml.set_signal(
        "ETH/USD",
        json!({"direction": "bearish", "confidence": 0.9, "entry_price": 2500.0,
               "take_profit": 2600.0, "stop_loss": 2550.0, "risk_reward_ratio": 2.0}),
    );
    ml.set_phase("ETH/USD", phase("distribution", 0.8));
    let e = c
        .call("auto_trade_decision", json!({"symbol": "ETH/USD"}))
        .refused();
    assert!(e.contains("SELL needs"), "{e}");

    // A confidence under min_confidence is the rules' HOLD: an answer, not an error.
    ml.set_symbol("BTC/USD", "bullish", 0.5, 45000.0, "accumulation");
    let hold = c
        .call("auto_trade_decision", json!({"symbol": "BTC/USD"}))
        .ok();
    assert_eq!(hold["status"], "hold");
    assert!(
        hold["decision"]["reasoning"]
            .as_str()
            .unwrap()
            .contains("below min_confidence"),
        "{hold}"
    );
    assert!(decisions_json(dir.path(), &["--pending"]).is_empty());
    assert_eq!(c.finish(), 0);
}

#[test]
fn an_execute_trade_proposal_is_pending_and_is_confirmed_from_the_command_line() {
    let ml = ml_engine();
    let dir = setup(&ml, TWO);
    let (mut c, _) = McpClient::ready(dir.path());

    let log = c
        .call(
            "execute_trade",
            json!({"symbol": "BTC/USD", "side": "buy", "size": 0.01}),
        )
        .ok();
    assert_eq!(log["status"], "pending", "{log}");
    assert_eq!(log["origin"], "agent");
    let d = &log["decision"];
    assert_eq!(d["action"], "BUY");
    assert_eq!(d["entry_price"], 45000.0);
    assert_eq!(d["take_profit"], 47250.0, "from the ML signal");
    assert_eq!(d["stop_loss"], 44100.0, "from the ML signal");
    assert_eq!(d["position_size"], 0.01);
    assert_eq!(
        log["risk_reward"],
        json!({"risk_amount": 9.0, "reward_amount": 22.5, "risk_reward_ratio": 2.5,
               "risk_percent": 2.0, "reward_percent": 5.0})
    );
    let id = log["log_id"].as_str().unwrap().to_string();

    // `decisions --pending --json` shows it, from the agent.
    let pending = decisions_json(dir.path(), &["--pending"]);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["log_id"], id.as_str());
    assert_eq!(pending[0]["origin"], "agent");

    // The trader confirms it from the command line.
    let (code, out, err) = run(dir.path(), &["confirm", &id]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("executed BUY"), "{out}");

    // The agent sees the outcome; it cannot confirm anything itself.
    let executed = c.call("get_decisions", json!({"executed_only": true})).ok();
    assert_eq!(executed["count"], 1);
    assert_eq!(executed["decisions"][0]["log_id"], id.as_str());
    assert_eq!(executed["decisions"][0]["status"], "executed");
    let status = c.call("get_status", json!({})).ok();
    assert_eq!(
        (status["open_positions"].clone(), status["pending"].clone()),
        (json!(1), json!(0))
    );

    // Levels given by the agent win over the signal's, on the right side for a SELL.
    let sell = c
        .call(
            "execute_trade",
            json!({"symbol": "ETH/USD", "side": "SELL", "take_profit": 2400.0, "stop_loss": 2550.0}),
        )
        .ok();
    assert_eq!(sell["decision"]["action"], "SELL");
    assert_eq!(sell["decision"]["take_profit"], 2400.0);
    assert_eq!(sell["decision"]["stop_loss"], 2550.0);
    assert!(
        sell["decision"]["position_size"].as_f64().unwrap() > 0.0,
        "sized by the risk rules"
    );
    assert_eq!(c.finish(), 0);
}

#[test]
fn proposals_during_the_kill_switch_are_refused_with_the_reason() {
    let ml = ml_engine();
    let dir = setup(&ml, TWO);
    let (mut c, _) = McpClient::ready(dir.path());

    // Disabled from the command line while the server runs: read at each proposal.
    let (code, _, err) = run(dir.path(), &["disable"]);
    assert_eq!(code, 0, "{err}");
    let e = c
        .call("execute_trade", json!({"symbol": "BTC/USD", "side": "buy"}))
        .refused();
    assert!(e.contains("auto-trading is disabled"), "{e}");

    let (code, _, err) = run(dir.path(), &["kill"]);
    assert_eq!(code, 0, "{err}");

    let e = c
        .call("execute_trade", json!({"symbol": "BTC/USD", "side": "buy"}))
        .refused();
    assert!(e.contains("kill switch is on"), "{e}");
    let e = c
        .call("auto_trade_decision", json!({"symbol": "BTC/USD"}))
        .refused();
    assert!(e.contains("kill switch is on"), "{e}");
    assert!(decisions_json(dir.path(), &["--pending"]).is_empty());

    // Back on: the agent may propose again; a kill while the server runs cancels it and
    // refuses the next one.
    let (code, _, _) = run(dir.path(), &["enable"]);
    assert_eq!(code, 0);
    let log = c
        .call("auto_trade_decision", json!({"symbol": "BTC/USD"}))
        .ok();
    assert_eq!(log["status"], "pending");
    let (code, _, _) = run(dir.path(), &["kill"]);
    assert_eq!(code, 0);
    let listed = c.call("list_pending", json!({})).ok();
    assert_eq!(listed["count"], 0, "the kill switch cancelled the proposal");
    let e = c
        .call("execute_trade", json!({"symbol": "ETH/USD", "side": "sell", "take_profit": 2400.0, "stop_loss": 2550.0}))
        .refused();
    assert!(e.contains("kill switch is on"), "{e}");
    assert_eq!(c.finish(), 0);
}

// ---------------------------------------------------------------- bad input

#[test]
fn malformed_arguments_are_tool_errors_and_the_server_keeps_serving() {
    let ml = ml_engine();
    let dir = setup(&ml, TWO);
    let (mut c, _) = McpClient::ready(dir.path());

    let cases: [(&str, Value, &str); 12] = [
        ("get_ml_signal", json!({}), "missing field `symbol`"),
        ("auto_trade_decision", json!({"symbol": 5}), "invalid type"),
        (
            "get_amd_phase",
            json!({"symbol": "BTC-USD"}),
            "is not a pair like BTC/USD (BASE/QUOTE, letters and digits) or a US stock ticker like AAPL",
        ),
        (
            "execute_trade",
            json!({"side": "buy"}),
            "missing field `symbol`",
        ),
        (
            "execute_trade",
            json!({"symbol": "BTC/USD"}),
            "missing field `side`",
        ),
        (
            "execute_trade",
            json!({"symbol": "BTC/USD", "side": "hold"}),
            r#"side must be "buy" or "sell", got "hold""#,
        ),
        (
            "execute_trade",
            json!({"symbol": "BTC/USD", "side": "buy", "size": -1}),
            "size must be a number > 0, got -1",
        ),
        (
            "execute_trade",
            json!({"symbol": "BTC/USD", "side": "buy", "tp": 50000}),
            "unknown field `tp`",
        ),
        (
            "execute_trade",
            json!({"symbol": "BTC/USD", "side": "buy", "take_profit": 44000}),
            "BUY needs take_profit > entry_price",
        ),
        (
            "execute_trade",
            json!({"symbol": "BTC/USD", "side": "buy", "size": 1000}),
            "over the cap",
        ),
        (
            "get_decisions",
            json!({"limit": 0}),
            "limit must be 1 to 1000, got 0",
        ),
        (
            "get_status",
            json!({"verbose": true}),
            "unknown field `verbose`",
        ),
    ];
    for (tool, args, expect) in cases {
        let e = c.call(tool, args.clone()).refused();
        assert!(
            e.contains(expect),
            "{tool} {args}: {e:?} should say {expect:?}"
        );
    }
    // Neither a line that is not JSON nor a call without arguments stops the server.
    c.send_line("this is not JSON");
    let e = ToolResult::from(c.request("tools/call", json!({"name": "execute_trade"}))).refused();
    assert!(e.contains("missing field `symbol`"), "{e}");

    // Still serving: a good call succeeds, and nothing was proposed by the bad ones.
    let log = c
        .call("execute_trade", json!({"symbol": "BTC/USD", "side": "buy"}))
        .ok();
    assert_eq!(log["status"], "pending");
    let pending = decisions_json(dir.path(), &["--pending"]);
    assert_eq!(pending.len(), 1);
    assert_eq!(c.finish(), 0);
}

#[test]
fn a_proposal_appears_on_a_running_dashboard_marked_as_the_agents() {
    let ml = ml_engine();
    let dir = setup(&ml, &format!("{TWO}\ncheck_interval_minutes = 5"));
    let mut d = support::pty::Dashboard::start(dir.path());
    // The dashboard's first cycle: BTC/USD pending (auto), ETH/USD a HOLD.
    d.wait_screen("the dashboard's first cycle", |t| {
        t.contains("Pending decisions (1)")
    });
    let (mut c, _) = McpClient::ready(dir.path());
    let log = c
        .call(
            "execute_trade",
            json!({"symbol": "ETH/USD", "side": "sell", "size": 0.1,
                   "take_profit": 2400.0, "stop_loss": 2550.0}),
        )
        .ok();
    assert_eq!(log["origin"], "agent");
    // It arrives in the pending pane (newest first, at the top) and the events say whose it is.
    d.wait_screen("the agent's proposal on the dashboard", |t| {
        t.contains("Pending decisions (2)")
            && t.lines().any(|l| l.contains("  SELL ETH/USD"))
            && t.contains("agent SELL 0.1 ETH/USD proposed")
    });
    // The selection stays on what the trader was looking at; moving up to the proposal shows
    // its origin on the line that tells why.
    d.press("k");
    let screen = d.wait_screen("the proposal selected", |t| t.contains("why agent ·"));
    assert!(
        screen.lines().any(|l| l.contains("▶ SELL ETH/USD")),
        "{screen}"
    );
    // The trader disposes: `y` on the dashboard executes it.
    d.press("y");
    d.wait_screen("the agent's proposal executed", |t| {
        t.contains("Open positions (1)")
    });
    let id = log["log_id"].as_str().unwrap();
    let after = decisions_json(dir.path(), &[]);
    let stored = after.iter().find(|l| l["log_id"] == id).unwrap();
    assert_eq!(stored["status"], "executed");
    d.press("\u{3}");
    assert_eq!(d.wait_exit(), 0);
    assert_eq!(c.finish(), 0);
}

#[test]
fn an_agent_cannot_lift_a_fat_finger_limit() {
    let ml = ml_engine();
    let dir = setup(&ml, TWO);
    let (mut c, _) = McpClient::ready(dir.path());
    // 0.04 BTC at 45,000 with the stop 5,000 away risks 200: 2 % of the account, over 1.5 %.
    let why = c
        .call(
            "execute_trade",
            json!({"symbol": "BTC/USD", "side": "buy", "size": 0.04,
                   "take_profit": 55000.0, "stop_loss": 40000.0}),
        )
        .refused();
    assert!(
        why.contains("risk 200 = 2% of account 10000 is over max_risk_percent 1.5%"),
        "{why}"
    );
    // No flag to offer: an agent has none.
    assert!(!why.contains("--allow-risk"), "{why}");
    assert!(decisions_json(dir.path(), &["--pending"]).is_empty());
}

#[test]
fn an_agent_proposal_may_trail_and_a_bad_trail_is_a_tool_error() {
    let ml = ml_engine();
    let dir = setup(&ml, TWO);
    let (mut c, _) = McpClient::ready(dir.path());
    for (args, expect) in [
        (
            json!({"symbol": "BTC/USD", "side": "buy", "trail_percent": 60}),
            "trail_percent 60: must be at most 50 (percent of the price)",
        ),
        (
            json!({"symbol": "BTC/USD", "side": "buy", "trail_percent": 1, "trail_amount": 100}),
            "give trail_percent or trail_amount, not both",
        ),
        (
            json!({"symbol": "BTC/USD", "side": "buy", "trail_amount": 45000}),
            "trail_amount 45000: must be below the entry price 45000",
        ),
    ] {
        let e = c.call("execute_trade", args.clone()).refused();
        assert!(e.contains(expect), "{args}: {e:?} should say {expect:?}");
    }
    assert!(decisions_json(dir.path(), &["--pending"]).is_empty());
    let log = c
        .call(
            "execute_trade",
            json!({"symbol": "BTC/USD", "side": "buy", "trail_percent": 1.5}),
        )
        .ok();
    assert_eq!(log["decision"]["trail_percent"], 1.5);
    assert_eq!(c.finish(), 0);
    // Confirmed by the trader: the stop starts 1.5 % behind the 45,000 fill (44,325), tighter
    // than the signal's 44,100.
    let id = log["log_id"].as_str().unwrap();
    let (code, _, err) = run(dir.path(), &["confirm", id]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(dir.path(), &["positions", "--json"]);
    let p = &json_lines(&out)[0];
    assert_eq!(p["stop_loss"].as_f64(), Some(44_325.0));
    assert_eq!(p["trail_percent"].as_f64(), Some(1.5));
}

// ---------------------------------------------------------------- the published interface (#21)

/// Does `v` conform to `schema`? The part of JSON Schema the tools' schemas use: type (one
/// or a list), enum, required, properties, items, minimum, maximum. Returns what does not.
fn violations(schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    let type_ok = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("{at}: a type this check does not know: {other}"),
    };
    match &schema["type"] {
        Value::String(t) if !type_ok(t) => out.push(format!("{at}: {v} is not {t}")),
        Value::Array(ts) if !ts.iter().any(|t| type_ok(t.as_str().unwrap())) => {
            out.push(format!("{at}: {v} is none of {ts:?}"))
        }
        _ => {}
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(v)
    {
        out.push(format!("{at}: {v} is not one of {e:?}"));
    }
    if let (Some(min), Some(x)) = (schema["minimum"].as_f64(), v.as_f64())
        && x < min
    {
        out.push(format!("{at}: {x} < {min}"));
    }
    if let (Some(max), Some(x)) = (schema["maximum"].as_f64(), v.as_f64())
        && x > max
    {
        out.push(format!("{at}: {x} > {max}"));
    }
    if let Some(o) = v.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            if !o.contains_key(r.as_str().unwrap()) {
                out.push(format!("{at}: {r} is missing"));
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (k, s) in props {
                if let Some(x) = o.get(k) {
                    out.extend(violations(s, x, &format!("{at}.{k}")));
                }
            }
        }
    }
    if let (Some(items), Some(a)) = (schema.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            out.extend(violations(items, x, &format!("{at}[{i}]")));
        }
    }
    out
}

#[test]
fn every_tool_declares_an_output_schema_and_its_results_conform() {
    let ml = ml_engine();
    let dir = setup(&ml, TWO);
    let (mut c, _) = McpClient::ready(dir.path());
    let list = c.request("tools/list", json!({}));
    let tools = list["tools"].as_array().unwrap().clone();
    let output = |n: &str| tools.iter().find(|t| t["name"] == n).unwrap()["outputSchema"].clone();
    for t in &tools {
        let o = &t["outputSchema"];
        assert_eq!(o["type"], "object", "the spec wants an object schema: {t}");
        assert!(
            o["required"].as_array().is_some_and(|r| !r.is_empty()),
            "{t}"
        );
    }
    let calls: [(&str, Value); 8] = [
        ("get_amd_phase", json!({"symbol": "BTC/USD"})),
        ("get_ml_signal", json!({"symbol": "BTC/USD"})),
        ("auto_trade_decision", json!({"symbol": "BTC/USD"})),
        ("auto_trade_decision", json!({"symbol": "ETH/USD"})),
        ("list_pending", json!({})),
        ("get_status", json!({})),
        ("get_decisions", json!({"limit": 10})),
        ("get_decisions", json!({"executed_only": true})),
    ];
    for (tool, args) in calls {
        let result = c.call(tool, args.clone()).ok();
        let wrong = violations(&output(tool), &result, tool);
        assert!(wrong.is_empty(), "{tool} {args}: {wrong:?}\n{result}");
    }
    // A manual proposal, in a store with nothing pending on the symbol.
    let dir2 = setup(&ml, TWO);
    let (mut c2, _) = McpClient::ready(dir2.path());
    let trade = c2
        .call("execute_trade", json!({"symbol": "BTC/USD", "side": "buy"}))
        .ok();
    let wrong = violations(&output("execute_trade"), &trade, "execute_trade");
    assert!(wrong.is_empty(), "{wrong:?}\n{trade}");
    assert_eq!(c.finish(), 0);
    assert_eq!(c2.finish(), 0);
}

#[test]
fn optional_arguments_have_one_type_and_are_not_required() {
    let ml = ml_engine();
    let dir = setup(&ml, TWO);
    let (mut c, _) = McpClient::ready(dir.path());
    let list = c.request("tools/list", json!({}));
    for t in list["tools"].as_array().unwrap() {
        let schema = &t["inputSchema"];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().map(|x| x.as_str().unwrap()).collect())
            .unwrap_or_default();
        let none = serde_json::Map::new();
        for (name, p) in schema["properties"].as_object().unwrap_or(&none) {
            assert!(
                p["type"].is_string(),
                "{}.{name}: one type, not {}",
                t["name"],
                p["type"]
            );
            assert!(
                p.get("anyOf").is_none() && p.get("oneOf").is_none(),
                "{}.{name}: {p}",
                t["name"]
            );
            assert!(
                p.get("default").is_none_or(|d| !d.is_null()),
                "{}.{name}: a null default is not of its type: {p}",
                t["name"]
            );
            assert!(
                p.get("format").is_none(),
                "{}.{name}: no JSON Schema format: {p}",
                t["name"]
            );
            let optional = !required.contains(&name.as_str());
            let expected_optional = !matches!(name.as_str(), "symbol" | "side");
            assert_eq!(optional, expected_optional, "{}.{name}", t["name"]);
        }
    }
    let trade = &list["tools"].as_array().unwrap()[3]["inputSchema"]["properties"];
    for p in [
        "size",
        "take_profit",
        "stop_loss",
        "trail_percent",
        "trail_amount",
    ] {
        assert_eq!(trade[p]["type"], "number", "{p}");
    }
    let limit = &list["tools"].as_array().unwrap()[6]["inputSchema"]["properties"]["limit"];
    assert_eq!(limit["type"], "integer");
    // Left out, or null as some clients send for "not given": both mean not given.
    for args in [
        json!({"symbol": "BTC/USD", "side": "buy"}),
        json!({"symbol": "ETH/USD", "side": "buy", "size": null, "take_profit": null, "stop_loss": null}),
    ] {
        let log = c.call("execute_trade", args.clone()).ok();
        assert_eq!(log["status"], "pending", "{args}");
    }
    assert_eq!(c.finish(), 0);
}

#[test]
fn an_unknown_tool_is_the_json_rpc_error_invalid_params() {
    let ml = ml_engine();
    let dir = setup(&ml, TWO);
    let (mut c, _) = McpClient::ready(dir.path());
    let r = c.raw_request(
        "tools/call",
        json!({"name": "place_order", "arguments": {"symbol": "BTC/USD"}}),
    );
    assert!(r.get("result").is_none(), "not a tool result: {r}");
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let m = r["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("Unknown tool") && m.contains("place_order"),
        "{m}"
    );
    assert_eq!(r["error"]["data"]["tools"].as_array().unwrap().len(), 7);
    // Still serving.
    assert_eq!(c.call("get_status", json!({})).ok()["enabled"], true);
    assert_eq!(c.finish(), 0);
}

#[test]
fn arguments_that_name_a_key_twice_are_a_tool_error_naming_it() {
    let ml = ml_engine();
    let dir = setup(&ml, TWO);
    let (mut c, _) = McpClient::ready(dir.path());
    // Last-one-wins would propose 0.02: not what the agent can be said to have sent.
    let line = r#"{"jsonrpc":"2.0","id":900,"method":"tools/call","params":{"name":"execute_trade","arguments":{"symbol":"BTC/USD","side":"buy","size":0.01,"size":0.02}}}"#;
    let r = c.request_line(900, line);
    assert!(
        r.get("error").is_none(),
        "a tool error, not a protocol error: {r}"
    );
    let e = ToolResult::from(r["result"].clone()).refused();
    assert!(e.contains(r#"duplicate key "size""#), "{e}");
    assert!(e.contains("execute_trade"), "{e}");
    let nested = r#"{"jsonrpc":"2.0","id":901,"method":"tools/call","params":{"name":"get_ml_signal","arguments":{"symbol":"BTC/USD","symbol":"ETH/USD"}}}"#;
    let e = ToolResult::from(c.request_line(901, nested)["result"].clone()).refused();
    assert!(e.contains(r#"duplicate key "symbol""#), "{e}");
    assert!(
        decisions_json(dir.path(), &["--pending"]).is_empty(),
        "nothing was proposed"
    );
    // The same call said once is a proposal.
    let log = c
        .call(
            "execute_trade",
            json!({"symbol": "BTC/USD", "side": "buy", "size": 0.01}),
        )
        .ok();
    assert_eq!(log["status"], "pending");
    assert_eq!(c.finish(), 0);
}
