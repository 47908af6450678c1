//! Parser for the services format (being written).

use super::{ParseError, Parsed};

/// Parses the whole text.
pub fn parse(_text: &str) -> Result<Parsed, ParseError> {
    Err(ParseError::UnknownFormat("services parser not written yet".into()))
}
