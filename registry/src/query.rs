//! Query values shared by the index and its callers (being written).

/// Filters shared by list and search.
#[derive(Debug, Clone, Default)]
pub struct Filter;

/// A search.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery;
