//! Resource limits of one parse ([`ParseLimits`]) and the running count
//! that enforces them while a parser builds records (`Budget`).
//!
//! Every bound is checked *while* parsing, before the record that would
//! cross it is kept, so a hostile file costs at most the limits, never the
//! size of what it describes:
//! * the input (raw, and again after gzip) is at most
//!   [`ParseLimits::max_bytes`];
//! * a file holds at most [`ParseLimits::max_records`] records;
//! * one record holds at most [`ParseLimits::max_record_bytes`] bytes of
//!   text (every field, every person's details) and at most
//!   [`ParseLimits::max_record_items`] list items (assignees, contacts,
//!   references, aliases);
//! * the estimated heap footprint of all records kept (the record structs,
//!   their text and list items) is at most [`ParseLimits::max_bytes`] too,
//!   so no format can amplify its input (e.g. an XML person referenced by
//!   every record is copied into each) past that.
//!
//! A file over a limit is refused as a whole with [`ParseError::Limit`]
//! naming the line, or [`ParseError::TooLarge`] for the input size.

use super::ParseError;
use crate::model::{Person, Record};

/// Bounds on what one parse reads and builds. The defaults fit the real
/// registry with a wide margin: the full IANA XML is 3.9 MB and the
/// largest real file, nmap-services, has 27,461 entries; the longest real
/// record (`www-http`'s notes) holds about 2 KB of text in fewer than ten
/// list items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest input in bytes, compressed or decompressed; also the bound
    /// on the estimated footprint of the records built.
    pub max_bytes: u64,
    /// Most records in one file.
    pub max_records: usize,
    /// Most bytes of text in one record (all fields and people together).
    pub max_record_bytes: usize,
    /// Most list items (assignees, contacts, references, aliases) in one
    /// record.
    pub max_record_items: usize,
}

impl ParseLimits {
    /// Default [`ParseLimits::max_bytes`]: 64 MiB, 16 times the full IANA
    /// XML (the largest real rendering).
    pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
    /// Default [`ParseLimits::max_records`]: 200,000, about 14 times the
    /// IANA registry (14,533 records) and 7 times nmap-services (27,461).
    /// At about 300 bytes a record struct, the records of a file at this
    /// bound hold about 60 MB, within the footprint bound.
    pub const DEFAULT_MAX_RECORDS: usize = 200_000;
    /// Default [`ParseLimits::max_record_bytes`]: 64 KiB, 30 times the
    /// longest real record.
    pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 * 1024;
    /// Default [`ParseLimits::max_record_items`]: 256 (real records list at
    /// most a handful).
    pub const DEFAULT_MAX_RECORD_ITEMS: usize = 256;
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_records: Self::DEFAULT_MAX_RECORDS,
            max_record_bytes: Self::DEFAULT_MAX_RECORD_BYTES,
            max_record_items: Self::DEFAULT_MAX_RECORD_ITEMS,
        }
    }
}

/// The running count of one parse against its [`ParseLimits`].
#[derive(Debug)]
pub(crate) struct Budget<'a> {
    limits: &'a ParseLimits,
    records: usize,
    footprint: u64,
}

impl<'a> Budget<'a> {
    pub(crate) fn new(limits: &'a ParseLimits) -> Self {
        Self {
            limits,
            records: 0,
            footprint: 0,
        }
    }

    /// Counts one more record (or record-to-be) starting on `line`;
    /// refuses the file when that passes [`ParseLimits::max_records`].
    pub(crate) fn count(&mut self, line: usize) -> Result<(), ParseError> {
        if self.records >= self.limits.max_records {
            return Err(ParseError::Limit {
                line,
                reason: format!(
                    "more than {} records (the record limit)",
                    self.limits.max_records
                ),
            });
        }
        self.records += 1;
        Ok(())
    }

    /// Checks one built record from `line` against the per-record limits
    /// and adds its footprint to the total.
    pub(crate) fn check(&mut self, record: &Record, line: usize) -> Result<(), ParseError> {
        let (text, items) = measure(record);
        if text > self.limits.max_record_bytes {
            return Err(ParseError::Limit {
                line,
                reason: format!(
                    "record holds {text} bytes of text, over the {}-byte limit per record",
                    self.limits.max_record_bytes
                ),
            });
        }
        if items > self.limits.max_record_items {
            return Err(ParseError::Limit {
                line,
                reason: format!(
                    "record lists {items} assignees, contacts, references and aliases, over the limit of {} per record",
                    self.limits.max_record_items
                ),
            });
        }
        let footprint = std::mem::size_of::<Record>()
            + text
            + items * std::mem::size_of::<Person>().max(std::mem::size_of::<String>());
        self.footprint += footprint as u64;
        if self.footprint > self.limits.max_bytes {
            return Err(ParseError::Limit {
                line,
                reason: format!(
                    "the records read so far take more than {} bytes (the data size limit)",
                    self.limits.max_bytes
                ),
            });
        }
        Ok(())
    }

    /// [`Budget::count`] then [`Budget::check`].
    pub(crate) fn admit(&mut self, record: &Record, line: usize) -> Result<(), ParseError> {
        self.count(line)?;
        self.check(record, line)
    }

    /// [`ParseLimits::max_record_items`], for a parser that must check a
    /// count before building the items.
    pub(crate) fn max_record_items(&self) -> usize {
        self.limits.max_record_items
    }

    /// Capacity to reserve for the records of `input_len` bytes at about
    /// `bytes_per_record`: never more than the record limit.
    pub(crate) fn capacity(&self, input_len: usize, bytes_per_record: usize) -> usize {
        (input_len / bytes_per_record.max(1) + 1).min(self.limits.max_records)
    }
}

/// Bytes of text and number of list items a record holds.
fn measure(record: &Record) -> (usize, usize) {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let person = |p: &Person| {
        p.id.len() + opt(&p.name) + opt(&p.organization) + opt(&p.uri) + opt(&p.updated)
    };
    let text = opt(&record.name)
        + record.description.len()
        + record.assignees.iter().map(person).sum::<usize>()
        + record.contacts.iter().map(person).sum::<usize>()
        + record.references.iter().map(String::len).sum::<usize>()
        + opt(&record.service_code)
        + opt(&record.unauthorized_use)
        + opt(&record.notes)
        + record.aliases.iter().map(String::len).sum::<usize>();
    let items = record.assignees.len()
        + record.contacts.len()
        + record.references.len()
        + record.aliases.len();
    (text, items)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::parse::{Format, csv, parse_with_limits};

    const HEAD: &str = "Service Name,Port Number,Transport Protocol,Description,Assignee,Contact,Registration Date,Modification Date,Reference,Service Code,Unauthorized Use Reported,Assignment Notes\r\n";

    fn rows(count: usize) -> String {
        let mut text = String::from(HEAD);
        for i in 0..count {
            text.push_str(&format!("s{i},{},tcp,d,,,,,,,,\r\n", i % 65536));
        }
        text
    }

    fn small(max_records: usize) -> ParseLimits {
        ParseLimits {
            max_records,
            ..ParseLimits::default()
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).expect("in memory");
        encoder.finish().expect("in memory")
    }

    #[test]
    fn the_record_limit_names_the_first_record_over_it() {
        let text = rows(11);
        assert_eq!(
            parse_with_limits(text.as_bytes(), None, &small(11))
                .expect("at the limit")
                .registry
                .len(),
            11
        );
        let err = parse_with_limits(text.as_bytes(), None, &small(10)).expect_err("over");
        // The header is line 1, the 11th row line 12.
        assert!(
            matches!(&err, ParseError::Limit { line: 12, reason } if reason.contains("more than 10 records")),
            "{err}"
        );
    }

    #[test]
    fn every_format_counts_records() {
        let limits = small(2);
        let services = "a 1/tcp\nb 2/tcp\nc 3/tcp\n";
        let nmap = "a\t1/tcp\t0.1\nb\t2/tcp\t0.1\nc\t3/tcp\t0.1\n";
        let record = "<record><name>a</name><protocol>tcp</protocol><number>1</number></record>\n";
        let xml = format!("<registry>\n{}</registry>\n", record.repeat(3));
        // The third record: line 3, or line 4 after `<registry>`.
        for (text, format, third) in [
            (services.to_string(), Format::Services, 3),
            (nmap.to_string(), Format::NmapServices, 3),
            (xml, Format::IanaXml, 4),
        ] {
            let err = parse_with_limits(text.as_bytes(), Some(format), &limits)
                .expect_err("three records, limit two");
            assert!(
                matches!(&err, ParseError::Limit { line, .. } if *line == third),
                "{format}: {err}"
            );
            assert!(
                parse_with_limits(text.as_bytes(), Some(format), &small(3)).is_ok(),
                "{format} within the limit"
            );
        }
    }

    #[test]
    fn a_gzip_expanding_to_millions_of_rows_is_refused_by_a_bound() {
        // 3 million tiny rows: about 60 MB decompressed, under the byte
        // limit, a few hundred KB compressed.
        let mut text = String::from(HEAD);
        for _ in 0..3_000_000 {
            text.push_str(",1,,,,,,,,,,\r\n");
        }
        assert!((text.len() as u64) < ParseLimits::DEFAULT_MAX_BYTES);
        let gz = gzip(text.as_bytes());
        assert!(gz.len() < 1024 * 1024, "{} bytes compressed", gz.len());
        drop(text);
        let err = parse_with_limits(&gz, None, &ParseLimits::default()).expect_err("refused");
        // 200,000 minimal records take about 64 MiB in memory, so the data
        // size bound and the record bound meet here: either refuses it
        // before the 200,001st record.
        assert!(
            matches!(&err, ParseError::Limit { line, reason }
                if *line <= ParseLimits::DEFAULT_MAX_RECORDS + 2
                    && (reason.contains("record limit") || reason.contains("data size limit"))),
            "{err}"
        );
    }

    #[test]
    fn input_over_the_byte_limit_is_refused_raw_and_decompressed() {
        let text = rows(100);
        let limits = ParseLimits {
            max_bytes: 1000,
            ..ParseLimits::default()
        };
        let err = parse_with_limits(text.as_bytes(), None, &limits).expect_err("raw");
        assert!(
            matches!(err, ParseError::TooLarge { max: 1000, size } if size == text.len() as u64),
            "{err}"
        );
        let gz = gzip(text.as_bytes());
        assert!(gz.len() < 1000);
        let err = parse_with_limits(&gz, None, &limits).expect_err("decompressed");
        assert!(
            matches!(&err, ParseError::Gzip(m) if m.contains("exceeds 1000 bytes")),
            "{err}"
        );
    }

    #[test]
    fn a_record_over_the_text_or_item_limit_is_refused_with_its_line() {
        let limits = ParseLimits {
            max_record_bytes: 100,
            max_record_items: 3,
            ..ParseLimits::default()
        };
        let long = format!(
            "{HEAD}a,1,tcp,d,,,,,,,,\r\nb,2,tcp,{},,,,,,,,\r\n",
            "x".repeat(101)
        );
        let err = csv::parse_with_limits(&long, &limits).expect_err("long field");
        assert!(
            matches!(&err, ParseError::Limit { line: 3, reason } if reason.contains("100-byte limit")),
            "{err}"
        );
        let refs = format!("{HEAD}a,1,tcp,d,,,,,[a][b][c][d],,,\r\n");
        let err = csv::parse_with_limits(&refs, &limits).expect_err("four references");
        assert!(
            matches!(&err, ParseError::Limit { line: 2, reason } if reason.contains("limit of 3")),
            "{err}"
        );
        let aliases = "a 1/tcp b c d e\n";
        let err = parse_with_limits(aliases.as_bytes(), Some(Format::Services), &limits)
            .expect_err("four aliases");
        assert!(matches!(err, ParseError::Limit { line: 1, .. }), "{err}");
    }

    #[test]
    fn xml_people_copied_into_every_record_count_against_the_byte_limit() {
        // One 10 KB person referenced by 200 records: 2 MB of copies from a
        // 20 KB file.
        let person = format!(
            "<person id=\"p\"><name>{}</name></person>",
            "n".repeat(10_000)
        );
        let record =
            "<record><name>a</name><number>1</number><xref type=\"person\" data=\"p\"/></record>\n";
        let xml = format!(
            "<registry>\n{}<people>{person}</people></registry>\n",
            record.repeat(200)
        );
        let limits = ParseLimits {
            max_bytes: 1024 * 1024,
            ..ParseLimits::default()
        };
        let err = parse_with_limits(xml.as_bytes(), None, &limits).expect_err("amplified");
        assert!(
            matches!(&err, ParseError::Limit { reason, .. } if reason.contains("data size limit")),
            "{err}"
        );
    }

    #[test]
    fn structural_bombs_are_refused_before_they_cost_memory() {
        let commas = format!("{HEAD}a,{}\r\n", ",".repeat(1000));
        let err = csv::parse(&commas).expect_err("1000 fields");
        assert!(
            matches!(&err, ParseError::BadRow { line: 2, reason } if reason.contains("more than 64 fields")),
            "{err}"
        );
        let nested = format!("<registry>{}", "<a>".repeat(100));
        let err =
            parse_with_limits(nested.as_bytes(), None, &ParseLimits::default()).expect_err("deep");
        assert!(err.to_string().contains("nested more than 64"), "{err}");
        let text = format!(
            "Service Name and Transport Protocol Port Number Registry\nService Name Port Number\n{}",
            "\n".repeat(100)
        );
        let err = parse_with_limits(text.as_bytes(), Some(Format::IanaText), &small(10))
            .expect_err("lines");
        assert!(err.to_string().contains("more than 40 lines"), "{err}");
    }
}
