//! The attacks of the `hostile` scenario (rows of issue #13). Each runs
//! until its [`Stop`] is set, keeps every connection it opened until then,
//! tallies what happened to its calls in the phase's `AttackStats`, and
//! drops its connections when it returns. All of them target the spawned
//! server on loopback and are bounded in count (the arguments are clamped)
//! and in time (the phase's attack window).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use portolan::pb::{
    BatchLookupRequest, GetRegistryInfoRequest, ListRecordsRequest, RecordState, SearchRequest,
    WatchMode, WatchRequest, batch_lookup_request::Query, port_registry_service_client,
};
use prost::Message as _;
use serde_json::json;
use tokio::task::JoinSet;

use super::exposition;
use super::raw::{End, RawConn, classify, finish, scrape};
use super::{Ctx, Stop};
use crate::report::Check;
use crate::servers;
use crate::summary::client::port_registry_service_client::PortRegistryServiceClient;
use crate::util::{Summary, ms};

const LOOKUP_PORT: &str = "/portolan.v1.PortRegistryService/LookupPort";
const SEARCH: &str = "/portolan.v1.PortRegistryService/Search";
const WATCH: &str = "/portolan.v1.PortRegistryService/Watch";
const BATCH: &str = "/portolan.v1.PortRegistryService/BatchLookup";

/// Sleeps for `d` unless `stop` comes first; `false` when stopped.
async fn pause(stop: &Stop, d: Duration) -> bool {
    tokio::select! {
        () = stop.wait() => false,
        () = tokio::time::sleep(d) => !stop.is_set(),
    }
}

/// Row 1: `connections` connections × `streams` LookupPort calls that send
/// headers and never a body; each call is reopened when the server ends it
/// (no sooner than a second after it was opened, so an instant refusal does
/// not turn the attack into a request flood). A connection that goes away
/// is reopened.
pub async fn slow_headers(ctx: &Ctx) {
    let mut connections = JoinSet::new();
    for _ in 0..ctx.p.slow_connections {
        let ctx = ctx.clone();
        connections.spawn(async move {
            while !ctx.stop.is_set() {
                let conn = match RawConn::open(ctx.addr, false).await {
                    Ok(c) => Arc::new(c),
                    Err(e) => {
                        ctx.stats().tally(&format!("connect-failed: {e:#}"));
                        if !pause(&ctx.stop, Duration::from_millis(200)).await {
                            break;
                        }
                        continue;
                    }
                };
                let mut slots = JoinSet::new();
                for _ in 0..ctx.p.slow_streams {
                    slots.spawn(slow_slot(Arc::clone(&conn), ctx.clone()));
                }
                while slots.join_next().await.is_some() {}
            }
        });
    }
    while connections.join_next().await.is_some() {}
}

async fn slow_slot(conn: Arc<RawConn>, ctx: Ctx) {
    while !ctx.stop.is_set() {
        let opened_at = Instant::now();
        let call = tokio::select! {
            () = ctx.stop.wait() => return,
            call = conn.start(LOOKUP_PORT, None) => call,
        };
        let (response, body) = match call {
            Ok(c) => c,
            Err(e) => {
                // The connection is gone: the slot ends and its connection
                // is reopened once every slot has ended.
                ctx.stats()
                    .tally(&format!("open-failed:{}", classify(&e).key()));
                return;
            }
        };
        ctx.stats().opened += 1;
        let end = tokio::select! {
            () = ctx.stop.wait() => {
                ctx.stats().open_at_end += 1;
                return;
            }
            (end, _) = finish(response, true) => end,
        };
        ctx.stats().ended(&end);
        drop(body);
        if matches!(end, End::ConnectionGone(_)) {
            return;
        }
        if !pause(
            &ctx.stop,
            Duration::from_secs(1).saturating_sub(opened_at.elapsed()),
        )
        .await
        {
            return;
        }
    }
}

/// Calls of `path` with `message`, spread over `connections` stalled
/// connections (64 KiB windows, nothing ever released), held until the
/// server ends them or the attack stops. Not reopened.
async fn stalled_calls(
    ctx: &Ctx,
    connections: usize,
    calls: usize,
    path: &'static str,
    message: Vec<u8>,
) {
    let mut conns = Vec::new();
    for _ in 0..connections.max(1) {
        match RawConn::open(ctx.addr, true).await {
            Ok(c) => conns.push(Arc::new(c)),
            Err(e) => ctx.stats().tally(&format!("connect-failed: {e:#}")),
        }
    }
    if conns.is_empty() {
        ctx.stats()
            .failures
            .push("the attacker could not connect at all".into());
        return;
    }
    let message = Arc::new(message);
    let mut tasks = JoinSet::new();
    for i in 0..calls {
        let conn = Arc::clone(&conns[i % conns.len()]);
        let (ctx, message) = (ctx.clone(), Arc::clone(&message));
        tasks.spawn(async move {
            let call = tokio::select! {
                () = ctx.stop.wait() => return,
                call = conn.start(path, Some(message.as_slice())) => call,
            };
            let response = match call {
                Ok((response, _)) => response,
                Err(e) => {
                    ctx.stats()
                        .tally(&format!("open-failed:{}", classify(&e).key()));
                    return;
                }
            };
            ctx.stats().opened += 1;
            tokio::select! {
                () = ctx.stop.wait() => ctx.stats().open_at_end += 1,
                (end, bytes) = finish(response, false) => {
                    let mut s = ctx.stats();
                    s.ended(&end);
                    s.bytes_received += bytes;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    drop(conns);
}

/// Row 2: `search_calls` Search("a", limit) calls on one connection, never
/// read.
pub async fn search(ctx: &Ctx, limit: u32) {
    let message = SearchRequest {
        query: "a".into(),
        limit,
        ..Default::default()
    }
    .encode_to_vec();
    ctx.stats().details.insert("limit".into(), json!(limit));
    stalled_calls(ctx, 1, ctx.p.search_calls, SEARCH, message).await;
}

/// Row 3: `watch_streams` FULL Watch streams from version 0 (each starts
/// with the whole registry), spread over `watch_connections` stalled
/// connections. Meanwhile `portolan_watch_streams_active` is scraped every
/// second, and after 3 s a well-behaved client on its own connection opens
/// an INVALIDATE Watch, which should get its first event.
pub async fn watch(ctx: &Ctx) {
    let message = WatchRequest {
        mode: WatchMode::Full as i32,
        ..WatchRequest::default()
    }
    .encode_to_vec();
    let gauge = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut series = Vec::new();
            loop {
                if let Ok((200, body)) = scrape(ctx.metrics).await
                    && let Some(v) = body
                        .lines()
                        .find_map(|l| l.strip_prefix("portolan_watch_streams_active "))
                        .and_then(|v| v.trim().parse::<f64>().ok())
                {
                    series.push((start.elapsed().as_secs_f64(), v));
                }
                if !pause(&ctx.stop, Duration::from_secs(1)).await {
                    return series;
                }
            }
        })
    };
    let probe = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if !pause(&ctx.stop, Duration::from_secs(3)).await {
                return None;
            }
            Some(probe_watch(&ctx).await)
        })
    };
    stalled_calls(
        ctx,
        ctx.p.watch_connections,
        ctx.p.watch_streams,
        WATCH,
        message,
    )
    .await;
    let series = gauge.await.unwrap_or_default();
    let probe = probe.await.ok().flatten();
    let mut s = ctx.stats();
    let peak = series.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let last = series.last().map(|(_, v)| *v);
    s.notes.push(format!(
        "server's portolan_watch_streams_active: peak {peak:.0}, {} at the end of the attack \
         (sampled every 1 s)",
        last.map_or("?".into(), |v| format!("{v:.0}"))
    ));
    s.details
        .insert("watch_streams_active".into(), json!(series));
    if let Some((accepted, text)) = probe {
        s.notes.push(format!("another client's Watch: {text}"));
        s.details.insert("probe_watch".into(), json!(text));
        s.checks.push(Check::new(
            "row 3: another client's Watch gets its first event during the attack",
            "accepted within 2 s",
            text,
            accepted,
        ));
    }
}

/// A well-behaved Watch on its own connection: (accepted, description).
async fn probe_watch(ctx: &Ctx) -> (bool, String) {
    let t0 = Instant::now();
    let attempt = async {
        let channel = servers::connect(ctx.addr).await?;
        let mut client = port_registry_service_client::PortRegistryServiceClient::new(channel);
        let mut stream = client
            .watch(WatchRequest {
                mode: WatchMode::Invalidate as i32,
                ..WatchRequest::default()
            })
            .await?
            .into_inner();
        let first = stream.message().await?;
        anyhow::Ok(first.is_some())
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(Ok(true)) => (
            true,
            format!("accepted, first event in {:.1} ms", ms(t0.elapsed())),
        ),
        Ok(Ok(false)) => (false, "ended without an event".into()),
        Ok(Err(e)) => match e.downcast_ref::<tonic::Status>() {
            Some(s) => (false, format!("refused: {:?}: {}", s.code(), s.message())),
            None => (false, format!("failed: {e:#}")),
        },
        Err(_) => (false, "no first event within 2 s".into()),
    }
}

/// The methods whose series must survive junk paths: the well-behaved
/// clients' (called before the junk) and three called only after it.
const REAL_METHODS: [(&str, &str); 5] = [
    ("grpc.health.v1.Health", "Check"),
    ("portolan.v1.PortRegistryService", "LookupPort"),
    ("portolan.v1.PortRegistryService", "GetRegistryInfo"),
    ("portolan.v1.PortRegistryService", "Search"),
    ("portolan.v1.PortRegistryService", "ListRecords"),
];

/// Row 4: `junk_paths` distinct request paths holding `"` or `\` on one
/// connection; then one call of each method no client had called yet, and
/// a scrape of `/metrics` that must parse and keep every real method's
/// series.
pub async fn metrics_junk(ctx: &Ctx) {
    let before = match scrape(ctx.metrics).await {
        Ok((_, body)) => exposition::parse(&body).map(|_| ()),
        Err(e) => Err(format!("{e:#}")),
    };
    match RawConn::open(ctx.addr, false).await {
        Ok(conn) => {
            for i in 0..ctx.p.junk_paths {
                if ctx.stop.is_set() {
                    break;
                }
                let path = match i % 3 {
                    0 => format!("/evil\"svc{i}/M"),
                    1 => format!("/x{i}\",grpc_code=\"OK/y"),
                    _ => format!("/back\\slash{i}/M\\"),
                };
                match conn.start(&path, Some(b"".as_slice())).await {
                    Ok((response, _)) => {
                        ctx.stats().opened += 1;
                        let (end, _) = finish(response, true).await;
                        ctx.stats().ended(&end);
                    }
                    Err(e) => ctx
                        .stats()
                        .tally(&format!("open-failed:{}", classify(&e).key())),
                }
            }
        }
        Err(e) => ctx.stats().tally(&format!("connect-failed: {e:#}")),
    }
    // Methods first called after the junk.
    let probes = async {
        let channel = servers::connect(ctx.addr).await?;
        let mut client = port_registry_service_client::PortRegistryServiceClient::new(channel);
        client.get_registry_info(GetRegistryInfoRequest {}).await?;
        let mut s = client
            .search(SearchRequest {
                query: "http".into(),
                limit: 1,
                ..Default::default()
            })
            .await?
            .into_inner();
        while s.message().await?.is_some() {}
        let mut s = client
            .list_records(ListRecordsRequest {
                port_min: Some(443),
                port_max: Some(443),
                ..Default::default()
            })
            .await?
            .into_inner();
        while s.message().await?.is_some() {}
        anyhow::Ok(())
    };
    if let Err(e) = tokio::time::timeout(Duration::from_secs(5), probes)
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")))
    {
        ctx.stats().notes.push(format!(
            "calls of the real methods after the junk failed: {e:#}"
        ));
    }
    let scraped = scrape(ctx.metrics).await;
    judge_metrics(ctx, &before, scraped);
    ctx.stop.wait().await;
}

/// Row 4's verdict on the scrape after the junk.
fn judge_metrics(ctx: &Ctx, before: &Result<(), String>, scraped: Result<(u16, String)>) {
    let mut s = ctx.stats();
    let body = match scraped {
        Ok((_, body)) => body,
        Err(e) => {
            s.failures
                .push(format!("row 4: /metrics could not be scraped: {e:#}"));
            return;
        }
    };
    let parsed = exposition::parse(&body);
    let started: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("grpc_server_started_total{"))
        .collect();
    let mut missing = Vec::new();
    for (service, method) in REAL_METHODS {
        let present = match &parsed {
            Ok(samples) => samples.iter().any(|x| {
                x.name == "grpc_server_started_total"
                    && x.label("grpc_service") == Some(service)
                    && x.label("grpc_method") == Some(method)
            }),
            // Unparseable: look for the plain text of the labels instead.
            Err(_) => started.iter().any(|l| {
                l.contains(&format!("grpc_service=\"{service}\""))
                    && l.contains(&format!("grpc_method=\"{method}\""))
            }),
        };
        if !present {
            missing.push(format!("{service}/{method}"));
        }
    }
    let junk_series = started
        .iter()
        .filter(|l| !REAL_METHODS.iter().any(|(sv, _)| l.contains(sv)))
        .count();
    let parses = match &parsed {
        Ok(samples) => format!("parses ({} samples)", samples.len()),
        Err(why) => format!("DOES NOT PARSE: {why}"),
    };
    s.notes.push(format!(
        "/metrics before the junk: {}; after: {parses}; {} grpc_server_started_total series, \
         {junk_series} of them for unknown services; real methods without their own series: {}",
        if before.is_ok() {
            "parses"
        } else {
            "does not parse"
        },
        started.len(),
        if missing.is_empty() {
            "none".to_string()
        } else {
            missing.join(", ")
        }
    ));
    s.details.insert(
        "metrics".into(),
        json!({
            "parses_before": before.is_ok(),
            "parse_error": parsed.as_ref().err(),
            "started_series": started.len(),
            "junk_series": junk_series,
            "real_methods_missing": &missing,
        }),
    );
    s.checks.push(Check::new(
        "row 4: /metrics parses after junk paths",
        "parses",
        parses.clone(),
        parsed.is_ok(),
    ));
    s.checks.push(Check::new(
        "row 4: real methods keep their own series",
        "all 5",
        format!("{} missing", missing.len()),
        missing.is_empty(),
    ));
    if let Err(why) = &parsed {
        s.failures.push(format!(
            "row 4: /metrics does not parse after junk paths: {why}"
        ));
    }
    if !missing.is_empty() {
        s.failures.push(format!(
            "row 4: real methods lost their series after junk paths: {}",
            missing.join(", ")
        ));
    }
}

/// What one pipelined BatchLookup came to.
#[derive(Debug, Clone, serde::Serialize)]
struct BatchRun {
    /// `tonic` (messages coalesced into large DATA frames) or
    /// `frame-per-item` (raw HTTP/2, one small DATA frame per item, as
    /// grpcio sends them).
    client: &'static str,
    items: usize,
    answered: usize,
    item_errors: usize,
    /// `OK`, or the status code and message the stream ended with.
    status: String,
    ms: f64,
}

/// Row 9: one stream per entry of `batch_items` and per client (tonic, and
/// raw HTTP/2 with one DATA frame per item), its items all sent at once
/// (pipelined, as fast as flow control lets them go) while the answers are
/// read as they come; the list is repeated until the attack stops (at most
/// 3 times). Every item must be answered.
pub async fn batch(ctx: &Ctx) {
    let channel = match servers::connect(ctx.addr).await {
        Ok(c) => c,
        Err(e) => {
            ctx.stats()
                .failures
                .push(format!("row 9: cannot connect: {e:#}"));
            return;
        }
    };
    let ports: Arc<Vec<u16>> = Arc::new(ctx.workload.exact_ports.clone());
    let mut runs: Vec<BatchRun> = Vec::new();
    'rounds: for _ in 0..3 {
        for (&n, frames) in ctx
            .p
            .batch_items
            .iter()
            .flat_map(|n| [(n, false), (n, true)])
        {
            let t0 = Instant::now();
            ctx.stats().opened += 1;
            let one = async {
                if frames {
                    one_batch_frames(ctx.addr, &ports, n).await
                } else {
                    one_batch(channel.clone(), Arc::clone(&ports), n).await
                }
            };
            let run = tokio::select! {
                () = ctx.stop.wait() => {
                    ctx.stats().open_at_end += 1;
                    break 'rounds;
                }
                run = one => run,
            };
            let run = BatchRun {
                ms: ms(t0.elapsed()),
                ..run
            };
            let mut s = ctx.stats();
            s.tally(&format!(
                "{}-{n}:{}",
                run.client,
                run.status.split(':').next().unwrap_or("")
            ));
            s.ended_by_server += 1;
            if run.answered < run.items {
                s.failures.push(format!(
                    "row 9: {} of {} pipelined items answered ({}, {})",
                    run.answered, run.items, run.client, run.status
                ));
            }
            drop(s);
            runs.push(run);
        }
    }
    record_batch(ctx, &runs);
    ctx.stop.wait().await;
}

/// Row 9's verdict on the runs.
fn record_batch(ctx: &Ctx, runs: &[BatchRun]) {
    let mut s = ctx.stats();
    for r in runs {
        s.notes.push(format!(
            "{} items ({}): {} answered ({} item errors), {}, in {:.0} ms",
            r.items, r.client, r.answered, r.item_errors, r.status, r.ms
        ));
    }
    let all = runs.iter().all(|r| r.answered == r.items);
    s.checks.push(Check::new(
        "row 9: every pipelined BatchLookup item answered",
        "all",
        format!(
            "{} of {} streams complete",
            runs.iter().filter(|r| r.answered == r.items).count(),
            runs.len()
        ),
        all && !runs.is_empty(),
    ));
    s.details.insert("batch_runs".into(), json!(runs));
}

async fn one_batch(channel: tonic::transport::Channel, ports: Arc<Vec<u16>>, n: usize) -> BatchRun {
    let mut client = PortRegistryServiceClient::new(channel);
    let items = futures::stream::iter((0..n).map(move |i| BatchLookupRequest {
        id: i.to_string(),
        query: Some(Query::Port(u32::from(
            ports.get(i % ports.len().max(1)).copied().unwrap_or(443),
        ))),
        protocol: 0,
    }));
    let mut run = BatchRun {
        client: "tonic",
        items: n,
        answered: 0,
        item_errors: 0,
        status: String::new(),
        ms: 0.0,
    };
    let mut stream = match client.batch_lookup(items).await {
        Ok(r) => r.into_inner(),
        Err(s) => {
            run.status = format!("{:?}: {}", s.code(), s.message());
            return run;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(item)) => {
                run.answered += 1;
                if item.error.is_some() {
                    run.item_errors += 1;
                }
            }
            Ok(None) => {
                run.status = "OK".into();
                return run;
            }
            Err(s) => {
                run.status = format!("{:?}: {}", s.code(), s.message());
                return run;
            }
        }
    }
}

/// The raw HTTP/2 variant of [`one_batch`]: every item is its own small
/// DATA frame (queued all at once; h2 sends them as the server's windows
/// allow), and the answers are counted from their gRPC framing as they
/// arrive.
async fn one_batch_frames(addr: std::net::SocketAddr, ports: &[u16], n: usize) -> BatchRun {
    let mut run = BatchRun {
        client: "frame-per-item",
        items: n,
        answered: 0,
        item_errors: 0,
        status: String::new(),
        ms: 0.0,
    };
    let conn = match RawConn::open(addr, false).await {
        Ok(c) => c,
        Err(e) => {
            run.status = format!("connect failed: {e:#}");
            return run;
        }
    };
    let (response, mut body) = match conn.start(BATCH, None).await {
        Ok(c) => c,
        Err(e) => {
            run.status = classify(&e).key();
            return run;
        }
    };
    for i in 0..n {
        let item = BatchLookupRequest {
            id: i.to_string(),
            query: Some(Query::Port(u32::from(
                ports.get(i % ports.len().max(1)).copied().unwrap_or(443),
            ))),
            protocol: 0,
        };
        if body
            .send_data(super::raw::grpc_frame(&item.encode_to_vec()), i + 1 == n)
            .is_err()
        {
            break;
        }
    }
    let response = match response.await {
        Ok(r) => r,
        Err(e) => {
            run.status = classify(&e).key();
            return run;
        }
    };
    if let Some(code) = response.headers().get("grpc-status") {
        run.status = format!("trailers-only grpc-status {code:?}");
        return run;
    }
    let mut stream = response.into_body();
    let mut pending = prost::bytes::BytesMut::new();
    let mut failed = None;
    while let Some(chunk) = stream.data().await {
        match chunk {
            Ok(chunk) => {
                let _ = stream.flow_control().release_capacity(chunk.len());
                pending.extend_from_slice(&chunk);
                while pending.len() >= 5 {
                    let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]])
                        as usize;
                    if pending.len() < 5 + len {
                        break;
                    }
                    let message = pending.split_to(5 + len);
                    run.answered += 1;
                    if !crate::summary::BatchItemSummary::decode(&message[5..])
                        .is_ok_and(|item| item.error.is_none())
                    {
                        run.item_errors += 1;
                    }
                }
            }
            Err(e) => {
                failed = Some(classify(&e).key());
                break;
            }
        }
    }
    run.status = match failed {
        Some(why) => why,
        None => match stream.trailers().await {
            Ok(Some(t)) => match t.get("grpc-status").and_then(|v| v.to_str().ok()) {
                Some("0") => "OK".into(),
                Some(code) => format!("{:?}", tonic::Code::from_i32(code.parse().unwrap_or(2))),
                None => "no grpc-status".into(),
            },
            Ok(None) => "no trailers".into(),
            Err(e) => classify(&e).key(),
        },
    };
    drop(body);
    run
}

/// Row 10: `list_loops` loops, each calling ListRecords with `list_states`
/// repeated `states` values (RECORD_STATE_REMOVED, which few records have,
/// so a naive filter compares every record with every value) and reading
/// the whole answer, again and again until the attack stops.
pub async fn list_states(ctx: &Ctx) {
    let channel = match servers::connect(ctx.addr).await {
        Ok(c) => c,
        Err(e) => {
            ctx.stats()
                .failures
                .push(format!("row 10: cannot connect: {e:#}"));
            return;
        }
    };
    let request = ListRecordsRequest {
        states: vec![RecordState::Removed as i32; ctx.p.list_states],
        ..Default::default()
    };
    ctx.stats()
        .details
        .insert("request_bytes".into(), json!(request.encoded_len()));
    let mut loops = JoinSet::new();
    for _ in 0..ctx.p.list_loops {
        let (ctx, channel, request) = (ctx.clone(), channel.clone(), request.clone());
        loops.spawn(async move {
            let mut times = Vec::new();
            let mut client = port_registry_service_client::PortRegistryServiceClient::new(channel);
            while !ctx.stop.is_set() {
                let t0 = Instant::now();
                let call = async {
                    let mut s = client.list_records(request.clone()).await?.into_inner();
                    let mut n = 0u64;
                    while let Some(message) = s.message().await? {
                        n += message.records.len() as u64;
                    }
                    Ok::<u64, tonic::Status>(n)
                };
                ctx.stats().opened += 1;
                let result = tokio::select! {
                    () = ctx.stop.wait() => {
                        ctx.stats().open_at_end += 1;
                        break;
                    }
                    r = call => r,
                };
                let end = match &result {
                    Ok(_) => End::Status(tonic::Code::Ok),
                    Err(s) => End::Status(s.code()),
                };
                ctx.stats().ended(&end);
                times.push(ms(t0.elapsed()));
                if result.is_err() && !pause(&ctx.stop, Duration::from_millis(100)).await {
                    break;
                }
            }
            times
        });
    }
    let mut times = Vec::new();
    while let Some(t) = loops.join_next().await {
        times.extend(t.unwrap_or_default());
    }
    let s = Summary::of(&times);
    let mut stats = ctx.stats();
    stats.notes.push(format!(
        "{} calls with {} states values ({} B requests): call time p50 {:.0} ms, max {:.0} ms",
        s.n,
        ctx.p.list_states,
        request.encoded_len(),
        s.p50,
        s.max
    ));
    stats.details.insert("call_ms".into(), json!(s));
}
