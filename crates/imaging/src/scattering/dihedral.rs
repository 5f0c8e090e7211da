//! The eight symmetries of a square grid (quarter turns and their mirror images), applied to a
//! tagger input and, exactly, to its Fourier–Bessel features.
//!
//! No scattering tag depends on which way up the detector is, so the taggers train on all eight
//! orientations of every image. Turning the grid turns the pattern around the beam centre as
//! well, so the coefficients need not be fitted again: a turn by θ multiplies cₘₙ by e^{−imθ}
//! and a mirror conjugates it (with a sign (−1)ᵐ for a left–right mirror). For quarter turns
//! these are swaps and sign changes of (Re, Im), which commute with the odd, element-wise
//! compression of the features (`sign(c)·ln(1 + 100|c|)`).

/// A symmetry of the square: first an optional left–right mirror, then `quarter_turns`
/// anticlockwise quarter turns (as seen on screen, rows growing downwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dihedral {
    /// Mirror x → −x about the grid centre first.
    pub mirror: bool,
    /// Anticlockwise quarter turns, 0–3.
    pub quarter_turns: u8,
}

impl Dihedral {
    /// The identity.
    pub const IDENTITY: Dihedral = Dihedral {
        mirror: false,
        quarter_turns: 0,
    };

    /// All eight, identity first.
    pub fn all() -> [Dihedral; 8] {
        std::array::from_fn(|i| Dihedral {
            mirror: i >= 4,
            quarter_turns: (i % 4) as u8,
        })
    }

    /// Where the pixel at column `x`, row `y` of a `side` × `side` grid goes.
    fn map(self, x: usize, y: usize, side: usize) -> (usize, usize) {
        let (mut x, mut y) = (x, y);
        if self.mirror {
            x = side - 1 - x;
        }
        for _ in 0..self.quarter_turns % 4 {
            // (dx, dy) → (dy, −dx) about the centre: χ = atan2(−dy, dx) grows by 90°.
            (x, y) = (y, side - 1 - x);
        }
        (x, y)
    }

    /// The transformed copy of a row-major `side` × `side` grid.
    ///
    /// # Panics
    /// If `grid` does not hold `side²` values (a bug in the caller).
    pub fn apply_grid(self, grid: &[f32], side: usize) -> Vec<f32> {
        assert_eq!(grid.len(), side * side, "grid is not {side} × {side}");
        let mut out = vec![0.0; grid.len()];
        for y in 0..side {
            for x in 0..side {
                let (tx, ty) = self.map(x, y, side);
                out[ty * side + tx] = grid[y * side + x];
            }
        }
        out
    }

    /// Where a point (pixel coordinates, origin at the grid's top-left corner) goes.
    pub fn apply_point(self, x: f64, y: f64, side: usize) -> (f64, f64) {
        let s = side as f64;
        let (mut x, mut y) = (x, y);
        if self.mirror {
            x = s - x;
        }
        for _ in 0..self.quarter_turns % 4 {
            (x, y) = (y, s - x);
        }
        (x, y)
    }

    /// The features of the transformed grid from those of the original: interleaved
    /// (Re, Im) pairs of cₘₙ at pair index `m * n_max + (n − 1)` (`Coefficients::features`
    /// layout), raw or compressed by any odd element-wise function.
    ///
    /// # Panics
    /// If the length is not a multiple of `2 * n_max` (a bug in the caller).
    pub fn apply_features(self, features: &[f32], n_max: usize) -> Vec<f32> {
        assert!(
            n_max > 0 && features.len().is_multiple_of(2 * n_max),
            "{} features are not whole orders of {n_max}",
            features.len()
        );
        let mut out = Vec::with_capacity(features.len());
        for (pair, c) in features.chunks_exact(2).enumerate() {
            let m = pair / n_max;
            let (mut re, mut im) = (c[0], c[1]);
            if self.mirror {
                // c'ₘ = (−1)ᵐ conj(cₘ)
                let sign = if m.is_multiple_of(2) { 1.0 } else { -1.0 };
                (re, im) = (sign * re, -sign * im);
            }
            // c'ₘ = cₘ·(−i)^(m·k)
            (re, im) = match (m * usize::from(self.quarter_turns % 4)) % 4 {
                0 => (re, im),
                1 => (im, -re),
                2 => (-re, -im),
                _ => (-im, re),
            };
            out.extend([re, im]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Image;
    use crate::scattering::FourierBessel;

    /// Three Gaussian spots and a ring around an off-centre beam: no symmetry at all.
    fn pattern(side: usize, beam: (f64, f64)) -> Vec<f32> {
        let spots = [(20.0, 0.3, 5.0), (35.0, 2.0, 3.0), (12.0, -2.2, 8.0)];
        let mut out = vec![0.0; side * side];
        for y in 0..side {
            for x in 0..side {
                let (dx, dy) = (x as f64 + 0.5 - beam.0, y as f64 + 0.5 - beam.1);
                let r = dx.hypot(dy);
                let mut v = 2.0 * (-0.5 * ((r - 28.0) / 2.0).powi(2)).exp();
                for &(sr, chi, amp) in &spots {
                    let (sx, sy) = (sr * f64::cos(chi), -sr * f64::sin(chi));
                    v += amp * (-0.5 * ((dx - sx).powi(2) + (dy - sy).powi(2)) / 4.0).exp();
                }
                out[y * side + x] = v as f32;
            }
        }
        out
    }

    #[test]
    fn transformed_features_equal_the_features_of_the_transformed_grid() {
        let side = 96;
        let beam = (41.3, 52.6);
        let grid = pattern(side, beam);
        let basis = FourierBessel::new(12, 6, 40.0);
        let features = |g: &[f32], b: (f64, f64)| {
            let image = Image::from_vec(side, side, g.to_vec()).expect("square");
            basis.coefficients(&image, None, b.0, b.1).features()
        };
        let original = features(&grid, beam);
        let scale = original.iter().fold(0f32, |a, v| a.max(v.abs()));
        for d in Dihedral::all() {
            let moved = d.apply_grid(&grid, side);
            let (bx, by) = d.apply_point(beam.0, beam.1, side);
            let fitted = features(&moved, (bx, by));
            let predicted = d.apply_features(&original, 12);
            let worst = fitted
                .iter()
                .zip(&predicted)
                .fold(0f32, |a, (f, p)| a.max((f - p).abs()));
            // Quarter turns map pixels onto pixels and the 64 polar sectors onto sectors, so
            // the refit agrees to rounding; an untransformed vector would be off by ~0.3.
            assert!(worst < 1e-4 * scale, "{d:?}: worst {worst}, scale {scale}");
        }
    }

    #[test]
    fn ring_statistics_and_features_are_the_same_for_all_eight_symmetries() {
        // Why training copies them unchanged when it turns or mirrors a sample.
        let side = 96;
        let beam = (41.3, 52.6);
        let grid = pattern(side, beam);
        let open = vec![false; side * side];
        let both = |g: &[f32], b: (f64, f64)| {
            let mut f = crate::scattering::ring_features(g, &open, side, b);
            f.extend(crate::scattering::peak_features(g, &open, side, b));
            f
        };
        let original = both(&grid, beam);
        for d in Dihedral::all() {
            let (bx, by) = d.apply_point(beam.0, beam.1, side);
            let moved = d.apply_grid(&grid, side);
            let turned = both(&moved, (bx, by));
            let worst = turned
                .iter()
                .zip(&original)
                .fold(0f32, |a, (t, o)| a.max((t - o).abs()));
            assert!(worst < 1e-4, "{d:?}: worst {worst}");
        }
    }

    #[test]
    fn the_eight_grids_are_distinct_and_a_full_turn_is_the_identity() {
        let side = 5;
        let grid: Vec<f32> = (0..25).map(|v| v as f32).collect();
        let all: Vec<Vec<f32>> = Dihedral::all()
            .iter()
            .map(|d| d.apply_grid(&grid, side))
            .collect();
        for i in 0..8 {
            for j in i + 1..8 {
                assert_ne!(all[i], all[j], "{i} and {j}");
            }
        }
        let quarter = Dihedral {
            mirror: false,
            quarter_turns: 1,
        };
        let mut g = grid.clone();
        for _ in 0..4 {
            g = quarter.apply_grid(&g, side);
        }
        assert_eq!(g, grid);
        // A point and its pixel move together.
        let (x, y) = quarter.apply_point(1.5, 0.5, side);
        assert_eq!(
            quarter.map(1, 0, side),
            ((x - 0.5) as usize, (y - 0.5) as usize)
        );
    }
}
