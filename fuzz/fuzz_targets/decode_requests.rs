//! Decodes arbitrary bytes as every request message the server accepts
//! (`LookupPortRequest`, `LookupNameRequest`, `BatchLookupRequest`,
//! `SearchRequest`, `ListRecordsRequest`, `WatchRequest`) with prost, the
//! way tonic does for an incoming gRPC message, then runs what decodes
//! through the server's own validation (`portolan_server::validate`) and,
//! when it validates, executes the query against an index of the embedded
//! registry and converts the answer to protobuf, as the handlers do.
//!
//! None of it may panic. Whatever decodes must also survive an
//! encode/decode round trip unchanged.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
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

fn run_lookup(lookup: &Lookup) {
    let index = index();
    let result = match lookup {
        Lookup::Port { port, protocol } => index.lookup_port_entries(*port, protocol.as_ref()),
        Lookup::Name { name, protocol } => index.lookup_name_entries(name, protocol.as_ref()),
    };
    for entry in &result.entries {
        let _ = convert::record_to_pb(&entry.key, &entry.record);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(request) = decode::<pb::LookupPortRequest>(data)
        && let Ok(lookup) = validate::lookup_port(&request)
    {
        run_lookup(&lookup);
    }
    if let Some(request) = decode::<pb::LookupNameRequest>(data)
        && let Ok(lookup) = validate::lookup_name(&request)
    {
        run_lookup(&lookup);
    }
    if let Some(request) = decode::<pb::BatchLookupRequest>(data) {
        match validate::batch_item(&request) {
            Ok(lookup) => run_lookup(&lookup),
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
