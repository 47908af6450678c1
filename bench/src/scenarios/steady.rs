//! `steady`: lookups at a fixed load against Portolan and the baseline,
//! interleaved (baseline, portolan, baseline, portolan, ...) to cancel
//! drift, reporting each server's median run (by throughput) and
//! Portolan's throughput and p99 as ratios to the baseline's.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::{Portolan, SteadyArgs};
use crate::load::{self, LoadConfig, RunStats};
use crate::report::{Check, Report, run_failures, run_line};
use crate::servers::{self, Target};
use crate::workload::Workload;

/// Portolan against the baseline under one load.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    /// Every Portolan run, in order.
    pub portolan_runs: Vec<RunStats>,
    /// Every baseline run, in order.
    pub baseline_runs: Vec<RunStats>,
    /// Portolan's median run by throughput (lower middle for even counts).
    pub portolan: RunStats,
    /// The baseline's median run, when a baseline ran.
    pub baseline: Option<RunStats>,
    /// Portolan throughput / baseline throughput.
    pub throughput_ratio: Option<f64>,
    /// Portolan p99 / baseline p99.
    pub p99_ratio: Option<f64>,
}

/// The run with the median throughput (lower middle for an even count).
pub fn median_run(runs: &[RunStats]) -> Option<RunStats> {
    let mut sorted: Vec<&RunStats> = runs.iter().collect();
    sorted.sort_by(|a, b| a.throughput_rps.total_cmp(&b.throughput_rps));
    sorted
        .get((sorted.len().max(1) - 1) / 2)
        .map(|r| (*r).clone())
}

/// Runs `rounds` interleaved pairs (baseline first) and compares medians.
pub async fn compare(
    portolan: Target,
    baseline: Option<Target>,
    workload: Arc<Workload>,
    cfg: &LoadConfig,
    rounds: usize,
) -> Result<Comparison> {
    let mut portolan_runs = Vec::new();
    let mut baseline_runs = Vec::new();
    for _ in 0..rounds.max(1) {
        if let Some(b) = baseline {
            baseline_runs.push(load::run(b, Arc::clone(&workload), cfg).await?);
        }
        portolan_runs.push(load::run(portolan, Arc::clone(&workload), cfg).await?);
    }
    let p = median_run(&portolan_runs).ok_or_else(|| anyhow::anyhow!("no portolan run"))?;
    let b = median_run(&baseline_runs);
    let throughput_ratio = b
        .as_ref()
        .filter(|b| b.throughput_rps > 0.0)
        .map(|b| p.throughput_rps / b.throughput_rps);
    let p99_ratio = b
        .as_ref()
        .filter(|b| b.latency.p99_us > 0.0)
        .map(|b| p.latency.p99_us / b.latency.p99_us);
    Ok(Comparison {
        portolan_runs,
        baseline_runs,
        portolan: p,
        baseline: b,
        throughput_ratio,
        p99_ratio,
    })
}

/// Runs the scenario.
pub async fn run(a: SteadyArgs) -> Result<Report> {
    let mut workload = Workload::load(a.server.data.as_deref())?;
    workload.mix = a.load.mix.mix();
    let workload = Arc::new(workload);
    let portolan = super::portolan(&a.server, "steady").await?;
    let baseline = if a.no_baseline {
        None
    } else {
        Some(servers::spawn_baseline(Duration::from_secs(30)).await?)
    };
    let cfg = a.load.config(Duration::from_secs(10), false);
    let cmp = compare(
        portolan.target(),
        baseline.as_ref().map(|b| b.target()),
        workload,
        &cfg,
        a.rounds,
    )
    .await?;

    let mut text = String::new();
    let serving = match (&portolan, &a.server.data) {
        (Portolan::External(t), _) => format!("external server {}", t.addr),
        (Portolan::Spawned(_), Some(d)) => format!("spawned server, --data {}", d.display()),
        (Portolan::Spawned(_), None) => "spawned server, embedded registry".into(),
    };
    let _ = writeln!(
        text,
        "{serving}; {} connections x {} in flight total, {:?}/run after {:?} warm-up, {} round(s) \
         interleaved baseline-first; figures are each server's median run by throughput",
        cfg.connections,
        cfg.in_flight,
        cfg.duration,
        cfg.warmup,
        a.rounds.max(1)
    );
    let _ = writeln!(text, "runs:");
    let mut b_iter = cmp.baseline_runs.iter();
    for (i, p) in cmp.portolan_runs.iter().enumerate() {
        if let Some(b) = b_iter.next() {
            let _ = writeln!(text, "  {}. {}", i + 1, run_line(b));
        }
        let _ = writeln!(text, "  {}. {}", i + 1, run_line(p));
    }
    let _ = writeln!(text, "median:");
    if let Some(b) = &cmp.baseline {
        let _ = writeln!(text, "  {}", run_line(b));
    }
    let _ = writeln!(text, "  {}", run_line(&cmp.portolan));
    if let (Some(t), Some(p99)) = (cmp.throughput_ratio, cmp.p99_ratio) {
        let _ = writeln!(
            text,
            "portolan/baseline: throughput {t:.3}x ({:.0} vs {:.0} req/s), p99 {p99:.3}x ({:.1} vs {:.1} us)",
            cmp.portolan.throughput_rps,
            cmp.baseline.as_ref().map_or(0.0, |b| b.throughput_rps),
            cmp.portolan.latency.p99_us,
            cmp.baseline.as_ref().map_or(0.0, |b| b.latency.p99_us),
        );
    }

    let mut report = Report::new(
        "steady",
        text,
        json!({ "serving": serving, "comparison": &cmp }),
    );
    if let Some(t) = cmp.throughput_ratio {
        report.checks.push(Check::new(
            "unary lookup throughput vs baseline",
            ">= 0.90",
            format!("{t:.3}"),
            t >= 0.90,
        ));
    }
    if let Some(r) = cmp.p99_ratio {
        report.checks.push(Check::new(
            "p99 latency vs baseline",
            "<= 1.20",
            format!("{r:.3}"),
            r <= 1.20,
        ));
    }
    if let Some(rss) = cmp.portolan.server_peak_rss_mib {
        report.checks.push(Check::new(
            "server peak RSS under load",
            "< 50 MiB",
            format!("{rss:.1} MiB"),
            rss < 50.0,
        ));
    }
    for r in cmp.portolan_runs.iter().chain(&cmp.baseline_runs) {
        report.failures.extend(run_failures(r));
    }
    if cmp.portolan.ok == 0 {
        report
            .failures
            .push("portolan answered no lookup successfully".into());
    }
    Ok(report)
}
