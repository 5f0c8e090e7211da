//! The mask-conditioned TEM generator's commands (`models::diffusion::tem`):
//!
//! - `synthscope train tem-diffusion`: trains it on (boundary mask, micrograph) pairs of the
//!   engine (`--generate N`, or a `generate tem` directory with `--data`), on random square
//!   patches turned and mirrored, with v-prediction and an average of the weights that is
//!   validated every epoch and shipped; checkpoints in `<out>.ckpt/`, `--resume` continues,
//!   `--init` fine-tunes.
//! - `synthscope sample tem-diffusion`: draws one micrograph per engine mask (`--generate N`)
//!   or per mask image of a directory (`--masks DIR`) and writes the pairs in the
//!   `generate tem` layout, so `train grain` reads them unchanged.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use clap::Args;
use imaging::codec::GrayImage;
use models::diffusion::denoiser::{Condition, Denoiser, denoising_loss};
use models::diffusion::generator::SampleSettings;
use models::diffusion::schedule::noise_field;
use models::diffusion::tem::{
    CONDITION_PLANES, TemGenerator, condition_planes, default_tem_denoiser, gray_to_value, regress,
    space_to_depth, value_to_gray,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use synth::tem::TemConfig;

use crate::adapt::{Stage, path_arg, stage};
use crate::device::device;
use crate::ema::Ema;
use crate::segment::predict_boundaries;
use crate::stages::{Progress, RunArgs};
use crate::train_diffusion::{AverageArgs, DenoiserStage, DenoisingTask, loss_value, noise_draws};
use crate::training::{Checkpoint, SourceArgs, split_validation};

/// One training pair: a micrograph and the boundary mask it was drawn for.
#[derive(Clone)]
pub(crate) struct TemPair {
    pub width: usize,
    pub height: usize,
    /// Grey values in [−1, 1], row-major.
    pub image: Vec<f32>,
    /// Boundary mask, row-major.
    pub boundary: Vec<bool>,
}

impl TemPair {
    /// The `p × p` patch at (x, y), mirrored and transposed as asked: (image, mask).
    fn patch(&self, (x, y): (usize, usize), p: usize, flip: bool, transpose: bool) -> TemPair {
        let mut image = Vec::with_capacity(p * p);
        let mut boundary = Vec::with_capacity(p * p);
        for r in 0..p {
            for c in 0..p {
                let (mut i, j) = if transpose { (c, r) } else { (r, c) };
                if flip {
                    i = p - 1 - i;
                }
                let k = (y + i) * self.width + x + j;
                image.push(self.image[k]);
                boundary.push(self.boundary[k]);
            }
        }
        TemPair {
            width: p,
            height: p,
            image,
            boundary,
        }
    }
}

/// Engine pairs of batch `seed`, images `first…first + count`.
pub(crate) fn engine_pairs(
    config: &TemConfig,
    seed: u64,
    first: u64,
    count: usize,
) -> Result<Vec<TemPair>> {
    config.validate()?;
    (first..first + count as u64)
        .into_par_iter()
        .map(|i| {
            let t = synth::dataset::generate_tem(config, seed, i)?.image;
            Ok(TemPair {
                width: t.image.width(),
                height: t.image.height(),
                image: t.image.pixels().iter().map(|&g| gray_to_value(g)).collect(),
                boundary: t.boundary.pixels().iter().map(|&b| b > 0).collect(),
            })
        })
        .collect()
}

/// Grey values in [−1, 1] of an 8- or 16-bit image.
fn gray_values(image: &GrayImage, path: &Path) -> Result<Vec<f32>> {
    Ok(match image {
        GrayImage::U8(i) => i.pixels().iter().map(|&g| gray_to_value(g)).collect(),
        GrayImage::U16(i) => i
            .pixels()
            .iter()
            .map(|&g| f32::from(g) / 32767.5 - 1.0)
            .collect(),
        _ => bail!(
            "{}: only 8- and 16-bit grey micrographs can be trained on",
            path.display()
        ),
    })
}

/// The pairs of a `generate tem` directory (its labels.jsonl).
pub(crate) fn load_pairs(dir: &Path, limit: Option<usize>) -> Result<Vec<TemPair>> {
    let lines = crate::labels::read(dir, "tem", limit)?;
    lines
        .par_iter()
        .map(|(n, v)| {
            let field = |k: &str| crate::labels::file_field(dir, v, k, *n);
            let read = |p: &Path| {
                let bytes = fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
                crate::grain_data::decode(&bytes, p)
            };
            let path = field("file")?;
            let image = read(&path)?;
            let boundary = read(&field("boundary")?)?;
            let (width, height) = (image.to_f32().width(), image.to_f32().height());
            let boundary: Vec<bool> = boundary
                .to_f32()
                .pixels()
                .iter()
                .map(|&b| b > 0.0)
                .collect();
            if boundary.len() != width * height {
                bail!("labels.jsonl line {n}: image and boundary mask differ in size");
            }
            Ok(TemPair {
                width,
                height,
                image: gray_values(&image, &path)?,
                boundary,
            })
        })
        .collect()
}

#[derive(Debug, Args)]
pub(crate) struct TrainTemDiffusionArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    run: RunArgs,
    /// Start from this TEM generator and fine-tune it (its architecture).
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    #[command(flatten)]
    average: AverageArgs,
    /// Side of the square training patches, pixels (a multiple of 4, at most the images'
    /// smaller side).
    #[arg(long, default_value_t = 64)]
    patch_px: usize,
    /// Channels of the network's first level (32 ships; smaller for smoke tests).
    #[arg(long, default_value_t = 32)]
    width: usize,
    /// Residual blocks per level of the network.
    #[arg(long, default_value_t = 2)]
    blocks_per_level: usize,
    /// Train the deterministic regressor instead (one pass from the mask, L1 loss): the
    /// distortion ceiling `eval tem-diffusion --deterministic` compares the sampler with.
    #[arg(long, conflicts_with_all = ["resume", "init"])]
    deterministic: bool,
    /// Train an unconditional base that ignores the mask (the frozen half of the
    /// ControlNet-style comparison, `--control-of`).
    #[arg(long, conflicts_with_all = ["resume", "init", "deterministic"])]
    unconditional: bool,
    /// The ControlNet-style variant: freeze this unconditional base (from `--unconditional`)
    /// and train a copy of its way down and middle that reads the mask, joined to it through
    /// zero-initialised 1 × 1 convolutions.
    #[arg(long, value_name = "BASE", conflicts_with_all = ["resume", "init", "deterministic", "unconditional"])]
    control_of: Option<PathBuf>,
}

pub(crate) fn train(a: &TrainTemDiffusionArgs) -> Result<()> {
    let (src, run) = (&a.source, &a.run);
    a.average.check()?;
    let device = device(run.device)?.autodiff();
    device.seed(src.seed);
    let started = Instant::now();
    let mut ckpt = Checkpoint::open(&run.out)?;
    let (mut generator, ema_net, mut progress) = if run.resume {
        let (bytes, progress): (Vec<u8>, Progress) = ckpt.resume()?;
        let (live, ema) = crate::ema::split_checkpoint(&bytes)?;
        eprintln!(
            "resuming at epoch {} (step {})",
            progress.epoch, progress.step
        );
        (
            TemGenerator::from_bytes(live, &device)?,
            Some(TemGenerator::from_bytes(ema, &device.clone().inner())?),
            progress,
        )
    } else if let Some(path) = &a.init {
        let bytes =
            fs::read(path).with_context(|| format!("cannot read --init {}", path.display()))?;
        let g = TemGenerator::from_bytes(&bytes, &device).with_context(|| {
            format!(
                "--init: {} is not a TEM diffusion model file",
                path.display()
            )
        })?;
        eprintln!("fine-tuning {} ({})", path.display(), g.header.trained);
        (g, None, Progress::default())
    } else if let Some(path) = &a.control_of {
        let (base, name, _) = load_model(Some(path), &device)?;
        let g = base
            .with_control()
            .with_context(|| format!("--control-of {name}"))?;
        eprintln!(
            "ControlNet-style branch on the frozen base {name} ({})",
            g.header.trained
        );
        (g, None, Progress::default())
    } else {
        let mut config = default_tem_denoiser()
            .with_base_width(a.width)
            .with_blocks_per_level(a.blocks_per_level);
        if a.unconditional {
            config = config.with_condition_channels(0);
        }
        let mut g = TemGenerator::init(config, a.patch_px, &device)?;
        g.header.deterministic = a.deterministic;
        (g, None, Progress::default())
    };
    generator.header.check_size(a.patch_px, a.patch_px)?;
    generator.header.patch_px = a.patch_px;
    let samples = src.samples(&TemConfig::default(), load_pairs, |c, seed, n| {
        engine_pairs(c, seed, 0, n)
    })?;
    let (train, val) = split_validation(samples, run.val)?;
    if let Some(small) = train
        .iter()
        .chain(&val)
        .find(|p| p.width < a.patch_px || p.height < a.patch_px)
    {
        bail!(
            "a {} × {} image is smaller than --patch-px {}",
            small.width,
            small.height,
            a.patch_px
        );
    }
    let described = match &src.data {
        Some(dir) => format!("{} pairs of {}", train.len(), dir.display()),
        None => format!("{} engine pairs (batch seed {})", train.len(), src.seed),
    };
    eprintln!(
        "TEM diffusion training ({}) on {described}, {} px patches; {} validation pairs, prepared in {:.1} s",
        generator.header.conditioning().name(),
        a.patch_px,
        val.len(),
        started.elapsed().as_secs_f64()
    );
    let schedule = run.schedule(train.len());
    let batch_size = run.batch_size(train.len());
    if !run.resume {
        let start = a
            .init
            .as_ref()
            .map(|p| format!(", fine-tuned from {}", p.display()))
            .unwrap_or_default();
        generator.header.trained = format!(
            "synthscope {} train tem-diffusion: {described}{start}, {} px patches, {} epochs of {} steps, batch {batch_size}, lr {}, EMA {}",
            env!("CARGO_PKG_VERSION"),
            a.patch_px,
            schedule.epochs,
            schedule.steps_per_epoch,
            run.lr,
            a.average.ema,
        );
        if generator.header.deterministic {
            generator.header.trained += ", deterministic regressor (L1)";
        }
        if a.unconditional {
            generator.header.trained += ", unconditional base (no mask)";
        }
        if let Some(base) = &a.control_of {
            generator.header.trained += &format!(
                ", ControlNet-style branch on the frozen base {}",
                base.display()
            );
        }
    }
    let ema = match ema_net {
        Some(net) => Ema::new(&net.denoiser, a.average.ema, progress.step as u64),
        None => Ema::new(&generator.denoiser, a.average.ema, 0),
    };
    let task = TemTask {
        train: &train,
        val: &val,
        batch_size,
        seed: src.seed,
        augment: !run.no_augment,
        device: &device,
        generator: &generator,
    };
    // Only a ControlNet-style branch trains when there is one; its base stays as it was.
    DenoiserStage::new(task, ema, &run.out, &a.average).train_and_ship(
        generator.denoiser.clone().freeze_base(),
        &schedule,
        &mut ckpt,
        &mut progress,
        &run.out,
        started,
    )
}

/// The denoising loss of `net` on `pairs` (all one size), each noised at `times[i]` with noise
/// of seed `seeds[i]`; for the deterministic regressor, the L1 error of its one pass (times and
/// noise play no part).
fn loss_on(
    net: &Denoiser,
    generator: &TemGenerator,
    pairs: &[TemPair],
    times: &[f32],
    seeds: &[u64],
    device: &Device,
) -> Result<Tensor<1>> {
    let (w, h, b) = (pairs[0].width, pairs[0].height, pairs.len());
    let mut images = Vec::with_capacity(b * w * h);
    let mut planes = Vec::with_capacity(b * CONDITION_PLANES * w * h);
    let mut noise = Vec::with_capacity(b * w * h);
    for (p, &s) in pairs.iter().zip(seeds) {
        images.extend_from_slice(&p.image);
        // A patch without a boundary (inside one large grain) is a valid condition too.
        match condition_planes(&p.boundary, w, h, generator.header.ramp_px) {
            Ok(v) => planes.extend(v),
            Err(_) => {
                let set = if p.boundary.iter().any(|&b| b) {
                    1.0
                } else {
                    -1.0
                };
                planes.extend(std::iter::repeat_n(set, CONDITION_PLANES * w * h));
            }
        }
        noise.extend(noise_field(w * h, s));
    }
    // Images, noise and planes in the network's layout of 2 × 2 pixel blocks.
    let x0 = space_to_depth(Tensor::from_data(
        TensorData::new(images, [b, 1, h, w]),
        device,
    ));
    let noise = space_to_depth(Tensor::from_data(
        TensorData::new(noise, [b, 1, h, w]),
        device,
    ));
    let condition = Condition {
        planes: Some(space_to_depth(Tensor::from_data(
            TensorData::new(planes, [b, CONDITION_PLANES, h, w]),
            device,
        ))),
        tags: None,
        tags_given: None,
    };
    if generator.header.deterministic {
        let planes = condition.planes.context("no condition planes")?;
        return Ok((regress(net, planes) - x0).abs().mean());
    }
    Ok(denoising_loss(
        net,
        generator.header.prediction,
        x0,
        noise,
        times,
        &condition,
        None,
    ))
}

/// The TEM generator's training data: random patches of (mask, micrograph) pairs.
struct TemTask<'a> {
    train: &'a [TemPair],
    val: &'a [TemPair],
    batch_size: usize,
    seed: u64,
    augment: bool,
    device: &'a Device,
    generator: &'a TemGenerator,
}

impl DenoisingTask for TemTask<'_> {
    fn name(&self) -> &'static str {
        if self.generator.header.deterministic {
            "tem-regressor"
        } else {
            "tem-denoiser"
        }
    }

    /// On the validation pairs' central patches.
    fn validation_loss(&self, net: &Denoiser) -> Result<(f64, f64, f64)> {
        let device = self.device.clone().inner();
        let p = self.generator.header.patch_px;
        let n = self.val.len();
        let (mut sum, mut low, mut high) = (0.0, 0.0, 0.0);
        for (i, pair) in self.val.iter().enumerate() {
            let centre = ((pair.width - p) / 2, (pair.height - p) / 2);
            let patch = pair.patch(centre, p, false, false);
            let t = (i as f32 + 0.5) / n as f32;
            let l = loss_on(
                net,
                self.generator,
                &[patch],
                &[t],
                &[(i as u64 + 1) << 20],
                &device,
            )?;
            let v = loss_value(l)?;
            sum += v;
            if t < 0.5 {
                low += v;
            } else {
                high += v;
            }
        }
        let half = (n as f64 / 2.0).max(1.0);
        Ok((sum / n.max(1) as f64, low / half, high / half))
    }

    fn loss(&mut self, net: &Denoiser, step: usize) -> Result<Tensor<1>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ ((step as u64) << 20) ^ 0x7E3D);
        let p = self.generator.header.patch_px;
        let b = self.batch_size;
        let patches: Vec<TemPair> = (0..b)
            .map(|_| {
                let pair = &self.train[rng.random_range(0..self.train.len())];
                let at = (
                    rng.random_range(0..=pair.width - p),
                    rng.random_range(0..=pair.height - p),
                );
                let (flip, transpose) = if self.augment {
                    (rng.random_bool(0.5), rng.random_bool(0.5))
                } else {
                    (false, false)
                };
                pair.patch(at, p, flip, transpose)
            })
            .collect();
        let (times, seeds) = noise_draws(b, &mut rng);
        loss_on(net, self.generator, &patches, &times, &seeds, self.device)
    }

    fn model_file(&self, net: Denoiser, note: &str) -> Result<Vec<u8>> {
        let mut header = self.generator.header.clone();
        header.trained += note;
        Ok(TemGenerator {
            denoiser: net,
            header,
        }
        .to_bytes()?)
    }
}

#[derive(Debug, Args)]
pub(crate) struct SampleTemDiffusionArgs {
    /// The TEM generator's weights (from `train tem-diffusion`; default: the shipped ones).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Draw one micrograph per engine mask: this many masks of batch --seed.
    #[arg(long, conflicts_with = "masks", required_unless_present = "masks")]
    generate: Option<usize>,
    /// Draw one micrograph per mask image in this directory (PNG or TIFF, white boundaries on
    /// black; sides multiples of 8 pixels).
    #[arg(long)]
    masks: Option<PathBuf>,
    /// Batch seed of --generate's masks and (unless --noise-seed) of the sampling noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the sampling noise (default: --seed): other samples of the same masks.
    #[arg(long)]
    noise_seed: Option<u64>,
    /// Denoising steps (DPM-Solver++).
    #[arg(long, default_value_t = models::diffusion::tem::DEFAULT_STEPS)]
    steps: usize,
    /// Micrographs sampled at once.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Output directory (the `generate tem` layout).
    #[arg(long)]
    out: PathBuf,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = crate::device::DeviceChoice::Cpu)]
    device: crate::device::DeviceChoice,
}

/// A mask to draw for, with what its line of labels.jsonl records.
pub(crate) struct MaskJob {
    /// File stem of the written pair.
    pub stem: String,
    pub width: usize,
    pub height: usize,
    pub boundary: Vec<bool>,
    /// Extra fields of the line (the engine's parameters, or the mask's file).
    pub origin: serde_json::Value,
}

/// Every mask image of `dir`, checked: binary and of a size the network draws.
fn masks_of_dir(dir: &Path, g: &TemGenerator) -> Result<Vec<MaskJob>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "tif" | "tiff"))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("{} holds no PNG or TIFF masks", dir.display());
    }
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let bytes = fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            let image = crate::grain_data::decode(&bytes, p)?.to_f32();
            let (width, height) = (image.width(), image.height());
            let name = p.display();
            g.header
                .check_size(width, height)
                .with_context(|| format!("{name}"))?;
            let boundary = models::diffusion::tem::mask_from_gray(image.pixels())
                .with_context(|| format!("{name}"))?;
            condition_planes(&boundary, width, height, g.header.ramp_px)
                .with_context(|| format!("{name}"))?;
            Ok(MaskJob {
                stem: format!("tem_{i:06}"),
                width,
                height,
                boundary,
                origin: serde_json::json!({ "mask_file": p.display().to_string() }),
            })
        })
        .collect()
}

/// Writes a drawn micrograph, its mask and the grains the mask encloses in the `generate tem`
/// layout (`synth::dataset::drawn_tem_record`, as the browser's download); returns its line of
/// labels.jsonl.
pub(crate) fn write_pair(out: &Path, job: &MaskJob, pixels: Vec<u8>) -> Result<serde_json::Value> {
    let origin = job.origin.as_object().cloned().unwrap_or_default();
    let record = synth::dataset::drawn_tem_record(
        &job.stem,
        &job.boundary,
        (job.width, job.height),
        pixels,
        &origin,
    )?;
    for f in &record.files {
        fs::write(out.join(&f.name), &f.bytes)
            .with_context(|| format!("cannot write {}", f.name))?;
    }
    Ok(serde_json::from_str(&record.label_line)?)
}

/// The TEM generator in `path` (checked against `<path>.sha256` where there is one) or the
/// shipped one; returns it, a name for reports and the file's SHA-256, or a message naming the
/// file and what is wrong with it.
pub(crate) fn load_model(
    path: Option<&Path>,
    device: &Device,
) -> Result<(TemGenerator, String, String)> {
    let (bytes, name, digest) = crate::shipped::read_weights(
        path,
        Some(&crate::shipped::TEM_DIFFUSION),
        "tem-diffusion",
        "--model",
    )?;
    let g = TemGenerator::from_bytes(&bytes, device).with_context(|| {
        format!(
            "cannot load {name} as a TEM diffusion model (from `synthscope train tem-diffusion`)"
        )
    })?;
    Ok((g, name, digest))
}

pub(crate) fn sample(a: &SampleTemDiffusionArgs) -> Result<()> {
    let started = Instant::now();
    let device = device(a.device)?;
    let (g, model_name, model_sha) = load_model(a.model.as_deref(), &device)?;
    let settings = SampleSettings {
        steps: a.steps,
        ..SampleSettings::default()
    };
    let jobs: Vec<MaskJob> = match (&a.masks, a.generate) {
        (Some(dir), _) => masks_of_dir(dir, &g)?,
        (None, Some(n)) => (0..n as u64)
            .into_par_iter()
            .map(|i| {
                let s = synth::dataset::generate_tem(&TemConfig::default(), a.seed, i)?;
                Ok(MaskJob {
                    stem: format!("tem_{i:06}"),
                    width: s.image.boundary.width(),
                    height: s.image.boundary.height(),
                    boundary: s.image.boundary.pixels().iter().map(|&b| b > 0).collect(),
                    origin: serde_json::json!({
                        "seed": a.seed,
                        "index": i,
                        "params": serde_json::to_value(&s.params)?,
                    }),
                })
            })
            .collect::<Result<_>>()?,
        (None, None) => bail!("give --generate N or --masks DIR"),
    };
    if jobs.is_empty() {
        bail!("no masks to draw for");
    }
    fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut lines = String::new();
    let mut done = 0u64;
    // Masks of one size are sampled together.
    for chunk in jobs.chunks(a.batch.max(1)) {
        for group in chunk.chunk_by(|x, y| (x.width, x.height) == (y.width, y.height)) {
            let (w, h) = (group[0].width, group[0].height);
            let refs: Vec<&[bool]> = group.iter().map(|j| j.boundary.as_slice()).collect();
            let seeds: Vec<u64> = (done..done + group.len() as u64)
                .map(|i| {
                    models::diffusion::generator::noise_seed(a.noise_seed.unwrap_or(a.seed), i)
                })
                .collect();
            let images =
                models::block_on(g.sample(&settings, &refs, (w, h), &seeds, &device, |_, _| true))?
                    .context("sampling stopped")?;
            for (job, values) in group.iter().zip(images) {
                let pixels = values.iter().map(|&v| value_to_gray(v)).collect();
                let mut line = write_pair(&a.out, job, pixels)?;
                line["generated_by"] = "tem-diffusion".into();
                line["model"] = model_name.clone().into();
                line["model_sha256"] = model_sha.clone().into();
                line["steps"] = a.steps.into();
                line["noise_seed"] = a.noise_seed.unwrap_or(a.seed).into();
                lines += &format!("{line}\n");
            }
            done += group.len() as u64;
            eprint!("\rdrawn {done}/{}", jobs.len());
        }
    }
    eprintln!();
    fs::write(a.out.join("labels.jsonl"), lines).context("cannot write labels.jsonl")?;
    eprintln!(
        "wrote {done} micrographs of {model_name} ({} steps) and labels.jsonl to {} in {:.1} s",
        a.steps,
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Engine batch of the appearance redraws in `eval tem-diffusion` (xor the held-out batch).
const REDRAW_STREAM: u64 = 0x5245_4452_4157;

#[derive(Debug, Args)]
pub(crate) struct EvalTemDiffusionArgs {
    /// The TEM generator's weights (from `train tem-diffusion`; default: the shipped ones).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Held-out engine masks (and their engine micrographs) to draw for.
    #[arg(long, default_value_t = 500)]
    count: usize,
    /// Engine batch of the held-out masks (not the training batch).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Denoising steps (DPM-Solver++).
    #[arg(long, default_value_t = models::diffusion::tem::DEFAULT_STEPS)]
    steps: usize,
    /// Also draw this many samples per mask for the first --mean-masks masks and score their
    /// mean (psnr_mean8, ssim_mean8 with 8); 0 skips it.
    #[arg(long, default_value_t = 8)]
    mean_of: usize,
    /// Masks for the mean-of-samples figures.
    #[arg(long, default_value_t = 50)]
    mean_masks: usize,
    /// Micrographs sampled at once.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// A deterministic regressor (`train tem-diffusion --deterministic`) on the same masks:
    /// psnr_deterministic, ssim_deterministic.
    #[arg(long, value_name = "FILE")]
    deterministic: Option<PathBuf>,
    /// downstream_f1: also train grain networks from scratch on this many generated pairs
    /// (engine masks of batch --downstream-seed drawn by the model) and, with the same budget,
    /// on the engine's own micrographs of the same masks; both are scored on the held-out
    /// engine micrographs. 0 skips it.
    #[arg(long, default_value_t = 0)]
    downstream: usize,
    /// Engine batch of the downstream training masks.
    #[arg(long, default_value_t = 31)]
    downstream_seed: u64,
    /// Net1 epochs of each downstream training run.
    #[arg(long, default_value_t = 6)]
    downstream_net1_epochs: usize,
    /// Net2 epochs of each downstream training run.
    #[arg(long, default_value_t = 2)]
    downstream_net2_epochs: usize,
    /// Stop each downstream training epoch after this many steps (for smoke tests).
    #[arg(long)]
    downstream_max_steps_per_epoch: Option<usize>,
    /// Keep the downstream runs' pairs and weights here (rerunning continues where it stopped;
    /// default: a temporary directory, removed afterwards).
    #[arg(long)]
    downstream_dir: Option<PathBuf>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = crate::device::DeviceChoice::Cpu)]
    device: crate::device::DeviceChoice,
}

/// `downstream_f1`: grain networks trained from scratch on generated pairs and, with the same
/// budget, on engine pairs of the same masks, each scored on `heldout` (boundary F1 with an
/// interval); the ratio is what the generated pairs are worth as training data.
fn downstream(
    a: &EvalTemDiffusionArgs,
    heldout: &[crate::grain_data::GrainSample],
    device: &Device,
) -> Result<serde_json::Value> {
    let temporary = a.downstream_dir.is_none();
    let dir = a.downstream_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("synthscope-downstream-{}", std::process::id()))
    });
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (n, seed) = (a.downstream.to_string(), a.downstream_seed.to_string());
    let mut draw: Vec<String> = ["sample", "tem-diffusion", "--generate", &n, "--seed", &seed]
        .map(String::from)
        .to_vec();
    if let Some(m) = &a.model {
        draw.extend(["--model".into(), path_arg(m)]);
    }
    let generated = dir.join("generated");
    let engine = dir.join("engine");
    draw.extend([
        "--steps".into(),
        a.steps.to_string(),
        "--out".into(),
        path_arg(&generated),
    ]);
    let mut stages: Vec<Stage> = vec![
        stage(
            "downstream 1/4",
            "drawing pairs",
            draw,
            &generated.join("labels.jsonl"),
        )?,
        stage(
            "downstream 2/4",
            "the engine's pairs of the same masks",
            [
                "generate",
                "tem",
                "--count",
                &n,
                "--seed",
                &seed,
                "--out",
                &path_arg(&engine),
            ]
            .map(String::from)
            .to_vec(),
            &engine.join("labels.jsonl"),
        )?,
    ];
    let mut scores = Vec::new();
    for (step, data) in [("downstream 3/4", &generated), ("downstream 4/4", &engine)] {
        let out = data.with_extension("grain.bin");
        let mut train: Vec<String> = [
            "train",
            "grain",
            "--data",
            &path_arg(data),
            "--out",
            &path_arg(&out),
            "--net1-epochs",
            &a.downstream_net1_epochs.to_string(),
            "--net2-epochs",
            &a.downstream_net2_epochs.to_string(),
            "--val",
            &(a.downstream / 8).clamp(1, 24).to_string(),
            "--seed",
            &seed,
        ]
        .map(String::from)
        .to_vec();
        if let Some(m) = a.downstream_max_steps_per_epoch {
            train.extend(["--max-steps-per-epoch".into(), m.to_string()]);
        }
        stages.push(stage(step, "grain networks from scratch", train, &out)?);
        let (model, _, _) = crate::shipped::load_grain(Some(&out), device)?;
        let refine = model.header.refine;
        scores.push(crate::eval_grain::evaluate(
            &model, heldout, refine, device,
        )?);
    }
    if temporary {
        let _ = fs::remove_dir_all(&dir);
    }
    let (on_generated, on_engine) = (&scores[0], &scores[1]);
    Ok(serde_json::json!({
        "trained_on_generated": mean_with_interval(&on_generated.boundary_f1_per_image),
        "trained_on_engine": mean_with_interval(&on_engine.boundary_f1_per_image),
        "ratio": ((on_generated.full.boundary_f1 / on_engine.full.boundary_f1) * 1e4).round() / 1e4,
        "pairs": a.downstream,
        "masks_batch": a.downstream_seed,
        "stages": stages.iter().map(Stage::json).collect::<Vec<_>>(),
    }))
}

/// Mean and bootstrap 95 % interval (1 000 resamples, fixed seed) of per-image figures.
fn mean_with_interval(values: &[f64]) -> serde_json::Value {
    let n = values.len();
    if n == 0 {
        return serde_json::Value::Null;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(95);
    let mut means: Vec<f64> = (0..1000)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let r = |v: f64| (v * 1e4).round() / 1e4;
    serde_json::json!({ "mean": r(mean), "ci95": [r(means[25]), r(means[974])] })
}

/// Equivalent-circle diameters of the grains a boundary mask encloses, pixels.
fn ecds_px(mask: &[bool], width: usize, height: usize) -> Vec<f64> {
    imaging::grains::label_grains(mask, width, height, crate::eval_grain::MIN_GRAIN_PX)
        .filled()
        .areas_px()
        .iter()
        .map(|&a| imaging::grains::ecd(a as f64))
        .collect()
}

pub(crate) fn eval(a: &EvalTemDiffusionArgs) -> Result<()> {
    use imaging::similarity::{psnr, ssim};
    let started = Instant::now();
    if a.count == 0 {
        bail!("--count must be at least 1");
    }
    let device = device(a.device)?;
    let (g, model_name, _) = load_model(a.model.as_deref(), &device)?;
    let (grain, grain_name, _) = crate::shipped::load_grain(None, &device)?;
    let settings = SampleSettings {
        steps: a.steps,
        ..SampleSettings::default()
    };
    let engine: Vec<synth::dataset::TemSample> = (0..a.count as u64)
        .into_par_iter()
        .map(|i| synth::dataset::generate_tem(&TemConfig::default(), a.seed, i))
        .collect::<Result<_, _>>()?;
    let to_image = |s: &synth::dataset::TemSample| s.image.image.map(f32::from);
    let mask_of = |s: &synth::dataset::TemSample| -> Vec<bool> {
        s.image.boundary.pixels().iter().map(|&b| b > 0).collect()
    };
    // One sample per mask; noise of image i is noise_seed(seed, i), as `sample tem-diffusion`.
    let draw_with = |g: &TemGenerator,
                     samples: &[synth::dataset::TemSample],
                     first: u64|
     -> Result<Vec<imaging::Image<f32>>> {
        let (w, h) = (
            samples[0].image.image.width(),
            samples[0].image.image.height(),
        );
        let masks: Vec<Vec<bool>> = samples.iter().map(mask_of).collect();
        let refs: Vec<&[bool]> = masks.iter().map(Vec::as_slice).collect();
        let seeds: Vec<u64> = (first..first + samples.len() as u64)
            .map(|i| models::diffusion::generator::noise_seed(a.seed, i))
            .collect();
        let values =
            models::block_on(g.sample(&settings, &refs, (w, h), &seeds, &device, |_, _| true))?
                .context("sampling stopped")?;
        values
            .into_iter()
            .map(|v| {
                let grey: Vec<f32> = v.iter().map(|&x| f32::from(value_to_gray(x))).collect();
                Ok(imaging::Image::from_vec(w, h, grey)?)
            })
            .collect()
    };
    let draw = |samples: &[synth::dataset::TemSample], first: u64| draw_with(&g, samples, first);
    let mut generated = Vec::with_capacity(a.count);
    for (c, chunk) in engine.chunks(a.batch.max(1)).enumerate() {
        generated.extend(draw(chunk, (c * a.batch.max(1)) as u64)?);
        eprint!("\rsampled {}/{}", generated.len(), a.count);
    }
    eprintln!();
    let sample_seconds = started.elapsed().as_secs_f64() / a.count as f64;
    let mut psnrs = Vec::with_capacity(a.count);
    let mut ssims = Vec::with_capacity(a.count);
    for (s, x) in engine.iter().zip(&generated) {
        let truth = to_image(s);
        psnrs.push(psnr(x, &truth, 255.0)?);
        ssims.push(ssim(x, &truth, 255.0)?);
    }
    // The grain pipeline on the generated and on the engine micrographs.
    let (w, h) = (
        engine[0].image.image.width(),
        engine[0].image.image.height(),
    );
    let found: Vec<(Vec<bool>, Vec<bool>)> = engine
        .par_iter()
        .zip(&generated)
        .map(|(s, x)| {
            Ok((
                predict_boundaries(x, &grain, &device)?.mask,
                predict_boundaries(&to_image(s), &grain, &device)?.mask,
            ))
        })
        .collect::<Result<_>>()?;
    let f1_generated: Vec<f64> = engine
        .iter()
        .zip(&found)
        .map(|(s, (on_generated, _))| {
            imaging::metrics::boundary_scores(
                on_generated,
                &mask_of(s),
                w,
                h,
                crate::eval_grain::TOLERANCE_PX,
            )
            .f1
        })
        .collect();
    let f1_engine: Vec<f64> = engine
        .iter()
        .zip(&found)
        .map(|(s, (_, on_engine))| {
            imaging::metrics::boundary_scores(
                on_engine,
                &mask_of(s),
                w,
                h,
                crate::eval_grain::TOLERANCE_PX,
            )
            .f1
        })
        .collect();
    let ecd_generated: Vec<f64> = found.iter().flat_map(|(m, _)| ecds_px(m, w, h)).collect();
    let ecd_engine: Vec<f64> = found.iter().flat_map(|(_, m)| ecds_px(m, w, h)).collect();
    // S₂(r) of the found boundary maps, averaged over images, r ≤ 32 px.
    let s2 = |masks: Vec<&Vec<bool>>| -> Vec<f64> {
        let mut sum = vec![0.0; 33];
        for m in &masks {
            let s = imaging::metrics::two_point_correlation(m, w, h, 32);
            for (acc, v) in sum.iter_mut().zip(s) {
                *acc += v / masks.len() as f64;
            }
        }
        sum
    };
    let s2_generated = s2(found.iter().map(|f| &f.0).collect());
    let s2_engine = s2(found.iter().map(|f| &f.1).collect());
    let s2_l2 = s2_generated
        .iter()
        .zip(&s2_engine)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    // The mean of several samples per mask (the distortion-optimal estimate they approach).
    let (mut psnr_mean, mut ssim_mean) = (Vec::new(), Vec::new());
    if a.mean_of > 0 {
        for (i, s) in engine.iter().take(a.mean_masks).enumerate() {
            let copies = vec![s.clone(); a.mean_of];
            let first = ((a.count + i * a.mean_of) as u64) << 8;
            let drawn = draw(&copies, first)?;
            let mut mean = vec![0.0f32; w * h];
            for d in &drawn {
                for (m, v) in mean.iter_mut().zip(d.pixels()) {
                    *m += v / a.mean_of as f32;
                }
            }
            let mean = imaging::Image::from_vec(w, h, mean)?;
            psnr_mean.push(psnr(&mean, &to_image(s), 255.0)?);
            ssim_mean.push(ssim(&mean, &to_image(s), 255.0)?);
        }
    }
    // The engine's own second micrograph of each mask (another appearance draw): what a
    // perfect sampler of the engine's distribution would score.
    let (psnr_redraw, ssim_redraw): (Vec<f64>, Vec<f64>) = engine
        .par_iter()
        .enumerate()
        .map(|(i, s)| {
            let params =
                synth::tem::redraw_appearance(&s.params, a.seed ^ REDRAW_STREAM, i as u64)?;
            let other = synth::tem::render(&params)?.image.map(f32::from);
            let truth = to_image(s);
            Ok((psnr(&other, &truth, 255.0)?, ssim(&other, &truth, 255.0)?))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    // The mean of --mean-of redraws: the engine's own estimate of the conditional mean, which
    // bounds the PSNR of any deterministic predictor from the mask.
    let (psnr_redraw_mean, ssim_redraw_mean): (Vec<f64>, Vec<f64>) = engine
        .par_iter()
        .take(if a.mean_of > 0 { a.mean_masks } else { 0 })
        .enumerate()
        .map(|(i, s)| {
            let mut mean = vec![0.0f32; w * h];
            for k in 0..a.mean_of {
                let index = ((a.count + i * a.mean_of + k) as u64) << 8;
                let params =
                    synth::tem::redraw_appearance(&s.params, a.seed ^ REDRAW_STREAM, index)?;
                let other = synth::tem::render(&params)?.image;
                for (m, &v) in mean.iter_mut().zip(other.pixels()) {
                    *m += f32::from(v) / a.mean_of as f32;
                }
            }
            let mean = imaging::Image::from_vec(w, h, mean)?;
            let truth = to_image(s);
            Ok((psnr(&mean, &truth, 255.0)?, ssim(&mean, &truth, 255.0)?))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let (mut psnr_det, mut ssim_det) = (Vec::new(), Vec::new());
    if let Some(path) = &a.deterministic {
        let (d, _, _) = load_model(Some(path), &device)?;
        if !d.header.deterministic {
            bail!(
                "--deterministic: {} is a diffusion model; give one from `train tem-diffusion --deterministic`",
                path.display()
            );
        }
        for chunk in engine.chunks(a.batch.max(1)) {
            for (s, x) in chunk.iter().zip(draw_with(&d, chunk, 0)?) {
                psnr_det.push(psnr(&x, &to_image(s), 255.0)?);
                ssim_det.push(ssim(&x, &to_image(s), 255.0)?);
            }
        }
    }
    let downstream_f1 = if a.downstream > 0 {
        let heldout = crate::grain_data::generate(&TemConfig::default(), a.seed, a.count)?;
        downstream(a, &heldout, &device)?
    } else {
        serde_json::Value::Null
    };
    let r = |v: f64| (v * 1e4).round() / 1e4;
    let report = serde_json::json!({
        "model": model_name,
        "conditioning": g.header.conditioning().name(),
        "masks": a.count,
        "engine_batch": a.seed,
        "steps": a.steps,
        "psnr": mean_with_interval(&psnrs),
        "ssim": mean_with_interval(&ssims),
        format!("psnr_mean{}", a.mean_of): mean_with_interval(&psnr_mean),
        format!("ssim_mean{}", a.mean_of): mean_with_interval(&ssim_mean),
        "mean_masks": psnr_mean.len(),
        "psnr_deterministic": mean_with_interval(&psnr_det),
        "ssim_deterministic": mean_with_interval(&ssim_det),
        "deterministic_model": a.deterministic.as_ref().map(|p| p.display().to_string()),
        "psnr_engine_redraw": mean_with_interval(&psnr_redraw),
        "ssim_engine_redraw": mean_with_interval(&ssim_redraw),
        format!("psnr_engine_redraw_mean{}", a.mean_of): mean_with_interval(&psnr_redraw_mean),
        format!("ssim_engine_redraw_mean{}", a.mean_of): mean_with_interval(&ssim_redraw_mean),
        "boundary_f1_on_generated": mean_with_interval(&f1_generated),
        "boundary_f1_on_engine": mean_with_interval(&f1_engine),
        "grain_pipeline": grain_name,
        "ecd_w1_px": imaging::stats::wasserstein_1(&ecd_generated, &ecd_engine).map(r),
        "ecd_ks": r(imaging::stats::ks_two_sample(&ecd_generated, &ecd_engine)),
        "s2_l2": r(s2_l2),
        "seconds_per_sample": r(sample_seconds),
        "downstream_f1": downstream_f1,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    println!("{report}");
    Ok(())
}
