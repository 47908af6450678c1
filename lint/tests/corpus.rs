//! The corpus of real manifests (`tests/data/manifests`, see its README):
//! every port the files declare is read, the findings on all of them match
//! a committed snapshot, and the cases the rules exist for are found.
//!
//! `PORTOLAN_UPDATE_SNAPSHOTS=1 cargo test -p portolan-lint --test corpus`
//! rewrites `tests/snapshots/corpus.txt`; review the diff before committing.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use portolan_lint::model::PortValue;
use portolan_lint::report::{self, FileFindings};
use portolan_lint::{Finding, Mesh, Options, Rule, Severity, yaml};
use portolan_registry::{Hints, Index};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/manifests")
}

/// Every corpus file as (name as listed in SOURCES.tsv, text), by name.
fn corpus() -> &'static [(String, String)] {
    static CORPUS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut files: Vec<(String, String)> = std::fs::read_dir(corpus_dir())
            .expect("corpus directory")
            .map(|e| e.expect("entry").path())
            .filter_map(|path| {
                let name = path.file_name()?.to_str()?.to_string();
                let text = if let Some(plain) = name.strip_suffix(".gz") {
                    let mut text = String::new();
                    flate2::read::GzDecoder::new(std::fs::File::open(&path).ok()?)
                        .read_to_string(&mut text)
                        .ok()?;
                    return Some((plain.to_string(), text));
                } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                    std::fs::read_to_string(&path).ok()?
                } else {
                    return None;
                };
                Some((name, text))
            })
            .collect();
        files.sort();
        files
    })
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| Index::new(portolan_registry::embedded::registry()))
}

fn options(meshes: &[Mesh]) -> Options {
    Options {
        meshes: meshes.to_vec(),
    }
}

fn lint_all(meshes: &[Mesh]) -> Vec<FileFindings> {
    corpus()
        .iter()
        .map(|(file, text)| FileFindings {
            file: file.clone(),
            findings: portolan_lint::lint_text(text, index(), Hints::embedded(), &options(meshes)),
        })
        .collect()
}

fn file_findings<'a>(all: &'a [FileFindings], file: &str) -> &'a [Finding] {
    &all.iter()
        .find(|f| f.file == file)
        .unwrap_or_else(|| panic!("no corpus file {file}"))
        .findings
}

#[test]
fn the_corpus_is_complete() {
    let sources = std::fs::read_to_string(corpus_dir().join("SOURCES.tsv")).expect("SOURCES.tsv");
    let listed: Vec<&str> = sources
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .collect();
    let names: Vec<&str> = corpus().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(listed.len(), 20);
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
}

/// (kind, object, where, name, port) of every port the reader saw.
fn ports_read(text: &str) -> Vec<[String; 5]> {
    let manifest = yaml::parse(text);
    assert_eq!(manifest.errors, vec![]);
    let show = |v: Option<&PortValue>| match v {
        Some(PortValue::Number(n)) => n.to_string(),
        Some(PortValue::Text(t)) => t.clone(),
        None => String::new(),
    };
    let mut rows = Vec::new();
    for o in &manifest.objects {
        let name = o.name.clone().unwrap_or_default();
        for p in o.containers.iter().flat_map(|c| &c.ports) {
            rows.push([
                o.kind.clone(),
                name.clone(),
                "containerPort".into(),
                p.name.as_ref().map(|n| n.value.clone()).unwrap_or_default(),
                show(p.container_port.as_ref().map(|p| &p.value)),
            ]);
        }
        for p in &o.service_ports {
            rows.push([
                o.kind.clone(),
                name.clone(),
                "servicePort".into(),
                p.name.as_ref().map(|n| n.value.clone()).unwrap_or_default(),
                show(p.port.as_ref().map(|p| &p.value)),
            ]);
        }
    }
    rows.sort();
    rows
}

#[test]
fn every_port_in_ports_tsv_is_read() {
    let tsv = std::fs::read_to_string(corpus_dir().join("PORTS.tsv")).expect("PORTS.tsv");
    let mut expected: BTreeMap<&str, Vec<[String; 5]>> = BTreeMap::new();
    for line in tsv.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        expected.entry(c[0]).or_default().push([
            c[2].into(),
            c[3].into(),
            c[4].into(),
            c[5].into(),
            c[6].into(),
        ]);
    }
    let mut total = 0;
    for (file, text) in corpus() {
        let mut want = expected.remove(file.as_str()).unwrap_or_default();
        want.sort();
        let got = ports_read(text);
        assert_eq!(got, want, "{file}");
        total += got.len();
    }
    assert!(
        expected.is_empty(),
        "PORTS.tsv names files not in the corpus: {expected:?}"
    );
    assert_eq!(total, 160);
}

#[test]
fn the_findings_match_the_snapshot() {
    let all = lint_all(&[Mesh::Istio, Mesh::Linkerd]);
    let rendered = report::text(&all);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/corpus.txt");
    if std::env::var_os("PORTOLAN_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &rendered).expect("write snapshot");
    }
    let snapshot =
        std::fs::read_to_string(&path).expect("snapshot (PORTOLAN_UPDATE_SNAPSHOTS=1 writes it)");
    assert!(
        rendered == snapshot,
        "the findings differ from tests/snapshots/corpus.txt; rerun with PORTOLAN_UPDATE_SNAPSHOTS=1 and review the diff"
    );
    let counts = report::Counts::of(&all);
    let by_rule: BTreeMap<&str, usize> = counts.by_rule.iter().map(|(r, n)| (r.id(), *n)).collect();
    assert_eq!(
        by_rule,
        BTreeMap::from([
            ("app-protocol", 1),
            ("container-port-name", 1),
            ("istio-port-name", 49),
            ("name-protocol-conflict", 1),
            ("name-protocol-mismatch", 3),
            ("server-first-unhandled", 4),
            ("service-port-name", 2),
            ("service-port-name-long", 5),
            ("service-port-name-numeric", 25),
        ])
    );
}

/// The findings of `rule` in `file` as (line, message).
fn found(all: &[FileFindings], file: &str, rule: Rule) -> Vec<(u32, String)> {
    file_findings(all, file)
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| (f.position.line, f.message.clone()))
        .collect()
}

#[test]
fn the_uppercase_container_port_name_is_found() {
    let all = lint_all(&[]);
    let f = file_findings(
        &all,
        "wolveix__satisfactory-server__cluster__statefulset.yaml",
    );
    let f: Vec<&Finding> = f
        .iter()
        .filter(|f| f.rule == Rule::ContainerPortName)
        .collect();
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].position.line, f[0].position.column), (35, 17));
    assert_eq!(f[0].severity, Severity::Error);
    assert!(
        f[0].message.contains("\"gameTCP\"") && f[0].message.contains("uppercase"),
        "{}",
        f[0].message
    );
    assert_eq!(
        f[0].fix.as_deref().map(|s| s.starts_with("name: gametcp ")),
        Some(true)
    );
}

#[test]
fn underscores_in_service_port_names_are_found() {
    let all = lint_all(&[]);
    let file = "IQSS__dataverse-docker__kubernetes__infrastructure__k8s__services__dataverse-dev-bridge.yaml";
    let f: Vec<&Finding> = file_findings(&all, file)
        .iter()
        .filter(|f| f.rule == Rule::ServicePortName)
        .collect();
    let fixes: Vec<_> = f
        .iter()
        .map(|f| f.fix.clone().unwrap_or_default())
        .collect();
    assert_eq!(fixes, vec!["name: api-port", "name: admin-port"]);
    assert!(f[0].message.contains("\"api_port\"") && f[0].message.contains("underscore"));
}

#[test]
fn long_service_port_names_are_found() {
    let all = lint_all(&[]);
    let jaeger = found(
        &all,
        "istio__istio__samples__addons__jaeger.yaml",
        Rule::ServicePortNameLong,
    );
    assert_eq!(jaeger.len(), 2);
    assert!(
        jaeger[0]
            .1
            .contains("\"jaeger-collector-http\" has 21 characters")
    );
    let galera = found(
        &all,
        "kubernetes__examples___archived__storage__mysql-galera__pxc-node1.yaml",
        Rule::ServicePortNameLong,
    );
    assert_eq!(galera.len(), 3);
    assert!(galera[0].1.contains("\"state-snapshot-transfer\""));
}

#[test]
fn digit_only_port_names_are_found() {
    let all = lint_all(&[]);
    let kompose = found(
        &all,
        "kubernetes__kompose__script__test__fixtures__v2__output-k8s.yaml",
        Rule::ServicePortNameNumeric,
    );
    assert_eq!(kompose.len(), 25);
    assert_eq!(kompose[0].0, 10);
    assert!(kompose[0].1.contains("\"6379\" is digits only"));
}

#[test]
fn nats_client_port_is_server_first_for_each_mesh() {
    let file = "nats-io__k8s__nats-server__simple-nats.yml";
    assert_eq!(
        found(&lint_all(&[]), file, Rule::ServerFirstUnhandled),
        vec![]
    );
    for (mesh, tag, count) in [(Mesh::Istio, "[istio]", 1), (Mesh::Linkerd, "[linkerd]", 2)] {
        let f = found(&lint_all(&[mesh]), file, Rule::ServerFirstUnhandled);
        assert_eq!(f.len(), count, "{mesh:?}");
        assert_eq!(f[0].0, 39);
        assert!(
            f[0].1.starts_with(tag) && f[0].1.contains("port 4222 (NATS"),
            "{}",
            f[0].1
        );
    }
}

#[test]
fn cockroach_named_grpc_is_a_mismatch() {
    let all = lint_all(&[]);
    let f = found(
        &all,
        "kubernetes__examples___archived__cockroachdb__cockroachdb-statefulset.yaml",
        Rule::NameProtocolMismatch,
    );
    assert_eq!(f.iter().map(|f| f.0).collect::<Vec<_>>(), vec![15, 49, 132]);
    assert!(
        f[0].1.contains("\"grpc\"") && f[0].1.contains("26257") && f[0].1.contains("CockroachDB")
    );
}

#[test]
fn argo_cd_http_with_app_protocol_tcp_is_a_conflict() {
    let all = lint_all(&[]);
    let f: Vec<&Finding> = file_findings(&all, "argoproj__argo-cd__manifests__install.yaml")
        .iter()
        .filter(|f| f.rule == Rule::NameProtocolConflict)
        .collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].object, "Service/argocd-dex-server");
    assert!(
        f[0].message
            .contains("\"http\" says HTTP but appProtocol \"TCP\" says TCP")
    );
    assert_eq!(f[0].path, "spec.ports[0].appProtocol");
}
