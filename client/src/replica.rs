//! [`ReplicaClient`]: a full local copy of the registry kept up to date by
//! a `Watch` stream in FULL mode, so every lookup is local and keeps
//! working while the server is down.
//!
//! # Protocol handling
//! * Snapshot parts are collected until `last`, then installed with
//!   [`Index::replace_keyed`] at the snapshot's version.
//! * Delta parts are collected until `last`, then applied with
//!   [`Index::apply_delta`], only when the delta's `from_version` equals the
//!   local version; otherwise the stream is dropped and reopened with the
//!   local version, so the server sends what is missing.
//! * A heartbeat whose version differs from the local one means a change
//!   was missed: resync the same way.
//! * When the stream breaks (error, end, or no event within the heartbeat
//!   timeout) the task reconnects with jittered backoff, sending its
//!   version: the server answers with a delta when it still holds the
//!   changes, a snapshot otherwise.
//! * Installs and deltas run on tokio's blocking pool (a diff and apply
//!   of the whole registry is milliseconds of CPU), awaited in order.
//! * Version 0 means "not from the server" (the embedded registry or a
//!   file given at start-up); the first connection then brings a snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use portolan_registry::diff::KeyedRecord;
use portolan_registry::index::keyed_records;
use portolan_registry::{Index, LookupResult, Protocol, RecordKey, Registry, Snapshot, SourceInfo};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::types::{WatchEventKind, WatchMode};
use crate::{Client, RetryPolicy};

/// Settings of a [`ReplicaClient`].
///
/// # Example
/// ```
/// use std::time::Duration;
/// use portolan_client::ReplicaConfig;
///
/// let c = ReplicaConfig { heartbeat_timeout: Duration::from_secs(45), ..ReplicaConfig::default() };
/// assert_eq!(c.heartbeat_timeout.as_secs(), 45);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaConfig {
    /// The stream is treated as broken when no event arrives for this long.
    pub heartbeat_timeout: Duration,
    /// Backoff between reconnection attempts (`max_attempts` unused).
    pub reconnect: RetryPolicy,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self {
            heartbeat_timeout: Duration::from_secs(30),
            reconnect: RetryPolicy {
                max_attempts: u32::MAX,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(10),
            },
        }
    }
}

/// Counters of a [`ReplicaClient`].
///
/// # Example
/// ```
/// use portolan_client::ReplicaStats;
///
/// let s = ReplicaStats::default();
/// assert_eq!(s.snapshots_applied + s.deltas_applied, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaStats {
    /// The local version (0 = not from the server).
    pub version: u64,
    /// Records held.
    pub records: u64,
    /// Snapshots installed.
    pub snapshots_applied: u64,
    /// Deltas applied.
    pub deltas_applied: u64,
    /// Times the stream was opened.
    pub connects: u64,
    /// Deltas or heartbeats that did not follow the local version (each
    /// caused a resync).
    pub resyncs: u64,
    /// Whether the stream is connected and caught up.
    pub live: bool,
}

#[derive(Debug, Default)]
struct Counters {
    snapshots: AtomicU64,
    deltas: AtomicU64,
    connects: AtomicU64,
    resyncs: AtomicU64,
    live: AtomicBool,
}

#[derive(Debug)]
struct Shared {
    index: Arc<Index>,
    counters: Counters,
}

/// A full local replica of a server's registry. Lookups are synchronous
/// and local; they keep answering (from the last version received) while
/// the server is down. Cheap to clone; the background task stops when the
/// last clone is dropped.
///
/// # Example
/// ```no_run
/// use portolan_client::{Client, ReplicaClient, ReplicaConfig};
/// use portolan_registry::Protocol;
///
/// # async fn f() -> Result<(), portolan_client::Error> {
/// let client = Client::connect("http://127.0.0.1:50051").await?;
/// // Start from the embedded registry (version 0) and catch up.
/// let replica = ReplicaClient::start(client, portolan_registry::embedded::registry(), ReplicaConfig::default());
/// replica.wait_for_version(1, std::time::Duration::from_secs(5)).await;
/// let answer = replica.lookup_port(443, Some(&Protocol::Tcp));
/// println!("{} records at version {}", answer.records.len(), answer.version);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ReplicaClient {
    shared: Arc<Shared>,
    _task: Arc<DropGuard>,
}

impl ReplicaClient {
    /// Starts a replica serving `initial` (version 0, "not from the server")
    /// until the server's snapshot arrives. Must be called in a tokio
    /// runtime.
    pub fn start(client: Client, initial: Registry, config: ReplicaConfig) -> Self {
        let keyed = keyed_records(initial.records);
        let index = Index::from_keyed(keyed, initial.source, 0);
        Self::start_with_index(client, Arc::new(index), config)
    }

    /// Starts a replica over an existing index, resuming from its version.
    pub fn start_with_index(client: Client, index: Arc<Index>, config: ReplicaConfig) -> Self {
        let shared = Arc::new(Shared {
            index,
            counters: Counters::default(),
        });
        let token = CancellationToken::new();
        tokio::spawn(replica_task(
            Arc::clone(&shared),
            client,
            config,
            token.clone(),
        ));
        Self {
            shared,
            _task: Arc::new(token.drop_guard()),
        }
    }

    /// Every record covering `port` for `protocol` (`None` = any), local.
    pub fn lookup_port(&self, port: u16, protocol: Option<&Protocol>) -> LookupResult {
        self.shared.index.lookup_port(port, protocol).into_records()
    }

    /// Every record named `name` (case-insensitive) for `protocol`, local.
    pub fn lookup_name(&self, name: &str, protocol: Option<&Protocol>) -> LookupResult {
        self.shared.index.lookup_name(name, protocol).into_records()
    }

    /// The current record set, for scans (list, search, export).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.index.snapshot()
    }

    /// The local version (0 = not from the server).
    pub fn version(&self) -> u64 {
        self.shared.index.version()
    }

    /// The underlying index.
    pub fn index(&self) -> &Arc<Index> {
        &self.shared.index
    }

    /// Whether the stream is connected and caught up.
    pub fn is_live(&self) -> bool {
        self.shared.counters.live.load(Ordering::Acquire)
    }

    /// Counters.
    pub fn stats(&self) -> ReplicaStats {
        let c = &self.shared.counters;
        ReplicaStats {
            version: self.version(),
            records: self.shared.index.snapshot().len() as u64,
            snapshots_applied: c.snapshots.load(Ordering::Relaxed),
            deltas_applied: c.deltas.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
            resyncs: c.resyncs.load(Ordering::Relaxed),
            live: c.live.load(Ordering::Acquire),
        }
    }

    /// Waits until the local version is at least `version` and the stream
    /// is live, at most `timeout`; returns whether it happened.
    pub async fn wait_for_version(&self, version: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.version() >= version && self.is_live() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn replica_task(
    shared: Arc<Shared>,
    client: Client,
    config: ReplicaConfig,
    cancel: CancellationToken,
) {
    let mut failures = 0u32;
    let source = SourceInfo {
        path: client.endpoint().to_string(),
        ..SourceInfo::default()
    };
    loop {
        let why = tokio::select! {
            () = cancel.cancelled() => return,
            why = session(&shared, &client, &config, &source, &mut failures) => why,
        };
        shared.counters.live.store(false, Ordering::Release);
        tracing::debug!(%why, version = shared.index.version(), "replica watch stream ended; reconnecting");
        let delay = config.reconnect.backoff(failures);
        failures = failures.saturating_add(1);
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One stream's life; returns why it ended.
async fn session(
    shared: &Shared,
    client: &Client,
    config: &ReplicaConfig,
    source: &SourceInfo,
    failures: &mut u32,
) -> String {
    let index = &shared.index;
    let mut stream = match client.watch(index.version(), WatchMode::Full).await {
        Ok(s) => s,
        Err(e) => return e.to_string(),
    };
    shared.counters.connects.fetch_add(1, Ordering::Relaxed);
    let mut snapshot_parts: Vec<KeyedRecord> = Vec::new();
    let mut delta_upserts: Vec<KeyedRecord> = Vec::new();
    let mut delta_removed: Vec<RecordKey> = Vec::new();
    loop {
        let event = match tokio::time::timeout(config.heartbeat_timeout, stream.next()).await {
            Err(_) => return "no event within the heartbeat timeout".into(),
            Ok(None) => return "stream ended by the server".into(),
            Ok(Some(Err(e))) => return e.to_string(),
            Ok(Some(Ok(event))) => event,
        };
        match event.kind {
            WatchEventKind::Heartbeat => {
                if event.version != index.version() {
                    shared.counters.resyncs.fetch_add(1, Ordering::Relaxed);
                    return format!(
                        "heartbeat at {} while holding {}: resync",
                        event.version,
                        index.version()
                    );
                }
                shared.counters.live.store(true, Ordering::Release);
            }
            WatchEventKind::Snapshot { records, last, .. } => {
                snapshot_parts.extend(records);
                if last {
                    let keyed = std::mem::take(&mut snapshot_parts);
                    let (source, version) = (source.clone(), event.version);
                    let install = off_runtime(index, move |index| {
                        index.replace_keyed(keyed, source, version)
                    });
                    if let Err(e) = install.await {
                        return format!("snapshot rejected: {e}");
                    }
                    shared.counters.snapshots.fetch_add(1, Ordering::Relaxed);
                    shared.counters.live.store(true, Ordering::Release);
                }
            }
            WatchEventKind::Delta {
                upserted,
                removed,
                last,
                ..
            } => {
                if event.from_version != index.version() {
                    shared.counters.resyncs.fetch_add(1, Ordering::Relaxed);
                    return format!(
                        "delta from {} while holding {}: resync",
                        event.from_version,
                        index.version()
                    );
                }
                delta_upserts.extend(upserted);
                delta_removed.extend(removed);
                if last {
                    let upserts = std::mem::take(&mut delta_upserts);
                    let removed = std::mem::take(&mut delta_removed);
                    let version = event.version;
                    let apply = off_runtime(index, move |index| {
                        index.apply_delta(upserts, &removed, version)
                    });
                    if let Err(e) = apply.await {
                        return format!("delta rejected: {e}");
                    }
                    shared.counters.deltas.fetch_add(1, Ordering::Relaxed);
                    shared.counters.live.store(true, Ordering::Release);
                }
            }
        }
        *failures = 0;
    }
}

/// Runs an install or a delta on the blocking pool: a diff and apply over
/// the whole registry takes milliseconds of CPU, which must not hold one of
/// the application's async workers. The stream waits for it, so changes
/// are still applied in order.
async fn off_runtime<T, E>(
    index: &Arc<Index>,
    apply: impl FnOnce(&Index) -> Result<T, E> + Send + 'static,
) -> Result<T, String>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let index = Arc::clone(index);
    match tokio::task::spawn_blocking(move || apply(&index)).await {
        Ok(applied) => applied.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the apply task failed: {e}")),
    }
}
