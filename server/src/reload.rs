//! Hot reload of the data file.
//!
//! * The data file's **directory** is watched (NonRecursive) with notify,
//!   so editors' rename-over saves and Kubernetes' `..data` symlink swaps
//!   are seen; an event counts when it names the data file, `..data`, or any
//!   `..*` entry, whatever its kind (or asks for a rescan).
//! * Events are debounced; the file is then re-read by its user-visible
//!   path and skipped when its SHA-256 is unchanged.
//! * Parsing runs on the blocking pool; the result is applied through
//!   [`RegistryState::apply`] with the [`ReloadGuard`] and so reaches Watch
//!   streams.
//! * SIGHUP reloads too, and a content-hash poll runs every poll interval as
//!   a safety net (a watcher that cannot start leaves polling alone).
//! * A bad file (unreadable, unparseable, refused by the guard) keeps the
//!   last good registry serving; the failure is logged (warn), counted in
//!   `portolan_reload_total{outcome="failed"}` and shown by
//!   GetRegistryInfo.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use portolan::pb::ReloadOutcome;
use portolan_registry::{Format, ParseError, Registry, ReloadGuard};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::state::RegistryState;

/// Why a data file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a registry in the expected format.
    #[error("cannot parse {path}: {source}")]
    Parse {
        /// The path as given.
        path: String,
        /// The parser's verdict.
        source: ParseError,
    },
}

/// Parses `bytes` read from `path` as `format` (or the detected format),
/// recording the path in the registry's source.
pub fn parse_registry(
    path: &Path,
    bytes: &[u8],
    format: Option<Format>,
) -> Result<Registry, LoadError> {
    let mut parsed =
        portolan_registry::parse(bytes, format).map_err(|source| LoadError::Parse {
            path: path.display().to_string(),
            source,
        })?;
    parsed.registry.source.path = path.display().to_string();
    Ok(parsed.registry)
}

/// Reads and parses a data file (blocking).
pub fn read_registry(path: &Path, format: Option<Format>) -> Result<Registry, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_registry(path, &bytes, format)
}

/// What the reloader watches and how.
#[derive(Debug, Clone)]
pub struct ReloadSettings {
    /// The data file, as the user gave it.
    pub path: PathBuf,
    /// Format override (`None` = detect).
    pub format: Option<Format>,
    /// Quiet time after the last file event before reloading.
    pub debounce: Duration,
    /// Interval of the content-hash poll.
    pub poll_interval: Duration,
    /// Guard rails for every reload.
    pub guard: ReloadGuard,
}

/// Starts the reloader; it runs until `cancel`.
pub fn spawn(
    state: Arc<RegistryState>,
    settings: ReloadSettings,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let mut reloader = Reloader {
        state,
        settings,
        metrics,
        last_failed_hash: None,
    };
    tokio::spawn(async move { reloader.run(cancel).await })
}

/// Which of the file's directory entries matter: the file itself,
/// Kubernetes' `..data`, and any other `..*` entry of an atomic writer.
fn is_relevant(path: &Path, file_name: &OsString) -> bool {
    match path.file_name() {
        Some(name) => name == file_name.as_os_str() || name.to_string_lossy().starts_with(".."),
        None => false,
    }
}

/// Whether an event only reports that a file was opened, read or closed
/// without being written.
fn is_read_only_access(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(kind, notify::EventKind::Access(access)
        if !matches!(access, AccessKind::Close(AccessMode::Write)))
}

/// Starts a notify watcher on the data file's directory that pokes `tx`
/// for every relevant event.
fn start_watcher(path: &Path, tx: mpsc::Sender<()>) -> notify::Result<RecommendedWatcher> {
    let directory = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(OsString::from).unwrap_or_default();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            // Our own reads of the file (open, read, close without writing)
            // must not trigger a reload, or every reload would schedule the
            // next one. A close after writing still counts.
            Ok(event) if is_read_only_access(&event.kind) => false,
            Ok(event) => {
                event.need_rescan() || event.paths.iter().any(|p| is_relevant(p, &file_name))
            }
            // An error (e.g. a queue overflow): check the file anyway.
            Err(_) => true,
        };
        if relevant {
            // A full channel already holds a pending poke; nothing is lost.
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&directory, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// What reading the file gave.
enum Attempt {
    Unreadable(LoadError),
    /// The bytes hash to a value already dealt with.
    SameContent,
    /// The bytes hash to the value that failed last time.
    StillBad,
    Parsed {
        hash: String,
        result: Result<Registry, LoadError>,
    },
}

struct Reloader {
    state: Arc<RegistryState>,
    settings: ReloadSettings,
    metrics: Arc<Metrics>,
    /// Hash of the content that failed last (so a poll does not report the
    /// same bad file again and again).
    last_failed_hash: Option<String>,
}

impl Reloader {
    async fn run(&mut self, cancel: CancellationToken) {
        let (tx, mut events) = mpsc::channel::<()>(1);
        let _watcher = match start_watcher(&self.settings.path, tx) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    path = %self.settings.path.display(),
                    poll_interval = ?self.settings.poll_interval,
                    "cannot watch the data file's directory; relying on polling"
                );
                None
            }
        };
        let mut hangups = hangup_signals();
        let period = self.settings.poll_interval.max(Duration::from_millis(10));
        let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                Some(()) = events.recv() => {
                    // Debounce: wait until the directory is quiet.
                    loop {
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep(self.settings.debounce) => break,
                            Some(()) = events.recv() => {}
                        }
                    }
                    self.reload("file event").await;
                }
                _ = poll.tick() => self.reload("poll").await,
                Some(()) = next_hangup(&mut hangups) => self.reload("SIGHUP").await,
            }
        }
    }

    async fn reload(&mut self, trigger: &'static str) {
        let started = Instant::now();
        let path = self.settings.path.clone();
        let format = self.settings.format;
        let served_hash = self.state.snapshot().source().content_hash.clone();
        let failed_hash = self.last_failed_hash.clone();
        let attempt = tokio::task::spawn_blocking(move || {
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(source) => {
                    return Attempt::Unreadable(LoadError::Read {
                        path: path.display().to_string(),
                        source,
                    });
                }
            };
            let hash = hex::encode(Sha256::digest(&bytes));
            if hash == served_hash {
                return Attempt::SameContent;
            }
            if failed_hash.as_deref() == Some(hash.as_str()) {
                return Attempt::StillBad;
            }
            Attempt::Parsed {
                result: parse_registry(&path, &bytes, format),
                hash,
            }
        })
        .await;
        let attempt = match attempt {
            Ok(attempt) => attempt,
            Err(e) => {
                self.failed(trigger, format!("reload task failed: {e}"));
                return;
            }
        };
        match attempt {
            Attempt::SameContent => {
                self.last_failed_hash = None;
                if trigger != "poll" {
                    tracing::debug!(trigger, "data file content unchanged");
                    self.state
                        .set_reload_status(ReloadOutcome::Unchanged, String::new());
                    self.metrics.reload("unchanged");
                }
            }
            Attempt::StillBad => {}
            Attempt::Unreadable(e) => self.failed(trigger, e.to_string()),
            Attempt::Parsed { hash, result } => {
                let registry = match result {
                    Ok(registry) => registry,
                    Err(e) => {
                        self.last_failed_hash = Some(hash);
                        self.failed(trigger, e.to_string());
                        return;
                    }
                };
                let records = registry.len();
                match self.state.apply(registry, &self.settings.guard) {
                    Ok(Some(change)) => {
                        self.last_failed_hash = None;
                        self.state
                            .set_reload_status(ReloadOutcome::Applied, String::new());
                        self.metrics.reload("applied");
                        self.metrics.registry_loaded(&self.state.snapshot());
                        tracing::info!(
                            trigger,
                            from_version = change.from_version,
                            to_version = change.to_version,
                            records,
                            added = change.diff.added.len(),
                            changed = change.diff.changed.len(),
                            removed = change.diff.removed.len(),
                            hash = %hash,
                            elapsed = ?started.elapsed(),
                            "registry reloaded"
                        );
                    }
                    Ok(None) => {
                        self.last_failed_hash = None;
                        self.state
                            .set_reload_status(ReloadOutcome::Unchanged, String::new());
                        self.metrics.reload("unchanged");
                        self.metrics.mark_successful_load();
                        tracing::info!(trigger, hash = %hash, "data file changed but its records did not");
                    }
                    Err(e) => {
                        self.last_failed_hash = Some(hash);
                        self.failed(trigger, format!("{}: {e}", self.settings.path.display()));
                    }
                }
            }
        }
    }

    fn failed(&self, trigger: &'static str, error: String) {
        tracing::warn!(
            trigger,
            error = %error,
            version = self.state.index().version(),
            "reload failed; the previous registry keeps serving"
        );
        self.metrics.reload("failed");
        self.state.set_reload_status(ReloadOutcome::Failed, error);
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangup_signals() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signals() -> Hangups {
    None
}

/// The next SIGHUP (never, where there are none).
async fn next_hangup(hangups: &mut Hangups) -> Option<()> {
    #[cfg(unix)]
    if let Some(signal) = hangups {
        return signal.recv().await;
    }
    #[cfg(not(unix))]
    let _ = hangups;
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevant_entries_are_the_file_and_atomic_writer_names() {
        let name = OsString::from("registry.csv");
        assert!(is_relevant(Path::new("/d/registry.csv"), &name));
        assert!(is_relevant(Path::new("/d/..data"), &name));
        assert!(is_relevant(
            Path::new("/d/..2026_11_26_23_00_00.123"),
            &name
        ));
        assert!(!is_relevant(Path::new("/d/other.csv"), &name));
    }
}
