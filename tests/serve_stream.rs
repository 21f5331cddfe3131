#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap: a failure is the report.
//! The engine without a terminal, as real processes over real HTTP on 127.0.0.1: `run` (the
//! service manager's engine) decides, holds the data dir against a second engine, outlives its
//! stdin and stops on SIGTERM and SIGHUP; `serve`'s `GET /health` needs no token while the API
//! does; its event stream delivers what the command line stores beside it, and a client that
//! reconnects with `Last-Event-ID` gets exactly what it missed.

mod support;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use support::engine::{Engine, SseClient, command, serve};
use support::*;
use tempfile::TempDir;

const API: &str = "/api/v1/auto-trade";
const TOKEN: &str = "a-long-random-test-token-0123456789";

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

/// Poll `f` every 50 ms until it gives Some, for at most `limit`.
fn until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn decisions(dir: &Path) -> Vec<Value> {
    decisions_json(dir, &["--limit", "1000"])
}

fn log_file(dir: &Path) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir(dir.join("data")).unwrap() {
        let e = e.unwrap();
        if e.file_name()
            .to_string_lossy()
            .starts_with("autotrade-tui.log")
        {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap());
        }
    }
    text
}

#[test]
fn run_decides_holds_the_data_dir_and_stops_on_sigterm() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 100.0, "accumulation");
    let dir = setup(
        &ml,
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60\npending_expiry_minutes = 30",
    );
    let mut run = Engine::spawn(command(dir.path(), &["run"], &[]));
    let line = run.line_with("engine running for user default");
    assert!(
        line.contains(&format!("(pid {})", run.pid())),
        "the start line names the pid: {line}"
    );
    // Its first cycle asks the ML engine and stores the BUY it decides, pending.
    let log = until("run's first decision", Duration::from_secs(20), || {
        decisions(dir.path())
            .into_iter()
            .find(|l| l["decision"]["symbol"] == "BTC/USD")
    });
    assert_eq!(log["decision"]["action"], "BUY");
    assert_eq!(log["status"], "pending");
    assert!(ml.hits(&signal_path("BTC/USD")) >= 1);

    // One engine per data dir: a second `run` and a `serve` are refused, naming the holder.
    let pid = format!("pid {}", run.pid());
    for args in [vec!["run"], vec!["serve", "--listen", "127.0.0.1:0"]] {
        let out = command(dir.path(), &args, &[]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(&pid), "{args:?} names the engine's pid: {err}");
    }
    // The command line works beside it.
    let (code, _, err) = run_cli(dir.path(), &["status"]);
    assert_eq!(code, 0, "{err}");

    let asked = Instant::now();
    run.signal("TERM");
    let status = run.exit_within(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", run.stderr());
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "stopped in {:?}",
        asked.elapsed()
    );
    assert_eq!(run.stderr(), "", "run writes nothing to the terminal");
    let log = log_file(dir.path());
    assert!(log.contains("run: SIGTERM, stopping"), "{log}");
    // The lock went with it: the data dir takes an engine again.
    let (mut again, _) = serve(dir.path(), &[]);
    again.signal("TERM");
    assert_eq!(again.exit_within(Duration::from_secs(10)).code(), Some(0));
}

fn run_cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    support::run(dir, args)
}

#[test]
fn run_outlives_its_stdin_and_stops_on_sighup() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "neutral", 0.5, 100.0, "accumulation");
    // A cycle every 0.6 s: each stores a HOLD.
    let dir = setup(
        &ml,
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 0.01\npending_expiry_minutes = 30",
    );
    let mut run = Engine::spawn(command(dir.path(), &["run"], &[]));
    run.line_with("engine running for user default");
    let first = until("a first cycle", Duration::from_secs(20), || {
        let n = decisions(dir.path()).len();
        (n >= 1).then_some(n)
    });
    // The terminal goes away: stdin closes. The engine has no use for it and keeps deciding.
    drop(run.child.stdin.take());
    until(
        "more cycles after stdin closed",
        Duration::from_secs(20),
        || (decisions(dir.path()).len() >= first + 2).then_some(()),
    );
    assert!(run.child.try_wait().unwrap().is_none(), "still running");
    run.signal("HUP");
    let status = run.exit_within(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", run.stderr());
    assert!(log_file(dir.path()).contains("run: SIGHUP, stopping"));
}

fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new().get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    })
}

#[test]
fn health_needs_no_token_and_the_event_stream_does() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "neutral", 0.5, 100.0, "accumulation");
    let dir = setup(&ml, "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60");
    let (mut server, base) = serve(dir.path(), &[("AUTOTRADE_API_TOKEN", TOKEN)]);

    let (status, body) = get(&format!("{base}/health"), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["users"], 1);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let (status, body) = get(&format!("{base}{API}/status/default"), None);
    assert_eq!(status, 401, "{body}");

    let events = format!("{base}{API}/events/default");
    let wrong = SseClient::connect(&events, &[("Authorization", "Bearer not-the-token")])
        .err()
        .expect("a wrong token is refused");
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body["detail"], "wrong bearer token");
    assert!(!wrong.body.to_string().contains(TOKEN));
    let none = SseClient::connect(&events, &[]).err().expect("no token");
    assert_eq!(none.status, 401);
    assert!(
        none.body["detail"].as_str().unwrap().contains("Bearer"),
        "{:?}",
        none.body
    );
    let auth = format!("Bearer {TOKEN}");
    let unknown = SseClient::connect(
        &format!("{base}{API}/events/nobody"),
        &[("Authorization", &auth)],
    )
    .err()
    .expect("an unknown user is refused");
    assert_eq!(unknown.status, 404);
    let bad = SseClient::connect(
        &events,
        &[("Authorization", &auth), ("Last-Event-ID", "yesterday")],
    )
    .err()
    .expect("an id that is not the stream's is refused");
    assert_eq!(bad.status, 400);
    assert!(
        bad.body["detail"]
            .as_str()
            .unwrap()
            .contains("Last-Event-ID"),
        "{:?}",
        bad.body
    );
    let ok = SseClient::connect(&events, &[("Authorization", &auth)]).expect("the right token");
    let ready = ok.next();
    assert_eq!(ready.event, "ready");
    assert_eq!(ready.json()["user_id"], "default");

    // Stopping ends open streams: the server does not wait on them.
    let asked = Instant::now();
    server.signal("TERM");
    assert_eq!(
        server.exit_within(Duration::from_secs(8)).code(),
        Some(0),
        "{}",
        server.stderr()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
}

/// The next event named `name`, skipping others, within 20 s.
fn next_named(client: &SseClient, name: &str, got: &mut Vec<support::engine::Sse>) -> Value {
    loop {
        let ev = client.next();
        got.push(ev.clone());
        if ev.event == name {
            return ev.json();
        }
    }
}

#[test]
fn the_stream_delivers_what_the_command_line_stores_and_resumes_without_gaps() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "neutral", 0.5, 100.0, "accumulation");
    ml.set_symbol("ETH/USD", "neutral", 0.5, 50.0, "accumulation");
    // One cycle at start (two HOLDs), then none for an hour: the command line does the rest.
    let dir = setup(
        &ml,
        "symbols = [\"BTC/USD\", \"ETH/USD\"]\ncheck_interval_minutes = 60\npending_expiry_minutes = 30",
    );
    let (_server, base) = serve(dir.path(), &[]);
    until("the first cycle", Duration::from_secs(20), || {
        (decisions(dir.path()).len() >= 2).then_some(())
    });
    let events = format!("{base}{API}/events/default");
    let client = SseClient::connect(&events, &[]).unwrap();
    let ready = client.next();
    assert_eq!(ready.event, "ready");
    assert_eq!(ready.json()["resumed"], false);

    // A trade from the command line (another process) reaches the stream within a second.
    let (code, out, err) = run_cli(dir.path(), &["trade", "BTC/USD", "buy", "--json"]);
    assert_eq!(code, 0, "{err}");
    let stored_by = Instant::now();
    let traded = json_lines(&out).remove(0);
    let log_id = traded["log_id"].as_str().unwrap().to_string();
    let mut got = Vec::new();
    let first = client
        .next_within(Duration::from_secs(1))
        .expect("the trade within a second");
    assert!(stored_by.elapsed() <= Duration::from_secs(1));
    got.push(first.clone());
    assert_eq!(first.event, "decision", "{first:?}");
    // The same JSON as `decisions --json`.
    let listed = decisions(dir.path())
        .into_iter()
        .find(|l| l["log_id"] == log_id.as_str())
        .unwrap();
    assert_eq!(first.json(), listed);
    assert_eq!(first.json()["status"], "pending");
    let proposed = next_named(&client, "event", &mut got);
    assert!(
        proposed["message"].as_str().unwrap().contains(&log_id),
        "{proposed}"
    );
    // The batch's last message carries the id to resume from.
    let resume_from = got.last().unwrap().id.clone().expect("an id");

    // A cancel from the command line: the decision again, cancelled, and its event row.
    let (code, _, err) = run_cli(dir.path(), &["cancel", &log_id]);
    assert_eq!(code, 0, "{err}");
    let mut missed = Vec::new();
    let changed = next_named(&client, "decision", &mut missed);
    assert_eq!(changed["log_id"], log_id.as_str());
    assert_eq!(changed["status"], "cancelled");
    let cancelled = next_named(&client, "event", &mut missed);
    assert!(
        cancelled["message"]
            .as_str()
            .unwrap()
            .starts_with("cancelled BUY BTC/USD"),
        "{cancelled}"
    );

    // An execution on the paper ledger: the decision executed, the opening fill, the event.
    let (code, out, err) = run_cli(dir.path(), &["trade", "ETH/USD", "buy", "--yes", "--json"]);
    assert_eq!(code, 0, "{err}");
    let executed_id = json_lines(&out)[0]["log_id"].as_str().unwrap().to_string();
    let fill = next_named(&client, "fill", &mut missed);
    assert_eq!(fill["kind"], "open");
    assert_eq!(fill["log_id"], executed_id.as_str());
    assert_eq!(fill["symbol"], "ETH/USD");
    assert_eq!(fill["position"]["symbol"], "ETH/USD");
    assert_eq!(fill["position"]["status"], "open");
    loop {
        let ev = client.next();
        missed.push(ev.clone());
        if ev.id.is_some()
            && missed
                .iter()
                .any(|e| e.event == "decision" && e.json()["status"] == "executed")
        {
            break;
        }
    }
    let latest = missed.last().unwrap().id.clone().unwrap();

    // A client that lost the connection after the trade resumes with Last-Event-ID: it gets
    // exactly what came after, in the same order, with the same JSON.
    let resumed = SseClient::connect(&events, &[("Last-Event-ID", &resume_from)]).unwrap();
    let hello = resumed.next();
    assert_eq!(hello.event, "ready");
    assert_eq!(hello.json()["resumed"], true);
    assert_eq!(hello.id.as_deref(), Some(resume_from.as_str()));
    // A decision that changed more than once meanwhile (ETH: pending, then executed) comes
    // once, as it stands: the stream missed, less any superseded state.
    let names_and_data = |v: &[support::engine::Sse]| -> Vec<(String, Value)> {
        v.iter().map(|e| (e.event.clone(), e.json())).collect()
    };
    let mut expected = names_and_data(&missed);
    let superseded: Vec<usize> = (0..expected.len())
        .filter(|&i| {
            expected[i].0 == "decision"
                && expected[i + 1..]
                    .iter()
                    .any(|(n, v)| n == "decision" && v["log_id"] == expected[i].1["log_id"])
        })
        .collect();
    // (The live stream saw it pending only if a look fell between the trade's two commits.)
    assert!(
        superseded.len() <= 1,
        "ETH's pending state only: {expected:?}"
    );
    for i in superseded.into_iter().rev() {
        assert_eq!(expected[i].1["log_id"], executed_id.as_str());
        assert_eq!(expected[i].1["status"], "pending");
        expected.remove(i);
    }
    let mut again = Vec::new();
    while again.len() < expected.len() {
        again.push(resumed.next());
    }
    assert_eq!(names_and_data(&again), expected);
    assert_eq!(again.last().unwrap().id.as_deref(), Some(latest.as_str()));

    // Resuming from the newest id gives nothing old: the next thing is the next change.
    let current = SseClient::connect(&events, &[("Last-Event-ID", &latest)]).unwrap();
    assert_eq!(current.next().event, "ready");
    let (code, _, err) = run_cli(dir.path(), &["disable"]);
    assert_eq!(code, 0, "{err}");
    let next = current.next();
    assert_eq!(next.event, "event", "{next:?}");
    assert_eq!(next.json()["message"], "auto-trading disabled");
    // And both earlier clients see it too.
    for c in [&client, &resumed] {
        let ev = c.next();
        assert_eq!(ev.json()["message"], "auto-trading disabled", "{ev:?}");
    }
}
