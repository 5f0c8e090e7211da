//! Small statistics helpers: the error function, normal and lognormal CDFs, Kolmogorov–Smirnov.

/// The error function, Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7).
pub fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

/// CDF of the normal distribution with mean `mu` and standard deviation `sigma`.
pub fn normal_cdf(x: f64, mu: f64, sigma: f64) -> f64 {
    0.5 * (1.0 + erf((x - mu) / (sigma * std::f64::consts::SQRT_2)))
}

/// CDF of the lognormal distribution whose logarithm has mean `mu` and deviation `sigma`.
pub fn lognormal_cdf(x: f64, mu: f64, sigma: f64) -> f64 {
    if x <= 0.0 {
        0.0
    } else {
        normal_cdf(x.ln(), mu, sigma)
    }
}

/// One-sample Kolmogorov–Smirnov statistic D = sup |F_n(x) − F(x)|.
pub fn ks_statistic(samples: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
    let mut s: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    s.iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max)
}

/// Two-sample Kolmogorov–Smirnov statistic between the empirical distributions of `a` and `b`.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> f64 {
    let mut a: Vec<f64> = a.to_vec();
    let mut b: Vec<f64> = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    if a.is_empty() || b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// 1-Wasserstein (earth mover's) distance between the empirical distributions of `a` and `b`,
/// `∫ |F_a(x) − F_b(x)| dx`, in the samples' unit; `None` when either is empty. Non-finite
/// values are ignored.
pub fn wasserstein_1(a: &[f64], b: &[f64]) -> Option<f64> {
    let sorted = |v: &[f64]| {
        let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        s.sort_by(f64::total_cmp);
        s
    };
    let (a, b) = (sorted(a), sorted(b));
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    // Walk the merged sample points; between two of them both CDFs are constant.
    let (mut i, mut j) = (0usize, 0usize);
    let mut x = a[0].min(b[0]);
    let mut total = 0.0;
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        total += (next - x) * (i as f64 / na - j as f64 / nb).abs();
        x = next;
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
    }
    Some(total)
}

/// Critical value of the one-sample KS statistic at significance 1 % for `n` samples (asymptotic).
pub fn ks_critical_1pct(n: usize) -> f64 {
    1.628 / (n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_tabulated_values() {
        assert!((erf(0.5) - 0.520_499_877_8).abs() < 2e-7);
        assert!((erf(-1.0) + 0.842_700_792_9).abs() < 2e-7);
        assert!((erf(2.0) - 0.995_322_265_0).abs() < 2e-7);
    }

    #[test]
    fn lognormal_median_is_exp_mu() {
        assert!((lognormal_cdf(10f64.exp().powf(0.1), 1.0, 0.4) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn ks_of_a_perfect_uniform_grid_is_one_over_n() {
        let s: Vec<f64> = (0..100).map(|i| (i as f64 + 0.5) / 100.0).collect();
        let d = ks_statistic(&s, |x| x.clamp(0.0, 1.0));
        assert!((d - 0.005).abs() < 1e-12, "{d}");
        assert!(ks_statistic(&s, |x| (x * 2.0).clamp(0.0, 1.0)) > 0.4);
        assert_eq!(ks_two_sample(&s, &s), 0.0);
        let shifted: Vec<f64> = s.iter().map(|v| v + 0.25).collect();
        assert!((ks_two_sample(&s, &shifted) - 0.25).abs() < 0.011);
    }

    #[test]
    fn wasserstein_distance_of_shifted_and_spread_samples() {
        // A shift by c moves every quantile by c.
        let a: Vec<f64> = (0..100).map(|i| i as f64 * 0.37).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 2.5).collect();
        assert!((wasserstein_1(&a, &b).expect("w1") - 2.5).abs() < 1e-9);
        assert_eq!(wasserstein_1(&a, &a), Some(0.0));
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) = 5; ([0, 1], [0, 3]) = 1.
        assert!(
            (wasserstein_1(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]).expect("w1") - 5.0).abs() < 1e-12
        );
        assert!((wasserstein_1(&[0.0, 1.0], &[0.0, 3.0]).expect("w1") - 1.0).abs() < 1e-12);
        // Unequal sizes: ([1], [0, 2]) = ½·1 + ½·1 = 1.
        assert!((wasserstein_1(&[1.0], &[0.0, 2.0]).expect("w1") - 1.0).abs() < 1e-12);
        assert_eq!(wasserstein_1(&[], &[1.0]), None);
    }

    #[test]
    fn wasserstein_and_ks_match_scipy() {
        // python3 tools/similarity_reference.py (scipy 1.17.1): wasserstein_distance, ks_2samp.
        let a: Vec<f64> = (0..60)
            .map(|i| 1.0 + ((i * 37) % 101) as f64 / 10.0)
            .collect();
        let b: Vec<f64> = (0..45)
            .map(|i| 0.5 + ((i * 53) % 89) as f64 / 8.0)
            .collect();
        let w1 = wasserstein_1(&a, &b).expect("w1");
        assert!((w1 - 0.308_055_555_6).abs() < 1e-9, "{w1}");
        assert!((ks_two_sample(&a, &b) - 0.072_222_222_2).abs() < 1e-9);
    }
}
