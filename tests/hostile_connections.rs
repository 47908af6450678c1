//! Hostile connections against a real server on `127.0.0.1:0` serving the
//! real 2026 IANA CSV: clients that hold calls open without sending their
//! body, that never read their Watch streams, or that pipeline BatchLookup
//! items faster than they read the answers. A raw HTTP/2 client (the `h2`
//! crate) does what tonic's client would not.
//!
//! * calls that send headers and never a body, on several connections, as
//!   many as each may carry: health checks and other clients' lookups keep
//!   answering (p99 printed), and the stalled calls end at
//!   `--request-timeout`;
//! * FULL-mode Watch streams that are never read, holding every slot of the
//!   real binary: its VmRSS stays under the bound the flags document, one
//!   connection cannot take more than its share of slots, and the stalled
//!   streams are ended (send timeout, lifetime, then the connection's
//!   GOAWAY grace) so that other clients' Watch streams are accepted again;
//!
//! Pipelined BatchLookup (20,000 and 100,000 items from grpcio) is covered by
//! `tests/python/test_interop.py`.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::{LookupPortRequest, Protocol, WatchMode, WatchRequest, watch_response};
use portolan_test_support::shared_file;
use prost::bytes::Bytes;
use tokio::net::TcpStream;
use tonic::Code;
use tonic::codegen::http;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use support::{ServerProcess, eventually, start_server, test_args};

/// Generous bound for one call of a client that is not misbehaving.
const ANSWERED_WITHIN: Duration = Duration::from_secs(1);

/// A raw HTTP/2 connection; the connection task runs in the background.
async fn raw_connection(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (requests, connection) = h2::client::Builder::new()
        .handshake::<_, Bytes>(tcp)
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("raw HTTP/2 connection ended: {e}");
        }
    });
    requests
}

/// The headers of a gRPC call of PortRegistryService method `method`.
fn grpc_request(addr: SocketAddr, method: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{addr}/portolan.v1.PortRegistryService/{method}"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a request")
}

/// The gRPC status of a finished response: from its headers (a
/// trailers-only response) or its trailers.
async fn grpc_status(response: http::Response<h2::RecvStream>) -> Option<i32> {
    let status = |map: &http::HeaderMap| {
        map.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    };
    if let Some(code) = status(response.headers()) {
        return Some(code);
    }
    let mut body = response.into_body();
    while let Some(data) = body.data().await {
        let data = data.ok()?;
        let _ = body.flow_control().release_capacity(data.len());
    }
    status(&body.trailers().await.ok()??)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

#[tokio::test]
async fn calls_without_a_body_do_not_starve_health_or_other_clients() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let mut args = test_args(Some(&csv));
    args.request_timeout = Duration::from_secs(2);
    let server = start_server(args).await;
    let mut client = server.ready_client().await;

    // Four connections, each opening as many LookupPort calls as the server
    // lets one connection have, each sending its headers and never a body.
    const CONNECTIONS: usize = 4;
    let opened_at = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut requests = raw_connection(server.addr).await;
        // Wait for the server's SETTINGS (its stream limit) to arrive.
        requests = requests.ready().await.expect("connection ready");
        let mut opened = 0;
        loop {
            let ready = tokio::time::timeout(Duration::from_millis(300), requests.clone().ready());
            let Ok(Ok(mut ready)) = ready.await else {
                break; // at the connection's limit: h2 holds further calls
            };
            let (response, body) = ready
                .send_request(grpc_request(server.addr, "LookupPort"), false)
                .expect("open a call");
            stalled.push((response, body));
            opened += 1;
            if opened == portolan_server::MAX_STREAMS_PER_CONNECTION as usize {
                break;
            }
        }
        assert!(
            opened >= 100,
            "a connection carries at least 100 calls: {opened}"
        );
    }
    let open_calls = stalled.len();

    // Meanwhile health and other clients' lookups are answered promptly.
    let channel = Channel::from_shared(server.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    let mut other = PortRegistryServiceClient::new(channel);
    let mut health_times = Vec::new();
    let mut lookup_times = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let reply = tokio::time::timeout(
            ANSWERED_WITHIN,
            health.check(HealthCheckRequest {
                service: String::new(),
            }),
        )
        .await
        .expect("health answered within 1 s during the attack")
        .expect("health check");
        assert_eq!(reply.into_inner().status, ServingStatus::Serving as i32);
        health_times.push(started.elapsed());

        let started = Instant::now();
        let answer = tokio::time::timeout(
            ANSWERED_WITHIN,
            other.lookup_port(LookupPortRequest {
                port: 443,
                protocol: Protocol::Tcp as i32,
            }),
        )
        .await
        .expect("a lookup answered within 1 s during the attack")
        .expect("lookup 443/tcp")
        .into_inner();
        assert_eq!(answer.records[0].name.as_deref(), Some("https"));
        lookup_times.push(started.elapsed());
    }
    health_times.sort();
    lookup_times.sort();
    eprintln!(
        "{open_calls} calls without a body on {CONNECTIONS} connections: health p50 {:?} p99 {:?}; \
         lookup p50 {:?} p99 {:?}",
        percentile(&health_times, 0.5),
        percentile(&health_times, 0.99),
        percentile(&lookup_times, 0.5),
        percentile(&lookup_times, 0.99),
    );
    // The existing client too.
    let answer = client
        .lookup_port(LookupPortRequest {
            port: 22,
            protocol: Protocol::Tcp as i32,
        })
        .await
        .expect("lookup 22/tcp")
        .into_inner();
    assert_eq!(answer.records[0].name.as_deref(), Some("ssh"));

    // Every stalled call ends with an error status at --request-timeout
    // (2 s here), not at some longer handler timeout.
    let deadline = opened_at + Duration::from_secs(2) + Duration::from_secs(5);
    for (response, _body) in stalled {
        let response = tokio::time::timeout_at(deadline.into(), response)
            .await
            .expect("the call without a body ended by the request timeout");
        match response {
            Ok(response) => {
                let code = grpc_status(response).await.expect("a grpc-status");
                assert_ne!(code, Code::Ok as i32);
            }
            // Opened before the client read the server's SETTINGS, beyond
            // the connection's limit: refused, never served.
            Err(e) => assert_eq!(e.reason(), Some(h2::Reason::REFUSED_STREAM), "{e}"),
        }
    }
    eprintln!(
        "every call without a body ended {:?} after the first opened",
        opened_at.elapsed()
    );
    server.stop().await;
}

/// A client on its own connection whose receive windows are the protocol
/// minimum, so a stream it does not read stalls the server after 64 KiB.
async fn connect_small_window(addr: SocketAddr) -> PortRegistryServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .expect("connect");
    PortRegistryServiceClient::new(channel)
}

const FULL: WatchRequest = WatchRequest {
    known_version: 0,
    known_state_id: 0,
    mode: WatchMode::Full as i32,
};

/// The pod's memory limit in deploy/kubernetes/base/deployment.yaml.
const POD_LIMIT_KIB: u64 = 256 * 1024;

#[tokio::test]
async fn watch_readers_that_never_read_are_ended_and_bounded() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    // Default slot counts (the bound under test); short lifetimes so the
    // test sees the end of it.
    let server = ServerProcess::start(
        &csv,
        &[
            "--max-stream-lifetime",
            "8s",
            "--stream-send-timeout",
            "2s",
            "--max-connection-age-grace",
            "2s",
        ],
    );
    let defaults = portolan_server::Args::defaults();
    let (slots, per_connection) = (
        defaults.max_watch_streams,
        defaults.max_watch_streams_per_connection,
    );
    let mut client = eventually(Duration::from_secs(30), "the server to load", || async {
        let mut client = PortRegistryServiceClient::connect(format!("http://{}", server.addr))
            .await
            .ok()?;
        client
            .lookup_port(LookupPortRequest {
                port: 443,
                protocol: 0,
            })
            .await
            .ok()?;
        Some(client)
    })
    .await;
    // Warm up with one FULL watch read through its snapshot.
    let mut warm = client.watch(FULL).await.expect("watch").into_inner();
    loop {
        let event = warm.message().await.expect("event").expect("an event");
        if let Some(watch_response::Event::Snapshot(part)) = event.event
            && part.last
        {
            break;
        }
    }
    drop(warm);
    let baseline = server.rss_kib();

    // One connection takes its share of slots and no more.
    let started = Instant::now();
    let mut stalled = Vec::new();
    let mut greedy = connect_small_window(server.addr).await;
    for _ in 0..per_connection {
        let stream = greedy
            .watch(FULL)
            .await
            .expect("within the per-connection limit");
        stalled.push(stream.into_inner());
    }
    let refused = greedy
        .watch(FULL)
        .await
        .expect_err("beyond the per-connection limit");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("per connection"), "{refused:?}");
    let mut clients = vec![greedy];

    // Other connections take every remaining slot, never reading either.
    while stalled.len() < slots {
        let mut stalled_client = connect_small_window(server.addr).await;
        for _ in 0..per_connection.min(slots - stalled.len()) {
            let stream = stalled_client.watch(FULL).await.expect("a free slot");
            stalled.push(stream.into_inner());
        }
        clients.push(stalled_client);
    }
    let refused = connect_small_window(server.addr)
        .await
        .watch(FULL)
        .await
        .expect_err("every slot is held");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");

    // Let every stalled stream fill what flow control lets it, then read
    // the peak while other calls are still served.
    let mut peak = 0;
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        peak = peak.max(server.rss_kib());
        let answer = tokio::time::timeout(
            ANSWERED_WITHIN,
            client.lookup_port(LookupPortRequest {
                port: 443,
                protocol: Protocol::Tcp as i32,
            }),
        )
        .await
        .expect("served while every Watch slot is stalled")
        .expect("lookup");
        assert_eq!(
            answer.into_inner().records[0].name.as_deref(),
            Some("https")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let per_stream = peak.saturating_sub(baseline) / slots as u64;
    eprintln!(
        "server VmRSS: {baseline} KiB at rest; peak {peak} KiB with {slots} stalled FULL \
         watches ({per_stream} KiB each)"
    );
    assert!(
        peak < POD_LIMIT_KIB * 3 / 4,
        "every Watch slot held by a stalled reader: {peak} KiB, over 3/4 of the pod limit"
    );

    // The stalled streams are ended (send timeout, then the connection's
    // GOAWAY at the lifetime and its hard close after the grace), their
    // slots freed: a new client's Watch is accepted and served.
    let mut fresh = eventually(Duration::from_secs(30), "a freed Watch slot", || async {
        let mut fresh = PortRegistryServiceClient::connect(format!("http://{}", server.addr))
            .await
            .ok()?;
        let stream = fresh.watch(FULL).await.ok()?;
        Some(stream.into_inner())
    })
    .await;
    let freed_after = started.elapsed();
    let first = fresh.message().await.expect("no error").expect("an event");
    let Some(watch_response::Event::Snapshot(part)) = first.event else {
        panic!("a FULL watch from version 0 starts with a snapshot: {first:?}");
    };
    assert_eq!(part.total_records, 14_512);
    drop(fresh);
    let after = server.rss_kib();
    eprintln!(
        "slots free again {freed_after:?} after the first stalled stream opened; \
         VmRSS {after} KiB then"
    );
    assert!(
        freed_after < Duration::from_secs(8 + 2 + 10),
        "slots freed only after {freed_after:?}"
    );
    drop(stalled);
    drop(clients);
}
