//! burn device selection in the browser, and the probe that proves it computes correctly.
//!
//! On start the app asks `navigator.gpu.requestAdapter()`. With an adapter it initialises burn's
//! WebGPU device asynchronously, otherwise it uses the pure-Rust CPU device (`flex`). Either way
//! it runs the probe convolution of [`models::probe`] on the active device and on the CPU device
//! and reports the largest difference, so a broken GPU path is visible, not silent.

use burn::tensor::Device;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Which burn backend is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq)]
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

/// The device the app computes on, once chosen.
#[derive(Clone)]
pub struct ActiveDevice(pub Device);

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// `navigator.gpu.requestAdapter()`: `Ok(Some(description))` with an adapter, `Ok(None)` without.
async fn request_adapter() -> Result<Option<String>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let gpu = js_sys::Reflect::get(&window.navigator(), &"gpu".into())
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

async fn detect() -> (Status, Option<ActiveDevice>) {
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
                            Some(ActiveDevice(gpu)),
                        )
                    }
                    Err(e) => (
                        cpu_status(format!("WebGPU probe failed ({e}); using the CPU")),
                        Some(ActiveDevice(cpu)),
                    ),
                }
            }
            Err(e) => (
                cpu_status(format!("WebGPU device init failed ({e:?}); using the CPU")),
                Some(ActiveDevice(cpu)),
            ),
        },
        Ok(None) => (
            cpu_status("no WebGPU adapter in this browser".into()),
            Some(ActiveDevice(cpu)),
        ),
        Err(e) => (
            cpu_status(format!("WebGPU unavailable ({e})")),
            Some(ActiveDevice(cpu)),
        ),
    }
}

/// Starts device detection in the background and returns its status signal. The active device
/// is provided as context for later pages once known.
pub fn start() -> ReadSignal<Status> {
    let (status, set_status) = signal(Status::Starting);
    let device: RwSignal<Option<ActiveDevice>, LocalStorage> = RwSignal::new_local(None);
    provide_context(device);
    leptos::task::spawn_local(async move {
        let (s, d) = detect().await;
        if let Status::Ready {
            backend,
            probe_max_abs_diff,
            ..
        } = &s
        {
            web_sys::console::log_1(
                &format!(
                    "synthscope: backend {} probe max |Δ| {probe_max_abs_diff:e}",
                    backend.id()
                )
                .into(),
            );
        }
        device.set(d);
        set_status.set(s);
    });
    status
}

/// The runtime badge in the header. Carries `data-backend` and `data-probe-max-diff` for tests.
#[component]
pub fn StatusBadge(
    /// The start-up status from [`start`].
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
