//! Graceful shutdown of the real `portolan-server` binary: SIGTERM while a
//! Watch stream, a health Watch stream (which tonic never ends by itself)
//! and a unary load are running. Unary calls keep succeeding until the
//! server stops accepting (none fails with anything but UNAVAILABLE), the
//! server ends the Watch stream itself, and the process exits cleanly
//! within the grace period even though the health stream stays open.
//! Also: a bad configuration exits with code 2 before binding anything.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::watch_response::Event;
use portolan::pb::{
    GetRegistryInfoRequest, ListRecordsRequest, LookupPortRequest, Protocol, WatchMode,
    WatchRequest,
};
use portolan_test_support::shared_file;
use tonic::Code;

use support::{ServerProcess, eventually, workspace_binary};

const GRACE: Duration = Duration::from_secs(3);

/// The real binary on 127.0.0.1:0 (the shared [`ServerProcess`]), with
/// readable versions (the test watches from version 1) and the grace period
/// under test.
fn start(data: &std::path::Path) -> ServerProcess {
    let grace = format!("{}s", GRACE.as_secs());
    ServerProcess::start(
        data,
        &["--initial-version", "1", "--shutdown-grace", &grace],
    )
}

#[tokio::test]
async fn sigterm_drains_calls_ends_streams_and_exits_within_the_grace_period() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let mut server = tokio::task::spawn_blocking(move || start(&csv))
        .await
        .unwrap();
    let endpoint = format!("http://{}", server.addr);
    let client = eventually(Duration::from_secs(30), "the server to serve", || {
        let endpoint = endpoint.clone();
        async move {
            let mut client = PortRegistryServiceClient::connect(endpoint).await.ok()?;
            client
                .get_registry_info(GetRegistryInfoRequest {})
                .await
                .ok()?;
            Some(client)
        }
    })
    .await;

    let state = client
        .clone()
        .get_registry_info(portolan::pb::GetRegistryInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .state_id;
    let mut watch = client
        .clone()
        .watch(WatchRequest {
            known_state_id: state,
            mode: WatchMode::Full as i32,
            ..WatchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert!(matches!(first.event, Some(Event::Heartbeat(_))));

    // A health Watch stream: tonic-health never ends it, so only the grace
    // period bounds the drain.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel)
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let _ = health.next().await.unwrap().unwrap();

    // The load asks only for ports below 1024 that the registry answers
    // over tcp (read from the server itself: 716, for one, has a udp
    // record only), so every call before shutdown must find records,
    // however many calls a fast machine gets through.
    let mut tcp_ports = std::collections::BTreeSet::new();
    let mut listing = client
        .clone()
        .list_records(ListRecordsRequest {
            protocol: Protocol::Tcp as i32,
            port_max: Some(1023),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(message) = listing.message().await.unwrap() {
        for record in message.records {
            let first = record.port.expect("a listing bounded by port has ports");
            tcp_ports.extend(first..=record.port_end.unwrap_or(first).min(1023));
        }
    }
    assert!(!tcp_ports.contains(&716), "716 has a udp record only");
    assert!(tcp_ports.len() > 900, "{} tcp ports", tcp_ports.len());
    let tcp_ports: Arc<[u32]> = tcp_ports.into_iter().collect();

    // Unary load on four tasks until the server stops answering.
    let stop_load = Arc::new(AtomicBool::new(false));
    let succeeded = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for worker in 0..4usize {
        let mut client = client.clone();
        let stop_load = Arc::clone(&stop_load);
        let succeeded = Arc::clone(&succeeded);
        let tcp_ports = Arc::clone(&tcp_ports);
        load.push(tokio::spawn(async move {
            let mut next = worker;
            while !stop_load.load(Ordering::Relaxed) {
                let port = tcp_ports[next % tcp_ports.len()];
                next += 4;
                let request = LookupPortRequest {
                    port,
                    protocol: Protocol::Tcp as i32,
                };
                match client.lookup_port(request).await {
                    Ok(answer) => {
                        let records = answer.into_inner().records;
                        assert!(
                            records.iter().any(|r| r.port.is_some_and(|p| p <= port)
                                && r.port_end.unwrap_or(r.port.unwrap_or(0)) >= port),
                            "port {port}/tcp answered with {records:?}"
                        );
                        succeeded.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(status) => return Some(status),
                }
            }
            None
        }));
    }
    eventually(Duration::from_secs(10), "unary load to be flowing", || {
        let succeeded = Arc::clone(&succeeded);
        async move { (succeeded.load(Ordering::Relaxed) >= 50).then_some(()) }
    })
    .await;

    let sent_at = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

    // The server ends the Watch stream (with UNAVAILABLE or a clean end).
    let ended = tokio::time::timeout(GRACE, async {
        loop {
            match watch.next().await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => return Some(status.code()),
                None => return None,
            }
        }
    })
    .await
    .expect("the Watch stream is ended by the server well within the grace period");
    assert!(
        matches!(ended, None | Some(Code::Unavailable)),
        "the Watch stream ended with {ended:?}"
    );

    // The process exits within the grace period (plus slack).
    let exit = eventually(
        GRACE + Duration::from_secs(2),
        "the process to exit",
        || {
            let exited = server.child.try_wait().expect("wait on the child");
            async move { exited }
        },
    )
    .await;
    assert!(exit.success(), "exit status {exit:?}");
    assert!(sent_at.elapsed() <= GRACE + Duration::from_secs(2));

    stop_load.store(true, Ordering::Relaxed);
    let before = succeeded.load(Ordering::Relaxed);
    for worker in load {
        if let Some(status) = worker.await.unwrap() {
            // Calls after the server stopped accepting are refused, never
            // failed half-way.
            assert!(
                matches!(status.code(), Code::Unavailable | Code::Cancelled),
                "a unary call failed with {status:?}"
            );
        }
    }
    assert!(before >= 50, "{before} unary calls succeeded");
}

#[test]
fn a_bad_configuration_exits_with_code_2_and_one_line() {
    let binary = workspace_binary("portolan-server", "portolan-server");
    for args in [
        vec!["--data", "/nonexistent/registry.csv"],
        vec!["--max-shrink", "3"],
        vec![
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ],
        vec!["--reload-debounce", "soon"],
    ] {
        let output = Command::new(&binary)
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .expect("run portolan-server");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
    let truncated = shared_file("bad/truncated.csv");
    let output = Command::new(&binary)
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&truncated)
        .output()
        .expect("run portolan-server");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
}
