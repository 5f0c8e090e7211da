//! The app's pages.

pub mod classify;
pub mod generate;
pub mod segment;
