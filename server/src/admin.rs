//! The admin HTTP listener (`--admin-listen`): `GET /metrics` (Prometheus
//! text), `GET /livez` (200 while the process answers) and `GET /readyz`
//! (200 when the registry service's gRPC health is SERVING, 503 while it
//! loads or drains). Routing is axum's; connections are hyper's HTTP/1.1.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (more wait in
//! the kernel's accept queue); a request head must arrive within
//! [`HEADER_READ_TIMEOUT`]; a connection lives at most
//! [`CONNECTION_LIFETIME`]. Requests have no body worth reading: every
//! route is a GET and nothing reads what a client sends after the head.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::metrics::Metrics;

/// Admin connections served at once.
pub const MAX_CONNECTIONS: usize = 32;

/// Longest wait for a request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest an admin connection stays open.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// What the routes read.
#[derive(Debug, Clone)]
struct Admin {
    metrics: Arc<Metrics>,
    health: Health,
}

/// The routes, for the listener and for tests.
fn router(metrics: Arc<Metrics>, health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found; try /metrics, /livez or /readyz\n",
            )
        })
        .with_state(Admin { metrics, health })
}

async fn metrics_text(State(admin): State<Admin>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.metrics.encode(),
    )
        .into_response()
}

async fn ready(State(admin): State<Admin>) -> (StatusCode, &'static str) {
    if admin.health.is_serving() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the registry is loading or the server is draining\n",
        )
    }
}

/// Serves the admin routes on `listener` until `stop`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Health,
    stop: CancellationToken,
) {
    let service = TowerToHyperService::new(router(metrics, health));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "admin listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = service.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_LIFETIME, connection).await {
                Ok(Err(e)) => tracing::debug!(error = %e, "admin connection failed"),
                Err(_) => tracing::debug!("admin connection closed at its lifetime"),
                Ok(Ok(())) => {}
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    use super::*;

    async fn start(health: Health) -> (SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            Arc::new(Metrics::new()),
            health,
            stop.clone(),
        ));
        (addr, stop)
    }

    /// The status line and body of `GET path`.
    async fn get(addr: SocketAddr, path: &str) -> (String, String) {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        let status = head.lines().next().unwrap_or_default().to_string();
        (status, body.to_string())
    }

    #[tokio::test]
    async fn readyz_follows_the_health_of_the_registry_service() {
        let health = Health::start().await;
        let (addr, stop) = start(health.clone()).await;
        assert_eq!(get(addr, "/livez").await.0, "HTTP/1.1 200 OK");
        let (status, body) = get(addr, "/readyz").await;
        assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
        assert!(body.contains("loading"), "{body}");
        health.set_serving(true).await;
        assert_eq!(
            get(addr, "/readyz").await,
            ("HTTP/1.1 200 OK".into(), "ready\n".into())
        );
        health.set_serving(false).await;
        assert_eq!(
            get(addr, "/readyz").await.0,
            "HTTP/1.1 503 Service Unavailable"
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn metrics_carry_the_build_and_process_series_and_other_paths_are_404() {
        let (addr, stop) = start(Health::start().await).await;
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        let build = format!(
            "portolan_build_info{{version=\"{}\",embedded_edition=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            portolan_registry::embedded::EDITION
        );
        assert!(body.contains(&build), "{build} missing");
        let value = |name: &str| -> f64 {
            body.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{name} missing"))
                .trim()
                .parse()
                .expect("a number")
        };
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_threads") >= 1.0);
        // Counted in clock ticks: a young test process may not have one.
        assert!(value("process_cpu_seconds_total") >= 0.0);
        assert!(value("process_start_time_seconds") > 1.7e9);
        let (status, body) = get(addr, "/nope").await;
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        assert!(body.contains("/readyz"), "{body}");
        stop.cancel();
    }

    /// Clients that connect and say nothing hold a slot only until the
    /// header timeout: with more of them than slots, a real request is
    /// still answered, after at most about one timeout.
    #[tokio::test]
    async fn silent_connections_are_closed_and_do_not_lock_out_probes() {
        let (addr, stop) = start(Health::start().await).await;
        let mut silent = Vec::new();
        for _ in 0..MAX_CONNECTIONS + 8 {
            silent.push(TcpStream::connect(addr).await.expect("connect"));
        }
        let answer = tokio::time::timeout(HEADER_READ_TIMEOUT * 3, get(addr, "/livez"))
            .await
            .expect("answered once the silent connections time out");
        assert_eq!(answer.0, "HTTP/1.1 200 OK");
        // The first silent connection was closed by the server.
        let mut buf = Vec::new();
        let read = tokio::time::timeout(HEADER_READ_TIMEOUT * 2, silent[0].read_to_end(&mut buf))
            .await
            .expect("closed by the server");
        assert!(read.is_ok() || buf.is_empty());
        stop.cancel();
    }
}
