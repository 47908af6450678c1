//! [`PortRegistryService`]: the `portolan.v1.PortRegistryService` handlers.
//! Each handler validates its request ([`crate::validate`]), reads the
//! registry state, and maps failures through [`crate::status`]. Replies
//! that carry records carry the server's kept encoding of each record
//! ([`crate::encodings`]) as [`portolan::reply`]'s types, which is why the
//! service implements [`portolan::server`]'s trait.
//!
//! Server streams (BatchLookup, Search, ListRecords, Watch) are produced by
//! spawned tasks that stop when the client goes away or when shutdown
//! begins (they then end the stream with `UNAVAILABLE`). Search and
//! ListRecords are [`crate::scan`]s, bounded in time as well.
//!
//! DescribePort reads the current snapshot and the current mesh hints
//! ([`MeshHintsState`]) and answers with `portolan_registry::mesh::describe`,
//! the function the CLI uses offline. LintPorts runs `portolan lint`'s
//! rules (`portolan_lint::rules::lint`) on the request's port specs, the
//! live index and the current hints, on a blocking thread, at most
//! [`MAX_CONCURRENT_LINTS`] at once and [`MAX_LINT_FINDINGS`] findings an
//! answer.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::Stream;
use portolan::server::port_registry_service_server as generated;
use portolan::{pb, reply};
use portolan_registry::{ContentId, Protocol};
use prost::bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::limits::PerConnection;
use crate::metrics::Metrics;
use crate::scan::{self, ScanSettings, ScanStream};
use crate::state::{MeshHintsState, RegistryState};
use crate::status::ServiceError;
use crate::validate::{self, Lookup};
use crate::watch::{self, WatchSettings};

/// How many BatchLookup answers may wait for a slow receiver. The item
/// reader only pauses when this is full, so a client that pipelines its
/// items and reads its answers a little slower than it sends them keeps
/// being read (an answer is a few hundred bytes, so this is at most a few
/// hundred KiB per stream). While it pauses, HTTP/2 flow control
/// (`STREAM_RECEIVE_WINDOW`) stops the client.
const BATCH_OUTBOX: usize = 256;

/// How long a stream task waits to deliver its final error status.
const FINAL_STATUS_WAIT: Duration = Duration::from_secs(1);

/// What the handlers share.
#[derive(Debug)]
pub struct Shared {
    /// The registry state, set once the first registry is loaded.
    pub registry: OnceLock<Arc<RegistryState>>,
    /// The mesh hints DescribePort answers from.
    pub hints: Arc<MeshHintsState>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Free Watch slots (RESOURCE_EXHAUSTED when none is left).
    pub watch_slots: Arc<Semaphore>,
    /// The number of Watch slots in all.
    pub max_watch_streams: usize,
    /// Watch slots per connection.
    pub watch_slots_per_connection: Arc<PerConnection>,
    /// How long a server stream waits for its client to take a message.
    pub stream_send_timeout: Duration,
    /// Watch timing.
    pub watch: WatchSettings,
    /// Search and ListRecords time bounds.
    pub scan: ScanSettings,
    /// Cancelled when shutdown begins; every stream task watches it.
    pub shutdown: CancellationToken,
    /// LintPorts computations allowed at once ([`MAX_CONCURRENT_LINTS`]).
    pub lint_permits: Arc<Semaphore>,
}

/// LintPorts computations running at once; further calls wait for a
/// permit (bounded by the request timeout), so at most this many lints'
/// findings are held while computing.
pub const MAX_CONCURRENT_LINTS: usize = 4;

/// Most findings one LintPorts answer carries; the rest are counted in
/// `omitted_findings`. A finding repeats a few request strings of at most
/// 253 bytes, so an answer is at most about 150 KiB (the worst request the
/// bounds allow, tested in `tests/server_lint.rs`, gets 144 KiB): the
/// memory of an answer its client is slow to read.
pub const MAX_LINT_FINDINGS: usize = 256;

/// The `PortRegistryService` gRPC service.
#[derive(Debug, Clone)]
pub struct PortRegistryService {
    shared: Arc<Shared>,
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl PortRegistryService {
    /// A service over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The registry state, borrowed: a unary call needs no reference count
    /// of its own (an atomic that every call on every core would share).
    fn registry(&self) -> Result<&Arc<RegistryState>, ServiceError> {
        self.shared
            .registry
            .get()
            .ok_or_else(|| ServiceError::Unavailable("the registry is still loading".into()))
    }

    fn refuse_during_shutdown(&self) -> Result<(), ServiceError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(ServiceError::Unavailable("server is shutting down".into()));
        }
        Ok(())
    }
}

fn describe(protocol: Option<&Protocol>) -> String {
    protocol.map(|p| format!("/{p}")).unwrap_or_default()
}

/// The NOT_FOUND of a lookup that matched nothing.
fn not_found(query: &Lookup, state_id: ContentId) -> ServiceError {
    let message = match query {
        Lookup::Port { port, protocol } => {
            format!("no record for port {port}{}", describe(protocol.as_ref()))
        }
        Lookup::Name { name, protocol } => {
            format!("no record named {name:?}{}", describe(protocol.as_ref()))
        }
    };
    ServiceError::NotFound { message, state_id }
}

/// Runs one validated lookup: its version and the kept encodings of the
/// records it found, in canonical order; NOT_FOUND when nothing matches.
/// The `records` of LookupPort, LookupName and BatchLookup replies.
pub fn lookup_records(
    state: &RegistryState,
    query: &Lookup,
) -> Result<LookupRecords, ServiceError> {
    let index = state.index();
    let found = match query {
        Lookup::Port { port, protocol } => index.lookup_port(*port, protocol.as_ref()),
        Lookup::Name { name, protocol } => index.lookup_name(name, protocol.as_ref()),
    };
    if found.entries.is_empty() {
        return Err(not_found(query, found.content_id));
    }
    let encodings = state.encodings();
    let records = found
        .entries
        .iter()
        .map(|entry| encodings.get(&entry.key, &entry.record))
        .collect();
    Ok(LookupRecords {
        version: found.version,
        state_id: found.content_id.0,
        records,
    })
}

/// A point lookup's encoded records with the version and state they were
/// read from.
#[derive(Debug)]
pub struct LookupRecords {
    /// The registry version.
    pub version: u64,
    /// The registry state (content id).
    pub state_id: u64,
    /// The encoded records, canonical first.
    pub records: Vec<Bytes>,
}

async fn end_with_shutdown<T>(tx: &mpsc::Sender<Result<T, Status>>) {
    let status = Status::unavailable("server is shutting down");
    let _ = tokio::time::timeout(FINAL_STATUS_WAIT, tx.send(Err(status))).await;
}

#[tonic::async_trait]
impl generated::PortRegistryService for PortRegistryService {
    async fn lookup_port(
        &self,
        request: Request<pb::LookupPortRequest>,
    ) -> Result<Response<reply::LookupPortResponse>, Status> {
        let query = validate::lookup_port(request.get_ref())?;
        let found = lookup_records(self.registry()?, &query)?;
        Ok(Response::new(reply::LookupPortResponse {
            records: found.records,
            version: found.version,
            state_id: found.state_id,
        }))
    }

    async fn lookup_name(
        &self,
        request: Request<pb::LookupNameRequest>,
    ) -> Result<Response<reply::LookupNameResponse>, Status> {
        let query = validate::lookup_name(request.get_ref())?;
        let found = lookup_records(self.registry()?, &query)?;
        Ok(Response::new(reply::LookupNameResponse {
            records: found.records,
            version: found.version,
            state_id: found.state_id,
        }))
    }

    type BatchLookupStream = ResponseStream<reply::BatchLookupResponse>;

    async fn batch_lookup(
        &self,
        request: Request<Streaming<pb::BatchLookupRequest>>,
    ) -> Result<Response<Self::BatchLookupStream>, Status> {
        let state = Arc::clone(self.registry()?);
        let mut inbound = request.into_inner();
        let shutdown = self.shared.shutdown.clone();
        let send_timeout = self.shared.stream_send_timeout;
        let (tx, rx) = mpsc::channel(BATCH_OUTBOX);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => {
                        end_with_shutdown(&tx).await;
                        return;
                    }
                    next = inbound.next() => next,
                };
                let response = match next {
                    None => return,
                    Some(Err(status)) => {
                        // The request stream itself is broken (e.g. an
                        // oversized message): report it and stop.
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                    Some(Ok(item)) => answer_batch_item(&state, item),
                };
                // Usually immediate: the outbox only fills when the client
                // stops reading its answers; then reading items pauses too.
                match tokio::time::timeout(send_timeout, tx.send(Ok(response))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        tracing::debug!(
                            ?send_timeout,
                            "BatchLookup client stopped reading; ending the stream"
                        );
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type SearchStream = ScanStream<reply::SearchResponse>;

    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<Self::SearchStream>, Status> {
        let query = validate::search(request.get_ref())?;
        let state = self.registry()?;
        self.refuse_during_shutdown()?;
        Ok(Response::new(scan::search(
            state.snapshot(),
            Arc::clone(state.encodings()),
            query,
            self.shared.scan,
            self.shared.shutdown.clone(),
            self.shared.metrics.scan_started(),
        )))
    }

    type ListRecordsStream = ScanStream<reply::ListRecordsResponse>;

    async fn list_records(
        &self,
        request: Request<pb::ListRecordsRequest>,
    ) -> Result<Response<Self::ListRecordsStream>, Status> {
        let filter = validate::list_records(request.get_ref())?;
        let state = self.registry()?;
        self.refuse_during_shutdown()?;
        Ok(Response::new(scan::list(
            state.snapshot(),
            Arc::clone(state.encodings()),
            filter,
            self.shared.scan,
            self.shared.shutdown.clone(),
            self.shared.metrics.scan_started(),
        )))
    }

    type WatchStream = watch::WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let params = validate::watch(request.get_ref())?;
        let state = Arc::clone(self.registry()?);
        self.refuse_during_shutdown()?;
        // Per connection first, so a client at its own limit does not
        // take a global slot even for a moment.
        let per_connection = self.shared.watch_slots_per_connection.as_ref();
        let connection_slot = match request.remote_addr() {
            Some(addr) => Some(
                self.shared
                    .watch_slots_per_connection
                    .try_acquire(addr)
                    .ok_or_else(|| {
                        ServiceError::ResourceExhausted(format!(
                            "too many open Watch streams on this connection (limit {} per connection)",
                            per_connection.max()
                        ))
                    })?,
            ),
            None => None,
        };
        let permit = Arc::clone(&self.shared.watch_slots)
            .try_acquire_owned()
            .map_err(|_| {
                ServiceError::ResourceExhausted(format!(
                    "too many open Watch streams (limit {})",
                    self.shared.max_watch_streams
                ))
            })?;
        Ok(Response::new(watch::spawn(
            state,
            params,
            self.shared.watch,
            self.shared.shutdown.clone(),
            watch::Slots {
                global: permit,
                connection: connection_slot,
            },
            Arc::clone(&self.shared.metrics),
        )))
    }

    async fn get_registry_info(
        &self,
        _request: Request<pb::GetRegistryInfoRequest>,
    ) -> Result<Response<pb::GetRegistryInfoResponse>, Status> {
        let mut info = self.registry()?.info();
        info.mesh_hints = Some(self.shared.hints.info());
        Ok(Response::new(info))
    }

    async fn lint_ports(
        &self,
        request: Request<pb::LintPortsRequest>,
    ) -> Result<Response<pb::LintPortsResponse>, Status> {
        let (manifest, options) = validate::lint_ports(request.get_ref())?;
        let registry = Arc::clone(self.registry()?);
        let hints = self.shared.hints.current();
        // At most MAX_CONCURRENT_LINTS run at once (the others wait, within
        // the request timeout), each off the async workers.
        let permit = Arc::clone(&self.shared.lint_permits)
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Unavailable("server is shutting down".into()))?;
        let findings = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            portolan_lint::rules::lint(&manifest, registry.index(), &hints, &options)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("the lint task failed: {e}")))?;
        let omitted = findings.len().saturating_sub(MAX_LINT_FINDINGS);
        Ok(Response::new(pb::LintPortsResponse {
            findings: findings
                .iter()
                .take(MAX_LINT_FINDINGS)
                .map(portolan::convert::finding_to_pb)
                .collect(),
            omitted_findings: u32::try_from(omitted).unwrap_or(u32::MAX),
        }))
    }

    async fn describe_port(
        &self,
        request: Request<pb::DescribePortRequest>,
    ) -> Result<Response<pb::DescribePortResponse>, Status> {
        let (port, protocol) = validate::describe_port(request.get_ref())?;
        let found = self
            .registry()?
            .index()
            .lookup_port(port, protocol.as_ref())
            .into_records();
        let hints = self.shared.hints.current();
        let Some(description) =
            portolan_registry::mesh::describe(port, protocol.as_ref(), found.records, &hints)
        else {
            return Err(ServiceError::NotFound {
                message: format!(
                    "no record and no mesh hint for port {port}{}",
                    describe(protocol.as_ref())
                ),
                state_id: found.content_id,
            }
            .into());
        };
        Ok(Response::new(portolan::convert::description_to_pb(
            &description,
            found.version,
            found.content_id.0,
        )))
    }
}

/// The answer to one BatchLookup item: its records, or its error.
pub fn answer_batch_item(
    state: &RegistryState,
    item: pb::BatchLookupRequest,
) -> reply::BatchLookupResponse {
    let found = validate::batch_item(&item).and_then(|query| lookup_records(state, &query));
    match found {
        Ok(found) => reply::BatchLookupResponse {
            id: item.id,
            records: found.records,
            version: found.version,
            error: None,
            state_id: found.state_id,
        },
        Err(error) => {
            let (version, state_id) = state.index().stamp();
            reply::BatchLookupResponse {
                id: item.id,
                records: Vec::new(),
                version,
                error: Some(error.to_item_error()),
                state_id: state_id.0,
            }
        }
    }
}
