//! The app's pages.

pub mod annotate;
pub mod classify;
pub mod dataset;
pub mod diffusion;
pub mod generate;
pub mod micrograph;
pub mod queue;
pub mod segment;
