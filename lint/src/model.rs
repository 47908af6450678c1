//! The port specs the rules read, independent of YAML: the YAML reader
//! ([`crate::yaml`]) builds them from manifests, and a server can build
//! them from protobuf. Plain data: public fields, no invariants beyond
//! what each field says.
//!
//! Values are kept as written where checking them is the point: a port
//! written as a string stays a [`PortValue::Text`], a name keeps its case.

use std::collections::BTreeMap;

/// A place in the input, 1-based (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1, in characters.
    pub column: u32,
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<T> {
    /// The value as written.
    pub value: T,
    /// Where the value starts.
    pub position: Position,
}

/// A port (`containerPort`, `port`, `targetPort`) as written: Kubernetes'
/// IntOrString, where a quoted number is a string (a port *name*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortValue {
    /// An unquoted integer (possibly out of range).
    Number(i64),
    /// Anything else: a name, or a number written in quotes.
    Text(String),
}

impl PortValue {
    /// The port number, when the value is an integer from 1 to 65535.
    pub fn number(&self) -> Option<u16> {
        match self {
            Self::Number(n) => u16::try_from(*n).ok().filter(|p| *p != 0),
            Self::Text(_) => None,
        }
    }
}

/// All documents of one input.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    /// The objects carrying ports (and Namespaces, for their annotations),
    /// in input order.
    pub objects: Vec<Object>,
    /// Documents that could not be read; the other documents are still in
    /// `objects`.
    pub errors: Vec<DocumentError>,
    /// How many documents were read (whatever their kind).
    pub documents: usize,
}

/// A document that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// Where the parser gave up.
    pub position: Position,
    /// The parser's message.
    pub message: String,
}

/// One Kubernetes object: a workload (its pod template's containers), a
/// Service (its ports), or a Namespace (its annotations only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object {
    /// `kind`, as written.
    pub kind: String,
    /// `metadata.name`.
    pub name: Option<String>,
    /// `metadata.namespace`; `None` when not written.
    pub namespace: Option<String>,
    /// Where the object starts.
    pub position: Position,
    /// The path of the object in its document: empty, or `items[N].` in a
    /// `kind: List`.
    pub path: String,
    /// The object's `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// The pod template's `metadata.annotations` (a Pod's own for a Pod).
    pub template_annotations: BTreeMap<String, String>,
    /// The pod template's labels (a Pod's own for a Pod): what a Service's
    /// selector matches.
    pub template_labels: BTreeMap<String, String>,
    /// A Service's `spec.selector`; `None` for other kinds or a Service
    /// without one.
    pub selector: Option<BTreeMap<String, String>>,
    /// The pod template's containers (init containers included).
    pub containers: Vec<ContainerPorts>,
    /// A Service's `spec.ports`.
    pub service_ports: Vec<ServicePort>,
}

impl Object {
    /// `Kind/name` for messages.
    pub fn display_name(&self) -> String {
        format!(
            "{}/{}",
            self.kind,
            self.name.as_deref().unwrap_or("<unnamed>")
        )
    }

    /// Whether the object is a Service.
    pub fn is_service(&self) -> bool {
        self.kind == "Service"
    }
}

/// One container's ports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerPorts {
    /// The container's name.
    pub name: Option<String>,
    /// An init container (`initContainers`), e.g. a native sidecar.
    pub init: bool,
    /// Its `ports`.
    pub ports: Vec<ContainerPort>,
}

/// One entry of a container's `ports`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerPort {
    /// The field path of the entry in its object, e.g.
    /// `spec.template.spec.containers[0].ports[1]`.
    pub path: String,
    /// Where the entry starts.
    pub position: Position,
    /// `name`.
    pub name: Option<Field<String>>,
    /// `containerPort`.
    pub container_port: Option<Field<PortValue>>,
    /// `protocol` (TCP when absent).
    pub protocol: Option<Field<String>>,
}

/// One entry of a Service's `spec.ports`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServicePort {
    /// The field path of the entry in its object, e.g. `spec.ports[0]`.
    pub path: String,
    /// Where the entry starts.
    pub position: Position,
    /// `name`.
    pub name: Option<Field<String>>,
    /// `port`.
    pub port: Option<Field<PortValue>>,
    /// `targetPort`.
    pub target_port: Option<Field<PortValue>>,
    /// `protocol` (TCP when absent).
    pub protocol: Option<Field<String>>,
    /// `appProtocol`.
    pub app_protocol: Option<Field<String>>,
}

/// Whether a `protocol:` value is TCP (the default when absent).
pub fn is_tcp(protocol: Option<&Field<String>>) -> bool {
    protocol.is_none_or(|p| p.value.eq_ignore_ascii_case("tcp"))
}
