//! `watch-fanout`: opens many Watch streams (1,000 by default, over 20
//! connections), waits until every one has its first event, then replaces
//! the data file and times, from the rename, when each stream has received
//! the complete change event. The target is the *last* stream within 1 s;
//! the report also gives the first (the server's detection and reload time)
//! and the spread between first and last (the fan-out itself).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::summary::client::port_registry_service_client::PortRegistryServiceClient;
use anyhow::{Result, bail};
use portolan::pb::{WatchMode, WatchRequest};
use portolan::reply::watch_response;
use serde_json::json;
use tokio::sync::mpsc;

use super::reload::{registry_info, spawn_on_copy};
use super::{WatchArgs, WatchModeArg};
use crate::report::{Check, Report};
use crate::util::{Summary, ms};
use crate::{procstat, servers};

/// What a watch stream task tells the scenario.
#[derive(Debug)]
enum Event {
    /// The stream's first event arrived.
    Ready,
    /// A complete change to `version` arrived at `at`, in `parts`
    /// messages carrying `items` keys or records.
    Change {
        stream: usize,
        version: u64,
        at: Instant,
        parts: u64,
        items: u64,
    },
    /// The stream ended or failed.
    Ended { stream: usize, why: String },
}

/// One reload's fan-out timings, in milliseconds from the rename.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Iteration {
    /// The version the change brought.
    pub version: u64,
    /// Streams that received it.
    pub received: usize,
    /// First stream.
    pub first_ms: f64,
    /// Median stream.
    pub p50_ms: f64,
    /// 99th percentile stream.
    pub p99_ms: f64,
    /// Last stream.
    pub last_ms: f64,
    /// Last minus first.
    pub spread_ms: f64,
    /// Messages (parts) each stream received for the change (largest).
    pub parts_per_stream: u64,
    /// Keys or records each stream received for the change (largest).
    pub items_per_stream: u64,
    /// Server CPU time during the iteration, in milliseconds.
    pub server_cpu_ms: Option<f64>,
    /// This tool's own CPU time during the iteration (decoding the streams).
    pub client_cpu_ms: Option<f64>,
}

/// Runs the scenario.
pub async fn run(a: WatchArgs) -> Result<Report> {
    let (server, live, editions) = spawn_on_copy(&a.server, &a.alt_data, "watch-fanout").await?;
    let info0 = registry_info(&server).await?;
    let (v0, state0) = (info0.version, info0.state_id);
    let mode = match a.mode {
        WatchModeArg::Invalidate => WatchMode::Invalidate,
        WatchModeArg::Full => WatchMode::Full,
    };
    let streams = a.streams.max(1);
    let mut channels = Vec::new();
    for _ in 0..a.watch_connections.max(1) {
        channels.push(servers::connect(server.addr).await?);
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let mut tasks = Vec::with_capacity(streams);
    for stream in 0..streams {
        let channel = channels[stream % channels.len()].clone();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = PortRegistryServiceClient::new(channel);
            let request = WatchRequest {
                known_state_id: state0,
                mode: mode as i32,
                ..WatchRequest::default()
            };
            let mut s = match client.watch(request).await {
                Ok(r) => r.into_inner(),
                Err(e) => {
                    let _ = tx.send(Event::Ended {
                        stream,
                        why: format!("{:?}: {}", e.code(), e.message()),
                    });
                    return;
                }
            };
            let mut ready = false;
            let mut held = v0;
            let (mut parts, mut items) = (0u64, 0u64);
            loop {
                match s.message().await {
                    Ok(Some(ev)) => {
                        if !ready {
                            ready = true;
                            let _ = tx.send(Event::Ready);
                        }
                        let complete = match &ev.event {
                            Some(watch_response::Event::Delta(d)) => {
                                parts += 1;
                                items += (d.upserted.len() + d.removed.len() + d.invalidated.len())
                                    as u64;
                                d.last
                            }
                            Some(watch_response::Event::Snapshot(s)) => {
                                parts += 1;
                                items += s.records.len() as u64;
                                s.last
                            }
                            _ => false,
                        };
                        if complete {
                            if ev.version > held {
                                held = ev.version;
                                let _ = tx.send(Event::Change {
                                    stream,
                                    version: ev.version,
                                    at: Instant::now(),
                                    parts,
                                    items,
                                });
                            }
                            (parts, items) = (0, 0);
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send(Event::Ended {
                            stream,
                            why: "stream ended".into(),
                        });
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Event::Ended {
                            stream,
                            why: format!("{:?}: {}", e.code(), e.message()),
                        });
                        return;
                    }
                }
            }
        }));
    }
    drop(tx);

    let mut failures = Vec::new();
    // Wait until every stream is open and has had its first event.
    let mut ready = 0usize;
    let open_deadline = Instant::now() + Duration::from_secs(60);
    let open_start = Instant::now();
    while ready < streams {
        let left = open_deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(Event::Ready)) => ready += 1,
            Ok(Some(Event::Ended { stream, why })) => {
                failures.push(format!("stream {stream} ended before the reload: {why}"))
            }
            Ok(Some(Event::Change { .. })) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let open_ms = ms(open_start.elapsed());
    if ready < streams {
        for t in &tasks {
            t.abort();
        }
        bail!(
            "only {ready} of {streams} watch streams opened within 60 s: {}",
            failures.join("; ")
        );
    }

    let mut iterations = Vec::new();
    let mut held = v0;
    let mut next = 1usize;
    for _ in 0..a.iterations.max(1) {
        let mut first_at: Vec<Option<Instant>> = vec![None; streams];
        let (mut max_parts, mut max_items) = (0u64, 0u64);
        let cpu = || {
            (
                procstat::cpu_time(server.pid()).ok(),
                procstat::cpu_time(std::process::id()).ok(),
            )
        };
        let cpu_before = cpu();
        let t0 = Instant::now();
        servers::replace_atomically(&live, &editions[next])?;
        next = 1 - next;
        let deadline = t0 + a.deadline;
        let mut received = 0usize;
        let mut version = held;
        while received < streams {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(Event::Change {
                    stream,
                    version: v,
                    at,
                    parts,
                    items,
                })) if v > held => {
                    max_parts = max_parts.max(parts);
                    max_items = max_items.max(items);
                    if first_at[stream].is_none() {
                        first_at[stream] = Some(at);
                        received += 1;
                        version = version.max(v);
                    }
                }
                Ok(Some(Event::Ended { stream, why })) => {
                    failures.push(format!("stream {stream} ended: {why}"))
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let cpu_after = cpu();
        let delta = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => Some(ms(b.saturating_sub(a))),
            _ => None,
        };
        let times: Vec<f64> = first_at
            .iter()
            .flatten()
            .map(|at| ms(at.saturating_duration_since(t0)))
            .collect();
        let s = Summary::of(&times);
        let p99 = crate::util::quantile(&times, 0.99).unwrap_or(0.0);
        if received < streams {
            failures.push(format!(
                "only {received} of {streams} streams received the change to version > {held} \
                 within {:?}",
                a.deadline
            ));
        }
        iterations.push(Iteration {
            version,
            received,
            first_ms: s.min,
            p50_ms: s.p50,
            p99_ms: p99,
            last_ms: s.max,
            spread_ms: s.max - s.min,
            parts_per_stream: max_parts,
            items_per_stream: max_items,
            server_cpu_ms: delta(cpu_before.0, cpu_after.0),
            client_cpu_ms: delta(cpu_before.1, cpu_after.1),
        });
        held = version;
        // Let the server settle (debounce, heartbeats) before the next one.
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    for t in &tasks {
        t.abort();
    }

    let worst_last = iterations.iter().map(|i| i.last_ms).fold(0.0, f64::max);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{streams} {:?} streams over {} connections (all open in {open_ms:.0} ms); times from the \
         rename to each stream's complete change event:",
        a.mode,
        channels.len()
    );
    for (n, i) in iterations.iter().enumerate() {
        let _ = writeln!(
            text,
            "  reload {}: v{} received by {}/{streams}: first {:.1} ms, p50 {:.1} ms, p99 {:.1} ms, \
             last {:.1} ms (spread {:.1} ms); {} parts / {} keys-or-records per stream; \
             cpu server {:.0} ms, client {:.0} ms",
            n + 1,
            i.version,
            i.received,
            i.first_ms,
            i.p50_ms,
            i.p99_ms,
            i.last_ms,
            i.spread_ms,
            i.parts_per_stream,
            i.items_per_stream,
            i.server_cpu_ms.unwrap_or(0.0),
            i.client_cpu_ms.unwrap_or(0.0)
        );
    }
    let mut report = Report::new(
        "watch-fanout",
        text,
        json!({
            "streams": streams,
            "connections": channels.len(),
            "mode": format!("{:?}", a.mode),
            "open_ms": open_ms,
            "iterations": &iterations,
            "worst_last_ms": worst_last,
        }),
    );
    report.checks.push(Check::new(
        "last of the watch streams receives the change (from the file rename)",
        "<= 1000 ms",
        format!("{worst_last:.1} ms (worst of {} reloads)", iterations.len()),
        worst_last <= 1000.0 && failures.is_empty(),
    ));
    report.failures = failures;
    drop(server);
    Ok(report)
}
