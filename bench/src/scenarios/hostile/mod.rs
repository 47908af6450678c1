//! `hostile`: the attacks of issue #13 (rows 1-4, 9 and 10), one after the
//! other, each against a fresh server (the full registry, metrics on a
//! loopback port) while well-behaved clients keep using it: a health check
//! (`grpc.health.v1.Health/Check`) every 20 ms on one connection and
//! lookups (LookupPort and LookupName, alternating) at a fixed rate on
//! another, open loop (sent on schedule whatever the answers do), each with
//! a 1 s deadline. The clients run on their own thread and runtime, so the
//! attacker's tasks do not delay them inside this process.
//!
//! Each phase: server start, `--before` of clients alone, the attack
//! window, `--after` of clients alone, server stop. A `baseline` phase has
//! no attack. For each phase the report gives the clients' latency
//! (p50/p99/max) and failures before, during and after the attack, the
//! server's resident memory (sampled every 100 ms, and VmHWM), its CPU time
//! during the attack, and the attacker's outcomes (calls opened, refused,
//! ended by the server, still open when the attack stopped). A failed
//! well-behaved request (any error, or no answer within the deadline) is a
//! failure of the run; so are the row-specific promises (row 4: `/metrics`
//! parses and keeps every real method's series; row 9: every item
//! answered). An attack whose server grows past `--rss-limit-mib` is
//! stopped early (and reported) so the run cannot take the machine down.
//!
//! * [`attacks`]: the attacks;
//! * [`raw`]: raw HTTP/2 calls (headers-only, never-read) and the scrape;
//! * [`exposition`]: a strict reader of the Prometheus text format.

pub mod attacks;
pub mod exposition;
pub mod raw;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use serde_json::json;
use tokio::sync::watch;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::ServerArgs;
use crate::report::{Check, Report};
use crate::summary::client::port_registry_service_client::PortRegistryServiceClient;
use crate::summary::first_record_decodes;
use crate::util::{ms, parse_duration, quantile};
use crate::workload::Workload;
use crate::{procstat, servers};

/// One phase of the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// No attack (for comparison).
    Baseline,
    /// Row 1: headers-only LookupPort calls, reopened as they end.
    SlowHeaders,
    /// Row 2: never-read Search("a") calls with limit 2^32-1.
    SearchMax,
    /// Row 2: the same with `--search-cap` as the limit.
    SearchCap,
    /// Row 3: never-read FULL Watch streams (`--watch-lifetime`).
    WatchStall,
    /// Row 4: request paths holding `"` and `\`, then a `/metrics` scrape.
    MetricsJunk,
    /// Row 9: 20,000 and 100,000 pipelined BatchLookup items.
    BatchPipeline,
    /// Row 10: ListRecords with 60,000 repeated `states` values, in a loop.
    ListStates,
}

impl Attack {
    /// The issue row the attack reproduces.
    fn row(self) -> Option<u8> {
        match self {
            Attack::Baseline => None,
            Attack::SlowHeaders => Some(1),
            Attack::SearchMax | Attack::SearchCap => Some(2),
            Attack::WatchStall => Some(3),
            Attack::MetricsJunk => Some(4),
            Attack::BatchPipeline => Some(9),
            Attack::ListStates => Some(10),
        }
    }

    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// `hostile` arguments. Counts are clamped to bounds that keep the run
/// finite (see `Params::of`).
#[derive(Debug, Clone, Args)]
pub struct HostileArgs {
    #[command(flatten)]
    /// Server selection (a fresh server is started for every phase, so
    /// `--target` is refused).
    pub server: ServerArgs,
    /// Phases to run, in order (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [
        Attack::Baseline, Attack::SlowHeaders, Attack::SearchMax, Attack::SearchCap,
        Attack::WatchStall, Attack::MetricsJunk, Attack::BatchPipeline, Attack::ListStates,
    ])]
    pub attacks: Vec<Attack>,
    /// Clients alone before each attack.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub before: Duration,
    /// Attack window (every attack but watch-stall).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub attack_duration: Duration,
    /// Attack window of watch-stall (longer than `--watch-lifetime`, to see
    /// whether the streams end).
    #[arg(long, value_parser = parse_duration, default_value = "25s")]
    pub watch_attack_duration: Duration,
    /// Clients alone after each attack.
    #[arg(long, value_parser = parse_duration, default_value = "3s")]
    pub after: Duration,
    /// Well-behaved lookups per second (one connection, open loop).
    #[arg(long, default_value_t = 200)]
    pub lookup_rate: u32,
    /// Interval of the well-behaved health checks (own connection).
    #[arg(long, value_parser = parse_duration, default_value = "20ms")]
    pub health_every: Duration,
    /// Deadline of every well-behaved request; exceeding it is a failure.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub client_deadline: Duration,
    /// Row 1: connections.
    #[arg(long, default_value_t = 4)]
    pub slow_connections: usize,
    /// Row 1: headers-only calls kept open per connection.
    #[arg(long, default_value_t = 1024)]
    pub slow_streams: usize,
    /// Row 2: never-read Search calls (one connection).
    #[arg(long, default_value_t = 1000)]
    pub search_calls: usize,
    /// Row 2: the limit of `search-cap` (the server's documented cap).
    #[arg(long, default_value_t = 10_000)]
    pub search_cap: u32,
    /// Row 3: never-read FULL Watch streams.
    #[arg(long, default_value_t = 1024)]
    pub watch_streams: usize,
    /// Row 3: connections the streams are spread over.
    #[arg(long, default_value_t = 8)]
    pub watch_connections: usize,
    /// Row 3: the server's `--max-stream-lifetime` in that phase.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub watch_lifetime: Duration,
    /// Row 4: distinct junk request paths.
    #[arg(long, default_value_t = 200)]
    pub junk_paths: usize,
    /// Row 9: items of each pipelined BatchLookup stream (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [20_000, 100_000])]
    pub batch_items: Vec<usize>,
    /// Row 10: repeated `states` values per ListRecords call (at 1 byte
    /// each, 60,000 fits the server's 64 KiB request limit).
    #[arg(long, default_value_t = 60_000)]
    pub list_states: usize,
    /// Row 10: concurrent ListRecords loops.
    #[arg(long, default_value_t = 2)]
    pub list_loops: usize,
    /// Stop an attack early when the server's resident memory passes this
    /// (MiB): protects the machine; the phase is reported as aborted.
    #[arg(long, default_value_t = 4096)]
    pub rss_limit_mib: u64,
}

/// The attack parameters, clamped.
#[derive(Debug, Clone)]
pub struct Params {
    slow_connections: usize,
    slow_streams: usize,
    search_calls: usize,
    search_cap: u32,
    watch_streams: usize,
    watch_connections: usize,
    junk_paths: usize,
    batch_items: Vec<usize>,
    list_states: usize,
    list_loops: usize,
}

impl Params {
    fn of(a: &HostileArgs) -> Self {
        Self {
            slow_connections: a.slow_connections.clamp(1, 64),
            slow_streams: a.slow_streams.clamp(1, 4096),
            search_calls: a.search_calls.clamp(1, 10_000),
            search_cap: a.search_cap,
            watch_streams: a.watch_streams.clamp(1, 10_000),
            watch_connections: a.watch_connections.clamp(1, 256),
            junk_paths: a.junk_paths.clamp(1, 10_000),
            batch_items: a
                .batch_items
                .iter()
                .map(|&n| n.clamp(1, 1_000_000))
                .collect(),
            list_states: a.list_states.clamp(1, 1_000_000),
            list_loops: a.list_loops.clamp(1, 16),
        }
    }
}

/// Set when the attack window closes (or the memory guard trips).
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Whether the attack must stop.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once the attack must stop.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// What happened to the attacker's calls, and the attack's own findings.
#[derive(Debug, Default, serde::Serialize)]
pub struct AttackStats {
    /// Calls sent.
    pub opened: u64,
    /// Calls the server turned away (REFUSED_STREAM, RESOURCE_EXHAUSTED,
    /// UNAVAILABLE, INVALID_ARGUMENT).
    pub refused: u64,
    /// Calls the server ended otherwise (any other status or reset, or the
    /// connection going away).
    pub ended_by_server: u64,
    /// Calls still open when the attack stopped.
    pub open_at_end: u64,
    /// Bytes of answers received by the calls that ended before the attack
    /// stopped (stalled calls: at most the 64 KiB window per connection).
    pub bytes_received: u64,
    /// Every outcome by kind (`status:DeadlineExceeded`,
    /// `reset:REFUSED_STREAM`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// Attack-specific figures.
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Lines for the text report.
    pub notes: Vec<String>,
    /// Attack-specific targets.
    #[serde(skip)]
    pub checks: Vec<Check>,
    /// Broken promises (row 4, row 9).
    #[serde(skip)]
    pub failures: Vec<String>,
}

impl AttackStats {
    fn tally(&mut self, key: &str) {
        *self.outcomes.entry(key.to_string()).or_default() += 1;
    }

    fn ended(&mut self, end: &raw::End) {
        self.tally(&end.key());
        if end.is_refusal() {
            self.refused += 1;
        } else {
            self.ended_by_server += 1;
        }
    }
}

/// What an attack gets.
#[derive(Debug, Clone)]
pub struct Ctx {
    addr: SocketAddr,
    metrics: SocketAddr,
    stop: Stop,
    p: Arc<Params>,
    workload: Arc<Workload>,
    stats: Arc<Mutex<AttackStats>>,
}

impl Ctx {
    fn stats(&self) -> MutexGuard<'_, AttackStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Which well-behaved client a sample is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Health,
    Lookup,
}

/// One well-behaved request.
#[derive(Debug, Clone)]
struct Sample {
    client: Client,
    /// When it was sent, from the phase's start.
    at: Duration,
    ms: f64,
    error: Option<String>,
}

/// Latency and failures of one client over one window.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Latencies {
    /// Requests sent.
    pub n: usize,
    /// Requests that failed (error or deadline).
    pub failed: usize,
    /// Failures by kind.
    pub errors: BTreeMap<String, usize>,
    /// Median, ms (failed requests count with the time they took).
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl Latencies {
    fn of<'a>(samples: impl Iterator<Item = &'a Sample>) -> Self {
        let mut l = Latencies::default();
        let mut times = Vec::new();
        for s in samples {
            l.n += 1;
            times.push(s.ms);
            if let Some(e) = &s.error {
                l.failed += 1;
                *l.errors.entry(e.clone()).or_default() += 1;
            }
        }
        l.p50_ms = quantile(&times, 0.5).unwrap_or(0.0);
        l.p99_ms = quantile(&times, 0.99).unwrap_or(0.0);
        l.max_ms = quantile(&times, 1.0).unwrap_or(0.0);
        l
    }

    fn short(&self) -> String {
        format!("{:.1}/{:.1}/{:.1}", self.p50_ms, self.p99_ms, self.max_ms)
    }
}

/// Both clients over one window.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Window {
    /// Health checks.
    pub health: Latencies,
    /// Lookups.
    pub lookup: Latencies,
}

impl Window {
    fn of(samples: &[Sample], from: Duration, to: Duration) -> Self {
        let inside = |c: Client| {
            samples
                .iter()
                .filter(move |s| s.client == c && s.at >= from && s.at < to)
        };
        Self {
            health: Latencies::of(inside(Client::Health)),
            lookup: Latencies::of(inside(Client::Lookup)),
        }
    }

    fn failed(&self) -> usize {
        self.health.failed + self.lookup.failed
    }
}

/// One phase's result.
#[derive(Debug, serde::Serialize)]
pub struct PhaseResult {
    /// The phase (`baseline`, `slow-headers`, ...).
    pub phase: Attack,
    /// The issue row.
    pub row: Option<u8>,
    /// How the server was started.
    pub server_command: String,
    /// How long the attack ran, in seconds.
    pub attack_s: f64,
    /// Why the attack was stopped early, if it was.
    pub aborted: Option<String>,
    /// Clients before the attack.
    pub before: Window,
    /// Clients during the attack.
    pub during: Window,
    /// Clients after the attack.
    pub after: Window,
    /// Failed well-behaved requests over the whole phase.
    pub failed_well_behaved: usize,
    /// Resident memory when the attack started, MiB.
    pub rss_start_mib: Option<f64>,
    /// Largest resident memory sampled during the attack, MiB.
    pub rss_peak_sampled_mib: Option<f64>,
    /// VmHWM at the end of the phase, MiB.
    pub vm_hwm_mib: Option<f64>,
    /// Resident memory at the end of the phase, MiB.
    pub rss_end_mib: Option<f64>,
    /// Server CPU time during the attack, ms.
    pub server_cpu_ms: Option<f64>,
    /// Whether the server was still running at the end.
    pub server_alive: bool,
    /// The attacker's side.
    pub attacker: AttackStats,
}

impl PhaseResult {
    fn rss_peak(&self) -> Option<f64> {
        match (self.rss_peak_sampled_mib, self.vm_hwm_mib) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Runs the well-behaved clients on their own thread until `stop`.
fn spawn_clients(
    addr: SocketAddr,
    workload: Arc<Workload>,
    a: &HostileArgs,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<Vec<Sample>>> {
    let lookup_every = Duration::from_secs_f64(1.0 / f64::from(a.lookup_rate.clamp(1, 10_000)));
    let health_every = a.health_every.max(Duration::from_millis(1));
    let deadline = a.client_deadline;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let health = servers::connect(addr).await?;
            let lookup = servers::connect(addr).await?;
            let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
            let mut tasks = tokio::task::JoinSet::new();
            let mut health_tick = tokio::time::interval(health_every);
            let mut lookup_tick = tokio::time::interval(lookup_every);
            health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            lookup_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut rng = SmallRng::seed_from_u64(0x0005_7ead);
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                let samples = Arc::clone(&samples);
                tokio::select! {
                    _ = health_tick.tick() => {
                        let mut client = HealthClient::new(health.clone());
                        tasks.spawn(async move {
                            let sent = Instant::now();
                            let answer = tokio::time::timeout(
                                deadline,
                                client.check(HealthCheckRequest { service: String::new() }),
                            )
                            .await;
                            let error = match answer {
                                Err(_) => Some("ClientDeadline".to_string()),
                                Ok(Err(s)) => Some(format!("{:?}", s.code())),
                                Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32 => None,
                                Ok(Ok(_)) => Some("NotServing".to_string()),
                            };
                            record(&samples, Client::Health, t0, sent, error);
                        });
                    }
                    _ = lookup_tick.tick() => {
                        let mut client = PortRegistryServiceClient::new(lookup.clone());
                        n += 1;
                        let by_port = n.is_multiple_of(2);
                        let port = u32::from(workload.exact_port(&mut rng));
                        let name = workload.name(&mut rng).to_string();
                        tasks.spawn(async move {
                            let sent = Instant::now();
                            let call = async {
                                if by_port {
                                    client
                                        .lookup_port(portolan::pb::LookupPortRequest { port, protocol: 0 })
                                        .await
                                } else {
                                    client
                                        .lookup_name(portolan::pb::LookupNameRequest { name, protocol: 0 })
                                        .await
                                }
                            };
                            let error = match tokio::time::timeout(deadline, call).await {
                                Err(_) => Some("ClientDeadline".to_string()),
                                Ok(Ok(r)) if first_record_decodes(&r.get_ref().records) => None,
                                Ok(Ok(_)) => Some("BadReply".to_string()),
                                // A registered port or name with no record
                                // for every protocol is still an answer.
                                Ok(Err(s)) if s.code() == tonic::Code::NotFound => None,
                                Ok(Err(s)) => Some(format!("{:?}", s.code())),
                            };
                            record(&samples, Client::Lookup, t0, sent, error);
                        });
                    }
                }
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
            let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
            Ok(samples)
        })
    })
}

fn record(
    samples: &Mutex<Vec<Sample>>,
    client: Client,
    t0: Instant,
    sent: Instant,
    error: Option<String>,
) {
    let sample = Sample {
        client,
        at: sent.saturating_duration_since(t0),
        ms: ms(sent.elapsed()),
        error,
    };
    samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(sample);
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Runs one phase against a fresh server.
async fn phase(
    a: &HostileArgs,
    attack: Attack,
    params: &Arc<Params>,
    workload: &Arc<Workload>,
) -> Result<PhaseResult> {
    let metrics_port = servers::free_port()?;
    let mut cmd = super::portolan_command(
        &a.server,
        a.server.data.clone(),
        servers::scratch_dir("hostile")?,
    )?;
    cmd.extra_args
        .extend(["--admin-listen".into(), format!("127.0.0.1:{metrics_port}")]);
    if attack == Attack::WatchStall {
        cmd.extra_args.extend([
            "--max-stream-lifetime".into(),
            format!("{}ms", a.watch_lifetime.as_millis()),
        ]);
    }
    let mut server = cmd.spawn(Duration::from_secs(30)).await?;
    let pid = server.pid();
    let t0 = Instant::now();
    let clients_stop = Arc::new(AtomicBool::new(false));
    let clients = spawn_clients(
        server.addr,
        Arc::clone(workload),
        a,
        t0,
        Arc::clone(&clients_stop),
    );
    tokio::time::sleep(a.before).await;

    let window = if attack == Attack::WatchStall {
        a.watch_attack_duration
    } else {
        a.attack_duration
    }
    .min(Duration::from_secs(600));
    let (tx, rx) = watch::channel(false);
    let tx = Arc::new(tx);
    let attack_start = t0.elapsed();
    let rss_start = procstat::rss_kib(pid).ok();
    let cpu_before = procstat::cpu_time(pid).ok();
    // The memory guard samples resident memory until the attack stops, and
    // stops it early past the limit.
    let guard = {
        let (tx, stop) = (Arc::clone(&tx), Stop(rx.clone()));
        let limit_kib = a.rss_limit_mib.saturating_mul(1024);
        tokio::spawn(async move {
            let (mut peak, mut aborted) = (None::<u64>, None);
            loop {
                if let Ok(kib) = procstat::rss_kib(pid) {
                    peak = peak.max(Some(kib));
                    if kib > limit_kib && aborted.is_none() {
                        aborted = Some(format!(
                            "stopped after {:.1} s: server RSS {:.0} MiB passed --rss-limit-mib {}",
                            t0.elapsed().saturating_sub(attack_start).as_secs_f64(),
                            mib(kib),
                            limit_kib / 1024
                        ));
                        let _ = tx.send(true);
                    }
                }
                tokio::select! {
                    () = stop.wait() => return (peak, aborted),
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
    };
    let timer = {
        let tx = Arc::clone(&tx);
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            let _ = tx.send(true);
        })
    };
    let ctx = Ctx {
        addr: server.addr,
        metrics: SocketAddr::from(([127, 0, 0, 1], metrics_port)),
        stop: Stop(rx),
        p: Arc::clone(params),
        workload: Arc::clone(workload),
        stats: Arc::default(),
    };
    match attack {
        Attack::Baseline => ctx.stop.wait().await,
        Attack::SlowHeaders => attacks::slow_headers(&ctx).await,
        Attack::SearchMax => attacks::search(&ctx, u32::MAX).await,
        Attack::SearchCap => attacks::search(&ctx, params.search_cap).await,
        Attack::WatchStall => attacks::watch(&ctx).await,
        Attack::MetricsJunk => attacks::metrics_junk(&ctx).await,
        Attack::BatchPipeline => attacks::batch(&ctx).await,
        Attack::ListStates => attacks::list_states(&ctx).await,
    }
    // An attack that finished early (e.g. it could not connect) still
    // leaves the window to the clients.
    ctx.stop.wait().await;
    let attack_end = t0.elapsed();
    timer.abort();
    let _ = tx.send(true);
    let (peak, aborted) = guard.await.unwrap_or((None, None));
    let cpu_after = procstat::cpu_time(pid).ok();

    tokio::time::sleep(a.after).await;
    clients_stop.store(true, Ordering::Release);
    let samples = tokio::task::spawn_blocking(move || clients.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the well-behaved clients' thread panicked"))?
        .context("well-behaved clients")?;
    let server_alive = server.is_running();
    let vm_hwm = procstat::peak_rss_kib(pid).ok();
    let rss_end = procstat::rss_kib(pid).ok();
    let server_command = cmd.describe();
    drop(server);

    let attacker = std::mem::take(&mut *ctx.stats());
    let before = Window::of(&samples, Duration::ZERO, attack_start);
    let during = Window::of(&samples, attack_start, attack_end);
    let after = Window::of(&samples, attack_end, Duration::MAX);
    Ok(PhaseResult {
        phase: attack,
        row: attack.row(),
        server_command,
        attack_s: attack_end.saturating_sub(attack_start).as_secs_f64(),
        aborted,
        failed_well_behaved: before.failed() + during.failed() + after.failed(),
        before,
        during,
        after,
        rss_start_mib: rss_start.map(mib),
        rss_peak_sampled_mib: peak.map(mib),
        vm_hwm_mib: vm_hwm.map(mib),
        rss_end_mib: rss_end.map(mib),
        server_cpu_ms: match (cpu_before, cpu_after) {
            (Some(b), Some(a)) => Some(ms(a.saturating_sub(b))),
            _ => None,
        },
        server_alive,
        attacker,
    })
}

/// The pod memory limit in `deploy/` (256Mi), which the server must stay
/// within whatever a client does.
const POD_LIMIT_MIB: f64 = 256.0;

/// The latency target for well-behaved clients during an attack.
const P99_TARGET_MS: f64 = 100.0;

/// Runs the scenario.
pub async fn run(a: HostileArgs) -> Result<Report> {
    super::require_spawn(&a.server, "hostile")?;
    let workload = Arc::new(Workload::load(a.server.data.as_deref())?);
    let params = Arc::new(Params::of(&a));
    let mut phases = Vec::new();
    for &attack in &a.attacks {
        eprintln!("hostile: {} ...", attack.name());
        let result = phase(&a, attack, &params, &workload)
            .await
            .with_context(|| format!("phase {}", attack.name()))?;
        phases.push(result);
    }

    let mut text = String::new();
    let serving = match &a.server.data {
        Some(d) => format!("--data {}", d.display()),
        None => "the embedded registry".into(),
    };
    let _ = writeln!(
        text,
        "fresh server per phase ({serving}, metrics on loopback); well-behaved clients: health \
         every {:?} and {} lookups/s (LookupPort/LookupName), each on its own connection, \
         deadline {:?}; {:?} before and {:?} after each attack window",
        a.health_every, a.lookup_rate, a.client_deadline, a.before, a.after
    );
    let _ = writeln!(
        text,
        "{:<15} {:>3} {:>21} {:>21} {:>6} {:>9}  attacker (opened/refused/ended/open at end)",
        "phase", "row", "health p50/p99/max ms", "lookup p50/p99/max ms", "failed", "RSS MiB"
    );
    for p in &phases {
        let _ = writeln!(
            text,
            "{:<15} {:>3} {:>21} {:>21} {:>6} {:>9}  {}",
            p.phase.name(),
            p.row.map_or("-".into(), |r| r.to_string()),
            p.during.health.short(),
            p.during.lookup.short(),
            p.failed_well_behaved,
            p.rss_peak().map_or("?".into(), |m| format!("{m:.0}")),
            if p.phase == Attack::Baseline {
                "-".to_string()
            } else {
                format!(
                    "{}/{}/{}/{}",
                    p.attacker.opened,
                    p.attacker.refused,
                    p.attacker.ended_by_server,
                    p.attacker.open_at_end
                )
            }
        );
    }
    let _ = writeln!(
        text,
        "(latencies during the attack window; failed: well-behaved requests over the whole phase; \
         RSS: peak of 100 ms samples and VmHWM)"
    );
    for p in &phases {
        let _ = writeln!(
            text,
            "{} ({:.1} s attack{}; server cpu {:.0} ms{}):",
            p.phase.name(),
            p.attack_s,
            p.aborted
                .as_ref()
                .map_or(String::new(), |why| format!(", {why}")),
            p.server_cpu_ms.unwrap_or(0.0),
            if p.server_alive {
                ""
            } else {
                ", SERVER EXITED"
            }
        );
        for (label, w) in [("before", &p.before), ("after", &p.after)] {
            let _ = writeln!(
                text,
                "  {label}: health {} lookup {} ms, failed {}",
                w.health.short(),
                w.lookup.short(),
                w.failed()
            );
        }
        for (label, w) in [
            ("before", &p.before),
            ("during", &p.during),
            ("after", &p.after),
        ] {
            let mut errors = w.health.errors.clone();
            for (k, v) in &w.lookup.errors {
                *errors.entry(k.clone()).or_default() += v;
            }
            if !errors.is_empty() {
                let _ = writeln!(
                    text,
                    "  failures {label}: health {}/{}, lookups {}/{}: {errors:?}",
                    w.health.failed, w.health.n, w.lookup.failed, w.lookup.n
                );
            }
        }
        if !p.attacker.outcomes.is_empty() {
            let _ = writeln!(text, "  attacker outcomes: {:?}", p.attacker.outcomes);
        }
        for note in &p.attacker.notes {
            let _ = writeln!(text, "  {note}");
        }
    }

    let mut report = Report::new("hostile", text, json!({ "phases": &phases }));
    for p in &mut phases {
        let name = p.phase.name();
        if p.phase != Attack::Baseline {
            for (client, l) in [("health", &p.during.health), ("lookup", &p.during.lookup)] {
                report.checks.push(Check::new(
                    &format!("{name}: {client} p99 during the attack"),
                    "< 100 ms",
                    format!("{:.1} ms", l.p99_ms),
                    l.p99_ms < P99_TARGET_MS && l.n > 0,
                ));
            }
        }
        if let Some(peak) = p.rss_peak() {
            report.checks.push(Check::new(
                &format!("{name}: server peak RSS"),
                "< 256 MiB (pod limit)",
                format!("{peak:.0} MiB"),
                peak < POD_LIMIT_MIB,
            ));
        }
        report.checks.append(&mut p.attacker.checks);
        if p.failed_well_behaved > 0 {
            let mut errors = BTreeMap::<String, usize>::new();
            for w in [&p.before, &p.during, &p.after] {
                for (k, v) in w.health.errors.iter().chain(&w.lookup.errors) {
                    *errors.entry(k.clone()).or_default() += v;
                }
            }
            report.failures.push(format!(
                "{name}: {} well-behaved requests failed: {errors:?}",
                p.failed_well_behaved
            ));
        }
        if p.during.health.n == 0 || p.during.lookup.n == 0 {
            report.failures.push(format!(
                "{name}: the well-behaved clients sent nothing during the attack"
            ));
        }
        if let Some(why) = &p.aborted {
            report.failures.push(format!("{name}: attack {why}"));
        }
        if !p.server_alive {
            report
                .failures
                .push(format!("{name}: the server exited during the phase"));
        }
        report.failures.append(&mut p.attacker.failures);
    }
    Ok(report)
}
