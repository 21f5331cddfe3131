#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap: a failure is the report.
//! The engine runs without a dashboard (`serve` here), and dashboards come and go: each
//! attaches to it on the same data dir, acts through the same store, and neither quitting,
//! `kill -9` nor a hang-up of a dashboard stops the engine.

mod support;
use support::engine::serve;
use support::pty::{Dashboard, wait_for};
use support::{bin, bullish_btc, signal_path};

#[test]
fn dashboards_attach_to_serve_and_never_stop_it() {
    let (ml, dir) = bullish_btc();
    let (mut engine, _) = serve(dir.path(), &[]);
    let engine_pid = engine.pid();
    let mut a = Dashboard::start(dir.path());
    let screen = a.wait_screen("attached, with serve's pending BUY", |t| {
        t.contains("ATTACHED") && t.contains("Pending decisions (1)")
    });
    assert!(screen.contains(&format!("pid {engine_pid}")), "{screen}");
    let mut b = Dashboard::start(dir.path());
    b.wait_screen("a second attached dashboard", |t| {
        t.contains("ATTACHED") && t.contains("Pending decisions (1)")
    });
    // `y` on one executes it once; the other shows the result.
    a.press("y");
    b.wait_screen("the position on the other dashboard", |t| {
        t.contains("Open positions (1)")
    });
    assert_eq!(a.store().orders(10).unwrap().len(), 1);
    // `kill -9` of a dashboard: the engine runs on and keeps deciding.
    a.child.kill().unwrap();
    a.wait_exit();
    let asked = ml.hits(&signal_path("BTC/USD"));
    wait_for("serve's next check after the kill", || {
        (ml.hits(&signal_path("BTC/USD")) > asked).then_some(())
    });
    assert!(engine.child.try_wait().unwrap().is_none(), "serve stopped");
    // A hang-up (the SSH session dropped) quits the attached dashboard, never the engine.
    let pid = b.child.process_id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(b.wait_exit(), 0);
    let asked = ml.hits(&signal_path("BTC/USD"));
    wait_for("serve's next check after the hang-up", || {
        (ml.hits(&signal_path("BTC/USD")) > asked).then_some(())
    });
    assert!(engine.child.try_wait().unwrap().is_none(), "serve stopped");
}

/// `attach URL` in a pseudo-terminal, with `token` as `AUTOTRADE_API_TOKEN`.
fn attach(url: &str, token: &str, data: std::path::PathBuf) -> Dashboard {
    Dashboard::start_with(
        &["attach".into(), url.into()],
        &[("AUTOTRADE_API_TOKEN", std::ffi::OsStr::new(token))],
        data,
    )
}

#[test]
fn remote_dashboards_attach_to_serve_through_its_api_with_a_token() {
    let (_ml, dir) = bullish_btc();
    let (_engine, url) = serve(dir.path(), &[("AUTOTRADE_API_TOKEN", "s3cret-token")]);
    // A wrong token is refused with a message, before the terminal is taken.
    let wrong = std::process::Command::new(bin())
        .args(["attach", &url])
        .env("AUTOTRADE_API_TOKEN", "wrong")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("refused the token: wrong bearer token"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    // The right one: the server's pending BUY, and `y` executes it once.
    let mut a = attach(&url, "s3cret-token", dir.path().join("data"));
    let screen = a.wait_screen("the remote dashboard with its pending BUY", |t| {
        t.contains("ATTACHED") && t.contains("Pending decisions (1)")
    });
    assert!(screen.contains(&url), "{screen}");
    let mut b = attach(&url, "s3cret-token", dir.path().join("data"));
    b.wait_screen("a second remote dashboard", |t| {
        t.contains("Pending decisions (1)")
    });
    a.press("y");
    // The other one hears of it through the events stream.
    b.wait_screen("the position on the other remote dashboard", |t| {
        t.contains("Open positions (1)")
    });
    a.wait_screen("the position on the first", |t| {
        t.contains("Open positions (1)")
    });
    assert_eq!(a.store().orders(10).unwrap().len(), 1);
    // `c` then `y` closes it through the API; the other dashboard sees it go.
    a.press("c");
    a.wait_screen("the close question", |t| {
        t.contains("y/n") || t.contains("Close")
    });
    a.press("y");
    b.wait_screen("the position closed, on the other", |t| {
        t.contains("Open positions (0)")
    });
    // The history view comes from the server too.
    a.press("h");
    a.wait_screen("the history with the closed trade", |t| {
        t.contains("closed through the API")
    });
    // `q` closes the history view, a second one quits.
    a.press("q");
    a.wait_screen("the dashboard again", |t| t.contains("Signals"));
    a.press("\u{3}");
    assert_eq!(a.wait_exit(), 0);
    b.press("\u{3}");
    assert_eq!(b.wait_exit(), 0);
}
