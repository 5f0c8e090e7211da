//! The denoising U-Net shared by every diffusion model (the scattering latent model and the
//! mask-conditioned TEM model).
//!
//! Architecture (in the spirit of Ho et al. 2020 and Dhariwal & Nichol 2021, scaled down):
//! - the time t is embedded sinusoidally (as the position of a token at 1000·t), then by a
//!   two-layer perceptron with SiLU to `4 × base_width`;
//! - a tag vector (15 tags for scattering) enters through one linear layer added to the time
//!   embedding, together with a "tags given" flag: training drops the tags (flag 0) for a share
//!   of the batch, so the same network also predicts unconditionally and classifier-free
//!   guidance works;
//! - condition planes (a boundary mask and its distance transform for TEM) are concatenated to
//!   the noisy input;
//! - each level has residual blocks (GroupNorm, SiLU, 3×3 convolution, the embedding added as a
//!   per-channel shift, GroupNorm, SiLU, 3×3 convolution), then a stride-2 convolution down; the
//!   middle has a residual block, multi-head self-attention over all positions and a residual
//!   block; the way up doubles the resolution (nearest neighbour, then a 3×3 convolution) and
//!   joins the skip of the same level;
//! - the output convolution starts at zero, so an untrained network predicts v = 0 (or ε = 0).
//!
//! Inputs must have a height and width that are multiples of [`DenoiserConfig::multiple_px`].

use super::sampler::{Denoise, Prediction, SamplerError};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor, TensorData};

/// Shape of a [`Denoiser`].
#[derive(Config, Debug, PartialEq)]
pub struct DenoiserConfig {
    /// Channels of the data being denoised (the latent's channels).
    pub channels: usize,
    /// Condition planes concatenated to the input (0: none).
    #[config(default = 0)]
    pub condition_channels: usize,
    /// Condition planes read by a ControlNet-style branch (0: none; Zhang et al. 2023): a
    /// trainable copy of the way down and the middle that sees the planes, added to this
    /// network's skips and middle through zero-initialised 1 × 1 convolutions, while the rest
    /// (trained without them) stays frozen. See [`Denoiser::with_control`]. `None` (files
    /// written before the field existed) is 0.
    pub control_channels: Option<usize>,
    /// Length of the tag vector (0: no tags).
    #[config(default = 0)]
    pub tags: usize,
    /// Channels at full resolution.
    #[config(default = 32)]
    pub base_width: usize,
    /// Width multiplier per level, from full resolution down; one stride-2 step between levels.
    #[config(default = "vec![1, 2, 2]")]
    pub multipliers: Vec<usize>,
    /// Residual blocks per level on the way down (the way up has as many).
    #[config(default = 1)]
    pub blocks_per_level: usize,
    /// Heads of the self-attention in the middle (must divide the coarsest width).
    #[config(default = 4)]
    pub attention_heads: usize,
    /// Groups of every GroupNorm (must divide every width).
    #[config(default = 8)]
    pub groups: usize,
    /// Convolve, pool and upsample along the height only (kernels 3 × 1): the input is a
    /// `[batch, channels, length, 1]` sequence whose channels carry the second axis (the
    /// scattering generator's polar image: rows of q, the χ bins as channels).
    #[config(default = false)]
    pub one_dimensional: bool,
    /// Self-attention in the middle: `None` (files written before the field existed) or
    /// `Some(true)` has it; `Some(false)` leaves it out, so the network is purely convolutional
    /// and its cost grows linearly with the image (the TEM generator samples up to 1024²).
    pub attention: Option<bool>,
    /// Levels (0: full resolution) whose way up ends with multi-head self-attention over all
    /// positions, besides the middle's: where features are finer than the middle's, so distant
    /// rows can agree on exact positions (a lattice's ring ratios). `None` (files written
    /// before the field existed) has none. Their output projection starts at zero, so adding
    /// them to a trained network changes nothing until training moves them
    /// ([`Denoiser::with_up_attention`]).
    pub up_attention: Option<Vec<usize>>,
}

impl crate::weights::Shape for DenoiserConfig {
    /// Each level's residual blocks end in a convolution of the level's width onto itself (3
    /// taps at least: 3 × 1 in one-dimensional networks); the input convolution reads the
    /// channels and planes.
    fn min_parameters(&self) -> usize {
        let blocks = self.multipliers.iter().fold(0usize, |sum, &m| {
            let w = self.base_width.saturating_mul(m);
            sum.saturating_add(
                w.saturating_mul(w)
                    .saturating_mul(3)
                    .saturating_mul(self.blocks_per_level),
            )
        });
        let input = self
            .channels
            .saturating_add(self.condition_channels)
            .saturating_mul(self.base_width)
            .saturating_mul(3);
        blocks.saturating_add(input)
    }
}

impl DenoiserConfig {
    /// Planes read by the ControlNet-style branch (0: none).
    pub fn control_planes(&self) -> usize {
        self.control_channels.unwrap_or(0)
    }

    /// Height (and, unless one-dimensional, width) of the input must be a multiple of this.
    pub fn multiple_px(&self) -> usize {
        1 << self.multipliers.len().saturating_sub(1)
    }

    fn width(&self, level: usize) -> usize {
        self.base_width * self.multipliers[level]
    }

    fn embedding_width(&self) -> usize {
        4 * self.base_width
    }

    /// Checks that the shape can be built.
    pub fn validate(&self) -> Result<(), String> {
        if self.multipliers.is_empty() || self.multipliers.contains(&0) {
            return Err("multipliers must be a non-empty list of positive numbers".into());
        }
        if self.channels == 0 || self.base_width == 0 || self.blocks_per_level == 0 {
            return Err("channels, base width and blocks per level must be positive".into());
        }
        for l in 0..self.multipliers.len() {
            if self.groups == 0 || !self.width(l).is_multiple_of(self.groups) {
                return Err(format!(
                    "{} groups do not divide width {}",
                    self.groups,
                    self.width(l)
                ));
            }
        }
        let top = self.width(self.multipliers.len() - 1);
        if self.attention_heads == 0 || !top.is_multiple_of(self.attention_heads) {
            return Err(format!(
                "{} heads do not divide width {top}",
                self.attention_heads
            ));
        }
        let up = self.up_attention.as_deref().unwrap_or(&[]);
        for (i, &l) in up.iter().enumerate() {
            if l >= self.multipliers.len() || up[..i].contains(&l) {
                return Err(format!(
                    "attention on the way up at level {l}: levels are 0 to {} and named once",
                    self.multipliers.len() - 1
                ));
            }
            if !self.width(l).is_multiple_of(self.attention_heads) {
                return Err(format!(
                    "{} heads do not divide width {} of level {l}",
                    self.attention_heads,
                    self.width(l)
                ));
            }
        }
        Ok(())
    }

    /// One entry per level of the way up, coarsest first (the order of `Denoiser::up`): the
    /// level's self-attention, output projection at zero, where `up_attention` names it.
    fn up_attention_layers(&self, device: &Device) -> Vec<Option<Attention>> {
        let named = self.up_attention.as_deref().unwrap_or(&[]);
        (0..self.multipliers.len())
            .rev()
            .map(|l| {
                named.contains(&l).then(|| {
                    Attention::new(self.width(l), self.attention_heads, self.groups, device)
                        .silent(device)
                })
            })
            .collect()
    }

    /// Builds the network with freshly initialised weights on `device`.
    ///
    /// # Panics
    /// When [`DenoiserConfig::validate`] fails.
    pub fn init(&self, device: &Device) -> Denoiser {
        if let Err(e) = self.validate() {
            panic!("invalid denoiser shape: {e}");
        }
        let emb = self.embedding_width();
        let levels = self.multipliers.len();
        let d1 = self.one_dimensional;
        let input = conv3(
            self.channels + self.condition_channels,
            self.width(0),
            d1,
            device,
        );
        let mut down = Vec::new();
        let mut downsample = Vec::new();
        let mut width = self.width(0);
        for l in 0..levels {
            let blocks = (0..self.blocks_per_level)
                .map(|b| {
                    let i = if b == 0 { width } else { self.width(l) };
                    ResBlock::new(i, self.width(l), emb, self.groups, d1, device)
                })
                .collect();
            down.push(blocks);
            width = self.width(l);
            if l + 1 < levels {
                downsample.push(down2(width, d1, device));
            }
        }
        let mid1 = ResBlock::new(width, width, emb, self.groups, d1, device);
        let attention = Attention::new(width, self.attention_heads, self.groups, device);
        let mid2 = ResBlock::new(width, width, emb, self.groups, d1, device);
        // Up, from the coarsest level: join the level's skip, then blocks, then double.
        let mut up = Vec::new();
        let mut upsample = Vec::new();
        for l in (0..levels).rev() {
            let blocks = (0..self.blocks_per_level)
                .map(|b| {
                    let i = if b == 0 {
                        width + self.width(l)
                    } else {
                        self.width(l)
                    };
                    ResBlock::new(i, self.width(l), emb, self.groups, d1, device)
                })
                .collect();
            up.push(blocks);
            width = self.width(l);
            if l > 0 {
                upsample.push(conv3(width, self.width(l - 1), d1, device));
                width = self.width(l - 1);
            }
        }
        let tags = (self.tags > 0).then(|| LinearConfig::new(self.tags + 1, emb).init(device));
        let control = (self.control_planes() > 0).then(|| {
            let base = DenoiserConfig {
                control_channels: None,
                condition_channels: self.condition_channels + self.control_planes(),
                ..self.clone()
            }
            .init(device);
            ControlBranch::copy_of(base.input.clone(), &base.encoder(), self.widths(), device)
        });
        Denoiser {
            time1: LinearConfig::new(self.base_width, emb).init(device),
            time2: LinearConfig::new(emb, emb).init(device),
            tags,
            input,
            down,
            downsample,
            mid1,
            attention,
            mid2,
            up,
            upsample,
            up_attention: self.up_attention_layers(device),
            out_norm: GroupNormConfig::new(self.groups, self.width(0)).init(device),
            output: Conv2dConfig::new([self.width(0), self.channels], kernel(d1))
                .with_padding(PaddingConfig2d::Same)
                .with_initializer(Initializer::Zeros)
                .init(device),
            one_dimensional: d1,
            attend: self.attention != Some(false),
            base_width: self.base_width,
            tag_count: self.tags,
            condition_channels: self.condition_channels,
            control,
            control_channels: self.control_planes(),
        }
    }

    /// The width of each level, from full resolution down.
    fn widths(&self) -> Vec<usize> {
        (0..self.multipliers.len()).map(|l| self.width(l)).collect()
    }
}

/// `conv` reading `extra` more input channels, with zero weights: its output is unchanged until
/// training moves them.
fn widen_input(mut conv: Conv2d, extra: usize) -> Result<Conv2d, String> {
    let weight = conv.weight.val();
    let [out, inputs, kh, kw] = weight.dims();
    let device = weight.device();
    // Rebuilt from its values: the widened weight must be a new leaf of the autodiff graph.
    let old = weight
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let per_out = inputs * kh * kw;
    let mut values = Vec::with_capacity(out * (inputs + extra) * kh * kw);
    for o in old.chunks(per_out) {
        values.extend_from_slice(o);
        values.extend(std::iter::repeat_n(0.0f32, extra * kh * kw));
    }
    let widened = TensorData::new(values, [out, inputs + extra, kh, kw]);
    conv.weight = Param::from_tensor(Tensor::from_data(widened, &device));
    Ok(conv)
}

/// 3 × 3, or 3 × 1 along the height only.
fn kernel(one_dimensional: bool) -> [usize; 2] {
    if one_dimensional { [3, 1] } else { [3, 3] }
}

/// A 3 × 3 (or 3 × 1) convolution keeping the size.
pub(crate) fn conv3(i: usize, o: usize, one_dimensional: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], kernel(one_dimensional))
        .with_padding(PaddingConfig2d::Same)
        .init(device)
}

/// A stride-2 convolution halving the size (the height only, if one-dimensional).
pub(crate) fn down2(c: usize, one_dimensional: bool, device: &Device) -> Conv2d {
    let (stride, pad_w) = if one_dimensional {
        ([2, 1], 0)
    } else {
        ([2, 2], 1)
    };
    Conv2dConfig::new([c, c], kernel(one_dimensional))
        .with_stride(stride)
        .with_padding(PaddingConfig2d::Explicit(1, pad_w, 1, pad_w))
        .init(device)
}

/// Sinusoidal features of the times: `[sin(1000·t·ωₖ), cos(1000·t·ωₖ)]` with
/// ωₖ = 10000^(−k/(d/2)), as the transformer's position encoding.
///
/// # Shapes
/// - output: row-major `[times.len(), dim]`
pub fn time_features(times: &[f32], dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let mut out = vec![0.0; times.len() * dim];
    for (i, &t) in times.iter().enumerate() {
        for k in 0..half {
            let w = libm::exp(-(10_000f64).ln() * k as f64 / half as f64);
            let a = 1000.0 * t as f64 * w;
            out[i * dim + k] = libm::sin(a) as f32;
            out[i * dim + half + k] = libm::cos(a) as f32;
        }
    }
    out
}

/// A residual block, with the embedding (if any) added as a per-channel shift.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    embedding: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    /// `emb` = 0: a block without embedding (the autoencoder's).
    pub(crate) fn new(
        i: usize,
        o: usize,
        emb: usize,
        groups: usize,
        one_dimensional: bool,
        device: &Device,
    ) -> Self {
        Self {
            norm1: GroupNormConfig::new(groups, i).init(device),
            conv1: conv3(i, o, one_dimensional, device),
            embedding: (emb > 0).then(|| LinearConfig::new(emb, o).init(device)),
            norm2: GroupNormConfig::new(groups, o).init(device),
            conv2: conv3(o, o, one_dimensional, device),
            skip: (i != o).then(|| Conv2dConfig::new([i, o], [1, 1]).init(device)),
        }
    }

    /// Channels out (o).
    fn out_channels(&self) -> usize {
        self.conv2.weight.val().dims()[0]
    }

    /// # Shapes
    /// - `x`: `[batch, i, h, w]`, `emb`: `[batch, embedding]` (already through SiLU) → `[batch, o, h, w]`
    pub(crate) fn forward(&self, x: Tensor<4>, emb: Option<Tensor<2>>) -> Tensor<4> {
        let mut h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        if let (Some(layer), Some(emb)) = (&self.embedding, emb) {
            let [b, o, _, _] = h.dims();
            h = h + layer.forward(emb).reshape([b, o, 1, 1]);
        }
        let h = self.conv2.forward(silu(self.norm2.forward(h)));
        match &self.skip {
            Some(s) => s.forward(x) + h,
            None => x + h,
        }
    }
}

/// Multi-head self-attention over all positions, with a residual connection.
#[derive(Module, Debug)]
pub struct Attention {
    norm: GroupNorm,
    mha: MultiHeadAttention,
}

impl Attention {
    fn new(c: usize, heads: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm: GroupNormConfig::new(groups, c).init(device),
            mha: MultiHeadAttentionConfig::new(c, heads)
                .with_dropout(0.0)
                .init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, c, h, w]` → same
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        // [b, h·w, c]
        let tokens = self
            .norm
            .forward(x.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let out = self.mha.forward(MhaInput::self_attn(tokens)).context;
        x + out.swap_dims(1, 2).reshape([b, c, h, w])
    }

    /// The same layer with its output projection at zero: it adds nothing until trained.
    fn silent(mut self, device: &Device) -> Self {
        let c = self.mha.d_model;
        self.mha.output = LinearConfig::new(c, c)
            .with_initializer(Initializer::Zeros)
            .init(device);
        self
    }
}

/// Doubles height and width (or the height only) by repeating each value (nearest neighbour).
///
/// # Shapes
/// - `[b, c, h, w]` → `[b, c, 2h, 2w]`, or `[b, c, 2h, w]` if one-dimensional
pub(crate) fn upsample_nearest(x: Tensor<4>, one_dimensional: bool) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    if one_dimensional {
        return x
            .reshape([b, c, h, 1, w])
            .expand([b, c, h, 2, w])
            .reshape([b, c, 2 * h, w]);
    }
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

/// What the network is conditioned on, for one batch.
#[derive(Debug, Clone)]
pub struct Condition {
    /// Condition planes, `[batch, condition_channels, h, w]`; `None` when the network has none.
    pub planes: Option<Tensor<4>>,
    /// Tag vectors (1 = wanted, 0 = not), `[batch, tags]`; `None` when the network has none.
    pub tags: Option<Tensor<2>>,
    /// 1 where the tags are given, 0 for the unconditional prediction, `[batch, 1]`.
    pub tags_given: Option<Tensor<2>>,
}

impl Condition {
    /// No condition at all.
    pub fn none() -> Self {
        Self {
            planes: None,
            tags: None,
            tags_given: None,
        }
    }

    /// Tags given for every item.
    ///
    /// # Shapes
    /// - `tags`: `[batch, n]`
    pub fn tags(tags: Tensor<2>) -> Self {
        let [b, _] = tags.dims();
        let device = tags.device();
        Self {
            planes: None,
            tags: Some(tags),
            tags_given: Some(Tensor::ones([b, 1], &device)),
        }
    }
}

/// The denoising U-Net. Built by [`DenoiserConfig::init`].
#[derive(Module, Debug)]
pub struct Denoiser {
    time1: Linear,
    time2: Linear,
    tags: Option<Linear>,
    input: Conv2d,
    down: Vec<Vec<ResBlock>>,
    downsample: Vec<Conv2d>,
    mid1: ResBlock,
    attention: Attention,
    mid2: ResBlock,
    up: Vec<Vec<ResBlock>>,
    upsample: Vec<Conv2d>,
    /// Self-attention at the end of each level of the way up (coarsest first), where the
    /// config's `up_attention` names the level.
    up_attention: Vec<Option<Attention>>,
    out_norm: GroupNorm,
    output: Conv2d,
    base_width: usize,
    tag_count: usize,
    condition_channels: usize,
    one_dimensional: bool,
    /// Whether the middle's self-attention runs (its weights exist either way, so files of
    /// both kinds have the same layout).
    attend: bool,
    /// The ControlNet-style branch, if any.
    control: Option<ControlBranch>,
    control_channels: usize,
}

/// The layers of a way down and a middle: the network's own, or its branch's copy.
struct Encoder<'a> {
    input: &'a Conv2d,
    down: &'a [Vec<ResBlock>],
    downsample: &'a [Conv2d],
    mid1: &'a ResBlock,
    attention: &'a Attention,
    mid2: &'a ResBlock,
    attend: bool,
}

impl Encoder<'_> {
    /// The features after the middle and the skip of each level, finest first.
    ///
    /// # Shapes
    /// - `x`: `[batch, input channels, h, w]`, `emb`: `[batch, embedding]`
    /// - output: `[batch, top width, h / 2^(levels−1), w / …]` and `[batch, width(l), h / 2^l, …]`
    fn forward(&self, x: Tensor<4>, emb: &Tensor<2>) -> (Tensor<4>, Vec<Tensor<4>>) {
        let mut h = self.input.forward(x);
        let mut skips = Vec::with_capacity(self.down.len());
        for (l, blocks) in self.down.iter().enumerate() {
            for block in blocks {
                h = block.forward(h, Some(emb.clone()));
            }
            skips.push(h.clone());
            if let Some(d) = self.downsample.get(l) {
                h = d.forward(h);
            }
        }
        h = self.mid1.forward(h, Some(emb.clone()));
        if self.attend {
            h = self.attention.forward(h);
        }
        (self.mid2.forward(h, Some(emb.clone())), skips)
    }
}

/// The ControlNet-style branch of a [`Denoiser`]: a copy of its way down and middle whose input
/// convolution also reads the condition planes (with zero weights at first), and one
/// zero-initialised 1 × 1 convolution per level's skip and for the middle, whose outputs are
/// added to the network's own. At creation it changes nothing: the network's output is its
/// base's until training moves the zero convolutions.
#[derive(Module, Debug)]
pub struct ControlBranch {
    input: Conv2d,
    down: Vec<Vec<ResBlock>>,
    downsample: Vec<Conv2d>,
    mid1: ResBlock,
    attention: Attention,
    mid2: ResBlock,
    /// One per level (its width), then the middle.
    zero: Vec<Conv2d>,
}

impl ControlBranch {
    /// A copy of `source` with `input` (which reads the planes) in front; `widths` are the
    /// levels' widths. Shares no parameter with the original layers.
    fn copy_of(input: Conv2d, source: &Encoder<'_>, widths: Vec<usize>, device: &Device) -> Self {
        let mut fresh = FreshParams;
        let top = widths.last().copied().unwrap_or(0);
        let zero = widths
            .into_iter()
            .chain(std::iter::once(top))
            .map(|c| {
                Conv2dConfig::new([c, c], [1, 1])
                    .with_initializer(Initializer::Zeros)
                    .init(device)
            })
            .collect();
        Self {
            input: input.map(&mut fresh),
            down: source.down.to_vec().map(&mut fresh),
            downsample: source.downsample.to_vec().map(&mut fresh),
            mid1: source.mid1.clone().map(&mut fresh),
            attention: source.attention.clone().map(&mut fresh),
            mid2: source.mid2.clone().map(&mut fresh),
            zero,
        }
    }

    fn encoder(&self, attend: bool) -> Encoder<'_> {
        Encoder {
            input: &self.input,
            down: &self.down,
            downsample: &self.downsample,
            mid1: &self.mid1,
            attention: &self.attention,
            mid2: &self.mid2,
            attend,
        }
    }
}

/// Gives every parameter a new identity and a new leaf of the autodiff graph (same values),
/// so a copy of layers trains apart from its original.
struct FreshParams;

impl burn::module::ModuleMapper for FreshParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let value = param.val();
        let device = value.device();
        Param::from_tensor(Tensor::from_data(value.into_data(), &device))
    }
}

impl Denoiser {
    /// The L2 norm of the input convolution's weights on each input channel (the image's
    /// channels first, then the condition planes in the order they were added): how strongly
    /// the network reads a plane, for example one added with zero weights for a warm start.
    ///
    /// # Errors
    /// When the weights cannot be read back from the device.
    pub fn input_weight_norms(&self) -> Result<Vec<f32>, String> {
        let weight = self.input.weight.val();
        // [out, inputs, kh, kw]
        let [_, inputs, kh, kw] = weight.dims();
        let values = weight
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        let per_input = kh * kw;
        let mut squares = vec![0f32; inputs];
        for (i, chunk) in values.chunks(per_input).enumerate() {
            squares[i % inputs] += chunk.iter().map(|v| v * v).sum::<f32>();
        }
        Ok(squares.into_iter().map(f32::sqrt).collect())
    }

    /// The same network with `extra` more condition planes, read with zero weights by the
    /// input convolution: its output is unchanged until training moves them.
    ///
    /// # Errors
    /// When the weights cannot be read back from the device.
    pub fn with_condition_channels(mut self, extra: usize) -> Result<Self, String> {
        self.input = widen_input(self.input, extra)?;
        self.condition_channels += extra;
        Ok(self)
    }

    /// The same network with `by` added to every weight of the input and output convolutions,
    /// so that planes read with zero weights are read and a zero-initialised output speaks
    /// (tests only).
    #[cfg(test)]
    pub(crate) fn with_outer_weights_shifted(mut self, by: f32) -> Self {
        self.input.weight = Param::from_tensor(self.input.weight.val().add_scalar(by));
        self.output.weight = Param::from_tensor(self.output.weight.val().add_scalar(by));
        self
    }

    fn encoder(&self) -> Encoder<'_> {
        Encoder {
            input: &self.input,
            down: &self.down,
            downsample: &self.downsample,
            mid1: &self.mid1,
            attention: &self.attention,
            mid2: &self.mid2,
            attend: self.attend,
        }
    }

    /// This network (trained without condition planes) as the frozen base of a ControlNet-style
    /// branch that reads `planes` condition planes: a copy of its way down and middle, whose
    /// input convolution reads the planes with zero weights, joined through zero-initialised
    /// 1 × 1 convolutions, so the output is unchanged until training moves them. Call
    /// [`Denoiser::freeze_base`] on the network that is trained.
    ///
    /// # Errors
    /// When the network already reads planes or has a branch, or its weights cannot be read.
    pub fn with_control(mut self, planes: usize) -> Result<Self, String> {
        if self.condition_channels > 0 || self.control.is_some() || planes == 0 {
            return Err(
                "a ControlNet-style branch needs a base trained without condition planes".into(),
            );
        }
        let device = self.input.weight.val().device();
        let widths: Vec<usize> = self
            .down
            .iter()
            .filter_map(|level| level.last())
            .map(ResBlock::out_channels)
            .collect();
        let input = widen_input(self.input.clone(), planes)?;
        self.control = Some(ControlBranch::copy_of(
            input,
            &self.encoder(),
            widths,
            &device,
        ));
        self.control_channels = planes;
        Ok(self)
    }

    /// Stops the gradients of everything but the ControlNet-style branch (for training the
    /// branch on a frozen base); a network without a branch is returned as it is.
    pub fn freeze_base(mut self) -> Self {
        if self.control.is_none() {
            return self;
        }
        self.time1 = self.time1.no_grad();
        self.time2 = self.time2.no_grad();
        self.tags = self.tags.map(Module::no_grad);
        self.input = self.input.no_grad();
        self.down = self.down.no_grad();
        self.downsample = self.downsample.no_grad();
        self.mid1 = self.mid1.no_grad();
        self.attention = self.attention.no_grad();
        self.mid2 = self.mid2.no_grad();
        self.up = self.up.no_grad();
        self.upsample = self.upsample.no_grad();
        self.up_attention = self.up_attention.no_grad();
        self.out_norm = self.out_norm.no_grad();
        self.output = self.output.no_grad();
        self
    }

    /// The same network with self-attention at the end of the way up of the levels that
    /// `config` (this network's shape, with `up_attention` set) names. Each new layer's output
    /// projection is zero, so the output is unchanged until training moves it (a warm start);
    /// layers the network has already are kept.
    ///
    /// # Errors
    /// When `config` fails [`DenoiserConfig::validate`] or has another number of levels.
    pub fn with_up_attention(
        mut self,
        config: &DenoiserConfig,
        device: &Device,
    ) -> Result<Self, String> {
        config.validate()?;
        if config.multipliers.len() != self.up.len() {
            return Err(format!(
                "the shape has {} levels, the network {}",
                config.multipliers.len(),
                self.up.len()
            ));
        }
        let fresh = config.up_attention_layers(device);
        let kept = std::mem::take(&mut self.up_attention);
        self.up_attention = fresh
            .into_iter()
            .zip(kept.into_iter().chain(std::iter::repeat_with(|| None)))
            .map(|(new, old)| old.or(new))
            .collect();
        Ok(self)
    }

    /// Whether the network has a ControlNet-style branch.
    pub fn has_control(&self) -> bool {
        self.control.is_some()
    }

    /// The network output for a noisy batch at per-item times.
    ///
    /// # Shapes
    /// - `x_t`: `[batch, channels, h, w]`, h and w multiples of [`DenoiserConfig::multiple_px`]
    /// - `times`: `batch` values in [0, 1], or one value for the whole batch
    /// - `condition.planes`: `[batch, condition_channels, h, w]`; `condition.tags`:
    ///   `[batch, tags]`; `condition.tags_given`: `[batch, 1]` (ones when absent)
    /// - output: `[batch, channels, h, w]`
    pub fn forward(&self, x_t: Tensor<4>, times: &[f32], condition: &Condition) -> Tensor<4> {
        let [b, _, _, _] = x_t.dims();
        let device = x_t.device();
        let times: Vec<f32> = if times.len() == 1 {
            vec![times[0]; b]
        } else {
            times.to_vec()
        };
        let features = Tensor::<2>::from_data(
            TensorData::new(time_features(&times, self.base_width), [b, self.base_width]),
            &device,
        );
        let mut emb = self.time2.forward(silu(self.time1.forward(features)));
        if let Some(layer) = &self.tags {
            let given = condition
                .tags_given
                .clone()
                .unwrap_or_else(|| Tensor::ones([b, 1], &device));
            let tags = condition
                .tags
                .clone()
                .unwrap_or_else(|| Tensor::zeros([b, self.tag_count], &device));
            // Dropped items see all-zero tags and flag 0: one learnt "unconditional" input.
            let input = Tensor::cat(vec![tags * given.clone(), given], 1);
            emb = emb + layer.forward(input);
        }
        let emb = silu(emb);
        let planes = |c: usize, h: usize, w: usize| match &condition.planes {
            Some(p) => p.clone(),
            None => Tensor::zeros([b, c, h, w], &device),
        };
        let [_, _, height, width] = x_t.dims();
        let x = match self.condition_channels {
            0 => x_t.clone(),
            c => Tensor::cat(vec![x_t.clone(), planes(c, height, width)], 1),
        };
        let (mut h, mut skips) = self.encoder().forward(x, &emb);
        if let Some(branch) = &self.control {
            // [x_t, planes]: the branch's input convolution reads both.
            let x = Tensor::cat(vec![x_t, planes(self.control_channels, height, width)], 1);
            let (hc, skips_c) = branch.encoder(self.attend).forward(x, &emb);
            // One zero convolution per level's skip, then the middle's.
            if let Some((zero_mid, zero_skips)) = branch.zero.split_last() {
                skips = skips
                    .into_iter()
                    .zip(skips_c)
                    .zip(zero_skips)
                    .map(|((s, sc), z)| s + z.forward(sc))
                    .collect();
                h = h + zero_mid.forward(hc);
            }
        }
        for (i, blocks) in self.up.iter().enumerate() {
            let skip = skips.pop().unwrap_or_else(|| h.clone());
            h = Tensor::cat(vec![h, skip], 1);
            for block in blocks {
                h = block.forward(h, Some(emb.clone()));
            }
            if let Some(Some(attention)) = self.up_attention.get(i) {
                h = attention.forward(h);
            }
            if let Some(u) = self.upsample.get(i) {
                h = u.forward(upsample_nearest(h, self.one_dimensional));
            }
        }
        self.output.forward(silu(self.out_norm.forward(h)))
    }
}

/// A denoiser with its condition and classifier-free guidance, ready for a sampler:
/// `out = out(∅) + g·(out(tags) − out(∅))` (Ho & Salimans 2022). g = 1 is the conditional
/// network, g = 0 the unconditional one; g > 1 follows the tags more closely.
///
/// With plane guidance ([`Guided::with_plane_guidance`]) the planes get a scale of their own,
/// as InstructPix2Pix guides its two conditions (Brooks et al. 2023), here only where the
/// planes speak:
/// `out = out(∅, P₀) + (1 + (g_p − 1)·m)·(out(∅, P) − out(∅, P₀)) + g·(out(tags, P) − out(∅, P))`,
/// P the planes, P₀ the planes without what is guided, m ∈ [0, 1] where to guide them;
/// g_p = 1 (or m = 0) is plain guidance.
pub struct Guided<'a> {
    net: &'a Denoiser,
    prediction: Prediction,
    condition: Condition,
    guidance: f32,
    plane_guidance: Option<PlaneGuidance>,
}

/// What [`Guided::with_plane_guidance`] adds.
struct PlaneGuidance {
    /// P₀, `[batch, condition_channels, h, w]`.
    unmarked: Tensor<4>,
    /// g_p.
    scale: f32,
    /// m, broadcast to the output (`[batch, 1, h, w]` or `[batch, 1, h, 1]`).
    mask: Tensor<4>,
}

impl<'a> Guided<'a> {
    /// `condition.tags_given` is ignored: the conditional branch has the tags, the unconditional
    /// one none.
    pub fn new(
        net: &'a Denoiser,
        prediction: Prediction,
        condition: Condition,
        guidance: f32,
    ) -> Result<Self, SamplerError> {
        if !guidance.is_finite() || guidance < 0.0 {
            return Err(SamplerError::Guidance(guidance.to_string()));
        }
        Ok(Self {
            net,
            prediction,
            condition,
            guidance,
            plane_guidance: None,
        })
    }

    /// The same guidance plus guidance by the condition planes at scale `scale` (g_p) where
    /// `mask` (m ∈ [0, 1], broadcast to the output) says, against `unmarked` (P₀: the planes
    /// without what is guided, for example the lattice-series plane at zero). Costs a third
    /// network evaluation per step.
    ///
    /// # Errors
    /// When the scale is negative or not finite.
    pub fn with_plane_guidance(
        mut self,
        unmarked: Tensor<4>,
        scale: f32,
        mask: Tensor<4>,
    ) -> Result<Self, SamplerError> {
        if !scale.is_finite() || scale < 0.0 {
            return Err(SamplerError::Guidance(format!("{scale} (plane guidance)")));
        }
        self.plane_guidance = Some(PlaneGuidance {
            unmarked,
            scale,
            mask,
        });
        Ok(self)
    }
}

impl Denoise for Guided<'_> {
    fn prediction(&self) -> Prediction {
        self.prediction
    }

    fn predict(&self, x_t: Tensor<4>, t: f32) -> Tensor<4> {
        let [b, _, _, _] = x_t.dims();
        let device = x_t.device();
        let with = |given: f32| Condition {
            planes: self.condition.planes.clone(),
            tags: self.condition.tags.clone(),
            tags_given: Some(Tensor::full([b, 1], given, &device)),
        };
        if let (Some(pg), Some(tags), Some(planes)) = (
            &self.plane_guidance,
            &self.condition.tags,
            &self.condition.planes,
        ) {
            // One forward pass on the tripled batch: [(tags, P); (∅, P); (∅, P₀)].
            let given = Tensor::cat(
                vec![
                    Tensor::ones([b, 1], &device),
                    Tensor::zeros([2 * b, 1], &device),
                ],
                0,
            );
            let three = Condition {
                planes: Some(Tensor::cat(
                    vec![planes.clone(), planes.clone(), pg.unmarked.clone()],
                    0,
                )),
                tags: Some(Tensor::cat(
                    vec![tags.clone(), tags.clone(), tags.clone()],
                    0,
                )),
                tags_given: Some(given),
            };
            let x3 = Tensor::cat(vec![x_t.clone(), x_t.clone(), x_t], 0);
            let out = self.net.forward(x3, &[t], &three);
            let c = out.clone().narrow(0, 0, b);
            let u = out.clone().narrow(0, b, b);
            let u0 = out.narrow(0, 2 * b, b);
            let plane_scale = pg.mask.clone().mul_scalar(pg.scale - 1.0).add_scalar(1.0);
            return u0.clone() + (u.clone() - u0) * plane_scale + (c - u).mul_scalar(self.guidance);
        }
        if self.condition.tags.is_none() || self.guidance == 1.0 {
            return self.net.forward(x_t, &[t], &with(1.0));
        }
        if self.guidance == 0.0 {
            return self.net.forward(x_t, &[t], &with(0.0));
        }
        // One forward pass on the doubled batch: [conditional; unconditional].
        let cond = with(1.0);
        let uncond = with(0.0);
        let cat2 = |a: Option<Tensor<2>>, b: Option<Tensor<2>>| match (a, b) {
            (Some(a), Some(b)) => Some(Tensor::cat(vec![a, b], 0)),
            _ => None,
        };
        let both = Condition {
            planes: self
                .condition
                .planes
                .clone()
                .map(|p| Tensor::cat(vec![p.clone(), p], 0)),
            tags: cat2(cond.tags, uncond.tags),
            tags_given: cat2(cond.tags_given, uncond.tags_given),
        };
        let out = self
            .net
            .forward(Tensor::cat(vec![x_t.clone(), x_t], 0), &[t], &both);
        let c = out.clone().narrow(0, 0, b);
        let u = out.narrow(0, b, b);
        u.clone() + (c - u).mul_scalar(self.guidance)
    }
}

/// The denoising objective: mean squared error between the network's output and the target of
/// `prediction` for `x0` noised with `noise` at per-item `times`, each element's squared error
/// multiplied by `weights` where given (broadcast over the dimensions of size 1; the mean is
/// still over the elements, so weights of 1 are the plain loss).
///
/// # Shapes
/// - `x0`, `noise`: `[batch, channels, h, w]`; `times`: `batch` values;
///   `weights`: `[batch or 1, channels or 1, h or 1, w or 1]` → `[1]`
pub fn denoising_loss(
    net: &Denoiser,
    prediction: Prediction,
    x0: Tensor<4>,
    noise: Tensor<4>,
    times: &[f32],
    condition: &Condition,
    weights: Option<Tensor<4>>,
) -> Tensor<1> {
    let b = times.len();
    let device = x0.device();
    let (alphas, sigmas): (Vec<f32>, Vec<f32>) = times
        .iter()
        .map(|&t| {
            let l = super::schedule::NoiseLevel::at(t);
            (l.alpha, l.sigma)
        })
        .unzip();
    let alpha = Tensor::<4>::from_data(TensorData::new(alphas, [b, 1, 1, 1]), &device);
    let sigma = Tensor::<4>::from_data(TensorData::new(sigmas, [b, 1, 1, 1]), &device);
    let x_t = x0.clone() * alpha.clone() + noise.clone() * sigma.clone();
    let target = prediction.target(x0, noise, alpha, sigma);
    let out = net.forward(x_t, times, condition);
    let squared = (out - target).powi_scalar(2);
    match weights {
        Some(w) => (squared * w).mean(),
        None => squared.mean(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::sampler::batch_noise;
    use burn::tensor::Distribution;

    fn small(tags: usize, condition_channels: usize) -> DenoiserConfig {
        DenoiserConfig::new(2)
            .with_tags(tags)
            .with_condition_channels(condition_channels)
            .with_base_width(8)
            .with_multipliers(vec![1, 2])
            .with_attention_heads(2)
            .with_groups(4)
    }

    /// The output convolution starts at zero; give it random weights so outputs differ.
    fn randomise_output(mut net: Denoiser, device: &Device) -> Denoiser {
        net.output = Conv2dConfig::new([8, 2], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(device);
        net
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().expect("f32")
    }

    #[test]
    fn output_has_the_input_shape_and_starts_at_zero() {
        let device = Device::flex();
        let config = small(15, 3);
        assert_eq!(config.multiple_px(), 2);
        let net = config.init(&device);
        for (h, w) in [(8, 8), (16, 12), (4, 24)] {
            let x = Tensor::<4>::random([3, 2, h, w], Distribution::Normal(0.0, 1.0), &device);
            let condition = Condition {
                planes: Some(Tensor::zeros([3, 3, h, w], &device)),
                tags: Some(Tensor::ones([3, 15], &device)),
                tags_given: None,
            };
            let out = net.forward(x, &[0.1, 0.5, 0.9], &condition);
            assert_eq!(out.dims(), [3, 2, h, w]);
            assert!(values(out).iter().all(|&v| v == 0.0));
        }
        assert!(small(0, 0).with_groups(3).validate().is_err());
        assert!(small(0, 0).with_multipliers(vec![]).validate().is_err());
    }

    #[test]
    fn time_features_are_sines_and_cosines() {
        let f = time_features(&[0.0, 0.25], 8);
        assert_eq!(f[..8], [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        // k = 1 of 4: ω = 10000^(−1/4) = 0.1, so the angle is 1000·0.25·0.1 = 25.
        assert!((f[9] - 25f32.sin()).abs() < 1e-6);
        assert!((f[13] - 25f32.cos()).abs() < 1e-6);
    }

    /// Every element of `a` within `tol` of `b`'s.
    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.iter().zip(b).all(|(p, q)| (p - q).abs() <= tol)
    }

    /// Two different 4-tag vectors, `[2, 4]`.
    fn two_tag_vectors(device: &Device) -> Tensor<2> {
        Tensor::<2>::from_data(
            TensorData::new(vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0], [2, 4]),
            device,
        )
    }

    #[test]
    fn guidance_mixes_the_conditional_and_unconditional_outputs() {
        let device = Device::flex();
        let net = randomise_output(small(4, 0).init(&device), &device);
        let x = batch_noise(&[1, 2], [2, 8, 8], &device);
        let tags = two_tag_vectors(&device);
        let t = 0.4;
        let cond = values(net.forward(x.clone(), &[t], &Condition::tags(tags.clone())));
        let dropped = Condition {
            planes: None,
            tags: Some(tags.clone()),
            tags_given: Some(Tensor::zeros([2, 1], &device)),
        };
        let uncond = values(net.forward(x.clone(), &[t], &dropped));
        let diff = cond
            .iter()
            .zip(&uncond)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff > 1e-3, "the tags change nothing: {diff}");
        let guided = |g: f32| {
            let model = Guided::new(&net, Prediction::Velocity, Condition::tags(tags.clone()), g)
                .expect("guidance");
            values(model.predict(x.clone(), t))
        };
        assert_eq!(guided(1.0), cond, "guidance 1 is the conditional network");
        // Just off 1 the doubled batch runs: it must agree with the conditional network too.
        assert!(close(&guided(1.0 + 1e-6), &cond, 1e-5));
        assert!(close(&guided(0.0), &uncond, 1e-6));
        let want3: Vec<f32> = cond
            .iter()
            .zip(&uncond)
            .map(|(c, u)| u + 3.0 * (c - u))
            .collect();
        assert!(close(&guided(3.0), &want3, 1e-4));
        for bad in [f32::NAN, -1.0, f32::INFINITY] {
            let err = Guided::new(&net, Prediction::Velocity, Condition::none(), bad)
                .err()
                .expect("refused");
            assert!(err.to_string().contains("guidance"), "{err}");
        }
    }

    #[test]
    fn plane_guidance_has_its_own_scale() {
        let device = Device::flex();
        let net = randomise_output(small(4, 2).init(&device), &device);
        let x = batch_noise(&[3, 4], [2, 8, 8], &device);
        let tags = two_tag_vectors(&device);
        let marked = Tensor::<4>::random([2, 2, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let unmarked = Tensor::<4>::zeros([2, 2, 8, 8], &device);
        let t = 0.6;
        let run = |planes: &Tensor<4>, given: f32| {
            values(net.forward(
                x.clone(),
                &[t],
                &Condition {
                    planes: Some(planes.clone()),
                    tags: Some(tags.clone()),
                    tags_given: Some(Tensor::full([2, 1], given, &device)),
                },
            ))
        };
        let cond = run(&marked, 1.0);
        let uncond = run(&marked, 0.0);
        let unmarked_out = run(&unmarked, 0.0);
        let gap = uncond
            .iter()
            .zip(&unmarked_out)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(gap > 1e-3, "the planes change nothing: {gap}");
        let condition = || Condition {
            planes: Some(marked.clone()),
            tags: Some(tags.clone()),
            tags_given: None,
        };
        let everywhere = Tensor::<4>::ones([2, 1, 8, 8], &device);
        let masked = |g: f32, g_p: f32, mask: &Tensor<4>| {
            let model = Guided::new(&net, Prediction::Velocity, condition(), g)
                .expect("guidance")
                .with_plane_guidance(unmarked.clone(), g_p, mask.clone())
                .expect("plane guidance");
            values(model.predict(x.clone(), t))
        };
        let guided = |g: f32, g_p: f32| masked(g, g_p, &everywhere);
        let plain = |g: f32| {
            let model = Guided::new(&net, Prediction::Velocity, condition(), g).expect("guidance");
            values(model.predict(x.clone(), t))
        };
        // g_p = 1 is plain guidance; g = g_p = 1 the conditional network.
        assert!(close(&guided(2.0, 1.0), &plain(2.0), 1e-4));
        assert!(close(&guided(1.0, 1.0), &cond, 1e-5));
        // g = g_p contrasts (tags, P) with (∅, P₀) alone.
        let both: Vec<f32> = cond
            .iter()
            .zip(&unmarked_out)
            .map(|(c, u0)| u0 + 3.0 * (c - u0))
            .collect();
        assert!(close(&guided(3.0, 3.0), &both, 1e-4));
        // The general case, term by term.
        let want: Vec<f32> = cond
            .iter()
            .zip(&uncond)
            .zip(&unmarked_out)
            .map(|((c, u), u0)| u0 + 5.0 * (u - u0) + 2.0 * (c - u))
            .collect();
        assert!(close(&guided(2.0, 5.0), &want, 1e-4));
        // Only where the mask says: nowhere is plain guidance; on rows 0–3 only, those rows
        // are guided and the rest plain ([batch, 1, h, 1] broadcasts over channels and w).
        let nowhere = Tensor::<4>::zeros([2, 1, 8, 8], &device);
        assert!(close(&masked(2.0, 5.0, &nowhere), &plain(2.0), 1e-4));
        let rows = Tensor::<4>::from_data(
            TensorData::new([[1.0f32; 4], [0.0; 4]].concat().repeat(2), [2, 1, 8, 1]),
            &device,
        );
        let half = masked(2.0, 5.0, &rows);
        let plain2 = plain(2.0);
        // values() is [batch, channels, h, w] row-major: h is the second-to-last axis.
        for (i, (h, (full, p))) in half.iter().zip(want.iter().zip(&plain2)).enumerate() {
            let expected = if (i / 8) % 8 < 4 { full } else { p };
            assert!(
                (h - expected).abs() <= 1e-4,
                "element {i}: {h} vs {expected}"
            );
        }
        let bad = Guided::new(&net, Prediction::Velocity, condition(), 2.0)
            .expect("guidance")
            .with_plane_guidance(unmarked.clone(), f32::NAN, everywhere.clone());
        assert!(bad.is_err());
    }

    #[test]
    fn loss_weights_scale_each_elements_squared_error() {
        let device = Device::flex();
        let net = randomise_output(small(4, 0).init(&device), &device);
        let x0 = batch_noise(&[7, 8], [2, 8, 8], &device);
        let noise = batch_noise(&[9, 10], [2, 8, 8], &device);
        let condition = Condition::tags(Tensor::ones([2, 4], &device));
        let loss = |w: Option<Tensor<4>>| {
            denoising_loss(
                &net,
                Prediction::Velocity,
                x0.clone(),
                noise.clone(),
                &[0.3, 0.7],
                &condition,
                w,
            )
            .into_scalar::<f32>()
        };
        // [2, 1, 8, 1]: one weight per item and row, as the lattice rows are weighted.
        let rows = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [2, 1, 8, 1]), &device);
        let plain = loss(None);
        assert!(plain > 0.01, "{plain}");
        assert!((loss(Some(rows(vec![1.0; 16]))) - plain).abs() < 1e-6 * plain);
        assert!((loss(Some(rows(vec![2.0; 16]))) - 2.0 * plain).abs() < 1e-5 * plain);
        // Row 3 of item 0 alone, then weighted 1 + 3 there: the loss is linear in the weights.
        let mut only = vec![0.0; 16];
        only[3] = 1.0;
        let row = loss(Some(rows(only.clone())));
        assert!(row > 0.0 && row < plain, "{row} of {plain}");
        let heavier: Vec<f32> = only.iter().map(|v| 1.0 + 3.0 * v).collect();
        let weighted = loss(Some(rows(heavier)));
        assert!(
            (weighted - (plain + 3.0 * row)).abs() < 1e-5 * plain,
            "{weighted}"
        );
    }

    #[test]
    fn a_few_training_steps_lower_the_loss_on_a_tiny_set() {
        use burn::optim::{AdamConfig, GradientsParams};
        let device = Device::flex().autodiff();
        let mut net = small(4, 1).init(&device);
        // Four 8 × 8 two-channel images: stripes whose direction the tags and planes name.
        let x0 = Tensor::<4>::from_data(
            TensorData::new(
                (0..4 * 2 * 64)
                    .map(|i| if (i / 8 + i / 64) % 2 == 0 { 0.8 } else { -0.8 })
                    .collect::<Vec<f32>>(),
                [4, 2, 8, 8],
            ),
            &device,
        );
        let condition = Condition {
            planes: Some(x0.clone().narrow(1, 0, 1)),
            tags: Some(Tensor::eye(4, &device)),
            tags_given: None,
        };
        let noise = batch_noise(&[3, 4, 5, 6], [2, 8, 8], &device);
        let times = [0.2, 0.4, 0.6, 0.8];
        let loss_of = |net: &Denoiser| {
            denoising_loss(
                net,
                Prediction::Velocity,
                x0.clone(),
                noise.clone(),
                &times,
                &condition,
                None,
            )
        };
        let first = loss_of(&net).into_scalar::<f32>();
        let mut optim = AdamConfig::new().init();
        for _ in 0..40 {
            let loss = loss_of(&net);
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(3e-3, net, grads);
        }
        let last = loss_of(&net).into_scalar::<f32>();
        assert!(last < 0.5 * first, "loss {first} → {last}");
    }

    #[test]
    fn widened_condition_planes_start_silent_and_then_learn() {
        use burn::optim::{AdamConfig, GradientsParams};
        let device = Device::flex().autodiff();
        let net = randomise_output(small(4, 0).init(&device), &device);
        let x = batch_noise(&[1, 2], [2, 8, 8], &device);
        let tags = Condition::tags(Tensor::ones([2, 4], &device));
        let before = values(net.forward(x.clone(), &[0.3], &tags));
        let mut wide = net.with_condition_channels(3).expect("widen");
        // Planes that differ per item and position, so that reading them would change things.
        let planes = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let with_planes = Condition {
            planes: Some(planes),
            ..tags
        };
        let after = values(wide.forward(x.clone(), &[0.3], &with_planes));
        // Equal up to the order of the convolution's sums (more input channels).
        let diff = after
            .iter()
            .zip(&before)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            diff < 1e-5,
            "zero weights on the new planes change the output by {diff}"
        );
        // The new weights are parameters like any other: one step moves them.
        let loss = wide
            .forward(x.clone(), &[0.3], &with_planes)
            .powi_scalar(2)
            .mean();
        let grads = GradientsParams::from_grads(loss.backward(), &wide);
        wide = AdamConfig::new().init().step(1e-2, wide, grads);
        let w = wide.input.weight.val().narrow(1, 2, 3);
        let moved = w.abs().max().into_scalar::<f32>();
        assert!(moved > 1e-3, "the plane weights did not train: {moved}");
    }

    #[test]
    fn attention_added_on_the_way_up_starts_silent_then_learns_and_loads() {
        use burn::optim::{AdamConfig, GradientsParams};
        let device = Device::flex().autodiff();
        let net = randomise_output(small(4, 0).init(&device), &device);
        let x = x_again(&device);
        let tags = Condition::tags(Tensor::ones([2, 4], &device));
        let before = values(net.forward(x.clone(), &[0.3], &tags));
        let config = small(4, 0).with_up_attention(Some(vec![0, 1]));
        let mut attending = net
            .with_up_attention(&config, &device)
            .expect("add attention");
        assert!(attending.up_attention.iter().all(Option::is_some));
        // A zero output projection adds exactly zero to the residual stream.
        assert_eq!(values(attending.forward(x.clone(), &[0.3], &tags)), before);
        // One step moves the output projection, and then the output.
        let loss = attending
            .forward(x.clone(), &[0.3], &tags)
            .sub_scalar(1.0)
            .powi_scalar(2)
            .mean();
        let grads = GradientsParams::from_grads(loss.backward(), &attending);
        attending = AdamConfig::new().init().step(1e-2, attending, grads);
        let moved = values(attending.forward(x.clone(), &[0.3], &tags))
            .iter()
            .zip(&before)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(moved > 1e-4, "the new attention did not train: {moved}");
        // The shape is in the config: a network built from it loads the weights.
        let rebuilt = crate::weights::load_record(
            config.init(&device),
            &crate::weights::record_bytes(&attending).expect("record"),
        )
        .expect("a record with attention on the way up loads into its config's network");
        assert_eq!(
            values(rebuilt.forward(x.clone(), &[0.3], &tags)),
            values(attending.forward(x, &[0.3], &tags))
        );
    }

    #[test]
    fn attention_on_the_way_up_names_existing_levels_once() {
        let two_levels = small(0, 0);
        assert!(
            two_levels
                .clone()
                .with_up_attention(Some(vec![1]))
                .validate()
                .is_ok()
        );
        for bad in [vec![2], vec![0, 0]] {
            let e = two_levels
                .clone()
                .with_up_attention(Some(bad.clone()))
                .validate()
                .expect_err("refused");
            assert!(e.contains("levels are 0 to 1"), "{bad:?}: {e}");
        }
        // 2 heads do not divide a width of 9.
        let odd = two_levels
            .with_base_width(9)
            .with_groups(1)
            .with_attention_heads(2)
            .with_multipliers(vec![1, 2])
            .with_up_attention(Some(vec![0]));
        assert!(odd.validate().expect_err("refused").contains("level 0"));
    }

    #[test]
    fn a_controlnet_branch_starts_silent_then_trains_alone_on_a_frozen_base() {
        use burn::optim::{AdamConfig, GradientsParams};
        let device = Device::flex().autodiff();
        // An unconditional base (no tags, no planes) with an output that is not zero.
        let base = randomise_output(small(0, 0).init(&device), &device);
        let x = batch_noise(&[1, 2], [2, 8, 8], &device);
        let planes = Tensor::<4>::random([2, 2, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let with_planes = Condition {
            planes: Some(planes.clone()),
            ..Condition::none()
        };
        let before = values(base.forward(x.clone(), &[0.3], &Condition::none()));
        let controlled = base.clone().with_control(2).expect("branch").freeze_base();
        assert!(controlled.has_control() && !base.has_control());
        // Step 0: the zero-initialised joins leave the base's output exactly as it was.
        let after = values(controlled.forward(x.clone(), &[0.3], &with_planes));
        assert_eq!(
            after, before,
            "a zero-initialised branch changed the output"
        );
        // A base that already reads planes, or has a branch, is refused.
        assert!(small(0, 1).init(&device).with_control(2).is_err());
        assert!(controlled.clone().with_control(2).is_err());

        // Training moves the branch only: the base's weights stay, the joins leave zero, and
        // the output now depends on the planes.
        // Two steps: behind zero joins the branch gets no gradient at first, so step 1 moves
        // only the joins and step 2 the branch's own weights (as in ControlNet).
        let mut optim = AdamConfig::new().init();
        let mut trained = controlled.clone();
        for _ in 0..2 {
            let loss = trained
                .forward(x.clone(), &[0.3], &with_planes)
                .sub_scalar(1.0)
                .powi_scalar(2)
                .mean();
            let grads = GradientsParams::from_grads(loss.backward(), &trained);
            trained = optim.step(1e-2, trained, grads);
        }
        let same = |a: &Param<Tensor<4>>, b: &Param<Tensor<4>>| values(a.val()) == values(b.val());
        assert!(same(&trained.output.weight, &controlled.output.weight));
        assert!(same(&trained.input.weight, &controlled.input.weight));
        let branch = trained.control.as_ref().expect("branch");
        let moved = branch
            .zero
            .iter()
            .map(|z| z.weight.val().abs().max().into_scalar::<f32>())
            .fold(0.0f32, f32::max);
        assert!(moved > 1e-3, "the zero convolutions did not train: {moved}");
        let other = Condition {
            planes: Some(planes.neg()),
            ..Condition::none()
        };
        let a = values(trained.forward(x.clone(), &[0.3], &with_planes));
        let b = values(trained.forward(x, &[0.3], &other));
        let diff = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(diff > 1e-4, "the trained branch ignores the planes: {diff}");

        // The shape is in the config: a network built from it loads the branch's weights.
        let config = small(0, 0).with_control_channels(Some(2));
        let rebuilt = crate::weights::load_record(
            config.init(&device),
            &crate::weights::record_bytes(&trained).expect("record"),
        )
        .expect("the branch's record loads into a network built from the config");
        assert_eq!(
            values(rebuilt.forward(x_again(&device), &[0.3], &with_planes)),
            values(trained.forward(x_again(&device), &[0.3], &with_planes))
        );
    }

    fn x_again(device: &Device) -> Tensor<4> {
        batch_noise(&[1, 2], [2, 8, 8], device)
    }
}
