//! `autotrade-tui attach URL`: the dashboard of a `serve` on another machine. Everything goes
//! through the REST API with the bearer token from `AUTOTRADE_API_TOKEN`: the dashboard's
//! settings and snapshot (`GET /api/v1/auto-trade/dashboard/{user_id}`), its actions
//! (confirm, cancel, resize, trade, close, enable, disable, kill, the history view), and the
//! server-sent events stream
//! (`GET /api/v1/auto-trade/events/{user_id}`), which says when to load a new snapshot.

use crate::app::{Effect, Outcome, Settings};
use crate::desk::Snapshot;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use std::time::Duration;

/// A `serve` and the user whose dashboard this is.
pub struct Remote {
    base: String,
    /// `base` redacted, for every message and the header.
    shown: String,
    user: String,
    http: reqwest::Client,
    /// The events stream has no timeout: it stays open.
    stream: reqwest::Client,
}

/// How long a request (not the stream) may take.
const TIMEOUT: Duration = Duration::from_secs(10);

impl Remote {
    /// A client of `url` (`http://host:port`) for `user`, with `token` as its bearer token.
    pub fn new(url: &str, user: &str, token: Option<&str>) -> Result<Remote, String> {
        let base = url.trim_end_matches('/').to_string();
        let shown = crate::net::redact_url(&base);
        let parsed =
            reqwest::Url::parse(&base).map_err(|e| format!("{shown:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{shown:?} must be an http:// or https:// URL"));
        }
        let mut headers = HeaderMap::new();
        if let Some(t) = token {
            let mut v = HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| "AUTOTRADE_API_TOKEN is not a valid header value".to_string())?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let build = |timeout: Option<Duration>| {
            let b = reqwest::Client::builder()
                .default_headers(headers.clone())
                .connect_timeout(TIMEOUT)
                .redirect(crate::net::same_origin_redirects())
                .no_proxy();
            match timeout {
                Some(t) => b.timeout(t),
                None => b,
            }
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))
        };
        Ok(Remote {
            base,
            shown,
            user: user.to_string(),
            http: build(Some(TIMEOUT))?,
            stream: build(None)?,
        })
    }

    /// The server's address as shown: any password or token in it redacted.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The user whose dashboard this is.
    pub fn user(&self) -> &str {
        &self.user
    }

    fn path(&self, what: &str) -> String {
        format!("{}/api/v1/auto-trade/{what}/{}", self.base, self.user)
    }

    /// The dashboard's settings and a snapshot of the user's desk.
    pub async fn dashboard(&self) -> Result<(Settings, Snapshot), String> {
        let v = self.get(&self.path("dashboard")).await?;
        let settings = serde_json::from_value(v.get("settings").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("the server's settings are unreadable: {e}"))?;
        let snapshot = serde_json::from_value(v.get("snapshot").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("the server's snapshot is unreadable: {e}"))?;
        Ok((settings, snapshot))
    }

    async fn get(&self, url: &str) -> Result<Value, String> {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{}: {}", self.shown, crate::market::rest::without_url(&e)))?;
        answer(r).await.map_err(|(_, m)| m)
    }

    async fn post(&self, url: &str, body: Value) -> Result<Value, (u16, String)> {
        let r = self.http.post(url).json(&body).send().await.map_err(|e| {
            (
                0,
                format!("{}: {}", self.shown, crate::market::rest::without_url(&e)),
            )
        })?;
        answer(r).await
    }

    /// Perform a dashboard action on the server.
    pub async fn execute(&self, effect: Effect) -> Outcome {
        let done = match effect {
            Effect::Confirm { log_id, .. } => {
                self.post(
                    &format!("{}/confirm", self.path("decisions")),
                    json!({ "log_id": log_id }),
                )
                .await
            }
            Effect::Cancel { log_id, .. } => {
                self.post(
                    &format!("{}/cancel", self.path("decisions")),
                    json!({ "log_id": log_id }),
                )
                .await
            }
            Effect::SetEnabled(true) => self.post(&self.path("enable"), json!({})).await,
            Effect::SetEnabled(false) => self.post(&self.path("disable"), json!({})).await,
            Effect::Kill => self.post(&self.path("kill"), json!({})).await,
            Effect::Flatten => {
                self.post(&self.path("kill"), json!({ "flatten": true }))
                    .await
            }
            Effect::ResetHalt => {
                self.post(&self.path("enable"), json!({ "reset": true }))
                    .await
            }
            Effect::Quit => return Outcome::Ok,
            Effect::CheckNow | Effect::StartEngine => {
                return Outcome::Refused("the server's engine checks on its own schedule".into());
            }
            Effect::Trade { order, allow, .. } => {
                let mut body = json!({
                    "symbol": order.symbol,
                    "side": order.side,
                    "size": order.size,
                    "take_profit": order.take_profit,
                    "stop_loss": order.stop_loss,
                });
                for (key, v) in [
                    ("allow_risk_percent", allow.risk_percent),
                    ("allow_reward_to_risk", allow.reward_to_risk),
                    ("allow_position_percent", allow.position_percent),
                ] {
                    if let Some(v) = v {
                        body[key] = json!(v);
                    }
                }
                return match self.post(&self.path("trade"), body).await {
                    Ok(_) => Outcome::Ok,
                    // The server recorded the refusal as an event: the events pane shows it.
                    Err((status, _)) if (400..500).contains(&status) && status != 401 => {
                        Outcome::Recorded
                    }
                    Err((_, msg)) => Outcome::Failed(msg),
                };
            }
            Effect::Resize { log_id, size, .. } => {
                self.post(
                    &format!("{}/resize", self.path("decisions")),
                    json!({ "log_id": log_id, "size": size }),
                )
                .await
            }
            Effect::ClosePosition {
                position_id,
                symbol,
                ..
            } => {
                self.post(
                    &self.path("close"),
                    json!({ "symbol": symbol, "position_id": position_id }),
                )
                .await
            }
            Effect::LoadHistory { query } => {
                let mut url = match reqwest::Url::parse(&self.path("history")) {
                    Ok(u) => u,
                    Err(e) => return Outcome::Failed(e.to_string()),
                };
                url.query_pairs_mut().append_pair("query", &query);
                return match self.get(url.as_str()).await {
                    Ok(v) => match serde_json::from_value(v) {
                        Ok(h) => Outcome::History(Box::new(h)),
                        Err(e) => {
                            Outcome::Failed(format!("the server's history is unreadable: {e}"))
                        }
                    },
                    Err(e) => Outcome::Failed(e),
                };
            }
            Effect::LoadReport => {
                return match self.get(&self.path("report")).await {
                    Ok(v) => match serde_json::from_value(v) {
                        Ok(r) => Outcome::Report(Box::new(r)),
                        Err(e) => {
                            Outcome::Failed(format!("the server's report is unreadable: {e}"))
                        }
                    },
                    Err(e) => Outcome::Failed(e),
                };
            }
        };
        match done {
            Ok(_) => Outcome::Ok,
            Err((status, msg)) if (400..500).contains(&status) => Outcome::Refused(msg),
            Err((_, msg)) => Outcome::Failed(msg),
        }
    }

    /// Open the events stream; `on_event` is called for each event (its name and its data),
    /// until the stream ends or fails (its error is returned).
    pub async fn follow(&self, mut on_event: impl FnMut(&str, &str)) -> Result<(), String> {
        let mut r = self
            .stream
            .get(self.path("events"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|e| crate::market::rest::without_url(&e))?;
        if !r.status().is_success() {
            return Err(answer(r).await.err().map(|(_, m)| m).unwrap_or_default());
        }
        let mut buf = String::new();
        loop {
            let chunk = match r.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => return Err("the server closed the events stream".into()),
                Err(e) => return Err(crate::market::rest::without_url(&e)),
            };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            // Events end with a blank line; comments (keep-alives) start with ':'.
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut name = "message";
                let mut data: Option<String> = None;
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.trim();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        // One optional space after the colon; several data lines join.
                        let d = d.strip_prefix(' ').unwrap_or(d);
                        match &mut data {
                            Some(all) => {
                                all.push('\n');
                                all.push_str(d);
                            }
                            None => data = Some(d.to_string()),
                        }
                    }
                }
                if let Some(data) = data {
                    on_event(name, &data);
                }
            }
            if buf.len() > 1 << 20 {
                return Err("the events stream sent an event larger than 1 MiB".into());
            }
        }
    }
}

/// The JSON of a successful answer, or its status and the server's message.
async fn answer(r: reqwest::Response) -> Result<Value, (u16, String)> {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    // The API's errors are `{"detail": …}` (as the seed's service answered).
    let msg = ["detail", "message"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| format!("the server answered {status}"));
    Err((
        status.as_u16(),
        match status.as_u16() {
            401 | 403 => format!("the server refused the token: {msg} (set AUTOTRADE_API_TOKEN)"),
            _ => msg,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_address_is_shown_without_its_password() {
        let r = Remote::new("http://admin:s3cr3t@127.0.0.1:8080/", "default", None).unwrap();
        assert_eq!(r.url(), "http://***@127.0.0.1:8080");
        let e = Remote::new("ftp://admin:s3cr3t@127.0.0.1:8080", "default", None)
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("ftp://***@127.0.0.1:8080") && !e.contains("s3cr3t"),
            "{e}"
        );
    }
}
