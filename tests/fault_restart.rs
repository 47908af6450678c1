//! The real `portolan-server` binary is killed with SIGKILL under client
//! load and restarted on the same port with new data, and every client kind
//! rides it out:
//!
//! * the plain [`Client`] fails with UNAVAILABLE while nothing listens, and a
//!   call made during the outage succeeds once the server is back (its
//!   retries on UNAVAILABLE span the restart); a background load keeps
//!   calling throughout and sees only "unreachable" errors, never a wrong
//!   answer;
//! * the [`CachedClient`] serves its entries marked `stale` while the server
//!   is down (stale-if-error), then, after the restart, fresh entries of the
//!   new data;
//! * the [`ReplicaClient`] keeps answering locally from the last version it
//!   applied, then follows the new server: it ends up at exactly the
//!   version the restarted process reports, with the new data. (Versions
//!   are compared only relatively, so the test holds whether a restarted
//!   process starts again at 1 or at a larger number.)
//!
//! A call in flight at the moment of the SIGKILL loses its connection
//! mid-response (tonic: UNKNOWN "h2 protocol error ... broken pipe" or
//! CANCELLED "connection closed"); the client classifies such transport
//! failures as unreachable, so the load must never see them as anything
//! else.
//!
//! A second test restarts the server with different data and checks that
//! the replica follows it: a restarted server's versions start from its
//! startup time, so the replica's old version is never mistaken for the
//! new process's current one.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use portolan_client::{
    CacheConfig, CachedClient, Client, ReplicaClient, ReplicaConfig, RetryPolicy,
};
use portolan_registry::Registry;
use portolan_test_support::shared_file;
use portolan_test_support::write_atomically;

mod support;

use support::{eventually, workspace_binary};

/// The name of the row each test generation rewrites.
const PROBE: &str = "faulttest";

/// `base` (an IANA CSV ending in CRLF) plus one row `faulttest,40001,tcp`
/// whose description names the generation.
fn generation(base: &[u8], label: &str) -> Vec<u8> {
    let mut out = base.to_vec();
    out.extend_from_slice(format!("{PROBE},40001,tcp,Generation {label},,,,,,,,\r\n").as_bytes());
    out
}

/// A port that was free a moment ago (the server binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local address")
        .port()
}

/// The real server binary on a fixed port, SIGKILLed when dropped.
struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    fn start(addr: SocketAddr, data: &Path) -> Self {
        let child = Command::new(workspace_binary("portolan-server", "portolan-server"))
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data")
            .arg(data)
            .args(["--reload-debounce", "50ms", "--poll-interval", "1s"])
            .args(["--heartbeat-interval", "1s", "--shutdown-grace", "1s"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn portolan-server");
        let mut process = Self { child };
        // Drain the log so the server never blocks on a full pipe.
        let stdout = process.child.stdout.take().expect("piped stdout");
        std::thread::spawn(
            move || for _ in BufReader::new(stdout).lines().map_while(Result::ok) {},
        );
        process
    }

    /// SIGKILL: no drain, no goodbye; sockets are torn down by the kernel.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        let status = self.child.wait().expect("reap the server");
        assert!(!status.success(), "killed, not exited: {status:?}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the server at `uri` answers GetRegistryInfo with `records`.
async fn wait_serving(uri: &str, records: u64) {
    eventually(Duration::from_secs(30), "the server to serve", || async {
        let client = Client::builder(uri)
            .retry(RetryPolicy::none())
            .connect()
            .await
            .ok()?;
        let info = client.registry_info().await.ok()?;
        (info.record_count == records).then_some(())
    })
    .await;
}

fn fast_reconnect() -> RetryPolicy {
    RetryPolicy {
        max_attempts: u32::MAX,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

/// The description of the probe row, as `client` answers it.
async fn probe_via(client: &Client) -> Result<String, portolan_client::Error> {
    let found = client.lookup_name(PROBE, None).await?;
    Ok(found.records[0].description.clone())
}

struct Setup {
    _dir: tempfile::TempDir,
    data: PathBuf,
    base: Vec<u8>,
    /// The records of every generation: the sample's plus the probe row.
    records: u64,
    addr: SocketAddr,
    uri: String,
}

/// Writes generation A of `sample` to a fresh data file and starts the
/// server on it on a free port; returns once it serves that generation.
async fn serve_generation_a(sample: &Path) -> (Setup, ServerProcess) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("registry.csv");
    let base = std::fs::read(sample).expect("read the sample CSV");
    let base_records = portolan_registry::parse(&base, None)
        .expect("the sample parses")
        .registry
        .len() as u64;
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let s = Setup {
        _dir: dir,
        data,
        base,
        records: base_records + 1,
        addr,
        uri: format!("http://{addr}"),
    };
    write_atomically(&s.data, &generation(&s.base, "A"));
    let server = ServerProcess::start(s.addr, &s.data);
    wait_serving(&s.uri, s.records).await;
    (s, server)
}

/// A replica of the server at `uri`, starting empty and reconnecting fast.
fn start_replica(uri: &str) -> ReplicaClient {
    ReplicaClient::start(
        Client::builder(uri)
            .connect_timeout(Duration::from_millis(300))
            .connect_lazy()
            .expect("replica client"),
        Registry::default(),
        ReplicaConfig {
            heartbeat_timeout: Duration::from_secs(3),
            reconnect: fast_reconnect(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_ride_out_a_sigkill_and_converge_after_restart() {
    let sample = shared_file("iana/sample-1000.csv");
    let (s, mut server) = serve_generation_a(&sample).await;

    // The three clients, each with its own channel.
    let plain = Client::builder(&s.uri)
        .timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_millis(300))
        .retry(RetryPolicy {
            max_attempts: 200,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
        })
        .connect_lazy()
        .expect("plain client");
    let no_retry = Client::builder(&s.uri)
        .timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_millis(300))
        .retry(RetryPolicy::none())
        .connect_lazy()
        .expect("client without retries");
    let cache = CachedClient::new(
        Client::builder(&s.uri)
            .timeout(Duration::from_millis(500))
            .connect_timeout(Duration::from_millis(300))
            .retry(RetryPolicy::none())
            .connect_lazy()
            .expect("cache client"),
        CacheConfig {
            heartbeat_timeout: Duration::from_secs(3),
            reconnect: fast_reconnect(),
            ..CacheConfig::default()
        },
    );
    let replica = start_replica(&s.uri);
    assert!(cache.wait_live(Duration::from_secs(10)).await, "cache live");
    let v1 = plain.registry_info().await.expect("info").version;
    assert!(replica.wait_for_version(v1, Duration::from_secs(10)).await);

    // Move the first process to a second version (generation B) before the
    // kill, so the clients hold a version the first process reached by a
    // reload, not the one a fresh process starts with.
    write_atomically(&s.data, &generation(&s.base, "B"));
    let v2 = eventually(
        Duration::from_secs(10),
        "the reload of generation B",
        || async {
            let info = plain.registry_info().await.ok()?;
            (info.version > v1).then_some(info.version)
        },
    )
    .await;
    assert!(replica.wait_for_version(v2, Duration::from_secs(10)).await);
    let cached = eventually(Duration::from_secs(10), "the cache to hold B", || async {
        let answer = cache.lookup_name(PROBE, None).await.ok()?;
        (answer.value.records[0].description == "Generation B" && answer.version == v2)
            .then_some(answer)
    })
    .await;
    assert!(!cached.stale);
    assert_eq!(
        probe_via(&plain).await.expect("plain lookup"),
        "Generation B"
    );

    // Background load through the plain client for the whole episode.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let unreachable = Arc::new(AtomicU64::new(0));
    let lost_in_flight = Arc::new(AtomicU64::new(0));
    let load = {
        let (client, stop, ok, unreachable, lost_in_flight) = (
            no_retry.clone(),
            Arc::clone(&stop),
            Arc::clone(&ok),
            Arc::clone(&unreachable),
            Arc::clone(&lost_in_flight),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.lookup_port(22, None).await {
                    Ok(found) => {
                        assert_eq!(found.records[0].name.as_deref(), Some("ssh"));
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.is_unreachable() => {
                        unreachable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    // A connection loss reported as a server error would be
                    // a client bug (see the module docs); counted to assert
                    // there are none.
                    Err(e) if is_connection_loss(&e) => {
                        lost_in_flight.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => panic!("load saw a non-transient error: {e:?}"),
                }
            }
        })
    };
    eventually(Duration::from_secs(5), "load before the kill", || async {
        (ok.load(Ordering::Relaxed) >= 20).then_some(())
    })
    .await;

    // Kill -9, and write generation C for the next process to load.
    server.kill();
    write_atomically(&s.data, &generation(&s.base, "C"));

    // Nothing listens: a call without retries fails with UNAVAILABLE.
    let err = probe_via(&no_retry).await.expect_err("nothing listens");
    assert!(err.is_retryable(), "expected UNAVAILABLE, got {err:?}");
    // The cache notices the broken watch and serves B marked stale.
    let stale = eventually(Duration::from_secs(10), "a stale cache answer", || async {
        cache
            .lookup_name(PROBE, None)
            .await
            .ok()
            .filter(|answer| answer.stale)
    })
    .await;
    assert_eq!(stale.value.records[0].description, "Generation B");
    assert_eq!(stale.version, v2);
    // The replica answers locally from version 2.
    let local = replica.lookup_name(PROBE, None);
    assert_eq!(local.version, v2);
    assert_eq!(local.records[0].description, "Generation B");
    eventually(Duration::from_secs(10), "the replica to notice", || async {
        (!replica.is_live()).then_some(())
    })
    .await;
    assert_eq!(
        replica.lookup_port(22, None).records[0].name.as_deref(),
        Some("ssh")
    );

    // A call made during the outage, with retries, spans the restart.
    let during = tokio::spawn({
        let plain = plain.clone();
        async move { probe_via(&plain).await }
    });
    eventually(
        Duration::from_secs(5),
        "the load to see the outage",
        || async { (unreachable.load(Ordering::Relaxed) > 0).then_some(()) },
    )
    .await;
    let ok_before_restart = ok.load(Ordering::Relaxed);

    let _server = ServerProcess::start(s.addr, &s.data);
    assert_eq!(
        during
            .await
            .expect("task")
            .expect("retried across the restart"),
        "Generation C"
    );
    wait_serving(&s.uri, s.records).await;
    let v3 = plain
        .registry_info()
        .await
        .expect("info after restart")
        .version;

    // The replica follows the new server: its version and generation C.
    eventually(Duration::from_secs(15), "the replica to follow", || async {
        let local = replica.lookup_name(PROBE, None);
        (replica.is_live() && local.version == v3 && local.records[0].description == "Generation C")
            .then_some(())
    })
    .await;
    assert_eq!(replica.stats().records, s.records);
    // The cache is live again and serves C, not stale.
    let fresh = eventually(Duration::from_secs(15), "the cache to recover", || async {
        let answer = cache.lookup_name(PROBE, None).await.ok()?;
        (!answer.stale && answer.value.records[0].description == "Generation C").then_some(answer)
    })
    .await;
    assert_eq!(fresh.version, v3);
    // Its watch stream reconnects too, after which answers come from the
    // cache again, fresh and of generation C.
    assert!(
        cache.wait_live(Duration::from_secs(15)).await,
        "the cache's watch reconnects"
    );
    let cached = cache.lookup_name(PROBE, None).await.expect("cached lookup");
    assert!(!cached.stale);
    assert_eq!(cached.value.records[0].description, "Generation C");

    // The load resumed against the new process.
    eventually(
        Duration::from_secs(10),
        "load after the restart",
        || async { (ok.load(Ordering::Relaxed) >= ok_before_restart + 20).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.expect("the load saw only transient errors");
    eprintln!(
        "load: {} answers, {} unreachable, {} lost in flight at the kill",
        ok.load(Ordering::Relaxed),
        unreachable.load(Ordering::Relaxed),
        lost_in_flight.load(Ordering::Relaxed)
    );
    // Calls caught by the kill are "unreachable" (retried, served stale by
    // the cache), never a server-side error.
    assert_eq!(lost_in_flight.load(Ordering::Relaxed), 0);
}

/// Whether `error` is a call cut off by its connection being torn down
/// (rather than a server-side failure or a wrong answer).
fn is_connection_loss(error: &portolan_client::Error) -> bool {
    use portolan_client::Error;
    let message = match error {
        Error::Internal { code, message } if code == "Unknown" => message,
        Error::Cancelled { message } => message,
        _ => return false,
    };
    [
        "broken pipe",
        "connection reset",
        "connection closed",
        "stream closed",
        "h2 protocol error",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_new_data_reaches_the_replica() {
    let sample = shared_file("iana/sample-1000.csv");
    let (s, mut server) = serve_generation_a(&sample).await;

    let replica = start_replica(&s.uri);
    assert!(replica.wait_for_version(1, Duration::from_secs(10)).await);
    assert_eq!(
        replica.lookup_name(PROBE, None).records[0].description,
        "Generation A"
    );

    // Old process with generation A, new process with B; each starts at its startup time.
    server.kill();
    write_atomically(&s.data, &generation(&s.base, "B"));
    let _server = ServerProcess::start(s.addr, &s.data);
    wait_serving(&s.uri, s.records).await;

    eventually(
        Duration::from_secs(15),
        "the replica to see generation B",
        || async {
            let local = replica.lookup_name(PROBE, None);
            (replica.is_live() && local.records[0].description == "Generation B").then_some(())
        },
    )
    .await;
}
