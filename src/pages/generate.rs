//! The Generate page: adjust the physics, preview one image with its ground truth, download a
//! batch as a zip (images + `labels.jsonl`, the same files `synthscope generate` writes); or
//! draw scattering images with the diffusion generator ([`super::diffusion`]).

use std::io::Write;
use std::rc::Rc;

use imaging::codec::FileFormat;
use imaging::display::{Colormap, Scale, overlay_mask, render_rgba};
use leptos::prelude::*;
use synth::dataset::{self, SaxsSample, TemSample};
use synth::scattering::{
    BackgroundChoice, BeamstopChoice, CustomSample, DetectorKind, LatticeKind, SaxsConfig,
};
use synth::tem::TemConfig;

use crate::browser;
use crate::pages::diffusion::{
    DiffusionControls, DiffusionPanel, DiffusionProgressView, DiffusionState, DiffusionTruth,
    Sample,
};

/// Largest batch the page generates in one go (each image is kept in memory until zipped).
const MAX_BATCH: u64 = 2000;

/// Largest uncompressed batch the page builds in memory, in bytes; larger datasets belong to
/// the CLI, which streams to disk.
const MAX_BATCH_BYTES: f64 = 1.0e9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Saxs,
    Tem,
    Diffusion,
}

/// One generated image ready to show.
enum Preview {
    Saxs(SaxsSample),
    Tem(TemSample),
    Diffused(Rc<Sample>),
}

struct Shown {
    preview: Preview,
    generate_ms: f64,
}

/// A labelled `<input type=number>` bound to an `f64` signal. Unparsable text is ignored.
#[component]
pub(crate) fn Num(
    label: &'static str,
    id: &'static str,
    value: RwSignal<f64>,
    min: f64,
    max: f64,
    step: f64,
) -> impl IntoView {
    view! {
        <label class="field">
            <span>{label}</span>
            <input
                type="number"
                id=id
                min=min
                max=max
                step=step
                prop:value=move || value.get().to_string()
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).trim().parse::<f64>() {
                        value.set(v);
                    }
                }
            />
        </label>
    }
}

/// A labelled `<select>` bound to a string signal; `options` are (value, text).
#[component]
pub(crate) fn Choice(
    label: &'static str,
    id: &'static str,
    value: RwSignal<String>,
    options: Vec<(&'static str, &'static str)>,
) -> impl IntoView {
    view! {
        <label class="field">
            <span>{label}</span>
            <select id=id prop:value=move || value.get() on:change=move |ev| value.set(event_target_value(&ev))>
                {options
                    .into_iter()
                    .map(|(v, t)| view! { <option value=v selected=move || value.get() == v>{t}</option> })
                    .collect_view()}
            </select>
        </label>
    }
}

/// A labelled checkbox bound to a bool signal.
#[component]
fn Check(label: &'static str, id: &'static str, value: RwSignal<bool>) -> impl IntoView {
    view! {
        <label class="check">
            <input type="checkbox" id=id prop:checked=move || value.get() on:change=move |ev| value.set(event_target_checked(&ev)) />
            <span>{label}</span>
        </label>
    }
}

/// The detector layouts offered: (control value, label, layout). The real detectors are binned
/// whole onto the image, their gaps masked as the files mark them.
const DETECTOR_LAYOUTS: [(&str, &str, DetectorKind); 11] = [
    ("plain", "Monolithic", DetectorKind::Plain),
    ("pilatus", "Pilatus-like modules", DetectorKind::Pilatus),
    ("eiger", "Eiger-like modules", DetectorKind::Eiger),
    ("pilatus_300k", "Pilatus 300K", DetectorKind::Pilatus300k),
    ("pilatus_1m", "Pilatus 1M", DetectorKind::Pilatus1M),
    ("pilatus_2m", "Pilatus 2M", DetectorKind::Pilatus2M),
    ("pilatus_6m", "Pilatus 6M", DetectorKind::Pilatus6M),
    ("eiger_1m", "Eiger 1M", DetectorKind::Eiger1M),
    ("eiger_4m", "Eiger 4M", DetectorKind::Eiger4M),
    ("eiger_9m", "Eiger 9M", DetectorKind::Eiger9M),
    ("eiger_16m", "Eiger 16M", DetectorKind::Eiger16M),
];

/// Every control of the page, as signals.
#[derive(Clone, Copy)]
struct Controls {
    mode: RwSignal<String>,
    seed: RwSignal<f64>,
    index: RwSignal<f64>,
    // SAXS
    size: RwSignal<String>,
    variety: RwSignal<String>,
    detector: RwSignal<String>,
    sample: RwSignal<String>,
    ring_count: RwSignal<f64>,
    q0: RwSignal<f64>,
    width_rel: RwSignal<f64>,
    symmetry: RwSignal<f64>,
    eta: RwSignal<f64>,
    lattice: RwSignal<String>,
    halo: RwSignal<bool>,
    beamstop: RwSignal<String>,
    background: RwSignal<String>,
    noise: RwSignal<bool>,
    exposure: RwSignal<f64>,
    centre_fixed: RwSignal<bool>,
    centre_x: RwSignal<f64>,
    centre_y: RwSignal<f64>,
    // TEM
    tem_width: RwSignal<f64>,
    tem_height: RwSignal<f64>,
    grain_mean: RwSignal<f64>,
    grain_spread: RwSignal<f64>,
    contrast: RwSignal<f64>,
    tem_noise: RwSignal<f64>,
    // Display
    scale: RwSignal<String>,
    colormap: RwSignal<String>,
    overlay: RwSignal<bool>,
    // Batch
    batch_count: RwSignal<f64>,
    format: RwSignal<String>,
}

impl Controls {
    fn new() -> Self {
        let s = |v: &str| RwSignal::new(v.to_string());
        let d = CustomSample::default();
        let t = TemConfig::default();
        Self {
            mode: s("saxs"),
            seed: RwSignal::new(0.0),
            index: RwSignal::new(0.0),
            size: s("512"),
            variety: s("reference"),
            detector: s("plain"),
            // An illustrative first image (rings on a hexagonal lattice); "Reference simulator
            // mix" gives the CLI's default distribution.
            sample: s("custom"),
            ring_count: RwSignal::new(f64::from(d.ring_count)),
            q0: RwSignal::new(d.q0_inv_angstrom),
            width_rel: RwSignal::new(d.width_rel),
            symmetry: RwSignal::new(f64::from(d.symmetry)),
            eta: RwSignal::new(d.eta),
            lattice: s("hexagonal"),
            halo: RwSignal::new(false),
            beamstop: s("random"),
            background: s("random"),
            noise: RwSignal::new(true),
            exposure: RwSignal::new(1.0),
            centre_fixed: RwSignal::new(false),
            centre_x: RwSignal::new(0.5),
            centre_y: RwSignal::new(0.5),
            tem_width: RwSignal::new(t.width_px as f64),
            tem_height: RwSignal::new(t.height_px as f64),
            grain_mean: RwSignal::new(t.grain_diameter_mean_px),
            grain_spread: RwSignal::new(t.grain_size_spread),
            contrast: RwSignal::new(t.contrast),
            tem_noise: RwSignal::new(t.noise),
            scale: s("log"),
            colormap: s("viridis"),
            overlay: RwSignal::new(true),
            batch_count: RwSignal::new(16.0),
            format: s("png"),
        }
    }

    fn mode(&self) -> Mode {
        match self.mode.get().as_str() {
            "tem" => Mode::Tem,
            "diffusion" => Mode::Diffusion,
            _ => Mode::Saxs,
        }
    }

    /// The SAXS configuration the controls describe (validated by the generator).
    fn saxs(&self) -> SaxsConfig {
        let sample = (self.sample.get() == "custom").then(|| CustomSample {
            ring_count: self.ring_count.get().clamp(0.0, 1e3) as u32,
            q0_inv_angstrom: self.q0.get(),
            width_rel: self.width_rel.get(),
            symmetry: self.symmetry.get().clamp(0.0, 1e3) as u32,
            eta: self.eta.get(),
            lattice: match self.lattice.get().as_str() {
                "bcc" => Some(LatticeKind::Bcc),
                "fcc" => Some(LatticeKind::Fcc),
                "hexagonal" => Some(LatticeKind::Hexagonal),
                "lamellar" => Some(LatticeKind::Lamellar),
                _ => None,
            },
            halo: self.halo.get(),
        });
        SaxsConfig {
            size_px: self.size.get().parse().unwrap_or(512),
            detector: DETECTOR_LAYOUTS
                .iter()
                .find(|(id, _, _)| *id == self.detector.get())
                .map_or(DetectorKind::Plain, |l| l.2),
            sample,
            beamstop: match self.beamstop.get().as_str() {
                "none" => BeamstopChoice::None,
                "circular" => BeamstopChoice::Circular,
                "linear" => BeamstopChoice::Linear,
                "wedge" => BeamstopChoice::Wedge,
                _ => BeamstopChoice::Random,
            },
            background: match self.background.get().as_str() {
                "none" => BackgroundChoice::None,
                "constant" => BackgroundChoice::Constant,
                "structured" => BackgroundChoice::Structured,
                "window" => BackgroundChoice::Window,
                _ => BackgroundChoice::Random,
            },
            poisson_noise: self.noise.get(),
            exposure: self.exposure.get(),
            beam_centre_frac: self
                .centre_fixed
                .get()
                .then(|| (self.centre_x.get(), self.centre_y.get())),
            variety: if self.variety.get() == "wide" {
                synth::scattering::Variety::Wide
            } else {
                synth::scattering::Variety::Reference
            },
        }
    }

    fn tem(&self) -> TemConfig {
        TemConfig {
            width_px: self.tem_width.get().clamp(0.0, 1e6) as usize,
            height_px: self.tem_height.get().clamp(0.0, 1e6) as usize,
            grain_diameter_mean_px: self.grain_mean.get(),
            grain_size_spread: self.grain_spread.get(),
            contrast: self.contrast.get(),
            noise: self.tem_noise.get(),
        }
    }

    fn seed(&self) -> u64 {
        self.seed.get().max(0.0) as u64
    }

    fn index(&self) -> u64 {
        self.index.get().max(0.0) as u64
    }
}

/// The engine image the controls describe; `None` in Diffusion mode (sampled on request).
fn generate(c: &Controls) -> Result<Option<Shown>, String> {
    let t0 = browser::now_ms();
    let preview = match c.mode() {
        Mode::Diffusion => return Ok(None),
        Mode::Saxs => Preview::Saxs(
            dataset::generate_saxs(&c.saxs(), c.seed(), c.index()).map_err(|e| e.to_string())?,
        ),
        Mode::Tem => Preview::Tem(
            dataset::generate_tem(&c.tem(), c.seed(), c.index()).map_err(|e| e.to_string())?,
        ),
    };
    Ok(Some(Shown {
        preview,
        generate_ms: browser::now_ms() - t0,
    }))
}

/// Draws the preview with the display options; returns an error message on failure.
fn draw(
    canvas: &web_sys::HtmlCanvasElement,
    shown: &Shown,
    scale: Scale,
    colormap: Colormap,
    overlay: bool,
) -> Result<(), String> {
    match &shown.preview {
        Preview::Diffused(s) => {
            let img = s.counts.map(|v| v as f32);
            let rgba = render_rgba(&img, scale, colormap);
            let ctx = browser::put_rgba(canvas, img.width() as u32, img.height() as u32, &rgba)?;
            if overlay {
                beam_cross(&ctx, (s.record.beam_x_px, s.record.beam_y_px), img.width());
            }
        }
        Preview::Saxs(s) => {
            let img = s.image.counts.map(|v| v as f32);
            let rgba = render_rgba(&img, scale, colormap);
            let ctx = browser::put_rgba(canvas, img.width() as u32, img.height() as u32, &rgba)?;
            if overlay {
                // Ring positions from the ground truth, and the beam centre.
                ctx.set_line_width(1.0);
                ctx.set_stroke_style_str("rgba(255, 80, 80, 0.55)");
                let _ = ctx.set_line_dash(&js_sys::Array::of2(&3.0.into(), &5.0.into()));
                for r in &s.truth.rings {
                    ctx.begin_path();
                    let _ = ctx.arc(
                        s.truth.beam_x_px,
                        s.truth.beam_y_px,
                        r.radius_px,
                        0.0,
                        std::f64::consts::TAU,
                    );
                    ctx.stroke();
                }
                let _ = ctx.set_line_dash(&js_sys::Array::new());
                beam_cross(&ctx, (s.truth.beam_x_px, s.truth.beam_y_px), img.width());
            }
        }
        Preview::Tem(t) => {
            let img = t.image.image.map(f32::from);
            let mut rgba = render_rgba(&img, Scale::Linear, colormap);
            if overlay {
                let mask: Vec<bool> = t.image.boundary.pixels().iter().map(|&b| b > 0).collect();
                overlay_mask(&mut rgba, &mask, [255, 60, 60], 0.7);
            }
            let _ = scale;
            browser::put_rgba(canvas, img.width() as u32, img.height() as u32, &rgba)?;
        }
    }
    Ok(())
}

/// A white cross on the beam centre (arms 1/40 of the image width).
fn beam_cross(ctx: &web_sys::CanvasRenderingContext2d, (x, y): (f64, f64), width_px: usize) {
    ctx.set_stroke_style_str("rgba(255, 255, 255, 0.9)");
    let arm = width_px as f64 / 40.0;
    ctx.begin_path();
    ctx.move_to(x - arm, y);
    ctx.line_to(x + arm, y);
    ctx.move_to(x, y - arm);
    ctx.line_to(x, y + arm);
    ctx.stroke();
}

/// A generated image for the label store: file name, 16-bit PNG bytes, and for a diffusion
/// sample the model and the requested tags.
type GeneratedFile = (String, Vec<u8>, Option<String>, Vec<String>);

/// Stores images in the label store as generated images; returns the first one's item id.
async fn store_generated(images: Vec<GeneratedFile>) -> Result<Option<String>, String> {
    let store = crate::store::Store::open().await?;
    let order = store
        .images()
        .await?
        .iter()
        .map(|i| i.order + 1)
        .max()
        .unwrap_or(0);
    let metas: Vec<crate::store::StoredImage> = images
        .iter()
        .enumerate()
        .map(
            |(n, (file, bytes, generator, tags))| crate::store::StoredImage {
                item: labels::item_id(bytes),
                file: file.clone(),
                source: "generated".into(),
                pack: None,
                order: order + n as u64,
                added_at: crate::browser::now_rfc3339(),
                generator: generator.clone(),
                requested_tags: tags.clone(),
            },
        )
        .collect();
    let rows: Vec<(crate::store::StoredImage, &[u8])> = metas
        .iter()
        .cloned()
        .zip(images.iter().map(|i| i.1.as_slice()))
        .collect();
    store.add_images(&rows).await?;
    Ok(metas.first().map(|m| m.item.clone()))
}

/// Builds the dataset zip of `count` images of the current settings, yielding between images.
async fn build_zip(
    c: Controls,
    count: u64,
    format: FileFormat,
    progress: RwSignal<(u64, u64)>,
) -> Result<(Vec<u8>, String), String> {
    let (mode, saxs, tem, seed) = (c.mode(), c.saxs(), c.tem(), c.seed());
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Images are already compressed: store them; deflate the label file.
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut labels = String::new();
    let zip_err = |e: zip::result::ZipError| format!("could not build the zip: {e}");
    for i in 0..count {
        let record = match mode {
            Mode::Saxs => dataset::generate_saxs(&saxs, seed, i)
                .and_then(|s| dataset::saxs_record(&s, seed, i, format)),
            Mode::Tem => dataset::generate_tem(&tem, seed, i)
                .and_then(|s| dataset::tem_record(&s, seed, i, format)),
            Mode::Diffusion => {
                return Err("a diffusion batch is downloaded with its own button".into());
            }
        }
        .map_err(|e| format!("image {i}: {e}"))?;
        for f in &record.files {
            zip.start_file(f.name.as_str(), stored).map_err(zip_err)?;
            zip.write_all(&f.bytes)
                .map_err(|e| format!("could not build the zip: {e}"))?;
        }
        labels.push_str(&record.label_line);
        labels.push('\n');
        progress.set((i + 1, count));
        browser::yield_now().await;
    }
    zip.start_file("labels.jsonl", deflated).map_err(zip_err)?;
    zip.write_all(labels.as_bytes())
        .map_err(|e| format!("could not build the zip: {e}"))?;
    let bytes = zip.finish().map_err(zip_err)?.into_inner();
    let kind = if mode == Mode::Saxs { "saxs" } else { "tem" };
    Ok((bytes, format!("synthscope_{kind}_seed{seed}_{count}.zip")))
}

/// The Generate page.
#[component]
pub fn GeneratePage() -> impl IntoView {
    let c = Controls::new();
    let dc = DiffusionControls::new();
    let diffusion = DiffusionState::new();
    let compute = use_context::<crate::compute::ComputeContext>();
    let sample = move || {
        let size = c.size.get_untracked().parse().unwrap_or(256);
        crate::pages::diffusion::start(compute, dc, diffusion, c.seed(), c.index(), size);
    };
    let shown: RwSignal<Option<Rc<Shown>>, LocalStorage> = RwSignal::new_local(None);
    let error = RwSignal::new(None::<String>);
    let first_preview_ms = RwSignal::new(None::<f64>);
    let progress = RwSignal::new((0u64, 0u64));
    let busy = RwSignal::new(false);
    let batch_message = RwSignal::new(None::<String>);
    let canvas_ref = NodeRef::<leptos::html::Canvas>::new();

    // Regenerate whenever a physics control changes. A bad setting shows an error and keeps
    // the previous image.
    Effect::new(move |_| match generate(&c) {
        Ok(Some(s)) => {
            shown.set(Some(Rc::new(s)));
            error.set(None);
        }
        // Diffusion mode: the selected image of the last batch (none before the first).
        Ok(None) => {
            shown.set(diffusion.shown().map(|d| {
                Rc::new(Shown {
                    preview: Preview::Diffused(d),
                    generate_ms: diffusion.run_ms.get_untracked().unwrap_or(0.0),
                })
            }));
            error.set(None);
        }
        Err(e) => error.set(Some(e)),
    });

    // Micrographs are read in gray, detector images in a perceptual colormap: switch the default
    // with the kind (the user can still choose).
    Effect::new(move |prev: Option<String>| {
        let mode = c.mode.get();
        if prev.is_some_and(|p| p != mode) {
            c.colormap
                .set(if mode == "tem" { "gray" } else { "viridis" }.to_string());
        }
        mode
    });

    // Redraw on a new image or new display options.
    Effect::new(move |_| {
        let scale = if c.scale.get() == "linear" {
            Scale::Linear
        } else {
            Scale::Log
        };
        let colormap = match c.colormap.get().as_str() {
            "gray" => Colormap::Gray,
            "inferno" => Colormap::Inferno,
            _ => Colormap::Viridis,
        };
        let overlay = c.overlay.get();
        let (Some(canvas), Some(s)) = (canvas_ref.get(), shown.get()) else {
            return;
        };
        match draw(&canvas, &s, scale, colormap, overlay) {
            Ok(()) => {
                if first_preview_ms.get_untracked().is_none() {
                    first_preview_ms.set(Some(browser::now_ms()));
                }
            }
            Err(e) => error.set(Some(format!("could not draw the preview: {e}"))),
        }
    });

    // Keyboard: ← / → previous / next image index; s: new random seed.
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        let in_form = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"));
        if in_form || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        if c.mode.get_untracked() == "diffusion" {
            match ev.key().as_str() {
                "ArrowRight" => diffusion.step_selection(1),
                "ArrowLeft" => diffusion.step_selection(-1),
                "Enter" => sample(),
                "Escape" => crate::pages::diffusion::cancel(compute, diffusion),
                "s" => c.seed.set((js_sys::Math::random() * 1e6).floor()),
                _ => {}
            }
            return;
        }
        match ev.key().as_str() {
            "ArrowRight" => c.index.update(|i| *i += 1.0),
            "ArrowLeft" => c.index.update(|i| *i = (*i - 1.0).max(0.0)),
            "s" => c.seed.set((js_sys::Math::random() * 1e6).floor()),
            _ => {}
        }
    });
    on_cleanup(move || handle.remove());

    let download = move |_| {
        if busy.get_untracked() {
            return;
        }
        let count = c.batch_count.get_untracked();
        if !(1.0..=MAX_BATCH as f64).contains(&count) {
            batch_message.set(Some(format!(
                "Batch size must be 1 to {MAX_BATCH} images (got {count})."
            )));
            return;
        }
        // Worst case per image: SAXS 4 bytes/pixel (32-bit TIFF), TEM 1 + 1 + 2 bytes/pixel.
        let (mode, saxs, tem) = (c.mode(), c.saxs(), c.tem());
        let bytes_per_image = match mode {
            Mode::Saxs => 4.0 * (saxs.size_px * saxs.size_px) as f64,
            Mode::Tem => 4.0 * (tem.width_px * tem.height_px) as f64,
            Mode::Diffusion => 0.0,
        };
        if count * bytes_per_image > MAX_BATCH_BYTES {
            let kind = if mode == Mode::Saxs { "saxs" } else { "tem" };
            batch_message.set(Some(format!(
                "{count} images of this size need up to {:.1} GB in the browser (limit {:.0} GB). \
                 Use fewer images, or the companion binary: synthscope generate {kind} --count {count} …",
                count * bytes_per_image / 1e9,
                MAX_BATCH_BYTES / 1e9
            )));
            return;
        }
        let format = if c.format.get_untracked() == "tiff" {
            FileFormat::Tiff
        } else {
            FileFormat::Png
        };
        busy.set(true);
        batch_message.set(None);
        progress.set((0, count as u64));
        leptos::task::spawn_local(async move {
            let t0 = browser::now_ms();
            let result = build_zip(c, count as u64, format, progress).await;
            busy.set(false);
            match result.and_then(|(bytes, name)| {
                let size_mb = bytes.len() as f64 / 1e6;
                browser::download(&bytes, &name, "application/zip").map(|_| (name, size_mb))
            }) {
                Ok((name, size_mb)) => batch_message.set(Some(format!(
                    "Saved {name} ({size_mb:.1} MB, {} images in {:.1} s).",
                    count as u64,
                    (browser::now_ms() - t0) / 1000.0
                ))),
                Err(e) => batch_message.set(Some(format!("Batch failed: {e}"))),
            }
        });
    };

    let is_saxs = move || c.mode.get() == "saxs";
    let is_diffusion = move || c.mode.get() == "diffusion";
    // Engine or diffusion scattering images: the same hand-offs.
    let is_scattering = move || c.mode.get() != "tem";

    // Hands the shown micrograph (and its true boundaries) to the Segment page.
    let inbox = use_context::<crate::pages::segment::Inbox>();
    let send_to_segment = move |_| {
        let (Some(inbox), Some(s)) = (inbox, shown.get_untracked()) else {
            return;
        };
        if let Preview::Tem(t) = &s.preview {
            let incoming = crate::pages::segment::Incoming {
                name: format!("tem_seed{}_{:06}.png", c.seed(), c.index()),
                source: crate::pages::segment::IncomingSource::Pixels(Rc::new(
                    t.image.image.map(f32::from),
                )),
                truth: Some(t.image.boundary.pixels().iter().map(|&b| b > 0).collect()),
            };
            inbox.update(|v| v.push(incoming));
            if let Some(w) = web_sys::window() {
                let _ = w.location().set_hash("segment");
            }
        }
    };
    // Hands the shown scattering image (and its true tags) to the Classify page.
    let classify_inbox = use_context::<crate::pages::classify::Inbox>();
    let send_to_classify = move |_| {
        let (Some(inbox), Some(s)) = (classify_inbox, shown.get_untracked()) else {
            return;
        };
        let incoming = match &s.preview {
            Preview::Saxs(x) => crate::pages::classify::Incoming {
                name: format!("saxs_seed{}_{:06}.tiff", c.seed(), c.index()),
                source: crate::compute::SegmentSource::Pixels(Rc::new(
                    x.image.counts.map(|v| v as f32),
                )),
                truth_tags: Some(x.truth.tags.clone()),
            },
            // The requested tags stand as the truth the tagger is compared with.
            Preview::Diffused(d) => crate::pages::classify::Incoming {
                name: d.file_name(),
                source: crate::compute::SegmentSource::Pixels(Rc::new(d.counts.map(|v| v as f32))),
                truth_tags: Some(d.record.tags.clone()),
            },
            Preview::Tem(_) => return,
        };
        inbox.update(|v| v.push(incoming));
        if let Some(w) = web_sys::window() {
            let _ = w.location().set_hash("classify");
        }
    };
    // Stores the shown scattering image (16-bit PNG, as in the batch zip) in the label store
    // as a generated image, and opens it on the Annotate page.
    let epoch = use_context::<crate::rounds::StoreEpoch>();
    let focus = use_context::<crate::rounds::Focus>();
    let to_annotate_error = RwSignal::new(None::<String>);
    let annotate = move |images: Result<Vec<GeneratedFile>, String>| {
        leptos::task::spawn_local(async move {
            let result = match images {
                Ok(images) => store_generated(images).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(first) => {
                    to_annotate_error.set(None);
                    if let Some(e) = epoch {
                        e.update(|n| *n += 1);
                    }
                    if let (Some(f), Some(item)) = (focus, first) {
                        f.set(Some(item));
                    }
                    if let Some(w) = web_sys::window() {
                        let _ = w.location().set_hash("annotate");
                    }
                }
                Err(e) => to_annotate_error.set(Some(e)),
            }
        });
    };
    let send_to_annotate = move |_| {
        let Some(s) = shown.get_untracked() else {
            return;
        };
        let images = match &s.preview {
            Preview::Saxs(x) => {
                let name = format!("saxs_seed{}_{:06}.png", c.seed(), c.index());
                let counts = x.image.counts.map(|v| v.min(u32::from(u16::MAX)) as u16);
                imaging::codec::encode_png_u16(&counts)
                    .map_err(|e| e.to_string())
                    .map(|bytes| vec![(name, bytes, None, Vec::new())])
            }
            Preview::Diffused(d) => d.png().map(|bytes| {
                vec![(
                    d.file_name(),
                    bytes,
                    Some(d.record.model.clone()),
                    d.record.tags.clone(),
                )]
            }),
            Preview::Tem(_) => return,
        };
        annotate(images);
    };
    // Fills the Annotate queue with the whole diffusion batch.
    let send_batch_to_annotate = move |_| {
        let images = diffusion.batch.with_untracked(|batch| {
            batch
                .iter()
                .map(|d| {
                    d.png().map(|bytes| {
                        (
                            d.file_name(),
                            bytes,
                            Some(d.record.model.clone()),
                            d.record.tags.clone(),
                        )
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        });
        annotate(images);
    };
    let diffusion_message = RwSignal::new(None::<String>);
    let checking_batch = move || {
        diffusion
            .batch
            .with(|b| b.iter().any(|s| s.check.with(Option::is_none)))
    };
    let download_diffusion = move |_| {
        let result = diffusion.batch.with_untracked(|batch| {
            let first = batch.first().map(|d| (d.record.seed, d.record.index));
            crate::pages::diffusion::batch_zip(batch).and_then(|bytes| {
                let (seed, index) = first.unwrap_or_default();
                let name = format!(
                    "synthscope_diffusion_seed{seed}_from{index}_{}.zip",
                    batch.len()
                );
                browser::download(&bytes, &name, "application/zip").map(|_| name)
            })
        });
        diffusion_message.set(Some(match result {
            Ok(name) => format!("Saved {name}."),
            Err(e) => format!("Download failed: {e}"),
        }));
    };
    let is_custom = move || c.sample.get() == "custom";

    view! {
        <div class="generate" id="generate">
            <aside class="controls">
                <section>
                    <h2>"Image"</h2>
                    <Choice label="Kind" id="mode" value=c.mode options=vec![("saxs", "X-ray scattering (SAXS)"), ("diffusion", "X-ray scattering: diffusion generator"), ("tem", "TEM polycrystal")] />
                    <Num label="Seed" id="seed" value=c.seed min=0.0 max=1e15 step=1.0 />
                    <Num label="Image index (← →)" id="index" value=c.index min=0.0 max=1e9 step=1.0 />
                </section>
                <Show when=is_saxs>
                    <section>
                        <h2>"Detector"</h2>
                        <Choice label="Size (px)" id="saxs-size" value=c.size options=vec![("128", "128"), ("256", "256"), ("512", "512"), ("1000", "1000"), ("2048", "2048")] />
                        <Choice label="Set-ups" id="variety" value=c.variety options=vec![("reference", "Reference (one beamline set-up)"), ("wide", "Wide (what beamlines show: the taggers' training mix)")] />
                        <Show when=move || c.variety.get() == "wide">
                            <p class="muted" id="variety-note">"Distance 0.15–2.4 m, 8–17 keV, a detector drawn from every layout, no beamstop on 30 %, the beam well off the detector on 20 %, only a low-q fall-off on 25 %: layout and beamstop below are drawn per image."</p>
                        </Show>
                        <Choice label="Layout" id="detector" value=c.detector options=DETECTOR_LAYOUTS.iter().map(|l| (l.0, l.1)).collect() />
                        <Choice label="Beamstop" id="beamstop" value=c.beamstop options=vec![("random", "Random"), ("none", "None"), ("circular", "Circular"), ("linear", "Linear"), ("wedge", "Wedge")] />
                        <Choice label="Background" id="background" value=c.background options=vec![("random", "Random (p = 0.4)"), ("none", "None"), ("constant", "Constant"), ("structured", "Structured"), ("window", "Window scattering")] />
                        <Check label="Poisson counting noise" id="noise" value=c.noise />
                        <Num label="Exposure ×" id="exposure" value=c.exposure min=0.01 max=1000.0 step=0.1 />
                        <Check label="Fixed beam centre" id="centre-fixed" value=c.centre_fixed />
                        <Show when=move || c.centre_fixed.get()>
                            <Num label="Beam x (fraction of width)" id="centre-x" value=c.centre_x min=-0.5 max=1.5 step=0.05 />
                            <Num label="Beam y (fraction of height)" id="centre-y" value=c.centre_y min=-0.5 max=1.5 step=0.05 />
                        </Show>
                    </section>
                    <section>
                        <h2>"Sample"</h2>
                        <Choice label="Scattering" id="sample" value=c.sample options=vec![("random", "Reference simulator mix"), ("custom", "Custom rings / lattice")] />
                        <Show when=is_custom>
                            <Num label="Ring count" id="ring-count" value=c.ring_count min=0.0 max=12.0 step=1.0 />
                            <Num label="q₀ (Å⁻¹)" id="q0" value=c.q0 min=0.005 max=0.3 step=0.005 />
                            <Num label="Width dq/q₀ (FWHM)" id="width" value=c.width_rel min=0.005 max=0.8 step=0.005 />
                            <Num label="Symmetry n (even)" id="symmetry" value=c.symmetry min=2.0 max=20.0 step=2.0 />
                            <Num label="Orientation η (0 isotropic)" id="eta" value=c.eta min=0.0 max=0.99 step=0.05 />
                            <Choice label="Lattice" id="lattice" value=c.lattice options=vec![("none", "None"), ("bcc", "BCC"), ("fcc", "FCC"), ("hexagonal", "Hexagonal"), ("lamellar", "Lamellar")] />
                            <Check label="Halos instead of rings" id="halo" value=c.halo />
                        </Show>
                    </section>
                </Show>
                <Show when=is_diffusion>
                    <section>
                        <h2>"Detector"</h2>
                        <Choice label="Size (px)" id="diffusion-size" value=c.size options=vec![("128", "128"), ("256", "256"), ("512", "512"), ("1000", "1000")] />
                        <p class="muted">"Beamstop and beam position follow the tags; background, counting noise and gaps are the engine's detector model."</p>
                    </section>
                    <DiffusionPanel c=dc state=diffusion on_sample=sample />
                </Show>
                <Show when=move || c.mode.get() == "tem">
                    <section>
                        <h2>"Micrograph"</h2>
                        <Num label="Width (px)" id="tem-width" value=c.tem_width min=16.0 max=4096.0 step=16.0 />
                        <Num label="Height (px)" id="tem-height" value=c.tem_height min=16.0 max=4096.0 step=16.0 />
                        <Num label="Mean grain diameter (px)" id="grain-mean" value=c.grain_mean min=4.0 max=1000.0 step=1.0 />
                        <Num label="Grain size spread σ(ln d)" id="grain-spread" value=c.grain_spread min=0.0 max=1.5 step=0.05 />
                        <Num label="Contrast (0–1)" id="contrast" value=c.contrast min=0.0 max=1.0 step=0.05 />
                        <Num label="Noise (0–1)" id="tem-noise" value=c.tem_noise min=0.0 max=1.0 step=0.05 />
                    </section>
                </Show>
                <section>
                    <h2>"Display"</h2>
                    <Choice label="Scale" id="scale" value=c.scale options=vec![("log", "Log"), ("linear", "Linear")] />
                    <Choice label="Colormap" id="colormap" value=c.colormap options=vec![("viridis", "Viridis"), ("inferno", "Inferno"), ("gray", "Gray")] />
                    <Check label="Overlay ground truth" id="overlay" value=c.overlay />
                </section>
                <Show when=move || !is_diffusion()>
                <section>
                    <h2>"Batch"</h2>
                    <Num label="Images" id="batch-count" value=c.batch_count min=1.0 max=MAX_BATCH as f64 step=1.0 />
                    <Choice label="Format" id="format" value=c.format options=vec![("png", "PNG"), ("tiff", "TIFF")] />
                    <button id="download" on:click=download disabled=move || busy.get()>
                        {move || if busy.get() { "Generating…" } else { "Generate batch & download zip" }}
                    </button>
                    <Show when=move || busy.get()>
                        <progress id="batch-progress" max=move || progress.get().1 value=move || progress.get().0></progress>
                        <span class="muted">{move || format!("{} / {}", progress.get().0, progress.get().1)}</span>
                    </Show>
                    {move || batch_message.get().map(|m| view! { <p class="message" id="batch-message">{m}</p> })}
                </section>
                </Show>
            </aside>
            <section class="viewer">
                {move || error.get().map(|e| view! { <p class="error" id="error" role="alert">{e}</p> })}
                <div class="canvas-wrap">
                    <canvas
                        id="preview"
                        node_ref=canvas_ref
                        data-first-preview-ms=move || first_preview_ms.get().map(|v| format!("{v:.0}")).unwrap_or_default()
                    ></canvas>
                </div>
                <Show when=is_diffusion>
                    <DiffusionProgressView state=diffusion />
                </Show>
                <Show when=move || c.mode.get() == "tem">
                    <button id="to-segment" class="secondary" on:click=send_to_segment>"Segment this image →"</button>
                </Show>
                <Show when=move || is_scattering() && shown.with(Option::is_some)>
                    <button id="to-classify" class="secondary" on:click=send_to_classify>"Classify this image →"</button>
                    <button id="to-annotate" class="secondary" on:click=send_to_annotate>"Annotate this image →"</button>
                    <Show when=move || is_diffusion() && diffusion.batch.with(|b| !b.is_empty())>
                        <button id="batch-to-annotate" class="secondary" on:click=send_batch_to_annotate>
                            {move || format!("Annotate all {} →", diffusion.batch.with(Vec::len))}
                        </button>
                        // The zip records every image's realism score: it waits for the classifiers.
                        <button id="diffuse-download" class="secondary" on:click=download_diffusion disabled=checking_batch>
                            {move || if checking_batch() { "Download batch as zip (checking…)" } else { "Download batch as zip" }}
                        </button>
                        {move || diffusion_message.get().map(|m| view! { <p class="message" id="diffuse-download-message">{m}</p> })}
                    </Show>
                    {move || to_annotate_error.get().map(|e| view! { <p class="error" role="alert" id="to-annotate-error">{e}</p> })}
                </Show>
                <Truth shown=shown />
                <p class="muted hint">{move || if is_diffusion() { "Keys: Enter sample, Esc cancel, ← → step through the batch, s new seed." } else { "Keys: ← → previous/next image, s new seed." }}</p>
            </section>
        </div>
    }
}

/// Ground truth of the shown image: tags, attributes, rings or grain statistics.
#[component]
fn Truth(shown: RwSignal<Option<Rc<Shown>>, LocalStorage>) -> impl IntoView {
    move || {
        let s = shown.get()?;
        let ms = format!("generated in {:.0} ms", s.generate_ms);
        Some(match &s.preview {
            Preview::Diffused(d) => view! { <DiffusionTruth sample=d.clone() /> }.into_any(),
            Preview::Saxs(x) => {
                let tags = x.truth.tags.clone();
                let rings = x
                    .truth
                    .rings
                    .iter()
                    .map(|r| {
                        format!(
                            "{} q = {:.4} Å⁻¹ (r = {:.0} px, dq/q = {:.3}, η = {:.2}, n = {})",
                            r.kind, r.q_inv_angstrom, r.radius_px, r.width_rel, r.eta, r.symmetry
                        )
                    })
                    .collect::<Vec<_>>();
                view! {
                    <div class="truth">
                        <p class="muted">{format!("{}×{} px, beam at ({:.0}, {:.0}) px, {ms}", x.image.counts.width(), x.image.counts.height(), x.truth.beam_x_px, x.truth.beam_y_px)}</p>
                        <h3>"Tags (15-label training set)"</h3>
                        <ul class="chips" id="tags">
                            {if tags.is_empty() { view! { <li class="chip empty">"none"</li> }.into_any() } else { tags.into_iter().map(|t| view! { <li class="chip">{t}</li> }).collect_view().into_any() }}
                        </ul>
                        <h3>"Attributes"</h3>
                        <ul class="chips attrs" id="attributes">{x.truth.attributes.iter().cloned().map(|t| view! { <li class="chip">{t}</li> }).collect_view()}</ul>
                        <h3>"Rings and peaks on the detector"</h3>
                        <ul class="rings">{rings.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}</ul>
                    </div>
                }
                .into_any()
            }
            Preview::Tem(t) => {
                let mut ecd = t.image.grain_ecd_px.clone();
                ecd.sort_by(f64::total_cmp);
                let n = ecd.len();
                let mean = ecd.iter().sum::<f64>() / n.max(1) as f64;
                let median = if n == 0 { 0.0 } else { ecd[n / 2] };
                view! {
                    <div class="truth">
                        <p class="muted">{format!("{}×{} px (W×H), {ms}", t.image.image.width(), t.image.image.height())}</p>
                        <p id="grain-stats">{format!("{n} grains · equivalent-circle diameter mean {mean:.1} px, median {median:.1} px")}</p>
                        <Histogram values=ecd />
                    </div>
                }
                .into_any()
            }
        })
    }
}

/// A small SVG histogram of equivalent-circle diameters.
#[component]
fn Histogram(values: Vec<f64>) -> impl IntoView {
    let max = values.iter().copied().fold(0.0, f64::max).max(1.0);
    let bins = 24usize;
    let mut counts = vec![0usize; bins];
    for v in &values {
        counts[((v / max) * bins as f64).min(bins as f64 - 1.0) as usize] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (w, h) = (480.0, 120.0);
    let bw = w / bins as f64;
    view! {
        <svg class="histogram" viewBox=format!("0 0 {w} {}", h + 18.0) role="img" aria-label="grain size histogram">
            {counts
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let bh = c as f64 / top * h;
                    view! { <rect x=i as f64 * bw + 1.0 y=h - bh width=bw - 2.0 height=bh></rect> }
                })
                .collect_view()}
            <text x="0" y=h + 14.0>"0"</text>
            <text x=w - 70.0 y=h + 14.0>{format!("{max:.0} px ECD")}</text>
        </svg>
    }
}
