//! Test-only helpers shared by every crate's tests.
//!
//! The real registry files (the official IANA CSV and XML, nmap-services,
//! `/etc/services` files and deliberately broken files) are committed
//! compressed under `data/real/` (see its README for their sources).
//! This crate's build script decompresses them; [`shared_data`] is the
//! folder that holds them and [`shared_file`] one file in it, so every
//! real-data test runs on a fresh clone and none is skipped.
//!
//! [`eventually`] is the one way tests wait: poll with a deadline, never a
//! fixed sleep. With the `server` feature, the `server` module starts a
//! real server on `127.0.0.1:0`, in the test process or as the built
//! binary.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[cfg(feature = "server")]
pub mod server;

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support lives one level below the workspace root")
        .to_path_buf()
}

/// The folder of real registry files, laid out as `data/real/` without the
/// `.gz` suffixes: `iana/`, `nmap/`, `etc/` and `bad/`.
pub fn shared_data() -> PathBuf {
    Path::new(env!("OUT_DIR")).join("real-data")
}

/// A file of [`shared_data`], e.g.
/// `shared_file("iana/service-names-port-numbers.csv")`.
///
/// # Panics
/// When there is no such file (a name not committed under `data/real/`).
pub fn shared_file(relative: &str) -> PathBuf {
    let path = shared_data().join(relative);
    assert!(
        path.is_file(),
        "no real data file {relative}: the files are committed compressed under data/real/ ({})",
        path.display()
    );
    path
}

/// Replaces the file at `path` atomically, as editors and deploy tools
/// do: writes a sibling, then renames it over `path`.
///
/// # Panics
/// When the file cannot be written or renamed.
pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write data file");
    std::fs::rename(&tmp, path).expect("rename data file");
}

/// Polls `probe` every 20 ms until it yields `Some`, or panics naming
/// `what` after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

    /// Every committed file decompresses to the bytes its source had
    /// (`data/real/SHA256SUMS`), and every listed file is there.
    #[test]
    fn the_real_data_files_match_their_recorded_hashes() {
        let sums = std::fs::read_to_string(super::workspace_root().join("data/real/SHA256SUMS"))
            .expect("data/real/SHA256SUMS");
        let mut checked = 0;
        for line in sums.lines() {
            let (expected, relative) = line.split_once("  ").expect("`<sha256>  <path>` lines");
            let bytes = std::fs::read(super::shared_file(relative)).expect("read");
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                expected,
                "{relative} differs from its recorded hash"
            );
            checked += 1;
        }
        assert_eq!(checked, 11, "files listed in SHA256SUMS");
    }
}
