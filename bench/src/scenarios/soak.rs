//! `soak`: a long run (10 minutes by default; not for CI) combining the
//! other loads: lookups with per-connection version checks, the data file
//! replaced every few seconds, and watch streams kept open throughout.
//! Resident memory is sampled all along; the report gives it at the start
//! and the end, the peak, and what the streams received.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::summary::client::port_registry_service_client::PortRegistryServiceClient;
use anyhow::Result;
use portolan::pb::{WatchMode, WatchRequest};
use portolan::reply::watch_response;
use serde_json::json;

use super::SoakArgs;
use super::reload::{registry_info, spawn_on_copy, start_replacer};
use crate::load::{self, LoadConfig};
use crate::procstat;
use crate::report::{Check, Report, run_failures, run_line};
use crate::servers;
use crate::workload::Workload;

/// Runs the scenario.
pub async fn run(a: SoakArgs) -> Result<Report> {
    let (server, live, editions) = spawn_on_copy(&a.server, &a.alt_data, "soak").await?;
    let pid = server.pid();
    let workload = Arc::new(Workload::load(a.server.data.as_deref())?);
    let duration = a.duration.min(Duration::from_secs(6 * 3600));
    let before = registry_info(&server).await?;
    let start = Instant::now();
    let until = start + duration;

    // Watch streams: count complete changes received (a delta's last part,
    // or the last part of a reset, which is how a change touching more than
    // 1,000 keys arrives in INVALIDATE mode), the version each stream has
    // reached, and streams lost.
    let changes = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicU64::new(0));
    let reached: Arc<Vec<AtomicU64>> = Arc::new(
        (0..a.watch_streams)
            .map(|_| AtomicU64::new(before.version))
            .collect(),
    );
    let mut watchers = Vec::new();
    let channel = servers::connect(server.addr).await?;
    for stream in 0..a.watch_streams {
        let (channel, changes, ended) = (channel.clone(), changes.clone(), ended.clone());
        let reached = reached.clone();
        let (known, known_state) = (before.version, before.state_id);
        watchers.push(tokio::spawn(async move {
            let mut client = PortRegistryServiceClient::new(channel);
            let request = WatchRequest {
                known_state_id: known_state,
                mode: WatchMode::Invalidate as i32,
                ..WatchRequest::default()
            };
            let Ok(response) = client.watch(request).await else {
                ended.fetch_add(1, Ordering::AcqRel);
                return;
            };
            let mut s = response.into_inner();
            let mut version = known;
            while let Ok(Some(ev)) = s.message().await {
                let complete = match &ev.event {
                    Some(watch_response::Event::Delta(d)) => d.last,
                    Some(watch_response::Event::Snapshot(p)) => p.last,
                    _ => false,
                };
                if complete && ev.version > version {
                    version = ev.version;
                    changes.fetch_add(1, Ordering::AcqRel);
                    reached[stream].store(version, Ordering::Release);
                }
            }
            ended.fetch_add(1, Ordering::AcqRel);
        }));
    }

    // Memory sampler.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, every) = (stop.clone(), a.sample_every);
        tokio::spawn(async move {
            let mut samples: Vec<(f64, u64)> = Vec::new();
            while !stop.load(Ordering::Acquire) {
                if let Ok(kib) = procstat::rss_kib(pid) {
                    samples.push((start.elapsed().as_secs_f64(), kib));
                }
                tokio::time::sleep(every).await;
            }
            samples
        })
    };
    let count = Arc::new(AtomicU64::new(0));
    let replacer = start_replacer(
        live,
        editions,
        a.replace_every,
        until,
        stop.clone(),
        count.clone(),
    );
    let cfg = LoadConfig {
        connections: a.connections.max(1),
        in_flight: a.in_flight.max(1),
        duration,
        warmup: Duration::ZERO,
        max_requests: u64::MAX,
        request_timeout: Duration::from_secs(5),
        check_versions: true,
    };
    let stats = load::run(server.target(), workload, &cfg).await;
    stop.store(true, Ordering::Release);
    let replaced = replacer
        .join()
        .map_err(|_| anyhow::anyhow!("replacer thread panicked"))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let end_rss = procstat::rss_kib(pid).ok();
    let peak = procstat::peak_rss_kib(pid).ok();
    let mut samples = sampler.await?;
    if let Some(kib) = end_rss {
        samples.push((start.elapsed().as_secs_f64(), kib));
    }
    let after = registry_info(&server).await?;
    // The last reload may have just been applied: give the streams until a
    // deadline to report it, polling.
    let deadline = Instant::now() + Duration::from_secs(10);
    let behind = || {
        reached
            .iter()
            .filter(|v| v.load(Ordering::Acquire) < after.version)
            .count()
    };
    while behind() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let streams_behind = behind();
    for w in &watchers {
        w.abort();
    }
    let stats = stats?;
    replaced?;

    let applied = after.version.saturating_sub(before.version);
    let streams_lost = ended.load(Ordering::Acquire);
    let received = changes.load(Ordering::Acquire);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let start_rss = samples.first().map(|s| mib(s.1));
    let end_rss = samples.last().map(|s| mib(s.1));
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:?} soak{}: {} replacements every {:?}, {applied} applied (v{} -> v{}); {} watch streams \
         received {received} changes ({} at most, fewer when a stream resynced over several), \
         {streams_behind} ended behind v{}, {streams_lost} lost",
        duration,
        if duration < Duration::from_secs(600) {
            " (SHORT: under 10 min, not a soak figure)"
        } else {
            ""
        },
        count.load(Ordering::Acquire),
        a.replace_every,
        before.version,
        after.version,
        a.watch_streams,
        applied * a.watch_streams as u64,
        after.version
    );
    let _ = writeln!(text, "  {}", run_line(&stats));
    let _ = writeln!(
        text,
        "  RSS start {:.1} MiB, end {:.1} MiB, peak (VmHWM) {:.1} MiB, {} samples",
        start_rss.unwrap_or(0.0),
        end_rss.unwrap_or(0.0),
        peak.map_or(0.0, mib),
        samples.len()
    );
    let mut report = Report::new(
        "soak",
        text,
        json!({
            "duration_s": duration.as_secs_f64(),
            "replacements": count.load(Ordering::Acquire),
            "reloads_applied": applied,
            "watch_streams": a.watch_streams,
            "watch_changes_received": received,
            "watch_streams_lost": streams_lost,
            "watch_streams_behind": streams_behind,
            "rss_start_mib": start_rss, "rss_end_mib": end_rss,
            "rss_peak_mib": peak.map(mib),
            "rss_samples": samples.iter().map(|(t, k)| json!([t, mib(*k)])).collect::<Vec<_>>(),
            "load": &stats,
        }),
    );
    report.failures.extend(run_failures(&stats));
    if streams_lost > 0 {
        report.failures.push(format!(
            "{streams_lost} watch streams ended during the soak"
        ));
    }
    if streams_behind > 0 {
        report.failures.push(format!(
            "{streams_behind} watch streams never received version {}",
            after.version
        ));
    }
    if let Some(p) = peak {
        report.checks.push(Check::new(
            "server peak RSS over the soak",
            "< 50 MiB",
            format!("{:.1} MiB", mib(p)),
            mib(p) < 50.0,
        ));
    }
    report.checks.push(Check::new(
        "failed requests / version regressions",
        "0 / 0",
        format!("{} / {}", stats.failed, stats.version_regressions),
        stats.failed == 0 && stats.version_regressions == 0,
    ));
    Ok(report)
}
