//! The noise schedule: ᾱ(t) of the cosine schedule on continuous time, the noise levels derived
//! from it, sampling time grids and a noise field that is bit-identical on every platform.

/// Offset `s` of the cosine schedule: keeps β small near t = 0 (Nichol & Dhariwal 2021).
const COSINE_OFFSET: f32 = 0.008;
/// ᾱ never falls below this: at t = 1 the data keeps a weight of √1e-5 ≈ 0.003.
pub const ALPHA_BAR_MIN: f32 = 1e-5;

/// ᾱ(t) of the cosine schedule (Nichol & Dhariwal 2021), t in [0, 1]:
/// `cos²((t + s)/(1 + s)·π/2) / cos²(s/(1 + s)·π/2)`, clamped to [[`ALPHA_BAR_MIN`], 1].
pub fn alpha_bar(t: f32) -> f32 {
    let f = |t: f32| {
        ((t + COSINE_OFFSET) / (1.0 + COSINE_OFFSET) * std::f32::consts::FRAC_PI_2)
            .cos()
            .powi(2)
    };
    (f(t.clamp(0.0, 1.0)) / f(0.0)).clamp(ALPHA_BAR_MIN, 1.0)
}

/// The weights of data and noise at one time: `x_t = alpha·x₀ + sigma·ε`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseLevel {
    /// √ᾱ(t).
    pub alpha: f32,
    /// √(1 − ᾱ(t)).
    pub sigma: f32,
}

impl NoiseLevel {
    /// The level at time `t` of the cosine schedule.
    pub fn at(t: f32) -> Self {
        let ab = alpha_bar(t);
        Self {
            alpha: ab.sqrt(),
            sigma: (1.0 - ab).max(0.0).sqrt(),
        }
    }

    /// ᾱ = alpha².
    pub fn alpha_bar(&self) -> f32 {
        self.alpha * self.alpha
    }

    /// Half the log signal-to-noise ratio, λ = ln(α/σ); +∞ for clean data.
    pub fn lambda(&self) -> f32 {
        (self.alpha / self.sigma).ln()
    }
}

/// The times a sampler visits: `steps + 1` values falling uniformly from 1 to 0.
pub fn time_grid(steps: usize) -> Vec<f32> {
    (0..=steps)
        .map(|i| 1.0 - i as f32 / steps.max(1) as f32)
        .collect()
}

/// A standard-normal noise field, the same on every platform for the same seed.
pub fn noise_field(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // splitmix64: a well-mixed 64-bit stream from a counter.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut out = Vec::with_capacity(len + 1);
    while out.len() < len {
        // Box–Muller in f64 on 53-bit uniforms; libm makes it bit-identical everywhere.
        let u1 = ((next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = ((next() >> 11) as f64) / (1u64 << 53) as f64;
        let r = libm::sqrt(-2.0 * libm::log(u1));
        let a = std::f64::consts::TAU * u2;
        out.push((r * libm::cos(a)) as f32);
        out.push((r * libm::sin(a)) as f32);
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form in f64, without the clamp.
    fn cosine_f64(t: f64) -> f64 {
        let s = COSINE_OFFSET as f64;
        let f = |t: f64| {
            ((t + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        f(t) / f(0.0)
    }

    #[test]
    fn alpha_bar_matches_the_closed_form() {
        for i in 0..=20 {
            let t = i as f64 / 20.0;
            let want = cosine_f64(t).max(ALPHA_BAR_MIN as f64);
            let got = alpha_bar(t as f32) as f64;
            assert!((got - want).abs() < 2e-6, "t = {t}: {got} vs {want}");
        }
        // Hand values: ᾱ(0) = 1, ᾱ(½) = cos²(0.50397·π/2)/cos²(0.00794·π/2) ≈ 0.49384.
        assert_eq!(alpha_bar(0.0), 1.0);
        assert!(
            (alpha_bar(0.5) - 0.49384).abs() < 1e-5,
            "{}",
            alpha_bar(0.5)
        );
        assert_eq!(alpha_bar(1.0), ALPHA_BAR_MIN);
        assert_eq!(alpha_bar(-3.0), 1.0);
    }

    #[test]
    fn levels_are_consistent_and_snr_falls_with_time() {
        let mut last = f32::INFINITY;
        for i in 1..=100 {
            let t = i as f32 / 100.0;
            let l = NoiseLevel::at(t);
            assert!((l.alpha * l.alpha + l.sigma * l.sigma - 1.0).abs() < 1e-6);
            assert!((l.alpha_bar() - alpha_bar(t)).abs() < 1e-6);
            let lambda = l.lambda();
            assert!(lambda < last, "λ must fall: t = {t}");
            last = lambda;
        }
        assert_eq!(NoiseLevel::at(0.0).lambda(), f32::INFINITY);
    }

    #[test]
    fn time_grid_runs_from_one_to_zero_in_equal_steps() {
        let g = time_grid(4);
        assert_eq!(g, vec![1.0, 0.75, 0.5, 0.25, 0.0]);
        assert_eq!(time_grid(1), vec![1.0, 0.0]);
    }

    #[test]
    fn noise_field_is_standard_normal_and_reproducible() {
        let a = noise_field(100_001, 7);
        assert_eq!(a.len(), 100_001);
        assert_eq!(a, noise_field(100_001, 7));
        assert_ne!(a[..10], noise_field(10, 8)[..]);
        let n = a.len() as f64;
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }
}
