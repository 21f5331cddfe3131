//! The store, followed for alerts: what each user's store recorded after a cursor
//! ([`ChangeReader`]), turned into alerts ([`Classifier`]). A follower starts at the store's
//! head, so nothing that happened before it started is told; it reads with a connection of
//! its own, only when asked (after a commit), and blocks: call it off the async workers.

use super::alert::{Alert, Classifier};
use crate::store::{ChangeReader, Cursor, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Most changes one read takes; a follower further behind skips to the head.
const MAX_BATCH: usize = 10_000;

struct Followed {
    cursor: Cursor,
    classifier: Classifier,
    /// Nothing that happened before this (ms) is told: a user first seen after the start
    /// is read from its beginning, but its history is not news.
    not_before_ms: Option<i64>,
}

pub struct Feed {
    reader: ChangeReader,
    users: BTreeMap<String, Followed>,
    started_ms: i64,
}

impl Feed {
    /// A follower of the data dir's store (made and migrated already), following nobody yet.
    pub fn open(data_dir: &Path) -> Result<Feed> {
        Ok(Feed {
            reader: ChangeReader::open(data_dir)?,
            users: BTreeMap::new(),
            started_ms: crate::store::now_ms(),
        })
    }

    /// Follow `user` from now on: its head, and the decisions pending at it as already known.
    pub fn follow(&mut self, user: &str) -> Result<()> {
        let (cursor, pending) = self.reader.start(user)?;
        self.users.insert(
            user.to_string(),
            Followed {
                cursor,
                classifier: Classifier::new(user, pending),
                not_before_ms: None,
            },
        );
        Ok(())
    }

    /// Follow a user that appeared after the start (created through the API): from its
    /// first row, so that what its loop wrote before this read is not missed, telling only
    /// what happened since the follower started.
    pub fn follow_new(&mut self, user: &str) {
        self.users.insert(
            user.to_string(),
            Followed {
                cursor: Cursor::default(),
                classifier: Classifier::new(user, []),
                not_before_ms: Some(self.started_ms),
            },
        );
    }

    pub fn follows(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// A counter that moves when another connection commits.
    pub fn data_version(&self) -> Result<i64> {
        self.reader.data_version()
    }

    /// The alerts of what `user`'s store recorded since the last read (none for a user
    /// not followed). On an error the cursor stays, so the next read tries again.
    pub fn poll(&mut self, user: &str) -> Result<Vec<Alert>> {
        let Some(f) = self.users.get_mut(user) else {
            return Ok(Vec::new());
        };
        let Some(batch) = self.reader.since(user, f.cursor, MAX_BATCH)? else {
            let head = self.reader.head(user)?;
            tracing::warn!(
                "alerts for {user}: more than {MAX_BATCH} changes since the last read; skipped to the newest"
            );
            f.cursor = head;
            return Ok(Vec::new());
        };
        f.cursor = batch.cursor;
        let mut out = Vec::new();
        for change in &batch.changes {
            if f.not_before_ms.is_some_and(|t| change.at_ms() < t) {
                continue;
            }
            let (name, json) = change.to_json();
            if let Some(a) = f.classifier.alert(name, &json) {
                out.push(a);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::alert::AlertKind;
    use crate::store::{Origin, Status, Store};

    fn decision(symbol: &str) -> crate::domain::rules::Decision {
        let mut d = crate::domain::rules::Decision::untrusted(
            symbol,
            "test".into(),
            serde_json::Value::Null,
            None,
        );
        d.action = crate::domain::types::Verdict::Buy;
        d
    }

    #[test]
    fn what_was_there_before_the_start_is_not_told_and_the_rest_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "u1", true).unwrap();
        let insert = |symbol: &str| {
            store
                .write(|tx| {
                    tx.insert_decision(
                        &decision(symbol),
                        Status::Pending,
                        Origin::Manual,
                        "paper",
                        &serde_json::Value::Null,
                    )
                })
                .unwrap()
        };
        let old = insert("ETH/USD");
        store.add_event("halt", "HALTED: before the start").unwrap();
        let mut feed = Feed::open(dir.path()).unwrap();
        feed.follow("u1").unwrap();
        assert!(feed.poll("u1").unwrap().is_empty());
        // The old decision changes (a resize writes an event row): still not news.
        std::thread::sleep(std::time::Duration::from_millis(2));
        store
            .write(|tx| {
                tx.set_status(&old.log_id, Status::Pending, "resized")?;
                tx.add_event("info", "resized")
            })
            .unwrap();
        assert!(feed.poll("u1").unwrap().is_empty());
        let new = insert("BTC/USD");
        store.add_event("halt", "HALTED: daily loss").unwrap();
        let got = feed.poll("u1").unwrap();
        let kinds: Vec<_> = got.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, vec![AlertKind::Pending, AlertKind::Halt], "{got:?}");
        assert_eq!(got[0].log_id.as_deref(), Some(new.log_id.as_str()));
        assert!(feed.poll("u1").unwrap().is_empty());
        // Another user's rows are not this user's alerts.
        let other = Store::open(dir.path(), "u2", true).unwrap();
        other.add_event("halt", "HALTED: u2").unwrap();
        assert!(feed.poll("u1").unwrap().is_empty());
        assert!(feed.poll("u2").unwrap().is_empty(), "u2 is not followed");
    }

    #[test]
    fn a_user_seen_later_is_read_from_its_start_without_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let _store = Store::open(dir.path(), "u1", true).unwrap();
        let other = Store::open(dir.path(), "late", true).unwrap();
        // Written with a time before the follower starts.
        other.add_event("halt", "HALTED: old news").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let mut feed = Feed::open(dir.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        other.add_event("halt", "HALTED: new").unwrap();
        feed.follow_new("late");
        let got = feed.poll("late").unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].body, "new");
    }
}
