//! A real server for integration tests, on `127.0.0.1:0`:
//! * [`start_server`] runs it inside the test process ([`TestServer`]),
//!   with [`test_args`] (quick debounce, versions 1, 2, 3...);
//! * [`ServerProcess`] runs the built `portolan-server` binary (for tests
//!   that signal it or read its memory and CPU time from `/proc`);
//! * [`workspace_binary`] builds and finds a workspace binary;
//! * [`http_get`] and [`metric`] read the metrics and health endpoints.
//!
//! Every wait polls with a deadline ([`crate::eventually`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use portolan::pb::GetRegistryInfoRequest;
use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan_server::{Args, Config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::eventually;

/// A server running inside the test process.
#[derive(Debug)]
pub struct TestServer {
    /// The gRPC address.
    pub addr: SocketAddr,
    /// The admin HTTP address (`/metrics`, `/livez`, `/readyz`).
    pub admin_addr: SocketAddr,
    /// The plaintext gRPC health address.
    pub health_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Arguments for a test server: `data` (or the embedded registry), quick
/// debounce and heartbeats; tweak the rest as needed.
pub fn test_args(data: Option<&Path>) -> Args {
    let mut args = Args::defaults();
    args.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    args.data = data
        .map(|path| portolan_registry::LayerSpec {
            name: String::new(),
            path: path.to_path_buf(),
        })
        .into_iter()
        .collect();
    args.reload_debounce = Duration::from_millis(50);
    // Versions 1, 2, 3... make assertions readable; the binary's default is
    // time-based (see `--initial-version`).
    args.initial_version = Some(1);
    args.shutdown_grace = Duration::from_secs(5);
    args
}

/// Starts a server with `args` (the data file is loaded first, as the
/// binary does) and waits until it accepts connections.
pub async fn start_server(args: Args) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
    start_server_on(args, listener).await
}

/// Starts a server with `args` serving gRPC on `listener` (e.g. the address
/// of a server just stopped, to restart it in place).
pub async fn start_server_on(args: Args, listener: TcpListener) -> TestServer {
    let config = tokio::task::spawn_blocking(move || Config::load(args))
        .await
        .expect("config task")
        .expect("valid test configuration");
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    let health = TcpListener::bind("127.0.0.1:0").await.expect("bind health");
    let addr = listener.local_addr().expect("gRPC address");
    let admin_addr = admin.local_addr().expect("admin address");
    let health_addr = health.local_addr().expect("health address");
    let (stop, stopped) = oneshot::channel::<()>();
    let listeners = portolan_server::Listeners {
        grpc: listener,
        admin: Some(admin),
        health: Some(health),
    };
    let task = tokio::spawn(portolan_server::run_with_listeners(
        config,
        listeners,
        async move {
            let _ = stopped.await;
        },
    ));
    TestServer {
        addr,
        admin_addr,
        health_addr,
        stop: Some(stop),
        task: Some(task),
    }
}

/// Starts a server serving the data file at `path`.
pub async fn start_server_on_file(path: &Path) -> TestServer {
    start_server(test_args(Some(path))).await
}

impl TestServer {
    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected client (the registry may still be loading; see
    /// [`TestServer::ready_client`]).
    pub async fn client(&self) -> PortRegistryServiceClient<Channel> {
        PortRegistryServiceClient::connect(self.endpoint())
            .await
            .expect("connect to the test server")
    }

    /// A client, once the server answers GetRegistryInfo (registry loaded).
    pub async fn ready_client(&self) -> PortRegistryServiceClient<Channel> {
        let client = self.client().await;
        eventually(Duration::from_secs(10), "the registry to load", || {
            let mut client = client.clone();
            async move {
                client
                    .get_registry_info(portolan::pb::GetRegistryInfoRequest {})
                    .await
                    .ok()
            }
        })
        .await;
        client
    }

    /// The value of one series of its `/metrics` (see [`metric`]).
    pub async fn metric(&self, series: &str) -> f64 {
        metric(self.admin_addr, series).await
    }

    /// Triggers shutdown and waits for `run` to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server run");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The path of workspace binary `bin` of package `package`, built once per
/// test process with the `cargo` that runs the tests.
///
/// Every caller builds the same thing (`cargo build --workspace --bins`), so
/// the feature set never differs between calls and, after the first one (or
/// `.ci/run`'s identical pre-build), each call is an up-to-date check.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(name, _)| name == bin) {
        return path.clone();
    }
    let root = crate::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--workspace", "--bins"])
        .current_dir(&root)
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build --workspace --bins failed (needed for {package}'s {bin})"
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let path = target
        .join("debug")
        .join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "built binary not found at {}",
        path.display()
    );
    built.push((bin.to_string(), path.clone()));
    path
}

/// Fetches `http://addr/path` with a plain HTTP/1.1 GET; returns the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "unexpected response: {head}"
    );
    body.to_string()
}

/// The value of one series of the `/metrics` served at `addr`, named with
/// its labels as exposed (e.g. `portolan_reload_total{outcome="applied"}`);
/// 0 when the series does not exist yet (a counter family shows a label
/// set once it was counted).
pub async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let text = http_get(addr, "/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| {
            value
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{series}: {value:?} is not a number: {e}"))
        })
}

/// The real `portolan-server` binary on `127.0.0.1:0`, killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    /// The process.
    pub child: std::process::Child,
    /// The gRPC address it logged.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `portolan-server` serving `data` with a 50 ms reload debounce
    /// and `extra` flags (a flag given again there wins); returns once it
    /// logged its address. Its log is drained by a thread so it never
    /// blocks on a full pipe.
    pub fn start(data: &Path, extra: &[&str]) -> Self {
        use std::io::{BufRead as _, BufReader};
        use std::process::{Command, Stdio};
        let binary = workspace_binary("portolan-server", "portolan-server");
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--data"])
            .arg(data)
            .args(["--reload-debounce", "50ms"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn portolan-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.contains("\"listening\"") {
                    let addr = line
                        .split("\"addr\":\"")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .and_then(|addr| addr.parse::<SocketAddr>().ok());
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logged its address")
            .expect("a socket address in the listening line");
        Self { child, addr }
    }

    /// A client, once the server answers GetRegistryInfo (registry loaded).
    pub async fn ready_client(&self) -> PortRegistryServiceClient<Channel> {
        let endpoint = format!("http://{}", self.addr);
        eventually(Duration::from_secs(60), "the server to load", || {
            let endpoint = endpoint.clone();
            async move {
                let mut client = PortRegistryServiceClient::connect(endpoint).await.ok()?;
                client
                    .get_registry_info(GetRegistryInfoRequest {})
                    .await
                    .ok()?;
                Some(client)
            }
        })
        .await
    }

    /// Sends the server SIGHUP (reload now).
    pub fn hangup(&self) {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP {}", self.child.id());
    }

    /// The server's resident set size, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    /// CPU time (user + system) the server has used, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("read /proc/<pid>/stat");
        // Fields after the parenthesised command name; utime and stime are
        // fields 14 and 15 of the whole line.
        let rest = stat.rsplit_once(')').expect("a stat line").1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields[11].parse().expect("utime");
        let stime: u64 = fields[12].parse().expect("stime");
        utime + stime
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A registry the test servers never serve unless told to (the 101-record
/// plain-text excerpt, a fixture): a replica starting from it needs a
/// snapshot. (The embedded default is the full CSV, which test servers
/// often serve.)
pub fn excerpt_registry() -> portolan_registry::Registry {
    let bytes =
        std::fs::read(crate::shared_file("iana/registry-excerpt.txt")).expect("the excerpt");
    portolan_registry::parse(&bytes, None)
        .expect("the excerpt parses")
        .registry
}

/// Every name and alias a lookup can be asked for in `snapshots` (1 to 255
/// bytes, as requests allow), sorted, each once.
pub fn lookup_names<'a>(
    snapshots: impl IntoIterator<Item = &'a portolan_registry::Snapshot>,
) -> Vec<String> {
    let mut names: Vec<String> = snapshots
        .into_iter()
        .flat_map(|snapshot| snapshot.keyed())
        .flat_map(|(_, r)| r.name.iter().chain(&r.aliases))
        .filter(|name| !name.is_empty() && name.len() <= 255)
        .cloned()
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The compiled-in mesh hints with one value of one port's entry replaced:
/// `key = value` (value written as TOML, e.g. `"\"no\""`) in the entry of
/// `port = PORT`, for a `--mesh-hints` file that differs on purpose.
///
/// # Panics
/// When the dataset has no entry for `port` or the entry has no `key`.
pub fn mesh_hints_with(port: u16, key: &str, value: &str) -> String {
    let source = portolan_registry::mesh::SOURCE;
    let start = source
        .find(&format!("\nport = {port}\n"))
        .unwrap_or_else(|| panic!("no mesh hint for port {port}"));
    let line = source[start..]
        .find(&format!("\n{key} = "))
        .map(|at| start + at + 1)
        .unwrap_or_else(|| panic!("the hint for port {port} has no {key}"));
    let end = line + source[line..].find('\n').expect("a line end");
    format!("{}{key} = {value}{}", &source[..line], &source[end..])
}
