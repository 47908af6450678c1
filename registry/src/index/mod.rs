//! [`Index`]: the live, concurrent index that answers lookups while reloads
//! are applied.
//!
//! # Layout
//! * this module: [`Index`] itself (lookups, applying a reload) and what
//!   its methods answer;
//! * `maps`: [`IndexEntry`], the shared entry lists, and building and
//!   patching the maps by port and by name;
//! * `ranges`: port ranges as intervals (the range index and the budget of
//!   the lists it builds on demand);
//! * `snapshot`: [`Snapshot`], the immutable record set of one version;
//! * `guard`: [`ReloadGuard`] and [`ApplyError`], what a reload must pass.
//!
//! # Structure
//! * `by_port`: a [`DashMap`] from each port that no range covers to its
//!   single-port records, all protocols together, in canonical order
//!   ([`crate::query::canonical_cmp`]).
//! * `ranges`: a `RangeIndex` of one version, swapped whole: the records
//!   of port ranges (6000-6063) as intervals, and everything that answers a
//!   port some range covers (the single-port records there included). See
//!   "Ranges" below.
//! * `by_name`: a [`DashMap`] from each lowercase name and alias to its
//!   records, in canonical order.
//! * `snapshot`: the current [`Snapshot`], an immutable record set of one
//!   version, for scans (list, search), info and diffs. It carries the
//!   current version and content id ([`ContentId`]).
//!
//! # Ranges
//! A range is never expanded to its ports, so memory grows with records,
//! not with ports × records (65,536 rows of `0-65535` are 65,536 entries).
//! The `RangeIndex` holds:
//! * a bitmap of the ports some range covers (8 KiB): a port outside every
//!   range costs one map read, as before, and a miss one more bit test;
//! * the range records in canonical order, each stored in at most 32
//!   aligned power-of-two blocks of 0-65535 (a dyadic decomposition): the
//!   ranges covering a port are those of the 17 blocks on its path;
//! * the segments: maximal runs of ports covered by the same ranges (at
//!   most two per range, and at most 65,536);
//! * the single-port records of covered ports.
//!
//! The list answering a covered port is built on its first lookup: the
//! ranges covering its segment, shared by every port of the segment that
//! has no single-port record (so 6000-6063 share one list), or that list
//! merged with the port's own records. Lists built
//! on demand are kept while their entries, over every version still alive,
//! stay within [`RANGE_CACHE_ENTRIES`]; past it a list serves its lookup
//! and is dropped (it is then built for each lookup), so memory stays
//! bounded whatever the ports asked.
//!
//! # Reload semantics (the invariants)
//! 1. A reload parses and validates the new registry completely off to the
//!    side (the caller does that; [`Index::apply`] receives a finished
//!    [`Registry`]) and passes the [`ReloadGuard`].
//! 2. It computes the [`Diff`] against the current snapshot. An empty diff
//!    changes nothing and does not move the version.
//! 3. It applies the diff to the maps: **upserts before removals**, so a key
//!    present in both versions is never missing from a map, not even for a
//!    moment. The new `RangeIndex` is published between the two: a port
//!    that a range leaves gets its list in `by_port` before the range index
//!    stops answering it, and a port that a range starts to cover loses its
//!    `by_port` list only after the range index answers it.
//! 4. It then publishes the new snapshot, which carries the new version
//!    and content id (release ordering). A point lookup reads them from the
//!    snapshot (acquire) *before* the map, so the version and content id
//!    it reports are never newer than its data.
//! 5. Scans read one [`Snapshot`], so a listing always matches exactly one
//!    version.
//! 6. Writers are serialised by a mutex; readers never take it.
//!
//! Unchanged records keep their `Arc` across reloads, so a map entry whose
//! records did not change is recognised by pointer and left alone. The
//! range index is rebuilt for each reload (O(records), no per-port work),
//! and takes over from the previous one every list built on demand for a
//! port or segment that the diff did not touch.
//!
//! The index knows nothing of how its answers are sent: a lookup
//! ([`Index::lookup_port`], [`Index::lookup_name`]) answers the shared
//! entries themselves, and a serving layer keeps whatever it derives from
//! them on its own side.

mod guard;
mod maps;
mod ranges;
mod snapshot;
#[cfg(test)]
mod tests;

pub use guard::{ApplyError, ReloadGuard};
pub use maps::{Footprint, IndexEntry};
pub use ranges::RANGE_CACHE_ENTRIES;
pub use snapshot::Snapshot;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use crate::content::ContentId;
use crate::diff::{Diff, KeyedRecord};
use crate::model::{Protocol, Record, RecordKey, folded_name};
use crate::registry::{Registry, SourceInfo};

use maps::*;
use ranges::*;

/// The records of a point lookup, without their keys ([`EntryLookup`]'s
/// records, for callers that only read them).
#[derive(Debug, Clone, PartialEq)]
pub struct LookupResult {
    /// The version read before the data (never newer than the data).
    pub version: u64,
    /// The content id of that version.
    pub content_id: ContentId,
    /// Matching records in canonical order; empty when none.
    pub records: Vec<Arc<Record>>,
}

/// The answer to a point lookup: the index's shared entries (record and
/// key), in canonical order.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryLookup {
    /// The version read before the data (never newer than the data).
    pub version: u64,
    /// The content id of that version.
    pub content_id: ContentId,
    /// Matching entries in canonical order; empty when none.
    pub entries: Vec<Arc<IndexEntry>>,
}

impl EntryLookup {
    /// The records alone.
    pub fn into_records(self) -> LookupResult {
        LookupResult {
            version: self.version,
            content_id: self.content_id,
            records: self
                .entries
                .into_iter()
                .map(|e| Arc::clone(&e.record))
                .collect(),
        }
    }
}

/// An applied change: what a reload did.
#[derive(Debug, Clone)]
pub struct Change {
    /// The version before.
    pub from_version: u64,
    /// The version after.
    pub to_version: u64,
    /// The content id before.
    pub from_content: ContentId,
    /// The content id after.
    pub to_content: ContentId,
    /// What changed.
    pub diff: Diff,
    /// How many records the registry holds after the change.
    pub records_after: usize,
}

/// The live index. Cheap to share behind an `Arc`; every method takes
/// `&self`.
#[derive(Debug)]
pub struct Index {
    /// Ports outside every range: their single-port records.
    by_port: DashMap<u16, RecordList, FxBuildHasher>,
    /// Ports inside ranges, as intervals (see "Ranges" in the module docs).
    ranges: ArcSwap<RangeIndex>,
    /// Bounds the lists `ranges` builds on demand.
    range_budget: RangeBudget,
    by_name: DashMap<Box<str>, RecordList, FxBuildHasher>,
    /// The current record set; its version and content id are the
    /// index's (stored after the maps, see the module docs).
    snapshot: ArcSwap<Snapshot>,
    /// Serialises writers (reloads); readers never take it.
    writer: Mutex<()>,
}

impl Index {
    /// An index serving `registry` at version 1.
    pub fn new(registry: Registry) -> Self {
        let keyed = keyed_records(registry.records);
        Self::from_keyed(keyed, registry.source, 1)
    }

    /// An index serving already-keyed records at `version` (used by
    /// replicas that mirror a server's versions). Each key must be its
    /// record's, as [`RecordKey::of`] makes it: lookups filter by the key's
    /// protocol. The same holds for [`Index::replace_keyed`] and the
    /// upserts of [`Index::apply_delta`].
    pub fn from_keyed(keyed: Vec<KeyedRecord>, source: SourceInfo, version: u64) -> Self {
        let content_id = ContentId::of(&keyed);
        let snapshot = Snapshot::build(version, content_id, source, keyed);
        let mut entries = Entries::new(&snapshot.keyed);
        let ranges = RangeIndex::build(&mut entries, None);
        let (ports, names) = build_maps(&mut entries, &Scope::All, &ranges);
        let by_port = DashMap::with_capacity_and_hasher(ports.len(), FxBuildHasher);
        for (port, list) in ports {
            by_port.insert(port, list);
        }
        let by_name = DashMap::with_capacity_and_hasher(names.len(), FxBuildHasher);
        for (name, list) in names {
            by_name.insert(name, list);
        }
        Self {
            by_port,
            ranges: ArcSwap::from_pointee(ranges),
            range_budget: RangeBudget::new(RANGE_CACHE_ENTRIES),
            by_name,
            snapshot: ArcSwap::from_pointee(snapshot),
            writer: Mutex::new(()),
        }
    }

    /// The current version.
    pub fn version(&self) -> u64 {
        self.snapshot.load().version()
    }

    /// The current version and its content id, read together.
    pub fn stamp(&self) -> (u64, ContentId) {
        let snapshot = self.snapshot.load();
        (snapshot.version(), snapshot.content_id())
    }

    /// The current immutable record set.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Every entry covering `port` (exact ports and ranges), matching
    /// `protocol` (`None` = any; records without a protocol match every
    /// protocol), in canonical order, with the version read before them
    /// (see the module docs). The entries are shared with the index.
    pub fn lookup_port(&self, port: u16, protocol: Option<&Protocol>) -> EntryLookup {
        let stamp = self.stamp();
        // Ports outside every range: one map read. A miss asks the range
        // index (one bit test when no range covers the port either). The
        // list is shared (one reference count) and read after its shard's
        // lock is released.
        let list = match self.by_port.get(&port) {
            Some(list) => Some(Arc::clone(&*list)),
            None => self
                .ranges
                .load()
                .list(port, &self.range_budget)
                .map(|list| list.to_shared()),
        };
        matches_of(stamp, list.as_deref(), protocol)
    }

    /// Every entry whose record's name or alias equals `name`
    /// case-insensitively, matching `protocol`, in canonical order, with
    /// the version read before them.
    pub fn lookup_name(&self, name: &str, protocol: Option<&Protocol>) -> EntryLookup {
        let stamp = self.stamp();
        let list = self.name_list(name);
        matches_of(stamp, list.as_deref(), protocol)
    }

    /// What the lookup structures hold: every figure grows with the
    /// records, none with ports × records. For tests and diagnostics: it
    /// walks both maps.
    pub fn footprint(&self) -> Footprint {
        let ranges = self.ranges.load();
        let mut footprint = Footprint {
            ranges: ranges.entries.len(),
            range_blocks: ranges.blocks.len(),
            range_segments: ranges.bounds.len(),
            inner_singles: ranges.singles.iter().map(|(_, s)| s.len()).sum(),
            kept_range_entries: self
                .range_budget
                .held
                .load(std::sync::atomic::Ordering::Relaxed),
            ..Footprint::default()
        };
        for list in self.by_port.iter() {
            footprint.port_lists += 1;
            footprint.port_entries += list.len();
        }
        for list in self.by_name.iter() {
            footprint.name_lists += 1;
            footprint.name_entries += list.len();
        }
        footprint
    }

    /// The list of `name` (folded), if any.
    fn name_list(&self, name: &str) -> Option<RecordList> {
        let key = folded_name(name);
        self.by_name.get(&*key).map(|list| Arc::clone(&*list))
    }

    /// Replaces the registry with `registry` (parsed and validated by the
    /// caller), applying the difference as a diff; see the module docs for
    /// the invariants. Returns `Ok(None)` when nothing changed (the source
    /// information is still updated, the version is not).
    pub fn apply(
        &self,
        registry: Registry,
        guard: &ReloadGuard,
    ) -> Result<Option<Change>, ApplyError> {
        // Keys first (they borrow the records), then the records by value:
        // the ones equal to the current registry's are dropped during the
        // diff instead of being shared first, which keeps a reload's memory
        // at one parsed copy of the file.
        let keys = registry.keys();
        let Registry { records, source } = registry;
        self.install(keys.into_iter().zip(records), source, None, Some(guard))
    }

    /// Replaces the records of one layer (`registry`'s records, already
    /// labelled by [`Registry::into_layer`]) and keeps every other layer's
    /// records as they are (shared, not copied). The guard compares the
    /// layer's record counts, old and new; `source` describes the whole
    /// registry afterwards.
    ///
    /// # Errors
    /// When the guard refuses the layer's new records.
    pub fn apply_layer(
        &self,
        layer: &str,
        registry: Registry,
        source: SourceInfo,
        guard: &ReloadGuard,
    ) -> Result<Option<Change>, ApplyError> {
        let current = self.snapshot();
        let (others, this): (Vec<&KeyedRecord>, Vec<&KeyedRecord>) = current
            .keyed
            .iter()
            .partition(|(key, _)| &*key.layer != layer);
        guard.check(this.len(), registry.len())?;
        let keys = registry.keys();
        let keyed: Vec<KeyedRecord> = others
            .into_iter()
            .map(|(key, record)| (key.clone(), Arc::clone(record)))
            .chain(
                keys.into_iter()
                    .zip(registry.records.into_iter().map(Arc::new)),
            )
            .collect();
        drop(current);
        self.install(keyed.into_iter(), source, None, None)
    }

    /// Replaces the registry with already-keyed records and sets the version
    /// to `version` (replicas mirroring a server snapshot). No shrink guard.
    pub fn replace_keyed(
        &self,
        keyed: Vec<KeyedRecord>,
        source: SourceInfo,
        version: u64,
    ) -> Result<Option<Change>, ApplyError> {
        self.install(keyed.into_iter(), source, Some(version), None)
    }

    /// Applies a delta received from elsewhere (a server's watch stream):
    /// `upserts` replace records with the same key or are appended,
    /// `removed` keys are dropped, and the version becomes `version`.
    pub fn apply_delta(
        &self,
        upserts: Vec<KeyedRecord>,
        removed: &[RecordKey],
        version: u64,
    ) -> Result<Option<Change>, ApplyError> {
        let current = self.snapshot();
        let removed: std::collections::HashSet<&RecordKey> = removed.iter().collect();
        let mut replacements: HashMap<RecordKey, Arc<Record>> = upserts.into_iter().collect();
        let mut keyed: Vec<KeyedRecord> = Vec::with_capacity(current.len() + replacements.len());
        for (key, record) in &current.keyed {
            if removed.contains(key) {
                continue;
            }
            match replacements.remove(key) {
                Some(new) => keyed.push((key.clone(), new)),
                None => keyed.push((key.clone(), Arc::clone(record))),
            }
        }
        let mut appended: Vec<KeyedRecord> = replacements.into_iter().collect();
        appended.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.extend(appended);
        self.install(
            keyed.into_iter(),
            current.source.clone(),
            Some(version),
            None,
        )
    }

    fn install<R>(
        &self,
        keyed: impl ExactSizeIterator<Item = (RecordKey, R)>,
        source: SourceInfo,
        version: Option<u64>,
        guard: Option<&ReloadGuard>,
    ) -> Result<Option<Change>, ApplyError>
    where
        R: std::borrow::Borrow<Record> + Into<Arc<Record>>,
    {
        // A poisoned lock only means another writer panicked; the maps are
        // still consistent (each step leaves them valid), so carry on.
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.snapshot.load_full();
        if let Some(guard) = guard {
            guard.check(current.len(), keyed.len())?;
        } else if keyed.len() == 0 {
            return Err(ApplyError::Empty);
        }
        // Unchanged records keep the current Arc, so unchanged map entries
        // are recognised by pointer and left alone.
        let (keyed, diff) = crate::diff::reconcile(&current.keyed, keyed);
        let to_version = version.unwrap_or(current.version + 1);
        // Nothing changed (and no explicit version to mirror): keep the
        // version; only refresh what is known about the source.
        if diff.is_empty() && (version.is_none() || to_version == current.version) {
            if source != current.source {
                let mut same = Snapshot::build(current.version, current.content_id, source, keyed);
                same.loaded_at = current.loaded_at;
                self.snapshot.store(Arc::new(same));
            }
            return Ok(None);
        }
        let to_content = current.content_id.after(&diff);
        let snapshot = Snapshot::build(to_version, to_content, source, keyed);
        let records_after = snapshot.len();
        // Only the ports and names the diff touched can answer differently;
        // a small change rebuilds a handful of lists, not all 60,000. A diff
        // touching most records touches nearly every list anyway, and
        // rebuilding all of them skips working out which.
        let scope = if diff.len() * 2 > snapshot.len() {
            Scope::All
        } else {
            Scope::touched_by(&diff)
        };
        let mut entries = Entries::new(&snapshot.keyed);
        // The lists built on demand for untouched ports and segments carry
        // over (a diff touching most records carries nothing over).
        let previous = self.ranges.load_full();
        let carry = matches!(scope, Scope::Touched { .. }).then(|| (&*previous, &scope));
        let ranges = RangeIndex::build(&mut entries, carry);
        let (ports, names) = build_maps(&mut entries, &scope, &ranges);
        drop(entries);
        // Ports a range leaves get their `by_port` list before the new
        // range index stops answering them; ports a range starts to cover
        // lose theirs only once it answers them (module docs, step 3).
        upsert(&self.by_port, &ports);
        self.ranges.store(Arc::new(ranges));
        drop(previous);
        remove_stale(&self.by_port, &ports, |port| scope.has_port(*port));
        upsert(&self.by_name, &names);
        remove_stale(&self.by_name, &names, |name| scope.has_name(name));
        // The snapshot carries the version: storing it last publishes both
        // (release), after every map.
        self.snapshot.store(Arc::new(snapshot));
        Ok(Some(Change {
            from_version: current.version,
            to_version,
            from_content: current.content_id,
            to_content,
            diff,
            records_after,
        }))
    }
}

/// Keys records (see [`RecordKey`] for ordinals, counted in the order
/// given: source order, or any order that keeps rows with the same name,
/// ports and protocol in source order, such as a listing). Positions are
/// kept as the records carry them.
pub fn keyed_records(records: Vec<Record>) -> Vec<KeyedRecord> {
    let registry = Registry::with_positions(records, SourceInfo::default());
    let keys = registry.keys();
    keys.into_iter()
        .zip(registry.records)
        .map(|(k, r)| (k, Arc::new(r)))
        .collect()
}

fn matching<'a>(
    list: &'a [Arc<IndexEntry>],
    protocol: Option<&'a Protocol>,
) -> impl Iterator<Item = &'a Arc<IndexEntry>> + 'a {
    // The key holds the record's protocol (keys are `RecordKey::of` their
    // record; see `Index::from_keyed`), so filtering reads only the entry;
    // without a protocol every entry matches and none is read.
    list.iter().filter(move |e| {
        protocol.is_none_or(|query| Protocol::matches(e.key.protocol.as_ref(), Some(query)))
    })
}

/// The entries of `list` matching `protocol`, as a lookup's answer.
fn matches_of(
    (version, content_id): (u64, ContentId),
    list: Option<&EntryList>,
    protocol: Option<&Protocol>,
) -> EntryLookup {
    EntryLookup {
        version,
        content_id,
        entries: matching(list.map_or(&[], |list| &list[..]), protocol)
            .cloned()
            .collect(),
    }
}
