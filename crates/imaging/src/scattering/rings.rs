//! Ring statistics around the beam centre, the second half of the coefficient view.
//!
//! The Fourier–Bessel features describe a disc of half the grid in 40 radial orders, about three
//! grid pixels per order: too coarse to tell a BCC ring sequence (q/q₁ = 1, √2, √3, …) from an
//! FCC one (1, √4/√3, √8/√3, …) when q₁ is a few tens of pixels, and blind beyond the disc. Two
//! orientation-free statistics fill that gap:
//!
//! - the radial profile: the mean log intensity in 1-px-wide rings out to [`PROFILE_BINS`] grid
//!   pixels; its contrast (the profile minus its mean over ±[`CONTRAST_HALF_WIDTH`] bins,
//!   amplified), where rings and lattice peaks stand out from the fall-off; and the fraction of
//!   each ring's circumference on valid pixels (which says where the detector edges, gaps and
//!   beamstop are);
//! - the angular modulation: in [`BANDS`] log-spaced radial bands, the amplitudes of the first
//!   [`HARMONICS`] angular Fourier harmonics of I(χ) (n-fold symmetry, arcs, beamstop arms).
//!
//! Both are unchanged when the pattern is turned about the beam or mirrored, so the dihedral
//! augmentation of training leaves them alone. On the engine's held-out images a perceptron on
//! these alone reached a macro AP of 0.73 (0.61 without the contrast), above the Fourier–Bessel
//! network's 0.53.

/// Radial profile bins, 1 grid pixel wide, from the beam centre outwards.
pub const PROFILE_BINS: usize = 160;
/// Log-spaced radial bands for the angular harmonics, from [`BAND_INNER_PX`] to
/// [`PROFILE_BINS`] grid pixels.
pub const BANDS: usize = 8;
/// Inner radius of the first band (grid pixels): inside it a ring has too few pixels.
pub const BAND_INNER_PX: f64 = 4.0;
/// Azimuthal bins of I(χ) in each band.
pub const CHI_BINS: usize = 64;
/// Angular harmonics 1…HARMONICS kept per band.
pub const HARMONICS: usize = 12;
/// Half-width (bins) of the running mean the contrast is taken against: wider than a ring,
/// narrower than the fall-off.
pub const CONTRAST_HALF_WIDTH: usize = 4;
/// Length of [`ring_features`]: profile, contrast, coverage, harmonics.
pub const RING_FEATURES: usize = 3 * PROFILE_BINS + BANDS * HARMONICS;

/// The contrast (a difference of log intensities of a few hundredths for a visible ring) is
/// multiplied by this to be of order one.
const CONTRAST_GAIN: f32 = 10.0;
/// Harmonic amplitudes (of log intensities in [0, 1]) are multiplied by this to be of order one.
const HARMONIC_GAIN: f32 = 10.0;

/// Ring statistics of a `side × side` log-scaled grid (`image`, with `masked` pixels left out)
/// around `beam_px` (grid pixels): [`PROFILE_BINS`] mean values, [`PROFILE_BINS`] contrasts,
/// [`PROFILE_BINS`] coverages in [0, 1] (empty rings: 0 for all three), then for each band its [`HARMONICS`] amplitudes (zeros where fewer than half of the
/// band's azimuthal bins have valid pixels). Length [`RING_FEATURES`].
///
/// # Panics
/// If `image` or `masked` is not `side × side` (a bug in the caller).
pub fn ring_features(image: &[f32], masked: &[bool], side: usize, beam_px: (f64, f64)) -> Vec<f32> {
    ring_features_binned(image, masked, side, beam_px, 1.0)
}

/// [`ring_features`] with radial bins `px_per_bin` grid pixels wide (≥ 1): the profile and the
/// bands then reach `PROFILE_BINS × px_per_bin` pixels (the taggers' outer view), and each
/// bin's coverage is counted against its wider annulus.
///
/// # Panics
/// If `image` or `masked` is not `side × side` (a bug in the caller).
pub fn ring_features_binned(
    image: &[f32],
    masked: &[bool],
    side: usize,
    beam_px: (f64, f64),
    px_per_bin: f64,
) -> Vec<f32> {
    assert!(
        image.len() == side * side && masked.len() == side * side,
        "grid is not {side} × {side}"
    );
    let mut ring_sum = [0.0f64; PROFILE_BINS];
    let mut ring_n = [0u32; PROFILE_BINS];
    let mut chi_sum = vec![0.0f64; BANDS * CHI_BINS];
    let mut chi_n = vec![0u32; BANDS * CHI_BINS];
    let bands_per_ln = BANDS as f64 / (PROFILE_BINS as f64 / BAND_INNER_PX).ln();
    let chi_per_rad = CHI_BINS as f64 / std::f64::consts::TAU;
    for y in 0..side {
        let dy = y as f64 + 0.5 - beam_px.1;
        for x in 0..side {
            let i = y * side + x;
            if masked[i] {
                continue;
            }
            let dx = x as f64 + 0.5 - beam_px.0;
            let r = dx.hypot(dy) / px_per_bin;
            if r >= PROFILE_BINS as f64 {
                continue;
            }
            let v = f64::from(image[i]);
            let k = r as usize;
            ring_sum[k] += v;
            ring_n[k] += 1;
            if r >= BAND_INNER_PX {
                let band = (((r / BAND_INNER_PX).ln() * bands_per_ln) as usize).min(BANDS - 1);
                let chi = dy.atan2(dx) + std::f64::consts::PI;
                let c = ((chi * chi_per_rad) as usize) % CHI_BINS;
                chi_sum[band * CHI_BINS + c] += v;
                chi_n[band * CHI_BINS + c] += 1;
            }
        }
    }
    let profile: Vec<Option<f64>> = (0..PROFILE_BINS)
        .map(|k| (ring_n[k] > 0).then(|| ring_sum[k] / f64::from(ring_n[k])))
        .collect();
    let mut out = Vec::with_capacity(RING_FEATURES);
    out.extend(profile.iter().map(|p| p.unwrap_or(0.0) as f32));
    out.extend((0..PROFILE_BINS).map(|k| {
        let Some(p) = profile[k] else { return 0.0 };
        let near = &profile[k.saturating_sub(CONTRAST_HALF_WIDTH)
            ..(k + CONTRAST_HALF_WIDTH + 1).min(PROFILE_BINS)];
        let filled = near.iter().flatten().count();
        let mean = near.iter().flatten().sum::<f64>() / filled as f64;
        (p - mean) as f32 * CONTRAST_GAIN
    }));
    out.extend((0..PROFILE_BINS).map(|k| {
        // Pixels in the annulus of bin k: its circumference times its width.
        let annulus_px = std::f64::consts::TAU * (k as f64 + 0.5) * px_per_bin * px_per_bin;
        (f64::from(ring_n[k]) / annulus_px).min(1.0) as f32
    }));
    for band in 0..BANDS {
        let sums = &chi_sum[band * CHI_BINS..(band + 1) * CHI_BINS];
        let counts = &chi_n[band * CHI_BINS..(band + 1) * CHI_BINS];
        out.extend(angular_harmonics(sums, counts));
    }
    out
}

/// Amplitudes |Fₕ| / CHI_BINS · gain, h = 1…HARMONICS, of the mean-free I(χ) of one band (empty
/// azimuthal bins count as the mean); all zero when fewer than half the bins have pixels.
fn angular_harmonics(sums: &[f64], counts: &[u32]) -> [f32; HARMONICS] {
    let filled = counts.iter().filter(|&&n| n > 0).count();
    if filled * 2 < CHI_BINS {
        return [0.0; HARMONICS];
    }
    let means: Vec<Option<f64>> = sums
        .iter()
        .zip(counts)
        .map(|(&s, &n)| (n > 0).then(|| s / f64::from(n)))
        .collect();
    let mean = means.iter().flatten().sum::<f64>() / filled as f64;
    let centred: Vec<f64> = means.iter().map(|m| m.map_or(0.0, |m| m - mean)).collect();
    let mut out = [0.0f32; HARMONICS];
    for (h, amplitude) in out.iter_mut().enumerate() {
        let w = std::f64::consts::TAU * (h + 1) as f64 / CHI_BINS as f64;
        let (re, im) = centred
            .iter()
            .enumerate()
            .fold((0.0, 0.0), |(re, im), (c, &v)| {
                (re + v * (w * c as f64).cos(), im - v * (w * c as f64).sin())
            });
        *amplitude = (re.hypot(im) / CHI_BINS as f64) as f32 * HARMONIC_GAIN;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `side²` grid of `f(dx, dy)` around (cx, cy), nothing masked.
    fn grid(side: usize, cx: f64, cy: f64, f: impl Fn(f64, f64) -> f32) -> Vec<f32> {
        (0..side * side)
            .map(|i| f((i % side) as f64 + 0.5 - cx, (i / side) as f64 + 0.5 - cy))
            .collect()
    }

    #[test]
    fn a_ring_shows_in_the_profile_at_its_radius() {
        let side = 256;
        let img = grid(side, 128.0, 128.0, |dx, dy| {
            let r = dx.hypot(dy);
            if (40.0..41.0).contains(&r) { 0.8 } else { 0.2 }
        });
        let f = ring_features(&img, &vec![false; side * side], side, (128.0, 128.0));
        assert_eq!(f.len(), RING_FEATURES);
        assert!(
            (f[40] - 0.8).abs() < 1e-6 && (f[39] - 0.2).abs() < 1e-6,
            "{:?}",
            &f[38..43]
        );
        // Contrast: the ring stands 0.6 − 0.6/9 above its 9-bin mean (× 10); its neighbours dip
        // by 0.6/9 (× 10); far from it, nothing.
        let contrast = &f[PROFILE_BINS..2 * PROFILE_BINS];
        assert!(
            (contrast[40] - 10.0 * (0.6 - 0.6 / 9.0)).abs() < 1e-4,
            "{}",
            contrast[40]
        );
        assert!((contrast[38] + 10.0 * 0.6 / 9.0).abs() < 1e-4 && contrast[20].abs() < 1e-5);
        // Whole rings inside the grid are fully covered; beyond 128 px only the corners remain.
        let coverage = &f[2 * PROFILE_BINS..3 * PROFILE_BINS];
        assert!((coverage[60] - 1.0).abs() < 0.05, "{}", coverage[60]);
        assert!(coverage[150] < 0.6, "{}", coverage[150]);
        // Isotropic, up to the square grid's own four-fold sampling of a 1-px ring.
        let largest = f[3 * PROFILE_BINS..]
            .iter()
            .fold(0.0f32, |m, &a| m.max(a.abs()));
        assert!(largest < 0.05, "{largest}");
    }

    #[test]
    fn a_sixfold_pattern_has_its_sixth_harmonic_whatever_its_orientation() {
        let side = 256;
        let amplitudes = |turn_rad: f64| {
            let img = grid(side, 120.3, 131.7, |dx, dy| {
                0.5 + 0.1 * (6.0 * (dy.atan2(dx) + turn_rad)).cos() as f32
            });
            ring_features(&img, &vec![false; side * side], side, (120.3, 131.7))
        };
        let (a, b) = (amplitudes(0.0), amplitudes(0.37));
        // Band 5 (about 40–60 px): the 6th harmonic of 0.1·cos is 0.05 (× gain 10), the rest ~0.
        let band = 3 * PROFILE_BINS + 5 * HARMONICS;
        for f in [&a, &b] {
            assert!(
                (f[band + 5] - 0.5).abs() < 0.02,
                "{:?}",
                &f[band..band + HARMONICS]
            );
            assert!(f[band + 2].abs() < 0.02 && f[band + 11].abs() < 0.05);
        }
        assert!((a[band + 5] - b[band + 5]).abs() < 0.01);
    }

    #[test]
    fn masked_pixels_and_half_empty_bands_are_left_out() {
        let side = 64;
        let img = vec![0.5f32; side * side];
        // The beam in a corner: every band has less than half of its azimuths on the grid.
        let f = ring_features(&img, &vec![false; side * side], side, (0.0, 0.0));
        assert!(f[3 * PROFILE_BINS..].iter().all(|&a| a == 0.0));
        assert!((f[10] - 0.5).abs() < 1e-6);
        let all_masked = ring_features(&img, &vec![true; side * side], side, (32.0, 32.0));
        assert!(all_masked.iter().all(|&v| v == 0.0));
    }
}
