//! Parser for services(5), the `/etc/services` format: one
//! `name port/protocol [aliases…] [# comment]` entry per line, `#` comment
//! lines and blank lines ignored.
//!
//! The name is kept as written, the aliases in order, the comment (text
//! after `#`, trimmed) becomes the description. Any protocol is accepted:
//! besides tcp/udp/sctp/dccp, Debian and Gentoo list AppleTalk `ddp`
//! entries, read as [`Protocol::Other`]. A line
//! without a valid `port/protocol` pair rejects the file with
//! [`ParseError::BadRow`].

use super::csv::parse_port;
use super::limits::Budget;
use super::{ParseError, ParseLimits, Parsed};
use crate::model::{PortRange, Protocol, Record, RecordState};
use crate::registry::{Registry, SourceInfo};

/// Parses the whole text of a services(5) file within the default
/// [`ParseLimits`].
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    parse_with_limits(text, &ParseLimits::default())
}

/// Parses the whole text of a services(5) file within `limits`.
pub fn parse_with_limits(text: &str, limits: &ParseLimits) -> Result<Parsed, ParseError> {
    let mut budget = Budget::new(limits);
    let mut records = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let (body, comment) = match raw.split_once('#') {
            Some((body, comment)) => (body, Some(comment.trim())),
            None => (raw, None),
        };
        let mut fields = body.split_whitespace();
        let Some(name) = fields.next() else {
            continue;
        };
        let port_proto = fields.next().ok_or_else(|| ParseError::BadRow {
            line,
            reason: format!("entry {name:?} has no port/protocol"),
        })?;
        let (port, protocol) =
            parse_port_proto(port_proto).map_err(|reason| ParseError::BadRow { line, reason })?;
        let description = comment.unwrap_or("").to_string();
        let name = name.to_string();
        let state = RecordState::derive(Some(&name), &description, None);
        budget.count(line)?;
        let aliases = fields
            .take(limits.max_record_items + 1)
            .map(str::to_string)
            .collect();
        let record = Record {
            name: Some(name),
            ports: Some(PortRange::single(port)),
            protocol: Some(protocol),
            description,
            aliases,
            state,
            ..Record::default()
        };
        budget.check(&record, line)?;
        records.push(record);
    }
    Ok(Parsed {
        registry: Registry::new(records, SourceInfo::default()),
        diagnostics: Vec::new(),
    })
}

/// Reads `80/tcp` (any protocol name, lowercased).
pub fn parse_port_proto(text: &str) -> Result<(u16, Protocol), String> {
    let (port, proto) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not port/protocol"))?;
    let port = parse_port(port)?;
    let protocol = Protocol::parse(proto).ok_or_else(|| format!("{text:?} names no protocol"))?;
    Ok((port, protocol))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        let text = "# comment\n\nsmtp\t\t25/tcp\t\tmail\nsubmissions\t465/tcp\t\tssmtp smtps urd # Submission over TLS [RFC8314]\nrtmp\t\t1/ddp\t\t\t# Routing Table Maintenance Protocol\n";
        let reg = parse(text).expect("parses").registry;
        assert_eq!(reg.len(), 3);
        assert_eq!(reg.records[0].aliases, ["mail"]);
        assert_eq!(reg.records[1].aliases, ["ssmtp", "smtps", "urd"]);
        assert_eq!(reg.records[1].description, "Submission over TLS [RFC8314]");
        assert_eq!(reg.records[2].protocol, Some(Protocol::Other("ddp".into())));
        assert_eq!(reg.records[2].ports, Some(PortRange::single(1)));
    }

    #[test]
    fn bad_lines() {
        for text in ["x 70000/tcp\n", "x tcp\n", "x\n", "x 80/\n", "x abc/tcp\n"] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.line(), Some(1));
        }
    }
}
