//! [`Snapshot`]: an immutable record set of one version, for scans (list,
//! search), info and diffs, with each record's folded search text.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::content::ContentId;
use crate::diff::KeyedRecord;
use crate::model::{Record, RecordState, fold_name};
use crate::query::{self, Filter, MatchRank, SearchHits, SearchQuery};
use crate::registry::{Registry, SourceInfo};

/// An immutable record set of one version, for scans.
#[derive(Debug)]
pub struct Snapshot {
    pub(super) version: u64,
    pub(super) content_id: ContentId,
    pub(super) source: SourceInfo,
    pub(super) loaded_at: SystemTime,
    /// Records with their keys, in source order.
    pub(super) keyed: Vec<KeyedRecord>,
    /// Indices into `keyed` in scan order ([`query::scan_cmp`]).
    pub(super) scan_order: Vec<u32>,
    /// Lowercase name and description of every record, so searches do not
    /// lowercase 14,500 strings per call.
    pub(super) search_text: SearchText,
}

/// The folded ([`fold_name`]) name and description of every record of a
/// snapshot, kept in one string rather than two allocations per record.
#[derive(Debug, Default)]
pub(super) struct SearchText {
    /// Every record's folded name then folded description, back to back.
    pub(super) text: String,
    /// Per record (same indices as `keyed`): where its name ends and its
    /// description starts, and where its description ends. Its name starts
    /// where the previous record's description ends.
    pub(super) bounds: Vec<(u32, u32)>,
}

impl SearchText {
    pub(super) fn build(keyed: &[KeyedRecord]) -> Self {
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

    pub(super) fn push_folded(&mut self, text: &str) {
        if text.is_ascii() {
            self.text
                .extend(text.chars().map(|c| c.to_ascii_lowercase()));
        } else {
            self.text.push_str(&fold_name(text));
        }
    }

    pub(super) fn offset(&self) -> u32 {
        // A registry's text is far below 4 GiB (the real one holds 1 MB).
        u32::try_from(self.text.len()).expect("search text under 4 GiB")
    }

    /// The folded name and description of record `i`.
    pub(super) fn get(&self, i: usize) -> (&str, &str) {
        let start = i.checked_sub(1).map_or(0, |p| self.bounds[p].1) as usize;
        let (name_end, description_end) = self.bounds[i];
        (
            &self.text[start..name_end as usize],
            &self.text[name_end as usize..description_end as usize],
        )
    }
}

impl Snapshot {
    pub(super) fn build(
        version: u64,
        content_id: ContentId,
        source: SourceInfo,
        keyed: Vec<KeyedRecord>,
    ) -> Self {
        let mut scan_order: Vec<u32> = (0..keyed.len() as u32).collect();
        scan_order.sort_by(|&a, &b| query::scan_cmp(&keyed[a as usize].1, &keyed[b as usize].1));
        let search_text = SearchText::build(&keyed);
        Self {
            version,
            content_id,
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

    /// The identity of this record set's content.
    pub fn content_id(&self) -> ContentId {
        self.content_id
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

    /// Record counts by layer name ([`crate::Record::layer`]; `""` for the
    /// one unnamed layer).
    pub fn counts_by_layer(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (key, _) in &self.keyed {
            *out.entry(key.layer.to_string()).or_insert(0) += 1;
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
        Registry::with_positions(
            self.keyed.iter().map(|(_, r)| Record::clone(r)).collect(),
            self.source.clone(),
        )
    }
}
