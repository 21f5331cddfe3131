#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! The real binary in a pseudo-terminal at 120×40 against a loopback ML engine: what the
//! trader sees, what the keys do to the store, and that the terminal is given back.
//!
//! Synchronisation is by polling the screen (a vt100 parser fed by the pty) or the store
//! until a condition holds or a generous deadline passes: CI is a loaded 2-core machine.

mod support;

use autotrade_tui::store::Status;
use portable_pty::PtySize;
use std::time::{Duration, Instant};
use support::pty::{Dashboard, wait_for};
use support::{MlServer, signal_path, write_config};

/// BTC/USD actionable (BUY), ETH/USD neutral (HOLD); a check every 3 s.
fn setup() -> (MlServer, tempfile::TempDir) {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 45_000.0, "accumulation");
    ml.set_symbol("ETH/USD", "neutral", 0.6, 2_500.0, "manipulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\"]\ncheck_interval_minutes = 0.05\npending_expiry_minutes = 10",
        "",
    );
    (ml, dir)
}

fn pending_btc_on_screen(t: &str) -> bool {
    t.contains("Pending decisions (1)")
        && t.lines().any(|l| l.contains("▶ BUY  BTC/USD"))
        && t.contains("bullish 0.90")
        && t.contains("accumulation 0.80")
}

#[test]
fn y_executes_exactly_the_selected_decision_and_q_exits_cleanly() {
    let (ml, dir) = setup();
    let mut d = Dashboard::start(dir.path());
    let screen = d.wait_screen(
        "the BTC decision in the pending pane",
        pending_btc_on_screen,
    );
    assert!(screen.contains("PAPER"), "{screen}");
    assert!(screen.contains("ETH/USD"), "{screen}");
    assert!(!d.cooked(), "the dashboard runs in raw mode");

    let store = d.store();
    let pending = store.decisions(10, Some(Status::Pending)).unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let id = pending[0].log_id.clone();
    assert_eq!(pending[0].decision.symbol, "BTC/USD");

    d.press("y");
    wait_for("the decision to be executed", || {
        (store.decision(&id).unwrap()?.status == Status::Executed).then_some(())
    });
    d.wait_screen("the open position", |t| {
        t.contains("Open positions (1)") && t.contains("Pending decisions (0)")
    });

    // Two more cycles: BTC has an open position, so nothing is queued or executed again.
    let hits = ml.hits(&signal_path("BTC/USD"));
    wait_for("two more cycles", || {
        (ml.hits(&signal_path("BTC/USD")) >= hits + 2).then_some(())
    });
    let executed = store.decisions(100, Some(Status::Executed)).unwrap();
    assert_eq!(executed.len(), 1, "{executed:?}");
    assert_eq!(executed[0].log_id, id);
    assert!(
        store
            .decisions(100, Some(Status::Pending))
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.open_positions().unwrap().len(), 1);

    d.press("\u{3}");
    assert_eq!(d.wait_exit(), 0);
    d.assert_terminal_restored();
}

#[test]
fn command_line_cancel_shows_and_n_cancels_the_next_one() {
    let (_ml, dir) = setup();
    let mut d = Dashboard::start(dir.path());
    d.wait_screen("the BTC decision", pending_btc_on_screen);
    let store = d.store();
    let first = store.decisions(10, Some(Status::Pending)).unwrap()[0]
        .log_id
        .clone();

    // A second session cancels it from the command line; the dashboard shows it.
    let (code, out, err) = support::run(dir.path(), &["cancel", &first]);
    assert_eq!(code, 0, "{out}{err}");
    let shown = Instant::now();
    d.wait_screen("the cancel from the command line", |t| {
        t.contains(&format!("cancelled BUY BTC/USD ({first})"))
    });
    // The watcher polls every 500 ms; the SPEC allows 2 s (plus slack for a loaded CI).
    assert!(
        shown.elapsed() < Duration::from_secs(5),
        "{:?}",
        shown.elapsed()
    );

    // The next cycle queues BTC again; `n` on the dashboard cancels that one.
    let second = wait_for("a new pending decision", || {
        let p = store.decisions(10, Some(Status::Pending)).unwrap();
        p.first().map(|d| d.log_id.clone())
    });
    assert_ne!(second, first);
    d.wait_screen("the new decision selected", pending_btc_on_screen);
    d.press("n");
    wait_for("the dashboard's cancel", || {
        (store.decision(&second).unwrap()?.status == Status::Cancelled).then_some(())
    });
    assert_eq!(
        store.decision(&first).unwrap().unwrap().status,
        Status::Cancelled,
        "the dashboard never undoes the command line"
    );
    assert!(
        store
            .decisions(100, Some(Status::Executed))
            .unwrap()
            .is_empty()
    );

    d.press("\u{3}");
    assert_eq!(d.wait_exit(), 0);
    d.assert_terminal_restored();
}

#[test]
fn sigterm_and_sighup_quit_through_the_normal_path() {
    let (_ml, dir) = setup();
    for signal in ["-TERM", "-HUP"] {
        let mut d = Dashboard::start(dir.path());
        d.wait_screen("the dashboard", |t| t.contains("Signals"));
        let pid = d.child.process_id().expect("pid");
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(d.wait_exit(), 0, "{signal}");
        d.assert_terminal_restored();
    }
}

#[test]
fn after_a_resize_to_80x24_symbols_stay_readable_and_the_next_key_counts() {
    let (_ml, dir) = setup();
    let mut d = Dashboard::start(dir.path());
    d.wait_screen("the first cycle", pending_btc_on_screen);
    // A key first, so that any lazily started reader is already listening when the resize comes.
    d.press("?");
    d.wait_screen("the help", |t| t.contains("kill switch"));
    d.press("?");
    d.wait_screen("the help closed", |t| !t.contains("kill switch"));
    d.master
        .resize(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    d.screen.lock().unwrap().set_size(
        std::num::NonZeroU16::new(24).unwrap(),
        std::num::NonZeroU16::new(80).unwrap(),
    );
    // Redrawn for 80 columns (the resize was seen), then the next key must count at once,
    // not wait for another key (an edge-triggered reader loses it behind the resize).
    d.wait_screen("the redraw at 80 columns", |t| {
        t.lines()
            .any(|l| l.starts_with("┌ Signals (2)") && l.ends_with('┐') && l.chars().count() == 80)
    });
    d.press("?");
    d.wait_screen("the help", |t| {
        t.contains("Keys") && t.contains("kill switch")
    });
    d.press("\u{1b}");
    let screen = d.wait_screen("the dashboard at 80x24", |t| {
        !t.contains("kill switch")
            && t.contains("bullish 0.90")
            && t.contains("Open positions")
            && t.lines().count() <= 24
    });
    for s in ["BTC/USD", "ETH/USD", "neutral", "manipulation", "PAPER"] {
        assert!(screen.contains(s), "{s} missing:\n{screen}");
    }
    assert!(screen.lines().all(|l| l.chars().count() <= 80));
    d.press("\u{3}");
    assert_eq!(d.wait_exit(), 0);
    d.assert_terminal_restored();
}

#[test]
fn t_places_a_manual_trade_s_resizes_and_c_closes_after_y() {
    let (_ml, dir) = setup();
    let mut d = Dashboard::start(dir.path());
    d.wait_screen("the BTC decision", pending_btc_on_screen);
    let store = d.store();
    let btc = store.decisions(10, Some(Status::Pending)).unwrap()[0]
        .log_id
        .clone();

    // `t`: BTC/USD has a pending decision, so the form starts on ETH/USD (neutral: BUY).
    d.press("t");
    d.wait_screen("the trade form on ETH/USD", |t| {
        t.contains("New manual trade") && t.contains("◀ ETH/USD ▶") && t.contains("auto 0.8")
    });
    d.press("\t\t0.5");
    d.wait_screen("the live preview of size 0.5", |t| {
        // ETH/USD's signal is neutral: nothing supports the BUY, so it has no score.
        t.contains("BUY 0.5 ETH/USD @ 2,500.00 · value 1,250.00 · no signal support")
            && t.contains("risk 25.00 = 0.25% of account · SL 2.00% from entry")
            && t.contains("reward 62.50 = 0.63% of account · TP 5.00% from entry · R:R 2.50")
    });
    d.press("\r");
    let manual = wait_for("the manual trade in the store", || {
        store
            .decisions(10, Some(Status::Pending))
            .unwrap()
            .into_iter()
            .find(|l| l.decision.symbol == "ETH/USD")
    });
    assert_eq!(manual.origin, autotrade_tui::store::Origin::Manual);
    assert_eq!(manual.decision.position_size, 0.5);
    assert!(manual.decision.reasoning.starts_with("manual trade"));
    d.wait_screen("the manual trade on the dashboard", |t| {
        t.contains("Pending decisions (2)") && !t.contains("New manual trade")
    });

    // `s` on the selected BTC decision: a new size, shown with its risk/reward.
    d.press("s");
    d.wait_screen("the size form", |t| t.contains("New size"));
    d.press("0.01");
    d.wait_screen("the new risk/reward", |t| {
        t.contains("R:R 2.50") && t.contains("0.01")
    });
    d.press("\r");
    wait_for("the resize", || {
        (store.decision(&btc).unwrap()?.decision.position_size == 0.01).then_some(())
    });

    // Confirm it, then `c` on the position and `y`: closed, its P&L recorded.
    d.press("y");
    wait_for("the BTC position", || {
        store.open_positions().unwrap().into_iter().next()
    });
    d.wait_screen("the open position", |t| t.contains("Open positions (1)"));
    d.press("\tc");
    d.wait_screen("the close question", |t| {
        t.contains("Close position") && t.contains("Close BUY 0.01 BTC/USD")
    });
    d.press("y");
    let closed = wait_for("the close", || {
        store.closed_positions(1).unwrap().into_iter().next()
    });
    assert_eq!(closed.symbol, "BTC/USD");
    assert_eq!(closed.realized_pnl, Some(0.0), "closed at the entry price");
    d.wait_screen("the close in the events", |t| {
        t.contains("Open positions (0)") && t.contains("closed by trader on the dashboard")
    });

    d.press("\u{3}");
    assert_eq!(d.wait_exit(), 0);
    d.assert_terminal_restored();
}

/// A line of the screen shows `symbol` at `price`.
fn row(screen: &str, symbol: &str, price: &str) -> bool {
    screen
        .lines()
        .any(|l| l.contains(&format!("{symbol} {price}")))
}

#[test]
fn forty_symbols_page_down_to_the_last_one() {
    let ml = MlServer::start();
    let symbols: Vec<String> = (0..40).map(|i| format!("S{i:02}/USD")).collect();
    for (i, s) in symbols.iter().enumerate() {
        ml.set_symbol(s, "neutral", 0.6, 100.0 + i as f64, "manipulation");
    }
    let dir = tempfile::tempdir().unwrap();
    let list = symbols
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    write_config(
        dir.path(),
        Some(&ml.url),
        &format!("symbols = [{list}]\ncheck_interval_minutes = 60"),
        "",
    );
    let mut d = Dashboard::start(dir.path());
    d.wait_screen("the first nine symbols priced", |t| {
        t.contains("Signals 1–9 of 40") && row(t, "S08/USD", "108.000")
    });
    // Pending, positions, then the signals.
    d.press("\t\t");
    for _ in 0..4 {
        d.press("\x1b[6~");
    }
    let screen = d.wait_screen("the last symbol on screen", |t| {
        t.contains("Signals 32–40 of 40") && row(t, "S39/USD", "139.000")
    });
    assert!(!screen.contains("S30/USD"), "{screen}");
    // And back to the top in one key.
    d.press("g");
    d.wait_screen("the first symbol again", |t| {
        t.contains("Signals 1–9 of 40") && row(t, "S00/USD", "100.000")
    });
    d.quit();
}

#[test]
fn q_says_what_it_leaves_f_flattens_after_asking_and_e_asks_after_the_kill() {
    let (_ml, dir) = setup();
    let mut d = Dashboard::start(dir.path());
    d.wait_screen("the BTC decision", pending_btc_on_screen);
    let store = d.store();
    d.press("y");
    wait_for("the BTC position", || {
        store.open_positions().unwrap().into_iter().next()
    });
    d.wait_screen("the open position", |t| t.contains("Open positions (1)"));
    // `q` with a position open asks, saying that nothing watches its exits once this stops.
    d.press("q");
    d.wait_screen("the quit question", |t| {
        t.contains("Quitting stops the engine") && t.contains("(BTC/USD)")
    });
    d.press("n");
    d.wait_screen("the dashboard again", |t| !t.contains("Quitting stops"));
    // `F` names the position and how it closes; `y` closes it and turns the kill switch on.
    d.press("F");
    d.wait_screen("the flatten question", |t| {
        t.contains("Flatten") && t.contains("close 1 open position(s) (BTC/USD)")
    });
    d.press("y");
    wait_for("the flatten", || {
        store.open_positions().unwrap().is_empty().then_some(())
    });
    d.wait_screen("the kill switch on, nothing open", |t| {
        t.lines().next().is_some_and(|h| h.contains("KILL SWITCH"))
            && t.contains("Open positions (0)")
    });
    assert!(store.state().unwrap().kill_switch);
    // `e` after the kill asks first.
    d.press("e");
    d.wait_screen("the re-enable question", |t| {
        t.contains("Re-enable after the kill switch")
    });
    d.press("y");
    d.wait_screen("enabled again", |t| {
        t.lines()
            .next()
            .is_some_and(|h| h.contains("ENABLED") && !h.contains("KILL SWITCH"))
    });
    d.press("\u{3}");
    assert_eq!(d.wait_exit(), 0);
    d.assert_terminal_restored();
}
