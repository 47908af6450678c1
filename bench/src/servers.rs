//! Server processes under test: Portolan's release binary and the baseline
//! (`portolan-bench baseline-server`), each a child process on a loopback
//! port, killed when its [`ServerProcess`] is dropped; plus gRPC channels
//! and the health-based readiness check shared by every scenario.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Which server a measurement belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The Portolan server under test.
    Portolan,
    /// The minimal tonic baseline.
    Baseline,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Portolan => "portolan",
            Kind::Baseline => "baseline",
        })
    }
}

/// A server to send load to: its address, and its pid when known (then its
/// CPU time and memory are measured).
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Which server this is.
    pub kind: Kind,
    /// Its loopback address.
    pub addr: SocketAddr,
    /// Its process id, when known.
    pub pid: Option<u32>,
}

/// A child server process, killed (and reaped) on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Which server it is.
    pub kind: Kind,
    /// Where its standard error goes (for diagnostics after a failure).
    pub log: Option<PathBuf>,
}

impl ServerProcess {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The measurement target for this process.
    pub fn target(&self) -> Target {
        Target {
            kind: self.kind,
            addr: self.addr,
            pid: Some(self.pid()),
        }
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary `name` next to this executable (where `cargo build` puts every
/// binary of the workspace).
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating portolan-bench's own executable")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("executable {} has no parent folder", exe.display()))?;
    Ok(dir.join(name))
}

/// A loopback port that is free right now (bound then released; the small
/// race with other programs is acceptable on a test machine).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// How to start Portolan's server.
#[derive(Debug, Clone)]
pub struct PortolanCommand {
    /// The `portolan-server` binary.
    pub binary: PathBuf,
    /// `--data FILE`; `None` serves the embedded registry.
    pub data: Option<PathBuf>,
    /// Extra arguments passed through verbatim.
    pub extra_args: Vec<String>,
    /// A folder for the server's log.
    pub log_dir: PathBuf,
}

impl PortolanCommand {
    /// The command line (without `--listen`), for reports.
    pub fn describe(&self) -> String {
        let mut s = format!("{} --listen 127.0.0.1:PORT", self.binary.display());
        if let Some(data) = &self.data {
            s.push_str(&format!(" --data {}", data.display()));
        }
        for a in &self.extra_args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Starts the server on `port` without waiting for it.
    pub fn start(&self, port: u16) -> Result<ServerProcess> {
        if !self.binary.is_file() {
            bail!(
                "server binary {} not found (build it: cargo build --release -p portolan-server, \
                 or pass --spawn-server PATH)",
                self.binary.display()
            );
        }
        std::fs::create_dir_all(&self.log_dir)?;
        let log = self.log_dir.join(format!("portolan-server-{port}.log"));
        let log_file = std::fs::File::create(&log)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--listen").arg(addr.to_string());
        if let Some(data) = &self.data {
            cmd.arg("--data").arg(data);
        }
        cmd.args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        Ok(ServerProcess {
            child,
            addr,
            kind: Kind::Portolan,
            log: Some(log),
        })
    }

    /// Starts the server and waits (up to `deadline`) until health says
    /// SERVING.
    pub async fn spawn(&self, deadline: Duration) -> Result<ServerProcess> {
        let port = free_port()?;
        let mut server = self.start(port)?;
        if let Err(e) = wait_serving(&mut server, deadline).await {
            bail!("{e:#}\nserver log:\n{}", server.log_tail());
        }
        Ok(server)
    }
}

/// Starts the baseline server (this executable's `baseline-server`
/// subcommand) on an ephemeral loopback port, each answer holding
/// `reply_records` copies of its record, and waits until it serves.
pub async fn spawn_baseline(deadline: Duration, reply_records: usize) -> Result<ServerProcess> {
    let exe = std::env::current_exe().context("locating portolan-bench's own executable")?;
    let mut child = Command::new(&exe)
        .args([
            "baseline-server",
            "--listen",
            "127.0.0.1:0",
            "--reply-records",
        ])
        .arg(reply_records.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} baseline-server", exe.display()))?;
    // The baseline prints its bound address as its first stdout line.
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("baseline stdout not captured"))?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let addr: SocketAddr = match line.trim().parse() {
        Ok(addr) => addr,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "baseline-server printed `{}` instead of its address",
                line.trim()
            );
        }
    };
    let mut server = ServerProcess {
        child,
        addr,
        kind: Kind::Baseline,
        log: None,
    };
    wait_serving(&mut server, deadline).await?;
    Ok(server)
}

/// Opens one HTTP/2 connection to `addr` (every call is a new connection).
pub async fn connect(addr: SocketAddr) -> Result<Channel> {
    Ok(endpoint(addr)?.connect().await?)
}

/// The endpoint for `addr` with the options every scenario uses.
pub fn endpoint(addr: SocketAddr) -> Result<Endpoint> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(2)))
}

/// One health check of the overall server (service `""`).
pub async fn health(channel: Channel) -> Result<ServingStatus> {
    let mut client = HealthClient::new(channel);
    let response = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(ServingStatus::try_from(response.into_inner().status).unwrap_or(ServingStatus::Unknown))
}

/// Polls health (a fresh connection per attempt until one connects, about
/// every millisecond) until SERVING, the process exits, or `deadline`
/// passes. Returns the time it took.
pub async fn wait_serving(server: &mut ServerProcess, deadline: Duration) -> Result<Duration> {
    let start = Instant::now();
    let endpoint = endpoint(server.addr)?.connect_timeout(Duration::from_millis(200));
    let mut channel: Option<Channel> = None;
    loop {
        if channel.is_none() {
            channel = endpoint.connect().await.ok();
        }
        if let Some(ch) = &channel {
            match tokio::time::timeout(Duration::from_millis(500), health(ch.clone())).await {
                Ok(Ok(ServingStatus::Serving)) => return Ok(start.elapsed()),
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => channel = None,
            }
        }
        if !server.is_running() {
            bail!("{} server exited before it was SERVING", server.kind);
        }
        if start.elapsed() > deadline {
            bail!(
                "{} server at {} not SERVING after {deadline:?}",
                server.kind,
                server.addr
            );
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// A per-run folder for logs and data file copies, under the system's
/// temporary folder, named after this process.
pub fn scratch_dir(scenario: &str) -> Result<PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("portolan-bench-{}-{scenario}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Writes `bytes` to `dest` atomically: a temporary file in the same folder,
/// then a rename over `dest`.
pub fn replace_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = dest.with_extension("bench-tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dest).with_context(|| format!("renaming onto {}", dest.display()))?;
    Ok(())
}
