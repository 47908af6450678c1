//! Port ranges as intervals: the `RangeIndex` of one version (a bitmap of
//! covered ports, each range in at most 32 aligned blocks, segments of
//! ports covered by the same ranges, the single-port records of covered
//! ports), the lists it builds on demand, and the budget that bounds them
//! ([`RANGE_CACHE_ENTRIES`]). See "Ranges" in the [module docs](super).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use dashmap::mapref::one::Ref;
use rustc_hash::FxBuildHasher;

use super::*;
use crate::model::PortRange;
use crate::query;

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
pub(super) struct Charge {
    pub(super) held: Arc<AtomicU64>,
    pub(super) entries: u64,
}

impl Charge {
    /// A charge of `entries` on `held`, unless that would take it past
    /// `limit`.
    pub(super) fn take(held: &Arc<AtomicU64>, entries: usize, limit: u64) -> Option<Self> {
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
pub(super) struct RangeBudget {
    /// Entries held by kept lists, over every version still alive.
    pub(super) held: Arc<AtomicU64>,
    /// At most this many ([`RANGE_CACHE_ENTRIES`]).
    pub(super) limit: u64,
}

impl RangeBudget {
    pub(super) fn new(limit: u64) -> Self {
        Self {
            held: Arc::new(AtomicU64::new(0)),
            limit,
        }
    }

    pub(super) fn charge(&self, entries: usize) -> Option<Charge> {
        Charge::take(&self.held, entries, self.limit)
    }
}

/// A set of ports, one bit each (8 KiB).
#[derive(Clone, PartialEq, Eq)]
pub(super) struct PortSet(pub(super) Box<[u64]>);

impl PortSet {
    const WORDS: usize = (u16::MAX as usize + 1) / 64;

    pub(super) fn new() -> Self {
        Self(vec![0; Self::WORDS].into_boxed_slice())
    }

    /// The ports of `ranges`, which must be sorted by start: each port is
    /// written once, however many ranges cover it.
    pub(super) fn of_sorted(ranges: impl IntoIterator<Item = PortRange>) -> Self {
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

    pub(super) fn fill(&mut self, start: usize, end: usize) {
        for (word, mask) in port_masks(start, end) {
            self.0[word] |= mask;
        }
    }

    pub(super) fn contains(&self, port: u16) -> bool {
        self.0[usize::from(port) / 64] & (1 << (port % 64)) != 0
    }

    /// Whether any port of `start..=end` is in the set.
    pub(super) fn any_in(&self, start: u16, end: u16) -> bool {
        port_masks(usize::from(start), usize::from(end))
            .any(|(word, mask)| self.0[word] & mask != 0)
    }
}

/// The words of a [`PortSet`] holding ports `start..=end`, each with the
/// mask of those ports' bits.
pub(super) fn port_masks(start: usize, end: usize) -> impl Iterator<Item = (usize, u64)> {
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

/// The 17 levels of the dyadic decomposition of 0-65535: blocks of 2^0 to
/// 2^16 ports.
pub(super) const LEVELS: u32 = 17;

/// The block of `2^level` ports holding `port`, as a number unique over
/// every level.
pub(super) fn block_of(level: u32, port: u32) -> u32 {
    (level << 16) | (port >> level)
}

/// The aligned blocks that make up `range` exactly, each port in one:
/// at most 32 (two per level below the top).
pub(super) fn blocks_of(range: PortRange) -> impl Iterator<Item = u32> {
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
pub(super) type EntrySlice = Box<[Arc<IndexEntry>]>;

/// Ports inside ranges, as intervals, for one version (see "Ranges" in the
/// module docs). Immutable but for the lists it builds on demand.
#[derive(Debug)]
pub(super) struct RangeIndex {
    /// The ports some range covers.
    pub(super) covered: PortSet,
    /// The entries of the range records, in canonical order: a record's
    /// rank is its position here.
    pub(super) entries: Box<[Arc<IndexEntry>]>,
    /// (block, rank) for every block of every range, sorted.
    pub(super) blocks: Box<[(u32, u32)]>,
    /// The first port of each segment, sorted, from 0: the segments are
    /// the runs of ports covered by the same ranges (or by none).
    pub(super) bounds: Box<[u16]>,
    /// Per segment: the list of the ranges covering it, once built.
    pub(super) segments: Box<[OnceLock<RecordList>]>,
    /// The single-port records of covered ports, by port, each port's in
    /// canonical order.
    pub(super) singles: Box<[(u16, EntrySlice)]>,
    /// Per covered port with single-port records: its whole list (its
    /// records merged with its segment's ranges), once built.
    pub(super) merged: DashMap<u16, RecordList, FxBuildHasher>,
}

/// The list answering a port inside ranges.
pub(super) enum PortList<'a> {
    /// Kept with a segment.
    Segment(&'a RecordList),
    /// Kept for the port, read under its shard's lock.
    Port(Ref<'a, u16, RecordList>),
    /// Built for this lookup only (past the budget).
    Passing(RecordList),
}

impl PortList<'_> {
    pub(super) fn list(&self) -> &RecordList {
        match self {
            Self::Segment(list) => list,
            Self::Port(list) => list,
            Self::Passing(list) => list,
        }
    }

    pub(super) fn to_shared(&self) -> RecordList {
        Arc::clone(self.list())
    }
}

impl RangeIndex {
    /// The range index of `entries`' records. With `previous` (the index
    /// it replaces and the scope of the diff between them), every list
    /// `previous` built for a port or segment the diff did not touch is
    /// taken over: its ranges and records are the same.
    pub(super) fn build(
        entries: &mut Entries<'_>,
        previous: Option<(&RangeIndex, &Scope)>,
    ) -> Self {
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
    pub(super) fn take_over(&self, previous: &RangeIndex, scope: &Scope) {
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
    pub(super) fn segment_ports(&self, segment: usize) -> (u16, u16) {
        let end = self
            .bounds
            .get(segment + 1)
            .map_or(u16::MAX, |next| next - 1);
        (self.bounds[segment], end)
    }

    /// The segment holding `port`.
    pub(super) fn segment_of(&self, port: u16) -> usize {
        // `bounds` starts at 0, so at least one bound is <= port.
        self.bounds.partition_point(|&start| start <= port) - 1
    }

    /// The single-port records of `port`, if it is covered and has any.
    pub(super) fn singles_at(&self, port: u16) -> Option<&[Arc<IndexEntry>]> {
        let at = self.singles.binary_search_by_key(&port, |(p, _)| *p).ok()?;
        Some(&self.singles[at].1)
    }

    /// The entries of the ranges covering `port`, in canonical order: the
    /// ranges of the 17 blocks on its path (a range holds at most one of
    /// them).
    pub(super) fn covering(&self, port: u16) -> Vec<Arc<IndexEntry>> {
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
    pub(super) fn list<'a>(&'a self, port: u16, budget: &RangeBudget) -> Option<PortList<'a>> {
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
/// never tie (a single port is narrower).
pub(super) fn merge_singles(
    singles: &[Arc<IndexEntry>],
    ranges: Vec<Arc<IndexEntry>>,
) -> Vec<Arc<IndexEntry>> {
    let mut out = Vec::with_capacity(singles.len() + ranges.len());
    let mut singles = singles.iter().peekable();
    for range in ranges {
        while let Some(single) =
            singles.next_if(|s| query::canonical_cmp(&s.record, &range.record).is_lt())
        {
            out.push(Arc::clone(single));
        }
        out.push(range);
    }
    out.extend(singles.cloned());
    out
}
