//! The request mix: what each request of the load asks for, drawn from the
//! registry the server serves (the `--data` file, or the embedded registry)
//! plus a few well-known ports, so hits, range hits and misses are all real.
//!
//! Default mix (percent of requests): 35 LookupPort on an exact port,
//! 15 LookupPort on a port inside a range, 30 LookupName, 10 misses
//! (names no registry has; NOT_FOUND is the expected answer), 10 BatchLookup
//! streams of [`Workload::batch_size`] items.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};
use portolan_registry::{Record, Registry, embedded, parse};
use rand::Rng;
use rand::seq::IndexedRandom;

/// One request of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// LookupPort on a port that a single-port record has.
    PortExact,
    /// LookupPort on a port strictly inside a range record.
    PortInRange,
    /// LookupName on a registered name.
    Name,
    /// A lookup that should miss (NOT_FOUND).
    Miss,
    /// One BatchLookup stream.
    Batch,
}

/// Weights (percent) of each [`Op`].
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Mix {
    /// LookupPort, exact port.
    pub port_exact: u32,
    /// LookupPort, port inside a range.
    pub port_in_range: u32,
    /// LookupName.
    pub name: u32,
    /// Misses.
    pub miss: u32,
    /// BatchLookup streams.
    pub batch: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            port_exact: 35,
            port_in_range: 15,
            name: 30,
            miss: 10,
            batch: 10,
        }
    }
}

impl Mix {
    /// Only unary exact-port lookups (for isolating one path).
    pub fn unary_only() -> Self {
        Self {
            port_exact: 40,
            port_in_range: 20,
            name: 30,
            miss: 10,
            batch: 0,
        }
    }

    /// Draws one operation.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> Op {
        let total = self.port_exact + self.port_in_range + self.name + self.miss + self.batch;
        let mut n = rng.random_range(0..total.max(1));
        for (weight, op) in [
            (self.port_exact, Op::PortExact),
            (self.port_in_range, Op::PortInRange),
            (self.name, Op::Name),
            (self.miss, Op::Miss),
        ] {
            if n < weight {
                return op;
            }
            n -= weight;
        }
        Op::Batch
    }
}

/// The ports and names the load draws from.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Ports of single-port records.
    pub exact_ports: Vec<u16>,
    /// Ports strictly inside range records.
    pub range_ports: Vec<u16>,
    /// Registered names (mixed case kept as written).
    pub names: Vec<String>,
    /// Names that no registry has.
    pub miss_names: Vec<String>,
    /// Ports no record covers (often none with the full registry, which
    /// covers every port with "Unassigned" ranges).
    pub miss_ports: Vec<u16>,
    /// Items per BatchLookup stream.
    pub batch_size: usize,
    /// The mix.
    pub mix: Mix,
}

/// Well-known ports always in the exact-port pool.
const WELL_KNOWN: [u16; 12] = [22, 25, 53, 80, 110, 143, 443, 993, 3306, 5432, 6379, 8080];

impl Workload {
    /// The workload for the registry in `data` (any format the registry
    /// parses), or the embedded registry when `None`.
    pub fn load(data: Option<&Path>) -> Result<Self> {
        let registry = match data {
            Some(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                parse(&bytes, None)
                    .with_context(|| format!("parsing {}", path.display()))?
                    .registry
            }
            None => embedded::registry(),
        };
        Ok(Self::from_registry(&registry))
    }

    /// The workload for `registry`.
    pub fn from_registry(registry: &Registry) -> Self {
        let mut exact: Vec<u16> = WELL_KNOWN.to_vec();
        let mut ranges = Vec::new();
        let mut names = Vec::new();
        let mut covered = vec![false; 65536];
        for Record { name, ports, .. } in &registry.records {
            if let Some(r) = ports {
                for p in r.start..=r.end {
                    covered[usize::from(p)] = true;
                }
                if r.start == r.end {
                    exact.push(r.start);
                } else {
                    // A port in the middle of the range, never an endpoint.
                    ranges.push(r.start + (r.end - r.start).div_ceil(2));
                }
            }
            if let Some(n) = name {
                names.push(n.clone());
            }
        }
        dedup(&mut exact);
        dedup(&mut ranges);
        let mut seen = HashSet::new();
        names.retain(|n| seen.insert(n.to_ascii_lowercase()));
        if ranges.is_empty() {
            ranges.push(6010);
        }
        if names.is_empty() {
            names.push("https".into());
        }
        let miss_ports = (0..=u16::MAX)
            .filter(|&p| !covered[usize::from(p)])
            .step_by(97)
            .take(64)
            .collect();
        let miss_names = (0..64)
            .map(|i| format!("portolan-bench-no-such-service-{i}"))
            .collect();
        Self {
            exact_ports: exact,
            range_ports: ranges,
            names,
            miss_names,
            miss_ports,
            batch_size: 8,
            mix: Mix::default(),
        }
    }

    /// A random exact port.
    pub fn exact_port<R: Rng + ?Sized>(&self, rng: &mut R) -> u16 {
        self.exact_ports.choose(rng).copied().unwrap_or(443)
    }

    /// A random in-range port.
    pub fn range_port<R: Rng + ?Sized>(&self, rng: &mut R) -> u16 {
        self.range_ports.choose(rng).copied().unwrap_or(6010)
    }

    /// A random registered name.
    pub fn name<R: Rng + ?Sized>(&self, rng: &mut R) -> &str {
        self.names
            .choose(rng)
            .map(String::as_str)
            .unwrap_or("https")
    }

    /// A random miss: an uncovered port when the registry has any (half the
    /// time), otherwise an unknown name.
    pub fn miss<R: Rng + ?Sized>(&self, rng: &mut R) -> Miss<'_> {
        if !self.miss_ports.is_empty() && rng.random_bool(0.5) {
            Miss::Port(self.miss_ports.choose(rng).copied().unwrap_or(0))
        } else {
            Miss::Name(
                self.miss_names
                    .choose(rng)
                    .map(String::as_str)
                    .unwrap_or("portolan-bench-no-such-service"),
            )
        }
    }
}

/// A lookup expected to be NOT_FOUND.
#[derive(Debug, Clone, Copy)]
pub enum Miss<'a> {
    /// A port no record covers.
    Port(u16),
    /// A name no record has.
    Name(&'a str),
}

fn dedup(v: &mut Vec<u16>) {
    v.sort_unstable();
    v.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_workload_has_every_pool() {
        let w = Workload::load(None).unwrap();
        assert!(!w.exact_ports.is_empty());
        assert!(!w.range_ports.is_empty());
        assert!(!w.names.is_empty());
        assert!(!w.miss_names.is_empty());
    }

    #[test]
    fn mix_covers_all_ops() {
        let mut rng = rand::rng();
        let mix = Mix::default();
        let ops: HashSet<_> = (0..10_000)
            .map(|_| format!("{:?}", mix.pick(&mut rng)))
            .collect();
        assert_eq!(ops.len(), 5);
    }
}
