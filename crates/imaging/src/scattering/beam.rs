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
//! The search runs on a pyramid: every candidate on a copy binned to at most 64 px a side (the
//! centre may lie up to 10 % beyond the image, as on real detectors with the beam near an edge),
//! then a few half-pixel steps around the best one at each finer level, then quarter pixels at
//! full resolution with a parabola through the best score and its neighbours. Anisotropic
//! patterns keep their angular variance at every candidate, so the minimum stays at the centre.

use crate::Image;

/// Longest side of the coarsest level.
const COARSE_SIDE_PX: usize = 64;
/// How far beyond the image (fraction of its size) the coarse search looks.
const BEYOND: f64 = 0.1;
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

/// Values ln(1 + I) of valid pixels at given pixel-centre positions.
struct Samples {
    x: Vec<f64>,
    y: Vec<f64>,
    v: Vec<f64>,
}

impl Samples {
    /// Within-ring variance (per degree of freedom) around (cx, cy) with rings `ring_px` wide;
    /// also the fraction of the variance explained.
    fn score(&self, cx: f64, cy: f64, ring_px: f64, bins: &mut Vec<(f64, f64, u32)>) -> (f64, f64) {
        bins.clear();
        for ((&x, &y), &v) in self.x.iter().zip(&self.y).zip(&self.v) {
            let k = ((x - cx).hypot(y - cy) / ring_px) as usize;
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
fn level(g: &[f64], valid: &[bool], w: usize, h: usize, bin: usize, stride: usize) -> Samples {
    let (bw, bh) = (w.div_ceil(bin), h.div_ceil(bin));
    let mut sum = vec![0.0; bw * bh];
    let mut n = vec![0usize; bw * bh];
    let mut tot = vec![0usize; bw * bh];
    for y in 0..h {
        for x in 0..w {
            let c = (y / bin) * bw + x / bin;
            tot[c] += 1;
            if valid[y * w + x] {
                sum[c] += g[y * w + x];
                n[c] += 1;
            }
        }
    }
    let ok: Vec<bool> = (0..bw * bh)
        .map(|c| n[c] > 0 && n[c] * 2 >= tot[c])
        .collect();
    let v: Vec<f64> = (0..bw * bh)
        .map(|c| if ok[c] { sum[c] / n[c] as f64 } else { 0.0 })
        .collect();
    let smooth = masked_box_mean(&v, &ok, bw, bh, HIGH_PASS_CELLS);
    let mut s = Samples {
        x: Vec::new(),
        y: Vec::new(),
        v: Vec::new(),
    };
    for c in (0..bw * bh).filter(|&c| ok[c]).step_by(stride.max(1)) {
        let (bx, by) = (c % bw, c / bw);
        // Centre of the block's pixels (edge blocks may be narrower).
        s.x.push((bx * bin + ((bx + 1) * bin).min(w)) as f64 / 2.0);
        s.y.push((by * bin + ((by + 1) * bin).min(h)) as f64 / 2.0);
        s.v.push(v[c] - smooth[c]);
    }
    s
}

/// Mean of the valid cells in the (2r+1)² box around each cell, by summed-area tables.
fn masked_box_mean(v: &[f64], ok: &[bool], w: usize, h: usize, r: usize) -> Vec<f64> {
    let (sw, sh) = (w + 1, h + 1);
    let mut sv = vec![0.0; sw * sh];
    let mut sn = vec![0.0; sw * sh];
    for y in 0..h {
        for x in 0..w {
            let i = (y + 1) * sw + x + 1;
            let (a, b) = if ok[y * w + x] {
                (v[y * w + x], 1.0)
            } else {
                (0.0, 0.0)
            };
            sv[i] = a + sv[i - 1] + sv[i - sw] - sv[i - sw - 1];
            sn[i] = b + sn[i - 1] + sn[i - sw] - sn[i - sw - 1];
        }
    }
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let rect =
                |t: &[f64]| t[y1 * sw + x1] - t[y0 * sw + x1] - t[y1 * sw + x0] + t[y0 * sw + x0];
            let n = rect(&sn);
            out[y * w + x] = if n > 0.0 { rect(&sv) / n } else { 0.0 };
        }
    }
    out
}

/// Estimates the beam centre of `image`, leaving out pixels where `mask` is `true` and
/// negative or non-finite ones. `None` when fewer than 64 pixels are usable.
pub fn estimate_beam_centre(image: &Image<f32>, mask: Option<&[bool]>) -> Option<BeamCentre> {
    let (w, h) = (image.width(), image.height());
    let (g, valid): (Vec<f64>, Vec<bool>) = image
        .pixels()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ok = v.is_finite() && v >= 0.0 && !mask.is_some_and(|m| m[i]);
            (if ok { f64::from(v).ln_1p() } else { 0.0 }, ok)
        })
        .unzip();
    let n_valid = valid.iter().filter(|&&v| v).count();
    if n_valid < 64 {
        return None;
    }
    let mut bins = Vec::new();
    // Coarse: every candidate on the binned grid (one binned pixel apart).
    let mut bin = w.max(h).div_ceil(COARSE_SIDE_PX).max(1);
    let coarse = level(&g, &valid, w, h, bin, 1);
    if coarse.v.len() < 16 {
        return None;
    }
    let step = bin as f64;
    let (mut best_x, mut best_y, mut best) = (0.0, 0.0, f64::INFINITY);
    let span = |size: usize| {
        let lo = -BEYOND * size as f64;
        let n = ((1.0 + 2.0 * BEYOND) * size as f64 / step).ceil() as usize;
        (0..=n).map(move |k| lo + k as f64 * step)
    };
    for cy in span(h) {
        for cx in span(w) {
            let (s, _) = coarse.score(cx, cy, step, &mut bins);
            if s < best {
                (best_x, best_y, best) = (cx, cy, s);
            }
        }
    }
    // Finer levels: half-bin steps within ±1.5 bins of the previous best.
    while bin > 1 {
        bin = bin.div_ceil(2);
        let samples = level(&g, &valid, w, h, bin, 1);
        let step = bin as f64 / 2.0;
        let (cx0, cy0) = (best_x, best_y);
        best = f64::INFINITY;
        for dy in -6..=6 {
            for dx in -6..=6 {
                let (cx, cy) = (cx0 + f64::from(dx) * step, cy0 + f64::from(dy) * step);
                let (s, _) = samples.score(cx, cy, bin as f64, &mut bins);
                if s < best {
                    (best_x, best_y, best) = (cx, cy, s);
                }
            }
        }
    }
    // Full resolution, quarter pixels, on a regular subsample of the valid pixels.
    let stride = (n_valid / FINE_SAMPLES).max(1);
    let fine = level(&g, &valid, w, h, 1, stride);
    const R: i32 = 4;
    const STEP: f64 = 0.25;
    let side = (2 * R + 1) as usize;
    let mut grid = vec![f64::INFINITY; side * side];
    let (cx0, cy0) = (best_x, best_y);
    let (mut gx, mut gy) = (R as usize, R as usize);
    best = f64::INFINITY;
    for dy in -R..=R {
        for dx in -R..=R {
            let (s, _) = fine.score(
                cx0 + f64::from(dx) * STEP,
                cy0 + f64::from(dy) * STEP,
                1.0,
                &mut bins,
            );
            let (ix, iy) = ((dx + R) as usize, (dy + R) as usize);
            grid[iy * side + ix] = s;
            if s < best {
                (gx, gy, best) = (ix, iy, s);
            }
        }
    }
    let offset = |a: f64, b: f64, c: f64| {
        let den = a - 2.0 * b + c;
        if a.is_finite() && c.is_finite() && den > 0.0 {
            (0.5 * (a - c) / den).clamp(-0.5, 0.5)
        } else {
            0.0
        }
    };
    let at = |x: usize, y: usize| grid[y * side + x];
    let fx = if gx > 0 && gx + 1 < side {
        offset(at(gx - 1, gy), best, at(gx + 1, gy))
    } else {
        0.0
    };
    let fy = if gy > 0 && gy + 1 < side {
        offset(at(gx, gy - 1), best, at(gx, gy + 1))
    } else {
        0.0
    };
    let x_px = cx0 + (gx as f64 - f64::from(R) + fx) * STEP;
    let y_px = cy0 + (gy as f64 - f64::from(R) + fy) * STEP;
    let (_, explained) = fine.score(x_px, y_px, 1.0, &mut bins);
    Some(BeamCentre {
        x_px,
        y_px,
        explained,
    })
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
        for (cx, cy, fold) in [
            (212.3, 190.8, None),
            (260.6, 231.2, Some(6)),
            (150.0, 275.5, Some(4)),
            // Beyond the left edge, as on a detector offset for wide angles.
            (-18.4, 200.7, None),
        ] {
            let img = pattern(420, 400, cx, cy, fold);
            let b = estimate_beam_centre(&img, None).expect("usable");
            assert!(
                (b.x_px - cx).abs() < 0.3 && (b.y_px - cy).abs() < 0.3,
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
    fn nothing_usable_gives_none() {
        let img = Image::from_vec(8, 8, vec![-1.0f32; 64]).expect("8×8");
        assert!(estimate_beam_centre(&img, None).is_none());
    }
}
