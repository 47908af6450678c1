//! `portolan-bench`: see the library documentation ([`portolan_bench`]) and
//! `BENCHMARKS.md` at the repository root. Exits 1 when a scenario had an
//! unexpected failure (a failed request, a version going backwards, a watch
//! stream that missed the change), 2 when it could not run at all.

/// The same allocator as `portolan-server`, so that the baseline server
/// (this executable's `baseline-server`) differs from Portolan only in the
/// registry work, not in how it allocates.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::ExitCode;

use clap::Parser as _;
use portolan_bench::scenarios::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::BaselineServer(a) = &cli.command
        && !a.listen.ip().is_loopback()
    {
        eprintln!("baseline-server listens on loopback only");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portolan-bench: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let json = cli.json;
    let json_out = cli.json_out.clone();
    match runtime.block_on(scenarios::run(cli.command)) {
        Ok(report) => {
            if let Some(path) = &json_out {
                let written = serde_json::to_string_pretty(&report)
                    .map_err(std::io::Error::other)
                    .and_then(|s| std::fs::write(path, s + "\n"));
                if let Err(e) = written {
                    eprintln!("portolan-bench: writing {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("portolan-bench: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                print!("{}", report.render());
            }
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("portolan-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
