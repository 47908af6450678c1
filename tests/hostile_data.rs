//! Hostile data files, against the real `portolan-server` binary (memory
//! is read from `/proc`) and an in-process server:
//!
//! * `--data` naming a FIFO at startup: exit status 2 at once, with a clear
//!   message (it used to block in `open` before binding).
//! * The data-file torture test: bad files placed in turn where the
//!   watched data file is (a symlink to `/dev/zero`, a FIFO, a gzip bomb, a
//!   gzip that expands to millions of rows, 65,536 rows of `0-65535`, the
//!   shared truncated and garbage CSVs) while a lookup load runs; after
//!   each the last good registry still answers and GetRegistryInfo shows
//!   FAILED (the full-range rows: FAILED or served correctly); then a good
//!   file is served within 2 s. The resident set sampled all along stays
//!   within the documented bound: the RSS serving the registry plus four
//!   times `--max-data-bytes` (the raw copy, the decompressed copy with its
//!   growth, and the parsed records' footprint, each held to that cap).
//! * The data directory deleted and recreated: a change in the new
//!   directory is served within 2 s (it used to wait for the 30 s poll).
//! * The file rewritten every 10 ms: reloads still happen during the storm
//!   (at most `--reload-max-delay` apart), and SIGHUP reloads at once.

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::{
    GetRegistryInfoRequest, GetRegistryInfoResponse, LookupNameRequest, ReloadOutcome,
};
use portolan_registry::ParseLimits;
use portolan_test_support::shared_file;
use portolan_test_support::write_atomically;
use tonic::transport::Channel;

use support::{ServerProcess, eventually, start_server, test_args, workspace_binary};

const FULL_CSV: &str = "iana/service-names-port-numbers.csv";

async fn info(client: &PortRegistryServiceClient<Channel>) -> GetRegistryInfoResponse {
    client
        .clone()
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .expect("GetRegistryInfo")
        .into_inner()
}

/// The description of the first record named `name`.
async fn description_of(client: &PortRegistryServiceClient<Channel>, name: &str) -> Option<String> {
    let found = client
        .clone()
        .lookup_name(LookupNameRequest {
            name: name.into(),
            protocol: 0,
        })
        .await
        .ok()?
        .into_inner();
    found.records.first().map(|r| r.description.clone())
}

/// Replaces `path` (file, link or FIFO) by whatever `make` creates there.
fn replace(path: &Path, make: impl FnOnce(&Path)) {
    let staging = path.with_extension("staging");
    let _ = std::fs::remove_file(&staging);
    make(&staging);
    std::fs::rename(&staging, path).expect("rename into place");
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("in memory");
    encoder.finish().expect("in memory")
}

/// The full CSV with `http`'s description replaced by `tag`.
fn variant(csv: &str, tag: &str) -> Vec<u8> {
    let from = "http,80,tcp,World Wide Web HTTP,";
    assert!(csv.contains(from), "the CSV has the http row");
    csv.replacen(from, &format!("http,80,tcp,{tag},"), 1)
        .into_bytes()
}

const HEADER: &str = "Service Name,Port Number,Transport Protocol,Description,Assignee,Contact,Registration Date,Modification Date,Reference,Service Code,Unauthorized Use Reported,Assignment Notes\r\n";

/// Resident set of process `pid`, in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
}

/// Samples the RSS of `pid` every 20 ms until dropped; keeps the peak.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&peak), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(rss) = rss_bytes(pid) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { peak, stop }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

const MIB: u64 = 1024 * 1024;

#[test]
fn a_fifo_as_the_data_file_at_startup_exits_2_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("registry.csv");
    mkfifo(&fifo);
    // Build (or find) the binary before the clock starts.
    let binary = workspace_binary("portolan-server", "portolan-server");
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&fifo)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn portolan-server");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server still runs 10 s after start on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--data: cannot read {}: a FIFO, not a regular file",
            fifo.display()
        )),
        "{stderr}"
    );
    println!("FIFO at startup: exit 2 after {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_files_in_turn_keep_the_last_good_registry_within_bounded_memory() {
    let csv_path = shared_file(FULL_CSV);
    let truncated = shared_file("bad/truncated.csv");
    let garbage = shared_file("bad/garbage.csv");
    let csv = std::fs::read_to_string(&csv_path).expect("read the CSV");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("registry.csv");
    write_atomically(&data, csv.as_bytes());

    // --max-shrink 1: the full-range file may be served (once the index
    // takes it), and the good file after it must not be refused as a shrink.
    let server = ServerProcess::start(&data, &["--max-shrink", "1"]);
    let client = server.ready_client().await;
    let first = info(&client).await;
    assert_eq!(first.record_count, 14_512);
    let http = description_of(&client, "http").await.expect("http");
    assert_eq!(http, "World Wide Web HTTP");
    let baseline = rss_bytes(server.child.id()).expect("RSS");
    let sampler = RssSampler::start(server.child.id());

    // A steady lookup load from another task.
    let load_stop = Arc::new(AtomicBool::new(false));
    let load = {
        let client = client.clone();
        let stop = Arc::clone(&load_stop);
        tokio::spawn(async move {
            let (mut answered, mut failed) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                // Any answer counts: once the full-range rows may be
                // served, `ssh` is not in them.
                let answer = client
                    .clone()
                    .lookup_name(LookupNameRequest {
                        name: "ssh".into(),
                        protocol: 0,
                    })
                    .await;
                match answer {
                    Ok(_) => answered += 1,
                    Err(status) if status.code() == tonic::Code::NotFound => answered += 1,
                    Err(_) => failed += 1,
                }
            }
            (answered, failed)
        })
    };

    let mut rows = String::from(HEADER);
    for _ in 0..3_000_000 {
        rows.push_str(",1,,,,,,,,,,\r\n");
    }
    let many_rows = gzip(rows.as_bytes());
    drop(rows);
    let bomb = gzip(&vec![b' '; 65 * MIB as usize]);
    let mut full_range = String::from(HEADER);
    for _ in 0..65_536 {
        full_range.push_str(",0-65535,tcp,x,,,,,,,,\r\n");
    }

    type Make = Box<dyn FnOnce(&Path)>;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "symlink to /dev/zero",
            Box::new(|p: &Path| std::os::unix::fs::symlink("/dev/zero", p).expect("symlink")),
            "a character device, not a regular file",
        ),
        ("FIFO", Box::new(mkfifo), "a FIFO, not a regular file"),
        (
            "gzip bomb",
            Box::new(move |p: &Path| std::fs::write(p, &bomb).expect("write")),
            "decompressed size exceeds 67108864 bytes",
        ),
        (
            "gzip of 3 million rows",
            Box::new(move |p: &Path| std::fs::write(p, &many_rows).expect("write")),
            // 200,000 minimal records are about 64 MiB in memory: the data
            // size bound and the record bound meet, and either refuses it.
            "limit)",
        ),
        (
            "truncated CSV",
            Box::new(move |p: &Path| std::fs::copy(&truncated, p).map(drop).expect("copy")),
            "file is truncated",
        ),
        (
            "garbage CSV",
            Box::new(move |p: &Path| std::fs::copy(&garbage, p).map(drop).expect("copy")),
            "cannot parse",
        ),
        (
            "65,536 rows of 0-65535",
            Box::new(move |p: &Path| std::fs::write(p, &full_range).expect("write")),
            "",
        ),
    ];
    let mut version = first.version;
    let mut previous_error = String::new();
    for (what, make, expected) in cases {
        let started = Instant::now();
        replace(&data, make);
        // A new failure (the previous case's error is still shown until
        // this one is read), or the new file applied.
        let after = eventually(Duration::from_secs(60), what, || async {
            let i = info(&client).await;
            let failed = i.last_reload_outcome == ReloadOutcome::Failed as i32
                && i.last_reload_error != previous_error;
            let applied = i.version > version;
            (failed || applied).then_some(i)
        })
        .await;
        previous_error = after.last_reload_error.clone();
        if after.version > version {
            // Only the full-range rows may be served, and then correctly.
            assert!(expected.is_empty(), "{what} was applied: {after:?}");
            assert_eq!(after.record_count, 65_536, "{what}");
            version = after.version;
            println!("{what}: served, {:?}", started.elapsed());
            continue;
        }
        assert!(
            after.last_reload_error.contains(expected),
            "{what}: {}",
            after.last_reload_error
        );
        assert_eq!(after.record_count, 14_512, "{what}: the last good registry");
        assert_eq!(
            description_of(&client, "http").await.as_deref(),
            Some("World Wide Web HTTP"),
            "{what}: the last good registry answers"
        );
        println!(
            "{what}: FAILED after {:?}: {}",
            started.elapsed(),
            after.last_reload_error
        );
    }

    // A good file: served within 2 s. A lookup may answer from the new
    // maps a moment before the new version is published (the index's
    // invariant 4), so wait for both.
    let started = Instant::now();
    write_atomically(&data, &variant(&csv, "good again"));
    let after = eventually(
        Duration::from_secs(2),
        "the good file to be served",
        || async {
            let served = description_of(&client, "http").await.as_deref() == Some("good again");
            let i = info(&client).await;
            (served && i.version > version).then_some(i)
        },
    )
    .await;
    let served_in = started.elapsed();
    assert_eq!(after.last_reload_outcome, ReloadOutcome::Applied as i32);
    assert_eq!(after.record_count, 14_512);

    load_stop.store(true, Ordering::Relaxed);
    let (answered, failed) = load.await.expect("load task");
    let peak = sampler.peak();
    let bound = baseline + 4 * ParseLimits::DEFAULT_MAX_BYTES;
    println!(
        "torture: good file served in {served_in:?}; lookups {answered} answered, {failed} failed; \
         RSS baseline {} MiB, peak {} MiB, bound {} MiB",
        baseline / MIB,
        peak / MIB,
        bound / MIB
    );
    assert_eq!(failed, 0, "every lookup was answered");
    assert!(answered > 0);
    assert!(peak <= bound, "peak RSS {peak} over the bound {bound}");
}

#[tokio::test]
async fn a_deleted_and_recreated_data_directory_is_watched_again() {
    let sample = shared_file("iana/sample-1000.csv");
    let original = std::fs::read_to_string(&sample).expect("read sample");
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("data");
    std::fs::create_dir(&dir).expect("data dir");
    let data = dir.join("registry.csv");
    write_atomically(&data, original.as_bytes());
    let server = start_server(test_args(Some(&data))).await;
    let client = server.ready_client().await;
    assert_eq!(info(&client).await.version, 1);

    std::fs::remove_dir_all(&dir).expect("delete the directory");
    eventually(Duration::from_secs(5), "the loss to be seen", || async {
        (info(&client).await.last_reload_outcome == ReloadOutcome::Failed as i32).then_some(())
    })
    .await;
    std::fs::create_dir(&dir).expect("recreate the directory");
    let changed = original.replacen(
        "Echo,[Jon_Postel]",
        "Echo in a new directory,[Jon_Postel]",
        1,
    );
    assert_ne!(changed, original);
    let started = Instant::now();
    write_atomically(&data, changed.as_bytes());
    eventually(
        Duration::from_secs(2),
        "the change to be served",
        || async {
            (description_of(&client, "echo").await.as_deref() == Some("Echo in a new directory"))
                .then_some(())
        },
    )
    .await;
    println!(
        "recreated directory: change served in {:?}",
        started.elapsed()
    );
    server.stop().await;
}

/// Rewrites `path` every 10 ms with `http`'s description `storm N` until
/// `stop`; returns how many writes it made.
/// Rewrites `path` every 10 ms until `stop`; `written` counts the writes.
fn storm(
    path: PathBuf,
    csv: String,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            write_atomically(&path, &variant(&csv, &format!("storm {n}")));
            written.store(n, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(10));
        }
        n
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_every_10_ms_is_still_reloaded_during_the_storm() {
    let csv_path = shared_file(FULL_CSV);
    let csv = std::fs::read_to_string(&csv_path).expect("read");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("registry.csv");
    write_atomically(&data, csv.as_bytes());
    let server = start_server(test_args(Some(&data))).await;
    let client = server.ready_client().await;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let writer = storm(data.clone(), csv, Arc::clone(&stop), Arc::default());
    // Default --reload-max-delay (2 s): a reload while the storm goes on.
    let reloaded = eventually(
        Duration::from_secs(6),
        "a reload during the storm",
        || async {
            let i = info(&client).await;
            (i.version > 1).then_some(started.elapsed())
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().expect("storm");
    println!("storm: first reload after {reloaded:?} ({writes} writes in all)");
    assert!(
        description_of(&client, "http")
            .await
            .is_some_and(|d| d.starts_with("storm ")),
        "a storm version is served"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_during_a_storm_reloads_at_once() {
    let csv_path = shared_file(FULL_CSV);
    let csv = std::fs::read_to_string(&csv_path).expect("read");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("registry.csv");
    write_atomically(&data, csv.as_bytes());
    // A long maximum delay: only SIGHUP can cut the storm's debounce short.
    let server = ServerProcess::start(&data, &["--reload-max-delay", "60s"]);
    let client = server.ready_client().await;
    let before = info(&client).await.version;
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = storm(data.clone(), csv, Arc::clone(&stop), Arc::clone(&written));
    // Twenty writes, each within the debounce of the one before.
    eventually(Duration::from_secs(10), "twenty storm writes", || async {
        (written.load(Ordering::Relaxed) >= 20).then_some(())
    })
    .await;
    let started = Instant::now();
    server.hangup();
    let after = eventually(Duration::from_secs(3), "the SIGHUP reload", || async {
        let version = info(&client).await.version;
        (version > before).then_some(version)
    })
    .await;
    // Every write changed the content, so a reload before the SIGHUP would
    // have moved the version too: the SIGHUP's is the first.
    assert_eq!(after, before + 1, "debouncing the storm until the SIGHUP");
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("storm");
    println!("SIGHUP during a storm: reloaded after {took:?}");
}
