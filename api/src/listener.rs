//! A deadline on reading request headers, against clients that drip them byte by byte
//! ("slowloris"). poem 3.1 serves connections with hyper but gives hyper no timer, so hyper's
//! own header-read timeout never fires; this acceptor wraps every accepted socket instead.
//!
//! The wrapper follows HTTP/1.1 framing just enough: a connection is *reading headers* from the
//! moment it is accepted and again after each final response has started (a write beginning
//! with `HTTP/1.x` and a status other than 1xx), and the header phase ends at the first blank
//! line (`\r\n\r\n`). On a kept-alive connection the deadline starts with the first byte of
//! the next request, so idle keep-alive time is bounded by the idle timeout alone. When the
//! deadline passes, a `408` is written (best effort) and the connection is closed. Upgraded
//! connections (`101`, the GraphQL WebSocket) and HTTP/2 (whose preface ends the header phase
//! and whose server never writes an HTTP/1 status line) are not timed after their start.
//! Body reads have their own timeout in the GraphQL endpoint.
use std::io::{IoSlice, Result as IoResult};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

const END_OF_HEADERS: &[u8; 4] = b"\r\n\r\n";
const TIMED_OUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Wraps plain TCP, or TLS (above the TLS layer, where the request's bytes are readable; the
/// handshake then counts as part of reading the first request's head).
pub struct HeaderTimeoutAcceptor<A = TcpAcceptor> {
    inner: A,
    timeout: Duration,
}

impl<A: Acceptor> HeaderTimeoutAcceptor<A> {
    pub fn new(inner: A, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<A: Acceptor> Acceptor for HeaderTimeoutAcceptor<A> {
    type Io = HeaderDeadline<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> IoResult<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((HeaderDeadline::new(io, self.timeout), local, remote, scheme))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading a request head; `armed` once its deadline runs.
    Headers { armed: bool },
    /// Between the end of a request head and the start of its response.
    Body,
    /// Upgraded connection: no deadline any more.
    Off,
}

pub struct HeaderDeadline<T> {
    inner: T,
    timeout: Duration,
    phase: Phase,
    /// How many bytes of `END_OF_HEADERS` the bytes read so far end with.
    matched: usize,
    deadline: Pin<Box<Sleep>>,
}

impl<T> HeaderDeadline<T> {
    pub fn new(inner: T, timeout: Duration) -> Self {
        // The first request's deadline runs from the accept: a connection that sends nothing
        // is as slow as one that sends too little.
        Self {
            inner,
            timeout,
            phase: Phase::Headers { armed: true },
            matched: 0,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Whether a request head is being read against the deadline.
    pub fn timing_headers(&self) -> bool {
        self.phase == Phase::Headers { armed: true }
    }

    /// Whether the connection waits, untimed, for the next request of a kept-alive connection.
    pub fn awaiting_next_request(&self) -> bool {
        self.phase == Phase::Headers { armed: false }
    }

    /// Whether the connection is upgraded (no deadline any more).
    pub fn upgraded(&self) -> bool {
        self.phase == Phase::Off
    }

    fn arm(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.timeout);
        self.phase = Phase::Headers { armed: true };
    }

    /// Follows the bytes a client sent.
    pub fn saw_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.phase == (Phase::Headers { armed: false }) {
            self.arm();
        }
        if let Phase::Headers { .. } = self.phase {
            for &b in bytes {
                self.matched = if b == END_OF_HEADERS[self.matched] {
                    self.matched + 1
                } else if b == b'\r' {
                    1
                } else {
                    0
                };
                if self.matched == END_OF_HEADERS.len() {
                    self.matched = 0;
                    self.phase = Phase::Body;
                    break;
                }
            }
        }
    }

    /// Follows what the server writes: a final status line starts the wait for the next head.
    pub fn saw_write(&mut self, bytes: &[u8]) {
        if self.phase == Phase::Off || !bytes.starts_with(b"HTTP/1.") {
            return;
        }
        match bytes.get(9) {
            Some(b'1') if bytes.get(9..12) == Some(b"101") => self.phase = Phase::Off,
            Some(b'1') => {}
            Some(_) => {
                self.matched = 0;
                self.phase = Phase::Headers { armed: false };
            }
            None => {}
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for HeaderDeadline<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<IoResult<()>> {
        let this = &mut *self;
        if this.phase == (Phase::Headers { armed: true }) && this.deadline.is_elapsed() {
            return this.time_out(cx);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.saw_read(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.phase == (Phase::Headers { armed: true }) && this.deadline.as_mut().poll(cx).is_ready() {
                    return this.time_out(cx);
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> HeaderDeadline<T> {
    fn time_out(&mut self, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        // Best effort: a client still listening learns why; a full socket buffer just closes.
        let _ = Pin::new(&mut self.inner).poll_write(cx, TIMED_OUT);
        let _ = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.phase = Phase::Off;
        tracing::debug!("request headers not received in time; connection closed");
        Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "request header read timeout")))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for HeaderDeadline<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<IoResult<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            this.saw_write(buf);
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<IoResult<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
            && let Some(first) = bufs.iter().find(|b| !b.is_empty())
        {
            this.saw_write(first);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
