//! Is this a detector frame at all? A check run before the taggers and the realism ensemble,
//! which would otherwise give confident answers about a damaged file or a photograph.
//!
//! Each rule looks for something no photon-counting detector frame shows; the thresholds were
//! set on 600 engine frames (0 flagged except two the engine drew entirely empty) and are
//! tested on engine frames in `synth`'s tests:
//!
//! - **no signal**: every valid pixel has one value (an all-zero or all-saturated frame);
//! - **mostly at the maximum**: half of the valid pixels or more sit at the frame's largest value
//!   (a saturated exposure, or a two-level image such as a checkerboard);
//! - **beyond the counter**: counts of 2³¹ or more, or values that are not numbers: more than a
//!   photon-counting detector's counter holds, and more than the signed 32-bit integers that
//!   Pilatus and Eiger files store (the type's own largest value is taken as the marker of
//!   masked pixels that Eiger writers use, not as a count);
//! - **not counting noise** (integer-valued frames): a pixel differs from all its neighbours far
//!   more than counting statistics allow. Real structure is smooth along some direction (a ring
//!   along its arc), so each pixel's smallest difference to four neighbours is compared with the
//!   √ of its level; the median along a line is ≈ 0.3 for Poisson counts, at most 1.9 for engine
//!   frames, ≈ 33 for uniform 16-bit noise and more for random bytes (uniform 8-bit noise, ≈ 2,
//!   is left to the realism ensemble). Judged per row and per column: most lines rough → the whole frame; a few → garbage
//!   lines. Float frames are skipped: normalised or background-subtracted data need not follow
//!   counting statistics.
//!
//! Negative pixels are taken as masked (module gaps flagged −1/−2) and ignored throughout.

use crate::Image;
use serde::Serialize;

/// Roughness (the median over a line of each pixel's smallest |Δ| to a neighbour in four
/// directions, over √(level + 1)) above which a line is not counting noise. Poisson counts give
/// ≈ 0.3, engine frames at most 1.9 (840 frames; a dense lattice), uniform 16-bit noise ≈ 33.
pub const ROUGHNESS_LIMIT: f64 = 4.0;

/// Counts from this value up cannot come from a detector's counter (2³¹).
pub const COUNTER_LIMIT: f64 = 2_147_483_648.0;

/// Lines shorter than this are not judged for roughness (too few differences).
const MIN_LINE_PX: usize = 16;

/// What made a frame implausible.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// Every valid pixel has one value.
    NoSignal {
        /// That value.
        value: f64,
    },
    /// Half of the valid pixels or more sit at the frame's largest value.
    MostlyAtMaximum {
        /// The largest value.
        value: f64,
        /// The fraction of valid pixels at it.
        fraction: f64,
    },
    /// Pixels hold 2³¹ or more, or are not numbers.
    BeyondCounter {
        /// How many.
        pixels: usize,
        /// The largest finite value in the frame.
        max_value: f64,
    },
    /// Neighbouring pixels differ far more than counting noise allows, over the whole frame.
    NotCountingNoise {
        /// The median roughness of the frame's lines (≈ 0.3 for counts; see [`ROUGHNESS_LIMIT`]).
        roughness: f64,
    },
    /// Some rows or columns are far rougher than counting noise while the rest is not.
    GarbageLines {
        /// How many rows.
        rows: usize,
        /// How many columns.
        columns: usize,
        /// The first (at most 8) of those rows.
        first_rows: Vec<usize>,
        /// The first (at most 8) of those columns.
        first_columns: Vec<usize>,
    },
}

impl Problem {
    /// One sentence for the user.
    pub fn describe(&self) -> String {
        match self {
            Problem::NoSignal { value } => {
                format!("every pixel is {value}: there is no signal to judge")
            }
            Problem::MostlyAtMaximum { value, fraction } => format!(
                "{:.0} % of the pixels sit at the frame's maximum {value}: saturated, or not a counting image",
                fraction * 100.0
            ),
            Problem::BeyondCounter { pixels, max_value } => format!(
                "{pixels} pixels hold 2³¹ counts or more (largest {max_value:.4e}) or are not numbers: more than a detector's counter holds, so the file is probably damaged"
            ),
            Problem::NotCountingNoise { roughness } => format!(
                "neighbouring pixels differ {roughness:.0}× more than counting noise allows: this is not a photon-counting frame"
            ),
            Problem::GarbageLines {
                rows,
                columns,
                first_rows,
                first_columns,
            } => {
                let list = |what: &str, n: usize, first: &[usize]| {
                    (n > 0).then(|| {
                        let shown: Vec<String> = first.iter().map(|i| i.to_string()).collect();
                        let more = if n > first.len() { ", …" } else { "" };
                        format!("{n} {what} ({}{more})", shown.join(", "))
                    })
                };
                let parts: Vec<String> = [
                    list("rows", *rows, first_rows),
                    list("columns", *columns, first_columns),
                ]
                .into_iter()
                .flatten()
                .collect();
                format!(
                    "{} hold values that jump far beyond counting noise: garbage lines, probably a damaged file",
                    parts.join(" and ")
                )
            }
        }
    }
}

/// The check's verdict on one frame.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verdict {
    /// Everything found; empty when the frame is plausible.
    pub problems: Vec<Problem>,
}

impl Verdict {
    /// No rule fired: the models may judge the frame.
    pub fn plausible(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems as one message, or `None` when plausible.
    pub fn summary(&self) -> Option<String> {
        (!self.plausible()).then(|| {
            self.problems
                .iter()
                .map(Problem::describe)
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// Checks a frame. `full_scale` is the largest value of the file's integer sample type
/// (65 535 for 16-bit, 4 294 967 295 for 32-bit), taken as the masked-pixel marker; `None` for
/// float files.
pub fn check(image: &Image<f32>, full_scale: Option<f64>) -> Verdict {
    let pixels = image.pixels();
    // Compared as the f32 the pixels were converted to (4 294 967 295 becomes 2³²).
    let marker = full_scale
        .filter(|&m| m >= COUNTER_LIMIT)
        .map(|m| f64::from(m as f32));
    let is_marker = |v: f64| marker == Some(v);
    let mut problems = Vec::new();

    let mut beyond = 0usize;
    let mut max_finite = f64::NEG_INFINITY;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut valid = 0usize;
    let mut integer_valued = true;
    for &p in pixels {
        let v = f64::from(p);
        if !v.is_finite() {
            beyond += 1;
            continue;
        }
        if v < 0.0 || is_marker(v) {
            continue;
        }
        max_finite = max_finite.max(v);
        if v >= COUNTER_LIMIT {
            beyond += 1;
            continue;
        }
        valid += 1;
        lo = lo.min(v);
        hi = hi.max(v);
        integer_valued &= v.fract() == 0.0;
    }
    if beyond > 0 {
        problems.push(Problem::BeyondCounter {
            pixels: beyond,
            max_value: max_finite,
        });
    }
    if valid == 0 {
        return Verdict { problems };
    }
    if lo == hi {
        // Beside counts beyond the counter, "every pixel is 0" would not be true.
        if beyond == 0 {
            problems.push(Problem::NoSignal { value: lo });
        }
        return Verdict { problems };
    }
    let at_max = pixels
        .iter()
        .filter(|&&p| f64::from(p) == hi && !is_marker(hi))
        .count();
    let fraction = at_max as f64 / valid as f64;
    if fraction >= 0.5 {
        problems.push(Problem::MostlyAtMaximum {
            value: hi,
            fraction,
        });
    }
    if integer_valued {
        problems.extend(roughness_problem(image, &is_marker));
    }
    Verdict { problems }
}

/// The "not counting noise" rules: one problem for the whole frame, or one for a few lines.
fn roughness_problem(image: &Image<f32>, is_marker: &dyn Fn(f64) -> bool) -> Option<Problem> {
    let (w, h) = (image.width(), image.height());
    if w < 3 || h < 3 {
        return None;
    }
    let pixels = image.pixels();
    let at = |x: usize, y: usize| f64::from(pixels[y * w + x]);
    let valid = |v: f64| v.is_finite() && (0.0..COUNTER_LIMIT).contains(&v) && !is_marker(v);
    // Per interior pixel: the smallest |Δ| to its right, lower, lower-right and lower-left
    // neighbours over √(level + 1). Structure (rings, streaks, beamstop edges) is smooth along
    // at least one of the four directions; counting noise and garbage are rough along all.
    let roughness = |x: usize, y: usize| -> Option<f64> {
        if x == 0 || y == 0 || x + 1 >= w || y + 1 >= h {
            return None;
        }
        let c = at(x, y);
        let around = [
            at(x + 1, y),
            at(x, y + 1),
            at(x + 1, y + 1),
            at(x - 1, y + 1),
        ];
        if !valid(c) || !around.iter().all(|&v| valid(v)) {
            return None;
        }
        let smallest = around
            .iter()
            .map(|&v| (v - c).abs())
            .fold(f64::INFINITY, f64::min);
        Some(smallest / (c + 1.0).sqrt())
    };
    // [h][w], row-major like the image.
    let map: Vec<Option<f64>> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| roughness(x, y))
        .collect();
    let by_row: Vec<Vec<f64>> = (0..h)
        .map(|y| map[y * w..(y + 1) * w].iter().flatten().copied().collect())
        .collect();
    let by_column: Vec<Vec<f64>> = (0..w)
        .map(|x| map.iter().skip(x).step_by(w).flatten().copied().collect())
        .collect();
    let line_medians = |lines: Vec<Vec<f64>>| -> Vec<Option<f64>> {
        lines
            .into_iter()
            .map(|l| (l.len() >= MIN_LINE_PX).then(|| median(l)))
            .collect()
    };
    let (rows, columns) = (line_medians(by_row), line_medians(by_column));
    let judged: Vec<f64> = rows.iter().chain(&columns).flatten().copied().collect();
    if judged.is_empty() {
        return None;
    }
    let overall = median(judged);
    if overall > ROUGHNESS_LIMIT {
        return Some(Problem::NotCountingNoise { roughness: overall });
    }
    let rough = |lines: &[Option<f64>]| -> Vec<usize> {
        lines
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_some_and(|r| r > ROUGHNESS_LIMIT))
            .map(|(i, _)| i)
            .collect()
    };
    let (bad_rows, bad_columns) = (rough(&rows), rough(&columns));
    (!bad_rows.is_empty() || !bad_columns.is_empty()).then(|| Problem::GarbageLines {
        rows: bad_rows.len(),
        columns: bad_columns.len(),
        first_rows: bad_rows.into_iter().take(8).collect(),
        first_columns: bad_columns.into_iter().take(8).collect(),
    })
}

/// Median of a non-empty list (the upper one of the middle two).
fn median(mut v: Vec<f64>) -> f64 {
    let mid = v.len() / 2;
    v.select_nth_unstable_by(mid, f64::total_cmp);
    v[mid]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic Poisson-like frame: mean `level`, noise of counting statistics
    /// (a Box–Muller normal approximation with √level spread, rounded).
    fn counts(w: usize, h: usize, level: f64, seed: u64) -> Image<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let data = (0..w * h)
            .map(|_| {
                let (u1, u2) = (uniform(), uniform());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (level + z * level.sqrt()).round().max(0.0) as f32
            })
            .collect();
        Image::from_vec(w, h, data).expect("sizes match")
    }

    #[test]
    fn counting_frames_pass_whatever_their_level() {
        for level in [0.3, 4.0, 50.0, 5000.0] {
            let v = check(&counts(128, 96, level, 7), Some(65535.0));
            assert!(v.plausible(), "level {level}: {:?}", v.problems);
        }
    }

    #[test]
    fn constant_frames_have_no_signal() {
        let zeros = Image::from_vec(64, 64, vec![0.0f32; 64 * 64]).expect("sizes");
        assert_eq!(
            check(&zeros, Some(65535.0)).problems,
            vec![Problem::NoSignal { value: 0.0 }]
        );
        let saturated = Image::from_vec(64, 64, vec![65535.0f32; 64 * 64]).expect("sizes");
        assert!(!check(&saturated, Some(65535.0)).plausible());
    }

    #[test]
    fn a_saturated_exposure_and_a_checkerboard_are_mostly_at_the_maximum() {
        let mut frame = counts(64, 64, 100.0, 3);
        for (i, p) in frame.pixels_mut().iter_mut().enumerate() {
            if i % 10 < 7 {
                *p = 1_048_575.0;
            }
        }
        let v = check(&frame, Some(4_294_967_295.0));
        match &v.problems[0] {
            Problem::MostlyAtMaximum { value, fraction } => {
                assert_eq!(*value, 1_048_575.0);
                assert!((fraction - 0.7).abs() < 0.01, "{fraction}");
            }
            other => panic!("{other:?}"),
        }
        let board: Vec<f32> = (0..64 * 64)
            .map(|i| {
                if (i % 64 / 8 + i / 64 / 8) % 2 == 0 {
                    0.0
                } else {
                    255.0
                }
            })
            .collect();
        let v = check(&Image::from_vec(64, 64, board).expect("sizes"), Some(255.0));
        assert!(
            v.problems.iter().any(
                |p| matches!(p, Problem::MostlyAtMaximum { fraction, .. } if *fraction == 0.5)
            ),
            "{:?}",
            v.problems
        );
    }

    /// The damaged TIFF of the issue: 98 % zeros and one stripe of values near 2³².
    #[test]
    fn a_stripe_near_two_to_the_32_is_beyond_the_counter() {
        let (w, h) = (200, 100);
        let mut data = vec![0.0f32; w * h];
        for (i, p) in data[40 * w..42 * w].iter_mut().enumerate() {
            *p = 4.29e9 - (i % 17) as f32 * 1e6;
        }
        let v = check(
            &Image::from_vec(w, h, data).expect("sizes"),
            Some(4_294_967_295.0),
        );
        match &v.problems[..] {
            [Problem::BeyondCounter { pixels, .. }] => assert_eq!(*pixels, 2 * w),
            other => panic!("{other:?}"),
        }
        assert!(v.summary().expect("implausible").contains("damaged"));
    }

    #[test]
    fn the_types_largest_value_marks_masked_pixels_and_negatives_are_gaps() {
        let mut frame = counts(96, 64, 40.0, 11);
        for x in 0..96 {
            frame.pixels_mut()[10 * 96 + x] = 4_294_967_295.0;
            frame.pixels_mut()[30 * 96 + x] = -1.0;
        }
        let v = check(&frame, Some(4_294_967_295.0));
        assert!(v.plausible(), "{:?}", v.problems);
    }

    #[test]
    fn uniform_noise_is_not_counting_noise_and_garbage_rows_are_found() {
        let mut state = 99u64;
        let noise: Vec<f32> = (0..128 * 128)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((state >> 33) % 65536) as f32
            })
            .collect();
        let v = check(
            &Image::from_vec(128, 128, noise).expect("sizes"),
            Some(65535.0),
        );
        match &v.problems[..] {
            [Problem::NotCountingNoise { roughness }] => {
                // Uniform 16-bit noise: the smallest of four |Δ| ≈ 6 000 against √32 768 ≈ 181.
                assert!(*roughness > 20.0 && *roughness < 50.0, "{roughness}");
            }
            other => panic!("{other:?}"),
        }
        let mut frame = counts(128, 96, 20.0, 5);
        let mut state = 5u64;
        for x in 0..128 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            frame.pixels_mut()[50 * 128 + x] = ((state >> 33) % 60000) as f32;
        }
        match &check(&frame, Some(65535.0)).problems[..] {
            [
                Problem::GarbageLines {
                    rows: 1,
                    first_rows,
                    ..
                },
            ] => assert_eq!(first_rows, &vec![50]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn float_frames_are_not_held_to_counting_noise() {
        // Normalised data: counts × 1000 / monitor, not integers.
        let mut frame = counts(64, 64, 50.0, 2);
        for p in frame.pixels_mut() {
            *p = *p * 1000.0 / 3.7;
        }
        assert!(check(&frame, None).plausible());
    }
}
