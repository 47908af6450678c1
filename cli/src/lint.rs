//! `portolan lint`: reads the inputs, lints each with `portolan-lint` on
//! the embedded registry and mesh hints, renders the findings and picks
//! the exit code. [`lint_manifests`] is the seam a server-mode `LintPorts`
//! call can replace: manifests in, findings out.

use std::io::{self, Read as _, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use portolan_lint::report::{self, FileFindings};
use portolan_lint::{Manifest, Mesh, Options, RegistryView, Severity, yaml};
use portolan_registry::{Hints, Index};

use crate::args::{FailOn, LintArgs, LintFormat, LintMesh};

/// Inputs were read, nothing at or above `--fail-on` was found.
const CLEAN: u8 = 0;
/// A finding at or above `--fail-on`.
const FINDINGS: u8 = 1;
/// An input that cannot be read, or with no document that parses.
const BAD_INPUT: u8 = 2;

/// Lints each named manifest: the part a server can do instead.
pub fn lint_manifests(
    manifests: &[(String, Manifest)],
    registry: &dyn RegistryView,
    hints: &Hints,
    options: &Options,
) -> Vec<FileFindings> {
    manifests
        .iter()
        .map(|(file, manifest)| FileFindings {
            file: file.clone(),
            findings: portolan_lint::lint(manifest, registry, hints, options),
        })
        .collect()
}

fn read_input(path: &Path) -> anyhow::Result<(String, String)> {
    if path.as_os_str() == "-" {
        let text = yaml::read_bounded(io::stdin().lock()).context("cannot read stdin")?;
        return Ok(("<stdin>".into(), text));
    }
    let name = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {name}"))?;
    let text =
        yaml::read_bounded(file.take(u64::MAX)).with_context(|| format!("cannot read {name}"))?;
    Ok((name, text))
}

/// Runs `portolan lint`.
pub fn run(out: &mut impl Write, args: &LintArgs) -> anyhow::Result<ExitCode> {
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
    let index = Index::new(portolan_registry::embedded::registry());
    let files = lint_manifests(&manifests, &index, Hints::embedded(), &options);
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
