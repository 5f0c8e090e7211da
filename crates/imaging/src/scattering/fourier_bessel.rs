//! Fourier–Bessel coefficients of a detector image around the beam centre (seed 003's second view).
//!
//! The basis on the disc of radius `a` around the beam centre is
//! `Ψₙₘ(r, φ) = (2π)^−½ e^{imφ} Jₘ(xₘₙ r / a) / Nₙₘ`, with `xₘₙ` the n-th positive zero of `Jₘ` and
//! `Nₙₘ = a |Jₘ₊₁(xₘₙ)| / √2`, orthonormal over the disc. A real image `f` has coefficients
//! `cₙₘ = ⟨f, Ψₙₘ⟩`; for `m ≥ 0`, `n = 1…40`, `m = 0…10` their real and imaginary parts are the
//! 880 features.
//!
//! Masked pixels (beamstop, detector gaps, off-detector) carry no data, so the coefficients are a
//! least-squares fit to the pixels that do, done in two separable steps that stay fast:
//! 1. the image is averaged into polar cells (rings × sectors) around the centre, skipping masked
//!    pixels, and each ring's cells are fitted by a Fourier series in φ up to order `m_max`
//!    (weighted least squares over the valid cells, or the plain projection when all are valid);
//! 2. for each order m, the ring coefficients as functions of r are fitted by the 40 Bessel
//!    functions `Jₘ(xₘₙ r/a)/Nₙₘ` with weight r (the area element), over the rings that had data.
//!
//! With nothing masked this equals projection onto the basis up to the discretisation of the
//! cells (the sector averaging is undone by its sinc factor).

use crate::Image;
use crate::profile::chi_rad;

use super::linalg::NormalEquations;

/// Radial orders per angular order in the reference features.
pub const N_MAX: usize = 40;
/// Highest angular order in the reference features.
pub const M_MAX: usize = 10;
/// Length of the reference feature vector: (re, im) × 40 × 11.
pub const FEATURES: usize = 2 * N_MAX * (M_MAX + 1);

/// Sectors per ring: far more than 2·m_max + 1, so a gap or beamstop arm leaves enough.
const SECTORS: usize = 64;
/// Tikhonov ridges (relative to the mean diagonal of the normal equations): where a mask or the
/// image edge leaves part of a ring or of the disc without data, the harmonics it cannot
/// constrain shrink to zero instead of fitting noise with huge, cancelling coefficients.
const ANGULAR_RIDGE: f64 = 1e-2;
const RADIAL_RIDGE: f64 = 1e-3;
/// A ring needs this many valid sectors per unknown of its Fourier series to be fitted.
const MIN_SECTORS_PER_UNKNOWN: f64 = 1.5;

/// The first `count` positive zeros of `J_m`, by scanning for sign changes and bisecting.
pub fn bessel_zeros(m: usize, count: usize) -> Vec<f64> {
    let j = |x: f64| libm::jn(m as i32, x);
    let mut zeros = Vec::with_capacity(count);
    // Zeros of J_m are more than π/2 apart and the first lies above m: a 0.05 step misses none.
    let step = 0.05;
    let mut x0 = if m == 0 { step } else { m as f64 * 0.5 + step };
    let mut f0 = j(x0);
    while zeros.len() < count {
        let x1 = x0 + step;
        let f1 = j(x1);
        if f0 == 0.0 {
            zeros.push(x0);
        } else if f0 * f1 < 0.0 {
            let (mut lo, mut hi, mut flo) = (x0, x1, f0);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                let fm = j(mid);
                if fm * flo <= 0.0 {
                    hi = mid;
                } else {
                    lo = mid;
                    flo = fm;
                }
            }
            zeros.push(0.5 * (lo + hi));
        }
        x0 = x1;
        f0 = f1;
    }
    zeros
}

/// A Fourier–Bessel basis on a disc of `radius_px`, with its radial functions tabulated.
#[derive(Debug, Clone)]
pub struct FourierBessel {
    /// Radial orders n = 1…n_max.
    pub n_max: usize,
    /// Angular orders m = 0…m_max.
    pub m_max: usize,
    /// Disc radius `a` in pixels.
    pub radius_px: f64,
    rings: usize,
    /// `xₘₙ`, index `m * n_max + (n − 1)`.
    zeros: Vec<f64>,
    /// `Jₘ(xₘₙ r_j / a) / Nₙₘ` at ring centres, index `(m * n_max + n − 1) * rings + j`.
    radial: Vec<f64>,
}

impl FourierBessel {
    /// The reference basis (n ≤ 40, m ≤ 10) on a disc of `radius_px`.
    pub fn reference(radius_px: f64) -> Self {
        Self::new(N_MAX, M_MAX, radius_px)
    }

    /// A basis with `n_max` radial and `m_max + 1` angular orders on a disc of `radius_px`
    /// (at least 4 px). Rings are about one pixel wide.
    pub fn new(n_max: usize, m_max: usize, radius_px: f64) -> Self {
        let radius_px = radius_px.max(4.0);
        let rings = (radius_px.round() as usize).clamp(16, 512);
        let zeros: Vec<f64> = (0..=m_max).flat_map(|m| bessel_zeros(m, n_max)).collect();
        let mut radial = Vec::with_capacity((m_max + 1) * n_max * rings);
        for m in 0..=m_max {
            for n in 0..n_max {
                let x = zeros[m * n_max + n];
                let norm = radius_px * libm::jn(m as i32 + 1, x).abs() / std::f64::consts::SQRT_2;
                for j in 0..rings {
                    let r = (j as f64 + 0.5) * radius_px / rings as f64;
                    radial.push(libm::jn(m as i32, x * r / radius_px) / norm);
                }
            }
        }
        Self {
            n_max,
            m_max,
            radius_px,
            rings,
            zeros,
            radial,
        }
    }

    /// `xₘₙ` for `n` counted from 1.
    pub fn zero(&self, m: usize, n: usize) -> f64 {
        self.zeros[m * self.n_max + n - 1]
    }

    /// The radial function `Jₘ(xₘₙ r / a) / Nₙₘ` at `r_px` (0 outside the disc); `n` from 1.
    pub fn radial_at(&self, m: usize, n: usize, r_px: f64) -> f64 {
        if r_px > self.radius_px {
            return 0.0;
        }
        let x = self.zero(m, n);
        let norm = self.radius_px * libm::jn(m as i32 + 1, x).abs() / std::f64::consts::SQRT_2;
        libm::jn(m as i32, x * r_px / self.radius_px) / norm
    }

    /// The coefficients of `image` around `(centre_x, centre_y)` (pixel coordinates, origin at
    /// the top-left corner of the top-left pixel). Pixels where `mask` is `true`, non-finite
    /// pixels and the parts of the disc off the image are left out of the fit.
    pub fn coefficients(
        &self,
        image: &Image<f32>,
        mask: Option<&[bool]>,
        centre_x: f64,
        centre_y: f64,
    ) -> Coefficients {
        let (sum, count) = self.polar_cells(image, mask, centre_x, centre_y);
        let m_max = self.m_max;
        let unknowns = 2 * m_max + 1;
        let dphi = std::f64::consts::TAU / SECTORS as f64;
        // Sector centres: χ = −π + (k + ½)Δφ.
        let phi: Vec<f64> = (0..SECTORS)
            .map(|k| -std::f64::consts::PI + (k as f64 + 0.5) * dphi)
            .collect();
        // Averaging over a sector of width Δφ scales order m by sinc(mΔφ/2): undo it.
        let sinc: Vec<f64> = (0..=m_max)
            .map(|m| {
                let x = m as f64 * dphi / 2.0;
                if x == 0.0 { 1.0 } else { x.sin() / x }
            })
            .collect();
        // Step 1: per ring, [a₀, a₁, b₁, …, a_M, b_M] of the Fourier series in φ.
        let mut ring_series: Vec<Option<Vec<f64>>> = Vec::with_capacity(self.rings);
        let mut valid_cells = 0usize;
        let mut row = vec![0.0; unknowns];
        for j in 0..self.rings {
            let cells = &count[j * SECTORS..(j + 1) * SECTORS];
            let valid = cells.iter().filter(|&&c| c > 0).count();
            valid_cells += valid;
            let mean = |k: usize| sum[j * SECTORS + k] / count[j * SECTORS + k] as f64;
            let series = if valid == SECTORS {
                // Plain discrete projection: exact for equispaced samples.
                let mut s = vec![0.0; unknowns];
                for (k, &p) in phi.iter().enumerate() {
                    let v = mean(k);
                    s[0] += v / SECTORS as f64;
                    for m in 1..=m_max {
                        let (sn, cs) = (m as f64 * p).sin_cos();
                        s[2 * m - 1] += 2.0 * v * cs / SECTORS as f64;
                        s[2 * m] += 2.0 * v * sn / SECTORS as f64;
                    }
                }
                Some(s)
            } else if valid as f64 >= MIN_SECTORS_PER_UNKNOWN * unknowns as f64 {
                let mut ne = NormalEquations::new(unknowns);
                for (k, &p) in phi.iter().enumerate() {
                    if cells[k] == 0 {
                        continue;
                    }
                    row[0] = 1.0;
                    for m in 1..=m_max {
                        let (sn, cs) = (m as f64 * p).sin_cos();
                        row[2 * m - 1] = cs;
                        row[2 * m] = sn;
                    }
                    ne.add(&row, mean(k), 1.0);
                }
                ne.solve(ANGULAR_RIDGE)
            } else {
                None
            };
            ring_series.push(series.map(|mut s| {
                for m in 1..=m_max {
                    s[2 * m - 1] /= sinc[m];
                    s[2 * m] /= sinc[m];
                }
                s
            }));
        }
        // Step 2: per order m and component, fit the n_max radial functions over valid rings.
        let n_max = self.n_max;
        let mut re = vec![0.0; (m_max + 1) * n_max];
        let mut im = vec![0.0; (m_max + 1) * n_max];
        let mut basis_row = vec![0.0; n_max];
        for m in 0..=m_max {
            let components: &[usize] = if m == 0 { &[0] } else { &[2 * m - 1, 2 * m] };
            for (ci, &comp) in components.iter().enumerate() {
                let mut ne = NormalEquations::new(n_max);
                for (j, s) in ring_series.iter().enumerate() {
                    let Some(s) = s else { continue };
                    let r = (j as f64 + 0.5) * self.radius_px / self.rings as f64;
                    for (n, b) in basis_row.iter_mut().enumerate() {
                        *b = self.radial[(m * n_max + n) * self.rings + j];
                    }
                    // Weight r·Δr: the area element of the disc.
                    ne.add(&basis_row, s[comp], r * self.radius_px / self.rings as f64);
                }
                let Some(alpha) = ne.solve(RADIAL_RIDGE) else {
                    continue;
                };
                for (n, a) in alpha.into_iter().enumerate() {
                    let i = m * n_max + n;
                    match (m, ci) {
                        (0, _) => re[i] = (std::f64::consts::TAU).sqrt() * a,
                        (_, 0) => re[i] = (std::f64::consts::PI / 2.0).sqrt() * a,
                        _ => im[i] = -(std::f64::consts::PI / 2.0).sqrt() * a,
                    }
                }
            }
        }
        Coefficients {
            n_max,
            m_max,
            radius_px: self.radius_px,
            re,
            im,
            valid_fraction: valid_cells as f64 / (self.rings * SECTORS) as f64,
        }
    }

    /// Sums and counts of unmasked pixel values per (ring, sector) cell.
    fn polar_cells(
        &self,
        image: &Image<f32>,
        mask: Option<&[bool]>,
        cx: f64,
        cy: f64,
    ) -> (Vec<f64>, Vec<u32>) {
        let mut sum = vec![0.0f64; self.rings * SECTORS];
        let mut count = vec![0u32; self.rings * SECTORS];
        let (w, h) = (image.width(), image.height());
        let a = self.radius_px;
        // Only rows and columns that can touch the disc.
        let y0 = (cy - a).floor().max(0.0) as usize;
        let y1 = ((cy + a).ceil().max(0.0) as usize).min(h);
        let x0 = (cx - a).floor().max(0.0) as usize;
        let x1 = ((cx + a).ceil().max(0.0) as usize).min(w);
        let pixels = image.pixels();
        for y in y0..y1 {
            let dy = y as f64 + 0.5 - cy;
            for x in x0..x1 {
                let i = y * w + x;
                let v = pixels[i];
                if !v.is_finite() || mask.is_some_and(|m| m[i]) {
                    continue;
                }
                let dx = x as f64 + 0.5 - cx;
                let r = dx.hypot(dy);
                if r >= a {
                    continue;
                }
                let j = ((r / a) * self.rings as f64) as usize;
                let t = (chi_rad(dx, dy) + std::f64::consts::PI) / std::f64::consts::TAU;
                let k = ((t * SECTORS as f64) as usize).min(SECTORS - 1);
                let c = j.min(self.rings - 1) * SECTORS + k;
                sum[c] += f64::from(v);
                count[c] += 1;
            }
        }
        (sum, count)
    }
}

/// Fourier–Bessel coefficients `cₙₘ` of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Coefficients {
    /// Radial orders.
    pub n_max: usize,
    /// Highest angular order.
    pub m_max: usize,
    /// Disc radius in pixels.
    pub radius_px: f64,
    /// Real parts, index `m * n_max + (n − 1)`.
    pub re: Vec<f64>,
    /// Imaginary parts, same index (0 for m = 0).
    pub im: Vec<f64>,
    /// Fraction of the polar cells of the disc that held unmasked pixels.
    pub valid_fraction: f64,
}

impl Coefficients {
    /// `cₙₘ` as (re, im), `n` from 1.
    pub fn get(&self, n: usize, m: usize) -> (f64, f64) {
        let i = m * self.n_max + n - 1;
        (self.re[i], self.im[i])
    }

    /// The feature vector: `(re, im)` pairs in (m, n) order, divided by the disc radius so that
    /// the same pattern at another image size gives similar numbers. Length 880 for the
    /// reference basis.
    pub fn features(&self) -> Vec<f32> {
        let scale = 1.0 / self.radius_px;
        self.re
            .iter()
            .zip(&self.im)
            .flat_map(|(&r, &i)| [(r * scale) as f32, (i * scale) as f32])
            .collect()
    }

    /// Σₙ |cₙₘ|² per angular order m: where the pattern's angular structure sits.
    pub fn power_per_order(&self) -> Vec<f64> {
        (0..=self.m_max)
            .map(|m| {
                (0..self.n_max)
                    .map(|n| {
                        let i = m * self.n_max + n;
                        self.re[i] * self.re[i] + self.im[i] * self.im[i]
                    })
                    .sum()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image of Σ terms `amp · Jₘ(xₘₙ r/a)/Nₙₘ · cos(m(φ − phase))`.
    fn synth(
        basis: &FourierBessel,
        size: usize,
        cx: f64,
        cy: f64,
        terms: &[(usize, usize, f64, f64)],
    ) -> Image<f32> {
        let mut px = vec![0.0f32; size * size];
        for y in 0..size {
            for x in 0..size {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let (r, phi) = (dx.hypot(dy), chi_rad(dx, dy));
                px[y * size + x] = terms
                    .iter()
                    .map(|&(n, m, amp, phase)| {
                        amp * basis.radial_at(m, n, r) * (m as f64 * (phi - phase)).cos()
                    })
                    .sum::<f64>() as f32;
            }
        }
        Image::from_vec(size, size, px).expect("square")
    }

    #[test]
    fn bessel_zeros_match_tables() {
        // Abramowitz & Stegun table 9.5.
        let z0 = bessel_zeros(0, 3);
        assert!((z0[0] - 2.404_825_557_7).abs() < 1e-9);
        assert!((z0[2] - 8.653_727_912_9).abs() < 1e-9);
        assert!((bessel_zeros(1, 1)[0] - 3.831_705_970_2).abs() < 1e-9);
        assert!((bessel_zeros(10, 1)[0] - 14.475_500_686_6).abs() < 1e-8);
        assert_eq!(bessel_zeros(10, 40).len(), 40);
    }

    #[test]
    fn reference_features_have_880_values() {
        let basis = FourierBessel::reference(30.0);
        let img = Image::from_vec(64, 64, vec![1.0f32; 64 * 64]).expect("square");
        let c = basis.coefficients(&img, None, 32.0, 32.0);
        assert_eq!(c.features().len(), FEATURES);
        assert_eq!(FEATURES, 880);
    }

    #[test]
    fn recovers_known_coefficients_without_and_with_a_mask() {
        let (size, a) = (256usize, 120.0);
        let basis = FourierBessel::new(12, 6, a);
        let (cx, cy) = (128.3, 127.6);
        // c₃,₀ from amp 2 (m = 0: c = √(2π)·amp), c₅,₄ from amp 1.5 cos(4φ): c = √(π/2)·1.5,
        // c₂,₂ from amp 1 cos(2(φ − π/8)): re = √(π/2) cos(π/4), im = −√(π/2) sin(π/4)
        // (c = ⟨f, Ψ⟩ conjugates e^{imφ}).
        let img = synth(
            &basis,
            size,
            cx,
            cy,
            &[
                (3, 0, 2.0, 0.0),
                (5, 4, 1.5, 0.0),
                (2, 2, 1.0, std::f64::consts::PI / 8.0),
            ],
        );
        let h = (std::f64::consts::PI / 2.0).sqrt();
        let expect = [
            ((3, 0), ((std::f64::consts::TAU).sqrt() * 2.0, 0.0)),
            ((5, 4), (h * 1.5, 0.0)),
            (
                (2, 2),
                (
                    h * std::f64::consts::FRAC_1_SQRT_2,
                    -h * std::f64::consts::FRAC_1_SQRT_2,
                ),
            ),
            ((1, 0), (0.0, 0.0)),
            ((5, 3), (0.0, 0.0)),
        ];
        // A beamstop disc, a beamstop arm and a detector gap row.
        let mut mask = vec![false; size * size];
        for y in 0..size {
            for x in 0..size {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                mask[y * size + x] =
                    dx.hypot(dy) < 12.0 || (dx > 0.0 && dy.abs() < 4.0) || (150..157).contains(&y);
            }
        }
        for (label, m, tol) in [("no mask", None, 0.05), ("masked", Some(&mask[..]), 0.08)] {
            let c = basis.coefficients(&img, m, cx, cy);
            for ((n, mm), (re, im)) in expect {
                let (gr, gi) = c.get(n, mm);
                assert!(
                    (gr - re).abs() < tol && (gi - im).abs() < tol,
                    "{label}: c[{n},{mm}] = ({gr:.4}, {gi:.4}), expected ({re:.4}, {im:.4})"
                );
            }
            assert!(c.valid_fraction > 0.5, "{label}: {}", c.valid_fraction);
        }
    }

    #[test]
    fn a_six_fold_pattern_puts_its_angular_power_in_order_six() {
        // Six spots on a ring at r = 40 px: the classic 6-fold lattice peak pattern.
        let size = 160usize;
        let (cx, cy) = (80.0, 80.0);
        let mut px = vec![0.0f32; size * size];
        for y in 0..size {
            for x in 0..size {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let v: f64 = (0..6)
                    .map(|k| {
                        let t = k as f64 * std::f64::consts::PI / 3.0 + 0.2;
                        let (sx, sy) = (40.0 * t.cos(), -40.0 * t.sin());
                        (-((dx - sx).powi(2) + (dy - sy).powi(2)) / 18.0).exp()
                    })
                    .sum();
                px[y * size + x] = v as f32;
            }
        }
        let img = Image::from_vec(size, size, px).expect("square");
        let c = FourierBessel::reference(75.0).coefficients(&img, None, cx, cy);
        let power = c.power_per_order();
        for m in 1..=M_MAX {
            if m != 6 {
                assert!(power[6] > 20.0 * power[m], "m = {m}: {power:?}");
            }
        }
    }
}
