//! Thin wrappers over browser APIs used by the pages.

use wasm_bindgen::{JsCast, JsValue};

/// Milliseconds since the page started loading (`performance.now()`).
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Lets the browser paint and handle input: resolves on the next macrotask (`setTimeout 0`).
pub async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
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
