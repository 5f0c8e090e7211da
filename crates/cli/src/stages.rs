//! The training loop of commands that train several networks one after the other (the three
//! tagger views, the realism members): each network is a *stage* with its own optimizer,
//! epochs of steps, validation after every epoch, and a checkpoint of all networks after every
//! epoch so that `--resume` continues exactly where a run stopped.

use std::path::PathBuf;

use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::time::Instant;

use synth::scattering::SaxsConfig;

use crate::device::DeviceChoice;
use crate::training::{Checkpoint, learning_rate, progress_bar, say};

/// The scattering images `--generate` makes: the engine's defaults at the taggers' and realism
/// members' input side (256 px).
pub(crate) fn generated_saxs() -> SaxsConfig {
    SaxsConfig {
        size_px: 256,
        ..SaxsConfig::default()
    }
}

/// How a staged training run goes.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Where to write the trained weights (checkpoints go to <out>.ckpt/).
    #[arg(long)]
    pub out: PathBuf,
    /// Images held out for validation (taken from the end of the data).
    #[arg(long, default_value_t = 200)]
    pub val: usize,
    /// Epochs per network (an epoch visits every training image once).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Stop each epoch after this many steps (for smoke tests).
    #[arg(long)]
    pub max_steps_per_epoch: Option<usize>,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Peak learning rate of Adam (cosine decay to 1/20 of it within each network).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Train on the images as they are, not also turned by quarter turns and mirrored (no
    /// label depends on the detector's orientation, so by default every batch is turned).
    #[arg(long)]
    pub no_augment: bool,
    /// Continue from the checkpoint in <out>.ckpt/.
    #[arg(long)]
    pub resume: bool,
    /// Stop (checkpointed, no final weights) after this many epochs in this run; continue
    /// later with --resume. For time-boxed runs on shared machines.
    #[arg(long)]
    pub stop_after_epochs: Option<usize>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

impl RunArgs {
    /// The schedule for `train_images` training images.
    pub(crate) fn schedule(&self, train_images: usize) -> Schedule {
        let full = train_images.div_ceil(self.batch.max(1));
        Schedule {
            epochs: self.epochs,
            steps_per_epoch: self
                .max_steps_per_epoch
                .map_or(full, |m| m.min(full))
                .max(1),
            lr: self.lr,
            stop_after_epochs: self.stop_after_epochs,
            resume: self.resume,
        }
    }

    /// Images per step, at most `train_images`.
    pub(crate) fn batch_size(&self, train_images: usize) -> usize {
        self.batch.clamp(1, train_images.max(1))
    }
}

/// Progress saved with every checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Progress {
    /// Index of the current stage (= number of stages finished). Older tagger checkpoints
    /// called it `view`.
    #[serde(alias = "view")]
    pub stage: usize,
    /// Epochs finished in the current stage.
    pub epoch: usize,
    /// Steps finished in the current stage.
    pub step: usize,
}

/// How long each stage trains.
pub(crate) struct Schedule {
    /// Epochs per stage.
    pub epochs: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Peak learning rate (cosine decay within each stage).
    pub lr: f64,
    /// Stop, checkpointed, after this many epochs in this run.
    pub stop_after_epochs: Option<usize>,
    /// The run continues a checkpoint (load the optimizer state).
    pub resume: bool,
}

/// What one validation found: a line for the terminal and fields for the log.
pub(crate) struct Validation {
    /// For example "validation mAP 0.812".
    pub summary: String,
    /// Extra fields of the epoch's log line.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// How a run ended.
pub(crate) enum Outcome {
    /// Every stage trained; the last validation summary of each.
    Finished(Vec<String>),
    /// Stopped by `stop_after_epochs`; continue with `--resume`.
    Stopped,
}

/// What a staged command supplies to the loop.
pub(crate) trait Stages<M: Module> {
    /// Name of stage `s` for logs and the progress bar.
    fn name(&self, s: usize) -> String;
    /// Called when stage `s` starts from step 0 (not when resumed mid-stage).
    fn starting(&mut self, _nets: &mut [M], _s: usize) {}
    /// Whether stage `s` came trained from elsewhere (`--init`): it is validated once and not
    /// trained again.
    fn kept(&self, _s: usize) -> bool {
        false
    }
    /// The training loss of `net` (stage `s`) on the batch of `step`.
    fn loss(&mut self, net: &M, s: usize, step: usize) -> Result<Tensor<1>>;
    /// Called after every optimizer step of stage `s` with the updated network (for example
    /// to update an exponential moving average of its weights).
    fn stepped(&mut self, _net: &M, _s: usize) {}
    /// Validates `net` after an epoch of stage `s`.
    fn validate(&mut self, net: &M, s: usize) -> Result<Validation>;
    /// The checkpoint's model bytes: all networks, without autodiff.
    fn save(&self, nets: &[M]) -> Result<Vec<u8>>;
}

/// Trains `nets[progress.stage..]` in turn.
pub(crate) fn train<M: Module>(
    nets: &mut [M],
    stages: &mut impl Stages<M>,
    schedule: &Schedule,
    ckpt: &mut Checkpoint,
    progress: &mut Progress,
) -> Result<Outcome> {
    let mut summary = Vec::new();
    let mut epochs_this_run = 0;
    while progress.stage < nets.len() {
        let s = progress.stage;
        let name = stages.name(s);
        if stages.kept(s) {
            let validation = stages.validate(&nets[s], s)?;
            eprintln!("{name}: kept as given; {}", validation.summary);
            summary.push(format!("{name} {} (kept)", validation.summary));
            *progress = Progress {
                stage: s + 1,
                ..Progress::default()
            };
            continue;
        }
        if progress.step == 0 {
            stages.starting(nets, s);
        }
        eprintln!("{name}: {} parameters", nets[s].num_params());
        let mut optim: ModuleOptimizer = AdamConfig::new().init();
        if schedule.resume && progress.step > 0 {
            optim = ckpt.load_optimizer(optim)?;
        }
        let total = schedule.epochs * schedule.steps_per_epoch;
        let bar = progress_bar(&name, total, progress.step);
        while progress.epoch < schedule.epochs {
            let epoch_started = Instant::now();
            let mut loss_sum = 0.0;
            for _ in 0..schedule.steps_per_epoch {
                let loss = stages.loss(&nets[s], s, progress.step)?;
                let grads = GradientsParams::from_grads(loss.backward(), &nets[s]);
                let lr = learning_rate(schedule.lr, progress.step, total);
                nets[s] = optim.step(lr, nets[s].clone(), grads);
                stages.stepped(&nets[s], s);
                let loss_value = f64::from(
                    loss.into_data()
                        .try_into_vec::<f32>()
                        .map_err(|e| anyhow::anyhow!("reading the loss failed: {e:?}"))?[0],
                );
                loss_sum += loss_value;
                progress.step += 1;
                bar.inc(1);
                bar.set_message(format!("loss {loss_value:.4}"));
            }
            progress.epoch += 1;
            let validation = stages.validate(&nets[s], s)?;
            let train_loss = loss_sum / schedule.steps_per_epoch as f64;
            let mut line = serde_json::Map::new();
            line.insert("stage".into(), name.clone().into());
            line.insert("epoch".into(), progress.epoch.into());
            line.insert("step".into(), progress.step.into());
            line.insert("train_loss".into(), train_loss.into());
            line.insert(
                "epoch_seconds".into(),
                epoch_started.elapsed().as_secs_f64().into(),
            );
            line.extend(validation.fields);
            ckpt.log(&serde_json::Value::Object(line))?;
            say(
                &bar,
                format!(
                    "{name} epoch {}/{}: loss {train_loss:.4}; {}",
                    progress.epoch, schedule.epochs, validation.summary
                ),
            );
            let finished_stage = progress.epoch == schedule.epochs;
            if finished_stage {
                summary.push(format!("{name} {}", validation.summary));
                *progress = Progress {
                    stage: s + 1,
                    ..Progress::default()
                };
            }
            ckpt.save(&stages.save(nets)?, &optim, progress)?;
            epochs_this_run += 1;
            if schedule
                .stop_after_epochs
                .is_some_and(|n| epochs_this_run >= n)
                && progress.stage < nets.len()
            {
                bar.finish_and_clear();
                eprintln!(
                    "stopped after {epochs_this_run} epochs as asked; continue with --resume"
                );
                return Ok(Outcome::Stopped);
            }
            if finished_stage {
                break;
            }
        }
        bar.finish_and_clear();
    }
    Ok(Outcome::Finished(summary))
}
