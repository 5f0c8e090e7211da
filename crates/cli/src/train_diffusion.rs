//! `synthscope train diffusion`: trains the tag-conditioned scattering generator
//! (`models::diffusion::generator`) on engine images as polar images of the sample's scattering
//! (`diffusion_data`), with v-prediction, tags dropped for classifier-free guidance, χ turns and
//! mirrors, and an exponential moving average of the weights that is validated and shipped.
//!
//! `--generate N` draws fresh engine images every step (an epoch is N of them; a resumed run
//! continues the stream where it stopped); `--data DIR` trains on a `generate saxs` directory.
//! Every epoch ends with the denoising loss of the average on held-out images at fixed noise
//! levels and noise, and a checkpoint in `<out>.ckpt/`; `--resume` continues.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use clap::Args;
use imaging::scattering::polar::PolarGrid;
use models::diffusion::denoiser::{Denoiser, denoising_loss};
use models::diffusion::generator::{Generator, GeneratorHeader, default_denoiser, polar_tensor};
use models::diffusion::sampler::project_channels;
use models::diffusion::schedule::noise_field;
use models::tagger::TAG_COUNT;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use synth::scattering::{SaxsConfig, TRAINING_TAGS};

use crate::device::device;
use crate::diffusion_data::{self, OwnSetup, PolarSample, engine_samples, turn};
use crate::ema::Ema;
use crate::stages::{self, Outcome, Progress, RunArgs, Schedule, Stages, Validation};
use crate::training::{Checkpoint, SourceArgs, split_validation, write_weights};

/// Engine batch of the validation images of a `--generate` run: its own stream, never trained on.
const VALIDATION_STREAM: u64 = 0x5641_4C49_4441_5445;
/// The engine stream the first peaks of `--lattice-series` come from (seed ^ this).
const FIRST_PEAK_STREAM: u64 = 0x4649_5253_5450_4B53;

#[derive(Debug, Args)]
pub(crate) struct TrainDiffusionArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    run: RunArgs,
    /// Start from this diffusion model (its architecture and grid) and fine-tune it.
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    #[command(flatten)]
    average: AverageArgs,
    /// Share of training images shown without their tags (what classifier-free guidance
    /// contrasts with).
    #[arg(long, default_value_t = 0.1)]
    tag_dropout: f64,
    /// Channels of the network's first level (64 ships; smaller for smoke tests).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Diffuse in the band of angular harmonics |m| ≤ M only: noise and clean images are
    /// projected on it in training, and sampling stays in it (the header's `noise_harmonics`).
    /// With --init this turns a model trained with noise in every χ bin into one that is not.
    #[arg(long, value_name = "M", conflicts_with = "resume")]
    noise_harmonics: Option<usize>,
    /// The network reads where each row lies in q (three condition planes; the header's
    /// `q_position`). With --init the planes start with zero weights, so training begins from
    /// exactly the model given.
    #[arg(long, conflicts_with = "resume")]
    q_position: bool,
    /// The network reads a lattice-series plane: where the reflections of each tagged lattice
    /// lie (q₁ times the lattice's ratios), so that it draws rings at a lattice's spacings
    /// instead of finding them from the tag alone; sampling draws q₁ from the first peaks of
    /// the training images, kept in the file. With --init the plane starts with zero weights.
    #[arg(long, conflicts_with = "resume")]
    lattice_series: bool,
    /// With --lattice-series and --generate: engine images of a stream of their own that the
    /// first peaks are taken from (their lattices that are tagged).
    #[arg(long, default_value_t = 8000, value_name = "N")]
    first_peak_images: usize,
    /// With --lattice-series: the plane's peak value. The plane's input weights start at zero
    /// and move by about the learning rate a step, so a larger gain makes the plane count for
    /// more sooner.
    #[arg(
        long,
        default_value_t = 1.0,
        value_name = "G",
        requires = "lattice_series"
    )]
    lattice_gain: f32,
    /// A model reading the lattice series: each row's squared error counts 1 + L × the plane
    /// there (divided by its gain), so the rows of a tagged lattice's reflections weigh up to
    /// 1 + L times the rest. Rings are a small part of a polar image's error next to its
    /// smooth fall-off; this makes getting them right worth more. Validation losses stay
    /// unweighted, comparable with runs without it.
    #[arg(long, default_value_t = 0.0, value_name = "L")]
    lattice_loss_weight: f32,
    /// A model reading the lattice series: share of training images shown without their
    /// lattice-series plane, drawn independently of --tag-dropout, so that guiding the plane
    /// (`sample diffusion --lattice-guidance`) contrasts it with a prediction that does not
    /// know where a lattice's rings go (as InstructPix2Pix drops each of its conditions).
    /// Their rows keep their --lattice-loss-weight.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    plane_dropout: f64,
    /// Rows uniform in ln q from this q (Å⁻¹) to the grid's q_max instead of uniform in √q, so
    /// that a ratio of q (a lattice's ring spacing) is the same number of rows everywhere and
    /// the convolutions see one pattern per lattice. With --init the weights carry over to the
    /// new rows (the network is the same size) and fine-tuning adapts them.
    #[arg(long, value_name = "Q_MIN", conflicts_with = "resume")]
    log_q: Option<f64>,
    /// Self-attention at the end of the way up of these levels of the U-Net ("1,2": 0 is the
    /// full q resolution, 3 the coarsest, which has its own), so that distant rows can agree
    /// on exact ring positions. With --init the new layers start silent (output projection at
    /// zero), so training begins from exactly the model given.
    #[arg(
        long,
        value_name = "LEVELS",
        value_delimiter = ',',
        conflicts_with = "resume"
    )]
    up_attention: Vec<usize>,
    /// Your own detector images (--data without labels.jsonl): pixel pitch in µm (default:
    /// the engine's reference detector scaled to the image's size).
    #[arg(long)]
    pixel_size_um: Option<f64>,
    /// Your own detector images: sample–detector distance in mm.
    #[arg(long, default_value_t = imaging::detector::REFERENCE_DISTANCE_M * 1000.0)]
    distance_mm: f64,
    /// Your own detector images: photon energy in keV.
    #[arg(long, default_value_t = imaging::detector::REFERENCE_ENERGY_KEV)]
    energy_kev: f64,
    /// Your own detector images: beam centre "X,Y" in pixels for every image (default:
    /// estimated per image, as `classify` does).
    #[arg(long, value_parser = crate::classify::parse_beam)]
    beam: Option<(f64, f64)>,
    /// Your own detector images: a pyFAI calibration (PONI file) of the detector, instead of
    /// --pixel-size-um, --distance-mm, --energy-kev and --beam.
    #[arg(long, conflicts_with_all = ["beam", "pixel_size_um"])]
    poni: Option<PathBuf>,
}

/// Where training images come from.
enum Source {
    /// Fresh engine images: step k takes images k·b … (k+1)·b − 1 of batch `seed`.
    Stream { config: SaxsConfig, seed: u64 },
    /// A fixed set (`--data`), drawn at random per step.
    Fixed(Vec<PolarSample>),
}

pub(crate) fn run(a: &TrainDiffusionArgs) -> Result<()> {
    let (src, run) = (&a.source, &a.run);
    a.average.check()?;
    if !(0.0..1.0).contains(&a.tag_dropout) {
        bail!("--tag-dropout must be in [0, 1)");
    }
    if !(0.0..1.0).contains(&a.plane_dropout) {
        bail!("--plane-dropout must be in [0, 1)");
    }
    if !(a.lattice_loss_weight.is_finite() && a.lattice_loss_weight >= 0.0) {
        bail!(
            "--lattice-loss-weight {}: give a number ≥ 0 (0, the default, weights every row alike)",
            a.lattice_loss_weight
        );
    }
    let device = device(run.device)?.autodiff();
    device.seed(src.seed);
    let started = Instant::now();
    let mut ckpt = Checkpoint::open(&run.out)?;
    let (mut generator, ema_net, mut progress) = if run.resume {
        let (bytes, progress): (Vec<u8>, Progress) = ckpt.resume()?;
        let (live, ema) = split_checkpoint(&bytes, &device)?;
        eprintln!(
            "resuming at epoch {} (step {})",
            progress.epoch, progress.step
        );
        (live, Some(ema), progress)
    } else if let Some(path) = &a.init {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read --init {}", path.display()))?;
        let g = Generator::from_bytes(&bytes, &device)
            .with_context(|| format!("--init: {} is not a diffusion model file", path.display()))?;
        eprintln!("fine-tuning {} ({})", path.display(), g.header.trained);
        (g, None, Progress::default())
    } else {
        let layout = PolarGrid::reference();
        let config = default_denoiser(&layout, TAG_COUNT).with_base_width(a.width);
        let tags = TRAINING_TAGS.iter().map(|t| t.to_string()).collect();
        (
            Generator::init(config, layout, tags, &device)?,
            None,
            Progress::default(),
        )
    };
    if let Some(m) = a.noise_harmonics {
        let top = generator.header.layout.chi_bins / 2;
        if m > top {
            bail!(
                "--noise-harmonics must be at most {top} (half the {} χ bins)",
                2 * top
            );
        }
        generator.header.noise_harmonics = Some(m);
    }
    if let Some(q_min) = a.log_q {
        let l = generator.header.layout;
        let grid = PolarGrid::log_spaced(l.q_bins, l.chi_bins, q_min, l.q_max_inv_angstrom);
        grid.validate().map_err(|e| {
            anyhow::anyhow!(
                "--log-q {q_min}: {e}; give a q above 0 and below the grid's q_max {} Å⁻¹ \
                 (0.003 Å⁻¹ ships)",
                l.q_max_inv_angstrom
            )
        })?;
        generator.header.layout = grid;
    }
    if a.q_position {
        generator = generator.with_q_position()?;
    }
    if !a.up_attention.is_empty() {
        generator = generator
            .with_up_attention(&a.up_attention, &device)
            .context("--up-attention")?;
    }
    if generator.header.tags != TRAINING_TAGS {
        bail!("the model's tags are not the engine's 15 training tags; train a new model");
    }
    let grid = generator.header.layout;
    let config = stages::generated_saxs();
    let (source, val, per_epoch, mut described) = match (&src.data, src.generate) {
        (Some(dir), _) => {
            let own = !dir.join("labels.jsonl").exists();
            let samples = if own {
                let setup = OwnSetup {
                    pixel_size_um: a.pixel_size_um,
                    distance_mm: a.distance_mm,
                    energy_kev: a.energy_kev,
                    beam_px: a.beam,
                    poni: a
                        .poni
                        .as_deref()
                        .map(crate::classify::read_poni)
                        .transpose()?,
                };
                diffusion_data::load_own_images(
                    dir,
                    src.limit,
                    &grid,
                    &setup,
                    &device.clone().inner(),
                )?
            } else {
                diffusion_data::load_dir(dir, src.limit, &grid)?
            };
            let (train, val) = split_validation(samples, run.val)?;
            let d = format!(
                "{} images of {}{}",
                train.len(),
                dir.display(),
                if own {
                    " (your own, tagged by the shipped tagger)"
                } else {
                    ""
                }
            );
            let n = train.len();
            (Source::Fixed(train), val, n, d)
        }
        (None, Some(n)) => {
            if n == 0 {
                bail!("--generate needs at least one image per epoch");
            }
            let val = engine_samples(
                &config,
                &grid,
                src.seed ^ VALIDATION_STREAM,
                0,
                run.val.max(1),
            )?;
            let d = format!(
                "fresh engine images (batch seed {}), {n} per epoch",
                src.seed
            );
            (
                Source::Stream {
                    config,
                    seed: src.seed,
                },
                val,
                n,
                d,
            )
        }
        (None, None) => bail!("give --data DIR or --generate N"),
    };
    if a.lattice_series {
        // The first peaks sampling will draw from: the fixed set's own, or a separate stream
        // of the engine's.
        let series = match &source {
            Source::Fixed(train) => diffusion_data::lattice_series(train)?,
            Source::Stream { config, seed } => diffusion_data::engine_lattice_series(
                config,
                seed ^ FIRST_PEAK_STREAM,
                a.first_peak_images,
            )?,
        };
        if series.lattices.is_empty() {
            bail!(
                "--lattice-series: no training image has a tagged lattice; train on engine \
                 images (--generate) or a `generate saxs` directory with lattices"
            );
        }
        let counts: Vec<String> = series
            .lattices
            .iter()
            .map(|(t, s)| format!("{t} {}", s.images))
            .collect();
        let series = series.with_gain(a.lattice_gain).context("--lattice-gain")?;
        generator = generator
            .with_lattice_series(series)
            .context("--lattice-series")?;
        let gain = if a.lattice_gain == 1.0 {
            String::new()
        } else {
            format!(", gain {}", a.lattice_gain)
        };
        described += &format!(
            " (lattice-series plane{gain}; first peaks from {} training images)",
            counts.join(", ")
        );
    }
    eprintln!(
        "diffusion training on {described}; {} validation images, prepared in {:.1} s",
        val.len(),
        started.elapsed().as_secs_f64()
    );
    if a.lattice_loss_weight > 0.0 && generator.header.lattice_series.is_none() {
        bail!(
            "--lattice-loss-weight weights the rows the lattice-series plane marks, and this \
             model reads none: add --lattice-series"
        );
    }
    if a.plane_dropout > 0.0 && generator.header.lattice_series.is_none() {
        bail!(
            "--plane-dropout withholds the lattice-series plane, and this model reads none: \
             add --lattice-series"
        );
    }
    let schedule = run.schedule(per_epoch);
    let batch_size = match &source {
        Source::Fixed(t) => run.batch_size(t.len()),
        Source::Stream { .. } => run.batch.max(1),
    };
    // What the file will say of its training; a resumed run keeps its checkpoint's text.
    if !run.resume {
        let start = a
            .init
            .as_ref()
            .map(|p| format!(", fine-tuned from {}", p.display()))
            .unwrap_or_default();
        generator.header.trained = format!(
            "synthscope {} train diffusion: {described}{start}, {} epochs of {} steps, batch {batch_size}, lr {}, EMA {}, tag dropout {}",
            env!("CARGO_PKG_VERSION"),
            schedule.epochs,
            schedule.steps_per_epoch,
            run.lr,
            a.average.ema,
            a.tag_dropout
        );
        if let Some(m) = generator.header.noise_harmonics {
            generator.header.trained += &format!(", noise in the angular band |m| ≤ {m}");
        }
        if generator.header.q_position {
            generator.header.trained += ", reading q positions";
        }
        if generator.header.lattice_series.is_some() {
            generator.header.trained += ", reading the lattice series";
        }
        if a.lattice_loss_weight > 0.0 {
            generator.header.trained += &format!(
                ", the lattice rows weighted 1 + {} in the loss",
                a.lattice_loss_weight
            );
        }
        if a.plane_dropout > 0.0 {
            generator.header.trained += &format!(
                ", the lattice-series plane withheld from {} of the images",
                a.plane_dropout
            );
        }
        let l = generator.header.layout;
        if l.q_exponent == 0.0 {
            generator.header.trained += &format!(
                ", rows uniform in ln q from {} to {} Å⁻¹",
                l.q_min_inv_angstrom, l.q_max_inv_angstrom
            );
        }
        if let Some(levels) = &generator.header.denoiser.up_attention {
            generator.header.trained +=
                &format!(", self-attention on the way up at levels {levels:?}");
        }
    }
    let ema = match ema_net {
        Some(net) => Ema::new(&net.denoiser, a.average.ema, progress.step as u64),
        None => Ema::new(&generator.denoiser, a.average.ema, 0),
    };
    let task = ScatteringTask {
        source,
        val: &val,
        batch_size,
        seed: src.seed,
        augment: !run.no_augment,
        tag_dropout: a.tag_dropout,
        plane_dropout: a.plane_dropout,
        lattice_loss_weight: a.lattice_loss_weight,
        device: &device,
        generator: &generator,
    };
    let stage = DenoiserStage::new(task, ema, &run.out, &a.average);
    stage.train_and_ship(
        generator.denoiser.clone(),
        &schedule,
        &mut ckpt,
        &mut progress,
        &run.out,
        started,
    )
}

fn split_checkpoint(bytes: &[u8], device: &Device) -> Result<(Generator, Generator)> {
    let (live, ema) = crate::ema::split_checkpoint(bytes)?;
    Ok((
        Generator::from_bytes(live, device)?,
        Generator::from_bytes(ema, &device.clone().inner())?,
    ))
}

/// Seconds of each of `runs` training steps of `net` (forward, backward and an Adam step on a
/// batch of `batch` random polar images with stratified noise levels, as in training, but
/// without making engine images), after one warm-up step. `device` must be an autodiff device;
/// the CPU backend runs each operation as it is called, so the time is the step's.
pub(crate) fn time_training_steps(
    mut net: Denoiser,
    header: &GeneratorHeader,
    batch: usize,
    runs: usize,
    device: &Device,
) -> Result<Vec<f64>> {
    use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
    let layout = &header.layout;
    let polars: Vec<Vec<f32>> = (0..batch as u64)
        .map(|i| {
            noise_field(layout.len(), i)
                .iter()
                .map(|v| v.clamp(-1.0, 1.0))
                .collect()
        })
        .collect();
    let tags = vec![[0.0f32; TAG_COUNT]; batch];
    let times: Vec<f32> = (0..batch)
        .map(|i| (i as f32 + 0.5) / batch as f32)
        .collect();
    let dropped = vec![false; batch];
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    let mut seconds = Vec::with_capacity(runs);
    for run in 0..=runs {
        let started = Instant::now();
        let seeds: Vec<u64> = (0..batch as u64).map(|i| (run as u64) << 32 | i).collect();
        // No series planes: zeros when the network reads them (the cost is the same).
        let loss = loss_on(
            &net,
            header,
            &polars,
            (&[], &[]),
            0.0,
            &tags,
            &times,
            &seeds,
            &dropped,
            device,
        )?;
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-5, net, grads);
        // Reading the loss waits for the step's work on a device that queues it.
        std::hint::black_box(loss.into_data());
        if run > 0 {
            seconds.push(started.elapsed().as_secs_f64());
        }
    }
    Ok(seconds)
}

/// The denoising loss of `net` on `polars` (with their lattice-series planes when the network
/// reads them: `series.0` as the network is shown them, an empty plane for one withheld,
/// `series.1` the images' own), each noised at `times[i]` with noise of seed `noise_seeds[i]`,
/// its tags withheld where `dropped[i]` (the planes are kept: like the q position, they say
/// where, not what); each row's squared error weighted 1 + `lattice_weight` × its own plane's
/// value over the plane's gain (`--lattice-loss-weight`; 0 weights all rows alike).
#[allow(clippy::too_many_arguments)]
fn loss_on(
    net: &Denoiser,
    header: &GeneratorHeader,
    polars: &[Vec<f32>],
    series: (&[Vec<f32>], &[Vec<f32>]),
    lattice_weight: f32,
    tags: &[[f32; TAG_COUNT]],
    times: &[f32],
    noise_seeds: &[u64],
    dropped: &[bool],
    device: &Device,
) -> Result<Tensor<1>> {
    let layout = &header.layout;
    let b = polars.len();
    let refs: Vec<&[f32]> = polars.iter().map(Vec::as_slice).collect();
    // [b, chi, q, 1]
    let x0 = polar_tensor(&refs, layout, device);
    let noise: Vec<f32> = noise_seeds
        .iter()
        .flat_map(|&s| noise_field(layout.len(), s))
        .collect();
    let noise = Tensor::<4>::from_data(
        TensorData::new(noise, [b, layout.chi_bins, layout.q_bins, 1]),
        device,
    );
    let (x0, noise) = match header.noise_subspace(device) {
        Some(p) => (project_channels(x0, &p), project_channels(noise, &p)),
        None => (x0, noise),
    };
    let mut tag_values = Vec::with_capacity(b * TAG_COUNT);
    let mut given = Vec::with_capacity(b);
    for (t, &d) in tags.iter().zip(dropped) {
        if d {
            tag_values.extend([0.0; TAG_COUNT]);
        } else {
            tag_values.extend_from_slice(t);
        }
        given.push(if d { 0.0f32 } else { 1.0 });
    }
    let condition = header.condition(
        Tensor::from_data(TensorData::new(tag_values, [b, TAG_COUNT]), device),
        Tensor::from_data(TensorData::new(given, [b, 1]), device),
        series.0,
    )?;
    let own = series.1;
    let weights = match &header.lattice_series {
        Some(s) if lattice_weight > 0.0 && own.len() == b => {
            let scale = lattice_weight / s.gain;
            let rows: Vec<f32> = own.iter().flatten().map(|v| 1.0 + scale * v).collect();
            // [b, 1, q, 1]: one weight per image and q row, the same for every χ channel.
            Some(Tensor::<4>::from_data(
                TensorData::new(rows, [b, 1, layout.q_bins, 1]),
                device,
            ))
        }
        _ => None,
    };
    Ok(denoising_loss(
        net,
        header.prediction,
        x0,
        noise,
        times,
        &condition,
        weights,
    ))
}

/// An epoch's validation of a diffusion trainer: the averaged weights' loss (all, t < ½,
/// t ≥ ½) and the live weights' loss.
pub(crate) fn denoising_validation(
    (ema, ema_low, ema_high): (f64, f64, f64),
    live: f64,
) -> Validation {
    let mut fields = serde_json::Map::new();
    fields.insert("val_loss_ema".into(), ema.into());
    fields.insert("val_loss_ema_t_below_half".into(), ema_low.into());
    fields.insert("val_loss_ema_t_above_half".into(), ema_high.into());
    fields.insert("val_loss_live".into(), live.into());
    Validation {
        summary: format!(
            "validation loss {ema:.4} averaged (t < ½ {ema_low:.4}, t ≥ ½ {ema_high:.4}), {live:.4} live"
        ),
        fields,
    }
}

/// A loss tensor's value.
pub(crate) fn loss_value(loss: Tensor<1>) -> Result<f64> {
    let v = loss
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading the loss failed: {e:?}"))?;
    Ok(f64::from(v.first().copied().unwrap_or(f32::NAN)))
}

/// A training batch's noise levels and noise seeds, drawn from the step's `rng`: stratified
/// levels, one in each 1/b of (0, 1), so every batch spans them all.
pub(crate) fn noise_draws(b: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<u64>) {
    let times = (0..b)
        .map(|i| ((i as f64 + rng.random::<f64>()) / b as f64) as f32)
        .collect();
    let seeds = (0..b).map(|_| rng.random()).collect();
    (times, seeds)
}

/// The weights' moving average of a diffusion trainer (what ships).
#[derive(Debug, Args)]
pub(crate) struct AverageArgs {
    /// Decay per step of the weights' moving average (the shipped weights).
    #[arg(long, default_value_t = 0.999)]
    pub ema: f64,
    /// Keep every epoch's average as a model file, `<out>.ckpt/ema-step<N>.bin` (N: steps
    /// done), beside the latest in `ema.bin`, to evaluate epochs after the run.
    #[arg(long)]
    pub keep_averages: bool,
}

impl AverageArgs {
    pub(crate) fn check(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.ema) {
            bail!("--ema must be in [0, 1) (0.999 averages over about 1000 steps)");
        }
        Ok(())
    }
}

/// What one diffusion trainer's data gives [`DenoiserStage`] (the scattering generator's
/// polar images, the TEM generator's patches): the loss of a step's batch, the validation
/// loss, and the model file of a network.
pub(crate) trait DenoisingTask {
    /// The stage's name in progress lines and logs.
    fn name(&self) -> &'static str;
    /// The training loss of `net` on the batch of `step` (everything random in it depends
    /// only on the seed and `step`, so a resumed run sees the same batches).
    fn loss(&mut self, net: &Denoiser, step: usize) -> Result<Tensor<1>>;
    /// The mean loss of `net` on the validation data at noise levels spread over (0, 1):
    /// (all, t < ½, t ≥ ½).
    fn validation_loss(&self, net: &Denoiser) -> Result<(f64, f64, f64)>;
    /// The model file of `net`, its header's training note extended by `note`.
    fn model_file(&self, net: Denoiser, note: &str) -> Result<Vec<u8>>;
}

/// A diffusion trainer's one network as a stage of [`stages::train`]: an exponential moving
/// average of the weights after every step, validation of the average and of the live
/// weights, checkpoints holding both, and the average shipped.
pub(crate) struct DenoiserStage<T> {
    task: T,
    ema: Ema<Denoiser>,
    /// `<out>.ckpt/ema.bin`: the latest average as a model file, so any epoch can be sampled
    /// and evaluated (and picked) while training goes on.
    ema_path: PathBuf,
    /// Also keep each epoch's average beside `ema_path` (`--keep-averages`).
    keep_averages: bool,
}

impl<T: DenoisingTask> DenoiserStage<T> {
    pub(crate) fn new(task: T, ema: Ema<Denoiser>, out: &Path, average: &AverageArgs) -> Self {
        Self {
            task,
            ema,
            ema_path: crate::checksum::with_suffix(out, ".ckpt").join("ema.bin"),
            keep_averages: average.keep_averages,
        }
    }

    /// Trains `net` on the schedule (from `progress`, checkpointing in `ckpt`) and writes the
    /// average after the last step to `out` with its `.sha256`.
    pub(crate) fn train_and_ship(
        mut self,
        net: Denoiser,
        schedule: &Schedule,
        ckpt: &mut Checkpoint,
        progress: &mut Progress,
        out: &Path,
        started: Instant,
    ) -> Result<()> {
        let mut nets = vec![net];
        let summary = match stages::train(&mut nets, &mut self, schedule, ckpt, progress)? {
            Outcome::Stopped => return Ok(()),
            Outcome::Finished(summary) => summary,
        };
        let note = format!(
            "; the weights' average after the last step ({})",
            self.ema.updates
        );
        let bytes = self.task.model_file(self.ema.net, &note)?;
        let digest = write_weights(out, &bytes)?;
        eprintln!(
            "wrote {} ({} bytes, sha256 {digest}) in {:.0} s; {}",
            out.display(),
            bytes.len(),
            started.elapsed().as_secs_f64(),
            summary.join(", ")
        );
        Ok(())
    }
}

impl<T: DenoisingTask> Stages<Denoiser> for DenoiserStage<T> {
    fn name(&self, _s: usize) -> String {
        self.task.name().to_string()
    }

    fn loss(&mut self, net: &Denoiser, _s: usize, step: usize) -> Result<Tensor<1>> {
        self.task.loss(net, step)
    }

    fn stepped(&mut self, net: &Denoiser, _s: usize) {
        self.ema.update(net);
    }

    fn validate(&mut self, net: &Denoiser, _s: usize) -> Result<Validation> {
        let ema = self.task.validation_loss(&self.ema.net)?;
        let (live, _, _) = self.task.validation_loss(&net.valid())?;
        Ok(denoising_validation(ema, live))
    }

    fn save(&self, nets: &[Denoiser]) -> Result<Vec<u8>> {
        let live = self.task.model_file(nets[0].valid(), "")?;
        let note = format!("; the weights' average after step {}", self.ema.updates);
        let ema = self.task.model_file(self.ema.net.clone(), &note)?;
        crate::training::write_atomic(&self.ema_path, &ema)?;
        if self.keep_averages {
            let kept = self
                .ema_path
                .with_file_name(format!("ema-step{:06}.bin", self.ema.updates));
            crate::training::write_atomic(&kept, &ema)?;
        }
        Ok(crate::ema::join_checkpoint(&live, &ema))
    }
}

/// The scattering generator's data: engine or loaded polar images with their tags.
struct ScatteringTask<'a> {
    source: Source,
    val: &'a [PolarSample],
    batch_size: usize,
    seed: u64,
    augment: bool,
    tag_dropout: f64,
    /// `--plane-dropout` (training steps only).
    plane_dropout: f64,
    /// `--lattice-loss-weight` (training steps only).
    lattice_loss_weight: f32,
    device: &'a Device,
    generator: &'a Generator,
}

impl ScatteringTask<'_> {
    /// The lattice-series planes of `samples` when the network reads them (none otherwise).
    fn series(&self, samples: &[PolarSample]) -> Vec<Vec<f32>> {
        let header = &self.generator.header;
        let Some(series) = &header.lattice_series else {
            return Vec::new();
        };
        samples
            .iter()
            .map(|s| s.series_plane(series, &header.layout))
            .collect()
    }

    /// The batch of `step`: fresh engine images or a random draw of the fixed set.
    fn batch(&self, step: usize, rng: &mut ChaCha8Rng) -> Result<Vec<PolarSample>> {
        let b = self.batch_size;
        match &self.source {
            Source::Stream { config, seed } => {
                let grid = self.generator.header.layout;
                engine_samples(config, &grid, *seed, (step * b) as u64, b)
            }
            Source::Fixed(train) => Ok((0..b)
                .map(|_| train[rng.random_range(0..train.len())].clone())
                .collect()),
        }
    }
}

impl DenoisingTask for ScatteringTask<'_> {
    fn name(&self) -> &'static str {
        "denoiser"
    }

    fn validation_loss(&self, net: &Denoiser) -> Result<(f64, f64, f64)> {
        let header = &self.generator.header;
        let device = self.device.clone().inner();
        let n = self.val.len();
        let (mut sum, mut low, mut high) = (0.0, 0.0, 0.0);
        // One image at a time so the loss splits by noise level.
        for (i, sample) in self.val.iter().enumerate() {
            let t = (i as f32 + 0.5) / n as f32;
            let series = self.series(std::slice::from_ref(sample));
            let l = loss_on(
                net,
                header,
                std::slice::from_ref(&sample.polar),
                (&series, &series),
                0.0,
                &[sample.tags],
                &[t],
                &[(i as u64 + 1) << 20],
                &[false],
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
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ ((step as u64) << 20) ^ 0xD1FF);
        let batch = self.batch(step, &mut rng)?;
        let cols = self.generator.header.layout.chi_bins;
        let b = batch.len();
        let polars: Vec<Vec<f32>> = batch
            .iter()
            .map(|s| {
                if self.augment {
                    turn(
                        &s.polar,
                        cols,
                        rng.random_range(0..cols),
                        rng.random_bool(0.5),
                    )
                } else {
                    s.polar.clone()
                }
            })
            .collect();
        let tags: Vec<[f32; TAG_COUNT]> = batch.iter().map(|s| s.tags).collect();
        let (times, seeds) = noise_draws(b, &mut rng);
        let dropped: Vec<bool> = (0..b).map(|_| rng.random_bool(self.tag_dropout)).collect();
        let series = self.series(&batch);
        // Drawn only when asked for, so runs without it keep their random stream.
        let shown: Vec<Vec<f32>> = if self.plane_dropout > 0.0 && !series.is_empty() {
            series
                .iter()
                .map(|p| {
                    if rng.random_bool(self.plane_dropout) {
                        Vec::new()
                    } else {
                        p.clone()
                    }
                })
                .collect()
        } else {
            series.clone()
        };
        loss_on(
            net,
            &self.generator.header,
            &polars,
            (&shown, &series),
            self.lattice_loss_weight,
            &tags,
            &times,
            &seeds,
            &dropped,
            self.device,
        )
    }

    fn model_file(&self, net: Denoiser, note: &str) -> Result<Vec<u8>> {
        let mut header = self.generator.header.clone();
        header.trained += note;
        Ok(Generator {
            denoiser: net,
            header,
        }
        .to_bytes()?)
    }
}
