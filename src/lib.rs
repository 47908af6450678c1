//! Portolan's protobuf contract, `portolan.v1`, generated from
//! `proto/portolan/v1/registry.proto` by the top-level `build.rs`, and the
//! conversions between it and the registry's domain types.
//!
//! # Layout
//! * [`pb`]: the generated messages, the `PortRegistry` client and server.
//! * [`convert`]: domain ⇄ protobuf conversions (the only place that knows
//!   both).
//! * [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection.

pub mod convert;

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

/// The encoded `FileDescriptorSet` of `portolan.v1` (with its imports), for
/// registering with tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/portolan_descriptor.bin"));
