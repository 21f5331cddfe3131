#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Upgrades keep history: a store written by the previous release (schema version 1, kept as
//! `tests/fixtures/store-v1.db`: 17 decisions, an open and a closed position, a pending manual
//! trade, a kill and an enable) is migrated in place by this one and used as before. So is one
//! from the release before this one (schema version 4, `tests/fixtures/store-v4.db`: 16
//! decisions, two filled orders, an open BTC/USD and a closed ETH/USD position, a pending
//! SOL/USD trade, price ticks). And one from the last release before outcomes (schema
//! version 5, `tests/fixtures/store-v5.db`, made by 2c22782 against an ML engine on loopback:
//! a BUY executed and closed at its take-profit, a SELL cancelled, a BUY expired, a BUY below
//! `min_confidence`, and the prices after them, a minute apart). And one from the last release
//! before loss halts and trailing stops (schema version 6, `tests/fixtures/store-v6.db`, made by
//! d133fc1 against an ML engine on loopback: a kill and an enable, a BUY of 20 BTC/USD at 100
//! executed and open (TP 105, SL 98), a manual SELL of ETH/USD pending).

mod support;

use rusqlite::Connection;
use std::path::Path;
use support::*;

const FIXTURE: &str = "tests/fixtures/store-v1.db";

/// The fixture in `dir`, with an ML engine on loopback whose prices stay put (the simulated
/// market the fixture was made on moves with the wall clock).
fn install_fixture(dir: &Path) -> (std::path::PathBuf, MlServer) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("autotrade.db");
    std::fs::copy(FIXTURE, &db).unwrap();
    let ml = MlServer::start();
    for (symbol, price) in [
        ("BTC/USD", 68_000.0),
        ("ETH/USD", 2_800.0),
        ("SOL/USD", 260.0),
    ] {
        ml.set_symbol(symbol, "neutral", 0.5, price, "accumulation");
    }
    write_config(
        dir,
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\", \"SOL/USD\"]\npending_expiry_minutes = 0.5",
        "",
    );
    (db, ml)
}

/// Every decision's audit columns, in order.
fn audit_rows(db: &Path) -> Vec<(String, String, String, String, String)> {
    let c = Connection::open(db).unwrap();
    let mut stmt = c
        .prepare(
            "SELECT log_id, user_id, status, symbol, action, created_at, executed_at, seq,
                    position_size, entry_price, take_profit, stop_loss
             FROM decisions ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn meta(db: &Path, key: &str) -> Option<String> {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .ok()
}

#[test]
fn a_store_from_the_previous_release_is_migrated_in_place_and_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _ml) = install_fixture(dir.path());
    assert_eq!(meta(&db, "schema_version").as_deref(), Some("1"));
    let before = audit_rows(&db);
    assert_eq!(before.len(), 17);
    let origin = meta(&db, "sim_origin_ms");

    // Any command opens (and so migrates) the store.
    let (code, out, err) = run(dir.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(meta(&db, "schema_version").as_deref(), Some("7"));
    // The trend starts from the prices the decisions were made at (each of the 17 carries its
    // ML signal's price) and each symbol's latest price: the dashboard draws it at once.
    let ticks: Vec<(String, i64)> = {
        let c = Connection::open(&db).unwrap();
        let mut stmt = c
            .prepare("SELECT symbol, COUNT(*) FROM price_ticks GROUP BY symbol ORDER BY symbol")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    // BTC 5 + 1, ETH 6 + 1, SOL 6 + 1; `status` itself records no price.
    assert_eq!(
        ticks,
        [
            ("BTC/USD".to_string(), 6),
            ("ETH/USD".to_string(), 7),
            ("SOL/USD".to_string(), 7)
        ]
    );
    let status = json_lines(&out).remove(0);
    assert_eq!(status["open_positions"], 1);
    // The pending trade was made long ago: it has expired, as it would have before.
    assert_eq!(status["pending"], 0);
    assert_eq!(status["kill_switch"], false);
    assert_eq!(status["enabled"], true);

    // Nothing lost or changed but that expiry; the simulated market keeps its origin.
    let after = audit_rows(&db);
    assert_eq!(after.len(), before.len());
    for (b, a) in before.iter().zip(&after) {
        if b.2 == "pending" {
            assert_eq!((&a.0, &a.2), (&b.0, &"expired".to_string()));
        } else {
            assert_eq!(a, b);
        }
    }
    assert_eq!(meta(&db, "sim_origin_ms"), origin);
    let all = decisions_json(dir.path(), &["--limit", "100"]);
    assert_eq!(all.len(), 17);
    assert_eq!(all.iter().filter(|d| d["status"] == "executed").count(), 2);

    // The new table is there, empty: executions before the upgrade had no orders.
    let c = Connection::open(&db).unwrap();
    let orders: i64 = c
        .query_row("SELECT COUNT(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orders, 0);
    let fills: i64 = c
        .query_row("SELECT COUNT(*) FROM fills", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fills, 3);
    assert_eq!(
        c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );

    // The open position from before the upgrade is shown and can be closed.
    let (code, out, err) = run(dir.path(), &["positions", "--json"]);
    assert_eq!(code, 0, "{err}");
    let pos = json_lines(&out);
    assert_eq!(pos.len(), 1);
    assert_eq!(pos[0]["symbol"], "ETH/USD");
    assert_eq!(pos[0]["side"], "BUY");
    assert_eq!(pos[0]["entry_price"], 2799.91);
    let (code, out, err) = run(dir.path(), &["close", "ETH/USD"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("closed BUY 0.5 ETH/USD @ 2,800.00, realized P&L +0.05"),
        "{out}"
    );

    // And the upgraded store trades as a new one does: a manual trade goes through an order.
    let (code, out, err) = run(
        dir.path(),
        &[
            "trade", "ETH/USD", "buy", "--size", "0.01", "--tp", "100000", "--sl", "1", "--yes",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let log_id = json_lines(&out)[0]["log_id"].as_str().unwrap().to_string();
    let (client_id, status): (String, String) = c
        .query_row("SELECT client_order_id, status FROM orders", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((client_id, status), (log_id, "filled".to_string()));
}

#[test]
fn a_store_from_a_newer_release_is_refused_not_downgraded() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _ml) = install_fixture(dir.path());
    Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
    let (code, _, err) = run(dir.path(), &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("schema version 99, newer than this program's 7"),
        "{err}"
    );
    assert_eq!(meta(&db, "schema_version").as_deref(), Some("99"));
}

#[test]
fn the_upgraded_stores_closed_trade_is_in_the_dashboards_history() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, _ml) = install_fixture(dir.path());
    let mut d = support::pty::Dashboard::start(dir.path());
    d.wait_screen("the dashboard", |t| t.contains("Open positions (1)"));
    d.press("h");
    let screen = d.wait_screen("the history with the closed BTC trade", |t| {
        t.contains("Closed trades (1)")
            && t.lines().any(|l| {
                l.contains("SELL BTC/USD") && l.contains("68,485.35") && l.contains("-4.73")
            })
    });
    assert!(screen.contains("closed by trader"), "{screen}");
    // Searched: nothing closed on ETH, its events are there.
    d.press("/eth\r");
    d.wait_screen("the ETH search", |t| {
        t.contains("search: \"eth\"") && t.contains("Closed trades (0)") && t.contains("ETH/USD")
    });
    d.press("q");
    d.wait_screen("the dashboard again", |t| !t.contains("Trade history"));
    d.quit();
}

#[test]
fn a_store_from_the_release_before_keeps_its_orders_and_positions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("autotrade.db");
    std::fs::copy("tests/fixtures/store-v4.db", &db).unwrap();
    // Prices that stay put, inside the open position's take-profit and stop-loss.
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "neutral", 0.5, 68_000.0, "accumulation");
    write_config(dir.path(), Some(&ml.url), "symbols = [\"BTC/USD\"]", "");
    assert_eq!(meta(&db, "schema_version").as_deref(), Some("4"));
    let before = audit_rows(&db);
    assert_eq!(before.len(), 16);

    let (code, out, err) = run(dir.path(), &["positions", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(meta(&db, "schema_version").as_deref(), Some("7"));
    let pos = json_lines(&out);
    assert_eq!(pos.len(), 1);
    assert_eq!(pos[0]["symbol"], "BTC/USD");
    assert_eq!(pos[0]["entry_price"], 68324.0);

    // Orders from before were opening orders; positions kept their exits with the engine.
    let c = Connection::open(&db).unwrap();
    let kinds: Vec<(String, String)> = {
        let mut stmt = c
            .prepare("SELECT kind, status FROM orders ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        kinds,
        [
            ("open".to_string(), "filled".to_string()),
            ("open".to_string(), "filled".to_string())
        ]
    );
    let held: Vec<String> = {
        let mut stmt = c
            .prepare("SELECT exits_held_by FROM positions ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(held, ["engine", "engine"]);
    // Nothing lost: every decision as it was (`positions` expires nothing).
    assert_eq!(audit_rows(&db), before);
    assert_eq!(
        c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );
    // The open position closes as it would have.
    let (code, out, err) = run(dir.path(), &["close", "BTC/USD"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("closed BUY 0.01802018 BTC/USD @ 68,000.00, realized P&L -5.84"),
        "{out}"
    );
}

#[test]
fn a_store_from_before_outcomes_has_its_decisions_followed_on_the_prices_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("autotrade.db");
    std::fs::copy("tests/fixtures/store-v5.db", &db).unwrap();
    let ml = MlServer::start();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\", \"SOL/USD\"]",
        "",
    );
    assert_eq!(meta(&db, "schema_version").as_deref(), Some("5"));
    let before = audit_rows(&db);
    assert_eq!(before.len(), 15);

    let (code, out, err) = run(dir.path(), &["report", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(meta(&db, "schema_version").as_deref(), Some("7"));
    assert_eq!(audit_rows(&db), before);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let v = &r["veto"];
    // The executed BUY at 100 (TP 110, SL 95) saw 104 then 111: its take-profit, 2 R.
    assert_eq!(v["executed"]["take_profit"], 1, "{v}");
    assert_eq!(v["executed"]["total_r"], 2.0);
    // The cancelled SELL at 50 (TP 45, SL 52.5) saw 44: 2 R it would have made, 2 × 100.
    assert_eq!(v["cancelled"]["take_profit"], 1);
    assert_eq!(v["cancelled"]["money"], 200.0);
    // The expired BUY at 44 (SL 42) saw 41: −1.5 R, −1.5 × 90.91 = −136.37 at its size (to
    // the cent, half away from zero); with the cancelled SELL's 200, 63.63.
    assert_eq!(v["expired"]["stop_loss"], 1);
    assert_eq!(v["expired"]["total_r"], -1.5);
    assert_eq!(v["vetoed"]["money"], 63.63);
    // The BUY below min_confidence, known by its reasoning (at 20, SL 19), saw 18.5: −1.5 R.
    assert_eq!(v["below_min_confidence"]["stop_loss"], 1);
    assert_eq!(v["below_min_confidence"]["total_r"], -1.5);
    // Which source scored them was not recorded before.
    assert_eq!(r["reliability"][0]["source"], "unrecorded");
    assert_eq!(r["reliability"][0]["outcomes"], 4);
    // The closed trade: +200 realized.
    assert_eq!(r["performance"]["realized_pnl"], 200.0);
}

#[test]
fn a_store_from_before_halts_and_trails_keeps_its_position_and_its_pending_trade() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("autotrade.db");
    std::fs::copy("tests/fixtures/store-v6.db", &db).unwrap();
    // The fixture's pending trade was made minutes before it was kept: bring its clock (and
    // the prices') to now, so that it has not expired whenever the test runs.
    {
        let c = Connection::open(&db).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let shift: i64 = c
            .query_row("SELECT ?1 - MAX(created_at) FROM decisions", [now], |r| {
                r.get(0)
            })
            .unwrap();
        c.execute_batch(&format!(
            "UPDATE decisions SET created_at = created_at + {shift}, updated_at = updated_at + {shift},
                 executed_at = executed_at + {shift};
             UPDATE prices SET at = at + {shift};"
        ))
        .unwrap();
    }
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "neutral", 0.5, 101.0, "accumulation");
    ml.set_symbol("ETH/USD", "neutral", 0.5, 100.0, "accumulation");
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\"]",
        "",
    );
    assert_eq!(meta(&db, "schema_version").as_deref(), Some("6"));
    let before = audit_rows(&db);
    assert_eq!(before.len(), 3);

    let (code, out, err) = run(dir.path(), &["positions", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(meta(&db, "schema_version").as_deref(), Some("7"));
    assert_eq!(audit_rows(&db), before);
    let p: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(p["symbol"], "BTC/USD");
    assert_eq!(p["quantity"], 20.0);
    assert_eq!(p["stop_loss"], 98.0);
    // Not halted, and enabled as the kill-then-enable left it.
    let (code, out, err) = run(dir.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let s: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(s["enabled"], true, "{s}");
    // The pending manual SELL is confirmed as before.
    let (code, out, err) = run(dir.path(), &["decisions", "--pending", "--json"]);
    assert_eq!(code, 0, "{err}");
    let d: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let id = d["log_id"].as_str().unwrap().to_string();
    let (code, out, err) = run(dir.path(), &["confirm", &id]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("executed SELL"), "{out}");
    // The open BUY closes at the latest price: (101 − 100) × 20.
    let (code, out, err) = run(dir.path(), &["close", "BTC/USD"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("realized P&L +20.00"), "{out}");
}

#[test]
fn an_upgraded_stores_open_position_keeps_its_fixed_stop_when_a_default_trail_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("autotrade.db");
    std::fs::copy("tests/fixtures/store-v6.db", &db).unwrap();
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "neutral", 0.5, 100.0, "accumulation");
    ml.set_symbol("ETH/USD", "neutral", 0.5, 100.0, "accumulation");
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\"]",
        "[risk]\ntrailing_stop_percent = 1\n",
    );
    let positions = |dir: &Path| {
        let (code, out, err) = run(dir, &["positions", "--json"]);
        assert_eq!(code, 0, "{err}");
        json_lines(&out)
    };
    let p = &positions(dir.path())[0];
    assert_eq!(meta(&db, "schema_version").as_deref(), Some("7"));
    assert_eq!(
        (p["symbol"].as_str(), p["stop_loss"].as_f64()),
        (Some("BTC/USD"), Some(98.0))
    );
    assert!(
        p["trail_percent"].is_null() && p["trail_amount"].is_null(),
        "{p}"
    );
    assert!(p["best_price"].is_null(), "{p}");
    // BUY 20 at 100, SL 98. A 1 % trail would have moved the stop to 104 × 0.99 = 102.96 and
    // closed it at 102.5; the position opened before trails keeps its fixed stop at 98.
    for price in [104.0, 102.5] {
        ml.set_symbol("BTC/USD", "neutral", 0.5, price, "accumulation");
        once_json(dir.path());
    }
    let p = &positions(dir.path())[0];
    assert_eq!(p["symbol"], "BTC/USD");
    assert_eq!(p["stop_loss"].as_f64(), Some(98.0));
    assert_eq!(p["last_price"].as_f64(), Some(102.5));
    assert!(p["trail_percent"].is_null(), "{p}");
    // A trade made now gets the default trail: ETH/USD bought at 100 with SL 95 trails 1 %,
    // its stop at 100 − 1 = 99 from the fill.
    let (code, out, err) = run(
        dir.path(),
        &[
            "trade", "ETH/USD", "buy", "--tp", "110", "--sl", "95", "--yes", "--json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let log = &json_lines(&out)[0];
    assert_eq!(log["decision"]["trail_percent"].as_f64(), Some(1.0));
    assert_eq!(log["decision"]["stop_loss"].as_f64(), Some(95.0));
    let eth = positions(dir.path())
        .into_iter()
        .find(|p| p["symbol"] == "ETH/USD")
        .unwrap();
    assert_eq!(eth["trail_percent"].as_f64(), Some(1.0));
    assert_eq!(eth["stop_loss"].as_f64(), Some(99.0));
    assert_eq!(eth["best_price"].as_f64(), Some(100.0));
}
