//! Prometheus metrics: the go-grpc-prometheus series, recorded by a tower
//! layer ([`GrpcMetricsLayer`]) around every gRPC call, the registry's own
//! series, and the process and build series; [`crate::admin`] serves them
//! on `/metrics`.
//!
//! gRPC series (labels `grpc_type`, `grpc_service`, `grpc_method`, plus
//! `grpc_code` on completion). Label values never come from the request:
//! the methods of the served services (`portolan.v1.PortRegistryService`,
//! `grpc.health.v1.Health`, both reflection versions) are read from their
//! descriptor sets at startup, each has its own series, and every other
//! request path is counted under one series whose service and method are
//! `unknown`:
//! * `grpc_server_started_total`: calls started;
//! * `grpc_server_handled_total`: calls finished, by status code (for
//!   streams: when the stream ends; `Canceled` when the client went away);
//! * `grpc_server_handling_seconds`: time to completion (histogram);
//! * `grpc_server_msg_sent_total`: response messages sent (counted from the
//!   gRPC length-prefixed framing of the response body).
//!
//! Registry series: `portolan_registry_version`,
//! `portolan_registry_state{state_id}` (always 1; the label is the served
//! content id, equal on replicas serving the same records),
//! `portolan_registry_records{state}`, `portolan_reload_total{outcome}`,
//! `portolan_data_file_checks_total{trigger}` (every read of the data file
//! to see whether it changed, the silent polls included),
//! `portolan_last_successful_reload_timestamp_seconds`,
//! `portolan_seconds_since_last_successful_reload` (computed at scrape time)
//! `portolan_watch_streams_active`, `portolan_scans_active`,
//! `portolan_layer_records{layer}` and `portolan_layer_reload_failing{layer}`
//! (1 while that layer's last reload failed), `portolan_mesh_hints_entries`
//! (the served mesh hints) and `portolan_mesh_hints_reload_failing` (1
//! while the last reload of the `--mesh-hints` file failed).
//!
//! Process and build series: `portolan_build_info{version,embedded_edition}`
//! (always 1) and the standard `process_*` series (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//! `process_open_fds`, `process_max_fds`, `process_threads`,
//! `process_start_time_seconds`), from the kubert-prometheus-process
//! collector.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use portolan_registry::Snapshot;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use prost::Message as _;
use tonic::Code;
use tonic::codegen::Bytes;

/// Labels of a call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `unary`, `client_stream`, `server_stream` or `bidi_stream`.
    pub grpc_type: &'static str,
    /// Fully qualified service, e.g. `portolan.v1.PortRegistryService`.
    pub grpc_service: String,
    /// Method, e.g. `LookupPort`.
    pub grpc_method: String,
}

/// Labels of a finished call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandledLabels {
    /// `unary`, `client_stream`, `server_stream` or `bidi_stream`.
    pub grpc_type: &'static str,
    /// Fully qualified service.
    pub grpc_service: String,
    /// Method.
    pub grpc_method: String,
    /// Status code name as go-grpc-prometheus writes it (`OK`,
    /// `InvalidArgument`, ...).
    pub grpc_code: &'static str,
}

/// Label of a per-layer series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LayerLabel {
    /// The layer's name (empty for the one unnamed layer).
    pub layer: String,
}

/// Labels of `portolan_build_info`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The server's package version.
    pub version: &'static str,
    /// The edition of the registry compiled into the binary.
    pub embedded_edition: &'static str,
}

/// Label of a per-state gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `assigned`, `reserved`, `unassigned` or `removed`.
    pub state: &'static str,
}

/// Label of the registry state gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateIdLabel {
    /// The served content id, 16 hex digits.
    pub state_id: String,
}

/// Label of the data-file check counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabel {
    /// What prompted the check: `poll`, `file event`, `SIGHUP`...
    pub trigger: &'static str,
}

/// Label of the reload counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `applied`, `unchanged` or `failed`.
    pub outcome: &'static str,
}

type HistogramFamily = Family<CallLabels, Histogram, fn() -> Histogram>;

fn handling_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    started: Family<CallLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    handling_seconds: HistogramFamily,
    msg_sent: Family<CallLabels, Counter>,
    registry_version: Gauge,
    registry_state: Family<StateIdLabel, Gauge>,
    registry_records: Family<StateLabel, Gauge>,
    reloads: Family<OutcomeLabel, Counter>,
    checks: Family<TriggerLabel, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    since_last_success: Gauge<f64, AtomicU64>,
    last_success_at: Mutex<Instant>,
    watch_streams: Gauge,
    scans: Gauge,
    layer_records: Family<LayerLabel, Gauge>,
    layer_failing: Family<LayerLabel, Gauge>,
    mesh_hints_entries: Gauge,
    mesh_hints_failing: Gauge,
    /// Every method the server serves, by request path, with its series
    /// (created on first call). Built once from the descriptor sets of the
    /// served services and never grown: a request path is never turned
    /// into a label value.
    methods: HashMap<Box<str>, MethodEntry>,
    /// The series shared by every other request path.
    unknown: Arc<MethodMetrics>,
}

/// The label value of `grpc_service` and `grpc_method` for every request
/// path that names no served method: one series, however many distinct
/// paths clients send.
pub const UNKNOWN_LABEL: &str = "unknown";

/// One served method: its labels, and its series once it was first called
/// (so only methods that were called are exported).
#[derive(Debug)]
struct MethodEntry {
    labels: CallLabels,
    series: OnceLock<Arc<MethodMetrics>>,
}

/// The encoded descriptor sets of every service the server serves
/// (`portolan.v1`, `grpc.health.v1`, `grpc.reflection.v1` and
/// `grpc.reflection.v1alpha`): the methods that get their own series.
const SERVED_DESCRIPTOR_SETS: [&[u8]; 4] = [
    portolan::FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// Labels of every method in `descriptor_sets`, by request path
/// (`/package.Service/Method`); the call type comes from the method's
/// streaming flags.
fn served_methods(descriptor_sets: &[&[u8]]) -> Vec<(String, CallLabels)> {
    let mut out = Vec::new();
    for encoded in descriptor_sets {
        // Compiled-in descriptor sets; tests check that each decodes.
        let Ok(set) = prost_types::FileDescriptorSet::decode(*encoded) else {
            continue;
        };
        for file in &set.file {
            let package = file.package();
            for service in &file.service {
                let service_name = if package.is_empty() {
                    service.name().to_string()
                } else {
                    format!("{package}.{}", service.name())
                };
                for method in &service.method {
                    let grpc_type = match (method.client_streaming(), method.server_streaming()) {
                        (false, false) => "unary",
                        (true, false) => "client_stream",
                        (false, true) => "server_stream",
                        (true, true) => "bidi_stream",
                    };
                    out.push((
                        format!("/{service_name}/{}", method.name()),
                        CallLabels {
                            grpc_type,
                            grpc_service: service_name.clone(),
                            grpc_method: method.name().to_string(),
                        },
                    ));
                }
            }
        }
    }
    out
}

/// The series of one method, resolved once.
#[derive(Debug)]
struct MethodMetrics {
    labels: CallLabels,
    started: Counter,
    handling_seconds: Histogram,
    msg_sent: Counter,
    /// `grpc_server_handled_total` per status code, created on first use so
    /// that only codes that occurred are exported.
    handled: [std::sync::OnceLock<Counter>; 17],
}

impl MethodMetrics {
    fn new(
        labels: CallLabels,
        started: &Family<CallLabels, Counter>,
        handling_seconds: &HistogramFamily,
        msg_sent: &Family<CallLabels, Counter>,
    ) -> Self {
        Self {
            started: started.get_or_create(&labels).clone(),
            handling_seconds: handling_seconds.get_or_create(&labels).clone(),
            msg_sent: msg_sent.get_or_create(&labels).clone(),
            handled: Default::default(),
            labels,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let started = Family::<CallLabels, Counter>::default();
        let handled = Family::<HandledLabels, Counter>::default();
        let handling_seconds: HistogramFamily = Family::new_with_constructor(handling_histogram);
        let msg_sent = Family::<CallLabels, Counter>::default();
        let registry_version = Gauge::default();
        let registry_state = Family::<StateIdLabel, Gauge>::default();
        let registry_records = Family::<StateLabel, Gauge>::default();
        let reloads = Family::<OutcomeLabel, Counter>::default();
        let checks = Family::<TriggerLabel, Counter>::default();
        let last_success = Gauge::<f64, AtomicU64>::default();
        let since_last_success = Gauge::<f64, AtomicU64>::default();
        let watch_streams = Gauge::default();
        let scans = Gauge::default();
        let unknown_labels = CallLabels {
            grpc_type: "unary",
            grpc_service: UNKNOWN_LABEL.to_string(),
            grpc_method: UNKNOWN_LABEL.to_string(),
        };
        let unknown = Arc::new(MethodMetrics::new(
            unknown_labels,
            &started,
            &handling_seconds,
            &msg_sent,
        ));
        let methods = served_methods(&SERVED_DESCRIPTOR_SETS)
            .into_iter()
            .map(|(path, labels)| {
                let entry = MethodEntry {
                    labels,
                    series: OnceLock::new(),
                };
                (path.into_boxed_str(), entry)
            })
            .collect();
        registry.register(
            "grpc_server_started",
            "Total number of RPCs started on the server.",
            started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
            handling_seconds.clone(),
        );
        registry.register(
            "grpc_server_msg_sent",
            "Total number of gRPC stream messages sent by the server.",
            msg_sent.clone(),
        );
        registry.register(
            "portolan_registry_version",
            "Version of the registry being served.",
            registry_version.clone(),
        );
        registry.register(
            "portolan_registry_state",
            "The content id (state_id) of the registry being served, as a label; always 1. \
             Replicas serving the same records show the same state_id.",
            registry_state.clone(),
        );
        registry.register(
            "portolan_registry_records",
            "Records in the registry being served, by state.",
            registry_records.clone(),
        );
        registry.register(
            "portolan_reload",
            "Reload attempts by outcome.",
            reloads.clone(),
        );
        registry.register(
            "portolan_data_file_checks",
            "Reads of the data file to see whether it changed, by what prompted them (a poll \
             that finds the same content is counted here and nowhere else).",
            checks.clone(),
        );
        registry.register(
            "portolan_last_successful_reload_timestamp_seconds",
            "Unix time of the last successful load of the registry.",
            last_success.clone(),
        );
        registry.register(
            "portolan_seconds_since_last_successful_reload",
            "Seconds since the last successful load of the registry.",
            since_last_success.clone(),
        );
        registry.register(
            "portolan_watch_streams_active",
            "Open Watch streams.",
            watch_streams.clone(),
        );
        registry.register(
            "portolan_scans_active",
            "Search and ListRecords streams still reading a registry edition (a scan whose \
             client stops reading ends at --stream-send-timeout).",
            scans.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                embedded_edition: portolan_registry::embedded::EDITION,
            })
            .set(1);
        registry.register(
            "portolan_build_info",
            "The server's version and the edition of its embedded registry, as labels; always 1.",
            build_info,
        );
        // The process_* series every Prometheus client library exposes
        // (resident memory, CPU seconds, open and max fds, threads, start
        // time), read from /proc at scrape time.
        if let Err(error) =
            kubert_prometheus_process::register(registry.sub_registry_with_prefix("process"))
        {
            tracing::warn!(%error, "process metrics are not available");
        }
        let layer_records = Family::<LayerLabel, Gauge>::default();
        registry.register(
            "portolan_layer_records",
            "Records each layer of the registry contributes (layer \"\" is the one unnamed layer).",
            layer_records.clone(),
        );
        let layer_failing = Family::<LayerLabel, Gauge>::default();
        registry.register(
            "portolan_layer_reload_failing",
            "1 while a layer's last reload failed (its last good records keep serving), else 0.",
            layer_failing.clone(),
        );
        let mesh_hints_entries = Gauge::default();
        registry.register(
            "portolan_mesh_hints_entries",
            "Entries of the mesh hints DescribePort answers from.",
            mesh_hints_entries.clone(),
        );
        let mesh_hints_failing = Gauge::default();
        registry.register(
            "portolan_mesh_hints_reload_failing",
            "1 while the last reload of the --mesh-hints file failed (the last good hints keep serving), else 0.",
            mesh_hints_failing.clone(),
        );
        Self {
            layer_records,
            layer_failing,
            mesh_hints_entries,
            mesh_hints_failing,
            registry,
            started,
            handled,
            handling_seconds,
            msg_sent,
            registry_version,
            registry_state,
            registry_records,
            reloads,
            checks,
            last_success,
            since_last_success,
            last_success_at: Mutex::new(Instant::now()),
            watch_streams,
            scans,
            methods,
            unknown,
        }
    }

    /// The series of the method at request `path`: its own for a served
    /// method, the one `unknown` series for any other path.
    fn method(&self, path: &str) -> Arc<MethodMetrics> {
        let Some(entry) = self.methods.get(path) else {
            return Arc::clone(&self.unknown);
        };
        Arc::clone(entry.series.get_or_init(|| {
            Arc::new(MethodMetrics::new(
                entry.labels.clone(),
                &self.started,
                &self.handling_seconds,
                &self.msg_sent,
            ))
        }))
    }

    fn handled(&self, method: &MethodMetrics, code: Code) -> Counter {
        let slot = &method.handled[code as usize % 17];
        slot.get_or_init(|| {
            let labels = HandledLabels {
                grpc_type: method.labels.grpc_type,
                grpc_service: method.labels.grpc_service.clone(),
                grpc_method: method.labels.grpc_method.clone(),
                grpc_code: code_name(code),
            };
            self.handled.get_or_create(&labels).clone()
        })
        .clone()
    }

    /// Records the registry now served (version, state and counts) as
    /// loaded now.
    pub fn registry_loaded(&self, snapshot: &Snapshot) {
        self.registry_version
            .set(i64::try_from(snapshot.version()).unwrap_or(i64::MAX));
        // One series: the state served now.
        self.registry_state.clear();
        self.registry_state
            .get_or_create(&StateIdLabel {
                state_id: snapshot.content_id().to_string(),
            })
            .set(1);
        self.layer_records.clear();
        for (layer, count) in snapshot.counts_by_layer() {
            self.layer_records
                .get_or_create(&LayerLabel { layer })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let counts = snapshot.counts_by_state();
        for state in portolan_registry::RecordState::ALL {
            let n = counts.get(&state).copied().unwrap_or(0);
            self.registry_records
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.mark_successful_load();
    }

    /// Records a successful load (applied or unchanged) at this moment.
    pub fn mark_successful_load(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        self.last_success.set(now.as_secs_f64());
        *self
            .last_success_at
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Records whether layer `layer`'s last reload succeeded.
    pub fn layer_reloaded(&self, layer: &str, ok: bool) {
        self.layer_failing
            .get_or_create(&LayerLabel {
                layer: layer.to_string(),
            })
            .set(i64::from(!ok));
    }

    /// Records the mesh hints served (`entries`, after a successful load)
    /// or a failed reload of their file (`None`).
    pub fn mesh_hints_loaded(&self, entries: Option<usize>) {
        match entries {
            Some(n) => {
                self.mesh_hints_entries
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
                self.mesh_hints_failing.set(0);
            }
            None => {
                self.mesh_hints_failing.set(1);
            }
        }
    }

    /// Counts a reload attempt (`applied`, `unchanged` or `failed`).
    pub fn reload(&self, outcome: &'static str) {
        self.reloads.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// Counts a read of the data file prompted by `trigger`.
    pub fn data_file_checked(&self, trigger: &'static str) {
        self.checks.get_or_create(&TriggerLabel { trigger }).inc();
    }

    /// Counts an open Watch stream until the returned guard is dropped.
    pub fn watch_stream_started(&self) -> Active {
        Active::new(&self.watch_streams)
    }

    /// Counts a running scan (Search or ListRecords) until the returned
    /// guard is dropped.
    pub fn scan_started(&self) -> Active {
        Active::new(&self.scans)
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let since = self
            .last_success_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        self.since_last_success.set(since.as_secs_f64());
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Keeps a gauge of open things (`portolan_watch_streams_active`,
/// `portolan_scans_active`) counting one while alive.
#[derive(Debug)]
pub struct Active(Gauge);

impl Active {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The name go-grpc-prometheus gives a status code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

fn header_code(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
}

/// A tower layer recording the gRPC series for every call.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer {
    metrics: Arc<Metrics>,
}

impl GrpcMetricsLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service [`GrpcMetricsLayer`] wraps around the gRPC routes.
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> tower::Service<http::Request<B>> for GrpcMetrics<S>
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
        let method = self.metrics.method(request.uri().path());
        method.started.inc();
        let call = CallRecord {
            metrics: Arc::clone(&self.metrics),
            method,
            started: Instant::now(),
            header_code: None,
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let mut call = call;
            call.header_code = header_code(response.headers());
            let (parts, body) = response.into_parts();
            let body = MeteredBody {
                inner: body,
                call: Some(call),
                frames: FrameCounter::default(),
            };
            Ok(http::Response::from_parts(
                parts,
                tonic::body::Body::new(body),
            ))
        })
    }
}

/// What is known about a call until it completes.
#[derive(Debug)]
struct CallRecord {
    metrics: Arc<Metrics>,
    method: Arc<MethodMetrics>,
    started: Instant,
    header_code: Option<Code>,
}

impl CallRecord {
    fn finish(self, code: Code) {
        self.metrics.handled(&self.method, code).inc();
        self.method
            .handling_seconds
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// Counts gRPC messages in a length-prefixed byte stream (1 flag byte and a
/// 4-byte big-endian length before each message).
#[derive(Debug, Default)]
pub struct FrameCounter {
    header: [u8; 5],
    header_len: usize,
    remaining: usize,
}

impl FrameCounter {
    /// Feeds response bytes; returns how many new messages began in them.
    pub fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut started = 0;
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len == 5 {
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]);
                self.remaining = len as usize;
                self.header_len = 0;
                started += 1;
            }
        }
        started
    }
}

/// A response body that counts messages and records the call's completion.
#[derive(Debug)]
struct MeteredBody {
    inner: tonic::body::Body,
    call: Option<CallRecord>,
    frames: FrameCounter,
}

impl MeteredBody {
    fn finish(&mut self, code: Option<Code>) {
        if let Some(call) = self.call.take() {
            let code = code.or(call.header_code).unwrap_or(Code::Unknown);
            call.finish(code);
        }
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let sent = this.frames.feed(data);
                    if sent > 0
                        && let Some(call) = &this.call
                    {
                        call.method.msg_sent.inc_by(sent);
                    }
                }
                if let Some(trailers) = frame.trailers_ref() {
                    let code = header_code(trailers);
                    this.finish(code);
                }
            }
            Poll::Ready(Some(Err(status))) => this.finish(Some(status.code())),
            Poll::Ready(None) => this.finish(None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            // A trailers-only response (an error returned by the handler)
            // ends here with its status in the headers; anything else
            // dropped before completion was cancelled by the client.
            let code = call.header_code.unwrap_or(Code::Cancelled);
            call.finish(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counter_handles_split_headers_and_payloads() {
        let mut counter = FrameCounter::default();
        let mut bytes = vec![0, 0, 0, 0, 3, b'a', b'b', b'c'];
        bytes.extend([0, 0, 0, 0, 0]);
        bytes.extend([0, 0, 0, 0, 2, b'x', b'y']);
        let total: u64 = bytes.chunks(3).map(|chunk| counter.feed(chunk)).sum();
        assert_eq!(total, 3);
    }

    /// Every served method has its own labels, its call type taken from
    /// the descriptors.
    #[test]
    fn served_methods_come_from_the_descriptor_sets() {
        let metrics = Metrics::new();
        for (path, grpc_type) in [
            ("/portolan.v1.PortRegistryService/LookupPort", "unary"),
            (
                "/portolan.v1.PortRegistryService/BatchLookup",
                "bidi_stream",
            ),
            ("/portolan.v1.PortRegistryService/Search", "server_stream"),
            (
                "/portolan.v1.PortRegistryService/ListRecords",
                "server_stream",
            ),
            ("/portolan.v1.PortRegistryService/Watch", "server_stream"),
            ("/portolan.v1.PortRegistryService/GetRegistryInfo", "unary"),
            ("/grpc.health.v1.Health/Check", "unary"),
            ("/grpc.health.v1.Health/Watch", "server_stream"),
            (
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "bidi_stream",
            ),
            (
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                "bidi_stream",
            ),
        ] {
            let method = metrics.method(path);
            assert_eq!(method.labels.grpc_type, grpc_type, "{path}");
            let (service, name) = path[1..].split_once('/').unwrap();
            assert_eq!(method.labels.grpc_service, service);
            assert_eq!(method.labels.grpc_method, name);
        }
        for encoded in SERVED_DESCRIPTOR_SETS {
            assert!(prost_types::FileDescriptorSet::decode(encoded).is_ok());
        }
    }

    /// Any other path, however many and however spelled, shares the one
    /// `unknown` series; served methods keep theirs.
    #[test]
    fn unknown_paths_share_one_series_and_never_become_labels() {
        let metrics = Metrics::new();
        for i in 0..1000 {
            let junk = metrics.method(&format!("/evil\"svc{i}/M\\{i}"));
            assert!(Arc::ptr_eq(&junk, &metrics.unknown));
        }
        let injected = metrics.method("/x\",grpc_code=\"OK/y");
        assert_eq!(injected.labels.grpc_service, UNKNOWN_LABEL);
        assert_eq!(injected.labels.grpc_method, UNKNOWN_LABEL);
        let lookup = metrics.method("/portolan.v1.PortRegistryService/LookupPort");
        assert_eq!(lookup.labels.grpc_method, "LookupPort");
        assert!(Arc::ptr_eq(
            &lookup,
            &metrics.method("/portolan.v1.PortRegistryService/LookupPort")
        ));
        // A served method's name under another service is not served.
        let wrong = metrics.method("/portolan.v1.Other/LookupPort");
        assert!(Arc::ptr_eq(&wrong, &metrics.unknown));
    }

    #[test]
    fn encoding_names_the_series() {
        let metrics = Metrics::new();
        metrics.reload("failed");
        metrics
            .method("/portolan.v1.PortRegistryService/LookupPort")
            .started
            .inc();
        let text = metrics.encode();
        assert!(
            text.contains("portolan_reload_total{outcome=\"failed\"} 1"),
            "{text}"
        );
        assert!(text.contains("grpc_server_started_total{grpc_type=\"unary\",grpc_service=\"portolan.v1.PortRegistryService\",grpc_method=\"LookupPort\"} 1"), "{text}");
        assert!(text.contains("portolan_seconds_since_last_successful_reload"));
    }
}
