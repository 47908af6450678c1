//! The server's replies with their records already encoded.
//!
//! A nested message field and a `bytes` field with the same tag are the same
//! on the wire (a length-delimited field holding the message's encoding), so
//! a reply whose `records` are `repeated bytes`, each the prost encoding of a
//! [`pb::Record`], is byte for byte the reply a client decodes as the
//! contract's message. The types here are those replies, declared with
//! prost's derive macros and no hand-written encoding: prost is the only
//! protobuf encoder. The server's stubs ([`crate::server`]) are generated
//! with these types swapped in for the contract's (`build.rs`); clients use
//! the ordinary types of [`crate::pb`].
//!
//! The record bytes come from [`encode_record`], which is
//! [`convert::record_to_pb`] then prost: [`convert`] stays the one
//! definition of how a record maps to the contract, and a field added to
//! the contract needs a line there and nowhere else. A server encodes each
//! record once per registry version and shares the [`Bytes`] between every
//! reply that carries it; cloning a reply here clones reference counts,
//! never record contents.
//!
//! Every field keeps the contract's tag and type (only `Record` and
//! `RecordKey` fields become `bytes`); `tests/reply_real_data.rs` checks
//! replies against prost's encoding of the generated messages on the real
//! registry files.

use portolan_registry::{Record, RecordKey};
use prost::Message as _;
use prost::bytes::Bytes;

use crate::convert;
use crate::pb;

/// The encoding of one record with its key: prost's encoding of
/// [`convert::record_to_pb`].
pub fn encode_record(key: &RecordKey, record: &Record) -> Bytes {
    Bytes::from(convert::record_to_pb(key, record).encode_to_vec())
}

/// The encoding of one record key (Watch's removed and invalidated keys).
pub fn encode_key(key: &RecordKey) -> Bytes {
    Bytes::from(convert::key_to_pb(key).encode_to_vec())
}

/// `portolan.v1.LookupPortResponse` with encoded records.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LookupPortResponse {
    /// Encoded `portolan.v1.Record`s, canonical first.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub records: Vec<Bytes>,
    /// The registry version the answer was read from.
    #[prost(uint64, tag = "2")]
    pub version: u64,
    /// The registry state the answer was read from.
    #[prost(fixed64, tag = "3")]
    pub state_id: u64,
}

/// `portolan.v1.LookupNameResponse` with encoded records.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LookupNameResponse {
    /// Encoded `portolan.v1.Record`s, canonical first.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub records: Vec<Bytes>,
    /// The registry version the answer was read from.
    #[prost(uint64, tag = "2")]
    pub version: u64,
    /// The registry state the answer was read from.
    #[prost(fixed64, tag = "3")]
    pub state_id: u64,
}

/// `portolan.v1.BatchLookupResponse` with encoded records.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchLookupResponse {
    /// The request's id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Encoded `portolan.v1.Record`s, canonical first; empty on error.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub records: Vec<Bytes>,
    /// The registry version the answer was read from.
    #[prost(uint64, tag = "3")]
    pub version: u64,
    /// The item's error, if it failed.
    #[prost(message, optional, tag = "4")]
    pub error: Option<pb::ItemError>,
    /// The registry state the answer was read from.
    #[prost(fixed64, tag = "5")]
    pub state_id: u64,
}

/// `portolan.v1.SearchResponse` with encoded records.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchResponse {
    /// Encoded `portolan.v1.Record`s, best first.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub records: Vec<Bytes>,
    /// The version the scan reads (first message only).
    #[prost(uint64, tag = "2")]
    pub version: u64,
    /// The state the scan reads (first message only).
    #[prost(fixed64, tag = "3")]
    pub state_id: u64,
}

/// `portolan.v1.ListRecordsResponse` with encoded records.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListRecordsResponse {
    /// Encoded `portolan.v1.Record`s, in listing order.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub records: Vec<Bytes>,
    /// The version the scan reads (first message only).
    #[prost(uint64, tag = "2")]
    pub version: u64,
    /// The state the scan reads (first message only).
    #[prost(fixed64, tag = "3")]
    pub state_id: u64,
}

/// `portolan.v1.WatchResponse` whose snapshot and delta hold encoded
/// records and keys. Built once per change and mode, and cloned (reference
/// counts only) into every stream that sends it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchResponse {
    /// The version the receiver must hold to apply this event.
    #[prost(uint64, tag = "1")]
    pub from_version: u64,
    /// The version the receiver holds after applying it.
    #[prost(uint64, tag = "2")]
    pub version: u64,
    /// The event.
    #[prost(oneof = "watch_response::Event", tags = "3, 4, 5")]
    pub event: Option<watch_response::Event>,
    /// The state the receiver must hold to apply this event.
    #[prost(fixed64, tag = "6")]
    pub from_state_id: u64,
    /// The state the receiver holds after applying it.
    #[prost(fixed64, tag = "7")]
    pub state_id: u64,
}

/// The `event` oneof of [`WatchResponse`].
pub mod watch_response {
    use crate::pb;

    /// One of a snapshot part, a delta part, or a heartbeat.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Event {
        /// A snapshot part.
        #[prost(message, tag = "3")]
        Snapshot(super::Snapshot),
        /// A delta part.
        #[prost(message, tag = "4")]
        Delta(super::Delta),
        /// A heartbeat.
        #[prost(message, tag = "5")]
        Heartbeat(pb::Heartbeat),
    }
}

/// `portolan.v1.Snapshot` with encoded records.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Snapshot {
    /// Encoded `portolan.v1.Record`s of this part (FULL mode only).
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub records: Vec<Bytes>,
    /// True on the last part.
    #[prost(bool, tag = "2")]
    pub last: bool,
    /// How many records the whole snapshot has.
    #[prost(uint64, tag = "3")]
    pub total_records: u64,
}

/// `portolan.v1.Delta` with encoded records and keys.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Delta {
    /// Encoded `portolan.v1.Record`s added or changed (FULL mode).
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub upserted: Vec<Bytes>,
    /// Encoded `portolan.v1.RecordKey`s removed (FULL mode).
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub removed: Vec<Bytes>,
    /// Encoded `portolan.v1.RecordKey`s touched (INVALIDATE mode).
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub invalidated: Vec<Bytes>,
    /// True on the last part.
    #[prost(bool, tag = "4")]
    pub last: bool,
    /// Folded names and aliases whose lookups may answer differently
    /// (INVALIDATE mode, last part).
    #[prost(string, repeated, tag = "5")]
    pub invalidated_names: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_registry::{PortRange, Protocol, RecordState};

    fn record() -> (RecordKey, Record) {
        let record = Record {
            name: Some("http".into()),
            ports: Some(PortRange::single(80)),
            protocol: Some(Protocol::Tcp),
            description: "World Wide Web HTTP".into(),
            state: RecordState::Assigned,
            ..Record::default()
        };
        (RecordKey::of(&record, 0), record)
    }

    /// Each reply decodes as the contract's message, and re-encoding that
    /// gives the same bytes.
    #[test]
    fn replies_are_the_contracts_messages_on_the_wire() {
        let (key, record) = record();
        let encoded = encode_record(&key, &record);
        let expected = convert::record_to_pb(&key, &record);
        let reply = LookupPortResponse {
            records: vec![encoded.clone(), encoded.clone()],
            version: 7,
            state_id: 0x0123_4567_89ab_cdef,
        };
        let bytes = reply.encode_to_vec();
        let decoded = pb::LookupPortResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.records, vec![expected.clone(), expected.clone()]);
        assert_eq!(decoded.encode_to_vec(), bytes);

        let event = WatchResponse {
            from_version: 3,
            version: 4,
            from_state_id: 11,
            state_id: 12,
            event: Some(watch_response::Event::Delta(Delta {
                upserted: vec![encoded],
                removed: vec![encode_key(&key)],
                invalidated: Vec::new(),
                last: true,
                invalidated_names: vec!["www".into()],
            })),
        };
        let bytes = event.encode_to_vec();
        let decoded = pb::WatchResponse::decode(bytes.as_slice()).unwrap();
        let Some(pb::watch_response::Event::Delta(delta)) = &decoded.event else {
            panic!("a delta: {decoded:?}");
        };
        assert_eq!(delta.upserted, vec![expected]);
        assert_eq!(delta.removed, vec![convert::key_to_pb(&key)]);
        assert_eq!(delta.invalidated_names, ["www"]);
        assert_eq!(decoded.encode_to_vec(), bytes);
    }
}
