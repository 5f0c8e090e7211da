//! The taggers' two views of a detector image: the image resampled to a fixed square grid and
//! log-scaled as in the reference work, and the coefficient view around the beam centre on that
//! grid: its Fourier–Bessel coefficients followed by its ring statistics ([`super::rings`]),
//! ring features ([`super::peaks`]) and the same statistics of the *outer view*.
//!
//! The outer view: the ring statistics reach [`PROFILE_BINS`](super::rings::PROFILE_BINS) grid
//! pixels from the beam in 1-px bins, but with the beam near an edge or off the detector (a
//! binned large detector, a SAXS camera with the beam in a corner) the rings lie up to √2 × the
//! grid's side away, where only a coarse far profile sees them. The outer view takes the ring
//! statistics, ring features and fold scores again in radial bins widened until the farthest
//! valid pixel falls inside ([`OUTER_FEATURES`] values, after `ln` of the bin width). When every
//! valid pixel lies within reach of the beam the bins stay 1 px and the outer view repeats the
//! inner one.

use crate::{Image, ImageError};

use super::fourier_bessel::FourierBessel;
use super::peaks::{
    FOLD_FEATURES, PEAK_FEATURES, ring_features_and_folds, ring_features_and_folds_binned,
};
use super::rings::{PROFILE_BINS, RING_FEATURES, ring_features, ring_features_binned};

/// Length of the outer view's part of the coefficient view: ln(radial bin width), then ring
/// statistics, ring features and fold scores in radial bins widened to reach the far corner.
pub const OUTER_FEATURES: usize = 1 + RING_FEATURES + PEAK_FEATURES + FOLD_FEATURES;

/// Counts at which the log scale reaches 1: the 16-bit counter of the reference detector.
pub const FULL_SCALE_COUNTS: f64 = 65_536.0;

/// Coefficients (per disc radius) are multiplied by this before the signed log compression,
/// so that the smallest meaningful ones (≈ 10⁻³) land near the knee of ln(1 + x).
const COEFF_GAIN: f32 = 100.0;

/// The taggers' inputs for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggerInput {
    /// Side of the square grid in pixels.
    pub side_px: usize,
    /// `side × side` values ln(1 + I) / ln(65 536) in [0, 1]; 0 where masked.
    pub image: Vec<f32>,
    /// `side × side` flags: `true` where no valid detector pixel contributed.
    pub masked: Vec<bool>,
    /// Detector pixels per grid pixel.
    pub scale: f64,
    /// Beam centre on the grid (column, row) in grid pixels.
    pub beam_px: (f64, f64),
    /// The coefficient view around `beam_px`: the Fourier–Bessel features of `image` (880 for
    /// the reference basis) compressed as sign(c)·ln(1 + 100·|c|), then its ring statistics
    /// ([`super::rings::RING_FEATURES`] values), then its ring features
    /// ([`super::peaks::PEAK_FEATURES`] values), then the fold scores of the strongest rings
    /// ([`super::peaks::FOLD_FEATURES`] values), then the outer view ([`OUTER_FEATURES`]
    /// values); 2693 in all.
    pub coefficients: Vec<f32>,
}

/// A detector image on a square grid, log-scaled: the image view of the taggers and the input
/// of the realism classifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct LogGrid {
    /// `side × side` values ln(1 + I) / ln(65 536) in [0, 1]; 0 where masked.
    pub image: Vec<f32>,
    /// `true` where no valid detector pixel contributed.
    pub masked: Vec<bool>,
    /// Detector pixels per grid pixel.
    pub scale: f64,
}

/// Resamples `counts` onto a `side × side` grid. The image keeps its aspect ratio: its longer
/// side spans the grid, the rest of the grid is masked. Each grid pixel averages the valid
/// detector pixels (not masked, finite, not negative) whose centres fall in it, then takes
/// ln(1 + mean) / ln(65 536); a grid pixel with less than half of its detector pixels valid is
/// masked. Fails only for `side_px == 0`.
pub fn log_grid(
    counts: &Image<f32>,
    mask: Option<&[bool]>,
    side_px: usize,
) -> Result<LogGrid, ImageError> {
    let (w, h) = (counts.width(), counts.height());
    let side = side_px;
    if side == 0 {
        return Err(ImageError::Empty {
            width: 0,
            height: 0,
        });
    }
    let scale = w.max(h) as f64 / side as f64;
    let mut sum = vec![0.0f64; side * side];
    let mut valid = vec![0u32; side * side];
    let mut total = vec![0u32; side * side];
    let px = counts.pixels();
    // Grid cell of each detector column/row (pixel centre).
    let cell = |v: usize| (((v as f64 + 0.5) / scale) as usize).min(side - 1);
    let cols: Vec<usize> = (0..w).map(cell).collect();
    for y in 0..h {
        let row = cell(y) * side;
        for (x, &cx) in cols.iter().enumerate() {
            let i = y * w + x;
            let c = row + cx;
            total[c] += 1;
            let v = px[i];
            if v.is_finite() && v >= 0.0 && !mask.is_some_and(|m| m[i]) {
                sum[c] += f64::from(v);
                valid[c] += 1;
            }
        }
    }
    let log_full = FULL_SCALE_COUNTS.ln();
    let mut image = vec![0.0f32; side * side];
    let mut masked = vec![true; side * side];
    for c in 0..side * side {
        if valid[c] > 0 && 2 * valid[c] >= total[c] {
            image[c] = ((sum[c] / f64::from(valid[c])).ln_1p() / log_full).clamp(0.0, 1.0) as f32;
            masked[c] = false;
        }
    }
    Ok(LogGrid {
        image,
        masked,
        scale,
    })
}

/// Resamples `counts` onto a `side × side` grid ([`log_grid`]) and computes both views.
/// `basis` must have been built for `side / 2` px
/// ([`FourierBessel::reference`]`(side as f64 / 2.0)`); it is passed in so callers build it once.
/// Fails only for `side_px == 0`.
pub fn tagger_input(
    counts: &Image<f32>,
    mask: Option<&[bool]>,
    beam_x_px: f64,
    beam_y_px: f64,
    side_px: usize,
    basis: &FourierBessel,
) -> Result<TaggerInput, ImageError> {
    let side = side_px;
    let LogGrid {
        image,
        masked,
        scale,
    } = log_grid(counts, mask, side)?;
    let beam_px = (beam_x_px / scale, beam_y_px / scale);
    let grid = Image::from_vec(side, side, image)?;
    // Signed log compression: coefficients span orders of magnitude between the low orders of a
    // bright pattern and the high orders of a faint one; networks want inputs of order one.
    let mut coefficients: Vec<f32> = basis
        .coefficients(&grid, Some(&masked), beam_px.0, beam_px.1)
        .features()
        .into_iter()
        .map(|c| c.signum() * (c.abs() * COEFF_GAIN).ln_1p())
        .collect();
    coefficients.extend(ring_features(grid.pixels(), &masked, side, beam_px));
    let (peaks, folds) = ring_features_and_folds(grid.pixels(), &masked, side, beam_px);
    coefficients.extend(peaks);
    coefficients.extend(folds);
    coefficients.extend(outer_features(grid.pixels(), &masked, side, beam_px));
    Ok(TaggerInput {
        side_px: side,
        image: grid.pixels().to_vec(),
        masked,
        scale,
        beam_px,
        coefficients,
    })
}

/// The outer view's features ([`OUTER_FEATURES`]) of a `side × side` grid around `beam_px`:
/// ln f, then the ring statistics, ring features and fold scores in radial bins `f` px wide,
/// where `f ≥ 1` brings the farthest valid pixel centre within [`PROFILE_BINS`] − 1 bins.
fn outer_features(image: &[f32], masked: &[bool], side: usize, beam_px: (f64, f64)) -> Vec<f32> {
    let far_px = (0..side * side)
        .filter(|&i| !masked[i])
        .map(|i| {
            let dx = (i % side) as f64 + 0.5 - beam_px.0;
            let dy = (i / side) as f64 + 0.5 - beam_px.1;
            dx.hypot(dy)
        })
        .fold(0.0f64, f64::max);
    let px_per_bin = (far_px / (PROFILE_BINS - 1) as f64).max(1.0);
    let mut out = Vec::with_capacity(OUTER_FEATURES);
    out.push(px_per_bin.ln() as f32);
    out.extend(ring_features_binned(
        image, masked, side, beam_px, px_per_bin,
    ));
    let (peaks, folds) = ring_features_and_folds_binned(image, masked, side, beam_px, px_per_bin);
    out.extend(peaks);
    out.extend(folds);
    debug_assert_eq!(out.len(), OUTER_FEATURES);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1000_px_detector_becomes_256_px_with_log_scaling_and_its_mask() {
        // Flat 255 counts (ln 256 / ln 65536 = 0.5), a masked gap row band, a negative pixel.
        let (w, h) = (1000usize, 1000usize);
        let mut px = vec![255.0f32; w * h];
        px[5] = -1.0;
        let mut mask = vec![false; w * h];
        for y in 500..540 {
            for x in 0..w {
                mask[y * w + x] = true;
            }
        }
        let img = Image::from_vec(w, h, px).expect("sized");
        let basis = FourierBessel::new(4, 2, 128.0);
        let t = tagger_input(&img, Some(&mask), 480.0, 520.0, 256, &basis).expect("side > 0");
        assert_eq!(t.image.len(), 256 * 256);
        assert!((t.scale - 1000.0 / 256.0).abs() < 1e-12);
        assert!((t.image[0] - 0.5).abs() < 1e-6, "{}", t.image[0]);
        // Rows 500..540 of the detector are grid rows 128..138: masked, value 0.
        let g = |x: usize, y: usize| y * 256 + x;
        assert!(t.masked[g(10, 132)] && t.image[g(10, 132)] == 0.0);
        assert!(!t.masked[g(10, 100)]);
        assert!((t.beam_px.0 - 122.88).abs() < 1e-9 && (t.beam_px.1 - 133.12).abs() < 1e-9);
        assert_eq!(
            t.coefficients.len(),
            2 * 4 * 3
                + crate::scattering::RING_FEATURES
                + crate::scattering::PEAK_FEATURES
                + crate::scattering::FOLD_FEATURES
                + OUTER_FEATURES
        );
    }

    /// Counts of a `w × h` detector with a thin ring of `ring_px` around `beam` on a floor.
    fn ring_counts(w: usize, h: usize, beam: (f64, f64), ring_px: f64) -> Image<f32> {
        let px = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f64 + 0.5, (i / w) as f64 + 0.5);
                let r = (x - beam.0).hypot(y - beam.1);
                (20.0 + 3000.0 * (-0.5 * ((r - ring_px) / 1.5).powi(2)).exp()) as f32
            })
            .collect();
        Image::from_vec(w, h, px).expect("sized")
    }

    #[test]
    fn the_outer_view_finds_a_ring_beyond_the_inner_reach() {
        let basis = FourierBessel::new(2, 1, 128.0);
        // Both views of a `w × h` detector with a ring of `ring_px` around `beam`, and the
        // outer view alone.
        let views = |w: usize, h: usize, beam: (f64, f64), ring_px: f64| {
            let counts = ring_counts(w, h, beam, ring_px);
            let t = tagger_input(&counts, None, beam.0, beam.1, 256, &basis).expect("side > 0");
            let outer = t.coefficients[t.coefficients.len() - OUTER_FEATURES..].to_vec();
            (t, outer)
        };
        // Beam near a corner, ring 250 px out: beyond the 160 px of the inner statistics.
        let beam = (3.0, 4.0);
        let (t, o) = views(256, 256, beam, 250.0);
        let far_px = (256.0 - beam.0).hypot(256.0 - beam.1) - 0.5 * 2f64.sqrt();
        let px_per_bin = far_px / 159.0;
        assert!(
            (f64::from(o[0]) - px_per_bin.ln()).abs() < 1e-3,
            "{} {px_per_bin}",
            o[0]
        );
        // The strongest described ring (radius in bins / 160) is the one at 250 px.
        let first_ring_px = f64::from(o[1 + RING_FEATURES]) * 160.0 * px_per_bin;
        assert!(
            (first_ring_px - 250.0).abs() < 2.0 * px_per_bin,
            "{first_ring_px}"
        );
        // The inner ring features find no ring (nothing inside 160 px but the floor).
        let inner_first = t.coefficients[2 * 2 * 2 + RING_FEATURES];
        assert_eq!(inner_first, 0.0);
        // Every pixel within 160 px of the beam (the middle of a 256 × 128 detector): the bins
        // stay 1 px and the outer view repeats the inner one.
        let (t, o) = views(256, 128, (128.0, 64.0), 60.0);
        assert_eq!(o[0], 0.0);
        let inner = &t.coefficients[2 * 2 * 2..2 * 2 * 2 + OUTER_FEATURES - 1];
        assert_eq!(&o[1..], inner);
    }

    #[test]
    fn a_wide_detector_keeps_its_aspect_and_masks_the_rest() {
        let img = Image::from_vec(512, 256, vec![65_535.0f32; 512 * 256]).expect("sized");
        let t = tagger_input(
            &img,
            None,
            256.0,
            128.0,
            256,
            &FourierBessel::new(2, 1, 128.0),
        )
        .expect("side > 0");
        assert!((t.image[0] - 1.0).abs() < 1e-6);
        // The image fills the top half of the grid.
        assert!(!t.masked[127 * 256] && t.masked[128 * 256]);
    }
}
