//! `synthscope sample diffusion`: detector images from the scattering generator for a tag set,
//! written like `generate saxs` writes engine images (16-bit PNGs and `labels.jsonl`), each
//! line recording what was asked for (tags, seed, sampler, steps, guidance, model).
//! `--keep-realistic` keeps only the samples the realism ensemble calls realistic, drawing
//! further seeds until `--count` are kept.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use imaging::scattering::{FourierBessel, prepare};
use models::classify::Classifier;
use models::diffusion::generator::{
    DEFAULT_LATTICE_GUIDANCE, Generator, SampleRecord, SampleSettings, noise_seed,
};
use models::diffusion::sampler::SamplerKind;
use rayon::prelude::*;
use synth::scattering::{SaxsImage, generated_image};

use crate::device::{DeviceChoice, block_on, device};
use crate::shipped;
use crate::training::progress_bar;

/// Give up on `--keep-realistic` after this many tries per kept image.
const MAX_TRIES_PER_IMAGE: usize = 50;

#[derive(Debug, Args)]
pub(crate) struct SampleDiffusionArgs {
    /// Tags the images should show, comma-separated (any of the 15 training tags; none: an
    /// unconditional sample), for example "ring,halo".
    #[arg(long, default_value = "")]
    tags: String,
    /// Instead of --tags: image i asks for the tags of engine image i of this batch (the
    /// engine's own mix of tag sets, as `eval diffusion` asks for them).
    #[arg(long, conflicts_with = "tags")]
    tags_of_batch: Option<u64>,
    /// Images to write.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    count: u64,
    /// Denoising steps (1–1000; 20 suits dpm++).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Classifier-free guidance scale (1: the conditional model; larger follows the tags more).
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
    /// the plane read by both branches; larger follows the requested lattice's ring positions
    /// more closely).
    #[arg(long, default_value_t = DEFAULT_LATTICE_GUIDANCE)]
    lattice_guidance: f32,
    /// Batch seed: image i depends only on (seed, i) and the settings.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Diffusion weights written by `synthscope train diffusion` (default: the shipped ones).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Keep only samples the realism ensemble calls realistic (rejection sampling).
    #[arg(long)]
    keep_realistic: bool,
    /// Realism weights for --keep-realistic (default: the shipped ensemble).
    #[arg(long)]
    realism: Option<PathBuf>,
    /// Also write each sample's polar image before the instrument (`sample_NNNNNN_polar.png`:
    /// 16-bit, rows q from 0 to the grid's q_max, columns χ; 0 ↔ value −1, 65 535 ↔ +1).
    #[arg(long)]
    write_polar: bool,
    /// Side of the square detector in pixels.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Images sampled together.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

/// The tag names of a comma-separated list (blank entries dropped).
pub(crate) fn parse_tags(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a batch of detector images is drawn with.
pub(crate) struct Draw<'a> {
    pub generator: &'a Generator,
    pub settings: SampleSettings,
    pub config: synth::scattering::SaxsConfig,
    pub seed: u64,
}

/// One generated detector image.
pub(crate) struct Drawn {
    pub index: u64,
    /// Requested tags.
    pub tags: Vec<String>,
    pub beam_px: (f64, f64),
    pub image: SaxsImage,
    /// The sample's polar image, `[q_bins, chi_bins]` in the grid's value scale.
    pub polar: Vec<f32>,
}

impl Draw<'_> {
    /// Images `indices` of the batch, image i with `tags[i]`: sampled together, then counted
    /// through their instruments in parallel.
    pub(crate) fn images(
        &self,
        indices: &[u64],
        tags: &[Vec<String>],
        device: &Device,
    ) -> Result<Vec<Drawn>> {
        let vectors = tags
            .iter()
            .map(|t| {
                let names: Vec<&str> = t.iter().map(String::as_str).collect();
                self.generator.tag_vector(&names)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let seeds: Vec<u64> = indices.iter().map(|&i| noise_seed(self.seed, i)).collect();
        let grid = self.generator.header.layout;
        let series = self.generator.series_planes(tags, self.seed, indices);
        let polars = block_on(self.generator.sample(
            &self.settings,
            &vectors,
            &series,
            &seeds,
            device,
            |_, _| true,
        ))?
        .context("sampling stopped early")?;
        detect(&self.config, &grid, self.seed, indices, polars, tags)
    }
}

/// Polar images `polars` (image i of batch `seed` is `indices[i]`, asked for `tags[i]`)
/// counted through the engine's instrument for their tags, in parallel.
pub(crate) fn detect(
    config: &synth::scattering::SaxsConfig,
    grid: &imaging::scattering::polar::PolarGrid,
    seed: u64,
    indices: &[u64],
    polars: Vec<Vec<f32>>,
    tags: &[Vec<String>],
) -> Result<Vec<Drawn>> {
    indices
        .par_iter()
        .zip(polars)
        .zip(tags)
        .map(|((&index, polar), tags)| {
            let names: Vec<&str> = tags.iter().map(String::as_str).collect();
            let (instrument, image) = generated_image(config, grid, &polar, &names, seed, index)?;
            let g = instrument.geometry;
            Ok(Drawn {
                index,
                tags: tags.clone(),
                beam_px: (g.beam_x_px, g.beam_y_px),
                image,
                polar,
            })
        })
        .collect()
}

/// The generator from `path` or the shipped weights: the model, its name and SHA-256.
pub(crate) fn load_generator(
    path: Option<&Path>,
    device: &Device,
) -> Result<(Generator, String, String)> {
    let (bytes, name, digest) =
        shipped::read_weights(path, shipped::DIFFUSION.as_ref(), "diffusion", "--model")?;
    let g = Generator::from_bytes(&bytes, device).with_context(|| format!("cannot load {name}"))?;
    Ok((g, name, digest))
}

/// The realism ensemble's verdict on each image (beam centres estimated, as for real users).
pub(crate) fn realism_verdicts(
    classifier: &Classifier,
    images: &[&SaxsImage],
    device: &Device,
) -> Result<Vec<(bool, f64)>> {
    let basis = FourierBessel::reference(128.0);
    let prepared = images
        .par_iter()
        .map(|im| Ok(prepare(&im.counts.map(|c| c as f32), None, None, &basis)?))
        .collect::<Result<Vec<_>>>()?;
    let inputs: Vec<_> = prepared.iter().map(crate::classify::inputs).collect();
    Ok(block_on(classifier.classify(&inputs, device))?
        .into_iter()
        .map(|c| (c.realistic, c.realism_score))
        .collect())
}

pub(crate) fn run(a: &SampleDiffusionArgs) -> Result<()> {
    let started = Instant::now();
    let device = device(a.device)?;
    let sampler: SamplerKind = a.sampler.parse()?;
    let settings = SampleSettings {
        sampler,
        steps: a.steps,
        guidance: a.guidance,
        lattice_guidance: a.lattice_guidance,
    };
    // Settings and tags are checked before anything is loaded or written.
    if !(1..=models::diffusion::sampler::MAX_STEPS).contains(&a.steps) {
        bail!(
            "--steps must be between 1 and {}, not {}",
            models::diffusion::sampler::MAX_STEPS,
            a.steps
        );
    }
    if !a.lattice_guidance.is_finite() || a.lattice_guidance < 0.0 {
        bail!(
            "--lattice-guidance must be a finite number of at least 0 (1 = plain guidance), not {}",
            a.lattice_guidance
        );
    }
    if !a.guidance.is_finite() || a.guidance < 0.0 {
        bail!(
            "--guidance must be a finite number of at least 0 (1 = the conditional model), not {}",
            a.guidance
        );
    }
    let (mut generator, model_name, digest) = load_generator(a.model.as_deref(), &device)?;
    if let Some(m) = a.chi_harmonics {
        generator.header.chi_harmonics = (m > 0).then_some(m);
    }
    let tags = parse_tags(&a.tags);
    let names: Vec<&str> = tags.iter().map(String::as_str).collect();
    generator.tag_vector(&names)?;
    let config = synth::scattering::SaxsConfig {
        size_px: a.size,
        ..synth::scattering::SaxsConfig::default()
    };
    config.validate()?;
    let classifier = if a.keep_realistic {
        let (taggers, _, _) = shipped::load_tagger(None, &device, "--tagger")?;
        let (ensemble, name, _) =
            shipped::load_realism(a.realism.as_deref(), &device, "--realism")?;
        eprintln!("keeping only samples {name} calls realistic");
        Some(Classifier::new(taggers, ensemble)?)
    } else {
        None
    };
    fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let partial = a.out.join("labels.jsonl.partial");
    let mut labels = BufWriter::new(
        fs::File::create(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?,
    );
    let draw = Draw {
        generator: &generator,
        settings,
        config,
        seed: a.seed,
    };
    let count = a.count as usize;
    let batch = a.batch.max(1);
    let bar = progress_bar("sample", count, 0);
    let (mut kept, mut tried) = (0usize, 0u64);
    while kept < count {
        if tried as usize >= count * MAX_TRIES_PER_IMAGE {
            bail!(
                "--keep-realistic: only {kept} of {tried} samples were called realistic; \
                 giving up (try other tags, a higher --guidance or more --steps)"
            );
        }
        let n = if classifier.is_some() {
            batch
        } else {
            batch.min(count - kept)
        };
        let indices: Vec<u64> = (tried..tried + n as u64).collect();
        tried += n as u64;
        let wanted = match a.tags_of_batch {
            Some(batch) => indices
                .par_iter()
                .map(|&i| {
                    Ok(synth::dataset::generate_saxs(&draw.config, batch, i)?
                        .truth
                        .tags)
                })
                .collect::<Result<Vec<_>>>()?,
            None => vec![tags.clone(); n],
        };
        let drawn = draw.images(&indices, &wanted, &device)?;
        let verdicts = match &classifier {
            Some(c) => realism_verdicts(
                c,
                &drawn.iter().map(|d| &d.image).collect::<Vec<_>>(),
                &device,
            )?
            .into_iter()
            .map(|(ok, s)| (ok, Some(s)))
            .collect(),
            None => vec![(true, None); drawn.len()],
        };
        for (d, (ok, score)) in drawn.iter().zip(verdicts) {
            if !ok || kept >= count {
                continue;
            }
            let name = format!("sample_{kept:06}.png");
            let counts = &d.image.counts;
            let bytes =
                imaging::codec::encode_png_u16(&counts.map(|c| c.min(u32::from(u16::MAX)) as u16))?;
            fs::write(a.out.join(&name), bytes)
                .with_context(|| format!("cannot write {}", a.out.join(&name).display()))?;
            if a.write_polar {
                let l = &generator.header.layout;
                let to_u16 = |v: f32| ((v.clamp(-1.0, 1.0) + 1.0) * 0.5 * 65535.0).round() as u16;
                let polar = imaging::Image::from_vec(
                    l.chi_bins,
                    l.q_bins,
                    d.polar.iter().map(|&v| to_u16(v)).collect(),
                )?;
                let path = a.out.join(format!("sample_{kept:06}_polar.png"));
                fs::write(&path, imaging::codec::encode_png_u16(&polar)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            let mut record = SampleRecord::new(
                name,
                (&model_name, &digest),
                (counts.width(), counts.height()),
                d.tags.clone(),
                (a.seed, d.index),
                &settings,
                d.beam_px,
            )
            .with_lattices(
                generator.requested_lattices(&d.tags, a.seed, d.index),
                &settings,
            );
            record.realism_score = score;
            let line = serde_json::to_string(&record)?;
            writeln!(labels, "{line}")
                .with_context(|| format!("cannot write {}", partial.display()))?;
            kept += 1;
            bar.inc(1);
        }
    }
    labels
        .flush()
        .with_context(|| format!("cannot write {}", partial.display()))?;
    drop(labels);
    let final_path = a.out.join("labels.jsonl");
    fs::rename(&partial, &final_path)
        .with_context(|| format!("cannot create {}", final_path.display()))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let tries = if classifier.is_some() {
        format!(" ({kept} of {tried} samples called realistic)")
    } else {
        String::new()
    };
    eprintln!(
        "wrote {kept} samples of {model_name} ({}, {} steps, guidance {}) and labels.jsonl to {} in {secs:.1} s{tries}",
        sampler.name(),
        a.steps,
        a.guidance,
        a.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::diffusion::sampler::Denoise;
    use models::diffusion::schedule::{NoiseLevel, noise_field};

    /// Diagnostic (run by hand): x₀ error of a trained model at several noise levels, and the
    /// χ-roughness of its samples against the engine's.
    #[test]
    #[ignore]
    fn diagnose_a_trained_model() {
        let path = std::env::var("DIFFUSION_MODEL").expect("DIFFUSION_MODEL=file");
        let device = Device::flex();
        let g = Generator::from_bytes(&std::fs::read(path).expect("read"), &device).expect("load");
        let grid = g.header.layout;
        let config = crate::stages::generated_saxs();
        let samples =
            crate::diffusion_data::engine_samples(&config, &grid, 7, 0, 8).expect("engine");
        let l = g.header.layout;
        let rough = |p: &[f32]| -> f64 {
            p.chunks(l.chi_bins)
                .map(|r| {
                    r.windows(2)
                        .map(|w| f64::from((w[1] - w[0]).abs()))
                        .sum::<f64>()
                        / l.chi_bins as f64
                })
                .sum::<f64>()
                / l.q_bins as f64
        };
        let polars: Vec<&[f32]> = samples.iter().map(|s| s.polar.as_slice()).collect();
        let tags: Vec<Vec<f32>> = samples.iter().map(|s| s.tags.to_vec()).collect();
        let x0 = models::diffusion::generator::polar_tensor(&polars, &l, &device);
        let series: Vec<Vec<f32>> = match g.header.lattice_series {
            Some(ref series) => samples.iter().map(|s| s.series_plane(series, &l)).collect(),
            None => Vec::new(),
        };
        let conditional = SampleSettings {
            guidance: 1.0,
            lattice_guidance: 1.0,
            ..SampleSettings::default()
        };
        let model = g
            .guided(&tags, &series, &conditional, &device)
            .expect("guided");
        for t in [0.05f32, 0.1, 0.3, 0.5, 0.7, 0.9] {
            let lv = NoiseLevel::at(t);
            let noise: Vec<f32> = (0..8).flat_map(|i| noise_field(l.len(), 99 + i)).collect();
            let noise = burn::tensor::Tensor::<4>::from_data(
                burn::tensor::TensorData::new(noise, [8, l.chi_bins, l.q_bins, 1]),
                &device,
            );
            let xt = x0.clone().mul_scalar(lv.alpha) + noise.mul_scalar(lv.sigma);
            let out = model.predict(xt.clone(), t);
            let (x0_hat, _) = model.prediction().split(xt, out, lv);
            let err = (x0_hat.clone() - x0.clone())
                .powi_scalar(2)
                .mean()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")[0]
                .sqrt();
            let hat = block_on(g.polar_images(x0_hat)).expect("read");
            let r: f64 = hat.iter().map(|p| rough(p)).sum::<f64>() / 8.0;
            eprintln!("t {t}: x0 RMSE {err:.4}, roughness of the estimate {r:.4}");
        }
        let r_engine: f64 = polars.iter().map(|p| rough(p)).sum::<f64>() / 8.0;
        for (kind, steps) in [(SamplerKind::Ddim, 50), (SamplerKind::DpmSolver2M, 20)] {
            let s = SampleSettings {
                sampler: kind,
                steps,
                guidance: 1.0,
                lattice_guidance: 1.0,
            };
            let seeds: Vec<u64> = (0..8).collect();
            let out = block_on(g.sample(&s, &tags, &series, &seeds, &device, |_, _| true))
                .expect("sample")
                .expect("done");
            let r: f64 = out.iter().map(|p| rough(p)).sum::<f64>() / 8.0;
            eprintln!(
                "{} {steps}: sample roughness {r:.4} (engine {r_engine:.4})",
                kind.name()
            );
        }
    }
}
