//! Parses the real registry files of the shared data folder (see
//! `shared/data/README.md`) and checks their content, not just success:
//! record counts, known tricky rows, CSV-vs-XML equivalence, the plain-text
//! excerpt against the CSV, `/etc/services` and nmap counts, gzip, and the
//! rejection of the broken files with a line number.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use portolan_registry::parse::{self, Format};
use portolan_registry::{ParseError, Parsed, PortRange, Protocol, Record, RecordState, Registry};
use portolan_test_support::require_shared_file;

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn parse_file(path: &Path, format: Option<Format>) -> Parsed {
    parse::parse(&read(path), format).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip write");
    enc.finish().expect("gzip finish")
}

fn ws(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn ids(people: &[portolan_registry::Person]) -> Vec<&str> {
    people.iter().map(|p| p.id.as_str()).collect()
}

fn find<'a>(
    reg: &'a Registry,
    name: &str,
    port: Option<u16>,
    proto: Option<Protocol>,
) -> Vec<&'a Record> {
    reg.records
        .iter()
        .filter(|r| {
            r.name.as_deref() == Some(name)
                && port.is_none_or(|p| r.ports.is_some_and(|range| range.start == p))
                && (proto.is_none() || r.protocol == proto)
        })
        .collect()
}

fn full_csv() -> Option<Parsed> {
    let path = portolan_test_support::shared_file("iana/service-names-port-numbers.csv")?;
    Some(parse_file(&path, None))
}

#[test]
fn csv_full_counts_and_tricky_rows() {
    let path = require_shared_file!("iana/service-names-port-numbers.csv");
    let parsed = parse_file(&path, None);
    let reg = &parsed.registry;
    assert_eq!(reg.source.format, Some(Format::IanaCsv));
    assert_eq!(reg.source.updated, None);
    assert!(!reg.source.gzip);
    assert_eq!(reg.len(), 14_512);

    // x11 6000-6063/tcp.
    let x11 = find(reg, "x11", Some(6000), Some(Protocol::Tcp));
    assert_eq!(x11.len(), 1);
    assert_eq!(x11[0].ports, PortRange::new(6000, 6063));
    assert_eq!(
        x11[0].unauthorized_use.as_deref(),
        Some("Known Unauthorized Use on port 6003")
    );

    // rdp twice, without port or protocol.
    let rdp: Vec<&Record> = reg
        .records
        .iter()
        .filter(|r| r.name.as_deref() == Some("rdp"))
        .collect();
    assert_eq!(rdp.len(), 2);
    assert!(
        rdp.iter()
            .all(|r| r.ports.is_none() && r.protocol.is_none())
    );
    assert_eq!(rdp[0].description, "Reliable Data Protocol");
    assert_eq!(rdp[1].description, "Windows Remote Desktop Protocol");

    // Missing name / port / protocol.
    assert_eq!(
        reg.records.iter().filter(|r| r.name.is_none()).count(),
        1_722
    );
    assert_eq!(
        reg.records.iter().filter(|r| r.ports.is_none()).count(),
        1_058
    );
    let ranges = reg
        .records
        .iter()
        .filter(|r| r.ports.is_some_and(|p| !p.is_single()))
        .count();
    // 763 rows write a range; 6 of them as `N-N` (`4748-4748`), which is
    // the single port N.
    assert_eq!(ranges, 757);
    let written_n_n = reg
        .records
        .iter()
        .filter(|r| r.name.is_none() && [4748, 6345, 6512, 8203, 9989, 20047].contains(&r.ports.map_or(0, |p| p.start)))
        .filter(|r| r.ports.is_some_and(|p| p.is_single()) && r.description == "Unassigned")
        .count();
    assert_eq!(written_n_n, 6);

    // Counts by protocol.
    let by_proto = reg.counts_by_protocol();
    let expected: BTreeMap<String, usize> = [
        ("tcp", 6_593),
        ("udp", 6_351),
        ("none", 1_464),
        ("sctp", 93),
        ("dccp", 11),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(by_proto, expected);

    // Service codes: 4 rows, all dccp, one without a port.
    let sc: Vec<&Record> = reg
        .records
        .iter()
        .filter(|r| r.service_code.is_some())
        .collect();
    assert_eq!(sc.len(), 4);
    assert!(sc.iter().all(|r| r.protocol == Some(Protocol::Dccp)));
    let ping = find(reg, "dccp-ping", None, Some(Protocol::Dccp));
    assert_eq!(ping[0].service_code.as_deref(), Some("1885957735"));
    assert_eq!(ping[0].ports, None);
    assert_eq!(
        reg.records
            .iter()
            .filter(|r| r.unauthorized_use.is_some())
            .count(),
        112
    );
    assert_eq!(
        reg.records.iter().filter(|r| r.notes.is_some()).count(),
        1_321
    );

    // Multiple people and references, free-text references.
    let nas = find(reg, "nas", Some(991), Some(Protocol::Tcp));
    assert_eq!(ids(&nas[0].contacts), ["Vera_Heinau", "Heiko_Schlichting"]);
    let dns = find(reg, "domain-s", Some(853), Some(Protocol::Udp));
    assert_eq!(dns[0].references, ["RFC7858", "RFC8094", "RFC9250"]);
    let exp1 = find(reg, "exp1", Some(1021), Some(Protocol::Tcp));
    assert_eq!(exp1[0].references, ["1", "RFC4727", "RFC6335"]);
    let xadmin = find(reg, "xadmin", Some(9105), Some(Protocol::Tcp));
    assert_eq!(
        xadmin[0].references,
        ["Ari√´n Huisken <xadmin&huisken-systems.nl> 15 June 2009"]
    );
    let pon = find(reg, "pon-ictp", Some(7202), Some(Protocol::Tcp));
    assert_eq!(pon[0].references.len(), 2);
    assert_eq!(pon[0].references[0], "TR-352");
    assert!(pon[0].references[1].contains('\n'));
    assert_eq!(
        reg.records
            .iter()
            .filter(|r| r.references.len() > 1)
            .count(),
        26
    );

    // Quoting: comma, escaped quotes and embedded newline.
    let alt = find(reg, "http-alt", Some(591), Some(Protocol::Tcp));
    assert_eq!(
        alt[0].description,
        "FileMaker, Inc. - HTTP Alternate (see Port 80)"
    );
    let whoispp = find(reg, "whoispp", Some(63), Some(Protocol::Tcp));
    assert_eq!(
        whoispp[0].description,
        "whois++\nIANA assigned this well-formed service name as a replacement for \"whois++\"."
    );
    let www = find(reg, "www-http", Some(80), Some(Protocol::Tcp));
    assert_eq!(
        www[0].notes.as_ref().map(|n| n.matches('\n').count()),
        Some(20)
    );
    assert_eq!(
        reg.records
            .iter()
            .filter(|r| r.description.contains('\n')
                || r.notes.as_ref().is_some_and(|n| n.contains('\n')))
            .count(),
        444
    );

    // Dates: month and day precision, kept as written.
    let oob = find(reg, "oob-ws-http", Some(623), Some(Protocol::Tcp));
    let date = oob[0]
        .registration_date
        .as_ref()
        .expect("registration date");
    assert_eq!(
        (date.text.as_str(), date.parsed),
        ("2007-06", Some((2007, 6, None)))
    );
    let hp = find(reg, "hpbladems", Some(5316), Some(Protocol::Tcp));
    assert_eq!(
        hp[0].registration_date.as_ref().map(|d| d.text.as_str()),
        Some("2011-05-23")
    );
    assert_eq!(
        hp[0].modification_date.as_ref().map(|d| d.text.as_str()),
        Some("2011-05-16")
    );
    assert!(
        reg.records
            .iter()
            .flat_map(|r| [&r.registration_date, &r.modification_date])
            .flatten()
            .all(|d| d.parsed.is_some()),
        "every CSV date is a YYYY-MM[-DD] date"
    );

    // Non-ASCII kept.
    let vision = find(reg, "vision-mon", Some(4413), Some(Protocol::Tcp));
    assert_eq!(vision[0].description, "FORTÉ Vision Monitoring platform");
    assert_eq!(ids(&vision[0].assignees), ["FORTÉ"]);

    assert!(
        parsed.diagnostics.is_empty(),
        "{:?}",
        &parsed.diagnostics[..3.min(parsed.diagnostics.len())]
    );
}

#[test]
fn csv_full_states() {
    let Some(parsed) = full_csv() else { return };
    let reg = &parsed.registry;
    let nameless = |r: &&Record| r.name.is_none();
    let state_of = |desc: &str| -> Vec<RecordState> {
        reg.records
            .iter()
            .filter(nameless)
            .filter(|r| r.description == desc)
            .map(|r| r.state)
            .collect()
    };
    // Nameless Unassigned rows (lowercase too) are Unassigned, unless their
    // notes say they were removed.
    let unassigned: Vec<&Record> = reg
        .records
        .iter()
        .filter(nameless)
        .filter(|r| r.description.to_ascii_lowercase().starts_with("unassigned"))
        .collect();
    assert_eq!(unassigned.len(), 882 + 3);
    for r in &unassigned {
        let removed_note = r
            .notes
            .as_deref()
            .is_some_and(|n| n.to_ascii_lowercase().contains("removed"));
        let want = if removed_note {
            RecordState::Removed
        } else {
            RecordState::Unassigned
        };
        assert_eq!(r.state, want, "{r:?}");
    }
    assert!(
        state_of("unassigned")
            .iter()
            .all(|s| *s == RecordState::Unassigned)
    );
    assert!(
        unassigned
            .iter()
            .filter(|r| r.state == RecordState::Unassigned)
            .count()
            >= 850,
        "most nameless Unassigned rows stay Unassigned"
    );
    // Nameless Reserved rows are Reserved (de-assigned ones too).
    let reserved: Vec<&Record> = reg
        .records
        .iter()
        .filter(nameless)
        .filter(|r| r.description.starts_with("Reserved"))
        .collect();
    assert_eq!(reserved.len(), 810);
    assert!(reserved.iter().all(|r| r.state == RecordState::Reserved));
    // The one named Reserved row.
    let stun = find(reg, "stun-behaviors", Some(5349), Some(Protocol::Udp));
    assert_eq!(stun[0].state, RecordState::Reserved);
    // De-registered / Removed / Deprecated nameless rows.
    assert_eq!(state_of("De-registered"), vec![RecordState::Removed; 5]);
    assert_eq!(state_of("Removed"), vec![RecordState::Removed; 3]);
    assert_eq!(state_of("Deprecated"), vec![RecordState::Removed]);
    // Ordinary named rows are Assigned.
    assert_eq!(
        find(reg, "http", Some(80), Some(Protocol::Tcp))[0].state,
        RecordState::Assigned
    );
    let counts = reg.counts_by_state();
    eprintln!("CSV states: {counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 14_512);
}

#[test]
fn csv_sample_is_a_prefix_of_the_full_file() {
    let path = require_shared_file!("iana/sample-1000.csv");
    let sample = parse_file(&path, None).registry;
    assert_eq!(sample.len(), 1_000);
    let Some(full) = full_csv() else { return };
    assert_eq!(sample.records[..], full.registry.records[..1_000]);
    let last = &sample.records[999];
    assert_eq!(
        (last.name.as_deref(), last.ports, last.protocol.clone()),
        (
            Some("dhcpv6-client"),
            Some(PortRange::single(546)),
            Some(Protocol::Udp)
        )
    );
}

#[test]
fn bad_truncated_csv_is_rejected_naming_the_open_record() {
    let path = require_shared_file!("bad/truncated.csv");
    let bytes = read(&path);
    for format in [None, Some(Format::IanaCsv)] {
        let err = parse::parse(&bytes, format).expect_err("a truncated CSV must be rejected");
        assert!(matches!(err, ParseError::Truncated { .. }), "{err}");
        // The open record is pdl-datastream,9100,tcp: find its physical line.
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        let start = text
            .rfind("\r\npdl-datastream,9100,tcp,")
            .expect("record present")
            + 2;
        let line = text[..start].matches('\n').count() + 1;
        assert_eq!(err.line(), Some(line), "{err}");
    }
    // Also gzipped.
    let err = parse::parse(&gzip(&bytes), None).expect_err("rejected");
    assert!(matches!(err, ParseError::Truncated { .. }), "{err}");
}

#[test]
fn bad_garbage_csv_is_rejected_with_a_line() {
    let path = require_shared_file!("bad/garbage.csv");
    let bytes = read(&path);
    for format in [None, Some(Format::IanaCsv)] {
        let err = parse::parse(&bytes, format).expect_err("garbage must be rejected");
        assert!(err.line().is_some(), "{err}");
        assert!(matches!(err, ParseError::InvalidUtf8 { .. }), "{err}");
    }
    // With the invalid UTF-8 replaced, the broken quoting on line 3 is
    // what rejects it.
    let lossy = String::from_utf8_lossy(&bytes).into_owned();
    let err = parse::parse(lossy.as_bytes(), None).expect_err("garbage must be rejected");
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(matches!(err, ParseError::BadRow { .. }), "{err}");
}
