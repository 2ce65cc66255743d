//! The slowest a request body may arrive. Once a request's header is in, its
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

/// A request body held to a [`Pace`]; sets `tripped` when it breaks it.
pub(crate) struct Paced<B> {
    inner: B,
    pace: Pace,
    tripped: Arc<AtomicBool>,
    /// Bytes received so far.
    bytes: u64,
    /// Time spent waiting for the client before the current wait.
    waited: Duration,
    /// When the current wait began (the first poll that found no data).
    waiting_since: Option<Instant>,
    /// Wakes the task at the current wait's deadline.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> Paced<B> {
    pub(crate) fn new(inner: B, pace: Pace, tripped: Arc<AtomicBool>) -> Paced<B> {
        Paced {
            inner,
            pace,
            tripped,
            bytes: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: None,
        }
    }

    /// When the current wait, begun at `since`, runs out.
    fn deadline(&self, since: Instant) -> Instant {
        let rate_left = self
            .pace
            .rate_deadline(self.bytes)
            .saturating_sub(self.waited);
        since + self.pace.idle.min(rate_left)
    }

    /// Ends the body: it broke its pace.
    fn trip(&mut self) -> Poll<Option<Result<Frame<B::Data>, BoxError>>>
    where
        B: Body,
    {
        self.tripped.store(true, Ordering::Release);
        self.timer = None;
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
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                if let Some(Ok(f)) = &frame {
                    if let Some(data) = f.data_ref() {
                        this.bytes += data.remaining() as u64;
                    }
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let since = *this.waiting_since.get_or_insert_with(Instant::now);
                let deadline = this.deadline(since);
                let timer = match &mut this.timer {
                    Some(t) => {
                        if t.deadline() != deadline {
                            t.as_mut().reset(deadline);
                        }
                        t
                    }
                    None => this
                        .timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => this.trip(),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
