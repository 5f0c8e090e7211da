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
    fn nothing_to_compare() {
        let r = RoundScores::against_consensus([("a", 0.5, true)], &[answer("b", Some(true))]);
        assert_eq!(r.images, 0);
        assert!(r.agreement.is_nan() && r.kappa.is_none() && r.auc.is_none());
    }
}
