//! burn modules, configs and runtime checks for Synthscope.
//!
//! Everything here is generic over the device: tensors carry no backend type parameter in burn
//! 0.22, and only the web app and the CLI choose a device (WebGPU, Vulkan, CUDA or the pure-Rust
//! `flex` CPU device). This crate does no I/O and builds natively and for `wasm32-unknown-unknown`.
//!
//! - [`diffusion`]: the diffusion core shared by the generators: cosine schedule, DDPM / DDIM /
//!   DPM-Solver++ samplers, the time- and tag-conditioned denoising U-Net with classifier-free
//!   guidance, and the KL autoencoder of latent diffusion.
//! - [`unet`]: the encoder-decoder with skips and a bridge behind Net1 and Net2.
//! - [`grain`]: the grain-boundary pipeline (Net1 guess, SDEdit-style Net2 refinement), its
//!   weights file and the diffusion schedule.
//! - [`tagger`]: the scattering-image taggers (image CNN, Fourier–Bessel coefficient network,
//!   joint double-view network).
//! - [`realism`]: the five realism classifiers (ResNet-, VGG-, ViT- and ConvNeXt-style, and a
//!   perceptron on ring statistics) of the soft-voting ensemble.
//! - [`classify`]: tag probabilities and the realism vote for a batch of prepared scattering
//!   images, as the browser and `synthscope classify` run them.
//! - [`weights`]: the weights-file layout all models share (magic, JSON header, burnpack
//!   records).
//! - [`probe`]: a fixed convolution that checks a device computes correctly.

pub mod classify;
pub mod diffusion;
pub mod grain;
pub mod probe;
pub mod realism;
pub mod tagger;
pub mod unet;
pub mod weights;

/// Runs a future to completion on this thread, for native devices (CPU, Vulkan, CUDA), whose
/// tensor reads resolve without waiting on an event loop; a busy poll finishes promptly. Never
/// call it in the browser: WebGPU reads need the event loop to run.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
