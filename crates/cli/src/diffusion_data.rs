//! Training data of the scattering generator: each engine image as the sample's scattering on
//! the generator's polar grid (`synth::scattering::sample_polar`, exact, no instrument) with
//! the 15 tags of the detector image it was drawn for.

use std::path::Path;

use anyhow::{Context, Result, bail};
use imaging::scattering::polar::PolarGrid;
use models::tagger::TAG_COUNT;
use rayon::prelude::*;
use synth::scattering::{SaxsConfig, SaxsParams, Truth, render, sample_params, sample_polar};

use crate::saxs_data::tag_vector;

/// One training image.
#[derive(Debug, Clone)]
pub(crate) struct PolarSample {
    /// Row-major `[q_bins, chi_bins]` values in [−1, 1].
    pub polar: Vec<f32>,
    /// 1 for each tag of `TRAINING_TAGS` present in the detector image, else 0.
    pub tags: [f32; TAG_COUNT],
}

/// Image `index` of engine batch `seed`: rendered for its tags (they are judged on the detector
/// image), its sample evaluated on `grid`.
pub(crate) fn engine_sample(
    config: &SaxsConfig,
    grid: &PolarGrid,
    seed: u64,
    index: u64,
) -> Result<PolarSample> {
    let params = sample_params(config, seed, index)?;
    let image = render(&params)?;
    let truth = Truth::of(&params, &image);
    let names: Vec<&str> = truth.tags.iter().map(String::as_str).collect();
    Ok(PolarSample {
        polar: sample_polar(&params, grid)?,
        tags: tag_vector(&names)?,
    })
}

/// Images `first..first + count` of engine batch `seed`, in parallel.
pub(crate) fn engine_samples(
    config: &SaxsConfig,
    grid: &PolarGrid,
    seed: u64,
    first: u64,
    count: usize,
) -> Result<Vec<PolarSample>> {
    (first..first + count as u64)
        .into_par_iter()
        .map(|i| engine_sample(config, grid, seed, i))
        .collect()
}

/// Every image of a `generate saxs` directory: its recorded engine parameters evaluated on
/// `grid`, with its recorded tags.
pub(crate) fn load_dir(
    dir: &Path,
    limit: Option<usize>,
    grid: &PolarGrid,
) -> Result<Vec<PolarSample>> {
    if !dir.join("labels.jsonl").exists() {
        bail!(
            "{} has no labels.jsonl: train diffusion --data needs a directory written by \
             `synthscope generate saxs` (fine-tuning on your own detector images, which needs \
             their detector geometry, is not supported yet)",
            dir.display()
        );
    }
    let lines = crate::labels::read(dir, "saxs", limit)?;
    lines
        .par_iter()
        .map(|(n, v)| {
            let (params, tags) = parse_line(*n, v)?;
            Ok(PolarSample {
                polar: sample_polar(&params, grid)?,
                tags,
            })
        })
        .collect()
}

/// Checks every line of the `labels.jsonl` in `dir` (its engine parameters and tags) without
/// evaluating them: the number of usable images, or the first line that is not.
pub(crate) fn check_dir(dir: &Path) -> Result<usize> {
    let lines = crate::labels::read(dir, "saxs", None)?;
    for (n, v) in &lines {
        parse_line(*n, v)?;
    }
    Ok(lines.len())
}

/// The engine parameters and tag vector of line `n` of a `generate saxs` labels.jsonl.
fn parse_line(n: usize, v: &serde_json::Value) -> Result<(SaxsParams, [f32; TAG_COUNT])> {
    let params: SaxsParams = serde_json::from_value(
        v.get("params")
            .cloned()
            .with_context(|| format!("labels.jsonl line {n} has no \"params\""))?,
    )
    .with_context(|| format!("labels.jsonl line {n}: unreadable \"params\""))?;
    let names = crate::labels::tag_names(v, n)?;
    let tags = tag_vector(&names).with_context(|| format!("labels.jsonl line {n}"))?;
    Ok((params, tags))
}

/// `polar` (row-major `[rows, cols]`) turned by `shift` columns around χ and, if `mirror`,
/// reflected χ → −χ: the sample's tags do not depend on its orientation.
pub(crate) fn turn(polar: &[f32], cols: usize, shift: usize, mirror: bool) -> Vec<f32> {
    let mut out = vec![0.0; polar.len()];
    for (src, dst) in polar.chunks(cols).zip(out.chunks_mut(cols)) {
        for (k, &v) in src.iter().enumerate() {
            let k = if mirror { cols - 1 - k } else { k };
            dst[(k + shift) % cols] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turning_shifts_and_mirrors_each_row() {
        let polar = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0];
        assert_eq!(turn(&polar, 4, 0, false), polar);
        assert_eq!(
            turn(&polar, 4, 1, false),
            [3.0, 0.0, 1.0, 2.0, 13.0, 10.0, 11.0, 12.0]
        );
        assert_eq!(
            turn(&polar, 4, 0, true),
            [3.0, 2.0, 1.0, 0.0, 13.0, 12.0, 11.0, 10.0]
        );
    }

    #[test]
    fn engine_samples_are_reproducible_and_tagged() {
        let grid = PolarGrid::reference();
        let config = crate::stages::generated_saxs();
        let a = engine_samples(&config, &grid, 3, 0, 4).expect("samples");
        let b = engine_sample(&config, &grid, 3, 2).expect("sample");
        assert_eq!(a[2].polar, b.polar);
        assert_eq!(a[2].tags, b.tags);
        assert!(a.iter().all(|s| s.polar.len() == grid.len()));
        assert!(
            a.iter()
                .all(|s| s.polar.iter().all(|v| (-1.0..=1.0).contains(v)))
        );
        assert!(a.iter().any(|s| s.tags.iter().sum::<f32>() > 0.0));
    }
}
