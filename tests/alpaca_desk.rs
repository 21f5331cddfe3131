#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap: a failure is the report.
//! The real binary trading through Alpaca's API, against the loopback fake of it
//! (`support::alpaca`, which cites the documentation it follows): one order per decision
//! whatever happens, the broker's fills and reasons recorded, reconciliation, the engine's
//! and the broker's exits, and live kept out of reach.

mod support;

use serde_json::Value;
use std::path::Path;
use support::alpaca::{AlpacaFake, AssetSpec, FillMode};
use support::*;

/// Run the binary with the paper keys the fake expects (and nothing else of Alpaca's).
fn run_keys(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = command(dir, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn command(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(bin());
    c.args(args)
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .env_remove("AUTOTRADE_WEBHOOK_URL")
        .env_remove("APCA_LIVE_API_KEY_ID")
        .env_remove("APCA_LIVE_API_SECRET_KEY")
        .env("APCA_API_KEY_ID", "PKTEST")
        .env("APCA_API_SECRET_KEY", "SECRETTEST");
    c
}

/// An ML engine bullish on BTC/USD at 100 (TP 105, SL 98) and AAPL at 190; Alpaca's fake
/// fills BTC/USD at 100.5 and AAPL at 190.2.
struct Desk {
    dir: tempfile::TempDir,
    ml: MlServer,
    fake: AlpacaFake,
}

fn desk(timeout_seconds: f64) -> Desk {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 100.0, "accumulation");
    ml.set_symbol("AAPL", "bullish", 0.9, 190.0, "accumulation");
    let fake = AlpacaFake::start();
    fake.set_asset("BTC/USD", AssetSpec::crypto());
    fake.set_price("BTC/USD", 100.5);
    fake.set_asset("AAPL", AssetSpec::stock());
    fake.set_price("AAPL", 190.2);
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"AAPL\"]",
        &format!(
            "[market_data]\nprovider = \"ml_engine\"\n[broker]\nkind = \"alpaca\"\ntrading_url = \"{}\"\ntimeout_seconds = {timeout_seconds}\n",
            fake.url
        ),
    );
    Desk { dir, ml, fake }
}

/// [`desk`] with its rows in a PostgreSQL database of its own (`None` without PostgreSQL).
fn desk_pg(timeout_seconds: f64) -> Option<Desk> {
    let pg = support::pg::shared()?;
    let d = desk(timeout_seconds);
    let cfg = d.dir.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!("{text}\n[store]\nurl = \"{}\"\n", pg.new_database()),
    )
    .unwrap();
    Some(d)
}

impl Desk {
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        run_keys(self.dir.path(), args)
    }

    /// A pending manual BUY; its log id.
    fn propose(&self, symbol: &str, size: &str) -> String {
        let (code, out, err) = self.run(&["trade", symbol, "buy", "--size", size, "--json"]);
        assert_eq!(code, 0, "{err}");
        json_lines(&out)[0]["log_id"].as_str().unwrap().to_string()
    }

    fn decision(&self, id: &str) -> Value {
        let (code, out, err) = self.run(&["decisions", "--json", "--limit", "100"]);
        assert_eq!(code, 0, "{err}");
        json_lines(&out)
            .into_iter()
            .find(|d| d["log_id"] == id)
            .unwrap()
    }

    fn positions(&self) -> Vec<Value> {
        let (code, out, err) = self.run(&["positions", "--json"]);
        assert_eq!(code, 0, "{err}");
        json_lines(&out)
    }

    fn status(&self) -> Value {
        let (code, out, err) = self.run(&["status", "--json"]);
        assert_eq!(code, 0, "{err}");
        json_lines(&out).remove(0)
    }

    fn orders_for(&self, id: &str) -> usize {
        self.fake
            .orders()
            .iter()
            .filter(|o| o["client_order_id"] == id)
            .count()
    }
}

#[test]
fn confirm_sends_one_order_and_the_position_is_the_brokers_fill() {
    confirm_sends_one_order(desk(5.0));
}

#[test]
fn on_postgresql_confirm_sends_one_order_and_the_position_is_the_brokers_fill() {
    let Some(d) = desk_pg(5.0) else {
        return support::pg::skip_note();
    };
    confirm_sends_one_order(d);
}

fn confirm_sends_one_order(d: Desk) {
    let id = d.propose("BTC/USD", "2");
    let (code, out, err) = d.run(&["confirm", &id]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(d.orders_for(&id), 1);
    let body = &d.fake.order_bodies()[0];
    assert_eq!(body["client_order_id"], id.as_str());
    assert_eq!(body["qty"], "2");
    // The position is what the broker filled, not the decision's price.
    let pos = d.positions();
    assert_eq!(pos.len(), 1);
    assert_eq!(pos[0]["entry_price"], 100.5);
    assert_eq!(pos[0]["quantity"], 2.0);
    assert_eq!(d.decision(&id)["status"], "executed");
    // `y` again: refused by the store, nothing sent.
    let (code, _, err) = d.run(&["confirm", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("not pending"), "{err}");
    assert_eq!(d.fake.post_count(), 1);
    // The header's account is the broker's.
    let st = d.status();
    assert_eq!(st["broker"], "alpaca");
    assert_eq!(st["broker_reachable"], true);
    assert_eq!(st["broker_account"]["equity"], 100_000.0);
}

#[test]
fn two_confirms_racing_end_with_one_order_at_the_broker() {
    two_confirms_racing(desk(5.0));
}

#[test]
fn on_postgresql_two_confirms_racing_end_with_one_order_at_the_broker() {
    let Some(d) = desk_pg(5.0) else {
        return support::pg::skip_note();
    };
    two_confirms_racing(d);
}

fn two_confirms_racing(d: Desk) {
    let id = d.propose("BTC/USD", "1");
    let mut a = command(d.dir.path(), &["confirm", &id]).spawn().unwrap();
    let mut b = command(d.dir.path(), &["confirm", &id]).spawn().unwrap();
    let codes = [a.wait().unwrap().code(), b.wait().unwrap().code()];
    assert!(codes.contains(&Some(0)), "{codes:?}");
    assert!(codes.contains(&Some(1)), "{codes:?}");
    assert_eq!(d.orders_for(&id), 1);
    assert_eq!(d.fake.post_count(), 1);
    assert_eq!(d.positions().len(), 1);
}

#[test]
fn killed_between_send_and_answer_the_restart_looks_the_order_up_and_never_resends() {
    killed_between_send_and_answer(desk(2.0));
}

#[test]
fn on_postgresql_killed_between_send_and_answer_the_restart_looks_the_order_up() {
    let Some(d) = desk_pg(2.0) else {
        return support::pg::skip_note();
    };
    killed_between_send_and_answer(d);
}

fn killed_between_send_and_answer(d: Desk) {
    let id = d.propose("BTC/USD", "1");
    d.fake.hang_next_order();
    let mut confirm = command(d.dir.path(), &["confirm", &id]).spawn().unwrap();
    // The order reaches the broker; its answer never comes back.
    let started = std::time::Instant::now();
    while d.fake.post_count() == 0 {
        assert!(started.elapsed().as_secs() < 20, "the order never arrived");
        std::thread::yield_now();
    }
    confirm.kill().unwrap(); // SIGKILL
    confirm.wait().unwrap();
    assert_eq!(d.orders_for(&id), 1);
    // Restarted while the order may still be on its way (within twice the broker's timeout):
    // a confirm of the same decision is refused, it is executing.
    let (code, _, err) = d.run(&["confirm", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("executing"), "{err}");
    // Once no sender can still be waiting, a start looks it up by client order id and
    // records the broker's fill.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while d.decision(&id)["status"] != "executed" {
        assert!(std::time::Instant::now() < deadline, "never looked up");
    }
    let pos = d.positions();
    assert_eq!(pos.len(), 1);
    assert_eq!(pos[0]["entry_price"], 100.5);
    assert_eq!(d.fake.post_count(), 1, "never sent again");
    assert_eq!(d.orders_for(&id), 1);
}

#[test]
fn an_answer_lost_to_a_timeout_is_looked_up_and_recorded_as_filled() {
    let d = desk(0.5);
    let id = d.propose("BTC/USD", "1");
    d.fake.hang_next_order();
    let (code, _, err) = d.run(&["confirm", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("looked up, never sent again"), "{err}");
    // The next command looks it up and finds it filled at the broker.
    let pos = d.positions();
    assert_eq!(pos.len(), 1, "{pos:?}");
    assert_eq!(pos[0]["entry_price"], 100.5);
    assert_eq!(d.decision(&id)["status"], "executed");
    assert_eq!(d.fake.post_count(), 1);
    assert_eq!(d.orders_for(&id), 1);
}

#[test]
fn a_rejected_order_leaves_the_decision_failed_with_the_brokers_reason() {
    let d = desk(5.0);
    let id = d.propose("BTC/USD", "1");
    d.fake
        .set_fill_mode(FillMode::Reject("account is not allowed to trade".into()));
    let (code, _, err) = d.run(&["confirm", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("account is not allowed to trade"), "{err}");
    let dec = d.decision(&id);
    assert_eq!(dec["status"], "failed");
    assert!(d.positions().is_empty());
}

#[test]
fn a_broker_outage_fails_the_order_it_never_received_and_duplicates_nothing() {
    let d = desk(5.0);
    let id = d.propose("BTC/USD", "1");
    d.fake.fail_next(
        "POST /v2/orders",
        503,
        r#"{"code": 50300000, "message": "service unavailable"}"#,
        None,
    );
    let (code, _, err) = d.run(&["confirm", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("never sent again"), "{err}");
    // Looked up at the next start: the broker never had it, so it failed; nothing resent.
    let _ = d.status();
    let dec = d.decision(&id);
    assert_eq!(dec["status"], "failed", "{dec}");
    assert_eq!(d.orders_for(&id), 0);
    assert!(d.positions().is_empty());
}

#[test]
fn the_brokers_rules_refuse_before_sending_with_the_figures() {
    let d = desk(5.0);
    // Crypto cannot be sold short at Alpaca.
    let (code, out, err) = d.run(&[
        "trade", "BTC/USD", "sell", "--size", "1", "--tp", "90", "--sl", "101", "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let id = json_lines(&out)[0]["log_id"].as_str().unwrap().to_string();
    let (code, _, err) = d.run(&["confirm", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("not sent"), "{err}");
    assert!(err.to_lowercase().contains("short"), "{err}");
    assert_eq!(d.fake.post_count(), 0);
    // Nothing stored: it stays pending, to resize or cancel.
    assert_eq!(d.decision(&id)["status"], "pending");
    // A broker that cannot be asked refuses the same way, and sends nothing.
    let buy = d.propose("AAPL", "1");
    d.fake.fail_next(
        "GET /v2/account",
        503,
        r#"{"message": "unavailable"}"#,
        None,
    );
    d.fake
        .fail_next("GET /v2/assets", 503, r#"{"message": "unavailable"}"#, None);
    let (code, _, err) = d.run(&["confirm", &buy]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not sent"), "{err}");
    assert_eq!(d.decision(&buy)["status"], "pending");
    assert_eq!(d.fake.post_count(), 0);
}

#[test]
fn an_engine_held_stop_sends_the_closing_order_and_closes_at_the_brokers_fill() {
    let d = desk(5.0);
    let id = d.propose("BTC/USD", "1");
    assert_eq!(d.run(&["confirm", &id]).0, 0);
    // The price falls through the stop-loss (98): the next check sends the closing order.
    d.ml.set_symbol("BTC/USD", "neutral", 0.5, 97.0, "accumulation");
    d.fake.set_price("BTC/USD", 96.9);
    let (code, _, err) = d.run(&["once"]);
    assert_eq!(code, 0, "{err}");
    let close_id = format!("{id}-close-1");
    assert_eq!(d.orders_for(&close_id), 1);
    assert!(d.positions().is_empty());
    let (_, out, _) = d.run(&["decisions", "--json"]);
    assert!(!out.is_empty());
    // Another check sends nothing more.
    assert_eq!(d.run(&["once"]).0, 0);
    assert_eq!(d.fake.post_count(), 2);
}

#[test]
fn a_whole_share_stock_is_bracketed_and_its_exit_is_the_brokers() {
    let d = desk(5.0);
    let id = d.propose("AAPL", "10");
    assert_eq!(d.run(&["confirm", &id]).0, 0);
    let body = &d.fake.order_bodies()[0];
    assert_eq!(body["order_class"], "bracket", "{body}");
    // The broker's take-profit leg fills; the next reconciliation closes the position there.
    d.fake.trigger_leg("AAPL", "take_profit", 199.5);
    let (code, _, err) = d.run(&["once"]);
    assert_eq!(code, 0, "{err}");
    assert!(d.positions().is_empty());
    let (_, out, _) = run_keys(d.dir.path(), &["status", "--json"]);
    assert!(out.contains("\"open_positions\":0"), "{out}");
    assert_eq!(d.fake.post_count(), 1, "the engine sent no closing order");
}

#[test]
fn a_trailing_stop_on_a_whole_share_stock_is_the_engines_not_a_bracket() {
    let d = desk(5.0);
    // AAPL: signal at 190 (TP 199.5, SL 186.2); Alpaca fills 10 shares at 190.2.
    let (code, out, err) = d.run(&[
        "trade", "AAPL", "buy", "--size", "10", "--trail", "1", "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let id = json_lines(&out)[0]["log_id"].as_str().unwrap().to_string();
    assert_eq!(d.run(&["confirm", &id]).0, 0);
    // A bracket's stop leg would stay where it was placed: the order is a simple one and the
    // engine holds the exits, trailing from the fill: max(186.2, 190.2 × 0.99 = 188.298).
    let body = &d.fake.order_bodies()[0];
    assert!(body.get("order_class").is_none(), "{body}");
    assert!(body.get("stop_loss").is_none(), "{body}");
    let p = &d.positions()[0];
    assert_eq!(p["stop_loss"].as_f64(), Some(188.298));
    // 195 moves the stop to 195 × 0.99 = 193.05; 193 crosses it: the engine sends the close.
    d.ml.set_symbol("AAPL", "neutral", 0.5, 195.0, "accumulation");
    assert_eq!(d.run(&["once"]).0, 0);
    assert_eq!(d.positions()[0]["stop_loss"].as_f64(), Some(193.05));
    d.ml.set_symbol("AAPL", "neutral", 0.5, 193.0, "accumulation");
    d.fake.set_price("AAPL", 192.9);
    let (code, _, err) = d.run(&["once"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(d.orders_for(&format!("{id}-close-1")), 1);
    assert!(d.positions().is_empty());
    assert_eq!(d.fake.post_count(), 2);
}

#[test]
fn a_position_the_program_did_not_open_is_external_and_untouched() {
    let d = desk(5.0);
    d.fake.add_external_position("ETH/USD", 3.0, 2_500.0);
    assert_eq!(d.run(&["once"]).0, 0);
    let (code, text, err) = d.run(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("broker      alpaca equity 100,000.00, buying power 200,000.00"),
        "{text}"
    );
    assert!(
        text.contains("1 external position(s) at the broker"),
        "{text}"
    );
    let st = d.status();
    let ext = st["external_positions"].as_array().unwrap();
    assert_eq!(ext.len(), 1, "{st}");
    assert_eq!(ext[0]["symbol"], "ETH/USD");
    assert_eq!(ext[0]["quantity"], 3.0);
    assert!(d.positions().is_empty());
    assert_eq!(d.fake.post_count(), 0);
}

#[test]
fn live_is_refused_for_each_missing_piece_with_its_own_message() {
    let d = desk(5.0);
    let cfg = d.dir.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("[auto_trade]\n", "[auto_trade]\npaper_trading = false\n"),
    )
    .unwrap();
    // No --live flag.
    let (code, _, err) = d.run(&["status"]);
    assert_eq!(code, 2);
    assert!(err.contains("the --live flag"), "{err}");
    // --live, but no live keys (the paper keys never reach live).
    let (code, _, err) = d.run(&["status", "--live"]);
    assert_eq!(code, 2);
    assert!(err.contains("APCA_LIVE_API_KEY_ID is not set"), "{err}");
    assert!(!err.contains("--live flag"), "{err}");
    // The paper ledger never trades live.
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("kind = \"alpaca\"", "kind = \"paper\""),
    )
    .unwrap();
    let (code, _, err) = d.run(&["status", "--live"]);
    assert_eq!(code, 2);
    assert!(err.contains("a broker that trades live"), "{err}");
    assert_eq!(d.fake.requests().len(), 0, "nothing reached the broker");
    // On paper, Alpaca needs its paper keys.
    let paper = tempfile::tempdir().unwrap();
    write_config(
        paper.path(),
        Some(&d.ml.url),
        "",
        &format!(
            "[broker]\nkind = \"alpaca\"\ntrading_url = \"{}\"\n",
            d.fake.url
        ),
    );
    let out = command(paper.path(), &["status"])
        .env_remove("APCA_API_KEY_ID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("APCA_API_KEY_ID is not set"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_dashboard_shows_the_brokers_account_who_holds_the_stops_and_external_positions() {
    let d = desk(5.0);
    d.fake.add_external_position("ETH/USD", 3.0, 2_500.0);
    let args: Vec<std::ffi::OsString> = vec![
        "--config".into(),
        d.dir.path().join("config.toml").into_os_string(),
        "--data-dir".into(),
        d.dir.path().join("data").into_os_string(),
    ];
    let mut dash = support::pty::Dashboard::start_with(
        &args,
        &[
            ("APCA_API_KEY_ID", std::ffi::OsStr::new("PKTEST")),
            ("APCA_API_SECRET_KEY", std::ffi::OsStr::new("SECRETTEST")),
        ],
        d.dir.path().join("data"),
    );
    // The first check proposes BUY BTC/USD (and AAPL); the header has Alpaca's account.
    // The account and the external holding come from the same reconciliation, but a snapshot
    // may land between the first pending decision and it: wait for all of them.
    let screen = dash.wait_screen(
        "the broker's account, its holding and the pending BUY",
        |t| {
            t.contains("alpaca equity 100,000.00")
                && t.contains("Pending decisions (2)")
                && t.contains("external")
        },
    );
    assert!(screen.contains("buying power 200,000.00"), "{screen}");
    // Confirm the selected (newest) pending decision, AAPL in a fractional quantity: one
    // order at the broker, and its position says the engine holds its stops (Alpaca takes no
    // bracket for a fraction of a share).
    dash.press("y");
    let screen = dash.wait_screen("the position", |t| t.contains("Open positions (1)"));
    assert!(
        screen.contains("AAPL") && screen.contains("engine"),
        "{screen}"
    );
    assert_eq!(d.fake.post_count(), 1);
    dash.press("\u{3}");
}

#[test]
fn kill_flatten_closes_every_position_at_the_broker() {
    let d = desk(5.0);
    let btc = d.propose("BTC/USD", "1");
    assert_eq!(d.run(&["confirm", &btc]).0, 0);
    let aapl = d.propose("AAPL", "10");
    assert_eq!(d.run(&["confirm", &aapl]).0, 0);
    assert_eq!(d.positions().len(), 2);
    d.fake.set_price("BTC/USD", 101.0);
    d.fake.set_price("AAPL", 191.0);
    let (code, out, err) = d.run(&["kill", "--flatten"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("closed BUY 1 BTC/USD @ 101.00"), "{out}");
    assert!(out.contains("closed BUY 10 AAPL @ 191.00"), "{out}");
    assert!(d.positions().is_empty());
    // One closing order each, by client order id; the broker holds nothing more.
    assert_eq!(d.orders_for(&format!("{btc}-close-1")), 1);
    assert_eq!(d.orders_for(&format!("{aapl}-close-1")), 1);
    assert!(d.fake.positions().is_empty(), "{:?}", d.fake.positions());
    let st = d.status();
    assert_eq!(st["kill_switch"], true);
}

#[test]
fn a_command_line_confirm_and_an_api_confirm_racing_send_one_order() {
    let d = desk(5.0);
    let (server, base) = support::engine::serve(
        d.dir.path(),
        &[
            ("APCA_API_KEY_ID", "PKTEST"),
            ("APCA_API_SECRET_KEY", "SECRETTEST"),
        ],
    );
    // serve's first check proposes BUY BTC/USD.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let id = loop {
        let (_, out, _) = d.run(&["decisions", "--json", "--pending"]);
        if let Some(p) = json_lines(&out)
            .into_iter()
            .find(|p| p["decision"]["symbol"] == "BTC/USD")
        {
            break p["log_id"].as_str().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no pending BUY");
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cli = command(d.dir.path(), &["confirm", &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let api = rt.block_on(async {
        reqwest::Client::new()
            .post(format!(
                "{base}/api/v1/auto-trade/decisions/default/confirm"
            ))
            .json(&serde_json::json!({ "log_id": id }))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    let cli = cli.wait().unwrap().code();
    // One of them executed it; the other was refused (409 or exit 1).
    let wins = [api == 200, cli == Some(0)];
    assert_eq!(
        wins.iter().filter(|w| **w).count(),
        1,
        "api {api}, cli {cli:?}"
    );
    assert!(api == 200 || api == 409, "{api}");
    assert_eq!(d.orders_for(&id), 1);
    assert_eq!(d.fake.post_count(), 1);
    drop(server);
    assert_eq!(d.positions().len(), 1);
}

#[test]
fn a_partial_fill_is_recorded_as_it_comes_and_completed_by_the_next_check() {
    let d = desk(5.0);
    let id = d.propose("BTC/USD", "2");
    d.fake.set_fill_mode(FillMode::Partial(0.5));
    let (code, out, err) = d.run(&["confirm", &id]);
    assert_eq!(code, 0, "{out}{err}");
    let pos = d.positions();
    assert_eq!(pos.len(), 1);
    assert_eq!(pos[0]["quantity"], 1.0, "half of 2 so far: {pos:?}");
    assert_eq!(d.decision(&id)["status"], "executed");
    // The rest fills at the broker; the next check's reconciliation records it.
    d.fake.set_fill_mode(FillMode::Immediate);
    d.fake.complete(&id);
    assert_eq!(d.run(&["once"]).0, 0);
    let pos = d.positions();
    assert_eq!(pos[0]["quantity"], 2.0, "{pos:?}");
    assert_eq!(d.fake.post_count(), 1, "the rest was not ordered again");
}
