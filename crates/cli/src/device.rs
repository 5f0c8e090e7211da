//! Which burn device the companion computes on.

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::ValueEnum;

/// `--device`: the pure-Rust CPU device everywhere; GPUs where the binary was built for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DeviceChoice {
    /// burn's `flex` CPU device (all cores).
    Cpu,
    /// wgpu: Vulkan, Metal or DX12, whichever the machine offers (build with `--features wgpu`).
    Wgpu,
    /// NVIDIA CUDA (build with `--features cuda`).
    Cuda,
}

pub(crate) fn device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::flex()),
        DeviceChoice::Wgpu => wgpu(),
        DeviceChoice::Cuda => cuda(),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu() -> Result<Device> {
    Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu() -> Result<Device> {
    bail!(
        "this synthscope was built without GPU support; rebuild with \
         `cargo build --release -p synthscope-cli --features wgpu` or use --device cpu"
    )
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device> {
    Ok(Device::cuda(0usize))
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device> {
    bail!(
        "this synthscope was built without CUDA; rebuild with \
         `cargo build --release -p synthscope-cli --features cuda` or use --device cpu"
    )
}

pub(crate) use models::block_on;
