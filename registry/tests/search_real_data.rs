//! Search walked lazily ([`SearchHits`]) on the real IANA CSV: the same
//! hits, in the same order, as ranking every record and sorting (what
//! Search did before it streamed), for assorted needles, filters and
//! limits; and a search with no hit still comes back to its caller every
//! [`SEARCH_STEP_RECORDS`] records.

use portolan_registry::query::{SEARCH_STEP_RECORDS, rank};
use portolan_registry::{
    Filter, Index, Protocol, RecordState, SearchQuery, SearchStep, fold_name, parse,
};
use portolan_test_support::shared_file;

fn load(csv: &std::path::Path) -> Index {
    let bytes = std::fs::read(csv).expect("readable");
    Index::new(parse(&bytes, None).expect("parses").registry)
}

/// Every record ranked, sorted by (rank, scan position), truncated.
fn reference(index: &Index, query: &SearchQuery) -> Vec<String> {
    let snapshot = index.snapshot();
    let needle = fold_name(query.text.trim());
    let mut hits = Vec::new();
    for (pos, (key, record)) in snapshot.list(&Filter::default()).enumerate() {
        let name = fold_name(record.name.as_deref().unwrap_or(""));
        let description = fold_name(&record.description);
        if let Some(rank) = rank(&name, &description, &needle)
            && query.filter.matches(record)
        {
            hits.push((rank, pos, key.to_string()));
        }
    }
    hits.sort();
    hits.truncate(query.limit);
    hits.into_iter().map(|(_, _, key)| key).collect()
}

#[test]
fn lazy_search_equals_rank_and_sort_on_the_full_csv() {
    let index = load(&shared_file("iana/service-names-port-numbers.csv"));
    let snapshot = index.snapshot();
    let udp_assigned = Filter {
        protocol: Some(Protocol::Udp),
        states: vec![RecordState::Assigned],
        ..Filter::default()
    };
    let low_ports = Filter {
        port_min: Some(0),
        port_max: Some(1023),
        ..Filter::default()
    };
    for (text, filter, limit) in [
        ("http", Filter::default(), 100),
        ("a", Filter::default(), 10_000),
        ("a", udp_assigned.clone(), 50),
        ("secure shell", Filter::default(), 100),
        ("shell secure", low_ports.clone(), 100),
        ("LDAP", low_ports, 3),
        ("unassigned", udp_assigned, 1_000),
        ("zzzz-nothing", Filter::default(), 100),
    ] {
        let query = SearchQuery {
            text: text.into(),
            filter,
            limit,
        };
        let lazy: Vec<String> = snapshot
            .search_hits(&query)
            .map(|(_, (key, _))| key.to_string())
            .collect();
        assert_eq!(lazy, reference(&index, &query), "{text:?}");
        if text == "a" && limit == 10_000 {
            assert_eq!(
                lazy.len(),
                9_674,
                "\"a\" matches two thirds of the registry"
            );
        }
    }
}

#[test]
fn a_search_without_hits_pauses_every_step() {
    let index = load(&shared_file("iana/service-names-port-numbers.csv"));
    let snapshot = index.snapshot();
    let query = SearchQuery::new("qqxj qqxj qqxj qqxj qqxj qqxj qqxj qqxj qqxj qqxj qqxj");
    let mut hits = snapshot.search_hits(&query);
    let mut pauses = 0;
    loop {
        match hits.step() {
            SearchStep::Hit(..) => panic!("nothing matches"),
            SearchStep::Pause => pauses += 1,
            SearchStep::Done => break,
        }
    }
    // Five passes over 14,512 records, a pause every 1,024 examined.
    assert_eq!(pauses, 5 * 14_512 / SEARCH_STEP_RECORDS);
}
