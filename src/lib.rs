//! The Synthscope browser workbench (Leptos, client-side rendered, built by trunk).
//!
//! - [`runtime`]: picks burn's WebGPU device when the browser has an adapter, else the CPU
//!   (`flex`) device, and proves the choice with a probe convolution compared across devices.
//! - [`pages::generate`]: the Generate page: physics controls, preview canvas, ground-truth
//!   overlay, batch download as a zip.
//! - [`browser`]: small wrappers over browser APIs (canvas, downloads, yielding to the event loop).
//!
//! Nothing a user generates or uploads leaves the browser. The crate is empty on native targets
//! (so `cargo test --workspace` never builds the browser backend); its logic that can be tested
//! natively lives in the core crates.
#![cfg(target_arch = "wasm32")]

pub mod browser;
pub mod pages;
pub mod runtime;

use leptos::prelude::*;

/// The application shell: header with the ML runtime status, then the Generate page.
#[component]
pub fn App() -> impl IntoView {
    let status = runtime::start();
    view! {
        <header class="topbar">
            <div class="brand">"Synthscope"</div>
            <nav>
                <a class="active" href="#generate">"Generate"</a>
            </nav>
            <runtime::StatusBadge status=status />
        </header>
        <main>
            <pages::generate::GeneratePage />
        </main>
        <footer>
            "Everything runs in this browser tab; nothing you generate or upload is sent anywhere."
        </footer>
    }
}
