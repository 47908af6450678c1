//! [`ContentId`]: the identity of a registry's content, the same on every
//! process that holds the same records, whatever file, format or history
//! brought them there.
//!
//! A registry version is a per-process sequence: it orders one server's
//! changes, but two replicas serving the same file count differently, and a
//! restarted server may reuse a number for other content. The content id
//! names the records themselves: the wrapping sum, over every record, of
//! the first eight bytes of SHA-256 of its key and record as JSON (serde,
//! the same shape `portolan export --format json` writes, position
//! included). A sum is independent of the order records are held in (a
//! replica holds them in listing order, the server in source order) and
//! moves with a diff in time proportional to the diff: subtract what left,
//! add what came.

use std::fmt;
use std::io::Write as _;

use sha2::{Digest, Sha256};

use crate::diff::{Diff, KeyedRecord};
use crate::model::{Record, RecordKey};

/// The identity of a record set (see the module docs). Displayed as 16 hex
/// digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ContentId(pub u64);

impl ContentId {
    /// The content id of `keyed` (any order).
    pub fn of(keyed: &[KeyedRecord]) -> Self {
        Self(keyed.iter().fold(0u64, |sum, (key, record)| {
            sum.wrapping_add(digest(key, record))
        }))
    }

    /// The content id after `diff` is applied to content with this id.
    pub fn after(self, diff: &Diff) -> Self {
        let mut sum = self.0;
        for (key, record) in &diff.removed {
            sum = sum.wrapping_sub(digest(key, record));
        }
        for (key, old, new) in &diff.changed {
            sum = sum
                .wrapping_sub(digest(key, old))
                .wrapping_add(digest(key, new));
        }
        for (key, record) in &diff.added {
            sum = sum.wrapping_add(digest(key, record));
        }
        Self(sum)
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One record's share of a content id.
fn digest(key: &RecordKey, record: &Record) -> u64 {
    let mut hasher = Sha256::new();
    // Writing JSON into a hasher cannot fail: serde_json fails only on
    // non-string map keys (a Record has none) or a failing writer.
    serde_json::to_writer(&mut hasher, key).expect("a key serialises");
    hasher.write_all(b"\n").expect("hashing cannot fail");
    serde_json::to_writer(&mut hasher, record).expect("a record serialises");
    let bytes = hasher.finalize();
    u64::from_le_bytes(bytes[..8].try_into().expect("SHA-256 has 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::keyed_records;
    use crate::model::PortRange;
    use std::sync::Arc;

    fn records() -> Vec<Record> {
        (0..20u16)
            .map(|port| Record {
                name: Some(format!("svc{port}")),
                ports: Some(PortRange::single(port)),
                description: format!("service {port}"),
                ..Record::default()
            })
            .collect()
    }

    #[test]
    fn the_same_records_in_any_order_have_one_id_and_a_diff_moves_it_exactly() {
        let keyed = keyed_records(records());
        let mut reversed = keyed.clone();
        reversed.reverse();
        assert_eq!(ContentId::of(&keyed), ContentId::of(&reversed));

        let mut next = records();
        next[3].description = "changed".into();
        next.remove(7);
        next.push(Record {
            name: Some("new".into()),
            ..Record::default()
        });
        let next = keyed_records(next);
        let diff = Diff::between(&keyed, &next);
        assert_eq!(diff.len(), 3);
        let moved = ContentId::of(&keyed).after(&diff);
        assert_eq!(moved, ContentId::of(&next));
        assert_ne!(moved, ContentId::of(&keyed));

        // A position is content: the same rows in another order differ.
        let mut swapped = (*keyed[0].1).clone();
        swapped.position += 1;
        let mut other = keyed.clone();
        other[0].1 = Arc::new(swapped);
        assert_ne!(ContentId::of(&other), ContentId::of(&keyed));
    }
}
