//! The compute worker: everything heavy runs here, off the page's thread, so the page never
//! freezes, however long a network call takes on the CPU.
//!
//! Built as its own binary (`src/bin/synthscope-worker.rs`, trunk `data-type="worker"`); the
//! page talks to it through [`crate::compute`] with the messages of [`crate::protocol`]. On
//! start it picks and probes the device ([`crate::runtime::detect`]) and reports it; then it
//! serves requests one at a time, in arrival order. The grain model is fetched (or read from
//! Cache Storage) with the first image and kept.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;
use futures::StreamExt;
use futures::channel::mpsc;
use imaging::Image;
use imaging::grains::label_grains;
use models::grain::{GrainInput, GrainModel, GrainRun};
use wasm_bindgen::prelude::*;

use crate::browser;
use crate::protocol::{self, FromWorker, ModelState, SegmentedHeader, Source, ToWorker};
use crate::runtime::{self, Status};
use crate::weights;

/// Regions smaller than this (pixels) are specks, not grains (as `synthscope segment`).
pub const MIN_GRAIN_PX: usize = 4;
/// Smallest image side the pipeline accepts.
pub const MIN_SIDE_PX: usize = 16;

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
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            match protocol::unpack::<ToWorker>(&ev.data()) {
                Ok(request) => {
                    let _ = tx.unbounded_send(request);
                }
                Err(e) => web_sys::console::error_1(&format!("synthscope worker: {e}").into()),
            }
        });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    wasm_bindgen_futures::spawn_local(serve(rx));
}

async fn serve(mut requests: mpsc::UnboundedReceiver<(ToWorker, Vec<js_sys::ArrayBuffer>)>) {
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
    while let Some((request, buffers)) = requests.next().await {
        match request {
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
                    None => Err(match &status {
                        Status::Failed(e) => format!("no ML runtime: {e}"),
                        _ => "no ML runtime".into(),
                    }),
                };
                if let Err(error) = result {
                    post(&FromWorker::Failed { id, error }, Vec::new());
                }
            }
        }
    }
}

/// The grain model, from the cache of this worker, Cache Storage or the network.
async fn load_model(
    device: &Device,
    cache: &RefCell<Option<Rc<GrainModel>>>,
) -> Result<Rc<GrainModel>, String> {
    if let Some(m) = cache.borrow().clone() {
        return Ok(m);
    }
    post(&FromWorker::Model(ModelState::Loading(0, None)), Vec::new());
    // One message per percent is plenty for a progress bar.
    let last_percent = RefCell::new(u64::MAX);
    let progress = |done: u64, total: Option<u64>| {
        let percent = total.map_or(done >> 16, |t| done * 100 / t.max(1));
        if last_percent.replace(percent) != percent {
            post(
                &FromWorker::Model(ModelState::Loading(done, total)),
                Vec::new(),
            );
        }
    };
    let loaded = weights::fetch_verified(weights::GRAIN_URL, weights::grain_sha256(), &progress)
        .await
        .and_then(|(bytes, source)| {
            GrainModel::from_bytes(&bytes, device)
                .map(|m| (Rc::new(m), source))
                .map_err(|e| e.to_string())
        });
    match loaded {
        Ok((m, source)) => {
            post(
                &FromWorker::Model(ModelState::Ready {
                    source,
                    net1_params: burn::module::Module::num_params(&m.net1),
                    net2_params: burn::module::Module::num_params(&m.net2),
                }),
                Vec::new(),
            );
            *cache.borrow_mut() = Some(m.clone());
            Ok(m)
        }
        Err(e) => {
            post(
                &FromWorker::Model(ModelState::Failed(e.clone())),
                Vec::new(),
            );
            Err(e)
        }
    }
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
    let mut stage_ms: Vec<(String, f64)> = Vec::new();
    let mut t = browser::now_ms();
    let mut lap = |name: &str, stage_ms: &mut Vec<(String, f64)>| {
        let now = browser::now_ms();
        stage_ms.push((name.to_string(), now - t));
        t = now;
    };
    let first = buffers
        .first()
        .ok_or("the request carried no image (a bug: please report it)")?;
    stage("decoding".into());
    let (image, notice) = match source {
        Source::File => {
            let loaded = imaging::load::load_gray(&protocol::bytes(first), MIN_SIDE_PX)
                .map_err(|e| e.to_string())?;
            (loaded.image.to_f32(), loaded.notice())
        }
        Source::Pixels { width, height } => (
            Image::from_vec(width, height, protocol::f32s(first)).map_err(|e| e.to_string())?,
            None,
        ),
    };
    let (w, h) = (image.width(), image.height());
    lap("decode", &mut stage_ms);
    stage("edge fusion (Sobel, LoG, Canny)".into());
    let (gray, edges, planes) = imaging::edges::grain_planes(&image);
    lap("edges", &mut stage_ms);
    stage("Net1: initial boundary guess".into());
    let input = GrainInput::new(&planes, w, h, model.multiple_px()).map_err(|e| e.to_string())?;
    let mut run = GrainRun::new(model, input, model.header.refine, device);
    let net1_probability = run.net1().await.map_err(|e| e.to_string())?;
    lap("net1", &mut stage_ms);
    while run.refining() {
        stage(format!("Net2: refinement iteration {}", run.iterations + 1));
        run.refine_step().await.map_err(|e| e.to_string())?;
    }
    let mask = run.mask().await.map_err(|e| e.to_string())?;
    lap("net2", &mut stage_ms);
    stage("measuring grains".into());
    let labels = label_grains(&mask, w, h, MIN_GRAIN_PX);
    lap("grains", &mut stage_ms);
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
        stage_ms,
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
