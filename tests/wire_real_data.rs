//! The server's directly written replies ([`portolan::wire`]) against the
//! contract's own encoding (`convert::record_to_pb` then prost), on every
//! record of every real source the registry parses: the bytes must be equal.

use portolan::convert;
use portolan::wire::{EncodedLookupResponse, EncodedRecord};
use portolan_registry::{Index, parse};
use portolan_test_support::require_shared_file;
use prost::Message as _;

/// Every record of the file at `path`:
/// written directly, it has the same bytes as through `record_to_pb`.
/// Returns how many records were compared.
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
    snapshot.len()
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
        assert_eq!(reply.as_bytes(), expected.encode_to_vec().as_slice());
    }
}
