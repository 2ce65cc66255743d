//! The accept loop: bounded connections and header timeouts, so that sockets
//! which connect and never finish a request cannot starve the server.
//!
//! - **Header timeout**: a connection has `header_timeout` to send a complete
//!   request header after it connects or after its previous answer (so this is
//!   also the keep-alive idle timeout). HTTP/1 partial headers are cut by
//!   hyper's header-read timer; a connection that sends nothing (or is still
//!   idle between requests) is closed by the reaper here.
//! - **Connection limit**: at most `max_connections` connections are open
//!   (default: the open-file limit minus headroom for the database and blob
//!   files, see [`default_max_connections`]). When a new connection arrives at
//!   the limit, the connection that has waited longest for its request header
//!   is closed to make room, so `/healthz` and real clients keep being served
//!   while slow sockets pile up. A connection with a request in flight (an
//!   upload, a live page's event stream) is never closed for room; when every
//!   connection is busy, the new one is closed at once.
//! - **Body pace**: once its header is in, a request's body may pause at most
//!   `header_timeout` and must average [`pace::MIN_BODY_RATE`] bytes a second
//!   of waiting after that long (`pace`); else it is answered 408
//!   `request_timeout` and the connection closed. Time a handler spends not
//!   reading (waiting for room) is not charged. An answer is held to the same
//!   pace while the client leaves its writes waiting (`pace::PacedWrites`):
//!   past it the connection is closed.
//! - **Lingering close**: a connection closed while its client is still
//!   sending (a body refused unread) reads and drops the rest for a while
//!   after its answer, so that the client reads the answer rather than a
//!   reset (`linger`).
//! - **Graceful shutdown**: accepting stops, connections waiting for a request
//!   are closed, the others finish their request (live streams end themselves,
//!   see `ui::shutting_down`), at most [`DRAIN_MAX`] later the rest is closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};
use tower::Service;

use crate::error::ServerError;

mod linger;
mod pace;

/// Connection bounds of the accept loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Default time to send a request header (and keep-alive idle timeout).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(20);

/// The most an HTTP/1 connection reads ahead of its handler (hyper's default
/// is about 400 KiB): a request head must fit (32 KiB is nginx's default room
/// for a request's header lines, four buffers of 8 KiB), and a body its
/// handler is not reading yet (a result batch waiting for room to be decoded)
/// waits in the socket, not in this buffer. Twenty job runs' 160 requests in
/// flight held up to 64 MiB of bodies here with hyper's default, and about
/// 10 MiB at 64 KiB (docs/ingest-profile.md, "Twenty job runs at the issue's
/// scale", "A waiting batch holds its stored JSON, not its results twice").
const READ_BUFFER: usize = 32 * 1024;

/// How long a graceful shutdown waits for requests in flight.
pub const DRAIN_MAX: Duration = Duration::from_secs(30);

/// File descriptors kept free for everything that is not a client connection
/// (database files, blobs being written, the listener): the larger of 64 and
/// an eighth of the limit.
fn headroom(limit: u64) -> u64 {
    (limit / 8).max(64)
}

/// The open-file limit of this process (soft), when it has one.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// The default connection limit: below the open-file limit by
/// [`headroom`]; 4096 when the process has no such limit.
pub fn default_max_connections() -> usize {
    match open_file_limit() {
        Some(limit) => limit.saturating_sub(headroom(limit)).max(16) as usize,
        None => 4096,
    }
}

/// One open connection.
struct Conn {
    id: u64,
    /// Requests whose answer is not completely sent yet.
    in_flight: AtomicUsize,
    /// Since when no request is in flight (ms since the registry's epoch).
    idle_since: AtomicU64,
    /// Set once the connection was told to close.
    closing: AtomicBool,
    /// Closes the connection at once.
    close: Notify,
}

impl Conn {
    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.close.notify_one();
    }
}

#[derive(Default)]
struct Registry {
    epoch: Option<Instant>,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.epoch.map_or(0, |e| e.elapsed().as_millis() as u64)
    }

    fn len(&self) -> usize {
        self.conns.lock().unwrap().len()
    }

    /// Closes the connection that has waited longest for a request header;
    /// false when every connection has a request in flight.
    fn evict_oldest_waiting(&self) -> bool {
        let conns = self.conns.lock().unwrap();
        let oldest = conns
            .iter()
            .filter(|(_, c)| {
                c.in_flight.load(Ordering::Acquire) == 0 && !c.closing.load(Ordering::Acquire)
            })
            .min_by_key(|(id, c)| (c.idle_since.load(Ordering::Acquire), **id));
        match oldest {
            Some((_, c)) => {
                c.close();
                true
            }
            None => false,
        }
    }

    /// Closes every connection without a request in flight for longer than
    /// `max` (all of them when `max` is zero).
    fn close_waiting(&self, max: Duration) {
        let now = self.now_ms();
        let max = max.as_millis() as u64;
        for c in self.conns.lock().unwrap().values() {
            if c.in_flight.load(Ordering::Acquire) == 0
                && now.saturating_sub(c.idle_since.load(Ordering::Acquire)) >= max
            {
                c.close();
            }
        }
    }

    fn close_all(&self) {
        for c in self.conns.lock().unwrap().values() {
            c.close();
        }
    }

    /// Waits (at most `max`) until fewer than `limit` connections are open:
    /// a closed connection's socket is released by its own task.
    async fn wait_below(&self, limit: usize, max: Duration) -> bool {
        let deadline = Instant::now() + max;
        while self.len() >= limit {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        true
    }
}

/// Held while a request of a connection is answered (until its body is sent).
struct InFlight {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl InFlight {
    fn enter(conn: &Arc<Conn>, registry: &Arc<Registry>) -> InFlight {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight {
            conn: conn.clone(),
            registry: registry.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conn
                .idle_since
                .store(self.registry.now_ms(), Ordering::Release);
        }
    }
}

/// Logs a repeated warning at most once a minute.
struct Throttled(Mutex<Option<Instant>>);

impl Throttled {
    fn due(&self) -> bool {
        let mut last = self.0.lock().unwrap();
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry {
        epoch: Some(Instant::now()),
        ..Default::default()
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        stop_tx.send_replace(true);
    });
    // Closes connections that waited too long for a request header.
    let reaper = {
        let registry = registry.clone();
        let every =
            (limits.header_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                registry.close_waiting(limits.header_timeout);
            }
        })
    };
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let full_warning = Throttled(Mutex::new(None));
    let accept_warning = Throttled(Mutex::new(None));
    let mut next_id: u64 = 0;
    let mut stopping = stop_rx.clone();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if accept_warning.due() {
                        tracing::warn!(error = %e, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopping.wait_for(|s| *s) => break,
        };
        if registry.len() >= limits.max_connections
            && !(registry.evict_oldest_waiting()
                && registry
                    .wait_below(limits.max_connections, Duration::from_secs(1))
                    .await)
        {
            if full_warning.due() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "every connection is busy with a request; refusing new connections"
                );
            }
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let conn = Arc::new(Conn {
            id,
            in_flight: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            idle_since: AtomicU64::new(registry.now_ms()),
            close: Notify::new(),
        });
        registry.conns.lock().unwrap().insert(id, conn.clone());
        tokio::spawn(connection(
            stream,
            remote,
            app.clone(),
            limits,
            conn,
            registry.clone(),
            stop_rx.clone(),
            done_tx.clone(),
        ));
    }
    drop(listener);
    drop(done_tx);
    // Nothing is lost by closing connections that wait for a request.
    registry.close_waiting(Duration::ZERO);
    if tokio::time::timeout(DRAIN_MAX, done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {DRAIN_MAX:?}; closing them");
        registry.close_all();
        let _ = tokio::time::timeout(Duration::from_secs(5), done_rx.recv()).await;
    }
    reaper.abort();
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    app: Router,
    limits: Limits,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) {
    let pace = pace::Pace::for_header_timeout(limits.header_timeout);
    let service = {
        let conn = conn.clone();
        let registry = registry.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let guard = InFlight::enter(&conn, &registry);
            req.extensions_mut().insert(ConnectInfo(remote));
            let too_slow = Arc::new(AtomicBool::new(false));
            let http1 = req.version() < hyper::Version::HTTP_2;
            let req = req.map(|b| Body::new(pace::Paced::new(b, pace, too_slow.clone())));
            let mut app = app.clone();
            async move {
                let mut res = app.call(req).await?;
                if too_slow.load(Ordering::Acquire) {
                    // Whatever the handler made of the failed read.
                    res = axum::response::IntoResponse::into_response(ServerError::RequestTimeout(
                        pace.idle,
                        pace.min_rate,
                    ));
                    if http1 {
                        res.headers_mut().insert(
                            hyper::header::CONNECTION,
                            hyper::header::HeaderValue::from_static("close"),
                        );
                    }
                }
                // The guard lives as long as the answer's body is being sent.
                Ok::<_, std::convert::Infallible>(res.map(move |body| {
                    Body::new(body.map_frame(move |frame| {
                        let _in_flight = &guard;
                        frame
                    }))
                }))
            }
        })
    };
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(READ_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_timeout));
    let stream = pace::PacedWrites::new(linger::Lingering::new(stream), pace);
    let served = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(served);
    let mut graceful = false;
    loop {
        tokio::select! {
            res = served.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            _ = conn.close.notified() => break,
            _ = stop.wait_for(|s| *s), if !graceful => {
                graceful = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
    // Removed while `_done` is still held: a drained server has no entries.
    registry.conns.lock().unwrap().remove(&conn.id);
}
