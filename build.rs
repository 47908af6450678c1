//! Compiles `proto/portolan/v1/*.proto` into Rust with a pure-Rust protobuf
//! compiler (protox), so no system `protoc` is needed, and writes the encoded
//! descriptor set that the server registers for gRPC reflection.
//!
//! The contract is generated twice:
//! * `portolan.v1.rs`: every message, the client and a server trait over
//!   those messages (used by clients, tests and the benchmark baseline);
//! * `wire_server/portolan.v1.rs`: only the server trait, with the lookup
//!   replies swapped for the pre-encoded types of `src/wire.rs`, so the
//!   server writes records straight to the wire without building messages.
//!   Every other type refers back to the first set.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["portolan/v1/registry.proto"], ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("portolan_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds.clone())?;

    let wire_dir = out_dir.join("wire_server");
    std::fs::create_dir_all(&wire_dir)?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .out_dir(&wire_dir)
        .extern_path(
            ".portolan.v1.LookupResponse",
            "crate::wire::EncodedLookupResponse",
        )
        .extern_path(
            ".portolan.v1.BatchLookupResponse",
            "crate::wire::EncodedBatchLookupResponse",
        )
        .extern_path(".portolan.v1.Record", "crate::wire::EncodedRecord")
        .extern_path(".portolan.v1", "crate::pb")
        .compile_fds(fds)?;
    Ok(())
}
