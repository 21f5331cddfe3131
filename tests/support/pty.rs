//! The real binary in a pseudo-terminal: a vt100 screen fed by the pty, key presses, and
//! polling with a generous deadline (CI is a loaded 2-core machine). Benches also ask when a
//! marker first showed on the screen, noted by the reader thread as the bytes arrive.

use super::bin;
use autotrade_tui::store::Store;
use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(20);
pub const ROWS: u16 = 40;
pub const COLS: u16 = 120;

/// How often [`wait_for`] looks.
const POLL: Duration = Duration::from_millis(50);

/// Each marker and when it first showed on the screen.
type Seen = Arc<Mutex<Vec<(String, Option<Instant>)>>>;

pub struct Dashboard {
    pub master: Box<dyn MasterPty + Send>,
    pub writer: Box<dyn Write + Send>,
    pub child: Box<dyn Child + Send + Sync>,
    pub screen: Arc<Mutex<vt100::Parser>>,
    pub raw: Arc<Mutex<Vec<u8>>>,
    pub data: PathBuf,
    /// Just before the process was spawned.
    pub spawned_at: Instant,
    seen: Seen,
}

fn dir_args(dir: &Path) -> Vec<std::ffi::OsString> {
    vec![
        "--config".into(),
        dir.join("config.toml").into_os_string(),
        "--data-dir".into(),
        dir.join("data").into_os_string(),
    ]
}

impl Dashboard {
    /// The dashboard with `dir/config.toml` and `dir/data`.
    pub fn start(dir: &Path) -> Dashboard {
        Dashboard::spawn(&dir_args(dir), &[], dir.join("data"), &[])
    }

    /// The dashboard with these arguments and extra environment; `data` is its data dir.
    pub fn start_with(
        args: &[std::ffi::OsString],
        envs: &[(&str, &std::ffi::OsStr)],
        data: PathBuf,
    ) -> Dashboard {
        Dashboard::spawn(args, envs, data, &[])
    }

    /// Like [`Dashboard::start`], noting when each of `markers` first shows on the screen
    /// (see [`Dashboard::marker_after_spawn`]).
    pub fn start_watching(dir: &Path, markers: &[&str]) -> Dashboard {
        Dashboard::spawn(&dir_args(dir), &[], dir.join("data"), markers)
    }

    fn spawn(
        args: &[std::ffi::OsString],
        envs: &[(&str, &std::ffi::OsStr)],
        data: PathBuf,
        markers: &[&str],
    ) -> Dashboard {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(bin());
        for a in args {
            cmd.arg(a);
        }
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("AUTOTRADE_CONFIG");
        cmd.env_remove("AUTOTRADE_DATA_DIR");
        cmd.env_remove("NO_COLOR");
        // Never a real webhook from the developer's environment.
        cmd.env_remove("AUTOTRADE_WEBHOOK_URL");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let seen: Seen = Arc::new(Mutex::new(
            markers.iter().map(|m| (m.to_string(), None)).collect(),
        ));
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(ROWS).unwrap(),
            std::num::NonZeroU16::new(COLS).unwrap(),
            0,
        )));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let spawned_at = Instant::now();
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let (s, r, m) = (screen.clone(), raw.clone(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                let mut parser = s.lock().unwrap();
                parser.process(&buf[..n]);
                let mut marks = m.lock().unwrap();
                if marks.iter().any(|(_, t)| t.is_none()) {
                    let text = parser.screen().contents();
                    for (marker, t) in marks.iter_mut() {
                        if t.is_none() && text.contains(marker.as_str()) {
                            *t = Some(now);
                        }
                    }
                }
                drop((marks, parser));
                r.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Dashboard {
            master: pair.master,
            writer,
            child,
            screen,
            raw,
            data,
            spawned_at,
            seen,
        }
    }

    pub fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Wait until the screen satisfies `f`; panic with the screen after the deadline.
    pub fn wait_screen(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let t = self.text();
            if f(&t) {
                return t;
            }
            if start.elapsed() > DEADLINE {
                panic!("timed out waiting for {what}; screen:\n{t}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// When `marker` (given to [`Dashboard::start_watching`]) first showed, after the spawn;
    /// waits for it up to the deadline.
    pub fn marker_after_spawn(&self, marker: &str) -> Duration {
        let at = wait_for(&format!("{marker:?} on the screen"), || {
            self.seen
                .lock()
                .unwrap()
                .iter()
                .find(|(m, _)| m == marker)
                .and_then(|(_, t)| *t)
        });
        at - self.spawned_at
    }

    pub fn press(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    pub fn store(&self) -> Store {
        Store::open(&self.data, "default", true).unwrap()
    }

    pub fn wait_exit(&mut self) -> u32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                panic!("the dashboard did not exit; screen:\n{}", self.text());
            }
            std::thread::sleep(POLL);
        }
    }

    /// Ctrl-C (quit at once, where `q` may ask), then wait for the exit.
    pub fn quit(mut self) {
        self.press("\u{3}");
        self.wait_exit();
    }

    /// Whether the pty is in canonical (cooked) mode.
    pub fn cooked(&self) -> bool {
        let t = self.master.get_termios().expect("termios of the pty");
        format!("{:?}", t.local_flags).contains("ICANON")
    }

    pub fn assert_terminal_restored(&self) {
        assert!(self.cooked(), "the terminal is still in raw mode");
        // The child has exited; its last bytes may still be on their way through the pty.
        wait_for("the alternate screen to be left", || {
            let raw = self.raw.lock().unwrap();
            String::from_utf8_lossy(&raw)
                .contains("\u{1b}[?1049l")
                .then_some(())
        });
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `f` every 50 ms until it returns Some; panic after the deadline.
pub fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for_every(POLL, what, f)
}

/// [`wait_for`], looking every `interval` (a bench timing to the millisecond looks every 1 ms).
pub fn wait_for_every<T>(interval: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(interval);
    }
}
