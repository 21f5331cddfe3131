//! How `serve` takes connections, so that slow or idle clients cannot take it down: every
//! connection must send a request's headers within the I/O time-out (30 s; idle keep-alive
//! connections too), its body within it ([`super::guard`]), and take what is written to it
//! within it. At most [`MAX_CONNECTIONS`] are open, at most [`MAX_CONNECTIONS_PER_CLIENT`] from
//! one client address (an IPv6 client by its /64); when the total is reached, the connection
//! that has been idle longest (no request in flight) is closed for the new one, so a flood
//! of idle connections from many addresses cannot lock others out either.

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// How long a client may take to send a request's headers (or, idle, its next request),
/// to send its body, or to take a response that is being written.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections open at once, well inside the usual 1,024 open files beside the users' stores.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections open at once from one client address.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 128;

/// The I/O time-out: [`DEFAULT_IO_TIMEOUT`] unless `AUTOTRADE_API_IO_TIMEOUT` (seconds,
/// 0.1 to 300) says otherwise.
pub fn io_timeout_from_env() -> Result<Duration, String> {
    parse_io_timeout(std::env::var("AUTOTRADE_API_IO_TIMEOUT").ok().as_deref())
}

fn parse_io_timeout(v: Option<&str>) -> Result<Duration, String> {
    match v {
        Some(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| (0.1..=300.0).contains(s))
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                format!(
                    "AUTOTRADE_API_IO_TIMEOUT = {v:?} is not a number of seconds between 0.1 and 300"
                )
            }),
        _ => Ok(DEFAULT_IO_TIMEOUT),
    }
}

/// The connection limits `serve` applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub io_timeout: Duration,
    pub max_connections: usize,
    pub max_per_client: usize,
}

impl Limits {
    pub fn new(io_timeout: Duration) -> Limits {
        Limits {
            io_timeout,
            max_connections: MAX_CONNECTIONS,
            max_per_client: MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

/// Who counts as one client for the per-client cap: an IPv4 address, or an IPv6 /64 (one
/// host usually holds a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// One open connection, as the registry sees it.
struct ConnState {
    id: u64,
    client: IpAddr,
    /// Requests whose response is not yet fully written.
    in_flight: AtomicUsize,
    /// Milliseconds since the registry started, at the last byte read or written.
    last_active: AtomicU64,
    /// Told when the connection is evicted for a newer one.
    close: Notify,
}

#[derive(Default)]
struct Book {
    conns: HashMap<u64, Arc<ConnState>>,
    per_client: HashMap<IpAddr, usize>,
    next_id: u64,
}

/// Every open connection, with the caps.
struct Registry {
    limits: Limits,
    book: Mutex<Book>,
    started: Instant,
}

enum Refusal {
    Client,
    Full,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn admit(&self, ip: IpAddr) -> Result<Arc<ConnState>, Refusal> {
        let client = client_key(ip);
        let mut book = self.book();
        if book.per_client.get(&client).copied().unwrap_or(0) >= self.limits.max_per_client {
            return Err(Refusal::Client);
        }
        if book.conns.len() >= self.limits.max_connections {
            // The longest idle connection gives way; one with a request in flight never does.
            let victim = book
                .conns
                .values()
                .filter(|c| c.in_flight.load(Ordering::SeqCst) == 0)
                .min_by_key(|c| c.last_active.load(Ordering::Relaxed))
                .cloned();
            let Some(victim) = victim else {
                return Err(Refusal::Full);
            };
            victim.close.notify_one();
            Self::forget(&mut book, &victim);
        }
        book.next_id += 1;
        let state = Arc::new(ConnState {
            id: book.next_id,
            client,
            in_flight: AtomicUsize::new(0),
            last_active: AtomicU64::new(self.now_ms()),
            close: Notify::new(),
        });
        book.conns.insert(state.id, state.clone());
        *book.per_client.entry(client).or_insert(0) += 1;
        Ok(state)
    }

    fn forget(book: &mut Book, state: &ConnState) {
        if book.conns.remove(&state.id).is_some()
            && let Some(n) = book.per_client.get_mut(&state.client)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                book.per_client.remove(&state.client);
            }
        }
    }

    fn remove(&self, state: &ConnState) {
        Self::forget(&mut self.book(), state);
    }
}

/// Accept connections on `listener` and serve `app` on each until `stop` turns true; then
/// stop accepting, let each connection finish the request it is in (graceful), and return
/// when all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let registry = Arc::new(Registry {
        limits,
        book: Mutex::new(Book::default()),
        started: Instant::now(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
            // Reap finished connection tasks as they end.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was taken: wait a
                // little rather than spin, and go on.
                tracing::warn!("serve: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match registry.admit(peer.ip()) {
            Ok(state) => {
                let (app, registry, stop) = (app.clone(), registry.clone(), stop.clone());
                tasks.spawn(async move {
                    serve_connection(stream, peer, app, &registry, &state, stop).await;
                    registry.remove(&state);
                });
            }
            Err(why) => {
                tasks.spawn(refuse(stream, peer, why, limits));
            }
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

/// Answer a connection over a cap at once and close it (the caller waits no time-out).
async fn refuse(mut stream: TcpStream, peer: SocketAddr, why: Refusal, limits: Limits) {
    let (status, detail) = match why {
        Refusal::Client => (
            "429 Too Many Requests",
            format!(
                "too many connections from {}: at most {} at once",
                peer.ip(),
                limits.max_per_client
            ),
        ),
        Refusal::Full => (
            "503 Service Unavailable",
            format!(
                "the server has {} connections open, each with a request in flight",
                limits.max_connections
            ),
        ),
    };
    tracing::warn!("serve: refused a connection from {peer}: {detail}");
    let body = serde_json::json!({ "detail": detail }).to_string();
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(resp.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    registry: &Arc<Registry>,
    state: &Arc<ConnState>,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched {
        inner: stream,
        timeout: registry.limits.io_timeout,
        write_deadline: None,
        state: state.clone(),
        registry: registry.clone(),
    });
    let tracked = state.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        let in_flight = InFlight::new(tracked.clone());
        async move {
            let resp = tower::ServiceExt::oneshot(app, req).await?;
            Ok::<_, std::convert::Infallible>(resp.map(|body| {
                Body::new(TrackedBody {
                    inner: body,
                    _in_flight: in_flight,
                })
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(registry.limits.io_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("serve: connection from {peer} ended: {e}");
                }
                return;
            }
            _ = state.close.notified() => {
                tracing::info!("serve: closed the idle connection from {peer} for a new one");
                return;
            }
            _ = stop.wait_for(|s| *s), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// Counts a request as in flight until its response body is dropped (written or abandoned).
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn new(state: Arc<ConnState>) -> InFlight {
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, with its activity noted and a write that the client does not take within
/// the time-out failed (a client that stops reading cannot hold a connection forever).
struct Watched {
    inner: TcpStream,
    timeout: Duration,
    write_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    state: Arc<ConnState>,
    registry: Arc<Registry>,
}

impl Watched {
    fn active(&self) {
        self.state
            .last_active
            .store(self.registry.now_ms(), Ordering::Relaxed);
    }

    /// A write that made no progress: fail it once it has waited the whole time-out.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timeout = self.timeout;
        let deadline = self
            .write_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took nothing written to it within the time-out",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.active();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.stalled(cx).map(Err),
            r => {
                self.write_deadline = None;
                self.active();
                r
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.stalled(cx).map(Err),
            r => {
                self.write_deadline = None;
                self.active();
                r
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.stalled(cx).map(Err),
            r => {
                self.write_deadline = None;
                r
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_time_out_is_30_seconds() {
        assert_eq!(DEFAULT_IO_TIMEOUT, Duration::from_secs(30));
        assert_eq!(parse_io_timeout(None), Ok(Duration::from_secs(30)));
        assert_eq!(parse_io_timeout(Some(" ")), Ok(Duration::from_secs(30)));
        assert_eq!(
            parse_io_timeout(Some("1.5")),
            Ok(Duration::from_millis(1500))
        );
        for bad in ["0", "0.01", "301", "abc", "NaN"] {
            let e = parse_io_timeout(Some(bad)).unwrap_err();
            assert!(e.contains("AUTOTRADE_API_IO_TIMEOUT"), "{bad}: {e}");
        }
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let v4: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(client_key(v4), v4);
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(client_key(mapped), v4);
    }

    fn registry(max: usize, per_client: usize) -> Registry {
        Registry {
            limits: Limits {
                io_timeout: DEFAULT_IO_TIMEOUT,
                max_connections: max,
                max_per_client: per_client,
            },
            book: Mutex::new(Book::default()),
            started: Instant::now(),
        }
    }

    #[test]
    fn caps_per_client_and_in_total_evicting_the_longest_idle() {
        let r = registry(3, 2);
        let one: IpAddr = "127.0.0.1".parse().unwrap();
        let two: IpAddr = "127.0.0.2".parse().unwrap();
        let three: IpAddr = "127.0.0.3".parse().unwrap();
        let a = r.admit(one).ok().unwrap();
        let b = r.admit(one).ok().unwrap();
        assert!(matches!(r.admit(one), Err(Refusal::Client)));
        // a is busy, b was active later than c: c is the longest idle when the total is reached.
        let c = r.admit(two).ok().unwrap();
        a.in_flight.store(1, Ordering::SeqCst);
        a.last_active.store(0, Ordering::SeqCst);
        b.last_active.store(50, Ordering::SeqCst);
        c.last_active.store(10, Ordering::SeqCst);
        let d = r.admit(three).ok().unwrap();
        assert!(!r.book().conns.contains_key(&c.id), "c gave way");
        assert!(
            r.book().conns.contains_key(&a.id),
            "a request in flight keeps a"
        );
        // c's task is told to close (a permit waits for it).
        assert!(
            futures::FutureExt::now_or_never(c.close.notified()).is_some(),
            "c was told to close"
        );
        // Every connection busy: the next one is refused.
        b.in_flight.store(1, Ordering::SeqCst);
        d.in_flight.store(1, Ordering::SeqCst);
        assert!(matches!(r.admit(two), Err(Refusal::Full)));
        r.remove(&b);
        assert!(r.admit(one).is_ok(), "one of 127.0.0.1's two left");
    }
}
