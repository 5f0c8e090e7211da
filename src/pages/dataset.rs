//! The Dataset page: what is in the label store and how far the experts agree (percent
//! agreement, Cohen's kappa per pair, Fleiss' kappa, per tag), the consensus and the images to
//! review; the human-in-the-loop rounds (import a fine-tuned realism weights file, predict every
//! image with it, score each model version against the consensus); the latent-space view (UMAP
//! of the realism ensemble's embeddings: click a point to open the image, drag a box to label
//! many at once); and the training-set export for `synthscope train realism --labels`.

use std::collections::{BTreeSet, HashMap};

use labels::Label;
use labels::agreement::{Agreement, Consensus};
use labels::exchange::{self, Image as PackImage};
use labels::rounds::{Mix, RoundScores};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::browser;
use crate::compute::ComputeContext;
use crate::protocol::SHIPPED_MODEL;
use crate::rounds::{self, Focus, StoreEpoch};
use crate::store::{Prediction, Store, StoredImage, StoredLabel, StoredModel};

/// A statistic, or a dash when it is undefined.
fn stat(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "—".to_string(), |x| format!("{x:.3}"))
}

/// Largest weights file the page reads (the shipped ensemble is under 10 MB).
const MAX_WEIGHTS_BYTES: u64 = 256 << 20;
/// Side of the latent-space plot in CSS pixels (the SVG's user units are the same).
const PLOT_PX: f64 = 480.0;
/// Blank border inside the plot.
const PLOT_MARGIN_PX: f64 = 16.0;

/// Everything the page shows, read from the store in one go.
#[derive(Clone, Default)]
struct Snapshot {
    images: Vec<StoredImage>,
    labels: Vec<StoredLabel>,
    predictions: Vec<Prediction>,
    models: Vec<StoredModel>,
    annotator: String,
}

async fn read(store: &Store) -> Result<Snapshot, String> {
    Ok(Snapshot {
        images: store.images().await?,
        labels: store.labels().await?,
        predictions: store.predictions().await?,
        models: store.models().await?,
        annotator: store.setting("annotator").await?.unwrap_or_default(),
    })
}

/// One model version's row of the rounds table.
#[derive(Clone)]
struct Round {
    model: String,
    predicted: usize,
    scores: RoundScores,
}

/// Every model version the store knows (shipped first, then imported in import order, then any
/// other version that has predictions), scored against the consensus.
fn rounds_of(snap: &Snapshot, consensus: &[Consensus]) -> Vec<Round> {
    let mut models: Vec<String> = vec![SHIPPED_MODEL.to_string()];
    let mut imported = snap.models.clone();
    imported.sort_by(|a, b| a.added_at.cmp(&b.added_at));
    models.extend(imported.into_iter().map(|m| m.version));
    for p in &snap.predictions {
        if !models.contains(&p.model) {
            models.push(p.model.clone());
        }
    }
    models
        .into_iter()
        .map(|model| {
            let mine: Vec<&Prediction> = snap
                .predictions
                .iter()
                .filter(|p| p.model == model)
                .collect();
            let scores = RoundScores::against_consensus(
                mine.iter()
                    .map(|p| (p.item.as_str(), p.realism, rounds::decided(p))),
                consensus,
            );
            Round {
                model,
                predicted: mine.len(),
                scores,
            }
        })
        .collect()
}

/// A point of the latent-space plot.
#[derive(Clone, PartialEq)]
struct Point {
    item: String,
    file: String,
    /// Plot coordinates in px.
    x: f64,
    y: f64,
}

/// The projection on screen: which model's embeddings, and the points.
#[derive(Clone, Default, PartialEq)]
struct Projection {
    /// The model and the items projected (to know when to project again).
    key: String,
    model: String,
    points: Vec<Point>,
}

/// What the plot colours points by.
#[derive(Clone, Copy, PartialEq)]
enum Colouring {
    Consensus,
    Model,
}

/// The key of a projection of `model`'s embeddings of `items`: the model, the count and an
/// FNV-1a hash of the items (a new image or a new model projects again).
fn projection_key(model: &str, items: &[&str]) -> String {
    let hash = labels::annotate::fnv1a(items.iter().flat_map(|i| i.bytes().chain([b','])));
    format!("{model}:{}:{hash:016x}", items.len())
}

/// Scales UMAP coordinates into the plot, each axis to the full width (UMAP's axes carry no
/// units, and filling the plot keeps tight clusters clickable).
fn to_plot(xy: &[[f32; 2]]) -> Vec<(f64, f64)> {
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in xy {
        for d in 0..2 {
            lo[d] = lo[d].min(f64::from(p[d]));
            hi[d] = hi[d].max(f64::from(p[d]));
        }
    }
    let inner = PLOT_PX - 2.0 * PLOT_MARGIN_PX;
    let scale = [
        inner / (hi[0] - lo[0]).max(1e-9),
        inner / (hi[1] - lo[1]).max(1e-9),
    ];
    xy.iter()
        .map(|p| {
            (
                PLOT_MARGIN_PX + (f64::from(p[0]) - lo[0]) * scale[0],
                // Screen y grows downwards.
                PLOT_PX - PLOT_MARGIN_PX - (f64::from(p[1]) - lo[1]) * scale[1],
            )
        })
        .collect()
}

/// A training set ready to hand over.
struct TrainingSet {
    zip: Vec<u8>,
    summary: String,
}

/// The labels of the images drawn from the store in `mix_text` (fake : realistic by the
/// experts' consensus; empty: every label), with the images, as a label-export zip.
async fn training_set(
    mix_text: &str,
    file_of: &HashMap<String, String>,
) -> Result<TrainingSet, String> {
    let store = Store::open().await?;
    let all: Vec<Label> = store.labels().await?.into_iter().map(|s| s.label).collect();
    if all.is_empty() {
        return Err("there are no labels yet".to_string());
    }
    let (chosen, what): (BTreeSet<String>, String) = if mix_text.trim().is_empty() {
        let items = all.iter().map(|l| l.item.clone()).collect();
        (items, "every labelled image".to_string())
    } else {
        let mix: Mix = mix_text.trim().parse()?;
        let consensus = labels::agreement(&all).consensus;
        let (items, fake, real) = labels::rounds::mixed_selection(&consensus, mix, 0);
        if fake == 0 || real == 0 {
            return Err(format!(
                "the experts' consensus has {fake} fake and {real} realistic images to draw from: a training set needs both"
            ));
        }
        (
            items.into_iter().collect(),
            format!("{fake} fake and {real} realistic images (mix {mix})"),
        )
    };
    let picked: Vec<Label> = all
        .into_iter()
        .filter(|l| chosen.contains(&l.item))
        .collect();
    let mut images = Vec::new();
    for item in &chosen {
        let file = file_of.get(item).cloned().unwrap_or_default();
        if let Some(bytes) = store.image_bytes(item).await? {
            images.push(PackImage::new(&file, bytes));
        }
    }
    let zip = exchange::write_export(&picked, &images).map_err(|e| e.to_string())?;
    Ok(TrainingSet {
        summary: format!("{what}, {} labels, {} images", picked.len(), images.len()),
        zip,
    })
}

/// The Dataset page. `visits` changes whenever the page is shown, so it re-reads the store.
#[component]
pub fn DatasetPage(
    /// Changes each time the page is shown.
    visits: ReadSignal<usize>,
) -> impl IntoView {
    let compute = use_context::<ComputeContext>();
    let epoch = use_context::<StoreEpoch>();
    let focus = use_context::<Focus>();
    let model_version = compute.map(|c| c.get_value().model_version);
    let active_model = move || model_version.map_or_else(|| SHIPPED_MODEL.to_string(), |m| m.get());
    let snap: RwSignal<Snapshot> = RwSignal::new(Snapshot::default());
    let stats: RwSignal<Option<Agreement>> = RwSignal::new(None);
    let error = RwSignal::new(None::<String>);
    let message = RwSignal::new(None::<String>);
    let predicting = RwSignal::new(None::<(usize, usize)>);
    let projecting = RwSignal::new(false);
    let projection: RwSignal<Projection> = RwSignal::new(Projection::default());
    let colouring = RwSignal::new(Colouring::Consensus);
    let selected: RwSignal<BTreeSet<String>> = RwSignal::new(BTreeSet::new());
    // The box being dragged: start and current corner in plot px.
    let dragging = RwSignal::new(None::<((f64, f64), (f64, f64))>);
    // Fake : realistic images in the exported training set (seed 000's 4:6); empty: all.
    let training_mix = RwSignal::new(labels::rounds::Mix::default().to_string());
    // The companion (`synthscope serve`): its address, and the state of a run on it.
    let companion_url = RwSignal::new(String::from("http://127.0.0.1:8765"));
    let companion = RwSignal::new(None::<String>);
    // Loads finished (tests wait on it).
    let reads = RwSignal::new(0usize);

    let files = Memo::new(move |_| {
        snap.with(|s| {
            s.images
                .iter()
                .map(|i| (i.item.clone(), i.file.clone()))
                .collect::<HashMap<_, _>>()
        })
    });

    // Projects the active model's embeddings when they differ from those on screen.
    let project = move |force: bool| {
        let Some(compute) = compute.map(|c| c.get_value()) else {
            return;
        };
        let model = active_model();
        let (items, values, dim) = snap.with_untracked(|s| {
            let mut with: Vec<&Prediction> = s
                .predictions
                .iter()
                .filter(|p| p.model == model && !p.embedding.is_empty())
                .collect();
            with.sort_by(|a, b| a.item.cmp(&b.item));
            let dim = with.first().map_or(0, |p| p.embedding.len());
            with.retain(|p| p.embedding.len() == dim);
            let items: Vec<String> = with.iter().map(|p| p.item.clone()).collect();
            let values: Vec<f32> = with
                .iter()
                .flat_map(|p| p.embedding.iter().copied())
                .collect();
            (items, values, dim)
        });
        let refs: Vec<&str> = items.iter().map(String::as_str).collect();
        let key = projection_key(&model, &refs);
        if items.len() < 3 {
            projection.set(Projection::default());
            return;
        }
        if (!force && projection.with_untracked(|p| p.key == key)) || projecting.get_untracked() {
            return;
        }
        projecting.set(true);
        leptos::task::spawn_local(async move {
            match compute.project(&values, items.len(), dim).await {
                Ok(xy) => {
                    let file_of = files.get_untracked();
                    let points = items
                        .into_iter()
                        .zip(to_plot(&xy))
                        .map(|(item, (x, y))| Point {
                            file: file_of.get(&item).cloned().unwrap_or_default(),
                            item,
                            x,
                            y,
                        })
                        .collect();
                    projection.set(Projection { key, model, points });
                }
                Err(e) => error.set(Some(e)),
            }
            projecting.set(false);
        });
    };

    let reload = move || {
        leptos::task::spawn_local(async move {
            let result = async {
                let store = Store::open().await?;
                read(&store).await
            }
            .await;
            match result {
                Ok(s) => {
                    let all: Vec<Label> = s.labels.iter().map(|l| l.label.clone()).collect();
                    stats.set(Some(labels::agreement(&all)));
                    snap.set(s);
                    project(false);
                }
                Err(e) => error.set(Some(e)),
            }
            reads.update(|n| *n += 1);
        });
    };

    Effect::new(move |_| {
        visits.get();
        reload();
    });

    // Every image without a prediction by the active model, predicted now.
    let predict_missing = move || {
        if predicting.get_untracked().is_some() {
            return;
        }
        let Some(compute) = compute.map(|c| c.get_value()) else {
            error.set(Some("no compute worker (a bug: please report it)".into()));
            return;
        };
        let model = active_model();
        let todo: Vec<StoredImage> = snap.with_untracked(|s| {
            let done: BTreeSet<&str> = s
                .predictions
                .iter()
                .filter(|p| p.model == model)
                .map(|p| p.item.as_str())
                .collect();
            s.images
                .iter()
                .filter(|i| !done.contains(i.item.as_str()))
                .cloned()
                .collect()
        });
        if todo.is_empty() {
            message.set(Some(format!(
                "every image already has a prediction by {model}"
            )));
            return;
        }
        predicting.set(Some((0, todo.len())));
        leptos::task::spawn_local(async move {
            let result = async {
                let store = Store::open().await?;
                rounds::predict_missing(
                    &compute,
                    &store,
                    todo,
                    |k, n| predicting.set(Some((k, n))),
                    |_| {},
                )
                .await
            }
            .await;
            predicting.set(None);
            match result {
                Ok(problems) if !problems.is_empty() => error.set(Some(problems.join("; "))),
                Ok(_) => message.set(Some(format!("predicted every image with {model}"))),
                Err(e) => error.set(Some(e)),
            }
            if let Some(e) = epoch {
                e.update(|n| *n += 1);
            }
            reload();
        });
    };

    let on_import_weights = move |ev: leptos::ev::Event| {
        let Some(input) = browser::input_of(&ev) else {
            return;
        };
        let Some(compute) = compute.map(|c| c.get_value()) else {
            return;
        };
        leptos::task::spawn_local(async move {
            let chosen = browser::read_one(&input, MAX_WEIGHTS_BYTES).await;
            input.set_value("");
            let Some(chosen) = chosen else { return };
            message.set(Some("checking the weights file…".into()));
            let result = async {
                let (name, bytes) = chosen?;
                let store = Store::open().await?;
                rounds::import_model(&compute, &store, &name, &bytes, &browser::now_rfc3339()).await
            }
            .await;
            match result {
                Ok(m) => {
                    error.set(None);
                    message.set(Some(format!(
                        "{} imported as {}; predicting every image with it…",
                        m.file, m.version
                    )));
                    // The new model's predictions go in as soon as the store has been re-read.
                    let s = Store::open().await;
                    if let Ok(s) = s
                        && let Ok(fresh) = read(&s).await
                    {
                        snap.set(fresh);
                    }
                    predict_missing();
                }
                Err(e) => {
                    message.set(None);
                    error.set(Some(e));
                }
            }
        });
    };

    let on_select_model = move |ev: leptos::ev::Event| {
        let version = event_target_value(&ev);
        let Some(compute) = compute.map(|c| c.get_value()) else {
            return;
        };
        leptos::task::spawn_local(async move {
            let result = async {
                let store = Store::open().await?;
                rounds::activate(&compute, &store, &version).await
            }
            .await;
            match result {
                Ok(()) => {
                    message.set(Some(format!("the app now classifies with {version}")));
                    selected.set(BTreeSet::new());
                    reload();
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };

    // Labels every selected image realistic / fake / unsure as this browser's annotator, each
    // label in its own transaction (as on the Annotate page).
    let label_selected = move |realistic: Option<bool>| {
        let items: Vec<String> = selected.get_untracked().into_iter().collect();
        if items.is_empty() {
            return;
        }
        let (who, mine, file_of) = snap.with_untracked(|s| {
            let mine: HashMap<String, StoredLabel> = s
                .labels
                .iter()
                .filter(|l| l.label.annotator == s.annotator)
                .map(|l| (l.label.item.clone(), l.clone()))
                .collect();
            (s.annotator.clone(), mine, files.get_untracked())
        });
        if who.trim().is_empty() {
            error.set(Some(
                "enter your name on the Annotate page first: labels carry it".into(),
            ));
            return;
        }
        leptos::task::spawn_local(async move {
            let result = async {
                let store = Store::open().await?;
                let at = browser::now_rfc3339();
                for item in &items {
                    let before = mine.get(item);
                    let mut label = before.map(|b| b.label.clone()).unwrap_or_else(|| Label {
                        item: item.clone(),
                        file: file_of.get(item).cloned().unwrap_or_default(),
                        annotator: who.clone(),
                        realistic: None,
                        tags: Vec::new(),
                        note: String::new(),
                        updated_at: at.clone(),
                    });
                    label.realistic = realistic;
                    label.updated_at = at.clone();
                    let stored = StoredLabel {
                        created_at: before.map_or_else(|| at.clone(), |b| b.created_at.clone()),
                        label: label.validated()?,
                    };
                    store.put_label(&stored).await?;
                }
                Ok::<_, String>(items.len())
            }
            .await;
            match result {
                Ok(n) => {
                    let answer = match realistic {
                        Some(true) => "realistic",
                        Some(false) => "fake",
                        None => "unsure",
                    };
                    message.set(Some(format!("{n} images labelled {answer} by {who}")));
                    selected.set(BTreeSet::new());
                }
                Err(e) => error.set(Some(e)),
            }
            if let Some(e) = epoch {
                e.update(|n| *n += 1);
            }
            reload();
        });
    };

    // r / f / u label the selection, Esc clears it, while this page is shown.
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        let on_page = web_sys::window()
            .and_then(|w| w.location().hash().ok())
            .is_some_and(|h| h == "#dataset");
        let typing = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        if !on_page || typing || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        if selected.with_untracked(BTreeSet::is_empty) {
            return;
        }
        match ev.key().as_str() {
            "r" => label_selected(Some(true)),
            "f" => label_selected(Some(false)),
            "u" => label_selected(None),
            "Escape" => selected.set(BTreeSet::new()),
            _ => return,
        }
        ev.prevent_default();
    });
    on_cleanup(move || handle.remove());

    // The labels of the images drawn in the chosen mix, with the images, as a download.
    let export_training = move || {
        let mix_text = training_mix.get_untracked();
        leptos::task::spawn_local(async move {
            let result = async {
                let set = training_set(&mix_text, &files.get_untracked()).await?;
                browser::download(&set.zip, "training-set.zip", "application/zip")?;
                Ok::<_, String>(format!(
                    "training-set.zip: {}. Fine-tune with: synthscope train realism --labels training-set.zip --init realism-v2.bin --out realism-r2.bin, then import realism-r2.bin above.",
                    set.summary
                ))
            }
            .await;
            match result {
                Ok(m) => message.set(Some(m)),
                Err(e) => error.set(Some(e)),
            }
        });
    };

    // The same training set handed to `synthscope serve`; its progress is polled, and the new
    // weights are imported and every image predicted with them when it is done.
    let train_on_companion = move || {
        if companion.get_untracked().is_some() {
            return;
        }
        let Some(compute) = compute.map(|c| c.get_value()) else {
            return;
        };
        let mix_text = training_mix.get_untracked();
        let base = companion_url
            .get_untracked()
            .trim()
            .trim_end_matches('/')
            .to_string();
        companion.set(Some("sending the training set…".into()));
        leptos::task::spawn_local(async move {
            let result = async {
                let set = training_set(&mix_text, &files.get_untracked()).await?;
                let (status, body) = browser::http(
                    "POST",
                    &format!("{base}/train/realism"),
                    Some((&set.zip, "application/zip")),
                )
                .await
                .map_err(|e| format!("{e}: is `synthscope serve` running there?"))?;
                let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if status != 202 {
                    return Err(format!(
                        "the companion refused the training set: {}",
                        answer["error"].as_str().unwrap_or("no reason given")
                    ));
                }
                let job = answer["job"]
                    .as_u64()
                    .ok_or("the companion sent no job number")?;
                loop {
                    browser::sleep_ms(1000).await;
                    let (_, body) =
                        browser::http("GET", &format!("{base}/jobs/{job}"), None).await?;
                    let state: serde_json::Value = serde_json::from_slice(&body)
                        .map_err(|e| format!("the companion's answer is not JSON: {e}"))?;
                    let progress = state["progress"].as_str().unwrap_or_default().to_string();
                    match state["state"].as_str() {
                        Some("running") => companion.set(Some(format!("job {job}: {progress}"))),
                        Some("done") => break,
                        _ => {
                            return Err(format!(
                                "the companion's training failed: {}",
                                state["error"].as_str().unwrap_or(&progress)
                            ));
                        }
                    }
                }
                companion.set(Some(format!("job {job}: done; fetching the weights…")));
                let (status, weights) =
                    browser::http("GET", &format!("{base}/jobs/{job}/weights"), None).await?;
                if status != 200 {
                    return Err(format!(
                        "the companion has no weights for job {job} (HTTP {status})"
                    ));
                }
                let store = Store::open().await?;
                let name = format!("realism-r{}.bin", job + 1);
                rounds::import_model(&compute, &store, &name, &weights, &browser::now_rfc3339())
                    .await
            }
            .await;
            companion.set(None);
            match result {
                Ok(m) => {
                    error.set(None);
                    message.set(Some(format!(
                        "the companion fine-tuned {}; predicting every image with it…",
                        m.version
                    )));
                    if let Ok(s) = Store::open().await
                        && let Ok(fresh) = read(&s).await
                    {
                        snap.set(fresh);
                    }
                    predict_missing();
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };

    // Plot coordinates of a mouse event on the SVG.
    let plot_xy = |ev: &web_sys::MouseEvent| -> Option<(f64, f64)> {
        // Leptos delegates events to the document: find the plot from the event's target.
        let svg = ev
            .target()?
            .dyn_into::<web_sys::Element>()
            .ok()?
            .closest("#latent-plot")
            .ok()??;
        let r = svg.get_bounding_client_rect();
        Some((
            f64::from(ev.client_x()) - r.left(),
            f64::from(ev.client_y()) - r.top(),
        ))
    };
    let on_down = move |ev: web_sys::MouseEvent| {
        let on_point = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| e.tag_name() == "circle");
        if on_point || ev.button() != 0 {
            return;
        }
        if let Some(p) = plot_xy(&ev) {
            ev.prevent_default();
            dragging.set(Some((p, p)));
        }
    };
    let on_move = move |ev: web_sys::MouseEvent| {
        if dragging.with_untracked(Option::is_some)
            && let Some(p) = plot_xy(&ev)
        {
            dragging.update(|d| {
                if let Some((_, end)) = d {
                    *end = p;
                }
            });
        }
    };
    let on_up = move |ev: web_sys::MouseEvent| {
        let Some((start, _)) = dragging.get_untracked() else {
            return;
        };
        dragging.set(None);
        let end = plot_xy(&ev).unwrap_or(start);
        let (x0, x1) = (start.0.min(end.0), start.0.max(end.0));
        let (y0, y1) = (start.1.min(end.1), start.1.max(end.1));
        if x1 - x0 < 3.0 && y1 - y0 < 3.0 {
            // A click on the background clears the selection.
            selected.set(BTreeSet::new());
            return;
        }
        let inside: BTreeSet<String> = projection.with_untracked(|p| {
            p.points
                .iter()
                .filter(|q| q.x >= x0 && q.x <= x1 && q.y >= y0 && q.y <= y1)
                .map(|q| q.item.clone())
                .collect()
        });
        // Shift adds to the selection.
        if ev.shift_key() {
            selected.update(|s| s.extend(inside));
        } else {
            selected.set(inside);
        }
    };
    let open_point = move |item: String| {
        if let Some(f) = focus {
            f.set(Some(item));
        }
        if let Some(w) = web_sys::window() {
            let _ = w.location().set_hash("annotate");
        }
    };

    let plot = move || {
        let p = projection.get();
        let answers: HashMap<String, (Option<bool>, bool)> = stats.with(|s| {
            s.as_ref()
                .map(|s| {
                    s.consensus
                        .iter()
                        .map(|c| (c.item.clone(), (c.realistic, c.tie)))
                        .collect()
                })
                .unwrap_or_default()
        });
        let model_of: HashMap<String, (f64, bool)> = snap.with(|s| {
            s.predictions
                .iter()
                .filter(|q| q.model == p.model)
                .map(|q| (q.item.clone(), (q.realism, rounds::decided(q))))
                .collect()
        });
        let how = colouring.get();
        let chosen = selected.get();
        p.points
            .into_iter()
            .map(|q| {
                let answer = answers.get(&q.item).copied();
                let (score, decided) = model_of.get(&q.item).copied().unwrap_or((0.0, false));
                let label_attr = match answer {
                    Some((Some(true), _)) => "realistic",
                    Some((Some(false), _)) => "fake",
                    Some((None, _)) => "unsure",
                    None => "unlabelled",
                };
                let fill = match how {
                    Colouring::Consensus => match label_attr {
                        "realistic" => "#2a9d8f".to_string(),
                        "fake" => "#e76f51".to_string(),
                        "unsure" => "#9aa5b1".to_string(),
                        _ => "none".to_string(),
                    },
                    Colouring::Model => {
                        let [r, g, b] =
                            imaging::display::Colormap::Viridis.rgb(score.clamp(0.0, 1.0) as f32);
                        format!("rgb({r},{g},{b})")
                    }
                };
                let disagrees = matches!(answer, Some((Some(t), _)) if t != decided);
                let is_selected = chosen.contains(&q.item);
                let stroke = if is_selected {
                    "#ffffff"
                } else if disagrees {
                    "#ffd166"
                } else {
                    "#9aa5b1"
                };
                let item = q.item.clone();
                view! {
                    <circle class=if is_selected { "point selected" } else { "point" }
                        cx=format!("{:.1}", q.x) cy=format!("{:.1}", q.y) r=if is_selected { "6" } else { "4.5" }
                        fill=fill stroke=stroke stroke-width=if is_selected || disagrees { "2" } else { "1" }
                        data-item=q.item.clone() data-label=label_attr data-score=format!("{score:.4}")
                        data-disagrees=disagrees.to_string()
                        on:click=move |_| open_point(item.clone())>
                        <title>{format!("{} · model {score:.2} · experts: {label_attr}{}", q.file, if disagrees { " (model disagrees)" } else { "" })}</title>
                    </circle>
                }
            })
            .collect_view()
    };

    view! {
        <section class="page dataset">
            <h2>"Dataset"</h2>
            {move || error.get().map(|e| view! { <p class="error" role="alert" id="dataset-error">{e}</p> })}
            {move || message.get().map(|m| view! { <p class="notice" id="dataset-message">{m}</p> })}
            <span id="dataset-state" hidden data-reads=move || reads.get() data-predicting=move || predicting.get().is_some().to_string() data-projecting=move || projecting.get().to_string()></span>
            {move || stats.get().map(|s| {
                let (n_images, n_labels) = snap.with(|x| (x.images.len(), x.labels.len()));
                let decided = s.consensus.iter().filter(|c| c.realistic.is_some()).count();
                let ties = s.consensus.iter().filter(|c| c.tie).count();
                let file_of = move |item: &str| files.with(|f| f.get(item).cloned()).unwrap_or_else(|| format!("{}…", &item[..12.min(item.len())]));
                view! {
                    <p id="dataset-summary" data-images=n_images data-labels=n_labels data-annotators=s.annotators.len()>
                        {format!("{n_images} images, {n_labels} labels by {} annotators ({}); {} images labelled by two or more.",
                            s.annotators.len(), s.annotators.join(", "), s.compared_items)}
                    </p>
                    <h3>"Agreement on realistic / fake / unsure"</h3>
                    <table class="stats" id="agreement"
                        data-percent=stat(s.percent_agreement) data-cohen=stat(s.cohen_kappa) data-fleiss=stat(s.fleiss_kappa)>
                        <tr><td>"Percent agreement (mean over pairs)"</td><td>{stat(s.percent_agreement)}</td></tr>
                        <tr><td>"Cohen's kappa (mean over pairs)"</td><td>{stat(s.cohen_kappa)}</td></tr>
                        <tr><td>"Fleiss' kappa (all annotators)"</td><td>{stat(s.fleiss_kappa)}</td></tr>
                    </table>
                    <h3>"Pairs"</h3>
                    <table class="stats" id="agreement-pairs">
                        <tr><th>"annotators"</th><th>"images in common"</th><th>"agreement"</th><th>"Cohen's κ"</th></tr>
                        {s.cohen_kappa_pairs.iter().map(|p| view! {
                            <tr><td>{format!("{} – {}", p.a, p.b)}</td><td>{p.items}</td><td>{stat(p.percent_agreement)}</td><td>{stat(p.kappa)}</td></tr>
                        }).collect_view()}
                    </table>
                    <h3>"Per tag"</h3>
                    {if s.per_tag.iter().any(|t| t.positives > 0) {
                        view! {
                            <table class="stats" id="agreement-tags">
                                <tr><th>"tag"</th><th>"given"</th><th>"agreement"</th><th>"Fleiss' κ"</th></tr>
                                {s.per_tag.iter().filter(|t| t.positives > 0).map(|t| view! {
                                    <tr><td>{t.tag.clone()}</td><td>{t.positives}</td><td>{stat(t.percent_agreement)}</td><td>{stat(t.fleiss_kappa)}</td></tr>
                                }).collect_view()}
                            </table>
                        }.into_any()
                    } else {
                        view! { <p class="muted" id="agreement-tags">"No tags given yet."</p> }.into_any()
                    }}
                    <h3>"Consensus"</h3>
                    <p id="consensus" data-decided=decided data-ties=ties>
                        {format!("{decided} images have a majority answer; {ties} are tied; the rest are unsure.")}
                    </p>
                    <h3>{format!("To review ({})", s.conflicts.len())}</h3>
                    <ul id="conflicts">
                        {s.conflicts.iter().take(200).map(|item| {
                            let c = s.consensus.iter().find(|c| &c.item == item);
                            let votes = c.map(|c| format!("fake {} · realistic {} · unsure {}", c.votes[0], c.votes[1], c.votes[2])).unwrap_or_default();
                            view! { <li data-item=item.clone()>{file_of(item)}": "{votes}</li> }
                        }).collect_view()}
                    </ul>
                }
            })}

            <h3>"Model rounds"</h3>
            <p class="muted">"Each realism model the app has used, scored against the experts' consensus (realistic = positive; unsure and tied images left out)."</p>
            <div class="row toolbar">
                <label>"Classify with "
                    <select id="model-select" on:change=on_select_model>
                        <option value=SHIPPED_MODEL selected=move || active_model() == SHIPPED_MODEL>{format!("{SHIPPED_MODEL} (shipped)")}</option>
                        {move || snap.with(|s| s.models.iter().map(|m| {
                            let v = m.version.clone();
                            let is = v.clone();
                            view! { <option value=v.clone() selected=move || active_model() == is>{v.clone()}</option> }
                        }).collect_view())}
                    </select>
                </label>
                <label class="button">"Import realism weights (.bin)"
                    <input id="import-weights" type="file" accept=".bin,application/octet-stream" style="display:none" on:change=on_import_weights />
                </label>
                <button type="button" id="repredict" on:click=move |_| predict_missing()>"Predict every image with this model"</button>
                {move || predicting.get().map(|(k, n)| view! {
                    <span class="running" id="repredict-progress"><span class="spinner"></span>{format!("predicting {} of {n}", (k + 1).min(n))}<progress max=n as f64 value=k as f64></progress></span>
                })}
            </div>
            <p class="muted" id="active-model" data-version=active_model>{move || format!("In use: {}", active_model())}</p>
            <table class="stats" id="rounds">
                <tr><th>"model"</th><th>"images predicted"</th><th>"compared"</th><th>"precision"</th><th>"recall"</th><th>"F1"</th><th>"AUC"</th><th>"agreement"</th><th>"Cohen's κ"</th></tr>
                {move || {
                    let consensus = stats.with(|s| s.as_ref().map(|s| s.consensus.clone()).unwrap_or_default());
                    let active = active_model();
                    snap.with(|s| rounds_of(s, &consensus)).into_iter().map(|r| {
                        let s = r.scores;
                        let some = |v: f64| (s.images > 0).then_some(v);
                        view! {
                            <tr data-model=r.model.clone() data-predicted=r.predicted data-compared=s.images
                                data-precision=stat(some(s.precision)) data-recall=stat(some(s.recall)) data-agreement=stat(some(s.agreement))
                                class=if r.model == active { "active" } else { "" }>
                                <td>{r.model.clone()}</td><td>{r.predicted}</td><td>{s.images}</td>
                                <td>{stat(some(s.precision))}</td><td>{stat(some(s.recall))}</td><td>{stat(some(s.f1))}</td>
                                <td>{stat(s.auc)}</td><td>{stat(some(s.agreement))}</td><td>{stat(s.kappa)}</td>
                            </tr>
                        }
                    }).collect_view()
                }}
            </table>

            <h3>"Latent space"</h3>
            <p class="muted">
                "UMAP (n_neighbors 5, min_dist 0.5) of the realism ensemble's embedding of each image, for the model in use. "
                "Click a point to open the image on the Annotate page; drag a box to select (shift adds), then label the selection with the buttons or "
                <kbd>"r"</kbd>" "<kbd>"f"</kbd>" "<kbd>"u"</kbd>" ("<kbd>"Esc"</kbd>" clears). A yellow ring: the model disagrees with the experts."
            </p>
            <div class="row toolbar">
                <label>"Colour by "
                    <select id="latent-colour" on:change=move |ev| colouring.set(if event_target_value(&ev) == "model" { Colouring::Model } else { Colouring::Consensus })>
                        <option value="consensus">"the experts' consensus"</option>
                        <option value="model">"the model's realism score"</option>
                    </select>
                </label>
                <button type="button" id="project" on:click=move |_| project(true)>"Project again"</button>
                {move || projecting.get().then(|| view! { <span class="running"><span class="spinner"></span>"projecting…"</span> })}
            </div>
            {move || {
                let n = projection.with(|p| p.points.len());
                (n == 0).then(|| view! {
                    <p class="muted" id="latent-empty">"No embeddings yet for the model in use: predict the images (above, or Pre-label on the Annotate page) to see them here."</p>
                })
            }}
            <div class="latent" style=move || if projection.with(|p| p.points.is_empty()) { "display:none" } else { "" }>
                <svg id="latent-plot" width=PLOT_PX height=PLOT_PX viewBox=format!("0 0 {PLOT_PX} {PLOT_PX}")
                    data-points=move || projection.with(|p| p.points.len()) data-model=move || projection.with(|p| p.model.clone())
                    on:mousedown=on_down on:mousemove=on_move on:mouseup=on_up
                    on:mouseleave=move |_| dragging.set(None)>
                    <rect class="plot-bg" x="0" y="0" width=PLOT_PX height=PLOT_PX></rect>
                    {plot}
                    {move || dragging.get().map(|((x0, y0), (x1, y1))| view! {
                        <rect class="selection-box" x=x0.min(x1) y=y0.min(y1) width=(x1 - x0).abs() height=(y1 - y0).abs()></rect>
                    })}
                </svg>
                <div class="latent-side">
                    <p class="legend">
                        {move || if colouring.get() == Colouring::Consensus {
                            view! { <span><i class="dot" style="background:#2a9d8f"></i>"realistic "<i class="dot" style="background:#e76f51"></i>"fake "<i class="dot" style="background:#9aa5b1"></i>"unsure / tied "<i class="dot hollow"></i>"not labelled"</span> }.into_any()
                        } else {
                            view! { <span>"realism score: "<i class="ramp"></i>" 0 → 1"</span> }.into_any()
                        }}
                    </p>
                    <p id="latent-selection" data-count=move || selected.with(BTreeSet::len)>
                        {move || format!("{} selected", selected.with(BTreeSet::len))}
                    </p>
                    <p class="column">
                        <button type="button" id="label-selected-realistic" disabled=move || selected.with(BTreeSet::is_empty) on:click=move |_| label_selected(Some(true))><kbd>"r"</kbd>" label realistic"</button>
                        <button type="button" id="label-selected-fake" disabled=move || selected.with(BTreeSet::is_empty) on:click=move |_| label_selected(Some(false))><kbd>"f"</kbd>" label fake"</button>
                        <button type="button" id="label-selected-unsure" disabled=move || selected.with(BTreeSet::is_empty) on:click=move |_| label_selected(None)><kbd>"u"</kbd>" label unsure"</button>
                    </p>
                    <p class="muted">{move || snap.with(|s| if s.annotator.is_empty() { "Labels need your name: enter it on the Annotate page.".to_string() } else { format!("Labels are given as {}.", s.annotator) })}</p>
                </div>
            </div>

            <h3>"Human in the loop"</h3>
            <p class="muted">"Export the labelled images, fine-tune the ensemble with the companion binary, import the new weights above: every image is predicted again and the new round appears in the table. "
                "The mix draws images by the experts' consensus, generated (fake) : experimental (realistic), as seed 000 trains on 4:6; leave it empty to export every label."</p>
            <div class="row toolbar">
                <label>"Mix fake : realistic "
                    <input id="training-mix" type="text" size="5" prop:value=move || training_mix.get() on:input=move |ev| training_mix.set(event_target_value(&ev)) />
                </label>
                <button type="button" id="export-training" on:click=move |_| export_training()>"Export training set"</button>
            </div>
            <p class="muted">"Or let the companion do it: run "<code>"synthscope serve"</code>" beside the browser (on the machine with the GPU) and press the button; the new weights come back by themselves."</p>
            <div class="row toolbar">
                <label>"Companion "
                    <input id="companion-url" type="url" size="26" prop:value=move || companion_url.get() on:input=move |ev| companion_url.set(event_target_value(&ev)) />
                </label>
                <button type="button" id="companion-train" disabled=move || companion.get().is_some() on:click=move |_| train_on_companion()>"Fine-tune on the companion"</button>
                {move || companion.get().map(|c| view! { <span class="running" id="companion-progress"><span class="spinner"></span>{c}</span> })}
            </div>
        </section>
    }
}
