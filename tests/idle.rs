#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! Between checks the loop sleeps until something is due: a pending decision still expires
//! on time, whether the loop queued it or another connection did (the command line, an
//! agent), with or without a feed of store changes (the dashboard's watcher gives one).

mod support;
use autotrade_tui::config;
use autotrade_tui::desk::{CycleInput, Desk};
use autotrade_tui::engine::{Engine, EngineCommand, EngineEvent};
use autotrade_tui::store::{self, Status, Store};
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::sync::{Notify, mpsc};

/// 0.01 min: 600 ms.
const EXPIRY_MS: i64 = 600;
/// How late an expiry may be seen: the loop wakes one ms after it; the rest is a busy machine.
const LATE_MS: i64 = 1500;

struct Loop {
    _ml: MlServer,
    dir: tempfile::TempDir,
    cfg: Arc<config::Config>,
    store: Arc<Store>,
    cmd: mpsc::Sender<EngineCommand>,
    handle: tokio::task::JoinHandle<()>,
}

/// A loop over BTC/USD that checks once an hour, after its first cycle has finished.
async fn start(direction: &str, changes: Option<Arc<Notify>>) -> Loop {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", direction, 0.9, 100.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config::parse_str(
        &format!(
            "[auto_trade]\nsymbols = [\"BTC/USD\"]\ncheck_interval_minutes = 60\npending_expiry_minutes = 0.01\n[ml_engine]\nurl = \"{}\"\n",
            ml.url
        ),
        "test",
    )
    .unwrap();
    let cfg = Arc::new(cfg);
    let store = Arc::new(Store::open(dir.path(), "default", true).unwrap());
    let desk = Desk::new(cfg.clone(), dir.path().into(), store.clone());
    let mut engine = Engine::new(desk.clone(), desk.source().unwrap());
    if let Some(c) = changes {
        engine = engine.with_store_changes(c);
    }
    let (tx, mut rx) = mpsc::channel(64);
    let (cmd, handle) = engine.spawn(tx);
    // The first cycle is done once the next check is announced.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(EngineEvent::NextCheck { .. })) => break,
            Ok(Some(_)) => {}
            other => panic!("the first cycle did not finish: {other:?}"),
        }
    }
    // Keep draining events so the loop never waits on a full channel.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    Loop {
        _ml: ml,
        dir,
        cfg,
        store,
        cmd,
        handle,
    }
}

impl Loop {
    /// Queue a BUY from another connection, as an agent or the command line would.
    fn queue_from_elsewhere(&self) -> String {
        let other = Arc::new(Store::open(self.dir.path(), "default", true).unwrap());
        let desk = Desk::new(self.cfg.clone(), self.dir.path().into(), other);
        let signal = Ok(signal("bullish", 0.9, 100.0));
        let phase = Ok(phase("accumulation", 0.8));
        let out = desk
            .record_agent_decision(&CycleInput {
                symbol: "BTC/USD",
                signal: &signal,
                phase: &phase,
                price: Some(100.0),
            })
            .unwrap();
        assert_eq!(out.log.status, Status::Pending);
        out.log.log_id
    }

    /// Wait for `log_id` to expire; how long after its creation it was seen expired (ms).
    async fn expired_after(&self, log_id: &str) -> i64 {
        let created = self.store.decision(log_id).unwrap().unwrap().created_at_ms;
        let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let d = self.store.decision(log_id).unwrap().unwrap();
            if d.status == Status::Expired {
                return store::now_ms() - created;
            }
            assert_eq!(d.status, Status::Pending);
            assert!(
                tokio::time::Instant::now() < give_up,
                "{log_id} never expired"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(self) {
        let _ = self.cmd.send(EngineCommand::Stop).await;
        let _ = self.handle.await;
    }
}

fn assert_on_time(after_ms: i64) {
    assert!(
        (EXPIRY_MS..EXPIRY_MS + LATE_MS).contains(&after_ms),
        "expired {after_ms} ms after creation, expiry {EXPIRY_MS} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_the_loop_queued_expires_on_time() {
    let changes = Arc::new(Notify::new());
    let l = start("bullish", Some(changes)).await;
    let pending = l.store.decisions(10, Some(Status::Pending)).unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_on_time(l.expired_after(&pending[0].log_id).await);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_queued_elsewhere_expires_on_time_once_the_loop_is_told() {
    let changes = Arc::new(Notify::new());
    let l = start("neutral", Some(changes.clone())).await;
    assert!(
        l.store
            .decisions(10, Some(Status::Pending))
            .unwrap()
            .is_empty()
    );
    let id = l.queue_from_elsewhere();
    // What the dashboard's store watcher does on every commit it sees.
    changes.notify_one();
    assert_on_time(l.expired_after(&id).await);
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_change_feed_the_loop_still_finds_and_expires_it() {
    let l = start("neutral", None).await;
    let id = l.queue_from_elsewhere();
    assert_on_time(l.expired_after(&id).await);
    l.stop().await;
}
