//! `api_tokens`: each REST API user's bearer token, as its SHA-256 (the token itself is shown
//! once, when it is made, and kept nowhere). Store-wide: any user, not only this store's.

use super::db::params;
use super::{Result, Store};

impl Store {
    /// Give `user_id` the token whose SHA-256 (lowercase hex) is `token_sha256`, replacing any
    /// it had.
    pub fn put_api_token(&self, user_id: &str, token_sha256: &str) -> Result<()> {
        self.write(|tx| {
            tx.conn.execute(
                "INSERT INTO api_tokens (user_id, token_sha256, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user_id) DO UPDATE SET token_sha256 = excluded.token_sha256,
                                                   created_at = excluded.created_at",
                params![user_id, token_sha256, tx.now],
            )?;
            Ok(())
        })
    }

    /// Every user's token hash, by user id.
    pub fn api_tokens(&self) -> Result<Vec<(String, String)>> {
        self.read(|tx| {
            let (stmt_db, stmt_sql) = (
                tx.conn,
                "SELECT user_id, token_sha256 FROM api_tokens ORDER BY user_id",
            );
            let rows = stmt_db.query_map(stmt_sql, params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_kept_by_user_and_replaced() {
        let s = Store::open_in_memory("default", true).unwrap();
        assert!(s.api_tokens().unwrap().is_empty());
        s.put_api_token("alice", "aa").unwrap();
        s.put_api_token("bob", "bb").unwrap();
        s.put_api_token("alice", "cc").unwrap();
        assert_eq!(
            s.api_tokens().unwrap(),
            vec![("alice".into(), "cc".into()), ("bob".into(), "bb".into())]
        );
    }
}
