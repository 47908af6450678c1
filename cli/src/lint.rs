//! `portolan lint`: reads the inputs, lints each with `portolan-lint`
//! (locally on the embedded registry, or `--data`, and the compiled-in mesh
//! hints; with `--server`, through the server's LintPorts on its registry
//! and hints), renders the findings and picks the exit code.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use portolan_lint::report::{self, FileFindings};
use portolan_lint::{Manifest, Mesh, Options, RegistryView, Severity, yaml};
use portolan_registry::Hints;

use crate::args::{FailOn, Global, LintArgs, LintFormat, LintMesh};
use crate::backend::{self, Backend};

/// Inputs were read, nothing at or above `--fail-on` was found.
const CLEAN: u8 = 0;
/// A finding at or above `--fail-on`.
const FINDINGS: u8 = 1;
/// An input that cannot be read, or with no document that parses.
const BAD_INPUT: u8 = 2;

/// Lints each named manifest where `backend` says: locally on its index
/// and the compiled-in hints, or on the server through LintPorts (one call
/// per input; the documents that failed to parse are reported locally).
async fn lint_manifests(
    manifests: &[(String, Manifest)],
    backend: &Backend,
    options: &Options,
) -> anyhow::Result<Vec<FileFindings>> {
    let mut files = Vec::with_capacity(manifests.len());
    for (file, manifest) in manifests {
        let findings = match backend {
            Backend::Offline(index) => portolan_lint::lint(
                manifest,
                index as &dyn RegistryView,
                Hints::embedded(),
                options,
            ),
            Backend::Remote(client) => {
                let (remote, omitted) = client
                    .lint_ports(manifest, options)
                    .await
                    .map_err(|e| backend::describe(client.endpoint(), &e))?;
                if omitted > 0 {
                    eprintln!(
                        "portolan: {file}: the server left out {omitted} more findings \
                         (its limit); lint without --server for all of them"
                    );
                }
                let mut findings = portolan_lint::rules::document_errors(manifest);
                findings.extend(remote);
                // In the order a local run reports them.
                findings.sort_by_key(|f| f.position);
                findings
            }
        };
        files.push(FileFindings {
            file: file.clone(),
            findings,
        });
    }
    Ok(files)
}

fn read_input(path: &Path) -> anyhow::Result<(String, String)> {
    if path.as_os_str() == "-" {
        let text = yaml::read_bounded(io::stdin().lock()).context("cannot read stdin")?;
        return Ok(("<stdin>".into(), text));
    }
    let name = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {name}"))?;
    let text = yaml::read_bounded(file).with_context(|| format!("cannot read {name}"))?;
    Ok((name, text))
}

/// Runs `portolan lint`.
pub fn run(out: &mut impl Write, args: &LintArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let paths: Vec<&Path> = if args.files.is_empty() {
        vec![Path::new("-")]
    } else {
        args.files.iter().map(|p| p.as_path()).collect()
    };
    let mut manifests = Vec::with_capacity(paths.len());
    let mut unparsable = Vec::new();
    for path in paths {
        let (name, text) = read_input(path)?;
        let manifest = yaml::parse(&text);
        if manifest.documents == 0 && !manifest.errors.is_empty() {
            unparsable.push(name.clone());
        }
        manifests.push((name, manifest));
    }
    let mut meshes: Vec<Mesh> = args
        .mesh
        .iter()
        .map(|m| match m {
            LintMesh::Istio => Mesh::Istio,
            LintMesh::Linkerd => Mesh::Linkerd,
        })
        .collect();
    meshes.sort_unstable();
    meshes.dedup();
    let options = Options { meshes };
    // Local unless --server: a linter mostly runs where no server is.
    let global = Global {
        offline: !args.server,
        ..global.clone()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let files = runtime.block_on(async {
        let backend = Backend::open(&global).await?;
        lint_manifests(&manifests, &backend, &options).await
    })?;
    match args.format {
        LintFormat::Text => out.write_all(report::text(&files).as_bytes())?,
        LintFormat::Json => writeln!(out, "{}", report::json(&files))?,
        LintFormat::Sarif => writeln!(
            out,
            "{:#}",
            report::sarif(&files, env!("CARGO_PKG_VERSION"))
        )?,
    }
    out.flush()?;
    if !unparsable.is_empty() {
        eprintln!(
            "portolan: no YAML document could be parsed in {}",
            unparsable.join(", ")
        );
        return Ok(ExitCode::from(BAD_INPUT));
    }
    let threshold = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::None => None,
    };
    let failed = threshold.is_some_and(|t| {
        files
            .iter()
            .flat_map(|f| &f.findings)
            .any(|f| f.severity >= t)
    });
    Ok(ExitCode::from(if failed { FINDINGS } else { CLEAN }))
}
