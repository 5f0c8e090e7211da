//! Features of the rings themselves, the third part of the coefficient view.
//!
//! The ring statistics ([`super::rings`]) describe the radial profile bin by bin and the angular
//! modulation of wide bands. Two things a scientist reads off a pattern are hard to get from
//! them for a small perceptron:
//!
//! - **which lattice** a peak series is: that is in the *ratios* of the peak positions
//!   (q/q₁ = √2 for BCC's second peak, 2/√3 for FCC's, √3 for hexagonal, 2 for lamellar), not in
//!   where the peaks sit;
//! - **the symmetry of one ring**: a band's I(χ) mixes the ring with the beamstop's arm, an
//!   anisotropic fall-off and other rings, so a 4-fold ring and a 2-fold fall-off look alike.
//!
//! So the rings are found (the strongest local maxima of the radial contrast) and described one
//! by one:
//! - for the [`DESCRIBED_PEAKS`] strongest: radius, contrast, the fraction of its circumference
//!   on the grid, and the angular harmonics of the ring's *own* contrast, I(χ) on the ring minus
//!   I(χ) just inside and outside it, relative to its mean. Subtracting the neighbours cancels
//!   what is smooth in radius (a beamstop arm, a wedge's shadow, an anisotropic fall-off), which
//!   leaves the ring's n-fold arcs;
//! - for the [`RATIO_PEAKS`] strongest: soft histograms of ln(rⱼ/rᵢ) over the pairs, once against
//!   the innermost peak (the first order of a lattice) and once over all pairs, weighted by the
//!   weaker contrast of the two;
//! - and the radial profile beyond the ring statistics' 160 px, in coarse bins, out to the grid's
//!   far corner (high-q scattering of off-centre beams).
//!
//! Like the ring statistics, all of this is unchanged when the pattern turns about the beam or is
//! mirrored.

use super::rings::{CONTRAST_HALF_WIDTH, PROFILE_BINS};

/// Rings described one by one, strongest first.
pub const DESCRIBED_PEAKS: usize = 4;
/// Azimuthal bins of a ring's own I(χ): 32 keeps about one grid pixel per bin down to a 5 px
/// radius, and resolves up to 16-fold patterns.
pub const RING_CHI_BINS: usize = 32;
/// Angular harmonics 1…RING_HARMONICS per described ring.
pub const RING_HARMONICS: usize = 12;
/// Values per described ring: radius, contrast, coverage, angular coverage, harmonics.
pub const PER_PEAK: usize = 4 + RING_HARMONICS;
/// Rings whose position ratios are histogrammed.
pub const RATIO_PEAKS: usize = 6;
/// Bins of each ratio histogram, log-spaced over [`RATIO_MIN`, `RATIO_MAX`].
pub const RATIO_BINS: usize = 32;
/// Smallest ratio histogrammed: closer peaks are one ring at this resolution.
pub const RATIO_MIN: f64 = 1.08;
/// Largest ratio histogrammed (the fourth order of a lamellar series is 4).
pub const RATIO_MAX: f64 = 4.2;
/// Width of the far-profile bins in grid pixels.
pub const FAR_BIN_PX: usize = 4;
/// Far-profile bins from [`PROFILE_BINS`] to the corner of a 256 px grid (362 px).
pub const FAR_BINS: usize = 51;
/// Bins of the broad contrast, [`BROAD_BIN_PX`] wide, out to [`PROFILE_BINS`].
pub const BROAD_BINS: usize = PROFILE_BINS / BROAD_BIN_PX;
/// Width of a broad-contrast bin in grid pixels: a halo is tens of pixels wide, and the ring
/// statistics' contrast (±4 px) sees only its edges.
pub const BROAD_BIN_PX: usize = 4;
/// Log-spaced radial bands of the shadow profile, from [`INNER_PX`] to [`PROFILE_BINS`].
pub const SHADOW_BANDS: usize = 16;
/// Where the far profile starts in [`peak_features`].
pub const FAR_START: usize = DESCRIBED_PEAKS * PER_PEAK + 2 * RATIO_BINS;
/// Length of [`peak_features`].
pub const PEAK_FEATURES: usize = FAR_START + 2 * FAR_BINS + BROAD_BINS + 2 * SHADOW_BANDS;

/// Symmetry orders scored per described ring ([`ring_features_and_folds`]): the generator's
/// n-fold rings are even-fold, and 32 azimuthal bins resolve up to about 12.
pub const FOLDS: [usize; 6] = [2, 4, 6, 8, 10, 12];
/// Fold values per described ring: modulation depth, then one score per order of [`FOLDS`].
pub const PER_PEAK_FOLDS: usize = 1 + FOLDS.len();
/// Length of the fold block.
pub const FOLD_FEATURES: usize = DESCRIBED_PEAKS * PER_PEAK_FOLDS;
/// Modulation depth at which fold scores count half.
const FOLD_DEPTH_HALF: f64 = 0.1;

/// Contrast values are multiplied by this, as in the ring statistics.
const CONTRAST_GAIN: f64 = 10.0;
/// Relative harmonic amplitudes are capped here: a ring barely above its neighbours has a
/// meaningless, huge ratio.
const RELATIVE_CAP: f64 = 3.0;
/// A ring's mean contrast (log units) below this is treated as this when dividing.
const CONTRAST_FLOOR: f64 = 0.01;
/// A maximum counts as a ring when its contrast is at least this (log units, before the gain)…
const PEAK_CONTRAST_MIN: f64 = 0.002;
/// …and this fraction of the strongest ring's: the rest is noise beside a bright pattern.
const PEAK_RELATIVE_MIN: f64 = 0.2;
/// Rings closer to the beam than this (grid px) are not described: too few pixels.
const INNER_PX: usize = 3;
/// Profile values (ln(1 + I) / ln 65 536, clamped to 1) at or above this, from the beam
/// outwards, are the saturated core of a direct beam that meets no beamstop.
const SATURATED: f64 = 0.95;
/// Half-width (bins) of a ring, at most: wider rings are described over this.
const MAX_HALF_WIDTH: usize = 8;
/// An azimuth whose neighbouring rings lie this far (log units, ≈ a factor 1.7 in counts) below
/// their median over χ is in a shadow (a beamstop's arm or wedge) and is left out of the ring's
/// own I(χ): what is left there is noise.
const SHADOW_DROP: f64 = 0.05;

/// One ring found in the radial contrast.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Peak {
    /// Profile bin of the maximum.
    bin: usize,
    /// Radius in grid pixels, refined between bins.
    radius_px: f64,
    /// Contrast (log units, before the gain).
    contrast: f64,
}

/// Ring features of a `side × side` log-scaled grid (`image`, `masked` pixels left out) around
/// `beam_px` (grid pixels): [`DESCRIBED_PEAKS`] × [`PER_PEAK`] ring descriptions (zeros where
/// fewer rings were found), the two [`RATIO_BINS`]-bin ratio histograms, [`FAR_BINS`] far
/// profile means and [`FAR_BINS`] coverages (from [`FAR_START`]), the [`BROAD_BINS`] broad
/// contrasts, then per shadow band the fraction of azimuths in shadow and the shadow's depth.
/// Length [`PEAK_FEATURES`].
///
/// # Panics
/// If `image` or `masked` is not `side × side` (a bug in the caller).
pub fn peak_features(image: &[f32], masked: &[bool], side: usize, beam_px: (f64, f64)) -> Vec<f32> {
    ring_features_and_folds(image, masked, side, beam_px).0
}

/// [`peak_features`] and, from the same pass over the grid, the fold scores of the
/// [`DESCRIBED_PEAKS`] strongest rings ([`FOLD_FEATURES`] values: per ring its modulation depth
/// and one score per order of [`FOLDS`]; zeros where fewer rings were found).
///
/// # Panics
/// If `image` or `masked` is not `side × side` (a bug in the caller).
pub fn ring_features_and_folds(
    image: &[f32],
    masked: &[bool],
    side: usize,
    beam_px: (f64, f64),
) -> (Vec<f32>, Vec<f32>) {
    ring_features_and_folds_binned(image, masked, side, beam_px, 1.0)
}

/// [`ring_features_and_folds`] with radial bins `px_per_bin` grid pixels wide (≥ 1), as
/// [`super::rings::ring_features_binned`]: radii, widths and coverages are in bins.
///
/// # Panics
/// If `image` or `masked` is not `side × side` (a bug in the caller).
pub fn ring_features_and_folds_binned(
    image: &[f32],
    masked: &[bool],
    side: usize,
    beam_px: (f64, f64),
    px_per_bin: f64,
) -> (Vec<f32>, Vec<f32>) {
    assert!(
        image.len() == side * side && masked.len() == side * side,
        "grid is not {side} × {side}"
    );
    let far_end = PROFILE_BINS + FAR_BINS * FAR_BIN_PX;
    // Polar sums: [PROFILE_BINS][RING_CHI_BINS], and the far profile.
    let mut polar_sum = vec![0.0f64; PROFILE_BINS * RING_CHI_BINS];
    let mut polar_n = vec![0u32; PROFILE_BINS * RING_CHI_BINS];
    let mut far_sum = [0.0f64; FAR_BINS];
    let mut far_n = [0u32; FAR_BINS];
    let chi_per_rad = RING_CHI_BINS as f64 / std::f64::consts::TAU;
    for y in 0..side {
        let dy = y as f64 + 0.5 - beam_px.1;
        for x in 0..side {
            let i = y * side + x;
            if masked[i] {
                continue;
            }
            let dx = x as f64 + 0.5 - beam_px.0;
            let r = dx.hypot(dy) / px_per_bin;
            let v = f64::from(image[i]);
            if r < PROFILE_BINS as f64 {
                let chi = dy.atan2(dx) + std::f64::consts::PI;
                let c = ((chi * chi_per_rad) as usize) % RING_CHI_BINS;
                let cell = r as usize * RING_CHI_BINS + c;
                polar_sum[cell] += v;
                polar_n[cell] += 1;
            } else if r < far_end as f64 {
                let k = (r as usize - PROFILE_BINS) / FAR_BIN_PX;
                far_sum[k] += v;
                far_n[k] += 1;
            }
        }
    }
    let profile: Vec<Option<f64>> = (0..PROFILE_BINS)
        .map(|k| {
            let row = k * RING_CHI_BINS..(k + 1) * RING_CHI_BINS;
            let n: u32 = polar_n[row.clone()].iter().sum();
            (n > 0).then(|| polar_sum[row].iter().sum::<f64>() / f64::from(n))
        })
        .collect();
    let coverage: Vec<f64> = (0..PROFILE_BINS)
        .map(|k| {
            let n: u32 = polar_n[k * RING_CHI_BINS..(k + 1) * RING_CHI_BINS]
                .iter()
                .sum();
            let annulus_px = std::f64::consts::TAU * (k as f64 + 0.5) * px_per_bin * px_per_bin;
            (f64::from(n) / annulus_px).min(1.0)
        })
        .collect();
    let contrast = radial_contrast(&profile);
    let peaks = find_peaks(&contrast, &coverage, first_ring_bin(&profile));

    let mut out = Vec::with_capacity(PEAK_FEATURES);
    let mut folds = Vec::with_capacity(FOLD_FEATURES);
    for p in peaks.iter().take(DESCRIBED_PEAKS) {
        out.push((p.radius_px / PROFILE_BINS as f64) as f32);
        out.push((p.contrast * CONTRAST_GAIN) as f32);
        out.push(coverage[p.bin] as f32);
        let half_width = half_width(&contrast, p.bin);
        let own = own_chi(&polar_sum, &polar_n, p.bin, half_width);
        let (filled, harmonics) = ring_harmonics(&own);
        out.push(filled as f32);
        out.extend(harmonics);
        folds.extend(fold_scores(&own));
    }
    out.resize(DESCRIBED_PEAKS * PER_PEAK, 0.0);
    folds.resize(FOLD_FEATURES, 0.0);

    let strongest = &peaks[..peaks.len().min(RATIO_PEAKS)];
    out.extend(ratio_histograms(strongest));

    out.extend(far_sum.iter().zip(&far_n).map(|(&s, &n)| {
        if n > 0 {
            (s / f64::from(n)) as f32
        } else {
            0.0
        }
    }));
    out.extend((0..FAR_BINS).map(|k| {
        // Area of the annulus [r0, r0 + FAR_BIN_PX).
        let r0 = (PROFILE_BINS + k * FAR_BIN_PX) as f64;
        let area = std::f64::consts::PI
            * ((r0 + FAR_BIN_PX as f64).powi(2) - r0 * r0)
            * px_per_bin
            * px_per_bin;
        (f64::from(far_n[k]) / area).min(1.0) as f32
    }));
    out.extend(broad_contrast(&profile));
    out.extend(shadow_profile(&polar_sum, &polar_n));
    debug_assert_eq!(out.len(), PEAK_FEATURES);
    (out, folds)
}

/// The profile averaged over [`BROAD_BIN_PX`]-px bins, minus its running mean over ±4 of them
/// (× gain; 0 where empty): halos and other broad bumps.
fn broad_contrast(profile: &[Option<f64>]) -> Vec<f32> {
    let broad: Vec<Option<f64>> = profile
        .chunks(BROAD_BIN_PX)
        .map(|bins| {
            let filled = bins.iter().flatten().count();
            (filled > 0).then(|| bins.iter().flatten().sum::<f64>() / filled as f64)
        })
        .collect();
    radial_contrast(&broad)
        .into_iter()
        .map(|c| (c * CONTRAST_GAIN) as f32)
        .collect()
}

/// Per log-spaced band: the fraction of its azimuths whose mean lies [`SHADOW_DROP`] below the
/// band's median over χ, and the depth of the darkest one below the median (× gain). A
/// beamstop's arm darkens a share of the azimuths that falls as 1/r, a wedge a constant share;
/// zeros where fewer than half the azimuths have pixels.
fn shadow_profile(sum: &[f64], count: &[u32]) -> Vec<f32> {
    let per_ln = SHADOW_BANDS as f64 / (PROFILE_BINS as f64 / INNER_PX as f64).ln();
    let mut band_sum = vec![0.0f64; SHADOW_BANDS * RING_CHI_BINS];
    let mut band_n = vec![0u32; SHADOW_BANDS * RING_CHI_BINS];
    for k in INNER_PX..PROFILE_BINS {
        let band = (((k as f64 + 0.5) / INNER_PX as f64).ln() * per_ln) as usize;
        let band = band.min(SHADOW_BANDS - 1);
        for c in 0..RING_CHI_BINS {
            band_sum[band * RING_CHI_BINS + c] += sum[k * RING_CHI_BINS + c];
            band_n[band * RING_CHI_BINS + c] += count[k * RING_CHI_BINS + c];
        }
    }
    let mut fractions = Vec::with_capacity(SHADOW_BANDS);
    let mut depths = Vec::with_capacity(SHADOW_BANDS);
    for band in 0..SHADOW_BANDS {
        let cells = band * RING_CHI_BINS..(band + 1) * RING_CHI_BINS;
        let mut levels: Vec<f64> = band_sum[cells.clone()]
            .iter()
            .zip(&band_n[cells])
            .filter(|&(_, &n)| n > 0)
            .map(|(&s, &n)| s / f64::from(n))
            .collect();
        if levels.len() * 2 < RING_CHI_BINS {
            fractions.push(0.0);
            depths.push(0.0);
            continue;
        }
        levels.sort_by(f64::total_cmp);
        let median = levels[levels.len() / 2];
        let dark = levels.iter().filter(|&&l| l < median - SHADOW_DROP).count();
        fractions.push(dark as f32 / levels.len() as f32);
        depths.push(((median - levels[0]) * CONTRAST_GAIN) as f32);
    }
    fractions.extend(depths);
    fractions
}

/// The profile minus its running mean over ±[`CONTRAST_HALF_WIDTH`] bins (0 where empty), as in
/// the ring statistics but without the gain.
fn radial_contrast(profile: &[Option<f64>]) -> Vec<f64> {
    (0..profile.len())
        .map(|k| {
            let Some(p) = profile[k] else { return 0.0 };
            let near = &profile[k.saturating_sub(CONTRAST_HALF_WIDTH)
                ..(k + CONTRAST_HALF_WIDTH + 1).min(profile.len())];
            let filled = near.iter().flatten().count();
            p - near.iter().flatten().sum::<f64>() / filled as f64
        })
        .collect()
}

/// The first profile bin a ring may be found in: [`INNER_PX`], or past a direct beam that meets
/// the detector unstopped. Such a beam's saturated core (the bins at full scale from the beam
/// outwards) falls off over about its own radius again, and that edge has a contrast ten times
/// a ring's: taken for the strongest ring, it hid the real ones (which must reach
/// [`PEAK_RELATIVE_MIN`] of it). On the independent check set this cost `ring` on most images
/// without a beamstop. The edge is skipped out to twice the core plus the contrast's reach.
fn first_ring_bin(profile: &[Option<f64>]) -> usize {
    // The core starts at the beam itself: a bright ring outside a beamstop is no direct beam.
    let starts_at_beam = profile.iter().take(2).any(Option::is_some);
    let core_end = profile
        .iter()
        .enumerate()
        .skip_while(|(_, p)| p.is_none())
        .take_while(|(_, p)| p.is_some_and(|v| v >= SATURATED))
        .last()
        .map(|(k, _)| k);
    match core_end {
        Some(k) if starts_at_beam => (2 * k + 2 + CONTRAST_HALF_WIDTH).max(INNER_PX),
        _ => INNER_PX,
    }
}

/// Local maxima of the contrast (above both neighbours, not below the next ones), at least
/// [`PEAK_CONTRAST_MIN`] and [`PEAK_RELATIVE_MIN`] of the strongest, from bin `first` out
/// (at least 2) and with a quarter of the ring on the grid: strongest first.
fn find_peaks(contrast: &[f64], coverage: &[f64], first: usize) -> Vec<Peak> {
    let n = contrast.len();
    let mut peaks: Vec<Peak> = (first.max(2)..n - 2)
        .filter(|&k| {
            let c = contrast[k];
            c >= PEAK_CONTRAST_MIN
                && coverage[k] >= 0.25
                && c > contrast[k - 1]
                && c > contrast[k + 1]
                && c >= contrast[k - 2]
                && c >= contrast[k + 2]
        })
        .map(|k| {
            // Vertex of the parabola through the three bins around the maximum.
            let (a, b, c) = (contrast[k - 1], contrast[k], contrast[k + 1]);
            let curvature = a - 2.0 * b + c;
            let shift = if curvature < 0.0 {
                (0.5 * (a - c) / curvature).clamp(-0.5, 0.5)
            } else {
                0.0
            };
            Peak {
                bin: k,
                radius_px: k as f64 + 0.5 + shift,
                contrast: b,
            }
        })
        .collect();
    peaks.sort_by(|a, b| b.contrast.total_cmp(&a.contrast));
    let strongest = peaks.first().map_or(0.0, |p| p.contrast);
    peaks.retain(|p| p.contrast >= PEAK_RELATIVE_MIN * strongest);
    peaks
}

/// Bins from the maximum at `k` to where the contrast falls below half of it (the nearer side),
/// between 1 and [`MAX_HALF_WIDTH`].
fn half_width(contrast: &[f64], k: usize) -> usize {
    let half = contrast[k] / 2.0;
    let reach = |step: &dyn Fn(usize) -> Option<usize>| {
        (1..=MAX_HALF_WIDTH)
            .find(|&j| step(j).is_none_or(|i| contrast[i] < half))
            .unwrap_or(MAX_HALF_WIDTH)
    };
    let inward = reach(&|j| k.checked_sub(j));
    let outward = reach(&|j| (k + j < contrast.len()).then_some(k + j));
    inward.min(outward).max(1)
}

/// The ring's own I(χ) at profile bin `k` of half-width `hw` bins: the mean of bins k−hw…k+hw
/// minus the mean of the two bins beyond each side, per azimuthal bin with pixels in both and
/// not in a shadow ([`SHADOW_DROP`]); `None` where an azimuth is not used.
fn own_chi(sum: &[f64], count: &[u32], k: usize, hw: usize) -> Vec<Option<f64>> {
    let mean_over = |bins: &[usize], c: usize| {
        let (mut s, mut n) = (0.0, 0u32);
        for &b in bins {
            if b < PROFILE_BINS {
                s += sum[b * RING_CHI_BINS + c];
                n += count[b * RING_CHI_BINS + c];
            }
        }
        (n > 0).then(|| s / f64::from(n))
    };
    let on: Vec<usize> = (k.saturating_sub(hw)..=k + hw).collect();
    let off: Vec<usize> = [
        k.checked_sub(hw + 2),
        k.checked_sub(hw + 1),
        Some(k + hw + 1),
        Some(k + hw + 2),
    ]
    .into_iter()
    .flatten()
    .collect();
    let around: Vec<Option<f64>> = (0..RING_CHI_BINS).map(|c| mean_over(&off, c)).collect();
    let mut levels: Vec<f64> = around.iter().flatten().copied().collect();
    levels.sort_by(f64::total_cmp);
    let median = levels.get(levels.len() / 2).copied().unwrap_or(0.0);
    (0..RING_CHI_BINS)
        .map(|c| {
            let a = around[c].filter(|&a| a >= median - SHADOW_DROP)?;
            Some(mean_over(&on, c)? - a)
        })
        .collect()
}

/// The fraction of azimuthal bins `own` uses, and harmonics 1…[`RING_HARMONICS`] of it relative
/// to its mean (capped; all zero when fewer than half the azimuths are used).
fn ring_harmonics(own: &[Option<f64>]) -> (f64, [f32; RING_HARMONICS]) {
    let filled = own.iter().flatten().count();
    let mut out = [0.0f32; RING_HARMONICS];
    if filled * 2 < RING_CHI_BINS {
        return (filled as f64 / RING_CHI_BINS as f64, out);
    }
    let mean = own.iter().flatten().sum::<f64>() / filled as f64;
    let centred: Vec<f64> = own.iter().map(|v| v.map_or(0.0, |v| v - mean)).collect();
    for (h, amplitude) in out.iter_mut().enumerate() {
        let w = std::f64::consts::TAU * (h + 1) as f64 / RING_CHI_BINS as f64;
        let (re, im) = centred
            .iter()
            .enumerate()
            .fold((0.0, 0.0), |(re, im), (c, &v)| {
                (re + v * (w * c as f64).cos(), im - v * (w * c as f64).sin())
            });
        // Amplitude of the cosine of that order, relative to the ring's mean contrast.
        let a = 2.0 * re.hypot(im) / filled as f64;
        *amplitude = (a / mean.max(CONTRAST_FLOOR)).min(RELATIVE_CAP) as f32;
    }
    (filled as f64 / RING_CHI_BINS as f64, out)
}

/// Fold scores of a ring's own I(χ): its modulation depth d (standard deviation over mean,
/// capped), then for each order n of [`FOLDS`] the correlation of I(χ) with I(χ ± 360°/n)
/// (linearly interpolated between azimuthal bins) over the pairs of used azimuths, times
/// d / (d + [`FOLD_DEPTH_HALF`]).
///
/// An n-fold ring scores 1 at n and at its divisors, and −1 or so at 2n: a 2-fold ring scores
/// 1 at 2 but about −1 at 4, which its harmonics 2, 4, 6… alone do not say plainly; grainy
/// (speckled) rings score near 0 everywhere. Pairs only need both azimuths on the detector, so
/// a ring with a quarter of its circumference used is still scored. All zero below that.
fn fold_scores(own: &[Option<f64>]) -> [f32; PER_PEAK_FOLDS] {
    let mut out = [0.0f32; PER_PEAK_FOLDS];
    let filled = own.iter().flatten().count();
    if filled * 4 < RING_CHI_BINS {
        return out;
    }
    let mean = own.iter().flatten().sum::<f64>() / filled as f64;
    let centred: Vec<Option<f64>> = own.iter().map(|v| v.map(|v| v - mean)).collect();
    let variance = centred.iter().flatten().map(|v| v * v).sum::<f64>() / filled as f64;
    let depth = (variance.sqrt() / mean.abs().max(CONTRAST_FLOOR)).min(RELATIVE_CAP);
    out[0] = depth as f32;
    if variance <= 0.0 {
        return out;
    }
    let n_bins = RING_CHI_BINS as f64;
    // The value `lag` bins after bin `c` (either way round the circle), where both neighbours
    // are used.
    let at = |c: usize, lag: f64| -> Option<f64> {
        let x = (c as f64 + lag).rem_euclid(n_bins);
        let lo = x.floor() as usize % RING_CHI_BINS;
        let f = x - x.floor();
        Some((1.0 - f) * centred[lo]? + f * centred[(lo + 1) % RING_CHI_BINS]?)
    };
    for (score, &n) in out[1..].iter_mut().zip(FOLDS.iter()) {
        let lag = n_bins / n as f64;
        let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
        for (c, v) in centred.iter().enumerate() {
            let Some(x) = *v else { continue };
            // Both directions, so that a mirrored pattern scores the same.
            for y in [at(c, lag), at(c, -lag)].into_iter().flatten() {
                xy += x * y;
                xx += x * x;
                yy += y * y;
            }
        }
        if xx > 0.0 && yy > 0.0 {
            // Scaled down for shallow modulations: the pixel grid's own 4-fold pattern makes
            // an isotropic ring alike to itself turned by 90° too, at a depth of a few %.
            let gate = depth / (depth + FOLD_DEPTH_HALF);
            *score = (gate * xy / (xx * yy).sqrt()) as f32;
        }
    }
    out
}

/// Soft histograms of ln(rⱼ/rᵢ) over [`RATIO_BINS`] log-spaced bins in
/// [[`RATIO_MIN`], [`RATIO_MAX`]]: first of every peak against the innermost, then of every pair.
/// Each pair adds the weaker of the two contrasts (× gain), spread by a Gaussian whose width is
/// the ratio's uncertainty for half a pixel on each radius (at least a third of a bin).
fn ratio_histograms(peaks: &[Peak]) -> Vec<f32> {
    let mut out = vec![0.0f32; 2 * RATIO_BINS];
    let (lo, hi) = (RATIO_MIN.ln(), RATIO_MAX.ln());
    let bin_width = (hi - lo) / RATIO_BINS as f64;
    let mut add = |hist: usize, inner: &Peak, outer: &Peak| {
        let x = (outer.radius_px / inner.radius_px).ln();
        let sigma = ((0.5 / inner.radius_px).powi(2) + (0.5 / outer.radius_px).powi(2))
            .sqrt()
            .max(bin_width / 3.0);
        let weight = inner.contrast.min(outer.contrast) * CONTRAST_GAIN;
        for b in 0..RATIO_BINS {
            let centre = lo + (b as f64 + 0.5) * bin_width;
            let z = (centre - x) / sigma;
            if z.abs() < 4.0 {
                // The Gaussian's mass in the bin, approximated by its density × bin width.
                let density = (-0.5 * z * z).exp() / (sigma * (std::f64::consts::TAU).sqrt());
                out[hist * RATIO_BINS + b] += (weight * density * bin_width) as f32;
            }
        }
    };
    let mut by_radius: Vec<Peak> = peaks.to_vec();
    by_radius.sort_by(|a, b| a.radius_px.total_cmp(&b.radius_px));
    if let Some((first, rest)) = by_radius.split_first() {
        for p in rest {
            add(0, first, p);
        }
    }
    for (i, inner) in by_radius.iter().enumerate() {
        for outer in &by_radius[i + 1..] {
            add(1, inner, outer);
        }
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

    /// Gaussian rings of 1 px σ at `radii_px` on a falling background.
    fn rings(radii_px: &[f64], angular: impl Fn(f64) -> f64) -> Vec<f32> {
        grid(256, 128.0, 128.0, |dx, dy| {
            let r = dx.hypot(dy);
            let chi = dy.atan2(dx);
            let background = 0.5 - 0.001 * r;
            let ring: f64 = radii_px
                .iter()
                .map(|r0| 0.1 * (-0.5 * ((r - r0) / 1.0).powi(2)).exp())
                .sum();
            (background + ring * angular(chi)) as f32
        })
    }

    fn bin_of(ratio: f64) -> usize {
        let (lo, hi) = (RATIO_MIN.ln(), RATIO_MAX.ln());
        ((ratio.ln() - lo) / (hi - lo) * RATIO_BINS as f64) as usize
    }

    #[test]
    fn a_bcc_series_peaks_at_root_two_and_an_fcc_one_at_two_over_root_three() {
        let open = vec![false; 256 * 256];
        let hist_start = DESCRIBED_PEAKS * PER_PEAK;
        for (first_ratio, radii) in [
            (2f64.sqrt(), [20.0, 20.0 * 2f64.sqrt(), 20.0 * 3f64.sqrt()]),
            (
                2.0 / 3f64.sqrt(),
                [
                    30.0,
                    30.0 * 2.0 / 3f64.sqrt(),
                    30.0 * 8f64.sqrt() / 3f64.sqrt(),
                ],
            ),
        ] {
            let f = peak_features(&rings(&radii, |_| 1.0), &open, 256, (128.0, 128.0));
            assert_eq!(f.len(), PEAK_FEATURES);
            // The three rings are found, at their radii within a third of a pixel.
            let mut found: Vec<f64> = (0..3)
                .map(|i| f64::from(f[i * PER_PEAK]) * PROFILE_BINS as f64)
                .collect();
            found.sort_by(f64::total_cmp);
            for (got, want) in found.iter().zip(&radii) {
                assert!((got - want).abs() < 0.35, "{found:?} vs {radii:?}");
            }
            // The innermost-peak histogram is largest at the second peak's ratio.
            let hist = &f[hist_start..hist_start + RATIO_BINS];
            let argmax = (0..RATIO_BINS)
                .max_by(|&a, &b| hist[a].total_cmp(&hist[b]))
                .expect("bins");
            assert!(
                argmax.abs_diff(bin_of(first_ratio)) <= 1,
                "{argmax} vs {} ({hist:?})",
                bin_of(first_ratio)
            );
        }
    }

    #[test]
    fn a_fourfold_ring_shows_its_fourth_harmonic_through_a_beamstop_arm() {
        let open = vec![false; 256 * 256];
        // A 4-fold ring at 40 px; a dark arm (a linear beamstop's shadow) along χ ≈ 0 that is
        // smooth in radius, which the band harmonics of the ring statistics would pick up.
        let mut img = rings(&[40.0], |chi| 1.0 + 0.8 * (4.0 * chi).cos());
        for (i, v) in img.iter_mut().enumerate() {
            let (dx, dy) = (
                (i % 256) as f64 + 0.5 - 128.0,
                (i / 256) as f64 + 0.5 - 128.0,
            );
            if dx > 0.0 && dy.abs() < 4.0 {
                *v -= 0.3;
            }
        }
        let f = peak_features(&img, &open, 256, (128.0, 128.0));
        let harmonics = &f[4..PER_PEAK];
        assert!((f[0] * PROFILE_BINS as f32 - 40.0).abs() < 0.5, "{}", f[0]);
        // cos(4χ) with amplitude 0.8 of the ring: the 4th harmonic reads 0.8; the lower ones,
        // which the arm would bring, stay small (the shadowed azimuths are left out, which
        // leaks a little of the 4th harmonic into the others).
        assert!((harmonics[3] - 0.8).abs() < 0.12, "{harmonics:?}");
        assert!(harmonics[..3].iter().all(|&a| a < 0.15), "{harmonics:?}");
        // An isotropic ring has no harmonics.
        let iso = peak_features(&rings(&[40.0], |_| 1.0), &open, 256, (128.0, 128.0));
        assert!(
            iso[4..PER_PEAK].iter().all(|&a| a < 0.05),
            "{:?}",
            &iso[4..PER_PEAK]
        );
    }

    #[test]
    fn fold_scores_tell_two_fold_from_four_and_six_fold_rings_even_on_a_partial_ring() {
        // Poisson-kernel arcs as the generator draws them: n maxima, sharpness η.
        let arcs = |n: f64, eta: f64| {
            move |chi: f64| (1.0 - eta * eta) / (1.0 - 2.0 * eta * (n * chi).cos() + eta * eta)
        };
        let score =
            |f: &[f32], n: usize| f[1 + FOLDS.iter().position(|&k| k == n).expect("scored order")];
        let open = vec![false; 256 * 256];
        let folds_of = |img: &[f32], masked: &[bool], beam: (f64, f64)| {
            let (peaks, folds) = ring_features_and_folds(img, masked, 256, beam);
            assert_eq!(peaks, peak_features(img, masked, 256, beam));
            assert_eq!(folds.len(), FOLD_FEATURES);
            folds[..PER_PEAK_FOLDS].to_vec()
        };
        let two = folds_of(&rings(&[40.0], arcs(2.0, 0.7)), &open, (128.0, 128.0));
        let four = folds_of(&rings(&[40.0], arcs(4.0, 0.7)), &open, (128.0, 128.0));
        let six = folds_of(&rings(&[40.0], arcs(6.0, 0.7)), &open, (128.0, 128.0));
        let eight = folds_of(&rings(&[40.0], arcs(8.0, 0.7)), &open, (128.0, 128.0));
        // Alike turned by 360°/n, unlike turned by half that.
        // (Depths near 1 scale the scores by about 0.9.)
        assert!(score(&two, 2) > 0.85 && score(&two, 4) < -0.3, "{two:?}");
        assert!(
            score(&four, 4) > 0.85 && score(&four, 2) > 0.85 && score(&four, 8) < -0.3,
            "{four:?}"
        );
        assert!(
            score(&six, 6) > 0.8 && score(&six, 2) > 0.85 && score(&six, 4) < -0.3,
            "{six:?}"
        );
        assert!(
            score(&eight, 8) > 0.75 && score(&eight, 4) > 0.85,
            "{eight:?}"
        );
        assert!(
            two[0] > 0.3 && four[0] > 0.3,
            "depths {} {}",
            two[0],
            four[0]
        );
        // An isotropic ring has (almost) no depth, and so no fold stands out.
        let iso = folds_of(&rings(&[40.0], |_| 1.0), &open, (128.0, 128.0));
        assert!(
            iso[0] < 0.05 && iso[1..].iter().all(|&s| s < 0.3),
            "{iso:?}"
        );
        // Grainy arcs at irregular azimuths: no order stands out.
        let grainy = |chi: f64| {
            1.0 + 0.8 * ((3.1 * chi).sin() * (7.7 * chi + 1.0).cos() * (5.3 * chi - 0.4).sin())
        };
        let speckled = folds_of(&rings(&[40.0], grainy), &open, (128.0, 128.0));
        assert!(
            FOLDS.iter().all(|&n| score(&speckled, n) < 0.6),
            "{speckled:?}"
        );
        // The beam 20 px inside the grid's left edge: a third of a 40 px ring is off the grid,
        // its harmonics are not computed, but its folds still read 4-fold.
        let beam = (20.0, 128.0);
        let shifted = grid(256, beam.0, beam.1, |dx, dy| {
            let r = dx.hypot(dy);
            let ring = 0.1 * (-0.5 * (r - 40.0).powi(2)).exp();
            (0.5 - 0.001 * r + ring * arcs(4.0, 0.7)(dy.atan2(dx))) as f32
        });
        let mut off = vec![false; 256 * 256];
        for (i, m) in off.iter_mut().enumerate() {
            *m = i % 256 < 10;
        }
        let partial = folds_of(&shifted, &off, beam);
        assert!(
            score(&partial, 4) > 0.8 && score(&partial, 2) > 0.8 && score(&partial, 6) < -0.3,
            "{partial:?}"
        );
        // Mirrored top to bottom (about the beam's row), it scores the same.
        let flip = |v: &[f32]| -> Vec<f32> {
            (0..256 * 256)
                .map(|i| v[(255 - i / 256) * 256 + i % 256])
                .collect()
        };
        let mirrored = folds_of(&flip(&shifted), &off, beam);
        for (a, b) in partial.iter().zip(&mirrored) {
            assert!((a - b).abs() < 0.05, "{partial:?} vs {mirrored:?}");
        }
    }

    #[test]
    fn an_arm_darkens_a_falling_share_of_azimuths_and_a_wedge_a_constant_one() {
        let open = vec![false; 256 * 256];
        let flat = |dark: &dyn Fn(f64, f64) -> bool| {
            grid(
                256,
                128.0,
                128.0,
                |dx, dy| if dark(dx, dy) { 0.1 } else { 0.5 },
            )
        };
        let shadows = |img: &[f32]| {
            let f = peak_features(img, &open, 256, (128.0, 128.0));
            f[PEAK_FEATURES - 2 * SHADOW_BANDS..PEAK_FEATURES - SHADOW_BANDS].to_vec()
        };
        // A 6 px wide arm along +x, and a 30° wedge along −y.
        let arm = shadows(&flat(&|dx, dy| dx > 0.0 && dy.abs() < 3.0));
        let wedge = shadows(&flat(&|dx, dy| (dx.atan2(-dy)).abs() < 15f64.to_radians()));
        // The last band reaches past the grid's edges, where the arm ends.
        let (inner, outer) = (2, SHADOW_BANDS - 2);
        assert!(arm[inner] > 2.0 * arm[outer] && arm[outer] > 0.0, "{arm:?}");
        // A wedge's share is the same in every band wider than an azimuthal bin.
        assert!((wedge[4] - wedge[outer]).abs() < 0.02, "{wedge:?}");
        assert!((wedge[outer] - 30.0 / 360.0).abs() < 0.06, "{wedge:?}");
        assert!(shadows(&flat(&|_, _| false)).iter().all(|&s| s == 0.0));
    }

    #[test]
    fn a_saturated_direct_beam_is_not_a_ring_and_hides_none() {
        let open = vec![false; 256 * 256];
        // A faint ring at 40 px (contrast ≈ 0.01) and a direct beam saturating a 3 px core.
        let img = grid(256, 128.0, 128.0, |dx, dy| {
            let r = dx.hypot(dy);
            let beam = (-0.5 * ((r - 3.0).max(0.0) / 1.5).powi(2)).exp();
            let ring = 0.01 * (-0.5 * ((r - 40.0) / 1.0).powi(2)).exp();
            (0.3 + 0.7 * beam + ring).min(1.0) as f32
        });
        let f = peak_features(&img, &open, 256, (128.0, 128.0));
        let first_px = f64::from(f[0]) * PROFILE_BINS as f64;
        assert!((first_px - 40.0).abs() < 0.5, "{first_px}");
        // The core ends at bin 3: skipped out to 2·3 + 2 + the contrast's 4 bins. Behind a
        // beamstop (the bins at the beam empty) a bright ring is no direct beam; nor is a
        // pattern below full scale.
        let saturated_to_3 = [1.0, 1.0, 0.97, 0.96, 0.5, 0.3].map(Some);
        assert_eq!(first_ring_bin(&saturated_to_3), 12);
        let stopped = [None, None, Some(1.0), Some(1.0), Some(0.5)];
        assert_eq!(first_ring_bin(&stopped), INNER_PX);
        assert_eq!(first_ring_bin(&[0.9, 0.8, 0.5].map(Some)), INNER_PX);
    }

    #[test]
    fn a_halo_shows_in_the_broad_contrast() {
        let open = vec![false; 256 * 256];
        let halo = grid(256, 128.0, 128.0, |dx, dy| {
            (0.4 + 0.1 * (-0.5 * ((dx.hypot(dy) - 82.0) / 8.0).powi(2)).exp()) as f32
        });
        let f = peak_features(&halo, &open, 256, (128.0, 128.0));
        let broad = &f[FAR_START + 2 * FAR_BINS..FAR_START + 2 * FAR_BINS + BROAD_BINS];
        let argmax = (0..BROAD_BINS)
            .max_by(|&a, &b| broad[a].total_cmp(&broad[b]))
            .expect("bins");
        assert_eq!(argmax, 82 / BROAD_BIN_PX, "{broad:?}");
        assert!(broad[argmax] > 0.3, "{broad:?}");
    }

    #[test]
    fn turning_the_pattern_leaves_the_features_alone_and_masks_are_respected() {
        let open = vec![false; 256 * 256];
        let pattern =
            |turn: f64| rings(&[25.0, 50.0], |chi| 1.0 + 0.5 * (6.0 * (chi + turn)).cos());
        let at = |turn: f64| peak_features(&pattern(turn), &open, 256, (128.0, 128.0));
        let (a, b) = (at(0.0), at(0.4));
        let largest = a
            .iter()
            .zip(&b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(largest < 0.05, "{largest}");
        // Everything masked: no rings, empty far profile.
        let none = peak_features(&pattern(0.0), &vec![true; 256 * 256], 256, (128.0, 128.0));
        assert!(none.iter().all(|&v| v == 0.0));
        // The far profile reaches the corners when the beam is in one.
        let corner = peak_features(&vec![0.5; 256 * 256], &open, 256, (0.0, 0.0));
        let far = &corner[FAR_START..FAR_START + FAR_BINS];
        assert!((far[0] - 0.5).abs() < 1e-6 && (far[FAR_BINS - 2] - 0.5).abs() < 1e-6);
    }
}
