//! `synthscope eval realism`: precision, recall, F1 and ROC AUC of the realism ensemble
//! (weighted soft vote), of majority voting, and of every member, on the realistic/fake set
//! built from a `generate saxs` directory exactly as training builds it.
//!
//! The rings member reads ring statistics around the beam centre; by default the centre is
//! estimated from each image, as `synthscope classify` and the browser do (`--true-beam` takes
//! the engine's instead).
//!
//! The positive class is *realistic*: precision is the fraction of images called realistic
//! that are, which is what matters when the classifier filters generated images.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use imaging::metrics::{binary_scores, roc_auc};
use models::realism::{MemberConfig, hard_vote, soft_vote};
use serde_json::{Value, json};

use crate::device::{DeviceChoice, device};
use crate::realism_data::{self, RealismSample};
use crate::saxs_data::Beam;
use crate::shipped;
use crate::train_realism::member_probabilities;

#[derive(Debug, Args)]
pub(crate) struct EvalRealismArgs {
    #[command(flatten)]
    held_out: crate::training::HeldOutArgs,
    /// Seed of the choice of fakes (as in training).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    fakes: realism_data::FakeMix,
    /// Take the ring statistics around the true beam centres of labels.jsonl instead of
    /// estimating the centres as `synthscope classify` does.
    #[arg(long)]
    true_beam: bool,
    /// Also write every image's scores to this file, one JSON line each (`index` of the
    /// engine image, `realistic`, `fake` kind, `diffusion`, each member's probability, the soft vote), for
    /// ROC curves or a look at the misses.
    #[arg(long)]
    scores: Option<PathBuf>,
    /// Also judge every image of this `synthscope sample diffusion` directory (fakes): the
    /// report adds how well the ensemble separates them from the clean engine images.
    #[arg(long)]
    generated: Option<std::path::PathBuf>,
    #[command(flatten)]
    no_pattern: realism_data::NoPatternImages,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

/// Rounds to 4 decimals for the report.
fn r4(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 1e4).round() / 1e4)
    } else {
        Value::Null
    }
}

/// `{precision, recall, f1, auc}` of decisions and scores against the truth.
fn scores_json(decisions: &[bool], scores: &[f64], truth: &[bool]) -> Value {
    let s = binary_scores(decisions, truth);
    json!({
        "precision": r4(s.precision),
        "recall": r4(s.recall),
        "f1": r4(s.f1),
        "auc": r4(roc_auc(scores, truth).unwrap_or(f64::NAN)),
    })
}

/// One JSON line per image: what it is and what each member and the vote say.
fn write_scores(
    path: &std::path::Path,
    samples: &[RealismSample],
    probs: &[Vec<f32>],
    soft: &[f64],
    configs: &[MemberConfig],
) -> Result<()> {
    let mut out = String::new();
    for ((s, p), &score) in samples.iter().zip(probs).zip(soft) {
        let members: serde_json::Map<String, Value> = configs
            .iter()
            .zip(p)
            .map(|(c, &v)| (c.family.name().to_string(), r4(f64::from(v))))
            .collect();
        let line = json!({
            "index": s.index,
            "realistic": s.realistic,
            "fake": s.fake.map(|k| k.name()),
            "diffusion": s.diffusion,
            "members": members,
            "score": r4(score),
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("writing --scores {}", path.display()))
}

/// Of each kind of fake (and of the given no-pattern images), the fraction `decisions` reject.
fn rejected_per_kind(
    samples: &[RealismSample],
    decisions: &[bool],
) -> serde_json::Map<String, Value> {
    let mut per_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (s, &called_real) in samples.iter().zip(decisions) {
        let kind = match s.fake {
            Some(kind) => kind.name(),
            None if s.given_no_pattern => "given_no_pattern",
            None => continue,
        };
        let e = per_kind.entry(kind).or_default();
        e.0 += usize::from(!called_real);
        e.1 += 1;
    }
    per_kind
        .into_iter()
        .map(|(k, (c, n))| (k.to_string(), r4(c as f64 / n as f64)))
        .collect()
}

/// The pattern gate's figures (`null` without a gate): how many patterns it passes and how many
/// frames that are no pattern it stops, and the ensemble's figures with the gate in front (a
/// stopped frame counts as not realistic, score 0).
fn gate_json(
    ensemble: &models::realism::Ensemble,
    samples: &[RealismSample],
    soft: &[f64],
    truth: &[bool],
    device: &burn::tensor::Device,
) -> Result<Value> {
    let (Some(gate), Some(header)) = (&ensemble.gate, &ensemble.header.gate) else {
        return Ok(Value::Null);
    };
    let probs = member_probabilities(std::slice::from_ref(gate), samples, device)?;
    let pattern: Vec<f64> = probs.iter().map(|p| f64::from(p[0])).collect();
    let is_pattern: Vec<bool> = samples.iter().map(RealismSample::is_pattern).collect();
    let passes: Vec<bool> = pattern.iter().map(|&p| p >= header.threshold).collect();
    let ((passed, patterns), (stopped, _)) =
        realism_data::gate_shares(&pattern, &is_pattern, header.threshold);
    let gated: Vec<f64> = soft
        .iter()
        .zip(&passes)
        .map(|(&s, &p)| if p { s } else { 0.0 })
        .collect();
    let decisions: Vec<bool> = gated
        .iter()
        .zip(&passes)
        .map(|(&s, &p)| p && ensemble.header.realistic(s))
        .collect();
    Ok(json!({
        "threshold": r4(header.threshold),
        "patterns": patterns,
        "patterns_passed": r4(passed),
        "no_pattern_stopped": r4(stopped),
        "auc": r4(roc_auc(&pattern, &is_pattern).unwrap_or(f64::NAN)),
        "ensemble_with_gate": scores_json(&decisions, &gated, truth),
        "fakes_rejected_with_gate": rejected_per_kind(samples, &decisions),
    }))
}

pub(crate) fn run(a: &EvalRealismArgs) -> Result<()> {
    let started = Instant::now();
    let device = device(a.device)?;
    let (ensemble, name, digest) =
        shipped::load_realism(a.held_out.model.as_deref(), &device, "--model")?;
    let beam = Beam::estimated_if(!a.true_beam);
    let mut samples =
        realism_data::load_dir(&a.held_out.data, a.held_out.limit, a.seed, a.fakes, beam)?;
    if let Some(dir) = &a.generated {
        samples.extend(realism_data::load_generated(dir, a.held_out.limit, beam)?);
    }
    if let Some(given) = a.no_pattern.load(a.seed)? {
        samples.extend(given);
    }
    let truth: Vec<bool> = samples.iter().map(|s| s.realistic).collect();
    let probs = member_probabilities(&ensemble.members, &samples, &device)?;
    let weights = &ensemble.header.vote_weights;

    let soft: Vec<f64> = probs.iter().map(|p| soft_vote(p, weights)).collect();
    let header = &ensemble.header;
    let soft_decisions: Vec<bool> = soft.iter().map(|&p| header.realistic(p)).collect();
    let thresholds = header.member_thresholds();
    let votes: Vec<(f64, bool)> = probs.iter().map(|p| hard_vote(p, &thresholds)).collect();
    let hard_scores: Vec<f64> = votes.iter().map(|v| v.0).collect();
    let hard_decisions: Vec<bool> = votes.iter().map(|v| v.1).collect();

    let mut members = serde_json::Map::new();
    let mut member_weights = serde_json::Map::new();
    let mut member_thresholds = serde_json::Map::new();
    for (k, config) in ensemble.header.configs.iter().enumerate() {
        let scores: Vec<f64> = probs.iter().map(|p| f64::from(p[k])).collect();
        let decisions: Vec<bool> = scores.iter().map(|&p| p > thresholds[k]).collect();
        let name = config.family.name().to_string();
        members.insert(name.clone(), scores_json(&decisions, &scores, &truth));
        member_weights.insert(name.clone(), r4(weights[k]));
        member_thresholds.insert(name, r4(thresholds[k]));
    }
    if let Some(path) = &a.scores {
        write_scores(path, &samples, &probs, &soft, &ensemble.header.configs)?;
    }
    let caught = rejected_per_kind(&samples, &soft_decisions);
    let gate = gate_json(&ensemble, &samples, &soft, &truth, &device)?;
    // Diffusion samples against the clean engine images only (procedural fakes left out).
    let diffusion = a.generated.as_ref().map(|dir| {
        let pick: Vec<usize> = (0..samples.len())
            .filter(|&i| samples[i].realistic || samples[i].diffusion)
            .collect();
        let of = |v: &[bool]| pick.iter().map(|&i| v[i]).collect::<Vec<bool>>();
        let scores: Vec<f64> = pick.iter().map(|&i| soft[i]).collect();
        let n = samples.iter().filter(|s| s.diffusion).count();
        let rejected = samples
            .iter()
            .zip(&soft_decisions)
            .filter(|(s, called_real)| s.diffusion && !**called_real)
            .count();
        json!({
            "dir": dir.display().to_string(),
            "samples": n,
            "rejected": r4(rejected as f64 / n.max(1) as f64),
            "vs_clean_engine": scores_json(&of(&soft_decisions), &scores, &of(&truth)),
        })
    });
    let out = json!({
        "ensemble": scores_json(&soft_decisions, &soft, &truth),
        "diffusion": diffusion,
        "hard_vote": scores_json(&hard_decisions, &hard_scores, &truth),
        "members": members,
        "vote_weights": member_weights,
        "thresholds": {"members": member_thresholds, "vote": r4(header.vote_threshold)},
        "fakes_rejected": caught,
        "gate": gate,
        "images": samples.len(),
        "realistic": truth.iter().filter(|&&t| t).count(),
        "mix": a.fakes.mix.to_string(),
        "not_scattering": a.fakes.not_scattering,
        "beam": if a.true_beam { "true" } else { "estimated" },
        "model": name,
        "sha256": digest,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    println!("{out}");
    Ok(())
}
