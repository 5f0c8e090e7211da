//! The label record: one line of `labels.jsonl`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time::parse_rfc3339;

/// The tags an annotator may give: the 15-label training set (`DOMAIN.md` §1), in model order.
pub const TAGS: [&str; 15] = synth::scattering::TRAINING_TAGS;

/// Longest accepted annotator name, file name and note, in characters: a label is a short thing,
/// and a line far longer than this is a wrong file, not a label.
const MAX_NAME_CHARS: usize = 200;
const MAX_FILE_CHARS: usize = 1000;
const MAX_NOTE_CHARS: usize = 20_000;

/// One annotator's label of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Hex SHA-256 of the image file's bytes ([`item_id`]).
    pub item: String,
    /// The image's file name where the annotator saw it (informative; `item` identifies it).
    pub file: String,
    /// Who gave the label.
    pub annotator: String,
    /// Realistic (`true`), fake (`false`) or unsure (`null`).
    #[serde(default)]
    pub realistic: Option<bool>,
    /// Tags from [`TAGS`], in that order.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free note.
    #[serde(default)]
    pub note: String,
    /// When the label was last changed, RFC 3339.
    pub updated_at: String,
}

/// A label file that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// A line of `labels.jsonl` (1-based) is not a valid label.
    #[error("labels.jsonl line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong, in words a user can act on.
        reason: String,
    },
    /// The file as a whole cannot be read (not a zip or JSONL, missing parts, too large).
    #[error("{0}")]
    File(String),
}

/// The key of an image: the lowercase hex SHA-256 of its file's bytes.
pub fn item_id(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Label {
    /// Checks every field and puts the label in canonical form (lowercase item, tags in
    /// vocabulary order); the error says what to fix.
    pub fn validated(mut self) -> Result<Self, String> {
        self.item = self.item.to_ascii_lowercase();
        if self.item.len() != 64 || !self.item.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "\"item\" must be the 64-digit hex SHA-256 of the image bytes, got {:?}",
                truncate(&self.item)
            ));
        }
        let annotator = self.annotator.trim();
        if annotator.is_empty() || annotator.chars().count() > MAX_NAME_CHARS {
            return Err(format!(
                "\"annotator\" must be a name of 1 to {MAX_NAME_CHARS} characters"
            ));
        }
        if annotator.chars().any(char::is_control) {
            return Err("\"annotator\" must not contain control characters".into());
        }
        self.annotator = annotator.to_string();
        if self.file.chars().count() > MAX_FILE_CHARS {
            return Err(format!(
                "\"file\" is longer than {MAX_FILE_CHARS} characters"
            ));
        }
        if self.note.chars().count() > MAX_NOTE_CHARS {
            return Err(format!(
                "\"note\" is longer than {MAX_NOTE_CHARS} characters"
            ));
        }
        if let Some(bad) = self.tags.iter().find(|t| !TAGS.contains(&t.as_str())) {
            return Err(format!(
                "unknown tag {:?}; tags are: {}",
                truncate(bad),
                TAGS.join(", ")
            ));
        }
        self.tags = TAGS
            .iter()
            .filter(|t| self.tags.iter().any(|g| g == *t))
            .map(|t| (*t).to_string())
            .collect();
        if parse_rfc3339(&self.updated_at).is_none() {
            return Err(format!(
                "\"updated_at\" must be an RFC 3339 time such as 2026-11-23T09:30:00Z, got {:?}",
                truncate(&self.updated_at)
            ));
        }
        Ok(self)
    }

    /// Whether the label has tag `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// At most 60 characters of `s`, for quoting user input in messages.
fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// Every label of a `labels.jsonl` text, validated; blank lines are skipped. The first bad line
/// fails the whole file, so nothing half-read is ever stored.
pub fn parse_jsonl(text: &str) -> Result<Vec<Label>, LabelError> {
    let mut labels = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fail = |reason: String| LabelError::Line {
            line: n + 1,
            reason,
        };
        let label: Label = serde_json::from_str(line).map_err(|e| {
            fail(format!(
                "not a label ({e}); expected {{\"item\", \"file\", \"annotator\", \"realistic\", \"tags\", \"note\", \"updated_at\"}}"
            ))
        })?;
        labels.push(label.validated().map_err(fail)?);
    }
    Ok(labels)
}

/// `labels` as `labels.jsonl` text, one line each, newline-terminated.
pub fn to_jsonl(labels: &[Label]) -> String {
    let mut out = String::new();
    for label in labels {
        // Serialising plain strings, bools and lists cannot fail.
        if let Ok(line) = serde_json::to_string(label) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn line(item: char, annotator: &str, realistic: &str, tags: &str) -> String {
        format!(
            r#"{{"item":"{}","file":"a.png","annotator":"{annotator}","realistic":{realistic},"tags":[{tags}],"note":"","updated_at":"2026-11-23T09:00:00Z"}}"#,
            item.to_string().repeat(64)
        )
    }

    #[test]
    fn item_id_is_sha256_hex() {
        assert_eq!(
            item_id(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parses_and_canonicalises() {
        let text = format!(
            "{}\n\n{}\n",
            line('A', " ann ", "true", r#""ring","low-q""#),
            line('b', "bob", "null", "")
        );
        let labels = parse_jsonl(&text).expect("valid");
        assert_eq!(labels.len(), 2);
        assert_eq!(labels[0].item, "a".repeat(64));
        assert_eq!(labels[0].annotator, "ann");
        assert_eq!(labels[0].tags, ["low-q", "ring"]);
        assert_eq!(labels[1].realistic, None);
        assert_eq!(parse_jsonl(&to_jsonl(&labels)).expect("round trip"), labels);
    }

    #[test]
    fn a_bad_line_names_its_number_and_the_fix() {
        let good = line('a', "ann", "true", "");
        let cases = [
            (line('g', "ann", "true", ""), "64-digit hex"),
            (line('a', " ", "true", ""), "annotator"),
            (line('a', "ann", "\"yes\"", ""), "not a label"),
            (
                line('a', "ann", "true", r#""rings""#),
                "unknown tag \"rings\"",
            ),
            (
                good.replace("2026-11-23T09:00:00Z", "yesterday"),
                "RFC 3339",
            ),
            (r#"{"file":"x.png","tags":[]}"#.to_string(), "missing field"),
            ("not json".to_string(), "not a label"),
        ];
        for (bad, expect) in cases {
            let err = parse_jsonl(&format!("{good}\n{bad}\n{good}")).expect_err(&bad);
            let LabelError::Line { line, reason } = &err else {
                panic!("{err:?}")
            };
            assert_eq!(*line, 2, "{bad}");
            assert!(reason.contains(expect), "{reason} lacks {expect}");
        }
    }
}
