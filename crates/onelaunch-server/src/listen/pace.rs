//! The slowest a request body may arrive, and an answer be read
//! ([`PacedWrites`]). Once a request's header is in, its
//! body must keep coming: no pause longer than [`Pace::idle`] (nginx's
//! `client_body_timeout`), and, after [`Pace::grace`], at least
//! [`Pace::min_rate`] bytes a second on average (Kestrel's
//! `MinRequestBodyDataRate`). Without them a client that sends a byte now
//! and then holds its connection (and what its request holds) for as long
//! as it likes.
//!
//! Only the time the server waits for the client counts: while a handler
//! does not read the body (it waits for room, or for the writer), its bytes
//! wait in the socket and no time is charged. A body that breaks the pace
//! ends with an error, which the handler sees as any failed read; the
//! connection's service then answers 408 (`request_timeout`) and closes the
//! connection, whatever the handler answered.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Buf, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The pace a request body must keep.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    /// The longest wait for the body's next bytes.
    pub idle: Duration,
    /// Waiting time before the average rate is checked.
    pub grace: Duration,
    /// The slowest average, in bytes a second of waiting.
    pub min_rate: u64,
}

/// The slowest average rate of a request body (Kestrel's default).
pub(crate) const MIN_BODY_RATE: u64 = 240;

impl Pace {
    /// The pace for a server whose header timeout is `header_timeout`: the
    /// same time for a pause within a body and for the grace.
    pub(crate) fn for_header_timeout(header_timeout: Duration) -> Pace {
        Pace {
            idle: header_timeout,
            grace: header_timeout,
            min_rate: MIN_BODY_RATE,
        }
    }

    /// The waiting time after which `bytes` received are too few.
    fn rate_deadline(&self, bytes: u64) -> Duration {
        let needed = Duration::from_secs_f64(bytes as f64 / self.min_rate.max(1) as f64);
        needed.max(self.grace)
    }
}

/// What a paced body's frames fail with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that broke its pace.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub(crate) struct TooSlow;

/// The waits of one direction of a connection held to a [`Pace`]: the bytes
/// moved and the time spent waiting for the client.
struct Waits {
    pace: Pace,
    /// Bytes moved so far.
    bytes: u64,
    /// Time spent waiting for the client before the current wait.
    waited: Duration,
    /// When the current wait began (the first poll that found the client
    /// not ready).
    waiting_since: Option<Instant>,
    /// Wakes the task at the current wait's deadline.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Waits {
    fn new(pace: Pace) -> Waits {
        Waits {
            pace,
            bytes: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: None,
        }
    }

    /// `n` bytes moved: the current wait, if any, is over.
    fn moved(&mut self, n: u64) {
        if let Some(since) = self.waiting_since.take() {
            self.waited += since.elapsed();
        }
        self.bytes += n;
    }

    /// The client is not ready: `Ready` once this wait breaks the pace,
    /// else `Pending` with the task woken at the wait's deadline.
    fn poll_broken(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        let rate_left = self
            .pace
            .rate_deadline(self.bytes)
            .saturating_sub(self.waited);
        let deadline = since + self.pace.idle.min(rate_left);
        let timer = match &mut self.timer {
            Some(t) => {
                if t.deadline() != deadline {
                    t.as_mut().reset(deadline);
                }
                t
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        let broken = timer.as_mut().poll(cx);
        if broken.is_ready() {
            self.timer = None;
        }
        broken
    }
}

/// A request body held to a [`Pace`]; sets `tripped` when it breaks it.
pub(crate) struct Paced<B> {
    inner: B,
    tripped: Arc<AtomicBool>,
    waits: Waits,
}

impl<B> Paced<B> {
    pub(crate) fn new(inner: B, pace: Pace, tripped: Arc<AtomicBool>) -> Paced<B> {
        Paced {
            inner,
            tripped,
            waits: Waits::new(pace),
        }
    }

    /// Ends the body: it broke its pace.
    fn trip(&mut self) -> Poll<Option<Result<Frame<B::Data>, BoxError>>>
    where
        B: Body,
    {
        self.tripped.store(true, Ordering::Release);
        self.waits.timer = None;
        Poll::Ready(Some(Err(Box::new(TooSlow))))
    }
}

impl<B> Body for Paced<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.tripped.load(Ordering::Acquire) {
            return this.trip();
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let n = match &frame {
                    Some(Ok(f)) => f.data_ref().map_or(0, |d| d.remaining() as u64),
                    _ => 0,
                };
                this.waits.moved(n);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.waits.poll_broken(cx) {
                Poll::Ready(()) => this.trip(),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection whose answers are held to a [`Pace`] too: a write the
/// client leaves waiting (it does not read) may wait at most [`Pace::idle`],
/// and after [`Pace::grace`] of such waiting the answer must have gone at
/// [`Pace::min_rate`] on average (nginx's `send_timeout`, Kestrel's
/// `MinResponseDataRate`). Past that the write fails and the connection is
/// closed, with what its request held (its place among its sender's
/// requests in flight). Time the server spends with nothing to write (a
/// live page between its events) is not charged.
pub(crate) struct PacedWrites<S> {
    inner: S,
    waits: Waits,
}

impl<S> PacedWrites<S> {
    pub(crate) fn new(inner: S, pace: Pace) -> PacedWrites<S> {
        PacedWrites {
            inner,
            waits: Waits::new(pace),
        }
    }

    /// What a write the client left waiting gives.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        match self.waits.poll_broken(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read the answer too slowly",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Counts what a write moved, or waits for the client.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                self.waits.moved(n as u64);
                Poll::Ready(Ok(n))
            }
            Poll::Pending => self.waiting(cx),
            other => other,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PacedWrites<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PacedWrites<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.waiting(cx),
            done => done,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    use tokio::sync::mpsc;

    type Chunks = mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;
    type Frames = Pin<Box<dyn futures::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send>>;

    fn body(pace: Pace) -> (Chunks, Paced<StreamBody<Frames>>, Arc<AtomicBool>) {
        let (tx, mut rx) = mpsc::channel(16);
        let frames: Frames = Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let tripped = Arc::new(AtomicBool::new(false));
        (
            tx,
            Paced::new(StreamBody::new(frames), pace, tripped.clone()),
            tripped,
        )
    }

    fn pace() -> Pace {
        Pace {
            idle: Duration::from_secs(20),
            grace: Duration::from_secs(20),
            min_rate: MIN_BODY_RATE,
        }
    }

    async fn send(tx: &Chunks, n: usize) {
        tx.send(Ok(Frame::data(Bytes::from(vec![b'x'; n]))))
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_idle_ends_the_body() {
        let (tx, mut b, tripped) = body(pace());
        send(&tx, 100_000).await;
        assert!(b.frame().await.unwrap().is_ok());
        let t0 = Instant::now();
        let err = b.frame().await.unwrap().unwrap_err();
        assert!(err.is::<TooSlow>(), "{err}");
        assert_eq!(t0.elapsed(), Duration::from_secs(20));
        assert!(tripped.load(Ordering::Acquire));
        // It stays ended, whatever comes later.
        send(&tx, 10).await;
        assert!(b.frame().await.unwrap().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_below_the_rate_ends_after_the_grace() {
        let (tx, mut b, tripped) = body(pace());
        let sender = tokio::spawn(async move {
            // 100 bytes every 1.5 s: each pause is short, the average too low.
            loop {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                if tx
                    .send(Ok(Frame::data(Bytes::from(vec![b'x'; 100]))))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let t0 = Instant::now();
        let mut got = 0;
        let err = loop {
            match b.frame().await.unwrap() {
                Ok(f) => got += f.into_data().unwrap().len(),
                Err(e) => break e,
            }
        };
        assert!(err.is::<TooSlow>());
        assert!(tripped.load(Ordering::Acquire));
        // 240 bytes a second are needed; at 67 the grace is what it gets.
        assert_eq!(t0.elapsed(), Duration::from_secs(20));
        assert_eq!(got, 13 * 100);
        drop(b);
        sender.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_and_a_reader_that_pauses_are_not_charged() {
        let (tx, mut b, tripped) = body(pace());
        let sender = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                send(&tx, 2_000).await;
            }
        });
        let mut got = 0;
        for i in 0..10 {
            got += b.frame().await.unwrap().unwrap().into_data().unwrap().len();
            if i == 3 {
                // The handler waits for room: a minute without reading.
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        }
        assert!(b.frame().await.is_none(), "the body ends");
        assert_eq!(got, 20_000);
        assert!(!tripped.load(Ordering::Acquire));
        sender.await.unwrap();
    }

    /// Writes to `w` until one fails: the bytes written and the error.
    async fn write_until_cut(
        w: &mut PacedWrites<tokio::io::DuplexStream>,
    ) -> (usize, std::io::Error) {
        use tokio::io::AsyncWriteExt;
        let mut sent = 0;
        loop {
            match w.write(&[b'x'; 512]).await {
                Ok(n) => sent += n,
                Err(e) => return (sent, e),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_its_client_does_not_read_is_cut_after_idle() {
        let (server, client) = tokio::io::duplex(4096);
        let mut w = PacedWrites::new(server, pace());
        let t0 = Instant::now();
        let (sent, err) = write_until_cut(&mut w).await;
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(sent, 4096, "what the pipe holds");
        assert_eq!(t0.elapsed(), Duration::from_secs(20));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_read_as_a_trickle_is_cut_after_the_grace() {
        use tokio::io::AsyncReadExt;
        let (server, mut client) = tokio::io::duplex(64);
        let mut w = PacedWrites::new(server, pace());
        // 16 bytes a second: every wait is short, the average too low.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if !matches!(client.read(&mut buf).await, Ok(n) if n > 0) {
                    break;
                }
            }
        });
        let t0 = Instant::now();
        let (_, err) = write_until_cut(&mut w).await;
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_secs(20) && waited < Duration::from_secs(22),
            "{waited:?}"
        );
        drop(w);
        reader.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_reader_and_a_server_with_nothing_to_say_are_not_charged() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (server, mut client) = tokio::io::duplex(1024);
        let mut w = PacedWrites::new(server, pace());
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 1024];
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => got += n,
                }
            }
        });
        for i in 0..100 {
            w.write_all(&[b'x'; 512]).await.unwrap();
            if i == 50 {
                // A live page between its events: two minutes of nothing.
                tokio::time::sleep(Duration::from_secs(120)).await;
            }
        }
        w.shutdown().await.unwrap();
        drop(w);
        assert_eq!(reader.await.unwrap(), 51_200);
    }

    #[tokio::test(start_paused = true)]
    async fn more_bytes_buy_more_waiting() {
        // 48,000 bytes at 240 a second are 200 s of waiting: pauses of 15 s
        // go on past the grace until those are used up.
        let (tx, mut b, tripped) = body(pace());
        send(&tx, 48_000).await;
        b.frame().await.unwrap().unwrap();
        for _ in 0..13 {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(15)).await;
                send(&tx, 1).await;
            });
            b.frame().await.unwrap().unwrap();
        }
        assert!(!tripped.load(Ordering::Acquire));
        // 195 s waited for 48,013 bytes (200.05 s at the rate): the next
        // wait ends after about 5 s, before idle would.
        let t0 = Instant::now();
        assert!(b.frame().await.unwrap().is_err());
        let waited = t0.elapsed();
        assert!(
            waited > Duration::from_secs(5) && waited < Duration::from_secs(6),
            "{waited:?}"
        );
        drop(tx);
    }
}
