//! The in-tree mutation harness for every file the app and the CLI read through `imaging`:
//! PNG (8/16-bit), TIFF (8/16/32-bit, float), EDF, CBF (files written by fabio) and PyFAI PONI
//! calibrations. Valid seed files are mutated (bit flips, interesting values over header
//! fields, numbers in text headers replaced by huge or negative ones, cuts, duplications,
//! truncation) by a seeded generator and fed to the same entry points the app uses
//! (`load::load_gray`, then the plausibility check; `poni::parse_poni`). Each must return
//! `Ok` or `Err` — never panic — and no single allocation may exceed [`ALLOCATION_LIMIT`].
//!
//! CI runs the campaign itself, 10 000 mutations per seed (about 2 s in all);
//! `SYNTHSCOPE_FUZZ_ITERATIONS=100000 cargo test --release -p synthscope-imaging --test fuzz -- --nocapture`
//! runs a longer one. Each prints, per seed, how many files were read, refused and how large the largest allocation
//! was. An input that panicked (or allocated too much) is written to `target/fuzz-crashes/`;
//! once fixed it belongs in `tests/data/fuzz/`, where every file must be refused with less
//! than 1 MiB allocated (`regressions_stay_fixed`). Found so far: a 4.7 KB TIFF whose
//! PhotometricInterpretation tag claimed 8 million values made the `tiff` crate allocate
//! 266 MB (`tiff_tag_count_8M.tif`; now refused by `load::check_tiff_tags`), and PNG headers
//! asking for up to 80 MB from 2 KB files (`png_8000x8000_in_100_bytes.png`; now refused
//! before the buffer is allocated, as zlib cannot expand more than 1032:1).

// The only unsafe code in the workspace: a `GlobalAlloc` that counts the largest allocation
// (the trait is unsafe to implement); test-only, it forwards every call to `System` unchanged.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering};

use synthscope_imaging::Image;
use synthscope_imaging::codec::{
    encode_png_u8, encode_png_u16, encode_tiff_f32, encode_tiff_u8, encode_tiff_u16,
    encode_tiff_u32,
};
use synthscope_imaging::load::{MAX_PIXELS, load_gray};
use synthscope_imaging::plausibility;
use synthscope_imaging::poni::parse_poni;

/// The largest single allocation a decoder may make: the largest image it accepts
/// ([`MAX_PIXELS`]) at 8 bytes a pixel (a float copy beside the decoded samples is at most 4).
const ALLOCATION_LIMIT: usize = MAX_PIXELS * 8;

/// Counts the largest allocation since the last reset (this test binary only).
struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// xorshift64*: the mutations are the same on every machine for a given seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that break size arithmetic: zero, one, signed and unsigned extremes, powers of two.
const INTERESTING_U32: [u32; 10] = [
    0,
    1,
    0x7F,
    0xFF,
    0xFFFF,
    0x1_0000,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    0x4000_0000,
];

/// Number replacements for text headers (EDF, CBF, PONI).
const INTERESTING_NUMBERS: [&str; 8] = [
    "0",
    "-1",
    "99999999999",
    "4294967296",
    "1e308",
    "nan",
    "-2147483648",
    "",
];

/// One mutation of `seed`, 1–4 operations.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            b.push(rng.next() as u8);
        }
        let at = rng.below(b.len());
        match rng.below(8) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = [0u8, 0xFF, 0x7F, 0x80][rng.below(4)],
            2 => {
                let v = INTERESTING_U32[rng.below(INTERESTING_U32.len())];
                let bytes = if rng.below(2) == 0 {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                for (k, byte) in bytes.iter().enumerate() {
                    if let Some(slot) = b.get_mut(at + k) {
                        *slot = *byte;
                    }
                }
            }
            3 => {
                // Replace a run of digits (a number in a text header) by a hostile one.
                if let Some(start) = (at..b.len()).find(|&i| b[i].is_ascii_digit()) {
                    let end = (start..b.len())
                        .find(|&i| !b[i].is_ascii_digit() && b[i] != b'.')
                        .unwrap_or(b.len());
                    let n = INTERESTING_NUMBERS[rng.below(INTERESTING_NUMBERS.len())];
                    b.splice(start..end, n.bytes());
                }
            }
            4 => b.truncate(at),
            5 => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                b.drain(at..end);
            }
            6 => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                let copy = b[at..end].to_vec();
                let to = rng.below(b.len());
                b.splice(to..to, copy);
            }
            _ => {
                let n = 1 + rng.below(16);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(at..at, junk);
            }
        }
    }
    b
}

/// CRC-32 (ISO-HDLC, as PNG chunks use it).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Recomputes every PNG chunk's CRC after a mutation, so that the decoder reads past its
/// checksums into the chunk contents (IHDR fields, zlib streams) instead of stopping at them.
fn fix_png_crcs(mut b: Vec<u8>) -> Vec<u8> {
    let mut at = 8;
    while at + 12 <= b.len() {
        let len = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let end = at + 8 + len;
        if end + 4 > b.len() {
            break;
        }
        let crc = crc32(&b[at + 4..end]);
        b[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
    b
}

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

fn edf(data_type: &str, w: usize, h: usize, data: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "{{\nHeaderID = EH:000001:000000:000000 ;\nImage = 1 ;\nByteOrder = LowByteFirst ;\nDataType = {data_type} ;\nDim_1 = {w} ;\nDim_2 = {h} ;\nSize = {} ;\n",
        data.len()
    );
    while (head.len() + 2) % 512 != 0 {
        head.push(' ');
    }
    head.push_str("}\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(data);
    out
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
        ("EDF int32", edf("SignedInteger", w, h, &i32_bytes)),
        ("CBF (fabio, Pilatus)", data("pilatus_61x97.cbf")),
        ("CBF (fabio, u16)", data("unsigned16_20x33.cbf")),
    ]
}

fn iterations() -> usize {
    std::env::var("SYNTHSCOPE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// What happened to one format's mutations.
#[derive(Default)]
struct Tally {
    read: usize,
    refused: usize,
    panics: Vec<Vec<u8>>,
    largest_allocation: usize,
}

/// Feeds `count` mutations of `seed` to `read` (true = read, false = refused); PNG mutations
/// get their chunk CRCs recomputed.
fn campaign(seed: &[u8], count: usize, rng_seed: u64, read: impl Fn(&[u8]) -> bool) -> Tally {
    let mut rng = Rng(rng_seed | 1);
    let mut tally = Tally::default();
    let png = seed.starts_with(b"\x89PNG");
    for _ in 0..count {
        let mut input = mutate(seed, &mut rng);
        if png {
            input = fix_png_crcs(input);
        }
        LARGEST.store(0, Ordering::Relaxed);
        let outcome = panic::catch_unwind(panic::AssertUnwindSafe(|| read(&input)));
        let largest = LARGEST.load(Ordering::Relaxed);
        if largest > 64 << 20 && std::env::var("FUZZ_DEBUG").is_ok() {
            let _ = std::fs::write(format!("/tmp/big_{largest}.bin"), &input);
        }
        tally.largest_allocation = tally.largest_allocation.max(largest);
        match outcome {
            Ok(true) => tally.read += 1,
            Ok(false) => tally.refused += 1,
            Err(_) => tally.panics.push(input),
        }
    }
    tally
}

/// Saves inputs that panicked where a developer will find them.
fn keep_crashes(format: &str, panics: &[Vec<u8>]) {
    let dir = format!("{}/../../target/fuzz-crashes", env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::create_dir_all(&dir);
    for (i, input) in panics.iter().enumerate().take(20) {
        let name: String = format
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let _ = std::fs::write(format!("{dir}/{name}_{i}.bin"), input);
    }
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

fn report_and_check(format: &str, tally: &Tally) {
    println!(
        "{format:<22} {:>6} mutated files: {:>6} read, {:>6} refused, {} panics, largest allocation {:.1} MiB",
        tally.read + tally.refused + tally.panics.len(),
        tally.read,
        tally.refused,
        tally.panics.len(),
        tally.largest_allocation as f64 / (1 << 20) as f64
    );
    keep_crashes(format, &tally.panics);
    assert!(
        tally.panics.is_empty(),
        "{format}: {} inputs panicked (kept in target/fuzz-crashes/)",
        tally.panics.len()
    );
    assert!(
        tally.largest_allocation <= ALLOCATION_LIMIT,
        "{format}: an allocation of {} bytes (limit {ALLOCATION_LIMIT})",
        tally.largest_allocation
    );
}

/// One test, so that no other test's allocations are counted while it runs.
#[test]
fn mutated_files_are_read_or_refused_never_a_panic() {
    regressions_stay_fixed();
    // Silence the default hook: panics are counted, not printed 10 000 times.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let n = iterations();
    let mut results = Vec::new();
    for (k, (format, seed)) in image_seeds().iter().enumerate() {
        assert!(read_image(seed), "{format}: the seed itself must read");
        results.push((
            *format,
            campaign(seed, n, 0x9E37_79B9 + k as u64, read_image),
        ));
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
        results.push((*name, campaign(&seed, n, 0x51ED + k as u64, read)));
    }
    panic::set_hook(hook);
    for (format, tally) in &results {
        report_and_check(format, tally);
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
