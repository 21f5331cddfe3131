#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Safety with the dashboard running: one engine per data dir (a second dashboard attaches to
//! it), the command line beside it, and a finger that presses `y` twice.

mod support;
use autotrade_tui::store::Status;
use support::pty::{Dashboard, wait_for};
use support::{bullish_btc, run};

#[test]
fn a_second_dashboard_attaches_to_the_first_and_acts_through_the_same_store() {
    let (_ml, dir) = bullish_btc();
    let mut first = Dashboard::start(dir.path());
    first.wait_screen("the pending BUY", |t| t.contains("Pending decisions (1)"));
    let engine_pid = first.child.process_id().expect("pid");
    // The second runs no loop of its own: it says whose engine it shows.
    let mut second = Dashboard::start(dir.path());
    let screen = second.wait_screen("attached", |t| {
        t.contains("ATTACHED") && t.contains("Pending decisions (1)")
    });
    assert!(screen.contains(&format!("pid {engine_pid}")), "{screen}");
    // `y` on the second executes the decision once; the first shows it.
    second.press("y");
    first.wait_screen("the position, on the first", |t| {
        t.contains("Open positions (1)")
    });
    second.wait_screen("the position, on the second", |t| {
        t.contains("Open positions (1)")
    });
    let store = first.store();
    assert_eq!(store.orders(10).unwrap().len(), 1);
    // The command line works beside both.
    let (code, out, err) = run(dir.path(), &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ENABLED"), "{out}");
    // Quitting the attached one leaves the engine running.
    second.press("\u{3}");
    assert_eq!(second.wait_exit(), 0);
    first.wait_screen("the first, still running", |t| t.contains("Signals"));
    // When the engine stops, an attached dashboard says so, and `r` runs it there.
    let mut third = Dashboard::start(dir.path());
    third.wait_screen("attached", |t| t.contains("ATTACHED"));
    first.press("\u{3}");
    assert_eq!(first.wait_exit(), 0);
    third.wait_screen("the engine stopped", |t| {
        t.contains("ENGINE STOPPED") && t.contains(&format!("pid {engine_pid}"))
    });
    third.press("r");
    third.wait_screen("the engine running here", |t| {
        t.contains("the engine runs in this dashboard now") && t.contains("next check in")
    });
    third.press("\u{3}");
    assert_eq!(third.wait_exit(), 0);
}

#[test]
fn a_command_line_confirm_shows_on_the_dashboard_and_is_never_undone() {
    let (ml, dir) = bullish_btc();
    let mut d = Dashboard::start(dir.path());
    d.wait_screen("the pending BUY", |t| t.contains("Pending decisions (1)"));
    let store = d.store();
    let id = store.decisions(10, Some(Status::Pending)).unwrap()[0]
        .log_id
        .clone();
    let (code, _, err) = run(dir.path(), &["confirm", &id]);
    assert_eq!(code, 0, "{err}");
    d.wait_screen("the confirm from the command line", |t| {
        t.contains("Open positions (1)") && t.contains("Pending decisions (0)")
    });
    // Further cycles run; the decision stays executed and nothing else is traded.
    let hits = ml.hits(&support::signal_path("BTC/USD"));
    wait_for("two more cycles", || {
        (ml.hits(&support::signal_path("BTC/USD")) >= hits + 2).then_some(())
    });
    assert_eq!(
        store.decision(&id).unwrap().unwrap().status,
        Status::Executed
    );
    assert_eq!(
        store.decisions(100, Some(Status::Executed)).unwrap().len(),
        1
    );
    assert_eq!(store.open_positions().unwrap().len(), 1);
    d.press("\u{3}");
    assert_eq!(d.wait_exit(), 0);
}

#[test]
fn y_pressed_twice_executes_once() {
    let (_ml, dir) = bullish_btc();
    let mut d = Dashboard::start(dir.path());
    d.wait_screen("the pending BUY", |t| t.contains("Pending decisions (1)"));
    let store = d.store();
    d.press("yy");
    d.wait_screen("the open position", |t| t.contains("Open positions (1)"));
    // Both key presses have been handled once the screen settles with no pending decision;
    // a third key round-trips through the same queue after them.
    d.press("?");
    d.wait_screen("the help screen", |t| t.contains("In a y/n question"));
    assert_eq!(
        store.decisions(100, Some(Status::Executed)).unwrap().len(),
        1
    );
    assert_eq!(store.open_positions().unwrap().len(), 1);
    let fills = store.fills(10).unwrap();
    assert_eq!(fills.len(), 1, "one fill: {fills:?}");
    d.press("?\u{3}");
    assert_eq!(d.wait_exit(), 0);
}

#[test]
fn a_dropped_ssh_session_quits_cleanly_and_frees_the_data_dir() {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    use std::io::Read;
    let (_ml, dir) = bullish_btc();
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(support::bin());
    cmd.arg("--config");
    cmd.arg(dir.path().join("config.toml"));
    cmd.arg("--data-dir");
    cmd.arg(dir.path().join("data"));
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("AUTOTRADE_WEBHOOK_URL");
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    // Read until the dashboard is up, then let go of every handle on the terminal: the
    // session is gone, as when an SSH connection drops.
    let mut reader = pair.master.try_clone_reader().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains("PAPER") {
                let _ = tx.send(());
                return;
            }
        }
    });
    rx.recv_timeout(support::pty::DEADLINE)
        .expect("the dashboard came up");
    let writer = pair.master.take_writer().unwrap();
    drop(writer);
    drop(pair.master);
    let lock = dir.path().join("data").join("dashboard.lock");
    let status = wait_for("the dashboard to quit after the hang-up", || {
        child.try_wait().unwrap()
    });
    assert!(status.success(), "{status:?}");
    drop(lock);
    assert!(
        autotrade_tui::lock::DashboardLock::acquire(&dir.path().join("data")).is_ok(),
        "the lock is released"
    );
    // The data dir is free for the next dashboard.
    let (code, _, err) = run(dir.path(), &["status"]);
    assert_eq!(code, 0, "{err}");
}
