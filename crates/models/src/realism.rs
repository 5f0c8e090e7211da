//! Realism classifiers (seed 000): four small networks of different families that each say how
//! likely a detector image is realistic, combined by weighted soft voting.
//!
//! Different architectures make different mistakes, which is what makes an ensemble better than
//! its members: a residual CNN, a plain VGG-style CNN, a vision transformer on 16 × 16 patches,
//! and a ConvNeXt-style network (depthwise 7 × 7 convolutions, inverted bottlenecks).
//!
//! # Input and output
//! `[batch, 1, 128, 128]`: the taggers' log-scaled 256 × 256 grid binned 2 × 2
//! (ln(1 + I)/ln 65 536 in [0, 1]). Output: one logit per image, `[batch, 1]`; sigmoid is the
//! probability that the image is realistic.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{
    GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::{gelu, relu};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::unet::ConvBlock;

/// Side of the classifiers' input in pixels.
pub const INPUT_SIDE_PX: usize = 128;

/// The four member families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Residual CNN (ResNet-style basic blocks).
    Resnet,
    /// Plain stacked 3 × 3 convolutions with max pooling (VGG-style).
    Vgg,
    /// Vision transformer on 16 × 16 patches.
    Vit,
    /// Depthwise 7 × 7 convolutions and inverted bottlenecks (ConvNeXt-style).
    Convnext,
}

impl Family {
    /// All families, in report order.
    pub const ALL: [Family; 4] = [Family::Resnet, Family::Vgg, Family::Vit, Family::Convnext];

    /// Stable name for files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::Resnet => "resnet",
            Family::Vgg => "vgg",
            Family::Vit => "vit",
            Family::Convnext => "convnext",
        }
    }
}

/// Shape of a [`Member`].
#[derive(Config, Debug, PartialEq)]
pub struct MemberConfig {
    /// Which family.
    pub family: Family,
    /// Width: channels of the first stage (CNNs) or the token dimension (ViT).
    #[config(default = 16)]
    pub width: usize,
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
                head: LinearConfig::new(4 * c, 1).init(device),
            }),
            Family::Vgg => Net::Vgg(Vgg {
                blocks: vec![
                    ConvBlock::new(1, c, device),
                    ConvBlock::new(c, 2 * c, device),
                    ConvBlock::new(2 * c, 4 * c, device),
                    ConvBlock::new(4 * c, 4 * c, device),
                ],
                pool: MaxPool2dConfig::new([2, 2]).init(),
                head: LinearConfig::new(4 * c, 1).init(device),
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
                    head: LinearConfig::new(d, 1).init(device),
                })
            }
            Family::Convnext => Net::Convnext(Convnext {
                stem: Conv2dConfig::new([1, 2 * c], [4, 4])
                    .with_stride([4, 4])
                    .init(device),
                stages: vec![NextBlock::new(2 * c, device), NextBlock::new(2 * c, device)],
                down: conv(2 * c, 4 * c, 2, 2, device),
                stages2: vec![NextBlock::new(4 * c, device), NextBlock::new(4 * c, device)],
                head: LinearConfig::new(4 * c, 1).init(device),
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

/// `[b, c, h, w]` → `[b, c]` by global average pooling.
fn global_mean(x: Tensor<4>) -> Tensor<2> {
    let [b, c, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([b, c])
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
    blocks: Vec<ConvBlock>,
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

/// One of the four architectures.
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
}

/// A realism classifier. Built by [`MemberConfig::init`].
#[derive(Module, Debug)]
pub struct Member {
    net: Net,
}

impl Member {
    /// Realism logits.
    ///
    /// # Shapes
    /// - `x`: `[b, 1, 128, 128]`
    /// - output: `[b, 1]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match &self.net {
            Net::Resnet(n) => {
                let mut x = relu(n.stem.forward(x));
                for b in &n.blocks {
                    x = b.forward(x);
                }
                n.head.forward(global_mean(x))
            }
            Net::Vgg(n) => {
                let mut x = x;
                for b in &n.blocks {
                    x = n.pool.forward(b.forward(x));
                }
                n.head.forward(global_mean(x))
            }
            Net::Vit(n) => {
                // [b, d, 8, 8] → [b, 64, d] tokens.
                let p = n.patch.forward(x);
                let [b, d, h, w] = p.dims();
                let tokens = p.reshape([b, d, h * w]).swap_dims(1, 2) + n.position.val();
                let encoded = n.encoder.forward(TransformerEncoderInput::new(tokens));
                let pooled = n.norm.forward(encoded.mean_dim(1)).reshape([b, d]);
                n.head.forward(pooled)
            }
            Net::Convnext(n) => {
                let mut x = n.stem.forward(x);
                for s in &n.stages {
                    x = s.forward(x);
                }
                x = n.down.forward(x);
                for s in &n.stages2 {
                    x = s.forward(x);
                }
                n.head.forward(global_mean(x))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_maps_a_batch_to_one_logit_each() {
        let device = Device::flex();
        let x = Tensor::<4>::random(
            [3, 1, INPUT_SIDE_PX, INPUT_SIDE_PX],
            Distribution::Uniform(0.0, 1.0),
            &device,
        );
        let mut sizes = Vec::new();
        for family in Family::ALL {
            let m = MemberConfig::new(family).with_width(8).init(&device);
            let y = m.forward(x.clone());
            assert_eq!(y.dims(), [3, 1], "{family:?}");
            let values = y.into_data().try_to_vec::<f32>().expect("f32");
            assert!(
                values.iter().all(|v| v.is_finite()),
                "{family:?}: {values:?}"
            );
            sizes.push(m.num_params());
        }
        // Four genuinely different networks (no two the same size).
        let mut unique = sizes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 4, "{sizes:?}");
    }
}
