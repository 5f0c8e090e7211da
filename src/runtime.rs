//! burn device selection in the browser, the probe that proves it computes correctly, and the
//! badge that shows the result.
//!
//! On start the compute worker ([`crate::worker`]) asks `navigator.gpu.requestAdapter()`. With an
//! adapter it initialises burn's WebGPU device asynchronously, otherwise it uses the pure-Rust CPU
//! device (`flex`). Either way it runs the probe convolution of [`models::probe`] on the active
//! device and on the CPU device and reports the largest difference, so a broken GPU path is
//! visible, not silent. The page shows the [`Status`] it sends in [`StatusBadge`].

use burn::tensor::Device;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Which burn backend is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// burn's wgpu backend on the browser's WebGPU adapter.
    WebGpu,
    /// burn's pure-Rust `flex` CPU backend.
    Cpu,
}

impl Backend {
    /// Stable identifier used in the DOM (`data-backend`).
    pub fn id(self) -> &'static str {
        match self {
            Backend::WebGpu => "webgpu",
            Backend::Cpu => "cpu",
        }
    }
}

/// What the start-up check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Status {
    /// Still initialising.
    Starting,
    /// A backend is active and the probe ran.
    Ready {
        /// Active backend.
        backend: Backend,
        /// Adapter description, or why the CPU is used.
        detail: String,
        /// Largest |active − CPU| over the probe's outputs.
        probe_max_abs_diff: f32,
        /// Probe time on the active device in ms.
        probe_ms: f64,
    },
    /// Nothing works (the CPU probe itself failed).
    Failed(String),
}

use crate::browser::{Scope, now_ms};

/// `navigator.gpu.requestAdapter()`: `Ok(Some(description))` with an adapter, `Ok(None)` without.
async fn request_adapter() -> Result<Option<String>, String> {
    let scope = Scope::current().ok_or("no window or worker scope")?;
    let gpu = js_sys::Reflect::get(&scope.navigator(), &"gpu".into())
        .map_err(|_| "navigator.gpu unreadable")?;
    if gpu.is_undefined() || gpu.is_null() {
        return Ok(None);
    }
    let request = js_sys::Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or("navigator.gpu.requestAdapter is not a function")?;
    let promise = request
        .call0(&gpu)
        .map_err(|e| format!("requestAdapter threw: {e:?}"))?;
    let adapter = JsFuture::from(js_sys::Promise::from(promise))
        .await
        .map_err(|e| format!("requestAdapter failed: {e:?}"))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Ok(None);
    }
    // GPUAdapter.info (vendor, architecture, description) where the browser exposes it.
    let info =
        js_sys::Reflect::get(&adapter, &"info".into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
    let field = |k: &str| {
        js_sys::Reflect::get(&info, &k.into())
            .ok()
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty())
    };
    let text = [field("vendor"), field("architecture"), field("description")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Some(if text.is_empty() {
        "WebGPU adapter".to_string()
    } else {
        text
    }))
}

async fn probe_values(device: &Device) -> Result<Vec<f32>, String> {
    let data = models::probe::probe_conv(device)
        .into_data_async()
        .await
        .map_err(|e| format!("reading the probe failed: {e:?}"))?;
    data.try_into_vec::<f32>()
        .map_err(|e| format!("probe output is not f32: {e:?}"))
}

/// Chooses the device (WebGPU when an adapter works, else the CPU) and probes it.
pub async fn detect() -> (Status, Option<Device>) {
    let cpu = Device::flex();
    let reference = match probe_values(&cpu).await {
        Ok(v) => v,
        Err(e) => return (Status::Failed(format!("the CPU backend failed: {e}")), None),
    };
    let cpu_diff = models::probe::max_abs_diff(&reference, &models::probe::probe_reference());
    let cpu_status = |detail: String| Status::Ready {
        backend: Backend::Cpu,
        detail,
        probe_max_abs_diff: cpu_diff,
        probe_ms: 0.0,
    };
    match request_adapter().await {
        Ok(Some(adapter)) => match Device::wgpu_options().init_async().await {
            Ok(gpu) => {
                let t0 = now_ms();
                match probe_values(&gpu).await {
                    Ok(values) => {
                        let diff = models::probe::max_abs_diff(&values, &reference);
                        (
                            Status::Ready {
                                backend: Backend::WebGpu,
                                detail: adapter,
                                probe_max_abs_diff: diff,
                                probe_ms: now_ms() - t0,
                            },
                            Some(gpu),
                        )
                    }
                    Err(e) => (
                        cpu_status(format!("WebGPU probe failed ({e}); using the CPU")),
                        Some(cpu),
                    ),
                }
            }
            Err(e) => (
                cpu_status(format!("WebGPU device init failed ({e:?}); using the CPU")),
                Some(cpu),
            ),
        },
        Ok(None) => (
            cpu_status("no WebGPU adapter in this browser".into()),
            Some(cpu),
        ),
        Err(e) => (cpu_status(format!("WebGPU unavailable ({e})")), Some(cpu)),
    }
}

/// The runtime badge in the header. Carries `data-backend` and `data-probe-max-diff` for tests.
#[component]
pub fn StatusBadge(
    /// The start-up status sent by the compute worker.
    status: ReadSignal<Status>,
) -> impl IntoView {
    move || {
        match status.get() {
        Status::Starting => view! { <div class="badge starting" data-backend="pending">"ML runtime: starting…"</div> }.into_any(),
        Status::Ready { backend, detail, probe_max_abs_diff, probe_ms } => {
            let ok = probe_max_abs_diff < 1e-4;
            let label = match backend {
                Backend::WebGpu => "WebGPU",
                Backend::Cpu => "CPU",
            };
            let title = format!("{detail}. Probe convolution: max |Δ| vs CPU = {probe_max_abs_diff:.1e}, {probe_ms:.0} ms");
            view! {
                <div
                    class=if ok { "badge ready" } else { "badge mismatch" }
                    data-backend=backend.id()
                    data-probe-max-diff=probe_max_abs_diff.to_string()
                    title=title
                >
                    "ML runtime: " <strong>{label}</strong>
                    <span class="detail">{format!(" · {detail} · probe {}", if ok { "✓" } else { "MISMATCH" })}</span>
                </div>
            }
            .into_any()
        }
        Status::Failed(e) => view! { <div class="badge failed" data-backend="none">{format!("ML runtime failed: {e}")}</div> }.into_any(),
    }
    }
}
