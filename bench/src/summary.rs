//! What the load reads of each reply, and the client that decodes replies
//! only that far.
//!
//! The load checks the version of every answer (it must never go backwards
//! on a connection), that every hit carries at least one record, and each
//! batch item's error. It never looks inside a record, so building every
//! record's strings, as `portolan::pb`'s client would, is work the load tool
//! does for nothing. On a shared machine that work competes with the server
//! under test, and more so the larger the replies, so it would charge the
//! server for the load tool's own decoding. [`LookupSummary`] keeps each
//! record as its undecoded bytes instead, and the load decodes only the
//! first record of every reply ([`first_record_decodes`]), so a reply whose
//! records are not valid protobuf still fails. The baseline and Portolan
//! are read the same way. These types decode the same wire messages as
//! `portolan.v1.LookupPortResponse` (and `LookupNameResponse`, the same
//! fields) and `portolan.v1.BatchLookupResponse`. Watch events are read the
//! same way, as `portolan::reply::WatchResponse` (the server's own
//! prost-derived type with encoded records and keys): a fan-out of 10,000
//! FULL streams otherwise has the load tool decode 16 GB of records per
//! reload on the cores the server needs.

use portolan::pb::{ItemError, Record};
use prost::Message as _;
use prost::bytes::Bytes;

/// A `portolan.v1.LookupPortResponse` or `LookupNameResponse` with its
/// records left encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LookupSummary {
    /// Each record's encoded bytes.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub records: Vec<Bytes>,
    /// The registry version that answered.
    #[prost(uint64, tag = "2")]
    pub version: u64,
}

/// A `portolan.v1.BatchLookupResponse` with its records left encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchItemSummary {
    /// The request item's id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Each record's encoded bytes.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub records: Vec<Bytes>,
    /// The registry version that answered.
    #[prost(uint64, tag = "3")]
    pub version: u64,
    /// Why this item failed, when it did.
    #[prost(message, optional, tag = "4")]
    pub error: Option<ItemError>,
}

/// Whether a reply's first record decodes as a `portolan.v1.Record` that
/// names a service or a port (`false` for a reply without records).
pub fn first_record_decodes(records: &[Bytes]) -> bool {
    records.first().is_some_and(|first| {
        Record::decode(first.clone()).is_ok_and(|r| r.name.is_some() || r.port.is_some())
    })
}

/// The load's `PortRegistryService` client (generated from the same proto), whose
/// lookups answer with the summaries above.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod client {
    include!(concat!(env!("OUT_DIR"), "/portolan.v1.rs"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan::pb;

    fn record(name: &str, port: u32) -> pb::Record {
        pb::Record {
            name: Some(name.into()),
            port: Some(port),
            port_end: Some(port),
            description: "a description".into(),
            ..pb::Record::default()
        }
    }

    #[test]
    fn a_lookup_summary_reads_the_version_and_every_record() {
        let reply = pb::LookupPortResponse {
            records: vec![record("http", 80), record("www", 80)],
            version: 1_700_000_000_123,
            state_id: 9,
        };
        let summary = LookupSummary::decode(reply.encode_to_vec().as_slice()).unwrap();
        assert_eq!(summary.version, 1_700_000_000_123);
        assert_eq!(summary.records.len(), 2);
        let first = pb::Record::decode(summary.records[0].clone()).unwrap();
        assert_eq!(first, record("http", 80));
        assert!(first_record_decodes(&summary.records));
    }

    #[test]
    fn a_reply_without_a_decodable_first_record_is_caught() {
        assert!(!first_record_decodes(&[]));
        // Field 1 (name) claims 5 bytes but only 2 follow.
        assert!(!first_record_decodes(&[Bytes::from_static(&[
            0x0a, 5, b'h', b't'
        ])]));
        // Field 1 holding bytes that are not UTF-8.
        assert!(!first_record_decodes(&[Bytes::from_static(&[
            0x0a, 2, 0xff, 0xfe
        ])]));
        // A record with neither name nor port.
        let empty = pb::Record::default().encode_to_vec();
        assert!(!first_record_decodes(&[Bytes::from(empty)]));
    }

    #[test]
    fn a_batch_item_summary_reads_id_version_records_and_error() {
        let item = pb::BatchLookupResponse {
            id: "7".into(),
            records: vec![record("ssh", 22)],
            version: 42,
            error: None,
            state_id: 9,
        };
        let summary = BatchItemSummary::decode(item.encode_to_vec().as_slice()).unwrap();
        assert_eq!((summary.id.as_str(), summary.version), ("7", 42));
        assert_eq!(summary.records.len(), 1);
        assert_eq!(summary.error, None);

        let failed = pb::BatchLookupResponse {
            id: "8".into(),
            records: Vec::new(),
            version: 42,
            state_id: 9,
            error: Some(pb::ItemError {
                code: 5,
                message: "no record for port 1".into(),
            }),
        };
        let summary = BatchItemSummary::decode(failed.encode_to_vec().as_slice()).unwrap();
        assert_eq!(summary.error.map(|e| e.code), Some(5));
        assert!(summary.records.is_empty());
    }
}
