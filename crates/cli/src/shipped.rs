//! The weights shipped in `public/models/`, compiled into the binary so that the default model
//! works from any directory, and checked against their recorded SHA-256 like any other file.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use models::grain::GrainModel;

use crate::checksum::{sha256_hex, sidecar};

/// `public/models/grain-v1.bin`.
const GRAIN_V1: &[u8] = include_bytes!("../../../public/models/grain-v1.bin");
/// Its `sha256sum` line.
const GRAIN_V1_SHA256: &str = include_str!("../../../public/models/grain-v1.bin.sha256");

/// The first field of a `sha256sum` line.
fn recorded_digest(line: &str) -> Option<&str> {
    line.split_whitespace().next()
}

/// Loads `path` (checked against `<path>.sha256` when that file exists) or the shipped grain
/// weights (always checked). Returns the model, a name for reports and the file's SHA-256.
pub(crate) fn load_grain(
    path: Option<&Path>,
    device: &Device,
) -> Result<(GrainModel, String, String)> {
    let (bytes, name, expected) = match path {
        Some(p) => {
            let bytes = std::fs::read(p)
                .with_context(|| format!("cannot read the model {}", p.display()))?;
            let expected = std::fs::read_to_string(sidecar(p))
                .ok()
                .and_then(|l| recorded_digest(&l).map(str::to_owned));
            (bytes, p.display().to_string(), expected)
        }
        None => (
            GRAIN_V1.to_vec(),
            "shipped:grain-v1.bin".to_owned(),
            recorded_digest(GRAIN_V1_SHA256).map(str::to_owned),
        ),
    };
    let digest = sha256_hex(&bytes);
    if let Some(expected) = expected
        && expected != digest
    {
        bail!(
            "{name} is damaged or was replaced: its SHA-256 is {digest} but {expected} was recorded; \
             retrain it or restore the file"
        );
    }
    let model =
        GrainModel::from_bytes(&bytes, device).with_context(|| format!("cannot load {name}"))?;
    Ok((model, name, digest))
}
