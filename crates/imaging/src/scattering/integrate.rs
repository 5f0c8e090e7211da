//! Azimuthal integration: I(q) averaged over rings of equal scattering vector, and I(χ)
//! around the ring over a q range, both skipping masked pixels.

use crate::Image;
use crate::detector::Geometry;
use crate::profile::chi_rad;

/// How I(q) bins are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spacing {
    /// Equal widths in q.
    Linear,
    /// Equal widths in ln q (a power law becomes evenly sampled).
    Log,
}

/// A binned 1-D profile: mean intensity per bin with its standard error.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Bin centres (q in Å⁻¹ for I(q), χ in degrees for I(χ)).
    pub x: Vec<f64>,
    /// Mean intensity per bin; NaN where no pixel fell in the bin.
    pub intensity: Vec<f64>,
    /// Standard error of the mean (NaN with fewer than 2 pixels).
    pub sigma: Vec<f64>,
    /// Pixels per bin.
    pub pixels: Vec<usize>,
}

impl Profile {
    fn from_sums(x: Vec<f64>, sum: &[f64], sum_sq: &[f64], count: &[usize]) -> Self {
        let mut intensity = Vec::with_capacity(x.len());
        let mut sigma = Vec::with_capacity(x.len());
        for ((&s, &s2), &n) in sum.iter().zip(sum_sq).zip(count) {
            let nf = n as f64;
            let mean = if n > 0 { s / nf } else { f64::NAN };
            intensity.push(mean);
            sigma.push(if n > 1 {
                ((s2 / nf - mean * mean).max(0.0) * nf / (nf - 1.0) / nf).sqrt()
            } else {
                f64::NAN
            });
        }
        Self {
            x,
            intensity,
            sigma,
            pixels: count.to_vec(),
        }
    }

    /// The bins that hold data, as `(x, intensity)`.
    pub fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.x
            .iter()
            .zip(&self.intensity)
            .filter(|(_, v)| v.is_finite())
            .map(|(&x, &v)| (x, v))
    }
}

fn usable(px: &[f32], mask: Option<&[bool]>, i: usize) -> Option<f64> {
    let v = px[i];
    (v.is_finite() && !mask.is_some_and(|m| m[i])).then_some(f64::from(v))
}

/// Sums, sums of squares and counts of the usable pixels in `bins` bins, the bin of a pixel at
/// offset (dx, dy) from the beam centre given by `position` as a fraction in [0, 1) (`None` or
/// a value outside: the pixel is left out).
fn bin_pixels(
    image: &Image<f32>,
    mask: Option<&[bool]>,
    geometry: &Geometry,
    bins: usize,
    position: impl Fn(f64, f64) -> Option<f64>,
) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
    let (mut sum, mut sum_sq, mut count) = (vec![0.0; bins], vec![0.0; bins], vec![0; bins]);
    let (w, h) = (image.width(), image.height());
    let px = image.pixels();
    for y in 0..h {
        let dy = y as f64 + 0.5 - geometry.beam_y_px;
        for x in 0..w {
            let Some(v) = usable(px, mask, y * w + x) else {
                continue;
            };
            let Some(t) = position(x as f64 + 0.5 - geometry.beam_x_px, dy) else {
                continue;
            };
            if !(0.0..1.0).contains(&t) {
                continue;
            }
            let k = ((t * bins as f64) as usize).min(bins - 1);
            sum[k] += v;
            sum_sq[k] += v * v;
            count[k] += 1;
        }
    }
    (sum, sum_sq, count)
}

/// I(q): the mean of the unmasked pixels in `bins` q bins spanning the q range the image covers
/// (from the nearest to the farthest pixel from the beam centre, at least one pixel out).
pub fn integrate_q(
    image: &Image<f32>,
    mask: Option<&[bool]>,
    geometry: &Geometry,
    bins: usize,
    spacing: Spacing,
) -> Profile {
    let bins = bins.max(1);
    let (near, far) = geometry.radius_range_px();
    let q_min = geometry.q_at_radius(near.max(1.0));
    let q_max = geometry.q_at_radius(far).max(q_min * 1.0001);
    let to_t = |q: f64| match spacing {
        Spacing::Linear => (q - q_min) / (q_max - q_min),
        Spacing::Log => (q / q_min).ln() / (q_max / q_min).ln(),
    };
    let centre = |k: usize| {
        let t = (k as f64 + 0.5) / bins as f64;
        match spacing {
            Spacing::Linear => q_min + t * (q_max - q_min),
            Spacing::Log => q_min * (q_max / q_min).powf(t),
        }
    };
    let (sum, sum_sq, count) = bin_pixels(image, mask, geometry, bins, |dx, dy| {
        Some(to_t(geometry.q_at_radius(dx.hypot(dy))))
    });
    Profile::from_sums((0..bins).map(centre).collect(), &sum, &sum_sq, &count)
}

/// I(χ): the mean of the unmasked pixels with `q_min ≤ q < q_max` in `bins` equal sectors of
/// χ from −180° to 180° (χ from +x towards up on screen).
pub fn integrate_chi(
    image: &Image<f32>,
    mask: Option<&[bool]>,
    geometry: &Geometry,
    q_min_inv_angstrom: f64,
    q_max_inv_angstrom: f64,
    bins: usize,
) -> Profile {
    let bins = bins.max(1);
    let (sum, sum_sq, count) = bin_pixels(image, mask, geometry, bins, |dx, dy| {
        let q = geometry.q_at_radius(dx.hypot(dy));
        (q >= q_min_inv_angstrom && q < q_max_inv_angstrom)
            .then(|| (chi_rad(dx, dy) + std::f64::consts::PI) / std::f64::consts::TAU)
    });
    let centres = (0..bins)
        .map(|k| -180.0 + (k as f64 + 0.5) * 360.0 / bins as f64)
        .collect();
    Profile::from_sums(centres, &sum, &sum_sq, &count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_image(g: &Geometry, q0: f64, width_q: f64, anisotropy: Option<usize>) -> Image<f32> {
        let mut px = vec![0.0f32; g.width_px * g.height_px];
        for y in 0..g.height_px {
            for x in 0..g.width_px {
                let (dx, dy) = (x as f64 + 0.5 - g.beam_x_px, y as f64 + 0.5 - g.beam_y_px);
                let q = g.q_at_radius(dx.hypot(dy));
                let angular =
                    anisotropy.map_or(1.0, |n| (n as f64 / 2.0 * chi_rad(dx, dy)).cos().powi(2));
                px[y * g.width_px + x] =
                    (10.0 + 1000.0 * angular * (-((q - q0) / width_q).powi(2) / 2.0).exp()) as f32;
            }
        }
        Image::from_vec(g.width_px, g.height_px, px).expect("sized")
    }

    #[test]
    fn a_ring_at_q0_peaks_at_q0_with_and_without_a_mask() {
        let g = Geometry::reference(400, 0.47, 0.53);
        let q0 = 0.05;
        let img = ring_image(&g, q0, 0.001, None);
        // Mask a quarter of the detector and a gap row: the mean must not move.
        let mut mask = vec![false; 400 * 400];
        for (i, m) in mask.iter_mut().enumerate() {
            let (x, y) = (i % 400, i / 400);
            *m = (x < 200 && y < 200) || (300..310).contains(&y);
        }
        for m in [None, Some(&mask[..])] {
            let p = integrate_q(&img, m, &g, 300, Spacing::Linear);
            let (q_peak, v_peak) = p.points().max_by(|a, b| a.1.total_cmp(&b.1)).expect("data");
            let bin = p.x[1] - p.x[0];
            assert!((q_peak - q0).abs() <= bin, "peak at {q_peak}, bin {bin}");
            assert!(v_peak > 900.0, "{v_peak}");
            // Far from the ring: the flat background, exactly.
            let far = p
                .points()
                .find(|(q, _)| (q - 0.02).abs() < bin)
                .expect("q = 0.02");
            assert!((far.1 - 10.0).abs() < 1e-3, "{far:?}");
        }
    }

    #[test]
    fn chi_profile_of_a_four_fold_ring_has_four_maxima() {
        let g = Geometry::reference(300, 0.5, 0.5);
        let img = ring_image(&g, 0.05, 0.002, Some(4));
        let p = integrate_chi(&img, None, &g, 0.045, 0.055, 72);
        // cos²(2χ): maxima at 0°, ±90°, 180°; minima at ±45°, ±135°.
        let at = |deg: f64| {
            let k = ((deg + 180.0) / 5.0) as usize;
            p.intensity[k.min(71)]
        };
        for deg in [2.5, 92.5, -87.5, 177.5] {
            for low in [47.5, -42.5, 137.5, -132.5] {
                assert!(at(deg) > 5.0 * at(low), "{deg}° vs {low}°: {p:?}");
            }
        }
        assert!(p.pixels.iter().all(|&n| n > 0));
    }

    #[test]
    fn log_bins_are_evenly_spaced_in_ln_q() {
        let g = Geometry::reference(200, 0.5, 0.5);
        let img = ring_image(&g, 0.05, 0.002, None);
        let p = integrate_q(&img, None, &g, 50, Spacing::Log);
        let r1 = p.x[1] / p.x[0];
        let r2 = p.x[40] / p.x[39];
        assert!((r1 - r2).abs() < 1e-9, "{r1} vs {r2}");
    }
}
