//! `reload-cost`: the cost of one full reload measured in-process with the
//! registry crate, alternating two editions: read the file, parse and
//! validate it (`portolan_registry::parse`), then diff and apply it to a
//! live [`Index`] (`Index::apply` with the default guard). Reports the
//! median (and spread) of the total and of each part.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use portolan_registry::{Index, ReloadGuard, parse};
use serde_json::json;

use super::ReloadCostArgs;
use crate::report::{Check, Report};
use crate::util::{Summary, ms};

/// Runs the scenario.
pub fn run(a: ReloadCostArgs) -> Result<Report> {
    let paths = [a.data.clone(), a.alt_data.clone()];
    let first =
        std::fs::read(&paths[0]).with_context(|| format!("reading {}", paths[0].display()))?;
    let initial = parse(&first, None)
        .with_context(|| format!("parsing {}", paths[0].display()))?
        .registry;
    let counts = [initial.records.len(), 0];
    let index = Index::new(initial);
    let guard = ReloadGuard::default();
    let (mut read_ms, mut parse_ms, mut apply_ms, mut total_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut applied = 0usize;
    let mut changed_records = Vec::new();
    let mut counts = counts;
    let mut by_target: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for i in 0..a.iterations.max(2) {
        let path = &paths[(i + 1) % 2];
        let t0 = Instant::now();
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let t1 = Instant::now();
        let parsed = parse(&bytes, None).with_context(|| format!("parsing {}", path.display()))?;
        counts[(i + 1) % 2] = parsed.registry.records.len();
        let t2 = Instant::now();
        let change = index
            .apply(parsed.registry, &guard)
            .map_err(|e| anyhow!("apply refused: {e}"))?;
        let t3 = Instant::now();
        if let Some(c) = &change {
            applied += 1;
            changed_records
                .push((c.diff.added.len() + c.diff.changed.len() + c.diff.removed.len()) as f64);
        }
        read_ms.push(ms(t1 - t0));
        parse_ms.push(ms(t2 - t1));
        apply_ms.push(ms(t3 - t2));
        total_ms.push(ms(t3 - t0));
        by_target[(i + 1) % 2].push(ms(t3 - t0));
    }
    let to = [Summary::of(&by_target[0]), Summary::of(&by_target[1])];
    let (r, p, ap, t) = (
        Summary::of(&read_ms),
        Summary::of(&parse_ms),
        Summary::of(&apply_ms),
        Summary::of(&total_ms),
    );
    let diff = Summary::of(&changed_records);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} reloads alternating {} ({} records) and {} ({} records); {applied} applied, \
         median diff {:.0} records",
        t.n,
        paths[0].display(),
        counts[0],
        paths[1].display(),
        counts[1],
        diff.p50
    );
    for (name, s) in [
        ("read", r),
        ("parse+validate", p),
        ("diff+apply", ap),
        ("total", t),
    ] {
        let _ = writeln!(
            text,
            "  {name:<15} median {:>7.2} ms  min {:>7.2}  p90 {:>7.2}  max {:>7.2}",
            s.p50, s.min, s.p90, s.max
        );
    }
    for (n, s) in to.iter().enumerate() {
        let _ = writeln!(
            text,
            "  total, to {:<45} median {:>7.2} ms ({} reloads)",
            paths[n].display(),
            s.p50,
            s.n
        );
    }
    let mut report = Report::new(
        "reload-cost",
        text,
        json!({
            "files": [paths[0].display().to_string(), paths[1].display().to_string()],
            "records": counts, "applied": applied,
            "read_ms": r, "parse_ms": p, "apply_ms": ap, "total_ms": t,
            "total_ms_to_first": to[0], "total_ms_to_second": to[1],
            "diff_records": diff,
        }),
    );
    report.checks.push(Check::new(
        "full reload (median of read+parse+validate+diff+apply)",
        "< 50 ms",
        format!("{:.2} ms", t.p50),
        t.p50 < 50.0,
    ));
    if applied == 0 {
        report
            .failures
            .push("no reload changed anything: are the two files the same edition?".into());
    }
    Ok(report)
}
