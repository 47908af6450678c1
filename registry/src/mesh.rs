//! Mesh hints: which well-known ports Istio and Linkerd mishandle unless
//! told the protocol, and what to set so connections do not stall.
//!
//! Meshes detect the protocol from the first bytes the *client* sends. On a
//! port whose server speaks first (SMTP, MySQL, NATS, ...) the client waits
//! for the server, the proxy waits for the client, and the connection
//! stalls until the mesh gives up detecting. The dataset
//! (`data/mesh/hints.toml`, schema and provenance in `data/mesh/README.md`)
//! records per port whether the server speaks first (with the protocol
//! document saying so), each mesh's default for the port (with the mesh
//! source listing it), and the fix. It is compiled in ([`SOURCE`]) and
//! read once ([`Hints::embedded`]).
//!
//! Two facts are kept apart on purpose: [`Hint::server_speaks_first`] (what
//! the protocol does) and [`Hint::sniffing_note`] (why a mesh special-cases
//! a client-first port anyway, e.g. Linkerd's PostgreSQL and Redis).
//!
//! Parsing is strict: every key of the schema is required, unknown keys and
//! unknown values are errors naming the entry's port and the key, and every
//! fact an entry states must carry an `https://` source.
//!
//! The module also holds the RFC 6335 §5.1 syntax of service names
//! ([`check_service_name`]) and its Kubernetes variant, lowercase only
//! ([`check_kubernetes_port_name`]): a registry name that breaks it cannot
//! be a container port name, so `appProtocol` or a renamed port is needed.
//!
//! [`describe`] answers "what does this port mean to a mesh" once, for the
//! CLI and the server alike: a [`PortDescription`] holds the records, the
//! hint, each mesh's default with whether it stalls connections
//! ([`Stall`]) and what to set, and each record name's class
//! ([`NameCheck`]).

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use crate::model::{Protocol, Record};

/// The dataset compiled into every binary: the repository's
/// `data/mesh/hints.toml`.
pub const SOURCE: &str = include_str!("../../data/mesh/hints.toml");

/// The schema version this module reads (`schema = 1` in the file).
pub const SCHEMA: i64 = 1;

/// Istio's `wellKnownPorts` (`pkg/config/kube/conversion.go`): plain TCP,
/// not sniffed, when the name and `appProtocol` name no known protocol.
/// [`Hints::parse`] refuses a dataset without an entry for each, so a port
/// the dataset does not list is sniffed ([`Hints::istio_default`]).
pub const ISTIO_WELL_KNOWN_PORTS: &[u16] = &[25, 53, 3306, 27017];

/// Linkerd's default `proxy.opaquePorts` (the control-plane chart's
/// `values.yaml`); required in the dataset like [`ISTIO_WELL_KNOWN_PORTS`].
pub const LINKERD_OPAQUE_PORTS: &[u16] = &[25, 587, 3306, 4444, 5432, 6379, 9300, 11211];

/// Linkerd's default `proxyInit.ignoreInboundPorts` and
/// `ignoreOutboundPorts` (the same two ports); required in the dataset.
pub const LINKERD_SKIP_PORTS: &[u16] = &[4567, 4568];

/// The protocols Istio parses from a Service port name or `appProtocol`
/// (`pkg/config/protocol/instance.go`), lowercase.
pub const ISTIO_PROTOCOLS: &[&str] = &[
    "tcp",
    "udp",
    "grpc",
    "grpc-web",
    "http",
    "http_proxy",
    "http2",
    "https",
    "tls",
    "mongo",
    "redis",
    "mysql",
];

/// The protocol Istio reads from a port name or `appProtocol`: the whole
/// value, else the part before the first hyphen, case-insensitively.
pub fn istio_protocol(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let prefix = lower.split('-').next().unwrap_or_default();
    ISTIO_PROTOCOLS
        .iter()
        .copied()
        .find(|p| *p == lower)
        .or_else(|| ISTIO_PROTOCOLS.iter().copied().find(|p| *p == prefix))
}

/// Whether `name` is a DNS label (RFC 1123), as Kubernetes requires of a
/// Service port name: 1-63 lowercase letters, digits and hyphens, no
/// hyphen at either end.
pub fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether the server sends bytes before the client, by the protocol's
/// specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerSpeaksFirst {
    /// The server sends first (a greeting, a handshake packet): a mesh
    /// waiting for the client's bytes stalls.
    Yes,
    /// The client sends first (including implicit-TLS ports, where the TLS
    /// ClientHello is first).
    No,
    /// No protocol document settling it was found.
    Unverified,
}

/// What Istio does with the port when the Service port's name and
/// `appProtocol` name no protocol it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IstioDefault {
    /// The port is in Istio's `wellKnownPorts`: plain TCP, no sniffing.
    Tcp,
    /// Automatic protocol selection (sniffing).
    Sniff,
}

/// Linkerd's default for the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkerdDefault {
    /// In `proxy.opaquePorts`: proxied as TCP without detection.
    Opaque,
    /// In `proxyInit.ignoreInboundPorts`/`ignoreOutboundPorts`: bypasses
    /// the proxy (no mTLS).
    Skip,
    /// Protocol detection.
    Detect,
}

/// What Istio's `ConvertProtocol` makes of the entry's `appProtocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IstioReading {
    /// TCP.
    Tcp,
    /// An unknown name on a port outside `wellKnownPorts`: sniffed.
    Sniff,
    /// HTTP.
    Http,
    /// HTTPS.
    Https,
    /// Istio's (experimental) MySQL protocol.
    Mysql,
    /// Istio's (experimental) Redis protocol.
    Redis,
    /// Istio's MongoDB protocol.
    Mongo,
}

/// What Linkerd makes of the entry's `appProtocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkerdReading {
    /// HTTP/1 (`http`).
    Http1,
    /// HTTP/2 (`kubernetes.io/h2c`).
    H2,
    /// Opaque (`linkerd.io/opaque`, `linkerd.io/tcp`).
    Opaque,
    /// Any other value: the port keeps its default handling.
    Ignored,
}

macro_rules! words {
    ($ty:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in the order the README lists them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value as the dataset writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }

            /// Parses the dataset's word for the value.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words!(ServerSpeaksFirst { Yes => "yes", No => "no", Unverified => "unverified" });
words!(IstioDefault { Tcp => "tcp", Sniff => "sniff" });
words!(LinkerdDefault { Opaque => "opaque", Skip => "skip", Detect => "detect" });
words!(IstioReading {
    Tcp => "tcp",
    Sniff => "sniff",
    Http => "http",
    Https => "https",
    Mysql => "mysql",
    Redis => "redis",
    Mongo => "mongo",
});
words!(LinkerdReading { Http1 => "http1", H2 => "h2", Opaque => "opaque", Ignored => "ignored" });
words!(Stall { Yes => "yes", No => "no", Unknown => "unknown" });

/// Whether a mesh's default handling of a port stalls new connections: the
/// mesh waits for the client's first bytes while the client waits for the
/// server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stall {
    /// The server speaks first and the mesh sniffs or detects.
    Yes,
    /// The mesh does not wait for the client, or the client speaks first.
    No,
    /// The mesh waits for the client, and whether the server speaks first
    /// is not known (no hint, or the hint says unverified).
    Unknown,
}

impl Stall {
    /// The stall of a mesh that `waits` for the client's first bytes on a
    /// port whose server speaks first as `first` says (`None`: no hint).
    pub fn of(waits: bool, first: Option<ServerSpeaksFirst>) -> Self {
        match (waits, first) {
            (false, _) | (true, Some(ServerSpeaksFirst::No)) => Self::No,
            (true, Some(ServerSpeaksFirst::Yes)) => Self::Yes,
            (true, Some(ServerSpeaksFirst::Unverified) | None) => Self::Unknown,
        }
    }
}

/// One entry of the dataset: a (port, transport) and what the meshes do
/// with it. Empty strings of the file are `None` here.
#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    /// The port.
    pub port: u16,
    /// The transport (TCP for every entry today: the meshes only sniff TCP).
    pub transport: Protocol,
    /// Human name of the protocol usually found on this port.
    pub application: String,
    /// The IANA service name registered for this application on this
    /// port; `None` when it has none here (NATS 4222, Kafka 9092).
    pub iana_name: Option<String>,
    /// Every name the IANA registry lists for exactly this port and
    /// transport, whoever owns it.
    pub iana_registered_names: Vec<String>,
    /// Whether the server speaks first.
    pub server_speaks_first: ServerSpeaksFirst,
    /// The protocol document settling [`Self::server_speaks_first`]; `None`
    /// exactly when it is [`ServerSpeaksFirst::Unverified`].
    pub server_speaks_first_source: Option<String>,
    /// TLS from the first byte: a mesh sees a ClientHello.
    pub implicit_tls: bool,
    /// Why a mesh special-cases a client-first port; `None` otherwise.
    pub sniffing_note: Option<String>,
    /// The source backing [`Self::sniffing_note`] (present with the note).
    pub sniffing_note_source: Option<String>,
    /// Istio's default for the port.
    pub istio_default: IstioDefault,
    /// The Istio code or doc showing [`Self::istio_default`].
    pub istio_source: String,
    /// Linkerd's default for the port.
    pub linkerd_default: LinkerdDefault,
    /// The Linkerd chart or doc showing [`Self::linkerd_default`].
    pub linkerd_source: String,
    /// The Kubernetes `appProtocol` describing the traffic (an IANA name or
    /// `kubernetes.io/...`); `None` when no standard value exists.
    pub app_protocol: Option<String>,
    /// What Istio makes of [`Self::app_protocol`] (present with it).
    pub istio_reads_app_protocol_as: Option<IstioReading>,
    /// A Service port name Istio parses into the right protocol.
    pub istio_port_name: String,
    /// What to set for Istio to stop sniffing; `None` when nothing is needed.
    pub istio_fix: Option<String>,
    /// What Linkerd makes of [`Self::app_protocol`] (present with it).
    pub linkerd_reads_app_protocol_as: Option<LinkerdReading>,
    /// The annotation making the port opaque when Linkerd's default would
    /// stall it; `None` when nothing is needed.
    pub linkerd_fix: Option<String>,
    /// Anything else, including every `unverified` caveat.
    pub notes: Option<String>,
}

/// The whole dataset, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Hints {
    hints: Vec<Hint>,
}

/// Why the dataset was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HintsError {
    /// Not TOML, or not the schema's shape (a missing or unknown key, a
    /// wrong type); the message names the line.
    #[error("mesh hints: {0}")]
    Syntax(String),
    /// A `schema` this module does not read.
    #[error("mesh hints: schema {found}, expected {}", SCHEMA)]
    Schema {
        /// The file's `schema`.
        found: i64,
    },
    /// A value outside the key's value set, or a fact without its source.
    #[error("mesh hint for port {port}: {key} = {value:?}: {why}")]
    Value {
        /// The entry's port.
        port: u16,
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A port of a mesh's default list ([`ISTIO_WELL_KNOWN_PORTS`],
    /// [`LINKERD_OPAQUE_PORTS`], [`LINKERD_SKIP_PORTS`]) without an entry:
    /// the defaults of unlisted ports would then be wrong for it.
    #[error("mesh hints: no entry for port {port}/tcp, which is in {list}")]
    MissingDefaultPort {
        /// The port.
        port: u16,
        /// The list, as the mesh names it.
        list: &'static str,
    },
    /// Two entries for one port and transport.
    #[error("mesh hint for port {port}/{transport}: listed twice")]
    Duplicate {
        /// The port.
        port: u16,
        /// The transport.
        transport: String,
    },
}

/// The file as written: plain strings, checked by [`Hints::parse`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    schema: i64,
    hint: Vec<RawHint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHint {
    port: u16,
    transport: String,
    application: String,
    iana_name: String,
    iana_registered_names: Vec<String>,
    server_speaks_first: String,
    server_speaks_first_source: String,
    implicit_tls: bool,
    sniffing_note: String,
    sniffing_note_source: String,
    istio_default: String,
    istio_source: String,
    linkerd_default: String,
    linkerd_source: String,
    app_protocol: String,
    istio_reads_app_protocol_as: String,
    istio_port_name: String,
    istio_fix: String,
    linkerd_reads_app_protocol_as: String,
    linkerd_fix: String,
    notes: String,
}

/// Reads the raw values of one entry, each error naming the entry's port.
struct Checker {
    port: u16,
}

impl Checker {
    fn error(&self, key: &'static str, value: &str, why: impl Into<String>) -> HintsError {
        HintsError::Value {
            port: self.port,
            key,
            value: value.to_string(),
            why: why.into(),
        }
    }

    /// One of the words of `T`.
    fn word<T: Copy>(
        &self,
        key: &'static str,
        value: &str,
        all: &[T],
        parse: fn(&str) -> Option<T>,
        as_str: fn(T) -> &'static str,
    ) -> Result<T, HintsError> {
        parse(value).ok_or_else(|| {
            let words: Vec<&str> = all.iter().map(|v| as_str(*v)).collect();
            self.error(key, value, format!("expected one of {}", words.join(", ")))
        })
    }

    /// A word of `T`, or `None` for `""`.
    fn optional_word<T: Copy>(
        &self,
        key: &'static str,
        value: &str,
        all: &[T],
        parse: fn(&str) -> Option<T>,
        as_str: fn(T) -> &'static str,
    ) -> Result<Option<T>, HintsError> {
        if value.is_empty() {
            return Ok(None);
        }
        self.word(key, value, all, parse, as_str).map(Some)
    }

    /// An `https://` URL.
    fn source(&self, key: &'static str, value: &str) -> Result<String, HintsError> {
        if value.starts_with("https://") && value.len() > "https://".len() {
            Ok(value.to_string())
        } else {
            Err(self.error(key, value, "expected an https:// URL"))
        }
    }

    /// A non-empty text.
    fn text(&self, key: &'static str, value: &str) -> Result<String, HintsError> {
        if value.trim().is_empty() {
            Err(self.error(key, value, "must not be empty"))
        } else {
            Ok(value.to_string())
        }
    }
}

fn optional(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

impl Hint {
    fn from_raw(raw: RawHint) -> Result<Self, HintsError> {
        let c = Checker { port: raw.port };
        // The meshes only detect protocols on TCP, and the API answers a
        // UDP port with no hint: an entry for another transport would be
        // read by nothing.
        if raw.transport != "tcp" {
            return Err(c.error(
                "transport",
                &raw.transport,
                "expected tcp (the meshes only sniff TCP)",
            ));
        }
        let transport = Protocol::Tcp;
        // The name the lint fixes and DescribePort suggest: Istio must
        // parse a protocol from it, and a Service must accept it.
        if istio_protocol(&raw.istio_port_name).is_none() {
            return Err(c.error(
                "istio_port_name",
                &raw.istio_port_name,
                format!(
                    "expected an Istio protocol or PROTOCOL-SUFFIX (protocols: {})",
                    ISTIO_PROTOCOLS.join(", ")
                ),
            ));
        }
        if !is_dns_label(&raw.istio_port_name) {
            return Err(c.error(
                "istio_port_name",
                &raw.istio_port_name,
                "not a valid Service port name (a DNS label: lowercase letters, digits and '-', at most 63)",
            ));
        }
        let server_speaks_first = c.word(
            "server_speaks_first",
            &raw.server_speaks_first,
            ServerSpeaksFirst::ALL,
            ServerSpeaksFirst::parse,
            ServerSpeaksFirst::as_str,
        )?;
        // A stated fact has its source; "unverified" states none.
        let server_speaks_first_source = match server_speaks_first {
            ServerSpeaksFirst::Unverified if raw.server_speaks_first_source.is_empty() => None,
            ServerSpeaksFirst::Unverified => {
                return Err(c.error(
                    "server_speaks_first_source",
                    &raw.server_speaks_first_source,
                    "must be empty when server_speaks_first is unverified",
                ));
            }
            ServerSpeaksFirst::Yes | ServerSpeaksFirst::No => Some(c.source(
                "server_speaks_first_source",
                &raw.server_speaks_first_source,
            )?),
        };
        let (sniffing_note, sniffing_note_source) = match (
            raw.sniffing_note.is_empty(),
            raw.sniffing_note_source.is_empty(),
        ) {
            (true, true) => (None, None),
            (true, false) => {
                return Err(c.error(
                    "sniffing_note_source",
                    &raw.sniffing_note_source,
                    "must be empty when sniffing_note is",
                ));
            }
            (false, _) => (
                Some(c.text("sniffing_note", &raw.sniffing_note)?),
                Some(c.source("sniffing_note_source", &raw.sniffing_note_source)?),
            ),
        };
        let app_protocol = optional(raw.app_protocol);
        let istio_reads_app_protocol_as = c.optional_word(
            "istio_reads_app_protocol_as",
            &raw.istio_reads_app_protocol_as,
            IstioReading::ALL,
            IstioReading::parse,
            IstioReading::as_str,
        )?;
        let linkerd_reads_app_protocol_as = c.optional_word(
            "linkerd_reads_app_protocol_as",
            &raw.linkerd_reads_app_protocol_as,
            LinkerdReading::ALL,
            LinkerdReading::parse,
            LinkerdReading::as_str,
        )?;
        // The readings describe the appProtocol: both present or both absent.
        for (key, value, present) in [
            (
                "istio_reads_app_protocol_as",
                &raw.istio_reads_app_protocol_as,
                istio_reads_app_protocol_as.is_some(),
            ),
            (
                "linkerd_reads_app_protocol_as",
                &raw.linkerd_reads_app_protocol_as,
                linkerd_reads_app_protocol_as.is_some(),
            ),
        ] {
            if present != app_protocol.is_some() {
                return Err(c.error(key, value, "must be empty exactly when app_protocol is"));
            }
        }
        Ok(Self {
            port: raw.port,
            transport,
            application: c.text("application", &raw.application)?,
            iana_name: optional(raw.iana_name),
            iana_registered_names: raw.iana_registered_names,
            server_speaks_first,
            server_speaks_first_source,
            implicit_tls: raw.implicit_tls,
            sniffing_note,
            sniffing_note_source,
            istio_default: c.word(
                "istio_default",
                &raw.istio_default,
                IstioDefault::ALL,
                IstioDefault::parse,
                IstioDefault::as_str,
            )?,
            istio_source: c.source("istio_source", &raw.istio_source)?,
            linkerd_default: c.word(
                "linkerd_default",
                &raw.linkerd_default,
                LinkerdDefault::ALL,
                LinkerdDefault::parse,
                LinkerdDefault::as_str,
            )?,
            linkerd_source: c.source("linkerd_source", &raw.linkerd_source)?,
            app_protocol,
            istio_reads_app_protocol_as,
            istio_port_name: c.text("istio_port_name", &raw.istio_port_name)?,
            istio_fix: optional(raw.istio_fix),
            linkerd_reads_app_protocol_as,
            linkerd_fix: optional(raw.linkerd_fix),
            notes: optional(raw.notes),
        })
    }
}

impl Hints {
    /// Parses and checks a dataset in the `hints.toml` schema.
    ///
    /// # Errors
    /// The first problem found: TOML syntax or shape (with its line), a
    /// schema other than [`SCHEMA`], a value outside its key's set or a
    /// fact without an `https://` source (naming the port and the key), a
    /// transport other than `tcp`, an `istio_port_name` Istio parses no
    /// protocol from or a Service cannot carry, a port listed twice, a port
    /// of a mesh default list ([`ISTIO_WELL_KNOWN_PORTS`],
    /// [`LINKERD_OPAQUE_PORTS`], [`LINKERD_SKIP_PORTS`]) without an entry.
    pub fn parse(text: &str) -> Result<Self, HintsError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| HintsError::Syntax(e.to_string()))?;
        if raw.schema != SCHEMA {
            return Err(HintsError::Schema { found: raw.schema });
        }
        let mut seen = HashSet::new();
        let mut hints = Vec::with_capacity(raw.hint.len());
        for raw in raw.hint {
            let hint = Hint::from_raw(raw)?;
            if !seen.insert((hint.port, hint.transport.clone())) {
                return Err(HintsError::Duplicate {
                    port: hint.port,
                    transport: hint.transport.to_string(),
                });
            }
            hints.push(hint);
        }
        for (list, ports) in [
            ("Istio's wellKnownPorts", ISTIO_WELL_KNOWN_PORTS),
            ("Linkerd's default opaque ports", LINKERD_OPAQUE_PORTS),
            ("Linkerd's default skip ports", LINKERD_SKIP_PORTS),
        ] {
            if let Some(&port) = ports.iter().find(|p| !seen.contains(&(**p, Protocol::Tcp))) {
                return Err(HintsError::MissingDefaultPort { port, list });
            }
        }
        Ok(Self { hints })
    }

    /// The compiled-in dataset ([`SOURCE`]), parsed on first use.
    ///
    /// # Panics
    /// Never in a released build: the text is fixed at compile time and a
    /// unit test proves it parses.
    pub fn embedded() -> &'static Self {
        static EMBEDDED: OnceLock<Hints> = OnceLock::new();
        EMBEDDED.get_or_init(|| {
            Self::parse(SOURCE).expect("the embedded mesh hints parse (checked by a unit test)")
        })
    }

    /// The hint for `port` over `protocol`; with no protocol, the first
    /// entry for the port (every entry is TCP today).
    pub fn for_port(&self, port: u16, protocol: Option<&Protocol>) -> Option<&Hint> {
        self.hints
            .iter()
            .find(|h| h.port == port && Protocol::matches(Some(&h.transport), protocol))
    }

    /// Every hint, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Hint> {
        self.hints.iter()
    }

    /// How many hints there are.
    pub fn len(&self) -> usize {
        self.hints.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.hints.is_empty()
    }

    /// Istio's default for a TCP port. The dataset lists every port of
    /// [`ISTIO_WELL_KNOWN_PORTS`] ([`Hints::parse`] refuses one that does
    /// not), so a port it does not list is sniffed.
    pub fn istio_default(&self, port: u16) -> IstioDefault {
        self.for_port(port, Some(&Protocol::Tcp))
            .map_or(IstioDefault::Sniff, |h| h.istio_default)
    }

    /// Linkerd's default for a TCP port. The dataset lists every port of
    /// [`LINKERD_OPAQUE_PORTS`] and [`LINKERD_SKIP_PORTS`] ([`Hints::parse`]
    /// refuses one that does not), so a port it does not list is detected.
    pub fn linkerd_default(&self, port: u16) -> LinkerdDefault {
        self.for_port(port, Some(&Protocol::Tcp))
            .map_or(LinkerdDefault::Detect, |h| h.linkerd_default)
    }
}

/// What Istio does with a port by default and what to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstioAdvice {
    /// The hint's default, else Istio's general one (sniffing).
    pub default: IstioDefault,
    /// Whether that default stalls connections.
    pub stalls: Stall,
    /// The `appProtocol` to declare (from the hint).
    pub app_protocol: Option<String>,
    /// What Istio makes of [`Self::app_protocol`].
    pub reads_app_protocol_as: Option<IstioReading>,
    /// A Service port name Istio parses into the right protocol.
    pub port_name: Option<String>,
    /// What to set so Istio stops sniffing; `None` when nothing is needed
    /// or nothing is known (no hint).
    pub fix: Option<String>,
    /// The Istio code or doc the default comes from (from the hint).
    pub source: Option<String>,
}

/// What Linkerd does with a port by default and what to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkerdAdvice {
    /// The hint's default, else Linkerd's general one (detection).
    pub default: LinkerdDefault,
    /// Whether that default stalls connections.
    pub stalls: Stall,
    /// The `appProtocol` to declare (from the hint).
    pub app_protocol: Option<String>,
    /// What Linkerd makes of [`Self::app_protocol`].
    pub reads_app_protocol_as: Option<LinkerdReading>,
    /// The annotation making the port opaque when the default would stall
    /// it; `None` when nothing is needed or nothing is known (no hint).
    pub annotation: Option<String>,
    /// The Linkerd chart or doc the default comes from (from the hint).
    pub source: Option<String>,
}

/// Both meshes' advice for a TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshAdvice {
    /// Istio.
    pub istio: IstioAdvice,
    /// Linkerd.
    pub linkerd: LinkerdAdvice,
}

/// A record name's class: whether it is an RFC 6335 service name, and a
/// Kubernetes port name as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCheck {
    /// The name as written.
    pub name: String,
    /// The RFC 6335 rule it breaks; `None` when valid.
    pub rfc6335: Option<NameProblem>,
    /// The Kubernetes port name rule it breaks; `None` when valid.
    pub kubernetes: Option<NameProblem>,
}

impl NameCheck {
    /// Checks `name`.
    pub fn of(name: &str) -> Self {
        Self {
            name: name.to_string(),
            rfc6335: check_service_name(name).err(),
            kubernetes: check_kubernetes_port_name(name).err(),
        }
    }
}

/// What a port means to a service mesh ([`describe`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PortDescription {
    /// The port.
    pub port: u16,
    /// The protocol asked about; `None`: any.
    pub protocol: Option<Protocol>,
    /// The records covering the port, in lookup order.
    pub records: Vec<Arc<Record>>,
    /// The dataset's hint for the port.
    pub hint: Option<Hint>,
    /// Each mesh's default and fix; `None` when the protocol asked about
    /// is not TCP (the meshes only sniff TCP).
    pub meshes: Option<MeshAdvice>,
    /// Each distinct record name, in record order.
    pub names: Vec<NameCheck>,
}

/// Describes `port` (over `protocol`, `None` = any) for a mesh: `records`
/// are its lookup's, in lookup order; the hint and the meshes' defaults
/// come from `hints`. A mesh stalls when its default waits for the
/// client's bytes (Istio sniffing, Linkerd detecting) and the server
/// speaks first. `None` when there are neither records nor a hint.
pub fn describe(
    port: u16,
    protocol: Option<&Protocol>,
    records: Vec<Arc<Record>>,
    hints: &Hints,
) -> Option<PortDescription> {
    let hint = hints.for_port(port, protocol).cloned();
    if records.is_empty() && hint.is_none() {
        return None;
    }
    let meshes = matches!(protocol, None | Some(Protocol::Tcp)).then(|| {
        let first = hint.as_ref().map(|h| h.server_speaks_first);
        let istio_default = hint
            .as_ref()
            .map_or_else(|| hints.istio_default(port), |h| h.istio_default);
        let linkerd_default = hint
            .as_ref()
            .map_or_else(|| hints.linkerd_default(port), |h| h.linkerd_default);
        let app_protocol = hint.as_ref().and_then(|h| h.app_protocol.clone());
        MeshAdvice {
            istio: IstioAdvice {
                default: istio_default,
                stalls: Stall::of(istio_default == IstioDefault::Sniff, first),
                app_protocol: app_protocol.clone(),
                reads_app_protocol_as: hint.as_ref().and_then(|h| h.istio_reads_app_protocol_as),
                port_name: hint.as_ref().map(|h| h.istio_port_name.clone()),
                fix: hint.as_ref().and_then(|h| h.istio_fix.clone()),
                source: hint.as_ref().map(|h| h.istio_source.clone()),
            },
            linkerd: LinkerdAdvice {
                default: linkerd_default,
                stalls: Stall::of(linkerd_default == LinkerdDefault::Detect, first),
                app_protocol,
                reads_app_protocol_as: hint.as_ref().and_then(|h| h.linkerd_reads_app_protocol_as),
                annotation: hint.as_ref().and_then(|h| h.linkerd_fix.clone()),
                source: hint.as_ref().map(|h| h.linkerd_source.clone()),
            },
        }
    });
    let mut names: Vec<NameCheck> = Vec::new();
    for name in records.iter().filter_map(|r| r.name.as_deref()) {
        if !names.iter().any(|n| n.name == name) {
            names.push(NameCheck::of(name));
        }
    }
    Some(PortDescription {
        port,
        protocol: protocol.cloned(),
        records,
        hint,
        meshes,
        names,
    })
}

/// Why a text is not a valid service name (RFC 6335 §5.1) or Kubernetes
/// port name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// No characters.
    #[error("empty")]
    Empty,
    /// More than [`MAX_SERVICE_NAME`] characters.
    #[error("{len} characters, more than {}", MAX_SERVICE_NAME)]
    TooLong {
        /// The name's length in characters.
        len: usize,
    },
    /// A character other than an ASCII letter, digit or hyphen.
    #[error("{0:?} is not a letter, digit or hyphen")]
    Character(char),
    /// Digits and hyphens only.
    #[error("no letter")]
    NoLetter,
    /// A hyphen at the start or the end.
    #[error("starts or ends with a hyphen")]
    EdgeHyphen,
    /// Two hyphens in a row.
    #[error("two hyphens in a row")]
    DoubleHyphen,
    /// An uppercase letter: fine for RFC 6335, not for Kubernetes.
    #[error("uppercase letter {0:?} (Kubernetes port names are lowercase)")]
    Uppercase(char),
}

/// The longest service name RFC 6335 allows, in characters.
pub const MAX_SERVICE_NAME: usize = 15;

/// Checks the syntax RFC 6335 §5.1 gives service names: 1 to 15
/// characters, ASCII letters, digits and hyphens only, at least one letter,
/// no hyphen at either end, no two hyphens in a row. Case is free
/// (`gameTCP` is valid); names compare case-insensitively.
///
/// # Errors
/// The first rule broken, in the order above.
pub fn check_service_name(name: &str) -> Result<(), NameProblem> {
    let len = name.chars().count();
    if len == 0 {
        return Err(NameProblem::Empty);
    }
    if len > MAX_SERVICE_NAME {
        return Err(NameProblem::TooLong { len });
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(NameProblem::Character(c));
    }
    if !name.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err(NameProblem::NoLetter);
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(NameProblem::EdgeHyphen);
    }
    if name.contains("--") {
        return Err(NameProblem::DoubleHyphen);
    }
    Ok(())
}

/// Checks a Kubernetes container or Service port name: RFC 6335 syntax
/// ([`check_service_name`]) in lowercase, as Kubernetes' `IsValidPortName`
/// requires.
///
/// # Errors
/// The RFC 6335 problem, else [`NameProblem::Uppercase`].
pub fn check_kubernetes_port_name(name: &str) -> Result<(), NameProblem> {
    check_service_name(name)?;
    match name.chars().find(char::is_ascii_uppercase) {
        Some(c) => Err(NameProblem::Uppercase(c)),
        None => Ok(()),
    }
}

/// Whether `name` may be a Kubernetes port name as it is.
pub fn is_kubernetes_port_name(name: &str) -> bool {
    check_kubernetes_port_name(name).is_ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn hints() -> &'static Hints {
        Hints::embedded()
    }

    fn hint(port: u16) -> &'static Hint {
        hints()
            .for_port(port, Some(&Protocol::Tcp))
            .unwrap_or_else(|| panic!("no hint for {port}/tcp"))
    }

    fn ports(keep: impl Fn(&Hint) -> bool) -> BTreeSet<u16> {
        hints().iter().filter(|h| keep(h)).map(|h| h.port).collect()
    }

    #[test]
    fn the_embedded_file_parses() {
        let parsed = Hints::parse(SOURCE).expect("embedded hints parse");
        assert_eq!(parsed.len(), 29);
        assert_eq!(&parsed, hints());
    }

    #[test]
    fn every_stated_fact_has_an_https_source() {
        let https = |s: &str| s.starts_with("https://") && s.len() > 8;
        for h in hints().iter() {
            let port = h.port;
            match (h.server_speaks_first, &h.server_speaks_first_source) {
                (ServerSpeaksFirst::Unverified, None) => {}
                (ServerSpeaksFirst::Yes | ServerSpeaksFirst::No, Some(s)) => {
                    assert!(https(s), "{port}: {s}");
                }
                other => panic!("{port}: server_speaks_first {other:?}"),
            }
            assert_eq!(
                h.sniffing_note.is_some(),
                h.sniffing_note_source.is_some(),
                "{port}"
            );
            if let Some(s) = &h.sniffing_note_source {
                assert!(https(s), "{port}: {s}");
            }
            assert!(https(&h.istio_source), "{port}: {}", h.istio_source);
            assert!(https(&h.linkerd_source), "{port}: {}", h.linkerd_source);
        }
    }

    #[test]
    fn the_ports_of_the_issue_are_covered() {
        for port in [
            21, 22, 25, 587, 110, 143, 3306, 4222, 5432, 6379, 11211, 9300, 4444, 4567, 4568,
            27017, 9092, 5672, 9042, 9200, 389, 636,
        ] {
            hint(port);
        }
    }

    #[test]
    fn the_mesh_default_lists_are_what_the_meshes_ship() {
        assert_eq!(
            ports(|h| h.istio_default == IstioDefault::Tcp),
            ISTIO_WELL_KNOWN_PORTS.iter().copied().collect()
        );
        assert_eq!(
            ports(|h| h.linkerd_default == LinkerdDefault::Opaque),
            LINKERD_OPAQUE_PORTS.iter().copied().collect()
        );
        assert_eq!(
            ports(|h| h.linkerd_default == LinkerdDefault::Skip),
            LINKERD_SKIP_PORTS.iter().copied().collect()
        );
        // Ports outside the data fall back to the meshes' general defaults.
        assert_eq!(hints().istio_default(8080), IstioDefault::Sniff);
        assert_eq!(hints().linkerd_default(8080), LinkerdDefault::Detect);
        assert_eq!(hints().istio_default(3306), IstioDefault::Tcp);
    }

    #[test]
    fn server_first_is_kept_apart_from_the_sniffing_note() {
        for port in [5432, 6379, 11211] {
            let h = hint(port);
            assert_eq!(h.server_speaks_first, ServerSpeaksFirst::No, "{port}");
            assert_eq!(h.linkerd_default, LinkerdDefault::Opaque, "{port}");
            assert!(h.sniffing_note.is_some(), "{port}");
        }
        for port in [25, 587, 3306, 4222, 21, 110, 143] {
            assert_eq!(hint(port).server_speaks_first, ServerSpeaksFirst::Yes);
        }
    }

    #[test]
    fn nats_is_server_first_and_in_neither_list() {
        let nats = hint(4222);
        assert_eq!(nats.server_speaks_first, ServerSpeaksFirst::Yes);
        assert_eq!(nats.istio_default, IstioDefault::Sniff);
        assert_eq!(nats.linkerd_default, LinkerdDefault::Detect);
        assert_eq!(nats.iana_name, None);
        assert!(nats.istio_fix.is_some());
        assert!(
            nats.linkerd_fix
                .as_deref()
                .is_some_and(|f| f.contains("config.linkerd.io/opaque-ports"))
        );
    }

    #[test]
    fn for_port_matches_the_transport() {
        assert!(hints().for_port(3306, None).is_some());
        assert!(hints().for_port(3306, Some(&Protocol::Udp)).is_none());
        assert!(hints().for_port(8080, None).is_none());
    }

    /// The embedded file with the entry for `port` edited by `edit`.
    fn edited(port: u16, edit: impl Fn(&str) -> String) -> String {
        let marker = format!("[[hint]]\nport = {port}\n");
        let start = SOURCE.find(&marker).expect("entry");
        let end = SOURCE[start + 1..]
            .find("[[hint]]")
            .map_or(SOURCE.len(), |e| start + 1 + e);
        format!(
            "{}{}{}",
            &SOURCE[..start],
            edit(&SOURCE[start..end]),
            &SOURCE[end..]
        )
    }

    #[test]
    fn unknown_values_name_the_port_and_the_key() {
        let text = edited(3306, |e| {
            e.replace("istio_default = \"tcp\"", "istio_default = \"tpc\"")
        });
        let err = Hints::parse(&text).expect_err("tpc is refused");
        assert!(
            matches!(
                err,
                HintsError::Value {
                    port: 3306,
                    key: "istio_default",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "mesh hint for port 3306: istio_default = \"tpc\": expected one of tcp, sniff"
        );
        let text = edited(4222, |e| {
            e.replace(
                "server_speaks_first = \"yes\"",
                "server_speaks_first = \"maybe\"",
            )
        });
        assert!(matches!(
            Hints::parse(&text),
            Err(HintsError::Value {
                port: 4222,
                key: "server_speaks_first",
                ..
            })
        ));
    }

    #[test]
    fn facts_without_https_sources_are_refused() {
        let text = edited(21, |e| {
            e.replace("https://www.rfc-editor.org", "http://www.rfc-editor.org")
        });
        assert!(matches!(
            Hints::parse(&text),
            Err(HintsError::Value {
                port: 21,
                key: "server_speaks_first_source",
                ..
            })
        ));
        let text = edited(5432, |e| {
            e.replace(
                "sniffing_note_source = \"https://access.crunchydata.com/documentation/postgresql96/9.6.21/protocol-flow.html\"",
                "sniffing_note_source = \"\"",
            )
        });
        assert!(matches!(
            Hints::parse(&text),
            Err(HintsError::Value {
                port: 5432,
                key: "sniffing_note_source",
                ..
            })
        ));
    }

    #[test]
    fn shape_errors_schema_and_duplicates() {
        let missing = edited(22, |e| e.replace("notes = ", "note = "));
        assert!(matches!(Hints::parse(&missing), Err(HintsError::Syntax(_))));
        let schema = SOURCE.replace("schema = 1", "schema = 2");
        assert_eq!(Hints::parse(&schema), Err(HintsError::Schema { found: 2 }));
        let twice = edited(22, |e| format!("{e}{e}"));
        assert_eq!(
            Hints::parse(&twice),
            Err(HintsError::Duplicate {
                port: 22,
                transport: "tcp".into()
            })
        );
    }

    /// The embedded file without the entry for `port`.
    fn without(port: u16) -> String {
        edited(port, |_| String::new())
    }

    #[test]
    fn a_file_missing_a_mesh_default_port_is_refused() {
        for (port, list) in [
            (53, "Istio's wellKnownPorts"),
            (27017, "Istio's wellKnownPorts"),
            (587, "Linkerd's default opaque ports"),
            (11211, "Linkerd's default opaque ports"),
            (4568, "Linkerd's default skip ports"),
        ] {
            let err = Hints::parse(&without(port)).expect_err("refused");
            assert_eq!(err, HintsError::MissingDefaultPort { port, list });
            assert!(
                err.to_string().contains(&format!("port {port}/tcp")),
                "{err}"
            );
        }
        // A port outside the lists may be left out.
        assert!(Hints::parse(&without(4222)).is_ok());
    }

    #[test]
    fn transports_other_than_tcp_are_refused() {
        for other in ["udp", "sctp", "TCP"] {
            let text = edited(4222, |e| {
                e.replace("transport = \"tcp\"", &format!("transport = \"{other}\""))
            });
            assert!(
                matches!(
                    Hints::parse(&text),
                    Err(HintsError::Value {
                        port: 4222,
                        key: "transport",
                        ..
                    })
                ),
                "{other}"
            );
        }
    }

    #[test]
    fn istio_port_names_must_parse_and_be_service_port_names() {
        for bad in [
            "nats",
            "natstcp",
            "Tcp-nats",
            "tcp_nats",
            "tcp-nats-",
            "http_proxy",
        ] {
            let text = edited(4222, |e| {
                e.replace(
                    "istio_port_name = \"tcp-nats\"",
                    &format!("istio_port_name = \"{bad}\""),
                )
            });
            assert!(
                matches!(
                    Hints::parse(&text),
                    Err(HintsError::Value {
                        port: 4222,
                        key: "istio_port_name",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert_eq!(istio_protocol("tcp-nats"), Some("tcp"));
        assert_eq!(istio_protocol("grpc-web"), Some("grpc-web"));
        assert_eq!(istio_protocol("GRPC-x"), Some("grpc"));
        assert_eq!(istio_protocol("client"), None);
    }

    fn record(name: &str, port: u16) -> Arc<Record> {
        Arc::new(Record {
            name: Some(name.into()),
            ports: Some(crate::PortRange::single(port)),
            protocol: Some(Protocol::Tcp),
            ..Record::default()
        })
    }

    #[test]
    fn describe_mysql_is_server_first_and_stalls_under_neither_mesh() {
        let d = describe(3306, None, vec![record("mysql", 3306)], hints()).expect("described");
        assert_eq!(d.hint.as_ref().map(|h| h.port), Some(3306));
        let meshes = d.meshes.expect("TCP or any: meshes apply");
        assert_eq!(meshes.istio.default, IstioDefault::Tcp);
        assert_eq!(meshes.istio.stalls, Stall::No);
        assert_eq!(meshes.istio.fix, None);
        assert_eq!(meshes.istio.port_name.as_deref(), Some("mysql"));
        assert_eq!(meshes.linkerd.default, LinkerdDefault::Opaque);
        assert_eq!(meshes.linkerd.stalls, Stall::No);
        assert_eq!(meshes.linkerd.annotation, None);
        assert_eq!(d.names, [NameCheck::of("mysql")]);
        assert_eq!(d.names[0].kubernetes, None);
    }

    #[test]
    fn describe_nats_stalls_under_both_defaults_and_gives_the_fixes() {
        let d = describe(4222, Some(&Protocol::Tcp), Vec::new(), hints()).expect("a hint");
        assert!(d.records.is_empty());
        let meshes = d.meshes.expect("TCP");
        assert_eq!(meshes.istio.default, IstioDefault::Sniff);
        assert_eq!(meshes.istio.stalls, Stall::Yes);
        assert!(meshes.istio.fix.is_some_and(|f| f.contains("tcp-nats")));
        assert_eq!(meshes.linkerd.default, LinkerdDefault::Detect);
        assert_eq!(meshes.linkerd.stalls, Stall::Yes);
        assert_eq!(
            meshes.linkerd.annotation.as_deref(),
            Some("config.linkerd.io/opaque-ports: \"4222\"")
        );
    }

    #[test]
    fn describe_without_a_hint_uses_the_general_defaults_and_cannot_tell_a_stall() {
        let d = describe(
            6010,
            None,
            vec![record("x11", 6010), record("X11", 6010)],
            hints(),
        )
        .expect("records");
        assert_eq!(d.hint, None);
        let meshes = d.meshes.expect("any protocol");
        assert_eq!(meshes.istio.default, IstioDefault::Sniff);
        assert_eq!(meshes.istio.stalls, Stall::Unknown);
        assert_eq!(meshes.istio.fix, None);
        assert_eq!(meshes.linkerd.default, LinkerdDefault::Detect);
        assert_eq!(meshes.linkerd.stalls, Stall::Unknown);
        // Distinct names as written: case differs, so both, each classed.
        assert_eq!(d.names.len(), 2);
        assert_eq!(d.names[1].rfc6335, None);
        assert_eq!(d.names[1].kubernetes, Some(NameProblem::Uppercase('X')));
    }

    #[test]
    fn describe_client_first_and_non_tcp_and_nothing() {
        let https = describe(443, None, Vec::new(), hints()).expect("a hint");
        let meshes = https.meshes.expect("meshes");
        assert_eq!(
            meshes.istio.stalls,
            Stall::No,
            "TLS: the client speaks first"
        );
        assert_eq!(meshes.linkerd.stalls, Stall::No);
        let udp =
            describe(22, Some(&Protocol::Udp), vec![record("ssh", 22)], hints()).expect("records");
        assert_eq!(udp.hint, None);
        assert_eq!(udp.meshes, None, "meshes only sniff TCP");
        assert_eq!(describe(65000, None, Vec::new(), hints()), None);
        assert_eq!(
            Stall::of(true, Some(ServerSpeaksFirst::Unverified)),
            Stall::Unknown
        );
        assert_eq!(Stall::of(false, Some(ServerSpeaksFirst::Yes)), Stall::No);
    }

    #[test]
    fn service_names_follow_rfc_6335() {
        assert_eq!(check_service_name("gameTCP"), Ok(()));
        assert_eq!(
            check_kubernetes_port_name("gameTCP"),
            Err(NameProblem::Uppercase('T'))
        );
        assert!(!is_kubernetes_port_name("gameTCP"));
        assert!(is_kubernetes_port_name("mysql"));
        assert!(is_kubernetes_port_name("x11"));
        assert!(is_kubernetes_port_name("a-b-c"));
        assert_eq!(
            check_service_name("api_port"),
            Err(NameProblem::Character('_'))
        );
        assert_eq!(check_service_name("6379"), Err(NameProblem::NoLetter));
        assert_eq!(
            check_service_name("abcdefghijklmnop"),
            Err(NameProblem::TooLong { len: 16 })
        );
        assert_eq!(check_service_name("abcdefghijklmno"), Ok(()));
        assert_eq!(check_service_name("-x"), Err(NameProblem::EdgeHyphen));
        assert_eq!(check_service_name("x-"), Err(NameProblem::EdgeHyphen));
        assert_eq!(check_service_name("a--b"), Err(NameProblem::DoubleHyphen));
        assert_eq!(check_service_name(""), Err(NameProblem::Empty));
        assert!(!is_kubernetes_port_name("api_port"));
    }
}
