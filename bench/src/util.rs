//! Small helpers: human durations ("500ms", "60s", "10m"), the loopback-only
//! rule for targets, and percentiles over plain samples.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Parses a duration such as `500ms`, `2s`, `1.5s`, `10m`, `1h` or `250us`.
/// A bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 500ms, 60s, 10m)"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "ns" => value / 1e9,
        "m" | "min" | "mins" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit `{other}` in `{text}`")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("`{text}` is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Resolves a target (`127.0.0.1:50051`, `localhost:50051`,
/// `http://[::1]:50051`) and refuses anything that is not a loopback
/// address: this tool generates load and must never be pointed elsewhere.
pub fn loopback_target(target: &str) -> Result<SocketAddr> {
    let bare = target
        .strip_prefix("http://")
        .unwrap_or(target)
        .trim_end_matches('/');
    if bare.contains("://") {
        bail!("unsupported target scheme in `{target}` (plain http on loopback only)");
    }
    let addrs: Vec<SocketAddr> = bare
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve target `{target}`"))?
        .collect();
    let Some(first) = addrs.first().copied() else {
        bail!("target `{target}` resolves to no address");
    };
    if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        bail!("refusing non-loopback target `{target}` ({bad}): load tests target loopback only");
    }
    Ok(first)
}

/// The `q` quantile (0..=1) of `samples` by nearest rank; `None` if empty.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied()
}

/// Summary statistics of plain samples, in the samples' unit.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Smallest sample.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Largest sample.
    pub max: f64,
}

impl Summary {
    /// Summarises `samples` (all zero when empty).
    pub fn of(samples: &[f64]) -> Self {
        Self {
            n: samples.len(),
            min: quantile(samples, 0.0).unwrap_or(0.0),
            p50: quantile(samples, 0.5).unwrap_or(0.0),
            p90: quantile(samples, 0.9).unwrap_or(0.0),
            max: quantile(samples, 1.0).unwrap_or(0.0),
        }
    }
}

/// Milliseconds in a duration, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn loopback_only() {
        assert!(loopback_target("127.0.0.1:50051").is_ok());
        assert!(loopback_target("http://127.0.0.1:50051").is_ok());
        assert!(loopback_target("[::1]:50051").is_ok());
        assert!(loopback_target("10.1.2.3:50051").is_err());
        assert!(loopback_target("192.168.0.1:80").is_err());
        assert!(loopback_target("https://127.0.0.1:50051").is_err());
    }

    #[test]
    fn quantiles() {
        let s = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&s, 0.5), Some(3.0));
        assert_eq!(quantile(&s, 1.0), Some(5.0));
        assert_eq!(quantile(&s, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
