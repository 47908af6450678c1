//! `startup`: from spawning the server process to `grpc.health.v1` saying
//! SERVING for the whole server, with the registry given by `--data` (the
//! full registry for the target figure). Health is polled about every
//! millisecond on a fresh connection attempt until one connects, with a
//! deadline. Each iteration uses a new process on a new port.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Result, bail};
use serde_json::json;

use super::{StartupArgs, portolan_command, require_spawn};
use crate::report::{Check, Report};
use crate::servers;
use crate::util::{Summary, ms};

/// Runs the scenario.
pub async fn run(a: StartupArgs) -> Result<Report> {
    require_spawn(&a.server, "startup")?;
    let cmd = portolan_command(
        &a.server,
        a.server.data.clone(),
        servers::scratch_dir("startup")?,
    )?;
    let mut samples = Vec::new();
    for _ in 0..a.iterations.max(1) {
        let port = servers::free_port()?;
        let t0 = Instant::now();
        let mut server = cmd.start(port)?;
        match servers::wait_serving(&mut server, a.deadline).await {
            Ok(_) => samples.push(ms(t0.elapsed())),
            Err(e) => bail!("{e:#}\nserver log:\n{}", server.log_tail()),
        }
        drop(server);
    }
    let s = Summary::of(&samples);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} starts of `{}`: process spawn -> health SERVING: min {:.1} ms, median {:.1} ms, \
         p90 {:.1} ms, max {:.1} ms",
        s.n,
        cmd.describe(),
        s.min,
        s.p50,
        s.p90,
        s.max
    );
    let mut report = Report::new(
        "startup",
        text,
        json!({ "command": cmd.describe(), "samples_ms": &samples, "summary_ms": s }),
    );
    report.checks.push(Check::new(
        "startup to SERVING (median)",
        "< 200 ms",
        format!("{:.1} ms", s.p50),
        s.p50 < 200.0,
    ));
    Ok(report)
}
