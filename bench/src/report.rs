//! Result blocks: every scenario returns a [`Report`], printed as a compact
//! text block or, with `--json`, as one JSON object. A report lists its
//! target checks ([`Check`]) and its failures; any failure makes the binary
//! exit non-zero (a missed performance target alone does not).

use std::fmt::Write as _;

use crate::load::RunStats;

/// One target checked by a scenario.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// What is checked, e.g. "throughput vs baseline".
    pub name: String,
    /// The target, e.g. ">= 0.90".
    pub target: String,
    /// The measured value, formatted.
    pub measured: String,
    /// Whether the target was met.
    pub met: bool,
}

impl Check {
    /// A check of `measured` against `target` text, met when `met`.
    pub fn new(name: &str, target: &str, measured: String, met: bool) -> Self {
        Self {
            name: name.into(),
            target: target.into(),
            measured,
            met,
        }
    }
}

/// What every scenario returns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Scenario name (`steady`, `reload`, ...).
    pub scenario: String,
    /// The command line that produced it.
    pub command: String,
    /// Host load average (1, 5, 15 min) at the end, when readable.
    pub load_average: Option<[f64; 3]>,
    /// Scenario-specific figures.
    pub details: serde_json::Value,
    /// Target checks.
    pub checks: Vec<Check>,
    /// Unexpected failures (failed requests, versions going backwards,
    /// streams that never got the event, ...). Non-empty means exit 1.
    pub failures: Vec<String>,
    /// The compact text block (what is printed without `--json`, less the
    /// checks and failures listed above).
    #[serde(rename = "summary")]
    pub text: String,
}

impl Report {
    /// A report for `scenario` with its text block and details.
    pub fn new(scenario: &str, text: String, details: serde_json::Value) -> Self {
        Self {
            scenario: scenario.into(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            load_average: load_average(),
            details,
            checks: Vec::new(),
            failures: Vec::new(),
            text,
        }
    }

    /// The text block, with checks and failures appended.
    pub fn render(&self) -> String {
        let mut out = format!("== {} ==\n{}", self.scenario, self.text);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        for c in &self.checks {
            let _ = writeln!(
                out,
                "  [{}] {}: {} (target {})",
                if c.met { "met " } else { "MISS" },
                c.name,
                c.measured,
                c.target
            );
        }
        for f in &self.failures {
            let _ = writeln!(out, "  FAILURE: {f}");
        }
        if let Some([a, b, c]) = self.load_average {
            let _ = writeln!(out, "  load average: {a:.2} {b:.2} {c:.2}");
        }
        out
    }
}

/// The host's load average from `/proc/loadavg`.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// One line describing a load run.
pub fn run_line(r: &RunStats) -> String {
    let mut s = format!(
        "{:<8} {:>9.0} req/s  p50 {:>7.1}us  p90 {:>7.1}us  p99 {:>7.1}us  p99.9 {:>8.1}us  \
         n={} ok={} nf={} failed={}",
        r.server.to_string(),
        r.throughput_rps,
        r.latency.p50_us,
        r.latency.p90_us,
        r.latency.p99_us,
        r.latency.p999_us,
        r.requests,
        r.ok,
        r.not_found,
        r.failed
    );
    if r.mean_reply_bytes > 0.0 {
        let _ = write!(s, "  reply {:.0}B", r.mean_reply_bytes);
    }
    if let Some(cpu) = r.server_cpu_us_per_request {
        let _ = write!(s, "  cpu {cpu:.1}us/req");
    }
    if let Some(rss) = r.server_peak_rss_mib {
        let _ = write!(s, "  peakRSS {rss:.1}MiB");
    }
    if !r.errors.is_empty() {
        let _ = write!(s, "  errors {:?}", r.errors);
    }
    s
}

/// Failure messages for a run (failed requests, version regressions).
pub fn run_failures(r: &RunStats) -> Vec<String> {
    let mut f = Vec::new();
    if r.failed > 0 {
        f.push(format!(
            "{}: {} requests failed unexpectedly: {:?}",
            r.server, r.failed, r.errors
        ));
    }
    if r.version_regressions > 0 {
        f.push(format!(
            "{}: {} responses went back to an older version on their connection",
            r.server, r.version_regressions
        ));
    }
    f
}
