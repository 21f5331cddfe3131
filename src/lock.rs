//! One engine per data dir (the dashboard or `serve`): an exclusive `flock` on a lock file
//! that also holds the owner's pid, for the message a second one gets.
//!
//! The kernel releases the lock when its holder exits, however it exits (`kill -9`
//! included), so there is never a stale lock to clean up, and two processes starting
//! together cannot both win.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

pub const LOCK_FILE: &str = "dashboard.lock";

/// Held for the life of the dashboard or the server.
#[derive(Debug)]
pub struct DashboardLock {
    _file: File,
}

impl DashboardLock {
    /// Take the lock, or say which process holds it.
    pub fn acquire(data_dir: &Path) -> Result<DashboardLock, String> {
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
                let holder = held
                    .trim()
                    .parse::<u32>()
                    .map(|pid| format!("pid {pid}"))
                    .unwrap_or_else(|_| "pid unknown".into());
                return Err(format!(
                    "another dashboard or `autotrade-tui serve` ({holder}) runs the engine on {}; \
                     the command line works beside it (e.g. `autotrade-tui status`)",
                    data_dir.display()
                ));
            }
            Err(e) => return Err(format!("cannot lock {}: {e}", path.display())),
        }
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .and_then(|_| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(DashboardLock { _file: file })
    }
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
        drop(first);
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
