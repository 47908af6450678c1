//! Hostile and malformed requests against a real server on `127.0.0.1:0`
//! serving the real 2026 IANA CSV, each answered with an exact gRPC status
//! code while other clients keep being served:
//!
//! * out-of-range ports, over-long names, unknown enum values:
//!   INVALID_ARGUMENT naming the field;
//! * a 1 MiB name: refused by the 64 KiB message size limit before any
//!   handler runs (OUT_OF_RANGE from tonic's decoder; RESOURCE_EXHAUSTED when
//!   the same request arrives gzip-compressed, i.e. a decompression bomb);
//! * invalid UTF-8 and broken protobuf, sent as raw bytes through a custom
//!   codec: INTERNAL (tonic's mapping of prost decode errors);
//! * an empty BatchLookup: an empty stream ending with OK;
//! * BatchLookup streams that never end: other clients are still served;
//! * more Watch streams than `--max-watch-streams`: RESOURCE_EXHAUSTED, and a
//!   freed slot is reusable;
//! * more calls on one connection than it may carry: the server advertises
//!   its limit in HTTP/2 SETTINGS (read here by a raw HTTP/2 client), so
//!   clients queue the rest themselves;
//! * clients that never read their ListRecords/Watch streams: the server
//!   process (the real binary, so its own VmRSS can be read from `/proc`)
//!   keeps answering within a deadline and its memory stays bounded.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use portolan::pb::port_registry_service_client::PortRegistryServiceClient;
use portolan::pb::{
    BatchLookupRequest, ListRecordsRequest, LookupNameRequest, LookupNameResponse,
    LookupPortRequest, LookupPortResponse, Protocol, SearchRequest, WatchMode, WatchRequest,
    batch_lookup_request::Query, watch_response,
};
use portolan_test_support::shared_file;
use prost::Message as _;
use prost::bytes::{Buf as _, BufMut as _};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

use support::{ServerProcess, eventually, start_server, test_args};

/// How long any single call made to prove "the server still serves" may take.
const SERVED_WITHIN: Duration = Duration::from_secs(5);

fn port_request(port: u32, protocol: i32) -> LookupPortRequest {
    LookupPortRequest { port, protocol }
}

fn name_request(name: String, protocol: i32) -> LookupNameRequest {
    LookupNameRequest { name, protocol }
}

/// Asserts `result` failed with `code` and a message containing `needle`.
#[track_caller]
fn assert_status<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, needle: &str) {
    let status = result.expect_err("the request should have been refused");
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    assert!(
        status.message().contains(needle),
        "status message {:?} should mention {needle:?}",
        status.message()
    );
}

/// A lookup that must succeed quickly: https is port 443/tcp.
async fn assert_serves(client: &mut PortRegistryServiceClient<Channel>) {
    let started = Instant::now();
    let answer = tokio::time::timeout(
        SERVED_WITHIN,
        client.lookup_port(port_request(443, Protocol::Tcp as i32)),
    )
    .await
    .expect("the server answered within the deadline")
    .expect("lookup 443/tcp")
    .into_inner();
    assert_eq!(answer.records[0].name.as_deref(), Some("https"));
    assert!(started.elapsed() < SERVED_WITHIN);
}

/// A fresh client on its own HTTP/2 connection.
async fn connect(addr: SocketAddr) -> PortRegistryServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    PortRegistryServiceClient::new(channel)
}

/// A client on its own HTTP/2 connection whose receive windows are the
/// protocol minimum (64 KiB), so a stream it does not read stalls the
/// server after 64 KiB instead of after the default 2 MiB window (which
/// would swallow a whole listing).
async fn connect_small_window(addr: SocketAddr) -> PortRegistryServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .expect("connect");
    PortRegistryServiceClient::new(channel)
}

#[tokio::test]
async fn malformed_and_oversized_unary_requests_get_exact_codes() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server(test_args(Some(&csv))).await;
    let mut client = server.ready_client().await;

    // Ports beyond 65535.
    assert_status(
        client.lookup_port(port_request(70_000, 0)).await,
        Code::InvalidArgument,
        "port",
    );
    assert_status(
        client.lookup_port(port_request(u32::MAX, 0)).await,
        Code::InvalidArgument,
        "4294967295",
    );
    assert_status(
        client
            .list_records(ListRecordsRequest {
                port_min: Some(70_000),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "port_min",
    );

    // Names: 255 bytes is the maximum (a valid, unknown name: NOT_FOUND);
    // 256 bytes is INVALID_ARGUMENT; empty is INVALID_ARGUMENT.
    assert_status(
        client.lookup_name(name_request("a".repeat(255), 0)).await,
        Code::NotFound,
        "",
    );
    assert_status(
        client.lookup_name(name_request("a".repeat(256), 0)).await,
        Code::InvalidArgument,
        "name",
    );
    assert_status(
        client.lookup_name(name_request(String::new(), 0)).await,
        Code::InvalidArgument,
        "name",
    );
    assert_status(
        client
            .search(SearchRequest {
                query: "q".repeat(257),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "query",
    );

    // Unknown enum values (protocol = 99) and PROTOCOL_OTHER.
    assert_status(
        client.lookup_port(port_request(443, 99)).await,
        Code::InvalidArgument,
        "protocol",
    );
    assert_status(
        client.lookup_name(name_request("https".into(), 99)).await,
        Code::InvalidArgument,
        "protocol",
    );
    assert_status(
        client
            .lookup_port(port_request(443, Protocol::Other as i32))
            .await,
        Code::InvalidArgument,
        "protocol",
    );
    assert_status(
        client
            .search(SearchRequest {
                query: "http".into(),
                protocol: 99,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "protocol",
    );
    assert_status(
        client
            .list_records(ListRecordsRequest {
                states: vec![99],
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "states",
    );
    assert_status(
        client
            .watch(WatchRequest {
                known_version: 0,
                known_state_id: 0,
                mode: 99,
            })
            .await,
        Code::InvalidArgument,
        "mode",
    );

    // A 1 MiB name is refused by the 64 KiB request size limit before any
    // handler runs: tonic's decoder answers OUT_OF_RANGE.
    let huge = "n".repeat(1 << 20);
    assert_status(
        client.lookup_name(name_request(huge.clone(), 0)).await,
        Code::OutOfRange,
        "too large",
    );
    // The same request gzip-compressed is about 1 KiB on the wire (a
    // decompression bomb); decompression stops at the limit with
    // RESOURCE_EXHAUSTED.
    let mut gzip_client = client.clone().send_compressed(CompressionEncoding::Gzip);
    assert_status(
        gzip_client.lookup_name(name_request(huge, 0)).await,
        Code::ResourceExhausted,
        "size limit",
    );

    // The connection that sent all of this is still served.
    assert_serves(&mut client).await;
    assert_serves(&mut gzip_client).await;
    server.stop().await;
}

/// A gRPC codec that sends and receives raw message bytes, so a test can put
/// anything on the wire (tonic's prost codec cannot encode invalid UTF-8).
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// The request path of PortRegistryService method `method` (e.g. `LookupName`).
fn method_path(method: &str) -> tonic::codegen::http::uri::PathAndQuery {
    format!("/portolan.v1.PortRegistryService/{method}")
        .try_into()
        .expect("a valid request path")
}

/// Sends `body` as the request message of PortRegistryService's unary method
/// `method`.
async fn raw_unary(channel: &Channel, method: &str, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    let path = method_path(method);
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// Sends `items` on the request stream of PortRegistryService's method `method`;
/// returns the first response item (or the status the stream ended with).
async fn raw_streaming_first(
    channel: &Channel,
    method: &str,
    items: Vec<Vec<u8>>,
) -> Result<Option<Vec<u8>>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    let path = method_path(method);
    let mut stream = grpc
        .streaming(
            tonic::Request::new(tokio_stream::iter(items)),
            path,
            RawCodec,
        )
        .await?
        .into_inner();
    stream.message().await
}

/// Asserts that `body`, sent as the request message of unary method
/// `method`, fails to decode: INTERNAL with a message containing `needle`.
async fn assert_undecodable(channel: &Channel, method: &str, body: Vec<u8>, needle: &str) {
    assert_status(
        raw_unary(channel, method, body).await,
        Code::Internal,
        needle,
    );
}

/// A message whose field 1 is any bytes: on the wire the same as a string
/// (or message) field 1, so it carries what a `String` cannot, such as
/// invalid UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct Field1 {
    #[prost(bytes = "vec", tag = "1")]
    value: Vec<u8>,
}

/// Protobuf field 1, length-delimited, holding `bytes`, encoded by prost.
fn length_delimited(field: u8, bytes: &[u8]) -> Vec<u8> {
    assert_eq!(field, 1, "only field 1 is needed");
    Field1 {
        value: bytes.to_vec(),
    }
    .encode_to_vec()
}

#[tokio::test]
async fn invalid_utf8_and_broken_protobuf_are_refused_by_decoding() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server(test_args(Some(&csv))).await;
    let mut client = server.ready_client().await;
    let channel = Channel::from_shared(server.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");

    // The raw path works: a well-formed LookupNameRequest{name: "https"}
    // sent as bytes decodes to the real answer.
    let ok = raw_unary(&channel, "LookupName", length_delimited(1, b"https"))
        .await
        .expect("well-formed raw request");
    let ok = LookupNameResponse::decode(ok.as_slice()).expect("a LookupNameResponse");
    assert!(ok.records.iter().any(|r| r.port == Some(443)));

    // Invalid UTF-8 in `string` fields: prost refuses to decode, and tonic
    // maps decode errors to INTERNAL before any handler runs.
    let bad_utf8: &[u8] = b"ht\xff\xfetp";
    assert_undecodable(
        &channel,
        "LookupName",
        length_delimited(1, bad_utf8),
        "UTF-8",
    )
    .await;
    assert_undecodable(
        &channel,
        "Search",
        length_delimited(1, b"\xc3\x28"),
        "UTF-8",
    )
    .await;
    // A BatchLookup item whose id is invalid UTF-8: the request stream is
    // broken, so the response stream ends with INTERNAL.
    assert_status(
        raw_streaming_first(&channel, "BatchLookup", vec![length_delimited(1, b"\x80")]).await,
        Code::Internal,
        "UTF-8",
    );
    // Not protobuf at all: a truncated varint, and a length running past
    // the end of the message.
    assert_undecodable(&channel, "LookupPort", vec![0x08, 0xff], "").await;
    assert_undecodable(&channel, "LookupName", vec![0x0a, 0x7f, b'a'], "").await;
    // A method that does not exist.
    assert_status(
        raw_unary(&channel, "DropTables", Vec::new()).await,
        Code::Unimplemented,
        "",
    );

    // The same connection, and a separate client, are still served.
    let again = raw_unary(
        &channel,
        "LookupPort",
        port_request(443, Protocol::Tcp as i32).encode_to_vec(),
    )
    .await
    .expect("raw lookup after the bad ones");
    let again = LookupPortResponse::decode(again.as_slice()).expect("a LookupPortResponse");
    assert_eq!(again.records[0].name.as_deref(), Some("https"));
    assert_serves(&mut client).await;
    server.stop().await;
}

#[tokio::test]
async fn empty_and_never_ending_batches() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = start_server(test_args(Some(&csv))).await;
    let mut client = server.ready_client().await;

    // No items, then the client closes its side: an empty stream, OK.
    let mut empty = client
        .batch_lookup(tokio_stream::iter(Vec::<BatchLookupRequest>::new()))
        .await
        .expect("an empty batch is accepted")
        .into_inner();
    assert_eq!(empty.message().await.expect("ends with OK"), None);

    // Batch streams that are opened and never end (the clients keep their
    // side open without sending), each on its own connection.
    const IDLE_BATCHES: usize = 32;
    let mut idle = Vec::new();
    for _ in 0..IDLE_BATCHES {
        let (tx, rx) = mpsc::channel::<BatchLookupRequest>(1);
        let mut idle_client = connect(server.addr).await;
        let response = tokio::time::timeout(
            SERVED_WITHIN,
            idle_client.batch_lookup(ReceiverStream::new(rx)),
        )
        .await
        .expect("the server answers the headers without waiting for items")
        .expect("batch accepted");
        idle.push((tx, response.into_inner(), idle_client));
    }

    // Other clients, old and new, are served meanwhile.
    for _ in 0..5 {
        assert_serves(&mut client).await;
        assert_serves(&mut connect(server.addr).await).await;
    }

    // An idle batch is still alive: an item sent now is answered.
    let (tx, responses, _) = &mut idle[IDLE_BATCHES / 2];
    tx.send(BatchLookupRequest {
        id: "late".into(),
        query: Some(Query::Name("ssh".into())),
        protocol: Protocol::Tcp as i32,
    })
    .await
    .expect("the stream is open");
    let answer = tokio::time::timeout(SERVED_WITHIN, responses.message())
        .await
        .expect("answered within the deadline")
        .expect("no error")
        .expect("one answer");
    assert_eq!(answer.id, "late");
    assert_eq!(answer.records[0].port, Some(22));
    assert!(answer.error.is_none());

    drop(idle);
    assert_serves(&mut client).await;
    server.stop().await;
}

#[tokio::test]
async fn watch_streams_beyond_the_limit_are_refused() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let mut args = test_args(Some(&csv));
    args.max_watch_streams = 4;
    let server = start_server(args).await;
    let mut client = server.ready_client().await;
    let invalidate = WatchRequest {
        known_version: 0,
        known_state_id: 0,
        mode: WatchMode::Invalidate as i32,
    };

    let mut open = Vec::new();
    for _ in 0..4 {
        let mut stream = client
            .watch(invalidate)
            .await
            .expect("within the limit")
            .into_inner();
        let first = stream.message().await.expect("no error").expect("an event");
        assert!(matches!(
            first.event,
            Some(watch_response::Event::Snapshot(_))
        ));
        open.push(stream);
    }
    // The fifth, from the same or another connection, is refused.
    assert_status(
        client.watch(invalidate).await,
        Code::ResourceExhausted,
        "limit 4",
    );
    assert_status(
        connect(server.addr).await.watch(invalidate).await,
        Code::ResourceExhausted,
        "Watch",
    );
    // Other methods are unaffected.
    assert_serves(&mut client).await;

    // Closing one stream frees its slot (the server notices the reset
    // asynchronously, hence the poll).
    drop(open.pop());
    let mut replacement = eventually(Duration::from_secs(5), "a freed Watch slot", || {
        let mut client = client.clone();
        async move { client.watch(invalidate).await.ok() }
    })
    .await
    .into_inner();
    assert!(replacement.message().await.expect("no error").is_some());
    assert_status(
        client.watch(invalidate).await,
        Code::ResourceExhausted,
        "limit 4",
    );
    drop(open);
    drop(replacement);
    server.stop().await;
}

#[tokio::test]
async fn clients_that_never_read_their_streams_do_not_hurt_the_server() {
    let csv = shared_file("iana/service-names-port-numbers.csv");
    let server = ServerProcess::start(&csv, &[]);
    let mut client = eventually(Duration::from_secs(30), "the server to load", || async {
        let mut client = PortRegistryServiceClient::connect(format!("http://{}", server.addr))
            .await
            .ok()?;
        client.lookup_port(port_request(443, 0)).await.ok()?;
        Some(client)
    })
    .await;

    // Warm up: one full listing read to the end, so allocator pools and
    // lazily built state exist before the baseline is taken.
    let mut full = client
        .list_records(ListRecordsRequest::default())
        .await
        .expect("list")
        .into_inner();
    let mut total = 0usize;
    while let Some(message) = full.message().await.expect("message") {
        total += message
            .records
            .iter()
            .map(|r| r.encoded_len())
            .sum::<usize>();
    }
    let baseline = server.rss_kib();

    // Streams opened and never polled, each on its own connection with a
    // 64 KiB window. First whole-registry listings (about 1.5 MiB encoded
    // each), then FULL-mode Watch streams starting with a snapshot of the
    // whole registry.
    const STALLED: usize = 16;
    let mut listings = Vec::new();
    for _ in 0..STALLED {
        let mut stalled_client = connect_small_window(server.addr).await;
        let stream = stalled_client
            .list_records(ListRecordsRequest::default())
            .await
            .expect("list accepted");
        listings.push((stalled_client, stream.into_inner()));
    }
    hold_while_serving(&mut client, server.addr).await;
    let with_listings = server.rss_kib();

    let mut watches = Vec::new();
    for _ in 0..STALLED {
        let mut stalled_client = connect_small_window(server.addr).await;
        let stream = stalled_client
            .watch(WatchRequest {
                known_version: 0,
                known_state_id: 0,
                mode: WatchMode::Full as i32,
            })
            .await
            .expect("watch accepted");
        watches.push((stalled_client, stream.into_inner()));
    }
    hold_while_serving(&mut client, server.addr).await;
    let with_watches = server.rss_kib();
    hold_while_serving(&mut client, server.addr).await;
    let later = server.rss_kib();

    let per_listing = with_listings.saturating_sub(baseline) / STALLED as u64;
    let per_watch = with_watches.saturating_sub(with_listings) / STALLED as u64;
    eprintln!(
        "server VmRSS: {baseline} KiB at rest; {with_listings} KiB with {STALLED} stalled \
         listings ({per_listing} KiB each; a whole listing is {} KiB encoded); \
         {with_watches} KiB with {STALLED} stalled FULL watches too ({per_watch} KiB each); \
         {later} KiB a second later",
        total / 1024
    );
    // A stalled listing costs the server a bounded queue (64 records) and
    // HTTP/2 buffers, far less than the listing it would otherwise hold.
    assert!(
        per_listing < (total / 1024 / 4) as u64,
        "a stalled listing costs {per_listing} KiB"
    );
    // A stalled FULL watch holds at most the parts queued for it: the
    // outbox (1 part) plus the part being written and the one being built,
    // 1,000 decoded records each, about 3,000 of the 14,512 records (a
    // fifth of the snapshot it would hold if it produced it all).
    assert!(
        per_watch < 3 * 1024,
        "a stalled FULL watch costs {per_watch} KiB"
    );
    // Nothing keeps growing while the readers stay stalled.
    assert!(
        later < with_watches + 4 * 1024,
        "server memory kept growing: {with_watches} KiB, then {later} KiB"
    );

    // The stalled streams are still open and deliver data when read at last.
    let first = tokio::time::timeout(SERVED_WITHIN, listings[0].1.message())
        .await
        .expect("the stalled listing delivers")
        .expect("no error")
        .expect("a message");
    assert_eq!(first.records[0].port, Some(0));
    let first = tokio::time::timeout(SERVED_WITHIN, watches[0].1.message())
        .await
        .expect("the stalled watch delivers")
        .expect("no error")
        .expect("an event");
    let Some(watch_response::Event::Snapshot(part)) = first.event else {
        panic!("a FULL watch from version 0 starts with a snapshot: {first:?}");
    };
    assert_eq!(part.total_records, 14_512);

    drop(listings);
    drop(watches);
    assert_serves(&mut client).await;
}

/// Keeps stalled streams idle on purpose for one second (so the server
/// fills every buffer flow control lets it), proving meanwhile that other
/// clients, on an existing and on a new connection, are served in time.
async fn hold_while_serving(client: &mut PortRegistryServiceClient<Channel>, addr: SocketAddr) {
    let held_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < held_until {
        assert_serves(client).await;
        assert_serves(&mut connect(addr).await).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The per-connection limit is HTTP/2's own: the server's SETTINGS frame
/// carries SETTINGS_MAX_CONCURRENT_STREAMS, so a client keeps its calls
/// beyond it queued on its side and the server holds nothing for them.
#[tokio::test]
async fn each_connection_is_limited_to_its_advertised_concurrent_streams() {
    use std::future::Future as _;
    use std::pin::Pin;
    use std::task::Poll;

    let server = start_server(test_args(None)).await;
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    // Until the server's SETTINGS arrive, this client may open any number
    // (set explicitly: h2's own default could change).
    let (requests, mut connection) = h2::client::Builder::new()
        .initial_max_send_streams(usize::MAX)
        .handshake::<_, prost::bytes::Bytes>(tcp)
        .await
        .expect("HTTP/2 handshake");
    assert_eq!(connection.max_concurrent_send_streams(), usize::MAX);
    let advertised = tokio::time::timeout(
        SERVED_WITHIN,
        std::future::poll_fn(|cx| {
            // Driving the connection reads the server's SETTINGS frame.
            if let Poll::Ready(result) = Pin::new(&mut connection).poll(cx) {
                return Poll::Ready(Err(result));
            }
            match connection.max_concurrent_send_streams() {
                usize::MAX => Poll::Pending,
                limit => Poll::Ready(Ok(limit)),
            }
        }),
    )
    .await
    .expect("the server's SETTINGS within the deadline")
    .expect("the connection stays open");
    assert_eq!(
        advertised,
        portolan_server::MAX_STREAMS_PER_CONNECTION as usize
    );
    assert_eq!(advertised, 256);
    drop((requests, connection));
    server.stop().await;
}
