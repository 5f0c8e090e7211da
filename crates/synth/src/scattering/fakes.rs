//! Unrealistic images for training realism classifiers (seed 000) before generated images and
//! expert labels exist: clean engine images damaged in the ways generative models fail.
//!
//! Each [`FakeKind`] is a transform of an engine image that keeps most of it plausible and breaks
//! one physical property: rings interrupted where nothing blocks them, a half-plane of the pattern
//! that does not continue the other half (Friedel symmetry broken), intensity rising with q,
//! a beamstop smeared into the pattern, blobs and checkerboard artefacts, ring spacings that no
//! lattice or form factor produces. The transforms are deterministic given their random stream,
//! use only portable maths, and return counts in the detector's range.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::math::Portable;
use crate::rng::{log_uniform, poisson, uniform};

use super::{SaxsImage, SaxsParams, Truth};
use imaging::Image;

/// The ways a fake departs from physics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FakeKind {
    /// Rings or halos missing over random arcs with nothing in the way.
    BrokenRings,
    /// One half-plane through the beam centre radially stretched: rings jump at the seam.
    SymmetryViolation,
    /// Intensity multiplied by a rising power of the radius.
    WrongFalloff,
    /// The beamstop shadow blurred far into the pattern, as by a generator that half-learned it.
    SmearedBeamstop,
    /// Bright Gaussian blobs where the physics puts nothing.
    Blobs,
    /// A periodic checkerboard modulation (transposed-convolution artefact).
    Checkerboard,
    /// The radius warped non-linearly: every ring plausible, their spacings unphysical.
    UnphysicalSpacing,
    /// Not a pattern at all: Poisson counts of one flat level.
    FlatPoisson,
    /// Not a pattern at all: parallel bands (a test pattern, a read-out fault).
    Stripes,
    /// Not a pattern at all: a smooth ramp.
    Gradient,
    /// Not a pattern at all: independent uniform values of an 8-, 10- or 12-bit range.
    UniformNoise,
    /// Not a pattern at all: shapes, edges and texture, like a photograph of a scene.
    PhotoLike,
}

impl FakeKind {
    /// All kinds, in a fixed order.
    pub const ALL: [FakeKind; 7] = [
        FakeKind::BrokenRings,
        FakeKind::SymmetryViolation,
        FakeKind::WrongFalloff,
        FakeKind::SmearedBeamstop,
        FakeKind::Blobs,
        FakeKind::Checkerboard,
        FakeKind::UnphysicalSpacing,
    ];

    /// Frames that are no scattering pattern at all (they ignore the engine image but for its
    /// size): what a user may load by mistake, or a generator that learnt nothing draws. The
    /// plausibility check (`imaging::plausibility`) catches the blatant ones (all one value,
    /// two levels, 16-bit noise) before any model; these reach the realism ensemble.
    pub const NOT_SCATTERING: [FakeKind; 5] = [
        FakeKind::FlatPoisson,
        FakeKind::Stripes,
        FakeKind::Gradient,
        FakeKind::UniformNoise,
        FakeKind::PhotoLike,
    ];

    /// Stable name for files and reports.
    pub fn name(self) -> &'static str {
        match self {
            FakeKind::BrokenRings => "broken_rings",
            FakeKind::SymmetryViolation => "symmetry_violation",
            FakeKind::WrongFalloff => "wrong_falloff",
            FakeKind::SmearedBeamstop => "smeared_beamstop",
            FakeKind::Blobs => "blobs",
            FakeKind::Checkerboard => "checkerboard",
            FakeKind::UnphysicalSpacing => "unphysical_spacing",
            FakeKind::FlatPoisson => "flat_poisson",
            FakeKind::Stripes => "stripes",
            FakeKind::Gradient => "gradient",
            FakeKind::UniformNoise => "uniform_noise",
            FakeKind::PhotoLike => "photo_like",
        }
    }
}

/// Bilinear sample of `img` at continuous pixel coordinates (pixel centres at `x + 0.5`),
/// clamped to the image.
fn sample(img: &Image<f32>, x: f64, y: f64) -> f64 {
    let (w, h) = (img.width(), img.height());
    let fx = (x - 0.5).clamp(0.0, (w - 1) as f64);
    let fy = (y - 0.5).clamp(0.0, (h - 1) as f64);
    let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (tx, ty) = (fx - x0 as f64, fy - y0 as f64);
    let p = |x: usize, y: usize| f64::from(img.get(x, y));
    let top = p(x0, y0) * (1.0 - tx) + p(x1, y0) * tx;
    let bottom = p(x0, y1) * (1.0 - tx) + p(x1, y1) * tx;
    top * (1.0 - ty) + bottom * ty
}

/// Applies `f(x_centre, y_centre, dx, dy, r, χ, value) → value` to every pixel.
fn map_polar(
    img: &Image<f32>,
    cx: f64,
    cy: f64,
    mut f: impl FnMut(f64, f64, f64, f64, f64, f64, f64) -> f64,
) -> Image<f32> {
    let (w, h) = (img.width(), img.height());
    let mut out = img.clone();
    for y in 0..h {
        for x in 0..w {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            let (dx, dy) = (px - cx, py - cy);
            let r = dx.hypot_p(dy);
            let chi = (-dy).atan2_p(dx);
            let v = f(px, py, dx, dy, r, chi, f64::from(img.get(x, y)));
            out.pixels_mut()[y * w + x] = v.max(0.0) as f32;
        }
    }
    out
}

/// A fake must change at least this fraction of the pixels visibly (by more than 3 counts and
/// 10 %); otherwise the image does not show the defect (a ring too faint to break, say).
const MIN_CHANGED_FRACTION: f64 = 0.005;

/// Makes a fake of kind `kind` from an engine image `counts` rendered from `params` with ground
/// truth `truth`. `rng` drives every random choice. `None` when the defect would not be visible
/// in this image (try another kind or image).
pub fn make_fake(
    counts: &Image<f32>,
    params: &SaxsParams,
    truth: &Truth,
    kind: FakeKind,
    rng: &mut impl Rng,
) -> Option<Image<f32>> {
    let g = params.geometry;
    let (cx, cy) = (g.beam_x_px, g.beam_y_px);
    let size = counts.width().max(counts.height()) as f64;
    let saturation = f64::from(params.saturation_counts);
    if FakeKind::NOT_SCATTERING.contains(&kind) {
        return not_a_pattern(kind, counts.width(), counts.height(), rng);
    }
    let mut out = match kind {
        FakeKind::BrokenRings => {
            // Arcs of the brightest rings replaced by what lies just inside and outside them;
            // without rings, arcs of an annulus of the pattern itself.
            let mut bands: Vec<(f64, f64)> = truth
                .rings
                .iter()
                .map(|r| (r.radius_px, (r.radius_px * r.width_rel).max(2.0)))
                .collect();
            if bands.is_empty() {
                let r0 = uniform(rng, 0.1, 0.35) * size;
                bands.push((r0, uniform(rng, 3.0, 10.0)));
            }
            let gaps: Vec<(f64, f64)> = (0..rng.random_range(2..=4))
                .map(|_| {
                    let start = uniform(rng, -std::f64::consts::PI, std::f64::consts::PI);
                    (start, uniform(rng, 0.35, 1.0))
                })
                .collect();
            let in_gap = |chi: f64| {
                gaps.iter().any(|&(s, len)| {
                    let d = (chi - s).rem_euclid(std::f64::consts::TAU);
                    d < len
                })
            };
            map_polar(counts, cx, cy, |_, _, dx, dy, r, chi, v| {
                let Some(&(r0, hw)) = bands.iter().find(|(r0, hw)| (r - r0).abs() < 2.5 * hw)
                else {
                    return v;
                };
                if !in_gap(chi) || r < 1.0 {
                    return v;
                }
                let (ux, uy) = (dx / r, dy / r);
                let inner = sample(counts, cx + ux * (r0 - 3.0 * hw), cy + uy * (r0 - 3.0 * hw));
                let outer = sample(counts, cx + ux * (r0 + 3.0 * hw), cy + uy * (r0 + 3.0 * hw));
                let t = ((r - (r0 - 3.0 * hw)) / (6.0 * hw)).clamp(0.0, 1.0);
                v.min(inner * (1.0 - t) + outer * t)
            })
        }
        FakeKind::SymmetryViolation => {
            // Half-plane on one side of a line through the centre, sampled at r / s.
            let normal = uniform(rng, -std::f64::consts::PI, std::f64::consts::PI);
            let (nx, ny) = (normal.cos_p(), normal.sin_p());
            let s = if rng.random::<bool>() {
                uniform(rng, 1.08, 1.2)
            } else {
                uniform(rng, 0.83, 0.93)
            };
            map_polar(counts, cx, cy, |_, _, dx, dy, _, _, v| {
                if dx * nx + dy * ny > 0.0 {
                    sample(counts, cx + dx / s, cy + dy / s)
                } else {
                    v
                }
            })
        }
        FakeKind::WrongFalloff => {
            let alpha = uniform(rng, 1.0, 2.5);
            let r_ref = 0.25 * size;
            map_polar(counts, cx, cy, |_, _, _, _, r, _, v| {
                v * (r.max(1.0) / r_ref).powf_p(alpha)
            })
        }
        FakeKind::SmearedBeamstop => {
            // Blur the image around the shadow (or the centre) with a wide box, blended in.
            let radius = uniform(rng, 6.0, 14.0).round() as usize;
            let reach = uniform(rng, 25.0, 60.0) * size / 256.0;
            let blurred = box_blur(counts, radius);
            let shadow = params.beamstop.as_ref().map(super::Beamstop::shadow);
            map_polar(counts, cx, cy, |px, py, dx, dy, r, _, v| {
                let d = shadow
                    .as_ref()
                    .map_or(r, |s| s.distance_outside(dx, dy).max(0.0));
                let weight = (1.0 - d / reach).clamp(0.0, 1.0);
                let b = sample(&blurred, px, py);
                v * (1.0 - weight) + b * weight
            })
        }
        FakeKind::Blobs => {
            let blobs: Vec<(f64, f64, f64, f64)> = (0..rng.random_range(1..=5))
                .map(|_| {
                    let (x, y) = (uniform(rng, 0.1, 0.9) * size, uniform(rng, 0.1, 0.9) * size);
                    let sigma = uniform(rng, 2.0, 12.0) * size / 256.0;
                    let gain = log_uniform(rng, 2.0, 20.0);
                    (x, y, sigma, gain)
                })
                .collect();
            // Blob height relative to the pattern's median, so they show on any exposure.
            let mut sorted: Vec<f32> = counts.pixels().to_vec();
            let mid = sorted.len() / 2;
            let median = f64::from(*sorted.select_nth_unstable_by(mid, f32::total_cmp).1).max(10.0);
            map_polar(counts, cx, cy, |px, py, _, _, _, _, v| {
                v + blobs
                    .iter()
                    .map(|&(x, y, s, gain)| {
                        let d2 = ((px - x) * (px - x) + (py - y) * (py - y)) / (s * s);
                        if d2 < 25.0 {
                            gain * median * (-0.5 * d2).exp_p()
                        } else {
                            0.0
                        }
                    })
                    .sum::<f64>()
            })
        }
        FakeKind::Checkerboard => {
            let period = [1usize, 2, 4][rng.random_range(0..3)];
            let amplitude = uniform(rng, 0.15, 0.5);
            map_polar(counts, cx, cy, |px, py, _, _, _, _, v| {
                let cell = (px as usize / period) + (py as usize / period);
                v * if cell.is_multiple_of(2) {
                    1.0 + amplitude
                } else {
                    1.0 - amplitude
                }
            })
        }
        FakeKind::UnphysicalSpacing => {
            // r' = r·(1 + β sin(π r / R)): each ring keeps its look, their ratios do not.
            let beta = uniform(rng, 0.12, 0.25) * if rng.random::<bool>() { 1.0 } else { -1.0 };
            let period = uniform(rng, 0.3, 0.7) * size;
            map_polar(counts, cx, cy, |_, _, dx, dy, r, _, _| {
                if r < 1.0 {
                    return sample(counts, cx + dx, cy + dy);
                }
                let warped = r * (1.0 + beta * (std::f64::consts::PI * r / period).sin_p());
                let k = warped / r;
                sample(counts, cx + dx * k, cy + dy * k)
            })
        }
        _ => return None,
    };
    for v in out.pixels_mut() {
        *v = v.min(saturation as f32).round();
    }
    let changed = out
        .pixels()
        .iter()
        .zip(counts.pixels())
        .filter(|&(&a, &b)| (a - b).abs() > 3.0_f32.max(0.1 * b.abs()))
        .count();
    (changed as f64 >= MIN_CHANGED_FRACTION * out.pixels().len() as f64).then_some(out)
}

/// A `width × height` frame of one of [`FakeKind::NOT_SCATTERING`] (any other kind: zeros);
/// `None` for an empty size.
pub fn not_a_pattern(
    kind: FakeKind,
    width: usize,
    height: usize,
    rng: &mut impl Rng,
) -> Option<Image<f32>> {
    let (w, h) = (width as f64, height as f64);
    let level = log_uniform(rng, 0.5, 2000.0);
    let counted = rng.random::<bool>();
    let noisy = |rng: &mut _, mean: f64| {
        if counted {
            poisson(rng, mean.max(0.0))
        } else {
            mean.max(0.0).round()
        }
    };
    let mut out = vec![0f32; width * height];
    match kind {
        FakeKind::FlatPoisson => {
            for v in out.iter_mut() {
                *v = poisson(rng, level) as f32;
            }
        }
        FakeKind::Stripes => {
            let period = uniform(rng, 3.0, 0.25 * w.max(h));
            let angle = [0.0, 90.0, 45.0, uniform(rng, 0.0, 180.0)][rng.random_range(0..4)];
            let (ux, uy) = (angle.to_radians().cos_p(), angle.to_radians().sin_p());
            let contrast = log_uniform(rng, 1.5, 50.0);
            let smooth = rng.random::<bool>();
            for y in 0..height {
                for x in 0..width {
                    let t = ((x as f64 + 0.5) * ux + (y as f64 + 0.5) * uy) / period;
                    let phase = t - t.floor();
                    let on = if smooth {
                        0.5 + 0.5 * (std::f64::consts::TAU * t).sin_p()
                    } else {
                        f64::from(u8::from(phase < 0.5))
                    };
                    out[y * width + x] = noisy(rng, level * (1.0 + (contrast - 1.0) * on)) as f32;
                }
            }
        }
        FakeKind::Gradient => {
            let angle = uniform(rng, 0.0, std::f64::consts::TAU);
            let (ux, uy) = (angle.cos_p(), angle.sin_p());
            let span = w * ux.abs() + h * uy.abs();
            let (a, b) = (level, level * log_uniform(rng, 2.0, 200.0));
            let log_ramp = rng.random::<bool>();
            for y in 0..height {
                for x in 0..width {
                    let t = (((x as f64 - w / 2.0) * ux + (y as f64 - h / 2.0) * uy) / span + 0.5)
                        .clamp(0.0, 1.0);
                    let mean = if log_ramp {
                        a * (b / a).powf_p(t)
                    } else {
                        a + (b - a) * t
                    };
                    out[y * width + x] = noisy(rng, mean) as f32;
                }
            }
        }
        FakeKind::UniformNoise => {
            let top = [255.0, 1023.0, 4095.0][rng.random_range(0..3)];
            for v in out.iter_mut() {
                *v = uniform(rng, 0.0, top + 1.0).floor() as f32;
            }
        }
        FakeKind::PhotoLike => {
            // A lit background, then overlapping shapes of their own grey and shading, then
            // grain: edges at every angle and scale, nothing centred, as in a photograph.
            let (gx, gy, g0) = (
                uniform(rng, -1.0, 1.0),
                uniform(rng, -1.0, 1.0),
                uniform(rng, 60.0, 180.0),
            );
            let mut grey: Vec<f64> = (0..width * height)
                .map(|i| {
                    let (x, y) = ((i % width) as f64 / w - 0.5, (i / width) as f64 / h - 0.5);
                    g0 + 60.0 * (gx * x + gy * y)
                })
                .collect();
            for _ in 0..rng.random_range(4..=30) {
                let (cx, cy) = (uniform(rng, 0.0, w), uniform(rng, 0.0, h));
                let (rx, ry) = (
                    log_uniform(rng, 0.02, 0.5) * w,
                    log_uniform(rng, 0.02, 0.5) * h,
                );
                let (tone, shade) = (uniform(rng, 0.0, 255.0), uniform(rng, -40.0, 40.0));
                let ellipse = rng.random::<bool>();
                for (i, g) in grey.iter_mut().enumerate() {
                    let dx = ((i % width) as f64 + 0.5 - cx) / rx;
                    let dy = ((i / width) as f64 + 0.5 - cy) / ry;
                    let inside = if ellipse {
                        dx * dx + dy * dy <= 1.0
                    } else {
                        dx.abs() <= 1.0 && dy.abs() <= 1.0
                    };
                    if inside {
                        *g = tone + shade * dy;
                    }
                }
            }
            let grain = uniform(rng, 1.0, 12.0);
            for (v, g) in out.iter_mut().zip(&grey) {
                *v = (g + grain * crate::rng::normal(rng))
                    .clamp(0.0, 255.0)
                    .round() as f32;
            }
        }
        _ => {}
    }
    Image::from_vec(width, height, out).ok()
}

/// Mean over a `(2r+1)²` box, by summed-area table.
fn box_blur(img: &Image<f32>, r: usize) -> Image<f32> {
    let (w, h) = (img.width(), img.height());
    let sw = w + 1;
    let mut table = vec![0.0f64; sw * (h + 1)];
    for y in 0..h {
        for x in 0..w {
            let i = (y + 1) * sw + x + 1;
            table[i] = f64::from(img.get(x, y)) + table[i - 1] + table[i - sw] - table[i - sw - 1];
        }
    }
    let mut out = img.clone();
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let sum = table[y1 * sw + x1] - table[y0 * sw + x1] - table[y1 * sw + x0]
                + table[y0 * sw + x0];
            out.pixels_mut()[y * w + x] = (sum / ((x1 - x0) * (y1 - y0)) as f64) as f32;
        }
    }
    out
}

/// The counts of a rendered image as `f32`.
pub fn counts_f32(image: &SaxsImage) -> Image<f32> {
    image.counts.map(|c| c as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::image_rng;
    use crate::scattering::{SaxsConfig, render, sample_params};

    fn engine(index: u64) -> (SaxsParams, SaxsImage, Truth) {
        let config = SaxsConfig {
            size_px: 128,
            ..SaxsConfig::default()
        };
        let p = sample_params(&config, 21, index).expect("params");
        let img = render(&p).expect("render");
        let t = Truth::of(&p, &img);
        (p, img, t)
    }

    #[test]
    fn every_kind_applies_to_most_engine_images_and_stays_in_range() {
        for kind in FakeKind::ALL {
            let mut made = 0;
            for index in 0..12 {
                let (p, img, t) = engine(index);
                let counts = counts_f32(&img);
                let mut rng = image_rng(5, index);
                let Some(fake) = make_fake(&counts, &p, &t, kind, &mut rng) else {
                    continue;
                };
                made += 1;
                assert_eq!(
                    (fake.width(), fake.height()),
                    (counts.width(), counts.height())
                );
                assert!(
                    fake.pixels()
                        .iter()
                        .all(|&v| v >= 0.0 && v <= p.saturation_counts as f32 && v.fract() == 0.0),
                    "{kind:?} out of range"
                );
            }
            // Broken rings and smeared beamstops need a ring or a beamstop; the rest apply to
            // nearly every image.
            assert!(made >= 4, "{kind:?} applied to only {made} of 12 images");
        }
    }

    #[test]
    fn fakes_are_reproducible_from_their_stream() {
        let (p, img, t) = engine(4);
        let counts = counts_f32(&img);
        let a = make_fake(&counts, &p, &t, FakeKind::Blobs, &mut image_rng(9, 1));
        let b = make_fake(&counts, &p, &t, FakeKind::Blobs, &mut image_rng(9, 1));
        assert!(a.is_some());
        assert_eq!(a, b);
    }

    #[test]
    fn wrong_falloff_multiplies_by_a_rising_power_of_the_radius() {
        let (p, img, t) = engine(6);
        let counts = counts_f32(&img);
        let fake = make_fake(
            &counts,
            &p,
            &t,
            FakeKind::WrongFalloff,
            &mut image_rng(1, 1),
        )
        .expect("applies");
        // ln(fake/original) against ln r: a straight line of slope α ∈ [1, 2.5].
        let (cx, cy) = (p.geometry.beam_x_px, p.geometry.beam_y_px);
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for y in 0..counts.height() {
            for x in 0..counts.width() {
                let (a, b) = (fake.get(x, y), counts.get(x, y));
                let r = (x as f64 + 0.5 - cx).hypot(y as f64 + 0.5 - cy);
                if b > 200.0 && a > 200.0 && a < p.saturation_counts as f32 && r > 2.0 {
                    xs.push(r.ln());
                    ys.push((f64::from(a) / f64::from(b)).ln());
                }
            }
        }
        assert!(xs.len() > 100, "{} bright pixels", xs.len());
        let n = xs.len() as f64;
        let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
        let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
        let slope = sxy / sxx;
        assert!((0.95..=2.55).contains(&slope), "slope {slope}");
    }

    #[test]
    fn frames_that_are_no_pattern_are_integer_counts_in_range_and_reproducible() {
        let (p, img, t) = engine(2);
        let counts = counts_f32(&img);
        for kind in FakeKind::NOT_SCATTERING {
            for i in 0..6 {
                let mut rng = image_rng(9, i);
                let frame = make_fake(&counts, &p, &t, kind, &mut rng).expect("always made");
                assert_eq!(
                    (frame.width(), frame.height()),
                    (counts.width(), counts.height())
                );
                let px = frame.pixels();
                assert!(
                    px.iter()
                        .all(|v| v.is_finite() && *v >= 0.0 && v.fract() == 0.0)
                );
                let (lo, hi) = px
                    .iter()
                    .fold((f32::MAX, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
                assert!(hi > lo, "{kind:?} is one value");
                // Integer counts within a 16-bit detector's range, as a file would hold them.
                assert!(hi < 65_535.0, "{kind:?} reaches {hi}");
                let same = make_fake(&counts, &p, &t, kind, &mut image_rng(9, i)).expect("made");
                assert!(same == frame, "{kind:?} is not reproducible");
            }
        }
        // A photograph-like frame has 8-bit values and edges: many neighbours differ a lot.
        let photo = not_a_pattern(FakeKind::PhotoLike, 64, 64, &mut image_rng(4, 0)).expect("made");
        assert!(photo.pixels().iter().all(|&v| v <= 255.0));
        assert!(not_a_pattern(FakeKind::Blobs, 0, 0, &mut image_rng(4, 0)).is_none());
    }
}
