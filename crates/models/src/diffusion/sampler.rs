//! Samplers of the reverse process: DDPM (ancestral), DDIM (deterministic) and DPM-Solver++(2M)
//! (second order, multistep), on one time grid falling uniformly from t = 1 to t = 0.
//!
//! A [`Sampler`] is a state machine: each [`Sampler::step`] calls the network once and returns
//! the current estimate of the clean image, so a caller can show progress and stop between steps.
//! The last step of every sampler lands on t = 0 and returns that estimate itself.
//!
//! Noise (the start and DDPM's fresh noise per step) comes from [`noise_field`] with one seed per
//! batch item, so a sample depends only on its own seed, not on the batch it was drawn in, and is
//! the same on every platform.

use super::schedule::{NoiseLevel, noise_field, time_grid};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// The most steps a sampler accepts (the schedule is continuous; more steps buy nothing).
pub const MAX_STEPS: usize = 1000;

/// A sampler that cannot be set up as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamplerError {
    /// Steps outside 1 … [`MAX_STEPS`].
    #[error("steps must be between 1 and {MAX_STEPS}, not {0}")]
    Steps(usize),
    /// A sampler name this version does not know.
    #[error("unknown sampler '{0}': use ddpm, ddim or dpm++")]
    Unknown(String),
    /// Guidance scale not a finite number ≥ 0.
    #[error("guidance must be a finite number of at least 0 (1 = no guidance), not {0}")]
    Guidance(String),
    /// The seeds do not match the batch.
    #[error("{0}")]
    Shape(String),
}

/// What the network predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prediction {
    /// The noise ε.
    Noise,
    /// The velocity `v = α·ε − σ·x₀` (Salimans & Ho 2022): well conditioned at both ends of the
    /// schedule, where ε-prediction divides by α ≈ 0.003 at t = 1.
    Velocity,
}

impl Prediction {
    /// The estimates (x̂₀, ε̂) from the network's output at `x_t`.
    ///
    /// # Shapes
    /// - `x_t`, `out`: `[batch, c, h, w]` → both outputs the same
    pub fn split(
        self,
        x_t: Tensor<4>,
        out: Tensor<4>,
        level: NoiseLevel,
    ) -> (Tensor<4>, Tensor<4>) {
        let NoiseLevel { alpha, sigma } = level;
        match self {
            Prediction::Noise => {
                let x0 = (x_t - out.clone().mul_scalar(sigma)).div_scalar(alpha);
                (x0, out)
            }
            Prediction::Velocity => {
                let x0 = x_t.clone().mul_scalar(alpha) - out.clone().mul_scalar(sigma);
                let eps = x_t.mul_scalar(sigma) + out.mul_scalar(alpha);
                (x0, eps)
            }
        }
    }

    /// The training target for clean data `x0` noised with `noise` at per-item levels.
    ///
    /// # Shapes
    /// - `x0`, `noise`: `[batch, c, h, w]`; `alpha`, `sigma`: `[batch, 1, 1, 1]` → `[batch, c, h, w]`
    pub fn target(
        self,
        x0: Tensor<4>,
        noise: Tensor<4>,
        alpha: Tensor<4>,
        sigma: Tensor<4>,
    ) -> Tensor<4> {
        match self {
            Prediction::Noise => noise,
            Prediction::Velocity => noise * alpha - x0 * sigma,
        }
    }
}

/// Which update rule a [`Sampler`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// Ancestral sampling from the posterior q(x_s | x_t, x̂₀) (Ho et al. 2020); stochastic.
    Ddpm,
    /// DDIM with η = 0 (Song et al. 2021): deterministic for a given start.
    Ddim,
    /// DPM-Solver++(2M) (Lu et al. 2022): second-order multistep in log-SNR on x̂₀, first order
    /// on the first and the last step; good at 10–20 steps.
    #[serde(rename = "dpm++")]
    DpmSolver2M,
}

impl SamplerKind {
    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Ddpm => "ddpm",
            SamplerKind::Ddim => "ddim",
            SamplerKind::DpmSolver2M => "dpm++",
        }
    }
}

impl std::str::FromStr for SamplerKind {
    type Err = SamplerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ddpm" => Ok(SamplerKind::Ddpm),
            "ddim" => Ok(SamplerKind::Ddim),
            "dpm++" | "dpm-solver++" | "dpmpp" | "dpm++2m" => Ok(SamplerKind::DpmSolver2M),
            _ => Err(SamplerError::Unknown(s.to_string())),
        }
    }
}

/// A network the samplers can call (already guided, if guidance is wanted).
pub trait Denoise {
    /// How [`Denoise::predict`]'s output is to be read.
    fn prediction(&self) -> Prediction;

    /// The network output for `x_t` at time `t` ∈ (0, 1].
    ///
    /// # Shapes
    /// - `x_t`: `[batch, c, h, w]` → same
    fn predict(&self, x_t: Tensor<4>, t: f32) -> Tensor<4>;
}

/// A seed for DDPM's noise at one step, well mixed from the item's seed.
fn step_seed(seed: u64, step: usize) -> u64 {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    mix(seed ^ mix((step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// Standard-normal noise for a batch, one seed per item.
///
/// # Shapes
/// - output: `[seeds.len(), c, h, w]`
pub fn batch_noise(seeds: &[u64], chw: [usize; 3], device: &Device) -> Tensor<4> {
    let [c, h, w] = chw;
    let mut data = Vec::with_capacity(seeds.len() * c * h * w);
    for &s in seeds {
        data.extend(noise_field(c * h * w, s));
    }
    Tensor::from_data(TensorData::new(data, [seeds.len(), c, h, w]), device)
}

/// `x` with every pixel's channel vector multiplied by the symmetric `[c, c]` matrix `p` (a
/// projection along the channels: the generator's band of angular harmonics).
///
/// # Shapes
/// - `x`: `[batch, c, h, w]`, `p`: `[c, c]` → `[batch, c, h, w]`
pub fn project_channels(x: Tensor<4>, p: &Tensor<2>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    // [b, c, h, w] → [b·w·h, c] · P → back.
    x.swap_dims(1, 3)
        .reshape([b * w * h, c])
        .matmul(p.clone())
        .reshape([b, w, h, c])
        .swap_dims(1, 3)
}

/// One batch on its way from noise to samples.
pub struct Sampler {
    kind: SamplerKind,
    grid: Vec<f32>,
    done: usize,
    x: Tensor<4>,
    seeds: Vec<u64>,
    clip_x0: Option<f32>,
    /// `[c, c]`: a symmetric projection applied to x̂₀ along the channels every step.
    project_x0: Option<Tensor<2>>,
    /// `[c, c]`: the subspace the noise lives in (the start and DDPM's fresh noise), for a
    /// model trained with noise in that subspace only.
    project_noise: Option<Tensor<2>>,
    /// DPM-Solver++: x̂₀ of the previous step and that step's log-SNR increment h.
    previous: Option<(Tensor<4>, f32)>,
}

impl Sampler {
    /// Starts a batch from noise: one item per seed, each `chw` = `[c, h, w]`.
    pub fn new(
        kind: SamplerKind,
        steps: usize,
        seeds: &[u64],
        chw: [usize; 3],
        device: &Device,
    ) -> Result<Self, SamplerError> {
        if steps == 0 || steps > MAX_STEPS {
            return Err(SamplerError::Steps(steps));
        }
        if seeds.is_empty() {
            return Err(SamplerError::Shape("give at least one seed".into()));
        }
        // ᾱ(1) = 1e-5: x₁ = 0.003·x₀ + 1.0·ε is pure noise to the precision that matters.
        let x = batch_noise(seeds, chw, device);
        Ok(Self {
            kind,
            grid: time_grid(steps),
            done: 0,
            x,
            seeds: seeds.to_vec(),
            clip_x0: None,
            project_x0: None,
            project_noise: None,
            previous: None,
        })
    }

    /// Starts from a given `x_t` at time `t_start` instead of noise at t = 1 (SDEdit, or a test
    /// that knows the exact noise); `steps` steps from `t_start` down to 0.
    ///
    /// # Shapes
    /// - `x_t`: `[seeds.len(), c, h, w]`
    pub fn from_noisy(
        kind: SamplerKind,
        steps: usize,
        t_start: f32,
        x_t: Tensor<4>,
        seeds: &[u64],
    ) -> Result<Self, SamplerError> {
        if steps == 0 || steps > MAX_STEPS {
            return Err(SamplerError::Steps(steps));
        }
        if x_t.dims()[0] != seeds.len() {
            return Err(SamplerError::Shape(format!(
                "{} seeds for a batch of {}",
                seeds.len(),
                x_t.dims()[0]
            )));
        }
        let t0 = t_start.clamp(0.0, 1.0);
        let grid = time_grid(steps).into_iter().map(|t| t * t0).collect();
        Ok(Self {
            kind,
            grid,
            done: 0,
            x: x_t,
            seeds: seeds.to_vec(),
            clip_x0: None,
            project_x0: None,
            project_noise: None,
            previous: None,
        })
    }

    /// Clamps every estimate of the clean image to [−c, c] (the data's range), recomputing ε̂.
    pub fn with_clip(mut self, c: f32) -> Self {
        self.clip_x0 = Some(c);
        self
    }

    /// Projects every estimate of the clean image along the channels with the symmetric
    /// `[c, c]` matrix `p` (before any clip), recomputing ε̂: the samples stay in the subspace
    /// the data live in (the generator's band of angular harmonics).
    pub fn with_projection(mut self, p: Tensor<2>) -> Self {
        self.project_x0 = Some(p);
        self
    }

    /// Diffusion in a subspace: the starting noise and DDPM's fresh noise are projected along
    /// the channels with the symmetric `[c, c]` matrix `p`, as is every estimate of the clean
    /// image, so the whole trajectory stays in the subspace (for a model trained with noise in
    /// it: `generator`'s `noise_harmonics`). Replaces any projection given before.
    pub fn with_subspace(mut self, p: Tensor<2>) -> Self {
        self.x = project_channels(self.x, &p);
        self.project_x0 = Some(p.clone());
        self.project_noise = Some(p);
        self
    }

    /// Steps in all.
    pub fn steps(&self) -> usize {
        self.grid.len() - 1
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> usize {
        self.done
    }

    /// Whether the last step has been taken.
    pub fn is_done(&self) -> bool {
        self.done >= self.steps()
    }

    /// The current state: `x_t` while sampling, the samples once done.
    ///
    /// # Shapes
    /// - `[batch, c, h, w]`
    pub fn current(&self) -> Tensor<4> {
        self.x.clone()
    }

    /// One step: calls the network once, moves `x` to the next time of the grid and returns the
    /// estimate of the clean batch made on the way (the samples themselves after the last step).
    /// After the last step it changes nothing and returns the samples.
    pub fn step(&mut self, model: &impl Denoise) -> Tensor<4> {
        if self.is_done() {
            return self.x.clone();
        }
        let (t, s) = (self.grid[self.done], self.grid[self.done + 1]);
        let (lt, ls) = (NoiseLevel::at(t), NoiseLevel::at(s));
        let x = self.x.clone();
        let out = model.predict(x.clone(), t);
        let (mut x0, mut eps) = model.prediction().split(x.clone(), out, lt);
        if let Some(p) = &self.project_x0 {
            x0 = project_channels(x0, p);
        }
        if let Some(c) = self.clip_x0 {
            x0 = x0.clamp(-c, c);
            // A clip leaves the subspace; the network never saw states outside it.
            if let Some(p) = &self.project_noise
                && ls.sigma > 0.0
            {
                x0 = project_channels(x0, p);
            }
        }
        if self.project_x0.is_some() || self.clip_x0.is_some() {
            eps = (x.clone() - x0.clone().mul_scalar(lt.alpha)).div_scalar(lt.sigma);
        }
        self.x = if ls.sigma <= 0.0 {
            // Clean data: every rule lands on its own estimate.
            x0.clone()
        } else {
            match self.kind {
                SamplerKind::Ddim => x0.clone().mul_scalar(ls.alpha) + eps.mul_scalar(ls.sigma),
                SamplerKind::Ddpm => {
                    let (abt, abs) = (lt.alpha_bar(), ls.alpha_bar());
                    let beta = 1.0 - abt / abs;
                    let c0 = abs.sqrt() * beta / (1.0 - abt);
                    let ct = (abt / abs).sqrt() * (1.0 - abs) / (1.0 - abt);
                    let std = (beta * (1.0 - abs) / (1.0 - abt)).max(0.0).sqrt();
                    let dims = x.dims();
                    let seeds: Vec<u64> = self
                        .seeds
                        .iter()
                        .map(|&sd| step_seed(sd, self.done))
                        .collect();
                    let mut z = batch_noise(&seeds, [dims[1], dims[2], dims[3]], &x.device());
                    if let Some(p) = &self.project_noise {
                        z = project_channels(z, p);
                    }
                    x0.clone().mul_scalar(c0) + x.mul_scalar(ct) + z.mul_scalar(std)
                }
                SamplerKind::DpmSolver2M => {
                    let h = ls.lambda() - lt.lambda();
                    let d = match &self.previous {
                        Some((x0_prev, h_prev)) => {
                            let r = h_prev / h;
                            x0.clone().mul_scalar(1.0 + 0.5 / r)
                                - x0_prev.clone().mul_scalar(0.5 / r)
                        }
                        None => x0.clone(),
                    };
                    self.previous = Some((x0.clone(), h));
                    x.mul_scalar(ls.sigma / lt.sigma) - d.mul_scalar(ls.alpha * (-h).exp_m1())
                }
            }
        };
        self.done += 1;
        x0
    }

    /// Runs every remaining step and returns the samples.
    ///
    /// # Shapes
    /// - `[batch, c, h, w]`
    pub fn run(mut self, model: &impl Denoise) -> Tensor<4> {
        while !self.is_done() {
            self.step(model);
        }
        self.x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1-D Gaussian mixture per element, whose denoiser is known in closed form: the posterior
    /// mean E[x₀ | x_t] under component k is μₖ + α·sₖ²·(x_t − α·μₖ)/vₖ with vₖ = α²·sₖ² + σ².
    struct Mixture {
        weights: Vec<f64>,
        means: Vec<f64>,
        stds: Vec<f64>,
        prediction: Prediction,
    }

    impl Mixture {
        fn example(prediction: Prediction) -> Self {
            Self {
                weights: vec![0.3, 0.7],
                means: vec![-1.5, 1.0],
                stds: vec![0.3, 0.5],
                prediction,
            }
        }

        fn mean(&self) -> f64 {
            self.weights
                .iter()
                .zip(&self.means)
                .map(|(w, m)| w * m)
                .sum()
        }

        fn variance(&self) -> f64 {
            let m = self.mean();
            (0..self.weights.len())
                .map(|k| self.weights[k] * (self.stds[k].powi(2) + (self.means[k] - m).powi(2)))
                .sum()
        }

        fn posterior_mean(&self, x: f64, level: NoiseLevel) -> f64 {
            let (a, s) = (level.alpha as f64, level.sigma as f64);
            let mut num = 0.0;
            let mut den = 0.0;
            // Responsibilities in log space, shifted by the largest for stability.
            let logs: Vec<f64> = (0..self.weights.len())
                .map(|k| {
                    let v = a * a * self.stds[k].powi(2) + s * s;
                    self.weights[k].ln()
                        - 0.5 * v.ln()
                        - (x - a * self.means[k]).powi(2) / (2.0 * v)
                })
                .collect();
            let top = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            for (k, log) in logs.iter().enumerate() {
                let v = a * a * self.stds[k].powi(2) + s * s;
                let g = (log - top).exp();
                num += g * (self.means[k] + a * self.stds[k].powi(2) * (x - a * self.means[k]) / v);
                den += g;
            }
            num / den
        }
    }

    impl Denoise for Mixture {
        fn prediction(&self) -> Prediction {
            self.prediction
        }

        fn predict(&self, x_t: Tensor<4>, t: f32) -> Tensor<4> {
            let level = NoiseLevel::at(t);
            let (a, s) = (level.alpha as f64, level.sigma as f64);
            let dims = x_t.dims();
            let device = x_t.device();
            let xs = x_t.into_data().try_to_vec::<f32>().expect("f32");
            let out: Vec<f32> = xs
                .iter()
                .map(|&x| {
                    let x = x as f64;
                    let x0 = self.posterior_mean(x, level);
                    match self.prediction {
                        Prediction::Noise => ((x - a * x0) / s) as f32,
                        Prediction::Velocity => ((a * x - x0) / s) as f32,
                    }
                })
                .collect();
            Tensor::from_data(TensorData::new(out, dims), &device)
        }
    }

    fn moments(x: Tensor<4>) -> (f64, f64, f64) {
        let v = x.into_data().try_to_vec::<f32>().expect("f32");
        let n = v.len() as f64;
        let mean = v.iter().map(|&a| a as f64).sum::<f64>() / n;
        let var = v.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / n;
        let below = v.iter().filter(|&&a| a < -0.25).count() as f64 / n;
        (mean, var, below)
    }

    #[test]
    fn every_sampler_reproduces_a_gaussian_mixture() {
        let device = Device::flex();
        // 4 items × 1 × 80 × 100 = 32 000 independent draws.
        let seeds = [11, 12, 13, 14];
        let cases = [
            (SamplerKind::Ddpm, 200, Prediction::Velocity),
            (SamplerKind::Ddpm, 200, Prediction::Noise),
            (SamplerKind::Ddim, 50, Prediction::Velocity),
            (SamplerKind::Ddim, 50, Prediction::Noise),
            (SamplerKind::DpmSolver2M, 20, Prediction::Velocity),
            (SamplerKind::DpmSolver2M, 20, Prediction::Noise),
        ];
        for (kind, steps, prediction) in cases {
            let model = Mixture::example(prediction);
            let (want_mean, want_var) = (model.mean(), model.variance());
            let sampler =
                Sampler::new(kind, steps, &seeds, [1, 80, 100], &device).expect("sampler");
            let (mean, var, below) = moments(sampler.run(&model));
            let what = format!("{} with {steps} steps, {prediction:?}", kind.name());
            // Mean within 5 % of the standard deviation, variance within 5 %, and the lighter
            // component keeps its weight (0.3) within 0.02.
            assert!(
                (mean - want_mean).abs() < 0.05 * want_var.sqrt(),
                "{what}: mean {mean} vs {want_mean}"
            );
            assert!(
                (var / want_var - 1.0).abs() < 0.05,
                "{what}: variance {var} vs {want_var}"
            );
            assert!(
                (below - 0.3).abs() < 0.02,
                "{what}: weight of the left mode {below}"
            );
        }
    }

    /// Returns the exact noise of a known x₀, as a perfect network would.
    struct Oracle {
        x0: Tensor<4>,
        prediction: Prediction,
    }

    impl Denoise for Oracle {
        fn prediction(&self) -> Prediction {
            self.prediction
        }

        fn predict(&self, x_t: Tensor<4>, t: f32) -> Tensor<4> {
            let NoiseLevel { alpha, sigma } = NoiseLevel::at(t);
            let eps = (x_t.clone() - self.x0.clone().mul_scalar(alpha)).div_scalar(sigma);
            match self.prediction {
                Prediction::Noise => eps,
                Prediction::Velocity => eps.mul_scalar(alpha) - self.x0.clone().mul_scalar(sigma),
            }
        }
    }

    #[test]
    fn ddim_with_the_exact_noise_returns_the_clean_image() {
        let device = Device::flex();
        let x0_values: Vec<f32> = (0..2 * 16 * 16)
            .map(|i| ((i * 37) % 23) as f32 / 11.5 - 1.0)
            .collect();
        let x0 =
            Tensor::<4>::from_data(TensorData::new(x0_values.clone(), [2, 1, 16, 16]), &device);
        for prediction in [Prediction::Noise, Prediction::Velocity] {
            for (t_start, steps) in [(1.0, 10), (0.6, 7), (1.0, 1)] {
                let eps = batch_noise(&[5, 6], [1, 16, 16], &device);
                let l = NoiseLevel::at(t_start);
                let x_t = x0.clone().mul_scalar(l.alpha) + eps.mul_scalar(l.sigma);
                let oracle = Oracle {
                    x0: x0.clone(),
                    prediction,
                };
                let sampler = Sampler::from_noisy(SamplerKind::Ddim, steps, t_start, x_t, &[5, 6])
                    .expect("sampler");
                let got = sampler
                    .run(&oracle)
                    .into_data()
                    .try_to_vec::<f32>()
                    .expect("f32");
                let err = got
                    .iter()
                    .zip(&x0_values)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                // From t = 1 the noise is divided by α = 0.003 once: allow for that rounding.
                let tol = if prediction == Prediction::Noise && t_start == 1.0 {
                    1e-3
                } else {
                    1e-5
                };
                assert!(
                    err < tol,
                    "{prediction:?}, t₀ {t_start}, {steps} steps: error {err}"
                );
            }
        }
    }

    #[test]
    fn a_projection_keeps_every_sample_in_its_subspace() {
        let device = Device::flex();
        // Channel mean: the projection onto constant rows of 4 channels.
        let p = Tensor::<2>::from_data(TensorData::new(vec![0.25f32; 16], [4, 4]), &device);
        let model = Mixture::example(Prediction::Velocity);
        for kind in [SamplerKind::Ddim, SamplerKind::DpmSolver2M] {
            let x = Sampler::new(kind, 10, &[3, 4], [4, 6, 5], &device)
                .expect("sampler")
                .with_projection(p.clone())
                .run(&model)
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32");
            // [2, 4, 6, 5]: the 4 channels of every (item, row, column) agree.
            let plane = 6 * 5;
            for item in 0..2 {
                for k in 0..plane {
                    let at = |c: usize| x[item * 4 * plane + c * plane + k];
                    let spread = (0..4).map(at).fold(f32::NEG_INFINITY, f32::max)
                        - (0..4).map(at).fold(f32::INFINITY, f32::min);
                    assert!(
                        spread < 1e-5,
                        "{}: channels differ by {spread}",
                        kind.name()
                    );
                }
            }
        }
    }

    #[test]
    fn a_subspace_sampler_never_leaves_its_subspace() {
        let device = Device::flex();
        // Rank 1: the channel mean of 4 channels; its unit vector is (1, 1, 1, 1)/2, so noise
        // of unit variance along it is 0.5 per channel.
        let p = Tensor::<2>::from_data(TensorData::new(vec![0.25f32; 16], [4, 4]), &device);
        let model = Mixture::example(Prediction::Velocity);
        let spread_of = |x: &[f32]| {
            let plane = 6 * 5;
            let mut worst = 0.0f32;
            for item in 0..2 {
                for k in 0..plane {
                    let at = |c: usize| x[item * 4 * plane + c * plane + k];
                    let hi = (0..4).map(at).fold(f32::NEG_INFINITY, f32::max);
                    let lo = (0..4).map(at).fold(f32::INFINITY, f32::min);
                    worst = worst.max(hi - lo);
                }
            }
            worst
        };
        for kind in [
            SamplerKind::Ddpm,
            SamplerKind::Ddim,
            SamplerKind::DpmSolver2M,
        ] {
            let mut sampler = Sampler::new(kind, 6, &[3, 4], [4, 6, 5], &device)
                .expect("sampler")
                .with_subspace(p.clone());
            let start = values(sampler.current());
            let std = (start.iter().map(|v| v * v).sum::<f32>() / start.len() as f32).sqrt();
            assert!((std - 0.5).abs() < 0.08, "{}: start std {std}", kind.name());
            while !sampler.is_done() {
                sampler.step(&model);
                let s = spread_of(&values(sampler.current()));
                assert!(s < 1e-5, "{}: channels differ by {s}", kind.name());
            }
        }
        // Without the subspace, DDPM's fresh noise leaves it at once.
        let mut free = Sampler::new(SamplerKind::Ddpm, 6, &[3, 4], [4, 6, 5], &device)
            .expect("sampler")
            .with_projection(p);
        free.step(&model);
        assert!(spread_of(&values(free.current())) > 0.1);
    }

    fn values(x: Tensor<4>) -> Vec<f32> {
        x.into_data().try_to_vec::<f32>().expect("f32")
    }

    #[test]
    fn same_seed_same_samples_and_ddim_is_deterministic() {
        let device = Device::flex();
        let model = Mixture::example(Prediction::Velocity);
        let run = |kind, seeds: &[u64]| {
            Sampler::new(kind, 8, seeds, [1, 8, 8], &device)
                .expect("sampler")
                .run(&model)
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        for kind in [
            SamplerKind::Ddpm,
            SamplerKind::Ddim,
            SamplerKind::DpmSolver2M,
        ] {
            let a = run(kind, &[1, 2]);
            assert_eq!(a, run(kind, &[1, 2]), "{}", kind.name());
            // An item depends on its own seed only, not on its batch.
            assert_eq!(a[64..], run(kind, &[2])[..], "{}", kind.name());
            assert_ne!(a[..64], a[64..], "{}", kind.name());
        }
        // DDPM adds fresh noise, DDIM does not: from the same start they differ.
        assert_ne!(run(SamplerKind::Ddpm, &[1]), run(SamplerKind::Ddim, &[1]));
    }

    #[test]
    fn steps_report_progress_and_bad_settings_are_refused() {
        let device = Device::flex();
        let model = Mixture::example(Prediction::Velocity);
        let mut s =
            Sampler::new(SamplerKind::DpmSolver2M, 3, &[1], [1, 4, 4], &device).expect("sampler");
        assert_eq!((s.steps(), s.steps_done(), s.is_done()), (3, 0, false));
        s.step(&model);
        s.step(&model);
        assert_eq!(s.steps_done(), 2);
        let last = s.step(&model).into_data().try_to_vec::<f32>().expect("f32");
        assert!(s.is_done());
        // The last step's estimate is the sample itself.
        assert_eq!(
            last,
            s.current().into_data().try_to_vec::<f32>().expect("f32")
        );
        assert_eq!(
            Sampler::new(SamplerKind::Ddim, 0, &[1], [1, 4, 4], &device).err(),
            Some(SamplerError::Steps(0))
        );
        assert!(Sampler::new(SamplerKind::Ddim, 2, &[], [1, 4, 4], &device).is_err());
        assert_eq!("DPM++".parse::<SamplerKind>(), Ok(SamplerKind::DpmSolver2M));
        let err = "euler".parse::<SamplerKind>().expect_err("unknown");
        assert!(err.to_string().contains("ddpm, ddim or dpm++"), "{err}");
    }
}
