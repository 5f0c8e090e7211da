//! `synthscope`: the native companion of the Synthscope web app.
//!
//! Generates datasets with the same engine the browser uses (so a dataset made here and one
//! downloaded from the app are byte-identical for the same seed), trains and evaluates the
//! models whose weights the browser loads, runs the browser's pipelines on files, and measures
//! throughput.

mod adapt;
mod bench;
mod checksum;
mod classify;
mod device;
mod diffusion_data;
mod ema;
mod eval_diffusion;
mod eval_grain;
mod eval_realism;
mod eval_tagger;
mod expert_labels;
mod generate;
mod grain_data;
mod labels;
mod realism_data;
mod sample_diffusion;
mod saxs_data;
mod segment;
mod serve;
mod shipped;
mod stages;
mod tem_diffusion;
mod train_diffusion;
mod train_grain;
mod train_realism;
mod train_tagger;
mod training;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Synthetic X-ray scattering and TEM data, natively.
#[derive(Debug, Parser)]
#[command(name = "synthscope", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a dataset of images, ground truth and labels.jsonl.
    #[command(subcommand)]
    Generate(GenerateKind),
    /// Train models on generated data.
    #[command(subcommand)]
    Train(TrainKind),
    /// Evaluate models on held-out generated data; prints one JSON object.
    #[command(subcommand)]
    Eval(EvalKind),
    /// Grain boundaries and grain statistics of TEM images (the browser's pipeline, natively).
    Segment(segment::SegmentArgs),
    /// Tags and realism of scattering images: one JSON line per image.
    Classify(classify::ClassifyArgs),
    /// Sample images from a generative model.
    #[command(subcommand)]
    Sample(SampleKind),
    /// Measure throughput.
    #[command(subcommand)]
    Bench(BenchKind),
    /// Experts' labels: agreement between annotators, merging exports, annotation packs.
    #[command(subcommand)]
    Labels(expert_labels::LabelsCommand),
    /// The companion on 127.0.0.1 for the app: takes a training set, fine-tunes the realism
    /// ensemble, hands back the new weights.
    Serve(serve::ServeArgs),
    /// Adapt a model to a scientist's own, unlabelled data.
    #[command(subcommand)]
    Adapt(AdaptKind),
}

#[derive(Debug, Subcommand)]
enum AdaptKind {
    /// Grain networks for your microscope: pseudo-masks of your micrographs, the TEM generator
    /// fine-tuned on them, engine masks drawn in their look, the grain networks fine-tuned on
    /// those pairs; writes the adapted grain.bin and a report.
    Grain(adapt::AdaptGrainArgs),
}

#[derive(Debug, Subcommand)]
enum EvalKind {
    /// Grain-boundary pipeline: pixel accuracy, boundary F1, VOI, adapted Rand, grain sizes.
    Grain(eval_grain::EvalGrainArgs),
    /// Scattering-image taggers: mean average precision per view and per tag.
    Tagger(eval_tagger::EvalTaggerArgs),
    /// Realism ensemble: precision, recall, F1, AUC of soft voting, hard voting and each member.
    Realism(eval_realism::EvalRealismArgs),
    /// Scattering generator: tag fidelity, realism, KID, physics and memorisation of samples.
    Diffusion(eval_diffusion::EvalDiffusionArgs),
    /// TEM generator: similarity to the engine's micrograph of each mask, boundaries found on
    /// the samples, grain-size and S₂ distances.
    TemDiffusion(tem_diffusion::EvalTemDiffusionArgs),
}

#[derive(Debug, Subcommand)]
enum TrainKind {
    /// Grain-boundary networks: Net1 (initial guess) and Net2 (diffusion refinement).
    Grain(train_grain::TrainGrainArgs),
    /// Scattering-image taggers: image CNN, Fourier–Bessel coefficient network, joint network.
    Tagger(train_tagger::TrainTaggerArgs),
    /// Realism ensemble: ResNet-, VGG-, ViT- and ConvNeXt-style members, soft-voting weights.
    Realism(train_realism::TrainRealismArgs),
    /// Scattering generator: tag-conditioned diffusion on polar images of the sample.
    Diffusion(train_diffusion::TrainDiffusionArgs),
    /// TEM generator: micrographs conditioned on a grain-boundary mask.
    TemDiffusion(tem_diffusion::TrainTemDiffusionArgs),
}

#[derive(Debug, Subcommand)]
enum SampleKind {
    /// Scattering detector images from the tag-conditioned diffusion generator.
    Diffusion(sample_diffusion::SampleDiffusionArgs),
    /// TEM micrographs for engine boundary masks from the mask-conditioned generator.
    TemDiffusion(tem_diffusion::SampleTemDiffusionArgs),
}

#[derive(Debug, Subcommand)]
enum GenerateKind {
    /// X-ray scattering detector images (16-bit counts).
    Saxs(SaxsArgs),
    /// TEM micrographs of polycrystals with boundary masks and grain-id maps.
    Tem(TemArgs),
}

#[derive(Debug, Subcommand)]
enum BenchKind {
    /// Images per second of generation plus PNG encoding, all cores, in memory.
    Generate(bench::BenchArgs),
    /// Latency of each stage of the grain pipeline (edges, Net1, Net2, grains) on one image.
    Grain(bench::BenchGrainArgs),
    /// Classification throughput (beam centre, both views, joint tagger, realism) at 256² and 1000².
    Tagger(bench::BenchTaggerArgs),
    /// The latent-space view natively: embedding, UMAP time and quality.
    Latent(bench::BenchLatentArgs),
    /// Seconds to sample one scattering image with the diffusion generator.
    Diffusion(bench::BenchDiffusionArgs),
    /// Seconds to draw one micrograph for a mask with the TEM generator.
    TemDiffusion(bench::BenchTemDiffusionArgs),
}

/// Options shared by every generator.
#[derive(Debug, Args)]
struct Common {
    /// Number of images.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    count: u64,
    /// Batch seed: image i depends only on (seed, i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    out: std::path::PathBuf,
    /// Image file format.
    #[arg(long, value_enum, default_value_t = Format::Png)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Png,
    Tiff,
}

impl From<Format> for imaging::codec::FileFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Png => imaging::codec::FileFormat::Png,
            Format::Tiff => imaging::codec::FileFormat::Tiff,
        }
    }
}

#[derive(Debug, Args)]
struct SaxsArgs {
    #[command(flatten)]
    common: Common,
    /// Square image size in pixels (128–2048).
    #[arg(long, default_value_t = 1000)]
    size: usize,
    /// Detector layout (the real ones bin the whole detector onto the image).
    #[arg(long, value_enum, default_value_t = Detector::Plain)]
    detector: Detector,
    /// `reference`: the reference simulator's set-up and mix. `wide`: distances, energies,
    /// every detector layout, no beamstop, the beam well off the detector and patterns that
    /// are only a low-q fall-off, as the taggers train on (ignores --detector and --beamstop).
    #[arg(long, value_enum, default_value_t = Variety::Reference)]
    variety: Variety,
    /// Beamstop: random (as the reference simulator), none, circular, linear or wedge.
    #[arg(long, value_enum, default_value_t = Beamstop::Random)]
    beamstop: Beamstop,
    /// Turn off Poisson counting noise.
    #[arg(long)]
    no_noise: bool,
    /// Intensity multiplier before noise (higher: relatively less noise).
    #[arg(long, default_value_t = 1.0)]
    exposure: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Detector {
    Plain,
    Pilatus,
    Eiger,
    #[value(name = "pilatus-300k")]
    Pilatus300k,
    #[value(name = "pilatus-1m")]
    Pilatus1M,
    #[value(name = "pilatus-2m")]
    Pilatus2M,
    #[value(name = "pilatus-6m")]
    Pilatus6M,
    #[value(name = "eiger-1m")]
    Eiger1M,
    #[value(name = "eiger-4m")]
    Eiger4M,
    #[value(name = "eiger-9m")]
    Eiger9M,
    #[value(name = "eiger-16m")]
    Eiger16M,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Variety {
    Reference,
    Wide,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Beamstop {
    Random,
    None,
    Circular,
    Linear,
    Wedge,
}

#[derive(Debug, Args)]
struct TemArgs {
    #[command(flatten)]
    common: Common,
    /// Image width in pixels.
    #[arg(long, default_value_t = 496)]
    width: usize,
    /// Image height in pixels.
    #[arg(long, default_value_t = 96)]
    height: usize,
    /// Mean grain diameter in pixels.
    #[arg(long, default_value_t = 24.0)]
    grain_diameter: f64,
    /// Spread (σ of ln diameter) of the lognormal grain sizes.
    #[arg(long, default_value_t = 0.35)]
    grain_spread: f64,
    /// Diffraction contrast between grains (0–1).
    #[arg(long, default_value_t = 0.6)]
    contrast: f64,
    /// Noise level (0–1).
    #[arg(long, default_value_t = 0.3)]
    noise: f64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                // Help and version go to stdout with exit 0 (or 2 for a bare command), as clap does.
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line: clap's first line says what was wrong; a missing argument's names follow
            // on indented lines, which are joined onto it.
            let text = e.to_string();
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("error: invalid arguments");
            let named: Vec<&str> = lines
                .take_while(|l| l.starts_with("  "))
                .map(str::trim)
                .collect();
            let named = if named.is_empty() {
                String::new()
            } else {
                format!(" {}", named.join(", "))
            };
            eprintln!("{first}{named} (see synthscope --help)");
            return ExitCode::from(2);
        }
    };
    let result = dispatch(cli.command);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command.
fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Generate(GenerateKind::Saxs(a)) => generate::saxs(&a),
        Command::Generate(GenerateKind::Tem(a)) => generate::tem(&a),
        Command::Train(TrainKind::Grain(a)) => train_grain::run(&a),
        Command::Train(TrainKind::Tagger(a)) => train_tagger::run(&a),
        Command::Train(TrainKind::Realism(a)) => train_realism::run(&a),
        Command::Train(TrainKind::Diffusion(a)) => train_diffusion::run(&a),
        Command::Train(TrainKind::TemDiffusion(a)) => tem_diffusion::train(&a),
        Command::Sample(SampleKind::TemDiffusion(a)) => tem_diffusion::sample(&a),
        Command::Eval(EvalKind::Diffusion(a)) => eval_diffusion::run(&a),
        Command::Eval(EvalKind::TemDiffusion(a)) => tem_diffusion::eval(&a),
        Command::Sample(SampleKind::Diffusion(a)) => sample_diffusion::run(&a),
        Command::Eval(EvalKind::Grain(a)) => eval_grain::run(&a),
        Command::Eval(EvalKind::Tagger(a)) => eval_tagger::run(&a),
        Command::Eval(EvalKind::Realism(a)) => eval_realism::run(&a),
        Command::Segment(a) => segment::run(&a),
        Command::Classify(a) => classify::run(&a),
        Command::Bench(BenchKind::Generate(a)) => bench::generate(&a),
        Command::Bench(BenchKind::Grain(a)) => bench::grain(&a),
        Command::Bench(BenchKind::Tagger(a)) => bench::tagger(&a),
        Command::Bench(BenchKind::Latent(a)) => bench::latent(&a),
        Command::Bench(BenchKind::Diffusion(a)) => bench::diffusion(&a),
        Command::Bench(BenchKind::TemDiffusion(a)) => bench::tem_diffusion(&a),
        Command::Labels(c) => expert_labels::run(&c),
        Command::Serve(a) => serve::run(&a),
        Command::Adapt(AdaptKind::Grain(a)) => adapt::grain(&a),
    }
}

/// Runs a command given as its arguments (without the program name), as if typed: the same
/// parsing, defaults and checks. `adapt grain` runs its stages through this, so each stage is
/// exactly the command its report prints.
pub(crate) fn run_command(args: &[String]) -> anyhow::Result<()> {
    let cli =
        Cli::try_parse_from(std::iter::once("synthscope".to_owned()).chain(args.iter().cloned()))
            .map_err(|e| anyhow::anyhow!("synthscope {}: {e}", args.join(" ")))?;
    dispatch(cli.command)
}
