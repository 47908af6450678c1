//! [`RegistryState`]: what every handler shares once the registry is
//! loaded: the live [`Index`], the records' [`Encodings`], a bounded
//! history of applied [`Change`]s for Watch catch-up, the broadcast that
//! feeds Watch streams, the outcome of the last reload, and each layer's
//! source and reload status ([`LayerStatus`]); and [`MeshHintsState`],
//! the mesh hints DescribePort answers from (embedded, or a hot-reloaded
//! `--mesh-hints` file) with their source and reload status.
//!
//! Building the state and [`RegistryState::apply_layer`] are blocking work (a
//! diff, the index's maps, the encodings of what changed): callers run them
//! on the blocking pool, never on an async worker.
//!
//! # Ordering guarantee for watchers
//! [`RegistryState::apply_layer`] applies a registry, appends the change to the
//! history and broadcasts it while holding one lock;
//! [`RegistryState::watch_start`] subscribes to the broadcast and reads the
//! snapshot and history under the same lock. A watcher therefore sees every
//! change after the version it starts from exactly once: changes up to that
//! version are in its catch-up (or skipped), later ones arrive on the
//! broadcast.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use portolan::{pb, reply};
use portolan_registry::{
    ApplyError, Change, ContentId, Hints, Index, Registry, ReloadGuard, Snapshot, SourceInfo,
};
use sha2::{Digest as _, Sha256};
use tokio::sync::broadcast;

use crate::encodings::Encodings;
use crate::validate::WatchMode;

/// How many applied changes are kept for Watch catch-up deltas, at most.
pub const DEFAULT_HISTORY: usize = 64;

/// The history holds no more touched records in all than half the
/// registry (at least one Watch part's worth). A catch-up delta that large
/// costs about as much as a snapshot, and a kept change pins the old content
/// of every record it touched: a change that rewrites most of the registry
/// would otherwise keep a second registry alive until the next reload.
fn history_record_budget(registry_len: usize) -> usize {
    (registry_len / 2).max(crate::watch::MAX_PART_RECORDS)
}

/// How many changes a Watch stream may fall behind the broadcast before it
/// is resynchronised with a snapshot.
pub const BROADCAST_CAPACITY: usize = 32;

/// The outcome of the last reload attempt, for GetRegistryInfo.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadStatus {
    /// How it ended.
    pub outcome: pb::ReloadOutcome,
    /// The error of a failed reload; empty otherwise.
    pub error: String,
    /// When it was attempted (`None` before any reload).
    pub at: Option<SystemTime>,
}

/// One layer of the served registry: its source as last loaded and how its
/// last reload went (GetRegistryInfo's `layers`).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStatus {
    /// The layer's name (empty for the one unnamed layer).
    pub name: String,
    /// Its priority, 0 the highest.
    pub rank: u32,
    /// Its source as last loaded (path, format, hash, date).
    pub source: SourceInfo,
    /// When its serving records were loaded.
    pub loaded_at: SystemTime,
    /// Its last reload.
    pub reload: ReloadStatus,
}

/// An applied change as it is broadcast to Watch streams. The wire events
/// for each mode are built once, by the first stream that needs them, and
/// shared by every other stream (1,000 streams must not build 1,000 copies
/// of the same delta): their records and keys are encoded bytes, so a
/// stream's copy of an event shares them.
#[derive(Debug)]
pub struct PublishedChange {
    /// The change.
    pub change: Arc<Change>,
    full: OnceLock<Arc<[reply::WatchResponse]>>,
    invalidate: OnceLock<Arc<[reply::WatchResponse]>>,
}

impl PublishedChange {
    fn new(change: Arc<Change>) -> Self {
        Self {
            change,
            full: OnceLock::new(),
            invalidate: OnceLock::new(),
        }
    }

    /// The change's Watch events in `mode`, built on first use with the
    /// records' kept `encodings`.
    pub fn events(&self, mode: WatchMode, encodings: &Encodings) -> Arc<[reply::WatchResponse]> {
        let slot = match mode {
            WatchMode::Full => &self.full,
            WatchMode::Invalidate => &self.invalidate,
        };
        Arc::clone(slot.get_or_init(|| {
            let change = std::slice::from_ref(&self.change);
            crate::watch::delta_events(change, mode, encodings).into()
        }))
    }
}

/// How a new watcher is brought up to date (rule 1 of the Watch protocol).
#[derive(Debug)]
pub enum CatchUp {
    /// The caller already holds the current version.
    Current,
    /// Every change since the caller's version, oldest first.
    Changes(Vec<Arc<Change>>),
    /// The caller needs the whole snapshot.
    Snapshot,
}

/// Everything a new Watch stream starts from.
#[derive(Debug)]
pub struct WatchStart {
    /// Changes applied after `snapshot`'s version arrive here (earlier ones
    /// may too; receivers skip them by version).
    pub changes: broadcast::Receiver<Arc<PublishedChange>>,
    /// The current registry.
    pub snapshot: Arc<Snapshot>,
    /// How to bring the caller to `snapshot`'s version.
    pub catch_up: CatchUp,
}

/// The registry state shared by handlers, the reloader and watchers.
#[derive(Debug)]
pub struct RegistryState {
    index: Index,
    /// The records' encodings, patched with each applied change (shared
    /// with the scans reading them).
    encodings: Arc<Encodings>,
    history: Mutex<VecDeque<Arc<Change>>>,
    history_capacity: usize,
    changes: broadcast::Sender<Arc<PublishedChange>>,
    reload_status: Mutex<ReloadStatus>,
    layers: Mutex<Vec<LayerStatus>>,
}

fn initial_reload_status() -> ReloadStatus {
    ReloadStatus {
        outcome: pb::ReloadOutcome::Initial,
        error: String::new(),
        at: None,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere while holding it; every
    // critical section here leaves the data consistent, so carry on.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl RegistryState {
    /// State serving `registry` at version 1, keeping `history_capacity`
    /// changes for catch-up.
    pub fn new(registry: Registry, history_capacity: usize) -> Self {
        Self::starting_at(registry, history_capacity, 1)
    }

    /// State serving `registry` at `version`.
    pub fn starting_at(registry: Registry, history_capacity: usize, version: u64) -> Self {
        let (changes, _) = broadcast::channel(BROADCAST_CAPACITY);
        let keyed = portolan_registry::index::keyed_records(registry.records);
        let layers = vec![LayerStatus {
            name: String::new(),
            rank: 0,
            source: registry.source.clone(),
            loaded_at: SystemTime::now(),
            reload: initial_reload_status(),
        }];
        let index = Index::from_keyed(keyed, registry.source, version);
        let encodings = Arc::new(Encodings::build(&index.snapshot()));
        Self {
            index,
            encodings,
            history: Mutex::new(VecDeque::with_capacity(history_capacity)),
            history_capacity,
            changes,
            reload_status: Mutex::new(initial_reload_status()),
            layers: Mutex::new(layers),
        }
    }

    /// The state with its layers' sources, in priority order (a layered
    /// registry built by `portolan_registry::layers::compose`; without
    /// this, the registry is one unnamed layer).
    pub fn with_layers(self, layers: Vec<(String, SourceInfo)>) -> Self {
        let loaded_at = SystemTime::now();
        *lock(&self.layers) = layers
            .into_iter()
            .enumerate()
            .map(|(rank, (name, source))| LayerStatus {
                name,
                rank: u32::try_from(rank).unwrap_or(u32::MAX),
                source,
                loaded_at,
                reload: initial_reload_status(),
            })
            .collect();
        self
    }

    /// Every layer's status, in priority order.
    pub fn layers(&self) -> Vec<LayerStatus> {
        lock(&self.layers).clone()
    }

    /// The content hash of layer `name` as last loaded.
    pub fn layer_hash(&self, name: &str) -> Option<String> {
        lock(&self.layers)
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.source.content_hash.clone())
    }

    /// Replaces the records of layer `name` with `registry`'s (parsed from
    /// its file), the other layers untouched (the one unnamed layer of a
    /// single-source registry is the whole registry), patches the
    /// encodings, records the change and broadcasts it; the guard compares
    /// the layer's own record counts. `Ok(None)` when nothing changed.
    /// Blocking work: call it on the blocking pool. The layer's source is updated when its records are
    /// applied (or equal).
    ///
    /// # Errors
    /// When the guard refuses the layer, or no layer has that name.
    pub fn apply_layer(
        &self,
        name: &str,
        registry: Registry,
        guard: &ReloadGuard,
    ) -> Result<Option<Arc<Change>>, ApplyError> {
        let mut history = lock(&self.history);
        let mut layers = lock(&self.layers);
        let Some(at) = layers.iter().position(|l| l.name == name) else {
            return Err(ApplyError::UnknownLayer(name.to_string()));
        };
        let source = registry.source.clone();
        let combined =
            portolan_registry::layers::combined_source(layers.iter().enumerate().map(|(i, l)| {
                let layer_source = if i == at { &source } else { &l.source };
                (l.name.as_str(), layer_source)
            }));
        let registry = registry.into_layer(name, layers[at].rank);
        let change = self.index.apply_layer(name, registry, combined, guard)?;
        layers[at].source = source;
        if change.is_some() {
            layers[at].loaded_at = SystemTime::now();
        }
        drop(layers);
        Ok(change.map(|change| self.publish(&mut history, change)))
    }

    /// The live index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.index.snapshot()
    }

    /// The records' encodings.
    pub fn encodings(&self) -> &Arc<Encodings> {
        &self.encodings
    }

    /// Patches the encodings, records `change` in the history and
    /// broadcasts it (the caller holds the history lock).
    fn publish(&self, history: &mut VecDeque<Arc<Change>>, change: Change) -> Arc<Change> {
        // Before the broadcast, so Watch events are built from the kept
        // encodings of the new records.
        self.encodings.patch(&change.diff);
        let change = Arc::new(change);
        let budget = history_record_budget(self.index.snapshot().len());
        if self.history_capacity > 0 && change.diff.len() <= budget {
            history.push_back(Arc::clone(&change));
        } else {
            // Older changes cannot chain past one that is not kept: a
            // watcher behind it needs a snapshot anyway.
            history.clear();
        }
        let mut held: usize = history.iter().map(|c| c.diff.len()).sum();
        while history.len() > self.history_capacity || held > budget {
            if let Some(oldest) = history.pop_front() {
                held -= oldest.diff.len();
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self
            .changes
            .send(Arc::new(PublishedChange::new(Arc::clone(&change))));
        change
    }

    /// Subscribes a new watcher that holds the content `known` (rule 1 of
    /// the Watch protocol: the caller may have read it from another
    /// replica, so only content ids are compared, never versions).
    pub fn watch_start(&self, known: ContentId) -> WatchStart {
        let history = lock(&self.history);
        let changes = self.changes.subscribe();
        let snapshot = self.index.snapshot();
        let catch_up = if known == ContentId::default() {
            CatchUp::Snapshot
        } else if known == snapshot.content_id() {
            CatchUp::Current
        } else {
            // The latest change that left the caller's content: a delta is
            // defined by the two contents, so it applies to that content
            // wherever the caller got it.
            let since: Vec<Arc<Change>> = history
                .iter()
                .rposition(|c| c.from_content == known)
                .map(|start| history.range(start..).cloned().collect())
                .unwrap_or_default();
            let contiguous = since
                .last()
                .is_some_and(|c| c.to_version == snapshot.version())
                && since
                    .windows(2)
                    .all(|w| w[0].to_version == w[1].from_version);
            if contiguous {
                CatchUp::Changes(since)
            } else {
                CatchUp::Snapshot
            }
        };
        WatchStart {
            changes,
            snapshot,
            catch_up,
        }
    }

    /// Records how a reload of layer `name` went: the layer's own status,
    /// and the registry's latest (GetRegistryInfo's `last_reload_*`).
    pub fn set_layer_reload_status(&self, name: &str, outcome: pb::ReloadOutcome, error: String) {
        let status = ReloadStatus {
            outcome,
            error,
            at: Some(SystemTime::now()),
        };
        if let Some(layer) = lock(&self.layers).iter_mut().find(|l| l.name == name) {
            layer.reload = status.clone();
        }
        *lock(&self.reload_status) = status;
    }

    /// The outcome of the last reload attempt.
    pub fn reload_status(&self) -> ReloadStatus {
        lock(&self.reload_status).clone()
    }

    /// What GetRegistryInfo reports.
    pub fn info(&self) -> pb::GetRegistryInfoResponse {
        let status = self.reload_status();
        let snapshot = self.index.snapshot();
        let counts = snapshot.counts_by_layer();
        let layers = self
            .layers()
            .into_iter()
            .map(|l| pb::LayerInfo {
                record_count: counts.get(&l.name).copied().unwrap_or(0) as u64,
                rank: l.rank,
                source_path: l.source.path.clone(),
                source_format: l.source.format_label(),
                content_hash: l.source.content_hash.clone(),
                registry_updated: l.source.updated.clone().unwrap_or_default(),
                loaded_at: Some(prost_types::Timestamp::from(l.loaded_at)),
                last_reload_outcome: l.reload.outcome as i32,
                last_reload_error: l.reload.error,
                last_reload_at: l.reload.at.map(prost_types::Timestamp::from),
                diagnostic_count: l.source.diagnostic_count as u64,
                name: l.name,
            })
            .collect();
        pb::GetRegistryInfoResponse {
            last_reload_outcome: status.outcome as i32,
            last_reload_error: status.error,
            last_reload_at: status.at.map(prost_types::Timestamp::from),
            layers,
            ..portolan::convert::snapshot_info_to_pb(&snapshot)
        }
    }
}

/// A mesh hints dataset as loaded: the hints, where they came from and the
/// SHA-256 of their bytes.
#[derive(Debug, Clone)]
pub struct LoadedHints {
    /// The hints.
    pub hints: Arc<Hints>,
    /// The file path, or `embedded`.
    pub source: String,
    /// SHA-256 of the bytes parsed, hex.
    pub content_hash: String,
}

impl LoadedHints {
    /// The dataset compiled into the binary.
    pub fn embedded() -> Self {
        Self {
            hints: Arc::new(Hints::embedded().clone()),
            source: "embedded".into(),
            content_hash: hex::encode(Sha256::digest(portolan_registry::mesh::SOURCE)),
        }
    }
}

#[derive(Debug)]
struct ServedHints {
    loaded: LoadedHints,
    loaded_at: SystemTime,
    reload: ReloadStatus,
}

/// The mesh hints DescribePort answers from, swapped whole by the
/// `--mesh-hints` reloader (a reader keeps the `Arc` it took), with their
/// source and how their last reload went (GetRegistryInfo's `mesh_hints`).
#[derive(Debug)]
pub struct MeshHintsState {
    served: Mutex<ServedHints>,
}

impl MeshHintsState {
    /// Serves `loaded`.
    pub fn new(loaded: LoadedHints) -> Self {
        Self {
            served: Mutex::new(ServedHints {
                loaded,
                loaded_at: SystemTime::now(),
                reload: initial_reload_status(),
            }),
        }
    }

    /// The hints served now.
    pub fn current(&self) -> Arc<Hints> {
        Arc::clone(&lock(&self.served).loaded.hints)
    }

    /// The content hash of the hints served now.
    pub fn content_hash(&self) -> String {
        lock(&self.served).loaded.content_hash.clone()
    }

    /// Serves `loaded` from now on (a reload that applied).
    pub fn apply(&self, loaded: LoadedHints) {
        let mut served = lock(&self.served);
        served.loaded = loaded;
        served.loaded_at = SystemTime::now();
        served.reload = ReloadStatus {
            outcome: pb::ReloadOutcome::Applied,
            error: String::new(),
            at: Some(SystemTime::now()),
        };
    }

    /// Records a reload that applied nothing: `error` empty for unchanged
    /// content, else the failure (the served hints stay).
    pub fn set_reload_status(&self, outcome: pb::ReloadOutcome, error: String) {
        lock(&self.served).reload = ReloadStatus {
            outcome,
            error,
            at: Some(SystemTime::now()),
        };
    }

    /// What GetRegistryInfo reports about the hints.
    pub fn info(&self) -> pb::MeshHintsInfo {
        let served = lock(&self.served);
        pb::MeshHintsInfo {
            source: served.loaded.source.clone(),
            entry_count: served.loaded.hints.len() as u64,
            content_hash: served.loaded.content_hash.clone(),
            loaded_at: Some(prost_types::Timestamp::from(served.loaded_at)),
            last_reload_outcome: served.reload.outcome as i32,
            last_reload_error: served.reload.error.clone(),
            last_reload_at: served.reload.at.map(prost_types::Timestamp::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_registry::numbered_registry as registry;

    /// A change touching most of the registry is not kept (its catch-up
    /// delta would cost as much as a snapshot, and it would pin a second
    /// registry of old records); changes within half the registry are,
    /// until they add up to more than half.
    #[test]
    fn history_is_bounded_by_records_as_well_as_by_count() {
        let state = RegistryState::new(registry(3000, "v0"), DEFAULT_HISTORY);
        let v1 = state.snapshot().content_id();
        let mut next = registry(3000, "v0");
        for port in 0..1200 {
            next.records[port].description = "v1".into();
        }
        let v2 = state
            .apply_layer("", next.clone(), &ReloadGuard::default())
            .unwrap()
            .unwrap()
            .to_content;
        assert_eq!(lock(&state.history).len(), 1, "1,200 of 3,000 is kept");
        for port in 0..1200 {
            next.records[port].description = "v2".into();
        }
        let v3 = state
            .apply_layer("", next, &ReloadGuard::default())
            .unwrap()
            .unwrap()
            .to_content;
        let history = lock(&state.history);
        assert_eq!(history.len(), 1, "2,400 records held is more than half");
        assert_eq!(history[0].to_version, 3);
        drop(history);
        assert!(matches!(state.watch_start(v2).catch_up, CatchUp::Changes(ref c) if c.len() == 1));
        assert!(matches!(state.watch_start(v1).catch_up, CatchUp::Snapshot));
        assert!(matches!(
            state.watch_start(ContentId(7)).catch_up,
            CatchUp::Snapshot
        ));

        // Every record changes: nothing is kept, so nothing old is pinned.
        let change = state
            .apply_layer("", registry(3000, "v3"), &ReloadGuard::default())
            .unwrap()
            .unwrap();
        assert!(lock(&state.history).is_empty());
        let old_record = Arc::downgrade(&change.diff.changed[0].1);
        drop(change);
        assert!(old_record.upgrade().is_none(), "the old edition is freed");
        assert!(matches!(state.watch_start(v3).catch_up, CatchUp::Snapshot));
    }

    #[test]
    fn small_changes_are_kept_up_to_the_count_limit() {
        let state = RegistryState::new(registry(3000, "v0"), 4);
        let mut next = registry(3000, "v0");
        let mut contents = vec![state.snapshot().content_id()];
        for round in 1..=6 {
            next.records[0].description = format!("round {round}");
            let change = state
                .apply_layer("", next.clone(), &ReloadGuard::default())
                .unwrap()
                .unwrap();
            contents.push(change.to_content);
        }
        assert_eq!(lock(&state.history).len(), 4);
        assert!(
            matches!(state.watch_start(contents[2]).catch_up, CatchUp::Changes(ref c) if c.len() == 4)
        );
        assert!(matches!(
            state.watch_start(contents[1]).catch_up,
            CatchUp::Snapshot
        ));
        assert!(matches!(
            state.watch_start(contents[6]).catch_up,
            CatchUp::Current
        ));
        // Back to an earlier content: a holder of it is current again, and a
        // holder of the content in between gets the one change back.
        next.records[0].description = "round 5".into();
        state
            .apply_layer("", next, &ReloadGuard::default())
            .unwrap()
            .unwrap();
        assert!(matches!(
            state.watch_start(contents[5]).catch_up,
            CatchUp::Current
        ));
        assert!(
            matches!(state.watch_start(contents[6]).catch_up, CatchUp::Changes(ref c) if c.len() == 1)
        );
    }
}
