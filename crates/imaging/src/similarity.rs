//! Image-to-image similarity: PSNR, SSIM and MS-SSIM, as generated micrographs are compared with
//! the engine's image of the same mask.
//!
//! SSIM follows Wang et al. (2004) exactly as scikit-image's `structural_similarity` computes it
//! with `gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=R`:
//! - local means, variances and covariance under a Gaussian window of σ = 1.5 px, 11 taps
//!   (radius 5), normalised, applied separably, the image extended at its borders by
//!   half-sample reflection (`d c b a | a b c d | d c b a`, scipy's `reflect`);
//! - population (not sample) variances; C₁ = (0.01·R)², C₂ = (0.03·R)² for the stated data
//!   range R;
//! - the mean of the SSIM map over the pixels at least 5 px from every border.
//!
//! MS-SSIM follows Wang, Simoncelli & Bovik (2003): five scales with weights 0.0448, 0.2856,
//! 0.3001, 0.2363, 0.1333, the contrast–structure term at the first four and the full SSIM at
//! the last, each scale halved by 2 × 2 averaging (an odd last row or column dropped); a
//! negative term counts as 0 (as `pytorch_msssim` does), so the product stays real.
//!
//! Everything is computed in f64; results are per image (average over images yourself).

use crate::Image;

/// σ of the Gaussian window (Wang et al. 2004).
pub const SSIM_SIGMA_PX: f64 = 1.5;
/// Window radius: 11 taps, as `int(3.5·σ + 0.5)` gives in scikit-image / scipy.
pub const SSIM_RADIUS_PX: usize = 5;
/// K₁ of the luminance term.
pub const SSIM_K1: f64 = 0.01;
/// K₂ of the contrast term.
pub const SSIM_K2: f64 = 0.03;
/// MS-SSIM's weight per scale, finest first.
pub const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/// Why two images cannot be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimilarityError {
    /// The images differ in size.
    #[error("the images differ in size: {0}×{1} px and {2}×{3} px")]
    Size(usize, usize, usize, usize),
    /// Smaller than the measure needs.
    #[error("{measure} needs images of at least {need}×{need} px, not {width}×{height} px")]
    TooSmall {
        /// "SSIM" or "MS-SSIM".
        measure: &'static str,
        /// Smallest side in pixels.
        need: usize,
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// The data range is not a positive finite number.
    #[error("the data range must be a positive finite number, not {0}")]
    Range(f64),
}

fn check(a: &Image<f32>, b: &Image<f32>, data_range: f64) -> Result<(), SimilarityError> {
    if (a.width(), a.height()) != (b.width(), b.height()) {
        return Err(SimilarityError::Size(
            a.width(),
            a.height(),
            b.width(),
            b.height(),
        ));
    }
    if !(data_range.is_finite() && data_range > 0.0) {
        return Err(SimilarityError::Range(data_range));
    }
    Ok(())
}

/// Peak signal-to-noise ratio in dB, `10·log₁₀(R² / MSE)` for the data range R;
/// `f64::INFINITY` for identical images.
pub fn psnr(a: &Image<f32>, b: &Image<f32>, data_range: f64) -> Result<f64, SimilarityError> {
    check(a, b, data_range)?;
    let n = a.pixels().len().max(1) as f64;
    let mse = a
        .pixels()
        .iter()
        .zip(b.pixels())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / n;
    Ok(if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (data_range * data_range / mse).log10()
    })
}

/// Both images' pixels in f64 once `check` passes and each side is at least `need` px.
fn windowed_pair(
    a: &Image<f32>,
    b: &Image<f32>,
    data_range: f64,
    measure: &'static str,
    need: usize,
) -> Result<(Vec<f64>, Vec<f64>), SimilarityError> {
    check(a, b, data_range)?;
    if a.width() < need || a.height() < need {
        return Err(SimilarityError::TooSmall {
            measure,
            need,
            width: a.width(),
            height: a.height(),
        });
    }
    let to_f64 = |i: &Image<f32>| i.pixels().iter().map(|&v| f64::from(v)).collect();
    Ok((to_f64(a), to_f64(b)))
}

/// Mean SSIM of two images for the data range R (see the module docs for every convention).
pub fn ssim(a: &Image<f32>, b: &Image<f32>, data_range: f64) -> Result<f64, SimilarityError> {
    let (x, y) = windowed_pair(a, b, data_range, "SSIM", 2 * SSIM_RADIUS_PX + 1)?;
    Ok(ssim_terms(&x, &y, a.width(), a.height(), data_range).ssim)
}

/// MS-SSIM of two images for the data range R (five scales; see the module docs).
pub fn ms_ssim(a: &Image<f32>, b: &Image<f32>, data_range: f64) -> Result<f64, SimilarityError> {
    // The coarsest scale is 1/16 of the image and needs the 11-px window.
    let need = (2 * SSIM_RADIUS_PX + 1) << (MS_SSIM_WEIGHTS.len() - 1);
    let (mut x, mut y) = windowed_pair(a, b, data_range, "MS-SSIM", need)?;
    let (mut w, mut h) = (a.width(), a.height());
    let mut product = 1.0;
    for (scale, &weight) in MS_SSIM_WEIGHTS.iter().enumerate() {
        let terms = ssim_terms(&x, &y, w, h, data_range);
        let last = scale + 1 == MS_SSIM_WEIGHTS.len();
        let term = if last { terms.ssim } else { terms.cs };
        product *= term.max(0.0).powf(weight);
        if !last {
            (x, _, _) = halve(&x, w, h);
            (y, w, h) = halve(&y, w, h);
        }
    }
    Ok(product)
}

/// Mean SSIM and mean contrast–structure term over the cropped map.
struct SsimTerms {
    ssim: f64,
    cs: f64,
}

fn ssim_terms(x: &[f64], y: &[f64], w: usize, h: usize, data_range: f64) -> SsimTerms {
    let kernel = gaussian_kernel();
    let blur = |v: &[f64]| separable(v, w, h, &kernel);
    let xx: Vec<f64> = x.iter().map(|v| v * v).collect();
    let yy: Vec<f64> = y.iter().map(|v| v * v).collect();
    let xy: Vec<f64> = x.iter().zip(y).map(|(a, b)| a * b).collect();
    let (ux, uy) = (blur(x), blur(y));
    let (uxx, uyy, uxy) = (blur(&xx), blur(&yy), blur(&xy));
    let c1 = (SSIM_K1 * data_range).powi(2);
    let c2 = (SSIM_K2 * data_range).powi(2);
    let r = SSIM_RADIUS_PX;
    let (mut sum_s, mut sum_cs, mut n) = (0.0, 0.0, 0usize);
    for row in r..h - r {
        for col in r..w - r {
            let i = row * w + col;
            let vx = uxx[i] - ux[i] * ux[i];
            let vy = uyy[i] - uy[i] * uy[i];
            let vxy = uxy[i] - ux[i] * uy[i];
            let cs = (2.0 * vxy + c2) / (vx + vy + c2);
            let l = (2.0 * ux[i] * uy[i] + c1) / (ux[i] * ux[i] + uy[i] * uy[i] + c1);
            sum_s += l * cs;
            sum_cs += cs;
            n += 1;
        }
    }
    let n = n.max(1) as f64;
    SsimTerms {
        ssim: sum_s / n,
        cs: sum_cs / n,
    }
}

/// The normalised 11-tap Gaussian of σ = 1.5 (scipy's `_gaussian_kernel1d`).
fn gaussian_kernel() -> Vec<f64> {
    let r = SSIM_RADIUS_PX as f64;
    let k: Vec<f64> = (0..=2 * SSIM_RADIUS_PX)
        .map(|i| (-0.5 * ((i as f64 - r) / SSIM_SIGMA_PX).powi(2)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

/// Index `i` (any integer) of a line of `n` values extended by half-sample reflection.
fn reflect(i: isize, n: usize) -> usize {
    let period = 2 * n as isize;
    let m = i.rem_euclid(period);
    if m < n as isize {
        m as usize
    } else {
        (period - 1 - m) as usize
    }
}

/// Correlates the row-major `w × h` image with `kernel` along rows, then along columns.
fn separable(v: &[f64], w: usize, h: usize, kernel: &[f64]) -> Vec<f64> {
    let r = (kernel.len() / 2) as isize;
    let mut rows = vec![0.0; v.len()];
    for y in 0..h {
        let line = &v[y * w..(y + 1) * w];
        for x in 0..w {
            rows[y * w + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, &g)| g * line[reflect(x as isize + k as isize - r, w)])
                .sum();
        }
    }
    let mut out = vec![0.0; v.len()];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, &g)| g * rows[reflect(y as isize + k as isize - r, h) * w + x])
                .sum();
        }
    }
    out
}

/// 2 × 2 averages of a `w × h` image (an odd last row or column dropped) and the new size.
fn halve(v: &[f64], w: usize, h: usize) -> (Vec<f64>, usize, usize) {
    let (w2, h2) = (w / 2, h / 2);
    let mut out = Vec::with_capacity(w2 * h2);
    for y in 0..h2 {
        for x in 0..w2 {
            let at = |dy: usize, dx: usize| v[(2 * y + dy) * w + 2 * x + dx];
            out.push(0.25 * (at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)));
        }
    }
    (out, w2, h2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Image<f32> {
        let px = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y));
        Image::from_vec(w, h, px.collect()).expect("size")
    }

    #[test]
    fn identical_images_give_ssim_one_and_infinite_psnr() {
        let a = image(32, 20, |x, y| ((x * 7 + y * 13) % 17) as f32 / 17.0);
        assert_eq!(psnr(&a, &a, 1.0).expect("psnr"), f64::INFINITY);
        assert!((ssim(&a, &a, 1.0).expect("ssim") - 1.0).abs() < 1e-12);
        let big = image(200, 180, |x, y| ((x * 7 + y * 13) % 17) as f32 / 17.0);
        assert!((ms_ssim(&big, &big, 1.0).expect("ms-ssim") - 1.0).abs() < 1e-12);
    }

    #[test]
    fn psnr_of_a_known_error() {
        // Every pixel off by 0.1 with range 1: MSE 0.01, PSNR 20 dB exactly.
        let a = image(16, 16, |x, _| x as f32 / 16.0);
        let b = image(16, 16, |x, _| x as f32 / 16.0 + 0.1);
        assert!((psnr(&a, &b, 1.0).expect("psnr") - 20.0).abs() < 1e-4);
        // Range 255 and an error of 1: 20·log₁₀ 255 = 48.13 dB.
        let c = image(16, 16, |x, _| x as f32 + 1.0);
        let d = image(16, 16, |x, _| x as f32);
        assert!((psnr(&c, &d, 255.0).expect("psnr") - 48.1308).abs() < 1e-3);
    }

    #[test]
    fn a_constant_offset_lowers_only_the_luminance_term() {
        // Flat images a and a + δ: variances 0, so SSIM = (2μ(μ+δ) + C₁)/(μ² + (μ+δ)² + C₁).
        let (mu, delta) = (0.4f64, 0.2f64);
        let a = image(24, 24, |_, _| mu as f32);
        let b = image(24, 24, |_, _| (mu + delta) as f32);
        let c1 = (SSIM_K1 * 1.0f64).powi(2);
        let (m1, m2) = (f64::from(mu as f32), f64::from((mu + delta) as f32));
        let want = (2.0 * m1 * m2 + c1) / (m1 * m1 + m2 * m2 + c1);
        assert!((ssim(&a, &b, 1.0).expect("ssim") - want).abs() < 1e-9);
    }

    #[test]
    fn the_window_is_scipys_and_reflection_is_half_sample() {
        let k = gaussian_kernel();
        assert_eq!(k.len(), 11);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        // scipy.ndimage._gaussian_kernel1d(1.5, 0, 5)[5] = 0.26601172486179436.
        assert!((k[5] - 0.266_011_724_861_794_4).abs() < 1e-12, "{}", k[5]);
        let line: Vec<usize> = (-4..7).map(|i| reflect(i, 3)).collect();
        assert_eq!(line, vec![2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0]);
    }

    #[test]
    fn bad_inputs_are_refused_with_the_reason() {
        let a = image(16, 16, |_, _| 0.0);
        let b = image(16, 15, |_, _| 0.0);
        assert!(matches!(psnr(&a, &b, 1.0), Err(SimilarityError::Size(..))));
        assert!(matches!(ssim(&a, &a, 0.0), Err(SimilarityError::Range(_))));
        assert!(matches!(
            ssim(&a, &a, f64::NAN),
            Err(SimilarityError::Range(_))
        ));
        let small = image(10, 40, |_, _| 0.0);
        let err = ssim(&small, &small, 1.0).expect_err("small");
        assert!(err.to_string().contains("11×11"), "{err}");
        let err = ms_ssim(&a, &a, 1.0).expect_err("small");
        assert!(err.to_string().contains("176×176"), "{err}");
    }

    /// The arrays of `tools/similarity_reference.py` (formulas, rounded to f32 as there).
    fn reference_pair(w: usize, h: usize) -> (Image<f32>, Image<f32>) {
        let a = |x: f64, y: f64| {
            0.5 + 0.3 * (0.31 * x).sin() * (0.23 * y).cos()
                + 0.1 * ((x * 31.0 + y * 17.0) % 13.0) / 13.0
        };
        let b = |x: f64, y: f64| {
            a(x, y) + 0.08 * (0.9 * x + 0.4 * y).sin() + 0.05 * ((x * 7.0 + y * 11.0) % 5.0) / 5.0
                - 0.02
        };
        (
            image(w, h, |x, y| a(x as f64, y as f64) as f32),
            image(w, h, |x, y| b(x as f64, y as f64) as f32),
        )
    }

    #[test]
    fn ssim_and_psnr_match_scikit_image() {
        // python3 tools/similarity_reference.py (scikit-image 0.26.0, scipy 1.17.1).
        for (w, h, range, want_ssim, want_psnr) in [
            (48, 40, 1.0, 0.814_780_132_0, 24.682_815_752_2),
            (96, 64, 2.0, 0.840_826_947_7, 30.705_407_485_6),
            (13, 11, 1.0, 0.837_729_020_2, 24.626_845_749_6),
        ] {
            let (a, b) = reference_pair(w, h);
            let got = ssim(&a, &b, range).expect("ssim");
            assert!(
                (got - want_ssim).abs() < 1e-6,
                "{w}×{h}: SSIM {got} vs {want_ssim}"
            );
            let got = psnr(&a, &b, range).expect("psnr");
            assert!(
                (got - want_psnr).abs() < 1e-6,
                "{w}×{h}: PSNR {got} vs {want_psnr}"
            );
        }
    }

    #[test]
    fn ms_ssim_matches_an_independent_numpy_version() {
        // tools/similarity_reference.py: scipy's Gaussian filter, Wang's weights and scales.
        let (a, b) = reference_pair(200, 181);
        let got = ms_ssim(&a, &b, 1.0).expect("ms-ssim");
        assert!((got - 0.963_277_362_4).abs() < 1e-6, "MS-SSIM {got}");
        let got = ssim(&a, &b, 1.0).expect("ssim");
        assert!((got - 0.810_776_323_0).abs() < 1e-6, "SSIM {got}");
    }

    #[test]
    fn ms_ssim_combines_the_scales_with_wangs_weights() {
        // On images whose every scale is identical up to a constant offset the contrast–structure
        // terms are ~1, so MS-SSIM is the last scale's luminance term to the weight 0.1333.
        let (w, h) = (192, 176);
        let a = image(w, h, |x, y| 0.3 + 0.2 * (((x / 16 + y / 16) % 2) as f32));
        let b = image(w, h, |x, y| 0.35 + 0.2 * (((x / 16 + y / 16) % 2) as f32));
        let got = ms_ssim(&a, &b, 1.0).expect("ms-ssim");
        let single = ssim(&a, &b, 1.0).expect("ssim");
        assert!(
            got > single,
            "MS-SSIM {got} must forgive an offset more than SSIM {single}"
        );
        assert!(got < 1.0 && got > 0.9, "{got}");
        // A distorted copy scores lower than the offset one.
        let c = image(w, h, |x, y| {
            0.3 + 0.2 * (((x / 16 + y / 16) % 2) as f32)
                + 0.1 * (((x * 7 + y * 3) % 5) as f32) / 5.0
        });
        assert!(ms_ssim(&a, &c, 1.0).expect("ms-ssim") < got);
    }
}
