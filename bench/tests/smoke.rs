//! Smoke test of the load tool: runs the `steady` scenario for about two
//! seconds against a `portolan-server` it starts itself (serving the
//! embedded registry, so no shared data is needed) and the baseline, and
//! checks the JSON result's content: successful requests, no failures, and
//! a baseline ratio. No timing thresholds: the machine may be busy.

use std::path::PathBuf;
use std::process::Command;

/// The `portolan-server` binary of this build profile. Built the way every
/// test of the workspace builds binaries (`cargo build --workspace --bins`,
/// which `.ci/run` runs beforehand), so the call is an up-to-date check and
/// never rebuilds dependencies with another feature set.
fn server_binary() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_portolan-bench"));
    let dir = bench.parent().expect("the bench binary has a folder");
    let release = dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["build", "--quiet", "--workspace", "--bins"]);
    if release {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cargo build --workspace --bins failed");
    let server = dir.join("portolan-server");
    assert!(
        server.is_file(),
        "{} missing after the build",
        server.display()
    );
    server
}

#[test]
fn steady_scenario_reports_successes_and_a_baseline_ratio() {
    let server = server_binary();
    let out = Command::new(env!("CARGO_BIN_EXE_portolan-bench"))
        .args(["steady", "--json", "--spawn-server"])
        .arg(&server)
        .args([
            "--duration",
            "2s",
            "--warmup",
            "200ms",
            "--rounds",
            "1",
            "--connections",
            "2",
            "--concurrency",
            "4",
        ])
        .output()
        .expect("portolan-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "portolan-bench failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON result");
    assert_eq!(report["scenario"], "steady");
    assert_eq!(report["failures"].as_array().map(Vec::len), Some(0));
    let cmp = &report["details"]["comparison"];
    let portolan = &cmp["portolan"];
    assert!(
        portolan["ok"].as_u64().unwrap() > 0,
        "no successful request"
    );
    assert_eq!(portolan["failed"].as_u64(), Some(0));
    assert_eq!(portolan["version_regressions"].as_u64(), Some(0));
    let baseline = &cmp["baseline"];
    assert!(
        baseline["ok"].as_u64().unwrap() > 0,
        "baseline answered nothing"
    );
    assert_eq!(baseline["failed"].as_u64(), Some(0));
    let ratio = cmp["throughput_ratio"]
        .as_f64()
        .expect("a throughput ratio");
    assert!(ratio.is_finite() && ratio > 0.0);
    assert!(cmp["p99_ratio"].as_f64().is_some_and(|r| r > 0.0));
    // The spawned server's pid is known, so its cost was measured.
    assert!(portolan["server_cpu_us_per_request"].as_f64().is_some());
    assert!(
        portolan["server_peak_rss_mib"]
            .as_f64()
            .is_some_and(|m| m > 0.0)
    );
}

#[test]
fn refuses_a_non_loopback_target() {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan-bench"))
        .args(["steady", "--target", "192.0.2.1:50051", "--duration", "1s"])
        .output()
        .expect("portolan-bench runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("non-loopback"));
}
