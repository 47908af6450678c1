//! Replies written straight from the registry's domain types to protobuf
//! wire bytes, for the server's hot paths (LookupPort, LookupName,
//! BatchLookup, Search, ListRecords).
//!
//! Building a [`pb::Record`] copies every text field of a record into its
//! own `String` only for prost to copy it again into the reply and free it.
//! On a lookup that is most of the server's own work per request. The
//! writers here append the same bytes prost would produce directly from a
//! borrowed [`Record`], with one buffer per reply.
//!
//! Lookups go one step further and keep what they write:
//! * LookupPort and LookupName: the answer (the reply's `records` fields,
//!   [`lookup_answer`]) is written by the first lookup of a port's or
//!   name's list with a given protocol filter and kept with the list by the
//!   index ([`Index::port_answer`](portolan_registry::Index::port_answer));
//!   later replies share it ([`EncodedLookupResponse::from_answer`]), and
//!   the only copy left is tonic's, into the HTTP/2 frame. A lookup then
//!   costs one map read and one buffer, whatever the number of records, and
//!   reads none of their strings.
//! * BatchLookup items carry the same answer, copied with each record's
//!   field number changed ([`EncodedBatchLookupResponse::found_answer`]).
//!
//! The encoded types ([`EncodedLookupResponse`], [`EncodedBatchLookupResponse`],
//! [`EncodedRecord`]) implement [`prost::Message`] over their bytes, so the
//! server's generated stubs ([`crate::wire_server`]) send them with tonic's
//! usual codec. On the wire nothing changes: clients decode them as the
//! messages of [`crate::pb`].
//!
//! # Staying in step with the contract
//! [`convert::record_to_pb`] remains the one definition of how a record
//! maps to the contract. Tests check that the bytes written here equal
//! `record_to_pb(..).encode_to_vec()` byte for byte: the unit tests below
//! on records that fill every field with edge values, and
//! `tests/wire_real_data.rs` on every record of the real IANA CSV and XML,
//! nmap-services and `/etc/services` files. A field added to the contract
//! needs a line in both writers and a value in that unit test.

use std::fmt;

use portolan_registry::{
    Answer, IndexEntry, Person, PortRange, Protocol, Record, RecordKey, RegistryDate,
};
use prost::bytes::{Buf, BufMut};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::convert;
use crate::pb;

/// Room reserved for a nested message's length prefix: a 5-byte varint
/// holds lengths below 2^35, far beyond any record.
const MAX_LENGTH_PREFIX: usize = 5;

macro_rules! encoded_message {
    ($(#[$doc:meta])* $name:ident => $message:ty) => {
        $(#[$doc])*
        ///
        /// It holds the message's encoded fields. Decoding one (which the
        /// server never does) re-encodes each known field it reads, so the
        /// result means the same message; unknown fields are dropped, and
        /// equality compares bytes.
        #[derive(Clone, Default, PartialEq, Eq)]
        pub struct $name {
            bytes: Vec<u8>,
        }

        impl $name {
            /// The encoding of `message` (for replies built as messages,
            /// such as errors).
            pub fn from_message(message: &$message) -> Self {
                Self {
                    bytes: message.encode_to_vec(),
                }
            }

            /// The encoded fields, as they go on the wire.
            pub fn as_bytes(&self) -> &[u8] {
                &self.bytes
            }

            /// The message these bytes encode.
            pub fn to_message(&self) -> Result<$message, DecodeError> {
                <$message>::decode(self.bytes.as_slice())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("encoded_len", &self.bytes.len())
                    .finish()
            }
        }

        impl Message for $name {
            fn encode_raw(&self, buf: &mut impl BufMut) {
                buf.put_slice(&self.bytes);
            }

            fn merge_field(
                &mut self,
                tag: u32,
                wire_type: WireType,
                buf: &mut impl Buf,
                ctx: DecodeContext,
            ) -> Result<(), DecodeError> {
                let mut field = <$message>::default();
                field.merge_field(tag, wire_type, buf, ctx)?;
                field.encode_raw(&mut self.bytes);
                Ok(())
            }

            fn encoded_len(&self) -> usize {
                self.bytes.len()
            }

            fn clear(&mut self) {
                self.bytes.clear();
            }
        }
    };
}

encoded_message!(
    /// A `portolan.v1.BatchLookupResponse` already in wire form.
    EncodedBatchLookupResponse => pb::BatchLookupResponse
);
encoded_message!(
    /// A `portolan.v1.Record` (with its key) already in wire form.
    EncodedRecord => pb::Record
);

/// Typical size of one encoded record, for sizing reply buffers.
const TYPICAL_RECORD_LEN: usize = 256;

/// A reply buffer sized for a few records (most lookups answer one to
/// four; a longer reply grows as it is written).
fn reply_buffer<I: Iterator>(records: &I, extra: usize) -> Vec<u8> {
    let expected = records.size_hint().1.unwrap_or(1).clamp(1, 4);
    Vec::with_capacity(expected * TYPICAL_RECORD_LEN + extra)
}

/// A `portolan.v1.LookupResponse` already in wire form: its `records`
/// fields, encoded (usually the answer the index keeps for the lookup, see
/// [`lookup_answer`]), then its version.
///
/// Decoding one (which the server never does) re-encodes each known field
/// it reads, so the result means the same message; unknown fields are
/// dropped, and equality compares the encoded records and the version.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EncodedLookupResponse {
    /// The `records` fields (tag, length and record each), shared with the
    /// index's kept answer.
    records: Answer,
    version: u64,
}

impl EncodedLookupResponse {
    /// The reply listing `records` (in order) at `version`.
    pub fn new<'k, 'r>(
        records: impl Iterator<Item = (&'k RecordKey, &'r Record)>,
        version: u64,
    ) -> Self {
        let mut out = reply_buffer(&records, 0);
        for (key, record) in records {
            put_message(&mut out, 1, |out| put_record(out, key, record));
        }
        Self::from_answer(out.into(), version)
    }

    /// The reply made of `answer` (the encoded `records` fields, as
    /// [`lookup_answer`] writes them) at `version`. The answer is shared,
    /// not copied.
    pub fn from_answer(answer: Answer, version: u64) -> Self {
        Self {
            records: answer,
            version,
        }
    }

    /// The encoding of `message` (for replies built as messages).
    pub fn from_message(message: &pb::LookupResponse) -> Self {
        let records = pb::LookupResponse {
            records: message.records.clone(),
            version: 0,
        };
        Self::from_answer(records.encode_to_vec().into(), message.version)
    }

    /// The message these bytes encode.
    pub fn to_message(&self) -> Result<pb::LookupResponse, DecodeError> {
        pb::LookupResponse::decode(self.encode_to_vec().as_slice())
    }
}

impl fmt::Debug for EncodedLookupResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedLookupResponse")
            .field("records_len", &self.records.len())
            .field("version", &self.version)
            .finish()
    }
}

impl Message for EncodedLookupResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.records);
        if self.version != 0 {
            encoding::uint64::encode(2, &self.version, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let mut field = pb::LookupResponse::default();
        field.merge_field(tag, wire_type, buf, ctx)?;
        if tag == 2 {
            // The last value wins, as in prost, even an explicit 0.
            self.version = field.version;
        } else if !field.records.is_empty() {
            let mut records = self.records.to_vec();
            field.encode_raw(&mut records);
            self.records = records.into();
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        let version = if self.version != 0 {
            encoding::uint64::encoded_len(2, &self.version)
        } else {
            0
        };
        self.records.len() + version
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// The `records` fields of a `portolan.v1.LookupResponse` listing `entries`
/// (in order): the answer the index keeps per list and protocol filter
/// ([`Index::port_answer`](portolan_registry::Index::port_answer)), which
/// [`EncodedLookupResponse::from_answer`] sends and
/// [`EncodedBatchLookupResponse::found_answer`] copies.
pub fn lookup_answer(entries: &mut dyn Iterator<Item = &IndexEntry>) -> Vec<u8> {
    let mut out = reply_buffer(&entries, 0);
    for entry in entries {
        put_message(&mut out, 1, |out| {
            put_record(out, &entry.key, &entry.record)
        });
    }
    out
}

impl EncodedBatchLookupResponse {
    /// The answer to batch item `id`: `records` (in order) at `version`.
    pub fn found<'k, 'r>(
        id: &str,
        records: impl Iterator<Item = (&'k RecordKey, &'r Record)>,
        version: u64,
    ) -> Self {
        let mut out = reply_buffer(&records, id.len() + 16);
        put_str(&mut out, 1, id);
        for (key, record) in records {
            put_message(&mut out, 2, |out| put_record(out, key, record));
        }
        put_uint64(&mut out, 3, version);
        Self { bytes: out }
    }

    /// The answer to batch item `id`: the records of `answer` (a lookup's
    /// kept answer, as [`lookup_answer`] writes it) at `version`. The same
    /// bytes as [`EncodedBatchLookupResponse::found`] for those records.
    pub fn found_answer(id: &str, answer: &[u8], version: u64) -> Self {
        let mut out = Vec::with_capacity(id.len() + answer.len() + 16);
        put_str(&mut out, 1, id);
        put_answer_records(&mut out, answer, BATCH_RECORDS_KEY);
        put_uint64(&mut out, 3, version);
        Self { bytes: out }
    }
}

/// The key byte of `LookupResponse.records` (field 1, length-delimited),
/// which starts each record of an answer.
const LOOKUP_RECORDS_KEY: u8 = 1 << 3 | 2;
/// The key byte of `BatchLookupResponse.records` (field 2).
const BATCH_RECORDS_KEY: u8 = 2 << 3 | 2;

/// Appends the records of `answer` (fields 1 of a `LookupResponse`, as
/// [`lookup_answer`] writes them) as fields of another message whose
/// records field has the one-byte key `key`: the same bytes with each
/// record's key byte replaced. Each record is a key byte, a varint length
/// and that many bytes, so the walk reads only the lengths.
fn put_answer_records(out: &mut Vec<u8>, answer: &[u8], key: u8) {
    let start = out.len();
    out.extend_from_slice(answer);
    let mut at = start;
    while at < out.len() {
        assert_eq!(out[at], LOOKUP_RECORDS_KEY, "an answer holds only records");
        out[at] = key;
        let mut rest = &out[at + 1..];
        let len_before = rest.len();
        let body = encoding::decode_varint(&mut rest).expect("an answer holds whole records");
        at += 1 + (len_before - rest.len()) + body as usize;
    }
    debug_assert_eq!(at, out.len(), "an answer ends with a whole record");
}

impl EncodedRecord {
    /// `record` with its `key`: the bytes of
    /// `convert::record_to_pb(key, record)`.
    pub fn new(key: &RecordKey, record: &Record) -> Self {
        let mut out = Vec::with_capacity(TYPICAL_RECORD_LEN);
        put_record(&mut out, key, record);
        Self { bytes: out }
    }
}

// ---------------------------------------------------------------------------
// Field writers. Proto3 rules, as prost applies them: plain scalars and
// strings are left out when they hold their default; `optional` ones are
// written whenever present; fields go in field-number order.
// ---------------------------------------------------------------------------

/// Writes the fields of `portolan.v1.Record` (see `record_to_pb`).
fn put_record(out: &mut Vec<u8>, key: &RecordKey, record: &Record) {
    put_identity(
        out,
        record.name.as_deref(),
        record.ports,
        record.protocol.as_ref(),
    );
    put_str(out, 6, &record.description);
    for person in &record.assignees {
        put_message(out, 7, |out| put_person(out, person));
    }
    for person in &record.contacts {
        put_message(out, 8, |out| put_person(out, person));
    }
    if let Some(date) = &record.registration_date {
        put_message(out, 9, |out| put_date(out, date));
    }
    if let Some(date) = &record.modification_date {
        put_message(out, 10, |out| put_date(out, date));
    }
    for reference in &record.references {
        put_str_always(out, 11, reference);
    }
    put_str(out, 12, record.service_code.as_deref().unwrap_or_default());
    put_str(
        out,
        13,
        record.unauthorized_use.as_deref().unwrap_or_default(),
    );
    put_str(out, 14, record.notes.as_deref().unwrap_or_default());
    put_enum(out, 15, convert::state_to_pb(record.state) as i32);
    put_enum(
        out,
        16,
        convert::port_class_to_pb(record.port_class()) as i32,
    );
    for alias in &record.aliases {
        put_str_always(out, 17, alias);
    }
    if let Some(frequency) = record.open_frequency {
        encoding::double::encode(18, &frequency, out);
    }
    put_message(out, 19, |out| put_key(out, key));
}

/// Writes the fields of `portolan.v1.RecordKey` (see `key_to_pb`).
fn put_key(out: &mut Vec<u8>, key: &RecordKey) {
    put_identity(out, key.name.as_deref(), key.ports, key.protocol.as_ref());
    if key.ordinal != 0 {
        encoding::uint32::encode(6, &key.ordinal, out);
    }
}

/// Fields 1-5 (name, port, port_end, protocol, protocol_text), which
/// `Record` and `RecordKey` number alike.
fn put_identity(
    out: &mut Vec<u8>,
    name: Option<&str>,
    ports: Option<PortRange>,
    protocol: Option<&Protocol>,
) {
    let (port, port_end) = convert::ports_to_pb(ports);
    let (protocol, protocol_text) = convert::protocol_to_pb_ref(protocol);
    if let Some(name) = name {
        put_str_always(out, 1, name);
    }
    put_optional_uint32(out, 2, port);
    put_optional_uint32(out, 3, port_end);
    put_enum(out, 4, protocol as i32);
    put_str(out, 5, protocol_text);
}

/// Writes the fields of `portolan.v1.Person` (see `person_to_pb`).
fn put_person(out: &mut Vec<u8>, person: &Person) {
    put_str(out, 1, &person.id);
    put_str(out, 2, person.name.as_deref().unwrap_or_default());
    put_str(out, 3, person.organization.as_deref().unwrap_or_default());
    put_str(out, 4, person.uri.as_deref().unwrap_or_default());
    put_str(out, 5, person.updated.as_deref().unwrap_or_default());
}

/// Writes the fields of `portolan.v1.RegistryDate` (see `date_to_pb`).
fn put_date(out: &mut Vec<u8>, date: &RegistryDate) {
    let (year, month, day) = convert::date_parts(date);
    put_str(out, 1, &date.text);
    for (tag, value) in [(2, year), (3, month), (4, day)] {
        if value != 0 {
            encoding::uint32::encode(tag, &value, out);
        }
    }
}

/// A length-delimited field whose body `write` appends. The body is written
/// after room for the longest length prefix, then moved back over the room
/// the real prefix does not need, so each message is written once.
fn put_message(out: &mut Vec<u8>, tag: u32, write: impl FnOnce(&mut Vec<u8>)) {
    encoding::encode_key(tag, WireType::LengthDelimited, out);
    let start = out.len();
    out.resize(start + MAX_LENGTH_PREFIX, 0);
    write(out);
    let body_len = out.len() - start - MAX_LENGTH_PREFIX;
    let mut prefix = [0u8; MAX_LENGTH_PREFIX];
    let mut cursor = &mut prefix[..];
    encoding::encode_varint(body_len as u64, &mut cursor);
    let prefix_len = MAX_LENGTH_PREFIX - cursor.len();
    out[start..start + prefix_len].copy_from_slice(&prefix[..prefix_len]);
    out.copy_within(start + MAX_LENGTH_PREFIX.., start + prefix_len);
    out.truncate(start + prefix_len + body_len);
}

/// A plain `string` field: left out when empty.
fn put_str(out: &mut Vec<u8>, tag: u32, value: &str) {
    if !value.is_empty() {
        put_str_always(out, tag, value);
    }
}

/// An `optional` or repeated `string` element: written even when empty.
fn put_str_always(out: &mut Vec<u8>, tag: u32, value: &str) {
    put_bytes(out, tag, value.as_bytes());
}

/// A length-delimited field holding `value`: a string's bytes, or a
/// message already encoded.
fn put_bytes(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    encoding::encode_key(tag, WireType::LengthDelimited, out);
    encoding::encode_varint(value.len() as u64, out);
    out.put_slice(value);
}

fn put_optional_uint32(out: &mut Vec<u8>, tag: u32, value: Option<u32>) {
    if let Some(value) = value {
        encoding::uint32::encode(tag, &value, out);
    }
}

fn put_uint64(out: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        encoding::uint64::encode(tag, &value, out);
    }
}

fn put_enum(out: &mut Vec<u8>, tag: u32, value: i32) {
    if value != 0 {
        encoding::int32::encode(tag, &value, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_registry::RecordState;

    fn record(name: Option<&str>, ports: Option<(u16, u16)>, protocol: Option<Protocol>) -> Record {
        Record {
            name: name.map(str::to_string),
            ports: ports.and_then(|(start, end)| PortRange::new(start, end)),
            protocol,
            ..Record::default()
        }
    }

    fn assert_same_bytes(key: &RecordKey, record: &Record) {
        let expected = convert::record_to_pb(key, record).encode_to_vec();
        assert_eq!(
            EncodedRecord::new(key, record).as_bytes(),
            expected.as_slice(),
            "record {key}"
        );
    }

    #[test]
    fn a_bare_record_encodes_as_prost_does() {
        let bare = record(None, None, None);
        assert_same_bytes(&RecordKey::of(&bare, 0), &bare);
        let http = record(Some("http"), Some((80, 80)), Some(Protocol::Tcp));
        assert_same_bytes(&RecordKey::of(&http, 0), &http);
    }

    #[test]
    fn every_field_and_edge_value_encodes_as_prost_does() {
        let full = Record {
            description: "x".repeat(200),
            assignees: vec![
                Person::from_id("a"),
                Person {
                    id: "Jon_Postel".into(),
                    name: Some("Jon Postel".into()),
                    organization: Some(String::new()),
                    uri: Some("mailto:postel&isi.edu".into()),
                    updated: Some("2006-02-01".into()),
                },
            ],
            contacts: vec![Person::from_id("")],
            registration_date: RegistryDate::parse("2006-02"),
            modification_date: RegistryDate::parse("not a date"),
            references: vec!["RFC6335".into(), String::new()],
            service_code: Some("SC:TEST".into()),
            unauthorized_use: Some(String::new()),
            notes: Some("é".repeat(100)),
            aliases: vec!["alias".into(), String::new()],
            open_frequency: Some(0.0),
            state: RecordState::Removed,
            ..record(
                Some(""),
                Some((6000, 6063)),
                Some(Protocol::Other("ddp".into())),
            )
        };
        assert_same_bytes(&RecordKey::of(&full, 7), &full);
        // A body past 127 bytes needs a two-byte length prefix; past 16 KiB,
        // three.
        let long = Record {
            description: "y".repeat(20_000),
            registration_date: RegistryDate::parse("1999-12-31"),
            open_frequency: Some(-1.5e-300),
            ..record(Some("long"), Some((0, 65535)), Some(Protocol::Dccp))
        };
        assert_same_bytes(&RecordKey::of(&long, u32::MAX), &long);
    }

    #[test]
    fn replies_decode_as_the_messages_of_the_contract() {
        let http = record(Some("http"), Some((80, 80)), Some(Protocol::Tcp));
        let www = Record {
            description: "World Wide Web HTTP".into(),
            ..record(Some("www"), Some((80, 80)), Some(Protocol::Udp))
        };
        let (http_key, www_key) = (RecordKey::of(&http, 0), RecordKey::of(&www, 0));
        let entries = [(&http_key, &http), (&www_key, &www)];
        let expected_records = vec![
            convert::record_to_pb(&http_key, &http),
            convert::record_to_pb(&www_key, &www),
        ];

        let reply = EncodedLookupResponse::new(entries.iter().copied(), 42);
        let expected = pb::LookupResponse {
            records: expected_records.clone(),
            version: 42,
        };
        assert_eq!(reply.to_message().unwrap(), expected);
        assert_eq!(reply.encode_to_vec(), expected.encode_to_vec());
        assert_eq!(reply.encoded_len(), expected.encoded_len());

        let item = EncodedBatchLookupResponse::found("q1", entries.iter().copied(), 7);
        let expected = pb::BatchLookupResponse {
            id: "q1".into(),
            records: expected_records,
            version: 7,
            error: None,
        };
        assert_eq!(item.as_bytes(), expected.encode_to_vec().as_slice());

        // Version 0 and an empty id are defaults, left out as prost does.
        let empty = EncodedBatchLookupResponse::found("", std::iter::empty(), 0);
        assert!(empty.as_bytes().is_empty());
    }

    #[test]
    fn replies_from_a_kept_answer_equal_replies_from_records() {
        // Records with 3-, 2- and 1-byte length prefixes, longest first, so
        // the batch copy must step over every prefix size to rewrite the key
        // of the record after it.
        let long = Record {
            description: "y".repeat(20_000),
            ..record(Some("long"), Some((80, 80)), Some(Protocol::Tcp))
        };
        let www = Record {
            description: "World Wide Web HTTP ".repeat(10),
            ..record(Some("www"), Some((80, 80)), Some(Protocol::Udp))
        };
        let http = record(Some("http"), Some((80, 80)), Some(Protocol::Tcp));
        let records = [long, www, http];
        let lengths: Vec<usize> = records
            .iter()
            .map(|r| convert::record_to_pb(&RecordKey::of(r, 0), r).encoded_len())
            .collect();
        assert!(lengths[0] >= 1 << 14 && (128..1 << 14).contains(&lengths[1]) && lengths[2] < 128);
        let keys: Vec<RecordKey> = (0..3)
            .map(|i| RecordKey::of(&records[i], i as u32))
            .collect();
        let entries: Vec<IndexEntry> = (0..3)
            .map(|i| IndexEntry::new(keys[i].clone(), std::sync::Arc::new(records[i].clone())))
            .collect();
        for n in 0..=3 {
            let pairs: Vec<(&RecordKey, &Record)> = keys.iter().zip(&records).take(n).collect();
            // A lookup's answer is written from the records, as `new` writes.
            let answer = lookup_answer(&mut entries.iter().take(n));
            assert_eq!(
                EncodedLookupResponse::from_answer(answer.clone().into(), 42),
                EncodedLookupResponse::new(pairs.iter().copied(), 42),
                "{n} records"
            );
            // A batch item carries the same records under its own field.
            assert_eq!(
                EncodedBatchLookupResponse::found_answer("q1", &answer, 7),
                EncodedBatchLookupResponse::found("q1", pairs.iter().copied(), 7),
                "{n} records"
            );
        }
    }

    #[test]
    fn a_decoded_lookup_reply_keeps_its_records_and_version() {
        let http = record(Some("http"), Some((80, 80)), Some(Protocol::Tcp));
        let key = RecordKey::of(&http, 0);
        let message = pb::LookupResponse {
            records: vec![convert::record_to_pb(&key, &http); 2],
            version: 300,
        };
        let wire = message.encode_to_vec();
        let decoded = EncodedLookupResponse::decode(wire.as_slice()).unwrap();
        assert_eq!(decoded.encode_to_vec(), wire);
        assert_eq!(decoded.to_message().unwrap(), message);
        assert_eq!(EncodedLookupResponse::from_message(&message), decoded);
        assert_eq!(
            EncodedLookupResponse::new([(&key, &http), (&key, &http)].into_iter(), 300),
            decoded
        );
        let empty = EncodedLookupResponse::new(std::iter::empty(), 0);
        assert_eq!(empty.encoded_len(), 0);
        assert!(empty.encode_to_vec().is_empty());
        // Fields in any order, repeated, or unknown decode as prost decodes
        // them: the last version wins (even 0), unknown fields are dropped.
        let record = convert::record_to_pb(&key, &http).encode_to_vec();
        let mut odd = vec![0x10, 0x05, 0x0a, record.len() as u8];
        odd.extend_from_slice(&record);
        odd.extend_from_slice(&[0x10, 0x00, 0x18, 0x07]);
        let decoded = EncodedLookupResponse::decode(odd.as_slice()).unwrap();
        let expected = pb::LookupResponse::decode(odd.as_slice()).unwrap();
        assert_eq!(expected.version, 0);
        assert_eq!(decoded.to_message().unwrap(), expected);
        assert_eq!(decoded.encode_to_vec(), expected.encode_to_vec());
    }

    #[test]
    fn decoding_an_encoded_reply_keeps_every_field() {
        let message = pb::BatchLookupResponse {
            id: "bad".into(),
            records: Vec::new(),
            version: 9,
            error: Some(pb::ItemError {
                code: 3,
                message: "port 70000 is out of range".into(),
            }),
        };
        let wire = message.encode_to_vec();
        let decoded = EncodedBatchLookupResponse::decode(wire.as_slice()).unwrap();
        assert_eq!(decoded.as_bytes(), wire.as_slice());
        assert_eq!(decoded.to_message().unwrap(), message);
        assert_eq!(EncodedBatchLookupResponse::from_message(&message), decoded);
    }
}
