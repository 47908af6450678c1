//! `portolan lint`: the port problems of Kubernetes manifests.
//!
//! # Layout
//! * [`model`]: the port specs the rules read (objects, container ports,
//!   Service ports, positions), independent of YAML.
//! * [`yaml`]: Kubernetes YAML (multi-document, `kind: List`) to a
//!   [`model::Manifest`], bounded in size, a broken document reported
//!   without hiding the others.
//! * [`rules`]: [`rules::lint`], the rules ([`rules::Rule`]) over a
//!   manifest, the registry ([`rules::RegistryView`], implemented for
//!   [`portolan_registry::Index`]) and the mesh hints.
//! * [`report`]: text, JSON and SARIF 2.1.0 renderings.
//!
//! [`lint_text`] is the whole pipeline for one input; the CLI calls it, and
//! a server can call [`rules::lint`] on a manifest built from protobuf.

pub mod model;
pub mod report;
pub mod rules;
pub mod yaml;

use portolan_registry::Hints;

pub use model::{Manifest, Position};
pub use rules::{Finding, Mesh, Options, RegistryView, Rule, Severity, lint};

/// Parses `text` (every document) and lints it.
pub fn lint_text(
    text: &str,
    registry: &dyn RegistryView,
    hints: &Hints,
    options: &Options,
) -> Vec<Finding> {
    lint(&yaml::parse(text), registry, hints, options)
}
