//! `portolan lint` on the whole corpus (`tests/data/manifests`: 20 real
//! manifests, 2 MB, 160 ports): parsing plus every rule with both meshes,
//! beside YAML parsing alone as the baseline. Run with
//! `cargo bench -p portolan-lint --bench corpus`.

// criterion_group! generates a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::io::Read as _;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use portolan_lint::{Mesh, Options, yaml};
use portolan_registry::{Hints, Index};

fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/manifests");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|path| {
            let name = path.to_str()?;
            if name.ends_with(".yaml.gz") {
                let mut text = String::new();
                flate2::read::GzDecoder::new(std::fs::File::open(path).ok()?)
                    .read_to_string(&mut text)
                    .ok()?;
                Some(text)
            } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                std::fs::read_to_string(path).ok()
            } else {
                None
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let files = corpus();
    assert_eq!(files.len(), 20);
    let index = Index::new(portolan_registry::embedded::registry());
    let hints = Hints::embedded();
    let options = Options {
        meshes: vec![Mesh::Istio, Mesh::Linkerd],
    };
    let mut group = c.benchmark_group("corpus");
    group.sample_size(20);
    group.bench_function("parse", |b| {
        b.iter(|| {
            files
                .iter()
                .map(|t| yaml::parse(t).objects.len())
                .sum::<usize>()
        });
    });
    group.bench_function("parse+lint", |b| {
        b.iter(|| {
            files
                .iter()
                .map(|t| portolan_lint::lint_text(t, &index, hints, &options).len())
                .sum::<usize>()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
