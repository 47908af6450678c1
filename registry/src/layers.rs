//! Layered registries: several sources served as one, each a *layer* with
//! a name and a priority (`--data iana=iana.csv --data corp=corp.csv`).
//!
//! * [`LayerSpec`]: one source as a command line names it, `NAME=PATH` or a
//!   bare `PATH` (the one unnamed layer of a single-source registry).
//! * [`compose`]: the layers' registries as one [`Registry`], each record
//!   labelled with its layer and priority ([`Record::layer`],
//!   [`Record::layer_rank`]); lookups answer the records of every layer,
//!   highest priority first ([`crate::query::canonical_cmp`]).
//! * [`combined_source`]: what the whole registry says about where it came
//!   from.
//!
//! Replacing one layer while the others keep serving is
//! [`crate::Index::apply_layer`].
//!
//! [`Record::layer`]: crate::Record::layer
//! [`Record::layer_rank`]: crate::Record::layer_rank

use std::path::PathBuf;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::registry::{Registry, SourceInfo};

/// Longest layer name.
pub const MAX_LAYER_NAME: usize = 32;

/// One source of a layered registry: `NAME=PATH`, or a bare `PATH` for the
/// unnamed layer (`name` empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    /// The layer's name; empty for the unnamed layer.
    pub name: String,
    /// The file.
    pub path: PathBuf,
}

/// Checks a layer name: 1 to [`MAX_LAYER_NAME`] characters, lowercase
/// ASCII letters, digits and hyphens, starting with a letter.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_layer_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_LAYER_NAME {
        return Err(format!(
            "layer name {name:?} must be 1 to {MAX_LAYER_NAME} characters"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "layer name {name:?} must be lowercase letters, digits and hyphens, starting with a letter"
        ));
    }
    Ok(())
}

impl FromStr for LayerSpec {
    type Err = String;

    /// `NAME=PATH` when the text before the first `=` is a valid layer
    /// name, otherwise the whole text is the path of the unnamed layer.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err("empty data source (expected FILE or NAME=FILE)".into());
        }
        if let Some((name, path)) = text.split_once('=')
            && check_layer_name(name).is_ok()
        {
            if path.is_empty() {
                return Err(format!(
                    "layer {name:?} names no file (expected {name}=FILE)"
                ));
            }
            return Ok(Self {
                name: name.to_string(),
                path: PathBuf::from(path),
            });
        }
        Ok(Self {
            name: String::new(),
            path: PathBuf::from(text),
        })
    }
}

impl std::fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name.is_empty() {
            write!(f, "{}", self.path.display())
        } else {
            write!(f, "{}={}", self.name, self.path.display())
        }
    }
}

/// Checks a set of layer names in priority order: unique, and the unnamed
/// layer only alone.
///
/// # Errors
/// A message naming the problem.
pub fn check_layer_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let names: Vec<&str> = names.into_iter().collect();
    if names.len() > 1 && names.iter().any(|n| n.is_empty()) {
        return Err("with several data sources, each needs a name (NAME=FILE)".into());
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(format!("layer {name:?} is named twice"));
        }
    }
    Ok(())
}

/// What the whole registry says about its source, from its layers' (in
/// priority order): a single unnamed layer's own source; otherwise the
/// paths as `name=path` joined by commas, the SHA-256 of the layers'
/// names and hashes, no single format, and the diagnostics summed.
pub fn combined_source<'a>(
    layers: impl IntoIterator<Item = (&'a str, &'a SourceInfo)>,
) -> SourceInfo {
    let layers: Vec<(&str, &SourceInfo)> = layers.into_iter().collect();
    if let [(name, source)] = layers.as_slice()
        && name.is_empty()
    {
        return (*source).clone();
    }
    let mut hasher = Sha256::new();
    for (name, source) in &layers {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(source.content_hash.as_bytes());
        hasher.update([b'\n']);
    }
    SourceInfo {
        path: layers
            .iter()
            .map(|(name, source)| format!("{name}={}", source.path))
            .collect::<Vec<_>>()
            .join(","),
        content_hash: hex::encode(hasher.finalize()),
        diagnostic_count: layers.iter().map(|(_, s)| s.diagnostic_count).sum(),
        layered: true,
        ..SourceInfo::default()
    }
}

/// The layers' registries (named, in priority order) as one registry:
/// every record labelled with its layer name and rank (its place in
/// `layers`), positions kept, source from [`combined_source`].
pub fn compose(layers: Vec<(String, Registry)>) -> Registry {
    let source = combined_source(layers.iter().map(|(name, r)| (name.as_str(), &r.source)));
    let labelled = layers
        .into_iter()
        .enumerate()
        .map(|(rank, (name, registry))| {
            registry.into_layer(&name, u32::try_from(rank).unwrap_or(u32::MAX))
        })
        .collect();
    Registry::layered(labelled, source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortRange, Protocol, Record};

    #[test]
    fn specs_parse_named_and_unnamed_sources() {
        let named: LayerSpec = "corp=/data/corp ports.csv".parse().unwrap();
        assert_eq!(named.name, "corp");
        assert_eq!(named.path, PathBuf::from("/data/corp ports.csv"));
        assert_eq!(named.to_string(), "corp=/data/corp ports.csv");
        // Not a layer name before `=`: the whole text is a path.
        let path: LayerSpec = "/data/a=b.csv".parse().unwrap();
        assert_eq!(
            (path.name.as_str(), path.path),
            ("", PathBuf::from("/data/a=b.csv"))
        );
        let bare: LayerSpec = "iana.csv".parse().unwrap();
        assert!(bare.name.is_empty());
        assert!(
            "corp="
                .parse::<LayerSpec>()
                .unwrap_err()
                .contains("names no file")
        );
        assert!("".parse::<LayerSpec>().is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_layer_name("corp-2").is_ok());
        assert!(check_layer_name("Corp").is_err());
        assert!(check_layer_name("2corp").is_err());
        assert!(check_layer_name(&"a".repeat(33)).is_err());
        assert!(check_layer_names(["iana", "corp"]).is_ok());
        assert!(check_layer_names([""]).is_ok());
        assert!(
            check_layer_names(["iana", "iana"])
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            check_layer_names(["", "corp"])
                .unwrap_err()
                .contains("needs a name")
        );
    }

    fn registry(names: &[&str], hash: &str) -> Registry {
        let records = names
            .iter()
            .map(|name| Record {
                name: Some((*name).into()),
                ports: PortRange::new(443, 443),
                protocol: Some(Protocol::Tcp),
                ..Record::default()
            })
            .collect();
        Registry::new(
            records,
            SourceInfo {
                path: format!("{hash}.csv"),
                content_hash: hash.into(),
                ..SourceInfo::default()
            },
        )
    }

    #[test]
    fn composing_labels_every_record_and_keys_layers_apart() {
        let composed = compose(vec![
            ("corp".into(), registry(&["https", "corp-web"], "c")),
            ("iana".into(), registry(&["https"], "i")),
        ]);
        let labels: Vec<(&str, u32, u32)> = composed
            .records
            .iter()
            .map(|r| (&*r.layer, r.layer_rank, r.position))
            .collect();
        // Each layer keeps its own positions.
        assert_eq!(labels, [("corp", 0, 0), ("corp", 0, 1), ("iana", 1, 0)]);
        let keys = composed.keys();
        // The same (name, ports, protocol) in two layers: two keys, ordinal 0 each.
        assert_eq!(keys[0].ordinal, 0);
        assert_eq!(keys[2].ordinal, 0);
        assert_ne!(keys[0], keys[2]);
        assert_eq!(&*keys[2].layer, "iana");
        assert_eq!(composed.source.path, "corp=c.csv,iana=i.csv");
        assert!(composed.source.layered);
        assert_eq!(composed.source.format_label(), "layered");
        // A single unnamed layer is the registry as it was.
        let single = compose(vec![(String::new(), registry(&["https"], "i"))]);
        assert_eq!(single.source.path, "i.csv");
        assert!(single.records[0].layer.is_empty());
    }
}
