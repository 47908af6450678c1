//! Hot reload of the data files: one reloader per layer (`--data
//! NAME=FILE`), each with its own watch, debounce, poll, guard and failure
//! state; a layer's new records replace only that layer's
//! ([`RegistryState::apply_layer`]), so a bad layer keeps its last good
//! records while the others keep updating.
//!
//! * The data file's **directory** is watched (NonRecursive) with notify,
//!   so editors' rename-over saves and Kubernetes' `..data` symlink swaps
//!   are seen; an event counts when it names the data file, `..data`, or any
//!   `..*` entry, whatever its kind (or asks for a rescan).
//! * The watch is checked every [`WATCH_CHECK_INTERVAL`]: when the
//!   directory was removed, replaced (another inode) or could not be
//!   watched before, a new watcher is started and the file reloaded, so a
//!   deleted and recreated directory is watched again within a second.
//! * Events are debounced (`--reload-debounce` of quiet), but a burst of
//!   events never defers a reload by more than `--reload-max-delay`; a
//!   SIGHUP during the debounce reloads at once. The file is then re-read by
//!   its user-visible path and skipped when its SHA-256 is unchanged.
//! * The file is read by [`read_data_file`]: opened without blocking (a
//!   FIFO cannot stall the reader), refused unless it is a regular file, and
//!   read no further than `--max-data-bytes`; parsing is bounded by the same
//!   [`ParseLimits`].
//! * Reading, parsing and [`RegistryState::apply_layer`] (with the
//!   [`ReloadGuard`], reaching Watch streams) run on the blocking pool; a
//!   panic anywhere in them becomes a FAILED reload, never a dead reloader.
//! * SIGHUP reloads too, and a content-hash poll runs every poll interval as
//!   a safety net (a watcher that cannot start leaves polling alone). Once
//!   the watch is set up the file is checked once more, so a change made
//!   between the startup read and the watch is not left to the first poll.
//! * A bad file (unreadable, unparseable, over a limit, refused by the
//!   guard, or one whose reload panicked) keeps the last good registry
//!   serving; the failure is logged (warn), counted in
//!   `portolan_reload_total{outcome="failed"}` and shown by
//!   GetRegistryInfo.
//!
//! The `--mesh-hints` file is kept served by the same loop (`watch_loop`:
//! directory watch, debounce, poll, SIGHUP, watch re-establishment) through
//! its own [`Reload`] target ([`spawn_mesh_hints`]): read within
//! [`MAX_MESH_HINTS_BYTES`], parsed strictly, swapped whole. A bad file keeps
//! the last good hints serving; the failure is logged (warn), shown by
//! `portolan_mesh_hints_reload_failing` and GetRegistryInfo's `mesh_hints`.

use std::ffi::OsString;
use std::future::Future;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use portolan::pb::ReloadOutcome;
use portolan_registry::{
    ApplyError, Change, Format, Hints, HintsError, ParseError, ParseLimits, Registry, ReloadGuard,
};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::state::{LoadedHints, MeshHintsState, RegistryState};

/// The trigger of the check made once the watch is set up.
const STARTUP_CHECK: &str = "startup check";

/// How often the reloader checks that its directory watch is still the
/// directory at the data file's path (one `stat`): half a second, so a
/// deleted and recreated directory is watched again, and its file served,
/// well within the two seconds promised for a change.
pub const WATCH_CHECK_INTERVAL: Duration = Duration::from_millis(500);

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
    /// The path is not something to read a registry from (a FIFO, a
    /// device, a socket, a directory) or is larger than the byte limit.
    #[error("cannot read {path}: {reason}")]
    Refused {
        /// The path as given.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not a registry in the expected format.
    #[error("cannot parse {path}: {source}")]
    Parse {
        /// The path as given.
        path: String,
        /// The parser's verdict.
        source: ParseError,
    },
    /// The file is not a mesh hints dataset (`data/mesh/hints.toml`'s
    /// schema).
    #[error("cannot parse {path}: {source}")]
    Hints {
        /// The path as given.
        path: String,
        /// The parser's verdict.
        source: HintsError,
    },
}

/// The largest `--mesh-hints` file read, in bytes: 1 MiB, some 30 times the
/// compiled-in dataset (29 entries, about 35 KiB). Larger files are refused
/// ("over the mesh hints limit"); the last good hints keep serving.
pub const MAX_MESH_HINTS_BYTES: u64 = 1024 * 1024;

/// Parses `bytes` read from `path` as `format` (or the detected format)
/// within `limits`, recording the path in the registry's source.
pub fn parse_registry(
    path: &Path,
    bytes: &[u8],
    format: Option<Format>,
    limits: &ParseLimits,
) -> Result<Registry, LoadError> {
    let mut parsed =
        portolan_registry::parse_with_limits(bytes, format, limits).map_err(|source| {
            LoadError::Parse {
                path: path.display().to_string(),
                source,
            }
        })?;
    parsed.registry.source.path = path.display().to_string();
    Ok(parsed.registry)
}

/// What a path that is not a regular file is, for the error message.
fn file_kind(metadata: &std::fs::Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Reads the data file at `path` (blocking), at most `max_bytes` of it.
///
/// The file is opened with `O_NONBLOCK` (opening a FIFO then returns at
/// once instead of waiting for a writer) and the opened handle checked:
/// anything but a regular file (symlinks are followed: a link to
/// `/dev/zero` is a character device) is refused, as is a file whose size
/// is over `max_bytes`; the read itself stops at `max_bytes + 1` bytes in
/// case the file grows meanwhile.
pub fn read_data_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, LoadError> {
    read_bounded(path, max_bytes, "the --max-data-bytes limit")
}

/// [`read_data_file`] with the limit named `limit` in errors.
fn read_bounded(path: &Path, max_bytes: u64, limit: &str) -> Result<Vec<u8>, LoadError> {
    let shown = || path.display().to_string();
    let read_error = |source| LoadError::Read {
        path: shown(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(LoadError::Refused {
            path: shown(),
            reason: format!("{}, not a regular file", file_kind(&metadata)),
        });
    }
    let too_large = |size: &dyn std::fmt::Display| LoadError::Refused {
        path: shown(),
        reason: format!("{size} bytes, over {limit} of {max_bytes}"),
    };
    if metadata.len() > max_bytes {
        return Err(too_large(&metadata.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(&format!("more than {max_bytes}")));
    }
    Ok(bytes)
}

/// Reads and parses a data file (blocking) within `limits`.
pub fn read_registry(
    path: &Path,
    format: Option<Format>,
    limits: &ParseLimits,
) -> Result<Registry, LoadError> {
    let bytes = read_data_file(path, limits.max_bytes)?;
    parse_registry(path, &bytes, format, limits)
}

/// Parses mesh hints `bytes` read from `path`.
pub fn parse_mesh_hints(path: &Path, bytes: &[u8]) -> Result<LoadedHints, LoadError> {
    let shown = || path.display().to_string();
    let text = std::str::from_utf8(bytes).map_err(|e| LoadError::Refused {
        path: shown(),
        reason: format!("not UTF-8 text: {e}"),
    })?;
    let hints = Hints::parse(text).map_err(|source| LoadError::Hints {
        path: shown(),
        source,
    })?;
    Ok(LoadedHints {
        hints: Arc::new(hints),
        source: shown(),
        content_hash: hex::encode(Sha256::digest(bytes)),
    })
}

/// Reads (at most [`MAX_MESH_HINTS_BYTES`]) and parses a mesh hints file
/// (blocking).
pub fn read_mesh_hints(path: &Path) -> Result<LoadedHints, LoadError> {
    let bytes = read_bounded(path, MAX_MESH_HINTS_BYTES, "the mesh hints limit")?;
    parse_mesh_hints(path, &bytes)
}

/// What the reloader watches and how.
#[derive(Debug, Clone)]
pub struct ReloadSettings {
    /// The layer the file is (empty for the one unnamed layer).
    pub layer: String,
    /// The data file, as the user gave it.
    pub path: PathBuf,
    /// Format override (`None` = detect).
    pub format: Option<Format>,
    /// Quiet time after the last file event before reloading.
    pub debounce: Duration,
    /// Longest a burst of file events may defer a reload.
    pub max_delay: Duration,
    /// Interval of the content-hash poll.
    pub poll_interval: Duration,
    /// Guard rails for every reload.
    pub guard: ReloadGuard,
    /// Bounds on reading and parsing the file.
    pub limits: ParseLimits,
}

/// Starts the reloader; it runs until `cancel`.
pub fn spawn(
    state: Arc<RegistryState>,
    settings: ReloadSettings,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let mut reloader = Reloader::new(state, settings, metrics);
    tokio::spawn(async move { watch_loop(&mut reloader, cancel).await })
}

/// Starts the `--mesh-hints` reloader for the file and timing in
/// `settings`; it runs until `cancel`.
pub fn spawn_mesh_hints(
    hints: Arc<MeshHintsState>,
    settings: WatchedFile,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let mut reloader = HintsReloader {
        hints,
        settings,
        metrics,
        last_failed_hash: None,
        failing: false,
    };
    tokio::spawn(async move { watch_loop(&mut reloader, cancel).await })
}

/// The file a `watch_loop` keeps served, and when to look at it.
#[derive(Debug, Clone)]
pub struct WatchedFile {
    /// The file, as the user gave it.
    pub path: PathBuf,
    /// Quiet time after the last file event before reloading.
    pub debounce: Duration,
    /// Longest a burst of file events may defer a reload.
    pub max_delay: Duration,
    /// Interval of the content-hash poll.
    pub poll_interval: Duration,
}

/// What a `watch_loop` reloads: a registry layer (`Reloader`) or the
/// mesh hints (`HintsReloader`).
pub trait Reload: Send {
    /// The file and its timing.
    fn watched(&self) -> WatchedFile;
    /// Reads the file and serves it when its content is new; reports
    /// failures itself (never panics out).
    fn reload(&mut self, trigger: &'static str) -> impl Future<Output = ()> + Send;
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

/// The directory holding the data file.
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Which directory is at `directory` now: (device, inode) where there are
/// such, `Some((0, 0))` for any existing directory elsewhere; `None` when
/// nothing is there.
fn directory_identity(directory: &Path) -> Option<(u64, u64)> {
    let metadata = std::fs::metadata(directory).ok()?;
    if !metadata.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Some((metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    Some((0, 0))
}

/// A directory watch: the watcher, the directory it watches, and a flag
/// its callback raises when that directory itself goes away.
struct DirectoryWatch {
    _watcher: RecommendedWatcher,
    identity: Option<(u64, u64)>,
    lost: Arc<AtomicBool>,
}

/// Starts a notify watcher on the data file's directory that pokes `tx`
/// for every relevant event.
fn start_watcher(path: &Path, tx: mpsc::Sender<()>) -> notify::Result<DirectoryWatch> {
    let directory = directory_of(path);
    let identity = directory_identity(&directory);
    let file_name = path.file_name().map(OsString::from).unwrap_or_default();
    let lost = Arc::new(AtomicBool::new(false));
    let lost_flag = Arc::clone(&lost);
    let watched = directory.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = &event
            && matches!(event.kind, notify::EventKind::Remove(_))
            && event.paths.iter().any(|p| p == &watched)
        {
            // The watched directory itself is gone: the watch with it.
            lost_flag.store(true, Ordering::Relaxed);
        }
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
    Ok(DirectoryWatch {
        _watcher: watcher,
        identity,
        lost,
    })
}

/// Starts a watch on the directory, logging (once per change of state)
/// when it cannot.
fn start_watch(
    file: &WatchedFile,
    tx: &mpsc::Sender<()>,
    warned: &mut bool,
) -> Option<DirectoryWatch> {
    match start_watcher(&file.path, tx.clone()) {
        Ok(watch) => {
            *warned = false;
            Some(watch)
        }
        Err(e) => {
            if !*warned {
                tracing::warn!(
                    error = %e,
                    path = %file.path.display(),
                    poll_interval = ?file.poll_interval,
                    "cannot watch the file's directory; polling, and retrying the watch"
                );
                *warned = true;
            }
            None
        }
    }
}

/// Keeps `target`'s file served until `cancel`: a watch on its directory
/// (re-established when the directory is replaced), debounced events, a
/// poll, SIGHUP.
async fn watch_loop<R: Reload>(target: &mut R, cancel: CancellationToken) {
    let file = target.watched();
    let (tx, mut events) = mpsc::channel::<()>(1);
    let mut warned = false;
    let mut watch = start_watch(&file, &tx, &mut warned);
    // The file was read at startup before the watch existed: a change
    // made in between raised no event, so look once now (silent when the
    // content is the one served, as a poll is).
    target.reload(STARTUP_CHECK).await;
    let directory = directory_of(&file.path);
    let mut hangups = hangup_signals();
    let period = file.poll_interval.max(Duration::from_millis(10));
    let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch_check = tokio::time::interval_at(
        tokio::time::Instant::now() + WATCH_CHECK_INTERVAL,
        WATCH_CHECK_INTERVAL,
    );
    watch_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            Some(()) = events.recv() => {
                // Debounce: wait until the directory is quiet, but no
                // longer than the maximum delay; SIGHUP cuts it short.
                let deadline = tokio::time::Instant::now() + file.max_delay;
                let trigger = loop {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(file.debounce) => break "file event",
                        () = tokio::time::sleep_until(deadline) => break "file events (maximum delay)",
                        Some(()) = next_hangup(&mut hangups) => break "SIGHUP",
                        Some(()) = events.recv() => {}
                    }
                };
                target.reload(trigger).await;
            }
            _ = poll.tick() => target.reload("poll").await,
            _ = watch_check.tick() => {
                let now = directory_identity(&directory);
                let stale = match &watch {
                    None => now.is_some(),
                    Some(w) => w.lost.load(Ordering::Relaxed) || w.identity != now,
                };
                if stale {
                    // Drop the old watch first: it watches nothing.
                    watch = None;
                    if now.is_some() {
                        watch = start_watch(&file, &tx, &mut warned);
                        if watch.is_some() {
                            tracing::info!(
                                directory = %directory.display(),
                                "watching the file's directory again"
                            );
                            target.reload("directory watch re-established").await;
                        }
                    }
                }
            }
            Some(()) = next_hangup(&mut hangups) => target.reload("SIGHUP").await,
        }
    }
}

/// What reading the file gave.
enum Read {
    Unreadable(LoadError),
    /// The bytes hash to a value already dealt with.
    SameContent,
    /// The bytes hash to the value that failed last time.
    StillBad,
    /// New content.
    Changed {
        hash: String,
        bytes: Vec<u8>,
    },
}

/// What parsing and applying new content gave.
enum Applied {
    ParseFailed(LoadError),
    Refused(ApplyError),
    Changed { change: Arc<Change>, records: usize },
    SameRecords,
}

/// The message of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs `job` on the blocking pool; a panic (or a cancelled task) becomes
/// an error message instead of unwinding into the reloader.
async fn on_blocking_pool<T: Send + 'static>(
    what: &str,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(job).await.map_err(|e| {
        if e.is_panic() {
            format!(
                "{what} panicked: {}",
                panic_message(e.into_panic().as_ref())
            )
        } else {
            format!("{what} was cancelled: {e}")
        }
    })
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
    fn new(state: Arc<RegistryState>, settings: ReloadSettings, metrics: Arc<Metrics>) -> Self {
        Self {
            state,
            settings,
            metrics,
            last_failed_hash: None,
        }
    }

    /// Reads the file and, when its content is new, parses and applies it.
    async fn reload_layer(&mut self, trigger: &'static str) {
        let started = Instant::now();
        self.metrics.data_file_checked(trigger);
        let path = self.settings.path.clone();
        let max_bytes = self.settings.limits.max_bytes;
        let served_hash = self
            .state
            .layer_hash(&self.settings.layer)
            .unwrap_or_default();
        let failed_hash = self.last_failed_hash.clone();
        let read = on_blocking_pool("reading the data file", move || {
            let bytes = match read_data_file(&path, max_bytes) {
                Ok(bytes) => bytes,
                Err(e) => return Read::Unreadable(e),
            };
            let hash = hex::encode(Sha256::digest(&bytes));
            if hash == served_hash {
                Read::SameContent
            } else if failed_hash.as_deref() == Some(hash.as_str()) {
                Read::StillBad
            } else {
                Read::Changed { hash, bytes }
            }
        })
        .await;
        match read {
            Err(message) => self.failed(trigger, message),
            Ok(Read::SameContent) => {
                self.last_failed_hash = None;
                if trigger != "poll" && trigger != STARTUP_CHECK {
                    tracing::debug!(trigger, "data file content unchanged");
                    self.state.set_layer_reload_status(
                        &self.settings.layer,
                        ReloadOutcome::Unchanged,
                        String::new(),
                    );
                    self.metrics.reload("unchanged");
                }
            }
            Ok(Read::StillBad) => {}
            Ok(Read::Unreadable(e)) => self.failed(trigger, e.to_string()),
            Ok(Read::Changed { hash, bytes }) => {
                let path = self.settings.path.clone();
                let format = self.settings.format;
                let limits = self.settings.limits;
                let guard = self.settings.guard;
                let state = Arc::clone(&self.state);
                let layer = self.settings.layer.clone();
                self.apply_new_content(trigger, hash, started, move || {
                    let registry = match parse_registry(&path, &bytes, format, &limits) {
                        Ok(registry) => registry,
                        Err(e) => return Applied::ParseFailed(e),
                    };
                    drop(bytes);
                    let records = registry.len();
                    match state.apply_layer(&layer, registry, &guard) {
                        Ok(Some(change)) => Applied::Changed { change, records },
                        Ok(None) => Applied::SameRecords,
                        Err(e) => Applied::Refused(e),
                    }
                })
                .await;
            }
        }
    }

    /// Runs `parse_and_apply` (the parse and [`RegistryState::apply_layer`] of
    /// content hashing to `hash`) on the blocking pool and reports its
    /// outcome; a panic in it is a failed reload of that content.
    async fn apply_new_content(
        &mut self,
        trigger: &'static str,
        hash: String,
        started: Instant,
        parse_and_apply: impl FnOnce() -> Applied + Send + 'static,
    ) {
        let applied = match on_blocking_pool("the reload", parse_and_apply).await {
            Ok(applied) => applied,
            Err(message) => {
                self.last_failed_hash = Some(hash);
                self.failed(
                    trigger,
                    format!("{}: {message}", self.settings.path.display()),
                );
                return;
            }
        };
        match applied {
            Applied::ParseFailed(e) => {
                self.last_failed_hash = Some(hash);
                self.failed(trigger, e.to_string());
            }
            Applied::Changed { change, records } => {
                self.last_failed_hash = None;
                self.state.set_layer_reload_status(
                    &self.settings.layer,
                    ReloadOutcome::Applied,
                    String::new(),
                );
                self.metrics.reload("applied");
                self.metrics.layer_reloaded(&self.settings.layer, true);
                self.metrics.registry_loaded(&self.state.snapshot());
                tracing::info!(
                    trigger,
                    layer = %self.settings.layer,
                    from_version = change.from_version,
                    to_version = change.to_version,
                    state_id = %change.to_content,
                    records,
                    added = change.diff.added.len(),
                    changed = change.diff.changed.len(),
                    removed = change.diff.removed.len(),
                    hash = %hash,
                    elapsed = ?started.elapsed(),
                    "registry reloaded"
                );
            }
            Applied::SameRecords => {
                self.last_failed_hash = None;
                self.state.set_layer_reload_status(
                    &self.settings.layer,
                    ReloadOutcome::Unchanged,
                    String::new(),
                );
                self.metrics.reload("unchanged");
                self.metrics.layer_reloaded(&self.settings.layer, true);
                self.metrics.mark_successful_load();
                tracing::info!(trigger, layer = %self.settings.layer, hash = %hash, "data file changed but its records did not");
            }
            Applied::Refused(e) => {
                self.last_failed_hash = Some(hash);
                self.failed(trigger, format!("{}: {e}", self.settings.path.display()));
            }
        }
    }

    fn failed(&self, trigger: &'static str, error: String) {
        tracing::warn!(
            trigger,
            layer = %self.settings.layer,
            error = %error,
            version = self.state.index().version(),
            "reload failed; the layer's last good records keep serving"
        );
        self.metrics.reload("failed");
        self.metrics.layer_reloaded(&self.settings.layer, false);
        self.state
            .set_layer_reload_status(&self.settings.layer, ReloadOutcome::Failed, error);
    }
}

impl Reload for Reloader {
    fn watched(&self) -> WatchedFile {
        WatchedFile {
            path: self.settings.path.clone(),
            debounce: self.settings.debounce,
            max_delay: self.settings.max_delay,
            poll_interval: self.settings.poll_interval,
        }
    }

    fn reload(&mut self, trigger: &'static str) -> impl Future<Output = ()> + Send {
        self.reload_layer(trigger)
    }
}

/// Keeps the `--mesh-hints` file served.
struct HintsReloader {
    hints: Arc<MeshHintsState>,
    settings: WatchedFile,
    metrics: Arc<Metrics>,
    /// Hash of the content that failed last (reported once, not per poll).
    last_failed_hash: Option<String>,
    /// Whether the last reload failed (so a return to the served content
    /// clears the failure).
    failing: bool,
}

/// What reading and parsing the hints file gave.
enum HintsRead {
    Unreadable(LoadError),
    SameContent,
    StillBad,
    Bad { hash: String, error: LoadError },
    New(LoadedHints),
}

impl HintsReloader {
    fn failed(&mut self, trigger: &'static str, error: String) {
        self.failing = true;
        tracing::warn!(
            trigger,
            path = %self.settings.path.display(),
            error = %error,
            "mesh hints reload failed; the last good hints keep serving"
        );
        self.metrics.mesh_hints_loaded(None);
        self.hints.set_reload_status(ReloadOutcome::Failed, error);
    }
}

impl Reload for HintsReloader {
    fn watched(&self) -> WatchedFile {
        self.settings.clone()
    }

    async fn reload(&mut self, trigger: &'static str) {
        let path = self.settings.path.clone();
        let served_hash = self.hints.content_hash();
        let failed_hash = self.last_failed_hash.clone();
        let read = on_blocking_pool("reading the mesh hints", move || {
            let bytes = match read_bounded(&path, MAX_MESH_HINTS_BYTES, "the mesh hints limit") {
                Ok(bytes) => bytes,
                Err(e) => return HintsRead::Unreadable(e),
            };
            let hash = hex::encode(Sha256::digest(&bytes));
            if hash == served_hash {
                return HintsRead::SameContent;
            }
            if failed_hash.as_deref() == Some(hash.as_str()) {
                return HintsRead::StillBad;
            }
            match parse_mesh_hints(&path, &bytes) {
                Ok(loaded) => HintsRead::New(loaded),
                Err(error) => HintsRead::Bad { hash, error },
            }
        })
        .await;
        match read {
            Err(message) => self.failed(trigger, message),
            Ok(HintsRead::Unreadable(e)) => self.failed(trigger, e.to_string()),
            Ok(HintsRead::StillBad) => {}
            Ok(HintsRead::SameContent) => {
                self.last_failed_hash = None;
                if std::mem::take(&mut self.failing) {
                    // Back to the served content after a failure.
                    self.metrics
                        .mesh_hints_loaded(Some(self.hints.current().len()));
                    self.hints
                        .set_reload_status(ReloadOutcome::Unchanged, String::new());
                } else if trigger != "poll" && trigger != STARTUP_CHECK {
                    self.hints
                        .set_reload_status(ReloadOutcome::Unchanged, String::new());
                }
            }
            Ok(HintsRead::Bad { hash, error }) => {
                self.last_failed_hash = Some(hash);
                self.failed(trigger, error.to_string());
            }
            Ok(HintsRead::New(loaded)) => {
                self.last_failed_hash = None;
                self.failing = false;
                let entries = loaded.hints.len();
                let hash = loaded.content_hash.clone();
                self.hints.apply(loaded);
                self.metrics.mesh_hints_loaded(Some(entries));
                tracing::info!(
                    trigger,
                    path = %self.settings.path.display(),
                    entries,
                    hash = %hash,
                    "mesh hints reloaded"
                );
            }
        }
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
    use crate::test_registry::numbered_registry;

    fn settings(path: &Path) -> ReloadSettings {
        ReloadSettings {
            layer: String::new(),
            path: path.to_path_buf(),
            format: None,
            debounce: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            poll_interval: Duration::from_secs(3600),
            guard: ReloadGuard::default(),
            limits: ParseLimits::default(),
        }
    }

    fn services_file(count: u16, description: &str) -> String {
        (1..=count)
            .map(|port| format!("svc{port} {port}/tcp # {description}\n"))
            .collect()
    }

    #[tokio::test]
    async fn a_panic_in_a_reload_is_a_failed_reload_and_the_reloader_carries_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("services");
        std::fs::write(&path, services_file(20, "second")).expect("write");
        let state = Arc::new(RegistryState::new(numbered_registry(20, "first"), 8));
        let metrics = Arc::new(Metrics::new());
        let mut reloader = Reloader::new(Arc::clone(&state), settings(&path), Arc::clone(&metrics));

        // The reload driver's parse-and-apply step panics (as the index
        // build did on 65,536 full-range rows).
        reloader
            .apply_new_content("test", "cafe".into(), Instant::now(), || {
                panic!("index build exploded")
            })
            .await;
        let status = state.reload_status();
        assert_eq!(status.outcome, ReloadOutcome::Failed);
        assert!(
            status
                .error
                .contains("the reload panicked: index build exploded")
                && status.error.contains(&path.display().to_string()),
            "{}",
            status.error
        );
        assert_eq!(reloader.last_failed_hash.as_deref(), Some("cafe"));
        assert!(
            metrics
                .encode()
                .contains("portolan_reload_total{outcome=\"failed\"} 1"),
            "{}",
            metrics.encode()
        );
        assert_eq!(state.snapshot().version(), 1, "nothing was applied");

        // The same reloader then applies a good file.
        reloader.reload("SIGHUP").await;
        let status = state.reload_status();
        assert_eq!(status.outcome, ReloadOutcome::Applied, "{}", status.error);
        assert_eq!(state.snapshot().version(), 2);
    }

    #[test]
    fn special_files_are_refused_without_blocking_or_reading() {
        let dir = tempfile::tempdir().expect("temp dir");
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        let err = read_data_file(&zero, 1024).expect_err("a device");
        assert!(
            err.to_string()
                .ends_with("a character device, not a regular file"),
            "{err}"
        );
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let started = Instant::now();
        let err = read_data_file(&fifo, 1024).expect_err("a FIFO");
        assert!(
            err.to_string().ends_with("a FIFO, not a regular file"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "did not block");
        let err = read_data_file(dir.path(), 1024).expect_err("a directory");
        assert!(err.to_string().contains("a directory"), "{err}");

        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2000]).expect("write");
        let err = read_data_file(&big, 1000).expect_err("too large");
        assert!(
            err.to_string()
                .ends_with("2000 bytes, over the --max-data-bytes limit of 1000"),
            "{err}"
        );
        assert_eq!(
            read_data_file(&big, 2000).expect("at the limit").len(),
            2000
        );
    }

    #[tokio::test]
    async fn a_burst_of_events_reloads_within_the_maximum_delay() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("services");
        std::fs::write(&path, services_file(20, "v0")).expect("write");
        let state = Arc::new(RegistryState::new(
            portolan_registry::parse(services_file(20, "v0").as_bytes(), None)
                .expect("parses")
                .registry,
            8,
        ));
        let mut settings = settings(&path);
        settings.debounce = Duration::from_millis(200);
        settings.max_delay = Duration::from_millis(300);
        let cancel = CancellationToken::new();
        let task = spawn(
            Arc::clone(&state),
            settings,
            Arc::new(Metrics::new()),
            cancel.clone(),
        );
        // Writes every 20 ms for 2 s never leave 200 ms of quiet.
        let started = Instant::now();
        let mut first_reload = None;
        let mut n = 0;
        while started.elapsed() < Duration::from_secs(2) {
            n += 1;
            let tmp = dir.path().join("services.tmp");
            std::fs::write(&tmp, services_file(20, &format!("v{n}"))).expect("write");
            std::fs::rename(&tmp, &path).expect("rename");
            if first_reload.is_none() && state.snapshot().version() > 1 {
                first_reload = Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cancel.cancel();
        let _ = task.await;
        let first = first_reload.expect("a reload during the burst");
        assert!(first < Duration::from_millis(1500), "{first:?}");
    }

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
