//! The one reconnecting `Watch` driver shared by [`crate::CachedClient`]
//! (INVALIDATE mode) and [`crate::ReplicaClient`] (FULL mode).
//!
//! The driver owns what both need from a stream: opening it with the state
//! (content id) the follower holds, the heartbeat timeout, the checks that
//! an event follows that state (a heartbeat at another state, or a delta
//! from another state, means a change was missed: the stream is reopened
//! with the held state and the server sends what is missing), reconnecting
//! with jittered backoff, and publishing [`Progress`] on a
//! [`tokio::sync::watch`] channel that `wait_live`, `wait_for_version` and
//! `wait_for_state` wait on. A [`Follower`] only says what an event does to
//! its own state.
//!
//! States, not versions, are compared: a version is one server process's
//! sequence, so a stream resumed on another replica (or on a restarted
//! server) continues from the content held, whatever it was numbered
//! there. A heartbeat at the held state is passed to the follower too, so
//! that it can take up the new server's version.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::types::{WatchEvent, WatchEventKind, WatchMode};
use crate::{Client, RetryPolicy};

/// Where a follower stands, as the driver publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Progress {
    /// The version the follower holds completely, as its server counts.
    pub version: u64,
    /// The state (content id) the follower holds completely (0 = none).
    pub state_id: u64,
    /// Whether the stream is connected and caught up.
    pub live: bool,
    /// How many times the stream was opened.
    pub connects: u64,
    /// Heartbeats or deltas that did not follow the held state (each
    /// reopened the stream).
    pub resyncs: u64,
}

/// What a follower holds completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Held {
    /// The version, as the server it came from counts (0 = nothing from a
    /// server yet).
    pub version: u64,
    /// The content id (0 = nothing the stream can resume from).
    pub state_id: u64,
}

/// What a follower does with the events of its stream.
pub(crate) trait Follower: Send + Sync + 'static {
    /// The mode the stream is opened in.
    const MODE: WatchMode;

    /// What is held completely.
    fn held(&self) -> Held;

    /// Applies a snapshot part, a delta part from [`Self::held`]'s state,
    /// or a heartbeat at that state (whose version the follower takes up).
    /// `Ok(true)` once the follower holds `event.state_id` completely (the
    /// part was the last); an error ends the stream with that reason.
    fn apply(&self, event: WatchEvent) -> impl Future<Output = Result<bool, String>> + Send;

    /// Told when the stream becomes live or stops being live.
    fn set_live(&self, live: bool);
}

/// The stream's timing.
#[derive(Debug, Clone)]
pub(crate) struct DriverConfig {
    /// The stream is treated as broken when no event arrives for this long.
    pub heartbeat_timeout: Duration,
    /// Backoff between reconnection attempts.
    pub reconnect: RetryPolicy,
}

/// A running driver: its progress, and the task, stopped when the last
/// clone of the owner drops this.
#[derive(Debug)]
pub(crate) struct Driver {
    progress: watch::Receiver<Progress>,
    _task: DropGuard,
}

impl Driver {
    /// Starts following `client`'s `Watch` stream. Must be called in a
    /// tokio runtime.
    pub fn start<F: Follower>(follower: Arc<F>, client: Client, config: DriverConfig) -> Self {
        let held = follower.held();
        let (progress, receiver) = watch::channel(Progress {
            version: held.version,
            state_id: held.state_id,
            ..Progress::default()
        });
        let token = CancellationToken::new();
        tokio::spawn(run(follower, client, config, progress, token.clone()));
        Self {
            progress: receiver,
            _task: token.drop_guard(),
        }
    }

    /// The latest progress.
    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Waits until the stream is live, at most `timeout`; returns whether
    /// it is.
    pub async fn wait_live(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |p| p.live).await
    }

    /// Waits until the follower holds `version` or later (as its server
    /// counts) and the stream is live, at most `timeout`.
    pub async fn wait_for_version(&self, version: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |p| p.live && p.version >= version)
            .await
    }

    /// Waits until the follower holds the state `state_id` and the stream
    /// is live, at most `timeout`.
    pub async fn wait_for_state(&self, state_id: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |p| p.live && p.state_id == state_id)
            .await
    }

    /// Waits until `ready` holds for the progress, at most `timeout`;
    /// returns whether it did.
    async fn wait_until(&self, timeout: Duration, ready: impl FnMut(&Progress) -> bool) -> bool {
        let mut progress = self.progress.clone();
        matches!(
            tokio::time::timeout(timeout, progress.wait_for(ready)).await,
            Ok(Ok(_))
        )
    }
}

async fn run<F: Follower>(
    follower: Arc<F>,
    client: Client,
    config: DriverConfig,
    progress: watch::Sender<Progress>,
    cancel: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let why = tokio::select! {
            () = cancel.cancelled() => return,
            why = session(&*follower, &client, &config, &progress, &mut failures) => why,
        };
        follower.set_live(false);
        progress.send_modify(|p| p.live = false);
        let held = follower.held();
        tracing::debug!(%why, version = held.version, state_id = format!("{:016x}", held.state_id), mode = ?F::MODE, "watch stream ended; reconnecting");
        let delay = config.reconnect.backoff(failures);
        failures = failures.saturating_add(1);
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One stream's life; returns why it ended.
async fn session<F: Follower>(
    follower: &F,
    client: &Client,
    config: &DriverConfig,
    progress: &watch::Sender<Progress>,
    failures: &mut u32,
) -> String {
    let mut stream = match client.watch(follower.held().state_id, F::MODE).await {
        Ok(stream) => stream,
        Err(e) => return e.to_string(),
    };
    progress.send_modify(|p| p.connects += 1);
    let resync = |why: String| {
        progress.send_modify(|p| p.resyncs += 1);
        format!("{why}: resync")
    };
    loop {
        let event = match tokio::time::timeout(config.heartbeat_timeout, stream.next()).await {
            Err(_) => return "no event within the heartbeat timeout".into(),
            Ok(None) => return "stream ended by the server".into(),
            Ok(Some(Err(e))) => return e.to_string(),
            Ok(Some(Ok(event))) => event,
        };
        let held = follower.held().state_id;
        let caught_up = match event.kind {
            WatchEventKind::Heartbeat if event.state_id != held => {
                return resync(format!(
                    "heartbeat at state {:016x} while holding {held:016x}",
                    event.state_id
                ));
            }
            WatchEventKind::Delta { .. } if event.from_state_id != held => {
                return resync(format!(
                    "delta from state {:016x} while holding {held:016x}",
                    event.from_state_id
                ));
            }
            _ => match follower.apply(event).await {
                Ok(caught_up) => caught_up,
                Err(why) => return why,
            },
        };
        if caught_up {
            follower.set_live(true);
            let held = follower.held();
            progress.send_if_modified(|p| {
                let changed = !p.live || p.version != held.version || p.state_id != held.state_id;
                (p.live, p.version, p.state_id) = (true, held.version, held.state_id);
                changed
            });
        }
        *failures = 0;
    }
}
