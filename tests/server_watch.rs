//! The Watch protocol against the real 2026 IANA CSV (14,512 records):
//! catch-up (heartbeat when current, a delta from a version still in the
//! history, a snapshot in parts of at most 1,000 records otherwise), exactly
//! one event per applied change with the right diff in FULL and INVALIDATE
//! modes, heartbeats, the Watch stream limit, and streams ended by the
//! server at shutdown.

mod support;

use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::watch_response::Event;
use portolan::pb::{Delta, GetRegistryInfoRequest, Record, WatchMode, WatchRequest, WatchResponse};
use portolan_test_support::shared_file;
use tonic::Streaming;
use tonic::transport::Channel;

use support::{eventually, start_server, test_args};

const FULL_CSV_RECORDS: u64 = 14_512;
const EVENT_DEADLINE: Duration = Duration::from_secs(5);

/// The CSV with https/tcp's description tagged and one extra row
/// `portolan-<tag>` on port 50000/tcp.
fn variant(base: &str, tag: &str) -> String {
    let mut text = base.replacen(
        "http protocol over TLS/SSL",
        &format!("http protocol over TLS/SSL ({tag})"),
        1,
    );
    text.push_str(&format!(
        "portolan-{tag},50000,tcp,Portolan test service {tag},,,,,,,,\r\n"
    ));
    text
}

fn replace(path: &Path, contents: &str) {
    let temporary = path.with_extension("csv.tmp");
    std::fs::write(&temporary, contents).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

async fn watch(
    client: &mut PortRegistryServiceClient<Channel>,
    known_state_id: u64,
    mode: WatchMode,
) -> Streaming<WatchResponse> {
    client
        .watch(WatchRequest {
            known_state_id,
            mode: mode as i32,
            ..WatchRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn next_event(stream: &mut Streaming<WatchResponse>) -> WatchResponse {
    tokio::time::timeout(EVENT_DEADLINE, stream.next())
        .await
        .expect("an event within the deadline")
        .expect("the stream is open")
        .expect("not an error")
}

/// The next event that is not a periodic heartbeat.
async fn next_change(stream: &mut Streaming<WatchResponse>) -> WatchResponse {
    loop {
        let event = next_event(stream).await;
        if !matches!(event.event, Some(Event::Heartbeat(_))) {
            return event;
        }
    }
}

/// Reads snapshot parts until `last`; returns (version, records, parts).
async fn read_snapshot(stream: &mut Streaming<WatchResponse>) -> (u64, u64, Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut parts = 0;
    loop {
        let event = next_change(stream).await;
        let Some(Event::Snapshot(snapshot)) = event.event else {
            panic!("expected a snapshot part, got {event:?}");
        };
        assert_eq!(event.from_version, 0);
        assert!(
            snapshot.records.len() <= 1000,
            "a part holds at most 1,000 records"
        );
        parts += 1;
        records.extend(snapshot.records);
        if snapshot.last {
            return (event.version, snapshot.total_records, records, parts);
        }
    }
}

/// The state (content id) the last event read by [`read_delta`] leads
/// from and to.
type States = (u64, u64);

/// Reads one delta (all parts); returns (from, to, merged delta, states).
async fn read_delta(stream: &mut Streaming<WatchResponse>) -> (u64, u64, Delta, States) {
    let mut merged = Delta::default();
    loop {
        let event = next_change(stream).await;
        let Some(Event::Delta(delta)) = event.event else {
            panic!("expected a delta part, got {event:?}");
        };
        merged.upserted.extend(delta.upserted);
        merged.removed.extend(delta.removed);
        merged.invalidated.extend(delta.invalidated);
        if delta.last {
            merged.last = true;
            let states = (event.from_state_id, event.state_id);
            return (event.from_version, event.version, merged, states);
        }
    }
}

fn names(records: &[Record]) -> Vec<String> {
    let mut names: Vec<String> = records.iter().filter_map(|r| r.name.clone()).collect();
    names.sort();
    names
}

fn key_names(keys: &[portolan::pb::RecordKey]) -> Vec<String> {
    let mut names: Vec<String> = keys.iter().filter_map(|k| k.name.clone()).collect();
    names.sort();
    names
}

async fn wait_for_version(client: &PortRegistryServiceClient<Channel>, version: u64) {
    eventually(EVENT_DEADLINE, &format!("version {version}"), || {
        let mut client = client.clone();
        async move {
            let info = client
                .get_registry_info(GetRegistryInfoRequest {})
                .await
                .ok()?;
            (info.into_inner().version == version).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn watchers_get_one_event_per_change_and_catch_up_by_version() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let base = std::fs::read_to_string(&csv).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("registry.csv");
    std::fs::write(&data, &base).unwrap();
    // The longest heartbeat interval allowed; periodic heartbeats are
    // skipped where they may come between the events checked.
    let mut args = test_args(Some(&data));
    args.heartbeat_interval = portolan::MAX_HEARTBEAT_INTERVAL;
    let server = start_server(args).await;
    let mut client = server.ready_client().await;

    // Version 0: a snapshot in parts totalling every record.
    let mut full = watch(&mut client, 0, WatchMode::Full).await;
    let (version, total, records, parts) = read_snapshot(&mut full).await;
    let state1 = client
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .state_id;
    assert_ne!(state1, 0);
    assert_eq!((version, total), (1, FULL_CSV_RECORDS));
    assert_eq!(records.len() as u64, FULL_CSV_RECORDS);
    assert_eq!(parts, 15);
    assert!(records.iter().all(|r| r.key.is_some()));
    let mut invalidate = watch(&mut client, 0, WatchMode::Invalidate).await;
    let (version, total, records, parts) = read_snapshot(&mut invalidate).await;
    assert_eq!(
        (version, total, records.len(), parts),
        (1, FULL_CSV_RECORDS, 0, 1)
    );

    // Change 1 -> 2: https/tcp changed, portolan-a added.
    replace(&data, &variant(&base, "a"));
    let (from, to, delta, (from_state, state2)) = read_delta(&mut full).await;
    assert_eq!((from, to), (1, 2));
    assert_eq!(from_state, state1);
    assert_ne!(state2, state1);
    assert_eq!(names(&delta.upserted), vec!["https", "portolan-a"]);
    let https = delta
        .upserted
        .iter()
        .find(|r| r.name.as_deref() == Some("https"))
        .unwrap();
    assert_eq!(https.description, "http protocol over TLS/SSL (a)");
    assert_eq!(https.key.as_ref().unwrap().port, Some(443));
    assert!(delta.removed.is_empty() && delta.invalidated.is_empty());
    let (from, to, delta, states) = read_delta(&mut invalidate).await;
    assert_eq!((from, to), (1, 2));
    assert_eq!(states, (state1, state2), "both modes name the same states");
    assert_eq!(key_names(&delta.invalidated), vec!["https", "portolan-a"]);
    assert!(delta.upserted.is_empty() && delta.removed.is_empty());

    // Change 2 -> 3: https changed again, portolan-a removed, portolan-b added.
    replace(&data, &variant(&base, "b"));
    let (from, to, delta, (_, state3)) = read_delta(&mut full).await;
    assert_eq!((from, to), (2, 3));
    assert_eq!(names(&delta.upserted), vec!["https", "portolan-b"]);
    assert_eq!(key_names(&delta.removed), vec!["portolan-a"]);
    let (from, to, delta, _) = read_delta(&mut invalidate).await;
    assert_eq!((from, to), (2, 3));
    assert_eq!(
        key_names(&delta.invalidated),
        vec!["https", "portolan-a", "portolan-b"]
    );

    // Exactly one event per change: nothing else is pending.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), next_change(&mut full))
            .await
            .is_err(),
        "no extra event after the two changes"
    );

    // Catch-up: current state -> heartbeat.
    let mut current = watch(&mut client, state3, WatchMode::Full).await;
    let event = next_event(&mut current).await;
    assert!(
        matches!(event.event, Some(Event::Heartbeat(_))),
        "{event:?}"
    );
    assert_eq!((event.from_version, event.version), (3, 3));
    assert_eq!((event.from_state_id, event.state_id), (state3, state3));

    // Catch-up: state 1 is still in the history -> one delta 1 -> 3.
    let mut behind = watch(&mut client, state1, WatchMode::Full).await;
    let (from, to, delta, states) = read_delta(&mut behind).await;
    assert_eq!((from, to), (1, 3));
    assert_eq!(states, (state1, state3));
    assert_eq!(names(&delta.upserted), vec!["https", "portolan-b"]);
    assert_eq!(key_names(&delta.removed), vec!["portolan-a"]);
    let https = delta
        .upserted
        .iter()
        .find(|r| r.name.as_deref() == Some("https"))
        .unwrap();
    assert_eq!(
        https.description, "http protocol over TLS/SSL (b)",
        "the latest content"
    );

    // A state this server never held -> snapshot.
    let mut unknown = watch(&mut client, 99, WatchMode::Full).await;
    let (version, total, records, _) = read_snapshot(&mut unknown).await;
    assert_eq!(
        (version, total, records.len() as u64),
        (3, FULL_CSV_RECORDS + 1, FULL_CSV_RECORDS + 1)
    );

    let info = client
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.version, 3);
    server.stop().await;
}

#[tokio::test]
async fn heartbeats_flow_and_the_stream_limit_holds_and_shutdown_ends_streams() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let mut args = test_args(Some(&csv));
    args.heartbeat_interval = Duration::from_millis(100);
    args.max_watch_streams = 2;
    let server = start_server(args).await;
    let mut client = server.ready_client().await;
    wait_for_version(&client, 1).await;
    let state = client
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .state_id;

    let mut first = watch(&mut client, state, WatchMode::Invalidate).await;
    for _ in 0..3 {
        let event = next_event(&mut first).await;
        assert!(
            matches!(event.event, Some(Event::Heartbeat(_))),
            "{event:?}"
        );
        assert_eq!(event.version, 1);
    }
    let mut second = watch(&mut client, state, WatchMode::Full).await;
    let _ = next_event(&mut second).await;
    let refused = client
        .watch(WatchRequest {
            mode: WatchMode::Full as i32,
            ..WatchRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );

    // Closing one stream frees its slot.
    drop(second);
    let mut third = eventually(EVENT_DEADLINE, "a free Watch slot", || {
        let mut client = client.clone();
        async move {
            client
                .watch(WatchRequest {
                    mode: WatchMode::Full as i32,
                    ..WatchRequest::default()
                })
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    })
    .await;
    let _ = next_event(&mut third).await;

    // Shutdown: the server ends open streams itself.
    let stopping = tokio::spawn(server.stop());
    let ended = tokio::time::timeout(EVENT_DEADLINE, async {
        loop {
            match first.next().await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => return Some(status),
                None => return None,
            }
        }
    })
    .await
    .expect("the server ends the Watch stream at shutdown");
    if let Some(status) = ended {
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    }
    tokio::time::timeout(EVENT_DEADLINE, stopping)
        .await
        .expect("shutdown completes within the deadline")
        .unwrap();
}
