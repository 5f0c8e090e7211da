//! A small, fixed convolution used to prove that a device computes correctly.
//!
//! The web app runs it on the WebGPU device and on the CPU device at start-up and compares the
//! results; the native tests compare the CPU device with a direct loop. Inputs and weights are
//! closed-form functions of their indices, so every device sees exactly the same numbers.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

/// Batch size of the probe input.
pub const BATCH: usize = 2;
/// Input channels of the probe.
pub const IN_CHANNELS: usize = 3;
/// Output channels of the probe.
pub const OUT_CHANNELS: usize = 4;
/// Height and width of the probe input in pixels.
pub const SIZE_PX: usize = 16;
/// Square kernel size of the probe convolution.
pub const KERNEL: usize = 3;

/// The probe input, `[BATCH, IN_CHANNELS, SIZE_PX, SIZE_PX]`, values in [-1, 1].
pub fn probe_input() -> Vec<f32> {
    let n = BATCH * IN_CHANNELS * SIZE_PX * SIZE_PX;
    (0..n)
        .map(|i| ((i as f32) * 0.731).sin() * ((i % 7) as f32 * 0.25 - 0.75).cos())
        .collect()
}

/// The probe weights, `[OUT_CHANNELS, IN_CHANNELS, KERNEL, KERNEL]`.
pub fn probe_weight() -> Vec<f32> {
    let n = OUT_CHANNELS * IN_CHANNELS * KERNEL * KERNEL;
    (0..n)
        .map(|i| ((i as f32) * 1.37 + 0.5).cos() * 0.5)
        .collect()
}

/// The probe bias, `[OUT_CHANNELS]`.
pub fn probe_bias() -> Vec<f32> {
    (0..OUT_CHANNELS).map(|i| i as f32 * 0.1 - 0.15).collect()
}

/// Runs the probe convolution (stride 1, padding 1) followed by a ReLU on `device`.
///
/// # Shapes
/// - output: `[BATCH, OUT_CHANNELS, SIZE_PX, SIZE_PX]`
pub fn probe_conv(device: &Device) -> Tensor<4> {
    // [batch, channels, height, width]
    let x = Tensor::<4>::from_data(
        TensorData::new(probe_input(), [BATCH, IN_CHANNELS, SIZE_PX, SIZE_PX]),
        device,
    );
    // [out_channels, in_channels, kernel_h, kernel_w]
    let w = Tensor::<4>::from_data(
        TensorData::new(probe_weight(), [OUT_CHANNELS, IN_CHANNELS, KERNEL, KERNEL]),
        device,
    );
    let b = Tensor::<1>::from_data(TensorData::new(probe_bias(), [OUT_CHANNELS]), device);
    let y = conv2d(x, w, Some(b), ConvOptions::new([1, 1], [1, 1], [1, 1], 1));
    burn::tensor::activation::relu(y)
}

/// The same convolution computed with plain loops, the reference for every device.
pub fn probe_reference() -> Vec<f32> {
    let (x, w, b) = (probe_input(), probe_weight(), probe_bias());
    let s = SIZE_PX as isize;
    let mut out = vec![0.0f32; BATCH * OUT_CHANNELS * SIZE_PX * SIZE_PX];
    for n in 0..BATCH {
        for (o, &bias) in b.iter().enumerate() {
            for y in 0..s {
                for xx in 0..s {
                    let mut acc = bias;
                    for c in 0..IN_CHANNELS {
                        for ky in 0..KERNEL as isize {
                            for kx in 0..KERNEL as isize {
                                let (iy, ix) = (y + ky - 1, xx + kx - 1);
                                if iy < 0 || ix < 0 || iy >= s || ix >= s {
                                    continue;
                                }
                                let xi = ((n * IN_CHANNELS + c) * SIZE_PX + iy as usize) * SIZE_PX
                                    + ix as usize;
                                let wi = ((o * IN_CHANNELS + c) * KERNEL + ky as usize) * KERNEL
                                    + kx as usize;
                                acc += x[xi] * w[wi];
                            }
                        }
                    }
                    let oi =
                        ((n * OUT_CHANNELS + o) * SIZE_PX + y as usize) * SIZE_PX + xx as usize;
                    out[oi] = acc.max(0.0);
                }
            }
        }
    }
    out
}

/// Largest absolute difference between two equally long slices (`f32::INFINITY` if the lengths
/// differ, so a truncated result never passes a tolerance check).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_device_matches_the_loop_reference() {
        let device = Device::flex();
        let got: Vec<f32> = probe_conv(&device)
            .into_data()
            .try_into_vec()
            .expect("probe output is f32");
        let want = probe_reference();
        assert_eq!(got.len(), BATCH * OUT_CHANNELS * SIZE_PX * SIZE_PX);
        let diff = max_abs_diff(&got, &want);
        assert!(diff < 1e-5, "flex conv differs from the loop by {diff}");
        // The ReLU must have clipped something and passed something: the probe is not trivial.
        assert!(want.contains(&0.0));
        assert!(want.iter().any(|v| *v > 0.5));
    }

    #[test]
    fn max_abs_diff_rejects_length_mismatch() {
        assert_eq!(max_abs_diff(&[1.0], &[1.0, 2.0]), f32::INFINITY);
        assert!((max_abs_diff(&[1.0, 2.0], &[1.5, 2.0]) - 0.5).abs() < 1e-7);
    }
}
