//! Small dense least squares: normal equations solved by Cholesky, with a ridge for rank
//! deficiency (a masked region can leave a basis function unconstrained).

/// Accumulates the normal equations `AᵀWA x = AᵀWb` of a weighted least-squares problem with
/// `k` unknowns, one row at a time.
pub(crate) struct NormalEquations {
    k: usize,
    /// `AᵀWA`, row-major `k × k` (only the lower triangle is accumulated).
    ata: Vec<f64>,
    /// `AᵀWb`.
    atb: Vec<f64>,
    /// Rows added.
    pub rows: usize,
}

impl NormalEquations {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            ata: vec![0.0; k * k],
            atb: vec![0.0; k],
            rows: 0,
        }
    }

    /// Adds the row `a` with target `b` and weight `w`.
    pub fn add(&mut self, a: &[f64], b: f64, w: f64) {
        debug_assert_eq!(a.len(), self.k);
        for i in 0..self.k {
            let wai = w * a[i];
            if wai == 0.0 {
                continue;
            }
            self.atb[i] += wai * b;
            let row = &mut self.ata[i * self.k..i * self.k + i + 1];
            for (j, v) in row.iter_mut().enumerate() {
                *v += wai * a[j];
            }
        }
        self.rows += 1;
    }

    /// Solves with a ridge of `ridge` times the mean diagonal added to the diagonal. `None`
    /// when there is nothing to fit (no rows, or an all-zero system).
    pub fn solve(mut self, ridge: f64) -> Option<Vec<f64>> {
        let k = self.k;
        let mean_diag = (0..k).map(|i| self.ata[i * k + i]).sum::<f64>() / k.max(1) as f64;
        if self.rows == 0 || mean_diag <= 0.0 || !mean_diag.is_finite() {
            return None;
        }
        for i in 0..k {
            self.ata[i * k + i] += ridge * mean_diag;
        }
        cholesky_solve(&mut self.ata, &mut self.atb, k)?;
        Some(self.atb)
    }
}

/// Solves `M x = b` in place for symmetric positive definite `M` (lower triangle used);
/// `b` becomes `x`. `None` if `M` is not positive definite.
fn cholesky_solve(m: &mut [f64], b: &mut [f64], k: usize) -> Option<()> {
    // M = L Lᵀ, L stored in the lower triangle of m.
    for j in 0..k {
        let mut d = m[j * k + j];
        for p in 0..j {
            d -= m[j * k + p] * m[j * k + p];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        m[j * k + j] = d;
        for i in j + 1..k {
            let mut s = m[i * k + j];
            for p in 0..j {
                s -= m[i * k + p] * m[j * k + p];
            }
            m[i * k + j] = s / d;
        }
    }
    // L y = b, then Lᵀ x = y.
    for i in 0..k {
        let mut s = b[i];
        for p in 0..i {
            s -= m[i * k + p] * b[p];
        }
        b[i] = s / m[i * k + i];
    }
    for i in (0..k).rev() {
        let mut s = b[i];
        for p in i + 1..k {
            s -= m[p * k + i] * b[p];
        }
        b[i] = s / m[i * k + i];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_line_exactly() {
        // y = 2 + 3x at x = 0..5.
        let mut ne = NormalEquations::new(2);
        for x in 0..5 {
            let x = f64::from(x);
            ne.add(&[1.0, x], 2.0 + 3.0 * x, 1.0);
        }
        let c = ne.solve(0.0).expect("well posed");
        assert!(
            (c[0] - 2.0).abs() < 1e-10 && (c[1] - 3.0).abs() < 1e-10,
            "{c:?}"
        );
    }

    #[test]
    fn ridge_makes_a_rank_deficient_system_solvable() {
        // Two identical columns: any split of 4 fits; the ridge picks the even one.
        let mut ne = NormalEquations::new(2);
        for _ in 0..3 {
            ne.add(&[1.0, 1.0], 4.0, 1.0);
        }
        assert!(NormalEquations::new(2).solve(1e-9).is_none());
        let c = ne.solve(1e-9).expect("ridge");
        assert!(
            (c[0] - 2.0).abs() < 1e-6 && (c[1] - 2.0).abs() < 1e-6,
            "{c:?}"
        );
    }
}
