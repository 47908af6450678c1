//! Diffs between registries (being written).

/// A diff.
#[derive(Debug, Clone, Default)]
pub struct Diff;
