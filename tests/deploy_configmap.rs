//! Deployment-level tests for the Kubernetes manifests in `deploy/kubernetes`.
//!
//! * [`configmap_swap_hot_reloads_without_failed_requests`]: reproduces what
//!   the kubelet does to a ConfigMap volume when the ConfigMap changes (new
//!   timestamped directory, `..data_tmp` symlink renamed over `..data`, old
//!   directory removed) against the real `portolan-server` binary started
//!   with the Deployment's flags, while a client keeps calling LookupPort.
//! * [`full_registry_configmap_fits_the_object_limit`]: the ConfigMap that
//!   deploy/README.md's update command builds from the full IANA CSV stays
//!   under Kubernetes' 1 MiB object limit.
//! * [`committed_placeholder_registry_is_the_excerpt`]: the small gzipped
//!   CSV that the kustomize base ships parses as IANA CSV and holds the
//!   plain-text excerpt's records.
//!
//! The real registry comes from the files committed under `data/real/`
//! through `portolan-test-support`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::{GetRegistryInfoRequest, LookupPortRequest, Protocol};
use portolan_test_support::{shared_file, workspace_root};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

mod support;

/// Where the Deployment mounts the registry ConfigMap, and the file `--data`
/// names inside it (deploy/kubernetes/base/deployment.yaml).
const DATA_FILE: &str = "registry.csv.gz";

/// Kubernetes' limit on one object (etcd's request limit is a bit above;
/// the API server rejects ConfigMaps whose data exceeds 1 MiB).
const OBJECT_LIMIT: usize = 1_048_576;

/// Client-side `kubectl apply` copies the object into the
/// `kubectl.kubernetes.io/last-applied-configuration` annotation, and
/// annotations are limited to 256 KiB in total.
const ANNOTATION_LIMIT: usize = 262_144;

/// The description of 443/tcp in the "new" ConfigMap version.
const NEW_443_DESCRIPTION: &str = "http protocol over TLS/SSL (portolan reload test v2)";
/// ... and in the third version.
const THIRD_443_DESCRIPTION: &str = "http protocol over TLS/SSL (portolan reload test v3)";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    // Like `gzip -9n`: best compression, no file name, mtime 0.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

// ---------------------------------------------------------------------------
// The server binary.

/// The `portolan-server` binary: `PORTOLAN_SERVER_BIN` when set, otherwise
/// built by the shared test helper (`cargo build --workspace --bins`, the
/// same build `.ci/run` does before the tests, so there it is a no-op).
fn server_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("PORTOLAN_SERVER_BIN") {
            let bin = PathBuf::from(bin);
            assert!(
                bin.is_file(),
                "PORTOLAN_SERVER_BIN={} is not a file",
                bin.display()
            );
            return bin;
        }
        let started = Instant::now();
        let bin = support::workspace_binary("portolan-server", "portolan-server");
        eprintln!(
            "portolan-server binary ready after {:.1} s: {}",
            started.elapsed().as_secs_f64(),
            bin.display()
        );
        bin
    })
    .clone()
}

/// A free loopback port: bind port 0, read the port, release it.
fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

/// The running server; killed when dropped, its output kept for failures.
struct Server {
    child: Child,
    addr: SocketAddr,
    metrics: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server with the flags of the Deployment
    /// (deploy/kubernetes/base/deployment.yaml), on loopback ports.
    fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    /// [`Server::start`] with `extra` flags.
    fn start_with(data: &Path, extra: &[&str]) -> Self {
        let addr = free_addr();
        let metrics = free_addr();
        let mut child = Command::new(server_binary())
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data")
            .arg(data)
            .arg("--admin-listen")
            .arg(metrics.to_string())
            .arg("--shutdown-grace")
            .arg("20s")
            .args(extra)
            .env("PORTOLAN_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("TOKIO_WORKER_THREADS", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start portolan-server");
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream);
                let mut line = String::new();
                while std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) > 0 {
                    log.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        Self {
            child,
            addr,
            metrics,
            log,
        }
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(5))
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Polls grpc.health.v1 `readiness` (what the readinessProbe asks)
    /// until SERVING, up to `deadline`.
    async fn wait_ready(&mut self, deadline: Duration) -> Channel {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "portolan-server exited with {status} before becoming ready:\n{}",
                    self.log()
                );
            }
            if let Ok(channel) = self.endpoint().connect().await {
                let mut health = HealthClient::new(channel.clone());
                let request = HealthCheckRequest {
                    service: "readiness".to_string(),
                };
                if let Ok(response) = health.check(request).await
                    && response.into_inner().status == ServingStatus::Serving as i32
                {
                    return channel;
                }
            }
            assert!(
                start.elapsed() < deadline,
                "portolan-server not ready within {deadline:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The kubelet's ConfigMap volume layout (pkg/volume/util/atomic_writer.go):
//
//   registry.csv.gz -> ..data/registry.csv.gz     (user-visible, created once)
//   ..data -> ..2026_11_26_23_00_00.000000001     (the current payload)
//   ..2026_11_26_23_00_00.000000001/registry.csv.gz
//
// An update writes a new timestamped directory, points a `..data_tmp`
// symlink at it, renames `..data_tmp` over `..data` (atomic), then removes
// the old directory.

struct ConfigMapVolume {
    dir: PathBuf,
    generation: u32,
}

impl ConfigMapVolume {
    fn new(dir: &Path, payload: &[u8]) -> Self {
        let mut volume = Self {
            dir: dir.to_path_buf(),
            generation: 0,
        };
        let ts = volume.write_timestamped(payload);
        std::os::unix::fs::symlink(&ts, dir.join("..data")).expect("symlink ..data");
        std::os::unix::fs::symlink(format!("..data/{DATA_FILE}"), dir.join(DATA_FILE))
            .expect("symlink user-visible file");
        volume
    }

    /// The path the Deployment passes to `--data`.
    fn data_path(&self) -> PathBuf {
        self.dir.join(DATA_FILE)
    }

    fn write_timestamped(&mut self, payload: &[u8]) -> String {
        self.generation += 1;
        let name = format!(
            "..2026_11_26_23_00_{:02}.{:09}",
            self.generation, self.generation
        );
        let ts = self.dir.join(&name);
        std::fs::create_dir(&ts).expect("create timestamped dir");
        std::fs::write(ts.join(DATA_FILE), payload).expect("write payload");
        name
    }

    /// Swaps in a new payload the way the kubelet does.
    fn update(&mut self, payload: &[u8]) {
        let old = std::fs::read_link(self.dir.join("..data")).expect("read ..data");
        let ts = self.write_timestamped(payload);
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&ts, &tmp).expect("symlink ..data_tmp");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("rename ..data_tmp over ..data");
        std::fs::remove_dir_all(self.dir.join(old)).expect("remove the old payload dir");
    }
}

/// The real CSV with 443/tcp's description replaced.
fn with_443_description(csv: &str, description: &str) -> String {
    const ROW: &str = "https,443,tcp,http protocol over TLS/SSL,";
    assert_eq!(
        csv.matches(ROW).count(),
        1,
        "the CSV has one 443/tcp https row"
    );
    csv.replacen(ROW, &format!("https,443,tcp,{description},"), 1)
}

async fn description_443_tcp(
    client: &mut PortRegistryServiceClient<Channel>,
) -> Result<String, tonic::Status> {
    let response = client
        .lookup_port(LookupPortRequest {
            port: 443,
            protocol: Protocol::Tcp as i32,
        })
        .await?
        .into_inner();
    let first = response
        .records
        .first()
        .ok_or_else(|| tonic::Status::internal("LookupPort(443/tcp) returned no record"))?;
    Ok(first.description.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_swap_hot_reloads_without_failed_requests() {
    let csv_path = shared_file("iana/service-names-port-numbers.csv");
    let csv = std::fs::read_to_string(&csv_path).expect("read the IANA CSV");
    let v1 = gzip(csv.as_bytes());
    let v2 = gzip(with_443_description(&csv, NEW_443_DESCRIPTION).as_bytes());
    let v3 = gzip(with_443_description(&csv, THIRD_443_DESCRIPTION).as_bytes());

    let tmp = tempfile::tempdir().expect("tempdir");
    let mount = tmp.path().join("etc-portolan-registry");
    std::fs::create_dir(&mount).expect("mount dir");
    let mut volume = ConfigMapVolume::new(&mount, &v1);

    let mut server = Server::start(&volume.data_path());
    let started = Instant::now();
    let channel = server.wait_ready(Duration::from_secs(60)).await;
    eprintln!(
        "portolan-server ready (readiness SERVING) after {} ms",
        started.elapsed().as_millis()
    );
    let mut client = PortRegistryServiceClient::new(channel.clone());
    assert_eq!(
        description_443_tcp(&mut client)
            .await
            .expect("initial lookup"),
        "http protocol over TLS/SSL"
    );
    let info = client
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .expect("GetRegistryInfo")
        .into_inner();
    assert_eq!(info.record_count, 14_512, "the full CSV is served");
    let initial_version = info.version;

    // A client loop that runs throughout both swaps, on its own connection.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let looper = {
        let (stop, ok, failures) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failures));
        let endpoint = server.endpoint();
        tokio::spawn(async move {
            let channel = endpoint.connect().await.expect("connect the load loop");
            let mut client = PortRegistryServiceClient::new(channel);
            let started = Instant::now();
            // Bounded in time whatever happens to the test.
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                match description_443_tcp(&mut client).await {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(status) => failures.lock().unwrap().push(status.to_string()),
                }
            }
        })
    };
    // Wait (with a deadline) until the loop is really answering.
    let loop_started = Instant::now();
    while ok.load(Ordering::Relaxed) < 10 {
        assert!(
            loop_started.elapsed() < Duration::from_secs(10),
            "the lookup loop never got going"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    for (payload, expected) in [(&v2, NEW_443_DESCRIPTION), (&v3, THIRD_443_DESCRIPTION)] {
        let swapped = Instant::now();
        volume.update(payload);
        let seen = loop {
            match description_443_tcp(&mut client).await {
                Ok(description) if description == expected => break swapped.elapsed(),
                Ok(_) | Err(_) => {}
            }
            assert!(
                swapped.elapsed() < Duration::from_secs(2),
                "the new ConfigMap version ({expected:?}) was not served within 2 s of the swap\nserver log:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        eprintln!(
            "ConfigMap swap served after {} ms: {expected:?}",
            seen.as_millis()
        );
        // Keep the loop running a little past each swap.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    stop.store(true, Ordering::Relaxed);
    looper.await.expect("load loop task");
    let failures = failures.lock().unwrap().clone();
    let ok = ok.load(Ordering::Relaxed);
    eprintln!(
        "lookups during the swaps: {ok} ok, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} lookups failed during the swaps, first: {:?}",
        failures.len(),
        ok + failures.len() as u64,
        failures.first()
    );
    assert!(ok > 10, "the load loop ran only {ok} lookups");

    let info = client
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .expect("GetRegistryInfo")
        .into_inner();
    assert!(
        info.version >= initial_version + 2,
        "two reloads applied: {info:?}"
    );
    assert_eq!(info.record_count, 14_512);
    assert!(
        info.source_format.ends_with("+gzip"),
        "format detected as gzip: {info:?}"
    );
}

// ---------------------------------------------------------------------------
// ConfigMap size.

/// Standard base64 (RFC 4648, padded), as Kubernetes stores `binaryData`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The manifest `kubectl create configmap portolan-registry
/// --from-file=registry.csv.gz --dry-run=client -o yaml` prints.
fn configmap_yaml(gz: &[u8]) -> String {
    format!(
        "apiVersion: v1\nbinaryData:\n  {DATA_FILE}: {}\nkind: ConfigMap\nmetadata:\n  name: portolan-registry\n",
        base64(gz)
    )
}

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, expected) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), expected);
    }
}

#[test]
fn full_registry_configmap_fits_the_object_limit() {
    let csv_path = shared_file("iana/service-names-port-numbers.csv");
    let csv = std::fs::read(&csv_path).expect("read the IANA CSV");
    // deploy/README.md: gzip -9nc service-names-port-numbers.csv > registry.csv.gz
    let gz = gzip(&csv);
    assert_eq!(gunzip(&gz), csv, "gzip round-trips");

    // The gzipped file is what the server reads: it must parse, full size.
    let parsed = portolan_registry::parse(&gz, None).expect("the gzipped CSV parses");
    assert_eq!(parsed.registry.len(), 14_512);

    let computed = configmap_yaml(&gz);
    let (manifest, how) = if kubectl_available() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(DATA_FILE), &gz).expect("write registry.csv.gz");
        let output = Command::new("kubectl")
            .current_dir(dir.path())
            .args(["create", "configmap", "portolan-registry"])
            .arg(format!("--from-file={DATA_FILE}"))
            .args(["--dry-run=client", "-o", "yaml"])
            .output()
            .expect("run kubectl create configmap --dry-run=client");
        assert!(
            output.status.success(),
            "kubectl create configmap failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let manifest = String::from_utf8(output.stdout).expect("kubectl prints UTF-8 YAML");
        assert!(
            manifest.contains(&base64(&gz)),
            "kubectl put the gzipped file in binaryData, base64-encoded like this test computes"
        );
        (
            manifest,
            "kubectl create configmap --dry-run=client -o yaml",
        )
    } else {
        eprintln!("notice: kubectl not found; computing the ConfigMap manifest in Rust");
        (computed.clone(), "computed in Rust")
    };

    eprintln!(
        "full IANA CSV: {} bytes; gzip -9n: {} bytes ({:.1}x); base64 in binaryData: {} bytes; \
         ConfigMap manifest ({how}): {} bytes = {:.1}% of the 1 MiB object limit",
        csv.len(),
        gz.len(),
        csv.len() as f64 / gz.len() as f64,
        base64(&gz).len(),
        manifest.len(),
        100.0 * manifest.len() as f64 / OBJECT_LIMIT as f64,
    );
    assert!(
        manifest.len() < OBJECT_LIMIT,
        "the registry ConfigMap is {} bytes, over the 1 MiB limit",
        manifest.len()
    );
    assert!(
        csv.len() > OBJECT_LIMIT - 4096,
        "the plain CSV ({} bytes) is what would not fit; if it shrank, revisit the gzip choice",
        csv.len()
    );
    // Why deploy/README.md insists on server-side apply: a client-side apply
    // would copy the object into an annotation limited to 256 KiB.
    assert!(
        manifest.len() > ANNOTATION_LIMIT,
        "the manifest ({} bytes) now fits client-side apply's annotation; README's server-side advice is still right but no longer required",
        manifest.len()
    );
}

/// The registry data the manifests ship (the kustomize base's ConfigMap
/// and the Helm chart's) is the full IANA registry the binaries embed
/// (`data/real/iana/service-names-port-numbers.csv.gz`, edition
/// [`portolan_registry::embedded::EDITION`]), byte for byte: applied as
/// they are, the manifests serve every port. Update all three together:
/// `cp data/real/iana/service-names-port-numbers.csv.gz deploy/kubernetes/base/registry.csv.gz deploy/helm/portolan/files/registry.csv.gz`
/// (after updating the first).
#[test]
fn shipped_registry_data_is_the_full_embedded_registry() {
    let embedded =
        std::fs::read(workspace_root().join("data/real/iana/service-names-port-numbers.csv.gz"))
            .expect("the embedded registry's file");
    assert_eq!(embedded.as_slice(), portolan_registry::embedded::SOURCE);
    for shipped in [
        "deploy/kubernetes/base/registry.csv.gz",
        "deploy/helm/portolan/files/registry.csv.gz",
    ] {
        let gz = std::fs::read(workspace_root().join(shipped)).expect(shipped);
        assert!(
            gz == embedded,
            "{shipped} is not the embedded registry's file (see this test's doc to update it)"
        );
        // A ConfigMap holds at most 1 MiB; base64 adds a third.
        assert!(
            gz.len() * 4 / 3 < 900 * 1024,
            "{shipped}: {} bytes",
            gz.len()
        );
    }
    let parsed = portolan_registry::parse(&embedded, None).expect("parses");
    assert_eq!(parsed.registry.len(), 14_512);
    assert_eq!(
        parsed.registry.source.format,
        Some(portolan_registry::Format::IanaCsv)
    );
    assert!(parsed.registry.source.gzip);
}

/// After a ConfigMap swap the server must go quiet: reading the data file
/// must not itself count as a change to the watched directory, or every read
/// would trigger the next reload forever (CPU in every pod, and
/// `last_reload_outcome` flipping to UNCHANGED, hiding APPLIED or FAILED).
/// In the kubelet's layout the file read lives in a `..<timestamp>`
/// subdirectory, outside the (non-recursive) watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_goes_quiet_after_a_configmap_swap() {
    let csv_path = shared_file("iana/service-names-port-numbers.csv");
    let csv = std::fs::read_to_string(&csv_path).expect("read the IANA CSV");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut volume = ConfigMapVolume::new(tmp.path(), &gzip(csv.as_bytes()));
    let mut server = Server::start_with(&volume.data_path(), &["--poll-interval", "100ms"]);
    let mut client =
        PortRegistryServiceClient::new(server.wait_ready(Duration::from_secs(60)).await);

    volume.update(&gzip(
        with_443_description(&csv, NEW_443_DESCRIPTION).as_bytes(),
    ));
    let swapped = Instant::now();
    while description_443_tcp(&mut client).await.ok().as_deref() != Some(NEW_443_DESCRIPTION) {
        assert!(
            swapped.elapsed() < Duration::from_secs(2),
            "swap not served within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The server's own polls (every 100 ms) are the clock: first let the
    // debounce of any straggling event of the swap run out (250 ms), then
    // watch for another second of the server's time.
    const POLLS: &str = "portolan_data_file_checks_total{trigger=\"poll\"}";
    let polls = || support::metric(server.metrics, POLLS);
    let events = || async {
        support::metric(
            server.metrics,
            "portolan_data_file_checks_total{trigger=\"file event\"}",
        )
        .await
            + support::metric(
                server.metrics,
                "portolan_data_file_checks_total{trigger=\"file events (maximum delay)\"}",
            )
            .await
    };
    let info = |mut client: PortRegistryServiceClient<Channel>| async move {
        client
            .get_registry_info(GetRegistryInfoRequest {})
            .await
            .expect("GetRegistryInfo")
            .into_inner()
    };
    let wait_for_polls = |count: f64, what: &'static str| async move {
        let from = polls().await;
        support::eventually(Duration::from_secs(10), what, || async {
            (polls().await >= from + count).then_some(())
        })
        .await;
    };
    wait_for_polls(5.0, "the swap's stragglers").await;
    let (events_before, before) = (events().await, info(client.clone()).await);
    wait_for_polls(10.0, "a quiet second").await;
    let after = info(client.clone()).await;
    assert_eq!(
        events().await,
        events_before,
        "the server read the file because of a file event with nothing touching it"
    );
    assert_eq!(
        before.last_reload_at, after.last_reload_at,
        "the server kept reloading with nothing touching the file: {after:?}"
    );
    assert_eq!(
        after.last_reload_outcome,
        portolan::pb::ReloadOutcome::Applied as i32,
        "the last reload is still the swap's"
    );
}
