//! Generates the load's own `PortRegistryService` client from the workspace's
//! `proto/`: the same service and methods as `portolan::pb`'s client, with
//! the lookup replies decoded as the light summaries of `src/summary.rs` and
//! Watch events as `portolan::reply::WatchResponse` (records and keys left
//! encoded) instead of full messages (every other type is `portolan::pb`'s).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto");
    let fds = protox::compile(["portolan/v1/registry.proto"], ["../proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .out_dir(&out_dir)
        .extern_path(
            ".portolan.v1.LookupPortResponse",
            "crate::summary::LookupSummary",
        )
        .extern_path(
            ".portolan.v1.LookupNameResponse",
            "crate::summary::LookupSummary",
        )
        .extern_path(
            ".portolan.v1.BatchLookupResponse",
            "crate::summary::BatchItemSummary",
        )
        .extern_path(
            ".portolan.v1.WatchResponse",
            "::portolan::reply::WatchResponse",
        )
        .extern_path(".portolan.v1", "::portolan::pb")
        .compile_fds(fds)?;
    Ok(())
}
