//! The accept side: a cap on concurrent connections, an idle timeout, a
//! deadline for a request's headers, and the connection loop itself.

use crate::metrics::Metrics;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// How long a client has to send a whole request head, counted from when the
/// connection starts waiting for it (or the idle timeout, if shorter): a
/// client trickling header bytes (slowloris) would otherwise keep resetting
/// the idle timer and hold its connection forever. hyper starts this clock
/// when it waits for the next request, so it also closes a keep-alive
/// connection that sends nothing for this long (clients reconnect).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` (HTTP/1.1 with upgrades, for WebSocket) until
/// `shutdown` is cancelled; then stops accepting, lets every connection
/// finish its in-flight request and returns once all are closed.
pub async fn serve<L>(mut listener: L, app: axum::Router, idle: Duration, shutdown: tokio_util::sync::CancellationToken)
where
    L: axum::serve::Listener,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    // Each connection task holds a receiver; all dropped = all closed.
    let (done_tx, done_rx) = tokio::sync::watch::channel(());
    loop {
        let (io, _) = tokio::select! {
            c = listener.accept() => c,
            () = shutdown.cancelled() => break,
        };
        let svc = app
            .clone()
            .map_request(|req: axum::http::Request<hyper::body::Incoming>| req.map(axum::body::Body::new));
        let svc = hyper_util::service::TowerToHyperService::new(svc);
        let (shutdown, done_rx) = (shutdown.clone(), done_rx.clone());
        tokio::spawn(async move {
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT.min(idle));
            let conn = b.serve_connection(TokioIo::new(io), svc).with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::trace!(error = %e, "HTTP connection ended");
                    }
                }
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(done_rx);
        });
    }
    drop(listener);
    drop(done_rx);
    done_tx.closed().await;
}

/// A TCP listener that holds at most `max` connections open: at the cap it
/// stops accepting and new clients wait in the kernel's backlog.
pub struct Limited {
    inner: TcpListener,
    max: usize,
    /// When the limit was last reported in the log.
    warned: Option<Instant>,
    permits: Arc<Semaphore>,
    idle: Duration,
    metrics: Arc<Metrics>,
}

impl Limited {
    /// Wraps `inner`.
    pub fn new(inner: TcpListener, max: usize, idle: Duration, metrics: Arc<Metrics>) -> Limited {
        Limited {
            inner,
            max: max.max(1),
            warned: None,
            permits: Arc::new(Semaphore::new(max.max(1))),
            idle,
            metrics,
        }
    }
}

impl axum::serve::Listener for Limited {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // New clients queue in the kernel's backlog until a
                // connection closes; said at most every 10 s.
                if self.warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    self.warned = Some(Instant::now());
                    tracing::warn!(
                        max = self.max,
                        "HTTP connection limit reached (--max-connections): new connections wait until one closes"
                    );
                }
                // The semaphore is never closed, so acquiring only waits.
                let Ok(p) = self.permits.clone().acquire_owned().await else {
                    unreachable!("semaphore closed")
                };
                p
            }
        };
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    self.metrics.connection("http", 1);
                    let conn = Conn {
                        io: stream,
                        idle: self.idle,
                        last: Instant::now(),
                        timer: Box::pin(tokio::time::sleep(self.idle)),
                        _permit: permit,
                        metrics: self.metrics.clone(),
                    };
                    return (conn, addr);
                }
                Err(e) => {
                    // Usually EMFILE or a connection reset before accept: back off, retry.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection that fails with `TimedOut` when neither direction makes
/// progress for `idle`. The timer is only re-armed when it fires, so a busy
/// connection does not touch the timer wheel on every read.
pub struct Conn {
    io: TcpStream,
    idle: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.metrics.connection("http", -1);
    }
}

impl Conn {
    fn check_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            ready!(self.timer.as_mut().poll(cx));
            let deadline = self.last + self.idle;
            if deadline <= Instant::now() {
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle timeout"));
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                self.last = Instant::now();
                Poll::Ready(r)
            }
            Poll::Pending => self.check_idle(cx).map(Err),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                self.last = Instant::now();
                Poll::Ready(r)
            }
            Poll::Pending => self.check_idle(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                self.last = Instant::now();
                Poll::Ready(r)
            }
            Poll::Pending => self.check_idle(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
