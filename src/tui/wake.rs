//! Waking a thread that blocks in `poll`: it polls [`Waiter::fd`] beside its own file
//! descriptors, and any thread holding a [`Waker`] makes that readable. This lets the input
//! thread and the store watcher sleep without a timeout, instead of waking a few times a
//! second to look at a flag.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    No,
    Yes,
    /// Every [`Waker`] is gone.
    Closed,
}

/// The end that is polled.
pub struct Waiter {
    rx: UnixStream,
}

/// The end that wakes; cheap to clone.
#[derive(Clone)]
pub struct Waker {
    tx: Arc<UnixStream>,
}

/// A connected pair; both ends non-blocking, so waking never blocks and draining stops when
/// nothing is left.
pub fn pair() -> std::io::Result<(Waker, Waiter)> {
    let (tx, rx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    Ok((Waker { tx: Arc::new(tx) }, Waiter { rx }))
}

impl Waker {
    pub fn wake(&self) {
        // A full buffer means a wake is already waiting: nothing is lost by dropping this one.
        let _ = (&*self.tx).write(&[1]);
    }
}

impl Waiter {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }

    /// Take every waiting wake.
    pub fn drain(&self) -> Woken {
        let mut buf = [0u8; 64];
        let mut woken = Woken::No;
        loop {
            match (&self.rx).read(&mut buf) {
                // Every waker dropped: nobody can wake us any more, which means stop.
                Ok(0) => return Woken::Closed,
                Ok(_) => woken = Woken::Yes,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return woken,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_is_seen_once_and_many_wakes_are_one() {
        let (waker, waiter) = pair().unwrap();
        assert_eq!(waiter.drain(), Woken::No);
        waker.wake();
        waker.clone().wake();
        assert_eq!(waiter.drain(), Woken::Yes);
        assert_eq!(waiter.drain(), Woken::No);
    }

    #[test]
    fn dropping_every_waker_wakes() {
        let (waker, waiter) = pair().unwrap();
        drop(waker);
        assert_eq!(waiter.drain(), Woken::Closed);
    }
}
