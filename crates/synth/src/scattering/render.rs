//! Rendering parameters to photon counts.
//!
//! Every beam-centred term is tabulated once per image as a function of the radius (4 samples
//! per pixel, box-filtered over one pixel to integrate over the pixel) and, for anisotropic
//! terms, of the azimuth χ (4096 bins); the pixel loop then only interpolates tables. This keeps a
//! 1000×1000 image at tens of milliseconds.

use crate::math::Portable;

use imaging::Image;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::SaxsParams;
use super::components::{Component, angular_factor};
use super::geometry::REFERENCE_SIZE_PX;
use crate::SynthError;
use crate::rng::{poisson, splitmix64};

/// Table samples per pixel of radius.
const SAMPLES_PER_PX: usize = 4;
/// Bins over χ ∈ [−π, π).
const CHI_BINS: usize = 4096;

/// A rendered detector image.
#[derive(Debug, Clone, PartialEq)]
pub struct SaxsImage {
    /// Photon counts, clipped at the saturation level; 0 in detector gaps.
    pub counts: Image<u32>,
    /// `true` where the detector has no sensor (module gaps), if the detector has gaps.
    pub gap_mask: Option<Vec<bool>>,
    /// Pixels that reached the saturation level.
    pub saturated_pixels: usize,
}

/// f(r) sampled every 1/SAMPLES_PER_PX px, linearly interpolated.
struct RadialTable(Vec<f32>);

impl RadialTable {
    fn build(r_max_px: f64, f: impl Fn(f64) -> f64) -> Self {
        let n = (r_max_px.ceil() as usize + 4) * SAMPLES_PER_PX;
        let raw: Vec<f64> = (0..n)
            .map(|k| f(k as f64 / SAMPLES_PER_PX as f64))
            .collect();
        // Box filter over one pixel: the detector integrates over its pixels.
        let half = SAMPLES_PER_PX / 2;
        let mut out = vec![0f32; n];
        let mut acc: f64 = raw[..half.min(n)].iter().sum();
        let mut count = half.min(n);
        for k in 0..n {
            if k + half < n {
                acc += raw[k + half];
                count += 1;
            }
            if k > half {
                acc -= raw[k - half - 1];
                count -= 1;
            }
            out[k] = (acc / count as f64) as f32;
        }
        Self(out)
    }

    #[inline]
    fn at(&self, r_px: f64) -> f32 {
        let t = r_px * SAMPLES_PER_PX as f64;
        let i = t as usize;
        if i + 1 >= self.0.len() {
            return *self.0.last().unwrap_or(&0.0);
        }
        let f = (t - i as f64) as f32;
        self.0[i] * (1.0 - f) + self.0[i + 1] * f
    }
}

/// g(χ) in CHI_BINS bins over [−π, π).
pub(super) struct ChiTable(Vec<f32>);

impl ChiTable {
    fn build(f: impl Fn(f64) -> f64) -> Self {
        Self(
            (0..CHI_BINS)
                .map(|k| {
                    f(-std::f64::consts::PI
                        + (k as f64 + 0.5) * std::f64::consts::TAU / CHI_BINS as f64)
                        as f32
                })
                .collect(),
        )
    }

    #[inline]
    pub(super) fn at(&self, chi_rad: f64) -> f32 {
        let t = (chi_rad + std::f64::consts::PI) * (CHI_BINS as f64 / std::f64::consts::TAU);
        self.0[(t as usize).min(CHI_BINS - 1)]
    }
}

/// The factor by which an anisotropic diffuse term stretches the radius at azimuth χ: q is
/// stretched by ε perpendicular to χ₀, so the pattern is elongated along χ₀.
pub(super) fn stretch_factor(eps: f64, chi0_rad: f64, chi_rad: f64) -> f64 {
    ((chi_rad - chi0_rad).cos_p().powi_p(2) + (eps * (chi_rad - chi0_rad).sin_p()).powi_p(2)).sqrt()
}

/// How one anisotropic term is evaluated per pixel.
enum Term {
    /// radial(r) × angular(χ).
    Separable(RadialTable, ChiTable),
    /// radial(r · stretch(χ)).
    Stretched(RadialTable, ChiTable),
    /// radial(r) × speckle(x, y).
    Speckled(RadialTable, f64, u64),
}

/// Angular profile of a ring of grains: von Mises-like spots at random χ, normalised to mean 1.
pub(super) fn spot_profile(graininess: f64, seed: u64) -> ChiTable {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let spots = (8.0 + 600.0 * (1.0 - graininess).powi_p(3)).round() as usize;
    let width_rad = (0.3 + 2.0 * (1.0 - graininess)).to_radians();
    let list: Vec<(f64, f64)> = (0..spots)
        .map(|_| {
            (
                rng.random::<f64>() * std::f64::consts::TAU,
                0.3 + rng.random::<f64>(),
            )
        })
        .collect();
    let reach = 6.0 * width_rad;
    let mut table = ChiTable::build(|chi| {
        list.iter()
            .filter(|&&(c, _)| {
                let d = (chi - c + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
                    - std::f64::consts::PI;
                d.abs() < reach
            })
            .map(|&(c, a)| {
                let d = (chi - c + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
                    - std::f64::consts::PI;
                a * (-0.5 * (d / width_rad).powi_p(2)).exp_p()
            })
            .sum()
    });
    let mean = table.0.iter().map(|&v| f64::from(v)).sum::<f64>() / CHI_BINS as f64;
    for v in &mut table.0 {
        *v = (f64::from(*v) / mean.max(1e-12)) as f32;
    }
    table
}

#[cfg(test)]
#[test]
fn fast_atan2_matches_libm() {
    let mut worst = 0.0f64;
    for i in 0..10_000 {
        let a = i as f64 * 0.000_628_3 - std::f64::consts::PI;
        let (y, x) = (
            a.sin_p() * (1.0 + i as f64 * 0.01),
            a.cos_p() * (1.0 + i as f64 * 0.01),
        );
        worst = worst.max((fast_atan2(y, x) - y.atan2(x)).abs());
    }
    assert!(worst < 2e-5, "max error {worst}");
}

/// Coherent speckle: value noise on a grid of `cell_px`, exponential intensity statistics, mean 1.
#[inline]
fn speckle(x: f64, y: f64, cell_px: f64, seed: u64) -> f64 {
    let (gx, gy) = (x / cell_px, y / cell_px);
    let (ix, iy) = (gx.floor(), gy.floor());
    let (fx, fy) = (gx - ix, gy - iy);
    let node = |i: f64, j: f64| {
        let h = splitmix64(
            seed ^ splitmix64(
                (i as i64 as u64).wrapping_mul(0x9E37_79B9)
                    ^ (j as i64 as u64).wrapping_mul(0x85EB_CA6B),
            ),
        );
        // Exponential variate from the top 53 bits.
        -(1.0 - (h >> 11) as f64 / (1u64 << 53) as f64).ln_p()
    };
    let top = node(ix, iy) * (1.0 - fx) + node(ix + 1.0, iy) * fx;
    let bottom = node(ix, iy + 1.0) * (1.0 - fx) + node(ix + 1.0, iy + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// atan2 to about 1e-5 rad (a 4096-bin χ table has 1.5e-3 rad bins), several times faster
/// than libm's: a minimax polynomial for atan on [0, 1] plus octant folding.
#[inline]
fn fast_atan2(y: f64, x: f64) -> f64 {
    let (ax, ay) = (x.abs(), y.abs());
    if ax == 0.0 && ay == 0.0 {
        return 0.0;
    }
    let (num, den, swapped) = if ay > ax {
        (ax, ay, true)
    } else {
        (ay, ax, false)
    };
    let t = num / den;
    let t2 = t * t;
    // atan(t) on [0, 1], max error ≈ 1e-5 rad.
    let mut a = t
        * (0.999_866_0
            + t2 * (-0.330_299_5 + t2 * (0.180_141_0 + t2 * (-0.085_133_0 + t2 * 0.020_835_1))));
    if swapped {
        a = std::f64::consts::FRAC_PI_2 - a;
    }
    if x < 0.0 {
        a = std::f64::consts::PI - a;
    }
    if y < 0.0 { -a } else { a }
}

/// The expected (noise-free) counts of a set of components and, optionally, of everything else
/// on the detector, evaluated pixel by pixel. [`render`] adds noise to a scene of everything;
/// the visibility test of the ground truth compares a scene of one component with it.
pub(crate) struct Scene<'a> {
    params: &'a SaxsParams,
    /// All isotropic beam-centred terms, summed.
    iso: RadialTable,
    /// Anisotropic and speckled terms.
    terms: Vec<Term>,
    need_chi: bool,
    /// Background, slit streak and direct beam included.
    extras: bool,
    background: Option<Vec<f32>>,
    /// Direct beam σx, σy and the half-size of the box it is evaluated in, px.
    beam_sigma_px: (f64, f64),
    beam_box_px: f64,
    shadow: Option<super::components::Shadow>,
}

impl<'a> Scene<'a> {
    /// The scene of `components` (usually `params.components`) seen through `params`' beamstop
    /// at its exposure; with `extras`, also its background, slit streak and direct beam.
    pub(crate) fn new(params: &'a SaxsParams, components: &[Component], extras: bool) -> Self {
        let g = &params.geometry;
        let (_, r_far) = g.radius_range_px();
        let q_of = |r: f64| g.q_at_radius(r);
        let iso_fns: Vec<_> = components
            .iter()
            .filter(|c| {
                c.angular().is_none()
                    && c.stretch().is_none()
                    && !matches!(
                        c,
                        Component::SpeckledRing { .. } | Component::CoherentHalo { .. }
                    )
            })
            .map(|c| c.radial_fn())
            .collect();
        let iso = RadialTable::build(r_far, |r| {
            let q = q_of(r);
            iso_fns.iter().map(|f| f(q)).sum()
        });
        let mut terms = Vec::new();
        for c in components {
            let f = c.radial_fn();
            if let Some((eta, n, chi0)) = c.angular() {
                terms.push(Term::Separable(
                    RadialTable::build(r_far, |r| f(q_of(r))),
                    ChiTable::build(|chi| angular_factor(eta, n, chi0, chi)),
                ));
            } else if let Some((eps, chi0)) = c.stretch() {
                // q is stretched by ε perpendicular to χ₀: the pattern is elongated along χ₀.
                let stretch = ChiTable::build(|chi| stretch_factor(eps, chi0, chi));
                let r_max = r_far * eps.max(1.0);
                terms.push(Term::Stretched(
                    RadialTable::build(r_max, |r| f(q_of(r))),
                    stretch,
                ));
            } else if let Component::SpeckledRing {
                graininess,
                spot_seed,
                ..
            } = c
            {
                terms.push(Term::Separable(
                    RadialTable::build(r_far, |r| f(q_of(r))),
                    spot_profile(*graininess, *spot_seed),
                ));
            } else if let Component::CoherentHalo { speckle_px, .. } = c {
                terms.push(Term::Speckled(
                    RadialTable::build(r_far, |r| f(q_of(r))),
                    *speckle_px,
                    params.noise_seed ^ 0xC0FFEE,
                ));
            }
        }
        let need_chi = terms.iter().any(|t| !matches!(t, Term::Speckled(..)));
        let db = params.direct_beam;
        let beam_sigma_px = (db.width_px / 2.3548, db.height_px / 2.3548);
        Self {
            params,
            iso,
            terms,
            need_chi,
            extras,
            background: extras
                .then(|| {
                    params
                        .background
                        .as_ref()
                        .map(|b| b.map(g.width_px, g.height_px))
                })
                .flatten(),
            beam_sigma_px,
            beam_box_px: (5.0 * beam_sigma_px.0.max(beam_sigma_px.1)).ceil(),
            shadow: params.beamstop.as_ref().map(super::Beamstop::shadow),
        }
    }

    /// Expected counts at pixel (x, y), before noise, saturation, zingers and detector gaps.
    #[inline]
    pub(crate) fn expected(&self, x: usize, y: usize) -> f64 {
        self.expected_with(x, y, self.sample(x, y))
    }

    /// The beam-centred terms at pixel (x, y) at exposure 1, without the beamstop.
    #[inline]
    pub(crate) fn sample(&self, x: usize, y: usize) -> f64 {
        let g = &self.params.geometry;
        let dx = x as f64 + 0.5 - g.beam_x_px;
        let dy = y as f64 + 0.5 - g.beam_y_px;
        let r = (dx * dx + dy * dy).sqrt();
        let mut v = f64::from(self.iso.at(r));
        if !self.terms.is_empty() {
            let chi = if self.need_chi {
                fast_atan2(-dy, dx)
            } else {
                0.0
            };
            for t in &self.terms {
                v += f64::from(match t {
                    Term::Separable(radial, angular) => radial.at(r) * angular.at(chi),
                    Term::Stretched(radial, stretch) => radial.at(r * f64::from(stretch.at(chi))),
                    Term::Speckled(radial, cell, seed) => {
                        let base = radial.at(r);
                        if base > 1e-3 {
                            base * speckle(x as f64, y as f64, *cell, *seed) as f32
                        } else {
                            0.0
                        }
                    }
                });
            }
        }
        v
    }

    /// Expected counts at pixel (x, y) for a given value `sample` of the beam-centred terms:
    /// adds background, slit streak and direct beam (with `extras`), applies the beamstop and
    /// the exposure.
    #[inline]
    pub(crate) fn expected_with(&self, x: usize, y: usize, sample: f64) -> f64 {
        let params = self.params;
        let g = &params.geometry;
        let dx = x as f64 + 0.5 - g.beam_x_px;
        let dy = y as f64 + 0.5 - g.beam_y_px;
        let mut v = sample;
        if self.extras {
            if let Some(bg) = &self.background {
                v += f64::from(bg[y * g.width_px + x]);
            }
            if let Some(s) = &params.streak {
                let (along, perp) = match s.direction {
                    super::Streak::Horizontal => (dx, dy),
                    super::Streak::Vertical => (dy, dx),
                };
                let z = perp / s.width_px;
                if z.abs() < 6.0 {
                    v += s.amplitude * (-0.5 * z * z).exp_p()
                        / (1.0 + along.abs() / s.decay_px).powi_p(2);
                }
            }
            let (sx, sy) = self.beam_sigma_px;
            if dx.abs() < self.beam_box_px && dy.abs() < self.beam_box_px {
                v += params.direct_beam.peak_counts
                    * (-0.5 * ((dx / sx).powi_p(2) + (dy / sy).powi_p(2))).exp_p();
            }
        }
        if let Some(sh) = &self.shadow {
            // Far outside the shadow's edge the transmission is 1 to within 1e-5: skip the tanh.
            if sh.distance_outside(dx, dy) < 6.0 * sh.blur_px() {
                v *= sh.transmission(dx, dy);
            }
        }
        v * params.exposure
    }
}

fn check_size(params: &SaxsParams) -> Result<(usize, usize), SynthError> {
    let g = &params.geometry;
    let (w, h) = (g.width_px, g.height_px);
    if !(1..=8192).contains(&w) || !(1..=8192).contains(&h) {
        return Err(SynthError::InvalidParams(format!(
            "detector size {w}×{h} px; expected 1 to 8192 on each side"
        )));
    }
    Ok((w, h))
}

/// Renders the photon counts of `params`.
pub fn render(params: &SaxsParams) -> Result<SaxsImage, SynthError> {
    let scene = Scene::new(params, &params.components, true);
    count(params, |x, y| scene.expected(x, y))
}

/// The sample's own scattering on the detector: the expected counts of every beam-centred term
/// of `params` (sample and diffuse scattering) at exposure 1, noise-free, without background,
/// slit streak, direct beam, beamstop, zingers or gaps. [`detect`] turns it into counts.
///
/// This is the split between the sample and the instrument that the diffusion generator uses:
/// the network draws this image, the engine's own models draw the rest.
pub fn sample_intensity(params: &SaxsParams) -> Result<Image<f32>, SynthError> {
    let (w, h) = check_size(params)?;
    let scene = Scene::new(params, &params.components, false);
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            // Table interpolation can round a zero to −1e-12.
            out.push(scene.sample(x, y).max(0.0) as f32);
        }
    }
    Image::from_vec(w, h, out).map_err(|e| SynthError::InvalidParams(e.to_string()))
}

/// Puts a sample's scattering (expected counts at exposure 1 per pixel, as
/// [`sample_intensity`] gives) on the detector of `params`: background, slit streak, direct
/// beam, beamstop, exposure, Poisson noise, saturation, zingers and module gaps, exactly as
/// [`render`] does. `params.components` are not used.
pub fn detect(params: &SaxsParams, sample: &Image<f32>) -> Result<SaxsImage, SynthError> {
    let (w, h) = check_size(params)?;
    if (sample.width(), sample.height()) != (w, h) {
        return Err(SynthError::InvalidParams(format!(
            "the sample image is {}×{} px but the detector {w}×{h} px",
            sample.width(),
            sample.height()
        )));
    }
    let scene = Scene::new(params, &[], true);
    let data = sample.pixels();
    count(params, |x, y| {
        scene.expected_with(x, y, f64::from(data[y * w + x]).max(0.0))
    })
}

/// Counts from expected values: Poisson noise, saturation, zingers, module gaps.
fn count(
    params: &SaxsParams,
    expected: impl Fn(usize, usize) -> f64,
) -> Result<SaxsImage, SynthError> {
    let (w, h) = check_size(params)?;
    let scale = w.max(h) as f64 / REFERENCE_SIZE_PX as f64;
    let gap_mask = params.detector.gap_mask(w, h, scale);
    let mut rng = ChaCha8Rng::seed_from_u64(params.noise_seed);
    let mut counts = Vec::with_capacity(w * h);
    let mut saturated_pixels = 0usize;
    let sat = f64::from(params.saturation_counts);

    for y in 0..h {
        for x in 0..w {
            let v = expected(x, y);
            let mut c = if params.poisson_noise {
                poisson(&mut rng, v)
            } else {
                v.round()
            };
            if c >= sat {
                c = sat;
                saturated_pixels += 1;
            }
            counts.push(c as u32);
        }
    }
    for z in &params.zingers {
        let (ux, uy) = (
            z.angle_deg.to_radians().cos_p(),
            z.angle_deg.to_radians().sin_p(),
        );
        let steps = (z.length_px.ceil() as usize).max(1);
        for s in 0..steps {
            let (x, y) = (z.x_px + ux * s as f64, z.y_px + uy * s as f64);
            if x >= 0.0 && y >= 0.0 && (x as usize) < w && (y as usize) < h {
                let i = y as usize * w + x as usize;
                let before = f64::from(counts[i]);
                let after = (before + z.counts).min(sat);
                if after >= sat && before < sat {
                    saturated_pixels += 1;
                }
                counts[i] = after as u32;
            }
        }
    }
    if let Some(mask) = &gap_mask {
        for (c, &m) in counts.iter_mut().zip(mask) {
            if m {
                *c = 0;
            }
        }
    }
    let counts =
        Image::from_vec(w, h, counts).map_err(|e| SynthError::InvalidParams(e.to_string()))?;
    Ok(SaxsImage {
        counts,
        gap_mask,
        saturated_pixels,
    })
}
