//! The live index (being written).
