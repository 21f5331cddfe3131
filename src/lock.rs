//! One dashboard per data dir: a lock file holding the owner's pid.
//!
//! The file is created with `create_new`, so two dashboards starting together cannot both
//! win. A lock left by a process that no longer exists (after `kill -9`) is taken over.

use std::io::Write;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "dashboard.lock";

/// Held for the life of the dashboard; removes the file when dropped.
#[derive(Debug)]
pub struct DashboardLock {
    path: PathBuf,
}

impl DashboardLock {
    /// Take the lock, or say which process holds it.
    pub fn acquire(data_dir: &Path) -> Result<DashboardLock, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let path = data_dir.join(LOCK_FILE);
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    writeln!(f, "{}", std::process::id())
                        .and_then(|_| f.sync_all())
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    return Ok(DashboardLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if pid != std::process::id() && process_alive(pid) => {
                            return Err(format!(
                                "another dashboard or `autotrade-tui serve` (pid {pid}) runs the engine on {}; the command \
                                 line works beside it (e.g. `autotrade-tui status`). If that process is gone, remove {}",
                                data_dir.display(),
                                path.display()
                            ));
                        }
                        _ => {
                            // Stale: its owner is gone. Remove and try again.
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
        }
        Err(format!("cannot take the dashboard lock {}", path.display()))
    }
}

impl Drop for DashboardLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    // /proc exists on Linux; elsewhere assume the holder is alive.
    let proc_root = Path::new("/proc");
    if proc_root.is_dir() {
        return proc_root.join(pid.to_string()).exists();
    }
    true
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let first = DashboardLock::acquire(dir.path()).unwrap();
        // Same pid holds it: a second acquire in this process sees its own pid and takes over,
        // so simulate another live holder with pid 1 (init is always alive).
        drop(first);
        std::fs::write(dir.path().join(LOCK_FILE), "1\n").unwrap();
        let err = DashboardLock::acquire(dir.path()).unwrap_err();
        assert!(err.contains("pid 1"), "{err}");
        // A pid that cannot exist is stale.
        std::fs::write(dir.path().join(LOCK_FILE), "4294967\n").unwrap();
        let lock = DashboardLock::acquire(dir.path()).unwrap();
        let held = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(held.trim(), std::process::id().to_string());
        drop(lock);
        assert!(!dir.path().join(LOCK_FILE).exists());
    }
}
