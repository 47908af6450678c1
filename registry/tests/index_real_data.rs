//! The index on the real registry: lookups the issue names, and readers
//! racing reloads that alternate between two real editions (the 2026-04 CSV
//! and the 2026-08 XML).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use portolan_registry::{Filter, Index, Protocol, RecordKey, RecordState, ReloadGuard, parse};
use portolan_test_support::shared_file;

fn load(path: &std::path::Path) -> portolan_registry::Registry {
    let bytes = std::fs::read(path).expect("readable");
    parse(&bytes, None).expect("parses").registry
}

fn names(index: &Index, port: u16, protocol: Option<&Protocol>) -> Vec<String> {
    index
        .lookup_port(port, protocol)
        .into_records()
        .records
        .iter()
        .map(|r| r.name.clone().unwrap_or_else(|| format!("({})", r.state)))
        .collect()
}

#[test]
fn lookups_on_the_full_csv() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let index = Index::new(load(&csv));
    assert_eq!(index.snapshot().len(), 14_512);
    assert_eq!(
        names(&index, 80, Some(&Protocol::Tcp)),
        ["http", "www", "www-http"]
    );
    assert_eq!(names(&index, 443, Some(&Protocol::Tcp))[0], "https");
    let x11 = index.lookup_port(6010, Some(&Protocol::Tcp)).into_records();
    assert_eq!(x11.records[0].name.as_deref(), Some("x11"));
    assert_eq!(
        x11.records[0].ports.map(|p| (p.start, p.end)),
        Some((6000, 6063))
    );
    let four = index.lookup_port(4, Some(&Protocol::Tcp)).into_records();
    assert_eq!(four.records.len(), 1);
    assert_eq!(four.records[0].state, RecordState::Unassigned);
    // Every port of every range answers.
    let snapshot = index.snapshot();
    for (_, record) in snapshot.keyed() {
        let Some(range) = record.ports else { continue };
        for port in [
            range.start,
            range.start + (range.end - range.start) / 2,
            range.end,
        ] {
            let found = index
                .lookup_port(port, record.protocol.as_ref())
                .into_records();
            assert!(
                found.records.iter().any(|r| Arc::ptr_eq(r, record)),
                "{port} does not find {record:?}"
            );
        }
    }
    let http: Vec<String> = index
        .lookup_name("HTTP", None)
        .into_records()
        .records
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r.ports.unwrap().start,
                r.protocol.as_ref().unwrap()
            )
        })
        .collect();
    assert_eq!(http, ["80/tcp", "80/udp", "80/sctp"]);
    // Names without a port are found too.
    assert_eq!(
        index.lookup_name("rdp", None).into_records().records.len(),
        2
    );
}

#[test]
fn readers_racing_reloads_between_two_real_editions() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let xml = shared_file("iana/service-names-port-numbers.xml");
    let (april, august) = (load(&csv), load(&xml));
    let listing = |registry: &portolan_registry::Registry| -> Vec<RecordKey> {
        let snapshot = Index::new(registry.clone()).snapshot();
        snapshot
            .list(&Filter::default())
            .map(|(k, _)| k.clone())
            .collect()
    };
    let (list_april, list_august) = (Arc::new(listing(&april)), Arc::new(listing(&august)));
    assert_ne!(list_april, list_august, "the editions differ");

    // Ports answered by both editions, to probe while reloading.
    let both = Index::new(august.clone());
    let index = Arc::new(Index::new(april.clone()));
    let probes: Arc<Vec<(u16, usize)>> = Arc::new(
        [22u16, 53, 80, 443, 4480, 6010, 6610, 8080, 30939]
            .into_iter()
            .filter(|&p| {
                !index.lookup_port(p, None).into_records().records.is_empty()
                    && !both.lookup_port(p, None).into_records().records.is_empty()
            })
            .map(|p| (p, 0))
            .collect(),
    );
    assert!(probes.len() >= 6);

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (index, stop, probes) =
                (Arc::clone(&index), Arc::clone(&stop), Arc::clone(&probes));
            let (la, lb) = (Arc::clone(&list_april), Arc::clone(&list_august));
            std::thread::spawn(move || {
                let mut last_version = 0;
                let mut scans = 0;
                while !stop.load(Ordering::Relaxed) {
                    for &(port, _) in probes.iter() {
                        let found = index.lookup_port(port, None).into_records();
                        assert!(
                            !found.records.is_empty(),
                            "port {port} went missing mid-reload"
                        );
                        assert!(found.version >= last_version, "version went backwards");
                        last_version = found.version;
                    }
                    assert!(
                        !index
                            .lookup_name("https", None)
                            .into_records()
                            .records
                            .is_empty()
                    );
                    let snapshot = index.snapshot();
                    let keys: Vec<RecordKey> = snapshot
                        .list(&Filter::default())
                        .map(|(k, _)| k.clone())
                        .collect();
                    assert!(keys == *la || keys == *lb, "a scan mixed editions");
                    scans += 1;
                }
                scans
            })
        })
        .collect();
    for i in 0..20 {
        let next = if i % 2 == 0 {
            august.clone()
        } else {
            april.clone()
        };
        let change = index.apply(next, &ReloadGuard::default()).expect("applies");
        let change = change.expect("editions differ");
        assert!(!change.diff.is_empty());
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader panicked") > 0);
    }
    assert_eq!(index.version(), 21);
}
