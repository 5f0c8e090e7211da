//! The polar grid the scattering generator draws on: rows uniform in √q or in ln q × uniform χ
//! around the beam centre, in the tagger's log scale.
//!
//! A sample's scattering is a function of (q, χ) centred on the beam: rings are rows of this
//! grid, symmetry is periodicity along χ. On a grid uniform in ln q a lattice is a fixed pattern
//! of row offsets whatever its first peak (ratios are offsets in ln q); on a √q grid the same
//! lattice's spacing in rows grows with its first peak's q. The grid is defined in q, not in
//! pixels, so one polar image decodes onto a detector of any size and beam centre
//! ([`PolarGrid::to_detector`]).
//!
//! Values are `v = 2·ln(1 + I)/ln(65 536) − 1` ∈ [−1, 1] for expected counts I (0 counts → −1,
//! the 16-bit saturation level → 1), the tagger's log scale mapped to the range the diffusion
//! networks work in.
//!
//! # Layout
//! Row-major `[q_bins, chi_bins]`: row j covers u(q) ∈ [u(q_min) + j·Δ, u(q_min) + (j+1)·Δ)
//! with u = ln q or q^γ ([`PolarGrid::q_exponent`]), column k covers
//! χ ∈ [−π + k·2π/chi_bins, …). χ is measured from +x towards up on screen.
//! Portable maths throughout: a polar image decodes to the same counts natively and in the
//! browser.

use crate::Image;
use crate::detector::Geometry;
use crate::math::Portable;
use serde::{Deserialize, Serialize};

/// Samples per pixel along the radius when decoding.
const RADIAL_SAMPLES: usize = 4;

/// ln(65 536): counts of the 16-bit saturation level.
const LOG_SATURATION: f64 = 11.090_354_888_959_125;

/// Expected counts → the grid's value scale.
#[inline]
pub fn counts_to_value(counts: f64) -> f32 {
    (2.0 * (1.0 + counts.max(0.0)).ln_p() / LOG_SATURATION - 1.0).clamp(-1.0, 1.0) as f32
}

/// The grid's value scale → expected counts.
#[inline]
pub fn value_to_counts(value: f32) -> f64 {
    ((f64::from(value.clamp(-1.0, 1.0)) + 1.0) * 0.5 * LOG_SATURATION).exp_p() - 1.0
}

/// A log-q × χ grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PolarGrid {
    /// Rows (log-spaced q).
    pub q_bins: usize,
    /// Columns (χ over a full turn).
    pub chi_bins: usize,
    /// Lower edge of the first row, Å⁻¹.
    pub q_min_inv_angstrom: f64,
    /// Upper edge of the last row, Å⁻¹.
    pub q_max_inv_angstrom: f64,
    /// Rows are uniform in q^γ for this γ > 0 (½: uniform in √q, finer near the beam than a
    /// linear grid, finer far out than a log grid), uniform in ln q for γ = 0.
    #[serde(default)]
    pub q_exponent: f64,
}

impl PolarGrid {
    /// The generator's grid: 256 rows uniform in √q from 0 to 0.9 Å⁻¹ (the reference detector's
    /// corners with the beam anywhere in −5 %…105 % of the image), 64 columns (5.6° each).
    /// Rows are 0.4 px wide near the beam and 2–3 px at q = 0.3 Å⁻¹ on a 256 px detector.
    /// Chosen over log-spaced and linear grids by the decoding error on engine images
    /// (`docs/diffusion.md`).
    pub fn reference() -> Self {
        Self {
            q_bins: 256,
            chi_bins: 64,
            q_min_inv_angstrom: 0.0,
            q_max_inv_angstrom: 0.9,
            q_exponent: 0.5,
        }
    }

    /// A log-spaced grid: rows uniform in ln q, so a ratio of q is the same number of rows
    /// anywhere (a lattice is a fixed pattern of offsets).
    pub fn log_spaced(q_bins: usize, chi_bins: usize, q_min: f64, q_max: f64) -> Self {
        Self {
            q_bins,
            chi_bins,
            q_min_inv_angstrom: q_min,
            q_max_inv_angstrom: q_max,
            q_exponent: 0.0,
        }
    }

    /// Checks the grid can be used; the message names the bad value.
    pub fn validate(&self) -> Result<(), String> {
        if self.q_bins < 2 || self.chi_bins < 2 {
            return Err(format!(
                "a polar grid needs at least 2 × 2 bins, not {} × {}",
                self.q_bins, self.chi_bins
            ));
        }
        if !(self.q_min_inv_angstrom >= 0.0
            && self.q_max_inv_angstrom > self.q_min_inv_angstrom
            && (self.q_exponent > 0.0 || self.q_min_inv_angstrom > 0.0))
        {
            return Err(format!(
                "q range {}…{} Å⁻¹ must be positive and increasing",
                self.q_min_inv_angstrom, self.q_max_inv_angstrom
            ));
        }
        Ok(())
    }

    /// Values in one polar image.
    pub fn len(&self) -> usize {
        self.q_bins * self.chi_bins
    }

    /// Whether the grid has no bins.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row coordinate's scale u(q): ln q or q^γ.
    fn warp(&self, q: f64) -> f64 {
        if self.q_exponent > 0.0 {
            q.max(0.0).powf_p(self.q_exponent)
        } else {
            q.max(1e-300).ln_p()
        }
    }

    fn unwarp(&self, u: f64) -> f64 {
        if self.q_exponent > 0.0 {
            u.max(0.0).powf_p(1.0 / self.q_exponent)
        } else {
            u.exp_p()
        }
    }

    /// Width of a row in u(q).
    fn row_step(&self) -> f64 {
        (self.warp(self.q_max_inv_angstrom) - self.warp(self.q_min_inv_angstrom))
            / self.q_bins as f64
    }

    /// q at fractional row coordinate `row` (row j spans [j, j+1); its centre is j + ½).
    pub fn q_at(&self, row: f64) -> f64 {
        self.unwarp(self.warp(self.q_min_inv_angstrom) + row * self.row_step())
    }

    /// Fractional row coordinate of q (may lie outside 0…q_bins).
    pub fn row_of(&self, q_inv_angstrom: f64) -> f64 {
        (self.warp(q_inv_angstrom) - self.warp(self.q_min_inv_angstrom)) / self.row_step()
    }

    /// χ in radians at fractional column coordinate `col`.
    pub fn chi_at(&self, col: f64) -> f64 {
        -std::f64::consts::PI + col * std::f64::consts::TAU / self.chi_bins as f64
    }

    /// Fractional column coordinate of χ, in [0, chi_bins).
    pub fn col_of(&self, chi_rad: f64) -> f64 {
        let c = (chi_rad + std::f64::consts::PI) / std::f64::consts::TAU * self.chi_bins as f64;
        c.rem_euclid(self.chi_bins as f64)
    }

    /// Bilinear value at (q, χ) between bin centres: circular in χ, held at the first and last
    /// row beyond the q range.
    ///
    /// # Panics
    /// If `values` is shorter than [`PolarGrid::len`].
    #[inline]
    pub fn value_at(&self, values: &[f32], q_inv_angstrom: f64, chi_rad: f64) -> f32 {
        let rows = self.q_bins;
        let cols = self.chi_bins;
        let r = (self.row_of(q_inv_angstrom) - 0.5).clamp(0.0, (rows - 1) as f64);
        let c = self.col_of(chi_rad) - 0.5;
        let (r0, fr) = (r.floor() as usize, (r - r.floor()) as f32);
        let r1 = (r0 + 1).min(rows - 1);
        let c_floor = c.floor();
        let fc = (c - c_floor) as f32;
        let c0 = (c_floor as isize).rem_euclid(cols as isize) as usize;
        let c1 = (c0 + 1) % cols;
        let v = |row: usize, col: usize| values[row * cols + col];
        let top = v(r0, c0) * (1.0 - fc) + v(r0, c1) * fc;
        let bottom = v(r1, c0) * (1.0 - fc) + v(r1, c1) * fc;
        top * (1.0 - fr) + bottom * fr
    }

    /// Decodes a polar image onto a detector: the expected counts of every pixel, averaged over
    /// the pixel's extent in radius (4 samples from r − ⅜ to r + ⅜ px, as the engine's renderer
    /// integrates over a pixel), so rings narrower than a pixel near the beam keep their
    /// intensity.
    pub fn to_detector(&self, values: &[f32], geometry: &Geometry) -> Result<Image<f32>, String> {
        self.validate()?;
        if values.len() != self.len() {
            return Err(format!(
                "a polar image of this grid has {} values, not {}",
                self.len(),
                values.len()
            ));
        }
        let (w, h) = (geometry.width_px, geometry.height_px);
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h {
            let dy = y as f64 + 0.5 - geometry.beam_y_px;
            for x in 0..w {
                let dx = x as f64 + 0.5 - geometry.beam_x_px;
                let (r, chi) = (dx.hypot_p(dy), (-dy).atan2_p(dx));
                let mut counts = 0.0;
                for k in 0..RADIAL_SAMPLES {
                    let dr = (k as f64 + 0.5) / RADIAL_SAMPLES as f64 - 0.5;
                    let q = geometry.q_at_radius((r + dr).max(0.0));
                    counts += value_to_counts(self.value_at(values, q, chi));
                }
                out.push((counts / RADIAL_SAMPLES as f64) as f32);
            }
        }
        Image::from_vec(w, h, out).map_err(|e| e.to_string())
    }

    /// Encodes a detector image: the mean counts of the valid pixels whose centres fall in each
    /// bin, in the grid's value scale, and how many pixels each bin averaged. Bins no pixel
    /// falls in (near the beam, where bins are smaller than pixels, and beyond the detector)
    /// take the value of the nearest row with pixels in the same column, or −1 in a column
    /// with none.
    ///
    /// `valid` (same size as the image, optional) marks the pixels to use.
    pub fn from_detector(
        &self,
        image: &Image<f32>,
        valid: Option<&[bool]>,
        geometry: &Geometry,
    ) -> Result<(Vec<f32>, Vec<u32>), String> {
        self.validate()?;
        let (w, h) = (image.width(), image.height());
        if let Some(v) = valid
            && v.len() != w * h
        {
            return Err(format!(
                "the mask has {} values for {} pixels",
                v.len(),
                w * h
            ));
        }
        let mut sum = vec![0f64; self.len()];
        let mut count = vec![0u32; self.len()];
        let px = image.pixels();
        for y in 0..h {
            let dy = y as f64 + 0.5 - geometry.beam_y_px;
            for x in 0..w {
                let i = y * w + x;
                if valid.is_some_and(|v| !v[i]) || !px[i].is_finite() {
                    continue;
                }
                let dx = x as f64 + 0.5 - geometry.beam_x_px;
                let row = self.row_of(geometry.q_at_radius(dx.hypot_p(dy))).floor();
                if row < 0.0 || row >= self.q_bins as f64 {
                    continue;
                }
                let col = (self.col_of((-dy).atan2_p(dx)) as usize).min(self.chi_bins - 1);
                let b = row as usize * self.chi_bins + col;
                sum[b] += f64::from(px[i].max(0.0));
                count[b] += 1;
            }
        }
        let mut out: Vec<f32> = sum
            .iter()
            .zip(&count)
            .map(|(&s, &n)| {
                if n > 0 {
                    counts_to_value(s / f64::from(n))
                } else {
                    f32::NAN
                }
            })
            .collect();
        // Fill empty bins from the nearest filled row of the same column.
        for col in 0..self.chi_bins {
            let filled: Vec<usize> = (0..self.q_bins)
                .filter(|&r| count[r * self.chi_bins + col] > 0)
                .collect();
            for r in 0..self.q_bins {
                let b = r * self.chi_bins + col;
                if count[b] > 0 {
                    continue;
                }
                out[b] = filled
                    .iter()
                    .min_by_key(|&&f| f.abs_diff(r))
                    .map_or(-1.0, |&f| out[f * self.chi_bins + col]);
            }
        }
        Ok((out, count))
    }
}

/// The `[chi_bins × chi_bins]` row-major matrix that keeps the angular harmonics
/// `|m| ≤ max_harmonic` of a row of χ bins and removes the rest (a symmetric projection:
/// `P[j][k] = (1/N)·Σ_{|m| ≤ M} cos(2π·m·(j − k)/N)`). Engine scattering varies slowly in χ
/// (rings, arcs, symmetry spots of low order), so a low band holds nearly all of it.
pub fn chi_low_pass(chi_bins: usize, max_harmonic: usize) -> Vec<f32> {
    let n = chi_bins;
    let top = max_harmonic.min(n / 2);
    let mut p = vec![0.0f32; n * n];
    for j in 0..n {
        for k in 0..n {
            let d = (j as f64 - k as f64) * std::f64::consts::TAU / n as f64;
            let mut sum = 1.0;
            for m in 1..=top {
                // The Nyquist harmonic of an even N appears once, not as a ± pair.
                let weight = if 2 * m == n { 1.0 } else { 2.0 };
                sum += weight * (m as f64 * d).cos();
            }
            p[j * n + k] = (sum / n as f64) as f32;
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chi_low_pass_keeps_low_harmonics_and_removes_high_ones() {
        let n = 64;
        let p = chi_low_pass(n, 16);
        let apply = |x: &[f32]| -> Vec<f32> {
            (0..n)
                .map(|j| (0..n).map(|k| p[j * n + k] * x[k]).sum())
                .collect()
        };
        let wave = |m: usize| -> Vec<f32> {
            (0..n)
                .map(|k| (std::f64::consts::TAU * (m * k) as f64 / n as f64 + 0.3).cos() as f32)
                .collect()
        };
        for m in [0, 1, 6, 16] {
            let x = wave(m);
            let err = apply(&x)
                .iter()
                .zip(&x)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-5, "harmonic {m} changed by {err}");
        }
        for m in [17, 24, 32] {
            let y = apply(&wave(m));
            assert!(y.iter().all(|v| v.abs() < 1e-5), "harmonic {m} kept");
        }
        // Everything kept when the band reaches Nyquist.
        let all = chi_low_pass(n, 32);
        for j in 0..n {
            for k in 0..n {
                let want = f32::from(u8::from(j == k));
                assert!((all[j * n + k] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn value_scale_round_trips_and_spans_minus_one_to_one() {
        assert_eq!(counts_to_value(0.0), -1.0);
        assert!((counts_to_value(65_535.0) - 1.0).abs() < 1e-6);
        assert!(
            (counts_to_value(255.0) - 0.0).abs() < 1e-6,
            "ln 256 / ln 65536 = ½"
        );
        for c in [0.5, 3.0, 100.0, 4000.0, 60_000.0] {
            let back = value_to_counts(counts_to_value(c));
            assert!((back / c - 1.0).abs() < 1e-4, "{c} → {back}");
        }
        assert_eq!(counts_to_value(-5.0), -1.0);
        assert_eq!(counts_to_value(1e9), 1.0);
    }

    #[test]
    fn rows_are_log_or_power_spaced_and_columns_wrap() {
        let g = PolarGrid::log_spaced(128, 64, 1e-3, 1.0);
        assert!((g.q_at(0.0) - 1e-3).abs() < 1e-12);
        assert!((g.q_at(128.0) - 1.0).abs() < 1e-9);
        // On a log grid a ratio is an offset: √3 is the same number of rows at any q.
        let d1 = g.row_of(0.02 * 3f64.sqrt()) - g.row_of(0.02);
        let d2 = g.row_of(0.07 * 3f64.sqrt()) - g.row_of(0.07);
        assert!(
            (d1 - d2).abs() < 1e-9 && (d1 - 3f64.sqrt().ln() / 1000f64.ln() * 128.0).abs() < 1e-9
        );
        // The reference grid is uniform in √q: row j starts at q = 0.9·(j/256)².
        let r = PolarGrid::reference();
        for j in [0.0, 1.0, 64.0, 200.5, 256.0] {
            assert!(
                (r.q_at(j) - 0.9 * (j / 256.0f64).powi(2)).abs() < 1e-12,
                "row {j}"
            );
            assert!((r.row_of(r.q_at(j)) - j).abs() < 1e-9);
        }
        assert!(r.validate().is_ok());
        assert!((g.col_of(-std::f64::consts::PI) - 0.0).abs() < 1e-12);
        assert!(
            (g.col_of(std::f64::consts::PI) - 0.0).abs() < 1e-9,
            "χ = π wraps to column 0"
        );
        assert!((g.chi_at(g.col_of(1.0)) - 1.0).abs() < 1e-12);
        assert!(PolarGrid { q_bins: 1, ..g }.validate().is_err());
        assert!(
            PolarGrid {
                q_min_inv_angstrom: 0.0,
                ..g
            }
            .validate()
            .is_err(),
            "ln 0"
        );
    }

    #[test]
    fn interpolation_is_exact_at_bin_centres_and_circular_in_chi() {
        let g = PolarGrid::log_spaced(4, 8, 0.01, 0.16);
        let values: Vec<f32> = (0..32).map(|i| (i as f32) / 40.0 - 0.4).collect();
        for r in 0..4 {
            for c in 0..8 {
                let v = g.value_at(&values, g.q_at(r as f64 + 0.5), g.chi_at(c as f64 + 0.5));
                assert!((v - values[r * 8 + c]).abs() < 1e-6, "({r}, {c})");
            }
        }
        // Halfway between the last and the first column: their mean.
        let v = g.value_at(&values, g.q_at(1.5), std::f64::consts::PI - 1e-12);
        assert!((v - 0.5 * (values[8 + 7] + values[8])).abs() < 1e-5, "{v}");
        // Beyond the q range the edge rows hold.
        let low = g.value_at(&values, 1e-5, g.chi_at(2.5));
        assert!((low - values[2]).abs() < 1e-6);
    }

    #[test]
    fn decoding_then_encoding_returns_a_smooth_polar_image() {
        // A smooth pattern (two broad rings, a 4-fold modulation) survives the round trip
        // through a 256 px detector where the detector has pixels.
        let g = PolarGrid::reference();
        let mut values = vec![0f32; g.len()];
        for r in 0..g.q_bins {
            let lq = (g.q_at(r as f64 + 0.5) / 0.05).ln();
            for c in 0..g.chi_bins {
                let chi = g.chi_at(c as f64 + 0.5);
                let ring = (-(lq * lq) / 0.08).exp() * (1.0 + 0.5 * (4.0 * chi).cos());
                values[r * g.chi_bins + c] = (-0.6 + 1.2 * ring as f32).min(1.0);
            }
        }
        let geom = Geometry::reference(256, 0.4, 0.55);
        let img = g.to_detector(&values, &geom).expect("decode");
        let (back, counts) = g.from_detector(&img, None, &geom).expect("encode");
        let (mut err, mut total, mut n) = (0f32, 0f32, 0);
        for (b, (&a, &v)) in back.iter().zip(&values).enumerate() {
            // Rows where each bin averaged several pixels, inside the ring's range.
            let row = b / g.chi_bins;
            if counts[b] >= 4 && g.q_at(row as f64) > 0.02 && g.q_at(row as f64) < 0.12 {
                err = err.max((a - v).abs());
                total += (a - v).abs();
                n += 1;
            }
        }
        assert!(n > 500, "{n} bins compared");
        // Bins average counts over pixels whose decoded values vary across the bin, so the
        // log of the mean sits a little above the mean of the logs.
        let mean = total / n as f32;
        assert!(mean < 0.02 && err < 0.1, "mean error {mean}, largest {err}");
    }
}
