//! [`ReplicaClient`]: a full local copy of the registry kept up to date by
//! a `Watch` stream in FULL mode, so every lookup is local and keeps
//! working while the server is down.
//!
//! # Protocol handling
//! The stream is driven by the shared driver of `crate::follow` (reconnects,
//! heartbeat timeout, resyncs, progress); this module says what an event
//! does to the local index:
//! * Snapshot parts are collected until `last`, then installed with
//!   [`Index::replace_keyed`] at the snapshot's version.
//! * Delta parts are collected until `last`, then applied with
//!   [`Index::apply_delta`] (the driver has checked that the delta's
//!   `from_state_id` is the local content id; otherwise it reopens the
//!   stream with the local content id, so the server sends what is
//!   missing).
//! * After each install the local content id ([`ContentId`], computed by
//!   the index from the records themselves) must equal the event's
//!   `state_id`; otherwise the stream is reopened from the local content,
//!   which the server does not know, so it sends a snapshot. The replica
//!   therefore ends with exactly the content of the server it follows, even
//!   when it moves to another replica or the server restarts on another
//!   file with the same version numbers.
//! * A heartbeat at the local content from a server that numbers it
//!   differently (another replica) renumbers the local version.
//! * Records carry their [`portolan_registry::Record::position`], so local
//!   lookups order answers exactly as the server does.
//! * Installs and deltas run on tokio's blocking pool (a diff and apply
//!   of the whole registry is milliseconds of CPU), awaited in order.
//! * Version 0 means "not from the server" (the embedded registry or a
//!   file given at start-up); the first connection then brings a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portolan_registry::diff::KeyedRecord;
use portolan_registry::index::keyed_records;
use portolan_registry::{
    ContentId, Index, LookupResult, Protocol, RecordKey, Registry, Snapshot, SourceInfo,
};

use crate::follow::{Driver, DriverConfig, Follower, Held};
use crate::types::{WatchEvent, WatchEventKind, WatchMode};
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
            heartbeat_timeout: portolan::WATCH_SILENCE_LIMIT,
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
    /// The local content id: equal to the `state_id` of every server that
    /// serves the same records.
    pub state_id: u64,
    /// Records held.
    pub records: u64,
    /// Snapshots installed.
    pub snapshots_applied: u64,
    /// Deltas applied.
    pub deltas_applied: u64,
    /// Times the stream was opened.
    pub connects: u64,
    /// Deltas or heartbeats that did not follow the local state (each
    /// caused a resync).
    pub resyncs: u64,
    /// Whether the stream is connected and caught up.
    pub live: bool,
}

/// The replica's side of the stream: the index and what was applied.
#[derive(Debug)]
struct Replica {
    index: Arc<Index>,
    /// The server's address, as the source of installed snapshots.
    source: SourceInfo,
    snapshots: AtomicU64,
    deltas: AtomicU64,
    /// Parts of a snapshot or delta received before its last part.
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    snapshot: Vec<KeyedRecord>,
    upserts: Vec<KeyedRecord>,
    removed: Vec<RecordKey>,
}

/// A full local replica of a server's registry. Lookups are synchronous
/// and local; they keep answering (from the last version received) while
/// the server is down. Cheap to clone; the background task stops when the
/// last clone is dropped.
///
/// # Example
/// ```no_run
/// use portolan_client::{embedded, Client, Protocol, ReplicaClient, ReplicaConfig};
///
/// # async fn f() -> Result<(), portolan_client::Error> {
/// let client = Client::connect("http://127.0.0.1:50051").await?;
/// // Answer at once from the full registry compiled in, and catch up: a
/// // server serving the same edition costs a heartbeat, another one a
/// // snapshot or delta.
/// let replica = ReplicaClient::start(client, embedded::registry(), ReplicaConfig::default());
/// replica.wait_live(std::time::Duration::from_secs(5)).await;
/// let answer = replica.lookup_port(443, Some(&Protocol::Tcp));
/// println!("{} records at version {}", answer.records.len(), answer.version);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ReplicaClient {
    replica: Arc<Replica>,
    driver: Arc<Driver>,
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
        let replica = Arc::new(Replica {
            index,
            source: SourceInfo {
                path: client.endpoint().to_string(),
                ..SourceInfo::default()
            },
            snapshots: AtomicU64::new(0),
            deltas: AtomicU64::new(0),
            pending: Mutex::new(Pending::default()),
        });
        let config = DriverConfig {
            heartbeat_timeout: config.heartbeat_timeout,
            reconnect: config.reconnect,
        };
        let driver = Driver::start(Arc::clone(&replica), client, config);
        Self {
            replica,
            driver: Arc::new(driver),
        }
    }

    /// Every record covering `port` for `protocol` (`None` = any), local.
    pub fn lookup_port(&self, port: u16, protocol: Option<&Protocol>) -> LookupResult {
        self.replica
            .index
            .lookup_port(port, protocol)
            .into_records()
    }

    /// Every record named `name` (case-insensitive) for `protocol`, local.
    pub fn lookup_name(&self, name: &str, protocol: Option<&Protocol>) -> LookupResult {
        self.replica
            .index
            .lookup_name(name, protocol)
            .into_records()
    }

    /// The current record set, for scans (list, search, export).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.replica.index.snapshot()
    }

    /// The local version (0 = not from the server).
    pub fn version(&self) -> u64 {
        self.replica.index.version()
    }

    /// The underlying index.
    pub fn index(&self) -> &Arc<Index> {
        &self.replica.index
    }

    /// Whether the stream is connected and caught up.
    pub fn is_live(&self) -> bool {
        self.driver.progress().live
    }

    /// Counters.
    pub fn stats(&self) -> ReplicaStats {
        let progress = self.driver.progress();
        let (version, content) = self.replica.index.stamp();
        ReplicaStats {
            version,
            state_id: content.0,
            records: self.replica.index.snapshot().len() as u64,
            snapshots_applied: self.replica.snapshots.load(Ordering::Relaxed),
            deltas_applied: self.replica.deltas.load(Ordering::Relaxed),
            connects: progress.connects,
            resyncs: progress.resyncs,
            live: progress.live,
        }
    }

    /// Waits until the stream is connected and the replica holds the
    /// server's state, at most `timeout`; returns whether it happened.
    pub async fn wait_live(&self, timeout: Duration) -> bool {
        self.driver.wait_live(timeout).await
    }

    /// Waits until the local version is at least `version` and the stream
    /// is live, at most `timeout`; returns whether it happened.
    pub async fn wait_for_version(&self, version: u64, timeout: Duration) -> bool {
        self.driver.wait_for_version(version, timeout).await
    }

    /// Waits until the replica holds the state `state_id` (a content id, as
    /// a server reports it) and the stream is live, at most `timeout`;
    /// returns whether it happened.
    pub async fn wait_for_state(&self, state_id: u64, timeout: Duration) -> bool {
        self.driver.wait_for_state(state_id, timeout).await
    }
}

impl Follower for Replica {
    const MODE: WatchMode = WatchMode::Full;

    fn held(&self) -> Held {
        let (version, content) = self.index.stamp();
        Held {
            version,
            state_id: content.0,
        }
    }

    async fn apply(&self, event: WatchEvent) -> Result<bool, String> {
        let version = event.version;
        let expected = ContentId(event.state_id);
        match event.kind {
            WatchEventKind::Snapshot { records, last, .. } => {
                let keyed = {
                    let mut pending = lock(&self.pending);
                    pending.snapshot.extend(records);
                    if !last {
                        return Ok(false);
                    }
                    std::mem::take(&mut pending.snapshot)
                };
                let source = self.source.clone();
                off_runtime(&self.index, move |index| {
                    index.replace_keyed(keyed, source, version)
                })
                .await
                .map_err(|e| format!("snapshot rejected: {e}"))?;
                self.snapshots.fetch_add(1, Ordering::Relaxed);
            }
            WatchEventKind::Delta {
                upserted,
                removed,
                last,
                ..
            } => {
                let (upserts, removed) = {
                    let mut pending = lock(&self.pending);
                    pending.upserts.extend(upserted);
                    pending.removed.extend(removed);
                    if !last {
                        return Ok(false);
                    }
                    (
                        std::mem::take(&mut pending.upserts),
                        std::mem::take(&mut pending.removed),
                    )
                };
                off_runtime(&self.index, move |index| {
                    index.apply_delta(upserts, &removed, version)
                })
                .await
                .map_err(|e| format!("delta rejected: {e}"))?;
                self.deltas.fetch_add(1, Ordering::Relaxed);
            }
            WatchEventKind::Heartbeat => {
                if self.index.version() != version {
                    off_runtime(&self.index, move |index| {
                        index.apply_delta(Vec::new(), &[], version)
                    })
                    .await
                    .map_err(|e| format!("renumbering rejected: {e}"))?;
                }
                return Ok(true);
            }
        }
        let (_, content) = self.index.stamp();
        if content != expected {
            // Never seen with real files (the real-files test reaches the
            // server's state for all seven): worth a warning if it happens.
            tracing::warn!(local = %content, server = %expected, "replica content differs from the server's state; resyncing");
            return Err(format!(
                "the local content {content} differs from the server's state {expected}: resync"
            ));
        }
        Ok(true)
    }

    fn set_live(&self, live: bool) {
        if !live {
            // A part received before the stream broke is never completed.
            *lock(&self.pending) = Pending::default();
        }
    }
}

fn lock(pending: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    pending.lock().unwrap_or_else(|e| e.into_inner())
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
