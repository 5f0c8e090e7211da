//! Edge fusion for grain-boundary detection (seed 001): Sobel → R, Laplacian of Gaussian → G,
//! Canny → B, each normalised to [0, 1].
//!
//! The detectors come from `imageproc`; this module chooses their parameters, normalises their
//! responses robustly (percentiles rather than extremes, so one hot pixel does not flatten the
//! map) and stacks them.

use crate::Image;
use image::{GrayImage, ImageBuffer, Luma};
use imageproc::filter::{filter, gaussian_blur_f32};
use imageproc::kernel::Kernel;

/// Detector parameters. The defaults suit micrographs with boundaries a few pixels wide.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeParams {
    /// σ of the Gaussian before the Laplacian, in pixels.
    pub log_sigma_px: f32,
    /// Canny's high hysteresis threshold as a quantile of the gradient magnitude.
    pub canny_high_quantile: f32,
    /// Canny's low threshold as a fraction of the high one.
    pub canny_low_ratio: f32,
}

impl Default for EdgeParams {
    fn default() -> Self {
        Self {
            log_sigma_px: 1.0,
            canny_high_quantile: 0.9,
            canny_low_ratio: 0.5,
        }
    }
}

/// The three edge channels of one image, each in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeMap {
    /// Sobel gradient magnitude (R).
    pub sobel: Image<f32>,
    /// Laplacian of Gaussian (G): 0.5 is zero response, above 0.5 a dark line or valley.
    pub log: Image<f32>,
    /// Canny edges (B): 0 or 1.
    pub canny: Image<f32>,
}

impl EdgeMap {
    /// Channel-major planes `[3, height, width]` (R, G, B), the network's edge input.
    pub fn to_planes(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(3 * self.sobel.pixels().len());
        v.extend_from_slice(self.sobel.pixels());
        v.extend_from_slice(self.log.pixels());
        v.extend_from_slice(self.canny.pixels());
        v
    }

    /// Interleaved RGBA bytes for display.
    pub fn to_rgba(&self) -> Vec<u8> {
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        let mut out = Vec::with_capacity(4 * self.sobel.pixels().len());
        for ((&r, &g), &b) in self
            .sobel
            .pixels()
            .iter()
            .zip(self.log.pixels())
            .zip(self.canny.pixels())
        {
            out.extend_from_slice(&[byte(r), byte(g), byte(b), 255]);
        }
        out
    }
}

/// The value below which a fraction `q` of `values` lies (nearest rank; NaNs ignored).
pub fn quantile(values: &[f32], q: f32) -> f32 {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    let k = ((q.clamp(0.0, 1.0) * (v.len() - 1) as f32).round() as usize).min(v.len() - 1);
    let (_, x, _) = v.select_nth_unstable_by(k, f32::total_cmp);
    *x
}

/// Maps intensities to [0, 1] between the 0.5 % and 99.5 % quantiles, so that detector offsets,
/// bit depth and a few hot pixels do not change the edge maps. A flat image maps to 0.
pub fn normalize_gray<T: Copy + Into<f64>>(image: &Image<T>) -> Image<f32> {
    let values: Vec<f32> = image.pixels().iter().map(|&v| v.into() as f32).collect();
    let lo = quantile(&values, 0.005);
    let hi = quantile(&values, 0.995);
    let span = hi - lo;
    let pixels = values
        .iter()
        .map(|&v| {
            if span > 0.0 && v.is_finite() {
                ((v - lo) / span).clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
        .collect();
    image.with_pixels(pixels)
}

fn to_gray8(image: &Image<f32>) -> GrayImage {
    let bytes = image
        .pixels()
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    // Dimensions match the buffer by construction.
    ImageBuffer::from_raw(image.width() as u32, image.height() as u32, bytes)
        .unwrap_or_else(|| GrayImage::new(image.width() as u32, image.height() as u32))
}

fn to_luma_f32(image: &Image<f32>) -> ImageBuffer<Luma<f32>, Vec<f32>> {
    ImageBuffer::from_raw(
        image.width() as u32,
        image.height() as u32,
        image.pixels().to_vec(),
    )
    .unwrap_or_else(|| ImageBuffer::new(image.width() as u32, image.height() as u32))
}

/// Scales non-negative responses by their 99.5 % quantile and clips to [0, 1].
fn scale_unit(values: &[f32]) -> Vec<f32> {
    let top = quantile(values, 0.995);
    values
        .iter()
        .map(|&v| {
            if top > 0.0 {
                (v / top).clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
        .collect()
}

/// Sobel gradient magnitude of a [0, 1] image, normalised to [0, 1].
pub fn sobel(image: &Image<f32>) -> Image<f32> {
    let magnitude = imageproc::gradients::sobel_gradients(&to_gray8(image));
    let values: Vec<f32> = magnitude.pixels().map(|p| f32::from(p.0[0])).collect();
    image.with_pixels(scale_unit(&values))
}

/// Laplacian of Gaussian of a [0, 1] image mapped to [0, 1]: 0.5 + 0.5·LoG/|LoG|₉₉.₅.
/// Dark lines (boundaries) give values above 0.5, bright lines below.
pub fn laplacian_of_gaussian(image: &Image<f32>, sigma_px: f32) -> Image<f32> {
    let blurred = gaussian_blur_f32(&to_luma_f32(image), sigma_px.max(0.1));
    let laplacian = Kernel::new(&[0.0f32, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0], 3, 3);
    let response: ImageBuffer<Luma<f32>, Vec<f32>> = filter(&blurred, laplacian, |v| v);
    let values: Vec<f32> = response.pixels().map(|p| p.0[0]).collect();
    let abs: Vec<f32> = values.iter().map(|v| v.abs()).collect();
    let top = quantile(&abs, 0.995);
    let pixels = values
        .iter()
        .map(|&v| {
            if top > 0.0 {
                0.5 + 0.5 * (v / top).clamp(-1.0, 1.0)
            } else {
                0.5
            }
        })
        .collect();
    image.with_pixels(pixels)
}

/// Canny edges (0 or 1) of a [0, 1] image. The thresholds adapt to the image: the high one is a
/// quantile of the Sobel magnitude after the same σ = 1.4 blur Canny applies.
pub fn canny(image: &Image<f32>, high_quantile: f32, low_ratio: f32) -> Image<f32> {
    let gray = to_gray8(image);
    let blurred = gaussian_blur_f32(&gray, 1.4);
    let magnitude: Vec<f32> = imageproc::gradients::sobel_gradients(&blurred)
        .pixels()
        .map(|p| f32::from(p.0[0]))
        .collect();
    let high = quantile(&magnitude, high_quantile).max(1.0);
    let low = (high * low_ratio.clamp(0.0, 1.0)).max(0.5);
    let edges = imageproc::edges::canny(&gray, low, high);
    image.with_pixels(edges.pixels().map(|p| f32::from(p.0[0] / 255)).collect())
}

/// The grain networks' input for an image of any pixel type: the normalised grey image and its
/// edge map, and the planes `[4, height, width]` (Sobel, LoG, Canny, grey).
pub fn grain_planes<T: Copy + Into<f64>>(image: &Image<T>) -> (Image<f32>, EdgeMap, Vec<f32>) {
    let gray = normalize_gray(image);
    let edges = edge_map(&gray, &EdgeParams::default());
    let mut planes = edges.to_planes();
    planes.extend_from_slice(gray.pixels());
    (gray, edges, planes)
}

/// All three detectors on a [0, 1] image (see [`normalize_gray`]).
pub fn edge_map(image: &Image<f32>, params: &EdgeParams) -> EdgeMap {
    EdgeMap {
        sobel: sobel(image),
        log: laplacian_of_gaussian(image, params.log_sigma_px),
        canny: canny(image, params.canny_high_quantile, params.canny_low_ratio),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vertical step from 0.2 to 0.8 between columns 15 and 16 of a 32 × 24 image.
    fn step() -> Image<f32> {
        let mut img = Image::filled(32, 24, 0.2f32).expect("size");
        for y in 0..24 {
            for x in 16..32 {
                img.set(x, y, 0.8);
            }
        }
        img
    }

    /// A dark vertical line one pixel wide at column 12 on a flat grey field.
    fn dark_line() -> Image<f32> {
        let mut img = Image::filled(32, 24, 0.6f32).expect("size");
        for y in 0..24 {
            img.set(12, y, 0.1);
        }
        img
    }

    #[test]
    fn sobel_peaks_at_the_step_and_is_zero_on_flat_parts() {
        let s = sobel(&step());
        for y in 2..22 {
            assert!(s.get(15, y) > 0.99 && s.get(16, y) > 0.99, "row {y}");
            assert_eq!(s.get(5, y), 0.0);
            assert_eq!(s.get(26, y), 0.0);
        }
    }

    #[test]
    fn log_is_positive_on_a_dark_line_and_neutral_far_away() {
        let g = laplacian_of_gaussian(&dark_line(), 1.0);
        for y in 3..21 {
            assert!(g.get(12, y) > 0.95, "centre {}", g.get(12, y));
            // The flanks of a dark line are bright relative to it: negative Laplacian.
            assert!(g.get(10, y) < 0.5);
            assert!((g.get(25, y) - 0.5).abs() < 1e-3);
        }
    }

    #[test]
    fn canny_marks_a_thin_line_at_the_step_only() {
        let c = canny(&step(), 0.9, 0.5);
        for y in 3..21 {
            let row: Vec<usize> = (0..32).filter(|&x| c.get(x, y) == 1.0).collect();
            // A perfect step has equal gradients on both sides: at most those two pixels survive.
            assert!(!row.is_empty() && row.len() <= 2, "row {y}: {row:?}");
            assert!(
                row.iter().all(|x| (15..=16).contains(x)),
                "row {y}: {row:?}"
            );
        }
        assert!(c.pixels().iter().all(|&v| v == 0.0 || v == 1.0));
    }

    #[test]
    fn normalisation_ignores_hot_pixels_and_handles_flat_images() {
        let mut img =
            Image::from_vec(100, 10, (0..1000).map(|i| (i % 100) as u16).collect()).expect("size");
        img.set(0, 0, 60_000);
        let n = normalize_gray(&img);
        assert!((n.get(50, 5) - 50.0 / 99.0).abs() < 0.02);
        let flat = normalize_gray(&Image::filled(8, 8, 7u8).expect("size"));
        assert!(flat.pixels().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn edge_map_planes_are_channel_major() {
        let m = edge_map(&step(), &EdgeParams::default());
        let planes = m.to_planes();
        assert_eq!(planes.len(), 3 * 32 * 24);
        assert_eq!(planes[15], m.sobel.get(15, 0));
        assert_eq!(planes[32 * 24 + 12], m.log.get(12, 0));
        assert!(planes.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
