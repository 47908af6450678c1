//! Reload faults on a server hot-reloading a real IANA CSV (the shared
//! 1,000-record sample) from a temporary directory:
//!
//! * the data file becomes unreadable, then readable again with new
//!   content: the server keeps serving the last good registry, reports the
//!   failure (outcome FAILED and the I/O error) in GetRegistryInfo, then
//!   applies the new file and clears the error.
//!
//!   Tests run as root, where `chmod 000` does not stop reads, so the file is
//!   made unreadable in ways that hold for root too: first the path is
//!   replaced by a *directory* of the same name (`read` fails with EISDIR),
//!   then by a *dangling symlink* (ENOENT);
//! * a valid file that shrinks the registry by 90% is refused by the shrink
//!   guard (FAILED, with a message giving the old and new record counts) and
//!   the old registry keeps serving; a file within the guard is then applied.

mod support;

use std::time::Duration;

use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::{
    GetRegistryInfoRequest, GetRegistryInfoResponse, LookupNameRequest, ReloadOutcome,
};
use portolan_registry::{Registry, export};
use portolan_test_support::shared_file;
use portolan_test_support::write_atomically;
use tonic::transport::Channel;

use support::{eventually, start_server, test_args};

const WAIT: Duration = Duration::from_secs(10);

async fn info(client: &PortRegistryServiceClient<Channel>) -> GetRegistryInfoResponse {
    client
        .clone()
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .expect("GetRegistryInfo")
        .into_inner()
}

/// Waits until GetRegistryInfo satisfies `done`; returns that answer.
async fn wait_info(
    client: &PortRegistryServiceClient<Channel>,
    what: &str,
    done: impl Fn(&GetRegistryInfoResponse) -> bool,
) -> GetRegistryInfoResponse {
    eventually(WAIT, what, || async {
        let info = info(client).await;
        done(&info).then_some(info)
    })
    .await
}

/// The description of the first record named `name`.
async fn description_of(client: &PortRegistryServiceClient<Channel>, name: &str) -> String {
    client
        .clone()
        .lookup_name(LookupNameRequest {
            name: name.into(),
            protocol: 0,
        })
        .await
        .expect("lookup")
        .into_inner()
        .records[0]
        .description
        .clone()
}

fn parse_csv(bytes: &[u8]) -> Registry {
    portolan_registry::parse(bytes, None)
        .expect("a valid CSV")
        .registry
}

/// The first `keep` records of `registry`, as an IANA CSV.
fn first_records_csv(registry: &Registry, keep: usize) -> String {
    let mut smaller = registry.clone();
    smaller.records.truncate(keep);
    export::to_csv(&smaller)
}

#[tokio::test]
async fn an_unreadable_data_file_keeps_the_last_good_registry_serving() {
    let sample = shared_file("iana/sample-1000.csv");
    let original = std::fs::read(&sample).expect("read sample");
    let registry = parse_csv(&original);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("registry.csv");
    write_atomically(&data, &original);

    let mut args = test_args(Some(&data));
    args.poll_interval = Duration::from_millis(200);
    let server = start_server(args).await;
    let client = server.ready_client().await;
    let initial = info(&client).await;
    assert_eq!(initial.version, 1);
    assert_eq!(initial.record_count, registry.len() as u64);
    assert_eq!(initial.last_reload_outcome, ReloadOutcome::Initial as i32);
    let echo = description_of(&client, "echo").await;

    // 1. The path becomes a directory: refused as not a regular file.
    std::fs::remove_file(&data).expect("remove data file");
    std::fs::create_dir(&data).expect("directory in its place");
    let failed = wait_info(&client, "FAILED for a directory", |i| {
        i.last_reload_outcome == ReloadOutcome::Failed as i32
    })
    .await;
    assert!(
        failed.last_reload_error.contains("cannot read")
            && failed
                .last_reload_error
                .contains(&data.display().to_string())
            && failed
                .last_reload_error
                .contains("a directory, not a regular file"),
        "error should name the path and the cause: {:?}",
        failed.last_reload_error
    );
    assert_eq!(failed.version, 1, "nothing was applied");
    assert_eq!(failed.content_hash, initial.content_hash);
    assert_eq!(failed.record_count, initial.record_count);
    assert_eq!(description_of(&client, "echo").await, echo);

    // 2. A dangling symlink: ENOENT.
    std::fs::remove_dir(&data).expect("remove the directory");
    std::os::unix::fs::symlink(dir.path().join("does-not-exist.csv"), &data)
        .expect("dangling symlink");
    let failed = wait_info(&client, "FAILED for a dangling symlink", |i| {
        i.last_reload_outcome == ReloadOutcome::Failed as i32
            && i.last_reload_error.contains("No such file")
    })
    .await;
    assert_eq!(failed.version, 1);
    assert_eq!(description_of(&client, "echo").await, echo);

    // 3. Readable again, with one description changed: applied.
    std::fs::remove_file(&data).expect("remove the symlink");
    let mut changed = registry.clone();
    for echo_row in changed
        .records
        .iter_mut()
        .filter(|r| r.name.as_deref() == Some("echo"))
    {
        echo_row.description = "Echo, after the outage".into();
    }
    write_atomically(&data, export::to_csv(&changed).as_bytes());
    let recovered = wait_info(&client, "APPLIED after recovery", |i| {
        i.last_reload_outcome == ReloadOutcome::Applied as i32
    })
    .await;
    assert_eq!(recovered.version, 2);
    assert_eq!(recovered.last_reload_error, "");
    assert_eq!(recovered.record_count, initial.record_count);
    assert_ne!(recovered.content_hash, initial.content_hash);
    assert_eq!(
        description_of(&client, "echo").await,
        "Echo, after the outage"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_reload_shrinking_by_ninety_percent_is_refused() {
    let sample = shared_file("iana/sample-1000.csv");
    let original = std::fs::read(&sample).expect("read sample");
    let registry = parse_csv(&original);
    let total = registry.len();
    assert_eq!(total, 1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("registry.csv");
    write_atomically(&data, &original);

    let server = start_server(test_args(Some(&data))).await;
    let client = server.ready_client().await;
    let initial = info(&client).await;
    // dhcpv6-client (546/udp) is the sample's last record: it goes away
    // with the shrunk file.
    let last = description_of(&client, "dhcpv6-client").await;

    // A valid file with the first 10% of the records (the default guard
    // refuses dropping more than 50%).
    let kept = total / 10;
    let shrunk = first_records_csv(&registry, kept);
    assert_eq!(
        parse_csv(shrunk.as_bytes()).len(),
        kept,
        "the file is valid"
    );
    write_atomically(&data, shrunk.as_bytes());
    let refused = wait_info(&client, "the shrink to be refused", |i| {
        i.last_reload_outcome == ReloadOutcome::Failed as i32
    })
    .await;
    let expected = format!(
        "refusing a registry of {kept} records: it would drop {} of the current {total} \
         (more than the allowed 50%)",
        total - kept
    );
    assert!(
        refused.last_reload_error.contains(&expected),
        "{:?} should contain {expected:?}",
        refused.last_reload_error
    );
    assert_eq!(refused.version, 1);
    assert_eq!(refused.record_count, total as u64);
    assert_eq!(refused.content_hash, initial.content_hash);
    assert_eq!(description_of(&client, "dhcpv6-client").await, last);

    // A shrink within the guard (to 60%) is applied.
    let within = first_records_csv(&registry, total * 6 / 10);
    write_atomically(&data, within.as_bytes());
    let applied = wait_info(&client, "the smaller file to apply", |i| {
        i.last_reload_outcome == ReloadOutcome::Applied as i32
    })
    .await;
    assert_eq!(applied.version, 2);
    assert_eq!(applied.record_count, (total * 6 / 10) as u64);
    assert_eq!(applied.last_reload_error, "");
    server.stop().await;
}
