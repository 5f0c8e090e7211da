//! `synthscope bench generate`: generation plus PNG encoding throughput, all cores, in memory.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use imaging::codec::FileFormat;
use rayon::prelude::*;
use synth::dataset::{self, Record};
use synth::scattering::SaxsConfig;
use synth::tem::TemConfig;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Seconds to spend on each case (at least 2 images are always made).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

/// Runs `make(i)` on all cores until `seconds` have passed; returns (images, elapsed s).
fn measure(seconds: f64, make: impl Fn(u64) -> Result<usize> + Sync) -> Result<(u64, f64)> {
    let threads = rayon::current_num_threads() as u64;
    let started = Instant::now();
    let mut done = 0u64;
    let mut bytes = 0usize;
    while done < 2 || started.elapsed().as_secs_f64() < seconds {
        bytes += (done..done + threads)
            .into_par_iter()
            .map(&make)
            .collect::<Result<Vec<_>>>()?
            .iter()
            .sum::<usize>();
        done += threads;
    }
    std::hint::black_box(bytes);
    Ok((done, started.elapsed().as_secs_f64()))
}

pub(crate) fn generate(a: &BenchArgs) -> Result<()> {
    println!(
        "generation + PNG encoding, {} threads, in memory",
        rayon::current_num_threads()
    );
    println!("{:<22} {:>10} {:>12}", "case", "images", "images/s");
    // Each case makes the record of image i: generation and PNG encoding, as the CLI writes it.
    type Make = Box<dyn Fn(u64) -> Result<Record> + Sync>;
    let mut cases: Vec<(String, Make)> = Vec::new();
    for size in [256usize, 1000, 2048] {
        let cfg = SaxsConfig {
            size_px: size,
            ..SaxsConfig::default()
        };
        let make = move |i| {
            Ok(dataset::saxs_record(
                &dataset::generate_saxs(&cfg, 1, i)?,
                1,
                i,
                FileFormat::Png,
            )?)
        };
        cases.push((format!("saxs {size}x{size}"), Box::new(make)));
    }
    for (w, h) in [(496usize, 96usize), (1024, 1024)] {
        let cfg = TemConfig {
            width_px: w,
            height_px: h,
            ..TemConfig::default()
        };
        let make = move |i| {
            Ok(dataset::tem_record(
                &dataset::generate_tem(&cfg, 1, i)?,
                1,
                i,
                FileFormat::Png,
            )?)
        };
        cases.push((format!("tem {h}x{w} (HxW)"), Box::new(make)));
    }
    for (name, make) in cases {
        let (n, secs) = measure(a.seconds, |i| {
            Ok(make(i)?.files.iter().map(|f| f.bytes.len()).sum())
        })?;
        println!("{name:<22} {n:>10} {:>12.1}", n as f64 / secs);
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct BenchGrainArgs {
    /// Runs per image size (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Weights (default: the shipped weights).
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = crate::device::DeviceChoice::Cpu)]
    device: crate::device::DeviceChoice,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// `synthscope bench grain`: latency of each stage of the grain pipeline on one image, for the
/// paper's 96 × 496 micrographs and 1024 × 1024 ones.
pub(crate) fn grain(a: &BenchGrainArgs) -> Result<()> {
    use models::grain::{GrainInput, GrainRun};
    let device = crate::device::device(a.device)?;
    let (model, name, _) = crate::shipped::load_grain(a.model.as_deref(), &device)?;
    println!(
        "grain pipeline latency, {name}, {:?} device, median of {} runs (ms)",
        a.device,
        a.runs.max(1)
    );
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8} {:>9}",
        "image", "edges", "net1", "net2", "iters", "net2/iter", "grains", "total"
    );
    for (w, h) in [(496usize, 96usize), (1024, 1024)] {
        let cfg = TemConfig {
            width_px: w,
            height_px: h,
            ..TemConfig::default()
        };
        let image = dataset::generate_tem(&cfg, 77, 0)?
            .image
            .image
            .map(f32::from);
        let mut stages: [Vec<f64>; 6] = Default::default();
        // One untimed warm-up run (allocator, thread pool).
        for run in 0..=a.runs.max(1) {
            let t = Instant::now();
            let (_, _, planes) = imaging::edges::grain_planes(&image);
            let edges = t.elapsed().as_secs_f64();
            let input = GrainInput::new(&planes, w, h, model.multiple_px())?;
            let mut g = GrainRun::new(&model, input, model.header.refine, &device);
            let t = Instant::now();
            crate::device::block_on(g.net1())?;
            let net1 = t.elapsed().as_secs_f64();
            let t = Instant::now();
            while g.refining() {
                crate::device::block_on(g.refine_step())?;
            }
            let mask = crate::device::block_on(g.mask())?;
            let net2 = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let labels =
                imaging::grains::label_grains(&mask, w, h, crate::eval_grain::MIN_GRAIN_PX);
            std::hint::black_box(imaging::grains::grain_stats(&mask, &labels, None));
            let grains = t.elapsed().as_secs_f64();
            if run > 0 {
                let iters = g.iterations.max(1) as f64;
                for (s, v) in
                    stages
                        .iter_mut()
                        .zip([edges, net1, net2, iters, net2 / iters, grains])
                {
                    s.push(v);
                }
            }
        }
        let m: Vec<f64> = stages.into_iter().map(median).collect();
        let ms = |s: f64| s * 1e3;
        println!(
            "{:<12} {:>8.1} {:>8.1} {:>8.1} {:>8.0} {:>10.1} {:>8.1} {:>9.1}",
            format!("{h}x{w}"),
            ms(m[0]),
            ms(m[1]),
            ms(m[2]),
            m[3],
            ms(m[4]),
            ms(m[5]),
            ms(m[0] + m[1] + m[2] + m[5])
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct BenchTaggerArgs {
    /// Images per detector size.
    #[arg(long, default_value_t = 64)]
    images: usize,
    /// Tagger weights (default: the shipped ones; speed does not depend on the weights).
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// Realism weights (default: the shipped ones).
    #[arg(long)]
    realism: Option<std::path::PathBuf>,
}

/// Classification throughput as `synthscope classify` runs it, without file decoding:
/// preparation on all cores (mask, beam-centre search, resampling to 256², log scale, 880
/// Fourier–Bessel coefficients), then the joint tagger and the realism ensemble in batches of
/// 32. Also the joint tagger alone in the same batches: "tagging" is preparation and tagger,
/// "classify" preparation and both.
pub(crate) fn tagger(a: &BenchTaggerArgs) -> Result<()> {
    use imaging::scattering::{FourierBessel, Prepared, prepare};
    use models::classify::{Classifier, Inputs};
    let device = burn::tensor::Device::flex();
    let (taggers, _, _) = crate::shipped::load_tagger(a.model.as_deref(), &device, "--model")?;
    let (ensemble, _, _) =
        crate::shipped::load_realism(a.realism.as_deref(), &device, "--realism")?;
    let classifier = Classifier::new(taggers, ensemble)?;
    let basis = FourierBessel::reference(128.0);
    println!(
        "classification throughput, {} threads, {} images per size (images/s; ms per image)",
        rayon::current_num_threads(),
        a.images.max(1)
    );
    println!(
        "{:<22} {:>16} {:>16} {:>16} {:>16} {:>16}",
        "detector", "prepare", "tagger", "tagger+realism", "tagging", "classify"
    );
    for size in [256usize, 1000] {
        let config = SaxsConfig {
            size_px: size,
            ..SaxsConfig::default()
        };
        // Counts and the true beam centre (for the "given" rows, as `classify --beam`).
        let raw: Vec<(imaging::Image<f32>, (f64, f64))> = (0..a.images.max(1) as u64)
            .into_par_iter()
            .map(|i| {
                let s = dataset::generate_saxs(&config, 5, i)?;
                let g = s.params.geometry;
                Ok((s.image.counts.map(|c| c as f32), (g.beam_x_px, g.beam_y_px)))
            })
            .collect::<Result<_>>()?;
        for given in [false, true] {
            let t = Instant::now();
            let prepared: Vec<Prepared> = raw
                .par_iter()
                .map(|(img, beam)| Ok(prepare(img, None, given.then_some(*beam), &basis)?))
                .collect::<Result<_>>()?;
            let prepare_s = t.elapsed().as_secs_f64();
            let inputs: Vec<Inputs> = prepared.iter().map(crate::classify::inputs).collect();
            let t = Instant::now();
            for chunk in inputs.chunks(32) {
                std::hint::black_box(crate::device::block_on(classifier.tag(chunk, &device))?);
            }
            let tagger_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            for chunk in inputs.chunks(32) {
                std::hint::black_box(crate::device::block_on(
                    classifier.classify(chunk, &device),
                )?);
            }
            let net_s = t.elapsed().as_secs_f64();
            let n = prepared.len() as f64;
            let cell = |s: f64| format!("{:.1} ({:.1} ms)", n / s, 1e3 * s / n);
            println!(
                "{:<22} {:>16} {:>16} {:>16} {:>16} {:>16}",
                format!(
                    "{size}x{size}, beam {}",
                    if given { "given" } else { "found" }
                ),
                cell(prepare_s),
                cell(tagger_s),
                cell(net_s),
                cell(prepare_s + tagger_s),
                cell(prepare_s + net_s)
            );
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct BenchLatentArgs {
    /// Images to embed and project (engine images and fakes made from them, mix 4:6).
    #[arg(long, default_value_t = 1000)]
    images: usize,
    /// Realism weights (default: the shipped ones).
    #[arg(long)]
    realism: Option<std::path::PathBuf>,
    /// Also write the embeddings, one CSV row per image (`realistic`, then the features), for
    /// a comparison with umap-learn (`tools/compare_umap.py`).
    #[arg(long)]
    dump: Option<std::path::PathBuf>,
}

/// The Dataset page's latent-space view natively: the realism ensemble's embeddings of
/// `--images` engine images (256², estimated beam centres, fakes at 4:6), then UMAP
/// (n_neighbors 5, min_dist 0.5). Prints the time of each step, the trustworthiness of the
/// projection (k = 5) and how often a point's nearest neighbour has its realistic/fake class,
/// in the embedding and in the projection.
pub(crate) fn latent(a: &BenchLatentArgs) -> Result<()> {
    use burn::tensor::{Tensor, TensorData};
    let device = burn::tensor::Device::flex();
    let (ensemble, name, _) =
        crate::shipped::load_realism(a.realism.as_deref(), &device, "--realism")?;
    let config = SaxsConfig {
        size_px: 256,
        ..SaxsConfig::default()
    };
    let t = Instant::now();
    let samples = crate::realism_data::generate(
        &config,
        11,
        a.images.max(3),
        crate::realism_data::FakeMix {
            mix: crate::realism_data::Mix::default(),
            not_scattering: 0.0,
        },
        crate::saxs_data::Beam::Estimated,
    )?;
    let generate_s = t.elapsed().as_secs_f64();
    let side = models::realism::INPUT_SIDE_PX;
    let rings = models::tagger::RING_FEATURES;
    let t = Instant::now();
    let mut values = Vec::new();
    for chunk in samples.chunks(32) {
        let b = chunk.len();
        let x: Vec<f32> = chunk.iter().flat_map(|s| s.image.iter().copied()).collect();
        let r: Vec<f32> = chunk.iter().flat_map(|s| s.rings.iter().copied()).collect();
        let x = Tensor::<4>::from_data(TensorData::new(x, [b, 1, side, side]), &device);
        let r = Tensor::<2>::from_data(TensorData::new(r, [b, rings]), &device);
        let e = ensemble.embedding(x, r).into_data();
        values.extend(
            e.try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading the embedding: {e:?}"))?,
        );
    }
    let embed_s = t.elapsed().as_secs_f64();
    let n = samples.len();
    let dim = values.len() / n;
    let t = Instant::now();
    let xy = labels::umap::umap(&values, dim, &labels::umap::UmapConfig::default())?;
    let umap_s = t.elapsed().as_secs_f64();
    let truth: Vec<bool> = samples.iter().map(|s| s.realistic).collect();
    let trust = labels::umap::trustworthiness(&values, dim, &xy, 5);
    let flat: Vec<f32> = xy.iter().flatten().copied().collect();
    println!("latent-space view of {n} images ({name}, {dim} features)");
    println!("generate + prepare {generate_s:.1} s, embed {embed_s:.1} s, UMAP {umap_s:.2} s");
    println!(
        "trustworthiness (k = 5) {trust:.3}; nearest neighbour of the same class: embedding {:.3}, projection {:.3}",
        same_class_neighbour(&values, dim, &truth),
        same_class_neighbour(&flat, 2, &truth)
    );
    if let Some(path) = &a.dump {
        use std::fmt::Write as _;
        let mut text = String::new();
        for (row, &real) in values.chunks_exact(dim).zip(&truth) {
            let _ = write!(text, "{}", u8::from(real));
            for v in row {
                let _ = write!(text, ",{v}");
            }
            text.push('\n');
        }
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        println!("embeddings written to {}", path.display());
    }
    Ok(())
}

/// The fraction of points whose nearest other point has the same class.
fn same_class_neighbour(points: &[f32], dim: usize, class: &[bool]) -> f64 {
    let rows: Vec<&[f32]> = points.chunks_exact(dim).collect();
    let same = (0..rows.len())
        .into_par_iter()
        .filter(|&i| {
            let nearest = (0..rows.len()).filter(|&j| j != i).min_by(|&j, &k| {
                let d = |m: usize| -> f32 {
                    rows[i]
                        .iter()
                        .zip(rows[m])
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum()
                };
                d(j).total_cmp(&d(k))
            });
            nearest.is_some_and(|j| class[j] == class[i])
        })
        .count();
    same as f64 / rows.len().max(1) as f64
}

#[derive(Debug, Args)]
pub(crate) struct BenchDiffusionArgs {
    /// Runs per case (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Diffusion weights (default: the shipped ones).
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = crate::device::DeviceChoice::Cpu)]
    device: crate::device::DeviceChoice,
    /// Batch of the timed training step (as `train diffusion --batch`; 0: no training step).
    #[arg(long, default_value_t = 16)]
    train_batch: usize,
    /// Time only the training step.
    #[arg(long)]
    train_only: bool,
}

/// `synthscope bench diffusion`: seconds to sample one 256 × 256 detector image (network steps
/// with guidance, then the instrument), for the samplers and step counts the app offers.
pub(crate) fn diffusion(a: &BenchDiffusionArgs) -> Result<()> {
    use models::diffusion::generator::SampleSettings;
    use models::diffusion::sampler::SamplerKind;
    let device = crate::device::device(a.device)?;
    let (generator, name, _) =
        crate::sample_diffusion::load_generator(a.model.as_deref(), &device)?;
    let draw = |settings: SampleSettings| crate::sample_diffusion::Draw {
        generator: &generator,
        settings,
        config: crate::stages::generated_saxs(),
        seed: 1,
    };
    if a.train_batch > 0 {
        // The same weights on the autodiff device: one training step as `train diffusion`.
        let train_device = device.clone().autodiff();
        let (net, _, _) =
            crate::sample_diffusion::load_generator(a.model.as_deref(), &train_device)?;
        let seconds = crate::train_diffusion::time_training_steps(
            net.denoiser,
            &net.header,
            a.train_batch,
            a.runs.max(1),
            &train_device,
        )?;
        let s = median(seconds);
        println!(
            "diffusion training step, {name}, {:?} device, {} threads, batch {}, forward + backward + Adam, median of {} runs: {s:.3} s ({:.1} images/s)",
            a.device,
            rayon::current_num_threads(),
            a.train_batch,
            a.runs.max(1),
            a.train_batch as f64 / s
        );
    }
    if a.train_only {
        return Ok(());
    }
    let tags = vec![vec!["ring".to_string(), "halo".to_string()]];
    println!(
        "diffusion sampling latency, {name}, {:?} device, {} threads, median of {} runs (s per 256² image)",
        a.device,
        rayon::current_num_threads(),
        a.runs.max(1)
    );
    println!(
        "{:<10} {:>6} {:>9} {:>10}",
        "sampler", "steps", "guidance", "seconds"
    );
    for (sampler, steps, guidance) in [
        (SamplerKind::DpmSolver2M, 20, 2.0),
        (SamplerKind::DpmSolver2M, 20, 1.0),
        (SamplerKind::DpmSolver2M, 10, 2.0),
        (SamplerKind::Ddim, 20, 2.0),
    ] {
        let d = draw(SampleSettings {
            sampler,
            steps,
            guidance,
            ..SampleSettings::default()
        });
        let mut times = Vec::new();
        for run in 0..a.runs.max(1) {
            let started = Instant::now();
            std::hint::black_box(d.images(&[run as u64], &tags, &device)?);
            times.push(started.elapsed().as_secs_f64());
        }
        println!(
            "{:<10} {:>6} {:>9} {:>10.3}",
            sampler.name(),
            steps,
            guidance,
            median(times)
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct BenchTemDiffusionArgs {
    /// The TEM generator's weights (from `train tem-diffusion`; default: the shipped ones).
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// Runs per case (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Step counts timed at the engine's 96 × 496 (512 × 512 is timed at the first).
    #[arg(long, value_delimiter = ',', default_values_t = [20, 10, models::diffusion::tem::DEFAULT_STEPS])]
    steps: Vec<usize>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = crate::device::DeviceChoice::Cpu)]
    device: crate::device::DeviceChoice,
}

/// `synthscope bench tem-diffusion`: seconds to draw one micrograph for an engine mask, at the
/// engine's 96 × 496 with each of `--steps` DPM-Solver++ steps, and at 512 × 512.
pub(crate) fn tem_diffusion(a: &BenchTemDiffusionArgs) -> Result<()> {
    use models::diffusion::generator::SampleSettings;
    let device = crate::device::device(a.device)?;
    let (g, model_name, _) = crate::tem_diffusion::load_model(a.model.as_deref(), &device)?;
    println!(
        "TEM diffusion sampling latency, {model_name}, {:?} device, {} threads, median of {} runs (s per micrograph)",
        a.device,
        rayon::current_num_threads(),
        a.runs.max(1)
    );
    println!("{:>10} {:>6} {:>10}", "size", "steps", "seconds");
    if a.steps.is_empty() || a.steps.contains(&0) {
        anyhow::bail!("--steps takes step counts of at least 1, for example 20,10,8");
    }
    let cases = a
        .steps
        .iter()
        .map(|&s| ((496, 96), s))
        .chain([((512, 512), a.steps[0])]);
    for ((w, h), steps) in cases {
        let config = synth::tem::TemConfig {
            width_px: w,
            height_px: h,
            ..synth::tem::TemConfig::default()
        };
        let mask: Vec<bool> = synth::dataset::generate_tem(&config, 1, 0)?
            .image
            .boundary
            .pixels()
            .iter()
            .map(|&b| b > 0)
            .collect();
        let settings = SampleSettings {
            steps,
            ..SampleSettings::default()
        };
        let mut times = Vec::new();
        for run in 0..=a.runs.max(1) {
            let started = Instant::now();
            models::block_on(g.sample(
                &settings,
                &[&mask],
                (w, h),
                &[run as u64],
                &device,
                |_, _| true,
            ))?;
            // The first run warms up.
            if run > 0 {
                times.push(started.elapsed().as_secs_f64());
            }
        }
        println!(
            "{:>10} {steps:>6} {:>10.3}",
            format!("{w}×{h}"),
            median(times)
        );
    }
    Ok(())
}
