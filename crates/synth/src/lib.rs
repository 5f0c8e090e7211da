//! Procedural generators of synthetic images with exact ground truth.
//!
//! - [`scattering`]: X-ray scattering detector images (SAXS/WAXS), following the Brookhaven
//!   reference simulator described in `DOMAIN.md` §1: rings, halos, lattices, form factors, diffuse
//!   terms, backgrounds, beamstops, detector defects, Poisson counting noise.
//! - [`tem`]: TEM micrographs of polycrystals following seed 001's concept-oriented stages
//!   (`DOMAIN.md` §2): lognormal grains, power-diagram cells, diffraction contrast, noise.
//! - [`dataset`]: one image plus its label line as files, shared by the CLI and the web app so
//!   both write byte-identical datasets.
//!
//! Every generator is deterministic: image `index` of a batch depends only on `(seed, index)`
//! (see [`rng::image_rng`]). No I/O, no platform code: builds natively and for wasm32.

pub mod dataset;
// Portable maths live in `imaging` (shared with the analysis code); `crate::math` keeps the paths.
use imaging::math;
pub mod rng;
pub mod scattering;
pub mod tem;

/// Errors from invalid generator configurations.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SynthError {
    /// A configuration value is out of its allowed range.
    #[error("{name} = {value} is out of range: {allowed}")]
    OutOfRange {
        /// The parameter's name as the user sees it.
        name: &'static str,
        /// The offending value.
        value: String,
        /// The allowed range, in words.
        allowed: &'static str,
    },
    /// Parameters (for example read back from a label file) describe no valid image.
    #[error("invalid image parameters: {0}")]
    InvalidParams(String),
    /// Encoding the image failed.
    #[error("could not encode the image: {0}")]
    Encode(String),
}
