//! Analysis of X-ray scattering detector images: the operations the taggers and the Classify
//! page build on.
//!
//! - [`mask`]: what to leave out: invalid pixels (negative or NaN, as Pilatus and Eiger flag
//!   them), detector module gaps, the beamstop shadow, user-painted shapes.
//! - [`beam`]: the beam centre as the point whose rings explain the most of the image's variance
//!   (pyramid search, sub-pixel refinement); a manual centre always overrides it.
//! - [`integrate`]: azimuthal integration to I(q) (linear or log bins) and I(χ) over a q range.
//! - [`fourier_bessel`]: the 880 Fourier–Bessel coefficients (n ≤ 40, m = 0…10) around the beam
//!   centre, masked pixels handled by least squares.
//! - [`rings`]: orientation-free ring statistics around the beam centre (radial profile and its
//!   coverage, angular harmonics per radial band).
//! - [`peaks`]: the rings one by one: each strong ring's own angular harmonics, histograms of
//!   the ratios of ring radii (which lattice), the profile out to the grid's corners.
//! - [`polar`]: the log-q × χ grid the scattering generator draws on, decoded onto any detector.
//! - [`input`]: the taggers' two views: the image on a 256 × 256 log-scaled grid, and its
//!   Fourier–Bessel features with its ring statistics and ring features, in 1-px radial bins
//!   and again in bins wide enough to reach the farthest pixel (the outer view).
//!
//! Conventions as in [`crate::profile`]: pixel centres at `x + 0.5`, χ from +x towards up on
//! screen. Everything builds natively and for wasm32.

pub mod beam;
pub mod dihedral;
pub mod fourier_bessel;
pub mod input;
pub mod integrate;
mod linalg;
pub mod mask;
pub mod peaks;
pub mod polar;
pub mod prepare;
pub mod rings;

pub use beam::{BeamCentre, estimate_beam_centre};
pub use dihedral::Dihedral;
pub use fourier_bessel::{Coefficients, FourierBessel};
pub use input::{LogGrid, OUTER_FEATURES, TaggerInput, log_grid, tagger_input};
pub use integrate::{Profile, Spacing, integrate_chi, integrate_q};
pub use mask::Mask;
pub use peaks::{
    FOLD_FEATURES, PEAK_FEATURES, peak_features, ring_features_and_folds,
    ring_features_and_folds_binned,
};
pub use prepare::{BeamSource, PrepareError, Prepared, prepare};
pub use rings::{RING_FEATURES, ring_features, ring_features_binned};
