//! An exponential moving average of a network's weights (the weights diffusion models are
//! sampled with): after each optimizer step, `ema ← d·ema + (1 − d)·weights`, with the decay
//! warmed up as min(d, (1 + n)/(10 + n)) over the first steps so early weights fade quickly.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// The average of a network's weights, itself a network (without autodiff).
pub(crate) struct Ema<M: Module> {
    /// The averaged network.
    pub net: M,
    /// Target decay per step.
    decay: f64,
    /// Updates so far.
    pub updates: u64,
}

impl<M: Module> Ema<M> {
    /// Starts the average at `net`'s weights, `updates` steps into training.
    pub(crate) fn new(net: &M, decay: f64, updates: u64) -> Self {
        Self {
            net: net.valid(),
            decay,
            updates,
        }
    }

    /// The decay of the next update.
    fn current_decay(&self) -> f64 {
        let n = self.updates as f64;
        self.decay.min((1.0 + n) / (10.0 + n))
    }

    /// Moves the average towards `net`'s weights (same architecture).
    pub(crate) fn update(&mut self, net: &M) {
        let mut collect = Collect(Vec::new());
        net.valid().visit(&mut collect);
        let mut blend = Blend {
            live: collect.0.into_iter(),
            decay: self.current_decay() as f32,
        };
        self.net = self.net.clone().map(&mut blend);
        self.updates += 1;
    }
}

/// A checkpoint of a live network and its average (the diffusion trainers'):
/// `[8-byte LE length][live][average]`.
pub(crate) fn join_checkpoint(live: &[u8], ema: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + live.len() + ema.len());
    out.extend_from_slice(&(live.len() as u64).to_le_bytes());
    out.extend_from_slice(live);
    out.extend_from_slice(ema);
    out
}

/// The live network's and the average's bytes of a [`join_checkpoint`] checkpoint.
pub(crate) fn split_checkpoint(bytes: &[u8]) -> anyhow::Result<(&[u8], &[u8])> {
    let damaged = || anyhow::anyhow!("--resume: the checkpoint is damaged; train without --resume");
    let head: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(damaged)?;
    let n = usize::try_from(u64::from_le_bytes(head)).map_err(|_| damaged())?;
    let live = bytes.get(8..8 + n).ok_or_else(damaged)?;
    let ema = bytes.get(8 + n..).ok_or_else(damaged)?;
    Ok((live, ema))
}

/// Every float parameter, flattened, in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        self.0.push(t.reshape([n]));
    }
}

/// Blends each float parameter with the next collected one (the same parameter of the live
/// network: both modules have one architecture, so they are visited in one order).
struct Blend {
    live: std::vec::IntoIter<Tensor<1>>,
    decay: f32,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(live) = self.live.next() else {
            return param;
        };
        let d = self.decay;
        param.map(|ema| {
            let dims = ema.dims();
            ema.mul_scalar(d) + live.reshape(dims).mul_scalar(1.0 - d)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    fn weights(l: &Linear) -> Vec<f32> {
        l.weight
            .val()
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32")
    }

    #[test]
    fn the_average_moves_by_one_minus_the_decay() {
        let device = Device::flex();
        let a = LinearConfig::new(3, 2).init(&device);
        let b = LinearConfig::new(3, 2).init(&device);
        // 100 updates in: the warm-up decay (101/110) is above 0.9, so 0.9 applies.
        let mut ema = Ema::new(&a, 0.9, 100);
        ema.update(&b);
        let (wa, wb, we) = (weights(&a), weights(&b), weights(&ema.net));
        for ((x, y), e) in wa.iter().zip(&wb).zip(&we) {
            assert!((e - (0.9 * x + 0.1 * y)).abs() < 1e-6, "{e} vs {x} {y}");
        }
        assert_eq!(ema.updates, 101);
        // The first update of a fresh average uses decay 1/10: mostly the new weights.
        let mut fresh = Ema::new(&a, 0.999, 0);
        fresh.update(&b);
        for ((x, y), e) in wa.iter().zip(&wb).zip(&weights(&fresh.net)) {
            assert!((e - (0.1 * x + 0.9 * y)).abs() < 1e-6);
        }
    }
}
