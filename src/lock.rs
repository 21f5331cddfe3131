//! One engine per data dir (a dashboard, `serve` or `run`): an exclusive `flock` on a lock
//! file that also holds the owner's pid, for the message a second one gets and for the
//! dashboards that attach to it.
//!
//! The kernel releases the lock when its holder exits, however it exits (`kill -9`
//! included), so there is never a stale lock to clean up, and two processes starting
//! together cannot both win.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

pub const LOCK_FILE: &str = "dashboard.lock";

/// Held for the life of the engine (a dashboard running it, `serve` or `run`).
#[derive(Debug)]
pub struct DashboardLock {
    _file: File,
}

/// The engine holding a data dir's lock: the pid it wrote and when it took the lock (the lock
/// file's time), each when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    pub since_ms: Option<i64>,
}

impl Holder {
    pub fn describe(&self) -> String {
        self.pid
            .map(|pid| format!("pid {pid}"))
            .unwrap_or_else(|| "pid unknown".into())
    }
}

/// What trying the lock found.
#[derive(Debug)]
pub enum Lock {
    /// It was free and is now this process's.
    Taken(DashboardLock),
    /// Another engine holds it.
    Held(Holder),
}

impl DashboardLock {
    /// Take the lock, or say which process holds it.
    pub fn acquire(data_dir: &Path) -> Result<DashboardLock, String> {
        match DashboardLock::try_take(data_dir, true)? {
            Lock::Taken(l) => Ok(l),
            Lock::Held(h) => Err(format!(
                "another dashboard, `autotrade-tui serve` or `autotrade-tui run` ({}) runs the engine on {}; \
                 the command line works beside it (e.g. `autotrade-tui status`), and a dashboard attaches to it",
                h.describe(),
                data_dir.display()
            )),
        }
    }

    /// Take the lock when it is free (writing this process's pid when `claim`), else say who
    /// holds it.
    pub fn try_take(data_dir: &Path, claim: bool) -> Result<Lock, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let path = data_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        use rustix::fs::{FlockOperation, flock};
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut held = String::new();
                let _ = file.read_to_string(&mut held);
                let since_ms = file
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as i64);
                return Ok(Lock::Held(Holder {
                    pid: held.trim().parse::<u32>().ok(),
                    since_ms,
                }));
            }
            Err(e) => return Err(format!("cannot lock {}: {e}", path.display())),
        }
        if claim {
            file.set_len(0)
                .and_then(|_| file.seek(SeekFrom::Start(0)))
                .and_then(|_| writeln!(file, "{}", std::process::id()))
                .and_then(|_| file.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(Lock::Taken(DashboardLock { _file: file }))
    }
}

/// The engine running on `data_dir` now, if one does (the lock is only tried, never kept).
pub fn holder(data_dir: &Path) -> Result<Option<Holder>, String> {
    Ok(match DashboardLock::try_take(data_dir, false)? {
        Lock::Taken(_) => None,
        Lock::Held(h) => Some(h),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_pid_and_the_lock_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = DashboardLock::acquire(dir.path()).unwrap();
        let err = DashboardLock::acquire(dir.path()).unwrap_err();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        // A dashboard probing for it sees the holder and leaves the lock as it is.
        let h = holder(dir.path()).unwrap().unwrap();
        assert_eq!(h.pid, Some(std::process::id()));
        assert!(h.since_ms.is_some());
        assert!(DashboardLock::acquire(dir.path()).is_err());
        drop(first);
        assert_eq!(holder(dir.path()).unwrap(), None);
        let again = DashboardLock::acquire(dir.path()).unwrap();
        let held = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(held.trim(), std::process::id().to_string());
        drop(again);
    }

    #[test]
    fn a_left_over_lock_file_from_a_killed_process_is_not_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "1\n").unwrap();
        assert!(DashboardLock::acquire(dir.path()).is_ok());
    }
}
