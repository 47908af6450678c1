//! What a reload must pass before it is applied: the [`ReloadGuard`]
//! (refuse an empty registry, one under a minimum of records, or one that
//! shrank past a limit) and the [`ApplyError`] a refused reload gives.
//!
//! The check is pure (two record counts), so every writer of a registry
//! applies the same rules: the server's reloads through
//! [`Index::apply`](crate::Index::apply), and `portolan sync` before it
//! writes a downloaded file where a server will reload it.

/// Guard rails applied to every reload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReloadGuard {
    /// Reject a new registry whose record count is lower than the current
    /// one by more than this fraction (0.5 = refuse to lose more than half).
    /// 1.0 disables the check.
    pub max_shrink: f64,
    /// Reject a new registry with fewer records than this, whatever the
    /// current one holds (a first download has nothing to shrink from).
    /// The default, 1, refuses only an empty registry.
    pub min_records: usize,
}

impl Default for ReloadGuard {
    fn default() -> Self {
        Self {
            max_shrink: 0.5,
            min_records: 1,
        }
    }
}

impl ReloadGuard {
    /// A guard that accepts any non-empty registry.
    pub fn permissive() -> Self {
        Self {
            max_shrink: 1.0,
            min_records: 1,
        }
    }

    /// Checks a record count change (`current` is 0 when there is no
    /// current registry).
    pub fn check(&self, current: usize, new: usize) -> Result<(), ApplyError> {
        if new == 0 {
            return Err(ApplyError::Empty);
        }
        if new < self.min_records {
            return Err(ApplyError::TooFew {
                new,
                min_records: self.min_records,
            });
        }
        let floor = (current as f64) * (1.0 - self.max_shrink.clamp(0.0, 1.0));
        if (new as f64) < floor {
            return Err(ApplyError::Shrink {
                current,
                new,
                max_shrink: self.max_shrink,
            });
        }
        Ok(())
    }
}

/// Why a new registry was not applied. The current registry keeps serving.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The new registry has no records.
    #[error("refusing an empty registry")]
    Empty,
    /// The new registry holds fewer records than the guard's minimum.
    #[error("refusing a registry of {new} records: fewer than the minimum of {min_records}")]
    TooFew {
        /// New record count.
        new: usize,
        /// The guard's minimum.
        min_records: usize,
    },
    /// The new registry shrinks by more than the guard allows.
    #[error(
        "refusing a registry of {new} records: it would drop {dropped} of the current {current} \
         (more than the allowed {pct:.0}%)",
        dropped = current - new,
        pct = max_shrink * 100.0
    )]
    Shrink {
        /// Current record count.
        current: usize,
        /// New record count.
        new: usize,
        /// The guard's limit.
        max_shrink: f64,
    },
    /// A reload names a layer the registry does not have.
    #[error("no layer is named {0:?}")]
    UnknownLayer(String),
}
