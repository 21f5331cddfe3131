//! The headless engine as a real process (`run`, `serve`): started with its stdout and stderr
//! captured, waited for by the line it prints, signalled, and read over server-sent events.

use super::bin;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A running `autotrade-tui` subcommand; killed when dropped.
pub struct Engine {
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: Arc<Mutex<String>>,
}

/// The binary with `args`, the config and data dir in `dir`, and no API token or rate
/// limit from the test's own environment unless `env` sets them.
pub fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .env_remove("AUTOTRADE_API_TOKEN")
        .env_remove("AUTOTRADE_API_RATE_LIMIT")
        .env_remove("AUTOTRADE_WEBHOOK_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Engine {
    /// Start `cmd` with stdin, stdout and stderr piped.
    pub fn spawn(mut cmd: Command) -> Engine {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the binary");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        Engine {
            child,
            stdout: rx,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The first stdout line containing `needle`, within 30 s.
    pub fn line_with(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .stdout
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!("exited with {status} before {needle:?}: {}", self.stderr());
                    }
                    assert!(
                        Instant::now() < deadline,
                        "never printed {needle:?}: {}",
                        self.stderr()
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    panic!("stdout closed before {needle:?}: {}", self.stderr());
                }
            }
        }
    }

    /// Send a signal by name (`TERM`, `HUP`, `INT`).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// The exit status, waiting at most `limit`.
    pub fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {limit:?} after being told to stop: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `serve --listen 127.0.0.1:0` started, and its `http://127.0.0.1:PORT`.
pub fn serve(dir: &Path, env: &[(&str, &str)]) -> (Engine, String) {
    let mut e = Engine::spawn(command(dir, &["serve", "--listen", "127.0.0.1:0"], env));
    let line = e.line_with("listening on http://");
    let addr = line
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    (e, format!("http://{addr}"))
}

/// One server-sent event: its name, id (when it had one) and data.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl Sse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("not JSON: {}: {e}", self.data))
    }
}

/// A client of an event stream, read on a thread of its own.
pub struct SseClient {
    pub events: mpsc::Receiver<Sse>,
    /// Comment lines seen (keep-alives).
    pub comments: Arc<Mutex<Vec<String>>>,
}

/// A response that was not a stream: status and body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: serde_json::Value,
}

impl SseClient {
    /// `GET url` with `headers`; the stream, or the status and body of a refusal.
    pub fn connect(url: &str, headers: &[(&str, &str)]) -> Result<SseClient, Refused> {
        let url = url.to_string();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (first_tx, first_rx) = mpsc::channel::<Result<(), Refused>>();
        let (tx, rx) = mpsc::channel();
        let comments = Arc::new(Mutex::new(Vec::new()));
        let seen = comments.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut req = reqwest::Client::new()
                    .get(&url)
                    .header("Accept", "text/event-stream");
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let mut resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                if status != 200 {
                    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
                    let _ = first_tx.send(Err(Refused { status, body }));
                    return;
                }
                let _ = first_tx.send(Ok(()));
                let mut buf = String::new();
                while let Ok(Some(chunk)) = resp.chunk().await {
                    buf.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(end) = buf.find("\n\n") {
                        let frame: String = buf.drain(..end + 2).collect();
                        let mut ev = Sse {
                            event: "message".into(),
                            id: None,
                            data: String::new(),
                        };
                        let mut any = false;
                        for line in frame.lines() {
                            if let Some(c) = line.strip_prefix(':') {
                                seen.lock().unwrap().push(c.trim().to_string());
                            } else if let Some((k, v)) = line.split_once(':') {
                                let v = v.strip_prefix(' ').unwrap_or(v);
                                any = true;
                                match k {
                                    "event" => ev.event = v.to_string(),
                                    "id" => ev.id = Some(v.to_string()),
                                    "data" => {
                                        if !ev.data.is_empty() {
                                            ev.data.push('\n');
                                        }
                                        ev.data.push_str(v);
                                    }
                                    _ => {}
                                }
                            }
                        }
                        if any && tx.send(ev).is_err() {
                            return;
                        }
                    }
                }
            });
        });
        match first_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(())) => Ok(SseClient {
                events: rx,
                comments,
            }),
            Ok(Err(r)) => Err(r),
            Err(_) => panic!("no answer within 20 s"),
        }
    }

    /// The next event within `limit`, or None.
    pub fn next_within(&self, limit: Duration) -> Option<Sse> {
        self.events.recv_timeout(limit).ok()
    }

    /// The next event, within 20 s.
    pub fn next(&self) -> Sse {
        self.next_within(Duration::from_secs(20))
            .expect("an event within 20 s")
    }
}
