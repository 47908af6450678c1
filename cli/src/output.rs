//! Rendering records and registry information as an aligned table, JSON
//! lines or CSV. Every write error (including a closed pipe) is returned,
//! never ignored: `main` turns a broken pipe into a quiet exit.
//!
//! Text from a data file is untrusted: in table and CSV output every
//! control character (C0, DEL, C1) is written as an escape
//! ([`escape_controls`]), so a description holding ESC or BEL cannot drive
//! the terminal. JSON output is escaped by `serde_json` itself.
//!
//! A record has one JSON shape everywhere (lookup, search, list, watch,
//! diff, export): the proto3 JSON mapping of `portolan.v1.Record`
//! ([`record_json`]), what grpcurl prints.

use std::borrow::Cow;
use std::io::{self, Write};

use portolan_client::{Described, RegistryInfo};
use portolan_registry::mesh::{IstioDefault, LinkerdDefault, Stall};
use portolan_registry::{PortDescription, Record, RecordKey};
use serde_json::{Value, json};

use crate::args::OutputFormat;

/// The record as JSON: the proto3 canonical JSON mapping of
/// `portolan.v1.Record` (pbjson's serde impl of the generated message),
/// exactly what grpcurl and `google.protobuf.json_format` print for the
/// same message. The record's `key` is absent: lookups and scans answer
/// records (a key is printed where a change is about one: diff, Watch).
pub fn record_json(record: &Record) -> Value {
    to_value(&portolan::convert::unkeyed_record_to_pb(record))
}

/// A record key as JSON: the proto3 JSON of `portolan.v1.RecordKey`.
pub fn key_json(key: &RecordKey) -> Value {
    to_value(&portolan::convert::key_to_pb(key))
}

/// A generated message as a JSON value. pbjson's impls write only strings,
/// numbers, booleans, arrays and objects, which cannot fail to convert.
fn to_value(message: &impl serde::Serialize) -> Value {
    serde_json::to_value(message)
        .unwrap_or_else(|e| json!({ "error": format!("cannot write JSON: {e}") }))
}

/// One difference between two registries, as `portolan diff` prints it.
#[derive(Debug)]
pub enum Change<'a> {
    /// A record whose key is new.
    Added(&'a RecordKey, &'a Record),
    /// A record whose key is gone.
    Removed(&'a RecordKey, &'a Record),
    /// A record whose content changed: before, after.
    Changed(&'a RecordKey, &'a Record, &'a Record),
}

/// The fields of [`record_json`] whose values differ: (field, old, new).
pub fn changed_fields(before: &Record, after: &Record) -> Vec<(String, Value, Value)> {
    let (Value::Object(before), Value::Object(after)) = (record_json(before), record_json(after))
    else {
        return Vec::new();
    };
    before
        .into_iter()
        .filter_map(|(field, old)| {
            let new = after.get(&field).cloned().unwrap_or(Value::Null);
            (old != new).then_some((field, old, new))
        })
        .collect()
}

/// Writes `changes`: a JSON object per change, `change,key,field,old,new`
/// CSV rows, or `+`/`-`/`~` lines for people.
pub fn write_changes(
    out: &mut dyn Write,
    format: OutputFormat,
    changes: &[Change<'_>],
) -> io::Result<()> {
    match format {
        OutputFormat::Json => changes.iter().try_for_each(|change| {
            serde_json::to_writer(&mut *out, &change_json(change))?;
            out.write_all(b"\n")
        }),
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            if headers() {
                w.write_record(["change", "key", "field", "old", "new"])
                    .map_err(csv_io)?;
            }
            for (kind, key, field, old, new) in changes.iter().flat_map(change_rows) {
                let cells = [
                    kind,
                    key.as_str(),
                    field.as_str(),
                    old.as_str(),
                    new.as_str(),
                ];
                w.write_record(cells.map(csv_cell).iter().map(|c| c.as_bytes()))
                    .map_err(csv_io)?;
            }
            w.flush()
        }
        OutputFormat::Table | OutputFormat::Services => {
            for (kind, key, field, old, new) in changes.iter().flat_map(change_rows) {
                let line = match kind {
                    "added" => format!("+ {key}  {}", one_line(&new)),
                    "removed" => format!("- {key}  {}", one_line(&old)),
                    _ => format!("~ {key}  {field}: {} -> {}", one_line(&old), one_line(&new)),
                };
                writeln!(out, "{line}")?;
            }
            Ok(())
        }
    }
}

/// Where a record sits, as `name port/protocol` (`port-end` for a range).
fn place(record: &Record) -> String {
    format!(
        "{} {}/{}",
        record.name.as_deref().map_or_else(|| "-".into(), one_line),
        record.ports.map_or_else(|| "-".into(), |p| p.to_string()),
        record.protocol.as_ref().map_or("any", |p| p.as_str())
    )
}

/// Writes the conflicts of `portolan check --against`: JSON lines, CSV rows
/// (`conflict,record,port,reference`), or one line each for people.
pub fn write_conflicts(
    out: &mut dyn Write,
    format: OutputFormat,
    conflicts: &[portolan_registry::conflicts::Conflict<'_>],
) -> io::Result<()> {
    use portolan_registry::conflicts::Conflict;
    fn parts<'c>(
        c: &'c Conflict<'_>,
    ) -> (
        &'static str,
        &'c Record,
        Option<u16>,
        &'c [std::sync::Arc<Record>],
    ) {
        match c {
            Conflict::Port {
                record,
                port,
                reference,
            } => ("port", record, Some(*port), reference),
            Conflict::Name { record, reference } => ("name", record, None, reference),
        }
    }
    if format == OutputFormat::Csv {
        let mut w = csv::Writer::from_writer(&mut *out);
        if headers() {
            w.write_record(["conflict", "record", "port", "reference"])
                .map_err(csv_io)?;
        }
        for c in conflicts {
            let (kind, record, port, reference) = parts(c);
            let reference: Vec<String> = reference.iter().map(|r| place(r)).collect();
            let cells = [
                kind.to_string(),
                place(record),
                port.map(|p| p.to_string()).unwrap_or_default(),
                reference.join("; "),
            ];
            w.write_record(cells.iter().map(|c| csv_cell(c).into_owned().into_bytes()))
                .map_err(csv_io)?;
        }
        return w.flush();
    }
    for c in conflicts {
        let (kind, record, port, reference) = parts(c);
        if format == OutputFormat::Json {
            let value = json!({
                "conflict": kind,
                "record": record_json(record),
                "port": port,
                "reference": reference.iter().map(|r| record_json(r)).collect::<Vec<_>>(),
            });
            serde_json::to_writer(&mut *out, &value)?;
            out.write_all(b"\n")?;
            continue;
        }
        let theirs: Vec<String> = reference.iter().map(|r| place(r)).collect();
        match port {
            Some(port) => writeln!(
                out,
                "port {port}: {} here; the reference assigns it to {}",
                place(record),
                theirs.join(", ")
            )?,
            None => writeln!(
                out,
                "name: {} here; the reference registers it on {}",
                place(record),
                theirs.join(", ")
            )?,
        }
    }
    Ok(())
}

fn change_json(change: &Change<'_>) -> Value {
    match change {
        Change::Added(key, record) => {
            json!({"change": "added", "key": key_json(key), "record": record_json(record)})
        }
        Change::Removed(key, record) => {
            json!({"change": "removed", "key": key_json(key), "record": record_json(record)})
        }
        Change::Changed(key, before, after) => {
            let fields: serde_json::Map<String, Value> = changed_fields(before, after)
                .into_iter()
                .map(|(field, old, new)| (field, json!({"old": old, "new": new})))
                .collect();
            json!({"change": "changed", "key": key_json(key), "fields": fields})
        }
    }
}

/// One row per added or removed record (its description) and per changed
/// field: (change, key, field, old, new).
fn change_rows(change: &Change<'_>) -> Vec<(&'static str, String, String, String, String)> {
    let text = |value: &Value| match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match change {
        Change::Added(key, record) => vec![(
            "added",
            key.to_string(),
            "description".into(),
            String::new(),
            record.description.clone(),
        )],
        Change::Removed(key, record) => vec![(
            "removed",
            key.to_string(),
            "description".into(),
            record.description.clone(),
            String::new(),
        )],
        Change::Changed(key, before, after) => changed_fields(before, after)
            .into_iter()
            .map(|(field, old, new)| ("changed", key.to_string(), field, text(&old), text(&new)))
            .collect(),
    }
}

/// `text` with every control character (C0 `U+0000`-`U+001F`, DEL
/// `U+007F`, C1 `U+0080`-`U+009F`) written as an escape: `\x1b` for the
/// ASCII ones, `\u{85}` for C1. Characters listed in `keep` are left as
/// they are (CSV keeps line feeds, which its quoting carries).
///
/// Borrowed when there is nothing to escape, the common case.
pub fn escape_controls<'a>(text: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !text.chars().any(|c| c.is_control() && !keep.contains(&c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !c.is_control() || keep.contains(&c) {
            out.push(c);
        } else if c.is_ascii() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
    }
    Cow::Owned(out)
}

/// `text` on one line for people: runs of whitespace (newlines, tabs)
/// become one space, other control characters are escaped.
pub fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    escape_controls(&joined, &[]).into_owned()
}

/// A CSV cell: control characters escaped except the line feed, which the
/// CSV quoting carries (the IANA registry's multi-line descriptions).
fn csv_cell(text: &str) -> Cow<'_, str> {
    escape_controls(text, &['\n'])
}

fn columns(record: &Record) -> [String; 5] {
    [
        record.name.as_deref().map_or_else(|| "-".into(), one_line),
        record.ports.map_or_else(|| "-".into(), |p| p.to_string()),
        record
            .protocol
            .as_ref()
            .map_or_else(|| "any".into(), |p| p.to_string()),
        record.state.as_str().to_string(),
        one_line(&record.description),
    ]
}

const HEADER: [&str; 5] = ["NAME", "PORT", "PROTO", "STATE", "DESCRIPTION"];

/// Whether table and CSV output start with a header line (`--no-headers`
/// turns it off); set once by `main` before any output.
static HEADERS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Sets whether table and CSV output have a header line.
pub fn set_headers(on: bool) {
    HEADERS.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn headers() -> bool {
    HEADERS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A record as services(5) lines, as `getent services` prints them: `name
/// port/protocol aliases`, one line per protocol (a row naming none stands
/// for tcp and udp); a range as `start-end`. Rows without a name or a port
/// have no such line.
fn services_lines(record: &Record) -> Vec<String> {
    let (Some(name), Some(ports)) = (&record.name, record.ports) else {
        return Vec::new();
    };
    let protocols = match &record.protocol {
        Some(p) => vec![p.as_str().to_string()],
        None => vec!["tcp".to_string(), "udp".to_string()],
    };
    protocols
        .into_iter()
        .map(|protocol| {
            let mut line = format!("{:<21} {ports}/{protocol}", one_line(name));
            for alias in &record.aliases {
                line.push(' ');
                line.push_str(&one_line(alias));
            }
            line
        })
        .collect()
}

/// Writes records in `format`.
pub fn write_records<'a>(
    out: &mut dyn Write,
    format: OutputFormat,
    records: impl IntoIterator<Item = &'a Record>,
) -> io::Result<()> {
    match format {
        OutputFormat::Json => {
            for r in records {
                serde_json::to_writer(&mut *out, &record_json(r))?;
                out.write_all(b"\n")?;
            }
        }
        OutputFormat::Services => {
            for r in records {
                for line in services_lines(r) {
                    writeln!(out, "{line}")?;
                }
            }
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            if headers() {
                w.write_record([
                    "name",
                    "port",
                    "port_end",
                    "protocol",
                    "state",
                    "description",
                ])
                .map_err(csv_io)?;
            }
            for r in records {
                let row = [
                    r.name
                        .as_deref()
                        .map(csv_cell)
                        .unwrap_or_default()
                        .into_owned(),
                    r.ports.map(|p| p.start.to_string()).unwrap_or_default(),
                    r.ports.map(|p| p.end.to_string()).unwrap_or_default(),
                    r.protocol
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    r.state.as_str().to_string(),
                    csv_cell(&r.description).into_owned(),
                ];
                w.write_record(&row).map_err(csv_io)?;
            }
            w.flush()?;
        }
        OutputFormat::Table => {
            let records: Vec<&Record> = records.into_iter().collect();
            // A LAYER column first when any record comes from a named layer.
            let layered = records.iter().any(|r| !r.layer.is_empty());
            let with_layer = |record: &Record, cells: [String; 5]| -> Vec<String> {
                let layer = layered.then(|| one_line(&record.layer));
                layer.into_iter().chain(cells).collect()
            };
            let rows: Vec<Vec<String>> =
                records.iter().map(|r| with_layer(r, columns(r))).collect();
            let header_cells = HEADER.map(str::to_string);
            let header = if layered {
                std::iter::once("LAYER".to_string())
                    .chain(header_cells)
                    .collect()
            } else {
                header_cells.to_vec()
            };
            let mut widths: Vec<usize> = header.iter().map(String::len).collect();
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let header = headers().then_some(&header);
            for row in header.into_iter().chain(rows.iter()) {
                let mut line = String::new();
                for (i, cell) in row.iter().enumerate() {
                    if i + 1 == row.len() {
                        line.push_str(cell);
                    } else {
                        line.push_str(cell);
                        let pad = widths[i] - cell.chars().count() + 2;
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
                writeln!(out, "{}", line.trim_end())?;
            }
        }
    }
    Ok(())
}

fn csv_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// An RFC 3339 UTC time to the second (`2026-12-05T14:30:26Z`), or empty.
fn time_text(t: Option<std::time::SystemTime>) -> String {
    t.map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_default()
}

/// Writes registry information.
pub fn write_info(
    out: &mut dyn Write,
    format: OutputFormat,
    info: &RegistryInfo,
) -> io::Result<()> {
    let value = json!({
        "version": info.version,
        "state_id": format!("{:016x}", info.state_id),
        "content_hash": info.content_hash,
        "source_path": info.source_path,
        "source_format": info.source_format,
        "record_count": info.record_count,
        "records_by_state": info.records_by_state,
        "records_by_protocol": info.records_by_protocol,
        "registry_updated": info.registry_updated,
        "loaded_at": time_text(info.loaded_at),
        "last_reload_outcome": info.last_reload_outcome.map(|o| o.as_str()),
        "last_reload_error": info.last_reload_error,
        "last_reload_at": time_text(info.last_reload_at),
        "diagnostic_count": info.diagnostic_count,
        "layers": info.layers.iter().map(|l| json!({
            "name": l.name,
            "rank": l.rank,
            "source_path": l.source_path,
            "source_format": l.source_format,
            "content_hash": l.content_hash,
            "record_count": l.record_count,
            "registry_updated": l.registry_updated,
            "loaded_at": time_text(l.loaded_at),
            "last_reload_outcome": l.last_reload_outcome.map(|o| o.as_str()),
            "last_reload_error": l.last_reload_error,
            "last_reload_at": time_text(l.last_reload_at),
            "diagnostic_count": l.diagnostic_count,
        })).collect::<Vec<_>>(),
        "mesh_hints": info.mesh_hints.as_ref().map(|h| json!({
            "source": h.source,
            "entry_count": h.entry_count,
            "content_hash": h.content_hash,
            "loaded_at": time_text(h.loaded_at),
            "last_reload_outcome": h.last_reload_outcome.map(|o| o.as_str()),
            "last_reload_error": h.last_reload_error,
            "last_reload_at": time_text(h.last_reload_at),
        })),
    });
    write_object(out, format, &value)
}

/// Writes one JSON object as JSON, as `key,value` CSV or as aligned
/// `key  value` lines (nested maps flattened as `key.sub`).
pub fn write_object(out: &mut dyn Write, format: OutputFormat, value: &Value) -> io::Result<()> {
    if format == OutputFormat::Json {
        serde_json::to_writer(&mut *out, value)?;
        return out.write_all(b"\n");
    }
    let mut pairs = Vec::new();
    flatten("", value, &mut pairs);
    if format == OutputFormat::Csv {
        let mut w = csv::Writer::from_writer(&mut *out);
        if headers() {
            w.write_record(["key", "value"]).map_err(csv_io)?;
        }
        for (k, v) in &pairs {
            w.write_record([csv_cell(k), csv_cell(v)].iter().map(|c| c.as_bytes()))
                .map_err(csv_io)?;
        }
        return w.flush();
    }
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (one_line(k), one_line(v)))
        .collect();
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in &pairs {
        writeln!(out, "{k:<width$}  {v}")?;
    }
    Ok(())
}

/// `portolan describe` as one JSON object: the proto3 JSON mapping of
/// `portolan.v1.DescribePortResponse` (records without keys), exactly what
/// grpcurl prints for DescribePort.
pub fn description_json(d: &Described) -> Value {
    to_value(&portolan::convert::description_to_pb(
        &d.description,
        d.version,
        d.content_id.0,
    ))
}

fn istio_default_text(default: IstioDefault) -> &'static str {
    match default {
        IstioDefault::Tcp => "tcp: in wellKnownPorts, plain TCP, no sniffing",
        IstioDefault::Sniff => "sniff: automatic protocol selection",
    }
}

fn linkerd_default_text(default: LinkerdDefault) -> &'static str {
    match default {
        LinkerdDefault::Opaque => "opaque: in proxy.opaquePorts, TCP without detection",
        LinkerdDefault::Skip => {
            "skip: in the proxy-init ignore lists, bypasses the proxy (no mTLS)"
        }
        LinkerdDefault::Detect => {
            "detect: protocol detection, waiting up to 10 s for the client's bytes"
        }
    }
}

fn stall_text(stall: Stall, mesh: &str) -> String {
    match stall {
        Stall::Yes => {
            format!("yes: the server speaks first while {mesh} waits for the client's bytes")
        }
        Stall::No => "no".into(),
        Stall::Unknown => format!(
            "unknown: {mesh} waits for the client's bytes; whether the server speaks first is not known"
        ),
    }
}

/// Writes what `portolan describe` found: JSON as [`description_json`],
/// CSV as its flattened `key,value` pairs, otherwise the records as a
/// table followed by the hint and each mesh's advice as aligned
/// `label  value` lines.
pub fn write_description(
    out: &mut dyn Write,
    format: OutputFormat,
    described: &Described,
) -> io::Result<()> {
    if matches!(format, OutputFormat::Json | OutputFormat::Csv) {
        return write_object(out, format, &description_json(described));
    }
    let d: &PortDescription = &described.description;
    let place = match &d.protocol {
        Some(p) => format!("{}/{p}", d.port),
        None => d.port.to_string(),
    };
    if d.records.is_empty() {
        writeln!(out, "No registry record for port {place}.")?;
    } else {
        write_records(out, OutputFormat::Table, d.records.iter().map(|r| &**r))?;
    }
    writeln!(out)?;
    let or_nothing =
        |v: Option<&str>, nothing: &str| v.map_or_else(|| nothing.to_string(), one_line);
    let mut rows: Vec<(&str, String)> = Vec::new();
    match &d.hint {
        Some(h) => {
            rows.push(("application", one_line(&h.application)));
            let first = match &h.server_speaks_first_source {
                Some(source) => format!("{} ({source})", h.server_speaks_first),
                None => h.server_speaks_first.to_string(),
            };
            rows.push(("server speaks first", first));
            rows.push((
                "implicit TLS",
                if h.implicit_tls { "yes" } else { "no" }.into(),
            ));
            if let (Some(note), Some(source)) = (&h.sniffing_note, &h.sniffing_note_source) {
                rows.push(("sniffing note", format!("{} ({source})", one_line(note))));
            }
            rows.push((
                "appProtocol",
                or_nothing(h.app_protocol.as_deref(), "none standard"),
            ));
        }
        None => rows.push(("mesh hint", "none for this port".into())),
    }
    match &d.meshes {
        Some(meshes) => {
            let istio = &meshes.istio;
            rows.push(("Istio default", istio_default_text(istio.default).into()));
            rows.push(("Istio stalls", stall_text(istio.stalls, "Istio")));
            if let Some(name) = &istio.port_name {
                rows.push(("Istio port name", one_line(name)));
            }
            if let (Some(app), Some(read)) = (&istio.app_protocol, istio.reads_app_protocol_as) {
                rows.push((
                    "Istio reads",
                    format!("appProtocol {} as {read}", one_line(app)),
                ));
            }
            if d.hint.is_some() {
                rows.push((
                    "Istio fix",
                    or_nothing(istio.fix.as_deref(), "nothing needed"),
                ));
            }
            if let Some(source) = &istio.source {
                rows.push(("Istio source", one_line(source)));
            }
            let linkerd = &meshes.linkerd;
            rows.push((
                "Linkerd default",
                linkerd_default_text(linkerd.default).into(),
            ));
            rows.push(("Linkerd stalls", stall_text(linkerd.stalls, "Linkerd")));
            if let (Some(app), Some(read)) = (&linkerd.app_protocol, linkerd.reads_app_protocol_as)
            {
                rows.push((
                    "Linkerd reads",
                    format!("appProtocol {} as {read}", one_line(app)),
                ));
            }
            if d.hint.is_some() {
                rows.push((
                    "Linkerd fix",
                    or_nothing(linkerd.annotation.as_deref(), "nothing needed"),
                ));
            }
            if let Some(source) = &linkerd.source {
                rows.push(("Linkerd source", one_line(source)));
            }
        }
        None => rows.push((
            "meshes",
            "not applicable: Istio and Linkerd only sniff TCP".into(),
        )),
    }
    if let Some(notes) = d.hint.as_ref().and_then(|h| h.notes.as_deref()) {
        rows.push(("notes", one_line(notes)));
    }
    for name in &d.names {
        let verdict = match name.kubernetes {
            None => "valid Kubernetes port name".to_string(),
            Some(problem) => format!("not a Kubernetes port name: {problem}"),
        };
        rows.push(("port name", format!("{}: {verdict}", one_line(&name.name))));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (label, value) in &rows {
        writeln!(out, "{label:<width$}  {value}")?;
    }
    Ok(())
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        // Objects in a list (the layers of `info`): `key.0.field`, ...
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), item, out);
            }
        }
        Value::Array(items) => {
            let text: Vec<String> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push((prefix.to_string(), text.join("; ")));
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => out.push((prefix.to_string(), String::new())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_registry::{PortRange, Protocol};

    fn record() -> Record {
        Record {
            name: Some("https".into()),
            ports: Some(PortRange::single(443)),
            protocol: Some(Protocol::Tcp),
            description: "http protocol over TLS/SSL".into(),
            ..Record::default()
        }
    }

    #[test]
    fn table_is_aligned() {
        let mut out = Vec::new();
        let r = record();
        write_records(&mut out, OutputFormat::Table, [&r]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].find("PORT"), lines[1].find("443"));
    }

    /// The proto3 JSON mapping: lowerCamelCase names, enums by their
    /// proto names, default values (empty strings, zero, empty lists)
    /// left out.
    #[test]
    fn json_is_the_proto3_mapping_of_the_record() {
        let v = record_json(&record());
        assert_eq!(
            v,
            json!({
                "name": "https",
                "port": 443,
                "portEnd": 443,
                "protocol": "PROTOCOL_TCP",
                "protocolText": "tcp",
                "description": "http protocol over TLS/SSL",
                "state": "RECORD_STATE_ASSIGNED",
                "portClass": "PORT_CLASS_SYSTEM",
            })
        );
        let mut ranged = record();
        ranged.ports = PortRange::new(6000, 6063);
        ranged.protocol = Some(Protocol::Udp);
        let key = RecordKey::of(&ranged, 1);
        assert_eq!(
            key_json(&key),
            json!({"name": "https", "port": 6000, "portEnd": 6063, "protocol": "PROTOCOL_UDP", "protocolText": "udp", "ordinal": 1})
        );
    }
}
