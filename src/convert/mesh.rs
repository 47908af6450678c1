//! What a port means to a service mesh ([`PortDescription`]) ⇄
//! `portolan.v1.DescribePortResponse`, and the mesh hints' enums ⇄ theirs.
//!
//! Domain → protobuf never fails; protobuf → domain refuses unknown enum
//! values and out-of-range ports, naming the field. Empty strings of the
//! wire are `None` in the domain. A record name's class is recomputed from
//! the name on the way back (the check is the domain's, and deterministic).

use std::sync::Arc;

use portolan_registry::mesh::{
    Hint, IstioAdvice, IstioDefault, IstioReading, LinkerdAdvice, LinkerdDefault, LinkerdReading,
    MeshAdvice, NameCheck, ServerSpeaksFirst, Stall,
};
use portolan_registry::{PortDescription, Protocol};

use super::{
    ConvertError, non_empty, port_from_pb, protocol_from_pb, protocol_to_pb,
    query_protocol_from_pb, record_from_pb, unkeyed_record_to_pb,
};
use crate::pb;

/// One domain enum ⇄ its wire enum: `$to` (never fails) and `$from`
/// (`UNSPECIFIED` is `None`; an unknown value is an error naming the field).
macro_rules! enum_map {
    ($to:ident, $from:ident, $domain:ident, $wire:ident { $($d:ident <=> $w:ident),+ $(,)? }) => {
        #[doc = concat!("The wire value of a [`", stringify!($domain), "`].")]
        pub fn $to(value: $domain) -> pb::$wire {
            match value {
                $($domain::$d => pb::$wire::$w),+
            }
        }

        #[doc = concat!("A [`", stringify!($domain), "`] from its wire value (`None` for UNSPECIFIED).")]
        pub fn $from(value: i32, field: &'static str) -> Result<Option<$domain>, ConvertError> {
            match pb::$wire::try_from(value) {
                Ok(pb::$wire::Unspecified) => Ok(None),
                $(Ok(pb::$wire::$w) => Ok(Some($domain::$d)),)+
                Err(_) => Err(ConvertError::new(field, format!("unknown value {value}"))),
            }
        }
    };
}

enum_map!(server_speaks_first_to_pb, server_speaks_first_from_pb, ServerSpeaksFirst, ServerSpeaksFirst {
    Yes <=> Yes, No <=> No, Unverified <=> Unverified,
});
enum_map!(istio_default_to_pb, istio_default_from_pb, IstioDefault, IstioDefault {
    Tcp <=> Tcp, Sniff <=> Sniff,
});
enum_map!(linkerd_default_to_pb, linkerd_default_from_pb, LinkerdDefault, LinkerdDefault {
    Opaque <=> Opaque, Skip <=> Skip, Detect <=> Detect,
});
enum_map!(istio_reading_to_pb, istio_reading_from_pb, IstioReading, IstioReading {
    Tcp <=> Tcp, Sniff <=> Sniff, Http <=> Http, Https <=> Https, Mysql <=> Mysql,
    Redis <=> Redis, Mongo <=> Mongo,
});
enum_map!(linkerd_reading_to_pb, linkerd_reading_from_pb, LinkerdReading, LinkerdReading {
    Http1 <=> Http1, H2 <=> H2, Opaque <=> Opaque, Ignored <=> Ignored,
});
enum_map!(stall_to_pb, stall_from_pb, Stall, Stall {
    Yes <=> Yes, No <=> No, Unknown <=> Unknown,
});

/// A value that must be set: UNSPECIFIED is an error naming the field.
fn required<T>(value: Option<T>, field: &'static str) -> Result<T, ConvertError> {
    value.ok_or_else(|| ConvertError::new(field, "must be set"))
}

fn text(value: Option<&String>) -> String {
    value.cloned().unwrap_or_default()
}

/// The wire message of a hint.
pub fn hint_to_pb(hint: &Hint) -> pb::MeshHint {
    pb::MeshHint {
        port: u32::from(hint.port),
        transport: protocol_to_pb(Some(&hint.transport)).0 as i32,
        application: hint.application.clone(),
        iana_name: text(hint.iana_name.as_ref()),
        iana_registered_names: hint.iana_registered_names.clone(),
        server_speaks_first: server_speaks_first_to_pb(hint.server_speaks_first) as i32,
        server_speaks_first_source: text(hint.server_speaks_first_source.as_ref()),
        implicit_tls: hint.implicit_tls,
        sniffing_note: text(hint.sniffing_note.as_ref()),
        sniffing_note_source: text(hint.sniffing_note_source.as_ref()),
        istio_default: istio_default_to_pb(hint.istio_default) as i32,
        istio_source: hint.istio_source.clone(),
        linkerd_default: linkerd_default_to_pb(hint.linkerd_default) as i32,
        linkerd_source: hint.linkerd_source.clone(),
        app_protocol: text(hint.app_protocol.as_ref()),
        istio_reads_app_protocol_as: hint
            .istio_reads_app_protocol_as
            .map_or(0, |r| istio_reading_to_pb(r) as i32),
        istio_port_name: hint.istio_port_name.clone(),
        istio_fix: text(hint.istio_fix.as_ref()),
        linkerd_reads_app_protocol_as: hint
            .linkerd_reads_app_protocol_as
            .map_or(0, |r| linkerd_reading_to_pb(r) as i32),
        linkerd_fix: text(hint.linkerd_fix.as_ref()),
        notes: text(hint.notes.as_ref()),
    }
}

/// A hint from its wire message.
///
/// # Errors
/// An out-of-range port, a transport that is not one of the IANA four, an
/// unknown or unset enum value.
pub fn hint_from_pb(hint: &pb::MeshHint) -> Result<Hint, ConvertError> {
    let transport = required(
        protocol_from_pb(hint.transport, "", "hint.transport")?,
        "hint.transport",
    )?;
    Ok(Hint {
        port: port_from_pb(hint.port, "hint.port")?,
        transport,
        application: hint.application.clone(),
        iana_name: non_empty(&hint.iana_name),
        iana_registered_names: hint.iana_registered_names.clone(),
        server_speaks_first: required(
            server_speaks_first_from_pb(hint.server_speaks_first, "hint.server_speaks_first")?,
            "hint.server_speaks_first",
        )?,
        server_speaks_first_source: non_empty(&hint.server_speaks_first_source),
        implicit_tls: hint.implicit_tls,
        sniffing_note: non_empty(&hint.sniffing_note),
        sniffing_note_source: non_empty(&hint.sniffing_note_source),
        istio_default: required(
            istio_default_from_pb(hint.istio_default, "hint.istio_default")?,
            "hint.istio_default",
        )?,
        istio_source: hint.istio_source.clone(),
        linkerd_default: required(
            linkerd_default_from_pb(hint.linkerd_default, "hint.linkerd_default")?,
            "hint.linkerd_default",
        )?,
        linkerd_source: hint.linkerd_source.clone(),
        app_protocol: non_empty(&hint.app_protocol),
        istio_reads_app_protocol_as: istio_reading_from_pb(
            hint.istio_reads_app_protocol_as,
            "hint.istio_reads_app_protocol_as",
        )?,
        istio_port_name: hint.istio_port_name.clone(),
        istio_fix: non_empty(&hint.istio_fix),
        linkerd_reads_app_protocol_as: linkerd_reading_from_pb(
            hint.linkerd_reads_app_protocol_as,
            "hint.linkerd_reads_app_protocol_as",
        )?,
        linkerd_fix: non_empty(&hint.linkerd_fix),
        notes: non_empty(&hint.notes),
    })
}

fn istio_to_pb(advice: &IstioAdvice) -> pb::IstioAdvice {
    pb::IstioAdvice {
        default_behavior: istio_default_to_pb(advice.default) as i32,
        stalls: stall_to_pb(advice.stalls) as i32,
        app_protocol: text(advice.app_protocol.as_ref()),
        reads_app_protocol_as: advice
            .reads_app_protocol_as
            .map_or(0, |r| istio_reading_to_pb(r) as i32),
        port_name: text(advice.port_name.as_ref()),
        fix: text(advice.fix.as_ref()),
        source: text(advice.source.as_ref()),
    }
}

fn linkerd_to_pb(advice: &LinkerdAdvice) -> pb::LinkerdAdvice {
    pb::LinkerdAdvice {
        default_behavior: linkerd_default_to_pb(advice.default) as i32,
        stalls: stall_to_pb(advice.stalls) as i32,
        app_protocol: text(advice.app_protocol.as_ref()),
        reads_app_protocol_as: advice
            .reads_app_protocol_as
            .map_or(0, |r| linkerd_reading_to_pb(r) as i32),
        annotation: text(advice.annotation.as_ref()),
        source: text(advice.source.as_ref()),
    }
}

fn istio_from_pb(advice: &pb::IstioAdvice) -> Result<IstioAdvice, ConvertError> {
    Ok(IstioAdvice {
        default: required(
            istio_default_from_pb(advice.default_behavior, "istio.default_behavior")?,
            "istio.default_behavior",
        )?,
        stalls: required(
            stall_from_pb(advice.stalls, "istio.stalls")?,
            "istio.stalls",
        )?,
        app_protocol: non_empty(&advice.app_protocol),
        reads_app_protocol_as: istio_reading_from_pb(
            advice.reads_app_protocol_as,
            "istio.reads_app_protocol_as",
        )?,
        port_name: non_empty(&advice.port_name),
        fix: non_empty(&advice.fix),
        source: non_empty(&advice.source),
    })
}

fn linkerd_from_pb(advice: &pb::LinkerdAdvice) -> Result<LinkerdAdvice, ConvertError> {
    Ok(LinkerdAdvice {
        default: required(
            linkerd_default_from_pb(advice.default_behavior, "linkerd.default_behavior")?,
            "linkerd.default_behavior",
        )?,
        stalls: required(
            stall_from_pb(advice.stalls, "linkerd.stalls")?,
            "linkerd.stalls",
        )?,
        app_protocol: non_empty(&advice.app_protocol),
        reads_app_protocol_as: linkerd_reading_from_pb(
            advice.reads_app_protocol_as,
            "linkerd.reads_app_protocol_as",
        )?,
        annotation: non_empty(&advice.annotation),
        source: non_empty(&advice.source),
    })
}

/// The wire class of a record name.
pub fn name_check_to_pb(check: &NameCheck) -> pb::NameClass {
    pb::NameClass {
        name: check.name.clone(),
        rfc6335: check.rfc6335.is_none(),
        kubernetes_port_name: check.kubernetes.is_none(),
        problem: check.kubernetes.map(|p| p.to_string()).unwrap_or_default(),
    }
}

/// DescribePort's answer for `description`, read from registry `version`
/// and state `state_id`. Records go without their keys (the contract says
/// so), as [`unkeyed_record_to_pb`] writes them.
pub fn description_to_pb(
    description: &PortDescription,
    version: u64,
    state_id: u64,
) -> pb::DescribePortResponse {
    let meshes = description.meshes.as_ref();
    pb::DescribePortResponse {
        port: u32::from(description.port),
        protocol: protocol_to_pb(description.protocol.as_ref()).0 as i32,
        records: description
            .records
            .iter()
            .map(|r| unkeyed_record_to_pb(r))
            .collect(),
        hint: description.hint.as_ref().map(hint_to_pb),
        istio: meshes.map(|m| istio_to_pb(&m.istio)),
        linkerd: meshes.map(|m| linkerd_to_pb(&m.linkerd)),
        names: description.names.iter().map(name_check_to_pb).collect(),
        version,
        state_id,
    }
}

/// A description from DescribePort's answer.
///
/// # Errors
/// A record, hint or advice holding something the domain cannot represent,
/// or one mesh's advice without the other's.
pub fn description_from_pb(
    response: &pb::DescribePortResponse,
) -> Result<PortDescription, ConvertError> {
    let records = response
        .records
        .iter()
        .map(|r| record_from_pb(r).map(|(_, record)| Arc::new(record)))
        .collect::<Result<Vec<_>, _>>()?;
    let meshes = match (&response.istio, &response.linkerd) {
        (Some(istio), Some(linkerd)) => Some(MeshAdvice {
            istio: istio_from_pb(istio)?,
            linkerd: linkerd_from_pb(linkerd)?,
        }),
        (None, None) => None,
        (Some(_), None) => return Err(ConvertError::new("linkerd", "missing beside istio")),
        (None, Some(_)) => return Err(ConvertError::new("istio", "missing beside linkerd")),
    };
    let protocol: Option<Protocol> = query_protocol_from_pb(response.protocol, "protocol")?;
    Ok(PortDescription {
        port: port_from_pb(response.port, "port")?,
        protocol,
        records,
        hint: response.hint.as_ref().map(hint_from_pb).transpose()?,
        meshes,
        names: response
            .names
            .iter()
            .map(|n| NameCheck::of(&n.name))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_registry::Hints;

    #[test]
    fn every_hint_round_trips() {
        for hint in Hints::embedded().iter() {
            assert_eq!(&hint_from_pb(&hint_to_pb(hint)).expect("converts"), hint);
        }
    }

    #[test]
    fn descriptions_round_trip_and_unset_enums_are_refused() {
        let hints = Hints::embedded();
        for (port, protocol) in [
            (4222, None),
            (3306, Some(Protocol::Tcp)),
            (22, Some(Protocol::Udp)),
        ] {
            let record = Arc::new(portolan_registry::Record {
                name: Some("Name".into()),
                ports: Some(portolan_registry::PortRange::single(port)),
                ..portolan_registry::Record::default()
            });
            let d = portolan_registry::mesh::describe(port, protocol.as_ref(), vec![record], hints)
                .expect("described");
            let wire = description_to_pb(&d, 7, 9);
            assert_eq!((wire.version, wire.state_id), (7, 9));
            assert_eq!(description_from_pb(&wire).expect("converts"), d);
        }
        let mut hint = hint_to_pb(hints.for_port(4222, None).expect("NATS"));
        hint.istio_default = 0;
        let err = hint_from_pb(&hint).expect_err("unset");
        assert_eq!(err.to_string(), "hint.istio_default: must be set");
        hint.istio_default = 99;
        let err = hint_from_pb(&hint).expect_err("unknown");
        assert_eq!(err.to_string(), "hint.istio_default: unknown value 99");
    }
}
