//! Parser for the official IANA XML (`service-names-port-numbers.xml`),
//! read with quick-xml's event reader.
//!
//! Mapping, checked against the CSV of the same edition:
//! * `<record date="…" updated="…">` → registration / modification date;
//! * `<name>`, `<protocol>`, `<number>` (a port or `N-M` range);
//! * `<description>` and `<note>` are mixed content: `<br/>` becomes a
//!   line break (runs of breaks collapse to one, as the CSV writes them) and
//!   an inline `<xref>` is rendered `[ID]` the way the CSV renders it
//!   (`rfc9483` → `[RFC9483]`); the text is trimmed;
//! * `<assignee><xref type="person"/></assignee>` → assignees, and the bare
//!   `<xref type="person"/>` children of the record → contacts; a record
//!   without `<assignee>` lists the same person(s) as assignee and contact
//!   (this is how the CSV of the same edition reads, row for row);
//! * other bare `<xref>`s → references: the xref's text when it has one
//!   (`RFC8765, Section 6.1`, `TR-352`), else its `data` (`rfc` uppercased
//!   to `RFC6335` as the CSV writes it);
//! * `<sc>` → service code, `<unauthorized>` → unauthorized use;
//! * the `<people>` table (`<person id>` with `<name>`, `<org>`, `<uri>`,
//!   `<updated>`) resolves assignees and contacts;
//! * the registry's own `<updated>` → [`SourceInfo::updated`].
//!
//! Child order inside a record is not relied upon. A file that ends with
//! elements still open is [`ParseError::Truncated`], naming the line of the
//! open `<record>` (or of the innermost open element outside records).

use std::collections::HashMap;
use std::sync::Arc;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::csv::{LineCounter, parse_ports, parse_protocol_strict};
use super::limits::Budget;
use super::{Diagnostic, Format, ParseError, ParseLimits, Parsed};
use crate::model::{Person, Record, RecordState, RegistryDate};
use crate::registry::{Registry, SourceInfo};

/// Which text a record's child element feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Protocol,
    Number,
    Description,
    Note,
    ServiceCode,
    Unauthorized,
    /// Any other element: text ignored.
    Ignored,
}

/// Which text a person's child element feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PersonField {
    Name,
    Org,
    Uri,
    Updated,
    Ignored,
}

/// A bare `<xref>` of a record.
#[derive(Debug, Default)]
struct Xref {
    kind: String,
    data: Option<String>,
    text: String,
}

#[derive(Debug, Default)]
struct RecordBuilder {
    line: usize,
    name: Option<String>,
    protocol: String,
    number: String,
    description: String,
    note: Option<String>,
    service_code: Option<String>,
    unauthorized: Option<String>,
    date: Option<String>,
    updated: Option<String>,
    assignees: Vec<String>,
    bare_people: Vec<String>,
    references: Vec<String>,
    has_assignee_element: bool,
}

#[derive(Debug, Default)]
struct PersonBuilder {
    id: String,
    name: String,
    org: String,
    uri: String,
    updated: String,
}

/// Parser state between events.
#[derive(Debug, Default)]
struct State {
    /// Open elements (local names), with the line each started on.
    stack: Vec<(Box<str>, usize)>,
    record: Option<RecordBuilder>,
    /// The record child being read, the stack depth it opened at, and its
    /// text so far.
    field: Option<(Field, usize, String)>,
    /// Inside a record field: where an inline `<xref>` started in the text,
    /// and its rendered ID.
    inline_xref: Option<(usize, String)>,
    /// A bare `<xref>` being read (has text content), with its depth.
    xref: Option<(Xref, usize)>,
    in_assignee: bool,
    person: Option<PersonBuilder>,
    person_field: Option<(PersonField, usize, String)>,
    /// Text of the registry's own `<updated>`.
    registry_updated: Option<String>,
    reading_registry_updated: bool,
    records: Vec<RecordBuilder>,
    people: HashMap<String, Person>,
}

/// Deepest element nesting accepted (the real file nests 5 deep); the
/// open-element stack is bounded by it.
pub const MAX_DEPTH: usize = 64;

/// Parses the whole text of an IANA XML file within the default
/// [`ParseLimits`].
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    parse_with_limits(text, &ParseLimits::default())
}

/// Parses the whole text of an IANA XML file within `limits`.
pub fn parse_with_limits(text: &str, limits: &ParseLimits) -> Result<Parsed, ParseError> {
    let mut budget = Budget::new(limits);
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut lines = LineCounter::new(text.as_bytes());
    let mut st = State::default();
    let mut root_seen = false;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                let line =
                    lines.line_at(usize::try_from(reader.error_position()).unwrap_or(usize::MAX));
                let at_eof = reader.buffer_position() as usize >= text.len();
                let reason = e.to_string();
                return Err(match e {
                    quick_xml::Error::Syntax(_) if at_eof => ParseError::Truncated {
                        line: open_line(&st).unwrap_or(line),
                        reason,
                    },
                    _ => ParseError::WrongFormat {
                        format: Format::IanaXml,
                        line,
                        reason,
                    },
                });
            }
        };
        let line = lines.line_at(usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX));
        match event {
            Event::Start(start) => {
                let name = local_name(&start);
                if !root_seen {
                    check_root(&name, line)?;
                    root_seen = true;
                }
                if st.stack.len() >= MAX_DEPTH {
                    return Err(wrong(
                        line,
                        format!("elements nested more than {MAX_DEPTH} deep"),
                    ));
                }
                st.open(&name, &start, line)?;
                st.stack.push((name.into_boxed_str(), line));
            }
            Event::Empty(start) => {
                let name = local_name(&start);
                if !root_seen {
                    check_root(&name, line)?;
                    root_seen = true;
                }
                st.open(&name, &start, line)?;
                st.close(&name, &mut budget)?;
            }
            Event::End(end) => {
                let name = String::from_utf8_lossy(end.local_name().as_ref()).into_owned();
                st.stack.pop();
                st.close(&name, &mut budget)?;
            }
            Event::Text(t) => {
                let content = t.xml10_content().map_err(|e| wrong(line, e.to_string()))?;
                st.text(&content);
            }
            Event::CData(t) => {
                let content = t.decode().map_err(|e| wrong(line, e.to_string()))?;
                st.text(&content);
            }
            Event::GeneralRef(r) => {
                if let Some(c) = r
                    .resolve_char_ref()
                    .map_err(|e| wrong(line, e.to_string()))?
                {
                    st.text(c.encode_utf8(&mut [0; 4]));
                } else {
                    let name = r.decode().map_err(|e| wrong(line, e.to_string()))?;
                    match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => st.text(s),
                        None => return Err(wrong(line, format!("unknown entity &{name};"))),
                    }
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if let Some(line) = open_line(&st) {
        return Err(ParseError::Truncated {
            line,
            reason: format!(
                "end of file with <{}> still open",
                st.stack.last().map_or("?", |(n, _)| n)
            ),
        });
    }
    if !root_seen {
        return Err(ParseError::WrongFormat {
            format: Format::IanaXml,
            line: 1,
            reason: "no root element".into(),
        });
    }
    finish(st, &mut budget)
}

fn wrong(line: usize, reason: String) -> ParseError {
    ParseError::WrongFormat {
        format: Format::IanaXml,
        line,
        reason,
    }
}

fn check_root(name: &str, line: usize) -> Result<(), ParseError> {
    if name == "registry" {
        Ok(())
    } else {
        Err(wrong(
            line,
            format!("root element is <{name}>, expected <registry>"),
        ))
    }
}

/// The line to name when the file ends early: the open record, else the
/// innermost open element.
fn open_line(st: &State) -> Option<usize> {
    if let Some(r) = &st.record {
        return Some(r.line);
    }
    st.stack.last().map(|(_, line)| *line)
}

fn local_name(start: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(start.local_name().as_ref()).into_owned()
}

fn attr(start: &BytesStart<'_>, key: &str, line: usize) -> Result<Option<String>, ParseError> {
    match start.try_get_attribute(key) {
        Ok(Some(a)) => a
            .unescape_value()
            .map(|v| Some(v.into_owned()))
            .map_err(|e| wrong(line, format!("attribute {key}: {e}"))),
        Ok(None) => Ok(None),
        Err(e) => Err(wrong(line, format!("attributes: {e}"))),
    }
}

/// How an xref is written inside text (and in the CSV): `[RFC6335]`,
/// `[Person_Id]`, `[draft-…]`.
fn xref_id(kind: &str, data: &str) -> String {
    if kind == "rfc" {
        data.to_ascii_uppercase()
    } else {
        data.to_string()
    }
}

impl State {
    fn parent(&self) -> Option<&str> {
        self.stack.last().map(|(n, _)| &**n)
    }

    /// An element starts (`empty`: it is also its own end).
    fn open(&mut self, name: &str, start: &BytesStart<'_>, line: usize) -> Result<(), ParseError> {
        let depth = self.stack.len();
        if let Some(record) = &mut self.record {
            if let Some((field, _, buf)) = &mut self.field {
                // Mixed content inside a record field.
                match name {
                    "br" => buf.push('\n'),
                    "xref" if matches!(field, Field::Description | Field::Note) => {
                        let kind = attr(start, "type", line)?.unwrap_or_default();
                        let data = attr(start, "data", line)?.unwrap_or_default();
                        self.inline_xref = Some((buf.len(), xref_id(&kind, &data)));
                    }
                    _ => {}
                }
                return Ok(());
            }
            if self.xref.is_some() {
                return Ok(());
            }
            match name {
                "assignee" => {
                    record.has_assignee_element = true;
                    self.in_assignee = true;
                }
                "xref" => {
                    let kind = attr(start, "type", line)?.unwrap_or_default();
                    let data = attr(start, "data", line)?;
                    if kind == "person" {
                        let id = data.unwrap_or_default();
                        if self.in_assignee {
                            record.assignees.push(id);
                        } else {
                            record.bare_people.push(id);
                        }
                    } else if !self.in_assignee {
                        self.xref = Some((
                            Xref {
                                kind,
                                data,
                                text: String::new(),
                            },
                            depth,
                        ));
                    }
                }
                _ => {
                    let field = match name {
                        "name" => Field::Name,
                        "protocol" => Field::Protocol,
                        "number" => Field::Number,
                        "description" => Field::Description,
                        "note" => Field::Note,
                        "sc" => Field::ServiceCode,
                        "unauthorized" => Field::Unauthorized,
                        _ => Field::Ignored,
                    };
                    self.field = Some((field, depth, String::new()));
                }
            }
            return Ok(());
        }
        if self.person.is_some() {
            let field = match name {
                "name" => PersonField::Name,
                "org" => PersonField::Org,
                "uri" => PersonField::Uri,
                "updated" => PersonField::Updated,
                _ => PersonField::Ignored,
            };
            if self.person_field.is_none() {
                self.person_field = Some((field, depth, String::new()));
            }
            return Ok(());
        }
        match name {
            "record" => {
                self.record = Some(RecordBuilder {
                    line,
                    date: attr(start, "date", line)?,
                    updated: attr(start, "updated", line)?,
                    ..RecordBuilder::default()
                });
            }
            "person" => {
                self.person = Some(PersonBuilder {
                    id: attr(start, "id", line)?.unwrap_or_default(),
                    ..PersonBuilder::default()
                });
            }
            "updated" if self.parent() == Some("registry") && self.registry_updated.is_none() => {
                self.reading_registry_updated = true;
                self.registry_updated = Some(String::new());
            }
            _ => {}
        }
        Ok(())
    }

    fn text(&mut self, text: &str) {
        if let Some((xref, _)) = &mut self.xref {
            xref.text.push_str(text);
        } else if let Some((_, _, buf)) = &mut self.field {
            buf.push_str(text);
        } else if let Some((_, _, buf)) = &mut self.person_field {
            buf.push_str(text);
        } else if self.reading_registry_updated
            && let Some(buf) = &mut self.registry_updated
        {
            buf.push_str(text);
        }
    }

    /// An element ends.
    fn close(&mut self, name: &str, budget: &mut Budget<'_>) -> Result<(), ParseError> {
        let depth = self.stack.len();
        if let Some(record) = &mut self.record {
            if let Some((field, field_depth, buf)) = &mut self.field {
                if depth > *field_depth {
                    if name != "xref" {
                        return Ok(());
                    }
                    if let Some((at, id)) = self.inline_xref.take() {
                        let inner = buf.split_off(at);
                        buf.push('[');
                        buf.push_str(if inner.trim().is_empty() {
                            &id
                        } else {
                            inner.trim()
                        });
                        buf.push(']');
                    }
                    return Ok(());
                }
                let field = *field;
                let text = std::mem::take(buf);
                self.field = None;
                match field {
                    Field::Name => record.name = non_empty(text.trim()),
                    Field::Protocol => record.protocol = text,
                    Field::Number => record.number = text,
                    Field::Description => record.description = normalise(&text),
                    Field::Note => record.note = non_empty(&normalise(&text)),
                    Field::ServiceCode => record.service_code = non_empty(text.trim()),
                    Field::Unauthorized => record.unauthorized = non_empty(&normalise(&text)),
                    Field::Ignored => {}
                }
                return Ok(());
            }
            if let Some((_, xref_depth)) = &self.xref
                && depth > *xref_depth
            {
                return Ok(());
            }
            if let Some((xref, _)) = self.xref.take() {
                let text = xref.text.trim();
                // The CSV writes an xref's text when it has one
                // (`RFC8765, Section 6.1`), else its ID.
                let reference = match (&xref.data, text.is_empty()) {
                    (Some(data), true) => xref_id(&xref.kind, data),
                    _ => text.to_string(),
                };
                if !reference.is_empty() {
                    record.references.push(reference);
                }
                return Ok(());
            }
            match name {
                "assignee" => self.in_assignee = false,
                "record" => {
                    if let Some(done) = self.record.take() {
                        budget.count(done.line)?;
                        self.records.push(done);
                    }
                }
                _ => {}
            }
            return Ok(());
        }
        if let Some(person) = &mut self.person {
            if name == "person" {
                if let Some(p) = self.person.take() {
                    self.people.insert(
                        p.id.clone(),
                        Person {
                            id: p.id,
                            name: non_empty(p.name.trim()),
                            organization: non_empty(p.org.trim()),
                            uri: non_empty(p.uri.trim()),
                            updated: non_empty(p.updated.trim()),
                        },
                    );
                }
                self.person_field = None;
            } else if let Some((field, field_depth, text)) = self.person_field.take() {
                if depth > field_depth {
                    self.person_field = Some((field, field_depth, text));
                    return Ok(());
                }
                match field {
                    PersonField::Name => person.name = text,
                    PersonField::Org => person.org = text,
                    PersonField::Uri => person.uri = text,
                    PersonField::Updated => person.updated = text,
                    PersonField::Ignored => {}
                }
            }
            return Ok(());
        }
        if name == "updated" {
            self.reading_registry_updated = false;
        }
        Ok(())
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// Trims, and collapses each run of line breaks (what `<br/><br/>` plus the
/// source's own newline give) into one, as the CSV writes it.
fn normalise(text: &str) -> String {
    let text = text.trim();
    if !text.contains("\n\n") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut last_newline = false;
    for c in text.chars() {
        if c == '\n' {
            if last_newline {
                continue;
            }
            last_newline = true;
        } else {
            last_newline = false;
        }
        out.push(c);
    }
    out
}

fn finish(st: State, budget: &mut Budget<'_>) -> Result<Parsed, ParseError> {
    let State {
        records: builders,
        people,
        registry_updated,
        ..
    } = st;
    let mut diagnostics = Vec::new();
    let resolve = |id: String, line: usize, diagnostics: &mut Vec<Diagnostic>| -> Person {
        match people.get(&id) {
            Some(p) => p.clone(),
            None => {
                diagnostics.push(Diagnostic {
                    line,
                    message: format!("person [{id}] is not in the <people> table; kept by ID only"),
                });
                Person::from_id(id)
            }
        }
    };
    let mut records = Vec::with_capacity(builders.len());
    for b in builders {
        let line = b.line;
        let ports = parse_ports(&b.number).map_err(|e| ParseError::BadRow {
            line,
            reason: format!("<number> {:?}: {e}", b.number),
        })?;
        let protocol = parse_protocol_strict(&b.protocol).map_err(|e| ParseError::BadRow {
            line,
            reason: format!("<protocol> {:?}: {e}", b.protocol),
        })?;
        let (assignee_ids, contact_ids) = if b.has_assignee_element {
            (b.assignees, b.bare_people)
        } else {
            (b.bare_people.clone(), b.bare_people)
        };
        // Each ID becomes a copy of its person: count before copying.
        let items = assignee_ids.len() + contact_ids.len() + b.references.len();
        if items > budget.max_record_items() {
            return Err(ParseError::Limit {
                line,
                reason: format!(
                    "record lists {items} people and references, over the limit of {} per record",
                    budget.max_record_items()
                ),
            });
        }
        let assignees = assignee_ids
            .into_iter()
            .map(|id| resolve(id, line, &mut diagnostics))
            .collect();
        let contacts = contact_ids
            .into_iter()
            .map(|id| resolve(id, line, &mut diagnostics))
            .collect();
        let state = RecordState::derive(b.name.as_deref(), &b.description, b.note.as_deref());
        let record = Record {
            name: b.name,
            ports,
            protocol,
            description: b.description,
            assignees,
            contacts,
            registration_date: b.date.as_deref().and_then(RegistryDate::parse),
            modification_date: b.updated.as_deref().and_then(RegistryDate::parse),
            references: b.references,
            service_code: b.service_code,
            unauthorized_use: b.unauthorized,
            notes: b.note,
            aliases: Vec::new(),
            open_frequency: None,
            state,
            position: 0,
            layer: Arc::default(),
            layer_rank: 0,
        };
        budget.check(&record, line)?;
        records.push(record);
    }
    let source = SourceInfo {
        updated: registry_updated.and_then(|u| non_empty(u.trim())),
        ..SourceInfo::default()
    };
    Ok(Parsed {
        registry: Registry::new(records, source),
        diagnostics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"<?xml version='1.0' encoding='UTF-8'?>
<registry xmlns="http://www.iana.org/assignments" id="service-names-port-numbers">
  <title>Service Name and Transport Protocol Port Number Registry</title>
  <updated>2026-04-24</updated>
  <record date="2012-07-31" updated="2013-01-02">
    <name>unifyadmin</name>
    <protocol>tcp</protocol>
    <assignee>
      <xref type="person" data="Daegis_Inc"/>
    </assignee>
    <xref type="person" data="Chris_Anderson"/>
    <description>Unify Admin<br/><br/>
second &amp; line <xref type="rfc" data="rfc9483"/></description>
    <number>2696</number>
    <xref type="rfc" data="rfc6335"/>
    <xref type="text">A &lt;b&gt; text</xref>
    <note>See <xref type="person" data="Chris_Anderson"/> too</note>
  </record>
  <record>
    <description>Unassigned</description>
    <number>6000-6063</number>
  </record>
  <people>
    <person id="Daegis_Inc"><org>Daegis, Inc.</org><uri>mailto:x&amp;y.com</uri><updated>2012-07-31</updated></person>
    <person id="Chris_Anderson"><name>Chris Anderson</name><org>Daegis, Inc.</org></person>
  </people>
</registry>
"#;

    #[test]
    fn small_registry() {
        let parsed = parse(SMALL).expect("parses");
        let reg = &parsed.registry;
        assert_eq!(reg.source.updated.as_deref(), Some("2026-04-24"));
        assert_eq!(reg.len(), 2);
        let r = &reg.records[0];
        assert_eq!(r.name.as_deref(), Some("unifyadmin"));
        assert_eq!(r.description, "Unify Admin\nsecond & line [RFC9483]");
        assert_eq!(r.assignees[0].organization.as_deref(), Some("Daegis, Inc."));
        assert_eq!(r.assignees[0].uri.as_deref(), Some("mailto:x&y.com"));
        assert_eq!(r.contacts[0].name.as_deref(), Some("Chris Anderson"));
        assert_eq!(r.references, ["RFC6335", "A <b> text"]);
        assert_eq!(r.notes.as_deref(), Some("See [Chris_Anderson] too"));
        assert_eq!(
            r.registration_date.as_ref().map(|d| d.text.as_str()),
            Some("2012-07-31")
        );
        assert_eq!(
            r.modification_date.as_ref().map(|d| d.text.as_str()),
            Some("2013-01-02")
        );
        assert_eq!(reg.records[1].state, RecordState::Unassigned);
        assert!(parsed.diagnostics.is_empty());
    }

    #[test]
    fn truncated_names_the_open_record() {
        let cut = |marker: &str| &SMALL[..SMALL.find(marker).unwrap_or(SMALL.len())];
        // Inside the first record (starts on line 5), inside the second (line
        // 19), and in the people table (innermost open element: <people>,
        // line 23).
        for (text, line) in [
            (cut("<number>2696"), 5),
            (cut("<number>6000"), 19),
            (cut("<person id=\"Chris"), 23),
            (cut("</registry>"), 2),
            (&SMALL[..SMALL.find("<name>unifyadmin").unwrap_or(0) + 3], 5),
        ] {
            let err = parse(text).expect_err("truncated");
            assert!(matches!(err, ParseError::Truncated { .. }), "{err:?}");
            assert_eq!(err.line(), Some(line), "{err:?}");
        }
    }

    #[test]
    fn bad_number_is_a_bad_row() {
        let text = SMALL.replace("6000-6063", "70000");
        let err = parse(&text).expect_err("bad port");
        assert!(
            matches!(err, ParseError::BadRow { line: 19, .. }),
            "{err:?}"
        );
    }
}
