//! Parser for the official IANA CSV (`service-names-port-numbers.csv`): a
//! 12-column header, CRLF record terminators, quoted fields that may hold
//! commas, `""` escapes and bare-LF line breaks.
//!
//! Fields are split by the `csv` crate (one reused [`csv::ByteRecord`], no
//! per-field allocation beyond the values kept). The `csv` crate is lenient
//! about broken quoting (`"a"b` reads as `ab`) and about a quoted field left
//! open at end of file, so the raw bytes of every record holding a quote or
//! NUL also go through a strict scan ([`check_quoting`]) that rejects both.
//! Up to the first broken record both readings agree on record boundaries,
//! so errors are reported in file order.
//!
//! The file is rejected as a whole ([`ParseError::BadRow`]) on a row with a
//! field count other than 12, a port that is not a number or `N-M` range up
//! to 65535, a protocol other than tcp/udp/sctp/dccp, or a NUL byte; and
//! ([`ParseError::Truncated`]) when it ends inside a quoted field or without
//! a final record terminator.
//!
//! This module also holds the small field readers the other IANA parsers
//! share: [`parse_ports`], [`parse_protocol_strict`] and [`split_bracketed`].

use csv::{ByteRecord, ReaderBuilder};
use std::sync::Arc;

use super::limits::Budget;
use super::{Format, ParseError, ParseLimits, Parsed};
use crate::model::{Person, PortRange, Protocol, Record, RecordState, RegistryDate};
use crate::registry::{Registry, SourceInfo};

/// The official 12-column header, in order.
pub const HEADER: [&str; 12] = [
    "Service Name",
    "Port Number",
    "Transport Protocol",
    "Description",
    "Assignee",
    "Contact",
    "Registration Date",
    "Modification Date",
    "Reference",
    "Service Code",
    "Unauthorized Use Reported",
    "Assignment Notes",
];

/// Most fields a CSV record may have before the file is refused without
/// reading that record (a valid one has 12; the `csv` crate would otherwise
/// keep 8 bytes of bounds per field of a row made of commas).
pub const MAX_FIELDS: usize = 64;

/// Parses the whole text of an IANA CSV file within the default
/// [`ParseLimits`].
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    parse_with_limits(text, &ParseLimits::default())
}

/// Parses the whole text of an IANA CSV file within `limits`.
pub fn parse_with_limits(text: &str, limits: &ParseLimits) -> Result<Parsed, ParseError> {
    let bytes = text.as_bytes();
    check_field_counts(bytes)?;
    let mut budget = Budget::new(limits);
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut row = ByteRecord::new();
    // About 80 bytes per record in the real file.
    let mut records = Vec::with_capacity(budget.capacity(bytes.len(), 75));
    let mut header_seen = false;
    let mut lines = LineCounter::new(bytes);
    let mut line = 1;
    loop {
        let start = reader.position().byte() as usize;
        match reader.read_byte_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(ParseError::BadRow {
                    line: lines.record_line(start),
                    reason: format!("unreadable CSV: {e}"),
                });
            }
        }
        let end = (reader.position().byte() as usize).min(bytes.len());
        line = lines.record_line(start);
        // The raw bytes of this record, from its first byte that is not a
        // line break; the strict check only has work to do where the
        // lenient `csv` crate could have been lenient.
        let span = &bytes[start.min(end)..end];
        let span = &span[span
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count()..];
        if span.contains(&b'"') || span.contains(&0) {
            check_quoting_from(span, line)?;
        }
        if !header_seen {
            check_header(&row, line)?;
            header_seen = true;
            continue;
        }
        let record = row_to_record(&row, line)?;
        budget.admit(&record, line)?;
        records.push(record);
    }
    if !header_seen {
        return Err(ParseError::WrongFormat {
            format: Format::IanaCsv,
            line: 1,
            reason: "no header line".into(),
        });
    }
    if !bytes.ends_with(b"\n") && !bytes.ends_with(b"\r") {
        return Err(ParseError::Truncated {
            line,
            reason: "last record has no line terminator".into(),
        });
    }
    Ok(Parsed {
        registry: Registry::new(records, SourceInfo::default()),
        diagnostics: Vec::new(),
    })
}

/// Refuses a record with more than [`MAX_FIELDS`] fields before the `csv`
/// crate reads it (a quote toggles quoting, `""` twice; commas count
/// outside quotes; a line break outside quotes ends the record).
fn check_field_counts(bytes: &[u8]) -> Result<(), ParseError> {
    let mut quoted = false;
    let mut fields = 1usize;
    let mut line = 1usize;
    for &b in bytes {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                fields += 1;
                if fields > MAX_FIELDS {
                    return Err(ParseError::BadRow {
                        line,
                        reason: format!(
                            "more than {MAX_FIELDS} fields (an IANA CSV row has {})",
                            HEADER.len()
                        ),
                    });
                }
            }
            b'\n' => {
                line += 1;
                if !quoted {
                    fields = 1;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_header(row: &ByteRecord, line: usize) -> Result<(), ParseError> {
    let matches = row.len() == HEADER.len()
        && row
            .iter()
            .zip(HEADER)
            .all(|(got, want)| got.trim_ascii().eq_ignore_ascii_case(want.as_bytes()));
    if matches {
        return Ok(());
    }
    let got: Vec<String> = row
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    Err(ParseError::WrongFormat {
        format: Format::IanaCsv,
        line,
        reason: format!(
            "expected the 12-column IANA header ({}), found {} column(s): {:?}",
            HEADER.join(","),
            got.len(),
            got
        ),
    })
}

/// Turns one 12-field data row into a [`Record`].
fn row_to_record(row: &ByteRecord, line: usize) -> Result<Record, ParseError> {
    let bad = |reason: String| ParseError::BadRow { line, reason };
    if row.len() != HEADER.len() {
        return Err(bad(format!(
            "expected {} fields, found {}",
            HEADER.len(),
            row.len()
        )));
    }
    // The whole text is valid UTF-8 and fields are split at ASCII bytes, so
    // neither step fails short of a logic error; report one rather than
    // panic. One UTF-8 check per row, not per field.
    let all = std::str::from_utf8(row.as_slice())
        .map_err(|e| bad(format!("invalid UTF-8 in row: {e}")))?;
    let mut fields = [""; 12];
    for (i, slot) in fields.iter_mut().enumerate() {
        *slot = row
            .range(i)
            .and_then(|r| all.get(r))
            .ok_or_else(|| bad(format!("field {} is not valid UTF-8", i + 1)))?;
    }
    let [
        name,
        port,
        protocol,
        description,
        assignee,
        contact,
        registered,
        modified,
        reference,
        service_code,
        unauthorized,
        notes,
    ] = fields;

    let name = non_empty(name.trim());
    let ports = parse_ports(port).map_err(|e| bad(format!("Port Number {port:?}: {e}")))?;
    let protocol = parse_protocol_strict(protocol)
        .map_err(|e| bad(format!("Transport Protocol {protocol:?}: {e}")))?;
    let notes = non_empty(notes);
    let state = RecordState::derive(name.as_deref(), description, notes.as_deref());
    Ok(Record {
        name,
        ports,
        protocol,
        description: description.to_string(),
        assignees: people(assignee),
        contacts: people(contact),
        registration_date: RegistryDate::parse(registered),
        modification_date: RegistryDate::parse(modified),
        references: split_bracketed(reference),
        service_code: non_empty(service_code.trim()),
        unauthorized_use: non_empty(unauthorized),
        notes,
        aliases: Vec::new(),
        open_frequency: None,
        state,
        position: 0,
        layer: Arc::default(),
        layer_rank: 0,
    })
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn people(text: &str) -> Vec<Person> {
    split_bracketed(text)
        .into_iter()
        .map(Person::from_id)
        .collect()
}

/// Reads a port (`80`) or an inclusive range (`6000-6063`); empty text is
/// `Ok(None)`. Every port must be a decimal number up to 65535 and a range
/// must not run backwards.
pub fn parse_ports(text: &str) -> Result<Option<PortRange>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.split_once('-') {
        None => parse_port(text).map(|p| Some(PortRange::single(p))),
        Some((start, end)) => {
            let (start, end) = (parse_port(start.trim())?, parse_port(end.trim())?);
            PortRange::new(start, end)
                .map(Some)
                .ok_or_else(|| format!("range {start}-{end} runs backwards"))
        }
    }
}

/// Reads one decimal port number, 0 to 65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a port number"));
    }
    text.bytes()
        .try_fold(0u32, |acc, b| {
            let value = acc * 10 + u32::from(b - b'0');
            (value <= u32::from(u16::MAX)).then_some(value)
        })
        .and_then(|value| u16::try_from(value).ok())
        .ok_or_else(|| format!("port {text} exceeds 65535"))
}

/// Reads a transport protocol as the IANA files write it: empty text is
/// `Ok(None)`; tcp, udp, sctp and dccp (any case) are accepted; anything
/// else (e.g. the typo `tpc`) is an error.
pub fn parse_protocol_strict(text: &str) -> Result<Option<Protocol>, String> {
    match Protocol::parse(text) {
        Some(Protocol::Other(name)) => Err(format!(
            "unknown transport protocol {name:?} (expected tcp, udp, sctp or dccp)"
        )),
        other => Ok(other),
    }
}

/// Splits a field made of bracketed items written without separator
/// (`[RFC7858][RFC8094]`, `[Vera_Heinau][Heiko_Schlichting]`) into the
/// items, brackets removed and content kept exactly (spaces, `<`, `&` and
/// line breaks survive; nested brackets are kept inside their item). Text
/// outside brackets is kept, trimmed, as one item per stretch; an unclosed
/// `[` keeps the rest of the text as one item.
pub fn split_bracketed(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    if text.is_empty() {
        return items;
    }
    let mut rest = text;
    while !rest.is_empty() {
        let Some(open) = rest.find('[') else {
            push_trimmed(&mut items, rest);
            break;
        };
        push_trimmed(&mut items, &rest[..open]);
        let inner = &rest[open + 1..];
        let mut depth = 1usize;
        let mut close = None;
        for (i, c) in inner.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        match close {
            Some(i) => {
                if !inner[..i].trim().is_empty() {
                    items.push(inner[..i].to_string());
                }
                rest = &inner[i + 1..];
            }
            None => {
                push_trimmed(&mut items, inner);
                break;
            }
        }
    }
    items
}

fn push_trimmed(items: &mut Vec<String>, text: &str) {
    let text = text.trim();
    if !text.is_empty() {
        items.push(text.to_string());
    }
}

/// Strict RFC 4180 scan of the raw bytes: a `"` may only open a field or,
/// inside a quoted field, close it or escape another `"`; after a closing
/// quote only `,`, a line break or end of file may follow; NUL bytes are
/// refused; and the file must end with a record terminator outside quotes.
///
/// Returns the first problem: [`ParseError::BadRow`] naming the physical
/// line of the offending byte, or [`ParseError::Truncated`] naming the line
/// where the unfinished record starts.
pub fn check_quoting(bytes: &[u8]) -> Result<(), ParseError> {
    check_quoting_from(bytes, 1)?;
    match bytes.last() {
        None | Some(b'\n' | b'\r') => Ok(()),
        Some(_) => Err(ParseError::Truncated {
            line: 1 + bytes[..bytes.len() - 1]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |at| count_lf(&bytes[..=at])),
            reason: "last record has no line terminator".into(),
        }),
    }
}

/// [`check_quoting`] without the final-terminator check, for bytes that
/// start on line `first_line`.
fn check_quoting_from(bytes: &[u8], first_line: usize) -> Result<(), ParseError> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let mut line = first_line;
    let mut record_line = first_line;
    let mut at_record_start = true;
    let mut i = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0 {
            return Err(ParseError::BadRow {
                line,
                reason: "NUL byte".into(),
            });
        }
        if at_record_start && b != b'\r' && b != b'\n' {
            at_record_start = false;
            record_line = line;
        }
        match state {
            State::Quoted => {
                // Fast path: skip to the next quote, counting line breaks.
                match bytes[i..].iter().position(|&c| c == b'"' || c == 0) {
                    Some(off) => {
                        line += count_lf(&bytes[i..i + off]);
                        i += off;
                        if bytes[i] == b'"' {
                            state = State::QuoteInQuoted;
                            i += 1;
                        }
                        continue;
                    }
                    None => {
                        return Err(ParseError::Truncated {
                            line: record_line,
                            reason: "quoted field not closed at end of file".into(),
                        });
                    }
                }
            }
            State::FieldStart | State::Unquoted | State::QuoteInQuoted => match b {
                b',' => state = State::FieldStart,
                b'\r' | b'\n' => {
                    state = State::FieldStart;
                    at_record_start = true;
                }
                b'"' => match state {
                    State::FieldStart => state = State::Quoted,
                    State::QuoteInQuoted => state = State::Quoted,
                    _ => {
                        return Err(ParseError::BadRow {
                            line,
                            reason: "quote inside an unquoted field".into(),
                        });
                    }
                },
                _ => match state {
                    State::QuoteInQuoted => {
                        return Err(ParseError::BadRow {
                            line,
                            reason: format!(
                                "unexpected {:?} after a closing quote (expected ',' or end of line)",
                                char::from(b)
                            ),
                        });
                    }
                    _ => state = State::Unquoted,
                },
            },
        }
        if b == b'\n' {
            line += 1;
        }
        i += 1;
    }
    if state == State::Quoted {
        return Err(ParseError::Truncated {
            line: record_line,
            reason: "quoted field not closed at end of file".into(),
        });
    }
    Ok(())
}

/// Physical line numbers of record starts, counted incrementally.
///
/// `csv::Position::line()` is not used: with CRLF terminators the `csv`
/// crate ends a record at the `\r` and counts the `\n` into the next
/// record, so its line numbers run one short. A record's start byte can
/// likewise point at that `\n` or at skipped blank lines; the record's line
/// is the one of its first byte that is not a line break.
#[derive(Debug)]
pub struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    /// A counter at line 1, byte 0.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The 1-based line of byte `offset` (cheap when offsets grow).
    pub fn line_at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.bytes.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        self.line += count_lf(&self.bytes[self.offset..offset]);
        self.offset = offset;
        self.line
    }

    /// The line of the record starting at `offset`, skipping line breaks.
    pub fn record_line(&mut self, offset: usize) -> usize {
        let skip = self.bytes.get(offset..).map_or(0, |rest| {
            rest.iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count()
        });
        self.line_at(offset + skip)
    }
}

fn count_lf(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets() {
        assert_eq!(
            split_bracketed("[RFC7858][RFC8094][RFC9250]"),
            ["RFC7858", "RFC8094", "RFC9250"]
        );
        assert_eq!(
            split_bracketed("[Ariën Huisken <xadmin&huisken-systems.nl> 15 June 2009]"),
            ["Ariën Huisken <xadmin&huisken-systems.nl> 15 June 2009"]
        );
        assert_eq!(split_bracketed("RFC 1234"), ["RFC 1234"]);
        assert_eq!(split_bracketed("[a[b]c] tail"), ["a[b]c", "tail"]);
        assert_eq!(split_bracketed("[open"), ["open"]);
        assert!(split_bracketed("").is_empty());
        assert!(split_bracketed("[]").is_empty());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_ports(""), Ok(None));
        assert_eq!(parse_ports("80"), Ok(Some(PortRange::single(80))));
        assert_eq!(
            parse_ports("6000-6063"),
            PortRange::new(6000, 6063).map(Some).ok_or_else(String::new)
        );
        assert_eq!(parse_ports("65535"), Ok(Some(PortRange::single(65535))));
        assert!(parse_ports("65536").is_err());
        assert!(parse_ports("70000").is_err());
        assert!(parse_ports("9999999999999999").is_err());
        assert!(parse_ports("x1").is_err());
        assert!(parse_ports("5-3").is_err());
        assert!(parse_ports("-3").is_err());
        assert_eq!(parse_ports("00080"), Ok(Some(PortRange::single(80))));
    }

    const HEAD: &str = "Service Name,Port Number,Transport Protocol,Description,Assignee,Contact,Registration Date,Modification Date,Reference,Service Code,Unauthorized Use Reported,Assignment Notes\r\n";

    fn csv_err(body: &str) -> ParseError {
        parse(&format!("{HEAD}{body}")).expect_err(body)
    }

    #[test]
    fn rows_are_checked_with_physical_line_numbers() {
        let ok = "a,1,tcp,\"x\ny\",,,,,,,,\r\nb,2,udp,d,,,,,,,,\r\n";
        let reg = parse(&format!("{HEAD}{ok}")).expect("parses").registry;
        assert_eq!(reg.len(), 2);
        assert_eq!(reg.records[0].description, "x\ny");
        // Line 2 holds a two-line record, the second on line 4, so the third is on line 5.
        for (bad, line) in [
            ("c,70000,tcp,d,,,,,,,,\r\n", 5),
            ("c,x,tcp,d,,,,,,,,\r\n", 5),
            ("c,1,tpc,d,,,,,,,,\r\n", 5),
            ("c,1,tcp\r\n", 5),
            ("c,1,tcp,d,,,,,,,,,\r\n", 5),
            ("c,1,tcp,d\0,,,,,,,,\r\n", 5),
            ("c,1,tcp,\"d\"x,,,,,,,,\r\n", 5),
            ("c,1,tcp,d\"x,,,,,,,,\r\n", 5),
            ("c,1,tcp,\"d\n\n,,,,,,,,\r\n", 5),
            ("c,1,tcp,d,,,,,,,,", 5),
            ("\r\n\r\nc,70000,tcp,d,,,,,,,,\r\n", 7),
        ] {
            let err = csv_err(&format!("{ok}{bad}"));
            assert_eq!(err.line(), Some(line), "{bad:?}: {err}");
        }
        assert!(matches!(
            csv_err(&format!("{ok}c,1,tcp,\"open\nstill open")),
            ParseError::Truncated { line: 5, .. }
        ));
        assert!(matches!(
            parse("Service Name,Port\r\n"),
            Err(ParseError::WrongFormat { line: 1, .. })
        ));
    }

    #[test]
    fn quoting() {
        assert!(check_quoting(b"a,\"b\nc\",d\r\n").is_ok());
        assert!(check_quoting(b"a,\"b\"\"c\",d\r\n").is_ok());
        let e = check_quoting(b"h\r\nx,\"7,y,\"bad \"q\" z\r\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        let e = check_quoting(b"h\r\nx,1\r\ny,\"open\nmore\nstuff").unwrap_err();
        assert!(matches!(e, ParseError::Truncated { line: 3, .. }), "{e:?}");
        let e = check_quoting(b"h\r\nx,1").unwrap_err();
        assert!(matches!(e, ParseError::Truncated { line: 2, .. }), "{e:?}");
        let e = check_quoting(b"h\r\nx,\"").unwrap_err();
        assert!(matches!(e, ParseError::Truncated { line: 2, .. }), "{e:?}");
        let e = check_quoting(b"h\r\nx\0,1\r\n").unwrap_err();
        assert!(matches!(e, ParseError::BadRow { line: 2, .. }), "{e:?}");
    }
}
