//! The dashboard runner: the terminal, the input thread, signals, the engine, the store
//! watcher and the effect executor, all feeding one `App::update`.
//!
//! Threads and tasks own no UI state: they send [`Action`]s over one channel. The loop drains
//! every waiting action, then draws at most once per frame and only when something changed;
//! a tick on each wall-clock second keeps the countdown and ages current. Nothing else runs
//! on a timer while nothing happens: the input thread blocks on the terminal, the store
//! watcher on the database's file (see `watch`), and the loop sleeps until its next check
//! or the next pending decision's expiry. Threads are named for `scripts/idle-cpu.sh`.

mod effects;
mod wake;
mod watch;

use crate::app::{Action, App, Attached, Effect, Outcome, Settings};
use crate::commands;
use crate::desk::Desk;
use crate::engine::{Engine, EngineCommand, EngineEvent};
use crate::store::{self, Store};
use color_eyre::eyre::{Result, WrapErr, eyre};
pub use effects::execute;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use wake::{Waker, Woken};

/// At most this often a frame (~60 fps).
const FRAME: Duration = Duration::from_millis(16);
/// Whether `NO_COLOR` asks for no colour (set and not empty).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub async fn run(ctx: Desk) -> Result<u8> {
    // On a worker rather than the thread that called `block_on`: a timer that fires then
    // runs the loop on the thread that was woken for it, instead of waking a second one.
    match tokio::spawn(dashboard(ctx)).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(eyre!("the dashboard task failed: {e}")),
    }
}

async fn dashboard(ctx: Desk) -> Result<u8> {
    // Everything that can fail before the terminal is taken fails with a plain message.
    // One engine per data dir: the first dashboard (or `serve`, or `run`) runs it; a dashboard
    // started beside it attaches: no loop of its own, the same store, every key through it.
    let (mut lock, attached) =
        match crate::lock::DashboardLock::try_take(&ctx.data_dir, true).map_err(|e| eyre!(e))? {
            crate::lock::Lock::Taken(l) => (Some(l), None),
            crate::lock::Lock::Held(h) => (
                None,
                Some(Attached {
                    pid: h.pid,
                    since_ms: h.since_ms,
                    running: true,
                    remote: None,
                }),
            ),
        };
    // The watcher tells the loop of other connections' commits, so the loop need not look.
    let store_changes = Arc::new(Notify::new());
    let engine = match lock {
        Some(_) => {
            Some(Engine::new(ctx.clone(), ctx.source()?).with_store_changes(store_changes.clone()))
        }
        None => None,
    };
    let watcher_store = {
        let dir = ctx.data_dir.clone();
        let user = ctx.config.auto_trade.user_id.clone();
        let enabled = ctx.config.auto_trade.enabled;
        tokio::task::spawn_blocking(move || Store::open(&dir, &user, enabled))
            .await
            .wrap_err("opening the dashboard's store connection")?
            .wrap_err("opening the dashboard's store connection")?
    };
    // Alerts start at the store's head now, before this dashboard's engine writes anything.
    let feed = {
        let dir = ctx.data_dir.clone();
        let user = ctx.config.auto_trade.user_id.clone();
        tokio::task::spawn_blocking(move || {
            let mut feed = crate::notify::Feed::open(&dir)?;
            feed.follow(&user)?;
            Ok::<_, store::StoreError>(feed)
        })
        .await
        .wrap_err("following the store for alerts")?
        .wrap_err("following the store for alerts")?
    };
    let outbox = crate::notify::Outbox::start(&ctx.config.notifications);
    outbox.send_from_here(lock.is_some());

    let (tx, rx) = mpsc::unbounded_channel::<Action>();
    let watcher = watch::spawn(
        ctx.clone(),
        watcher_store,
        tx.clone(),
        store_changes.clone(),
        watch::Alerts {
            feed,
            user: ctx.config.auto_trade.user_id.clone(),
            outbox: outbox.clone(),
        },
    )
    .wrap_err("starting the store watcher")?;
    let refresh = watcher.waker();
    let mut running = engine.map(|e| start_engine(e, &tx));
    let health = tokio::spawn(forward_store_health(
        ctx.store.health_cell().subscribe(),
        tx.clone(),
        outbox.clone(),
        ctx.config.auto_trade.user_id.clone(),
    ));
    if let Some(a) = &attached {
        let first = crate::lock::Holder {
            pid: a.pid,
            since_ms: a.since_ms,
        };
        spawn_attach_watch(ctx.data_dir.clone(), tx.clone(), first);
    }
    let mut app = App::new(
        Settings::from_config(&ctx.config, colour_allowed()),
        store::now_ms(),
    )
    .with_risk(ctx.limits().risk);
    app.update(Action::Attached(attached));
    let effect_tx = tx.clone();
    let ringer = crate::notify::Ringer::from_env(&ctx.config.notifications);
    let result = ui_loop(app, tx, rx, &ringer, |effect| {
        if effect == Effect::StartEngine {
            take_over(&ctx, &mut lock, &mut running, &store_changes, &effect_tx);
            outbox.send_from_here(lock.is_some());
            return;
        }
        perform(
            &Backend::Local(ctx.clone()),
            running.as_ref().map(|r| &r.0),
            &effect_tx,
            &Refresh::Store(refresh.clone()),
            effect,
        );
    })
    .await;
    if let Some((cmd, _)) = &running {
        let _ = cmd.try_send(EngineCommand::Stop);
    }
    watcher.stop();
    // The loop stops at once between cycles. A cycle in flight is only waited on briefly: its
    // decisions are stored in one transaction that runs on a blocking thread, which the
    // runtime lets finish before the process exits, so nothing is half-stored.
    if let Some((_, task)) = running {
        let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
    }
    drop(lock);
    health.abort();
    outbox.finish(crate::notify::DASHBOARD_GRACE).await;
    result
}

/// Tell the dashboard when its store stops or starts writing again, and the webhook (from
/// the engine's dashboard) when it stops: no event row can say so then.
async fn forward_store_health(
    mut health: tokio::sync::watch::Receiver<store::WriteHealth>,
    tx: mpsc::UnboundedSender<Action>,
    outbox: crate::notify::Outbox,
    user: String,
) {
    let mut was_failing = false;
    loop {
        let now = health.borrow_and_update().clone();
        if now.is_failing() && !was_failing {
            let alerts: Vec<_> = crate::notify::alert::store_failing(&user, &now)
                .into_iter()
                .collect();
            outbox.offer(&alerts);
        }
        was_failing = now.is_failing();
        if tx.send(Action::StoreHealth(now)).is_err() || health.changed().await.is_err() {
            return;
        }
    }
}

/// The dashboard of a remote `serve` (`autotrade-tui attach URL`): its settings and snapshot
/// come over the REST API, a new snapshot is loaded on each server-sent event, and every key
/// acts through the API.
pub async fn run_remote(
    remote: crate::remote::Remote,
    notifications: &crate::config::Notifications,
) -> Result<u8> {
    // The first load says whether the server and the token are right, before the terminal
    // is taken.
    let (settings, snapshot) = remote.dashboard().await.map_err(|e| eyre!(e))?;
    let remote = Arc::new(remote);
    let (tx, rx) = mpsc::unbounded_channel::<Action>();
    let refresh = Arc::new(Notify::new());
    // Alerts from the server's events; the decisions pending already are not news.
    let classifier = crate::notify::Classifier::new(
        remote.user(),
        snapshot.pending.iter().map(|d| d.log_id.clone()),
    );
    let follower = tokio::spawn(follow_remote(
        remote.clone(),
        tx.clone(),
        refresh.clone(),
        classifier,
    ));
    let mut app = App::new(
        Settings {
            color: colour_allowed(),
            ..settings
        },
        store::now_ms(),
    );
    app.update(Action::Snapshot(Box::new(snapshot)));
    app.update(Action::Attached(Some(Attached {
        pid: None,
        since_ms: None,
        running: true,
        remote: Some(remote.url().to_string()),
    })));
    let effect_tx = tx.clone();
    let ringer = crate::notify::Ringer::from_env(notifications);
    let result = ui_loop(app, tx, rx, &ringer, |effect| {
        perform(
            &Backend::Remote(remote.clone()),
            None,
            &effect_tx,
            &Refresh::Remote(refresh.clone()),
            effect,
        );
    })
    .await;
    follower.abort();
    result
}

/// Follow the server's events stream, loading a snapshot after each event (and after each
/// of this dashboard's actions); reconnect with a pause when it drops, and say so.
async fn follow_remote(
    remote: Arc<crate::remote::Remote>,
    tx: mpsc::UnboundedSender<Action>,
    refresh: Arc<Notify>,
    mut alerts: crate::notify::Classifier,
) {
    let url = remote.url().to_string();
    let attached = |running: bool| {
        Action::Attached(Some(Attached {
            pid: None,
            since_ms: None,
            running,
            remote: Some(url.clone()),
        }))
    };
    let (events, mut wanted) = mpsc::unbounded_channel::<()>();
    // Loads run one at a time, after the events that asked for them.
    let loader = {
        let (remote, tx) = (remote.clone(), tx.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = wanted.recv() => if got.is_none() { break },
                    _ = refresh.notified() => {}
                }
                while wanted.try_recv().is_ok() {}
                match remote.dashboard().await {
                    Ok((_, snap)) => {
                        if tx.send(Action::Snapshot(Box::new(snap))).is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!("loading the remote snapshot: {e}"),
                }
            }
        })
    };
    let mut down = false;
    loop {
        let ev = events.clone();
        let result = remote
            .follow(|name, data| {
                // Told before the snapshot that shows it is loaded.
                let told = serde_json::from_str(data)
                    .ok()
                    .and_then(|v| alerts.alert(name, &v));
                if let Some(a) = told {
                    let _ = tx.send(Action::Alerts(vec![a]));
                }
                let _ = ev.send(());
            })
            .await;
        if let Err(e) = result {
            tracing::warn!("the events stream of {url}: {e}");
        }
        if !down {
            down = true;
            let _ = tx.send(attached(false));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Back: a fresh snapshot, then follow again.
        if remote.dashboard().await.is_ok() {
            down = false;
            let _ = tx.send(attached(true));
            let _ = events.send(());
        }
        if tx.is_closed() {
            break;
        }
    }
    loader.abort();
}

/// The terminal, the input thread, the signals and the draw loop: every action goes through
/// `app`, and each effect it asks for to `handle`. Returns when the dashboard quits.
async fn ui_loop(
    mut app: App,
    tx: mpsc::UnboundedSender<Action>,
    mut rx: mpsc::UnboundedReceiver<Action>,
    ringer: &crate::notify::Ringer,
    mut handle: impl FnMut(Effect),
) -> Result<u8> {
    let stop = Arc::new(AtomicBool::new(false));
    let (stop_input, input_waiter) =
        wake::pair().wrap_err("making the input thread's wake-up pipe")?;
    spawn_signal_task(tx.clone());
    let mut terminal = ratatui::try_init().wrap_err("the dashboard needs a terminal")?;
    let input = match spawn_input_thread(tx.clone(), stop.clone(), input_waiter) {
        Ok(handle) => handle,
        Err(e) => {
            let _ = ratatui::try_restore();
            return Err(eyre!("starting the input thread: {e}"));
        }
    };
    let mut tick = next_second();
    let mut last_draw: Option<Instant> = None;
    let mut failure: Option<color_eyre::Report> = None;

    loop {
        let first = tokio::select! {
            a = rx.recv() => a.unwrap_or(Action::Quit),
            _ = tokio::time::sleep_until(tick) => {
                tick = next_second();
                Action::Tick { now_ms: store::now_ms() }
            }
        };
        let mut effects = app.update(Action::Tick {
            now_ms: store::now_ms(),
        });
        effects.extend(app.update(first));
        while let Ok(a) = rx.try_recv() {
            effects.extend(app.update(a));
        }
        effects.into_iter().for_each(&mut handle);
        ring(&mut terminal, &mut app, ringer);
        if app.should_quit() {
            break;
        }
        if !app.take_dirty() {
            continue;
        }
        // Cap the frame rate: wait out the frame, taking what arrives meanwhile.
        if let Some(t) = last_draw {
            let wait = FRAME.saturating_sub(t.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
                let mut more = Vec::new();
                while let Ok(a) = rx.try_recv() {
                    more.extend(app.update(a));
                }
                more.into_iter().for_each(&mut handle);
                ring(&mut terminal, &mut app, ringer);
                app.take_dirty();
                if app.should_quit() {
                    break;
                }
            }
        }
        if let Err(e) = terminal.draw(|f| crate::ui::draw(f, &app)) {
            // The terminal is gone (a dropped SSH session): quit, nothing to draw on.
            failure = Some(eyre!("drawing the dashboard: {e}"));
            break;
        }
        app.mark_drawn();
        last_draw = Some(Instant::now());
    }

    tracing::info!("dashboard quitting");
    stop.store(true, Ordering::Relaxed);
    stop_input.wake();
    // Not `ratatui::restore()` nor dropping the `Terminal`: after a hang-up both `eprintln!`
    // on the dead terminal, which panics twice and aborts the process, skipping the lock's
    // clean-up. Show the cursor ourselves and let the `Terminal` go without its drop.
    if let Err(e) = terminal.show_cursor() {
        tracing::warn!("showing the cursor: {e}");
    }
    std::mem::forget(terminal);
    if let Err(e) = ratatui::try_restore() {
        tracing::warn!("restoring the terminal: {e}");
    }
    // The input thread is woken to see `stop`; never wait on it unboundedly.
    drop(input);
    if let Some(e) = failure {
        tracing::warn!("{e}");
    }
    Ok(commands::EXIT_OK)
}

/// Tell the terminal of the alerts waiting (bell, OSC 9/777), between two draws: a few
/// bytes written and flushed like a frame, which move no cursor and draw nothing.
fn ring(terminal: &mut ratatui::DefaultTerminal, app: &mut App, ringer: &crate::notify::Ringer) {
    use std::io::Write;
    let alerts = app.take_alerts();
    let bytes = ringer.bytes(&alerts);
    if bytes.is_empty() {
        return;
    }
    let out = terminal.backend_mut();
    if let Err(e) = out.write_all(&bytes).and_then(|()| out.flush()) {
        tracing::warn!("telling the terminal of {} alert(s): {e}", alerts.len());
    }
}

/// Where the dashboard's actions go: this machine's desk, or a remote `serve`.
#[derive(Clone)]
pub enum Backend {
    Local(Desk),
    Remote(Arc<crate::remote::Remote>),
}

/// How to make the dashboard reload after its own action.
#[derive(Clone)]
enum Refresh {
    Store(Waker),
    Remote(Arc<Notify>),
}

impl Refresh {
    fn wake(&self) {
        match self {
            Refresh::Store(w) => w.wake(),
            Refresh::Remote(n) => n.notify_one(),
        }
    }
}

/// The engine's command channel and its task.
type Running = (mpsc::Sender<EngineCommand>, tokio::task::JoinHandle<()>);

/// Run `engine`, its events forwarded to the dashboard.
fn start_engine(engine: Engine, tx: &mpsc::UnboundedSender<Action>) -> Running {
    let (events_tx, mut events_rx) = mpsc::channel::<EngineEvent>(256);
    let running = engine.spawn(events_tx);
    let tx = tx.clone();
    tokio::spawn(async move {
        while let Some(ev) = events_rx.recv().await {
            if tx.send(Action::Engine(ev)).is_err() {
                break;
            }
        }
    });
    running
}

/// Once a second, whether the engine this dashboard is attached to still runs (its lock is
/// tried, never kept); a change is sent as `Action::Attached`.
fn spawn_attach_watch(
    data_dir: std::path::PathBuf,
    tx: mpsc::UnboundedSender<Action>,
    first: crate::lock::Holder,
) {
    tokio::spawn(async move {
        let mut last: Option<crate::lock::Holder> = Some(first);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let dir = data_dir.clone();
            let Ok(Ok(now)) = tokio::task::spawn_blocking(move || crate::lock::holder(&dir)).await
            else {
                continue;
            };
            // This dashboard took the engine over: nothing more to watch.
            if now.is_some_and(|h| h.pid == Some(std::process::id())) {
                break;
            }
            if last == now {
                continue;
            }
            let before = last;
            last = now;
            let state = match now {
                Some(h) => Attached {
                    pid: h.pid,
                    since_ms: h.since_ms,
                    running: true,
                    remote: None,
                },
                // Stopped: still named by the pid it had.
                None => Attached {
                    pid: before.and_then(|h| h.pid),
                    since_ms: before.and_then(|h| h.since_ms),
                    running: false,
                    remote: None,
                },
            };
            if tx.send(Action::Attached(Some(state))).is_err() {
                break;
            }
        }
    });
}

/// `r` after the attached engine stopped: take the lock and run the engine here. Another
/// engine may have started meanwhile: then attach to it instead.
fn take_over(
    ctx: &Desk,
    lock: &mut Option<crate::lock::DashboardLock>,
    running: &mut Option<Running>,
    store_changes: &Arc<Notify>,
    tx: &mpsc::UnboundedSender<Action>,
) {
    if running.is_some() {
        return;
    }
    let what = Effect::StartEngine.describe();
    let fail = |why: String| {
        let _ = tx.send(Action::Done {
            what: what.clone(),
            outcome: Outcome::Failed(why),
        });
    };
    match crate::lock::DashboardLock::try_take(&ctx.data_dir, true) {
        Ok(crate::lock::Lock::Taken(l)) => match ctx.source() {
            Ok(source) => {
                let engine =
                    Engine::new(ctx.clone(), source).with_store_changes(store_changes.clone());
                *running = Some(start_engine(engine, tx));
                *lock = Some(l);
                let _ = tx.send(Action::Attached(None));
            }
            Err(e) => fail(e.to_string()),
        },
        Ok(crate::lock::Lock::Held(h)) => {
            let _ = tx.send(Action::Attached(Some(Attached {
                pid: h.pid,
                since_ms: h.since_ms,
                running: true,
                remote: None,
            })));
        }
        Err(e) => fail(e),
    }
}

/// Start an effect; its result comes back as `Action::Done`.
fn perform(
    backend: &Backend,
    engine: Option<&mpsc::Sender<EngineCommand>>,
    tx: &mpsc::UnboundedSender<Action>,
    refresh: &Refresh,
    effect: Effect,
) {
    let what = effect.describe();
    if effect == Effect::CheckNow
        && let Backend::Local(_) = backend
    {
        let Some(engine) = engine else {
            let _ = tx.send(Action::Done {
                what,
                outcome: Outcome::Refused("this dashboard runs no engine".into()),
            });
            return;
        };
        let outcome = match engine.try_send(EngineCommand::CheckNow) {
            Ok(()) => Outcome::Ok,
            Err(mpsc::error::TrySendError::Full(_)) => {
                Outcome::Refused("a check is already queued".into())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Outcome::Failed("the monitoring loop has stopped".into())
            }
        };
        let _ = tx.send(Action::Done { what, outcome });
        return;
    }
    let backend = backend.clone();
    let tx = tx.clone();
    let refresh = refresh.clone();
    tokio::spawn(async move {
        let outcome = match &backend {
            Backend::Local(desk) => execute(desk, effect).await,
            Backend::Remote(remote) => remote.execute(effect).await,
        };
        let _ = tx.send(Action::Done { what, outcome });
        refresh.wake();
    });
}

/// The next wall-clock second, when the countdown and ages change.
fn next_second() -> tokio::time::Instant {
    let into = store::now_ms().rem_euclid(1000) as u64;
    tokio::time::Instant::now() + Duration::from_millis(1000 - into)
}

fn spawn_signal_task(tx: mpsc::UnboundedSender<Action>) {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed here, before the first frame: a hang-up right after the screen shows must
    // find the handler in place, not the default action that kills the process.
    let (Ok(mut term), Ok(mut hup), Ok(mut int), Ok(mut winch)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::window_change()),
    ) else {
        tracing::warn!("cannot listen for signals: SIGTERM/SIGHUP will not quit cleanly");
        return;
    };
    tokio::spawn(async move {
        loop {
            let action = tokio::select! {
                _ = term.recv() => Action::Quit,
                _ = hup.recv() => Action::Quit,
                _ = int.recv() => Action::Quit,
                _ = winch.recv() => Action::Resize,
            };
            let quit = matches!(action, Action::Quit);
            if tx.send(action).is_err() || quit {
                return;
            }
        }
    });
}

/// Keys from the terminal's bytes: the sequences a terminal sends for the keys the dashboard
/// binds (printable characters, Enter, Tab, Shift-Tab, Esc, Backspace, Delete, arrows,
/// Ctrl-letters).
/// Anything else (function keys, modified arrows) is consumed and ignored.
#[derive(Debug, Default)]
pub struct KeyDecoder {
    buf: Vec<u8>,
}

fn plain(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

enum Step {
    Key(KeyEvent, usize),
    Skip(usize),
    Incomplete,
}

impl KeyDecoder {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<KeyEvent> {
        self.buf.extend_from_slice(bytes);
        let mut keys = Vec::new();
        loop {
            match Self::step(&self.buf) {
                Step::Key(k, n) => {
                    keys.push(k);
                    self.buf.drain(..n);
                }
                Step::Skip(n) => {
                    self.buf.drain(..n);
                }
                Step::Incomplete => break,
            }
        }
        // A runaway sequence is noise, not a key.
        if self.buf.len() > 64 {
            self.buf.clear();
        }
        keys
    }

    /// Whether an escape sequence has started and waits for its rest.
    pub fn waiting(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Nothing more came: a lone ESC was the Esc key; a cut sequence is dropped.
    pub fn flush(&mut self) -> Vec<KeyEvent> {
        let lone_esc = self.buf == [0x1b];
        self.buf.clear();
        if lone_esc {
            vec![plain(KeyCode::Esc)]
        } else {
            Vec::new()
        }
    }

    fn step(b: &[u8]) -> Step {
        let Some(&first) = b.first() else {
            return Step::Incomplete;
        };
        match first {
            0x1b => match b.get(1) {
                None => Step::Incomplete,
                Some(b'[') => Self::csi(b),
                Some(b'O') => match b.get(2) {
                    None => Step::Incomplete,
                    Some(b'A') => Step::Key(plain(KeyCode::Up), 3),
                    Some(b'B') => Step::Key(plain(KeyCode::Down), 3),
                    Some(b'C') => Step::Key(plain(KeyCode::Right), 3),
                    Some(b'D') => Step::Key(plain(KeyCode::Left), 3),
                    Some(b'H') => Step::Key(plain(KeyCode::Home), 3),
                    Some(b'F') => Step::Key(plain(KeyCode::End), 3),
                    Some(_) => Step::Skip(3),
                },
                // Esc pressed, then another key in the same read.
                Some(_) => Step::Key(plain(KeyCode::Esc), 1),
            },
            b'\r' | b'\n' => Step::Key(plain(KeyCode::Enter), 1),
            b'\t' => Step::Key(plain(KeyCode::Tab), 1),
            0x7f | 0x08 => Step::Key(plain(KeyCode::Backspace), 1),
            0x01..=0x1a => Step::Key(
                KeyEvent::new(
                    KeyCode::Char((b'a' + first - 1) as char),
                    KeyModifiers::CONTROL,
                ),
                1,
            ),
            0x20..=0x7e => {
                let c = first as char;
                let mods = if c.is_ascii_uppercase() {
                    KeyModifiers::SHIFT
                } else {
                    KeyModifiers::NONE
                };
                Step::Key(KeyEvent::new(KeyCode::Char(c), mods), 1)
            }
            0xc0..=0xff => {
                let len = match first {
                    0xc0..=0xdf => 2,
                    0xe0..=0xef => 3,
                    _ => 4,
                };
                if b.len() < len {
                    return Step::Incomplete;
                }
                match std::str::from_utf8(&b[..len])
                    .ok()
                    .and_then(|s| s.chars().next())
                {
                    Some(c) => Step::Key(plain(KeyCode::Char(c)), len),
                    None => Step::Skip(1),
                }
            }
            _ => Step::Skip(1),
        }
    }

    /// `ESC [ params final`.
    fn csi(b: &[u8]) -> Step {
        let Some(end) = b[2..].iter().position(|c| (0x40..=0x7e).contains(c)) else {
            return Step::Incomplete;
        };
        let end = end + 2;
        let params = &b[2..end];
        let key = match (b[end], params) {
            (b'A', []) => Some(KeyCode::Up),
            (b'B', []) => Some(KeyCode::Down),
            (b'C', []) => Some(KeyCode::Right),
            (b'D', []) => Some(KeyCode::Left),
            (b'Z', []) => Some(KeyCode::BackTab),
            (b'H', []) => Some(KeyCode::Home),
            (b'F', []) => Some(KeyCode::End),
            (b'~', b"1" | b"7") => Some(KeyCode::Home),
            (b'~', b"3") => Some(KeyCode::Delete),
            (b'~', b"4" | b"8") => Some(KeyCode::End),
            (b'~', b"5") => Some(KeyCode::PageUp),
            (b'~', b"6") => Some(KeyCode::PageDown),
            _ => None,
        };
        match key {
            Some(KeyCode::BackTab) => Step::Key(
                KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT),
                end + 1,
            ),
            Some(k) => Step::Key(plain(k), end + 1),
            None => Step::Skip(end + 1),
        }
    }
}

/// The terminal to read keys from: stdin when it is one, else the controlling terminal.
fn open_tty() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    if rustix::termios::isatty(&stdin) {
        return stdin.as_fd().try_clone_to_owned();
    }
    Ok(std::fs::File::open("/dev/tty")?.into())
}

/// A plain thread reading the terminal: level-triggered `poll`, so it can stop when told,
/// never misses a key that arrives with a resize, and takes end of input or a hang-up (a
/// dropped SSH session) as Quit instead of spinning. crossterm 0.29's own reader does
/// neither (it loops on a zero-byte read, crossterm issue 793, and is edge-triggered).
/// It blocks until a key or `wake` (quit) with no timeout, so an idle terminal costs nothing.
fn spawn_input_thread(
    tx: mpsc::UnboundedSender<Action>,
    stop: Arc<AtomicBool>,
    wake: wake::Waiter,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            let quit = |tx: &mpsc::UnboundedSender<Action>| {
                let _ = tx.send(Action::Quit);
            };
            let tty = match open_tty() {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::error!("cannot read the terminal: {e}");
                    return quit(&tx);
                }
            };
            let mut decoder = KeyDecoder::default();
            let mut buf = [0u8; 1024];
            // An ESC waits a little for the rest of its sequence; otherwise wait for a key.
            let esc_wait = Timespec {
                tv_sec: 0,
                tv_nsec: 30_000_000,
            };
            let wake_fd = wake.fd();
            while !stop.load(Ordering::Relaxed) {
                let wait = decoder.waiting().then_some(&esc_wait);
                let mut fds = [
                    PollFd::new(&tty, PollFlags::IN),
                    PollFd::new(&wake_fd, PollFlags::IN),
                ];
                let keys = match poll(&mut fds, wait) {
                    Ok(0) => decoder.flush(),
                    Ok(_) if !fds[1].revents().is_empty() => {
                        if wake.drain() == Woken::Closed {
                            return;
                        }
                        // Woken to look at `stop`; a key read at the same time waits its turn.
                        continue;
                    }
                    Ok(_) => {
                        let rev = fds[0].revents();
                        if !rev.contains(PollFlags::IN) {
                            // HUP, ERR or NVAL with nothing to read: the terminal is gone.
                            return quit(&tx);
                        }
                        match rustix::io::read(&tty, &mut buf) {
                            Ok(0) => return quit(&tx),
                            Ok(n) => decoder.push(&buf[..n]),
                            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
                            Err(_) => return quit(&tx),
                        }
                    }
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => return quit(&tx),
                };
                for k in keys {
                    if tx.send(Action::Key(k)).is_err() {
                        return;
                    }
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(keys: Vec<KeyEvent>) -> Vec<(KeyCode, KeyModifiers)> {
        keys.into_iter().map(|k| (k.code, k.modifiers)).collect()
    }

    #[test]
    fn decodes_the_bound_keys() {
        let mut d = KeyDecoder::default();
        let keys = d.push(
            b"yq\r\tjkK\x03\x1b[A\x1b[B\x1bOA\x1b[3~\x1b[Z?\x1b[C\x1b[D\x1bOC\x7f\
              \x1b[5~\x1b[6~\x1b[H\x1b[F\x1b[1~\x1b[4~\x1bOH\x1bOF",
        );
        assert_eq!(
            codes(keys),
            vec![
                (KeyCode::Char('y'), KeyModifiers::NONE),
                (KeyCode::Char('q'), KeyModifiers::NONE),
                (KeyCode::Enter, KeyModifiers::NONE),
                (KeyCode::Tab, KeyModifiers::NONE),
                (KeyCode::Char('j'), KeyModifiers::NONE),
                (KeyCode::Char('k'), KeyModifiers::NONE),
                (KeyCode::Char('K'), KeyModifiers::SHIFT),
                (KeyCode::Char('c'), KeyModifiers::CONTROL),
                (KeyCode::Up, KeyModifiers::NONE),
                (KeyCode::Down, KeyModifiers::NONE),
                (KeyCode::Up, KeyModifiers::NONE),
                (KeyCode::Delete, KeyModifiers::NONE),
                (KeyCode::BackTab, KeyModifiers::SHIFT),
                (KeyCode::Char('?'), KeyModifiers::NONE),
                (KeyCode::Right, KeyModifiers::NONE),
                (KeyCode::Left, KeyModifiers::NONE),
                (KeyCode::Right, KeyModifiers::NONE),
                (KeyCode::Backspace, KeyModifiers::NONE),
                (KeyCode::PageUp, KeyModifiers::NONE),
                (KeyCode::PageDown, KeyModifiers::NONE),
                (KeyCode::Home, KeyModifiers::NONE),
                (KeyCode::End, KeyModifiers::NONE),
                (KeyCode::Home, KeyModifiers::NONE),
                (KeyCode::End, KeyModifiers::NONE),
                (KeyCode::Home, KeyModifiers::NONE),
                (KeyCode::End, KeyModifiers::NONE),
            ]
        );
        assert!(!d.waiting());
    }

    #[test]
    fn a_sequence_cut_across_reads_waits_for_its_rest() {
        let mut d = KeyDecoder::default();
        assert!(d.push(b"\x1b").is_empty());
        assert!(d.waiting());
        assert!(d.push(b"[").is_empty());
        assert_eq!(
            codes(d.push(b"B")),
            vec![(KeyCode::Down, KeyModifiers::NONE)]
        );
    }

    #[test]
    fn a_lone_esc_is_the_esc_key_and_unknown_sequences_are_ignored() {
        let mut d = KeyDecoder::default();
        assert!(d.push(b"\x1b").is_empty());
        assert_eq!(codes(d.flush()), vec![(KeyCode::Esc, KeyModifiers::NONE)]);
        // F5, Ctrl-Up, then n.
        let keys = d.push(b"\x1b[15~\x1b[1;5An");
        assert_eq!(codes(keys), vec![(KeyCode::Char('n'), KeyModifiers::NONE)]);
        // Esc then q in one read: both keys.
        let keys = d.push(b"\x1bq");
        assert_eq!(
            codes(keys),
            vec![
                (KeyCode::Esc, KeyModifiers::NONE),
                (KeyCode::Char('q'), KeyModifiers::NONE)
            ]
        );
    }
}
