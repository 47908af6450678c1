//! Decodes arbitrary bytes as every request message the server accepts
//! (`LookupPortRequest`, `LookupNameRequest`, `BatchLookupRequest`,
//! `SearchRequest`, `ListRecordsRequest`, `WatchRequest`) with prost, the
//! way tonic does for an incoming gRPC message, then runs what decodes
//! through the server's own validation (`portolan_server::validate`) and,
//! when it validates, executes the query against the server's state for
//! the embedded registry and makes the replies as the handlers do (from
//! the server's kept encoding of each record).
//!
//! None of it may panic. Whatever decodes must also survive an
//! encode/decode round trip unchanged, and every reply must be the same
//! bytes as the same answer converted with `convert::record_to_pb` and
//! encoded by prost.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portolan::{convert, pb, reply};
use portolan_server::service::{answer_batch_item, lookup_records};
use portolan_server::state::RegistryState;
use portolan_server::validate::{self, Lookup};
use prost::Message;

/// The server's state over the embedded registry (the full CSV), built
/// once.
fn state() -> &'static RegistryState {
    static STATE: OnceLock<RegistryState> = OnceLock::new();
    STATE.get_or_init(|| RegistryState::new(portolan_registry::embedded::registry(), 0))
}

fn decode<M: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<M> {
    let message = M::decode(data).ok()?;
    let again =
        M::decode(message.encode_to_vec().as_slice()).expect("a re-encoded message must decode");
    assert_eq!(message, again, "round trip changed the message");
    Some(message)
}

/// Answers `lookup` as the handlers do (LookupPort, LookupName and
/// BatchLookup items all carry the kept encodings) and checks the replies
/// against the lookup's entries converted and encoded by prost (the batch
/// item under `id`).
fn run_lookup(lookup: &Lookup, request: Option<&pb::BatchLookupRequest>) {
    let state = state();
    let index = state.index();
    let found = match lookup {
        Lookup::Port { port, protocol } => index.lookup_port(*port, protocol.as_ref()),
        Lookup::Name { name, protocol } => index.lookup_name(name, protocol.as_ref()),
    };
    let Ok((version, records)) = lookup_records(state, lookup) else {
        assert!(found.entries.is_empty(), "no answer for a lookup that matches");
        return;
    };
    assert_eq!(version, found.version);
    let converted = convert::lookup_port_to_pb(&found);
    assert_eq!(
        reply::LookupPortResponse {
            records: records.clone(),
            version
        }
        .encode_to_vec(),
        converted.encode_to_vec(),
        "the reply differs from the converted reply"
    );
    if let Some(request) = request {
        let item = answer_batch_item(state, request.clone());
        let expected = pb::BatchLookupResponse {
            id: request.id.clone(),
            records: converted.records,
            version,
            error: None,
        };
        assert_eq!(
            item.encode_to_vec(),
            expected.encode_to_vec(),
            "the batch item differs from the converted reply"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(request) = decode::<pb::LookupPortRequest>(data)
        && let Ok(lookup) = validate::lookup_port(&request)
    {
        run_lookup(&lookup, None);
    }
    if let Some(request) = decode::<pb::LookupNameRequest>(data)
        && let Ok(lookup) = validate::lookup_name(&request)
    {
        run_lookup(&lookup, None);
    }
    if let Some(request) = decode::<pb::BatchLookupRequest>(data) {
        match validate::batch_item(&request) {
            Ok(lookup) => run_lookup(&lookup, Some(&request)),
            Err(error) => {
                let _ = error.to_item_error();
            }
        }
    }
    if let Some(request) = decode::<pb::SearchRequest>(data)
        && let Ok(query) = validate::search(&request)
    {
        let snapshot = state().snapshot();
        for (_, (key, record)) in snapshot.search(&query) {
            assert_eq!(
                state().encodings().get(key, record),
                convert::record_to_pb(key, record).encode_to_vec()
            );
        }
    }
    if let Some(request) = decode::<pb::ListRecordsRequest>(data)
        && let Ok(filter) = validate::list_records(&request)
    {
        let snapshot = state().snapshot();
        for (key, record) in snapshot.list(&filter) {
            assert_eq!(
                state().encodings().get(key, record),
                convert::record_to_pb(key, record).encode_to_vec()
            );
        }
    }
    if let Some(request) = decode::<pb::WatchRequest>(data) {
        let _ = validate::watch(&request);
    }
    let _ = decode::<pb::GetRegistryInfoRequest>(data);
});
