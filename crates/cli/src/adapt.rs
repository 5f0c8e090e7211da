//! `synthscope adapt grain --micrographs DIR --out DIR`: grain networks adapted to a scientist's
//! own microscope without one hand-drawn boundary (issue 19, seed 002's idea turned around).
//!
//! 1. **Pseudo-masks**: the grain pipeline to adapt segments every micrograph; the pairs go to
//!    `<out>/pseudo/` in the `generate tem` layout.
//! 2. **Generator**: the mask-conditioned TEM generator is fine-tuned on those pairs, so it learns
//!    the look of these micrographs (`<out>/generator.bin`).
//! 3. **Training pairs**: it draws a micrograph in that look for each pseudo-mask (their grain
//!    shapes; the pair is exact whatever the pipeline missed) or for engine masks (`--masks`),
//!    and engine masks of another batch kept aside as a check (`<out>/check/`).
//! 4. **Grain networks**: fine-tuned on the drawn pairs (`<out>/grain.bin`).
//! 5. **Report** (`<out>/report.json`, also printed): the pipeline's agreement with the
//!    generator's conditions on the check pairs before and after, how much the masks of the
//!    scientist's micrographs changed, and with `--heldout DIR` (labelled micrographs of the
//!    same instrument that adaptation never sees) the boundary F1 before and after.
//!
//! Each stage is an ordinary command (`train tem-diffusion`, `sample tem-diffusion`, `train
//! grain`), run in this process through the same parser, and the report lists them, so every
//! step can be rerun or changed by hand. A stage whose output exists is skipped and one that was
//! interrupted resumes from its checkpoint: rerunning the same command continues the adaptation.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use imaging::codec::GrayImage;
use imaging::metrics::boundary_scores;
use models::grain::GrainModel;
use rayon::prelude::*;

use crate::device::{DeviceChoice, device};
use crate::eval_grain::{TOLERANCE_PX, evaluate};
use crate::segment::{MIN_SIDE_PX, predict_boundaries, predict_from_planes};
use crate::shipped;
use crate::tem_diffusion::{MaskJob, write_pair};
use crate::training::write_atomic;

#[derive(Debug, Args)]
pub(crate) struct AdaptGrainArgs {
    /// Your micrographs (PNG, TIFF or JPEG; 8- or 16-bit grey or float). No masks needed;
    /// files named `*_boundary.*` or `*_grains.*` are skipped.
    #[arg(long)]
    micrographs: PathBuf,
    /// Output directory: the adapted `grain.bin`, `report.json` and every stage's files.
    #[arg(long)]
    out: PathBuf,
    /// Grain networks to adapt (default: the shipped ones).
    #[arg(long)]
    grain: Option<PathBuf>,
    /// TEM generator to fine-tune (default: the shipped one).
    #[arg(long)]
    generator: Option<PathBuf>,
    /// Labelled micrographs of the same instrument in the `generate tem` layout, never used for
    /// adaptation: the report adds boundary F1 and the other grain metrics before and after.
    #[arg(long)]
    heldout: Option<PathBuf>,
    /// Use at most this many micrographs.
    #[arg(long)]
    limit: Option<usize>,
    /// Epochs of the generator's fine-tuning on the pseudo-masked micrographs.
    #[arg(long, default_value_t = 20)]
    generator_epochs: usize,
    /// Peak learning rate of the generator's fine-tuning.
    #[arg(long, default_value_t = 1e-4)]
    generator_lr: f64,
    /// Side of the generator's training patches (pixels, a multiple of 4, at most the
    /// micrographs' smaller side).
    #[arg(long, default_value_t = 96)]
    patch_px: usize,
    /// Engine masks drawn in the micrographs' look to fine-tune the grain networks on (with
    /// `--masks engine` or `both`).
    #[arg(long, default_value_t = 300)]
    generate: usize,
    /// Which masks the training pairs are drawn for: the micrographs' own pseudo-masks (their
    /// grain shapes; the drawn image follows its mask, whatever the pipeline missed), engine
    /// masks (the engine's grain shapes, which the networks then learn too), or both. Pseudo
    /// was chosen on a validation domain (docs/tem-diffusion.md).
    #[arg(long, value_enum, default_value_t = MaskSource::Pseudo)]
    masks: MaskSource,
    /// Drawn pairs kept aside to measure the pipeline's agreement with their masks.
    #[arg(long, default_value_t = 40)]
    check: usize,
    /// Denoising steps per drawn micrograph.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Net1 epochs of the grain networks' fine-tuning.
    #[arg(long, default_value_t = 4)]
    net1_epochs: usize,
    /// Net2 epochs of the grain networks' fine-tuning.
    #[arg(long, default_value_t = 2)]
    net2_epochs: usize,
    /// Peak learning rate of the grain networks' fine-tuning.
    #[arg(long, default_value_t = 5e-4)]
    grain_lr: f64,
    /// Engine batch of the drawn masks (the check pairs use the next one) and seed of the
    /// training runs.
    #[arg(long, default_value_t = 11)]
    seed: u64,
    /// Stop each training epoch after this many steps (for smoke tests).
    #[arg(long)]
    max_steps_per_epoch: Option<usize>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

/// `--masks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MaskSource {
    /// `--generate` engine masks.
    Engine,
    /// One pair per micrograph, for its pseudo-mask.
    Pseudo,
    /// Both sets.
    Both,
}

/// One stage's command and how long it took.
pub(crate) struct Stage {
    name: &'static str,
    command: Vec<String>,
    seconds: f64,
    skipped: bool,
}

impl Stage {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "stage": self.name,
            "command": format!("synthscope {}", self.command.join(" ")),
            "seconds": (self.seconds * 10.0).round() / 10.0,
            "skipped_output_existed": self.skipped,
        })
    }
}

/// Runs `command` (as typed after `synthscope`) unless `done` exists, announcing it as
/// `step` (e.g. "stage 2/5"); a pipeline made of such stages continues where it stopped.
pub(crate) fn stage(
    step: &str,
    name: &'static str,
    command: Vec<String>,
    done: &Path,
) -> Result<Stage> {
    let started = Instant::now();
    let skipped = done.exists();
    if skipped {
        eprintln!("{step}, {name}: {} exists, skipped", done.display());
    } else {
        eprintln!("{step}, {name}: synthscope {}", command.join(" "));
        crate::run_command(&command).with_context(|| format!("{step} ({name}) failed"))?;
    }
    Ok(Stage {
        name,
        command,
        seconds: started.elapsed().as_secs_f64(),
        skipped,
    })
}

pub(crate) fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

pub(crate) fn grain(a: &AdaptGrainArgs) -> Result<()> {
    let started = Instant::now();
    if (a.masks != MaskSource::Pseudo && a.generate < 8) || a.check < 1 {
        bail!(
            "--generate must be at least 8 (the grain networks' fine-tuning keeps some for validation) and --check at least 1"
        );
    }
    if a.steps == 0 || a.generator_epochs == 0 || a.net1_epochs + a.net2_epochs == 0 {
        bail!("--steps, --generator-epochs and --net1-epochs + --net2-epochs must be at least 1");
    }
    fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create the output directory {}", a.out.display()))?;
    let device = device(a.device)?;
    let out = |name: &str| a.out.join(name);
    let device_arg = format!("{:?}", a.device).to_lowercase();

    // The weights adapted from, as files the stages' commands name.
    let (grain_bytes, grain_name, grain_sha) = shipped::read_weights(
        a.grain.as_deref(),
        Some(&shipped::GRAIN),
        "grain",
        "--grain",
    )?;
    let base_grain = out("base-grain.bin");
    crate::training::write_weights(&base_grain, &grain_bytes)?;
    let base_model = GrainModel::from_bytes(&grain_bytes, &device)
        .with_context(|| format!("cannot load {grain_name} as grain networks"))?;
    let (generator_bytes, generator_name, _) = shipped::read_weights(
        a.generator.as_deref(),
        Some(&shipped::TEM_DIFFUSION),
        "tem-diffusion",
        "--generator",
    )?;
    let base_generator = out("base-generator.bin");
    crate::training::write_weights(&base_generator, &generator_bytes)?;

    // 1. Pseudo-masks.
    let pseudo = out("pseudo");
    let t = Instant::now();
    let pseudo_done = pseudo.join("labels.jsonl");
    let pseudo_summary = pseudo.join("summary.json");
    let skipped = pseudo_done.exists();
    let pseudo_stats: serde_json::Value = if skipped {
        eprintln!(
            "stage 1/5, pseudo-masks: {} exists, skipped",
            pseudo_done.display()
        );
        fs::read(&pseudo_summary)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    } else {
        eprintln!(
            "stage 1/5, pseudo-masks: segmenting the micrographs of {} with {grain_name}",
            a.micrographs.display()
        );
        let stats = write_pseudo_pairs(a, &pseudo, &base_model, &grain_name, &device)?;
        write_atomic(&pseudo_summary, stats.to_string().as_bytes())?;
        stats
    };
    let micrograph_count = crate::labels::read(&pseudo, "tem", None)?.len();
    if micrograph_count < 2 {
        bail!(
            "{} has {micrograph_count} usable micrograph(s); adaptation needs at least 2 (one is kept for validation)",
            a.micrographs.display()
        );
    }
    let mut stages = vec![Stage {
        name: "pseudo-masks",
        command: vec![
            "segment".into(),
            format!("{}/*", a.micrographs.display()),
            "--model".into(),
            path_arg(&base_grain),
        ],
        seconds: t.elapsed().as_secs_f64(),
        skipped,
    }];

    // 2. The generator learns the micrographs' look.
    let generator = out("generator.bin");
    let val = (micrograph_count / 5).clamp(1, 16);
    let mut command: Vec<String> = [
        "train",
        "tem-diffusion",
        "--data",
        &path_arg(&pseudo),
        "--out",
        &path_arg(&generator),
        "--epochs",
        &a.generator_epochs.to_string(),
        "--batch",
        "12",
        "--lr",
        &a.generator_lr.to_string(),
        // A short fine-tune: average over the last ~50 steps, not the base model's past.
        "--ema",
        "0.98",
        "--patch-px",
        &a.patch_px.to_string(),
        "--val",
        &val.to_string(),
        "--seed",
        &a.seed.to_string(),
        "--device",
        &device_arg,
    ]
    .map(String::from)
    .to_vec();
    command.extend(max_steps(a));
    command.extend(resume_or_init(&generator, &base_generator));
    stages.push(stage(
        "stage 2/5",
        "generator fine-tuning",
        command,
        &generator,
    )?);

    // 3. Masks drawn in that look: training pairs (engine masks, the micrographs' own
    //    pseudo-masks, or both) and check pairs (engine masks of another batch).
    let generated = out("generated");
    let check = out("check");
    let draw = |masks: &[String], seed: u64, dir: &Path| -> Vec<String> {
        let mut command: Vec<String> =
            ["sample", "tem-diffusion", "--model", &path_arg(&generator)]
                .map(String::from)
                .to_vec();
        command.extend(masks.iter().cloned());
        command.extend(
            [
                "--seed",
                &seed.to_string(),
                "--steps",
                &a.steps.to_string(),
                "--out",
                &path_arg(dir),
                "--device",
                &device_arg,
            ]
            .map(String::from),
        );
        command
    };
    let engine_masks = |n: usize| vec!["--generate".to_string(), n.to_string()];
    let mut training_dirs = Vec::new();
    if a.masks != MaskSource::Pseudo {
        stages.push(stage(
            "stage 3/5",
            "drawing pairs for engine masks",
            draw(&engine_masks(a.generate), a.seed, &generated),
            &generated.join("labels.jsonl"),
        )?);
        training_dirs.push(generated.clone());
    }
    if a.masks != MaskSource::Engine {
        let masks = out("pseudo-masks");
        write_mask_files(&pseudo, &masks)?;
        let drawn = out("generated-pseudo");
        stages.push(stage(
            "stage 3/5",
            "drawing pairs for the micrographs' own pseudo-masks",
            draw(&["--masks".into(), path_arg(&masks)], a.seed, &drawn),
            &drawn.join("labels.jsonl"),
        )?);
        training_dirs.push(drawn);
    }
    stages.push(stage(
        "stage 3/5",
        "drawing check pairs",
        draw(&engine_masks(a.check), a.seed + 1, &check),
        &check.join("labels.jsonl"),
    )?);
    let training = match training_dirs.as_slice() {
        [one] => one.clone(),
        _ => joined_dataset(&training_dirs, &out("training"))?,
    };
    let training_pairs = crate::labels::read(&training, "tem", None)?.len();
    if training_pairs < 2 {
        bail!("{training_pairs} training pair(s) were drawn; fine-tuning needs at least 2");
    }

    // 4. The grain networks learn from exact masks in the micrographs' look.
    let adapted = out("grain.bin");
    let refine = base_model.header.refine;
    let mut command: Vec<String> = [
        "train",
        "grain",
        "--data",
        &path_arg(&training),
        "--out",
        &path_arg(&adapted),
        "--net1-epochs",
        &a.net1_epochs.to_string(),
        "--net2-epochs",
        &a.net2_epochs.to_string(),
        "--lr",
        &a.grain_lr.to_string(),
        "--val",
        &(training_pairs / 8).clamp(1, 24).to_string(),
        "--t0",
        &refine.t0.to_string(),
        "--threshold",
        &refine.threshold.to_string(),
        "--seed",
        &a.seed.to_string(),
        "--device",
        &device_arg,
    ]
    .map(String::from)
    .to_vec();
    command.extend(max_steps(a));
    command.extend(resume_or_init(&adapted, &base_grain));
    stages.push(stage("stage 4/5", "grain fine-tuning", command, &adapted)?);

    // 5. The report.
    eprintln!("stage 5/5, report: the pipeline before and after adaptation");
    let (adapted_model, _, adapted_sha) = shipped::load_grain(Some(&adapted), &device)?;
    let check_samples = crate::grain_data::load_dir(&check, None)?;
    let before = evaluate(&base_model, &check_samples, refine, &device)?.full;
    let after = evaluate(&adapted_model, &check_samples, refine, &device)?.full;
    let changed = changes_on_micrographs(&pseudo, &base_model, &adapted_model, &device)?;
    let heldout = match &a.heldout {
        Some(dir) => {
            let samples = crate::grain_data::load_dir(dir, None)?;
            let before = evaluate(&base_model, &samples, refine, &device)?.full;
            let after = evaluate(&adapted_model, &samples, refine, &device)?.full;
            serde_json::json!({
                "data": path_arg(dir),
                "images": samples.len(),
                "before": before,
                "after": after,
            })
        }
        None => serde_json::Value::Null,
    };
    let report = serde_json::json!({
        "micrographs": path_arg(&a.micrographs),
        "micrograph_count": micrograph_count,
        "pseudo_masks": pseudo_stats,
        "adapted_from": {"grain": grain_name, "grain_sha256": grain_sha, "generator": generator_name},
        "grain": path_arg(&adapted),
        "grain_sha256": adapted_sha,
        "tolerance_px": TOLERANCE_PX,
        "check_pairs": {
            "images": check_samples.len(),
            "about": "micrographs the adapted generator drew for engine masks it was not trained on; the pipeline's boundaries against those masks",
            "before": before,
            "after": after,
        },
        "your_micrographs": changed,
        "heldout": heldout,
        "stages": stages.iter().map(Stage::json).collect::<Vec<_>>(),
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    let text = serde_json::to_string_pretty(&report)?;
    write_atomic(&out("report.json"), text.as_bytes())?;
    println!("{report}");
    eprintln!(
        "adapted grain networks: {} (check pairs: boundary F1 {:.4} → {:.4}){}",
        adapted.display(),
        before.boundary_f1,
        after.boundary_f1,
        heldout_line(&heldout)
    );
    Ok(())
}

fn heldout_line(heldout: &serde_json::Value) -> String {
    let f1 = |k: &str| heldout[k]["boundary_f1"].as_f64();
    match (f1("before"), f1("after")) {
        (Some(b), Some(a)) => format!("; held-out micrographs: boundary F1 {b:.4} → {a:.4}"),
        _ => String::new(),
    }
}

/// `--resume` when the training that writes `out` left a checkpoint, else `--init base`.
fn resume_or_init(out: &Path, base: &Path) -> Vec<String> {
    if out
        .with_extension("bin.ckpt")
        .join("progress.json")
        .exists()
    {
        vec!["--resume".into()]
    } else {
        vec!["--init".into(), path_arg(base)]
    }
}

fn max_steps(a: &AdaptGrainArgs) -> Vec<String> {
    a.max_steps_per_epoch
        .map(|m| vec!["--max-steps-per-epoch".into(), m.to_string()])
        .unwrap_or_default()
}

/// The micrograph files of `dir`, sorted, without masks of the `generate tem` and `segment`
/// layouts.
fn micrograph_files(dir: &Path, limit: Option<usize>) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot read the micrographs directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            matches!(
                ext.as_deref(),
                Some("png" | "tif" | "tiff" | "jpg" | "jpeg")
            ) && !stem.ends_with("_boundary")
                && !stem.ends_with("_grains")
        })
        .collect();
    paths.sort();
    if let Some(l) = limit {
        paths.truncate(l);
    }
    if paths.is_empty() {
        bail!("{} holds no PNG, TIFF or JPEG micrographs", dir.display());
    }
    Ok(paths)
}

/// 8-bit grey of a micrograph: 8-bit files as they are, deeper ones scaled from their minimum
/// to their maximum (the generator and the grain networks learn from 8-bit micrographs).
fn to_u8(image: &GrayImage) -> Vec<u8> {
    if let GrayImage::U8(i) = image {
        return i.pixels().to_vec();
    }
    let f = image.to_f32();
    let (lo, hi) = f
        .pixels()
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let span = (hi - lo).max(f32::MIN_POSITIVE);
    f.pixels()
        .iter()
        .map(|&v| ((v - lo) / span * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// Stage 1: every micrograph with the pipeline's boundaries, in the `generate tem` layout.
/// Unreadable files are reported and skipped.
fn write_pseudo_pairs(
    a: &AdaptGrainArgs,
    dir: &Path,
    model: &GrainModel,
    model_name: &str,
    device: &Device,
) -> Result<serde_json::Value> {
    let files = micrograph_files(&a.micrographs, a.limit)?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bar = crate::training::progress_bar("pseudo-masks", files.len(), 0);
    let results: Vec<Result<(String, usize, f64)>> = files
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            let _tick = Tick(&bar);
            let bytes = fs::read(path).context("cannot read the file")?;
            let loaded = imaging::load::load_gray(&bytes, MIN_SIDE_PX)?;
            let (w, h) = (
                loaded.image.to_f32().width(),
                loaded.image.to_f32().height(),
            );
            let pixels = to_u8(&loaded.image);
            let grey =
                imaging::Image::from_vec(w, h, pixels.iter().map(|&p| f32::from(p)).collect())?;
            let p = predict_boundaries(&grey, model, device)?;
            let job = MaskJob {
                stem: format!("micrograph_{i:06}"),
                width: w,
                height: h,
                boundary: p.mask,
                origin: serde_json::json!({
                    "source_file": path.file_name().map(|n| n.to_string_lossy().into_owned()),
                    "pseudo_mask_by": model_name,
                }),
            };
            let fraction =
                job.boundary.iter().filter(|&&b| b).count() as f64 / job.boundary.len() as f64;
            let line = write_pair(dir, &job, pixels)?;
            let grains = line["grain_count"].as_u64().unwrap_or(0) as usize;
            Ok((format!("{line}\n"), grains, fraction))
        })
        .collect();
    bar.finish_and_clear();
    let mut lines = String::new();
    let (mut grains, mut fraction, mut failed) = (0usize, 0.0, 0usize);
    for (path, r) in files.iter().zip(results) {
        match r {
            Ok((line, g, f)) => {
                lines += &line;
                grains += g;
                fraction += f;
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {e:#} (skipped)", path.display());
            }
        }
    }
    let n = (files.len() - failed).max(1) as f64;
    write_atomic(&dir.join("labels.jsonl"), lines.as_bytes())?;
    Ok(serde_json::json!({
        "files": files.len(),
        "unreadable": failed,
        "mean_grains": (grains as f64 / n * 10.0).round() / 10.0,
        "mean_boundary_fraction": (fraction / n * 1e4).round() / 1e4,
    }))
}

/// The pseudo-masks of `pseudo` as mask images for `sample tem-diffusion --masks`: cropped to
/// multiples of 8 pixels (what the generator draws), without masks that are empty or all
/// boundary after cropping. Written once.
fn write_mask_files(pseudo: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let partial = dir.with_extension("partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    for (n, record) in crate::labels::read(pseudo, "tem", None)? {
        let path = crate::labels::file_field(pseudo, &record, "boundary", n)?;
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mask = crate::grain_data::decode(&bytes, &path)?.to_f32();
        let (w, h) = (mask.width() / 8 * 8, mask.height() / 8 * 8);
        let pixels: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| {
                if mask.pixels()[y * mask.width() + x] > 0.0 {
                    255
                } else {
                    0
                }
            })
            .collect();
        let lines = pixels.iter().filter(|&&p| p > 0).count();
        if w == 0 || h == 0 || lines == 0 || lines == pixels.len() {
            continue;
        }
        let name = path.file_name().map(|f| f.to_owned()).unwrap_or_default();
        let image = imaging::Image::from_vec(w, h, pixels)?;
        fs::write(partial.join(name), imaging::codec::encode_png_u8(&image)?)
            .with_context(|| format!("cannot write into {}", partial.display()))?;
    }
    fs::rename(&partial, dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(())
}

/// One `generate tem`-layout directory listing the pairs of `dirs` (its labels.jsonl names
/// their files by relative paths), for `train grain --data`.
fn joined_dataset(dirs: &[PathBuf], out: &Path) -> Result<PathBuf> {
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut lines = String::new();
    for dir in dirs {
        let prefix = dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (_, mut record) in crate::labels::read(dir, "tem", None)? {
            for key in ["file", "boundary", "grains"] {
                if let Some(f) = record.get(key).and_then(|f| f.as_str()) {
                    record[key] = format!("../{prefix}/{f}").into();
                }
            }
            lines += &format!("{record}\n");
        }
    }
    write_atomic(&out.join("labels.jsonl"), lines.as_bytes())?;
    Ok(out.to_path_buf())
}

/// Advances a progress bar when dropped: once per item, however it ended.
struct Tick<'a>(&'a indicatif::ProgressBar);

impl Drop for Tick<'_> {
    fn drop(&mut self) {
        self.0.inc(1);
    }
}

/// How much adaptation changed the masks of the scientist's own micrographs: the adapted
/// pipeline's boundaries scored against the original one's, and the grain counts of both.
fn changes_on_micrographs(
    pseudo: &Path,
    before: &GrainModel,
    after: &GrainModel,
    device: &Device,
) -> Result<serde_json::Value> {
    let samples = crate::grain_data::load_dir(pseudo, None)?;
    let per_image: Vec<(f64, usize, usize)> = samples
        .par_iter()
        .map(|s| {
            let size = (s.width, s.height);
            let old = predict_from_planes(&s.planes, size, before, device)?.mask;
            let new = predict_from_planes(&s.planes, size, after, device)?.mask;
            let agreement = boundary_scores(&new, &old, s.width, s.height, TOLERANCE_PX).f1;
            let count = |m: &[bool]| {
                imaging::grains::label_grains(m, s.width, s.height, crate::eval_grain::MIN_GRAIN_PX)
                    .count
            };
            Ok((agreement, count(&old), count(&new)))
        })
        .collect::<Result<_>>()?;
    let n = per_image.len().max(1) as f64;
    let mean = |f: fn(&(f64, usize, usize)) -> f64| per_image.iter().map(f).sum::<f64>() / n;
    let r = |v: f64| (v * 1e4).round() / 1e4;
    Ok(serde_json::json!({
        "images": per_image.len(),
        "boundary_f1_adapted_vs_original": r(mean(|p| p.0)),
        "mean_grains_original": r(mean(|p| p.1 as f64)),
        "mean_grains_adapted": r(mean(|p| p.2 as f64)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_micrographs_are_scaled_from_their_minimum_to_their_maximum() {
        let deep = imaging::Image::from_vec(4, 1, vec![1000u16, 1500, 2000, 3000]).expect("image");
        assert_eq!(to_u8(&GrayImage::U16(deep)), vec![0, 64, 128, 255]);
        let flat = imaging::Image::from_vec(2, 1, vec![7.5f32, 7.5]).expect("image");
        assert_eq!(to_u8(&GrayImage::F32(flat)), vec![0, 0]);
        let bytes = imaging::Image::from_vec(2, 1, vec![3u8, 250]).expect("image");
        assert_eq!(
            to_u8(&GrayImage::U8(bytes)),
            vec![3, 250],
            "8-bit stays as it is"
        );
    }

    #[test]
    fn masks_and_other_files_are_not_taken_for_micrographs() {
        let dir = tempfile::tempdir().expect("dir");
        for name in [
            "b.tif",
            "a.png",
            "a_boundary.png",
            "a_grains.png",
            "labels.jsonl",
            "c.JPG",
            "notes.txt",
        ] {
            fs::write(dir.path().join(name), b"x").expect("write");
        }
        let names: Vec<String> = micrograph_files(dir.path(), None)
            .expect("files")
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.png", "b.tif", "c.JPG"]);
        assert_eq!(
            micrograph_files(dir.path(), Some(1)).expect("files").len(),
            1
        );
        let empty = tempfile::tempdir().expect("dir");
        let e = micrograph_files(empty.path(), None).expect_err("nothing to adapt to");
        assert!(e.to_string().contains("no PNG, TIFF or JPEG"), "{e}");
    }

    #[test]
    fn an_interrupted_fine_tuning_resumes_and_a_new_one_starts_from_the_base() {
        let dir = tempfile::tempdir().expect("dir");
        let (out, base) = (dir.path().join("grain.bin"), dir.path().join("base.bin"));
        assert_eq!(
            resume_or_init(&out, &base),
            ["--init".to_string(), base.display().to_string()]
        );
        fs::create_dir_all(dir.path().join("grain.bin.ckpt")).expect("dir");
        fs::write(dir.path().join("grain.bin.ckpt/progress.json"), "{}").expect("write");
        assert_eq!(resume_or_init(&out, &base), ["--resume"]);
    }
}
