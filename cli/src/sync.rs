//! `portolan sync`: keeps a registry file up to date from an upstream URL,
//! in the directory a server watches, with nobody at the keyboard.
//!
//! One sync:
//! 1. reads the current `DIR/NAME` (if any) and its validators
//!    (`DIR/.NAME.validators`: the URL, ETag and Last-Modified of the
//!    download that wrote it, and the SHA-256 of what was written, so
//!    validators never describe a file someone replaced since);
//! 2. sends one GET with `If-None-Match` / `If-Modified-Since`; a 304
//!    changes nothing;
//! 3. reads a 200's body as it streams, refusing it as soon as it passes
//!    `--max-bytes` (a `Content-Length` over it is refused before reading);
//! 4. validates it as the server validates a reload, with the registry
//!    crate's own checks: [`portolan_registry::parse_with_limits`] in the
//!    expected format within [`ParseLimits`], then
//!    [`ReloadGuard::check`] (at least `--min-records`, at most
//!    `--max-shrink` fewer records than the current file);
//! 5. writes it atomically (a temporary file in DIR, fsync, rename, fsync
//!    of DIR), after keeping the replaced file as `DIR/NAME.previous` the
//!    same way, then records the new validators.
//!
//! Network errors, timeouts, cut-off bodies and 5xx/408/429 answers are
//! retried with exponential backoff and jitter, `--retries` times; after
//! that the sync fails with [`ServerFailure`] (exit 3). A refused download
//! (too large, unparseable, wrong format, too few records, shrinking) and a
//! 4xx answer are not retried: exit 2. With `--interval` the sync repeats
//! forever, logging each failure and trying again at the next interval.
//!
//! The server's watcher reacts to `NAME` itself and to `..*` entries; the
//! temporary and side files here all start with a single `.` followed by
//! the name (or end in `.previous`), so only the final rename reloads it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures::StreamExt as _;
use portolan_registry::{Format, ParseLimits, ReloadGuard};
use rand::Rng as _;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::args::SyncArgs;
use crate::backend::ServerFailure;

/// The longest a retry waits, as a multiple of `--retry-backoff`.
const MAX_BACKOFF_FACTOR: u32 = 64;

/// `portolan sync`, validated: what to fetch, where to put it, and the
/// bounds of every step.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The upstream URL.
    url: reqwest::Url,
    /// The directory the server watches.
    dir: PathBuf,
    /// The registry file's name in `dir`.
    name: String,
    /// Sync again every interval (a sidecar), or once (a CronJob).
    interval: Option<Duration>,
    /// Copied to `dir/name` first when that does not exist.
    seed: Option<PathBuf>,
    /// The format a download must have; `None`: the current file's.
    format: Option<Format>,
    /// What a download must pass against the current file.
    guard: ReloadGuard,
    /// Bounds on the download (`max_bytes`) and its parse.
    limits: ParseLimits,
    connect_timeout: Duration,
    request_timeout: Duration,
    retries: u32,
    retry_backoff: Duration,
    max_redirects: usize,
}

impl Settings {
    /// Checks the arguments (URL, file name, directory) before anything
    /// touches the network.
    pub fn from_args(args: &SyncArgs) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(&args.url)
            .map_err(|e| anyhow!("--url {}: not a URL: {e}", args.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("--url {url}: only http:// and https:// are supported");
        }
        let name = match &args.file {
            Some(name) => name.clone(),
            None => url
                .path_segments()
                .and_then(|mut segments| segments.next_back())
                .filter(|last| !last.is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    anyhow!("--url {url} ends in no file name: name the file with --file")
                })?,
        };
        if name.contains(['/', '\\', '\0']) || name.starts_with('.') {
            bail!(
                "file name {name:?}: must be a plain name in --dir, not starting with `.` \
                 (those are the sync's own files)"
            );
        }
        if !args.dir.is_dir() {
            bail!("--dir {}: no such directory", args.dir.display());
        }
        Ok(Self {
            url,
            dir: args.dir.clone(),
            name,
            interval: args.interval,
            seed: args.seed.clone(),
            format: args.format,
            guard: ReloadGuard {
                max_shrink: args.max_shrink,
                min_records: args.min_records,
            },
            limits: ParseLimits {
                max_bytes: args.max_bytes,
                ..ParseLimits::default()
            },
            connect_timeout: args.connect_timeout,
            request_timeout: args.request_timeout,
            retries: args.retries,
            retry_backoff: args.retry_backoff,
            max_redirects: args.max_redirects,
        })
    }

    /// `dir/name`: the file the server reads.
    fn target(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// `dir/name.previous`: the file the last write replaced.
    fn previous(&self) -> PathBuf {
        self.dir.join(format!("{}.previous", self.name))
    }

    /// `dir/.name.validators`.
    fn validators(&self) -> PathBuf {
        self.dir.join(format!(".{}.validators", self.name))
    }
}

/// Runs `portolan sync`: seeds, then syncs once or every interval.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    if let Some(seed) = &settings.seed {
        seed_if_missing(&settings, seed)?;
    }
    let client = http_client(&settings)?;
    let Some(interval) = settings.interval else {
        let outcome = sync_with_retries(&settings, &client).await?;
        log(&outcome.to_string());
        return Ok(());
    };
    loop {
        match sync_with_retries(&settings, &client).await {
            Ok(outcome) => log(&outcome.to_string()),
            Err(e) => log(&format!(
                "{e:#}; trying again in {}",
                humantime::format_duration(interval)
            )),
        }
        tokio::time::sleep(interval).await;
    }
}

/// One line on stderr, as every CLI message (a sidecar's log).
fn log(message: &str) {
    eprintln!(
        "portolan: sync: {}",
        crate::output::escape_controls(message, &[])
    );
}

/// The HTTP client: rustls with the system's trust roots (reqwest's
/// platform verifier) over the ring provider tonic already uses, gzip
/// content-encoding, proxies from the environment, bounded redirects and
/// timeouts.
fn http_client(settings: &Settings) -> anyhow::Result<reqwest::Client> {
    // Another part of the process may have installed it already; either
    // way ring is the provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("portolan/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .redirect(reqwest::redirect::Policy::limited(settings.max_redirects))
        .build()
        .context("cannot build the HTTP client")
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 304: the current file is upstream's.
    NotModified {
        /// The URL.
        url: String,
    },
    /// 200 with the very bytes of the current file (validators updated).
    Unchanged {
        /// The URL.
        url: String,
    },
    /// A new file was written.
    Written {
        /// The file.
        path: PathBuf,
        /// Its record count.
        records: usize,
        /// Its format.
        format: Format,
        /// Whether a replaced file was kept as `NAME.previous`.
        previous_kept: bool,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotModified { url } => write!(f, "{url}: not modified"),
            Self::Unchanged { url } => write!(f, "{url}: same content as the current file"),
            Self::Written {
                path,
                records,
                format,
                previous_kept,
            } => {
                write!(f, "wrote {} ({records} records, {format})", path.display())?;
                if *previous_kept {
                    write!(
                        f,
                        "; the file it replaced is kept as {}.previous",
                        path.display()
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug)]
enum Failure {
    /// Network error, timeout, cut-off body, 5xx/408/429: worth retrying.
    Transient(String),
    /// Upstream misbehaves in a way retrying will not fix (too many
    /// redirects): exit 3 at once.
    Upstream(String),
    /// The download or the URL is refused (too large, a 4xx, invalid):
    /// exit 2 at once.
    Refused(anyhow::Error),
}

/// [`sync_once`], retried with backoff while it fails transiently.
async fn sync_with_retries(
    settings: &Settings,
    client: &reqwest::Client,
) -> anyhow::Result<Outcome> {
    let mut attempt = 0u32;
    loop {
        match sync_once(settings, client).await {
            Ok(outcome) => return Ok(outcome),
            Err(Failure::Refused(e)) => return Err(e),
            Err(Failure::Upstream(why)) => return Err(ServerFailure(why).into()),
            Err(Failure::Transient(why)) if attempt >= settings.retries => {
                let tries = attempt + 1;
                return Err(ServerFailure(format!(
                    "{why} (gave up after {tries} attempt{})",
                    if tries == 1 { "" } else { "s" }
                ))
                .into());
            }
            Err(Failure::Transient(why)) => {
                let delay = backoff(settings.retry_backoff, attempt);
                attempt += 1;
                log(&format!(
                    "{why}; retry {attempt} of {} in {} ms",
                    settings.retries,
                    delay.as_millis()
                ));
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// The delay before retry `attempt + 1`: `base` doubled per attempt (at
/// most [`MAX_BACKOFF_FACTOR`] times `base`), drawn between half and all
/// of it so that many pods do not retry in step.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt)
        .unwrap_or(u32::MAX)
        .min(MAX_BACKOFF_FACTOR);
    let full = base.saturating_mul(factor);
    full.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// The validators of the last download written, kept beside the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Validators {
    /// The URL they came from (a changed `--url` starts afresh).
    url: String,
    /// SHA-256 (hex) of the bytes written; validators of a file that was
    /// replaced since are not sent.
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
}

/// The current file: its bytes, parsed record count and format (`None`
/// when it does not parse).
struct Current {
    bytes: Vec<u8>,
    parsed: Option<(usize, Format)>,
}

/// Reads the current file, if there is one.
fn read_current(settings: &Settings) -> anyhow::Result<Option<Current>> {
    let path = settings.target();
    let bytes = match read_bounded(&path, settings.limits.max_bytes) {
        Ok(bytes) => bytes,
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let parsed = match portolan_registry::parse_with_limits(&bytes, None, &settings.limits) {
        Ok(parsed) => {
            let format = parsed.registry.source.format.unwrap_or(Format::IanaCsv);
            Some((parsed.registry.len(), format))
        }
        Err(e) => {
            log(&format!(
                "the current {} does not parse ({e}): a valid download replaces it \
                 without the shrink guard",
                path.display()
            ));
            None
        }
    };
    Ok(Some(Current { bytes, parsed }))
}

/// Reads a regular file of at most `max_bytes`.
fn read_bounded(path: &Path, max_bytes: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        bail!(
            "{}: more than the --max-bytes limit of {max_bytes} bytes",
            path.display()
        );
    }
    Ok(bytes)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The stored validators when they describe `current` and the same URL.
fn usable_validators(settings: &Settings, current: Option<&Current>) -> Option<Validators> {
    let current = current?;
    let text = std::fs::read_to_string(settings.validators()).ok()?;
    let validators: Validators = serde_json::from_str(&text).ok()?;
    (validators.url == settings.url.as_str() && validators.sha256 == sha256_hex(&current.bytes))
        .then_some(validators)
}

/// One conditional GET and, on a new valid body, the atomic write.
async fn sync_once(settings: &Settings, client: &reqwest::Client) -> Result<Outcome, Failure> {
    let current = read_current(settings).map_err(Failure::Refused)?;
    let validators = usable_validators(settings, current.as_ref());
    let url = settings.url.as_str();
    let mut request = client.get(settings.url.clone());
    if let Some(v) = &validators {
        if let Some(etag) = &v.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(last_modified) = &v.last_modified {
            request = request.header(IF_MODIFIED_SINCE, last_modified);
        }
    }
    let response = request.send().await.map_err(|e| request_failure(url, &e))?;
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        if validators.is_none() {
            return Err(Failure::Upstream(format!(
                "{url}: 304 Not Modified to a request without validators"
            )));
        }
        return Ok(Outcome::NotModified {
            url: url.to_string(),
        });
    }
    let shown = response.url().to_string();
    if !status.is_success() {
        let why = format!("{shown}: {status}");
        return Err(
            if status.is_server_error()
                || status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS
            {
                Failure::Transient(why)
            } else {
                Failure::Refused(anyhow!(why))
            },
        );
    }
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let fresh = Validators {
        url: url.to_string(),
        sha256: String::new(),
        etag: header(ETAG),
        last_modified: header(LAST_MODIFIED),
    };
    let body = read_body(response, &shown, settings.limits.max_bytes).await?;
    let fresh = Validators {
        sha256: sha256_hex(&body),
        ..fresh
    };
    if current.as_ref().is_some_and(|c| c.bytes == body) {
        write_validators(settings, &fresh).map_err(Failure::Refused)?;
        return Ok(Outcome::Unchanged {
            url: url.to_string(),
        });
    }
    let (records, format) = validate(settings, current.as_ref(), &body, &shown)?;
    let target = settings.target();
    if let Some(current) = &current {
        write_atomically(&settings.dir, &settings.previous(), &current.bytes)
            .map_err(Failure::Refused)?;
    }
    write_atomically(&settings.dir, &target, &body).map_err(Failure::Refused)?;
    write_validators(settings, &fresh).map_err(Failure::Refused)?;
    Ok(Outcome::Written {
        path: target,
        records,
        format,
        previous_kept: current.is_some(),
    })
}

/// A failed request: which URL, and why (the error's whole chain, which
/// names the connection refusal, the timeout or the redirect loop).
fn request_failure(url: &str, e: &reqwest::Error) -> Failure {
    let mut why = format!("{url}: ");
    if e.is_timeout() {
        why.push_str("timed out: ");
    }
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut first = true;
    while let Some(err) = source {
        if !first {
            why.push_str(": ");
        }
        why.push_str(&err.to_string());
        first = false;
        source = err.source();
    }
    if e.is_redirect() {
        Failure::Upstream(why)
    } else {
        Failure::Transient(why)
    }
}

/// Reads the body as it streams, refusing it once it passes `max_bytes`
/// (at once when its `Content-Length` says it will). With gzip
/// content-encoding the bound applies to the decoded bytes.
async fn read_body(
    response: reqwest::Response,
    url: &str,
    max_bytes: u64,
) -> Result<Vec<u8>, Failure> {
    let too_large = |size: String| {
        Failure::Refused(anyhow!(
            "{url}: refusing the download: {size}, over the --max-bytes limit of {max_bytes} bytes"
        ))
    };
    if let Some(length) = response.content_length()
        && length > max_bytes
    {
        return Err(too_large(format!("Content-Length is {length} bytes")));
    }
    let capacity = response.content_length().unwrap_or(0).min(max_bytes);
    let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| request_failure(url, &e))?;
        if (body.len() + chunk.len()) as u64 > max_bytes {
            // Dropping the stream closes the connection: nothing more is read.
            return Err(too_large(format!("the body passed {max_bytes} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The server's reload checks on a download: it parses in the expected
/// format within the limits, and passes the guard against the current
/// file. Returns its record count and format.
fn validate(
    settings: &Settings,
    current: Option<&Current>,
    body: &[u8],
    url: &str,
) -> Result<(usize, Format), Failure> {
    let current_parsed = current.and_then(|c| c.parsed);
    let (expected, why) = match (settings.format, current_parsed) {
        (Some(format), _) => (Some(format), "--format"),
        (None, Some((_, format))) => (Some(format), "the current file's format"),
        (None, None) => (None, ""),
    };
    let parsed =
        portolan_registry::parse_with_limits(body, expected, &settings.limits).map_err(|e| {
            Failure::Refused(match expected {
                Some(format) => {
                    anyhow!("{url}: refusing the download: not a valid {format} file ({why}): {e}")
                }
                None => anyhow!("{url}: refusing the download: {e}"),
            })
        })?;
    let records = parsed.registry.len();
    let format = parsed.registry.source.format.unwrap_or(Format::IanaCsv);
    settings
        .guard
        .check(current_parsed.map_or(0, |(n, _)| n), records)
        .map_err(|e| {
            Failure::Refused(anyhow!(
                "{url}: refusing the download: {e}; {} is left as it is",
                settings.target().display()
            ))
        })?;
    Ok((records, format))
}

fn write_validators(settings: &Settings, validators: &Validators) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(validators)?;
    text.push(b'\n');
    write_atomically(&settings.dir, &settings.validators(), &text)
}

/// Writes `bytes` to `path` (in `dir`) so that a reader sees the old file
/// or the new one, never a part: a temporary file in `dir`, fsync, rename
/// over `path`, fsync of `dir` (so the rename survives a crash). The
/// temporary file is removed if anything fails.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = if name.starts_with('.') {
        format!("{name}.")
    } else {
        format!(".{name}.")
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    // Readable by the server (another user in some deployments), as a
    // file written by `cp` would be.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot set the mode of {}", tmp.path().display()))?;
    }
    tmp.persist(path)
        .map_err(|e| anyhow!("cannot rename into {}: {}", path.display(), e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory {}", dir.display()))?;
    Ok(())
}

/// Copies `seed` to the target when there is no target yet, after checking
/// that it parses (in `--format` when given); written as-is (gzip stays
/// gzip).
fn seed_if_missing(settings: &Settings, seed: &Path) -> anyhow::Result<()> {
    let target = settings.target();
    if target.exists() {
        return Ok(());
    }
    let bytes = read_bounded(seed, settings.limits.max_bytes)
        .with_context(|| format!("--seed {}", seed.display()))?;
    let parsed = portolan_registry::parse_with_limits(&bytes, settings.format, &settings.limits)
        .map_err(|e| anyhow!("--seed {}: {e}", seed.display()))?;
    write_atomically(&settings.dir, &target, &bytes)?;
    log(&format!(
        "seeded {} from {} ({} records)",
        target.display(),
        seed.display(),
        parsed.registry.len()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 0..40 {
            let full = base * (1u32 << attempt.min(6));
            let d = backoff(base, attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }
}
