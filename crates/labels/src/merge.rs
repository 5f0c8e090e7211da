//! Merging label sets: one label per (image, annotator), the most recently changed one.

use std::collections::HashMap;

use crate::Label;
use crate::time::parse_rfc3339;

/// The result of merging incoming labels into existing ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Merged {
    /// Existing labels (in their order, some replaced in place) followed by new ones.
    pub labels: Vec<Label>,
    /// Incoming labels for an (image, annotator) not seen before.
    pub added: usize,
    /// Incoming labels newer than the one they replace.
    pub updated: usize,
    /// Incoming labels identical to one already there (a re-import), skipped.
    pub duplicates: usize,
    /// Incoming labels older than (or as old as, but different from) the one already there, skipped.
    pub stale: usize,
}

/// Merges `incoming` into `existing`: a label for a new (image, annotator) is added, a newer one
/// (by `updated_at`, time zones accounted for) replaces the old one, anything else is skipped
/// and counted. Labels must be validated ([`Label::validated`]); an unparsable time counts as
/// oldest.
pub fn merge(existing: &[Label], incoming: &[Label]) -> Merged {
    let mut out = Merged {
        labels: existing.to_vec(),
        ..Merged::default()
    };
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    // Existing sets may themselves hold repeats (two exports concatenated): the newest wins.
    let mut kept: Vec<Label> = Vec::with_capacity(existing.len());
    for label in existing {
        let key = (label.item.clone(), label.annotator.clone());
        match index.get(&key) {
            Some(&at) if newer(label, &kept[at]) => kept[at] = label.clone(),
            Some(_) => {}
            None => {
                index.insert(key, kept.len());
                kept.push(label.clone());
            }
        }
    }
    out.labels = kept;
    for label in incoming {
        let key = (label.item.clone(), label.annotator.clone());
        match index.get(&key) {
            None => {
                index.insert(key, out.labels.len());
                out.labels.push(label.clone());
                out.added += 1;
            }
            Some(&at) if out.labels[at] == *label => out.duplicates += 1,
            Some(&at) if newer(label, &out.labels[at]) => {
                out.labels[at] = label.clone();
                out.updated += 1;
            }
            Some(_) => out.stale += 1,
        }
    }
    out
}

/// Whether `a` was changed strictly after `b`.
fn newer(a: &Label, b: &Label) -> bool {
    parse_rfc3339(&a.updated_at) > parse_rfc3339(&b.updated_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(item: char, annotator: &str, realistic: Option<bool>, at: &str) -> Label {
        Label {
            item: item.to_string().repeat(64),
            file: "x.png".into(),
            annotator: annotator.into(),
            realistic,
            tags: vec![],
            note: String::new(),
            updated_at: at.into(),
        }
    }

    #[test]
    fn newest_label_per_image_and_annotator_wins() {
        let existing = vec![
            label('a', "ann", Some(true), "2026-11-20T10:00:00Z"),
            label('b', "ann", Some(false), "2026-11-20T10:00:00Z"),
        ];
        let incoming = vec![
            label('a', "ann", Some(true), "2026-11-20T10:00:00Z"), // re-import
            label('b', "ann", Some(true), "2026-11-20T11:00:00+02:00"), // 09:00Z: older
            label('a', "bob", None, "2026-11-21T10:00:00Z"),       // new annotator
            label('a', "ann", Some(false), "2026-11-20T10:00:01Z"), // newer
        ];
        let m = merge(&existing, &incoming);
        assert_eq!((m.added, m.updated, m.duplicates, m.stale), (1, 1, 1, 1));
        assert_eq!(m.labels.len(), 3);
        assert_eq!(m.labels[0].realistic, Some(false));
        assert_eq!(m.labels[1].realistic, Some(false));
        assert_eq!(m.labels[2].annotator, "bob");
        // Merging is idempotent.
        let again = merge(&m.labels, &incoming);
        assert_eq!(again.labels, m.labels);
        assert_eq!((again.added, again.updated), (0, 0));
    }
}
