#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! A reader that goes away (`autotrade-tui decisions | head -1`): every command that prints
//! stops printing and exits with its own code (0 here), with no panic and nothing on stderr.
//! stdout is a pipe whose read end is closed before the command starts, so every write
//! fails with EPIPE: no race with a reader.

mod support;
use std::path::Path;
use std::process::{Command, Stdio};
use support::*;

/// Run `args` with stdout a pipe nobody reads; (exit code, stderr).
fn run_into_closed_pipe(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .env_remove("AUTOTRADE_WEBHOOK_URL")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_printing_command_exits_quietly_when_stdout_is_closed() {
    let ml = MlServer::start();
    ml.set_symbol("BTC/USD", "bullish", 0.9, 45_000.0, "accumulation");
    ml.set_symbol("ETH/USD", "neutral", 0.6, 2_500.0, "manipulation");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&ml.url),
        "symbols = [\"BTC/USD\", \"ETH/USD\"]\nrequire_confirmation = false",
        "",
    );
    // Something to print: a few cycles, an open position, decisions of every kind.
    for _ in 0..3 {
        let (code, _, err) = run(dir.path(), &["once"]);
        assert_eq!(code, 0, "{err}");
    }
    let commands: [&[&str]; 12] = [
        &["decisions"],
        &["decisions", "--json"],
        &["decisions", "--limit", "1"],
        &["status"],
        &["status", "--json"],
        &["positions"],
        &["positions", "--json"],
        &["once"],
        &["once", "--json"],
        &["report"],
        &["report", "--json"],
        &["disable"],
    ];
    for args in commands {
        let (code, err) = run_into_closed_pipe(dir.path(), args);
        assert_eq!(code, Some(0), "{args:?} exit code (stderr: {err})");
        assert!(err.is_empty(), "{args:?} said on stderr: {err}");
    }
    // The work was done though nobody read about it: `once` stored its cycles, `disable` disabled.
    let (code, out, err) = run(dir.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let status = json_lines(&out).remove(0);
    assert_eq!(status["enabled"], false, "{status}");
    let logged = decisions_json(dir.path(), &["--limit", "1000"]);
    assert_eq!(
        logged.len(),
        2 * 5,
        "five cycles of two symbols: {logged:?}"
    );
}

#[test]
fn a_backtest_exits_quietly_when_stdout_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), None, "", "");
    let candles = dir.path().join("candles.csv");
    let mut csv = String::from("timestamp,open,high,low,close,volume\n");
    for i in 0..300u32 {
        let p = 100.0 + f64::from(i % 17) - f64::from(i % 5);
        csv.push_str(&format!(
            "{},{p},{},{},{p},10\n",
            1_700_000_000 + i * 3600,
            p + 1.0,
            p - 1.0
        ));
    }
    std::fs::write(&candles, csv).unwrap();
    let path = candles.to_string_lossy().into_owned();
    for json in [false, true] {
        let mut args = vec!["backtest", "--candles", &path];
        if json {
            args.push("--json");
        }
        let (code, err) = run_into_closed_pipe(dir.path(), &args);
        assert_eq!(code, Some(0), "{args:?} (stderr: {err})");
        assert!(err.is_empty(), "{args:?} said on stderr: {err}");
    }
}

/// `GET /health` on 127.0.0.1:`port`: the status line, if anything answered.
fn health(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer.lines().next().map(str::to_string)
}

#[test]
fn serve_keeps_serving_when_nobody_reads_its_banner() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), None, "", "");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("AUTOTRADE_CONFIG")
        .env_remove("AUTOTRADE_DATA_DIR")
        .env_remove("AUTOTRADE_API_TOKEN")
        .env_remove("AUTOTRADE_WEBHOOK_URL")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let answered = loop {
        if let Some(line) = health(port) {
            break line;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("serve exited ({status}) with stdout closed: {err}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not answer within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(answered.contains("200"), "{answered}");
    child.kill().unwrap();
    child.wait().unwrap();
}
