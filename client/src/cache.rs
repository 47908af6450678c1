//! [`CachedClient`]: an exact, bounded, concurrent cache in front of a
//! [`Client`].
//!
//! # Design
//! * **Storage**: one [`DashMap`] per (lookup kind, protocol slot): ports
//!   keyed by `u16`, names by their folded `Box<str>`
//!   ([`portolan_registry::folded_name`], as the server folds them; a hit
//!   for an already-folded ASCII name allocates nothing).
//!   Values hold an `Arc` of the answer; a hit clones that `Arc`.
//! * **Negative caching**: NOT_FOUND answers are cached too, with their own
//!   (shorter) TTL.
//! * **Single flight**: concurrent misses for one key share one RPC through
//!   a map of in-flight [`futures::future::Shared`] futures. A caller joins
//!   a flight only when no change was applied since the flight started, and
//!   each flight runs as its own task, so a flight every caller abandoned
//!   still ends and leaves the map.
//! * **Exact invalidation**: a background task holds a `Watch` stream in
//!   INVALIDATE mode (the shared driver of `crate::follow`). A delta's
//!   names (every name and alias of the old and new content) drop their
//!   name entries. A changed key with name `N` and port range `R` drops
//!   the name entries of `N` (folded) and the port entries of every port
//!   of `R`, for every protocol. A snapshot event drops everything.
//! * **Only what it can vouch for** (the placeholder race of Redis
//!   client-side caching, across replicas): an answer, found or NOT_FOUND
//!   (whose state comes in the `portolan-state-id` trailer), is stored
//!   only when it was read from the very state (content id) the watch
//!   stream has reached; any other answer is returned but not stored. A
//!   replica that has not applied a change yet, or has applied one the
//!   stream has not brought yet, answers from another state, so its
//!   answers are never cached. The stream's state is set before each
//!   change's invalidations and checked again after inserting, so an
//!   invalidation racing the insert removes the entry or is seen by the
//!   check.
//! * **Staleness**: until the watch stream is connected and caught up, and
//!   whenever it breaks (an error, or no event for `heartbeat_timeout`),
//!   the cache is *not live*: hits are revalidated with an RPC. The task
//!   reconnects with backoff (to any replica), sending the state it holds,
//!   so the server answers with a heartbeat (same content), a delta (exact
//!   invalidation) or a snapshot (drop all).
//!
//! # The guarantee
//! A hit returns an answer read from the state the watch stream last
//! reached, and is served only while the stream is live; every change
//! after that state drops (before [`CacheStats::version`] and
//! [`CacheStats::state_id`] move to it) every entry it can alter. So once
//! the stream has applied a change, no lookup returns what that change
//! replaced (stale-if-error answers aside, which say so), whichever replicas
//! the lookups reach.
//! * **Stale-if-error**: when an RPC fails because the server is
//!   unreachable, an entry (expired or unconfirmed) is still served, marked
//!   [`Cached::stale`], for up to `max_staleness` past the moment it
//!   stopped being known-valid.
//! * **Bound and eviction** (documented policy, approximate LRU): every
//!   entry records the value of a coarse access clock (advanced by each
//!   insertion) when it is read. When the cache exceeds `max_entries`, one
//!   pass removes the least recently used eighth of the entries (amortised
//!   O(1) per insertion).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use futures::future::{BoxFuture, FutureExt as _, Shared};
use portolan_registry::{Protocol, RecordKey, fold_name, folded_name};
use rustc_hash::FxBuildHasher;

use crate::follow::{Driver, DriverConfig, Follower, Held};
use crate::types::{SharedLookup, WatchEvent, WatchEventKind, WatchMode};
use crate::{Client, Error, RetryPolicy};

/// Settings of a [`CachedClient`].
///
/// # Example
/// ```
/// use std::time::Duration;
/// use portolan_client::CacheConfig;
///
/// let config = CacheConfig { max_entries: 1_000, ttl: Duration::from_secs(60), ..CacheConfig::default() };
/// assert!(config.negative_ttl <= config.ttl);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Upper bound on cached entries (positive and negative together).
    pub max_entries: usize,
    /// How long a positive answer is served without asking again (a safety
    /// net: the watch stream invalidates changed entries at once).
    pub ttl: Duration,
    /// How long a NOT_FOUND answer is served.
    pub negative_ttl: Duration,
    /// How long past its validity an entry may still be served (marked
    /// stale) while the server is unreachable.
    pub max_staleness: Duration,
    /// The watch stream is treated as broken when no event arrives for this
    /// long (the server sends a heartbeat every 10 s; three missed).
    pub heartbeat_timeout: Duration,
    /// Backoff between watch reconnection attempts (`max_attempts` unused).
    pub reconnect: RetryPolicy,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(60),
            max_staleness: Duration::from_secs(3600),
            heartbeat_timeout: portolan::WATCH_SILENCE_LIMIT,
            reconnect: RetryPolicy {
                max_attempts: u32::MAX,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(10),
            },
        }
    }
}

/// An answer from a [`CachedClient`].
///
/// # Example
/// ```
/// use portolan_client::Cached;
///
/// let c = Cached { value: 42, stale: false, version: 7 };
/// assert_eq!(c.map(|v| v + 1).value, 43);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Cached<T> {
    /// The answer.
    pub value: T,
    /// True when served from the cache while the server was unreachable and
    /// the entry could not be confirmed (stale-if-error).
    pub stale: bool,
    /// The registry version the answer was read from.
    pub version: u64,
}

impl<T> Cached<T> {
    /// Maps the value, keeping the flags.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Cached<U> {
        Cached {
            value: f(self.value),
            stale: self.stale,
            version: self.version,
        }
    }
}

/// Counters of a [`CachedClient`] ([`CachedClient::stats`]).
///
/// # Example
/// ```
/// use portolan_client::CacheStats;
///
/// let s = CacheStats::default();
/// assert_eq!(s.hits + s.misses, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Answers served from the cache (positive and negative, fresh).
    pub hits: u64,
    /// Of `hits`, the NOT_FOUND answers.
    pub negative_hits: u64,
    /// Answers served stale because the server was unreachable.
    pub stale_hits: u64,
    /// Lookups that needed an RPC (joined in-flight ones included).
    pub misses: u64,
    /// RPCs actually made (after single-flight coalescing).
    pub rpcs: u64,
    /// Entries removed by the eviction policy.
    pub evictions: u64,
    /// Entries removed by watch invalidations (snapshots included).
    pub invalidations: u64,
    /// Entries currently held.
    pub entries: u64,
    /// The last version whose invalidations are all applied, as the watch
    /// stream's server counts (0 before the first): a lookup that starts
    /// after reading it never returns content that a change up to this
    /// version replaced.
    pub version: u64,
    /// The state (content id) of that version: compare it with the
    /// `state_id` a server reports to see whether the cache has caught up
    /// with that server.
    pub state_id: u64,
    /// Whether the watch stream is connected and caught up.
    pub live: bool,
    /// How many times the watch stream was (re)connected.
    pub watch_connects: u64,
}

/// One map per protocol a query may ask for: any, tcp, udp, sctp, dccp.
const SLOTS: usize = 5;

/// A query protocol's map: its wire value (0 = any, 1-4 the IANA four).
fn slot(protocol: Option<&Protocol>) -> Result<usize, Error> {
    Ok(crate::types::request_protocol(protocol)? as usize)
}

/// The query protocol of a map.
fn slot_protocol(slot: usize) -> Option<Protocol> {
    let value = i32::try_from(slot).ok()?;
    portolan::convert::query_protocol_from_pb(value, "protocol")
        .ok()
        .flatten()
}

#[derive(Debug, Clone)]
enum Value {
    Found(SharedLookup),
    NotFound(Arc<str>),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    version: u64,
    state_id: u64,
    fetched_at: Instant,
    expires_at: Instant,
    last_access: AtomicU64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum FlightKey {
    Port(u16, usize),
    Name(Box<str>, usize),
}

/// A lookup RPC in flight, shared by the callers that missed the same key.
#[derive(Debug)]
struct Flight {
    /// Tells this flight from a later one for the same key.
    id: u64,
    /// The invalidation generation when it started.
    generation: u64,
    answer: Shared<BoxFuture<'static, Result<Cached<SharedLookup>, Error>>>,
}
type PortMap = DashMap<u16, Entry, FxBuildHasher>;
type NameMap = DashMap<Box<str>, Entry, FxBuildHasher>;

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    negative_hits: AtomicU64,
    stale_hits: AtomicU64,
    misses: AtomicU64,
    rpcs: AtomicU64,
    evictions: AtomicU64,
    invalidations: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    config: CacheConfig,
    ports: [PortMap; SLOTS],
    names: [NameMap; SLOTS],
    len: AtomicUsize,
    inflight: DashMap<FlightKey, Flight, FxBuildHasher>,
    /// Numbers the flights.
    flights: AtomicU64,
    /// The state (content id) the watch stream has reached or is applying
    /// (set before invalidating): only answers read from it are stored.
    watch_state: AtomicU64,
    /// The version whose invalidations are all applied, as the stream's
    /// server counts.
    known_version: AtomicU64,
    /// The state whose invalidations are all applied (what the stream
    /// resumes from).
    known_state: AtomicU64,
    /// Bumped before every batch of invalidations.
    generation: AtomicU64,
    /// Watch connected and caught up.
    live: AtomicBool,
    /// When the cache last stopped being live (entries fetched before it
    /// are unconfirmed from then on).
    unconfirmed_since: Mutex<Option<Instant>>,
    /// Coarse access clock for eviction.
    clock: AtomicU64,
    evicting: Mutex<()>,
    counters: Counters,
}

/// A [`Client`] with an exact local cache for `lookup_port` and
/// `lookup_name` (see the [module docs](self) for the policy). Cheap to
/// clone; the background watch task stops when the last clone is dropped.
///
/// # Example
/// ```no_run
/// use portolan_client::{CacheConfig, CachedClient, Client};
/// use portolan_registry::Protocol;
///
/// # async fn f() -> Result<(), portolan_client::Error> {
/// let client = Client::connect("http://127.0.0.1:50051").await?;
/// let cache = CachedClient::new(client, CacheConfig::default());
/// let answer = cache.lookup_port(443, Some(&Protocol::Tcp)).await?; // RPC
/// let again = cache.lookup_port(443, Some(&Protocol::Tcp)).await?;  // local
/// assert!(!again.stale);
/// println!("{:?} at version {}", answer.value.records[0].name, answer.version);
/// println!("{:?}", cache.stats());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CachedClient {
    inner: Arc<Inner>,
    driver: Arc<Driver>,
}

impl CachedClient {
    /// Wraps `client` and starts the invalidation task. Must be called in a
    /// tokio runtime.
    pub fn new(client: Client, config: CacheConfig) -> Self {
        let inner = Arc::new(Inner {
            client,
            config,
            ports: std::array::from_fn(|_| DashMap::with_hasher(FxBuildHasher)),
            names: std::array::from_fn(|_| DashMap::with_hasher(FxBuildHasher)),
            len: AtomicUsize::new(0),
            inflight: DashMap::with_hasher(FxBuildHasher),
            flights: AtomicU64::new(0),
            watch_state: AtomicU64::new(0),
            known_version: AtomicU64::new(0),
            known_state: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            live: AtomicBool::new(false),
            unconfirmed_since: Mutex::new(Some(Instant::now())),
            clock: AtomicU64::new(0),
            evicting: Mutex::new(()),
            counters: Counters::default(),
        });
        let config = DriverConfig {
            heartbeat_timeout: inner.config.heartbeat_timeout,
            reconnect: inner.config.reconnect,
        };
        let driver = Driver::start(Arc::clone(&inner), inner.client.clone(), config);
        Self {
            inner,
            driver: Arc::new(driver),
        }
    }

    /// The wrapped client (for uncached calls).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Whether the watch stream is connected and caught up (hits are served
    /// locally only then).
    pub fn is_live(&self) -> bool {
        self.inner.live.load(Ordering::Acquire)
    }

    /// Waits until the cache is live, at most `timeout`; returns whether it
    /// is.
    pub async fn wait_live(&self, timeout: Duration) -> bool {
        self.driver.wait_live(timeout).await
    }

    /// Waits until every invalidation up to `version` (as the stream's
    /// server counts) is applied and the cache is live, at most `timeout`;
    /// returns whether it happened.
    pub async fn wait_for_version(&self, version: u64, timeout: Duration) -> bool {
        self.driver.wait_for_version(version, timeout).await
    }

    /// Waits until the cache has applied every invalidation up to the state
    /// `state_id` (a content id, as the server reports it) and is live, at
    /// most `timeout`; returns whether it happened.
    pub async fn wait_for_state(&self, state_id: u64, timeout: Duration) -> bool {
        self.driver.wait_for_state(state_id, timeout).await
    }

    /// Current counters.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            negative_hits: c.negative_hits.load(Ordering::Relaxed),
            stale_hits: c.stale_hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            rpcs: c.rpcs.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            invalidations: c.invalidations.load(Ordering::Relaxed),
            entries: self.inner.len.load(Ordering::Relaxed) as u64,
            // Published once the change's invalidations are applied: an
            // answer read after this is never older than it.
            version: self.inner.known_version.load(Ordering::SeqCst),
            state_id: self.inner.known_state.load(Ordering::SeqCst),
            live: self.is_live(),
            watch_connects: self.driver.progress().connects,
        }
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.inner.clear();
    }

    /// Every record covering `port` for `protocol` (`None` = any); served
    /// locally when cached and live. [`Error::NotFound`] when none (cached
    /// too).
    pub async fn lookup_port(
        &self,
        port: u16,
        protocol: Option<&Protocol>,
    ) -> Result<Cached<SharedLookup>, Error> {
        let slot = slot(protocol)?;
        if let Some(hit) = self
            .inner
            .fresh(self.inner.ports[slot].get(&port).as_deref())
        {
            return hit;
        }
        self.inner.counters.misses.fetch_add(1, Ordering::Relaxed);
        self.fetch(FlightKey::Port(port, slot)).await
    }

    /// Every record named `name` (case-insensitive) for `protocol`; served
    /// locally when cached and live. [`Error::NotFound`] when none.
    pub async fn lookup_name(
        &self,
        name: &str,
        protocol: Option<&Protocol>,
    ) -> Result<Cached<SharedLookup>, Error> {
        let slot = slot(protocol)?;
        let key = folded_name(name);
        if let Some(hit) = self
            .inner
            .fresh(self.inner.names[slot].get(key.as_ref()).as_deref())
        {
            return hit;
        }
        self.inner.counters.misses.fetch_add(1, Ordering::Relaxed);
        self.fetch(FlightKey::Name(key.as_ref().into(), slot)).await
    }

    /// One RPC for every concurrent miss of `key`. A caller joins a flight
    /// only when no change was applied since it started (a flight from
    /// before a change may carry what the change replaced); otherwise it
    /// starts a new one. A flight runs as its own task, so it finishes (and
    /// leaves the map) even when every caller gave up on it.
    async fn fetch(&self, key: FlightKey) -> Result<Cached<SharedLookup>, Error> {
        let generation = self.inner.generation.load(Ordering::SeqCst);
        let flight = match self.inner.inflight.entry(key.clone()) {
            dashmap::Entry::Occupied(e) if e.get().generation == generation => {
                e.get().answer.clone()
            }
            entry => {
                let id = self.inner.flights.fetch_add(1, Ordering::Relaxed);
                let task = tokio::spawn(fetch_and_fill(
                    Arc::downgrade(&self.inner),
                    self.inner.client.clone(),
                    key,
                    id,
                ));
                let answer = async move {
                    task.await.unwrap_or_else(|e| {
                        Err(Error::Internal {
                            code: "Internal".into(),
                            message: format!("the lookup task failed: {e}"),
                        })
                    })
                }
                .boxed()
                .shared();
                let flight = Flight {
                    id,
                    generation,
                    answer: answer.clone(),
                };
                match entry {
                    dashmap::Entry::Occupied(mut e) => {
                        e.insert(flight);
                    }
                    dashmap::Entry::Vacant(v) => {
                        v.insert(flight);
                    }
                }
                answer
            }
        };
        flight.await
    }
}

impl Inner {
    /// A fresh answer from `entry`, when the cache is live and the entry
    /// has not expired.
    #[inline]
    fn fresh(&self, entry: Option<&Entry>) -> Option<Result<Cached<SharedLookup>, Error>> {
        let entry = entry?;
        if !self.live.load(Ordering::Acquire) || Instant::now() >= entry.expires_at {
            return None;
        }
        let now = self.clock.load(Ordering::Relaxed);
        if entry.last_access.load(Ordering::Relaxed) != now {
            entry.last_access.store(now, Ordering::Relaxed);
        }
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        Some(self.answer(entry, false))
    }

    fn answer(&self, entry: &Entry, stale: bool) -> Result<Cached<SharedLookup>, Error> {
        match &entry.value {
            Value::Found(v) => Ok(Cached {
                value: Arc::clone(v),
                stale,
                version: entry.version,
            }),
            Value::NotFound(message) => {
                if !stale {
                    self.counters.negative_hits.fetch_add(1, Ordering::Relaxed);
                }
                Err(Error::NotFound {
                    message: message.to_string(),
                    stale,
                    state_id: entry.state_id,
                })
            }
        }
    }

    fn with_entry<R>(&self, key: &FlightKey, f: impl FnOnce(Option<&Entry>) -> R) -> R {
        match key {
            FlightKey::Port(p, s) => f(self.ports[*s].get(p).as_deref()),
            FlightKey::Name(n, s) => f(self.names[*s].get(n.as_ref()).as_deref()),
        }
    }

    /// Stale-if-error: the entry for `key` when it is within
    /// `max_staleness` of the moment it stopped being known-valid.
    fn stale_answer(&self, key: &FlightKey) -> Option<Result<Cached<SharedLookup>, Error>> {
        let unconfirmed = *self
            .unconfirmed_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        self.with_entry(key, |entry| {
            let entry = entry?;
            let mut valid_until = entry.expires_at;
            if let Some(since) = unconfirmed {
                valid_until = valid_until.min(since.max(entry.fetched_at));
            }
            if now.saturating_duration_since(valid_until) > self.config.max_staleness {
                return None;
            }
            self.counters.stale_hits.fetch_add(1, Ordering::Relaxed);
            Some(self.answer(entry, true))
        })
    }

    fn insert(&self, key: &FlightKey, entry: Entry) {
        let replaced = match key {
            FlightKey::Port(p, s) => self.ports[*s].insert(*p, entry).is_some(),
            FlightKey::Name(n, s) => self.names[*s].insert(n.clone(), entry).is_some(),
        };
        self.clock.fetch_add(1, Ordering::Relaxed);
        if !replaced {
            let len = self.len.fetch_add(1, Ordering::Relaxed) + 1;
            if len > self.config.max_entries {
                self.evict();
            }
        }
    }

    /// Removes the entry for `key` when it is the one fetched at `at`.
    fn remove_if_fetched_at(&self, key: &FlightKey, at: Instant) {
        let removed = match key {
            FlightKey::Port(p, s) => self.ports[*s]
                .remove_if(p, |_, e| e.fetched_at == at)
                .is_some(),
            FlightKey::Name(n, s) => self.names[*s]
                .remove_if(n.as_ref(), |_, e| e.fetched_at == at)
                .is_some(),
        };
        if removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Removes the least recently used eighth of the entries.
    fn evict(&self) {
        let Ok(_guard) = self.evicting.try_lock() else {
            return; // another thread is evicting
        };
        if self.len.load(Ordering::Relaxed) <= self.config.max_entries {
            return;
        }
        let mut ages: Vec<u64> = Vec::with_capacity(self.len.load(Ordering::Relaxed));
        for map in &self.ports {
            ages.extend(map.iter().map(|e| e.last_access.load(Ordering::Relaxed)));
        }
        for map in &self.names {
            ages.extend(map.iter().map(|e| e.last_access.load(Ordering::Relaxed)));
        }
        if ages.is_empty() {
            return;
        }
        let excess = ages.len().saturating_sub(self.config.max_entries);
        let target = (ages.len() / 8).max(excess).max(1).min(ages.len());
        let (_, &mut threshold, _) = ages.select_nth_unstable(target - 1);
        let mut removed = 0usize;
        let mut budget = target;
        for map in &self.ports {
            map.retain(|_, e| {
                let evict = budget > 0 && e.last_access.load(Ordering::Relaxed) <= threshold;
                if evict {
                    budget -= 1;
                    removed += 1;
                }
                !evict
            });
        }
        for map in &self.names {
            map.retain(|_, e| {
                let evict = budget > 0 && e.last_access.load(Ordering::Relaxed) <= threshold;
                if evict {
                    budget -= 1;
                    removed += 1;
                }
                !evict
            });
        }
        self.len.fetch_sub(removed, Ordering::Relaxed);
        self.counters
            .evictions
            .fetch_add(removed as u64, Ordering::Relaxed);
    }

    fn clear(&self) -> usize {
        let mut removed = 0usize;
        for map in &self.ports {
            map.retain(|_, _| {
                removed += 1;
                false
            });
        }
        for map in &self.names {
            map.retain(|_, _| {
                removed += 1;
                false
            });
        }
        self.len.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    /// Drops every entry a changed key answers: its name (all protocols)
    /// and every port of its range (all protocols).
    /// Drops the entries of the folded name `folded` (all protocols).
    fn invalidate_name(&self, folded: &str) -> usize {
        let removed = self
            .names
            .iter()
            .filter(|map| map.remove(folded).is_some())
            .count();
        self.len.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    fn invalidate(&self, key: &RecordKey) -> usize {
        let names = key
            .name
            .as_deref()
            .map_or(0, |name| self.invalidate_name(&fold_name(name)));
        let mut removed = 0usize;
        if let Some(range) = key.ports {
            // A wide range (e.g. an Unassigned block) is cheaper to apply
            // by scanning what is cached.
            if range.len() as usize > self.len.load(Ordering::Relaxed).max(64) {
                for map in &self.ports {
                    map.retain(|port, _| {
                        let hit = range.contains(*port);
                        removed += usize::from(hit);
                        !hit
                    });
                }
            } else {
                for port in range.start..=range.end {
                    for map in &self.ports {
                        removed += usize::from(map.remove(&port).is_some());
                    }
                }
            }
        }
        self.len.fetch_sub(removed, Ordering::Relaxed);
        names + removed
    }

    fn mark_live(&self, live: bool) {
        let was = self.live.swap(live, Ordering::AcqRel);
        if was != live {
            let mut since = self
                .unconfirmed_since
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            *since = if live { None } else { Some(Instant::now()) };
        }
    }
}

/// The single-flight body: one RPC, then the cache update under the race
/// rules (see the module docs).
async fn fetch_and_fill(
    inner: std::sync::Weak<Inner>,
    client: Client,
    key: FlightKey,
    id: u64,
) -> Result<Cached<SharedLookup>, Error> {
    if let Some(i) = inner.upgrade() {
        i.counters.rpcs.fetch_add(1, Ordering::Relaxed);
    }
    let result = match &key {
        FlightKey::Port(p, s) => client.lookup_port(*p, slot_protocol(*s).as_ref()).await,
        FlightKey::Name(n, s) => client.lookup_name(n, slot_protocol(*s).as_ref()).await,
    };
    let Some(inner) = inner.upgrade() else {
        return result.map(|r| Cached {
            version: r.version,
            value: Arc::new(r),
            stale: false,
        });
    };
    let outcome = match result {
        Ok(lookup) => {
            let (version, state_id) = (lookup.version, lookup.content_id.0);
            let value = Arc::new(lookup);
            let ttl = inner.config.ttl;
            inner.store_if_current(
                &key,
                Value::Found(Arc::clone(&value)),
                version,
                state_id,
                ttl,
            );
            Ok(Cached {
                value,
                stale: false,
                version,
            })
        }
        Err(Error::NotFound {
            message, state_id, ..
        }) => {
            let value = Value::NotFound(message.as_str().into());
            let ttl = inner.config.negative_ttl;
            inner.store_if_current(&key, value, 0, state_id, ttl);
            Err(Error::NotFound {
                message,
                stale: false,
                state_id,
            })
        }
        Err(e) if e.is_unreachable() => match inner.stale_answer(&key) {
            Some(answer) => answer,
            None => Err(e),
        },
        Err(e) => Err(e),
    };
    // Only this flight: a later one may have replaced it.
    inner.inflight.remove_if(&key, |_, flight| flight.id == id);
    outcome
}

impl Inner {
    /// Stores an answer read from `state_id` when that is the state the
    /// watch stream has reached (see the module docs); otherwise the answer
    /// is only returned.
    fn store_if_current(
        &self,
        key: &FlightKey,
        value: Value,
        version: u64,
        state_id: u64,
        ttl: Duration,
    ) {
        let current = || self.watch_state.load(Ordering::SeqCst);
        if state_id == 0 || state_id != current() {
            return;
        }
        let now = Instant::now();
        self.insert(
            key,
            Entry {
                value,
                version,
                state_id,
                fetched_at: now,
                expires_at: now + ttl,
                last_access: AtomicU64::new(self.clock.load(Ordering::Relaxed)),
            },
        );
        // Re-check after inserting: a change applied meanwhile either
        // removed the entry or is visible here.
        if current() != state_id {
            self.remove_if_fetched_at(key, now);
        }
    }
}

impl Follower for Inner {
    const MODE: WatchMode = WatchMode::Invalidate;

    fn held(&self) -> Held {
        Held {
            version: self.known_version.load(Ordering::SeqCst),
            state_id: self.known_state.load(Ordering::SeqCst),
        }
    }

    async fn apply(&self, event: WatchEvent) -> Result<bool, String> {
        let last = match event.kind {
            WatchEventKind::Snapshot { last, .. } => {
                // INVALIDATE mode: forget everything cached before `version`.
                self.watch_state.store(event.state_id, Ordering::SeqCst);
                self.generation.fetch_add(1, Ordering::SeqCst);
                let removed = self.clear();
                self.counters
                    .invalidations
                    .fetch_add(removed as u64, Ordering::Relaxed);
                last
            }
            WatchEventKind::Delta {
                invalidated,
                invalidated_names,
                last,
                ..
            } => {
                self.watch_state.store(event.state_id, Ordering::SeqCst);
                self.generation.fetch_add(1, Ordering::SeqCst);
                let removed: usize = invalidated
                    .iter()
                    .map(|k| self.invalidate(k))
                    .sum::<usize>()
                    + invalidated_names
                        .iter()
                        .map(|name| self.invalidate_name(&fold_name(name)))
                        .sum::<usize>();
                self.counters
                    .invalidations
                    .fetch_add(removed as u64, Ordering::Relaxed);
                last
            }
            WatchEventKind::Heartbeat => true,
        };
        if last {
            self.known_version.store(event.version, Ordering::SeqCst);
            self.known_state.store(event.state_id, Ordering::SeqCst);
        }
        Ok(last)
    }

    fn set_live(&self, live: bool) {
        self.mark_live(live);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_reject_other() {
        assert!(slot(Some(&Protocol::Other("ddp".into()))).is_err());
        assert_eq!(slot(Some(&Protocol::Udp)).ok(), Some(2));
        assert_eq!(slot_protocol(2), Some(Protocol::Udp));
    }
}
