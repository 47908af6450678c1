//! The server's directly written replies ([`portolan::wire`]) against the
//! contract's own encoding (`convert::record_to_pb` then prost), on every
//! record of every real source the registry parses: the bytes must be equal,
//! both as written for a record and in the answer kept for every lookup of
//! the index (as a LookupResponse and as a BatchLookup item).

use std::collections::HashSet;
use std::sync::Arc;

use portolan::wire::{self, EncodedBatchLookupResponse, EncodedLookupResponse, EncodedRecord};
use portolan::{convert, pb};
use portolan_registry::{Answer, EntryLookup, Index, Protocol, ReloadGuard, Snapshot, parse};
use portolan_test_support::require_shared_file;
use prost::Message as _;

/// Every record of the file at `path`, written directly, has the same bytes
/// as through `record_to_pb`, and so has every lookup answer of its index
/// ([`compare_every_answer`]). Returns how many records were compared.
fn compare_every_record(path: &std::path::Path) -> usize {
    let bytes = std::fs::read(path).expect("readable");
    let registry = parse::parse(&bytes, None).expect("parses").registry;
    let index = Index::new(registry);
    let snapshot = index.snapshot();
    for (key, record) in snapshot.keyed() {
        let expected = convert::record_to_pb(key, record).encode_to_vec();
        let written = EncodedRecord::new(key, record);
        assert_eq!(
            written.as_bytes(),
            expected.as_slice(),
            "{}: record {key} differs",
            path.display()
        );
    }
    compare_every_answer(&index, path);
    snapshot.len()
}

/// Each protocol filter a lookup can carry, and whether its answers are
/// kept (none and the four IANA protocols are; any other protocol is
/// answered afresh).
fn filters() -> [(Option<Protocol>, bool); 6] {
    [
        (None, true),
        (Some(Protocol::Tcp), true),
        (Some(Protocol::Udp), true),
        (Some(Protocol::Sctp), true),
        (Some(Protocol::Dccp), true),
        (Some(Protocol::Other("ddp".into())), false),
    ]
}

/// One lookup a client can make.
#[derive(Debug)]
enum Query {
    Port(u16),
    Name(String),
}

impl Query {
    fn answer(&self, index: &Index, protocol: Option<&Protocol>) -> (u64, Option<Answer>) {
        match self {
            Query::Port(port) => index.port_answer(*port, protocol, wire::lookup_answer),
            Query::Name(name) => index.name_answer(name, protocol, wire::lookup_answer),
        }
    }

    fn entries(&self, index: &Index, protocol: Option<&Protocol>) -> EntryLookup {
        match self {
            Query::Port(port) => index.lookup_port_entries(*port, protocol),
            Query::Name(name) => index.lookup_name_entries(name, protocol),
        }
    }
}

/// Every port, then every name and alias of the records of `snapshots`.
fn every_query(snapshots: &[&Snapshot]) -> Vec<Query> {
    let mut names: Vec<String> = snapshots
        .iter()
        .flat_map(|snapshot| snapshot.keyed())
        .flat_map(|(_, r)| r.name.iter().chain(&r.aliases))
        .cloned()
        .collect();
    names.sort_unstable();
    names.dedup();
    let names = names.into_iter().map(Query::Name);
    (0..=u16::MAX).map(Query::Port).chain(names).collect()
}

/// Every lookup a client can make of the file's index (each of the 65,536
/// ports and each name and alias, under every filter of [`filters`])
/// answers the reply the contract's encoding makes of the lookup's
/// entries, and NOT_FOUND (no answer) exactly when there are none; a
/// second lookup shares the kept answer. Every record with a port or a
/// name is in some answer.
fn compare_every_answer(index: &Index, path: &std::path::Path) {
    let snapshot = index.snapshot();
    let mut answered = HashSet::new();
    for query in every_query(&[&snapshot]) {
        for (protocol, kept) in filters() {
            let what = format!("{}: {query:?} {protocol:?}", path.display());
            let found = query.entries(index, protocol.as_ref());
            let (version, first) = query.answer(index, protocol.as_ref());
            assert_eq!(version, found.version);
            let Some(first) = first else {
                assert!(found.entries.is_empty(), "{what} has no answer");
                continue;
            };
            answered.extend(found.entries.iter().map(|e| e.key.clone()));
            let expected = convert::lookup_to_pb(&found);
            let reply = EncodedLookupResponse::from_answer(Arc::clone(&first), version);
            assert_eq!(reply.encode_to_vec(), expected.encode_to_vec(), "{what}");
            let item = EncodedBatchLookupResponse::found_answer("item 1", &first, version);
            let expected_item = pb::BatchLookupResponse {
                id: "item 1".into(),
                records: expected.records,
                version,
                error: None,
            };
            assert_eq!(item.as_bytes(), expected_item.encode_to_vec(), "{what}");
            let second = query.answer(index, protocol.as_ref()).1;
            let second = second.expect("answered again");
            assert_eq!(first, second, "{what}");
            assert_eq!(Arc::ptr_eq(&first, &second), kept, "{what}: kept");
        }
    }
    // Only a record with neither port nor name is in no lookup map.
    let unreachable = snapshot
        .keyed()
        .iter()
        .filter(|(_, r)| r.ports.is_none() && r.name.is_none())
        .count();
    assert_eq!(
        answered.len() + unreachable,
        snapshot.len(),
        "{}",
        path.display()
    );
}

#[test]
fn iana_csv_records_are_written_as_prost_writes_them() {
    let path = require_shared_file!("iana/service-names-port-numbers.csv");
    assert!(compare_every_record(&path) > 14_000);
}

#[test]
fn iana_xml_records_are_written_as_prost_writes_them() {
    for file in [
        "iana/service-names-port-numbers.xml",
        "iana/service-names-port-numbers-2026-04-24.xml",
    ] {
        let path = require_shared_file!(file);
        assert!(compare_every_record(&path) > 14_000, "{file}");
    }
}

#[test]
fn nmap_and_etc_services_records_are_written_as_prost_writes_them() {
    // These carry what IANA files do not: aliases, open frequencies and
    // protocols outside the four IANA ones.
    for file in [
        "nmap/nmap-services",
        "etc/services-debian",
        "etc/services-gentoo-baselayout",
        "etc/services-arch-iana-etc-2017",
    ] {
        let path = require_shared_file!(file);
        assert!(compare_every_record(&path) > 100, "{file}");
    }
}

#[test]
fn answers_kept_across_real_reloads_equal_a_fresh_index_answers() {
    // The 2026-04 CSV, then the 2026-08 XML (about 11,000 records differ as
    // parsed, so nearly every list is rebuilt), then the 2026-04 XML (a
    // real edition change from the 2026-08 one: most lists are kept, with
    // their answers). Before each reload every answer is kept; after it,
    // every answer must equal that of an index built from the new file.
    let files = [
        "iana/service-names-port-numbers.csv",
        "iana/service-names-port-numbers.xml",
        "iana/service-names-port-numbers-2026-04-24.xml",
    ];
    let read = |path: &std::path::Path| {
        let bytes = std::fs::read(path).expect("readable");
        parse::parse(&bytes, None).expect("parses").registry
    };
    let first = require_shared_file!(files[0]);
    let index = Index::new(read(&first));
    for file in &files[1..] {
        let path = require_shared_file!(file);
        let before = index.snapshot();
        let queries = every_query(&[&before, &Index::new(read(&path)).snapshot()]);
        for query in &queries {
            for (protocol, _) in filters() {
                query.answer(&index, protocol.as_ref());
            }
        }
        index
            .apply(read(&path), &ReloadGuard::permissive())
            .expect("applies");
        let fresh = Index::new(read(&path));
        let mut answered = 0;
        for query in &queries {
            for (protocol, _) in filters() {
                let kept = query.answer(&index, protocol.as_ref()).1;
                assert_eq!(
                    kept,
                    query.answer(&fresh, protocol.as_ref()).1,
                    "{file}: {query:?}"
                );
                answered += usize::from(kept.is_some());
            }
        }
        assert!(answered > 20_000, "{file}: {answered} answers compared");
    }
}

#[test]
fn lookup_replies_for_real_ports_decode_to_the_converted_records() {
    let path = require_shared_file!("iana/service-names-port-numbers.csv");
    let bytes = std::fs::read(path).expect("readable");
    let index = Index::new(parse::parse(&bytes, None).expect("parses").registry);
    // 80 has several records; 6010 lies inside x11's 6000-6063 range.
    for port in [22, 53, 80, 443, 6010] {
        let found = index.lookup_port_entries(port, None);
        assert!(!found.entries.is_empty(), "port {port}");
        let reply = EncodedLookupResponse::new(
            found.entries.iter().map(|e| (&e.key, &*e.record)),
            found.version,
        );
        let expected = convert::lookup_to_pb(&found);
        assert_eq!(
            reply.to_message().expect("decodes"),
            expected,
            "port {port}"
        );
        assert_eq!(reply.encode_to_vec(), expected.encode_to_vec());
        // The server's path: the answer kept for the port's list.
        let (version, answer) = index.port_answer(port, None, wire::lookup_answer);
        let kept = EncodedLookupResponse::from_answer(answer.expect("found"), version);
        assert_eq!(kept, reply, "port {port}");
    }
}
