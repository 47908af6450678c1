//! The client library over several real server replicas (issue 15): three
//! in-process servers on `127.0.0.1:0`, each serving its own data
//! directory, and clients balanced over all three, as a list of endpoints
//! and as a "DNS" name (a resolver naming the three addresses, re-resolved
//! like a headless Service). Data files are replaced one replica at a time,
//! in every order, between two real IANA editions. Nothing sleeps to wait:
//! every wait polls with a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use portolan::pb;
use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan_client::{
    BatchQuery, CacheConfig, CachedClient, Client, Error, LookupTarget, ReplicaClient,
    ReplicaConfig, ResolveFn, RetryPolicy, ScanFilter,
};
use portolan_registry::{Protocol, Record};
use portolan_server::Args;
use portolan_test_support::server as support;
use portolan_test_support::{eventually, shared_file};

/// The 2026-04-24 edition: 4480/tcp is unassigned and `agtp` unknown.
const OLD: &str = "iana/service-names-port-numbers-2026-04-24.xml";
/// The 2026-08 edition: 4480/tcp is `agtp`.
const NEW: &str = "iana/service-names-port-numbers.xml";

/// How long a client may take to answer the new content once the last
/// replica has applied it (the figure).
const CONVERGENCE: Duration = Duration::from_secs(2);

/// One replica: a server with its own data directory.
struct Replica {
    server: support::TestServer,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

fn replica_args(data: &Path, initial_version: u64) -> Args {
    let mut args = support::test_args(Some(data));
    args.initial_version = Some(initial_version);
    args.heartbeat_interval = Duration::from_millis(500);
    args.shutdown_grace = Duration::from_secs(2);
    args
}

impl Replica {
    /// A replica serving a copy of `file`, counting versions from
    /// `initial_version` (replicas started at different moments count
    /// differently).
    async fn start(file: &str, initial_version: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("registry.xml");
        std::fs::copy(shared_file(file), &data).expect("copy the registry");
        let server = support::start_server(replica_args(&data, initial_version)).await;
        let replica = Self {
            server,
            data,
            _dir: dir,
        };
        replica.state().await;
        replica
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The state the server serves (polls until it answers).
    async fn state(&self) -> u64 {
        let client = self.server.ready_client().await;
        info(client).await.state_id
    }

    /// Replaces the data file with `file`, atomically (rename).
    fn replace_with(&self, file: &str) {
        replace_file(&self.data, &std::fs::read(shared_file(file)).expect("read"));
    }

    /// Waits until the server serves `state`.
    async fn wait_for_state(&self, state: u64) {
        let client = self.server.client().await;
        eventually(Duration::from_secs(30), "the replica to reload", || {
            let client = client.clone();
            async move { (info(client).await.state_id == state).then_some(()) }
        })
        .await;
    }
}

/// Replaces `path` with `contents` atomically (a temporary file renamed
/// over it), as an operator's deploy would.
fn replace_file(path: &Path, contents: &[u8]) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, contents).expect("write");
    std::fs::rename(&temporary, path).expect("rename over the data file");
}

/// Waits until the server behind `client` serves a state other than
/// `previous` (a reload applied), and returns it.
async fn next_state(client: &Client, previous: u64, what: &str) -> u64 {
    eventually(Duration::from_secs(30), what, || async move {
        let info = client.registry_info().await.ok()?;
        (info.state_id != previous).then_some(info.state_id)
    })
    .await
}

async fn info(
    mut client: PortRegistryServiceClient<tonic::transport::Channel>,
) -> pb::GetRegistryInfoResponse {
    client
        .get_registry_info(pb::GetRegistryInfoRequest {})
        .await
        .expect("registry info")
        .into_inner()
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

fn list_client(addrs: &[SocketAddr]) -> Client {
    Client::builder_list(addrs.iter().map(|a| format!("http://{a}")))
        .timeout(Duration::from_secs(5))
        .retry(retry())
        .connect_lazy()
        .expect("list client")
}

/// A client of the DNS form whose name resolves to `table` (read at every
/// refresh, so a test can move the name to other addresses).
fn dns_client(table: Arc<Mutex<Vec<SocketAddr>>>) -> Client {
    let resolve: Arc<ResolveFn> = Arc::new(move |_host, _port| {
        let addrs = table.lock().unwrap().clone();
        Box::pin(async move { Ok(addrs) })
    });
    Client::builder_dns("http://portolan.test:50051", Duration::from_millis(100))
        .resolver(resolve)
        .timeout(Duration::from_secs(5))
        .retry(retry())
        .connect_lazy()
        .expect("dns client")
}

fn cache_config() -> CacheConfig {
    CacheConfig {
        // Long enough that a wrongly kept answer would outlive the test.
        ttl: Duration::from_secs(600),
        negative_ttl: Duration::from_secs(600),
        heartbeat_timeout: Duration::from_secs(5),
        reconnect: retry_forever(),
        ..CacheConfig::default()
    }
}

fn retry_forever() -> RetryPolicy {
    RetryPolicy {
        max_attempts: u32::MAX,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

fn replica_config() -> ReplicaConfig {
    ReplicaConfig {
        heartbeat_timeout: Duration::from_secs(5),
        reconnect: retry_forever(),
    }
}

/// What a client says of the two keys the editions disagree on: the name
/// of the first record of 4480/tcp (`None` for the unassigned range) and
/// whether `agtp` is found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    port_4480: Option<String>,
    agtp_found: bool,
}

impl Seen {
    fn of(file: &str) -> Self {
        Self {
            port_4480: (file == NEW).then(|| "agtp".to_string()),
            agtp_found: file == NEW,
        }
    }
}

async fn seen_by_cache(cache: &CachedClient) -> Seen {
    let port = cache
        .lookup_port(4480, Some(&Protocol::Tcp))
        .await
        .expect("4480/tcp is covered in both editions");
    let agtp_found = match cache.lookup_name("agtp", None).await {
        Ok(_) => true,
        Err(Error::NotFound { .. }) => false,
        Err(e) => panic!("lookup of agtp failed: {e}"),
    };
    Seen {
        port_4480: port.value.records[0].name.clone(),
        agtp_found,
    }
}

fn seen_by_replica(replica: &ReplicaClient) -> Seen {
    let port = replica.lookup_port(4480, Some(&Protocol::Tcp));
    Seen {
        port_4480: port.records[0].name.clone(),
        agtp_found: !replica.lookup_name("agtp", None).records.is_empty(),
    }
}

/// The six orders of three replicas.
fn orders() -> Vec<[usize; 3]> {
    vec![
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ]
}

/// Three replicas, files replaced one replica at a time in every order
/// (old to new, then back, so each round replaces content): while the
/// replicas disagree the caches keep answering; once the last replica has
/// applied the change, every cache (list and DNS forms) and every replica
/// client answers the new content within two seconds, and no later lookup
/// returns the replaced content. Then, with all replicas on one content,
/// the caches' steady-state hit rate is at least 99 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caches_and_replicas_over_three_replicas_never_keep_replaced_content() {
    // Started a moment apart: each replica numbers its versions its own way.
    let replicas = vec![
        Replica::start(OLD, 1).await,
        Replica::start(OLD, 1_000).await,
        Replica::start(OLD, 2_000).await,
    ];
    let addrs: Vec<SocketAddr> = replicas.iter().map(Replica::addr).collect();
    let table = Arc::new(Mutex::new(addrs.clone()));
    let caches = [
        (
            "list",
            CachedClient::new(list_client(&addrs), cache_config()),
        ),
        (
            "dns",
            CachedClient::new(dns_client(Arc::clone(&table)), cache_config()),
        ),
    ];
    let followers = [
        (
            "list",
            ReplicaClient::start(
                list_client(&addrs),
                support::excerpt_registry(),
                replica_config(),
            ),
        ),
        (
            "dns",
            ReplicaClient::start(
                dns_client(Arc::clone(&table)),
                support::excerpt_registry(),
                replica_config(),
            ),
        ),
    ];
    let old_state = replicas[0].state().await;
    for replica in &replicas[1..] {
        assert_eq!(replica.state().await, old_state, "one content, one state");
    }
    for (form, cache) in &caches {
        assert!(
            cache
                .wait_for_state(old_state, Duration::from_secs(20))
                .await,
            "{form} cache"
        );
    }
    for (form, replica) in &followers {
        assert!(
            replica
                .wait_for_state(old_state, Duration::from_secs(30))
                .await,
            "{form} replica"
        );
    }

    let mut states = std::collections::HashMap::from([(OLD, old_state)]);
    for (round, order) in orders().into_iter().enumerate() {
        let (from, to) = if round % 2 == 0 {
            (OLD, NEW)
        } else {
            (NEW, OLD)
        };
        let round_name = format!("round {round} ({from} -> {to}, order {order:?})");
        // Fill the caches with the current content first.
        for (_, cache) in &caches {
            assert_eq!(seen_by_cache(cache).await, Seen::of(from), "{round_name}");
        }
        for (step, &i) in order.iter().enumerate() {
            replicas[i].replace_with(to);
            let to_state = match states.get(to) {
                Some(&state) => state,
                None => {
                    // The first time: learn the new state from the replica.
                    let client = list_client(&[replicas[i].addr()]);
                    let state = next_state(&client, old_state, "the first reload").await;
                    states.insert(to, state);
                    state
                }
            };
            replicas[i].wait_for_state(to_state).await;
            if step < 2 {
                // Replicas disagree: each lookup answers from whichever
                // replica it reaches (either edition), and keeps working.
                for (_, cache) in &caches {
                    seen_by_cache(cache).await;
                }
            }
        }
        let applied = Instant::now();
        let want = Seen::of(to);
        for (form, cache) in &caches {
            eventually(
                CONVERGENCE,
                &format!("{round_name}: the {form} cache"),
                || async { (seen_by_cache(cache).await == want).then_some(()) },
            )
            .await;
        }
        for (form, replica) in &followers {
            eventually(
                CONVERGENCE,
                &format!("{round_name}: the {form} replica"),
                || async { (seen_by_replica(replica) == want).then_some(()) },
            )
            .await;
        }
        assert!(applied.elapsed() <= CONVERGENCE + Duration::from_millis(500));
        // No later lookup returns the replaced content: the answers the
        // caches keep (and the replicas' copies) stay on the new content
        // while the streams deliver what is left of the change.
        let until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < until {
            for (form, cache) in &caches {
                assert_eq!(
                    seen_by_cache(cache).await,
                    want,
                    "{round_name}: {form} cache"
                );
            }
            for (form, replica) in &followers {
                assert_eq!(
                    seen_by_replica(replica),
                    want,
                    "{round_name}: {form} replica"
                );
            }
            tokio::task::yield_now().await;
        }
    }

    // Steady state: every replica serves one content; the caches answer
    // locally.
    let keys: Vec<u16> = (1..=60).collect();
    for (form, cache) in &caches {
        let final_state = replicas[0].state().await;
        assert!(
            cache
                .wait_for_state(final_state, Duration::from_secs(10))
                .await,
            "{form}"
        );
        let before = cache.stats();
        for _ in 0..200 {
            for &port in &keys {
                let _ = cache.lookup_port(port, None).await;
            }
        }
        let after = cache.stats();
        let hits = (after.hits + after.negative_hits) - (before.hits + before.negative_hits);
        let misses = after.misses - before.misses;
        let rate = hits as f64 / (hits + misses) as f64;
        println!("{form} cache: steady-state hit rate {rate:.4} ({hits} hits, {misses} misses)");
        assert!(
            rate >= 0.99,
            "{form} cache: hit rate {rate:.4} ({hits} hits, {misses} misses)"
        );
    }
    // An operator sees at once that the replicas serve one registry: the
    // same state id in GetRegistryInfo and in each one's metrics, and only
    // that one.
    let final_state = replicas[0].state().await;
    for replica in &replicas {
        assert_eq!(replica.state().await, final_state);
        let series = format!("portolan_registry_state{{state_id=\"{final_state:016x}\"}}");
        assert_eq!(replica.server.metric(&series).await, 1.0, "{series}");
        let text = support::http_get(replica.server.admin_addr, "/metrics").await;
        let states = text
            .lines()
            .filter(|l| l.starts_with("portolan_registry_state{"))
            .count();
        assert_eq!(states, 1, "one state series: {text}");
    }
    for replica in replicas {
        replica.server.stop().await;
    }
}

/// Every record of a scan, in order, as wire messages.
async fn listing(client: &Client) -> Vec<pb::Record> {
    let mut stream = client
        .list_records(&ScanFilter::default())
        .await
        .expect("list");
    let mut out = Vec::new();
    while let Some(record) = stream.next().await {
        let record = record.expect("a record");
        out.push(portolan::convert::unkeyed_record_to_pb(&record));
    }
    out
}

fn local_listing(replica: &ReplicaClient) -> Vec<pb::Record> {
    let snapshot = replica.snapshot();
    snapshot
        .list(&portolan_registry::Filter::default())
        .map(|(_, record)| portolan::convert::unkeyed_record_to_pb(record))
        .collect()
}

/// A replica client follows A (old edition) until A is stopped and its
/// name moves to B (new edition); both servers count from the same
/// `--initial-version`, so their version numbers collide. The replica ends
/// with exactly B's content, record for record and in B's order, and the
/// cache following the same name answers B's content.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_moving_to_another_server_ends_with_exactly_its_content() {
    let a = Replica::start(OLD, 7).await;
    let b = Replica::start(NEW, 7).await;
    let (a_state, b_state) = (a.state().await, b.state().await);
    assert_ne!(a_state, b_state);
    let table = Arc::new(Mutex::new(vec![a.addr()]));
    let replica = ReplicaClient::start(
        dns_client(Arc::clone(&table)),
        support::excerpt_registry(),
        replica_config(),
    );
    let cache = CachedClient::new(dns_client(Arc::clone(&table)), cache_config());
    assert!(
        replica
            .wait_for_state(a_state, Duration::from_secs(30))
            .await
    );
    assert!(cache.wait_for_state(a_state, Duration::from_secs(30)).await);
    assert_eq!(replica.stats().version, 7);
    assert_eq!(seen_by_cache(&cache).await, Seen::of(OLD));

    // A goes away; the name now points at B, which also says "version 7".
    *table.lock().unwrap() = vec![b.addr()];
    a.server.stop().await;
    assert!(
        replica
            .wait_for_state(b_state, Duration::from_secs(30))
            .await,
        "the replica takes B's content: {:?}",
        replica.stats()
    );
    assert!(cache.wait_for_state(b_state, Duration::from_secs(30)).await);
    assert_eq!(seen_by_replica(&replica), Seen::of(NEW));
    assert_eq!(seen_by_cache(&cache).await, Seen::of(NEW));
    let b_client = list_client(&[b.addr()]);
    assert_eq!(
        local_listing(&replica),
        listing(&b_client).await,
        "exactly B's records"
    );
    b.server.stop().await;
}

/// Moving to a replica that serves the same content costs nothing: the
/// new server answers the held state with a heartbeat (no second
/// snapshot), and the replica takes up that server's version numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_moving_to_a_server_with_the_same_content_gets_a_heartbeat() {
    let a = Replica::start(NEW, 1).await;
    let b = Replica::start(NEW, 5_000).await;
    let state = a.state().await;
    assert_eq!(b.state().await, state);
    let table = Arc::new(Mutex::new(vec![a.addr()]));
    let replica = ReplicaClient::start(
        dns_client(Arc::clone(&table)),
        support::excerpt_registry(),
        replica_config(),
    );
    assert!(replica.wait_for_state(state, Duration::from_secs(30)).await);
    assert_eq!(replica.stats().version, 1);
    *table.lock().unwrap() = vec![b.addr()];
    a.server.stop().await;
    assert!(
        replica
            .wait_for_version(5_000, Duration::from_secs(30))
            .await,
        "{:?}",
        replica.stats()
    );
    let stats = replica.stats();
    assert_eq!(stats.state_id, state);
    assert_eq!(stats.snapshots_applied, 1, "no second snapshot: {stats:?}");
    assert!(stats.connects >= 2, "{stats:?}");
    b.server.stop().await;
}

/// A server restarted in place (same address, same `--initial-version`)
/// on another file is never taken for the old one: the replica and the
/// cache that followed it answer the new file's content.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_restarted_on_another_file_is_never_taken_for_the_old_one() {
    let first = Replica::start(OLD, 7).await;
    let addr = first.addr();
    let old_state = first.state().await;
    let client = list_client(&[addr]);
    let replica = ReplicaClient::start(
        client.clone(),
        support::excerpt_registry(),
        replica_config(),
    );
    let cache = CachedClient::new(client.clone(), cache_config());
    assert!(
        replica
            .wait_for_state(old_state, Duration::from_secs(30))
            .await
    );
    assert!(
        cache
            .wait_for_state(old_state, Duration::from_secs(30))
            .await
    );
    assert_eq!(seen_by_cache(&cache).await, Seen::of(OLD));
    let Replica {
        server,
        data,
        _dir: dir,
    } = first;
    server.stop().await;

    // The same address and version numbers, another file.
    std::fs::copy(shared_file(NEW), &data).expect("replace the file while stopped");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind the address");
    let restarted = support::start_server_on(replica_args(&data, 7), listener).await;
    let new_state = info(restarted.ready_client().await).await.state_id;
    assert_ne!(new_state, old_state);
    assert!(
        replica
            .wait_for_state(new_state, Duration::from_secs(30))
            .await,
        "{:?}",
        replica.stats()
    );
    assert!(
        cache
            .wait_for_state(new_state, Duration::from_secs(30))
            .await
    );
    assert_eq!(seen_by_replica(&replica), Seen::of(NEW));
    assert_eq!(seen_by_cache(&cache).await, Seen::of(NEW));
    assert_eq!(local_listing(&replica), listing(&client).await);
    restarted.stop().await;
    drop(dir);
}

/// Every port (0-65535) and every name and alias of `snapshot`, as batch
/// queries.
fn every_query(snapshot: &portolan_registry::Snapshot) -> Vec<BatchQuery> {
    let names = support::lookup_names([snapshot]);
    let ports = (0..=u16::MAX).map(LookupTarget::Port);
    ports
        .chain(names.into_iter().map(LookupTarget::Name))
        .enumerate()
        .map(|(i, target)| BatchQuery {
            id: i.to_string(),
            target,
            protocol: None,
        })
        .collect()
}

/// The server's answer to every query (one BatchLookup stream): the
/// records in the server's order, empty for NOT_FOUND.
async fn server_answers(client: &Client, queries: &[BatchQuery]) -> Vec<Vec<Record>> {
    let mut answers = vec![None; queries.len()];
    let mut stream = client
        .batch_lookup(futures::stream::iter(queries.to_vec()))
        .await
        .expect("batch");
    while let Some(item) = stream.next().await {
        let item = item.expect("a batch item");
        let index: usize = item.id.parse().expect("our id");
        answers[index] = Some(match item.result {
            Ok(found) => found.records.iter().map(|r| Record::clone(r)).collect(),
            Err(Error::NotFound { .. }) => Vec::new(),
            Err(e) => panic!("query {:?} failed: {e}", queries[index]),
        });
    }
    answers
        .into_iter()
        .map(|a| a.expect("every query answered"))
        .collect()
}

fn replica_answer(replica: &ReplicaClient, query: &BatchQuery) -> Vec<Record> {
    let found = match &query.target {
        LookupTarget::Port(port) => replica.lookup_port(*port, None),
        LookupTarget::Name(name) => replica.lookup_name(name, None),
    };
    found.records.iter().map(|r| Record::clone(r)).collect()
}

/// A replica fed by deltas and one fed by a snapshot answer every port and
/// every name and alias exactly as the server does, order included, for
/// the real IANA XML (two editions) and CSV, the nmap file and the three
/// `/etc/services` files, each applied to the running server in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_and_the_server_agree_on_every_answer_of_the_real_files() {
    let files = [
        "iana/service-names-port-numbers-2026-04-24.xml",
        "iana/service-names-port-numbers.xml",
        "iana/service-names-port-numbers.csv",
        "nmap/nmap-services",
        "etc/services-debian",
        "etc/services-arch-iana-etc-2017",
        "etc/services-gentoo-baselayout",
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("registry.data");
    std::fs::copy(shared_file(files[0]), &data).expect("copy");
    let mut args = replica_args(&data, 1);
    // Every file is accepted, however much smaller than the one before.
    args.max_shrink = 1.0;
    let server = support::start_server(args).await;
    let client = list_client(&[server.addr]);
    let follower = ReplicaClient::start(
        client.clone(),
        support::excerpt_registry(),
        replica_config(),
    );
    let mut state = 0;
    for (step, file) in files.into_iter().enumerate() {
        if step > 0 {
            replace_file(&data, &std::fs::read(shared_file(file)).expect("read"));
        }
        state = next_state(&client, state, &format!("{file} to load")).await;
        assert!(
            follower
                .wait_for_state(state, Duration::from_secs(30))
                .await,
            "{file}"
        );
        let stats = follower.stats();
        assert_eq!(
            (stats.snapshots_applied, stats.deltas_applied),
            (1, step as u64),
            "{file}: the follower took every later file as a delta"
        );
        let fresh = ReplicaClient::start(
            client.clone(),
            support::excerpt_registry(),
            replica_config(),
        );
        assert!(
            fresh.wait_for_state(state, Duration::from_secs(30)).await,
            "{file}"
        );
        let queries = every_query(&fresh.snapshot());
        let answers = server_answers(&client, &queries).await;
        let mut mismatches = Vec::new();
        for (query, answer) in queries.iter().zip(&answers) {
            for (how, replica) in [("delta", &follower), ("snapshot", &fresh)] {
                if replica_answer(replica, query) != *answer {
                    mismatches.push(format!("{how}: {:?}", query.target));
                }
            }
        }
        assert!(
            mismatches.is_empty(),
            "{file}: {} answers differ, first {:?}",
            mismatches.len(),
            &mismatches[..mismatches.len().min(5)]
        );
        assert!(
            answers.iter().any(|a| a.len() > 1),
            "{file}: some answers list several records"
        );
    }
    server.stop().await;
}

/// Issue 15, row 5: the state `stats()` reports is a promise: a lookup
/// started after reading it never returns content older than that state.
/// Editions 1, 2, 3, ... of a small file differ in the description of ftp
/// 21/tcp; while they are applied one after another, four tasks read the
/// cache's stats and then look up 21/tcp, and every answer's edition is at
/// least the edition of the state read before it. A stress test: the race
/// it guards against (a state published before its invalidations ran) is
/// a window of a few instructions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lookup_after_reading_the_cache_state_is_never_older_than_it() {
    const FTP: &str = "ftp,21,tcp,File Transfer Protocol [Control],";
    const EDITIONS: u64 = 25;
    let base = std::fs::read_to_string(shared_file("iana/sample-1000.csv")).expect("read");
    assert!(base.contains(FTP), "the sample holds the ftp row");
    let edition = |k: u64| base.replacen(FTP, &format!("ftp,21,tcp,edition {k},"), 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("registry.csv");
    std::fs::write(&data, edition(0)).expect("write");
    let server = support::start_server(replica_args(&data, 1)).await;
    let client = list_client(&[server.addr]);
    let first_state = eventually(Duration::from_secs(20), "the registry to load", || {
        let client = client.clone();
        async move { client.registry_info().await.ok().map(|i| i.state_id) }
    })
    .await;
    let cache = CachedClient::new(client.clone(), cache_config());
    assert!(
        cache
            .wait_for_state(first_state, Duration::from_secs(20))
            .await
    );

    let editions = Arc::new(Mutex::new(std::collections::HashMap::from([(
        first_state,
        0u64,
    )])));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (cache, stop) = (cache.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let promised = cache.stats().state_id;
                    let answer = cache
                        .lookup_port(21, Some(&Protocol::Tcp))
                        .await
                        .expect("21/tcp");
                    let description = &answer.value.records[0].description;
                    let got: u64 = description
                        .strip_prefix("edition ")
                        .and_then(|k| k.parse().ok())
                        .unwrap_or_else(|| panic!("unexpected description {description:?}"));
                    seen.push((promised, got));
                    // A hit never waits: let the server (in this process)
                    // and the watch stream run.
                    tokio::task::yield_now().await;
                }
                seen
            })
        })
        .collect();

    let mut state = first_state;
    for k in 1..=EDITIONS {
        replace_file(&data, edition(k).as_bytes());
        state = next_state(&client, state, &format!("edition {k}")).await;
        editions.lock().unwrap().insert(state, k);
        assert!(
            cache.wait_for_state(state, Duration::from_secs(10)).await,
            "edition {k}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let editions = editions.lock().unwrap().clone();
    let mut lookups = 0;
    let mut later_than_first = 0;
    for reader in readers {
        for (promised, got) in reader.await.expect("reader") {
            lookups += 1;
            let Some(&promised_edition) = editions.get(&promised) else {
                panic!("the cache reported a state the server never served: {promised:016x}");
            };
            assert!(
                got >= promised_edition,
                "after reading edition {promised_edition}'s state, a lookup returned edition {got}"
            );
            later_than_first += u64::from(promised_edition > 0);
        }
    }
    assert!(
        later_than_first > 0,
        "lookups ran while editions changed ({lookups} in all)"
    );
    server.stop().await;
}
