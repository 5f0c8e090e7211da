//! `synthscope classify IN... [--out FILE]`: tags and realism of detector images, one JSON line
//! per image, streamed.
//!
//! Inputs are files or directories (walked recursively for PNG, TIFF, JPEG, EDF, CBF and
//! HDF5/NeXus files, in name order; an Eiger master file's data files are read through it). Images are read and prepared (mask, beam centre, both classifiers' inputs) in
//! parallel on all cores a chunk at a time, then classified as one batch, so memory stays
//! bounded however large the directory. A file that cannot be read gets a line with its `error`
//! and the rest go on.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use imaging::plausibility::{self, Verdict};
use imaging::scattering::{BeamSource, FourierBessel, Prepared, prepare};
use models::classify::{Classification, Classifier, Inputs};
use rayon::prelude::*;
use serde_json::{Value, json};

use crate::device::{DeviceChoice, block_on, device};
use crate::shipped;
use crate::training::progress_bar;

/// Images read, prepared and classified together.
const CHUNK: usize = 64;

/// File endings classify reads from directories.
const EXTENSIONS: [&str; 11] = [
    "png", "tif", "tiff", "jpg", "jpeg", "edf", "cbf", "h5", "hdf5", "nxs", "hdf",
];

#[derive(Debug, Args)]
pub(crate) struct ClassifyArgs {
    /// Detector images (PNG, TIFF 8–32-bit integer or float, JPEG, EDF, CBF, HDF5/NeXus) or
    /// directories of them.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Of an HDF5/NeXus stack: the frame to classify ("7", from 0) or a range to sum ("0-9").
    /// Single-image files have frame 0 only.
    #[arg(long, default_value = "0")]
    frames: imaging::load::Frames,
    /// Write the JSON lines here instead of to standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Tagger weights written by `synthscope train tagger` (default: the shipped weights).
    #[arg(long)]
    tagger: Option<PathBuf>,
    /// Realism weights written by `synthscope train realism` (default: the shipped weights).
    #[arg(long)]
    realism: Option<PathBuf>,
    /// Beam centre "X,Y" in pixels for every image, instead of estimating it per image.
    #[arg(long, value_parser = parse_beam)]
    beam: Option<(f64, f64)>,
    /// A pyFAI calibration (PONI file): its direct-beam point is every image's beam centre.
    #[arg(long, conflicts_with = "beam")]
    poni: Option<PathBuf>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

pub(crate) fn parse_beam(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("\"{s}\" is not a beam centre like 512.5,498 (column,row in pixels)");
    let (x, y) = s.split_once(',').ok_or_else(bad)?;
    let (x, y) = (
        x.trim().parse::<f64>().map_err(|_| bad())?,
        y.trim().parse::<f64>().map_err(|_| bad())?,
    );
    if !(x.is_finite() && y.is_finite()) {
        return Err(bad());
    }
    Ok((x, y))
}

/// Reads a pyFAI PONI file; the error names the file and the field.
pub(crate) fn read_poni(path: &Path) -> Result<imaging::poni::Poni> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    imaging::poni::parse_poni(&text).with_context(|| format!("{} is not usable", path.display()))
}

/// Whether `path` is an Eiger data file (`…_data_000001.h5`) beside its master file
/// (`…_master.h5`), through which its frames are read.
fn is_linked_data_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(imaging::hdf5::master_of)
        .is_some_and(|master| path.with_file_name(master).exists())
}

/// Every file named by `inputs`, directories walked recursively, in order.
pub(crate) fn collect_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
                && !is_linked_data_file(&p)
            {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, &mut files)?;
        } else {
            // Named files are taken whatever their ending; a missing one gets an error line.
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// One file read and prepared for the classifiers.
struct Read {
    prepared: Prepared,
    /// Where the beam centre came from ("given", "file header", …).
    beam_from: &'static str,
    /// The plausibility check's verdict on the raw counts.
    verdict: Verdict,
    /// For a stack: which frames of how many.
    stack: Option<imaging::load::StackRead>,
}

/// The files an HDF5 master file's external links name, read from its folder when asked.
fn linked_beside(path: &Path) -> imaging::hdf5::Linked {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    std::sync::Arc::new(move |name: &str| {
        // Only a plain file name in the same folder (a link may not climb out of it).
        if name.contains(['/', '\\']) || name == ".." {
            return None;
        }
        fs::read(dir.join(name)).ok().map(Into::into)
    })
}

/// Reads and prepares one file: the beam centre `given` (with where it came from), else the
/// one the file's header records (CBF), else estimated; and checks that it is a plausible
/// detector frame.
fn read_and_prepare(
    path: &Path,
    given: Option<((f64, f64), &'static str)>,
    frames: imaging::load::Frames,
    basis: &FourierBessel,
) -> Result<Read> {
    let bytes = fs::read(path).context("cannot read the file")?;
    // Single images have frame 0 only: a range asked for a stack does not make them fail.
    let is_stack = imaging::hdf5::is_hdf5(&bytes);
    let frames = if is_stack { frames } else { Default::default() };
    let loaded = imaging::load::load_detector(&bytes, linked_beside(path), frames, 8)?;
    let image = loaded.image.to_f32();
    let verdict = plausibility::check(&image, loaded.image.full_scale());
    let header = loaded
        .geometry
        .as_ref()
        .and_then(|g| g.beam_xy_px)
        .map(|b| (b, "file header"));
    let (beam, source) = match given.or(header) {
        Some((b, source)) => (Some(b), source),
        None => (None, "estimated"),
    };
    let prepared = prepare(&image, None, beam, basis)?;
    Ok(Read {
        prepared,
        beam_from: source,
        verdict,
        stack: loaded.stack,
    })
}

/// The classifiers' inputs of a prepared image (the realism members read the image view).
pub(crate) fn inputs(p: &Prepared) -> Inputs<'_> {
    Inputs {
        image: &p.tagger.image,
        coeff: &p.tagger.coefficients,
        realism: &p.tagger.image,
    }
}

/// The JSON line of a classified image. An implausible frame keeps its tags (with the verdict
/// beside them) but gets no realism score: the ensemble was never shown such frames.
fn line(path: &Path, read: &Read, c: &Classification, classifier: &Classifier) -> Value {
    let (p, given_by) = (&read.prepared, &read.beam_from);
    let r4 = |x: f64| (x * 1e4).round() / 1e4;
    let tags: serde_json::Map<String, Value> = classifier
        .tags
        .iter()
        .zip(&c.tag_probabilities)
        .map(|(t, &prob)| (t.clone(), json!(r4(f64::from(prob)))))
        .collect();
    let mut ranked: Vec<(&String, f32)> = classifier
        .tags
        .iter()
        .zip(c.tag_probabilities.iter().copied())
        .filter(|&(_, prob)| prob >= 0.5)
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let members: serde_json::Map<String, Value> = classifier
        .members()
        .iter()
        .zip(&c.member_probabilities)
        .map(|(m, &prob)| (m.to_string(), json!(r4(f64::from(prob)))))
        .collect();
    let (source, explained) = match p.beam_source {
        BeamSource::Given => (*given_by, None),
        BeamSource::Estimated { explained } => ("estimated", Some(r4(explained))),
        BeamSource::ImageCentre => ("image centre", None),
    };
    json!({
        "file": path.display().to_string(),
        "width": p.size_px.0,
        "height": p.size_px.1,
        "beam_x_px": r4(p.beam_px.0),
        "beam_y_px": r4(p.beam_px.1),
        "beam": source,
        "beam_explained": explained,
        "beam_doubtful": p.beam_source.doubtful(),
        "frames": read.stack.as_ref().map(|s| json!({
            "path": s.path,
            "count": s.frame_count,
            "taken": s.frames.to_string(),
            "cutoff_counts": s.cutoff_counts,
        })),
        "tags": tags,
        "top_tags": ranked.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        "plausibility": {
            "plausible": read.verdict.plausible(),
            "problems": read.verdict.problems,
            "summary": read.verdict.summary(),
        },
        "realism": realism_json(read, c, classifier, members),
    })
}

/// The realism part of a line: judged by the vote, or not judged because the frame is not a
/// plausible detector frame or the ensemble's gate says it is no scattering pattern.
fn realism_json(
    read: &Read,
    c: &Classification,
    classifier: &Classifier,
    members: serde_json::Map<String, Value>,
) -> Value {
    let r4 = |x: f64| (x * 1e4).round() / 1e4;
    let pattern = c.pattern_probability.map(|p| r4(f64::from(p)));
    if !read.verdict.plausible() {
        return json!({
            "judged": false,
            "score": null,
            "realistic": null,
            "reason": "not a plausible detector frame (see plausibility)",
        });
    }
    if !c.is_pattern {
        let threshold = classifier.gate_threshold().unwrap_or(f64::NAN);
        return json!({
            "judged": false,
            "score": null,
            "realistic": null,
            "pattern": pattern,
            "reason": format!(
                "not a scattering pattern: the ensemble's gate gives {:.2}, below its threshold {threshold:.2}",
                pattern.unwrap_or(f64::NAN)
            ),
        });
    }
    json!({
        "judged": true,
        "score": r4(c.realism_score),
        "realistic": c.realistic,
        "pattern": pattern,
        "members": members,
    })
}

pub(crate) fn run(a: &ClassifyArgs) -> Result<()> {
    let started = Instant::now();
    let device = device(a.device)?;
    let (taggers, tagger_name, _) = shipped::load_tagger(a.tagger.as_deref(), &device, "--tagger")?;
    let (ensemble, realism_name, _) =
        shipped::load_realism(a.realism.as_deref(), &device, "--realism")?;
    let classifier = Classifier::new(taggers, ensemble)?;
    let files = collect_files(&a.inputs)?;
    if files.is_empty() {
        bail!("no images found (PNG, TIFF, JPEG, EDF, CBF or HDF5/NeXus) in the inputs given");
    }
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(BufWriter::new(
            fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    eprintln!(
        "classifying {} images with {tagger_name} ({} view) and {realism_name}",
        files.len(),
        classifier.view.name()
    );
    let given = match (&a.poni, a.beam) {
        (Some(path), _) => {
            let poni = read_poni(path)?;
            let (x, y) = poni.beam_centre_px();
            eprintln!(
                "beam centre ({x:.2}, {y:.2}) px from {} (tilt {:.2}°)",
                path.display(),
                poni.tilt_deg()
            );
            Some(((x, y), "PONI"))
        }
        (None, Some(b)) => Some((b, "given")),
        (None, None) => None,
    };
    let basis = FourierBessel::reference(128.0);
    let bar = progress_bar("classify", files.len(), 0);
    let mut failed = 0usize;
    for chunk in files.chunks(CHUNK) {
        let prepared: Vec<Result<Read>> = chunk
            .par_iter()
            .map(|f| read_and_prepare(f, given, a.frames, &basis))
            .collect();
        let ok: Vec<&Prepared> = prepared
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|r| &r.prepared))
            .collect();
        let inputs: Vec<Inputs> = ok.iter().map(|p| inputs(p)).collect();
        let mut results = block_on(classifier.classify(&inputs, &device))?.into_iter();
        for (path, p) in chunk.iter().zip(&prepared) {
            let value = match p {
                Ok(read) => {
                    let c = results
                        .next()
                        .context("the classifier returned fewer results than images")?;
                    if let Some(summary) = read.verdict.summary() {
                        bar.suspend(|| {
                            eprintln!(
                                "warning: {}: {summary}; its realism is not judged",
                                path.display()
                            )
                        });
                    } else if !c.is_pattern {
                        bar.suspend(|| {
                            eprintln!(
                                "warning: {}: the realism ensemble's gate says this is no scattering pattern (p {:.2}); its realism is not judged",
                                path.display(),
                                c.pattern_probability.unwrap_or(f32::NAN)
                            )
                        });
                    }
                    line(path, read, &c, &classifier)
                }
                Err(e) => {
                    failed += 1;
                    bar.suspend(|| eprintln!("error: {}: {e:#}", path.display()));
                    json!({ "file": path.display().to_string(), "error": format!("{e:#}") })
                }
            };
            writeln!(out, "{value}").context("cannot write the results")?;
        }
        out.flush().context("cannot write the results")?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "classified {} of {} images in {seconds:.1} s ({:.1} images/s){}",
        files.len() - failed,
        files.len(),
        files.len() as f64 / seconds,
        if failed > 0 {
            format!("; {failed} could not be read (their lines carry \"error\")")
        } else {
            String::new()
        }
    );
    if failed == files.len() {
        bail!("no image could be classified");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beam_centres_parse_and_refuse_nonsense() {
        assert_eq!(parse_beam("512.5, 498"), Ok((512.5, 498.0)));
        for bad in ["512", "a,b", "1,NaN", ""] {
            assert!(parse_beam(bad).is_err(), "{bad}");
        }
    }
}
