//! The default registry compiled into every binary: the records of the IANA
//! registry's plain-text excerpt (about 100 rows, ports 2692-6268), so the
//! server and the CLI's offline mode answer something real with no data file.

use crate::parse::{self, Format};
use crate::registry::Registry;

/// The embedded source text (IANA plain-text rendering).
pub const SOURCE: &str = include_str!("../../data/registry-excerpt.txt");

/// The path reported for the embedded registry.
pub const SOURCE_PATH: &str = "embedded";

/// Parses the embedded registry.
///
/// # Panics
/// Never in a released build: the embedded text is fixed at compile time and
/// a unit test proves it parses.
pub fn registry() -> Registry {
    let mut parsed = parse::parse(SOURCE.as_bytes(), Some(Format::IanaText))
        .expect("the embedded registry parses (checked by a unit test)");
    parsed.registry.source.path = SOURCE_PATH.to_string();
    parsed.registry
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_registry_parses_with_its_records() {
        let registry = super::registry();
        assert_eq!(registry.source.path, super::SOURCE_PATH);
        assert!(registry.len() >= 100, "{} records", registry.len());
        assert_eq!(registry.source.updated.as_deref(), Some("2025-08-26"));
        assert!(
            registry
                .records
                .iter()
                .any(|r| r.name.as_deref() == Some("admins-lms")
                    && r.ports.map(|p| p.start) == Some(2692))
        );
    }
}
