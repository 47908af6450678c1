//! Bounds on connections and calls, so that no single client can take the
//! server down:
//!
//! * [`RegistryCallLimitLayer`]: the global bound on `PortRegistryService` calls in
//!   flight (from arrival until the handler returns its response). Beyond it
//!   calls are shed at once with RESOURCE_EXHAUSTED instead of queueing, and
//!   `grpc.health.v1` and reflection are never counted, so health checks
//!   never wait behind registry calls.
//! * [`AgedConnection`]: a connection that is closed hard once its grace
//!   after `--max-stream-lifetime` (the age at which tonic sends GOAWAY) has
//!   passed, dropping every stream and buffer it still holds.
//! * [`PerConnection`]: counts of something (Watch streams) per connection,
//!   keyed by the connection's remote address, released on drop.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dashmap::DashMap;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tonic::Status;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The request path prefix of the calls [`RegistryCallLimitLayer`] counts.
const REGISTRY_PATH: &str = "/portolan.v1.PortRegistryService/";

/// Wraps a service with [`RegistryCallLimit`]: at most `limit` registry
/// calls in flight over all connections; further ones get
/// RESOURCE_EXHAUSTED immediately.
#[derive(Debug, Clone)]
pub struct RegistryCallLimitLayer {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl RegistryCallLimitLayer {
    /// A limit of `limit` calls in flight.
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> tower::Layer<S> for RegistryCallLimitLayer {
    type Service = RegistryCallLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RegistryCallLimit {
            inner,
            permits: Arc::clone(&self.permits),
            limit: self.limit,
        }
    }
}

/// The service [`RegistryCallLimitLayer`] produces.
#[derive(Debug, Clone)]
pub struct RegistryCallLimit<S> {
    inner: S,
    permits: Arc<Semaphore>,
    limit: usize,
}

impl<S, B> tower::Service<http::Request<B>> for RegistryCallLimit<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !request.uri().path().starts_with(REGISTRY_PATH) {
            return Box::pin(self.inner.call(request));
        }
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            let status = Status::resource_exhausted(format!(
                "server busy: {} registry calls in flight; retry with backoff",
                self.limit
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(permit);
            response
        })
    }
}

/// An accepted TCP connection that reads end-of-file and refuses writes
/// from `close_at` on, so hyper closes it and drops whatever it still holds
/// (streams whose clients stopped reading, their buffered frames).
///
/// tonic 0.14.9 offers either a GOAWAY at `max_connection_age` (and then
/// waits for the open streams forever) or, with `max_connection_age_grace`,
/// a hard close at age + grace with no GOAWAY at all. The server uses the
/// first and this wrapper for the second, so connections get both: GOAWAY at
/// `--max-stream-lifetime`, then `--max-connection-age-grace` to finish,
/// then a hard close.
#[derive(Debug)]
pub struct AgedConnection {
    io: TcpStream,
    close_at: Pin<Box<tokio::time::Sleep>>,
    closed: bool,
}

impl AgedConnection {
    /// `io`, closed hard after `max_age` (from now).
    pub fn new(io: TcpStream, max_age: Duration) -> Self {
        Self {
            io,
            close_at: Box::pin(tokio::time::sleep(max_age)),
            closed: false,
        }
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.closed && self.close_at.as_mut().poll(cx).is_ready() {
            tracing::debug!("connection reached its maximum age and grace; closing it");
            self.closed = true;
        }
        self.closed
    }
}

impl Connected for AgedConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl AsyncRead for AgedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.expired(cx) {
            // End of file: hyper ends the connection.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

fn closed_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "connection reached its maximum age and grace",
    )
}

impl AsyncWrite for AgedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.expired(cx) {
            return Poll::Ready(Err(closed_error()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if self.expired(cx) {
            return Poll::Ready(Err(closed_error()));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Counts per connection (keyed by the remote address) with a maximum.
#[derive(Debug)]
pub struct PerConnection {
    counts: DashMap<SocketAddr, usize>,
    max: usize,
}

/// One counted unit of a [`PerConnection`]; released when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    owner: Arc<PerConnection>,
    key: SocketAddr,
}

impl PerConnection {
    /// At most `max` per connection.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            counts: DashMap::new(),
            max,
        })
    }

    /// The maximum per connection.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for the connection from `key`, or `None` when it holds the
    /// maximum already.
    pub fn try_acquire(self: &Arc<Self>, key: SocketAddr) -> Option<ConnectionSlot> {
        let mut count = self.counts.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        drop(count);
        Some(ConnectionSlot {
            owner: Arc::clone(self),
            key,
        })
    }

    /// How many slots the connection from `key` holds.
    pub fn held(&self, key: SocketAddr) -> usize {
        self.counts.get(&key).map_or(0, |count| *count)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.owner.counts.remove_if_mut(&self.key, |_, count| {
            *count -= 1;
            *count == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_connection_slots_are_bounded_and_released() {
        let slots = PerConnection::new(2);
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:1001".parse().unwrap();
        let first = slots.try_acquire(a).expect("first");
        let second = slots.try_acquire(a).expect("second");
        assert!(
            slots.try_acquire(a).is_none(),
            "a third on the same connection"
        );
        let other = slots
            .try_acquire(b)
            .expect("another connection is not affected");
        drop(first);
        assert_eq!(slots.held(a), 1);
        let again = slots.try_acquire(a).expect("a released slot is reusable");
        drop((second, again, other));
        assert!(slots.counts.is_empty(), "no entry is left behind");
    }
}
