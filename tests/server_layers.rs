//! Layers on real files: the full IANA CSV, a corporate services file and
//! Debian's `/etc/services`, served as `--data corp=... --data iana=...
//! --data local=...` by one in-process server.
//!
//! * Lookups answer every layer's records, highest priority first, each
//!   record and key naming its layer; ListRecords filters by layer;
//!   GetRegistryInfo lists each layer (source, format, hash, count, reload).
//! * Replacing the corp file is served within 2 s while the IANA layer is
//!   untouched (same hash, same load time, no IANA key in the change).
//! * A truncated corp file keeps the last good corp records serving; the
//!   failure shows in the layer's info and in
//!   `portolan_layer_reload_failing{layer="corp"}`; the IANA layer still
//!   reloads meanwhile.
//! * A cached client drops exactly the cache entries the corp change
//!   touched; a replica follows every layer to the server's state.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::{
    GetRegistryInfoRequest, GetRegistryInfoResponse, LayerInfo, ListRecordsRequest,
    LookupPortRequest, Protocol as WireProtocol, ReloadOutcome,
};
use portolan_client::{CacheConfig, CachedClient, Client, ReplicaClient, ReplicaConfig};
use portolan_registry::{LayerSpec, Protocol};
use portolan_test_support::{shared_file, write_atomically};
use tonic::transport::Channel;

use support::{eventually, start_server, test_args};

const RELOAD_DEADLINE: Duration = Duration::from_secs(2);

fn corp_file(web_description: &str, extra: &str) -> String {
    format!(
        "# Corp port assignments\n\
         corp-web\t443/tcp\t\t# {web_description}\n\
         corp-db\t\t15432/tcp\t# Corp database proxy\n\
         corp-metrics\t9100/tcp\t# Corp node metrics\n\
         {extra}"
    )
}

struct Layers {
    _dir: tempfile::TempDir,
    corp: PathBuf,
    iana: PathBuf,
}

fn layers() -> (Layers, Vec<LayerSpec>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let corp = dir.path().join("corp-ports");
    let iana = dir.path().join("iana.csv");
    std::fs::write(&corp, corp_file("Corp web frontend", "")).expect("corp file");
    std::fs::copy(shared_file("iana/service-names-port-numbers.csv"), &iana).expect("iana copy");
    let spec = |name: &str, path: &Path| LayerSpec {
        name: name.into(),
        path: path.to_path_buf(),
    };
    let specs = vec![
        spec("corp", &corp),
        spec("iana", &iana),
        spec("local", &shared_file("etc/services-debian")),
    ];
    (
        Layers {
            _dir: dir,
            corp,
            iana,
        },
        specs,
    )
}

async fn info(client: &mut PortRegistryServiceClient<Channel>) -> GetRegistryInfoResponse {
    client
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .expect("info")
        .into_inner()
}

fn layer<'a>(info: &'a GetRegistryInfoResponse, name: &str) -> &'a LayerInfo {
    info.layers
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no layer {name} in {:?}", info.layers))
}

/// (layer, name, description) of every record answering 443/tcp.
async fn port_443(
    client: &mut PortRegistryServiceClient<Channel>,
) -> Vec<(String, String, String)> {
    client
        .lookup_port(LookupPortRequest {
            port: 443,
            protocol: WireProtocol::Tcp as i32,
        })
        .await
        .expect("lookup 443/tcp")
        .into_inner()
        .records
        .into_iter()
        .map(|r| {
            let key = r.key.expect("a key");
            assert_eq!(key.layer, r.layer, "the key names the record's layer");
            (r.layer, r.name.unwrap_or_default(), r.description)
        })
        .collect()
}

#[tokio::test]
async fn three_layers_on_real_files_answer_in_order_and_reload_alone() {
    let (files, specs) = layers();
    let mut args = test_args(None);
    args.data = specs;
    let server = start_server(args).await;
    let mut client = server.ready_client().await;

    // Every layer answers, highest priority first.
    assert_eq!(
        port_443(&mut client).await,
        [
            ("corp".into(), "corp-web".into(), "Corp web frontend".into()),
            (
                "iana".into(),
                "https".into(),
                "http protocol over TLS/SSL".into()
            ),
            // Debian's file carries the description as a comment.
            (
                "local".into(),
                "https".into(),
                "http protocol over TLS/SSL".into()
            ),
        ]
    );
    let first = info(&mut client).await;
    let names: Vec<(&str, u32, &str, u64)> = first
        .layers
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.rank,
                l.source_format.as_str(),
                l.record_count,
            )
        })
        .collect();
    let local_count = layer(&first, "local").record_count;
    assert_eq!(
        names,
        [
            ("corp", 0, "services", 3),
            ("iana", 1, "iana-csv", 14_512),
            ("local", 2, "services", local_count),
        ]
    );
    assert!(local_count > 300, "Debian's services file: {local_count}");
    assert_eq!(first.record_count, 3 + 14_512 + local_count);
    assert_eq!(first.source_format, "layered");
    assert!(
        first.source_path.starts_with("corp="),
        "{}",
        first.source_path
    );
    assert!(first.layers.iter().all(|l| l.content_hash.len() == 64));

    // ListRecords by layer.
    let mut stream = client
        .list_records(ListRecordsRequest {
            layers: vec!["corp".into()],
            ..ListRecordsRequest::default()
        })
        .await
        .expect("list corp")
        .into_inner();
    let mut corp_names = Vec::new();
    while let Some(message) = stream.message().await.expect("list message") {
        corp_names.extend(
            message
                .records
                .into_iter()
                .map(|r| r.name.unwrap_or_default()),
        );
    }
    assert_eq!(corp_names, ["corp-web", "corp-metrics", "corp-db"]);

    // A cached client holding touched and untouched answers.
    let cache = CachedClient::new(
        Client::connect(server.endpoint()).await.expect("client"),
        CacheConfig::default(),
    );
    assert!(cache.wait_live(Duration::from_secs(10)).await);
    let tcp = Some(&Protocol::Tcp);
    for port in [443, 22] {
        cache.lookup_port(port, tcp).await.expect("cached lookup");
    }
    for name in ["corp-web", "ssh"] {
        cache.lookup_name(name, tcp).await.expect("cached lookup");
    }
    let before = cache.stats();
    assert_eq!(before.entries, 4);
    // A replica started from the embedded registry follows all layers.
    let replica = ReplicaClient::start(
        Client::connect(server.endpoint()).await.expect("client"),
        portolan_client::embedded::registry(),
        ReplicaConfig::default(),
    );
    assert!(
        replica
            .wait_for_state(first.state_id, Duration::from_secs(10))
            .await
    );
    let replica_443 = |replica: &ReplicaClient| -> Vec<(String, String)> {
        replica
            .lookup_port(443, tcp)
            .records
            .iter()
            .map(|r| (r.layer.to_string(), r.description.clone()))
            .collect()
    };
    assert_eq!(
        replica_443(&replica),
        [
            ("corp".to_string(), "Corp web frontend".to_string()),
            ("iana".to_string(), "http protocol over TLS/SSL".to_string()),
            (
                "local".to_string(),
                "http protocol over TLS/SSL".to_string()
            ),
        ]
    );

    // Replace the corp file: served within 2 s, IANA untouched.
    write_atomically(
        &files.corp,
        corp_file("Corp web frontend v2", "corp-new\t19999/tcp\t# New\n").as_bytes(),
    );
    // The lookup maps are updated before the snapshot that info reads, so
    // wait for the reload to be reported, then check what lookups answer.
    let second = eventually(RELOAD_DEADLINE, "the new corp layer", || {
        let mut client = client.clone();
        async move {
            let info = info(&mut client).await;
            let corp = layer(&info, "corp");
            (ReloadOutcome::try_from(corp.last_reload_outcome) == Ok(ReloadOutcome::Applied))
                .then_some(info)
        }
    })
    .await;
    assert_eq!(port_443(&mut client).await[0].2, "Corp web frontend v2");
    let (iana_before, iana_after) = (layer(&first, "iana"), layer(&second, "iana"));
    assert_eq!(iana_after.content_hash, iana_before.content_hash);
    assert_eq!(
        iana_after.loaded_at, iana_before.loaded_at,
        "the IANA layer was not reloaded"
    );
    assert_eq!(layer(&second, "corp").record_count, 4);
    assert_eq!(
        ReloadOutcome::try_from(layer(&second, "corp").last_reload_outcome),
        Ok(ReloadOutcome::Applied)
    );
    assert_ne!(second.state_id, first.state_id);

    // The cache dropped exactly the entries the change touched (443/tcp and
    // corp-web); 22/tcp and ssh are still answered locally.
    assert!(
        cache
            .wait_for_state(second.state_id, Duration::from_secs(5))
            .await
    );
    let after = cache.stats();
    assert_eq!(after.invalidations - before.invalidations, 2, "{after:?}");
    assert_eq!(after.entries, 2);
    let rpcs = after.rpcs;
    cache.lookup_port(22, tcp).await.expect("22");
    cache.lookup_name("ssh", tcp).await.expect("ssh");
    assert_eq!(cache.stats().rpcs, rpcs, "untouched answers stay cached");
    let fresh = cache.lookup_port(443, tcp).await.expect("443");
    assert_eq!(fresh.value.records[0].description, "Corp web frontend v2");
    assert_eq!(cache.stats().rpcs, rpcs + 1);

    // A truncated corp file (cut after its first line and a half): the
    // shrink guard refuses it, the last good corp layer keeps serving.
    let full = corp_file("Corp web frontend v3", "corp-new\t19999/tcp\t# New\n");
    write_atomically(&files.corp, &full.as_bytes()[..60]);
    eventually(RELOAD_DEADLINE, "the corp failure to show", || {
        let mut client = client.clone();
        async move {
            let info = info(&mut client).await;
            let corp = layer(&info, "corp");
            (ReloadOutcome::try_from(corp.last_reload_outcome) == Ok(ReloadOutcome::Failed))
                .then(|| corp.last_reload_error.clone())
        }
    })
    .await;
    let error = layer(&info(&mut client).await, "corp")
        .last_reload_error
        .clone();
    assert!(
        error.contains("corp-ports") && error.contains("refusing"),
        "{error}"
    );
    assert_eq!(port_443(&mut client).await[0].2, "Corp web frontend v2");
    assert_eq!(
        server
            .metric("portolan_layer_reload_failing{layer=\"corp\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .metric("portolan_layer_records{layer=\"corp\"}")
            .await,
        4.0
    );

    // The IANA layer still updates while corp is failing.
    let iana_text = std::fs::read_to_string(&files.iana).expect("iana");
    write_atomically(
        &files.iana,
        iana_text
            .replacen("http protocol over TLS/SSL", "https edited", 1)
            .as_bytes(),
    );
    let third = eventually(RELOAD_DEADLINE, "the edited IANA layer", || {
        let mut client = client.clone();
        async move {
            let info = info(&mut client).await;
            let iana = layer(&info, "iana");
            (ReloadOutcome::try_from(iana.last_reload_outcome) == Ok(ReloadOutcome::Applied))
                .then_some(info)
        }
    })
    .await;
    assert_eq!(port_443(&mut client).await[1].2, "https edited");
    assert_eq!(
        ReloadOutcome::try_from(layer(&third, "corp").last_reload_outcome),
        Ok(ReloadOutcome::Failed),
        "corp keeps its failure"
    );
    assert_eq!(
        server
            .metric("portolan_layer_reload_failing{layer=\"iana\"}")
            .await,
        0.0
    );
    server.stop().await;
}
