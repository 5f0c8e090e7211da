//! Reading the `labels.jsonl` of a directory written by `synthscope generate`.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The records of `dir/labels.jsonl` with their 1-based line numbers, checking that each is of
/// `kind` ("saxs" or "tem"); at most `limit` of them.
pub(crate) fn read(
    dir: &Path,
    kind: &str,
    limit: Option<usize>,
) -> Result<Vec<(usize, serde_json::Value)>> {
    let path = dir.join("labels.jsonl");
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: is {} a directory written by `synthscope generate {kind}`?",
            path.display(),
            dir.display()
        )
    })?;
    let mut lines = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}", path.display(), n + 1))?;
        if v.get("kind").and_then(|k| k.as_str()) != Some(kind) {
            bail!(
                "{} line {} is not a {} record; this needs `synthscope generate {kind}` data",
                path.display(),
                n + 1,
                kind.to_uppercase()
            );
        }
        lines.push((n + 1, v));
        if limit.is_some_and(|l| lines.len() >= l) {
            break;
        }
    }
    if lines.is_empty() {
        bail!("{} lists no images", path.display());
    }
    Ok(lines)
}

/// The tag names of a record's `"tags"` array (line `line` of labels.jsonl, for the message).
pub(crate) fn tag_names(record: &serde_json::Value, line: usize) -> Result<Vec<&str>> {
    Ok(record
        .get("tags")
        .and_then(|t| t.as_array())
        .with_context(|| format!("labels.jsonl line {line} has no \"tags\""))?
        .iter()
        .filter_map(|t| t.as_str())
        .collect())
}

/// The path named by string field `key` of a record, relative to `dir`.
pub(crate) fn file_field(
    dir: &Path,
    record: &serde_json::Value,
    key: &str,
    line: usize,
) -> Result<std::path::PathBuf> {
    record
        .get(key)
        .and_then(|f| f.as_str())
        .map(|f| dir.join(f))
        .with_context(|| format!("labels.jsonl line {line} has no \"{key}\""))
}

/// The counts of the image a labels line names in its `file` field.
pub(crate) fn read_counts(
    dir: &Path,
    record: &serde_json::Value,
    line: usize,
) -> Result<imaging::Image<f32>> {
    let path = file_field(dir, record, "file", line)?;
    let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(imaging::codec::decode_gray(&bytes)
        .with_context(|| format!("cannot read {}", path.display()))?
        .to_f32())
}
