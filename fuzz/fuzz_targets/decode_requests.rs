//! Decodes arbitrary bytes as every request message the server accepts
//! (`LookupPortRequest`, `LookupNameRequest`, `BatchLookupRequest`,
//! `SearchRequest`, `ListRecordsRequest`, `WatchRequest`) with prost, the
//! way tonic does for an incoming gRPC message. Decoding must never panic,
//! and whatever decodes must survive an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portolan::pb;
use prost::Message;

fn check<M: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(message) = M::decode(data) {
        let again = M::decode(message.encode_to_vec().as_slice())
            .expect("a re-encoded message must decode");
        assert_eq!(message, again, "round trip changed the message");
    }
}

fuzz_target!(|data: &[u8]| {
    check::<pb::LookupPortRequest>(data);
    check::<pb::LookupNameRequest>(data);
    check::<pb::BatchLookupRequest>(data);
    check::<pb::SearchRequest>(data);
    check::<pb::ListRecordsRequest>(data);
    check::<pb::WatchRequest>(data);
    check::<pb::GetRegistryInfoRequest>(data);
});
