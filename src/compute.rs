//! The page's side of the compute worker ([`crate::worker`]): starts it, sends it requests and
//! turns its messages into signals (runtime status, model state) and awaited results.
//!
//! Provided as context by [`crate::App`] (as a [`ComputeContext`]); pages call
//! [`Compute::segment`] and [`Compute::classify`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use imaging::Image;
use imaging::grains::GrainLabels;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use crate::protocol::{
    self, ClassifiedHeader, DiffuseRequest, DiffusedHeader, FromWorker, MicrographHeader,
    MicrographRequest, ModelState, RealismInfo, SegmentedHeader, Setup, Source, ToWorker,
};
use crate::runtime::Status;

/// The worker script trunk writes for `src/bin/synthscope-worker.rs` (see index.html).
const WORKER_URL: &str = "./synthscope-worker_loader.js";

/// Everything the pipeline produced for one image, as the page holds it.
pub struct Segmented {
    /// Scalars: size, iterations, timings, F1 against the truth.
    pub header: SegmentedHeader,
    /// The image normalised to [0, 1].
    pub gray: Image<f32>,
    /// The fused edge map as RGBA bytes.
    pub edges_rgba: Vec<u8>,
    /// Net1's boundary probabilities, row-major.
    pub net1_probability: Vec<f32>,
    /// The refined boundary mask.
    pub mask: Vec<bool>,
    /// Grains (0 on boundary pixels).
    pub labels: GrainLabels,
}

impl Segmented {
    fn from_message(header: SegmentedHeader, b: &[js_sys::ArrayBuffer]) -> Result<Self, String> {
        let [gray, edges, net1, mask, ids] = b else {
            return Err(format!("expected 5 result buffers, got {}", b.len()));
        };
        let (w, h) = (header.width, header.height);
        let ids = protocol::u32s(ids);
        let mask: Vec<bool> = protocol::bytes(mask).iter().map(|&v| v != 0).collect();
        let net1_probability = protocol::f32s(net1);
        let edges_rgba = protocol::bytes(edges);
        if ids.len() != w * h
            || mask.len() != w * h
            || net1_probability.len() != w * h
            || edges_rgba.len() != 4 * w * h
        {
            return Err("the worker's result has the wrong size (a bug: please report it)".into());
        }
        Ok(Self {
            gray: Image::from_vec(w, h, protocol::f32s(gray)).map_err(|e| e.to_string())?,
            edges_rgba,
            net1_probability,
            mask,
            labels: GrainLabels {
                width: w,
                height: h,
                ids,
                count: header.grain_count,
            },
            header,
        })
    }
}

/// A classified scattering image, as the page holds it.
pub struct Classified {
    /// Tags, realism votes, beam centre, profiles, timings.
    pub header: ClassifiedHeader,
    /// log10(1 + counts); NaN where the detector flags a pixel invalid.
    pub display: Image<f32>,
    /// The mask the classifiers used (invalid pixels and the user's).
    pub mask: Vec<bool>,
}

impl Classified {
    fn from_message(header: ClassifiedHeader, b: &[js_sys::ArrayBuffer]) -> Result<Self, String> {
        let [display, mask] = b else {
            return Err(format!("expected 2 result buffers, got {}", b.len()));
        };
        let (w, h) = (header.width, header.height);
        let mask: Vec<bool> = protocol::bytes(mask).iter().map(|&v| v != 0).collect();
        if mask.len() != w * h {
            return Err("the worker's result has the wrong size (a bug: please report it)".into());
        }
        Ok(Self {
            display: Image::from_vec(w, h, protocol::f32s(display)).map_err(|e| e.to_string())?,
            mask,
            header,
        })
    }
}

/// One image of a finished diffusion request, as the page holds it.
pub struct DiffusedImage {
    /// Index in the batch (its noise seed is `noise_seed(seed, index)`).
    pub index: u64,
    /// Beam centre of the drawn instrument, pixels.
    pub beam_px: (f64, f64),
    /// Requested lattices (tag, first peak q₁ in Å⁻¹) marked in its lattice-series plane.
    pub lattices: Vec<(String, f64)>,
    /// Detector counts.
    pub counts: Image<u32>,
    /// The sample's polar image: χ columns × q rows, values in [−1, 1].
    pub polar: Image<f32>,
}

/// A finished diffusion request.
pub struct Diffused {
    /// Model, sizes, timings.
    pub header: DiffusedHeader,
    /// The images, in index order.
    pub images: Vec<DiffusedImage>,
}

impl Diffused {
    fn from_message(header: DiffusedHeader, b: &[js_sys::ArrayBuffer]) -> Result<Self, String> {
        if b.len() != 2 * header.images.len() {
            return Err(format!(
                "expected {} result buffers, got {}",
                2 * header.images.len(),
                b.len()
            ));
        }
        let side = header.size_px;
        let (q, chi) = header.polar_shape;
        let images = header
            .images
            .iter()
            .zip(b.chunks_exact(2))
            .enumerate()
            .map(|(i, (&(index, beam_px), pair))| {
                let counts = Image::from_vec(side, side, protocol::u32s(&pair[0]))
                    .map_err(|e| e.to_string())?;
                let polar = Image::from_vec(chi, q, protocol::f32s(&pair[1])).map_err(|_| {
                    "the worker's polar image has the wrong size (a bug: please report it)"
                        .to_string()
                })?;
                Ok(DiffusedImage {
                    index,
                    beam_px,
                    lattices: header.lattices.get(i).cloned().unwrap_or_default(),
                    counts,
                    polar,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { header, images })
    }
}

/// A micrograph drawn for a mask, as the page holds it.
pub struct Micrograph {
    /// Model, size, PSNR/SSIM to the engine's image, timings.
    pub header: MicrographHeader,
    /// The micrograph, 8-bit grey.
    pub image: Image<u8>,
    /// The mask it was drawn for.
    pub mask: Vec<bool>,
    /// The engine's own micrograph of the mask, when the mask is the engine's.
    pub engine: Option<Image<u8>>,
}

impl Micrograph {
    fn from_message(header: MicrographHeader, b: &[js_sys::ArrayBuffer]) -> Result<Self, String> {
        let (w, h) = (header.width, header.height);
        let image = |buffer: &js_sys::ArrayBuffer| {
            Image::from_vec(w, h, protocol::bytes(buffer)).map_err(|e| e.to_string())
        };
        let (Some(first), Some(second)) = (b.first(), b.get(1)) else {
            return Err(
                "the worker's micrograph came without its buffers (a bug: please report it)".into(),
            );
        };
        let mask = protocol::bytes(second);
        if mask.len() != w * h {
            return Err("the worker's mask has the wrong size (a bug: please report it)".into());
        }
        Ok(Self {
            image: image(first)?,
            mask: mask.iter().map(|&v| v != 0).collect(),
            engine: b.get(2).map(image).transpose()?,
            header,
        })
    }
}

/// A diffusion request's progress: steps taken, steps in all, and the first image's current
/// clean estimate (`[q, χ]` row-major with its shape).
pub struct DiffusionProgress {
    /// Steps taken.
    pub done: usize,
    /// Steps in all.
    pub total: usize,
    /// Rows (q) and columns (χ) of `estimate`.
    pub shape: (usize, usize),
    /// Values in [−1, 1].
    pub estimate: Vec<f32>,
}

/// A finished request.
enum Reply {
    Segmented(Segmented),
    Classified(Classified),
    Realism(RealismInfo),
    Projected(Vec<[f32; 2]>),
    Diffused(Diffused),
    Micrograph(Micrograph),
    Cancelled,
}

impl Reply {
    /// What kind of reply it is, for the message when a request got the wrong one.
    fn kind(&self) -> &'static str {
        match self {
            Reply::Segmented(_) => "a segmentation",
            Reply::Classified(_) => "a classification",
            Reply::Realism(_) => "a model change",
            Reply::Projected(_) => "a projection",
            Reply::Diffused(_) => "generated images",
            Reply::Micrograph(_) => "a generated micrograph",
            Reply::Cancelled => "a cancellation",
        }
    }
}

/// The error for a reply of the wrong kind.
fn unexpected(reply: &Reply) -> String {
    format!(
        "the worker answered with {} (a bug: please report it)",
        reply.kind()
    )
}

/// How pages find the worker: `use_context::<ComputeContext>()`.
pub type ComputeContext = StoredValue<Compute, LocalStorage>;

/// What a request waits for.
struct Pending {
    stage: Box<dyn Fn(String)>,
    /// Hears a diffusion request's steps; a no-op for other requests.
    progress: Box<dyn Fn(DiffusionProgress)>,
    done: oneshot::Sender<Result<Reply, String>>,
}

/// The running worker. Cheap to clone.
#[derive(Clone)]
pub struct Compute {
    /// `None` when the worker could not be created.
    worker: Option<Rc<web_sys::Worker>>,
    pending: Rc<RefCell<HashMap<u64, Pending>>>,
    next_id: Rc<Cell<u64>>,
    /// The device check's result.
    pub status: ReadSignal<Status>,
    /// The grain model's state.
    pub model: ReadSignal<ModelState>,
    /// The classifiers' (tagger and realism ensemble) state.
    pub classifiers: ReadSignal<ModelState>,
    /// The diffusion generator's state.
    pub generator: ReadSignal<ModelState>,
    /// The TEM generator's state.
    pub tem_generator: ReadSignal<ModelState>,
    /// The model version the worker classifies with ([`protocol::SHIPPED_MODEL`] until a
    /// fine-tuned realism ensemble is handed over with [`Compute::use_realism`]).
    pub model_version: RwSignal<String>,
}

impl Compute {
    /// Starts the worker. Its first message is the runtime status.
    pub fn start() -> Self {
        let (status, set_status) = signal(Status::Starting);
        let (model, set_model) = signal(ModelState::NotLoaded);
        let (classifiers, set_classifiers) = signal(ModelState::NotLoaded);
        let (generator, set_generator) = signal(ModelState::NotLoaded);
        let (tem_generator, set_tem_generator) = signal(ModelState::NotLoaded);
        let pending: Rc<RefCell<HashMap<u64, Pending>>> = Rc::default();
        let worker = match web_sys::Worker::new(WORKER_URL) {
            Ok(w) => w,
            Err(e) => {
                set_status.set(Status::Failed(format!(
                    "the compute worker could not start ({}); reload the page",
                    crate::browser::js_error(&e)
                )));
                // Requests fail on `status`.
                return Self::stopped(status, model, classifiers, generator, tem_generator);
            }
        };
        let on_message = {
            let pending = pending.clone();
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                let (message, buffers) = match protocol::unpack::<FromWorker>(&ev.data()) {
                    Ok(m) => m,
                    Err(e) => {
                        // A reply that cannot be read cannot be routed to its request: fail
                        // everything waiting rather than leave it spinning forever.
                        web_sys::console::error_1(&e.clone().into());
                        for (_, p) in pending.borrow_mut().drain() {
                            let _ = p.done.send(Err(format!(
                                "the compute worker sent an unreadable reply ({e}); a bug: please report it"
                            )));
                        }
                        return;
                    }
                };
                match message {
                    FromWorker::Runtime(s) => set_status.set(s),
                    FromWorker::Model(m) => set_model.set(m),
                    FromWorker::Classifiers(m) => set_classifiers.set(m),
                    FromWorker::Generator(m) => set_generator.set(m),
                    FromWorker::TemGenerator(m) => set_tem_generator.set(m),
                    FromWorker::Micrograph(header) => {
                        if let Some(p) = pending.borrow_mut().remove(&header.id) {
                            let _ = p.done.send(
                                Micrograph::from_message(header, &buffers).map(Reply::Micrograph),
                            );
                        }
                    }
                    FromWorker::Diffusing {
                        id,
                        done,
                        total,
                        shape,
                    } => {
                        if let Some(p) = pending.borrow().get(&id) {
                            let estimate = buffers.first().map(protocol::f32s).unwrap_or_default();
                            (p.progress)(DiffusionProgress {
                                done,
                                total,
                                shape,
                                estimate,
                            });
                        }
                    }
                    FromWorker::Diffused(header) => {
                        if let Some(p) = pending.borrow_mut().remove(&header.id) {
                            let _ = p.done.send(
                                Diffused::from_message(header, &buffers).map(Reply::Diffused),
                            );
                        }
                    }
                    FromWorker::Cancelled { id } => {
                        if let Some(p) = pending.borrow_mut().remove(&id) {
                            let _ = p.done.send(Ok(Reply::Cancelled));
                        }
                    }
                    FromWorker::Stage { id, text } => {
                        if let Some(p) = pending.borrow().get(&id) {
                            (p.stage)(text);
                        }
                    }
                    FromWorker::Segmented(header) => {
                        if let Some(p) = pending.borrow_mut().remove(&header.id) {
                            let _ = p.done.send(
                                Segmented::from_message(header, &buffers).map(Reply::Segmented),
                            );
                        }
                    }
                    FromWorker::Classified(header) => {
                        if let Some(p) = pending.borrow_mut().remove(&header.id) {
                            let _ = p.done.send(
                                Classified::from_message(*header, &buffers).map(Reply::Classified),
                            );
                        }
                    }
                    FromWorker::Realism(info) => {
                        if let Some(p) = pending.borrow_mut().remove(&info.id) {
                            let _ = p.done.send(Ok(Reply::Realism(info)));
                        }
                    }
                    FromWorker::Projected { id, points } => {
                        if let Some(p) = pending.borrow_mut().remove(&id) {
                            let xy = buffers.first().map(protocol::f32s).unwrap_or_default();
                            let _ = p.done.send(if xy.len() == 2 * points {
                                Ok(Reply::Projected(
                                    xy.chunks_exact(2).map(|c| [c[0], c[1]]).collect(),
                                ))
                            } else {
                                Err("the worker's projection has the wrong size (a bug: please report it)".into())
                            });
                        }
                    }
                    FromWorker::Failed { id, error } => {
                        if let Some(p) = pending.borrow_mut().remove(&id) {
                            let _ = p.done.send(Err(error));
                        }
                    }
                }
            })
        };
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        // A worker that fails to load or crashes: fail everything waiting, and say so.
        let on_error = {
            let pending = pending.clone();
            Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |ev: web_sys::ErrorEvent| {
                let text = format!(
                    "the compute worker stopped ({}); reload the page",
                    if ev.message().is_empty() {
                        "it could not be loaded".to_string()
                    } else {
                        ev.message()
                    }
                );
                if matches!(status.get_untracked(), Status::Starting) {
                    set_status.set(Status::Failed(text.clone()));
                }
                for (_, p) in pending.borrow_mut().drain() {
                    let _ = p.done.send(Err(text.clone()));
                }
            })
        };
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        Self {
            worker: Some(Rc::new(worker)),
            pending,
            next_id: Rc::default(),
            status,
            model,
            classifiers,
            generator,
            tem_generator,
            model_version: RwSignal::new(protocol::SHIPPED_MODEL.to_string()),
        }
    }

    fn stopped(
        status: ReadSignal<Status>,
        model: ReadSignal<ModelState>,
        classifiers: ReadSignal<ModelState>,
        generator: ReadSignal<ModelState>,
        tem_generator: ReadSignal<ModelState>,
    ) -> Self {
        Self {
            worker: None,
            pending: Rc::default(),
            next_id: Rc::default(),
            status,
            model,
            classifiers,
            generator,
            tem_generator,
            model_version: RwSignal::new(protocol::SHIPPED_MODEL.to_string()),
        }
    }

    /// Sends `request` with `buffers` and waits for its reply; `stage` hears each stage.
    async fn request(
        &self,
        id: u64,
        request: &ToWorker,
        buffers: Vec<js_sys::ArrayBuffer>,
        stage: impl Fn(String) + 'static,
    ) -> Result<Reply, String> {
        self.request_with_progress(id, request, buffers, stage, |_| {})
            .await
    }

    /// As [`Compute::request`], with `progress` hearing a diffusion request's steps.
    async fn request_with_progress(
        &self,
        id: u64,
        request: &ToWorker,
        buffers: Vec<js_sys::ArrayBuffer>,
        stage: impl Fn(String) + 'static,
        progress: impl Fn(DiffusionProgress) + 'static,
    ) -> Result<Reply, String> {
        // A message posted while the worker is still instantiating its wasm finds no handler
        // and is lost: wait for its first message (the runtime status) before sending.
        while matches!(self.status.get_untracked(), Status::Starting) && self.worker.is_some() {
            crate::browser::sleep_ms(20).await;
        }
        if let Status::Failed(e) = self.status.get_untracked() {
            return Err(e);
        }
        let (done, result) = oneshot::channel();
        self.pending.borrow_mut().insert(
            id,
            Pending {
                stage: Box::new(stage),
                progress: Box::new(progress),
                done,
            },
        );
        let worker = self
            .worker
            .as_ref()
            .ok_or("the compute worker is not running; reload the page")?;
        let (message, transfer) = protocol::pack(request, buffers);
        if let Err(e) = worker.post_message_with_transfer(&message, &transfer) {
            self.pending.borrow_mut().remove(&id);
            return Err(format!(
                "could not hand the image to the compute worker: {}",
                crate::browser::js_error(&e)
            ));
        }
        result
            .await
            .unwrap_or_else(|_| Err("the compute worker dropped the request".into()))
    }

    fn next_request_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Tags a scattering image and judges its realism in the worker. `mask` (one flag per
    /// pixel, `true` = excluded) and `beam_px` are the user's; `stage` hears each stage.
    pub async fn classify(
        &self,
        source: SegmentSource,
        mask: Option<&[bool]>,
        given: Given,
        stack: &Stack,
        stage: impl Fn(String) + 'static,
    ) -> Result<Classified, String> {
        let id = self.next_request_id();
        let (source, first) = source_buffer(source);
        let mut buffers = vec![first];
        if let Some(m) = mask {
            buffers.push(protocol::u8_buffer(
                &m.iter().map(|&b| u8::from(b)).collect::<Vec<_>>(),
            ));
        }
        for (_, bytes) in &stack.linked {
            buffers.push(protocol::u8_buffer(bytes));
        }
        let request = ToWorker::Classify {
            id,
            source,
            has_mask: mask.is_some(),
            beam_px: given.beam_px,
            setup: given.setup,
            geometry_from: given.from,
            frames: stack.frames,
            linked: stack.linked.iter().map(|(name, _)| name.clone()).collect(),
        };
        match self.request(id, &request, buffers, stage).await? {
            Reply::Classified(c) => Ok(c),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs the grain pipeline on an image in the worker. `stage` hears each stage as it starts.
    pub async fn segment(
        &self,
        source: SegmentSource,
        truth: Option<&[bool]>,
        stage: impl Fn(String) + 'static,
    ) -> Result<Segmented, String> {
        let id = self.next_request_id();
        let (source, first) = source_buffer(source);
        let mut buffers = vec![first];
        if let Some(t) = truth {
            buffers.push(protocol::u8_buffer(
                &t.iter().map(|&b| u8::from(b)).collect::<Vec<_>>(),
            ));
        }
        let request = ToWorker::Segment {
            id,
            source,
            has_truth: truth.is_some(),
        };
        match self.request(id, &request, buffers, stage).await? {
            Reply::Segmented(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Classifies with the realism ensemble in `weights` under the name `version` from now on,
    /// or with the shipped one again when `None`. The worker checks the file; on failure the
    /// ensemble in use stays.
    pub async fn use_realism(&self, change: Option<(&str, &[u8])>) -> Result<RealismInfo, String> {
        let id = self.next_request_id();
        let (version, buffers) = match change {
            Some((v, bytes)) => (Some(v.to_string()), vec![protocol::u8_buffer(bytes)]),
            None => (None, Vec::new()),
        };
        let request = ToWorker::UseRealism { id, version };
        match self.request(id, &request, buffers, |_| {}).await? {
            Reply::Realism(info) => {
                self.model_version.set(info.version.clone());
                Ok(info)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// UMAP of `points` embeddings of `dim` features (row-major `values`) in the worker.
    pub async fn project(
        &self,
        values: &[f32],
        points: usize,
        dim: usize,
    ) -> Result<Vec<[f32; 2]>, String> {
        let id = self.next_request_id();
        let request = ToWorker::Project { id, points, dim };
        let buffers = vec![protocol::f32_buffer(values)];
        match self.request(id, &request, buffers, |_| {}).await? {
            Reply::Projected(xy) => Ok(xy),
            other => Err(unexpected(&other)),
        }
    }
}

impl Compute {
    /// A fresh request id for [`Compute::diffuse`], so that the page can cancel it.
    pub fn reserve_id(&self) -> u64 {
        self.next_request_id()
    }

    /// Samples scattering images with the diffusion generator in the worker as request `id`
    /// (from [`Compute::reserve_id`]); `progress` hears every step. `Ok(None)`: cancelled.
    pub async fn diffuse(
        &self,
        id: u64,
        request: DiffuseRequest,
        progress: impl Fn(DiffusionProgress) + 'static,
    ) -> Result<Option<Diffused>, String> {
        let request = ToWorker::Diffuse { id, request };
        match self
            .request_with_progress(id, &request, Vec::new(), |_| {}, progress)
            .await?
        {
            Reply::Diffused(d) => Ok(Some(d)),
            Reply::Cancelled => Ok(None),
            other => Err(unexpected(&other)),
        }
    }

    /// Draws a micrograph for a mask with the TEM generator in the worker as request `id`
    /// (from [`Compute::reserve_id`]); `mask` is the mask file's bytes or the drawn mask's
    /// pixels (none for an engine mask); `progress` hears every step. `Ok(None)`: cancelled.
    pub async fn draw_micrograph(
        &self,
        id: u64,
        request: MicrographRequest,
        mask: Option<&[u8]>,
        progress: impl Fn(DiffusionProgress) + 'static,
    ) -> Result<Option<Micrograph>, String> {
        let buffers = mask.map(protocol::u8_buffer).into_iter().collect();
        let request = ToWorker::DrawMicrograph { id, request };
        match self
            .request_with_progress(id, &request, buffers, |_| {}, progress)
            .await?
        {
            Reply::Micrograph(m) => Ok(Some(m)),
            Reply::Cancelled => Ok(None),
            other => Err(unexpected(&other)),
        }
    }

    /// Asks the worker to stop request `id` after its current step (its `diffuse` then
    /// returns `Ok(None)`). Nothing happens if it has finished.
    pub fn cancel(&self, id: u64) {
        if let Some(worker) = &self.worker {
            let (message, transfer) = protocol::pack(&ToWorker::Cancel { id }, Vec::new());
            if let Err(e) = worker.post_message_with_transfer(&message, &transfer) {
                web_sys::console::error_1(&e);
            }
        }
    }
}

/// The protocol's description of a source and its buffer.
fn source_buffer(source: SegmentSource) -> (Source, js_sys::ArrayBuffer) {
    match source {
        SegmentSource::File(bytes) => (Source::File, protocol::u8_buffer(&bytes)),
        SegmentSource::Pixels(image) => (
            Source::Pixels {
                width: image.width(),
                height: image.height(),
            },
            protocol::f32_buffer(image.pixels()),
        ),
    }
}

/// Files by name, as the user dropped them.
pub type NamedFiles = Vec<(String, Rc<Vec<u8>>)>;

/// Which frames of an HDF5/NeXus stack to classify, and the files its external links name
/// (an Eiger master file's data files, by file name). Empty for single images.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    /// One frame, or a range summed.
    pub frames: imaging::load::Frames,
    /// Files given with it, by name.
    pub linked: NamedFiles,
}

/// What a classification is given instead of estimating it: the beam centre, the set-up for
/// the q axis, and the calibration file they come from (for saying so). `Default`: nothing.
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// Beam centre (column, row) in pixels.
    pub beam_px: Option<(f64, f64)>,
    /// Detector set-up for q.
    pub setup: Option<Setup>,
    /// A PONI file's name when the beam centre and set-up are its.
    pub from: Option<String>,
}

/// An image for [`Compute::segment`] or [`Compute::classify`].
#[derive(Clone)]
pub enum SegmentSource {
    /// Encoded file bytes, decoded in the worker.
    File(Rc<Vec<u8>>),
    /// Decoded grey pixels.
    Pixels(Rc<Image<f32>>),
}
