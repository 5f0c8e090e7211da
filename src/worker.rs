//! The compute worker: everything heavy runs here, off the page's thread, so the page never
//! freezes, however long a network call takes on the CPU.
//!
//! Built as its own binary (`src/bin/synthscope-worker.rs`, trunk `data-type="worker"`); the
//! page talks to it through [`crate::compute`] with the messages of [`crate::protocol`]. On
//! start it picks and probes the device ([`crate::runtime::detect`]) and reports it; then it
//! serves requests one at a time, in arrival order. Each model (the grain networks; the
//! tagger and realism ensemble) is fetched, or read from Cache Storage, with the first image
//! that needs it, and kept.

use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;
use std::rc::Rc;

use burn::tensor::Device;
use futures::StreamExt;
use futures::channel::mpsc;
use imaging::Image;
use imaging::detector::{FileGeometry, Geometry, HC_KEV_ANGSTROM};
use imaging::grains::label_grains;
use imaging::scattering::{
    BeamSource, FourierBessel, Mask, Spacing, integrate_chi, integrate_q, prepare,
};
use models::classify::{Classifier, Inputs};
use models::diffusion::generator::{Generator, SampleSettings, noise_seed};
use models::diffusion::sampler::SamplerKind;
use models::diffusion::tem::{TemGenerator, depth_to_space, mask_from_gray, value_to_gray};
use models::grain::{GrainInput, GrainModel, GrainRun};
use models::realism::Ensemble;
use models::tagger::TaggerSet;
use wasm_bindgen::prelude::*;

use crate::browser;
use crate::protocol::{
    self, ClassifiedHeader, Curve, DiffuseRequest, DiffusedHeader, FromWorker, MaskSource,
    MicrographHeader, MicrographRequest, ModelState, SegmentedHeader, Setup, Source, ToWorker,
    Vote,
};
use crate::runtime::{self, Status};
use crate::weights;

/// Regions smaller than this (pixels) are specks, not grains (as `synthscope segment`).
pub const MIN_GRAIN_PX: usize = 4;
/// Smallest image side the pipeline accepts.
pub const MIN_SIDE_PX: usize = 16;
/// Most images one `Diffuse` request samples together (memory: a guided step holds twice the
/// batch's activations).
pub const MAX_DIFFUSION_BATCH: usize = 16;

/// Requests the page has cancelled that have not stopped yet.
type Cancelled = Rc<RefCell<HashSet<u64>>>;

/// Sends a message to the page.
fn post(header: &FromWorker, buffers: Vec<js_sys::ArrayBuffer>) {
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let (message, transfer) = protocol::pack(header, buffers);
    if let Err(e) = scope.post_message_with_transfer(&message, &transfer) {
        web_sys::console::error_1(&format!("synthscope worker: post failed: {e:?}").into());
    }
}

/// The worker's entry point: listens for requests and serves them.
pub fn run() {
    console_error_panic_hook::set_once();
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let (tx, rx) = mpsc::unbounded::<(ToWorker, Vec<js_sys::ArrayBuffer>)>();
    let cancelled: Cancelled = Rc::default();
    let on_message = {
        let cancelled = cancelled.clone();
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            match protocol::unpack::<ToWorker>(&ev.data()) {
                // A cancel must not wait behind the request it stops: the sampler checks the
                // set between steps.
                Ok((ToWorker::Cancel { id }, _)) => {
                    cancelled.borrow_mut().insert(id);
                }
                Ok(request) => {
                    let _ = tx.unbounded_send(request);
                }
                Err(e) => web_sys::console::error_1(&format!("synthscope worker: {e}").into()),
            }
        })
    };
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    wasm_bindgen_futures::spawn_local(serve(rx, cancelled));
}

async fn serve(
    mut requests: mpsc::UnboundedReceiver<(ToWorker, Vec<js_sys::ArrayBuffer>)>,
    cancelled: Cancelled,
) {
    let (status, device) = runtime::detect().await;
    if let Status::Ready {
        backend,
        probe_max_abs_diff,
        ..
    } = &status
    {
        web_sys::console::log_1(
            &format!(
                "synthscope: backend {} probe max |Δ| {probe_max_abs_diff:e}",
                backend.id()
            )
            .into(),
        );
    }
    post(&FromWorker::Runtime(status.clone()), Vec::new());
    let model: Rc<RefCell<Option<Rc<GrainModel>>>> = Rc::default();
    let classifier: RefCell<Option<Rc<Classifier>>> = RefCell::default();
    let generator: RefCell<Option<Rc<Generator>>> = RefCell::default();
    let tem_generator: RefCell<Option<Rc<TemGenerator>>> = RefCell::default();
    // The version predictions are made with: the shipped weights until the page hands over a
    // fine-tuned ensemble.
    let version = RefCell::new(protocol::SHIPPED_MODEL.to_string());
    let basis = FourierBessel::reference(imaging::scattering::prepare::TAGGER_SIDE_PX as f64 / 2.0);
    let no_runtime = || match &status {
        Status::Failed(e) => format!("no ML runtime: {e}"),
        _ => "no ML runtime".to_string(),
    };
    while let Some((request, buffers)) = requests.next().await {
        match request {
            ToWorker::Classify {
                id,
                source,
                has_mask,
                beam_px,
                setup,
                geometry_from,
                frames,
                linked,
            } => {
                let result = match &device {
                    Some(device) => match load_classifier(device, &classifier).await {
                        Ok(c) => {
                            let request = ClassifyRequest {
                                id,
                                source,
                                has_mask,
                                beam_px,
                                setup,
                                geometry_from,
                                frames,
                                linked,
                            };
                            let v = version.borrow().clone();
                            classify(request, &buffers, &c, &v, &basis, device).await
                        }
                        Err(e) => Err(format!("the classifiers could not be loaded: {e}")),
                    },
                    None => Err(no_runtime()),
                };
                if let Err(error) = result {
                    post(&FromWorker::Failed { id, error }, Vec::new());
                }
            }
            ToWorker::UseRealism { id, version: name } => {
                let result = match &device {
                    Some(device) => {
                        use_realism(id, name, &buffers, device, &classifier, &version).await
                    }
                    None => Err(no_runtime()),
                };
                if let Err(error) = result {
                    post(&FromWorker::Failed { id, error }, Vec::new());
                }
            }
            ToWorker::Project { id, points, dim } => {
                if let Err(error) = project(id, points, dim, &buffers) {
                    post(&FromWorker::Failed { id, error }, Vec::new());
                }
            }
            ToWorker::Diffuse { id, request } => {
                let result = match &device {
                    Some(device) => match load_generator(device, &generator).await {
                        Ok(g) => diffuse(id, &request, &g, device, &cancelled).await,
                        Err(e) => Err(format!("the diffusion model could not be loaded: {e}")),
                    },
                    None => Err(no_runtime()),
                };
                cancelled.borrow_mut().remove(&id);
                if let Err(error) = result {
                    post(&FromWorker::Failed { id, error }, Vec::new());
                }
            }
            ToWorker::DrawMicrograph { id, request } => {
                let result = match &device {
                    Some(device) => match load_tem_generator(device, &tem_generator).await {
                        Ok(g) => {
                            draw_micrograph(id, &request, &buffers, &g, device, &cancelled).await
                        }
                        Err(e) => Err(format!("the TEM generator could not be loaded: {e}")),
                    },
                    None => Err(no_runtime()),
                };
                cancelled.borrow_mut().remove(&id);
                if let Err(error) = result {
                    post(&FromWorker::Failed { id, error }, Vec::new());
                }
            }
            // Handled on arrival (see `run`); one that reaches the queue has nothing to stop.
            ToWorker::Cancel { .. } => {}
            ToWorker::Segment {
                id,
                source,
                has_truth,
            } => {
                let result = match &device {
                    Some(device) => match load_model(device, &model).await {
                        Ok(m) => segment(id, source, has_truth, &buffers, &m, device).await,
                        Err(e) => Err(format!("the model could not be loaded: {e}")),
                    },
                    None => Err(no_runtime()),
                };
                if let Err(error) = result {
                    post(&FromWorker::Failed { id, error }, Vec::new());
                }
            }
        }
    }
}

/// Fetches shipped weights (or reads them from Cache Storage), announcing progress with
/// `announce` (about once per percent).
async fn fetch_weights(
    shipped: &weights::Shipped,
    announce: &dyn Fn(ModelState),
) -> Result<(Vec<u8>, protocol::WeightsSource), String> {
    let last_percent = RefCell::new(u64::MAX);
    let progress = |done: u64, total: Option<u64>| {
        let percent = total.map_or(done >> 16, |t| done * 100 / t.max(1));
        if last_percent.replace(percent) != percent {
            announce(ModelState::Loading(done, total));
        }
    };
    weights::fetch_verified(shipped.url, shipped.sha256(), &progress).await
}

/// A model from this worker's `cache`, else loaded by `load` (which reports download progress
/// through `announce`) and kept; `announce` also tells the page when it is ready (with the
/// parameters of each part) or why it failed.
async fn load_cached<T>(
    cache: &RefCell<Option<Rc<T>>>,
    announce: &impl Fn(ModelState),
    load: impl Future<Output = Result<Loaded<T>, String>>,
) -> Result<Rc<T>, String> {
    if let Some(m) = cache.borrow().clone() {
        return Ok(m);
    }
    announce(ModelState::Loading(0, None));
    match load.await {
        Ok(Loaded {
            model,
            source,
            parts,
        }) => {
            let model = Rc::new(model);
            announce(ModelState::Ready { source, parts });
            *cache.borrow_mut() = Some(model.clone());
            Ok(model)
        }
        Err(e) => {
            announce(ModelState::Failed(e.clone()));
            Err(e)
        }
    }
}

/// A freshly loaded model, where its weights came from, and its parts' parameter counts.
struct Loaded<T> {
    model: T,
    source: protocol::WeightsSource,
    parts: Vec<(String, usize)>,
}

/// The grain model, from the cache of this worker, Cache Storage or the network.
async fn load_model(
    device: &Device,
    cache: &RefCell<Option<Rc<GrainModel>>>,
) -> Result<Rc<GrainModel>, String> {
    let announce = |m: ModelState| post(&FromWorker::Model(m), Vec::new());
    load_cached(cache, &announce, async {
        let (bytes, source) = fetch_weights(&weights::GRAIN, &announce).await?;
        let model = GrainModel::from_bytes(&bytes, device).map_err(|e| e.to_string())?;
        let parts = vec![
            ("Net1".into(), burn::module::Module::num_params(&model.net1)),
            ("Net2".into(), burn::module::Module::num_params(&model.net2)),
        ];
        Ok(Loaded {
            model,
            source,
            parts,
        })
    })
    .await
}

/// The tagger and the realism ensemble, from this worker's cache, Cache Storage or the network.
async fn load_classifier(
    device: &Device,
    cache: &RefCell<Option<Rc<Classifier>>>,
) -> Result<Rc<Classifier>, String> {
    let announce = |m: ModelState| post(&FromWorker::Classifiers(m), Vec::new());
    load_cached(cache, &announce, async {
        let (tagger_bytes, source) = fetch_weights(&weights::TAGGER, &announce).await?;
        let (realism_bytes, _) = fetch_weights(&weights::REALISM, &announce).await?;
        let taggers = TaggerSet::from_bytes(&tagger_bytes, device).map_err(|e| e.to_string())?;
        let ensemble = Ensemble::from_bytes(&realism_bytes, device).map_err(|e| e.to_string())?;
        let tagger_params = taggers
            .nets
            .iter()
            .map(burn::module::Module::num_params)
            .sum();
        let parts = std::iter::once(("tagger".to_string(), tagger_params))
            .chain(
                ensemble
                    .members
                    .iter()
                    .zip(&ensemble.header.configs)
                    .map(|(m, c)| {
                        (
                            c.family.name().to_string(),
                            burn::module::Module::num_params(m),
                        )
                    }),
            )
            .collect();
        let model = Classifier::new(taggers, ensemble).map_err(|e| e.to_string())?;
        Ok(Loaded {
            model,
            source,
            parts,
        })
    })
    .await
}

/// The diffusion generator, from this worker's cache, Cache Storage or the network.
async fn load_generator(
    device: &Device,
    cache: &RefCell<Option<Rc<Generator>>>,
) -> Result<Rc<Generator>, String> {
    let announce = |m: ModelState| post(&FromWorker::Generator(m), Vec::new());
    load_cached(cache, &announce, async {
        let (bytes, source) = fetch_weights(&weights::DIFFUSION, &announce).await?;
        let model = Generator::from_bytes(&bytes, device).map_err(|e| e.to_string())?;
        let parts = vec![(
            "denoiser".into(),
            burn::module::Module::num_params(&model.denoiser),
        )];
        Ok(Loaded {
            model,
            source,
            parts,
        })
    })
    .await
}

/// The mask-conditioned TEM generator, from this worker's cache, Cache Storage or the network.
async fn load_tem_generator(
    device: &Device,
    cache: &RefCell<Option<Rc<TemGenerator>>>,
) -> Result<Rc<TemGenerator>, String> {
    let announce = |m: ModelState| post(&FromWorker::TemGenerator(m), Vec::new());
    load_cached(cache, &announce, async {
        let (bytes, source) = fetch_weights(&weights::TEM_DIFFUSION, &announce).await?;
        let model = TemGenerator::from_bytes(&bytes, device).map_err(|e| e.to_string())?;
        let parts = vec![(
            "denoiser".into(),
            burn::module::Module::num_params(&model.denoiser),
        )];
        Ok(Loaded {
            model,
            source,
            parts,
        })
    })
    .await
}

/// The boundary mask of a `DrawMicrograph` request, its size, and the engine's own micrograph
/// of it when the mask is the engine's.
type MicrographMask = (Vec<bool>, (usize, usize), Option<Image<u8>>);

fn micrograph_mask(
    source: &MaskSource,
    buffers: &[js_sys::ArrayBuffer],
) -> Result<MicrographMask, String> {
    let buffer = || {
        buffers
            .first()
            .map(protocol::bytes)
            .ok_or_else(|| "the request carried no mask (a bug: please report it)".to_string())
    };
    Ok(match source {
        MaskSource::Engine { seed, index } => {
            let sample =
                synth::dataset::generate_tem(&synth::tem::TemConfig::default(), *seed, *index)
                    .map_err(|e| e.to_string())?;
            let t = sample.image;
            let mask = t.boundary.pixels().iter().map(|&b| b > 0).collect();
            (mask, (t.image.width(), t.image.height()), Some(t.image))
        }
        MaskSource::File => {
            let loaded = imaging::load::load_gray(&buffer()?, 8).map_err(|e| e.to_string())?;
            let image = loaded.image.to_f32();
            let mask = mask_from_gray(image.pixels()).map_err(|e| e.to_string())?;
            (mask, (image.width(), image.height()), None)
        }
        MaskSource::Drawn { width, height } => {
            let bytes = buffer()?;
            if bytes.len() != width * height {
                return Err(format!(
                    "the drawn mask has {} pixels for {width} × {height} (a bug: please report it)",
                    bytes.len()
                ));
            }
            (
                bytes.iter().map(|&b| b != 0).collect(),
                (*width, *height),
                None,
            )
        }
    })
}

/// Draws one micrograph for a mask: the generator's steps one at a time (each followed by a
/// progress message with the current clean estimate, and a yield, so that a `Cancel` is
/// heard), as `synthscope sample tem-diffusion` draws image `r.index` of batch `r.seed`.
async fn draw_micrograph(
    id: u64,
    r: &MicrographRequest,
    buffers: &[js_sys::ArrayBuffer],
    g: &TemGenerator,
    device: &Device,
    cancelled: &Cancelled,
) -> Result<(), String> {
    let mut clock = StageClock::start();
    let (mask, (w, h), engine) = micrograph_mask(&r.mask, buffers)?;
    let settings = SampleSettings {
        steps: r.steps,
        ..SampleSettings::default()
    };
    let planes = g
        .planes(&[&mask], w, h, device)
        .map_err(|e| format!("this mask cannot be drawn: {e}"))?;
    clock.lap("condition");
    let model = g.model(planes).map_err(|e| e.to_string())?;
    let mut sampler = g
        .sampler(&settings, &[noise_seed(r.seed, r.index)], w, h, device)
        .map_err(|e| e.to_string())?;
    let read = |x: burn::tensor::Tensor<4>| async move {
        depth_to_space(x)
            .into_data_async()
            .await
            .map_err(|e| format!("{e:?}"))?
            .try_into_vec::<f32>()
            .map_err(|e| format!("{e:?}"))
    };
    while !sampler.is_done() {
        if cancelled.borrow().contains(&id) {
            post(&FromWorker::Cancelled { id }, Vec::new());
            return Ok(());
        }
        // Reading the estimate back also waits for the step on WebGPU, so progress is real.
        let estimate = read(sampler.step(&model)).await?;
        post(
            &FromWorker::Diffusing {
                id,
                done: sampler.steps_done(),
                total: sampler.steps(),
                shape: (h, w),
            },
            vec![protocol::f32_buffer(&estimate)],
        );
        browser::yield_now().await;
    }
    let values = read(sampler.current()).await?;
    clock.lap("denoise");
    let pixels: Vec<u8> = values.iter().map(|&v| value_to_gray(v)).collect();
    let (psnr_db, ssim) = match &engine {
        Some(truth) => {
            let x = Image::from_vec(w, h, pixels.iter().map(|&p| f32::from(p)).collect())
                .map_err(|e| e.to_string())?;
            let t = truth.map(f32::from);
            (
                Some(imaging::similarity::psnr(&x, &t, 255.0).map_err(|e| e.to_string())?),
                Some(imaging::similarity::ssim(&x, &t, 255.0).map_err(|e| e.to_string())?),
            )
        }
        None => (None, None),
    };
    clock.lap("compare");
    let mut out = vec![
        protocol::u8_buffer(&pixels),
        protocol::u8_buffer(&mask.iter().map(|&b| u8::from(b)).collect::<Vec<_>>()),
    ];
    if let Some(truth) = &engine {
        out.push(protocol::u8_buffer(truth.pixels()));
    }
    let header = MicrographHeader {
        id,
        model: weights::TEM_DIFFUSION.name.to_string(),
        model_sha256: weights::TEM_DIFFUSION.sha256().to_string(),
        width: w,
        height: h,
        psnr_db,
        ssim,
        stage_ms: clock.stages,
    };
    post(&FromWorker::Micrograph(header), out);
    Ok(())
}

/// Samples `r.count` scattering images: the generator's denoising steps one at a time (each
/// followed by a progress message with the first image's current clean estimate, and a
/// yield, so that a `Cancel` is heard), then each polar image through the instrument its
/// tags ask for (`synth::scattering::generated_image`, as `synthscope sample diffusion`).
async fn diffuse(
    id: u64,
    r: &DiffuseRequest,
    g: &Generator,
    device: &Device,
    cancelled: &Cancelled,
) -> Result<(), String> {
    let mut clock = StageClock::start();
    if r.count == 0 || r.count > MAX_DIFFUSION_BATCH {
        return Err(format!(
            "sample 1 to {MAX_DIFFUSION_BATCH} images at a time, not {}",
            r.count
        ));
    }
    let names: Vec<&str> = r.tags.iter().map(String::as_str).collect();
    let tags = g.tag_vector(&names).map_err(|e| e.to_string())?;
    let settings = SampleSettings {
        sampler: r
            .sampler
            .parse::<SamplerKind>()
            .map_err(|e| e.to_string())?,
        steps: r.steps,
        guidance: r.guidance,
        lattice_guidance: r.lattice_guidance,
    };
    let config = synth::scattering::SaxsConfig {
        size_px: r.size_px,
        ..synth::scattering::SaxsConfig::default()
    };
    config.validate().map_err(|e| e.to_string())?;
    let indices: Vec<u64> = (r.first_index..r.first_index + r.count as u64).collect();
    let seeds: Vec<u64> = indices.iter().map(|&i| noise_seed(r.seed, i)).collect();
    // The lattice-series planes of a model that reads them (first peaks drawn from the model's
    // training distribution, as `synthscope sample diffusion` draws them).
    let series = g.series_planes(&vec![r.tags.clone(); r.count], r.seed, &indices);
    let model = g
        .guided(&vec![tags; r.count], &series, &settings, device)
        .map_err(|e| e.to_string())?;
    let mut sampler = g
        .sampler(&settings, &seeds, device)
        .map_err(|e| e.to_string())?;
    let grid = g.header.layout;
    let shape = (grid.q_bins, grid.chi_bins);
    while !sampler.is_done() {
        if cancelled.borrow().contains(&id) {
            post(&FromWorker::Cancelled { id }, Vec::new());
            return Ok(());
        }
        // [count, χ, q, 1] → the first image's estimate. Reading it back also waits for the
        // step to finish on WebGPU, where a step is only queued, so progress is real.
        let x0 = sampler.step(&model).narrow(0, 0, 1);
        let estimate = g
            .polar_images(x0)
            .await
            .map_err(|e| e.to_string())?
            .pop()
            .unwrap_or_default();
        post(
            &FromWorker::Diffusing {
                id,
                done: sampler.steps_done(),
                total: sampler.steps(),
                shape,
            },
            vec![protocol::f32_buffer(&estimate)],
        );
        browser::yield_now().await;
    }
    let polars = g
        .polar_images(sampler.current())
        .await
        .map_err(|e| e.to_string())?;
    clock.lap("denoise");
    let mut images = Vec::with_capacity(r.count);
    let mut lattices = Vec::with_capacity(r.count);
    let mut buffers = Vec::with_capacity(2 * r.count);
    for (&index, polar) in indices.iter().zip(&polars) {
        let (instrument, image) =
            synth::scattering::generated_image(&config, &grid, polar, &names, r.seed, index)
                .map_err(|e| e.to_string())?;
        let geometry = instrument.geometry;
        images.push((index, (geometry.beam_x_px, geometry.beam_y_px)));
        lattices.push(g.requested_lattices(&r.tags, r.seed, index));
        buffers.push(protocol::u32_buffer(image.counts.pixels()));
        buffers.push(protocol::f32_buffer(polar));
    }
    clock.lap("instrument");
    let header = DiffusedHeader {
        id,
        model: weights::DIFFUSION.name.to_string(),
        model_sha256: weights::DIFFUSION.sha256().to_string(),
        size_px: r.size_px,
        polar_shape: shape,
        images,
        lattices,
        stage_ms: clock.stages,
    };
    post(&FromWorker::Diffused(header), buffers);
    Ok(())
}

/// Switches the realism ensemble: to the one in `buffers[0]` under the name `name`, or back to
/// the shipped one when `name` is `None`. The tagger stays. A file that is not a realism
/// ensemble is refused and the ensemble in use stays.
async fn use_realism(
    id: u64,
    name: Option<String>,
    buffers: &[js_sys::ArrayBuffer],
    device: &Device,
    cache: &RefCell<Option<Rc<Classifier>>>,
    version: &RefCell<String>,
) -> Result<(), String> {
    let current = load_classifier(device, cache).await?;
    let (classifier, name) = match name {
        Some(name) => {
            let bytes = buffers
                .first()
                .map(protocol::bytes)
                .ok_or("no weights file came with the request (a bug: please report it)")?;
            let ensemble = Ensemble::from_bytes(&bytes, device).map_err(|e| {
                format!("this is not a realism weights file written by `synthscope train realism` ({e}); the current model stays")
            })?;
            (current.with_realism(ensemble), name)
        }
        None => {
            let (bytes, _) = fetch_weights(&weights::REALISM, &|_| {}).await?;
            let ensemble = Ensemble::from_bytes(&bytes, device).map_err(|e| e.to_string())?;
            (
                current.with_realism(ensemble),
                protocol::SHIPPED_MODEL.to_string(),
            )
        }
    };
    let info = protocol::RealismInfo {
        id,
        version: name.clone(),
        members: classifier
            .members()
            .iter()
            .map(|m| m.to_string())
            .zip(classifier.vote_weights().iter().copied())
            .collect(),
        vote_threshold: classifier.vote_threshold(),
        trained: classifier.realism_trained().to_string(),
    };
    *cache.borrow_mut() = Some(Rc::new(classifier));
    *version.borrow_mut() = name;
    post(&FromWorker::Realism(info), Vec::new());
    Ok(())
}

/// UMAP of `points × dim` embeddings (seed 000's settings: n_neighbors 5, min_dist 0.5).
fn project(
    id: u64,
    points: usize,
    dim: usize,
    buffers: &[js_sys::ArrayBuffer],
) -> Result<(), String> {
    let values = buffers
        .first()
        .map(protocol::f32s)
        .ok_or("no embeddings came with the request (a bug: please report it)")?;
    if values.len() != points * dim {
        return Err(format!(
            "{} embedding values for {points} points of {dim} (a bug: please report it)",
            values.len()
        ));
    }
    let xy = labels::umap::umap(&values, dim, &labels::umap::UmapConfig::default())
        .map_err(|e| format!("the latent-space projection failed: {e}"))?;
    let flat: Vec<f32> = xy.iter().flatten().copied().collect();
    post(
        &FromWorker::Projected { id, points },
        vec![protocol::f32_buffer(&flat)],
    );
    Ok(())
}

/// Wall-clock milliseconds of each stage of one request, in order (shown on the page and read
/// by the browser benchmarks).
struct StageClock {
    last_ms: f64,
    stages: Vec<(String, f64)>,
}

impl StageClock {
    fn start() -> Self {
        Self {
            last_ms: browser::now_ms(),
            stages: Vec::new(),
        }
    }

    /// Ends the stage `name` now; the next starts.
    fn lap(&mut self, name: &str) {
        let now = browser::now_ms();
        self.stages.push((name.to_string(), now - self.last_ms));
        self.last_ms = now;
    }
}

/// What a `Classify` request asks.
struct ClassifyRequest {
    id: u64,
    source: Source,
    has_mask: bool,
    beam_px: Option<(f64, f64)>,
    setup: Option<Setup>,
    geometry_from: Option<String>,
    frames: imaging::load::Frames,
    linked: Vec<String>,
}

/// What [`decode`] gives: the image as floats and what the file said about it.
struct Decoded {
    image: Image<f32>,
    /// A notice for the user (colour converted to grey).
    notice: Option<String>,
    /// The set-up the file's header records (CBF).
    geometry: Option<FileGeometry>,
    /// The largest value of the file's integer sample type (`None`: floats, or pixels handed
    /// over by the Generate page), for the plausibility check.
    full_scale: Option<f64>,
    /// For a stack (HDF5/NeXus): which frames of how many.
    stack: Option<imaging::load::StackRead>,
}

/// Decodes the source buffer of a request: `frames` of a stack, with the files its external
/// links name in `linked`.
fn decode(
    source: Source,
    first: &js_sys::ArrayBuffer,
    linked: imaging::hdf5::Linked,
    frames: imaging::load::Frames,
    min_side_px: usize,
) -> Result<Decoded, String> {
    Ok(match source {
        Source::File => {
            let loaded =
                imaging::load::load_detector(&protocol::bytes(first), linked, frames, min_side_px)
                    .map_err(|e| e.to_string())?;
            Decoded {
                image: loaded.image.to_f32(),
                notice: loaded.notice(),
                full_scale: loaded.image.full_scale(),
                geometry: loaded.geometry,
                stack: loaded.stack,
            }
        }
        Source::Pixels { width, height } => Decoded {
            image: Image::from_vec(width, height, protocol::f32s(first))
                .map_err(|e| e.to_string())?,
            notice: None,
            geometry: None,
            full_scale: None,
            stack: None,
        },
    })
}

/// Classification of one scattering image: decode, mask, beam centre, Fourier–Bessel
/// features, tagger and realism ensemble, I(q) and I(χ).
async fn classify(
    r: ClassifyRequest,
    buffers: &[js_sys::ArrayBuffer],
    classifier: &Classifier,
    version: &str,
    basis: &FourierBessel,
    device: &Device,
) -> Result<(), String> {
    let id = r.id;
    let stage = |text: &str| {
        post(
            &FromWorker::Stage {
                id,
                text: text.into(),
            },
            Vec::new(),
        )
    };
    let mut clock = StageClock::start();
    let first = buffers
        .first()
        .ok_or("the request carried no image (a bug: please report it)")?;
    stage("decoding");
    // The data files an HDF5 master links to follow the image (and the mask).
    let after = 1 + usize::from(r.has_mask);
    let linked = imaging::hdf5::linked_from(
        r.linked
            .iter()
            .cloned()
            .zip(
                buffers
                    .iter()
                    .skip(after)
                    .map(|b| protocol::bytes(b).into()),
            )
            .collect(),
    );
    let Decoded {
        image,
        notice,
        geometry,
        full_scale,
        stack,
    } = decode(r.source, first, linked, r.frames, 8)?;
    let header = geometry.unwrap_or_default();
    // Before the models: a frame no detector would write gets no realism verdict.
    let implausible = imaging::plausibility::check(&image, full_scale).summary();
    let (w, h) = (image.width(), image.height());
    // A centre the user gave wins over the file's; the file's over an estimate.
    let header_beam = if r.beam_px.is_none() {
        header.beam_xy_px
    } else {
        None
    };
    let beam_px = r.beam_px.or(header_beam);
    let user_mask = match (r.has_mask, buffers.get(1)) {
        (true, Some(b)) => Some(
            Mask::from_flags(w, h, protocol::bytes(b).iter().map(|&v| v != 0).collect())
                .ok_or("the mask does not match the image size; clear it and draw it again")?,
        ),
        _ => None,
    };
    clock.lap("decode");
    stage(if beam_px.is_some() {
        "Fourier–Bessel features"
    } else {
        "beam centre and Fourier–Bessel features"
    });
    let p = prepare(&image, user_mask.as_ref(), beam_px, basis).map_err(|e| e.to_string())?;
    clock.lap("prepare");
    stage("tagger and realism ensemble");
    let inputs = Inputs {
        image: &p.tagger.image,
        coeff: &p.tagger.coefficients,
        realism: &p.tagger.image,
    };
    let c = classifier
        .classify(&[inputs], device)
        .await
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or("the classifier returned nothing (a bug: please report it)")?;
    clock.lap("classify");
    stage("I(q) and I(χ)");
    let from_header = match (
        header.pixel_size_um,
        header.distance_m,
        header.wavelength_angstrom,
    ) {
        (Some((px, _)), Some(d), Some(l)) if l > 0.0 => Some(Setup {
            pixel_size_um: px,
            distance_m: d,
            energy_kev: HC_KEV_ANGSTROM / l,
        }),
        _ => None,
    };
    let (setup, setup_source) = match (r.setup, from_header) {
        (Some(s), _) if r.geometry_from.is_some() => (s, "the PONI calibration"),
        (Some(s), _) => (s, "your entries"),
        (None, Some(s)) => (s, "the file header"),
        (None, None) => {
            let g = Geometry::reference(w.max(h), 0.5, 0.5);
            let s = Setup {
                pixel_size_um: g.pixel_size_um,
                distance_m: g.distance_m,
                energy_kev: g.energy_kev,
            };
            (s, "the engine's reference set-up")
        }
    };
    let geometry = Geometry {
        width_px: w,
        height_px: h,
        pixel_size_um: setup.pixel_size_um,
        distance_m: setup.distance_m,
        energy_kev: setup.energy_kev,
        beam_x_px: p.beam_px.0,
        beam_y_px: p.beam_px.1,
    };
    let mask = p.mask.as_slice();
    let iq = integrate_q(&image, Some(mask), &geometry, 160, Spacing::Log);
    let (near, far) = geometry.radius_range_px();
    let ichi = integrate_chi(
        &image,
        Some(mask),
        &geometry,
        geometry.q_at_radius(near.max(1.0)),
        geometry.q_at_radius(far) * 1.0001,
        180,
    );
    clock.lap("profiles");
    let mut tags: Vec<(String, f32)> = classifier
        .tags
        .iter()
        .cloned()
        .zip(c.tag_probabilities.iter().copied())
        .collect();
    tags.sort_by(|a, b| b.1.total_cmp(&a.1));
    let votes = classifier
        .members()
        .iter()
        .zip(&c.member_probabilities)
        .zip(classifier.vote_weights())
        .zip(classifier.member_thresholds())
        .map(|(((name, &probability), &weight), threshold)| Vote {
            name: name.to_string(),
            probability,
            weight,
            threshold,
        })
        .collect();
    let (beam_source, beam_explained) = match p.beam_source {
        BeamSource::Given if header_beam.is_some() => ("file header", None),
        BeamSource::Given if r.geometry_from.is_some() => ("PONI", None),
        BeamSource::Given => ("given", None),
        BeamSource::Estimated { explained } => ("estimated", Some(explained)),
        BeamSource::ImageCentre => ("image centre", None),
    };
    let header = ClassifiedHeader {
        id,
        width: w,
        height: h,
        notice,
        beam_px: p.beam_px,
        beam_source: beam_source.into(),
        beam_explained: beam_explained.filter(|e| e.is_finite()),
        beam_doubtful: p.beam_source.doubtful(),
        tags,
        no_pattern: match (
            c.is_pattern,
            c.pattern_probability,
            classifier.gate_threshold(),
        ) {
            (false, Some(p), Some(t)) if implausible.is_none() => Some((p, t)),
            _ => None,
        },
        implausible,
        // JSON has no NaN: a NaN score (a broken weights file) reads as "not realistic".
        realism_score: if c.realism_score.is_finite() {
            c.realism_score
        } else {
            0.0
        },
        realistic: c.realistic,
        vote_threshold: classifier.vote_threshold(),
        votes,
        iq: Curve::of(&iq),
        ichi: Curve::of(&ichi),
        setup,
        setup_source: setup_source.into(),
        stage_ms: clock.stages,
        stack: stack.map(Box::new),
        model: version.to_string(),
        // JSON has no NaN either: a non-finite feature (never seen) reads as 0.
        embedding: c
            .embedding
            .iter()
            .map(|v| if v.is_finite() { *v } else { 0.0 })
            .collect(),
    };
    // log10(1 + counts) for display; NaN marks invalid pixels.
    let display: Vec<f32> = image
        .pixels()
        .iter()
        .map(|&v| {
            if v.is_finite() && v >= 0.0 {
                v.ln_1p() / std::f32::consts::LN_10
            } else {
                f32::NAN
            }
        })
        .collect();
    let mask_bytes: Vec<u8> = mask.iter().map(|&b| u8::from(b)).collect();
    post(
        &FromWorker::Classified(Box::new(header)),
        vec![
            protocol::f32_buffer(&display),
            protocol::u8_buffer(&mask_bytes),
        ],
    );
    Ok(())
}

/// The whole pipeline on one image: decode, edge fusion, Net1, Net2 to convergence, grains.
async fn segment(
    id: u64,
    source: Source,
    has_truth: bool,
    buffers: &[js_sys::ArrayBuffer],
    model: &GrainModel,
    device: &Device,
) -> Result<(), String> {
    let stage = |text: String| post(&FromWorker::Stage { id, text }, Vec::new());
    let mut clock = StageClock::start();
    let first = buffers
        .first()
        .ok_or("the request carried no image (a bug: please report it)")?;
    stage("decoding".into());
    let Decoded { image, notice, .. } = decode(
        source,
        first,
        imaging::hdf5::nothing_linked(),
        Default::default(),
        MIN_SIDE_PX,
    )?;
    let (w, h) = (image.width(), image.height());
    clock.lap("decode");
    stage("edge fusion (Sobel, LoG, Canny)".into());
    let (gray, edges, planes) = imaging::edges::grain_planes(&image);
    clock.lap("edges");
    stage("Net1: initial boundary guess".into());
    let input = GrainInput::new(&planes, w, h, model.multiple_px()).map_err(|e| e.to_string())?;
    let mut run = GrainRun::new(model, input, model.header.refine, device);
    let net1_probability = run.net1().await.map_err(|e| e.to_string())?;
    clock.lap("net1");
    while run.refining() {
        stage(format!("Net2: refinement iteration {}", run.iterations + 1));
        run.refine_step().await.map_err(|e| e.to_string())?;
    }
    let mask = run.mask().await.map_err(|e| e.to_string())?;
    clock.lap("net2");
    stage("measuring grains".into());
    let labels = label_grains(&mask, w, h, MIN_GRAIN_PX);
    clock.lap("grains");
    let truth_f1 = has_truth
        .then(|| buffers.get(1).map(protocol::bytes))
        .flatten()
        .filter(|t| t.len() == mask.len())
        .map(|t| {
            let truth: Vec<bool> = t.iter().map(|&b| b != 0).collect();
            imaging::metrics::boundary_scores(&mask, &truth, w, h, 2.0).f1
        });
    let header = SegmentedHeader {
        id,
        width: w,
        height: h,
        grain_count: labels.count,
        iterations: run.iterations,
        converged: run.converged,
        notice,
        stage_ms: clock.stages,
        truth_f1,
    };
    let mask_bytes: Vec<u8> = mask.iter().map(|&b| u8::from(b)).collect();
    post(
        &FromWorker::Segmented(header),
        vec![
            protocol::f32_buffer(gray.pixels()),
            protocol::u8_buffer(&edges.to_rgba()),
            protocol::f32_buffer(&net1_probability),
            protocol::u8_buffer(&mask_bytes),
            protocol::u32_buffer(&labels.ids),
        ],
    );
    Ok(())
}
