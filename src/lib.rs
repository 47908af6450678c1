//! Portolan's protobuf contract, `portolan.v1`, generated from
//! `proto/portolan/v1/registry.proto` by the top-level `build.rs`, and the
//! conversions between it and the registry's domain types.
//!
//! # Layout
//! * [`pb`]: the generated messages, the `PortRegistry` client and server.
//! * [`convert`]: domain ⇄ protobuf conversions.
//! * [`wire`]: the server's replies written straight from domain types to
//!   wire bytes (same bytes as [`convert`] then prost).
//! * [`wire_server`]: the `PortRegistry` server trait over [`wire`]'s reply
//!   types; the server implements this one.
//! * [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection.

pub mod convert;
pub mod wire;

/// Generated protobuf types and gRPC stubs for `portolan.v1`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod pb {
    tonic::include_proto!("portolan.v1");
}

/// The `PortRegistry` server stubs with the lookup replies, and the records
/// that Search and ListRecords stream, as [`wire`]'s pre-encoded types
/// (every other message is [`pb`]'s). Same service, same wire format.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod wire_server {
    include!(concat!(env!("OUT_DIR"), "/wire_server/portolan.v1.rs"));
}

/// The encoded `FileDescriptorSet` of `portolan.v1` (with its imports), for
/// registering with tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/portolan_descriptor.bin"));
