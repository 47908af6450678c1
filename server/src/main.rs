//! `portolan-server`: parses flags (with `PORTOLAN_*` environment
//! fallbacks), sets up logging, validates the configuration (exit code 2 on
//! a bad one, before binding anything), binds the listener and runs the
//! server until SIGTERM or SIGINT.

/// jemalloc rather than the system allocator: it returns freed pages to
/// the OS from a background thread (see `.cargo/config.toml`), so a reload's
/// transient copy of the registry does not stay resident, and it serves the
/// many small allocations of request handling with less contention.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;
use portolan_server::{Args, Config, LogFormat};
use tracing_subscriber::EnvFilter;

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .init(),
    }
}

/// Completes on the first SIGTERM or SIGINT.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server")
            }
        }
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        tracing::info!("SIGINT received");
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing(args.log_format);
    let config = match Config::load(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("portolan-server: error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("portolan-server: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // Registering any SIGHUP listener replaces the default action
        // (terminate) for the life of the process, so a SIGHUP before the
        // reloader starts, or with no data file to reload, is harmless.
        #[cfg(unix)]
        if let Err(e) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
        }
        let addr = config.args.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind --listen {addr}: {e}"))?;
        portolan_server::run(config, listener, termination()).await
    });
    // Do not wait for stray blocking work (a parse in flight) at exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portolan-server: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
