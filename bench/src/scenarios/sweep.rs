//! `sweep`: in-flight requests 1, 2, 4, ... 256, each level run against the
//! baseline and then Portolan (interleaved, one run each), drawing
//! throughput and p99 against concurrency to an SVG (default
//! `bench/results/sweep.svg`) and writing the points as JSON beside it.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::SweepArgs;
use super::steady::compare;
use crate::plot::{Point, sweep_svg};
use crate::report::{Report, run_failures};
use crate::servers;
use crate::workload::Workload;

/// Runs the scenario.
pub async fn run(a: SweepArgs) -> Result<Report> {
    let mut workload = Workload::load(a.server.data.as_deref())?;
    workload.mix = a.load.mix.mix();
    let workload = Arc::new(workload);
    let portolan = super::portolan(&a.server, "sweep").await?;
    let baseline = servers::spawn_baseline(Duration::from_secs(30), 1).await?;
    let mut levels = vec![1usize];
    while levels
        .last()
        .is_some_and(|&l| l * 2 <= a.max_concurrency.min(4096))
    {
        let next = levels.last().copied().unwrap_or(1) * 2;
        levels.push(next);
    }
    let base_cfg = a.load.config(Duration::from_secs(3), false);
    let mut p_points = Vec::new();
    let mut b_points = Vec::new();
    let mut failures = Vec::new();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:>9} {:>6} {:>12} {:>12} {:>7} {:>11} {:>11} {:>7}",
        "in-flight",
        "conns",
        "portolan r/s",
        "baseline r/s",
        "ratio",
        "p99 port us",
        "p99 base us",
        "ratio"
    );
    for &level in &levels {
        let mut cfg = base_cfg.clone();
        cfg.in_flight = level;
        cfg.connections = level.min(base_cfg.connections);
        let cmp = compare(
            portolan.target(),
            Some(baseline.target()),
            Arc::clone(&workload),
            &cfg,
            1,
        )
        .await?;
        for r in cmp.portolan_runs.iter().chain(&cmp.baseline_runs) {
            failures.extend(run_failures(r));
        }
        let p = &cmp.portolan;
        p_points.push(Point {
            in_flight: level,
            throughput_rps: p.throughput_rps,
            p99_us: p.latency.p99_us,
        });
        if let Some(b) = &cmp.baseline {
            b_points.push(Point {
                in_flight: level,
                throughput_rps: b.throughput_rps,
                p99_us: b.latency.p99_us,
            });
            let _ = writeln!(
                text,
                "{level:>9} {:>6} {:>12.0} {:>12.0} {:>7.3} {:>11.1} {:>11.1} {:>7.3}",
                cfg.connections,
                p.throughput_rps,
                b.throughput_rps,
                cmp.throughput_ratio.unwrap_or(0.0),
                p.latency.p99_us,
                b.latency.p99_us,
                cmp.p99_ratio.unwrap_or(0.0)
            );
        }
    }
    let title = format!(
        "portolan vs baseline, {:?} per point, {}",
        base_cfg.duration,
        a.server
            .data
            .as_ref()
            .and_then(|d| d.file_name())
            .map_or("embedded registry".to_string(), |f| f
                .to_string_lossy()
                .into_owned())
    );
    sweep_svg(&a.svg, &title, &p_points, &b_points)?;
    let json_path = a.svg.with_extension("json");
    let points = json!({ "portolan": &p_points, "baseline": &b_points,
                         "duration_s": base_cfg.duration.as_secs_f64() });
    std::fs::write(&json_path, serde_json::to_string_pretty(&points)?)?;
    let _ = writeln!(
        text,
        "chart: {}  points: {}",
        a.svg.display(),
        json_path.display()
    );
    let mut report = Report::new("sweep", text, points);
    report.failures = failures;
    Ok(report)
}
