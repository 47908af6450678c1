//! The `portolan` binary, run with `assert_cmd`: every subcommand, output
//! format and exit code, offline and against an in-process server on
//! `127.0.0.1:0`. Waits poll with deadlines; nothing sleeps to wait.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use portolan_server::Args;
use portolan_test_support::server::{self as support, TestServer, test_args};
use portolan_test_support::shared_file;
use predicates::prelude::*;
use serde_json::Value;

fn portolan() -> Command {
    let mut cmd = Command::cargo_bin("portolan").expect("the portolan binary is built");
    cmd.env_remove("PORTOLAN_ENDPOINT");
    cmd
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Runs `cmd`, asserts that it exits 0, and returns its stdout.
fn success_stdout(cmd: &mut Command) -> Vec<u8> {
    cmd.assert().success().get_output().stdout.clone()
}

/// Runs `cmd`, asserts that it exits 0, and parses its stdout as JSON lines.
fn success_json(cmd: &mut Command) -> Vec<Value> {
    json_lines(&success_stdout(cmd))
}

/// The next line `watch` printed, within `timeout`, parsed as JSON.
fn recv_json(lines: &mpsc::Receiver<String>, timeout: Duration, what: &str) -> Value {
    serde_json::from_str(&lines.recv_timeout(timeout).expect(what)).expect("json")
}

/// The shared in-process server (`portolan-test-support`) serving a copy
/// of a CSV that the test may change.
struct Server {
    endpoint: String,
    data: PathBuf,
    _server: TestServer,
    _dir: tempfile::TempDir,
}

async fn start_server(csv: &Path) -> Server {
    start_server_with(csv, |_| {}).await
}

/// [`start_server`] with `tweak` applied to the arguments.
async fn start_server_with(csv: &Path, tweak: impl FnOnce(&mut Args)) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("registry.csv");
    std::fs::copy(csv, &data).expect("copy");
    let mut args = test_args(Some(&data));
    args.poll_interval = Duration::from_millis(500);
    args.shutdown_grace = Duration::from_secs(1);
    tweak(&mut args);
    let server = support::start_server(args).await;
    let endpoint = server.endpoint();
    server.ready_client().await;
    Server {
        endpoint,
        data,
        _server: server,
        _dir: dir,
    }
}

/// Runs blocking `f` (which runs the binary) off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// The embedded default is the full registry: 443 is https, with nothing
/// to configure, and `--version` names its edition.
#[test]
fn the_embedded_default_is_the_full_registry_of_its_edition() {
    let rows = success_json(portolan().args(["--offline", "lookup", "443/tcp"]));
    assert_eq!(rows[0]["name"], "https");
    let info = &success_json(portolan().args(["--offline", "info"]))[0];
    assert_eq!(info["record_count"], 14_512);
    // RFC 3339, to the second, in UTC.
    let loaded = info["loaded_at"].as_str().expect("loaded_at");
    humantime::parse_rfc3339(loaded).unwrap_or_else(|e| panic!("{loaded}: {e}"));
    assert!(loaded.ends_with('Z') && loaded.len() == 20, "{loaded}");
    assert_eq!(info["registry_updated"], "2026-04-24");
    portolan()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "embedded registry: IANA, edition 2026-04-24",
        ));
}

#[test]
fn offline_lookup_by_port_name_and_protocol() {
    let rows = success_json(portolan().args(["--offline", "lookup", "2692"]));
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["name"] == "admins-lms" && r["port"] == 2692)
    );
    // The proto3 JSON mapping of portolan.v1.Record (what grpcurl prints).
    assert_eq!(rows[0]["state"], "RECORD_STATE_ASSIGNED");
    assert_eq!(rows[0]["portEnd"], 2692);

    // Global flags after the subcommand; protocol in the query or as a flag.
    let rows = success_json(portolan().args(["lookup", "2692/udp", "--offline"]));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["protocol"], "PROTOCOL_UDP");
    let rows =
        success_json(portolan().args(["--offline", "lookup", "ADMINS-LMS", "--proto", "tcp"]));
    assert_eq!(rows[0]["protocol"], "PROTOCOL_TCP");

    portolan()
        .args(["--offline", "lookup", "65000"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("portolan: no record for port 65000\n");
    portolan()
        .args(["--offline", "lookup", "2692/tcp", "--proto", "udp"])
        .assert()
        .code(2);
    portolan()
        .args(["--offline", "lookup", "70000"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("out of range"));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    portolan().assert().code(2);
    portolan().args(["frobnicate"]).assert().code(2);
    portolan()
        .args(["--offline", "list", "--range", "9-1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ends before it starts"));
    portolan()
        .args(["--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("lookup"));
}

#[test]
fn table_and_csv_outputs() {
    let out = success_stdout(portolan().args(["--offline", "-o", "table", "lookup", "2692"]));
    let text = String::from_utf8(out).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{text}");
    assert_eq!(lines.len(), 3);
    let col = lines[0].find("PORT").expect("PORT column");
    assert!(
        lines[1..].iter().all(|l| l[col..].starts_with("2692")),
        "{text}"
    );
    assert!(lines[1].contains("admins-lms") && lines[1].contains("Admins LMS"));

    portolan()
        .args(["--offline", "--output", "csv", "lookup", "2692/tcp"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "name,port,port_end,protocol,state,description\nadmins-lms,2692,2692,tcp,assigned,Admins LMS\n",
        ));
}

#[test]
fn offline_search_list_info_export() {
    let rows = success_json(portolan().args(["--offline", "search", "admins-lms", "--limit", "1"]));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "admins-lms");
    portolan()
        .args(["--offline", "search", "zzzz-nothing"])
        .assert()
        .code(1);
    // Nothing found prints no empty table header, only the message.
    portolan()
        .args(["--offline", "-o", "table", "search", "zzzz-nothing"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("portolan: nothing matches \"zzzz-nothing\"\n");

    let rows = success_json(portolan().args([
        "--offline",
        "list",
        "--proto",
        "udp",
        "--range",
        "2692-2700",
        "--state",
        "assigned",
    ]));
    assert!(!rows.is_empty());
    for r in &rows {
        assert!(r["protocol"] == "PROTOCOL_UDP" || r["protocol"].is_null());
        assert_eq!(r["state"], "RECORD_STATE_ASSIGNED");
        assert!(r["port"].as_u64().expect("port") <= 2700);
    }

    let info = &success_json(portolan().args(["--offline", "info"]))[0];
    assert_eq!(info["source_path"], "embedded");
    assert_eq!(info["record_count"], 14_512);
    // RFC 3339, to the second, in UTC.
    let loaded = info["loaded_at"].as_str().expect("loaded_at");
    humantime::parse_rfc3339(loaded).unwrap_or_else(|e| panic!("{loaded}: {e}"));
    assert!(loaded.ends_with('Z') && loaded.len() == 20, "{loaded}");

    portolan()
        .args(["--offline", "export", "--format", "services"])
        .assert()
        .success()
        .stdout(predicate::str::contains("admins-lms\t2692/tcp"));
    let records = success_json(portolan().args(["--offline", "export", "--format", "json"]));
    assert_eq!(records.len(), 14_512, "one JSON record per line");
    portolan()
        .args(["--offline", "export", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("Service Name,Port Number,"));
}

#[test]
fn offline_with_a_data_file() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let rows = success_json(
        portolan()
            .args(["--offline", "--data"])
            .arg(&csv)
            .args(["lookup", "443/tcp"]),
    );
    assert_eq!(rows[0]["name"], "https");
}

#[test]
fn check_reports_counts_diagnostics_and_errors() {
    let services = shared_file("etc/services-debian");
    let report = &success_json(portolan().arg("check").arg(&services))[0];
    assert_eq!(report["valid"], true);
    assert_eq!(report["format"], "services");
    assert!(report["records"].as_u64().expect("count") > 100);
    assert!(report["records_by_protocol"]["tcp"].as_u64().expect("tcp") > 50);

    let truncated = shared_file("bad/truncated.csv");
    portolan()
        .arg("check")
        .arg(&truncated)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line ").and(predicate::str::contains("truncated")));
    portolan()
        .args(["check", "/nonexistent/registry.csv"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("portolan: cannot read"));
}

/// `portolan diff` on the 2026-04 CSV and the 2026-08 XML: its counts equal
/// a count made here from the parsed records alone (keys as name, ports,
/// protocol and ordinal among earlier equal rows; content by equality),
/// every changed record names at least one field, and the exit codes are
/// diff(1)'s.
#[test]
fn diff_counts_the_edition_change_and_exits_like_diff() {
    use std::collections::HashMap;
    let old = shared_file("iana/service-names-port-numbers.csv");
    let new = shared_file("iana/service-names-port-numbers.xml");
    let keyed = |path: &Path| {
        let bytes = std::fs::read(path).expect("read");
        let records = portolan_registry::parse(&bytes, None)
            .expect("parses")
            .registry
            .records;
        // Name as written, port range, protocol.
        type Triple = (Option<String>, Option<(u16, u16)>, Option<String>);
        let mut seen: HashMap<Triple, u32> = HashMap::new();
        records
            .into_iter()
            .map(|r| {
                let triple = (
                    r.name.clone(),
                    r.ports.map(|p| (p.start, p.end)),
                    r.protocol.as_ref().map(|p| p.as_str().to_string()),
                );
                let ordinal = seen.entry(triple.clone()).or_insert(0);
                let key = (triple, *ordinal);
                *ordinal += 1;
                (key, r)
            })
            .collect::<HashMap<_, _>>()
    };
    let (before, after) = (keyed(&old), keyed(&new));
    let added = after.keys().filter(|k| !before.contains_key(*k)).count();
    let removed = before.keys().filter(|k| !after.contains_key(*k)).count();
    let changed = after
        .iter()
        .filter(|(k, r)| before.get(*k).is_some_and(|b| b != *r))
        .count();
    assert!(added + removed + changed > 0, "the editions differ");

    let output = portolan()
        .args(["--output", "json", "diff"])
        .arg(&old)
        .arg(&new)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let lines = json_lines(&output);
    let summary = lines.last().expect("a summary line");
    assert_eq!(summary["change"], "summary");
    assert_eq!(summary["added"], added);
    assert_eq!(summary["removed"], removed);
    assert_eq!(summary["changed"], changed);
    let count = |kind: &str| lines.iter().filter(|l| l["change"] == kind).count();
    assert_eq!(
        (count("added"), count("removed"), count("changed")),
        (added, removed, changed)
    );
    assert!(
        lines
            .iter()
            .filter(|l| l["change"] == "changed")
            .all(|l| l["fields"].as_object().is_some_and(|f| !f.is_empty())),
        "every changed record names its changed fields"
    );

    // The same file: equal, exit 0.
    portolan()
        .args(["--output", "table", "diff"])
        .arg(&old)
        .arg(&old)
        .assert()
        .code(0)
        .stdout("0 added, 0 removed, 0 changed\n");
    // A file that does not parse: exit 2, saying which.
    let garbage = shared_file("bad/garbage.csv");
    portolan()
        .arg("diff")
        .arg(&old)
        .arg(&garbage)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot parse"));
}

/// The man page is generated from the options themselves (clap_mangen).
#[test]
fn the_man_page_is_generated_from_the_options() {
    let out = success_stdout(portolan().arg("manpage"));
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.contains(".TH portolan 1"), "{text}");
    // roff escapes each hyphen of an option.
    for needle in [
        "lookup",
        r"\-\-endpoint",
        r"\-\-timeout",
        r"\-\-no\-headers",
        "Exit status",
        "edition 2026-04-24",
    ] {
        assert!(text.contains(needle), "the man page mentions {needle}");
    }
}

#[test]
fn completions_are_generated() {
    portolan()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("portolan"));
    portolan().args(["completions", "zsh"]).assert().success();
    portolan().args(["completions", "fish"]).assert().success();
}

/// Exit status 3 means the server could not be reached (or failed); 2
/// stays for usage errors and bad input, so scripts can tell them apart.
#[test]
fn connection_refused_is_one_line_and_exit_3() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let endpoint = format!("http://{addr}");
    portolan()
        .args(["lookup", "443", "--endpoint", &endpoint])
        .assert()
        .code(3)
        .stdout("")
        .stderr(format!(
            "portolan: cannot connect to {endpoint}: connection refused\n"
        ));
    // Deadlines are durations, as the server's flags take them.
    portolan()
        .args([
            "lookup",
            "443",
            "--timeout",
            "500ms",
            "--endpoint",
            &endpoint,
        ])
        .assert()
        .code(3);
    portolan()
        .args(["lookup", "443", "--timeout", "2.5", "--endpoint", &endpoint])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--timeout"));
}

#[test]
fn a_closed_pipe_exits_quietly() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("portolan"))
        .args(["--offline", "--data"])
        .arg(&csv)
        .args(["list", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout); // like `| head -c 16`
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(stderr, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_server() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server(&csv).await;
    let ep = server.endpoint.clone();

    let e = ep.clone();
    let rows =
        blocking(move || success_json(portolan().args(["lookup", "443", "--endpoint", &e]))).await;
    assert!(rows.len() >= 3);
    assert!(
        rows.iter()
            .all(|r| r["name"] == "https" && r["port"] == 443)
    );

    // PORTOLAN_ENDPOINT as the fallback.
    let e = ep.clone();
    blocking(move || {
        portolan()
            .env("PORTOLAN_ENDPOINT", &e)
            .args(["-o", "table", "lookup", "https/tcp"])
            .assert()
            .success()
            .stdout(predicate::str::contains("https").and(predicate::str::contains("443")));
        portolan()
            .args(["--endpoint", &e, "lookup", "no-such-service-anywhere"])
            .assert()
            .code(1)
            .stderr("portolan: no record for service no-such-service-anywhere\n");
        portolan()
            .args([
                "--endpoint",
                &e,
                "search",
                "ldap",
                "--proto",
                "tcp",
                "--limit",
                "3",
            ])
            .assert()
            .success()
            .stdout(predicate::function(|s: &[u8]| {
                let rows = json_lines(s);
                rows.len() == 3 && rows[0]["name"] == "ldap"
            }));
        portolan()
            .args([
                "--endpoint",
                &e,
                "list",
                "--range",
                "20-23",
                "--proto",
                "tcp",
            ])
            .assert()
            .success()
            .stdout(
                predicate::str::contains("\"ssh\"").and(predicate::str::contains("\"telnet\"")),
            );
        portolan()
            .args(["--endpoint", &e, "info"])
            .assert()
            .success()
            .stdout(predicate::function(|s: &[u8]| {
                let info = &json_lines(s)[0];
                info["source_format"] == "iana-csv"
                    && info["record_count"].as_u64().unwrap_or(0) > 10_000
            }));
        portolan()
            .args(["--endpoint", &e, "export", "--format", "services"])
            .assert()
            .success()
            .stdout(predicate::str::contains("https\t443/tcp"));
    })
    .await;

    // watch: the snapshot summary, then the change as it is applied.
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("portolan"))
        .args(["watch", "--endpoint", &ep, "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = recv_json(&rx, Duration::from_secs(20), "snapshot line");
    assert_eq!(first["event"], "snapshot");
    let text = std::fs::read_to_string(&server.data).expect("read");
    let changed = text.replacen(
        "https,443,tcp,http protocol over TLS/SSL,",
        "https,443,tcp,changed by the cli test,",
        1,
    );
    let tmp = server.data.with_extension("tmp");
    std::fs::write(&tmp, changed).expect("write");
    std::fs::rename(&tmp, &server.data).expect("rename");
    let delta = recv_json(&rx, Duration::from_secs(10), "delta line");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(delta["event"], "delta");
    assert_eq!(delta["from_version"], first["version"]);
    assert_eq!(
        delta["upserted"][0]["description"],
        "changed by the cli test"
    );
}

/// Lines of a child's pipe, sent over a channel by a reader thread.
fn line_channel(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (at most `timeout`) for a line of `lines` containing `needle`;
/// returns every line seen up to it.
fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str, timeout: Duration) -> Vec<String> {
    let until = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(e) => panic!("no line with {needle:?} within {timeout:?} ({e}); saw {seen:?}"),
        }
    }
}

/// Defect 13: `watch` exited with status 2 when the server ended the
/// stream at its maximum lifetime. Now it reconnects with the last version
/// it printed (Watch rule 7): with a 1 s stream lifetime (also the HTTP/2
/// connection age, so connections are closed with GOAWAY too), a change
/// made after several reconnections arrives as a delta from the snapshot's
/// version (a reconnect from 0 would print a second snapshot), and nothing
/// is printed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reconnects_with_its_version_when_the_stream_ends() {
    let csv = shared_file("iana/sample-1000.csv");
    let server = start_server_with(&csv, |args| {
        args.max_stream_lifetime = Duration::from_secs(1);
    })
    .await;
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("portolan"))
        .args(["watch", "--endpoint", &server.endpoint, "-o", "json"])
        .env_remove("PORTOLAN_WATCH_MAX_RECONNECTS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let stdout = line_channel(child.stdout.take().expect("stdout"));
    let stderr = line_channel(child.stderr.take().expect("stderr"));

    let first = recv_json(&stdout, Duration::from_secs(20), "snapshot line");
    assert_eq!(first["event"], "snapshot");
    assert_eq!(first["records"], 1000);
    let version = first["version"].as_u64().expect("version");
    let state = first["state_id"].as_str().expect("state_id").to_string();
    assert_eq!(state.len(), 16);

    // Two streams end and are reopened from the snapshot's state.
    let logged = blocking(move || {
        let mut logged = wait_for_line(&stderr, "reconnecting", Duration::from_secs(10));
        logged.extend(wait_for_line(
            &stderr,
            "reconnecting",
            Duration::from_secs(10),
        ));
        (logged, stderr)
    })
    .await;
    let (logged, stderr) = logged;
    assert!(
        logged
            .iter()
            .filter(|l| l.contains("reconnecting"))
            .all(|l| l.starts_with("portolan: ")
                && l.contains(&format!(
                    "reconnecting from state {state} (version {version}) in "
                ))),
        "{logged:?}"
    );
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "watch exited"
    );
    assert!(stdout.try_recv().is_err(), "nothing new was printed");

    let text = std::fs::read_to_string(&server.data).expect("read");
    let changed = text.replacen(
        "ftp,21,tcp,File Transfer Protocol [Control],",
        "ftp,21,tcp,changed after a reconnection,",
        1,
    );
    assert_ne!(changed, text, "the sample holds the ftp row");
    let tmp = server.data.with_extension("tmp");
    std::fs::write(&tmp, changed).expect("write");
    std::fs::rename(&tmp, &server.data).expect("rename");

    let delta = recv_json(&stdout, Duration::from_secs(15), "delta line");
    assert_eq!(delta["event"], "delta", "{delta}");
    assert_eq!(delta["from_version"], version);
    assert_eq!(delta["version"], version + 1);
    assert_eq!(delta["from_state_id"], state.as_str());
    let new_state = delta["state_id"].as_str().expect("state_id").to_string();
    assert_ne!(new_state, state);
    assert_eq!(
        delta["upserted"][0]["description"],
        "changed after a reconnection"
    );

    // Later reconnections resume from the delta's state and print nothing.
    let (logged, _stderr) = blocking(move || {
        let logged = wait_for_line(
            &stderr,
            &format!(
                "reconnecting from state {new_state} (version {})",
                version + 1
            ),
            Duration::from_secs(10),
        );
        (logged, stderr)
    })
    .await;
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "watch exited"
    );
    let _ = child.kill();
    let _ = child.wait();
    let rest: Vec<String> = stdout.try_iter().collect();
    assert!(
        rest.is_empty(),
        "printed twice: {rest:?} (stderr {logged:?})"
    );
}

/// `watch --max-reconnects 2` against a server that went away gives up
/// with exit 3 (the server is unreachable) after two failed attempts,
/// naming the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_gives_up_after_max_reconnects() {
    let csv = shared_file("iana/sample-1000.csv");
    let server = start_server_with(&csv, |args| {
        args.max_stream_lifetime = Duration::from_secs(1);
    })
    .await;
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("portolan"))
        .args([
            "watch",
            "--max-reconnects",
            "2",
            "--endpoint",
            &server.endpoint,
        ])
        .args(["-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let stdout = line_channel(child.stdout.take().expect("stdout"));
    let first = recv_json(&stdout, Duration::from_secs(20), "snapshot line");
    assert_eq!(first["event"], "snapshot");
    drop(server); // stops the server: reconnections now fail
    let mut stderr = String::new();
    let status = blocking(move || {
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("stderr");
        (child.wait().expect("wait"), stderr)
    })
    .await;
    let (status, stderr) = status;
    assert_eq!(status.code(), Some(3), "{stderr}");
    let last = stderr.lines().last().expect("a message");
    assert!(
        last.starts_with("portolan: ") && last.ends_with("gave up after 2 reconnection attempts"),
        "{stderr}"
    );
}

/// Defect 15: ESC and BEL bytes in a data file's descriptions were printed
/// raw by `-o table` and `-o csv`, so a file could drive the terminal. Now
/// every control character is escaped in human output; JSON keeps the
/// exact text (serde_json escapes it).
#[test]
fn control_characters_are_escaped_in_table_and_csv() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hostile.csv");
    std::fs::write(
        &data,
        "Service Name,Port Number,Transport Protocol,Description,Assignee,Contact,\
         Registration Date,Modification Date,Reference,Service Code,\
         Unauthorized Use Reported,Assignment Notes\r\n\
         evil,4242,tcp,\"red \x1b[31mtext\x07 and \u{9b}2J\x7f end\",,,,,,,,\r\n",
    )
    .expect("write");
    let run = |format: &str| {
        let out = success_stdout(
            portolan()
                .args(["--offline", "--data"])
                .arg(&data)
                .args(["-o", format, "lookup", "4242"]),
        );
        String::from_utf8(out).expect("utf8")
    };
    let table = run("table");
    let csv = run("csv");
    for (name, text) in [("table", &table), ("csv", &csv)] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{name} holds a control character: {text:?}"
        );
        assert!(
            text.contains(r"red \x1b[31mtext\x07 and \u{9b}2J\x7f end"),
            "{name}: {text:?}"
        );
    }
    let rows = success_json(
        portolan()
            .args(["--offline", "--data"])
            .arg(&data)
            .args(["-o", "json", "lookup", "4242"]),
    );
    assert_eq!(
        rows[0]["description"],
        "red \x1b[31mtext\x07 and \u{9b}2J\x7f end"
    );
}

/// The summary line of `portolan -o json diff OLD NEW` and its exit code.
fn diff_summary(old: &str, new: &str) -> (Value, i32) {
    let output = portolan()
        .args(["-o", "json", "diff", old, new])
        .output()
        .expect("run diff");
    let lines = json_lines(&output.stdout);
    let summary = lines.last().cloned().unwrap_or(Value::Null);
    (summary, output.status.code().unwrap_or(-1))
}

fn counts(summary: &Value) -> (u64, u64, u64) {
    let n = |k: &str| summary[k].as_u64().unwrap_or(u64::MAX);
    (n("added"), n("removed"), n("changed"))
}

/// `portolan diff` with a server on either side (issue #16 item 6): what
/// the server serves compared with a file, record for record. A server
/// serving the 2026-08 XML against the 2026-04-24 XML file gives the same
/// counts as the two files compared directly, and a server compared with
/// its own file is equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_compares_a_server_with_a_file_either_way() {
    let old = shared_file("iana/service-names-port-numbers-2026-04-24.xml");
    let new = shared_file("iana/service-names-port-numbers.xml");
    let server = start_server(&new).await;
    let endpoint = server.endpoint.clone();
    let (old, new) = (
        old.to_str().expect("UTF-8 path").to_string(),
        new.to_str().expect("UTF-8 path").to_string(),
    );
    let (files, from_server, to_server, same) = blocking(move || {
        (
            diff_summary(&old, &new),
            diff_summary(&endpoint, &old),
            diff_summary(&old, &endpoint),
            diff_summary(&new, &endpoint),
        )
    })
    .await;
    assert_eq!(files.1, 1, "{}", files.0);
    let (added, removed, changed) = counts(&files.0);
    assert!(added > 0 && changed > 0, "{}", files.0);
    assert_eq!(to_server.1, 1);
    assert_eq!(
        counts(&to_server.0),
        (added, removed, changed),
        "file -> server"
    );
    assert_eq!(from_server.1, 1);
    assert_eq!(
        counts(&from_server.0),
        (removed, added, changed),
        "server -> file"
    );
    assert_eq!(same.1, 0, "{}", same.0);
    assert_eq!(counts(&same.0), (0, 0, 0));
    assert_eq!(same.0["new"], server.endpoint.as_str());
}

/// `portolan check FILE --against REFERENCE` (issue #16 item 4): a company
/// file checked against the real IANA CSV, as a file and as a server.
/// IANA assigns 8080/tcp to http-alt and 8443/tcp to pcsync-https, and
/// registers https on 443 only; 45999 lies in an unassigned range and ssh
/// sits on 22/tcp as IANA has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_against_lists_port_and_name_conflicts_with_iana() {
    let dir = tempfile::tempdir().expect("temp dir");
    let corp = dir.path().join("corp.csv");
    std::fs::write(
        &corp,
        "Service Name,Port Number,Transport Protocol,Description,Assignee,Contact,\
         Registration Date,Modification Date,Reference,Service Code,\
         Unauthorized Use Reported,Assignment Notes\r\n\
         corp-api,8080,tcp,Our API,,,,,,,,\r\n\
         https,8443,tcp,Our TLS front,,,,,,,,\r\n\
         corp-metrics,45999,tcp,Our metrics,,,,,,,,\r\n\
         ssh,22,tcp,SSH,,,,,,,,\r\n",
    )
    .expect("write corp.csv");
    let iana = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server(&iana).await;
    let endpoint = server.endpoint.clone();
    let corp_arg = corp.clone();
    let (from_file, from_server, clean) = blocking(move || {
        let run = |against: &std::ffi::OsStr| {
            let output = portolan()
                .args(["-o", "json", "check"])
                .arg(&corp_arg)
                .arg("--against")
                .arg(against)
                .output()
                .expect("run check");
            (json_lines(&output.stdout), output.status.code())
        };
        let clean = portolan()
            .args(["-o", "json", "check"])
            .arg(&iana)
            .arg("--against")
            .arg(&iana)
            .output()
            .expect("run check");
        (
            run(iana.as_os_str()),
            run(std::ffi::OsStr::new(&endpoint)),
            (json_lines(&clean.stdout), clean.status.code()),
        )
    })
    .await;
    for (lines, code) in [&from_file, &from_server] {
        assert_eq!(*code, Some(1), "conflicts exit 1: {lines:?}");
        let conflicts: Vec<String> = lines
            .iter()
            .filter(|l| l.get("conflict").is_some())
            .map(|l| {
                format!(
                    "{} {} {} -> {}",
                    l["conflict"].as_str().unwrap(),
                    l["record"]["name"].as_str().unwrap(),
                    l["port"],
                    l["reference"][0]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            conflicts,
            [
                "port corp-api 8080 -> http-alt",
                "port https 8443 -> pcsync-https",
                "name https null -> https",
            ]
        );
        let summary = lines.last().unwrap();
        assert_eq!(summary["conflicts"], 3);
        let name = lines.iter().find(|l| l["conflict"] == "name").unwrap();
        assert!(
            name["reference"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["port"] == 443),
            "https is registered on 443: {name}"
        );
    }
    // The reference against itself: no conflict, exit 0.
    assert_eq!(clean.1, Some(0), "{:?}", clean.0.last());
    assert_eq!(clean.0.last().unwrap()["conflicts"], 0);
}

/// `portolan lookup KEY...` and `-` (issue #18 item 1): keys from stdin
/// answered in input order through one BatchLookup stream, each with its
/// status; a key not found makes the exit status 1, an invalid one 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_keys_go_through_one_batch_in_input_order() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server(&csv).await;
    let endpoint = server.endpoint.clone();
    let (json, table, invalid) = blocking(move || {
        let json = portolan()
            .args(["-o", "json", "--endpoint", &endpoint, "lookup", "-"])
            .write_stdin("22\n443/tcp\nhttps\nno-such\n")
            .output()
            .expect("run lookup");
        let table = portolan()
            .args([
                "-o",
                "table",
                "--endpoint",
                &endpoint,
                "lookup",
                "22/tcp",
                "no-such",
                "443/tcp",
            ])
            .output()
            .expect("run lookup");
        let invalid = portolan()
            .args([
                "-o",
                "json",
                "--endpoint",
                &endpoint,
                "lookup",
                "22",
                "70000",
            ])
            .output()
            .expect("run lookup");
        (json, table, invalid)
    })
    .await;
    assert_eq!(json.status.code(), Some(1));
    let lines = json_lines(&json.stdout);
    let statuses: Vec<(&str, &str, usize)> = lines
        .iter()
        .map(|l| {
            (
                l["query"].as_str().unwrap(),
                l["status"].as_str().unwrap(),
                l["records"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("22", "found", 3),
            ("443/tcp", "found", 1),
            ("https", "found", 4),
            ("no-such", "not_found", 0)
        ]
    );
    assert_eq!(lines[0]["records"][0]["name"], "ssh");
    assert_eq!(lines[3]["error"], "no record for service no-such");

    assert_eq!(table.status.code(), Some(1));
    let text = String::from_utf8(table.stdout).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].starts_with("ssh") && rows[1].starts_with("https"),
        "{text}"
    );
    assert_eq!(
        String::from_utf8(table.stderr).unwrap(),
        "portolan: no-such: no record for service no-such\n"
    );

    assert_eq!(invalid.status.code(), Some(2));
    let lines = json_lines(&invalid.stdout);
    assert_eq!(lines[0]["status"], "found");
    assert_eq!(lines[1]["status"], "invalid");

    // The keys went as one BatchLookup stream per run, never one call each.
    let batches = server
        ._server
        .metric(
            "grpc_server_started_total{grpc_type=\"bidi_stream\",grpc_service=\"portolan.v1.PortRegistryService\",grpc_method=\"BatchLookup\"}",
        )
        .await;
    let singles = server
        ._server
        .metric(
            "grpc_server_started_total{grpc_type=\"unary\",grpc_service=\"portolan.v1.PortRegistryService\",grpc_method=\"LookupPort\"}",
        )
        .await;
    assert_eq!((batches, singles), (3.0, 0.0));
}

/// `-o services` prints services(5) lines as `getent services` does, and
/// `--no-headers` drops the header line of tables and CSV (issue #18 item
/// 1).
#[test]
fn services_output_and_no_headers() {
    portolan()
        .args(["--offline", "lookup", "22", "443/tcp", "-o", "services"])
        .assert()
        .code(0)
        .stdout(
            "ssh                   22/tcp\n\
             ssh                   22/udp\n\
             ssh                   22/sctp\n\
             https                 443/tcp\n",
        );
    portolan()
        .args(["--offline", "-o", "services", "lookup", "6010/tcp"])
        .assert()
        .stdout("x11                   6000-6063/tcp\n");
    portolan()
        .args([
            "--offline",
            "-o",
            "table",
            "--no-headers",
            "lookup",
            "22/tcp",
        ])
        .assert()
        .stdout("ssh   22    tcp    assigned  The Secure Shell (SSH) Protocol\n");
    portolan()
        .args(["--offline", "-o", "csv", "--no-headers", "lookup", "22/tcp"])
        .assert()
        .stdout("ssh,22,22,tcp,assigned,The Secure Shell (SSH) Protocol\n");
}

/// Layers offline, as the server takes them: `--data NAME=FILE` repeated,
/// highest priority first; every record names its layer; `list --layer`
/// filters; a table gets a LAYER column; two unnamed sources are refused.
#[test]
fn offline_layers_answer_in_priority_order_with_their_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let corp = dir.path().join("corp-ports");
    std::fs::write(&corp, "corp-web\t443/tcp\t# Corp web\ncorp-db\t15432/tcp\n").expect("corp");
    let iana = shared_file("iana/service-names-port-numbers.csv");
    let data = |cmd: &mut Command| {
        cmd.arg("--offline")
            .arg("--data")
            .arg(format!("corp={}", corp.display()))
            .arg("--data")
            .arg(format!("iana={}", iana.display()));
    };
    let mut cmd = portolan();
    data(&mut cmd);
    let rows = success_json(cmd.args(["lookup", "443/tcp"]));
    let layers: Vec<(&str, u64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["layer"].as_str().expect("layer"),
                r["layerRank"].as_u64().unwrap_or(0),
                r["name"].as_str().expect("name"),
            )
        })
        .collect();
    assert_eq!(layers, [("corp", 0, "corp-web"), ("iana", 1, "https")]);

    let mut cmd = portolan();
    data(&mut cmd);
    let corp_only = success_json(cmd.args(["list", "--layer", "corp"]));
    let names: Vec<&str> = corp_only
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["corp-web", "corp-db"]);

    let mut cmd = portolan();
    data(&mut cmd);
    cmd.args(["-o", "table", "lookup", "443/tcp"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("LAYER  NAME"))
        .stdout(predicate::str::contains("corp   corp-web"));

    portolan()
        .args(["--offline", "--data"])
        .arg(&corp)
        .arg("--data")
        .arg(&iana)
        .args(["lookup", "443"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("each needs a name"));
}

/// `describe` offline as one JSON object (issue #17).
fn describe_json(port: &str) -> Value {
    let rows = success_json(portolan().args(["--offline", "-o", "json", "describe", port]));
    assert_eq!(rows.len(), 1, "one object");
    rows.into_iter().next().expect("one object")
}

/// `portolan describe`: records, then what the meshes do with the port,
/// from the compiled-in hints (issue #17): MySQL is server-first and in
/// both meshes' lists; NATS is server-first and in neither, so the fix
/// names the Linkerd annotation (4222 itself is only inside a registry
/// range); PostgreSQL is client-first, opaque in
/// Linkerd for another reason; HTTPS needs nothing.
#[test]
fn describe_tells_what_the_meshes_do_with_a_port() {
    let mysql = describe_json("3306");
    // The proto3 JSON of DescribePortResponse: absent fields are defaults.
    assert_eq!(mysql["port"], 3306);
    assert_eq!(mysql["protocol"], Value::Null);
    let records = mysql["records"].as_array().expect("records");
    assert!(!records.is_empty());
    assert!(records.iter().all(|r| r["name"] == "mysql"));
    assert_eq!(
        mysql["hint"]["serverSpeaksFirst"],
        "SERVER_SPEAKS_FIRST_YES"
    );
    assert!(
        mysql["hint"]["serverSpeaksFirstSource"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://dev.mysql.com/"))
    );
    assert_eq!(mysql["istio"]["defaultBehavior"], "ISTIO_DEFAULT_TCP");
    assert_eq!(mysql["istio"]["stalls"], "STALL_NO");
    assert_eq!(mysql["istio"]["fix"], Value::Null);
    assert_eq!(
        mysql["linkerd"]["defaultBehavior"],
        "LINKERD_DEFAULT_OPAQUE"
    );
    assert_eq!(mysql["linkerd"]["stalls"], "STALL_NO");
    assert_eq!(mysql["names"][0]["name"], "mysql");
    assert_eq!(mysql["names"][0]["kubernetesPortName"], true);

    let nats = describe_json("4222/tcp");
    assert_eq!(nats["protocol"], "PROTOCOL_TCP");
    // 4222 has no registration of its own, only the range 4200-4299.
    let records = nats["records"].as_array().expect("records");
    assert!(records.iter().all(|r| r["name"] == "vrml-multi-use"));
    assert_eq!(nats["hint"]["serverSpeaksFirst"], "SERVER_SPEAKS_FIRST_YES");
    assert_eq!(nats["hint"]["ianaName"], Value::Null);
    assert_eq!(nats["istio"]["defaultBehavior"], "ISTIO_DEFAULT_SNIFF");
    assert_eq!(nats["istio"]["stalls"], "STALL_YES");
    assert_eq!(nats["linkerd"]["defaultBehavior"], "LINKERD_DEFAULT_DETECT");
    assert_eq!(nats["linkerd"]["stalls"], "STALL_YES");
    assert_eq!(
        nats["linkerd"]["annotation"],
        "config.linkerd.io/opaque-ports: \"4222\""
    );
    assert!(
        nats["istio"]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("tcp-nats"))
    );

    let postgres = describe_json("5432");
    assert_eq!(
        postgres["hint"]["serverSpeaksFirst"],
        "SERVER_SPEAKS_FIRST_NO"
    );
    assert_eq!(
        postgres["linkerd"]["defaultBehavior"],
        "LINKERD_DEFAULT_OPAQUE"
    );
    assert!(
        postgres["hint"]["sniffingNote"]
            .as_str()
            .is_some_and(|n| n.contains("SSLRequest"))
    );

    let https = describe_json("443");
    assert_eq!(https["hint"]["serverSpeaksFirst"], "SERVER_SPEAKS_FIRST_NO");
    assert_eq!(https["istio"]["defaultBehavior"], "ISTIO_DEFAULT_SNIFF");
    assert_eq!(https["istio"]["stalls"], "STALL_NO");
    assert_eq!(https["istio"]["fix"], Value::Null);
    assert_eq!(
        https["linkerd"]["defaultBehavior"],
        "LINKERD_DEFAULT_DETECT"
    );
    assert_eq!(https["linkerd"]["annotation"], Value::Null);

    // The text form says the same for people.
    let text = String::from_utf8(success_stdout(portolan().args([
        "--offline",
        "-o",
        "table",
        "describe",
        "4222",
    ])))
    .expect("utf-8");
    assert!(text.contains("vrml-multi-use  4200-4299"), "{text}");
    assert!(
        text.contains("server speaks first  yes (https://docs.nats.io/"),
        "{text}"
    );
    assert!(
        text.contains("Linkerd fix          config.linkerd.io/opaque-ports: \"4222\""),
        "{text}"
    );
    assert!(
        text.contains("Linkerd stalls       yes: the server speaks first"),
        "{text}"
    );
    let text = String::from_utf8(success_stdout(portolan().args([
        "--offline",
        "-o",
        "table",
        "describe",
        "3306",
    ])))
    .expect("utf-8");
    assert!(
        text.contains("Istio default        tcp: in wellKnownPorts"),
        "{text}"
    );
    assert!(
        text.contains("Linkerd default      opaque: in proxy.opaquePorts"),
        "{text}"
    );
    assert!(
        text.contains("port name            mysql: valid Kubernetes port name"),
        "{text}"
    );
}

/// A port without records or hint exits 1; a record without a hint still
/// gets the meshes' general defaults; a name is a usage error; a name
/// that is no Kubernetes port name says why.
#[test]
fn describe_exit_codes_and_ports_without_hints() {
    portolan()
        .args(["--offline", "describe", "65000"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "no record and no mesh hint for port 65000",
        ));
    portolan()
        .args(["--offline", "describe", "https"])
        .assert()
        .code(2);
    let ssh_udp = describe_json("22/udp");
    assert_eq!(ssh_udp["hint"], Value::Null);
    assert_eq!(ssh_udp["istio"], Value::Null);
    assert_eq!(ssh_udp["linkerd"], Value::Null);
    let x11 = describe_json("6010");
    assert_eq!(x11["hint"], Value::Null);
    assert_eq!(x11["istio"]["defaultBehavior"], "ISTIO_DEFAULT_SNIFF");
    assert_eq!(x11["istio"]["stalls"], "STALL_UNKNOWN");
    assert_eq!(x11["linkerd"]["defaultBehavior"], "LINKERD_DEFAULT_DETECT");
    assert_eq!(x11["linkerd"]["annotation"], Value::Null);
}

/// `describe` against a server asks its DescribePort: the same answer as
/// offline, version aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_against_a_server() {
    let server = start_server(&shared_file("iana/service-names-port-numbers.csv")).await;
    let e = server.endpoint.clone();
    let rows = blocking(move || {
        success_json(portolan().args(["--endpoint", &e, "-o", "json", "describe", "3306/tcp"]))
    })
    .await;
    assert_eq!(rows[0]["records"][0]["name"], "mysql");
    assert_eq!(
        rows[0]["linkerd"]["defaultBehavior"],
        "LINKERD_DEFAULT_OPAQUE"
    );
    let mut offline = describe_json("3306/tcp");
    let mut remote = rows[0].clone();
    for answer in [&mut offline, &mut remote] {
        let object = answer.as_object_mut().expect("an object");
        object.remove("version");
        object.remove("stateId");
    }
    assert_eq!(remote, offline);
    // `info` names the hints the server answers from.
    let e = server.endpoint.clone();
    let info =
        blocking(move || success_json(portolan().args(["--endpoint", &e, "-o", "json", "info"])))
            .await;
    assert_eq!(info[0]["mesh_hints"]["source"], "embedded");
    assert_eq!(
        info[0]["mesh_hints"]["entry_count"],
        portolan_registry::Hints::embedded().len()
    );
    assert_eq!(info[0]["mesh_hints"]["last_reload_outcome"], "initial");
}
