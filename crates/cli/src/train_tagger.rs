//! `synthscope train tagger`: trains the image, coefficient and joint taggers (seed 003) on
//! scattering images, one view after the other, with sigmoid cross-entropy over the 15 tags.
//!
//! Every epoch ends with validation (macro mean average precision on held-out images) and a
//! checkpoint in `<out>.ckpt/` (all networks, optimizer, progress); `--resume` continues.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use clap::Args;
use imaging::scattering::{Dihedral, fourier_bessel};
use models::tagger::{
    COEFF_FEATURES, FB_FEATURES, IMAGE_SIDE_PX, TAG_COUNT, Tagger, TaggerConfig, TaggerHeader,
    TaggerSet, View,
};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use synth::scattering::TRAINING_TAGS;

use crate::device::device;
use crate::saxs_data::{self, Beam, ImageView, SaxsSample};
use crate::stages::{self, Outcome, Progress, RunArgs, Stages, Validation};
use crate::training::{
    Checkpoint, SourceArgs, bce_with_logits, bce_with_logits_weighted, positive_weights,
    split_validation, write_weights,
};

#[derive(Debug, Args)]
pub(crate) struct TrainTaggerArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    run: RunArgs,
    /// Views to train, in order (the joint view reads both inputs; trained after the other
    /// two in the same run, it starts from their branches).
    #[arg(long, value_delimiter = ',', default_value = "image,coeff,joint")]
    views: Vec<ViewArg>,
    /// Channels after the image CNN's stem.
    #[arg(long, default_value_t = 16)]
    image_channels: usize,
    /// Take the networks of these views from a taggers file instead of training them (for
    /// example the slow image view of an earlier run while the others are retrained); the
    /// joint view still starts from them. Written as FILE:VIEW[,VIEW…]; may be repeated.
    #[arg(long)]
    keep: Vec<String>,
    /// Start the networks of these views from a taggers file and train them on (fine-tuning,
    /// for example the shipped coefficient network on a wider mix of images). Written as
    /// FILE:VIEW[,VIEW…]; may be repeated.
    #[arg(long)]
    init: Vec<String>,
    /// Let the coefficient network read the raw Fourier–Bessel features too, not only their
    /// moduli and the ring statistics (the layout of weights trained before November 2026).
    #[arg(long)]
    coeff_raw_fb: bool,
    /// Take the coefficient view around beam centres estimated from the images, as
    /// `synthscope classify` does, instead of the true centres of labels.jsonl.
    #[arg(long)]
    estimated_beam: bool,
    /// Train the joint view with its image branch frozen as it comes (from the image view or
    /// `--keep`): the branch's embeddings are computed once, and only the coefficient branch
    /// and the fusion learn. Several times faster on a CPU; images are then not turned or
    /// mirrored in that stage (the coefficient view does not change when they are).
    #[arg(long)]
    freeze_image: bool,
    /// Train the joint view with its coefficient branch frozen as it comes (from the
    /// coefficient view or `--keep`): only the fusion (and the image branch, unless
    /// `--freeze-image`) learns, which keeps the joint view from memorising through a branch
    /// that has already learnt what it can.
    #[arg(long)]
    freeze_coeff: bool,
    /// Start the joint view as the coefficient view: its fusion reads the coefficient
    /// embedding through the coefficient view's fusion and head and the image embedding
    /// through zeros, so it begins with the coefficient view's predictions and learns what
    /// the image branch adds. Best trained on images the coefficient view did not learn
    /// from (on those it has memorised, the image branch seems to add nothing).
    #[arg(long)]
    joint_from_coeff: bool,
    /// Weight each tag's positives by √(negatives / positives) in the training set (at most
    /// 10): the rare tags (symmetry halo on 1.6 % of engine images, the lattices on 4–6 %)
    /// then count in the loss about as much as the common ones.
    #[arg(long)]
    balance: bool,
}

/// Largest weight `--balance` gives a tag's positives.
const MAX_POS_WEIGHT: f32 = 10.0;

/// `--views` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ViewArg {
    Image,
    Coeff,
    Joint,
}

impl From<ViewArg> for View {
    fn from(v: ViewArg) -> Self {
        match v {
            ViewArg::Image => View::Image,
            ViewArg::Coeff => View::Coeff,
            ViewArg::Joint => View::Joint,
        }
    }
}

/// A batch as tensors: images `[b, 1, 256, 256]` (`None` when the samples dropped them),
/// coefficient views `[b, 2693]`, targets `[b, 15]`.
pub(crate) struct Batch {
    pub image: Option<Tensor<4>>,
    pub coeff: Tensor<2>,
    pub target: Tensor<2>,
}

/// Stacks samples `idx` into tensors on `device`.
pub(crate) fn batch(samples: &[SaxsSample], idx: &[usize], device: &Device) -> Batch {
    let idx: Vec<(usize, Dihedral)> = idx.iter().map(|&i| (i, Dihedral::IDENTITY)).collect();
    batch_turned(samples, &idx, device)
}

/// Stacks samples, each turned or mirrored as given (both views alike), into tensors.
fn batch_turned(samples: &[SaxsSample], idx: &[(usize, Dihedral)], device: &Device) -> Batch {
    let b = idx.len();
    let side = IMAGE_SIDE_PX;
    let mut image = Vec::with_capacity(b * side * side);
    let mut coeff = Vec::with_capacity(b * COEFF_FEATURES);
    let mut target = Vec::with_capacity(b * TAG_COUNT);
    for &(i, d) in idx {
        let s = &samples[i];
        if d == Dihedral::IDENTITY {
            image.extend_from_slice(&s.image);
            coeff.extend_from_slice(&s.coeff);
        } else {
            // A dropped image (ImageView::Drop) stays empty.
            if !s.image.is_empty() {
                image.extend(d.apply_grid(&s.image, side));
            }
            // The ring statistics and features do not change when the pattern turns or mirrors.
            let (fb, rings) = s.coeff.split_at(FB_FEATURES);
            coeff.extend(d.apply_features(fb, fourier_bessel::N_MAX));
            coeff.extend_from_slice(rings);
        }
        target.extend_from_slice(&s.tags);
    }
    Batch {
        image: (image.len() == b * side * side)
            .then(|| Tensor::from_data(TensorData::new(image, [b, 1, side, side]), device)),
        coeff: Tensor::from_data(TensorData::new(coeff, [b, COEFF_FEATURES]), device),
        target: Tensor::from_data(TensorData::new(target, [b, TAG_COUNT]), device),
    }
}

/// Tag probabilities of `net` for every sample, batch by batch: `[n][15]`.
pub(crate) fn probabilities(
    net: &Tagger,
    samples: &[SaxsSample],
    device: &Device,
) -> Result<Vec<[f32; TAG_COUNT]>> {
    let mut out = Vec::with_capacity(samples.len());
    let idx: Vec<usize> = (0..samples.len()).collect();
    for chunk in idx.chunks(32) {
        let b = batch(samples, chunk, device);
        out.extend(rows_of(sigmoid(net.forward(b.image, Some(b.coeff))))?);
    }
    Ok(out)
}

/// The rows of probabilities `[b, 15]`.
fn rows_of(p: Tensor<2>) -> Result<Vec<[f32; TAG_COUNT]>> {
    let values = p
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading probabilities failed: {e:?}"))?;
    Ok(values
        .chunks_exact(TAG_COUNT)
        .map(|row| {
            let mut r = [0.0; TAG_COUNT];
            r.copy_from_slice(row);
            r
        })
        .collect())
}

/// Of the k most probable tags of each image, k = its number of true tags, the fraction that
/// are true, pooled over the images (R-precision: what a user reading the top of the sorted
/// tag list sees). Images without tags are left out; NaN when none has any.
pub(crate) fn top_k_precision(probs: &[[f32; TAG_COUNT]], samples: &[SaxsSample]) -> f64 {
    let (mut hits, mut wanted) = (0usize, 0usize);
    for (p, s) in probs.iter().zip(samples) {
        let k = s.tags.iter().filter(|&&t| t > 0.5).count();
        let mut order: Vec<usize> = (0..TAG_COUNT).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        hits += order[..k].iter().filter(|&&t| s.tags[t] > 0.5).count();
        wanted += k;
    }
    if wanted == 0 {
        f64::NAN
    } else {
        hits as f64 / wanted as f64
    }
}

/// Average precision per tag (NaN for a tag without positives) and their mean over the tags
/// that have positives.
pub(crate) fn average_precisions(
    probs: &[[f32; TAG_COUNT]],
    samples: &[SaxsSample],
) -> (f64, [f64; TAG_COUNT]) {
    let mut per_tag = [f64::NAN; TAG_COUNT];
    for (t, ap) in per_tag.iter_mut().enumerate() {
        let scores: Vec<f64> = probs.iter().map(|p| f64::from(p[t])).collect();
        let labels: Vec<bool> = samples.iter().map(|s| s.tags[t] > 0.5).collect();
        *ap = imaging::metrics::average_precision(&scores, &labels).unwrap_or(f64::NAN);
    }
    let valid: Vec<f64> = per_tag.iter().copied().filter(|v| v.is_finite()).collect();
    let map = valid.iter().sum::<f64>() / valid.len().max(1) as f64;
    (map, per_tag)
}

pub(crate) fn run(a: &TrainTaggerArgs) -> Result<()> {
    if a.views.is_empty() {
        bail!("--views needs at least one of image, coeff, joint");
    }
    let (src, run) = (&a.source, &a.run);
    let device = device(run.device)?.autodiff();
    device.seed(src.seed);
    let started = Instant::now();
    let beam = Beam::estimated_if(a.estimated_beam);
    let views: Vec<View> = a.views.iter().map(|&v| v.into()).collect();
    let image_view = ImageView::kept_if(views.iter().any(|&v| v != View::Coeff));
    let samples = src.samples(
        &stages::generated_saxs(),
        |dir, limit| saxs_data::load_dir(dir, limit, beam, image_view),
        |config, seed, n| saxs_data::generate(config, seed, n, beam, image_view),
    )?;
    let (train, val) = split_validation(samples, run.val)?;
    eprintln!(
        "tagger training: {} training and {} validation images ({:.1} s to prepare {})",
        train.len(),
        val.len(),
        started.elapsed().as_secs_f64(),
        match image_view {
            ImageView::Keep => "both views",
            ImageView::Drop => "the coefficient view; the images are not kept",
        }
    );
    let configs: Vec<TaggerConfig> = views
        .iter()
        .map(|&v| {
            let config = TaggerConfig::new(v).with_image_channels(a.image_channels);
            // The image view has no coefficient branch: its config keeps the default, so that
            // image views of every file can be kept.
            if v == View::Image {
                config
            } else {
                config.with_coeff_raw_fb(a.coeff_raw_fb)
            }
        })
        .collect();
    let tags = TRAINING_TAGS.iter().map(|t| t.to_string()).collect();
    let mut ckpt = Checkpoint::open(&run.out)?;
    let (set, mut progress) = if run.resume {
        let (bytes, progress): (Vec<u8>, Progress) = ckpt.resume()?;
        let set = TaggerSet::from_bytes(&bytes, &device)?;
        if set.header.configs != configs {
            bail!(
                "--resume: the checkpoint holds other views or shapes than this command asks for"
            );
        }
        eprintln!(
            "resuming the {} view at epoch {} (step {})",
            views.get(progress.stage).map_or("last", |v| v.name()),
            progress.epoch,
            progress.step
        );
        (set, progress)
    } else {
        (TaggerSet::init(configs, tags, &device), Progress::default())
    };
    let mut kept = Vec::new();
    for spec in &a.keep {
        kept.extend(views_of_file("--keep", spec, &set.header.configs, &device)?);
    }
    let mut started_from = Vec::new();
    // A resumed run's checkpoint already holds what --init gave it.
    for spec in a.init.iter().filter(|_| !run.resume) {
        started_from.extend(views_of_file("--init", spec, &set.header.configs, &device)?);
    }
    let mut set = set;
    for (view, net) in kept.iter().chain(&started_from) {
        if let Some(i) = views.iter().position(|v| v == view) {
            set.nets[i] = net.clone();
        }
    }
    let schedule = run.schedule(train.len());
    let TaggerSet { mut nets, header } = set;
    let mut stages = TaggerStages {
        views: &views,
        train: &train,
        val: &val,
        batch_size: run.batch_size(train.len()),
        seed: src.seed,
        augment: !run.no_augment,
        device: &device,
        header: &header,
        kept: kept.iter().map(|(v, _)| *v).collect(),
        freeze_image: a.freeze_image,
        freeze_coeff: a.freeze_coeff,
        joint_from_coeff: a.joint_from_coeff,
        pos_weight: a.balance.then(|| {
            let w = positive_weights(train.iter().map(|s| &s.tags[..]), TAG_COUNT, MAX_POS_WEIGHT);
            eprintln!("weights of positives per tag: {w:.1?}");
            w
        }),
        frozen: None,
    };
    let summary = match stages::train(&mut nets, &mut stages, &schedule, &mut ckpt, &mut progress)?
    {
        Outcome::Stopped => return Ok(()),
        Outcome::Finished(summary) => summary,
    };
    let mut final_set = stages.valid_set(&nets);
    final_set.header.trained = format!(
        "synthscope {} train tagger: {} images, {} epochs per view, batch {}",
        env!("CARGO_PKG_VERSION"),
        train.len(),
        run.epochs,
        run.batch
    );
    let bytes = final_set.to_bytes()?;
    let digest = write_weights(&run.out, &bytes)?;
    eprintln!(
        "wrote {} ({} bytes, sha256 {digest}) in {:.0} s; {}",
        run.out.display(),
        bytes.len(),
        started.elapsed().as_secs_f64(),
        summary.join(", ")
    );
    Ok(())
}

/// The networks of `--keep` or `--init FILE:VIEW[,VIEW…]` (`flag`), checked against the views
/// of this run.
fn views_of_file(
    flag: &str,
    spec: &str,
    configs: &[TaggerConfig],
    device: &Device,
) -> Result<Vec<(View, Tagger)>> {
    let (file, names) = spec
        .rsplit_once(':')
        .with_context(|| format!("{flag} wants FILE:VIEW[,VIEW…], for example tagger.bin:image"))?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {flag} file {file}"))?;
    names
        .split(',')
        .map(|name| {
            let view = View::ALL
                .into_iter()
                .find(|v| v.name() == name.trim())
                .with_context(|| {
                    format!("{flag}: unknown view \"{name}\" (image, coeff, joint)")
                })?;
            let Some(wanted) = configs.iter().find(|c| c.view == view) else {
                bail!("{flag} {name}: this run does not have the {name} view (see --views)");
            };
            let (config, net) = TaggerSet::view_from_bytes(&bytes, view, device)
                .with_context(|| format!("{flag}: reading the {name} view of {file}"))?
                .with_context(|| format!("{flag}: {file} has no {name} view"))?;
            // A network from before the outer view starts a run that reads it: its new
            // inputs start at zero weight (--init only; a kept network is not trained).
            let widened = TaggerConfig {
                coeff_outer: true,
                ..config.clone()
            };
            if flag == "--init" && !config.coeff_outer && &widened == wanted {
                eprintln!("{flag}: the {name} view of {file} gains the outer view (new weights 0)");
                return Ok((view, net.with_outer_view_added()));
            }
            if &config != wanted {
                bail!("{flag}: the {name} view of {file} has another shape than this run's");
            }
            Ok((view, net))
        })
        .collect()
}

/// The tagger views as stages of [`stages::train`].
struct TaggerStages<'a> {
    views: &'a [View],
    train: &'a [SaxsSample],
    val: &'a [SaxsSample],
    batch_size: usize,
    seed: u64,
    augment: bool,
    device: &'a Device,
    header: &'a TaggerHeader,
    /// Views taken from `--keep`.
    kept: Vec<View>,
    /// `--freeze-image`.
    freeze_image: bool,
    /// `--freeze-coeff`.
    freeze_coeff: bool,
    /// `--joint-from-coeff`.
    joint_from_coeff: bool,
    /// `--balance`: the weight of each tag's positives.
    pos_weight: Option<Vec<f32>>,
    /// The frozen image branch's embeddings of the training and validation images, each
    /// `[n × embedding]` row-major, computed when the joint view first needs them.
    frozen: Option<(Vec<f32>, Vec<f32>)>,
}

/// Image-branch embeddings of every sample, `[n × embedding]` row-major.
fn image_embeddings(net: &Tagger, samples: &[SaxsSample], device: &Device) -> Result<Vec<f32>> {
    let idx: Vec<usize> = (0..samples.len()).collect();
    let mut out = Vec::new();
    for chunk in idx.chunks(32) {
        let b = batch(samples, chunk, device);
        let Some(e) = net.image_embedding(b.image) else {
            bail!("--freeze-image: this view has no image branch");
        };
        out.extend(
            e.into_data()
                .try_into_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading embeddings failed: {e:?}"))?,
        );
    }
    Ok(out)
}

/// Rows `idx` of an `[n × width]` embedding table as a tensor `[idx.len(), width]`.
fn embedding_rows(table: &[f32], width: usize, idx: &[usize], device: &Device) -> Tensor<2> {
    let mut rows = Vec::with_capacity(idx.len() * width);
    for &i in idx {
        rows.extend_from_slice(&table[i * width..(i + 1) * width]);
    }
    Tensor::from_data(TensorData::new(rows, [idx.len(), width]), device)
}

impl TaggerStages<'_> {
    /// Whether stage `s` trains on frozen image embeddings.
    fn frozen_stage(&self, s: usize) -> bool {
        self.freeze_image && self.views[s] == View::Joint
    }

    /// The frozen embeddings (computed on first use with `net`'s image branch, which does not
    /// change while it is frozen).
    fn frozen_embeddings(&mut self, net: &Tagger) -> Result<&(Vec<f32>, Vec<f32>)> {
        if self.frozen.is_none() {
            let started = Instant::now();
            let inner = self.device.clone().inner();
            let net = net.valid();
            let train = image_embeddings(&net, self.train, &inner)?;
            let val = image_embeddings(&net, self.val, &inner)?;
            eprintln!(
                "frozen image branch: embeddings of {} images in {:.0} s",
                self.train.len() + self.val.len(),
                started.elapsed().as_secs_f64()
            );
            self.frozen = Some((train, val));
        }
        self.frozen
            .as_ref()
            .context("frozen embeddings were just computed")
    }

    /// The training loss of logits `[b, 15]` against targets `[b, 15]` (`--balance` weighs
    /// the positives).
    fn tag_loss(&self, logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        match &self.pos_weight {
            Some(w) => bce_with_logits_weighted(logits, target, w),
            None => bce_with_logits(logits, target),
        }
    }

    /// The networks without autodiff, on the inner device, for saving.
    fn valid_set(&self, nets: &[Tagger]) -> TaggerSet {
        TaggerSet {
            nets: nets.iter().map(Module::valid).collect(),
            header: self.header.clone(),
        }
    }
}

impl Stages<Tagger> for TaggerStages<'_> {
    fn name(&self, s: usize) -> String {
        format!("{} view", self.views[s].name())
    }

    fn kept(&self, s: usize) -> bool {
        self.kept.contains(&self.views[s])
    }

    fn starting(&mut self, nets: &mut [Tagger], s: usize) {
        if self.views[s] != View::Joint {
            return;
        }
        // Start from the single views trained earlier in this run, if any.
        let trained = |w: View| self.views[..s].iter().position(|&x| x == w);
        if let (Some(i), Some(c)) = (trained(View::Image), trained(View::Coeff)) {
            eprintln!("joint view starts from the trained image and coefficient branches");
            nets[s] = nets[s].clone().with_branches_of(&nets[i], &nets[c]);
            if self.joint_from_coeff {
                eprintln!("joint view starts with the coefficient view's fusion and head");
                nets[s] = nets[s].clone().with_fusion_of(&nets[c]);
            }
        }
    }

    fn loss(&mut self, net: &Tagger, s: usize, step: usize) -> Result<Tensor<1>> {
        // A frozen branch is taken out of the graph for this step (its parameters then get no
        // gradients, so the optimizer leaves them), also in a run resumed mid-stage.
        let frozen_coeff;
        let net = if self.freeze_coeff && self.views[s] == View::Joint {
            frozen_coeff = net.clone().with_coeff_branch_frozen();
            &frozen_coeff
        } else {
            net
        };
        // The batch depends only on (view, step): a resumed run sees the same batches.
        let mut rng = ChaCha8Rng::seed_from_u64(((s as u64) << 40) ^ step as u64 ^ self.seed);
        if self.frozen_stage(s) {
            let idx: Vec<usize> = sample(&mut rng, self.train.len(), self.batch_size).into_vec();
            let width = self.header.configs[s].embedding;
            let device = self.device.clone();
            let (train, _) = self.frozen_embeddings(net)?;
            let embedded = embedding_rows(train, width, &idx, &device);
            let b = batch(self.train, &idx, &device);
            return Ok(self.tag_loss(
                net.forward_embedded(Some(embedded), Some(b.coeff)),
                b.target,
            ));
        }
        let idx: Vec<(usize, Dihedral)> = sample(&mut rng, self.train.len(), self.batch_size)
            .into_iter()
            .map(|i| {
                let d = if self.augment {
                    Dihedral::all()[rng.random_range(0..8)]
                } else {
                    Dihedral::IDENTITY
                };
                (i, d)
            })
            .collect();
        let b = batch_turned(self.train, &idx, self.device);
        Ok(self.tag_loss(net.forward(b.image, Some(b.coeff)), b.target))
    }

    fn validate(&mut self, net: &Tagger, s: usize) -> Result<Validation> {
        let probs = if self.frozen_stage(s) {
            let width = self.header.configs[s].embedding;
            let inner = self.device.clone().inner();
            let samples = self.val;
            let (_, val) = self.frozen_embeddings(net)?;
            let net = net.valid();
            let idx: Vec<usize> = (0..samples.len()).collect();
            let mut out = Vec::with_capacity(idx.len());
            for chunk in idx.chunks(32) {
                let embedded = embedding_rows(val, width, chunk, &inner);
                let b = batch(samples, chunk, &inner);
                let p = sigmoid(net.forward_embedded(Some(embedded), Some(b.coeff)));
                out.extend(rows_of(p)?);
            }
            out
        } else {
            probabilities(&net.valid(), self.val, &self.device.clone().inner())?
        };
        let (map, per_tag) = average_precisions(&probs, self.val);
        let mut fields = serde_json::Map::new();
        fields.insert("val_map".into(), map.into());
        fields.insert(
            "val_per_tag_ap".into(),
            per_tag
                .iter()
                .map(|x| {
                    if x.is_finite() {
                        serde_json::json!(x)
                    } else {
                        serde_json::Value::Null
                    }
                })
                .collect(),
        );
        Ok(Validation {
            summary: format!("validation mAP {map:.3}"),
            fields,
        })
    }

    fn save(&self, nets: &[Tagger]) -> Result<Vec<u8>> {
        Ok(self.valid_set(nets).to_bytes()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};

    /// Samples whose tag t is on exactly when coefficient t is positive (all other inputs noise).
    fn separable(n: usize) -> Vec<SaxsSample> {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        (0..n)
            .map(|_| {
                let coeff: Vec<f32> = (0..COEFF_FEATURES)
                    .map(|_| rand::Rng::random_range(&mut rng, -1.0f32..1.0))
                    .collect();
                let mut tags = [0.0; TAG_COUNT];
                for (t, tag) in tags.iter_mut().enumerate() {
                    *tag = if coeff[t] > 0.0 { 1.0 } else { 0.0 };
                }
                // No image: a coefficient-only run drops it (ImageView::Drop).
                SaxsSample {
                    image: Vec::new(),
                    coeff,
                    tags,
                    line: 0,
                }
            })
            .collect()
    }

    #[test]
    fn top_k_precision_reads_the_top_of_each_sorted_list() {
        let sample = |on: &[usize]| {
            let mut tags = [0.0; TAG_COUNT];
            for &t in on {
                tags[t] = 1.0;
            }
            SaxsSample {
                image: Vec::new(),
                coeff: Vec::new(),
                tags,
                line: 0,
            }
        };
        let probs = |high: &[(usize, f32)]| {
            let mut p = [0.1f32; TAG_COUNT];
            for &(t, v) in high {
                p[t] = v;
            }
            p
        };
        // Image 1: truth {0, 1}, top two {0, 2} → 1 hit. Image 2: truth {3}, top {3} → 1 hit.
        // Image 3: no tags, left out. Pooled: 2 of 3.
        let samples = [sample(&[0, 1]), sample(&[3]), sample(&[])];
        let p = [
            probs(&[(0, 0.9), (2, 0.8), (1, 0.7)]),
            probs(&[(3, 0.6)]),
            probs(&[(5, 0.9)]),
        ];
        assert!((top_k_precision(&p, &samples) - 2.0 / 3.0).abs() < 1e-12);
        assert!(top_k_precision(&p[2..], &samples[2..]).is_nan());
    }

    #[test]
    fn the_coefficient_view_learns_a_separable_problem() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let train = separable(256);
        let mut net = TaggerConfig::new(View::Coeff).init(&device);
        let mut optim: ModuleOptimizer = AdamConfig::new().init();
        let mut last = f32::MAX;
        for step in 0..150 {
            let mut rng = ChaCha8Rng::seed_from_u64(step);
            let idx = sample(&mut rng, train.len(), 32).into_vec();
            let b = batch(&train, &idx, &device);
            assert!(
                b.image.is_none(),
                "samples without images make batches without them"
            );
            let loss = bce_with_logits(net.forward(b.image, Some(b.coeff)), b.target);
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(1e-3, net.clone(), grads);
            last = loss.into_data().try_into_vec::<f32>().expect("f32")[0];
        }
        assert!(last < 0.2, "loss after 150 steps {last}");
    }
}
