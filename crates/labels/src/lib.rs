//! Expert labels: what an annotator said about one image, and everything done with many of them.
//!
//! - [`Label`]: one label per (image, annotator): realistic / fake / unsure, tags from the 15-label
//!   training set, a note and the time it was given. Images are keyed by the hex SHA-256 of their
//!   bytes ([`item_id`]), so the same file has the same key in every browser and in the CLI.
//! - [`exchange`]: the export format (`labels.jsonl`, alone or in a zip with `images/`) and
//!   annotation packs (a zip of images, instructions and a pack id), read in full and validated
//!   before anything is written anywhere.
//! - [`merge()`]: several experts' exports into one set, the latest label per (image, annotator).
//! - [`annotate`]: the Annotate page's keyboard map and queue order (active learning).
//! - [`agreement`]: percent agreement, Cohen's and Fleiss' kappa, per-tag agreement, consensus
//!   labels and the items to review.
//! - [`rounds`]: a realism model's decisions against the experts' consensus, per round of the
//!   human-in-the-loop loop.
//! - [`umap`]: the classifiers' embeddings projected to 2-D for the latent-space view.
//!
//! No I/O: the browser (IndexedDB) and the CLI (files) hand bytes in and take bytes out.

pub mod agreement;
pub mod annotate;
pub mod exchange;
mod merge;
mod record;
pub mod rng;
pub mod rounds;
mod time;
pub mod umap;

pub use agreement::{Agreement, agreement};
pub use merge::{Merged, merge};
pub use record::{Label, LabelError, TAGS, item_id, parse_jsonl, to_jsonl};
pub use time::{Timestamp, format_rfc3339, parse_rfc3339};
