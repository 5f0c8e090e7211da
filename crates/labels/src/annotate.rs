//! What the Annotate page does that is not the DOM: its keyboard map and the queue order.

use crate::TAGS;

/// A key's meaning on the Annotate page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Label the image realistic and go to the next one.
    Realistic,
    /// Label it fake and go on.
    Fake,
    /// Label it unsure and go on.
    Unsure,
    /// Toggle the tag with this index in [`TAGS`].
    ToggleTag(usize),
    /// Next image.
    Next,
    /// Previous image.
    Previous,
    /// Undo the last change.
    Undo,
    /// Show or hide the help overlay.
    Help,
    /// Zoom in.
    ZoomIn,
    /// Zoom out.
    ZoomOut,
    /// Fit the image to the view.
    ZoomReset,
    /// Write a note (focuses the note field).
    Note,
}

/// The keys that toggle the tags, in [`TAGS`] order: the digits, then the top letter row
/// without `r` (which answers "realistic").
pub const TAG_KEYS: [&str; 15] = [
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "q", "w", "e", "t", "y",
];

/// The action of a key (`KeyboardEvent.key`), with Ctrl or ⌘ held or not.
pub fn action(key: &str, ctrl_or_meta: bool) -> Option<Action> {
    if ctrl_or_meta {
        return matches!(key, "z" | "Z").then_some(Action::Undo);
    }
    if let Some(i) = TAG_KEYS.iter().position(|k| *k == key) {
        return Some(Action::ToggleTag(i));
    }
    Some(match key {
        "r" | "R" => Action::Realistic,
        "f" | "F" => Action::Fake,
        "u" | "U" => Action::Unsure,
        "ArrowRight" | "n" | "j" | " " => Action::Next,
        "ArrowLeft" | "p" | "k" => Action::Previous,
        "z" | "Backspace" => Action::Undo,
        "?" | "h" => Action::Help,
        "+" | "=" => Action::ZoomIn,
        "-" => Action::ZoomOut,
        "." => Action::ZoomReset,
        "m" => Action::Note,
        _ => return None,
    })
}

/// (keys, what they do) for the help overlay and the on-screen hints.
pub fn help() -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = [
        ("r", "realistic, then next image"),
        ("f", "fake, then next image"),
        ("u", "unsure, then next image"),
        ("→ n j space", "next image"),
        ("← p k", "previous image"),
        ("z ⌫ Ctrl+Z", "undo the last change"),
        ("m", "write a note (Esc leaves the note)"),
        ("+ − .", "zoom in, out, fit"),
        ("? h", "this help"),
    ]
    .iter()
    .map(|(k, d)| ((*k).to_string(), (*d).to_string()))
    .collect();
    rows.extend(
        TAG_KEYS
            .iter()
            .zip(TAGS)
            .map(|(k, t)| ((*k).to_string(), format!("toggle tag “{t}”"))),
    );
    rows
}

/// How the queue is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The pack's (or arrival) order.
    Pack,
    /// Most uncertain model prediction first (active learning); images without a prediction
    /// come last, in pack order.
    Uncertainty,
    /// A shuffle that is the same on every reload for the same seed.
    Random,
}

/// One queue entry's ordering facts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueEntry {
    /// Position in the pack or arrival order.
    pub order: u64,
    /// The model's realism score and its decision threshold, if predicted.
    pub prediction: Option<(f64, f64)>,
}

/// How uncertain a prediction is, 0 (sure) to 1 (on the threshold): one minus the distance to
/// the threshold relative to the room on that side of it.
pub fn uncertainty(score: f64, threshold: f64) -> f64 {
    let room = if score >= threshold {
        1.0 - threshold
    } else {
        threshold
    };
    if room <= 0.0 {
        return 0.0;
    }
    (1.0 - (score - threshold).abs() / room).clamp(0.0, 1.0)
}

/// Indices of `entries` in annotation order.
pub fn queue(entries: &[QueueEntry], order: Order, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..entries.len()).collect();
    idx.sort_by_key(|&i| entries[i].order);
    match order {
        Order::Pack => {}
        Order::Uncertainty => {
            // Stable: ties keep pack order.
            idx.sort_by(|&a, &b| {
                let u = |i: usize| entries[i].prediction.map(|(s, t)| uncertainty(s, t));
                match (u(a), u(b)) {
                    (Some(x), Some(y)) => y.total_cmp(&x),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                }
            });
        }
        Order::Random => crate::rng::shuffle(&mut idx, seed),
    }
    idx
}

/// FNV-1a, 64 bits: a stable hash for seeds and keys (the same in every browser and build).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_meaning() {
        assert_eq!(action("r", false), Some(Action::Realistic));
        assert_eq!(action("z", true), Some(Action::Undo));
        assert_eq!(action("r", true), None);
        assert_eq!(action("1", false), Some(Action::ToggleTag(0)));
        assert_eq!(action("y", false), Some(Action::ToggleTag(14)));
        assert_eq!(action("x", false), None);
        // No tag key shadows another action.
        for key in TAG_KEYS {
            assert!(!["r", "f", "u", "n", "p", "j", "k", "z", "h", "m"].contains(&key));
        }
        assert_eq!(help().len(), 9 + TAGS.len());
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        // The FNV test vectors: "" and "a".
        assert_eq!(fnv1a(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(*b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn uncertainty_peaks_at_the_threshold() {
        assert_eq!(uncertainty(0.4, 0.4), 1.0);
        assert_eq!(uncertainty(1.0, 0.4), 0.0);
        assert_eq!(uncertainty(0.0, 0.4), 0.0);
        assert!((uncertainty(0.7, 0.4) - 0.5).abs() < 1e-12);
        assert!((uncertainty(0.2, 0.4) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn queue_orders() {
        let e = |order, p| QueueEntry {
            order,
            prediction: p,
        };
        let entries = [
            e(2, Some((0.9, 0.5))),
            e(0, None),
            e(1, Some((0.5, 0.5))),
            e(3, Some((0.3, 0.5))),
        ];
        assert_eq!(queue(&entries, Order::Pack, 0), [1, 2, 0, 3]);
        // Uncertainties: 0 → 0.2, 2 → 1, 3 → 0.6; unpredicted last.
        assert_eq!(queue(&entries, Order::Uncertainty, 0), [2, 3, 0, 1]);
        let shuffled = queue(&entries, Order::Random, 7);
        assert_eq!(shuffled, queue(&entries, Order::Random, 7));
        let mut sorted = shuffled.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2, 3]);
        let many: Vec<QueueEntry> = (0..50).map(|i| e(i, None)).collect();
        assert_ne!(
            queue(&many, Order::Random, 1),
            queue(&many, Order::Random, 2)
        );
    }
}
