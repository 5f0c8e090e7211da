//! Scattering samples for the taggers: read from a directory written by `synthscope generate
//! saxs`, or generated in memory with the same engine, and turned into the taggers' two views
//! (`imaging::scattering::tagger_input`) around the true beam centre.

use std::path::Path;

use anyhow::{Context, Result, bail};
use imaging::Image;
use imaging::scattering::FourierBessel;
use imaging::scattering::Mask;
use models::tagger::{
    FB_FEATURES, FOLD_FEATURES, IMAGE_SIDE_PX, OUTER_FEATURES, PEAK_FEATURES, RING_FEATURES,
    TAG_COUNT,
};
use rayon::prelude::*;
use synth::scattering::{DetectorKind, SaxsConfig, TRAINING_TAGS};

/// One detector image as the taggers see it, with its true tags.
pub(crate) struct SaxsSample {
    /// `[256 × 256]` log-scaled grid; empty when the run needs only the coefficient view
    /// ([`ImageView::Drop`]).
    pub image: Vec<f32>,
    /// The coefficient view: 880 Fourier–Bessel features, 576 ring statistics, 302 ring features,
    /// 28 fold scores, 907 of the outer view.
    pub coeff: Vec<f32>,
    /// 1 for each tag of `TRAINING_TAGS` present, else 0.
    pub tags: [f32; TAG_COUNT],
    /// Line of `labels.jsonl` it was read from (from 1), or its index in a generated batch.
    pub line: usize,
}

// The model's input widths are those the imaging crate computes.
const _: () = assert!(
    FB_FEATURES == imaging::scattering::fourier_bessel::FEATURES
        && RING_FEATURES == imaging::scattering::RING_FEATURES
        && PEAK_FEATURES == imaging::scattering::PEAK_FEATURES
        && FOLD_FEATURES == imaging::scattering::FOLD_FEATURES
        && OUTER_FEATURES == imaging::scattering::OUTER_FEATURES
);

/// The basis of the coefficient view: reference orders on a disc of half the grid.
pub(crate) fn basis() -> FourierBessel {
    FourierBessel::reference(IMAGE_SIDE_PX as f64 / 2.0)
}

/// Multi-hot vector of tag names; unknown names are an error (a newer engine's data).
pub(crate) fn tag_vector(names: &[&str]) -> Result<[f32; TAG_COUNT]> {
    let mut out = [0.0; TAG_COUNT];
    for name in names {
        let i = TRAINING_TAGS
            .iter()
            .position(|t| t == name)
            .with_context(|| format!("unknown tag \"{name}\""))?;
        out[i] = 1.0;
    }
    Ok(out)
}

/// Which beam centre the coefficient view is taken around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beam {
    /// The centre the engine drew (labels.jsonl).
    True,
    /// Estimated from the image as `synthscope classify` and the browser do: a network then
    /// learns, and is judged on, what it will see in use, wrong centres included.
    Estimated,
}

impl Beam {
    /// `Estimated` when `estimated` is set.
    pub(crate) fn estimated_if(estimated: bool) -> Self {
        if estimated {
            Beam::Estimated
        } else {
            Beam::True
        }
    }
}

/// Whether samples keep the image view. A coefficient-only run drops it as each image is
/// prepared: the grid is 256 KB an image against the coefficients' 11 KB, so 60 000 images
/// need 16 GB with it and 0.7 GB without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageView {
    Keep,
    Drop,
}

impl ImageView {
    /// `Keep` when `needed`.
    pub(crate) fn kept_if(needed: bool) -> Self {
        if needed {
            ImageView::Keep
        } else {
            ImageView::Drop
        }
    }

    /// The prepared grid, or nothing when dropped.
    fn apply(self, image: Vec<f32>) -> Vec<f32> {
        match self {
            ImageView::Keep => image,
            ImageView::Drop => Vec::new(),
        }
    }
}

/// Both views of detector counts, prepared as for classification (invalid pixels masked)
/// around the true beam centre `true_beam_px` or, with [`Beam::Estimated`], around one
/// estimated from the image.
///
/// The engine writes 0 in a detector's module gaps (a PNG has no invalid value), where a
/// real detector's file marks them invalid (−1, or 2³² − 1); `detector` masks them as such,
/// so the taggers learn from gaps as they will see them in real files.
pub(crate) fn prepare(
    counts: &Image<f32>,
    detector: DetectorKind,
    true_beam_px: (f64, f64),
    beam: Beam,
    basis: &FourierBessel,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let given = (beam == Beam::True).then_some(true_beam_px);
    let mut gaps = Mask::empty(counts.width(), counts.height());
    // One reference (1000 px) pixel per image pixel × size / 1000, as the engine draws gaps.
    let scale = counts.width() as f64 / synth::scattering::geometry::REFERENCE_SIZE_PX as f64;
    gaps.add_detector_gaps(detector, scale);
    let p = imaging::scattering::prepare(counts, Some(&gaps), given, basis)?;
    Ok((p.tagger.image, p.tagger.coefficients))
}

/// Reads every image of a `generate saxs` directory (its `labels.jsonl`), in parallel.
pub(crate) fn load_dir(
    dir: &Path,
    limit: Option<usize>,
    beam: Beam,
    view: ImageView,
) -> Result<Vec<SaxsSample>> {
    let lines = crate::labels::read(dir, "saxs", limit)?;
    let basis = basis();
    lines
        .par_iter()
        .map(|(n, v)| {
            let counts = crate::labels::read_counts(dir, v, *n)?;
            let number = |k: &str| {
                v.get(k)
                    .and_then(|x| x.as_f64())
                    .with_context(|| format!("labels.jsonl line {n} has no \"{k}\""))
            };
            let names = crate::labels::tag_names(v, *n)?;
            // Engine data name their detector in `params`; other sets mark gaps in the file.
            let detector = v
                .pointer("/params/detector")
                .and_then(|d| serde_json::from_value(d.clone()).ok())
                .unwrap_or_default();
            let (image, coeff) = prepare(
                &counts,
                detector,
                (number("beam_x_px")?, number("beam_y_px")?),
                beam,
                &basis,
            )?;
            Ok(SaxsSample {
                image: view.apply(image),
                coeff,
                tags: tag_vector(&names).with_context(|| format!("labels.jsonl line {n}"))?,
                line: *n,
            })
        })
        .collect()
}

/// Generates `count` detector images of batch `seed` in memory.
pub(crate) fn generate(
    config: &SaxsConfig,
    seed: u64,
    count: usize,
    beam: Beam,
    view: ImageView,
) -> Result<Vec<SaxsSample>> {
    config.validate()?;
    if count == 0 {
        bail!("--generate needs at least one image");
    }
    let basis = basis();
    (0..count as u64)
        .into_par_iter()
        .map(|i| {
            let s = synth::dataset::generate_saxs(config, seed, i)?;
            let counts = s.image.counts.map(|c| c as f32);
            let g = s.params.geometry;
            let (image, coeff) = prepare(
                &counts,
                s.params.detector,
                (g.beam_x_px, g.beam_y_px),
                beam,
                &basis,
            )?;
            let names: Vec<&str> = s.truth.tags.iter().map(String::as_str).collect();
            Ok(SaxsSample {
                image: view.apply(image),
                coeff,
                tags: tag_vector(&names)?,
                line: i as usize,
            })
        })
        .collect()
}
