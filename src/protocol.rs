//! Messages between the page (UI thread) and the compute worker.
//!
//! Every message is a JS array: element 0 is the header, a JSON string of [`ToWorker`] or
//! [`FromWorker`]; the elements after it are the `ArrayBuffer`s the header names, in order,
//! transferred (not copied) with the message. Big pixel arrays travel as buffers, everything else
//! as JSON.

use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

use crate::runtime::Status;

/// A request from the page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    /// Segment one TEM image. Buffers: the source (file bytes, or `f32` pixels for
    /// [`Source::Pixels`]), then the ground truth as one byte per pixel when `has_truth`.
    Segment {
        /// Request id, echoed in every reply about it.
        id: u64,
        /// What the first buffer holds.
        source: Source,
        /// Whether a ground-truth boundary mask follows.
        has_truth: bool,
    },
    /// Tag a scattering image and judge its realism. Buffers: the source (as for `Segment`),
    /// then the user's mask as one byte per pixel (1 = excluded) when `has_mask`.
    Classify {
        /// Request id, echoed in every reply about it.
        id: u64,
        /// What the first buffer holds.
        source: Source,
        /// Whether a mask follows.
        has_mask: bool,
        /// Beam centre (column, row) in pixels; `None` estimates it.
        beam_px: Option<(f64, f64)>,
        /// Detector set-up for the q axis; `None` uses the reference set-up.
        setup: Option<Setup>,
        /// The calibration file the beam centre and set-up come from (a pyFAI PONI file), for
        /// saying so; `None`: the user's entries.
        #[serde(default)]
        geometry_from: Option<String>,
        /// Of an HDF5/NeXus stack: which frames (one, or a range summed).
        #[serde(default)]
        frames: imaging::load::Frames,
        /// Names of the buffers after the image (and mask): the files an HDF5 master file's
        /// external links name (its data files).
        #[serde(default)]
        linked: Vec<String>,
    },
    /// Classify with another realism ensemble from now on (a fine-tuned round of the
    /// human-in-the-loop loop). Buffer: the weights file, when `version` is given; `None` goes
    /// back to the shipped ensemble. Replied to by [`FromWorker::Realism`].
    UseRealism {
        /// Request id.
        id: u64,
        /// The version name predictions are stored under; `None`: the shipped weights.
        version: Option<String>,
    },
    /// Projects embeddings to 2-D with UMAP. Buffer: `points × dim` `f32`s, row-major.
    /// Replied to by [`FromWorker::Projected`].
    Project {
        /// Request id.
        id: u64,
        /// Number of points.
        points: usize,
        /// Features per point.
        dim: usize,
    },
    /// Samples scattering images with the diffusion generator. Answered by
    /// [`FromWorker::Diffusing`] after every step, then [`FromWorker::Diffused`] (or
    /// [`FromWorker::Cancelled`]).
    Diffuse {
        /// Request id.
        id: u64,
        /// What to draw.
        request: DiffuseRequest,
    },
    /// Draws a TEM micrograph for a boundary mask with the mask-conditioned generator.
    /// Buffer: the mask (a file for [`MaskSource::File`], one byte per pixel for
    /// [`MaskSource::Drawn`], none for [`MaskSource::Engine`]). Answered by
    /// [`FromWorker::Diffusing`] after every step, then [`FromWorker::Micrograph`] (or
    /// [`FromWorker::Cancelled`]).
    DrawMicrograph {
        /// Request id.
        id: u64,
        /// What to draw.
        request: MicrographRequest,
    },
    /// Stops request `id` (a `Diffuse` or `DrawMicrograph`) after its current step. Handled as it arrives, not
    /// queued behind the request it stops.
    Cancel {
        /// The request to stop.
        id: u64,
    },
}

/// What a [`ToWorker::Diffuse`] asks for: `count` images with indices `first_index…` of batch
/// `seed`, all with the same tags (image i is the CLI's `sample diffusion` image i for the same
/// settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffuseRequest {
    /// Requested tags (names of the 15 training tags).
    pub tags: Vec<String>,
    /// "dpm++", "ddim" or "ddpm".
    pub sampler: String,
    /// Denoising steps.
    pub steps: usize,
    /// Classifier-free guidance scale.
    pub guidance: f32,
    /// Guidance scale of the lattice-series plane (models that read it).
    pub lattice_guidance: f32,
    /// Batch seed.
    pub seed: u64,
    /// Index of the first image.
    pub first_index: u64,
    /// Images sampled together.
    pub count: usize,
    /// Side of the square detector, pixels.
    pub size_px: usize,
}

/// Where a [`ToWorker::DrawMicrograph`]'s boundary mask comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MaskSource {
    /// The engine's mask of image `index` of batch `seed` (496 × 96); the engine's own
    /// micrograph of it is the reference for PSNR and SSIM.
    Engine {
        /// Engine batch seed.
        seed: u64,
        /// Image index in the batch.
        index: u64,
    },
    /// A mask file (PNG or TIFF, white boundaries on black), decoded in the worker.
    File,
    /// A mask drawn on the page: one byte per pixel, non-zero on boundaries.
    Drawn {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
}

/// What a [`ToWorker::DrawMicrograph`] asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MicrographRequest {
    /// The condition.
    pub mask: MaskSource,
    /// Denoising steps (DPM-Solver++).
    pub steps: usize,
    /// Noise batch seed: the noise is `noise_seed(seed, index)`, as image `index` of
    /// `synthscope sample tem-diffusion --seed seed`.
    pub seed: u64,
    /// Index of the drawing in its batch.
    pub index: u64,
}

/// The scalar part of a finished [`ToWorker::DrawMicrograph`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MicrographHeader {
    /// Request id.
    pub id: u64,
    /// The generator's name (as `weights::TEM_DIFFUSION`).
    pub model: String,
    /// SHA-256 of its weights file.
    pub model_sha256: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// PSNR (dB, data range 255) and SSIM against the engine's own micrograph of the mask,
    /// when the mask is the engine's.
    pub psnr_db: Option<f64>,
    /// See `psnr_db`.
    pub ssim: Option<f64>,
    /// Wall time per stage in ms, in order.
    pub stage_ms: Vec<(String, f64)>,
}

/// The scalar part of a finished [`ToWorker::Diffuse`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiffusedHeader {
    /// Request id.
    pub id: u64,
    /// The generator's name (as `weights::DIFFUSION`).
    pub model: String,
    /// SHA-256 of its weights file.
    pub model_sha256: String,
    /// Detector side, pixels.
    pub size_px: usize,
    /// Rows (q) and columns (χ) of each polar image.
    pub polar_shape: (usize, usize),
    /// Each image's index in the batch and beam centre (pixels), in buffer order.
    pub images: Vec<(u64, (f64, f64))>,
    /// Each image's requested lattices (tag, first peak q₁ in Å⁻¹) as its lattice-series plane
    /// marked them, in buffer order (empty lists for a model without the plane).
    #[serde(default)]
    pub lattices: Vec<Vec<(String, f64)>>,
    /// Wall time per stage in ms, in order.
    pub stage_ms: Vec<(String, f64)>,
}

/// The model version of the shipped classifiers, as predictions are stored under it:
/// `weights::TAGGER.name + "+" + weights::REALISM.name` (the loop e2e test checks it).
pub const SHIPPED_MODEL: &str = "tagger-v12+realism-v2";

/// The realism ensemble the worker now classifies with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealismInfo {
    /// Request id.
    pub id: u64,
    /// Version name (tagger and realism file).
    pub version: String,
    /// Each member's name and voting weight.
    pub members: Vec<(String, f64)>,
    /// The vote's decision threshold.
    pub vote_threshold: f64,
    /// How the ensemble was trained (the file's note).
    pub trained: String,
}

/// The detector set-up that turns pixels into q.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// Pixel pitch in µm.
    pub pixel_size_um: f64,
    /// Sample–detector distance in m.
    pub distance_m: f64,
    /// Photon energy in keV.
    pub energy_kev: f64,
}

/// What a [`ToWorker::Segment`] source buffer holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum Source {
    /// An encoded image file (PNG, TIFF, JPEG), decoded in the worker.
    File,
    /// Row-major `f32` grey pixels.
    Pixels {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
}

/// Where loaded weights came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightsSource {
    /// Cache Storage (no network).
    Cache,
    /// Downloaded now (and cached).
    Network,
}

/// The state of a model's weights in the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelState {
    /// Not needed yet: loaded with the first image.
    NotLoaded,
    /// Downloading: bytes so far, total when known.
    Loading(u64, Option<u64>),
    /// Loaded and verified.
    Ready {
        /// Cache or network.
        source: WeightsSource,
        /// Parameter count of each network, by name.
        parts: Vec<(String, usize)>,
    },
    /// Could not be loaded; the message says why.
    Failed(String),
}

/// A reply or notification from the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    /// The device check finished (sent once, at start).
    Runtime(Status),
    /// The grain model's state changed.
    Model(ModelState),
    /// Request `id` entered a new stage.
    Stage {
        /// Request id.
        id: u64,
        /// Human-readable stage.
        text: String,
    },
    /// Request `id` finished. Buffers: grey image (`f32`), edge map (RGBA `u8`), Net1
    /// probability (`f32`), refined mask (`u8` 0/1), grain ids (`u32`, 0 on boundaries).
    Segmented(SegmentedHeader),
    /// The classifiers' weights (tagger and realism ensemble) changed state.
    Classifiers(ModelState),
    /// Request `id` (a `Classify`) finished. Buffers: the image as log10(1 + counts) (`f32`,
    /// NaN where invalid), the mask used (`u8` 0/1). Boxed: it is the largest message by far.
    Classified(Box<ClassifiedHeader>),
    /// Request `id` (a `UseRealism`) finished: the ensemble now in use.
    Realism(RealismInfo),
    /// Request `id` (a `Project`) finished. Buffer: `points × 2` `f32`s (x, y).
    Projected {
        /// Request id.
        id: u64,
        /// Number of points.
        points: usize,
    },
    /// The diffusion generator's weights changed state.
    Generator(ModelState),
    /// Request `id` (a `Diffuse` or `DrawMicrograph`) took step `done` of `total`. Buffer: the
    /// current estimate of the clean image of its first image, `shape.0 × shape.1` `f32`s
    /// row-major, values in [−1, 1] (a polar image, `q × χ`; or a micrograph, `height × width`).
    Diffusing {
        /// Request id.
        id: u64,
        /// Steps taken.
        done: usize,
        /// Steps in all.
        total: usize,
        /// Rows and columns of the estimate.
        shape: (usize, usize),
    },
    /// Request `id` (a `Diffuse`) finished. Buffers per image, in header order: detector
    /// counts (`u32`, `size_px²`), the sample's polar image (`f32`, `q × χ`).
    Diffused(DiffusedHeader),
    /// The TEM generator's weights changed state.
    TemGenerator(ModelState),
    /// Request `id` (a `DrawMicrograph`) finished. Buffers: the micrograph (`u8` grey), the
    /// mask it was drawn for (`u8` 0/1), and the engine's micrograph (`u8`) when the header
    /// has a PSNR.
    Micrograph(MicrographHeader),
    /// Request `id` was stopped by a [`ToWorker::Cancel`].
    Cancelled {
        /// Request id.
        id: u64,
    },
    /// Request `id` failed; the message is for the user.
    Failed {
        /// Request id.
        id: u64,
        /// What went wrong and what to do.
        error: String,
    },
}

/// The scalar part of a finished segmentation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentedHeader {
    /// Request id.
    pub id: u64,
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Number of grains in the id map.
    pub grain_count: usize,
    /// Net2 iterations run.
    pub iterations: usize,
    /// Whether refinement converged before the cap.
    pub converged: bool,
    /// A notice about the input (colour converted to grey).
    pub notice: Option<String>,
    /// Wall time per stage in ms, in order.
    pub stage_ms: Vec<(String, f64)>,
    /// Boundary F1 against the ground truth, when one came with the image.
    pub truth_f1: Option<f64>,
}

/// A 1-D profile for plotting: only bins with a finite mean (JSON has no NaN, so empty bins
/// are left out rather than sent).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Curve {
    /// Bin centres.
    pub x: Vec<f64>,
    /// Mean intensity.
    pub y: Vec<f64>,
    /// Standard error; `None` with fewer than two pixels in the bin.
    pub sigma: Vec<Option<f64>>,
}

impl Curve {
    /// The bins of `profile` that have a finite mean.
    pub fn of(profile: &imaging::scattering::Profile) -> Self {
        let mut c = Curve::default();
        for ((&x, &y), &s) in profile.x.iter().zip(&profile.intensity).zip(&profile.sigma) {
            if x.is_finite() && y.is_finite() {
                c.x.push(x);
                c.y.push(y);
                c.sigma.push(s.is_finite().then_some(s));
            }
        }
        c
    }
}

/// One realism member's vote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vote {
    /// Member family.
    pub name: String,
    /// Its probability that the image is realistic.
    pub probability: f32,
    /// Its soft-voting weight.
    pub weight: f64,
    /// Its decision threshold: above it, the member calls the image realistic.
    pub threshold: f64,
}

/// The scalar part of a finished classification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifiedHeader {
    /// Request id.
    pub id: u64,
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// A notice about the input (colour converted to grey).
    pub notice: Option<String>,
    /// Beam centre used, in pixels.
    pub beam_px: (f64, f64),
    /// "given", "file header", "estimated" or "image centre".
    pub beam_source: String,
    /// For an estimated centre: the fraction of variance its rings explain.
    pub beam_explained: Option<f64>,
    /// The centre should be checked by eye ([`imaging::scattering::BeamSource::doubtful`]).
    pub beam_doubtful: bool,
    /// Tag names and probabilities, most probable first.
    pub tags: Vec<(String, f32)>,
    /// Why the file is not a plausible detector frame (`imaging::plausibility`); then its
    /// realism is not judged. `None` for a plausible frame.
    #[serde(default)]
    pub implausible: Option<String>,
    /// When the realism ensemble's pattern gate stopped the frame: its probability that the
    /// frame is a scattering pattern at all, and the gate's threshold. Then its realism is not
    /// judged.
    #[serde(default)]
    pub no_pattern: Option<(f32, f64)>,
    /// The ensemble's weighted soft vote that the image is realistic.
    pub realism_score: f64,
    /// The vote is above the ensemble's decision threshold.
    pub realistic: bool,
    /// That threshold.
    pub vote_threshold: f64,
    /// Each member's vote.
    pub votes: Vec<Vote>,
    /// Azimuthally averaged I(q), q in Å⁻¹, log-spaced bins.
    pub iq: Curve,
    /// I(χ) over the whole q range, χ in degrees.
    pub ichi: Curve,
    /// Set-up used for q.
    pub setup: Setup,
    /// Where it came from: "your entries", "the file header" or "the engine's reference
    /// set-up".
    pub setup_source: String,
    /// Wall time per stage in ms, in order.
    pub stage_ms: Vec<(String, f64)>,
    /// For a stack of frames (HDF5/NeXus): how many it has and which were classified.
    #[serde(default)]
    pub stack: Option<Box<imaging::load::StackRead>>,
    /// The model version that classified it ([`SHIPPED_MODEL`] or an imported round).
    pub model: String,
    /// The realism ensemble's embedding of the image, for the latent-space view.
    pub embedding: Vec<f32>,
}

impl ClassifiedHeader {
    /// Why the realism ensemble did not judge the frame (not a plausible detector frame, or no
    /// scattering pattern by its gate); `None` when it did.
    pub fn not_judged(&self) -> Option<String> {
        if let Some(why) = &self.implausible {
            return Some(format!("not a plausible detector frame ({why})"));
        }
        self.no_pattern.map(|(p, threshold)| {
            format!(
                "no scattering pattern: the ensemble's gate gives {p:.2}, below its threshold {threshold:.2}"
            )
        })
    }
}

/// Packs a header and its buffers into `(message, transfer list)`.
pub fn pack<T: Serialize>(
    header: &T,
    buffers: Vec<js_sys::ArrayBuffer>,
) -> (js_sys::Array, js_sys::Array) {
    let message = js_sys::Array::new();
    let transfer = js_sys::Array::new();
    // Serialising these plain enums cannot fail; an empty header is rejected on arrival.
    message.push(&JsValue::from_str(
        &serde_json::to_string(header).unwrap_or_default(),
    ));
    for b in buffers {
        message.push(&b);
        transfer.push(&b);
    }
    (message, transfer)
}

/// Splits a received message into its header and buffers.
pub fn unpack<T: serde::de::DeserializeOwned>(
    data: &JsValue,
) -> Result<(T, Vec<js_sys::ArrayBuffer>), String> {
    let array = data
        .dyn_ref::<js_sys::Array>()
        .ok_or("a worker message is not an array")?;
    let header = array
        .get(0)
        .as_string()
        .ok_or("a worker message has no header")?;
    let header = serde_json::from_str(&header).map_err(|e| format!("bad worker message: {e}"))?;
    let buffers = (1..array.length())
        .map(|i| {
            array
                .get(i)
                .dyn_into::<js_sys::ArrayBuffer>()
                .map_err(|_| format!("worker message element {i} is not an ArrayBuffer"))
        })
        .collect::<Result<_, _>>()?;
    Ok((header, buffers))
}

/// Copies `f32`s into a new `ArrayBuffer`.
pub fn f32_buffer(values: &[f32]) -> js_sys::ArrayBuffer {
    js_sys::Float32Array::from(values).buffer()
}

/// Copies `u32`s into a new `ArrayBuffer`.
pub fn u32_buffer(values: &[u32]) -> js_sys::ArrayBuffer {
    js_sys::Uint32Array::from(values).buffer()
}

/// Copies bytes into a new `ArrayBuffer`.
pub fn u8_buffer(values: &[u8]) -> js_sys::ArrayBuffer {
    js_sys::Uint8Array::from(values).buffer()
}

/// The `f32`s of a buffer.
pub fn f32s(buffer: &js_sys::ArrayBuffer) -> Vec<f32> {
    js_sys::Float32Array::new(buffer).to_vec()
}

/// The `u32`s of a buffer.
pub fn u32s(buffer: &js_sys::ArrayBuffer) -> Vec<u32> {
    js_sys::Uint32Array::new(buffer).to_vec()
}

/// The bytes of a buffer.
pub fn bytes(buffer: &js_sys::ArrayBuffer) -> Vec<u8> {
    js_sys::Uint8Array::new(buffer).to_vec()
}
