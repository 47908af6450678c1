//! [`Index`]: the live, concurrent index that answers lookups while reloads
//! are applied.
//!
//! # Structure
//! * `by_port`: a [`DashMap`] from each port that no range covers to its
//!   single-port records, all protocols together, in canonical order
//!   ([`query::canonical_cmp`]).
//! * `ranges`: a `RangeIndex` of one version, swapped whole: the records
//!   of port ranges (6000-6063) as intervals, and everything that answers a
//!   port some range covers (the single-port records there included). See
//!   "Ranges" below.
//! * `by_name`: a [`DashMap`] from each lowercase name and alias to its
//!   records, in canonical order.
//! * `snapshot`: the current [`Snapshot`], an immutable record set of one
//!   version, for scans (list, search), info and diffs.
//! * `version`: the current version number.
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
//! 4. It then publishes the new snapshot and only then moves `version`
//!    (release ordering). A point lookup reads `version` (acquire) *before*
//!    the map, so the version it reports is never newer than its data.
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use dashmap::mapref::one::Ref;
use rustc_hash::FxBuildHasher;

use crate::diff::{Diff, KeyedRecord};
use crate::model::{PortRange, Protocol, Record, RecordKey, RecordState, fold_name};
use crate::query::{self, Filter, MatchRank, SearchHits, SearchQuery};
use crate::registry::{Registry, SourceInfo};

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
struct EntryList {
    entries: Box<[Arc<IndexEntry>]>,
    /// For a list built on demand for ports inside ranges: its entries,
    /// counted against [`RANGE_CACHE_ENTRIES`] while it lives.
    charge: Option<Charge>,
}

impl EntryList {
    fn new_shared(entries: impl IntoIterator<Item = Arc<IndexEntry>>) -> RecordList {
        Self::charged(entries.into_iter().collect(), None)
    }

    fn charged(entries: Vec<Arc<IndexEntry>>, charge: Option<Charge>) -> RecordList {
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

type RecordList = Arc<EntryList>;

/// How many entries the lists built on demand for ports inside ranges may
/// hold together, over every version still alive (see "Ranges" in the
/// module docs): 2^20 entries, 8 MiB of pointers. The real IANA registry needs about 1,500
/// (763 ranges, most covering their ports alone); a registry of a million
/// records all covering one port range still fits in one shared list.
/// Past the bound, lookups of ports inside ranges build their list for
/// each lookup instead of keeping it: slower, never larger.
pub const RANGE_CACHE_ENTRIES: u64 = 1 << 20;

/// Entries of a kept list counted against the index's budget; given back
/// when the list is dropped.
struct Charge {
    held: Arc<AtomicU64>,
    entries: u64,
}

impl Charge {
    /// A charge of `entries` on `held`, unless that would take it past
    /// `limit`.
    fn take(held: &Arc<AtomicU64>, entries: usize, limit: u64) -> Option<Self> {
        let entries = u64::try_from(entries).ok()?;
        held.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
            now.checked_add(entries).filter(|&total| total <= limit)
        })
        .ok()?;
        Some(Self {
            held: Arc::clone(held),
            entries,
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.held.fetch_sub(self.entries, Ordering::Relaxed);
    }
}

impl PartialEq for Charge {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Charge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} entries charged", self.entries)
    }
}

/// The budget of the lists built on demand for ports inside ranges.
#[derive(Debug)]
struct RangeBudget {
    /// Entries held by kept lists, over every version still alive.
    held: Arc<AtomicU64>,
    /// At most this many ([`RANGE_CACHE_ENTRIES`]).
    limit: u64,
}

impl RangeBudget {
    fn new(limit: u64) -> Self {
        Self {
            held: Arc::new(AtomicU64::new(0)),
            limit,
        }
    }

    fn charge(&self, entries: usize) -> Option<Charge> {
        Charge::take(&self.held, entries, self.limit)
    }
}

/// Guard rails applied to every reload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReloadGuard {
    /// Reject a new registry whose record count is lower than the current
    /// one by more than this fraction (0.5 = refuse to lose more than half).
    /// 1.0 disables the check.
    pub max_shrink: f64,
}

impl Default for ReloadGuard {
    fn default() -> Self {
        Self { max_shrink: 0.5 }
    }
}

impl ReloadGuard {
    /// A guard that accepts any non-empty registry.
    pub fn permissive() -> Self {
        Self { max_shrink: 1.0 }
    }

    /// Checks a record count change.
    pub fn check(&self, current: usize, new: usize) -> Result<(), ApplyError> {
        if new == 0 {
            return Err(ApplyError::Empty);
        }
        let floor = (current as f64) * (1.0 - self.max_shrink.clamp(0.0, 1.0));
        if (new as f64) < floor {
            return Err(ApplyError::Shrink {
                current,
                new,
                max_shrink: self.max_shrink,
            });
        }
        Ok(())
    }
}

/// Why a new registry was not applied. The current registry keeps serving.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The new registry has no records.
    #[error("refusing an empty registry")]
    Empty,
    /// The new registry shrinks by more than the guard allows.
    #[error(
        "refusing a registry of {new} records: it would drop {dropped} of the current {current} \
         (more than the allowed {pct:.0}%)",
        dropped = current - new,
        pct = max_shrink * 100.0
    )]
    Shrink {
        /// Current record count.
        current: usize,
        /// New record count.
        new: usize,
        /// The guard's limit.
        max_shrink: f64,
    },
}

/// The records of a point lookup, without their keys ([`EntryLookup`]'s
/// records, for callers that only read them).
#[derive(Debug, Clone, PartialEq)]
pub struct LookupResult {
    /// The version read before the data (never newer than the data).
    pub version: u64,
    /// Matching records in canonical order; empty when none.
    pub records: Vec<Arc<Record>>,
}

/// The answer to a point lookup: the index's shared entries (record and
/// key), in canonical order.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryLookup {
    /// The version read before the data (never newer than the data).
    pub version: u64,
    /// Matching entries in canonical order; empty when none.
    pub entries: Vec<Arc<IndexEntry>>,
}

impl EntryLookup {
    /// The records alone.
    pub fn into_records(self) -> LookupResult {
        LookupResult {
            version: self.version,
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
    /// What changed.
    pub diff: Diff,
    /// How many records the registry holds after the change.
    pub records_after: usize,
}

/// An immutable record set of one version, for scans.
#[derive(Debug)]
pub struct Snapshot {
    version: u64,
    source: SourceInfo,
    loaded_at: SystemTime,
    /// Records with their keys, in source order.
    keyed: Vec<KeyedRecord>,
    /// Indices into `keyed` in scan order ([`query::scan_cmp`]).
    scan_order: Vec<u32>,
    /// Lowercase name and description of every record, so searches do not
    /// lowercase 14,500 strings per call.
    search_text: SearchText,
}

/// The folded ([`fold_name`]) name and description of every record of a
/// snapshot, kept in one string rather than two allocations per record.
#[derive(Debug, Default)]
struct SearchText {
    /// Every record's folded name then folded description, back to back.
    text: String,
    /// Per record (same indices as `keyed`): where its name ends and its
    /// description starts, and where its description ends. Its name starts
    /// where the previous record's description ends.
    bounds: Vec<(u32, u32)>,
}

impl SearchText {
    fn build(keyed: &[KeyedRecord]) -> Self {
        let bytes: usize = keyed
            .iter()
            .map(|(_, r)| r.name.as_deref().map_or(0, str::len) + r.description.len())
            .sum();
        let mut out = Self {
            text: String::with_capacity(bytes),
            bounds: Vec::with_capacity(keyed.len()),
        };
        for (_, record) in keyed {
            out.push_folded(record.name.as_deref().unwrap_or(""));
            let name_end = out.offset();
            out.push_folded(&record.description);
            let description_end = out.offset();
            out.bounds.push((name_end, description_end));
        }
        out
    }

    fn push_folded(&mut self, text: &str) {
        if text.is_ascii() {
            self.text
                .extend(text.chars().map(|c| c.to_ascii_lowercase()));
        } else {
            self.text.push_str(&fold_name(text));
        }
    }

    fn offset(&self) -> u32 {
        // A registry's text is far below 4 GiB (the real one holds 1 MB).
        u32::try_from(self.text.len()).expect("search text under 4 GiB")
    }

    /// The folded name and description of record `i`.
    fn get(&self, i: usize) -> (&str, &str) {
        let start = i.checked_sub(1).map_or(0, |p| self.bounds[p].1) as usize;
        let (name_end, description_end) = self.bounds[i];
        (
            &self.text[start..name_end as usize],
            &self.text[name_end as usize..description_end as usize],
        )
    }
}

impl Snapshot {
    fn build(version: u64, source: SourceInfo, keyed: Vec<KeyedRecord>) -> Self {
        let mut scan_order: Vec<u32> = (0..keyed.len() as u32).collect();
        scan_order.sort_by(|&a, &b| {
            query::scan_cmp(
                (&keyed[a as usize].1, a as usize),
                (&keyed[b as usize].1, b as usize),
            )
        });
        let search_text = SearchText::build(&keyed);
        Self {
            version,
            source,
            loaded_at: SystemTime::now(),
            keyed,
            scan_order,
            search_text,
        }
    }

    /// The version of this record set.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Where the records came from.
    pub fn source(&self) -> &SourceInfo {
        &self.source
    }

    /// When this record set was installed.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.keyed.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.keyed.is_empty()
    }

    /// Records with their keys, in source order.
    pub fn keyed(&self) -> &[KeyedRecord] {
        &self.keyed
    }

    /// Records in scan order — (port, protocol, name), records without a
    /// port last — that pass `filter`.
    pub fn list<'a>(&'a self, filter: &'a Filter) -> impl Iterator<Item = &'a KeyedRecord> + 'a {
        self.scan_order
            .iter()
            .map(|&i| &self.keyed[i as usize])
            .filter(move |(_, r)| filter.matches(r))
    }

    /// Ranked search: exact name, then name prefix, then name substring,
    /// then description; ties in scan order. At most `query.limit` results.
    pub fn search(&self, query: &SearchQuery) -> Vec<(MatchRank, &KeyedRecord)> {
        self.search_hits(query).collect()
    }

    /// [`Snapshot::search`] walked lazily, in bounded steps, holding
    /// nothing per hit (see [`SearchHits`]).
    pub fn search_hits(&self, query: &SearchQuery) -> SearchHits<'_> {
        SearchHits::new(self, query)
    }

    /// The record at scan position `pos` with its folded name and
    /// description; `None` past the end.
    pub(crate) fn scan_text(&self, pos: usize) -> Option<(&KeyedRecord, &str, &str)> {
        let i = *self.scan_order.get(pos)? as usize;
        let (name, description) = self.search_text.get(i);
        Some((&self.keyed[i], name, description))
    }

    /// Record counts by state.
    pub fn counts_by_state(&self) -> BTreeMap<RecordState, usize> {
        let mut out = BTreeMap::new();
        for (_, r) in &self.keyed {
            *out.entry(r.state).or_insert(0) += 1;
        }
        out
    }

    /// Record counts by protocol name (`none` for rows without one).
    pub fn counts_by_protocol(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (_, r) in &self.keyed {
            let key = r.protocol.as_ref().map_or("none", |p| p.as_str());
            *out.entry(key.to_string()).or_insert(0) += 1;
        }
        out
    }

    /// A copy of the record set as a [`Registry`] (source order), e.g. for
    /// export.
    pub fn to_registry(&self) -> Registry {
        Registry::new(
            self.keyed.iter().map(|(_, r)| Record::clone(r)).collect(),
            self.source.clone(),
        )
    }
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
    snapshot: ArcSwap<Snapshot>,
    version: AtomicU64,
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
        let snapshot = Snapshot::build(version, source, keyed);
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
            version: AtomicU64::new(version),
            writer: Mutex::new(()),
        }
    }

    /// The current version.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
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
        let version = self.version();
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
        matches_of(version, list.as_deref(), protocol)
    }

    /// Every entry whose record's name or alias equals `name`
    /// case-insensitively, matching `protocol`, in canonical order, with
    /// the version read before them.
    pub fn lookup_name(&self, name: &str, protocol: Option<&Protocol>) -> EntryLookup {
        let version = self.version();
        let list = self.name_list(name);
        matches_of(version, list.as_deref(), protocol)
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
            kept_range_entries: self.range_budget.held.load(Ordering::Relaxed),
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
        let folded;
        let key = if name.chars().any(char::is_uppercase) {
            folded = fold_name(name);
            folded.as_str()
        } else {
            name
        };
        self.by_name.get(key).map(|list| Arc::clone(&*list))
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
                let mut same = Snapshot::build(current.version, source, keyed);
                same.loaded_at = current.loaded_at;
                self.snapshot.store(Arc::new(same));
            }
            return Ok(None);
        }
        let snapshot = Snapshot::build(to_version, source, keyed);
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
        self.snapshot.store(Arc::new(snapshot));
        self.version.store(to_version, Ordering::Release);
        Ok(Some(Change {
            from_version: current.version,
            to_version,
            diff,
            records_after,
        }))
    }
}

/// Keys records in source order (see [`RecordKey`] for ordinals).
pub fn keyed_records(records: Vec<Record>) -> Vec<KeyedRecord> {
    let registry = Registry::new(records, SourceInfo::default());
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
fn matches_of(version: u64, list: Option<&EntryList>, protocol: Option<&Protocol>) -> EntryLookup {
    EntryLookup {
        version,
        entries: matching(list.map_or(&[], |list| &list[..]), protocol)
            .cloned()
            .collect(),
    }
}

/// Port lists, in port order.
type PortLists = Vec<(u16, RecordList)>;
/// Name lists, in name order.
type NameLists = Vec<(Box<str>, RecordList)>;

/// A set of ports, one bit each (8 KiB).
#[derive(Clone, PartialEq, Eq)]
struct PortSet(Box<[u64]>);

impl PortSet {
    const WORDS: usize = (u16::MAX as usize + 1) / 64;

    fn new() -> Self {
        Self(vec![0; Self::WORDS].into_boxed_slice())
    }

    /// The ports of `ranges`, which must be sorted by start: each port is
    /// written once, however many ranges cover it.
    fn of_sorted(ranges: impl IntoIterator<Item = PortRange>) -> Self {
        let mut set = Self::new();
        // The first port not yet known to be in the set (up to 65,536).
        let mut next = 0u32;
        for range in ranges {
            let start = next.max(u32::from(range.start));
            if start <= u32::from(range.end) {
                set.fill(start as usize, usize::from(range.end));
            }
            next = next.max(u32::from(range.end) + 1);
        }
        set
    }

    fn fill(&mut self, start: usize, end: usize) {
        for (word, mask) in port_masks(start, end) {
            self.0[word] |= mask;
        }
    }

    fn contains(&self, port: u16) -> bool {
        self.0[usize::from(port) / 64] & (1 << (port % 64)) != 0
    }

    /// Whether any port of `start..=end` is in the set.
    fn any_in(&self, start: u16, end: u16) -> bool {
        port_masks(usize::from(start), usize::from(end))
            .any(|(word, mask)| self.0[word] & mask != 0)
    }
}

/// The words of a [`PortSet`] holding ports `start..=end`, each with the
/// mask of those ports' bits.
fn port_masks(start: usize, end: usize) -> impl Iterator<Item = (usize, u64)> {
    (start / 64..=end / 64).map(move |word| {
        let low = if word == start / 64 { start % 64 } else { 0 };
        let high = if word == end / 64 { end % 64 } else { 63 };
        (word, (u64::MAX >> (63 - (high - low))) << low)
    })
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports: u32 = self.0.iter().map(|w| w.count_ones()).sum();
        write!(f, "{ports} ports")
    }
}

/// Which ports and names a map (re)build covers.
#[derive(Debug)]
enum Scope {
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
    fn touched_by(diff: &Diff) -> Self {
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

    fn has_port(&self, port: u16) -> bool {
        match self {
            Self::All => true,
            Self::Touched { ports, .. } => ports.contains(port),
        }
    }

    /// Whether a touched range (not a single port) covers any port of
    /// `start..=end`: whether the ranges covering those ports may differ.
    fn has_range_in(&self, start: u16, end: u16) -> bool {
        match self {
            Self::All => true,
            Self::Touched { range_ports, .. } => range_ports.any_in(start, end),
        }
    }

    fn has_name(&self, folded: &str) -> bool {
        match self {
            Self::All => true,
            Self::Touched { names, .. } => names.contains(folded),
        }
    }
}

/// The records of one version, and one shared entry per record, made on
/// first use: a port list, a name list and the range index holding the
/// same record share its entry.
struct Entries<'a> {
    keyed: &'a [KeyedRecord],
    made: Vec<Option<Arc<IndexEntry>>>,
}

impl<'a> Entries<'a> {
    fn new(keyed: &'a [KeyedRecord]) -> Self {
        Self {
            keyed,
            made: vec![None; keyed.len()],
        }
    }

    /// The entry of the record at `pos` (source order).
    fn get(&mut self, pos: usize) -> Arc<IndexEntry> {
        let (key, record) = &self.keyed[pos];
        Arc::clone(
            self.made[pos]
                .get_or_insert_with(|| Arc::new(IndexEntry::new(key.clone(), Arc::clone(record)))),
        )
    }

    /// Canonical order of the records at two positions.
    fn canonical(&self, a: usize, b: usize) -> std::cmp::Ordering {
        query::canonical_cmp((&self.keyed[a].1, a), (&self.keyed[b].1, b))
    }
}

/// The 17 levels of the dyadic decomposition of 0-65535: blocks of 2^0 to
/// 2^16 ports.
const LEVELS: u32 = 17;

/// The block of `2^level` ports holding `port`, as a number unique over
/// every level.
fn block_of(level: u32, port: u32) -> u32 {
    (level << 16) | (port >> level)
}

/// The aligned blocks that make up `range` exactly, each port in one:
/// at most 32 (two per level below the top).
fn blocks_of(range: PortRange) -> impl Iterator<Item = u32> {
    let mut low = u32::from(range.start);
    let end = u32::from(range.end) + 1;
    std::iter::from_fn(move || {
        if low >= end {
            return None;
        }
        // The largest block aligned at `low` that ends within the range.
        let mut level = low.trailing_zeros().min(LEVELS - 1);
        while low + (1 << level) > end {
            level -= 1;
        }
        let block = block_of(level, low);
        low += 1 << level;
        Some(block)
    })
}

/// Entries in canonical order.
type EntrySlice = Box<[Arc<IndexEntry>]>;

/// Ports inside ranges, as intervals, for one version (see "Ranges" in the
/// module docs). Immutable but for the lists it builds on demand.
#[derive(Debug)]
struct RangeIndex {
    /// The ports some range covers.
    covered: PortSet,
    /// The entries of the range records, in canonical order: a record's
    /// rank is its position here.
    entries: Box<[Arc<IndexEntry>]>,
    /// (block, rank) for every block of every range, sorted.
    blocks: Box<[(u32, u32)]>,
    /// The first port of each segment, sorted, from 0: the segments are
    /// the runs of ports covered by the same ranges (or by none).
    bounds: Box<[u16]>,
    /// Per segment: the list of the ranges covering it, once built.
    segments: Box<[OnceLock<RecordList>]>,
    /// The single-port records of covered ports, by port, each port's in
    /// canonical order.
    singles: Box<[(u16, EntrySlice)]>,
    /// Per covered port with single-port records: its whole list (its
    /// records merged with its segment's ranges), once built.
    merged: DashMap<u16, RecordList, FxBuildHasher>,
}

/// The list answering a port inside ranges.
enum PortList<'a> {
    /// Kept with a segment.
    Segment(&'a RecordList),
    /// Kept for the port, read under its shard's lock.
    Port(Ref<'a, u16, RecordList>),
    /// Built for this lookup only (past the budget).
    Passing(RecordList),
}

impl PortList<'_> {
    fn list(&self) -> &RecordList {
        match self {
            Self::Segment(list) => list,
            Self::Port(list) => list,
            Self::Passing(list) => list,
        }
    }

    fn to_shared(&self) -> RecordList {
        Arc::clone(self.list())
    }
}

impl RangeIndex {
    /// The range index of `entries`' records. With `previous` (the index
    /// it replaces and the scope of the diff between them), every list
    /// `previous` built for a port or segment the diff did not touch is
    /// taken over: its ranges and records are the same.
    fn build(entries: &mut Entries<'_>, previous: Option<(&RangeIndex, &Scope)>) -> Self {
        let keyed = entries.keyed;
        let mut ranged: Vec<usize> = Vec::new();
        let mut single: Vec<(u16, usize)> = Vec::new();
        for (pos, (_, record)) in keyed.iter().enumerate() {
            match record.ports {
                Some(range) if range.is_single() => single.push((range.start, pos)),
                Some(_) => ranged.push(pos),
                None => {}
            }
        }
        let range_of = |pos: usize| keyed[pos].1.ports.expect("a range record has ports");

        // Coverage and segment bounds, from the ranges sorted by start.
        let mut by_start: Vec<PortRange> = ranged.iter().map(|&pos| range_of(pos)).collect();
        by_start.sort_unstable();
        let covered = PortSet::of_sorted(by_start.iter().copied());
        let mut bounds: Vec<u16> = vec![0];
        for range in &by_start {
            bounds.push(range.start);
            if let Some(after) = range.end.checked_add(1) {
                bounds.push(after);
            }
        }
        drop(by_start);
        bounds.sort_unstable();
        bounds.dedup();

        ranged.sort_unstable_by(|&a, &b| entries.canonical(a, b));
        let mut blocks: Vec<(u32, u32)> = Vec::new();
        for (rank, &pos) in ranged.iter().enumerate() {
            // A rank counts range records, fewer than 2^32 in any memory.
            let rank = u32::try_from(rank).expect("fewer than 2^32 ranges");
            blocks.extend(blocks_of(range_of(pos)).map(|block| (block, rank)));
        }
        blocks.sort_unstable();
        let range_entries: Box<[Arc<IndexEntry>]> =
            ranged.iter().map(|&pos| entries.get(pos)).collect();

        single.retain(|&(port, _)| covered.contains(port));
        single.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| entries.canonical(a.1, b.1)));
        let mut singles: Vec<(u16, EntrySlice)> = Vec::new();
        for chunk in single.chunk_by(|a, b| a.0 == b.0) {
            let list = chunk.iter().map(|&(_, pos)| entries.get(pos)).collect();
            singles.push((chunk[0].0, list));
        }

        let this = Self {
            covered,
            entries: range_entries,
            blocks: blocks.into_boxed_slice(),
            segments: bounds.iter().map(|_| OnceLock::new()).collect(),
            bounds: bounds.into_boxed_slice(),
            singles: singles.into_boxed_slice(),
            merged: DashMap::with_hasher(FxBuildHasher),
        };
        if let Some((previous, scope)) = previous {
            this.take_over(previous, scope);
        }
        this
    }

    /// Takes over the lists `previous` built for ports and segments out of
    /// `scope` (see [`RangeIndex::build`]): a segment's list (ranges only)
    /// unless a touched range overlaps it, a port's merged list unless a
    /// touched key covers the port. A list `previous` builds after
    /// this is not taken over; it is built again here when asked.
    fn take_over(&self, previous: &RangeIndex, scope: &Scope) {
        for (segment, slot) in self.segments.iter().enumerate() {
            let (start, end) = self.segment_ports(segment);
            if !self.covered.contains(start) || scope.has_range_in(start, end) {
                continue;
            }
            // The ranges covering `start` did not change, so the previous
            // segment holding `start` had this one's list.
            let old = &previous.segments[previous.segment_of(start)];
            if let Some(list) = old.get() {
                let _ = slot.set(Arc::clone(list));
            }
        }
        for list in previous.merged.iter() {
            let port = *list.key();
            if !scope.has_port(port) && self.singles_at(port).is_some() {
                self.merged.insert(port, Arc::clone(list.value()));
            }
        }
    }

    /// The first and last port of segment `segment`.
    fn segment_ports(&self, segment: usize) -> (u16, u16) {
        let end = self
            .bounds
            .get(segment + 1)
            .map_or(u16::MAX, |next| next - 1);
        (self.bounds[segment], end)
    }

    /// The segment holding `port`.
    fn segment_of(&self, port: u16) -> usize {
        // `bounds` starts at 0, so at least one bound is <= port.
        self.bounds.partition_point(|&start| start <= port) - 1
    }

    /// The single-port records of `port`, if it is covered and has any.
    fn singles_at(&self, port: u16) -> Option<&[Arc<IndexEntry>]> {
        let at = self.singles.binary_search_by_key(&port, |(p, _)| *p).ok()?;
        Some(&self.singles[at].1)
    }

    /// The entries of the ranges covering `port`, in canonical order: the
    /// ranges of the 17 blocks on its path (a range holds at most one of
    /// them).
    fn covering(&self, port: u16) -> Vec<Arc<IndexEntry>> {
        let mut ranks: Vec<u32> = Vec::new();
        for level in 0..LEVELS {
            let block = block_of(level, u32::from(port));
            let first = self.blocks.partition_point(|&(b, _)| b < block);
            let rest = &self.blocks[first..];
            let len = rest.partition_point(|&(b, _)| b == block);
            ranks.extend(rest[..len].iter().map(|&(_, rank)| rank));
        }
        ranks.sort_unstable();
        ranks
            .into_iter()
            .map(|rank| Arc::clone(&self.entries[rank as usize]))
            .collect()
    }

    /// The list answering `port`, or `None` when no range covers it (its
    /// records, if any, are then in `by_port`). Built on the first lookup
    /// and kept while `budget` allows.
    fn list<'a>(&'a self, port: u16, budget: &RangeBudget) -> Option<PortList<'a>> {
        if !self.covered.contains(port) {
            return None;
        }
        let Some(singles) = self.singles_at(port) else {
            let slot = &self.segments[self.segment_of(port)];
            if let Some(list) = slot.get() {
                return Some(PortList::Segment(list));
            }
            let entries = self.covering(port);
            return Some(match budget.charge(entries.len()) {
                Some(charge) => {
                    let list = EntryList::charged(entries, Some(charge));
                    PortList::Segment(slot.get_or_init(|| list))
                }
                None => PortList::Passing(EntryList::charged(entries, None)),
            });
        };
        if let Some(list) = self.merged.get(&port) {
            return Some(PortList::Port(list));
        }
        let entries = merge_singles(singles, self.covering(port));
        Some(match budget.charge(entries.len()) {
            Some(charge) => {
                let list = EntryList::charged(entries, Some(charge));
                PortList::Port(self.merged.entry(port).or_insert(list).downgrade())
            }
            None => PortList::Passing(EntryList::charged(entries, None)),
        })
    }
}

/// Merges a port's single-port entries with the ranges covering it, both
/// in canonical order, into canonical order. A single port and a range
/// never tie (a single port is narrower), so source positions are not
/// needed.
fn merge_singles(
    singles: &[Arc<IndexEntry>],
    ranges: Vec<Arc<IndexEntry>>,
) -> Vec<Arc<IndexEntry>> {
    let mut out = Vec::with_capacity(singles.len() + ranges.len());
    let mut singles = singles.iter().peekable();
    for range in ranges {
        while let Some(single) =
            singles.next_if(|s| query::canonical_cmp((&s.record, 0), (&range.record, 0)).is_lt())
        {
            out.push(Arc::clone(single));
        }
        out.push(range);
    }
    out.extend(singles.cloned());
    out
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
fn build_maps(
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
fn same_list(a: &[Arc<IndexEntry>], b: &[Arc<IndexEntry>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| Arc::ptr_eq(&x.record, &y.record) && x.key == y.key)
}

/// Brings `map` to hold every list of `target` (sorted by key), inserting
/// or replacing only where the list changed; the first half of applying a
/// diff ([`remove_stale`] is the second).
fn upsert<K>(map: &DashMap<K, RecordList, FxBuildHasher>, target: &[(K, RecordList)])
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
fn remove_stale<K>(
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

#[cfg(test)]
mod tests {
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
        let replica =
            Index::from_keyed(server.snapshot().keyed().to_vec(), SourceInfo::default(), 1);
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
        while reloads < 400
            || !reloads.is_multiple_of(2)
            || readers_going.load(Ordering::Relaxed) < 3
        {
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
            e.key.ordinal == (i / 2) as u32
                && Arc::ptr_eq(&e.record, &index.snapshot().keyed()[i].1)
        }));
        for port in [1, 32768, u16::MAX] {
            let found = index.lookup_port(port, None).entries;
            assert!(
                found.len() == first.len()
                    && found.iter().zip(&first).all(|(a, b)| Arc::ptr_eq(a, b))
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
}
