//! Portolan's protobuf contract, `portolan.v1`, generated from
//! `proto/portolan/v1/registry.proto` by the top-level `build.rs`, and the
//! conversions between it and the registry's domain types.
//!
//! # Layout
//! * [`pb`]: the generated messages, the `PortRegistryService` client and
//!   server (for clients, tests and the benchmark's baseline), and their
//!   proto3 JSON mapping (serde, from pbjson): the one JSON shape of a
//!   record, as grpcurl prints it.
//! * [`convert`]: domain ⇄ protobuf conversions, the one definition of how
//!   a record maps to the contract.
//! * [`reply`]: the server's replies, prost-derived with their records as
//!   already-encoded bytes (the same bytes as the messages of [`pb`]).
//! * [`server`]: the `PortRegistryService` server trait over [`reply`]'s
//!   types; the server implements this one.
//! * [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection.
//! * [`MAX_HEARTBEAT_INTERVAL`] and [`WATCH_SILENCE_LIMIT`]: the Watch
//!   timing server and clients agree on; [`STATE_ID_METADATA`], the
//!   trailer naming the state a NOT_FOUND lookup read.

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
    include!(concat!(env!("OUT_DIR"), "/portolan.v1.serde.rs"));
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

/// The metadata key (a trailer of a NOT_FOUND LookupPort or LookupName)
/// carrying the registry state the lookup read, as 16 hex digits, so that
/// a cache can tell which content a miss belongs to.
pub const STATE_ID_METADATA: &str = "portolan-state-id";

/// The longest interval between Watch heartbeats a server may use (the
/// server refuses a longer `--heartbeat-interval`): clients treat
/// [`WATCH_SILENCE_LIMIT`] without an event as a broken stream, three of
/// these.
pub const MAX_HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a Watch client waits for an event before treating the stream as
/// broken, by default: three of the longest heartbeat intervals.
pub const WATCH_SILENCE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The encoded `FileDescriptorSet` of `portolan.v1` (with its imports), for
/// registering with tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/portolan_descriptor.bin"));
