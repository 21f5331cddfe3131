#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The guards a trader expects: loss halts that trip on a known price path, survive a
//! restart and clear only on reset; flatten closing every position once.

mod support;
use rusqlite::Connection;
use support::*;

/// One command, which must succeed: its stdout.
fn ok(dir: &std::path::Path, args: &[&str]) -> String {
    let (code, out, err) = run(dir, args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

/// The events of `level`, from the data dir's SQLite store or from the PostgreSQL database
/// its config names.
fn events(dir: &std::path::Path, level: &str) -> Vec<String> {
    if let Some(url) = pg_url_of(dir) {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        return c
            .query(
                "SELECT message FROM events WHERE level = $1 ORDER BY id",
                &[&level],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    }
    let c = Connection::open(dir.join("data/autotrade.db")).unwrap();
    let mut s = c
        .prepare("SELECT message FROM events WHERE level = ?1 ORDER BY id")
        .unwrap();
    s.query_map([level], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap()
}

#[test]
fn a_daily_loss_halt_trips_on_a_known_path_survives_restarts_and_clears_only_on_reset() {
    daily_loss_halt("");
}

#[test]
fn on_postgresql_a_daily_loss_halt_trips_survives_restarts_and_clears_only_on_reset() {
    let Some(store) = pg_store_table() else {
        return support::pg::skip_note();
    };
    daily_loss_halt(&store);
}

/// `store`: a `[store]` table, or nothing (SQLite).
fn daily_loss_halt(store: &str) {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "neutral", 0.5, 100.0, "accumulation");
    ml.set_symbol("ETH/USD", "neutral", 0.5, 50.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\"]",
        &format!("[risk]\ndaily_loss_limit_percent = 1\nmax_drawdown_percent = 5\n{store}"),
    );
    // A long of 15 BTC/USD at 100 (risk 15 × 10 = 150 = 1.5% of 10,000, at the limit), and a
    // pending ETH/USD sell. The day starts at equity 10,000.
    ok(
        dir.path(),
        &[
            "trade", "BTC/USD", "buy", "--size", "15", "--tp", "120", "--sl", "90", "--yes",
        ],
    );
    ok(
        dir.path(),
        &[
            "trade", "ETH/USD", "sell", "--size", "1", "--tp", "45", "--sl", "52",
        ],
    );
    // The path: 97 loses 45 (0.45%), 94 loses 90 (0.9%): no halt; 93 loses 105 = 1.05% ≥ 1%.
    for (price, used) in [(97.0, "0.45% of 1%"), (94.0, "0.90% of 1%")] {
        ml.set_symbol("BTC/USD", "neutral", 0.5, price, "accumulation");
        ok(dir.path(), &["once"]);
        let status = ok(dir.path(), &["status"]);
        assert!(!status.contains("HALTED"), "{status}");
        assert!(
            status.contains(&format!("loss limits today {used}")),
            "{status}"
        );
    }
    ml.set_symbol("BTC/USD", "neutral", 0.5, 93.0, "accumulation");
    ok(dir.path(), &["once"]);
    // Every command is a new process: the halt is in the store.
    let status = ok(dir.path(), &["status"]);
    assert!(
        status.contains("HALTED      since ")
            && status
                .contains(": daily loss 105.00 = 1.05% of 10,000.00 at the day's start ≥ limit 1%"),
        "{status}"
    );
    let st = json_lines(&ok(dir.path(), &["status", "--json"])).remove(0);
    assert_eq!(
        st["halt"]["reason"],
        "daily loss 105.00 = 1.05% of 10,000.00 at the day's start ≥ limit 1%"
    );
    assert_eq!(st["loss_limits"]["daily_loss"]["amount"], 105.0);
    // The pending sell was cancelled; the open long keeps its exits.
    let eth = decisions_json(dir.path(), &[])
        .into_iter()
        .find(|d| d["decision"]["symbol"] == "ETH/USD" && d["decision"]["action"] == "SELL")
        .unwrap();
    assert_eq!(eth["status"], "cancelled");
    assert_eq!(
        json_lines(&ok(dir.path(), &["positions", "--json"])).len(),
        1
    );
    // New entries stop: a bullish cycle holds, a manual trade is refused, `enable` is refused.
    ml.set_symbol("ETH/USD", "bullish", 0.9, 50.0, "accumulation");
    let cycle = once_json(dir.path());
    let eth = cycle
        .iter()
        .find(|d| d["decision"]["symbol"] == "ETH/USD")
        .unwrap();
    assert_eq!(eth["decision"]["action"], "HOLD");
    assert!(
        eth["decision"]["reasoning"]
            .as_str()
            .unwrap()
            .contains("a loss halt is in force"),
        "{eth}"
    );
    let (code, _, err) = run(dir.path(), &["trade", "ETH/USD", "buy", "--size", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("a loss halt is in force"), "{err}");
    let (code, _, err) = run(dir.path(), &["enable"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("HALTED: daily loss 105.00") && err.contains("`enable --reset`"),
        "{err}"
    );
    // The stop still works while halted: 89 crosses the stop at 90, the long closes there.
    ml.set_symbol("ETH/USD", "neutral", 0.5, 50.0, "accumulation");
    ml.set_symbol("BTC/USD", "neutral", 0.5, 89.0, "accumulation");
    ok(dir.path(), &["once"]);
    assert!(json_lines(&ok(dir.path(), &["positions", "--json"])).is_empty());
    // Tripped once, however many prices came after.
    assert_eq!(
        events(dir.path(), "halt").len(),
        1,
        "{:?}",
        events(dir.path(), "halt")
    );
    // The reset clears it, and the limits start again from today's equity: 10,000 − 15 × 11.
    let out = ok(dir.path(), &["enable", "--reset"]);
    assert!(
        out.starts_with("loss halt cleared (was: daily loss 105.00"),
        "{out}"
    );
    let status = ok(dir.path(), &["status"]);
    assert!(!status.contains("HALTED"), "{status}");
    assert!(status.contains("auto-trade  ENABLED"), "{status}");
    assert!(
        status.contains("loss limits today 0.00% of 1% (loss 0.00 from 9,835.00)"),
        "{status}"
    );
    ml.set_symbol("ETH/USD", "bullish", 0.9, 50.0, "accumulation");
    let cycle = once_json(dir.path());
    let eth = cycle
        .iter()
        .find(|d| d["decision"]["symbol"] == "ETH/USD")
        .unwrap();
    assert_eq!(eth["decision"]["action"], "BUY", "{eth}");
}

#[test]
fn a_drawdown_halt_is_measured_from_the_peak() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "neutral", 0.5, 100.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\"]",
        "[risk]\nmax_drawdown_percent = 0.5\n",
    );
    // 15 long at 100; the price rises to 110 (equity peak 10,150), then falls to 106: equity
    // 10,090, 60 below the peak = 0.59% ≥ 0.5%. From the start it is a gain.
    ok(
        dir.path(),
        &[
            "trade", "BTC/USD", "buy", "--size", "15", "--tp", "120", "--sl", "90", "--yes",
        ],
    );
    for price in [110.0, 106.0] {
        ml.set_symbol("BTC/USD", "neutral", 0.5, price, "accumulation");
        ok(dir.path(), &["once"]);
    }
    let st = json_lines(&ok(dir.path(), &["status", "--json"])).remove(0);
    assert_eq!(
        st["halt"]["reason"],
        "drawdown 60.00 = 0.59% below the peak 10,150.00 ≥ limit 0.5%"
    );
    assert!(st["loss_limits"]["daily_loss"].is_null());
}

#[test]
fn flatten_closes_every_position_once() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 100.0, "accumulation");
    ml.set_symbol("ETH/USD", "bearish", 0.9, 50.0, "distribution");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\"]",
        "",
    );
    ok(
        dir.path(),
        &["trade", "BTC/USD", "buy", "--size", "1", "--yes"],
    );
    ok(
        dir.path(),
        &["trade", "ETH/USD", "sell", "--size", "2", "--yes"],
    );
    ok(dir.path(), &["kill", "--flatten"]);
    ok(dir.path(), &["kill", "--flatten"]);
    let c = Connection::open(dir.path().join("data/autotrade.db")).unwrap();
    let closes: Vec<(String, i64)> = c
        .prepare(
            "SELECT p.symbol, COUNT(*) FROM fills f JOIN positions p ON p.id = f.position_id
             WHERE f.kind = 'close' GROUP BY p.symbol ORDER BY p.symbol",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(closes, vec![("BTC/USD".into(), 1), ("ETH/USD".into(), 1)]);
    // Re-enabling after the kill is explicit, and works.
    ok(dir.path(), &["enable"]);
}
