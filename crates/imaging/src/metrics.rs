//! Segmentation metrics: pixel accuracy, boundary precision/recall/F1 with a distance tolerance,
//! variation of information (split and merge parts) and the adapted Rand error (CREMI, ISBI 2012).

use std::collections::HashMap;

/// Boundary agreement of a predicted and a true binary mask.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct BoundaryScores {
    /// Fraction of pixels where the masks agree.
    pub pixel_accuracy: f64,
    /// Predicted boundary pixels within the tolerance of a true one, over all predicted.
    pub precision: f64,
    /// True boundary pixels within the tolerance of a predicted one, over all true.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

/// For every pixel, whether a `true` pixel of `mask` lies within Euclidean distance
/// `tolerance_px` (a disk, so the tolerance is isotropic).
pub fn within_distance(mask: &[bool], width: usize, height: usize, tolerance_px: f64) -> Vec<bool> {
    let r = tolerance_px.max(0.0).floor() as isize;
    let r2 = tolerance_px * tolerance_px;
    let offsets: Vec<(isize, isize)> = (-r..=r)
        .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
        .filter(|&(dx, dy)| (dx * dx + dy * dy) as f64 <= r2)
        .collect();
    let mut near = vec![false; width * height];
    for y in 0..height {
        for x in 0..width {
            if !mask[y * width + x] {
                continue;
            }
            for &(dx, dy) in &offsets {
                let (nx, ny) = (x as isize + dx, y as isize + dy);
                if nx >= 0 && ny >= 0 && (nx as usize) < width && (ny as usize) < height {
                    near[ny as usize * width + nx as usize] = true;
                }
            }
        }
    }
    near
}

/// Pixel accuracy and boundary precision/recall/F1 with matching tolerance `tolerance_px`.
/// Empty masks: precision (recall) is 1 when nothing was predicted (nothing was true).
pub fn boundary_scores(
    predicted: &[bool],
    truth: &[bool],
    width: usize,
    height: usize,
    tolerance_px: f64,
) -> BoundaryScores {
    let n = width * height;
    debug_assert_eq!(predicted.len(), n);
    debug_assert_eq!(truth.len(), n);
    let agree = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    let near_truth = within_distance(truth, width, height, tolerance_px);
    let near_pred = within_distance(predicted, width, height, tolerance_px);
    let n_pred = predicted.iter().filter(|&&p| p).count();
    let n_true = truth.iter().filter(|&&t| t).count();
    let tp_pred = (0..n).filter(|&i| predicted[i] && near_truth[i]).count();
    let tp_true = (0..n).filter(|&i| truth[i] && near_pred[i]).count();
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp_pred, n_pred);
    let recall = ratio(tp_true, n_true);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    BoundaryScores {
        pixel_accuracy: agree as f64 / n.max(1) as f64,
        precision,
        recall,
        f1,
    }
}

/// Label-map agreement.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct RegionScores {
    /// H(pred | truth) in bits: over-segmentation (true grains split).
    pub voi_split: f64,
    /// H(truth | pred) in bits: under-segmentation (true grains merged).
    pub voi_merge: f64,
    /// Adapted Rand error, 1 − Rand F-score (0 is perfect).
    pub arand: f64,
}

/// VOI and adapted Rand error between two label maps of the same pixels. Pixels where `truth`
/// is 0 are ignored (label 0 = unlabelled, as in CREMI).
pub fn region_scores(predicted: &[u32], truth: &[u32]) -> RegionScores {
    let mut joint: HashMap<(u32, u32), f64> = HashMap::new();
    let mut n = 0.0;
    for (&p, &t) in predicted.iter().zip(truth) {
        if t == 0 {
            continue;
        }
        *joint.entry((p, t)).or_default() += 1.0;
        n += 1.0;
    }
    if n == 0.0 {
        return RegionScores::default();
    }
    let mut rows: HashMap<u32, f64> = HashMap::new(); // predicted sizes
    let mut cols: HashMap<u32, f64> = HashMap::new(); // true sizes
    for (&(p, t), &c) in &joint {
        *rows.entry(p).or_default() += c;
        *cols.entry(t).or_default() += c;
    }
    let h = |counts: &mut dyn Iterator<Item = f64>| -> f64 {
        counts
            .map(|c| {
                let p = c / n;
                -p * p.log2()
            })
            .sum()
    };
    let h_joint = h(&mut joint.values().copied());
    let h_pred = h(&mut rows.values().copied());
    let h_true = h(&mut cols.values().copied());
    // Rand F-score on pairs (adapted Rand, Arganda-Carreras et al. 2015).
    let sum_sq = |it: &mut dyn Iterator<Item = f64>| it.map(|c| c * c).sum::<f64>();
    let s_joint = sum_sq(&mut joint.values().copied());
    let s_pred = sum_sq(&mut rows.values().copied());
    let s_true = sum_sq(&mut cols.values().copied());
    let precision = s_joint / s_pred;
    let recall = s_joint / s_true;
    RegionScores {
        voi_split: (h_joint - h_true).max(0.0),
        voi_merge: (h_joint - h_pred).max(0.0),
        arand: 1.0 - 2.0 * precision * recall / (precision + recall),
    }
}

/// Average precision of a ranking: the mean, over the positives, of the precision among the
/// items ranked at or above each positive (sklearn's definition without interpolation). Items
/// with equal scores are ranked together. `None` when there are no positives.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len().min(labels.len())).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut sum) = (0usize, 0usize, 0.0);
    let mut k = 0;
    while k < order.len() {
        // A block of tied scores counts as one threshold.
        let mut end = k + 1;
        while end < order.len() && scores[order[end]] == scores[order[k]] {
            end += 1;
        }
        let block_tp = order[k..end].iter().filter(|&&i| labels[i]).count();
        tp += block_tp;
        seen += end - k;
        sum += block_tp as f64 * tp as f64 / seen as f64;
        k = end;
    }
    Some(sum / positives as f64)
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting one half (the Mann–Whitney U statistic over the pair count).
/// `None` without both positives and negatives.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let n = scores.len().min(labels.len());
    let positives = labels[..n].iter().filter(|&&l| l).count();
    let negatives = n - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (tie-averaged, 1-based) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut k = 0;
    while k < n {
        let mut end = k + 1;
        while end < n && scores[order[end]] == scores[order[k]] {
            end += 1;
        }
        let mean_rank = (k + 1 + end) as f64 / 2.0;
        rank_sum += mean_rank * order[k..end].iter().filter(|&&i| labels[i]).count() as f64;
        k = end;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// Precision, recall and F1 of binary decisions against the truth.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BinaryScores {
    /// True positives over predicted positives (1 when nothing is predicted positive).
    pub precision: f64,
    /// True positives over actual positives (1 when there are none).
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
}

/// [`BinaryScores`] of `predicted` against `truth`.
pub fn binary_scores(predicted: &[bool], truth: &[bool]) -> BinaryScores {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&p, &t) in predicted.iter().zip(truth) {
        match (p, t) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    BinaryScores {
        precision,
        recall,
        f1,
    }
}

/// The decision threshold t that maximises F1 of `score > t` against `truth`: the midpoint
/// between two consecutive distinct scores (or just below the lowest, calling everything
/// positive). Of equally good thresholds the highest, which favours precision. `0.5` without
/// positives.
pub fn best_f1_threshold(scores: &[f64], truth: &[bool]) -> f64 {
    let positives = truth.iter().filter(|&&t| t).count();
    if positives == 0 {
        return 0.5;
    }
    let mut order: Vec<(f64, bool)> = scores.iter().copied().zip(truth.iter().copied()).collect();
    // Highest score first; lowering the threshold past each group of equal scores adds them.
    order.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut best = (0.0f64, 0.5f64);
    let mut i = 0;
    while i < order.len() {
        let score = order[i].0;
        while i < order.len() && order[i].0 == score {
            if order[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        // Called positive: everything scoring ≥ `score`; the threshold sits below it.
        let f1 = 2.0 * tp as f64 / (2 * tp + fp + (positives - tp)) as f64;
        if f1 > best.0 + 1e-12 {
            let below = order.get(i).map_or(score - 1e-6, |next| next.0);
            best = (f1, 0.5 * (score + below));
        }
    }
    best.1
}

/// Kernel inception distance between two feature sets as clean-fid computes it: the unbiased
/// squared MMD with the polynomial kernel k(a, b) = (a·b / d + 1)³ (d = feature width) on
/// `subsets` random subsets of min(`subset_size`, |x|, |y|) rows of each, without replacement
/// within a subset. Returns the mean and standard deviation over the subsets; 0 on average for
/// two samples of one distribution. `seed` fixes the subsets. `None` with fewer than two rows
/// on either side or rows of different widths.
pub fn kid(
    x: &[Vec<f32>],
    y: &[Vec<f32>],
    subsets: usize,
    subset_size: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    let d = x.first()?.len();
    if x.len() < 2 || y.len() < 2 || d == 0 || x.iter().chain(y).any(|r| r.len() != d) {
        return None;
    }
    let m = subset_size.min(x.len()).min(y.len()).max(2);
    let k = |a: &[f32], b: &[f32]| {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(&p, &q)| f64::from(p) * f64::from(q))
            .sum();
        (dot / d as f64 + 1.0).powi(3)
    };
    let mut state = seed ^ 0x4B49_445F_5345_4544;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    // The first m of a partial Fisher–Yates shuffle.
    let mut pick = |n: usize| -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..m {
            let j = i + (next() % (n - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx.truncate(m);
        idx
    };
    let mut values = Vec::with_capacity(subsets.max(1));
    for _ in 0..subsets.max(1) {
        let (a, b) = (pick(x.len()), pick(y.len()));
        let within = |rows: &[Vec<f32>], idx: &[usize]| {
            let mut sum = 0.0;
            for (p, &i) in idx.iter().enumerate() {
                for &j in &idx[p + 1..] {
                    sum += k(&rows[i], &rows[j]);
                }
            }
            2.0 * sum / (m * (m - 1)) as f64
        };
        let mut across = 0.0;
        for &i in &a {
            for &j in &b {
                across += k(&x[i], &y[j]);
            }
        }
        values.push(within(x, &a) + within(y, &b) - 2.0 * across / (m * m) as f64);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Some((mean, var.sqrt()))
}

/// Two-point correlation S₂(r) of a binary map (the boundary pixels of a micrograph's
/// segmentation): for r = 0 … `max_r_px`, the probability that two pixels r apart along a row
/// or a column are both set, averaged over the two directions, counting only pairs inside the
/// image (no wrap-around). S₂(0) is the share of set pixels; for an uncorrelated map it falls to
/// its square. Empty for an empty image.
pub fn two_point_correlation(
    mask: &[bool],
    width: usize,
    height: usize,
    max_r_px: usize,
) -> Vec<f64> {
    if width == 0 || height == 0 || mask.len() != width * height {
        return Vec::new();
    }
    (0..=max_r_px)
        .map(|r| {
            let along = |pairs: usize, both: usize| (pairs > 0).then(|| both as f64 / pairs as f64);
            let (mut both_x, mut both_y) = (0usize, 0usize);
            if r < width {
                for y in 0..height {
                    let row = &mask[y * width..(y + 1) * width];
                    both_x += row
                        .iter()
                        .zip(&row[r..])
                        .filter(|(a, b)| **a && **b)
                        .count();
                }
            }
            if r < height {
                both_y = mask
                    .iter()
                    .zip(&mask[r * width..])
                    .filter(|(a, b)| **a && **b)
                    .count();
            }
            let x = along(height * width.saturating_sub(r), both_x);
            let y = along(width * height.saturating_sub(r), both_y);
            match (x, y) {
                (Some(x), Some(y)) => 0.5 * (x + y),
                (Some(v), None) | (None, Some(v)) => v,
                (None, None) => 0.0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_f1_threshold_separates_where_f1_peaks() {
        // Scores 0.9 (T), 0.8 (T), 0.7 (F), 0.6 (T), 0.2 (F).
        let scores = [0.9, 0.8, 0.7, 0.6, 0.2];
        let truth = [true, true, false, true, false];
        // Cut below 0.8: F1 = 2·2/(4 + 0 + 1) = 0.8; below 0.6: 2·3/(6 + 1) = 0.857 (best);
        // below 0.2: 2·3/(6 + 2) = 0.75.
        let t = best_f1_threshold(&scores, &truth);
        assert!((t - 0.4).abs() < 1e-12, "{t}");
        let f1 = binary_scores(&scores.map(|s| s > t), &truth).f1;
        assert!((f1 - 6.0 / 7.0).abs() < 1e-12);
        // Perfectly separated: the midpoint of the gap.
        let t = best_f1_threshold(&[0.1, 0.3, 0.7, 0.9], &[false, false, true, true]);
        assert!((t - 0.5).abs() < 1e-12, "{t}");
        assert_eq!(best_f1_threshold(&[0.3, 0.6], &[false, false]), 0.5);
    }

    #[test]
    fn roc_auc_counts_ordered_pairs_and_half_ties() {
        // Positives 0.9, 0.4; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) → 3/4.
        let auc = roc_auc(&[0.9, 0.5, 0.4, 0.1], &[true, false, true, false]).expect("both");
        assert!((auc - 0.75).abs() < 1e-12, "{auc}");
        // All tied → 1/2; perfect → 1; one class only → None.
        assert_eq!(roc_auc(&[0.3; 4], &[true, false, true, false]), Some(0.5));
        assert_eq!(roc_auc(&[0.9, 0.1], &[true, false]), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.1], &[true, true]), None);
    }

    #[test]
    fn binary_scores_of_a_confusion_table() {
        // tp 2, fp 1, fn 1 → precision 2/3, recall 2/3, f1 2/3.
        let s = binary_scores(
            &[true, true, true, false, false],
            &[true, true, false, true, false],
        );
        assert!((s.precision - 2.0 / 3.0).abs() < 1e-12 && (s.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.f1 - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn average_precision_matches_a_hand_computed_ranking() {
        // Ranked: +, −, +, −, +  → precisions at the positives 1/1, 2/3, 3/5.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5];
        let labels = [true, false, true, false, true];
        let ap = average_precision(&scores, &labels).expect("positives");
        assert!((ap - (1.0 + 2.0 / 3.0 + 0.6) / 3.0).abs() < 1e-12, "{ap}");
        // Perfect ranking → 1; no positives → None; all tied → prevalence.
        assert_eq!(average_precision(&[0.2, 0.1], &[true, false]), Some(1.0));
        assert_eq!(average_precision(&[0.2, 0.1], &[false, false]), None);
        assert_eq!(
            average_precision(&[0.5; 4], &[true, false, false, false]),
            Some(0.25)
        );
    }

    fn line(width: usize, height: usize, column: usize) -> Vec<bool> {
        (0..width * height).map(|i| i % width == column).collect()
    }

    #[test]
    fn boundary_tolerance_counts_shifted_lines() {
        let (w, h) = (20, 10);
        let truth = line(w, h, 8);
        let exact = boundary_scores(&truth, &truth, w, h, 2.0);
        assert_eq!(exact.f1, 1.0);
        assert_eq!(exact.pixel_accuracy, 1.0);
        // Two pixels off: inside the tolerance, but every pixel of both lines is wrong.
        let shifted = boundary_scores(&line(w, h, 10), &truth, w, h, 2.0);
        assert_eq!(shifted.f1, 1.0);
        assert!((shifted.pixel_accuracy - 0.9).abs() < 1e-12);
        // Three pixels off: outside.
        assert_eq!(boundary_scores(&line(w, h, 11), &truth, w, h, 2.0).f1, 0.0);
        // Rows 5–9 missing: rows 5 and 6 are within 2 px of row 4, so recall is 7/10.
        let half: Vec<bool> = truth
            .iter()
            .enumerate()
            .map(|(i, &t)| t && i < w * 5)
            .collect();
        let s = boundary_scores(&half, &truth, w, h, 2.0);
        assert_eq!(s.precision, 1.0);
        assert!((s.recall - 0.7).abs() < 1e-12);
        assert!((s.f1 - 1.4 / 1.7).abs() < 1e-12);
    }

    #[test]
    fn region_scores_of_identical_maps_are_zero() {
        let t: Vec<u32> = (0..100).map(|i| 1 + (i / 25) as u32).collect();
        let p: Vec<u32> = t.iter().map(|&v| v + 10).collect();
        let s = region_scores(&p, &t);
        assert!(s.voi_split.abs() < 1e-12 && s.voi_merge.abs() < 1e-12 && s.arand.abs() < 1e-12);
    }

    #[test]
    fn splitting_and_merging_show_in_their_own_terms() {
        // Truth: two equal halves. Split each in two: VOI split = 1 bit, merge 0.
        let t: Vec<u32> = (0..8).map(|i| if i < 4 { 1 } else { 2 }).collect();
        let split: Vec<u32> = (0..8).map(|i| i / 2).collect();
        let s = region_scores(&split, &t);
        assert!((s.voi_split - 1.0).abs() < 1e-12 && s.voi_merge.abs() < 1e-12);
        // Rand: pairs (with self-pairs) 4·2² = 16 joint, 2·4² = 32 true, 16 predicted:
        // precision 1, recall 0.5, F = 2/3.
        assert!((s.arand - 1.0 / 3.0).abs() < 1e-12);
        let merged = vec![5u32; 8];
        let m = region_scores(&merged, &t);
        assert!((m.voi_merge - 1.0).abs() < 1e-12 && m.voi_split.abs() < 1e-12);
        assert!((m.arand - 1.0 / 3.0).abs() < 1e-12);
        // Unlabelled truth pixels are ignored.
        let mut t0 = t.clone();
        t0[0] = 0;
        assert!(region_scores(&t, &t0).arand.abs() < 1e-12);
    }

    #[test]
    fn kid_is_near_zero_for_one_distribution_and_grows_with_a_shift() {
        // Deterministic pseudo-random rows: 2-D, coordinates in [−1, 1].
        let rows = |n: usize, shift: f32, salt: u32| -> Vec<Vec<f32>> {
            (0..n as u32)
                .map(|i| {
                    let h = |k: u32| {
                        let v = (i.wrapping_mul(2_654_435_761) ^ k.wrapping_mul(40_503) ^ salt)
                            .wrapping_mul(2_246_822_519);
                        (v >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
                    };
                    vec![h(1) + shift, h(2)]
                })
                .collect()
        };
        let a = rows(300, 0.0, 1);
        let b = rows(300, 0.0, 77);
        let c = rows(300, 1.0, 5);
        let (same, same_std) = kid(&a, &b, 20, 200, 0).expect("kid");
        let (shifted, _) = kid(&a, &c, 20, 200, 0).expect("kid");
        assert!(same.abs() < 3.0 * same_std.max(1e-3), "{same} ± {same_std}");
        assert!(shifted > 0.1, "{shifted}");
        assert!(kid(&a[..1], &b, 1, 10, 0).is_none());
    }

    #[test]
    fn two_point_correlation_of_a_checkerboard_and_of_random_pixels() {
        // One-pixel checkerboard: a set pixel's neighbours r away along an axis are set iff r
        // is even, so S₂ = ½, 0, ½, 0, … exactly.
        let (w, h) = (40, 30);
        let board: Vec<bool> = (0..w * h).map(|i| (i % w + i / w) % 2 == 1).collect();
        let s2 = two_point_correlation(&board, w, h, 6);
        for (r, v) in s2.iter().enumerate() {
            let want = if r % 2 == 0 { 0.5 } else { 0.0 };
            assert!((v - want).abs() < 1e-12, "r = {r}: {v}");
        }
        // Independent pixels set with probability p: S₂(0) = p, S₂(r > 0) = p².
        let (w, h, p) = (300, 300, 0.3);
        let mut state = 12345u64;
        let random: Vec<bool> = (0..w * h)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 11) as f64 / (1u64 << 53) as f64) < p
            })
            .collect();
        let s2 = two_point_correlation(&random, w, h, 5);
        assert!((s2[0] - p).abs() < 0.01, "{}", s2[0]);
        for v in &s2[1..] {
            assert!((v - p * p).abs() < 0.005, "{v}");
        }
        // Beyond both sides nothing pairs up.
        assert_eq!(two_point_correlation(&[true; 4], 2, 2, 3)[3], 0.0);
        assert!(two_point_correlation(&[], 0, 0, 3).is_empty());
    }
}
