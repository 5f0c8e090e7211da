//! The Generate page's *Diffusion* mode: scattering images drawn by the tag-conditioned
//! diffusion generator (`diffusion-v3`) in the compute worker, on WebGPU or the CPU, with a
//! progress bar per step, the current clean estimate, and Cancel. Each result is checked by
//! the tagger and the realism ensemble (the tagger's tags beside the requested ones), and
//! handed to Classify or Annotate, or downloaded as a zip, like engine images.

use std::io::Write;
use std::rc::Rc;

use imaging::Image;
use imaging::display::{Colormap, Scale, render_rgba};
use leptos::prelude::*;
use models::diffusion::generator::{SampleRecord, SampleSettings};
use models::diffusion::sampler::SamplerKind;
use synth::scattering::TRAINING_TAGS;

use crate::browser;
use crate::compute::{ComputeContext, DiffusionProgress, SegmentSource};
use crate::pages::generate::{Choice, Num};
use crate::protocol::{DiffuseRequest, ModelState, WeightsSource};
use crate::worker::MAX_DIFFUSION_BATCH;

/// What the tagger and the realism ensemble say about one generated image.
#[derive(Clone)]
pub struct Check {
    /// Tag names and probabilities, most probable first.
    pub tags: Vec<(String, f32)>,
    /// The ensemble's soft vote that the image is realistic.
    pub realism_score: f64,
    /// Above the ensemble's threshold.
    pub realistic: bool,
    /// That threshold.
    pub threshold: f64,
    /// The classifiers' version.
    pub model: String,
}

/// One generated image, as the page shows and hands it on.
pub struct Sample {
    /// Detector counts.
    pub counts: Image<u32>,
    /// The sample's polar image before the instrument: `chi` columns × `q` rows, values in
    /// [−1, 1].
    pub polar: Image<f32>,
    /// The labels.jsonl record (tags asked for, seed, index, settings, model, beam centre).
    pub record: SampleRecord,
    /// The classifiers' verdict, once they have run (or why they could not).
    pub check: RwSignal<Option<Result<Check, String>>, LocalStorage>,
}

impl Sample {
    /// File name in zips and in the label store.
    pub fn file_name(&self) -> String {
        format!(
            "diffusion_seed{}_{:06}.png",
            self.record.seed, self.record.index
        )
    }

    /// The 16-bit PNG of the counts (as the CLI's `sample diffusion` writes).
    pub fn png(&self) -> Result<Vec<u8>, String> {
        let counts = self.counts.map(|v| v.min(u32::from(u16::MAX)) as u16);
        imaging::codec::encode_png_u16(&counts).map_err(|e| e.to_string())
    }

    /// The polar image as a 16-bit PNG (as `sample diffusion --write-polar`: 0 ↔ −1,
    /// 65 535 ↔ +1).
    pub fn polar_png(&self) -> Result<Vec<u8>, String> {
        let values = self
            .polar
            .map(|v| ((v.clamp(-1.0, 1.0) + 1.0) * 0.5 * 65535.0).round() as u16);
        imaging::codec::encode_png_u16(&values).map_err(|e| e.to_string())
    }
}

/// The Diffusion mode's controls.
#[derive(Clone, Copy)]
pub struct DiffusionControls {
    /// One flag per tag of `TRAINING_TAGS`.
    pub tags: RwSignal<Vec<bool>>,
    /// Denoising steps.
    pub steps: RwSignal<f64>,
    /// Classifier-free guidance scale.
    pub guidance: RwSignal<f64>,
    /// Guidance scale of the lattice-series plane (requests for a lattice).
    pub lattice_guidance: RwSignal<f64>,
    /// "dpm++", "ddim" or "ddpm".
    pub sampler: RwSignal<String>,
    /// Images sampled together.
    pub count: RwSignal<f64>,
}

impl DiffusionControls {
    /// The defaults: rings, the generator's default sampler, 4 images.
    pub fn new() -> Self {
        let mut tags = vec![false; TRAINING_TAGS.len()];
        // An illustrative first request: rings.
        if let Some(i) = TRAINING_TAGS.iter().position(|&t| t == "ring") {
            tags[i] = true;
        }
        let defaults = SampleSettings::default();
        Self {
            tags: RwSignal::new(tags),
            steps: RwSignal::new(defaults.steps as f64),
            guidance: RwSignal::new(f64::from(defaults.guidance)),
            lattice_guidance: RwSignal::new(f64::from(defaults.lattice_guidance)),
            sampler: RwSignal::new(defaults.sampler.name().to_string()),
            count: RwSignal::new(4.0),
        }
    }

    /// The ticked tags' names.
    pub fn tag_names(&self) -> Vec<String> {
        TRAINING_TAGS
            .iter()
            .zip(self.tags.get_untracked())
            .filter(|(_, on)| *on)
            .map(|(t, _)| t.to_string())
            .collect()
    }
}

impl Default for DiffusionControls {
    fn default() -> Self {
        Self::new()
    }
}

/// A polar image row-major `[q, χ]` with its shape `(q, χ)`.
pub type PolarEstimate = (Vec<f32>, (usize, usize));

/// A sampling run's state, shared by the controls and the viewer.
#[derive(Clone, Copy)]
pub struct DiffusionState {
    /// The worker request in flight.
    pub running: RwSignal<Option<u64>>,
    /// Steps taken and in all.
    pub progress: RwSignal<(usize, usize)>,
    /// When the run started (ms, `performance.now`).
    pub started_ms: RwSignal<f64>,
    /// The first image's current clean estimate: `[q, χ]` row-major with its shape.
    pub estimate: RwSignal<Option<PolarEstimate>, LocalStorage>,
    /// The last finished batch.
    pub batch: RwSignal<Vec<Rc<Sample>>, LocalStorage>,
    /// Which image of the batch is shown.
    pub selected: RwSignal<usize>,
    /// What happened last ("cancelled after 3 of 20 steps", an error, the time taken).
    pub message: RwSignal<Option<String>>,
    /// Wall time of the last finished run, ms (read by the browser benchmark).
    pub run_ms: RwSignal<Option<f64>>,
}

impl DiffusionState {
    /// Nothing sampled yet.
    pub fn new() -> Self {
        Self {
            running: RwSignal::new(None),
            progress: RwSignal::new((0, 0)),
            started_ms: RwSignal::new(0.0),
            estimate: RwSignal::new_local(None),
            batch: RwSignal::new_local(Vec::new()),
            selected: RwSignal::new(0),
            message: RwSignal::new(None),
            run_ms: RwSignal::new(None),
        }
    }

    /// The shown image of the batch.
    pub fn shown(&self) -> Option<Rc<Sample>> {
        let batch = self.batch.get();
        batch.get(self.selected.get()).cloned()
    }

    /// Moves the selection by `delta` within the batch.
    pub fn step_selection(&self, delta: i64) {
        let n = self.batch.with_untracked(Vec::len) as i64;
        if n > 0 {
            let i = (self.selected.get_untracked() as i64 + delta).clamp(0, n - 1);
            self.selected.set(i as usize);
        }
    }
}

impl Default for DiffusionState {
    fn default() -> Self {
        Self::new()
    }
}

/// Starts sampling with the controls' settings (`seed`, images `first_index…`, detector side
/// `size_px`); the batch, progress and messages land in `state`.
pub fn start(
    compute: Option<ComputeContext>,
    c: DiffusionControls,
    state: DiffusionState,
    seed: u64,
    first_index: u64,
    size_px: usize,
) {
    let Some(compute) = compute.map(|c| c.get_value()) else {
        state.message.set(Some(
            "the compute worker is not available; reload the page".into(),
        ));
        return;
    };
    if state.running.get_untracked().is_some() {
        return;
    }
    let sampler = match c.sampler.get_untracked().parse::<SamplerKind>() {
        Ok(s) => s,
        Err(e) => {
            state.message.set(Some(e.to_string()));
            return;
        }
    };
    let count = c.count.get_untracked();
    if !(1.0..=MAX_DIFFUSION_BATCH as f64).contains(&count) {
        state.message.set(Some(format!(
            "Images must be 1 to {MAX_DIFFUSION_BATCH} (got {count}); larger batches: synthscope sample diffusion --count N"
        )));
        return;
    }
    let sample_settings = SampleSettings {
        sampler,
        steps: c.steps.get_untracked().clamp(0.0, 1e6) as usize,
        guidance: c.guidance.get_untracked() as f32,
        lattice_guidance: c.lattice_guidance.get_untracked() as f32,
    };
    let request = DiffuseRequest {
        tags: c.tag_names(),
        sampler: sampler.name().to_string(),
        steps: sample_settings.steps,
        guidance: sample_settings.guidance,
        lattice_guidance: sample_settings.lattice_guidance,
        seed,
        first_index,
        count: count as usize,
        size_px,
    };
    let id = compute.reserve_id();
    state.running.set(Some(id));
    state.progress.set((0, request.steps));
    state.started_ms.set(browser::now_ms());
    state.message.set(None);
    leptos::task::spawn_local(async move {
        let progress = move |p: DiffusionProgress| {
            state.progress.set((p.done, p.total));
            state.estimate.set(Some((p.estimate, p.shape)));
        };
        let settings = request.clone();
        let result = compute.diffuse(id, request, progress).await;
        state.running.set(None);
        let elapsed_ms = browser::now_ms() - state.started_ms.get_untracked();
        match result {
            Ok(Some(d)) => {
                state.run_ms.set(Some(elapsed_ms));
                let batch: Vec<Rc<Sample>> = d
                    .images
                    .into_iter()
                    .map(|im| {
                        let record = SampleRecord::new(
                            String::new(),
                            (&d.header.model, &d.header.model_sha256),
                            (d.header.size_px, d.header.size_px),
                            settings.tags.clone(),
                            (settings.seed, im.index),
                            &sample_settings,
                            im.beam_px,
                        )
                        .with_lattices(im.lattices, &sample_settings);
                        let mut s = Sample {
                            counts: im.counts,
                            polar: im.polar,
                            record,
                            check: RwSignal::new_local(None),
                        };
                        s.record.file = s.file_name();
                        Rc::new(s)
                    })
                    .collect();
                let n = batch.len();
                state.selected.set(0);
                state.batch.set(batch.clone());
                state.message.set(Some(format!(
                    "{n} image{} of {} in {:.1} s ({} steps of {}, guidance {}).",
                    if n == 1 { "" } else { "s" },
                    d.header.model,
                    elapsed_ms / 1000.0,
                    settings.steps,
                    settings.sampler,
                    settings.guidance
                )));
                check_all(&compute, &batch).await;
            }
            Ok(None) => {
                let (done, total) = state.progress.get_untracked();
                state
                    .message
                    .set(Some(format!("Cancelled after {done} of {total} steps.")));
            }
            Err(e) => state.message.set(Some(format!("Sampling failed: {e}"))),
        }
    });
}

/// Runs the tagger and the realism ensemble on every image of the batch, in turn.
async fn check_all(compute: &crate::compute::Compute, batch: &[Rc<Sample>]) {
    for s in batch {
        let pixels = Rc::new(s.counts.map(|v| v as f32));
        let result = compute
            .classify(
                SegmentSource::Pixels(pixels),
                None,
                Default::default(),
                &Default::default(),
                |_| {},
            )
            .await
            .map(|c| Check {
                tags: c.header.tags,
                realism_score: c.header.realism_score,
                realistic: c.header.realistic,
                threshold: c.header.vote_threshold,
                model: c.header.model,
            });
        s.check.set(Some(result));
    }
}

/// Stops the run in flight after its current step.
pub fn cancel(compute: Option<ComputeContext>, state: DiffusionState) {
    if let (Some(id), Some(compute)) = (state.running.get_untracked(), compute) {
        compute.get_value().cancel(id);
    }
}

/// One line on a generator's weights (`name`): not loaded, downloading, ready or failed.
pub fn model_state_text(name: &str, state: &ModelState) -> String {
    match state {
        ModelState::NotLoaded => format!("Model {name}: loaded with the first sample"),
        ModelState::Loading(done, total) => format!(
            "Downloading {name}: {:.1} MB{}",
            *done as f64 / 1e6,
            total
                .map(|t| format!(" of {:.1} MB", t as f64 / 1e6))
                .unwrap_or_default()
        ),
        ModelState::Ready { source, parts } => format!(
            "Model {name} ready ({}; {} k parameters), SHA-256 verified",
            if *source == WeightsSource::Cache {
                "from this browser's cache"
            } else {
                "downloaded"
            },
            parts.iter().map(|p| p.1).sum::<usize>() / 1000
        ),
        ModelState::Failed(e) => format!("Model {name}: {e}"),
    }
}

/// The batch as a zip: 16-bit PNGs and `labels.jsonl` (the CLI's `sample diffusion` files),
/// each line with the realism score when the ensemble has judged the image.
pub fn batch_zip(batch: &[Rc<Sample>]) -> Result<Vec<u8>, String> {
    let zip_err = |e: zip::result::ZipError| format!("could not build the zip: {e}");
    let io_err = |e: std::io::Error| format!("could not build the zip: {e}");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut labels = String::new();
    for s in batch {
        zip.start_file(s.record.file.as_str(), stored)
            .map_err(zip_err)?;
        zip.write_all(&s.png()?).map_err(io_err)?;
        zip.start_file(s.record.file.replace(".png", "_polar.png"), stored)
            .map_err(zip_err)?;
        zip.write_all(&s.polar_png()?).map_err(io_err)?;
        let mut record = s.record.clone();
        record.realism_score = s
            .check
            .get_untracked()
            .and_then(Result::ok)
            .map(|c| c.realism_score);
        labels.push_str(&serde_json::to_string(&record).map_err(|e| e.to_string())?);
        labels.push('\n');
    }
    zip.start_file("labels.jsonl", deflated).map_err(zip_err)?;
    zip.write_all(labels.as_bytes()).map_err(io_err)?;
    Ok(zip.finish().map_err(zip_err)?.into_inner())
}

/// The mode's controls (the Seed, Image index and detector Size of the page are shared).
#[component]
pub fn DiffusionPanel(
    /// The mode's controls.
    c: DiffusionControls,
    /// The run they start.
    state: DiffusionState,
    /// Starts sampling (the page adds seed, index and detector size).
    on_sample: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let compute = use_context::<ComputeContext>();
    let model_line = move || {
        let state = compute.map(|c| c.get_value().generator.get())?;
        Some(model_state_text(crate::weights::DIFFUSION.name, &state))
    };
    view! {
        <section>
            <h2>"Diffusion generator"</h2>
            <p class="muted" id="diffusion-model">{model_line}</p>
            <fieldset class="tags" id="diffusion-tags">
                <legend>"Tags to draw"</legend>
                {TRAINING_TAGS
                    .iter()
                    .enumerate()
                    .map(|(i, &name)| {
                        let id = format!("tag-{}", name.replace(' ', "-"));
                        view! {
                            <label class="check">
                                <input
                                    type="checkbox"
                                    id=id
                                    prop:checked=move || c.tags.with(|t| t[i])
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        c.tags.update(|t| t[i] = on);
                                    }
                                />
                                <span>{name}</span>
                            </label>
                        }
                    })
                    .collect_view()}
            </fieldset>
            <Num label="Guidance (1: conditional model)" id="guidance" value=c.guidance min=0.0 max=20.0 step=0.5 />
            <Num label="Lattice guidance (1: as the tags; larger: rings where the lattice puts them)" id="lattice-guidance" value=c.lattice_guidance min=0.0 max=20.0 step=0.5 />
            <Num label="Steps" id="steps" value=c.steps min=1.0 max=1000.0 step=1.0 />
            <Choice label="Sampler" id="sampler" value=c.sampler options=vec![("dpm++", "DPM-Solver++ (2M)"), ("ddim", "DDIM"), ("ddpm", "DDPM (stochastic)")] />
            <Num label="Images" id="diffusion-count" value=c.count min=1.0 max=MAX_DIFFUSION_BATCH as f64 step=1.0 />
            <button id="diffuse" on:click=move |_| on_sample() disabled=move || state.running.get().is_some()>
                {move || if state.running.get().is_some() { "Sampling…" } else { "Sample (Enter)" }}
            </button>
            <Show when=move || state.running.get().is_some()>
                <button id="diffuse-cancel" class="secondary" on:click=move |_| cancel(compute, state)>"Cancel (Esc)"</button>
            </Show>
        </section>
    }
}

/// Progress, the clean estimate while sampling, the batch selector and the last message.
#[component]
pub fn DiffusionProgressView(
    /// The run to show.
    state: DiffusionState,
) -> impl IntoView {
    let estimate_ref = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| {
        let Some(canvas) = estimate_ref.get() else {
            return;
        };
        state.estimate.with(|e| {
            if let Some((values, (q, chi))) = e
                && let Ok(img) = Image::from_vec(*chi, *q, values.clone())
            {
                // Rows q (beam at the top), columns χ: values are already log-scaled.
                let rgba = render_rgba(&img, Scale::Linear, Colormap::Viridis);
                let _ = browser::put_rgba(&canvas, *chi as u32, *q as u32, &rgba);
            }
        });
    });
    let elapsed = move || {
        let (done, total) = state.progress.get();
        let s = (browser::now_ms() - state.started_ms.get_untracked()) / 1000.0;
        format!("step {done} / {total} · {s:.1} s")
    };
    view! {
        <Show when=move || state.running.get().is_some()>
            <div class="diffusion-run">
                <progress id="diffuse-progress" max=move || state.progress.get().1 value=move || state.progress.get().0></progress>
                <span class="muted" id="diffuse-step">{elapsed}</span>
                <figure>
                    <canvas id="diffuse-estimate" class="polar" node_ref=estimate_ref></canvas>
                    <figcaption class="muted">"Current clean estimate of the first image: rows q (0 at the top to 0.9 Å⁻¹), columns χ"</figcaption>
                </figure>
            </div>
        </Show>
        {move || state.message.get().map(|m| view! {
            <p class="message" id="diffuse-message" data-run-ms=move || state.run_ms.get().map(|v| format!("{v:.0}")).unwrap_or_default()>{m}</p>
        })}
        <Show when=move || state.batch.with(|b| b.len() > 1)>
            <div class="batch-select" id="diffuse-batch">
                {move || {
                    (0..state.batch.with(Vec::len))
                        .map(|i| {
                            view! {
                                <button
                                    class=move || if state.selected.get() == i { "chip selected" } else { "chip" }
                                    on:click=move |_| state.selected.set(i)
                                >
                                    {i + 1}
                                </button>
                            }
                        })
                        .collect_view()
                }}
                <span class="muted">"← → to step through the batch"</span>
            </div>
        </Show>
    }
}

/// Requested tags, the tagger's tags and the realism vote of one generated image.
#[component]
pub fn DiffusionTruth(
    /// The shown image.
    sample: Rc<Sample>,
) -> impl IntoView {
    let r = &sample.record;
    let requested = r.tags.clone();
    let header = format!(
        "{}×{} px, beam at ({:.0}, {:.0}) px · {} · seed {} image {} · {} steps of {}, guidance {}",
        r.width,
        r.height,
        r.beam_x_px,
        r.beam_y_px,
        r.model,
        r.seed,
        r.index,
        r.steps,
        r.sampler,
        r.guidance
    );
    let check = sample.check;
    let wanted = requested.clone();
    view! {
        <div class="truth" id="diffusion-truth">
            <p class="muted">{header}</p>
            <h3>"Requested tags"</h3>
            <ul class="chips" id="requested-tags">
                {if requested.is_empty() {
                    view! { <li class="chip empty">"none (unconditional)"</li> }.into_any()
                } else {
                    requested.into_iter().map(|t| view! { <li class="chip">{t}</li> }).collect_view().into_any()
                }}
            </ul>
            <h3>"What the classifiers see"</h3>
            {move || match check.get() {
                None => view! { <p class="muted" id="diffusion-check">"tagging and judging…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="error" id="diffusion-check">{e}</p> }.into_any(),
                Some(Ok(c)) => {
                    let found: Vec<(String, f32)> = c.tags.iter().filter(|(_, p)| *p >= 0.5).cloned().collect();
                    let verdict = format!(
                        "realism vote {:.2} (threshold {:.2}): {} · {}",
                        c.realism_score,
                        c.threshold,
                        if c.realistic { "realistic" } else { "not realistic" },
                        c.model
                    );
                    let wanted = wanted.clone();
                    view! {
                        <div id="diffusion-check">
                            <ul class="chips" id="tagger-tags">
                                {if found.is_empty() {
                                    view! { <li class="chip empty">"no tag above 0.5"</li> }.into_any()
                                } else {
                                    found
                                        .into_iter()
                                        .map(|(t, p)| {
                                            let asked = wanted.contains(&t);
                                            view! { <li class=if asked { "chip match" } else { "chip" }>{format!("{t} {p:.2}")}</li> }
                                        })
                                        .collect_view()
                                        .into_any()
                                }}
                            </ul>
                            <p id="realism-vote" class=if c.realistic { "ok" } else { "warn" }>{verdict}</p>
                        </div>
                    }
                    .into_any()
                }
            }}
        </div>
    }
}
