//! Writing a registry back out: the official IANA CSV ([`to_csv`]), a
//! complete services(5) file ([`to_services`]). (JSON is the contract's
//! proto3 mapping, written by the CLI from the generated messages.)
//!
//! [`to_csv`] is the inverse of the CSV parser: parsing its output gives
//! records equal to those of any registry read from an IANA CSV (people
//! are written by ID only, as the CSV has no people table).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{Person, Protocol};
use crate::parse::csv::HEADER;
use crate::registry::Registry;

/// Writes the registry as the official 12-column IANA CSV: the header, then
/// one CRLF-terminated record per row, fields quoted only when they hold a
/// comma, a quote or a line break (quotes doubled). Assignees and contacts
/// are written as concatenated `[ID]`s, references as `[reference]`s.
///
/// Protocols other than tcp/udp/sctp/dccp (e.g. `ddp` from an
/// `/etc/services` file) are written as they are; the IANA CSV never holds
/// them, so the CSV parser refuses such a file.
pub fn to_csv(registry: &Registry) -> String {
    let mut out = String::with_capacity(registry.len() * 96 + 256);
    out.push_str(&HEADER.join(","));
    out.push_str("\r\n");
    let mut field = String::new();
    for r in &registry.records {
        let ports = r.ports.map(|p| p.to_string()).unwrap_or_default();
        let columns: [&dyn Fn(&mut String); 12] = [
            &|f| f.push_str(r.name.as_deref().unwrap_or("")),
            &|f| f.push_str(&ports),
            &|f| f.push_str(r.protocol.as_ref().map_or("", Protocol::as_str)),
            &|f| f.push_str(&r.description),
            &|f| write_people(f, &r.assignees),
            &|f| write_people(f, &r.contacts),
            &|f| f.push_str(r.registration_date.as_ref().map_or("", |d| &d.text)),
            &|f| f.push_str(r.modification_date.as_ref().map_or("", |d| &d.text)),
            &|f| write_bracketed(f, r.references.iter().map(String::as_str)),
            &|f| f.push_str(r.service_code.as_deref().unwrap_or("")),
            &|f| f.push_str(r.unauthorized_use.as_deref().unwrap_or("")),
            &|f| f.push_str(r.notes.as_deref().unwrap_or("")),
        ];
        for (i, write) in columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field.clear();
            write(&mut field);
            push_csv_field(&mut out, &field);
        }
        out.push_str("\r\n");
    }
    out
}

fn write_people(out: &mut String, people: &[Person]) {
    write_bracketed(out, people.iter().map(|p| p.id.as_str()));
}

fn write_bracketed<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    for item in items {
        out.push('[');
        out.push_str(item);
        out.push(']');
    }
}

fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Writes a complete services(5) file (`/etc/services`).
///
/// Decisions, so that `getservbyname`/`getservbyport` answer what the
/// registry says:
/// * only rows with both a name and a port are written (a services file
///   cannot express nameless or port-less rows);
/// * a row without protocol applies to every protocol and is written for
///   both tcp and udp;
/// * ranges are expanded, one line per port (x11 `6000-6063` gives 64
///   lines per protocol), as nmap-services and iana-etc do;
/// * one line per (port, protocol): where several names share it, the
///   first in registry order is the name and the others (plus the rows'
///   own aliases) follow as aliases, each name once;
/// * the comment is the first row's description, on one line;
/// * lines are sorted by port, then protocol (tcp, udp, sctp, dccp, others).
pub fn to_services(registry: &Registry) -> String {
    struct Entry<'a> {
        names: Vec<&'a str>,
        comment: &'a str,
    }
    let mut entries: BTreeMap<(u16, Protocol), Entry<'_>> = BTreeMap::new();
    const BOTH: [Protocol; 2] = [Protocol::Tcp, Protocol::Udp];
    for r in &registry.records {
        let (Some(name), Some(ports)) = (r.name.as_deref(), r.ports) else {
            continue;
        };
        if !is_services_token(name) {
            continue;
        }
        let protocols: &[Protocol] = match &r.protocol {
            Some(p) => std::slice::from_ref(p),
            None => &BOTH,
        };
        for port in ports.start..=ports.end {
            for protocol in protocols {
                let entry = entries
                    .entry((port, protocol.clone()))
                    .or_insert_with(|| Entry {
                        names: Vec::new(),
                        comment: &r.description,
                    });
                for n in std::iter::once(name).chain(r.aliases.iter().map(String::as_str)) {
                    if is_services_token(n) && !entry.names.contains(&n) {
                        entry.names.push(n);
                    }
                }
            }
        }
    }
    let mut out = String::with_capacity(entries.len() * 48 + 256);
    out.push_str("# Network services, Internet style (services(5)).\n");
    if let Some(updated) = &registry.source.updated {
        let _ = writeln!(out, "# Registry last updated {updated}.");
    }
    let _ = writeln!(
        out,
        "# Written by portolan from {} ({} records).",
        if registry.source.path.is_empty() {
            "a registry"
        } else {
            &registry.source.path
        },
        registry.len()
    );
    for ((port, protocol), entry) in &entries {
        let Some((name, aliases)) = entry.names.split_first() else {
            continue;
        };
        let _ = write!(out, "{name}\t{port}/{protocol}");
        if !aliases.is_empty() {
            out.push('\t');
            out.push_str(&aliases.join(" "));
        }
        let comment = one_line(entry.comment);
        if !comment.is_empty() {
            let _ = write!(out, "\t# {comment}");
        }
        out.push('\n');
    }
    out
}

/// Whether a name can stand in a services(5) line (no whitespace, no `#`).
fn is_services_token(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '#')
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortRange, Record, RecordState};
    use crate::parse::{self, Format};
    use crate::registry::SourceInfo;

    fn record(name: Option<&str>, ports: Option<PortRange>, protocol: Option<Protocol>) -> Record {
        Record {
            name: name.map(str::to_string),
            ports,
            protocol,
            description: "Desc, with \"quotes\"\nand a line".into(),
            ..Record::default()
        }
    }

    #[test]
    fn csv_round_trip() {
        let mut r = record(Some("x11"), PortRange::new(6000, 6063), Some(Protocol::Tcp));
        r.assignees = vec![Person::from_id("A_B"), Person::from_id("C")];
        r.contacts = vec![Person::from_id("A_B")];
        r.references = vec!["RFC1".into(), "free text, with <x&y> 15 June 2009".into()];
        r.notes = Some("note".into());
        let reg = Registry::new(vec![r, record(None, None, None)], SourceInfo::default());
        let csv = to_csv(&reg);
        assert!(csv.starts_with("Service Name,Port Number,"));
        assert!(csv.contains("[A_B][C],[A_B]"));
        assert!(csv.ends_with("\r\n"));
        let back = parse::parse(csv.as_bytes(), Some(Format::IanaCsv))
            .expect("parses")
            .registry;
        assert_eq!(back.records, reg.records);
    }

    #[test]
    fn services_lines() {
        let mut http = record(
            Some("http"),
            Some(PortRange::single(80)),
            Some(Protocol::Tcp),
        );
        http.description = "World Wide Web HTTP".into();
        let www = record(
            Some("www"),
            Some(PortRange::single(80)),
            Some(Protocol::Tcp),
        );
        let both = record(Some("boe-cms"), Some(PortRange::single(6400)), None);
        let range = record(Some("r"), PortRange::new(10, 12), Some(Protocol::Udp));
        let nameless = Record {
            state: RecordState::Unassigned,
            ..record(None, Some(PortRange::single(5)), None)
        };
        let reg = Registry::new(
            vec![both, www.clone(), http, www, range, nameless],
            SourceInfo::default(),
        );
        let text = to_services(&reg);
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "r\t10/udp\t# Desc, with \"quotes\" and a line",
                "r\t11/udp\t# Desc, with \"quotes\" and a line",
                "r\t12/udp\t# Desc, with \"quotes\" and a line",
                "www\t80/tcp\thttp\t# Desc, with \"quotes\" and a line",
                "boe-cms\t6400/tcp\t# Desc, with \"quotes\" and a line",
                "boe-cms\t6400/udp\t# Desc, with \"quotes\" and a line",
            ]
        );
        let back = parse::parse(text.as_bytes(), Some(Format::Services))
            .expect("parses")
            .registry;
        assert_eq!(back.len(), 6);
        assert_eq!(back.records[3].aliases, ["http"]);
    }
}
