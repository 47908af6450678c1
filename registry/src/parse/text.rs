//! Parser for the IANA plain-text rendering: what copying the registry's web
//! page gives (this is the form of `data/registry-excerpt.txt`, the
//! embedded registry).
//!
//! Layout: a header block (title, `Last Updated` and its date, experts,
//! notes), the column header line `Service Name Port Number …`, one row per
//! line with the columns separated by single spaces, then a "Contact
//! Information" table of `[ID] Name Organization mailto:user&host
//! Last-Updated` lines.
//!
//! The columns are not delimited, so each row is interpreted:
//! * the first token is the port (or `N-M` range) when it is one, and the
//!   row has no name; otherwise it is the name (`3com-njack-1` starts with a
//!   digit but is not a port) and the port follows, when there is one;
//! * a protocol (`tcp`, `udp`, `sctp`, `dccp`) may follow the port;
//! * the description runs until the first bracketed item or date; a
//!   trailing parenthesised group holding a date (`(Removed 2004-2-6)`) is
//!   split off into the assignment notes;
//! * bracketed items are people when the contact table defines them, and
//!   references otherwise; the first group of adjacent people (`[A][B]`) is
//!   the assignees, the second the contacts;
//! * two dates are the registration and modification dates; a single date
//!   cannot be told apart (IANA writes both kinds in that position), so it is
//!   read as the registration date and a [`Diagnostic`] says so;
//! * free text after the last bracket or date is the service code when it
//!   is a number, the unauthorized-use text when it starts "Known
//!   Unauthorized"/"Unauthorized", and assignment notes otherwise.
//!
//! A line that is not a row start continues the previous row: multi-line
//! fields are rendered that way. A row starts with a port or has one second,
//! or has a protocol second; a line starting with a lowercase service name
//! and neither starts a port-less row only where those can be (before any
//! numbered row, after another port-less row, or after port 49151, as IANA
//! lists port-less rows last). A description that itself contains brackets (`Unassigned [was
//! netstat]`) cannot be told apart from a reference and is split there.
//!
//! The contact table's name/organisation split is a heuristic: the words
//! matching the ID's parts (`Chris_Anderson` → "Chris Anderson") are the
//! name and the rest the organisation; text not matching the ID is a name,
//! or an organisation when it ends in a company suffix (`Daegis, Inc.`).

use std::collections::HashMap;
use std::sync::Arc;

use super::csv::{parse_ports, split_bracketed};
use super::limits::Budget;
use super::{Diagnostic, Format, ParseError, ParseLimits, Parsed};
use crate::model::{Person, Protocol, Record, RecordState, RegistryDate};
use crate::registry::{Registry, SourceInfo};

/// The title line the format is recognised by.
pub const TITLE: &str = "Service Name and Transport Protocol Port Number Registry";
/// The start of the column header line.
pub const COLUMN_HEADER: &str = "Service Name Port Number";
/// The line that starts the contact table.
pub const CONTACT_HEADER: &str = "Contact Information";

/// Parses the whole text of the IANA plain-text rendering within the
/// default [`ParseLimits`].
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    parse_with_limits(text, &ParseLimits::default())
}

/// Most physical lines per record the text rendering may have: the real
/// page has about 1.1 lines per record plus the contact table (one line per
/// person, 5,615 people for 14,533 records). The line table (16 bytes a
/// line) and the diagnostics of continuation lines grow with the line
/// count, so it is bounded before either is built.
pub const MAX_LINES_PER_RECORD: usize = 4;

/// Parses the whole text of the IANA plain-text rendering within `limits`.
pub fn parse_with_limits(text: &str, limits: &ParseLimits) -> Result<Parsed, ParseError> {
    let max_lines = limits.max_records.saturating_mul(MAX_LINES_PER_RECORD);
    let line_count = text.bytes().filter(|&b| b == b'\n').count() + 1;
    if line_count > max_lines {
        return Err(ParseError::Limit {
            line: max_lines + 1,
            reason: format!(
                "more than {max_lines} lines ({MAX_LINES_PER_RECORD} per record of the record limit)"
            ),
        });
    }
    let mut budget = Budget::new(limits);
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.trim_start().starts_with(COLUMN_HEADER))
        .ok_or_else(|| ParseError::WrongFormat {
            format: Format::IanaText,
            line: 1,
            reason: format!("no column header line starting {COLUMN_HEADER:?}"),
        })?;
    let updated = last_updated(&lines[..header]);
    let contact_start = lines[header + 1..]
        .iter()
        .position(|l| l.trim() == CONTACT_HEADER)
        .map(|i| i + header + 1);
    let row_end = contact_start.unwrap_or(lines.len());

    let mut diagnostics = Vec::new();
    let people = match contact_start {
        Some(start) => parse_people(&lines, start + 1, &mut diagnostics),
        None => HashMap::new(),
    };

    // Group physical lines into rows (continuation lines join the row
    // before them with a line break).
    let mut rows: Vec<(usize, String)> = Vec::new();
    for (index, raw) in lines.iter().enumerate().take(row_end).skip(header + 1) {
        let line_no = index + 1;
        let line = raw.trim_end();
        if line.trim().is_empty() {
            continue;
        }
        let previous = rows.last().map(|(_, row)| row.lines().next().unwrap_or(""));
        if rows.is_empty() || starts_row(line, previous) {
            budget.count(line_no)?;
            rows.push((line_no, line.to_string()));
        } else if let Some((first, row)) = rows.last_mut() {
            diagnostics.push(Diagnostic {
                line: line_no,
                message: format!("read as a continuation of the row on line {first}"),
            });
            row.push('\n');
            row.push_str(line);
        }
    }

    let mut records = Vec::with_capacity(rows.len());
    for (line, row) in &rows {
        let record = parse_row(row, *line, &people, &mut diagnostics)?;
        budget.check(&record, *line)?;
        records.push(record);
    }
    let source = SourceInfo {
        updated,
        ..SourceInfo::default()
    };
    Ok(Parsed {
        registry: Registry::new(records, source),
        diagnostics,
    })
}

/// The date after `Last Updated` (on the same line or the next).
fn last_updated(lines: &[&str]) -> Option<String> {
    let at = lines
        .iter()
        .position(|l| l.trim().starts_with("Last Updated"))?;
    let same_line = lines[at].trim().trim_start_matches("Last Updated").trim();
    let candidate = if same_line.is_empty() {
        lines.get(at + 1).map_or("", |l| l.trim())
    } else {
        same_line
    };
    RegistryDate::looks_like_date(candidate).then(|| candidate.to_string())
}

fn is_port_token(token: &str) -> bool {
    !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && token.as_bytes()[0].is_ascii_digit()
}

fn protocol_token(token: &str) -> Option<Protocol> {
    match token {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        "sctp" => Some(Protocol::Sctp),
        "dccp" => Some(Protocol::Dccp),
        _ => None,
    }
}

/// Whether `token` looks like an IANA service name in lowercase.
fn is_lowercase_service_name(token: &str) -> bool {
    token.len() <= 15
        && token.bytes().any(|b| b.is_ascii_lowercase())
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.+*/".contains(&b))
}

/// Whether a physical line starts a new row, given the first line of the
/// row before it.
///
/// A line with a port first or second, or a protocol second, starts a row.
/// A line starting with a lowercase service name but holding neither (a
/// port-less, protocol-less row such as `argus ARGUS Protocol`) starts one
/// only where port-less rows can be: IANA lists them after every numbered
/// row, so not right after a numbered row below 49151; elsewhere it is the
/// continuation of a multi-line field.
fn starts_row(line: &str, previous: Option<&str>) -> bool {
    let mut tokens = line.split_whitespace();
    let first = tokens.next().unwrap_or("");
    let second = tokens.next().unwrap_or("");
    if is_port_token(first) || is_port_token(second) || protocol_token(second).is_some() {
        return true;
    }
    if !is_lowercase_service_name(first) {
        return false;
    }
    match previous.and_then(row_port_end) {
        None => true,
        Some(end) => end >= 49151,
    }
}

/// The last port of the row whose first line is `line`, if it has a port.
fn row_port_end(line: &str) -> Option<u16> {
    let mut tokens = line.split_whitespace();
    let first = tokens.next().unwrap_or("");
    let port = if is_port_token(first) {
        first
    } else {
        tokens.next().filter(|t| is_port_token(t))?
    };
    parse_ports(port).ok().flatten().map(|p| p.end)
}

/// Space-separated tokens with their byte offsets.
fn tokens(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c == ' ' || c == '\n' || c == '\t' {
            if let Some(s) = start.take() {
                out.push((s, &text[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

/// A trailing token of a date: `2014-04-09`.
fn is_date_token(token: &str) -> bool {
    RegistryDate::looks_like_date(token)
}

fn parse_row(
    row: &str,
    line: usize,
    people: &HashMap<String, Person>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<Record, ParseError> {
    let bad = |reason: String| ParseError::BadRow { line, reason };
    let toks = tokens(row);
    let mut at = 0usize;
    let mut name = None;
    let first = toks.first().map_or("", |t| t.1);
    if !is_port_token(first) {
        name = Some(first.to_string());
        at = 1;
    }
    let mut ports = None;
    if let Some((_, tok)) = toks.get(at)
        && is_port_token(tok)
    {
        ports = parse_ports(tok).map_err(|e| bad(format!("port {tok:?}: {e}")))?;
        at += 1;
    }
    let mut protocol = None;
    if let Some((_, tok)) = toks.get(at)
        && let Some(p) = protocol_token(tok)
    {
        protocol = Some(p);
        at += 1;
    }
    // The rest of the row, from the description on.
    let rest_start = toks.get(at).map_or(row.len(), |t| t.0);
    let rest = &row[rest_start..];

    // The description ends at the first bracketed item or date token.
    let rest_tokens = tokens(rest);
    let desc_end = rest_tokens
        .iter()
        .find(|(_, t)| t.starts_with('[') || is_date_token(t))
        .map_or(rest.len(), |t| t.0);
    let (mut description, mut notes) = split_trailing_note(rest[..desc_end].trim_end());
    if notes.is_some() {
        diagnostics.push(Diagnostic {
            line,
            message: format!(
                "read trailing {:?} as assignment notes",
                notes.as_deref().unwrap_or("")
            ),
        });
    }

    // Then groups of adjacent bracketed items, dates and free text.
    let mut person_groups: Vec<Vec<Person>> = Vec::new();
    let mut references = Vec::new();
    let mut dates: Vec<String> = Vec::new();
    let mut trailing = String::new();
    let mut tail = &rest[desc_end..];
    loop {
        tail = tail.trim_start();
        if tail.is_empty() {
            break;
        }
        if tail.starts_with('[') {
            // A run of adjacent brackets: one column.
            let end = bracket_run_end(tail);
            let mut group = Vec::new();
            for item in split_bracketed(&tail[..end]) {
                match people.get(&item) {
                    Some(p) => group.push(p.clone()),
                    None => references.push(item),
                }
            }
            if !group.is_empty() {
                person_groups.push(group);
            }
            if !trailing.is_empty() {
                // Text between columns: keep it as notes.
                append_note(&mut notes, std::mem::take(&mut trailing).trim());
            }
            tail = &tail[end..];
            continue;
        }
        let end = tail.find([' ', '\n', '\t']).unwrap_or(tail.len());
        let token = &tail[..end];
        if is_date_token(token) && trailing.is_empty() {
            dates.push(token.to_string());
        } else {
            if !trailing.is_empty() {
                trailing.push(' ');
            }
            trailing.push_str(token);
        }
        tail = &tail[end..];
    }

    let mut service_code = None;
    let mut unauthorized_use = None;
    let trailing = trailing.trim();
    if !trailing.is_empty() {
        let lower = trailing.to_ascii_lowercase();
        if trailing.bytes().all(|b| b.is_ascii_digit()) {
            service_code = Some(trailing.to_string());
        } else if lower.starts_with("known unauthorized") || lower.starts_with("unauthorized") {
            unauthorized_use = Some(trailing.to_string());
        } else {
            append_note(&mut notes, trailing);
        }
    }

    let mut groups = person_groups.into_iter();
    let assignees = groups.next().unwrap_or_default();
    let contacts = groups.next().unwrap_or_default();
    for extra in groups {
        diagnostics.push(Diagnostic {
            line,
            message: format!(
                "a third group of people ({}) ignored",
                extra
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let (registration_date, modification_date) = match dates.len() {
        0 => (None, None),
        1 => {
            diagnostics.push(Diagnostic {
                line,
                message: format!(
                    "single date {} is ambiguous (registration or modification); read as the registration date",
                    dates[0]
                ),
            });
            (RegistryDate::parse(&dates[0]), None)
        }
        n => {
            if n > 2 {
                diagnostics.push(Diagnostic {
                    line,
                    message: format!("{n} dates; the first two are used"),
                });
            }
            (
                RegistryDate::parse(&dates[0]),
                RegistryDate::parse(&dates[1]),
            )
        }
    };
    if description.is_empty() && name.is_none() && ports.is_none() {
        return Err(bad(format!("cannot read a row from {row:?}")));
    }
    description = description.trim().to_string();
    let state = RecordState::derive(name.as_deref(), &description, notes.as_deref());
    Ok(Record {
        name,
        ports,
        protocol,
        description,
        assignees,
        contacts,
        registration_date,
        modification_date,
        references,
        service_code,
        unauthorized_use,
        notes,
        aliases: Vec::new(),
        open_frequency: None,
        state,
        position: 0,
        layer: Arc::default(),
        layer_rank: 0,
    })
}

fn append_note(notes: &mut Option<String>, text: &str) {
    if text.is_empty() {
        return;
    }
    match notes {
        Some(n) => {
            n.push(' ');
            n.push_str(text);
        }
        None => *notes = Some(text.to_string()),
    }
}

/// Byte length of a run of adjacent bracketed items at the start of `text`
/// (nested brackets stay inside their item; an unclosed bracket runs to the
/// end).
fn bracket_run_end(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && !text[i + 1..].starts_with('[') {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// Splits `Unassigned (Removed 2004-2-6)` into the description and a
/// trailing parenthesised note holding a date.
fn split_trailing_note(text: &str) -> (String, Option<String>) {
    if text.ends_with(')')
        && let Some(open) = text.rfind('(')
    {
        let inner = &text[open + 1..text.len() - 1];
        let has_date = inner
            .split_whitespace()
            .any(|w| is_date_token(w.trim_matches(|c: char| !c.is_ascii_alphanumeric())));
        if has_date {
            return (
                text[..open].trim_end().to_string(),
                Some(text[open..].to_string()),
            );
        }
    }
    (text.to_string(), None)
}

/// Company suffixes that make a name-less contact an organisation.
const ORG_SUFFIXES: &[&str] = &[
    "inc",
    "ltd",
    "llc",
    "gmbh",
    "corp",
    "corporation",
    "company",
    "co",
    "ag",
    "ab",
    "sa",
    "bv",
    "limited",
    "plc",
    "srl",
    "oy",
    "as",
    "kk",
];

/// Parses the contact table lines after the "Contact Information" line.
fn parse_people(
    lines: &[&str],
    from: usize,
    diagnostics: &mut Vec<Diagnostic>,
) -> HashMap<String, Person> {
    let mut people = HashMap::new();
    for (index, raw) in lines.iter().enumerate().skip(from) {
        let line = raw.trim();
        let Some(body) = line.strip_prefix('[') else {
            continue;
        };
        let Some(close) = body.find(']') else {
            diagnostics.push(Diagnostic {
                line: index + 1,
                message: "contact line without a closing bracket ignored".into(),
            });
            continue;
        };
        let id = body[..close].to_string();
        let mut words: Vec<&str> = body[close + 1..].split_whitespace().collect();
        let updated = match words.last() {
            Some(w) if is_date_token(w) => {
                let d = w.to_string();
                words.pop();
                Some(d)
            }
            _ => None,
        };
        let uri_at = words.iter().position(|w| {
            w.starts_with("mailto:") || w.starts_with("http://") || w.starts_with("https://")
        });
        let uri = uri_at.map(|i| words[i..].join(" "));
        let words = &words[..uri_at.unwrap_or(words.len())];
        let (name, organization) = split_name_org(&id, words);
        people.insert(
            id.clone(),
            Person {
                id,
                name,
                organization,
                uri,
                updated,
            },
        );
    }
    people
}

fn normalise_word(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Splits the words between the ID and the URI into name and organisation.
fn split_name_org(id: &str, words: &[&str]) -> (Option<String>, Option<String>) {
    if words.is_empty() {
        return (None, None);
    }
    let mut parts: Vec<&str> = id.split(['_', ' ']).filter(|p| !p.is_empty()).collect();
    if parts.len() > 1
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        parts.pop();
    }
    let mut matched = 0usize;
    for part in &parts {
        let part = normalise_word(part);
        match words.get(matched) {
            Some(w) if !part.is_empty() && normalise_word(w).starts_with(&part) => matched += 1,
            _ => {
                matched = 0;
                break;
            }
        }
    }
    // IANA IDs are cut at about 20 characters, so a long ID matching the
    // first words may stand for a longer name.
    let id_cut = id.len() >= 19;
    if matched > 0 && matched < words.len() && !id_cut {
        return (
            Some(words[..matched].join(" ")),
            Some(words[matched..].join(" ")),
        );
    }
    let text = words.join(" ");
    let last = normalise_word(words[words.len() - 1]);
    if ORG_SUFFIXES.contains(&last.as_str()) {
        (None, Some(text))
    } else {
        (Some(text), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(lines: &[&str]) -> HashMap<String, Person> {
        let mut d = Vec::new();
        parse_people(lines, 0, &mut d)
    }

    #[test]
    fn contact_lines() {
        let p = people(&[
            "[Chris_Anderson] Chris Anderson Daegis, Inc. mailto:ianaportmaster&daegis.com 2012-07-31",
            "[Daegis_Inc] Daegis, Inc. mailto:ianaportmaster&daegis.com 2012-07-31",
            "[IETF_Chair] IETF Chair IETF mailto:chair&ietf.org",
            "[Eduardo_Rosenberg_de] Eduardo Rosenberg de Moura mailto:eduardor&spacenet.com.br",
            "[brockman] mailto:brockman&ccmail.com",
            "[Adam_Ernst_2] Adam Ernst mailto:contact&cosmicsoft.net 2002-06",
        ]);
        let get = |id: &str| p.get(id).cloned().unwrap_or_default();
        let chris = get("Chris_Anderson");
        assert_eq!(chris.name.as_deref(), Some("Chris Anderson"));
        assert_eq!(chris.organization.as_deref(), Some("Daegis, Inc."));
        assert_eq!(
            chris.uri.as_deref(),
            Some("mailto:ianaportmaster&daegis.com")
        );
        assert_eq!(chris.updated.as_deref(), Some("2012-07-31"));
        assert_eq!(
            get("Daegis_Inc").organization.as_deref(),
            Some("Daegis, Inc.")
        );
        assert_eq!(get("Daegis_Inc").name, None);
        assert_eq!(get("IETF_Chair").organization.as_deref(), Some("IETF"));
        assert_eq!(
            get("Eduardo_Rosenberg_de").name.as_deref(),
            Some("Eduardo Rosenberg de Moura")
        );
        let b = get("brockman");
        assert_eq!((b.name, b.organization), (None, None));
        assert_eq!(b.uri.as_deref(), Some("mailto:brockman&ccmail.com"));
        assert_eq!(get("Adam_Ernst_2").name.as_deref(), Some("Adam Ernst"));
    }

    #[test]
    fn trailing_note() {
        assert_eq!(
            split_trailing_note("Unassigned (Removed 2004-2-6)"),
            (
                "Unassigned".to_string(),
                Some("(Removed 2004-2-6)".to_string())
            )
        );
        assert_eq!(split_trailing_note("A26 (FAP-FGW)").1, None);
        assert_eq!(
            split_trailing_note("Unassigned (FRP-Released 12/7/00)").1,
            None
        );
    }

    #[test]
    fn row_starts() {
        let numbered = Some("whoispp 63 tcp whois++");
        assert!(starts_row(
            "3com-njack-1 5264 tcp 3Com Network Jack Port 1",
            numbered
        ));
        assert!(starts_row("4805-4826 Unassigned", numbered));
        assert!(starts_row("argus ARGUS Protocol", Some("49151 Reserved")));
        assert!(starts_row("argus ARGUS Protocol", None));
        assert!(starts_row(
            "chaos CHAOS Protocol",
            Some("argus ARGUS Protocol")
        ));
        assert!(!starts_row("common service discovery", numbered));
        assert!(starts_row("7ksonar tcp Seven Kingdoms", numbered));
        assert!(!starts_row(
            "IANA assigned this well-formed service name",
            numbered
        ));
        assert!(!starts_row(
            "IANA assigned this well-formed service name",
            None
        ));
    }
}
