//! DescribePort on a real server and socket (issue #17): what a port means
//! to a service mesh, answered from the server's registry and mesh hints.
//!
//! * MySQL (3306): records and a hint; the server speaks first, but Istio
//!   treats the port as TCP and Linkerd as opaque, so nothing stalls.
//! * NATS (4222): server-first and in neither mesh's default list, so both
//!   stall; the answer gives each mesh's fix. HTTPS (443): client-first.
//! * A port with records and no hint gets the meshes' general defaults and
//!   an unknown stall; a port with neither is NOT_FOUND; a port above 65535
//!   is INVALID_ARGUMENT naming the field.
//! * `--mesh-hints FILE` is served and hot-reloaded: a changed entry shows
//!   within the deadline; a broken or oversized file keeps the last good
//!   hints serving, with the error in GetRegistryInfo and
//!   `portolan_mesh_hints_reload_failing` at 1; fixing the file recovers.

mod support;

use std::path::Path;
use std::time::Duration;

use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::{
    DescribePortRequest, DescribePortResponse, GetRegistryInfoRequest, IstioDefault,
    LinkerdDefault, MeshHintsInfo, Protocol as WireProtocol, ReloadOutcome, ServerSpeaksFirst,
    Stall,
};
use portolan_registry::mesh::SOURCE;
use portolan_test_support::write_atomically;
use tonic::Code;
use tonic::transport::Channel;

use support::{eventually, mesh_hints_with, start_server, test_args};

const RELOAD_DEADLINE: Duration = Duration::from_secs(5);

/// How many hints the compiled-in dataset has.
fn embedded_entries() -> u64 {
    portolan_registry::Hints::embedded().len() as u64
}

async fn describe(
    client: &mut PortRegistryServiceClient<Channel>,
    port: u32,
    protocol: WireProtocol,
) -> Result<DescribePortResponse, tonic::Status> {
    client
        .describe_port(DescribePortRequest {
            port,
            protocol: protocol as i32,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn hints_info(client: &mut PortRegistryServiceClient<Channel>) -> MeshHintsInfo {
    client
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .expect("info")
        .into_inner()
        .mesh_hints
        .expect("mesh_hints in the info")
}

#[tokio::test]
async fn describe_port_answers_from_the_registry_and_the_embedded_hints() {
    let server = start_server(test_args(None)).await;
    let mut client = server.ready_client().await;

    let mysql = describe(&mut client, 3306, WireProtocol::Unspecified)
        .await
        .expect("3306");
    assert_eq!(mysql.port, 3306);
    let names: Vec<(&str, Option<u32>)> = mysql
        .records
        .iter()
        .map(|r| (r.name.as_deref().unwrap_or(""), r.port))
        .collect();
    assert_eq!(names, [("mysql", Some(3306)), ("mysql", Some(3306))]);
    assert!(mysql.records.iter().all(|r| r.key.is_none()), "no keys");
    let hint = mysql.hint.as_ref().expect("a hint for 3306");
    assert_eq!(hint.server_speaks_first(), ServerSpeaksFirst::Yes);
    assert!(
        hint.server_speaks_first_source
            .starts_with("https://dev.mysql.com/"),
        "{}",
        hint.server_speaks_first_source
    );
    assert_eq!(hint.application, "MySQL / MariaDB client protocol");
    let istio = mysql.istio.as_ref().expect("istio advice");
    assert_eq!(istio.default_behavior(), IstioDefault::Tcp);
    assert_eq!(istio.stalls(), Stall::No);
    assert_eq!(istio.fix, "");
    let linkerd = mysql.linkerd.as_ref().expect("linkerd advice");
    assert_eq!(linkerd.default_behavior(), LinkerdDefault::Opaque);
    assert_eq!(linkerd.stalls(), Stall::No);
    assert_eq!(mysql.names.len(), 1);
    assert_eq!(mysql.names[0].name, "mysql");
    assert!(mysql.names[0].rfc6335 && mysql.names[0].kubernetes_port_name);
    assert!(mysql.version >= 1 && mysql.state_id != 0);

    let nats = describe(&mut client, 4222, WireProtocol::Tcp)
        .await
        .expect("4222");
    assert_eq!(nats.protocol(), WireProtocol::Tcp);
    let ranges: Vec<(&str, Option<u32>, Option<u32>)> = nats
        .records
        .iter()
        .map(|r| (r.name.as_deref().unwrap_or(""), r.port, r.port_end))
        .collect();
    assert_eq!(ranges, [("vrml-multi-use", Some(4200), Some(4299))]);
    let hint = nats.hint.as_ref().expect("a hint for 4222");
    assert_eq!(hint.server_speaks_first(), ServerSpeaksFirst::Yes);
    assert_eq!(hint.iana_name, "", "NATS has no IANA name on 4222");
    let istio = nats.istio.as_ref().expect("istio advice");
    assert_eq!(istio.default_behavior(), IstioDefault::Sniff);
    assert_eq!(istio.stalls(), Stall::Yes);
    assert_eq!(istio.port_name, "tcp-nats");
    assert_eq!(
        istio.fix,
        "name: tcp-nats without appProtocol, or appProtocol: tcp"
    );
    let linkerd = nats.linkerd.as_ref().expect("linkerd advice");
    assert_eq!(linkerd.default_behavior(), LinkerdDefault::Detect);
    assert_eq!(linkerd.stalls(), Stall::Yes);
    assert_eq!(
        linkerd.annotation,
        "config.linkerd.io/opaque-ports: \"4222\""
    );
    assert!(linkerd.source.starts_with("https://github.com/linkerd/"));

    let https = describe(&mut client, 443, WireProtocol::Tcp)
        .await
        .expect("443");
    assert_eq!(https.records.len(), 1, "443/tcp only");
    assert_eq!(https.records[0].name.as_deref(), Some("https"));
    let hint = https.hint.as_ref().expect("a hint for 443");
    assert_eq!(hint.server_speaks_first(), ServerSpeaksFirst::No);
    assert!(hint.implicit_tls);
    assert_eq!(hint.app_protocol, "https");
    let istio = https.istio.as_ref().expect("istio advice");
    assert_eq!(
        (istio.default_behavior(), istio.stalls(), istio.fix.as_str()),
        (IstioDefault::Sniff, Stall::No, "")
    );
    let linkerd = https.linkerd.as_ref().expect("linkerd advice");
    assert_eq!(
        (linkerd.default_behavior(), linkerd.stalls()),
        (LinkerdDefault::Detect, Stall::No)
    );

    // Records, no hint: the general defaults, and no one knows about a stall.
    let x11 = describe(&mut client, 6010, WireProtocol::Unspecified)
        .await
        .expect("6010");
    assert!(x11.hint.is_none());
    assert!(
        x11.records.iter().all(|r| r.name.as_deref() == Some("x11")),
        "{:?}",
        x11.records
    );
    let istio = x11.istio.as_ref().expect("istio advice");
    assert_eq!(
        (
            istio.default_behavior(),
            istio.stalls(),
            istio.source.as_str()
        ),
        (IstioDefault::Sniff, Stall::Unknown, "")
    );
    let linkerd = x11.linkerd.as_ref().expect("linkerd advice");
    assert_eq!(
        (linkerd.default_behavior(), linkerd.stalls()),
        (LinkerdDefault::Detect, Stall::Unknown)
    );
    // UDP: no mesh sniffs it.
    let udp = describe(&mut client, 22, WireProtocol::Udp)
        .await
        .expect("22/udp");
    assert!(udp.hint.is_none() && udp.istio.is_none() && udp.linkerd.is_none());

    let missing = describe(&mut client, 65000, WireProtocol::Unspecified)
        .await
        .expect_err("nothing on 65000");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(
        missing.message(),
        "no record and no mesh hint for port 65000"
    );
    let invalid = describe(&mut client, 70000, WireProtocol::Tcp)
        .await
        .expect_err("70000");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(invalid.message(), "port: 70000 is out of range (0-65535)");

    let info = hints_info(&mut client).await;
    assert_eq!(info.source, "embedded");
    assert_eq!(info.entry_count, embedded_entries());
    assert_eq!(info.content_hash.len(), 64);
    assert_eq!(info.last_reload_outcome(), ReloadOutcome::Initial);
    assert_eq!(
        server.metric("portolan_mesh_hints_entries").await,
        embedded_entries() as f64
    );
    server.stop().await;
}

/// The embedded hints with NATS's Linkerd fix replaced by `fix`.
fn hints_with_nats_fix(fix: &str) -> String {
    mesh_hints_with(4222, "linkerd_fix", &format!("{fix:?}"))
}

async fn nats_annotation(client: &mut PortRegistryServiceClient<Channel>) -> String {
    describe(client, 4222, WireProtocol::Tcp)
        .await
        .expect("4222")
        .linkerd
        .expect("linkerd advice")
        .annotation
}

async fn wait_for_annotation(
    client: &PortRegistryServiceClient<Channel>,
    expected: &str,
    what: &str,
) {
    eventually(RELOAD_DEADLINE, what, || {
        let mut client = client.clone();
        async move { (nats_annotation(&mut client).await == expected).then_some(()) }
    })
    .await;
}

async fn wait_for_outcome(
    client: &PortRegistryServiceClient<Channel>,
    outcome: ReloadOutcome,
    what: &str,
) -> MeshHintsInfo {
    eventually(RELOAD_DEADLINE, what, || {
        let mut client = client.clone();
        async move {
            let info = hints_info(&mut client).await;
            (info.last_reload_outcome() == outcome).then_some(info)
        }
    })
    .await
}

fn write(path: &Path, text: &str) {
    write_atomically(path, text.as_bytes());
}

#[tokio::test]
async fn mesh_hints_file_is_hot_reloaded_and_a_bad_file_keeps_the_last_good_hints() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hints.toml");
    write(&path, SOURCE);
    let mut args = test_args(None);
    args.mesh_hints = Some(path.clone());
    let server = start_server(args).await;
    let mut client = server.ready_client().await;

    let first = hints_info(&mut client).await;
    assert_eq!(first.source, path.display().to_string());
    assert_eq!(first.entry_count, embedded_entries());
    assert_eq!(
        nats_annotation(&mut client).await,
        "config.linkerd.io/opaque-ports: \"4222\""
    );

    // A changed entry is served.
    let changed = "config.linkerd.io/opaque-ports: \"4222,6222\"";
    write(&path, &hints_with_nats_fix(changed));
    wait_for_annotation(&client, changed, "the changed NATS fix").await;
    let applied = wait_for_outcome(&client, ReloadOutcome::Applied, "an applied reload").await;
    assert_ne!(applied.content_hash, first.content_hash);
    assert_eq!(applied.last_reload_error, "");
    assert_eq!(
        server.metric("portolan_mesh_hints_reload_failing").await,
        0.0
    );

    // A broken file: the last good hints keep serving, the failure shows.
    write(&path, "schema = 1\n[[hint]]\nport = \"four\"\n");
    let failed = wait_for_outcome(&client, ReloadOutcome::Failed, "a failed reload").await;
    assert!(
        failed.last_reload_error.contains("cannot parse")
            && failed.last_reload_error.contains("hints.toml"),
        "{}",
        failed.last_reload_error
    );
    assert_eq!(failed.content_hash, applied.content_hash, "still served");
    assert_eq!(failed.entry_count, embedded_entries());
    assert_eq!(nats_annotation(&mut client).await, changed);
    assert_eq!(
        server.metric("portolan_mesh_hints_reload_failing").await,
        1.0
    );

    // An oversized file is refused the same way, naming the bound.
    write(&path, &"#".repeat(1024 * 1024 + 1));
    let refused = eventually(RELOAD_DEADLINE, "the size refusal", || {
        let mut client = client.clone();
        async move {
            let info = hints_info(&mut client).await;
            info.last_reload_error
                .contains("over the mesh hints limit of 1048576")
                .then_some(info)
        }
    })
    .await;
    assert_eq!(refused.last_reload_outcome(), ReloadOutcome::Failed);
    assert_eq!(nats_annotation(&mut client).await, changed);

    // Fixed: served again, failure cleared.
    write(&path, SOURCE);
    wait_for_annotation(
        &client,
        "config.linkerd.io/opaque-ports: \"4222\"",
        "the original NATS fix",
    )
    .await;
    let recovered = wait_for_outcome(&client, ReloadOutcome::Applied, "the recovered reload").await;
    assert_eq!(recovered.content_hash, first.content_hash);
    assert_eq!(recovered.last_reload_error, "");
    assert_eq!(
        server.metric("portolan_mesh_hints_reload_failing").await,
        0.0
    );
    server.stop().await;
}

/// A bad `--mesh-hints` file stops the server at startup, naming the flag.
#[test]
fn a_bad_mesh_hints_file_is_refused_at_startup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hints.toml");
    std::fs::write(&path, SOURCE.replace("schema = 1", "schema = 2")).expect("write");
    let mut args = test_args(None);
    args.mesh_hints = Some(path);
    let err = portolan_server::Config::load(args).expect_err("schema 2");
    let text = err.to_string();
    assert!(
        text.starts_with("--mesh-hints: cannot parse ") && text.ends_with("schema 2, expected 1"),
        "{text}"
    );
}
