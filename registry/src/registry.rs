//! [`Registry`]: an immutable, ordered set of records as one source gave
//! them, plus what is known about that source.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::model::{PortRange, Protocol, Record, RecordKey, RecordState, fold_name};
use crate::parse::Format;

/// Where a registry came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceInfo {
    /// File path, or `embedded`.
    pub path: String,
    /// The format the bytes were parsed as.
    pub format: Option<Format>,
    /// Whether the bytes were gzip-compressed.
    pub gzip: bool,
    /// SHA-256 of the bytes as read (before decompression), lowercase hex.
    pub content_hash: String,
    /// The registry's own "last updated" date, where the file states one.
    pub updated: Option<String>,
    /// How many diagnostics the parser reported.
    pub diagnostic_count: usize,
    /// Whether this describes several layers ([`crate::layers`]): `path`
    /// then lists them as `name=path`, and there is no single format.
    pub layered: bool,
}

impl SourceInfo {
    /// The format label shown to users: `iana-csv`, `iana-xml+gzip`, ...
    pub fn format_label(&self) -> String {
        if self.layered {
            return "layered".to_string();
        }
        let base = self.format.map_or("unknown", |f| f.as_str());
        if self.gzip {
            format!("{base}+gzip")
        } else {
            base.to_string()
        }
    }
}

/// The rows a [`Record::position`] counts within: the same port range, or
/// for rows without a port the same folded name.
#[derive(PartialEq, Eq, Hash)]
enum PositionGroup {
    Ports(PortRange),
    Name(Option<String>),
}

/// Sets every record's position: its place among the earlier records of
/// its [`PositionGroup`].
fn number_positions(records: &mut [Record]) {
    let mut next: HashMap<(Arc<str>, PositionGroup), u32, FxBuildHasher> = HashMap::default();
    for record in records {
        let group = match record.ports {
            Some(ports) => PositionGroup::Ports(ports),
            None => PositionGroup::Name(record.name.as_deref().map(fold_name)),
        };
        let slot = next.entry((Arc::clone(&record.layer), group)).or_insert(0);
        record.position = *slot;
        *slot += 1;
    }
}

/// An ordered set of records (source order) plus their source.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Records in source order.
    pub records: Vec<Record>,
    /// Where they came from.
    pub source: SourceInfo,
}

impl Registry {
    /// Builds a registry from records in source order, setting each
    /// record's [`Record::position`] from that order.
    pub fn new(mut records: Vec<Record>, source: SourceInfo) -> Self {
        number_positions(&mut records);
        Self { records, source }
    }

    /// A registry of records whose positions are already set (a copy of a
    /// served registry, in any order).
    pub fn with_positions(records: Vec<Record>, source: SourceInfo) -> Self {
        Self { records, source }
    }

    /// The registry as layer `name` of priority `rank` (0 the highest):
    /// every record carries both ([`Record::layer`], [`Record::layer_rank`]).
    pub fn into_layer(mut self, name: &str, rank: u32) -> Self {
        let name: Arc<str> = Arc::from(name);
        for record in &mut self.records {
            record.layer = Arc::clone(&name);
            record.layer_rank = rank;
        }
        self
    }

    /// The records of `layers` (each labelled by [`Registry::into_layer`]),
    /// in the order given, as one registry whose source is `source`
    /// (positions kept: each layer numbered its own).
    pub fn layered(layers: Vec<Registry>, source: SourceInfo) -> Self {
        let records = layers.into_iter().flat_map(|layer| layer.records).collect();
        Self::with_positions(records, source)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The [`RecordKey`] of every record, in source order (see
    /// [`RecordKey`] for how ordinals are counted).
    pub fn keys(&self) -> Vec<RecordKey> {
        /// The part of a record's identity that ordinals disambiguate.
        type Identity<'a> = (
            &'a str,
            Option<&'a str>,
            Option<PortRange>,
            Option<&'a Protocol>,
        );
        let mut seen: HashMap<Identity<'_>, u32, FxBuildHasher> =
            HashMap::with_capacity_and_hasher(self.records.len(), FxBuildHasher);
        self.records
            .iter()
            .map(|r| {
                let slot = seen
                    .entry((&*r.layer, r.name.as_deref(), r.ports, r.protocol.as_ref()))
                    .or_insert(0);
                let ordinal = *slot;
                *slot += 1;
                RecordKey::of(r, ordinal)
            })
            .collect()
    }

    /// Record counts by state.
    pub fn counts_by_state(&self) -> BTreeMap<RecordState, usize> {
        let mut out = BTreeMap::new();
        for r in &self.records {
            *out.entry(r.state).or_insert(0) += 1;
        }
        out
    }

    /// Record counts by protocol name (`none` for rows without one).
    pub fn counts_by_protocol(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in &self.records {
            let key = r
                .protocol
                .as_ref()
                .map_or("none", |p| p.as_str())
                .to_string();
            *out.entry(key).or_insert(0) += 1;
        }
        out
    }
}
