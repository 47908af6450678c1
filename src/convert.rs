//! Conversions between the registry's domain types ([`portolan_registry`])
//! and the protobuf messages of `portolan.v1` ([`crate::pb`]).
//!
//! This is the only module that knows both sides; the server's pre-encoded
//! replies ([`crate::reply`]) hold prost's encoding of what it makes. Domain → protobuf never fails; protobuf → domain
//! returns a [`ConvertError`] naming the field when a message holds
//! something the domain cannot represent (an unknown enum value, a port
//! above 65535, a range whose end precedes its start, `PROTOCOL_OTHER`
//! without a name).
//!
//! [`mesh`] converts what a port means to a service mesh (DescribePort's
//! answer) and the mesh hints' enums.
//!
//! # Round trips
//! `record_from_pb(&record_to_pb(&key, &record))` gives back `(key, record)`
//! exactly, with one documented exception: optional text fields that hold
//! `Some("")` come back as `None`, because protobuf strings cannot tell an
//! empty string from an absent one (parsers never produce `Some("")`).
//!
//! # Watch deltas
//! [`delta_upserts_to_pb`], [`delta_removed_to_pb`] and
//! [`delta_invalidated_to_pb`] turn a [`Diff`] into the record and key lists
//! of a `pb::Delta` (the server splits them into parts);
//! [`delta_from_pb`] turns a received part back into upserts and removed
//! keys for [`portolan_registry::Index::apply_delta`].

use std::fmt;
use std::sync::Arc;

use portolan_registry::diff::KeyedRecord;
use portolan_registry::{
    Diff, EntryLookup, Person, PortClass, PortRange, Protocol, Record, RecordKey, RecordState,
    RegistryDate,
};

use crate::pb;

pub mod lint;
pub mod mesh;

pub use lint::{
    finding_from_pb, finding_to_pb, manifest_from_pb, mesh_from_pb, mesh_to_pb, objects_to_pb,
};
pub use mesh::{description_from_pb, description_to_pb};

/// A protobuf message held a value the domain model cannot represent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    /// The offending field, e.g. `record.protocol` or `key.port_end`.
    pub field: &'static str,
    /// What was wrong with it.
    pub reason: String,
}

impl ConvertError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConvertError {}

// ---------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------

/// The protobuf protocol enum and protocol text for a record's protocol
/// (`None`, a row naming no protocol, is `PROTOCOL_UNSPECIFIED` with empty
/// text).
pub fn protocol_to_pb(protocol: Option<&Protocol>) -> (pb::Protocol, String) {
    let (value, text) = protocol_to_pb_ref(protocol);
    (value, text.to_string())
}

/// [`protocol_to_pb`] without copying the text.
pub(crate) fn protocol_to_pb_ref(protocol: Option<&Protocol>) -> (pb::Protocol, &str) {
    match protocol {
        None => (pb::Protocol::Unspecified, ""),
        Some(p) => {
            let value = match p {
                Protocol::Tcp => pb::Protocol::Tcp,
                Protocol::Udp => pb::Protocol::Udp,
                Protocol::Sctp => pb::Protocol::Sctp,
                Protocol::Dccp => pb::Protocol::Dccp,
                Protocol::Other(_) => pb::Protocol::Other,
            };
            (value, p.as_str())
        }
    }
}

/// A record's protocol from the wire enum value and its text.
///
/// `PROTOCOL_UNSPECIFIED` is `None`; `PROTOCOL_OTHER` needs a non-empty
/// `text` (the protocol's name); an unknown value is an error naming
/// `field`.
pub fn protocol_from_pb(
    value: i32,
    text: &str,
    field: &'static str,
) -> Result<Option<Protocol>, ConvertError> {
    match pb::Protocol::try_from(value) {
        Ok(pb::Protocol::Unspecified) => Ok(None),
        Ok(pb::Protocol::Tcp) => Ok(Some(Protocol::Tcp)),
        Ok(pb::Protocol::Udp) => Ok(Some(Protocol::Udp)),
        Ok(pb::Protocol::Sctp) => Ok(Some(Protocol::Sctp)),
        Ok(pb::Protocol::Dccp) => Ok(Some(Protocol::Dccp)),
        Ok(pb::Protocol::Other) => match Protocol::parse(text) {
            Some(p) => Ok(Some(p)),
            None => Err(ConvertError::new(
                field,
                "PROTOCOL_OTHER needs the protocol's name in protocol_text",
            )),
        },
        Err(_) => Err(ConvertError::new(
            field,
            format!("unknown protocol value {value}"),
        )),
    }
}

/// The wire value of a query's protocol (`None` = any): the mapping every
/// request and the client's cache slots use. Only the IANA four can be
/// asked for; a protocol outside them is an error naming `field`.
pub fn query_protocol_to_pb(
    protocol: Option<&Protocol>,
    field: &'static str,
) -> Result<pb::Protocol, ConvertError> {
    match protocol_to_pb_ref(protocol) {
        (pb::Protocol::Other, name) => Err(ConvertError::new(
            field,
            format!("{name:?} cannot be queried (only tcp, udp, sctp, dccp)"),
        )),
        (value, _) => Ok(value),
    }
}

/// A query's protocol from a request's wire value (`PROTOCOL_UNSPECIFIED` =
/// any); `PROTOCOL_OTHER` and unknown values are errors naming `field`.
pub fn query_protocol_from_pb(
    value: i32,
    field: &'static str,
) -> Result<Option<Protocol>, ConvertError> {
    if value == pb::Protocol::Other as i32 {
        return Err(ConvertError::new(
            field,
            "PROTOCOL_OTHER is not valid in a request",
        ));
    }
    protocol_from_pb(value, "", field)
}

/// A domain state as the wire enum.
pub fn state_to_pb(state: RecordState) -> pb::RecordState {
    match state {
        RecordState::Assigned => pb::RecordState::Assigned,
        RecordState::Reserved => pb::RecordState::Reserved,
        RecordState::Unassigned => pb::RecordState::Unassigned,
        RecordState::Removed => pb::RecordState::Removed,
    }
}

/// A domain state from a wire enum value; `RECORD_STATE_UNSPECIFIED` and
/// unknown values are errors naming `field`.
pub fn state_from_pb(value: i32, field: &'static str) -> Result<RecordState, ConvertError> {
    match pb::RecordState::try_from(value) {
        Ok(pb::RecordState::Assigned) => Ok(RecordState::Assigned),
        Ok(pb::RecordState::Reserved) => Ok(RecordState::Reserved),
        Ok(pb::RecordState::Unassigned) => Ok(RecordState::Unassigned),
        Ok(pb::RecordState::Removed) => Ok(RecordState::Removed),
        Ok(pb::RecordState::Unspecified) => {
            Err(ConvertError::new(field, "RECORD_STATE_UNSPECIFIED"))
        }
        Err(_) => Err(ConvertError::new(
            field,
            format!("unknown record state value {value}"),
        )),
    }
}

/// A record's port class as the wire enum (`None`, no port, is
/// `PORT_CLASS_UNSPECIFIED`).
pub fn port_class_to_pb(class: Option<PortClass>) -> pb::PortClass {
    match class {
        None => pb::PortClass::Unspecified,
        Some(PortClass::System) => pb::PortClass::System,
        Some(PortClass::User) => pb::PortClass::User,
        Some(PortClass::Dynamic) => pb::PortClass::Dynamic,
        Some(PortClass::Mixed) => pb::PortClass::Mixed,
    }
}

// ---------------------------------------------------------------------------
// Small value types
// ---------------------------------------------------------------------------

pub(crate) fn ports_to_pb(ports: Option<PortRange>) -> (Option<u32>, Option<u32>) {
    match ports {
        Some(range) => (Some(u32::from(range.start)), Some(u32::from(range.end))),
        None => (None, None),
    }
}

fn port_from_pb(value: u32, field: &'static str) -> Result<u16, ConvertError> {
    u16::try_from(value)
        .map_err(|_| ConvertError::new(field, format!("port {value} is out of range (0-65535)")))
}

/// Reads `port`/`port_end`; a missing `port_end` means a single port, a
/// `port_end` without `port` is an error.
fn ports_from_pb(
    port: Option<u32>,
    port_end: Option<u32>,
    field_port: &'static str,
    field_end: &'static str,
) -> Result<Option<PortRange>, ConvertError> {
    match (port, port_end) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ConvertError::new(field_end, "set without port")),
        (Some(start), end) => {
            let start = port_from_pb(start, field_port)?;
            let end = match end {
                Some(end) => port_from_pb(end, field_end)?,
                None => start,
            };
            PortRange::new(start, end)
                .map(Some)
                .ok_or_else(|| ConvertError::new(field_end, format!("{end} is below port {start}")))
        }
    }
}

/// A registry date as the wire message.
pub fn date_to_pb(date: &RegistryDate) -> pb::RegistryDate {
    let (year, month, day) = date_parts(date);
    pb::RegistryDate {
        text: date.text.clone(),
        year,
        month,
        day,
    }
}

/// A date's year, month and day as the wire fields hold them (0 when
/// absent).
pub(crate) fn date_parts(date: &RegistryDate) -> (u32, u32, u32) {
    match date.parsed {
        Some((year, month, day)) => (
            u32::from(year),
            u32::from(month),
            u32::from(day.unwrap_or(0)),
        ),
        None => (0, 0, 0),
    }
}

/// A registry date from the wire message (month 0 means "not a date").
pub fn date_from_pb(date: &pb::RegistryDate) -> Result<RegistryDate, ConvertError> {
    let parsed = if date.month == 0 {
        None
    } else {
        let year = u16::try_from(date.year)
            .map_err(|_| ConvertError::new("registry_date.year", "out of range"))?;
        let month = u8::try_from(date.month)
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(|| ConvertError::new("registry_date.month", "not 1-12"))?;
        let day = match date.day {
            0 => None,
            d => Some(
                u8::try_from(d)
                    .ok()
                    .filter(|d| (1..=31).contains(d))
                    .ok_or_else(|| ConvertError::new("registry_date.day", "not 0-31"))?,
            ),
        };
        Some((year, month, day))
    };
    Ok(RegistryDate {
        text: date.text.clone(),
        parsed,
    })
}

/// A person as the wire message (absent fields become empty strings).
pub fn person_to_pb(person: &Person) -> pb::Person {
    pb::Person {
        id: person.id.clone(),
        name: person.name.clone().unwrap_or_default(),
        organization: person.organization.clone().unwrap_or_default(),
        uri: person.uri.clone().unwrap_or_default(),
        updated: person.updated.clone().unwrap_or_default(),
    }
}

/// A person from the wire message (empty strings become `None`).
pub fn person_from_pb(person: &pb::Person) -> Person {
    Person {
        id: person.id.clone(),
        name: non_empty(&person.name),
        organization: non_empty(&person.organization),
        uri: non_empty(&person.uri),
        updated: non_empty(&person.updated),
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

// ---------------------------------------------------------------------------
// Keys and records
// ---------------------------------------------------------------------------

/// A record key as the wire message.
pub fn key_to_pb(key: &RecordKey) -> pb::RecordKey {
    let (port, port_end) = ports_to_pb(key.ports);
    let (protocol, protocol_text) = protocol_to_pb(key.protocol.as_ref());
    pb::RecordKey {
        name: key.name.as_deref().map(str::to_owned),
        port,
        port_end,
        protocol: protocol as i32,
        protocol_text,
        ordinal: key.ordinal,
        layer: key.layer.to_string(),
    }
}

/// A layer name from the wire (the unnamed layer shares one empty name).
fn layer_from_pb(layer: &str) -> Arc<str> {
    if layer.is_empty() {
        Arc::default()
    } else {
        Arc::from(layer)
    }
}

/// A record key from the wire message.
pub fn key_from_pb(key: &pb::RecordKey) -> Result<RecordKey, ConvertError> {
    Ok(RecordKey {
        name: key.name.as_deref().map(Into::into),
        ports: ports_from_pb(key.port, key.port_end, "key.port", "key.port_end")?,
        protocol: protocol_from_pb(key.protocol, &key.protocol_text, "key.protocol")?,
        ordinal: key.ordinal,
        layer: layer_from_pb(&key.layer),
    })
}

/// What a registry snapshot says about itself (version, source, counts,
/// dates), as GetRegistryInfo reports it; the reload fields are left for the
/// caller (only a server that reloads has them).
pub fn snapshot_info_to_pb(snapshot: &portolan_registry::Snapshot) -> pb::GetRegistryInfoResponse {
    let source = snapshot.source();
    pb::GetRegistryInfoResponse {
        version: snapshot.version(),
        content_hash: source.content_hash.clone(),
        source_path: source.path.clone(),
        source_format: source.format_label(),
        record_count: snapshot.len() as u64,
        records_by_state: snapshot
            .counts_by_state()
            .into_iter()
            .map(|(state, n)| (state.as_str().to_string(), n as u64))
            .collect(),
        records_by_protocol: snapshot
            .counts_by_protocol()
            .into_iter()
            .map(|(protocol, n)| (protocol, n as u64))
            .collect(),
        registry_updated: source.updated.clone().unwrap_or_default(),
        loaded_at: Some(prost_types::Timestamp::from(snapshot.loaded_at())),
        diagnostic_count: source.diagnostic_count as u64,
        state_id: snapshot.content_id().0,
        ..pb::GetRegistryInfoResponse::default()
    }
}

/// A record and its key as the wire message, every field filled in
/// (including the derived state and port class, and the key).
pub fn record_to_pb(key: &RecordKey, record: &Record) -> pb::Record {
    let mut out = unkeyed_record_to_pb(record);
    out.key = Some(key_to_pb(key));
    out
}

/// The records of a point lookup's answer as wire messages, converted with
/// [`record_to_pb`] (the server sends the same bytes, encoded once per
/// record, through [`crate::reply`]).
pub fn lookup_records_to_pb(found: &EntryLookup) -> Vec<pb::Record> {
    found
        .entries
        .iter()
        .map(|e| record_to_pb(&e.key, &e.record))
        .collect()
}

/// A LookupPort answer as the wire message.
pub fn lookup_port_to_pb(found: &EntryLookup) -> pb::LookupPortResponse {
    pb::LookupPortResponse {
        records: lookup_records_to_pb(found),
        version: found.version,
        state_id: found.content_id.0,
    }
}

/// A LookupName answer as the wire message.
pub fn lookup_name_to_pb(found: &EntryLookup) -> pb::LookupNameResponse {
    pb::LookupNameResponse {
        records: lookup_records_to_pb(found),
        version: found.version,
        state_id: found.content_id.0,
    }
}

/// A record as the wire message without its key (`key` absent). Use
/// [`record_to_pb`] whenever the key is known.
pub fn unkeyed_record_to_pb(record: &Record) -> pb::Record {
    let (port, port_end) = ports_to_pb(record.ports);
    let (protocol, protocol_text) = protocol_to_pb(record.protocol.as_ref());
    pb::Record {
        name: record.name.clone(),
        port,
        port_end,
        protocol: protocol as i32,
        protocol_text,
        description: record.description.clone(),
        assignees: record.assignees.iter().map(person_to_pb).collect(),
        contacts: record.contacts.iter().map(person_to_pb).collect(),
        registration_date: record.registration_date.as_ref().map(date_to_pb),
        modification_date: record.modification_date.as_ref().map(date_to_pb),
        references: record.references.clone(),
        service_code: record.service_code.clone().unwrap_or_default(),
        unauthorized_use: record.unauthorized_use.clone().unwrap_or_default(),
        notes: record.notes.clone().unwrap_or_default(),
        state: state_to_pb(record.state) as i32,
        port_class: port_class_to_pb(record.port_class()) as i32,
        aliases: record.aliases.clone(),
        open_frequency: record.open_frequency,
        key: None,
        position: record.position,
        layer: record.layer.to_string(),
        layer_rank: record.layer_rank,
    }
}

/// A record from the wire message, with its key.
///
/// When the message carries no key, the key is derived from the record with
/// ordinal 0. The derived `port_class` is ignored (the domain recomputes
/// it); `RECORD_STATE_UNSPECIFIED` is read as assigned.
pub fn record_from_pb(record: &pb::Record) -> Result<(RecordKey, Record), ConvertError> {
    let ports = ports_from_pb(
        record.port,
        record.port_end,
        "record.port",
        "record.port_end",
    )?;
    let protocol = protocol_from_pb(record.protocol, &record.protocol_text, "record.protocol")?;
    let state = match record.state {
        0 => RecordState::Assigned,
        value => state_from_pb(value, "record.state")?,
    };
    let domain = Record {
        name: record.name.clone(),
        ports,
        protocol,
        description: record.description.clone(),
        assignees: record.assignees.iter().map(person_from_pb).collect(),
        contacts: record.contacts.iter().map(person_from_pb).collect(),
        registration_date: record
            .registration_date
            .as_ref()
            .map(date_from_pb)
            .transpose()?,
        modification_date: record
            .modification_date
            .as_ref()
            .map(date_from_pb)
            .transpose()?,
        references: record.references.clone(),
        service_code: non_empty(&record.service_code),
        unauthorized_use: non_empty(&record.unauthorized_use),
        notes: non_empty(&record.notes),
        aliases: record.aliases.clone(),
        open_frequency: record.open_frequency,
        state,
        position: record.position,
        layer: layer_from_pb(&record.layer),
        layer_rank: record.layer_rank,
    };
    let key = match &record.key {
        Some(key) => key_from_pb(key)?,
        None => RecordKey::of(&domain, 0),
    };
    Ok((key, domain))
}

/// A keyed record from the wire message, ready for
/// [`portolan_registry::Index::replace_keyed`] or `apply_delta`.
pub fn keyed_record_from_pb(record: &pb::Record) -> Result<KeyedRecord, ConvertError> {
    let (key, record) = record_from_pb(record)?;
    Ok((key, Arc::new(record)))
}

// ---------------------------------------------------------------------------
// Diffs and deltas
// ---------------------------------------------------------------------------

/// FULL-mode upserts of a diff: added then changed records, with their new
/// content and keys.
pub fn delta_upserts_to_pb(diff: &Diff) -> Vec<pb::Record> {
    diff.upserts()
        .map(|(key, record)| record_to_pb(key, record))
        .collect()
}

/// FULL-mode removals of a diff: the keys of removed records.
pub fn delta_removed_to_pb(diff: &Diff) -> Vec<pb::RecordKey> {
    diff.removed.iter().map(|(key, _)| key_to_pb(key)).collect()
}

/// INVALIDATE-mode keys of a diff: every key added, changed or removed.
pub fn delta_invalidated_to_pb(diff: &Diff) -> Vec<pb::RecordKey> {
    diff.touched_keys().map(key_to_pb).collect()
}

/// A received FULL-mode delta part as upserts and removed keys.
pub fn delta_from_pb(
    delta: &pb::Delta,
) -> Result<(Vec<KeyedRecord>, Vec<RecordKey>), ConvertError> {
    let upserts = delta
        .upserted
        .iter()
        .map(keyed_record_from_pb)
        .collect::<Result<Vec<_>, _>>()?;
    let removed = delta
        .removed
        .iter()
        .map(key_from_pb)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((upserts, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_record() -> Record {
        Record {
            name: Some("x11".into()),
            ports: PortRange::new(6000, 6063),
            protocol: Some(Protocol::Tcp),
            description: "X Window System".into(),
            assignees: vec![Person {
                id: "Stephen_Gildea".into(),
                name: Some("Stephen Gildea".into()),
                organization: Some("X Consortium".into()),
                uri: Some("mailto:gildea&lcs.mit.edu".into()),
                updated: Some("2013-08-27".into()),
            }],
            contacts: vec![Person::from_id("Stephen_Gildea")],
            registration_date: RegistryDate::parse("2002-02"),
            modification_date: RegistryDate::parse("2013-08-27"),
            references: vec!["RFC6335".into(), "https://example.org".into()],
            service_code: Some("SC:X11".into()),
            unauthorized_use: Some("6063/tcp".into()),
            notes: Some("Used by X".into()),
            aliases: vec!["x".into(), "xwin".into()],
            open_frequency: Some(0.25),
            state: RecordState::Assigned,
            position: 3,
            layer: Arc::from("corp"),
            layer_rank: 1,
        }
    }

    #[test]
    fn full_record_round_trips() {
        let record = full_record();
        let key = RecordKey::of(&record, 2);
        let wire = record_to_pb(&key, &record);
        assert_eq!(wire.port, Some(6000));
        assert_eq!(wire.port_end, Some(6063));
        assert_eq!(wire.protocol, pb::Protocol::Tcp as i32);
        assert_eq!(wire.protocol_text, "tcp");
        assert_eq!(wire.state, pb::RecordState::Assigned as i32);
        assert_eq!(wire.port_class, pb::PortClass::User as i32);
        let reg = wire.registration_date.as_ref().unwrap();
        assert_eq!(
            (reg.text.as_str(), reg.year, reg.month, reg.day),
            ("2002-02", 2002, 2, 0)
        );
        let modified = wire.modification_date.as_ref().unwrap();
        assert_eq!((modified.year, modified.month, modified.day), (2013, 8, 27));
        assert_eq!(wire.key.as_ref().unwrap().ordinal, 2);
        assert_eq!(record_from_pb(&wire).unwrap(), (key, record));
    }

    #[test]
    fn sparse_records_round_trip() {
        let nameless = Record {
            name: None,
            ports: Some(PortRange::single(4)),
            protocol: None,
            description: "Unassigned".into(),
            state: RecordState::Unassigned,
            ..Record::default()
        };
        let portless = Record {
            name: Some("rdp".into()),
            ports: None,
            protocol: Some(Protocol::Other("ddp".into())),
            description: "odd".into(),
            registration_date: RegistryDate::parse("sometime"),
            state: RecordState::Removed,
            ..Record::default()
        };
        for (record, ordinal) in [(nameless, 0), (portless, 1)] {
            let key = RecordKey::of(&record, ordinal);
            let wire = record_to_pb(&key, &record);
            assert_eq!(record_from_pb(&wire).unwrap(), (key, record));
        }
    }

    #[test]
    fn portless_and_other_protocol_encode_as_documented() {
        let record = Record {
            name: Some("svc".into()),
            protocol: Some(Protocol::Other("ddp".into())),
            ..Record::default()
        };
        let wire = unkeyed_record_to_pb(&record);
        assert_eq!(wire.port, None);
        assert_eq!(wire.port_end, None);
        assert_eq!(wire.protocol, pb::Protocol::Other as i32);
        assert_eq!(wire.protocol_text, "ddp");
        assert_eq!(wire.port_class, pb::PortClass::Unspecified as i32);
        assert!(wire.key.is_none());
        let (key, back) = record_from_pb(&wire).unwrap();
        assert_eq!(back, record);
        assert_eq!(key.ordinal, 0);
    }

    #[test]
    fn keys_round_trip() {
        let key = RecordKey {
            name: None,
            ports: PortRange::new(1, 2),
            protocol: Some(Protocol::Udp),
            ordinal: 7,
            layer: Arc::from("local"),
        };
        assert_eq!(key_from_pb(&key_to_pb(&key)).unwrap(), key);
    }

    #[test]
    fn enums_round_trip() {
        for state in RecordState::ALL {
            assert_eq!(
                state_from_pb(state_to_pb(state) as i32, "s").unwrap(),
                state
            );
        }
        for protocol in [
            None,
            Some(Protocol::Tcp),
            Some(Protocol::Udp),
            Some(Protocol::Sctp),
            Some(Protocol::Dccp),
            Some(Protocol::Other("ddp".into())),
        ] {
            let (value, text) = protocol_to_pb(protocol.as_ref());
            assert_eq!(
                protocol_from_pb(value as i32, &text, "p").unwrap(),
                protocol
            );
        }
    }

    #[test]
    fn bad_wire_values_are_errors_naming_the_field() {
        let err = protocol_from_pb(99, "", "request.protocol").unwrap_err();
        assert_eq!(err.field, "request.protocol");
        assert!(protocol_from_pb(pb::Protocol::Other as i32, "", "p").is_err());
        assert!(state_from_pb(0, "s").is_err());
        assert!(state_from_pb(42, "s").is_err());
        let wire = pb::RecordKey {
            port: Some(70000),
            ..pb::RecordKey::default()
        };
        assert_eq!(key_from_pb(&wire).unwrap_err().field, "key.port");
        let wire = pb::RecordKey {
            port: Some(10),
            port_end: Some(5),
            ..pb::RecordKey::default()
        };
        assert_eq!(key_from_pb(&wire).unwrap_err().field, "key.port_end");
    }

    #[test]
    fn diff_becomes_delta_lists_and_back() {
        let old_record = full_record();
        let mut new_record = full_record();
        new_record.description = "changed".into();
        let added = Record {
            name: Some("new".into()),
            ports: Some(PortRange::single(1)),
            protocol: Some(Protocol::Tcp),
            ..Record::default()
        };
        let removed = Record {
            name: Some("gone".into()),
            ports: Some(PortRange::single(2)),
            protocol: Some(Protocol::Udp),
            ..Record::default()
        };
        let diff = Diff {
            added: vec![(RecordKey::of(&added, 0), Arc::new(added.clone()))],
            changed: vec![(
                RecordKey::of(&old_record, 0),
                Arc::new(old_record.clone()),
                Arc::new(new_record.clone()),
            )],
            removed: vec![(RecordKey::of(&removed, 0), Arc::new(removed.clone()))],
        };
        let delta = pb::Delta {
            upserted: delta_upserts_to_pb(&diff),
            removed: delta_removed_to_pb(&diff),
            invalidated: delta_invalidated_to_pb(&diff),
            last: true,
            invalidated_names: diff.touched_names(),
        };
        assert_eq!(delta.upserted.len(), 2);
        assert_eq!(delta.invalidated.len(), 3);
        let (upserts, removed_keys) = delta_from_pb(&delta).unwrap();
        assert_eq!(upserts[0].1.as_ref(), &added);
        assert_eq!(upserts[1].1.as_ref(), &new_record);
        assert_eq!(removed_keys, vec![RecordKey::of(&removed, 0)]);
    }
}
