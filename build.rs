//! Compiles `proto/portolan/v1/*.proto` into Rust with a pure-Rust protobuf
//! compiler (protox), so no system `protoc` is needed, and writes the encoded
//! descriptor set that the server registers for gRPC reflection, and the
//! serde impls (proto3 JSON, by pbjson-build) of the messages.
//!
//! The contract is generated once per role:
//! * `portolan.v1.rs`: every message, the client and a server trait over
//!   those messages (clients, tests and the benchmark baseline use it);
//! * `server/portolan.v1.rs`: only the server trait, with the replies that
//!   carry records swapped for the prost-derived types of `src/reply.rs`,
//!   whose record fields are already-encoded `bytes` with the same tags
//!   (identical on the wire). Every other type refers back to the first set.

use std::path::PathBuf;

use prost::Message as _;

/// The replies the server sends with pre-encoded records.
const SERVER_REPLIES: &[&str] = &[
    "LookupPortResponse",
    "LookupNameResponse",
    "BatchLookupResponse",
    "SearchResponse",
    "ListRecordsResponse",
    "WatchResponse",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["portolan/v1/registry.proto"], ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = fds.encode_to_vec();
    std::fs::write(out_dir.join("portolan_descriptor.bin"), &descriptors)?;
    // The proto3 canonical JSON mapping (what grpcurl and
    // google.protobuf.json_format print) for the generated messages: serde
    // impls from pbjson. GetRegistryInfoResponse holds
    // google.protobuf.Timestamp, which prost-types gives no serde impl; the
    // CLI prints its own RFC 3339 view of it.
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .exclude([
            ".portolan.v1.GetRegistryInfoResponse",
            ".portolan.v1.LayerInfo",
            ".portolan.v1.MeshHintsInfo",
        ])
        .build(&[".portolan.v1"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds.clone())?;

    let server_dir = out_dir.join("server");
    std::fs::create_dir_all(&server_dir)?;
    let mut server = tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .out_dir(&server_dir);
    for reply in SERVER_REPLIES {
        server = server.extern_path(
            format!(".portolan.v1.{reply}"),
            format!("crate::reply::{reply}"),
        );
    }
    server
        .extern_path(".portolan.v1", "crate::pb")
        .compile_fds(fds)?;
    Ok(())
}
