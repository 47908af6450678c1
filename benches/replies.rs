//! Criterion benchmarks of making a lookup reply for the real 2026 IANA
//! CSV, the server's own work per lookup besides the transport:
//! * `reply_via_messages`: lookup, `convert::record_to_pb` for each record,
//!   then prost encoding of the generated response (what a plain tonic
//!   server does);
//! * `reply_from_kept_encodings`: lookup, then each record's encoding kept
//!   by the server (made once per record per registry version) in the
//!   prost-derived reply of `portolan::reply` (what the server does).
//!
//! Both produce the same bytes (see `tests/reply_real_data.rs`). Each
//! iteration answers the same 16 lookups: well-known ports, a port inside a
//! range, and names, and ends with every reply's bytes in one frame buffer
//! (as tonic encodes a reply), so each path pays for the copies it makes.
//!
//! Run: `cargo bench -p portolan --bench replies`. The CSV is the real one
//! committed under `data/real/` (see `portolan-test-support`).
// criterion_group! generates a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portolan::{convert, reply};
use portolan_registry::parse;
use portolan_server::service::lookup_records;
use portolan_server::state::RegistryState;
use portolan_server::validate::Lookup;
use prost::Message as _;

const PORTS: [u16; 12] = [22, 25, 53, 80, 110, 143, 443, 993, 3306, 5432, 6010, 8080];
const NAMES: [&str; 4] = ["http", "HTTPS", "ssh", "domain"];

fn benches(c: &mut Criterion) {
    let csv = std::fs::read(portolan_test_support::shared_file(
        "iana/service-names-port-numbers.csv",
    ))
    .expect("read the IANA CSV");
    let state = RegistryState::new(parse::parse(&csv, None).expect("parses").registry, 0);
    let index = state.index();
    // Every path ends with the reply's bytes in one frame buffer, as tonic
    // encodes a reply, so each pays for the copies it makes.
    let mut frame: Vec<u8> = Vec::with_capacity(64 * 1024);

    c.bench_function("reply_via_messages", |b| {
        b.iter(|| {
            frame.clear();
            for port in PORTS {
                let found = index.lookup_port(black_box(port), None);
                frame.extend_from_slice(&convert::lookup_port_to_pb(&found).encode_to_vec());
            }
            for name in NAMES {
                let found = index.lookup_name(black_box(name), None);
                frame.extend_from_slice(&convert::lookup_name_to_pb(&found).encode_to_vec());
            }
            frame.len()
        })
    });

    c.bench_function("reply_from_kept_encodings", |b| {
        b.iter(|| {
            frame.clear();
            for port in PORTS {
                let query = Lookup::Port {
                    port: black_box(port),
                    protocol: None,
                };
                let found = lookup_records(&state, &query).expect("found");
                reply::LookupPortResponse {
                    records: found.records,
                    version: found.version,
                    state_id: found.state_id,
                }
                .encode(&mut frame)
                .expect("a Vec grows");
            }
            for name in NAMES {
                let query = Lookup::Name {
                    name: black_box(name).to_string(),
                    protocol: None,
                };
                let found = lookup_records(&state, &query).expect("found");
                reply::LookupNameResponse {
                    records: found.records,
                    version: found.version,
                    state_id: found.state_id,
                }
                .encode(&mut frame)
                .expect("a Vec grows");
            }
            frame.len()
        })
    });
}

criterion_group!(replies, benches);
criterion_main!(replies);
