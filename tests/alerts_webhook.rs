#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap: a failure is the report.
//! The webhook: every alert posted once, through an endpoint on 127.0.0.1 that fails the first
//! try; the back-off, `Retry-After`, refusals, a full queue and redirects; and `run` posting
//! a new pending decision, a fill, a take-profit, a stop-loss, a halt, an outage and the
//! recovery, each once, with its address nowhere in the data dir.

mod support;

use autotrade_tui::notify::{Alert, AlertKind, RetryPolicy, Webhook};
use autotrade_tui::store::Store;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::engine::{Engine, command};
use support::webhook::{FirstTry, WebhookServer};
use support::{MlServer, Reply, phase_path, signal_path, write_config};

/// Fast tries for the library-level tests: 20 ms, 40 ms, 80 ms …
fn fast() -> RetryPolicy {
    RetryPolicy {
        first: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        attempts: 4,
        max_retry_after: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
    }
}

fn alert(n: usize, kind: AlertKind) -> Alert {
    Alert {
        kind,
        key: format!("event:{n}"),
        user_id: "default".into(),
        symbol: Some("BTC/USD".into()),
        log_id: None,
        at: None,
        title: format!("alert {n}"),
        body: String::new(),
        fields: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_tried_again_after_the_back_off_and_delivered_once() {
    let hook = WebhookServer::start();
    let w = Webhook::start(&format!("{}/hook/SECRET", hook.url), fast()).unwrap();
    assert_eq!(w.host(), hook.url.trim_start_matches("http://"));
    w.push(&[alert(1, AlertKind::Halt)]);
    // The same alert read again (a second look at the store) is not sent again.
    w.push(&[alert(1, AlertKind::Halt)]);
    w.drained().await;
    let tries = hook.tries_of("event:1");
    assert_eq!(
        tries.iter().map(|t| t.answered).collect::<Vec<_>>(),
        vec![500, 200]
    );
    assert!(tries[1].at - tries[0].at >= Duration::from_millis(20));
    assert_eq!(tries[0].path, "/hook/SECRET");
    assert_eq!(hook.delivered().len(), 1);
    w.finish(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_out_its_retry_after() {
    let hook = WebhookServer::start();
    hook.first_try(
        "outage",
        FirstTry {
            status: 429,
            retry_after: Some("1"),
        },
    );
    let w = Webhook::start(&hook.url, fast()).unwrap();
    w.push(&[alert(7, AlertKind::Outage)]);
    w.drained().await;
    let tries = hook.tries_of("event:7");
    assert_eq!(
        tries.iter().map(|t| t.answered).collect::<Vec<_>>(),
        vec![429, 200]
    );
    // Not the 20 ms back-off: the second it asked for.
    assert!(
        tries[1].at - tries[0].at >= Duration::from_secs(1),
        "{:?}",
        tries[1].at - tries[0].at
    );
    w.finish(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_not_tried_again_and_the_next_alert_still_goes() {
    let hook = WebhookServer::start();
    hook.always(404);
    let w = Webhook::start(&hook.url, fast()).unwrap();
    w.push(&[alert(1, AlertKind::Fill), alert(2, AlertKind::Fill)]);
    w.drained().await;
    assert_eq!(hook.tries_of("event:1").len(), 1);
    assert_eq!(hook.tries_of("event:2").len(), 1);
    // Down for good (5xx every time): tried the policy's number of times, then dropped.
    let down = WebhookServer::start();
    down.always(503);
    let w2 = Webhook::start(&down.url, fast()).unwrap();
    w2.push(&[alert(3, AlertKind::Fill)]);
    w2.drained().await;
    assert_eq!(down.tries_of("event:3").len(), 4);
    w.finish(Duration::from_secs(1)).await;
    w2.finish(Duration::from_secs(1)).await;
}

/// An endpoint that holds every request until released, and counts them by id.
struct Held {
    url: String,
    got: Arc<Mutex<Vec<String>>>,
    release: Arc<tokio::sync::Semaphore>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn held() -> Held {
    let got = Arc::new(Mutex::new(Vec::new()));
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let (g, r) = (got.clone(), release.clone());
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let (g, r) = (g.clone(), r.clone());
        async move {
            let v: Value = serde_json::from_slice(&body).unwrap();
            g.lock()
                .unwrap()
                .push(v["id"].as_str().unwrap().to_string());
            r.acquire().await.unwrap().forget();
            "ok"
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, _thread) = support::serve_app(app, async {
        let _ = stopped.await;
    });
    Held {
        url: format!("http://{addr}"),
        got,
        release,
        _stop: stop,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_the_oldest_and_never_blocks() {
    let h = held();
    let w = Webhook::start(&h.url, fast()).unwrap();
    w.push(&[alert(0, AlertKind::Fill)]);
    // The first is in flight, held by the endpoint.
    let start = Instant::now();
    while h.got.lock().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "nothing arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let queue = autotrade_tui::notify::webhook::QUEUE;
    let extra = 40;
    let burst: Vec<Alert> = (1..=queue + extra)
        .map(|n| alert(n, AlertKind::Fill))
        .collect();
    let pushed = Instant::now();
    w.push(&burst);
    assert!(pushed.elapsed() < Duration::from_millis(500), "push waited");
    h.release.add_permits(queue + extra + 1);
    w.drained().await;
    let got = h.got.lock().unwrap().clone();
    let want: Vec<String> = std::iter::once(0)
        .chain(extra + 1..=queue + extra)
        .map(|n| format!("event:{n}"))
        .collect();
    assert_eq!(got, want);
    w.finish(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_redirect_to_another_host_is_followed() {
    let other = WebhookServer::start();
    let target = format!("{}/elsewhere", other.url.replace("127.0.0.1", "localhost"));
    let tries = Arc::new(Mutex::new(0usize));
    let t = tries.clone();
    let app = axum::Router::new().fallback(move || {
        let t = t.clone();
        let target = target.clone();
        async move {
            *t.lock().unwrap() += 1;
            axum::http::Response::builder()
                .status(307)
                .header("location", target)
                .body(axum::body::Body::empty())
                .unwrap()
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, _thread) = support::serve_app(app, async {
        let _ = stopped.await;
    });
    let w = Webhook::start(&format!("http://{addr}/hook"), fast()).unwrap();
    w.push(&[alert(1, AlertKind::Halt)]);
    w.drained().await;
    assert_eq!(
        *tries.lock().unwrap(),
        1,
        "a redirect is a refusal, not retried"
    );
    assert!(other.tries().is_empty(), "followed to another host");
    w.finish(Duration::from_secs(1)).await;
    let _ = stop.send(());
}

/// Every file under `dir`, as bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
        }
    }
    out
}

/// The ML engine's BTC/USD: bullish in accumulation at `entry` (TP +5 %, SL -2 %).
fn btc_at(ml: &MlServer, entry: f64) {
    ml.set_symbol("BTC/USD", "bullish", 0.9, entry, "accumulation");
}

#[test]
fn run_posts_each_kind_of_alert_once_through_a_failing_first_try() {
    let hook = WebhookServer::start();
    // The halt's first try is a 429 that names its wait; every other first try a 500.
    hook.first_try(
        "halt",
        FirstTry {
            status: 429,
            retry_after: Some("1"),
        },
    );
    let ml = MlServer::start();
    btc_at(&ml, 45_000.0);
    let dir = tempfile::tempdir().unwrap();
    let secret = "T000/B000/SECRET-PATH-xyz";
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 0.05\npending_expiry_minutes = 10",
        &format!(
            "\n[notifications]\nwebhook_url = \"{}/{secret}\"\n",
            hook.url
        ),
    );
    let mut engine = Engine::spawn(command(dir.path(), &["run"], &[]));
    engine.line_with("engine running");
    let limit = Duration::from_secs(30);
    let on = |event: &'static str, log_id: Option<String>| {
        move |v: &Value| v["event"] == event && log_id.as_ref().is_none_or(|id| v["log_id"] == *id)
    };

    // A new pending decision.
    let pending = hook.wait_delivered("a pending alert", limit, on("pending", None));
    assert_eq!(pending["symbol"], "BTC/USD");
    assert_eq!(pending["user_id"], "default");
    assert_eq!(pending["action"], "BUY");
    let first = pending["log_id"].as_str().unwrap().to_string();
    assert!(
        pending["text"]
            .as_str()
            .unwrap()
            .contains("BUY BTC/USD pending")
    );

    // Confirmed from the command line beside the engine: a fill.
    let (code, out, err) = support::run(dir.path(), &["confirm", &first]);
    assert_eq!(code, 0, "{out}{err}");
    let fill = hook.wait_delivered("the fill", limit, on("fill", Some(first.clone())));
    assert_eq!(fill["side"], "BUY");

    // The next check prices BTC above the take-profit (47,250): closed there.
    btc_at(&ml, 48_000.0);
    let tp = hook.wait_delivered(
        "the take-profit",
        limit,
        on("take_profit", Some(first.clone())),
    );
    assert!(tp["realized_pnl"].as_f64().unwrap() > 0.0, "{tp}");

    // A new BUY at 48,000, confirmed, then a price under its stop (47,040).
    let second = hook.wait_delivered("a second pending alert", limit, |v| {
        v["event"] == "pending" && v["log_id"] != first.as_str()
    });
    let second = second["log_id"].as_str().unwrap().to_string();
    let (code, out, err) = support::run(dir.path(), &["confirm", &second]);
    assert_eq!(code, 0, "{out}{err}");
    hook.wait_delivered("the second fill", limit, on("fill", Some(second.clone())));
    btc_at(&ml, 46_000.0);
    let sl = hook.wait_delivered(
        "the stop-loss",
        limit,
        on("stop_loss", Some(second.clone())),
    );
    assert!(sl["realized_pnl"].as_f64().unwrap() < 0.0, "{sl}");

    // A loss halt, as the risk guard records it.
    let store = Store::open(&dir.path().join("data"), "default", true).unwrap();
    store
        .add_event("halt", "HALTED: daily loss 3.10% reached the 3.00% limit")
        .unwrap();
    let halt = hook.wait_delivered("the halt", limit, on("halt", None));
    assert!(
        halt["message"]
            .as_str()
            .unwrap()
            .contains("daily loss 3.10%")
    );

    // The ML engine answers 503 for every symbol: one outage alert, however many checks fail.
    for p in [signal_path("BTC/USD"), phase_path("BTC/USD")] {
        ml.set(&p, Reply::status(503, "{\"detail\":\"overloaded\"}"));
    }
    hook.wait_delivered("the outage", limit, on("outage", None));
    let failed = ml.hits(&signal_path("BTC/USD"));
    support::pty::wait_for("another failed check", || {
        (ml.hits(&signal_path("BTC/USD")) > failed).then_some(())
    });
    btc_at(&ml, 46_000.0);
    hook.wait_delivered("the recovery", limit, on("recovered", None));

    engine.signal("TERM");
    assert!(engine.exit_within(Duration::from_secs(20)).success());

    // Each alert once, each after a failed first try; one outage for the whole outage.
    let delivered = hook.delivered();
    let mut ids: Vec<&str> = delivered
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    let all = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all, "an alert delivered twice: {delivered:#?}");
    for id in &ids {
        let tries = hook.tries_of(id);
        assert_eq!(tries.len(), 2, "{id}: {tries:?}");
        assert!(
            tries[0].answered == 500 || tries[0].answered == 429,
            "{tries:?}"
        );
        assert_eq!(tries[1].answered, 200);
    }
    let count = |event: &str| delivered.iter().filter(|v| v["event"] == event).count();
    assert_eq!(count("outage"), 1, "{delivered:#?}");
    assert_eq!(count("recovered"), 1, "{delivered:#?}");
    assert_eq!(count("halt"), 1);
    let halt_tries = hook.tries_of(halt["id"].as_str().unwrap());
    assert_eq!(halt_tries[0].answered, 429);
    assert!(halt_tries[1].at - halt_tries[0].at >= Duration::from_secs(1));
    // The address is a secret: in no body, and nowhere in the data dir (store, logs).
    for v in &delivered {
        assert!(!v.to_string().contains("SECRET-PATH"), "{v}");
    }
    for (path, bytes) in files_under(&dir.path().join("data")) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("SECRET-PATH"), "{} has it", path.display());
    }
    assert!(!engine.stderr().contains("SECRET-PATH"));
}

#[test]
fn the_environment_s_webhook_takes_the_file_s_place_and_is_never_echoed() {
    let ml = MlServer::start();
    btc_at(&ml, 45_000.0);
    let dir = tempfile::tempdir().unwrap();
    let file_hook = WebhookServer::start();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 0.05",
        &format!(
            "\n[notifications]\nwebhook_url = \"{}/file\"\n",
            file_hook.url
        ),
    );
    // Not a URL: a config error (exit 2) that names the variable, never its value.
    let out = command(
        dir.path(),
        &["status"],
        &[("AUTOTRADE_WEBHOOK_URL", "hooks.example/SECRET-PATH")],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AUTOTRADE_WEBHOOK_URL must be an http:// or https:// URL"),
        "{err}"
    );
    assert!(!err.contains("SECRET-PATH"), "{err}");
    // A URL: `run` posts there, and not to the file's address.
    let hook = WebhookServer::start();
    let env_url = format!("{}/env/SECRET-PATH", hook.url);
    let mut engine = Engine::spawn(command(
        dir.path(),
        &["run"],
        &[("AUTOTRADE_WEBHOOK_URL", env_url.as_str())],
    ));
    engine.line_with("engine running");
    hook.wait_delivered("the pending alert", Duration::from_secs(30), |v| {
        v["event"] == "pending"
    });
    assert_eq!(hook.tries()[0].path, "/env/SECRET-PATH");
    engine.signal("TERM");
    assert!(engine.exit_within(Duration::from_secs(20)).success());
    assert!(file_hook.tries().is_empty(), "posted to the file's address");
    for (path, bytes) in files_under(&dir.path().join("data")) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("SECRET-PATH"),
            "{} has it",
            path.display()
        );
    }
}
