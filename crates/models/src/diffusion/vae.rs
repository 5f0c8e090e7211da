//! The KL-regularised autoencoder (Kingma & Welling 2014; the first stage of latent diffusion,
//! Rombach et al. 2022) between images and the small latent the denoiser works on.
//!
//! The encoder is a stack of residual blocks (GroupNorm, SiLU, 3×3 convolutions) with stride-2
//! convolutions between levels, ending in the mean and log-variance of a diagonal Gaussian per
//! latent value; the decoder mirrors it with nearest-neighbour upsampling. The loss is the mean
//! squared reconstruction error plus `kl_weight` × the KL divergence to N(0, 1), kept small so
//! the latent keeps thin rings (a larger weight trades detail for a smoother prior).
//!
//! With `L = multipliers.len()` levels an `h × w` image becomes a
//! `latent_channels × h/2^(L−1) × w/2^(L−1)` latent.

use super::denoiser::{ResBlock, conv3, down2, upsample_nearest};
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

/// Shape of a [`Vae`].
#[derive(Config, Debug, PartialEq)]
pub struct VaeConfig {
    /// Image channels.
    #[config(default = 1)]
    pub channels: usize,
    /// Latent channels.
    #[config(default = 4)]
    pub latent_channels: usize,
    /// Channels at full resolution.
    #[config(default = 16)]
    pub base_width: usize,
    /// Width multiplier per level, from full resolution down.
    #[config(default = "vec![1, 2, 4, 4]")]
    pub multipliers: Vec<usize>,
    /// Groups of every GroupNorm (must divide every width).
    #[config(default = 8)]
    pub groups: usize,
}

impl VaeConfig {
    /// The factor by which height and width shrink (also the multiple inputs must be).
    pub fn downsampling(&self) -> usize {
        1 << self.multipliers.len().saturating_sub(1)
    }

    fn width(&self, level: usize) -> usize {
        self.base_width * self.multipliers[level]
    }

    /// Checks that the shape can be built.
    pub fn validate(&self) -> Result<(), String> {
        if self.multipliers.is_empty() || self.multipliers.contains(&0) {
            return Err("multipliers must be a non-empty list of positive numbers".into());
        }
        if self.channels == 0 || self.latent_channels == 0 || self.base_width == 0 {
            return Err("channels, latent channels and base width must be positive".into());
        }
        for l in 0..self.multipliers.len() {
            if self.groups == 0 || !self.width(l).is_multiple_of(self.groups) {
                return Err(format!(
                    "{} groups do not divide width {}",
                    self.groups,
                    self.width(l)
                ));
            }
        }
        Ok(())
    }

    /// Builds the autoencoder with freshly initialised weights on `device`.
    ///
    /// # Panics
    /// When [`VaeConfig::validate`] fails.
    pub fn init(&self, device: &Device) -> Vae {
        if let Err(e) = self.validate() {
            panic!("invalid autoencoder shape: {e}");
        }
        let levels = self.multipliers.len();
        let top = self.width(levels - 1);
        let mut enc_blocks = Vec::new();
        let mut enc_down = Vec::new();
        let mut width = self.width(0);
        for l in 0..levels {
            enc_blocks.push(ResBlock::new(
                width,
                self.width(l),
                0,
                self.groups,
                false,
                device,
            ));
            width = self.width(l);
            if l + 1 < levels {
                enc_down.push(down2(width, false, device));
            }
        }
        let mut dec_blocks = Vec::new();
        let mut dec_up = Vec::new();
        for l in (0..levels).rev() {
            dec_blocks.push(ResBlock::new(
                width,
                self.width(l),
                0,
                self.groups,
                false,
                device,
            ));
            width = self.width(l);
            if l > 0 {
                dec_up.push(conv3(width, self.width(l - 1), false, device));
                width = self.width(l - 1);
            }
        }
        Vae {
            enc_in: conv3(self.channels, self.width(0), false, device),
            enc_blocks,
            enc_down,
            enc_mid: ResBlock::new(top, top, 0, self.groups, false, device),
            enc_norm: GroupNormConfig::new(self.groups, top).init(device),
            enc_out: Conv2dConfig::new([top, 2 * self.latent_channels], [1, 1]).init(device),
            dec_in: conv3(self.latent_channels, top, false, device),
            dec_mid: ResBlock::new(top, top, 0, self.groups, false, device),
            dec_blocks,
            dec_up,
            dec_norm: GroupNormConfig::new(self.groups, self.width(0)).init(device),
            dec_out: conv3(self.width(0), self.channels, false, device),
            latent_channels: self.latent_channels,
        }
    }
}

/// The autoencoder. Built by [`VaeConfig::init`].
#[derive(Module, Debug)]
pub struct Vae {
    enc_in: Conv2d,
    enc_blocks: Vec<ResBlock>,
    enc_down: Vec<Conv2d>,
    enc_mid: ResBlock,
    enc_norm: GroupNorm,
    enc_out: Conv2d,
    dec_in: Conv2d,
    dec_mid: ResBlock,
    dec_blocks: Vec<ResBlock>,
    dec_up: Vec<Conv2d>,
    dec_norm: GroupNorm,
    dec_out: Conv2d,
    latent_channels: usize,
}

/// The encoder's Gaussian over latents.
#[derive(Debug, Clone)]
pub struct Posterior {
    /// `[batch, latent_channels, h/f, w/f]`
    pub mean: Tensor<4>,
    /// Log-variance, same shape, clamped to [−30, 20] as in latent diffusion.
    pub log_var: Tensor<4>,
}

impl Posterior {
    /// A draw `mean + exp(log_var/2)·noise` (the reparameterisation trick).
    ///
    /// # Shapes
    /// - `noise`: as `mean` → same
    pub fn sample(&self, noise: Tensor<4>) -> Tensor<4> {
        self.mean.clone() + self.log_var.clone().mul_scalar(0.5).exp() * noise
    }

    /// KL(q ‖ N(0, 1)) per latent value, averaged: ½·mean(μ² + σ² − 1 − ln σ²).
    ///
    /// # Shapes
    /// - output: `[1]`
    pub fn kl(&self) -> Tensor<1> {
        let var = self.log_var.clone().exp();
        (self.mean.clone().powi_scalar(2) + var - self.log_var.clone())
            .sub_scalar(1.0)
            .mean()
            .mul_scalar(0.5)
    }
}

/// The parts of the autoencoder's loss.
#[derive(Debug, Clone)]
pub struct VaeLoss {
    /// Mean squared reconstruction error, `[1]`.
    pub reconstruction: Tensor<1>,
    /// KL divergence per latent value, `[1]`.
    pub kl: Tensor<1>,
    /// `reconstruction + kl_weight·kl`, `[1]`.
    pub total: Tensor<1>,
}

impl Vae {
    /// Latent channels.
    pub fn latent_channels(&self) -> usize {
        self.latent_channels
    }

    /// The Gaussian over latents for a batch of images.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, h, w]`, h and w multiples of [`VaeConfig::downsampling`]
    pub fn encode(&self, x: Tensor<4>) -> Posterior {
        let mut h = self.enc_in.forward(x);
        for (l, block) in self.enc_blocks.iter().enumerate() {
            h = block.forward(h, None);
            if let Some(d) = self.enc_down.get(l) {
                h = d.forward(h);
            }
        }
        h = self.enc_mid.forward(h, None);
        let moments = self.enc_out.forward(silu(self.enc_norm.forward(h)));
        let c = self.latent_channels;
        Posterior {
            mean: moments.clone().narrow(1, 0, c),
            log_var: moments.narrow(1, c, c).clamp(-30.0, 20.0),
        }
    }

    /// Images from latents.
    ///
    /// # Shapes
    /// - `z`: `[batch, latent_channels, h/f, w/f]` → `[batch, channels, h, w]`
    pub fn decode(&self, z: Tensor<4>) -> Tensor<4> {
        let mut h = self.dec_mid.forward(self.dec_in.forward(z), None);
        for (l, block) in self.dec_blocks.iter().enumerate() {
            h = block.forward(h, None);
            if let Some(u) = self.dec_up.get(l) {
                h = u.forward(upsample_nearest(h, false));
            }
        }
        self.dec_out.forward(silu(self.dec_norm.forward(h)))
    }

    /// The training loss for a batch, with `noise` for the reparameterised draw.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, h, w]`; `noise`: the latent's shape
    pub fn loss(&self, x: Tensor<4>, noise: Tensor<4>, kl_weight: f32) -> VaeLoss {
        let posterior = self.encode(x.clone());
        let recon = self.decode(posterior.sample(noise));
        let reconstruction = (recon - x).powi_scalar(2).mean();
        let kl = posterior.kl();
        let total = reconstruction.clone() + kl.clone().mul_scalar(kl_weight);
        VaeLoss {
            reconstruction,
            kl,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::sampler::batch_noise;
    use burn::tensor::TensorData;

    fn small() -> VaeConfig {
        VaeConfig::new()
            .with_base_width(8)
            .with_multipliers(vec![1, 2, 2])
            .with_groups(4)
    }

    #[test]
    fn shapes_shrink_by_the_downsampling_factor() {
        let device = Device::flex();
        let config = small();
        assert_eq!(config.downsampling(), 4);
        let vae = config.init(&device);
        let x = batch_noise(&[1, 2], [1, 32, 16], &device);
        let p = vae.encode(x);
        assert_eq!(p.mean.dims(), [2, 4, 8, 4]);
        assert_eq!(p.log_var.dims(), [2, 4, 8, 4]);
        assert_eq!(vae.decode(p.mean).dims(), [2, 1, 32, 16]);
        assert!(VaeConfig::new().with_groups(5).validate().is_err());
    }

    #[test]
    fn kl_matches_the_closed_form() {
        let device = Device::flex();
        // μ = 1, ln σ² = 0: ½(1 + 1 − 1 − 0) = 0.5; μ = 0, ln σ² = ln 2: ½(2 − 1 − ln 2) ≈ 0.1534.
        let p = Posterior {
            mean: Tensor::ones([1, 1, 2, 2], &device),
            log_var: Tensor::zeros([1, 1, 2, 2], &device),
        };
        assert!((p.kl().into_scalar::<f32>() - 0.5).abs() < 1e-6);
        let q = Posterior {
            mean: Tensor::zeros([1, 1, 2, 2], &device),
            log_var: Tensor::full([1, 1, 2, 2], 2f32.ln(), &device),
        };
        assert!((q.kl().into_scalar::<f32>() - 0.5 * (1.0 - 2f32.ln())).abs() < 1e-6);
        // The draw: μ + σ·noise.
        let z = q.sample(Tensor::ones([1, 1, 2, 2], &device));
        let v = z.into_data().try_to_vec::<f32>().expect("f32");
        assert!(v.iter().all(|&a| (a - 2f32.sqrt()).abs() < 1e-6));
    }

    #[test]
    fn training_lowers_the_reconstruction_error() {
        use burn::optim::{AdamConfig, GradientsParams};
        let device = Device::flex().autodiff();
        let mut vae = small().init(&device);
        // Two 16 × 16 images with a bright ring each.
        let mut data = Vec::new();
        for r0 in [4.0f32, 6.0] {
            for y in 0..16 {
                for x in 0..16 {
                    let r = ((x as f32 - 7.5).powi(2) + (y as f32 - 7.5).powi(2)).sqrt();
                    data.push((-(r - r0).powi(2) / 2.0).exp() * 2.0 - 1.0);
                }
            }
        }
        let x = Tensor::<4>::from_data(TensorData::new(data, [2, 1, 16, 16]), &device);
        let noise = batch_noise(&[7, 8], [4, 4, 4], &device);
        let first = vae
            .loss(x.clone(), noise.clone(), 1e-3)
            .reconstruction
            .into_scalar::<f32>();
        let mut optim = AdamConfig::new().init();
        for _ in 0..60 {
            let loss = vae.loss(x.clone(), noise.clone(), 1e-3);
            let grads = GradientsParams::from_grads(loss.total.backward(), &vae);
            vae = optim.step(3e-3, vae, grads);
        }
        let last = vae.loss(x, noise, 1e-3).reconstruction.into_scalar::<f32>();
        assert!(last < 0.3 * first, "reconstruction error {first} → {last}");
    }
}
