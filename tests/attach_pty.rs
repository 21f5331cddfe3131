#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap: a failure is the report.
//! The engine runs without a dashboard (`serve` here), and dashboards come and go: each
//! attaches to it on the same data dir, acts through the same store, and neither quitting,
//! `kill -9` nor a hang-up of a dashboard stops the engine.

mod support;
use std::io::BufRead;
use support::pty::{Dashboard, wait_for};
use support::{MlServer, bin, signal_path, write_config};

struct Serve {
    child: std::process::Child,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` on the data dir, once it listens.
fn serve(dir: &std::path::Path) -> Serve {
    let mut child = std::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.join("config.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .env_remove("AUTOTRADE_API_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("listening on http://") => break,
            Some(Ok(_)) => {}
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve never listened");
            }
        }
    }
    // Keep reading its stdout so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Serve { child }
}

#[test]
fn dashboards_attach_to_serve_and_never_stop_it() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 45_000.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 0.05\npending_expiry_minutes = 10",
        "",
    );
    let mut engine = serve(dir.path());
    let engine_pid = engine.child.id();
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
