//! The engine without a terminal: what `serve` and `run` share (the one-engine-per-data-dir
//! lock, the monitoring loops of [`users::supervise`], the stop signals), and `run` itself:
//! the loop for the config file's user alone, with no HTTP, for a service manager.

use super::users::{self, Users};
use crate::commands::{EXIT_OK, EXIT_REFUSED};
use crate::desk::Desk;
use crate::lock::DashboardLock;
use color_eyre::eyre::{Result, WrapErr};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Take the data dir's engine lock for `what` (`serve`, `run`), or say on stderr who holds it.
pub fn engine_lock(data_dir: &Path, what: &str) -> Option<DashboardLock> {
    match DashboardLock::acquire(data_dir) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("error: {what} runs the monitoring loop, one per data dir: {e}");
            None
        }
    }
}

/// The monitoring loops, one per enabled user of `users`, until [`Loops::stop`]; and, with
/// a webhook configured, the alerts of every user posted to it.
pub struct Loops {
    stop_tx: watch::Sender<bool>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Loops {
    pub fn start(users: Arc<Users>) -> Loops {
        let (stop_tx, stop_rx) = watch::channel(false);
        let supervisor = tokio::spawn(async move {
            // The alerts start at the store's head before any loop writes.
            let ids = users.clone();
            let alerts = crate::notify::HeadlessAlerts::start(
                users.data_dir().to_path_buf(),
                &users.base().notifications,
                Arc::new(move || ids.ids()),
                stop_rx.clone(),
            )
            .await;
            users::supervise(users, stop_rx).await;
            if let Some(a) = alerts {
                a.finish().await;
            }
        });
        Loops {
            stop_tx,
            supervisor,
        }
    }

    /// A receiver that turns true when the loops are told to stop.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }

    /// Tell the loops (and whoever watches [`Loops::stopping`]) to stop, without waiting.
    pub fn tell_stop(&self) {
        let _ = self.stop_tx.send(true);
    }

    /// Tell the loops to stop (each finishes the cycle it is in, or is aborted after a grace
    /// period) and wait for them.
    pub async fn stop(self) {
        self.tell_stop();
        let _ = self.supervisor.await;
    }
}

/// `autotrade-tui run`: the config file's user's monitoring loop, headless, until SIGTERM,
/// SIGINT or SIGHUP. Everything after the one start line goes to the log file.
pub async fn run(ctx: Desk) -> Result<u8> {
    // On PostgreSQL the loop's lease is the lock (several instances share a database).
    let _lock = match ctx.store.is_shared() {
        true => None,
        false => match engine_lock(&ctx.data_dir, "run") {
            Some(l) => Some(l),
            None => return Ok(EXIT_REFUSED),
        },
    };
    let user = ctx.config.auto_trade.user_id.clone();
    let data_dir = ctx.data_dir.clone();
    let users = Arc::new(
        tokio::task::spawn_blocking(move || Users::file_user_only(ctx))
            .await?
            .wrap_err("loading the config file's user")?,
    );
    let mut signals = StopSignals::install(true).wrap_err("listening for stop signals")?;
    let loops = Loops::start(users);
    {
        let mut out = std::io::stdout().lock();
        // A closed stdout (a service manager without a journal) must not stop the engine.
        let _ = writeln!(
            out,
            "engine running for user {user} (pid {}) on {}",
            std::process::id(),
            data_dir.display()
        )
        .and_then(|_| out.flush());
    }
    tracing::info!(
        "run: engine running for user {user} (pid {}) on {}",
        std::process::id(),
        data_dir.display()
    );
    let why = match signals.recv().await {
        Ok(w) => w,
        Err(e) => {
            loops.stop().await;
            return Err(e).wrap_err("listening for stop signals");
        }
    };
    tracing::info!("run: {why}, stopping");
    loops.stop().await;
    tracing::info!("run: stopped");
    Ok(EXIT_OK)
}

/// SIGTERM (systemd, `kill`) or SIGINT (Ctrl-C); with `hangup`, SIGHUP too, unless it was
/// ignored when the program started (`nohup`), which keeps it ignored. Installed before the
/// start line is printed, so a signal sent as soon as it shows finds the handler, not the
/// default action.
pub struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    pub fn install(hangup: bool) -> Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
                hup: if hangup && !hangup_ignored() {
                    Some(signal(SignalKind::hangup())?)
                } else {
                    None
                },
            })
        }
        #[cfg(not(unix))]
        {
            let _ = hangup;
            Ok(StopSignals {})
        }
    }

    /// The first stop signal to arrive.
    pub async fn recv(&mut self) -> Result<&'static str> {
        #[cfg(unix)]
        {
            let hup_recv = async {
                match self.hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.term.recv() => Ok("SIGTERM"),
                _ = self.int.recv() => Ok("SIGINT"),
                _ = hup_recv => Ok("SIGHUP"),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await?;
            Ok("Ctrl-C")
        }
    }
}

/// SIGHUP was ignored when this process started (`nohup autotrade-tui run &`): Linux says so
/// in `/proc/self/status` (`SigIgn`, a hex mask whose lowest bit is signal 1, SIGHUP).
#[cfg(unix)]
fn hangup_ignored() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & 1 == 1)
}
