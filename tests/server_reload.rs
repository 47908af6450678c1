//! Hot reload against the real 2026 IANA CSV (14,512 records): the data
//! file replaced by rename, written in place, and swapped Kubernetes-style
//! through a `..data` symlink is served within 2 seconds; a truncated file
//! and a file that shrinks the registry by 93% keep the old registry
//! serving and report the failure in GetRegistryInfo.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::{
    GetRegistryInfoRequest, GetRegistryInfoResponse, LookupPortRequest, LookupPortResponse,
    Protocol, ReloadOutcome,
};
use portolan_test_support::shared_file;
use tonic::transport::Channel;

use support::{TestServer, eventually, start_server, start_server_on_file, test_args};

/// How quickly a changed file must be served.
const RELOAD_DEADLINE: Duration = Duration::from_secs(2);
const FULL_CSV_RECORDS: u64 = 14_512;

/// The CSV with https/tcp's description tagged and one extra row
/// `portolan-<tag>` on port 50000/tcp (a port the real registry leaves
/// unlisted).
fn variant(base: &str, tag: &str) -> String {
    let mut text = base.replacen(
        "http protocol over TLS/SSL",
        &format!("http protocol over TLS/SSL ({tag})"),
        1,
    );
    text.push_str(&format!(
        "portolan-{tag},50000,tcp,Portolan test service {tag},,,,,,,,\r\n"
    ));
    text
}

async fn info(client: &mut PortRegistryServiceClient<Channel>) -> GetRegistryInfoResponse {
    client
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// Waits until the server serves `version` and port 50000/tcp is
/// `portolan-<tag>`.
async fn wait_for_variant(client: &PortRegistryServiceClient<Channel>, version: u64, tag: &str) {
    let expected = format!("portolan-{tag}");
    eventually(
        RELOAD_DEADLINE,
        &format!("version {version} with {expected}"),
        || {
            let mut client = client.clone();
            let expected = expected.clone();
            async move {
                let answer = client
                    .lookup_port(LookupPortRequest {
                        port: 50000,
                        protocol: Protocol::Tcp as i32,
                    })
                    .await
                    .ok()?
                    .into_inner();
                (answer.version == version
                    && answer.records[0].name.as_deref() == Some(expected.as_str()))
                .then_some(())
            }
        },
    )
    .await;
}

/// Copies `csv` to `registry.csv` in a new temporary directory and serves
/// it; returns the directory (keep it alive), the copy's path, the server and
/// a client once the registry is loaded.
async fn serve_copy_of(
    csv: &Path,
) -> (
    tempfile::TempDir,
    PathBuf,
    TestServer,
    PortRegistryServiceClient<Channel>,
) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("registry.csv");
    std::fs::copy(csv, &data).unwrap();
    let server = start_server_on_file(&data).await;
    let client = server.ready_client().await;
    (dir, data, server, client)
}

/// Waits until GetRegistryInfo reports a failed reload; returns that info.
async fn wait_for_failed_reload(
    client: &PortRegistryServiceClient<Channel>,
    what: &str,
) -> GetRegistryInfoResponse {
    eventually(RELOAD_DEADLINE, what, || {
        let mut client = client.clone();
        async move {
            let now = info(&mut client).await;
            (now.last_reload_outcome == ReloadOutcome::Failed as i32).then_some(now)
        }
    })
    .await
}

/// Looks up 443/tcp (https).
async fn lookup_443_tcp(client: &mut PortRegistryServiceClient<Channel>) -> LookupPortResponse {
    client
        .lookup_port(LookupPortRequest {
            port: 443,
            protocol: Protocol::Tcp as i32,
        })
        .await
        .unwrap()
        .into_inner()
}

fn write_atomically(path: &Path, contents: &str) {
    let temporary = path.with_extension("csv.tmp");
    std::fs::write(&temporary, contents).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

#[tokio::test]
async fn rename_over_and_in_place_writes_are_served() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let base = std::fs::read_to_string(&csv).unwrap();
    let (_dir, data, server, mut client) = serve_copy_of(&csv).await;
    assert_eq!(info(&mut client).await.version, 1);

    // An editor's save: write elsewhere, rename over the file.
    write_atomically(&data, &variant(&base, "renamed"));
    wait_for_variant(&client, 2, "renamed").await;

    // An in-place rewrite (truncate, then write).
    std::fs::write(&data, variant(&base, "in-place")).unwrap();
    wait_for_variant(&client, 3, "in-place").await;
    let after = info(&mut client).await;
    assert_eq!(after.last_reload_outcome, ReloadOutcome::Applied as i32);
    assert_eq!(after.record_count, FULL_CSV_RECORDS + 1);
    let https = lookup_443_tcp(&mut client).await;
    assert_eq!(
        https.records[0].description,
        "http protocol over TLS/SSL (in-place)"
    );
    server.stop().await;
}

/// The server's own reads of a plain data file must not look like changes:
/// after one real change, it settles on that version and stops reloading.
/// Instead of holding still for a while, the test lets the server read the
/// file itself (polls every 100 ms) several times, and checks that no read
/// was prompted by a file event.
#[tokio::test]
async fn reading_the_file_does_not_trigger_more_reloads() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let base = std::fs::read_to_string(&csv).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("registry.csv");
    std::fs::copy(&csv, &data).unwrap();
    let mut args = test_args(Some(&data));
    args.poll_interval = Duration::from_millis(100);
    let server = start_server(args).await;
    let mut client = server.ready_client().await;
    std::fs::write(&data, variant(&base, "once")).unwrap();
    wait_for_variant(&client, 2, "once").await;
    let settled = info(&mut client).await;
    assert_eq!(settled.last_reload_outcome, ReloadOutcome::Applied as i32);
    const POLLS: &str = "portolan_data_file_checks_total{trigger=\"poll\"}";
    let events = || async {
        server
            .metric("portolan_data_file_checks_total{trigger=\"file event\"}")
            .await
            + server
                .metric("portolan_data_file_checks_total{trigger=\"file events (maximum delay)\"}")
                .await
    };
    let (polls, before) = (server.metric(POLLS).await, events().await);
    // Five reads of the file by the server itself; each would have raised
    // a file event, then a check, if reading looked like a change.
    eventually(Duration::from_secs(10), "five polls", || async {
        (server.metric(POLLS).await >= polls + 5.0).then_some(())
    })
    .await;
    assert_eq!(
        events().await,
        before,
        "a check prompted by a file event after the change was applied"
    );
    let later = info(&mut client).await;
    assert_eq!(later.version, 2);
    assert_eq!(
        later.last_reload_outcome,
        ReloadOutcome::Applied as i32,
        "no reload was attempted after the change was applied"
    );
    assert_eq!(later.last_reload_at, settled.last_reload_at);
    server.stop().await;
}

/// The kubelet's AtomicWriter: a new `..<timestamp>` directory, a
/// `..data_tmp` symlink to it renamed over `..data`, the old directory
/// deleted. The visible file is `registry.csv -> ..data/registry.csv`.
struct ConfigMapVolume {
    dir: PathBuf,
    current: Option<PathBuf>,
    generation: u32,
}

impl ConfigMapVolume {
    fn new(dir: &Path, contents: &str) -> Self {
        let mut volume = Self {
            dir: dir.to_path_buf(),
            current: None,
            generation: 0,
        };
        volume.update(contents);
        std::os::unix::fs::symlink("..data/registry.csv", dir.join("registry.csv")).unwrap();
        volume
    }

    fn update(&mut self, contents: &str) {
        self.generation += 1;
        let stamp = format!("..2026_11_26_23_00_{:02}.{:03}", self.generation, 123);
        let payload = self.dir.join(&stamp);
        std::fs::create_dir(&payload).unwrap();
        std::fs::write(payload.join("registry.csv"), contents).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&stamp, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        if let Some(old) = self.current.replace(payload) {
            std::fs::remove_dir_all(old).unwrap();
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("registry.csv")
    }
}

#[tokio::test]
async fn kubernetes_configmap_symlink_swaps_are_served() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let base = std::fs::read_to_string(&csv).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut volume = ConfigMapVolume::new(dir.path(), &base);
    let server = start_server_on_file(&volume.path()).await;
    let mut client = server.ready_client().await;
    let before = info(&mut client).await;
    assert_eq!(before.version, 1);
    assert_eq!(before.record_count, FULL_CSV_RECORDS);

    volume.update(&variant(&base, "swap-1"));
    wait_for_variant(&client, 2, "swap-1").await;
    // The watch survives the old directory's deletion: a second swap works.
    volume.update(&variant(&base, "swap-2"));
    wait_for_variant(&client, 3, "swap-2").await;
    let after = info(&mut client).await;
    assert_eq!(after.source_path, volume.path().display().to_string());
    assert_eq!(after.last_reload_outcome, ReloadOutcome::Applied as i32);
    server.stop().await;
}

#[tokio::test]
async fn a_truncated_file_keeps_the_last_good_registry() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let truncated = shared_file("bad/truncated.csv");
    let (_dir, data, server, mut client) = serve_copy_of(&csv).await;
    let good = info(&mut client).await;

    std::fs::write(&data, std::fs::read(&truncated).unwrap()).unwrap();
    let failed = wait_for_failed_reload(&client, "the failed reload to be reported").await;
    assert!(
        failed.last_reload_error.contains("truncated"),
        "{}",
        failed.last_reload_error
    );
    assert!(
        failed.last_reload_error.contains("registry.csv"),
        "{}",
        failed.last_reload_error
    );
    assert!(failed.last_reload_at.is_some());
    assert_eq!(failed.version, good.version);
    assert_eq!(failed.content_hash, good.content_hash);
    assert_eq!(failed.record_count, FULL_CSV_RECORDS);
    let still = lookup_443_tcp(&mut client).await;
    assert_eq!(still.records[0].name.as_deref(), Some("https"));
    assert_eq!(still.version, 1);

    let metrics = support::http_get(server.admin_addr, "/metrics").await;
    assert!(
        metrics.contains("portolan_reload_total{outcome=\"failed\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_file_that_shrinks_by_ninety_percent_is_refused() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let sample = shared_file("iana/sample-1000.csv");
    let (_dir, data, server, client) = serve_copy_of(&csv).await;

    write_atomically(&data, &std::fs::read_to_string(&sample).unwrap());
    let refused = wait_for_failed_reload(&client, "the shrink guard to refuse the file").await;
    assert!(
        refused.last_reload_error.contains("1000 records")
            && refused.last_reload_error.contains("14512"),
        "{}",
        refused.last_reload_error
    );
    assert_eq!(refused.version, 1);
    assert_eq!(refused.record_count, FULL_CSV_RECORDS);
    server.stop().await;
}
