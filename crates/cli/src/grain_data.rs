//! TEM samples for training and evaluating the grain networks: read from a directory written by
//! `synthscope generate tem`, or generated in memory with the same engine.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use imaging::Image;
use imaging::codec::{self, GrayImage};
use rayon::prelude::*;
use synth::tem::TemConfig;

/// One micrograph prepared for the networks, with its ground truth.
pub(crate) struct GrainSample {
    pub width: usize,
    pub height: usize,
    /// `[4, height, width]`: Sobel, LoG, Canny, grey (see `imaging::edges::grain_planes`).
    pub planes: Vec<f32>,
    /// True boundary mask, row-major.
    pub boundary: Vec<bool>,
    /// True grain ids (every pixel labelled, boundaries included).
    pub grains: Vec<u32>,
    /// True equivalent-circle diameters in pixels.
    pub ecd_px: Vec<f64>,
}

impl GrainSample {
    fn new(image: &Image<f32>, boundary: Vec<bool>, grains: Vec<u32>, ecd_px: Vec<f64>) -> Self {
        let (_, _, planes) = imaging::edges::grain_planes(image);
        Self {
            width: image.width(),
            height: image.height(),
            planes,
            boundary,
            grains,
            ecd_px,
        }
    }
}

/// Decodes a PNG or TIFF by its magic bytes.
pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<GrayImage> {
    codec::decode_gray(bytes).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads every image of a `generate tem` directory (its `labels.jsonl`), in parallel.
pub(crate) fn load_dir(dir: &Path, limit: Option<usize>) -> Result<Vec<GrainSample>> {
    let lines = crate::labels::read(dir, "tem", limit)?;
    lines
        .par_iter()
        .map(|(n, v)| {
            let field = |k: &str| crate::labels::file_field(dir, v, k, *n);
            let read = |p: &Path| {
                let bytes = fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
                decode(&bytes, p)
            };
            let image = read(&field("file")?)?.to_f32();
            let boundary: Vec<bool> = read(&field("boundary")?)?
                .to_f32()
                .pixels()
                .iter()
                .map(|&b| b > 0.0)
                .collect();
            let grains: Vec<u32> = read(&field("grains")?)?
                .to_f32()
                .pixels()
                .iter()
                .map(|&g| g as u32)
                .collect();
            if boundary.len() != image.pixels().len() || grains.len() != boundary.len() {
                bail!("labels.jsonl line {n}: image and masks differ in size");
            }
            let ecd_px = v
                .get("grain_ecd_px")
                .and_then(|e| e.as_array())
                .map(|a| a.iter().filter_map(|d| d.as_f64()).collect())
                .unwrap_or_default();
            Ok(GrainSample::new(&image, boundary, grains, ecd_px))
        })
        .collect()
}

/// Generates `count` micrographs of batch `seed` in memory.
pub(crate) fn generate(config: &TemConfig, seed: u64, count: usize) -> Result<Vec<GrainSample>> {
    config.validate()?;
    (0..count as u64)
        .into_par_iter()
        .map(|i| {
            let s = synth::dataset::generate_tem(config, seed, i)?;
            let t = s.image;
            Ok(GrainSample::new(
                &t.image.map(f32::from),
                t.boundary.pixels().iter().map(|&b| b > 0).collect(),
                t.grains.pixels().iter().map(|&g| u32::from(g)).collect(),
                t.grain_ecd_px,
            ))
        })
        .collect()
}
