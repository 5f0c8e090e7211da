//! Inter-annotator agreement over realism labels and tags.
//!
//! Realism is a three-category rating (realistic, fake, unsure): "unsure" is an answer, and two
//! experts who are both unsure agree. Statistics are computed over the items that at least two
//! annotators labelled; an annotator who did not label an item simply does not count for it, so
//! Fleiss' kappa uses the usual generalisation to a varying number of raters per item
//! (`P_i = Σ_j n_ij (n_ij − 1) / (n_i (n_i − 1))`, category shares over all ratings).
//!
//! Undefined statistics (no item in common, or every rating in one category so that chance
//! agreement is 1) are `None`, written `null` in JSON: a kappa of 0 or 1 would be a lie there.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{Label, TAGS, merge};

/// Realism categories, as indices into count vectors.
const FAKE: usize = 0;
const REALISTIC: usize = 1;
const UNSURE: usize = 2;

fn category(realistic: Option<bool>) -> usize {
    match realistic {
        Some(false) => FAKE,
        Some(true) => REALISTIC,
        None => UNSURE,
    }
}

/// Cohen's kappa and raw agreement of two annotators over the items both labelled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairKappa {
    /// First annotator (alphabetically).
    pub a: String,
    /// Second annotator.
    pub b: String,
    /// Items both labelled.
    pub items: usize,
    /// Share of those items with the same realism answer.
    pub percent_agreement: Option<f64>,
    /// Cohen's kappa of the realism answers.
    pub kappa: Option<f64>,
}

/// Agreement on one tag (present / absent) over the items two or more annotators labelled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagAgreement {
    /// The tag.
    pub tag: String,
    /// Labels (over compared items) that give the tag.
    pub positives: usize,
    /// Mean pairwise agreement on presence.
    pub percent_agreement: Option<f64>,
    /// Fleiss' kappa of presence.
    pub fleiss_kappa: Option<f64>,
}

/// The consensus of one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Consensus {
    /// Hex SHA-256 of the image.
    pub item: String,
    /// A file name it was labelled under.
    pub file: String,
    /// How many annotators labelled it.
    pub annotators: usize,
    /// The majority answer (`None`: unsure won, or a tie).
    pub realistic: Option<bool>,
    /// Whether the top realism answers tied.
    pub tie: bool,
    /// Votes as [fake, realistic, unsure].
    pub votes: [usize; 3],
    /// Tags more than half of its annotators gave.
    pub tags: Vec<String>,
    /// Tags exactly half gave.
    pub tied_tags: Vec<String>,
}

/// Everything `synthscope labels agreement` reports and the Dataset page shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// Distinct images labelled.
    pub items: usize,
    /// Annotators, sorted.
    pub annotators: Vec<String>,
    /// Images labelled by two or more annotators (the ones compared).
    pub compared_items: usize,
    /// Mean pairwise agreement on realism over compared items (Fleiss' P̄).
    pub percent_agreement: Option<f64>,
    /// Mean of the defined pairwise Cohen's kappas.
    pub cohen_kappa: Option<f64>,
    /// Cohen's kappa for every pair of annotators.
    pub cohen_kappa_pairs: Vec<PairKappa>,
    /// Fleiss' kappa of realism over all annotators.
    pub fleiss_kappa: Option<f64>,
    /// Agreement per tag, in vocabulary order.
    pub per_tag: Vec<TagAgreement>,
    /// The consensus label of every item, sorted by item.
    pub consensus: Vec<Consensus>,
    /// Compared items whose annotators do not all give the same realism answer or tags, most
    /// disputed first: the ones to review.
    pub conflicts: Vec<String>,
}

/// Agreement statistics of `labels` (any number of annotators; repeated (image, annotator)
/// labels count once, the newest).
pub fn agreement(labels: &[Label]) -> Agreement {
    let labels = merge(labels, &[]).labels;
    // item → annotator → label
    let mut by_item: BTreeMap<&str, BTreeMap<&str, &Label>> = BTreeMap::new();
    for l in &labels {
        by_item
            .entry(l.item.as_str())
            .or_default()
            .insert(l.annotator.as_str(), l);
    }
    let mut annotators: Vec<String> = labels.iter().map(|l| l.annotator.clone()).collect();
    annotators.sort();
    annotators.dedup();
    let compared: Vec<&BTreeMap<&str, &Label>> =
        by_item.values().filter(|m| m.len() >= 2).collect();

    let realism_counts: Vec<Vec<usize>> = compared
        .iter()
        .map(|m| {
            let mut c = vec![0; 3];
            for l in m.values() {
                c[category(l.realistic)] += 1;
            }
            c
        })
        .collect();

    let mut pairs = Vec::new();
    for (i, a) in annotators.iter().enumerate() {
        for b in &annotators[i + 1..] {
            let ratings: Vec<(usize, usize)> = by_item
                .values()
                .filter_map(|m| Some((m.get(a.as_str())?, m.get(b.as_str())?)))
                .map(|(x, y)| (category(x.realistic), category(y.realistic)))
                .collect();
            let agree = ratings.iter().filter(|(x, y)| x == y).count();
            pairs.push(PairKappa {
                a: a.clone(),
                b: b.clone(),
                items: ratings.len(),
                percent_agreement: (!ratings.is_empty())
                    .then(|| agree as f64 / ratings.len() as f64),
                kappa: cohen_kappa(&ratings, 3),
            });
        }
    }
    let defined: Vec<f64> = pairs.iter().filter_map(|p| p.kappa).collect();
    let cohen_mean =
        (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64);

    let per_tag = TAGS
        .iter()
        .map(|tag| {
            let counts: Vec<Vec<usize>> = compared
                .iter()
                .map(|m| {
                    let yes = m.values().filter(|l| l.has_tag(tag)).count();
                    vec![m.len() - yes, yes]
                })
                .collect();
            TagAgreement {
                tag: (*tag).to_string(),
                positives: counts.iter().map(|c| c[1]).sum(),
                percent_agreement: mean_pairwise_agreement(&counts),
                fleiss_kappa: fleiss_kappa(&counts),
            }
        })
        .collect();

    let mut disputed: Vec<(f64, String)> = Vec::new();
    let consensus = by_item
        .iter()
        .map(|(item, m)| {
            let n = m.len();
            let mut votes = [0usize; 3];
            for l in m.values() {
                votes[category(l.realistic)] += 1;
            }
            let top = votes.iter().copied().max().unwrap_or(0);
            let tie = votes.iter().filter(|v| **v == top).count() > 1;
            let realistic = match votes.iter().position(|v| *v == top) {
                _ if tie => None,
                Some(FAKE) => Some(false),
                Some(REALISTIC) => Some(true),
                _ => None,
            };
            let tag_votes: Vec<(&str, usize)> = TAGS
                .iter()
                .map(|t| (*t, m.values().filter(|l| l.has_tag(t)).count()))
                .collect();
            if n >= 2 {
                // Disagreement: share of pairs that differ on realism, plus on each tag.
                let pairs_total = (n * (n - 1)) as f64;
                let same = |c: &[usize]| c.iter().map(|k| k * k.saturating_sub(1)).sum::<usize>();
                let mut disagreement = 1.0 - same(&votes) as f64 / pairs_total;
                for (_, yes) in &tag_votes {
                    disagreement += 1.0 - same(&[*yes, n - yes]) as f64 / pairs_total;
                }
                if disagreement > 0.0 {
                    disputed.push((disagreement, (*item).to_string()));
                }
            }
            Consensus {
                item: (*item).to_string(),
                file: m
                    .values()
                    .next()
                    .map(|l| l.file.clone())
                    .unwrap_or_default(),
                annotators: n,
                realistic,
                tie,
                votes,
                tags: tag_votes
                    .iter()
                    .filter(|(_, v)| 2 * v > n)
                    .map(|(t, _)| (*t).to_string())
                    .collect(),
                tied_tags: tag_votes
                    .iter()
                    .filter(|(_, v)| *v > 0 && 2 * v == n)
                    .map(|(t, _)| (*t).to_string())
                    .collect(),
            }
        })
        .collect();
    disputed.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));

    Agreement {
        items: by_item.len(),
        annotators,
        compared_items: compared.len(),
        percent_agreement: mean_pairwise_agreement(&realism_counts),
        cohen_kappa: cohen_mean,
        cohen_kappa_pairs: pairs,
        fleiss_kappa: fleiss_kappa(&realism_counts),
        per_tag,
        consensus,
        conflicts: disputed.into_iter().map(|(_, item)| item).collect(),
    }
}

/// Cohen's kappa of paired ratings `(a, b)` in `categories` categories:
/// κ = (p_o − p_e) / (1 − p_e), p_e from each rater's own category shares.
pub fn cohen_kappa(ratings: &[(usize, usize)], categories: usize) -> Option<f64> {
    if ratings.is_empty() {
        return None;
    }
    let n = ratings.len() as f64;
    let (mut na, mut nb) = (vec![0usize; categories], vec![0usize; categories]);
    let mut agree = 0usize;
    for &(a, b) in ratings {
        na[a] += 1;
        nb[b] += 1;
        agree += usize::from(a == b);
    }
    let observed = agree as f64 / n;
    let expected: f64 = na.iter().zip(&nb).map(|(x, y)| (x * y) as f64).sum::<f64>() / (n * n);
    chance_corrected(observed, expected)
}

/// Fleiss' kappa of `counts[item][category]` (raters per category); items with fewer than two
/// ratings are skipped, and the number of raters may vary between items.
pub fn fleiss_kappa(counts: &[Vec<usize>]) -> Option<f64> {
    let rated: Vec<&Vec<usize>> = counts
        .iter()
        .filter(|c| c.iter().sum::<usize>() >= 2)
        .collect();
    let observed = mean_pairwise_agreement(counts)?;
    let categories = rated.first().map_or(0, |c| c.len());
    let total: usize = rated.iter().map(|c| c.iter().sum::<usize>()).sum();
    let expected: f64 = (0..categories)
        .map(|j| {
            let share = rated.iter().map(|c| c[j]).sum::<usize>() as f64 / total as f64;
            share * share
        })
        .sum();
    chance_corrected(observed, expected)
}

/// Fleiss' P̄: per item, the share of ordered rater pairs that agree, averaged over items with
/// two or more ratings.
pub fn mean_pairwise_agreement(counts: &[Vec<usize>]) -> Option<f64> {
    let per_item: Vec<f64> = counts
        .iter()
        .filter_map(|c| {
            let n: usize = c.iter().sum();
            (n >= 2).then(|| {
                c.iter().map(|k| k * k.saturating_sub(1)).sum::<usize>() as f64
                    / (n * (n - 1)) as f64
            })
        })
        .collect();
    (!per_item.is_empty()).then(|| per_item.iter().sum::<f64>() / per_item.len() as f64)
}

/// (p_o − p_e) / (1 − p_e), undefined when chance agreement is (numerically) certain.
fn chance_corrected(observed: f64, expected: f64) -> Option<f64> {
    (1.0 - expected > 1e-12).then(|| (observed - expected) / (1.0 - expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expands a 2×2 (or k×k) contingency table into paired ratings.
    fn pairs(table: &[&[usize]]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (a, row) in table.iter().enumerate() {
            for (b, &n) in row.iter().enumerate() {
                out.extend(std::iter::repeat_n((a, b), n));
            }
        }
        out
    }

    #[test]
    fn cohen_matches_published_examples() {
        // Wikipedia, "Cohen's kappa", worked example: 50 proposals, yes/yes 20, yes/no 5,
        // no/yes 10, no/no 15 → p_o = 0.7, p_e = 0.5, κ = 0.4.
        let k = cohen_kappa(&pairs(&[&[20, 5], &[10, 15]]), 2).expect("defined");
        assert!((k - 0.4).abs() < 1e-12, "{k}");
        // Same article, "same percent agreement, different kappa": (45, 15; 25, 15) gives
        // κ = 0.1304 and (25, 35; 5, 35) gives κ = 0.2593.
        let k = cohen_kappa(&pairs(&[&[45, 15], &[25, 15]]), 2).expect("defined");
        assert!((k - 0.1304).abs() < 1e-4, "{k}");
        let k = cohen_kappa(&pairs(&[&[25, 35], &[5, 35]]), 2).expect("defined");
        assert!((k - 0.2593).abs() < 1e-4, "{k}");
        // Perfect agreement is 1; everything in one category is undefined, not 1.
        assert_eq!(cohen_kappa(&pairs(&[&[3, 0], &[0, 4]]), 2), Some(1.0));
        assert_eq!(cohen_kappa(&pairs(&[&[5, 0], &[0, 0]]), 2), None);
        assert_eq!(cohen_kappa(&[], 2), None);
    }

    #[test]
    fn fleiss_matches_the_published_example() {
        // Wikipedia, "Fleiss' kappa", worked example: 14 raters, 10 subjects, 5 categories;
        // P̄ = 0.378, P̄e = 0.213, κ = 0.210.
        let table: Vec<Vec<usize>> = [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
        .iter()
        .map(|r| r.to_vec())
        .collect();
        let p = mean_pairwise_agreement(&table).expect("defined");
        assert!((p - 0.378).abs() < 5e-4, "{p}");
        let k = fleiss_kappa(&table).expect("defined");
        assert!((k - 0.210).abs() < 5e-4, "{k}");
    }

    #[test]
    fn fleiss_with_two_raters_is_scotts_pi() {
        // Two raters on the Cohen example: Fleiss pools both raters' shares (Scott's π):
        // yes (25 + 30)/100 = 0.55, no 0.45 → p_e = 0.505, π = (0.7 − 0.505)/0.495.
        let table: Vec<Vec<usize>> = pairs(&[&[20, 5], &[10, 15]])
            .iter()
            .map(|&(a, b)| {
                let mut c = vec![0, 0];
                c[a] += 1;
                c[b] += 1;
                c
            })
            .collect();
        let k = fleiss_kappa(&table).expect("defined");
        assert!((k - 0.195 / 0.495).abs() < 1e-12, "{k}");
    }

    fn label(item: usize, annotator: &str, realistic: Option<bool>, tags: &[&str]) -> Label {
        Label {
            item: format!("{item:064x}"),
            file: format!("{item}.png"),
            annotator: annotator.into(),
            realistic,
            tags: tags.iter().map(|t| (*t).to_string()).collect(),
            note: String::new(),
            updated_at: "2026-11-23T09:00:00Z".into(),
        }
    }

    #[test]
    fn labels_to_statistics() {
        // Two experts on 10 images: both realistic on 0–3, both fake on 4–6, ann realistic /
        // bob fake on 7, ann fake / bob unsure on 8, both unsure on 9; carol labels 0 only and
        // image 10 is labelled by ann alone.
        let mut labels = Vec::new();
        for i in 0..10 {
            let (a, b) = match i {
                0..=3 => (Some(true), Some(true)),
                4..=6 => (Some(false), Some(false)),
                7 => (Some(true), Some(false)),
                8 => (Some(false), None),
                _ => (None, None),
            };
            labels.push(label(i, "ann", a, if i < 5 { &["ring"] } else { &[] }));
            labels.push(label(i, "bob", b, if i < 4 { &["ring"] } else { &[] }));
        }
        labels.push(label(0, "carol", Some(false), &["ring", "halo"]));
        labels.push(label(10, "ann", Some(true), &[]));
        let s = agreement(&labels);
        assert_eq!(s.items, 11);
        assert_eq!(s.annotators, ["ann", "bob", "carol"]);
        assert_eq!(s.compared_items, 10);
        // ann–bob by hand: agree on 8 of 10. ann shares (fake, real, unsure) = (.4, .5, .1),
        // bob (.4, .4, .2): p_e = .16 + .20 + .02 = .38 → κ = (.8 − .38)/.62.
        let ab = &s.cohen_kappa_pairs[0];
        assert_eq!((ab.a.as_str(), ab.b.as_str(), ab.items), ("ann", "bob", 10));
        assert_eq!(ab.percent_agreement, Some(0.8));
        let k_ab = 0.42 / 0.62;
        assert!((ab.kappa.expect("defined") - k_ab).abs() < 1e-12);
        // ann–carol and bob–carol share one item and disagree there: p_o = p_e = 0, κ = 0.
        assert_eq!(s.cohen_kappa_pairs[1].items, 1);
        assert_eq!(s.cohen_kappa_pairs[1].kappa, Some(0.0));
        assert!((s.cohen_kappa.expect("defined") - k_ab / 3.0).abs() < 1e-12);
        // Image 0 has three raters (2 realistic, 1 fake): P_0 = 2/6; the others 1 or 0.
        let p = (2.0 / 6.0 + 7.0) / 10.0;
        assert!((s.percent_agreement.expect("defined") - p).abs() < 1e-12);
        let ring = &s.per_tag[TAGS.iter().position(|t| *t == "ring").expect("tag")];
        assert_eq!(ring.positives, 10);
        // Ring: image 4 disagrees (1 of 2); image 0 all three agree.
        assert_eq!(ring.percent_agreement, Some(0.9));
        let c0 = &s.consensus[0];
        assert_eq!(
            (c0.realistic, c0.tie, c0.votes),
            (Some(true), false, [1, 2, 0])
        );
        assert_eq!(c0.tags, ["ring"]);
        assert!(c0.tied_tags.is_empty());
        let c7 = &s.consensus[7];
        assert_eq!((c7.realistic, c7.tie), (None, true));
        // Disputed: 0 (realism 2/3 + halo 2/3), 7 and 8 (realism 1), 4 (ring 1): 0 first.
        assert_eq!(s.conflicts.len(), 4);
        assert_eq!(s.conflicts[0], format!("{:064x}", 0));
    }
}
