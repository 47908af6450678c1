//! `cli`: cold invocations of the `portolan` command-line tool against a
//! running server, each a new process (start, connect, one lookup, print,
//! exit), timed end to end. The CLI binary defaults to `portolan` next to
//! this executable (`cargo build --release -p portolan-cli`).

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::CliArgs;
use crate::report::{Check, Report};
use crate::servers;
use crate::util::{Summary, ms};

/// Runs the scenario.
pub async fn run(a: CliArgs) -> Result<Report> {
    let cli = match &a.cli {
        Some(p) => p.clone(),
        None => servers::sibling_binary("portolan")?,
    };
    if !cli.is_file() {
        bail!(
            "CLI binary {} not found (cargo build --release -p portolan-cli, or pass --cli PATH)",
            cli.display()
        );
    }
    let portolan = super::portolan(&a.server, "cli").await?;
    let url = format!("http://{}", portolan.target().addr);
    let args: Vec<String> = a
        .cli_args
        .split_whitespace()
        .map(|s| s.replace("{addr}", &url))
        .collect();
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    for _ in 0..a.iterations.max(1) {
        let t0 = Instant::now();
        let out = tokio::task::spawn_blocking({
            let cli = cli.clone();
            let args = args.clone();
            move || Command::new(&cli).args(&args).stdin(Stdio::null()).output()
        })
        .await?
        .with_context(|| format!("running {}", cli.display()))?;
        let elapsed = ms(t0.elapsed());
        if out.status.success() && !out.stdout.is_empty() {
            samples.push(elapsed);
        } else {
            failures.push(format!(
                "`{} {}` exited {} with {} bytes of output: {}",
                cli.display(),
                args.join(" "),
                out.status,
                out.stdout.len(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            break;
        }
    }
    let s = Summary::of(&samples);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} cold runs of `portolan {}`: min {:.1} ms, median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        s.n,
        args.join(" "),
        s.min,
        s.p50,
        s.p90,
        s.max
    );
    let mut report = Report::new(
        "cli",
        text,
        json!({ "cli": cli.display().to_string(), "args": &args, "samples_ms": &samples,
                "summary_ms": s }),
    );
    report.checks.push(Check::new(
        "cold CLI lookup (median, informational)",
        "none set",
        format!("{:.1} ms", s.p50),
        true,
    ));
    report.failures = failures;
    Ok(report)
}
