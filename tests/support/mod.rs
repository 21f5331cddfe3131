//! What tests and benches share: the fake ML engine on 127.0.0.1, the real binary run once
//! or in a pseudo-terminal, config files, dashboard fixtures, and the benches' helpers.
//!
//! Tests use it as `mod support;`; benches, which cannot import from `tests/`, as
//! `#[path = "../tests/support/mod.rs"] mod support;`. Each crate uses a part of it.
#![allow(dead_code)]

pub mod alpaca;
pub mod bench;
pub mod engine;
pub mod fixtures;
pub mod market;
pub mod ml_engine;
pub mod openapi;
pub mod pg;
pub mod pty;
pub mod serve;
pub mod webhook;

// The engine's names at the top, as tests have always used them; no crate uses them all.
#[allow(unused_imports)]
pub use ml_engine::{MlServer, Reply, phase, phase_path, signal, signal_path};

use serde_json::Value;
use std::path::{Path, PathBuf};

/// Write a config file pointing at `url` (None: the simulated market), with extra TOML
/// lines for the `[auto_trade]` table and any further tables after it.
pub fn write_config(dir: &Path, url: Option<&str>, auto_trade: &str, rest: &str) -> PathBuf {
    write_config_file(dir, url.map(|u| (u, 2.0)), auto_trade, rest)
}

/// Like [`write_config`], with the ML engine's `timeout_seconds` chosen by the test.
pub fn write_config_timeout(
    dir: &Path,
    url: &str,
    timeout_seconds: f64,
    auto_trade: &str,
    rest: &str,
) -> PathBuf {
    write_config_file(dir, Some((url, timeout_seconds)), auto_trade, rest)
}

/// `dir/config.toml`: `[auto_trade]`, then `[ml_engine]` if given (url, timeout), then `rest`.
fn write_config_file(
    dir: &Path,
    ml_engine: Option<(&str, f64)>,
    auto_trade: &str,
    rest: &str,
) -> PathBuf {
    let mut text = format!("[auto_trade]\n{auto_trade}\n");
    if let Some((url, timeout_seconds)) = ml_engine {
        text.push_str(&format!(
            "\n[ml_engine]\nurl = \"{url}\"\ntimeout_seconds = {timeout_seconds}\n"
        ));
    }
    text.push_str(rest);
    let p = dir.join("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The real binary built by cargo for these tests and benches.
/// `app` on 127.0.0.1 (a free port) on a runtime thread of its own, until `shutdown` resolves:
/// the fakes of outside services start this way. Its address and the thread.
pub fn serve_app(
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .unwrap();
        });
    });
    (addr_rx.recv().unwrap(), thread)
}

/// An ML engine bullish on BTC/USD at 45,000, and a config checking it every 3 s with pending
/// decisions living 10 minutes: a dashboard soon has one pending BUY.
pub fn bullish_btc() -> (MlServer, tempfile::TempDir) {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 45_000.0, "accumulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\"]\ncheck_interval_minutes = 0.05\npending_expiry_minutes = 10",
        "",
    );
    (ml, dir)
}

/// The PostgreSQL database `dir`'s config keeps its rows in (`[store] url`), if any.
pub fn pg_url_of(dir: &Path) -> Option<String> {
    let cfg = std::fs::read_to_string(dir.join("config.toml")).ok()?;
    cfg.lines()
        .find_map(|l| l.strip_prefix("url = \"postgres"))
        .map(|rest| format!("postgres{}", rest.trim_end_matches('"')))
}

/// The `[store]` table of a config whose rows live in a fresh database of the tests' own
/// PostgreSQL (`None` without PostgreSQL).
pub fn pg_store_table() -> Option<String> {
    let pg = pg::shared()?;
    Some(format!("[store]\nurl = \"{}\"\n", pg.new_database()))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_autotrade-tui"))
}

/// Run the binary with a config and data dir in `dir`; returns (exit code, stdout, stderr).
pub fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .env_remove("AUTOTRADE_WEBHOOK_URL")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run the binary with exactly `args` (no `--config`/`--data-dir` added) and extra
/// environment; `AUTOTRADE_CONFIG`/`AUTOTRADE_DATA_DIR` are cleared unless `env` sets them.
pub fn run_with_env(
    args: &[&std::ffi::OsStr],
    env: &[(&str, &std::ffi::OsStr)],
) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(args)
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .env_remove("AUTOTRADE_WEBHOOK_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parse `--json` output: one object per line.
pub fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// `decisions --json` (newest first) for the config and data dir in `dir`.
pub fn decisions_json(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["decisions", "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(dir, &args);
    assert_eq!(code, 0, "decisions failed: {err}");
    json_lines(&out)
}

/// `once --json` for the config and data dir in `dir`; asserts exit 0.
pub fn once_json(dir: &Path) -> Vec<Value> {
    let (code, out, err) = run(dir, &["once", "--json"]);
    assert_eq!(code, 0, "once failed: {err}");
    json_lines(&out)
}
