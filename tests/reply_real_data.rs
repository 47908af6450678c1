//! The server's replies against the contract's own encoding, on every real
//! source the registry parses: for every port and every name (and alias) of
//! the file, under every protocol filter a request can carry, the bytes the
//! server sends (its kept record encodings in `portolan::reply`'s
//! messages) must equal prost's encoding of the generated response built
//! with `convert` from the same lookup. The same holds for BatchLookup
//! items, for the records of ListRecords and Search messages, and after
//! real reloads (when the kept encodings have been patched from diffs).

use std::collections::HashSet;

use portolan::{convert, pb, reply};
use portolan_registry::{EntryLookup, Index, Protocol, Registry, ReloadGuard, Snapshot, parse};
use portolan_server::service::{answer_batch_item, lookup_records};
use portolan_server::state::RegistryState;
use portolan_server::validate::{self, Lookup};
use portolan_test_support::shared_file;
use prost::Message as _;

fn read(path: &std::path::Path) -> Registry {
    let bytes = std::fs::read(path).expect("readable");
    parse::parse(&bytes, None).expect("parses").registry
}

/// Each protocol filter a request can carry (none, and the four IANA
/// protocols; other protocols are refused by validation).
fn filters() -> [Option<Protocol>; 5] {
    [
        None,
        Some(Protocol::Tcp),
        Some(Protocol::Udp),
        Some(Protocol::Sctp),
        Some(Protocol::Dccp),
    ]
}

fn protocol_field(protocol: Option<&Protocol>) -> i32 {
    convert::protocol_to_pb(protocol).0 as i32
}

/// One lookup a client can make.
#[derive(Debug, Clone)]
enum Query {
    Port(u16),
    Name(String),
}

impl Query {
    /// The request, validated as the handler validates it.
    fn validated(&self, protocol: Option<&Protocol>) -> Lookup {
        let protocol = protocol_field(protocol);
        match self {
            Query::Port(port) => validate::lookup_port(&pb::LookupPortRequest {
                port: u32::from(*port),
                protocol,
            }),
            Query::Name(name) => validate::lookup_name(&pb::LookupNameRequest {
                name: name.clone(),
                protocol,
            }),
        }
        .expect("a valid request")
    }

    /// The same lookup as a BatchLookup item.
    fn batch_item(&self, protocol: Option<&Protocol>) -> pb::BatchLookupRequest {
        pb::BatchLookupRequest {
            id: "item 1".into(),
            query: Some(match self {
                Query::Port(port) => pb::batch_lookup_request::Query::Port(u32::from(*port)),
                Query::Name(name) => pb::batch_lookup_request::Query::Name(name.clone()),
            }),
            protocol: protocol_field(protocol),
        }
    }

    fn entries(&self, index: &Index, protocol: Option<&Protocol>) -> EntryLookup {
        match self {
            Query::Port(port) => index.lookup_port(*port, protocol),
            Query::Name(name) => index.lookup_name(name, protocol),
        }
    }

    /// The reply the server sends, as bytes; `None` for NOT_FOUND.
    fn reply(&self, state: &RegistryState, protocol: Option<&Protocol>) -> Option<Vec<u8>> {
        let found = lookup_records(state, &self.validated(protocol)).ok()?;
        let (records, version, state_id) = (found.records, found.version, found.state_id);
        Some(match self {
            Query::Port(_) => reply::LookupPortResponse {
                records,
                version,
                state_id,
            }
            .encode_to_vec(),
            Query::Name(_) => reply::LookupNameResponse {
                records,
                version,
                state_id,
            }
            .encode_to_vec(),
        })
    }

    /// prost's encoding of the generated response built from `found`.
    fn expected(&self, found: &EntryLookup) -> Vec<u8> {
        match self {
            Query::Port(_) => convert::lookup_port_to_pb(found).encode_to_vec(),
            Query::Name(_) => convert::lookup_name_to_pb(found).encode_to_vec(),
        }
    }
}

/// Every port, then every name and alias of the records of `snapshots`.
fn every_query(snapshots: &[&Snapshot]) -> Vec<Query> {
    let names = portolan_test_support::server::lookup_names(snapshots.iter().copied())
        .into_iter()
        .map(Query::Name);
    (0..=u16::MAX).map(Query::Port).chain(names).collect()
}

/// Every record's kept encoding, and every lookup reply and batch item
/// (each of the 65,536 ports and each name and alias, under every filter),
/// equal prost's encoding of the generated messages built with `convert`;
/// NOT_FOUND exactly when the lookup finds nothing. Every record with a
/// port or a name is in some reply. Returns how many records there are.
fn compare_everything(state: &RegistryState, what: &str) -> usize {
    let snapshot = state.snapshot();
    for (key, record) in snapshot.keyed() {
        let expected = convert::record_to_pb(key, record);
        assert_eq!(
            state.encodings().get(key, record),
            expected.encode_to_vec(),
            "{what}: record {key} differs"
        );
        // A scan message with this record.
        let listed = reply::ListRecordsResponse {
            records: vec![state.encodings().get(key, record)],
            version: snapshot.version(),
            state_id: snapshot.content_id().0,
        };
        let generated = pb::ListRecordsResponse {
            records: vec![expected],
            version: snapshot.version(),
            state_id: snapshot.content_id().0,
        };
        assert_eq!(listed.encode_to_vec(), generated.encode_to_vec(), "{what}");
    }
    let mut answered = HashSet::new();
    for query in every_query(&[&snapshot]) {
        for protocol in filters() {
            let protocol = protocol.as_ref();
            let what = format!("{what}: {query:?} {protocol:?}");
            let found = query.entries(state.index(), protocol);
            let Some(reply) = query.reply(state, protocol) else {
                assert!(found.entries.is_empty(), "{what} is not found");
                continue;
            };
            answered.extend(found.entries.iter().map(|e| e.key.clone()));
            assert_eq!(reply, query.expected(&found), "{what}");
            let item = answer_batch_item(state, query.batch_item(protocol));
            let expected_item = pb::BatchLookupResponse {
                id: "item 1".into(),
                records: convert::lookup_records_to_pb(&found),
                version: found.version,
                error: None,
                state_id: found.content_id.0,
            };
            assert_eq!(
                item.encode_to_vec(),
                expected_item.encode_to_vec(),
                "{what}"
            );
        }
    }
    // Only a record with neither port nor name is in no lookup map.
    let unreachable = snapshot
        .keyed()
        .iter()
        .filter(|(_, r)| r.ports.is_none() && r.name.is_none())
        .count();
    assert_eq!(answered.len() + unreachable, snapshot.len(), "{what}");
    snapshot.len()
}

fn compare_file(file: &str, path: &std::path::Path) -> usize {
    let state = RegistryState::new(read(path), 8);
    compare_everything(&state, file)
}

#[test]
fn iana_csv_replies_are_prosts_encoding_of_the_generated_messages() {
    let file = "iana/service-names-port-numbers.csv";
    let path = shared_file(file);
    assert!(compare_file(file, &path) > 14_000);
}

#[test]
fn iana_xml_replies_are_prosts_encoding_of_the_generated_messages() {
    for file in [
        "iana/service-names-port-numbers.xml",
        "iana/service-names-port-numbers-2026-04-24.xml",
    ] {
        let path = shared_file(file);
        assert!(compare_file(file, &path) > 14_000, "{file}");
    }
}

#[test]
fn nmap_and_etc_services_replies_are_prosts_encoding_of_the_generated_messages() {
    // These carry what IANA files do not: aliases, open frequencies and
    // protocols outside the four IANA ones.
    for file in [
        "nmap/nmap-services",
        "etc/services-debian",
        "etc/services-gentoo-baselayout",
        "etc/services-arch-iana-etc-2017",
    ] {
        let path = shared_file(file);
        assert!(compare_file(file, &path) > 100, "{file}");
    }
}

#[test]
fn replies_after_real_reloads_equal_a_fresh_servers_replies() {
    // The 2026-04 CSV, then the 2026-08 XML (about 11,000 records differ as
    // parsed), then the 2026-04 XML (a real edition change): after each
    // reload, whose diff patched the kept encodings, every reply and every
    // record's encoding must be prost's encoding of the new registry.
    let files = [
        "iana/service-names-port-numbers.csv",
        "iana/service-names-port-numbers.xml",
        "iana/service-names-port-numbers-2026-04-24.xml",
    ];
    let first = shared_file(files[0]);
    let state = RegistryState::new(read(&first), 8);
    for file in &files[1..] {
        let path = shared_file(file);
        state
            .apply_layer("", read(&path), &ReloadGuard::permissive())
            .expect("applies")
            .expect("changes");
        assert_eq!(state.encodings().len(), state.snapshot().len(), "{file}");
        compare_everything(&state, file);
    }
}
