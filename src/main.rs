//! Entry point of the web app: mounts [`synthscope_web::App`]. Everything else lives in the
//! library so it can be tested.

#[cfg(target_arch = "wasm32")]
fn main() {
    synthscope_web::browser::run_static_constructors();
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(synthscope_web::App);
}

/// The web app only exists on wasm32; natively this binary does nothing.
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("synthscope-web is the browser app: build it with `trunk build` (see README.md)");
}
