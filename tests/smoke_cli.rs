#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
mod support;
use support::*;

#[test]
fn once_against_loopback_engine_queues_a_buy() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.87, 45000.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), Some(&ml.url), "symbols = [\"BTC/USD\"]", "");
    let (code, out, err) = run(dir.path(), &["once", "--json"]);
    assert_eq!(code, 0, "{err}");
    let logs = json_lines(&out);
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["decision"]["action"], "BUY");
    assert_eq!(logs[0]["decision"]["confidence"], 0.8265);
    assert_eq!(logs[0]["status"], "pending");
    assert_eq!(ml.hits(&signal_path("BTC/USD")), 1);
}
