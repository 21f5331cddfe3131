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
