//! Unit tests of the index: lookups, reloads as diffs, ranges as
//! intervals, concurrency.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::{PortRange, Protocol, Record, RecordState, fold_name};
use crate::query::{Filter, MatchRank, SearchQuery};
use crate::registry::{Registry, SourceInfo};

use super::snapshot::SearchText;
use super::*;

fn record(name: Option<&str>, ports: Option<(u16, u16)>, protocol: Option<Protocol>) -> Record {
    let description = name.map_or_else(|| "Unassigned".to_string(), |n| format!("{n} service"));
    let state = RecordState::derive(name, &description, None);
    Record {
        name: name.map(str::to_string),
        ports: ports.and_then(|(a, b)| PortRange::new(a, b)),
        protocol,
        description,
        state,
        ..Record::default()
    }
}

fn edition_a() -> Registry {
    Registry::new(
        vec![
            record(Some("http"), Some((80, 80)), Some(Protocol::Tcp)),
            record(Some("http"), Some((80, 80)), Some(Protocol::Udp)),
            record(Some("www"), Some((80, 80)), Some(Protocol::Tcp)),
            record(Some("x11"), Some((6000, 6063)), Some(Protocol::Tcp)),
            record(None, Some((4, 4)), Some(Protocol::Tcp)),
            record(Some("rdp"), None, None),
            record(Some("rdp"), None, None),
            record(Some("gone"), Some((99, 99)), Some(Protocol::Tcp)),
        ],
        SourceInfo {
            path: "a".into(),
            ..SourceInfo::default()
        },
    )
}

fn edition_b() -> Registry {
    let mut registry = edition_a();
    registry.records.pop(); // "gone" removed
    registry.records[3].description = "X Window System".into(); // x11 changed
    registry
        .records
        .push(record(Some("https"), Some((443, 443)), Some(Protocol::Tcp)));
    registry.source.path = "b".into();
    registry
}

fn names(result: &EntryLookup) -> Vec<String> {
    result
        .entries
        .iter()
        .map(|e| &e.record)
        .map(|r| {
            format!(
                "{}/{}",
                r.name.as_deref().unwrap_or("-"),
                r.protocol.as_ref().map_or("any", |p| p.as_str())
            )
        })
        .collect()
}

#[test]
fn port_lookup_covers_ranges_and_orders_canonically() {
    let index = Index::new(edition_a());
    assert_eq!(
        names(&index.lookup_port(80, Some(&Protocol::Tcp))),
        ["http/tcp", "www/tcp"]
    );
    assert_eq!(
        names(&index.lookup_port(80, None)),
        ["http/tcp", "http/udp", "www/tcp"]
    );
    for port in [6000, 6010, 6063] {
        assert_eq!(
            names(&index.lookup_port(port, Some(&Protocol::Tcp))),
            ["x11/tcp"]
        );
    }
    assert!(
        index
            .lookup_port(6064, None)
            .into_records()
            .records
            .is_empty()
    );
    assert!(
        index
            .lookup_port(6010, Some(&Protocol::Udp))
            .into_records()
            .records
            .is_empty()
    );
    let unassigned = index.lookup_port(4, Some(&Protocol::Tcp)).into_records();
    assert_eq!(unassigned.records.len(), 1);
    assert_eq!(unassigned.records[0].state, RecordState::Unassigned);
    assert_eq!(unassigned.version, 1);
}

#[test]
fn name_lookup_is_case_insensitive_and_finds_portless_rows() {
    let index = Index::new(edition_a());
    assert_eq!(
        names(&index.lookup_name("HTTP", None)),
        ["http/tcp", "http/udp"]
    );
    assert_eq!(
        names(&index.lookup_name("http", Some(&Protocol::Udp))),
        ["http/udp"]
    );
    assert_eq!(
        names(&index.lookup_name("rdp", Some(&Protocol::Sctp))),
        ["rdp/any", "rdp/any"]
    );
    assert!(
        index
            .lookup_name("nope", None)
            .into_records()
            .records
            .is_empty()
    );
}

#[test]
fn apply_computes_the_diff_and_moves_the_version_once() {
    let index = Index::new(edition_a());
    let change = index
        .apply(edition_b(), &ReloadGuard::default())
        .expect("applies")
        .expect("something changed");
    assert_eq!((change.from_version, change.to_version), (1, 2));
    assert_eq!(index.version(), 2);
    let added: Vec<_> = change
        .diff
        .added
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    let changed: Vec<_> = change
        .diff
        .changed
        .iter()
        .map(|(k, _, _)| k.to_string())
        .collect();
    let removed: Vec<_> = change
        .diff
        .removed
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(added, ["https 443/tcp"]);
    assert_eq!(changed, ["x11 6000-6063/tcp"]);
    assert_eq!(removed, ["gone 99/tcp"]);
    assert!(
        index
            .lookup_port(99, None)
            .into_records()
            .records
            .is_empty()
    );
    assert!(
        index
            .lookup_name("gone", None)
            .into_records()
            .records
            .is_empty()
    );
    assert_eq!(names(&index.lookup_name("https", None)), ["https/tcp"]);
    assert_eq!(
        index.lookup_port(6001, None).into_records().records[0].description,
        "X Window System"
    );
    assert_eq!(index.snapshot().version(), 2);
    assert_eq!(index.snapshot().source().path, "b");

    // Re-applying the same content changes nothing.
    assert!(
        index
            .apply(edition_b(), &ReloadGuard::default())
            .unwrap()
            .is_none()
    );
    assert_eq!(index.version(), 2);
}

/// A reload only rebuilds what its diff touched; everything it touched
/// must come out exactly as a fresh index of the new edition.
#[test]
fn incremental_apply_equals_a_fresh_build() {
    let mut next = edition_b();
    next.records[3].ports = PortRange::new(6000, 6009); // x11 shrinks
    next.records[2].name = Some("WWW-renamed".into()); // www renamed
    let index = Index::new(edition_a());
    index.apply(next.clone(), &ReloadGuard::default()).unwrap();
    let fresh = Index::new(next);
    for port in [4, 80, 99, 443, 6000, 6009, 6010, 6063, 7000] {
        assert_eq!(
            names(&index.lookup_port(port, None)),
            names(&fresh.lookup_port(port, None)),
            "port {port}"
        );
    }
    for name in ["http", "www", "www-renamed", "x11", "gone", "https", "rdp"] {
        assert_eq!(
            names(&index.lookup_name(name, None)),
            names(&fresh.lookup_name(name, None)),
            "name {name}"
        );
    }
    assert!(
        index
            .lookup_port(6010, None)
            .into_records()
            .records
            .is_empty()
    );
    assert!(
        index
            .lookup_name("www", None)
            .into_records()
            .records
            .is_empty()
    );
    assert_eq!(index.by_port.len(), fresh.by_port.len());
    assert_eq!(index.by_name.len(), fresh.by_name.len());
}

/// A lookup's keys, joined; `None` when it found nothing.
fn keys_of(found: EntryLookup) -> Option<Vec<u8>> {
    let keys: Vec<String> = found.entries.iter().map(|e| e.key.to_string()).collect();
    (!keys.is_empty()).then(|| keys.join(", ").into_bytes())
}

#[test]
fn lookups_filter_by_protocol_and_fold_names() {
    let index = Index::new(edition_a());
    let port = |port, protocol: Option<Protocol>| {
        let found = index.lookup_port(port, protocol.as_ref());
        assert_eq!(found.version, 1);
        keys_of(found)
    };
    assert_eq!(
        port(80, None).as_deref(),
        Some(&b"http 80/tcp, http 80/udp, www 80/tcp"[..])
    );
    assert_eq!(
        port(80, Some(Protocol::Tcp)).as_deref(),
        Some(&b"http 80/tcp, www 80/tcp"[..])
    );
    assert_eq!(port(80, Some(Protocol::Sctp)), None);
    assert_eq!(port(81, None), None);
    assert_eq!(port(6000, None), port(6063, None));
    assert_eq!(port(6000, None).as_deref(), Some(&b"x11 6000-6063/tcp"[..]));
    let ddp = Some(Protocol::Other("ddp".into()));
    assert_eq!(port(4, ddp.clone()), None, "4/tcp is not ddp");
    assert_eq!(
        keys_of(index.lookup_name("RDP", ddp.as_ref())).as_deref(),
        Some(&b"rdp -/any, rdp -/any #1"[..])
    );
    assert_eq!(
        keys_of(index.lookup_name("HTTP", None)).as_deref(),
        Some(&b"http 80/tcp, http 80/udp"[..])
    );
    assert_eq!(keys_of(index.lookup_name("nope", None)), None);
}

/// Names fold by one rule ([`fold_name`]) on both sides: a query with a
/// titlecase letter finds a record stored in lowercase, and the other way
/// round; a word-final capital sigma folds like a medial one.
#[test]
fn titlecase_and_final_sigma_names_fold_like_their_lowercase() {
    let stored = ["\u{1C6}-svc", "\u{1C5}-title", "\u{3C3}\u{3B1}\u{3C3}"];
    let records = stored
        .iter()
        .zip(1u16..)
        .map(|(name, port)| record(Some(name), Some((port, port)), Some(Protocol::Tcp)))
        .collect();
    let index = Index::new(Registry::new(records, SourceInfo::default()));
    for (query, port) in [
        ("\u{1C5}-svc", 1),
        ("\u{1C4}-SVC", 1),
        ("\u{1C6}-title", 2),
        ("\u{1C4}-TITLE", 2),
        ("\u{3A3}\u{391}\u{3A3}", 3),
    ] {
        let found = index.lookup_name(query, None);
        let ports: Vec<_> = found
            .entries
            .iter()
            .map(|e| e.record.ports.map(|p| p.start))
            .collect();
        assert_eq!(ports, [Some(port)], "{query}");
    }
    assert_eq!(fold_name("\u{3A3}\u{391}\u{3A3}"), "\u{3C3}\u{3B1}\u{3C3}");
}

/// Lookup entries are the index's own, shared: a list the reload did
/// not touch answers the same entries afterwards.
#[test]
fn a_reload_keeps_untouched_entries_shared() {
    let index = Index::new(edition_a());
    let http = index.lookup_port(80, None).entries;
    index.apply(edition_b(), &ReloadGuard::default()).unwrap();
    let now = index.lookup_port(80, None);
    assert_eq!(now.version, 2);
    assert!(
        http.len() == now.entries.len()
            && http
                .iter()
                .zip(&now.entries)
                .all(|(a, b)| Arc::ptr_eq(a, b)),
        "untouched"
    );
    assert_eq!(keys_of(index.lookup_port(99, None)), None, "removed");
    assert_eq!(
        keys_of(index.lookup_port(443, None)).as_deref(),
        Some(&b"https 443/tcp"[..])
    );
}

#[test]
fn the_guard_refuses_empty_and_shrinking_registries() {
    let index = Index::new(edition_a());
    let mut tiny = edition_a();
    tiny.records.truncate(3);
    let err = index.apply(tiny, &ReloadGuard::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ApplyError::Shrink {
                current: 8,
                new: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("drop 5 of the current 8"), "{err}");
    let err = index
        .apply(Registry::default(), &ReloadGuard::permissive())
        .unwrap_err();
    assert_eq!(err, ApplyError::Empty);
    let at_least_nine = ReloadGuard {
        min_records: 9,
        ..ReloadGuard::permissive()
    };
    let err = index.apply(edition_a(), &at_least_nine).unwrap_err();
    assert_eq!(
        err,
        ApplyError::TooFew {
            new: 8,
            min_records: 9
        }
    );
    assert!(
        err.to_string().contains("fewer than the minimum of 9"),
        "{err}"
    );
    assert_eq!(
        index.version(),
        1,
        "a refused reload leaves the version alone"
    );
    assert_eq!(index.snapshot().len(), 8);
}

#[test]
fn list_is_in_port_protocol_name_order_with_portless_last() {
    let index = Index::new(edition_b());
    let snapshot = index.snapshot();
    let listed: Vec<String> = snapshot
        .list(&Filter::default())
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(
        listed,
        [
            "- 4/tcp",
            "http 80/tcp",
            "www 80/tcp",
            "http 80/udp",
            "https 443/tcp",
            "x11 6000-6063/tcp",
            "rdp -/any",
            "rdp -/any #1",
        ]
    );
    let filter = Filter {
        port_min: Some(100),
        port_max: Some(6000),
        ..Filter::default()
    };
    let listed: Vec<String> = snapshot.list(&filter).map(|(k, _)| k.to_string()).collect();
    assert_eq!(listed, ["https 443/tcp", "x11 6000-6063/tcp"]);
}

#[test]
fn search_ranks_exact_then_prefix_then_substring_then_description() {
    let mut registry = edition_b();
    registry.records.push(record(
        Some("shttp"),
        Some((1000, 1000)),
        Some(Protocol::Tcp),
    ));
    let index = Index::new(registry);
    let snapshot = index.snapshot();
    let hits: Vec<(MatchRank, String)> = snapshot
        .search(&SearchQuery::new("HTTP"))
        .into_iter()
        .map(|(rank, (k, _))| (rank, k.to_string()))
        .collect();
    assert_eq!(hits[0], (MatchRank::ExactName, "http 80/tcp".to_string()));
    assert_eq!(hits[1], (MatchRank::ExactName, "http 80/udp".to_string()));
    assert_eq!(
        hits[2],
        (MatchRank::NamePrefix, "https 443/tcp".to_string())
    );
    assert_eq!(
        hits[3],
        (MatchRank::NameSubstring, "shttp 1000/tcp".to_string())
    );
    let mut limited = SearchQuery::new("http");
    limited.limit = 2;
    assert_eq!(snapshot.search(&limited).len(), 2);
}

/// Names and descriptions share one folded string per snapshot; each
/// record must see exactly its own text, including nameless records and
/// non-ASCII text whose lowercase form has another length.
#[test]
fn search_text_keeps_each_records_own_folded_text() {
    let mut nameless = record(None, Some((4, 4)), Some(Protocol::Tcp));
    nameless.description = "Unassigned".into();
    let mut accented = record(Some("Café"), Some((5, 5)), Some(Protocol::Tcp));
    accented.description = "ÉTÉ İstanbul Service".into();
    let mut plain = record(Some("ZEBRA"), Some((6, 6)), Some(Protocol::Tcp));
    plain.description = "Striped".into();
    let keyed = keyed_records(vec![nameless, accented, plain]);
    let text = SearchText::build(&keyed);
    assert_eq!(text.get(0), ("", "unassigned"));
    assert_eq!(
        text.get(1),
        ("café", &*"ÉTÉ İstanbul Service".to_lowercase())
    );
    assert_eq!(text.get(2), ("zebra", "striped"));

    let index = Index::from_keyed(keyed, SourceInfo::default(), 1);
    let snapshot = index.snapshot();
    let found = |needle: &str| -> Vec<String> {
        snapshot
            .search(&SearchQuery::new(needle))
            .into_iter()
            .map(|(_, (k, _))| k.to_string())
            .collect()
    };
    assert_eq!(found("CAFÉ"), ["Café 5/tcp"]);
    assert_eq!(found("été"), ["Café 5/tcp"]);
    assert_eq!(found("stripe"), ["ZEBRA 6/tcp"]);
    assert!(
        found("unassignedcafé").is_empty(),
        "no match across records"
    );
}

#[test]
fn apply_delta_mirrors_a_remote_change() {
    let server = Index::new(edition_a());
    let replica = Index::from_keyed(server.snapshot().keyed().to_vec(), SourceInfo::default(), 1);
    let change = server
        .apply(edition_b(), &ReloadGuard::default())
        .unwrap()
        .unwrap();
    let upserts: Vec<KeyedRecord> = change
        .diff
        .upserts()
        .map(|(k, r)| (k.clone(), Arc::clone(r)))
        .collect();
    let removed: Vec<RecordKey> = change.diff.removed.iter().map(|(k, _)| k.clone()).collect();
    replica.apply_delta(upserts, &removed, 2).unwrap();
    assert_eq!(replica.version(), 2);
    let mut a: Vec<String> = server
        .snapshot()
        .keyed()
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    let mut b: Vec<String> = replica
        .snapshot()
        .keyed()
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(
        replica.lookup_port(6010, None).into_records().records[0].description,
        "X Window System"
    );
}

/// Readers hammer lookups and scans while a writer alternates between two
/// editions: a key present in both editions is never missing, the
/// reported version never goes backwards for a reader, and every scan
/// equals exactly one edition.
#[test]
fn concurrent_readers_never_see_a_shared_key_missing() {
    let index = Arc::new(Index::new(edition_a()));
    let listing = |registry: Registry| -> Vec<String> {
        let snapshot = Index::new(registry).snapshot();
        snapshot
            .list(&Filter::default())
            .map(|(k, _)| k.to_string())
            .collect()
    };
    let (list_a, list_b) = (listing(edition_a()), listing(edition_b()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Readers that have done 100 reads: the writer keeps reloading
    // until every reader has read during the reloads (400 reloads can
    // finish before a busy machine schedules a reader).
    let readers_going = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let index = Arc::clone(&index);
            let stop = Arc::clone(&stop);
            let readers_going = Arc::clone(&readers_going);
            let (list_a, list_b) = (list_a.clone(), list_b.clone());
            std::thread::spawn(move || {
                let mut last_version = 0;
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let http = index.lookup_port(80, Some(&Protocol::Tcp));
                    assert_eq!(names(&http), ["http/tcp", "www/tcp"]);
                    assert!(http.version >= last_version, "version went backwards");
                    last_version = http.version;
                    assert_eq!(
                        index.lookup_port(6010, None).into_records().records.len(),
                        1
                    );
                    assert_eq!(
                        index.lookup_name("rdp", None).into_records().records.len(),
                        2
                    );
                    let x11 = descriptions(index.lookup_port(6010, None))
                        .expect("6010 is always answered");
                    assert!(
                        [&b"x11 service"[..], b"X Window System"].contains(&&*x11),
                        "{x11:?}"
                    );
                    let snapshot = index.snapshot();
                    let listed: Vec<String> = snapshot
                        .list(&Filter::default())
                        .map(|(k, _)| k.to_string())
                        .collect();
                    assert!(
                        listed == list_a || listed == list_b,
                        "a scan mixed editions"
                    );
                    reads += 1;
                    if reads == 100 {
                        readers_going.fetch_add(1, Ordering::Relaxed);
                    }
                }
                reads
            })
        })
        .collect();
    // At least 400 reloads, and an even number, so edition_a is last.
    let mut reloads = 0u64;
    while reloads < 400 || !reloads.is_multiple_of(2) || readers_going.load(Ordering::Relaxed) < 3 {
        let next = if reloads.is_multiple_of(2) {
            edition_b()
        } else {
            edition_a()
        };
        let change = index.apply(next, &ReloadGuard::default()).unwrap();
        assert!(change.is_some());
        reloads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().expect("reader panicked") > 0);
    }
    assert_eq!(index.version(), reloads + 1);
    // The last reload restored edition_a.
    let x11 = descriptions(index.lookup_port(6010, None));
    assert_eq!(x11.as_deref(), Some(&b"x11 service"[..]));
}

/// A lookup's descriptions, joined; `None` when it found nothing.
fn descriptions(found: EntryLookup) -> Option<Vec<u8>> {
    let texts: Vec<&str> = found
        .entries
        .iter()
        .map(|e| e.record.description.as_str())
        .collect();
    (!texts.is_empty()).then(|| texts.join(", ").into_bytes())
}

#[test]
fn after_reloads_every_answer_equals_a_fresh_index_answer() {
    // Warm every list, reload, compare each answer with an index built
    // from the new edition; twice, so kept lists and rebuilt ones both
    // count.
    let filters = [None, Some(Protocol::Tcp), Some(Protocol::Udp)];
    let answers = |index: &Index| -> Vec<Option<Vec<u8>>> {
        let ports = (0..=u16::MAX).flat_map(|port| {
            filters
                .iter()
                .map(move |p| descriptions(index.lookup_port(port, p.as_ref())))
        });
        let names = ["http", "www", "x11", "rdp", "https", "gone"].into_iter();
        let names = names.flat_map(|name| {
            filters
                .iter()
                .map(move |p| descriptions(index.lookup_name(name, p.as_ref())))
        });
        ports.chain(names).collect()
    };
    let index = Index::new(edition_a());
    answers(&index);
    for next in [edition_b(), edition_a()] {
        index.apply(next.clone(), &ReloadGuard::default()).unwrap();
        let kept = answers(&index);
        assert_eq!(kept, answers(&Index::new(next)));
        assert!(kept.iter().flatten().count() > 64, "answers were compared");
    }
}

/// Each port of a range lies in exactly one of the range's blocks on
/// the port's path, and no range needs more than 32 blocks.
#[test]
fn blocks_hold_each_port_of_a_range_once() {
    let ranges = [
        (0, u16::MAX),
        (1, u16::MAX - 1),
        (6000, 6063),
        (7, 8),
        (32767, 32768),
        (u16::MAX - 1, u16::MAX),
        (12345, 54321),
    ];
    for (start, end) in ranges {
        let range = PortRange::new(start, end).unwrap();
        let blocks: HashSet<u32> = blocks_of(range).collect();
        assert!(blocks.len() <= 32, "{range}: {} blocks", blocks.len());
        for port in 0..=u16::MAX {
            let on_path = (0..LEVELS)
                .filter(|&level| blocks.contains(&block_of(level, u32::from(port))))
                .count();
            assert_eq!(on_path, usize::from(range.contains(port)), "{range} {port}");
        }
    }
}

fn keys_at(index: &Index, port: u16) -> Vec<String> {
    index
        .lookup_port(port, None)
        .entries
        .iter()
        .map(|e| e.key.to_string())
        .collect()
}

/// Issue #13, row 7: 65,536 rows of `0-65535` overflowed a u32 count
/// while every port got every row (2^32 entries). Now the rows are
/// 65,536 intervals, each one block, and every port shares one list.
#[test]
fn rows_of_the_whole_port_space_are_indexed_as_intervals() {
    let rows = |count: usize| -> Vec<Record> {
        (0..count)
            .map(|i| {
                let protocol = [Protocol::Tcp, Protocol::Udp][i % 2].clone();
                record(Some("all"), Some((0, u16::MAX)), Some(protocol))
            })
            .collect()
    };
    let index = Index::new(Registry::new(rows(65_536), SourceInfo::default()));
    let footprint = index.footprint();
    assert_eq!(
        (
            footprint.ranges,
            footprint.range_blocks,
            footprint.range_segments
        ),
        (65_536, 65_536, 1)
    );
    assert_eq!((footprint.port_lists, footprint.port_entries), (0, 0));
    assert_eq!(footprint.name_entries, 65_536);
    let first = index.lookup_port(0, None).entries;
    assert_eq!(first.len(), 65_536);
    // Same state and width: source order, so ordinals count up.
    assert!(first.iter().enumerate().all(|(i, e)| {
        e.key.ordinal == (i / 2) as u32 && Arc::ptr_eq(&e.record, &index.snapshot().keyed()[i].1)
    }));
    for port in [1, 32768, u16::MAX] {
        let found = index.lookup_port(port, None).entries;
        assert!(
            found.len() == first.len() && found.iter().zip(&first).all(|(a, b)| Arc::ptr_eq(a, b))
        );
    }
    let a = index.lookup_port(0, Some(&Protocol::Udp)).entries;
    let b = index.lookup_port(u16::MAX, Some(&Protocol::Udp)).entries;
    assert!(
        a.len() == b.len() && a.iter().zip(&b).all(|(a, b)| Arc::ptr_eq(a, b)),
        "one list"
    );
    assert_eq!(index.footprint().kept_range_entries, 65_536);

    // 2,000 such rows and single ports at the edges: each of those
    // ports gets its own list (its records first), the rest share one.
    let mut records = rows(2_000);
    for port in [0, 1, 32768, u16::MAX] {
        records.push(record(
            Some("edge"),
            Some((port, port)),
            Some(Protocol::Tcp),
        ));
    }
    let index = Index::new(Registry::new(records, SourceInfo::default()));
    let footprint = index.footprint();
    assert_eq!((footprint.ranges, footprint.range_blocks), (2_000, 2_000));
    assert_eq!((footprint.range_segments, footprint.inner_singles), (1, 4));
    assert_eq!(footprint.port_lists, 0);
    for port in [0, 1, 32768, u16::MAX] {
        let keys = keys_at(&index, port);
        assert_eq!(keys.len(), 2_001);
        assert_eq!(keys[0], format!("edge {port}/tcp"));
        assert_eq!(keys[1], "all 0-65535/tcp");
        assert_eq!(keys[2_000], "all 0-65535/udp #999");
    }
    assert_eq!(keys_at(&index, 2).len(), 2_000);
    assert_eq!(index.footprint().kept_range_entries, 4 * 2_001 + 2_000);
}

/// Registry with two ranges, a single port inside one, and one outside.
fn ranged() -> Registry {
    Registry::new(
        vec![
            record(Some("x11"), Some((6000, 6063)), Some(Protocol::Tcp)),
            record(Some("wide"), Some((7000, 7099)), None),
            record(Some("inner"), Some((7050, 7050)), Some(Protocol::Udp)),
            record(Some("http"), Some((80, 80)), Some(Protocol::Tcp)),
        ],
        SourceInfo::default(),
    )
}

#[test]
fn a_reload_touching_one_range_answers_like_a_fresh_index() {
    let index = Index::new(ranged());
    let ports = [80, 6000, 6063, 7000, 7049, 7050, 7051];
    for port in ports {
        keys_at(&index, port);
    }
    assert_eq!(
        keys_at(&index, 7050),
        ["inner 7050/udp", "wide 7000-7099/any"]
    );
    assert_eq!(keys_at(&index, 7049), ["wide 7000-7099/any"]);
    let mut next = ranged();
    // x11 changes, then the single port inside "wide".
    next.records[0].description = "X Window System".into();
    index.apply(next.clone(), &ReloadGuard::default()).unwrap();
    next.records[2].description = "inner, renamed".into();
    index.apply(next.clone(), &ReloadGuard::default()).unwrap();
    let fresh = Index::new(next);
    for port in ports {
        assert_eq!(keys_at(&index, port), keys_at(&fresh, port), "{port}");
        assert_eq!(
            descriptions(index.lookup_port(port, None)),
            descriptions(fresh.lookup_port(port, None)),
            "{port}"
        );
    }
}

/// A port that a range starts or stops covering moves between the map
/// by port and the range index without losing its own records.
#[test]
fn ports_moving_in_and_out_of_ranges_keep_their_records() {
    let index = Index::new(ranged());
    for port in [80, 81, 7050, 7100] {
        keys_at(&index, port);
    }
    let mut covering = ranged();
    covering.records[1].ports = PortRange::new(1, 7100); // now covers 80
    let mut leaving = ranged();
    leaving.records[1].ports = PortRange::new(7051, 7099); // leaves 7050
    for next in [covering, leaving, ranged()] {
        index
            .apply(next.clone(), &ReloadGuard::permissive())
            .unwrap();
        let fresh = Index::new(next);
        for port in [0, 1, 80, 81, 6010, 7000, 7050, 7051, 7099, 7100] {
            assert_eq!(keys_at(&index, port), keys_at(&fresh, port), "{port}");
        }
        assert_eq!(index.by_port.len(), fresh.by_port.len());
    }
    assert_eq!(keys_at(&index, 80), ["http 80/tcp"]);
}

/// Past the budget a list still answers, but is not kept.
#[test]
fn lists_past_the_budget_answer_without_being_kept() {
    let mut index = Index::new(ranged());
    index.range_budget = RangeBudget::new(1);
    let answer = |port| keys_of(index.lookup_port(port, None)).unwrap();
    let x11 = answer(6000);
    assert_eq!(x11, answer(6063));
    assert_eq!(index.footprint().kept_range_entries, 1, "one entry fits");
    assert_eq!(answer(7050), b"inner 7050/udp, wide 7000-7099/any");
    assert_eq!(index.footprint().kept_range_entries, 1, "two do not");
    // A reload touching x11 drops its list, and gives back its charge.
    let mut next = ranged();
    next.records[0].description = "X".into();
    index.apply(next, &ReloadGuard::default()).unwrap();
    assert_eq!(index.footprint().kept_range_entries, 0);
    assert_eq!(answer(7000), b"wide 7000-7099/any");
    assert_eq!(index.footprint().kept_range_entries, 1);
}

/// Issue 15, row 4: a file that only swaps two rows of one port (IANA's
/// `ident` and `auth` at 113/tcp) is a change: a new version, the two
/// records changed (their positions), lookups in the new order, and the
/// same answers and content id as an index built fresh from the new file.
#[test]
fn a_reload_that_only_reorders_two_rows_of_a_port_is_a_change() {
    let rows = |first: &str, second: &str| {
        Registry::new(
            vec![
                record(Some("echo"), Some((7, 7)), Some(Protocol::Tcp)),
                record(Some(first), Some((113, 113)), Some(Protocol::Tcp)),
                record(Some(second), Some((113, 113)), Some(Protocol::Tcp)),
                record(Some("ntp"), Some((123, 123)), Some(Protocol::Udp)),
            ],
            SourceInfo::default(),
        )
    };
    let index = Index::new(rows("auth", "ident"));
    let before = index.stamp();
    assert_eq!(
        names(&index.lookup_port(113, None)),
        ["auth/tcp", "ident/tcp"]
    );
    let change = index
        .apply(rows("ident", "auth"), &ReloadGuard::permissive())
        .unwrap()
        .expect("a reorder is a change");
    assert_eq!((change.from_version, change.to_version), (1, 2));
    assert_eq!(change.diff.changed.len(), 2);
    assert!(change.diff.added.is_empty() && change.diff.removed.is_empty());
    assert_eq!(
        names(&index.lookup_port(113, None)),
        ["ident/tcp", "auth/tcp"]
    );
    let fresh = Index::new(rows("ident", "auth"));
    assert_eq!(index.stamp().1, fresh.stamp().1, "content ids agree");
    assert_ne!(index.stamp().1, before.1);
    assert_eq!(
        keys_of(index.lookup_port(113, None)),
        keys_of(fresh.lookup_port(113, None))
    );
}

/// Issue 15, row 3: an index built from the records in listing order (as a
/// replica receives them) answers every port and name of the real IANA CSV
/// exactly as the index built in source order, order included, and holds
/// the same content id: the order of an answer follows from the records.
#[test]
fn an_index_fed_in_listing_order_answers_like_the_source_order_one() {
    let path = portolan_test_support::shared_file("iana/service-names-port-numbers.csv");
    let bytes = std::fs::read(&path).unwrap();
    let server = Index::new(crate::parse(&bytes, None).unwrap().registry);
    let snapshot = server.snapshot();
    let listed: Vec<KeyedRecord> = snapshot.list(&Filter::default()).cloned().collect();
    assert_eq!(listed.len(), snapshot.len());
    let replica = Index::from_keyed(listed, SourceInfo::default(), 1);
    assert_eq!(replica.stamp(), server.stamp());
    let order = |found: EntryLookup| -> Vec<(RecordKey, u32)> {
        found
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.record.position))
            .collect()
    };
    let mut differing = 0;
    for port in 0..=u16::MAX {
        if order(server.lookup_port(port, None)) != order(replica.lookup_port(port, None)) {
            differing += 1;
        }
    }
    for (_, record) in snapshot.keyed() {
        for name in record.name.iter().chain(&record.aliases) {
            if order(server.lookup_name(name, None)) != order(replica.lookup_name(name, None)) {
                differing += 1;
            }
        }
    }
    assert_eq!(differing, 0, "answers in another order");
    // The rows IANA lists first still come first: 113/tcp names `ident`
    // before `auth`, as the file does.
    let first = server.lookup_port(113, Some(&Protocol::Tcp));
    assert_eq!(first.entries[0].record.name.as_deref(), Some("ident"));
}

/// Layers: lookups answer every layer, highest priority first; replacing
/// one layer leaves the others' records (the same `Arc`s) and keys alone;
/// the shrink guard compares the layer's own counts.
#[test]
fn a_layer_is_replaced_alone_and_answers_in_priority_order() {
    let corp = |description: &str, extra: bool| {
        let mut records = vec![record(
            Some("corp-http"),
            Some((80, 80)),
            Some(Protocol::Tcp),
        )];
        records[0].description = description.into();
        if extra {
            records.push(record(
                Some("corp-admin"),
                Some((8443, 8443)),
                Some(Protocol::Tcp),
            ));
            records.push(record(
                Some("corp-metrics"),
                Some((9100, 9100)),
                Some(Protocol::Tcp),
            ));
        }
        Registry::new(records, SourceInfo::default())
    };
    let index = Index::new(crate::layers::compose(vec![
        ("corp".into(), corp("v1", true)),
        ("iana".into(), edition_a()),
    ]));
    let layers_of = |found: &EntryLookup| -> Vec<(String, String)> {
        found
            .entries
            .iter()
            .map(|e| {
                (
                    e.record.layer.to_string(),
                    e.record.name.clone().unwrap_or_default(),
                )
            })
            .collect()
    };
    let found = index.lookup_port(80, Some(&Protocol::Tcp));
    assert_eq!(
        layers_of(&found),
        [
            ("corp".to_string(), "corp-http".to_string()),
            ("iana".to_string(), "http".to_string()),
            ("iana".to_string(), "www".to_string()),
        ]
    );
    let iana_before: Vec<Arc<Record>> = index
        .snapshot()
        .keyed
        .iter()
        .filter(|(k, _)| &*k.layer == "iana")
        .map(|(_, r)| Arc::clone(r))
        .collect();

    let change = index
        .apply_layer(
            "corp",
            corp("v2", true).into_layer("corp", 0),
            SourceInfo::default(),
            &ReloadGuard::default(),
        )
        .expect("applied")
        .expect("a change");
    assert_eq!(change.diff.len(), 1);
    assert_eq!(&*change.diff.changed[0].0.layer, "corp");
    let snapshot = index.snapshot();
    let iana_after: Vec<&Arc<Record>> = snapshot
        .keyed
        .iter()
        .filter(|(k, _)| &*k.layer == "iana")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(iana_after.len(), iana_before.len());
    assert!(
        iana_after
            .iter()
            .zip(&iana_before)
            .all(|(a, b)| Arc::ptr_eq(a, b)),
        "the other layer's records are shared, not rebuilt"
    );
    assert_eq!(
        index.lookup_port(80, Some(&Protocol::Tcp)).entries[0]
            .record
            .description,
        "v2"
    );

    // 3 corp records down to 1 is more than half of the layer (the whole
    // registry only shrinks by 2 of 9): refused, nothing changes.
    let refused = index.apply_layer(
        "corp",
        corp("v3", false).into_layer("corp", 0),
        SourceInfo::default(),
        &ReloadGuard::default(),
    );
    assert!(
        matches!(
            refused,
            Err(ApplyError::Shrink {
                current: 3,
                new: 1,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(index.snapshot().len(), snapshot.len());
}

/// A record added to one layer is one added key, the registry one larger.
#[test]
fn a_record_added_to_a_layer_is_one_addition() {
    let mk = |n: u16| {
        Registry::new(
            (0..n)
                .map(|i| {
                    record(
                        Some(&format!("c{i}")),
                        Some((1000 + i, 1000 + i)),
                        Some(Protocol::Tcp),
                    )
                })
                .collect(),
            SourceInfo::default(),
        )
    };
    let index = Index::new(crate::layers::compose(vec![
        ("corp".into(), mk(3)),
        ("iana".into(), edition_a()),
    ]));
    let before = index.snapshot().len();
    let change = index
        .apply_layer(
            "corp",
            mk(4).into_layer("corp", 0),
            SourceInfo::default(),
            &ReloadGuard::default(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(change.diff.added.len(), 1, "{:?}", change.diff);
    assert_eq!(index.snapshot().len(), before + 1);
}
