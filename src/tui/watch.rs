//! The store watcher: a thread of its own that sends the dashboard a new snapshot whenever
//! any connection (the loop, the dashboard's own actions, the command line, an agent) has
//! committed, and tells the loop so (it sleeps until the next pending decision expires).
//!
//! It reads `PRAGMA data_version` first and reloads only when that moved, so nothing is
//! reloaded while nothing changes. On Linux it sleeps until the database's WAL file is
//! written (inotify), with no timer at all; elsewhere, or when the file cannot be watched,
//! it looks once a second.

use super::wake::{self, Waiter, Waker, Woken};
use crate::app::Action;
use crate::desk::Desk;
use crate::engine::EngineEvent;
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// Without a file watch: how often to look for commits.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// With a file watch: a look now and then all the same, in case the file was replaced.
const SAFETY_EVERY: Duration = Duration::from_secs(10);
/// After the WAL is written, look this long after: a commit writes its frames, syncs, and
/// only then becomes visible, so the first look waits for the writes to settle, and two more
/// follow in case the sync was slow. A look that finds the new version ends the series.
const RECHECK: [Duration; 3] = [
    Duration::from_millis(20),
    Duration::from_millis(250),
    Duration::from_millis(1000),
];

/// The handle the dashboard keeps: ask for a reload now (after its own action), or stop.
pub struct StoreWatch {
    waker: Waker,
    stop: Arc<AtomicBool>,
}

impl StoreWatch {
    /// Wakes the watcher to look now (after the dashboard's own action).
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.waker.wake();
    }
}

/// The alerts read with each reload: what the user's store recorded since the last one
/// (after the dashboard started), for the terminal and, when this process runs the engine,
/// the webhook.
pub struct Alerts {
    pub feed: crate::notify::Feed,
    pub user: String,
    pub outbox: crate::notify::Outbox,
}

impl Alerts {
    /// Read after the snapshot, so that anything the snapshot shows is told first.
    fn read(&mut self) -> Vec<crate::notify::Alert> {
        match self.feed.poll(&self.user) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("alerts: reading the store: {e}");
                Vec::new()
            }
        }
    }
}

/// Start the watcher on `store` (a connection of its own). `changes` is told of every
/// commit after the first load.
pub fn spawn(
    desk: Desk,
    store: Store,
    tx: mpsc::UnboundedSender<Action>,
    changes: Arc<Notify>,
    alerts: Alerts,
) -> std::io::Result<StoreWatch> {
    let (waker, waiter) = wake::pair()?;
    let stop = Arc::new(AtomicBool::new(false));
    let handle = StoreWatch {
        waker,
        stop: stop.clone(),
    };
    let files = file_watch::FileWatch::new(&desk.data_dir);
    std::thread::Builder::new()
        .name("store-watch".into())
        .spawn(move || run(desk, store, tx, changes, alerts, waiter, files, stop))?;
    Ok(handle)
}

#[allow(clippy::too_many_arguments)]
fn run(
    desk: Desk,
    store: Store,
    tx: mpsc::UnboundedSender<Action>,
    changes: Arc<Notify>,
    mut alerts: Alerts,
    waiter: Waiter,
    mut files: Option<file_watch::FileWatch>,
    stop: Arc<AtomicBool>,
) {
    let mut seen: Option<i64> = None;
    let mut failing = false;
    // Looks still owed after a file write.
    let mut rechecks: Vec<Instant> = Vec::new();
    let mut look = true;
    loop {
        if look {
            // Writes seen so far are covered by this look; only later ones call for another.
            if let Some(f) = &files
                && let file_watch::Written::Lost = f.drain()
            {
                files = None;
            }
            match look_once(
                &desk,
                &store,
                &tx,
                &changes,
                &mut alerts,
                &mut seen,
                &mut failing,
            ) {
                None => return,
                // The version moved: the writes that called for looks are accounted for.
                Some(true) => rechecks.clear(),
                Some(false) => {}
            }
        }
        // Sleep until woken, a file write, a recheck or the poll.
        let now = Instant::now();
        rechecks.retain(|t| *t > now);
        let every = if files.is_some() {
            SAFETY_EVERY
        } else {
            POLL_EVERY
        };
        let timeout = rechecks
            .first()
            .map_or(every, |t| t.saturating_duration_since(now).min(every));
        // While looks are owed, more writes add nothing: do not wake for them.
        let listen = files.as_ref().filter(|_| rechecks.is_empty());
        let (woken, written) = wait(&waiter, listen, timeout);
        if stop.load(Ordering::Relaxed) || woken == Woken::Closed {
            return;
        }
        look = match written {
            file_watch::Written::Yes => {
                let now = Instant::now();
                rechecks = RECHECK.iter().map(|d| now + *d).collect();
                woken == Woken::Yes
            }
            file_watch::Written::Lost => {
                files = None;
                true
            }
            file_watch::Written::No => true,
        };
    }
}

/// Reload when the version moved: whether it did; `None` when the dashboard is gone.
fn look_once(
    desk: &Desk,
    store: &Store,
    tx: &mpsc::UnboundedSender<Action>,
    changes: &Notify,
    alerts: &mut Alerts,
    seen: &mut Option<i64>,
    failing: &mut bool,
) -> Option<bool> {
    // Read the version first: a commit during the load shows up on the next look.
    let loaded = store
        .data_version()
        .map_err(|e| e.to_string())
        .and_then(|version| {
            if *seen == Some(version) {
                return Ok((version, None));
            }
            let snap = desk.snapshot(store).map_err(|e| format!("{e:#}"))?;
            Ok((version, Some(snap)))
        });
    match loaded {
        Ok((version, snap)) => {
            if seen.is_some_and(|s| s != version) {
                changes.notify_one();
            }
            *seen = Some(version);
            *failing = false;
            match snap {
                Some(snap) => {
                    // Told before the snapshot is drawn: whatever the screen shows has rung.
                    let told = alerts.read();
                    if !told.is_empty() {
                        alerts.outbox.offer(&told);
                        tx.send(Action::Alerts(told)).ok()?;
                    }
                    tx.send(Action::Snapshot(Box::new(snap)))
                        .is_ok()
                        .then_some(true)
                }
                None => Some(false),
            }
        }
        Err(e) if !*failing => {
            *failing = true;
            let ev = EngineEvent::Error(format!("reading the store: {e}"));
            tx.send(Action::Engine(ev)).is_ok().then_some(false)
        }
        Err(_) => Some(false),
    }
}

/// Block until the waiter or the watched files are readable, or `timeout` passes.
fn wait(
    waiter: &Waiter,
    files: Option<&file_watch::FileWatch>,
    timeout: Duration,
) -> (Woken, file_watch::Written) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let waiter_fd = waiter.fd();
    let mut fds = vec![PollFd::new(&waiter_fd, PollFlags::IN)];
    let files_fd = files.map(|f| f.fd());
    if let Some(fd) = &files_fd {
        fds.push(PollFd::new(fd, PollFlags::IN));
    }
    match poll(&mut fds, Some(&ts)) {
        Ok(0) | Err(_) => (Woken::No, file_watch::Written::No),
        Ok(_) => {
            let woken = if fds[0].revents().is_empty() {
                Woken::No
            } else {
                waiter.drain()
            };
            let written = match (files, fds.get(1)) {
                (Some(f), Some(p)) if !p.revents().is_empty() => f.drain(),
                _ => file_watch::Written::No,
            };
            (woken, written)
        }
    }
}

#[cfg(target_os = "linux")]
mod file_watch {
    use crate::store::DB_FILE;
    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    use std::mem::MaybeUninit;
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::path::Path;

    pub enum Written {
        No,
        Yes,
        /// The watch is gone (the file was deleted or replaced): poll from now on.
        Lost,
    }

    /// An inotify watch on the database and its WAL file: every commit writes the WAL.
    pub struct FileWatch {
        fd: OwnedFd,
    }

    impl FileWatch {
        pub fn new(data_dir: &Path) -> Option<FileWatch> {
            let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ok()?;
            let flags = WatchFlags::MODIFY | WatchFlags::DELETE_SELF | WatchFlags::MOVE_SELF;
            let wal = data_dir.join(format!("{DB_FILE}-wal"));
            if let Err(e) = inotify::add_watch(&fd, &wal, flags) {
                tracing::info!("not watching {}: {e}; looking once a second", wal.display());
                return None;
            }
            // The database file too: a checkpoint or a connection not in WAL mode writes it.
            let _ = inotify::add_watch(&fd, data_dir.join(DB_FILE), flags);
            Some(FileWatch { fd })
        }

        pub fn fd(&self) -> BorrowedFd<'_> {
            self.fd.as_fd()
        }

        /// Take every waiting event.
        pub fn drain(&self) -> Written {
            let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
            let mut events = inotify::Reader::new(&self.fd, &mut buf);
            let mut written = Written::No;
            loop {
                match events.next() {
                    Ok(ev) => {
                        let lost =
                            ReadFlags::IGNORED | ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF;
                        if ev.events().intersects(lost) {
                            return Written::Lost;
                        }
                        written = Written::Yes;
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(_) => return written,
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod file_watch {
    use std::os::fd::BorrowedFd;
    use std::path::Path;

    pub enum Written {
        No,
        #[allow(dead_code)]
        Yes,
        #[allow(dead_code)]
        Lost,
    }

    /// No file watch on this system: the watcher polls.
    pub enum FileWatch {}

    impl FileWatch {
        pub fn new(_data_dir: &Path) -> Option<FileWatch> {
            None
        }
        pub fn fd(&self) -> BorrowedFd<'_> {
            match *self {}
        }
        pub fn drain(&self) -> Written {
            match *self {}
        }
    }
}
