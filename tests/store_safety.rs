#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The store under damage, with the real binary: stamps ahead of the clock (a decision, a
//! price), a damaged or emptied store file refused with the last good backup named, the
//! rolling backups and a restore, and a store that cannot write (SQLITE_FULL) made loud.

mod support;
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::*;

const DAY_MS: i64 = 86_400_000;

fn db(dir: &Path) -> PathBuf {
    dir.join("data").join("autotrade.db")
}

/// Change the store as another program (or a wrong clock) would.
fn sql(dir: &Path, statements: &str) {
    let c = rusqlite::Connection::open(db(dir)).unwrap();
    c.execute_batch(statements).unwrap();
}

/// Everything the log files in the data dir hold.
fn log_text(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir.join("data")).unwrap().flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with(autotrade_tui::logging::LOG_PREFIX)
        {
            all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    all
}

fn find<'a>(logs: &'a [Value], log_id: &str) -> &'a Value {
    logs.iter()
        .find(|l| l["log_id"] == log_id)
        .unwrap_or_else(|| panic!("{log_id} not in {logs:?}"))
}

// ---------------------------------------------------------------- stamps ahead of the clock

#[test]
fn a_decision_stamped_a_day_ahead_is_refused_by_confirm_and_expired_by_the_next_cycle() {
    let (_ml, dir) = bullish_btc();
    let d = dir.path();
    let first = once_json(d);
    let id = first[0]["log_id"].as_str().unwrap().to_string();
    assert_eq!(first[0]["status"], "pending");
    // Made while the clock was a day ahead; the clock is right again.
    sql(
        d,
        &format!("UPDATE decisions SET created_at = created_at + {DAY_MS} WHERE log_id = '{id}'"),
    );
    let (code, _, err) = run(d, &["confirm", &id]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ahead of this clock"), "{err}");
    let logs = decisions_json(d, &[]);
    assert_eq!(find(&logs, &id)["status"], "expired");
    assert_eq!(find(&logs, &id)["executed"], false);

    // The loop's own expiry: the next cycle expires one stamped ahead before deciding again.
    let second = once_json(d);
    let id2 = second[0]["log_id"].as_str().unwrap().to_string();
    assert_eq!(second[0]["status"], "pending", "{second:?}");
    sql(
        d,
        &format!("UPDATE decisions SET created_at = created_at + {DAY_MS} WHERE log_id = '{id2}'"),
    );
    let third = once_json(d);
    let logs = decisions_json(d, &[]);
    let expired = find(&logs, &id2);
    assert_eq!(expired["status"], "expired", "{expired}");
    assert!(
        expired["status_reason"]
            .as_str()
            .unwrap()
            .contains("ahead of this clock"),
        "{expired}"
    );
    assert_eq!(
        third[0]["status"], "pending",
        "a fresh decision replaces it"
    );
    // Said in the log file and in the events.
    assert!(
        log_text(d).contains("ahead of this clock"),
        "{}",
        log_text(d)
    );
    let c = rusqlite::Connection::open(db(d)).unwrap();
    let warned: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM events WHERE level = 'warn' AND message LIKE '%ahead of this clock%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(warned >= 2, "{warned}");
}

#[test]
fn a_price_stamped_a_day_ahead_fills_nothing_and_the_decision_waits() {
    let (_ml, dir) = bullish_btc();
    let d = dir.path();
    let id = once_json(d)[0]["log_id"].as_str().unwrap().to_string();
    sql(d, &format!("UPDATE prices SET at = at + {DAY_MS}"));
    let (code, _, err) = run(d, &["confirm", &id]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("ahead of this clock") && err.contains("no fill on a stale price"),
        "{err}"
    );
    let logs = decisions_json(d, &[]);
    assert_eq!(find(&logs, &id)["status"], "pending");
    assert!(log_text(d).contains("ahead of this clock"));
    let (code, out, _) = run(d, &["positions", "--json"]);
    assert_eq!(code, 0);
    assert!(json_lines(&out).is_empty(), "{out}");
}

// ---------------------------------------------------------------- damaged and emptied stores

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir.join("data").join("backups"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    all.retain(|p| p.extension().is_some_and(|x| x == "db"));
    all.sort();
    all
}

/// Wait, at most `limit`, for `cond` (a bounded poll for a file another process writes).
fn within(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cond()
}

/// A store with some history (a pending decision, many events, so that it has many pages),
/// backed up by an engine's start, then stopped.
fn store_with_history() -> (MlServer, tempfile::TempDir, String) {
    let (ml, dir) = bullish_btc();
    let d = dir.path();
    let id = once_json(d)[0]["log_id"].as_str().unwrap().to_string();
    sql(
        d,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO events (user_id, at, level, message)
         SELECT 'default', 0, 'info', printf('history line %d %s', i, hex(randomblob(40))) FROM n;",
    );
    let before = backups(d).len();
    let mut run = support::engine::Engine::spawn(support::engine::command(d, &["run"], &[]));
    run.line_with("engine running");
    assert!(
        within(std::time::Duration::from_secs(20), || backups(d)
            .iter()
            .any(|p| p.to_string_lossy().contains("-start-"))),
        "no start backup; {} before: {}",
        before,
        run.stderr()
    );
    run.signal("TERM");
    assert!(
        run.exit_within(std::time::Duration::from_secs(20))
            .success()
    );
    (ml, dir, id)
}

/// Overwrite pages in the middle of the file with bytes no SQLite writes.
fn scribble(db: &Path) {
    let mut bytes = std::fs::read(db).unwrap();
    let page = 4096;
    assert!(
        bytes.len() > page * 20,
        "too small to damage: {}",
        bytes.len()
    );
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in &mut bytes[page * 4..page * 12] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(db, bytes).unwrap();
}

/// Every command, the dashboard among them, refuses the store and names `backup`.
fn every_command_refuses(d: &Path, why: &str, backup: &Path) {
    let untouched = std::fs::read(db(d)).unwrap();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["once"],
        &["decisions"],
        &["serve", "--listen", "127.0.0.1:0"],
        &["run"],
        &[],
    ] {
        let (code, out, err) = run(d, args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(
            err.contains(&backup.display().to_string()),
            "{args:?} names the last good backup: {err}"
        );
        assert!(err.contains("To restore it"), "{args:?}: {err}");
        assert!(!out.contains("listening on"), "{args:?} served: {out}");
    }
    assert!(
        std::fs::read(db(d)).unwrap() == untouched,
        "nothing was written into the refused store"
    );
}

#[test]
fn a_store_with_pages_overwritten_is_refused_by_every_command_and_a_backup_restores_it() {
    let (_ml, dir, id) = store_with_history();
    let d = dir.path();
    let _ = std::fs::remove_file(format!("{}-wal", db(d).display()));
    let _ = std::fs::remove_file(format!("{}-shm", db(d).display()));
    scribble(&db(d));
    let newest = backups(d)
        .into_iter()
        .rfind(|p| p.to_string_lossy().contains("-start-"))
        .unwrap();
    every_command_refuses(d, "is damaged", &newest);

    // Restore as the README says: move the damaged file aside, copy the backup in.
    std::fs::rename(db(d), d.join("damaged.db")).unwrap();
    std::fs::copy(&newest, db(d)).unwrap();
    let (code, out, err) = run(d, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out)[0]["pending"], 1, "{out}");
    let logs = decisions_json(d, &[]);
    assert_eq!(find(&logs, &id)["status"], "pending");
    let c = rusqlite::Connection::open(db(d)).unwrap();
    let history: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM events WHERE message LIKE 'history line %'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(history, 3000);
}

#[test]
fn an_emptied_store_is_refused_with_the_backup_named_and_a_new_data_dir_starts_fresh() {
    let (_ml, dir, _) = store_with_history();
    let d = dir.path();
    std::fs::File::create(db(d)).unwrap(); // truncated to 0 bytes
    let _ = std::fs::remove_file(format!("{}-wal", db(d).display()));
    let _ = std::fs::remove_file(format!("{}-shm", db(d).display()));
    let last = backups(d)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    every_command_refuses(d, "is empty (0 bytes)", &last);
    // Gone altogether while its backups are there: refused too.
    std::fs::remove_file(db(d)).unwrap();
    let (code, _, err) = run(d, &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is missing, though backups of it exist"),
        "{err}"
    );
    // A brand-new data dir starts a fresh store, and its first command backs it up.
    let fresh = tempfile::tempdir().unwrap();
    write_config(fresh.path(), None, "symbols = [\"BTC/USD\"]", "");
    let (code, out, err) = run(fresh.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out)[0]["pending"], 0);
    assert_eq!(backups(fresh.path()).len(), 1, "today's backup");
}

#[test]
fn a_file_that_is_not_our_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_config(d, None, "symbols = [\"BTC/USD\"]", "");
    std::fs::create_dir_all(d.join("data")).unwrap();
    sql(
        d,
        "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('mine');",
    );
    let (code, _, err) = run(d, &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("holds no autotrade-tui schema"), "{err}");
    assert!(err.contains("No backup was found"), "{err}");
    std::fs::write(
        db(d),
        b"not a database at all, just text, long enough to be read as a header",
    )
    .unwrap();
    let (code, _, err) = run(d, &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is damaged"), "{err}");
}

// ---------------------------------------------------------------- a store that cannot write

/// `GET path` on `base`: status and body.
fn get(base: &str, path: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {out:?}"));
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    assert!(
        within(std::time::Duration::from_secs(30), &mut cond),
        "{what}"
    );
}

/// A config on the simulated market (prices every second), checked every 3 s, with `hook`.
fn full_disk_setup(hook: &support::webhook::WebhookServer) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        None,
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 0.05",
        &format!("\n[notifications]\nwebhook_url = \"{}/hook\"\n", hook.url),
    );
    dir
}

#[test]
fn a_full_store_makes_serve_unhealthy_and_loud_and_its_recovery_is_announced() {
    let hook = support::webhook::WebhookServer::start();
    hook.always(200);
    let dir = full_disk_setup(&hook);
    let d = dir.path();
    let fault = d.join("fault");
    let env = [("AUTOTRADE_TEST_STORE_FULL", fault.to_str().unwrap())];
    let (mut srv, url) = support::engine::serve(d, &env);
    let (code, body) = get(&url, "/health");
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")), "{body}");
    assert_eq!(body["store"]["healthy"], true);

    // The disk fills: SQLite answers SQLITE_FULL to every write from now on.
    std::fs::write(&fault, b"").unwrap();
    wait_for("/health never turned unhealthy", || {
        get(&url, "/health").0 == 503
    });
    let (_, body) = get(&url, "/health");
    assert_eq!(body["status"], "unhealthy", "{body}");
    assert!(
        body["store"]["error"].as_str().unwrap().contains("full"),
        "{body}"
    );
    let (code, st) = get(&url, "/api/v1/auto-trade/status/default");
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["monitoring"], false, "{st}");
    assert_eq!(st["store"]["healthy"], false, "{st}");
    // The command line's status, beside it: unhealthy, exit 1, the reason shown.
    let out = support::engine::command(d, &["status"], &env)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("STORE FAILING") && text.contains("full"),
        "{text}"
    );
    // stderr and the webhook say so.
    wait_for("serve said nothing on stderr", || {
        srv.stderr().contains("STORE FAILING")
    });
    let alert = hook.wait_delivered("store_failing", std::time::Duration::from_secs(30), |v| {
        v["event"] == "store_failing"
    });
    assert!(alert.to_string().contains("full"), "{alert}");

    // Room again: healthy, announced on stderr, in an event row and to the webhook.
    std::fs::remove_file(&fault).unwrap();
    wait_for("/health never came back", || get(&url, "/health").0 == 200);
    wait_for("serve never said the store writes again", || {
        srv.stderr().contains("the store writes again")
    });
    hook.wait_delivered("store_recovered", std::time::Duration::from_secs(30), |v| {
        v["event"] == "store_recovered"
    });
    let (_, st) = get(&url, "/api/v1/auto-trade/status/default");
    assert_eq!(st["monitoring"], true, "{st}");
    let c = rusqlite::Connection::open(db(d)).unwrap();
    let back: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM events WHERE message LIKE 'Store writes work again%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(back >= 1);
    srv.signal("TERM");
    assert!(
        srv.exit_within(std::time::Duration::from_secs(20))
            .success()
    );
}

#[test]
fn run_on_a_full_store_says_so_on_stderr_and_when_it_writes_again() {
    let hook = support::webhook::WebhookServer::start();
    hook.always(200);
    let dir = full_disk_setup(&hook);
    let d = dir.path();
    // The store exists, then the disk is full before `run` starts.
    assert_eq!(run(d, &["status"]).0, 0);
    let fault = d.join("fault");
    std::fs::write(&fault, b"").unwrap();
    let env = [("AUTOTRADE_TEST_STORE_FULL", fault.to_str().unwrap())];
    let mut eng = support::engine::Engine::spawn(support::engine::command(d, &["run"], &env));
    eng.line_with("engine running");
    wait_for("run said nothing on stderr", || {
        eng.stderr().contains("error: STORE FAILING")
    });
    std::fs::remove_file(&fault).unwrap();
    wait_for("run never said the store writes again", || {
        eng.stderr().contains("the store writes again")
    });
    eng.signal("TERM");
    assert!(
        eng.exit_within(std::time::Duration::from_secs(20))
            .success()
    );
    assert!(log_text(d).contains("the store cannot write"));
}

#[test]
fn the_dashboard_shows_a_banner_and_rings_while_the_store_cannot_write() {
    use autotrade_tui::app::{Action, App, Settings};
    use autotrade_tui::store::health::{Failing, WriteHealth};
    let config = autotrade_tui::config::parse_str("", "test").unwrap();
    let now = 1_765_000_000_000;
    let mut app = App::new(Settings::from_config(&config, false), now);
    let healthy = support::fixtures::screen_text(&app, 80, 24);
    assert!(!healthy.contains("STORE FAILING"), "{healthy}");
    let failing = WriteHealth {
        failing: Some(Failing {
            since_ms: now - 5_000,
            message: "database or disk is full".into(),
            failures: 3,
        }),
        ..Default::default()
    };
    app.update(Action::StoreHealth(failing.clone()));
    for (w, h) in [(80, 24), (120, 40)] {
        let screen = support::fixtures::screen_text(&app, w, h);
        let header: Vec<&str> = screen.lines().take(2).collect();
        assert!(
            header[1].starts_with(" STORE FAILING ") && header[1].contains("cannot write"),
            "{w}x{h}:\n{screen}"
        );
        assert!(
            screen.contains("the store cannot write"),
            "the events pane: {screen}"
        );
    }
    let alerts = app.take_alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind.as_str(), "store_failing");
    assert!(alerts[0].kind.rings());
    // The same outage again rings no more; writes working again clear the banner.
    app.update(Action::StoreHealth(failing));
    assert!(app.take_alerts().is_empty());
    app.update(Action::StoreHealth(WriteHealth::default()));
    let screen = support::fixtures::screen_text(&app, 80, 24);
    assert!(!screen.contains("STORE FAILING"), "{screen}");
    assert!(screen.contains("the store writes again"), "{screen}");
}

#[test]
fn a_stop_crossed_while_the_store_is_full_is_announced_and_closed_when_it_writes_again() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 100.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_config(
        d,
        Some(&ml.url),
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 0.05",
        "",
    );
    let id = once_json(d)[0]["log_id"].as_str().unwrap().to_string();
    let (code, _, err) = run(d, &["confirm", &id]);
    assert_eq!(code, 0, "{err}");
    // The disk fills; then the market falls through the stop-loss (98).
    let fault = d.join("fault");
    std::fs::write(&fault, b"").unwrap();
    ml.set_symbol("BTC/USD", "neutral", 0.5, 97.0, "accumulation");
    let env = [("AUTOTRADE_TEST_STORE_FULL", fault.to_str().unwrap())];
    let mut eng = support::engine::Engine::spawn(support::engine::command(d, &["run"], &env));
    eng.line_with("engine running");
    wait_for("the crossed stop was not announced", || {
        eng.stderr().contains("crossed its stop-loss at 97.00")
    });
    let open = || {
        let (code, out, err) = run(d, &["positions", "--json"]);
        assert_eq!(code, 0, "{err}");
        json_lines(&out).len()
    };
    assert_eq!(open(), 1, "nothing could be stored yet");
    // Room again: the first write closes it at the price that crossed the stop.
    std::fs::remove_file(&fault).unwrap();
    wait_for("the held close never happened", || open() == 0);
    let c = rusqlite::Connection::open(db(d)).unwrap();
    let (price, reason): (f64, String) = c
        .query_row(
            "SELECT exit_price, close_reason FROM positions WHERE status = 'closed'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((price, reason.as_str()), (97.0, "stop_loss"));
    wait_for("run never said the store writes again", || {
        eng.stderr().contains("the store writes again")
    });
    eng.signal("TERM");
    assert!(
        eng.exit_within(std::time::Duration::from_secs(20))
            .success()
    );
}
