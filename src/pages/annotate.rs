//! The Annotate page: experts label stored images realistic / fake / unsure and tag them, with
//! the keyboard, offline. Packs and label exports come in and go out as zips; every label is
//! committed to IndexedDB the moment it is given ([`crate::store`]).

use std::collections::HashMap;
use std::rc::Rc;

use imaging::display::{Colormap, Scale, render_rgba};
use labels::annotate::{Action, Order, QueueEntry, TAG_KEYS, action, help, queue};
use labels::exchange::{self, Image as PackImage};
use labels::{Label, TAGS};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::browser;
use crate::compute::ComputeContext;
use crate::rounds::{self, Focus, StoreEpoch};
use crate::store::{Prediction, Store, StoredImage, StoredLabel};

use crate::browser::now_rfc3339 as now;

/// A decoded image ready to paint.
struct Painted {
    width: u32,
    height: u32,
    rgba: Vec<u8>,
}

/// Decodes stored bytes for display (log scale, viridis).
fn paintable(bytes: &[u8]) -> Result<Painted, String> {
    let loaded = imaging::load::load_gray(bytes, 1).map_err(|e| e.to_string())?;
    let image = loaded.image.to_f32();
    Ok(Painted {
        width: image.width() as u32,
        height: image.height() as u32,
        rgba: render_rgba(&image, Scale::Log, Colormap::Viridis),
    })
}

/// Everything the page holds from the store.
#[derive(Clone, Default)]
struct Data {
    images: Vec<StoredImage>,
    /// All annotators' labels, by (item, annotator).
    labels: HashMap<(String, String), StoredLabel>,
    predictions: HashMap<String, Prediction>,
}

/// Reads the store; predictions are those of `model`, the version the app classifies with.
async fn load(store: &Store, model: &str) -> Result<Data, String> {
    let images = store.images().await?;
    let labels = store
        .labels()
        .await?
        .into_iter()
        .map(|l| ((l.label.item.clone(), l.label.annotator.clone()), l))
        .collect();
    let predictions = store
        .predictions()
        .await?
        .into_iter()
        .filter(|p| p.model == model)
        .map(|p| (p.item.clone(), p))
        .collect();
    Ok(Data {
        images,
        labels,
        predictions,
    })
}

/// The Annotate page.
#[component]
pub fn AnnotatePage() -> impl IntoView {
    let compute = use_context::<ComputeContext>();
    let store: RwSignal<Option<Store>, LocalStorage> = RwSignal::new_local(None);
    let data: RwSignal<Data, LocalStorage> = RwSignal::new_local(Data::default());
    let loaded = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let message = RwSignal::new(None::<String>);
    let annotator = RwSignal::new(String::new());
    let name_draft = RwSignal::new(String::new());
    let order = RwSignal::new(Order::Pack);
    let pos = RwSignal::new(0usize);
    let zoom = RwSignal::new(1.0f64);
    let show_help = RwSignal::new(false);
    let include_images = RwSignal::new(false);
    let pack_id = RwSignal::new(String::new());
    let instructions = RwSignal::new(String::from(
        "Label each image realistic (r), fake (f) or unsure (u); toggle the tags you see (1–0, q w e t y).",
    ));
    // Tags toggled on an image not yet answered: saved with the answer.
    let pending_tags: RwSignal<HashMap<String, Vec<String>>> = RwSignal::new(HashMap::new());
    // Saves in flight (for the progress line and the tests).
    let in_flight = RwSignal::new(0usize);
    let saved = RwSignal::new(0usize);
    // Finished imports, successful or not (tests wait on it).
    let imports = RwSignal::new(0usize);
    let predicting = RwSignal::new(None::<(usize, usize)>);
    // (item, the label before the change) for undo.
    let undo: StoredValue<Vec<(String, Option<StoredLabel>)>> = StoredValue::new(Vec::new());
    let cache: StoredValue<HashMap<String, Rc<Painted>>, LocalStorage> =
        StoredValue::new_local(HashMap::new());
    let key_at = StoredValue::new(None::<f64>);
    let latency_ms = RwSignal::new(None::<f64>);
    // Images painted so far (the latency benchmark waits on it).
    let paints = RwSignal::new(0usize);
    let canvas_ref = NodeRef::<leptos::html::Canvas>::new();
    let note_ref = NodeRef::<leptos::html::Textarea>::new();

    let model_version = compute.map(|c| c.get_value().model_version);
    let epoch = use_context::<StoreEpoch>();
    let focus = use_context::<Focus>();
    let refresh = move || {
        let model = model_version.map_or_else(
            || crate::protocol::SHIPPED_MODEL.to_string(),
            |m| m.get_untracked(),
        );
        leptos::task::spawn_local(async move {
            let Some(s) = store.get_untracked() else {
                return;
            };
            match load(&s, &model).await {
                Ok(d) => {
                    data.set(d);
                    loaded.set(true);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };

    // Open the store once, and read the annotator's name.
    leptos::task::spawn_local(async move {
        match Store::open().await {
            Ok(s) => {
                if let Ok(Some(name)) = s.setting("annotator").await {
                    annotator.set(name);
                }
                store.set(Some(s));
                refresh();
            }
            Err(e) => error.set(Some(e)),
        }
    });

    // Another page changed the store (labels from the latent-space view, new predictions) or
    // the model changed: read it again.
    Effect::new(move |first: Option<()>| {
        epoch.map(|e| e.get());
        model_version.map(|m| m.get());
        if first.is_some() {
            refresh();
        }
    });

    // The queue: indices into `data.images`, in the chosen order.
    let queue_idx = Memo::new(move |_| {
        // A stable seed for the random order: the annotator's name, hashed.
        let seed = labels::annotate::fnv1a(annotator.get().bytes());
        data.with(|d| {
            let entries: Vec<QueueEntry> = d
                .images
                .iter()
                .map(|i| QueueEntry {
                    order: i.order,
                    prediction: d.predictions.get(&i.item).map(|p| (p.realism, p.threshold)),
                })
                .collect();
            queue(&entries, order.get(), seed)
        })
    });
    let total = move || queue_idx.with(Vec::len);

    // An image picked in the latent-space view: show it once it is loaded.
    Effect::new(move |_| {
        let Some(item) = focus.and_then(|f| f.get()) else {
            return;
        };
        let at = data.with(|d| d.images.iter().position(|i| i.item == item));
        if let Some(at) = at
            && let Some(p) = queue_idx.with(|q| q.iter().position(|&i| i == at))
        {
            pos.set(p);
            if let Some(f) = focus {
                f.set(None);
            }
        }
    });
    let current = move || -> Option<StoredImage> {
        let idx = queue_idx.with(|q| q.get(pos.get()).copied())?;
        data.with(|d| d.images.get(idx).cloned())
    };
    let mine = move |item: &str| -> Option<StoredLabel> {
        let who = annotator.get_untracked();
        data.with_untracked(|d| d.labels.get(&(item.to_string(), who)).cloned())
    };
    let done = move || {
        let who = annotator.get();
        data.with(|d| {
            d.images
                .iter()
                .filter(|i| d.labels.contains_key(&(i.item.clone(), who.clone())))
                .count()
        })
    };

    // Paint the current image (and decode the next one ahead).
    Effect::new(move |_| {
        let Some(image) = current() else { return };
        let next_item = queue_idx.with(|q| {
            q.get(pos.get() + 1)
                .and_then(|&i| data.with_untracked(|d| d.images.get(i).map(|x| x.item.clone())))
        });
        leptos::task::spawn_local(async move {
            let Some(s) = store.get_untracked() else {
                return;
            };
            let get = |item: String| {
                let s = s.clone();
                async move {
                    if let Some(p) = cache.with_value(|c| c.get(&item).cloned()) {
                        return Ok(p);
                    }
                    let bytes = s
                        .image_bytes(&item)
                        .await?
                        .ok_or_else(|| "this image is no longer in the store".to_string())?;
                    let p = Rc::new(paintable(&bytes)?);
                    cache.update_value(|c| {
                        if c.len() > 64 {
                            c.clear();
                        }
                        c.insert(item, p.clone());
                    });
                    Ok::<_, String>(p)
                }
            };
            match get(image.item.clone()).await {
                Ok(p) => {
                    // Still the image asked for?
                    if current().map(|c| c.item) != Some(image.item.clone()) {
                        return;
                    }
                    if let Some(canvas) = canvas_ref.get_untracked() {
                        let _ = browser::put_rgba(&canvas, p.width, p.height, &p.rgba);
                        if let Some(t0) = key_at.get_value() {
                            latency_ms.set(Some(browser::now_ms() - t0));
                            key_at.set_value(None);
                        }
                        paints.update(|n| *n += 1);
                    }
                }
                Err(e) => error.set(Some(format!("{}: {e}", image.file))),
            }
            if let Some(next) = next_item {
                let _ = get(next).await;
            }
        });
    });

    // Saves `label` (the new state of `item` for this annotator), remembering the old one.
    let save = move |item: String, new: Option<StoredLabel>, record_undo: bool| {
        let who = annotator.get_untracked();
        let before = mine(&item);
        if record_undo {
            undo.update_value(|u| u.push((item.clone(), before.clone())));
        }
        data.update(|d| match &new {
            Some(l) => {
                d.labels.insert((item.clone(), who.clone()), l.clone());
            }
            None => {
                d.labels.remove(&(item.clone(), who.clone()));
            }
        });
        in_flight.update(|n| *n += 1);
        leptos::task::spawn_local(async move {
            let Some(s) = store.get_untracked() else {
                return;
            };
            let result = match &new {
                Some(l) => s.put_label(l).await,
                None => s.delete_label(&item, &who).await,
            };
            in_flight.update(|n| *n -= 1);
            match result {
                Ok(()) => saved.update(|n| *n += 1),
                Err(e) => {
                    // Show the label as it is in the store, and say why.
                    data.update(|d| match &before {
                        Some(l) => {
                            d.labels.insert((item.clone(), who.clone()), l.clone());
                        }
                        None => {
                            d.labels.remove(&(item.clone(), who.clone()));
                        }
                    });
                    error.set(Some(e));
                }
            }
        });
    };

    // The label of the current image after `change`, or an error to show.
    let label_with =
        move |image: &StoredImage, change: &dyn Fn(&mut Label)| -> Result<StoredLabel, String> {
            let who = annotator.get_untracked();
            if who.trim().is_empty() {
                return Err("enter your name first: labels carry it".into());
            }
            let at = now();
            let before = mine(&image.item);
            let mut label = before
                .as_ref()
                .map(|b| b.label.clone())
                .unwrap_or_else(|| Label {
                    item: image.item.clone(),
                    file: image.file.clone(),
                    annotator: who.clone(),
                    realistic: None,
                    tags: pending_tags
                        .with_untracked(|p| p.get(&image.item).cloned().unwrap_or_default()),
                    note: String::new(),
                    updated_at: at.clone(),
                });
            change(&mut label);
            label.updated_at = at.clone();
            let label = label.validated()?;
            Ok(StoredLabel {
                created_at: before.map_or(at, |b| b.created_at),
                label,
            })
        };

    let step = move |delta: isize| {
        let n = total();
        if n == 0 {
            return;
        }
        let p = pos.get_untracked() as isize + delta;
        pos.set(p.clamp(0, n as isize - 1) as usize);
    };

    let answer = move |realistic: Option<bool>| {
        let Some(image) = current() else { return };
        match label_with(&image, &|l| l.realistic = realistic) {
            Ok(l) => {
                pending_tags.update(|p| {
                    p.remove(&image.item);
                });
                save(image.item.clone(), Some(l), true);
                step(1);
            }
            Err(e) => error.set(Some(e)),
        }
    };

    let toggle_tag = move |tag_index: usize| {
        let Some(image) = current() else { return };
        let tag = TAGS[tag_index].to_string();
        let flip = |tags: &mut Vec<String>| {
            if let Some(i) = tags.iter().position(|t| *t == tag) {
                tags.remove(i);
            } else {
                tags.push(tag.clone());
            }
        };
        if mine(&image.item).is_some() {
            match label_with(&image, &|l| flip(&mut l.tags)) {
                Ok(l) => save(image.item.clone(), Some(l), true),
                Err(e) => error.set(Some(e)),
            }
        } else {
            pending_tags.update(|p| flip(p.entry(image.item.clone()).or_default()));
        }
    };

    let do_undo = move || {
        let Some((item, before)) = undo.try_update_value(|u| u.pop()).flatten() else {
            message.set(Some("nothing to undo".into()));
            return;
        };
        save(item.clone(), before, false);
        // Show the image the undo changed.
        let at = data.with_untracked(|d| d.images.iter().position(|i| i.item == item));
        if let Some(at) = at
            && let Some(p) = queue_idx.with_untracked(|q| q.iter().position(|&i| i == at))
        {
            pos.set(p);
        }
    };

    let save_note = move |text: String| {
        let Some(image) = current() else { return };
        let before = mine(&image.item);
        if before.as_ref().map(|b| b.label.note.as_str()) == Some(text.as_str())
            || (before.is_none() && text.is_empty())
        {
            return;
        }
        match label_with(&image, &|l| l.note = text.clone()) {
            Ok(l) => save(image.item.clone(), Some(l), true),
            Err(e) => error.set(Some(e)),
        }
    };

    // Keyboard: only while this page is shown and no text field has the focus.
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        let on_page = web_sys::window()
            .and_then(|w| w.location().hash().ok())
            .is_some_and(|h| h == "#annotate");
        if !on_page {
            return;
        }
        let typing = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        if typing {
            if ev.key() == "Escape"
                && let Some(el) = ev
                    .target()
                    .and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok())
            {
                let _ = el.blur();
            }
            return;
        }
        let Some(act) = action(&ev.key(), ev.ctrl_key() || ev.meta_key()) else {
            if ev.key() == "Escape" {
                show_help.set(false);
            }
            return;
        };
        ev.prevent_default();
        key_at.set_value(Some(browser::now_ms()));
        match act {
            Action::Realistic => answer(Some(true)),
            Action::Fake => answer(Some(false)),
            Action::Unsure => answer(None),
            Action::ToggleTag(i) => toggle_tag(i),
            Action::Next => step(1),
            Action::Previous => step(-1),
            Action::Undo => do_undo(),
            Action::Help => show_help.update(|h| *h = !*h),
            Action::ZoomIn => zoom.update(|z| *z = (*z * 1.25).min(8.0)),
            Action::ZoomOut => zoom.update(|z| *z = (*z / 1.25).max(0.25)),
            Action::ZoomReset => zoom.set(1.0),
            Action::Note => {
                if let Some(n) = note_ref.get_untracked() {
                    let _ = n.focus();
                }
            }
        }
    });
    on_cleanup(move || handle.remove());

    let save_name = move || {
        let name = name_draft.get_untracked().trim().to_string();
        if name.is_empty() {
            error.set(Some(
                "enter a name (it is written into every label you give)".into(),
            ));
            return;
        }
        annotator.set(name.clone());
        error.set(None);
        leptos::task::spawn_local(async move {
            if let Some(s) = store.get_untracked()
                && let Err(e) = s.set_setting("annotator", &name).await
            {
                error.set(Some(e));
            }
        });
    };

    let on_import = move |ev: leptos::ev::Event| {
        let Some(input) = browser::input_of(&ev) else {
            return;
        };
        leptos::task::spawn_local(async move {
            let chosen = browser::read_one(&input, exchange::MAX_BYTES).await;
            input.set_value("");
            let Some(chosen) = chosen else { return };
            let Some(s) = store.get_untracked() else {
                return;
            };
            message.set(Some("importing…".into()));
            let result = async {
                let (name, bytes) = chosen?;
                let archive = exchange::read(&name, &bytes)
                    .map_err(|e| format!("{e}. Nothing was imported."))?;
                s.import(&archive, &now()).await
            }
            .await;
            match result {
                Ok(report) => {
                    error.set(None);
                    message.set(Some(format!("Imported {}", report.summary())));
                    refresh();
                }
                Err(e) => {
                    message.set(None);
                    error.set(Some(e));
                }
            }
            imports.update(|n| *n += 1);
        });
    };

    let on_add_images = move |ev: leptos::ev::Event| {
        let Some(input) = browser::input_of(&ev) else {
            return;
        };
        let Some(files) = input.files() else { return };
        leptos::task::spawn_local(async move {
            let Some(s) = store.get_untracked() else {
                return;
            };
            let files = browser::read_files(files).await;
            input.set_value("");
            let base =
                data.with_untracked(|d| d.images.iter().map(|i| i.order + 1).max().unwrap_or(0));
            let mut ok = Vec::new();
            let mut refused = Vec::new();
            for (n, (name, bytes)) in files.iter().enumerate() {
                match imaging::load::load_gray(bytes, 1) {
                    Ok(_) => ok.push((
                        StoredImage {
                            item: labels::item_id(bytes),
                            file: name.clone(),
                            source: "upload".into(),
                            pack: None,
                            order: base + n as u64,
                            added_at: now(),
                            generator: None,
                            requested_tags: Vec::new(),
                        },
                        bytes.as_slice(),
                    )),
                    Err(e) => refused.push(format!("{name}: {e}")),
                }
            }
            match s.add_images(&ok).await {
                Ok(r) => {
                    message.set(Some(format!(
                        "{} images added ({} already here)",
                        r.images_added, r.images_present
                    )));
                    refresh();
                }
                Err(e) => error.set(Some(e)),
            }
            if !refused.is_empty() {
                error.set(Some(format!(
                    "not images this app reads: {}",
                    refused.join("; ")
                )));
            }
        });
    };

    // Labels for export: `all` or only this annotator's.
    let export = move |all: bool| {
        let who = annotator.get_untracked();
        let with_images = include_images.get_untracked();
        leptos::task::spawn_local(async move {
            let Some(s) = store.get_untracked() else {
                return;
            };
            let mut chosen: Vec<Label> = data.with_untracked(|d| {
                d.labels
                    .values()
                    .filter(|l| all || l.label.annotator == who)
                    .map(|l| l.label.clone())
                    .collect()
            });
            chosen.sort_by(|a, b| (&a.annotator, &a.item).cmp(&(&b.annotator, &b.item)));
            if chosen.is_empty() {
                error.set(Some("there are no labels to export yet".into()));
                return;
            }
            let mut images = Vec::new();
            if with_images {
                let items: std::collections::BTreeSet<String> =
                    chosen.iter().map(|l| l.item.clone()).collect();
                for item in items {
                    let file = data.with_untracked(|d| {
                        d.images
                            .iter()
                            .find(|i| i.item == item)
                            .map(|i| i.file.clone())
                    });
                    if let (Ok(Some(bytes)), Some(file)) = (s.image_bytes(&item).await, file) {
                        images.push(PackImage::new(&file, bytes));
                    }
                }
            }
            let who_part = if all {
                "all".to_string()
            } else {
                who.replace(|c: char| !c.is_alphanumeric(), "_")
            };
            let day = now().chars().take(10).collect::<String>();
            match exchange::write_export(&chosen, &images) {
                Ok(zip) => {
                    if let Err(e) = browser::download(
                        &zip,
                        &format!("labels-{who_part}-{day}.zip"),
                        "application/zip",
                    ) {
                        error.set(Some(e));
                    } else {
                        message.set(Some(format!(
                            "Exported {} labels{}",
                            chosen.len(),
                            if with_images {
                                format!(" with {} images", images.len())
                            } else {
                                String::new()
                            }
                        )));
                    }
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };

    let make_pack = move || {
        let id = pack_id.get_untracked().trim().to_string();
        if id.is_empty() {
            error.set(Some(
                "give the pack an id (for example round-1) first".into(),
            ));
            return;
        }
        let text = instructions.get_untracked();
        let who = annotator.get_untracked();
        leptos::task::spawn_local(async move {
            let Some(s) = store.get_untracked() else {
                return;
            };
            let chosen: Vec<StoredImage> = queue_idx.with_untracked(|q| {
                data.with_untracked(|d| {
                    q.iter().filter_map(|&i| d.images.get(i).cloned()).collect()
                })
            });
            let mut images = Vec::with_capacity(chosen.len());
            for image in &chosen {
                match s.image_bytes(&image.item).await {
                    Ok(Some(bytes)) => images.push(PackImage::new(&image.file, bytes)),
                    Ok(None) => {}
                    Err(e) => {
                        error.set(Some(e));
                        return;
                    }
                }
            }
            match exchange::write_pack(&id, &text, &who, &now(), &images) {
                Ok(zip) => {
                    match browser::download(&zip, &format!("pack-{id}.zip"), "application/zip") {
                        Ok(()) => message.set(Some(format!(
                            "Pack {id} with {} images ready to send",
                            images.len()
                        ))),
                        Err(e) => error.set(Some(e)),
                    }
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };

    let clear = move || {
        let confirmed = web_sys::window()
            .and_then(|w| w.confirm_with_message("Delete every image, label and prediction stored in this browser? Export your labels first.").ok())
            .unwrap_or(false);
        if !confirmed {
            return;
        }
        leptos::task::spawn_local(async move {
            let Some(s) = store.get_untracked() else {
                return;
            };
            match s.clear().await {
                Ok(()) => {
                    cache.update_value(HashMap::clear);
                    undo.update_value(Vec::clear);
                    pos.set(0);
                    message.set(Some("The store is empty".into()));
                    refresh();
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };

    // Pre-labels: the app's current classifiers on every image without a prediction by them.
    let predict_all = move || {
        if predicting.get_untracked().is_some() {
            return;
        }
        let Some(compute) = compute.map(|c| c.get_value()) else {
            error.set(Some("no compute worker (a bug: please report it)".into()));
            return;
        };
        let todo: Vec<StoredImage> = data.with_untracked(|d| {
            d.images
                .iter()
                .filter(|i| !d.predictions.contains_key(&i.item))
                .cloned()
                .collect()
        });
        leptos::task::spawn_local(async move {
            let Some(s) = store.get_untracked() else {
                return;
            };
            let result = rounds::predict_missing(
                &compute,
                &s,
                todo,
                |k, n| predicting.set((k < n).then_some((k, n))),
                |p| {
                    data.update(|d| {
                        d.predictions.insert(p.item.clone(), p);
                    })
                },
            )
            .await;
            match result {
                Ok(problems) if !problems.is_empty() => error.set(Some(problems.join("; "))),
                Ok(_) => {}
                Err(e) => error.set(Some(e)),
            }
            predicting.set(None);
        });
    };

    // The current image's answer by this annotator: (data attribute, Some(answer) if given).
    let answer_now = move || -> (&'static str, Option<Option<bool>>) {
        let item = current().map(|c| c.item).unwrap_or_default();
        let who = annotator.get();
        let given = data.with(|d| d.labels.get(&(item, who)).map(|l| l.label.realistic));
        let attr = match given {
            Some(Some(true)) => "true",
            Some(Some(false)) => "false",
            Some(None) => "null",
            None => "",
        };
        (attr, given)
    };

    let tag_rows = move || {
        let image = current();
        let item = image.as_ref().map(|i| i.item.clone()).unwrap_or_default();
        let label_tags: Vec<String> = {
            let who = annotator.get();
            data.with(|d| {
                d.labels
                    .get(&(item.clone(), who))
                    .map(|l| l.label.tags.clone())
            })
            .unwrap_or_else(|| pending_tags.with(|p| p.get(&item).cloned().unwrap_or_default()))
        };
        let model: Option<Vec<f64>> =
            data.with(|d| d.predictions.get(&item).map(|p| p.tags.clone()));
        TAGS.iter()
            .enumerate()
            .map(|(i, t)| {
                let on = label_tags.iter().any(|x| x == t);
                let p = model.as_ref().and_then(|m| m.get(i).copied());
                let t = t.to_string();
                view! {
                    <li class={if on { "tag on" } else { "tag" }} data-tag=t.clone() data-on=on.to_string()>
                        <button type="button" on:click=move |_| toggle_tag(i)>
                            <kbd>{TAG_KEYS[i]}</kbd>" "{t.clone()}
                        </button>
                        {p.map(|p| view! { <span class={if p >= 0.5 { "model on" } else { "model" }} title="the model's probability">{format!("{p:.2}")}</span> })}
                    </li>
                }
            })
            .collect_view()
    };

    view! {
        <section class="page annotate">
            <h2>"Annotate"</h2>
            <p class="muted">"Label images realistic, fake or unsure and tag them, with the keyboard. Every label is saved in this browser the moment you give it; nothing is uploaded."</p>
            {move || error.get().map(|e| view! { <p class="error" role="alert" id="annotate-error">{e}</p> })}
            {move || message.get().map(|m| view! { <p class="notice" id="annotate-message">{m}</p> })}
            <div class="row" id="annotator">
                {move || if annotator.get().is_empty() {
                    view! {
                        <label>"Your name (written into every label you give): "
                            <input id="annotator-name" type="text" prop:value=move || name_draft.get()
                                on:input=move |ev| name_draft.set(event_target_value(&ev))
                                on:keydown=move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Enter" { save_name() } />
                        </label>
                        <button type="button" id="annotator-save" on:click=move |_| save_name()>"Start annotating"</button>
                    }.into_any()
                } else {
                    view! {
                        <span>"Annotating as "<strong id="annotator-current">{move || annotator.get()}</strong></span>
                        <button type="button" class="link" on:click=move |_| { name_draft.set(annotator.get_untracked()); annotator.set(String::new()); }>"change"</button>
                    }.into_any()
                }}
            </div>
            <div class="row toolbar">
                <label class="button">"Import pack or labels (.zip, .jsonl)"
                    <input id="import-file" type="file" accept=".zip,.jsonl,application/zip" style="display:none" on:change=on_import />
                </label>
                <label class="button">"Add images"
                    <input id="annotate-add" type="file" multiple accept=".png,.tif,.tiff,.edf,.jpg,.jpeg" style="display:none" on:change=on_add_images />
                </label>
                <button type="button" id="export-mine" on:click=move |_| export(false)>"Export my labels"</button>
                <button type="button" id="export-all" on:click=move |_| export(true)>"Export all labels"</button>
                <label><input type="checkbox" id="export-images" prop:checked=move || include_images.get() on:change=move |ev| include_images.set(event_target_checked(&ev)) />" with images"</label>
                <button type="button" id="predict-all" on:click=move |_| predict_all()>"Pre-label with the model"</button>
                <button type="button" id="clear-store" class="danger" on:click=move |_| clear()>"Clear store"</button>
            </div>
            <div class="row">
                <label>"Order: "
                    <select id="annotate-order" on:change=move |ev| {
                        order.set(match event_target_value(&ev).as_str() { "uncertainty" => Order::Uncertainty, "random" => Order::Random, _ => Order::Pack });
                        pos.set(0);
                    }>
                        <option value="pack">"pack order"</option>
                        <option value="uncertainty">"most uncertain first (active learning)"</option>
                        <option value="random">"random"</option>
                    </select>
                </label>
                {move || predicting.get().map(|(k, n)| view! { <span class="running" id="predict-progress"><span class="spinner"></span>{format!("pre-labelling {} of {n}", k + 1)}<progress max=n as f64 value=k as f64></progress></span> })}
            </div>
            <p id="annotate-progress" data-done=done data-total=total data-pending=move || in_flight.get() data-saved=move || saved.get() data-imports=move || imports.get() data-loaded=move || loaded.get().to_string()>
                {move || format!("{} of {} labelled", done(), total())}
                {move || if in_flight.get() > 0 { " · saving…".to_string() } else if saved.get() > 0 { " · all saved".to_string() } else { String::new() }}
                <progress max=move || total().max(1) as f64 value=move || done() as f64></progress>
            </p>
            {move || (loaded.get() && total() == 0).then(|| view! {
                <p class="muted" id="annotate-empty">"No images yet: import an annotation pack, add image files, or send images here from the Generate page."</p>
            })}
            <div class="annotate-main" style=move || if total() == 0 { "display:none" } else { "" }>
                <div class="annotate-view">
                    <p id="annotate-current" data-item=move || current().map(|c| c.item).unwrap_or_default() data-pos=move || pos.get()>
                        {move || current().map(|c| format!("{} · image {} of {}", c.file, pos.get() + 1, total())).unwrap_or_default()}
                    </p>
                    {move || current().and_then(|c| {
                        let model = c.generator?;
                        let asked = if c.requested_tags.is_empty() { "no tags".to_string() } else { c.requested_tags.join(", ") };
                        Some(view! { <p class="muted" id="annotate-generator">{format!("generated by {model}, asked for: {asked}")}</p> })
                    })}
                    <div class="zoom-box">
                        <canvas id="annotate-canvas" node_ref=canvas_ref
                            data-latency-ms=move || latency_ms.get().map(|l| format!("{l:.1}")).unwrap_or_default()
                            data-paints=move || paints.get()
                            style=move || format!("height:{:.0}vh", 70.0 * zoom.get())></canvas>
                    </div>
                    <p class="muted">"r realistic · f fake · u unsure · ←/→ previous/next · z undo · ? help"</p>
                </div>
                <div class="annotate-side">
                    <h3>"Your answer"</h3>
                    <p id="annotate-answer" data-realistic=move || answer_now().0>
                        {[("answer-realistic", "r", " realistic", Some(true)), ("answer-fake", "f", " fake", Some(false)), ("answer-unsure", "u", " unsure", None)]
                            .into_iter()
                            .map(|(id, key, text, value)| view! {
                                <button type="button" id=id
                                    class=move || { let (_, given) = answer_now(); if given == Some(value) { "chosen" } else { "" } }
                                    on:click=move |_| answer(value)><kbd>{key}</kbd>{text}</button>
                            })
                            .collect_view()}
                    </p>
                    {move || {
                        let item = current().map(|c| c.item).unwrap_or_default();
                        data.with(|d| d.predictions.get(&item).map(|p| {
                            let verdict = if rounds::decided(p) { "realistic" } else { "fake" };
                            view! { <p class="muted" id="annotate-model" data-score=format!("{:.4}", p.realism)>{format!("Model: {verdict} ({:.2}, threshold {:.2}; uncertainty {:.2})", p.realism, p.threshold, labels::annotate::uncertainty(p.realism, p.threshold))}</p> }
                        }))
                    }}
                    <h3>"Tags"</h3>
                    <ul class="tags" id="annotate-tags">{tag_rows}</ul>
                    <label>"Note ("<kbd>"m"</kbd>")"
                        <textarea id="annotate-note" node_ref=note_ref rows="3"
                            prop:value=move || {
                                let item = current().map(|c| c.item).unwrap_or_default();
                                let who = annotator.get();
                                data.with(|d| d.labels.get(&(item, who)).map(|l| l.label.note.clone()).unwrap_or_default())
                            }
                            on:change=move |ev| save_note(event_target_value(&ev))></textarea>
                    </label>
                </div>
            </div>
            <details class="pack-maker">
                <summary>"Make an annotation pack for remote experts"</summary>
                <p class="muted">"A zip of the images in the current order with your instructions; experts import it here, annotate offline and send back their export."</p>
                <label>"Pack id "<input id="pack-id" type="text" prop:value=move || pack_id.get() on:input=move |ev| pack_id.set(event_target_value(&ev)) /></label>
                <label>"Instructions "<textarea id="pack-instructions" rows="2" prop:value=move || instructions.get() on:input=move |ev| instructions.set(event_target_value(&ev))></textarea></label>
                <button type="button" id="make-pack" on:click=move |_| make_pack()>"Download pack"</button>
            </details>
            {move || show_help.get().then(|| view! {
                <div class="overlay" id="annotate-help" on:click=move |_| show_help.set(false)>
                    <div class="help-box">
                        <h3>"Keyboard shortcuts"</h3>
                        <table>{help().into_iter().map(|(k, d)| view! { <tr><td><kbd>{k}</kbd></td><td>{d}</td></tr> }).collect_view()}</table>
                        <p class="muted">"Esc or click to close"</p>
                    </div>
                </div>
            })}
        </section>
    }
}
