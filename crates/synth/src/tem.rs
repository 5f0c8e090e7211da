//! TEM micrographs of polycrystals with exact grain ground truth (seed 001, `DOMAIN.md` §2).
//!
//! The stages follow the concepts the paper encodes:
//! 1. grain diameters are lognormal; circles of those sizes are placed by Monte Carlo
//!    (largest first, limited overlap), so every drawn size is kept;
//! 2. the grains are the cells of the power (Laguerre) diagram of the circles: convex polygons;
//! 3. each grain gets a diffraction-contrast brightness; some copy a neighbour's brightness
//!    (similar brightness does not mean no boundary);
//! 4. boundaries are thin dark lines of varying strength, wider and fainter where grains overlap
//!    in depth; grains carry gradients and bend contours;
//! 5. blur, illumination and contrast variation, then Poisson (dose) and Gaussian noise.
//!
//! Ground truth: a grain-id map, a closed 1-pixel-wide boundary mask and per-grain areas and
//! equivalent-circle diameters. "Closed" is with 4-connectivity: no 4-connected path of
//! non-boundary pixels joins two grains.

use crate::math::Portable;

use imaging::Image;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::SynthError;
use crate::rng::{image_rng, lognormal, normal, normal_pair, poisson, poisson_normal, uniform};

/// What the user controls.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TemConfig {
    /// Image width in pixels (default 496).
    pub width_px: usize,
    /// Image height in pixels (default 96).
    pub height_px: usize,
    /// Mean grain (circle) diameter in pixels.
    pub grain_diameter_mean_px: f64,
    /// Standard deviation of ln(diameter): the spread of the lognormal.
    pub grain_size_spread: f64,
    /// Diffraction contrast between grains, 0–1.
    pub contrast: f64,
    /// Noise level, 0 (clean) – 1 (very noisy).
    pub noise: f64,
}

impl Default for TemConfig {
    fn default() -> Self {
        Self {
            width_px: 496,
            height_px: 96,
            grain_diameter_mean_px: 24.0,
            grain_size_spread: 0.35,
            contrast: 0.6,
            noise: 0.3,
        }
    }
}

impl TemConfig {
    /// Checks ranges; the error names the parameter and what is allowed.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |name, value: String, allowed| {
            Err(SynthError::OutOfRange {
                name,
                value,
                allowed,
            })
        };
        if !(16..=4096).contains(&self.width_px) {
            return bad("width", self.width_px.to_string(), "16 to 4096 pixels");
        }
        if !(16..=4096).contains(&self.height_px) {
            return bad("height", self.height_px.to_string(), "16 to 4096 pixels");
        }
        if !(4.0..=1000.0).contains(&self.grain_diameter_mean_px) {
            return bad(
                "grain diameter",
                self.grain_diameter_mean_px.to_string(),
                "4 to 1000 pixels",
            );
        }
        let expected_grains = (self.width_px * self.height_px) as f64
            / (self.grain_diameter_mean_px.powi_p(2) * 0.785);
        if expected_grains > 40_000.0 {
            return bad(
                "grain diameter",
                self.grain_diameter_mean_px.to_string(),
                "large enough for at most 40 000 grains per image",
            );
        }
        if !(0.0..=1.5).contains(&self.grain_size_spread) {
            return bad(
                "grain size spread",
                self.grain_size_spread.to_string(),
                "0 to 1.5",
            );
        }
        if !(0.0..=1.0).contains(&self.contrast) {
            return bad("contrast", self.contrast.to_string(), "0 to 1");
        }
        if !(0.0..=1.0).contains(&self.noise) {
            return bad("noise", self.noise.to_string(), "0 to 1");
        }
        Ok(())
    }

    /// μ of ln(diameter) such that the mean diameter is `grain_diameter_mean_px`.
    pub fn log_mu(&self) -> f64 {
        self.grain_diameter_mean_px.ln_p() - self.grain_size_spread.powi_p(2) / 2.0
    }
}

/// A circle of the Monte Carlo packing: a grain seed of the power diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Circle {
    /// Centre column (may lie outside the image).
    pub x_px: f64,
    /// Centre row (may lie outside the image).
    pub y_px: f64,
    /// Radius in pixels (half the drawn lognormal diameter).
    pub r_px: f64,
}

/// Every parameter of one micrograph. Serialised as the `params` of its label line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemParams {
    /// The user's configuration.
    pub config: TemConfig,
    /// Grain seeds, largest first.
    pub circles: Vec<Circle>,
    /// Gaussian blur σ in pixels.
    pub blur_sigma_px: f64,
    /// Electron dose per pixel (Poisson noise).
    pub dose_per_px: f64,
    /// Gaussian read-noise σ (fraction of full scale).
    pub read_noise: f64,
    /// Global gain applied to brightness.
    pub gain: f64,
    /// Global offset added to brightness.
    pub offset: f64,
    /// Illumination gradient across the image (fraction per image width, per image height).
    pub illumination_gradient: (f64, f64),
    /// Seed of the per-grain appearance and noise stream.
    pub noise_seed: u64,
}

/// A rendered micrograph and its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct TemImage {
    /// The 8-bit micrograph.
    pub image: Image<u8>,
    /// Boundary mask: 255 on boundaries, 0 elsewhere.
    pub boundary: Image<u8>,
    /// Grain ids 1…N (every pixel belongs to exactly one grain).
    pub grains: Image<u16>,
    /// Area of grain `i + 1` in pixels.
    pub grain_area_px: Vec<usize>,
    /// Equivalent-circle diameter √(4A/π) of grain `i + 1` in pixels.
    pub grain_ecd_px: Vec<f64>,
}

/// Draws the parameters of image `index` of a batch generated with `seed`.
pub fn sample_params(config: &TemConfig, seed: u64, index: u64) -> Result<TemParams, SynthError> {
    config.validate()?;
    let mut rng = image_rng(seed, index);
    let circles = place_circles(&mut rng, config);
    let n = config.noise;
    Ok(TemParams {
        config: *config,
        circles,
        blur_sigma_px: uniform(&mut rng, 0.5, 1.2),
        dose_per_px: 10f64.powf_p(uniform(&mut rng, 3.2, 3.8) - 2.2 * n),
        read_noise: n * uniform(&mut rng, 0.01, 0.05),
        gain: uniform(&mut rng, 0.8, 1.15),
        offset: uniform(&mut rng, -0.08, 0.08),
        illumination_gradient: (
            uniform(&mut rng, -0.12, 0.12),
            uniform(&mut rng, -0.12, 0.12),
        ),
        noise_seed: rng.random(),
    })
}

/// The same grains (`params.circles`) with the appearance of image `index` of batch `seed`:
/// blur, dose, read noise, gain, offset, illumination and the per-grain contrast all drawn anew.
/// Its boundary mask and grains are those of `params`; the pair shows how far two micrographs
/// of one mask differ under the engine itself, the ceiling of any mask-conditioned generator's
/// PSNR and SSIM against the engine's image.
pub fn redraw_appearance(
    params: &TemParams,
    seed: u64,
    index: u64,
) -> Result<TemParams, SynthError> {
    Ok(TemParams {
        circles: params.circles.clone(),
        ..sample_params(&params.config, seed, index)?
    })
}

/// Monte Carlo packing: lognormal diameters until the (margin-extended) frame is covered, placed
/// largest first at the best of up to 40 random positions (least relative overlap).
fn place_circles(rng: &mut ChaCha8Rng, config: &TemConfig) -> Vec<Circle> {
    let (w, h) = (config.width_px as f64, config.height_px as f64);
    let margin = config.grain_diameter_mean_px;
    let (x0, y0, x1, y1) = (-margin, -margin, w + margin, h + margin);
    let frame_area = (x1 - x0) * (y1 - y0);
    let mu = config.log_mu();
    let mut radii = Vec::new();
    let mut covered = 0.0;
    while covered < 0.95 * frame_area && radii.len() < 60_000 {
        let d = lognormal(rng, mu, config.grain_size_spread).max(1.0);
        covered += std::f64::consts::PI * d * d / 4.0;
        radii.push(d / 2.0);
    }
    radii.sort_by(|a, b| b.total_cmp(a));
    let r_max = radii.first().copied().unwrap_or(1.0);
    // Uniform grid over the frame with cells of the largest diameter: overlap checks only look at
    // the 3×3 neighbourhood.
    let cell = (2.0 * r_max).max(4.0);
    let (gw, gh) = (
        ((x1 - x0) / cell).ceil() as usize + 1,
        ((y1 - y0) / cell).ceil() as usize + 1,
    );
    let mut grid: Vec<Vec<usize>> = vec![Vec::new(); gw * gh];
    let mut circles: Vec<Circle> = Vec::with_capacity(radii.len());
    for r in radii {
        let mut best = (f64::NEG_INFINITY, 0.0, 0.0);
        for _ in 0..40 {
            let (x, y) = (uniform(rng, x0, x1), uniform(rng, y0, y1));
            let (cx, cy) = (((x - x0) / cell) as usize, ((y - y0) / cell) as usize);
            // Smallest centre distance over the sum of radii: ≥ 1 means no overlap.
            let mut worst = f64::INFINITY;
            for gy in cy.saturating_sub(1)..(cy + 2).min(gh) {
                for gx in cx.saturating_sub(1)..(cx + 2).min(gw) {
                    for &j in &grid[gy * gw + gx] {
                        let c: &Circle = &circles[j];
                        worst = worst.min((x - c.x_px).hypot_p(y - c.y_px) / (r + c.r_px));
                    }
                }
            }
            if worst > best.0 {
                best = (worst, x, y);
            }
            if worst >= 0.85 {
                break;
            }
        }
        let (_, x, y) = best;
        let (cx, cy) = (((x - x0) / cell) as usize, ((y - y0) / cell) as usize);
        grid[cy.min(gh - 1) * gw + cx.min(gw - 1)].push(circles.len());
        circles.push(Circle {
            x_px: x,
            y_px: y,
            r_px: r,
        });
    }
    circles
}

/// The power-diagram cell (circle index) of every pixel centre: argmin |p − c|² − r².
fn power_cells(circles: &[Circle], w: usize, h: usize) -> Vec<u32> {
    let mut best = vec![f64::INFINITY; w * h];
    let mut owner = vec![u32::MAX; w * h];
    // Splat each circle over a disc around it; a pixel's winner almost always lies among the
    // circles whose splat covers it. Pixels no splat reached fall back to a full search.
    for (i, c) in circles.iter().enumerate() {
        let reach = c.r_px * 1.6 + 3.0;
        let (xa, xb) = (
            (c.x_px - reach).floor().max(0.0) as usize,
            ((c.x_px + reach).ceil().max(0.0) as usize).min(w),
        );
        let (ya, yb) = (
            (c.y_px - reach).floor().max(0.0) as usize,
            ((c.y_px + reach).ceil().max(0.0) as usize).min(h),
        );
        for y in ya..yb {
            let dy = y as f64 + 0.5 - c.y_px;
            for x in xa..xb {
                let dx = x as f64 + 0.5 - c.x_px;
                let p = dx * dx + dy * dy - c.r_px * c.r_px;
                let k = y * w + x;
                if p < best[k] {
                    best[k] = p;
                    owner[k] = i as u32;
                }
            }
        }
    }
    for k in 0..w * h {
        // A pixel with a positive best power might be won by a circle whose splat missed it.
        if owner[k] == u32::MAX || best[k] > 0.0 {
            let (px, py) = ((k % w) as f64 + 0.5, (k / w) as f64 + 0.5);
            for (i, c) in circles.iter().enumerate() {
                let p = (px - c.x_px).powi_p(2) + (py - c.y_px).powi_p(2) - c.r_px * c.r_px;
                if p < best[k] {
                    best[k] = p;
                    owner[k] = i as u32;
                }
            }
        }
    }
    owner
}

/// Relabels `cells` into 4-connected components numbered 1… in raster order of first pixel.
/// Returns the labels and, per label, the circle it came from.
fn connected_grains(cells: &[u32], w: usize, h: usize) -> (Vec<u32>, Vec<u32>) {
    let mut label = vec![0u32; w * h];
    let mut source = Vec::new();
    for start in 0..w * h {
        if label[start] != 0 {
            continue;
        }
        source.push(cells[start]);
        let id = source.len() as u32;
        label[start] = id;
        imaging::regions::grow_4(w, h, &[start], |n| {
            let join = label[n] == 0 && cells[n] == cells[start];
            if join {
                label[n] = id;
            }
            join
        });
    }
    (label, source)
}

/// Separable Gaussian blur with clamped edges.
fn gaussian_blur(img: &mut [f64], w: usize, h: usize, sigma: f64) {
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f64> = (-radius..=radius)
        .map(|i| (-0.5 * (i as f64 / sigma).powi_p(2)).exp_p())
        .collect();
    let norm: f64 = kernel.iter().sum();
    let mut tmp = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (j, kv) in kernel.iter().enumerate() {
                let xx = (x as isize + j as isize - radius).clamp(0, w as isize - 1) as usize;
                acc += kv * img[y * w + xx];
            }
            tmp[y * w + x] = acc / norm;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (j, kv) in kernel.iter().enumerate() {
                let yy = (y as isize + j as isize - radius).clamp(0, h as isize - 1) as usize;
                acc += kv * tmp[yy * w + x];
            }
            img[y * w + x] = acc / norm;
        }
    }
}

/// A dark band across a bent grain: (centre x, centre y, angle rad, width px, depth).
type BendContour = (f64, f64, f64, f64, f64);

/// Renders the micrograph and ground truth of `params`.
pub fn render(params: &TemParams) -> Result<TemImage, SynthError> {
    let cfg = &params.config;
    cfg.validate()?;
    if params.circles.is_empty() {
        return Err(SynthError::InvalidParams(
            "no grain seeds (circles) in the parameters".into(),
        ));
    }
    let (w, h) = (cfg.width_px, cfg.height_px);
    let cells = power_cells(&params.circles, w, h);
    let (labels, source) = connected_grains(&cells, w, h);
    let n_grains = source.len();
    if n_grains > usize::from(u16::MAX) {
        return Err(SynthError::InvalidParams(format!(
            "{n_grains} grains do not fit 16-bit grain ids; use larger grains"
        )));
    }

    // Boundary: a pixel whose right or lower neighbour is another grain. Of any two 4-adjacent
    // pixels of different grains at least one is marked, so every grain is enclosed.
    let mut boundary = vec![false; w * h];
    let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); n_grains + 1];
    for y in 0..h {
        for x in 0..w {
            let k = y * w + x;
            for n in [(x + 1 < w).then(|| k + 1), (y + 1 < h).then(|| k + w)]
                .into_iter()
                .flatten()
            {
                if labels[n] != labels[k] {
                    boundary[k] = true;
                    let (a, b) = (labels[k] as usize, labels[n]);
                    if !neighbours[a].contains(&b) {
                        neighbours[a].push(b);
                        neighbours[b as usize].push(labels[k]);
                    }
                }
            }
        }
    }

    // Per-grain appearance, drawn in grain order from the image's own stream.
    let mut rng = ChaCha8Rng::seed_from_u64(params.noise_seed);
    let c = cfg.contrast;
    let mut brightness = vec![0.0f64; n_grains + 1];
    let mut edge = vec![(0.0f64, 0usize); n_grains + 1];
    let mut gradient = vec![(0.0f64, 0.0f64); n_grains + 1];
    let mut bend: Vec<Option<BendContour>> = vec![None; n_grains + 1];
    let mut centroid = vec![(0.0f64, 0.0f64, 0usize); n_grains + 1];
    for (k, &l) in labels.iter().enumerate() {
        let e = &mut centroid[l as usize];
        e.0 += (k % w) as f64;
        e.1 += (k / w) as f64;
        e.2 += 1;
    }
    for g in 1..=n_grains {
        // Diffraction contrast: most grains mid-grey, those near a Bragg condition dark.
        let s = normal(&mut rng);
        let mut b = 0.62
            + c * (0.25 * uniform(&mut rng, -1.0, 1.0) - 0.45 * (-(s / 0.7).powi_p(2)).exp_p());
        if rng.random::<f64>() < 0.25 {
            // Similar brightness to an already-drawn neighbour: the boundary must still be there.
            if let Some(&n) = neighbours[g].iter().find(|&&n| (n as usize) < g) {
                b = brightness[n as usize] + 0.02 * normal(&mut rng);
            }
        }
        brightness[g] = b.clamp(0.05, 0.95);
        // Boundary line darkness, and a band of 1–3 px where grains overlap in depth.
        let overlap = rng.random::<f64>() < 0.3;
        edge[g] = (
            uniform(&mut rng, 0.03, 0.22) * (0.4 + c),
            if overlap { rng.random_range(1..=3) } else { 0 },
        );
        gradient[g] = (0.004 * normal(&mut rng) * c, 0.004 * normal(&mut rng) * c);
        if rng.random::<f64>() < 0.3 {
            let (cx, cy, n) = centroid[g];
            let a = uniform(&mut rng, 0.0, std::f64::consts::PI);
            bend[g] = Some((
                cx / n.max(1) as f64,
                cy / n.max(1) as f64,
                a,
                uniform(&mut rng, 1.0, 3.5),
                uniform(&mut rng, 0.05, 0.2) * c,
            ));
        }
    }

    let mut img = vec![0.0f64; w * h];
    for (k, v) in img.iter_mut().enumerate() {
        let g = labels[k] as usize;
        let (x, y) = ((k % w) as f64, (k / w) as f64);
        let (cx, cy, n) = centroid[g];
        let (mx, my) = (cx / n.max(1) as f64, cy / n.max(1) as f64);
        *v = brightness[g] + gradient[g].0 * (x - mx) + gradient[g].1 * (y - my);
        if let Some((bx, by, a, width, depth)) = bend[g] {
            let d = (x - bx) * a.sin_p() - (y - by) * a.cos_p();
            *v -= depth * (-0.5 * (d / width).powi_p(2)).exp_p();
        }
    }
    // Boundary lines; overlapping grains darken a band around the line, fading outwards.
    for k in 0..w * h {
        if !boundary[k] {
            continue;
        }
        let (darkness, band) = edge[labels[k] as usize];
        img[k] -= darkness;
        if band > 0 {
            let (x, y) = ((k % w) as isize, (k / w) as isize);
            let b = band as isize;
            for yy in (y - b).max(0)..=(y + b).min(h as isize - 1) {
                for xx in (x - b).max(0)..=(x + b).min(w as isize - 1) {
                    let d = ((xx - x).abs().max((yy - y).abs())) as f64;
                    if d > 0.0 {
                        let kk = yy as usize * w + xx as usize;
                        img[kk] -= 0.25 * darkness * (1.0 - d / (band as f64 + 1.0));
                    }
                }
            }
        }
    }
    gaussian_blur(&mut img, w, h, params.blur_sigma_px);
    let (gx, gy) = params.illumination_gradient;
    let mut out = Vec::with_capacity(w * h);
    for (k, v) in img.iter().enumerate() {
        let (x, y) = (
            (k % w) as f64 / w as f64 - 0.5,
            (k / w) as f64 / h as f64 - 0.5,
        );
        let clean = ((v * (1.0 + gx * x + gy * y)) * params.gain + params.offset).clamp(0.0, 1.0);
        // One polar pair per pixel: shot noise (normal approximation at high dose) and read noise.
        let lambda = clean * params.dose_per_px;
        let (z_shot, z_read) = normal_pair(&mut rng);
        let electrons = if lambda >= 30.0 {
            poisson_normal(lambda, z_shot)
        } else {
            poisson(&mut rng, lambda)
        };
        let noisy = electrons / params.dose_per_px + params.read_noise * z_read;
        out.push((noisy.clamp(0.0, 1.0) * 255.0 + 0.5) as u8);
    }

    let mut grain_area_px = vec![0usize; n_grains];
    for &l in &labels {
        grain_area_px[l as usize - 1] += 1;
    }
    let grain_ecd_px = grain_area_px
        .iter()
        .map(|&a| (4.0 * a as f64 / std::f64::consts::PI).sqrt())
        .collect();
    let to_img = |e: imaging::ImageError| SynthError::InvalidParams(e.to_string());
    Ok(TemImage {
        image: Image::from_vec(w, h, out).map_err(to_img)?,
        boundary: Image::from_vec(
            w,
            h,
            boundary.iter().map(|&b| if b { 255 } else { 0 }).collect(),
        )
        .map_err(to_img)?,
        grains: Image::from_vec(w, h, labels.iter().map(|&l| l as u16).collect())
            .map_err(to_img)?,
        grain_area_px,
        grain_ecd_px,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imaging::stats::{ks_critical_1pct, ks_statistic, lognormal_cdf};

    #[test]
    fn a_redrawn_appearance_keeps_the_mask_and_changes_the_image() {
        let cfg = TemConfig::default();
        let p = sample_params(&cfg, 3, 1).expect("valid");
        let q = redraw_appearance(&p, 99, 1).expect("valid");
        assert_ne!(p.noise_seed, q.noise_seed);
        let (a, b) = (render(&p).expect("a"), render(&q).expect("b"));
        assert_eq!(a.boundary, b.boundary);
        assert_eq!(a.grains, b.grains);
        let differing = a
            .image
            .pixels()
            .iter()
            .zip(b.image.pixels())
            .filter(|(x, y)| x != y)
            .count();
        assert!(differing > a.image.pixels().len() / 2, "{differing}");
    }

    #[test]
    fn drawn_grain_sizes_follow_the_requested_lognormal() {
        let cfg = TemConfig {
            width_px: 512,
            height_px: 512,
            grain_diameter_mean_px: 20.0,
            grain_size_spread: 0.4,
            ..TemConfig::default()
        };
        let p = sample_params(&cfg, 11, 0).expect("valid");
        let d: Vec<f64> = p.circles.iter().map(|c| 2.0 * c.r_px).collect();
        assert!(d.len() >= 500, "{} grains", d.len());
        let ks = ks_statistic(&d, |x| {
            lognormal_cdf(x, cfg.log_mu(), cfg.grain_size_spread)
        });
        assert!(
            ks < ks_critical_1pct(d.len()),
            "KS D = {ks} for {} grains",
            d.len()
        );
        // And a wrong spread is rejected by the same test: it has power.
        let wrong = ks_statistic(&d, |x| lognormal_cdf(x, cfg.log_mu(), 0.6));
        assert!(
            wrong > ks_critical_1pct(d.len()),
            "KS against σ=0.6 only {wrong}"
        );
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        assert!((mean / 20.0 - 1.0).abs() < 0.05, "mean diameter {mean}");
    }

    #[test]
    fn every_grain_is_enclosed_by_boundary_pixels() {
        let cfg = TemConfig::default();
        for index in 0..5 {
            let t = render(&sample_params(&cfg, 3, index).expect("valid")).expect("renders");
            let (w, h) = (cfg.width_px, cfg.height_px);
            let (b, g) = (t.boundary.pixels(), t.grains.pixels());
            for y in 0..h {
                for x in 0..w {
                    let k = y * w + x;
                    for n in [(x + 1 < w).then(|| k + 1), (y + 1 < h).then(|| k + w)]
                        .into_iter()
                        .flatten()
                    {
                        if g[k] != g[n] {
                            assert!(
                                b[k] == 255 || b[n] == 255,
                                "grains {} and {} touch at ({x},{y}) without a boundary",
                                g[k],
                                g[n]
                            );
                        }
                    }
                }
            }
            // 1 pixel wide: the mask is thin, well below a quarter of the image.
            let frac = b.iter().filter(|&&v| v == 255).count() as f64 / (w * h) as f64;
            assert!(frac > 0.03 && frac < 0.25, "boundary fraction {frac}");
            assert_eq!(t.grain_area_px.iter().sum::<usize>(), w * h);
            assert_eq!(t.grain_ecd_px.len(), t.grain_area_px.len());
        }
    }

    #[test]
    fn every_grain_id_is_one_4_connected_region() {
        let cfg = TemConfig {
            width_px: 256,
            height_px: 256,
            ..TemConfig::default()
        };
        let t = render(&sample_params(&cfg, 5, 1).expect("valid")).expect("renders");
        let (w, h, g) = (cfg.width_px, cfg.height_px, t.grains.pixels());
        let max = *g.iter().max().expect("pixels") as usize;
        assert_eq!(max, t.grain_area_px.len());
        // Flood-fill each grain from its first pixel: it must reach all of the grain's area.
        let mut seen = vec![false; w * h];
        for id in 1..=max as u16 {
            let start = g.iter().position(|&v| v == id).expect("every id is used");
            seen[start] = true;
            let reached = imaging::regions::grow_4(w, h, &[start], |n| {
                let join = !seen[n] && g[n] == id;
                seen[n] |= join;
                join
            })
            .len();
            assert_eq!(
                reached,
                t.grain_area_px[id as usize - 1],
                "grain {id} is split"
            );
        }
    }

    #[test]
    fn contrast_separates_grains_and_noise_is_visible() {
        let clean = TemConfig {
            noise: 0.0,
            ..TemConfig::default()
        };
        let t = render(&sample_params(&clean, 9, 0).expect("valid")).expect("renders");
        let px = t.image.pixels();
        let mean = px.iter().map(|&v| f64::from(v)).sum::<f64>() / px.len() as f64;
        let sd = (px
            .iter()
            .map(|&v| (f64::from(v) - mean).powi_p(2))
            .sum::<f64>()
            / px.len() as f64)
            .sqrt();
        assert!(mean > 60.0 && mean < 200.0, "mean {mean}");
        assert!(sd > 10.0, "grain contrast too low: sd {sd}");
    }

    #[test]
    fn splatted_power_cells_equal_the_brute_force_diagram() {
        for (seed, spread) in [(4u64, 0.35), (7, 0.8)] {
            let cfg = TemConfig {
                grain_size_spread: spread,
                ..TemConfig::default()
            };
            let p = sample_params(&cfg, seed, 0).expect("valid");
            let (w, h) = (cfg.width_px, cfg.height_px);
            let fast = power_cells(&p.circles, w, h);
            let mut wrong = 0;
            for (k, &owner) in fast.iter().enumerate() {
                let (x, y) = ((k % w) as f64 + 0.5, (k / w) as f64 + 0.5);
                let power =
                    |c: &Circle| (x - c.x_px).powi(2) + (y - c.y_px).powi(2) - c.r_px * c.r_px;
                let best = p.circles.iter().map(power).fold(f64::INFINITY, f64::min);
                if power(&p.circles[owner as usize]) > best {
                    wrong += 1;
                }
            }
            assert_eq!(
                wrong, 0,
                "seed {seed}: {wrong} pixels assigned to the wrong cell"
            );
        }
    }

    #[test]
    fn bad_config_is_rejected_with_the_parameter_name() {
        let err = sample_params(
            &TemConfig {
                contrast: 2.0,
                ..TemConfig::default()
            },
            0,
            0,
        )
        .expect_err("invalid");
        assert!(err.to_string().contains("contrast"), "{err}");
    }
}
