//! A small fully convolutional encoder-decoder with skip connections and a bridge (a U-Net).
//!
//! Net1 and Net2 of the grain pipeline are both this module with different configurations.
//! Each level is two 3×3 convolutions with ReLU; the encoder halves the resolution with 2×2 max
//! pooling, the decoder doubles it with 2×2 stride-2 transposed convolutions and concatenates the
//! encoder features of the same level. Inputs must be a multiple of `2^depth` in height and width
//! (see [`UNetConfig::multiple_px`]); callers pad.

use burn::config::Config;
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// Shape of a [`UNet`].
#[derive(Config, Debug, PartialEq)]
pub struct UNetConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Channels at full resolution; doubled at every level below.
    pub base_channels: usize,
    /// Number of pooling steps between the input and the bridge.
    pub depth: usize,
}

impl crate::weights::Shape for UNetConfig {
    /// The bridge's 3 × 3 convolution at `base_channels · 2^depth` channels, and the first
    /// convolution from the input.
    fn min_parameters(&self) -> usize {
        let top = u32::try_from(self.depth)
            .ok()
            .and_then(|d| self.base_channels.checked_shl(d))
            .filter(|&t| t >> self.depth.min(63) == self.base_channels)
            .unwrap_or(usize::MAX);
        top.saturating_mul(top).saturating_mul(9).saturating_add(
            self.in_channels
                .saturating_mul(self.base_channels)
                .saturating_mul(9),
        )
    }
}

impl UNetConfig {
    /// Height and width of the input must be a multiple of this.
    pub fn multiple_px(&self) -> usize {
        1 << self.depth
    }

    /// Builds the network with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> UNet {
        let ch = |level: usize| self.base_channels << level;
        let down = (0..self.depth)
            .map(|l| {
                let input = if l == 0 { self.in_channels } else { ch(l - 1) };
                ConvBlock::new(input, ch(l), device)
            })
            .collect();
        let bridge_in = if self.depth == 0 {
            self.in_channels
        } else {
            ch(self.depth - 1)
        };
        let bridge = ConvBlock::new(bridge_in, ch(self.depth), device);
        // Decoder level l takes the level-(l+1) features up to level l and joins the skip.
        let ups = (0..self.depth)
            .rev()
            .map(|l| {
                ConvTranspose2dConfig::new([ch(l + 1), ch(l)], [2, 2])
                    .with_stride([2, 2])
                    .init(device)
            })
            .collect();
        let up_blocks = (0..self.depth)
            .rev()
            .map(|l| ConvBlock::new(2 * ch(l), ch(l), device))
            .collect();
        let head = Conv2dConfig::new([ch(0), 1], [1, 1]).init(device);
        UNet {
            down,
            bridge,
            ups,
            up_blocks,
            head,
            pool: MaxPool2dConfig::new([2, 2]).init(),
        }
    }
}

/// Two 3×3 convolutions, each followed by a ReLU.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv1: Conv2d,
    conv2: Conv2d,
}

impl ConvBlock {
    pub(crate) fn new(in_channels: usize, out_channels: usize, device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        Self {
            conv1: conv(in_channels, out_channels),
            conv2: conv(out_channels, out_channels),
        }
    }

    /// `[b, in, h, w]` → `[b, out, h, w]`.
    pub(crate) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.conv2.forward(relu(self.conv1.forward(x))))
    }
}

/// The encoder-decoder. Built by [`UNetConfig::init`].
#[derive(Module, Debug)]
pub struct UNet {
    down: Vec<ConvBlock>,
    bridge: ConvBlock,
    ups: Vec<ConvTranspose2d>,
    up_blocks: Vec<ConvBlock>,
    head: Conv2d,
    pool: MaxPool2d,
}

impl UNet {
    /// Boundary logits for an input batch.
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, height, width]`, height and width multiples of `2^depth`
    /// - output: `[batch, 1, height, width]` (logits; sigmoid gives probabilities)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut skips = Vec::with_capacity(self.down.len());
        let mut x = x;
        for block in &self.down {
            let features = block.forward(x);
            x = self.pool.forward(features.clone());
            skips.push(features);
        }
        x = self.bridge.forward(x);
        for ((up, block), skip) in self
            .ups
            .iter()
            .zip(&self.up_blocks)
            .zip(skips.into_iter().rev())
        {
            x = block.forward(Tensor::cat(vec![up.forward(x), skip], 1));
        }
        self.head.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn output_has_the_input_size_for_any_multiple_of_the_pooling() {
        let device = Device::flex();
        let net = UNetConfig::new(4, 4, 3).init(&device);
        for (h, w) in [(8, 8), (16, 40), (96, 496)] {
            let x = Tensor::<4>::zeros([2, 4, h, w], &device);
            assert_eq!(net.forward(x).dims(), [2, 1, h, w]);
        }
    }

    #[test]
    fn fully_convolutional_outputs_do_not_depend_on_far_away_pixels() {
        // Pixels more than the receptive field away cannot influence each other: change the
        // right half of the input and the left edge of the output must not move.
        let device = Device::flex();
        let (h, w) = (16, 128);
        let a: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 11) as f32 / 11.0).collect();
        let mut b = a.clone();
        for y in 0..h {
            for x in 64..w {
                b[y * w + x] = 1.0 - b[y * w + x];
            }
        }
        // An unlucky initialisation can leave every ReLU of this 4-channel net dead, so that no
        // output moves at all; the property needs a net whose output does depend on its input.
        let mut live = false;
        for _ in 0..8 {
            let net = UNetConfig::new(1, 4, 2).init(&device);
            let run = |v: Vec<f32>| {
                net.forward(Tensor::from_data(TensorData::new(v, [1, 1, h, w]), &device))
                    .into_data()
                    .try_to_vec::<f32>()
                    .expect("f32 output")
            };
            let (ya, yb) = (run(a.clone()), run(b.clone()));
            for y in 0..h {
                for x in 0..8 {
                    assert_eq!(ya[y * w + x], yb[y * w + x], "pixel ({x}, {y})");
                }
            }
            if ya.iter().zip(&yb).any(|(p, q)| p != q) {
                live = true;
                break;
            }
        }
        assert!(
            live,
            "no initialisation gave an output that depends on the input"
        );
    }

    #[test]
    fn parameter_count_matches_the_architecture() {
        let device = Device::flex();
        let net = UNetConfig::new(4, 8, 3).init(&device);
        let conv = |i: usize, o: usize, k: usize| i * o * k * k + o;
        let block = |i, o| conv(i, o, 3) + conv(o, o, 3);
        let expected = block(4, 8)
            + block(8, 16)
            + block(16, 32)
            + block(32, 64)
            + conv(64, 32, 2)
            + conv(32, 16, 2)
            + conv(16, 8, 2)
            + block(64, 32)
            + block(32, 16)
            + block(16, 8)
            + conv(8, 1, 1);
        assert_eq!(net.num_params(), expected);
    }
}
