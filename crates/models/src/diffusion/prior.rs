//! The latent-variable baseline beside the diffusion model: images decoded from random latents
//! of a Gaussian prior (seed 004's VAE baseline).
//!
//! The generator has no learnt autoencoder (the polar grid is an exact analytic encoder), so the
//! baseline is the linear-Gaussian latent model: probabilistic PCA (Tipping & Bishop 1999), which
//! is what a VAE with a linear decoder converges to (Lucas et al. 2019), on the same polar grid,
//! with its mean conditioned linearly on the tags. Decoding a latent z ~ N(0, I) gives
//! `x = μ(tags) + W·z` (the decoder's mean, as VAE samples are shown), clipped to the grid's
//! value range [−1, 1].
//!
//! Fitting: the mean is a ridge regression of the images on `[1, tags]`; the columns of W are
//! the leading principal directions of the residuals (randomised subspace iteration, Halko et
//! al. 2011, then an exact eigen-decomposition of the small projected matrix), scaled by
//! √(λᵢ − σ²) with σ² the mean of the remaining variance.

use super::schedule::noise_field;

/// A fitted linear-Gaussian prior over flat images of `dim` values.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearGaussianPrior {
    dim: usize,
    tags: usize,
    /// `[(tags + 1) × dim]`: row 0 the intercept, row 1 + j the shift of tag j.
    mean: Vec<f32>,
    /// `[rank × dim]`: the columns of W (principal directions × √(λ − σ²)).
    components: Vec<f32>,
    /// Variance of each component (λᵢ), largest first.
    variances: Vec<f64>,
    /// σ²: the mean residual variance outside the components.
    noise_variance: f64,
}

/// Ridge added to the tag regression (the tags are 0/1; it only keeps rare tags finite).
const RIDGE: f64 = 1e-3;
/// Extra directions of the randomised subspace, and its power iterations.
const OVERSAMPLE: usize = 8;
const POWER_ITERATIONS: usize = 4;

impl LinearGaussianPrior {
    /// Fits the prior to `images` (each `dim` values) with their tag vectors (each `tags`
    /// values, 1 = present), keeping `rank` latent dimensions; `seed` drives the random start
    /// of the subspace iteration.
    pub fn fit(images: &[&[f32]], tags: &[&[f32]], rank: usize, seed: u64) -> Result<Self, String> {
        let n = images.len();
        if n < 2 || tags.len() != n {
            return Err(format!(
                "the prior needs at least 2 images with one tag vector each (got {n} and {})",
                tags.len()
            ));
        }
        let dim = images[0].len();
        let t = tags[0].len();
        if images.iter().any(|x| x.len() != dim) || tags.iter().any(|x| x.len() != t) {
            return Err("images (or tag vectors) differ in length".into());
        }
        if rank == 0 || rank + OVERSAMPLE > dim.min(n) {
            return Err(format!(
                "rank {rank} needs 0 < rank ≤ {} for {n} images of {dim} values",
                dim.min(n).saturating_sub(OVERSAMPLE)
            ));
        }
        let mean = fit_mean(images, tags, dim, t)?;
        // Residuals [n × dim].
        let residuals: Vec<Vec<f32>> = images
            .iter()
            .zip(tags)
            .map(|(x, tg)| {
                let mu = mean_of(&mean, tg, dim);
                x.iter().zip(&mu).map(|(a, b)| a - b).collect()
            })
            .collect();
        let total: f64 = residuals
            .iter()
            .flatten()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            / n as f64;
        let m = rank + OVERSAMPLE;
        // Q: [m × dim], orthonormal rows spanning the leading directions.
        let mut q: Vec<Vec<f64>> = (0..m)
            .map(|j| {
                noise_field(dim, seed ^ ((j as u64 + 1) << 32))
                    .into_iter()
                    .map(f64::from)
                    .collect()
            })
            .collect();
        orthonormalise(&mut q);
        for _ in 0..POWER_ITERATIONS {
            q = covariance_times(&residuals, &q);
            orthonormalise(&mut q);
        }
        // The covariance projected on Q: S = Q C Qᵀ [m × m], C = RᵀR / n.
        let cq = covariance_times(&residuals, &q);
        let mut s = vec![vec![0.0; m]; m];
        for (i, row) in s.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = dot(&q[i], &cq[j]) / n as f64;
            }
        }
        let (values, vectors) = symmetric_eigen(s);
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let variances: Vec<f64> = order[..rank].iter().map(|&k| values[k].max(0.0)).collect();
        let noise_variance =
            ((total - variances.iter().sum::<f64>()) / (dim - rank) as f64).max(0.0);
        let mut components = Vec::with_capacity(rank * dim);
        for (&k, &lambda) in order[..rank].iter().zip(&variances) {
            let scale = (lambda - noise_variance).max(0.0).sqrt();
            // Direction k in image space: Σᵢ vectors[i][k]·Q[i].
            let mut u = vec![0.0f64; dim];
            for (qi, row) in q.iter().zip(&vectors) {
                let w = row[k];
                for (a, &b) in u.iter_mut().zip(qi) {
                    *a += w * b;
                }
            }
            let norm = dot(&u, &u).sqrt().max(f64::MIN_POSITIVE);
            components.extend(u.iter().map(|&v| (v / norm * scale) as f32));
        }
        Ok(Self {
            dim,
            tags: t,
            mean,
            components,
            variances,
            noise_variance,
        })
    }

    /// Length of the images.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Latent dimensions.
    pub fn rank(&self) -> usize {
        self.variances.len()
    }

    /// Variance of each latent direction, largest first, and σ², the variance left outside.
    pub fn variances(&self) -> (&[f64], f64) {
        (&self.variances, self.noise_variance)
    }

    /// The image decoded from latent `noise_field(rank, seed)` for `tags`, clipped to [−1, 1].
    pub fn sample(&self, tags: &[f32], seed: u64) -> Result<Vec<f32>, String> {
        if tags.len() != self.tags {
            return Err(format!(
                "{} tag values given, the prior has {}",
                tags.len(),
                self.tags
            ));
        }
        let z = noise_field(self.rank(), seed);
        let mut x = mean_of(&self.mean, tags, self.dim);
        for (zk, w) in z.iter().zip(self.components.chunks(self.dim)) {
            for (a, &b) in x.iter_mut().zip(w) {
                *a += zk * b;
            }
        }
        Ok(x.into_iter().map(|v| v.clamp(-1.0, 1.0)).collect())
    }
}

/// The ridge regression of the images on `[1, tags]`: `[(t + 1) × dim]`.
fn fit_mean(images: &[&[f32]], tags: &[&[f32]], dim: usize, t: usize) -> Result<Vec<f32>, String> {
    let p = t + 1;
    let row = |tg: &[f32]| -> Vec<f64> {
        std::iter::once(1.0)
            .chain(tg.iter().map(|&v| f64::from(v)))
            .collect()
    };
    // XᵀX + λI [p × p] and XᵀY [p × dim].
    let mut xtx = vec![0.0f64; p * p];
    let mut xty = vec![0.0f64; p * dim];
    for (x, tg) in images.iter().zip(tags) {
        let r = row(tg);
        for i in 0..p {
            for j in 0..p {
                xtx[i * p + j] += r[i] * r[j];
            }
            if r[i] != 0.0 {
                for (acc, &v) in xty[i * dim..(i + 1) * dim].iter_mut().zip(x.iter()) {
                    *acc += r[i] * f64::from(v);
                }
            }
        }
    }
    for i in 0..p {
        xtx[i * p + i] += RIDGE * images.len() as f64;
    }
    let l = cholesky(&xtx, p).ok_or("the tag regression is singular")?;
    let mut mean = vec![0.0f32; p * dim];
    let mut column = vec![0.0f64; p];
    for d in 0..dim {
        for i in 0..p {
            column[i] = xty[i * dim + d];
        }
        let b = cholesky_solve(&l, p, &column);
        for i in 0..p {
            mean[i * dim + d] = b[i] as f32;
        }
    }
    Ok(mean)
}

/// μ(tags) = row 0 + Σⱼ tags[j]·row (1 + j).
fn mean_of(mean: &[f32], tags: &[f32], dim: usize) -> Vec<f32> {
    let mut mu = mean[..dim].to_vec();
    for (j, &tj) in tags.iter().enumerate() {
        if tj != 0.0 {
            for (a, &b) in mu.iter_mut().zip(&mean[(j + 1) * dim..(j + 2) * dim]) {
                *a += tj * b;
            }
        }
    }
    mu
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `RᵀR·v` for each row v of `vs` (the covariance times n), with R `[n × dim]`.
fn covariance_times(residuals: &[Vec<f32>], vs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let dim = vs.first().map_or(0, Vec::len);
    vs.iter()
        .map(|v| {
            let mut out = vec![0.0f64; dim];
            for r in residuals {
                let c: f64 = r.iter().zip(v).map(|(&a, &b)| f64::from(a) * b).sum();
                for (o, &a) in out.iter_mut().zip(r) {
                    *o += c * f64::from(a);
                }
            }
            out
        })
        .collect()
}

/// Modified Gram–Schmidt on the rows (a row that vanishes stays zero).
fn orthonormalise(rows: &mut [Vec<f64>]) {
    for i in 0..rows.len() {
        for j in 0..i {
            let (done, rest) = rows.split_at_mut(i);
            let c = dot(&rest[0], &done[j]);
            for (a, &b) in rest[0].iter_mut().zip(&done[j]) {
                *a -= c * b;
            }
        }
        let norm = dot(&rows[i], &rows[i]).sqrt();
        if norm > 0.0 {
            rows[i].iter_mut().for_each(|v| *v /= norm);
        }
    }
}

/// Lower-triangular L with L·Lᵀ = a (`[p × p]`, row-major), if a is positive definite.
fn cholesky(a: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * p + k] * l[j * p + k]).sum();
            if i == j {
                let d = a[i * p + i] - s;
                if d <= 0.0 {
                    return None;
                }
                l[i * p + i] = d.sqrt();
            } else {
                l[i * p + j] = (a[i * p + j] - s) / l[j * p + j];
            }
        }
    }
    Some(l)
}

/// x with L·Lᵀ·x = b.
fn cholesky_solve(l: &[f64], p: usize, b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; p];
    for i in 0..p {
        let s: f64 = (0..i).map(|k| l[i * p + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * p + i];
    }
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        let s: f64 = (i + 1..p).map(|k| l[k * p + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * p + i];
    }
    x
}

/// Eigenvalues and eigenvectors (`vectors[i][k]`: component i of vector k) of a symmetric
/// matrix by cyclic Jacobi rotations.
fn symmetric_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let m = a.len();
    let mut v: Vec<Vec<f64>> = (0..m)
        .map(|i| (0..m).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for _sweep in 0..100 {
        let off: f64 = (0..m)
            .flat_map(|i| (0..m).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        let scale: f64 = (0..m).map(|i| a[i][i] * a[i][i]).sum::<f64>().max(1e-300);
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..m {
            for q in p + 1..m {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (head, tail) = a.split_at_mut(q);
                for (apk, aqk) in head[p].iter_mut().zip(tail[0].iter_mut()) {
                    let (x, y) = (*apk, *aqk);
                    *apk = c * x - s * y;
                    *aqk = s * x + c * y;
                }
                for row in v.iter_mut() {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = c * vp - s * vq;
                    row[q] = s * vp + c * vq;
                }
            }
        }
    }
    ((0..m).map(|i| a[i][i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_finds_the_eigenvalues_of_a_known_matrix() {
        // [[2, 1], [1, 2]]: eigenvalues 1 and 3.
        let (mut values, _) = symmetric_eigen(vec![vec![2.0, 1.0], vec![1.0, 2.0]]);
        values.sort_by(f64::total_cmp);
        assert!((values[0] - 1.0).abs() < 1e-12 && (values[1] - 3.0).abs() < 1e-12);
    }

    /// Images = tag shift + 3·a·e₀ + 1·b·e₁ + 0.1·noise: the prior recovers the tag shift, the
    /// two variances (9 and 1) and the noise variance (0.01) within a few per cent.
    #[test]
    fn the_fit_recovers_mean_variances_and_noise() {
        let (n, dim) = (2000, 64);
        let mut images = Vec::new();
        let mut tags = Vec::new();
        for i in 0..n as u64 {
            let z = noise_field(2 + dim, 1000 + i);
            let tag = f32::from(u8::from(i % 3 == 0));
            let mut x: Vec<f32> = (0..dim).map(|d| 0.1 * z[2 + d]).collect();
            x[0] += 3.0 * z[0];
            x[1] += z[1];
            x[5] += 0.5 * tag;
            images.push(x);
            tags.push(vec![tag]);
        }
        let im: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
        let tg: Vec<&[f32]> = tags.iter().map(Vec::as_slice).collect();
        let prior = LinearGaussianPrior::fit(&im, &tg, 2, 7).expect("fit");
        let (variances, noise) = prior.variances();
        assert!((variances[0] / 9.0 - 1.0).abs() < 0.08, "{variances:?}");
        assert!((variances[1] / 1.0 - 1.0).abs() < 0.08, "{variances:?}");
        assert!((noise / 0.01 - 1.0).abs() < 0.08, "{noise}");
        assert!((prior.mean[dim + 5] - 0.5).abs() < 0.05, "tag shift");
        // Samples carry the tag's shift and the first direction's variance.
        let draws: Vec<Vec<f32>> = (0..2000)
            .map(|s| prior.sample(&[1.0], s).expect("sample"))
            .collect();
        let m5 = draws.iter().map(|x| f64::from(x[5])).sum::<f64>() / 2000.0;
        assert!((m5 - 0.5).abs() < 0.05, "{m5}");
        // Clipped to [−1, 1], so the spread along e₀ is that of a clipped N(0, 9).
        assert!(draws.iter().flatten().all(|v| (-1.0..=1.0).contains(v)));
        let wrong = prior.sample(&[1.0, 0.0], 0);
        assert!(wrong.is_err());
    }

    #[test]
    fn bad_shapes_are_refused() {
        let a = [0.0f32; 4];
        let t = [0.0f32; 1];
        assert!(LinearGaussianPrior::fit(&[&a], &[&t], 1, 0).is_err());
        assert!(LinearGaussianPrior::fit(&[&a, &a], &[&t, &t], 3, 0).is_err());
    }
}
