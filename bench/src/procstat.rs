//! What a server process costs, read from `/proc/<pid>`: CPU time
//! (`utime + stime` from `stat`, all threads) and resident memory
//! (`VmRSS`, and the peak `VmHWM`, from `status`). Linux only; elsewhere
//! every reading is an error and the reports leave the figures out.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Clock ticks per second for `/proc/<pid>/stat` (from `getconf CLK_TCK`,
/// 100 when that cannot be run, which is the value on every mainstream
/// Linux platform).
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t: &u64| t > 0)
            .unwrap_or(100)
    })
}

/// CPU time (user + system, all threads) the process has used so far.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces;
    // fields after the last ')' start at field 3 (state).
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        bail!("unexpected /proc/{pid}/stat format");
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime is field 14 and stime field 15 (1-based), i.e. 11 and 12 here.
    let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
        bail!("short /proc/{pid}/stat");
    };
    let ticks: u64 = utime.parse::<u64>()? + stime.parse::<u64>()?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(value) = line.strip_prefix(field).and_then(|l| l.strip_prefix(':')) {
            let kib = value.trim().trim_end_matches("kB").trim();
            return Ok(kib.parse()?);
        }
    }
    bail!("no {field} in /proc/{pid}/status")
}

/// Peak resident set size (`VmHWM`) in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM")
}

/// Current resident set size (`VmRSS`) in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(cpu_time(pid).is_ok());
            assert!(peak_rss_kib(pid).unwrap() > 0);
            assert!(rss_kib(pid).unwrap() > 0);
        }
    }
}
