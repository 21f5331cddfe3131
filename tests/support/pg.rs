//! A PostgreSQL server of the tests' own: `initdb` in a temporary directory, `postgres` on
//! 127.0.0.1 (a free port) with its Unix socket inside that directory, trust authentication
//! for the `postgres` role, `fsync=off`. Nothing in `/var/run` or `/var/lib` is used.
//!
//! ```ignore
//! let Some(pg) = support::pg::shared() else { return support::pg::skip_note() };
//! let url = pg.new_database(); // postgres://postgres@127.0.0.1:PORT/t_<pid>_<n>
//! ```
//!
//! One server per test process ([`shared`]), one database per test ([`PgServer::create_database`]
//! or [`PgServer::new_database`]); [`start`] gives a server of its own, stopped when dropped.
//!
//! **Binaries.** `$AUTOTRADE_PG_BIN` (a directory) first, then the newest
//! `/usr/lib/postgresql/<version>/bin`, then `pg_ctl` on `PATH` (symlinks followed, so
//! `/usr/local/bin/pg_ctl -> /usr/lib/postgresql/15/bin/pg_ctl` finds its directory). None
//! found: [`start`] and [`shared`] return `None`, and the test calls [`skip_note`] and returns,
//! unless `AUTOTRADE_REQUIRE_PG` is set (not empty, not `0`): then they panic, as CI wants.
//!
//! **Root.** PostgreSQL refuses to run as root. When the effective uid is 0, the temporary
//! directory is chowned to the `postgres` user and `initdb`, `pg_ctl start` and `pg_ctl stop`
//! run as that user through `runuser -u postgres --` (or `setpriv` when there is no
//! `runuser`); commands run with the temporary directory as their working directory, since
//! PostgreSQL's binaries fail in a directory they cannot read. Clients (`psql`) connect over
//! TCP with trust authentication, so they run as whoever runs the test.
//!
//! **Cleanup.** [`PgServer`]'s `Drop` stops the server (`pg_ctl stop -m immediate`, as the
//! server's user) and removes the directory. The server of [`shared`] lives in a static, and
//! statics are never dropped; and a test process can also die by a signal or `abort`, where
//! no `Drop` runs. So every server also gets a watchdog, started before `initdb`: a small
//! `sh` script run as the test's own user in a process group of its own (a Ctrl-C to the
//! terminal's group does not kill it, as `pg_ctl` puts the postmaster in a session of its
//! own), whose stdin is a pipe whose only writing end the test process holds (Rust opens
//! pipes close-on-exec, so no other child inherits it). However the test process ends, the
//! kernel closes that end and the script's `read` sees end of file; it then waits for the
//! `initdb` or `pg_ctl start` still running, if any (the test writes `+PID`/`-PID` lines
//! around each), runs `pg_ctl stop -m immediate` if the data directory has a
//! `postmaster.pid`, and `rm -rf`s the directory: within a fraction of a second of the
//! process's end (or of `initdb`'s, if it was killed during one). Only a `SIGKILL` to the
//! watchdog itself leaves a server running, and even that one shuts itself down within a
//! minute once its directory is removed (the postmaster checks its lock file every minute).

use std::ffi::OsString;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The OS user the server runs as when the tests run as root, and the database superuser.
const PG_USER: &str = "postgres";

/// How many times a start is tried on a new port when the one picked was taken meanwhile.
const PORT_TRIES: usize = 8;

pub struct PgServer {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the maintenance database.
    pub url: String,
    pub port: u16,
    /// The directory holding the data directory (`data`), the server's log (`log`) and its
    /// Unix socket; owned by `postgres` when the tests run as root.
    dir: tempfile::TempDir,
    bins: Bins,
    /// `Some(["runuser", "-u", "postgres", "--"])` when running as root.
    as_user: Option<Vec<OsString>>,
    /// The watchdog (see the module's doc) and the pipe it waits on; taken by `Drop`.
    watchdog: Option<(Child, ChildStdin)>,
    /// How long [`start`] took, initdb to ready.
    pub started_in: Duration,
}

/// The binaries used, from one directory where it has them.
#[derive(Clone, Debug)]
struct Bins {
    dir: PathBuf,
    initdb: PathBuf,
    pg_ctl: PathBuf,
    psql: PathBuf,
}

/// Print why a test did nothing; the test returns after it.
pub fn skip_note() {
    eprintln!(
        "SKIPPED: no PostgreSQL installed (set AUTOTRADE_REQUIRE_PG=1 to make this a failure)"
    );
}

/// `AUTOTRADE_REQUIRE_PG` is set, not empty and not `0`.
pub fn required() -> bool {
    std::env::var_os("AUTOTRADE_REQUIRE_PG").is_some_and(|v| !v.is_empty() && v != "0")
}

/// One server for the whole test process, started by the first test that asks; `None` when
/// PostgreSQL is not installed (see [`start`]). Stopped by its watchdog when the process ends.
pub fn shared() -> Option<&'static PgServer> {
    static SHARED: OnceLock<Option<PgServer>> = OnceLock::new();
    SHARED.get_or_init(start).as_ref()
}

/// A server of its own, stopped and removed when dropped; `None` when PostgreSQL is not
/// installed and `AUTOTRADE_REQUIRE_PG` is not set (it panics when it is). Panics, with the
/// server's log, when PostgreSQL is installed but does not start.
pub fn start() -> Option<PgServer> {
    let began = Instant::now();
    let Some(bins) = find_bins() else {
        if required() {
            panic!(
                "AUTOTRADE_REQUIRE_PG is set but no PostgreSQL server binaries were found \
                 (looked in $AUTOTRADE_PG_BIN, /usr/lib/postgresql/*/bin and PATH for \
                 initdb, pg_ctl and postgres); install PostgreSQL (Debian: apt-get install postgresql-15)"
            );
        }
        return None;
    };
    let as_user = if is_root() {
        Some(run_as_prefix())
    } else {
        None
    };

    let dir = tempfile::Builder::new()
        .prefix("autotrade-pg-")
        .tempdir_in(base_dir(as_user.is_some()))
        .expect("create the PostgreSQL temporary directory");
    if as_user.is_some() {
        chown_to_pg_user(dir.path());
    }
    let mut server = PgServer {
        url: String::new(),
        port: 0,
        dir,
        bins,
        as_user,
        watchdog: None,
        started_in: Duration::ZERO,
    };

    // The watchdog from here on: a test process killed during initdb or a failed start
    // below leaves nothing behind either.
    server.watchdog = Some(spawn_watchdog(&server));

    let data = server.data_dir();
    let mut initdb = server.command_as_server(&server.bins.initdb);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", PG_USER, "--no-sync", "-E", "UTF8"]);
    let out = server.output_watched(&mut initdb);
    if !out.status.success() {
        panic!(
            "initdb failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    for attempt in 1..=PORT_TRIES {
        let port = free_port();
        let log = server.log_path();
        let _ = std::fs::remove_file(&log);
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
             -c max_connections=400 -c shared_buffers=64MB",
            sh_quote(server.dir.path().as_os_str())
        );
        let mut start = server.command_as_server(&server.bins.pg_ctl);
        start
            .arg("-D")
            .arg(&data)
            .args(["-w", "-t", "60", "-l"])
            .arg(&log)
            .arg("start")
            .arg("-o")
            .arg(opts);
        let out = server.output_watched(&mut start);
        if out.status.success() {
            server.port = port;
            server.url = format!("postgres://{PG_USER}@127.0.0.1:{port}/postgres");
            server.started_in = began.elapsed();
            return Some(server);
        }
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        // Taken meanwhile: said in the log (in English), or still not ours to bind.
        let taken = log_text.contains("Address already in use")
            || TcpListener::bind(("127.0.0.1", port)).is_err();
        if attempt < PORT_TRIES && taken {
            continue;
        }
        panic!(
            "PostgreSQL did not start on 127.0.0.1:{port} ({}): {}{}\n--- server log (tail) ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&log_text, 40)
        );
    }
    unreachable!("the last try panics")
}

impl PgServer {
    /// The server's data directory (`initdb -D`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The temporary directory holding the data directory, the log and the socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// The directory the binaries were taken from.
    pub fn bin_dir(&self) -> &Path {
        &self.bins.dir
    }

    /// `postgres://postgres@127.0.0.1:PORT/<name>`.
    pub fn url_for(&self, name: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Create the database `name` (letters, digits and `_`; panics if it exists) and return
    /// its URL.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "database names here are letters, digits and _: {name:?}"
        );
        self.psql(&self.url, &format!("CREATE DATABASE \"{name}\""));
        self.url_for(name)
    }

    /// A new database with a name of its own (`t_<pid>_<n>`), and its URL.
    pub fn new_database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("t_{}_{n}", std::process::id()))
    }

    /// Run `sql` with `psql` on the database at `url` (unaligned, tuples only); its stdout.
    /// Panics, with psql's stderr, when psql fails.
    pub fn psql(&self, url: &str, sql: &str) -> String {
        let out = output(
            Command::new(&self.bins.psql)
                .args([
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    url,
                    "-c",
                    sql,
                ])
                .env_remove("PGPASSWORD")
                .env_remove("PGSERVICE")
                .env_remove("PGSSLMODE")
                .env_remove("PGOPTIONS")
                .current_dir(self.dir.path()),
        );
        if !out.status.success() {
            panic!(
                "psql {url} -c {sql:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The last `lines` lines of the server's log.
    /// Stop the server as a crash would (`pg_ctl stop -m immediate`); [`PgServer::start_again`]
    /// brings it back on the same port with the same data.
    pub fn stop(&self) {
        let mut stop = self.command_as_server(&self.bins.pg_ctl);
        stop.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"]);
        let out = output(&mut stop);
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }

    /// Start a stopped server again, on its port.
    pub fn start_again(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off \
             -c max_connections=400 -c shared_buffers=64MB",
            self.port,
            sh_quote(self.dir.path().as_os_str())
        );
        let mut start = self.command_as_server(&self.bins.pg_ctl);
        start
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "60", "-l"])
            .arg(self.log_path())
            .arg("start")
            .arg("-o")
            .arg(opts);
        let out = self.output_watched(&mut start);
        assert!(
            out.status.success(),
            "pg_ctl start: {out:?}\n{}",
            self.log_tail(20)
        );
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(
            &std::fs::read_to_string(self.log_path()).unwrap_or_default(),
            lines,
        )
    }

    /// [`output`], the watchdog told of the command while it runs (see [`spawn_watchdog`]).
    fn output_watched(&self, cmd: &mut Command) -> Output {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
        let pid = child.id();
        self.tell_watchdog(&format!("+{pid}\n"));
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for {cmd:?}: {e}"));
        self.tell_watchdog(&format!("-{pid}\n"));
        out
    }

    fn tell_watchdog(&self, line: &str) {
        use std::io::Write;
        if let Some((_, stdin)) = &self.watchdog {
            let mut stdin: &ChildStdin = stdin;
            // A watchdog gone already can do nothing more: nothing to report.
            let _ = stdin.write_all(line.as_bytes());
        }
    }

    /// `cmd` as the server's user, with the temporary directory as working directory.
    fn command_as_server(&self, program: &Path) -> Command {
        let mut cmd = match &self.as_user {
            Some(prefix) => {
                let mut c = Command::new(&prefix[0]);
                c.args(&prefix[1..]).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.current_dir(self.dir.path());
        cmd
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Only once the server started; a failed initdb leaves no server.
        if self.data_dir().join("postmaster.pid").exists() {
            let data = self.data_dir();
            let mut stop = self.command_as_server(&self.bins.pg_ctl);
            stop.arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"]);
            let _ = output(&mut stop);
        }
        // Closing the pipe lets the watchdog finish (nothing left to stop); reap it.
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = child.wait();
        }
        // The TempDir removes the directory if the watchdog has not.
    }
}

/// The watchdog of the module's doc, for `server`.
fn spawn_watchdog(server: &PgServer) -> (Child, ChildStdin) {
    let mut stop: Vec<OsString> = server.as_user.clone().unwrap_or_default();
    stop.push(server.bins.pg_ctl.clone().into());
    stop.push("-D".into());
    stop.push(server.data_dir().into());
    stop.extend(["-m", "immediate", "-w", "stop"].map(OsString::from));
    let stop: Vec<String> = stop.iter().map(|a| sh_quote(a)).collect();
    let dir = sh_quote(server.dir.path().as_os_str());
    // `+PID` / `-PID` lines: a command of the server's being run / done. At end of file, wait
    // (at most a minute) for those still running: rm -rf under a running initdb, or before
    // `pg_ctl start -w` has the postmaster's pid file, would leave files or a server behind.
    let script = format!(
        r#"alive() {{ # running, not a zombie waiting for a (slow) init to reap it
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$state" ] && [ "$state" != Z ]
}}
running=""
while read -r line; do
    case $line in
        +*) running="$running ${{line#+}}" ;;
        -*) left=""; for p in $running; do [ "$p" = "${{line#-}}" ] || left="$left $p"; done; running=$left ;;
    esac
done
for p in $running; do
    n=0; while alive "$p" && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
done
if [ -f {dir}/data/postmaster.pid ]; then {} >/dev/null 2>&1; fi
rm -rf {dir}
"#,
        stop.join(" ")
    );
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn the PostgreSQL watchdog (/bin/sh)");
    let stdin = child.stdin.take().expect("the watchdog's stdin");
    (child, stdin)
}

/// `$AUTOTRADE_PG_BIN`, the newest `/usr/lib/postgresql/*/bin`, then `pg_ctl` on `PATH`.
fn find_bins() -> Option<Bins> {
    if let Some(dir) = std::env::var_os("AUTOTRADE_PG_BIN").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return match bins_in(&dir) {
            Some(b) => Some(b),
            None if required() => panic!(
                "AUTOTRADE_PG_BIN={} has no initdb, pg_ctl and postgres",
                dir.display()
            ),
            None => None,
        };
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version: Vec<u32> = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    if let Some(b) = versions.iter().rev().find_map(|(_, dir)| bins_in(dir)) {
        return Some(b);
    }
    let pg_ctl = std::fs::canonicalize(on_path("pg_ctl")?).ok()?;
    bins_in(pg_ctl.parent()?)
}

/// The binaries in `dir` if it has the server's: `initdb`, `pg_ctl` and `postgres` (a
/// directory of client programs only does not do); `psql` from `dir`, else from `PATH`.
fn bins_in(dir: &Path) -> Option<Bins> {
    let initdb = dir.join("initdb");
    let pg_ctl = dir.join("pg_ctl");
    if !is_executable(&initdb) || !is_executable(&pg_ctl) || !is_executable(&dir.join("postgres")) {
        return None;
    }
    let psql = Some(dir.join("psql"))
        .filter(|p| is_executable(p))
        .or_else(|| on_path("psql"))
        .unwrap_or_else(|| PathBuf::from("psql"));
    Some(Bins {
        dir: dir.to_path_buf(),
        initdb,
        pg_ctl,
        psql,
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// The effective uid is 0: `/proc/self/status`'s second `Uid:` field, else `id -u`.
fn is_root() -> bool {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Uid:"))
        && let Some(euid) = line.split_whitespace().nth(2)
    {
        return euid == "0";
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// How root runs a command as `postgres`: `runuser`, else `setpriv`.
fn run_as_prefix() -> Vec<OsString> {
    let runuser = on_path("runuser")
        .or_else(|| Some(PathBuf::from("/usr/sbin/runuser")).filter(|p| is_executable(p)));
    let mut prefix: Vec<OsString> = if let Some(runuser) = runuser {
        vec![runuser.into(), "-u".into(), PG_USER.into()]
    } else if let Some(setpriv) = on_path("setpriv") {
        let mut p: Vec<OsString> = vec![setpriv.into()];
        p.extend(["--reuid", PG_USER, "--regid", PG_USER, "--init-groups"].map(OsString::from));
        p
    } else {
        panic!(
            "running as root, PostgreSQL must run as {PG_USER}, \
             but neither runuser nor setpriv is installed"
        );
    };
    prefix.push("--".into());
    prefix
}

/// `postgres`'s uid and gid, from `id`.
fn pg_user_ids() -> (u32, u32) {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").arg(flag).arg(PG_USER).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) => (uid, gid),
        _ => panic!(
            "running as root, PostgreSQL must run as the {PG_USER} user, which does not exist \
             (the Debian package creates it; or: useradd --system {PG_USER})"
        ),
    }
}

fn chown_to_pg_user(dir: &Path) {
    let (uid, gid) = pg_user_ids();
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {} to {PG_USER}: {e}", dir.display()));
}

/// Where the temporary directory goes: the usual temporary directory, unless the server's
/// user could not reach it (a `TMPDIR` under `/root`), then `/tmp`.
fn base_dir(as_other_user: bool) -> PathBuf {
    let tmp = std::env::temp_dir();
    if !as_other_user || world_traversable(&tmp) {
        tmp
    } else {
        PathBuf::from("/tmp")
    }
}

/// Every directory from `/` down to `dir` lets others through (`o+x`).
fn world_traversable(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return false;
    };
    dir.ancestors()
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

/// `s` in single quotes for `sh`.
fn sh_quote(s: &std::ffi::OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
