//! The rules: [`lint`] turns a [`Manifest`] into [`Finding`]s, reading the
//! IANA registry through [`RegistryView`] and the mesh hints
//! ([`Hints`]) passed in, so a server can pass its reloaded copies.
//!
//! Every rule is a [`Rule`] with a stable id, a default severity and the
//! source it enforces ([`Rule::help_uri`]). A port the manifest leaves
//! unnamed and without `appProtocol` is fine unless a mesh is asked for.
//!
//! What counts as "the port's protocol is known" ([`Rule::NameProtocolMismatch`]):
//! the port has an entry in the mesh hints, or it is a system port (below
//! 1024) with an IANA registration. A registration of a user port says
//! who asked IANA for it, not what runs there (9080 is registered to
//! `glrpc`, and is Istio's bookinfo HTTP port), so other ports are not
//! judged.

use std::collections::BTreeMap;

use portolan_registry::mesh::{
    IstioDefault, LinkerdDefault, NameProblem, ServerSpeaksFirst, check_kubernetes_port_name,
    istio_protocol,
};
use portolan_registry::{Hint, Hints, Index, Protocol};

use crate::model::{Field, Manifest, Object, PortValue, Position, ServicePort, is_tcp};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; nothing breaks.
    Info,
    /// Likely to misbehave (a mesh reading the wrong protocol).
    Warning,
    /// Rejected by Kubernetes, or a connection that stalls.
    Error,
}

impl Severity {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

macro_rules! rules {
    ($($variant:ident => $id:literal, $sev:ident, $uri:literal, $short:literal;)+) => {
        /// A rule, with a stable id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $(
                #[doc = $short]
                $variant,
            )+
        }

        impl Rule {
            /// Every rule, in the README's order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),+];

            /// The stable id (`container-port-name`).
            pub fn id(self) -> &'static str {
                match self { $(Rule::$variant => $id),+ }
            }

            /// The severity the rule reports with by default.
            pub fn default_severity(self) -> Severity {
                match self { $(Rule::$variant => Severity::$sev),+ }
            }

            /// The document the rule enforces.
            pub fn help_uri(self) -> &'static str {
                match self { $(Rule::$variant => $uri),+ }
            }

            /// One line saying what the rule checks.
            pub fn short_description(self) -> &'static str {
                match self { $(Rule::$variant => $short),+ }
            }
        }
    };
}

rules! {
    YamlSyntax => "yaml-syntax", Error,
        "https://yaml.org/spec/1.2.2/",
        "A document that is not valid YAML (the other documents are still linted).";
    PortNumber => "port-number", Error,
        "https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#ports",
        "containerPort and a Service's port are integers from 1 to 65535.";
    ContainerPortName => "container-port-name", Error,
        "https://www.rfc-editor.org/rfc/rfc6335#section-5.1",
        "A container port name is an IANA_SVC_NAME: 1-15 lowercase letters, digits and hyphens, with a letter, no hyphen at either end or twice in a row.";
    ServicePortName => "service-port-name", Error,
        "https://www.rfc-editor.org/rfc/rfc1123#section-2.1",
        "A Service port name is a DNS label (RFC 1123): 1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit.";
    ServicePortNameMissing => "service-port-name-missing", Error,
        "https://kubernetes.io/docs/concepts/services-networking/service/#multi-port-services",
        "Every port of a Service with more than one port has a name.";
    ServicePortNameLong => "service-port-name-long", Info,
        "https://www.rfc-editor.org/rfc/rfc6335#section-5.1",
        "A Service port name over 15 characters cannot also be a container port name, so a targetPort cannot refer to a pod port of the same name.";
    ServicePortNameNumeric => "service-port-name-numeric", Info,
        "https://www.rfc-editor.org/rfc/rfc6335#section-5.1",
        "A Service port name of digits only is a valid DNS label but no IANA_SVC_NAME: no container port can carry it.";
    TargetPortName => "target-port-name", Error,
        "https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/#ServiceSpec",
        "A targetPort is a number from 1 to 65535 or a container port name (IANA_SVC_NAME); a quoted number is a name, which Kubernetes rejects.";
    TargetPortUnknown => "target-port-unknown", Error,
        "https://kubernetes.io/docs/concepts/services-networking/service/#defining-a-service",
        "A Service's named targetPort names a port of the containers its selector selects.";
    AppProtocol => "app-protocol", Warning,
        "https://kubernetes.io/docs/concepts/services-networking/service/#application-protocol",
        "appProtocol is an IANA service name, kubernetes.io/h2c, kubernetes.io/ws, kubernetes.io/wss, or a domain-prefixed name.";
    NameProtocolConflict => "name-protocol-conflict", Warning,
        "https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/",
        "A port's name and its appProtocol name different protocols (Istio reads appProtocol first).";
    NameProtocolMismatch => "name-protocol-mismatch", Warning,
        "https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/",
        "A port's name claims a protocol other than the one known to run on the port (mesh hints, or the IANA registration of a system port).";
    IstioPortName => "istio-port-name", Warning,
        "https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/",
        "With Istio: a Service port without appProtocol is named PROTOCOL or PROTOCOL-SUFFIX, or Istio sniffs its protocol.";
    ServerFirstUnhandled => "server-first-unhandled", Error,
        "https://istio.io/latest/docs/ops/deployment/application-requirements/#server-first-protocols",
        "With a mesh: a port whose server speaks first is declared TCP/opaque, or connections stall while the mesh waits for the client.";
}

/// A service mesh whose protocol handling is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mesh {
    /// Istio.
    Istio,
    /// Linkerd.
    Linkerd,
}

impl Mesh {
    /// The name used on the command line and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Istio => "istio",
            Self::Linkerd => "linkerd",
        }
    }
}

/// What [`lint`] checks beyond the default rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The meshes to check for (`istio-port-name`, `server-first-unhandled`).
    pub meshes: Vec<Mesh>,
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// Its severity.
    pub severity: Severity,
    /// `Kind/name` of the object.
    pub object: String,
    /// The field path in the object (`spec.ports[0].name`).
    pub path: String,
    /// Where the field is written.
    pub position: Position,
    /// What is wrong, naming the value.
    pub message: String,
    /// A concrete change that fixes it.
    pub fix: Option<String>,
}

/// The registry facts the rules read. Implemented for [`Index`].
pub trait RegistryView {
    /// The service names registered on exactly `port` (not a range) for
    /// `protocol`, lowercased, without repeats.
    fn names_on_port(&self, port: u16, protocol: &Protocol) -> Vec<String>;
    /// The single ports `name` is registered on (any protocol); empty when
    /// it is registered without a port or not at all.
    fn ports_of_name(&self, name: &str) -> Vec<u16>;
    /// Whether `name` is a registered service name (compared
    /// case-insensitively).
    fn is_service_name(&self, name: &str) -> bool;
}

impl RegistryView for Index {
    fn names_on_port(&self, port: u16, protocol: &Protocol) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for entry in self.lookup_port(port, Some(protocol)).entries {
            let r = &entry.record;
            if let (Some(name), Some(range)) = (&r.name, r.ports)
                && range.start == range.end
            {
                let name = name.to_ascii_lowercase();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }

    fn ports_of_name(&self, name: &str) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .lookup_name(name, None)
            .entries
            .iter()
            .filter_map(|e| e.record.ports.filter(|r| r.start == r.end).map(|r| r.start))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    fn is_service_name(&self, name: &str) -> bool {
        !self.lookup_name(name, None).entries.is_empty()
    }
}

/// Groups of protocols that do not contradict each other.
fn family(protocol: &str) -> Option<&'static str> {
    Some(match protocol.to_ascii_lowercase().as_str() {
        "http" | "http2" | "grpc" | "grpc-web" | "http_proxy" | "kubernetes.io/h2c"
        | "kubernetes.io/ws" | "www" | "www-http" => "HTTP",
        "https" | "tls" | "kubernetes.io/wss" => "TLS",
        "tcp" | "linkerd.io/opaque" | "linkerd.io/tcp" => "TCP",
        "udp" => "UDP",
        "mongo" | "mongodb" => "MongoDB",
        "mysql" => "MySQL",
        "redis" => "Redis",
        _ => return None,
    })
}

/// The application protocols `name-protocol-mismatch` recognises in a port
/// name that is not an Istio protocol: each family with the names meaning
/// it (IANA service names, their TLS and plain variants, common spellings).
/// A name outside this table is not judged. `sftp` is SFTP over SSH (IANA's
/// `sftp` on 115 is an unrelated older protocol); `git` is in no family, as
/// it runs over SSH (22), HTTP or its own port (9418).
const APPLICATIONS: &[(&str, &[&str])] = &[
    ("HTTP", &["http", "https", "www", "www-http"]),
    ("SSH", &["ssh", "sftp", "scp"]),
    ("SMTP", &["smtp", "smtps", "submission", "submissions"]),
    ("IMAP", &["imap", "imaps"]),
    ("POP3", &["pop3", "pop3s"]),
    ("LDAP", &["ldap", "ldaps"]),
    ("FTP", &["ftp", "ftps", "ftp-data", "ftps-data"]),
    ("DNS", &["domain", "dns"]),
    ("MySQL", &["mysql"]),
    ("PostgreSQL", &["postgresql", "postgres"]),
    ("Redis", &["redis"]),
    ("MongoDB", &["mongodb", "mongo"]),
    ("AMQP", &["amqp", "amqps"]),
    ("Memcached", &["memcache", "memcached"]),
];

/// The application family of `name` in [`APPLICATIONS`].
fn application(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    APPLICATIONS
        .iter()
        .find(|(_, names)| names.contains(&lower.as_str()))
        .map(|(family, _)| *family)
}

/// A valid Kubernetes port name of 15 characters or fewer made from
/// `name`: lowercase, `_` and other characters to `-`, hyphens collapsed
/// and trimmed, cut at a hyphen boundary (keeping the last part when it
/// fits: `jaeger-collector-http` → `jaeger-http`). `None` when nothing
/// with a letter is left.
pub fn derive_port_name(name: &str) -> Option<String> {
    let lower: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let parts: Vec<&str> = lower.split('-').filter(|p| !p.is_empty()).collect();
    let joined = parts.join("-");
    let name = if joined.len() <= 15 {
        joined
    } else {
        let mut kept = String::new();
        let mut used = 0;
        for part in &parts {
            let next = if kept.is_empty() {
                part.len()
            } else {
                kept.len() + 1 + part.len()
            };
            if next > 15 {
                break;
            }
            if !kept.is_empty() {
                kept.push('-');
            }
            kept.push_str(part);
            used += 1;
        }
        if kept.is_empty() {
            kept = parts.first()?.chars().take(15).collect();
        } else if used + 1 < parts.len()
            && let Some(last) = parts.last()
            && kept.len() + 1 + last.len() <= 15
        {
            // Drop the middle, keep the (often protocol) last part.
            kept = format!("{kept}-{last}");
        }
        kept
    };
    (check_kubernetes_port_name(&name).is_ok()).then_some(name)
}

/// The lint's wording of a port name problem: it says what is allowed
/// ("at most 15", "only letters, digits and '-'") where [`NameProblem`]'s
/// `Display` only names the fault; the rest falls back to `Display`
/// (`NameProblem` is non-exhaustive).
fn problem_text(problem: NameProblem) -> String {
    match problem {
        NameProblem::Empty => "it is empty".into(),
        NameProblem::TooLong { len } => format!("too long: {len} characters, at most 15"),
        NameProblem::Character('_') => "underscore '_' (only letters, digits and '-')".into(),
        NameProblem::Character(c) => format!("character {c:?} (only letters, digits and '-')"),
        NameProblem::NoLetter => "digits only (a name needs a letter)".into(),
        NameProblem::EdgeHyphen => "starts or ends with '-'".into(),
        NameProblem::Uppercase(c) => format!("uppercase letter {c:?} (must be lowercase)"),
        _ => problem.to_string(),
    }
}

/// Why `name` is not a DNS label (RFC 1123), if it is not.
fn dns_label_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if name.len() > 63 {
        return Some(format!("too long: {} characters, at most 63", name.len()));
    }
    if let Some(c) = name.chars().find(char::is_ascii_uppercase) {
        return Some(format!("uppercase letter {c:?} (must be lowercase)"));
    }
    if name.contains('_') {
        return Some("underscore '_' (only lowercase letters, digits and '-')".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Some(format!(
            "character {c:?} (only lowercase letters, digits and '-')"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("starts or ends with '-'".into());
    }
    None
}

/// Everything the rules share.
struct Ctx<'a> {
    registry: &'a dyn RegistryView,
    hints: &'a Hints,
    options: &'a Options,
    out: Vec<Finding>,
}

/// The transport of a `protocol:` field (TCP when absent).
fn transport(protocol: Option<&Field<String>>) -> Protocol {
    protocol
        .and_then(|p| Protocol::parse(&p.value))
        .unwrap_or(Protocol::Tcp)
}

impl Ctx<'_> {
    fn push(
        &mut self,
        rule: Rule,
        object: &Object,
        path: String,
        position: Position,
        message: String,
        fix: Option<String>,
    ) {
        self.push_with(
            rule,
            rule.default_severity(),
            object,
            path,
            position,
            message,
            fix,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn push_with(
        &mut self,
        rule: Rule,
        severity: Severity,
        object: &Object,
        path: String,
        position: Position,
        message: String,
        fix: Option<String>,
    ) {
        self.out.push(Finding {
            rule,
            severity,
            object: object.display_name(),
            path,
            position,
            message,
            fix,
        });
    }

    fn hint(&self, port: u16, protocol: &Protocol) -> Option<&Hint> {
        self.hints.for_port(port, Some(protocol))
    }

    /// A valid name for a port: the IANA name of a known port (hinted, or
    /// a system port), else one derived from `name`, else `port-N`.
    fn suggest_name(&self, port: Option<u16>, protocol: &Protocol, name: Option<&str>) -> String {
        if let Some(port) = port {
            if let Some(n) = self.hint(port, protocol).and_then(|h| h.iana_name.clone())
                && check_kubernetes_port_name(&n).is_ok()
            {
                return n;
            }
            if port < 1024
                && let Some(n) = self
                    .registry
                    .names_on_port(port, protocol)
                    .into_iter()
                    .find(|n| check_kubernetes_port_name(n).is_ok())
            {
                return n;
            }
        }
        if let Some(n) = name.and_then(derive_port_name) {
            return n;
        }
        match port {
            Some(p) => format!("port-{p}"),
            None => "port".into(),
        }
    }

    /// What is known to run on `port`: the mesh hint, else the IANA
    /// registrations of a system port; `None` when neither.
    fn known(&self, port: u16, protocol: &Protocol) -> Option<Known> {
        if let Some(h) = self.hint(port, protocol) {
            let istio = istio_protocol(&h.istio_port_name).and_then(family);
            let mut names: Vec<String> = h.iana_registered_names.clone();
            names.extend(h.iana_name.clone());
            let mut applications: Vec<&'static str> = [&h.iana_name, &h.app_protocol]
                .into_iter()
                .flatten()
                .filter_map(|n| application(n))
                .collect();
            applications.extend(istio.filter(|f| !matches!(*f, "TCP" | "UDP" | "TLS")));
            return Some(Known {
                istio,
                applications,
                names,
                what: format!("{} ({port}/{protocol})", h.application),
            });
        }
        if port < 1024 {
            let names = self.registry.names_on_port(port, protocol);
            if names.is_empty() {
                return None;
            }
            return Some(Known {
                istio: Some(names.iter().find_map(|n| family(n)).unwrap_or("other")),
                applications: names.iter().filter_map(|n| application(n)).collect(),
                what: format!("IANA {} ({port}/{protocol})", names.join(", ")),
                names,
            });
        }
        None
    }
}

/// What is known to run on a port ([`Ctx::known`]).
struct Known {
    /// The [`family`] of the Istio protocol that fits the port; "other"
    /// for a system port whose IANA names are no Istio protocol.
    istio: Option<&'static str>,
    /// The [`APPLICATIONS`] families of the port's IANA name and
    /// `appProtocol` (hint) or IANA names (system port).
    applications: Vec<&'static str>,
    /// Names registered with IANA on exactly this port.
    names: Vec<String>,
    /// What runs there, for messages.
    what: String,
}

/// The `yaml-syntax` findings of the documents that could not be read.
/// [`lint`] reports them among the other findings in position order (a
/// document error before another finding at the same position); a server
/// linting the objects alone never sees them, so a client asking one
/// reports these itself.
pub fn document_errors(manifest: &Manifest) -> Vec<Finding> {
    manifest
        .errors
        .iter()
        .map(|e| Finding {
            rule: Rule::YamlSyntax,
            severity: Severity::Error,
            object: "<document>".into(),
            path: String::new(),
            position: e.position,
            message: format!("not valid YAML: {}; this document is skipped", e.message),
            fix: Some("fix the YAML syntax at this position".into()),
        })
        .collect()
}

/// Lints `manifest`: every finding, in object and field order.
pub fn lint(
    manifest: &Manifest,
    registry: &dyn RegistryView,
    hints: &Hints,
    options: &Options,
) -> Vec<Finding> {
    let mut ctx = Ctx {
        registry,
        hints,
        options,
        out: document_errors(manifest),
    };
    for object in &manifest.objects {
        container_ports(&mut ctx, manifest, object);
        if object.is_service() {
            service_ports(&mut ctx, manifest, object);
        }
    }
    let mut out = ctx.out;
    out.sort_by_key(|f| f.position);
    out
}

/// The number of a `containerPort` or Service `port` field (`key`, in the
/// entry at `path`); a `port-number` finding when it is written but is not
/// a number from 1 to 65535.
fn port_number(
    ctx: &mut Ctx<'_>,
    object: &Object,
    path: &str,
    key: &str,
    field: &Option<Field<PortValue>>,
) -> Option<u16> {
    let p = field.as_ref()?;
    let number = p.value.number();
    if number.is_none() {
        ctx.push(
            Rule::PortNumber,
            object,
            format!("{path}.{key}"),
            p.position,
            format!(
                "{key} {} is not a port number from 1 to 65535",
                show(&p.value)
            ),
            Some("write the port as an unquoted integer".into()),
        );
    }
    number
}

fn container_ports(ctx: &mut Ctx<'_>, manifest: &Manifest, object: &Object) {
    for container in &object.containers {
        for port in &container.ports {
            let protocol = transport(port.protocol.as_ref());
            let number = port_number(
                ctx,
                object,
                &port.path,
                "containerPort",
                &port.container_port,
            );
            if let Some(name) = &port.name {
                if let Err(problem) = check_kubernetes_port_name(&name.value) {
                    let fix = ctx.suggest_name(number, &protocol, Some(&name.value));
                    ctx.push(
                        Rule::ContainerPortName,
                        object,
                        format!("{}.name", port.path),
                        name.position,
                        format!(
                            "container port name {:?} is not a valid IANA_SVC_NAME: {}",
                            name.value,
                            problem_text(problem)
                        ),
                        Some(format!(
                            "name: {fix} (and use it wherever a Service's targetPort refers to {:?})",
                            name.value
                        )),
                    );
                } else if let Some(n) = number {
                    mismatch(ctx, object, &port.path, name, n, &protocol);
                }
            }
            if let Some(n) = number
                && is_tcp(port.protocol.as_ref())
                && ctx.options.meshes.contains(&Mesh::Linkerd)
            {
                linkerd_server_first(
                    ctx,
                    manifest,
                    object,
                    &format!("{}.containerPort", port.path),
                    port.container_port
                        .as_ref()
                        .map_or(port.position, |p| p.position),
                    n,
                    None,
                );
            }
        }
    }
}

fn show(value: &PortValue) -> String {
    match value {
        PortValue::Number(n) => n.to_string(),
        PortValue::Text(t) => format!("{t:?}"),
    }
}

/// `name-protocol-mismatch` for a valid port name.
fn mismatch(
    ctx: &mut Ctx<'_>,
    object: &Object,
    path: &str,
    name: &Field<String>,
    port: u16,
    protocol: &Protocol,
) {
    let Some(known) = ctx.known(port, protocol) else {
        return;
    };
    let what = &known.what;
    let lower = name.value.to_ascii_lowercase();
    // Fires only when the name's protocol is known and differs: an Istio
    // protocol (tcp and udp say nothing) against the Istio protocol fitting
    // the port, else an application name of APPLICATIONS against the
    // port's applications. Other names, and names IANA registers on this
    // very port, are not judged.
    let claimed_what =
        if let Some(p) = istio_protocol(&lower).filter(|p| !matches!(*p, "tcp" | "udp")) {
            match (family(p), known.istio) {
                (Some(claimed), Some(fits)) if claimed != fits => format!("the {p} protocol"),
                _ => return,
            }
        } else if let Some(app) = application(&lower)
            && !known.applications.contains(&app)
            && !known.names.contains(&lower)
        {
            let ports = ctx.registry.ports_of_name(&lower);
            if ports.is_empty() {
                app.to_string()
            } else {
                let list: Vec<String> = ports.iter().map(u16::to_string).collect();
                format!(
                    "{app} (IANA's {lower:?}, registered on port {})",
                    list.join(", ")
                )
            }
        } else {
            return;
        };
    let fix = ctx
        .hint(port, protocol)
        .map(|h| h.istio_port_name.clone())
        .unwrap_or_else(|| ctx.suggest_name(Some(port), protocol, None));
    ctx.push(
        Rule::NameProtocolMismatch,
        object,
        format!("{path}.name"),
        name.position,
        format!(
            "port name {:?} says {claimed_what}, but port {port} carries {what}; {}",
            name.value,
            if path.contains("ontainers[") {
                "a Service port reusing this name makes a mesh treat the traffic as the wrong protocol"
            } else {
                "a mesh reading the name treats the traffic as the wrong protocol"
            }
        ),
        Some(format!("name: {fix}")),
    );
}

fn service_ports(ctx: &mut Ctx<'_>, manifest: &Manifest, object: &Object) {
    let several = object.service_ports.len() > 1;
    for sp in &object.service_ports {
        let protocol = transport(sp.protocol.as_ref());
        let number = port_number(ctx, object, &sp.path, "port", &sp.port);
        match &sp.name {
            None if several => {
                let fix = ctx.suggest_name(number, &protocol, None);
                ctx.push(
                    Rule::ServicePortNameMissing,
                    object,
                    sp.path.clone(),
                    sp.position,
                    format!(
                        "port {} has no name, and {} has {} ports: Kubernetes requires a name on each",
                        number.map_or("?".into(), |n| n.to_string()),
                        object.display_name(),
                        object.service_ports.len()
                    ),
                    Some(format!("name: {fix}")),
                );
            }
            None => {}
            Some(name) => service_port_name(ctx, object, sp, name, number, &protocol),
        }
        if let Some(ap) = &sp.app_protocol {
            app_protocol(ctx, object, sp, ap);
        }
        target_port(ctx, manifest, object, sp);
        if let Some(n) = number
            && is_tcp(sp.protocol.as_ref())
        {
            mesh_service_port(ctx, manifest, object, sp, n);
        }
    }
}

fn service_port_name(
    ctx: &mut Ctx<'_>,
    object: &Object,
    sp: &ServicePort,
    name: &Field<String>,
    number: Option<u16>,
    protocol: &Protocol,
) {
    let path = format!("{}.name", sp.path);
    if let Some(problem) = dns_label_problem(&name.value) {
        let fix = ctx.suggest_name(number, protocol, Some(&name.value));
        ctx.push(
            Rule::ServicePortName,
            object,
            path,
            name.position,
            format!(
                "Service port name {:?} is not a DNS label (RFC 1123): {problem}",
                name.value
            ),
            Some(format!("name: {fix}")),
        );
        return;
    }
    match check_kubernetes_port_name(&name.value) {
        Err(NameProblem::TooLong { len }) => {
            let fix = ctx.suggest_name(None, protocol, Some(&name.value));
            ctx.push(
                Rule::ServicePortNameLong,
                object,
                path,
                name.position,
                format!(
                    "Service port name {:?} has {len} characters: valid for a Service, but a container port name has at most 15, so no pod port can have this name for a targetPort to refer to",
                    name.value
                ),
                Some(format!("name: {fix} (on the Service and the container port)")),
            );
        }
        Err(NameProblem::NoLetter) => {
            let fix = ctx.suggest_name(number, protocol, None);
            ctx.push(
                Rule::ServicePortNameNumeric,
                object,
                path,
                name.position,
                format!(
                    "Service port name {:?} is digits only: valid for a Service, but not an IANA_SVC_NAME, so no container port can have this name (and meshes read no protocol from it)",
                    name.value
                ),
                Some(format!("name: {fix}")),
            );
        }
        Ok(()) => {
            if let Some(n) = number {
                mismatch(ctx, object, &sp.path, name, n, protocol);
            }
        }
        Err(_) => {}
    }
}

fn app_protocol(ctx: &mut Ctx<'_>, object: &Object, sp: &ServicePort, ap: &Field<String>) {
    let path = format!("{}.appProtocol", sp.path);
    let value = ap.value.as_str();
    if let Some(rest) = value.strip_prefix("kubernetes.io/") {
        if !matches!(rest, "h2c" | "ws" | "wss") {
            ctx.push_with(
                Rule::AppProtocol,
                Severity::Error,
                object,
                path.clone(),
                ap.position,
                format!("appProtocol {value:?} is not one Kubernetes defines (kubernetes.io/h2c, kubernetes.io/ws, kubernetes.io/wss)"),
                Some("appProtocol: kubernetes.io/h2c, kubernetes.io/ws or kubernetes.io/wss, or an IANA service name".into()),
            );
        }
    } else if let Some((prefix, _)) = value.split_once('/') {
        if !prefix.contains('.') {
            ctx.push(
                Rule::AppProtocol,
                object,
                path.clone(),
                ap.position,
                format!("appProtocol {value:?} has a prefix {prefix:?} that is not a domain name"),
                Some(format!(
                    "appProtocol: {prefix}.example.com/... (a domain you own)"
                )),
            );
        }
    } else if !ctx.registry.is_service_name(value) {
        ctx.push(
            Rule::AppProtocol,
            object,
            path.clone(),
            ap.position,
            format!("appProtocol {value:?} is not an IANA service name; un-prefixed values are reserved for IANA names"),
            Some(format!("appProtocol: an IANA service name (`portolan search {value}`), or a domain-prefixed name such as example.com/{}", value.to_ascii_lowercase())),
        );
    } else if value.chars().any(|c| c.is_ascii_uppercase()) {
        let lower = value.to_ascii_lowercase();
        let (transport, fix) = if matches!(lower.as_str(), "tcp" | "udp" | "sctp") {
            // A transport written here was meant for protocol:; the fix
            // must not contradict name-protocol-conflict's (appProtocol:
            // what the name says, or no appProtocol).
            let upper = value.to_ascii_uppercase();
            let set = match sp
                .name
                .as_ref()
                .and_then(|n| istio_protocol(&n.value))
                .filter(|p| !matches!(*p, "tcp" | "udp"))
            {
                Some(named) => format!("appProtocol: {named}, as the port name says"),
                None => "set it to the application protocol (an IANA service name)".to_string(),
            };
            (
                format!("; {value} is the transport, which belongs in protocol: {upper}"),
                format!("remove appProtocol (the transport goes in protocol: {upper}), or {set}"),
            )
        } else {
            (String::new(), format!("appProtocol: {lower}"))
        };
        ctx.push(
            Rule::AppProtocol,
            object,
            path.clone(),
            ap.position,
            format!("appProtocol {value:?} is the IANA service name {lower:?} spelt with uppercase letters{transport}"),
            Some(fix),
        );
    }
    // name-protocol-conflict.
    if let Some(name) = &sp.name
        && let Some(named) = istio_protocol(&name.value).filter(|p| !matches!(*p, "tcp" | "udp"))
        && let (Some(nf), Some(af)) = (family(named), family(value))
        && nf != af
    {
        let transport_note = if matches!(af, "TCP" | "UDP") && !value.contains('/') {
            format!(" ({value} is the transport, which belongs in protocol:, not appProtocol)")
        } else {
            String::new()
        };
        ctx.push(
            Rule::NameProtocolConflict,
            object,
            path,
            ap.position,
            format!(
                "port name {:?} says {nf} but appProtocol {value:?} says {af}{transport_note}; Istio reads appProtocol before the name, so the port is treated as {af}",
                name.value
            ),
            Some(format!(
                "appProtocol: {named} (or remove appProtocol); keep the transport in protocol:"
            )),
        );
    }
}

/// Most workloads, and port names per workload, a `target-port-unknown`
/// message lists (the rest are counted), so a message stays short however
/// many ports the input has.
const LISTED: usize = 8;

/// `items` joined by `separator`, at most [`LISTED`] of them, then "and N
/// more".
fn listed(items: &[String], separator: &str) -> String {
    let mut text = items
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(separator);
    if items.len() > LISTED {
        text.push_str(&format!(" and {} more", items.len() - LISTED));
    }
    text
}

fn target_port(ctx: &mut Ctx<'_>, manifest: &Manifest, object: &Object, sp: &ServicePort) {
    let Some(tp) = &sp.target_port else { return };
    let path = format!("{}.targetPort", sp.path);
    let name = match &tp.value {
        PortValue::Number(n) => {
            if tp.value.number().is_none() {
                ctx.push(
                    Rule::TargetPortName,
                    object,
                    path,
                    tp.position,
                    format!("targetPort {n} is not a port number from 1 to 65535"),
                    Some("a port number from 1 to 65535, or a container port's name".into()),
                );
            }
            return;
        }
        PortValue::Text(name) => name,
    };
    if let Err(problem) = check_kubernetes_port_name(name) {
        let (message, fix) = if name.parse::<u16>().is_ok_and(|n| n != 0) {
            (
                format!(
                    "targetPort {name:?} is quoted, so Kubernetes reads it as a port name, and a name needs a letter: it rejects the Service"
                ),
                format!("targetPort: {name} (unquoted)"),
            )
        } else {
            (
                format!(
                    "targetPort {name:?} is neither a port number nor a valid container port name: {}",
                    problem_text(problem)
                ),
                match derive_port_name(name) {
                    Some(valid) => format!(
                        "name the container port {valid:?} and use targetPort: {valid}, or a port number"
                    ),
                    None => "a port number, or a container port's name".into(),
                },
            )
        };
        ctx.push(
            Rule::TargetPortName,
            object,
            path,
            tp.position,
            message,
            Some(fix),
        );
        return;
    }
    let Some(selector) = object.selector.as_ref().filter(|s| !s.is_empty()) else {
        return;
    };
    let selected: Vec<&Object> = manifest
        .objects
        .iter()
        .filter(|o| {
            !o.containers.is_empty()
                && o.namespace == object.namespace
                && selector
                    .iter()
                    .all(|(k, v)| o.template_labels.get(k) == Some(v))
        })
        .collect();
    if selected.is_empty() {
        return;
    }
    let has = selected.iter().any(|o| {
        o.containers
            .iter()
            .flat_map(|c| &c.ports)
            .any(|p| p.name.as_ref().is_some_and(|n| &n.value == name))
    });
    if has {
        return;
    }
    let workloads: Vec<String> = selected
        .iter()
        .map(|o| {
            let names: Vec<String> = o
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .filter_map(|p| p.name.as_ref().map(|n| n.value.clone()))
                .collect();
            if names.is_empty() {
                format!("{} (no named ports)", o.display_name())
            } else {
                format!("{} (ports: {})", o.display_name(), listed(&names, ", "))
            }
        })
        .collect();
    let message = format!(
        "targetPort {name:?} names no container port of the workloads the selector selects: {}",
        listed(&workloads, "; ")
    );
    let fix = format!(
        "name a container port {name:?}, or set targetPort to an existing name or a number"
    );
    ctx.push(
        Rule::TargetPortUnknown,
        object,
        path,
        tp.position,
        message,
        Some(fix),
    );
}

/// Parses a Linkerd port list (`4222,8000-8080`) and tells whether it
/// covers `port`.
pub fn port_list_covers(list: &str, port: u16) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|item| match item.split_once('-') {
            Some((a, b)) => match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                (Ok(a), Ok(b)) => (a..=b).contains(&port),
                _ => false,
            },
            None => item.parse::<u16>() == Ok(port),
        })
}

const LINKERD_OPAQUE: &str = "config.linkerd.io/opaque-ports";
const LINKERD_SKIP_INBOUND: &str = "config.linkerd.io/skip-inbound-ports";

/// Whether a `config.linkerd.io` annotation keeps Linkerd from detecting
/// the protocol of connections to `port` (linkerd.io/2/features/protocol-detection):
/// for a Service, its `opaque-ports`; for a workload's container port, its
/// pod template's `opaque-ports` or `skip-inbound-ports`. Either may come
/// from the Namespace instead (Linkerd's injector copies a Namespace's
/// annotation to pods and Services without their own). Not read: a
/// workload's own `metadata.annotations`, `skip-outbound-ports` (it acts on
/// the client's connections), skip annotations on a Service.
fn linkerd_covered(manifest: &Manifest, object: &Object, port: u16) -> bool {
    let (own, keys): (&BTreeMap<String, String>, &[&str]) = if object.is_service() {
        (&object.annotations, &[LINKERD_OPAQUE])
    } else {
        (
            &object.template_annotations,
            &[LINKERD_OPAQUE, LINKERD_SKIP_INBOUND],
        )
    };
    let namespace = manifest
        .objects
        .iter()
        .find(|o| o.kind == "Namespace" && o.name.is_some() && o.name == object.namespace)
        .map(|o| &o.annotations);
    keys.iter().any(|key| {
        own.get(*key)
            .or_else(|| namespace.and_then(|n| n.get(*key)))
            .is_some_and(|v| port_list_covers(v, port))
    })
}

#[allow(clippy::too_many_arguments)]
fn linkerd_server_first(
    ctx: &mut Ctx<'_>,
    manifest: &Manifest,
    object: &Object,
    path: &str,
    position: Position,
    port: u16,
    app_protocol: Option<&str>,
) {
    let Some(hint) = ctx.hint(port, &Protocol::Tcp) else {
        return;
    };
    if hint.server_speaks_first != ServerSpeaksFirst::Yes
        || ctx.hints.linkerd_default(port) != LinkerdDefault::Detect
        || matches!(app_protocol, Some("linkerd.io/opaque" | "linkerd.io/tcp"))
        || linkerd_covered(manifest, object, port)
    {
        return;
    }
    let fix = hint
        .linkerd_fix
        .clone()
        .unwrap_or_else(|| format!("config.linkerd.io/opaque-ports: \"{port}\""));
    let on = if object.is_service() {
        "the Service"
    } else {
        "the pod template"
    };
    let message = format!(
        "port {port} ({}): the server speaks first, and Linkerd detects the protocol on {port} by default (not in its opaque or skip lists) and no config.linkerd.io annotation covers it: connections stall up to 10 s waiting for the client",
        hint.application
    );
    ctx.push(
        Rule::ServerFirstUnhandled,
        object,
        path.to_string(),
        position,
        format!("[linkerd] {message}"),
        Some(format!("annotate {on}: {fix} (the value replaces Linkerd's default opaque list: keep the defaults you need)")),
    );
}

fn mesh_service_port(
    ctx: &mut Ctx<'_>,
    manifest: &Manifest,
    object: &Object,
    sp: &ServicePort,
    port: u16,
) {
    let meshes = ctx.options.meshes.clone();
    let position = sp.port.as_ref().map_or(sp.position, |p| p.position);
    let hint = ctx.hint(port, &Protocol::Tcp).cloned();
    for mesh in meshes {
        match mesh {
            Mesh::Linkerd => linkerd_server_first(
                ctx,
                manifest,
                object,
                &format!("{}.port", sp.path),
                position,
                port,
                sp.app_protocol.as_ref().map(|a| a.value.as_str()),
            ),
            Mesh::Istio => {
                // ConvertProtocol: appProtocol when set, else the name; the
                // part before the first hyphen either way. A well-known port
                // is TCP only when neither names a protocol.
                let declared = match &sp.app_protocol {
                    Some(ap) => istio_protocol(&ap.value),
                    None => sp.name.as_ref().and_then(|n| istio_protocol(&n.value)),
                };
                let server_first = hint
                    .as_ref()
                    .filter(|h| h.server_speaks_first == ServerSpeaksFirst::Yes);
                if let Some(p) = declared {
                    if let Some(h) = server_first
                        && !istio_handles_server_first(h, p)
                    {
                        istio_declared_client_first(ctx, object, sp, position, port, h, p);
                    }
                    continue;
                }
                if ctx.hints.istio_default(port) == IstioDefault::Tcp {
                    continue;
                }
                let what = match (&sp.name, &sp.app_protocol) {
                    (_, Some(ap)) => {
                        format!("appProtocol {:?} is not a protocol Istio knows", ap.value)
                    }
                    (Some(n), None) => {
                        format!("name {:?} starts with no protocol Istio knows", n.value)
                    }
                    (None, None) => "the port has no name and no appProtocol".to_string(),
                };
                match hint
                    .as_ref()
                    .filter(|h| h.server_speaks_first == ServerSpeaksFirst::Yes)
                {
                    // A port with an appProtocol Istio does not parse is
                    // sniffed too, but the value is a deliberate choice
                    // (e.g. kubernetes.io/h2c for Linkerd and gateways):
                    // only a server-first port is reported then.
                    None if sp.app_protocol.is_some() => {}
                    Some(h) => {
                        let fix = h.istio_fix.clone().unwrap_or_else(|| {
                            format!(
                                "name: {} without appProtocol, or appProtocol: tcp",
                                h.istio_port_name
                            )
                        });
                        ctx.push(
                            Rule::ServerFirstUnhandled,
                            object,
                            format!("{}.port", sp.path),
                            position,
                            format!(
                                "[istio] port {port} ({}): the server speaks first, but {what} and {port} is not in Istio's well-known TCP ports, so Istio sniffs it and connections stall waiting for the client",
                                h.application
                            ),
                            Some(fix),
                        );
                    }
                    None => {
                        let (path, at) = match &sp.name {
                            Some(n) => (format!("{}.name", sp.path), n.position),
                            None => (sp.path.clone(), sp.position),
                        };
                        let fix = match (&hint, &sp.name) {
                            (Some(h), _) => format!("name: {} (or set appProtocol)", h.istio_port_name),
                            (None, Some(n)) => {
                                let tcp = fit(&format!("tcp-{}", n.value));
                                let http = fit(&format!("http-{}", n.value));
                                format!("name: {tcp} or {http} (a guess: use the protocol the port serves), or set appProtocol")
                            }
                            (None, None) => "name: tcp or http (the protocol the port serves), or set appProtocol".to_string(),
                        };
                        ctx.push(
                            Rule::IstioPortName,
                            object,
                            path,
                            at,
                            format!("[istio] port {port}: {what}, so Istio sniffs the protocol (a delay on the first bytes; server-first protocols stall)"),
                            Some(fix),
                        );
                    }
                }
            }
        }
    }
}

/// Whether Istio proxies a server-first port declared as the Istio
/// protocol `declared` without waiting for the client: `tcp`, or the
/// protocol of the hint's own Istio name or appProtocol reading when Istio
/// proxies it as TCP with a filter (mysql, mongo, redis). HTTP, gRPC,
/// HTTPS and TLS all wait for the client's first bytes.
fn istio_handles_server_first(hint: &Hint, declared: &str) -> bool {
    declared == "tcp"
        || (matches!(declared, "mysql" | "mongo" | "redis")
            && (istio_protocol(&hint.istio_port_name) == Some(declared)
                || hint.istio_reads_app_protocol_as.map(|r| r.as_str()) == Some(declared)))
}

/// `server-first-unhandled` [istio] for a server-first port declared as a
/// protocol whose client speaks first.
fn istio_declared_client_first(
    ctx: &mut Ctx<'_>,
    object: &Object,
    sp: &ServicePort,
    position: Position,
    port: u16,
    hint: &Hint,
    declared: &str,
) {
    let source = match (&sp.app_protocol, &sp.name) {
        (Some(ap), _) => format!("appProtocol {:?}", ap.value),
        (None, Some(n)) => format!("name {:?}", n.value),
        (None, None) => return,
    };
    let parsed = family(declared).unwrap_or(declared);
    let fix = hint.istio_fix.clone().unwrap_or_else(|| {
        format!(
            "name: {} without appProtocol, or appProtocol: tcp",
            hint.istio_port_name
        )
    });
    ctx.push(
        Rule::ServerFirstUnhandled,
        object,
        format!("{}.port", sp.path),
        position,
        format!(
            "[istio] port {port} ({}): the server speaks first, but {source} declares {declared}, so Istio parses it as {parsed} and waits for the client's first bytes: the server's greeting breaks it",
            hint.application
        ),
        Some(fix),
    );
}

/// A name cut to a valid port name of 15 characters or fewer.
fn fit(name: &str) -> String {
    derive_port_name(name).unwrap_or_else(|| name.chars().take(15).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    fn index() -> &'static Index {
        static INDEX: OnceLock<Index> = OnceLock::new();
        INDEX.get_or_init(|| Index::new(portolan_registry::embedded::registry()))
    }

    fn check(yaml: &str, meshes: &[Mesh]) -> Vec<Finding> {
        let options = Options {
            meshes: meshes.to_vec(),
        };
        lint(
            &crate::yaml::parse(yaml),
            index(),
            Hints::embedded(),
            &options,
        )
    }

    /// (rule id, line, column) of each finding.
    fn ids(findings: &[Finding]) -> Vec<(&'static str, u32, u32)> {
        findings
            .iter()
            .map(|f| (f.rule.id(), f.position.line, f.position.column))
            .collect()
    }

    fn pod(ports: &str) -> String {
        format!(
            "kind: Pod\nmetadata:\n  name: p\n  labels: {{app: a}}\nspec:\n  containers:\n  - name: c\n    ports:\n{ports}"
        )
    }

    fn service(ports: &str) -> String {
        format!(
            "kind: Service\nmetadata:\n  name: s\nspec:\n  selector: {{app: a}}\n  ports:\n{ports}"
        )
    }

    #[test]
    fn container_port_names_follow_rfc_6335_in_lowercase() {
        let f = check(
            &pod("    - name: gameTCP\n      containerPort: 7777\n"),
            &[],
        );
        assert_eq!(ids(&f), vec![("container-port-name", 9, 13)]);
        assert!(
            f[0].message.contains("uppercase letter 'T'"),
            "{}",
            f[0].message
        );
        assert!(
            f[0].fix
                .as_deref()
                .is_some_and(|x| x.starts_with("name: gametcp "))
        );
        let f = check(
            &pod("    - name: \"6379\"\n      containerPort: 6379\n"),
            &[],
        );
        assert!(f[0].message.contains("digits only"));
        assert!(
            f[0].fix
                .as_deref()
                .is_some_and(|x| x.starts_with("name: redis ")),
            "{:?}",
            f[0].fix
        );
        let f = check(
            &pod("    - name: a-very-long-port-name\n      containerPort: 9999\n"),
            &[],
        );
        assert!(f[0].message.contains("too long: 21 characters"));
        assert!(
            f[0].fix
                .as_deref()
                .is_some_and(|x| x.starts_with("name: a-very-long ")),
            "{:?}",
            f[0].fix
        );
        assert_eq!(
            check(
                &pod("    - name: metrics\n      containerPort: 9090\n"),
                &[]
            ),
            vec![]
        );
    }

    #[test]
    fn service_port_names_are_dns_labels_and_named_when_several() {
        let f = check(
            &service("  - name: api_port\n    port: 8592\n  - port: 9000\n"),
            &[],
        );
        assert_eq!(
            ids(&f),
            vec![
                ("service-port-name", 7, 11),
                ("service-port-name-missing", 9, 5)
            ]
        );
        assert_eq!(f[0].fix.as_deref(), Some("name: api-port"));
        assert!(f[1].message.contains("Service/s has 2 ports"));
        // One unnamed port is fine.
        assert_eq!(check(&service("  - port: 9000\n"), &[]), vec![]);
    }

    #[test]
    fn long_and_numeric_service_port_names_are_infos() {
        let f = check(
            &service(
                "  - name: jaeger-collector-http\n    port: 14268\n  - name: \"3000\"\n    port: 3000\n",
            ),
            &[],
        );
        assert_eq!(
            ids(&f),
            vec![
                ("service-port-name-long", 7, 11),
                ("service-port-name-numeric", 9, 11)
            ]
        );
        assert_eq!(f[0].severity, Severity::Info);
        assert_eq!(
            f[0].fix.as_deref(),
            Some("name: jaeger-http (on the Service and the container port)")
        );
        assert_eq!(f[1].fix.as_deref(), Some("name: port-3000"));
    }

    #[test]
    fn named_target_ports_must_exist_in_the_selected_pods() {
        let pods = pod("    - name: web\n      containerPort: 8080\n");
        let svc = service("  - port: 80\n    targetPort: http\n");
        let f = check(&format!("{pods}---\n{svc}"), &[]);
        assert_eq!(ids(&f), vec![("target-port-unknown", 19, 17)]);
        assert!(
            f[0].message.contains("Pod/p (ports: web)"),
            "{}",
            f[0].message
        );
        let ok = service("  - port: 80\n    targetPort: web\n");
        assert_eq!(check(&format!("{pods}---\n{ok}"), &[]), vec![]);
        // A workload in another namespace, or none selected: not judged.
        let other = svc.replace("name: s\n", "name: s\n  namespace: other\n");
        assert_eq!(check(&format!("{pods}---\n{other}"), &[]), vec![]);
        assert_eq!(check(&svc, &[]), vec![]);
    }

    #[test]
    fn target_ports_are_numbers_or_valid_names_whatever_the_input_holds() {
        // No workload in the input: the syntax is still Kubernetes' to reject.
        let f = check(&service("  - port: 80\n    targetPort: \"8080\"\n"), &[]);
        assert_eq!(ids(&f), vec![("target-port-name", 8, 17)]);
        assert!(f[0].message.contains("quoted"), "{}", f[0].message);
        assert_eq!(f[0].fix.as_deref(), Some("targetPort: 8080 (unquoted)"));
        let f = check(&service("  - port: 80\n    targetPort: 70000\n"), &[]);
        assert_eq!(ids(&f), vec![("target-port-name", 8, 17)]);
        assert!(f[0].message.contains("70000"), "{}", f[0].message);
        let f = check(&service("  - port: 80\n    targetPort: web_port\n"), &[]);
        assert_eq!(ids(&f), vec![("target-port-name", 8, 17)]);
        assert!(
            f[0].fix
                .as_deref()
                .is_some_and(|fix| fix.contains("web-port")),
            "{:?}",
            f[0].fix
        );
        // Fine: a number, a valid name (judged against pods only if present).
        assert_eq!(
            check(&service("  - port: 80\n    targetPort: 8080\n"), &[]),
            vec![]
        );
        assert_eq!(
            check(&service("  - port: 80\n    targetPort: web\n"), &[]),
            vec![]
        );
    }

    #[test]
    fn an_unknown_target_port_lists_a_bounded_number_of_names() {
        let ports: String = (0..20)
            .map(|i| format!("    - name: p{i}\n      containerPort: {}\n", 8000 + i))
            .collect();
        let svc = service("  - port: 80\n    targetPort: http\n");
        let f = check(&format!("{}---\n{svc}", pod(&ports)), &[]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].message
                .ends_with("Pod/p (ports: p0, p1, p2, p3, p4, p5, p6, p7 and 12 more)"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn app_protocols_are_iana_names_or_prefixed() {
        let sp = |v: &str| {
            service(&format!(
                "  - name: web\n    port: 8080\n    appProtocol: {v}\n"
            ))
        };
        let f = check(&sp("grpc"), &[]);
        assert_eq!(ids(&f), vec![("app-protocol", 9, 18)]);
        assert_eq!(f[0].severity, Severity::Warning);
        let f = check(&sp("kubernetes.io/grpc"), &[]);
        assert_eq!(f[0].severity, Severity::Error);
        let f = check(&sp("HTTP"), &[]);
        assert_eq!(f[0].fix.as_deref(), Some("appProtocol: http"));
        for ok in [
            "http",
            "kubernetes.io/h2c",
            "example.com/custom",
            "linkerd.io/opaque",
        ] {
            assert_eq!(check(&sp(ok), &[]), vec![], "{ok}");
        }
    }

    #[test]
    fn a_name_contradicting_app_protocol_is_a_conflict() {
        let f = check(
            &service("  - appProtocol: TCP\n    name: http\n    port: 5556\n"),
            &[],
        );
        assert_eq!(
            ids(&f),
            vec![("app-protocol", 7, 18), ("name-protocol-conflict", 7, 18)]
        );
        assert!(
            f[1].message
                .contains("Istio reads appProtocol before the name")
        );
        assert!(
            check(
                &service("  - appProtocol: http\n    name: http-web\n    port: 80\n"),
                &[]
            )
            .is_empty()
        );
    }

    #[test]
    fn names_are_judged_on_known_ports_only() {
        let f = check(&service("  - name: http\n    port: 5432\n"), &[]);
        assert_eq!(ids(&f), vec![("name-protocol-mismatch", 7, 11)]);
        assert!(f[0].message.contains("PostgreSQL"), "{}", f[0].message);
        // A system port with an IANA registration.
        let f = check(&service("  - name: http\n    port: 22\n"), &[]);
        assert_eq!(ids(&f), vec![("name-protocol-mismatch", 7, 11)]);
        // A user port without a hint says nothing (9080 is IANA's glrpc).
        assert!(check(&service("  - name: grpc\n    port: 9080\n"), &[]).is_empty());
        assert!(check(&service("  - name: http\n    port: 80\n"), &[]).is_empty());
    }

    #[test]
    fn names_of_the_ports_own_protocol_family_are_not_mismatches() {
        // Each name is registered with IANA on another port, but means the
        // protocol that runs here.
        for (name, port) in [
            ("sftp", 22),
            ("git", 22),
            ("scp", 22),
            ("ssh", 22),
            ("smtp", 587),
            ("submissions", 587),
            ("imap", 993),
            ("ldap", 636),
            ("pop3s", 110),
            ("tls-imaps", 993),
            ("tcp-anything", 22),
            ("metrics", 22),
        ] {
            for yaml in [
                service(&format!("  - name: {name}\n    port: {port}\n")),
                pod(&format!(
                    "    - name: {name}\n      containerPort: {port}\n"
                )),
            ] {
                assert_eq!(check(&yaml, &[]), vec![], "{name} on {port}");
            }
        }
    }

    #[test]
    fn names_of_another_protocol_are_mismatches() {
        for (name, port, says) in [
            ("http", 5432, "the http protocol"),
            ("grpc", 26257, "the grpc protocol"),
            ("ftp", 22, "FTP (IANA's \"ftp\", registered on port 21)"),
            (
                "smtp",
                4222,
                "SMTP (IANA's \"smtp\", registered on port 25)",
            ),
            ("mysql", 5432, "the mysql protocol"),
        ] {
            let f = check(
                &service(&format!("  - name: {name}\n    port: {port}\n")),
                &[],
            );
            assert_eq!(
                ids(&f),
                vec![("name-protocol-mismatch", 7, 11)],
                "{name} on {port}"
            );
            assert!(f[0].message.contains(says), "{}", f[0].message);
        }
    }

    #[test]
    fn istio_needs_a_protocol_in_the_name() {
        let f = check(&service("  - name: web\n    port: 8080\n"), &[Mesh::Istio]);
        assert_eq!(ids(&f), vec![("istio-port-name", 7, 11)]);
        assert!(
            f[0].fix
                .as_deref()
                .is_some_and(|x| x.contains("tcp-web or http-web"))
        );
        for ok in [
            "  - name: http-web\n    port: 8080\n",
            "  - name: web\n    port: 8080\n    appProtocol: http\n",
            "  - name: db\n    port: 3306\n",
            "  - name: dns\n    port: 53\n    protocol: UDP\n",
            // Sniffed, but a deliberate value: not this rule's business.
            "  - name: grpc\n    port: 50051\n    appProtocol: kubernetes.io/h2c\n",
        ] {
            assert_eq!(check(&service(ok), &[Mesh::Istio]), vec![], "{ok}");
        }
        // Without --mesh, nothing.
        assert!(check(&service("  - name: web\n    port: 8080\n"), &[]).is_empty());
    }

    #[test]
    fn server_first_ports_need_the_mesh_told() {
        let svc = service("  - name: client\n    port: 4222\n");
        let f = check(&svc, &[Mesh::Istio, Mesh::Linkerd]);
        assert_eq!(
            ids(&f),
            vec![
                ("server-first-unhandled", 8, 11),
                ("server-first-unhandled", 8, 11)
            ]
        );
        assert!(f[0].message.starts_with("[linkerd]") || f[1].message.starts_with("[linkerd]"));
        assert_eq!(
            check(
                &service("  - name: tcp-nats\n    port: 4222\n"),
                &[Mesh::Istio]
            ),
            vec![]
        );
        let annotated = svc.replace(
            "name: s\n",
            "name: s\n  annotations:\n    config.linkerd.io/opaque-ports: \"25,4000-4300\"\n",
        );
        assert_eq!(check(&annotated, &[Mesh::Linkerd]), vec![]);
        let p = pod("    - name: client\n      containerPort: 4222\n");
        let f = check(&p, &[Mesh::Linkerd]);
        assert_eq!(ids(&f), vec![("server-first-unhandled", 10, 22)]);
        let annotated = p.replace(
            "  name: p\n",
            "  name: p\n  annotations: {config.linkerd.io/skip-inbound-ports: \"4222\"}\n",
        );
        assert_eq!(check(&annotated, &[Mesh::Linkerd]), vec![]);
        // MySQL is on both meshes' lists.
        assert_eq!(
            check(
                &service("  - name: db\n    port: 3306\n"),
                &[Mesh::Istio, Mesh::Linkerd]
            ),
            vec![]
        );
    }

    fn server_first(findings: &[Finding]) -> Vec<Finding> {
        findings
            .iter()
            .filter(|f| f.rule == Rule::ServerFirstUnhandled)
            .cloned()
            .collect()
    }

    #[test]
    fn istio_server_first_ports_declared_as_http_still_stall() {
        for ports in [
            "  - name: http-client\n    port: 4222\n",
            "  - name: tcp-nats\n    port: 4222\n    appProtocol: http\n",
            "  - name: grpc\n    port: 4222\n",
            "  - name: tls-nats\n    port: 4222\n",
            // A well-known port is TCP only when nothing names a protocol.
            "  - name: http-smtp\n    port: 25\n",
        ] {
            let f = server_first(&check(&service(ports), &[Mesh::Istio]));
            assert_eq!(ids(&f), vec![("server-first-unhandled", 8, 11)], "{ports}");
            assert!(
                f[0].message.contains("Istio parses it as")
                    && f[0].message.contains("the server's greeting breaks it"),
                "{}",
                f[0].message
            );
        }
        let f = server_first(&check(
            &service("  - name: x\n    port: 4222\n    appProtocol: http\n"),
            &[Mesh::Istio],
        ));
        assert!(
            f[0].message
                .contains("appProtocol \"http\" declares http, so Istio parses it as HTTP"),
            "{}",
            f[0].message
        );
        for ok in [
            "  - name: tcp-nats\n    port: 4222\n",
            "  - name: client\n    port: 4222\n    appProtocol: tcp\n",
            "  - name: mysql\n    port: 3306\n",
            "  - name: mysql-a\n    port: 3306\n",
            "  - name: tcp\n    port: 25\n",
            "  - name: smtp\n    port: 25\n",
            // Client-first: any declared protocol is the owner's choice.
            "  - name: http-pg\n    port: 5432\n",
        ] {
            assert!(
                !check(&service(ok), &[Mesh::Istio])
                    .iter()
                    .any(|f| f.rule == Rule::ServerFirstUnhandled),
                "{ok}"
            );
        }
    }

    #[test]
    fn linkerd_reads_only_the_annotations_it_documents() {
        let svc = service("  - name: client\n    port: 4222\n");
        let on_service = |key: &str| {
            svc.replace(
                "name: s\n",
                &format!("name: s\n  annotations:\n    config.linkerd.io/{key}: \"4222\"\n"),
            )
        };
        let stalls = |yaml: &str| !server_first(&check(yaml, &[Mesh::Linkerd])).is_empty();
        assert!(stalls(&svc));
        assert!(!stalls(&on_service("opaque-ports")));
        for key in ["skip-inbound-ports", "skip-outbound-ports"] {
            assert!(stalls(&on_service(key)), "{key} on a Service");
        }
        let deployment = |meta: &str, template_meta: &str| {
            format!(
                "kind: Deployment\nmetadata:\n  name: d\n{meta}spec:\n  template:\n    metadata:\n      labels: {{app: a}}\n{template_meta}    spec:\n      containers:\n      - name: c\n        ports:\n        - {{name: client, containerPort: 4222}}\n"
            )
        };
        assert!(stalls(&deployment("", "")));
        for key in ["opaque-ports", "skip-inbound-ports"] {
            let a = format!("      annotations: {{config.linkerd.io/{key}: \"4222\"}}\n");
            assert!(!stalls(&deployment("", &a)), "{key} on the pod template");
            // The Deployment's own metadata is not read by Linkerd.
            let own = format!("  annotations: {{config.linkerd.io/{key}: \"4222\"}}\n");
            assert!(stalls(&deployment(&own, "")), "{key} on the Deployment");
        }
        // skip-outbound-ports acts on the pod's own outgoing connections.
        assert!(stalls(&deployment(
            "",
            "      annotations: {config.linkerd.io/skip-outbound-ports: \"4222\"}\n"
        )));
        // The Namespace: copied to pods and Services without their own.
        let ns = |v: &str| {
            format!(
                "kind: Namespace\nmetadata:\n  name: n\n  annotations: {{config.linkerd.io/opaque-ports: \"{v}\"}}\n---\n"
            )
        };
        let in_n = |yaml: &str| {
            yaml.replace("  name: d\n", "  name: d\n  namespace: n\n")
                .replace("  name: s\n", "  name: s\n  namespace: n\n")
        };
        assert!(!stalls(&format!(
            "{}{}",
            ns("4222"),
            in_n(&deployment("", ""))
        )));
        assert!(!stalls(&format!("{}{}", ns("4222"), in_n(&svc))));
        // The object's own value replaces the Namespace's.
        let own = "      annotations: {config.linkerd.io/opaque-ports: \"25\"}\n";
        assert!(stalls(&format!(
            "{}{}",
            ns("4222"),
            in_n(&deployment("", own))
        )));
    }

    #[test]
    fn a_transport_in_app_protocol_is_fixed_by_removing_it() {
        let f = check(
            &service("  - appProtocol: TCP\n    name: http\n    port: 5556\n"),
            &[],
        );
        assert_eq!(
            f[0].fix.as_deref(),
            Some(
                "remove appProtocol (the transport goes in protocol: TCP), or appProtocol: http, as the port name says"
            )
        );
        assert!(
            f[1].fix
                .as_deref()
                .is_some_and(|x| x.starts_with("appProtocol: http (or remove appProtocol)"))
        );
        let f = check(
            &service("  - appProtocol: Udp\n    name: dns\n    port: 5353\n"),
            &[],
        );
        assert_eq!(
            f[0].fix.as_deref(),
            Some(
                "remove appProtocol (the transport goes in protocol: UDP), or set it to the application protocol (an IANA service name)"
            )
        );
    }

    #[test]
    fn a_syntax_error_in_one_document_is_a_finding() {
        let text = format!(
            "{}---\nkind: Service\nmetadata: [broken\n---\n{}",
            pod("    - name: Bad\n      containerPort: 1\n"),
            service("  - name: x_y\n    port: 1\n")
        );
        let f = check(&text, &[]);
        let rules: Vec<&str> = f.iter().map(|f| f.rule.id()).collect();
        assert_eq!(
            rules,
            vec!["container-port-name", "yaml-syntax", "service-port-name"]
        );
        assert_eq!(f[1].position.line, 14);
    }

    #[test]
    fn port_lists_and_derived_names() {
        assert!(port_list_covers("25, 4222", 4222));
        assert!(port_list_covers("4000-4300", 4222));
        assert!(!port_list_covers("4000-4100,x", 4222));
        assert_eq!(derive_port_name("api_port").as_deref(), Some("api-port"));
        assert_eq!(
            derive_port_name("state-snapshot-transfer").as_deref(),
            Some("state-snapshot")
        );
        assert_eq!(derive_port_name("Game__TCP-").as_deref(), Some("game-tcp"));
        assert_eq!(derive_port_name("6379"), None);
        assert_eq!(
            derive_port_name("jaeger-collector-http").as_deref(),
            Some("jaeger-http")
        );
        assert_eq!(
            derive_port_name("abcdefghij-klmnopq-rs").as_deref(),
            Some("abcdefghij-rs")
        );
    }
}
