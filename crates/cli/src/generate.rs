//! `synthscope generate saxs|tem`: parallel generation straight to a dataset directory.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use synth::dataset::{self, Record};
use synth::scattering::{BackgroundChoice, BeamstopChoice, DetectorKind, SaxsConfig, Variety};
use synth::tem::TemConfig;

use crate::{Beamstop, Common, Detector, SaxsArgs, TemArgs};

/// Images generated in parallel before their label lines are appended in order.
const CHUNK: u64 = 256;

pub(crate) fn saxs(a: &SaxsArgs) -> Result<()> {
    let config = SaxsConfig {
        size_px: a.size,
        detector: match a.detector {
            Detector::Plain => DetectorKind::Plain,
            Detector::Pilatus => DetectorKind::Pilatus,
            Detector::Eiger => DetectorKind::Eiger,
            Detector::Pilatus300k => DetectorKind::Pilatus300k,
            Detector::Pilatus1M => DetectorKind::Pilatus1M,
            Detector::Pilatus2M => DetectorKind::Pilatus2M,
            Detector::Pilatus6M => DetectorKind::Pilatus6M,
            Detector::Eiger1M => DetectorKind::Eiger1M,
            Detector::Eiger4M => DetectorKind::Eiger4M,
            Detector::Eiger9M => DetectorKind::Eiger9M,
            Detector::Eiger16M => DetectorKind::Eiger16M,
        },
        sample: None,
        beamstop: match a.beamstop {
            Beamstop::Random => BeamstopChoice::Random,
            Beamstop::None => BeamstopChoice::None,
            Beamstop::Circular => BeamstopChoice::Circular,
            Beamstop::Linear => BeamstopChoice::Linear,
            Beamstop::Wedge => BeamstopChoice::Wedge,
        },
        background: BackgroundChoice::Random,
        poisson_noise: !a.no_noise,
        exposure: a.exposure,
        beam_centre_frac: None,
        variety: match a.variety {
            crate::Variety::Reference => Variety::Reference,
            crate::Variety::Wide => Variety::Wide,
        },
    };
    // Fail on a bad configuration before creating anything.
    config.validate()?;
    let format = a.common.format.into();
    run(&a.common, "saxs", |seed, i| {
        let sample = dataset::generate_saxs(&config, seed, i)?;
        Ok(dataset::saxs_record(&sample, seed, i, format)?)
    })
}

pub(crate) fn tem(a: &TemArgs) -> Result<()> {
    let config = TemConfig {
        width_px: a.width,
        height_px: a.height,
        grain_diameter_mean_px: a.grain_diameter,
        grain_size_spread: a.grain_spread,
        contrast: a.contrast,
        noise: a.noise,
    };
    config.validate()?;
    let format = a.common.format.into();
    run(&a.common, "tem", |seed, i| {
        let sample = dataset::generate_tem(&config, seed, i)?;
        Ok(dataset::tem_record(&sample, seed, i, format)?)
    })
}

/// Generates `count` records in parallel chunks, writes their files, and appends their label
/// lines in index order to `labels.jsonl.partial`, renamed to `labels.jsonl` only when every
/// image is written: an interrupted run never leaves a half-written `labels.jsonl`.
fn run(c: &Common, kind: &str, make: impl Fn(u64, u64) -> Result<Record> + Sync) -> Result<()> {
    let out = &c.out;
    fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output directory {}", out.display()))?;
    let partial = out.join("labels.jsonl.partial");
    let file = fs::File::create(&partial)
        .with_context(|| format!("cannot write to {}", partial.display()))?;
    let mut labels = BufWriter::new(file);
    let progress = ProgressBar::new(c.count);
    progress.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:40}] {pos}/{len} images, {per_sec}, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    progress.set_prefix(kind.to_string());
    let started = Instant::now();
    let end = c.count;
    let mut chunk_start = 0;
    while chunk_start < end {
        let chunk_end = (chunk_start + CHUNK).min(end);
        let lines: Vec<String> = (chunk_start..chunk_end)
            .into_par_iter()
            .map(|i| {
                let record = make(c.seed, i).with_context(|| format!("image {i}"))?;
                for f in &record.files {
                    write_file(&out.join(&f.name), &f.bytes)?;
                }
                progress.inc(1);
                Ok(record.label_line)
            })
            .collect::<Result<_>>()?;
        for line in lines {
            writeln!(labels, "{line}")
                .with_context(|| format!("cannot write to {}", partial.display()))?;
        }
        chunk_start = chunk_end;
    }
    labels
        .flush()
        .with_context(|| format!("cannot write to {}", partial.display()))?;
    drop(labels);
    let final_path = out.join("labels.jsonl");
    fs::rename(&partial, &final_path)
        .with_context(|| format!("cannot create {}", final_path.display()))?;
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} {kind} images and labels.jsonl to {} in {secs:.1} s ({:.1} images/s)",
        c.count,
        out.display(),
        c.count as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
