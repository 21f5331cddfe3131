#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap: a failure is the report.
//! The tests' own PostgreSQL (tests/support/pg.rs): it starts, hands out databases that
//! answer, runs as `postgres` when the tests run as root, and goes away with its process.

mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::pg;

fn pg_isready(server: &pg::PgServer, db: &str) -> bool {
    let local = server.bin_dir().join("pg_isready");
    let program = if local.exists() {
        local
    } else {
        PathBuf::from("pg_isready")
    };
    Command::new(program)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
        ])
        .output()
        .expect("run pg_isready")
        .status
        .success()
}

fn euid_is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn owner_uid(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().uid()
}

/// Wait up to `limit` for `done`.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

#[test]
fn shared_server_gives_two_databases_that_answer() {
    let Some(server) = pg::shared() else {
        return pg::skip_note();
    };
    eprintln!("PostgreSQL up in {:?} on {}", server.started_in, server.url);
    assert_eq!(
        server.url,
        format!("postgres://postgres@127.0.0.1:{}/postgres", server.port)
    );
    TcpStream::connect(("127.0.0.1", server.port)).expect("the server's port answers");

    let a = server.create_database("harness_a");
    let b = server.new_database();
    assert_eq!(a, server.url_for("harness_a"));
    assert_ne!(a, b);
    for url in [&a, &b] {
        let name = url.rsplit('/').next().unwrap();
        assert!(pg_isready(server, name), "pg_isready for {name}");
        assert_eq!(server.psql(url, "select current_database()").trim(), name);
        assert_eq!(server.psql(url, "select 1").trim(), "1");
    }
    // Databases are separate: a table made in one is not in the other.
    server.psql(
        &a,
        "create table only_in_a (x int); insert into only_in_a values (7)",
    );
    assert_eq!(server.psql(&a, "select x from only_in_a").trim(), "7");
    assert_eq!(
        server
            .psql(
                &b,
                "select count(*) from pg_tables where tablename = 'only_in_a'"
            )
            .trim(),
        "0"
    );
    // The settings asked for.
    assert_eq!(server.psql(&a, "show max_connections").trim(), "400");
    assert_eq!(server.psql(&a, "show fsync").trim(), "off");
    assert_eq!(server.psql(&a, "show listen_addresses").trim(), "127.0.0.1");

    if euid_is_root() {
        assert_ne!(
            owner_uid(&server.data_dir()),
            0,
            "data directory owned by root"
        );
        assert_ne!(
            owner_uid(server.dir()),
            0,
            "temporary directory owned by root"
        );
    }
}

#[test]
fn own_server_is_stopped_and_removed_when_dropped() {
    let Some(server) = pg::start() else {
        return pg::skip_note();
    };
    let (port, dir) = (server.port, server.dir().to_path_buf());
    let url = server.new_database();
    assert_eq!(server.psql(&url, "select 2").trim(), "2");
    let t = Instant::now();
    drop(server);
    eprintln!("stopped and removed in {:?}", t.elapsed());
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still answers"
    );
}

/// Run by [`shared_server_goes_away_with_its_process`] in a process of its own: starts the
/// shared server, prints where it is and ends (statics are not dropped). Does nothing otherwise.
#[test]
fn child_holds_shared_server() {
    if std::env::var_os("AUTOTRADE_PG_HARNESS_CHILD").is_none() {
        return;
    }
    let Some(server) = pg::shared() else {
        return pg::skip_note();
    };
    server.new_database();
    println!(
        "PG_CHILD port={} dir={}",
        server.port,
        server.dir().display()
    );
}

#[test]
fn shared_server_goes_away_with_its_process() {
    if pg::shared().is_none() {
        return pg::skip_note();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_shared_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AUTOTRADE_PG_HARNESS_CHILD", "1")
        .output()
        .expect("run the child test process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("PG_CHILD ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no PG_CHILD line in: {stdout}"));
    let (port, dir) = line.split_once(" dir=").unwrap();
    let port: u16 = port.strip_prefix("port=").unwrap().parse().unwrap();
    let dir = PathBuf::from(dir);
    let t = Instant::now();
    assert!(
        eventually(Duration::from_secs(15), || !dir.exists()),
        "{} still there after the child process ended",
        dir.display()
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still answers after the child process ended"
    );
    eprintln!(
        "watchdog cleaned up {:?} after the child ended",
        t.elapsed()
    );
}
