//! Test-only helpers shared by every crate's tests.
//!
//! The real registry files (the official IANA CSV and XML, nmap-services,
//! `/etc/services` files and deliberately broken files) live outside the
//! project, in a `shared/data` folder next to the checkout
//! (`../shared/data` from the workspace root). They are not committed here.
//!
//! [`shared_data`] finds that folder. Where it is missing (a fresh clone),
//! tests that need it print a notice and skip; under `CI=true` a missing
//! folder is a failure, so CI always runs them. `PORTOLAN_SHARED_DATA` may
//! point somewhere else.

use std::path::{Path, PathBuf};

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support lives one level below the workspace root")
        .to_path_buf()
}

/// The shared real-data folder, or `None` (after printing a notice) when it
/// is missing outside CI.
///
/// # Panics
/// When the folder is missing and the environment variable `CI` is `true`.
pub fn shared_data() -> Option<PathBuf> {
    let candidate = match std::env::var_os("PORTOLAN_SHARED_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared/data"),
    };
    if candidate.join("iana").is_dir() {
        return Some(candidate);
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    assert!(
        !in_ci,
        "CI=true but the shared data folder is missing: {} (set PORTOLAN_SHARED_DATA)",
        candidate.display()
    );
    eprintln!(
        "notice: shared data folder {} not found; skipping this test",
        candidate.display()
    );
    None
}

/// A file inside the shared data folder, e.g. `shared_file("iana/service-names-port-numbers.csv")`,
/// or `None` when the folder is missing outside CI (see [`shared_data`]).
///
/// # Panics
/// When the folder exists but the file does not, or as [`shared_data`].
pub fn shared_file(relative: &str) -> Option<PathBuf> {
    let path = shared_data()?.join(relative);
    assert!(
        path.is_file(),
        "missing shared data file {}",
        path.display()
    );
    Some(path)
}

/// Skips the calling test (returns early) when the shared data folder is
/// missing outside CI; evaluates to the path of the requested file otherwise.
#[macro_export]
macro_rules! require_shared_file {
    ($relative:expr) => {
        match $crate::shared_file($relative) {
            Some(path) => path,
            None => return,
        }
    };
}
