//! burn modules, configs and runtime checks for Synthscope.
//!
//! Everything here is generic over the device: tensors carry no backend type parameter in burn
//! 0.22, and only the web app and the CLI choose a device (WebGPU, Vulkan, CUDA or the pure-Rust
//! `flex` CPU device). This crate does no I/O and builds natively and for `wasm32-unknown-unknown`.
//!
//! - [`unet`]: the encoder-decoder with skips and a bridge behind Net1 and Net2.
//! - [`grain`]: the grain-boundary pipeline (Net1 guess, SDEdit-style Net2 refinement), its
//!   weights file and the diffusion schedule.
//! - [`probe`]: a fixed convolution that checks a device computes correctly.

pub mod grain;
pub mod probe;
pub mod unet;
