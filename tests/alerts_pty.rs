#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap: a failure is the report.
//! Alerts on the dashboard's terminal, read from the pty's raw bytes: the bell and the OSC 9
//! and OSC 777 notifications for a new pending decision and a fill, none of them when the
//! config turns them off, nothing for what happened before a dashboard started, each alert
//! once on every dashboard that shows the events (its own engine's, one attached on the same
//! data dir, one attached to `serve` over HTTP), and the webhook posted once, by the process
//! that runs the engine.
//!
//! The store watcher sends a dashboard the alerts of a change before the snapshot that shows
//! it, and the UI loop writes them before it draws: once the screen shows a change, its
//! alert's bytes (if any) came first. So waiting for the screen is enough to assert absence.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::engine::serve;
use support::pty::{Dashboard, wait_for};
use support::webhook::WebhookServer;
use support::{MlServer, write_config};

/// What a pty received: standalone bells, and the OSC strings (without ESC ] and BEL).
struct Told {
    bells: usize,
    osc: Vec<String>,
}

impl Told {
    fn of(d: &Dashboard) -> Told {
        let raw = d.raw.lock().unwrap().clone();
        let mut bells = 0;
        let mut osc = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == 0x1b && raw.get(i + 1) == Some(&b']') {
                let start = i + 2;
                let mut j = start;
                // Ends at BEL or ST (ESC \).
                while j < raw.len()
                    && raw[j] != 0x07
                    && !(raw[j] == 0x1b && raw.get(j + 1) == Some(&b'\\'))
                {
                    j += 1;
                }
                osc.push(String::from_utf8_lossy(&raw[start..j.min(raw.len())]).into_owned());
                i = if raw.get(j) == Some(&0x07) {
                    j + 1
                } else {
                    j + 2
                };
                continue;
            }
            if raw[i] == 0x07 {
                bells += 1;
            }
            i += 1;
        }
        Told { bells, osc }
    }

    /// OSC 9 texts.
    fn osc9(&self) -> Vec<&str> {
        self.osc
            .iter()
            .filter_map(|s| s.strip_prefix("9;"))
            .collect()
    }

    /// OSC 777 `notify;title;body` strings.
    fn osc777(&self) -> Vec<&str> {
        self.osc
            .iter()
            .filter_map(|s| s.strip_prefix("777;"))
            .collect()
    }

    /// Notifications (OSC 9) whose text contains `needle`.
    fn count(&self, needle: &str) -> usize {
        self.osc9().iter().filter(|t| t.contains(needle)).count()
    }
}

/// A loopback ML engine bullish on BTC/USD at 45,000 (a check every 3 s), and a config
/// with `notifications` as its `[notifications]` table.
fn setup(notifications: &str) -> (MlServer, tempfile::TempDir) {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 45_000.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 0.05\npending_expiry_minutes = 10",
        &format!("\n[notifications]\n{notifications}\n"),
    );
    (ml, dir)
}

#[test]
fn a_pending_decision_and_its_fill_ring_the_bell_and_notify_the_desktop() {
    let (_ml, dir) = setup("");
    let mut d = Dashboard::start(dir.path());
    d.wait_screen("the pending BUY", |t| t.contains("Pending decisions (1)"));
    let told = Told::of(&d);
    assert_eq!(told.bells, 1, "{:?}", told.osc);
    let n9 = told.osc9();
    assert_eq!(n9.len(), 1, "{n9:?}");
    assert!(
        n9[0].starts_with("autotrade-tui: BUY BTC/USD pending - confidence 0.8"),
        "{n9:?}"
    );
    assert!(
        n9[0].contains("entry 45,000.00, TP 47,250.00, SL 44,100.00"),
        "{n9:?}"
    );
    let n777 = told.osc777();
    assert_eq!(n777.len(), 1, "{n777:?}");
    assert!(
        n777[0].starts_with("notify;autotrade-tui: BUY BTC/USD pending;confidence 0.8"),
        "{n777:?}"
    );
    d.press("y");
    let told = wait_for("the fill's notification", || {
        let t = Told::of(&d);
        (t.count("Filled BUY BTC/USD") == 1).then_some(t)
    });
    assert_eq!(told.bells, 2);
    assert_eq!(told.osc777().len(), 2);
    d.quit();
}

#[test]
fn bell_and_desktop_notifications_are_each_turned_off_by_the_config() {
    for (table, bell, desktop) in [
        ("bell = false\ndesktop = false", false, false),
        ("bell = false", false, true),
        ("desktop = false", true, false),
    ] {
        let (_ml, dir) = setup(table);
        let mut d = Dashboard::start(dir.path());
        d.wait_screen("the pending BUY", |t| t.contains("Pending decisions (1)"));
        d.press("y");
        d.wait_screen("the open position", |t| t.contains("Open positions (1)"));
        let told = Told::of(&d);
        assert_eq!(
            told.bells,
            if bell { 2 } else { 0 },
            "{table}: {:?}",
            told.osc
        );
        let notes = if desktop { 2 } else { 0 };
        assert_eq!(told.osc9().len(), notes, "{table}: {:?}", told.osc);
        assert_eq!(told.osc777().len(), notes, "{table}: {:?}", told.osc);
        d.quit();
    }
}

#[test]
fn old_events_do_not_ring_and_an_attached_dashboard_rings_each_alert_once() {
    let hook = WebhookServer::start();
    let (ml, dir) = setup(&format!("webhook_url = \"{}/hook\"", hook.url));
    // Before any dashboard: a pending BUY (from `once`) and a halt.
    support::once_json(dir.path());
    let store =
        autotrade_tui::store::Store::open(&dir.path().join("data"), "default", true).unwrap();
    store.add_event("halt", "HALTED: an old halt").unwrap();

    // The first dashboard runs the engine; its first check finds BTC pending (a HOLD).
    let checked = ml.hits(&support::signal_path("BTC/USD"));
    let a = Dashboard::start(dir.path());
    a.wait_screen("the old pending BUY", |t| {
        t.contains("Pending decisions (1)")
    });
    wait_for("the dashboard's first check", || {
        (ml.hits(&support::signal_path("BTC/USD")) > checked).then_some(())
    });
    store
        .add_event("halt", "HALTED: the first new halt")
        .unwrap();
    let told = wait_for("the new halt on the first dashboard", || {
        let t = Told::of(&a);
        (t.count("the first new halt") == 1).then_some(t)
    });
    assert_eq!(told.osc9().len(), 1, "only the new halt: {:?}", told.osc);
    assert_eq!(told.bells, 1);

    // A second dashboard attaches to it; the next halt rings on both, once each.
    let b = Dashboard::start(dir.path());
    b.wait_screen("attached", |t| {
        t.contains("ATTACHED") && t.contains("Pending decisions (1)")
    });
    store
        .add_event("halt", "HALTED: the second new halt")
        .unwrap();
    for (name, d) in [("the engine's dashboard", &a), ("the attached one", &b)] {
        wait_for(&format!("the second halt on {name}"), || {
            (Told::of(d).count("the second new halt") == 1).then_some(())
        });
    }
    let told_b = Told::of(&b);
    assert_eq!(told_b.osc9().len(), 1, "{:?}", told_b.osc);
    assert_eq!(told_b.osc777().len(), 1, "{:?}", told_b.osc);
    assert_eq!(told_b.bells, 1);

    // The webhook: posted by the engine's dashboard only, each new alert once (after the
    // endpoint's failed first try), nothing from before the start.
    let second = hook.wait_delivered("the second halt", Duration::from_secs(20), |v| {
        v["message"] == "the second new halt"
    });
    a.quit();
    b.quit();
    let tries = hook.tries_of(second["id"].as_str().unwrap());
    assert_eq!(
        tries.iter().map(|t| t.answered).collect::<Vec<_>>(),
        vec![500, 200],
        "posted by one process only"
    );
    let delivered = hook.delivered();
    let messages: Vec<&Value> = delivered.iter().map(|v| &v["message"]).collect();
    assert_eq!(
        messages,
        vec![&json!("the first new halt"), &json!("the second new halt")],
        "{delivered:#?}"
    );
}

#[test]
fn serve_posts_for_every_user_and_a_remote_dashboard_rings() {
    let hook = WebhookServer::start();
    let (_ml, dir) = setup(&format!("webhook_url = \"{}/hook\"", hook.url));
    let (_engine, url) = serve(dir.path(), &[]);
    // The file's user's pending BUY reached the webhook before the remote dashboard starts:
    // it is old news there.
    hook.wait_delivered("serve's pending BUY", Duration::from_secs(20), |v| {
        v["event"] == "pending" && v["user_id"] == "default"
    });
    let r = Dashboard::start_with(
        &["attach".into(), url.clone().into()],
        &[],
        dir.path().join("data"),
    );
    r.wait_screen("the remote dashboard with serve's pending BUY", |t| {
        t.contains("ATTACHED") && t.contains("Pending decisions (1)")
    });
    let told = Told::of(&r);
    assert_eq!(told.osc9().len(), 0, "the old pending rang: {:?}", told.osc);

    // A second user, made through the API: its alerts are posted too.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/api/v1/auto-trade/config"))
            .json(
                &json!({"config": {"user_id": "u2", "enabled": true, "symbols": ["BTC/USD"],
                                     "check_interval_minutes": 1}}),
            )
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(status.is_success(), "{status}");
    let u2 = hook.wait_delivered("u2's pending BUY", Duration::from_secs(20), |v| {
        v["event"] == "pending" && v["user_id"] == "u2"
    });
    assert!(
        u2["text"]
            .as_str()
            .unwrap()
            .starts_with("autotrade-tui [u2]: "),
        "{u2}"
    );

    // A halt of the file's user rings on the remote dashboard, through the events stream.
    let store =
        autotrade_tui::store::Store::open(&dir.path().join("data"), "default", true).unwrap();
    store
        .add_event("halt", "HALTED: drawdown 10.2% from the peak")
        .unwrap();
    wait_for("the halt on the remote dashboard", || {
        (Told::of(&r).count("drawdown 10.2%") == 1).then_some(())
    });
    hook.wait_delivered("the halt", Duration::from_secs(20), |v| {
        v["event"] == "halt"
    });
    let told = Told::of(&r);
    assert_eq!(told.osc9().len(), 1, "{:?}", told.osc);
    assert_eq!(told.bells, 1);
    r.quit();
    // Each alert posted once.
    let delivered = hook.delivered();
    let mut ids: Vec<&str> = delivered
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    let all = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all, "{delivered:#?}");
}
