//! The app's pages.

pub mod annotate;
pub mod classify;
pub mod generate;
pub mod segment;
