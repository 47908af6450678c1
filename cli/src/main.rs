//! `portolan`: look up IANA service names and port numbers from a Portolan
//! server or offline, watch changes, check and export registry files.
//!
//! # Layout
//! * `args`: clap definitions and validation of raw arguments.
//! * `backend`: the server client or the offline [`portolan_registry::Index`].
//! * `output`: table / JSON lines / CSV rendering.
//! * `lint`: `portolan lint`, the ports of Kubernetes manifests
//!   (`portolan-lint` on the embedded registry and mesh hints).
//! * `sync`: `portolan sync`, unattended updates of a registry file from
//!   an upstream URL (download, validation as a reload, atomic write).
//! * this file: `main` (exit codes, broken pipes) and one function per
//!   subcommand.
//!
//! Exit codes: 0 found / success (`sync`: written or not modified), 1 not
//! found (or `check` found the file invalid, or `diff` found
//! differences), 2 usage error or bad input (including a download `sync`
//! refused), 3 server (or `sync`'s upstream) unreachable or failing. A
//! closed stdout (`| head`) exits 0 quietly.

mod args;
mod backend;
mod lint;
mod output;
mod sync;

use std::io::{self, IsTerminal as _, Write};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{CommandFactory as _, Parser as _};
use futures::StreamExt as _;
use portolan_client::{ScanFilter, WatchEventKind, WatchMode};
use portolan_registry::Record;
use serde_json::json;

use crate::args::{Cli, Command, ExportFormat, OutputFormat, parse_query};
use crate::backend::{Backend, Found, describe};

const FOUND: ExitCode = ExitCode::SUCCESS;
const NOT_FOUND: u8 = 1;
/// Usage errors and bad input (a file that cannot be read or parsed, an
/// invalid query).
const ERROR: u8 = 2;
/// The server could not be reached or failed ([`backend::ServerFailure`]).
const SERVER_FAILURE: u8 = 3;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors exit 2.
            let code = if e.use_stderr() { ERROR } else { 0 };
            if let Err(io) = e.print()
                && io.kind() != io::ErrorKind::BrokenPipe
            {
                return ExitCode::from(ERROR);
            }
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Messages can quote a server or a data file: escape controls.
            eprintln!(
                "portolan: {}",
                output::escape_controls(&format!("{e:#}"), &[])
            );
            if e.downcast_ref::<backend::ServerFailure>().is_some() {
                ExitCode::from(SERVER_FAILURE)
            } else {
                ExitCode::from(ERROR)
            }
        }
    }
}

/// One side of `portolan diff`, keyed (see [`load_registry`]).
fn diff_side(
    global: &args::Global,
    side: &std::path::Path,
) -> anyhow::Result<Vec<portolan_registry::diff::KeyedRecord>> {
    Ok(portolan_registry::index::keyed_records(
        load_registry(global, side)?.records,
    ))
}

/// The registry of a file, or of the server a `http://` or `https://`
/// argument names (read with ListRecords; records carry their positions,
/// and a listing holds rows with the same name, ports and protocol in
/// source order, so keys match the file's).
fn load_registry(
    global: &args::Global,
    side: &std::path::Path,
) -> anyhow::Result<portolan_registry::Registry> {
    let uri = side
        .to_str()
        .filter(|s| s.starts_with("http://") || s.starts_with("https://"));
    let registry = match uri {
        None => {
            let bytes =
                std::fs::read(side).with_context(|| format!("cannot read {}", side.display()))?;
            portolan_registry::parse(&bytes, None)
                .with_context(|| format!("cannot parse {}", side.display()))?
                .registry
        }
        Some(uri) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let remote = args::Global {
                endpoint: uri.to_string(),
                offline: false,
                ..global.clone()
            };
            runtime.block_on(async { Backend::open(&remote).await?.registry(None).await })?
        }
    };
    Ok(registry)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let format = cli.global.output.unwrap_or(if io::stdout().is_terminal() {
        OutputFormat::Table
    } else {
        OutputFormat::Json
    });
    output::set_headers(!cli.global.no_headers);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    // Commands that need no backend.
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "portolan", &mut out);
            out.flush()?;
            return Ok(FOUND);
        }
        Command::Manpage => {
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            out.flush()?;
            return Ok(FOUND);
        }
        Command::Check { file, against } => {
            return check(&mut out, format, &cli.global, file, against.as_deref());
        }
        Command::Diff { old, new } => return diff(&mut out, format, &cli.global, old, new),
        Command::Lint(args) => return lint::run(&mut out, args, &cli.global),
        Command::Sync(args) => {
            let settings = sync::Settings::from_args(args)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(sync::run(settings))?;
            return Ok(FOUND);
        }
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let backend = Backend::open(&cli.global).await?;
        let code = match cli.command {
            Command::Lookup { queries, proto } => {
                if let [query] = queries.as_slice()
                    && query != "-"
                {
                    lookup(&backend, &mut out, format, query, proto).await?
                } else {
                    lookup_many(&backend, &mut out, format, &queries, proto).await?
                }
            }
            Command::Search {
                text,
                proto,
                limit,
                layer,
            } => {
                let filter = ScanFilter {
                    protocol: proto,
                    layers: layer,
                    ..ScanFilter::default()
                };
                let records = backend.search(&text, &filter, limit).await?;
                if records.is_empty() {
                    // No header over nothing: the message says it all.
                    eprintln!("portolan: nothing matches {text:?}");
                    ExitCode::from(NOT_FOUND)
                } else {
                    output::write_records(&mut out, format, records.iter().map(|r| &**r))?;
                    FOUND
                }
            }
            Command::List {
                proto,
                range,
                state,
                layer,
            } => {
                let filter = ScanFilter {
                    protocol: proto,
                    port_min: range.map(|r| r.0),
                    port_max: range.map(|r| r.1),
                    states: state,
                    layers: layer,
                };
                let bar = progress("records");
                let records = backend.list(&filter, Some(&bar)).await?;
                bar.finish_and_clear();
                output::write_records(&mut out, format, records.iter().map(|r| &**r))?;
                if records.is_empty() {
                    ExitCode::from(NOT_FOUND)
                } else {
                    FOUND
                }
            }
            Command::Describe { port } => describe_port(&backend, &mut out, format, &port).await?,
            Command::Info => {
                let info = backend.info().await?;
                output::write_info(&mut out, format, &info)?;
                FOUND
            }
            Command::Export { format: export } => {
                let bar = progress("records");
                let registry = backend.registry(Some(&bar)).await?;
                bar.finish_and_clear();
                out.write_all(render_export(&registry, export)?.as_bytes())?;
                FOUND
            }
            Command::Watch {
                from_state,
                max_reconnects,
            } => watch(&backend, &mut out, format, from_state, max_reconnects).await?,
            Command::Completions { .. }
            | Command::Manpage
            | Command::Check { .. }
            | Command::Diff { .. }
            | Command::Lint(_)
            | Command::Sync(_) => FOUND,
        };
        out.flush()?;
        Ok(code)
    })
}

/// A spinner on stderr, drawn only when stderr is a terminal.
fn progress(what: &'static str) -> indicatif::ProgressBar {
    if !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {pos} {msg}") {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

async fn lookup(
    backend: &Backend,
    out: &mut dyn Write,
    format: OutputFormat,
    query: &str,
    proto: Option<portolan_registry::Protocol>,
) -> anyhow::Result<ExitCode> {
    let (query, inline) = parse_query(query).map_err(anyhow::Error::msg)?;
    let proto = match (inline, proto) {
        (Some(a), Some(b)) if a != b => {
            eprintln!("portolan: the query says /{a} but --proto says {b}");
            return Ok(ExitCode::from(ERROR));
        }
        (a, b) => a.or(b),
    };
    match backend.lookup(&query, proto.as_ref()).await? {
        Found::Some(result) => {
            output::write_records(out, format, result.records.iter().map(|r| &**r))?;
            Ok(FOUND)
        }
        Found::None(message) => {
            out.flush()?;
            eprintln!("portolan: {message}");
            Ok(ExitCode::from(NOT_FOUND))
        }
    }
}

/// `portolan describe PORT[/PROTO]`: what the port means to a service
/// mesh, from a server's DescribePort or computed offline by the same
/// domain function. Exit 0 when there are records or a hint, 1 when
/// neither.
async fn describe_port(
    backend: &Backend,
    out: &mut dyn Write,
    format: OutputFormat,
    key: &str,
) -> anyhow::Result<ExitCode> {
    let (query, proto) = parse_query(key).map_err(anyhow::Error::msg)?;
    let args::Query::Port(port) = query else {
        bail!("{key:?} is not a port (describe takes PORT or PORT/PROTO)");
    };
    let Some(described) = backend.describe(port, proto.as_ref()).await? else {
        let place = proto.map_or_else(|| port.to_string(), |p| format!("{port}/{p}"));
        eprintln!("portolan: no record and no mesh hint for port {place}");
        return Ok(ExitCode::from(NOT_FOUND));
    };
    output::write_description(out, format, &described)?;
    Ok(FOUND)
}

/// `portolan lookup KEY KEY...` (or `-`, one key per line on stdin): every
/// key answered in the order given, through one BatchLookup stream against
/// a server. JSON: one line per key with its `status` (`found`,
/// `not_found`, `invalid`) and records; table and CSV: the records of the
/// found keys, and a line on stderr for each key that is not. Exit 0 when
/// every key is found, 1 when any is not, 2 when any is invalid.
async fn lookup_many(
    backend: &Backend,
    out: &mut dyn Write,
    format: OutputFormat,
    keys: &[String],
    proto: Option<portolan_registry::Protocol>,
) -> anyhow::Result<ExitCode> {
    let mut expanded = Vec::new();
    for key in keys {
        if key == "-" {
            for line in io::stdin().lines() {
                let line = line.context("cannot read the keys from stdin")?;
                if !line.trim().is_empty() {
                    expanded.push(line.trim().to_string());
                }
            }
        } else {
            expanded.push(key.clone());
        }
    }
    // Each key's query, or why it is invalid.
    let parsed: Vec<Result<_, String>> = expanded
        .iter()
        .map(|key| {
            let (query, inline) = parse_query(key)?;
            match (inline, proto.clone()) {
                (Some(a), Some(b)) if a != b => {
                    Err(format!("the key says /{a} but --proto says {b}"))
                }
                (a, b) => Ok((query, a.or(b))),
            }
        })
        .collect();
    let valid: Vec<_> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let mut answers = backend.lookup_many(&valid).await?.into_iter();
    let (mut missing, mut invalid) = (false, false);
    let mut found_records: Vec<std::sync::Arc<Record>> = Vec::new();
    for (key, parsed) in expanded.iter().zip(&parsed) {
        let (status, records, error) = match parsed {
            Err(why) => {
                invalid = true;
                ("invalid", Vec::new(), Some(why.clone()))
            }
            Ok(_) => match answers.next() {
                Some(Found::Some(result)) => ("found", result.records, None),
                Some(Found::None(message)) => {
                    missing = true;
                    ("not_found", Vec::new(), Some(message))
                }
                None => bail!("an answer is missing"),
            },
        };
        if format == OutputFormat::Json {
            let value = json!({
                "query": key,
                "status": status,
                "records": records.iter().map(|r| output::record_json(r)).collect::<Vec<_>>(),
                "error": error,
            });
            output::write_object(out, format, &value)?;
        } else {
            if let Some(error) = &error {
                eprintln!(
                    "portolan: {}: {}",
                    output::one_line(key),
                    output::one_line(error)
                );
            }
            found_records.extend(records);
        }
    }
    if format != OutputFormat::Json {
        output::write_records(out, format, found_records.iter().map(|r| &**r))?;
    }
    out.flush()?;
    Ok(if invalid {
        ExitCode::from(ERROR)
    } else if missing {
        ExitCode::from(NOT_FOUND)
    } else {
        FOUND
    })
}

/// `portolan diff OLD NEW`: every record added, removed or changed (with
/// the fields that changed), then a summary; exit 1 when they differ.
/// Either side may be a server (see [`diff_side`]).
fn diff(
    out: &mut dyn Write,
    format: OutputFormat,
    global: &args::Global,
    old: &std::path::Path,
    new: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use portolan_registry::diff::Diff;
    let diff = Diff::between(&diff_side(global, old)?, &diff_side(global, new)?);
    let changes: Vec<output::Change<'_>> = diff
        .added
        .iter()
        .map(|(key, record)| output::Change::Added(key, record))
        .chain(
            diff.removed
                .iter()
                .map(|(key, record)| output::Change::Removed(key, record)),
        )
        .chain(
            diff.changed
                .iter()
                .map(|(key, before, after)| output::Change::Changed(key, before, after)),
        )
        .collect();
    output::write_changes(out, format, &changes)?;
    let summary = json!({
        "change": "summary",
        "old": old.display().to_string(),
        "new": new.display().to_string(),
        "added": diff.added.len(),
        "removed": diff.removed.len(),
        "changed": diff.changed.len(),
    });
    let line = format!(
        "{} added, {} removed, {} changed",
        diff.added.len(),
        diff.removed.len(),
        diff.changed.len()
    );
    finish_with_summary(out, format, &summary, &line, diff.is_empty())
}

/// Ends `diff` and `check --against`: the summary (a JSON object, a line
/// for people, nothing after CSV rows), then exit 0 when `clean`, 1
/// otherwise.
fn finish_with_summary(
    out: &mut dyn Write,
    format: OutputFormat,
    summary: &serde_json::Value,
    line: &str,
    clean: bool,
) -> anyhow::Result<ExitCode> {
    match format {
        OutputFormat::Json => output::write_object(out, format, summary)?,
        OutputFormat::Table | OutputFormat::Services => writeln!(out, "{line}")?,
        OutputFormat::Csv => {}
    }
    out.flush()?;
    Ok(if clean {
        FOUND
    } else {
        ExitCode::from(NOT_FOUND)
    })
}

fn check(
    out: &mut dyn Write,
    format: OutputFormat,
    global: &args::Global,
    file: &std::path::Path,
    against: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let parsed = match portolan_registry::parse(&bytes, None) {
        Ok(p) => p,
        Err(e) => {
            let value = json!({
                "file": file.display().to_string(),
                "valid": false,
                "error": e.to_string(),
                "line": e.line(),
            });
            if format == OutputFormat::Json {
                output::write_object(out, format, &value)?;
            }
            out.flush()?;
            eprintln!("portolan: {}: {e}", file.display());
            return Ok(ExitCode::from(NOT_FOUND));
        }
    };
    let registry = &parsed.registry;
    let by_state: serde_json::Map<String, serde_json::Value> = registry
        .counts_by_state()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_string(), json!(v)))
        .collect();
    let by_protocol: serde_json::Map<String, serde_json::Value> = registry
        .counts_by_protocol()
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    match format {
        OutputFormat::Json => {
            let value = json!({
                "file": file.display().to_string(),
                "valid": true,
                "format": registry.source.format_label(),
                "records": registry.len(),
                "records_by_state": by_state,
                "records_by_protocol": by_protocol,
                "diagnostics": parsed.diagnostics.iter()
                    .map(|d| json!({"line": d.line, "message": d.message}))
                    .collect::<Vec<_>>(),
            });
            output::write_object(out, format, &value)?;
        }
        OutputFormat::Table | OutputFormat::Csv | OutputFormat::Services => {
            let value = json!({
                "file": file.display().to_string(),
                "valid": true,
                "format": registry.source.format_label(),
                "records": registry.len(),
                "records_by_state": by_state,
                "records_by_protocol": by_protocol,
                "diagnostics": parsed.diagnostics.len(),
            });
            output::write_object(out, format, &value)?;
            if matches!(format, OutputFormat::Table | OutputFormat::Services) {
                for d in &parsed.diagnostics {
                    writeln!(
                        out,
                        "{}:{}: {}",
                        file.display(),
                        d.line,
                        output::one_line(&d.message)
                    )?;
                }
            }
        }
    }
    let Some(against) = against else {
        out.flush()?;
        return Ok(FOUND);
    };
    let reference = portolan_registry::Index::new(load_registry(global, against)?);
    let found = portolan_registry::conflicts::conflicts(registry, &reference);
    output::write_conflicts(out, format, &found)?;
    let summary = json!({
        "check": "summary",
        "file": file.display().to_string(),
        "against": against.display().to_string(),
        "conflicts": found.len(),
    });
    let line = format!("{} conflicts with {}", found.len(), against.display());
    finish_with_summary(out, format, &summary, &line, found.is_empty())
}

fn render_export(
    registry: &portolan_registry::Registry,
    format: ExportFormat,
) -> anyhow::Result<String> {
    use portolan_registry::export;
    Ok(match format {
        ExportFormat::Services => export::to_services(registry),
        ExportFormat::Csv => export::to_csv(registry),
        ExportFormat::Json => {
            let mut out = String::with_capacity(registry.len() * 256);
            for record in &registry.records {
                out.push_str(&output::record_json(record).to_string());
                out.push('\n');
            }
            out
        }
    })
}

/// Why a watch stream stopped when it is not worth reconnecting: the
/// error, and whether reconnecting may help.
struct WatchFailure {
    error: anyhow::Error,
    retryable: bool,
}

impl From<io::Error> for WatchFailure {
    fn from(e: io::Error) -> Self {
        Self {
            error: e.into(),
            retryable: false,
        }
    }
}

/// Whether a watch failing with `e` may work when reopened: the server was
/// unreachable, went away, cancelled the call or was briefly full. Anything
/// else (INVALID_ARGUMENT, a TLS refusal, a protocol error) fails the same
/// way again.
fn worth_reconnecting(e: &portolan_client::Error) -> bool {
    use portolan_client::Error as E;
    e.is_unreachable() || matches!(e, E::Cancelled { .. } | E::ResourceExhausted { .. })
}

/// `portolan watch`: prints every change, and when the stream ends (the
/// server's stream lifetime, a restart, a broken connection, a silent
/// stream) reconnects with jittered backoff (to any replica), resuming from
/// the last state it printed, as the proto's Watch rule 7 asks, so nothing
/// is printed twice and nothing is missed. Exits on a signal, an error reconnecting
/// cannot fix, a failure of the very first stream, or after
/// `max_reconnects` attempts in a row that brought no event.
async fn watch(
    backend: &Backend,
    out: &mut dyn Write,
    format: OutputFormat,
    from_state: u64,
    max_reconnects: u32,
) -> anyhow::Result<ExitCode> {
    let Backend::Remote(client) = backend else {
        bail!("watch needs a server (drop --offline)");
    };
    // The replica's settings: no event for 30 s (three default heartbeat
    // intervals, rule 3) means a broken stream; backoff 100 ms doubling to
    // 10 s, with jitter.
    let settings = portolan_client::ReplicaConfig::default();
    let mut held = Held {
        version: 0,
        state_id: from_state,
    };
    let mut failures = 0u32;
    let mut ever_connected = false;
    loop {
        let mut got_event = false;
        let ended = watch_stream(
            client,
            out,
            format,
            &mut held,
            &mut got_event,
            settings.heartbeat_timeout,
        )
        .await;
        ever_connected |= got_event;
        if got_event {
            failures = 0;
        }
        let why = match ended {
            Ok(why) => why,
            Err(f) if f.retryable && ever_connected => format!("{:#}", f.error),
            Err(f) => return Err(f.error),
        };
        if !got_event {
            failures = failures.saturating_add(1);
            if max_reconnects > 0 && failures >= max_reconnects {
                return Err(backend::ServerFailure(format!(
                    "{why}; gave up after {max_reconnects} reconnection attempts"
                ))
                .into());
            }
        }
        let delay = settings.reconnect.backoff(failures);
        eprintln!(
            "portolan: {}; reconnecting from state {:016x} (version {}) in {} ms",
            output::one_line(&why),
            held.state_id,
            held.version,
            delay.as_millis()
        );
        tokio::time::sleep(delay).await;
    }
}

/// What `portolan watch` has printed up to: the state it resumes from, and
/// the version its server numbered it with.
#[derive(Debug, Clone, Copy)]
struct Held {
    version: u64,
    state_id: u64,
}

/// One watch stream, printing each complete snapshot and delta and
/// advancing `held` to its state. Returns why the stream ended when
/// reconnecting is the answer (ended by the server, silent, out of step).
async fn watch_stream(
    client: &portolan_client::Client,
    out: &mut dyn Write,
    format: OutputFormat,
    held: &mut Held,
    got_event: &mut bool,
    silence_limit: std::time::Duration,
) -> Result<String, WatchFailure> {
    let fail = |e: portolan_client::Error| WatchFailure {
        retryable: worth_reconnecting(&e),
        error: describe(client.endpoint(), &e),
    };
    let mut stream = client
        .watch(held.state_id, WatchMode::Full)
        .await
        .map_err(fail)?;
    let mut snapshot_count = 0usize;
    let mut upserted: Vec<Record> = Vec::new();
    let mut removed = Vec::new();
    loop {
        let event = match tokio::time::timeout(silence_limit, stream.next()).await {
            Err(_) => {
                return Ok(format!(
                    "the watch stream sent nothing for {} s",
                    silence_limit.as_secs()
                ));
            }
            Ok(None) => return Ok("the server ended the watch stream".into()),
            Ok(Some(event)) => event.map_err(fail)?,
        };
        *got_event = true;
        match event.kind {
            WatchEventKind::Heartbeat => {
                if event.state_id != held.state_id {
                    return Ok(format!(
                        "heartbeat at state {:016x} while holding {:016x}: resync",
                        event.state_id, held.state_id
                    ));
                }
                held.version = event.version;
                continue;
            }
            WatchEventKind::Snapshot { records, last, .. } => {
                snapshot_count += records.len();
                if !last {
                    continue;
                }
                if format == OutputFormat::Json {
                    output::write_object(
                        out,
                        format,
                        &json!({
                            "event": "snapshot", "version": event.version,
                            "state_id": format!("{:016x}", event.state_id), "records": snapshot_count,
                        }),
                    )?;
                } else {
                    writeln!(
                        out,
                        "version {}: snapshot of {snapshot_count} records",
                        event.version
                    )?;
                }
                snapshot_count = 0;
            }
            WatchEventKind::Delta {
                upserted: u,
                removed: r,
                last,
                ..
            } => {
                if event.from_state_id != held.state_id {
                    return Ok(format!(
                        "delta from state {:016x} while holding {:016x}: resync",
                        event.from_state_id, held.state_id
                    ));
                }
                upserted.extend(u.into_iter().map(|(_, rec)| Record::clone(&rec)));
                removed.extend(r);
                if !last {
                    continue;
                }
                if format == OutputFormat::Json {
                    output::write_object(
                        out,
                        format,
                        &json!({
                            "event": "delta",
                            "from_version": event.from_version,
                            "version": event.version,
                            "from_state_id": format!("{:016x}", event.from_state_id),
                            "state_id": format!("{:016x}", event.state_id),
                            "upserted": upserted.iter().map(output::record_json).collect::<Vec<_>>(),
                            "removed": removed.iter().map(output::key_json).collect::<Vec<_>>(),
                        }),
                    )?;
                } else {
                    writeln!(
                        out,
                        "version {} (from {}): {} added or changed, {} removed",
                        event.version,
                        event.from_version,
                        upserted.len(),
                        removed.len()
                    )?;
                    for r in &upserted {
                        writeln!(
                            out,
                            "  + {} {}/{} {}",
                            r.name
                                .as_deref()
                                .map_or_else(|| "-".into(), output::one_line),
                            r.ports.map_or_else(|| "-".into(), |p| p.to_string()),
                            r.protocol.as_ref().map_or("any", |p| p.as_str()),
                            output::one_line(&r.description)
                        )?;
                    }
                    for k in &removed {
                        writeln!(out, "  - {}", output::one_line(&k.to_string()))?;
                    }
                }
                upserted.clear();
                removed.clear();
            }
            _ => continue,
        }
        *held = Held {
            version: event.version,
            state_id: event.state_id,
        };
        out.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `export --format json` writes each record of the full registry as the
    /// proto3 JSON of `portolan.v1.Record`; read back through the same
    /// mapping and the contract's conversion, every record is what was
    /// exported, its place in the source included.
    #[test]
    fn json_export_round_trips_every_record_of_the_embedded_registry() {
        let registry = portolan_registry::embedded::registry();
        let text = render_export(&registry, ExportFormat::Json).expect("export");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), registry.len());
        assert!(registry.len() > 14_000);
        for (line, record) in lines.iter().zip(&registry.records) {
            let message: portolan::pb::Record = serde_json::from_str(line).expect("proto3 JSON");
            let (_, back) = portolan::convert::record_from_pb(&message).expect("a valid record");
            assert_eq!(&back, record, "{line}");
        }
    }
}
