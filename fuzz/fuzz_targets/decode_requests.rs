//! Decodes arbitrary bytes as every request message the server accepts
//! (`LookupPortRequest`, `LookupNameRequest`, `BatchLookupRequest`,
//! `SearchRequest`, `ListRecordsRequest`, `WatchRequest`) with prost, the
//! way tonic does for an incoming gRPC message, then runs what decodes
//! through the server's own validation (`portolan_server::validate`) and,
//! when it validates, executes the query against an index of the embedded
//! registry and writes the replies as the handlers do (from the answer the
//! index keeps for a lookup).
//!
//! None of it may panic. Whatever decodes must also survive an
//! encode/decode round trip unchanged, and every reply written must be the
//! same bytes as the same answer converted with `convert::record_to_pb` and
//! encoded by prost.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portolan::wire::{self, EncodedBatchLookupResponse, EncodedLookupResponse};
use portolan::{convert, pb};
use portolan_registry::Index;
use portolan_server::validate::{self, Lookup};
use prost::Message;

/// The embedded registry (about 100 rows), indexed once.
fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| Index::new(portolan_registry::embedded::registry()))
}

fn decode<M: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<M> {
    let message = M::decode(data).ok()?;
    let again =
        M::decode(message.encode_to_vec().as_slice()).expect("a re-encoded message must decode");
    assert_eq!(message, again, "round trip changed the message");
    Some(message)
}

/// Answers `lookup` as the handlers do (LookupPort, LookupName and
/// BatchLookup items all carry the answer the index keeps, written by the
/// first input that reaches its list) and checks both replies against the
/// lookup's entries converted and encoded by prost (the batch item under
/// `id`).
fn run_lookup(lookup: &Lookup, id: &str) {
    let index = index();
    let ((version, answer), found) = match lookup {
        Lookup::Port { port, protocol } => (
            index.port_answer(*port, protocol.as_ref(), wire::lookup_answer),
            index.lookup_port_entries(*port, protocol.as_ref()),
        ),
        Lookup::Name { name, protocol } => (
            index.name_answer(name, protocol.as_ref(), wire::lookup_answer),
            index.lookup_name_entries(name, protocol.as_ref()),
        ),
    };
    assert_eq!(version, found.version);
    let Some(answer) = answer else {
        assert!(found.entries.is_empty(), "no answer for a lookup that matches");
        return;
    };
    let converted = convert::lookup_to_pb(&found);
    assert_eq!(
        EncodedLookupResponse::from_answer(answer.clone(), version).encode_to_vec(),
        converted.encode_to_vec(),
        "the answer differs from the converted reply"
    );
    let item = EncodedBatchLookupResponse::found_answer(id, &answer, version);
    let expected = pb::BatchLookupResponse {
        id: id.into(),
        records: converted.records,
        version,
        error: None,
    };
    assert_eq!(
        item.as_bytes(),
        expected.encode_to_vec(),
        "the batch item differs from the converted reply"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Some(request) = decode::<pb::LookupPortRequest>(data)
        && let Ok(lookup) = validate::lookup_port(&request)
    {
        run_lookup(&lookup, "");
    }
    if let Some(request) = decode::<pb::LookupNameRequest>(data)
        && let Ok(lookup) = validate::lookup_name(&request)
    {
        run_lookup(&lookup, "");
    }
    if let Some(request) = decode::<pb::BatchLookupRequest>(data) {
        match validate::batch_item(&request) {
            Ok(lookup) => run_lookup(&lookup, &request.id),
            Err(error) => {
                let _ = error.to_item_error();
            }
        }
    }
    if let Some(request) = decode::<pb::SearchRequest>(data)
        && let Ok(query) = validate::search(&request)
    {
        let snapshot = index().snapshot();
        for (_, (key, record)) in snapshot.search(&query) {
            let _ = convert::record_to_pb(key, record);
        }
    }
    if let Some(request) = decode::<pb::ListRecordsRequest>(data)
        && let Ok(filter) = validate::list_records(&request)
    {
        let snapshot = index().snapshot();
        for (key, record) in snapshot.list(&filter) {
            let _ = convert::record_to_pb(key, record);
        }
    }
    if let Some(request) = decode::<pb::WatchRequest>(data) {
        let _ = validate::watch(&request);
    }
    let _ = decode::<pb::GetRegistryInfoRequest>(data);
});
