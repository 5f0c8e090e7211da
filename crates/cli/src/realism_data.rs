//! Realistic and fake scattering images for the realism ensemble (seed 000).
//!
//! Until diffusion-generated images and expert labels exist, "realistic" means a clean engine
//! image and "fake" an engine image damaged the way generative models fail
//! (`synth::scattering::fakes`). Which images become fakes, and of which kind, depends only on
//! the run's seed and the image's index, so training and evaluation build their sets the same
//! way. Real and fake images are different images: a classifier cannot learn to compare a fake
//! with its own original.
//!
//! The mixing ratio of the seed — generated to experimental images, 4:6 by default — sets the
//! fraction of images that become fakes (generated) against those kept clean (standing in for
//! experimental ones).
//!
//! Images the diffusion generator drew (`synthscope sample diffusion`, [`load_generated`]) join
//! the generated side beside the procedural fakes: what the generator really gets wrong.

use std::path::Path;

use anyhow::{Context, Result, bail};
use imaging::Image;
use imaging::scattering::FourierBessel;
use models::realism::INPUT_SIDE_PX;
use models::tagger::{FB_FEATURES, RING_FEATURES};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use synth::scattering::fakes::{FakeKind, make_fake};
use synth::scattering::{DetectorKind, SaxsConfig, SaxsParams, Truth};

pub(crate) use labels::rounds::Mix;

use crate::saxs_data::{Beam, prepare};

// The members read the taggers' prepared grid (`saxs_data::prepare`).
const _: () = assert!(INPUT_SIDE_PX == models::tagger::IMAGE_SIDE_PX);

/// One image as the realism members see it.
pub(crate) struct RealismSample {
    /// `[256 × 256]` log-scaled grid (the taggers' image view).
    pub image: Vec<f32>,
    /// The 576 ring statistics around the beam centre (the tail of the taggers' coefficient
    /// view), for the rings member.
    pub rings: Vec<f32>,
    /// A clean engine image.
    pub realistic: bool,
    /// How a procedural fake was made (`None` for realistic and for diffusion images).
    pub fake: Option<FakeKind>,
    /// Drawn by the diffusion generator (a fake).
    pub diffusion: bool,
    /// The engine image it was made from (its `index` in labels.jsonl), or the view's number
    /// for a no-pattern image of a directory.
    pub index: u64,
    /// A view of a given image that is no scattering pattern (a photograph, a micrograph).
    pub given_no_pattern: bool,
}

impl RealismSample {
    /// A scattering pattern, clean or damaged or generated: not a frame that is no pattern at
    /// all (what the pattern gate learns).
    pub fn is_pattern(&self) -> bool {
        !self.given_no_pattern
            && !self
                .fake
                .is_some_and(|k| FakeKind::NOT_SCATTERING.contains(&k))
    }
}

/// How the fake side of a realism set is made; the flags `train realism` and `eval realism`
/// share (an evaluation must build its held-out set as the training built its own).
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct FakeMix {
    /// Generated (fake) : experimental (realistic) images, as in seed 000.
    #[arg(long, default_value_t = Mix::default())]
    pub mix: Mix,
    /// Fraction of the fakes drawn as frames that are no scattering pattern at all (flat
    /// Poisson noise, stripes, gradients, uniform noise, photograph-like scenes) instead of
    /// damaged engine images, so that the ensemble learns to reject them too.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub not_scattering: f64,
}

impl std::fmt::Display for FakeMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.mix)?;
        if self.not_scattering > 0.0 {
            write!(
                f,
                ", {:.0} % of fakes no pattern",
                100.0 * self.not_scattering
            )?;
        }
        Ok(())
    }
}

/// Images that are no scattering pattern (photographs, micrographs), as `train realism
/// --gate-for` learns and `eval realism` judges them.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NoPatternImages {
    /// A directory of images that are no scattering pattern (photographs, micrographs, in any
    /// format `classify` reads); each joins the no-pattern side in --no-pattern-views views
    /// (crops and count levels).
    #[arg(long = "no-pattern-images")]
    pub images: Option<std::path::PathBuf>,
    /// Views drawn of each --no-pattern-images file.
    #[arg(long = "no-pattern-views", default_value_t = 8)]
    pub views: usize,
}

impl NoPatternImages {
    /// The views of the directory's images, when one is given (reported on stderr).
    pub(crate) fn load(&self, seed: u64) -> Result<Option<Vec<RealismSample>>> {
        let Some(dir) = &self.images else {
            return Ok(None);
        };
        if self.views == 0 {
            bail!("--no-pattern-views must be at least 1");
        }
        let given = load_no_pattern(dir, self.views, seed)?;
        eprintln!(
            "{} views of the images in {} join the no-pattern side",
            given.len(),
            dir.display()
        );
        Ok(Some(given))
    }
}

/// How a pattern gate at `threshold` treats scored images: the share of patterns (`is_pattern`)
/// it lets through and the share of the others it stops, each with its count.
pub(crate) fn gate_shares(
    scores: &[f64],
    is_pattern: &[bool],
    threshold: f64,
) -> ((f64, usize), (f64, usize)) {
    let share = |pattern: bool| {
        let of: Vec<f64> = scores
            .iter()
            .zip(is_pattern)
            .filter(|&(_, &t)| t == pattern)
            .map(|(&p, _)| p)
            .collect();
        // Patterns pass at or above the threshold; the others are stopped below it.
        let n = of.iter().filter(|&&p| (p >= threshold) == pattern).count();
        (n as f64 / of.len().max(1) as f64, of.len())
    };
    (share(true), share(false))
}

/// A number from 0 to 1.
pub(crate) fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{text} is not a fraction from 0 to 1")),
    }
}

/// How a run turns engine images into realism samples.
struct Recipe {
    /// With the image's index, decides which images become fakes and how.
    seed: u64,
    /// Generated : experimental images, and how fakes are made.
    fakes: FakeMix,
    beam: Beam,
    basis: FourierBessel,
}

impl Recipe {
    fn new(seed: u64, fakes: FakeMix, beam: Beam) -> Self {
        Self {
            seed,
            fakes,
            beam,
            basis: crate::saxs_data::basis(),
        }
    }

    /// The image grid and ring statistics of `counts`, prepared as for classification.
    fn input(&self, counts: &Image<f32>, params: &SaxsParams) -> Result<(Vec<f32>, Vec<f32>)> {
        let g = &params.geometry;
        let (image, coefficients) = prepare(
            counts,
            params.detector,
            (g.beam_x_px, g.beam_y_px),
            self.beam,
            &self.basis,
        )?;
        Ok((image, ring_statistics(coefficients)))
    }

    /// Image `index` as a realistic sample or, as the mix and seed decide, a fake of a kind
    /// that shows on it; `None` when it was to become a fake but no kind shows (it is left out
    /// rather than counted as realistic).
    fn build(
        &self,
        counts: &Image<f32>,
        params: &SaxsParams,
        truth: &Truth,
        index: u64,
    ) -> Result<Option<RealismSample>> {
        let mut rng = ChaCha8Rng::seed_from_u64(synth::rng::splitmix64(
            self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index,
        ));
        if rng.random::<f64>() >= self.fakes.mix.fake_fraction() {
            let (image, rings) = self.input(counts, params)?;
            return Ok(Some(RealismSample {
                image,
                rings,
                realistic: true,
                fake: None,
                diffusion: false,
                index,
                given_no_pattern: false,
            }));
        }
        // No pattern at all, or a damaged image (drawn only when asked for, so that sets
        // built without --not-scattering stay as they were).
        let kinds: &[FakeKind] =
            if self.fakes.not_scattering > 0.0 && rng.random::<f64>() < self.fakes.not_scattering {
                &FakeKind::NOT_SCATTERING
            } else {
                &FakeKind::ALL
            };
        // A random kind first, then the others in turn, until one shows on this image.
        let first = rng.random_range(0..kinds.len());
        for k in 0..kinds.len() {
            let kind = kinds[(first + k) % kinds.len()];
            if let Some(fake) = make_fake(counts, params, truth, kind, &mut rng) {
                let (image, rings) = self.input(&fake, params)?;
                return Ok(Some(RealismSample {
                    image,
                    rings,
                    realistic: false,
                    fake: Some(kind),
                    diffusion: false,
                    index,
                    given_no_pattern: false,
                }));
            }
        }
        Ok(None)
    }
}

/// The realism set of a `generate saxs` directory (parameters and ground truth come from its
/// `labels.jsonl`), in parallel.
pub(crate) fn load_dir(
    dir: &Path,
    limit: Option<usize>,
    seed: u64,
    fakes: FakeMix,
    beam: Beam,
) -> Result<Vec<RealismSample>> {
    let lines = crate::labels::read(dir, "saxs", limit)?;
    let recipe = Recipe::new(seed, fakes, beam);
    let built: Vec<Option<RealismSample>> = lines
        .par_iter()
        .map(|(n, v)| {
            let counts = crate::labels::read_counts(dir, v, *n)?;
            let params: SaxsParams = serde_json::from_value(v["params"].clone())
                .with_context(|| format!("labels.jsonl line {n}: unreadable \"params\""))?;
            let truth: Truth = serde_json::from_value(v.clone())
                .with_context(|| format!("labels.jsonl line {n}: unreadable ground truth"))?;
            let index = v.get("index").and_then(|i| i.as_u64()).unwrap_or(*n as u64);
            recipe.build(&counts, &params, &truth, index)
        })
        .collect::<Result<_>>()?;
    finish(built)
}

/// Generates `count` images of batch `seed` in memory and builds their realism set.
pub(crate) fn generate(
    config: &SaxsConfig,
    seed: u64,
    count: usize,
    fakes: FakeMix,
    beam: Beam,
) -> Result<Vec<RealismSample>> {
    config.validate()?;
    if count == 0 {
        bail!("--generate needs at least one image");
    }
    let recipe = Recipe::new(seed, fakes, beam);
    let built: Vec<Option<RealismSample>> = (0..count as u64)
        .into_par_iter()
        .map(|i| {
            let s = synth::dataset::generate_saxs(config, seed, i)?;
            let counts = synth::scattering::fakes::counts_f32(&s.image);
            recipe.build(&counts, &s.params, &s.truth, i)
        })
        .collect::<Result<_>>()?;
    finish(built)
}

/// The realism set of experts' label exports: each image's consensus (majority of its
/// annotators) is its class; images whose consensus is "unsure" or tied are left out. Beam
/// centres are estimated, as `classify` and the browser do (nothing else is known of a user's
/// image).
pub(crate) fn from_labels(files: &[std::path::PathBuf]) -> Result<Vec<RealismSample>> {
    let archives = crate::expert_labels::read_all(files, true)?;
    let all: Vec<labels::Label> = archives.iter().flat_map(|a| a.labels.clone()).collect();
    let bytes: std::collections::HashMap<&str, &[u8]> = archives
        .iter()
        .flat_map(|a| a.images.iter())
        .map(|i| (i.item.as_str(), i.bytes.as_slice()))
        .collect();
    let stats = labels::agreement(&all);
    let decided: Vec<(usize, &labels::agreement::Consensus, bool)> = stats
        .consensus
        .iter()
        .enumerate()
        .filter_map(|(n, c)| c.realistic.map(|r| (n, c, r)))
        .collect();
    let left_out = stats.consensus.len() - decided.len();
    let fakes = decided.iter().filter(|(_, _, r)| !r).count();
    if fakes == 0 || fakes == decided.len() {
        bail!(
            "the experts' consensus calls {} images realistic and {fakes} fake; fine-tuning needs both",
            decided.len() - fakes
        );
    }
    if let Some((_, c, _)) = decided
        .iter()
        .find(|(_, c, _)| !bytes.contains_key(c.item.as_str()))
    {
        bail!(
            "the labels name {} ({}…) but no file given carries that image: export the labels with their images (Annotate → \"with images\", or `synthscope labels merge … --out merged.zip`)",
            c.file,
            &c.item[..12]
        );
    }
    let basis = crate::saxs_data::basis();
    let built: Vec<Option<RealismSample>> = decided
        .par_iter()
        .map(|&(n, c, realistic)| {
            let loaded = imaging::load::load_gray(bytes[c.item.as_str()], 16)
                .with_context(|| format!("{} ({}…)", c.file, &c.item[..12]))?;
            let counts = loaded.image.to_f32();
            let (image, coefficients) = prepare(
                &counts,
                DetectorKind::Plain,
                (0.0, 0.0),
                Beam::Estimated,
                &basis,
            )?;
            Ok(Some(RealismSample {
                image,
                rings: ring_statistics(coefficients),
                realistic,
                fake: None,
                diffusion: false,
                index: n as u64,
                given_no_pattern: false,
            }))
        })
        .collect::<Result<_>>()?;
    eprintln!(
        "{} labelled images by {} annotators: {} used, {left_out} left out (unsure or tied)",
        stats.items,
        stats.annotators.len(),
        decided.len()
    );
    finish(built)
}

/// Every image of a `synthscope sample diffusion` directory (at most `limit`) as a generated
/// (fake) sample, its rings taken around the drawn beam centre or, with [`Beam::Estimated`],
/// around one estimated from the image.
pub(crate) fn load_generated(
    dir: &Path,
    limit: Option<usize>,
    beam: Beam,
) -> Result<Vec<RealismSample>> {
    let lines = crate::labels::read(dir, "saxs", limit)?;
    let basis = crate::saxs_data::basis();
    lines
        .par_iter()
        .map(|(n, v)| {
            if v.get("generated_by").and_then(|g| g.as_str()) != Some("diffusion") {
                bail!(
                    "{} labels.jsonl line {n} is an engine image, not a generated one: give a \
                     directory written by `synthscope sample diffusion`",
                    dir.display()
                );
            }
            let counts = crate::labels::read_counts(dir, v, *n)?;
            let at = |key: &str| v.get(key).and_then(serde_json::Value::as_f64);
            let drawn_beam_px = at("beam_x_px").zip(at("beam_y_px")).unwrap_or((0.0, 0.0));
            let (image, coefficients) =
                prepare(&counts, DetectorKind::Plain, drawn_beam_px, beam, &basis)?;
            Ok(RealismSample {
                image,
                rings: ring_statistics(coefficients),
                realistic: false,
                fake: None,
                diffusion: true,
                index: v.get("index").and_then(|i| i.as_u64()).unwrap_or(*n as u64),
                given_no_pattern: false,
            })
        })
        .collect()
}

/// `views` views of every image in `dir` (any format `classify` reads), each a frame that is
/// no scattering pattern (photographs, micrographs): a random crop of 40–100 % of each side,
/// its grey levels scaled by 0.05–200 (from faint to bright frames) and, for half of the
/// views, counted (Poisson), prepared as for classification (beam centre estimated).
pub(crate) fn load_no_pattern(dir: &Path, views: usize, seed: u64) -> Result<Vec<RealismSample>> {
    let files = crate::classify::collect_files(&[dir.to_path_buf()])?;
    if files.is_empty() {
        bail!(
            "{} holds no images (PNG, TIFF, JPEG, EDF, CBF or HDF5): give a directory of \
             photographs or micrographs",
            dir.display()
        );
    }
    let basis = crate::saxs_data::basis();
    let jobs: Vec<(usize, usize)> = (0..files.len())
        .flat_map(|f| (0..views).map(move |v| (f, v)))
        .collect();
    let images: Vec<Image<f32>> = files
        .iter()
        .map(|path| {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok(imaging::load::load_gray(&bytes, 16)
                .with_context(|| format!("{} is not an image this tool reads", path.display()))?
                .image
                .to_f32())
        })
        .collect::<Result<_>>()?;
    jobs.par_iter()
        .map(|&(f, v)| {
            let mut rng = ChaCha8Rng::seed_from_u64(synth::rng::splitmix64(
                seed ^ ((f as u64) << 32) ^ v as u64,
            ));
            let view = no_pattern_view(&images[f], &mut rng)?;
            let (image, coefficients) = prepare(
                &view,
                DetectorKind::Plain,
                (0.0, 0.0),
                Beam::Estimated,
                &basis,
            )?;
            Ok(RealismSample {
                image,
                rings: ring_statistics(coefficients),
                realistic: false,
                fake: None,
                diffusion: false,
                index: (f * views + v) as u64,
                given_no_pattern: true,
            })
        })
        .collect()
}

/// One view of a no-pattern image: a crop, a count level and maybe counting noise.
fn no_pattern_view(img: &Image<f32>, rng: &mut ChaCha8Rng) -> Result<Image<f32>> {
    let (w, h) = (img.width(), img.height());
    let cw = ((w as f64 * rng.random_range(0.4..=1.0)) as usize).clamp(1, w);
    let ch = ((h as f64 * rng.random_range(0.4..=1.0)) as usize).clamp(1, h);
    let (x0, y0) = (rng.random_range(0..=w - cw), rng.random_range(0..=h - ch));
    let gain = synth::rng::log_uniform(rng, 0.05, 200.0);
    let counted = rng.random::<bool>();
    let px = img.pixels();
    let mut out = Vec::with_capacity(cw * ch);
    for y in y0..y0 + ch {
        for &v in &px[y * w + x0..y * w + x0 + cw] {
            let mean = f64::from(v.max(0.0)) * gain;
            let counts = if counted {
                synth::rng::poisson(rng, mean)
            } else {
                mean.round()
            };
            out.push(counts as f32);
        }
    }
    Ok(Image::from_vec(cw, ch, out)?)
}

/// Adds `generated` (diffusion samples, no-pattern images) to a split training set, holding out
/// the same share of them as of the rest, from their end (at least one when there is a
/// validation set).
pub(crate) fn add_extra(
    train: &mut Vec<RealismSample>,
    val: &mut Vec<RealismSample>,
    mut generated: Vec<RealismSample>,
) {
    let share = val.len() as f64 / (train.len() + val.len()).max(1) as f64;
    let n_val = ((generated.len() as f64 * share).round() as usize)
        .max(usize::from(!val.is_empty()))
        .min(generated.len());
    val.extend(generated.split_off(generated.len() - n_val));
    train.extend(generated);
}

/// The realism rings member's input: the ring statistics of a coefficient view (after its
/// Fourier–Bessel features, before the taggers' ring features).
fn ring_statistics(coefficients: Vec<f32>) -> Vec<f32> {
    coefficients[FB_FEATURES..FB_FEATURES + RING_FEATURES].to_vec()
}

fn finish(built: Vec<Option<RealismSample>>) -> Result<Vec<RealismSample>> {
    let samples: Vec<RealismSample> = built.into_iter().flatten().collect();
    let fakes = samples.iter().filter(|s| !s.realistic).count();
    if fakes == 0 || fakes == samples.len() {
        bail!(
            "the set has {} realistic and {fakes} fake images; it needs both (use more images or another --mix)",
            samples.len() - fakes
        );
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_mix() -> FakeMix {
        FakeMix {
            mix: Mix::default(),
            not_scattering: 0.0,
        }
    }

    #[test]
    fn a_generated_set_follows_the_mix_and_is_reproducible() {
        let config = SaxsConfig::default();
        let a = generate(&config, 3, 60, reference_mix(), Beam::Estimated).expect("set");
        let fakes = a.iter().filter(|s| !s.realistic).count();
        // 40 % of 60 expected; binomial sd ≈ 3.8.
        assert!((14..=34).contains(&fakes), "{fakes} fakes of {}", a.len());
        assert!(a.iter().all(|s| s.realistic == s.fake.is_none()));
        assert!(
            a.iter()
                .all(|s| s.image.len() == INPUT_SIDE_PX * INPUT_SIDE_PX)
        );
        let b = generate(&config, 3, 60, reference_mix(), Beam::Estimated).expect("set");
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.image == y.image && x.fake == y.fake)
        );
        // The beam centre changes the ring statistics, not the image.
        let truth = generate(&config, 3, 60, reference_mix(), Beam::True).expect("set");
        assert!(a.iter().zip(&truth).all(|(x, y)| x.image == y.image));
        assert!(a.iter().zip(&truth).any(|(x, y)| x.rings != y.rings));
        let more = generate(
            &config,
            3,
            60,
            FakeMix {
                mix: Mix {
                    generated: 8,
                    experimental: 2,
                },
                not_scattering: 0.0,
            },
            Beam::True,
        )
        .expect("set");
        assert!(more.iter().filter(|s| !s.realistic).count() > fakes);
    }

    #[test]
    fn not_scattering_replaces_that_fraction_of_the_fakes_and_nothing_else() {
        let config = SaxsConfig {
            size_px: 128,
            ..SaxsConfig::default()
        };
        let with = |not_scattering| {
            let fakes = FakeMix {
                mix: Mix::default(),
                not_scattering,
            };
            generate(&config, 5, 120, fakes, Beam::Estimated).expect("set")
        };
        let (none, half) = (with(0.0), with(0.5));
        let no_pattern = |set: &[RealismSample]| {
            set.iter()
                .filter(|s| {
                    s.fake
                        .is_some_and(|k| FakeKind::NOT_SCATTERING.contains(&k))
                })
                .count()
        };
        assert_eq!(no_pattern(&none), 0);
        let fakes = half.iter().filter(|s| !s.realistic).count();
        // Half of ≈ 48 fakes; binomial sd ≈ 3.5.
        let n = no_pattern(&half);
        assert!(n * 4 >= fakes && n * 4 <= 3 * fakes, "{n} of {fakes}");
        // Which images are realistic does not change, and they are the same images (fakes
        // of a kind that does not show are left out, so match by index).
        for a in none.iter().filter(|s| s.realistic) {
            let b = half.iter().find(|b| b.index == a.index).expect("kept");
            assert!(b.realistic && a.image == b.image);
        }
        assert_eq!(
            none.iter().filter(|s| s.realistic).count(),
            half.iter().filter(|s| s.realistic).count()
        );
    }
}
