//! `synthscope segment IN... --out DIR`: the browser's grain pipeline, natively, on files.
//!
//! For every input it writes `<name>_boundary.png` (0/255), `<name>_grains.png` (16-bit grain
//! ids, 0 = none) and `<name>_stats.json`. A file that cannot be read is reported and skipped;
//! the others are still processed, and the exit status says whether any failed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use imaging::Image;
use imaging::grains::{grain_stats, label_grains};
use models::grain::{self, GrainInput, GrainModel};

use crate::device::{DeviceChoice, block_on, device};
use crate::eval_grain::MIN_GRAIN_PX;
use crate::shipped;

/// The grain pipeline needs at least this many pixels on each side.
pub(crate) const MIN_SIDE_PX: usize = 16;

#[derive(Debug, Args)]
pub(crate) struct SegmentArgs {
    /// TEM images: PNG, TIFF (8/16-bit, float) or JPEG.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Weights written by `synthscope train grain` (default: the shipped weights).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Pixel size in nanometres: adds sizes in nm and the ASTM E112 grain size numbers.
    #[arg(long)]
    pixel_size_nm: Option<f64>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

pub(crate) fn run(a: &SegmentArgs) -> Result<()> {
    if let Some(p) = a.pixel_size_nm
        && !(p > 0.0 && p.is_finite())
    {
        bail!("--pixel-size-nm must be a positive number of nanometres; got {p}");
    }
    let device = device(a.device)?;
    let (model, model_name, sha256) = shipped::load_grain(a.model.as_deref(), &device)?;
    fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create the output directory {}", a.out.display()))?;
    let mut failed = 0;
    for input in &a.inputs {
        let started = Instant::now();
        match segment_one(input, a, &model, &device) {
            Ok(mut summary) => {
                summary["model"] = serde_json::json!(model_name);
                summary["model_sha256"] = serde_json::json!(sha256);
                let name = stem(input);
                let path = a.out.join(format!("{name}_stats.json"));
                fs::write(&path, serde_json::to_string_pretty(&summary)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!(
                    "{}: {} grains, mean ECD {:.1} px, {} refinement iterations ({:.2} s)",
                    input.display(),
                    summary["stats"]["grain_count"],
                    summary["stats"]["mean_ecd_px"].as_f64().unwrap_or(0.0),
                    summary["iterations"],
                    started.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {e:#}", input.display());
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} inputs could not be segmented (see above)",
            a.inputs.len()
        );
    }
    Ok(())
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

/// The grain pipeline (edge planes, Net1, Net2 refinement with the model's own settings) on one
/// grey image.
pub(crate) fn predict_boundaries(
    image: &Image<f32>,
    model: &GrainModel,
    device: &burn::tensor::Device,
) -> Result<grain::GrainPrediction> {
    let (_, _, planes) = imaging::edges::grain_planes(image);
    predict_from_planes(&planes, (image.width(), image.height()), model, device)
}

/// The same from the edge planes `[4, h, w]` of `imaging::edges::grain_planes`.
pub(crate) fn predict_from_planes(
    planes: &[f32],
    (w, h): (usize, usize),
    model: &GrainModel,
    device: &burn::tensor::Device,
) -> Result<grain::GrainPrediction> {
    let prepared = GrainInput::new(planes, w, h, model.multiple_px())?;
    Ok(block_on(grain::predict(
        model,
        prepared,
        model.header.refine,
        device,
    ))?)
}

fn segment_one(
    input: &Path,
    a: &SegmentArgs,
    model: &GrainModel,
    device: &burn::tensor::Device,
) -> Result<serde_json::Value> {
    let bytes = fs::read(input).context("cannot read the file")?;
    let loaded = imaging::load::load_gray(&bytes, MIN_SIDE_PX)?;
    if let Some(notice) = loaded.notice() {
        eprintln!("note: {}: {notice}", input.display());
    }
    let image = loaded.image.to_f32();
    let (w, h) = (image.width(), image.height());
    let p = predict_boundaries(&image, model, device)?;
    let labels = label_grains(&p.mask, w, h, MIN_GRAIN_PX);
    let stats = grain_stats(&p.mask, &labels, a.pixel_size_nm);
    let name = stem(input);

    let mask = Image::from_vec(
        w,
        h,
        p.mask.iter().map(|&b| if b { 255u8 } else { 0 }).collect(),
    )?;
    let path = a.out.join(format!("{name}_boundary.png"));
    fs::write(&path, imaging::codec::encode_png_u8(&mask)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let filled = labels.filled();
    let path = a.out.join(format!("{name}_grains.png"));
    if filled.count > usize::from(u16::MAX) {
        bail!("{} grains do not fit a 16-bit grain-id map", filled.count);
    }
    let ids = Image::from_vec(w, h, filled.ids.iter().map(|&id| id as u16).collect())?;
    fs::write(&path, imaging::codec::encode_png_u16(&ids)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(serde_json::json!({
        "input": input.display().to_string(),
        "format": loaded.format,
        "converted_from_colour": loaded.converted_from_colour,
        "iterations": p.iterations,
        "converged": p.converged,
        "stats": stats,
    }))
}
