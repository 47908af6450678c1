//! Raw HTTP/2 gRPC calls for the `hostile` attacks (through the `h2` crate,
//! so a call can do what no well-behaved client does: send headers and
//! never a body, or stop taking data without closing), and the plain
//! HTTP/1.1 scrape of the server's `/metrics`.
//!
//! A "stalled" connection advertises the protocol's minimum receive windows
//! (64 KiB per stream and per connection) and never releases what it
//! receives, so the server can send it at most 64 KiB in total: every other
//! byte of its answers stays on the server. The attacker still takes the
//! frames h2 has buffered (without releasing flow-control capacity), so it
//! sees when the server ends a call (trailers or a reset) without ever
//! reading on, from the server's point of view.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use h2::client::{ResponseFuture, SendRequest};
use h2::{Reason, SendStream};
use http::Request;
use prost::bytes::{BufMut as _, Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tonic::Code;

/// The HTTP/2 protocol's minimum (and default) initial window size.
pub const MIN_WINDOW: u32 = 65_535;

/// One raw HTTP/2 connection (its driver task is aborted on drop, which
/// closes the socket).
#[derive(Debug)]
pub struct RawConn {
    send: SendRequest<Bytes>,
    driver: JoinHandle<()>,
    addr: SocketAddr,
}

impl Drop for RawConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl RawConn {
    /// Connects to `addr`. With `stalled`, the connection advertises 64 KiB
    /// windows and its calls never release what they receive.
    pub async fn open(addr: SocketAddr, stalled: bool) -> Result<Self> {
        let tcp = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
            .await
            .context("connect timed out")?
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let mut builder = h2::client::Builder::new();
        if stalled {
            builder
                .initial_window_size(MIN_WINDOW)
                .initial_connection_window_size(MIN_WINDOW);
        }
        let (send, connection) =
            tokio::time::timeout(Duration::from_secs(2), builder.handshake::<_, Bytes>(tcp))
                .await
                .context("HTTP/2 handshake timed out")?
                .context("HTTP/2 handshake")?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { send, driver, addr })
    }

    /// Starts a gRPC call to `path` once the connection may open another
    /// stream. With `message`, the call sends it (length-prefixed) and
    /// ends its side; without, it sends headers only and keeps its side
    /// open for as long as the returned [`SendStream`] lives.
    pub async fn start(
        &self,
        path: &str,
        message: Option<&[u8]>,
    ) -> Result<(ResponseFuture, SendStream<Bytes>), h2::Error> {
        let mut send = self.send.clone().ready().await?;
        // Invariant: the scheme, the loopback address and the attack paths
        // (ASCII, no spaces or control characters) make a valid request.
        let request = Request::builder()
            .method("POST")
            .uri(format!("http://{}{path}", self.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("a valid request");
        let (response, mut stream) = send.send_request(request, false)?;
        if let Some(message) = message {
            // The server may answer (and close the stream) from the headers
            // alone, e.g. UNIMPLEMENTED for an unknown path, before the
            // body goes out; the response then says how the call ended.
            let _ = stream.send_data(grpc_frame(message), true);
        }
        Ok((response, stream))
    }
}

/// `message` with gRPC's 5-byte prefix (uncompressed, big-endian length).
pub fn grpc_frame(message: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    frame.put_slice(message);
    frame.freeze()
}

/// How a raw call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// With a gRPC status (in trailers, or a trailers-only response).
    Status(Code),
    /// The server reset the stream.
    Reset(Reason),
    /// The connection went away (GOAWAY, or the socket closed).
    ConnectionGone(String),
    /// Anything else (a malformed answer).
    Other(String),
}

impl End {
    /// A short key for tallies: `status:DeadlineExceeded`,
    /// `reset:REFUSED_STREAM`, `connection-gone:...`.
    pub fn key(&self) -> String {
        match self {
            End::Status(code) => format!("status:{code:?}"),
            End::Reset(reason) => format!("reset:{reason:?}"),
            End::ConnectionGone(why) => format!("connection-gone:{why}"),
            End::Other(why) => format!("other:{why}"),
        }
    }

    /// Whether this end is the server turning the call away (a refused
    /// stream, or RESOURCE_EXHAUSTED, UNAVAILABLE or INVALID_ARGUMENT)
    /// rather than ending a call it had taken on.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            End::Reset(Reason::REFUSED_STREAM)
                | End::Status(Code::ResourceExhausted | Code::Unavailable | Code::InvalidArgument)
        )
    }
}

/// What an h2 error says about how a call ended.
pub fn classify(e: &h2::Error) -> End {
    if e.is_go_away() {
        return End::ConnectionGone(format!(
            "GOAWAY {:?}",
            e.reason().unwrap_or(Reason::NO_ERROR)
        ));
    }
    if e.is_io() {
        return End::ConnectionGone("socket closed".into());
    }
    match e.reason() {
        Some(reason) if e.is_reset() && e.is_remote() => End::Reset(reason),
        Some(reason) => End::ConnectionGone(format!("{reason:?}")),
        None => End::Other(e.to_string()),
    }
}

fn status_of(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
}

/// Waits for the call to end and says how, with the body bytes received.
/// With `release`, received data is acknowledged (a reading client);
/// without, it is taken from h2's buffer but never released, so the server
/// sees a client that stopped reading.
pub async fn finish(response: ResponseFuture, release: bool) -> (End, u64) {
    let response = match response.await {
        Ok(r) => r,
        Err(e) => return (classify(&e), 0),
    };
    if let Some(code) = status_of(response.headers()) {
        return (End::Status(code), 0);
    }
    let mut body = response.into_body();
    let mut bytes = 0u64;
    while let Some(chunk) = body.data().await {
        match chunk {
            Ok(chunk) => {
                bytes += chunk.len() as u64;
                if release {
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
            }
            Err(e) => return (classify(&e), bytes),
        }
    }
    match body.trailers().await {
        Ok(Some(trailers)) => match status_of(&trailers) {
            Some(code) => (End::Status(code), bytes),
            None => (End::Other("trailers without grpc-status".into()), bytes),
        },
        Ok(None) => (End::Other("no trailers".into()), bytes),
        Err(e) => (classify(&e), bytes),
    }
}

/// Fetches `GET /metrics` over plain HTTP/1.1 (loopback), returning the
/// HTTP status code and the body.
pub async fn scrape(addr: SocketAddr) -> Result<(u16, String)> {
    let fetch = async {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut raw = Vec::new();
        // The server closes after its answer; 64 MiB is far beyond any
        // scrape and bounds what a broken server could make us hold.
        (&mut tcp).take(64 << 20).read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .context("scraping /metrics timed out")??;
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("no HTTP header in the /metrics answer");
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_grpc_prefix() {
        let f = grpc_frame(b"abc");
        assert_eq!(&f[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn refusals_are_told_apart_from_ends() {
        assert!(End::Reset(Reason::REFUSED_STREAM).is_refusal());
        assert!(End::Status(Code::ResourceExhausted).is_refusal());
        assert!(!End::Status(Code::DeadlineExceeded).is_refusal());
        assert!(!End::Reset(Reason::CANCEL).is_refusal());
        assert_eq!(
            End::Status(Code::DeadlineExceeded).key(),
            "status:DeadlineExceeded"
        );
    }
}
