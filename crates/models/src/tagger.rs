//! Multi-label taggers of X-ray scattering images (seed 003): an image CNN, a network on the
//! Fourier–Bessel coefficients, and the joint double-view network that reads both.
//!
//! # Inputs
//! - image view: `[batch, 1, 256, 256]`, the detector image resampled to 256 × 256 and scaled as
//!   in the reference work, ln(1 + I) / ln(65 536) clipped to [0, 1], masked pixels 0
//!   (`imaging::scattering::tagger_input`);
//! - coefficient view: `[batch, 2693]` ([`COEFF_FEATURES`]), the 880 Fourier–Bessel features of
//!   that 256 × 256 input around the beam centre (`imaging::scattering::fourier_bessel`)
//!   followed by 576 ring statistics around it (`imaging::scattering::rings`: radial profile,
//!   contrast, coverage, angular harmonics), 302 ring features (`imaging::scattering::peaks`:
//!   the strongest rings' own harmonics, ratios of ring radii, the far profile), 28 fold scores
//!   of the strongest rings (how alike a ring is to itself turned by 360°/n) and 907 of the
//!   outer view (the same statistics in bins wide enough to reach the farthest pixel). The
//!   network reads the 440 moduli |cₙₘ| (invariant to the pattern's orientation), the ring
//!   statistics, the ring features and the fold scores; networks trained before November 2026
//!   also read the raw (re, im) pairs ([`TaggerConfig::coeff_raw_fb`]), those before December
//!   2026 not the ring features ([`TaggerConfig::coeff_peaks`]), tagger-v2 and older not the
//!   fold scores ([`TaggerConfig::coeff_folds`]), tagger-v7 and older not the outer view
//!   ([`TaggerConfig::coeff_outer`]).
//!
//! # Outputs
//! Logits `[batch, 15]` over the tags of `synth::scattering::TRAINING_TAGS`, in that order
//! (sigmoid gives independent probabilities).
//!
//! One [`Tagger`] type serves all three views: the image view has only the CNN branch, the
//! coefficient view only the coefficient branch, the joint view both, their embeddings
//! concatenated and fused before the head.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::weights::{self, WeightsError};

/// Outputs: the 15-label training set of `DOMAIN.md` §1, in the order of
/// `synth::scattering::TRAINING_TAGS` (which owns the names).
pub const TAG_COUNT: usize = 15;
/// Side of the image view in pixels.
pub const IMAGE_SIDE_PX: usize = 256;
/// Fourier–Bessel features at the start of the coefficient view (n ≤ 40, m = 0…10, re and im).
pub const FB_FEATURES: usize = 880;
/// Ring statistics after them (`imaging::scattering::rings`: radial profile, its contrast and
/// coverage, angular harmonics per band).
pub const RING_FEATURES: usize = 576;
/// Ring features after those (`imaging::scattering::peaks`: each strong ring's own angular
/// harmonics, ratio histograms of ring radii, the far profile).
pub const PEAK_FEATURES: usize = 302;
/// Fold scores after those (`imaging::scattering::peaks::FOLD_FEATURES`: per strong ring its
/// modulation depth and its self-similarity turned by 360°/n for n = 2, 4, …, 12).
pub const FOLD_FEATURES: usize = 28;
/// The outer view after those (`imaging::scattering::input`: ln of the radial bin width, then
/// the ring statistics, ring features and fold scores again in bins wide enough to reach the
/// farthest pixel from the beam).
pub const OUTER_FEATURES: usize = 1 + RING_FEATURES + PEAK_FEATURES + FOLD_FEATURES;
/// Length of the coefficient view.
pub const COEFF_FEATURES: usize =
    FB_FEATURES + RING_FEATURES + PEAK_FEATURES + FOLD_FEATURES + OUTER_FEATURES;

/// Which inputs a tagger reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// The image CNN alone.
    Image,
    /// The Fourier–Bessel coefficient network alone.
    Coeff,
    /// Both, fused.
    Joint,
}

impl View {
    /// All views, in report order.
    pub const ALL: [View; 3] = [View::Image, View::Coeff, View::Joint];

    /// Stable name used in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            View::Image => "image",
            View::Coeff => "coeff",
            View::Joint => "joint",
        }
    }

    fn has_image(self) -> bool {
        matches!(self, View::Image | View::Joint)
    }

    fn has_coeff(self) -> bool {
        matches!(self, View::Coeff | View::Joint)
    }
}

/// Shape of a [`Tagger`].
#[derive(Config, Debug, PartialEq)]
pub struct TaggerConfig {
    /// Which inputs it reads.
    pub view: View,
    /// Channels after the stem of the image CNN; doubled at each of the 4 stages (capped at 8×).
    #[config(default = 16)]
    pub image_channels: usize,
    /// Hidden width of the coefficient network.
    #[config(default = 256)]
    pub coeff_hidden: usize,
    /// Width of each branch's embedding.
    #[config(default = 128)]
    pub embedding: usize,
    /// Whether the coefficient network reads the raw (re, im) Fourier–Bessel features besides
    /// their moduli and the ring statistics (ignored without a coefficient branch). The raw
    /// features depend on the pattern's orientation and make the network memorise: on 500
    /// held-out images a perceptron reached mAP 0.65 with them and 0.71 without. Files from
    /// before this option have it on.
    #[config(default = true)]
    pub coeff_raw_fb: bool,
    /// Whether the coefficient network reads the ring features (`imaging::scattering::peaks`)
    /// after the ring statistics. Files from before this option do not.
    #[config(default = true)]
    pub coeff_peaks: bool,
    /// Whether the coefficient network reads the fold scores after the ring features (only
    /// with `coeff_peaks`). Files from before this option (tagger-v2 and older) do not.
    #[config(default = true)]
    pub coeff_folds: bool,
    /// Whether the coefficient network reads the outer view after the fold scores (only with
    /// `coeff_folds`): rings out to the farthest pixel from the beam. Files from before this
    /// option (tagger-v7 and older) do not.
    #[config(default = true)]
    pub coeff_outer: bool,
}

impl crate::weights::Shape for TaggerConfig {
    /// The image CNN has a 3 × 3 convolution of its channels onto themselves; the coefficient
    /// network a hidden layer of `coeff_hidden` from at least one input; every branch an
    /// embedding of `embedding` from at least one input.
    fn min_parameters(&self) -> usize {
        let image = if self.view.has_image() {
            self.image_channels
                .saturating_mul(self.image_channels)
                .saturating_mul(9)
        } else {
            0
        };
        let coeff = if self.view.has_coeff() {
            self.coeff_hidden
        } else {
            0
        };
        image.saturating_add(coeff).saturating_add(self.embedding)
    }

    fn check(&self) -> Result<(), String> {
        let c = self.image_channels;
        let widths_fit = [c, 2 * c, 4 * c, 8 * c]
            .into_iter()
            .all(crate::weights::group_norm_fits);
        if self.embedding == 0
            || (self.view.has_image() && !widths_fit)
            || (self.view.has_coeff() && self.coeff_hidden == 0)
        {
            return Err(format!(
                "a tagger of {c} image channels, {} hidden, embedding {}",
                self.coeff_hidden, self.embedding
            ));
        }
        Ok(())
    }
}

impl TaggerConfig {
    /// Builds the network with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Tagger {
        let e = self.embedding;
        let image = self.view.has_image().then(|| {
            let c = self.image_channels;
            let widths = [c, 2 * c, 4 * c, 8 * c, 8 * c];
            ImageCnn {
                // 5×5 stride 2 then a 2×2 max pool: 256² → 64² before any wide layer. Max
                // pooling keeps one-pixel-wide rings and spots.
                stem: Conv2dConfig::new([1, c], [5, 5])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                    .init(device),
                stem_norm: GroupNormConfig::new((c / 8).max(1), c).init(device),
                stages: (0..4)
                    .map(|s| NormBlock::new(widths[s], widths[s + 1], device))
                    .collect(),
                pool: MaxPool2dConfig::new([2, 2]).init(),
                // Global average and max pooling, concatenated.
                embed: LinearConfig::new(2 * widths[4], e).init(device),
            }
        });
        let coeff = self.view.has_coeff().then(|| CoeffNet {
            // [The 880 Fourier–Bessel features,] their 440 moduli and the ring statistics.
            hidden: LinearConfig::new(
                coeff_input_width(CoeffLayout {
                    raw_fb: self.coeff_raw_fb,
                    peaks: self.coeff_peaks,
                    folds: self.coeff_folds,
                    outer: self.coeff_outer,
                }),
                self.coeff_hidden,
            )
            .init(device),
            hidden2: LinearConfig::new(self.coeff_hidden, self.coeff_hidden).init(device),
            embed: LinearConfig::new(self.coeff_hidden, e).init(device),
        });
        let branches = usize::from(image.is_some()) + usize::from(coeff.is_some());
        Tagger {
            image,
            coeff,
            fuse: LinearConfig::new(branches * e, e).init(device),
            head: LinearConfig::new(e, TAG_COUNT).init(device),
        }
    }
}

/// Two 3×3 convolutions, each followed by group normalisation and a ReLU. Without the
/// normalisation the CNN learned nothing beyond the tag priors on detector images (whose log
/// intensities sit on a large, image-dependent offset).
#[derive(Module, Debug)]
pub struct NormBlock {
    conv1: Conv2d,
    norm1: GroupNorm,
    conv2: Conv2d,
    norm2: GroupNorm,
}

impl NormBlock {
    pub(crate) fn new(i: usize, o: usize, device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        let groups = (o / 8).max(1);
        Self {
            conv1: conv(i, o),
            norm1: GroupNormConfig::new(groups, o).init(device),
            conv2: conv(o, o),
            norm2: GroupNormConfig::new(groups, o).init(device),
        }
    }

    /// `[b, i, h, w]` → `[b, o, h, w]`.
    pub(crate) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.norm1.forward(self.conv1.forward(x)));
        relu(self.norm2.forward(self.conv2.forward(x)))
    }
}

/// The image branch: a strided, normalised stem, four conv stages with max pooling between
/// them, global pooling.
#[derive(Module, Debug)]
pub struct ImageCnn {
    stem: Conv2d,
    stem_norm: GroupNorm,
    stages: Vec<NormBlock>,
    pool: MaxPool2d,
    embed: Linear,
}

impl ImageCnn {
    /// `[b, 1, 256, 256]` → `[b, embedding]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        // [b, 1, 256, 256] → [b, c, 64, 64]
        let mut x = self
            .pool
            .forward(relu(self.stem_norm.forward(self.stem.forward(x))));
        // → [b, 2c, 64, 64] → [b, 4c, 32, 32] → [b, 8c, 16, 16] → [b, 8c, 8, 8]
        for (s, stage) in self.stages.iter().enumerate() {
            x = stage.forward(x);
            if s + 1 < self.stages.len() {
                x = self.pool.forward(x);
            }
        }
        // [b, 8c, 8, 8] → [b, 8c] twice.
        let [b, c, _, _] = x.dims();
        let mean = x.clone().mean_dim(3).mean_dim(2).reshape([b, c]);
        let max = x.max_dim(3).max_dim(2).reshape([b, c]);
        relu(self.embed.forward(Tensor::cat(vec![mean, max], 1)))
    }
}

/// The coefficient branch: a perceptron on the moduli of the Fourier–Bessel coefficients and the
/// ring statistics (and, in older files, the raw coefficients too).
///
/// The phase of cₙₘ turns with the pattern (a rotation by θ multiplies it by e^{imθ}) and a
/// mirror conjugates it, so a perceptron on (re, im) has to learn that orientation does not
/// matter from augmented examples; |cₙₘ| is invariant to both and is computed up front.
#[derive(Module, Debug)]
pub struct CoeffNet {
    hidden: Linear,
    hidden2: Linear,
    embed: Linear,
}

/// Which parts of the coefficient view a coefficient network reads (besides the Fourier–Bessel
/// moduli and the ring statistics, which every one reads). Each part comes only with the one
/// before it: fold scores with ring features, the outer view with fold scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CoeffLayout {
    raw_fb: bool,
    peaks: bool,
    folds: bool,
    outer: bool,
}

impl CoeffLayout {
    /// Length of the view's prefix after the Fourier–Bessel features that this layout reads.
    fn rings_width(self) -> usize {
        let folds = self.peaks && self.folds;
        RING_FEATURES
            + usize::from(self.peaks) * PEAK_FEATURES
            + usize::from(folds) * FOLD_FEATURES
            + usize::from(folds && self.outer) * OUTER_FEATURES
    }
}

/// Width of the coefficient network's input: [(880 +) 440 + 576 (+ 302 (+ 28 (+ 907)))] (the
/// widths differ, so a network's first layer says which inputs it reads).
fn coeff_input_width(layout: CoeffLayout) -> usize {
    usize::from(layout.raw_fb) * FB_FEATURES + FB_FEATURES / 2 + layout.rings_width()
}

/// The layout a first layer of `width` inputs reads; `None` for a width no layout has.
fn coeff_layout(width: usize) -> Option<CoeffLayout> {
    let parts = [
        (false, false, false),
        (true, false, false),
        (true, true, false),
        (true, true, true),
    ];
    [false, true].into_iter().find_map(|raw_fb| {
        parts
            .into_iter()
            .map(|(peaks, folds, outer)| CoeffLayout {
                raw_fb,
                peaks,
                folds,
                outer,
            })
            .find(|&l| coeff_input_width(l) == width)
    })
}

impl CoeffNet {
    /// `[b, 2693]` (880 Fourier–Bessel features, 576 ring statistics, 302 ring features, 28
    /// fold scores, 907 of the outer view) → `[b, embedding]`.
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let fb = x.clone().narrow(1, 0, FB_FEATURES);
        // A loaded file's first layer has one of the layouts' widths (checked when it loads).
        let layout = coeff_layout(self.hidden.weight.dims()[0]).unwrap_or(CoeffLayout {
            raw_fb: false,
            peaks: true,
            folds: true,
            outer: true,
        });
        let rings = x.narrow(1, FB_FEATURES, layout.rings_width());
        let moduli = compressed_moduli(fb.clone());
        let input = if layout.raw_fb {
            Tensor::cat(vec![fb, moduli, rings], 1)
        } else {
            Tensor::cat(vec![moduli, rings], 1)
        };
        let h = relu(self.hidden.forward(input));
        let h = relu(self.hidden2.forward(h));
        relu(self.embed.forward(h))
    }
}

/// `[b, 2k]` signed-log-compressed (re, im) pairs → `[b, k]` moduli compressed the same way:
/// the compression ln(1 + g|x|) is undone, the modulus taken, and compressed again.
fn compressed_moduli(x: Tensor<2>) -> Tensor<2> {
    let [b, features] = x.dims();
    let linear = x.clone().sign() * x.abs().exp().sub_scalar(1.0);
    let modulus = linear
        .reshape([b, features / 2, 2])
        .powf_scalar(2.0)
        .sum_dim(2)
        .sqrt()
        .reshape([b, features / 2]);
    modulus.add_scalar(1.0).log()
}

/// A tagger of one [`View`]. Built by [`TaggerConfig::init`].
#[derive(Module, Debug)]
pub struct Tagger {
    image: Option<ImageCnn>,
    coeff: Option<CoeffNet>,
    fuse: Linear,
    head: Linear,
}

impl Tagger {
    /// This tagger with its image and coefficient branches (where it has them) replaced by
    /// those of trained single-view taggers of the same widths: the joint view then starts
    /// from what each view has learned and only has to learn how to combine them.
    pub fn with_branches_of(mut self, image: &Tagger, coeff: &Tagger) -> Self {
        if self.image.is_some() && image.image.is_some() {
            self.image = image.image.clone();
        }
        if self.coeff.is_some() && coeff.coeff.is_some() {
            self.coeff = coeff.coeff.clone();
        }
        self
    }

    /// This joint tagger made to predict exactly what the coefficient view `coeff` predicts:
    /// its fusion reads the coefficient embedding through `coeff`'s fusion weights and the
    /// image embedding through zeros, and its head is `coeff`'s. Trained on from there (with
    /// its coefficient branch taken from `coeff` too), the joint view starts at the
    /// coefficient view's accuracy and learns only what the image branch adds, instead of
    /// relearning the fusion from random weights. Unchanged when the widths do not fit or
    /// this is not a joint tagger.
    pub fn with_fusion_of(mut self, coeff: &Tagger) -> Self {
        let single_coeff = coeff.image.is_none() && coeff.coeff.is_some();
        if self.image.is_none() || self.coeff.is_none() || !single_coeff {
            return self;
        }
        // Linear weights are [d_input, d_output]; the joint input is [image ‖ coeff].
        let coeff_fuse = coeff.fuse.weight.val().detach();
        let [coeff_in, width] = coeff_fuse.dims();
        let [joint_in, joint_width] = self.fuse.weight.dims();
        if joint_width != width
            || joint_in <= coeff_in
            || self.head.weight.dims() != coeff.head.weight.dims()
        {
            return self;
        }
        let image_rows = Tensor::zeros([joint_in - coeff_in, width], &coeff_fuse.device());
        // Detached again: on an autodiff device the joined tensor is not a leaf, and a
        // parameter must be one.
        let joined = Tensor::cat(vec![image_rows, coeff_fuse], 0).detach();
        self.fuse.weight = Param::from_tensor(joined);
        self.fuse.bias = coeff
            .fuse
            .bias
            .as_ref()
            .map(|b| Param::from_tensor(b.val().detach()));
        self.head.weight = Param::from_tensor(coeff.head.weight.val().detach());
        self.head.bias = coeff
            .head
            .bias
            .as_ref()
            .map(|b| Param::from_tensor(b.val().detach()));
        self
    }

    /// This tagger's coefficient branch widened to read the outer view too, the weights of the
    /// new inputs zero: it predicts exactly what it did, and trained on from there it learns
    /// only what the outer view adds (`train tagger --init` of a tagger-v7 coefficient
    /// network). Unchanged when the branch reads the outer view already, lacks the fold scores
    /// it comes after, or there is no coefficient branch.
    pub fn with_outer_view_added(mut self) -> Self {
        let Some(coeff) = self.coeff.as_mut() else {
            return self;
        };
        let weight = coeff.hidden.weight.val().detach();
        let [width, hidden] = weight.dims();
        let Some(layout) = coeff_layout(width) else {
            return self;
        };
        if layout.outer || !(layout.peaks && layout.folds) {
            return self;
        }
        // Linear weights are [d_input, d_output]; the outer view is the last input.
        let rows = Tensor::zeros([OUTER_FEATURES, hidden], &weight.device());
        coeff.hidden.weight = Param::from_tensor(Tensor::cat(vec![weight, rows], 0).detach());
        self
    }

    /// This tagger with its coefficient branch taking no gradients: trained on, only the image
    /// branch and the fusion learn (the joint view on top of a coefficient network that would
    /// otherwise go on memorising its training set).
    pub fn with_coeff_branch_frozen(mut self) -> Self {
        self.coeff = self.coeff.map(Module::no_grad);
        self
    }

    /// Tag logits.
    ///
    /// # Shapes
    /// - `image`: `[b, 1, 256, 256]` (ignored by the coefficient view)
    /// - `coeff`: `[b, 2693]` (ignored by the image view)
    /// - output: `[b, 15]`
    ///
    /// # Panics
    /// If the input a branch needs is `None` (a bug in the caller).
    pub fn forward(&self, image: Option<Tensor<4>>, coeff: Option<Tensor<2>>) -> Tensor<2> {
        let embedding = self.image_embedding(image);
        self.forward_embedded(embedding, coeff)
    }

    /// The image branch's embedding `[b, embedding]` of `image` `[b, 1, 256, 256]`; `None`
    /// for the coefficient view.
    ///
    /// # Panics
    /// If this tagger has an image branch and `image` is `None` (a bug in the caller).
    pub fn image_embedding(&self, image: Option<Tensor<4>>) -> Option<Tensor<2>> {
        self.image
            .as_ref()
            .map(|cnn| cnn.forward(image.expect("the image view needs the image input")))
    }

    /// Tag logits `[b, 15]` from the image branch's embedding (computed earlier by
    /// [`Tagger::image_embedding`], for example once for a frozen branch) and the coefficient
    /// view `[b, 2693]`.
    ///
    /// # Panics
    /// If an input a branch needs is `None` (a bug in the caller).
    pub fn forward_embedded(
        &self,
        image_embedding: Option<Tensor<2>>,
        coeff: Option<Tensor<2>>,
    ) -> Tensor<2> {
        let mut parts = Vec::with_capacity(2);
        if self.image.is_some() {
            parts.push(image_embedding.expect("the image view needs the image embedding"));
        }
        if let Some(net) = &self.coeff {
            parts.push(net.forward(coeff.expect("the coefficient view needs the coefficients")));
        }
        let joined = if parts.len() == 1 {
            parts.remove(0)
        } else {
            Tensor::cat(parts, 1)
        };
        self.head.forward(relu(self.fuse.forward(joined)))
    }
}

/// What a taggers file records besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaggerHeader {
    /// The networks in the file, in order.
    #[serde(deserialize_with = "configs_of_any_version")]
    pub configs: Vec<TaggerConfig>,
    /// Tag names in output order.
    pub tags: Vec<String>,
    /// Side of the image view in pixels.
    pub image_side_px: usize,
    /// Free text: how the weights were trained.
    pub trained: String,
    /// Bytes of each network's burnpack record, in order.
    pub record_bytes: Vec<usize>,
}

/// The configs of a header, filling in what older files lack (burn's `Config` derive gives
/// serde no defaults): `coeff_raw_fb` was added later and older networks read the raw features.
fn configs_of_any_version<'de, D>(d: D) -> Result<Vec<TaggerConfig>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let mut values: Vec<serde_json::Value> = Deserialize::deserialize(d)?;
    for v in &mut values {
        if let Some(fields) = v.as_object_mut() {
            fields
                .entry("coeff_raw_fb")
                .or_insert(serde_json::Value::Bool(true));
            // An image view has no coefficient branch: it keeps the default, so that the image
            // view of an older file can be kept next to a newer coefficient view.
            let image_only = fields.get("view").and_then(|v| v.as_str()) == Some("image");
            fields
                .entry("coeff_peaks")
                .or_insert(serde_json::Value::Bool(image_only));
            fields
                .entry("coeff_folds")
                .or_insert(serde_json::Value::Bool(image_only));
            fields
                .entry("coeff_outer")
                .or_insert(serde_json::Value::Bool(image_only));
        }
    }
    values
        .into_iter()
        .map(|v| serde_json::from_value(v).map_err(serde::de::Error::custom))
        .collect()
}

impl weights::SetHeader for TaggerHeader {
    fn networks(&self) -> usize {
        self.configs.len()
    }
    fn record_lengths(&self) -> &[usize] {
        &self.record_bytes
    }
    fn set_record_lengths(&mut self, lengths: Vec<usize>) {
        self.record_bytes = lengths;
    }
}

/// The taggers of one or more views, as trained together.
#[derive(Debug, Clone)]
pub struct TaggerSet {
    /// The networks, in the order of `header.configs`.
    pub nets: Vec<Tagger>,
    /// Shapes and provenance.
    pub header: TaggerHeader,
}

const MAGIC: &[u8; 8] = b"SSTAGGR1";

impl TaggerSet {
    /// Fresh, untrained networks of the given shapes.
    pub fn init(configs: Vec<TaggerConfig>, tags: Vec<String>, device: &Device) -> Self {
        Self {
            nets: configs.iter().map(|c| c.init(device)).collect(),
            header: TaggerHeader {
                configs,
                tags,
                image_side_px: IMAGE_SIDE_PX,
                trained: String::new(),
                record_bytes: Vec::new(),
            },
        }
    }

    /// The network of `view`, if the file has one.
    pub fn get(&self, view: View) -> Option<&Tagger> {
        self.header
            .configs
            .iter()
            .position(|c| c.view == view)
            .map(|i| &self.nets[i])
    }

    /// Serialises the set (layout of [`crate::weights`], magic `SSTAGGR1`).
    pub fn to_bytes(&self) -> Result<Vec<u8>, WeightsError> {
        weights::write_set(MAGIC, &self.header, &self.nets)
    }

    /// Reads a set written by [`TaggerSet::to_bytes`] onto `device`.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self, WeightsError> {
        let (header, parts): (TaggerHeader, _) = weights::read_set(MAGIC, bytes)?;
        if header.tags.len() != TAG_COUNT {
            return Err(WeightsError::Format(format!(
                "{} tags in the header; this version has {TAG_COUNT}",
                header.tags.len()
            )));
        }
        let nets = weights::load_all(&header.configs, parts, |c| c.init(device))?;
        Ok(Self { nets, header })
    }

    /// The network of one view of a taggers file, with its config; the file's other networks
    /// are not loaded (they may have a shape this version no longer builds). `None` when the
    /// file has no such view.
    pub fn view_from_bytes(
        bytes: &[u8],
        view: View,
        device: &Device,
    ) -> Result<Option<(TaggerConfig, Tagger)>, WeightsError> {
        let (header, parts): (TaggerHeader, _) = weights::read_set(MAGIC, bytes)?;
        let Some(i) = header.configs.iter().position(|c| c.view == view) else {
            return Ok(None);
        };
        let config = header.configs[i].clone();
        let net = weights::load_record(config.init(device), parts[i])?;
        Ok(Some((config, net)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    #[test]
    fn the_coefficient_branch_sees_moduli_that_ignore_orientation() {
        let device = Device::flex();
        let compress = |v: f32| v.signum() * v.abs().ln_1p();
        // c = 3 − 4i and the same c turned by 90° (multiplied by i: 4 + 3i), mirrored (3 + 4i).
        let rows = [[3.0f32, -4.0], [4.0, 3.0], [3.0, 4.0]];
        let x: Vec<f32> = rows.iter().flatten().map(|&v| compress(v)).collect();
        let m = compressed_moduli(Tensor::from_data(TensorData::new(x, [3, 2]), &device))
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        for v in m {
            assert!((v - 5.0f32.ln_1p()).abs() < 1e-5, "{v}");
        }
    }

    /// The coefficient view's logits for `x`, flattened.
    fn coeff_logits(net: &Tagger, x: &Tensor<2>) -> Vec<f32> {
        net.forward(None, Some(x.clone()))
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32")
    }

    #[test]
    fn without_raw_features_the_coefficient_view_ignores_the_phase() {
        let device = Device::flex();
        let x = Tensor::<2>::random([2, COEFF_FEATURES], Distribution::Normal(0.0, 1.0), &device);
        // Every cₙₘ turned by 90° (multiplied by i): (re, im) → (−im, re); the compression is
        // odd, so this holds for the compressed features too. The ring statistics stay.
        let values = x.to_data().try_to_vec::<f32>().expect("f32");
        let mut turned = values.clone();
        for row in turned.chunks_exact_mut(COEFF_FEATURES) {
            for pair in row[..FB_FEATURES].chunks_exact_mut(2) {
                let (re, im) = (pair[0], pair[1]);
                pair[0] = -im;
                pair[1] = re;
            }
        }
        let turned = Tensor::<2>::from_data(TensorData::new(turned, [2, COEFF_FEATURES]), &device);
        for raw in [false, true] {
            let net = TaggerConfig::new(View::Coeff)
                .with_coeff_raw_fb(raw)
                .init(&device);
            let out = |x: &Tensor<2>| coeff_logits(&net, x);
            let largest = out(&x)
                .iter()
                .zip(out(&turned))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            if raw {
                assert!(largest > 1e-4, "the raw features should matter: {largest}");
            } else {
                assert!(largest < 1e-4, "{largest}");
            }
        }
        // Files written before the option read as raw.
        let header = TaggerHeader {
            configs: vec![TaggerConfig::new(View::Coeff).with_coeff_raw_fb(false)],
            tags: Vec::new(),
            image_side_px: IMAGE_SIDE_PX,
            trained: String::new(),
            record_bytes: Vec::new(),
        };
        let mut old = serde_json::to_value(&header).expect("json");
        old["configs"][0]
            .as_object_mut()
            .expect("object")
            .remove("coeff_raw_fb");
        old["configs"][0]
            .as_object_mut()
            .expect("object")
            .remove("coeff_peaks");
        // tagger-v2 wrote `coeff_peaks` but not `coeff_folds`.
        let mut v2 = serde_json::to_value(&header).expect("json");
        v2["configs"][0]
            .as_object_mut()
            .expect("object")
            .remove("coeff_folds");
        old["configs"][0]
            .as_object_mut()
            .expect("object")
            .remove("coeff_folds");
        for file in [&mut old, &mut v2] {
            file["configs"][0]
                .as_object_mut()
                .expect("object")
                .remove("coeff_outer");
        }
        let old: TaggerHeader = serde_json::from_value(old).expect("old header");
        assert!(
            old.configs[0].coeff_raw_fb
                && !old.configs[0].coeff_peaks
                && !old.configs[0].coeff_folds
                && !old.configs[0].coeff_outer
        );
        let v2: TaggerHeader = serde_json::from_value(v2).expect("v2 header");
        assert!(v2.configs[0].coeff_peaks && !v2.configs[0].coeff_folds);
        // tagger-v7 wrote `coeff_folds` but not `coeff_outer`.
        let mut v7 = serde_json::to_value(&header).expect("json");
        v7["configs"][0]
            .as_object_mut()
            .expect("object")
            .remove("coeff_outer");
        let v7: TaggerHeader = serde_json::from_value(v7).expect("v7 header");
        assert!(v7.configs[0].coeff_folds && !v7.configs[0].coeff_outer);
        let new: TaggerHeader =
            serde_json::from_value(serde_json::to_value(&header).expect("json")).expect("header");
        assert!(
            !new.configs[0].coeff_raw_fb
                && new.configs[0].coeff_peaks
                && new.configs[0].coeff_folds
        );
    }

    #[test]
    fn only_networks_with_ring_features_read_them() {
        let device = Device::flex();
        let x = Tensor::<2>::random([2, COEFF_FEATURES], Distribution::Normal(0.0, 1.0), &device);
        // The same inputs with only the ring features (302 values), only the fold scores (28)
        // or only the outer view (the last 907) changed.
        let changed = |range: std::ops::Range<usize>| {
            let mut changed = x.clone().into_data().try_to_vec::<f32>().expect("f32");
            for row in changed.chunks_exact_mut(COEFF_FEATURES) {
                for v in &mut row[range.clone()] {
                    *v += 1.0;
                }
            }
            Tensor::<2>::from_data(TensorData::new(changed, [2, COEFF_FEATURES]), &device)
        };
        let peaks_start = FB_FEATURES + RING_FEATURES;
        let folds_start = peaks_start + PEAK_FEATURES;
        let outer_start = folds_start + FOLD_FEATURES;
        let peaks_changed = changed(peaks_start..folds_start);
        let folds_changed = changed(folds_start..outer_start);
        let outer_changed = changed(outer_start..COEFF_FEATURES);
        for raw in [false, true] {
            for (peaks, folds, outer) in [
                (false, false, false),
                (true, false, false),
                (true, true, false),
                (true, true, true),
            ] {
                let net = TaggerConfig::new(View::Coeff)
                    .with_coeff_raw_fb(raw)
                    .with_coeff_peaks(peaks)
                    .with_coeff_folds(folds)
                    .with_coeff_outer(outer)
                    .init(&device);
                let out = |x: &Tensor<2>| coeff_logits(&net, x);
                let a = out(&x);
                let largest = |changed: &Tensor<2>| {
                    out(changed)
                        .iter()
                        .zip(&a)
                        .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()))
                };
                let (by_peaks, by_folds, by_outer) = (
                    largest(&peaks_changed),
                    largest(&folds_changed),
                    largest(&outer_changed),
                );
                let case = format!(
                    "raw {raw} peaks {peaks} folds {folds} outer {outer}: \
                     {by_peaks} {by_folds} {by_outer}"
                );
                assert_eq!(by_peaks > 1e-5, peaks, "{case}");
                assert_eq!(by_folds > 1e-5, folds, "{case}");
                assert_eq!(by_outer > 1e-5, outer, "{case}");
            }
        }
    }

    #[test]
    fn a_network_widened_for_the_outer_view_predicts_what_it_did() {
        let device = Device::flex();
        let x = Tensor::<2>::random([3, COEFF_FEATURES], Distribution::Normal(0.0, 1.0), &device);
        for view in [View::Coeff, View::Joint] {
            let old = TaggerConfig::new(view)
                .with_image_channels(8)
                .with_coeff_raw_fb(false)
                .with_coeff_outer(false)
                .init(&device);
            let image = view
                .has_image()
                .then(|| Tensor::<4>::ones([3, 1, IMAGE_SIDE_PX, IMAGE_SIDE_PX], &device));
            let before = old
                .forward(image.clone(), Some(x.clone()))
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32");
            let widened = old.with_outer_view_added();
            let hidden = widened
                .coeff
                .as_ref()
                .expect("coefficient branch")
                .hidden
                .weight
                .dims();
            assert_eq!(
                hidden[0],
                FB_FEATURES / 2 + RING_FEATURES + PEAK_FEATURES + FOLD_FEATURES + OUTER_FEATURES
            );
            let after = widened
                .forward(image.clone(), Some(x.clone()))
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32");
            for (a, b) in before.iter().zip(&after) {
                assert!((a - b).abs() < 1e-6, "{view:?}: {a} vs {b}");
            }
            // Widening twice changes nothing more.
            let again = widened.with_outer_view_added();
            assert_eq!(
                again
                    .coeff
                    .as_ref()
                    .expect("coefficient branch")
                    .hidden
                    .weight
                    .dims(),
                hidden
            );
        }
    }

    #[test]
    fn every_view_maps_a_batch_to_fifteen_logits() {
        let device = Device::flex();
        let image = Tensor::<4>::zeros([2, 1, IMAGE_SIDE_PX, IMAGE_SIDE_PX], &device);
        let coeff = Tensor::<2>::zeros([2, COEFF_FEATURES], &device);
        for view in View::ALL {
            let net = TaggerConfig::new(view).with_image_channels(4).init(&device);
            let out = net.forward(Some(image.clone()), Some(coeff.clone()));
            assert_eq!(out.dims(), [2, TAG_COUNT], "{view:?}");
        }
    }

    #[test]
    fn a_taggers_file_round_trips_and_refuses_damage() {
        let device = Device::flex();
        let tags = (0..TAG_COUNT).map(|i| format!("tag {i}")).collect();
        let configs = View::ALL
            .iter()
            .map(|&v| TaggerConfig::new(v).with_image_channels(4))
            .collect();
        let set = TaggerSet::init(configs, tags, &device);
        let bytes = set.to_bytes().expect("serialises");
        let back = TaggerSet::from_bytes(&bytes, &device).expect("reads back");
        let coeff = Tensor::<2>::ones([1, COEFF_FEATURES], &device);
        let a = set
            .get(View::Coeff)
            .expect("coeff")
            .forward(None, Some(coeff.clone()));
        let b = back
            .get(View::Coeff)
            .expect("coeff")
            .forward(None, Some(coeff));
        assert_eq!(a.into_data(), b.into_data());
        assert!(TaggerSet::from_bytes(&bytes[..bytes.len() - 1], &device).is_err());
        assert!(TaggerSet::from_bytes(b"SSGRAIN1xxxxxxxx", &device).is_err());
    }

    #[test]
    fn image_view_gradients_match_finite_differences() {
        // The whole backward chain of the image branch (convolutions, group norm, pooling,
        // global mean and max, linear layers) against central differences on input pixels.
        let device = Device::flex().autodiff();
        device.seed(11);
        let net = TaggerConfig::new(View::Image)
            .with_image_channels(8)
            .init(&device);
        let side = 32;
        let values: Vec<f32> = (0..side * side)
            .map(|i| ((i * 7919 % 1000) as f32 / 1000.0) * 0.8 + 0.1)
            .collect();
        let weights: Vec<f32> = (0..TAG_COUNT).map(|t| (t as f32 - 7.0) / 7.0).collect();
        let loss = |v: &[f32], grad: bool| {
            let x = Tensor::<4>::from_data(
                burn::tensor::TensorData::new(v.to_vec(), [1, 1, side, side]),
                &device,
            );
            let x = if grad { x.require_grad() } else { x };
            let w = Tensor::<2>::from_data(
                burn::tensor::TensorData::new(weights.clone(), [1, TAG_COUNT]),
                &device,
            );
            ((net.forward(Some(x.clone()), None) * w).sum(), x)
        };
        let (l, x) = loss(&values, true);
        let grads = l.backward();
        let g = x
            .grad(&grads)
            .expect("input gradient")
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32");
        let eps = 1e-2;
        let scale = g.iter().fold(0f32, |a, v| a.max(v.abs()));
        let mut checked = 0;
        for i in [5usize, 100, 333, 517, 700, 1001, 64, 850] {
            let f = |d: f32| {
                let mut v = values.clone();
                v[i] += d;
                loss(&v, false)
                    .0
                    .into_data()
                    .try_into_vec::<f32>()
                    .expect("f32")[0]
            };
            let (below, at, above) = (f(-eps), f(0.0), f(eps));
            // A max (pooling, ReLU, global max) that switches within ±eps is a kink: the
            // derivative is not defined there and the two one-sided slopes differ. Skip it.
            let (left, right) = ((at - below) / eps, (above - at) / eps);
            if (left - right).abs() > 0.05 * scale {
                continue;
            }
            let numeric = (above - below) / (2.0 * eps);
            assert!(
                (numeric - g[i]).abs() < 0.05 * scale + 1e-4,
                "pixel {i}: autodiff {} numeric {numeric} (largest gradient {scale})",
                g[i]
            );
            checked += 1;
        }
        assert!(checked >= 5, "only {checked} of 8 pixels away from kinks");
    }

    #[test]
    fn a_frozen_coefficient_branch_takes_no_gradients_and_the_fusion_does() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let net = TaggerConfig::new(View::Joint)
            .with_image_channels(4)
            .init(&device)
            .with_coeff_branch_frozen();
        let x = Tensor::<4>::ones([2, 1, IMAGE_SIDE_PX, IMAGE_SIDE_PX], &device);
        let c = Tensor::<2>::ones([2, COEFF_FEATURES], &device);
        let grads = net.forward(Some(x), Some(c)).sum().backward();
        let coeff = net.coeff.as_ref().expect("coeff branch");
        for (name, w) in [
            ("hidden", &coeff.hidden.weight),
            ("hidden2", &coeff.hidden2.weight),
            ("embed", &coeff.embed.weight),
        ] {
            assert!(
                w.val().grad(&grads).is_none(),
                "frozen {name} has a gradient"
            );
        }
        let fuse = net.fuse.weight.val().grad(&grads).expect("fusion gradient");
        assert!(fuse.abs().sum().into_scalar::<f32>() > 0.0);
        let image = net.image.as_ref().expect("image branch");
        assert!(
            image.embed.weight.val().grad(&grads).is_some(),
            "image branch frozen too"
        );
    }

    /// Small image and coefficient views and a joint view holding their branches.
    fn small_views_and_joint(device: &Device) -> (Tagger, Tagger, Tagger) {
        let config = |v| TaggerConfig::new(v).with_image_channels(4);
        let image = config(View::Image).init(device);
        let coeff = config(View::Coeff).init(device);
        let joint = config(View::Joint)
            .init(device)
            .with_branches_of(&image, &coeff);
        (image, coeff, joint)
    }

    #[test]
    fn a_joint_tagger_started_from_the_coefficient_view_predicts_what_it_predicts() {
        // Autodiff, as in training (its parameters must be leaves there).
        let device = Device::flex().autodiff();
        device.seed(11);
        let (_, coeff, fresh) = small_views_and_joint(&device);
        let joint = fresh.clone().with_fusion_of(&coeff);
        let x = Tensor::<4>::random(
            [3, 1, IMAGE_SIDE_PX, IMAGE_SIDE_PX],
            burn::tensor::Distribution::Uniform(0.0, 1.0),
            &device,
        );
        let c = Tensor::<2>::random(
            [3, COEFF_FEATURES],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let logits = |t: &Tagger| {
            t.forward(Some(x.clone()), Some(c.clone()))
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32")
        };
        let (want, got, before) = (logits(&coeff), logits(&joint), logits(&fresh));
        assert_eq!(got.len(), 3 * TAG_COUNT);
        let largest_gap = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max)
        };
        assert!(largest_gap(&want, &got) < 1e-5, "{want:?} vs {got:?}");
        // Without the warm start the fusion is random: the logits differ.
        assert!(largest_gap(&want, &before) > 1e-3);
        // The zero image rows of the fusion still learn.
        let grads = joint
            .forward(Some(x.clone()), Some(c.clone()))
            .sum()
            .backward();
        let fuse = joint
            .fuse
            .weight
            .val()
            .grad(&grads)
            .expect("fusion gradient");
        let image_rows = fuse.narrow(0, 0, joint.fuse.weight.dims()[0] / 2);
        assert!(image_rows.abs().sum().into_scalar::<f32>() > 0.0);
        // A single-view tagger is left as it is.
        let same = coeff.clone().with_fusion_of(&coeff);
        assert_eq!(logits(&same), want);
    }

    #[test]
    fn a_joint_tagger_takes_over_trained_branches() {
        let device = Device::flex();
        let (image, coeff, joint) = small_views_and_joint(&device);
        let x = Tensor::<4>::ones([1, 1, IMAGE_SIDE_PX, IMAGE_SIDE_PX], &device);
        let c = Tensor::<2>::ones([1, COEFF_FEATURES], &device);
        let same = |a: &ImageCnn, b: &ImageCnn| {
            a.forward(x.clone()).into_data() == b.forward(x.clone()).into_data()
        };
        let (ji, ii) = (
            joint.image.as_ref().expect("image branch"),
            image.image.as_ref().expect("image branch"),
        );
        assert!(same(ji, ii));
        let (jc, cc) = (
            joint.coeff.as_ref().expect("coeff branch"),
            coeff.coeff.as_ref().expect("coeff branch"),
        );
        assert_eq!(jc.forward(c.clone()).into_data(), cc.forward(c).into_data());
    }

    #[test]
    fn the_joint_view_has_both_branches_and_the_single_views_one() {
        let device = Device::flex();
        let params = |v| {
            TaggerConfig::new(v)
                .with_image_channels(4)
                .init(&device)
                .num_params()
        };
        let (i, c, j) = (
            params(View::Image),
            params(View::Coeff),
            params(View::Joint),
        );
        // The joint net holds both branches plus a wider fusion layer.
        assert!(j > i && j > c && j < i + c + 128 * 128 * 2, "{i} {c} {j}");
    }
}
