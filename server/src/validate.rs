//! Request validation: the only place that decides whether a request is
//! acceptable, turning wire messages into domain queries or a
//! [`ServiceError::InvalidArgument`] naming the offending field.
//!
//! Limits (from the contract in `registry.proto`):
//! * ports are 0-65535; `port_min` may not exceed `port_max`;
//! * names are 1-255 bytes;
//! * search queries are 1-256 bytes;
//! * BatchLookup ids are at most 128 bytes, and each item sets exactly one
//!   of port or name;
//! * enum values must be known; `PROTOCOL_OTHER` is never valid in a
//!   request, `RECORD_STATE_UNSPECIFIED` is not a state to filter on;
//! * a Search `limit` is at most [`MAX_SEARCH_LIMIT`] (INVALID_ARGUMENT
//!   above it, never clamped);
//! * repeated `states` filter values are deduplicated (any number of
//!   repeats is accepted within the request size limit), so a filter holds
//!   at most the four states and checking one record against it costs at
//!   most four comparisons;
//! * a LintPorts request holds at most [`MAX_LINT_OBJECTS`] objects and
//!   [`MAX_LINT_PORTS`] ports, strings of at most [`MAX_LINT_TEXT_BYTES`]
//!   (annotation values [`MAX_LINT_ANNOTATION_BYTES`]), and names only
//!   known meshes.

use portolan::convert;
use portolan::pb;
use portolan::pb::batch_lookup_request::Query;
use portolan_registry::{ContentId, Filter, Protocol, RecordState, SearchQuery};

use crate::status::ServiceError;

/// Longest accepted service name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest accepted search query, in bytes.
pub const MAX_QUERY_BYTES: usize = 256;
/// Longest accepted BatchLookup id, in bytes.
pub const MAX_BATCH_ID_BYTES: usize = 128;
/// Search results when the request's limit is 0.
pub const DEFAULT_SEARCH_LIMIT: usize = SearchQuery::DEFAULT_LIMIT;
/// Largest Search `limit` accepted (INVALID_ARGUMENT above it). A search
/// streams its hits as it finds them, so the limit no longer decides what a
/// call holds; it bounds the work one call asks for. 10,000 is two thirds
/// of the IANA registry (14,512 records): a query matching more than that
/// is a listing, which is what ListRecords is for.
pub const MAX_SEARCH_LIMIT: usize = 10_000;
/// Most objects one LintPorts request may carry. The request's bytes are
/// bounded first by the server's message limit
/// ([`crate::MAX_REQUEST_BYTES`], 64 KiB, OUT_OF_RANGE above it), which
/// holds a few hundred typical objects: the request built from argo-cd's
/// install.yaml (59 documents, 24 ports) is 3.5 KiB.
pub const MAX_LINT_OBJECTS: usize = 1_000;
/// Most ports (container and Service ports together) one LintPorts request
/// may carry: the work and the findings of one call are linear in them.
pub const MAX_LINT_PORTS: usize = 1_024;
/// Longest string of a LintPorts request (kind, names, paths, values,
/// label keys and values), in bytes: Kubernetes' longest name (a DNS
/// subdomain). Findings repeat these strings, so this bounds each one.
pub const MAX_LINT_TEXT_BYTES: usize = 253;
/// Longest annotation value of a LintPorts request, in bytes (Linkerd's
/// port lists; a client need send no other annotation).
pub const MAX_LINT_ANNOTATION_BYTES: usize = 1_024;

/// One point lookup, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Every record covering a port.
    Port {
        /// The port.
        port: u16,
        /// `None` = any protocol.
        protocol: Option<Protocol>,
    },
    /// Every record with a name (case-insensitive).
    Name {
        /// The name as asked.
        name: String,
        /// `None` = any protocol.
        protocol: Option<Protocol>,
    },
}

/// How a Watch stream reports changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// Full records.
    Full,
    /// Keys only.
    Invalidate,
}

/// A validated Watch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchParams {
    /// The state the caller holds (0 = nothing); the stream resumes by it.
    pub known_state: ContentId,
    /// What the stream carries.
    pub mode: WatchMode,
}

/// Validates a LookupPort request.
pub fn lookup_port(request: &pb::LookupPortRequest) -> Result<Lookup, ServiceError> {
    Ok(Lookup::Port {
        port: port("port", request.port)?,
        protocol: protocol(request.protocol)?,
    })
}

/// Validates a DescribePort request: the port and protocol of a port
/// lookup, checked as LookupPort's.
pub fn describe_port(
    request: &pb::DescribePortRequest,
) -> Result<(u16, Option<Protocol>), ServiceError> {
    Ok((port("port", request.port)?, protocol(request.protocol)?))
}

/// Validates a LintPorts request: within its bounds, known meshes (each
/// once), every port value well formed. The manifest the rules read and
/// the options naming the meshes.
pub fn lint_ports(
    request: &pb::LintPortsRequest,
) -> Result<
    (
        portolan_lint::model::Manifest,
        portolan_lint::rules::Options,
    ),
    ServiceError,
> {
    if request.objects.len() > MAX_LINT_OBJECTS {
        return Err(ServiceError::invalid(
            "objects",
            format!(
                "holds {} objects, more than the maximum of {MAX_LINT_OBJECTS}",
                request.objects.len()
            ),
        ));
    }
    let ports: usize = request
        .objects
        .iter()
        .map(|o| o.service_ports.len() + o.containers.iter().map(|c| c.ports.len()).sum::<usize>())
        .sum();
    if ports > MAX_LINT_PORTS {
        return Err(ServiceError::invalid(
            "objects",
            format!("hold {ports} ports, more than the maximum of {MAX_LINT_PORTS}"),
        ));
    }
    for object in &request.objects {
        lint_object_texts(object)?;
    }
    let mut meshes = Vec::new();
    for &value in &request.meshes {
        let mesh =
            convert::mesh_from_pb(value).map_err(|e| ServiceError::invalid(e.field, e.reason))?;
        if !meshes.contains(&mesh) {
            meshes.push(mesh);
        }
    }
    let manifest = convert::manifest_from_pb(&request.objects)
        .map_err(|e| ServiceError::invalid(e.field, e.reason))?;
    Ok((manifest, portolan_lint::rules::Options { meshes }))
}

/// Checks one string of a LintPorts request against its bound.
fn lint_text(field: &'static str, text: &str, max: usize) -> Result<(), ServiceError> {
    if text.len() > max {
        return Err(ServiceError::invalid(
            field,
            format!(
                "a value is {} bytes, more than the maximum of {max}",
                text.len()
            ),
        ));
    }
    Ok(())
}

fn text_of(field: &Option<pb::TextField>) -> &str {
    field.as_ref().map_or("", |f| f.value.as_str())
}

fn port_text_of(field: &Option<pb::PortField>) -> &str {
    match field.as_ref().and_then(|f| f.value.as_ref()) {
        Some(pb::port_field::Value::Text(t)) => t.as_str(),
        _ => "",
    }
}

/// Every string of one LintPorts object within its bound.
fn lint_object_texts(object: &pb::PortObject) -> Result<(), ServiceError> {
    const MAX: usize = MAX_LINT_TEXT_BYTES;
    lint_text("objects.kind", &object.kind, MAX)?;
    lint_text("objects.name", &object.name, MAX)?;
    lint_text("objects.namespace", &object.namespace, MAX)?;
    lint_text("objects.path", &object.path, MAX)?;
    let labels = object
        .template_labels
        .iter()
        .chain(object.selector.iter().flat_map(|s| &s.match_labels));
    for (key, value) in labels {
        lint_text("objects.labels", key, MAX)?;
        lint_text("objects.labels", value, MAX)?;
    }
    for (key, value) in object
        .annotations
        .iter()
        .chain(&object.template_annotations)
    {
        lint_text("objects.annotations", key, MAX)?;
        lint_text("objects.annotations", value, MAX_LINT_ANNOTATION_BYTES)?;
    }
    for container in &object.containers {
        lint_text("objects.containers.name", &container.name, MAX)?;
        for p in &container.ports {
            lint_text("objects.containers.ports.path", &p.path, MAX)?;
            lint_text("objects.containers.ports.name", text_of(&p.name), MAX)?;
            lint_text(
                "objects.containers.ports.protocol",
                text_of(&p.protocol),
                MAX,
            )?;
            lint_text(
                "objects.containers.ports.container_port",
                port_text_of(&p.container_port),
                MAX,
            )?;
        }
    }
    for p in &object.service_ports {
        lint_text("objects.service_ports.path", &p.path, MAX)?;
        lint_text("objects.service_ports.name", text_of(&p.name), MAX)?;
        lint_text("objects.service_ports.protocol", text_of(&p.protocol), MAX)?;
        lint_text(
            "objects.service_ports.app_protocol",
            text_of(&p.app_protocol),
            MAX,
        )?;
        lint_text("objects.service_ports.port", port_text_of(&p.port), MAX)?;
        lint_text(
            "objects.service_ports.target_port",
            port_text_of(&p.target_port),
            MAX,
        )?;
    }
    Ok(())
}

/// Validates a LookupName request.
pub fn lookup_name(request: &pb::LookupNameRequest) -> Result<Lookup, ServiceError> {
    Ok(Lookup::Name {
        name: name(&request.name)?,
        protocol: protocol(request.protocol)?,
    })
}

/// Validates one BatchLookup item (the id is checked too).
pub fn batch_item(request: &pb::BatchLookupRequest) -> Result<Lookup, ServiceError> {
    if request.id.len() > MAX_BATCH_ID_BYTES {
        return Err(ServiceError::invalid(
            "id",
            format!(
                "is {} bytes, more than the maximum of {MAX_BATCH_ID_BYTES}",
                request.id.len()
            ),
        ));
    }
    let protocol = protocol(request.protocol)?;
    match &request.query {
        Some(Query::Port(p)) => Ok(Lookup::Port {
            port: port("port", *p)?,
            protocol,
        }),
        Some(Query::Name(n)) => Ok(Lookup::Name {
            name: name(n)?,
            protocol,
        }),
        None => Err(ServiceError::invalid(
            "query",
            "set exactly one of port or name",
        )),
    }
}

/// Validates a Search request.
pub fn search(request: &pb::SearchRequest) -> Result<SearchQuery, ServiceError> {
    let text = request.query.trim();
    if text.is_empty() {
        return Err(ServiceError::invalid("query", "must not be empty"));
    }
    if request.query.len() > MAX_QUERY_BYTES {
        return Err(ServiceError::invalid(
            "query",
            format!(
                "is {} bytes, more than the maximum of {MAX_QUERY_BYTES}",
                request.query.len()
            ),
        ));
    }
    let filter = filter(
        request.protocol,
        request.port_min,
        request.port_max,
        &request.states,
        &request.layers,
    )?;
    let limit = match request.limit {
        0 => DEFAULT_SEARCH_LIMIT,
        n if n as usize > MAX_SEARCH_LIMIT => {
            return Err(ServiceError::invalid(
                "limit",
                format!("{n} is more than the maximum of {MAX_SEARCH_LIMIT}"),
            ));
        }
        n => n as usize,
    };
    Ok(SearchQuery {
        text: text.to_string(),
        filter,
        limit,
    })
}

/// Validates a ListRecords request.
pub fn list_records(request: &pb::ListRecordsRequest) -> Result<Filter, ServiceError> {
    filter(
        request.protocol,
        request.port_min,
        request.port_max,
        &request.states,
        &request.layers,
    )
}

/// Validates a Watch request.
pub fn watch(request: &pb::WatchRequest) -> Result<WatchParams, ServiceError> {
    let mode = match pb::WatchMode::try_from(request.mode) {
        Ok(pb::WatchMode::Unspecified | pb::WatchMode::Full) => WatchMode::Full,
        Ok(pb::WatchMode::Invalidate) => WatchMode::Invalidate,
        Err(_) => {
            return Err(ServiceError::invalid(
                "mode",
                format!("unknown watch mode value {}", request.mode),
            ));
        }
    };
    Ok(WatchParams {
        known_state: ContentId(request.known_state_id),
        mode,
    })
}

fn port(field: &'static str, value: u32) -> Result<u16, ServiceError> {
    u16::try_from(value)
        .map_err(|_| ServiceError::invalid(field, format!("{value} is out of range (0-65535)")))
}

fn name(value: &str) -> Result<String, ServiceError> {
    if value.is_empty() {
        return Err(ServiceError::invalid("name", "must not be empty"));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(ServiceError::invalid(
            "name",
            format!(
                "is {} bytes, more than the maximum of {MAX_NAME_BYTES}",
                value.len()
            ),
        ));
    }
    Ok(value.to_string())
}

/// A request's protocol ([`convert::query_protocol_from_pb`]).
fn protocol(value: i32) -> Result<Option<Protocol>, ServiceError> {
    convert::query_protocol_from_pb(value, "protocol")
        .map_err(|e| ServiceError::invalid(e.field, e.reason))
}

/// Most layer names a Search or ListRecords filter may list.
pub const MAX_LAYER_FILTERS: usize = 64;

fn filter(
    protocol_value: i32,
    port_min: Option<u32>,
    port_max: Option<u32>,
    states: &[i32],
    layers: &[String],
) -> Result<Filter, ServiceError> {
    let protocol = protocol(protocol_value)?;
    let port_min = port_min.map(|p| port("port_min", p)).transpose()?;
    let port_max = port_max.map(|p| port("port_max", p)).transpose()?;
    if let (Some(min), Some(max)) = (port_min, port_max)
        && min > max
    {
        return Err(ServiceError::invalid(
            "port_min",
            format!("{min} is greater than port_max {max}"),
        ));
    }
    // Each state once, in the order first given: a request repeating a
    // state 60,000 times filters like one naming it once.
    let mut deduplicated: Vec<RecordState> = Vec::with_capacity(RecordState::ALL.len());
    for &value in states {
        let state = convert::state_from_pb(value, "states")
            .map_err(|e| ServiceError::invalid("states", e.reason))?;
        if !deduplicated.contains(&state) {
            deduplicated.push(state);
        }
    }
    let states = deduplicated;
    if layers.len() > MAX_LAYER_FILTERS {
        return Err(ServiceError::invalid(
            "layers",
            format!(
                "names {} layers, more than the maximum of {MAX_LAYER_FILTERS}",
                layers.len()
            ),
        ));
    }
    if let Some(long) = layers.iter().find(|l| l.len() > MAX_NAME_BYTES) {
        return Err(ServiceError::invalid(
            "layers",
            format!(
                "holds a name of {} bytes, more than the maximum of {MAX_NAME_BYTES}",
                long.len()
            ),
        ));
    }
    Ok(Filter {
        protocol,
        port_min,
        port_max,
        states,
        layers: layers.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: ServiceError) -> &'static str {
        match err {
            ServiceError::InvalidArgument { field, .. } => field,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn lookups_check_port_name_and_protocol() {
        let ok = lookup_port(&pb::LookupPortRequest {
            port: 443,
            protocol: pb::Protocol::Tcp as i32,
        });
        assert_eq!(
            ok.unwrap(),
            Lookup::Port {
                port: 443,
                protocol: Some(Protocol::Tcp)
            }
        );
        let big = pb::LookupPortRequest {
            port: 65536,
            protocol: 0,
        };
        assert_eq!(field_of(lookup_port(&big).unwrap_err()), "port");
        let other = pb::LookupPortRequest {
            port: 1,
            protocol: pb::Protocol::Other as i32,
        };
        assert_eq!(field_of(lookup_port(&other).unwrap_err()), "protocol");
        let unknown = pb::LookupPortRequest {
            port: 1,
            protocol: 77,
        };
        assert_eq!(field_of(lookup_port(&unknown).unwrap_err()), "protocol");
        let empty = pb::LookupNameRequest::default();
        assert_eq!(field_of(lookup_name(&empty).unwrap_err()), "name");
        let long = pb::LookupNameRequest {
            name: "a".repeat(256),
            protocol: 0,
        };
        assert_eq!(field_of(lookup_name(&long).unwrap_err()), "name");
    }

    #[test]
    fn batch_items_need_a_short_id_and_one_query() {
        let none = pb::BatchLookupRequest {
            id: "1".into(),
            ..Default::default()
        };
        assert_eq!(field_of(batch_item(&none).unwrap_err()), "query");
        let long_id = pb::BatchLookupRequest {
            id: "x".repeat(129),
            query: Some(Query::Port(80)),
            protocol: 0,
        };
        assert_eq!(field_of(batch_item(&long_id).unwrap_err()), "id");
    }

    #[test]
    fn filters_check_bounds_and_states() {
        let inverted = pb::ListRecordsRequest {
            port_min: Some(10),
            port_max: Some(5),
            ..Default::default()
        };
        assert_eq!(field_of(list_records(&inverted).unwrap_err()), "port_min");
        let too_big = pb::ListRecordsRequest {
            port_max: Some(70000),
            ..Default::default()
        };
        assert_eq!(field_of(list_records(&too_big).unwrap_err()), "port_max");
        let bad_state = pb::ListRecordsRequest {
            states: vec![9],
            ..Default::default()
        };
        assert_eq!(field_of(list_records(&bad_state).unwrap_err()), "states");
        let empty_query = pb::SearchRequest::default();
        assert_eq!(field_of(search(&empty_query).unwrap_err()), "query");
        let long_query = pb::SearchRequest {
            query: "q".repeat(257),
            ..Default::default()
        };
        assert_eq!(field_of(search(&long_query).unwrap_err()), "query");
        let huge_limit = pb::SearchRequest {
            query: "a".into(),
            limit: u32::MAX,
            ..Default::default()
        };
        assert_eq!(field_of(search(&huge_limit).unwrap_err()), "limit");
        let at_cap = pb::SearchRequest {
            query: "a".into(),
            limit: MAX_SEARCH_LIMIT as u32,
            ..Default::default()
        };
        assert_eq!(search(&at_cap).unwrap().limit, MAX_SEARCH_LIMIT);
        let bad_mode = pb::WatchRequest {
            mode: 5,
            ..Default::default()
        };
        assert_eq!(field_of(watch(&bad_mode).unwrap_err()), "mode");
    }

    /// 60,000 repeats of two states (what a 64 KiB request can carry) make
    /// a filter of two states, so checking a record stays cheap.
    #[test]
    fn repeated_states_are_deduplicated() {
        let mut states = vec![pb::RecordState::Reserved as i32; 60_000];
        states.push(pb::RecordState::Assigned as i32);
        states.push(pb::RecordState::Reserved as i32);
        let filter = list_records(&pb::ListRecordsRequest {
            states: states.clone(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            filter.states,
            [RecordState::Reserved, RecordState::Assigned]
        );
        let query = search(&pb::SearchRequest {
            query: "a".into(),
            states,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(query.filter.states.len(), 2);
    }
}
