//! Radial and azimuthal averages around a beam centre.
//!
//! Conventions used across Synthscope: continuous image coordinates have their origin at the
//! top-left corner of the top-left pixel, so the centre of pixel (x, y) is (x + 0.5, y + 0.5).
//! χ is measured in radians from the +x axis (to the right on screen) towards up on screen
//! (decreasing row index), so χ = atan2(−(y − cy), x − cx).

use crate::Image;

/// The azimuth χ in radians of the offset `(dx, dy)` in image coordinates (`dy` grows downwards).
#[inline]
pub fn chi_rad(dx: f64, dy: f64) -> f64 {
    (-dy).atan2(dx)
}

/// Mean intensity in 1-pixel-wide rings around `(centre_x, centre_y)`.
///
/// Bin `k` holds pixels whose centre lies at a distance in `[k, k+1)` pixels. Pixels where
/// `mask` is `true` (excluded) or whose value is not finite are skipped. Returns `(mean, count)`
/// per bin up to the farthest pixel.
pub fn radial_profile(
    image: &Image<f32>,
    centre_x: f64,
    centre_y: f64,
    mask: Option<&[bool]>,
) -> Vec<(f64, usize)> {
    let (w, h) = (image.width(), image.height());
    let corners = [
        (0.0, 0.0),
        (w as f64, 0.0),
        (0.0, h as f64),
        (w as f64, h as f64),
    ];
    let r_max = corners
        .iter()
        .map(|(x, y)| (x - centre_x).hypot(y - centre_y))
        .fold(0.0, f64::max);
    let n_bins = r_max.ceil() as usize + 1;
    let mut sum = vec![0.0f64; n_bins];
    let mut count = vec![0usize; n_bins];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let v = image.pixels()[i];
            if !v.is_finite() || mask.is_some_and(|m| m[i]) {
                continue;
            }
            let r = (x as f64 + 0.5 - centre_x).hypot(y as f64 + 0.5 - centre_y);
            let k = r as usize;
            if k < n_bins {
                sum[k] += f64::from(v);
                count[k] += 1;
            }
        }
    }
    sum.iter()
        .zip(&count)
        .map(|(&s, &c)| (if c > 0 { s / c as f64 } else { 0.0 }, c))
        .collect()
}

/// Mean intensity in `n_bins` equal χ sectors over the annulus `r_min_px ≤ r < r_max_px`.
///
/// Bin `k` covers χ in `[−π + 2πk/n, −π + 2π(k+1)/n)`. Empty bins are `NaN`.
pub fn azimuthal_profile(
    image: &Image<f32>,
    centre_x: f64,
    centre_y: f64,
    r_min_px: f64,
    r_max_px: f64,
    n_bins: usize,
) -> Vec<f64> {
    let mut sum = vec![0.0f64; n_bins];
    let mut count = vec![0usize; n_bins];
    for y in 0..image.height() {
        for x in 0..image.width() {
            let (dx, dy) = (x as f64 + 0.5 - centre_x, y as f64 + 0.5 - centre_y);
            let r = dx.hypot(dy);
            let v = image.get(x, y);
            if r < r_min_px || r >= r_max_px || !v.is_finite() {
                continue;
            }
            let t = (chi_rad(dx, dy) + std::f64::consts::PI) / std::f64::consts::TAU;
            let k = ((t * n_bins as f64) as usize).min(n_bins - 1);
            sum[k] += f64::from(v);
            count[k] += 1;
        }
    }
    sum.iter()
        .zip(&count)
        .map(|(&s, &c)| if c > 0 { s / c as f64 } else { f64::NAN })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi_points_up_for_negative_dy() {
        assert!((chi_rad(0.0, -1.0) - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
        assert!(chi_rad(1.0, 0.0).abs() < 1e-12);
    }

    #[test]
    fn radial_profile_finds_a_ring() {
        let img = Image::from_vec(
            64,
            64,
            (0..64 * 64)
                .map(|i| {
                    let (x, y) = ((i % 64) as f64 + 0.5 - 30.0, (i / 64) as f64 + 0.5 - 33.0);
                    (-(x.hypot(y) - 20.5).powi(2) / 2.0).exp() as f32
                })
                .collect(),
        )
        .expect("64×64");
        let prof = radial_profile(&img, 30.0, 33.0, None);
        let peak = (0..prof.len())
            .max_by(|&a, &b| prof[a].0.total_cmp(&prof[b].0))
            .expect("bins");
        assert_eq!(peak, 20);
        let az = azimuthal_profile(&img, 30.0, 33.0, 18.0, 23.0, 8);
        let (lo, hi) = az
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(hi / lo < 1.1, "isotropic ring should be flat in χ: {az:?}");
    }
}
