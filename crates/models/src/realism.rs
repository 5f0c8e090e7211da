//! Realism classifiers (seed 000): small networks of different families that each say how
//! likely a detector image is realistic, combined by weighted soft voting.
//!
//! Different architectures make different mistakes, which is what makes an ensemble better than
//! its members: a residual CNN, a plain VGG-style CNN, a vision transformer on 16 × 16 patches,
//! a ConvNeXt-style network (depthwise 7 × 7 convolutions, inverted bottlenecks), and a
//! perceptron on the ring statistics around the beam centre (`imaging::scattering::rings`).
//! The last sees the physics the CNNs find hard (an unphysical fall-off of I(q), a profile
//! smeared by a beamstop) and misses what they see (blobs, checkerboards): on held-out images
//! adding it lifted the ensemble's AUC from 0.75 to 0.78 although alone it is the weakest.
//!
//! # Input and output
//! Images `[batch, 1, 256, 256]`: the taggers' image view (`imaging::scattering::log_grid`:
//! ln(1 + I)/ln 65 536 in [0, 1]). Pixel-scale defects (a checkerboard of period one) vanish
//! on a coarser grid, so every CNN starts with its own strided stem instead. Ring statistics
//! `[batch, 576]`: the last [`RING_FEATURES`] of the taggers' coefficient view. Each member uses
//! one of the two. Output: one logit per image, `[batch, 1]`; sigmoid is the probability that
//! the image is realistic.
//!
//! # Voting
//! [`Ensemble`] holds the members and their soft-voting weights, fitted on validation images by
//! [`fit_vote_weights`]; [`soft_vote`] and [`hard_vote`] combine member probabilities. Each
//! member and the soft vote also get a decision threshold fitted on the same images (the one
//! with the best F1), so that every model is judged at its own best operating point rather than
//! at ½, which suits some members' calibration better than others'.
//!
//! # The pattern gate
//! Whether a frame is a scattering pattern at all is another question than whether a pattern is
//! realistic, and mixing the two in one vote dilutes the harder one: members taught both lost
//! part of what they caught in damaged patterns. So an ensemble may carry a *gate*
//! ([`GateHeader`]): one more network of a member family, trained on every engine image, clean
//! or damaged, against frames that are no pattern (flat noise, stripes, gradients, photographs,
//! micrographs). A frame the gate rejects is not judged by the vote; the members are untouched.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{
    Dropout, DropoutConfig, GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::{gelu, relu};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::tagger::{NormBlock, RING_FEATURES};
use crate::weights::{self, WeightsError};

/// Side of the classifiers' input in pixels.
pub const INPUT_SIDE_PX: usize = 256;

/// The member families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Residual CNN (ResNet-style basic blocks).
    Resnet,
    /// Plain stacked 3 × 3 convolutions with max pooling (VGG-style, group-normalised).
    Vgg,
    /// Vision transformer on 16 × 16 patches.
    Vit,
    /// Depthwise 7 × 7 convolutions and inverted bottlenecks (ConvNeXt-style).
    Convnext,
    /// A perceptron on the ring statistics (radial profile, its contrast, coverage, angular
    /// harmonics), not on the image.
    Rings,
}

impl Family {
    /// All families, in report order.
    pub const ALL: [Family; 5] = [
        Family::Resnet,
        Family::Vgg,
        Family::Vit,
        Family::Convnext,
        Family::Rings,
    ];

    /// Stable name for files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::Resnet => "resnet",
            Family::Vgg => "vgg",
            Family::Vit => "vit",
            Family::Convnext => "convnext",
            Family::Rings => "rings",
        }
    }
}

/// Shape of a [`Member`].
#[derive(Config, Debug, PartialEq)]
pub struct MemberConfig {
    /// Which family.
    pub family: Family,
    /// Width: channels of the first stage (CNNs), a quarter of the token dimension (ViT), a
    /// sixteenth of the first hidden layer (rings).
    #[config(default = 16)]
    pub width: usize,
}

impl crate::weights::Shape for MemberConfig {
    /// Every family has a layer of at least width × width weights (a 3 × 3 convolution, the
    /// ViT's attention at 4 × width, the rings perceptron's 16 × width → 8 × width layer).
    fn min_parameters(&self) -> usize {
        self.width.saturating_mul(self.width)
    }

    fn check(&self) -> Result<(), String> {
        let c = self.width;
        let cnn = matches!(self.family, Family::Resnet | Family::Vgg);
        if c == 0
            || (cnn
                && ![c, 2 * c, 4 * c]
                    .into_iter()
                    .all(crate::weights::group_norm_fits))
        {
            return Err(format!("a {} member of width {c}", self.family.name()));
        }
        Ok(())
    }
}

impl MemberConfig {
    /// Builds the network with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Member {
        let c = self.width;
        let net = match self.family {
            Family::Resnet => Net::Resnet(Resnet {
                stem: conv(1, c, 3, 2, device),
                blocks: vec![
                    ResBlock::new(c, c, 1, device),
                    ResBlock::new(c, 2 * c, 2, device),
                    ResBlock::new(2 * c, 4 * c, 2, device),
                    ResBlock::new(4 * c, 4 * c, 2, device),
                ],
                head: LinearConfig::new(2 * 4 * c, 1).init(device),
            }),
            Family::Vgg => Net::Vgg(Vgg {
                // 3 × 3 stride 2 then the first pooling: 256² → 64² before the stacked blocks.
                stem: conv(1, c, 3, 2, device),
                blocks: vec![
                    NormBlock::new(c, 2 * c, device),
                    NormBlock::new(2 * c, 4 * c, device),
                    NormBlock::new(4 * c, 4 * c, device),
                ],
                pool: MaxPool2dConfig::new([2, 2]).init(),
                head: LinearConfig::new(2 * 4 * c, 1).init(device),
            }),
            Family::Vit => {
                let d = 4 * c;
                let tokens = (INPUT_SIDE_PX / VIT_PATCH_PX).pow(2);
                Net::Vit(Vit {
                    patch: Conv2dConfig::new([1, d], [VIT_PATCH_PX, VIT_PATCH_PX])
                        .with_stride([VIT_PATCH_PX, VIT_PATCH_PX])
                        .init(device),
                    position: Param::from_tensor(Tensor::random(
                        [1, tokens, d],
                        Distribution::Normal(0.0, 0.02),
                        device,
                    )),
                    encoder: TransformerEncoderConfig::new(d, 2 * d, 4, 3)
                        .with_dropout(0.0)
                        .with_norm_first(true)
                        .init(device),
                    norm: LayerNormConfig::new(d).init(device),
                    head: LinearConfig::new(2 * d, 1).init(device),
                })
            }
            Family::Convnext => Net::Convnext(Convnext {
                stem: Conv2dConfig::new([1, 2 * c], [4, 4])
                    .with_stride([4, 4])
                    .init(device),
                stages: vec![NextBlock::new(2 * c, device), NextBlock::new(2 * c, device)],
                down: conv(2 * c, 4 * c, 2, 2, device),
                stages2: vec![NextBlock::new(4 * c, device), NextBlock::new(4 * c, device)],
                head: LinearConfig::new(2 * 4 * c, 1).init(device),
            }),
            Family::Rings => Net::Rings(RingsNet {
                hidden: LinearConfig::new(RING_FEATURES, 16 * c).init(device),
                hidden2: LinearConfig::new(16 * c, 8 * c).init(device),
                head: LinearConfig::new(8 * c, 1).init(device),
                // Without dropout the perceptron memorises its 5 000 images within a few epochs.
                dropout: DropoutConfig::new(0.2).init(),
            }),
        };
        Member { net }
    }
}

/// Patch side of the ViT.
const VIT_PATCH_PX: usize = 16;

fn conv(i: usize, o: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = k / 2;
    Conv2dConfig::new([i, o], [k, k])
        .with_stride([stride, stride])
        .with_padding(if k % 2 == 1 {
            PaddingConfig2d::Explicit(pad, pad, pad, pad)
        } else {
            PaddingConfig2d::Valid
        })
        .init(device)
}

/// `[b, c, h, w]` → `[b, 2c]`: global average and global max pooling, concatenated. A defect
/// in one corner (a broken arc, a blob, a smeared beamstop) is what makes an image fake; the
/// average alone dilutes it over the whole detector, the maximum keeps it.
fn global_mean_max(x: Tensor<4>) -> Tensor<2> {
    let [b, c, _, _] = x.dims();
    let mean = x.clone().mean_dim(3).mean_dim(2).reshape([b, c]);
    let max = x.max_dim(3).max_dim(2).reshape([b, c]);
    Tensor::cat(vec![mean, max], 1)
}

/// `[b, 1, h, w]` → the same, each image shifted and scaled to mean 0 and standard deviation
/// one. The log intensities of detector images sit on a large, exposure-dependent offset; without
/// this the members learned nothing beyond the class prior.
fn standardise(x: Tensor<4>) -> Tensor<4> {
    let mean = x.clone().mean_dim(3).mean_dim(2);
    let centred = x - mean;
    let std = centred
        .clone()
        .powf_scalar(2.0)
        .mean_dim(3)
        .mean_dim(2)
        .add_scalar(1e-6)
        .sqrt();
    centred / std
}

/// A ResNet basic block: two 3 × 3 convolutions with group norm, plus the (projected) input.
#[derive(Module, Debug)]
pub struct ResBlock {
    conv1: Conv2d,
    norm1: GroupNorm,
    conv2: Conv2d,
    norm2: GroupNorm,
    project: Option<Conv2d>,
}

impl ResBlock {
    fn new(i: usize, o: usize, stride: usize, device: &Device) -> Self {
        let groups = (o / 8).max(1);
        Self {
            conv1: conv(i, o, 3, stride, device),
            norm1: GroupNormConfig::new(groups, o).init(device),
            conv2: conv(o, o, 3, 1, device),
            norm2: GroupNormConfig::new(groups, o).init(device),
            project: (i != o || stride != 1).then(|| conv(i, o, 1, stride, device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let skip = match &self.project {
            Some(p) => p.forward(x.clone()),
            None => x.clone(),
        };
        let y = relu(self.norm1.forward(self.conv1.forward(x)));
        relu(self.norm2.forward(self.conv2.forward(y)) + skip)
    }
}

/// Residual CNN.
#[derive(Module, Debug)]
pub struct Resnet {
    stem: Conv2d,
    blocks: Vec<ResBlock>,
    head: Linear,
}

/// VGG-style CNN.
#[derive(Module, Debug)]
pub struct Vgg {
    stem: Conv2d,
    blocks: Vec<NormBlock>,
    pool: MaxPool2d,
    head: Linear,
}

/// Vision transformer.
#[derive(Module, Debug)]
pub struct Vit {
    patch: Conv2d,
    position: Param<Tensor<3>>,
    encoder: TransformerEncoder,
    norm: LayerNorm,
    head: Linear,
}

/// A ConvNeXt block: depthwise 7 × 7, norm, 1 × 1 up ×4, GELU, 1 × 1 down, residual.
#[derive(Module, Debug)]
pub struct NextBlock {
    depthwise: Conv2d,
    norm: GroupNorm,
    up: Conv2d,
    down: Conv2d,
}

impl NextBlock {
    fn new(c: usize, device: &Device) -> Self {
        Self {
            depthwise: Conv2dConfig::new([c, c], [7, 7])
                .with_groups(c)
                .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                .init(device),
            // One group: normalises over channels and space, as LayerNorm does in ConvNeXt.
            norm: GroupNormConfig::new(1, c).init(device),
            up: conv(c, 4 * c, 1, 1, device),
            down: conv(4 * c, c, 1, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.norm.forward(self.depthwise.forward(x.clone()));
        x + self.down.forward(gelu(self.up.forward(y)))
    }
}

/// ConvNeXt-style network.
#[derive(Module, Debug)]
pub struct Convnext {
    stem: Conv2d,
    stages: Vec<NextBlock>,
    down: Conv2d,
    stages2: Vec<NextBlock>,
    head: Linear,
}

/// The perceptron on ring statistics: 576 → 16·width → 8·width → 1.
#[derive(Module, Debug)]
pub struct RingsNet {
    hidden: Linear,
    hidden2: Linear,
    head: Linear,
    dropout: Dropout,
}

/// One of the architectures.
#[derive(Module, Debug)]
pub enum Net {
    /// Residual CNN.
    Resnet(Resnet),
    /// VGG-style CNN.
    Vgg(Vgg),
    /// Vision transformer.
    Vit(Vit),
    /// ConvNeXt-style network.
    Convnext(Convnext),
    /// Perceptron on ring statistics.
    Rings(RingsNet),
}

/// A realism classifier. Built by [`MemberConfig::init`].
#[derive(Module, Debug)]
pub struct Member {
    net: Net,
}

impl Member {
    /// Realism logits. Each member reads one of the inputs: the CNNs and the ViT the image,
    /// the rings perceptron the statistics.
    ///
    /// # Shapes
    /// - `x`: `[b, 1, 256, 256]`
    /// - `stats`: `[b, 576]` ring statistics
    /// - output: `[b, 1]`
    pub fn forward(&self, x: Tensor<4>, stats: Tensor<2>) -> Tensor<2> {
        self.head(self.features(x, stats))
    }

    /// The head: [`Member::features`] `[b, f]` → logits `[b, 1]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        self.head_layer().forward(features)
    }

    /// The features the head reads: the member's view of the image, used for the latent-space
    /// view of the Dataset page.
    ///
    /// # Shapes
    /// - `x`: `[b, 1, 256, 256]`
    /// - `stats`: `[b, 576]` ring statistics
    /// - output: `[b, f]` with `f` = [`Member::feature_width`]
    pub fn features(&self, x: Tensor<4>, stats: Tensor<2>) -> Tensor<2> {
        match &self.net {
            Net::Resnet(n) => {
                let mut x = relu(n.stem.forward(standardise(x)));
                for b in &n.blocks {
                    x = b.forward(x);
                }
                global_mean_max(x)
            }
            Net::Vgg(n) => {
                let mut x = n.pool.forward(relu(n.stem.forward(standardise(x))));
                for b in &n.blocks {
                    x = n.pool.forward(b.forward(x));
                }
                global_mean_max(x)
            }
            Net::Vit(n) => {
                // [b, d, 16, 16] → [b, 256, d] tokens.
                let p = n.patch.forward(standardise(x));
                let [b, d, h, w] = p.dims();
                let tokens = p.reshape([b, d, h * w]).swap_dims(1, 2) + n.position.val();
                let encoded = n.encoder.forward(TransformerEncoderInput::new(tokens));
                // [b, 256, d] → [b, 2d]: mean and max over the tokens.
                let encoded = n.norm.forward(encoded);
                let mean = encoded.clone().mean_dim(1).reshape([b, d]);
                let max = encoded.max_dim(1).reshape([b, d]);
                Tensor::cat(vec![mean, max], 1)
            }
            Net::Convnext(n) => {
                let mut x = n.stem.forward(standardise(x));
                for s in &n.stages {
                    x = s.forward(x);
                }
                x = n.down.forward(x);
                for s in &n.stages2 {
                    x = s.forward(x);
                }
                global_mean_max(x)
            }
            Net::Rings(n) => {
                let h = n.dropout.forward(relu(n.hidden.forward(stats)));
                n.dropout.forward(relu(n.hidden2.forward(h)))
            }
        }
    }

    /// Width of [`Member::features`] (the head's input).
    pub fn feature_width(&self) -> usize {
        // burn's Linear weight is [d_input, d_output].
        self.head_layer().weight.dims()[0]
    }

    fn head_layer(&self) -> &Linear {
        match &self.net {
            Net::Resnet(n) => &n.head,
            Net::Vgg(n) => &n.head,
            Net::Vit(n) => &n.head,
            Net::Convnext(n) => &n.head,
            Net::Rings(n) => &n.head,
        }
    }
}

/// What a realism file records besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleHeader {
    /// The members, in order.
    pub configs: Vec<MemberConfig>,
    /// Soft-voting weight of each member (non-negative, summing to 1).
    pub vote_weights: Vec<f64>,
    /// Decision threshold of each member's probability (files written before thresholds were
    /// fitted have none: ½ each).
    #[serde(default)]
    pub member_thresholds: Vec<f64>,
    /// Decision threshold of the soft vote: realistic when the vote is above it.
    #[serde(default = "half")]
    pub vote_threshold: f64,
    /// Side of the input grid in pixels.
    pub input_side_px: usize,
    /// Free text: how the weights were trained.
    pub trained: String,
    /// Bytes of each member's burnpack record, in order (the gate's last).
    pub record_bytes: Vec<usize>,
    /// The pattern gate, when the file has one (files before it have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateHeader>,
}

/// The pattern gate of an ensemble: a network of one member family whose probability says that
/// a frame is a scattering pattern (clean or damaged), not something else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateHeader {
    /// Its shape.
    pub config: MemberConfig,
    /// A frame whose gate probability is below this is no scattering pattern.
    pub threshold: f64,
    /// Free text: how the gate was trained.
    pub trained: String,
}

fn half() -> f64 {
    0.5
}

impl EnsembleHeader {
    /// The decision threshold of member `k` (½ when the file has none).
    pub fn member_threshold(&self, k: usize) -> f64 {
        self.member_thresholds.get(k).copied().unwrap_or(0.5)
    }

    /// Every member's decision threshold, in member order.
    pub fn member_thresholds(&self) -> Vec<f64> {
        (0..self.configs.len())
            .map(|k| self.member_threshold(k))
            .collect()
    }

    /// Whether the soft vote `score` calls an image realistic.
    pub fn realistic(&self, score: f64) -> bool {
        score > self.vote_threshold
    }

    /// Whether the gate's probability `pattern` lets a frame through to the vote (always, for
    /// an ensemble without a gate).
    pub fn is_pattern(&self, pattern: Option<f64>) -> bool {
        match (&self.gate, pattern) {
            (Some(g), Some(p)) => p >= g.threshold,
            _ => true,
        }
    }
}

impl weights::SetHeader for EnsembleHeader {
    fn networks(&self) -> usize {
        self.configs.len() + usize::from(self.gate.is_some())
    }
    fn record_lengths(&self) -> &[usize] {
        &self.record_bytes
    }
    fn set_record_lengths(&mut self, lengths: Vec<usize>) {
        self.record_bytes = lengths;
    }
}

/// The realism members and how they vote.
#[derive(Debug, Clone)]
pub struct Ensemble {
    /// The members, in the order of `header.configs`.
    pub members: Vec<Member>,
    /// The pattern gate (present exactly when `header.gate` is).
    pub gate: Option<Member>,
    /// Shapes, voting weights and provenance.
    pub header: EnsembleHeader,
}

const MAGIC: &[u8; 8] = b"SSREALM1";

impl Ensemble {
    /// Fresh, untrained members voting with equal weights.
    pub fn init(configs: Vec<MemberConfig>, device: &Device) -> Self {
        let k = configs.len().max(1);
        Self {
            members: configs.iter().map(|c| c.init(device)).collect(),
            header: EnsembleHeader {
                vote_weights: vec![1.0 / k as f64; configs.len()],
                member_thresholds: vec![0.5; configs.len()],
                vote_threshold: 0.5,
                configs,
                input_side_px: INPUT_SIDE_PX,
                trained: String::new(),
                record_bytes: Vec::new(),
                gate: None,
            },
            gate: None,
        }
    }

    /// The gate's probability that each image is a scattering pattern, `None` without a gate.
    ///
    /// # Shapes
    /// - `x`: `[b, 1, 256, 256]`, `stats`: `[b, 576]`
    /// - output: `[b, 1]`
    pub fn pattern_probability(&self, x: Tensor<4>, stats: Tensor<2>) -> Option<Tensor<2>> {
        self.gate
            .as_ref()
            .map(|g| burn::tensor::activation::sigmoid(g.forward(x, stats)))
    }

    /// Each member's probability that each image is realistic.
    ///
    /// # Shapes
    /// - `x`: `[b, 1, 256, 256]`
    /// - `stats`: `[b, 576]` ring statistics
    /// - output: `[b, members]`
    pub fn member_probabilities(&self, x: Tensor<4>, stats: Tensor<2>) -> Tensor<2> {
        let logits: Vec<Tensor<2>> = self
            .members
            .iter()
            .map(|m| m.forward(x.clone(), stats.clone()))
            .collect();
        burn::tensor::activation::sigmoid(Tensor::cat(logits, 1))
    }

    /// The ensemble's embedding of each image: every member with a non-zero vote weight
    /// contributes its [`Member::features`], scaled to unit length and then by √wₖ, so that a
    /// squared distance between two embeddings is the vote-weighted sum of the members' squared
    /// (cosine) distances: images the vote treats alike lie close.
    ///
    /// # Shapes
    /// - `x`: `[b, 1, 256, 256]`
    /// - `stats`: `[b, 576]` ring statistics
    /// - output: `[b, Σ f_k]` over the members with a weight
    pub fn embedding(&self, x: Tensor<4>, stats: Tensor<2>) -> Tensor<2> {
        self.probabilities_and_embedding(x, stats).1
    }

    /// [`Ensemble::member_probabilities`] and [`Ensemble::embedding`] from one pass of each
    /// member (what classification needs).
    ///
    /// # Shapes
    /// - `x`: `[b, 1, 256, 256]`, `stats`: `[b, 576]`
    /// - output: `[b, members]` and `[b, Σ f_k]`
    pub fn probabilities_and_embedding(
        &self,
        x: Tensor<4>,
        stats: Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        let mut logits = Vec::with_capacity(self.members.len());
        let mut parts = Vec::new();
        for (m, &w) in self.members.iter().zip(&self.header.vote_weights) {
            let f = m.features(x.clone(), stats.clone());
            if w > 0.0 {
                // [b, 1]: the length of each image's features.
                let norm = f
                    .clone()
                    .powf_scalar(2.0)
                    .sum_dim(1)
                    .add_scalar(1e-12)
                    .sqrt();
                parts.push(f.clone() / norm * (w.sqrt() as f32));
            }
            logits.push(m.head(f));
        }
        (
            burn::tensor::activation::sigmoid(Tensor::cat(logits, 1)),
            Tensor::cat(parts, 1),
        )
    }

    /// Width of [`Ensemble::embedding`].
    pub fn embedding_width(&self) -> usize {
        self.members
            .iter()
            .zip(&self.header.vote_weights)
            .filter(|(_, w)| **w > 0.0)
            .map(|(m, _)| m.feature_width())
            .sum()
    }

    /// Serialises the ensemble (layout of [`crate::weights`], magic `SSREALM1`).
    pub fn to_bytes(&self) -> Result<Vec<u8>, WeightsError> {
        if self.gate.is_some() != self.header.gate.is_some() {
            return Err(WeightsError::Format(
                "the gate network and the header's gate disagree".into(),
            ));
        }
        let nets: Vec<Member> = self.members.iter().chain(&self.gate).cloned().collect();
        weights::write_set(MAGIC, &self.header, &nets)
    }

    /// Reads an ensemble written by [`Ensemble::to_bytes`] onto `device`.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self, WeightsError> {
        let (header, parts): (EnsembleHeader, _) = weights::read_set(MAGIC, bytes)?;
        if header.vote_weights.len() != header.configs.len() {
            return Err(WeightsError::Format(
                "the header has not one voting weight per member".into(),
            ));
        }
        if !header.member_thresholds.is_empty()
            && header.member_thresholds.len() != header.configs.len()
        {
            return Err(WeightsError::Format(
                "the header has not one decision threshold per member".into(),
            ));
        }
        let configs: Vec<MemberConfig> = header
            .configs
            .iter()
            .chain(header.gate.as_ref().map(|g| &g.config))
            .cloned()
            .collect();
        let mut members = weights::load_all(&configs, parts, |c| c.init(device))?;
        let gate = match header.gate {
            Some(_) => members.pop(),
            None => None,
        };
        Ok(Self {
            members,
            gate,
            header,
        })
    }
}

/// Weighted soft vote: Σₖ wₖ pₖ, the ensemble's probability that an image is realistic.
pub fn soft_vote(member_probs: &[f32], weights: &[f64]) -> f64 {
    member_probs
        .iter()
        .zip(weights)
        .map(|(&p, &w)| w * f64::from(p))
        .sum()
}

/// Majority vote: the fraction of members that call the image realistic (pₖ above the member's
/// threshold tₖ). The image is realistic by majority when the fraction is above ½; a tie goes
/// to the mean margin Σ(pₖ − tₖ)/K > 0.
pub fn hard_vote(member_probs: &[f32], thresholds: &[f64]) -> (f64, bool) {
    let k = member_probs.len().max(1) as f64;
    let margins: Vec<f64> = member_probs
        .iter()
        .zip(thresholds)
        .map(|(&p, &t)| f64::from(p) - t)
        .collect();
    let fraction = margins.iter().filter(|&&m| m > 0.0).count() as f64 / k;
    let decision = if (fraction - 0.5).abs() < 1e-12 {
        margins.iter().sum::<f64>() / k > 0.0
    } else {
        fraction > 0.5
    };
    (fraction, decision)
}

/// Soft-voting weights fitted on validation images: the point of a grid over the weight
/// simplex (steps of 1/20) with the smallest log loss of [`soft_vote`] against `truth`.
/// `member_probs[i]` holds every member's probability for image i. Deterministic: equal
/// weights unless a grid point is strictly better, then the first best in grid order.
pub fn fit_vote_weights(member_probs: &[Vec<f32>], truth: &[bool]) -> Vec<f64> {
    const STEPS: usize = 20;
    let k = member_probs.first().map_or(0, Vec::len);
    if k == 0 {
        return Vec::new();
    }
    let log_loss = |w: &[f64]| -> f64 {
        member_probs
            .iter()
            .zip(truth)
            .map(|(p, &t)| {
                let q = soft_vote(p, w).clamp(1e-6, 1.0 - 1e-6);
                -(if t { q.ln() } else { (1.0 - q).ln() })
            })
            .sum()
    };
    // Start from equal weights; every composition of STEPS into k parts is a candidate.
    let mut best = (log_loss(&vec![1.0 / k as f64; k]), vec![1.0 / k as f64; k]);
    let mut parts = vec![0usize; k];
    fn visit(i: usize, left: usize, parts: &mut Vec<usize>, f: &mut dyn FnMut(&[usize])) {
        if i + 1 == parts.len() {
            parts[i] = left;
            f(parts);
            return;
        }
        for take in 0..=left {
            parts[i] = take;
            visit(i + 1, left - take, parts, f);
        }
    }
    visit(0, STEPS, &mut parts, &mut |p| {
        let w: Vec<f64> = p.iter().map(|&n| n as f64 / STEPS as f64).collect();
        let loss = log_loss(&w);
        if loss < best.0 - 1e-9 {
            best = (loss, w);
        }
    });
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voting_weights_go_to_the_member_that_knows() {
        // Member 0 is right with confidence 0.9, members 1–3 guess.
        let truth: Vec<bool> = (0..200).map(|i| i % 3 == 0).collect();
        let probs: Vec<Vec<f32>> = truth
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let guess = |s: usize| ((i * 7919 + s * 104_729) % 100) as f32 / 100.0;
                vec![if t { 0.9 } else { 0.1 }, guess(1), guess(2), guess(3)]
            })
            .collect();
        let w = fit_vote_weights(&probs, &truth);
        assert_eq!(w.len(), 4);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{w:?}");
        assert!(w[0] >= 0.8, "{w:?}");
    }

    #[test]
    fn soft_and_hard_votes_of_four_members() {
        let p = [0.9f32, 0.8, 0.2, 0.3];
        assert!((soft_vote(&p, &[0.25; 4]) - 0.55).abs() < 1e-6);
        assert!((soft_vote(&p, &[0.0, 0.0, 0.5, 0.5]) - 0.25).abs() < 1e-6);
        let half = [0.5; 4];
        // 2 of 4: a tie, broken by the mean margin +0.05.
        assert_eq!(hard_vote(&p, &half), (0.5, true));
        assert_eq!(hard_vote(&[0.9, 0.6, 0.7, 0.1], &half), (0.75, true));
        assert_eq!(hard_vote(&[0.9, 0.1, 0.2, 0.1], &half), (0.25, false));
        // Each member against its own threshold: 0.8 < 0.85 and 0.3 > 0.25 → still 2 of 4, with
        // the mean margin (0.4 − 0.05 − 0.3 + 0.05)/4 = +0.025, or −0.0125 when the third
        // member's threshold is 0.65.
        assert_eq!(hard_vote(&p, &[0.5, 0.85, 0.5, 0.25]), (0.5, true));
        assert_eq!(hard_vote(&p, &[0.5, 0.85, 0.65, 0.25]), (0.5, false));
    }

    #[test]
    fn an_ensemble_file_round_trips() {
        let device = Device::flex();
        let configs = Family::ALL
            .iter()
            .map(|&f| MemberConfig::new(f).with_width(4))
            .collect();
        let mut e = Ensemble::init(configs, &device);
        e.header.vote_weights = vec![0.4, 0.3, 0.2, 0.05, 0.05];
        e.header.member_thresholds = vec![0.5, 0.4, 0.6, 0.45, 0.2];
        e.header.vote_threshold = 0.47;
        let bytes = e.to_bytes().expect("serialises");
        let back = Ensemble::from_bytes(&bytes, &device).expect("reads");
        assert_eq!(back.header.member_thresholds, e.header.member_thresholds);
        assert_eq!(back.header.vote_threshold, e.header.vote_threshold);
        assert!(back.header.realistic(0.48) && !back.header.realistic(0.47));
        // Files from before the thresholds: ½ everywhere.
        let mut old = serde_json::to_value(&e.header).expect("json");
        let fields = old.as_object_mut().expect("object");
        fields.remove("member_thresholds");
        fields.remove("vote_threshold");
        let old: EnsembleHeader = serde_json::from_value(old).expect("old header");
        assert_eq!(old.member_thresholds(), vec![0.5; 5]);
        assert!(old.realistic(0.51) && !old.realistic(0.5));
        let x = Tensor::<4>::ones([2, 1, INPUT_SIDE_PX, INPUT_SIDE_PX], &device);
        let stats = Tensor::<2>::ones([2, RING_FEATURES], &device);
        let (a, b) = (
            e.member_probabilities(x.clone(), stats.clone()),
            back.member_probabilities(x, stats),
        );
        assert_eq!(a.dims(), [2, 5]);
        assert_eq!(a.into_data(), b.into_data());
        assert!(Ensemble::from_bytes(&bytes[..bytes.len() - 3], &device).is_err());
    }

    #[test]
    fn a_pattern_gate_travels_with_the_file_and_stops_frames_below_its_threshold() {
        let device = Device::flex();
        let configs = vec![
            MemberConfig::new(Family::Resnet).with_width(4),
            MemberConfig::new(Family::Rings).with_width(4),
        ];
        let mut e = Ensemble::init(configs, &device);
        let plain = e.to_bytes().expect("serialises");
        // Without a gate every frame goes to the vote, and the header has no "gate" key, so
        // files written before gates existed read the same.
        assert!(e.header.is_pattern(Some(0.0)) && e.header.is_pattern(None));
        assert!(!String::from_utf8_lossy(&plain).contains("\"gate\""));
        let x = Tensor::<4>::ones([3, 1, INPUT_SIDE_PX, INPUT_SIDE_PX], &device);
        let stats = Tensor::<2>::ones([3, RING_FEATURES], &device);
        assert!(e.pattern_probability(x.clone(), stats.clone()).is_none());
        // A header that claims a gate without its network (or the reverse) is not written.
        let gate_config = MemberConfig::new(Family::Rings).with_width(8);
        e.header.gate = Some(GateHeader {
            config: gate_config.clone(),
            threshold: 0.3,
            trained: "test".into(),
        });
        assert!(e.to_bytes().is_err());
        e.gate = Some(gate_config.init(&device));
        let bytes = e.to_bytes().expect("serialises");
        let back = Ensemble::from_bytes(&bytes, &device).expect("reads");
        assert_eq!(back.header.gate, e.header.gate);
        assert_eq!(back.members.len(), 2);
        let (a, b) = (
            e.pattern_probability(x.clone(), stats.clone())
                .expect("gate"),
            back.pattern_probability(x.clone(), stats.clone())
                .expect("gate"),
        );
        assert_eq!(a.dims(), [3, 1]);
        assert_eq!(a.into_data(), b.into_data());
        // The members are untouched by the gate.
        assert_eq!(
            e.member_probabilities(x.clone(), stats.clone()).into_data(),
            back.member_probabilities(x, stats).into_data()
        );
        assert!(back.header.is_pattern(Some(0.3)) && !back.header.is_pattern(Some(0.29)));
        // The gate's record is checked like a member's: a truncated file is refused.
        assert!(Ensemble::from_bytes(&bytes[..bytes.len() - 3], &device).is_err());
    }

    #[test]
    fn every_family_maps_a_batch_to_one_logit_each_from_its_own_input() {
        let device = Device::flex();
        let uniform = || Distribution::Uniform(0.0, 1.0);
        let x = Tensor::<4>::random([3, 1, INPUT_SIDE_PX, INPUT_SIDE_PX], uniform(), &device);
        let x2 = Tensor::<4>::random([3, 1, INPUT_SIDE_PX, INPUT_SIDE_PX], uniform(), &device);
        let stats = Tensor::<2>::random([3, RING_FEATURES], uniform(), &device);
        let stats2 = Tensor::<2>::random([3, RING_FEATURES], uniform(), &device);
        let mut sizes = Vec::new();
        for family in Family::ALL {
            let m = MemberConfig::new(family).with_width(8).init(&device);
            let values = |x: &Tensor<4>, s: &Tensor<2>| {
                let y = m.forward(x.clone(), s.clone());
                assert_eq!(y.dims(), [3, 1], "{family:?}");
                y.into_data().try_to_vec::<f32>().expect("f32")
            };
            let y = values(&x, &stats);
            assert!(y.iter().all(|v| v.is_finite()), "{family:?}: {y:?}");
            // The rings perceptron reads only the statistics, the others only the image.
            let (same, changed) = if family == Family::Rings {
                (values(&x2, &stats), values(&x, &stats2))
            } else {
                (values(&x, &stats2), values(&x2, &stats))
            };
            assert_eq!(y, same, "{family:?}");
            assert_ne!(y, changed, "{family:?}");
            sizes.push(m.num_params());
        }
        // Five genuinely different networks (no two the same size).
        let mut unique = sizes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 5, "{sizes:?}");
    }

    #[test]
    fn the_embedding_weighs_each_voting_member_by_the_root_of_its_weight() {
        let device = Device::flex();
        let configs = Family::ALL
            .iter()
            .map(|&f| MemberConfig::new(f).with_width(4))
            .collect();
        let mut e = Ensemble::init(configs, &device);
        // The rings member does not vote: it is left out of the embedding.
        e.header.vote_weights = vec![0.4, 0.3, 0.2, 0.1, 0.0];
        let uniform = || Distribution::Uniform(0.0, 1.0);
        let x = Tensor::<4>::random([3, 1, INPUT_SIDE_PX, INPUT_SIDE_PX], uniform(), &device);
        let stats = Tensor::<2>::random([3, RING_FEATURES], uniform(), &device);
        // Width 4: 2 × 4 × 4 pooled channels for each CNN and the ViT.
        assert_eq!(e.embedding_width(), 4 * 32);
        assert_eq!(e.members[4].feature_width(), 32);
        let emb = e.embedding(x, stats);
        assert_eq!(emb.dims(), [3, 4 * 32]);
        let values = emb.into_data().try_to_vec::<f32>().expect("f32");
        for row in values.chunks_exact(4 * 32) {
            // Each member's block has squared length wₖ; the whole row Σwₖ = 1.
            let block = |k: usize| -> f32 { row[k * 32..(k + 1) * 32].iter().map(|v| v * v).sum() };
            for (k, w) in [0.4f32, 0.3, 0.2, 0.1].iter().enumerate() {
                assert!(
                    (block(k) - w).abs() < 1e-4,
                    "member {k}: {} vs {w}",
                    block(k)
                );
            }
        }
    }
}
