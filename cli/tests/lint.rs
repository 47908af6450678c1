//! `portolan lint`, run with `assert_cmd`: stdin, the text line format,
//! JSON and SARIF structure, and the exit codes of `--fail-on`.

use assert_cmd::Command;
use serde_json::Value;

fn portolan() -> Command {
    let mut cmd = Command::cargo_bin("portolan").expect("the portolan binary is built");
    cmd.env_remove("PORTOLAN_ENDPOINT");
    cmd
}

/// A Service with an uppercase-free but underscored name (error) and a
/// port Istio would sniff (warning with `--mesh istio`).
const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: bridge
spec:
  ports:
  - name: api_port
    port: 8592
  - name: web
    port: 8080
";

/// Only an info finding: a Service port name over 15 characters.
const INFO_ONLY: &str = "kind: Service
metadata:
  name: jaeger
spec:
  ports:
  - name: jaeger-collector-http
    port: 14268
";

fn corpus(file: &str) -> String {
    format!(
        "{}/../lint/tests/data/manifests/{file}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn stdin_is_read_and_reported_in_compiler_style() {
    let out = portolan()
        .args(["lint", "-"])
        .write_stdin(SERVICE)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "<stdin>:7:11: error[service-port-name]: Service port name \"api_port\" is not a DNS label (RFC 1123): underscore '_' (only lowercase letters, digits and '-')",
            "  fix: name: api-port",
            "1 error, 0 warnings, 0 infos in 1 file (service-port-name 1)",
        ]
    );
}

#[test]
fn fail_on_sets_the_exit_code() {
    // An error fails by default and with --fail-on warning; never with none.
    portolan()
        .args(["lint"])
        .write_stdin(SERVICE)
        .assert()
        .code(1);
    portolan()
        .args(["lint", "--fail-on", "none"])
        .write_stdin(SERVICE)
        .assert()
        .code(0);
    // An info only: clean by default and at warning, failing at info.
    portolan()
        .args(["lint", "-"])
        .write_stdin(INFO_ONLY)
        .assert()
        .code(0);
    portolan()
        .args(["lint", "--fail-on", "warning", "-"])
        .write_stdin(INFO_ONLY)
        .assert()
        .code(0);
    portolan()
        .args(["lint", "--fail-on", "info", "-"])
        .write_stdin(INFO_ONLY)
        .assert()
        .code(1);
    // Unreadable file, nothing parsable, bad option: 2.
    portolan()
        .args(["lint", "/nonexistent/x.yaml"])
        .assert()
        .code(2);
    portolan()
        .args(["lint"])
        .write_stdin("kind: [unclosed\n")
        .assert()
        .code(2);
    portolan()
        .args(["lint", "--fail-on", "sometimes"])
        .assert()
        .code(2);
}

#[test]
fn meshes_add_their_rules() {
    let out = portolan()
        .args([
            "lint",
            "--mesh",
            "istio",
            "--format",
            "json",
            "--fail-on",
            "none",
        ])
        .write_stdin(SERVICE)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let json: Value = serde_json::from_slice(&out).expect("one JSON document");
    let rules: Vec<&str> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["rule"].as_str().expect("rule"))
        .collect();
    assert_eq!(
        rules,
        vec!["service-port-name", "istio-port-name", "istio-port-name"]
    );
    assert_eq!(json["counts"]["by_severity"]["warning"], 2);
    assert_eq!(json["counts"]["by_rule"]["istio-port-name"], 2);
    assert_eq!(json["findings"][0]["file"], "<stdin>");
    assert_eq!(json["findings"][0]["path"], "spec.ports[0].name");
}

#[test]
fn sarif_has_the_rules_and_located_results() {
    let file = corpus("nats-io__k8s__nats-server__simple-nats.yml");
    let out = portolan()
        .args([
            "lint",
            "--format",
            "sarif",
            "--mesh",
            "istio,linkerd",
            &file,
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let sarif: Value = serde_json::from_slice(&out).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    assert!(
        sarif["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("sarif-2.1.0"))
    );
    let driver = &sarif["runs"][0]["tool"]["driver"];
    assert_eq!(driver["name"], "portolan-lint");
    let rules = driver["rules"].as_array().expect("rules");
    let server_first = rules
        .iter()
        .find(|r| r["id"] == "server-first-unhandled")
        .expect("the rule is described");
    assert_eq!(server_first["defaultConfiguration"]["level"], "error");
    assert!(
        server_first["helpUri"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://"))
    );
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    let nats = results
        .iter()
        .find(|r| {
            r["ruleId"] == "server-first-unhandled"
                && r["message"]["text"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("[istio]"))
        })
        .expect("NATS 4222 under Istio");
    assert_eq!(nats["level"], "error");
    let location = &nats["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], file.as_str());
    assert_eq!(location["region"]["startLine"], 39);
    assert_eq!(location["region"]["startColumn"], 11);
    assert!(
        nats["properties"]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("tcp-nats"))
    );
    let levels: Vec<&str> = results.iter().filter_map(|r| r["level"].as_str()).collect();
    assert!(
        levels
            .iter()
            .all(|l| ["error", "warning", "note"].contains(l))
    );
}

/// The NATS Service of the corpus, its client port named `client`.
const NATS: &str = "apiVersion: v1
kind: Service
metadata:
  name: nats
spec:
  selector:
    app: nats
  ports:
  - name: client
    port: 4222
";

/// `--server` lints through LintPorts on the server's registry and mesh
/// hints: with a hints file calling NATS client-first, the server finds no
/// stall where the compiled-in hints do; a server that cannot be reached
/// is exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_mode_uses_the_servers_hints() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hints = dir.path().join("hints.toml");
    // NATS recorded as client-first: no stalls to report.
    let changed =
        portolan_test_support::server::mesh_hints_with(4222, "server_speaks_first", "\"no\"");
    std::fs::write(&hints, changed).expect("write hints");
    let mut args = portolan_test_support::server::test_args(None);
    args.mesh_hints = Some(hints);
    let server = portolan_test_support::server::start_server(args).await;
    server.ready_client().await;
    let endpoint = server.endpoint();

    let run = move |extra: &'static [&'static str], endpoint: String| {
        tokio::task::spawn_blocking(move || {
            let out = portolan()
                .args(["lint", "--mesh", "linkerd", "--endpoint", &endpoint])
                .args(extra)
                .write_stdin(NATS)
                .output()
                .expect("run");
            (
                out.status.code(),
                String::from_utf8(out.stdout).expect("utf-8"),
                String::from_utf8(out.stderr).expect("utf-8"),
            )
        })
    };
    // Locally, the compiled-in hints: NATS stalls under Linkerd.
    let (code, local, _) = run(&[], endpoint.clone()).await.expect("local");
    assert_eq!(code, Some(1), "{local}");
    assert!(
        local.contains("<stdin>:10:11: error[server-first-unhandled]: [linkerd] port 4222"),
        "{local}"
    );
    // On the server, its hints: no stall, nothing at or above error.
    let (code, remote, err) = run(&["--server"], endpoint.clone()).await.expect("remote");
    assert_eq!(code, Some(0), "{remote}{err}");
    assert!(!remote.contains("server-first-unhandled"), "{remote}");
    assert!(
        remote.ends_with("0 errors, 0 warnings, 0 infos in 1 file\n"),
        "{remote}"
    );
    server.stop().await;

    // The server is gone: exit 3, naming the endpoint.
    let (code, _, err) = run(&["--server"], endpoint.clone()).await.expect("gone");
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains(&endpoint), "{err}");
}
