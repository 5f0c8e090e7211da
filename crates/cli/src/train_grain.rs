//! `synthscope train grain`: trains Net1, then Net2 with Net1 frozen, on random patches.
//!
//! Phase 1 fits Net1 to the true boundary masks. Phase 2 fits Net2 as a denoiser of boundary
//! maps conditioned on Net1's input planes: the clean map it must recover is always the truth,
//! and the map that gets noised is the truth or (half of the time) Net1's binary guess for the
//! same patch, so Net2 learns to correct the mistakes Net1 actually makes.
//!
//! Every epoch ends with validation on whole held-out images and a checkpoint in `<out>.ckpt/`
//! (model, optimizer, progress); `--resume` continues from it.

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};
use clap::Args;
use models::grain::{self, GrainInput, GrainModel, RefineConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use synth::tem::TemConfig;

use crate::device::{DeviceChoice, block_on, device};
use crate::grain_data::{self, GrainSample};
use crate::training::{
    Checkpoint, SourceArgs, learning_rate, progress_bar, say, split_validation, write_weights,
};

#[derive(Debug, Args)]
pub(crate) struct TrainGrainArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Where to write the trained weights (checkpoints go to <out>.ckpt/).
    #[arg(long)]
    out: PathBuf,
    /// Images held out for validation (taken from the end of the data).
    #[arg(long, default_value_t = 24)]
    val: usize,
    /// Net1 epochs (an epoch is one patch from every training image).
    #[arg(long, default_value_t = 8)]
    net1_epochs: usize,
    /// Net2 epochs.
    #[arg(long, default_value_t = 4)]
    net2_epochs: usize,
    /// Stop each epoch after this many steps (for smoke tests).
    #[arg(long)]
    max_steps_per_epoch: Option<usize>,
    /// Patches per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Patch side in pixels (rounded down to a multiple of 8, at most the image size).
    #[arg(long, default_value_t = 96)]
    patch: usize,
    /// Peak learning rate of Adam (cosine decay to 1/20 of it within each phase).
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Net1's channels at full resolution.
    #[arg(long, default_value_t = 16)]
    net1_channels: usize,
    /// Net2's channels at full resolution.
    #[arg(long, default_value_t = 16)]
    net2_channels: usize,
    /// Input planes for ablations: all (Sobel, LoG, Canny and grey) or one edge detector plus grey.
    #[arg(long, value_enum, default_value_t = Planes::All)]
    planes: Planes,
    /// Start Net1 from these weights (with --net1-epochs 0: train only Net2 on a trained Net1).
    #[arg(long, conflicts_with = "resume")]
    init_net1: Option<PathBuf>,
    /// Start both networks from these weights and fine-tune them (their architecture and input
    /// planes; `adapt grain` passes the grain networks it adapts).
    #[arg(long, conflicts_with_all = ["resume", "init_net1"])]
    init: Option<PathBuf>,
    /// Refinement noise level t₀ recorded in the weights (0–1).
    #[arg(long, default_value_t = RefineConfig::default().t0)]
    t0: f32,
    /// Boundary probability threshold recorded in the weights (0–1).
    #[arg(long, default_value_t = RefineConfig::default().threshold)]
    threshold: f32,
    /// Continue from the checkpoint in <out>.ckpt/.
    #[arg(long)]
    resume: bool,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

/// `--planes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Planes {
    /// Fused edges (Sobel, LoG, Canny) and the grey image.
    All,
    /// Fused edges without the grey image.
    Edges,
    /// Sobel and grey.
    Sobel,
    /// Laplacian of Gaussian and grey.
    Log,
    /// Canny and grey.
    Canny,
    /// The grey image alone.
    Grey,
}

impl Planes {
    fn mask(self) -> [bool; 4] {
        match self {
            Planes::All => [true; 4],
            Planes::Edges => [true, true, true, false],
            Planes::Sobel => [true, false, false, true],
            Planes::Log => [false, true, false, true],
            Planes::Canny => [false, false, true, true],
            Planes::Grey => [false, false, false, true],
        }
    }
}

/// Progress saved with every checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    /// 1 = Net1, 2 = Net2, 3 = done.
    phase: u8,
    /// Epochs finished in the current phase.
    epoch: usize,
    /// Steps finished in the current phase.
    step: usize,
}

/// Sigmoid cross-entropy from logits plus half a soft-Dice term (boundaries are ~8 % of pixels:
/// Dice keeps the thin class from being ignored, cross-entropy keeps pixels calibrated).
///
/// # Shapes
/// - `logits`, `target`: `[batch, 1, h, w]`, target in {0, 1}
fn boundary_loss(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    // max(z, 0) − z·y + ln(1 + e^(−|z|)): stable for any z.
    let bce = relu(logits.clone()) - logits.clone() * target.clone()
        + logits.clone().abs().neg().exp().log1p();
    let p = sigmoid(logits);
    let intersection = (p.clone() * target.clone()).sum();
    let dice = intersection
        .mul_scalar(2.0)
        .add_scalar(1.0)
        .div(p.sum() + target.sum().add_scalar(1.0))
        .neg()
        .add_scalar(1.0);
    bce.mean() + dice.mul_scalar(0.5)
}

/// A batch of patches: Net1 planes `[b, 4, p, p]` and targets `[b, 1, p, p]` as host vectors.
struct Batch {
    planes: Vec<f32>,
    target: Vec<f32>,
    size: usize,
    patch_h: usize,
    patch_w: usize,
}

fn sample_batch(
    samples: &[GrainSample],
    batch: usize,
    patch: usize,
    rng: &mut ChaCha8Rng,
) -> Batch {
    let min_h = samples.iter().map(|s| s.height).min().unwrap_or(8);
    let min_w = samples.iter().map(|s| s.width).min().unwrap_or(8);
    let (ph, pw) = (
        (patch.min(min_h) / 8 * 8).max(8),
        (patch.min(min_w) / 8 * 8).max(8),
    );
    let c = grain::NET1_CHANNELS;
    let mut planes = vec![0.0f32; batch * c * ph * pw];
    let mut target = vec![0.0f32; batch * ph * pw];
    for b in 0..batch {
        let s = &samples[rng.random_range(0..samples.len())];
        let x0 = rng.random_range(0..=s.width - pw);
        let y0 = rng.random_range(0..=s.height - ph);
        for y in 0..ph {
            let src = (y0 + y) * s.width + x0;
            let dst = (b * ph + y) * pw;
            for (t, &m) in target[dst..dst + pw]
                .iter_mut()
                .zip(&s.boundary[src..src + pw])
            {
                *t = if m { 1.0 } else { 0.0 };
            }
            for ch in 0..c {
                let src = (ch * s.height + y0 + y) * s.width + x0;
                let dst = ((b * c + ch) * ph + y) * pw;
                planes[dst..dst + pw].copy_from_slice(&s.planes[src..src + pw]);
            }
        }
    }
    Batch {
        planes,
        target,
        size: batch,
        patch_h: ph,
        patch_w: pw,
    }
}

impl Batch {
    /// Net1's input planes, with the planes the model does not use zeroed.
    fn planes(&self, header: &grain::GrainHeader, device: &Device) -> Tensor<4> {
        let shape = [self.size, grain::NET1_CHANNELS, self.patch_h, self.patch_w];
        header.select_planes(Tensor::from_data(
            TensorData::new(self.planes.clone(), shape),
            device,
        ))
    }
    fn target(&self, device: &Device) -> Tensor<4> {
        let shape = [self.size, 1, self.patch_h, self.patch_w];
        Tensor::from_data(TensorData::new(self.target.clone(), shape), device)
    }
}

/// Validation scores averaged over images.
#[derive(Debug, Default, Clone, Copy, Serialize)]
struct ValScores {
    net1_pixel_accuracy: f64,
    net1_boundary_f1: f64,
    pixel_accuracy: f64,
    boundary_f1: f64,
    mean_iterations: f64,
}

fn validate(
    model: &GrainModel,
    samples: &[GrainSample],
    refine: bool,
    device: &Device,
) -> Result<ValScores> {
    let mut v = ValScores::default();
    for s in samples {
        let input = GrainInput::new(&s.planes, s.width, s.height, model.multiple_px())?;
        let r = RefineConfig {
            max_iterations: if refine {
                RefineConfig::default().max_iterations
            } else {
                0
            },
            ..model.header.refine
        };
        let p = block_on(grain::predict(model, input, r, device))?;
        let a =
            imaging::metrics::boundary_scores(&p.net1_mask, &s.boundary, s.width, s.height, 2.0);
        let b = imaging::metrics::boundary_scores(&p.mask, &s.boundary, s.width, s.height, 2.0);
        v.net1_pixel_accuracy += a.pixel_accuracy;
        v.net1_boundary_f1 += a.f1;
        v.pixel_accuracy += b.pixel_accuracy;
        v.boundary_f1 += b.f1;
        v.mean_iterations += p.iterations as f64;
    }
    let n = samples.len().max(1) as f64;
    Ok(ValScores {
        net1_pixel_accuracy: v.net1_pixel_accuracy / n,
        net1_boundary_f1: v.net1_boundary_f1 / n,
        pixel_accuracy: v.pixel_accuracy / n,
        boundary_f1: v.boundary_f1 / n,
        mean_iterations: v.mean_iterations / n,
    })
}

pub(crate) fn run(a: &TrainGrainArgs) -> Result<()> {
    let threshold_ok = 0.0 < a.threshold && a.threshold < 1.0;
    if !((0.0..1.0).contains(&a.t0) && threshold_ok) {
        bail!("--t0 must be in [0, 1) and --threshold in (0, 1)");
    }
    let device = device(a.device)?.autodiff();
    // Seeded initial weights: the same command trains the same networks.
    device.seed(a.source.seed);
    let started = Instant::now();
    let samples = a.source.samples(
        &TemConfig::default(),
        grain_data::load_dir,
        grain_data::generate,
    )?;
    let (train, val) = split_validation(samples, a.val)?;
    eprintln!(
        "grain training: {} training and {} validation images ({:.1} s to prepare edge maps)",
        train.len(),
        val.len(),
        started.elapsed().as_secs_f64()
    );

    let mut ckpt = Checkpoint::open(&a.out)?;

    let fresh = || {
        let mut model = GrainModel::init(
            models::unet::UNetConfig {
                base_channels: a.net1_channels,
                ..grain::default_net1()
            },
            models::unet::UNetConfig {
                base_channels: a.net2_channels,
                ..grain::default_net2()
            },
            &device,
        );
        model.header.planes = a.planes.mask();
        model
    };
    let fresh = || -> Result<GrainModel> {
        if let Some(path) = &a.init {
            let bytes =
                fs::read(path).with_context(|| format!("cannot read --init {}", path.display()))?;
            return GrainModel::from_bytes(&bytes, &device)
                .with_context(|| format!("--init: {} is not a grain model file", path.display()));
        }
        let mut model = fresh();
        if let Some(path) = &a.init_net1 {
            let bytes =
                fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let init = GrainModel::from_bytes(&bytes, &device)?;
            model.header.net1 = init.header.net1.clone();
            model.header.planes = init.header.planes;
            model.net1 = init.net1;
        }
        Ok(model)
    };
    let (mut model, mut progress, resumed) = if a.resume {
        let (bytes, progress): (Vec<u8>, Progress) = ckpt.resume()?;
        let model = GrainModel::from_bytes(&bytes, &device)?;
        eprintln!(
            "resuming phase {} at epoch {} (step {})",
            progress.phase, progress.epoch, progress.step
        );
        (model, progress, true)
    } else {
        (
            fresh()?,
            Progress {
                phase: 1,
                epoch: 0,
                step: 0,
            },
            false,
        )
    };
    model.header.refine.t0 = a.t0;
    model.header.refine.threshold = a.threshold;
    eprintln!(
        "Net1 {} parameters, Net2 {} parameters",
        model.net1.num_params(),
        model.net2.num_params()
    );

    let steps_per_epoch = {
        let full = train.len().div_ceil(a.batch.max(1));
        a.max_steps_per_epoch.map_or(full, |m| m.min(full)).max(1)
    };
    for phase in [1u8, 2] {
        let epochs = if phase == 1 {
            a.net1_epochs
        } else {
            a.net2_epochs
        };
        if progress.phase > phase {
            continue;
        }
        if progress.phase < phase {
            // The previous phase had no epochs (e.g. --net1-epochs 0 with --init-net1).
            progress = Progress {
                phase,
                epoch: 0,
                step: 0,
            };
        }
        let mut optim: ModuleOptimizer = AdamConfig::new().init();
        if resumed && progress.phase == phase && progress.step > 0 {
            optim = ckpt.load_optimizer(optim)?;
        }
        let total = epochs * steps_per_epoch;
        let bar = progress_bar(
            if phase == 1 { "Net1" } else { "Net2" },
            total,
            progress.step,
        );
        while progress.epoch < epochs {
            let mut loss_sum = 0.0;
            let epoch_started = Instant::now();
            for _ in 0..steps_per_epoch {
                // The batch depends only on (phase, step): a resumed run sees the same patches.
                let mut rng = ChaCha8Rng::seed_from_u64(
                    (u64::from(phase) << 40) ^ progress.step as u64 ^ a.source.seed,
                );
                let batch = sample_batch(&train, a.batch, a.patch, &mut rng);
                let lr = learning_rate(a.lr, progress.step, total);
                let loss = if phase == 1 {
                    let logits = model.net1.forward(batch.planes(&model.header, &device));
                    let loss = boundary_loss(logits, batch.target(&device));
                    let grads = GradientsParams::from_grads(loss.backward(), &model.net1);
                    model.net1 = optim.step(lr, model.net1.clone(), grads);
                    loss
                } else {
                    let logits = model
                        .net2
                        .forward(net2_batch(&model, &batch, &mut rng, &device)?);
                    let loss = boundary_loss(logits, batch.target(&device));
                    let grads = GradientsParams::from_grads(loss.backward(), &model.net2);
                    model.net2 = optim.step(lr, model.net2.clone(), grads);
                    loss
                };
                let loss_value = grain::read_f32(loss.detach()).await_now()?[0] as f64;
                loss_sum += loss_value;
                progress.step += 1;
                bar.inc(1);
                bar.set_message(format!("loss {loss_value:.4}"));
            }
            progress.epoch += 1;
            let valid = model_valid(&model);
            let scores = validate(&valid, &val, phase == 2, &device.clone().inner())?;
            let line = serde_json::json!({
                "phase": phase,
                "epoch": progress.epoch,
                "step": progress.step,
                "train_loss": loss_sum / steps_per_epoch as f64,
                "epoch_seconds": epoch_started.elapsed().as_secs_f64(),
                "val": scores,
            });
            say(
                &bar,
                format!(
                    "{} epoch {}/{epochs}: loss {:.4}; validation Net1 accuracy {:.4} F1 {:.3}{}",
                    if phase == 1 { "Net1" } else { "Net2" },
                    progress.epoch,
                    loss_sum / steps_per_epoch as f64,
                    scores.net1_pixel_accuracy,
                    scores.net1_boundary_f1,
                    if phase == 2 {
                        format!(
                            "; Net1+Net2 accuracy {:.4} F1 {:.3} ({:.1} iterations)",
                            scores.pixel_accuracy, scores.boundary_f1, scores.mean_iterations
                        )
                    } else {
                        String::new()
                    }
                ),
            );
            ckpt.log(&line)?;
            if progress.epoch == epochs {
                progress = Progress {
                    phase: phase + 1,
                    epoch: 0,
                    step: 0,
                };
            }
            ckpt.save(&model.to_bytes()?, &optim, &progress)?;
            if progress.phase != phase {
                break;
            }
        }
        bar.finish_and_clear();
    }

    let mut final_model = model_valid(&model);
    let net1 = match (&a.init, &a.init_net1) {
        (Some(p), _) => format!("fine-tuned from {}: {} epochs", p.display(), a.net1_epochs),
        (None, Some(p)) => format!("from {}", p.display()),
        (None, None) => format!("{} epochs", a.net1_epochs),
    };
    final_model.header.trained = format!(
        "synthscope {} train grain: {} images, Net1 {net1}, Net2 {} epochs, batch {}, patch {} px",
        env!("CARGO_PKG_VERSION"),
        train.len(),
        a.net2_epochs,
        a.batch,
        a.patch
    );
    let bytes = final_model.to_bytes()?;
    let digest = write_weights(&a.out, &bytes)?;
    eprintln!(
        "wrote {} ({} bytes, sha256 {digest}) in {:.0} s",
        a.out.display(),
        bytes.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The model without autodiff, on the inner device, for validation and saving.
fn model_valid(model: &GrainModel) -> GrainModel {
    GrainModel {
        net1: model.net1.valid(),
        net2: model.net2.valid(),
        header: model.header.clone(),
    }
}

/// Net2's training input for a batch: the truth or Net1's guess (coin flip per patch), noised to
/// a random time in [0.05, 0.6], with the time plane and the condition planes.
fn net2_batch(
    model: &GrainModel,
    batch: &Batch,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<Tensor<4>> {
    let inner = device.clone().inner();
    let net1 = model.net1.valid();
    // [b, 1, p, p] binary guess from the frozen Net1.
    let guess = net1
        .forward(batch.planes(&model.header, &inner))
        .greater_elem(0.0)
        .float();
    let guess = grain::read_f32(guess).await_now()?;
    let n = batch.patch_h * batch.patch_w;
    let mut x0 = Vec::with_capacity(batch.size * n);
    let mut alpha = Vec::with_capacity(batch.size);
    let mut times = Vec::with_capacity(batch.size);
    for b in 0..batch.size {
        let source = if rng.random::<bool>() {
            &guess
        } else {
            &batch.target
        };
        x0.extend(source[b * n..(b + 1) * n].iter().map(|&v| 2.0 * v - 1.0));
        let t: f32 = rng.random_range(0.05..0.6);
        times.push(t);
        alpha.push(models::diffusion::alpha_bar(t));
    }
    let shape = [batch.size, 1, batch.patch_h, batch.patch_w];
    let x0 = Tensor::<4>::from_data(TensorData::new(x0, shape), device);
    let noise = Tensor::<4>::from_data(
        TensorData::new(
            models::diffusion::noise_field(batch.size * n, rng.random()),
            shape,
        ),
        device,
    );
    let ab = Tensor::<4>::from_data(TensorData::new(alpha, [batch.size, 1, 1, 1]), device);
    let t = Tensor::<4>::from_data(TensorData::new(times, [batch.size, 1, 1, 1]), device);
    Ok(grain::net2_input(
        grain::noised(x0, noise, ab),
        t,
        batch.planes(&model.header, device),
    ))
}

/// Native reads resolve at once.
trait AwaitNow: std::future::Future + Sized {
    fn await_now(self) -> Self::Output {
        block_on(self)
    }
}

impl<F: std::future::Future> AwaitNow for F {}
