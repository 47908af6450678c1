//! [`RegistryState`]: what every handler shares once the registry is
//! loaded: the live [`Index`], a bounded history of applied [`Change`]s for
//! Watch catch-up, the broadcast that feeds Watch streams, the outcome of
//! the last reload.
//!
//! # Ordering guarantee for watchers
//! [`RegistryState::apply`] applies a registry, appends the change to the
//! history and broadcasts it while holding one lock;
//! [`RegistryState::watch_start`] subscribes to the broadcast and reads the
//! snapshot and history under the same lock. A watcher therefore sees every
//! change after the version it starts from exactly once: changes up to that
//! version are in its catch-up (or skipped), later ones arrive on the
//! broadcast.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use portolan::pb;
use portolan_registry::{ApplyError, Change, Index, Registry, ReloadGuard, Snapshot};
use tokio::sync::broadcast;

/// How many applied changes are kept for Watch catch-up deltas.
pub const DEFAULT_HISTORY: usize = 64;

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
    pub changes: broadcast::Receiver<Arc<Change>>,
    /// The current registry.
    pub snapshot: Arc<Snapshot>,
    /// How to bring the caller to `snapshot`'s version.
    pub catch_up: CatchUp,
}

/// The registry state shared by handlers, the reloader and watchers.
#[derive(Debug)]
pub struct RegistryState {
    index: Index,
    history: Mutex<VecDeque<Arc<Change>>>,
    history_capacity: usize,
    changes: broadcast::Sender<Arc<Change>>,
    reload_status: Mutex<ReloadStatus>,
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
        let (changes, _) = broadcast::channel(BROADCAST_CAPACITY);
        Self {
            index: Index::new(registry),
            history: Mutex::new(VecDeque::with_capacity(history_capacity)),
            history_capacity,
            changes,
            reload_status: Mutex::new(ReloadStatus {
                outcome: pb::ReloadOutcome::Initial,
                error: String::new(),
                at: None,
            }),
        }
    }

    /// The live index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.index.snapshot()
    }

    /// Applies `registry`, records the change and broadcasts it. `Ok(None)`
    /// when nothing changed.
    pub fn apply(
        &self,
        registry: Registry,
        guard: &ReloadGuard,
    ) -> Result<Option<Arc<Change>>, ApplyError> {
        let mut history = lock(&self.history);
        let Some(change) = self.index.apply(registry, guard)? else {
            return Ok(None);
        };
        let change = Arc::new(change);
        if history.len() == self.history_capacity {
            history.pop_front();
        }
        if self.history_capacity > 0 {
            history.push_back(Arc::clone(&change));
        }
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(Arc::clone(&change));
        Ok(Some(change))
    }

    /// Subscribes a new watcher that holds `known_version`.
    pub fn watch_start(&self, known_version: u64) -> WatchStart {
        let history = lock(&self.history);
        let changes = self.changes.subscribe();
        let snapshot = self.index.snapshot();
        let current = snapshot.version();
        let catch_up = if known_version == current {
            CatchUp::Current
        } else if known_version == 0 || known_version > current {
            CatchUp::Snapshot
        } else {
            let since: Vec<Arc<Change>> = history
                .iter()
                .filter(|c| c.from_version >= known_version && c.to_version <= current)
                .cloned()
                .collect();
            let contiguous = since
                .first()
                .is_some_and(|c| c.from_version == known_version)
                && since.last().is_some_and(|c| c.to_version == current)
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

    /// Records the outcome of a reload attempt.
    pub fn set_reload_status(&self, outcome: pb::ReloadOutcome, error: String) {
        *lock(&self.reload_status) = ReloadStatus {
            outcome,
            error,
            at: Some(SystemTime::now()),
        };
    }

    /// The outcome of the last reload attempt.
    pub fn reload_status(&self) -> ReloadStatus {
        lock(&self.reload_status).clone()
    }

    /// What GetRegistryInfo reports.
    pub fn info(&self) -> pb::RegistryInfo {
        let snapshot = self.index.snapshot();
        let source = snapshot.source();
        let status = self.reload_status();
        pb::RegistryInfo {
            version: snapshot.version(),
            content_hash: source.content_hash.clone(),
            source_path: source.path.clone(),
            source_format: source.format_label(),
            record_count: snapshot.len() as u64,
            records_by_state: snapshot
                .counts_by_state()
                .into_iter()
                .map(|(state, n)| (state.as_str().to_string(), n as u64))
                .collect(),
            records_by_protocol: snapshot
                .counts_by_protocol()
                .into_iter()
                .map(|(protocol, n)| (protocol, n as u64))
                .collect(),
            registry_updated: source.updated.clone().unwrap_or_default(),
            loaded_at: Some(prost_types::Timestamp::from(snapshot.loaded_at())),
            last_reload_outcome: status.outcome as i32,
            last_reload_error: status.error,
            last_reload_at: status.at.map(prost_types::Timestamp::from),
            diagnostic_count: source.diagnostic_count as u64,
        }
    }
}
