//! The diffusion core every generative model of Synthscope shares: one noise schedule, one set of
//! samplers, one denoising U-Net and one autoencoder.
//!
//! - [`schedule`]: the cosine schedule ᾱ(t) on continuous time t ∈ [0, 1], the noise levels
//!   α = √ᾱ and σ = √(1 − ᾱ) derived from it, sampling time grids and the platform-independent
//!   noise fields.
//! - [`sampler`]: DDPM (ancestral), DDIM (deterministic) and DPM-Solver++(2M) as step-by-step
//!   state machines, so a caller (the browser worker) can report progress, show the current
//!   estimate of the clean image and stop between steps.
//! - [`denoiser`]: the U-Net with sinusoidal time embedding, GroupNorm/SiLU residual blocks,
//!   self-attention at the coarsest level and two kinds of condition: a tag vector (dropped in
//!   training for classifier-free guidance) and image planes concatenated to the input.
//! - [`vae`]: the KL-regularised autoencoder between images and a latent (built and tested; no
//!   trained one is compared against the polar representation yet).
//! - [`prior`]: the linear-Gaussian latent prior (probabilistic PCA, a linear VAE's optimum) on
//!   the generator's polar grid: the decoded-random-latents baseline it is judged against.
//! - [`generator`]: the tag-conditioned scattering generator (a one-dimensional denoiser over
//!   the rows of the sample's polar image) and its weights file.
//! - [`tem`]: the mask-conditioned TEM generator (a two-dimensional, purely convolutional
//!   denoiser reading the boundary mask as condition planes) and its weights file.
//!
//! The grain pipeline's SDEdit refinement (`crate::grain`) uses the same schedule and noise fields.
//!
//! # Conventions
//! `x_t = α(t)·x₀ + σ(t)·ε` with ε standard normal; t = 0 is clean data, t = 1 (nearly) pure
//! noise. A network predicts ε ([`Prediction::Noise`]) or the velocity `v = α·ε − σ·x₀`
//! ([`Prediction::Velocity`]); samplers work on the pair (x̂₀, ε̂) either gives.

pub mod denoiser;
pub mod generator;
pub mod prior;
pub mod sampler;
pub mod schedule;
pub mod tem;
pub mod vae;

pub use sampler::{Denoise, Prediction, Sampler, SamplerError, SamplerKind};
pub use schedule::{NoiseLevel, alpha_bar, noise_field, time_grid};
