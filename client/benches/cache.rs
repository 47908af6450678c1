//! Hit latency of [`CachedClient`] and lookup latency of [`ReplicaClient`],
//! beside libc's `getservbyname`/`getservbyport` (NSS over /etc/services)
//! on the same machine.
//!
//! The cache is filled from an in-process server on `127.0.0.1:0` serving
//! the embedded registry; the measured calls never leave the process.
//! Run with `cargo bench -p portolan-client --bench cache`.

// Calling libc's getservbyname/getservbyport needs `unsafe` FFI calls; this
// bench file is the only place in the workspace that does so, to compare
// against the platform baseline. The pointers passed are NUL-terminated
// C strings owned by this function; the returned pointer is only checked
// for null, never dereferenced.
#![allow(unsafe_code)]
#![allow(missing_docs)]

use std::ffi::CString;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::FutureExt as _;
use portolan_client::{CacheConfig, CachedClient, Client, ReplicaClient, ReplicaConfig};
use portolan_registry::Protocol;

fn start_server(rt: &tokio::runtime::Runtime) -> SocketAddr {
    rt.block_on(async {
        let mut args = portolan_server::Args::defaults();
        args.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = portolan_server::Config::load(args).expect("embedded config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let listeners = portolan_server::Listeners {
            grpc: listener,
            admin: None,
            health: None,
        };
        tokio::spawn(portolan_server::run_with_listeners(
            config,
            listeners,
            std::future::pending::<()>(),
        ));
        addr
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let addr = start_server(&rt);
    let (cache, replica) = rt.block_on(async {
        let client = Client::builder(format!("http://{addr}"))
            .connect_lazy()
            .expect("client");
        // Wait for the registry to load.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while client.registry_info().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "server up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let cache = CachedClient::new(client.clone(), CacheConfig::default());
        assert!(cache.wait_live(Duration::from_secs(10)).await);
        cache
            .lookup_port(2692, Some(&Protocol::Tcp))
            .await
            .expect("fill port");
        cache
            .lookup_name("admins-lms", Some(&Protocol::Tcp))
            .await
            .expect("fill name");
        let replica = ReplicaClient::start(
            client,
            portolan_registry::embedded::registry(),
            ReplicaConfig::default(),
        );
        assert!(replica.wait_for_version(1, Duration::from_secs(10)).await);
        (cache, replica)
    });

    let mut group = c.benchmark_group("lookup");
    group.bench_function("cached_client_hit_port", |b| {
        b.iter(|| {
            let answer = cache
                .lookup_port(black_box(2692), Some(&Protocol::Tcp))
                .now_or_never()
                .expect("a hit completes without waiting")
                .expect("cached");
            black_box(answer);
        });
    });
    group.bench_function("cached_client_hit_name", |b| {
        b.iter(|| {
            let answer = cache
                .lookup_name(black_box("admins-lms"), Some(&Protocol::Tcp))
                .now_or_never()
                .expect("a hit completes without waiting")
                .expect("cached");
            black_box(answer);
        });
    });
    group.bench_function("replica_lookup_port", |b| {
        b.iter(|| black_box(replica.lookup_port(black_box(2692), Some(&Protocol::Tcp))));
    });
    group.bench_function("replica_lookup_name", |b| {
        b.iter(|| black_box(replica.lookup_name(black_box("admins-lms"), Some(&Protocol::Tcp))));
    });
    let tcp = CString::new("tcp").expect("no NUL");
    let name = CString::new("ssh").expect("no NUL");
    group.bench_function("libc_getservbyport", |b| {
        b.iter(|| {
            // SAFETY: `tcp` is a valid NUL-terminated string that outlives
            // the call; the result is only compared with null.
            let entry =
                unsafe { libc::getservbyport(black_box(22u16.to_be() as i32), tcp.as_ptr()) };
            black_box(entry.is_null());
        });
    });
    group.bench_function("libc_getservbyname", |b| {
        b.iter(|| {
            // SAFETY: as above; both strings are NUL-terminated and live.
            let entry = unsafe { libc::getservbyname(black_box(name.as_ptr()), tcp.as_ptr()) };
            black_box(entry.is_null());
        });
    });
    group.finish();
    println!("cache stats after the run: {:?}", cache.stats());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
