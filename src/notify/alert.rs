//! What is worth telling the trader, read from the store's changes in the event stream's own
//! JSON (`decision`, `fill`, `event`, as `GET events/{user_id}` sends them): the same reading
//! serves a dashboard on this machine, one attached to a remote `serve`, and the webhook.

use crate::domain::money::{fmt_price, fmt_qty, fmt_signed};
use serde_json::{Map, Value, json};
use std::collections::{HashSet, VecDeque};

/// The level of the event row a loss halt writes; its message starts with [`HALT_PREFIX`].
pub const HALT_LEVEL: &str = "halt";
pub const HALT_PREFIX: &str = "HALTED:";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A new decision waits for the trader's confirmation.
    Pending,
    /// A position opened.
    Fill,
    /// A position closed at its take-profit.
    TakeProfit,
    /// A position closed at its stop-loss (a trailing stop included).
    StopLoss,
    /// A position closed otherwise: by the trader, the API, a flatten, at the broker.
    Closed,
    /// A loss limit halted new entries.
    Halt,
    /// The ML engine stopped answering.
    Outage,
    /// The ML engine answers again.
    Recovered,
    /// The store cannot write (a full disk): nothing new is stored, exits are watched from
    /// memory. Told directly (no event row can be written then).
    StoreFailing,
    /// The store writes again (its event row).
    StoreRecovered,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Pending => "pending",
            AlertKind::Fill => "fill",
            AlertKind::TakeProfit => "take_profit",
            AlertKind::StopLoss => "stop_loss",
            AlertKind::Closed => "closed",
            AlertKind::Halt => "halt",
            AlertKind::Outage => "outage",
            AlertKind::Recovered => "recovered",
            AlertKind::StoreFailing => "store_failing",
            AlertKind::StoreRecovered => "store_recovered",
        }
    }

    /// Whether the bell rings for it. A close the trader asked for and a recovery are
    /// quieter: a desktop notification and the webhook, no bell.
    pub fn rings(self) -> bool {
        !matches!(
            self,
            AlertKind::Closed | AlertKind::Recovered | AlertKind::StoreRecovered
        )
    }
}

/// One thing to tell the trader.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub kind: AlertKind,
    /// The same for one thing however often it is read: `decision:{log_id}`, `fill:{id}`,
    /// `event:{id}`.
    pub key: String,
    pub user_id: String,
    pub symbol: Option<String>,
    pub log_id: Option<String>,
    /// When it happened (RFC 3339, as the store prints it).
    pub at: Option<String>,
    /// A short line: `BUY BTC/USD pending`.
    pub title: String,
    /// The figures: `confidence 0.83, entry 45,000.00, …`.
    pub body: String,
    /// Figures for the webhook's structured fields (prices, quantity, P&L …).
    pub fields: Map<String, Value>,
}

impl Alert {
    /// Title and body on one line.
    pub fn line(&self) -> String {
        if self.body.is_empty() {
            self.title.clone()
        } else {
            format!("{}: {}", self.title, self.body)
        }
    }
}

/// A set that keeps only the newest `cap` entries, so a long run cannot grow it without end.
#[derive(Debug, Clone)]
pub struct Recent {
    cap: usize,
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Recent {
    pub fn new(cap: usize) -> Recent {
        Recent {
            cap: cap.max(1),
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.set.contains(key)
    }

    /// Add `key`; false when it was there already.
    pub fn insert(&mut self, key: &str) -> bool {
        if self.set.contains(key) {
            return false;
        }
        if self.order.len() >= self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(key.to_string());
        self.order.push_back(key.to_string());
        true
    }
}

/// How many keys each follower remembers: far more than can happen between two reads.
const REMEMBERED: usize = 4096;

/// Turns one user's changes into alerts, each thing once: a decision rings when it is first
/// seen pending (never again when it is resized, nor when it was pending before the reader
/// started), a fill and an event row once each.
#[derive(Debug, Clone)]
pub struct Classifier {
    user_id: String,
    known_pending: Recent,
    given: Recent,
}

impl Classifier {
    /// `pending`: the decisions already pending when following started (they do not ring).
    pub fn new(user_id: &str, pending: impl IntoIterator<Item = String>) -> Classifier {
        let mut known_pending = Recent::new(REMEMBERED);
        for id in pending {
            known_pending.insert(&id);
        }
        Classifier {
            user_id: user_id.to_string(),
            known_pending,
            given: Recent::new(REMEMBERED),
        }
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The alert for one change of the event stream (`name` and its JSON), if it is one the
    /// trader should hear of and has not heard of yet.
    pub fn alert(&mut self, name: &str, data: &Value) -> Option<Alert> {
        let alert = match name {
            "decision" => self.decision(data),
            "fill" => self.fill(data),
            "event" => self.event(data),
            _ => None,
        }?;
        self.given.insert(&alert.key).then_some(alert)
    }

    fn decision(&mut self, v: &Value) -> Option<Alert> {
        let log_id = text(v, "log_id")?;
        if v.get("status").and_then(Value::as_str) != Some("pending") {
            return None;
        }
        if !self.known_pending.insert(&log_id) {
            return None;
        }
        let d = v.get("decision")?;
        let symbol = text(d, "symbol")?;
        let action = text(d, "action").unwrap_or_else(|| "?".into());
        let origin = text(v, "origin");
        let num = |k: &str| d.get(k).and_then(Value::as_f64);
        let mut body = Vec::new();
        if let Some(c) = num("confidence") {
            body.push(format!("confidence {c:.2}"));
        }
        for (label, key) in [
            ("entry", "entry_price"),
            ("TP", "take_profit"),
            ("SL", "stop_loss"),
        ] {
            if let Some(p) = num(key) {
                body.push(format!("{label} {}", fmt_price(p)));
            }
        }
        if let Some(q) = num("position_size") {
            body.push(format!("size {}", fmt_qty(q)));
        }
        let rr = v
            .get("risk_reward")
            .and_then(|r| r.get("risk_reward_ratio"))
            .and_then(Value::as_f64);
        if let Some(rr) = rr {
            body.push(format!("R:R {rr:.2}"));
        }
        body.push(format!("confirm or cancel {log_id}"));
        let by = match origin.as_deref() {
            Some("agent") => " (agent)",
            Some("manual") => " (manual)",
            _ => "",
        };
        let mut fields = Map::new();
        fields.insert("action".into(), json!(action));
        for key in [
            "confidence",
            "entry_price",
            "take_profit",
            "stop_loss",
            "position_size",
        ] {
            fields.insert(key.into(), d.get(key).cloned().unwrap_or(Value::Null));
        }
        fields.insert("risk_reward_ratio".into(), json!(rr));
        fields.insert("origin".into(), json!(origin));
        Some(Alert {
            kind: AlertKind::Pending,
            key: format!("decision:{log_id}"),
            user_id: self.user_id.clone(),
            title: format!("{action} {symbol} pending{by}"),
            body: body.join(", "),
            symbol: Some(symbol),
            log_id: Some(log_id),
            at: text(v, "created_at"),
            fields,
        })
    }

    fn fill(&self, v: &Value) -> Option<Alert> {
        let id = v.get("fill_id").and_then(Value::as_i64)?;
        let symbol = text(v, "symbol")?;
        let kind = text(v, "kind")?;
        let side = text(v, "side").unwrap_or_default();
        let quantity = v.get("quantity").and_then(Value::as_f64);
        let price = v.get("price").and_then(Value::as_f64);
        let reason = text(v, "reason").unwrap_or_default();
        let position = v.get("position");
        let pnl = position
            .and_then(|p| p.get("realized_pnl"))
            .and_then(Value::as_f64);
        // The position's side (a close fill is the opposite order).
        let held = position
            .and_then(|p| text(p, "side"))
            .unwrap_or_else(|| side.clone());
        let qty = quantity.map(fmt_qty).unwrap_or_default();
        let at_price = price
            .map(|p| format!(" @ {}", fmt_price(p)))
            .unwrap_or_default();
        let log_id = text(v, "log_id");
        let (alert_kind, title, body) = match kind.as_str() {
            "open" => (
                AlertKind::Fill,
                format!("Filled {side} {symbol}"),
                format!(
                    "{qty}{at_price} ({})",
                    log_id.as_deref().unwrap_or("manual")
                ),
            ),
            "close" => {
                let (k, what) = match reason.as_str() {
                    "take_profit" => (AlertKind::TakeProfit, "Take-profit"),
                    r if r == "stop_loss" || r.starts_with("trailing") => {
                        (AlertKind::StopLoss, "Stop-loss")
                    }
                    _ => (AlertKind::Closed, "Closed"),
                };
                let why = if k == AlertKind::Closed && !reason.is_empty() {
                    format!(" ({reason})")
                } else {
                    String::new()
                };
                let pnl_text = pnl
                    .map(|p| format!(", P&L {}", fmt_signed(p)))
                    .unwrap_or_default();
                (
                    k,
                    format!("{what} {symbol}"),
                    format!("closed {held} {qty}{at_price}{why}{pnl_text}"),
                )
            }
            _ => return None,
        };
        let mut fields = Map::new();
        fields.insert("fill_id".into(), json!(id));
        fields.insert("side".into(), json!(side));
        fields.insert("quantity".into(), json!(quantity));
        fields.insert("price".into(), json!(price));
        fields.insert("reason".into(), json!(reason));
        fields.insert("realized_pnl".into(), json!(pnl));
        Some(Alert {
            kind: alert_kind,
            key: format!("fill:{id}"),
            user_id: self.user_id.clone(),
            symbol: Some(symbol),
            log_id,
            at: text(v, "at"),
            title,
            body,
            fields,
        })
    }

    fn event(&self, v: &Value) -> Option<Alert> {
        let id = v.get("id").and_then(Value::as_i64)?;
        let level = text(v, "level").unwrap_or_default();
        let message = text(v, "message").unwrap_or_default();
        let (kind, title, body) = if level == HALT_LEVEL || message.starts_with(HALT_PREFIX) {
            let why = message
                .strip_prefix(HALT_PREFIX)
                .unwrap_or(&message)
                .trim()
                .to_string();
            (AlertKind::Halt, "HALTED".to_string(), why)
        } else if message.starts_with(crate::desk::SOURCE_DOWN_EVENT) {
            (
                AlertKind::Outage,
                "ML engine unreachable".to_string(),
                "no new decisions until it answers; the loop backs off".to_string(),
            )
        } else if message.starts_with(crate::store::STORE_BACK_EVENT) {
            (
                AlertKind::StoreRecovered,
                "Store writes again".to_string(),
                message.clone(),
            )
        } else if message.starts_with(crate::desk::SOURCE_BACK_EVENT) {
            (
                AlertKind::Recovered,
                "ML engine reachable again".to_string(),
                String::new(),
            )
        } else {
            return None;
        };
        let mut fields = Map::new();
        fields.insert("event_id".into(), json!(id));
        fields.insert("level".into(), json!(level));
        Some(Alert {
            kind,
            key: format!("event:{id}"),
            user_id: self.user_id.clone(),
            symbol: None,
            log_id: None,
            at: text(v, "at"),
            title,
            body,
            fields,
        })
    }
}

/// The alert for a store that cannot write, told directly: `key` names the outage (its start).
pub fn store_failing(user_id: &str, health: &crate::store::WriteHealth) -> Option<Alert> {
    let f = health.failing.as_ref()?;
    let mut fields = Map::new();
    fields.insert("error".into(), json!(f.message));
    fields.insert("failed_writes".into(), json!(f.failures));
    Some(Alert {
        kind: AlertKind::StoreFailing,
        key: format!("store_failing:{}", f.since_ms),
        user_id: user_id.to_string(),
        symbol: None,
        log_id: None,
        at: Some(crate::store::fmt_ts(f.since_ms)),
        title: "STORE FAILING".to_string(),
        body: format!(
            "{}: nothing new is stored (no decisions, fills or closes); exits are watched from memory and closed when it writes again",
            f.message
        ),
        fields,
    })
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(log_id: &str, size: f64) -> Value {
        json!({"log_id": log_id, "status": "pending", "origin": "auto", "created_at": "2026-01-01T00:00:00Z",
               "decision": {"symbol": "BTC/USD", "action": "BUY", "confidence": 0.8265,
                            "entry_price": 45000.0, "take_profit": 47250.0, "stop_loss": 44100.0,
                            "position_size": size},
               "risk_reward": {"risk_reward_ratio": 2.5}})
    }

    #[test]
    fn a_decision_rings_once_when_first_seen_pending() {
        let mut c = Classifier::new("default", ["decision_old".to_string()]);
        // Pending before the reader started: resized since, still not new.
        assert!(c.alert("decision", &pending("decision_old", 0.1)).is_none());
        let a = c.alert("decision", &pending("decision_new", 0.1)).unwrap();
        assert_eq!(a.kind, AlertKind::Pending);
        assert_eq!(a.title, "BUY BTC/USD pending");
        assert!(a.body.contains("entry 45,000.00"), "{}", a.body);
        assert!(a.body.contains("R:R 2.50"), "{}", a.body);
        assert_eq!(a.log_id.as_deref(), Some("decision_new"));
        // Resized, or read again: nothing more.
        assert!(
            c.alert("decision", &pending("decision_new", 0.05))
                .is_none()
        );
        assert!(c.alert("decision", &pending("decision_new", 0.1)).is_none());
        // Executed, cancelled, HOLD: not a pending alert.
        let mut done = pending("decision_x", 0.1);
        done["status"] = json!("executed");
        assert!(c.alert("decision", &done).is_none());
    }

    fn fill(id: i64, kind: &str, reason: &str, pnl: Option<f64>) -> Value {
        json!({"fill_id": id, "kind": kind, "log_id": "decision_a", "symbol": "BTC/USD",
               "side": if kind == "open" { "BUY" } else { "SELL" }, "quantity": 0.0444,
               "price": 47250.0, "at": "2026-01-01T00:00:00Z", "reason": reason,
               "position": {"side": "BUY", "realized_pnl": pnl}})
    }

    #[test]
    fn fills_are_told_by_how_they_opened_or_closed() {
        let mut c = Classifier::new("u", []);
        let open = c
            .alert("fill", &fill(1, "open", "decision executed", None))
            .unwrap();
        assert_eq!(open.kind, AlertKind::Fill);
        assert_eq!(open.title, "Filled BUY BTC/USD");
        let tp = c
            .alert("fill", &fill(2, "close", "take_profit", Some(99.9)))
            .unwrap();
        assert_eq!(tp.kind, AlertKind::TakeProfit);
        assert!(
            tp.body
                .contains("closed BUY 0.0444 @ 47,250.00, P&L +99.90"),
            "{}",
            tp.body
        );
        let sl = c
            .alert("fill", &fill(3, "close", "stop_loss", Some(-40.0)))
            .unwrap();
        assert_eq!(sl.kind, AlertKind::StopLoss);
        let trail = c
            .alert("fill", &fill(4, "close", "trailing_stop", None))
            .unwrap();
        assert_eq!(trail.kind, AlertKind::StopLoss);
        let by_hand = c
            .alert("fill", &fill(5, "close", "closed by trader", Some(1.0)))
            .unwrap();
        assert_eq!(by_hand.kind, AlertKind::Closed);
        assert!(!by_hand.kind.rings());
        assert!(
            by_hand.body.contains("(closed by trader)"),
            "{}",
            by_hand.body
        );
        // The same fill read twice: once.
        assert!(
            c.alert("fill", &fill(2, "close", "take_profit", Some(99.9)))
                .is_none()
        );
    }

    #[test]
    fn halts_and_outages_come_from_their_event_rows_and_nothing_else_does() {
        let mut c = Classifier::new("u", []);
        let ev = |id: i64, level: &str, message: &str| json!({"id": id, "at": "2026-01-01T00:00:00Z", "level": level, "message": message});
        let halt = c
            .alert(
                "event",
                &ev(1, "halt", "HALTED: daily loss 3.10% reached the 3% limit"),
            )
            .unwrap();
        assert_eq!(halt.kind, AlertKind::Halt);
        assert_eq!(halt.body, "daily loss 3.10% reached the 3% limit");
        let down = c
            .alert("event", &ev(2, "error", crate::desk::SOURCE_DOWN_EVENT))
            .unwrap();
        assert_eq!(down.kind, AlertKind::Outage);
        let back = c
            .alert("event", &ev(3, "info", crate::desk::SOURCE_BACK_EVENT))
            .unwrap();
        assert_eq!(back.kind, AlertKind::Recovered);
        assert!(
            c.alert("event", &ev(4, "info", "auto-trading enabled"))
                .is_none()
        );
        assert!(
            c.alert("event", &ev(5, "error", "reading the store: locked"))
                .is_none()
        );
        assert!(c.alert("ready", &json!({})).is_none());
        assert!(c.alert("event", &ev(1, "halt", "HALTED: again")).is_none());
    }

    #[test]
    fn recent_forgets_the_oldest_beyond_its_cap() {
        let mut r = Recent::new(2);
        assert!(r.insert("a"));
        assert!(!r.insert("a"));
        assert!(r.insert("b"));
        assert!(r.insert("c"));
        assert!(!r.contains("a"));
        assert!(r.contains("b") && r.contains("c"));
    }
}
