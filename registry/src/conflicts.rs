//! [`conflicts`]: where a registry of one's own (a company's port list, an
//! `/etc/services` file) disagrees with a reference registry (IANA): what
//! `portolan check FILE --against REFERENCE` reports.
//!
//! Two kinds, both about records that name a service on a port:
//! * a **port** conflict: a record sits on a port and protocol that the
//!   reference assigns to other names (a reference row of the same name on
//!   that port, in any state, an alias included, is agreement);
//! * a **name** conflict: a record uses a name that the reference
//!   registers, assigned, on other ports only (a reference row of that name,
//!   in any state, covering one of the record's ports with a matching
//!   protocol is agreement).
//!
//! The reference checked against itself has no conflict (a CLI test shows
//! it on the real IANA CSV).
//!
//! Rows without a name or without a port cannot conflict. A range is
//! checked port by port, so the work is bounded by the ports the file's
//! ranges cover (at most 65,536 lookups per range row).

use std::sync::Arc;

use crate::index::Index;
use crate::model::{Protocol, Record, RecordState, fold_name};
use crate::registry::Registry;

/// One disagreement between a record and the reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Conflict<'a> {
    /// `record` sits on `port`, which the reference assigns to `reference`
    /// (other names) over a matching protocol.
    Port {
        /// The record of the checked registry.
        record: &'a Record,
        /// The port (a port of the record's range).
        port: u16,
        /// The reference's assigned records on that port.
        reference: Vec<Arc<Record>>,
    },
    /// `record`'s name is registered by the reference on other ports only.
    Name {
        /// The record of the checked registry.
        record: &'a Record,
        /// The reference's assigned records of that name.
        reference: Vec<Arc<Record>>,
    },
}

fn assigned(record: &Record) -> bool {
    record.state == RecordState::Assigned && record.name.is_some()
}

fn names_match(record: &Record, folded: &str) -> bool {
    record
        .name
        .iter()
        .chain(&record.aliases)
        .any(|n| fold_name(n) == folded)
}

/// Every conflict of `checked` against `reference`, in the checked
/// registry's order (port conflicts of a record before its name conflict).
pub fn conflicts<'a>(checked: &'a Registry, reference: &Index) -> Vec<Conflict<'a>> {
    let mut out = Vec::new();
    for record in &checked.records {
        let (Some(name), Some(ports)) = (&record.name, record.ports) else {
            continue;
        };
        let folded = fold_name(name);
        let protocol: Option<&Protocol> = record.protocol.as_ref();
        for port in ports.start..=ports.end {
            let found = reference.lookup_port(port, protocol).into_records().records;
            if found.iter().any(|r| names_match(r, &folded)) {
                continue;
            }
            let here: Vec<Arc<Record>> = found.into_iter().filter(|r| assigned(r)).collect();
            if !here.is_empty() {
                out.push(Conflict::Port {
                    record,
                    port,
                    reference: here,
                });
            }
        }
        let named = reference.lookup_name(name, None).into_records().records;
        let covers = |r: &Arc<Record>| {
            r.ports
                .is_some_and(|theirs| theirs.start <= ports.end && ports.start <= theirs.end)
                && Protocol::matches(r.protocol.as_ref(), protocol)
        };
        if named.iter().any(covers) {
            continue;
        }
        let registered: Vec<Arc<Record>> = named
            .into_iter()
            .filter(|r| assigned(r) && r.ports.is_some())
            .collect();
        if !registered.is_empty() {
            out.push(Conflict::Name {
                record,
                reference: registered,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PortRange;
    use crate::registry::SourceInfo;

    fn row(name: &str, port: u16, protocol: Protocol) -> Record {
        Record {
            name: Some(name.into()),
            ports: Some(PortRange::single(port)),
            protocol: Some(protocol),
            state: RecordState::Assigned,
            ..Record::default()
        }
    }

    #[test]
    fn ports_taken_by_other_names_and_names_registered_elsewhere_conflict() {
        let reference = Index::new(Registry::new(
            vec![
                row("http-alt", 8080, Protocol::Tcp),
                row("https", 443, Protocol::Tcp),
                row("ssh", 22, Protocol::Tcp),
                row("dns-udp-only", 53, Protocol::Udp),
            ],
            SourceInfo::default(),
        ));
        let checked = Registry::new(
            vec![
                row("corp-api", 8080, Protocol::Tcp),
                row("https", 8443, Protocol::Tcp),
                row("SSH", 22, Protocol::Tcp),
                row("corp-dns", 53, Protocol::Tcp),
            ],
            SourceInfo::default(),
        );
        let found = conflicts(&checked, &reference);
        let summary: Vec<String> = found
            .iter()
            .map(|c| match c {
                Conflict::Port {
                    record,
                    port,
                    reference,
                } => format!(
                    "port {port}: {} vs {}",
                    record.name.as_deref().unwrap_or("-"),
                    reference[0].name.as_deref().unwrap_or("-")
                ),
                Conflict::Name { record, reference } => format!(
                    "name {}: registered on {}",
                    record.name.as_deref().unwrap_or("-"),
                    reference[0].ports.map_or(0, |p| p.start)
                ),
            })
            .collect();
        // 22/tcp agrees (case-insensitively); 53 is udp only in the
        // reference, so corp-dns on 53/tcp takes nobody's port.
        assert_eq!(
            summary,
            [
                "port 8080: corp-api vs http-alt",
                "name https: registered on 443"
            ]
        );
    }
}
