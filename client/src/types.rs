//! Typed values the client returns besides the registry's own domain types
//! ([`portolan_registry::Record`], [`portolan_registry::LookupResult`]):
//! registry information, watch events, batch items, scan filters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use portolan::pb;
use portolan_registry::diff::KeyedRecord;
use portolan_registry::{Protocol, RecordKey, RecordState};

use crate::Error;

/// How a [`crate::Client::watch`] stream carries changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchMode {
    /// Full records (snapshots and deltas with content), for replicas.
    Full,
    /// Keys only (snapshots mean "forget everything"), for caches.
    Invalidate,
}

impl WatchMode {
    pub(crate) fn to_pb(self) -> pb::WatchMode {
        match self {
            Self::Full => pb::WatchMode::Full,
            Self::Invalidate => pb::WatchMode::Invalidate,
        }
    }
}

/// One message of a watch stream, decoded. A change may span several
/// messages (parts); apply it when `last` is true.
///
/// # Example
/// ```
/// use portolan_client::{WatchEvent, WatchEventKind};
///
/// fn describe(event: &WatchEvent) -> String {
///     match &event.kind {
///         WatchEventKind::Heartbeat => format!("heartbeat at {}", event.version),
///         WatchEventKind::Snapshot { records, last, .. } => {
///             format!("snapshot part ({} records, last={last})", records.len())
///         }
///         WatchEventKind::Delta { invalidated, .. } => {
///             format!("delta {} -> {}: {} keys", event.from_version, event.version, invalidated.len())
///         }
///         _ => "something newer".to_string(),
///     }
/// }
/// let e = WatchEvent { from_version: 3, version: 3, from_state_id: 9, state_id: 9, kind: WatchEventKind::Heartbeat };
/// assert_eq!(describe(&e), "heartbeat at 3");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// The version the receiver must hold to apply this event (0 for a
    /// snapshot; equal to `version` for a heartbeat).
    pub from_version: u64,
    /// The version the receiver holds after applying it.
    pub version: u64,
    /// The state (content id) the receiver must hold to apply this event
    /// (0 for a snapshot; equal to `state_id` for a heartbeat).
    pub from_state_id: u64,
    /// The state the receiver holds after applying it.
    pub state_id: u64,
    /// What the event carries.
    pub kind: WatchEventKind,
}

/// The payload of a [`WatchEvent`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WatchEventKind {
    /// A part of a snapshot: the whole registry at `version` (FULL mode), or
    /// "forget everything" (INVALIDATE mode, no records).
    Snapshot {
        /// This part's records (FULL mode only).
        records: Vec<KeyedRecord>,
        /// True on the last part.
        last: bool,
        /// How many records the whole snapshot has.
        total_records: u64,
    },
    /// A part of a delta from `from_version` to `version`.
    Delta {
        /// FULL mode: records added or changed, with their new content.
        upserted: Vec<KeyedRecord>,
        /// FULL mode: keys of removed records.
        removed: Vec<RecordKey>,
        /// INVALIDATE mode: keys of every record added, changed or removed.
        invalidated: Vec<RecordKey>,
        /// INVALIDATE mode (last part): the folded names and aliases whose
        /// lookups may answer differently, aliases included (a key names
        /// only its record's primary name).
        invalidated_names: Vec<String>,
        /// True on the last part.
        last: bool,
    },
    /// Liveness; `version` is the server's current version.
    Heartbeat,
}

impl WatchEvent {
    pub(crate) fn from_pb(event: pb::WatchResponse) -> Result<Self, Error> {
        use pb::watch_response::Event;
        let kind = match event.event {
            Some(Event::Snapshot(s)) => WatchEventKind::Snapshot {
                records: s
                    .records
                    .iter()
                    .map(portolan::convert::keyed_record_from_pb)
                    .collect::<Result<_, _>>()?,
                last: s.last,
                total_records: s.total_records,
            },
            Some(Event::Delta(d)) => {
                let (upserted, removed) = portolan::convert::delta_from_pb(&d)?;
                let invalidated = d
                    .invalidated
                    .iter()
                    .map(portolan::convert::key_from_pb)
                    .collect::<Result<_, _>>()?;
                WatchEventKind::Delta {
                    upserted,
                    removed,
                    invalidated,
                    invalidated_names: d.invalidated_names,
                    last: d.last,
                }
            }
            Some(Event::Heartbeat(_)) => WatchEventKind::Heartbeat,
            None => return Err(Error::protocol("watch event without a payload")),
        };
        Ok(Self {
            from_version: event.from_version,
            version: event.version,
            from_state_id: event.from_state_id,
            state_id: event.state_id,
            kind,
        })
    }
}

/// One query of a [`crate::Client::batch_lookup`] stream.
///
/// # Example
/// ```
/// use portolan_client::BatchQuery;
/// use portolan_registry::Protocol;
///
/// let q = BatchQuery::port("a", 443).with_protocol(Protocol::Tcp);
/// assert_eq!(q.id, "a");
/// let q = BatchQuery::name("b", "https");
/// assert!(q.protocol.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchQuery {
    /// Chosen by the caller, echoed in the answer (at most 128 bytes).
    pub id: String,
    /// What to look up.
    pub target: LookupTarget,
    /// `None` = any protocol.
    pub protocol: Option<Protocol>,
}

/// A port or a service name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LookupTarget {
    /// A port number.
    Port(u16),
    /// A service name (case-insensitive).
    Name(String),
}

impl BatchQuery {
    /// A port query for any protocol.
    pub fn port(id: impl Into<String>, port: u16) -> Self {
        Self {
            id: id.into(),
            target: LookupTarget::Port(port),
            protocol: None,
        }
    }

    /// A name query for any protocol.
    pub fn name(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            target: LookupTarget::Name(name.into()),
            protocol: None,
        }
    }

    /// Restricts the query to one protocol.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }
}

/// One answer of a batch lookup stream.
///
/// # Example
/// ```
/// use portolan_client::{BatchItem, Error};
///
/// let item = BatchItem { id: "x".into(), result: Err(Error::NotFound { message: "none".into(), stale: false, state_id: 0 }) };
/// assert!(item.result.is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    /// The query's id.
    pub id: String,
    /// The records, or the per-item error (including [`Error::NotFound`]).
    pub result: Result<portolan_registry::LookupResult, Error>,
}

/// Filters for [`crate::Client::list_records`] and [`crate::Client::search`].
///
/// # Example
/// ```
/// use portolan_client::ScanFilter;
/// use portolan_registry::{Protocol, RecordState};
///
/// let f = ScanFilter { protocol: Some(Protocol::Tcp), port_min: Some(1), port_max: Some(1023),
///                      states: vec![RecordState::Assigned], layers: vec![] };
/// assert_eq!(f.port_max, Some(1023));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanFilter {
    /// `None` = any protocol.
    pub protocol: Option<Protocol>,
    /// Lowest port (inclusive).
    pub port_min: Option<u16>,
    /// Highest port (inclusive).
    pub port_max: Option<u16>,
    /// Only these states; empty = all.
    pub states: Vec<RecordState>,
    /// Only these layers (a server's `--data NAME=FILE` names); empty = all.
    pub layers: Vec<String>,
}

impl ScanFilter {
    /// The same filter as the registry crate's [`portolan_registry::Filter`]
    /// (for offline scans).
    pub fn to_registry_filter(&self) -> portolan_registry::Filter {
        portolan_registry::Filter {
            protocol: self.protocol.clone(),
            port_min: self.port_min,
            port_max: self.port_max,
            states: self.states.clone(),
            layers: self.layers.clone(),
        }
    }
}

/// How the server's last reload went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReloadOutcome {
    /// Not reported.
    Unspecified,
    /// Loaded at start-up; no reload attempted since.
    Initial,
    /// A new registry was applied.
    Applied,
    /// The file was unchanged.
    Unchanged,
    /// The file was rejected; the previous registry keeps serving.
    Failed,
}

impl ReloadOutcome {
    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Initial => "initial",
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Failed => "failed",
        }
    }
}

/// What a server is serving ([`crate::Client::registry_info`]).
///
/// # Example
/// ```
/// use portolan_client::RegistryInfo;
///
/// let info = RegistryInfo::default();
/// assert_eq!(info.version, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistryInfo {
    /// Current version (this server's own sequence).
    pub version: u64,
    /// The identity of the served content: equal on every replica serving
    /// the same records.
    pub state_id: u64,
    /// SHA-256 of the source bytes, hex.
    pub content_hash: String,
    /// File path or `embedded`.
    pub source_path: String,
    /// `iana-csv`, `services+gzip`, ...
    pub source_format: String,
    /// Number of records.
    pub record_count: u64,
    /// Counts by state name.
    pub records_by_state: BTreeMap<String, u64>,
    /// Counts by protocol name (`none` for rows without one).
    pub records_by_protocol: BTreeMap<String, u64>,
    /// The registry's own "last updated" date; empty when none.
    pub registry_updated: String,
    /// When the serving registry was loaded.
    pub loaded_at: Option<SystemTime>,
    /// How the last reload attempt ended.
    pub last_reload_outcome: Option<ReloadOutcome>,
    /// The error of the last failed reload; empty otherwise.
    pub last_reload_error: String,
    /// When the last reload was attempted.
    pub last_reload_at: Option<SystemTime>,
    /// Parser diagnostics count.
    pub diagnostic_count: u64,
    /// Each source (layer) of the registry, highest priority first; one
    /// unnamed layer for a single-source server; empty for a local
    /// snapshot.
    pub layers: Vec<LayerInfo>,
    /// The mesh hints the server's DescribePort answers from; `None` for a
    /// local snapshot (or a server without DescribePort).
    pub mesh_hints: Option<MeshHintsInfo>,
}

/// The mesh hints a server serves, as GetRegistryInfo reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MeshHintsInfo {
    /// The `--mesh-hints` file path, or `embedded`.
    pub source: String,
    /// How many hints are served.
    pub entry_count: u64,
    /// SHA-256 of the served hints' bytes, hex.
    pub content_hash: String,
    /// When the served hints were loaded.
    pub loaded_at: Option<SystemTime>,
    /// How their last reload ended.
    pub last_reload_outcome: Option<ReloadOutcome>,
    /// The error of their last failed reload; empty otherwise.
    pub last_reload_error: String,
    /// When their last reload was attempted.
    pub last_reload_at: Option<SystemTime>,
}

/// One source (layer) of a server's registry, as GetRegistryInfo lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayerInfo {
    /// The layer's name (empty for the one unnamed layer).
    pub name: String,
    /// Its priority, 0 the highest.
    pub rank: u32,
    /// File path or `embedded`.
    pub source_path: String,
    /// `iana-csv`, `services+gzip`, ...
    pub source_format: String,
    /// SHA-256 of the file as last loaded, hex.
    pub content_hash: String,
    /// Records it contributes.
    pub record_count: u64,
    /// The file's own "last updated" date; empty when none.
    pub registry_updated: String,
    /// When its serving records were loaded.
    pub loaded_at: Option<SystemTime>,
    /// How its last reload ended.
    pub last_reload_outcome: Option<ReloadOutcome>,
    /// The error of its last failed reload; empty otherwise.
    pub last_reload_error: String,
    /// When its last reload was attempted.
    pub last_reload_at: Option<SystemTime>,
    /// Parser diagnostics count.
    pub diagnostic_count: u64,
}

fn reload_outcome(value: i32) -> Option<ReloadOutcome> {
    match pb::ReloadOutcome::try_from(value) {
        Ok(pb::ReloadOutcome::Unspecified) | Err(_) => None,
        Ok(pb::ReloadOutcome::Initial) => Some(ReloadOutcome::Initial),
        Ok(pb::ReloadOutcome::Applied) => Some(ReloadOutcome::Applied),
        Ok(pb::ReloadOutcome::Unchanged) => Some(ReloadOutcome::Unchanged),
        Ok(pb::ReloadOutcome::Failed) => Some(ReloadOutcome::Failed),
    }
}

fn timestamp(ts: Option<prost_types::Timestamp>) -> Option<SystemTime> {
    let ts = ts?;
    let secs = u64::try_from(ts.seconds).ok()?;
    let nanos = u32::try_from(ts.nanos).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

impl RegistryInfo {
    /// What a local registry snapshot (an offline index, a replica's copy)
    /// says about itself, described as a server would; no reload fields.
    pub fn of_snapshot(snapshot: &portolan_registry::Snapshot) -> Self {
        Self::from_pb(portolan::convert::snapshot_info_to_pb(snapshot))
    }

    pub(crate) fn from_pb(info: pb::GetRegistryInfoResponse) -> Self {
        let outcome = reload_outcome(info.last_reload_outcome);
        let layers = info
            .layers
            .into_iter()
            .map(|l| LayerInfo {
                name: l.name,
                rank: l.rank,
                source_path: l.source_path,
                source_format: l.source_format,
                content_hash: l.content_hash,
                record_count: l.record_count,
                registry_updated: l.registry_updated,
                loaded_at: timestamp(l.loaded_at),
                last_reload_outcome: reload_outcome(l.last_reload_outcome),
                last_reload_error: l.last_reload_error,
                last_reload_at: timestamp(l.last_reload_at),
                diagnostic_count: l.diagnostic_count,
            })
            .collect();
        Self {
            version: info.version,
            state_id: info.state_id,
            content_hash: info.content_hash,
            source_path: info.source_path,
            source_format: info.source_format,
            record_count: info.record_count,
            records_by_state: info.records_by_state.into_iter().collect(),
            records_by_protocol: info.records_by_protocol.into_iter().collect(),
            registry_updated: info.registry_updated,
            loaded_at: timestamp(info.loaded_at),
            last_reload_outcome: outcome,
            last_reload_error: info.last_reload_error,
            last_reload_at: timestamp(info.last_reload_at),
            diagnostic_count: info.diagnostic_count,
            layers,
            mesh_hints: info.mesh_hints.map(|h| MeshHintsInfo {
                source: h.source,
                entry_count: h.entry_count,
                content_hash: h.content_hash,
                loaded_at: timestamp(h.loaded_at),
                last_reload_outcome: reload_outcome(h.last_reload_outcome),
                last_reload_error: h.last_reload_error,
                last_reload_at: timestamp(h.last_reload_at),
            }),
        }
    }
}

/// A lookup answer shared between cache and callers.
pub type SharedLookup = Arc<portolan_registry::LookupResult>;

/// The wire protocol value for a request's protocol
/// ([`portolan::convert::query_protocol_to_pb`]); `Other` cannot be sent.
pub(crate) fn request_protocol(protocol: Option<&Protocol>) -> Result<i32, Error> {
    portolan::convert::query_protocol_to_pb(protocol, "protocol")
        .map(|value| value as i32)
        .map_err(|e| Error::InvalidArgument {
            message: e.to_string(),
        })
}

pub(crate) fn state_to_pb(state: RecordState) -> i32 {
    portolan::convert::state_to_pb(state) as i32
}
