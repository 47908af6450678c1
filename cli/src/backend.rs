//! Where answers come from: a Portolan server through
//! [`portolan_client::Client`], or the same [`Index`] the server uses, built
//! offline from `--data` or the embedded registry.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use futures::StreamExt as _;
use portolan_client::{Client, Error as ClientError, RegistryInfo, ScanFilter, TlsOptions};
use portolan_registry::{Index, LookupResult, Protocol, Record, Registry, SearchQuery};

use crate::args::{Global, Query};

/// A server connection or an offline index.
pub enum Backend {
    /// Talks to a server.
    Remote(Client),
    /// Answers from a local index.
    Offline(Index),
}

/// The outcome of a lookup: records, or nothing found.
pub enum Found {
    /// Records (non-empty) and their version.
    Some(LookupResult),
    /// Nothing found; the message says what was looked for.
    None(String),
}

/// The server could not be reached, or failed the call: exit status 3
/// (bad input, the caller's fault, is 2).
#[derive(Debug)]
pub struct ServerFailure(pub String);

impl std::fmt::Display for ServerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerFailure {}

/// One-line description of a client error, naming the endpoint for
/// connection failures. A refused request (INVALID_ARGUMENT, the caller's
/// input) is a plain error; anything else is a [`ServerFailure`].
pub fn describe(endpoint: &str, e: &ClientError) -> anyhow::Error {
    match e {
        ClientError::Unavailable { message } | ClientError::Transport { message } => {
            ServerFailure(format!("cannot connect to {endpoint}: {message}")).into()
        }
        ClientError::InvalidArgument { .. } => anyhow!("{endpoint}: {e}"),
        other => ServerFailure(format!("{endpoint}: {other}")).into(),
    }
}

/// What a lookup asked for, as messages name it: `port 443/tcp`,
/// `service https`.
fn what(query: &Query, proto: Option<&Protocol>) -> String {
    match (query, proto) {
        (Query::Port(p), Some(pr)) => format!("port {p}/{pr}"),
        (Query::Port(p), None) => format!("port {p}"),
        (Query::Name(n), Some(pr)) => format!("service {n}/{pr}"),
        (Query::Name(n), None) => format!("service {n}"),
    }
}

impl Backend {
    /// Builds the backend the global options ask for.
    pub async fn open(global: &Global) -> anyhow::Result<Self> {
        if global.offline {
            let registry = if global.data.is_empty() {
                portolan_registry::embedded::registry()
            } else {
                portolan_registry::layers::check_layer_names(
                    global.data.iter().map(|l| l.name.as_str()),
                )
                .map_err(|e| anyhow::anyhow!("--data: {e}"))?;
                let mut layers = Vec::with_capacity(global.data.len());
                for layer in &global.data {
                    layers.push((layer.name.clone(), load_file(&layer.path)?.0));
                }
                portolan_registry::layers::compose(layers)
            };
            return Ok(Self::Offline(Index::new(registry)));
        }
        let mut builder = Client::builder(global.endpoint.clone());
        if !global.timeout.is_zero() {
            builder = builder
                .timeout(global.timeout)
                .connect_timeout(global.timeout);
        }
        // An https:// endpoint speaks TLS even without TLS flags, verified
        // against the system's trust roots unless --tls-ca names a CA.
        if global.endpoint.starts_with("https://")
            || global.tls_ca.is_some()
            || global.tls_cert.is_some()
            || global.tls_domain.is_some()
        {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &global.tls_ca {
                tls = tls.ca_pem(read(ca)?);
            }
            if let (Some(cert), Some(key)) = (&global.tls_cert, &global.tls_key) {
                tls = tls.identity(read(cert)?, read(key)?);
            }
            if let Some(domain) = &global.tls_domain {
                tls = tls.domain(domain.clone());
            }
            builder = builder.tls(tls);
        }
        let client = builder
            .connect()
            .await
            .map_err(|e| describe(&global.endpoint, &e))?;
        Ok(Self::Remote(client))
    }

    fn endpoint(&self) -> &str {
        match self {
            Self::Remote(c) => c.endpoint(),
            Self::Offline(_) => "offline",
        }
    }

    /// Looks up many ports and names: against a server through one
    /// BatchLookup stream, offline from the index. Answers in the order
    /// asked; a failure of the stream (not of one key) is an error.
    pub async fn lookup_many(
        &self,
        queries: &[(Query, Option<Protocol>)],
    ) -> anyhow::Result<Vec<Found>> {
        let Self::Remote(client) = self else {
            let mut out = Vec::with_capacity(queries.len());
            for (query, proto) in queries {
                out.push(self.lookup(query, proto.as_ref()).await?);
            }
            return Ok(out);
        };
        let batch: Vec<portolan_client::BatchQuery> = queries
            .iter()
            .enumerate()
            .map(|(i, (query, proto))| portolan_client::BatchQuery {
                id: i.to_string(),
                target: match query {
                    Query::Port(p) => portolan_client::LookupTarget::Port(*p),
                    Query::Name(n) => portolan_client::LookupTarget::Name(n.clone()),
                },
                protocol: proto.clone(),
            })
            .collect();
        let mut stream = client
            .batch_lookup(futures::stream::iter(batch))
            .await
            .map_err(|e| describe(self.endpoint(), &e))?;
        let mut answers: Vec<Option<Found>> = (0..queries.len()).map(|_| None).collect();
        while let Some(item) = stream.next().await {
            let item = item.map_err(|e| describe(self.endpoint(), &e))?;
            // Ids are positions in `queries`; the server echoes them.
            let Some(index) = item.id.parse::<usize>().ok().filter(|i| *i < queries.len()) else {
                continue;
            };
            let (query, proto) = &queries[index];
            answers[index] = Some(match item.result {
                Ok(found) if !found.records.is_empty() => Found::Some(found),
                Ok(_) | Err(ClientError::NotFound { .. }) => {
                    Found::None(format!("no record for {}", what(query, proto.as_ref())))
                }
                Err(e) => return Err(describe(self.endpoint(), &e)),
            });
        }
        answers
            .into_iter()
            .map(|a| {
                a.ok_or_else(|| ServerFailure("the server left a query unanswered".into()).into())
            })
            .collect()
    }

    /// Looks up a port or a name.
    pub async fn lookup(&self, query: &Query, proto: Option<&Protocol>) -> anyhow::Result<Found> {
        let result = match self {
            Self::Offline(index) => match query {
                Query::Port(p) => index.lookup_port(*p, proto).into_records(),
                Query::Name(n) => index.lookup_name(n, proto).into_records(),
            },
            Self::Remote(client) => {
                let r = match query {
                    Query::Port(p) => client.lookup_port(*p, proto).await,
                    Query::Name(n) => client.lookup_name(n, proto).await,
                };
                match r {
                    Ok(r) => r,
                    Err(ClientError::NotFound { state_id, .. }) => LookupResult {
                        version: 0,
                        content_id: portolan_registry::ContentId(state_id),
                        records: Vec::new(),
                    },
                    Err(e) => return Err(describe(self.endpoint(), &e)),
                }
            }
        };
        if result.records.is_empty() {
            Ok(Found::None(format!("no record for {}", what(query, proto))))
        } else {
            Ok(Found::Some(result))
        }
    }

    /// Ranked search.
    pub async fn search(
        &self,
        text: &str,
        filter: &ScanFilter,
        limit: u32,
    ) -> anyhow::Result<Vec<Arc<Record>>> {
        match self {
            Self::Offline(index) => {
                let snapshot = index.snapshot();
                let query = SearchQuery {
                    text: text.to_string(),
                    filter: filter.to_registry_filter(),
                    limit: if limit == 0 {
                        SearchQuery::DEFAULT_LIMIT
                    } else {
                        limit as usize
                    },
                };
                Ok(snapshot
                    .search(&query)
                    .into_iter()
                    .map(|(_, (_, r))| Arc::clone(r))
                    .collect())
            }
            Self::Remote(client) => {
                let stream = client
                    .search(text, filter, limit)
                    .await
                    .map_err(|e| describe(self.endpoint(), &e))?;
                collect(stream, self.endpoint(), None).await
            }
        }
    }

    /// A filtered listing; `progress` ticks per record.
    pub async fn list(
        &self,
        filter: &ScanFilter,
        progress: Option<&indicatif::ProgressBar>,
    ) -> anyhow::Result<Vec<Arc<Record>>> {
        match self {
            Self::Offline(index) => {
                let filter = filter.to_registry_filter();
                Ok(index
                    .snapshot()
                    .list(&filter)
                    .map(|(_, r)| Arc::clone(r))
                    .collect())
            }
            Self::Remote(client) => {
                let stream = client
                    .list_records(filter)
                    .await
                    .map_err(|e| describe(self.endpoint(), &e))?;
                collect(stream, self.endpoint(), progress).await
            }
        }
    }

    /// The whole registry in source order (offline) or listing order
    /// (server), for export.
    pub async fn registry(
        &self,
        progress: Option<&indicatif::ProgressBar>,
    ) -> anyhow::Result<Registry> {
        match self {
            Self::Offline(index) => Ok(index.snapshot().to_registry()),
            Self::Remote(_) => {
                let records = self.list(&ScanFilter::default(), progress).await?;
                Ok(Registry::with_positions(
                    records.into_iter().map(Arc::unwrap_or_clone).collect(),
                    portolan_registry::SourceInfo::default(),
                ))
            }
        }
    }

    /// What a port means to a service mesh: against a server its
    /// DescribePort; offline, the same domain function over the index's
    /// lookup and the compiled-in hints. `None` when the port has neither
    /// records nor a hint.
    pub async fn describe(
        &self,
        port: u16,
        proto: Option<&Protocol>,
    ) -> anyhow::Result<Option<portolan_client::Described>> {
        match self {
            Self::Offline(index) => {
                let found = index.lookup_port(port, proto).into_records();
                Ok(portolan_registry::mesh::describe(
                    port,
                    proto,
                    found.records,
                    portolan_registry::Hints::embedded(),
                )
                .map(|description| portolan_client::Described {
                    description,
                    version: found.version,
                    content_id: found.content_id,
                }))
            }
            Self::Remote(client) => match client.describe_port(port, proto).await {
                Ok(described) => Ok(Some(described)),
                Err(ClientError::NotFound { .. }) => Ok(None),
                Err(e) => Err(describe(self.endpoint(), &e)),
            },
        }
    }

    /// Registry information.
    pub async fn info(&self) -> anyhow::Result<RegistryInfo> {
        match self {
            Self::Remote(client) => client
                .registry_info()
                .await
                .map_err(|e| describe(self.endpoint(), &e)),
            Self::Offline(index) => Ok(RegistryInfo::of_snapshot(&index.snapshot())),
        }
    }
}

async fn collect(
    mut stream: portolan_client::RecordStream,
    endpoint: &str,
    progress: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<Vec<Arc<Record>>> {
    let mut out = Vec::new();
    while let Some(record) = stream.next().await {
        out.push(Arc::new(record.map_err(|e| describe(endpoint, &e))?));
        if let Some(p) = progress {
            p.inc(1);
        }
    }
    Ok(out)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads and parses a registry file (format detected), with diagnostics.
pub fn load_file(path: &Path) -> anyhow::Result<(Registry, Vec<portolan_registry::Diagnostic>)> {
    let bytes = read(path)?;
    let mut parsed =
        portolan_registry::parse(&bytes, None).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    parsed.registry.source.path = path.display().to_string();
    Ok((parsed.registry, parsed.diagnostics))
}
