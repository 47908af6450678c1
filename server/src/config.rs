//! Command-line configuration ([`Args`], every flag with a `PORTOLAN_*`
//! environment fallback) and its validation into a [`Config`] before any
//! socket is bound: flag combinations, TLS files, and the data file and
//! `--mesh-hints` file themselves (read and parsed, so a bad file stops the
//! server at startup).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use portolan_registry::{Format, LayerSpec, ParseLimits, Registry, ReloadGuard};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::reload::{self, ReloadSettings, WatchedFile};
use crate::state::LoadedHints;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

fn parse_format(text: &str) -> Result<Format, String> {
    Format::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(Format::as_str).collect();
        format!(
            "unknown format {text:?} (expected one of {})",
            names.join(", ")
        )
    })
}

/// The Portolan gRPC server: serves the IANA Service Name and Transport
/// Protocol Port Number Registry and hot-reloads its data file.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "portolan-server",
    version = portolan_registry::version_text!(),
    about,
    long_about = None
)]
pub struct Args {
    /// Address to serve gRPC on.
    #[arg(long, env = "PORTOLAN_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Registry data file (IANA CSV/XML/text, services(5), nmap-services,
    /// optionally gzip-compressed); the embedded registry when absent.
    /// Repeat as `NAME=FILE` to serve several layers, highest priority
    /// first (`--data corp=corp.csv --data iana=iana.csv`), each watched and
    /// reloaded on its own; the environment form separates them with
    /// commas (`PORTOLAN_DATA=corp=corp.csv,iana=iana.csv`).
    #[arg(
        long,
        env = "PORTOLAN_DATA",
        value_name = "[NAME=]FILE",
        value_delimiter = ','
    )]
    pub data: Vec<LayerSpec>,
    /// Mesh hints file (the schema of the repository's
    /// `data/mesh/hints.toml`, at most 1 MiB) that DescribePort answers
    /// from, watched and hot-reloaded like the data files: a bad file keeps
    /// the last good hints serving. The compiled-in hints when absent.
    #[arg(long, env = "PORTOLAN_MESH_HINTS", value_name = "FILE")]
    pub mesh_hints: Option<PathBuf>,
    /// Data file format (iana-csv, iana-xml, iana-text, services,
    /// nmap-services); detected when absent.
    #[arg(long, env = "PORTOLAN_FORMAT", value_parser = parse_format)]
    pub format: Option<Format>,
    /// Address of the admin HTTP listener (plain HTTP/1.1): `/metrics`,
    /// `/livez`, `/readyz`. `--metrics-listen` is its former name.
    #[arg(
        long,
        env = "PORTOLAN_ADMIN_LISTEN",
        value_name = "ADDR",
        alias = "metrics-listen"
    )]
    pub admin_listen: Option<SocketAddr>,
    /// Address of a plaintext gRPC listener serving only
    /// `grpc.health.v1.Health`, for probes that cannot speak TLS (the
    /// kubelet's) when `--tls-cert` is set; its own port, so health checks
    /// never wait behind registry calls.
    #[arg(long, env = "PORTOLAN_HEALTH_LISTEN", value_name = "ADDR")]
    pub health_listen: Option<SocketAddr>,
    /// Quiet time after the last file event before reloading.
    #[arg(long, env = "PORTOLAN_RELOAD_DEBOUNCE", default_value = "250ms", value_parser = parse_duration)]
    pub reload_debounce: Duration,
    /// Interval of the content-hash poll that backs up file events.
    #[arg(long, env = "PORTOLAN_POLL_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Longest a stream of file events may defer a reload: while changes
    /// keep coming, the file is reloaded at least this often.
    #[arg(long, env = "PORTOLAN_RELOAD_MAX_DELAY", default_value = "2s", value_parser = parse_duration)]
    pub reload_max_delay: Duration,
    /// Largest data file read, in bytes, and largest size it may
    /// decompress to; also bounds the parsed records' estimated memory.
    /// Default 64 MiB: 16 times the full IANA XML.
    #[arg(long, env = "PORTOLAN_MAX_DATA_BYTES", default_value_t = ParseLimits::DEFAULT_MAX_BYTES)]
    pub max_data_bytes: u64,
    /// Most records a data file may hold. Default 200000: 14 times the
    /// IANA registry, 7 times nmap-services.
    #[arg(long, env = "PORTOLAN_MAX_RECORDS", default_value_t = ParseLimits::DEFAULT_MAX_RECORDS)]
    pub max_records: usize,
    /// Version of the first registry served. Default: milliseconds since
    /// the Unix epoch at startup, so versions keep growing across restarts
    /// and a client never mistakes a restarted server's registry for the
    /// one it holds.
    #[arg(long, env = "PORTOLAN_INITIAL_VERSION")]
    pub initial_version: Option<u64>,
    /// Refuse a reload that drops more than this fraction of the records
    /// (0-1; 1 disables the check).
    #[arg(long, env = "PORTOLAN_MAX_SHRINK", default_value_t = 0.5)]
    pub max_shrink: f64,
    /// Most Watch streams open at once (RESOURCE_EXHAUSTED beyond). A slot
    /// is held until the stream's HTTP/2 stream is gone, so it also bounds
    /// the memory of streams whose clients stopped reading: measured on the
    /// release binary with the full IANA CSV, a stalled FULL-mode reader
    /// holds about 630 KiB (the queued snapshot part, decoded, plus the
    /// encoded part HTTP/2 buffers; 256 of them peaked at 193 MiB over a
    /// 36 MiB base), so 128 stalled readers hold about 80 MiB: about
    /// 120 MiB in all, within the 256 MiB pod limit of deploy/ with margin.
    #[arg(long, env = "PORTOLAN_MAX_WATCH_STREAMS", default_value_t = 128)]
    pub max_watch_streams: usize,
    /// Most Watch streams one connection may hold (RESOURCE_EXHAUSTED
    /// beyond), so that one client cannot take every Watch slot. A cache
    /// needs one Watch stream; 8 leaves room for several caches sharing a
    /// channel.
    #[arg(
        long,
        env = "PORTOLAN_MAX_WATCH_STREAMS_PER_CONNECTION",
        default_value_t = 8
    )]
    pub max_watch_streams_per_connection: usize,
    /// Longest life of one Watch stream from its start (minus up to 10%
    /// jitter; the first snapshot counts); also the HTTP/2 maximum
    /// connection age, when the server sends GOAWAY.
    #[arg(long, env = "PORTOLAN_MAX_STREAM_LIFETIME", default_value = "30m", value_parser = parse_duration)]
    pub max_stream_lifetime: Duration,
    /// How long a connection may still finish its calls after its GOAWAY
    /// (at --max-stream-lifetime) before it is closed hard, with whatever
    /// its streams still buffer. Long enough for a Watch client to notice
    /// the GOAWAY and reconnect, short enough that a client that stopped
    /// reading does not hold its buffers for another lifetime.
    #[arg(long, env = "PORTOLAN_MAX_CONNECTION_AGE_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub max_connection_age_grace: Duration,
    /// Interval between Watch heartbeats; at most 10 s, since clients treat
    /// 30 s without an event as a broken stream.
    #[arg(long, env = "PORTOLAN_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,
    /// Longest a call may take to deliver its request message and get its
    /// response headers (a unary call: its whole answer). A client that
    /// opens a call and never sends the body holds nothing past it.
    #[arg(long, env = "PORTOLAN_REQUEST_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Longest a server stream (Watch, Search, ListRecords, BatchLookup)
    /// waits for the client to take one message; a client that stops
    /// reading has its stream ended after it.
    #[arg(long, env = "PORTOLAN_STREAM_SEND_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub stream_send_timeout: Duration,
    /// Longest life of one Search or ListRecords stream: a scan holds its
    /// registry edition until it ends.
    #[arg(long, env = "PORTOLAN_MAX_SCAN_DURATION", default_value = "60s", value_parser = parse_duration)]
    pub max_scan_duration: Duration,
    /// How long shutdown waits for open calls before exiting anyway.
    #[arg(long, env = "PORTOLAN_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Server certificate chain (PEM); enables TLS with --tls-key.
    #[arg(
        long,
        env = "PORTOLAN_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(
        long,
        env = "PORTOLAN_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// CA bundle (PEM) for client certificates; makes mTLS mandatory.
    #[arg(
        long,
        env = "PORTOLAN_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "PORTOLAN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Args {
    /// The bounds on reading and parsing the data file: `--max-data-bytes`
    /// and `--max-records`, with the registry crate's documented per-record
    /// limits.
    pub fn parse_limits(&self) -> ParseLimits {
        ParseLimits {
            max_bytes: self.max_data_bytes,
            max_records: self.max_records,
            ..ParseLimits::default()
        }
    }

    /// Every flag at its default (the embedded registry on 127.0.0.1:50051),
    /// ignoring the environment; a starting point for tests and embedders.
    pub fn defaults() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data: Vec::new(),
            mesh_hints: None,
            format: None,
            admin_listen: None,
            health_listen: None,
            reload_debounce: Duration::from_millis(250),
            poll_interval: Duration::from_secs(30),
            reload_max_delay: Duration::from_secs(2),
            max_data_bytes: ParseLimits::DEFAULT_MAX_BYTES,
            max_records: ParseLimits::DEFAULT_MAX_RECORDS,
            initial_version: None,
            max_shrink: 0.5,
            max_watch_streams: 128,
            max_watch_streams_per_connection: 8,
            max_stream_lifetime: Duration::from_secs(30 * 60),
            max_connection_age_grace: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            request_timeout: Duration::from_secs(5),
            stream_send_timeout: Duration::from_secs(10),
            max_scan_duration: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(20),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            log_format: LogFormat::Text,
        }
    }
}

/// A configuration problem found before binding any socket (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag's value or a combination of flags is not acceptable.
    #[error("--{flag}: {reason}")]
    Invalid {
        /// The flag, without dashes.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// A TLS file could not be read or used.
    #[error("--{flag} {path}: {reason}")]
    Tls {
        /// The flag, without dashes.
        flag: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The data file could not be loaded.
    #[error("--data: {0}")]
    Data(#[from] reload::LoadError),
    /// The mesh hints file could not be loaded.
    #[error("--mesh-hints: {0}")]
    MeshHints(reload::LoadError),
}

fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        reason: reason.into(),
    }
}

/// A validated configuration with the initial registry loaded.
#[derive(Debug)]
pub struct Config {
    /// The flags as given.
    pub args: Args,
    /// The registry to serve first (its layers composed).
    pub initial: Registry,
    /// Each layer's name and source, in priority order; empty when the
    /// registry is the embedded one.
    pub layers: Vec<(String, portolan_registry::SourceInfo)>,
    /// TLS settings, when TLS is on.
    pub tls: Option<ServerTlsConfig>,
    /// The mesh hints to serve first (`--mesh-hints`, or the compiled-in
    /// ones).
    pub mesh_hints: LoadedHints,
}

fn tls_error(flag: &'static str, path: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError::Tls {
        flag,
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Reads a PEM file for `--flag`: unreadable and non-PEM files are refused
/// with the cause ("cannot read it: no such file or directory", "not a PEM
/// file").
fn read_tls_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| {
        let cause = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => {
                let text = e.to_string();
                text.find(" (os error")
                    .map_or(text.clone(), |i| text[..i].to_lowercase())
            }
        };
        tls_error(flag, path, format!("cannot read it: {cause}"))
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(tls_error(
            flag,
            path,
            "not a PEM file (no \"-----BEGIN\" line)",
        ));
    }
    Ok(bytes)
}

/// Why a PEM file did not decode, for people.
fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "malformed PEM: the {} section has no END line",
            String::from_utf8_lossy(end_marker)
        ),
        E::IllegalSectionStart { .. } => "malformed PEM: a \"-----BEGIN\" line is garbled".into(),
        E::Base64Decode(_) => "malformed PEM: a section's body is not base64".into(),
        other => format!("malformed PEM: {other}"),
    }
}

/// The certificates of a PEM file, each checked to be X.509 DER; `none`
/// is the reason given when the file holds no CERTIFICATE section.
fn read_certificates(
    flag: &'static str,
    path: &Path,
    none: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = read_tls_file(flag, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(flag, path, pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(tls_error(flag, path, none));
    }
    for (i, cert) in certs.iter().enumerate() {
        // Parsing it as a trust anchor checks the X.509 structure.
        if let Err(e) = rustls::RootCertStore::empty().add(cert.clone()) {
            let why = match e {
                rustls::Error::InvalidCertificate(e) => format!("{e:?}"),
                e => e.to_string(),
            };
            return Err(tls_error(
                flag,
                path,
                format!(
                    "certificate {} of {} is not valid X.509 ({why})",
                    i + 1,
                    certs.len()
                ),
            ));
        }
    }
    Ok(certs)
}

/// Checks the server's TLS files the way the TLS stack will use them, so a
/// problem is reported at startup as one line naming the flag, the file and
/// the reason: unreadable, not PEM, malformed PEM, no certificate, a
/// certificate that is not X.509, no private key, an unsupported key, a key
/// that does not match the certificate, no CA certificate.
fn check_tls_files(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<(), ConfigError> {
    let chain = read_certificates("tls-cert", cert, "no certificate found")?;
    let key_pem = read_tls_file("tls-key", key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => tls_error(
            "tls-key",
            key,
            "no private key found (expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section)",
        ),
        e => tls_error("tls-key", key, pem_reason(&e)),
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| {
            tls_error(
                "tls-key",
                key,
                format!("unsupported or malformed private key ({e})"),
            )
        })?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(tls_error(
                "tls-key",
                key,
                format!(
                    "private key does not match the certificate in {}",
                    cert.display()
                ),
            ));
        }
        Err(e) => return Err(tls_error("tls-cert", cert, e.to_string())),
    }
    if let Some(ca) = client_ca {
        read_certificates("tls-client-ca", ca, "no CA certificate in file")?;
    }
    Ok(())
}

impl Config {
    /// Validates `args` and loads the data file (blocking I/O).
    pub fn load(args: Args) -> Result<Self, ConfigError> {
        if args.initial_version == Some(0) {
            return Err(invalid(
                "initial-version",
                "0 means \"holds nothing\" in the Watch protocol; use 1 or more".to_string(),
            ));
        }
        if !(0.0..=1.0).contains(&args.max_shrink) {
            return Err(invalid(
                "max-shrink",
                format!("{} is not between 0 and 1", args.max_shrink),
            ));
        }
        if args.max_data_bytes == 0 {
            return Err(invalid("max-data-bytes", "must be at least 1"));
        }
        if args.max_records == 0 {
            return Err(invalid("max-records", "must be at least 1"));
        }
        if args.max_watch_streams == 0 {
            return Err(invalid("max-watch-streams", "must be at least 1"));
        }
        if args.max_watch_streams_per_connection == 0 {
            return Err(invalid(
                "max-watch-streams-per-connection",
                "must be at least 1",
            ));
        }
        for (flag, value) in [
            ("poll-interval", args.poll_interval),
            ("reload-max-delay", args.reload_max_delay),
            ("heartbeat-interval", args.heartbeat_interval),
            ("max-stream-lifetime", args.max_stream_lifetime),
            ("max-connection-age-grace", args.max_connection_age_grace),
            ("request-timeout", args.request_timeout),
            ("stream-send-timeout", args.stream_send_timeout),
            ("max-scan-duration", args.max_scan_duration),
        ] {
            if value.is_zero() {
                return Err(invalid(flag, "must be longer than zero"));
            }
        }
        if args.heartbeat_interval > portolan::MAX_HEARTBEAT_INTERVAL {
            return Err(invalid(
                "heartbeat-interval",
                format!(
                    "{} is longer than the maximum of {} (clients treat {} without an event as a \
                     broken stream and would reconnect between heartbeats)",
                    humantime::format_duration(args.heartbeat_interval),
                    humantime::format_duration(portolan::MAX_HEARTBEAT_INTERVAL),
                    humantime::format_duration(portolan::WATCH_SILENCE_LIMIT),
                ),
            ));
        }
        if args.format.is_some() && args.data.len() != 1 {
            return Err(invalid(
                "format",
                "needs exactly one --data (the embedded registry has a fixed format; \
                 layers' formats are detected)",
            ));
        }
        portolan_registry::layers::check_layer_names(args.data.iter().map(|l| l.name.as_str()))
            .map_err(|e| invalid("data", e))?;
        let fixed = |addr: Option<SocketAddr>| addr.filter(|a| a.port() != 0);
        if fixed(args.admin_listen).is_some_and(|a| a == args.listen) {
            return Err(invalid("admin-listen", "must differ from --listen"));
        }
        if fixed(args.health_listen)
            .is_some_and(|a| a == args.listen || Some(a) == args.admin_listen)
        {
            return Err(invalid(
                "health-listen",
                "must differ from --listen and --admin-listen",
            ));
        }
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                check_tls_files(cert, key, args.tls_client_ca.as_deref())?;
                let identity = Identity::from_pem(
                    read_tls_file("tls-cert", cert)?,
                    read_tls_file("tls-key", key)?,
                );
                let mut tls = ServerTlsConfig::new().identity(identity);
                if let Some(ca) = &args.tls_client_ca {
                    tls = tls
                        .client_ca_root(Certificate::from_pem(read_tls_file("tls-client-ca", ca)?))
                        .client_auth_optional(false);
                }
                // The files passed the checks above; what tonic could still
                // refuse is the combination, so it names both.
                tonic::transport::Server::builder()
                    .tls_config(tls.clone())
                    .map_err(|e| ConfigError::Tls {
                        flag: "tls-cert",
                        path: cert.display().to_string(),
                        reason: format!("refused with --tls-key {}: {e}", key.display()),
                    })?;
                Some(tls)
            }
            (None, None) if args.tls_client_ca.is_some() => {
                return Err(invalid("tls-client-ca", "needs --tls-cert and --tls-key"));
            }
            (None, None) => None,
            (Some(_), None) => return Err(invalid("tls-cert", "needs --tls-key")),
            (None, Some(_)) => return Err(invalid("tls-key", "needs --tls-cert")),
        };
        let mut layers = Vec::with_capacity(args.data.len());
        for layer in &args.data {
            let registry = reload::read_registry(&layer.path, args.format, &args.parse_limits())?;
            layers.push((layer.name.clone(), registry));
        }
        let sources = layers
            .iter()
            .map(|(name, registry)| (name.clone(), registry.source.clone()))
            .collect();
        let initial = if layers.is_empty() {
            portolan_registry::embedded::registry()
        } else {
            portolan_registry::layers::compose(layers)
        };
        let mesh_hints = match &args.mesh_hints {
            Some(path) => reload::read_mesh_hints(path).map_err(ConfigError::MeshHints)?,
            None => LoadedHints::embedded(),
        };
        Ok(Self {
            args,
            initial,
            layers: sources,
            tls,
            mesh_hints,
        })
    }

    /// How the `--mesh-hints` file is watched (none for the compiled-in
    /// hints).
    pub fn mesh_hints_settings(&self) -> Option<WatchedFile> {
        self.args.mesh_hints.as_ref().map(|path| WatchedFile {
            path: path.clone(),
            debounce: self.args.reload_debounce,
            max_delay: self.args.reload_max_delay,
            poll_interval: self.args.poll_interval,
        })
    }

    /// Reload settings of each layer read from a file (none for the
    /// embedded registry).
    pub fn reload_settings(&self) -> Vec<ReloadSettings> {
        self.args
            .data
            .iter()
            .map(|layer| ReloadSettings {
                layer: layer.name.clone(),
                path: layer.path.clone(),
                format: self.args.format,
                debounce: self.args.reload_debounce,
                max_delay: self.args.reload_max_delay,
                poll_interval: self.args.poll_interval,
                guard: ReloadGuard {
                    max_shrink: self.args.max_shrink,
                    ..ReloadGuard::default()
                },
                limits: self.args.parse_limits(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_parser() {
        // Every field, so a default changed in one place only is caught.
        let parsed = Args::try_parse_from(["portolan-server"]).unwrap();
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Args::defaults()));
    }

    #[test]
    fn durations_use_humantime() {
        let args =
            Args::try_parse_from(["portolan-server", "--heartbeat-interval", "2s 500ms"]).unwrap();
        assert_eq!(args.heartbeat_interval, Duration::from_millis(2500));
        assert!(Args::try_parse_from(["portolan-server", "--poll-interval", "soon"]).is_err());
    }

    /// Row 6 of issue #15: a heartbeat interval the clients would take for
    /// a dead stream is refused, with the reason.
    #[test]
    fn a_heartbeat_interval_clients_cannot_tolerate_is_refused() {
        let mut args = Args::defaults();
        args.heartbeat_interval = Duration::from_secs(40);
        match Config::load(args) {
            Err(ConfigError::Invalid {
                flag: "heartbeat-interval",
                reason,
            }) => assert!(reason.contains("maximum of 10s"), "{reason}"),
            other => panic!("accepted or wrong error: {other:?}"),
        }
        let mut args = Args::defaults();
        args.heartbeat_interval = portolan::MAX_HEARTBEAT_INTERVAL;
        assert!(Config::load(args).is_ok());
    }

    #[test]
    fn bad_combinations_are_refused() {
        let mut args = Args::defaults();
        args.max_shrink = 1.5;
        assert!(matches!(
            Config::load(args),
            Err(ConfigError::Invalid {
                flag: "max-shrink",
                ..
            })
        ));
        let mut args = Args::defaults();
        args.format = Some(Format::IanaCsv);
        assert!(matches!(
            Config::load(args),
            Err(ConfigError::Invalid { flag: "format", .. })
        ));
        assert!(
            Args::try_parse_from(["portolan-server", "--tls-cert", "c.pem"]).is_err(),
            "a certificate without a key"
        );
        let mut args = Args::defaults();
        args.tls_cert = Some("/nonexistent/cert.pem".into());
        args.tls_key = Some("/nonexistent/key.pem".into());
        let err = Config::load(args).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--tls-cert /nonexistent/cert.pem: cannot read it: no such file or directory"
        );
    }

    /// A self-signed certificate for `localhost` and its key, as PEM.
    fn cert_and_key() -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// Every bad TLS file gives one line naming the right flag, the file
    /// and the specific reason; before, most were tonic's bare "transport
    /// error" blamed on --tls-cert, CA problems included.
    #[test]
    fn tls_file_problems_name_the_flag_the_file_and_the_reason() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &[u8]| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let (cert_pem, key_pem) = cert_and_key();
        let (other_cert_pem, other_key_pem) = cert_and_key();
        let cert = write("cert.pem", cert_pem.as_bytes());
        let key = write("key.pem", key_pem.as_bytes());
        let other_key = write("other-key.pem", other_key_pem.as_bytes());
        let ca = write("ca.pem", other_cert_pem.as_bytes());
        let missing = dir.path().join("missing.pem");
        let der = write("cert.der", &[0x30, 0x82, 0x01, 0x0a, 0x02, 0x82]);
        let bad_base64 = write(
            "bad-base64.pem",
            b"-----BEGIN CERTIFICATE-----\n!!! not base64 !!!\n-----END CERTIFICATE-----\n",
        );
        let no_end = write(
            "no-end.pem",
            b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n",
        );
        // Valid base64 whose bytes are not a certificate.
        let not_x509 = write(
            "not-x509.pem",
            b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQsIG5vdCBhIGNlcnRpZmljYXRl\n-----END CERTIFICATE-----\n",
        );
        let not_a_key = write(
            "not-a-key.pem",
            b"-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQsIG5vdCBhIGtleQ==\n-----END PRIVATE KEY-----\n",
        );

        let p = |path: &Path| path.display().to_string();
        // (cert, key, client CA, expected line)
        let cases: Vec<(&Path, &Path, Option<&Path>, String)> = vec![
            (
                &missing,
                &key,
                None,
                format!(
                    "--tls-cert {}: cannot read it: no such file or directory",
                    p(&missing)
                ),
            ),
            (
                &cert,
                &missing,
                None,
                format!(
                    "--tls-key {}: cannot read it: no such file or directory",
                    p(&missing)
                ),
            ),
            (
                &cert,
                &key,
                Some(&missing),
                format!(
                    "--tls-client-ca {}: cannot read it: no such file or directory",
                    p(&missing)
                ),
            ),
            (
                &der,
                &key,
                None,
                format!(
                    "--tls-cert {}: not a PEM file (no \"-----BEGIN\" line)",
                    p(&der)
                ),
            ),
            (
                &cert,
                &der,
                None,
                format!(
                    "--tls-key {}: not a PEM file (no \"-----BEGIN\" line)",
                    p(&der)
                ),
            ),
            (
                &cert,
                &key,
                Some(&der),
                format!(
                    "--tls-client-ca {}: not a PEM file (no \"-----BEGIN\" line)",
                    p(&der)
                ),
            ),
            (
                &bad_base64,
                &key,
                None,
                format!(
                    "--tls-cert {}: malformed PEM: a section's body is not base64",
                    p(&bad_base64)
                ),
            ),
            (
                &no_end,
                &key,
                None,
                format!(
                    "--tls-cert {}: malformed PEM: the CERTIFICATE section has no END line",
                    p(&no_end)
                ),
            ),
            (
                &cert,
                &key,
                Some(&bad_base64),
                format!(
                    "--tls-client-ca {}: malformed PEM: a section's body is not base64",
                    p(&bad_base64)
                ),
            ),
            (
                &key,
                &key,
                None,
                format!("--tls-cert {}: no certificate found", p(&key)),
            ),
            (
                &cert,
                &cert,
                None,
                format!(
                    "--tls-key {}: no private key found (expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section)",
                    p(&cert)
                ),
            ),
            (
                &cert,
                &key,
                Some(&key),
                format!("--tls-client-ca {}: no CA certificate in file", p(&key)),
            ),
            (
                &not_x509,
                &key,
                None,
                format!(
                    "--tls-cert {}: certificate 1 of 1 is not valid X.509 (",
                    p(&not_x509)
                ),
            ),
            (
                &cert,
                &key,
                Some(&not_x509),
                format!(
                    "--tls-client-ca {}: certificate 1 of 1 is not valid X.509 (",
                    p(&not_x509)
                ),
            ),
            (
                &cert,
                &not_a_key,
                None,
                format!(
                    "--tls-key {}: unsupported or malformed private key (",
                    p(&not_a_key)
                ),
            ),
            (
                &cert,
                &other_key,
                None,
                format!(
                    "--tls-key {}: private key does not match the certificate in {}",
                    p(&other_key),
                    p(&cert)
                ),
            ),
        ];
        for (cert, key, client_ca, expected) in cases {
            let mut args = Args::defaults();
            args.tls_cert = Some(cert.to_path_buf());
            args.tls_key = Some(key.to_path_buf());
            args.tls_client_ca = client_ca.map(Path::to_path_buf);
            let line = Config::load(args).expect_err(&expected).to_string();
            assert!(
                line.starts_with(&expected),
                "expected {expected:?}\n     got {line:?}"
            );
            assert!(!line.contains('\n'), "one line: {line:?}");
        }

        // The good files (and another certificate as client CA) load.
        let mut args = Args::defaults();
        args.tls_cert = Some(cert.clone());
        args.tls_key = Some(key.clone());
        args.tls_client_ca = Some(ca.clone());
        let config = Config::load(args).expect("good TLS files");
        assert!(config.tls.is_some());
    }

    #[test]
    fn an_unreadable_data_file_is_a_config_error() {
        let mut args = Args::defaults();
        args.data = vec!["/nonexistent/registry.csv".parse().unwrap()];
        let err = Config::load(args).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--data: cannot read /nonexistent/registry.csv"),
            "{err}"
        );
    }
}
