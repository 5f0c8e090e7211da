//! Scattering-image classification as the browser and `synthscope classify` run it: tag
//! probabilities from one tagger view (the joint view when the file has it) and the realism
//! ensemble's vote, for a batch of prepared images.
//!
//! The same `async` code runs natively (reads resolve at once) and on WebGPU.

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};

use crate::realism::{self, Ensemble, INPUT_SIDE_PX};
use crate::tagger::{
    COEFF_FEATURES, FB_FEATURES, IMAGE_SIDE_PX, RING_FEATURES, TAG_COUNT, Tagger, TaggerSet, View,
};
use crate::weights::WeightsError;

/// The inputs of one image (`imaging::scattering::Prepared` holds them).
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The taggers' image view, `256 × 256`.
    pub image: &'a [f32],
    /// The coefficient view: 880 Fourier–Bessel features, the 576 ring statistics (which the
    /// realism ensemble's rings member reads too), then the 302 ring features and the 28 fold
    /// scores.
    pub coeff: &'a [f32],
    /// The realism input, `256 × 256` (the taggers' image view).
    pub realism: &'a [f32],
}

/// What the classifiers say about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Probability of each tag, in the order of [`Classifier::tags`].
    pub tag_probabilities: Vec<f32>,
    /// Each member's probability that the image is realistic, in the order of
    /// [`Classifier::members`].
    pub member_probabilities: Vec<f32>,
    /// The weighted soft vote.
    pub realism_score: f64,
    /// The pattern gate's probability that the frame is a scattering pattern at all (`None`
    /// when the ensemble has no gate).
    pub pattern_probability: Option<f32>,
    /// The gate lets the frame through to the vote (always without a gate).
    pub is_pattern: bool,
    /// The gate lets the frame through (always without a gate) and the vote is above the
    /// ensemble's decision threshold.
    pub realistic: bool,
    /// The ensemble's embedding of the image ([`Ensemble::embedding`]), for the latent-space
    /// view.
    pub embedding: Vec<f32>,
}

/// Why classification failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClassifyError {
    /// An input has the wrong length (a bug in the caller).
    #[error("input {what} has {got} values, expected {expected}")]
    Input {
        /// Which input.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length expected.
        expected: usize,
    },
    /// Reading results back from the device failed.
    #[error("reading a result from the device failed: {0}")]
    Device(String),
}

/// The tagger and the realism ensemble, loaded.
#[derive(Debug, Clone)]
pub struct Classifier {
    tagger: Tagger,
    /// The view of the tagger in use.
    pub view: View,
    /// Tag names in output order.
    pub tags: Vec<String>,
    realism: Ensemble,
}

impl Classifier {
    /// Uses the joint view of `taggers` (or its only view) and `realism`.
    pub fn new(taggers: TaggerSet, realism: Ensemble) -> Result<Self, WeightsError> {
        let pos = taggers
            .header
            .configs
            .iter()
            .position(|c| c.view == View::Joint)
            .unwrap_or(0);
        let view = taggers
            .header
            .configs
            .get(pos)
            .map(|c| c.view)
            .ok_or_else(|| WeightsError::Format("the tagger file holds no network".into()))?;
        let tags = taggers.header.tags.clone();
        let tagger = taggers
            .nets
            .into_iter()
            .nth(pos)
            .ok_or_else(|| WeightsError::Format("the tagger file holds no network".into()))?;
        Ok(Self {
            tagger,
            view,
            tags,
            realism,
        })
    }

    /// The same tagger with another realism ensemble (a fine-tuned round of the
    /// human-in-the-loop loop).
    pub fn with_realism(&self, realism: Ensemble) -> Self {
        Self {
            tagger: self.tagger.clone(),
            view: self.view,
            tags: self.tags.clone(),
            realism,
        }
    }

    /// How the realism ensemble was trained (its file's note).
    pub fn realism_trained(&self) -> &str {
        &self.realism.header.trained
    }

    /// Names of the realism members, in vote order.
    pub fn members(&self) -> Vec<&'static str> {
        self.realism
            .header
            .configs
            .iter()
            .map(|c| c.family.name())
            .collect()
    }

    /// The members' soft-voting weights.
    pub fn vote_weights(&self) -> &[f64] {
        &self.realism.header.vote_weights
    }

    /// The pattern gate's threshold, when the ensemble has a gate.
    pub fn gate_threshold(&self) -> Option<f64> {
        self.realism.header.gate.as_ref().map(|g| g.threshold)
    }

    /// The soft vote's decision threshold.
    pub fn vote_threshold(&self) -> f64 {
        self.realism.header.vote_threshold
    }

    /// Each member's decision threshold (its probability above it calls an image realistic).
    pub fn member_thresholds(&self) -> Vec<f64> {
        self.realism.header.member_thresholds()
    }

    /// Tag probabilities `[b][15]` of a batch, without the realism ensemble (what tagging
    /// alone costs, e.g. `synthscope bench tagger`).
    pub async fn tag(
        &self,
        batch: &[Inputs<'_>],
        device: &Device,
    ) -> Result<Vec<Vec<f32>>, ClassifyError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (image, coeff) = tagger_tensors(batch, device)?;
        let tags = read(sigmoid(self.tagger.forward(Some(image), Some(coeff)))).await?;
        Ok(tags.chunks_exact(TAG_COUNT).map(<[f32]>::to_vec).collect())
    }

    /// Classifies a batch.
    pub async fn classify(
        &self,
        batch: &[Inputs<'_>],
        device: &Device,
    ) -> Result<Vec<Classification>, ClassifyError> {
        let b = batch.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        let (image, coeff) = tagger_tensors(batch, device)?;
        let rside = INPUT_SIDE_PX;
        let mut real = Vec::with_capacity(b * rside * rside);
        for x in batch {
            check("realism", x.realism.len(), rside * rside)?;
            real.extend_from_slice(x.realism);
        }
        let real = Tensor::<4>::from_data(TensorData::new(real, [b, 1, rside, rside]), device);
        // [b, 576]: the ring statistics after the Fourier–Bessel features.
        let stats = coeff.clone().narrow(1, FB_FEATURES, RING_FEATURES);
        // [b, 15] and [b, members]
        let tags = read(sigmoid(self.tagger.forward(Some(image), Some(coeff)))).await?;
        let pattern = self
            .realism
            .pattern_probability(real.clone(), stats.clone());
        let (members, embedding) = self.realism.probabilities_and_embedding(real, stats);
        let members = read(members).await?;
        let embedding = read(embedding).await?;
        // [b] or nothing.
        let pattern = match pattern {
            Some(p) => read(p).await?.into_iter().map(Some).collect(),
            None => vec![None; b],
        };
        let k = self.realism.members.len();
        let e = self.realism.embedding_width();
        Ok(tags
            .chunks_exact(TAG_COUNT)
            .zip(members.chunks_exact(k.max(1)))
            .zip(embedding.chunks_exact(e.max(1)))
            .zip(pattern)
            .map(|(((t, m), emb), pattern)| {
                let header = &self.realism.header;
                let score = realism::soft_vote(m, &header.vote_weights);
                let is_pattern = header.is_pattern(pattern.map(f64::from));
                Classification {
                    tag_probabilities: t.to_vec(),
                    member_probabilities: m.to_vec(),
                    realism_score: score,
                    pattern_probability: pattern,
                    is_pattern,
                    realistic: is_pattern && header.realistic(score),
                    embedding: emb.to_vec(),
                }
            })
            .collect())
    }
}

/// The tagger's inputs of a batch: images `[b, 1, 256, 256]` and coefficient views
/// `[b, 2693]`.
fn tagger_tensors(
    batch: &[Inputs<'_>],
    device: &Device,
) -> Result<(Tensor<4>, Tensor<2>), ClassifyError> {
    let (b, side) = (batch.len(), IMAGE_SIDE_PX);
    let mut image = Vec::with_capacity(b * side * side);
    let mut coeff = Vec::with_capacity(b * COEFF_FEATURES);
    for x in batch {
        check("image", x.image.len(), side * side)?;
        check("coeff", x.coeff.len(), COEFF_FEATURES)?;
        image.extend_from_slice(x.image);
        coeff.extend_from_slice(x.coeff);
    }
    Ok((
        Tensor::<4>::from_data(TensorData::new(image, [b, 1, side, side]), device),
        Tensor::<2>::from_data(TensorData::new(coeff, [b, COEFF_FEATURES]), device),
    ))
}

fn check(what: &'static str, got: usize, expected: usize) -> Result<(), ClassifyError> {
    if got == expected {
        Ok(())
    } else {
        Err(ClassifyError::Input {
            what,
            got,
            expected,
        })
    }
}

async fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, ClassifyError> {
    t.into_data_async()
        .await
        .map_err(|e| ClassifyError::Device(format!("{e:?}")))?
        .try_into_vec::<f32>()
        .map_err(|e| ClassifyError::Device(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realism::{Family, MemberConfig};
    use crate::tagger::TaggerConfig;

    #[test]
    fn a_batch_gets_fifteen_tags_and_five_votes_each() {
        let device = Device::flex();
        let tags: Vec<String> = (0..TAG_COUNT).map(|i| format!("t{i}")).collect();
        let set = TaggerSet::init(
            View::ALL
                .iter()
                .map(|&v| TaggerConfig::new(v).with_image_channels(4))
                .collect(),
            tags,
            &device,
        );
        let ensemble = Ensemble::init(
            Family::ALL
                .iter()
                .map(|&f| MemberConfig::new(f).with_width(4))
                .collect(),
            &device,
        );
        let c = Classifier::new(set, ensemble).expect("classifier");
        assert_eq!(c.view, View::Joint);
        assert_eq!(c.members(), ["resnet", "vgg", "vit", "convnext", "rings"]);
        let image = vec![0.3; IMAGE_SIDE_PX * IMAGE_SIDE_PX];
        let coeff = vec![0.1; COEFF_FEATURES];
        let real = vec![0.2; INPUT_SIDE_PX * INPUT_SIDE_PX];
        let x = Inputs {
            image: &image,
            coeff: &coeff,
            realism: &real,
        };
        let out = crate::block_on(c.classify(&[x, x, x], &device)).expect("classifies");
        assert_eq!(out.len(), 3);
        // Tagging alone gives the same tag probabilities.
        let tags = crate::block_on(c.tag(&[x, x, x], &device)).expect("tags");
        assert_eq!(tags.len(), 3);
        for (t, r) in tags.iter().zip(&out) {
            assert_eq!(t, &r.tag_probabilities);
        }
        for r in &out {
            assert_eq!(r.tag_probabilities.len(), TAG_COUNT);
            assert_eq!(r.member_probabilities.len(), 5);
            // Equal weights: the score is the members' mean.
            let mean = r
                .member_probabilities
                .iter()
                .map(|&p| f64::from(p))
                .sum::<f64>()
                / 5.0;
            assert!((r.realism_score - mean).abs() < 1e-6);
            // Five voting members of 32 features each, every block of squared length 1/5.
            assert_eq!(r.embedding.len(), 5 * 32);
            let length: f32 = r.embedding.iter().map(|v| v * v).sum();
            assert!((length - 1.0).abs() < 1e-4, "{length}");
        }
        // Another ensemble: same tags, other votes.
        let other = Ensemble::init(
            Family::ALL
                .iter()
                .map(|&f| MemberConfig::new(f).with_width(4))
                .collect(),
            &device,
        );
        let swapped = c.with_realism(other);
        let again = crate::block_on(swapped.classify(&[x], &device)).expect("classifies");
        // Same tagger (a batch of one and of three may round the last bit differently).
        for (a, b) in again[0]
            .tag_probabilities
            .iter()
            .zip(&out[0].tag_probabilities)
        {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert_ne!(again[0].member_probabilities, out[0].member_probabilities);
        let short = Inputs {
            image: &image[..10],
            ..x
        };
        assert!(matches!(
            crate::block_on(c.classify(&[short], &device)),
            Err(ClassifyError::Input { what: "image", .. })
        ));
    }
}
