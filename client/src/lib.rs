//! The Portolan client library: a typed gRPC client for the IANA Service
//! Name and Transport Protocol Port Number Registry, an exact local cache in
//! front of it, and a full local replica.
//!
//! Answers use the registry's own domain types
//! ([`portolan_registry::Record`], [`portolan_registry::LookupResult`] with
//! its version), never raw protobuf; errors are one enum, [`Error`].
//!
//! # Layout
//! * [`client`]: [`Client`] and [`ClientBuilder`]: one endpoint, a list, or
//!   a DNS name re-resolved periodically (balanced), TLS/mTLS
//!   ([`TlsOptions`]), per-call deadlines, retries on UNAVAILABLE
//!   ([`RetryPolicy`]); one typed async method per RPC.
//! * [`cache`]: [`CachedClient`]: bounded [`dashmap`] cache with TTL,
//!   negative caching, single flight, exact invalidation from a `Watch`
//!   stream in INVALIDATE mode, stale-if-error ([`Cached`]).
//! * [`replica`]: [`ReplicaClient`]: a full copy in a
//!   [`portolan_registry::Index`] fed by a `Watch` stream in FULL mode;
//!   synchronous local lookups that survive server outages.
//! * `follow`: the one reconnecting `Watch` driver both of them use
//!   (heartbeat timeout, resync, backoff, progress that `wait_live` and
//!   `wait_for_version` wait on).
//! * [`types`]: [`WatchEvent`], [`BatchQuery`]/[`BatchItem`],
//!   [`ScanFilter`], [`RegistryInfo`] (and its [`LayerInfo`]s).
//! * [`error`]: the one error enum, [`Error`].
//! * [`retry`]: [`RetryPolicy`] (jittered exponential backoff).
//!
//! Background tasks (DNS re-resolution, cache invalidation, replica
//! updates) belong to the value that started them and stop when its last
//! clone is dropped. The library never reads the environment and never
//! exits the process.
//!
//! # Example
//! ```no_run
//! use portolan_client::{CacheConfig, CachedClient, Client};
//!
//! # async fn f() -> Result<(), portolan_client::Error> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! let cache = CachedClient::new(client, CacheConfig::default());
//! let https = cache.lookup_name("https", None).await?;
//! for record in https.value.records.iter() {
//!     println!("{:?} {:?}", record.ports, record.protocol);
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod cache;
pub mod client;
pub mod error;
mod follow;
pub mod replica;
pub mod retry;
pub mod types;

pub use cache::{CacheConfig, CacheStats, Cached, CachedClient};
pub use client::{
    BatchStream, Client, ClientBuilder, Described, RecordStream, ResolveFn, TlsOptions, WatchStream,
};
pub use error::Error;
pub use replica::{ReplicaClient, ReplicaConfig, ReplicaStats};
pub use retry::RetryPolicy;
pub use types::{
    BatchItem, BatchQuery, LayerInfo, LookupTarget, MeshHintsInfo, RegistryInfo, ReloadOutcome,
    ScanFilter, SharedLookup, WatchEvent, WatchEventKind, WatchMode,
};

pub use portolan_registry::{LookupResult, Protocol, Record, RecordKey, RecordState, embedded};
