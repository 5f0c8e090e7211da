//! pyFAI's PONI calibration files (formats 1 and 2.x): the detector's distance, point of normal
//! incidence, three rotations, wavelength and pixel size → the beam centre and the q of every
//! pixel, as pyFAI computes them.
//!
//! pyFAI's conventions (its `Geometry`): axis 1 is the row (y, down), axis 2 the column (x);
//! pixel (row i, column j) has its centre at `((i + ½)·pixel1, (j + ½)·pixel2)` on the detector;
//! `Poni1`/`Poni2` are the point of normal incidence in metres in that frame; the rotations are
//! applied as pyFAI's `calc_pos_zyx` does. Only the default detector orientation (3: origin at
//! the top left, as this project's images) is read; files of another orientation are refused
//! by name.

use crate::detector::Geometry;

/// Pixel pitch in m of detectors a PONI file may name without giving it (older files).
const KNOWN_PIXELS_M: [(&str, f64); 2] = [("pilatus", 172e-6), ("eiger", 75e-6)];

/// Why a PONI file cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoniError {
    /// A field is missing or not a number.
    #[error("the PONI file has no valid {0}")]
    Field(&'static str),
    /// The pixel size is neither given nor known from the detector's name.
    #[error(
        "the PONI file names detector \"{0}\" without its pixel size; save it again with pyFAI 2 (its Detector_config records the pixel size)"
    )]
    PixelSize(String),
    /// A layout this reader does not handle.
    #[error("{0}")]
    Unsupported(String),
}

/// A PONI calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Poni {
    /// Detector name (`Detector`).
    pub detector: String,
    /// Sample to point of normal incidence, m.
    pub distance_m: f64,
    /// Point of normal incidence along the rows (down), m.
    pub poni1_m: f64,
    /// Point of normal incidence along the columns (right), m.
    pub poni2_m: f64,
    /// Rotations about the three axes, rad.
    pub rot_rad: [f64; 3],
    /// X-ray wavelength, m.
    pub wavelength_m: f64,
    /// Pixel pitch along the rows and the columns, m.
    pub pixel_m: (f64, f64),
    /// `max_shape` (rows, columns) when the file records it.
    pub shape: Option<(usize, usize)>,
}

/// Reads a PONI file's text.
pub fn parse_poni(text: &str) -> Result<Poni, PoniError> {
    let mut fields = std::collections::HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let number = |key: &'static str| -> Result<f64, PoniError> {
        fields
            .get(&key.to_ascii_lowercase())
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .ok_or(PoniError::Field(key))
    };
    let optional = |key: &'static str| -> Result<f64, PoniError> {
        if fields.contains_key(&key.to_ascii_lowercase()) {
            number(key)
        } else {
            Ok(0.0)
        }
    };
    let detector = fields
        .get("detector")
        .cloned()
        .unwrap_or_else(|| "Detector".into());
    let config: serde_json::Value = match fields.get("detector_config") {
        Some(c) => serde_json::from_str(c)
            .map_err(|e| PoniError::Unsupported(format!("Detector_config is not JSON: {e}")))?,
        None => serde_json::Value::Null,
    };
    if let Some(o) = config.get("orientation").and_then(|o| o.as_u64())
        && o != 3
    {
        return Err(PoniError::Unsupported(format!(
            "detector orientation {o} is not read (only pyFAI's default 3, origin at the top left)"
        )));
    }
    let from_config = |k: &str| config.get(k).and_then(|v| v.as_f64());
    let known = KNOWN_PIXELS_M
        .iter()
        .find(|(name, _)| detector.to_ascii_lowercase().contains(name))
        .map(|&(_, p)| p);
    let pixel = |config_key: &str, v1_key: &'static str| -> Result<f64, PoniError> {
        from_config(config_key)
            .or_else(|| number(v1_key).ok())
            .or(known)
            .filter(|p| p.is_finite() && *p > 0.0)
            .ok_or_else(|| PoniError::PixelSize(detector.clone()))
    };
    let pixel_m = (
        pixel("pixel1", "PixelSize1")?,
        pixel("pixel2", "PixelSize2")?,
    );
    let shape = config.get("max_shape").and_then(|s| {
        let a = s.as_array()?;
        Some((a.first()?.as_u64()? as usize, a.get(1)?.as_u64()? as usize))
    });
    let poni = Poni {
        detector,
        distance_m: number("Distance")?,
        poni1_m: number("Poni1")?,
        poni2_m: number("Poni2")?,
        rot_rad: [optional("Rot1")?, optional("Rot2")?, optional("Rot3")?],
        wavelength_m: number("Wavelength")?,
        pixel_m,
        shape,
    };
    if poni.distance_m <= 0.0 {
        return Err(PoniError::Field("Distance"));
    }
    if poni.wavelength_m <= 0.0 {
        return Err(PoniError::Field("Wavelength"));
    }
    Ok(poni)
}

impl Poni {
    /// Angle between the detector's normal and the beam, degrees (pyFAI's `tilt`).
    pub fn tilt_deg(&self) -> f64 {
        (self.rot_rad[0].cos() * self.rot_rad[1].cos())
            .clamp(-1.0, 1.0)
            .acos()
            .to_degrees()
    }

    /// Where the direct beam hits the detector, (column, row) in pixels with pixel centres at
    /// +½ (pyFAI's `getFit2D` centre).
    pub fn beam_centre_px(&self) -> (f64, f64) {
        let [r1, r2, _] = self.rot_rad;
        let cos_tilt = r1.cos() * r2.cos();
        let sin_tilt = (1.0 - cos_tilt * cos_tilt).max(0.0).sqrt();
        let tan_tilt = sin_tilt / cos_tilt;
        let (cos_tpr, sin_tpr) = if sin_tilt == 0.0 {
            (1.0, 0.0)
        } else {
            (
                (-r2.cos() * r1.sin() / sin_tilt).clamp(-1.0, 1.0),
                r2.sin() / sin_tilt,
            )
        };
        let x = (self.poni2_m + self.distance_m * tan_tilt * cos_tpr) / self.pixel_m.1;
        let y = (self.poni1_m + self.distance_m * tan_tilt * sin_tpr) / self.pixel_m.0;
        (x, y)
    }

    /// q in Å⁻¹ at the point (x, y) of the detector in pixels (pixel centres at +½), as pyFAI's
    /// `qArray` (divided by 10) gives it.
    pub fn q_inv_angstrom(&self, x_px: f64, y_px: f64) -> f64 {
        let [r1, r2, r3] = self.rot_rad;
        let p1 = y_px * self.pixel_m.0 - self.poni1_m;
        let p2 = x_px * self.pixel_m.1 - self.poni2_m;
        let l = self.distance_m;
        let (c1, s1, c2, s2, c3, s3) = (r1.cos(), r1.sin(), r2.cos(), r2.sin(), r3.cos(), r3.sin());
        let t1 = p1 * c2 * c3 + p2 * (c3 * s1 * s2 - c1 * s3) - l * (c1 * c3 * s2 + s1 * s3);
        let t2 = p1 * c2 * s3 + p2 * (c1 * c3 + s1 * s2 * s3) - l * (-(c3 * s1) + c1 * s2 * s3);
        let t3 = p1 * s2 - p2 * c2 * s1 + l * c1 * c2;
        let two_theta = t1.hypot(t2).atan2(t3);
        4.0 * std::f64::consts::PI / (self.wavelength_m * 1e10) * (two_theta / 2.0).sin()
    }

    /// The flat, untilted geometry closest to the calibration for a `width × height` image:
    /// beam at the direct-beam point, distance along the beam (what the polar grid and the
    /// engine's detector model use; tilts of a degree or two move q by well under a percent).
    pub fn geometry(&self, width_px: usize, height_px: usize) -> Geometry {
        let (bx, by) = self.beam_centre_px();
        let cos_tilt = (self.rot_rad[0].cos() * self.rot_rad[1].cos()).max(1e-6);
        Geometry {
            width_px,
            height_px,
            pixel_size_um: 0.5 * (self.pixel_m.0 + self.pixel_m.1) * 1e6,
            distance_m: self.distance_m / cos_tilt,
            energy_kev: crate::detector::HC_KEV_ANGSTROM / (self.wavelength_m * 1e10),
            beam_x_px: bx,
            beam_y_px: by,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_file_reads_its_pixel_sizes() {
        let text = "# pyFAI 0.x\nPixelSize1: 0.0001\nPixelSize2: 0.0002\nDistance: 0.5\n\
                    Poni1: 0.01\nPoni2: 0.02\nRot1: 0\nRot2: 0\nRot3: 0\nWavelength: 1e-10\n";
        let p = parse_poni(text).expect("poni");
        assert_eq!(p.pixel_m, (1e-4, 2e-4));
        // Untilted: the centre is the point of normal incidence.
        assert_eq!(p.beam_centre_px(), (100.0, 100.0));
        assert_eq!(p.tilt_deg(), 0.0);
        // At the centre q = 0; 0.5 m off axis at 0.5 m, 2θ = 45°: q = 4π/1 Å · sin 22.5°.
        assert!(p.q_inv_angstrom(100.0, 100.0).abs() < 1e-12);
        let q = p.q_inv_angstrom(100.0 + 0.5 / 2e-4, 100.0);
        assert!((q - 4.0 * std::f64::consts::PI * 22.5f64.to_radians().sin()).abs() < 1e-9);
    }

    #[test]
    fn bad_files_are_refused_by_field() {
        assert_eq!(
            parse_poni("Distance: 0.1\nPoni1: 0\nPoni2: 0\nWavelength: 1e-10\nDetector: Mystery")
                .expect_err("no pixel"),
            PoniError::PixelSize("Mystery".into())
        );
        let err = parse_poni("Detector: Pilatus1M\nPoni1: 0\nPoni2: 0\nWavelength: 1e-10")
            .expect_err("no distance");
        assert_eq!(err, PoniError::Field("Distance"));
        let err = parse_poni(
            "Detector: Detector\nDetector_config: {\"pixel1\": 1e-4, \"pixel2\": 1e-4, \"orientation\": 1}\n\
             Distance: 0.1\nPoni1: 0\nPoni2: 0\nWavelength: 1e-10",
        )
        .expect_err("orientation");
        assert!(err.to_string().contains("orientation 1"), "{err}");
        // A named detector without its pixel size in the file: known from the name.
        let p =
            parse_poni("Detector: Eiger4M\nDistance: 0.1\nPoni1: 0\nPoni2: 0\nWavelength: 1e-10")
                .expect("eiger");
        assert_eq!(p.pixel_m, (75e-6, 75e-6));
    }
}
