//! Findings rendered as text (compiler style), JSON or SARIF 2.1.0.
//!
//! Each renderer takes the findings per input, with the input's name as
//! the user gave it (`-` shown as `<stdin>`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::rules::{Finding, Rule, Severity};

/// The findings of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFindings {
    /// The input's name as given on the command line.
    pub file: String,
    /// Its findings, in position order.
    pub findings: Vec<Finding>,
}

/// Counts per severity and per rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Findings per severity.
    pub by_severity: BTreeMap<Severity, usize>,
    /// Findings per rule.
    pub by_rule: BTreeMap<Rule, usize>,
}

impl Counts {
    /// Counts the findings of `files`.
    pub fn of(files: &[FileFindings]) -> Self {
        let mut counts = Self::default();
        for f in files.iter().flat_map(|f| &f.findings) {
            *counts.by_severity.entry(f.severity).or_default() += 1;
            *counts.by_rule.entry(f.rule).or_default() += 1;
        }
        counts
    }

    fn severity(&self, severity: Severity) -> usize {
        self.by_severity.get(&severity).copied().unwrap_or(0)
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// One finding as two lines: `FILE:LINE:COL: error[rule]: message` and
/// an indented `fix:` line when there is a fix.
pub fn text_finding(file: &str, f: &Finding) -> String {
    let mut s = format!(
        "{file}:{}:{}: {}[{}]: {}\n",
        f.position.line,
        f.position.column,
        f.severity.as_str(),
        f.rule.id(),
        f.message
    );
    if let Some(fix) = &f.fix {
        let _ = writeln!(s, "  fix: {fix}");
    }
    s
}

/// Every finding, then a summary line with the counts.
pub fn text(files: &[FileFindings]) -> String {
    let mut s = String::new();
    for file in files {
        for f in &file.findings {
            s.push_str(&text_finding(&file.file, f));
        }
    }
    let counts = Counts::of(files);
    let rules: Vec<String> = counts
        .by_rule
        .iter()
        .map(|(r, n)| format!("{} {n}", r.id()))
        .collect();
    let _ = write!(
        s,
        "{}, {}, {} in {}",
        plural(counts.severity(Severity::Error), "error"),
        plural(counts.severity(Severity::Warning), "warning"),
        plural(counts.severity(Severity::Info), "info"),
        plural(files.len(), "file"),
    );
    if !rules.is_empty() {
        let _ = write!(s, " ({})", rules.join(", "));
    }
    s.push('\n');
    s
}

fn finding_json(file: &str, f: &Finding) -> Value {
    json!({
        "file": file,
        "line": f.position.line,
        "column": f.position.column,
        "rule": f.rule.id(),
        "severity": f.severity.as_str(),
        "object": f.object,
        "path": f.path,
        "message": f.message,
        "fix": f.fix,
    })
}

/// One JSON document: the findings and their counts per rule and per
/// severity.
pub fn json(files: &[FileFindings]) -> Value {
    let counts = Counts::of(files);
    let findings: Vec<Value> = files
        .iter()
        .flat_map(|file| file.findings.iter().map(|f| finding_json(&file.file, f)))
        .collect();
    let by_rule: serde_json::Map<String, Value> = counts
        .by_rule
        .iter()
        .map(|(r, n)| (r.id().to_string(), json!(n)))
        .collect();
    let by_severity: serde_json::Map<String, Value> =
        [Severity::Error, Severity::Warning, Severity::Info]
            .iter()
            .map(|s| (s.as_str().to_string(), json!(counts.severity(*s))))
            .collect();
    json!({
        "findings": findings,
        "counts": { "by_rule": by_rule, "by_severity": by_severity },
        "files": files.len(),
    })
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// A SARIF 2.1.0 log with one run: every rule in the driver (id,
/// description, source as `helpUri`, default level) and one result per
/// finding, its fix in the result's `properties.fix`.
pub fn sarif(files: &[FileFindings], version: &str) -> Value {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.id(),
                "shortDescription": { "text": r.short_description() },
                "helpUri": r.help_uri(),
                "defaultConfiguration": { "level": sarif_level(r.default_severity()) },
            })
        })
        .collect();
    let results: Vec<Value> = files
        .iter()
        .flat_map(|file| {
            file.findings.iter().map(move |f| {
                let mut result = json!({
                    "ruleId": f.rule.id(),
                    "ruleIndex": Rule::ALL.iter().position(|r| *r == f.rule),
                    "level": sarif_level(f.severity),
                    "message": { "text": f.message },
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": { "uri": file.file },
                            "region": {
                                "startLine": f.position.line,
                                "startColumn": f.position.column,
                            },
                        },
                        "logicalLocations": [{
                            "fullyQualifiedName": format!("{}/{}", f.object, f.path),
                        }],
                    }],
                });
                if let Some(fix) = &f.fix {
                    result["properties"] = json!({ "fix": fix });
                }
                result
            })
        })
        .collect();
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "portolan-lint",
                    "version": version,
                    "rules": rules,
                },
            },
            "results": results,
        }],
    })
}
