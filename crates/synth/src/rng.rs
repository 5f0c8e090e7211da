//! Deterministic per-image random streams and the samplers the generators share.

use crate::math::Portable;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The random stream of image `index` in a batch generated with `seed`.
///
/// Each image gets its own ChaCha8 stream keyed by a SplitMix64 mix of `(seed, index)`, so image
/// `i` is the same whatever the batch size, order or number of threads.
pub fn image_rng(seed: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix64(seed ^ splitmix64(index.wrapping_add(0x5EED))))
}

/// SplitMix64 finaliser: a bijective 64-bit mix.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A Poisson draw with mean `lambda`.
///
/// Exact (Knuth's product method) below a mean of 30; above it the normal approximation
/// N(λ, λ) rounded, whose error relative to the counting noise itself is negligible there.
pub fn poisson(rng: &mut impl Rng, lambda: f64) -> f64 {
    // NaN and non-positive means give no counts.
    if lambda.is_nan() || lambda <= 0.0 {
        return 0.0;
    }
    if lambda < 30.0 {
        let mut p: f64 = rng.random();
        // e^(−λ) ≥ 1 − λ: a first uniform at most 1 − λ already means 0 counts. Most detector
        // pixels see λ ≪ 1, so this skips the exponential almost everywhere.
        if p <= 1.0 - lambda {
            return 0.0;
        }
        let limit = (-lambda).exp_p();
        let mut k = 0.0;
        while p > limit {
            k += 1.0;
            p *= rng.random::<f64>();
        }
        k
    } else {
        poisson_normal(lambda, normal(rng))
    }
}

/// The normal approximation of a Poisson draw with mean `lambda` (≥ 30) from a standard
/// normal `z`, rounded to a count.
#[inline]
pub fn poisson_normal(lambda: f64, z: f64) -> f64 {
    // Truncating cast after +0.5 rounds non-negative values without a libm call.
    ((lambda + lambda.sqrt() * z).max(0.0) + 0.5) as u64 as f64
}

/// A standard normal draw (Marsaglia's polar method, portable maths: identical on every target).
pub fn normal(rng: &mut impl Rng) -> f64 {
    normal_pair(rng).0
}

/// Two independent standard normal draws for the price of one logarithm.
pub fn normal_pair(rng: &mut impl Rng) -> (f64, f64) {
    loop {
        let u = 2.0 * rng.random::<f64>() - 1.0;
        let v = 2.0 * rng.random::<f64>() - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            let f = (-2.0 * s.ln_p() / s).sqrt();
            return (u * f, v * f);
        }
    }
}

/// A uniform draw in `[lo, hi)`.
pub fn uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// A log-uniform draw in `[lo, hi)` (both positive).
pub fn log_uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    uniform(rng, lo.ln_p(), hi.ln_p()).exp_p()
}

/// A lognormal draw: `exp(mu + sigma·z)`.
pub fn lognormal(rng: &mut impl Rng, mu: f64, sigma: f64) -> f64 {
    (mu + sigma * normal(rng)).exp_p()
}

/// Picks an index with probability proportional to `weights`.
pub fn weighted_index(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut t = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if t < *w {
            return i;
        }
        t -= w;
    }
    weights.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_var(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        (
            m,
            xs.iter().map(|x| (x - m).powi_p(2)).sum::<f64>() / (n - 1.0),
        )
    }

    #[test]
    fn poisson_variance_equals_mean() {
        let mut rng = image_rng(7, 0);
        for lambda in [0.5, 4.0, 29.0, 200.0, 5000.0] {
            let xs: Vec<f64> = (0..40_000).map(|_| poisson(&mut rng, lambda)).collect();
            let (m, v) = mean_var(&xs);
            assert!((m / lambda - 1.0).abs() < 0.03, "λ={lambda}: mean {m}");
            assert!((v / lambda - 1.0).abs() < 0.05, "λ={lambda}: variance {v}");
        }
    }

    #[test]
    fn normal_draws_have_unit_variance_and_normal_tails() {
        let mut rng = image_rng(1, 2);
        let xs: Vec<f64> = (0..100_000).map(|_| normal(&mut rng)).collect();
        let (m, v) = mean_var(&xs);
        assert!(
            m.abs() < 0.015 && (v - 1.0).abs() < 0.02,
            "mean {m}, variance {v}"
        );
        // P(|z| > 2) = 4.55 %.
        let tail = xs.iter().filter(|x| x.abs() > 2.0).count() as f64 / xs.len() as f64;
        assert!((tail - 0.0455).abs() < 0.004, "tail fraction {tail}");
    }

    #[test]
    fn streams_depend_only_on_seed_and_index() {
        let a: u64 = image_rng(3, 17).random();
        let b: u64 = image_rng(3, 17).random();
        let c: u64 = image_rng(3, 18).random();
        let d: u64 = image_rng(4, 17).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
