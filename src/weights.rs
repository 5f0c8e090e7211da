//! Model weights: fetched once with progress, checked against the SHA-256 recorded at build
//! time, and kept in Cache Storage so later visits work offline. Runs in the compute worker.

use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::browser::{Scope, js_error};
use crate::protocol::WeightsSource as Source;

/// Weights shipped with the app: where they are served and the `sha256sum` line recorded when
/// they were trained.
pub struct Shipped {
    /// The model's name and version, as the pages show it.
    pub name: &'static str,
    /// URL relative to the app.
    pub url: &'static str,
    sha256_line: &'static str,
}

impl Shipped {
    /// The expected lower-case hex SHA-256.
    pub fn sha256(&self) -> &'static str {
        self.sha256_line
            .split_whitespace()
            .next()
            .unwrap_or_default()
    }
}

/// The grain networks (Net1, Net2).
pub const GRAIN: Shipped = Shipped {
    name: "grain-v1",
    url: "public/models/grain-v1.bin",
    sha256_line: include_str!("../public/models/grain-v1.bin.sha256"),
};

/// The scattering taggers (image, coefficient and joint views).
pub const TAGGER: Shipped = Shipped {
    name: "tagger-v12",
    url: "public/models/tagger-v12.bin",
    sha256_line: include_str!("../public/models/tagger-v12.bin.sha256"),
};

/// The realism ensemble.
pub const REALISM: Shipped = Shipped {
    name: "realism-v2",
    url: "public/models/realism-v2.bin",
    sha256_line: include_str!("../public/models/realism-v2.bin.sha256"),
};

/// The tag-conditioned scattering generator (diffusion).
pub const DIFFUSION: Shipped = Shipped {
    name: "diffusion-v3",
    url: "public/models/diffusion-v3.bin",
    sha256_line: include_str!("../public/models/diffusion-v3.bin.sha256"),
};

/// The mask-conditioned TEM micrograph generator (diffusion).
pub const TEM_DIFFUSION: Shipped = Shipped {
    name: "tem-diffusion-v1",
    url: "public/models/tem-diffusion-v1.bin",
    sha256_line: include_str!("../public/models/tem-diffusion-v1.bin.sha256"),
};

/// Cache Storage bucket for weights; bump the suffix to drop every cached file.
const CACHE_NAME: &str = "synthscope-models-v1";

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn open_cache() -> Option<web_sys::Cache> {
    let caches = Scope::current()?.caches()?;
    let cache = JsFuture::from(caches.open(CACHE_NAME)).await.ok()?;
    cache.dyn_into::<web_sys::Cache>().ok()
}

async fn response_bytes(response: &web_sys::Response) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(response.array_buffer().map_err(|e| js_error(&e))?)
        .await
        .map_err(|e| js_error(&e))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Reads a response body chunk by chunk, reporting `(bytes so far, total if known)`.
async fn read_with_progress(
    response: &web_sys::Response,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<Vec<u8>, String> {
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    let Some(body) = response.body() else {
        return response_bytes(response).await;
    };
    let reader = body
        .get_reader()
        .dyn_into::<web_sys::ReadableStreamDefaultReader>()
        .map_err(|_| "the download stream has no reader".to_string())?;
    let mut out = Vec::with_capacity(total.unwrap_or(0) as usize);
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| js_error(&e))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).unwrap_or(JsValue::UNDEFINED);
        out.extend(js_sys::Uint8Array::new(&value).to_vec());
        progress(out.len() as u64, total);
    }
    Ok(out)
}

/// Fetches `url` unless Cache Storage holds a copy whose SHA-256 is `expected`; verifies the
/// download and caches it. A cached copy that fails the check is replaced.
pub async fn fetch_verified(
    url: &str,
    expected: &str,
    progress: &dyn Fn(u64, Option<u64>),
) -> Result<(Vec<u8>, Source), String> {
    let cache = open_cache().await;
    if let Some(cache) = &cache
        && let Ok(hit) = JsFuture::from(cache.match_with_str(url)).await
        && let Ok(response) = hit.dyn_into::<web_sys::Response>()
        && let Ok(bytes) = response_bytes(&response).await
    {
        if sha256_hex(&bytes) == expected {
            return Ok((bytes, Source::Cache));
        }
        let _ = JsFuture::from(cache.delete_with_str(url)).await;
    }
    let scope = Scope::current().ok_or("no window or worker scope to fetch from")?;
    let response = JsFuture::from(scope.fetch(url))
        .await
        .map_err(|e| format!("could not download {url}: {}", js_error(&e)))?
        .dyn_into::<web_sys::Response>()
        .map_err(|_| "fetch returned something other than a response".to_string())?;
    if !response.ok() {
        return Err(format!(
            "could not download {url}: HTTP {} {}",
            response.status(),
            response.status_text()
        ));
    }
    let bytes = read_with_progress(&response, progress).await?;
    let digest = sha256_hex(&bytes);
    if digest != expected {
        return Err(format!(
            "the downloaded weights {url} are damaged (SHA-256 {digest}, expected {expected}); reload the page"
        ));
    }
    if let Some(cache) = &cache {
        let array = js_sys::Uint8Array::from(bytes.as_slice());
        if let Ok(copy) = web_sys::Response::new_with_opt_buffer_source(Some(&array)) {
            // Failing to cache (quota, private mode) only costs a download next time.
            let _ = JsFuture::from(cache.put_with_str(url, &copy)).await;
        }
    }
    Ok((bytes, Source::Network))
}
