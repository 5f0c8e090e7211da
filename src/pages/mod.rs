//! The app's pages.

pub mod generate;
pub mod segment;
