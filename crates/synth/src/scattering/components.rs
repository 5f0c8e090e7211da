//! The terms an image is built from, and their intensity as a function of q and χ.

use crate::math::Portable;

use serde::{Deserialize, Serialize};

use super::lattice::{LatticeKind, reflections};

/// Full width at half maximum over the Gaussian σ.
pub(crate) const FWHM_PER_SIGMA: f64 = 2.354_820_045;

/// Reference q (Å⁻¹) at which diffuse terms have intensity `amplitude`.
pub(crate) const DIFFUSE_Q_REF: f64 = 0.01;

/// One scattering term. Intensities are counts per pixel at unit exposure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Component {
    /// A ring (or halo) at q₀: Gaussian in q times the angular factor
    /// (1−η²)/((1+η)² − 4η·cos²(n(χ−χ₀)/2)), whose mean over χ is 1.
    Ring {
        /// Ring position in Å⁻¹.
        q0_inv_angstrom: f64,
        /// FWHM over q₀.
        width_rel: f64,
        /// Angular concentration: 0 isotropic, → 1 sharp arcs.
        eta: f64,
        /// Symmetry order n: n arcs around the ring.
        symmetry: u32,
        /// Direction of the first arc in degrees.
        chi0_deg: f64,
        /// Peak counts.
        amplitude: f64,
        /// A broad amorphous halo rather than a ring.
        halo: bool,
    },
    /// A lattice peak series, q_i = q₁·ratio_i from [`reflections`], intensities ∝ multiplicity
    /// × (q₁/q_i)² × exp(−σ²q_i²), sharing one angular factor.
    Lattice {
        /// Lattice kind.
        lattice: LatticeKind,
        /// First peak in Å⁻¹.
        q1_inv_angstrom: f64,
        /// FWHM over q₁ (the same absolute width for all peaks).
        width_rel: f64,
        /// Angular concentration.
        eta: f64,
        /// Symmetry order.
        symmetry: u32,
        /// Direction of the first arc in degrees.
        chi0_deg: f64,
        /// Counts of the first peak.
        amplitude: f64,
        /// Debye–Waller σ in Å.
        debye_waller_sigma_angstrom: f64,
        /// Number of reflections drawn.
        peak_count: usize,
    },
    /// Polydisperse spheres: ⟨[3(sin qR − qR cos qR)/(qR)³]²⟩ over a Gaussian of radii.
    SphereFormFactor {
        /// Mean radius in Å.
        radius_angstrom: f64,
        /// Relative standard deviation of the radius.
        polydispersity: f64,
        /// Counts at q → 0.
        amplitude: f64,
    },
    /// A ring made of diffraction spots from individual grains.
    SpeckledRing {
        /// Ring position in Å⁻¹.
        q0_inv_angstrom: f64,
        /// FWHM over q₀.
        width_rel: f64,
        /// 0: many overlapping spots (smooth), 1: a few isolated spots (large grains).
        graininess: f64,
        /// Mean counts along the ring.
        amplitude: f64,
        /// Seed of the spot positions.
        spot_seed: u64,
    },
    /// A broad halo modulated by coherent speckle (exponential intensity statistics).
    CoherentHalo {
        /// Halo position in Å⁻¹.
        q0_inv_angstrom: f64,
        /// FWHM over q₀.
        width_rel: f64,
        /// Mean peak counts.
        amplitude: f64,
        /// Speckle grain size in pixels.
        speckle_px: f64,
    },
    /// Low-q power law A·(q/q_ref)^exponent.
    PowerLaw {
        /// Exponent (−4.5 … −1.8).
        exponent: f64,
        /// Counts at q_ref = 0.01 Å⁻¹.
        amplitude: f64,
        /// Anisotropy: q is stretched by ε along χ₀ + 90°.
        epsilon: f64,
        /// Elongation direction in degrees.
        chi0_deg: f64,
    },
    /// Ornstein–Zernike A/(1 + ξ²q²).
    OrnsteinZernike {
        /// Correlation length ξ in Å.
        xi_angstrom: f64,
        /// Counts at q_ref.
        amplitude: f64,
        /// Anisotropy ε.
        epsilon: f64,
        /// Elongation direction in degrees.
        chi0_deg: f64,
    },
    /// Debye–Bueche A/(1 + a²q²)².
    DebyeBueche {
        /// Correlation length a in Å.
        a_angstrom: f64,
        /// Counts at q_ref.
        amplitude: f64,
        /// Anisotropy ε.
        epsilon: f64,
        /// Elongation direction in degrees.
        chi0_deg: f64,
    },
    /// Guinier A·exp(−q²R_g²/3).
    Guinier {
        /// Radius of gyration in Å.
        rg_angstrom: f64,
        /// Counts at q_ref.
        amplitude: f64,
        /// Anisotropy ε.
        epsilon: f64,
        /// Elongation direction in degrees.
        chi0_deg: f64,
    },
    /// High-q (thermal diffuse) term c·(1 − exp(−σq²)).
    HighQ {
        /// Plateau counts.
        c: f64,
        /// σ in Å².
        sigma_a2: f64,
        /// Anisotropy ε (1: isotropic).
        epsilon: f64,
        /// Elongation direction in degrees.
        chi0_deg: f64,
    },
}

impl Component {
    /// Intensity as a function of q (Å⁻¹) before any angular factor. For anisotropic diffuse
    /// terms this is evaluated at the stretched q. Work that does not depend on q (the lattice's
    /// reflections) is done once, here, not per evaluation.
    pub(crate) fn radial_fn(&self) -> Box<dyn Fn(f64) -> f64 + '_> {
        let gauss = |q: f64, q0: f64, width_rel: f64| {
            let sigma = (width_rel * q0 / FWHM_PER_SIGMA).max(1e-6);
            let z = (q - q0) / sigma;
            if z.abs() > 8.0 {
                0.0
            } else {
                (-0.5 * z * z).exp_p()
            }
        };
        match *self {
            Component::Ring {
                q0_inv_angstrom,
                width_rel,
                amplitude,
                ..
            }
            | Component::SpeckledRing {
                q0_inv_angstrom,
                width_rel,
                amplitude,
                ..
            }
            | Component::CoherentHalo {
                q0_inv_angstrom,
                width_rel,
                amplitude,
                ..
            } => Box::new(move |q| amplitude * gauss(q, q0_inv_angstrom, width_rel)),
            Component::Lattice {
                lattice,
                q1_inv_angstrom,
                width_rel,
                amplitude,
                debye_waller_sigma_angstrom,
                peak_count,
                ..
            } => {
                let sigma = (width_rel * q1_inv_angstrom / FWHM_PER_SIGMA).max(1e-6);
                // (q_i, peak height) per reflection.
                let peaks = lattice_peak_heights(
                    lattice,
                    q1_inv_angstrom,
                    amplitude,
                    debye_waller_sigma_angstrom,
                    peak_count,
                );
                Box::new(move |q| {
                    peaks
                        .iter()
                        .map(|&(qi, height)| {
                            let z = (q - qi) / sigma;
                            if z.abs() > 8.0 {
                                0.0
                            } else {
                                height * (-0.5 * z * z).exp_p()
                            }
                        })
                        .sum()
                })
            }
            Component::SphereFormFactor {
                radius_angstrom,
                polydispersity,
                amplitude,
            } => {
                // Average over 7 radii of a Gaussian (weights of a 3σ Gauss–Hermite-like grid).
                const NODES: [(f64, f64); 7] = [
                    (-3.0, 0.0044),
                    (-2.0, 0.054),
                    (-1.0, 0.242),
                    (0.0, 0.399),
                    (1.0, 0.242),
                    (2.0, 0.054),
                    (3.0, 0.0044),
                ];
                let norm: f64 = NODES.iter().map(|n| n.1).sum();
                Box::new(move |q| {
                    NODES
                        .iter()
                        .map(|&(z, w)| {
                            w * sphere_form_factor(
                                q * radius_angstrom * (1.0 + polydispersity * z).max(0.05),
                            )
                        })
                        .sum::<f64>()
                        / norm
                        * amplitude
                })
            }
            Component::PowerLaw {
                exponent,
                amplitude,
                ..
            } => Box::new(move |q| amplitude * (q.max(1e-4) / DIFFUSE_Q_REF).powf_p(exponent)),
            Component::OrnsteinZernike {
                xi_angstrom,
                amplitude,
                ..
            } => {
                let f = move |q: f64| 1.0 / (1.0 + (xi_angstrom * q).powi_p(2));
                Box::new(move |q| amplitude * f(q) / f(DIFFUSE_Q_REF))
            }
            Component::DebyeBueche {
                a_angstrom,
                amplitude,
                ..
            } => {
                let f = move |q: f64| 1.0 / (1.0 + (a_angstrom * q).powi_p(2)).powi_p(2);
                Box::new(move |q| amplitude * f(q) / f(DIFFUSE_Q_REF))
            }
            Component::Guinier {
                rg_angstrom,
                amplitude,
                ..
            } => {
                let f = move |q: f64| (-(q * rg_angstrom).powi_p(2) / 3.0).exp_p();
                let fr = f(DIFFUSE_Q_REF).max(1e-300);
                // Capped: a large R_g normalised at q_ref would otherwise explode at q → 0.
                Box::new(move |q| (amplitude * f(q) / fr).min(amplitude * 1e4))
            }
            Component::HighQ { c, sigma_a2, .. } => {
                Box::new(move |q| c * (1.0 - (-sigma_a2 * q * q).exp_p()))
            }
        }
    }

    /// Multiplies the counts of a diffuse low-q term (power law, Ornstein–Zernike,
    /// Debye–Bueche, Guinier) by `factor`; other terms unchanged.
    pub(crate) fn scale_amplitude(&mut self, factor: f64) {
        if let Component::PowerLaw { amplitude, .. }
        | Component::OrnsteinZernike { amplitude, .. }
        | Component::DebyeBueche { amplitude, .. }
        | Component::Guinier { amplitude, .. } = self
        {
            *amplitude *= factor;
        }
    }

    /// The anisotropy (ε, χ₀ in radians) of diffuse terms, `None` for isotropic ones.
    pub(crate) fn stretch(&self) -> Option<(f64, f64)> {
        match *self {
            Component::PowerLaw {
                epsilon, chi0_deg, ..
            }
            | Component::OrnsteinZernike {
                epsilon, chi0_deg, ..
            }
            | Component::DebyeBueche {
                epsilon, chi0_deg, ..
            }
            | Component::Guinier {
                epsilon, chi0_deg, ..
            }
            | Component::HighQ {
                epsilon, chi0_deg, ..
            } if (epsilon - 1.0).abs() > 1e-3 => Some((epsilon, chi0_deg.to_radians())),
            _ => None,
        }
    }

    /// The angular factor's (η, n, χ₀ in radians) if it is anisotropic.
    pub(crate) fn angular(&self) -> Option<(f64, u32, f64)> {
        match *self {
            Component::Ring {
                eta,
                symmetry,
                chi0_deg,
                ..
            }
            | Component::Lattice {
                eta,
                symmetry,
                chi0_deg,
                ..
            } if eta > 1e-3 => Some((eta, symmetry, chi0_deg.to_radians())),
            _ => None,
        }
    }
}

/// (q_i in Å⁻¹, peak height in counts) of a lattice's first `count` reflections: heights
/// ∝ multiplicity / ratio², damped by the Debye–Waller factor, the first peak at `amplitude`.
fn lattice_peak_heights(
    kind: LatticeKind,
    q1_inv_angstrom: f64,
    amplitude: f64,
    debye_waller_sigma_angstrom: f64,
    count: usize,
) -> Vec<(f64, f64)> {
    let refl = lattice_peaks(kind, count);
    let m1 = refl.first().map_or(1.0, |r| f64::from(r.1));
    refl.iter()
        .map(|&(ratio, mult)| {
            let qi = q1_inv_angstrom * ratio;
            let dw = (-(debye_waller_sigma_angstrom * qi).powi_p(2)).exp_p();
            (qi, amplitude * f64::from(mult) / m1 / (ratio * ratio) * dw)
        })
        .collect()
}

impl Component {
    /// The same term with its arcs spread evenly around the ring (η = 0, the same intensity on
    /// average: the angular factor averages to 1 over χ); other terms unchanged.
    pub(crate) fn isotropic(&self) -> Component {
        let mut c = self.clone();
        if let Component::Ring { eta, .. } | Component::Lattice { eta, .. } = &mut c {
            *eta = 0.0;
        }
        c
    }

    /// A lattice's reflections as separate rings (same absolute width, angular factor and
    /// heights as the lattice renders them), in the order of [`reflections`]; any other term
    /// as itself.
    pub(crate) fn split_peaks(&self) -> Vec<Component> {
        match *self {
            Component::Lattice {
                lattice,
                q1_inv_angstrom,
                width_rel,
                eta,
                symmetry,
                chi0_deg,
                amplitude,
                debye_waller_sigma_angstrom,
                peak_count,
            } => lattice_peak_heights(
                lattice,
                q1_inv_angstrom,
                amplitude,
                debye_waller_sigma_angstrom,
                peak_count,
            )
            .into_iter()
            .map(|(qi, height)| Component::Ring {
                q0_inv_angstrom: qi,
                width_rel: width_rel * q1_inv_angstrom / qi,
                eta,
                symmetry,
                chi0_deg,
                amplitude: height,
                halo: false,
            })
            .collect(),
            _ => vec![self.clone()],
        }
    }
}

/// The (ratio, multiplicity) pairs of a lattice's first `count` peaks.
pub(crate) fn lattice_peaks(kind: LatticeKind, count: usize) -> Vec<(f64, u32)> {
    reflections(kind, count)
        .iter()
        .map(|r| (r.ratio, r.multiplicity))
        .collect()
}

/// The sphere form factor [3(sin x − x cos x)/x³]², 1 at x = 0.
pub(crate) fn sphere_form_factor(x: f64) -> f64 {
    if x < 1e-3 {
        return 1.0 - x * x / 5.0;
    }
    let f = 3.0 * (x.sin_p() - x * x.cos_p()) / (x * x * x);
    f * f
}

/// The angular factor (1−η²)/(1 − 2η·cos(n(χ−χ₀)) + η²): a Poisson kernel with mean 1 over χ
/// and n maxima of height (1+η)/(1−η) at χ₀ + 2πk/n.
pub(crate) fn angular_factor(eta: f64, symmetry: u32, chi0_rad: f64, chi_rad: f64) -> f64 {
    (1.0 - eta * eta)
        / (1.0 - 2.0 * eta * (f64::from(symmetry) * (chi_rad - chi0_rad)).cos_p() + eta * eta)
}

/// Background scattering not centred on the beam.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Background {
    /// A constant level in counts.
    Constant {
        /// Counts per pixel.
        level: f64,
    },
    /// A level, a linear gradient and Gaussian blobs.
    Structured {
        /// Counts per pixel.
        level: f64,
        /// Gradient (counts per pixel along x, along y).
        gradient_per_px: (f64, f64),
        /// Blobs (x px, y px, σ px, peak counts).
        blobs: Vec<(f64, f64, f64, f64)>,
    },
    /// Scattering from a window in the beam path: a raised level inside a square or circle.
    Window {
        /// Window outline.
        shape: WindowShape,
        /// Window centre column.
        centre_x_px: f64,
        /// Window centre row.
        centre_y_px: f64,
        /// Half side or radius in pixels.
        half_size_px: f64,
        /// Counts inside.
        level: f64,
        /// Edge softness in pixels.
        edge_blur_px: f64,
    },
}

/// Outline of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowShape {
    /// Square.
    Square,
    /// Circle.
    Circle,
}

impl Background {
    /// The background of a `width × height` image, row-major, evaluated at pixel centres.
    ///
    /// Gaussian blobs are separable, exp(−(dx² + dy²)/2σ²) = exp(−dx²/2σ²)·exp(−dy²/2σ²), so
    /// each costs one multiply-add per pixel instead of an exponential.
    pub(crate) fn map(&self, width: usize, height: usize) -> Vec<f32> {
        match self {
            Background::Structured {
                level,
                gradient_per_px,
                blobs,
            } => {
                let factors: Vec<(f64, Vec<f64>, Vec<f64>)> = blobs
                    .iter()
                    .map(|&(bx, by, sigma, a)| {
                        let g = |d: f64| (-0.5 * (d / sigma).powi_p(2)).exp_p();
                        let ex = (0..width).map(|x| g(x as f64 + 0.5 - bx)).collect();
                        let ey = (0..height).map(|y| g(y as f64 + 0.5 - by)).collect();
                        (a, ex, ey)
                    })
                    .collect();
                let mut out = Vec::with_capacity(width * height);
                for y in 0..height {
                    let base = level + gradient_per_px.1 * (y as f64 + 0.5);
                    for x in 0..width {
                        let mut v = base + gradient_per_px.0 * (x as f64 + 0.5);
                        for (a, ex, ey) in &factors {
                            v += a * ex[x] * ey[y];
                        }
                        out.push(v.max(0.0) as f32);
                    }
                }
                out
            }
            Background::Constant { level } => vec![*level as f32; width * height],
            Background::Window {
                shape,
                centre_x_px,
                centre_y_px,
                half_size_px,
                level,
                edge_blur_px,
            } => (0..width * height)
                .map(|k| {
                    let (x, y) = ((k % width) as f64 + 0.5, (k / width) as f64 + 0.5);
                    let (dx, dy) = ((x - centre_x_px).abs(), (y - centre_y_px).abs());
                    let outside = match shape {
                        WindowShape::Square => dx.max(dy) - half_size_px,
                        WindowShape::Circle => dx.hypot_p(dy) - half_size_px,
                    };
                    // The tanh edge is flat beyond 6 blur widths.
                    let v = if outside > 6.0 * edge_blur_px {
                        0.0
                    } else if outside < -6.0 * edge_blur_px {
                        *level
                    } else {
                        level * smooth_inside(outside, *edge_blur_px)
                    };
                    v as f32
                })
                .collect(),
        }
    }
}

/// 1 well inside (d ≪ 0), 0 well outside, a tanh edge of width `blur` in between.
pub(crate) fn smooth_inside(signed_distance_outside: f64, blur: f64) -> f64 {
    0.5 * (1.0 - (signed_distance_outside / blur.max(0.3)).tanh_p())
}

/// A beamstop, centred on the beam. Its shadow transmits [`Beamstop::LEAKAGE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Beamstop {
    /// A disc held by an arm running out to the edge.
    Circular {
        /// Disc radius.
        radius_px: f64,
        /// Edge blur.
        blur_px: f64,
        /// Holder arm width.
        arm_width_px: f64,
        /// Holder arm direction (χ convention) in degrees.
        arm_angle_deg: f64,
    },
    /// A bar through the beam, from `overhang_px` behind it to the edge.
    Linear {
        /// Bar width.
        width_px: f64,
        /// Length past the beam centre.
        overhang_px: f64,
        /// Direction towards the edge (χ convention) in degrees.
        angle_deg: f64,
        /// Edge blur.
        blur_px: f64,
    },
    /// A wedge with its tip on the beam, opening outwards.
    Wedge {
        /// Full opening angle in degrees.
        opening_deg: f64,
        /// Direction of the wedge axis (χ convention) in degrees.
        direction_deg: f64,
        /// Radius of the rounded tip that blocks the direct beam.
        tip_radius_px: f64,
        /// Edge blur.
        blur_px: f64,
    },
}

impl Beamstop {
    /// Fraction of the beam a beamstop lets through.
    pub const LEAKAGE: f64 = 2e-3;

    /// The shadow's geometry with its directions resolved, for per-pixel evaluation.
    pub(crate) fn shadow(&self) -> Shadow {
        // Unit vector of a direction given in the χ convention (y grows downwards on screen).
        let dir = |deg: f64| {
            let a = deg.to_radians();
            (a.cos_p(), -a.sin_p())
        };
        match *self {
            Beamstop::Circular {
                radius_px,
                arm_width_px,
                arm_angle_deg,
                blur_px,
            } => Shadow::Disc {
                radius_px,
                arm: dir(arm_angle_deg),
                arm_half_width_px: arm_width_px / 2.0,
                blur_px,
            },
            Beamstop::Linear {
                width_px,
                overhang_px,
                angle_deg,
                blur_px,
            } => Shadow::Bar {
                axis: dir(angle_deg),
                half_width_px: width_px / 2.0,
                overhang_px,
                blur_px,
            },
            Beamstop::Wedge {
                opening_deg,
                direction_deg,
                tip_radius_px,
                blur_px,
            } => {
                let half = opening_deg.to_radians() / 2.0;
                Shadow::Wedge {
                    axis: dir(direction_deg),
                    cos_half: half.cos_p(),
                    sin_half: half.sin_p(),
                    tip_radius_px,
                    blur_px,
                }
            }
        }
    }

    /// Tag name of the beamstop.
    pub fn tag(&self) -> &'static str {
        match self {
            Beamstop::Circular { .. } => "circular beamstop",
            Beamstop::Linear { .. } => "linear beamstop",
            Beamstop::Wedge { .. } => "wedge beamstop",
        }
    }
}

/// A beamstop's shadow with directions as unit vectors: no trigonometry per pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Shadow {
    /// Disc plus holder arm.
    Disc {
        radius_px: f64,
        arm: (f64, f64),
        arm_half_width_px: f64,
        blur_px: f64,
    },
    /// Bar along `axis` from `overhang_px` behind the beam to the edge.
    Bar {
        axis: (f64, f64),
        half_width_px: f64,
        overhang_px: f64,
        blur_px: f64,
    },
    /// Cone around `axis` with half-opening (cos, sin), and a tip disc.
    Wedge {
        axis: (f64, f64),
        cos_half: f64,
        sin_half: f64,
        tip_radius_px: f64,
        blur_px: f64,
    },
}

impl Shadow {
    /// Signed distance (px) from the shadow's edge, positive outside, for the offset (dx, dy)
    /// from the beam centre in image coordinates.
    #[inline]
    pub(crate) fn distance_outside(&self, dx: f64, dy: f64) -> f64 {
        let bar = |(ux, uy): (f64, f64), half_width: f64, start: f64| {
            let along = dx * ux + dy * uy;
            let perp = (dx * uy - dy * ux).abs();
            (perp - half_width).max(start - along)
        };
        match *self {
            Shadow::Disc {
                radius_px,
                arm,
                arm_half_width_px,
                ..
            } => ((dx * dx + dy * dy).sqrt() - radius_px).min(bar(arm, arm_half_width_px, 0.0)),
            Shadow::Bar {
                axis,
                half_width_px,
                overhang_px,
                ..
            } => bar(axis, half_width_px, -overhang_px),
            Shadow::Wedge {
                axis: (ux, uy),
                cos_half,
                sin_half,
                tip_radius_px,
                ..
            } => {
                let r = (dx * dx + dy * dy).sqrt();
                // With θ the angle to the axis: r·sin(|θ| − half) = |p×a|·cos half − (p·a)·sin half,
                // the distance to the nearer side line for points ahead of the apex.
                let along = dx * ux + dy * uy;
                let side = if along > 0.0 {
                    (dx * uy - dy * ux).abs() * cos_half - along * sin_half
                } else {
                    r
                };
                side.min(r - tip_radius_px)
            }
        }
    }

    /// Edge blur in pixels.
    #[inline]
    pub(crate) fn blur_px(&self) -> f64 {
        match *self {
            Shadow::Disc { blur_px, .. }
            | Shadow::Bar { blur_px, .. }
            | Shadow::Wedge { blur_px, .. } => blur_px,
        }
    }

    /// Fraction transmitted at offset (dx, dy) from the beam centre.
    #[inline]
    pub(crate) fn transmission(&self, dx: f64, dy: f64) -> f64 {
        let inside = smooth_inside(self.distance_outside(dx, dy), self.blur_px());
        1.0 - (1.0 - Beamstop::LEAKAGE) * inside
    }
}

/// The unscattered beam: an elliptical Gaussian at the beam centre.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DirectBeam {
    /// FWHM along x.
    pub width_px: f64,
    /// FWHM along y.
    pub height_px: f64,
    /// Peak counts.
    pub peak_counts: f64,
}

/// Direction of parasitic slit scattering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Streak {
    /// Along the rows.
    Horizontal,
    /// Along the columns.
    Vertical,
}

/// Parasitic scattering from slit edges: a thin streak through the beam centre.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlitStreak {
    /// Orientation.
    pub direction: Streak,
    /// Counts next to the beam.
    pub amplitude: f64,
    /// Gaussian σ across the streak.
    pub width_px: f64,
    /// Distance over which the streak falls as (1 + d/decay)⁻².
    pub decay_px: f64,
}

/// A cosmic-ray hit: a short bright track.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Zinger {
    /// Start column.
    pub x_px: f64,
    /// Start row.
    pub y_px: f64,
    /// Track length.
    pub length_px: f64,
    /// Track direction in degrees.
    pub angle_deg: f64,
    /// Counts deposited per pixel.
    pub counts: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angular_factor_has_mean_one_and_n_maxima() {
        let (eta, n, chi0) = (0.8, 6, 0.3);
        let k = 3600;
        let vals: Vec<f64> = (0..k)
            .map(|i| angular_factor(eta, n, chi0, i as f64 / k as f64 * std::f64::consts::TAU))
            .collect();
        let mean = vals.iter().sum::<f64>() / k as f64;
        assert!((mean - 1.0).abs() < 1e-6, "mean {mean}");
        let maxima = (0..k)
            .filter(|&i| vals[i] > vals[(i + k - 1) % k] && vals[i] >= vals[(i + 1) % k])
            .count();
        assert_eq!(maxima, 6);
        let peak = angular_factor(eta, n, chi0, chi0);
        assert!((peak - (1.0 + eta) / (1.0 - eta)).abs() < 1e-9);
    }

    #[test]
    fn sphere_form_factor_first_zero() {
        // First zero of the sphere amplitude at tan x = x: x ≈ 4.4934.
        assert!(sphere_form_factor(4.4934) < 1e-8);
        assert!((sphere_form_factor(1e-4) - 1.0).abs() < 1e-8);
    }

    #[test]
    fn beamstop_shadow_follows_its_parameters() {
        let disc = Beamstop::Circular {
            radius_px: 20.0,
            blur_px: 1.0,
            arm_width_px: 6.0,
            arm_angle_deg: 0.0,
        };
        assert!(disc.shadow().transmission(0.0, 15.0) < 0.01);
        assert!(disc.shadow().transmission(0.0, 25.0) > 0.99);
        assert!(
            disc.shadow().transmission(80.0, 0.0) < 0.01,
            "the arm runs along +x"
        );
        assert!(disc.shadow().transmission(-80.0, 0.0) > 0.99);
        let wedge = Beamstop::Wedge {
            opening_deg: 20.0,
            direction_deg: 90.0,
            tip_radius_px: 5.0,
            blur_px: 0.5,
        };
        assert!(
            wedge.shadow().transmission(0.0, -100.0) < 0.01,
            "wedge points up (χ = 90°)"
        );
        assert!(
            wedge.shadow().transmission(30.0, -100.0) > 0.99,
            "outside ±10°"
        );
        assert!(wedge.shadow().transmission(0.0, 100.0) > 0.99);
    }
}
