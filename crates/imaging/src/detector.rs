//! Detector geometry: pixel ↔ scattering vector q, and detector module gaps.

use crate::math::Portable;

use serde::{Deserialize, Serialize};

/// Photon energy × wavelength, h·c in keV·Å.
pub const HC_KEV_ANGSTROM: f64 = 12.398_419_843;

/// Reference detector of the simulator: 1000 px across at 75 µm, 0.594 m, 8.8984 keV.
pub const REFERENCE_SIZE_PX: usize = 1000;
/// Pixel size of the reference detector in µm.
pub const REFERENCE_PIXEL_SIZE_UM: f64 = 75.0;
/// Sample–detector distance of the reference set-up in m.
pub const REFERENCE_DISTANCE_M: f64 = 0.594;
/// Photon energy of the reference set-up in keV.
pub const REFERENCE_ENERGY_KEV: f64 = 8.8984;

/// What a detector file's header says about the set-up (each field only when the file has
/// it): CBF's Pilatus lines, later NeXus's detector group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileGeometry {
    /// Pixel pitch (fast, slow) in µm.
    pub pixel_size_um: Option<(f64, f64)>,
    /// X-ray wavelength in Å.
    pub wavelength_angstrom: Option<f64>,
    /// Sample–detector distance in m.
    pub distance_m: Option<f64>,
    /// Beam centre (column, row) in pixels.
    pub beam_xy_px: Option<(f64, f64)>,
    /// Exposure time in s.
    pub exposure_s: Option<f64>,
}

/// Where the detector sits and where the beam hits it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    /// Detector width in pixels.
    pub width_px: usize,
    /// Detector height in pixels.
    pub height_px: usize,
    /// Pixel pitch in µm.
    pub pixel_size_um: f64,
    /// Sample–detector distance in m.
    pub distance_m: f64,
    /// Photon energy in keV.
    pub energy_kev: f64,
    /// Beam centre column in pixels (may lie outside the image).
    pub beam_x_px: f64,
    /// Beam centre row in pixels (may lie outside the image).
    pub beam_y_px: f64,
}

impl Geometry {
    /// The reference set-up for a square image of `size_px`, beam at the given fractions of the
    /// width and height.
    ///
    /// The pixel pitch is scaled by 1000/size so every image size covers the same q range as the
    /// 1000 px reference detector: a 256 px image looks like a binned 1000 px one.
    pub fn reference(size_px: usize, beam_x_frac: f64, beam_y_frac: f64) -> Self {
        Self {
            width_px: size_px,
            height_px: size_px,
            pixel_size_um: REFERENCE_PIXEL_SIZE_UM * REFERENCE_SIZE_PX as f64 / size_px as f64,
            distance_m: REFERENCE_DISTANCE_M,
            energy_kev: REFERENCE_ENERGY_KEV,
            beam_x_px: beam_x_frac * size_px as f64,
            beam_y_px: beam_y_frac * size_px as f64,
        }
    }

    /// X-ray wavelength in Å.
    pub fn wavelength_angstrom(&self) -> f64 {
        HC_KEV_ANGSTROM / self.energy_kev
    }

    /// Pixel pitch over distance: tan(2θ) per pixel of radius.
    fn tan_per_px(&self) -> f64 {
        self.pixel_size_um * 1e-6 / self.distance_m
    }

    /// q in Å⁻¹ at a distance `r_px` from the beam centre: q = 4π sin(θ)/λ, 2θ = atan(r·p/d).
    #[inline]
    pub fn q_at_radius(&self, r_px: f64) -> f64 {
        // sin θ from tan 2θ without trigonometric calls: cos 2θ = 1/√(1+t²), sin θ = √((1−cos 2θ)/2).
        let t = r_px * self.tan_per_px();
        let cos_2theta = 1.0 / (1.0 + t * t).sqrt();
        4.0 * std::f64::consts::PI / self.wavelength_angstrom() * ((1.0 - cos_2theta) * 0.5).sqrt()
    }

    /// Radius in pixels at which q (Å⁻¹) lands; `None` beyond 90° scattering.
    pub fn radius_at_q(&self, q_inv_angstrom: f64) -> Option<f64> {
        let s = q_inv_angstrom * self.wavelength_angstrom() / (4.0 * std::f64::consts::PI);
        if !(0.0..1.0).contains(&s) {
            return None;
        }
        let two_theta = 2.0 * s.asin_p();
        if two_theta >= std::f64::consts::FRAC_PI_2 {
            return None;
        }
        Some(two_theta.tan_p() / self.tan_per_px())
    }

    /// Distances in pixels from the beam centre to the nearest and farthest point of the image.
    pub fn radius_range_px(&self) -> (f64, f64) {
        let (w, h) = (self.width_px as f64, self.height_px as f64);
        let nx = self.beam_x_px.clamp(0.0, w) - self.beam_x_px;
        let ny = self.beam_y_px.clamp(0.0, h) - self.beam_y_px;
        let far = [(0.0, 0.0), (w, 0.0), (0.0, h), (w, h)]
            .iter()
            .map(|(x, y)| (x - self.beam_x_px).hypot_p(y - self.beam_y_px))
            .fold(0.0, f64::max);
        (nx.hypot_p(ny), far)
    }

    /// Whether the beam centre lies outside the image.
    pub fn beam_off_image(&self) -> bool {
        self.beam_x_px < 0.0
            || self.beam_y_px < 0.0
            || self.beam_x_px >= self.width_px as f64
            || self.beam_y_px >= self.height_px as f64
    }

    /// Whether a ring of q (Å⁻¹) crosses the image.
    pub fn ring_visible(&self, q_inv_angstrom: f64) -> bool {
        let (near, far) = self.radius_range_px();
        self.radius_at_q(q_inv_angstrom)
            .is_some_and(|r| r > near + 1.0 && r < far - 1.0)
    }
}

/// Detector layouts: a monolithic sensor, or a hybrid pixel detector with gaps between modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    /// One sensor, no gaps.
    #[default]
    Plain,
    /// Pilatus-like: 487×195 px modules, 7 px gaps between columns, 17 px between rows.
    Pilatus,
    /// Eiger-like: 1030×514 px modules, 10 px gaps between columns, 37 px between rows.
    Eiger,
}

impl DetectorKind {
    /// Module size and gaps in reference (1000 px scale) pixels: (module w, module h, gap x, gap y).
    fn layout(self) -> Option<(f64, f64, f64, f64)> {
        match self {
            DetectorKind::Plain => None,
            DetectorKind::Pilatus => Some((487.0, 195.0, 7.0, 17.0)),
            // Eiger modules are large: on a 1000 px reference image show them at half scale so
            // the gaps are visible, as on an Eiger 4M binned 2×2.
            DetectorKind::Eiger => Some((515.0, 257.0, 5.0, 18.5)),
        }
    }

    /// The gap mask (`true` = no sensor) for an image of `width × height`, where one reference pixel
    /// spans `scale` image pixels.
    pub fn gap_mask(self, width_px: usize, height_px: usize, scale: f64) -> Option<Vec<bool>> {
        let (mw, mh, gx, gy) = self.layout()?;
        let (pitch_x, pitch_y) = ((mw + gx) * scale, (mh + gy) * scale);
        let (gap_x, gap_y) = ((gx * scale).max(1.0), (gy * scale).max(1.0));
        let mut mask = vec![false; width_px * height_px];
        for y in 0..height_px {
            let in_gap_y = (y as f64 + 0.5) % pitch_y >= pitch_y - gap_y;
            for x in 0..width_px {
                let in_gap_x = (x as f64 + 0.5) % pitch_x >= pitch_x - gap_x;
                mask[y * width_px + x] = in_gap_x || in_gap_y;
            }
        }
        Some(mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_and_radius_are_inverse() {
        let g = Geometry::reference(1000, 0.5, 0.5);
        for r in [1.0, 35.0, 400.0, 1200.0] {
            let q = g.q_at_radius(r);
            let back = g.radius_at_q(q).expect("in range");
            assert!((back - r).abs() < 1e-6 * r.max(1.0), "{r} → {q} → {back}");
        }
        // Small-angle check: q ≈ 4π/λ · (r p / 2d) at r = 1 px: ≈ 5.69e-4 Å⁻¹.
        assert!(
            (g.q_at_radius(1.0) - 5.690e-4).abs() < 2e-6,
            "{}",
            g.q_at_radius(1.0)
        );
    }

    #[test]
    fn off_image_centre_is_detected() {
        assert!(Geometry::reference(256, -0.03, 0.5).beam_off_image());
        assert!(!Geometry::reference(256, 0.0, 0.99).beam_off_image());
        let g = Geometry::reference(100, 1.05, 0.5);
        let (near, far) = g.radius_range_px();
        assert!((near - 5.0).abs() < 1e-9 && far > 105.0);
    }

    #[test]
    fn pilatus_gaps_have_the_module_pitch() {
        let mask = DetectorKind::Pilatus
            .gap_mask(1000, 1000, 1.0)
            .expect("has gaps");
        // First vertical gap spans columns 487..494 on row 0.
        let row0: Vec<usize> = (0..1000).filter(|&x| mask[x]).collect();
        assert_eq!(&row0[..7], &[487, 488, 489, 490, 491, 492, 493]);
        let frac = mask.iter().filter(|&&m| m).count() as f64 / 1e6;
        assert!(frac > 0.08 && frac < 0.12, "gap fraction {frac}");
        assert!(DetectorKind::Plain.gap_mask(10, 10, 1.0).is_none());
    }
}
