//! Port ranges in the index, against a naive model: over random mixes of
//! single ports and ranges (overlapping, nested, reaching both ends of the
//! port space), every port's lookup and kept answer equal the records
//! covering it in canonical order, before and after random reloads that
//! touch a few records at a time.

use portolan_registry::query::canonical_cmp;
use portolan_registry::{
    Index, IndexEntry, PortRange, Protocol, Record, RecordState, Registry, ReloadGuard, SourceInfo,
};
use proptest::prelude::*;
use proptest::sample::{Index as Pick, select};

/// The ports every case looks up: the ones records are drawn from, and
/// their neighbours.
fn checked_ports() -> impl Iterator<Item = u16> {
    (0..=40).chain(65_528..=u16::MAX)
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![6 => 0u16..36, 1 => 65_530u16..=u16::MAX]
}

fn ports() -> impl Strategy<Value = PortRange> {
    prop_oneof![
        3 => port().prop_map(PortRange::single),
        3 => (port(), port()).prop_map(|(a, b)| PortRange::new(a.min(b), a.max(b)).unwrap()),
        1 => (0u16..36, 65_530u16..=u16::MAX).prop_map(|(a, b)| PortRange::new(a, b).unwrap()),
        1 => Just(PortRange::new(0, u16::MAX).unwrap()),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    (
        prop::option::of(select(vec!["a", "b", "c"])),
        ports(),
        prop_oneof![
            Just(None),
            Just(Some(Protocol::Tcp)),
            Just(Some(Protocol::Udp))
        ],
        select(RecordState::ALL.to_vec()),
        0u8..3,
    )
        .prop_map(|(name, ports, protocol, state, text)| Record {
            name: name.map(str::to_string),
            ports: Some(ports),
            protocol,
            state,
            description: format!("text {text}"),
            ..Record::default()
        })
}

/// One edit of a registry: remove, change the text, state or ports of, or
/// insert before, the record `at`.
#[derive(Debug, Clone)]
enum Edit {
    Remove(Pick),
    Text(Pick),
    State(Pick, RecordState),
    Ports(Pick, PortRange),
    Insert(Pick, Box<Record>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<Pick>().prop_map(Edit::Remove),
        any::<Pick>().prop_map(Edit::Text),
        (any::<Pick>(), select(RecordState::ALL.to_vec())).prop_map(|(i, s)| Edit::State(i, s)),
        (any::<Pick>(), ports()).prop_map(|(i, p)| Edit::Ports(i, p)),
        (any::<Pick>(), record()).prop_map(|(i, r)| Edit::Insert(i, Box::new(r))),
    ]
}

fn edited(registry: &Registry, edits: &[Edit]) -> Registry {
    let mut records = registry.records.clone();
    for edit in edits {
        let len = records.len();
        match edit {
            Edit::Remove(at) if len > 1 => {
                records.remove(at.index(len));
            }
            Edit::Remove(_) => {}
            Edit::Text(at) => records[at.index(len)].description += "'",
            Edit::State(at, state) => records[at.index(len)].state = *state,
            Edit::Ports(at, ports) => records[at.index(len)].ports = Some(*ports),
            Edit::Insert(at, record) => records.insert(at.index(len), Record::clone(record)),
        }
    }
    Registry::new(records, SourceInfo::default())
}

/// How the test writes an answer: each entry's key, text and state.
fn line(entry: &IndexEntry) -> String {
    let record = &entry.record;
    format!("{} {} {}", entry.key, record.description, record.state)
}

/// Compares every checked port's lookup and kept answer, under three
/// protocol filters, with the naive model of `registry`.
fn check(index: &Index, registry: &Registry) -> Result<(), TestCaseError> {
    let keys = registry.keys();
    let records = &registry.records;
    for port in checked_ports() {
        for protocol in [None, Some(Protocol::Tcp), Some(Protocol::Udp)] {
            let mut covering: Vec<usize> = (0..records.len())
                .filter(|&i| {
                    records[i].ports.is_some_and(|r| r.contains(port))
                        && Protocol::matches(records[i].protocol.as_ref(), protocol.as_ref())
                })
                .collect();
            covering.sort_by(|&a, &b| canonical_cmp(&records[a], &records[b]));
            let want: Vec<String> = covering
                .iter()
                .map(|&i| {
                    format!(
                        "{} {} {}",
                        keys[i], records[i].description, records[i].state
                    )
                })
                .collect();
            let found = index.lookup_port(port, protocol.as_ref());
            let got: Vec<String> = found.entries.iter().map(|e| line(e)).collect();
            prop_assert_eq!(&got, &want, "port {} {:?}", port, protocol);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn port_lookups_match_a_naive_model_across_reloads(
        records in prop::collection::vec(record(), 1..32),
        reloads in prop::collection::vec(prop::collection::vec(edit(), 1..4), 1..4),
    ) {
        let mut registry = Registry::new(records, SourceInfo::default());
        let index = Index::new(registry.clone());
        check(&index, &registry)?;
        for edits in &reloads {
            registry = edited(&registry, edits);
            index.apply(registry.clone(), &ReloadGuard::permissive()).unwrap();
            // Kept answers from before the reload are checked too: what
            // the reload did not rebuild must still be right.
            check(&index, &registry)?;
            check(&Index::new(registry.clone()), &registry)?;
        }
    }
}
