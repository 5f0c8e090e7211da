//! burn modules, configs and runtime checks for Synthscope.
//!
//! Everything here is generic over the device: tensors carry no backend type parameter in burn
//! 0.22, and only the web app and the CLI choose a device (WebGPU, Vulkan, CUDA or the pure-Rust
//! `flex` CPU device). This crate does no I/O and builds natively and for `wasm32-unknown-unknown`.

pub mod probe;
