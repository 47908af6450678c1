//! Scans: the Search and ListRecords streams. Each is a task that walks one
//! registry [`Snapshot`] and sends records as it finds them through a
//! bounded queue ([`SCAN_BUFFER`]); nothing is collected first, whatever the
//! filter or the Search limit. Each record goes out as one message
//! (`SearchResponse` or `ListRecordsResponse`, whose `records` the contract
//! lets hold several) carrying the server's kept encoding of the record
//! ([`Encodings`]), so the queue and the send timeout count records.
//!
//! # Bounds
//! A scan ends early, with the status named, when:
//! * the client takes no record for `--stream-send-timeout` (default 10 s):
//!   DEADLINE_EXCEEDED, naming the flag;
//! * it has run for `--max-scan-duration` (default 60 s), however steadily
//!   the client reads: DEADLINE_EXCEEDED, naming the flag;
//! * shutdown begins: UNAVAILABLE;
//! * the client goes away: nothing more is sent.
//!
//! The final status never waits for room in the queue: it is handed over
//! on its own channel, and the stream yields it after the records already
//! queued. So once a scan has ended its task is gone and its snapshot is
//! released, even if the client never reads again.
//!
//! # What a stalled scan pins
//! A scan whose client stops reading holds its snapshot (a registry
//! edition, shared with every other call reading that edition) for at most
//! `--stream-send-timeout` after the client last took a record, and for at
//! most `--max-scan-duration` in all. Until the client reads or goes away
//! it also holds at most [`SCAN_BUFFER`] encoded records (a few hundred
//! bytes each) plus what HTTP/2 holds for the stream: tonic's encoding
//! buffer and the data the client's flow-control window lets through. None
//! of that grows with the registry, the filter or the Search limit.
//!
//! Searches walk the snapshot in bounded steps
//! ([`portolan_registry::SearchStep`]) and yield to the runtime between
//! them, so a search with rare hits never holds a runtime worker for a
//! whole pass; a listing yields at each record it sends, and checking one
//! record against a validated filter costs a few comparisons.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures::Stream;
use portolan::reply;
use portolan_registry::{Filter, SearchQuery, SearchStep, Snapshot};
use prost::bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::encodings::Encodings;
use crate::metrics::Active;
use crate::status::ServiceError;

/// Records a scan may queue ahead of its client.
pub const SCAN_BUFFER: usize = 64;

/// The time bounds of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanSettings {
    /// `--stream-send-timeout`: the longest the client may take no record.
    pub send_timeout: Duration,
    /// `--max-scan-duration`: the longest life of a scan.
    pub max_duration: Duration,
}

/// A reply message of a scan stream: one record's encoding.
pub trait ScanReply: Send + 'static {
    /// The message carrying `record`, and the scan's version and state when
    /// it is the first (`(0, 0)` otherwise).
    fn of(record: Bytes, stamp: (u64, u64)) -> Self;
}

impl ScanReply for reply::SearchResponse {
    fn of(record: Bytes, (version, state_id): (u64, u64)) -> Self {
        Self {
            records: vec![record],
            version,
            state_id,
        }
    }
}

impl ScanReply for reply::ListRecordsResponse {
    fn of(record: Bytes, (version, state_id): (u64, u64)) -> Self {
        Self {
            records: vec![record],
            version,
            state_id,
        }
    }
}

/// The response stream of a scan: its queued records (each as a `T`),
/// then its final status (none after a complete scan).
#[derive(Debug)]
pub struct ScanStream<T> {
    records: mpsc::Receiver<Bytes>,
    /// The snapshot's version and state, until the first message takes
    /// them.
    stamp: Option<(u64, u64)>,
    end: Option<oneshot::Receiver<Option<Status>>>,
    reply: std::marker::PhantomData<fn() -> T>,
}

impl<T: ScanReply> Stream for ScanStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(record) = ready!(this.records.poll_recv(cx)) {
            let stamp = this.stamp.take().unwrap_or_default();
            return Poll::Ready(Some(Ok(T::of(record, stamp))));
        }
        // The task is gone (its sender too); its outcome was handed over
        // before that.
        let Some(end) = this.end.as_mut() else {
            return Poll::Ready(None);
        };
        let outcome = ready!(Pin::new(end).poll(cx));
        this.end = None;
        Poll::Ready(match outcome {
            Ok(None) => None,
            Ok(Some(status)) => Some(Err(status)),
            Err(_) => Some(Err(Status::internal("the scan stopped unexpectedly"))),
        })
    }
}

/// Why a scan stopped before its end.
#[derive(Debug)]
enum Stop {
    /// The client went away: there is nobody to tell.
    ClientGone,
    /// The scan was ended with this error.
    Ended(ServiceError),
}

/// The sending side of a scan, owned by its task.
struct ScanSink {
    records: mpsc::Sender<Bytes>,
    end: oneshot::Sender<Option<Status>>,
    settings: ScanSettings,
    deadline: Pin<Box<Sleep>>,
    shutdown: CancellationToken,
}

fn channel<T>(
    snapshot: &Snapshot,
    settings: ScanSettings,
    shutdown: CancellationToken,
) -> (ScanSink, ScanStream<T>) {
    let (records, records_rx) = mpsc::channel(SCAN_BUFFER);
    let (end, end_rx) = oneshot::channel();
    let sink = ScanSink {
        records,
        end,
        settings,
        deadline: Box::pin(tokio::time::sleep_until(
            Instant::now() + settings.max_duration,
        )),
        shutdown,
    };
    let stream = ScanStream {
        records: records_rx,
        stamp: Some((snapshot.version(), snapshot.content_id().0)),
        end: Some(end_rx),
        reply: std::marker::PhantomData,
    };
    (sink, stream)
}

impl ScanSink {
    fn past_max_duration(max_duration: Duration) -> Stop {
        Stop::Ended(ServiceError::DeadlineExceeded(format!(
            "the scan ran for --max-scan-duration ({}) and was ended",
            humantime::format_duration(max_duration)
        )))
    }

    fn shutting_down() -> Stop {
        Stop::Ended(ServiceError::Unavailable("server is shutting down".into()))
    }

    /// Queues one record, waiting at most `--stream-send-timeout` for room.
    async fn send(&mut self, record: Bytes) -> Result<(), Stop> {
        let ScanSettings {
            send_timeout,
            max_duration,
        } = self.settings;
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => Err(Self::shutting_down()),
            () = self.deadline.as_mut() => Err(Self::past_max_duration(max_duration)),
            sent = tokio::time::timeout(send_timeout, self.records.send(record)) => match sent {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(Stop::ClientGone),
                Err(_) => Err(Stop::Ended(ServiceError::DeadlineExceeded(format!(
                    "the client took no record for --stream-send-timeout ({}); the scan was ended",
                    humantime::format_duration(send_timeout)
                )))),
            },
        }
    }

    /// Between steps of work that sent nothing: checks the bounds and lets
    /// other tasks run.
    async fn pause(&mut self) -> Result<(), Stop> {
        if self.shutdown.is_cancelled() {
            return Err(Self::shutting_down());
        }
        if self.deadline.is_elapsed() {
            return Err(Self::past_max_duration(self.settings.max_duration));
        }
        if self.records.is_closed() {
            return Err(Stop::ClientGone);
        }
        tokio::task::yield_now().await;
        Ok(())
    }

    /// Hands over the outcome; the stream yields it after the queued
    /// records.
    fn finish(self, outcome: Result<(), Stop>) {
        let status = match outcome {
            Ok(()) => None,
            Err(Stop::ClientGone) => return,
            Err(Stop::Ended(error)) => {
                tracing::debug!(%error, "scan ended early");
                Some(Status::from(error))
            }
        };
        // The receiver is gone only when the client is.
        let _ = self.end.send(status);
    }
}

/// Streams the records of `snapshot` that pass `filter`, in scan order,
/// with their `encodings`; `active` counts the scan while its task runs.
pub fn list(
    snapshot: Arc<Snapshot>,
    encodings: Arc<Encodings>,
    filter: Filter,
    settings: ScanSettings,
    shutdown: CancellationToken,
    active: Active,
) -> ScanStream<reply::ListRecordsResponse> {
    let (mut sink, stream) = channel(&snapshot, settings, shutdown);
    tokio::spawn(async move {
        let _active = active;
        // The snapshot is dropped when `walk` returns, before the outcome
        // is handed over.
        async fn walk(
            sink: &mut ScanSink,
            snapshot: Arc<Snapshot>,
            encodings: Arc<Encodings>,
            filter: Filter,
        ) -> Result<(), Stop> {
            for (key, record) in snapshot.list(&filter) {
                sink.send(encodings.get(key, record)).await?;
            }
            Ok(())
        }
        let outcome = walk(&mut sink, snapshot, encodings, filter).await;
        sink.finish(outcome);
    });
    stream
}

/// Streams the hits of `query` in `snapshot`, best first, with their
/// `encodings`; `active` counts the scan while its task runs.
pub fn search(
    snapshot: Arc<Snapshot>,
    encodings: Arc<Encodings>,
    query: SearchQuery,
    settings: ScanSettings,
    shutdown: CancellationToken,
    active: Active,
) -> ScanStream<reply::SearchResponse> {
    let (mut sink, stream) = channel(&snapshot, settings, shutdown);
    tokio::spawn(async move {
        let _active = active;
        async fn walk(
            sink: &mut ScanSink,
            snapshot: Arc<Snapshot>,
            encodings: Arc<Encodings>,
            query: SearchQuery,
        ) -> Result<(), Stop> {
            let mut hits = snapshot.search_hits(&query);
            loop {
                match hits.step() {
                    SearchStep::Hit(_, (key, record)) => {
                        sink.send(encodings.get(key, record)).await?;
                    }
                    SearchStep::Pause => sink.pause().await?,
                    SearchStep::Done => return Ok(()),
                }
            }
        }
        let outcome = walk(&mut sink, snapshot, encodings, query).await;
        sink.finish(outcome);
    });
    stream
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::test_registry::numbered_registry;
    use futures::StreamExt as _;
    use portolan_registry::{Index, ReloadGuard};

    const SETTINGS: ScanSettings = ScanSettings {
        send_timeout: Duration::from_millis(200),
        max_duration: Duration::from_secs(600),
    };

    /// The edition a scan reads is released when the scan's client stops
    /// reading: the send timeout ends the task, which drops the snapshot,
    /// while the client still holds the stream (as h2 does until the
    /// stream's end is sent). A reload after the scan starts leaves the
    /// scan the edition's only holder.
    #[tokio::test]
    async fn an_unread_scan_ends_and_releases_its_snapshot() {
        let index = Index::new(numbered_registry(1000, "v1"));
        let encodings = Arc::new(Encodings::build(&index.snapshot()));
        let metrics = Metrics::new();
        // Both streams, as one item type: how many records each message has.
        let run = |snapshot: Arc<Snapshot>, searching: bool| {
            let (encodings, shutdown, active) = (
                Arc::clone(&encodings),
                CancellationToken::new(),
                metrics.scan_started(),
            );
            if searching {
                let query = SearchQuery {
                    limit: 1000,
                    ..SearchQuery::new("svc")
                };
                search(snapshot, encodings, query, SETTINGS, shutdown, active)
                    .map(|m| m.map(|m| m.records.len()))
                    .boxed()
            } else {
                list(
                    snapshot,
                    encodings,
                    Filter::default(),
                    SETTINGS,
                    shutdown,
                    active,
                )
                .map(|m| m.map(|m| m.records.len()))
                .boxed()
            }
        };
        for (searching, next) in [(false, "v2"), (true, "v3")] {
            let snapshot = index.snapshot();
            let edition = Arc::downgrade(&snapshot);
            let mut stream = run(snapshot, searching);
            assert!(metrics.encode().contains("portolan_scans_active 1\n"));
            // A reload moves the index on: only the scan holds the edition.
            index
                .apply(numbered_registry(1000, next), &ReloadGuard::permissive())
                .expect("applies")
                .expect("changes");
            // Nobody reads: the task fills the queue, waits the send
            // timeout, then ends, releasing the edition and no longer
            // counted as running. Poll (with a deadline) for both.
            let deadline = Instant::now() + Duration::from_secs(10);
            while edition.upgrade().is_some()
                || !metrics.encode().contains("portolan_scans_active 0\n")
            {
                assert!(
                    Instant::now() < deadline,
                    "the unread scan (search: {searching}) still runs or holds its snapshot after 10 s"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // The client then gets what was queued and the reason it ended.
            let mut queued = 0;
            let end = loop {
                match stream.next().await {
                    Some(Ok(records)) => queued += records,
                    Some(Err(status)) => break status,
                    None => panic!("the scan ended without saying why"),
                }
            };
            assert_eq!(queued, SCAN_BUFFER, "search: {searching}");
            assert_eq!(end.code(), tonic::Code::DeadlineExceeded);
            assert!(
                end.message().contains("--stream-send-timeout"),
                "{}",
                end.message()
            );
        }
    }
}
