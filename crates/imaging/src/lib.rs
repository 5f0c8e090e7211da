//! Image container, encoders and decoders, display mapping and measurements for Synthscope.
//!
//! - [`Image`]: a row-major single-channel image of any pixel type.
//! - [`cbf`]: CBF / miniCBF detector images (byte-offset compression, Pilatus header geometry).
//! - [`codec`]: PNG (8/16-bit grayscale) and TIFF (8/16/32-bit integer, 32-bit float) to and from
//!   bytes in memory. The crate never touches the file system: callers own the I/O.
//! - [`detector`]: detector geometry (pixel ↔ q) and module-gap masks.
//! - [`display`]: linear/log scaling and colormaps (gray, viridis, inferno) to RGBA for canvases.
//! - [`edges`]: Sobel, Laplacian-of-Gaussian and Canny edge maps fused for grain boundaries.
//! - [`grains`]: grains from a boundary mask, ECD statistics, lognormal fit, ASTM E112 G.
//! - [`load`]: a user's PNG/TIFF/JPEG file to grey, with size limits and colour notices.
//! - [`math`]: portable transcendental functions (identical bits natively and in wasm).
//! - [`metrics`]: pixel accuracy, boundary F1 with tolerance, variation of information, adapted
//!   Rand, the two-point correlation S₂(r) of a boundary map.
//! - [`plausibility`]: is a file a detector frame at all (no signal, saturated, counts beyond
//!   any counter, not counting noise, garbage lines)? Checked before the models judge it.
//! - [`poni`]: pyFAI PONI calibrations → beam centre and q per pixel (pyFAI's conventions).
//! - [`profile`]: radial (I(r)) and azimuthal (I(χ)) averages around a beam centre.
//! - [`regions`]: 4-connected flood fill.
//! - [`scattering`]: detector masks, beam-centre estimation, I(q) and I(χ), Fourier–Bessel
//!   coefficients and ring statistics.
//! - [`similarity`]: PSNR, SSIM and MS-SSIM of two images (scikit-image's conventions).
//! - [`stats`]: the error function, lognormal CDF, Kolmogorov–Smirnov statistics and the
//!   1-Wasserstein distance.
//!
//! Builds natively and for `wasm32-unknown-unknown`.

pub mod cbf;
pub mod codec;
mod colormap_tables;
pub mod detector;
pub mod display;
pub mod distance;
pub mod edges;
pub mod grains;
pub mod hdf5;
mod image;
pub mod load;
pub mod math;
pub mod metrics;
pub mod plausibility;
pub mod poni;
pub mod profile;
pub mod regions;
pub mod scattering;
pub mod similarity;
pub mod stats;

pub use image::{Image, ImageError};
