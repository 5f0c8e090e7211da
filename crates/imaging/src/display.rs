//! Mapping intensities to colours for display: linear or log scaling, then a colormap.

use crate::Image;
use crate::colormap_tables::{INFERNO, VIRIDIS};

/// Intensity scaling before the colormap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// Value maps linearly from the minimum to the maximum.
    Linear,
    /// `log10(1 + v − min)`: scattering intensities span many decades.
    #[default]
    Log,
}

/// Colormaps for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    /// Black to white.
    Gray,
    /// matplotlib's perceptually uniform viridis.
    #[default]
    Viridis,
    /// matplotlib's perceptually uniform inferno.
    Inferno,
}

impl Colormap {
    /// RGB for a normalised value `t` in [0, 1] (clamped).
    pub fn rgb(self, t: f32) -> [u8; 3] {
        let i = (t.clamp(0.0, 1.0) * 255.0).round() as usize;
        match self {
            Colormap::Gray => [i as u8; 3],
            Colormap::Viridis => VIRIDIS[i],
            Colormap::Inferno => INFERNO[i],
        }
    }
}

/// Renders `image` to RGBA bytes (row-major, 4 bytes per pixel, opaque), ready for a canvas.
///
/// Non-finite and negative values (masked pixels in detector files) are shown as the lowest
/// colour. The range is the finite minimum and maximum of the image.
pub fn render_rgba(image: &Image<f32>, scale: Scale, colormap: Colormap) -> Vec<u8> {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in image.pixels() {
        if v.is_finite() && v >= 0.0 {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    } else if hi <= lo {
        // A constant image: show it at the top of the colormap rather than divide by zero.
        lo = hi - 1.0;
    }
    let transform = |v: f32| -> f32 {
        let d = (v - lo).max(0.0);
        match scale {
            Scale::Linear => d,
            Scale::Log => (1.0 + d).log10(),
        }
    };
    let span = transform(hi).max(f32::MIN_POSITIVE);
    let mut out = Vec::with_capacity(image.pixels().len() * 4);
    for &v in image.pixels() {
        let t = if v.is_finite() && v >= 0.0 {
            transform(v) / span
        } else {
            0.0
        };
        let [r, g, b] = colormap.rgb(t);
        out.extend_from_slice(&[r, g, b, 255]);
    }
    out
}

/// Blends `color` over the RGBA buffer wherever `mask` is set, with opacity `alpha` in [0, 1].
pub fn overlay_mask(rgba: &mut [u8], mask: &[bool], color: [u8; 3], alpha: f32) {
    let a = alpha.clamp(0.0, 1.0);
    for (px, &m) in rgba.chunks_exact_mut(4).zip(mask) {
        if m {
            for c in 0..3 {
                px[c] = (f32::from(px[c]) * (1.0 - a) + f32::from(color[c]) * a).round() as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colormap_ends_match_matplotlib() {
        assert_eq!(Colormap::Viridis.rgb(0.0), [68, 1, 84]);
        assert_eq!(Colormap::Viridis.rgb(1.0), [253, 231, 37]);
        assert_eq!(Colormap::Inferno.rgb(0.0), [0, 0, 4]);
        assert_eq!(Colormap::Gray.rgb(0.5), [128, 128, 128]);
    }

    #[test]
    fn log_scale_spreads_decades() {
        let img = Image::from_vec(3, 1, vec![0.0, 99.0, 9999.0]).expect("3×1");
        let lin = render_rgba(&img, Scale::Linear, Colormap::Gray);
        let log = render_rgba(&img, Scale::Log, Colormap::Gray);
        // Linear: 99/9999 ≈ 1 % grey; log: log10(100)/log10(10000) = 50 % grey.
        assert_eq!(lin[4], 3);
        assert_eq!(log[4], 128);
        assert_eq!(log[8], 255);
        assert_eq!(log[3], 255, "opaque alpha");
    }

    #[test]
    fn masked_pixels_render_lowest_and_overlay_blends() {
        let img = Image::from_vec(2, 1, vec![-1.0, 10.0]).expect("2×1");
        let mut rgba = render_rgba(&img, Scale::Linear, Colormap::Gray);
        assert_eq!(&rgba[0..3], &[0, 0, 0]);
        overlay_mask(&mut rgba, &[true, false], [255, 0, 0], 0.5);
        assert_eq!(&rgba[0..3], &[128, 0, 0]);
        assert_eq!(&rgba[4..7], &[255, 255, 255]);
    }
}
