//! `steady`: lookups at a fixed load against Portolan and the baseline, in
//! rounds of one run each, reporting each server's median run (by
//! throughput) and Portolan's throughput and p99 as ratios to the
//! baseline's.
//!
//! On a shared machine the speed available drifts from one run to the next
//! by more than the difference being measured. Each round therefore pairs
//! two adjacent runs, and the order alternates (baseline first in odd
//! rounds, Portolan first in even ones) so neither server always runs
//! second. The ratios reported are the medians of the per-round ratios,
//! which drift between rounds does not move.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::{Portolan, SteadyArgs};
use crate::load::{self, LoadConfig, RunStats};
use crate::report::{Check, Report, run_failures, run_line};
use crate::servers::{self, Target};
use crate::util;
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
    /// Portolan throughput / baseline throughput, per round.
    pub round_throughput_ratios: Vec<f64>,
    /// Portolan p99 / baseline p99, per round.
    pub round_p99_ratios: Vec<f64>,
    /// The median of the per-round throughput ratios.
    pub throughput_ratio: Option<f64>,
    /// The median of the per-round p99 ratios.
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

/// Portolan's `value` over the baseline's, for each round (NaN where the
/// baseline's is zero, so rounds keep their index).
fn per_round(
    portolan: &[RunStats],
    baseline: &[RunStats],
    value: impl Fn(&RunStats) -> f64,
) -> Vec<f64> {
    portolan
        .iter()
        .zip(baseline)
        .map(|(p, b)| {
            if value(b) > 0.0 {
                value(p) / value(b)
            } else {
                f64::NAN
            }
        })
        .collect()
}

/// The median of the ratios that are numbers.
fn median_ratio(ratios: &[f64]) -> Option<f64> {
    let usable: Vec<f64> = ratios.iter().copied().filter(|r| r.is_finite()).collect();
    util::quantile(&usable, 0.5)
}

/// Runs `rounds` rounds of one run per server (baseline first in odd
/// rounds, Portolan first in even ones) and compares them.
pub async fn compare(
    portolan: Target,
    baseline: Option<Target>,
    workload: Arc<Workload>,
    cfg: &LoadConfig,
    rounds: usize,
) -> Result<Comparison> {
    let mut portolan_runs = Vec::new();
    let mut baseline_runs = Vec::new();
    for round in 0..rounds.max(1) {
        let baseline_first = round % 2 == 0;
        if let (Some(b), true) = (baseline, baseline_first) {
            baseline_runs.push(load::run(b, Arc::clone(&workload), cfg).await?);
        }
        portolan_runs.push(load::run(portolan, Arc::clone(&workload), cfg).await?);
        if let (Some(b), false) = (baseline, baseline_first) {
            baseline_runs.push(load::run(b, Arc::clone(&workload), cfg).await?);
        }
    }
    let p = median_run(&portolan_runs).ok_or_else(|| anyhow::anyhow!("no portolan run"))?;
    let b = median_run(&baseline_runs);
    let round_throughput_ratios = per_round(&portolan_runs, &baseline_runs, |r| r.throughput_rps);
    let round_p99_ratios = per_round(&portolan_runs, &baseline_runs, |r| r.latency.p99_us);
    Ok(Comparison {
        throughput_ratio: median_ratio(&round_throughput_ratios),
        p99_ratio: median_ratio(&round_p99_ratios),
        round_throughput_ratios,
        round_p99_ratios,
        portolan_runs,
        baseline_runs,
        portolan: p,
        baseline: b,
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
        Some(servers::spawn_baseline(Duration::from_secs(30), a.baseline_reply_records).await?)
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
        "{serving}; {} connections x {} in flight total, {:?}/run after {:?} warm-up, {} round(s), \
         baseline first in odd rounds and second in even ones; medians are each server's median \
         run by throughput; ratios are the medians of the per-round ratios",
        cfg.connections,
        cfg.in_flight,
        cfg.duration,
        cfg.warmup,
        a.rounds.max(1)
    );
    let _ = writeln!(text, "runs:");
    for (i, p) in cmp.portolan_runs.iter().enumerate() {
        let b = cmp.baseline_runs.get(i);
        let pair = if i % 2 == 0 {
            [b, Some(p)]
        } else {
            [Some(p), b]
        };
        for run in pair.into_iter().flatten() {
            let _ = writeln!(text, "  {}. {}", i + 1, run_line(run));
        }
        if let (Some(t), Some(p99)) = (
            cmp.round_throughput_ratios.get(i),
            cmp.round_p99_ratios.get(i),
        ) {
            let _ = writeln!(
                text,
                "  {}. ratio        throughput {t:.3}x  p99 {p99:.3}x",
                i + 1
            );
        }
    }
    let _ = writeln!(text, "median:");
    if let Some(b) = &cmp.baseline {
        let _ = writeln!(text, "  {}", run_line(b));
    }
    let _ = writeln!(text, "  {}", run_line(&cmp.portolan));
    if let (Some(t), Some(p99)) = (cmp.throughput_ratio, cmp.p99_ratio) {
        let _ = writeln!(
            text,
            "portolan/baseline (median of {} rounds): throughput {t:.3}x, p99 {p99:.3}x \
             (medians of runs: {:.0} vs {:.0} req/s, p99 {:.1} vs {:.1} us)",
            cmp.round_throughput_ratios.len(),
            cmp.portolan.throughput_rps,
            cmp.baseline.as_ref().map_or(0.0, |b| b.throughput_rps),
            cmp.portolan.latency.p99_us,
            cmp.baseline.as_ref().map_or(0.0, |b| b.latency.p99_us),
        );
    }

    // The targets are defined against the baseline's one-record reply; a
    // baseline with larger replies answers a different question.
    let target_baseline = a.baseline_reply_records <= 1;
    if !target_baseline {
        let _ = writeln!(
            text,
            "baseline answers carry {} records: a reply-size comparison, not the targets' \
             baseline, so the ratio targets are not checked",
            a.baseline_reply_records
        );
    }
    let mut report = Report::new(
        "steady",
        text,
        json!({
            "serving": serving,
            "baseline_reply_records": a.baseline_reply_records.max(1),
            "comparison": &cmp,
        }),
    );
    if let (Some(t), true) = (cmp.throughput_ratio, target_baseline) {
        report.checks.push(Check::new(
            "unary lookup throughput vs baseline",
            ">= 0.90",
            format!("{t:.3}"),
            t >= 0.90,
        ));
    }
    if let (Some(r), true) = (cmp.p99_ratio, target_baseline) {
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
