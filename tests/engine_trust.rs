#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests and benches may unwrap: a failure is the report.
//! What the ML engine client refuses to trust (#21): a redirect off the configured origin,
//! an answer that names a key twice; and the secrets a configured URL may hold, which no
//! output, stored decision or log line shows. Each runs the real binary against fake
//! engines on 127.0.0.1.

mod support;
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::*;
use tempfile::TempDir;

const BTC: &str = "BTC/USD";

fn setup(url: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), Some(url), &format!("symbols = [\"{BTC}\"]"), "");
    dir
}

/// `once --json` over BTC/USD: its one decision, the exit code and stderr.
fn once(dir: &Path) -> (Value, i32, String) {
    let (code, out, err) = run(dir, &["once", "--json"]);
    let logs = json_lines(&out);
    assert_eq!(logs.len(), 1, "one symbol, one decision: {out} {err}");
    (logs.into_iter().next().unwrap(), code, err)
}

fn reasoning(log: &Value) -> &str {
    log["decision"]["reasoning"].as_str().unwrap_or("")
}

#[track_caller]
fn assert_untrusted_hold(log: &Value) {
    let d = &log["decision"];
    assert_eq!(d["action"], "HOLD", "{log}");
    assert_eq!(d["confidence"].as_f64(), Some(0.0), "{log}");
    assert_eq!(log["status"], "hold", "{log}");
}

/// An engine whose two endpoints for BTC/USD answer 302 to the same paths on `target`.
fn redirecting_to(target: &str) -> MlServer {
    let ml = MlServer::start();
    for path in [signal_path(BTC), phase_path(BTC)] {
        ml.set(
            &path,
            Reply::Raw {
                status: 302,
                body: String::new(),
                headers: vec![("location".into(), format!("{target}{path}"))],
            },
        );
    }
    ml
}

// ---------------------------------------------------------------- redirects

#[test]
fn a_redirect_to_another_port_is_a_hold_naming_it_and_the_other_server_is_never_asked() {
    // The second server would say BUY: bullish during accumulation.
    let other = MlServer::start();
    other.set_symbol(BTC, "bullish", 0.95, 45_000.0, "accumulation");
    let ml = redirecting_to(&other.url);
    let dir = setup(&ml.url);
    let (log, _code, _err) = once(dir.path());
    assert_untrusted_hold(&log);
    let r = reasoning(&log);
    assert!(
        r.contains("redirected to") && r.contains(&other.url) && r.contains("not followed"),
        "the reason names the redirect and where it pointed: {r}"
    );
    assert_eq!(other.hits(&signal_path(BTC)), 0, "followed off the origin");
    assert_eq!(other.hits(&phase_path(BTC)), 0, "followed off the origin");
    assert_eq!(ml.hits(&signal_path(BTC)), 1);
}

#[test]
fn a_redirect_to_another_host_on_the_same_port_is_refused_too() {
    let ml = MlServer::start();
    ml.set_symbol(BTC, "bullish", 0.95, 45_000.0, "accumulation");
    // localhost is another host than 127.0.0.1, though the same machine and port.
    let elsewhere = ml.url.replace("127.0.0.1", "localhost");
    let front = redirecting_to(&elsewhere);
    let dir = setup(&front.url);
    let (log, _, _) = once(dir.path());
    assert_untrusted_hold(&log);
    assert!(
        reasoning(&log).contains("off the configured origin"),
        "{log}"
    );
    assert_eq!(ml.hits(&signal_path(BTC)), 0);
}

#[test]
fn a_redirect_within_the_origin_is_followed() {
    let ml = MlServer::start();
    for (path, v) in [
        (signal_path(BTC), signal("bullish", 0.9, 45_000.0)),
        (phase_path(BTC), phase("accumulation", 0.8)),
    ] {
        let moved = format!("/v2{path}");
        ml.set(&moved, Reply::Json(v));
        ml.set(
            &path,
            Reply::Raw {
                status: 307,
                body: String::new(),
                headers: vec![("location".into(), moved)],
            },
        );
    }
    let dir = setup(&ml.url);
    let (log, code, err) = once(dir.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(log["decision"]["action"], "BUY", "{log}");
}

// ---------------------------------------------------------------- duplicate keys

#[test]
fn a_signal_that_names_a_key_twice_is_a_hold_naming_the_key() {
    let ml = MlServer::start();
    ml.set_phase(BTC, phase("accumulation", 0.8));
    // Last-one-wins would read bullish and buy.
    ml.set(
        &signal_path(BTC),
        Reply::status(
            200,
            r#"{"direction":"bearish","confidence":0.9,"entry_price":45000,"take_profit":47250,"stop_loss":44100,"risk_reward_ratio":2.5,"direction":"bullish"}"#,
        ),
    );
    let dir = setup(&ml.url);
    let (log, _, _) = once(dir.path());
    assert_untrusted_hold(&log);
    let r = reasoning(&log);
    assert!(r.contains(r#"duplicate key "direction""#), "{r}");
}

#[test]
fn a_phase_with_a_nested_key_named_twice_is_a_hold_naming_where() {
    let ml = MlServer::start();
    ml.set_signal(BTC, signal("bullish", 0.9, 45_000.0));
    ml.set(
        &phase_path(BTC),
        Reply::status(
            200,
            r#"{"phase":"accumulation","confidence":0.8,"indicators":{"rsi":30,"rsi":70}}"#,
        ),
    );
    let dir = setup(&ml.url);
    let (log, _, _) = once(dir.path());
    assert_untrusted_hold(&log);
    let r = reasoning(&log);
    assert!(r.contains(r#"duplicate key "rsi" in indicators"#), "{r}");
}

// ---------------------------------------------------------------- secrets in URLs

const PASSWORD: &str = "s3cr3t-pa55";

/// Every file under `dir` (the store, its journal, the log files), as bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}

#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "{what} shows the password: {text}"
    );
}

#[test]
fn a_password_in_the_engine_url_is_never_shown_stored_or_logged() {
    let ml = MlServer::start();
    // The signal fails (so its reason quotes the URL); the phase answers.
    ml.set(&signal_path(BTC), Reply::status(503, "down"));
    ml.set_phase(BTC, phase("accumulation", 0.8));
    let url = ml
        .url
        .replace("http://", &format!("http://admin:{PASSWORD}@"));
    let dir = setup(&url);
    let data = dir.path().join("data");

    let (code, out, err) = run(dir.path(), &["once"]);
    assert_eq!(code, 1, "every symbol failed: {out} {err}");
    assert!(out.contains("HTTP 503"), "the reason is still told: {out}");
    assert!(
        out.contains("***@127.0.0.1"),
        "the address, redacted: {out}"
    );
    assert_no_secret("once", &out);
    assert_no_secret("once's stderr", &err);
    let (_, out, err) = run(dir.path(), &["once", "--json"]);
    assert_no_secret("once --json", &out);
    assert_no_secret("once --json's stderr", &err);
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["decisions", "--json"],
    ] {
        let (code, out, err) = run(dir.path(), args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_no_secret(&format!("{args:?}"), &out);
        assert_no_secret(&format!("{args:?}'s stderr"), &err);
    }
    let (_, status, _) = run(dir.path(), &["status"]);
    assert!(status.contains("***@127.0.0.1"), "{status}");
    let stored = decisions_json(dir.path(), &[]);
    assert!(
        stored
            .iter()
            .all(|l| reasoning(l).contains("HTTP 503") && reasoning(l).contains("***@")),
        "{stored:?}"
    );
    let files = files_under(&data);
    assert!(
        files.iter().any(|(p, _)| p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("autotrade-tui.log"))),
        "a log file was written: {files:?}",
    );
    for (path, bytes) in files {
        assert_no_secret(
            &path.display().to_string(),
            &String::from_utf8_lossy(&bytes),
        );
    }
}

#[test]
fn a_bad_url_with_a_password_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        Some(&format!("ftp://admin:{PASSWORD}@127.0.0.1:9")),
        "",
        "",
    );
    let (code, out, err) = run(dir.path(), &["status"]);
    assert_eq!(code, 2, "{out} {err}");
    assert!(err.contains("ml_engine.url"), "{err}");
    assert_no_secret("the config error", &err);
}

#[test]
fn a_config_syntax_error_on_the_url_line_does_not_quote_the_password() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("[ml_engine]\nurl = \"http://admin:{PASSWORD}@127.0.0.1:9\n"),
    )
    .unwrap();
    let (code, out, err) = run(dir.path(), &["status"]);
    assert_eq!(code, 2, "{out} {err}");
    assert!(err.contains("invalid config"), "{err}");
    assert_no_secret("the syntax error", &err);
    assert!(
        err.contains("url = \"http://***@127.0.0.1:9"),
        "the line, redacted: {err}"
    );
    // A value of the wrong type is quoted too.
    std::fs::write(
        dir.path().join("config.toml"),
        format!("[ml_engine]\nurl = [\"http://admin:{PASSWORD}@127.0.0.1:9\"]\n"),
    )
    .unwrap();
    let (code, out, err) = run(dir.path(), &["status"]);
    assert_eq!(code, 2, "{out} {err}");
    assert_no_secret("the type error", &err);
}
