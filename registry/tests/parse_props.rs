//! Property tests for the parsers and the CSV exporter: no input makes a
//! parser panic (arbitrary bytes, arbitrary strings, and strings built from
//! each format's own alphabet so the generator reaches deep into the
//! parsers), and a registry written with `to_csv` reads back as the same
//! records, for generated registries and for the full real CSV.

use portolan_registry::export::{to_csv, to_services};
use portolan_registry::parse::{self, Format};
use portolan_registry::{
    ParseError, Person, PortRange, Protocol, Record, RecordState, Registry, RegistryDate,
    SourceInfo,
};
use proptest::prelude::*;

const CSV_HEADER: &str = "Service Name,Port Number,Transport Protocol,Description,Assignee,Contact,Registration Date,Modification Date,Reference,Service Code,Unauthorized Use Reported,Assignment Notes\r\n";

/// Runs every parser on `bytes`; only checks that none panics and that an
/// error naming a line names a plausible one.
fn parse_everything(bytes: &[u8]) {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    let check = |result: Result<parse::Parsed, ParseError>| {
        if let Err(e) = result
            && let Some(line) = e.line()
        {
            assert!(line >= 1 && line <= lines, "{e} (input has {lines} lines)");
        }
    };
    check(parse::parse(bytes, None));
    for format in Format::ALL {
        check(parse::parse(bytes, Some(format)));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = parse::csv::parse(text);
        let _ = parse::xml::parse(text);
        let _ = parse::text::parse(text);
        let _ = parse::services::parse(text);
        let _ = parse::nmap::parse(text);
    }
}

fn protocol() -> impl Strategy<Value = Option<Protocol>> {
    prop_oneof![
        Just(None),
        Just(Some(Protocol::Tcp)),
        Just(Some(Protocol::Udp)),
        Just(Some(Protocol::Sctp)),
        Just(Some(Protocol::Dccp)),
    ]
}

fn ports() -> impl Strategy<Value = Option<PortRange>> {
    prop_oneof![
        1 => Just(None),
        3 => any::<u16>().prop_map(|p| Some(PortRange::single(p))),
        1 => (any::<u16>(), any::<u16>()).prop_map(|(a, b)| PortRange::new(a.min(b), a.max(b))),
    ]
}

/// Text without NUL (which the CSV refuses), with commas, quotes, line
/// breaks, brackets and non-ASCII.
fn free_text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,40}"
}

fn non_empty_text() -> impl Strategy<Value = String> {
    "[^\u{0}]{1,40}"
}

/// A bracketed item's content: no brackets, not blank.
fn item() -> impl Strategy<Value = String> {
    "[^\u{0}\\[\\]]{0,20}[^\u{0}\\[\\]\\s]"
}

fn date() -> impl Strategy<Value = Option<RegistryDate>> {
    prop_oneof![
        Just(None),
        "[0-9]{4}-[0-9]{1,2}(-[0-9]{1,2})?".prop_map(|t| RegistryDate::parse(&t)),
        "[0-9A-Za-z]([0-9A-Za-z/ ,.-]{0,10}[0-9A-Za-z])?".prop_map(|t| RegistryDate::parse(&t)),
    ]
}

/// A record as the IANA CSV can hold it.
fn csv_record() -> impl Strategy<Value = Record> {
    (
        (
            proptest::option::of("[A-Za-z0-9][A-Za-z0-9_.+*/-]{0,14}"),
            ports(),
            protocol(),
            free_text(),
            proptest::collection::vec(item(), 0..3),
            proptest::collection::vec(item(), 0..3),
        ),
        (
            date(),
            date(),
            proptest::collection::vec(item(), 0..3),
            proptest::option::of("[0-9A-Za-z]{1,10}"),
            proptest::option::of(non_empty_text()),
            proptest::option::of(non_empty_text()),
        ),
    )
        .prop_map(
            |(
                (name, ports, protocol, description, assignees, contacts),
                (registered, modified, references, service_code, unauthorized, notes),
            )| {
                let state = RecordState::derive(name.as_deref(), &description, notes.as_deref());
                Record {
                    name,
                    ports,
                    protocol,
                    description,
                    assignees: assignees.into_iter().map(Person::from_id).collect(),
                    contacts: contacts.into_iter().map(Person::from_id).collect(),
                    registration_date: registered,
                    modification_date: modified,
                    references,
                    service_code,
                    unauthorized_use: unauthorized,
                    notes,
                    aliases: Vec::new(),
                    open_frequency: None,
                    state,
                    position: 0,
                    ..Record::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse_everything(&bytes);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in "\\PC{0,512}") {
        parse_everything(text.as_bytes());
    }

    #[test]
    fn csv_like_input_never_panics(body in "[a-z0-9,\"\r\n\\[\\]\u{0} -]{0,400}") {
        parse_everything(format!("{CSV_HEADER}{body}").as_bytes());
    }

    #[test]
    fn xml_like_input_never_panics(body in "(<(/)?(record|name|number|protocol|description|note|xref|assignee|people|person|br|updated)( type=\"(rfc|person|text)\")?( data=\"[a-z0-9]{0,4}\")?(/)?>|[a-z0-9 \n]{0,6}|&(amp|lt|#65|#x0|bogus);){0,40}") {
        parse_everything(format!("<registry>{body}").as_bytes());
        parse_everything(format!("<registry>{body}</registry>").as_bytes());
    }

    #[test]
    fn text_like_input_never_panics(rows in proptest::collection::vec("([a-z0-9-]{1,8} )?[0-9]{1,6}(-[0-9]{1,5})?( (tcp|udp))?( [A-Za-z()\\[\\]0-9-]{0,8}){0,6}", 0..8), people in proptest::collection::vec("\\[[A-Za-z_]{0,6}\\]( [A-Za-z,.]{0,6}){0,4}( mailto:[a-z&.]{0,8})?( 20[0-9]{2}-[0-9]{2})?", 0..4)) {
        let text = format!(
            "Service Name and Transport Protocol Port Number Registry\n\nLast Updated\n2025-08-26\nService Name Port Number Transport Protocol Description\n{}\n\nContact Information\n\nID Name Organization Contact URI Last Updated\n{}\n",
            rows.join("\n"),
            people.join("\n"),
        );
        parse_everything(text.as_bytes());
    }

    #[test]
    fn services_like_input_never_panic(lines in proptest::collection::vec("[a-zA-Z0-9:-]{0,6}[ \t]{0,2}[0-9]{0,6}/?[a-z]{0,4}([ \t][a-z0-9.]{0,9}){0,3}( #.{0,10})?", 0..10)) {
        parse_everything(lines.join("\n").as_bytes());
    }

    #[test]
    fn generated_registry_round_trips_through_csv(records in proptest::collection::vec(csv_record(), 1..12)) {
        let registry = Registry::new(records, SourceInfo::default());
        let csv = to_csv(&registry);
        let back = parse::parse(csv.as_bytes(), None)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{csv}")))?
            .registry;
        prop_assert_eq!(back.source.format, Some(Format::IanaCsv));
        prop_assert_eq!(&back.records, &registry.records);
        // Writing again gives the same bytes.
        prop_assert_eq!(to_csv(&back), csv);
    }

    #[test]
    fn generated_registry_exports_never_panic(mut records in proptest::collection::vec(csv_record(), 1..12)) {
        // to_services expands ranges one line per port: keep them short.
        for r in &mut records {
            r.ports = r.ports.and_then(|p| PortRange::new(p.start, p.end.min(p.start.saturating_add(40))));
        }
        let registry = Registry::new(records, SourceInfo::default());
        let services = to_services(&registry);
        if services.lines().any(|l| !l.starts_with('#')) {
            let back = parse::parse(services.as_bytes(), Some(Format::Services))
                .map_err(|e| TestCaseError::fail(format!("{e}\n{services}")))?;
            prop_assert!(back.registry.records.iter().all(|r| r.protocol.is_some()));
        }
    }
}

#[test]
fn full_real_csv_round_trips_through_to_csv() {
    let path = portolan_test_support::shared_file("iana/service-names-port-numbers.csv");
    let bytes = std::fs::read(&path).expect("read");
    let original = parse::parse(&bytes, None).expect("parses").registry;
    let written = to_csv(&original);
    let back = parse::parse(written.as_bytes(), None)
        .expect("to_csv output parses")
        .registry;
    assert_eq!(back.len(), 14_512);
    assert_eq!(back.records, original.records);
    // The text is the original but for the six `N-N` ranges, written `N`.
    let text = std::str::from_utf8(&bytes).expect("utf-8");
    let mut differing = 0;
    for (a, b) in text.split("\r\n").zip(written.split("\r\n")) {
        if a != b {
            differing += 1;
            let (port_a, port_b) = (a.split(',').nth(1), b.split(',').nth(1));
            let n = port_b.unwrap_or_default();
            assert_eq!(port_a, Some(format!("{n}-{n}").as_str()), "{a:?} vs {b:?}");
        }
    }
    assert_eq!(differing, 6);
}

#[test]
fn broken_quoting_in_valid_utf8_is_rejected() {
    // bad/garbage.csv's broken-quoting row, in a file that is valid UTF-8
    // (tests/fixtures/garbage-utf8.csv).
    let bytes = include_bytes!("fixtures/garbage-utf8.csv");
    let err = parse::parse(bytes, None).expect_err("broken quoting is rejected");
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(matches!(err, ParseError::BadRow { .. }), "{err}");
    // Each later broken row, alone after a valid one, is rejected too.
    let text = std::str::from_utf8(bytes).expect("fixture is UTF-8");
    let rows: Vec<&str> = text.split_inclusive("\r\n").collect();
    for bad in &rows[2..] {
        let file = format!("{}{}{bad}", rows[0], rows[1]);
        let err = parse::parse(file.as_bytes(), Some(Format::IanaCsv)).expect_err(bad);
        assert_eq!(err.line(), Some(3), "{bad:?}: {err}");
    }
}
