//! The Synthscope browser workbench (Leptos, client-side rendered, built by trunk).
//!
//! - [`worker`]: the compute worker (its own binary, `src/bin/synthscope-worker.rs`): every
//!   model and image pipeline runs there, so the page never freezes. [`compute`] is the page's
//!   side of it and [`protocol`] the messages between them.
//! - [`runtime`]: picks burn's WebGPU device when the browser has an adapter, else the CPU
//!   (`flex`) device, and proves the choice with a probe convolution compared across devices.
//! - [`pages::generate`]: the Generate page: physics controls, preview canvas, ground-truth
//!   overlay, batch download as a zip.
//! - [`pages::segment`]: the Segment page: TEM images in, grain boundaries (edge fusion, Net1,
//!   Net2 refinement) and grain statistics out.
//! - [`pages::classify`]: the Classify page: scattering images in; tag probabilities, realism
//!   votes, mask and beam centre (editable), I(q) and I(χ) out.
//! - [`pages::annotate`]: the Annotate page: experts label stored images with the keyboard;
//!   annotation packs and label exports in and out. [`store`] keeps images, labels, predictions
//!   and packs in IndexedDB, every label in its own committed transaction.
//! - [`pages::dataset`]: the Dataset page: inter-annotator agreement, consensus, images to
//!   review, and the training-set export for `synthscope train realism --labels`.
//! - [`rounds`]: the human-in-the-loop rounds: which realism model the app uses (shipped or an
//!   imported fine-tuned file), predictions with embeddings, the store-changed signal.
//! - [`weights`]: model weights fetched once with progress, SHA-256 checked, cached offline.
//! - [`browser`]: small wrappers over browser APIs (canvas, downloads, yielding to the event loop).
//!
//! Nothing a user generates or uploads leaves the browser. The crate is empty on native targets
//! (so `cargo test --workspace` never builds the browser backend); its logic that can be tested
//! natively lives in the core crates.
#![cfg(target_arch = "wasm32")]

pub mod browser;
pub mod compute;
pub mod pages;
pub mod protocol;
pub mod rounds;
pub mod runtime;
pub mod store;
pub mod weights;
pub mod worker;

use leptos::prelude::*;

/// The page named by the URL fragment (`#generate`, `#segment`, `#classify`, `#annotate`, `#dataset`).
fn page_from_hash() -> String {
    let hash = web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default();
    match hash.trim_start_matches('#') {
        "segment" => "segment".into(),
        "classify" => "classify".into(),
        "annotate" => "annotate".into(),
        "dataset" => "dataset".into(),
        _ => "generate".into(),
    }
}

/// The application shell: header with navigation and the ML runtime status, then the pages.
/// Every page stays mounted (hidden when not shown) so its state survives navigation.
#[component]
pub fn App() -> impl IntoView {
    let compute = compute::Compute::start();
    let status = compute.status;
    // A fine-tuned realism model imported earlier is handed to the worker again.
    {
        let compute = compute.clone();
        leptos::task::spawn_local(async move {
            if let Err(e) = rounds::restore(&compute).await {
                web_sys::console::error_1(&e.into());
            }
        });
    }
    let context: compute::ComputeContext = StoredValue::new_local(compute);
    provide_context(context);
    let epoch: rounds::StoreEpoch = RwSignal::new(0);
    provide_context(epoch);
    let focus: rounds::Focus = RwSignal::new(None);
    provide_context(focus);
    let page = RwSignal::new(page_from_hash());
    let handle = window_event_listener(leptos::ev::hashchange, move |_| page.set(page_from_hash()));
    on_cleanup(move || handle.remove());
    let inbox: pages::segment::Inbox = RwSignal::new_local(Vec::new());
    provide_context(inbox);
    let classify_inbox: pages::classify::Inbox = RwSignal::new_local(Vec::new());
    provide_context(classify_inbox);
    // The Dataset page re-reads the label store each time it is shown.
    let dataset_visits = RwSignal::new(0usize);
    Effect::new(move |_| {
        if page.get() == "dataset" {
            dataset_visits.update(|n| *n += 1);
        }
    });
    let link = move |id: &'static str, label: &'static str| {
        view! { <a href=format!("#{id}") id=format!("nav-{id}") class=move || if page.get() == id { "active" } else { "" }>{label}</a> }
    };
    let shown = move |id: &'static str| move || if page.get() == id { "" } else { "display:none" };
    view! {
        <header class="topbar">
            <div class="brand">"Synthscope"</div>
            <nav>
                {link("generate", "Generate")}
                {link("segment", "Segment")}
                {link("classify", "Classify")}
                {link("annotate", "Annotate")}
                {link("dataset", "Dataset")}
            </nav>
            <runtime::StatusBadge status=status />
        </header>
        <main>
            <div style=shown("generate")><pages::generate::GeneratePage /></div>
            <div style=shown("segment")><pages::segment::SegmentPage /></div>
            <div style=shown("classify")><pages::classify::ClassifyPage /></div>
            <div style=shown("annotate")><pages::annotate::AnnotatePage /></div>
            <div style=shown("dataset")><pages::dataset::DatasetPage visits=dataset_visits.read_only() /></div>
        </main>
        <footer>
            "Everything runs in this browser tab; nothing you generate or upload is sent anywhere."
        </footer>
    }
}
