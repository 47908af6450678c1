//! Retry policy and jittered exponential backoff, shared by unary calls
//! (retried on UNAVAILABLE only) and the background watch tasks
//! (reconnecting after a broken stream).

use std::time::Duration;

/// How unary calls are retried. Only [`crate::Error::Unavailable`] is
/// retried; every other error is returned at once.
///
/// The delay before retry `n` (0-based) is
/// `min(max_backoff, initial_backoff * 2^n)` multiplied by a random factor
/// in `[0.5, 1.0)` ("equal jitter"), so clients that lost the same server
/// do not come back in lockstep.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use portolan_client::RetryPolicy;
///
/// let policy = RetryPolicy { max_attempts: 5, ..RetryPolicy::default() };
/// let d = policy.backoff(3);
/// assert!(d <= policy.max_backoff);
/// assert!(d >= policy.initial_backoff * 4);
/// assert_eq!(RetryPolicy::none().max_attempts, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry (before jitter).
    pub initial_backoff: Duration,
    /// Upper bound of the delay (before jitter).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The jittered delay before retry number `retry` (0-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        let base = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        base.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        for n in 0..40 {
            let d = p.backoff(n);
            assert!(d <= p.max_backoff, "{n}: {d:?}");
            assert!(d >= (p.initial_backoff * 2u32.pow(n.min(5))).min(p.max_backoff) / 2);
        }
    }
}
