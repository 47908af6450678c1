//! LintPorts on a real server and socket (issue #17): the checks of
//! `portolan lint`, asked of the server by an admission webhook or a CI
//! service that already holds the objects.
//!
//! * Every manifest of the committed real-world corpus gets, through the
//!   client crate, exactly the findings the local linter finds on the same
//!   registry and hints, and the must-find NATS case is among them.
//! * The findings come from the server's mesh hints: with a `--mesh-hints`
//!   file saying NATS is client-first, the NATS findings are gone.
//! * Requests over their bounds, an unnamed mesh and a port field holding
//!   no value are INVALID_ARGUMENT naming the field.

mod support;

use std::io::Read as _;
use std::path::PathBuf;

use portolan::pb::{self, LintPortsRequest, Mesh as WireMesh};
use portolan_client::Client;
use portolan_lint::{Manifest, Mesh, Options, Rule, lint, yaml};
use portolan_registry::{Hints, Index};
use portolan_test_support::write_atomically;
use prost::Message as _;
use tonic::Code;

use support::{mesh_hints_with, start_server, test_args};

fn corpus() -> Vec<(String, Manifest)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lint/tests/data/manifests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the corpus directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".yaml.gz")
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read");
            let text = if path.extension().is_some_and(|e| e == "gz") {
                let mut text = String::new();
                flate2::read::GzDecoder::new(bytes.as_slice())
                    .read_to_string(&mut text)
                    .expect("gunzip");
                text
            } else {
                String::from_utf8(bytes).expect("utf-8")
            };
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, yaml::parse(&text))
        })
        .collect()
}

fn both_meshes() -> Options {
    Options {
        meshes: vec![Mesh::Istio, Mesh::Linkerd],
    }
}

#[tokio::test]
async fn lint_ports_finds_what_the_local_linter_finds_on_the_real_corpus() {
    let server = start_server(test_args(None)).await;
    let client = Client::connect(server.endpoint()).await.expect("client");
    let index = Index::new(portolan_registry::embedded::registry());
    let corpus = corpus();
    assert_eq!(corpus.len(), 20, "the whole corpus");
    let (mut total, mut largest) = (0, 0);
    for (name, manifest) in &corpus {
        let (remote, omitted) = client
            .lint_ports(manifest, &both_meshes())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(omitted, 0, "{name}");
        let local = lint(manifest, &index, Hints::embedded(), &both_meshes());
        assert_eq!(remote, local, "{name}");
        total += remote.len();
        largest = largest.max(
            LintPortsRequest {
                objects: portolan::convert::objects_to_pb(manifest),
                meshes: vec![WireMesh::Istio as i32, WireMesh::Linkerd as i32],
            }
            .encoded_len(),
        );
    }
    // argo-cd's install.yaml (34,000 lines, 59 documents) is the largest.
    eprintln!("largest request: {largest} bytes");
    assert!(
        largest < portolan_server::MAX_REQUEST_BYTES / 4,
        "{largest}"
    );
    assert_eq!(total, 91, "the corpus snapshot's count");

    let (_, nats) = corpus
        .iter()
        .find(|(name, _)| name.starts_with("nats-io"))
        .expect("the NATS manifest");
    let (findings, _) = client.lint_ports(nats, &both_meshes()).await.expect("nats");
    let stalls: Vec<_> = findings
        .iter()
        .filter(|f| f.rule == Rule::ServerFirstUnhandled)
        .map(|f| {
            (
                f.object.as_str(),
                f.position.line,
                f.message.contains("[istio]"),
            )
        })
        .collect();
    assert_eq!(
        stalls,
        [
            ("Service/nats", 39, true),
            ("Service/nats", 39, false),
            ("StatefulSet/nats", 90, false)
        ]
    );
    // Without a mesh, no mesh rule runs.
    let (plain, _) = client
        .lint_ports(nats, &Options::default())
        .await
        .expect("nats, no mesh");
    assert!(
        plain
            .iter()
            .all(|f| !matches!(f.rule, Rule::ServerFirstUnhandled | Rule::IstioPortName)),
        "{plain:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn lint_ports_reads_the_servers_mesh_hints() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hints.toml");
    // NATS recorded as client-first: the server must stop reporting stalls.
    let changed = mesh_hints_with(4222, "server_speaks_first", "\"no\"");
    write_atomically(&path, changed.as_bytes());
    let mut args = test_args(None);
    args.mesh_hints = Some(path);
    let server = start_server(args).await;
    let client = Client::connect(server.endpoint()).await.expect("client");

    let corpus = corpus();
    let (_, nats) = corpus
        .iter()
        .find(|(name, _)| name.starts_with("nats-io"))
        .expect("the NATS manifest");
    let (findings, _) = client.lint_ports(nats, &both_meshes()).await.expect("nats");
    assert!(
        !findings
            .iter()
            .any(|f| f.rule == Rule::ServerFirstUnhandled),
        "{findings:?}"
    );
    // The other findings of the file are still there (Istio's port names).
    assert!(
        findings.iter().any(|f| f.rule == Rule::IstioPortName),
        "{findings:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn requests_over_their_bounds_or_malformed_are_invalid_argument() {
    let server = start_server(test_args(None)).await;
    let mut raw = server.ready_client().await;

    let object = |i: usize| pb::PortObject {
        kind: "Service".into(),
        name: format!("s{i}"),
        ..Default::default()
    };
    let too_many = LintPortsRequest {
        objects: (0..1_001).map(object).collect(),
        meshes: vec![],
    };
    let status = raw.lint_ports(too_many).await.expect_err("1,001 objects");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "objects: holds 1001 objects, more than the maximum of 1000"
    );

    let port = pb::ServicePortSpec {
        port: Some(pb::PortField {
            value: Some(pb::port_field::Value::Number(80)),
            position: None,
        }),
        ..Default::default()
    };
    let many_ports = LintPortsRequest {
        objects: (0..11)
            .map(|i| pb::PortObject {
                service_ports: vec![port.clone(); 100],
                ..object(i)
            })
            .collect(),
        meshes: vec![],
    };
    let status = raw.lint_ports(many_ports).await.expect_err("1,100 ports");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "objects: hold 1100 ports, more than the maximum of 1024"
    );

    let long_name = LintPortsRequest {
        objects: vec![pb::PortObject {
            name: "n".repeat(254),
            ..object(0)
        }],
        meshes: vec![],
    };
    let status = raw.lint_ports(long_name).await.expect_err("a long name");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "objects.name: a value is 254 bytes, more than the maximum of 253"
    );

    let unnamed_mesh = LintPortsRequest {
        objects: vec![object(0)],
        meshes: vec![WireMesh::Unspecified as i32],
    };
    let status = raw.lint_ports(unnamed_mesh).await.expect_err("no mesh");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("meshes: MESH_UNSPECIFIED"),
        "{}",
        status.message()
    );

    let empty_port = LintPortsRequest {
        objects: vec![pb::PortObject {
            service_ports: vec![pb::ServicePortSpec {
                port: Some(pb::PortField {
                    value: None,
                    position: None,
                }),
                ..Default::default()
            }],
            ..object(0)
        }],
        meshes: vec![],
    };
    let status = raw.lint_ports(empty_port).await.expect_err("empty port");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "objects.service_ports.port: is set but holds neither number nor text"
    );

    // A good request on the same connection still answers.
    let good = LintPortsRequest {
        objects: vec![pb::PortObject {
            service_ports: vec![pb::ServicePortSpec {
                name: Some(pb::TextField {
                    value: "api_port".into(),
                    position: Some(pb::SourcePosition { line: 3, column: 9 }),
                }),
                ..port.clone()
            }],
            ..object(0)
        }],
        meshes: vec![],
    };
    let findings = raw
        .lint_ports(good)
        .await
        .expect("good")
        .into_inner()
        .findings;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].rule, "service-port-name");
    assert_eq!(findings[0].severity(), pb::LintSeverity::Error);
    assert_eq!(findings[0].object, "Service/s0");
    assert_eq!(
        findings[0].position,
        Some(pb::SourcePosition { line: 3, column: 9 })
    );
    // The IANA name of port 80 is the suggested name.
    assert_eq!(findings[0].fix, "name: http");
    server.stop().await;
}

/// A client that packs the most findings into one request within every
/// bound: the longest object name (repeated in every finding) and 1,024
/// Service ports, each with a name and an appProtocol that are wrong in
/// several ways, on a server-first port, checked for both meshes, all
/// within the 64 KiB request limit. The answer is capped at 256 findings
/// with the rest counted, and stays under 256 KiB.
#[tokio::test]
async fn the_worst_request_gets_a_bounded_answer() {
    let server = start_server(test_args(None)).await;
    let mut raw = server.ready_client().await;
    let text = |value: &str| {
        Some(pb::TextField {
            value: value.into(),
            position: None,
        })
    };
    let port = pb::ServicePortSpec {
        // Uppercase and over 15 characters; an appProtocol that is nothing.
        name: text("NNNNNNNNNNNNNNNN"),
        port: Some(pb::PortField {
            value: Some(pb::port_field::Value::Number(4222)),
            position: None,
        }),
        app_protocol: text("XXXXXXXX"),
        ..Default::default()
    };
    let request = LintPortsRequest {
        objects: vec![pb::PortObject {
            kind: "Service".into(),
            name: "s".repeat(253),
            service_ports: vec![port; portolan_server::validate::MAX_LINT_PORTS],
            ..Default::default()
        }],
        meshes: vec![WireMesh::Istio as i32, WireMesh::Linkerd as i32],
    };
    let request_bytes = request.encoded_len();
    assert!(
        request_bytes < portolan_server::MAX_REQUEST_BYTES,
        "{request_bytes}"
    );
    let answer = raw
        .lint_ports(request)
        .await
        .expect("within bounds")
        .into_inner();
    assert_eq!(answer.findings.len(), 256);
    assert!(answer.omitted_findings > 0, "{}", answer.omitted_findings);
    let bytes = answer.encoded_len();
    eprintln!(
        "worst request {request_bytes} bytes: answer {bytes} bytes, {} findings omitted",
        answer.omitted_findings
    );
    assert!(bytes < 256 * 1024, "{bytes}");
    // Content, not just size: the first port's name problem is reported.
    let first = &answer.findings[0];
    assert_eq!(first.object, format!("Service/{}", "s".repeat(253)));
    assert_eq!(first.rule, "service-port-name");
    server.stop().await;
}
