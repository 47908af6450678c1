//! Parses the real registry files committed under `data/real/` (see its
//! README) and checks their content, not just success:
//! record counts, known tricky rows, CSV-vs-XML equivalence, the plain-text
//! excerpt against the CSV, `/etc/services` and nmap counts, gzip, and the
//! rejection of the broken files with a line number.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use portolan_registry::parse::{self, Format};
use portolan_registry::{ParseError, Parsed, PortRange, Protocol, Record, RecordState, Registry};
use portolan_test_support::shared_file;

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

fn full_csv() -> Parsed {
    let path = portolan_test_support::shared_file("iana/service-names-port-numbers.csv");
    parse_file(&path, None)
}

#[test]
fn csv_full_counts_and_tricky_rows() {
    let path = shared_file("iana/service-names-port-numbers.csv");
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
        .filter(|r| {
            r.name.is_none()
                && [4748, 6345, 6512, 8203, 9989, 20047].contains(&r.ports.map_or(0, |p| p.start))
        })
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
    let parsed = full_csv();
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
        let removed_note = r.notes.as_deref().is_some_and(|n| {
            let n = n.to_ascii_lowercase();
            n.contains("removed") || n.contains("de-registered")
        });
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
    // Three are removed: 2693/tcp+udp "(Removed 2004-2-6)" and 4501
    // "De-registered 08 June 2001".
    assert_eq!(
        unassigned
            .iter()
            .filter(|r| r.state == RecordState::Unassigned)
            .count(),
        882
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
    let path = shared_file("iana/sample-1000.csv");
    let sample = parse_file(&path, None).registry;
    assert_eq!(sample.len(), 1_000);
    let full = full_csv();
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
    let path = shared_file("bad/truncated.csv");
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
    let path = shared_file("bad/garbage.csv");
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

#[test]
fn xml_same_edition_equals_the_csv_record_by_record() {
    let xml_path = shared_file("iana/service-names-port-numbers-2026-04-24.xml");
    let csv = full_csv();
    let xml = parse_file(&xml_path, None);
    let (csv, xml_reg) = (&csv.registry, &xml.registry);
    assert_eq!(xml_reg.source.format, Some(Format::IanaXml));
    assert_eq!(xml_reg.source.updated.as_deref(), Some("2026-04-24"));
    assert_eq!(xml_reg.len(), 14_512);
    assert_eq!(csv.len(), xml_reg.len());
    assert!(
        xml.diagnostics.is_empty(),
        "every person resolves: {:?}",
        xml.diagnostics.first()
    );

    let mut differences = Vec::new();
    let mut other = BTreeMap::<&str, usize>::new();
    for (i, (c, x)) in csv.records.iter().zip(&xml_reg.records).enumerate() {
        if (&c.name, c.ports, &c.protocol, ws(&c.description))
            != (&x.name, x.ports, &x.protocol, ws(&x.description))
        {
            differences.push((i, c.clone(), x.clone()));
        }
        // The other columns agree too (references and notes after
        // whitespace normalisation: IANA re-wraps some long texts).
        let mut check = |what: &'static str, same: bool| {
            if !same {
                *other.entry(what).or_default() += 1;
            }
        };
        check("assignees", ids(&c.assignees) == ids(&x.assignees));
        check("contacts", ids(&c.contacts) == ids(&x.contacts));
        check("registration", c.registration_date == x.registration_date);
        check("modification", c.modification_date == x.modification_date);
        check("service code", c.service_code == x.service_code);
        check(
            "unauthorized",
            c.unauthorized_use.as_deref().map(ws) == x.unauthorized_use.as_deref().map(ws),
        );
        check(
            "notes",
            c.notes.as_deref().map(ws) == x.notes.as_deref().map(ws),
        );
        check(
            "references",
            c.references.iter().map(|r| ws(r)).collect::<Vec<_>>()
                == x.references.iter().map(|r| ws(r)).collect::<Vec<_>>(),
        );
        check("state", c.state == x.state);
    }
    // The one documented difference (inline `<xref data="rfc9483"/>`, which
    // the CSV writes `[RFC9483]`) vanishes: inline xrefs render as the CSV
    // renders them.
    assert!(
        differences.is_empty(),
        "{} differences, first: {:?}",
        differences.len(),
        differences.first()
    );
    if !other.is_empty() {
        for (c, x) in csv.records.iter().zip(&xml_reg.records) {
            if c.references.iter().map(|r| ws(r)).collect::<Vec<_>>()
                != x.references.iter().map(|r| ws(r)).collect::<Vec<_>>()
            {
                eprintln!("{:?}\n{:?}", c.references, x.references);
            }
        }
    }
    assert!(other.is_empty(), "other columns differ: {other:?}");
    let brski = find(xml_reg, "brski-reg-cmp", None, Some(Protocol::Tcp));
    assert!(
        brski[0].description.ends_with("Profile (LCMPP) [RFC9483]"),
        "{:?}",
        brski[0].description
    );

    // The XML resolves people through its <people> table.
    let unify = find(xml_reg, "unifyadmin", Some(2696), Some(Protocol::Tcp));
    assert_eq!(ids(&unify[0].assignees), ["Daegis_Inc"]);
    assert_eq!(
        unify[0].assignees[0].organization.as_deref(),
        Some("Daegis, Inc.")
    );
    assert_eq!(unify[0].contacts[0].name.as_deref(), Some("Chris Anderson"));
    assert_eq!(
        unify[0].contacts[0].uri.as_deref(),
        Some("mailto:ianaportmaster&daegis.com")
    );
    assert_eq!(unify[0].contacts[0].updated.as_deref(), Some("2012-07-31"));
    let gpp = xml_reg
        .records
        .iter()
        .flat_map(|r| r.assignees.iter().chain(&r.contacts))
        .find(|p| p.id == "_3GPP")
        .expect("_3GPP is referenced");
    assert_eq!(gpp.organization.as_deref(), Some("3GPP"));
    // <br/><br/> is one line break, as in the CSV.
    let whoispp = find(xml_reg, "whoispp", Some(63), Some(Protocol::Tcp));
    assert_eq!(
        whoispp[0].description,
        "whois++\nIANA assigned this well-formed service name as a replacement for \"whois++\"."
    );
}

#[test]
fn xml_newest_edition() {
    let path = shared_file("iana/service-names-port-numbers.xml");
    let parsed = parse_file(&path, None);
    let reg = &parsed.registry;
    assert_eq!(reg.source.updated.as_deref(), Some("2026-08-17"));
    assert_eq!(reg.len(), 14_533);
    assert!(
        parsed.diagnostics.is_empty(),
        "{:?}",
        parsed.diagnostics.first()
    );
    let newest = reg
        .records
        .iter()
        .filter_map(|r| r.registration_date.as_ref())
        .map(|d| d.text.as_str())
        .max();
    assert_eq!(newest, Some("2026-08-17"));
    for (name, port) in [("agtp", 4480), ("bencher", 6610), ("dilithium3", 30939)] {
        assert!(
            !find(reg, name, Some(port), None).is_empty(),
            "{name} {port}"
        );
    }
}

#[test]
fn xml_truncated_is_rejected_with_the_open_record_line() {
    let path = shared_file("iana/service-names-port-numbers-2026-04-24.xml");
    let bytes = read(&path);
    let text = std::str::from_utf8(&bytes).expect("utf-8");
    // Cut inside the unifyadmin/tcp record, and inside a tag.
    let inside = text.find("<description>Unify Admin").expect("present");
    let record_start = text[..inside].rfind("<record").expect("record");
    let record_line = text[..record_start].matches('\n').count() + 1;
    for cut in [inside, inside + 5] {
        let err = parse::parse(&bytes[..cut], None).expect_err("truncated XML");
        assert!(matches!(err, ParseError::Truncated { .. }), "{err}");
        assert_eq!(err.line(), Some(record_line), "{err}");
    }
    // Cut in the people table.
    let people = text.find("<person id=\"Chris_Anderson\"").expect("present");
    let err = parse::parse(&bytes[..people + 40], None).expect_err("truncated XML");
    assert!(matches!(err, ParseError::Truncated { .. }), "{err}");
    assert!(err.line().is_some());
}

/// Every row of the plain-text excerpt, matched to its CSV row.
#[test]
fn text_excerpt_matches_its_csv_rows() {
    let path = shared_file("iana/registry-excerpt.txt");
    let parsed = parse_file(&path, None);
    let text = &parsed.registry;
    assert_eq!(text.source.format, Some(Format::IanaText));
    assert_eq!(text.source.updated.as_deref(), Some("2025-08-26"));
    assert_eq!(text.len(), 101);
    let csv = full_csv();
    let csv = &csv.registry;
    for t in &text.records {
        let candidates: Vec<&Record> = csv
            .records
            .iter()
            .filter(|c| (&c.name, c.ports, &c.protocol) == (&t.name, t.ports, &t.protocol))
            .collect();
        assert_eq!(candidates.len(), 1, "{t:?}");
        let c = candidates[0];
        assert_eq!(ids(&t.assignees), ids(&c.assignees), "{t:?}");
        assert_eq!(ids(&t.contacts), ids(&c.contacts), "{t:?}");
        assert_eq!(t.references, c.references, "{t:?}");
        assert_eq!(t.description, c.description, "{t:?}");
        assert_eq!(t.notes, c.notes, "{t:?}");
        assert_eq!(t.state, c.state, "{t:?}");
        let csv_dates: Vec<&str> = [&c.registration_date, &c.modification_date]
            .into_iter()
            .flatten()
            .map(|d| d.text.as_str())
            .collect();
        for d in [&t.registration_date, &t.modification_date]
            .into_iter()
            .flatten()
        {
            assert!(
                csv_dates.contains(&d.text.as_str())
                    || c.notes.as_deref().is_some_and(|n| n.contains(&d.text)),
                "{t:?} date {} not among {csv_dates:?}",
                d.text
            );
        }
        // Two dates are registration then modification.
        if t.modification_date.is_some() {
            assert_eq!(t.registration_date, c.registration_date);
            assert_eq!(t.modification_date, c.modification_date);
        }
    }
    // Tricky rows.
    let removed: Vec<&Record> = text
        .records
        .iter()
        .filter(|r| r.ports == Some(PortRange::single(2693)))
        .collect();
    assert_eq!(removed.len(), 2);
    for r in removed {
        assert_eq!(
            (r.name.as_deref(), r.description.as_str()),
            (None, "Unassigned")
        );
        assert_eq!(r.notes.as_deref(), Some("(Removed 2004-2-6)"));
        assert_eq!(r.state, RecordState::Removed);
    }
    let njack = find(text, "3com-njack-1", Some(5264), Some(Protocol::Tcp));
    assert_eq!(njack[0].description, "3Com Network Jack Port 1");
    let range = text
        .records
        .iter()
        .find(|r| r.ports == PortRange::new(4805, 4826))
        .expect("range row");
    assert_eq!(
        (range.protocol.clone(), range.state),
        (None, RecordState::Unassigned)
    );
    let no_proto = text
        .records
        .iter()
        .find(|r| r.ports == Some(PortRange::single(3126)))
        .expect("3126");
    assert_eq!(no_proto.protocol, None);
    let geneve = find(text, "geneve", Some(6081), Some(Protocol::Udp));
    assert_eq!(
        geneve[0].description,
        "Generic Network Virtualization Encapsulation (Geneve)"
    );
    assert_eq!(geneve[0].references, ["RFC8926"]);
    // People resolved from the contact table.
    let unify = find(text, "unifyadmin", Some(2696), Some(Protocol::Tcp));
    assert_eq!(unify[0].contacts[0].name.as_deref(), Some("Chris Anderson"));
    assert_eq!(
        unify[0].contacts[0].organization.as_deref(),
        Some("Daegis, Inc.")
    );
    assert_eq!(
        unify[0].assignees[0].uri.as_deref(),
        Some("mailto:ianaportmaster&daegis.com")
    );
    let ccmail = find(text, "ccmail", Some(3264), Some(Protocol::Tcp));
    assert_eq!(ccmail[0].assignees[0].name, None);
    assert_eq!(
        ccmail[0].assignees[0].uri.as_deref(),
        Some("mailto:brockman&ccmail.com")
    );
    // One diagnostic per single (ambiguous) date, plus the notes split off.
    let single_dates = text
        .records
        .iter()
        .filter(|r| r.registration_date.is_some() && r.modification_date.is_none())
        .count();
    let ambiguous = parsed
        .diagnostics
        .iter()
        .filter(|d| d.message.contains("ambiguous"))
        .count();
    assert_eq!(ambiguous, single_dates);
    assert_eq!(parsed.diagnostics.len(), single_dates + 2);
}

/// The embedded default is the real CSV of edition 2026-04-24, record for
/// record (the same keys and records as parsing the committed file).
#[test]
fn embedded_registry_is_the_full_csv_of_its_edition() {
    let reg = portolan_registry::embedded::registry();
    assert_eq!(reg.len(), 14_512);
    assert_eq!(reg.source.path, "embedded");
    assert_eq!(reg.source.format, Some(Format::IanaCsv));
    assert!(reg.source.gzip);
    assert_eq!(reg.source.updated.as_deref(), Some("2026-04-24"));
    let file = std::fs::read(shared_file("iana/service-names-port-numbers.csv")).unwrap();
    let csv = parse::parse(&file, None).unwrap().registry;
    assert_eq!(reg.keys(), csv.keys());
    assert_eq!(reg.records, csv.records);
}

#[test]
fn etc_services_files() {
    for (file, entries, protocols, with_aliases) in [
        (
            "etc/services-debian",
            318,
            &[("tcp", 218), ("udp", 95), ("ddp", 4), ("sctp", 1)][..],
            Some(66),
        ),
        (
            "etc/services-gentoo-baselayout",
            1_122,
            &[("tcp", 569), ("udp", 549), ("ddp", 4)][..],
            Some(162),
        ),
        (
            "etc/services-arch-iana-etc-2017",
            11_374,
            &[("tcp", 5_816), ("udp", 5_477), ("sctp", 73), ("dccp", 8)][..],
            Some(0),
        ),
    ] {
        let path = portolan_test_support::shared_file(file);
        let parsed = parse_file(&path, None);
        let reg = &parsed.registry;
        assert_eq!(reg.source.format, Some(Format::Services), "{file}");
        assert_eq!(reg.len(), entries, "{file}");
        let expected: BTreeMap<String, usize> =
            protocols.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        assert_eq!(reg.counts_by_protocol(), expected, "{file}");
        if let Some(n) = with_aliases {
            assert_eq!(
                reg.records.iter().filter(|r| !r.aliases.is_empty()).count(),
                n,
                "{file}"
            );
        }
        assert!(
            reg.records
                .iter()
                .all(|r| r.name.is_some() && r.ports.is_some())
        );
    }
    let path = portolan_test_support::shared_file("etc/services-debian");
    let reg = parse_file(&path, Some(Format::Services)).registry;
    let subs = find(&reg, "submissions", Some(465), Some(Protocol::Tcp));
    assert_eq!(subs[0].aliases, ["ssmtp", "smtps", "urd"]);
    let rtmp = find(&reg, "rtmp", Some(1), Some(Protocol::Other("ddp".into())));
    assert_eq!(rtmp.len(), 1);
    assert!(reg.records.iter().any(|r| r.name.as_deref() == Some("fido") && r.ports == Some(PortRange::single(60179))));
    assert_eq!(
        reg.records
            .iter()
            .filter(|r| !r.description.is_empty())
            .count(),
        207
    );
}

#[test]
fn nmap_services_file() {
    let path = shared_file("nmap/nmap-services");
    let parsed = parse_file(&path, None);
    let reg = &parsed.registry;
    assert_eq!(reg.source.format, Some(Format::NmapServices));
    assert_eq!(reg.len(), 27_461);
    let by_proto = reg.counts_by_protocol();
    assert_eq!(by_proto.get("udp"), Some(&19_022));
    assert_eq!(by_proto.get("tcp"), Some(&8_387));
    assert_eq!(by_proto.get("sctp"), Some(&52));
    assert_eq!(
        reg.records
            .iter()
            .filter(|r| r.name.as_deref() == Some("unknown"))
            .count(),
        15_316
    );
    assert!(reg.records.iter().all(|r| r.open_frequency.is_some()));
    let http = find(reg, "http", Some(80), Some(Protocol::Tcp));
    assert_eq!(http[0].open_frequency, Some(0.484143));
    let max = reg
        .records
        .iter()
        .filter_map(|r| r.open_frequency)
        .fold(0.0, f64::max);
    assert_eq!(max, 0.484143);
    assert_eq!(
        reg.records
            .iter()
            .filter(|r| r.open_frequency == Some(0.0))
            .count(),
        7_585
    );
    assert!(!find(reg, "X11", None, None).is_empty() && !find(reg, "x11", None, None).is_empty());
    // Ranges are expanded: x11 covers 53 ports (tcp and udp).
    let x11_ports: std::collections::BTreeSet<u16> = find(reg, "x11", None, None)
        .iter()
        .filter_map(|r| r.ports.map(|p| p.start))
        .collect();
    assert_eq!(x11_ports.len(), 53);
    let ssh = find(reg, "ssh", Some(22), Some(Protocol::Sctp));
    assert!(
        ssh[0].description.contains(" | "),
        "{:?}",
        ssh[0].description
    );
}

#[test]
fn every_format_also_parses_gzipped() {
    for (file, format) in [
        ("iana/service-names-port-numbers.csv", Format::IanaCsv),
        (
            "iana/service-names-port-numbers-2026-04-24.xml",
            Format::IanaXml,
        ),
        ("iana/registry-excerpt.txt", Format::IanaText),
        ("etc/services-debian", Format::Services),
        ("nmap/nmap-services", Format::NmapServices),
    ] {
        let path = portolan_test_support::shared_file(file);
        let bytes = read(&path);
        let plain = parse::parse(&bytes, None).expect(file);
        for hint in [None, Some(format)] {
            let gz =
                parse::parse(&gzip(&bytes), hint).unwrap_or_else(|e| panic!("{file} gzipped: {e}"));
            assert!(gz.registry.source.gzip, "{file}");
            assert_eq!(gz.registry.source.format, Some(format), "{file}");
            assert_eq!(gz.registry.source.format_label(), format!("{format}+gzip"));
            assert_eq!(gz.registry.records, plain.registry.records, "{file}");
            assert_ne!(
                gz.registry.source.content_hash,
                plain.registry.source.content_hash
            );
        }
    }
}
