//! `reload`: lookups while the server's data file is replaced every 500 ms
//! (by default), alternating two editions, each replacement a write to a
//! temporary file and a rename over the data file. Passes when no request
//! failed and no connection ever saw the version go backwards; reports how
//! many replacements the server applied (its version moved by that much).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::{GetRegistryInfoRequest, GetRegistryInfoResponse as RegistryInfo};
use serde_json::json;

use super::{ReloadArgs, portolan_command, require_spawn};
use crate::load;
use crate::report::{Check, Report, run_failures, run_line};
use crate::servers::{self, ServerProcess};
use crate::util::{Summary, ms, parse_duration};
use crate::workload::Workload;

/// The server's registry info.
pub async fn registry_info(server: &ServerProcess) -> Result<RegistryInfo> {
    let mut client = PortRegistryServiceClient::new(servers::connect(server.addr).await?);
    Ok(client
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .context("GetRegistryInfo")?
        .into_inner())
}

/// The `elapsed=` of every "registry reloaded" line in the server's log,
/// in milliseconds (the server's own read-parse-diff-apply time).
pub fn server_reload_times(server: &ServerProcess) -> Vec<f64> {
    let Some(log) = &server.log else {
        return Vec::new();
    };
    let text = strip_ansi(&std::fs::read_to_string(log).unwrap_or_default());
    text.lines()
        .filter(|l| l.contains("registry reloaded"))
        .filter_map(|l| {
            let value = l.split("elapsed=").nth(1)?.split_whitespace().next()?;
            parse_duration(value).ok().map(ms)
        })
        .collect()
}

/// The name of a `ReloadOutcome` number.
fn outcome_name(n: i32) -> &'static str {
    portolan::pb::ReloadOutcome::try_from(n).map_or("UNKNOWN", |o| o.as_str_name())
}

/// `text` without ANSI colour sequences (`ESC [ ... m`), which the
/// server's text logs may carry.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Replaces `live` with the editions in turn (starting with the second)
/// every `every`, atomically, until `stop` is set or `until` passes.
/// Returns the thread; its result is the number of replacements.
pub fn start_replacer(
    live: PathBuf,
    editions: Arc<[Vec<u8>; 2]>,
    every: Duration,
    until: Instant,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> std::thread::JoinHandle<Result<()>> {
    std::thread::spawn(move || {
        let mut next = 1usize;
        let mut due = Instant::now() + every;
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= until {
                break;
            }
            if now < due {
                std::thread::sleep((due - now).min(Duration::from_millis(20)));
                continue;
            }
            servers::replace_atomically(&live, &editions[next])?;
            count.fetch_add(1, Ordering::AcqRel);
            next = 1 - next;
            due += every;
        }
        Ok(())
    })
}

/// Copies the first edition into a scratch folder and starts the server on
/// that copy. Returns the server, the live file and both editions.
pub async fn spawn_on_copy(
    server_args: &super::ServerArgs,
    alt_data: &std::path::Path,
    scenario: &str,
) -> Result<(ServerProcess, PathBuf, Arc<[Vec<u8>; 2]>)> {
    require_spawn(server_args, scenario)?;
    let data = server_args
        .data
        .clone()
        .with_context(|| format!("`{scenario}` needs --data (the first edition)"))?;
    let first = std::fs::read(&data).with_context(|| format!("reading {}", data.display()))?;
    let second =
        std::fs::read(alt_data).with_context(|| format!("reading {}", alt_data.display()))?;
    let dir = servers::scratch_dir(scenario)?;
    // No extension: the server detects the format from the content, and the
    // two editions may be in different formats.
    let live = dir.join("registry-data");
    servers::replace_atomically(&live, &first)?;
    let cmd = portolan_command(server_args, Some(live.clone()), dir)?;
    let server = cmd.spawn(Duration::from_secs(30)).await?;
    Ok((server, live, Arc::new([first, second])))
}

/// Runs the scenario.
pub async fn run(a: ReloadArgs) -> Result<Report> {
    let (server, live, editions) = spawn_on_copy(&a.server, &a.alt_data, "reload").await?;
    let mut workload = Workload::load(a.server.data.as_deref())?;
    workload.mix = a.load.mix.mix();
    let workload = Arc::new(workload);
    let mut cfg = a.load.config(Duration::from_secs(60), true);
    cfg.warmup = Duration::ZERO;
    let before = registry_info(&server).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let replacer = start_replacer(
        live,
        editions,
        a.replace_every,
        Instant::now() + cfg.duration,
        Arc::clone(&stop),
        Arc::clone(&count),
    );
    let stats = load::run(server.target(), workload, &cfg).await;
    stop.store(true, Ordering::Release);
    let replaced = replacer
        .join()
        .map_err(|_| anyhow::anyhow!("replacer thread panicked"))?;
    let stats = stats?;
    replaced?;
    // Let the last replacement settle before asking what was applied.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = registry_info(&server).await?;
    let replacements = count.load(Ordering::Acquire);
    let applied = after.version.saturating_sub(before.version);
    let in_server = Summary::of(&server_reload_times(&server));

    let mut text = String::new();
    let _ = writeln!(
        text,
        "data file replaced every {:?} for {:?}: {replacements} replacements, server version {} -> {} \
         ({applied} applied); clients saw versions {:?}..{:?}",
        a.replace_every,
        cfg.duration,
        before.version,
        after.version,
        stats.version_min,
        stats.version_max
    );
    let _ = writeln!(text, "  {}", run_line(&stats));
    if in_server.n > 0 {
        let _ = writeln!(
            text,
            "  in-server reload time (its log, read to applied): median {:.1} ms, p90 {:.1} ms, \
             max {:.1} ms over {} reloads",
            in_server.p50, in_server.p90, in_server.max, in_server.n
        );
    }
    let _ = writeln!(
        text,
        "  version regressions per connection: {}; last reload outcome {} {}",
        stats.version_regressions,
        outcome_name(after.last_reload_outcome),
        after.last_reload_error
    );
    let mut report = Report::new(
        "reload",
        text,
        json!({
            "replace_every_ms": a.replace_every.as_millis() as u64,
            "replacements": replacements,
            "version_before": before.version,
            "version_after": after.version,
            "reloads_applied": applied,
            "last_reload_outcome": outcome_name(after.last_reload_outcome),
            "last_reload_error": after.last_reload_error,
            "in_server_reload_ms": in_server,
            "load": &stats,
        }),
    );
    report.checks.push(Check::new(
        "failed requests while reloading",
        "0",
        stats.failed.to_string(),
        stats.failed == 0,
    ));
    report.checks.push(Check::new(
        "versions going backwards on a connection",
        "0",
        stats.version_regressions.to_string(),
        stats.version_regressions == 0,
    ));
    if let Some(rss) = stats.server_peak_rss_mib {
        report.checks.push(Check::new(
            "server peak RSS (full registry, reloading)",
            "< 50 MiB",
            format!("{rss:.1} MiB"),
            rss < 50.0,
        ));
    }
    report.failures.extend(run_failures(&stats));
    if applied == 0 {
        report.failures.push(format!(
            "the server applied none of the {replacements} replacements (is it watching the file?)"
        ));
    }
    Ok(report)
}
