//! The mutation campaign on what experts' browsers import: label exports (zip or bare
//! `labels.jsonl`) and annotation packs, through `exchange::read`, the one reader the Dataset
//! and Annotate pages and `synthscope labels` use. Mutated zips (headers, central directory,
//! entry contents, `pack.json`, JSON lines) must be read or refused with a message — never a
//! panic — and no single allocation may exceed [`ALLOCATION_LIMIT`]. The harness is shared
//! with `imaging`'s campaign (`imaging/tests/fuzzing/mod.rs`); 10 000 mutations per seed in CI.

// The shared harness counts allocations with a `GlobalAlloc`, which is unsafe to implement.
#![allow(unsafe_code)]

#[allow(dead_code)]
#[path = "../../imaging/tests/fuzzing/mod.rs"]
mod fuzzing;

use fuzzing::{campaign, iterations, quietly, report_and_check};
use synthscope_labels::exchange::{Image, read, write_export, write_pack};
use synthscope_labels::{Label, to_jsonl};

/// Far below the readers' 1 GiB total for a whole archive: a mutated file of a few KB must not
/// make the reader reserve more than this at once.
const ALLOCATION_LIMIT: usize = 16 << 20;

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let images = vec![
        Image::new("ring.png", (0..600u32).map(|i| (i * 7) as u8).collect()),
        Image::new("halo.tif", vec![9; 300]),
    ];
    let labels: Vec<Label> = images
        .iter()
        .enumerate()
        .map(|(i, image)| Label {
            item: image.item.clone(),
            file: image.file.clone(),
            annotator: format!("expert{i}"),
            realistic: Some(i == 0),
            tags: vec!["ring".into()],
            note: "sharp ring".into(),
            updated_at: "2026-12-06T09:00:00Z".into(),
        })
        .collect();
    vec![
        (
            "label export (zip)",
            write_export(&labels, &images).expect("zip"),
        ),
        (
            "annotation pack",
            write_pack(
                "round-1",
                "Judge each image",
                "lead",
                "2026-12-06T08:00:00Z",
                &images,
            )
            .expect("pack"),
        ),
        ("labels.jsonl", to_jsonl(&labels).into_bytes()),
    ]
}

#[test]
fn mutated_label_files_and_packs_are_read_or_refused_never_a_panic() {
    let n = iterations();
    let mut results = Vec::new();
    for (k, (kind, seed)) in seeds().iter().enumerate() {
        let name = if kind.ends_with("jsonl") {
            "labels.jsonl"
        } else {
            "labels.zip"
        };
        let readable = |bytes: &[u8]| match read(name, bytes) {
            Ok(_) => true,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        };
        assert!(readable(seed), "{kind}: the seed itself must read");
        results.push((
            *kind,
            quietly(|| campaign(seed, n, 0xA11CE + k as u64, readable)),
        ));
    }
    for (kind, tally) in &results {
        report_and_check(kind, tally, ALLOCATION_LIMIT);
    }
}
