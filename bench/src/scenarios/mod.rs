//! The scenarios and their command-line arguments. Each scenario module
//! exposes `run(args) -> Result<Report>`; [`run`] dispatches.

pub mod cli;
pub mod hostile;
pub mod reload;
pub mod reload_cost;
pub mod soak;
pub mod startup;
pub mod steady;
pub mod sweep;
pub mod watch_fanout;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::load::LoadConfig;
use crate::report::Report;
use crate::servers::{self, Kind, PortolanCommand, ServerProcess, Target};
use crate::util::{loopback_target, parse_duration};
use crate::workload::Mix;

/// `portolan-bench`: load and latency measurements of a Portolan server
/// against a minimal tonic baseline, on loopback only.
#[derive(Debug, Parser)]
#[command(name = "portolan-bench", version, about)]
pub struct Cli {
    /// Print the result as JSON instead of a text block.
    #[arg(long, global = true)]
    pub json: bool,
    /// Also write the JSON result to this file (the text block still goes
    /// to standard output).
    #[arg(long, global = true, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// The scenario.
    #[command(subcommand)]
    pub command: Command,
}

/// Scenarios (and the baseline server itself).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Steady lookups: Portolan vs the baseline, interleaved runs.
    Steady(SteadyArgs),
    /// Lookups while the data file is replaced (renamed over) every 500 ms.
    Reload(ReloadArgs),
    /// Many Watch streams open while a reload happens: time to the last.
    WatchFanout(WatchArgs),
    /// Process start until health says SERVING, with the full registry.
    Startup(StartupArgs),
    /// Cold `portolan lookup` CLI invocations against a running server.
    Cli(CliArgs),
    /// In-process cost of a full reload (read, parse, validate, diff, apply).
    ReloadCost(ReloadCostArgs),
    /// Concurrency sweep 1..256 for Portolan and the baseline, with an SVG.
    Sweep(SweepArgs),
    /// Long run (>= 10 min): reloads + watch streams + lookups, memory.
    Soak(SoakArgs),
    /// Hostile clients (issue #13 rows 1-4, 9, 10) while well-behaved
    /// clients keep checking health and looking up.
    Hostile(hostile::HostileArgs),
    /// Serve the baseline (used by the scenarios; prints its address).
    BaselineServer(BaselineArgs),
}

/// Which Portolan server to measure.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Drive an already running server at this loopback address instead of
    /// starting one.
    #[arg(long, conflicts_with = "spawn_server")]
    pub target: Option<String>,
    /// The pid of the `--target` server, to measure its CPU and memory.
    #[arg(long, requires = "target")]
    pub server_pid: Option<u32>,
    /// Start this `portolan-server` binary (default: `portolan-server` next
    /// to this executable).
    #[arg(long, value_name = "PATH_TO_BINARY")]
    pub spawn_server: Option<PathBuf>,
    /// The registry file the server serves (and the load draws from);
    /// without it the server serves its embedded registry.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// An extra argument for the spawned server (repeatable).
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
}

/// How much load to send.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Measured time per run (scenario default when absent).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Unmeasured warm-up before each run.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub warmup: Duration,
    /// Upper bound on requests per run.
    #[arg(long, default_value_t = 20_000_000)]
    pub max_requests: u64,
    /// Client deadline per request (a request exceeding it fails).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub request_timeout: Duration,
    /// Request mix.
    #[arg(long, value_enum, default_value_t = MixArg::Default)]
    pub mix: MixArg,
}

/// Which request mix to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MixArg {
    /// 35% exact port, 15% in-range port, 30% name, 10% misses, 10% batch.
    Default,
    /// The same without BatchLookup.
    Unary,
}

impl MixArg {
    /// The mix.
    pub fn mix(self) -> Mix {
        match self {
            MixArg::Default => Mix::default(),
            MixArg::Unary => Mix::unary_only(),
        }
    }
}

impl LoadArgs {
    /// The load configuration, with `default_duration` when `--duration`
    /// is absent. Durations are capped at two hours to keep runs bounded.
    pub fn config(&self, default_duration: Duration, check_versions: bool) -> LoadConfig {
        LoadConfig {
            connections: self.connections.clamp(1, 1024),
            in_flight: (self.connections.clamp(1, 1024) * self.concurrency.clamp(1, 4096)).max(1),
            duration: self
                .duration
                .unwrap_or(default_duration)
                .min(Duration::from_secs(7200)),
            warmup: self.warmup.min(Duration::from_secs(60)),
            max_requests: self.max_requests,
            request_timeout: self.request_timeout,
            check_versions,
        }
    }
}

/// `steady` arguments.
#[derive(Debug, Clone, Args)]
pub struct SteadyArgs {
    #[command(flatten)]
    /// Server selection.
    pub server: ServerArgs,
    #[command(flatten)]
    /// Load.
    pub load: LoadArgs,
    /// Rounds of one run per server (baseline first in odd rounds, second
    /// in even ones). Each server's median run is reported, and the ratios
    /// are the medians of the per-round ratios; use an odd number.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Skip the baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Records in each baseline answer (copies of its fixed record). The
    /// targets use 1; more gives the baseline replies as large as
    /// Portolan's, to see how much of a gap is reply size alone.
    #[arg(long, default_value_t = 1)]
    pub baseline_reply_records: usize,
}

/// `reload` arguments.
#[derive(Debug, Clone, Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    /// Server selection (`--data` is the first edition).
    pub server: ServerArgs,
    #[command(flatten)]
    /// Load (default duration 60 s).
    pub load: LoadArgs,
    /// The second edition, alternated with `--data`.
    #[arg(long, value_name = "FILE")]
    pub alt_data: PathBuf,
    /// How often the data file is replaced.
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    pub replace_every: Duration,
}

/// Watch stream mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchModeArg {
    /// Keys only.
    Invalidate,
    /// Full records.
    Full,
}

/// `watch-fanout` arguments.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    /// Server selection (`--data` is the first edition).
    pub server: ServerArgs,
    /// The second edition, alternated with `--data`.
    #[arg(long, value_name = "FILE")]
    pub alt_data: PathBuf,
    /// Watch streams to open.
    #[arg(long, default_value_t = 1000)]
    pub streams: usize,
    /// Connections the streams are spread over.
    #[arg(long, default_value_t = 20)]
    pub watch_connections: usize,
    /// Reloads to time (each one a file replacement).
    #[arg(long, default_value_t = 3)]
    pub iterations: usize,
    /// Stream mode.
    #[arg(long, value_enum, default_value_t = WatchModeArg::Invalidate)]
    pub mode: WatchModeArg,
    /// Give up on a reload's events after this long.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub deadline: Duration,
}

/// `startup` arguments.
#[derive(Debug, Clone, Args)]
pub struct StartupArgs {
    #[command(flatten)]
    /// Server selection.
    pub server: ServerArgs,
    /// Starts to time.
    #[arg(long, default_value_t = 10)]
    pub iterations: usize,
    /// Give up on one start after this long.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub deadline: Duration,
}

/// `cli` arguments.
#[derive(Debug, Clone, Args)]
pub struct CliArgs {
    #[command(flatten)]
    /// Server selection.
    pub server: ServerArgs,
    /// The `portolan` CLI binary (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    pub cli: Option<PathBuf>,
    /// The CLI's arguments; `{addr}` becomes the server's `http://` URL.
    #[arg(long, default_value = "--endpoint {addr} --output json lookup 443")]
    pub cli_args: String,
    /// Invocations to time.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
}

/// `reload-cost` arguments.
#[derive(Debug, Clone, Args)]
pub struct ReloadCostArgs {
    /// The first edition.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The second edition.
    #[arg(long, value_name = "FILE")]
    pub alt_data: PathBuf,
    /// Reloads to time (alternating editions).
    #[arg(long, default_value_t = 40)]
    pub iterations: usize,
}

/// `sweep` arguments.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    /// Server selection.
    pub server: ServerArgs,
    #[command(flatten)]
    /// Load (`--concurrency` is ignored; `--duration` is per point,
    /// default 3 s; connections are min(in flight, --connections)).
    pub load: LoadArgs,
    /// Highest in-flight count (powers of two from 1).
    #[arg(long, default_value_t = 256)]
    pub max_concurrency: usize,
    /// Where to write the SVG chart.
    #[arg(long, default_value = "bench/results/sweep.svg")]
    pub svg: PathBuf,
}

/// `soak` arguments.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    #[command(flatten)]
    /// Server selection (`--data` is the first edition).
    pub server: ServerArgs,
    /// The second edition, alternated with `--data`.
    #[arg(long, value_name = "FILE")]
    pub alt_data: PathBuf,
    /// Total time (a soak is at least 10 minutes; shorter runs are
    /// reported as such).
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub duration: Duration,
    /// How often the data file is replaced.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub replace_every: Duration,
    /// Watch streams kept open.
    #[arg(long, default_value_t = 100)]
    pub watch_streams: usize,
    /// Connections for the lookups.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Lookups in flight in total.
    #[arg(long, default_value_t = 16)]
    pub in_flight: usize,
    /// How often memory is sampled.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub sample_every: Duration,
}

/// `baseline-server` arguments.
#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    /// Loopback address to listen on (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Records in every answer (copies of the fixed record).
    #[arg(long, default_value_t = 1)]
    pub reply_records: usize,
}

/// A Portolan server to measure: one this tool started, or a running one.
#[derive(Debug)]
pub enum Portolan {
    /// Started by this tool (killed on drop).
    Spawned(ServerProcess),
    /// Given by `--target`.
    External(Target),
}

impl Portolan {
    /// The measurement target.
    pub fn target(&self) -> Target {
        match self {
            Portolan::Spawned(p) => p.target(),
            Portolan::External(t) => *t,
        }
    }
}

/// How this tool would start Portolan for `args`, with the server data
/// file `data` (which may be a scratch copy).
pub fn portolan_command(
    args: &ServerArgs,
    data: Option<PathBuf>,
    log_dir: PathBuf,
) -> Result<PortolanCommand> {
    let binary = match &args.spawn_server {
        Some(p) => p.clone(),
        None => servers::sibling_binary("portolan-server")?,
    };
    Ok(PortolanCommand {
        binary,
        data,
        extra_args: args.server_args.clone(),
        log_dir,
    })
}

/// The server for a load scenario: `--target` (loopback only) or a spawned
/// one serving `--data`.
pub async fn portolan(args: &ServerArgs, scenario: &str) -> Result<Portolan> {
    if let Some(target) = &args.target {
        let addr = loopback_target(target)?;
        return Ok(Portolan::External(Target {
            kind: Kind::Portolan,
            addr,
            pid: args.server_pid,
        }));
    }
    let cmd = portolan_command(args, args.data.clone(), servers::scratch_dir(scenario)?)?;
    Ok(Portolan::Spawned(cmd.spawn(Duration::from_secs(30)).await?))
}

/// Refuses `--target` for scenarios that must own the server (they replace
/// its data file or restart it).
pub fn require_spawn(args: &ServerArgs, scenario: &str) -> Result<()> {
    if args.target.is_some() {
        bail!("`{scenario}` starts its own server (it replaces the data file); drop --target");
    }
    Ok(())
}

/// Runs one scenario.
pub async fn run(command: Command) -> Result<Report> {
    match command {
        Command::Steady(a) => steady::run(a).await,
        Command::Reload(a) => reload::run(a).await,
        Command::WatchFanout(a) => watch_fanout::run(a).await,
        Command::Startup(a) => startup::run(a).await,
        Command::Cli(a) => cli::run(a).await,
        Command::ReloadCost(a) => reload_cost::run(a),
        Command::Sweep(a) => sweep::run(a).await,
        Command::Soak(a) => soak::run(a).await,
        Command::Hostile(a) => hostile::run(a).await,
        Command::BaselineServer(a) => {
            crate::baseline::serve(a.listen, a.reply_records).await?;
            bail!("baseline server stopped")
        }
    }
}
