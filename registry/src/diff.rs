//! [`Diff`]: the difference between two registries, record by record.
//!
//! Records are matched by [`RecordKey`] (name as written, port range,
//! protocol, ordinal among rows sharing those three; see [`RecordKey`] for
//! why). A key in the new registry only is *added*, a key in both whose
//! record differs is *changed*, a key in the old registry only is *removed*.
//!
//! The same value is what the server publishes to watchers (in full, or as
//! keys only) and what client caches and replicas apply, so it is the one
//! description of "what changed" in the whole system.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::model::{PortRange, Record, RecordKey, fold_name};

/// A record together with its identity.
pub type KeyedRecord = (RecordKey, Arc<Record>);

/// What changed between two registries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// Records whose key is new, with their content.
    pub added: Vec<KeyedRecord>,
    /// Records whose key exists on both sides but whose content changed:
    /// key, old content, new content.
    pub changed: Vec<(RecordKey, Arc<Record>, Arc<Record>)>,
    /// Records whose key is gone, with their last content.
    pub removed: Vec<KeyedRecord>,
}

impl Diff {
    /// Computes the diff from `old` to `new` (both keyed, in any order).
    ///
    /// Output order follows `new` for added and changed records and `old`
    /// for removed ones, so it is deterministic.
    pub fn between(old: &[KeyedRecord], new: &[KeyedRecord]) -> Self {
        reconcile(old, new.iter().cloned()).1
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// Number of records touched.
    pub fn len(&self) -> usize {
        self.added.len() + self.changed.len() + self.removed.len()
    }

    /// Keys of every record added, changed or removed: what a cache must
    /// invalidate.
    pub fn touched_keys(&self) -> impl Iterator<Item = &RecordKey> {
        self.added
            .iter()
            .map(|(k, _)| k)
            .chain(self.changed.iter().map(|(k, _, _)| k))
            .chain(self.removed.iter().map(|(k, _)| k))
    }

    /// Records to insert or replace, with their new content (added, then
    /// changed).
    pub fn upserts(&self) -> impl Iterator<Item = (&RecordKey, &Arc<Record>)> {
        self.added
            .iter()
            .map(|(k, r)| (k, r))
            .chain(self.changed.iter().map(|(k, _, new)| (k, new)))
    }

    /// Port ranges whose lookups may answer differently after the change.
    pub fn touched_ports(&self) -> Vec<PortRange> {
        let mut ranges: Vec<PortRange> = self.touched_keys().filter_map(|k| k.ports).collect();
        ranges.sort_unstable();
        ranges.dedup();
        ranges
    }

    /// Folded names and aliases (see [`fold_name`]) whose lookups may
    /// answer differently.
    pub fn touched_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut push = |r: &Record| {
            names.extend(r.name.iter().map(|n| fold_name(n)));
            names.extend(r.aliases.iter().map(|n| fold_name(n)));
        };
        for (_, r) in &self.added {
            push(r);
        }
        for (_, old, new) in &self.changed {
            push(old);
            push(new);
        }
        for (_, r) in &self.removed {
            push(r);
        }
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// Diffs `new` against `old` and returns `new` with every unchanged record
/// replaced by `old`'s `Arc` for it, so that unchanged records keep their
/// identity across reloads (and can be recognised by pointer).
///
/// `new` may hold shared records (a replica's delta) or owned ones (a
/// freshly parsed file). An owned record equal to the old one is dropped
/// as soon as it is compared, never copied into an `Arc`: a reload that
/// changes a handful of records allocates a handful, not a registry.
pub fn reconcile<R>(
    old: &[KeyedRecord],
    new: impl IntoIterator<Item = (RecordKey, R)>,
) -> (Vec<KeyedRecord>, Diff)
where
    R: Borrow<Record> + Into<Arc<Record>>,
{
    let old_by_key: HashMap<&RecordKey, &KeyedRecord, FxBuildHasher> =
        old.iter().map(|keyed| (&keyed.0, keyed)).collect();
    let mut diff = Diff::default();
    let mut matched = 0usize;
    let new = new.into_iter();
    let mut reconciled: Vec<KeyedRecord> = Vec::with_capacity(new.size_hint().0);
    for (key, record) in new {
        match old_by_key.get(&key) {
            Some(&(old_key, previous)) => {
                matched += 1;
                let same = std::ptr::eq(Arc::as_ptr(previous), record.borrow())
                    || **previous == *record.borrow();
                if same {
                    // The old key too, so its name stays one allocation
                    // across versions.
                    reconciled.push((old_key.clone(), Arc::clone(previous)));
                } else {
                    let record: Arc<Record> = record.into();
                    diff.changed
                        .push((key.clone(), Arc::clone(previous), Arc::clone(&record)));
                    reconciled.push((key, record));
                }
            }
            None => {
                let record: Arc<Record> = record.into();
                diff.added.push((key.clone(), Arc::clone(&record)));
                reconciled.push((key, record));
            }
        }
    }
    if matched < old.len() {
        let new_keys: HashSet<&RecordKey, FxBuildHasher> =
            reconciled.iter().map(|(k, _)| k).collect();
        diff.removed = old
            .iter()
            .filter(|(k, _)| !new_keys.contains(k))
            .map(|(k, r)| (k.clone(), Arc::clone(r)))
            .collect();
    }
    (reconciled, diff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn keyed(name: &str, port: u16, desc: &str) -> KeyedRecord {
        let record = Record {
            name: Some(name.into()),
            ports: Some(PortRange::single(port)),
            protocol: Some(Protocol::Tcp),
            description: desc.into(),
            ..Record::default()
        };
        (RecordKey::of(&record, 0), Arc::new(record))
    }

    #[test]
    fn diff_classifies_added_changed_removed() {
        let old = vec![keyed("a", 1, "A"), keyed("b", 2, "B"), keyed("c", 3, "C")];
        let new = vec![keyed("a", 1, "A"), keyed("b", 2, "B2"), keyed("d", 4, "D")];
        let diff = Diff::between(&old, &new);
        assert_eq!(diff.added.len(), 1);
        assert_eq!(diff.added[0].0.name.as_deref(), Some("d"));
        assert_eq!(diff.changed.len(), 1);
        assert_eq!(diff.changed[0].2.description, "B2");
        assert_eq!(diff.removed.len(), 1);
        assert_eq!(diff.removed[0].0.name.as_deref(), Some("c"));
        assert_eq!(diff.len(), 3);
        assert_eq!(diff.touched_names(), vec!["b", "c", "d"]);
        let ports: Vec<u16> = diff.touched_ports().iter().map(|p| p.start).collect();
        assert_eq!(ports, vec![2, 3, 4]);
    }

    #[test]
    fn identical_registries_give_an_empty_diff() {
        let old = vec![keyed("a", 1, "A")];
        let new = vec![keyed("a", 1, "A")];
        assert!(Diff::between(&old, &new).is_empty());
    }
}
