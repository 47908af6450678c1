//! The default registry compiled into every binary: the full IANA Service
//! Name and Transport Protocol Port Number Registry, edition
//! [`EDITION`] (its official CSV, 14,512 records, gzip-compressed, about
//! 275 KB), so the server and the CLI's offline mode answer every port with
//! no data file.
//!
//! The bytes are the repository's `data/real/iana/service-names-port-numbers.csv.gz`,
//! the same file the real-data tests read. The 101-record plain-text
//! excerpt that used to be the default stays in `data/registry-excerpt.txt`,
//! a test fixture and a file `--data` can still serve.

use crate::parse;
use crate::registry::Registry;

/// The edition of the embedded registry, as `YYYY-MM-DD`, as a literal for
/// `concat!` (version strings).
#[macro_export]
macro_rules! embedded_edition {
    () => {
        "2026-04-24"
    };
}

/// The `--version` text of a Portolan binary: the calling crate's package
/// version and the embedded registry's edition.
#[macro_export]
macro_rules! version_text {
    () => {
        concat!(
            env!("CARGO_PKG_VERSION"),
            " (embedded registry: IANA, edition ",
            $crate::embedded_edition!(),
            ")"
        )
    };
}

/// The edition of the embedded registry (IANA's "last updated" date).
pub const EDITION: &str = embedded_edition!();

/// The embedded source bytes: the IANA CSV, gzip-compressed.
pub const SOURCE: &[u8] = include_bytes!("../../data/real/iana/service-names-port-numbers.csv.gz");

/// The path reported for the embedded registry.
pub const SOURCE_PATH: &str = "embedded";

/// Parses the embedded registry (gunzip and parse: about 20 ms).
///
/// # Panics
/// Never in a released build: the embedded bytes are fixed at compile time
/// and a unit test proves they parse.
pub fn registry() -> Registry {
    let mut parsed =
        parse::parse(SOURCE, None).expect("the embedded registry parses (checked by a unit test)");
    parsed.registry.source.path = SOURCE_PATH.to_string();
    // The CSV states no edition; the file is the 2026-04-24 one.
    parsed.registry.source.updated = Some(EDITION.to_string());
    parsed.registry
}

#[cfg(test)]
mod tests {
    use crate::model::Protocol;

    #[test]
    fn the_embedded_registry_is_the_full_iana_csv_of_its_edition() {
        let registry = super::registry();
        assert_eq!(registry.source.path, super::SOURCE_PATH);
        assert_eq!(registry.len(), 14_512);
        assert_eq!(registry.source.updated.as_deref(), Some("2026-04-24"));
        assert_eq!(registry.source.format_label(), "iana-csv+gzip");
        let https = registry
            .records
            .iter()
            .find(|r| r.ports.map(|p| p.start) == Some(443) && r.protocol == Some(Protocol::Tcp))
            .expect("443/tcp");
        assert_eq!(https.name.as_deref(), Some("https"));
    }
}
