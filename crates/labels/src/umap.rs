//! UMAP (McInnes, Healy & Melville 2018, arXiv 1802.03426): the classifiers' embeddings of the
//! stored images projected to 2-D for the Dataset page's latent-space view, as seed 000 shows its
//! latent space (n_neighbors 5, min_dist 0.5).
//!
//! The steps follow the reference implementation (`umap-learn`) so its parameters mean the same
//! here:
//!
//! 1. exact k nearest neighbours (Euclidean; `n_neighbors` counts the point itself, as in
//!    `umap-learn`, so each point has `n_neighbors − 1` neighbours);
//! 2. a fuzzy simplicial set: per point the distance ρᵢ to its nearest neighbour and a scale σᵢ
//!    found by bisection so that Σⱼ exp(−(dᵢⱼ − ρᵢ)/σᵢ) = log₂(n_neighbors); memberships
//!    symmetrised by the fuzzy union w + wᵀ − w∘wᵀ;
//! 3. the curve 1/(1 + a·d^{2b}) fitted to the `min_dist`/`spread` target by least squares
//!    ([`fit_ab`]; matches `umap.umap_.find_ab_params` to 1e-3);
//! 4. a PCA start (the first two principal components, scaled to ±10), then stochastic
//!    gradient descent with edge sampling in proportion to membership, 5 negative samples per
//!    positive, gradients clipped at 4 and a linearly falling learning rate.
//!
//! Exact neighbours cost O(n²·d): about a second for 2 000 images of 640 features in the
//! browser. Deterministic for a given seed. No I/O.

use crate::rng::SplitMix64;

/// UMAP's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct UmapConfig {
    /// Size of the local neighbourhood, the point itself included (`umap-learn` semantics).
    pub n_neighbors: usize,
    /// How tightly points may pack in the projection (0 < min_dist ≤ spread).
    pub min_dist: f64,
    /// Scale of the projection's clusters.
    pub spread: f64,
    /// Passes of the gradient descent; `None`: 500 up to 10 000 points, else 200.
    pub n_epochs: Option<usize>,
    /// Negative samples per positive sample.
    pub negative_sample_rate: usize,
    /// Seed of the sampling (and of the jitter that separates identical points).
    pub seed: u64,
}

impl Default for UmapConfig {
    /// Seed 000's latent-space view: n_neighbors 5, min_dist 0.5.
    fn default() -> Self {
        Self {
            n_neighbors: 5,
            min_dist: 0.5,
            spread: 1.0,
            n_epochs: None,
            negative_sample_rate: 5,
            seed: 42,
        }
    }
}

/// Why a projection could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UmapError {
    /// The values are not rows of `dim` numbers.
    #[error("{len} values are not rows of {dim} features")]
    Shape {
        /// Number of values.
        len: usize,
        /// Features per row.
        dim: usize,
    },
    /// A feature is NaN or infinite.
    #[error("point {row} has a feature that is not a finite number")]
    NotFinite {
        /// The row.
        row: usize,
    },
    /// A parameter is out of range.
    #[error("{0}")]
    Parameter(String),
}

/// Projects `n` points of `dim` features (row-major `points`, length `n·dim`) to 2-D.
///
/// # Shapes
/// - `points`: `[n, dim]`
/// - output: `[n]` of `[x, y]`
pub fn umap(points: &[f32], dim: usize, cfg: &UmapConfig) -> Result<Vec<[f32; 2]>, UmapError> {
    if dim == 0 || !points.len().is_multiple_of(dim) {
        return Err(UmapError::Shape {
            len: points.len(),
            dim,
        });
    }
    if cfg.n_neighbors < 2 {
        return Err(UmapError::Parameter(format!(
            "n_neighbors is {}: it must be at least 2 (the point and one neighbour)",
            cfg.n_neighbors
        )));
    }
    if !(cfg.spread > 0.0 && cfg.min_dist > 0.0 && cfg.min_dist <= cfg.spread) {
        return Err(UmapError::Parameter(format!(
            "min_dist {} and spread {} must satisfy 0 < min_dist ≤ spread",
            cfg.min_dist, cfg.spread
        )));
    }
    let n = points.len() / dim;
    if let Some(row) = points
        .chunks_exact(dim)
        .position(|r| r.iter().any(|v| !v.is_finite()))
    {
        return Err(UmapError::NotFinite { row });
    }
    match n {
        0 => return Ok(Vec::new()),
        1 => return Ok(vec![[0.0, 0.0]]),
        _ => {}
    }
    let k = (cfg.n_neighbors - 1).min(n - 1);
    let knn = nearest_neighbours(points, dim, k);
    let graph = fuzzy_simplicial_set(&knn, n, k, cfg.n_neighbors.min(n));
    let (a, b) = fit_ab(cfg.spread, cfg.min_dist);
    let mut rng = SplitMix64(cfg.seed);
    let mut y = pca_init(points, dim, &mut rng);
    let n_epochs = cfg.n_epochs.unwrap_or(if n <= 10_000 { 500 } else { 200 });
    optimise(
        &mut y,
        &graph,
        a,
        b,
        n_epochs,
        cfg.negative_sample_rate,
        &mut rng,
    );
    Ok(y.into_iter().map(|p| [p[0] as f32, p[1] as f32]).collect())
}

/// `[n][k]` of (neighbour, Euclidean distance), nearest first, the point itself excluded.
fn nearest_neighbours(points: &[f32], dim: usize, k: usize) -> Vec<Vec<(usize, f64)>> {
    let rows: Vec<&[f32]> = points.chunks_exact(dim).collect();
    let n = rows.len();
    let mut out = Vec::with_capacity(n);
    let mut dist: Vec<(usize, f32)> = Vec::with_capacity(n);
    for (i, a) in rows.iter().enumerate() {
        dist.clear();
        dist.extend(
            rows.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, b)| {
                    let d2: f32 = a.iter().zip(*b).map(|(x, y)| (x - y) * (x - y)).sum();
                    (j, d2)
                }),
        );
        // Ties broken by index, so the graph does not depend on the sort's internals.
        let by_distance =
            |p: &(usize, f32), q: &(usize, f32)| p.1.total_cmp(&q.1).then(p.0.cmp(&q.0));
        if k < dist.len() {
            dist.select_nth_unstable_by(k, by_distance);
            dist.truncate(k);
        }
        dist.sort_unstable_by(by_distance);
        out.push(
            dist.iter()
                .map(|&(j, d2)| (j, f64::from(d2).sqrt()))
                .collect(),
        );
    }
    out
}

/// The symmetrised membership graph as directed edges (both directions of every pair), with
/// each edge's weight in (0, 1].
struct Graph {
    head: Vec<usize>,
    tail: Vec<usize>,
    weight: Vec<f64>,
}

/// Memberships from the neighbour lists: ρᵢ, σᵢ by bisection to log₂(`n_neighbors`), fuzzy union.
fn fuzzy_simplicial_set(
    knn: &[Vec<(usize, f64)>],
    n: usize,
    k: usize,
    n_neighbors: usize,
) -> Graph {
    const SMOOTH_K_TOLERANCE: f64 = 1e-5;
    const MIN_K_DIST_SCALE: f64 = 1e-3;
    let target = (n_neighbors as f64).log2();
    let mean_all = knn.iter().flatten().map(|p| p.1).sum::<f64>() / (n * k).max(1) as f64;
    let mut directed = std::collections::BTreeMap::<(usize, usize), f64>::new();
    for (i, row) in knn.iter().enumerate() {
        let rho = row.iter().map(|p| p.1).find(|&d| d > 0.0).unwrap_or(0.0);
        let (mut lo, mut hi, mut mid) = (0.0f64, f64::INFINITY, 1.0f64);
        for _ in 0..64 {
            let psum: f64 = row
                .iter()
                .map(|&(_, d)| {
                    let d = d - rho;
                    if d > 0.0 { (-d / mid).exp() } else { 1.0 }
                })
                .sum();
            if (psum - target).abs() < SMOOTH_K_TOLERANCE {
                break;
            }
            if psum > target {
                hi = mid;
                mid = (lo + hi) / 2.0;
            } else {
                lo = mid;
                mid = if hi.is_infinite() {
                    mid * 2.0
                } else {
                    (lo + hi) / 2.0
                };
            }
        }
        // A floor on σ keeps memberships finite where all neighbours are at one distance.
        let mean_i = row.iter().map(|p| p.1).sum::<f64>() / row.len().max(1) as f64;
        let floor = MIN_K_DIST_SCALE * if rho > 0.0 { mean_i } else { mean_all };
        let sigma = mid.max(floor).max(f64::MIN_POSITIVE);
        for &(j, d) in row {
            let w = if d - rho <= 0.0 {
                1.0
            } else {
                (-(d - rho) / sigma).exp()
            };
            directed.insert((i, j), w);
        }
    }
    let mut graph = Graph {
        head: Vec::new(),
        tail: Vec::new(),
        weight: Vec::new(),
    };
    for (&(i, j), &w_ij) in &directed {
        let w_ji = directed.get(&(j, i)).copied().unwrap_or(0.0);
        let w = w_ij + w_ji - w_ij * w_ji;
        graph.head.push(i);
        graph.tail.push(j);
        graph.weight.push(w);
        if w_ji == 0.0 {
            // Only i listed j: the union still joins them both ways.
            graph.head.push(j);
            graph.tail.push(i);
            graph.weight.push(w);
        }
    }
    graph
}

/// The `a`, `b` of the low-dimensional similarity 1/(1 + a·d^{2b}) that best fit (least squares
/// over 300 points of [0, 3·spread]) the target 1 for d < min_dist, exp(−(d − min_dist)/spread)
/// beyond: `umap-learn`'s `find_ab_params`, solved here by damped Gauss–Newton from (1, 1).
pub fn fit_ab(spread: f64, min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| 3.0 * spread * i as f64 / 299.0).collect();
    let target: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x < min_dist {
                1.0
            } else {
                (-(x - min_dist) / spread).exp()
            }
        })
        .collect();
    let model = |a: f64, b: f64, x: f64| 1.0 / (1.0 + a * x.powf(2.0 * b));
    let loss = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&target)
            .map(|(&x, &t)| (model(a, b, x) - t).powi(2))
            .sum()
    };
    let (mut a, mut b, mut lambda) = (1.0f64, 1.0f64, 1e-3f64);
    let mut current = loss(a, b);
    for _ in 0..200 {
        // Normal equations of the residuals r = f − t with Jacobian columns ∂f/∂a, ∂f/∂b.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&x, &t) in xs.iter().zip(&target) {
            if x <= 0.0 {
                continue; // f = 1 there whatever a and b are.
            }
            let p = x.powf(2.0 * b);
            let f = 1.0 / (1.0 + a * p);
            let da = -p * f * f;
            let db = -a * p * 2.0 * x.ln() * f * f;
            let r = f - t;
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let (maa, mbb) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
        let det = maa * mbb - jab * jab;
        if det.abs() < 1e-300 {
            break;
        }
        let step_a = -(mbb * ga - jab * gb) / det;
        let step_b = -(maa * gb - jab * ga) / det;
        let (na, nb) = (a + step_a, b + step_b);
        let next = if na > 0.0 && nb > 0.0 {
            loss(na, nb)
        } else {
            f64::INFINITY
        };
        if next < current {
            let converged = (current - next) < 1e-15 * current.max(1e-300);
            (a, b, current) = (na, nb, next);
            lambda = (lambda / 10.0).max(1e-12);
            if converged {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                break;
            }
        }
    }
    (a, b)
}

/// The first two principal components of the points, scaled so the largest coordinate is 10,
/// with a little jitter (1e-4 of that scale) so that identical points can separate.
fn pca_init(points: &[f32], dim: usize, rng: &mut SplitMix64) -> Vec<[f64; 2]> {
    let n = points.len() / dim;
    let mut mean = vec![0.0f64; dim];
    for row in points.chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred: Vec<f64> = points
        .chunks_exact(dim)
        .flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| f64::from(v) - m))
        .collect();
    // Power iteration on the covariance, never formed: v ← Xᵀ(X v), the second component
    // deflated against the first.
    let mut components: Vec<Vec<f64>> = Vec::new();
    for c in 0..2 {
        let mut v: Vec<f64> = (0..dim)
            .map(|i| ((i * 7 + c * 13) % 11) as f64 - 5.0 + 0.5)
            .collect();
        for _ in 0..100 {
            let xv: Vec<f64> = centred
                .chunks_exact(dim)
                .map(|r| r.iter().zip(&v).map(|(a, b)| a * b).sum())
                .collect();
            let mut next = vec![0.0f64; dim];
            for (r, s) in centred.chunks_exact(dim).zip(&xv) {
                for (o, a) in next.iter_mut().zip(r) {
                    *o += a * s;
                }
            }
            for u in &components {
                let dot: f64 = next.iter().zip(u).map(|(a, b)| a * b).sum();
                next.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = next.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm < 1e-30 {
                break;
            }
            v = next.into_iter().map(|a| a / norm).collect();
        }
        components.push(v);
    }
    let mut y: Vec<[f64; 2]> = centred
        .chunks_exact(dim)
        .map(|r| {
            let p = |u: &Vec<f64>| r.iter().zip(u).map(|(a, b)| a * b).sum::<f64>();
            [p(&components[0]), p(&components[1])]
        })
        .collect();
    let largest = y.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    let scale = if largest > 0.0 { 10.0 / largest } else { 1.0 };
    for p in &mut y {
        for v in p.iter_mut() {
            *v = *v * scale + (rng.unit() - 0.5) * 2e-3;
        }
    }
    y
}

/// Stochastic gradient descent on the cross-entropy between the graph's memberships and the
/// projection's similarities (`umap-learn`'s `optimize_layout_euclidean`, both ends of an edge
/// moved).
fn optimise(
    y: &mut [[f64; 2]],
    graph: &Graph,
    a: f64,
    b: f64,
    n_epochs: usize,
    negative_sample_rate: usize,
    rng: &mut SplitMix64,
) {
    let n = y.len();
    let max_w = graph.weight.iter().fold(0.0f64, |m, &w| m.max(w));
    if max_w <= 0.0 || n_epochs == 0 {
        return;
    }
    // Edges too weak to be sampled once in the whole run are dropped, as umap-learn does.
    let keep: Vec<usize> = (0..graph.weight.len())
        .filter(|&e| graph.weight[e] >= max_w / n_epochs as f64)
        .collect();
    let per_sample: Vec<f64> = keep.iter().map(|&e| max_w / graph.weight[e]).collect();
    let rate = negative_sample_rate.max(1) as f64;
    let per_negative: Vec<f64> = per_sample.iter().map(|p| p / rate).collect();
    let mut next_sample = per_sample.clone();
    let mut next_negative = per_negative.clone();
    let clip = |g: f64| g.clamp(-4.0, 4.0);
    for epoch in 0..n_epochs {
        let alpha = 1.0 - epoch as f64 / n_epochs as f64;
        let now = epoch as f64;
        for (s, &e) in keep.iter().enumerate() {
            if next_sample[s] > now {
                continue;
            }
            let (j, k) = (graph.head[e], graph.tail[e]);
            let d2 = dist2(y[j], y[k]);
            let coeff = if d2 > 0.0 {
                -2.0 * a * b * d2.powf(b - 1.0) / (a * d2.powf(b) + 1.0)
            } else {
                0.0
            };
            let (here, there) = (y[j], y[k]);
            for (d, (a, b)) in here.iter().zip(there).enumerate() {
                let g = clip(coeff * (a - b));
                y[j][d] += g * alpha;
                y[k][d] -= g * alpha;
            }
            next_sample[s] += per_sample[s];
            let negatives = ((now - next_negative[s]) / per_negative[s])
                .floor()
                .max(0.0) as usize;
            for _ in 0..negatives {
                let other = rng.below(n);
                if other == j {
                    continue;
                }
                let d2 = dist2(y[j], y[other]);
                let coeff = if d2 > 0.0 {
                    2.0 * b / ((0.001 + d2) * (a * d2.powf(b) + 1.0))
                } else {
                    0.0
                };
                let there = y[other];
                for (v, b) in y[j].iter_mut().zip(there) {
                    let g = if coeff > 0.0 {
                        clip(coeff * (*v - b))
                    } else {
                        4.0
                    };
                    *v += g * alpha;
                }
            }
            next_negative[s] += negatives as f64 * per_negative[s];
        }
    }
}

fn dist2(p: [f64; 2], q: [f64; 2]) -> f64 {
    (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)
}

/// Trustworthiness (Venna & Kaski 2001) of a projection with `k` neighbours: 1 when every
/// point's k nearest neighbours in the projection are among its k nearest in the original
/// space, lower when the projection brings in strangers. The measure `sklearn.manifold.
/// trustworthiness` computes; used to compare this UMAP with `umap-learn` and to test it.
///
/// # Shapes
/// - `points`: `[n, dim]`, `projected`: `[n]`
pub fn trustworthiness(points: &[f32], dim: usize, projected: &[[f32; 2]], k: usize) -> f64 {
    let n = projected.len();
    if n < 2 * k + 2 || dim == 0 || points.len() != n * dim {
        return f64::NAN;
    }
    // Rank (1 = nearest) of every point j in i's original neighbour order.
    let rows: Vec<&[f32]> = points.chunks_exact(dim).collect();
    let mut penalty = 0.0f64;
    for i in 0..n {
        let mut original: Vec<(usize, f32)> = (0..n)
            .filter(|&j| j != i)
            .map(|j| {
                let d: f32 = rows[i]
                    .iter()
                    .zip(rows[j])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                (j, d)
            })
            .collect();
        original.sort_unstable_by(|p, q| p.1.total_cmp(&q.1).then(p.0.cmp(&q.0)));
        let mut rank = vec![0usize; n];
        for (r, &(j, _)) in original.iter().enumerate() {
            rank[j] = r + 1;
        }
        let mut near: Vec<(usize, f32)> = (0..n)
            .filter(|&j| j != i)
            .map(|j| {
                let p = projected[i];
                let q = projected[j];
                (j, (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2))
            })
            .collect();
        near.sort_unstable_by(|p, q| p.1.total_cmp(&q.1).then(p.0.cmp(&q.0)));
        for &(j, _) in near.iter().take(k) {
            if rank[j] > k {
                penalty += (rank[j] - k) as f64;
            }
        }
    }
    let (n, k) = (n as f64, k as f64);
    1.0 - 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)) * penalty
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// `clusters` Gaussian blobs of `per` points in `dim` dimensions, centres 10 apart along
    /// their own axes, unit spread.
    fn blobs(clusters: usize, per: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = SplitMix64(seed);
        let mut normal = || {
            // Box–Muller.
            let (u, v) = (rng.unit().max(1e-12), rng.unit());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        };
        let mut points = Vec::new();
        let mut label = Vec::new();
        for c in 0..clusters {
            for _ in 0..per {
                for d in 0..dim {
                    let centre = if d == c { 10.0 } else { 0.0 };
                    points.push(centre + normal());
                }
                label.push(c);
            }
        }
        (points, label)
    }

    #[test]
    fn the_curve_parameters_match_umap_learn() {
        // umap.umap_.find_ab_params(1.0, min_dist) (umap-learn 0.5.7, scipy curve_fit).
        for (min_dist, a_ref, b_ref) in [
            (0.1, 1.576_943_460_269_765, 0.895_060_877_851_573),
            (0.25, 1.121_436_342_230_568, 1.057_499_876_683_671),
            (0.5, 0.583_030_020_341_442, 1.334_166_992_431_491),
        ] {
            let (a, b) = fit_ab(1.0, min_dist);
            assert!(
                (a - a_ref).abs() < 1e-3 && (b - b_ref).abs() < 1e-3,
                "{min_dist}: {a} {b}"
            );
        }
    }

    #[test]
    fn three_blobs_stay_three_blobs() {
        let (points, label) = blobs(3, 40, 16, 7);
        let y = umap(&points, 16, &UmapConfig::default()).expect("projects");
        assert_eq!(y.len(), 120);
        assert!(y.iter().flatten().all(|v| v.is_finite()));
        // Every point's nearest neighbour in the projection is from its own blob.
        for (i, p) in y.iter().enumerate() {
            let nearest = (0..y.len())
                .filter(|&j| j != i)
                .min_by(|&j, &k| {
                    let d = |q: &[f32; 2]| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2);
                    d(&y[j]).total_cmp(&d(&y[k]))
                })
                .expect("neighbour");
            assert_eq!(label[nearest], label[i], "point {i}");
        }
        // The blobs are far apart compared with their size.
        let centre = |c: usize| {
            let pts: Vec<&[f32; 2]> = y
                .iter()
                .zip(&label)
                .filter(|(_, l)| **l == c)
                .map(|(p, _)| p)
                .collect();
            let n = pts.len() as f32;
            [
                pts.iter().map(|p| p[0]).sum::<f32>() / n,
                pts.iter().map(|p| p[1]).sum::<f32>() / n,
            ]
        };
        let centres: Vec<[f32; 2]> = (0..3).map(centre).collect();
        let spread: f32 = y
            .iter()
            .zip(&label)
            .map(|(p, &l)| ((p[0] - centres[l][0]).powi(2) + (p[1] - centres[l][1]).powi(2)).sqrt())
            .sum::<f32>()
            / y.len() as f32;
        for i in 0..3 {
            for j in i + 1..3 {
                let gap = ((centres[i][0] - centres[j][0]).powi(2)
                    + (centres[i][1] - centres[j][1]).powi(2))
                .sqrt();
                assert!(
                    gap > 3.0 * spread,
                    "blobs {i},{j}: gap {gap} vs spread {spread}"
                );
            }
        }
        let t = trustworthiness(&points, 16, &y, 5);
        assert!(t > 0.9, "trustworthiness {t}");
    }

    #[test]
    fn the_same_seed_gives_the_same_projection() {
        let (points, _) = blobs(2, 30, 8, 3);
        let cfg = UmapConfig::default();
        let a = umap(&points, 8, &cfg).expect("projects");
        assert_eq!(a, umap(&points, 8, &cfg).expect("projects"));
        let b = umap(&points, 8, &UmapConfig { seed: 1, ..cfg }).expect("projects");
        assert_ne!(a, b);
    }

    #[test]
    fn trustworthiness_is_one_for_an_isometry_and_lower_for_a_shuffle() {
        let (points, _) = blobs(2, 20, 2, 5);
        let exact: Vec<[f32; 2]> = points
            .chunks_exact(2)
            .map(|p| [p[0] * 3.0, p[1] * 3.0])
            .collect();
        assert!((trustworthiness(&points, 2, &exact, 5) - 1.0).abs() < 1e-12);
        let mut shuffled = exact.clone();
        shuffled.reverse();
        shuffled.rotate_left(7);
        assert!(trustworthiness(&points, 2, &shuffled, 5) < 0.8);
    }

    #[test]
    fn small_duplicate_and_bad_inputs() {
        let cfg = UmapConfig::default();
        assert_eq!(umap(&[], 4, &cfg), Ok(Vec::new()));
        assert_eq!(umap(&[1.0, 2.0], 2, &cfg), Ok(vec![[0.0, 0.0]]));
        // Three identical points and one apart: finite, the odd one out farthest.
        let y = umap(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 5.0], 2, &cfg).expect("projects");
        assert!(y.iter().flatten().all(|v| v.is_finite()), "{y:?}");
        assert_eq!(
            umap(&[1.0, 2.0, 3.0], 2, &cfg),
            Err(UmapError::Shape { len: 3, dim: 2 })
        );
        assert_eq!(
            umap(&[1.0, 2.0, f32::NAN, 0.0], 2, &cfg),
            Err(UmapError::NotFinite { row: 1 })
        );
        let bad = UmapConfig {
            min_dist: 2.0,
            ..cfg
        };
        assert!(matches!(
            umap(&[0.0; 8], 2, &bad),
            Err(UmapError::Parameter(_))
        ));
    }
}
