//! Standard output for the commands that print: a reader that goes away (`decisions | head -1`)
//! stops the printing, not the program. `println!` would panic (exit 101) on the closed pipe;
//! here the first `BrokenPipe` marks stdout closed, every later line is dropped, and the
//! command finishes its work and exits with its own code, with nothing on stderr.
//!
//! Why not SIGPIPE's default action: the same process runs the dashboard, the REST server and
//! the MCP server, where a peer that goes away must end one connection, never the process.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether the reader of stdout has gone away.
pub fn closed() -> bool {
    CLOSED.load(Ordering::SeqCst)
}

/// Write `text` to stdout. A closed pipe is not an error (the output is dropped from then
/// on); any other failure (a full disk behind `>`) is.
pub fn write_str(text: &str) -> io::Result<()> {
    if closed() {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::SeqCst);
            tracing::debug!("stdout closed by its reader: the rest of the output is dropped");
            Ok(())
        }
        other => other,
    }
}

/// `args` and a newline on stdout (see [`write_str`]).
pub fn line(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut text = fmt::format(args);
    text.push('\n');
    write_str(&text)
}

/// `args` on stdout, no newline (see [`write_str`]).
pub fn text(args: fmt::Arguments<'_>) -> io::Result<()> {
    write_str(&fmt::format(args))
}

/// `println!` that stops quietly on a closed pipe; evaluates to `io::Result<()>`.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::write_str("\n")
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

/// `print!` that stops quietly on a closed pipe; evaluates to `io::Result<()>`.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::text(format_args!($($arg)*))
    };
}
