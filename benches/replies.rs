//! Criterion benchmarks of writing a lookup reply for the real 2026 IANA
//! CSV, the server's own work per lookup besides the transport:
//! * `reply_via_messages`: lookup, `convert::record_to_pb` for each record,
//!   then prost encoding (how the server wrote replies before `wire`);
//! * `reply_written_directly`: the lookup read in place and each record
//!   written by `portolan::wire` (how the server wrote replies before it
//!   kept what it wrote);
//! * `reply_from_kept_answer`: the answer the index keeps for the lookup's
//!   list, shared into the reply (what the server does now; the first
//!   iteration writes the answers, every later one shares them).
//!
//! All three produce the same bytes (see `tests/wire_real_data.rs`). Each
//! iteration answers the same 16 lookups: well-known ports, a port inside a
//! range, and names, and ends with every reply's bytes in one frame buffer
//! (as tonic encodes a reply), so each path pays for the copies it makes.
//!
//! Run: `cargo bench -p portolan --bench replies`. The CSV is the real one
//! committed under `data/real/` (see `portolan-test-support`).
// criterion_group! generates a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use portolan::convert;
use portolan::wire::{self, EncodedLookupResponse};
use portolan_registry::{Answer, Index, IndexEntry, parse};
use prost::Message as _;

const PORTS: [u16; 12] = [22, 25, 53, 80, 110, 143, 443, 993, 3306, 5432, 6010, 8080];
const NAMES: [&str; 4] = ["http", "HTTPS", "ssh", "domain"];

/// One reply written afresh from the entries, as the server wrote it
/// before it kept answers.
fn written_reply(
    version: u64,
    entries: &mut dyn Iterator<Item = &Arc<IndexEntry>>,
) -> EncodedLookupResponse {
    EncodedLookupResponse::new(entries.map(|e| (&e.key, &*e.record)), version)
}

/// One reply made of the kept answer, as the server makes it now.
fn kept_reply((version, answer): (u64, Option<Answer>)) -> Option<EncodedLookupResponse> {
    answer.map(|answer| EncodedLookupResponse::from_answer(answer, version))
}

fn benches(c: &mut Criterion) {
    let csv = std::fs::read(portolan_test_support::shared_file(
        "iana/service-names-port-numbers.csv",
    ))
    .expect("read the IANA CSV");
    let index = Index::new(parse::parse(&csv, None).expect("parses").registry);
    // Every path ends with the reply's bytes in one frame buffer, as tonic
    // encodes a reply, so each pays for the copies it makes.
    let mut frame: Vec<u8> = Vec::with_capacity(64 * 1024);

    c.bench_function("reply_via_messages", |b| {
        b.iter(|| {
            frame.clear();
            let mut send = |found: portolan_registry::EntryLookup| {
                frame.extend_from_slice(&convert::lookup_to_pb(&found).encode_to_vec());
            };
            for port in PORTS {
                send(index.lookup_port_entries(black_box(port), None));
            }
            for name in NAMES {
                send(index.lookup_name_entries(black_box(name), None));
            }
            frame.len()
        })
    });

    c.bench_function("reply_written_directly", |b| {
        b.iter(|| {
            frame.clear();
            for port in PORTS {
                let reply = index.read_port_entries(black_box(port), None, written_reply);
                reply.encode(&mut frame).expect("a Vec grows");
            }
            for name in NAMES {
                let reply = index.read_name_entries(black_box(name), None, written_reply);
                reply.encode(&mut frame).expect("a Vec grows");
            }
            frame.len()
        })
    });

    c.bench_function("reply_from_kept_answer", |b| {
        b.iter(|| {
            frame.clear();
            for port in PORTS {
                let reply =
                    kept_reply(index.port_answer(black_box(port), None, wire::lookup_answer));
                reply
                    .expect("found")
                    .encode(&mut frame)
                    .expect("a Vec grows");
            }
            for name in NAMES {
                let reply =
                    kept_reply(index.name_answer(black_box(name), None, wire::lookup_answer));
                reply
                    .expect("found")
                    .encode(&mut frame)
                    .expect("a Vec grows");
            }
            frame.len()
        })
    });
}

criterion_group!(replies, benches);
criterion_main!(replies);
