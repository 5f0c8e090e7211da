//! The mutation harness shared by the decoders' fuzzing tests (`imaging` files, `labels`
//! zips and packs, `models` weights files): a seeded mutator, a counter of the largest
//! allocation and the campaign loop. Each test binary includes this file with `#[path]`, so
//! every campaign mutates, counts and reports the same way. Inputs that panic are written to
//! `target/fuzz-crashes/`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the largest allocation since the last reset (this test binary only).
pub struct Tracking;

pub static LARGEST: AtomicUsize = AtomicUsize::new(0);

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
pub struct Rng(u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that break size arithmetic: zero, one, signed and unsigned extremes, powers of two.
pub const INTERESTING_U32: [u32; 10] = [
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
pub const INTERESTING_NUMBERS: [&str; 8] = [
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
pub fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
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
pub fn crc32(data: &[u8]) -> u32 {
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
pub fn fix_png_crcs(mut b: Vec<u8>) -> Vec<u8> {
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

/// Mutations per seed: 10 000, or `SYNTHSCOPE_FUZZ_ITERATIONS`.
pub fn iterations() -> usize {
    std::env::var("SYNTHSCOPE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// What happened to one format's mutations.
#[derive(Default)]
pub struct Tally {
    /// Inputs read.
    pub read: usize,
    /// Inputs refused with an error.
    pub refused: usize,
    /// Inputs that panicked.
    pub panics: Vec<Vec<u8>>,
    /// The largest single allocation while reading any of them, bytes.
    pub largest_allocation: usize,
}

/// Feeds `count` mutations of `seed` to `read` (true = read, false = refused); PNG mutations
/// get their chunk CRCs recomputed.
pub fn campaign(seed: &[u8], count: usize, rng_seed: u64, read: impl Fn(&[u8]) -> bool) -> Tally {
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
pub fn keep_crashes(format: &str, panics: &[Vec<u8>]) {
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

/// Prints one format's line and fails on any panic or an allocation above `limit_bytes`.
pub fn report_and_check(format: &str, tally: &Tally, limit_bytes: usize) {
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
        tally.largest_allocation <= limit_bytes,
        "{format}: an allocation of {} bytes (limit {limit_bytes})",
        tally.largest_allocation
    );
}

/// Runs `f` with the default panic hook silenced (panics are counted, not printed), unless
/// `SYNTHSCOPE_FUZZ_LOUD` is set (to see where a panic comes from).
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    if std::env::var_os("SYNTHSCOPE_FUZZ_LOUD").is_some() {
        return f();
    }
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let out = f();
    panic::set_hook(hook);
    out
}
