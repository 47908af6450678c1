//! Parser for nmap-services: `name<TAB>port/protocol<TAB>frequency[<TAB>#
//! comment]` per line, `#` comment lines ignored.
//!
//! The open frequency is kept in [`Record::open_frequency`]; the comment
//! (after `#`, trimmed, `|`-joined aliases and descriptions left as they
//! are) becomes the description. Names are kept as written, including nmap's
//! placeholder `unknown` and case variants such as `X11` next to `x11`.

use super::limits::Budget;
use super::services::parse_port_proto;
use super::{ParseError, ParseLimits, Parsed};
use crate::model::{PortRange, Record, RecordState};
use crate::registry::{Registry, SourceInfo};

/// Parses the whole text of an nmap-services file within the default
/// [`ParseLimits`].
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    parse_with_limits(text, &ParseLimits::default())
}

/// Parses the whole text of an nmap-services file within `limits`.
pub fn parse_with_limits(text: &str, limits: &ParseLimits) -> Result<Parsed, ParseError> {
    let mut budget = Budget::new(limits);
    let mut records = Vec::with_capacity(budget.capacity(text.len(), 36));
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let bad = |reason: String| ParseError::BadRow { line, reason };
        let (body, comment) = match raw.split_once('#') {
            Some((body, comment)) => (body, Some(comment.trim())),
            None => (raw, None),
        };
        let mut fields = body.split_whitespace();
        let Some(name) = fields.next() else {
            continue;
        };
        let port_proto = fields
            .next()
            .ok_or_else(|| bad(format!("entry {name:?} has no port/protocol")))?;
        let (port, protocol) = parse_port_proto(port_proto).map_err(&bad)?;
        let frequency = match fields.next() {
            Some(f) => {
                let value: f64 = f
                    .parse()
                    .map_err(|_| bad(format!("open frequency {f:?} is not a number")))?;
                if !(0.0..=1.0).contains(&value) {
                    return Err(bad(format!("open frequency {f} is outside 0..1")));
                }
                Some(value)
            }
            None => None,
        };
        if let Some(extra) = fields.next() {
            return Err(bad(format!(
                "unexpected field {extra:?} before the comment"
            )));
        }
        let description = comment.unwrap_or("").to_string();
        let name = name.to_string();
        let state = RecordState::derive(Some(&name), &description, None);
        let record = Record {
            name: Some(name),
            ports: Some(PortRange::single(port)),
            protocol: Some(protocol),
            description,
            open_frequency: frequency,
            state,
            ..Record::default()
        };
        budget.admit(&record, line)?;
        records.push(record);
    }
    Ok(Parsed {
        registry: Registry::new(records, SourceInfo::default()),
        diagnostics: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    #[test]
    fn entries() {
        let text = "# Fields in this file are: Service name, portnum/protocol, open-frequency, optional comments\n#\ntcpmux\t1/tcp\t0.001995\t# TCP Port Service Multiplexer [rfc-1078]\nunknown\t3/tcp\t0.001242\nX11:1\t6001/tcp\t0.000502\t# X Window server\n";
        let reg = parse(text).expect("parses").registry;
        assert_eq!(reg.len(), 3);
        assert_eq!(reg.records[0].open_frequency, Some(0.001995));
        assert_eq!(
            reg.records[0].description,
            "TCP Port Service Multiplexer [rfc-1078]"
        );
        assert_eq!(reg.records[1].name.as_deref(), Some("unknown"));
        assert_eq!(reg.records[1].description, "");
        assert_eq!(reg.records[2].name.as_deref(), Some("X11:1"));
        assert_eq!(reg.records[2].protocol, Some(Protocol::Tcp));
    }

    #[test]
    fn bad_lines() {
        for text in [
            "x\t1/tcp\tabc\n",
            "x\t1/tcp\t2.5\n",
            "x\t99999/tcp\t0.1\n",
            "x\n",
        ] {
            assert_eq!(parse(text).expect_err(text).line(), Some(1));
        }
    }
}
