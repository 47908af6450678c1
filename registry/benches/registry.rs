//! Criterion benchmarks of the registry core on the real 2026 IANA files:
//! parsing (CSV, XML), building the index, the content id (whole, and moved
//! by the CSV-to-XML diff), point lookups (exact port and a port inside a
//! range) and name lookups, and the same lookups over three layers.
//!
//! Run: `cargo bench -p portolan-registry --bench registry`. The files are
//! the real ones committed under `data/real/` (see `portolan-test-support`).
// criterion_group! generates a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use portolan_registry::{ContentId, Diff, Format, Index, Protocol, parse};

fn read(relative: &str) -> Vec<u8> {
    std::fs::read(portolan_test_support::shared_file(relative)).expect(relative)
}

fn benches(c: &mut Criterion) {
    let csv = read("iana/service-names-port-numbers.csv");
    let xml = read("iana/service-names-port-numbers-2026-04-24.xml");

    c.bench_function("parse_csv_full", |b| {
        b.iter(|| parse(black_box(&csv), None).expect("parses"))
    });
    c.bench_function("parse_xml_full", |b| {
        b.iter(|| parse(black_box(&xml), Some(Format::IanaXml)).expect("parses"))
    });
    let registry = parse(&csv, None).expect("parses").registry;
    // Inputs are cloned and outputs dropped outside the timed part.
    c.bench_function("index_build_full", |b| {
        b.iter_batched(|| registry.clone(), Index::new, BatchSize::LargeInput)
    });
    c.bench_function("parse_and_index_csv_full", |b| {
        b.iter_batched(
            || (),
            |()| Index::new(parse(black_box(&csv), None).expect("parses").registry),
            BatchSize::LargeInput,
        )
    });

    let keyed = portolan_registry::index::keyed_records(registry.records.clone());
    c.bench_function("content_id_full", |b| {
        b.iter(|| ContentId::of(black_box(&keyed)))
    });
    let next = parse(&read("iana/service-names-port-numbers.xml"), None)
        .expect("parses")
        .registry;
    let diff = Diff::between(
        &keyed,
        &portolan_registry::index::keyed_records(next.records),
    );
    let id = ContentId::of(&keyed);
    c.bench_function("content_id_after_csv_to_xml_diff", |b| {
        b.iter(|| black_box(id).after(black_box(&diff)))
    });

    layers(c, &registry);
    let index = Index::new(registry);
    c.bench_function("lookup_port_exact_443_tcp", |b| {
        b.iter(|| index.lookup_port(black_box(443), Some(&Protocol::Tcp)))
    });
    c.bench_function("lookup_port_in_range_6010_tcp", |b| {
        b.iter(|| index.lookup_port(black_box(6010), Some(&Protocol::Tcp)))
    });
    c.bench_function("lookup_port_any_protocol_80", |b| {
        b.iter(|| index.lookup_port(black_box(80), None))
    });
    c.bench_function("lookup_name_https", |b| {
        b.iter(|| index.lookup_name(black_box("https"), None))
    });
    c.bench_function("lookup_name_mixed_case_HTTP_tcp", |b| {
        b.iter(|| index.lookup_name(black_box("HTTP"), Some(&Protocol::Tcp)))
    });
    c.bench_function("lookup_port_miss_65000", |b| {
        b.iter(|| index.lookup_port(black_box(65000), None))
    });
}

/// The same lookups on the IANA registry alone (`layers1_*`) and as the
/// middle of three layers (`layers3_*`: a 4-record corporate services
/// file first, Debian's `/etc/services` last): 2692/tcp and 6010/tcp are
/// answered by the IANA layer only (the cost of layering itself), 443/tcp
/// by all three (a longer answer).
fn layers(c: &mut Criterion, iana: &portolan_registry::Registry) {
    let corp = parse(
        b"corp-web 443/tcp # Corp web\ncorp-db 15432/tcp\ncorp-metrics 9100/tcp\ncorp-new 19999/tcp\n",
        None,
    )
    .expect("parses")
    .registry;
    let local = parse(&read("etc/services-debian"), None)
        .expect("parses")
        .registry;
    let one = Index::new(iana.clone());
    let three = Index::new(portolan_registry::layers::compose(vec![
        ("corp".into(), corp),
        ("iana".into(), iana.clone()),
        ("local".into(), local),
    ]));
    for (label, index) in [("layers1", &one), ("layers3", &three)] {
        c.bench_function(&format!("{label}_lookup_port_2692_tcp"), |b| {
            b.iter(|| index.lookup_port(black_box(2692), Some(&Protocol::Tcp)))
        });
        c.bench_function(&format!("{label}_lookup_port_in_range_6010_tcp"), |b| {
            b.iter(|| index.lookup_port(black_box(6010), Some(&Protocol::Tcp)))
        });
        c.bench_function(&format!("{label}_lookup_port_443_tcp"), |b| {
            b.iter(|| index.lookup_port(black_box(443), Some(&Protocol::Tcp)))
        });
        c.bench_function(&format!("{label}_lookup_name_admins_lms"), |b| {
            b.iter(|| index.lookup_name(black_box("admins-lms"), None))
        });
    }
}

criterion_group!(registry, benches);
criterion_main!(registry);
