//! `synthscope eval diffusion`: the scattering generator judged against held-out engine images
//! by the shipped classifiers, a distribution distance and physics; prints one JSON object.
//!
//! Sample i asks for the tags of held-out engine image i, so samples and engine images share
//! one tag distribution. Every image is prepared as a user's would be (beam centre estimated)
//! and classified by the tagger and the realism ensemble. References: a second independent
//! engine set (the floor of every distance) and procedural fakes (`synth::scattering::fakes`,
//! a known-bad generator).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::Args;
use imaging::metrics::{average_precision, kid};
use imaging::scattering::polar::PolarGrid;
use imaging::scattering::{BeamSource, FourierBessel, prepare};
use models::classify::Classifier;
use models::diffusion::generator::{DEFAULT_LATTICE_GUIDANCE, SampleSettings, noise_seed};
use models::diffusion::prior::LinearGaussianPrior;
use models::diffusion::sampler::SamplerKind;
use models::tagger::{FB_FEATURES, TAG_COUNT};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::{Value, json};
use synth::scattering::fakes::{FakeKind, counts_f32, make_fake};
use synth::scattering::lattice::{LatticeKind, reflections};
use synth::scattering::{SaxsConfig, SaxsParams, TRAINING_TAGS, sample_polar};

use crate::device::{DeviceChoice, block_on, device};
use crate::sample_diffusion::{Draw, Drawn, detect, load_generator};
use crate::shipped;

/// Engine batches of the references when no `--real` directory is given.
const FLOOR_STREAM: u64 = 0xF1_0000;
const FAKES_STREAM: u64 = 0xFA_0000;
/// Stream of the lattice panel's samples and engine images.
const PANEL_STREAM: u64 = 0x1A77_0000;
/// The lattices of the panel, each asked for with the tags the engine shows beside every
/// lattice ([`PANEL_TAGS`]).
const PANEL_LATTICES: [&str; 4] = ["BCC", "FCC", "hexagonal", "lamellar"];
const PANEL_TAGS: [&str; 2] = ["higher orders", "ring"];
/// Engine images searched for the panel's single-lattice references, at most.
const PANEL_SEARCH: u64 = 200_000;
/// Radial profile and its contrast: the first 2 × 160 ring statistics.
const PROFILE_FEATURES: usize = 320;
/// Images classified together.
const CHUNK: usize = 32;

/// The judged reference sets every sample set is compared with.
struct References {
    /// Held-out engine images (the tags samples are asked for are theirs).
    real: Vec<Judged>,
    /// A second independent engine set: the floor of every distance.
    floor: Vec<Judged>,
    /// Procedural fakes: a known-bad generator.
    fakes: Vec<Judged>,
    /// Training-stream images, for memorisation.
    training: Vec<Judged>,
}

#[derive(Debug, Args)]
pub(crate) struct EvalDiffusionArgs {
    /// Diffusion weights (default: the shipped ones).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Held-out engine images: a `generate saxs` directory (default: --count images generated
    /// in memory from batch --seed).
    #[arg(long)]
    real: Option<PathBuf>,
    /// Samples, and engine images of each reference set.
    #[arg(long, default_value_t = 500)]
    count: usize,
    /// Batch seed of the samples and of the generated references.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Denoising steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Classifier-free guidance scale.
    #[arg(long, default_value_t = 2.0)]
    guidance: f32,
    /// Update rule: ddpm, ddim or dpm++.
    #[arg(long, default_value = "dpm++")]
    sampler: String,
    /// Keep only the angular harmonics |m| ≤ N of every clean estimate while sampling, instead
    /// of what the model file says (0: keep all).
    #[arg(long)]
    chi_harmonics: Option<usize>,
    /// Guidance scale of the lattice-series plane, for models that read it (1: plain guidance,
    /// the plane read by both branches).
    #[arg(long, default_value_t = DEFAULT_LATTICE_GUIDANCE)]
    lattice_guidance: f32,
    /// Engine batch the model was trained on (`train diffusion --seed`), for the memorisation
    /// ratio.
    #[arg(long, default_value_t = 100)]
    train_seed: u64,
    /// Training images compared against for memorisation.
    #[arg(long, default_value_t = 1000)]
    train_count: usize,
    /// Realism weights (default: the shipped ensemble).
    #[arg(long)]
    realism: Option<PathBuf>,
    /// KID subsets.
    #[arg(long, default_value_t = 100)]
    kid_subsets: usize,
    /// Training-stream images the baseline prior (`models::diffusion::prior`, the linear VAE)
    /// is fitted to (0: no baseline).
    #[arg(long, default_value_t = 1000)]
    prior_images: usize,
    /// Latent dimensions of the baseline prior.
    #[arg(long, default_value_t = 64)]
    prior_rank: usize,
    /// Samples per lattice tag in the lattice panel (0: no panel): does the tagger tell which
    /// lattice was asked for, with many more requests per lattice than a held-out batch has.
    #[arg(long, default_value_t = 0)]
    lattice_panel: usize,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

/// An engine image with what is known of it.
struct EngineImage {
    counts: imaging::Image<f32>,
    tags: Vec<String>,
    params: Option<SaxsParams>,
}

/// What the classifiers and the beam search say about one image.
struct Judged {
    tag_probabilities: Vec<f32>,
    realistic: bool,
    embedding: Vec<f32>,
    profile: Vec<f32>,
    /// Variance explained by the estimated beam centre.
    explained: f64,
}

fn judge(
    classifier: &Classifier,
    images: &[&imaging::Image<f32>],
    device: &Device,
) -> Result<Vec<Judged>> {
    let basis = FourierBessel::reference(128.0);
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(CHUNK) {
        let prepared = chunk
            .par_iter()
            .map(|im| Ok(prepare(im, None, None, &basis)?))
            .collect::<Result<Vec<_>>>()?;
        let inputs: Vec<_> = prepared.iter().map(crate::classify::inputs).collect();
        let results = block_on(classifier.classify(&inputs, device))?;
        for (p, c) in prepared.iter().zip(results) {
            let coeff = &p.tagger.coefficients;
            out.push(Judged {
                tag_probabilities: c.tag_probabilities,
                realistic: c.realistic,
                embedding: c.embedding,
                profile: coeff[FB_FEATURES..FB_FEATURES + PROFILE_FEATURES].to_vec(),
                explained: match p.beam_source {
                    BeamSource::Estimated { explained } => explained,
                    _ => 0.0,
                },
            });
        }
    }
    Ok(out)
}

/// Engine images `0..count` of batch `seed`, rendered.
fn engine(config: &SaxsConfig, seed: u64, count: usize) -> Result<Vec<EngineImage>> {
    engine_range(config, seed, 0, count as u64)
}

/// Engine images `first..first + count` of batch `seed`, rendered.
fn engine_range(
    config: &SaxsConfig,
    seed: u64,
    first: u64,
    count: u64,
) -> Result<Vec<EngineImage>> {
    (first..first + count)
        .into_par_iter()
        .map(|i| {
            let s = synth::dataset::generate_saxs(config, seed, i)?;
            Ok(EngineImage {
                counts: counts_f32(&s.image),
                tags: s.truth.tags.clone(),
                params: Some(s.params),
            })
        })
        .collect()
}

/// Procedural fakes of engine images of batch `seed`: each a random kind that shows on it.
fn fakes(config: &SaxsConfig, seed: u64, count: usize) -> Result<Vec<imaging::Image<f32>>> {
    let made: Vec<Option<imaging::Image<f32>>> = (0..count as u64 * 2)
        .into_par_iter()
        .map(|i| {
            let s = synth::dataset::generate_saxs(config, seed, i)?;
            let counts = counts_f32(&s.image);
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9));
            let first = rng.random_range(0..FakeKind::ALL.len());
            Ok((0..FakeKind::ALL.len()).find_map(|k| {
                let kind = FakeKind::ALL[(first + k) % FakeKind::ALL.len()];
                make_fake(&counts, &s.params, &s.truth, kind, &mut rng)
            }))
        })
        .collect::<Result<_>>()?;
    Ok(made.into_iter().flatten().take(count).collect())
}

/// The held-out engine images of a `generate saxs` directory.
fn load_real(dir: &std::path::Path, count: usize) -> Result<Vec<EngineImage>> {
    let lines = crate::labels::read(dir, "saxs", Some(count))?;
    lines
        .par_iter()
        .map(|(n, v)| {
            let counts = crate::labels::read_counts(dir, v, *n)?;
            let tags = crate::labels::tag_names(v, *n)?
                .into_iter()
                .map(str::to_string)
                .collect();
            let params = v
                .get("params")
                .and_then(|p| serde_json::from_value(p.clone()).ok());
            Ok(EngineImage {
                counts,
                tags,
                params,
            })
        })
        .collect()
}

/// Average precision of the tagger's scores for each tag that `wanted` asks for at least once.
fn tag_aps(judged: &[Judged], wanted: &[Vec<String>]) -> Vec<(String, f64)> {
    (0..TAG_COUNT)
        .filter_map(|t| {
            let scores: Vec<f64> = judged
                .iter()
                .map(|j| f64::from(j.tag_probabilities[t]))
                .collect();
            let truth: Vec<bool> = wanted
                .iter()
                .map(|w| w.iter().any(|x| x == TRAINING_TAGS[t]))
                .collect();
            Some((
                TRAINING_TAGS[t].to_string(),
                average_precision(&scores, &truth)?,
            ))
        })
        .collect()
}

/// Mean of [`tag_aps`].
fn mean_ap(judged: &[Judged], wanted: &[Vec<String>]) -> Option<f64> {
    let aps = tag_aps(judged, wanted);
    (!aps.is_empty()).then(|| aps.iter().map(|(_, ap)| ap).sum::<f64>() / aps.len() as f64)
}

/// [`tag_aps`] for the report.
fn ap_per_tag(judged: &[Judged], wanted: &[Vec<String>]) -> serde_json::Map<String, Value> {
    tag_aps(judged, wanted)
        .into_iter()
        .map(|(tag, ap)| (tag, r4(ap)))
        .collect()
}

/// Median over `rows` of the distance to the nearest of `reference`.
fn median_nearest(rows: &[&Vec<f32>], reference: &[&Vec<f32>]) -> f64 {
    let mut d: Vec<f64> = rows
        .par_iter()
        .map(|r| {
            reference
                .iter()
                .map(|x| {
                    r.iter()
                        .zip(x.iter())
                        .map(|(a, b)| f64::from(a - b).powi(2))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .collect();
    d.sort_by(f64::total_cmp);
    d.get(d.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Peak positions (Å⁻¹) of the azimuthal mean of a polar image: local maxima standing 0.01
/// above the mean of ±6 rows (a ring of a few counts over its fall-off, on the value scale).
fn profile_peaks(grid: &PolarGrid, polar: &[f32]) -> Vec<f64> {
    let cols = grid.chi_bins;
    let profile: Vec<f64> = polar
        .chunks(cols)
        .map(|r| r.iter().map(|&v| f64::from(v)).sum::<f64>() / cols as f64)
        .collect();
    let n = profile.len();
    (1..n.saturating_sub(1))
        .filter(|&j| {
            let (lo, hi) = (j.saturating_sub(6), (j + 7).min(n));
            let mean = profile[lo..hi].iter().sum::<f64>() / (hi - lo) as f64;
            profile[j] >= profile[j - 1] && profile[j] > profile[j + 1] && profile[j] - mean > 0.01
        })
        .map(|j| grid.q_at(j as f64 + 0.5))
        .filter(|&q| q > 0.0)
        .collect()
}

/// How well `peaks` follow the ring-radius ratios of `kind`: the best, over peaks taken as the
/// first reflection, share of the next five reflections inside the grid that have a peak
/// within 3 % (0 when fewer than two are inside).
fn lattice_score(peaks: &[f64], q_max: f64, kind: LatticeKind) -> f64 {
    let ratios: Vec<f64> = reflections(kind, 6)
        .iter()
        .skip(1)
        .map(|r| r.ratio)
        .collect();
    peaks
        .iter()
        .map(|&q1| {
            let visible: Vec<f64> = ratios
                .iter()
                .map(|r| r * q1)
                .filter(|&q| q < q_max)
                .collect();
            if visible.len() < 2 {
                return 0.0;
            }
            let found = visible
                .iter()
                .filter(|&&q| peaks.iter().any(|&p| (p / q - 1.0).abs() < 0.03))
                .count();
            found as f64 / visible.len() as f64
        })
        .fold(0.0, f64::max)
}

/// Whether a polar image's rings follow `kind`: at least 60 % of its visible reflections have
/// a peak, and no other lattice fits better (noise, with peaks everywhere, fits all alike).
pub(crate) fn lattice_matches(grid: &PolarGrid, polar: &[f32], kind: LatticeKind) -> bool {
    let peaks = profile_peaks(grid, polar);
    let q_max = grid.q_max_inv_angstrom;
    let own = lattice_score(&peaks, q_max, kind);
    own >= 0.6
        && LatticeKind::ALL
            .into_iter()
            .filter(|&k| k != kind)
            .all(|k| lattice_score(&peaks, q_max, k) < own)
}

/// Share of `polars` asked for a lattice (by `tags`) whose rings match it.
fn lattice_share(grid: &PolarGrid, polars: &[(&[f32], &[String])]) -> (Option<f64>, usize) {
    let checks: Vec<bool> = polars
        .iter()
        .filter_map(|(p, tags)| {
            let kind = LatticeKind::ALL
                .into_iter()
                .find(|k| tags.iter().any(|t| t == k.tag()))?;
            Some(lattice_matches(grid, p, kind))
        })
        .collect();
    let n = checks.len();
    let share = (n > 0).then(|| checks.iter().filter(|&&c| c).count() as f64 / n as f64);
    (share, n)
}

fn r4(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 1e4).round() / 1e4)
    } else {
        Value::Null
    }
}

fn kid_json(x: &[&Vec<f32>], y: &[&Vec<f32>], subsets: usize) -> Value {
    let own = |v: &[&Vec<f32>]| v.iter().map(|r| (*r).clone()).collect::<Vec<_>>();
    match kid(&own(x), &own(y), subsets, 1000, 0) {
        Some((m, s)) => json!({ "mean": r4(m * 1e3), "std": r4(s * 1e3) }),
        None => Value::Null,
    }
}

/// Width of the radial bands of [`profile_gap`], in tagger-grid pixels (of 160 profile bins).
const GAP_BAND_PX: usize = 20;

/// Where in radius the radial profiles `x` depart from the reference `y` (each row the
/// [`PROFILE_FEATURES`]: 160 mean log levels in 1-px rings of the tagger grid, then their
/// 160 contrasts), per band of [`GAP_BAND_PX`] rings, averaged over its rings:
/// - `*_z`: (mean of x − mean of y) / standard deviation of y, signed (above 0: brighter, or
///   more contrast, than the reference);
/// - `*_log_spread`: ln(standard deviation of x / that of y) (above 0: more varied from image
///   to image than the reference; below: too alike).
///
/// The radial KID says *that* the profiles differ; this says where, and whether in level or
/// in spread.
fn profile_gap(x: &[&Vec<f32>], y: &[&Vec<f32>]) -> Value {
    let half = PROFILE_FEATURES / 2;
    // Mean and sample standard deviation of feature k over a set.
    let stats = |v: &[&Vec<f32>], k: usize| -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|r| f64::from(r[k])).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|r| (f64::from(r[k]) - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        (mean, var.sqrt())
    };
    // Per ring k: (z, log spread); none where the reference has no spread (a ring no image
    // reaches, all invalid) or a set is too small.
    let ring = |k: usize| -> Option<(f64, f64)> {
        if x.len() < 2 || y.len() < 2 {
            return None;
        }
        let ((mx, sx), (my, sy)) = (stats(x, k), stats(y, k));
        (sy > 1e-6).then(|| ((mx - my) / sy, (sx.max(1e-6) / sy).ln()))
    };
    let bands = |offset: usize, pick: fn((f64, f64)) -> f64| -> Vec<Value> {
        (0..half)
            .step_by(GAP_BAND_PX)
            .map(|start| {
                let v: Vec<f64> = (start..(start + GAP_BAND_PX).min(half))
                    .filter_map(|k| ring(offset + k).map(pick))
                    .collect();
                if v.is_empty() {
                    Value::Null
                } else {
                    r4(v.iter().sum::<f64>() / v.len() as f64)
                }
            })
            .collect()
    };
    json!({
        "band_start_px": (0..half).step_by(GAP_BAND_PX).collect::<Vec<_>>(),
        "level_z": bands(0, |r| r.0),
        "level_log_spread": bands(0, |r| r.1),
        "contrast_z": bands(half, |r| r.0),
        "contrast_log_spread": bands(half, |r| r.1),
    })
}

pub(crate) fn run(a: &EvalDiffusionArgs) -> Result<()> {
    let started = Instant::now();
    if a.count < 2 {
        bail!("--count must be at least 2");
    }
    for (name, g) in [
        ("--guidance", a.guidance),
        ("--lattice-guidance", a.lattice_guidance),
    ] {
        if !(g.is_finite() && g >= 0.0) {
            bail!("{name} must be a finite number of at least 0 (1 = plain guidance), not {g}");
        }
    }
    let device = device(a.device)?;
    let sampler: SamplerKind = a.sampler.parse()?;
    let (mut generator, model_name, digest) = load_generator(a.model.as_deref(), &device)?;
    if let Some(m) = a.chi_harmonics {
        generator.header.chi_harmonics = (m > 0).then_some(m);
    }
    let (taggers, tagger_name, _) = shipped::load_tagger(None, &device, "--tagger")?;
    let (ensemble, realism_name, _) =
        shipped::load_realism(a.realism.as_deref(), &device, "--realism")?;
    let classifier = Classifier::new(taggers, ensemble)?;
    let config = crate::stages::generated_saxs();
    let grid = generator.header.layout;

    let real = match &a.real {
        Some(dir) => load_real(dir, a.count)?,
        None => engine(&config, a.seed, a.count)?,
    };
    let n = real.len();
    let floor = engine(&config, a.seed ^ FLOOR_STREAM, n)?;
    let fake_images = fakes(&config, a.seed ^ FAKES_STREAM, n)?;
    let training = engine(&config, a.train_seed, a.train_count.max(1))?;
    eprintln!(
        "references ready ({n} held-out, {} floor, {} fakes, {} training images) in {:.0} s",
        floor.len(),
        fake_images.len(),
        training.len(),
        started.elapsed().as_secs_f64()
    );

    // Samples: image i asks for the tags of held-out image i.
    let draw = Draw {
        generator: &generator,
        settings: SampleSettings {
            sampler,
            steps: a.steps,
            guidance: a.guidance,
            lattice_guidance: a.lattice_guidance,
        },
        config,
        seed: a.seed,
    };
    let wanted: Vec<Vec<String>> = real.iter().map(|r| r.tags.clone()).collect();
    let sampling = Instant::now();
    let bar = crate::training::progress_bar("sample", n, 0);
    let mut samples = Vec::with_capacity(n);
    for start in (0..n).step_by(8) {
        let end = (start + 8).min(n);
        let idx: Vec<u64> = (start as u64..end as u64).collect();
        samples.extend(draw.images(&idx, &wanted[start..end], &device)?);
        bar.inc((end - start) as u64);
    }
    bar.finish_and_clear();
    let sample_seconds = sampling.elapsed().as_secs_f64() / n as f64;

    let pass =
        |j: &[Judged]| j.iter().filter(|x| x.realistic).count() as f64 / j.len().max(1) as f64;
    fn emb(j: &[Judged]) -> Vec<&Vec<f32>> {
        j.iter().map(|x| &x.embedding).collect()
    }
    fn prof(j: &[Judged]) -> Vec<&Vec<f32>> {
        j.iter().map(|x| &x.profile).collect()
    }
    // The held-out images' own polar images on the model's grid (none for a --real image
    // without the engine's parameters), used for the lattice check, the band loss and the
    // design's ceiling below.
    let own_polars: Vec<Option<Vec<f32>>> = real
        .iter()
        .map(|r| r.params.as_ref().and_then(|p| sample_polar(p, &grid).ok()))
        .collect();
    let real_polars: Vec<(&[f32], &[String])> = own_polars
        .iter()
        .zip(&real)
        .filter_map(|(p, r)| Some((p.as_deref()?, r.tags.as_slice())))
        .collect();
    let (lattice_engine, lattice_engine_n) = lattice_share(&grid, &real_polars);
    // What the band of angular harmonics kept while sampling loses of engine images.
    let outside_band_rms = generator.header.chi_harmonics.map(|m| {
        let c = grid.chi_bins;
        let p = imaging::scattering::polar::chi_low_pass(c, m);
        let (mut sum, mut len) = (0.0f64, 0usize);
        for (polar, _) in &real_polars {
            for row in polar.chunks(c) {
                for j in 0..c {
                    let kept: f32 = (0..c).map(|k| p[j * c + k] * row[k]).sum();
                    sum += f64::from(kept - row[j]).powi(2);
                }
                len += c;
            }
        }
        (sum / len.max(1) as f64).sqrt()
    });
    let judge_all = |images: &[&imaging::Image<f32>]| judge(&classifier, images, &device);
    let refs = References {
        real: judge_all(&real.iter().map(|r| &r.counts).collect::<Vec<_>>())?,
        floor: judge_all(&floor.iter().map(|r| &r.counts).collect::<Vec<_>>())?,
        fakes: judge_all(&fake_images.iter().collect::<Vec<_>>())?,
        training: judge_all(&training.iter().map(|r| &r.counts).collect::<Vec<_>>())?,
    };
    let mut explained: Vec<f64> = refs.real.iter().map(|x| x.explained).collect();
    explained.sort_by(f64::total_cmp);
    let median_explained = explained[explained.len() / 2];
    let centred = |j: &[Judged]| {
        j.iter().filter(|x| x.explained >= median_explained).count() as f64 / j.len().max(1) as f64
    };
    let figures = |drawn: &[Drawn]| -> Result<serde_json::Map<String, Value>> {
        let counts: Vec<imaging::Image<f32>> = drawn.iter().map(|s| counts_f32(&s.image)).collect();
        let judged = judge_all(&counts.iter().collect::<Vec<_>>())?;
        let polars: Vec<(&[f32], &[String])> = drawn
            .iter()
            .map(|s| (s.polar.as_slice(), s.tags.as_slice()))
            .collect();
        let (lattice, lattice_n) = lattice_share(&grid, &polars);
        let bad_values = drawn
            .iter()
            .filter(|s| s.polar.iter().any(|v| !v.is_finite()))
            .count();
        let memorisation = median_nearest(&emb(&judged), &emb(&refs.training))
            / median_nearest(&emb(&refs.real), &emb(&refs.training));
        let kids = |space: fn(&[Judged]) -> Vec<&Vec<f32>>| {
            kid_json(&space(&judged), &space(&refs.real), a.kid_subsets)
        };
        let figures = json!({
            "tag_fidelity_map": mean_ap(&judged, &wanted).map_or(Value::Null, r4),
            "tag_fidelity_ap": ap_per_tag(&judged, &wanted),
            "realism_pass_rate": r4(pass(&judged)),
            "kid_samples_vs_engine": { "embedding": kids(emb), "radial_profile": kids(prof) },
            "profile_gap": profile_gap(&prof(&judged), &prof(&refs.real)),
            "centred_share": r4(centred(&judged)),
            "nan_or_negative_samples": bad_values,
            "lattice_match_share": lattice.map_or(Value::Null, r4),
            "lattice_samples": lattice_n,
            "memorisation": r4(memorisation),
        });
        Ok(figures.as_object().cloned().unwrap_or_default())
    };
    let mut diffusion = figures(&samples)?;
    // The design's ceiling: the held-out images' own polar images (the engine's, on this
    // model's grid) counted through the samples' instruments, as a perfect denoiser's samples
    // would be. What separates it from the engine's figures is the grid and the instruments
    // drawn from the tags; what separates the samples from it is the network.
    let engine_polars: Option<Vec<Vec<f32>>> = own_polars.into_iter().collect();
    let on_grid = match engine_polars {
        Some(polars) => {
            let idx: Vec<u64> = (0..n as u64).collect();
            let drawn = detect(&config, &grid, a.seed, &idx, polars, &wanted)?;
            let mut f = figures(&drawn)?;
            // Not a generator: its distance to the training images says nothing.
            f.remove("memorisation");
            Value::Object(f)
        }
        // A --real directory without the engine's parameters has no polar images.
        None => Value::Null,
    };
    // The baseline: decoded random latents of the linear-Gaussian prior, fitted to the
    // training stream, asked for the same tags and drawn through the same instruments.
    let prior = if a.prior_images > 0 {
        let fitting = Instant::now();
        let train =
            crate::diffusion_data::engine_samples(&config, &grid, a.train_seed, 0, a.prior_images)?;
        let images: Vec<&[f32]> = train.iter().map(|t| t.polar.as_slice()).collect();
        let tag_rows: Vec<&[f32]> = train.iter().map(|t| t.tags.as_slice()).collect();
        let prior = LinearGaussianPrior::fit(&images, &tag_rows, a.prior_rank, a.train_seed)
            .map_err(|e| anyhow::anyhow!("the baseline prior: {e}"))?;
        let polars = wanted
            .iter()
            .enumerate()
            .map(|(i, tags)| {
                let names: Vec<&str> = tags.iter().map(String::as_str).collect();
                let v = generator.tag_vector(&names)?;
                prior
                    .sample(&v, noise_seed(a.seed, i as u64))
                    .map_err(|e| anyhow::anyhow!("the baseline prior: {e}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let idx: Vec<u64> = (0..n as u64).collect();
        let drawn = detect(&config, &grid, a.seed, &idx, polars, &wanted)?;
        let mut f = figures(&drawn)?;
        f.insert(
            "model".into(),
            json!(format!(
                "linear-Gaussian prior (probabilistic PCA, rank {}, mean linear in the tags) fitted to {} images of engine batch {}",
                a.prior_rank, a.prior_images, a.train_seed
            )),
        );
        f.insert("fit_seconds".into(), r4(fitting.elapsed().as_secs_f64()));
        Value::Object(f)
    } else {
        Value::Null
    };
    let panel = if a.lattice_panel > 0 {
        lattice_panel(&draw, &classifier, a.lattice_panel, &device)?
    } else {
        Value::Null
    };
    let take = |m: &mut serde_json::Map<String, Value>, k: &str| m.remove(k).unwrap_or(Value::Null);
    let report = json!({
        "model": model_name,
        "model_sha256": digest,
        "tagger": tagger_name,
        "realism": realism_name,
        "samples": n,
        "sampler": sampler.name(),
        "steps": a.steps,
        "guidance": a.guidance,
        "chi_harmonics": generator.header.chi_harmonics,
        "lattice_guidance": generator.header.lattice_series.as_ref().map(|_| a.lattice_guidance),
        "engine_outside_band_rms": outside_band_rms.map_or(Value::Null, r4),
        "input_weight_norms": input_weight_norms(&generator)?,
        "tag_fidelity_map": take(&mut diffusion, "tag_fidelity_map"),
        "tag_fidelity_map_engine": mean_ap(&refs.real, &wanted).map_or(Value::Null, r4),
        "tag_fidelity_ap": take(&mut diffusion, "tag_fidelity_ap"),
        "tag_fidelity_ap_engine": ap_per_tag(&refs.real, &wanted),
        "realism_pass_rate": take(&mut diffusion, "realism_pass_rate"),
        "realism_pass_rate_engine": r4(pass(&refs.real)),
        "realism_pass_rate_fakes": r4(pass(&refs.fakes)),
        "kid_note": "unbiased KID ×1000, polynomial kernel of degree 3, subsets of up to 1000",
        "kid": {
            "embedding": {
                "samples_vs_engine": diffusion["kid_samples_vs_engine"]["embedding"].clone(),
                "engine_vs_engine": kid_json(&emb(&refs.floor), &emb(&refs.real), a.kid_subsets),
                "fakes_vs_engine": kid_json(&emb(&refs.fakes), &emb(&refs.real), a.kid_subsets),
            },
            "radial_profile": {
                "samples_vs_engine": diffusion["kid_samples_vs_engine"]["radial_profile"].clone(),
                "engine_vs_engine": kid_json(&prof(&refs.floor), &prof(&refs.real), a.kid_subsets),
                "fakes_vs_engine": kid_json(&prof(&refs.fakes), &prof(&refs.real), a.kid_subsets),
            },
        },
        "radial_profile_gap": {
            "note": "per 20-px band of the tagger grid's radius (0 = beam centre), for the level and the contrast of the radial profile, averaged over the band's rings: z = (mean − engine mean) / engine standard deviation; log_spread = ln(standard deviation / engine's)",
            "samples_vs_engine": take(&mut diffusion, "profile_gap"),
            "fakes_vs_engine": profile_gap(&prof(&refs.fakes), &prof(&refs.real)),
        },
        "physics": {
            "centred_share": take(&mut diffusion, "centred_share"),
            "centred_share_engine": r4(centred(&refs.floor)),
            "engine_median_explained": r4(median_explained),
            "nan_or_negative_samples": take(&mut diffusion, "nan_or_negative_samples"),
            "lattice_match_share": take(&mut diffusion, "lattice_match_share"),
            "lattice_samples": take(&mut diffusion, "lattice_samples"),
            "lattice_match_share_engine": lattice_engine.map_or(Value::Null, r4),
            "lattice_engine_images": lattice_engine_n,
        },
        "memorisation": take(&mut diffusion, "memorisation"),
        "engine_on_grid": on_grid,
        "engine_on_grid_note": "the held-out images' own polar images on this model's grid, counted through the instruments the samples get: what a perfect denoiser would score",
        "lattice_panel": panel,
        "vae_prior": prior,
        "vae_prior_note": "no learnt autoencoder in this design (the polar grid is an exact analytic encoder): the baseline is the linear VAE, probabilistic PCA on the same grid (docs/diffusion.md)",
        "sample_seconds_per_image": r4(sample_seconds),
        "seconds": r4(started.elapsed().as_secs_f64()),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The lattice panel: `per_lattice` samples of `draw` (its seed's panel stream) for each of
/// [`PANEL_LATTICES`] asked for with [`PANEL_TAGS`], and as many engine images of that stream
/// showing that lattice alone; per lattice, the tagger's AP over all the panel's images (so the
/// four lattices compete: it measures *which* lattice, not whether one) and its mean scores.
fn lattice_panel(
    draw: &Draw,
    classifier: &Classifier,
    per_lattice: usize,
    device: &Device,
) -> Result<Value> {
    let panel = Draw {
        seed: draw.seed ^ PANEL_STREAM,
        ..*draw
    };
    let mut asked: Vec<Vec<String>> = Vec::new();
    for lattice in PANEL_LATTICES {
        let tags: Vec<String> = std::iter::once(lattice)
            .chain(PANEL_TAGS)
            .map(str::to_string)
            .collect();
        asked.extend(std::iter::repeat_n(tags, per_lattice));
    }
    let bar = crate::training::progress_bar("lattice panel", asked.len(), 0);
    let mut counts = Vec::with_capacity(asked.len());
    for start in (0..asked.len()).step_by(8) {
        let end = (start + 8).min(asked.len());
        let idx: Vec<u64> = (start as u64..end as u64).collect();
        for d in panel.images(&idx, &asked[start..end], device)? {
            counts.push(counts_f32(&d.image));
        }
        bar.inc((end - start) as u64);
    }
    bar.finish_and_clear();
    let judged = judge(classifier, &counts.iter().collect::<Vec<_>>(), device)?;

    // Engine references: the first `per_lattice` images of the stream showing each lattice
    // alone, in their own tag sets.
    let mut engine_images: Vec<Vec<EngineImage>> =
        PANEL_LATTICES.iter().map(|_| Vec::new()).collect();
    let mut next = 0u64;
    while engine_images.iter().any(|e| e.len() < per_lattice) && next < PANEL_SEARCH {
        let batch = engine_range(&panel.config, panel.seed, next, 1024)?;
        next += 1024;
        for image in batch {
            let shown: Vec<usize> = (0..PANEL_LATTICES.len())
                .filter(|&k| image.tags.iter().any(|t| t == PANEL_LATTICES[k]))
                .collect();
            if let [k] = shown[..]
                && engine_images[k].len() < per_lattice
            {
                engine_images[k].push(image);
            }
        }
    }
    let engine_wanted: Vec<Vec<String>> = engine_images
        .iter()
        .zip(PANEL_LATTICES)
        .flat_map(|(e, l)| std::iter::repeat_n(vec![l.to_string()], e.len()))
        .collect();
    let engine_judged = judge(
        classifier,
        &engine_images
            .iter()
            .flatten()
            .map(|e| &e.counts)
            .collect::<Vec<_>>(),
        device,
    )?;

    let summary = |judged: &[Judged], wanted: &[Vec<String>]| {
        let index = |tag: &str| TRAINING_TAGS.iter().position(|t| *t == tag);
        let mut ap = serde_json::Map::new();
        let mut scores = serde_json::Map::new();
        let mut sum = 0.0;
        for asked in PANEL_LATTICES {
            let Some(t) = index(asked) else { continue };
            let s: Vec<f64> = judged
                .iter()
                .map(|j| f64::from(j.tag_probabilities[t]))
                .collect();
            let truth: Vec<bool> = wanted.iter().map(|w| w[0] == asked).collect();
            let a = average_precision(&s, &truth).unwrap_or(f64::NAN);
            sum += a;
            ap.insert(asked.into(), r4(a));
            let mine: Vec<&Judged> = judged
                .iter()
                .zip(wanted)
                .filter(|(_, w)| w[0] == asked)
                .map(|(j, _)| j)
                .collect();
            let row: serde_json::Map<String, Value> = PANEL_LATTICES
                .iter()
                .filter_map(|l| {
                    let k = index(l)?;
                    let mean = mine
                        .iter()
                        .map(|j| f64::from(j.tag_probabilities[k]))
                        .sum::<f64>()
                        / mine.len().max(1) as f64;
                    Some((l.to_string(), r4(mean)))
                })
                .collect();
            scores.insert(asked.into(), Value::Object(row));
        }
        json!({
            "images": judged.len(),
            "ap": ap,
            "mean_ap": r4(sum / PANEL_LATTICES.len() as f64),
            "mean_scores": scores,
        })
    };
    Ok(json!({
        "note": format!(
            "per lattice: samples asking for \"LATTICE, {}\" and engine images of the same stream showing that lattice alone; AP of the tagger's lattice score over all the images of the set; mean_scores[asked][tag]: the tagger's mean score",
            PANEL_TAGS.join(", ")
        ),
        "per_lattice": per_lattice,
        "samples": summary(&judged, &asked),
        "engine": summary(&engine_judged, &engine_wanted),
    }))
}

/// How strongly the network reads its condition planes (a plane added for a warm start begins
/// at zero): the L2 norm of the input convolution's weights per condition plane beside the
/// mean over the image's channels. `null` for a network without planes.
fn input_weight_norms(generator: &models::diffusion::generator::Generator) -> Result<Value> {
    let planes = generator.header.denoiser.condition_channels;
    if planes == 0 {
        return Ok(Value::Null);
    }
    let norms = generator
        .denoiser
        .input_weight_norms()
        .map_err(|e| anyhow::anyhow!("reading the network's input weights: {e}"))?;
    let images = norms.len().saturating_sub(planes);
    let image_mean = norms[..images].iter().sum::<f32>() / images.max(1) as f32;
    Ok(json!({
        "image_channels_mean": r4(f64::from(image_mean)),
        "condition_planes": norms[images..].iter().map(|&n| r4(f64::from(n))).collect::<Vec<_>>(),
        "note": "L2 norm of the input convolution's weights per input channel; planes in the order added (the lattice series last)",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_gap_finds_the_band_that_departs() {
        // Reference: level and contrast vary as i mod 5 over 50 images (sample variance
        // 2 × 50 / 49); x is the same set with the level raised by one spread in rings 20..40.
        let y: Vec<Vec<f32>> = (0..50)
            .map(|i| (0..PROFILE_FEATURES).map(|_| (i % 5) as f32).collect())
            .collect();
        let sd = (2.0f32 * 50.0 / 49.0).sqrt();
        let x: Vec<Vec<f32>> = y
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r[20..40].iter_mut().for_each(|v| *v += sd);
                r
            })
            .collect();
        let g = profile_gap(&x.iter().collect::<Vec<_>>(), &y.iter().collect::<Vec<_>>());
        let level = g["level_z"].as_array().expect("bands");
        assert_eq!(level.len(), 8);
        assert!((level[1].as_f64().expect("z") - 1.0).abs() < 1e-3, "{g}");
        for (b, v) in level.iter().enumerate().filter(|(b, _)| *b != 1) {
            assert!(v.as_f64().expect("z").abs() < 1e-9, "band {b}: {g}");
        }
        assert!(
            g["contrast_z"]
                .as_array()
                .expect("bands")
                .iter()
                .all(|v| v.as_f64() == Some(0.0))
        );
        assert_eq!(g["band_start_px"][7], 140);
        // A shift leaves the spread alone; doubling every value doubles it everywhere.
        let spread = |g: &Value, k: &str| -> Vec<f64> {
            g[k].as_array()
                .expect("bands")
                .iter()
                .map(|v| v.as_f64().expect("number"))
                .collect()
        };
        assert!(
            spread(&g, "level_log_spread")
                .iter()
                .all(|v| v.abs() < 1e-4),
            "{g}"
        );
        let doubled: Vec<Vec<f32>> = y
            .iter()
            .map(|r| r.iter().map(|v| 2.0 * v).collect())
            .collect();
        let g = profile_gap(
            &doubled.iter().collect::<Vec<_>>(),
            &y.iter().collect::<Vec<_>>(),
        );
        for k in ["level_log_spread", "contrast_log_spread"] {
            assert!(
                spread(&g, k).iter().all(|v| (v - 2f64.ln()).abs() < 1e-3),
                "{k}: {g}"
            );
        }
    }

    #[test]
    fn engine_lattices_match_their_own_ratios_more_often_than_others() {
        // Engine images with a lattice tag, checked against their lattice and against another.
        let config = crate::stages::generated_saxs();
        let grid = PolarGrid::reference();
        let (mut own, mut other, mut n) = (0, 0, 0);
        for i in 0..400 {
            let s = synth::dataset::generate_saxs(&config, 11, i).expect("engine");
            let Some(kind) = LatticeKind::ALL
                .into_iter()
                .find(|k| s.truth.tags.iter().any(|t| t == k.tag()))
            else {
                continue;
            };
            if kind == LatticeKind::Lamellar {
                continue;
            }
            let polar = sample_polar(&s.params, &grid).expect("polar");
            let wrong = if kind == LatticeKind::Bcc {
                LatticeKind::Hexagonal
            } else {
                LatticeKind::Bcc
            };
            n += 1;
            own += usize::from(lattice_matches(&grid, &polar, kind));
            other += usize::from(lattice_matches(&grid, &polar, wrong));
        }
        assert!(n >= 20, "{n} lattice images");
        let (own, other) = (own as f64 / n as f64, other as f64 / n as f64);
        // Measured: 0.60 against 0.02 on these 47 images (faint lattices show too few peaks).
        assert!(
            own >= 0.5 && own > other + 0.3,
            "own {own}, other {other} of {n}"
        );
    }
}
