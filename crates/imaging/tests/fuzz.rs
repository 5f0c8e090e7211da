//! The in-tree mutation harness for every file the app and the CLI read through `imaging`:
//! PNG (8/16-bit), TIFF (8/16/32-bit, float), JPEG (files written by Pillow), EDF, CBF (files
//! written by fabio), HDF5 (files written by h5py) and PyFAI PONI
//! calibrations. Valid seed files are mutated (bit flips, interesting values over header
//! fields, numbers in text headers replaced by huge or negative ones, cuts, duplications,
//! truncation) by a seeded generator and fed to the same entry points the app uses
//! (`load::load_gray`, then the plausibility check; `poni::parse_poni`). Each must return
//! `Ok` or `Err` — never panic — and no single allocation may exceed [`ALLOCATION_LIMIT`].
//! The harness itself (mutator, allocation counter, campaign) is `fuzzing/mod.rs`, shared with
//! the `labels` and `models` campaigns.
//!
//! CI runs the campaign itself, 10 000 mutations per seed (about 2 s in all);
//! `SYNTHSCOPE_FUZZ_ITERATIONS=100000 cargo test --release -p synthscope-imaging --test fuzz -- --nocapture`
//! runs a longer one. Each prints, per seed, how many files were read, refused and how large the largest allocation
//! was. An input that panicked (or allocated too much) is written to `target/fuzz-crashes/`;
//! once fixed it belongs in `tests/data/fuzz/`, where every file must be refused with less
//! than 1 MiB allocated (`regressions_stay_fixed`). Found so far: a 4.7 KB TIFF whose
//! PhotometricInterpretation tag claimed 8 million values made the `tiff` crate allocate
//! 266 MB (`tiff_tag_count_8M.tif`; now refused by `codec::check_tiff_tags`, which every TIFF reader runs), and PNG headers
//! asking for up to 80 MB from 2 KB files (`png_8000x8000_in_100_bytes.png`; now refused
//! before the buffer is allocated, as zlib cannot expand more than 1032:1).

// The only unsafe code in the workspace, in the shared harness: a `GlobalAlloc` that counts
// the largest allocation (the trait is unsafe to implement); test-only, it forwards every call
// to `System` unchanged.
#![allow(unsafe_code)]

mod fuzzing;

use std::sync::atomic::Ordering;

use fuzzing::{LARGEST, campaign, iterations, quietly, report_and_check};

use synthscope_imaging::Image;
use synthscope_imaging::codec::{
    encode_edf, encode_png_u8, encode_png_u16, encode_tiff_f32, encode_tiff_u8, encode_tiff_u16,
    encode_tiff_u32,
};
use synthscope_imaging::load::{MAX_PIXELS, load_gray};
use synthscope_imaging::plausibility;
use synthscope_imaging::poni::parse_poni;

/// The largest single allocation a decoder may make: the largest image it accepts
/// ([`MAX_PIXELS`]) at 8 bytes a pixel (a float copy beside the decoded samples is at most 4).
const ALLOCATION_LIMIT: usize = MAX_PIXELS * 8;

/// A small detector-like frame: counts from a ring and a gradient.
fn frame(w: usize, h: usize) -> Vec<u32> {
    (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f64 - 20.0, (i / w) as f64 - 14.0);
            let r = (x * x + y * y).sqrt();
            (40.0 * (-(r - 12.0).powi(2) / 8.0).exp() * 100.0 + (i % 7) as f64) as u32
        })
        .collect()
}

/// The seed files of each image format: (format, file).
fn image_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let (w, h) = (40, 28);
    let counts = frame(w, h);
    let img32 = Image::from_vec(w, h, counts.clone()).expect("size");
    let img16 = img32.map(|v| v.min(65_535) as u16);
    let img8 = img32.map(|v| (v / 16).min(255) as u8);
    let imgf = img32.map(|v| v as f32 * 0.5);
    let i32_bytes: Vec<u8> = counts
        .iter()
        .enumerate()
        .flat_map(|(i, &v)| if i % 97 == 0 { -1i32 } else { v as i32 }.to_le_bytes())
        .collect();
    let data = |name: &str| {
        std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")))
            .expect("test data")
    };
    vec![
        ("PNG 8-bit", encode_png_u8(&img8).expect("png")),
        ("PNG 16-bit", encode_png_u16(&img16).expect("png")),
        ("TIFF 8-bit", encode_tiff_u8(&img8).expect("tiff")),
        ("TIFF 16-bit", encode_tiff_u16(&img16).expect("tiff")),
        ("TIFF 32-bit", encode_tiff_u32(&img32).expect("tiff")),
        ("TIFF float", encode_tiff_f32(&imgf).expect("tiff")),
        (
            "EDF int32",
            encode_edf("SignedInteger", false, w, h, &i32_bytes),
        ),
        ("JPEG (Pillow, grey, baseline)", data("frame_gray.jpg")),
        (
            "JPEG (Pillow, colour, progressive, restarts)",
            data("frame_rgb_progressive.jpg"),
        ),
        ("CBF (fabio, Pilatus)", data("pilatus_61x97.cbf")),
        ("CBF (fabio, u16)", data("unsigned16_20x33.cbf")),
        ("HDF5 (h5py, gzip + shuffle u16)", data("nexus_gzip_u16.h5")),
        ("HDF5 (h5py, LZ4 u32)", data("lz4_u32.h5")),
        (
            "HDF5 (h5py, Eiger bitshuffle-LZ4)",
            data("eiger_data_000001.h5"),
        ),
    ]
}

/// The app's path for a dropped file: decode (with its limits), then the plausibility check.
fn read_image(bytes: &[u8]) -> bool {
    match load_gray(bytes, 8) {
        Ok(loaded) => {
            let image = loaded.image.to_f32();
            let _ = plausibility::check(&image, loaded.image.full_scale());
            true
        }
        Err(e) => {
            // Every refusal says something.
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

/// One test, so that no other test's allocations are counted while it runs.
#[test]
fn mutated_files_are_read_or_refused_never_a_panic() {
    regressions_stay_fixed();
    let n = iterations();
    let mut results = Vec::new();
    for (k, (format, seed)) in image_seeds().iter().enumerate() {
        assert!(read_image(seed), "{format}: the seed itself must read");
        let tally = quietly(|| campaign(seed, n, 0x9E37_79B9 + k as u64, read_image));
        results.push((*format, tally));
    }
    for (k, name) in ["generic_flat.poni", "pilatus1m_tilted.poni"]
        .iter()
        .enumerate()
    {
        let seed = std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")))
            .expect("test data");
        let read = |bytes: &[u8]| match parse_poni(&String::from_utf8_lossy(bytes)) {
            Ok(p) => {
                // What Classify and the CLI then do with it.
                let (x, y) = p.beam_centre_px();
                let _ = p.q_inv_angstrom(x + 10.0, y);
                let _ = p.geometry(64, 64);
                true
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        };
        results.push((
            *name,
            quietly(|| campaign(&seed, n, 0x51ED + k as u64, read)),
        ));
    }
    for (format, tally) in &results {
        report_and_check(format, tally, ALLOCATION_LIMIT);
    }
}

/// Inputs that once failed, kept after their fix: each is refused, allocating under 1 MiB.
/// (Run inside the campaign's test, so that no other test's allocations are counted.)
fn regressions_stay_fixed() {
    let dir = format!("{}/tests/data/fuzz", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/data/fuzz").flatten() {
        let bytes = std::fs::read(entry.path()).expect("readable");
        LARGEST.store(0, Ordering::Relaxed);
        let read = if entry.path().extension().is_some_and(|e| e == "poni") {
            parse_poni(&String::from_utf8_lossy(&bytes)).is_ok()
        } else {
            read_image(&bytes)
        };
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(!read, "{} should be refused", entry.path().display());
        assert!(
            largest < 1 << 20,
            "{}: allocated {largest} bytes",
            entry.path().display()
        );
        seen += 1;
    }
    assert!(seen >= 1, "the regression corpus is empty");
}
