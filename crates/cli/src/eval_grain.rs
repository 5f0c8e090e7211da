//! `synthscope eval grain`: boundary, region and grain-size metrics of the grain pipeline on a
//! directory written by `synthscope generate tem`, for Net1 + Net2 and for Net1 alone.

use std::time::Instant;

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::Args;
use imaging::grains::{GrainLabels, label_grains};
use imaging::metrics::{boundary_scores, region_scores};
use indicatif::{ProgressBar, ProgressStyle};
use models::grain::{self, GrainInput, GrainModel, RefineConfig};
use rayon::prelude::*;
use serde::Serialize;

use crate::device::{DeviceChoice, block_on, device};
use crate::grain_data::{self, GrainSample};
use crate::shipped;

/// Regions smaller than this (pixels) are specks inside a boundary, not grains.
pub(crate) const MIN_GRAIN_PX: usize = 4;

/// Boundaries count as found within this distance (pixels).
pub(crate) const TOLERANCE_PX: f64 = 2.0;

#[derive(Debug, Args)]
pub(crate) struct EvalGrainArgs {
    #[command(flatten)]
    held_out: crate::training::HeldOutArgs,
    /// Override the refinement's noise level t₀ (0–1).
    #[arg(long)]
    t0: Option<f32>,
    /// Override the boundary probability threshold (0–1).
    #[arg(long)]
    threshold: Option<f32>,
    /// Override the cap on refinement iterations.
    #[arg(long)]
    max_iterations: Option<usize>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

/// Metrics of one pipeline variant, averaged over images (ECD KS on the pooled diameters).
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct GrainMetrics {
    pub pixel_accuracy: f64,
    pub boundary_precision: f64,
    pub boundary_recall: f64,
    pub boundary_f1: f64,
    pub voi_split: f64,
    pub voi_merge: f64,
    pub arand: f64,
    pub grain_count_rel_error: f64,
    pub ecd_ks: f64,
    pub mean_iterations: f64,
}

/// Per-image scores of a mask against the truth.
struct ImageScores {
    metrics: GrainMetrics,
    ecd_px: Vec<f64>,
}

fn score(mask: &[bool], s: &GrainSample, iterations: usize) -> ImageScores {
    let b = boundary_scores(mask, &s.boundary, s.width, s.height, TOLERANCE_PX);
    let labels: GrainLabels = label_grains(mask, s.width, s.height, MIN_GRAIN_PX).filled();
    let r = region_scores(&labels.ids, &s.grains);
    let true_count = s.ecd_px.len().max(1) as f64;
    let ecd_px = labels
        .areas_px()
        .iter()
        .map(|&a| imaging::grains::ecd(a as f64))
        .collect();
    ImageScores {
        metrics: GrainMetrics {
            pixel_accuracy: b.pixel_accuracy,
            boundary_precision: b.precision,
            boundary_recall: b.recall,
            boundary_f1: b.f1,
            voi_split: r.voi_split,
            voi_merge: r.voi_merge,
            arand: r.arand,
            grain_count_rel_error: (labels.count as f64 - true_count).abs() / true_count,
            ecd_ks: 0.0,
            mean_iterations: iterations as f64,
        },
        ecd_px,
    }
}

fn average(scores: &[ImageScores], true_ecd: &[f64]) -> GrainMetrics {
    let n = scores.len().max(1) as f64;
    let mean = |f: fn(&GrainMetrics) -> f64| scores.iter().map(|s| f(&s.metrics)).sum::<f64>() / n;
    let predicted: Vec<f64> = scores
        .iter()
        .flat_map(|s| s.ecd_px.iter().copied())
        .collect();
    GrainMetrics {
        pixel_accuracy: mean(|m| m.pixel_accuracy),
        boundary_precision: mean(|m| m.boundary_precision),
        boundary_recall: mean(|m| m.boundary_recall),
        boundary_f1: mean(|m| m.boundary_f1),
        voi_split: mean(|m| m.voi_split),
        voi_merge: mean(|m| m.voi_merge),
        arand: mean(|m| m.arand),
        grain_count_rel_error: mean(|m| m.grain_count_rel_error),
        ecd_ks: imaging::stats::ks_two_sample(&predicted, true_ecd),
        mean_iterations: mean(|m| m.mean_iterations),
    }
}

/// Rounds for a readable report (6 decimals are beyond the noise of 200 images).
fn rounded(m: GrainMetrics) -> GrainMetrics {
    let r = |v: f64| (v * 1e6).round() / 1e6;
    GrainMetrics {
        pixel_accuracy: r(m.pixel_accuracy),
        boundary_precision: r(m.boundary_precision),
        boundary_recall: r(m.boundary_recall),
        boundary_f1: r(m.boundary_f1),
        voi_split: r(m.voi_split),
        voi_merge: r(m.voi_merge),
        arand: r(m.arand),
        grain_count_rel_error: r(m.grain_count_rel_error),
        ecd_ks: r(m.ecd_ks),
        mean_iterations: r(m.mean_iterations),
    }
}

/// What `evaluate` measures.
pub(crate) struct Evaluation {
    /// Net1 + Net2, averaged over images (rounded for reports).
    pub full: GrainMetrics,
    /// Net1 alone.
    pub net1: GrainMetrics,
    /// Net1 + Net2's boundary F1 of each image, for intervals.
    pub boundary_f1_per_image: Vec<f64>,
}

/// The grain pipeline's metrics on `samples` (each image against its masks), for Net1 + Net2
/// and for Net1 alone; with a progress bar.
pub(crate) fn evaluate(
    model: &GrainModel,
    samples: &[GrainSample],
    refine: RefineConfig,
    device: &Device,
) -> Result<Evaluation> {
    let bar = ProgressBar::new(samples.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("eval [{bar:30}] {pos}/{len} images, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let per_image: Vec<(ImageScores, ImageScores)> = samples
        .par_iter()
        .map(|s| {
            let input = GrainInput::new(&s.planes, s.width, s.height, model.multiple_px())?;
            let p = block_on(grain::predict(model, input, refine, device))?;
            bar.inc(1);
            Ok((score(&p.mask, s, p.iterations), score(&p.net1_mask, s, 0)))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let true_ecd: Vec<f64> = samples
        .iter()
        .flat_map(|s| s.ecd_px.iter().copied())
        .collect();
    let (full, net1): (Vec<ImageScores>, Vec<ImageScores>) = per_image.into_iter().unzip();
    Ok(Evaluation {
        full: rounded(average(&full, &true_ecd)),
        net1: rounded(average(&net1, &true_ecd)),
        boundary_f1_per_image: full.iter().map(|s| s.metrics.boundary_f1).collect(),
    })
}

pub(crate) fn run(a: &EvalGrainArgs) -> Result<()> {
    let started = Instant::now();
    let device = device(a.device)?;
    let (model, model_name, sha256) = shipped::load_grain(a.held_out.model.as_deref(), &device)?;
    let samples = grain_data::load_dir(&a.held_out.data, a.held_out.limit)?;
    if samples.is_empty() {
        bail!("{} holds no images", a.held_out.data.display());
    }
    let mut refine = model.header.refine;
    if let Some(t0) = a.t0 {
        if !(0.0..1.0).contains(&t0) {
            bail!("--t0 must be in [0, 1); got {t0}");
        }
        refine.t0 = t0;
    }
    if let Some(th) = a.threshold {
        if !(0.0 < th && th < 1.0) {
            bail!("--threshold must be between 0 and 1; got {th}");
        }
        refine.threshold = th;
    }
    if let Some(m) = a.max_iterations {
        refine.max_iterations = m;
    }
    let Evaluation { full, net1, .. } = evaluate(&model, &samples, refine, &device)?;
    let report = serde_json::json!({
        "images": samples.len(),
        "model": model_name,
        "sha256": sha256,
        "t0": (f64::from(refine.t0) * 1e6).round() / 1e6,
        "max_iterations": refine.max_iterations,
        "threshold": (f64::from(refine.threshold) * 1e6).round() / 1e6,
        "tolerance_px": TOLERANCE_PX,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "metrics": full,
        "net1_only": net1,
    });
    // Flatten the full pipeline's metrics to the top level, as the interface promises.
    let mut out = serde_json::Map::new();
    if let serde_json::Value::Object(mut m) = report {
        if let Some(serde_json::Value::Object(metrics)) = m.remove("metrics") {
            out.extend(metrics);
        }
        out.extend(m);
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
