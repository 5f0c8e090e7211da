//! What every `synthscope train …` command shares: the checkpoint directory (`<out>.ckpt/`
//! with the model, the optimizer state, the progress and a JSON-lines log), atomic writes, the
//! learning-rate schedule, the progress bar, and writing the final weights with their checksum.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::optim::ModuleOptimizer;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where the images of a training run come from (every `train` command).
#[derive(Debug, clap::Args)]
pub(crate) struct SourceArgs {
    /// A directory written by `synthscope generate` (its labels.jsonl lists the images).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Instead of --data: generate this many images in memory (default engine settings;
    /// scattering images at 256 px).
    #[arg(long, conflicts_with = "data")]
    pub generate: Option<usize>,
    /// Batch seed for --generate, and the seed of initial weights, batch order and any other
    /// random choice of the run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use at most this many images of --data.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// What every `eval grain|tagger|realism` command reads: the held-out set, the weights to judge
/// and how much of the set.
#[derive(Debug, clap::Args)]
pub(crate) struct HeldOutArgs {
    /// A directory written by `synthscope generate` (a seed not used in training).
    #[arg(long)]
    pub data: PathBuf,
    /// Weights written by the matching `synthscope train …` (default: the shipped weights).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Evaluate at most this many images.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl SourceArgs {
    /// The run's samples: read from `--data` by `from_dir(dir, limit)`, or made from
    /// `--generate` engine images of `config` (batch `--seed`) by `generate(config, seed, count)`.
    pub(crate) fn samples<T, C>(
        &self,
        config: &C,
        from_dir: impl FnOnce(&Path, Option<usize>) -> Result<Vec<T>>,
        generate: impl FnOnce(&C, u64, usize) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        match (&self.data, self.generate) {
            (Some(dir), _) => from_dir(dir, self.limit),
            (None, Some(n)) => generate(config, self.seed, n),
            (None, None) => anyhow::bail!("give --data DIR or --generate N"),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file, so an interrupted write never leaves a
/// half-written file under the final name.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Splits off the last `val` samples (at least one, at most half) for validation; needs two.
pub(crate) fn split_validation<T>(mut samples: Vec<T>, val: usize) -> Result<(Vec<T>, Vec<T>)> {
    if samples.len() < 2 {
        anyhow::bail!(
            "need at least 2 images (one to train on, one to validate); got {}",
            samples.len()
        );
    }
    let n_val = val.clamp(1, samples.len() / 2);
    let held_out = samples.split_off(samples.len() - n_val);
    Ok((samples, held_out))
}

/// Mean sigmoid cross-entropy of logits against 0/1 targets of the same shape; stable for any
/// logit: max(x, 0) − x·t + ln(1 + e^−|x|).
pub(crate) fn bce_with_logits<const D: usize>(
    logits: burn::tensor::Tensor<D>,
    target: burn::tensor::Tensor<D>,
) -> burn::tensor::Tensor<1> {
    let relu = burn::tensor::activation::relu(logits.clone());
    (relu - logits.clone() * target + logits.abs().neg().exp().log1p()).mean()
}

/// Sigmoid cross-entropy of logits `[b, k]` against 0/1 targets `[b, k]` with the positives of
/// column j weighted by `pos_weight[j]` (rare tags count as much as common ones):
/// mean of (1 − t + w·t)·softplus(x) − w·t·x, which is [`bce_with_logits`] for w = 1.
pub(crate) fn bce_with_logits_weighted(
    logits: burn::tensor::Tensor<2>,
    target: burn::tensor::Tensor<2>,
    pos_weight: &[f32],
) -> burn::tensor::Tensor<1> {
    let [b, k] = logits.dims();
    let w = burn::tensor::Tensor::<1>::from_floats(pos_weight, &logits.device())
        .reshape([1, k])
        .repeat_dim(0, b);
    let wt = w * target.clone();
    // softplus(x) = max(x, 0) + ln(1 + e^−|x|), stable for any logit.
    let softplus =
        burn::tensor::activation::relu(logits.clone()) + logits.clone().abs().neg().exp().log1p();
    (softplus * (wt.clone() - target).add_scalar(1.0) - wt * logits).mean()
}

/// Weights of positives per tag from 0/1 targets (`rows` of k columns): √(negatives /
/// positives), at least 1 and at most `max` (a tag on 1.6 % of the images gets 7.8, one on
/// half of them 1).
pub(crate) fn positive_weights<'a>(
    rows: impl Iterator<Item = &'a [f32]>,
    k: usize,
    max: f32,
) -> Vec<f32> {
    let (mut pos, mut n) = (vec![0usize; k], 0usize);
    for r in rows {
        n += 1;
        for (p, &t) in pos.iter_mut().zip(r) {
            if t > 0.5 {
                *p += 1;
            }
        }
    }
    pos.iter()
        .map(|&p| {
            if p == 0 {
                1.0
            } else {
                (((n - p) as f32 / p as f32).sqrt()).clamp(1.0, max)
            }
        })
        .collect()
}

/// Cosine decay from `peak` to `peak / 20` over `total` steps.
pub(crate) fn learning_rate(peak: f64, step: usize, total: usize) -> f64 {
    let floor = peak / 20.0;
    let x = step as f64 / total.max(1) as f64;
    floor + 0.5 * (peak - floor) * (1.0 + (std::f64::consts::PI * x.min(1.0)).cos())
}

/// A progress bar over `total` steps, starting at `position` (a resumed run).
pub(crate) fn progress_bar(prefix: &str, total: usize, position: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps, {msg}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar.set_position(position as u64);
    bar
}

/// Prints above the progress bar, or plainly when there is no terminal (logs, CI).
pub(crate) fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// The checkpoint directory of a training run writing `out`: `<out>.ckpt/`.
pub(crate) struct Checkpoint {
    dir: PathBuf,
    log: fs::File,
}

impl Checkpoint {
    /// Creates (or reopens) the directory and its log.
    pub(crate) fn open(out: &Path) -> Result<Self> {
        let dir = crate::checksum::with_suffix(out, ".ckpt");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log.jsonl"))
            .with_context(|| format!("cannot write to {}", dir.display()))?;
        Ok(Self { dir, log })
    }

    fn model_path(&self) -> PathBuf {
        self.dir.join("model.bin")
    }

    fn optim_path(&self) -> PathBuf {
        self.dir.join("optimizer.bpk")
    }

    fn progress_path(&self) -> PathBuf {
        self.dir.join("progress.json")
    }

    /// The saved model bytes and progress, for `--resume`.
    pub(crate) fn resume<P: DeserializeOwned>(&self) -> Result<(Vec<u8>, P)> {
        let model = fs::read(self.model_path()).with_context(|| {
            format!(
                "--resume: no checkpoint at {} (train without --resume first)",
                self.model_path().display()
            )
        })?;
        let text = fs::read_to_string(self.progress_path())
            .with_context(|| format!("cannot read {}", self.progress_path().display()))?;
        Ok((model, serde_json::from_str(&text)?))
    }

    /// The optimizer state saved with the checkpoint, if any, loaded into `optim`.
    pub(crate) fn load_optimizer(&self, optim: ModuleOptimizer) -> Result<ModuleOptimizer> {
        let path = self.optim_path();
        if !path.exists() {
            return Ok(optim);
        }
        optim
            .load(&path)
            .with_context(|| format!("cannot read {}", path.display()))
    }

    /// Saves model, optimizer and progress (each file atomically).
    pub(crate) fn save<P: Serialize>(
        &self,
        model_bytes: &[u8],
        optim: &ModuleOptimizer,
        progress: &P,
    ) -> Result<()> {
        write_atomic(&self.model_path(), model_bytes)?;
        optim
            .save(self.optim_path())
            .with_context(|| format!("cannot write {}", self.optim_path().display()))?;
        write_atomic(
            &self.progress_path(),
            serde_json::to_string(progress)?.as_bytes(),
        )
    }

    /// Appends one line to `log.jsonl`.
    pub(crate) fn log(&mut self, line: &serde_json::Value) -> Result<()> {
        writeln!(self.log, "{line}").context("cannot write the training log")
    }
}

/// Writes the final weights and `<out>.sha256`; returns the digest.
pub(crate) fn write_weights(out: &Path, bytes: &[u8]) -> Result<String> {
    write_atomic(out, bytes)?;
    let digest = crate::checksum::sha256_hex(bytes);
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    write_atomic(
        &crate::checksum::sidecar(out),
        format!("{digest}  {name}\n").as_bytes(),
    )?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor, TensorData};

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().try_into_vec::<f32>().expect("f32")[0]
    }

    #[test]
    fn weighted_cross_entropy_weights_only_the_positives() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![0.0f32, 0.0, 2.0, -1.0], [2, 2]),
            &device,
        );
        let target = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 1.0, 0.0], [2, 2]),
            &device,
        );
        let ln2 = std::f32::consts::LN_2;
        // Weights 1: the plain loss.
        let plain = scalar(bce_with_logits(logits.clone(), target.clone()));
        let ones = scalar(bce_with_logits_weighted(
            logits.clone(),
            target.clone(),
            &[1.0, 1.0],
        ));
        assert!((plain - ones).abs() < 1e-6, "{plain} {ones}");
        // Column 0 weighted 3: (3·ln 2 + 3·softplus(−2)) for its positives; column 1 has none.
        let w = scalar(bce_with_logits_weighted(logits, target, &[3.0, 5.0]));
        let softplus = |x: f32| (1.0 + x.exp()).ln();
        let want = (3.0 * ln2 + ln2 + 3.0 * softplus(-2.0) + softplus(-1.0)) / 4.0;
        assert!((w - want).abs() < 1e-6, "{w} {want}");
    }

    #[test]
    fn rare_tags_get_the_larger_positive_weights() {
        // Tag 0 on 1 of 5 rows, tag 1 on all, tag 2 on none, tag 3 on 1 of 5 (capped at 1.5).
        let rows: Vec<[f32; 4]> = (0..5)
            .map(|i| {
                let on = if i == 0 { 1.0 } else { 0.0 };
                [on, 1.0, 0.0, on]
            })
            .collect();
        let w = positive_weights(rows.iter().map(|r| &r[..3]), 3, 10.0);
        assert_eq!(w, vec![2.0, 1.0, 1.0]);
        let w = positive_weights(rows.iter().map(|r| &r[..]), 4, 1.5);
        assert_eq!(w, vec![1.5, 1.0, 1.0, 1.5]);
    }
}
