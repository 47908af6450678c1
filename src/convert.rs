//! Conversions (being written).
