//! The baseline: the same `PortRegistryService` service with no registry behind
//! it. LookupPort and LookupName return one fixed, small record;
//! BatchLookup answers every item with that record (echoing the item's id);
//! every other method is UNIMPLEMENTED. It also serves `grpc.health.v1`
//! (SERVING), so it is started and checked exactly like Portolan.
//!
//! `--reply-records N` makes every answer hold N copies of the record. That
//! is not the baseline of the targets; it exists to ask how much of a gap
//! comes from reply size alone, by giving the baseline replies as large as
//! Portolan's (the load reports each server's mean reply size).
//!
//! Accepted connections get `TCP_NODELAY`, as Portolan's do, so neither
//! server pays Nagle/delayed-ACK stalls on streamed replies.
//!
//! Run as `portolan-bench baseline-server --listen 127.0.0.1:0`; it prints
//! its bound address as the first line on standard output.

use std::net::SocketAddr;
use std::pin::Pin;

use anyhow::{Context, Result};
use futures::{Stream, StreamExt};
use portolan::pb::port_registry_service_server::{PortRegistryService, PortRegistryServiceServer};
use portolan::pb::{
    BatchLookupRequest, BatchLookupResponse, GetRegistryInfoRequest, GetRegistryInfoResponse,
    ListRecordsRequest, ListRecordsResponse, LookupNameRequest, LookupNameResponse,
    LookupPortRequest, LookupPortResponse, Protocol, Record, RecordKey, RecordState, SearchRequest,
    SearchResponse, WatchRequest, WatchResponse,
};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

/// The baseline service: a fixed reply, no registry work.
#[derive(Debug, Clone)]
pub struct Baseline {
    record: Record,
    reply_records: usize,
}

impl Default for Baseline {
    fn default() -> Self {
        Self::new(1)
    }
}

impl Baseline {
    /// The service with its fixed record (https, 443/tcp), answering every
    /// lookup and batch item with `reply_records` copies of it (at least
    /// one; more only to compare at a larger reply size).
    pub fn new(reply_records: usize) -> Self {
        let record = Record {
            name: Some("https".into()),
            port: Some(443),
            port_end: Some(443),
            protocol: Protocol::Tcp as i32,
            protocol_text: "tcp".into(),
            description: "http protocol over TLS/SSL".into(),
            state: RecordState::Assigned as i32,
            port_class: portolan::pb::PortClass::System as i32,
            references: vec!["RFC9110".into()],
            key: Some(RecordKey {
                name: Some("https".into()),
                port: Some(443),
                port_end: Some(443),
                protocol: Protocol::Tcp as i32,
                protocol_text: "tcp".into(),
                ordinal: 0,
                layer: String::new(),
            }),
            ..Record::default()
        };
        Self {
            record,
            reply_records: reply_records.max(1),
        }
    }

    fn records(&self) -> Vec<Record> {
        vec![self.record.clone(); self.reply_records]
    }

    fn reply(&self) -> LookupPortResponse {
        LookupPortResponse {
            records: self.records(),
            version: 1,
            state_id: 1,
        }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl PortRegistryService for Baseline {
    async fn lookup_port(
        &self,
        _request: Request<LookupPortRequest>,
    ) -> Result<Response<LookupPortResponse>, Status> {
        Ok(Response::new(self.reply()))
    }

    async fn lookup_name(
        &self,
        _request: Request<LookupNameRequest>,
    ) -> Result<Response<LookupNameResponse>, Status> {
        let LookupPortResponse {
            records,
            version,
            state_id,
        } = self.reply();
        Ok(Response::new(LookupNameResponse {
            records,
            version,
            state_id,
        }))
    }

    type BatchLookupStream = BoxStream<BatchLookupResponse>;

    async fn batch_lookup(
        &self,
        request: Request<Streaming<BatchLookupRequest>>,
    ) -> Result<Response<Self::BatchLookupStream>, Status> {
        let this = self.clone();
        let out = request.into_inner().map(move |item| {
            item.map(|item| BatchLookupResponse {
                id: item.id,
                records: this.records(),
                version: 1,
                error: None,
                state_id: 1,
            })
        });
        Ok(Response::new(Box::pin(out)))
    }

    type SearchStream = BoxStream<SearchResponse>;

    async fn search(
        &self,
        _request: Request<SearchRequest>,
    ) -> Result<Response<Self::SearchStream>, Status> {
        Err(Status::unimplemented("baseline: Search"))
    }

    type ListRecordsStream = BoxStream<ListRecordsResponse>;

    async fn list_records(
        &self,
        _request: Request<ListRecordsRequest>,
    ) -> Result<Response<Self::ListRecordsStream>, Status> {
        Err(Status::unimplemented("baseline: ListRecords"))
    }

    type WatchStream = BoxStream<WatchResponse>;

    async fn watch(
        &self,
        _request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("baseline: Watch"))
    }

    async fn get_registry_info(
        &self,
        _request: Request<GetRegistryInfoRequest>,
    ) -> Result<Response<GetRegistryInfoResponse>, Status> {
        Err(Status::unimplemented("baseline: GetRegistryInfo"))
    }

    async fn describe_port(
        &self,
        _request: Request<portolan::pb::DescribePortRequest>,
    ) -> Result<Response<portolan::pb::DescribePortResponse>, Status> {
        Err(Status::unimplemented("baseline: DescribePort"))
    }

    async fn lint_ports(
        &self,
        _request: Request<portolan::pb::LintPortsRequest>,
    ) -> Result<Response<portolan::pb::LintPortsResponse>, Status> {
        Err(Status::unimplemented("baseline: LintPorts"))
    }
}

/// Serves the baseline on `listen` until the process is killed, printing
/// the bound address on standard output first; every answer holds
/// `reply_records` copies of the fixed record.
pub async fn serve(listen: SocketAddr, reply_records: usize) -> Result<()> {
    use std::io::Write as _;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{addr}")?;
    stdout.flush()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<PortRegistryServiceServer<Baseline>>()
        .await;
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(PortRegistryServiceServer::new(Baseline::new(reply_records)))
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await?;
    Ok(())
}
