//! Criterion benchmark of the beam-centre search on engine images (one thread), the costliest
//! step of preparing a detector image for the tagger when the centre is not given.
//! `cargo bench -p synthscope-synth --bench beam`; `synthscope bench tagger` gives the whole
//! classification on all cores.

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use imaging::scattering::estimate_beam_centre;
use synth::dataset;
use synth::scattering::SaxsConfig;
use synthscope_synth as synth;

/// Different engine images per size, searched in turn (patterns differ in how long the
/// search takes).
const IMAGES: u64 = 8;

fn beam(c: &mut Criterion) {
    let mut group = c.benchmark_group("beam centre");
    group.sample_size(20);
    for size in [256usize, 1000] {
        let cfg = SaxsConfig {
            size_px: size,
            ..SaxsConfig::default()
        };
        let images: Vec<imaging::Image<f32>> = (0..IMAGES)
            .map(|i| {
                let s = dataset::generate_saxs(&cfg, 5, i).expect("valid config");
                s.image.counts.map(|c| c as f32)
            })
            .collect();
        let mut i = 0;
        group.bench_function(format!("{size}x{size}"), |b| {
            b.iter(|| {
                i = (i + 1) % images.len();
                black_box(estimate_beam_centre(&images[i], None))
            })
        });
    }
    group.finish();
}

// criterion_group! generates an undocumented function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::beam);
}
criterion_main!(group::benches);
