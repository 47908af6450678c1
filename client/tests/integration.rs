//! Client library against a real in-process server on `127.0.0.1:0`,
//! serving a temporary copy of the real IANA CSV. Server calls are counted
//! through the server's `/metrics` endpoint; nothing sleeps to wait, every
//! wait polls with a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use portolan_client::{
    BatchQuery, CacheConfig, CachedClient, Client, Error, ReplicaClient, ReplicaConfig,
    RetryPolicy, ScanFilter,
};
use portolan_registry::{Protocol, RecordState};
use portolan_server::Args;
use portolan_test_support::server as support;
use portolan_test_support::{eventually, shared_file};

const HTTPS_TCP_LINE: &str = "https,443,tcp,http protocol over TLS/SSL,";
const HTTPS_TCP_CHANGED: &str = "https,443,tcp,HTTPS changed by the client test,";

/// The shared in-process server (`portolan-test-support`), serving a copy
/// of a CSV that the test may change.
struct TestServer {
    server: support::TestServer,
    addr: SocketAddr,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start(csv: &Path, tweak: impl FnOnce(&mut Args)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("registry.csv");
        std::fs::copy(csv, &data).expect("copy the CSV");
        let mut args = support::test_args(Some(&data));
        args.poll_interval = Duration::from_millis(500);
        args.heartbeat_interval = Duration::from_secs(1);
        args.shutdown_grace = Duration::from_secs(2);
        tweak(&mut args);
        let server = support::start_server(args).await;
        let server = Self {
            addr: server.addr,
            server,
            data,
            _dir: dir,
        };
        let client = server.client().await;
        eventually(Duration::from_secs(20), "the registry to load", || {
            let client = client.clone();
            async move { client.registry_info().await.ok() }
        })
        .await;
        server
    }

    fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    async fn client(&self) -> Client {
        Client::builder(self.endpoint())
            .timeout(Duration::from_secs(5))
            .retry(RetryPolicy {
                max_attempts: 2,
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(100),
            })
            .connect_lazy()
            .expect("client")
    }

    async fn metrics(&self) -> String {
        support::http_get(self.server.admin_addr, "/metrics").await
    }

    /// RPCs of `method` the server has answered.
    async fn handled(&self, method: &str) -> u64 {
        self.method_total("grpc_server_handled", method).await
    }

    /// The sum of `series` over every label set of `method`.
    async fn method_total(&self, series: &str, method: &str) -> u64 {
        let needle = format!("grpc_method=\"{method}\"");
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(series) && l.contains(&needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// The version the server serves.
    async fn info_version(&self) -> u64 {
        let client = self.client().await;
        client.registry_info().await.expect("registry info").version
    }

    /// RPCs of `method` the server has started.
    async fn started(&self, method: &str) -> u64 {
        self.method_total("grpc_server_started", method).await
    }

    async fn active_watch_streams(&self) -> u64 {
        self.metrics()
            .await
            .lines()
            .find(|l| l.starts_with("portolan_watch_streams_active"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .expect("portolan_watch_streams_active is exported") as u64
    }

    /// Atomically replaces the data file with a copy where 443/tcp changed.
    fn change_https(&self) {
        let text = std::fs::read_to_string(&self.data).expect("read data");
        assert!(
            text.contains(HTTPS_TCP_LINE),
            "the CSV has the https 443/tcp row"
        );
        let changed = text.replacen(HTTPS_TCP_LINE, HTTPS_TCP_CHANGED, 1);
        let tmp = self.data.with_extension("tmp");
        std::fs::write(&tmp, changed).expect("write copy");
        std::fs::rename(&tmp, &self.data).expect("rename over the data file");
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

fn fast_cache() -> CacheConfig {
    CacheConfig {
        heartbeat_timeout: Duration::from_secs(5),
        reconnect: RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
        ..CacheConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_calls_return_domain_values_and_typed_errors() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = TestServer::start(&csv, |_| {}).await;
    let client = server.client().await;

    let https = client
        .lookup_port(443, Some(&Protocol::Tcp))
        .await
        .expect("443/tcp");
    assert_eq!(https.records[0].name.as_deref(), Some("https"));
    assert!(https.version >= 1);
    let x11 = client.lookup_port(6010, None).await.expect("6010");
    assert!(x11.records.iter().any(|r| r.name.as_deref() == Some("x11")));
    let by_name = client.lookup_name("HTTPS", None).await.expect("https");
    assert!(
        by_name
            .records
            .iter()
            .all(|r| r.name.as_deref() == Some("https"))
    );
    assert!(by_name.records.len() >= 2);

    match client.lookup_name("no-such-service-anywhere", None).await {
        Err(Error::NotFound { stale: false, .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    match client
        .lookup_port(80, Some(&Protocol::Other("ddp".into())))
        .await
    {
        Err(Error::InvalidArgument { message }) => assert!(message.contains("protocol")),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }

    let queries = futures::stream::iter(vec![
        BatchQuery::port("p", 443).with_protocol(Protocol::Tcp),
        BatchQuery::name("n", "ldap"),
        BatchQuery::name("missing", "no-such-service-anywhere"),
    ]);
    let mut items: Vec<_> = client
        .batch_lookup(queries)
        .await
        .expect("batch")
        .map(|i| i.expect("item"))
        .collect()
        .await;
    items.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(items.len(), 3);
    assert!(
        matches!(items[0].result, Err(Error::NotFound { .. })),
        "{:?}",
        items[0]
    );
    assert_eq!(items[1].id, "n");
    assert_eq!(
        items[1].result.as_ref().expect("ldap").records[0]
            .name
            .as_deref(),
        Some("ldap")
    );
    assert_eq!(
        items[2].result.as_ref().expect("443").records[0]
            .name
            .as_deref(),
        Some("https")
    );

    let found: Vec<_> = client
        .search("ldap", &ScanFilter::default(), 5)
        .await
        .expect("search")
        .map(|r| r.expect("record"))
        .collect()
        .await;
    assert_eq!(found.len(), 5);
    assert_eq!(found[0].name.as_deref(), Some("ldap"));

    let filter = ScanFilter {
        protocol: Some(Protocol::Tcp),
        port_min: Some(20),
        port_max: Some(25),
        states: vec![RecordState::Assigned],
        layers: Vec::new(),
    };
    let listed: Vec<_> = client
        .list_records(&filter)
        .await
        .expect("list")
        .map(|r| r.expect("record"))
        .collect()
        .await;
    let names: Vec<_> = listed.iter().filter_map(|r| r.name.as_deref()).collect();
    assert!(
        names.contains(&"ssh") && names.contains(&"smtp"),
        "{names:?}"
    );
    assert!(listed.iter().all(|r| r.ports.expect("port").start <= 25));

    let info = client.registry_info().await.expect("info");
    assert!(info.record_count > 10_000, "{info:?}");
    assert_eq!(info.source_format, "iana-csv");

    // Several endpoints, and a DNS name: both balanced, both answer.
    let list = Client::builder_list([server.endpoint(), server.endpoint()])
        .connect_lazy()
        .expect("list client");
    assert_eq!(
        list.lookup_port(22, Some(&Protocol::Tcp))
            .await
            .expect("22")
            .records[0]
            .name
            .as_deref(),
        Some("ssh")
    );
    let dns = Client::builder_dns(
        format!("http://localhost:{}", server.addr.port()),
        Duration::from_millis(200),
    )
    .connect()
    .await
    .expect("dns client");
    let answer = eventually(Duration::from_secs(10), "the DNS-balanced client", || {
        let dns = dns.clone();
        async move { dns.lookup_port(22, Some(&Protocol::Tcp)).await.ok() }
    })
    .await;
    assert_eq!(answer.records[0].name.as_deref(), Some("ssh"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_unavailable_with_the_cause() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = Client::builder(format!("http://{addr}"))
        .connect()
        .await
        .expect_err("nothing listens");
    assert_eq!(
        err,
        Error::Unavailable {
            message: "connection refused".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_hits_make_no_rpc_and_concurrent_misses_make_one() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = TestServer::start(&csv, |_| {}).await;
    let cache = CachedClient::new(server.client().await, fast_cache());
    assert!(
        cache.wait_live(Duration::from_secs(10)).await,
        "cache goes live"
    );

    let before = server.started("LookupPort").await;
    let first = cache
        .lookup_port(443, Some(&Protocol::Tcp))
        .await
        .expect("443");
    assert_eq!(first.value.records[0].name.as_deref(), Some("https"));
    assert!(!first.stale);
    assert_eq!(server.started("LookupPort").await, before + 1);
    for _ in 0..20 {
        let hit = cache
            .lookup_port(443, Some(&Protocol::Tcp))
            .await
            .expect("hit");
        assert!(
            Arc::ptr_eq(&hit.value, &first.value),
            "served from the cache"
        );
    }
    assert_eq!(
        server.started("LookupPort").await,
        before + 1,
        "hits make no RPC"
    );

    // Negative caching.
    let missing = "no-such-service-anywhere";
    assert!(
        cache
            .lookup_name(missing, None)
            .await
            .expect_err("missing")
            .is_not_found()
    );
    let names_before = server.started("LookupName").await;
    assert!(
        cache
            .lookup_name(missing, None)
            .await
            .expect_err("missing")
            .is_not_found()
    );
    assert_eq!(server.started("LookupName").await, names_before);

    // 100 concurrent identical misses: one RPC.
    let names_before = server.started("LookupName").await;
    let rpcs_before = cache.stats().rpcs;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.lookup_name("Kerberos", None).await })
        })
        .collect();
    for task in tasks {
        let answer = task.await.expect("task").expect("kerberos");
        assert_eq!(answer.value.records[0].name.as_deref(), Some("kerberos"));
    }
    assert_eq!(server.started("LookupName").await, names_before + 1);
    assert_eq!(cache.stats().rpcs, rpcs_before + 1);

    let stats = cache.stats();
    assert!(stats.hits >= 21, "{stats:?}");
    assert_eq!(stats.negative_hits, 1, "{stats:?}");
    assert!(stats.live && stats.version >= 1, "{stats:?}");
    server.stop().await;
}

/// A TCP proxy to `upstream` whose server-to-client direction can be held:
/// while the gate is closed, what the server sends waits in the proxy.
async fn gated_proxy(upstream: SocketAddr) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    let (gate, open) = tokio::sync::watch::channel(true);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            let mut open = open.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let Ok(n) = server_read.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 || open.wait_for(|open| *open).await.is_err() {
                        return;
                    }
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, gate)
}

/// Row 1 of issue #15: a caller abandons a lookup while its RPC is in
/// flight, the record changes, and a later caller asks for the same key
/// after the cache applied the change. The later caller must get the new
/// content, not the abandoned flight's answer from before the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_after_a_change_never_joins_a_flight_from_before_it() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = TestServer::start(&csv, |_| {}).await;
    let (proxy, gate) = gated_proxy(server.addr).await;
    let client = Client::builder(format!("http://{proxy}"))
        .timeout(Duration::from_secs(10))
        .connect_lazy()
        .expect("client");
    let cache = CachedClient::new(client, fast_cache());
    assert!(cache.wait_live(Duration::from_secs(10)).await);
    let version = cache.stats().version;

    // The server answers 443/tcp, but the answer is held in the proxy
    // while its caller gives up.
    gate.send_replace(false);
    let handled_before = server.handled("LookupPort").await;
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        cache.lookup_port(443, Some(&Protocol::Tcp)),
    )
    .await;
    assert!(abandoned.is_err(), "the answer is held: {abandoned:?}");
    eventually(Duration::from_secs(5), "the server to answer", || async {
        (server.handled("LookupPort").await > handled_before).then_some(())
    })
    .await;

    // The record changes; the cache applies the change once the proxy lets
    // the watch stream through (after the held answer).
    server.change_https();
    eventually(Duration::from_secs(5), "the server to reload", || async {
        (server.info_version().await > version).then_some(())
    })
    .await;
    gate.send_replace(true);
    assert!(
        cache
            .wait_for_version(version + 1, Duration::from_secs(5))
            .await,
        "the cache applied the change: {:?}",
        cache.stats()
    );
    let answer = cache
        .lookup_port(443, Some(&Protocol::Tcp))
        .await
        .expect("443/tcp");
    assert_eq!(
        answer.value.records[0].description,
        "HTTPS changed by the client test"
    );
    assert!(!answer.stale);
    server.stop().await;
}

/// Row 2 of issue #15: an `/etc/services` alias that moves (`www` becomes
/// `web` on `http 80/tcp`) is invalidated with its record: the old alias
/// stops answering and the new one stops being a cached miss, although
/// neither is the key's (primary) name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_alias_is_invalidated_with_its_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("services");
    let services = |alias: &str| {
        format!("ssh\t\t22/tcp\nhttp\t\t80/tcp\t\t{alias} www-http\t# WorldWideWeb HTTP\n")
    };
    std::fs::write(&data, services("www")).expect("write services");
    let server = support::start_server(support::test_args(Some(&data))).await;
    server.ready_client().await;
    let client = Client::builder(server.endpoint())
        .connect_lazy()
        .expect("client");
    let cache = CachedClient::new(client, fast_cache());
    assert!(cache.wait_live(Duration::from_secs(10)).await);
    let version = cache.stats().version;
    let www = cache.lookup_name("www", None).await.expect("www is http");
    assert_eq!(www.value.records[0].name.as_deref(), Some("http"));
    assert!(
        cache
            .lookup_name("web", None)
            .await
            .expect_err("no web")
            .is_not_found()
    );
    // Both answers are now cached (a hit and a miss).
    let rpcs = cache.stats().rpcs;
    cache.lookup_name("www", None).await.expect("cached");
    assert_eq!(cache.stats().rpcs, rpcs, "served from the cache");

    let tmp = dir.path().join("services.tmp");
    std::fs::write(&tmp, services("web")).expect("write");
    std::fs::rename(&tmp, &data).expect("rename over the data file");
    assert!(
        cache
            .wait_for_version(version + 1, Duration::from_secs(5))
            .await,
        "the cache applied the change: {:?}",
        cache.stats()
    );
    let web = cache
        .lookup_name("web", None)
        .await
        .expect("web is http now");
    assert_eq!(web.value.records[0].name.as_deref(), Some("http"));
    let www = cache.lookup_name("www", None).await;
    assert!(
        www.as_ref().is_err_and(Error::is_not_found),
        "www no longer names a record: {www:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_invalidates_exactly_the_changed_keys_within_two_seconds() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = TestServer::start(&csv, |_| {}).await;
    let cache = CachedClient::new(server.client().await, fast_cache());
    assert!(cache.wait_live(Duration::from_secs(10)).await);
    let old = cache
        .lookup_port(443, Some(&Protocol::Tcp))
        .await
        .expect("443");
    assert_eq!(
        old.value.records[0].description,
        "http protocol over TLS/SSL"
    );
    let ssh = cache
        .lookup_port(22, Some(&Protocol::Tcp))
        .await
        .expect("22");
    let version = cache.stats().version;

    server.change_https();
    let changed_at = Instant::now();
    eventually(
        Duration::from_secs(2),
        "the invalidation of 443/tcp",
        || {
            let cache = cache.clone();
            async move { (cache.stats().version > version).then_some(()) }
        },
    )
    .await;
    let invalidations = cache.stats().invalidations;
    assert!(invalidations >= 1, "the 443 entry was dropped");
    let new = cache
        .lookup_port(443, Some(&Protocol::Tcp))
        .await
        .expect("443");
    assert_eq!(
        new.value.records[0].description,
        "HTTPS changed by the client test"
    );
    assert!(new.version > old.version);
    assert!(changed_at.elapsed() < Duration::from_secs(2) + Duration::from_millis(500));
    // 22/tcp was not touched by the change: still the same cached answer.
    let ssh_again = cache
        .lookup_port(22, Some(&Protocol::Tcp))
        .await
        .expect("22");
    assert!(
        Arc::ptr_eq(&ssh.value, &ssh_again.value),
        "unrelated entry kept"
    );
    // The name lookup of https was invalidated too.
    let by_name = cache
        .lookup_name("https", Some(&Protocol::Tcp))
        .await
        .expect("https");
    assert_eq!(
        by_name.value.records[0].description,
        "HTTPS changed by the client test"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_server_down_the_replica_answers_and_the_cache_serves_stale() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = TestServer::start(&csv, |_| {}).await;
    let replica = ReplicaClient::start(
        server.client().await,
        support::excerpt_registry(),
        ReplicaConfig::default(),
    );
    // Version 0 (embedded) knows 2692 but not 443.
    assert_eq!(replica.version(), 0);
    assert!(
        replica
            .lookup_port(443, Some(&Protocol::Tcp))
            .records
            .is_empty()
    );
    assert!(
        replica.wait_for_version(1, Duration::from_secs(20)).await,
        "replica catches up"
    );
    assert_eq!(
        replica.lookup_port(443, Some(&Protocol::Tcp)).records[0]
            .name
            .as_deref(),
        Some("https")
    );
    let cache = CachedClient::new(server.client().await, fast_cache());
    assert!(cache.wait_live(Duration::from_secs(10)).await);
    cache
        .lookup_port(443, Some(&Protocol::Tcp))
        .await
        .expect("443");

    server.stop().await;

    let answer = replica.lookup_port(443, Some(&Protocol::Tcp));
    assert_eq!(answer.records[0].name.as_deref(), Some("https"));
    assert!(replica.lookup_name("ldap", None).records.len() >= 2);
    eventually(Duration::from_secs(10), "the cache to notice", || {
        let live = cache.is_live();
        async move { (!live).then_some(()) }
    })
    .await;
    let stale = cache
        .lookup_port(443, Some(&Protocol::Tcp))
        .await
        .expect("stale answer");
    assert!(stale.stale, "marked stale");
    assert_eq!(stale.value.records[0].name.as_deref(), Some("https"));
    assert!(cache.stats().stale_hits >= 1);
    // Never cached: the error comes through.
    let err = cache.lookup_port(22, None).await.expect_err("server down");
    assert!(err.is_unreachable(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_resumes_by_state_and_gets_a_delta_not_a_snapshot() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = TestServer::start(&csv, |args| {
        args.max_stream_lifetime = Duration::from_secs(2);
    })
    .await;
    // A reconnect delay long enough for the change to land while the
    // replica is disconnected.
    let config = ReplicaConfig {
        reconnect: RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::from_millis(1500),
            max_backoff: Duration::from_millis(1500),
        },
        ..ReplicaConfig::default()
    };
    let replica = ReplicaClient::start(server.client().await, support::excerpt_registry(), config);
    assert!(replica.wait_for_version(1, Duration::from_secs(20)).await);
    assert_eq!(replica.stats().snapshots_applied, 1);
    // The server ends the stream after its maximum lifetime.
    eventually(Duration::from_secs(10), "the stream to be cut", || {
        let live = replica.is_live();
        async move { (!live).then_some(()) }
    })
    .await;
    server.change_https();
    assert!(
        replica.wait_for_version(2, Duration::from_secs(10)).await,
        "caught up"
    );
    let stats = replica.stats();
    assert_eq!(stats.snapshots_applied, 1, "{stats:?}");
    assert_eq!(stats.deltas_applied, 1, "{stats:?}");
    assert!(stats.connects >= 2, "{stats:?}");
    assert_eq!(
        replica.lookup_port(443, Some(&Protocol::Tcp)).records[0].description,
        "HTTPS changed by the client test"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_clients_ends_their_watch_streams() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = TestServer::start(&csv, |_| {}).await;
    let cache = CachedClient::new(server.client().await, fast_cache());
    let replica = ReplicaClient::start(
        server.client().await,
        support::excerpt_registry(),
        ReplicaConfig::default(),
    );
    assert!(cache.wait_live(Duration::from_secs(10)).await);
    assert!(replica.wait_for_version(1, Duration::from_secs(20)).await);
    assert_eq!(server.active_watch_streams().await, 2);
    let weak_index = Arc::downgrade(replica.index());
    let clone = cache.clone();
    drop(cache);
    // A clone keeps the task alive.
    assert!(clone.is_live());
    drop(clone);
    drop(replica);
    eventually(Duration::from_secs(5), "the watch streams to close", || {
        let server = &server;
        async move { (server.active_watch_streams().await == 0).then_some(()) }
    })
    .await;
    eventually(
        Duration::from_secs(5),
        "the replica task to release its index",
        || {
            let gone = weak_index.upgrade().is_none();
            async move { gone.then_some(()) }
        },
    )
    .await;
    server.stop().await;
}
