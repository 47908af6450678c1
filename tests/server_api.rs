//! Every `PortRegistryService` method over a real connection to an in-process
//! server serving the real 2026 IANA CSV (14,512 records): lookups, batch,
//! search, listing, registry info, every INVALID_ARGUMENT rule, NOT_FOUND,
//! the message size limit, health, reflection and the metrics endpoint.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt as _;
use portolan::pb::batch_lookup_request::Query;
use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::{
    BatchLookupRequest, GetRegistryInfoRequest, ListRecordsRequest, LookupNameRequest,
    LookupPortRequest, Protocol, Record, RecordState, ReloadOutcome, SearchRequest, WatchRequest,
};
use portolan_test_support::shared_file;
use tonic::Code;
use tonic::transport::Channel;

use support::{eventually, http_get, start_server_on_file};

const FULL_CSV_RECORDS: usize = 14_512;
const FULL_CSV_SHA256: &str = "b27a00f94cabd719b9c29f1ff1ffc92be84d708282015dc8b933ee8574c8b884";

fn port_request(port: u32, protocol: Protocol) -> LookupPortRequest {
    LookupPortRequest {
        port,
        protocol: protocol as i32,
    }
}

async fn list_all(
    client: &mut PortRegistryServiceClient<Channel>,
    request: ListRecordsRequest,
) -> Vec<Record> {
    let mut stream = client.list_records(request).await.unwrap().into_inner();
    let mut records = Vec::new();
    while let Some(message) = stream.next().await {
        records.extend(message.unwrap().records);
    }
    records
}

#[tokio::test]
async fn point_lookups_answer_from_the_real_registry() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server_on_file(&csv).await;
    let mut client = server.ready_client().await;

    let https = client
        .lookup_port(port_request(443, Protocol::Tcp))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(https.version, 1);
    let first = &https.records[0];
    assert_eq!(first.name.as_deref(), Some("https"));
    assert_eq!((first.port, first.port_end), (Some(443), Some(443)));
    assert_eq!(first.protocol, Protocol::Tcp as i32);
    assert_eq!(first.protocol_text, "tcp");
    assert_eq!(first.description, "http protocol over TLS/SSL");
    assert_eq!(first.state, RecordState::Assigned as i32);
    assert_eq!(first.references, vec!["RFC9110".to_string()]);
    let key = first.key.as_ref().expect("records carry their key");
    assert_eq!(
        (key.name.as_deref(), key.port, key.ordinal),
        (Some("https"), Some(443), 0)
    );

    let x11 = client
        .lookup_port(port_request(6010, Protocol::Tcp))
        .await
        .unwrap()
        .into_inner();
    let x11 = &x11.records[0];
    assert_eq!(x11.name.as_deref(), Some("x11"));
    assert_eq!((x11.port, x11.port_end), (Some(6000), Some(6063)));
    assert_eq!(x11.unauthorized_use, "Known Unauthorized Use on port 6003");

    let http = client
        .lookup_name(LookupNameRequest {
            name: "HTTP".into(),
            protocol: Protocol::Unspecified as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let mut protocols: Vec<(Option<u32>, String)> = http
        .records
        .iter()
        .map(|r| (r.port, r.protocol_text.clone()))
        .collect();
    protocols.sort();
    assert_eq!(
        protocols,
        vec![
            (Some(80), "sctp".to_string()),
            (Some(80), "tcp".to_string()),
            (Some(80), "udp".to_string())
        ]
    );
    assert!(
        http.records
            .iter()
            .all(|r| r.name.as_deref() == Some("http"))
    );

    let missing = client
        .lookup_port(port_request(50000, Protocol::Tcp))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(missing.message(), "no record for port 50000/tcp");
    let missing = client
        .lookup_name(LookupNameRequest {
            name: "no-such-service-anywhere".into(),
            protocol: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(
        missing.message().contains("no-such-service-anywhere"),
        "{}",
        missing.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn list_records_streams_every_record_in_scan_order() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server_on_file(&csv).await;
    let mut client = server.ready_client().await;

    let records = list_all(&mut client, ListRecordsRequest::default()).await;
    assert_eq!(records.len(), FULL_CSV_RECORDS);
    let order_key = |r: &Record| {
        (
            r.port.is_none(),
            r.port,
            r.port_end,
            r.protocol,
            r.name.clone(),
        )
    };
    for pair in records.windows(2) {
        assert!(
            order_key(&pair[0]) <= order_key(&pair[1]),
            "out of order: {:?} before {:?}",
            order_key(&pair[0]),
            order_key(&pair[1])
        );
    }
    assert_eq!(records[0].port, Some(0));
    assert!(
        records.last().unwrap().port.is_none(),
        "records without a port come last"
    );

    let system_udp = list_all(
        &mut client,
        ListRecordsRequest {
            protocol: Protocol::Udp as i32,
            port_min: Some(0),
            port_max: Some(1023),
            states: vec![RecordState::Assigned as i32],
            layers: Vec::new(),
        },
    )
    .await;
    assert!(!system_udp.is_empty());
    assert!(system_udp.iter().all(|r| {
        r.port.is_some_and(|p| p <= 1023)
            && r.state == RecordState::Assigned as i32
            && (r.protocol == Protocol::Udp as i32 || r.protocol == Protocol::Unspecified as i32)
    }));
    assert!(
        system_udp
            .iter()
            .any(|r| r.name.as_deref() == Some("domain"))
    );
    server.stop().await;
}

#[tokio::test]
async fn batch_lookup_answers_every_item_by_id() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server_on_file(&csv).await;
    let mut client = server.ready_client().await;

    let names = ["ssh", "domain", "HTTPS", "x11", "ntp"];
    let mut requests = Vec::new();
    for i in 0..1000u32 {
        let (query, protocol) = match i % 10 {
            0 => (
                Some(Query::Name(names[(i as usize / 10) % names.len()].into())),
                0,
            ),
            1 => (Some(Query::Port(70_000)), 0),
            2 if i % 100 == 2 => (None, 0),
            3 if i % 100 == 3 => (Some(Query::Name(String::new())), 0),
            4 if i % 100 == 4 => (Some(Query::Port(50_000)), Protocol::Tcp as i32),
            _ => (Some(Query::Port(i)), Protocol::Tcp as i32),
        };
        requests.push(BatchLookupRequest {
            id: format!("item-{i}"),
            query,
            protocol,
        });
    }
    let mut stream = client
        .batch_lookup(futures::stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut answers = HashMap::new();
    while let Some(answer) = stream.next().await {
        let answer = answer.unwrap();
        answers.insert(answer.id.clone(), answer);
    }
    assert_eq!(answers.len(), 1000, "one answer per item");

    let ssh = &answers["item-0"];
    assert!(ssh.error.is_none());
    assert_eq!(ssh.records[0].port, Some(22));
    let domain = &answers["item-10"];
    assert_eq!(domain.records[0].port, Some(53));
    let https = &answers["item-20"];
    assert_eq!(https.records[0].name.as_deref(), Some("https"));
    let port_443 = &answers["item-443"];
    assert_eq!(port_443.records[0].name.as_deref(), Some("https"));
    assert_eq!(port_443.version, 1);

    let too_big = answers["item-1"].error.as_ref().expect("port 70000 fails");
    assert_eq!(too_big.code, Code::InvalidArgument as i32);
    assert!(too_big.message.starts_with("port:"), "{}", too_big.message);
    let no_query = answers["item-2"].error.as_ref().expect("no query fails");
    assert_eq!(no_query.code, Code::InvalidArgument as i32);
    assert!(
        no_query.message.starts_with("query:"),
        "{}",
        no_query.message
    );
    let empty_name = answers["item-3"].error.as_ref().expect("empty name fails");
    assert!(
        empty_name.message.starts_with("name:"),
        "{}",
        empty_name.message
    );
    let not_found = answers["item-4"]
        .error
        .as_ref()
        .expect("port 50000 is unknown");
    assert_eq!(not_found.code, Code::NotFound as i32);
    // Items after bad ones are still answered.
    assert!(answers["item-999"].error.is_none());
    assert_eq!(answers["item-999"].records[0].port, Some(999));

    let long_id = BatchLookupRequest {
        id: "x".repeat(129),
        query: Some(Query::Port(80)),
        protocol: 0,
    };
    let mut stream = client
        .batch_lookup(futures::stream::iter(vec![long_id]))
        .await
        .unwrap()
        .into_inner();
    let answer = stream.next().await.unwrap().unwrap();
    let error = answer.error.expect("a 129-byte id fails");
    assert!(error.message.starts_with("id:"), "{}", error.message);
    server.stop().await;
}

#[tokio::test]
async fn search_ranks_exact_names_first_and_info_describes_the_source() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server_on_file(&csv).await;
    let mut client = server.ready_client().await;

    let mut stream = client
        .search(SearchRequest {
            query: "LDAP".into(),
            limit: 10,
            ..SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut hits = Vec::new();
    while let Some(message) = stream.next().await {
        hits.extend(message.unwrap().records);
    }
    assert_eq!(hits.len(), 10, "the limit is honoured");
    assert_eq!(hits[0].name.as_deref(), Some("ldap"));
    assert!(
        hits.iter()
            .take_while(|h| h.name.as_deref() == Some("ldap"))
            .count()
            >= 2
    );
    let first_other = hits
        .iter()
        .position(|h| h.name.as_deref() != Some("ldap"))
        .unwrap();
    assert!(
        hits[first_other]
            .name
            .as_deref()
            .unwrap()
            .starts_with("ldap"),
        "prefix matches come next"
    );

    let info = client
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.version, 1);
    assert_eq!(info.record_count, FULL_CSV_RECORDS as u64);
    assert_eq!(info.content_hash, FULL_CSV_SHA256);
    assert_eq!(info.source_format, "iana-csv");
    assert!(
        info.source_path.ends_with("service-names-port-numbers.csv"),
        "{}",
        info.source_path
    );
    assert_eq!(
        info.records_by_state.values().sum::<u64>(),
        FULL_CSV_RECORDS as u64
    );
    assert!(info.records_by_state["assigned"] > 10_000);
    assert!(info.records_by_state["unassigned"] > 0);
    assert_eq!(
        info.records_by_protocol.values().sum::<u64>(),
        FULL_CSV_RECORDS as u64
    );
    assert!(info.records_by_protocol["tcp"] > 5_000);
    assert_eq!(info.last_reload_outcome, ReloadOutcome::Initial as i32);
    assert!(info.last_reload_error.is_empty());
    assert!(info.loaded_at.is_some_and(|t| t.seconds > 1_700_000_000));
    server.stop().await;
}

/// Asserts INVALID_ARGUMENT with a message starting with `field:`.
fn assert_invalid(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let status = result.expect_err("the request should be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
    assert!(
        status.message().starts_with(&format!("{field}:")),
        "message should name {field}: {:?}",
        status.message()
    );
}

#[tokio::test]
async fn every_invalid_argument_names_its_field() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server_on_file(&csv).await;
    let mut client = server.ready_client().await;

    assert_invalid(
        client
            .lookup_port(port_request(65_536, Protocol::Tcp))
            .await,
        "port",
    );
    assert_invalid(
        client
            .lookup_port(LookupPortRequest {
                port: 80,
                protocol: 42,
            })
            .await,
        "protocol",
    );
    assert_invalid(
        client.lookup_port(port_request(80, Protocol::Other)).await,
        "protocol",
    );
    assert_invalid(
        client
            .lookup_name(LookupNameRequest {
                name: String::new(),
                protocol: 0,
            })
            .await,
        "name",
    );
    assert_invalid(
        client
            .lookup_name(LookupNameRequest {
                name: "n".repeat(256),
                protocol: 0,
            })
            .await,
        "name",
    );
    assert_invalid(
        client.search(SearchRequest::default()).await.map(|_| ()),
        "query",
    );
    let search = |f: fn(&mut SearchRequest)| {
        let mut request = SearchRequest {
            query: "http".into(),
            ..SearchRequest::default()
        };
        f(&mut request);
        request
    };
    assert_invalid(
        client
            .search(search(|r| r.query = "q".repeat(257)))
            .await
            .map(|_| ()),
        "query",
    );
    assert_invalid(
        client
            .search(search(|r| {
                r.port_min = Some(100);
                r.port_max = Some(10);
            }))
            .await
            .map(|_| ()),
        "port_min",
    );
    assert_invalid(
        client
            .search(search(|r| r.port_max = Some(65_536)))
            .await
            .map(|_| ()),
        "port_max",
    );
    assert_invalid(
        client
            .search(search(|r| r.states = vec![17]))
            .await
            .map(|_| ()),
        "states",
    );
    assert_invalid(
        client.search(search(|r| r.protocol = 5)).await.map(|_| ()),
        "protocol",
    );
    assert_invalid(
        client
            .list_records(ListRecordsRequest {
                port_min: Some(70_000),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "port_min",
    );
    assert_invalid(
        client
            .list_records(ListRecordsRequest {
                protocol: 9,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "protocol",
    );
    assert_invalid(
        client
            .watch(WatchRequest {
                known_version: 0,
                known_state_id: 0,
                mode: 3,
            })
            .await
            .map(|_| ()),
        "mode",
    );

    // A request larger than the decoding limit is refused before any handler.
    let oversized = client
        .lookup_name(LookupNameRequest {
            name: "n".repeat(100 * 1024),
            protocol: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(oversized.code(), Code::OutOfRange, "{oversized:?}");

    // The server is still fine.
    let ok = client
        .lookup_port(port_request(22, Protocol::Tcp))
        .await
        .unwrap();
    assert_eq!(ok.into_inner().records[0].name.as_deref(), Some("ssh"));
    server.stop().await;
}

#[tokio::test]
async fn health_reflection_and_metrics_are_served() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server_on_file(&csv).await;
    let channel = Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();

    // Health: NOT_SERVING until the registry is loaded, then SERVING.
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let mut health = HealthClient::new(channel.clone());
    let mut statuses = health
        .watch(HealthCheckRequest {
            service: "portolan.v1.PortRegistryService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while let Some(status) = statuses.next().await {
        let status = status.unwrap().status;
        seen.push(status);
        if status == ServingStatus::Serving as i32 {
            break;
        }
    }
    assert_eq!(seen.last(), Some(&(ServingStatus::Serving as i32)));
    assert!(
        seen.iter()
            .all(|s| *s == ServingStatus::Serving as i32 || *s == ServingStatus::NotServing as i32),
        "{seen:?}"
    );
    for name in ["", "readiness", "liveness"] {
        let answer = health
            .check(HealthCheckRequest {
                service: name.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status, ServingStatus::Serving as i32, "{name:?}");
    }

    // Reflection v1 lists our service and health.
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(futures::stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        services.contains(&"portolan.v1.PortRegistryService".to_string()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_string()),
        "{services:?}"
    );

    // Metrics count exactly the calls made.
    let mut client = PortRegistryServiceClient::new(channel);
    for port in [22, 53, 80, 443, 6010] {
        client
            .lookup_port(port_request(port, Protocol::Tcp))
            .await
            .unwrap();
    }
    let _ = client
        .lookup_port(port_request(70_000, Protocol::Tcp))
        .await
        .unwrap_err();
    let ok_series = "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"portolan.v1.PortRegistryService\",grpc_method=\"LookupPort\",grpc_code=\"OK\"} 5";
    let invalid_series = "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"portolan.v1.PortRegistryService\",grpc_method=\"LookupPort\",grpc_code=\"InvalidArgument\"} 1";
    let text = eventually(
        Duration::from_secs(5),
        "the metrics to count the calls",
        || async {
            let text = http_get(server.admin_addr, "/metrics").await;
            (text.contains(ok_series) && text.contains(invalid_series)).then_some(text)
        },
    )
    .await;
    for series in [
        "grpc_server_started_total{grpc_type=\"unary\",grpc_service=\"portolan.v1.PortRegistryService\",grpc_method=\"LookupPort\"} 6",
        "grpc_server_handling_seconds_count{grpc_type=\"unary\",grpc_service=\"portolan.v1.PortRegistryService\",grpc_method=\"LookupPort\"} 6",
        "grpc_server_msg_sent_total{grpc_type=\"unary\",grpc_service=\"portolan.v1.PortRegistryService\",grpc_method=\"LookupPort\"} 5",
        "portolan_registry_version 1",
        "portolan_registry_records{state=\"assigned\"}",
        "portolan_watch_streams_active 0",
        "portolan_seconds_since_last_successful_reload",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
    server.stop().await;
}
