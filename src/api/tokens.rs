//! Per-user bearer tokens: each user made through `POST config` gets its own, shown once in
//! that answer and kept only as its SHA-256. A user's token acts for that user alone; the
//! admin token (`AUTOTRADE_API_TOKEN`) creates users and acts for every one.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::sync::RwLock;

/// Who a request speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Loopback with no `AUTOTRADE_API_TOKEN` and no user token: open, as before tokens.
    Open,
    /// `AUTOTRADE_API_TOKEN`: every user, and creating users.
    Admin,
    /// A user's own token: that user's routes only.
    User(String),
}

impl Caller {
    /// May this caller act for `user_id`?
    pub fn may_act_for(&self, user_id: &str) -> bool {
        match self {
            Caller::Open | Caller::Admin => true,
            Caller::User(u) => u == user_id,
        }
    }

    /// The key of its rate-limit bucket, beside the address's (none when open).
    pub fn bucket(&self) -> Option<String> {
        match self {
            Caller::Open => None,
            Caller::Admin => Some("the admin token".into()),
            Caller::User(u) => Some(format!("user {u:?}'s token")),
        }
    }
}

/// SHA-256 of a token, lowercase hex: what the store keeps.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new token: `att_` and 64 hex digits (256 bits) from the system's random source.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!(
        "att_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// The users' token hashes, to look a bearer up by.
#[derive(Default)]
pub struct Tokens {
    by_hash: RwLock<HashMap<String, String>>,
}

impl Tokens {
    pub fn from_stored(rows: Vec<(String, String)>) -> Tokens {
        Tokens {
            by_hash: RwLock::new(rows.into_iter().map(|(u, h)| (h, u)).collect()),
        }
    }

    /// The user whose token `token` is.
    pub fn user_of(&self, token: &str) -> Option<String> {
        self.by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash(token))
            .cloned()
    }

    pub fn has_token(&self, user_id: &str) -> bool {
        self.by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|u| u == user_id)
    }

    /// The tokens as the store has them now (another instance may have made some).
    pub fn replace_all(&self, rows: Vec<(String, String)>) {
        *self.by_hash.write().unwrap_or_else(|p| p.into_inner()) =
            rows.into_iter().map(|(u, h)| (h, u)).collect();
    }

    /// `user_id`'s token is now the one hashed `token_sha256` (any older one stops working).
    pub fn set(&self, user_id: &str, token_sha256: String) {
        let mut map = self.by_hash.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, u| u != user_id);
        map.insert(token_sha256, user_id.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hashed_and_looked_up() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("att_") && a.len() == 68, "{a}");
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let t = Tokens::default();
        t.set("alice", hash(&a));
        assert_eq!(t.user_of(&a).as_deref(), Some("alice"));
        assert_eq!(t.user_of(&b), None);
        assert!(t.has_token("alice") && !t.has_token("bob"));
        t.set("alice", hash(&b));
        assert_eq!(t.user_of(&a), None, "the old token stops working");
        assert_eq!(t.user_of(&b).as_deref(), Some("alice"));
        assert!(Caller::User("alice".into()).may_act_for("alice"));
        assert!(!Caller::User("alice".into()).may_act_for("bob"));
        assert!(Caller::Admin.may_act_for("bob") && Caller::Open.may_act_for("bob"));
    }
}
