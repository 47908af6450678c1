//! Every metric the shipped alerts and dashboard query exists: a real
//! server is started, served a few calls (so the per-call series have
//! samples), and its `/metrics` is scraped; every `portolan_*`,
//! `grpc_server_*` and `process_*` name in the PrometheusRule files (the
//! kustomize overlay's and the Helm chart's template) and in the Grafana
//! dashboard must be one of the series it exposes.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{http_get, start_server, test_args};

const PREFIXES: [&str; 3] = ["portolan_", "grpc_server_", "process_"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files the test reads: every YAML under `deploy/` declaring a
/// PrometheusRule, and every dashboard JSON under `deploy/grafana/`.
fn monitoring_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read deploy/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let yaml = path.extension().is_some_and(|e| e == "yaml");
                let json = path.extension().is_some_and(|e| e == "json");
                if (yaml && text.contains("kind: PrometheusRule"))
                    || (json && path.parent().is_some_and(|p| p.ends_with("grafana")))
                {
                    out.push(path);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("deploy"), &mut out);
    out.sort();
    out
}

/// Every metric name (a token starting with one of [`PREFIXES`]) in `text`,
/// histogram suffixes stripped.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_token =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if starts_token && PREFIXES.iter().any(|p| text[i..].starts_with(p)) {
            let end = text[i..]
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .map_or(text.len(), |n| i + n);
            let name = &text[i..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            names.insert(base.to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    names
}

/// The series names a scrape exposes (samples, and the families declared
/// by `# TYPE` lines, counters with their `_total`).
fn exposed(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                names.insert(name.to_string());
                if kind == "counter" {
                    names.insert(format!("{name}_total"));
                }
            }
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            names.insert(name.to_string());
        }
    }
    names
}

#[tokio::test]
async fn every_metric_in_the_alerts_and_the_dashboard_is_exposed_by_a_real_server() {
    let files = monitoring_files();
    let rel = |p: &PathBuf| p.strip_prefix(repo()).unwrap_or(p).display().to_string();
    let listed: Vec<String> = files.iter().map(rel).collect();
    for expected in [
        "deploy/kubernetes/overlays/production/prometheusrule.yaml",
        "deploy/helm/portolan/templates/prometheusrule.yaml",
    ] {
        assert!(
            listed.iter().any(|f| f == expected),
            "{expected} not found in {listed:?}"
        );
    }
    assert!(
        listed
            .iter()
            .any(|f| f.starts_with("deploy/grafana/") && f.ends_with(".json")),
        "no dashboard in {listed:?}"
    );

    let server = start_server(test_args(None)).await;
    let mut client = server.ready_client().await;
    client
        .lookup_port(portolan::pb::LookupPortRequest {
            port: 443,
            ..Default::default()
        })
        .await
        .expect("a lookup");
    let refused = client
        .lookup_port(portolan::pb::LookupPortRequest {
            port: 70_000,
            ..Default::default()
        })
        .await
        .expect_err("port 70000 is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let scrape = http_get(server.admin_addr, "/metrics").await;
    let exposed = exposed(&scrape);
    server.stop().await;

    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let names = metric_names(&text);
        assert!(!names.is_empty(), "{} names no metric", rel(file));
        let unknown: Vec<&String> = names.iter().filter(|n| !exposed.contains(*n)).collect();
        assert!(
            unknown.is_empty(),
            "{} uses metrics the server does not expose: {unknown:?}",
            rel(file)
        );
        println!(
            "{}: {} metrics, all exposed: {names:?}",
            rel(file),
            names.len()
        );
        checked += names.len();
    }
    assert!(checked >= 10, "only {checked} metric references found");
}

#[test]
fn metric_names_are_read_whole_and_without_histogram_suffixes() {
    let names = metric_names(
        "rate(grpc_server_handling_seconds_bucket{x=\"1\"}[5m]) / process_open_fds \
         and my_process_thing and portolan:recorded:rate5m",
    );
    let want: BTreeSet<String> = ["grpc_server_handling_seconds", "process_open_fds"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(names, want);
}
