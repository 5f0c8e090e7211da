//! The Segment page: TEM micrographs in, grain boundaries and grain statistics out.
//!
//! Images come from file uploads (several at once, or dropped on the page) or from the Generate
//! page. Each runs through decoding, edge fusion, Net1 and Net2's refinement in the compute
//! worker ([`crate::worker`]), so the page stays responsive whatever the image size, and shows
//! each stage as it starts. A file that cannot be read gets a message; earlier results stay.

use std::rc::Rc;

use imaging::Image;
use imaging::display::{Colormap, Scale, overlay_mask, render_rgba};
use imaging::grains::{GrainStats, grain_stats};
use leptos::prelude::*;

use crate::browser;
use crate::compute::{ComputeContext, Segmented};
use crate::pages::queue::{
    DropTarget, FileChooser, FileQueue, Outcome, QueueList, QueueStatus, State,
};
use crate::protocol::{ModelState, WeightsSource};
use crate::weights;

pub use crate::compute::SegmentSource as IncomingSource;

/// An image waiting to be segmented, from an upload or the Generate page.
#[derive(Clone)]
pub struct Incoming {
    /// File name shown in the list and used for downloads.
    pub name: String,
    /// The file's bytes (decoded in the worker), or an already decoded image.
    pub source: IncomingSource,
    /// Ground-truth boundaries, when the image was generated.
    pub truth: Option<Vec<bool>>,
}

/// Images handed over by other pages; the Segment page drains it.
pub type Inbox = RwSignal<Vec<Incoming>, LocalStorage>;

impl Outcome for Segmented {
    fn summary(&self) -> String {
        format!(
            "{} grains, {} iterations",
            self.labels.count, self.header.iterations
        )
    }

    fn notice(&self) -> Option<String> {
        self.header.notice.clone()
    }
}

fn stem(name: &str) -> String {
    name.rsplit_once('.')
        .map_or(name, |(s, _)| s)
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Per-grain rows: id, area, ECD (px and nm), border contact.
fn stats_csv(s: &Segmented, stats: &GrainStats) -> String {
    let filled = s.labels.filled();
    let areas = filled.areas_px();
    let border = filled.touches_border();
    let mut out = String::from("grain_id,area_px,ecd_px,ecd_nm,touches_border\n");
    for (i, (&a, &b)) in areas.iter().zip(&border).enumerate() {
        let d = imaging::grains::ecd(a as f64);
        let nm = stats
            .pixel_size_nm
            .map(|p| format!("{:.3}", d * p))
            .unwrap_or_default();
        out.push_str(&format!("{},{a},{d:.3},{nm},{b}\n", i + 1));
    }
    out
}

fn draw_to(canvas: Option<web_sys::HtmlCanvasElement>, w: usize, h: usize, rgba: &[u8]) {
    if let Some(c) = canvas {
        let _ = browser::put_rgba(&c, w as u32, h as u32, rgba);
    }
}

/// The Segment page.
#[component]
pub fn SegmentPage() -> impl IntoView {
    let inbox = use_context::<Inbox>();
    let compute = use_context::<ComputeContext>();
    // One image at a time in the worker: decoding, edge fusion, Net1, Net2.
    let queue = FileQueue::new(move |incoming: Incoming, (), progress| async move {
        let compute = compute
            .map(|c| c.get_value())
            .ok_or("no compute worker (a bug: please report it)")?;
        compute
            .segment(incoming.source, incoming.truth.as_deref(), move |s| {
                progress(s)
            })
            .await
    });
    let (items, selected) = (queue.items, queue.selected);
    let pixel_size_nm = RwSignal::new(String::new());
    let opacity = RwSignal::new(0.8f64);

    let input_ref = NodeRef::<leptos::html::Canvas>::new();
    let edges_ref = NodeRef::<leptos::html::Canvas>::new();
    let net1_ref = NodeRef::<leptos::html::Canvas>::new();
    let overlay_ref = NodeRef::<leptos::html::Canvas>::new();

    let enqueue = move |new: Vec<Incoming>| {
        for incoming in new {
            queue.add(incoming.name.clone(), incoming, ());
        }
    };
    // Images sent from the Generate page.
    if let Some(inbox) = inbox {
        Effect::new(move |_| {
            let new = inbox.get();
            if !new.is_empty() {
                inbox.set(Vec::new());
                enqueue(new);
            }
        });
    }
    let on_files = Callback::new(move |files: Vec<(String, Vec<u8>)>| {
        for (name, bytes) in files {
            let source = IncomingSource::File(Rc::new(bytes));
            queue.add(
                name.clone(),
                Incoming {
                    name,
                    source,
                    truth: None,
                },
                (),
            );
        }
    });
    let current = move || queue.current().map(|(_, s)| s);
    let pixel_nm = move || {
        pixel_size_nm
            .get()
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|p| *p > 0.0 && p.is_finite())
    };
    let stats = Memo::new(move |_| current().map(|s| grain_stats(&s.mask, &s.labels, pixel_nm())));

    // Draw the four views when the selection changes; the overlay also on opacity changes.
    Effect::new(move |_| {
        let Some(s) = current() else { return };
        let (w, h) = (s.header.width, s.header.height);
        draw_to(
            input_ref.get(),
            w,
            h,
            &render_rgba(&s.gray, Scale::Linear, Colormap::Gray),
        );
        draw_to(edges_ref.get(), w, h, &s.edges_rgba);
        let p = Image::from_vec(w, h, s.net1_probability.clone());
        if let Ok(p) = p {
            draw_to(
                net1_ref.get(),
                w,
                h,
                &render_rgba(&p, Scale::Linear, Colormap::Inferno),
            );
        }
    });
    Effect::new(move |_| {
        let alpha = opacity.get() as f32;
        let Some(s) = current() else { return };
        let mut rgba = render_rgba(&s.gray, Scale::Linear, Colormap::Gray);
        overlay_mask(&mut rgba, &s.mask, [255, 70, 70], alpha);
        draw_to(overlay_ref.get(), s.header.width, s.header.height, &rgba);
    });

    let download = move |kind: &'static str| {
        let (Some(s), Some(st)) = (current(), stats.get_untracked()) else {
            return;
        };
        let name = selected
            .get_untracked()
            .and_then(|id| {
                items.with_untracked(|v| v.iter().find(|it| it.id == id).map(|it| stem(&it.name)))
            })
            .unwrap_or_else(|| "image".into());
        let result = match kind {
            "mask" => Image::from_vec(
                s.header.width,
                s.header.height,
                s.mask.iter().map(|&b| if b { 255u8 } else { 0 }).collect(),
            )
            .map_err(|e| e.to_string())
            .and_then(|m| imaging::codec::encode_png_u8(&m).map_err(|e| e.to_string()))
            .and_then(|b| browser::download(&b, &format!("{name}_boundary.png"), "image/png")),
            "grains" => {
                let filled = s.labels.filled();
                if filled.count > usize::from(u16::MAX) {
                    Err("more than 65 535 grains do not fit a 16-bit grain map".to_string())
                } else {
                    Image::from_vec(
                        s.header.width,
                        s.header.height,
                        filled.ids.iter().map(|&i| i as u16).collect(),
                    )
                    .map_err(|e| e.to_string())
                    .and_then(|m| imaging::codec::encode_png_u16(&m).map_err(|e| e.to_string()))
                    .and_then(|b| browser::download(&b, &format!("{name}_grains.png"), "image/png"))
                }
            }
            "csv" => browser::download(
                stats_csv(&s, &st).as_bytes(),
                &format!("{name}_grains.csv"),
                "text/csv",
            ),
            _ => {
                let json = serde_json::json!({
                    "file": name,
                    "iterations": s.header.iterations,
                    "converged": s.header.converged,
                    "model_sha256": weights::GRAIN.sha256(),
                    "stage_ms": s.header.stage_ms.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
                    "stats": st,
                });
                browser::download(
                    json.to_string().as_bytes(),
                    &format!("{name}_stats.json"),
                    "application/json",
                )
            }
        };
        if let Err(e) = result
            && let Some(id) = selected.get_untracked()
        {
            queue.set_state(id, State::Failed(format!("download failed: {e}")));
        }
    };

    view! {
        <DropTarget page="segment" on_files=on_files>
            <aside class="controls">
                <section>
                    <h2>"Images"</h2>
                    <FileChooser prefix="segment" on_files=on_files
                        accept=".png,.tif,.tiff,.jpg,.jpeg,image/png,image/tiff,image/jpeg"
                        hint="Choose TEM images or drop them here (PNG, TIFF 8/16-bit or float, JPEG)" />
                    <label class="field">
                        <span>"Pixel size (nm)"</span>
                        <input id="pixel-size" type="number" min="0" step="any" placeholder="optional"
                            prop:value=move || pixel_size_nm.get()
                            on:input=move |ev| pixel_size_nm.set(event_target_value(&ev)) />
                    </label>
                    {compute.map(|c| view! { <ModelStatus model=c.get_value().model /> })}
                </section>
                <section>
                    <h2>"Queue"</h2>
                    <QueueList queue=queue prefix="segment"
                        empty="No images yet. Use the Generate page's “Segment this image”, or choose files." />
                </section>
            </aside>
            <section class="viewer">
                <QueueStatus queue=queue prefix="segment" />
                <Show when=move || current().is_some()>
                    <div class="views">
                        <figure><figcaption>"Input"</figcaption><canvas id="seg-input" node_ref=input_ref></canvas></figure>
                        <figure><figcaption>"Edge map (R Sobel, G LoG, B Canny)"</figcaption><canvas id="seg-edges" node_ref=edges_ref></canvas></figure>
                        <figure><figcaption>"Net1 boundary probability"</figcaption><canvas id="seg-net1" node_ref=net1_ref></canvas></figure>
                        <figure>
                            <figcaption>
                                "Boundaries after Net2 "
                                <label class="inline">"opacity "
                                    <input id="overlay-opacity" type="range" min="0" max="1" step="0.05"
                                        prop:value=move || opacity.get().to_string()
                                        on:input=move |ev| if let Ok(v) = event_target_value(&ev).parse() { opacity.set(v) } />
                                </label>
                            </figcaption>
                            <canvas id="seg-overlay" node_ref=overlay_ref></canvas>
                        </figure>
                    </div>
                    {move || current().zip(stats.get()).map(|(s, st)| view! { <StatsView s=s st=st /> })}
                    <div class="downloads">
                        <button id="dl-mask" on:click=move |_| download("mask")>"Boundary mask (PNG)"</button>
                        <button id="dl-grains" on:click=move |_| download("grains")>"Grain-id map (16-bit PNG)"</button>
                        <button id="dl-csv" on:click=move |_| download("csv")>"Grains (CSV)"</button>
                        <button id="dl-json" on:click=move |_| download("json")>"Statistics (JSON)"</button>
                    </div>
                </Show>
                <crate::pages::micrograph::MicrographPanel />
            </section>
        </DropTarget>
    }
}

#[component]
fn ModelStatus(model: ReadSignal<ModelState>) -> impl IntoView {
    move || {
        match model.get() {
        ModelState::NotLoaded => view! { <p class="muted" id="model-status" data-state="idle">{format!("Model: loaded with the first image ({})", weights::GRAIN.name)}</p> }.into_any(),
        ModelState::Loading(done, total) => view! {
            <div id="model-status" data-state="loading">
                <p class="muted">{format!("Downloading the model: {:.1} MB{}", done as f64 / 1e6, total.map(|t| format!(" of {:.1} MB", t as f64 / 1e6)).unwrap_or_default())}</p>
                <progress max=total.unwrap_or(0) as f64 value=done as f64></progress>
            </div>
        }.into_any(),
        ModelState::Ready { source, parts } => {
            let cached = source == WeightsSource::Cache;
            let sizes = parts.iter().map(|(n, p)| format!("{n} {} k", p / 1000)).collect::<Vec<_>>().join(", ");
            view! {
                <p class="muted" id="model-status" data-state="ready" data-source=if cached { "cache" } else { "network" }>
                    {format!("Model {} ready ({}; {sizes} parameters), SHA-256 verified", weights::GRAIN.name,
                        if cached { "from this browser's cache" } else { "downloaded" })}
                </p>
            }.into_any()
        }
        ModelState::Failed(e) => view! { <p class="error" id="model-status" data-state="error">{format!("Model: {e}")}</p> }.into_any(),
    }
    }
}

/// Grain statistics, histogram with lognormal fit, timings.
#[component]
fn StatsView(s: Rc<Segmented>, st: GrainStats) -> impl IntoView {
    let nm = |v: Option<f64>| v.map(|x| format!(" ({x:.1} nm)")).unwrap_or_default();
    let g = |v: Option<f64>| v.map_or("needs the pixel size".to_string(), |x| format!("{x:.2}"));
    let timings = s
        .header
        .stage_ms
        .iter()
        .map(|(k, v)| format!("{k} {v:.0} ms"))
        .collect::<Vec<_>>()
        .join(" · ");
    view! {
        <div class="grain-stats">
            <table id="seg-stats">
                <tr><th>"Grains"</th><td id="seg-grain-count" data-count=st.grain_count>{format!("{} ({} touching the border)", st.grain_count, st.border_grain_count)}</td></tr>
                <tr><th>"Mean ECD"</th><td>{format!("{:.1} px{}", st.mean_ecd_px, nm(st.mean_ecd_nm))}</td></tr>
                <tr><th>"Median ECD"</th><td>{format!("{:.1} px{}", st.median_ecd_px, nm(st.median_ecd_nm))}</td></tr>
                <tr><th>"Lognormal fit"</th><td>{format!("μ = {:.3}, σ = {:.3} (ln px)", st.lognormal_mu, st.lognormal_sigma)}</td></tr>
                <tr><th>"ASTM E112 G, planimetric"</th><td id="astm-planimetric">{g(st.astm_g_planimetric)}</td></tr>
                <tr><th>"ASTM E112 G, intercept"</th><td id="astm-intercept">{g(st.astm_g_intercept)}</td></tr>
                <tr><th>"Refinement"</th><td id="seg-iterations" data-iterations=s.header.iterations>{format!("{} Net2 iterations{}", s.header.iterations, if s.header.converged { " (converged)" } else { " (cap reached)" })}</td></tr>
                {s.header.truth_f1.map(|f| view! { <tr><th>"Boundary F1 vs ground truth"</th><td id="seg-truth-f1">{format!("{f:.3}")}</td></tr> })}
            </table>
            <LognormalHistogram values=st.ecd_px.clone() mu=st.lognormal_mu sigma=st.lognormal_sigma />
            <p class="muted">{timings}</p>
        </div>
    }
}

/// Histogram of equivalent-circle diameters with the fitted lognormal density scaled to counts.
#[component]
fn LognormalHistogram(values: Vec<f64>, mu: f64, sigma: f64) -> impl IntoView {
    let max = values.iter().copied().fold(0.0, f64::max).max(1.0);
    let bins = 24usize;
    let bin_w = max / bins as f64;
    let mut counts = vec![0usize; bins];
    for v in &values {
        counts[((v / max) * bins as f64).min(bins as f64 - 1.0) as usize] += 1;
    }
    let n = values.len() as f64;
    let pdf = |x: f64| {
        if x <= 0.0 || sigma <= 0.0 {
            0.0
        } else {
            (-(x.ln() - mu).powi(2) / (2.0 * sigma * sigma)).exp()
                / (x * sigma * (2.0 * std::f64::consts::PI).sqrt())
        }
    };
    let curve: Vec<(f64, f64)> = (1..=120)
        .map(|i| {
            let x = max * i as f64 / 120.0;
            (x, n * bin_w * pdf(x))
        })
        .collect();
    let top = counts
        .iter()
        .map(|&c| c as f64)
        .chain(curve.iter().map(|c| c.1))
        .fold(1.0, f64::max);
    let (w, h) = (480.0, 130.0);
    let bw = w / bins as f64;
    let path = curve
        .iter()
        .enumerate()
        .map(|(i, (x, y))| {
            format!(
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { "L" },
                x / max * w,
                h - y / top * h
            )
        })
        .collect::<String>();
    view! {
        <svg class="histogram" id="seg-histogram" viewBox=format!("0 0 {w} {}", h + 18.0) role="img" aria-label="grain size histogram with lognormal fit">
            {counts.iter().enumerate().map(|(i, &c)| {
                let bh = c as f64 / top * h;
                view! { <rect x=i as f64 * bw + 1.0 y=h - bh width=bw - 2.0 height=bh></rect> }
            }).collect_view()}
            <path class="fit" d=path></path>
            <text x="0" y=h + 14.0>"0"</text>
            <text x=w / 2.0 - 60.0 y=h + 14.0>"ECD (px); line: lognormal fit"</text>
            <text x=w - 40.0 y=h + 14.0>{format!("{max:.0}")}</text>
        </svg>
    }
}
