//! `synthscope train realism`: trains the realism members (seed 000) one after the other
//! on realistic and fake scattering images (`realism_data`), then fits their soft-voting weights
//! on the validation images. `--keep` takes members from an earlier file instead of training
//! them (to add a member, or to refit the weights only).
//!
//! Every epoch ends with validation (ROC AUC and accuracy of the member) and a checkpoint in
//! `<out>.ckpt/`; `--resume` continues.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use clap::Args;
use imaging::metrics::best_f1_threshold;
use imaging::scattering::Dihedral;
use models::realism::{
    Ensemble, EnsembleHeader, Family, GateHeader, INPUT_SIDE_PX, Member, MemberConfig,
    fit_vote_weights, soft_vote,
};
use models::tagger::RING_FEATURES;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::device::device;
use crate::realism_data::{self, RealismSample};
use crate::saxs_data::Beam;
use crate::stages::{self, Outcome, Progress, RunArgs, Stages, Validation};
use crate::training::{Checkpoint, SourceArgs, bce_with_logits, split_validation, write_weights};

#[derive(Debug, Args)]
pub(crate) struct TrainRealismArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    run: RunArgs,
    /// Members to train, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "resnet,vgg,vit,convnext,rings"
    )]
    members: Vec<FamilyArg>,
    /// Width of each member (channels of its first stage; the ViT's tokens are 4× this).
    #[arg(long, default_value_t = 16)]
    width: usize,
    #[command(flatten)]
    fakes: realism_data::FakeMix,
    /// Take these members from a realism file instead of training them (they must have this
    /// run's width); the voting weights are fitted anew. Written as FILE:MEMBER[,MEMBER…], for
    /// example realism-v2.bin:resnet,vgg,vit,convnext.
    #[arg(long)]
    keep: Option<String>,
    /// Take the ring statistics around the true beam centres of labels.jsonl instead of
    /// estimating the centres as `synthscope classify` does.
    #[arg(long)]
    true_beam: bool,
    /// Instead of --data/--generate: experts' label exports (zips with their images, from the
    /// Annotate page or `synthscope labels merge`); each image's consensus answer is its class,
    /// images the experts were unsure or split about are left out.
    #[arg(long, num_args = 1.., conflicts_with_all = ["data", "generate", "true_beam"])]
    labels: Vec<std::path::PathBuf>,
    /// Add every image of this `synthscope sample diffusion` directory to the generated side,
    /// beside the procedural fakes (or the experts' fakes of --labels): the ensemble learns what
    /// the diffusion generator gets wrong.
    #[arg(long)]
    generated: Option<std::path::PathBuf>,
    /// Start from this realism weights file (its members and widths; --members and --width are
    /// ignored) and fine-tune every member: the human-in-the-loop round.
    #[arg(long, conflicts_with_all = ["keep", "resume"])]
    init: Option<std::path::PathBuf>,
    /// Train only a pattern gate for this realism file (a network of the one --members family,
    /// at --width) and write the file with the gate added; its members and vote stay as they
    /// are. The gate learns every engine image, clean or damaged (--mix), against frames that
    /// are no scattering pattern (--not-scattering of the fakes, and --no-pattern-images).
    #[arg(long, conflicts_with_all = ["keep", "init", "labels", "generated"])]
    gate_for: Option<std::path::PathBuf>,
    #[command(flatten)]
    no_pattern: realism_data::NoPatternImages,
    /// With --gate-for: the share of the validation patterns (clean or damaged) the gate must
    /// let through; its threshold is set to the highest that does. Stopping a real pattern
    /// costs the user its verdict, so this is kept high.
    #[arg(long, default_value_t = 0.99, value_parser = realism_data::fraction, requires = "gate_for")]
    gate_keeps: f64,
}

/// What a network learns to say about an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A realism member: a clean engine image (1) against every kind of fake (0).
    Realistic,
    /// The pattern gate: any scattering pattern, clean or damaged (1), against frames that are
    /// no pattern at all (0).
    Pattern,
}

impl Target {
    fn of(self, s: &RealismSample) -> bool {
        match self {
            Target::Realistic => s.realistic,
            Target::Pattern => s.is_pattern(),
        }
    }
}

/// `--members` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FamilyArg {
    Resnet,
    Vgg,
    Vit,
    Convnext,
    Rings,
}

impl From<FamilyArg> for Family {
    fn from(f: FamilyArg) -> Self {
        match f {
            FamilyArg::Resnet => Family::Resnet,
            FamilyArg::Vgg => Family::Vgg,
            FamilyArg::Vit => Family::Vit,
            FamilyArg::Convnext => Family::Convnext,
            FamilyArg::Rings => Family::Rings,
        }
    }
}

/// One batch: images `[b, 1, 256, 256]`, ring statistics `[b, 576]` and targets `[b, 1]`
/// (1 = realistic).
pub(crate) struct Batch {
    pub image: Tensor<4>,
    pub stats: Tensor<2>,
    pub target: Tensor<2>,
}

/// The batch of samples `idx`, each image turned or mirrored as given (the ring statistics do
/// not change under the square's symmetries), with the targets of `target`.
pub(crate) fn batch(
    samples: &[RealismSample],
    idx: &[(usize, Dihedral)],
    target_of: Target,
    device: &Device,
) -> Batch {
    let side = INPUT_SIDE_PX;
    let mut image = Vec::with_capacity(idx.len() * side * side);
    let mut stats = Vec::with_capacity(idx.len() * RING_FEATURES);
    let mut target = Vec::with_capacity(idx.len());
    for &(i, d) in idx {
        let s = &samples[i];
        if d == Dihedral::IDENTITY {
            image.extend_from_slice(&s.image);
        } else {
            image.extend(d.apply_grid(&s.image, side));
        }
        stats.extend_from_slice(&s.rings);
        target.push(if target_of.of(s) { 1.0f32 } else { 0.0 });
    }
    let b = idx.len();
    Batch {
        image: Tensor::from_data(TensorData::new(image, [b, 1, side, side]), device),
        stats: Tensor::from_data(TensorData::new(stats, [b, RING_FEATURES]), device),
        target: Tensor::from_data(TensorData::new(target, [b, 1]), device),
    }
}

/// Every member's probability that each sample is realistic: `[n][members]`.
pub(crate) fn member_probabilities(
    members: &[Member],
    samples: &[RealismSample],
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let k = members.len();
    let mut out = vec![Vec::with_capacity(k); samples.len()];
    let idx: Vec<(usize, Dihedral)> = (0..samples.len())
        .map(|i| (i, Dihedral::IDENTITY))
        .collect();
    for chunk in idx.chunks(32) {
        let x = batch(samples, chunk, Target::Realistic, device);
        for m in members {
            let p = burn::tensor::activation::sigmoid(m.forward(x.image.clone(), x.stats.clone()))
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading probabilities failed: {e:?}"))?;
            for (&(i, _), v) in chunk.iter().zip(p) {
                out[i].push(v);
            }
        }
    }
    Ok(out)
}

pub(crate) fn run(a: &TrainRealismArgs) -> Result<()> {
    if a.members.is_empty() {
        bail!("--members needs at least one of resnet, vgg, vit, convnext, rings");
    }
    let (src, run) = (&a.source, &a.run);
    let device = device(run.device)?.autodiff();
    device.seed(src.seed);
    let started = Instant::now();
    let beam = Beam::estimated_if(!a.true_beam);
    // Checked before the (slow) preparation of the images.
    let gate_base = match &a.gate_for {
        Some(path) => Some(gate_base(a, path, &device)?),
        None => None,
    };
    let samples = if a.labels.is_empty() {
        src.samples(
            &stages::generated_saxs(),
            |dir, limit| realism_data::load_dir(dir, limit, src.seed, a.fakes, beam),
            |config, seed, n| realism_data::generate(config, seed, n, a.fakes, beam),
        )?
    } else {
        realism_data::from_labels(&a.labels)?
    };
    let (mut train, mut val) = split_validation(samples, run.val)?;
    if let Some(dir) = &a.generated {
        let generated = realism_data::load_generated(dir, None, beam)?;
        eprintln!(
            "{} diffusion samples of {} join the generated side",
            generated.len(),
            dir.display()
        );
        realism_data::add_extra(&mut train, &mut val, generated);
    }
    if let Some(given) = a.no_pattern.load(src.seed)? {
        realism_data::add_extra(&mut train, &mut val, given);
    }
    let fakes = |s: &[RealismSample]| s.iter().filter(|x| !x.realistic).count();
    eprintln!(
        "realism training (mix {}): {} training images ({} fake) and {} validation images ({} fake), prepared in {:.1} s",
        a.fakes,
        train.len(),
        fakes(&train),
        val.len(),
        fakes(&val),
        started.elapsed().as_secs_f64()
    );
    let init = match &a.init {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read --init {}", path.display()))?;
            let e = Ensemble::from_bytes(&bytes, &device).with_context(|| {
                format!("--init: {} is not a realism weights file", path.display())
            })?;
            eprintln!(
                "fine-tuning the {} members of {}",
                e.members.len(),
                path.display()
            );
            Some(e)
        }
        None => None,
    };
    let configs: Vec<MemberConfig> = match &init {
        Some(e) => e.header.configs.clone(),
        None if gate_base.is_some() => {
            vec![MemberConfig::new(a.members[0].into()).with_width(a.width)]
        }
        None => a
            .members
            .iter()
            .map(|&f| MemberConfig::new(f.into()).with_width(a.width))
            .collect(),
    };
    let mut ckpt = Checkpoint::open(&run.out)?;
    let (ensemble, mut progress) = if run.resume {
        let (bytes, progress): (Vec<u8>, Progress) = ckpt.resume()?;
        let e = Ensemble::from_bytes(&bytes, &device)?;
        if e.header.configs != configs {
            bail!(
                "--resume: the checkpoint holds other members or widths than this command asks for"
            );
        }
        eprintln!(
            "resuming member {} at epoch {} (step {})",
            progress.stage + 1,
            progress.epoch,
            progress.step
        );
        (e, progress)
    } else if let Some(e) = init {
        (e, Progress::default())
    } else {
        (Ensemble::init(configs, &device), Progress::default())
    };
    let mut ensemble = ensemble;
    let kept = match &a.keep {
        Some(spec) => keep_members(spec, &mut ensemble, &device)?,
        None => Vec::new(),
    };
    let schedule = run.schedule(train.len());
    let Ensemble {
        mut members,
        gate,
        header,
    } = ensemble;
    let mut stages = RealismStages {
        train: &train,
        val: &val,
        batch_size: run.batch_size(train.len()),
        seed: src.seed,
        augment: !run.no_augment,
        device: &device,
        header: &header,
        kept,
        gate,
        target: if gate_base.is_some() {
            Target::Pattern
        } else {
            Target::Realistic
        },
    };
    let summary = match stages::train(
        &mut members,
        &mut stages,
        &schedule,
        &mut ckpt,
        &mut progress,
    )? {
        Outcome::Stopped => return Ok(()),
        Outcome::Finished(summary) => summary,
    };
    if let Some(base) = gate_base {
        let gate = stages.valid_ensemble(&members).members;
        return add_gate(
            a,
            base,
            gate,
            &val,
            &device.clone().inner(),
            started,
            &summary,
        );
    }
    // Soft-voting weights from the validation images.
    let mut ensemble = stages.valid_ensemble(&members);
    let inner = device.clone().inner();
    let probs = member_probabilities(&ensemble.members, &val, &inner)?;
    let truth: Vec<bool> = val.iter().map(|s| s.realistic).collect();
    ensemble.header.vote_weights = fit_vote_weights(&probs, &truth);
    let scores: Vec<f64> = probs
        .iter()
        .map(|p| soft_vote(p, &ensemble.header.vote_weights))
        .collect();
    // Decision thresholds on the same images: each member's and the vote's best F1.
    ensemble.header.member_thresholds = (0..ensemble.members.len())
        .map(|k| {
            let member: Vec<f64> = probs.iter().map(|p| f64::from(p[k])).collect();
            best_f1_threshold(&member, &truth)
        })
        .collect();
    ensemble.header.vote_threshold = best_f1_threshold(&scores, &truth);
    let auc = imaging::metrics::roc_auc(&scores, &truth).unwrap_or(f64::NAN);
    let mut set = if a.labels.is_empty() {
        format!("{} images (mix {})", train.len(), a.fakes)
    } else {
        format!("{} expert-labelled images", train.len())
    };
    let diffusion = train.iter().filter(|s| s.diffusion).count();
    if diffusion > 0 {
        set.push_str(&format!(" of which {diffusion} diffusion samples"));
    }
    let start = a
        .init
        .as_ref()
        .map(|p| format!(", fine-tuned from {}", p.display()))
        .unwrap_or_default();
    ensemble.header.trained = format!(
        "synthscope {} train realism: {set}{start}, {} epochs per member, batch {}",
        env!("CARGO_PKG_VERSION"),
        run.epochs,
        run.batch
    );
    // The round's figures on the held-out part: what the loop tracks from round to round.
    let decided: Vec<bool> = scores
        .iter()
        .map(|&s| ensemble.header.realistic(s))
        .collect();
    let r = labels::rounds::RoundScores::of(&scores, &decided, &truth);
    let shown = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |x| format!("{x:.3}"));
    eprintln!(
        "validation ({} images): precision {:.3}, recall {:.3}, F1 {:.3}, AUC {}, agreement with the labels {:.3} (Cohen's κ {})",
        r.images,
        r.precision,
        r.recall,
        r.f1,
        shown(r.auc),
        r.agreement,
        shown(r.kappa)
    );
    let weights: Vec<String> = ensemble
        .header
        .configs
        .iter()
        .zip(&ensemble.header.vote_weights)
        .zip(&ensemble.header.member_thresholds)
        .map(|((c, w), t)| format!("{} {w:.2} (threshold {t:.2})", c.family.name()))
        .collect();
    let bytes = ensemble.to_bytes()?;
    let digest = write_weights(&run.out, &bytes)?;
    eprintln!(
        "voting weights: {}; vote threshold {:.2}; ensemble validation AUC {auc:.3}",
        weights.join(", "),
        ensemble.header.vote_threshold
    );
    eprintln!(
        "wrote {} ({} bytes, sha256 {digest}) in {:.0} s; {}",
        run.out.display(),
        bytes.len(),
        started.elapsed().as_secs_f64(),
        summary.join(", ")
    );
    Ok(())
}

/// The realism file `--gate-for` names, after checking the gate's other flags.
fn gate_base(a: &TrainRealismArgs, path: &std::path::Path, device: &Device) -> Result<Ensemble> {
    if a.members.len() != 1 {
        bail!("--gate-for trains one network: give its family alone, for example --members resnet");
    }
    if a.fakes.not_scattering == 0.0 && a.no_pattern.images.is_none() {
        bail!(
            "--gate-for needs frames that are no scattering pattern: --not-scattering F (a share \
             of the fakes) and/or --no-pattern-images DIR"
        );
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read --gate-for {}", path.display()))?;
    let base = Ensemble::from_bytes(&bytes, device).with_context(|| {
        format!(
            "--gate-for: {} is not a realism weights file",
            path.display()
        )
    })?;
    eprintln!(
        "training a pattern gate for the {} members of {} (they stay as they are)",
        base.members.len(),
        path.display()
    );
    Ok(base)
}

/// Writes `base` with the trained `gate` (one network) and reports how it separates patterns
/// from frames that are no pattern on the validation images.
fn add_gate(
    a: &TrainRealismArgs,
    mut base: Ensemble,
    gate: Vec<Member>,
    val: &[RealismSample],
    device: &Device,
    started: Instant,
    summary: &[String],
) -> Result<()> {
    let config = MemberConfig::new(a.members[0].into()).with_width(a.width);
    let gate = gate
        .into_iter()
        .next()
        .context("the gate run trained no network")?;
    let probs = member_probabilities(std::slice::from_ref(&gate), val, device)?;
    let scores: Vec<f64> = probs.iter().map(|p| f64::from(p[0])).collect();
    let truth: Vec<bool> = val.iter().map(RealismSample::is_pattern).collect();
    let threshold = keeping_threshold(&scores, &truth, a.gate_keeps)?;
    let ((passed, patterns), (rejected, others)) =
        realism_data::gate_shares(&scores, &truth, threshold);
    let auc = imaging::metrics::roc_auc(&scores, &truth).unwrap_or(f64::NAN);
    eprintln!(
        "gate on the validation images: {:.1} % of {patterns} patterns pass, {:.1} % of {others} frames that are no pattern are stopped (threshold {threshold:.2}), AUC {auc:.4}",
        100.0 * passed,
        100.0 * rejected
    );
    let negatives = match &a.no_pattern.images {
        Some(dir) => format!(
            "{} of the fakes no pattern and {} views each of the images in {}",
            a.fakes.not_scattering,
            a.no_pattern.views,
            dir.display()
        ),
        None => format!("{} of the fakes no pattern", a.fakes.not_scattering),
    };
    base.header.gate = Some(GateHeader {
        config,
        threshold,
        trained: format!(
            "synthscope {} train realism --gate-for: every engine image (mix {}) against frames that are no pattern ({negatives}), {} epochs, batch {}; validation: {:.1} % of patterns pass, {:.1} % of the rest stopped",
            env!("CARGO_PKG_VERSION"),
            a.fakes.mix,
            a.run.epochs,
            a.run.batch,
            100.0 * passed,
            100.0 * rejected
        ),
    });
    base.gate = Some(gate);
    let bytes = base.to_bytes()?;
    let digest = write_weights(&a.run.out, &bytes)?;
    eprintln!(
        "wrote {} ({} bytes, sha256 {digest}) in {:.0} s; {}",
        a.run.out.display(),
        bytes.len(),
        started.elapsed().as_secs_f64(),
        summary.join(", ")
    );
    Ok(())
}

/// The highest threshold at which at least `keep` of the scores of `truth` images are at or
/// above it (the gate passes a frame whose score reaches its threshold).
fn keeping_threshold(scores: &[f64], truth: &[bool], keep: f64) -> Result<f64> {
    let mut kept: Vec<f64> = scores
        .iter()
        .zip(truth)
        .filter(|&(_, &t)| t)
        .map(|(&s, _)| s)
        .collect();
    if kept.is_empty() {
        bail!("the validation images hold no scattering pattern: use a larger --val");
    }
    kept.sort_by(|a, b| b.total_cmp(a));
    // The k-th highest score keeps k of n; k = ⌈keep · n⌉.
    let k = ((keep * kept.len() as f64).ceil() as usize).clamp(1, kept.len());
    Ok(kept[k - 1])
}

/// Puts the members named in `--keep FILE:MEMBER[,MEMBER…]` into `ensemble`; returns their
/// families.
fn keep_members(spec: &str, ensemble: &mut Ensemble, device: &Device) -> Result<Vec<Family>> {
    let (file, names) = spec
        .rsplit_once(':')
        .context("--keep wants FILE:MEMBER[,MEMBER…], for example realism-v2.bin:resnet,vgg")?;
    let bytes = std::fs::read(file).with_context(|| format!("reading --keep file {file}"))?;
    let from = Ensemble::from_bytes(&bytes, device)
        .with_context(|| format!("--keep: {file} is not a realism weights file"))?;
    let mut kept = Vec::new();
    for name in names.split(',').map(str::trim) {
        let family = Family::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .with_context(|| {
                format!("--keep: unknown member \"{name}\" (resnet, vgg, vit, convnext, rings)")
            })?;
        let Some(to) = ensemble
            .header
            .configs
            .iter()
            .position(|c| c.family == family)
        else {
            bail!("--keep {name}: this run does not train {name} (see --members)");
        };
        let Some(at) = from.header.configs.iter().position(|c| c.family == family) else {
            bail!("--keep: {file} has no {name} member");
        };
        if from.header.configs[at] != ensemble.header.configs[to] {
            bail!("--keep: the {name} member of {file} has another width than this run's");
        }
        ensemble.members[to] = from.members[at].clone();
        kept.push(family);
    }
    Ok(kept)
}

/// The realism members as stages of [`stages::train`].
struct RealismStages<'a> {
    train: &'a [RealismSample],
    val: &'a [RealismSample],
    batch_size: usize,
    seed: u64,
    augment: bool,
    device: &'a Device,
    header: &'a EnsembleHeader,
    /// Members taken from `--keep`.
    kept: Vec<Family>,
    /// The ensemble's pattern gate, kept as it is while its members train.
    gate: Option<Member>,
    /// What the networks learn.
    target: Target,
}

impl RealismStages<'_> {
    /// The members without autodiff, on the inner device.
    fn valid_ensemble(&self, members: &[Member]) -> Ensemble {
        Ensemble {
            members: members.iter().map(Module::valid).collect(),
            gate: self.gate.as_ref().map(Module::valid),
            header: self.header.clone(),
        }
    }
}

impl Stages<Member> for RealismStages<'_> {
    fn name(&self, s: usize) -> String {
        self.header.configs[s].family.name().to_string()
    }

    fn kept(&self, s: usize) -> bool {
        self.kept.contains(&self.header.configs[s].family)
    }

    fn loss(&mut self, net: &Member, s: usize, step: usize) -> Result<Tensor<1>> {
        // The batch depends only on (member, step): a resumed run sees the same batches.
        let mut rng = ChaCha8Rng::seed_from_u64(((s as u64) << 40) ^ step as u64 ^ self.seed);
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
        let x = batch(self.train, &idx, self.target, self.device);
        Ok(bce_with_logits(net.forward(x.image, x.stats), x.target))
    }

    fn validate(&mut self, net: &Member, _s: usize) -> Result<Validation> {
        let probs = member_probabilities(
            std::slice::from_ref(&net.valid()),
            self.val,
            &self.device.clone().inner(),
        )?;
        let scores: Vec<f64> = probs.iter().map(|p| f64::from(p[0])).collect();
        let truth: Vec<bool> = self.val.iter().map(|s| self.target.of(s)).collect();
        let auc = imaging::metrics::roc_auc(&scores, &truth).unwrap_or(f64::NAN);
        let correct = scores
            .iter()
            .zip(&truth)
            .filter(|&(&p, &t)| (p > 0.5) == t)
            .count();
        let accuracy = correct as f64 / truth.len().max(1) as f64;
        let mut fields = serde_json::Map::new();
        fields.insert("val_auc".into(), auc.into());
        fields.insert("val_accuracy".into(), accuracy.into());
        Ok(Validation {
            summary: format!("validation AUC {auc:.3}, accuracy {accuracy:.3}"),
            fields,
        })
    }

    fn save(&self, nets: &[Member]) -> Result<Vec<u8>> {
        Ok(self.valid_ensemble(nets).to_bytes()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_threshold_keeps_the_asked_share_of_patterns() {
        // Patterns score 0.01, 0.02, …, 1.00; frames that are no pattern score 0.
        let scores: Vec<f64> = (1..=100)
            .map(|i| f64::from(i) / 100.0)
            .chain([0.0; 20])
            .collect();
        let truth: Vec<bool> = (0..120).map(|i| i < 100).collect();
        let t = keeping_threshold(&scores, &truth, 0.99).expect("patterns");
        assert!((t - 0.02).abs() < 1e-12, "{t}");
        let kept = scores[..100].iter().filter(|&&s| s >= t).count();
        assert_eq!(kept, 99);
        assert!((keeping_threshold(&scores, &truth, 1.0).expect("patterns") - 0.01).abs() < 1e-12);
        assert!((keeping_threshold(&scores, &truth, 0.5).expect("patterns") - 0.51).abs() < 1e-12);
        assert!(keeping_threshold(&scores[100..], &truth[100..], 0.99).is_err());
        // At that threshold: 99 of the 100 patterns pass, all 20 others are stopped.
        let ((passed, n), (stopped, m)) = realism_data::gate_shares(&scores, &truth, t);
        assert_eq!((n, m), (100, 20));
        assert!((passed - 0.99).abs() < 1e-12 && (stopped - 1.0).abs() < 1e-12);
    }
}
