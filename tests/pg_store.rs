#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The store on PostgreSQL (`[store] url`): the same commands as on SQLite, the rows in the
//! database and none in the data dir, and a database of an older schema upgraded in place.
//! Each test starts from a database of its own on the tests' own server (tests/support/pg.rs).

mod support;

use serde_json::Value;

fn config(dir: &std::path::Path, url: &str) {
    support::write_config(
        dir,
        None,
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 1\npending_expiry_minutes = 10",
        &format!("\n[store]\nurl = \"{url}\"\n"),
    );
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn count(url: &str, sql: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn commands_keep_their_rows_in_postgresql_and_a_confirm_executes_once() {
    let Some(pg) = support::pg::shared() else {
        return support::pg::skip_note();
    };
    let url = pg.new_database();
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &url);

    let (code, out, err) = support::run(dir.path(), &["once", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    // The cycle's decision on the simulated market is pending (require_confirmation).
    let (code, out, err) = support::run(dir.path(), &["decisions", "--pending", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let first = json(
        out.lines()
            .next()
            .unwrap_or_else(|| panic!("nothing pending: {err}")),
    );
    let log_id = first["log_id"].as_str().unwrap().to_string();
    assert!(log_id.starts_with("decision_"), "{out}");
    assert_eq!(first["status"], "pending", "{out}");

    let (code, out, err) = support::run(dir.path(), &["confirm", &log_id]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = support::run(dir.path(), &["confirm", &log_id]);
    assert_eq!(code, 1, "a second confirm is refused: {out}{err}");

    let (code, out, err) = support::run(dir.path(), &["positions", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let positions: Vec<Value> = out.lines().map(json).collect();
    assert_eq!(positions.len(), 1, "{out}");
    assert_eq!(positions[0]["log_id"], log_id.as_str(), "{out}");

    let (code, out, err) = support::run(dir.path(), &["kill"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = support::run(dir.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["enabled"], false, "{out}");
    // The URL as shown: who connects is left out, as anything before the host is.
    let shown = autotrade_tui::net::redact_url(&url);
    assert!(shown.ends_with(url.rsplit('@').next().unwrap()), "{shown}");
    assert_eq!(json(&out)["database"], shown.as_str(), "{out}");
    let (_, text, _) = support::run(dir.path(), &["status"]);
    assert!(
        text.contains(&format!("store       PostgreSQL {shown}")),
        "{text}"
    );
    let (code, out, err) = support::run(dir.path(), &["enable"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = support::run(dir.path(), &["report", "--json"]);
    assert_eq!(code, 0, "{out}{err}");

    // The rows are the database's: one executed decision, its order-less paper fill, one
    // position; nothing in the data dir's SQLite file.
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM decisions WHERE status = 'executed'"
        ),
        1
    );
    assert_eq!(count(&url, "SELECT COUNT(*) FROM positions"), 1);
    assert_eq!(count(&url, "SELECT COUNT(*) FROM fills"), 1);
    assert!(count(&url, "SELECT COUNT(*) FROM events") >= 2);
    assert!(
        !dir.path().join("data").join("autotrade.db").exists(),
        "no SQLite store is made beside a PostgreSQL one"
    );
}

#[test]
fn the_dashboard_refuses_a_postgresql_store_and_says_how_to_watch_it() {
    let dir = tempfile::tempdir().unwrap();
    // Never reached: the refusal comes before any connection.
    config(dir.path(), "postgres://nobody@127.0.0.1:1/none");
    let (code, out, err) = support::run(dir.path(), &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("attach URL"), "{err}");
}

#[test]
fn a_password_in_the_config_file_is_refused_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "postgres://trader:hunter2@127.0.0.1:1/none");
    let (code, out, err) = support::run(dir.path(), &["status"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("store.url") && err.contains("PGPASSWORD"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2") && !out.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn a_database_of_schema_7_is_upgraded_in_place_and_keeps_its_rows() {
    let Some(pg) = support::pg::shared() else {
        return support::pg::skip_note();
    };
    let url = pg.new_database();
    autotrade_tui::store::pg::migrate_to_for_tests(&url, 7).unwrap();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(
        "INSERT INTO state (user_id, enabled, kill_switch, updated_at) VALUES ('u', 1, 0, 1);
         INSERT INTO events (user_id, at, level, message) VALUES ('u', 1, 'info', 'before the upgrade');",
    )
    .unwrap();
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'loop_leases'"
        ),
        0
    );

    let store = autotrade_tui::store::Store::open_url(&url, "u", true).unwrap();
    assert_eq!(store.schema_version().unwrap().as_deref(), Some("8"));
    let events = store.recent_events(10).unwrap();
    assert!(
        events.iter().any(|e| e.message == "before the upgrade"),
        "{events:?}"
    );
    assert_eq!(count(&url, "SELECT COUNT(*) FROM loop_leases"), 0);
    // A second open (another instance) finds it current and changes nothing.
    let again = autotrade_tui::store::Store::open_url(&url, "u", true).unwrap();
    assert_eq!(again.schema_version().unwrap().as_deref(), Some("8"));
}

#[test]
fn a_loop_that_lost_its_lease_writes_nothing_more() {
    use autotrade_tui::store::{Store, pg};
    use std::sync::Arc;
    let Some(server) = support::pg::shared() else {
        return support::pg::skip_note();
    };
    let url = server.new_database();
    let store = Arc::new(Store::open_url(&url, "u", true).unwrap());
    let shared = store.pg().unwrap().clone();
    // Two instances; the first takes the loop with a lease that lives 300 ms.
    let first = pg::Leases::new(shared.clone(), std::time::Duration::from_millis(300));
    let second = pg::Leases::new(shared.clone(), std::time::Duration::from_secs(10));
    assert!(first.try_take("u").unwrap());
    assert!(!second.try_take("u").unwrap(), "held: not taken");
    let fenced = store.fenced(first.lease("u"));
    fenced
        .add_event("info", "written while the lease holds")
        .unwrap();

    // The first instance stalls past its lease; the second takes the loop over.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !second.try_take("u").unwrap() {
        assert!(std::time::Instant::now() < deadline, "never taken over");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        first.renew().unwrap().is_empty(),
        "the first holds nothing now"
    );
    let refused = fenced
        .add_event("info", "written after the takeover")
        .unwrap_err()
        .to_string();
    assert!(refused.contains("no longer holds the loop"), "{refused}");
    let messages: Vec<String> = store
        .recent_events(10)
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert!(messages.contains(&"written while the lease holds".to_string()));
    assert!(!messages.contains(&"written after the takeover".to_string()));
}

#[test]
fn a_cancel_a_manual_trade_and_a_close_on_postgresql() {
    let Some(pg) = support::pg::shared() else {
        return support::pg::skip_note();
    };
    let url = pg.new_database();
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &url);
    let (code, out, err) = support::run(dir.path(), &["once", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = support::run(dir.path(), &["decisions", "--pending", "--json"]);
    let pending = json(out.lines().next().expect("a pending decision"));
    let price = pending["decision"]["entry_price"].as_f64().unwrap();
    let (code, out, err) =
        support::run(dir.path(), &["cancel", pending["log_id"].as_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");

    let (tp, sl) = (
        format!("{:.2}", price * 1.02),
        format!("{:.2}", price * 0.99),
    );
    let (code, out, err) = support::run(
        dir.path(),
        &[
            "trade", "BTC/USD", "buy", "--tp", &tp, "--sl", &sl, "--yes", "--json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["status"], "executed", "{out}");
    let (code, out, err) = support::run(dir.path(), &["close", "BTC/USD"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = support::run(dir.path(), &["positions", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.trim().is_empty(), "closed: {out}");
    let (code, out, err) = support::run(dir.path(), &["report", "--json"]);
    assert_eq!(code, 0, "{out}{err}");

    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM decisions WHERE status = 'cancelled'"
        ),
        1
    );
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM positions WHERE status = 'closed'"
        ),
        1
    );
    // The open and the close.
    assert_eq!(count(&url, "SELECT COUNT(*) FROM fills"), 2);
    // Cancelled and closed decisions keep being followed for their outcomes.
    assert!(count(&url, "SELECT COUNT(*) FROM outcomes") >= 2);
}

/// Every SQL statement written in the store's source (`src/store/*.rs`, but for the SQLite-only
/// schema, fault injection and backups) is prepared on PostgreSQL as the store translates it:
/// a function PostgreSQL has not, a parameter whose type it cannot tell, or a syntax of
/// SQLite's alone fails here, not in a user's cycle. Statements built at run time (with
/// `{…}` in them) are prepared with their parts filled in by the tests above instead.
#[test]
fn every_statement_of_the_store_prepares_on_postgresql() {
    let Some(pg) = support::pg::shared() else {
        return support::pg::skip_note();
    };
    let url = pg.new_database();
    // The schema, made by the store itself.
    autotrade_tui::store::Store::open_url(&url, "u", true).unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let literal = regex::Regex::new(r#""((?:[^"\\]|\\.)*)""#).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut prepared = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if ["schema.rs", "health.rs", "backup.rs", "db.rs"].contains(&name.as_str()) {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        // Only the library's code, not its unit tests (which write SQLite directly).
        let source = source.split("#[cfg(test)]").next().unwrap();
        for m in literal.captures_iter(source) {
            let text = m[1].replace("\\\\", "\\").replace("\\\"", "\"");
            let head = text.trim_start().to_ascii_uppercase();
            let is_sql = ["SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH "]
                .iter()
                .any(|k| head.starts_with(k));
            // `sqlite_master`: the SQLite file's own check, never run on PostgreSQL.
            if !is_sql || text.contains('{') || text.contains("sqlite_master") {
                continue;
            }
            let sql = autotrade_tui::store::pg_sql(&text);
            match client.prepare(&sql) {
                Ok(_) => prepared += 1,
                Err(e) => failures.push(format!(
                    "{name}: {}\n  {sql}",
                    e.as_db_error()
                        .map(|d| d.message().to_string())
                        .unwrap_or(e.to_string())
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(prepared >= 60, "only {prepared} statements found");
    eprintln!("{prepared} statements prepared");
}

/// Two users' transactions writing the shared prices of the same symbols in opposite orders:
/// without one lock for those rows, each would hold one row the other waits for, and
/// PostgreSQL would end one of them as a deadlock (a lost cycle).
#[test]
fn two_users_writing_the_same_prices_in_opposite_orders_both_commit() {
    use autotrade_tui::store::{Store, StoreError};
    use std::sync::mpsc;
    use std::time::Duration;
    let Some(pg) = support::pg::shared() else {
        return support::pg::skip_note();
    };
    let url = pg.new_database();
    let a = Store::open_url(&url, "a", true).unwrap();
    let b = Store::open_url(&url, "b", true).unwrap();
    let (a_has_btc, b_waits) = mpsc::channel::<()>();
    let (b_has_eth, a_waits) = mpsc::channel::<()>();
    let (a, b) = (&a, &b);
    std::thread::scope(|s| {
        let first = s.spawn(move || {
            a.write(|tx| {
                tx.set_price("BTC/USD", 100.0)?;
                a_has_btc.send(()).unwrap();
                // B cannot get here while A holds the prices' lock: go on after a while.
                let _ = a_waits.recv_timeout(Duration::from_millis(1500));
                tx.set_price("ETH/USD", 50.0)?;
                Ok::<_, StoreError>(())
            })
        });
        let second = s.spawn(move || {
            b_waits.recv().unwrap();
            b.write(|tx| {
                tx.set_price("ETH/USD", 51.0)?;
                let _ = b_has_eth.send(());
                tx.set_price("BTC/USD", 101.0)?;
                Ok::<_, StoreError>(())
            })
        });
        first.join().unwrap().unwrap();
        second.join().unwrap().unwrap();
    });
    // B's writes came after A's commit.
    let prices = a.prices().unwrap();
    assert_eq!(prices["BTC/USD"].price, 101.0);
    assert_eq!(prices["ETH/USD"].price, 51.0);
}
