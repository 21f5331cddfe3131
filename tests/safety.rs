#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Nothing lost, nothing doubled, nothing live by accident: crash safety with `kill -9`,
//! outages of the ML engine, staleness, and the live-trading guard.

mod support;
use autotrade_tui::config;
use autotrade_tui::engine::{Engine, EngineEvent, Health};
use autotrade_tui::store::{Status, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

fn symbols(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("S{i}/USD")).collect()
}

/// Wait for `cond` up to `deadline`, checking every few milliseconds.
fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

#[test]
fn kill_dash_9_mid_cycle_loses_nothing_and_leaves_nothing_half_executed() {
    let ml = MlServer::start();
    let syms = symbols(20);
    for (i, s) in syms.iter().enumerate() {
        let entry = 100.0 + i as f64;
        ml.set(
            &signal_path(s),
            Reply::Json(signal("bullish", 0.9, entry)).delayed(Duration::from_millis(150)),
        );
        ml.set(
            &phase_path(s),
            Reply::Json(phase("accumulation", 0.8)).delayed(Duration::from_millis(150)),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        &format!("symbols = {syms:?}\nrequire_confirmation = false\nmax_open_positions = 5"),
        "",
    );
    let data = dir.path().join("data");
    // Kill the process at different moments: while requests are in flight, as answers
    // arrive, and while the cycle is being stored.
    for (round, after_ms) in [0u64, 120, 150, 160, 170, 185, 200, 260]
        .into_iter()
        .enumerate()
    {
        let before = ml.hits(&signal_path(&syms[0]));
        let mut child = std::process::Command::new(bin())
            .args(["once", "--json", "--config"])
            .arg(dir.path().join("config.toml"))
            .arg("--data-dir")
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The cycle has started once the engine has been asked about the first symbol.
        assert!(
            wait_until(Duration::from_secs(20), || ml.hits(&signal_path(&syms[0]))
                > before),
            "round {round}: the cycle never reached the ML engine"
        );
        std::thread::sleep(Duration::from_millis(after_ms));
        let _ = child.kill();
        let _ = child.wait();

        let store = Store::open(&data, "default", true).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok", "round {round}");
        let all = store.decisions(10_000, None).unwrap();
        assert_eq!(
            all.len() % syms.len(),
            0,
            "round {round}: a cycle was half stored: {} decisions",
            all.len()
        );
        // Every executed decision has exactly its position; no position without its decision.
        let executed = store.decisions(10_000, Some(Status::Executed)).unwrap();
        let open = store.open_positions().unwrap();
        assert_eq!(executed.len(), open.len(), "round {round}");
        for p in &open {
            assert!(
                executed.iter().any(|d| d.log_id == p.decision_id),
                "round {round}: orphan position {p:?}"
            );
        }
        assert!(open.len() <= 5, "max_open_positions held across crashes");
        let desk = autotrade_tui::desk::Desk::new(
            Arc::new(config::parse_str("", "test").unwrap()),
            data.clone(),
            Arc::new(store),
        );
        assert!(desk.recover_executed().unwrap().is_empty());
    }
    // A normal run afterwards completes and stores a whole cycle.
    let (code, out, err) = run(dir.path(), &["once", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out).len(), syms.len());
}

/// A loop over BTC/USD against an ML engine that answers 503 with this `Retry-After`;
/// `auto_trade` adds lines to the `[auto_trade]` table.
fn engine_against_a_503(
    retry_after: &str,
    auto_trade: &str,
) -> (
    MlServer,
    tempfile::TempDir,
    Arc<Store>,
    tokio::sync::mpsc::Sender<autotrade_tui::engine::EngineCommand>,
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::Receiver<EngineEvent>,
) {
    let ml = MlServer::start();
    let down = Reply::Raw {
        status: 503,
        body: "{\"detail\":\"maintenance\"}".into(),
        headers: vec![("Retry-After".into(), retry_after.into())],
    };
    ml.set(&signal_path("BTC/USD"), down.clone());
    ml.set(&phase_path("BTC/USD"), down);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config::parse_str(
        &format!(
            "[auto_trade]\nsymbols = [\"BTC/USD\"]\n{auto_trade}\n[ml_engine]\nurl = \"{}\"\ntimeout_seconds = 2\n",
            ml.url
        ),
        "test",
    )
    .unwrap();
    let store = Arc::new(Store::open(dir.path(), "default", true).unwrap());
    let cfg = Arc::new(cfg);
    let desk = autotrade_tui::desk::Desk::new(cfg, dir.path().into(), store.clone());
    let source = desk.source().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let (cmd, handle) = Engine::new(desk, source).spawn(tx);
    (ml, dir, store, cmd, handle, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_engine_503_backs_off_trades_nothing_and_recovers() {
    let (ml, _dir, store, cmd, handle, mut rx) =
        engine_against_a_503("1", "check_interval_minutes = 0.01");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut saw_unreachable = false;
    let mut recovered = false;
    while tokio::time::Instant::now() < deadline && !recovered {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .ok()
            .flatten();
        match ev {
            Some(EngineEvent::Health(Health::Unreachable { message, .. })) => {
                assert!(message.contains("503"), "{message}");
                if !saw_unreachable {
                    saw_unreachable = true;
                    // The engine comes back.
                    ml.set_symbol("BTC/USD", "bullish", 0.9, 100.0, "accumulation");
                }
            }
            Some(EngineEvent::Health(Health::Ok)) if saw_unreachable => recovered = true,
            Some(_) => {}
            None => break,
        }
    }
    let _ = cmd.send(autotrade_tui::engine::EngineCommand::Stop).await;
    let _ = handle.await;
    assert!(saw_unreachable, "the outage was never reported");
    assert!(recovered, "the loop did not recover by itself");
    let logs = store.decisions(100, None).unwrap();
    let during: Vec<_> = logs
        .iter()
        .filter(|l| l.decision.reasoning.contains("503"))
        .collect();
    assert!(!during.is_empty());
    for l in &during {
        assert_eq!(l.status, Status::Hold, "nothing is traded on an outage");
        assert_eq!(l.decision.confidence, 0.0);
    }
    assert!(
        logs.iter().any(|l| l.status == Status::Pending),
        "a real decision after recovery"
    );
    let events = store.recent_events(50).unwrap();
    assert!(
        events.iter().any(|e| e.message.contains("unreachable")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.message.contains("reachable again")),
        "{events:?}"
    );
}

#[test]
fn a_stale_pending_decision_expires_and_confirm_is_refused() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 100.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    // 0.002 min = 120 ms.
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\"]\npending_expiry_minutes = 0.002",
        "",
    );
    let logs = json_lines(&run(dir.path(), &["once", "--json"]).1);
    let id = logs[0]["log_id"].as_str().unwrap().to_string();
    assert_eq!(logs[0]["status"], "pending");
    let made = Instant::now();
    // Let the expiry time pass (the point of the test, not a race).
    while made.elapsed() < Duration::from_millis(250) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, _out, err) = run(dir.path(), &["confirm", &id]);
    assert_eq!(code, 1);
    assert!(
        err.contains("expired") || err.contains("not pending"),
        "{err}"
    );
    let after = decisions_json(dir.path(), &[]);
    assert_eq!(after[0]["status"], "expired");
    assert_eq!(after[0]["executed"], false);
    let (_, out, _) = run(dir.path(), &["positions", "--json"]);
    assert!(out.trim().is_empty(), "nothing executed: {out}");
}

#[test]
fn paper_trading_false_never_trades_live_by_accident() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), None, "paper_trading = false", "");
    let (code, _, err) = run(dir.path(), &["once"]);
    assert_eq!(code, 2);
    assert!(err.contains("live trading refused"), "{err}");
    assert!(err.contains("--live"), "{err}");
    // With --live it is still refused: the paper ledger never trades live.
    let (code, _, err) = run(dir.path(), &["once", "--live"]);
    assert_eq!(code, 2);
    assert!(err.contains("a broker that trades live"), "{err}");
    assert!(!err.contains("--live flag"), "the flag was given: {err}");
    // Nothing was stored.
    assert!(!dir.path().join("data").join("autotrade.db").exists());
}

#[test]
fn kill_switch_persists_until_enable() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 100.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), Some(&ml.url), "symbols = [\"BTC/USD\"]", "");
    assert_eq!(run(dir.path(), &["kill"]).0, 0);
    // A new process, as after a restart: still killed.
    let logs = json_lines(&run(dir.path(), &["once", "--json"]).1);
    assert_eq!(logs[0]["status"], "hold");
    assert!(
        logs[0]["decision"]["reasoning"]
            .as_str()
            .unwrap()
            .contains("kill switch")
    );
    let (_, out, _) = run(dir.path(), &["status", "--json"]);
    assert_eq!(json_lines(&out)[0]["kill_switch"], true);
    assert_eq!(run(dir.path(), &["enable"]).0, 0);
    let logs = json_lines(&run(dir.path(), &["once", "--json"]).1);
    assert_eq!(logs[0]["status"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_neither_crashes_nor_parks_the_loop() {
    let (_ml, _dir, _store, cmd, handle, mut rx) = engine_against_a_503(&u64::MAX.to_string(), "");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut next_at = None;
    while next_at.is_none() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(EngineEvent::NextCheck { at_ms })) => next_at = Some(at_ms),
            Ok(Some(_)) => {}
            _ => panic!("no NextCheck from the loop"),
        }
    }
    let wait_ms = next_at.unwrap() - autotrade_tui::store::now_ms();
    // Capped at the 600 s most honoured (plus jitter), not 584 billion years.
    assert!(wait_ms <= 720_000, "the loop parks for {wait_ms} ms");
    // The loop is alive: a check on demand runs another cycle.
    cmd.send(autotrade_tui::engine::EngineCommand::CheckNow)
        .await
        .unwrap();
    let mut again = false;
    while !again {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(EngineEvent::CycleStarted)) => again = true,
            Ok(Some(_)) => {}
            _ => panic!("the loop died"),
        }
    }
    let _ = cmd.send(autotrade_tui::engine::EngineCommand::Stop).await;
    let _ = handle.await;
}

#[test]
fn kill_flatten_closes_every_paper_position_at_its_latest_price() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 100.0, "accumulation");
    ml.set_symbol("ETH/USD", "bearish", 0.9, 50.0, "distribution");
    ml.set_symbol("SOL/USD", "bullish", 0.9, 20.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\", \"SOL/USD\"]",
        "",
    );
    let trade = |args: &[&str]| {
        let (code, _, err) = run(dir.path(), args);
        assert_eq!(code, 0, "{err}");
    };
    trade(&["trade", "BTC/USD", "buy", "--size", "1", "--yes"]);
    trade(&["trade", "ETH/USD", "sell", "--size", "2", "--yes"]);
    trade(&["trade", "SOL/USD", "buy", "--size", "1"]);
    // Prices move; flatten closes both at them and cancels what is pending.
    ml.set_symbol("BTC/USD", "neutral", 0.5, 101.0, "accumulation");
    ml.set_symbol("ETH/USD", "neutral", 0.5, 49.5, "accumulation");
    let (code, out, err) = run(dir.path(), &["kill", "--flatten"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 pending decision(s) cancelled"), "{out}");
    assert!(
        out.contains("closed BUY 1 BTC/USD @ 101.000, realized P&L +1.00"),
        "{out}"
    );
    assert!(
        out.contains("closed SELL 2 ETH/USD @ 49.500, realized P&L +1.00"),
        "{out}"
    );
    let (_, out, _) = run(dir.path(), &["positions", "--json"]);
    assert!(out.trim().is_empty(), "{out}");
    // Flatten with nothing open says so, and the switch stays on.
    let (code, out, _) = run(dir.path(), &["kill", "--flatten"]);
    assert_eq!(code, 0);
    assert!(out.contains("flatten: no open positions"), "{out}");
    let st = json_lines(&run(dir.path(), &["status", "--json"]).1).remove(0);
    assert_eq!(st["kill_switch"], true);
}
