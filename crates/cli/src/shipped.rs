//! The weights shipped in `public/models/`, compiled into the binary so that the default model
//! works from any directory, and checked against their recorded SHA-256 like any other file.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use models::grain::GrainModel;
use models::realism::Ensemble;
use models::tagger::TaggerSet;

use crate::checksum::{sha256_hex, sidecar};

/// `public/models/grain-v1.bin`.
const GRAIN_V1: &[u8] = include_bytes!("../../../public/models/grain-v1.bin");
/// Its `sha256sum` line.
const GRAIN_V1_SHA256: &str = include_str!("../../../public/models/grain-v1.bin.sha256");

/// `public/models/tagger-v12.bin` and its `sha256sum` line.
const TAGGER_V12: &[u8] = include_bytes!("../../../public/models/tagger-v12.bin");
const TAGGER_V12_SHA256: &str = include_str!("../../../public/models/tagger-v12.bin.sha256");
/// `public/models/realism-v2.bin` and its `sha256sum` line.
const REALISM_V2: &[u8] = include_bytes!("../../../public/models/realism-v2.bin");
const REALISM_V2_SHA256: &str = include_str!("../../../public/models/realism-v2.bin.sha256");

/// `public/models/diffusion-v3.bin` and its `sha256sum` line.
const DIFFUSION_V3: &[u8] = include_bytes!("../../../public/models/diffusion-v3.bin");
const DIFFUSION_V3_SHA256: &str = include_str!("../../../public/models/diffusion-v3.bin.sha256");

/// The shipped scattering generator.
pub(crate) const DIFFUSION: Option<Shipped> = Some(Shipped {
    bytes: DIFFUSION_V3,
    name: "shipped:diffusion-v3.bin",
    sha256_line: DIFFUSION_V3_SHA256,
});

/// `public/models/tem-diffusion-v1.bin` and its `sha256sum` line.
const TEM_DIFFUSION_V1: &[u8] = include_bytes!("../../../public/models/tem-diffusion-v1.bin");
const TEM_DIFFUSION_V1_SHA256: &str =
    include_str!("../../../public/models/tem-diffusion-v1.bin.sha256");

/// The shipped mask-conditioned TEM generator.
pub(crate) const TEM_DIFFUSION: Shipped = Shipped {
    bytes: TEM_DIFFUSION_V1,
    name: "shipped:tem-diffusion-v1.bin",
    sha256_line: TEM_DIFFUSION_V1_SHA256,
};

/// The first field of a `sha256sum` line.
fn recorded_digest(line: &str) -> Option<&str> {
    line.split_whitespace().next()
}

/// Weights compiled into the binary: bytes, report name, `sha256sum` line.
pub(crate) struct Shipped {
    bytes: &'static [u8],
    name: &'static str,
    sha256_line: &'static str,
}

/// The shipped grain networks.
pub(crate) const GRAIN: Shipped = Shipped {
    bytes: GRAIN_V1,
    name: "shipped:grain-v1.bin",
    sha256_line: GRAIN_V1_SHA256,
};

/// The shipped taggers.
pub(crate) const TAGGER: Shipped = Shipped {
    bytes: TAGGER_V12,
    name: "shipped:tagger-v12.bin",
    sha256_line: TAGGER_V12_SHA256,
};

/// The shipped realism ensemble.
pub(crate) const REALISM: Shipped = Shipped {
    bytes: REALISM_V2,
    name: "shipped:realism-v2.bin",
    sha256_line: REALISM_V2_SHA256,
};

/// Reads `path` (checked against `<path>.sha256` when that file exists) or, without a path, the
/// shipped weights (always checked; `what` names the model and `flag` the option that passes
/// a file, in the error when none ship yet). Returns the bytes, a name for reports and their
/// SHA-256.
pub(crate) fn read_weights(
    path: Option<&Path>,
    shipped: Option<&Shipped>,
    what: &str,
    flag: &str,
) -> Result<(Vec<u8>, String, String)> {
    let (bytes, name, expected) = match (path, shipped) {
        (Some(p), _) => {
            let bytes = std::fs::read(p)
                .with_context(|| format!("cannot read the model {}", p.display()))?;
            let expected = std::fs::read_to_string(sidecar(p))
                .ok()
                .and_then(|l| recorded_digest(&l).map(str::to_owned));
            (bytes, p.display().to_string(), expected)
        }
        (None, Some(s)) => (
            s.bytes.to_vec(),
            s.name.to_owned(),
            recorded_digest(s.sha256_line).map(str::to_owned),
        ),
        (None, None) => bail!(
            "this build ships no {what} weights: pass {flag} FILE (train one with `synthscope train {what}`)"
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
    Ok((bytes, name, digest))
}

/// Loads `path` or the shipped grain weights, checked. Returns the model, a name for reports
/// and the file's SHA-256.
pub(crate) fn load_grain(
    path: Option<&Path>,
    device: &Device,
) -> Result<(GrainModel, String, String)> {
    let (bytes, name, digest) = read_weights(path, Some(&GRAIN), "grain", "--model")?;
    let model =
        GrainModel::from_bytes(&bytes, device).with_context(|| format!("cannot load {name}"))?;
    Ok((model, name, digest))
}

/// Loads tagger weights from `path` or the shipped ones, checked; `flag` is the option that
/// names the file, for errors.
pub(crate) fn load_tagger(
    path: Option<&Path>,
    device: &Device,
    flag: &str,
) -> Result<(TaggerSet, String, String)> {
    let (bytes, name, digest) = read_weights(path, Some(&TAGGER), "tagger", flag)?;
    let set =
        TaggerSet::from_bytes(&bytes, device).with_context(|| format!("cannot load {name}"))?;
    Ok((set, name, digest))
}

/// Loads realism weights from `path` or the shipped ones, checked; `flag` is the option that
/// names the file, for errors.
pub(crate) fn load_realism(
    path: Option<&Path>,
    device: &Device,
    flag: &str,
) -> Result<(Ensemble, String, String)> {
    let (bytes, name, digest) = read_weights(path, Some(&REALISM), "realism", flag)?;
    let e = Ensemble::from_bytes(&bytes, device).with_context(|| format!("cannot load {name}"))?;
    Ok((e, name, digest))
}
