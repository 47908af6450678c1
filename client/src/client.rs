//! [`Client`]: the typed gRPC client, and [`ClientBuilder`] to configure
//! endpoints (one, a list, or a DNS name re-resolved periodically), TLS,
//! deadlines and retries.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt as _};
use portolan::pb;
use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan_registry::{ContentId, LookupResult, Protocol, Record};
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::transport::channel::Change;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::types::{
    BatchItem, BatchQuery, LookupTarget, RegistryInfo, ScanFilter, WatchEvent, WatchMode,
};
use crate::{Error, RetryPolicy};

/// A stream of records (search results or a listing).
pub type RecordStream = Pin<Box<dyn Stream<Item = Result<Record, Error>> + Send>>;
/// A stream of watch events.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Error>> + Send>>;
/// A stream of batch lookup answers.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<BatchItem, Error>> + Send>>;

/// TLS settings (PEM bytes). Without a CA, the server certificate is
/// checked against the system's trust roots (a publicly trusted server
/// needs nothing more); with one, against that CA only.
///
/// # Example
/// ```
/// use portolan_client::TlsOptions;
///
/// let tls = TlsOptions::new()
///     .ca_pem(b"-----BEGIN CERTIFICATE-----\n...".to_vec())
///     .domain("portolan.example");
/// assert_eq!(tls.domain.as_deref(), Some("portolan.example"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM of the CA that signed the server's certificate; `None` for the
    /// system's trust roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate and key for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to verify the server certificate against (defaults to the
    /// endpoint's host).
    pub domain: Option<String>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("TlsOptions")
            .field("ca_pem", &self.ca_pem.as_ref().map(|c| c.len()))
            .field("identity", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

impl TlsOptions {
    /// Empty options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust this CA (PEM).
    pub fn ca_pem(mut self, pem: Vec<u8>) -> Self {
        self.ca_pem = Some(pem);
        self
    }

    /// Present this client certificate and key (PEM), for mutual TLS.
    pub fn identity(mut self, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Self {
        self.identity = Some((cert_pem, key_pem));
        self
    }

    /// Verify the server certificate against this name.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    fn to_tonic(&self, default_domain: Option<&str>) -> ClientTlsConfig {
        let mut cfg = ClientTlsConfig::new();
        // A CA given replaces the system's trust roots; without one, the
        // system's roots verify the server (a publicly trusted server needs
        // no configuration).
        cfg = match &self.ca_pem {
            Some(ca) => cfg.ca_certificate(Certificate::from_pem(ca)),
            None => cfg.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            cfg = cfg.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = self.domain.as_deref().or(default_domain) {
            cfg = cfg.domain_name(domain);
        }
        cfg
    }
}

/// Where the client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// One or more URIs; several are balanced round-robin-ish (p2c).
    Endpoints(Vec<String>),
    /// A URI whose host is re-resolved every `refresh`; every address
    /// becomes a balanced endpoint (Kubernetes headless Services).
    Dns { uri: String, refresh: Duration },
}

/// Configures and connects a [`Client`].
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use portolan_client::{Client, RetryPolicy};
///
/// # async fn f() -> Result<(), portolan_client::Error> {
/// // One endpoint, 2 s per-call deadline, 5 attempts on UNAVAILABLE.
/// let client = Client::builder("http://127.0.0.1:50051")
///     .timeout(Duration::from_secs(2))
///     .retry(RetryPolicy { max_attempts: 5, ..RetryPolicy::default() })
///     .connect()
///     .await?;
///
/// // A headless Kubernetes Service: every pod address, re-resolved every 30 s.
/// let balanced = Client::builder_dns("http://portolan-headless.default.svc:50051", Duration::from_secs(30))
///     .connect_lazy()?;
/// # let _ = (client, balanced);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    target: Target,
    tls: Option<TlsOptions>,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    retry: RetryPolicy,
    resolver: Option<Resolver>,
}

/// Turns the DNS form's host and port into the addresses to balance over,
/// in place of the system resolver (see [`ClientBuilder::resolver`]).
pub type ResolveFn =
    dyn Fn(String, u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> + Send + Sync;

/// A [`ResolveFn`] held by a builder.
#[derive(Clone)]
struct Resolver(Arc<ResolveFn>);

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver(..)")
    }
}

impl ClientBuilder {
    /// For the DNS form ([`Client::builder_dns`]): resolve the host with
    /// `resolve` instead of the system resolver, on connect and at every
    /// refresh, e.g. for service discovery other than DNS, or a fixed
    /// table. Balancing, re-resolution and the handling of failures and
    /// empty answers stay the same.
    pub fn resolver(mut self, resolve: Arc<ResolveFn>) -> Self {
        self.resolver = Some(Resolver(resolve));
        self
    }

    /// Sends every call with this deadline (per attempt, propagated to the
    /// server as `grpc-timeout` and enforced locally). Default 5 s. Does not
    /// apply to streams' bodies (a watch lives forever).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// No per-call deadline.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// How long establishing a connection may take. Default 3 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retry policy for UNAVAILABLE. Default: 3 attempts, 50 ms..2 s.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Use TLS (mutual TLS when the options carry an identity). Endpoints
    /// should be `https://` URIs.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    fn endpoint(&self, uri: &str, tls_domain: Option<&str>) -> Result<Endpoint, Error> {
        let mut endpoint =
            Endpoint::from_shared(uri.to_string()).map_err(|e| Error::Transport {
                message: format!("invalid endpoint {uri:?}: {e}"),
            })?;
        endpoint = endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        if let Some(tls) = &self.tls {
            endpoint =
                endpoint
                    .tls_config(tls.to_tonic(tls_domain))
                    .map_err(|e| Error::Transport {
                        message: format!("TLS configuration for {uri}: {}", chain(&e)),
                    })?;
        }
        Ok(endpoint)
    }

    fn label(&self) -> String {
        match &self.target {
            Target::Endpoints(list) => list.join(","),
            Target::Dns { uri, .. } => uri.clone(),
        }
    }

    /// Connects. With a single endpoint the connection is made now and a
    /// failure is returned ([`Error::Unavailable`] with the cause, e.g.
    /// "connection refused"); with several endpoints or a DNS name, the
    /// DNS name is resolved once now and connections are made on demand.
    pub async fn connect(self) -> Result<Client, Error> {
        match &self.target {
            Target::Endpoints(list) if list.len() == 1 => {
                let endpoint = self.endpoint(&list[0], None)?;
                let channel = endpoint.connect().await.map_err(|e| Error::Unavailable {
                    message: crate::error::root_cause(&e).unwrap_or_else(|| e.to_string()),
                })?;
                Ok(self.finish(channel, None))
            }
            Target::Dns { uri, refresh } => {
                let (scheme, host, port) = split_uri(uri)?;
                let addrs = resolve(self.resolver.as_ref(), &host, port).await?;
                if addrs.is_empty() {
                    return Err(Error::Transport {
                        message: format!("{host} resolves to no address"),
                    });
                }
                self.dns_client(scheme, host, port, *refresh, Some(addrs))
            }
            Target::Endpoints(_) => self.connect_lazy(),
        }
    }

    /// Builds the client without connecting; connections are made on the
    /// first call (errors surface then). Must be called inside a tokio
    /// runtime.
    pub fn connect_lazy(self) -> Result<Client, Error> {
        match &self.target {
            Target::Endpoints(list) if list.is_empty() => Err(Error::Transport {
                message: "no endpoint given".into(),
            }),
            Target::Endpoints(list) if list.len() == 1 => {
                let channel = self.endpoint(&list[0], None)?.connect_lazy();
                Ok(self.finish(channel, None))
            }
            Target::Endpoints(list) => {
                let endpoints = list
                    .iter()
                    .map(|uri| self.endpoint(uri, None))
                    .collect::<Result<Vec<_>, _>>()?;
                let channel = Channel::balance_list(endpoints.into_iter());
                Ok(self.finish(channel, None))
            }
            Target::Dns { uri, refresh } => {
                let (scheme, host, port) = split_uri(uri)?;
                self.dns_client(scheme, host, port, *refresh, None)
            }
        }
    }

    fn dns_client(
        &self,
        scheme: String,
        host: String,
        port: u16,
        refresh: Duration,
        initial: Option<HashSet<SocketAddr>>,
    ) -> Result<Client, Error> {
        let (channel, tx) = Channel::balance_channel::<SocketAddr>(64);
        let token = CancellationToken::new();
        let builder = self.clone();
        let cancel = token.clone();
        let mut current: HashSet<SocketAddr> = HashSet::new();
        let make = move |addr: &SocketAddr| {
            let host_for_uri = match addr {
                SocketAddr::V4(a) => a.to_string(),
                SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
            };
            builder.endpoint(&format!("{scheme}://{host_for_uri}"), Some(&host))
        };
        let host_for_task = split_uri_host(&self.target);
        let resolver = self.resolver.clone();
        tokio::spawn(async move {
            let mut next = initial;
            loop {
                let addrs = match next.take() {
                    Some(addrs) => Ok(addrs),
                    None => resolve(resolver.as_ref(), &host_for_task, port).await,
                };
                match addrs {
                    Ok(addrs) if !addrs.is_empty() => {
                        for gone in current.difference(&addrs) {
                            if tx.send(Change::Remove(*gone)).await.is_err() {
                                return;
                            }
                        }
                        for new in addrs.difference(&current) {
                            match make(new) {
                                Ok(ep) => {
                                    if tx.send(Change::Insert(*new, ep)).await.is_err() {
                                        return;
                                    }
                                }
                                Err(e) => tracing::warn!(%new, error = %e, "skipping address"),
                            }
                        }
                        current = addrs;
                    }
                    // Keep the last known addresses when DNS fails or is empty.
                    Ok(_) => tracing::warn!(host = %host_for_task, "DNS returned no address"),
                    Err(e) => {
                        tracing::warn!(host = %host_for_task, error = %e, "DNS resolution failed")
                    }
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(refresh) => {}
                }
            }
        });
        Ok(self.finish(channel, Some(token.drop_guard())))
    }

    fn finish(&self, channel: Channel, resolver: Option<DropGuard>) -> Client {
        Client {
            inner: Arc::new(Inner {
                grpc: PortRegistryServiceClient::new(channel)
                    .max_decoding_message_size(16 * 1024 * 1024),
                timeout: self.timeout,
                retry: self.retry,
                label: self.label(),
                _resolver: resolver,
            }),
        }
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

fn split_uri(uri: &str) -> Result<(String, String, u16), Error> {
    let parsed: tonic::transport::Uri = uri.parse().map_err(|e| Error::Transport {
        message: format!("invalid endpoint {uri:?}: {e}"),
    })?;
    let scheme = parsed.scheme_str().unwrap_or("http").to_string();
    let host = parsed
        .host()
        .ok_or_else(|| Error::Transport {
            message: format!("endpoint {uri:?} has no host"),
        })?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Ok((scheme, host, port))
}

fn split_uri_host(target: &Target) -> String {
    match target {
        Target::Dns { uri, .. } => split_uri(uri).map(|(_, h, _)| h).unwrap_or_default(),
        Target::Endpoints(_) => String::new(),
    }
}

async fn resolve(
    resolver: Option<&Resolver>,
    host: &str,
    port: u16,
) -> Result<HashSet<SocketAddr>, Error> {
    let addrs = match resolver {
        Some(Resolver(resolve)) => resolve(host.to_string(), port)
            .await
            .map(HashSet::from_iter),
        None => tokio::net::lookup_host((host, port))
            .await
            .map(|it| it.collect()),
    };
    addrs.map_err(|e| Error::Transport {
        message: format!("cannot resolve {host}: {e}"),
    })
}

/// The typed Portolan client: one method per RPC, domain types in and out,
/// per-call deadlines and retries on UNAVAILABLE. Cheap to clone (clones
/// share the connection).
///
/// # Example
/// ```no_run
/// use futures::StreamExt as _;
/// use portolan_client::{Client, ScanFilter};
/// use portolan_registry::Protocol;
///
/// # async fn f() -> Result<(), portolan_client::Error> {
/// let client = Client::connect("http://127.0.0.1:50051").await?;
/// let https = client.lookup_port(443, Some(&Protocol::Tcp)).await?;
/// println!("{} (version {})", https.records[0].name.as_deref().unwrap_or("-"), https.version);
///
/// let mut ldap = client.search("ldap", &ScanFilter::default(), 10).await?;
/// while let Some(record) = ldap.next().await {
///     println!("{:?}", record?.name);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    grpc: PortRegistryServiceClient<Channel>,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    label: String,
    /// Stops the DNS re-resolution task when the last clone is dropped.
    _resolver: Option<DropGuard>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.label)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

fn default_builder(target: Target) -> ClientBuilder {
    ClientBuilder {
        target,
        tls: None,
        timeout: Some(Duration::from_secs(5)),
        connect_timeout: Duration::from_secs(3),
        retry: RetryPolicy::default(),
        resolver: None,
    }
}

impl Client {
    /// A builder for one endpoint URI (`http://host:port`, `https://...`).
    pub fn builder(uri: impl Into<String>) -> ClientBuilder {
        default_builder(Target::Endpoints(vec![uri.into()]))
    }

    /// A builder balancing over several endpoint URIs.
    pub fn builder_list(uris: impl IntoIterator<Item = impl Into<String>>) -> ClientBuilder {
        default_builder(Target::Endpoints(
            uris.into_iter().map(Into::into).collect(),
        ))
    }

    /// A builder balancing over every address a DNS name resolves to,
    /// re-resolved every `refresh` (a Kubernetes headless Service).
    pub fn builder_dns(uri: impl Into<String>, refresh: Duration) -> ClientBuilder {
        default_builder(Target::Dns {
            uri: uri.into(),
            refresh,
        })
    }

    /// Connects to one endpoint with default settings.
    pub async fn connect(uri: impl Into<String>) -> Result<Self, Error> {
        Self::builder(uri).connect().await
    }

    /// The endpoint(s) this client talks to, as configured.
    pub fn endpoint(&self) -> &str {
        &self.inner.label
    }

    fn request<T>(&self, message: T, deadline: bool) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if deadline && let Some(t) = self.inner.timeout {
            request.set_timeout(t);
        }
        request
    }

    /// Runs a call with the deadline and retry policy.
    async fn call<Req, Resp, F, Fut>(
        &self,
        message: Req,
        deadline: bool,
        f: F,
    ) -> Result<Resp, Error>
    where
        Req: Clone,
        F: Fn(PortRegistryServiceClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let mut attempt = 0u32;
        loop {
            let request = self.request(message.clone(), deadline);
            let fut = f(self.inner.grpc.clone(), request);
            let result = match (deadline, self.inner.timeout) {
                (true, Some(t)) => match tokio::time::timeout(t, fut).await {
                    Ok(r) => r.map_err(Error::from_status),
                    Err(_) => Err(Error::DeadlineExceeded {
                        message: format!("no answer within {t:?}"),
                    }),
                },
                _ => fut.await.map_err(Error::from_status),
            };
            match result {
                Ok(response) => return Ok(response.into_inner()),
                Err(e) if e.is_retryable() && attempt + 1 < self.inner.retry.max_attempts => {
                    tracing::debug!(error = %e, attempt, "retrying");
                    tokio::time::sleep(self.inner.retry.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Every record covering `port` (exact ports and ranges), for
    /// `protocol` (`None` = any), canonical first, with the version it was
    /// read from. [`Error::NotFound`] when no record covers it.
    pub async fn lookup_port(
        &self,
        port: u16,
        protocol: Option<&Protocol>,
    ) -> Result<LookupResult, Error> {
        let request = pb::LookupPortRequest {
            port: u32::from(port),
            protocol: crate::types::request_protocol(protocol)?,
        };
        let response = self
            .call(
                request,
                true,
                |mut c, r| async move { c.lookup_port(r).await },
            )
            .await?;
        lookup_from_pb(response.records, response.version, response.state_id)
    }

    /// Every record named `name` (case-insensitive), for `protocol`
    /// (`None` = any). [`Error::NotFound`] when none.
    pub async fn lookup_name(
        &self,
        name: &str,
        protocol: Option<&Protocol>,
    ) -> Result<LookupResult, Error> {
        let request = pb::LookupNameRequest {
            name: name.to_string(),
            protocol: crate::types::request_protocol(protocol)?,
        };
        let response = self
            .call(
                request,
                true,
                |mut c, r| async move { c.lookup_name(r).await },
            )
            .await?;
        lookup_from_pb(response.records, response.version, response.state_id)
    }

    /// Many lookups over one stream. Answers may come out of order; match
    /// them by id. A per-item failure (including not found) is an item with
    /// an `Err` result; a stream-level failure ends the stream with `Err`.
    pub async fn batch_lookup<S>(&self, queries: S) -> Result<BatchStream, Error>
    where
        S: Stream<Item = BatchQuery> + Send + 'static,
    {
        let requests = queries.map(|q| pb::BatchLookupRequest {
            id: q.id,
            query: Some(match q.target {
                LookupTarget::Port(p) => pb::batch_lookup_request::Query::Port(u32::from(p)),
                LookupTarget::Name(n) => pb::batch_lookup_request::Query::Name(n),
            }),
            // `Other` is sent as such; the server answers that item with
            // INVALID_ARGUMENT.
            protocol: match &q.protocol {
                Some(Protocol::Other(_)) => pb::Protocol::Other as i32,
                p => crate::types::request_protocol(p.as_ref()).unwrap_or_default(),
            },
        });
        let mut grpc = self.inner.grpc.clone();
        let response = grpc
            .batch_lookup(tonic::Request::new(requests))
            .await
            .map_err(Error::from_status)?;
        let stream = response.into_inner().map(|item| {
            let item = item.map_err(Error::from_status)?;
            let result = match item.error {
                Some(e) => Err(Error::from_status(tonic::Status::new(
                    tonic::Code::from_i32(e.code),
                    e.message,
                ))),
                None => lookup_from_pb(item.records, item.version, item.state_id),
            };
            Ok(BatchItem {
                id: item.id,
                result,
            })
        });
        Ok(Box::pin(stream))
    }

    /// Ranked search over names and descriptions, best first, at most
    /// `limit` records (0 = the server's default, 100).
    pub async fn search(
        &self,
        query: &str,
        filter: &ScanFilter,
        limit: u32,
    ) -> Result<RecordStream, Error> {
        let request = pb::SearchRequest {
            query: query.to_string(),
            protocol: crate::types::request_protocol(filter.protocol.as_ref())?,
            port_min: filter.port_min.map(u32::from),
            port_max: filter.port_max.map(u32::from),
            states: filter
                .states
                .iter()
                .map(|s| crate::types::state_to_pb(*s))
                .collect(),
            limit,
            layers: filter.layers.clone(),
        };
        let response = self
            .call(request, false, |mut c, r| async move { c.search(r).await })
            .await?;
        Ok(record_stream(response, |m: pb::SearchResponse| m.records))
    }

    /// The whole registry, or the part passing `filter`, in (port,
    /// protocol, name) order, all from one version.
    pub async fn list_records(&self, filter: &ScanFilter) -> Result<RecordStream, Error> {
        let request = pb::ListRecordsRequest {
            protocol: crate::types::request_protocol(filter.protocol.as_ref())?,
            port_min: filter.port_min.map(u32::from),
            port_max: filter.port_max.map(u32::from),
            states: filter
                .states
                .iter()
                .map(|s| crate::types::state_to_pb(*s))
                .collect(),
            layers: filter.layers.clone(),
        };
        let response = self
            .call(
                request,
                false,
                |mut c, r| async move { c.list_records(r).await },
            )
            .await?;
        Ok(record_stream(response, |m: pb::ListRecordsResponse| {
            m.records
        }))
    }

    /// Opens a watch stream from the state `known_state_id` (0 = hold
    /// nothing), whichever replica it was read from. See the protocol in
    /// `registry.proto`: the first event brings the caller up to date
    /// (heartbeat, delta or snapshot), then one event per change, plus
    /// heartbeats. [`crate::CachedClient`] and [`crate::ReplicaClient`]
    /// consume this for you.
    pub async fn watch(&self, known_state_id: u64, mode: WatchMode) -> Result<WatchStream, Error> {
        let request = pb::WatchRequest {
            known_state_id,
            mode: mode.to_pb() as i32,
            ..pb::WatchRequest::default()
        };
        let response = self
            .call(request, false, |mut c, r| async move { c.watch(r).await })
            .await?;
        let stream = response.map(|event| WatchEvent::from_pb(event.map_err(Error::from_status)?));
        Ok(Box::pin(stream))
    }

    /// What `port` (over `protocol`, `None` = any) means to a service
    /// mesh, from the server's registry and mesh hints: the domain
    /// description `portolan --offline describe` computes locally, with
    /// the registry version and state its records were read from.
    /// [`Error::NotFound`] when the port has neither records nor a hint.
    pub async fn describe_port(
        &self,
        port: u16,
        protocol: Option<&Protocol>,
    ) -> Result<Described, Error> {
        let request = pb::DescribePortRequest {
            port: u32::from(port),
            protocol: crate::types::request_protocol(protocol)?,
        };
        let response = self
            .call(
                request,
                true,
                |mut c, r| async move { c.describe_port(r).await },
            )
            .await?;
        Ok(Described {
            description: portolan::convert::description_from_pb(&response)?,
            version: response.version,
            content_id: ContentId(response.state_id),
        })
    }

    /// The server's findings on the port specs of `manifest` (its
    /// objects; document errors stay with whoever read the YAML), with the
    /// rules `portolan lint` runs, against the server's registry and mesh
    /// hints: the findings (at most 256) and how many more the server
    /// left out. A request is at most 64 KiB (the server's limit; a few
    /// hundred typical objects), 1,000 objects and 1,024 ports.
    pub async fn lint_ports(
        &self,
        manifest: &portolan_lint::Manifest,
        options: &portolan_lint::Options,
    ) -> Result<(Vec<portolan_lint::Finding>, u32), Error> {
        let request = pb::LintPortsRequest {
            objects: portolan::convert::objects_to_pb(manifest),
            meshes: options
                .meshes
                .iter()
                .map(|m| portolan::convert::mesh_to_pb(*m).into())
                .collect(),
        };
        let response = self
            .call(
                request,
                true,
                |mut c, r| async move { c.lint_ports(r).await },
            )
            .await?;
        let findings = response
            .findings
            .iter()
            .map(portolan::convert::finding_from_pb)
            .collect::<Result<_, _>>()?;
        Ok((findings, response.omitted_findings))
    }

    /// What the server is serving.
    pub async fn registry_info(&self) -> Result<RegistryInfo, Error> {
        let response = self
            .call(pb::GetRegistryInfoRequest {}, true, |mut c, r| async move {
                c.get_registry_info(r).await
            })
            .await?;
        Ok(RegistryInfo::from_pb(response))
    }
}

/// A port's description ([`Client::describe_port`]) with the registry
/// version and state its records were read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    /// What the port means to a service mesh.
    pub description: portolan_registry::PortDescription,
    /// The registry version the records were read from.
    pub version: u64,
    /// The registry state the records were read from.
    pub content_id: ContentId,
}

/// The records of a scan stream, message after message (a message may
/// carry several records).
fn record_stream<M: Send + 'static>(
    stream: tonic::Streaming<M>,
    records: fn(M) -> Vec<pb::Record>,
) -> RecordStream {
    Box::pin(stream.flat_map(move |message| {
        let items: Vec<Result<Record, Error>> = match message {
            Err(status) => vec![Err(Error::from_status(status))],
            Ok(message) => records(message)
                .iter()
                .map(|record| Ok(portolan::convert::record_from_pb(record)?.1))
                .collect(),
        };
        futures::stream::iter(items)
    }))
}

fn lookup_from_pb(
    records: Vec<pb::Record>,
    version: u64,
    state_id: u64,
) -> Result<LookupResult, Error> {
    let records = records
        .iter()
        .map(|r| Ok(Arc::new(portolan::convert::record_from_pb(r)?.1)))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(LookupResult {
        version,
        content_id: ContentId(state_id),
        records,
    })
}
