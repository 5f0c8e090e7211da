//! Entry point of the compute worker (see `synthscope_web::worker`). trunk builds it as a web
//! worker (`data-type="worker"` in index.html); the page starts it.

#[cfg(target_arch = "wasm32")]
fn main() {
    synthscope_web::browser::run_static_constructors();
    synthscope_web::worker::run();
}

/// The worker only exists on wasm32; natively this binary does nothing.
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("synthscope-worker is the browser app's compute worker: build it with `trunk build`");
}
