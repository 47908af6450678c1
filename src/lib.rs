//! Portolan's protobuf contract, `portolan.v1`, generated from
//! `proto/portolan/v1/registry.proto` by the top-level `build.rs`, and the
//! conversions between it and the registry's domain types.
//!
//! # Layout
//! * [`pb`]: the generated messages, the `PortRegistryService` client and
//!   server (for clients, tests and the benchmark's baseline).
//! * [`convert`]: domain ⇄ protobuf conversions, the one definition of how
//!   a record maps to the contract.
//! * [`reply`]: the server's replies, prost-derived with their records as
//!   already-encoded bytes (the same bytes as the messages of [`pb`]).
//! * [`server`]: the `PortRegistryService` server trait over [`reply`]'s
//!   types; the server implements this one.
//! * [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection.

pub mod convert;
pub mod reply;

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

/// The `PortRegistryService` server stubs with the replies that carry
/// records as [`reply`]'s types (every other message is [`pb`]'s). Same
/// service, same wire format.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod server {
    include!(concat!(env!("OUT_DIR"), "/server/portolan.v1.rs"));
}

/// The encoded `FileDescriptorSet` of `portolan.v1` (with its imports), for
/// registering with tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/portolan_descriptor.bin"));
