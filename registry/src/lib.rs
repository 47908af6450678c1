//! The IANA Service Name and Transport Protocol Port Number Registry as data:
//! the domain model, parsers for every format the registry ships in, and the
//! concurrent index that answers lookups while reloads are applied.
//!
//! This crate knows nothing of networking: it depends on neither tokio nor
//! tonic nor prost, so the server, the client's offline and replica modes and
//! the CLI all share one implementation.
//!
//! # Layout
//! * [`model`]: [`Record`] (one registry row, nothing lost) and its value
//!   types: [`PortRange`], [`Protocol`], [`RecordState`], [`PortClass`],
//!   [`RegistryDate`], [`Person`], [`RecordKey`].
//! * [`registry`]: [`Registry`], an immutable, ordered set of records plus
//!   where they came from ([`SourceInfo`]).
//! * [`mod@parse`]: format detection and one parser per format (IANA CSV, IANA
//!   XML, IANA plain text, `/etc/services`, nmap-services, each optionally
//!   gzip-compressed), returning the registry plus line-numbered
//!   diagnostics, or one error naming the line.
//! * [`diff`]: [`Diff`], the difference between two registries by
//!   [`RecordKey`]; the same value the server publishes to watchers and
//!   client caches apply.
//! * [`query`]: filters, search ranking and canonical ordering.
//! * [`index`]: [`Index`], the live dashmap-based index: point lookups,
//!   scans over an immutable [`Snapshot`], and reloads applied as diffs with
//!   guard rails.
//! * [`layers`]: several sources as one registry, each record labelled
//!   with its layer ([`LayerSpec`], [`layers::compose`]).
//! * [`export`]: writing a registry as IANA CSV or `/etc/services`.
//! * [`embedded`]: the default registry compiled into the binary.
//! * [`mesh`]: the mesh hints dataset ([`Hints`], compiled in from
//!   `data/mesh/hints.toml`): per well-known port, whether the server
//!   speaks first and what Istio and Linkerd do with it; and the RFC 6335
//!   syntax of service names ([`check_service_name`]).

pub mod conflicts;
pub mod content;
pub mod diff;
pub mod embedded;
pub mod export;
pub mod index;
pub mod layers;
pub mod mesh;
pub mod model;
pub mod parse;
pub mod query;
pub mod registry;

pub use content::ContentId;
pub use diff::Diff;
pub use index::{
    ApplyError, Change, EntryLookup, Footprint, Index, IndexEntry, LookupResult,
    RANGE_CACHE_ENTRIES, ReloadGuard, Snapshot,
};
pub use layers::LayerSpec;
pub use mesh::{
    Hint, Hints, HintsError, NameProblem, PortDescription, check_kubernetes_port_name,
    check_service_name, is_kubernetes_port_name,
};
pub use model::{
    Person, PortClass, PortRange, Protocol, Record, RecordKey, RecordState, RegistryDate,
    fold_name, folded_name,
};
pub use parse::{Diagnostic, Format, ParseError, ParseLimits, Parsed, parse, parse_with_limits};
pub use query::{Filter, SearchHits, SearchQuery, SearchStep};
pub use registry::{Registry, SourceInfo};
