//! [`Encodings`]: the server's encoding of every record of the serving
//! registry, made once per record per registry version and shared by every
//! reply that carries the record (lookups, batch items, scans, Watch).
//!
//! The registry's index knows nothing of replies: it answers shared
//! entries (key and `Arc<Record>`). This map, owned by the server, holds
//! for each key the record it was encoded from and prost's encoding of it
//! ([`portolan::reply::encode_record`]). It is built with the registry and
//! patched from each applied [`Diff`], both off the async workers (startup
//! and reloads run on the blocking pool). No encoder runs under a map
//! lock: encodings are made first and inserted whole, and a read clones
//! the shared [`Bytes`] out of the map.
//!
//! An entry serves a record only when it was made from that very record
//! (the same `Arc`, which unchanged records keep across reloads). A reader
//! holding a record the map does not hold (an older edition a scan still
//! reads, or a lookup racing the patch that follows a reload) gets a fresh
//! encoding instead, so a reply never carries bytes of another version of
//! its record.

use std::sync::Arc;

use dashmap::DashMap;
use portolan::reply::encode_record;
use portolan_registry::{Diff, Record, RecordKey, Snapshot};
use prost::bytes::Bytes;
use rustc_hash::FxBuildHasher;

/// One kept encoding.
#[derive(Debug)]
struct Encoded {
    /// The record the bytes were made from.
    record: Arc<Record>,
    /// prost's encoding of the record with its key.
    bytes: Bytes,
}

/// The encodings of the serving registry's records, by key.
#[derive(Debug)]
pub struct Encodings {
    by_key: DashMap<RecordKey, Encoded, FxBuildHasher>,
}

impl Encodings {
    /// The encodings of every record of `snapshot`.
    pub fn build(snapshot: &Snapshot) -> Self {
        let by_key = DashMap::with_capacity_and_hasher(snapshot.len(), FxBuildHasher);
        for (key, record) in snapshot.keyed() {
            let bytes = encode_record(key, record);
            by_key.insert(
                key.clone(),
                Encoded {
                    record: Arc::clone(record),
                    bytes,
                },
            );
        }
        Self { by_key }
    }

    /// Brings the map to the registry after `diff`: added and changed
    /// records get their encoding, removed ones lose theirs.
    pub fn patch(&self, diff: &Diff) {
        for (key, record) in diff.upserts() {
            let bytes = encode_record(key, record);
            self.by_key.insert(
                key.clone(),
                Encoded {
                    record: Arc::clone(record),
                    bytes,
                },
            );
        }
        for (key, record) in &diff.removed {
            self.by_key
                .remove_if(key, |_, kept| Arc::ptr_eq(&kept.record, record));
        }
    }

    /// The encoding of `record` under `key`: the kept one when it was made
    /// from this record, a fresh one otherwise.
    pub fn get(&self, key: &RecordKey, record: &Arc<Record>) -> Bytes {
        let kept = self
            .by_key
            .get(key)
            .filter(|kept| Arc::ptr_eq(&kept.record, record))
            .map(|kept| kept.bytes.clone());
        kept.unwrap_or_else(|| encode_record(key, record))
    }

    /// How many encodings are kept.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_registry::numbered_registry;
    use portolan_registry::{Index, ReloadGuard};

    /// After a reload the map serves exactly the new records, and a record
    /// it does not hold is encoded afresh.
    #[test]
    fn patched_encodings_follow_the_registry() {
        let index = Index::new(numbered_registry(50, "old"));
        let encodings = Encodings::build(&index.snapshot());
        let before = index.snapshot();
        let mut next = numbered_registry(50, "old");
        next.records[3].description = "new".into();
        next.records.pop();
        let change = index
            .apply(next, &ReloadGuard::permissive())
            .unwrap()
            .unwrap();
        encodings.patch(&change.diff);
        let after = index.snapshot();
        assert_eq!(encodings.len(), after.len());
        for (key, record) in after.keyed() {
            assert_eq!(encodings.get(key, record), encode_record(key, record));
        }
        // The old edition's changed record is not served the new bytes.
        let (key, old) = &before.keyed()[3];
        assert_eq!(encodings.get(key, old), encode_record(key, old));
        assert_ne!(
            encodings.get(key, old),
            encodings.get(key, &after.keyed()[3].1)
        );
    }
}
