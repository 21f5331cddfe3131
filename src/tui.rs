//! The dashboard runner: the terminal, the input thread, signals, the engine, the store
//! watcher and the effect executor, all feeding one `App::update`.
//!
//! Threads and tasks own no UI state: they send [`Action`]s over one channel. The loop drains
//! every waiting action, then draws at most once per frame and only when something changed;
//! a one-second tick keeps the countdown and ages current, so an idle dashboard sleeps.

use crate::app::{Action, App, Effect, Outcome, Settings, Snapshot};
use crate::commands::{self, Context};
use crate::config::Config;
use crate::engine::{EngineCommand, EngineEvent, limits_for};
use crate::store::{self, Store, StoreError};
use color_eyre::eyre::{Result, WrapErr, eyre};
use ratatui::crossterm::event::{self, Event};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// At most this often a frame (~60 fps).
const FRAME: Duration = Duration::from_millis(16);
/// How often the watcher looks for commits by other connections (the engine, the CLI).
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// Events and pending decisions the dashboard loads.
const EVENTS: usize = 50;
const PENDING: usize = 100;

/// Whether `NO_COLOR` asks for no colour (set and not empty).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Load everything the dashboard shows from the store (blocking: call off the UI thread).
pub fn load_snapshot(config: &Config, store: &Store) -> Result<Snapshot> {
    let (equity, realized_pnl, unrealized_pnl) = commands::equity(config, store)?;
    Ok(Snapshot {
        taken_at_ms: store::now_ms(),
        state: store.state()?,
        pending: store.decisions(PENDING, Some(store::Status::Pending))?,
        latest: store.latest_per_symbol()?,
        positions: store.open_positions()?,
        prices: store.prices()?,
        events: store.recent_events(EVENTS)?,
        equity,
        realized_pnl,
        unrealized_pnl,
    })
}

/// Perform a store effect (blocking) and say how it went.
pub fn perform_store_effect(config: &Config, store: &Store, effect: &Effect) -> Outcome {
    let result: std::result::Result<(), StoreError> = match effect {
        Effect::Confirm { log_id, .. } => store.confirm(log_id, &limits_for(config)).map(|_| ()),
        Effect::Cancel { log_id, .. } => store
            .cancel(log_id, "cancelled on the dashboard")
            .map(|_| ()),
        Effect::SetEnabled(true) => store.enable(),
        Effect::SetEnabled(false) => store.disable(),
        Effect::Kill => store.kill().map(|_| ()),
        Effect::CheckNow => Ok(()),
    };
    match result {
        Ok(()) => Outcome::Ok,
        Err(e @ (StoreError::Refused(_) | StoreError::UnknownDecision(_))) => {
            Outcome::Refused(e.to_string())
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

pub async fn run(ctx: Context) -> Result<u8> {
    // Everything that can fail before the terminal is taken fails with a plain message.
    // One dashboard (and so one monitoring loop) per data dir; the command line runs beside it.
    let _lock = crate::lock::DashboardLock::acquire(&ctx.data_dir).map_err(|e| eyre!(e))?;
    let engine = ctx.engine()?;
    let watcher_store = {
        let dir = ctx.data_dir.clone();
        let user = ctx.config.auto_trade.user_id.clone();
        let enabled = ctx.config.auto_trade.enabled;
        tokio::task::spawn_blocking(move || Store::open(&dir, &user, enabled))
            .await
            .wrap_err("opening the dashboard's store connection")?
            .wrap_err("opening the dashboard's store connection")?
    };

    let (tx, mut rx) = mpsc::unbounded_channel::<Action>();
    let stop = Arc::new(AtomicBool::new(false));
    let refresh = Arc::new(Notify::new());

    let mut terminal = ratatui::try_init().wrap_err("the dashboard needs a terminal")?;
    let input = spawn_input_thread(tx.clone(), stop.clone());
    spawn_signal_task(tx.clone());

    let (events_tx, mut events_rx) = mpsc::channel::<EngineEvent>(256);
    let (engine_cmd, engine_task) = engine.spawn(events_tx);
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = events_rx.recv().await {
                if tx.send(Action::Engine(ev)).is_err() {
                    break;
                }
            }
        });
    }
    let watcher = tokio::spawn(watch_store(
        ctx.config.clone(),
        Arc::new(watcher_store),
        tx.clone(),
        refresh.clone(),
    ));

    let mut app = App::new(
        Settings::from_config(&ctx.config, colour_allowed()),
        store::now_ms(),
    );
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_draw: Option<Instant> = None;
    let mut failure: Option<color_eyre::Report> = None;

    loop {
        let first = tokio::select! {
            a = rx.recv() => a.unwrap_or(Action::Quit),
            _ = tick.tick() => Action::Tick { now_ms: store::now_ms() },
        };
        let mut effects = app.update(Action::Tick {
            now_ms: store::now_ms(),
        });
        effects.extend(app.update(first));
        while let Ok(a) = rx.try_recv() {
            effects.extend(app.update(a));
        }
        for effect in effects {
            perform(&ctx, &engine_cmd, &tx, &refresh, effect);
        }
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
                for effect in more {
                    perform(&ctx, &engine_cmd, &tx, &refresh, effect);
                }
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
        last_draw = Some(Instant::now());
    }

    stop.store(true, Ordering::Relaxed);
    let _ = engine_cmd.try_send(EngineCommand::Stop);
    watcher.abort();
    ratatui::restore();
    // The engine stops between store writes; give an in-flight cycle a moment, not forever.
    let _ = tokio::time::timeout(Duration::from_secs(2), engine_task).await;
    let _ = input.join();
    match failure {
        Some(e) => {
            tracing::warn!("{e}");
            Ok(commands::EXIT_OK)
        }
        None => Ok(commands::EXIT_OK),
    }
}

/// Start an effect; its result comes back as `Action::Done`.
fn perform(
    ctx: &Context,
    engine: &mpsc::Sender<EngineCommand>,
    tx: &mpsc::UnboundedSender<Action>,
    refresh: &Arc<Notify>,
    effect: Effect,
) {
    let what = effect.describe();
    if effect == Effect::CheckNow {
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
    let config = ctx.config.clone();
    let store = ctx.store.clone();
    let tx = tx.clone();
    let refresh = refresh.clone();
    tokio::spawn(async move {
        let outcome =
            tokio::task::spawn_blocking(move || perform_store_effect(&config, &store, &effect))
                .await
                .unwrap_or_else(|e| Outcome::Failed(format!("the store task failed: {e}")));
        let _ = tx.send(Action::Done { what, outcome });
        refresh.notify_one();
    });
}

/// Reload the snapshot at start and whenever any other connection has committed.
async fn watch_store(
    config: Arc<Config>,
    store: Arc<Store>,
    tx: mpsc::UnboundedSender<Action>,
    refresh: Arc<Notify>,
) {
    let mut seen: Option<i64> = None;
    let mut failing = false;
    loop {
        let (c, s) = (config.clone(), store.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let version = s.data_version().map_err(|e| e.to_string())?;
            if seen == Some(version) {
                return Ok((version, None));
            }
            // Read the version first: a commit during the load shows up on the next pass.
            let snap = load_snapshot(&c, &s).map_err(|e| format!("{e:#}"))?;
            Ok::<_, String>((version, Some(snap)))
        })
        .await
        .unwrap_or_else(|e| Err(format!("the store task failed: {e}")));
        match loaded {
            Ok((version, snap)) => {
                seen = Some(version);
                failing = false;
                if let Some(snap) = snap
                    && tx.send(Action::Snapshot(Box::new(snap))).is_err()
                {
                    return;
                }
            }
            Err(e) if !failing => {
                failing = true;
                let ev = EngineEvent::Error(format!("reading the store: {e}"));
                if tx.send(Action::Engine(ev)).is_err() {
                    return;
                }
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(WATCH_EVERY) => {}
            _ = refresh.notified() => {}
        }
    }
}

fn spawn_signal_task(tx: mpsc::UnboundedSender<Action>) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut hup), Ok(mut int), Ok(mut winch)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::window_change()),
        ) else {
            tracing::warn!("cannot listen for signals: SIGTERM/SIGHUP will not quit cleanly");
            return;
        };
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

/// What the terminal's input has for us.
enum Input {
    Ready,
    Idle,
    /// End of input or a hang-up: the session is gone.
    Gone,
}

/// Wait up to `timeout` for input on stdin, telling end of input apart from data.
/// crossterm itself loops on a zero-byte read (crossterm issue 793), so look first.
fn wait_for_input(timeout: Duration) -> Input {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdin = std::io::stdin();
    if !rustix::termios::isatty(&stdin) {
        // crossterm reads /dev/tty then; let it wait.
        return match event::poll(timeout) {
            Ok(true) => Input::Ready,
            Ok(false) => Input::Idle,
            Err(_) => Input::Gone,
        };
    }
    let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    match poll(&mut fds, Some(&ts)) {
        Ok(0) => Input::Idle,
        Ok(_) => {
            let rev = fds[0].revents();
            if rev.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                return Input::Gone;
            }
            // Readable with nothing to read is end of input.
            match rustix::io::ioctl_fionread(&stdin) {
                Ok(0) => Input::Gone,
                Ok(_) => Input::Ready,
                Err(_) => Input::Gone,
            }
        }
        Err(rustix::io::Errno::INTR) => Input::Idle,
        Err(_) => Input::Gone,
    }
}

/// A plain thread for the terminal's input: it stops when told, and on end of input.
fn spawn_input_thread(
    tx: mpsc::UnboundedSender<Action>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match wait_for_input(Duration::from_millis(200)) {
                Input::Idle => continue,
                Input::Gone => {
                    let _ = tx.send(Action::Quit);
                    return;
                }
                Input::Ready => {}
            }
            // Take every complete event now waiting; a partial sequence waits for its rest.
            loop {
                match event::poll(Duration::ZERO) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(_) => {
                        let _ = tx.send(Action::Quit);
                        return;
                    }
                }
                let action = match event::read() {
                    Ok(Event::Key(k)) => Action::Key(k),
                    Ok(Event::Resize(..)) => Action::Resize,
                    Ok(_) => continue,
                    Err(_) => {
                        let _ = tx.send(Action::Quit);
                        return;
                    }
                };
                if tx.send(action).is_err() {
                    return;
                }
            }
        }
    })
}
