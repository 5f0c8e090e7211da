//! `synthscope labels agreement|merge|pack`: experts' label exports and annotation packs on disk.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use labels::exchange::{self, Archive, Image};

/// What to do with label files.
#[derive(Debug, Subcommand)]
pub(crate) enum LabelsCommand {
    /// Agreement between annotators: prints one JSON object (percent agreement, Cohen's kappa
    /// per pair and mean, Fleiss' kappa, per-tag agreement, the items to review).
    Agreement(AgreementArgs),
    /// Merge several experts' exports into one (the newest label per image and annotator).
    Merge(MergeArgs),
    /// Make an annotation pack (zip) of image files for remote experts.
    Pack(PackArgs),
}

/// `labels agreement`.
#[derive(Debug, Args)]
pub(crate) struct AgreementArgs {
    /// Label exports (`.zip` or `labels.jsonl`), one or more per annotator.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Also write the consensus label of every item, one JSON line each, to this file.
    #[arg(long)]
    consensus: Option<PathBuf>,
}

/// `labels merge`.
#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// Label exports (`.zip` or `labels.jsonl`), and annotation packs whose images the merged
    /// zip should carry.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output: `.zip` (labels and every image the inputs carry) or `.jsonl` (labels only).
    #[arg(long)]
    out: PathBuf,
}

/// `labels pack`.
#[derive(Debug, Args)]
pub(crate) struct PackArgs {
    /// Image files, in the order experts should see them.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Pack id the experts' exports will refer to.
    #[arg(long)]
    id: String,
    /// What the experts are asked to do.
    #[arg(
        long,
        default_value = "Label each image realistic, fake or unsure, and tag what you see."
    )]
    instructions: String,
    /// Your name, shown to the experts.
    #[arg(long, default_value = "")]
    created_by: String,
    /// Output zip.
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(command: &LabelsCommand) -> Result<()> {
    match command {
        LabelsCommand::Agreement(a) => agreement(a),
        LabelsCommand::Merge(a) => merge(a),
        LabelsCommand::Pack(a) => pack(a),
    }
}

/// Reads a file that must be at most [`exchange::MAX_BYTES`] long.
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let len = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len > exchange::MAX_BYTES {
        bail!(
            "{} is {:.1} GiB, more than the {} GiB read at once; split it",
            path.display(),
            len as f64 / f64::from(1u32 << 30),
            exchange::MAX_BYTES >> 30
        );
    }
    fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Every archive in `files`, each validated completely; packs without labels only if
/// `packs_allowed` (as sources of images).
pub(crate) fn read_all(files: &[PathBuf], packs_allowed: bool) -> Result<Vec<Archive>> {
    files
        .iter()
        .map(|path| {
            let bytes = read_bounded(path)?;
            let archive = exchange::read(&path.display().to_string(), &bytes)?;
            if archive.pack.is_some() && archive.labels.is_empty() && !packs_allowed {
                bail!(
                    "{} is an annotation pack without labels: give the experts' exports instead",
                    path.display()
                );
            }
            Ok(archive)
        })
        .collect()
}

fn all_labels(archives: &[Archive]) -> Vec<labels::Label> {
    archives.iter().flat_map(|a| a.labels.clone()).collect()
}

fn agreement(args: &AgreementArgs) -> Result<()> {
    let archives = read_all(&args.files, false)?;
    let stats = labels::agreement(&all_labels(&archives));
    if stats.annotators.len() < 2 {
        eprintln!(
            "note: only one annotator ({}); agreement needs labels from two or more",
            stats.annotators.join(", ")
        );
    }
    let report = serde_json::json!({
        "items": stats.items,
        "annotators": stats.annotators,
        "compared_items": stats.compared_items,
        "percent_agreement": stats.percent_agreement,
        "cohen_kappa": stats.cohen_kappa,
        "cohen_kappa_pairs": stats.cohen_kappa_pairs,
        "fleiss_kappa": stats.fleiss_kappa,
        "per_tag": stats.per_tag,
        "conflicts": stats.conflicts,
    });
    println!("{report}");
    if let Some(path) = &args.consensus {
        let mut text = String::new();
        for c in &stats.consensus {
            text.push_str(&serde_json::to_string(c)?);
            text.push('\n');
        }
        fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn merge(args: &MergeArgs) -> Result<()> {
    let zip = match args.out.extension().and_then(|e| e.to_str()) {
        Some("zip") => true,
        Some("jsonl") => false,
        _ => bail!(
            "--out {}: name it .zip (labels and images) or .jsonl (labels only)",
            args.out.display()
        ),
    };
    let archives = read_all(&args.files, true)?;
    let mut merged = labels::merge(&[], &[]);
    for archive in &archives {
        let next = labels::merge(&merged.labels, &archive.labels);
        merged = labels::Merged {
            added: merged.added + next.added,
            updated: merged.updated + next.updated,
            duplicates: merged.duplicates + next.duplicates,
            stale: merged.stale + next.stale,
            labels: next.labels,
        };
    }
    let bytes = if zip {
        // Every image the inputs carry once; labels may also name images the lead already has.
        let mut seen = HashSet::new();
        let images: Vec<Image> = archives
            .iter()
            .flat_map(|a| a.images.iter())
            .filter(|i| seen.insert(i.item.clone()))
            .cloned()
            .collect();
        exchange::write_export(&merged.labels, &images)?
    } else {
        labels::to_jsonl(&merged.labels).into_bytes()
    };
    fs::write(&args.out, bytes).with_context(|| format!("cannot write {}", args.out.display()))?;
    let annotators: HashSet<&str> = merged.labels.iter().map(|l| l.annotator.as_str()).collect();
    eprintln!(
        "{} labels by {} annotators from {} files → {} ({} duplicates and {} older labels skipped, {} replaced by newer ones)",
        merged.labels.len(),
        annotators.len(),
        args.files.len(),
        args.out.display(),
        merged.duplicates,
        merged.stale,
        merged.updated
    );
    Ok(())
}

fn pack(args: &PackArgs) -> Result<()> {
    let images = args
        .images
        .iter()
        .map(|path| {
            let bytes = read_bounded(path)?;
            if bytes.is_empty() {
                bail!("{} is empty", path.display());
            }
            // Refuse what the app could not show, now rather than at the expert's desk.
            imaging::load::load_gray(&bytes, 1)
                .with_context(|| format!("{} is not an image the app can open", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            Ok(Image::new(&name, bytes))
        })
        .collect::<Result<Vec<_>>>()?;
    let total: u64 = images.iter().map(|i| i.bytes.len() as u64).sum();
    if total > exchange::MAX_BYTES {
        bail!(
            "these images add up to {:.1} GiB, more than the {} GiB a pack may hold; make several packs",
            total as f64 / f64::from(1u32 << 30),
            exchange::MAX_BYTES >> 30
        );
    }
    let zip = exchange::write_pack(
        &args.id,
        &args.instructions,
        &args.created_by,
        &now_rfc3339(),
        &images,
    )?;
    fs::write(&args.out, zip).with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "pack {} with {} images → {}",
        args.id,
        images.len(),
        args.out.display()
    );
    Ok(())
}

/// The current time in RFC 3339, UTC, whole seconds.
fn now_rfc3339() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    labels::format_rfc3339(s as i64)
}
