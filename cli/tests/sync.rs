//! `portolan sync` end to end: the real `portolan` binary against an
//! upstream HTTP server started in the test on `127.0.0.1:0` (axum; a raw
//! socket where the response must be malformed on purpose), on the real
//! registry files, and, for the last step, a real `portolan-server`
//! watching the directory. Nothing sleeps to wait: waits poll with
//! deadlines.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portolan::pb::GetRegistryInfoRequest;
use portolan_test_support::server::ServerProcess;
use portolan_test_support::{eventually, shared_file};

const NAME: &str = "service-names-port-numbers.csv";

/// What the upstream saw: each request's path and headers, in order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, HeaderMap)>>>);

impl Seen {
    fn record(&self, path: &str, headers: &HeaderMap) -> usize {
        let mut seen = self.0.lock().unwrap();
        seen.push((path.to_string(), headers.clone()));
        seen.len()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn headers(&self, i: usize) -> HeaderMap {
        self.0.lock().unwrap()[i].1.clone()
    }

    fn paths(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
}

/// Serves `router` on `127.0.0.1:0` for the rest of the test.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn real(name: &str) -> Vec<u8> {
    std::fs::read(shared_file(name)).expect("real data file")
}

fn csv_2026_04() -> Vec<u8> {
    real("iana/service-names-port-numbers.csv")
}

/// Runs `portolan sync --url URL --dir DIR` plus `extra`, off the
/// runtime's threads.
async fn sync(url: &str, dir: &Path, extra: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portolan"));
    cmd.args(["sync", "--url", url, "--dir"])
        .arg(dir)
        .args(extra)
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY");
    tokio::task::spawn_blocking(move || cmd.output().expect("run portolan"))
        .await
        .expect("blocking task")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_exit(output: &Output, code: i32) -> String {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {text}");
    text
}

/// The entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// (inode, mtime) of a file: a rewrite changes at least the inode.
fn identity(path: &Path) -> (u64, std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).expect("metadata");
    (m.ino(), m.modified().expect("mtime"))
}

fn validators(dir: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(dir.join(format!(".{NAME}.validators"))).expect("validators");
    serde_json::from_str(&text).expect("validators JSON")
}

/// A 200 with an ETag, then a 304 for a request that sends it back:
/// nothing is rewritten, the file or its validators.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_then_not_modified_rewrites_nothing() {
    let seen = Seen::default();
    let body = csv_2026_04();
    let router = Router::new()
        .route(
            "/{file}",
            get(
                |State((seen, body)): State<(Seen, Vec<u8>)>, headers: HeaderMap| async move {
                    seen.record("/", &headers);
                    if headers
                        .get(header::IF_NONE_MATCH)
                        .map(HeaderValue::as_bytes)
                        == Some(b"\"2026-04-24\"")
                    {
                        return StatusCode::NOT_MODIFIED.into_response();
                    }
                    ([(header::ETAG, "\"2026-04-24\"")], body).into_response()
                },
            ),
        )
        .with_state((seen.clone(), body.clone()));
    let url = format!("http://{}/{NAME}", serve(router).await);
    let dir = tempfile::tempdir().expect("dir");

    let text = assert_exit(&sync(&url, dir.path(), &[]).await, 0);
    assert!(
        text.contains("wrote") && text.contains("14512 records"),
        "{text}"
    );
    let target = dir.path().join(NAME);
    assert_eq!(std::fs::read(&target).expect("written"), body);
    assert_eq!(validators(dir.path())["etag"], "\"2026-04-24\"");
    assert!(seen.headers(0).get(header::IF_NONE_MATCH).is_none());
    let before = (
        identity(&target),
        identity(&dir.path().join(format!(".{NAME}.validators"))),
    );
    let validators_before = validators(dir.path());

    let text = assert_exit(&sync(&url, dir.path(), &[]).await, 0);
    assert!(text.contains("not modified"), "{text}");
    assert_eq!(seen.count(), 2);
    assert_eq!(
        seen.headers(1)
            .get(header::IF_NONE_MATCH)
            .map(HeaderValue::as_bytes),
        Some(&b"\"2026-04-24\""[..])
    );
    let after = (
        identity(&target),
        identity(&dir.path().join(format!(".{NAME}.validators"))),
    );
    assert_eq!(before, after, "a 304 rewrites nothing");
    assert_eq!(validators(dir.path()), validators_before);
    assert_eq!(
        entries(dir.path()),
        [format!(".{NAME}.validators"), NAME.to_string()]
    );
}

/// Without an ETag, Last-Modified goes back as If-Modified-Since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_modified_goes_back_as_if_modified_since() {
    const STAMP: &str = "Fri, 24 Apr 2026 10:00:00 GMT";
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/{file}",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                seen.record("/", &headers);
                if headers
                    .get(header::IF_MODIFIED_SINCE)
                    .map(HeaderValue::as_bytes)
                    == Some(STAMP.as_bytes())
                {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                ([(header::LAST_MODIFIED, STAMP)], csv_2026_04()).into_response()
            }),
        )
        .with_state(seen.clone());
    let url = format!("http://{}/{NAME}", serve(router).await);
    let dir = tempfile::tempdir().expect("dir");
    assert_exit(&sync(&url, dir.path(), &[]).await, 0);
    assert_eq!(validators(dir.path())["last_modified"], STAMP);
    let text = assert_exit(&sync(&url, dir.path(), &[]).await, 0);
    assert!(text.contains("not modified"), "{text}");
    let second = seen.headers(1);
    assert_eq!(
        second
            .get(header::IF_MODIFIED_SINCE)
            .map(HeaderValue::as_bytes),
        Some(STAMP.as_bytes())
    );
    assert!(second.get(header::IF_NONE_MATCH).is_none());
}

/// An upstream answering `failures` times with `status`, then the CSV.
async fn flaky_upstream(failures: usize, status: StatusCode) -> (String, Seen) {
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/{file}",
            get(
                move |State(seen): State<Seen>, headers: HeaderMap| async move {
                    if seen.record("/", &headers) <= failures {
                        return (status, "try later").into_response();
                    }
                    csv_2026_04().into_response()
                },
            ),
        )
        .with_state(seen.clone());
    (format!("http://{}/{NAME}", serve(router).await), seen)
}

/// Two 503s, then the file: retried with backoff, written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_with_backoff() {
    let (url, seen) = flaky_upstream(2, StatusCode::SERVICE_UNAVAILABLE).await;
    let dir = tempfile::tempdir().expect("dir");
    let text = assert_exit(
        &sync(
            &url,
            dir.path(),
            &["--retries", "3", "--retry-backoff", "10ms"],
        )
        .await,
        0,
    );
    assert_eq!(seen.count(), 3);
    assert!(
        text.contains("503 Service Unavailable; retry 1 of 3"),
        "{text}"
    );
    assert!(
        text.contains("retry 2 of 3") && !text.contains("retry 3"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(dir.path().join(NAME)).expect("written"),
        csv_2026_04()
    );
}

/// 500s until the retries run out: exit 3, the URL and the status named,
/// nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_after_retries_exits_3_and_writes_nothing() {
    let (url, seen) = flaky_upstream(usize::MAX, StatusCode::INTERNAL_SERVER_ERROR).await;
    let dir = tempfile::tempdir().expect("dir");
    let text = assert_exit(
        &sync(
            &url,
            dir.path(),
            &["--retries", "2", "--retry-backoff", "10ms"],
        )
        .await,
        3,
    );
    assert_eq!(seen.count(), 3);
    assert!(text.contains(&url), "{text}");
    assert!(
        text.contains("500 Internal Server Error (gave up after 3 attempts)"),
        "{text}"
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

/// A raw upstream: answers every connection with `head` and `body`, then
/// closes (whatever Content-Length said).
async fn raw_upstream(head: String, body: Vec<u8>) -> SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (head, body) = (head.clone(), body.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

/// A body cut short (Content-Length says more than arrives before the
/// connection closes) is refused: nothing written, exit 3 after retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_body_is_refused() {
    let body = csv_2026_04();
    let cut = body[..body.len() / 2].to_vec();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let addr = raw_upstream(head, cut).await;
    let url = format!("http://{addr}/{NAME}");
    let dir = tempfile::tempdir().expect("dir");
    let text = assert_exit(
        &sync(
            &url,
            dir.path(),
            &["--retries", "1", "--retry-backoff", "10ms"],
        )
        .await,
        3,
    );
    assert!(text.contains(&url), "{text}");
    assert!(text.contains("gave up after 2 attempts"), "{text}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

/// A body streamed without end (chunked, no Content-Length) is refused
/// once it passes --max-bytes: the client stops reading and closes, the
/// upstream sees its stream dropped having sent only a little more than
/// the limit, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_large_body_is_refused_while_streaming() {
    struct Endless {
        sent: Arc<AtomicU64>,
        dropped: Arc<AtomicBool>,
    }
    impl Drop for Endless {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }
    let sent = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    let state = (Arc::clone(&sent), Arc::clone(&dropped));
    let router = Router::new()
        .route(
            "/{file}",
            get(
                |State((sent, dropped)): State<(Arc<AtomicU64>, Arc<AtomicBool>)>| async move {
                    let endless = Endless { sent, dropped };
                    let chunk = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
                    let stream = futures::stream::unfold(endless, move |endless| {
                        let chunk = chunk.clone();
                        async move {
                            endless.sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                            Some((Ok::<_, std::io::Error>(chunk), endless))
                        }
                    });
                    Response::new(Body::from_stream(stream))
                },
            ),
        )
        .with_state(state);
    let url = format!("http://{}/{NAME}", serve(router).await);
    let dir = tempfile::tempdir().expect("dir");
    let limit: u64 = 1024 * 1024;
    let text = assert_exit(
        &sync(&url, dir.path(), &["--max-bytes", &limit.to_string()]).await,
        2,
    );
    assert!(
        text.contains(&url) && text.contains("over the --max-bytes limit of 1048576 bytes"),
        "{text}"
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    eventually(
        Duration::from_secs(10),
        "the upstream to see the client go",
        || {
            let dropped = dropped.load(Ordering::SeqCst);
            async move { dropped.then_some(()) }
        },
    )
    .await;
    // What was sent is the limit plus what the sockets buffer, not more.
    let sent = sent.load(Ordering::SeqCst);
    assert!(sent < limit + 16 * 1024 * 1024, "sent {sent} bytes");
}

/// A Content-Length over --max-bytes is refused before the body is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_over_the_limit_is_refused_at_once() {
    let router = Router::new().route("/{file}", get(|| async { csv_2026_04() }));
    let url = format!("http://{}/{NAME}", serve(router).await);
    let dir = tempfile::tempdir().expect("dir");
    let text = assert_exit(&sync(&url, dir.path(), &["--max-bytes", "100000"]).await, 2);
    let expected = format!(
        "Content-Length is {} bytes, over the --max-bytes limit of 100000 bytes",
        csv_2026_04().len()
    );
    assert!(text.contains(&expected), "{text}");
    assert!(entries(dir.path()).is_empty());
}

/// A body that stalls after its first bytes hits --request-timeout: exit 3
/// naming the timeout, nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_hits_the_request_timeout() {
    let router = Router::new().route(
        "/{file}",
        get(|| async {
            let first = futures::stream::once(async {
                Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"Service Name,Port"))
            });
            Response::new(Body::from_stream(futures::StreamExt::chain(
                first,
                futures::stream::pending(),
            )))
        }),
    );
    let url = format!("http://{}/{NAME}", serve(router).await);
    let dir = tempfile::tempdir().expect("dir");
    let started = Instant::now();
    let text = assert_exit(
        &sync(
            &url,
            dir.path(),
            &["--request-timeout", "500ms", "--retries", "0"],
        )
        .await,
        3,
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(text.contains(&url) && text.contains("timed out"), "{text}");
    assert!(entries(dir.path()).is_empty());
}

/// A gzip-encoded body is decoded and the registry written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_encoded_body_is_decoded() {
    use std::io::Write as _;
    let body = csv_2026_04();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&body).expect("gzip");
    let gz = encoder.finish().expect("gzip");
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/{file}",
            get(
                |State((seen, gz)): State<(Seen, Vec<u8>)>, headers: HeaderMap| async move {
                    seen.record("/", &headers);
                    ([(header::CONTENT_ENCODING, "gzip")], gz).into_response()
                },
            ),
        )
        .with_state((seen.clone(), gz));
    let url = format!("http://{}/{NAME}", serve(router).await);
    let dir = tempfile::tempdir().expect("dir");
    assert_exit(&sync(&url, dir.path(), &[]).await, 0);
    let accept = seen.headers(0);
    let accept = accept
        .get(header::ACCEPT_ENCODING)
        .expect("Accept-Encoding");
    assert!(accept.to_str().unwrap().contains("gzip"), "{accept:?}");
    assert_eq!(std::fs::read(dir.path().join(NAME)).expect("written"), body);
}

/// A 302 is followed; a chain longer than --max-redirects is refused
/// (exit 3, nothing written) after exactly that many hops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_up_to_the_limit() {
    let seen = Seen::default();
    let router = Router::new()
        .route(
            "/old/{file}",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, format!("/new/{NAME}"))]) }),
        )
        .route("/new/{file}", get(|| async { csv_2026_04() }))
        .route(
            "/loop/{n}",
            get(
                |State(seen): State<Seen>, UrlPath(n): UrlPath<u32>, headers: HeaderMap| async move {
                    seen.record(&format!("/loop/{n}"), &headers);
                    (StatusCode::FOUND, [(header::LOCATION, format!("/loop/{}", n + 1))])
                },
            ),
        )
        .with_state(seen.clone());
    let addr = serve(router).await;
    let dir = tempfile::tempdir().expect("dir");
    let text = assert_exit(
        &sync(&format!("http://{addr}/old/{NAME}"), dir.path(), &[]).await,
        0,
    );
    assert!(text.contains("wrote"), "{text}");
    assert_eq!(
        std::fs::read(dir.path().join(NAME)).expect("written"),
        csv_2026_04()
    );

    let empty = tempfile::tempdir().expect("dir");
    let url = format!("http://{addr}/loop/0");
    let text = assert_exit(
        &sync(
            &url,
            empty.path(),
            &["--file", NAME, "--max-redirects", "3"],
        )
        .await,
        3,
    );
    assert!(text.contains(&url) && text.contains("redirect"), "{text}");
    assert_eq!(seen.paths(), ["/loop/0", "/loop/1", "/loop/2", "/loop/3"]);
    assert!(entries(empty.path()).is_empty());
}

/// An upstream serving `body` at every path.
async fn upstream_of(body: Vec<u8>) -> String {
    let router = Router::new()
        .route(
            "/{file}",
            get(|State(body): State<Vec<u8>>| async move { body }),
        )
        .with_state(body);
    format!("http://{}/{NAME}", serve(router).await)
}

/// 1,000 records where the current file has 14,512 (93 % fewer): refused
/// by the shrink guard, exit 2, the current file untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shrink_guard_refuses_a_much_smaller_file() {
    let url = upstream_of(real("iana/sample-1000.csv")).await;
    let dir = tempfile::tempdir().expect("dir");
    let target = dir.path().join(NAME);
    std::fs::write(&target, csv_2026_04()).expect("current");
    let before = identity(&target);
    let text = assert_exit(&sync(&url, dir.path(), &[]).await, 2);
    assert!(
        text.contains("refusing a registry of 1000 records: it would drop 13512 of the current 14512 (more than the allowed 50%)"),
        "{text}"
    );
    assert!(text.contains(&url), "{text}");
    assert_eq!(identity(&target), before);
    assert_eq!(std::fs::read(&target).expect("current"), csv_2026_04());
    assert_eq!(entries(dir.path()), [NAME]);
}

/// A first download under --min-records is refused (101 records < 1000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_records_refuses_a_small_first_download() {
    let url = upstream_of(real("iana/registry-excerpt.txt")).await;
    let dir = tempfile::tempdir().expect("dir");
    let text = assert_exit(&sync(&url, dir.path(), &[]).await, 2);
    assert!(text.contains("fewer than the minimum of 1000"), "{text}");
    assert!(entries(dir.path()).is_empty());
}

/// In a loop (--interval), a failure is logged and the next interval
/// tries again; the process keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_survives_failures() {
    let (url, seen) = flaky_upstream(1, StatusCode::BAD_GATEWAY).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(["sync", "--url", &url, "--dir"])
        .arg(dir.path())
        .args(["--interval", "200ms", "--retries", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let target = dir.path().join(NAME);
    eventually(
        Duration::from_secs(20),
        "the second interval's download",
        || {
            let done = target.is_file() && seen.count() >= 2;
            async move { done.then_some(()) }
        },
    )
    .await;
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still running"
    );
    child.kill().expect("kill");
    let output = child.wait_with_output().expect("wait");
    let text = stderr(&output);
    assert!(
        text.contains("502 Bad Gateway") && text.contains("trying again in 200ms"),
        "{text}"
    );
    assert!(text.contains("wrote"), "{text}");
}

/// The whole path: seed the directory with the 2026-04 CSV (upstream
/// serves the same bytes: nothing to write), serve it with a real
/// `portolan-server` watching the directory, then let upstream publish the
/// real 2026-08 XML edition: refused while the current file is CSV (the
/// format guard), written with --format iana-xml (the CSV kept as
/// `.previous`), and served within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_edition_is_written_atomically_and_served_within_two_seconds() {
    let published = Arc::new(Mutex::new(csv_2026_04()));
    let router = Router::new()
        .route(
            "/{file}",
            get(|State(published): State<Arc<Mutex<Vec<u8>>>>| async move {
                published.lock().unwrap().clone()
            }),
        )
        .with_state(Arc::clone(&published));
    let url = format!("http://{}/{NAME}", serve(router).await);
    let dir = tempfile::tempdir().expect("dir");
    let seed: PathBuf = shared_file("iana/service-names-port-numbers.csv");
    let text = assert_exit(
        &sync(&url, dir.path(), &["--seed", seed.to_str().unwrap()]).await,
        0,
    );
    assert!(
        text.contains("seeded") && text.contains("same content as the current file"),
        "{text}"
    );
    let target = dir.path().join(NAME);
    assert_eq!(std::fs::read(&target).expect("seeded"), csv_2026_04());

    let server = ServerProcess::start(&target, &[]);
    let client = server.ready_client().await;
    let info = client
        .clone()
        .get_registry_info(GetRegistryInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert_eq!(info.record_count, 14_512);

    let xml = real("iana/service-names-port-numbers.xml");
    *published.lock().unwrap() = xml.clone();
    // The current file is CSV: an XML download is refused.
    let text = assert_exit(&sync(&url, dir.path(), &[]).await, 2);
    assert!(
        text.contains("not a valid iana-csv file (the current file's format)"),
        "{text}"
    );
    assert_eq!(std::fs::read(&target).expect("current"), csv_2026_04());

    let output = sync(&url, dir.path(), &["--format", "iana-xml"]).await;
    let written = Instant::now();
    let text = assert_exit(&output, 0);
    assert!(
        text.contains("wrote") && text.contains("14533 records, iana-xml"),
        "{text}"
    );
    assert_eq!(std::fs::read(&target).expect("new"), xml);
    assert_eq!(
        std::fs::read(dir.path().join(format!("{NAME}.previous"))).expect("previous"),
        csv_2026_04()
    );
    let info = eventually(
        Duration::from_secs(2),
        "the server to serve the new edition",
        || {
            let mut client = client.clone();
            async move {
                let info = client
                    .get_registry_info(GetRegistryInfoRequest {})
                    .await
                    .ok()?
                    .into_inner();
                (info.record_count == 14_533).then_some(info)
            }
        },
    )
    .await;
    assert!(written.elapsed() < Duration::from_secs(2));
    assert_eq!(info.source_format, "iana-xml");
    drop(server);
}
