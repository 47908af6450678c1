//! The client side of the wire: decodes arbitrary bytes as the messages a
//! server sends (`LookupPortResponse`, `LookupNameResponse`,
//! `BatchLookupResponse`, `SearchResponse`, `ListRecordsResponse`,
//! `Record`, `WatchResponse`) and converts them to domain types with
//! `portolan::convert`, as `portolan-client` does with every answer and
//! every replica update. A hostile or buggy server must get an error, never
//! a panic in the client.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan::{convert, pb};
use prost::Message;

fn records(records: &[pb::Record]) {
    for record in records {
        if let Ok((key, domain)) = convert::record_from_pb(record) {
            // What converts must convert back.
            let _ = convert::record_to_pb(&key, &domain);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = pb::LookupPortResponse::decode(data) {
        records(&response.records);
    }
    if let Ok(response) = pb::LookupNameResponse::decode(data) {
        records(&response.records);
    }
    if let Ok(response) = pb::SearchResponse::decode(data) {
        records(&response.records);
    }
    if let Ok(response) = pb::ListRecordsResponse::decode(data) {
        records(&response.records);
    }
    if let Ok(response) = pb::BatchLookupResponse::decode(data) {
        records(&response.records);
    }
    if let Ok(record) = pb::Record::decode(data) {
        records(std::slice::from_ref(&record));
        if let Some(key) = &record.key {
            let _ = convert::key_from_pb(key);
        }
    }
    if let Ok(event) = pb::WatchResponse::decode(data) {
        match &event.event {
            Some(pb::watch_response::Event::Snapshot(snapshot)) => records(&snapshot.records),
            Some(pb::watch_response::Event::Delta(delta)) => {
                let _ = convert::delta_from_pb(delta);
                for key in &delta.invalidated {
                    let _ = convert::key_from_pb(key);
                }
            }
            Some(pb::watch_response::Event::Heartbeat(_)) | None => {}
        }
    }
});
