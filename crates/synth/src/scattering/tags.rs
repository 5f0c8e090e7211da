//! Ground truth: the 15-label training set, the richer attribute vocabulary and ring positions.

use serde::{Deserialize, Serialize};

use super::components::Component;
use super::visibility::Judge;
use super::{SaxsImage, SaxsParams};

/// The 15-label training set of `DOMAIN.md` §1, in a fixed order (the order of model outputs).
pub const TRAINING_TAGS: [&str; 15] = [
    "low-q",
    "high-q",
    "halo",
    "higher orders",
    "ring",
    "BCC",
    "FCC",
    "hexagonal",
    "lamellar",
    "symmetry halo",
    "symmetry ring",
    "circular beamstop",
    "wedge beamstop",
    "linear beamstop",
    "beam off image",
];

/// One ring, halo or peak that crosses the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RingTruth {
    /// "ring", "halo", "peak" (of a lattice), "speckled ring" or "coherent halo".
    pub kind: String,
    /// Position in Å⁻¹.
    pub q_inv_angstrom: f64,
    /// Radius on the detector in pixels.
    pub radius_px: f64,
    /// FWHM over q.
    pub width_rel: f64,
    /// Angular concentration η (0 isotropic).
    pub eta: f64,
    /// Symmetry order n.
    pub symmetry: u32,
    /// Direction of the first arc in degrees.
    pub chi0_deg: f64,
}

/// Everything known about an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// Labels from [`TRAINING_TAGS`] present in the image.
    pub tags: Vec<String>,
    /// Labels from the richer hierarchical vocabulary.
    pub attributes: Vec<String>,
    /// Rings, halos and peaks crossing the image, in increasing q.
    pub rings: Vec<RingTruth>,
    /// Beam centre column in pixels.
    pub beam_x_px: f64,
    /// Beam centre row in pixels.
    pub beam_y_px: f64,
    /// Pixels at the saturation level.
    pub saturated_pixels: usize,
}

/// Closest spacing (image pixels along the ring) of a ring's arcs at which its n-fold symmetry
/// can be counted: arcs closer than this merge into a ring that only looks uneven.
pub const ARC_SPACING_MIN_PX: f64 = 4.0;
/// Two lattice peaks are told apart when their radii differ by their FWHM and by at least this
/// many image pixels (a radial profile needs a bin between them).
pub const PEAK_SEPARATION_MIN_PX: f64 = 2.0;

/// How much brighter a ring's brightest arc must be than the gap between two arcs for the arcs
/// to read as arcs: below twice, a ring looks uneven, not symmetric.
pub const ARC_CONTRAST_MIN: f64 = 2.0;

/// Whether the n-fold symmetry of arcs on a ring of `radius_px` can be counted.
fn arcs_resolved(radius_px: f64, symmetry: u32) -> bool {
    std::f64::consts::TAU * radius_px / f64::from(symmetry.max(1)) >= ARC_SPACING_MIN_PX
}

/// Whether a ring of orientation parameter `eta` has arcs [`ARC_CONTRAST_MIN`] times as bright
/// as its gaps: the angular factor (1 − η²)/(1 + η² − 2η·cos nχ) runs from (1 + η)/(1 − η) on
/// an arc to (1 − η)/(1 + η) between two, so the ratio is ((1 + η)/(1 − η))², which reaches 2
/// at η ≈ 0.17.
pub(crate) fn arcs_contrasted(eta: f64) -> bool {
    eta < 1.0 && ((1.0 + eta) / (1.0 - eta)).powi(2) >= ARC_CONTRAST_MIN
}

/// Orientation distribution class by the reference thresholds: sharp above η = 0.75, broad
/// below 0.3.
fn orientation_width_class(eta: f64) -> &'static str {
    if eta > 0.75 {
        "sharp"
    } else if eta < 0.3 {
        "broad"
    } else {
        "intermediate"
    }
}

/// Whether two of `peaks` (radius, FWHM in pixels) are resolved: a neighbouring pair is farther
/// apart than the wider one's FWHM and [`PEAK_SEPARATION_MIN_PX`].
fn two_peaks_resolved(peaks: &mut [(f64, f64)]) -> bool {
    peaks.sort_by(|a, b| a.0.total_cmp(&b.0));
    peaks
        .windows(2)
        .any(|w| w[1].0 - w[0].0 >= w[0].1.max(w[1].1).max(PEAK_SEPARATION_MIN_PX))
}

/// Width class by the reference thresholds: sharp below 0.025, broad above 0.1.
fn width_class(width_rel: f64) -> &'static str {
    if width_rel < 0.025 {
        "sharp"
    } else if width_rel > 0.1 {
        "broad"
    } else {
        "intermediate"
    }
}

/// Orientation class of the arcs' direction: in-plane (±15° of horizontal), out-of-plane (±15° of
/// vertical) or other.
fn orientation_class(chi0_deg: f64, symmetry: u32) -> &'static str {
    // Arcs sit at χ₀ + 360°·k/n; any of them near 0°/180° or ±90° decides.
    let arcs: Vec<f64> = (0..symmetry)
        .map(|k| (chi0_deg + 360.0 * f64::from(k) / f64::from(symmetry)).rem_euclid(180.0))
        .collect();
    if arcs.iter().any(|a| *a <= 15.0 || *a >= 165.0) {
        "in-plane"
    } else if arcs.iter().any(|a| (a - 90.0).abs() <= 15.0) {
        "out-of-plane"
    } else {
        "other"
    }
}

impl Truth {
    /// The ground truth of `params` rendered as `image`.
    ///
    /// A term is tagged only if it can be seen: a ring must cross the image (a radius beyond
    /// the far corner, or inside the nearest edge when the beam is off the image, does not) and
    /// stand out of the counts around it ([`super::visibility`]). A lattice is named only when
    /// two of its peaks show and are resolved from each other ([`PEAK_SEPARATION_MIN_PX`]): one
    /// peak, or two merged into one, is just a ring. A symmetry ring or halo (of any order,
    /// 2–20: two arcs are a 2-fold symmetry) needs its arcs to show, not only the ring: the
    /// ring must be visibly different from the same ring made isotropic, its arcs
    /// [`ARC_SPACING_MIN_PX`] apart and [`ARC_CONTRAST_MIN`] times as bright as the gaps.
    pub fn of(params: &SaxsParams, image: &SaxsImage) -> Self {
        let g = &params.geometry;
        let judge = Judge::new(params);
        let shows = |c: &Component| judge.judge(std::slice::from_ref(c)).visible();
        let mut tags: Vec<&str> = Vec::new();
        let mut attrs: Vec<String> = Vec::new();
        let mut rings = Vec::new();
        let push_ring =
            |rings: &mut Vec<RingTruth>, kind: &str, q: f64, width_rel, eta, symmetry, chi0_deg| {
                if let Some(radius_px) = g.radius_at_q(q).filter(|_| g.ring_visible(q)) {
                    rings.push(RingTruth {
                        kind: kind.into(),
                        q_inv_angstrom: q,
                        radius_px,
                        width_rel,
                        eta,
                        symmetry,
                        chi0_deg,
                    });
                    true
                } else {
                    false
                }
            };
        for c in &params.components {
            match *c {
                Component::Ring {
                    q0_inv_angstrom,
                    width_rel,
                    eta,
                    symmetry,
                    chi0_deg,
                    halo,
                    ..
                } => {
                    let kind = if halo { "halo" } else { "ring" };
                    if shows(c)
                        && push_ring(
                            &mut rings,
                            kind,
                            q0_inv_angstrom,
                            width_rel,
                            eta,
                            symmetry,
                            chi0_deg,
                        )
                    {
                        tags.push(kind);
                        let radius_px = rings.last().map_or(0.0, |r: &RingTruth| r.radius_px);
                        let arcs_show = arcs_contrasted(eta)
                            && arcs_resolved(radius_px, symmetry)
                            && judge
                                .judge_difference(std::slice::from_ref(c), &[c.isotropic()])
                                .visible();
                        if arcs_show {
                            tags.push(if halo {
                                "symmetry halo"
                            } else {
                                "symmetry ring"
                            });
                            attrs.push(format!("symmetry {symmetry}"));
                            attrs.push(format!("{kind} anisotropic"));
                            attrs.push(format!(
                                "{kind} oriented {}",
                                orientation_class(chi0_deg, symmetry)
                            ));
                            attrs.push(format!("orientation {}", orientation_width_class(eta)));
                        } else {
                            attrs.push(format!("{kind} isotropic"));
                        }
                        attrs.push(format!("ring width {}", width_class(width_rel)));
                    }
                }
                Component::Lattice {
                    lattice,
                    q1_inv_angstrom,
                    width_rel,
                    eta,
                    symmetry,
                    chi0_deg,
                    peak_count,
                    ..
                } => {
                    // The visible peaks, and each one's radius and FWHM in pixels.
                    let mut shown = Vec::new();
                    let mut resolution = Vec::new();
                    let fwhm_q = width_rel * q1_inv_angstrom;
                    for (r, peak) in super::lattice::reflections(lattice, peak_count)
                        .iter()
                        .zip(c.split_peaks())
                    {
                        let q = q1_inv_angstrom * r.ratio;
                        if shows(&peak)
                            && push_ring(&mut rings, "peak", q, width_rel, eta, symmetry, chi0_deg)
                        {
                            let radius = |q| g.radius_at_q(q).unwrap_or(f64::INFINITY);
                            let fwhm_px =
                                radius(q + fwhm_q / 2.0) - radius((q - fwhm_q / 2.0).max(0.0));
                            resolution.push((rings.last().map_or(0.0, |t| t.radius_px), fwhm_px));
                            shown.push(peak);
                        }
                    }
                    if !shown.is_empty() {
                        tags.push("ring");
                        attrs.push(format!("ring width {}", width_class(width_rel)));
                    }
                    if shown.len() >= 2 && two_peaks_resolved(&mut resolution) {
                        tags.push(lattice.tag());
                        tags.push("higher orders");
                        attrs.push("structure factor".into());
                    }
                    let outermost_px = resolution.iter().map(|p| p.0).fold(0.0, f64::max);
                    if !shown.is_empty()
                        && arcs_contrasted(eta)
                        && arcs_resolved(outermost_px, symmetry)
                    {
                        let isotropic: Vec<Component> =
                            shown.iter().map(Component::isotropic).collect();
                        if judge.judge_difference(&shown, &isotropic).visible() {
                            tags.push("symmetry ring");
                        }
                    }
                }
                Component::SpeckledRing {
                    q0_inv_angstrom,
                    width_rel,
                    graininess,
                    ..
                } => {
                    if shows(c)
                        && push_ring(
                            &mut rings,
                            "speckled ring",
                            q0_inv_angstrom,
                            width_rel,
                            0.0,
                            0,
                            0.0,
                        )
                    {
                        tags.push("ring");
                        if graininess > 0.75 {
                            attrs.extend(["ring spotted".into(), "large grains".into()]);
                        } else if graininess >= 0.5 {
                            attrs.extend(["ring textured".into(), "polycrystalline".into()]);
                        }
                    }
                }
                Component::CoherentHalo {
                    q0_inv_angstrom,
                    width_rel,
                    ..
                } => {
                    if shows(c)
                        && push_ring(
                            &mut rings,
                            "coherent halo",
                            q0_inv_angstrom,
                            width_rel,
                            0.0,
                            0,
                            0.0,
                        )
                    {
                        tags.push("halo");
                        attrs.push("coherent speckle".into());
                    }
                }
                Component::SphereFormFactor { .. } => {
                    if shows(c) {
                        attrs.push("form factor".into());
                    }
                }
                Component::PowerLaw { epsilon, .. }
                | Component::OrnsteinZernike { epsilon, .. }
                | Component::DebyeBueche { epsilon, .. }
                | Component::Guinier { epsilon, .. }
                    if shows(c) =>
                {
                    tags.push("low-q");
                    attrs.push(format!(
                        "diffuse low-q {}",
                        if (epsilon - 1.0).abs() > 1e-3 {
                            "anisotropic"
                        } else {
                            "isotropic"
                        }
                    ));
                }
                Component::HighQ { epsilon, .. } if shows(c) => {
                    tags.push("high-q");
                    let kind = if (epsilon - 1.0).abs() > 1e-3 {
                        "anisotropic"
                    } else {
                        "isotropic"
                    };
                    attrs.push(format!("diffuse high-q {kind}"));
                }
                // Diffuse terms too faint to see.
                Component::PowerLaw { .. }
                | Component::OrnsteinZernike { .. }
                | Component::DebyeBueche { .. }
                | Component::Guinier { .. }
                | Component::HighQ { .. } => {}
            }
        }
        if rings.iter().filter(|r| r.kind != "halo").count() >= 5 {
            attrs.push("many rings".into());
        }
        if let Some(bs) = params.beamstop.as_ref().filter(|_| judge.beamstop_shows()) {
            tags.push(bs.tag());
        }
        if g.beam_off_image() {
            tags.push("beam off image");
        }
        if let Some(bg) = &params.background {
            attrs.push("background".into());
            if let super::Background::Window { .. } = bg {
                attrs.push("windowed scattering".into());
            }
            if let super::Background::Constant { level } = bg
                && *level > 1000.0
            {
                attrs.push("high background".into());
            }
        }
        if params.streak.is_some() {
            attrs.push("parasitic slit scattering".into());
        }
        if !params.zingers.is_empty() {
            attrs.push("zingers".into());
        }
        if image.saturated_pixels > 0 {
            attrs.push("saturation".into());
        }
        if params.detector != super::DetectorKind::Plain {
            attrs.push("detector gaps".into());
        }
        rings.sort_by(|a, b| a.q_inv_angstrom.total_cmp(&b.q_inv_angstrom));
        // Tags in training order, each once; attributes sorted and unique.
        let tags = TRAINING_TAGS
            .iter()
            .filter(|t| tags.contains(t))
            .map(|t| t.to_string())
            .collect();
        attrs.sort();
        attrs.dedup();
        Truth {
            tags,
            attributes: attrs,
            rings,
            beam_x_px: g.beam_x_px,
            beam_y_px: g.beam_y_px,
            saturated_pixels: image.saturated_pixels,
        }
    }
}
