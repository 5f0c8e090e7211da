//! Grains from a boundary mask, and their statistics: equivalent-circle diameters, a lognormal
//! fit and the ASTM E112 grain size number by the planimetric (Jeffries) and intercept (Heyn)
//! procedures.

use std::collections::VecDeque;

/// Grain labels of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct GrainLabels {
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Grain id per pixel, 1…=`count`; after [`label_grains`] boundary pixels are 0, after
    /// [`GrainLabels::filled`] every pixel belongs to a grain.
    pub ids: Vec<u32>,
    /// Number of grains.
    pub count: usize,
}

/// Grains are the 4-connected regions of non-boundary pixels; regions smaller than
/// `min_area_px` (specks of noise inside a boundary) count as boundary.
pub fn label_grains(
    boundary: &[bool],
    width: usize,
    height: usize,
    min_area_px: usize,
) -> GrainLabels {
    let n = width * height;
    let mut ids = vec![0u32; n];
    let mut count = 0u32;
    for start in 0..n {
        if boundary[start] || ids[start] != 0 {
            continue;
        }
        count += 1;
        ids[start] = count;
        let region = crate::regions::grow_4(width, height, &[start], |j| {
            let join = !boundary[j] && ids[j] == 0;
            if join {
                ids[j] = count;
            }
            join
        });
        if region.len() < min_area_px {
            for &k in &region {
                ids[k] = 0;
            }
            count -= 1;
        }
    }
    GrainLabels {
        width,
        height,
        ids,
        count: count as usize,
    }
}

impl GrainLabels {
    /// Every boundary pixel given the id of its nearest grain (breadth-first from the grains,
    /// 4-neighbourhood), so grain areas include their share of the boundaries as the ground
    /// truth maps do. An image without any grain stays all 0.
    pub fn filled(&self) -> GrainLabels {
        let mut ids = self.ids.clone();
        let mut queue: VecDeque<usize> = (0..ids.len()).filter(|&k| ids[k] != 0).collect();
        let (w, h) = (self.width, self.height);
        while let Some(k) = queue.pop_front() {
            let (x, y) = (k % w, k / w);
            let id = ids[k];
            for (ok, j) in [
                (x > 0, k.wrapping_sub(1)),
                (x + 1 < w, k + 1),
                (y > 0, k.wrapping_sub(w)),
                (y + 1 < h, k + w),
            ] {
                if ok && ids[j] == 0 {
                    ids[j] = id;
                    queue.push_back(j);
                }
            }
        }
        GrainLabels {
            ids,
            ..self.clone()
        }
    }

    /// Pixel area of every grain, index `id − 1`.
    pub fn areas_px(&self) -> Vec<usize> {
        let mut areas = vec![0usize; self.count];
        for &id in &self.ids {
            if id > 0 {
                areas[id as usize - 1] += 1;
            }
        }
        areas
    }

    /// Whether each grain touches the image border, index `id − 1`.
    pub fn touches_border(&self) -> Vec<bool> {
        let mut edge = vec![false; self.count];
        let (w, h) = (self.width, self.height);
        for (k, &id) in self.ids.iter().enumerate() {
            let (x, y) = (k % w, k / w);
            if id > 0 && (x == 0 || y == 0 || x + 1 == w || y + 1 == h) {
                edge[id as usize - 1] = true;
            }
        }
        edge
    }
}

/// Equivalent-circle diameter of an area: the diameter of the circle of the same area.
pub fn ecd(area: f64) -> f64 {
    2.0 * (area / std::f64::consts::PI).sqrt()
}

/// Grain statistics of one image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GrainStats {
    /// Image width in pixels.
    pub width_px: usize,
    /// Image height in pixels.
    pub height_px: usize,
    /// Pixel size in nanometres, when known.
    pub pixel_size_nm: Option<f64>,
    /// Number of grains (border grains included).
    pub grain_count: usize,
    /// Grains touching the image border.
    pub border_grain_count: usize,
    /// Equivalent-circle diameter of every grain, pixels.
    pub ecd_px: Vec<f64>,
    /// Mean equivalent-circle diameter, pixels.
    pub mean_ecd_px: f64,
    /// Median equivalent-circle diameter, pixels.
    pub median_ecd_px: f64,
    /// Mean and median in nanometres, when the pixel size is known.
    pub mean_ecd_nm: Option<f64>,
    /// Median equivalent-circle diameter in nanometres.
    pub median_ecd_nm: Option<f64>,
    /// Lognormal fit of the diameters (maximum likelihood): mean of ln(ECD / px).
    pub lognormal_mu: f64,
    /// Standard deviation of ln(ECD).
    pub lognormal_sigma: f64,
    /// Jeffries grain density: (inside + ½ border grains) per pixel area.
    pub grains_per_px2: f64,
    /// Boundary intercepts per pixel of test line (Heyn).
    pub intercepts_per_px: f64,
    /// Mean lineal intercept length in pixels (1 / `intercepts_per_px`).
    pub mean_intercept_px: f64,
    /// ASTM E112 G from the planimetric procedure (needs the pixel size).
    pub astm_g_planimetric: Option<f64>,
    /// ASTM E112 G from the intercept procedure (needs the pixel size).
    pub astm_g_intercept: Option<f64>,
}

/// ASTM E112: G = 3.321928·log₁₀(N_A) − 2.954, N_A grains per mm² at 1×
/// (3.321928 = log₂ 10: G counts doublings of the grain density).
pub fn astm_g_from_area_density(grains_per_mm2: f64) -> f64 {
    std::f64::consts::LOG2_10 * grains_per_mm2.log10() - 2.954
}

/// ASTM E112: G = 6.643856·log₁₀(N_L) − 3.288, N_L intercepts per mm at 1× (6.643856 = 2·log₂ 10).
pub fn astm_g_from_intercepts(intercepts_per_mm: f64) -> f64 {
    2.0 * std::f64::consts::LOG2_10 * intercepts_per_mm.log10() - 3.288
}

/// Boundary crossings along evenly spaced horizontal and vertical test lines (5 each, avoiding
/// the outer 10 %): a run of boundary pixels counts once. Returns (intercepts, line length px).
pub fn line_intercepts(boundary: &[bool], width: usize, height: usize) -> (usize, usize) {
    let mut crossings = 0;
    let mut length = 0;
    let mut count_runs = |pixels: &mut dyn Iterator<Item = bool>| {
        let mut inside = false;
        for b in pixels {
            if b && !inside {
                crossings += 1;
            }
            inside = b;
            length += 1;
        }
    };
    for i in 0..5 {
        let y = ((0.1 + 0.2 * i as f64) * height as f64) as usize;
        count_runs(&mut (0..width).map(|x| boundary[y.min(height - 1) * width + x]));
        let x = ((0.1 + 0.2 * i as f64) * width as f64) as usize;
        count_runs(&mut (0..height).map(|y| boundary[y * width + x.min(width - 1)]));
    }
    (crossings, length)
}

/// Statistics of the grains of a boundary mask. `pixel_size_nm` converts to physical units and
/// enables the ASTM grain size numbers.
pub fn grain_stats(
    boundary: &[bool],
    labels: &GrainLabels,
    pixel_size_nm: Option<f64>,
) -> GrainStats {
    let (w, h) = (labels.width, labels.height);
    let filled = labels.filled();
    let areas = filled.areas_px();
    let border = filled.touches_border();
    let mut ecd_px: Vec<f64> = areas.iter().map(|&a| ecd(a as f64)).collect();
    let count = ecd_px.len();
    let mean = if count > 0 {
        ecd_px.iter().sum::<f64>() / count as f64
    } else {
        0.0
    };
    let median = {
        let mut s = ecd_px.clone();
        s.sort_by(f64::total_cmp);
        match s.len() {
            0 => 0.0,
            n if n % 2 == 1 => s[n / 2],
            n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
        }
    };
    let logs: Vec<f64> = ecd_px
        .iter()
        .filter(|&&d| d > 0.0)
        .map(|d| d.ln())
        .collect();
    let mu = if logs.is_empty() {
        0.0
    } else {
        logs.iter().sum::<f64>() / logs.len() as f64
    };
    let sigma = if logs.len() > 1 {
        (logs.iter().map(|l| (l - mu).powi(2)).sum::<f64>() / logs.len() as f64).sqrt()
    } else {
        0.0
    };
    let n_border = border.iter().filter(|&&b| b).count();
    let jeffries = (count - n_border) as f64 + 0.5 * n_border as f64;
    let grains_per_px2 = jeffries / (w * h) as f64;
    let (crossings, length) = line_intercepts(boundary, w, h);
    let intercepts_per_px = crossings as f64 / length.max(1) as f64;
    let mm_per_px = pixel_size_nm.filter(|&p| p > 0.0).map(|p| p * 1e-6);
    ecd_px.shrink_to_fit();
    GrainStats {
        width_px: w,
        height_px: h,
        pixel_size_nm,
        grain_count: count,
        border_grain_count: n_border,
        mean_ecd_px: mean,
        median_ecd_px: median,
        mean_ecd_nm: pixel_size_nm.map(|p| mean * p),
        median_ecd_nm: pixel_size_nm.map(|p| median * p),
        lognormal_mu: mu,
        lognormal_sigma: sigma,
        grains_per_px2,
        intercepts_per_px,
        mean_intercept_px: if crossings > 0 {
            length as f64 / crossings as f64
        } else {
            f64::INFINITY
        },
        astm_g_planimetric: mm_per_px
            .filter(|_| grains_per_px2 > 0.0)
            .map(|m| astm_g_from_area_density(grains_per_px2 / (m * m))),
        astm_g_intercept: mm_per_px
            .filter(|_| intercepts_per_px > 0.0)
            .map(|m| astm_g_from_intercepts(intercepts_per_px / m)),
        ecd_px,
    }
}

/// Marks the pixels of the segment from `a` to `b` on a `width × height` boundary mask
/// (row-major), 4-connected so that a drawn outline encloses a grain as [`label_grains`] sees
/// it; the parts outside the mask are dropped.
pub fn draw_boundary_line(
    mask: &mut [bool],
    (width, height): (usize, usize),
    a: (i64, i64),
    b: (i64, i64),
) {
    let (mut x, mut y) = a;
    let (dx, dy) = ((b.0 - x).abs(), -(b.1 - y).abs());
    let (sx, sy) = (if x < b.0 { 1 } else { -1 }, if y < b.1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        if (0..width as i64).contains(&x)
            && (0..height as i64).contains(&y)
            && let Some(p) = mask.get_mut(y as usize * width + x as usize)
        {
            *p = true;
        }
        if (x, y) == b {
            break;
        }
        // One axis per step: a diagonal step would leave a gap between 4-neighbours.
        if 2 * err - dy > dx - 2 * err {
            err += dy;
            x += sx;
        } else {
            err += dx;
            y += sy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 40 × 30 image cut into a 4 × 3 grid of 10 × 10 cells by 1-px lines at x, y ≡ 9 (mod 10).
    fn grid() -> (Vec<bool>, usize, usize) {
        let (w, h) = (40, 30);
        let b = (0..w * h)
            .map(|k| (k % w) % 10 == 9 || (k / w) % 10 == 9)
            .collect();
        (b, w, h)
    }

    #[test]
    fn grid_cells_are_grains_and_filling_gives_them_their_boundaries() {
        let (b, w, h) = grid();
        let labels = label_grains(&b, w, h, 1);
        assert_eq!(labels.count, 12);
        assert!(labels.areas_px().iter().all(|&a| a == 81));
        let filled = labels.filled();
        assert!(filled.ids.iter().all(|&id| id > 0));
        assert_eq!(filled.areas_px().iter().sum::<usize>(), w * h);
        assert!(filled.areas_px().iter().all(|&a| (81..=110).contains(&a)));
    }

    #[test]
    fn specks_below_the_minimum_area_become_boundary() {
        let (mut b, w, h) = grid();
        // A 2-pixel hole in a boundary thickened to rows 9–12: 2 px < 4 px minimum.
        for x in 0..w {
            for y in 10..=12 {
                b[y * w + x] = true;
            }
        }
        b[10 * w + 5] = false;
        b[11 * w + 5] = false;
        let with_speck = label_grains(&b, w, h, 1);
        let without = label_grains(&b, w, h, 4);
        assert_eq!(with_speck.count, without.count + 1);
        assert_eq!(without.ids[10 * w + 5], 0);
    }

    #[test]
    fn stats_of_the_grid_match_hand_counts() {
        let (b, w, h) = grid();
        let s = grain_stats(&b, &label_grains(&b, w, h, 1), Some(100.0));
        assert_eq!(s.grain_count, 12);
        // Only the two middle cells of the 4 × 3 grid stay clear of the image border.
        assert_eq!(s.border_grain_count, 10);
        assert!(
            (s.median_ecd_px - ecd(100.0)).abs() < 1.0,
            "{}",
            s.median_ecd_px
        );
        // Jeffries: 2 inside + 10 / 2 = 7 grains over 1200 px².
        assert!((s.grains_per_px2 - 7.0 / 1200.0).abs() < 1e-12);
        // Pixel 100 nm = 1e-4 mm: N_A = 7 / (1200 · 1e-8) mm⁻².
        let g = astm_g_from_area_density(7.0 / 1200.0 / 1e-8);
        assert!((s.astm_g_planimetric.unwrap_or(0.0) - g).abs() < 1e-9);
        assert!(s.astm_g_intercept.is_some());
        assert!((s.lognormal_sigma).abs() < 0.1);
    }

    #[test]
    fn astm_constants_reproduce_table_values() {
        // ASTM E112 Table 4 rows: G = 1 ↔ N_A = 15.50 /mm²; G = 8 ↔ N_A = 1984.0 /mm² and
        // N_L = 50.0 /mm; G = 0 ↔ mean intercept 0.32 mm (N_L = 3.125 /mm).
        assert!((astm_g_from_area_density(15.50) - 1.0).abs() < 0.01);
        assert!((astm_g_from_area_density(1984.0) - 8.0).abs() < 0.01);
        assert!((astm_g_from_intercepts(50.0) - 8.0).abs() < 0.01);
        assert!(astm_g_from_intercepts(3.125).abs() < 0.01);
    }

    #[test]
    fn intercepts_count_each_crossing_once() {
        let (b, w, h) = grid();
        let (n, len) = line_intercepts(&b, w, h);
        // Horizontal test lines at y = 3, 9, 15, 21, 27: y = 9 runs along a boundary (one run),
        // the others cross the lines at x = 9, 19, 29, 39. Vertical test lines at x = 4, 12, 20,
        // 28, 36 cross y = 9, 19, 29.
        assert_eq!(len, 5 * w + 5 * h);
        assert_eq!(n, 4 * 4 + 1 + 5 * 3);
    }

    #[test]
    fn drawn_lines_are_four_connected_and_close_grains() {
        let (w, h) = (20, 12);
        let mut m = vec![false; w * h];
        draw_boundary_line(&mut m, (w, h), (2, 3), (9, 7));
        assert!(m[3 * w + 2] && m[7 * w + 9]);
        // 4-connected: |dx| + |dy| + 1 pixels.
        assert_eq!(m.iter().filter(|&&b| b).count(), 7 + 4 + 1);
        // A diagonal line splits the image into two grains.
        let mut d = vec![false; w * h];
        draw_boundary_line(&mut d, (w, h), (0, 0), (11, 11));
        assert_eq!(label_grains(&d, w, h, 1).count, 2);
        // Off-mask parts are dropped, not wrapped.
        let mut n = vec![false; w * h];
        draw_boundary_line(&mut n, (w, h), (-5, 0), (1, 0));
        assert_eq!(n.iter().filter(|&&b| b).count(), 2);
    }
}
