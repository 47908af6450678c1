//! The closed-loop load generator: `connections` HTTP/2 connections, and
//! `in_flight` tasks spread over them round-robin, each sending its next
//! request as soon as the previous one is answered, until the duration
//! passes or the request budget is spent. Latencies go into an HDR
//! histogram (nanoseconds, 3 significant digits); answers are sorted into
//! successes, expected misses (NOT_FOUND) and failures by status code. A
//! reply is read as far as [`crate::summary`] decodes it: a hit whose first
//! record is missing or does not decode fails as `BadReply`.
//!
//! With version checking on, every connection remembers the highest
//! registry version it has seen answered; a response whose version is lower
//! than what that connection had already seen *before the request was
//! sent* is a regression (the server's promise is that versions never go
//! backwards).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use portolan::pb::{
    BatchLookupRequest, LookupNameRequest, LookupPortRequest, batch_lookup_request,
};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tonic::Code;
use tonic::transport::Channel;

use crate::procstat;
use crate::servers::{self, Kind, Target};
use crate::summary::client::port_registry_service_client::PortRegistryServiceClient;
use crate::summary::{LookupSummary, first_record_decodes};
use crate::workload::{Miss, Op, Workload};

/// How much load to send.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// HTTP/2 connections.
    pub connections: usize,
    /// Requests in flight in total (spread over the connections).
    pub in_flight: usize,
    /// How long to measure.
    pub duration: Duration,
    /// Unmeasured load before measuring (connections, caches, JIT-free but
    /// allocator and TCP warm-up).
    pub warmup: Duration,
    /// Upper bound on measured requests.
    pub max_requests: u64,
    /// Per-request client deadline; a request exceeding it is a failure.
    pub request_timeout: Duration,
    /// Check that versions never go backwards per connection.
    pub check_versions: bool,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl Latency {
    fn from_hist(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1e3;
        Self {
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
            mean_us: h.mean() / 1e3,
        }
    }
}

/// The result of one measured run against one server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunStats {
    /// Which server.
    pub server: Kind,
    /// Connections used.
    pub connections: usize,
    /// Requests in flight.
    pub in_flight: usize,
    /// Completed requests (ok + not_found + failed); a BatchLookup stream
    /// counts as one.
    pub requests: u64,
    /// Successful answers.
    pub ok: u64,
    /// Expected misses (NOT_FOUND, including per-item NOT_FOUND in batches
    /// where no item failed otherwise).
    pub not_found: u64,
    /// Unexpected failures.
    pub failed: u64,
    /// Failures by status code name.
    pub errors: BTreeMap<String, u64>,
    /// BatchLookup items answered.
    pub batch_items: u64,
    /// Measured wall time in seconds.
    pub elapsed_s: f64,
    /// Completed requests per second.
    pub throughput_rps: f64,
    /// Latency percentiles.
    pub latency: Latency,
    /// Server CPU time (user + system) per request in microseconds, when the
    /// server's pid is known.
    pub server_cpu_us_per_request: Option<f64>,
    /// Server peak resident memory (VmHWM) in MiB at the end of the run,
    /// when the pid is known.
    pub server_peak_rss_mib: Option<f64>,
    /// Responses whose version was lower than one already seen on the same
    /// connection before the request was sent.
    pub version_regressions: u64,
    /// Mean encoded size in bytes of a successful lookup reply (for a
    /// BatchLookup stream, of one item).
    pub mean_reply_bytes: f64,
    /// Lowest version answered.
    pub version_min: Option<u64>,
    /// Highest version answered.
    pub version_max: Option<u64>,
}

impl RunStats {
    /// Whether the run had unexpected failures or version regressions.
    pub fn has_failures(&self) -> bool {
        self.failed > 0 || self.version_regressions > 0
    }
}

/// What one request came to.
enum Outcome {
    /// Answered; versions (lowest, highest) when the answer carries any, and
    /// the replies' encoded bytes and count.
    Ok(Option<(u64, u64)>, Replies),
    /// NOT_FOUND (expected for misses; tolerated for any lookup).
    NotFound,
    /// Anything else.
    Failed(String),
}

/// Encoded bytes of the replies to one request, and how many there were.
#[derive(Debug, Clone, Copy, Default)]
struct Replies {
    bytes: u64,
    count: u64,
}

impl Replies {
    fn of<M: prost::Message>(message: &M) -> Self {
        Self {
            bytes: message.encoded_len() as u64,
            count: 1,
        }
    }

    fn add(&mut self, other: Replies) {
        self.bytes += other.bytes;
        self.count += other.count;
    }
}

/// Per-task tallies, merged at the end.
struct Tally {
    replies: Replies,
    hist: Histogram<u64>,
    ok: u64,
    not_found: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    batch_items: u64,
    regressions: u64,
    vmin: Option<u64>,
    vmax: Option<u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            // Invariant: 1 ns .. 120 s at 3 significant digits are valid
            // bounds (low >= 1, high >= 2 * low, sigfig <= 5), so this
            // cannot fail.
            hist: Histogram::new_with_bounds(1, 120_000_000_000, 3)
                .expect("valid histogram bounds"),
            replies: Replies::default(),
            ok: 0,
            not_found: 0,
            failed: 0,
            errors: BTreeMap::new(),
            batch_items: 0,
            regressions: 0,
            vmin: None,
            vmax: None,
        }
    }

    fn merge(&mut self, other: Tally) {
        let _ = self.hist.add(&other.hist);
        self.replies.add(other.replies);
        self.ok += other.ok;
        self.not_found += other.not_found;
        self.failed += other.failed;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.batch_items += other.batch_items;
        self.regressions += other.regressions;
        self.vmin = min_opt(self.vmin, other.vmin);
        self.vmax = self.vmax.max(other.vmax);
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Open connections to one server, with their version trackers.
#[derive(Debug, Clone)]
pub struct Connections {
    target: Target,
    channels: Vec<(Channel, Arc<AtomicU64>)>,
}

impl Connections {
    /// Opens `n` connections (at least one) to `target`.
    pub async fn open(target: Target, n: usize) -> Result<Self> {
        let mut channels = Vec::with_capacity(n.max(1));
        for _ in 0..n.max(1) {
            let ch = servers::connect(target.addr)
                .await
                .with_context(|| format!("connecting to {} at {}", target.kind, target.addr))?;
            channels.push((ch, Arc::new(AtomicU64::new(0))));
        }
        Ok(Self { target, channels })
    }
}

/// Runs one measured load (after its warm-up) against `target` on fresh
/// connections.
pub async fn run(target: Target, workload: Arc<Workload>, cfg: &LoadConfig) -> Result<RunStats> {
    let conns = Connections::open(target, cfg.connections).await?;
    run_on(&conns, workload, cfg).await
}

/// Runs one measured load (after its warm-up) on existing connections.
pub async fn run_on(
    conns: &Connections,
    workload: Arc<Workload>,
    cfg: &LoadConfig,
) -> Result<RunStats> {
    let target = conns.target;
    if !cfg.warmup.is_zero() {
        let _ = phase(conns, &workload, cfg, cfg.warmup, u64::MAX).await?;
    }
    let cpu_before = target.pid.and_then(|p| procstat::cpu_time(p).ok());
    let start = Instant::now();
    let tally = phase(conns, &workload, cfg, cfg.duration, cfg.max_requests).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_after = target.pid.and_then(|p| procstat::cpu_time(p).ok());
    let requests = tally.ok + tally.not_found + tally.failed;
    let server_cpu_us_per_request = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) if requests > 0 => {
            Some(b.saturating_sub(a).as_secs_f64() * 1e6 / requests as f64)
        }
        _ => None,
    };
    let server_peak_rss_mib = target
        .pid
        .and_then(|p| procstat::peak_rss_kib(p).ok())
        .map(|kib| kib as f64 / 1024.0);
    Ok(RunStats {
        server: target.kind,
        connections: conns.channels.len(),
        in_flight: cfg.in_flight.max(1),
        requests,
        ok: tally.ok,
        not_found: tally.not_found,
        failed: tally.failed,
        errors: tally.errors,
        batch_items: tally.batch_items,
        elapsed_s: elapsed,
        throughput_rps: if elapsed > 0.0 {
            requests as f64 / elapsed
        } else {
            0.0
        },
        latency: Latency::from_hist(&tally.hist),
        server_cpu_us_per_request,
        server_peak_rss_mib,
        version_regressions: tally.regressions,
        mean_reply_bytes: if tally.replies.count > 0 {
            tally.replies.bytes as f64 / tally.replies.count as f64
        } else {
            0.0
        },
        version_min: tally.vmin,
        version_max: tally.vmax,
    })
}

async fn phase(
    conns: &Connections,
    workload: &Arc<Workload>,
    cfg: &LoadConfig,
    duration: Duration,
    max_requests: u64,
) -> Result<Tally> {
    let deadline = Instant::now() + duration;
    let issued = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(cfg.in_flight.max(1));
    for i in 0..cfg.in_flight.max(1) {
        let (channel, seen) = conns.channels[i % conns.channels.len()].clone();
        let workload = Arc::clone(workload);
        let issued = Arc::clone(&issued);
        let timeout = cfg.request_timeout;
        let check = cfg.check_versions;
        tasks.push(tokio::spawn(async move {
            let mut client = PortRegistryServiceClient::new(channel);
            let mut rng = SmallRng::seed_from_u64(0x5eed_0000 + i as u64);
            let mut tally = Tally::new();
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max_requests
            {
                let op = workload.mix.pick(&mut rng);
                let floor = seen.load(Ordering::Acquire);
                let t0 = Instant::now();
                let outcome = match tokio::time::timeout(
                    timeout,
                    request(&mut client, &workload, op, &mut rng),
                )
                .await
                {
                    Ok(o) => o,
                    Err(_) => Outcome::Failed("ClientTimeout".into()),
                };
                let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let _ = tally.hist.record(ns.max(1));
                match outcome {
                    Outcome::Ok(versions, replies) => {
                        tally.ok += 1;
                        tally.replies.add(replies);
                        if let Some((lo, hi)) = versions {
                            if check && lo < floor {
                                tally.regressions += 1;
                            }
                            seen.fetch_max(hi, Ordering::AcqRel);
                            tally.vmin = min_opt(tally.vmin, Some(lo));
                            tally.vmax = tally.vmax.max(Some(hi));
                        }
                        if op == Op::Batch {
                            tally.batch_items += workload.batch_size as u64;
                        }
                    }
                    Outcome::NotFound => tally.not_found += 1,
                    Outcome::Failed(code) => {
                        tally.failed += 1;
                        *tally.errors.entry(code).or_default() += 1;
                    }
                }
            }
            tally
        }));
    }
    let mut total = Tally::new();
    for t in tasks {
        total.merge(t.await.context("load task panicked")?);
    }
    Ok(total)
}

fn status_outcome(result: Result<tonic::Response<LookupSummary>, tonic::Status>) -> Outcome {
    match result {
        Ok(r) if !first_record_decodes(&r.get_ref().records) => Outcome::Failed("BadReply".into()),
        Ok(r) => {
            let v = r.get_ref().version;
            Outcome::Ok(Some((v, v)), Replies::of(r.get_ref()))
        }
        Err(s) if s.code() == Code::NotFound => Outcome::NotFound,
        Err(s) => Outcome::Failed(format!("{:?}", s.code())),
    }
}

async fn request(
    client: &mut PortRegistryServiceClient<Channel>,
    workload: &Workload,
    op: Op,
    rng: &mut SmallRng,
) -> Outcome {
    let port = |port: u16| LookupPortRequest {
        port: u32::from(port),
        protocol: 0,
    };
    let name = |name: &str| LookupNameRequest {
        name: name.to_string(),
        protocol: 0,
    };
    match op {
        Op::PortExact => {
            let p = workload.exact_port(rng);
            status_outcome(client.lookup_port(port(p)).await)
        }
        Op::PortInRange => {
            let p = workload.range_port(rng);
            status_outcome(client.lookup_port(port(p)).await)
        }
        Op::Name => {
            let n = workload.name(rng).to_string();
            status_outcome(client.lookup_name(name(&n)).await)
        }
        Op::Miss => match workload.miss(rng) {
            Miss::Port(p) => status_outcome(client.lookup_port(port(p)).await),
            Miss::Name(n) => {
                let n = n.to_string();
                status_outcome(client.lookup_name(name(&n)).await)
            }
        },
        Op::Batch => batch(client, workload, rng).await,
    }
}

async fn batch(
    client: &mut PortRegistryServiceClient<Channel>,
    workload: &Workload,
    rng: &mut SmallRng,
) -> Outcome {
    use batch_lookup_request::Query;
    use rand::Rng as _;

    let items: Vec<BatchLookupRequest> = (0..workload.batch_size)
        .map(|i| {
            let query = match rng.random_range(0..4) {
                0 => Query::Port(u32::from(workload.exact_port(rng))),
                1 => Query::Port(u32::from(workload.range_port(rng))),
                2 => Query::Name(workload.name(rng).to_string()),
                _ => match workload.miss(rng) {
                    Miss::Port(p) => Query::Port(u32::from(p)),
                    Miss::Name(n) => Query::Name(n.to_string()),
                },
            };
            BatchLookupRequest {
                id: i.to_string(),
                query: Some(query),
                protocol: 0,
            }
        })
        .collect();
    let expected = items.len();
    let mut stream = match client.batch_lookup(futures::stream::iter(items)).await {
        Ok(r) => r.into_inner(),
        Err(s) => return Outcome::Failed(format!("{:?}", s.code())),
    };
    let mut answered = 0usize;
    let mut versions: Option<(u64, u64)> = None;
    let mut replies = Replies::default();
    loop {
        match stream.message().await {
            Ok(Some(item)) => {
                answered += 1;
                match item.error {
                    Some(e) if e.code == Code::NotFound as i32 => {}
                    Some(e) => return Outcome::Failed(format!("Batch{:?}", Code::from(e.code))),
                    None if !first_record_decodes(&item.records) => {
                        return Outcome::Failed("BatchBadReply".into());
                    }
                    None => {
                        replies.add(Replies::of(&item));
                        let v = item.version;
                        versions = Some(match versions {
                            Some((lo, hi)) => (lo.min(v), hi.max(v)),
                            None => (v, v),
                        });
                    }
                }
            }
            Ok(None) => break,
            Err(s) => return Outcome::Failed(format!("{:?}", s.code())),
        }
    }
    if answered != expected {
        return Outcome::Failed("BatchIncomplete".into());
    }
    Outcome::Ok(versions, replies)
}
