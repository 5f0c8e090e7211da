//! X-ray scattering detector images with ground truth.
//!
//! [`sample_params`] draws every parameter of an image from a [`SaxsConfig`] and the image's
//! random stream, following the reference simulator of `DOMAIN.md` §1; [`render`] turns those
//! parameters into photon counts. `render` is a pure function of [`SaxsParams`] (which carries
//! its own noise seed), so the `params` written beside each image reproduce it exactly.

use crate::math::Portable;

mod components;
pub mod fakes;
/// Detector geometry lives in `imaging` (the analysis needs it too).
pub use imaging::detector as geometry;
pub mod lattice;
pub mod polar;
mod render;
mod tags;
pub mod visibility;

pub use components::{
    Background, Beamstop, Component, DirectBeam, SlitStreak, Streak, WindowShape, Zinger,
};
pub use geometry::{DetectorKind, Geometry};
pub use lattice::{LatticeKind, Reflection, reflections};
pub use polar::{
    SERIES_REFLECTIONS, generated_image, instrument, polar_to_counts, sample_polar, tagged_lattices,
};
pub use render::{SaxsImage, detect, render, sample_intensity};
pub use tags::{RingTruth, TRAINING_TAGS, Truth};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::SynthError;
use crate::rng::{image_rng, log_uniform, lognormal, normal, poisson, uniform, weighted_index};

/// Counts at which the reference detector saturates (16-bit counter).
pub const SATURATION_COUNTS: u32 = 65_535;

/// Which beamstop an image gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BeamstopChoice {
    /// Drawn like the reference simulator (circular, linear or wedge, equal weights).
    #[default]
    Random,
    /// No beamstop: the direct beam saturates the detector.
    None,
    /// A disc on a holder arm.
    Circular,
    /// A bar through the beam.
    Linear,
    /// A wedge opening outwards from the beam.
    Wedge,
}

/// Which background an image gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackgroundChoice {
    /// Drawn like the reference simulator (p = 0.4 of one of the three kinds).
    #[default]
    Random,
    /// No background.
    None,
    /// A constant level.
    Constant,
    /// Smooth blobs and gradients.
    Structured,
    /// Scattering from a sample window (square or circle).
    Window,
}

/// How widely the engine draws set-ups and samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Variety {
    /// The reference simulator of `DOMAIN.md` §1: one set-up (0.594 m, 8.9 keV, a 1000 px
    /// detector of 75 µm pixels seen at the image size), a beamstop on every image, the beam
    /// within 5 % of the image, rings at q₀ ~ N(0.02, 0.04) Å⁻¹.
    #[default]
    Reference,
    /// What real beamlines show as well, for taggers that must hold up on it: distances of
    /// 0.15–2.4 m and energies of 8–17 keV, the detector drawn from every layout (Pilatus
    /// 300K–6M and Eiger 1M–16M binned whole onto the image among them), no beamstop on 30 %
    /// of images, the beam well off the detector (5–60 % of a side beyond an edge) on 20 %,
    /// a sample that is only a diffuse low-q fall-off (power law, Ornstein–Zernike,
    /// Debye–Bueche or Guinier) on 25 %, and rings anywhere from near the beam to the far
    /// side of the detector. The `detector` and `beamstop` of the configuration are ignored.
    Wide,
}

/// A user-chosen sample instead of the reference mix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CustomSample {
    /// Number of ad hoc rings besides the lattice (0–12).
    pub ring_count: u32,
    /// Position of the first ring or lattice peak in Å⁻¹ (0.005–0.3).
    pub q0_inv_angstrom: f64,
    /// Relative full width at half maximum dq/q₀ (0.005–0.8).
    pub width_rel: f64,
    /// Symmetry order n of the angular factor (even, 2–20).
    pub symmetry: u32,
    /// Angular concentration η in [0, 0.99]: 0 isotropic, near 1 sharp spots.
    pub eta: f64,
    /// Add a lattice peak series with q₁ = q₀.
    pub lattice: Option<LatticeKind>,
    /// Draw the rings as halos (broad, amorphous).
    pub halo: bool,
}

impl Default for CustomSample {
    fn default() -> Self {
        Self {
            ring_count: 2,
            q0_inv_angstrom: 0.05,
            width_rel: 0.05,
            symmetry: 2,
            eta: 0.0,
            lattice: None,
            halo: false,
        }
    }
}

/// What the user controls; everything else is drawn per image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SaxsConfig {
    /// Square image size in pixels (128–2048).
    pub size_px: usize,
    /// Detector layout.
    pub detector: DetectorKind,
    /// `None`: the reference simulator's random mix of sample scattering.
    pub sample: Option<CustomSample>,
    /// Beamstop choice.
    pub beamstop: BeamstopChoice,
    /// Background choice.
    pub background: BackgroundChoice,
    /// Apply Poisson counting noise.
    pub poisson_noise: bool,
    /// Multiplies every intensity before the noise: higher means relatively less noise.
    pub exposure: f64,
    /// Beam centre as fractions of width and height; `None` draws it in −5 %…105 %.
    pub beam_centre_frac: Option<(f64, f64)>,
    /// The reference mix or the wide one (absent in configurations written before it: the
    /// reference).
    #[serde(default)]
    pub variety: Variety,
}

impl Default for SaxsConfig {
    fn default() -> Self {
        Self {
            size_px: 256,
            detector: DetectorKind::Plain,
            sample: None,
            beamstop: BeamstopChoice::Random,
            background: BackgroundChoice::Random,
            poisson_noise: true,
            exposure: 1.0,
            beam_centre_frac: None,
            variety: Variety::Reference,
        }
    }
}

impl SaxsConfig {
    /// Checks ranges; the error names the parameter and what is allowed.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |name, value: String, allowed| {
            Err(SynthError::OutOfRange {
                name,
                value,
                allowed,
            })
        };
        if !(128..=2048).contains(&self.size_px) {
            return bad("size", self.size_px.to_string(), "128 to 2048 pixels");
        }
        if !(self.exposure > 0.0 && self.exposure <= 1e3) {
            return bad(
                "exposure",
                self.exposure.to_string(),
                "greater than 0 and at most 1000",
            );
        }
        if let Some((x, y)) = self.beam_centre_frac
            && !((-0.5..=1.5).contains(&x) && (-0.5..=1.5).contains(&y))
        {
            return bad(
                "beam centre",
                format!("({x}, {y})"),
                "fractions from -0.5 to 1.5",
            );
        }
        if let Some(s) = &self.sample {
            if s.ring_count > 12 {
                return bad("ring count", s.ring_count.to_string(), "0 to 12");
            }
            if !(0.005..=0.3).contains(&s.q0_inv_angstrom) {
                return bad(
                    "q0",
                    s.q0_inv_angstrom.to_string(),
                    "0.005 to 0.3 per ångström",
                );
            }
            if !(0.005..=0.8).contains(&s.width_rel) {
                return bad("width dq/q0", s.width_rel.to_string(), "0.005 to 0.8");
            }
            if !(2..=20).contains(&s.symmetry) || s.symmetry % 2 == 1 {
                return bad(
                    "symmetry",
                    s.symmetry.to_string(),
                    "an even number from 2 to 20",
                );
            }
            if !(0.0..=0.99).contains(&s.eta) {
                return bad("eta", s.eta.to_string(), "0 to 0.99");
            }
        }
        Ok(())
    }
}

/// Every parameter of one image. Serialised as the `params` of its label line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaxsParams {
    /// Detector position and beam centre.
    pub geometry: Geometry,
    /// Detector layout (module gaps).
    pub detector: DetectorKind,
    /// Sample and diffuse scattering terms.
    pub components: Vec<Component>,
    /// Background, if any.
    pub background: Option<Background>,
    /// Beamstop, if any.
    pub beamstop: Option<Beamstop>,
    /// The direct beam.
    pub direct_beam: DirectBeam,
    /// Parasitic slit scattering, if any.
    pub streak: Option<SlitStreak>,
    /// Cosmic-ray hits.
    pub zingers: Vec<Zinger>,
    /// Intensity multiplier before noise.
    pub exposure: f64,
    /// Whether Poisson counting noise is applied.
    pub poisson_noise: bool,
    /// Counts at which pixels clip.
    pub saturation_counts: u32,
    /// Seed of the noise and speckle stream.
    pub noise_seed: u64,
}

/// Draws the parameters of image `index` of a batch generated with `seed`.
pub fn sample_params(config: &SaxsConfig, seed: u64, index: u64) -> Result<SaxsParams, SynthError> {
    config.validate()?;
    let mut rng = image_rng(seed, index);
    let wide = config.variety == Variety::Wide;
    let (bx, by) = config.beam_centre_frac.unwrap_or_else(|| {
        if wide && rng.random::<f64>() < 0.2 {
            beam_well_off(&mut rng)
        } else {
            (
                uniform(&mut rng, -0.05, 1.05),
                uniform(&mut rng, -0.05, 1.05),
            )
        }
    });
    let mut geometry = Geometry::reference(config.size_px, bx, by);
    let mut detector = config.detector;
    let mut placement = RingPlacement::Reference;
    if wide {
        geometry.distance_m *= log_uniform(&mut rng, 0.25, 4.0);
        geometry.energy_kev = uniform(&mut rng, 8.0, 17.0);
        detector = geometry::DETECTOR_KINDS[rng.random_range(0..geometry::DETECTOR_KINDS.len())];
        // From just outside the pixel nearest the beam to the farthest corner: with the beam
        // near an edge or off the detector, rings lie up to twice the side away (a fixed
        // 0.9 of the side left the far half of such images ringless; centred beams drew rings
        // beyond every corner).
        let size = config.size_px as f64;
        let (near_px, far_px) = geometry.radius_range_px();
        placement = RingPlacement::Between {
            q_lo: geometry.q_at_radius(near_px + 0.03 * size),
            q_hi: geometry.q_at_radius(far_px),
        };
    }
    // Image pixels per reference (1000 px) pixel: sizes in px below are reference sizes × scale.
    let scale = config.size_px as f64 / geometry::REFERENCE_SIZE_PX as f64;

    let mut components = match &config.sample {
        Some(custom) => custom_components(&mut rng, custom),
        None if wide && rng.random::<f64>() < 0.25 => {
            // Only a fall-off, scaled to 30–30 000 counts a little beyond the image's point
            // nearest the beam (its amplitude is otherwise given at q = 0.01 Å⁻¹, which a
            // short distance does not reach).
            let mut fall_off = diffuse_low_q(&mut rng);
            let near_px = geometry.radius_range_px().0 + 0.05 * config.size_px as f64;
            let at_near = fall_off.radial_fn()(geometry.q_at_radius(near_px));
            let target = log_uniform(&mut rng, 30.0, 3e4);
            fall_off.scale_amplitude((target / at_near.max(1e-12)).clamp(1e-3, 1e6));
            vec![fall_off]
        }
        None => reference_components(&mut rng, &placement),
    };
    if rng.random::<f64>() < 0.4 {
        components.push(diffuse_low_q(&mut rng));
    }
    if rng.random::<f64>() < 0.25 {
        let (epsilon, chi0_deg) = draw_anisotropy(&mut rng);
        components.push(Component::HighQ {
            c: log_uniform(&mut rng, 1e1, 1e3),
            sigma_a2: log_uniform(&mut rng, 1e-2, 10f64.powf_p(2.2)),
            epsilon,
            chi0_deg,
        });
    }

    let background = match config.background {
        BackgroundChoice::Random => {
            (rng.random::<f64>() < 0.4).then(|| random_background(&mut rng, config.size_px, None))
        }
        BackgroundChoice::None => None,
        kind => Some(random_background(&mut rng, config.size_px, Some(kind))),
    };
    let beamstop_choice = if wide && rng.random::<f64>() < 0.3 {
        BeamstopChoice::None
    } else if wide {
        BeamstopChoice::Random
    } else {
        config.beamstop
    };
    let beamstop_kind = match beamstop_choice {
        BeamstopChoice::Random => [
            BeamstopChoice::Circular,
            BeamstopChoice::Linear,
            BeamstopChoice::Wedge,
        ][rng.random_range(0..3)],
        other => other,
    };
    let beamstop = match beamstop_kind {
        BeamstopChoice::Circular => Some(Beamstop::Circular {
            radius_px: uniform(&mut rng, 8.0, 50.0) * scale.max(0.3),
            blur_px: uniform(&mut rng, 1.0, 5.0) * scale.max(0.3),
            arm_width_px: uniform(&mut rng, 4.0, 12.0) * scale.max(0.3),
            arm_angle_deg: uniform(&mut rng, -180.0, 180.0),
        }),
        BeamstopChoice::Linear => Some(Beamstop::Linear {
            width_px: uniform(&mut rng, 8.0, 30.0) * scale.max(0.3),
            overhang_px: uniform(&mut rng, 8.0, 100.0) * scale.max(0.3),
            angle_deg: uniform(&mut rng, -180.0, 180.0),
            blur_px: uniform(&mut rng, 2.0, 10.0) * scale.max(0.3),
        }),
        BeamstopChoice::Wedge => Some(Beamstop::Wedge {
            opening_deg: uniform(&mut rng, 10.0, 20.0),
            direction_deg: uniform(&mut rng, -90.0, 90.0),
            tip_radius_px: uniform(&mut rng, 6.0, 15.0) * scale.max(0.3),
            blur_px: uniform(&mut rng, 1.0, 4.0) * scale.max(0.3),
        }),
        BeamstopChoice::None | BeamstopChoice::Random => None,
    };
    let mut direct_beam = DirectBeam {
        width_px: uniform(&mut rng, 4.0, 10.0) * scale.max(0.3),
        height_px: uniform(&mut rng, 2.0, 5.0) * scale.max(0.3),
        peak_counts: 1e5,
    };
    let streak = (rng.random::<f64>() < 0.1).then(|| SlitStreak {
        direction: if rng.random::<bool>() {
            Streak::Horizontal
        } else {
            Streak::Vertical
        },
        amplitude: log_uniform(&mut rng, 1e2, 1e4),
        width_px: uniform(&mut rng, 0.7, 2.5) * scale.max(0.5),
        decay_px: uniform(&mut rng, 5.0, 60.0) * scale.max(0.3),
    });
    let zingers = if rng.random::<f64>() < 0.05 {
        (0..rng.random_range(1..=5))
            .map(|_| Zinger {
                x_px: uniform(&mut rng, 0.0, config.size_px as f64),
                y_px: uniform(&mut rng, 0.0, config.size_px as f64),
                length_px: uniform(&mut rng, 1.0, 8.0),
                angle_deg: uniform(&mut rng, 0.0, 180.0),
                counts: uniform(&mut rng, 1e4, 6e4),
            })
            .collect()
    } else {
        Vec::new()
    };
    let noise_seed = rng.random();
    // Without a beamstop the unattenuated beam meets the detector: 10⁵–10⁹ counts, saturating
    // the counter over a disc several pixels wide, which no sample term makes (the reference's
    // 10⁵ is a beam behind a semi-transparent stop). Drawn last, so that every other parameter
    // of a wide image is what it was before.
    if wide && beamstop.is_none() {
        direct_beam.peak_counts = log_uniform(&mut rng, 1e5, 1e9);
    }
    Ok(SaxsParams {
        geometry,
        detector,
        components,
        background,
        beamstop,
        direct_beam,
        streak,
        zingers,
        exposure: config.exposure,
        poisson_noise: config.poisson_noise,
        saturation_counts: SATURATION_COUNTS,
        noise_seed,
    })
}

/// A beam centre 5–60 % of a side beyond one edge (as fractions of width and height).
fn beam_well_off(rng: &mut impl Rng) -> (f64, f64) {
    let beyond = uniform(rng, 0.05, 0.6);
    let along = uniform(rng, -0.2, 1.2);
    match rng.random_range(0..4) {
        0 => (-beyond, along),
        1 => (1.0 + beyond, along),
        2 => (along, -beyond),
        _ => (along, 1.0 + beyond),
    }
}

/// Where rings and first peaks are put.
enum RingPlacement {
    /// The reference simulator's q₀ distribution.
    Reference,
    /// Log-uniform between two q (Å⁻¹): the set-up's q near the beam and at the far side.
    Between { q_lo: f64, q_hi: f64 },
}

impl RingPlacement {
    /// q₀ of a ring or first peak: N(0.02, 0.04) clipped to [0.008, 0.1] Å⁻¹, or log-uniform
    /// over the range.
    fn q0(&self, rng: &mut impl Rng) -> f64 {
        match *self {
            RingPlacement::Reference => (0.02 + 0.04 * normal(rng)).clamp(0.008, 0.1),
            RingPlacement::Between { q_lo, q_hi } => log_uniform(rng, q_lo, q_hi),
        }
    }

    /// The largest first position of a series whose higher orders must fit: `reference_cap`
    /// (Å⁻¹) of the reference range [0.008, 0.1], or the same point on a log scale of the range.
    fn cap(&self, reference_cap: f64) -> f64 {
        match *self {
            RingPlacement::Reference => reference_cap,
            RingPlacement::Between { q_lo, q_hi } => {
                let t = (reference_cap / 0.008).ln_p() / (0.1f64 / 0.008).ln_p();
                q_lo * (q_hi / q_lo).powf_p(t)
            }
        }
    }
}

/// Symmetry order n = clip(2·round(lognormal(0, 0.75)), 2, 20).
fn draw_symmetry(rng: &mut impl Rng) -> u32 {
    (2.0 * lognormal(rng, 0.0, 0.75).round()).clamp(2.0, 20.0) as u32
}

/// η: half the time isotropic, else uniform — a spread over isotropic, broad and sharp orientation.
fn draw_eta(rng: &mut impl Rng) -> f64 {
    if rng.random::<bool>() {
        0.0
    } else {
        uniform(rng, 0.1, 0.95)
    }
}

fn ring(rng: &mut impl Rng, q0: f64, width_rel: f64, halo: bool) -> Component {
    Component::Ring {
        q0_inv_angstrom: q0,
        width_rel,
        eta: draw_eta(rng),
        symmetry: draw_symmetry(rng),
        chi0_deg: uniform(rng, -180.0, 180.0),
        amplitude: log_uniform(rng, 300.0, 3e4),
        halo,
    }
}

fn lattice(
    rng: &mut impl Rng,
    kind: LatticeKind,
    q1: f64,
    width_rel: f64,
    eta: f64,
    symmetry: u32,
) -> Component {
    Component::Lattice {
        lattice: kind,
        q1_inv_angstrom: q1,
        width_rel,
        eta,
        symmetry,
        chi0_deg: uniform(rng, -180.0, 180.0),
        amplitude: log_uniform(rng, 1e3, 3e4),
        debye_waller_sigma_angstrom: uniform(rng, 0.0, 8.0),
        peak_count: rng.random_range(4..=12),
    }
}

/// The reference simulator's sample: 1 + Poisson(0.3) contributions with its weights.
fn reference_components(rng: &mut impl Rng, placement: &RingPlacement) -> Vec<Component> {
    let count = 1 + poisson(rng, 0.3) as usize;
    // single symmetry ring, single halo, ring series, sphere, lattice, distorted lattice,
    // ad hoc rings, speckled rings, coherent halo (mesostructure is drawn as a broad lattice).
    let weights = [0.05, 0.05, 0.1, 0.2, 0.2, 0.02, 0.2, 0.2, 0.2, 0.1];
    let mut out = Vec::new();
    for _ in 0..count {
        match weighted_index(rng, &weights) {
            0 => {
                let (q0, w) = (placement.q0(rng), uniform(rng, 0.01, 0.2));
                let mut c = ring(rng, q0, w, false);
                if let Component::Ring { eta, symmetry, .. } = &mut c {
                    *eta = uniform(rng, 0.5, 0.95);
                    *symmetry = draw_symmetry(rng).max(4);
                }
                out.push(c);
            }
            1 => {
                let (q0, w) = (placement.q0(rng), uniform(rng, 0.3, 0.6));
                out.push(ring(rng, q0, w, true));
            }
            2 => {
                // A series at integer multiples (a single-phase higher-order series).
                let q0 = placement.q0(rng).min(placement.cap(0.05));
                let w = uniform(rng, 0.01, 0.1);
                let eta = draw_eta(rng);
                out.push(lattice(rng, LatticeKind::Lamellar, q0, w, eta, 2));
            }
            3 => out.push(Component::SphereFormFactor {
                radius_angstrom: log_uniform(rng, 30.0, 500.0),
                polydispersity: uniform(rng, 0.02, 0.2),
                amplitude: log_uniform(rng, 1e3, 3e4),
            }),
            4 | 5 | 9 => {
                let kind = LatticeKind::ALL[rng.random_range(0..4)];
                let broad = matches!(weighted_index(rng, &[0.8, 0.2]), 1);
                let w = if broad {
                    uniform(rng, 0.08, 0.2)
                } else {
                    uniform(rng, 0.01, 0.06)
                };
                let eta = draw_eta(rng);
                let n = draw_symmetry(rng);
                let q1 = placement.q0(rng).min(placement.cap(0.06));
                out.push(lattice(rng, kind, q1, w, eta, n));
            }
            6 => {
                for _ in 0..rng.random_range(1..=4) {
                    let (q0, w) = (placement.q0(rng), uniform(rng, 0.01, 0.2));
                    out.push(ring(rng, q0, w, false));
                }
            }
            7 => out.push(Component::SpeckledRing {
                q0_inv_angstrom: placement.q0(rng),
                width_rel: uniform(rng, 0.01, 0.05),
                graininess: uniform(rng, 0.3, 0.98),
                amplitude: log_uniform(rng, 500.0, 2e4),
                spot_seed: rng.random(),
            }),
            _ => out.push(Component::CoherentHalo {
                q0_inv_angstrom: placement.q0(rng),
                width_rel: uniform(rng, 0.3, 0.6),
                amplitude: log_uniform(rng, 300.0, 1e4),
                speckle_px: uniform(rng, 1.5, 4.0),
            }),
        }
    }
    out
}

fn custom_components(rng: &mut impl Rng, s: &CustomSample) -> Vec<Component> {
    let mut out = Vec::new();
    let make_ring = |rng: &mut _, q0| Component::Ring {
        q0_inv_angstrom: q0,
        width_rel: s.width_rel,
        eta: s.eta,
        symmetry: s.symmetry,
        chi0_deg: uniform(rng, -180.0, 180.0),
        amplitude: log_uniform(rng, 1e3, 2e4),
        halo: s.halo,
    };
    if let Some(kind) = s.lattice {
        let mut l = lattice(rng, kind, s.q0_inv_angstrom, s.width_rel, s.eta, s.symmetry);
        if let Component::Lattice {
            amplitude,
            peak_count,
            ..
        } = &mut l
        {
            *amplitude = amplitude.max(5e3);
            *peak_count = 8;
        }
        out.push(l);
    } else if s.ring_count > 0 {
        out.push(make_ring(rng, s.q0_inv_angstrom));
    }
    let extra = if s.lattice.is_some() {
        s.ring_count
    } else {
        s.ring_count.saturating_sub(1)
    };
    for _ in 0..extra {
        let q = s.q0_inv_angstrom * uniform(rng, 1.2, 3.5);
        out.push(make_ring(rng, q));
    }
    out
}

/// Anisotropy of a diffuse term: ε = 2·lognormal(0, 0.5) in 30 % of cases, else isotropic (1),
/// and the elongation direction in degrees.
fn draw_anisotropy(rng: &mut impl Rng) -> (f64, f64) {
    let epsilon = if rng.random::<f64>() < 0.3 {
        2.0 * lognormal(rng, 0.0, 0.5)
    } else {
        1.0
    };
    (epsilon, uniform(rng, -90.0, 90.0))
}

fn diffuse_low_q(rng: &mut impl Rng) -> Component {
    let (epsilon, chi0_deg) = draw_anisotropy(rng);
    let amplitude = log_uniform(rng, 30.0, 3e3);
    match rng.random_range(0..4) {
        0 => Component::PowerLaw {
            exponent: uniform(rng, -4.5, -1.8),
            amplitude,
            epsilon,
            chi0_deg,
        },
        1 => Component::OrnsteinZernike {
            xi_angstrom: log_uniform(rng, 1e1, 1e4),
            amplitude,
            epsilon,
            chi0_deg,
        },
        2 => Component::DebyeBueche {
            a_angstrom: log_uniform(rng, 1e1, 1e4),
            amplitude,
            epsilon,
            chi0_deg,
        },
        _ => Component::Guinier {
            rg_angstrom: log_uniform(rng, 1e2, 1e3),
            amplitude,
            epsilon,
            chi0_deg,
        },
    }
}

fn random_background(
    rng: &mut impl Rng,
    size_px: usize,
    kind: Option<BackgroundChoice>,
) -> Background {
    let kind = kind.unwrap_or_else(|| {
        [
            BackgroundChoice::Constant,
            BackgroundChoice::Structured,
            BackgroundChoice::Window,
        ][rng.random_range(0..3)]
    });
    let s = size_px as f64;
    match kind {
        BackgroundChoice::Structured => Background::Structured {
            level: uniform(rng, 0.0, 500.0),
            gradient_per_px: (
                uniform(rng, -1.0, 1.0) * 300.0 / s,
                uniform(rng, -1.0, 1.0) * 300.0 / s,
            ),
            blobs: (0..rng.random_range(2..=6))
                .map(|_| {
                    (
                        uniform(rng, 0.0, s),
                        uniform(rng, 0.0, s),
                        uniform(rng, 0.05, 0.3) * s,
                        uniform(rng, 50.0, 1500.0),
                    )
                })
                .collect(),
        },
        BackgroundChoice::Window => Background::Window {
            shape: if rng.random::<bool>() {
                WindowShape::Square
            } else {
                WindowShape::Circle
            },
            centre_x_px: uniform(rng, 0.3, 0.7) * s,
            centre_y_px: uniform(rng, 0.3, 0.7) * s,
            half_size_px: uniform(rng, 0.15, 0.45) * s,
            level: uniform(rng, 50.0, 1500.0),
            edge_blur_px: uniform(rng, 1.0, 6.0),
        },
        _ => Background::Constant {
            level: uniform(rng, 0.0, 2000.0),
        },
    }
}

#[cfg(test)]
mod tests;
