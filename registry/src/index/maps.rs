//! The lookup maps' building blocks: [`IndexEntry`] and the shared entry
//! lists, which ports and names a (re)build covers (`Scope`), building
//! the lists of a version (`build_maps`) and bringing a live map to them
//! (`upsert` before `remove_stale`), and the [`Footprint`] of it all.

use std::collections::HashSet;
use std::sync::Arc;

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use super::*;
use crate::diff::{Diff, KeyedRecord};
use crate::model::{PortRange, Record, RecordKey, fold_name};
use crate::query;

/// One record in a lookup map, with its key, so a lookup can answer with
/// the record's identity (the wire format carries it).
#[derive(Debug, PartialEq)]
pub struct IndexEntry {
    /// The record's identity in the version it was indexed from.
    pub key: RecordKey,
    /// The record.
    pub record: Arc<Record>,
}

impl IndexEntry {
    /// An entry for `record` under `key`.
    pub fn new(key: RecordKey, record: Arc<Record>) -> Self {
        Self { key, record }
    }
}

/// The entries of one port or name, in canonical order. Ports with the
/// same entries (the ports of one range) share one list.
#[derive(Debug, PartialEq)]
pub(super) struct EntryList {
    pub(super) entries: Box<[Arc<IndexEntry>]>,
    /// For a list built on demand for ports inside ranges: its entries,
    /// counted against [`RANGE_CACHE_ENTRIES`] while it lives.
    pub(super) charge: Option<Charge>,
}

impl EntryList {
    pub(super) fn new_shared(entries: impl IntoIterator<Item = Arc<IndexEntry>>) -> RecordList {
        Self::charged(entries.into_iter().collect(), None)
    }

    pub(super) fn charged(entries: Vec<Arc<IndexEntry>>, charge: Option<Charge>) -> RecordList {
        Arc::new(Self {
            entries: entries.into_boxed_slice(),
            charge,
        })
    }
}

impl std::ops::Deref for EntryList {
    type Target = [Arc<IndexEntry>];

    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

pub(super) type RecordList = Arc<EntryList>;

/// Port lists, in port order.
pub(super) type PortLists = Vec<(u16, RecordList)>;
/// Name lists, in name order.
pub(super) type NameLists = Vec<(Box<str>, RecordList)>;

/// Which ports and names a map (re)build covers.
#[derive(Debug)]
pub(super) enum Scope {
    /// Every port and name (a first build, or a diff touching most
    /// records).
    All,
    /// Only what a diff touched: every port of every touched key's range,
    /// and the folded names and aliases of touched records.
    Touched {
        ports: PortSet,
        /// The ports of the touched keys that are ranges (not single
        /// ports): where the ranges covering a port may have changed.
        range_ports: PortSet,
        names: HashSet<String, FxBuildHasher>,
    },
}

impl Scope {
    pub(super) fn touched_by(diff: &Diff) -> Self {
        // Sorted by start: each port is marked once, so a diff of 65,536
        // rows of 0-65535 costs 65,536 ranges, not 2^32 ports.
        let touched = diff.touched_ports();
        let ranges = touched.iter().copied().filter(|range| !range.is_single());
        Self::Touched {
            range_ports: PortSet::of_sorted(ranges),
            ports: PortSet::of_sorted(touched),
            names: diff.touched_names().into_iter().collect(),
        }
    }

    pub(super) fn has_port(&self, port: u16) -> bool {
        match self {
            Self::All => true,
            Self::Touched { ports, .. } => ports.contains(port),
        }
    }

    /// Whether a touched range (not a single port) covers any port of
    /// `start..=end`: whether the ranges covering those ports may differ.
    pub(super) fn has_range_in(&self, start: u16, end: u16) -> bool {
        match self {
            Self::All => true,
            Self::Touched { range_ports, .. } => range_ports.any_in(start, end),
        }
    }

    pub(super) fn has_name(&self, folded: &str) -> bool {
        match self {
            Self::All => true,
            Self::Touched { names, .. } => names.contains(folded),
        }
    }
}

/// The records of one version, and one shared entry per record, made on
/// first use: a port list, a name list and the range index holding the
/// same record share its entry.
pub(super) struct Entries<'a> {
    pub(super) keyed: &'a [KeyedRecord],
    pub(super) made: Vec<Option<Arc<IndexEntry>>>,
}

impl<'a> Entries<'a> {
    pub(super) fn new(keyed: &'a [KeyedRecord]) -> Self {
        Self {
            keyed,
            made: vec![None; keyed.len()],
        }
    }

    /// The entry of the record at `pos` (source order).
    pub(super) fn get(&mut self, pos: usize) -> Arc<IndexEntry> {
        let (key, record) = &self.keyed[pos];
        Arc::clone(
            self.made[pos]
                .get_or_insert_with(|| Arc::new(IndexEntry::new(key.clone(), Arc::clone(record)))),
        )
    }

    /// Canonical order of the records at two positions.
    pub(super) fn canonical(&self, a: usize, b: usize) -> std::cmp::Ordering {
        query::canonical_cmp(&self.keyed[a].1, &self.keyed[b].1)
    }
}

/// What the lookup structures of an [`Index`] hold ([`Index::footprint`]).
/// Every figure grows with the number of records; none with ports ×
/// records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Footprint {
    /// Lists in the map by port (ports outside every range).
    pub port_lists: usize,
    /// Entries in those lists.
    pub port_entries: usize,
    /// Range records in the range index.
    pub ranges: usize,
    /// Aligned blocks holding them (at most 32 per range).
    pub range_blocks: usize,
    /// Segments: runs of ports covered by the same ranges (at most two per
    /// range plus one, and at most 65,536).
    pub range_segments: usize,
    /// Single-port records of ports inside ranges.
    pub inner_singles: usize,
    /// Entries of the lists built on demand for ports inside ranges and
    /// kept, over every version still alive (at most
    /// [`RANGE_CACHE_ENTRIES`]).
    pub kept_range_entries: u64,
    /// Lists in the map by name.
    pub name_lists: usize,
    /// Entries in those lists.
    pub name_entries: usize,
}

/// Builds the port and name lists for the ports and names in `scope`,
/// sorted by port and by name, each list in canonical order; ports and
/// names in scope that no record answers are absent from the result. Port
/// lists are made only for ports outside every range of `ranges`, from
/// single-port records (the range index answers the others).
pub(super) fn build_maps(
    entries: &mut Entries<'_>,
    scope: &Scope,
    ranges: &RangeIndex,
) -> (PortLists, NameLists) {
    let keyed = entries.keyed;
    let mut single: Vec<(u16, usize)> = keyed
        .iter()
        .enumerate()
        .filter_map(|(pos, (_, record))| {
            let port = record.ports.filter(PortRange::is_single)?.start;
            (scope.has_port(port) && !ranges.covered.contains(port)).then_some((port, pos))
        })
        .collect();
    single.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| entries.canonical(a.1, b.1)));
    let mut ports = PortLists::new();
    for chunk in single.chunk_by(|a, b| a.0 == b.0) {
        let list = chunk
            .iter()
            .map(|&(_, pos)| entries.get(pos))
            .collect::<Vec<_>>();
        ports.push((chunk[0].0, EntryList::new_shared(list)));
    }

    // Names: (lowercase name, position) pairs sorted by name, then grouped.
    let mut named: Vec<(Box<str>, usize)> = Vec::with_capacity(keyed.len());
    for (pos, (_, record)) in keyed.iter().enumerate() {
        for name in record.name.iter().chain(record.aliases.iter()) {
            let folded = fold_name(name);
            if scope.has_name(&folded) {
                named.push((folded.into_boxed_str(), pos));
            }
        }
    }
    named.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| entries.canonical(a.1, b.1)));
    named.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let mut names = NameLists::with_capacity(named.len());
    for chunk in named.chunk_by(|a, b| a.0 == b.0) {
        let list = chunk
            .iter()
            .map(|&(_, pos)| entries.get(pos))
            .collect::<Vec<_>>();
        names.push((chunk[0].0.clone(), EntryList::new_shared(list)));
    }
    (ports, names)
}

/// Whether two lists hold the same records under the same keys (unchanged
/// records keep their `Arc` across reloads, so pointers decide). A list
/// judged the same is kept, entries and all, so this must stay exact:
/// each entry's key and record, in order, must be equal for the lists to
/// be.
pub(super) fn same_list(a: &[Arc<IndexEntry>], b: &[Arc<IndexEntry>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| Arc::ptr_eq(&x.record, &y.record) && x.key == y.key)
}

/// Brings `map` to hold every list of `target` (sorted by key), inserting
/// or replacing only where the list changed; the first half of applying a
/// diff ([`remove_stale`] is the second).
pub(super) fn upsert<K>(map: &DashMap<K, RecordList, FxBuildHasher>, target: &[(K, RecordList)])
where
    K: std::hash::Hash + Eq + Clone,
{
    for (key, list) in target {
        // The read guard is dropped at the end of this statement, before the
        // insert takes the shard's write lock.
        let unchanged = map.get(key).is_some_and(|cur| same_list(&cur, list));
        if !unchanged {
            map.insert(key.clone(), Arc::clone(list));
        }
    }
}

/// Removes every in-scope key of `map` that `target` (sorted by key)
/// lacks; run after [`upsert`], so a key present in both versions is never
/// missing.
pub(super) fn remove_stale<K>(
    map: &DashMap<K, RecordList, FxBuildHasher>,
    target: &[(K, RecordList)],
    in_scope: impl Fn(&K) -> bool,
) where
    K: std::hash::Hash + Ord + Clone,
{
    let holds = |key: &K| target.binary_search_by(|(k, _)| k.cmp(key)).is_ok();
    let stale: Vec<K> = map
        .iter()
        .filter(|entry| in_scope(entry.key()) && !holds(entry.key()))
        .map(|entry| entry.key().clone())
        .collect();
    for key in stale {
        map.remove(&key);
    }
}
