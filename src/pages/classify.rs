//! The Classify page: X-ray scattering detector images in; tags, realism and profiles out.
//!
//! Images come from uploads (16- and 32-bit integer or float TIFF, including Pilatus-style
//! int32 with negative flagged pixels, EDF, PNG, JPEG) or from the Generate page. Each runs in the
//! compute worker: mask of invalid pixels, beam centre, Fourier–Bessel features, the joint
//! tagger, the realism ensemble, I(q) and I(χ). The user can then move the beam centre (click
//! the image) or paint a mask (drag) and classify again. Results accumulate in a list and export
//! as JSON or CSV; a file that cannot be read gets a message and earlier results stay.

use std::rc::Rc;

use imaging::display::{Colormap, Scale, overlay_mask, render_rgba};
use imaging::scattering::Mask;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::browser;
use crate::compute::{Classified, ComputeContext, Given, NamedFiles, SegmentSource, Stack};
use crate::pages::queue::{
    DropTarget, FileChooser, FileQueue, Outcome, QueueList, QueueStatus, State,
};
use crate::protocol::{Curve, ModelState, Setup, WeightsSource};
use crate::weights;

/// A scattering image waiting to be classified, from an upload or the Generate page.
#[derive(Clone)]
pub struct Incoming {
    /// File name shown in the list and used in exports.
    pub name: String,
    /// The file's bytes (decoded in the worker), or decoded counts.
    pub source: SegmentSource,
    /// The true tags, when the image was generated.
    pub truth_tags: Option<Vec<String>>,
}

/// Images handed over by other pages; the Classify page drains it.
pub type Inbox = RwSignal<Vec<Incoming>, LocalStorage>;

impl Outcome for Classified {
    fn summary(&self) -> String {
        let top: Vec<&str> = self
            .header
            .tags
            .iter()
            .filter(|(_, p)| *p >= 0.5)
            .map(|(t, _)| t.as_str())
            .collect();
        match (&self.header.implausible, self.header.no_pattern) {
            (None, None) => format!(
                "{} · realism {:.2}",
                top.join(", "),
                self.header.realism_score
            ),
            (Some(_), _) => format!("{} · not a plausible frame", top.join(", ")),
            (None, Some(_)) => format!("{} · no scattering pattern", top.join(", ")),
        }
    }
}

/// One run of an image: the beam centre and mask the user set, if any.
type Job = (Option<(f64, f64)>, Option<Vec<bool>>, Stack);

/// Whether a dropped file is HDF5/NeXus (by its signature, or its ending if too short).
fn is_hdf5_file(name: &str, bytes: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    imaging::hdf5::is_hdf5(bytes)
        || [".h5", ".hdf5", ".nxs", ".hdf"]
            .iter()
            .any(|e| lower.ends_with(e))
}

/// Whether `name` is an Eiger data file (`series_data_000001.h5`) whose master
/// (`series_master.h5`) is among `names`: its frames are read through the master.
fn is_linked_data_file(name: &str, names: &[String]) -> bool {
    imaging::hdf5::master_of(name).is_some_and(|master| names.contains(&master))
}

/// What the pointer does on the image.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Beam,
    Paint,
    Erase,
}

/// One classified image as an export record.
fn record(name: &str, c: &Classified) -> serde_json::Value {
    let h = &c.header;
    let r4 = |x: f64| (x * 1e4).round() / 1e4;
    serde_json::json!({
        "file": name,
        "width": h.width,
        "height": h.height,
        "beam_x_px": r4(h.beam_px.0),
        "beam_y_px": r4(h.beam_px.1),
        "beam": h.beam_source,
        "tags": h.tags.iter().map(|(t, p)| (t.clone(), serde_json::json!(r4(f64::from(*p))))).collect::<serde_json::Map<_, _>>(),
        "top_tags": h.tags.iter().filter(|(_, p)| *p >= 0.5).map(|(t, _)| t.clone()).collect::<Vec<_>>(),
        "plausibility": {"plausible": h.implausible.is_none(), "summary": h.implausible},
        "realism": match h.not_judged() {
            None => serde_json::json!({
                "judged": true,
                "score": r4(h.realism_score),
                "realistic": h.realistic,
                "members": h.votes.iter().map(|v| (v.name.clone(), serde_json::json!({"probability": r4(f64::from(v.probability)), "weight": r4(v.weight)}))).collect::<serde_json::Map<_, _>>(),
            }),
            Some(reason) => serde_json::json!({"judged": false, "score": null, "realistic": null, "reason": reason}),
        },
        "setup": {"pixel_size_um": h.setup.pixel_size_um, "distance_m": h.setup.distance_m, "energy_kev": h.setup.energy_kev, "source": h.setup_source},
    })
}

/// CSV of classified images: file, beam, realism, then one column per tag (alphabetical).
fn csv(rows: &[(String, Rc<Classified>)]) -> String {
    let mut tags: Vec<String> = rows
        .first()
        .map(|(_, c)| c.header.tags.iter().map(|(t, _)| t.clone()).collect())
        .unwrap_or_default();
    tags.sort();
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from("file,beam_x_px,beam_y_px,beam,realism_score,realistic");
    for t in &tags {
        out.push(',');
        out.push_str(&quote(t));
    }
    out.push('\n');
    for (name, c) in rows {
        let h = &c.header;
        let (score, realistic) = match h.not_judged() {
            None => (format!("{:.4}", h.realism_score), h.realistic.to_string()),
            Some(_) => (String::new(), "not judged".to_string()),
        };
        out.push_str(&format!(
            "{},{:.2},{:.2},{},{score},{realistic}",
            quote(name),
            h.beam_px.0,
            h.beam_px.1,
            h.beam_source,
        ));
        for t in &tags {
            let p = h
                .tags
                .iter()
                .find(|(n, _)| n == t)
                .map_or(f32::NAN, |x| x.1);
            out.push_str(&format!(",{p:.4}"));
        }
        out.push('\n');
    }
    out
}

/// Draws the image (log scale, viridis), the mask in red and the beam centre.
fn draw(canvas: &web_sys::HtmlCanvasElement, c: &Classified, mask: &[bool], beam: (f64, f64)) {
    let (w, h) = (c.header.width, c.header.height);
    let mut rgba = render_rgba(&c.display, Scale::Linear, Colormap::Viridis);
    overlay_mask(&mut rgba, mask, [255, 60, 60], 0.45);
    let Ok(ctx) = browser::put_rgba(canvas, w as u32, h as u32, &rgba) else {
        return;
    };
    let arm = (w.max(h) as f64 / 30.0).max(4.0);
    ctx.set_line_width((w.max(h) as f64 / 400.0).max(1.0));
    ctx.set_stroke_style_str("rgba(255, 255, 255, 0.95)");
    ctx.begin_path();
    ctx.move_to(beam.0 - arm, beam.1);
    ctx.line_to(beam.0 + arm, beam.1);
    ctx.move_to(beam.0, beam.1 - arm);
    ctx.line_to(beam.0, beam.1 + arm);
    ctx.stroke();
}

/// Pointer position in image pixels.
fn image_point(ev: &leptos::ev::MouseEvent, w: usize, h: usize) -> Option<(f64, f64)> {
    let canvas = ev.target()?.dyn_into::<web_sys::HtmlCanvasElement>().ok()?;
    let rect = canvas.get_bounding_client_rect();
    if rect.width() <= 0.0 || rect.height() <= 0.0 {
        return None;
    }
    Some((
        (f64::from(ev.client_x()) - rect.left()) * w as f64 / rect.width(),
        (f64::from(ev.client_y()) - rect.top()) * h as f64 / rect.height(),
    ))
}

/// The Classify page.
#[component]
pub fn ClassifyPage() -> impl IntoView {
    let inbox = use_context::<Inbox>();
    let compute = use_context::<ComputeContext>();
    let tool = RwSignal::new(Tool::Beam);
    let brush_px = RwSignal::new(6.0f64);
    // The selected image's editable beam centre and mask.
    let beam_edit = RwSignal::new(None::<(f64, f64)>);
    let mask_edit: RwSignal<Option<Mask>, LocalStorage> = RwSignal::new_local(None);
    let painting = RwSignal::new(false);
    let setup_text = [
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    ];
    let canvas_ref = NodeRef::<leptos::html::Canvas>::new();

    let setup = move || -> Option<Setup> {
        let v: Vec<Option<f64>> = setup_text
            .iter()
            .map(|s| {
                s.get_untracked()
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| *v > 0.0 && v.is_finite())
            })
            .collect();
        match v[..] {
            [Some(pixel_size_um), Some(distance_m), Some(energy_kev)] => Some(Setup {
                pixel_size_um,
                distance_m,
                energy_kev,
            }),
            _ => None,
        }
    };

    // HDF5/NeXus files dropped so far (by name: an Eiger master file reads its data files
    // through them), and which frames of each stack are classified.
    let hdf5_files: StoredValue<NamedFiles, LocalStorage> = StoredValue::new_local(Vec::new());
    let stacks: StoredValue<std::collections::HashMap<String, Stack>, LocalStorage> =
        StoredValue::new_local(Default::default());
    let stack_of = move |name: &str| {
        stacks
            .with_value(|m| m.get(name).cloned())
            .unwrap_or_default()
    };
    // A pyFAI calibration dropped with the images: (file name, its direct-beam point), and what
    // the page says about it (`Err`: why it could not be read).
    let poni: RwSignal<Option<(String, (f64, f64))>> = RwSignal::new(None);
    let poni_message: RwSignal<Option<Result<String, String>>> = RwSignal::new(None);

    // One image at a time in the worker: mask, beam centre, features, tagger, realism.
    let queue = FileQueue::new(
        move |incoming: Incoming, (beam, mask, stack): Job, progress| async move {
            let compute = compute
                .map(|c| c.get_value())
                .ok_or("no compute worker (a bug: please report it)")?;
            // The calibration is named while its own beam centre is the one used.
            let from = poni
                .get_untracked()
                .filter(|(_, b)| beam == Some(*b))
                .map(|(name, _)| name);
            compute
                .classify(
                    incoming.source,
                    mask.as_deref(),
                    Given {
                        beam_px: beam,
                        setup: setup(),
                        from,
                    },
                    &stack,
                    move |s| progress(s),
                )
                .await
        },
    );
    // Reads a PONI file: its beam centre for the images that follow, its set-up into the fields.
    let use_poni = move |name: String, bytes: &[u8]| {
        let parsed = std::str::from_utf8(bytes)
            .map_err(|_| "not a text file".to_string())
            .and_then(|text| imaging::poni::parse_poni(text).map_err(|e| e.to_string()));
        match parsed {
            Ok(p) => {
                let g = p.geometry(1, 1);
                let beam = p.beam_centre_px();
                for (k, v) in [g.pixel_size_um, g.distance_m, g.energy_kev]
                    .into_iter()
                    .enumerate()
                {
                    setup_text[k].set(format!("{}", (v * 1e4).round() / 1e4));
                }
                poni.set(Some((name.clone(), beam)));
                poni_message.set(Some(Ok(format!(
                    "Calibration {name}: beam centre ({:.1}, {:.1}) px, {:.1} µm pixels, {:.4} m, {:.3} keV; used for the images added from now on.",
                    beam.0, beam.1, g.pixel_size_um, g.distance_m, g.energy_kev
                ))));
            }
            Err(e) => poni_message.set(Some(Err(format!("{name}: {e}")))),
        }
    };
    let items = queue.items;
    let enqueue = move |new: Vec<Incoming>| {
        for incoming in new {
            queue.add(
                incoming.name.clone(),
                incoming,
                (None, None, Stack::default()),
            );
        }
    };
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
        // Calibrations first, so that images dropped with one use it.
        let (calibrations, images): (Vec<_>, Vec<_>) = files
            .into_iter()
            .partition(|(name, _)| name.to_ascii_lowercase().ends_with(".poni"));
        for (name, bytes) in calibrations {
            use_poni(name, &bytes);
        }
        let beam = poni.get_untracked().map(|(_, b)| b);
        let images: Vec<(String, Rc<Vec<u8>>)> = images
            .into_iter()
            .map(|(name, bytes)| (name, Rc::new(bytes)))
            .collect();
        hdf5_files.update_value(|files| {
            files.extend(
                images
                    .iter()
                    .filter(|(name, bytes)| is_hdf5_file(name, bytes))
                    .cloned(),
            )
        });
        let names: Vec<String> =
            hdf5_files.with_value(|f| f.iter().map(|(n, _)| n.clone()).collect());
        for (name, bytes) in images {
            let stack = if is_hdf5_file(&name, &bytes) {
                if is_linked_data_file(&name, &names) {
                    continue;
                }
                let stack = Stack {
                    frames: Default::default(),
                    linked: hdf5_files.get_value(),
                };
                stacks.update_value(|m| {
                    m.insert(name.clone(), stack.clone());
                });
                stack
            } else {
                Stack::default()
            };
            let source = SegmentSource::File(bytes);
            let incoming = Incoming {
                name: name.clone(),
                source,
                truth_tags: None,
            };
            queue.add(name, incoming, (beam, None, stack));
        }
    });
    let current = move || queue.current();

    // A new result: the edits start from what the worker used.
    Effect::new(move |_| {
        let Some((_, c)) = current() else { return };
        beam_edit.set(Some(c.header.beam_px));
        mask_edit.set(Mask::from_flags(
            c.header.width,
            c.header.height,
            c.mask.clone(),
        ));
    });
    // Redraw on any change of result, beam or mask.
    Effect::new(move |_| {
        let (Some(canvas), Some((_, c))) = (canvas_ref.get(), current()) else {
            return;
        };
        let beam = beam_edit.get().unwrap_or(c.header.beam_px);
        mask_edit.with(|m| {
            let flags = m.as_ref().map_or(&c.mask[..], |m| m.as_slice());
            draw(&canvas, &c, flags, beam);
        });
    });

    let paint_at = move |p: (f64, f64)| {
        let erase = tool.get_untracked() == Tool::Erase;
        let r = brush_px.get_untracked();
        mask_edit.update(|m| {
            if let Some(m) = m {
                m.paint_stroke(&[p], r, erase);
            }
        });
    };
    let on_pointer_down = move |ev: leptos::ev::MouseEvent| {
        let Some((_, c)) = current() else { return };
        let Some(p) = image_point(&ev, c.header.width, c.header.height) else {
            return;
        };
        match tool.get_untracked() {
            Tool::Beam => beam_edit.set(Some(p)),
            Tool::Paint | Tool::Erase => {
                painting.set(true);
                paint_at(p);
            }
        }
    };
    let on_pointer_move = move |ev: leptos::ev::MouseEvent| {
        if !painting.get_untracked() {
            return;
        }
        let Some((_, c)) = current() else { return };
        if let Some(p) = image_point(&ev, c.header.width, c.header.height) {
            paint_at(p);
        }
    };

    // Classify the selected image again with the edited beam centre and mask.
    let reclassify = move |_| {
        let Some((it, _)) = current() else { return };
        let mask = mask_edit.with_untracked(|m| m.as_ref().map(|m| m.as_slice().to_vec()));
        queue.set_state(it.id, State::Queued);
        queue.rerun(it.id, (beam_edit.get_untracked(), mask, stack_of(&it.name)));
    };
    // The frames of a stack to classify ("first" and "last", from 0; summed when a range).
    let frame_text = [
        RwSignal::new(String::from("0")),
        RwSignal::new(String::from("0")),
    ];
    let frame_error: RwSignal<Option<String>> = RwSignal::new(None);
    Effect::new(move |_| {
        if let Some((_, c)) = current()
            && let Some(st) = &c.header.stack
        {
            frame_text[0].set(st.frames.first.to_string());
            frame_text[1].set(st.frames.last.to_string());
        }
    });
    let classify_frames = move |_| {
        let Some((it, c)) = current() else { return };
        let Some(count) = c.header.stack.as_ref().map(|s| s.frame_count) else {
            return;
        };
        let text = format!(
            "{}-{}",
            frame_text[0].get_untracked().trim(),
            frame_text[1].get_untracked().trim()
        );
        let frames = match text.parse::<imaging::load::Frames>() {
            Ok(f) if f.last < count => f,
            Ok(f) => {
                frame_error.set(Some(format!(
                    "frame {} asked for; this stack has frames 0 to {}",
                    f.last,
                    count - 1
                )));
                return;
            }
            Err(e) => {
                frame_error.set(Some(e));
                return;
            }
        };
        frame_error.set(None);
        let mut stack = stack_of(&it.name);
        stack.frames = frames;
        stacks.update_value(|m| {
            m.insert(it.name.clone(), stack.clone());
        });
        let mask = mask_edit.with_untracked(|m| m.as_ref().map(|m| m.as_slice().to_vec()));
        // An unedited centre from the file header or an estimate is not "given": the header's
        // is read again, or the new frames' own estimated (a PONI's or a typed one is kept).
        let from_file = matches!(
            c.header.beam_source.as_str(),
            "file header" | "estimated" | "image centre"
        );
        let beam = beam_edit
            .get_untracked()
            .filter(|b| *b != c.header.beam_px || !from_file);
        queue.set_state(it.id, State::Queued);
        queue.rerun(it.id, (beam, mask, stack));
    };
    let clear_mask = move |_| {
        let Some((_, c)) = current() else { return };
        // Invalid detector pixels stay excluded.
        let invalid: Vec<bool> = c.display.pixels().iter().map(|v| !v.is_finite()).collect();
        mask_edit.set(Mask::from_flags(c.header.width, c.header.height, invalid));
    };

    let done_rows = move || -> Vec<(String, Rc<Classified>)> {
        items.with_untracked(|v| {
            v.iter()
                .filter_map(|it| match &it.state {
                    State::Done(c) => Some((it.name.clone(), c.clone())),
                    _ => None,
                })
                .collect()
        })
    };
    let export = move |kind: &'static str| {
        let rows = done_rows();
        if rows.is_empty() {
            return;
        }
        let result = if kind == "csv" {
            browser::download(csv(&rows).as_bytes(), "classified.csv", "text/csv")
        } else {
            let all: Vec<serde_json::Value> = rows.iter().map(|(n, c)| record(n, c)).collect();
            browser::download(
                serde_json::Value::Array(all).to_string().as_bytes(),
                "classified.json",
                "application/json",
            )
        };
        if let Err(e) = result {
            web_sys::console::error_1(&format!("export failed: {e}").into());
        }
    };

    // Typed beam coordinates (axis 0 = x, 1 = y).
    let set_beam = move |axis: usize, text: &str| {
        if let Ok(v) = text.trim().parse::<f64>()
            && v.is_finite()
        {
            beam_edit.update(|b| {
                if let Some(b) = b {
                    if axis == 0 { b.0 = v } else { b.1 = v }
                }
            });
        }
    };
    let field = move |label: &'static str, id: &'static str, k: usize, hint: &'static str| {
        let s = setup_text[k];
        view! {
            <label class="field">
                <span>{label}</span>
                <input id=id type="number" min="0" step="any" placeholder=hint
                    prop:value=move || s.get()
                    on:input=move |ev| s.set(event_target_value(&ev)) />
            </label>
        }
    };

    view! {
        <DropTarget page="classify" on_files=on_files>
            <aside class="controls">
                <section>
                    <h2>"Detector images"</h2>
                    <FileChooser prefix="classify" on_files=on_files
                        accept=".png,.tif,.tiff,.edf,.cbf,.h5,.hdf5,.nxs,.jpg,.jpeg,.poni,image/png,image/tiff,image/jpeg"
                        hint="Choose scattering images or drop them here (TIFF 16/32-bit integer or float, Pilatus int32, EDF, CBF, HDF5/NeXus: an Eiger master file with its data files, PNG), with a pyFAI .poni calibration if you have one" />
                    {move || poni_message.get().map(|m| match m {
                        Ok(text) => view! { <p class="muted" id="poni-status" data-state="ok">{text}</p> }.into_any(),
                        Err(text) => view! { <p class="error" id="poni-status" data-state="error" role="alert">{text}</p> }.into_any(),
                    })}
                    <details>
                        <summary>"Detector set-up for q (optional)"</summary>
                        {field("Pixel size (µm)", "setup-pixel", 0, "reference")}
                        {field("Distance (m)", "setup-distance", 1, "reference")}
                        {field("Energy (keV)", "setup-energy", 2, "reference")}
                        <p class="muted">"All three, or the reference set-up of the synthetic engine."</p>
                    </details>
                    {compute.map(|c| view! { <ClassifierStatus model=c.get_value().classifiers /> })}
                </section>
                <section>
                    <h2>"Results"</h2>
                    <QueueList queue=queue prefix="classify"
                        empty="No images yet. Use the Generate page's “Classify this image”, or choose files." />
                    <div class="downloads">
                        <button id="export-json" on:click=move |_| export("json")>"Export JSON"</button>
                        <button id="export-csv" on:click=move |_| export("csv")>"Export CSV"</button>
                    </div>
                </section>
            </aside>
            <section class="viewer">
                <QueueStatus queue=queue prefix="classify" />
                <Show when=move || current().is_some()>
                    <div class="classify-view">
                        <figure>
                            <figcaption>
                                "log₁₀(1 + counts); red: masked; cross: beam centre"
                            </figcaption>
                            <canvas id="classify-image" node_ref=canvas_ref
                                on:mousedown=on_pointer_down
                                on:mousemove=on_pointer_move
                                on:mouseup=move |_| painting.set(false)
                                on:mouseleave=move |_| painting.set(false)></canvas>
                            <div class="tools">
                                <label class="inline"><input type="radio" name="tool" id="tool-beam" checked=true on:change=move |_| tool.set(Tool::Beam) />"Set beam centre"</label>
                                <label class="inline"><input type="radio" name="tool" id="tool-paint" on:change=move |_| tool.set(Tool::Paint) />"Paint mask"</label>
                                <label class="inline"><input type="radio" name="tool" id="tool-erase" on:change=move |_| tool.set(Tool::Erase) />"Erase mask"</label>
                                <label class="inline">"brush "
                                    <input id="brush" type="range" min="1" max="40" step="1"
                                        prop:value=move || brush_px.get().to_string()
                                        on:input=move |ev| if let Ok(v) = event_target_value(&ev).parse() { brush_px.set(v) } />
                                </label>
                                <label class="inline">"beam x "
                                    <input id="beam-x" type="number" step="any"
                                        prop:value=move || beam_edit.get().map(|b| format!("{:.1}", b.0)).unwrap_or_default()
                                        on:change=move |ev| set_beam(0, &event_target_value(&ev)) />
                                </label>
                                <label class="inline">"y "
                                    <input id="beam-y" type="number" step="any"
                                        prop:value=move || beam_edit.get().map(|b| format!("{:.1}", b.1)).unwrap_or_default()
                                        on:change=move |ev| set_beam(1, &event_target_value(&ev)) />
                                </label>
                                <button id="clear-mask" class="secondary" on:click=clear_mask>"Clear mask"</button>
                                <button id="reclassify" on:click=reclassify>"Classify again"</button>
                            </div>
                        </figure>
                        {move || current().and_then(|(_, c)| c.header.stack.clone()).map(|st| view! {
                            <div class="tools" id="frame-picker" data-count=st.frame_count data-taken=st.frames.to_string()>
                                <span>{format!("{} frame{} in {}: classify", st.frame_count, if st.frame_count == 1 { "" } else { "s" }, st.path)}</span>
                                <label class="inline">"from "
                                    <input id="frame-first" type="number" min="0" max=st.frame_count - 1 step="1"
                                        prop:value=move || frame_text[0].get()
                                        on:input=move |ev| frame_text[0].set(event_target_value(&ev)) />
                                </label>
                                <label class="inline">"to "
                                    <input id="frame-last" type="number" min="0" max=st.frame_count - 1 step="1"
                                        prop:value=move || frame_text[1].get()
                                        on:input=move |ev| frame_text[1].set(event_target_value(&ev)) />
                                </label>
                                <button id="classify-frames" on:click=classify_frames>"Classify these frames (summed)"</button>
                                {move || frame_error.get().map(|e| view! { <p class="error" role="alert" id="frame-error">{e}</p> })}
                            </div>
                        })}
                        {move || current().map(|(it, c)| view! { <Results c=c truth=it.input.truth_tags.clone() /> })}
                    </div>
                </Show>
            </section>
        </DropTarget>
    }
}

#[component]
fn ClassifierStatus(model: ReadSignal<ModelState>) -> impl IntoView {
    move || {
        match model.get() {
        ModelState::NotLoaded => view! { <p class="muted" id="classifier-status" data-state="idle">{format!("Models: loaded with the first image ({}, {})", weights::TAGGER.name, weights::REALISM.name)}</p> }.into_any(),
        ModelState::Loading(done, total) => view! {
            <div id="classifier-status" data-state="loading">
                <p class="muted">{format!("Downloading the models: {:.1} MB{}", done as f64 / 1e6, total.map(|t| format!(" of {:.1} MB", t as f64 / 1e6)).unwrap_or_default())}</p>
                <progress max=total.unwrap_or(0) as f64 value=done as f64></progress>
            </div>
        }.into_any(),
        ModelState::Ready { source, parts } => {
            let cached = source == WeightsSource::Cache;
            let total: usize = parts.iter().map(|p| p.1).sum();
            view! {
                <p class="muted" id="classifier-status" data-state="ready" data-source=if cached { "cache" } else { "network" }>
                    {format!("Models {} and {} ready ({}; {} k parameters), SHA-256 verified",
                        weights::TAGGER.name, weights::REALISM.name, if cached { "from this browser's cache" } else { "downloaded" }, total / 1000)}
                </p>
            }.into_any()
        }
        ModelState::Failed(e) => view! { <p class="error" id="classifier-status" data-state="error">{format!("Models: {e}")}</p> }.into_any(),
    }
    }
}

/// Tags, realism votes, profiles and timings of one result.
#[component]
fn Results(c: Rc<Classified>, truth: Option<Vec<String>>) -> impl IntoView {
    let h = &c.header;
    let not_judged = h.not_judged();
    let verdict = match (&not_judged, h.realistic) {
        (Some(_), _) => "not judged",
        (None, true) => "realistic",
        (None, false) => "fake",
    };
    let beam = format!(
        "Beam centre ({:.1}, {:.1}) px, {}{}",
        h.beam_px.0,
        h.beam_px.1,
        h.beam_source,
        h.beam_explained
            .map(|e| format!(" (rings explain {:.0} % of the variance)", 100.0 * e))
            .unwrap_or_default()
    );
    let timings = h
        .stage_ms
        .iter()
        .map(|(k, v)| format!("{k} {v:.0} ms"))
        .collect::<Vec<_>>()
        .join(" · ");
    // The same timings for scripts (the browser latency benchmark): {"stage": ms, …}.
    let stage_ms_json = serde_json::Value::Object(
        h.stage_ms
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect(),
    )
    .to_string();
    let truth_set = truth.clone().unwrap_or_default();
    let masked = c.mask.iter().filter(|&&m| m).count() as f64 / c.mask.len().max(1) as f64;
    view! {
        <div class="results" id="classify-results" data-masked=format!("{masked:.4}") data-beam=h.beam_source.clone()>
            {h.stack.as_ref().map(|st| view! {
                <p class="muted" id="stack-info">{if st.frames.first == st.frames.last {
                    format!("Frame {} of {} ({})", st.frames.first, st.frame_count, st.path)
                } else {
                    format!("Frames {} to {} of {}, summed ({})", st.frames.first, st.frames.last, st.frame_count, st.path)
                }}</p>
            })}
            <p class="muted" id="beam-info">{beam}</p>
            {h.beam_doubtful.then(|| view! {
                <p class="notice" id="beam-warning" role="status">
                    "This beam centre may be wrong: the rings around it explain little of the image. "
                    "The tags depend on it: if it is off, click the true centre on the image (or type it) and press Classify again."
                </p>
            })}
            {h.notice.clone().map(|n| view! { <p class="notice">{n}</p> })}
            {h.implausible.clone().map(|why| view! {
                <p class="notice" id="plausibility" role="status">
                    {format!("Not a plausible detector frame: {why}. The tags below are what the tagger says about it anyway; its realism is not judged.")}
                </p>
            })}
            {h.no_pattern.map(|(p, threshold)| view! {
                <p class="notice" id="no-pattern" role="status">
                    {format!("This does not look like a scattering pattern (the realism ensemble's gate gives {p:.2}, below its threshold {threshold:.2}). The tags below are what the tagger says about it anyway; its realism is not judged.")}
                </p>
            })}
            <h3>"Tags"{truth.is_some().then_some(" (✓ = true tag of the generated image)")}</h3>
            <ul class="bars" id="tag-list">
                {h.tags.iter().map(|(t, p)| {
                    let on = *p >= 0.5;
                    let true_tag = truth_set.contains(t);
                    view! {
                        <li class={if on { "bar on" } else { "bar" }} data-tag=t.clone() data-p=format!("{p:.4}")>
                            <span class="label">{t.clone()}{true_tag.then_some(" ✓")}</span>
                            <span class="track"><span class="fill" style=format!("width:{:.1}%", 100.0 * p)></span></span>
                            <span class="value">{format!("{p:.2}")}</span>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <h3>"Realism"</h3>
            <p id="realism" data-score=format!("{:.4}", h.realism_score) data-verdict=verdict>
                {match &not_judged {
                    None => format!("{verdict}: weighted soft vote {:.2} (threshold {:.2})", h.realism_score, h.vote_threshold),
                    Some(reason) => format!("not judged: {reason}; the ensemble judges scattering patterns only"),
                }}
            </p>
            <ul class="bars" id="votes" hidden=not_judged.is_some()>
                {h.votes.iter().map(|v| view! {
                    <li class={if f64::from(v.probability) > v.threshold { "bar on" } else { "bar" }} data-member=v.name.clone()>
                        <span class="label" title=format!("calls the image realistic above {:.2}", v.threshold)>{format!("{} (weight {:.2})", v.name, v.weight)}</span>
                        <span class="track"><span class="fill" style=format!("width:{:.1}%", 100.0 * v.probability)></span></span>
                        <span class="value">{format!("{:.2}", v.probability)}</span>
                    </li>
                }).collect_view()}
            </ul>
            <div class="plots">
                <Plot id="plot-iq" curve=h.iq.clone() log_x=true log_y=true x_label="q (Å⁻¹)" y_label="I(q)" />
                <Plot id="plot-ichi" curve=h.ichi.clone() log_x=false log_y=false x_label="χ (°)" y_label="I(χ)" />
            </div>
            <p class="muted" id="classify-timings" data-stage-ms=stage_ms_json>{format!("q from pixel {:.1} µm, distance {:.3} m, {:.2} keV ({}). {timings}", h.setup.pixel_size_um, h.setup.distance_m, h.setup.energy_kev, h.setup_source)}</p>
        </div>
    }
}

/// A line plot of a profile as SVG, with optional log axes and decade (or 5-step) ticks.
#[component]
fn Plot(
    id: &'static str,
    curve: Curve,
    log_x: bool,
    log_y: bool,
    x_label: &'static str,
    y_label: &'static str,
) -> impl IntoView {
    let tx = |v: f64| if log_x { v.log10() } else { v };
    let ty = |v: f64| if log_y { v.log10() } else { v };
    let points: Vec<(f64, f64)> = curve
        .x
        .iter()
        .zip(&curve.y)
        .filter(|(x, y)| {
            x.is_finite() && y.is_finite() && (!log_x || **x > 0.0) && (!log_y || **y > 0.0)
        })
        .map(|(&x, &y)| (tx(x), ty(y)))
        .collect();
    let (w, h, left, bottom) = (420.0, 220.0, 46.0, 30.0);
    let (pw, ph) = (w - left - 8.0, h - bottom - 8.0);
    let range = |f: fn(&(f64, f64)) -> f64| {
        let lo = points.iter().map(f).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (lo.min(0.0), lo.max(0.0) + 1.0)
        }
    };
    let (x0, x1) = range(|p| p.0);
    let (y0, y1) = range(|p| p.1);
    let sx = move |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let sy = move |y: f64| 8.0 + ph - (y - y0) / (y1 - y0) * ph;
    let path: String = points
        .iter()
        .enumerate()
        .map(|(i, (x, y))| {
            format!(
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { "L" },
                sx(*x),
                sy(*y)
            )
        })
        .collect();
    // Ticks: integer decades on log axes, 5 even steps on linear ones.
    let ticks = |lo: f64, hi: f64, log: bool| -> Vec<(f64, String)> {
        if log {
            (lo.ceil() as i32..=hi.floor() as i32)
                .map(|d| (f64::from(d), format!("1e{d}")))
                .collect()
        } else {
            (0..=4)
                .map(|k| {
                    let v = lo + (hi - lo) * f64::from(k) / 4.0;
                    (v, format!("{v:.0}"))
                })
                .collect()
        }
    };
    view! {
        <svg class="plot" id=id viewBox=format!("0 0 {w} {h}") role="img" aria-label=format!("{y_label} against {x_label}") data-points=points.len()>
            <rect class="frame" x=left y="8" width=pw height=ph></rect>
            {ticks(x0, x1, log_x).into_iter().map(|(v, t)| view! {
                <line class="tick" x1=sx(v) x2=sx(v) y1=8.0 + ph y2=12.0 + ph></line>
                <text x=sx(v) - 10.0 y=h - 14.0>{t}</text>
            }).collect_view()}
            {ticks(y0, y1, log_y).into_iter().map(|(v, t)| view! {
                <line class="tick" x1=left - 4.0 x2=left y1=sy(v) y2=sy(v)></line>
                <text x="2" y=sy(v) + 4.0>{t}</text>
            }).collect_view()}
            <path class="line" d=path></path>
            <text x=left + pw / 2.0 - 20.0 y=h - 1.0>{x_label}</text>
            <text x=left + 6.0 y="22">{y_label}</text>
        </svg>
    }
}
