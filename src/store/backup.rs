//! Rolling backups of the store in `<data dir>/backups/`, made with `VACUUM INTO` on a
//! connection of their own (one read transaction: in WAL mode writers go on meanwhile), each
//! checked with `PRAGMA quick_check` before it counts: the last [`KEEP_STARTS`] engine starts
//! and the last [`KEEP_DAILY`] days. A backup is written under a temporary name and renamed
//! into place, so a half-written one is never taken for a good one.
//!
//! Restoring one: stop every autotrade-tui on the data dir, move `autotrade.db` (and any
//! `autotrade.db-wal`, `autotrade.db-shm`) aside, copy the backup to `autotrade.db`.

use super::{DB_FILE, Result, StoreError};
use chrono::{TimeZone, Utc};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const BACKUP_DIR: &str = "backups";
/// Backups of the last engine starts kept.
pub const KEEP_STARTS: usize = 3;
/// Daily backups kept (one a UTC day).
pub const KEEP_DAILY: usize = 7;
/// How often a running engine looks whether today's backup is due.
pub const DAILY_LOOK: Duration = Duration::from_secs(3600);
const PREFIX: &str = "autotrade-";
/// A temporary file left by a backup that was cut short is removed after this long.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Why a backup is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An engine started (a dashboard, `serve`, `run`).
    Start,
    /// The first of a UTC day.
    Daily,
}

/// One backup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub path: PathBuf,
    pub kind: Kind,
    /// When it was made (its name's time), ms since the epoch.
    pub made_ms: i64,
}

pub fn backups_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(BACKUP_DIR)
}

/// `autotrade-start-20261206T163100123Z.db`, `autotrade-daily-20261206.db`.
fn file_name(kind: Kind, now_ms: i64) -> String {
    let t = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or_default();
    match kind {
        Kind::Start => format!("{PREFIX}start-{}.db", t.format("%Y%m%dT%H%M%S%3fZ")),
        Kind::Daily => format!("{PREFIX}daily-{}.db", t.format("%Y%m%d")),
    }
}

fn parse_name(name: &str) -> Option<(Kind, i64)> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(".db")?;
    if let Some(t) = rest.strip_prefix("start-") {
        let t = chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%S%3fZ").ok()?;
        return Some((Kind::Start, t.and_utc().timestamp_millis()));
    }
    let d = chrono::NaiveDate::parse_from_str(rest.strip_prefix("daily-")?, "%Y%m%d").ok()?;
    Some((
        Kind::Daily,
        d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(),
    ))
}

/// The backups in the data dir, newest first (by the time in each name; a daily backup
/// counts from its day's start).
pub fn list(data_dir: &Path) -> Vec<Backup> {
    let Ok(entries) = std::fs::read_dir(backups_dir(data_dir)) else {
        return Vec::new();
    };
    let mut all: Vec<Backup> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (kind, made_ms) = parse_name(&name)?;
            Some(Backup {
                path: e.path(),
                kind,
                made_ms,
            })
        })
        .collect();
    all.sort_by(|a, b| b.made_ms.cmp(&a.made_ms).then(b.path.cmp(&a.path)));
    all
}

/// The newest backup, by the time each was last written (a daily backup may be newer than
/// the last start's).
pub fn last_good(data_dir: &Path) -> Option<Backup> {
    list(data_dir)
        .into_iter()
        .max_by_key(|b| written_ms(&b.path))
}

/// When a file was last written, ms since the epoch (0 when unknown).
fn written_ms(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

/// Whether today's (UTC) daily backup is still to be made.
pub fn daily_due(data_dir: &Path, now_ms: i64) -> bool {
    !backups_dir(data_dir)
        .join(file_name(Kind::Daily, now_ms))
        .exists()
}

/// Copy the store in `data_dir` to a backup of `kind`, check the copy, and drop the backups
/// beyond the ones kept. Returns the backup's path.
pub fn make(data_dir: &Path, kind: Kind, now_ms: i64) -> Result<PathBuf> {
    let dir = backups_dir(data_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let target = dir.join(file_name(kind, now_ms));
    let temp = dir.join(format!(
        ".{}.{}-{}.tmp",
        file_name(kind, now_ms),
        std::process::id(),
        super::now_ms()
    ));
    let made = copy_checked(&data_dir.join(DB_FILE), &temp);
    if let Err(e) = made {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, &target).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        StoreError::Other(format!(
            "cannot move the backup to {}: {e}",
            target.display()
        ))
    })?;
    prune(data_dir);
    Ok(target)
}

/// `VACUUM INTO` from a read-only connection, then `quick_check` on the copy.
fn copy_checked(db: &Path, temp: &Path) -> Result<()> {
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(super::BUSY_TIMEOUT)?;
    let into = temp.to_string_lossy().into_owned();
    src.execute("VACUUM INTO ?1", [&into])?;
    drop(src);
    let copy = Connection::open_with_flags(temp, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let verdict: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Err(StoreError::Other(format!(
            "the backup failed its check: {verdict}"
        )));
    }
    Ok(())
}

/// Keep the newest [`KEEP_STARTS`] start backups and [`KEEP_DAILY`] daily ones; remove
/// temporary files left by a backup cut short.
fn prune(data_dir: &Path) {
    let all = list(data_dir);
    for kind in [Kind::Start, Kind::Daily] {
        let keep = match kind {
            Kind::Start => KEEP_STARTS,
            Kind::Daily => KEEP_DAILY,
        };
        for old in all.iter().filter(|b| b.kind == kind).skip(keep) {
            let _ = std::fs::remove_file(&old.path);
        }
    }
    let Ok(entries) = std::fs::read_dir(backups_dir(data_dir)) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP);
        if name.starts_with('.') && name.ends_with(".tmp") && old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Today's backup, when it is due; logged, never fatal (the store itself is fine).
pub fn daily_if_due(data_dir: &Path) {
    let now = super::now_ms();
    if daily_due(data_dir, now) {
        match make(data_dir, Kind::Daily, now) {
            Ok(p) => tracing::info!("store backed up to {}", p.display()),
            Err(e) => tracing::warn!("the daily backup of the store failed: {e}"),
        }
    }
}

/// An engine's backups: one at its start (and today's, when due), then today's whenever a
/// new UTC day begins, each on a blocking thread so that no cycle and no draw waits for it.
pub async fn keep_rolling(data_dir: PathBuf) {
    let dir = data_dir.clone();
    let started = tokio::task::spawn_blocking(move || {
        let made = make(&dir, Kind::Start, super::now_ms());
        daily_if_due(&dir);
        made
    })
    .await;
    match started {
        Ok(Ok(p)) => tracing::info!("store backed up to {}", p.display()),
        Ok(Err(e)) => tracing::warn!("the start backup of the store failed: {e}"),
        Err(e) => tracing::warn!("the start backup of the store failed: {e}"),
    }
    let mut tick = tokio::time::interval(DAILY_LOOK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let dir = data_dir.clone();
        let _ = tokio::task::spawn_blocking(move || daily_if_due(&dir)).await;
    }
}

/// Where the last good backup is, and how to restore it, for a store refused at start.
pub fn advice(data_dir: &Path) -> String {
    let db = data_dir.join(DB_FILE);
    match last_good(data_dir) {
        Some(b) => format!(
            "The last good backup is {} (made {}). To restore it: stop every autotrade-tui on {}, \
             move {} (and any {DB_FILE}-wal and {DB_FILE}-shm beside it) aside, and copy the backup to {}.",
            b.path.display(),
            super::fmt_ts(written_ms(&b.path)),
            data_dir.display(),
            db.display(),
            db.display()
        ),
        None => format!(
            "No backup was found in {}. Move {} aside to start a fresh store (its history stays \
             in the file moved aside; sqlite3's .recover may save part of it).",
            backups_dir(data_dir).display(),
            db.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_newest_first() {
        let t = 1_765_038_660_123; // 2025-12-06T16:31:00.123Z
        let start = file_name(Kind::Start, t);
        assert_eq!(start, "autotrade-start-20251206T163100123Z.db");
        assert_eq!(parse_name(&start), Some((Kind::Start, t)));
        let daily = file_name(Kind::Daily, t);
        assert_eq!(daily, "autotrade-daily-20251206.db");
        assert_eq!(
            parse_name(&daily),
            Some((Kind::Daily, t - (16 * 3600 + 31 * 60) * 1000 - 123))
        );
        assert_eq!(parse_name("autotrade.db"), None);
        assert_eq!(parse_name(".autotrade-daily-20251206.db.1-2.tmp"), None);
    }

    #[test]
    fn backups_are_checked_copies_and_only_the_newest_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::Store::open(dir.path(), "u", true).unwrap();
        store.add_event("info", "before the backups").unwrap();
        let day = 86_400_000;
        let t0 = 1_765_038_660_000;
        for i in 0..5 {
            make(dir.path(), Kind::Start, t0 + i * 1000).unwrap();
        }
        for i in 0..9 {
            assert!(daily_due(dir.path(), t0 + i * day));
            make(dir.path(), Kind::Daily, t0 + i * day).unwrap();
            assert!(!daily_due(dir.path(), t0 + i * day + 3_600_000));
        }
        let all = list(dir.path());
        let starts: Vec<_> = all.iter().filter(|b| b.kind == Kind::Start).collect();
        let dailies: Vec<_> = all.iter().filter(|b| b.kind == Kind::Daily).collect();
        assert_eq!(starts.len(), KEEP_STARTS);
        assert_eq!(dailies.len(), KEEP_DAILY);
        assert_eq!(starts[0].made_ms, t0 + 4000, "the newest kept");
        assert_eq!(dailies[0].made_ms / day, (t0 + 8 * day) / day);
        // Each is a whole store with the rows of its moment.
        let copy = Connection::open(&starts[0].path).unwrap();
        let n: i64 = copy
            .query_row(
                "SELECT COUNT(*) FROM events WHERE message = 'before the backups'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
        assert!(last_good(dir.path()).is_some());
        assert!(advice(dir.path()).contains("The last good backup is"));
    }
}
