//! Criterion benchmarks of one image (generation + PNG encoding, one thread).
//! `cargo bench -p synthscope-synth`; `synthscope bench generate` gives all-core throughput.

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use imaging::codec::FileFormat;
use synth::dataset;
use synth::scattering::SaxsConfig;
use synth::tem::TemConfig;
use synthscope_synth as synth;

fn saxs(c: &mut Criterion) {
    let mut group = c.benchmark_group("saxs");
    group.sample_size(10);
    for size in [256usize, 1000, 2048] {
        let cfg = SaxsConfig {
            size_px: size,
            ..SaxsConfig::default()
        };
        let mut i = 0u64;
        group.bench_function(format!("{size}x{size}+png"), |b| {
            b.iter(|| {
                i += 1;
                let s = dataset::generate_saxs(&cfg, 1, i).expect("valid config");
                black_box(dataset::saxs_record(&s, 1, i, FileFormat::Png).expect("encodes"))
            })
        });
    }
    group.finish();
}

fn tem(c: &mut Criterion) {
    let mut group = c.benchmark_group("tem");
    group.sample_size(10);
    for (w, h) in [(496usize, 96usize), (1024, 1024)] {
        let cfg = TemConfig {
            width_px: w,
            height_px: h,
            ..TemConfig::default()
        };
        let mut i = 0u64;
        group.bench_function(format!("{h}x{w}+png"), |b| {
            b.iter(|| {
                i += 1;
                let s = dataset::generate_tem(&cfg, 1, i).expect("valid config");
                black_box(dataset::tem_record(&s, 1, i, FileFormat::Png).expect("encodes"))
            })
        });
    }
    group.finish();
}

// criterion_group! generates an undocumented function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::saxs, super::tem);
}
criterion_main!(group::benches);
