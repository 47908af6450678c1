//! The Portolan gRPC server: serves the IANA Service Name and Transport
//! Protocol Port Number Registry as `portolan.v1.PortRegistryService`, with
//! `grpc.health.v1` health, gRPC reflection (v1 and v1alpha), an admin HTTP
//! listener (Prometheus metrics, `/livez`, `/readyz`), an optional plaintext
//! health listener, hot reload of its data files and its mesh hints, and
//! graceful shutdown.
//!
//! The binary (`main.rs`) only parses flags, sets up logging, binds the
//! listener and calls [`run`] with a SIGTERM/SIGINT future; tests call
//! [`run`] (or [`run_with_listeners`]) with listeners bound to
//! `127.0.0.1:0` and a future of their own.
//!
//! # Layout
//! * [`config`]: flags ([`Args`]) and their validation into a [`Config`]
//!   (including loading the data file) before any socket is bound.
//! * [`service`]: the `PortRegistryService` handlers.
//! * [`scan`]: the Search and ListRecords streams and their bounds.
//! * [`validate`]: every request check, in one place.
//! * [`status`]: every error, and its mapping to `tonic::Status`.
//! * [`state`]: the shared registry state (index, record encodings, change
//!   history, broadcast to watchers, reload outcome).
//! * [`encodings`]: each record's encoding, made once per registry
//!   version and shared by every reply carrying it.
//! * [`watch`]: the Watch stream protocol.
//! * [`reload`]: watching, debouncing, polling and applying the data files
//!   and the `--mesh-hints` file.
//! * [`metrics`]: Prometheus series and the gRPC metrics tower layer.
//! * [`admin`]: the admin HTTP listener (`/metrics`, `/livez`, `/readyz`).
//! * [`mod@panic`]: the layer turning a handler panic into `INTERNAL`.
//! * [`health`]: the health service and the names it reports.
//! * [`limits`]: bounds on calls in flight and on connections' age, and
//!   per-connection counts.
//!
//! # Lifecycle
//! 1. Health is NOT_SERVING; the server starts accepting.
//! 2. The index is built from the configured registry; health turns
//!    SERVING; the reloader starts (when serving a file).
//! 3. When the shutdown future completes: health turns NOT_SERVING, the
//!    accept loop stops, server streams (Watch, lists, batches) are ended by
//!    the server, in-flight unary calls finish; the drain is bounded by
//!    `--shutdown-grace`, after which [`run`] returns anyway.

pub mod admin;
pub mod config;
pub mod encodings;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod panic;
pub mod reload;
pub mod scan;
pub mod service;
pub mod state;
pub mod status;
#[cfg(test)]
mod test_registry;
pub mod validate;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use portolan::server::port_registry_service_server::PortRegistryServiceServer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

pub use config::{Args, Config, ConfigError, LogFormat};

use crate::metrics::{GrpcMetricsLayer, Metrics};
use crate::panic::CatchPanicLayer;
use crate::scan::ScanSettings;
use crate::service::{PortRegistryService, Shared};
use crate::state::{MeshHintsState, RegistryState};
use crate::watch::WatchSettings;

/// Largest request message accepted, in bytes. Every request of the
/// contract is far smaller; larger ones are refused by tonic with
/// OUT_OF_RANGE/RESOURCE_EXHAUSTED before any handler runs.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Calls (HTTP/2 streams) one connection may have open at once, advertised
/// in the server's HTTP/2 SETTINGS. Every open stream counts for its whole
/// life, long-lived Watch and BatchLookup streams included. Clients queue
/// further calls on their side, and h2 refuses a stream beyond it
/// (REFUSED_STREAM), so the server holds nothing for calls it is not
/// serving and spends nothing per call to count them.
///
/// 256 (grpc-go's servers default to 100): a sixteenth of
/// [`MAX_REGISTRY_CALLS`], so a client needs sixteen connections full of
/// calls that never send their body before the server sheds other
/// clients' calls (each of which then ends at `--request-timeout`).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;

/// `PortRegistryService` calls in flight (arrived, handler not yet returned) over
/// all connections; beyond it calls are refused at once with
/// RESOURCE_EXHAUSTED (see [`limits::RegistryCallLimitLayer`]). Health and
/// reflection are not counted. A call waiting for its request body costs
/// about 10 KiB (h2 stream, headers, decode buffer, timers), so 4,096 of
/// them stay near 40 MiB; a call with its body is answered in microseconds.
pub const MAX_REGISTRY_CALLS: usize = 4096;

/// The server's HTTP/2 receive window per stream (hyper's default: 1 MiB).
/// h2 closes a connection with ENHANCE_YOUR_CALM when the small DATA
/// frames it buffers unread cost more than half its connection window
/// (512 KiB with hyper's 1 MiB) at 256 bytes minus the payload each. A
/// BatchLookup that stops reading its items (its answers wait for the
/// client) lets the client send one stream window more: 16 KiB of items
/// of at least 8 bytes (a 5-byte gRPC prefix and the smallest query) is at
/// most 2,048 frames, about 500 KiB of that budget. Requests are at most
/// [`MAX_REQUEST_BYTES`], so a large one takes a few window updates.
pub const STREAM_RECEIVE_WINDOW: u32 = 16 * 1024;

/// HTTP/2 keepalive ping interval and timeout.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest a call on the plaintext health listener may take (a Check
/// answers at once; a Watch of health is ended here).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// The default first version: milliseconds since the Unix epoch, so a
/// restarted server's versions are higher than anything it served before.
fn startup_version() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .max(1)
}

/// The sockets a server serves on.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC: the registry service, health and reflection (TLS when
    /// configured).
    pub grpc: TcpListener,
    /// The admin HTTP listener (`/metrics`, `/livez`, `/readyz`).
    pub admin: Option<TcpListener>,
    /// Plaintext gRPC health only.
    pub health: Option<TcpListener>,
}

/// Runs the server on `listener` until `shutdown` completes, then drains
/// (bounded by `--shutdown-grace`). Binds `--admin-listen` and
/// `--health-listen` when given.
///
/// # Errors
/// When an address cannot be bound or the gRPC server fails.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    async fn bind(flag: &str, addr: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
        let Some(addr) = addr else { return Ok(None) };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind --{flag} {addr}: {e}"))?;
        Ok(Some(listener))
    }
    let listeners = Listeners {
        grpc: listener,
        admin: bind("admin-listen", config.args.admin_listen).await?,
        health: bind("health-listen", config.args.health_listen).await?,
    };
    run_with_listeners(config, listeners, shutdown).await
}

/// [`run`] with every listener bound by the caller (tests bind
/// `127.0.0.1:0` and read their addresses); `--admin-listen` and
/// `--health-listen` are ignored.
///
/// # Errors
/// When the gRPC server fails.
pub async fn run_with_listeners(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let reload_settings = config.reload_settings();
    let hints_settings = config.mesh_hints_settings();
    let Config {
        args,
        initial,
        layers: layer_sources,
        tls,
        mesh_hints,
    } = config;
    let stop = CancellationToken::new();
    let metrics = Arc::new(Metrics::new());
    let health = health::Health::start().await;

    // The admin and health listeners answer until this function returns,
    // so probes see NOT_SERVING while the gRPC listener drains.
    let side_listeners = CancellationToken::new();
    let _stop_side_listeners = side_listeners.clone().drop_guard();
    if let Some(admin_listener) = listeners.admin {
        if let Ok(addr) = admin_listener.local_addr() {
            tracing::info!(%addr, "serving /metrics, /livez and /readyz");
        }
        tokio::spawn(admin::serve(
            admin_listener,
            Arc::clone(&metrics),
            health.clone(),
            side_listeners.clone(),
        ));
    }
    if let Some(health_listener) = listeners.health {
        if let Ok(addr) = health_listener.local_addr() {
            tracing::info!(%addr, "serving plaintext grpc.health.v1");
        }
        let stop = side_listeners.clone();
        let health_server = Server::builder()
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
            .timeout(HEALTH_TIMEOUT)
            .add_service(health.service())
            .serve_with_incoming_shutdown(TcpIncoming::from(health_listener), async move {
                stop.cancelled().await;
            });
        tokio::spawn(async move {
            if let Err(e) = health_server.await {
                tracing::error!(error = %e, "the plaintext health listener failed");
            }
        });
    }

    metrics.mesh_hints_loaded(Some(mesh_hints.hints.len()));
    tracing::info!(
        source = %mesh_hints.source,
        entries = mesh_hints.hints.len(),
        hash = %mesh_hints.content_hash,
        "mesh hints loaded"
    );
    let hints = Arc::new(MeshHintsState::new(mesh_hints));
    let shared = Arc::new(Shared {
        lint_permits: Arc::new(Semaphore::new(service::MAX_CONCURRENT_LINTS)),
        registry: OnceLock::new(),
        hints: Arc::clone(&hints),
        metrics: Arc::clone(&metrics),
        watch_slots: Arc::new(Semaphore::new(args.max_watch_streams)),
        max_watch_streams: args.max_watch_streams,
        watch_slots_per_connection: limits::PerConnection::new(
            args.max_watch_streams_per_connection,
        ),
        watch: WatchSettings {
            heartbeat_interval: args.heartbeat_interval,
            max_stream_lifetime: args.max_stream_lifetime,
            send_timeout: args.stream_send_timeout,
        },
        scan: ScanSettings {
            send_timeout: args.stream_send_timeout,
            max_duration: args.max_scan_duration,
        },
        stream_send_timeout: args.stream_send_timeout,
        shutdown: stop.clone(),
    });
    let registry_service =
        PortRegistryServiceServer::new(PortRegistryService::new(Arc::clone(&shared)))
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip);
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(portolan::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(portolan::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        // GOAWAY at this age; the hard close after the grace is
        // `limits::AgedConnection`'s (tonic's own grace would skip the GOAWAY).
        .max_connection_age(args.max_stream_lifetime)
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .initial_stream_window_size(STREAM_RECEIVE_WINDOW)
        // Until the handler returns its response: for unary calls the
        // request body and the answer, for streams their first headers. A
        // call whose body never comes ends here (CANCELLED).
        .timeout(args.request_timeout);
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let layers = tower::ServiceBuilder::new()
        .layer(GrpcMetricsLayer::new(Arc::clone(&metrics)))
        .layer(CatchPanicLayer)
        .layer(limits::RegistryCallLimitLayer::new(MAX_REGISTRY_CALLS))
        .into_inner();
    let router = builder
        .layer(layers)
        .add_service(health.service())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(registry_service);

    let listener = listeners.grpc;
    let local_addr = listener.local_addr()?;
    let max_age = args
        .max_stream_lifetime
        .saturating_add(args.max_connection_age_grace);
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)))
        .map(move |accepted| accepted.map(|io| limits::AgedConnection::new(io, max_age)));
    let server_stop = stop.clone();
    let mut server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async move {
        server_stop.cancelled().await;
    }));
    tracing::info!(addr = %local_addr, "listening");

    // Build the index off the async threads, then report SERVING.
    let first_version = args.initial_version.unwrap_or_else(startup_version);
    let state = tokio::task::spawn_blocking(move || {
        let state = RegistryState::starting_at(initial, state::DEFAULT_HISTORY, first_version);
        Arc::new(if layer_sources.is_empty() {
            state
        } else {
            state.with_layers(layer_sources)
        })
    })
    .await?;
    let snapshot = state.snapshot();
    metrics.registry_loaded(&snapshot);
    for layer in state.layers() {
        metrics.layer_reloaded(&layer.name, true);
    }
    tracing::info!(
        version = snapshot.version(),
        state_id = %snapshot.content_id(),
        records = snapshot.len(),
        source = %snapshot.source().path,
        format = %snapshot.source().format_label(),
        "registry loaded"
    );
    drop(snapshot);
    // `set` fails only if already set, which nothing else does.
    let _ = shared.registry.set(Arc::clone(&state));
    let mut reloaders: Vec<_> = reload_settings
        .into_iter()
        .map(|settings| {
            reload::spawn(
                Arc::clone(&state),
                settings,
                Arc::clone(&metrics),
                stop.child_token(),
            )
        })
        .collect();
    if let Some(settings) = hints_settings {
        reloaders.push(reload::spawn_mesh_hints(
            hints,
            settings,
            Arc::clone(&metrics),
            stop.child_token(),
        ));
    }
    health.set_serving(true).await;

    tokio::pin!(shutdown);
    let early_exit = tokio::select! {
        () = &mut shutdown => None,
        result = &mut server => Some(result),
    };
    if let Some(result) = early_exit {
        stop.cancel();
        result??;
        anyhow::bail!("the gRPC server stopped unexpectedly");
    }

    tracing::info!(grace = ?args.shutdown_grace, "shutting down");
    health.set_serving(false).await;
    stop.cancel();
    for reloader in reloaders {
        reloader.abort();
    }
    match tokio::time::timeout(args.shutdown_grace, &mut server).await {
        Ok(result) => {
            result??;
            tracing::info!("drained; bye");
        }
        Err(_) => {
            server.abort();
            tracing::warn!(grace = ?args.shutdown_grace, "drain did not finish within the grace period; closing anyway");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_first_version_grows_with_time_across_restarts() {
        let first = startup_version();
        // 2020-01-01 in milliseconds: any real clock is past it.
        assert!(first > 1_577_836_800_000, "{first}");
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            startup_version() > first,
            "a later start gets a higher version"
        );
    }

    #[test]
    fn an_initial_version_of_zero_is_refused() {
        let mut args = Args::defaults();
        args.initial_version = Some(0);
        let err = Config::load(args).unwrap_err();
        assert!(err.to_string().starts_with("--initial-version:"), "{err}");
    }
}
