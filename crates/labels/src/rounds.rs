//! How a realism model does against the experts, round after round of the human-in-the-loop
//! loop: precision, recall, F1, ROC AUC, raw agreement and Cohen's kappa of its decisions
//! against the consensus answers (positive = realistic). `synthscope train realism --labels`
//! prints these for its held-out images; the Dataset page shows them for every model version
//! whose predictions are stored.

use std::collections::HashMap;

use serde::Serialize;

use crate::agreement::{Consensus, cohen_kappa};

/// A model's decisions scored against the experts' answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundScores {
    /// Images compared (those with both a prediction and a decided consensus).
    pub images: usize,
    /// Of the images the model calls realistic, the fraction the experts call realistic.
    pub precision: f64,
    /// Of the images the experts call realistic, the fraction the model calls realistic.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// ROC AUC of the model's score (`None` with only one class among the answers).
    pub auc: Option<f64>,
    /// Fraction of images where model and experts give the same answer.
    pub agreement: f64,
    /// Cohen's kappa between the model and the experts (`None` when undefined).
    pub kappa: Option<f64>,
}

impl RoundScores {
    /// Scores of `scores` (the model's realism scores), `decided` (its decisions, realistic =
    /// true) against `truth` (the experts' answers). All three have one entry per image.
    pub fn of(scores: &[f64], decided: &[bool], truth: &[bool]) -> Self {
        let m = imaging::metrics::binary_scores(decided, truth);
        let n = truth.len();
        let same = decided.iter().zip(truth).filter(|(d, t)| d == t).count();
        let pairs: Vec<(usize, usize)> = decided
            .iter()
            .zip(truth)
            .map(|(&d, &t)| (usize::from(d), usize::from(t)))
            .collect();
        Self {
            images: n,
            precision: m.precision,
            recall: m.recall,
            f1: m.f1,
            auc: imaging::metrics::roc_auc(scores, truth),
            agreement: if n == 0 {
                f64::NAN
            } else {
                same as f64 / n as f64
            },
            kappa: cohen_kappa(&pairs, 2),
        }
    }

    /// A model's stored predictions, `(item, score, decided)`, against the consensus: images
    /// without a majority answer (unsure, tied) or without a prediction are left out.
    pub fn against_consensus<'a>(
        predictions: impl IntoIterator<Item = (&'a str, f64, bool)>,
        consensus: &[Consensus],
    ) -> Self {
        let answers: HashMap<&str, bool> = consensus
            .iter()
            .filter_map(|c| c.realistic.map(|r| (c.item.as_str(), r)))
            .collect();
        let (mut scores, mut decided, mut truth) = (Vec::new(), Vec::new(), Vec::new());
        for (item, score, d) in predictions {
            if let Some(&t) = answers.get(item) {
                scores.push(score);
                decided.push(d);
                truth.push(t);
            }
        }
        Self::of(&scores, &decided, &truth)
    }
}

/// Generated : experimental images, as in "4:6" (seed 000's mix). Generated images stand for
/// the fake class and experimental ones for the realistic class: in engine sets the fakes are
/// made from engine images in this proportion; in expert-labelled sets ([`mixed_selection`])
/// the consensus-fake and consensus-realistic images are drawn in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Parts of generated (fake) images.
    pub generated: u32,
    /// Parts of experimental (realistic) images.
    pub experimental: u32,
}

impl Mix {
    /// The fraction of images made into fakes.
    pub fn fake_fraction(self) -> f64 {
        f64::from(self.generated) / f64::from(self.generated + self.experimental)
    }
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            generated: 4,
            experimental: 6,
        }
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.generated, self.experimental)
    }
}

impl std::str::FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("\"{s}\" is not a ratio like 4:6 (generated:experimental)");
        let (g, e) = s.split_once(':').ok_or_else(bad)?;
        let (generated, experimental) = (
            g.trim().parse::<u32>().map_err(|_| bad())?,
            e.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if generated == 0 || experimental == 0 {
            return Err(format!(
                "{s}: both parts must be at least 1 (a set of one class cannot train a classifier)"
            ));
        }
        Ok(Self {
            generated,
            experimental,
        })
    }
}

/// The images of a training set drawn from the experts' consensus in the proportion `mix`
/// (consensus fake : consensus realistic): every image of the scarcer class and as many of
/// the other as the ratio allows, chosen by a seeded shuffle; images without a majority answer
/// are left out. Returns the items, sorted, with the fake and realistic counts.
pub fn mixed_selection(
    consensus: &[Consensus],
    mix: Mix,
    seed: u64,
) -> (Vec<String>, usize, usize) {
    let mut fake: Vec<&str> = Vec::new();
    let mut real: Vec<&str> = Vec::new();
    for c in consensus {
        match c.realistic {
            Some(false) => fake.push(&c.item),
            Some(true) => real.push(&c.item),
            None => {}
        }
    }
    fake.sort_unstable();
    real.sort_unstable();
    let (g, e) = (f64::from(mix.generated), f64::from(mix.experimental));
    // The scarcer class (relative to the mix) is taken whole; the other in proportion, rounded.
    let (n_fake, n_real) = if fake.len() as f64 * e > real.len() as f64 * g {
        let n_real = real.len();
        (
            fake.len().min((n_real as f64 * g / e).round() as usize),
            n_real,
        )
    } else {
        let n_fake = fake.len();
        (
            n_fake,
            real.len().min((n_fake as f64 * e / g).round() as usize),
        )
    };
    let pick = |mut v: Vec<&str>, n: usize, salt: u64| -> Vec<String> {
        // A seeded shuffle: the same seed picks the same images.
        crate::rng::shuffle(&mut v, seed ^ salt);
        v.into_iter().take(n).map(str::to_string).collect()
    };
    let mut items = pick(fake, n_fake, 1);
    items.extend(pick(real, n_real, 2));
    items.sort_unstable();
    (items, n_fake, n_real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(item: &str, realistic: Option<bool>) -> Consensus {
        Consensus {
            item: item.into(),
            file: format!("{item}.tif"),
            annotators: 2,
            realistic,
            tie: realistic.is_none(),
            votes: [0, 0, 0],
            tags: Vec::new(),
            tied_tags: Vec::new(),
        }
    }

    #[test]
    fn a_model_against_the_consensus_worked_by_hand() {
        // Experts: a b c realistic, d e fake, f tied (left out); g has no prediction.
        let consensus = [
            answer("a", Some(true)),
            answer("b", Some(true)),
            answer("c", Some(true)),
            answer("d", Some(false)),
            answer("e", Some(false)),
            answer("f", None),
            answer("g", Some(true)),
        ];
        // Model: a b realistic (right), c fake (miss), d realistic (false alarm), e fake.
        let predictions = [
            ("a", 0.9, true),
            ("b", 0.8, true),
            ("c", 0.3, false),
            ("d", 0.7, true),
            ("e", 0.1, false),
            ("f", 0.6, true),
            ("x", 0.5, true),
        ];
        let r = RoundScores::against_consensus(predictions, &consensus);
        assert_eq!(r.images, 5);
        // TP 2, FP 1, FN 1.
        assert!((r.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.agreement - 0.6).abs() < 1e-12);
        // Cohen: p_o = 0.6; model 3/5 realistic, experts 3/5: p_e = 0.36 + 0.16 = 0.52;
        // κ = 0.08 / 0.48 = 1/6.
        assert!((r.kappa.expect("defined") - 1.0 / 6.0).abs() < 1e-12);
        // Scores: realistic {0.9, 0.8, 0.3} vs fake {0.7, 0.1}: 5 of 6 pairs ordered.
        assert!((r.auc.expect("defined") - 5.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn mixes_parse_and_refuse_nonsense() {
        let m: Mix = "4:6".parse().expect("ratio");
        assert_eq!(m, Mix::default());
        assert!((m.fake_fraction() - 0.4).abs() < 1e-12);
        assert_eq!(m.to_string(), "4:6");
        for bad in ["4", "4:x", "0:6", "4:0", ":"] {
            assert!(bad.parse::<Mix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_training_set_is_drawn_in_the_mix() {
        // 30 fake, 20 realistic, 5 undecided.
        let mut consensus: Vec<Consensus> = (0..30)
            .map(|i| answer(&format!("f{i:02}"), Some(false)))
            .collect();
        consensus.extend((0..20).map(|i| answer(&format!("r{i:02}"), Some(true))));
        consensus.extend((0..5).map(|i| answer(&format!("u{i}"), None)));
        // 4:6 → all 20 realistic and 20·4/6 = 13.3 → 13 fake.
        let (items, fake, real) = mixed_selection(&consensus, Mix::default(), 7);
        assert_eq!((fake, real), (13, 20));
        assert_eq!(items.len(), 33);
        assert_eq!(items.iter().filter(|i| i.starts_with('f')).count(), 13);
        assert!(items.iter().all(|i| !i.starts_with('u')));
        // The same seed draws the same images; another seed others.
        assert_eq!(mixed_selection(&consensus, Mix::default(), 7).0, items);
        assert_ne!(mixed_selection(&consensus, Mix::default(), 8).0, items);
        // 1:1 → 20 and 20; 6:4 → all 30 fake, 20 realistic.
        let one: Mix = "1:1".parse().expect("ratio");
        assert_eq!(mixed_selection(&consensus, one, 7).1, 20);
        let six: Mix = "6:4".parse().expect("ratio");
        let (_, f, r) = mixed_selection(&consensus, six, 7);
        assert_eq!((f, r), (30, 20));
    }

    #[test]
    fn nothing_to_compare() {
        let r = RoundScores::against_consensus([("a", 0.5, true)], &[answer("b", Some(true))]);
        assert_eq!(r.images, 0);
        assert!(r.agreement.is_nan() && r.kappa.is_none() && r.auc.is_none());
    }
}
