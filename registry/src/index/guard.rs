//! What a reload must pass before it is applied: the [`ReloadGuard`]
//! (refuse an empty registry, or one that shrank past a limit) and the
//! [`ApplyError`] a refused reload gives.

/// Guard rails applied to every reload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReloadGuard {
    /// Reject a new registry whose record count is lower than the current
    /// one by more than this fraction (0.5 = refuse to lose more than half).
    /// 1.0 disables the check.
    pub max_shrink: f64,
}

impl Default for ReloadGuard {
    fn default() -> Self {
        Self { max_shrink: 0.5 }
    }
}

impl ReloadGuard {
    /// A guard that accepts any non-empty registry.
    pub fn permissive() -> Self {
        Self { max_shrink: 1.0 }
    }

    /// Checks a record count change.
    pub fn check(&self, current: usize, new: usize) -> Result<(), ApplyError> {
        if new == 0 {
            return Err(ApplyError::Empty);
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
