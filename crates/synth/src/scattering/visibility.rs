//! Whether a scattering term can actually be seen in its image.
//!
//! The parameters say which terms were drawn; the ground truth should only tag what a
//! scientist, or a network, could find in the counts. A ring one count high under a
//! thousand-count power law, or a lattice peak in a saturated or shadowed region, is in the
//! parameters but not in the image: tagging it teaches a classifier to guess.
//!
//! A term is visible when both
//! - its matched-filter signal-to-noise ratio sqrt(Σ c²/T) over the valid pixels reaches
//!   [`SNR_MIN`] (c: its expected counts, T: all expected counts, Poisson noise), and
//! - it makes up at least [`CONTRAST_MIN`] of the local counts over at least [`AREA_MIN_FRAC`] of
//!   the detector (a feature must stand out of what surrounds it, not only be above the noise
//!   in total).
//!
//! Saturated pixels and detector gaps carry no information and are left out. Both sums are taken
//! on a grid of every `stride`-th pixel (about 128 × 128 points) and scaled to the full image.

use super::SaxsParams;
use super::components::Component;
use super::geometry::REFERENCE_SIZE_PX;
use super::render::Scene;

/// Matched-filter signal-to-noise ratio a term needs.
pub const SNR_MIN: f64 = 20.0;
/// Fraction of the local expected counts a term must contribute somewhere…
pub const CONTRAST_MIN: f64 = 0.1;
/// …over at least this fraction of the detector's pixels.
pub const AREA_MIN_FRAC: f64 = 1e-3;

/// Grid points per side the sums are taken over, roughly.
const GRID_SIDE: usize = 128;

/// How strongly a term shows in an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Visibility {
    /// Matched-filter signal-to-noise ratio.
    pub snr: f64,
    /// Fraction of the valid detector pixels where the term makes up ≥ [`CONTRAST_MIN`] of
    /// the counts.
    pub contrast_area_frac: f64,
}

impl Visibility {
    /// Both criteria met.
    pub fn visible(&self) -> bool {
        self.snr >= SNR_MIN && self.contrast_area_frac >= AREA_MIN_FRAC
    }
}

/// The expected counts of a whole image on a grid, against which single terms are judged.
pub(crate) struct Judge<'a> {
    params: &'a SaxsParams,
    stride: usize,
    /// Grid points (x, y) that carry information.
    points: Vec<(usize, usize)>,
    /// All expected counts at those points.
    total: Vec<f64>,
}

impl<'a> Judge<'a> {
    pub(crate) fn new(params: &'a SaxsParams) -> Self {
        let g = &params.geometry;
        let (w, h) = (g.width_px, g.height_px);
        let stride = (w.max(h) / GRID_SIDE).max(1);
        let scene = Scene::new(params, &params.components, true);
        let scale = w.max(h) as f64 / REFERENCE_SIZE_PX as f64;
        let gaps = params.detector.gap_mask(w, h, scale);
        let sat = f64::from(params.saturation_counts);
        let mut points = Vec::new();
        let mut total = Vec::new();
        for y in (stride / 2..h).step_by(stride) {
            for x in (stride / 2..w).step_by(stride) {
                if gaps.as_ref().is_some_and(|m| m[y * w + x]) {
                    continue;
                }
                let t = scene.expected(x, y);
                if t < sat {
                    points.push((x, y));
                    total.push(t);
                }
            }
        }
        Self {
            params,
            stride,
            points,
            total,
        }
    }

    /// How visible the sum of `parts` is.
    pub(crate) fn judge(&self, parts: &[Component]) -> Visibility {
        let scene = Scene::new(self.params, parts, false);
        self.judge_counts(|x, y| scene.expected(x, y))
    }

    /// How visible the difference between `parts` and `instead` is: whether an image with
    /// `parts` can be told from one with `instead` in their place (a ring's arcs from the same
    /// ring made isotropic, say).
    pub(crate) fn judge_difference(
        &self,
        parts: &[Component],
        instead: &[Component],
    ) -> Visibility {
        let with = Scene::new(self.params, parts, false);
        let without = Scene::new(self.params, instead, false);
        self.judge_counts(|x, y| (with.expected(x, y) - without.expected(x, y)).abs())
    }

    /// The criteria for expected counts `c(x, y)` (non-negative) of a feature.
    fn judge_counts(&self, c_at: impl Fn(usize, usize) -> f64) -> Visibility {
        let mut chi2 = 0.0;
        let mut contrast_points = 0usize;
        for (&(x, y), &t) in self.points.iter().zip(&self.total) {
            let c = c_at(x, y);
            chi2 += c * c / t.max(1.0);
            if c >= CONTRAST_MIN * t && t > 0.0 {
                contrast_points += 1;
            }
        }
        let per_point_px = (self.stride * self.stride) as f64;
        Visibility {
            snr: (chi2 * per_point_px).sqrt(),
            contrast_area_frac: contrast_points as f64 / self.points.len().max(1) as f64,
        }
    }
}

impl Judge<'_> {
    /// Whether the beamstop's shadow shows: over at least [`AREA_MIN_FRAC`] of the detector it
    /// removes at least half of the counts, and significantly (3σ of the counts it would see).
    /// A beamstop off the image, or over a dark corner, cannot be told from nothing.
    pub(crate) fn beamstop_shows(&self) -> bool {
        if self.params.beamstop.is_none() {
            return false;
        }
        let mut open = self.params.clone();
        open.beamstop = None;
        let scene = Scene::new(&open, &open.components, true);
        let shadowed = self
            .points
            .iter()
            .zip(&self.total)
            .filter(|&(&(x, y), &t)| {
                let u = scene.expected(x, y);
                u - t >= 0.5 * u && u - t >= 3.0 * u.max(1.0).sqrt()
            })
            .count();
        shadowed as f64 >= AREA_MIN_FRAC * self.points.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scattering::{BackgroundChoice, BeamstopChoice, SaxsConfig, sample_params};

    fn params_with(components: Vec<Component>) -> SaxsParams {
        let config = SaxsConfig {
            beamstop: BeamstopChoice::None,
            background: BackgroundChoice::None,
            beam_centre_frac: Some((0.5, 0.5)),
            ..SaxsConfig::default()
        };
        let mut p = sample_params(&config, 1, 0).expect("valid");
        p.components = components;
        p.streak = None;
        p.exposure = 1.0;
        p
    }

    fn ring(amplitude: f64) -> Component {
        Component::Ring {
            q0_inv_angstrom: 0.05,
            width_rel: 0.05,
            eta: 0.0,
            symmetry: 2,
            chi0_deg: 0.0,
            amplitude,
            halo: false,
        }
    }

    fn floor(level: f64) -> Component {
        Component::PowerLaw {
            amplitude: level,
            exponent: 0.0,
            epsilon: 1.0,
            chi0_deg: 0.0,
        }
    }

    #[test]
    fn a_ring_is_visible_only_well_above_what_lies_under_it() {
        // A flat 1000-count floor (exponent 0) under a ring of varying height.
        for (amplitude, expect) in [(1000.0, true), (300.0, true), (20.0, false), (2.0, false)] {
            let p = params_with(vec![floor(1000.0), ring(amplitude)]);
            let v = Judge::new(&p).judge(&[ring(amplitude)]);
            assert_eq!(v.visible(), expect, "amplitude {amplitude}: {v:?}");
        }
    }

    #[test]
    fn a_faint_ring_on_a_dark_detector_is_lost_in_the_noise() {
        // Nothing else on the detector: contrast is total, but 0.05 counts per pixel is noise.
        let p = params_with(vec![ring(0.05)]);
        let v = Judge::new(&p).judge(&[ring(0.05)]);
        assert!(v.contrast_area_frac > 0.01 && !v.visible(), "{v:?}");
        let p = params_with(vec![ring(50.0)]);
        assert!(Judge::new(&p).judge(&[ring(50.0)]).visible());
    }

    #[test]
    fn a_beamstop_shows_over_counts_but_not_over_a_dark_detector() {
        let config = SaxsConfig {
            beamstop: BeamstopChoice::Circular,
            background: BackgroundChoice::None,
            beam_centre_frac: Some((0.5, 0.5)),
            ..SaxsConfig::default()
        };
        let mut p = sample_params(&config, 1, 0).expect("valid");
        p.streak = None;
        p.exposure = 1.0;
        p.components = vec![floor(100.0)];
        assert!(Judge::new(&p).beamstop_shows());
        p.components = vec![floor(0.01)];
        p.direct_beam.peak_counts = 0.0;
        assert!(!Judge::new(&p).beamstop_shows());
    }

    #[test]
    fn a_lattice_splits_into_rings_that_add_up_to_it() {
        let lattice = Component::Lattice {
            lattice: crate::scattering::LatticeKind::Fcc,
            q1_inv_angstrom: 0.03,
            width_rel: 0.02,
            eta: 0.0,
            symmetry: 2,
            chi0_deg: 0.0,
            amplitude: 500.0,
            debye_waller_sigma_angstrom: 5.0,
            peak_count: 6,
        };
        let peaks = lattice.split_peaks();
        assert_eq!(peaks.len(), 6);
        let p = params_with(vec![floor(100.0), lattice.clone()]);
        let judge = Judge::new(&p);
        let whole = judge.judge(&[lattice]);
        let parts = judge.judge(&peaks);
        assert!(
            (whole.snr - parts.snr).abs() < 1e-6 * whole.snr,
            "{whole:?} {parts:?}"
        );
    }
}
