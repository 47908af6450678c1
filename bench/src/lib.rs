//! `portolan-bench`: a load tool that measures a Portolan server against a
//! minimal tonic baseline serving the same `PortRegistryService` service with no
//! registry work, under the same load, in the same run.
//!
//! # Layout
//! * [`util`]: duration parsing, loopback checks, statistics helpers.
//! * [`procstat`]: server CPU time and memory read from `/proc`.
//! * [`servers`]: starting (and stopping) server processes, readiness.
//! * [`baseline`]: the baseline server (`portolan-bench baseline-server`).
//! * [`workload`]: the request mix and the ports and names it draws from.
//! * [`load`]: the closed-loop load generator (N connections × M requests in
//!   flight) with an HDR latency histogram.
//! * [`summary`]: the load's client, which reads of each reply only what
//!   the load checks (version, record count, item error).
//! * [`report`]: result blocks, printed compactly or as JSON.
//! * [`plot`]: the sweep's SVG chart.
//! * [`scenarios`]: one module per scenario (`steady`, `reload`,
//!   `watch-fanout`, `startup`, `cli`, `reload-cost`, `sweep`, `soak`,
//!   `hostile`).
//!
//! Every scenario is bounded in time and request count, talks to loopback
//! addresses only, and reports failures so that the binary exits non-zero
//! when a request failed unexpectedly.

pub mod baseline;
pub mod load;
pub mod plot;
pub mod procstat;
pub mod report;
pub mod scenarios;
pub mod servers;
pub mod summary;
pub mod util;
pub mod workload;
