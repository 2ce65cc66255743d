//! A lingering close (nginx's `lingering_close`): when the server closes a
//! connection whose client is still sending (a body refused unread: a JSON
//! body over its limit, answered 413 from its `Content-Length`), the answer
//! is sent, the sending side shut (the client reads the answer, then the
//! end), and what the client still sends is read and dropped for a while.
//!
//! Without it the kernel answers the unread bytes with a reset, which can
//! reach the client before it has read the answer: it then sees "connection
//! reset" instead of the 413 that names the limit. The reading is bounded by
//! [`LINGER_TIME`] and [`LINGER_BYTES`]; the connection keeps its place among
//! the server's connections meanwhile (the accept loop's limit counts it),
//! and the reaper and a shutdown still close it as any other.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The longest a closing connection reads what its client still sends.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(5);

/// The most a closing connection reads and drops: twice the largest body a
/// request may have (a multipart upload's 256 MiB, set in the ingest layer,
/// which this one does not depend on).
pub(crate) const LINGER_BYTES: u64 = 512 << 20;

/// A stream whose shutdown lingers (see the module documentation).
pub(crate) struct Lingering<S> {
    inner: S,
    state: State,
}

enum State {
    Open,
    /// The sending side is shut; reading until the client's end, the
    /// deadline or the byte bound.
    Draining {
        deadline: Pin<Box<Sleep>>,
        left: u64,
    },
    Closed,
}

impl<S> Lingering<S> {
    pub(crate) fn new(inner: S) -> Lingering<S> {
        Lingering {
            inner,
            state: State::Open,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Open => {
                    ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                    this.state = State::Draining {
                        deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                        left: LINGER_BYTES,
                    };
                }
                State::Draining { deadline, left } => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        this.state = State::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 16 * 1024];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                            *left = left.saturating_sub(buf.filled().len() as u64);
                            if *left == 0 {
                                this.state = State::Closed;
                            }
                        }
                        // The client's end, or its reset: nothing more to wait for.
                        Poll::Ready(_) => this.state = State::Closed,
                    }
                }
                State::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The server side answers and closes while the client is still
    /// sending: the client gets to send everything, then reads the answer
    /// and the end, with no reset.
    #[tokio::test]
    async fn a_client_still_sending_reads_the_answer_and_the_end() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut s = Lingering::new(stream);
            let mut head = [0u8; 4];
            s.read_exact(&mut head).await.unwrap();
            s.write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            s.shutdown().await.unwrap();
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Far more than the socket buffers hold, so the server closes
        // while much of it is still unsent.
        let body = vec![b'x'; 32 << 20];
        client.write_all(&body).await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 413"), "{answer:?}");
        drop(client);
        server.await.unwrap();
    }

    /// A client that never stops sending is cut at the deadline; one that
    /// ends is let go at once.
    #[tokio::test(start_paused = true)]
    async fn lingering_ends_at_the_deadline_or_the_clients_end() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut s = Lingering::new(near);
        let writer = tokio::spawn(async move {
            // Writes until the lingering side goes away.
            while far.write_all(b"still sending").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let started = tokio::time::Instant::now();
        s.shutdown().await.unwrap();
        assert!(started.elapsed() >= LINGER_TIME, "{:?}", started.elapsed());
        drop(s);
        writer.await.unwrap();

        let (near, far) = tokio::io::duplex(64);
        let mut s = Lingering::new(near);
        drop(far);
        let started = tokio::time::Instant::now();
        s.shutdown().await.unwrap();
        assert!(started.elapsed() < LINGER_TIME);
    }
}
