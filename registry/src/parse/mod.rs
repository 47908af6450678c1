//! Reading the registry from bytes: format detection, gzip, and one parser
//! per format.
//!
//! [`parse`] returns a [`Parsed`] (the [`Registry`] plus line-numbered
//! [`Diagnostic`]s for rows it had to interpret) or a [`ParseError`] that
//! rejects the file as a whole, naming the line: a truncated file (an
//! unterminated quoted field, a missing record terminator), a file that is
//! not the format it claims, or a file that yields no records. A parser never
//! returns a partial registry.
//!
//! # Layout
//! * [`csv`]: the official IANA CSV (12 columns, quoted multi-line fields).
//! * [`xml`]: the official IANA XML, with its `<people>` table.
//! * [`text`]: the plain-text rendering IANA's page gives when copied, with
//!   its contact table.
//! * [`services`]: services(5), i.e. `/etc/services`.
//! * [`nmap`]: nmap-services, keeping the open frequency.
//! * [`limits`]: [`ParseLimits`], the bounds on input size, record count
//!   and record size that every parser enforces while it reads.

pub mod csv;
pub mod limits;
pub mod nmap;
pub mod services;
pub mod text;
pub mod xml;

pub use limits::ParseLimits;

use std::fmt;
use std::io::Read as _;

use sha2::{Digest, Sha256};

use crate::registry::Registry;

/// The formats the registry is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The official IANA CSV.
    IanaCsv,
    /// The official IANA XML.
    IanaXml,
    /// The IANA plain-text rendering.
    IanaText,
    /// services(5).
    Services,
    /// nmap-services.
    NmapServices,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [
        Self::IanaCsv,
        Self::IanaXml,
        Self::IanaText,
        Self::Services,
        Self::NmapServices,
    ];

    /// The format's name: `iana-csv`, `iana-xml`, `iana-text`, `services`,
    /// `nmap-services`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::IanaCsv => "iana-csv",
            Self::IanaXml => "iana-xml",
            Self::IanaText => "iana-text",
            Self::Services => "services",
            Self::NmapServices => "nmap-services",
        }
    }

    /// Parses a format name as [`Format::as_str`] writes it (also accepts
    /// `csv`, `xml`, `text`, `nmap`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "iana-csv" | "csv" => Some(Self::IanaCsv),
            "iana-xml" | "xml" => Some(Self::IanaXml),
            "iana-text" | "text" | "txt" => Some(Self::IanaText),
            "services" | "etc-services" => Some(Self::Services),
            "nmap-services" | "nmap" => Some(Self::NmapServices),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row the parser had to interpret, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based physical line where the row starts.
    pub line: usize,
    /// What was interpreted and how.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A successful parse.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The registry (its `source` has format, hash and gzip filled in; the
    /// caller sets `path`).
    pub registry: Registry,
    /// Rows the parser had to interpret.
    pub diagnostics: Vec<Diagnostic>,
}

/// Why a file was rejected as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The content is not the format it was parsed as (or, when detecting,
    /// none of the known formats).
    #[error("line {line}: not a valid {format} file: {reason}")]
    WrongFormat {
        /// The format tried.
        format: Format,
        /// 1-based line where it went wrong.
        line: usize,
        /// Why.
        reason: String,
    },
    /// The content is cut short (an unterminated quoted field, an unclosed
    /// element, a missing record terminator).
    #[error("line {line}: file is truncated: {reason}")]
    Truncated {
        /// 1-based line where the unfinished construct starts.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A row is malformed beyond interpretation.
    #[error("line {line}: {reason}")]
    BadRow {
        /// 1-based line of the row.
        line: usize,
        /// Why.
        reason: String,
    },
    /// The content is not valid UTF-8.
    #[error("line {line}: invalid UTF-8 (byte offset {offset})")]
    InvalidUtf8 {
        /// 1-based line of the first invalid byte.
        line: usize,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The file parsed but holds no records.
    #[error("no records found in {format} file")]
    Empty {
        /// The format parsed.
        format: Format,
    },
    /// The format could not be recognised.
    #[error("unrecognised format: {0}")]
    UnknownFormat(String),
    /// Gzip decompression failed (or the content decompresses to more
    /// than [`ParseLimits::max_bytes`]).
    #[error("gzip: {0}")]
    Gzip(String),
    /// The input is larger than [`ParseLimits::max_bytes`].
    #[error("input is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// The input's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The file passes a [`ParseLimits`] bound (record count, record size,
    /// total size of the records); nothing is kept.
    #[error("line {line}: {reason}")]
    Limit {
        /// 1-based line of the record that passed the bound.
        line: usize,
        /// Which bound, and by how much.
        reason: String,
    },
}

impl ParseError {
    /// The 1-based line the error names, when it names one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::WrongFormat { line, .. }
            | Self::Truncated { line, .. }
            | Self::BadRow { line, .. }
            | Self::InvalidUtf8 { line, .. }
            | Self::Limit { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Largest decompressed size accepted from a gzip file by default (a
/// guard against decompression bombs; the full registry is about 4 MB as
/// XML): [`ParseLimits::DEFAULT_MAX_BYTES`].
pub const MAX_DECOMPRESSED_BYTES: u64 = ParseLimits::DEFAULT_MAX_BYTES;

/// Parses `bytes` as `format`, or as the detected format when `format` is
/// `None`, within the default [`ParseLimits`]. Gzip-compressed input
/// (detected by its magic bytes) is decompressed first.
///
/// The returned registry's `source` has format, gzip flag, content hash
/// (SHA-256 of `bytes` as given) and diagnostic count filled in; `path` is
/// left empty for the caller.
pub fn parse(bytes: &[u8], format: Option<Format>) -> Result<Parsed, ParseError> {
    parse_with_limits(bytes, format, &ParseLimits::default())
}

/// [`parse`] within `limits`: input larger than `limits.max_bytes` (raw or
/// decompressed) is refused before it is parsed, and every parser refuses
/// the file as soon as it passes a record bound.
pub fn parse_with_limits(
    bytes: &[u8],
    format: Option<Format>,
    limits: &ParseLimits,
) -> Result<Parsed, ParseError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(ParseError::TooLarge {
            size: bytes.len() as u64,
            max: limits.max_bytes,
        });
    }
    let content_hash = hex::encode(Sha256::digest(bytes));
    let gzip = bytes.starts_with(&[0x1f, 0x8b]);
    let decompressed;
    let data: &[u8] = if gzip {
        let max = limits.max_bytes;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .take(max.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| ParseError::Gzip(e.to_string()))?;
        if out.len() as u64 > max {
            return Err(ParseError::Gzip(format!(
                "decompressed size exceeds {max} bytes"
            )));
        }
        decompressed = out;
        &decompressed
    } else {
        bytes
    };
    let text = as_utf8(data)?;
    let format = match format {
        Some(f) => f,
        None => detect(text)?,
    };
    let mut parsed = match format {
        Format::IanaCsv => csv::parse_with_limits(text, limits)?,
        Format::IanaXml => xml::parse_with_limits(text, limits)?,
        Format::IanaText => text::parse_with_limits(text, limits)?,
        Format::Services => services::parse_with_limits(text, limits)?,
        Format::NmapServices => nmap::parse_with_limits(text, limits)?,
    };
    if parsed.registry.is_empty() {
        return Err(ParseError::Empty { format });
    }
    let source = &mut parsed.registry.source;
    source.format = Some(format);
    source.gzip = gzip;
    source.content_hash = content_hash;
    source.diagnostic_count = parsed.diagnostics.len();
    Ok(parsed)
}

/// Decodes UTF-8 (a leading byte-order mark is skipped), reporting the line
/// of the first invalid byte.
pub fn as_utf8(data: &[u8]) -> Result<&str, ParseError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    std::str::from_utf8(data).map_err(|e| {
        let offset = e.valid_up_to();
        ParseError::InvalidUtf8 {
            line: line_of(data, offset),
            offset,
        }
    })
}

/// 1-based line number of byte `offset` in `data`.
pub fn line_of(data: &[u8], offset: usize) -> usize {
    data[..offset.min(data.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Recognises the format from the content.
///
/// * XML: the first non-blank character is `<`.
/// * IANA CSV: the first line is the 12-column header starting
///   `Service Name,Port Number,`.
/// * IANA text: the text contains the title line "Service Name and
///   Transport Protocol Port Number Registry" and a header line starting
///   `Service Name Port Number`.
/// * nmap-services: most data lines match `name<TAB>port/proto<TAB>frequency`.
/// * services(5): most data lines match `name<WS>port/proto`.
pub fn detect(text: &str) -> Result<Format, ParseError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('<') {
        return Ok(Format::IanaXml);
    }
    let first_line = trimmed.lines().next().unwrap_or("");
    if first_line.starts_with("Service Name,Port Number,") {
        return Ok(Format::IanaCsv);
    }
    if text.contains("Service Name and Transport Protocol Port Number Registry")
        && text
            .lines()
            .any(|l| l.starts_with("Service Name Port Number"))
    {
        return Ok(Format::IanaText);
    }
    let mut nmap_like = 0usize;
    let mut services_like = 0usize;
    let mut data_lines = 0usize;
    for line in text.lines().take(2000) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        data_lines += 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port_proto = fields.get(1).is_some_and(|f| {
            f.split_once('/')
                .is_some_and(|(p, proto)| p.parse::<u16>().is_ok() && !proto.is_empty())
        });
        if !port_proto {
            continue;
        }
        services_like += 1;
        if line
            .split('\t')
            .nth(2)
            .is_some_and(|f| f.trim().parse::<f64>().is_ok())
        {
            nmap_like += 1;
        }
    }
    if data_lines > 0 && nmap_like * 10 >= data_lines * 9 {
        return Ok(Format::NmapServices);
    }
    if data_lines > 0 && services_like * 10 >= data_lines * 9 {
        return Ok(Format::Services);
    }
    Err(ParseError::UnknownFormat(format!(
        "first line {:?} is none of: IANA CSV header, XML, IANA text, services(5), nmap-services",
        first_line.chars().take(80).collect::<String>()
    )))
}
