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
    /// Dectris Pilatus 300K (1 × 3 modules, 487 × 619 px), the whole detector binned onto
    /// the image (as are the seven below; see [`DetectorKind::gap_mask`]).
    #[serde(rename = "pilatus_300k")]
    Pilatus300k,
    /// Dectris Pilatus 1M (2 × 5 modules, 981 × 1043 px).
    #[serde(rename = "pilatus_1m")]
    Pilatus1M,
    /// Dectris Pilatus 2M (3 × 8 modules, 1475 × 1679 px).
    #[serde(rename = "pilatus_2m")]
    Pilatus2M,
    /// Dectris Pilatus 6M (5 × 12 modules, 2463 × 2527 px).
    #[serde(rename = "pilatus_6m")]
    Pilatus6M,
    /// Dectris Eiger 1M (1 × 2 modules, 1030 × 1065 px).
    #[serde(rename = "eiger_1m")]
    Eiger1M,
    /// Dectris Eiger 4M (2 × 4 modules, 2070 × 2167 px).
    #[serde(rename = "eiger_4m")]
    Eiger4M,
    /// Dectris Eiger 9M (3 × 6 modules, 3110 × 3269 px).
    #[serde(rename = "eiger_9m")]
    Eiger9M,
    /// Dectris Eiger 16M (4 × 8 modules, 4150 × 4371 px).
    #[serde(rename = "eiger_16m")]
    Eiger16M,
}

/// A real detector's modules: how many across and down, their size and the gaps between
/// them, in sensor pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModuleLayout {
    /// Modules side by side.
    pub across: u32,
    /// Modules one above the other.
    pub down: u32,
    /// Module width in pixels.
    pub module_w_px: f64,
    /// Module height in pixels.
    pub module_h_px: f64,
    /// Gap between two modules side by side.
    pub gap_x_px: f64,
    /// Gap between two modules one above the other.
    pub gap_y_px: f64,
}

impl ModuleLayout {
    /// Width and height of the whole detector in sensor pixels.
    pub fn size_px(&self) -> (f64, f64) {
        let (nx, ny) = (f64::from(self.across), f64::from(self.down));
        (
            nx * self.module_w_px + (nx - 1.0) * self.gap_x_px,
            ny * self.module_h_px + (ny - 1.0) * self.gap_y_px,
        )
    }

    /// Fraction of sensor under each of `bins` image pixels of `bin_px` sensor pixels along
    /// one axis, the detector starting `offset_px` sensor pixels into the first bin.
    fn coverage(
        count: u32,
        module_px: f64,
        gap_px: f64,
        bins: usize,
        bin_px: f64,
        offset_px: f64,
    ) -> Vec<f64> {
        let pitch = module_px + gap_px;
        (0..bins)
            .map(|i| {
                let (a, b) = (
                    i as f64 * bin_px - offset_px,
                    (i + 1) as f64 * bin_px - offset_px,
                );
                let covered: f64 = (0..count)
                    .map(|m| {
                        let start = f64::from(m) * pitch;
                        (b.min(start + module_px) - a.max(start)).max(0.0)
                    })
                    .sum();
                covered / bin_px
            })
            .collect()
    }
}

/// Every detector layout, in the order the engine draws them from.
pub const DETECTOR_KINDS: [DetectorKind; 11] = [
    DetectorKind::Plain,
    DetectorKind::Pilatus,
    DetectorKind::Eiger,
    DetectorKind::Pilatus300k,
    DetectorKind::Pilatus1M,
    DetectorKind::Pilatus2M,
    DetectorKind::Pilatus6M,
    DetectorKind::Eiger1M,
    DetectorKind::Eiger4M,
    DetectorKind::Eiger9M,
    DetectorKind::Eiger16M,
];

impl DetectorKind {
    /// Module size and gaps in reference (1000 px scale) pixels: (module w, module h, gap x, gap y).
    fn layout(self) -> Option<(f64, f64, f64, f64)> {
        match self {
            DetectorKind::Plain => None,
            DetectorKind::Pilatus => Some((487.0, 195.0, 7.0, 17.0)),
            // Eiger modules are large: on a 1000 px reference image show them at half scale so
            // the gaps are visible, as on an Eiger 4M binned 2×2.
            DetectorKind::Eiger => Some((515.0, 257.0, 5.0, 18.5)),
            _ => None,
        }
    }

    /// The modules of a real detector (Pilatus: 487 × 195 px modules, gaps 7 and 17 px;
    /// Eiger: 1030 × 514 px, gaps 10 and 37 px); `None` for the monolithic and the two
    /// scaled layouts.
    pub fn modules(self) -> Option<ModuleLayout> {
        let pilatus = |across, down| ModuleLayout {
            across,
            down,
            module_w_px: 487.0,
            module_h_px: 195.0,
            gap_x_px: 7.0,
            gap_y_px: 17.0,
        };
        let eiger = |across, down| ModuleLayout {
            across,
            down,
            module_w_px: 1030.0,
            module_h_px: 514.0,
            gap_x_px: 10.0,
            gap_y_px: 37.0,
        };
        match self {
            DetectorKind::Plain | DetectorKind::Pilatus | DetectorKind::Eiger => None,
            DetectorKind::Pilatus300k => Some(pilatus(1, 3)),
            DetectorKind::Pilatus1M => Some(pilatus(2, 5)),
            DetectorKind::Pilatus2M => Some(pilatus(3, 8)),
            DetectorKind::Pilatus6M => Some(pilatus(5, 12)),
            DetectorKind::Eiger1M => Some(eiger(1, 2)),
            DetectorKind::Eiger4M => Some(eiger(2, 4)),
            DetectorKind::Eiger9M => Some(eiger(3, 6)),
            DetectorKind::Eiger16M => Some(eiger(4, 8)),
        }
    }

    /// The gap mask (`true` = no sensor) for an image of `width × height`, where one reference pixel
    /// spans `scale` image pixels.
    ///
    /// A real detector ([`DetectorKind::modules`]) is instead binned whole onto the image: its
    /// longer side fills the image, centred, so a binned pixel covers several sensor pixels
    /// (`scale` is not used); a pixel with less than half of it on sensor — in a gap, or
    /// beside a detector narrower than the image — is masked, as a binned frame's would be.
    pub fn gap_mask(self, width_px: usize, height_px: usize, scale: f64) -> Option<Vec<bool>> {
        if let Some(m) = self.modules() {
            let (dw, dh) = m.size_px();
            let bin_px = (dw / width_px as f64).max(dh / height_px as f64);
            let offset = |bins: usize, size: f64| (bins as f64 * bin_px - size) / 2.0;
            let cx = ModuleLayout::coverage(
                m.across,
                m.module_w_px,
                m.gap_x_px,
                width_px,
                bin_px,
                offset(width_px, dw),
            );
            let cy = ModuleLayout::coverage(
                m.down,
                m.module_h_px,
                m.gap_y_px,
                height_px,
                bin_px,
                offset(height_px, dh),
            );
            return Some(
                cy.iter()
                    .flat_map(|fy| cx.iter().map(move |fx| fx * fy < 0.5))
                    .collect(),
            );
        }
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
    fn real_detectors_bin_their_module_gaps_onto_the_image() {
        // Pilatus 1M (981 × 1043 px) on 256 × 256: 4.07 sensor px per image px, the 7 px
        // column gap → 1–2 masked columns; 4 row gaps of 17 px → 4 bands of about 4 masked
        // rows; the detector is narrower than tall: 981 / 4.07 = 241 columns of sensor, 15
        // empty beside it.
        let mask = DetectorKind::Pilatus1M
            .gap_mask(256, 256, 1.0)
            .expect("a layout");
        let masked_rows = (0..256)
            .filter(|y| (0..256).all(|x| mask[y * 256 + x]))
            .count();
        let masked_cols = (0..256)
            .filter(|x| (0..256).all(|y| mask[y * 256 + x]))
            .count();
        assert!((15..=18).contains(&masked_rows), "{masked_rows}");
        assert!((16..=18).contains(&masked_cols), "{masked_cols}");
        let fraction = mask.iter().filter(|m| **m).count() as f64 / mask.len() as f64;
        // pyFAI's own Pilatus 1M mask is 7.2 % gaps, on 94 % of the image; plus the empty
        // columns beside it (6 %).
        assert!((0.11..0.15).contains(&fraction), "{fraction}");
        // The largest Eiger still shows its row gaps at 256 px (37 px gaps at 17 px a bin).
        let eiger = DetectorKind::Eiger16M
            .gap_mask(256, 256, 1.0)
            .expect("a layout");
        let rows = (0..256)
            .filter(|y| (60..200).all(|x| eiger[y * 256 + x]))
            .count();
        assert!((7..=16).contains(&rows), "{rows}");
        assert!(DetectorKind::Plain.gap_mask(256, 256, 1.0).is_none());
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
