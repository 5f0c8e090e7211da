//! Beam-centre estimation from the pattern itself.
//!
//! Around the true centre, scattering varies mostly with the distance from it (rings, halos, the
//! steep low-q fall-off), so grouping pixels into 1-px-wide rings around a candidate centre
//! explains most of the image's variance; around a wrong centre the rings smear and explain less.
//! The estimate is the candidate whose rings leave the smallest within-ring variance of
//! ln(1 + I) over the unmasked pixels (a one-way analysis of variance, with the degrees of
//! freedom counted so that sparsely filled rings gain nothing).
//!
//! Smooth backgrounds that are not centred on the beam (window scattering, parasitic glow) would
//! pull the estimate towards themselves, so each level of the search is high-passed first (its
//! local mean over 9 × 9 cells subtracted).
//!
//! The search runs on a pyramid: candidates two binned pixels apart on a copy binned to at most
//! 64 px a side (the centre may lie up to 60 % of a side beyond the image, as on SAXS cameras
//! with the beam off the detector), every binned pixel around the four best of them, then
//! half-bin steps around the best at each finer level down to 2 × 2 binning, then quarter
//! pixels at full resolution with a parabola through the best score and its neighbours. Each
//! level scores a regular subsample of its cells, so a 1000² image takes about 90 ms on one
//! core. Anisotropic patterns keep their angular variance at every candidate, so the minimum
//! stays at the centre.

use crate::Image;

/// Longest side of the coarsest level.
const COARSE_SIDE_PX: usize = 64;
/// Best separate candidates of the sparse coarse grid that are refined.
const COARSE_SEEDS: usize = 4;
/// How far beyond the image (fraction of its size) the coarse search looks: SAXS cameras put
/// the beam up to about half a detector side off it (the engine's wide mix draws 5–60 %), and
/// with 0.1 such a beam was always placed on the detector (`beam off image` near chance with
/// estimated centres).
const BEYOND: f64 = 0.6;
/// Cells used for each score of an intermediate level (a regular subsample of the valid ones):
/// enough to place rings to a fraction of a cell, few enough that 1000² images take tens of
/// milliseconds.
const LEVEL_SAMPLES: usize = 8_000;
/// Pixels used for each full-resolution score (a regular subsample of the valid ones).
const FINE_SAMPLES: usize = 60_000;

/// A beam-centre estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamCentre {
    /// Column in pixels (origin at the left edge of the image); may lie outside the image.
    pub x_px: f64,
    /// Row in pixels (origin at the top edge).
    pub y_px: f64,
    /// Fraction of the variance of ln(1 + I) that rings around the estimate explain (near 1
    /// for ring-dominated patterns; low values mean the estimate is uncertain).
    pub explained: f64,
}

/// Values ln(1 + I) of valid pixels at given pixel-centre positions. Positions are `f32`: the
/// score's inner loop is one multiply-add pair and a square root per sample, which `f32` does
/// twice as fast (and a thousandth of a pixel is still far finer than any ring).
struct Samples {
    x: Vec<f32>,
    y: Vec<f32>,
    v: Vec<f64>,
}

impl Samples {
    /// Every `k`-th sample.
    fn every(&self, k: usize) -> Samples {
        Samples {
            x: self.x.iter().copied().step_by(k).collect(),
            y: self.y.iter().copied().step_by(k).collect(),
            v: self.v.iter().copied().step_by(k).collect(),
        }
    }

    /// Within-ring variance (per degree of freedom) around (cx, cy) with rings `ring_px` wide;
    /// also the fraction of the variance explained.
    fn score(&self, cx: f64, cy: f64, ring_px: f64, bins: &mut Vec<(f64, f64, u32)>) -> (f64, f64) {
        bins.clear();
        let (cx, cy, per_ring) = (cx as f32, cy as f32, 1.0 / ring_px as f32);
        for ((&x, &y), &v) in self.x.iter().zip(&self.y).zip(&self.v) {
            let (dx, dy) = (x - cx, y - cy);
            let k = ((dx * dx + dy * dy).sqrt() * per_ring) as usize;
            if k >= bins.len() {
                bins.resize(k + 1, (0.0, 0.0, 0));
            }
            let b = &mut bins[k];
            b.0 += v;
            b.1 += v * v;
            b.2 += 1;
        }
        let (mut within, mut total_s, mut total_ss, mut used) = (0.0, 0.0, 0.0, 0usize);
        for &(s, ss, n) in bins.iter() {
            if n > 0 {
                within += ss - s * s / f64::from(n);
                total_s += s;
                total_ss += ss;
                used += 1;
            }
        }
        let n = self.v.len() as f64;
        let total = total_ss - total_s * total_s / n;
        let dof = (n - used as f64).max(1.0);
        (
            within / dof,
            if total > 0.0 {
                1.0 - within / total
            } else {
                0.0
            },
        )
    }
}

/// Radius (in cells of a level) of the box whose mean is subtracted from every cell: removes
/// smooth backgrounds (window scattering, parasitic glow) that are not centred on the beam,
/// keeping rings, peaks and the steep fall-off around the beam.
const HIGH_PASS_CELLS: usize = 4;

/// Block means of ln(1 + I) over valid pixels in `bin × bin` blocks (a block counts when at
/// least half of it is valid), high-passed, with positions at block centres in full-resolution
/// pixels. With `stride > 1` only every `stride`-th valid block is kept.
fn level(g: &[f32], valid: &[bool], w: usize, h: usize, bin: usize, stride: usize) -> Samples {
    let (bw, bh) = (w.div_ceil(bin), h.div_ceil(bin));
    // At full resolution the pixels are the cells (no copy of a large image).
    let binned;
    let (v, ok): (&[f32], &[bool]) = if bin == 1 {
        (g, valid)
    } else {
        binned = block_means(g, valid, w, h, bin);
        (&binned.0, &binned.1)
    };
    let kept: Vec<usize> = (0..bw * bh)
        .filter(|&c| ok[c])
        .step_by(stride.max(1))
        .collect();
    let smooth = masked_box_mean(v, ok, bw, bh, HIGH_PASS_CELLS, &kept);
    let mut s = Samples {
        x: Vec::with_capacity(kept.len()),
        y: Vec::with_capacity(kept.len()),
        v: Vec::with_capacity(kept.len()),
    };
    for (&c, m) in kept.iter().zip(smooth) {
        let (bx, by) = (c % bw, c / bw);
        // Centre of the block's pixels (edge blocks may be narrower).
        s.x.push((bx * bin + ((bx + 1) * bin).min(w)) as f32 / 2.0);
        s.y.push((by * bin + ((by + 1) * bin).min(h)) as f32 / 2.0);
        s.v.push(f64::from(v[c]) - m);
    }
    s
}

/// Means over the valid pixels of each `bin × bin` block, and whether at least half of the
/// block was valid.
fn block_means(g: &[f32], valid: &[bool], w: usize, h: usize, bin: usize) -> (Vec<f32>, Vec<bool>) {
    let (bw, bh) = (w.div_ceil(bin), h.div_ceil(bin));
    let mut sum = vec![0.0; bw * bh];
    let mut n = vec![0usize; bw * bh];
    let mut tot = vec![0usize; bw * bh];
    // Block column of every pixel column, so the pixel loop divides nothing.
    let block_of_x: Vec<usize> = (0..w).map(|x| x / bin).collect();
    for y in 0..h {
        let row = (y / bin) * bw;
        let (g_row, valid_row) = (&g[y * w..(y + 1) * w], &valid[y * w..(y + 1) * w]);
        for ((&bx, &v), &ok) in block_of_x.iter().zip(g_row).zip(valid_row) {
            let c = row + bx;
            tot[c] += 1;
            if ok {
                sum[c] += f64::from(v);
                n[c] += 1;
            }
        }
    }
    let ok: Vec<bool> = (0..bw * bh)
        .map(|c| n[c] > 0 && n[c] * 2 >= tot[c])
        .collect();
    let v = (0..bw * bh)
        .map(|c| {
            if ok[c] {
                (sum[c] / n[c] as f64) as f32
            } else {
                0.0
            }
        })
        .collect();
    (v, ok)
}

/// Mean of the valid cells in the (2r+1)² box around each cell of `at`, by summed-area tables
/// (counts in `u32`: images are capped far below 2³² pixels).
fn masked_box_mean(v: &[f32], ok: &[bool], w: usize, h: usize, r: usize, at: &[usize]) -> Vec<f64> {
    let (sw, sh) = (w + 1, h + 1);
    let mut sv = vec![0.0f64; sw * sh];
    let mut sn = vec![0u32; sw * sh];
    for y in 0..h {
        for x in 0..w {
            let i = (y + 1) * sw + x + 1;
            let (a, b) = if ok[y * w + x] {
                (f64::from(v[y * w + x]), 1)
            } else {
                (0.0, 0)
            };
            sv[i] = a + sv[i - 1] + sv[i - sw] - sv[i - sw - 1];
            // Added before subtracting: no intermediate goes below zero.
            sn[i] = b + sn[i - 1] + sn[i - sw] - sn[i - sw - 1];
        }
    }
    at.iter()
        .map(|&c| {
            let (x, y) = (c % w, c / w);
            let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let (tl, tr, bl, br) = (y0 * sw + x0, y0 * sw + x1, y1 * sw + x0, y1 * sw + x1);
            let n = (sn[br] - sn[tr]) - (sn[bl] - sn[tl]);
            let sum = sv[br] - sv[tr] - sv[bl] + sv[tl];
            if n > 0 { sum / f64::from(n) } else { 0.0 }
        })
        .collect()
}

/// Pixels darker than this fraction of the median exposure are shadows, left out of the search
/// (shadow edges are blurred, so the cut is well above the shadows' own near-zero counts).
const SHADOW_FRACTION: f32 = 0.4;
/// Below this median (counts) a weak exposure has zeros everywhere: no shadow can be told apart.
const SHADOW_MIN_MEDIAN_COUNTS: f32 = 20.0;
/// Shadows are widened by this much, so their blurred edges go too.
const SHADOW_MARGIN_PX: usize = 3;
/// Median estimates use at most this many valid pixels (a regular subsample).
const MEDIAN_SAMPLES: usize = 65_536;

/// Marks as invalid the pixels in the shadow of a beamstop, its arm or a window frame (far below
/// the median exposure), widened by [`SHADOW_MARGIN_PX`]. Their long straight edges are fitted by
/// rings around a far-away point better than a faint pattern's own rings (on 500 engine images
/// this moved 44 % of the wedge-beamstop centres more than 5 px; 30 % without the shadows); the
/// pattern's rings are bright and stay. Nothing is left out when the exposure is too weak to tell
/// a shadow, or when the shadows would leave less than a tenth of the pixels.
fn leave_out_shadows(px: &[f32], valid: &mut [bool], w: usize, h: usize) {
    let n_valid = valid.iter().filter(|&&v| v).count();
    let stride = (n_valid / MEDIAN_SAMPLES).max(1);
    let mut sample: Vec<f32> = px
        .iter()
        .zip(valid.iter())
        .filter(|(_, ok)| **ok)
        .map(|(&v, _)| v)
        .step_by(stride)
        .collect();
    if sample.is_empty() {
        return;
    }
    let mid = sample.len() / 2;
    let median = *sample.select_nth_unstable_by(mid, f32::total_cmp).1;
    if median < SHADOW_MIN_MEDIAN_COUNTS {
        return;
    }
    let dark = SHADOW_FRACTION * median;
    let shadow: Vec<bool> = px
        .iter()
        .zip(valid.iter())
        .map(|(&v, &ok)| ok && v < dark)
        .collect();
    let widened = dilate(&shadow, w, h, SHADOW_MARGIN_PX);
    let kept = valid
        .iter()
        .zip(&widened)
        .filter(|&(&ok, &s)| ok && !s)
        .count();
    if kept * 10 < n_valid {
        return;
    }
    for (ok, s) in valid.iter_mut().zip(widened) {
        *ok &= !s;
    }
}

/// `set` widened by `r` pixels in x and y (a square structuring element), by running counts
/// along rows and then columns.
fn dilate(set: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    let mut rows = vec![false; w * h];
    for y in 0..h {
        let line = &set[y * w..(y + 1) * w];
        let out = &mut rows[y * w..(y + 1) * w];
        let mut count = line[..r.min(w)].iter().filter(|&&b| b).count();
        for x in 0..w {
            if x + r < w && line[x + r] {
                count += 1;
            }
            if x > r && line[x - r - 1] {
                count -= 1;
            }
            out[x] = count > 0;
        }
    }
    let mut out = vec![false; w * h];
    for x in 0..w {
        let mut count = (0..r.min(h)).filter(|&y| rows[y * w + x]).count();
        for y in 0..h {
            if y + r < h && rows[(y + r) * w + x] {
                count += 1;
            }
            if y > r && rows[(y - r - 1) * w + x] {
                count -= 1;
            }
            out[y * w + x] = count > 0;
        }
    }
    out
}

/// Estimates the beam centre of `image`, leaving out pixels where `mask` is `true` and
/// negative or non-finite ones. `None` when fewer than 64 pixels are usable.
pub fn estimate_beam_centre(image: &Image<f32>, mask: Option<&[bool]>) -> Option<BeamCentre> {
    let (w, h) = (image.width(), image.height());
    // ln(1 + I) in f32: the search only compares block means of it.
    let (g, mut valid): (Vec<f32>, Vec<bool>) = image
        .pixels()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ok = v.is_finite() && v >= 0.0 && !mask.is_some_and(|m| m[i]);
            (if ok { v.ln_1p() } else { 0.0 }, ok)
        })
        .unzip();
    leave_out_shadows(image.pixels(), &mut valid, w, h);
    let n_valid = valid.iter().filter(|&&v| v).count();
    if n_valid < 64 {
        return None;
    }
    let mut bins = Vec::new();
    // Coarse: candidates two binned pixels apart over the whole search area, then every binned
    // pixel within three of each of the few best (a weak pattern can put its true minimum a
    // little above a spurious one on the sparse grid).
    let mut bin = w.max(h).div_ceil(COARSE_SIDE_PX).max(1);
    let coarse = level(&g, &valid, w, h, bin, 1);
    if coarse.v.len() < 16 {
        return None;
    }
    let step = bin as f64;
    let span = |size: usize| {
        let lo = -BEYOND * size as f64;
        let n = ((1.0 + 2.0 * BEYOND) * size as f64 / (2.0 * step)).ceil() as usize;
        (0..=n).map(move |k| lo + k as f64 * 2.0 * step)
    };
    // A third of the cells is plenty to rank candidates two binned pixels apart.
    let thinned = coarse.every(3);
    let mut sparse = Vec::new();
    for cy in span(h) {
        for cx in span(w) {
            sparse.push((thinned.score(cx, cy, step, &mut bins).0, cx, cy));
        }
    }
    sparse.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut seeds: Vec<(f64, f64)> = Vec::new();
    for &(_, cx, cy) in &sparse {
        if seeds.len() == COARSE_SEEDS {
            break;
        }
        if seeds
            .iter()
            .all(|&(x, y)| (x - cx).abs().max((y - cy).abs()) > 3.0 * step)
        {
            seeds.push((cx, cy));
        }
    }
    let mut best = Best::NONE;
    for (cx0, cy0) in seeds {
        best = best.or(scan(&coarse, cx0, cy0, step, 3, step, &mut bins));
    }
    // Finer levels down to 2 × 2 binning: half-bin steps within ±2 bins of the previous best.
    let mut last_step_px = step;
    while bin > 2 {
        bin = bin.div_ceil(2);
        let cells = n_valid / (bin * bin);
        let samples = level(&g, &valid, w, h, bin, (cells / LEVEL_SAMPLES).max(1));
        last_step_px = bin as f64 / 2.0;
        best = scan(
            &samples,
            best.x,
            best.y,
            last_step_px,
            4,
            bin as f64,
            &mut bins,
        );
    }
    // Full resolution on a regular subsample of the valid pixels: half pixels within ±1 step of
    // the last level, then quarter pixels around the best, then a parabola through the best
    // quarter pixel and its neighbours.
    let stride = (n_valid / FINE_SAMPLES).max(1);
    let fine = level(&g, &valid, w, h, 1, stride);
    let reach = ((last_step_px / 0.5).ceil() as i32).clamp(2, 4);
    best = scan(&fine, best.x, best.y, 0.5, reach, 1.0, &mut bins);
    best = scan(&fine, best.x, best.y, 0.25, 1, 1.0, &mut bins);
    let (cx0, cy0) = (best.x, best.y);
    let quarter = |dx: f64, dy: f64, bins: &mut Vec<(f64, f64, u32)>| {
        fine.score(cx0 + 0.25 * dx, cy0 + 0.25 * dy, 1.0, bins).0
    };
    let parabola = |a: f64, b: f64, c: f64| {
        let den = a - 2.0 * b + c;
        if den > 0.0 {
            (0.5 * (a - c) / den).clamp(-0.5, 0.5)
        } else {
            0.0
        }
    };
    let fx = parabola(
        quarter(-1.0, 0.0, &mut bins),
        best.score,
        quarter(1.0, 0.0, &mut bins),
    );
    let fy = parabola(
        quarter(0.0, -1.0, &mut bins),
        best.score,
        quarter(0.0, 1.0, &mut bins),
    );
    let (x_px, y_px) = (cx0 + 0.25 * fx, cy0 + 0.25 * fy);
    let (_, explained) = fine.score(x_px, y_px, 1.0, &mut bins);
    Some(BeamCentre {
        x_px,
        y_px,
        explained,
    })
}

/// The best candidate so far.
#[derive(Debug, Clone, Copy)]
struct Best {
    x: f64,
    y: f64,
    score: f64,
}

impl Best {
    const NONE: Best = Best {
        x: 0.0,
        y: 0.0,
        score: f64::INFINITY,
    };

    fn or(self, other: Best) -> Best {
        if other.score < self.score {
            other
        } else {
            self
        }
    }
}

/// The best of the `(2 reach + 1)²` candidates `step_px` apart around `(cx0, cy0)`, scored with
/// rings `ring_px` wide.
fn scan(
    samples: &Samples,
    cx0: f64,
    cy0: f64,
    step_px: f64,
    reach: i32,
    ring_px: f64,
    bins: &mut Vec<(f64, f64, u32)>,
) -> Best {
    let mut best = Best::NONE;
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let (x, y) = (cx0 + f64::from(dx) * step_px, cy0 + f64::from(dy) * step_px);
            let (score, _) = samples.score(x, y, ring_px, bins);
            best = best.or(Best { x, y, score });
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rings (and optionally n-fold modulation) around (cx, cy) on a power-law background.
    fn pattern(w: usize, h: usize, cx: f64, cy: f64, fold: Option<usize>) -> Image<f32> {
        let mut px = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let r = dx.hypot(dy).max(1.0);
                let chi = (-dy).atan2(dx);
                let angular = fold.map_or(1.0, |n| 0.2 + (n as f64 / 2.0 * chi).cos().powi(2));
                let rings: f64 = [60.0, 104.0, 150.0]
                    .iter()
                    .map(|&r0| 500.0 * angular * (-((r - r0) / 3.0).powi(2) / 2.0).exp())
                    .sum();
                px[y * w + x] = (5.0 + 4e4 / (r * r) + rings) as f32;
            }
        }
        Image::from_vec(w, h, px).expect("sized")
    }

    #[test]
    fn finds_the_centre_to_a_fraction_of_a_pixel() {
        for (cx, cy, fold, tolerance_px) in [
            (212.3, 190.8, None, 0.3),
            (260.6, 231.2, Some(6), 0.3),
            (150.0, 275.5, Some(4), 0.3),
            // Beyond the left edge, as on a detector offset for wide angles.
            (-18.4, 200.7, None, 0.3),
            // Well beyond it: only arcs of the two outer rings are on the image, which fix
            // the centre along them better than towards it.
            (-96.3, 150.2, None, 3.0),
        ] {
            let img = pattern(420, 400, cx, cy, fold);
            let b = estimate_beam_centre(&img, None).expect("usable");
            assert!(
                (b.x_px - cx).abs() < tolerance_px && (b.y_px - cy).abs() < tolerance_px,
                "{cx}, {cy}, {fold:?}: {b:?}"
            );
            assert!(b.explained > 0.9, "{b:?}");
        }
    }

    #[test]
    fn a_beamstop_and_gaps_in_the_mask_do_not_move_it() {
        let (w, h, cx, cy) = (400usize, 380usize, 207.4, 176.9);
        let mut img = pattern(w, h, cx, cy, Some(2));
        let mut mask = vec![false; w * h];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                // Beamstop disc and arm (shadowed: near-zero counts), and two gap lines.
                let stop = dx.hypot(dy) < 25.0 || (dx < 0.0 && dy.abs() < 6.0);
                if stop {
                    img.pixels_mut()[y * w + x] = 0.1;
                }
                mask[y * w + x] = stop || (120..127).contains(&x) || (300..317).contains(&y);
            }
        }
        let b = estimate_beam_centre(&img, Some(&mask)).expect("usable");
        assert!(
            (b.x_px - cx).abs() < 0.3 && (b.y_px - cy).abs() < 0.3,
            "{b:?}"
        );
    }

    #[test]
    fn an_unmasked_wedge_shadow_does_not_pull_it_away() {
        // Faint rings on a bright flat exposure, and a wedge beamstop's shadow from the beam to
        // the far corner that nobody masked: its straight edges are the strongest structure.
        let (w, h, cx, cy) = (300usize, 280usize, 90.3, 70.6);
        let mut px = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let r = dx.hypot(dy);
                let rings: f64 = [14.0, 28.0, 42.0]
                    .iter()
                    .map(|&r0| 60.0 * (-((r - r0) / 1.5).powi(2) / 2.0).exp())
                    .sum();
                let off_axis_rad = (dy.atan2(dx) - 0.6).abs();
                let shadow = r < 5.0 || off_axis_rad < 0.1;
                px[y * w + x] = if shadow { 0.5 } else { (400.0 + rings) as f32 };
            }
        }
        let img = Image::from_vec(w, h, px).expect("sized");
        let b = estimate_beam_centre(&img, None).expect("usable");
        assert!((b.x_px - cx).hypot(b.y_px - cy) < 0.5, "{b:?}");
    }

    #[test]
    fn dilation_widens_by_the_radius_in_x_and_y() {
        let (w, h) = (7usize, 6usize);
        let mut set = vec![false; w * h];
        set[2 * w + 3] = true;
        let out = dilate(&set, w, h, 2);
        let on: Vec<(usize, usize)> = (0..w * h)
            .filter(|&i| out[i])
            .map(|i| (i % w, i / w))
            .collect();
        assert_eq!(on.len(), 25);
        assert!(on.iter().all(|&(x, y)| (1..=5).contains(&x) && y <= 4));
        assert_eq!(dilate(&set, w, h, 0), set);
    }

    #[test]
    fn nothing_usable_gives_none() {
        let img = Image::from_vec(8, 8, vec![-1.0f32; 64]).expect("8×8");
        assert!(estimate_beam_centre(&img, None).is_none());
    }
}
