//! The Watch stream: one task per stream that brings the caller up to date
//! (heartbeat, catch-up delta or snapshot), then forwards every applied
//! change, sends heartbeats, and ends the stream on shutdown, at its maximum
//! lifetime (counted from the stream's start, first snapshot included),
//! when the caller goes away, or when the caller does not take a message
//! within `--stream-send-timeout` (it stopped reading).
//!
//! The stream's Watch slots (global and per connection, [`Slots`]) belong
//! to the [`WatchStream`] body, not to the task: they are released when
//! HTTP/2 is done with the stream, because until then the stream still
//! holds memory (a stalled reader's queued message, HTTP/2's buffered
//! frames), and the slots are what bounds that memory.
//!
//! Large snapshots and deltas are split into parts of at most
//! [`MAX_PART_RECORDS`] records (or keys), the last part flagged `last`.
//! A stream that falls more than the broadcast's capacity behind (a slow
//! receiver) is resynchronised with a snapshot of the current version.
//!
//! Events are [`reply::WatchResponse`]s: their records are the server's
//! kept encodings ([`Encodings`]) and their keys are encoded once per
//! event, so an event built once per change and mode is sent by every
//! stream as a copy that shares its bytes.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use portolan::reply::{self, watch_response::Event};
use portolan::{pb, reply::encode_key};
use portolan_registry::diff::KeyedRecord;
use portolan_registry::{Change, ContentId, Filter, RecordKey, Snapshot};
use prost::bytes::Bytes;
use rand::Rng as _;
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::encodings::Encodings;
use crate::limits::ConnectionSlot;
use crate::metrics::Metrics;
use crate::state::{CatchUp, RegistryState, WatchStart};
use crate::validate::{WatchMode, WatchParams};

/// Most records (FULL) or keys (INVALIDATE) in one snapshot or delta part.
pub const MAX_PART_RECORDS: usize = 1000;

/// How many events may wait for a slow receiver before the stream task
/// stops reading the broadcast (and so, eventually, lags and resyncs).
/// One: a stalled FULL stream then holds one decoded snapshot part (the
/// queued one; the next is built only once there is room for it) besides
/// what HTTP/2 buffers, and drops even that at its send timeout; with
/// `--max-watch-streams` receivers that never read, that is what bounds
/// memory.
const OUTBOX: usize = 1;

/// The filter that passes every record (snapshots are never filtered).
static EVERYTHING: std::sync::LazyLock<Filter> = std::sync::LazyLock::new(Filter::default);

/// Timing of Watch streams.
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// Interval between heartbeats.
    pub heartbeat_interval: Duration,
    /// Maximum lifetime of one stream from its start (jitter of up to 10%
    /// is subtracted so that streams opened together do not all end
    /// together).
    pub max_stream_lifetime: Duration,
    /// Longest wait for the client to take one message.
    pub send_timeout: Duration,
}

/// The Watch slots one stream holds.
#[derive(Debug)]
pub struct Slots {
    /// One of `--max-watch-streams`.
    pub global: OwnedSemaphorePermit,
    /// One of `--max-watch-streams-per-connection` (none when the
    /// connection has no remote address, e.g. in-memory transports).
    pub connection: Option<ConnectionSlot>,
}

type Outbox = Arc<Mutex<mpsc::Receiver<Result<reply::WatchResponse, Status>>>>;

/// The stream a Watch handler returns: the task's outbox, and the stream's
/// Watch slots, released when the body is dropped.
#[derive(Debug)]
pub struct WatchStream {
    outbox: Outbox,
    _slots: Slots,
}

impl futures::Stream for WatchStream {
    type Item = Result<reply::WatchResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .poll_recv(cx)
    }
}

/// Starts the task behind one Watch stream. `slots` are held until the
/// returned stream is dropped.
pub fn spawn(
    state: Arc<RegistryState>,
    params: WatchParams,
    settings: WatchSettings,
    cancel: CancellationToken,
    slots: Slots,
    metrics: Arc<Metrics>,
) -> WatchStream {
    let (tx, rx) = mpsc::channel(OUTBOX);
    let outbox: Outbox = Arc::new(Mutex::new(rx));
    let start = state.watch_start(params.known_state);
    // Weak: the body owns the receiver, so that dropping the body closes
    // the channel and the task notices the client went away.
    let task_outbox = Arc::downgrade(&outbox);
    // Counted from now: a first snapshot the client never takes counts.
    let end_of_life = tokio::time::Instant::now() + jittered(settings.max_stream_lifetime);
    tokio::spawn(async move {
        let _active = metrics.watch_stream_started();
        let mut stream = StreamTask {
            tx,
            cancel,
            mode: params.mode,
            send_timeout: settings.send_timeout,
        };
        let run = stream.run(state, settings, start);
        match tokio::time::timeout_at(end_of_life, run).await {
            Ok(Ended::Stalled) => {
                tracing::debug!(
                    send_timeout = ?settings.send_timeout,
                    "watch client stopped reading; ending the stream"
                );
                // Nobody will read what waits in the outbox: free it now
                // rather than when the connection goes.
                if let Some(outbox) = task_outbox.upgrade() {
                    let mut outbox = outbox.lock().unwrap_or_else(PoisonError::into_inner);
                    outbox.close();
                    while outbox.try_recv().is_ok() {}
                }
            }
            Ok(Ended::Over) => {}
            Err(_) => tracing::debug!("watch stream reached its maximum lifetime"),
        }
    });
    WatchStream {
        outbox,
        _slots: slots,
    }
}

struct StreamTask {
    tx: mpsc::Sender<Result<reply::WatchResponse, Status>>,
    cancel: CancellationToken,
    mode: WatchMode,
    send_timeout: Duration,
}

/// Why the stream is over.
enum Ended {
    /// The client went away, or shutdown began.
    Over,
    /// The client did not take a message within the send timeout.
    Stalled,
}

type Permit<'a> = mpsc::Permit<'a, Result<reply::WatchResponse, Status>>;

impl StreamTask {
    async fn run(
        &mut self,
        state: Arc<RegistryState>,
        settings: WatchSettings,
        start: WatchStart,
    ) -> Ended {
        let WatchStart {
            changes: mut receiver,
            snapshot,
            catch_up,
        } = start;
        let mut version = snapshot.version();
        let mut state_id = snapshot.content_id();
        let first = match catch_up {
            CatchUp::Current => self.send(heartbeat(version, state_id)).await,
            CatchUp::Changes(changes) => {
                let events = delta_events(&changes, self.mode, state.encodings());
                self.send_all(&events).await
            }
            CatchUp::Snapshot => self.send_snapshot(&snapshot, state.encodings()).await,
        };
        if let Err(ended) = first {
            return ended;
        }
        drop(snapshot);

        let period = settings.heartbeat_interval.max(Duration::from_millis(10));
        let mut heartbeats = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        heartbeats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            let sent = tokio::select! {
                biased;
                () = self.cancel.cancelled() => {
                    let _ = self.tx.try_send(Err(Status::unavailable("server is shutting down")));
                    return Ended::Over;
                }
                () = self.tx.closed() => return Ended::Over,
                received = receiver.recv() => match received {
                    Ok(published) if published.change.to_version <= version => Ok(()),
                    Ok(published) if published.change.from_version == version => {
                        version = published.change.to_version;
                        state_id = published.change.to_content;
                        let events = published.events(self.mode, state.encodings());
                        self.send_all(&events).await
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        tracing::info!(version, "watch stream fell behind; resyncing with a snapshot");
                        let snapshot = state.snapshot();
                        version = snapshot.version();
                        state_id = snapshot.content_id();
                        self.send_snapshot(&snapshot, state.encodings()).await
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ended::Over,
                },
                _ = heartbeats.tick() => self.send(heartbeat(version, state_id)).await,
            };
            if let Err(ended) = sent {
                return ended;
            }
        }
    }

    /// Room for one message in the outbox, waiting at most the send
    /// timeout for the client to take the one before.
    async fn reserve(&self) -> Result<Permit<'_>, Ended> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(Ended::Over),
            reserved = tokio::time::timeout(self.send_timeout, self.tx.reserve()) => match reserved {
                Ok(Ok(permit)) => Ok(permit),
                Ok(Err(_)) => Err(Ended::Over),
                Err(_) => Err(Ended::Stalled),
            },
        }
    }

    async fn send(&self, event: reply::WatchResponse) -> Result<(), Ended> {
        self.reserve().await?.send(Ok(event));
        Ok(())
    }

    /// Sends a snapshot, building each part only once there is room for it
    /// (a stalled client then costs one queued part, not two).
    async fn send_snapshot(&self, snapshot: &Snapshot, encodings: &Encodings) -> Result<(), Ended> {
        let mut events = snapshot_events(snapshot, self.mode, encodings);
        loop {
            let permit = self.reserve().await?;
            match events.next() {
                Some(event) => permit.send(Ok(event)),
                None => return Ok(()),
            }
        }
    }

    async fn send_all(&self, events: &[reply::WatchResponse]) -> Result<(), Ended> {
        for event in events {
            self.send(event.clone()).await?;
        }
        Ok(())
    }
}

fn jittered(lifetime: Duration) -> Duration {
    let fraction: f64 = rand::rng().random_range(0.0..0.1);
    lifetime.mul_f64(1.0 - fraction)
}

/// A heartbeat at `version` and `state_id`.
pub fn heartbeat(version: u64, state_id: ContentId) -> reply::WatchResponse {
    reply::WatchResponse {
        from_version: version,
        version,
        event: Some(Event::Heartbeat(pb::Heartbeat {})),
        from_state_id: state_id.0,
        state_id: state_id.0,
    }
}

/// The events of a snapshot: FULL mode in parts of at most
/// [`MAX_PART_RECORDS`] records in ListRecords order; INVALIDATE mode one
/// part without records.
pub fn snapshot_events<'a>(
    snapshot: &'a Snapshot,
    mode: WatchMode,
    encodings: &'a Encodings,
) -> impl Iterator<Item = reply::WatchResponse> + 'a {
    let version = snapshot.version();
    let state_id = snapshot.content_id().0;
    let total = snapshot.len();
    let event = move |records: Vec<Bytes>, last: bool| reply::WatchResponse {
        from_version: 0,
        version,
        event: Some(Event::Snapshot(reply::Snapshot {
            records,
            last,
            total_records: total as u64,
        })),
        from_state_id: 0,
        state_id,
    };
    let parts: Box<dyn Iterator<Item = reply::WatchResponse> + Send + 'a> = match mode {
        WatchMode::Invalidate => Box::new(std::iter::once(event(Vec::new(), true))),
        WatchMode::Full => {
            let part_count = total.div_ceil(MAX_PART_RECORDS).max(1);
            let mut records = snapshot
                .list(&EVERYTHING)
                .map(|(key, record)| encodings.get(key, record));
            Box::new((0..part_count).map(move |part| {
                let chunk: Vec<Bytes> = records.by_ref().take(MAX_PART_RECORDS).collect();
                event(chunk, part + 1 == part_count)
            }))
        }
    };
    parts
}

/// Upserts and removals that take a holder of `changes[0].from_version` to
/// the last change's version (a key changed several times appears once,
/// with its final content or as removed).
fn compose(changes: &[Arc<Change>]) -> (Vec<KeyedRecord>, Vec<RecordKey>) {
    if let [change] = changes {
        let upserts = change
            .diff
            .upserts()
            .map(|(k, r)| (k.clone(), Arc::clone(r)))
            .collect();
        let removed = change.diff.removed.iter().map(|(k, _)| k.clone()).collect();
        return (upserts, removed);
    }
    let mut order: Vec<RecordKey> = Vec::new();
    let mut last: HashMap<RecordKey, Option<Arc<portolan_registry::Record>>> = HashMap::new();
    let mut note = |key: &RecordKey, record: Option<&Arc<portolan_registry::Record>>| {
        if !last.contains_key(key) {
            order.push(key.clone());
        }
        last.insert(key.clone(), record.cloned());
    };
    for change in changes {
        for (key, record) in change.diff.upserts() {
            note(key, Some(record));
        }
        for (key, _) in &change.diff.removed {
            note(key, None);
        }
    }
    let mut upserts = Vec::new();
    let mut removed = Vec::new();
    for key in order {
        match last.remove(&key).flatten() {
            Some(record) => upserts.push((key, record)),
            None => removed.push(key),
        }
    }
    (upserts, removed)
}

/// The events of the delta that `changes` (consecutive, oldest first, at
/// least one) make together, in parts of at most [`MAX_PART_RECORDS`]
/// records and keys together.
///
/// In INVALIDATE mode, a delta touching more keys than one part holds is
/// sent as a snapshot instead (one small message meaning "forget
/// everything"): dropping a whole cache costs its owner less than receiving
/// and applying thousands of keys, and it costs the server one message per
/// stream instead of thousands of keys per stream.
pub fn delta_events(
    changes: &[Arc<Change>],
    mode: WatchMode,
    encodings: &Encodings,
) -> Vec<reply::WatchResponse> {
    let (Some(first), Some(final_change)) = (changes.first(), changes.last()) else {
        return Vec::new();
    };
    let (from, to) = (first.from_version, final_change.to_version);
    let (from_state, to_state) = (first.from_content.0, final_change.to_content.0);
    let event = |delta: reply::Delta| reply::WatchResponse {
        from_version: from,
        version: to,
        event: Some(Event::Delta(delta)),
        from_state_id: from_state,
        state_id: to_state,
    };
    let (upserts, removed) = compose(changes);
    let mut deltas: Vec<reply::Delta> = Vec::new();
    match mode {
        WatchMode::Full => {
            let mut current = reply::Delta::default();
            for (key, record) in &upserts {
                if current.upserted.len() + current.removed.len() == MAX_PART_RECORDS {
                    deltas.push(std::mem::take(&mut current));
                }
                current.upserted.push(encodings.get(key, record));
            }
            for key in &removed {
                if current.upserted.len() + current.removed.len() == MAX_PART_RECORDS {
                    deltas.push(std::mem::take(&mut current));
                }
                current.removed.push(encode_key(key));
            }
            deltas.push(current);
        }
        WatchMode::Invalidate if upserts.len() + removed.len() > MAX_PART_RECORDS => {
            return vec![reply::WatchResponse {
                from_version: 0,
                version: to,
                event: Some(Event::Snapshot(reply::Snapshot {
                    records: Vec::new(),
                    last: true,
                    total_records: final_change.records_after as u64,
                })),
                from_state_id: 0,
                state_id: to_state,
            }];
        }
        WatchMode::Invalidate => {
            let keys: Vec<Bytes> = upserts
                .iter()
                .map(|(k, _)| k)
                .chain(removed.iter())
                .map(encode_key)
                .collect();
            if keys.is_empty() {
                deltas.push(reply::Delta::default());
            }
            for chunk in keys.chunks(MAX_PART_RECORDS) {
                deltas.push(reply::Delta {
                    invalidated: chunk.to_vec(),
                    ..reply::Delta::default()
                });
            }
            // The aliases too: a key names only its record's primary name.
            let mut names: Vec<String> = changes
                .iter()
                .flat_map(|c| c.diff.touched_names())
                .collect();
            names.sort_unstable();
            names.dedup();
            if let Some(last) = deltas.last_mut() {
                last.invalidated_names = names;
            }
        }
    }
    if let Some(last) = deltas.last_mut() {
        last.last = true;
    }
    deltas.into_iter().map(event).collect()
}

#[cfg(test)]
mod tests {
    use portolan_registry::{Index, ReloadGuard};

    use super::*;
    use crate::test_registry::numbered_registry as registry;

    fn change(count: u16) -> (Arc<Change>, Encodings) {
        let index = Index::new(registry(count, "old"));
        let encodings = Encodings::build(&index.snapshot());
        let change = index
            .apply(registry(count, "new"), &ReloadGuard::default())
            .expect("applies")
            .expect("changes");
        encodings.patch(&change.diff);
        (Arc::new(change), encodings)
    }

    fn events(count: u16, mode: WatchMode) -> Vec<reply::WatchResponse> {
        let (change, encodings) = change(count);
        delta_events(&[change], mode, &encodings)
    }

    /// A key names only its record's primary name, so an INVALIDATE delta
    /// also names the aliases of the old and the new content (folded).
    #[test]
    fn an_invalidation_names_the_old_and_new_aliases() {
        let mut old = registry(10, "same");
        old.records[0].aliases = vec!["www".into()];
        let mut new = old.clone();
        new.records[0].aliases = vec!["Web".into()];
        let index = Index::new(old);
        let encodings = Encodings::build(&index.snapshot());
        let change = index
            .apply(new, &ReloadGuard::default())
            .expect("applies")
            .expect("changes");
        encodings.patch(&change.diff);
        let events = delta_events(&[Arc::new(change)], WatchMode::Invalidate, &encodings);
        assert_eq!(events.len(), 1);
        let Some(Event::Delta(delta)) = &events[0].event else {
            panic!("a delta: {:?}", events[0]);
        };
        assert!(delta.last);
        assert_eq!(delta.invalidated.len(), 1);
        assert_eq!(delta.invalidated_names, ["svc1", "web", "www"]);
    }

    #[test]
    fn a_small_invalidation_is_one_delta_of_keys() {
        let events = events(10, WatchMode::Invalidate);
        assert_eq!(events.len(), 1);
        let Some(Event::Delta(delta)) = &events[0].event else {
            panic!("expected a delta: {events:?}");
        };
        assert_eq!(delta.invalidated.len(), 10);
        assert!(delta.upserted.is_empty() && delta.last);
        assert_eq!((events[0].from_version, events[0].version), (1, 2));
    }

    #[test]
    fn a_large_invalidation_becomes_one_forget_everything_snapshot() {
        let events = events(2500, WatchMode::Invalidate);
        assert_eq!(events.len(), 1, "one message instead of 2,500 keys");
        let Some(Event::Snapshot(snapshot)) = &events[0].event else {
            panic!("expected a snapshot: {events:?}");
        };
        assert!(snapshot.records.is_empty() && snapshot.last);
        assert_eq!(snapshot.total_records, 2500);
        assert_eq!((events[0].from_version, events[0].version), (0, 2));
    }

    #[test]
    fn a_large_full_delta_is_split_into_parts() {
        let events = events(2500, WatchMode::Full);
        let sizes: Vec<(usize, bool)> = events
            .iter()
            .map(|e| match &e.event {
                Some(Event::Delta(d)) => (d.upserted.len(), d.last),
                other => panic!("expected deltas: {other:?}"),
            })
            .collect();
        assert_eq!(sizes, [(1000, false), (1000, false), (500, true)]);
    }
}
