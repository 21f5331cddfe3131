//! Shared by the end-to-end bench binaries: a loopback ML engine, the real binary in a
//! pseudo-terminal with a vt100 screen, and medians.
#![allow(dead_code)]

use autotrade_tui::domain::rules::{Decision, RiskReward};
use autotrade_tui::domain::{Phase, Verdict};
use autotrade_tui::store::{Origin, Status, Store};
use axum::body::Body;
use axum::http::{Response, Uri};
use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ROWS: u16 = 40;
pub const COLS: u16 = 120;
pub const DEADLINE: Duration = Duration::from_secs(20);

/// An ML engine on 127.0.0.1 on its own runtime thread: every symbol gets the same answer.
pub struct MlEngine {
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

impl MlEngine {
    /// `bullish`: a BUY in accumulation (actionable); else neutral in manipulation (HOLD).
    pub fn start(bullish: bool) -> MlEngine {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("engine runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        rt.spawn(async move {
            let app = axum::Router::new().fallback(move |uri: Uri| answer(uri, bullish));
            let _ = axum::serve(listener, app).await;
        });
        MlEngine {
            url: format!("http://{addr}"),
            _runtime: rt,
        }
    }
}

async fn answer(uri: Uri, bullish: bool) -> Response<Body> {
    let body = match (uri.path().contains("/signals/"), bullish) {
        (true, true) => {
            r#"{"direction":"bullish","confidence":0.9,"entry_price":100.0,"take_profit":105.0,"stop_loss":98.0,"risk_reward_ratio":2.5}"#
        }
        (true, false) => {
            r#"{"direction":"neutral","confidence":0.6,"entry_price":100.0,"take_profit":105.0,"stop_loss":98.0,"risk_reward_ratio":2.5}"#
        }
        (false, true) => r#"{"phase":"accumulation","confidence":0.8,"indicators":{}}"#,
        (false, false) => r#"{"phase":"manipulation","confidence":0.55,"indicators":{}}"#,
    };
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// `S0/USD`, `S1/USD`, …
pub fn symbols(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("S{i}/USD")).collect()
}

/// A config file in `dir`; `ml_url` None means the simulated market.
pub fn write_config(dir: &Path, symbols: &[String], ml_url: Option<&str>, extra: &str) {
    let mut toml =
        format!("[auto_trade]\nsymbols = {symbols:?}\ncheck_interval_minutes = 60\n{extra}\n");
    if let Some(url) = ml_url {
        toml.push_str(&format!("[ml_engine]\nurl = \"{url}\"\n"));
    }
    std::fs::write(dir.join("config.toml"), toml).expect("write config");
}

/// Each marker and when it first showed on the screen.
type Seen = Arc<Mutex<Vec<(String, Option<Instant>)>>>;

/// The real binary in a pty at 120×40; the screen is fed by a reader thread that also
/// notes when each marker first appeared.
pub struct Dashboard {
    pub spawned_at: Instant,
    pub writer: Box<dyn Write + Send>,
    pub child: Box<dyn Child + Send + Sync>,
    pub screen: Arc<Mutex<vt100::Parser>>,
    seen: Seen,
    _master: Box<dyn MasterPty + Send>,
}

impl Dashboard {
    /// Start `autotrade-tui --config dir/config.toml --data-dir dir/data`, watching for `markers`.
    pub fn start(dir: &Path, markers: &[&str]) -> Dashboard {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_autotrade-tui"));
        cmd.arg("--config");
        cmd.arg(dir.join("config.toml"));
        cmd.arg("--data-dir");
        cmd.arg(dir.join("data"));
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("AUTOTRADE_CONFIG");
        cmd.env_remove("AUTOTRADE_DATA_DIR");
        cmd.env_remove("NO_COLOR");
        let seen: Seen = Arc::new(Mutex::new(
            markers.iter().map(|m| (m.to_string(), None)).collect(),
        ));
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(ROWS).expect("rows"),
            std::num::NonZeroU16::new(COLS).expect("cols"),
            0,
        )));
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = pair.master.take_writer().expect("pty writer");
        let spawned_at = Instant::now();
        let child = pair.slave.spawn_command(cmd).expect("spawn the dashboard");
        drop(pair.slave);
        let (s, m) = (screen.clone(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                let mut parser = s.lock().expect("screen");
                parser.process(&buf[..n]);
                let mut marks = m.lock().expect("markers");
                if marks.iter().any(|(_, t)| t.is_none()) {
                    let text = parser.screen().contents();
                    for (marker, t) in marks.iter_mut() {
                        if t.is_none() && text.contains(marker.as_str()) {
                            *t = Some(now);
                        }
                    }
                }
            }
        });
        Dashboard {
            spawned_at,
            writer,
            child,
            screen,
            seen,
            _master: pair.master,
        }
    }

    pub fn text(&self) -> String {
        self.screen.lock().expect("screen").screen().contents()
    }

    /// When `marker` first showed, after the spawn; waits for it up to the deadline.
    pub fn marker_after_spawn(&self, marker: &str) -> Duration {
        let at = wait_for(&format!("{marker:?} on the screen"), || {
            self.seen
                .lock()
                .expect("markers")
                .iter()
                .find(|(m, _)| m == marker)
                .and_then(|(_, t)| *t)
        });
        at - self.spawned_at
    }

    pub fn wait_screen(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        wait_for(what, || {
            let t = self.text();
            f(&t).then_some(t)
        })
    }

    pub fn press(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).expect("write key");
        self.writer.flush().expect("flush key");
    }

    /// `q`, then wait for the exit.
    pub fn quit(mut self) {
        self.press("q");
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        panic!("the dashboard did not quit; screen:\n{}", self.text());
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `f` every millisecond until it returns Some; panic after the deadline.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `median 4.2 ms  min … p90 … max … (n runs)`.
pub fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = times.len();
    format!(
        "median {:>7.1} ms  min {:>7.1}  p90 {:>7.1}  max {:>7.1}  ({n} runs)",
        ms(times[n / 2]),
        ms(times[0]),
        ms(times[(n * 9 / 10).min(n - 1)]),
        ms(times[n - 1]),
    )
}

/// The 1-minute load average, for the report.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A store that has traded for a while: `n` decisions over `symbols`, one in ten a BUY; of the
/// BUYs, half were executed (a position, closed at its take-profit, with both fills and their
/// events) and half cancelled; the rest are HOLDs. Loaded through the store's bulk insert in
/// batches, then the history in one SQL transaction (one transaction per decision would take
/// minutes at synchronous=FULL).
pub fn fill_store(data_dir: &Path, symbols: &[String], n: usize) {
    let store = Store::open(data_dir, "default", true).expect("store");
    let batch = 1000;
    for chunk in 0..n.div_ceil(batch) {
        let decisions: Vec<Decision> = (0..batch.min(n - chunk * batch))
            .map(|i| {
                let k = chunk * batch + i;
                let actionable = k % 10 == 0;
                Decision {
                    symbol: symbols[k % symbols.len()].clone(),
                    action: if actionable {
                        Verdict::Buy
                    } else {
                        Verdict::Hold
                    },
                    confidence: 0.8,
                    reasoning: "bench".into(),
                    entry_price: Some(100.0),
                    take_profit: Some(105.0),
                    stop_loss: Some(98.0),
                    position_size: if actionable { 1.0 } else { 0.0 },
                    ml_signal: serde_json::json!({"direction": "bullish", "confidence": 0.84}),
                    amd_phase: Some(Phase::Accumulation),
                    risk_reward: actionable.then_some(RiskReward {
                        risk_amount: 2.0,
                        reward_amount: 5.0,
                        risk_reward_ratio: 2.5,
                        risk_percent: 2.0,
                        reward_percent: 5.0,
                    }),
                }
            })
            .collect();
        store
            .insert_decisions_bulk(&decisions, Status::Hold, Origin::Auto, "paper")
            .expect("bulk insert");
    }
    drop(store);
    let mut conn = rusqlite::Connection::open(data_dir.join("autotrade.db")).expect("open db");
    let tx = conn.transaction().expect("transaction");
    tx.execute_batch(
        "UPDATE decisions SET
             status = CASE WHEN (seq / 10) % 2 = 0 THEN 'executed' ELSE 'cancelled' END,
             executed_at = CASE WHEN (seq / 10) % 2 = 0 THEN created_at END
         WHERE action = 'BUY';
         INSERT INTO positions (user_id, decision_id, symbol, side, quantity, entry_price,
             take_profit, stop_loss, opened_at, mode, status, closed_at, exit_price,
             realized_pnl, close_reason)
         SELECT user_id, log_id, symbol, action, position_size, entry_price, take_profit,
             stop_loss, created_at, mode, 'closed', created_at + 60000, take_profit, 5.0,
             'take-profit'
         FROM decisions WHERE status = 'executed' ORDER BY seq;
         INSERT INTO fills (user_id, position_id, decision_id, symbol, side, quantity, price,
             at, kind, reason)
         SELECT user_id, id, decision_id, symbol, side, quantity, entry_price, opened_at,
             'open', 'decision executed' FROM positions;
         INSERT INTO fills (user_id, position_id, decision_id, symbol, side, quantity, price,
             at, kind, reason)
         SELECT user_id, id, decision_id, symbol, 'SELL', quantity, exit_price, closed_at,
             'close', 'take-profit' FROM positions;
         INSERT INTO events (user_id, at, level, message)
         SELECT user_id, opened_at, 'info', 'executed BUY 1 ' || symbol || ' @ 100 (paper, '
             || decision_id || ')' FROM positions;
         INSERT INTO events (user_id, at, level, message)
         SELECT user_id, closed_at, 'info', 'closed BUY 1 ' || symbol || ' take-profit: +5.00'
             FROM positions;",
    )
    .expect("history");
    tx.commit().expect("commit");
}
