//! Command-line arguments (clap derive) and their validation into typed
//! values: lookup queries, protocols, port ranges, states.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use portolan_registry::{Protocol, RecordState};

/// Look up IANA service names and port numbers, from a Portolan server or
/// offline.
///
/// Exit status: 0 when something was found (or the command succeeded;
/// `sync`: written or not modified), 1 when nothing was found (`check`:
/// the file is invalid or conflicts; `diff`: the registries differ), 2 on
/// usage errors and bad input (an invalid query, a file that cannot be
/// read or parsed, a download `sync` refused), 3 when the server (`sync`:
/// the upstream URL) cannot be reached or fails.
#[derive(Debug, Parser)]
#[command(
    name = "portolan",
    version = portolan_registry::version_text!(),
    propagate_version = true
)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Server URI.
    #[arg(
        long,
        global = true,
        env = "PORTOLAN_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub endpoint: String,
    /// Answer without a server, from --data or the embedded registry.
    #[arg(long, global = true)]
    pub offline: bool,
    /// Registry file for offline mode (IANA CSV/XML/text, services(5),
    /// nmap-services; gzip accepted; format detected). Repeat as
    /// `NAME=FILE` for layers, highest priority first, as the server takes
    /// them.
    #[arg(long, global = true, value_name = "[NAME=]FILE")]
    pub data: Vec<portolan_registry::LayerSpec>,
    /// Output format; `table` when stdout is a terminal, JSON lines
    /// otherwise.
    #[arg(long, short = 'o', global = true, value_enum)]
    pub output: Option<OutputFormat>,
    /// No header line in table and CSV output.
    #[arg(long, global = true)]
    pub no_headers: bool,
    /// CA certificate (PEM) to verify the server with, instead of the
    /// system's trust roots; enables TLS (an `https://` endpoint enables it
    /// without this).
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Server name to verify the certificate against (default: the
    /// endpoint's host).
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_domain: Option<String>,
    /// Per-call deadline, as the server's flags take durations (`500ms`,
    /// `10s`, `1m`); `0s` for none.
    #[arg(
        long,
        global = true,
        default_value = "10s",
        value_parser = humantime::parse_duration,
        value_name = "DURATION"
    )]
    pub timeout: std::time::Duration,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// One JSON object per line.
    Json,
    /// CSV with a header row.
    Csv,
    /// Records as services(5) lines, like `getent services` (`name
    /// port/protocol aliases`; a range as `start-end`); other output as a
    /// table.
    Services,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// A complete /etc/services.
    Services,
    /// The IANA CSV layout.
    Csv,
    /// JSON.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Look up a port (`443`, `6010/tcp`) or a service name (`https`,
    /// `https/udp`).
    Lookup {
        /// Ports or service names, each optionally with `/protocol`; `-`
        /// reads one per line from stdin. Several keys go to a server as
        /// one BatchLookup stream and are answered in the order given.
        #[arg(required = true, num_args = 1.., value_name = "KEY")]
        queries: Vec<String>,
        /// Only this protocol (tcp, udp, sctp, dccp).
        #[arg(long, value_parser = parse_protocol)]
        proto: Option<Protocol>,
    },
    /// Describe a port (`3306`, `4222/tcp`): its registry records, then
    /// what service meshes do with it: whether the server speaks first
    /// (with the protocol document saying so), Istio's and Linkerd's
    /// default for the port, whether it stalls connections and what to set
    /// so they do not, and whether each record's name is a valid Kubernetes
    /// port name (RFC 6335, lowercase). Against a server, its DescribePort
    /// answers (with the server's mesh hints); offline, the same
    /// computation over the compiled-in hints. Exit 0 when the port has
    /// records or a mesh hint, 1 when it has neither.
    Describe {
        /// The port, optionally with `/protocol`.
        #[arg(value_name = "PORT[/PROTO]")]
        port: String,
    },
    /// Search names and descriptions, best match first.
    Search {
        /// Text to find (case-insensitive).
        text: String,
        /// Only this protocol.
        #[arg(long, value_parser = parse_protocol)]
        proto: Option<Protocol>,
        /// At most this many results.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only records of this layer (repeatable).
        #[arg(long)]
        layer: Vec<String>,
    },
    /// List records in (port, protocol, name) order.
    List {
        /// Only this protocol.
        #[arg(long, value_parser = parse_protocol)]
        proto: Option<Protocol>,
        /// Only ports in this range, e.g. `1-1023` or `80`.
        #[arg(long, value_parser = parse_range)]
        range: Option<(u16, u16)>,
        /// Only records in this state (repeatable): assigned, reserved,
        /// unassigned, removed.
        #[arg(long, value_parser = parse_state)]
        state: Vec<RecordState>,
        /// Only records of this layer (repeatable).
        #[arg(long)]
        layer: Vec<String>,
    },
    /// Print each registry change as the server applies it. When the
    /// stream ends (the server's stream lifetime, a restart, a lost
    /// connection), reconnect with backoff (to any replica) and resume from
    /// the last state printed.
    Watch {
        /// The state you already hold, as `portolan info` and each printed
        /// event show it (16 hex digits; 0: start with a snapshot summary).
        #[arg(long, default_value = "0", value_parser = parse_state_id, value_name = "STATE_ID")]
        from_state: u64,
        /// Give up (exit 3) after this many reconnection attempts in a row
        /// that bring no event; 0 keeps trying, like `tail -F` (attempts
        /// back off to one every 10 s, so a lost server costs little).
        #[arg(
            long,
            env = "PORTOLAN_WATCH_MAX_RECONNECTS",
            default_value_t = 0,
            value_name = "N"
        )]
        max_reconnects: u32,
    },
    /// Show what the server (or the offline registry) is serving.
    Info,
    /// Validate a registry file offline: format, counts, diagnostics. With
    /// --against, also list its conflicts with a reference registry: every
    /// record on a port and protocol the reference assigns to other names,
    /// and every name the reference registers on other ports only (exit 1
    /// when there are any).
    Check {
        /// The file to check.
        file: PathBuf,
        /// The reference: a registry file, or a server (`http://` or
        /// `https://` URI; TLS from the global flags).
        #[arg(long, value_name = "FILE|URI")]
        against: Option<PathBuf>,
    },
    /// Records added, removed and changed from one registry to another,
    /// with the changed fields. Each side is a file (any format) or a
    /// server (`http://` or `https://` URI; TLS from the global flags), so
    /// `portolan diff https://portolan:50051 new.csv` shows what shipping
    /// new.csv would change. Exit 0 when equal, 1 when they differ, 2 on
    /// errors (as diff(1)).
    Diff {
        /// The old registry: a file, or a server URI.
        old: PathBuf,
        /// The new registry: a file, or a server URI.
        new: PathBuf,
    },
    /// Write the whole registry as /etc/services, CSV or JSON.
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value = "services")]
        format: ExportFormat,
    },
    /// Keep a registry file up to date from an upstream URL, for a server
    /// watching its directory: a conditional GET (ETag, Last-Modified kept
    /// in DIR/.NAME.validators), the download validated as the server
    /// validates a reload (parse, --format, --min-records, --max-shrink,
    /// --max-bytes), then written atomically as DIR/NAME, the file it
    /// replaces kept as DIR/NAME.previous. Once (exit 0 written or not
    /// modified, 2 refused, 3 upstream unreachable or failing after
    /// --retries), or every --interval until stopped (failures are logged
    /// and retried at the next interval).
    Sync(SyncArgs),
    /// Lint the ports of Kubernetes manifests (Pods, workloads, Services,
    /// `kind: List`; several documents per file; `-` or nothing reads
    /// stdin, e.g. `kubectl kustomize dir | portolan lint`): port names
    /// Kubernetes rejects, targetPorts naming no container port,
    /// appProtocol values, names saying another protocol than the port's,
    /// and with --mesh the ports Istio or Linkerd mishandle. Runs locally
    /// on the embedded registry (or --data) and the compiled-in mesh hints,
    /// or with --server on the server's, through its LintPorts RPC. Exit 1
    /// when a finding is at
    /// or above --fail-on, 0 otherwise, 2 when an input cannot be read or
    /// no document of it parses.
    Lint(LintArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these very options:
    /// `portolan manpage > portolan.1 && man ./portolan.1`.
    Manpage,
}

/// `portolan lint`'s options.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Lint options")]
pub struct LintArgs {
    /// Manifest files; `-` (or none) reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: LintFormat,
    /// Also check what these meshes do with each port (repeatable, or a
    /// comma list): istio, linkerd.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub mesh: Vec<LintMesh>,
    /// Exit 1 when a finding has this severity or a higher one; `none`
    /// never fails on findings.
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: FailOn,
    /// Lint on the server at --endpoint (its registry and its mesh hints,
    /// e.g. a --mesh-hints file) through LintPorts, instead of locally.
    #[arg(long)]
    pub server: bool,
}

/// `portolan lint --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// `FILE:LINE:COL: severity[rule]: message`, a `fix:` line, a summary.
    Text,
    /// One JSON document: findings and counts.
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

/// `portolan lint --mesh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintMesh {
    /// Istio: port names and appProtocol, protocol sniffing.
    Istio,
    /// Linkerd: protocol detection, opaque and skip ports.
    Linkerd,
}

/// `portolan lint --fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warning,
    /// Any finding.
    Info,
    /// Never (exit 0 whatever is found).
    None,
}

/// `portolan sync`'s options. Durations are written as the server's flags
/// take them (`500ms`, `30s`, `24h`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sync options")]
pub struct SyncArgs {
    /// Where the registry comes from (`https://` or `http://`), e.g.
    /// `https://www.iana.org/assignments/service-names-port-numbers/service-names-port-numbers.csv`.
    /// HTTPS is verified against the system's trust roots; HTTPS_PROXY,
    /// HTTP_PROXY and NO_PROXY are honoured.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The directory the server watches (it must exist).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The file written in DIR (the server's --data); default: the URL's
    /// last path segment.
    #[arg(long, value_name = "NAME")]
    pub file: Option<String>,
    /// Sync again every DURATION, forever (a sidecar); without it, sync
    /// once and exit (a CronJob).
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION")]
    pub interval: Option<std::time::Duration>,
    /// If DIR has no NAME yet, first copy FILE there (validated, written
    /// atomically and as-is: a gzip file stays gzip, which the server
    /// reads), e.g. the registry of a mounted ConfigMap.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// The format the download must have (iana-csv, iana-xml, iana-text,
    /// services, nmap-services); default: the current file's, else any
    /// the parser recognises.
    #[arg(long, value_parser = parse_format, value_name = "FORMAT")]
    pub format: Option<portolan_registry::Format>,
    /// Refuse a download with fewer records than this. The default suits
    /// the IANA registry (about 14,500 records); lower it for small files.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub min_records: usize,
    /// Refuse a download that drops more than this fraction of the current
    /// file's records (0-1; 1 disables the check), as the server's
    /// --max-shrink refuses such a reload.
    #[arg(long, default_value_t = 0.5, value_parser = parse_fraction, value_name = "FRACTION")]
    pub max_shrink: f64,
    /// Largest download in bytes (after gzip content-encoding), refused
    /// while it streams; also bounds what it may decompress to. Default as
    /// the server's --max-data-bytes: 64 MiB.
    #[arg(long, default_value_t = portolan_registry::ParseLimits::DEFAULT_MAX_BYTES, value_name = "BYTES")]
    pub max_bytes: u64,
    /// Longest wait for the TCP (and TLS) connection.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub connect_timeout: std::time::Duration,
    /// Longest a whole request may take, body included (the global
    /// --timeout is for calls to a Portolan server, not this).
    #[arg(long, default_value = "2m", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub request_timeout: std::time::Duration,
    /// Retries after a network error, a timeout, a cut-off body or a 5xx,
    /// 408 or 429 answer, with exponential backoff and jitter; then exit 3
    /// (with --interval: wait for the next interval).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub retries: u32,
    /// The first retry's delay; each further one doubles it (at most 64
    /// times), each drawn at random between half and all of it.
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub retry_backoff: std::time::Duration,
    /// Most redirects followed.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_redirects: usize,
}

fn parse_format(text: &str) -> Result<portolan_registry::Format, String> {
    portolan_registry::Format::parse(text).ok_or_else(|| {
        format!(
            "unknown format {text:?} (expected iana-csv, iana-xml, iana-text, services or nmap-services)"
        )
    })
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{text:?} is not a number between 0 and 1")),
    }
}

fn parse_positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than 0".into()),
        Err(e) => Err(format!("{text:?}: {e}")),
    }
}

/// A lookup query, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// A port number.
    Port(u16),
    /// A service name.
    Name(String),
}

/// Parses `443`, `6010/tcp`, `https`, `https/udp` into a query and an
/// optional protocol.
pub fn parse_query(text: &str) -> Result<(Query, Option<Protocol>), String> {
    let text = text.trim();
    let (what, proto) = match text.rsplit_once('/') {
        Some((what, proto)) => (what, Some(parse_protocol(proto)?)),
        None => (text, None),
    };
    if what.is_empty() {
        return Err(format!("empty query in {text:?}"));
    }
    if what.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = what
            .parse()
            .map_err(|_| format!("port {what} is out of range (0-65535)"))?;
        return Ok((Query::Port(port), proto));
    }
    Ok((Query::Name(what.to_string()), proto))
}

/// Parses a protocol a query may name.
pub fn parse_protocol(text: &str) -> Result<Protocol, String> {
    match Protocol::parse(text) {
        Some(p @ (Protocol::Tcp | Protocol::Udp | Protocol::Sctp | Protocol::Dccp)) => Ok(p),
        _ => Err(format!(
            "unknown protocol {text:?} (expected tcp, udp, sctp or dccp)"
        )),
    }
}

fn parse_state_id(text: &str) -> Result<u64, String> {
    u64::from_str_radix(text, 16).map_err(|e| {
        format!("{text:?} is not a state id (16 hex digits, as `portolan info` shows): {e}")
    })
}

fn parse_state(text: &str) -> Result<RecordState, String> {
    RecordState::parse(text).ok_or_else(|| {
        format!("unknown state {text:?} (expected assigned, reserved, unassigned or removed)")
    })
}

fn parse_range(text: &str) -> Result<(u16, u16), String> {
    let port = |s: &str| {
        s.trim()
            .parse::<u16>()
            .map_err(|_| format!("invalid port {s:?} in range {text:?}"))
    };
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(text)?;
            (p, p)
        }
    };
    if a > b {
        return Err(format!("range {text:?} ends before it starts"));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn queries_parse() {
        assert_eq!(parse_query("443"), Ok((Query::Port(443), None)));
        assert_eq!(
            parse_query("6010/tcp"),
            Ok((Query::Port(6010), Some(Protocol::Tcp)))
        );
        assert_eq!(
            parse_query("https/UDP"),
            Ok((Query::Name("https".into()), Some(Protocol::Udp)))
        );
        assert!(parse_query("70000").is_err());
        assert!(parse_query("80/ddp").is_err());
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("1-1023"), Ok((1, 1023)));
        assert_eq!(parse_range("80"), Ok((80, 80)));
        assert!(parse_range("9-1").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
