//! `portolan lint`: the port problems of Kubernetes manifests.
//!
//! # Layout
//! * [`model`]: the port specs the rules read (objects, container ports,
//!   Service ports, positions), independent of YAML.
//! * [`yaml`]: Kubernetes YAML (multi-document, `kind: List`) to a
//!   [`model::Manifest`], bounded in size, a broken document reported
//!   without hiding the others.
pub mod model;
pub mod yaml;
