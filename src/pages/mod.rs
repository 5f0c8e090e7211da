//! The app's pages.

pub mod generate;
