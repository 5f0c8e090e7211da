//! Thin wrappers over browser APIs used by the pages.

use wasm_bindgen::{JsCast, JsValue};

// The one unsafe item in the project: a linker-provided function has no safe declaration.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
unsafe extern "C" {
    /// Synthesised by the wasm linker: runs every static constructor (cubecl registers its IR
    /// dialects through `inventory`, which uses them).
    fn __wasm_call_ctors();
}

/// Runs the static constructors once. Call it first thing in `main`.
///
/// Why: a module whose code never calls `__wasm_call_ctors` gets "command-style" linkage, and
/// the linker then wraps *every* export in a call to it. wasm-bindgen calls exports for each
/// JS object handed to Rust, so every DOM operation re-ran all of cubecl's registrations:
/// building the Segment page's results took ≈ 0.4 s of main-thread time that way. One
/// explicit call switches the linker to running them only here.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
pub fn run_static_constructors() {
    // SAFETY: the linker-made function only runs the constructors; `main` calls this once,
    // before any code reads a registry the constructors fill.
    unsafe { __wasm_call_ctors() }
}

/// The global scope this code runs in: the page's window or the compute worker's scope. The
/// APIs both share (timers, `fetch`, Cache Storage, `performance`) go through it.
pub enum Scope {
    /// The page (UI thread).
    Window(web_sys::Window),
    /// A dedicated worker.
    Worker(web_sys::WorkerGlobalScope),
}

impl Scope {
    /// The current global scope, if it is a window or a worker.
    pub fn current() -> Option<Self> {
        let global = js_sys::global();
        if let Some(w) = global.dyn_ref::<web_sys::Window>() {
            return Some(Scope::Window(w.clone()));
        }
        global
            .dyn_into::<web_sys::WorkerGlobalScope>()
            .ok()
            .map(Scope::Worker)
    }

    /// `performance`, where available.
    pub fn performance(&self) -> Option<web_sys::Performance> {
        match self {
            Scope::Window(w) => w.performance(),
            Scope::Worker(w) => w.performance(),
        }
    }

    /// `fetch(url)`.
    pub fn fetch(&self, url: &str) -> js_sys::Promise {
        match self {
            Scope::Window(w) => w.fetch_with_str(url),
            Scope::Worker(w) => w.fetch_with_str(url),
        }
    }

    /// Cache Storage (`caches`), unavailable in some private modes.
    pub fn caches(&self) -> Option<web_sys::CacheStorage> {
        match self {
            Scope::Window(w) => w.caches().ok(),
            Scope::Worker(w) => w.caches().ok(),
        }
    }

    /// `navigator`, as a plain object (window and worker navigators differ in type).
    pub fn navigator(&self) -> JsValue {
        match self {
            Scope::Window(w) => w.navigator().into(),
            Scope::Worker(w) => w.navigator().into(),
        }
    }

    fn set_timeout(&self, f: &js_sys::Function, ms: i32) {
        let _ = match self {
            Scope::Window(w) => w.set_timeout_with_callback_and_timeout_and_arguments_0(f, ms),
            Scope::Worker(w) => w.set_timeout_with_callback_and_timeout_and_arguments_0(f, ms),
        };
    }
}

/// Milliseconds since the page (or worker) started (`performance.now()`).
pub fn now_ms() -> f64 {
    Scope::current()
        .and_then(|s| s.performance())
        .map_or(0.0, |p| p.now())
}

/// The current time, RFC 3339 (UTC, milliseconds).
pub fn now_rfc3339() -> String {
    String::from(js_sys::Date::new_0().to_iso_string())
}

/// Resolves after `ms` milliseconds (`setTimeout`), letting the browser paint and handle input.
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(s) = Scope::current() {
            s.set_timeout(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Lets the browser paint and handle input: resolves on the next macrotask (`setTimeout 0`).
pub async fn yield_now() {
    sleep_ms(0).await;
}

/// Draws RGBA bytes (`width × height × 4`) onto `canvas`, resizing it to the image.
pub fn put_rgba(
    canvas: &web_sys::HtmlCanvasElement,
    width: u32,
    height: u32,
    rgba: &[u8],
) -> Result<web_sys::CanvasRenderingContext2d, String> {
    canvas.set_width(width);
    canvas.set_height(height);
    let ctx = canvas
        .get_context("2d")
        .map_err(|e| format!("{e:?}"))?
        .ok_or("the canvas has no 2D context")?
        .dyn_into::<web_sys::CanvasRenderingContext2d>()
        .map_err(|_| "unexpected canvas context type")?;
    let data = web_sys::ImageData::new_with_u8_clamped_array_and_sh(
        wasm_bindgen::Clamped(rgba),
        width,
        height,
    )
    .map_err(|e| format!("{e:?}"))?;
    ctx.put_image_data(&data, 0.0, 0.0)
        .map_err(|e| format!("{e:?}"))?;
    Ok(ctx)
}

/// Offers `bytes` to the user as a file download named `file_name`.
pub fn download(bytes: &[u8], file_name: &str, mime: &str) -> Result<(), String> {
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array.buffer());
    let props = web_sys::BlobPropertyBag::new();
    props.set_type(mime);
    let blob = web_sys::Blob::new_with_buffer_source_sequence_and_options(&parts, &props)
        .map_err(|e| format!("{e:?}"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| format!("{e:?}"))?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a = document
        .create_element("a")
        .map_err(|e| format!("{e:?}"))?
        .dyn_into::<web_sys::HtmlAnchorElement>()
        .map_err(|_| "not an anchor")?;
    a.set_href(&url);
    a.set_download(file_name);
    a.click();
    // Revoke later: revoking at once can cancel the download in some browsers.
    let revoke = wasm_bindgen::closure::Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    if let Some(w) = web_sys::window() {
        let _ =
            w.set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 60_000);
    }
    Ok(())
}

/// A readable message from a JS exception.
pub fn js_error(e: &JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// The names and bytes of the files of an `<input type=file>` or a drop, in order; a file that
/// cannot be read comes back empty (the decoder then says so).
pub async fn read_files(files: web_sys::FileList) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..files.length() {
        let Some(file) = files.get(i) else { continue };
        let bytes = match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
            Ok(buf) => js_sys::Uint8Array::new(&buf).to_vec(),
            Err(_) => Vec::new(),
        };
        out.push((file.name(), bytes));
    }
    out
}

/// The file input an `on:change` event came from.
pub fn input_of(ev: &web_sys::Event) -> Option<web_sys::HtmlInputElement> {
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
}

/// The first file chosen in `input`, read whole: `None` when nothing was chosen; an error for
/// a file over `max_bytes` (refused before it is read) or one that cannot be read.
pub async fn read_one(
    input: &web_sys::HtmlInputElement,
    max_bytes: u64,
) -> Option<Result<(String, Vec<u8>), String>> {
    let file = input.files()?.get(0)?;
    if file.size() > max_bytes as f64 {
        return Some(Err(format!(
            "{}: {:.1} MiB is more than the {} MiB this app reads at once. Nothing was imported.",
            file.name(),
            file.size() / f64::from(1u32 << 20),
            max_bytes >> 20
        )));
    }
    let bytes = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
        .await
        .map(|b| js_sys::Uint8Array::new(&b).to_vec())
        .map_err(|e| format!("{}: cannot read the file ({})", file.name(), js_error(&e)));
    Some(bytes.map(|b| (file.name(), b)))
}

/// An HTTP request from the page (`fetch`): `method` on `url` with an optional body. Resolves
/// to the status and the response's bytes; a network failure (nothing listening, CORS refused)
/// is an error naming the URL.
pub async fn http(
    method: &str,
    url: &str,
    body: Option<(&[u8], &str)>,
) -> Result<(u16, Vec<u8>), String> {
    let window = web_sys::window().ok_or("no window")?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some((bytes, content_type)) = body {
        let array = js_sys::Uint8Array::from(bytes);
        init.set_body(&array);
        let headers = web_sys::Headers::new().map_err(|e| js_error(&e))?;
        headers
            .set("content-type", content_type)
            .map_err(|e| js_error(&e))?;
        init.set_headers(&headers);
    }
    let response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| format!("{url} did not answer ({})", js_error(&e)))?;
    let response: web_sys::Response = response
        .dyn_into()
        .map_err(|_| format!("{url}: not an HTTP response"))?;
    let buffer = response.array_buffer().map_err(|e| js_error(&e))?;
    let buffer = wasm_bindgen_futures::JsFuture::from(buffer)
        .await
        .map_err(|e| format!("{url}: the answer was cut off ({})", js_error(&e)))?;
    Ok((response.status(), js_sys::Uint8Array::new(&buffer).to_vec()))
}
