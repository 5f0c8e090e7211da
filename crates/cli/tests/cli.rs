//! The real `synthscope` binary on real files.

use std::path::Path;
use std::process::{Command, Output};

fn synthscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synthscope"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn labels(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("labels.jsonl"))
        .expect("labels.jsonl exists")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn generate_saxs_writes_16_bit_images_and_one_label_line_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_str().expect("utf-8 path");
    let o = synthscope(&[
        "generate", "saxs", "--count", "4", "--seed", "3", "--size", "256", "--out", out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = labels(dir.path());
    assert_eq!(lines.len(), 4);
    for (i, l) in lines.iter().enumerate() {
        let file = format!("saxs_{i:06}.png");
        assert_eq!(l["file"], file.as_str());
        assert!(l["tags"].is_array() && l["params"].is_object());
        let bytes = std::fs::read(dir.path().join(&file)).expect("image written");
        match imaging::codec::decode_png(&bytes).expect("valid PNG") {
            imaging::codec::GrayImage::U16(img) => {
                assert_eq!((img.width(), img.height()), (256, 256))
            }
            other => panic!(
                "expected 16-bit grayscale, got {:?}",
                std::mem::discriminant(&other)
            ),
        }
    }
    assert!(!dir.path().join("labels.jsonl.partial").exists());
}

#[test]
fn same_seed_gives_byte_identical_files() {
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    for d in [&a, &b] {
        let out = d.path().to_str().expect("utf-8");
        let o = synthscope(&[
            "generate", "tem", "--count", "3", "--seed", "9", "--out", out,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for name in [
        "tem_000000.png",
        "tem_000002_boundary.png",
        "tem_000001_grains.png",
        "labels.jsonl",
    ] {
        let (x, y) = (
            std::fs::read(a.path().join(name)).expect("a"),
            std::fs::read(b.path().join(name)).expect("b"),
        );
        assert!(x == y, "{name} differs between two runs with the same seed");
    }
}

#[test]
fn generate_tem_writes_masks_and_grain_statistics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_str().expect("utf-8");
    let o = synthscope(&[
        "generate", "tem", "--count", "2", "--seed", "1", "--width", "300", "--height", "120",
        "--out", out, "--format", "tiff",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = labels(dir.path());
    assert_eq!(lines.len(), 2);
    let l = &lines[1];
    assert_eq!(l["file"], "tem_000001.tiff");
    assert_eq!(l["boundary"], "tem_000001_boundary.tiff");
    assert_eq!(l["grains"], "tem_000001_grains.tiff");
    assert_eq!(l["tags"], serde_json::json!([]));
    let count = l["grain_count"].as_u64().expect("grain_count");
    assert_eq!(
        l["grain_ecd_px"].as_array().expect("ecd list").len() as u64,
        count
    );
    let grains = imaging::codec::decode_tiff(
        &std::fs::read(dir.path().join("tem_000001_grains.tiff")).expect("file"),
    )
    .expect("tiff");
    let imaging::codec::GrayImage::U16(g) = grains else {
        panic!("grain ids are 16-bit")
    };
    assert_eq!((g.width(), g.height()), (300, 120));
    assert_eq!(u64::from(*g.pixels().iter().max().expect("pixels")), count);
}

#[test]
fn bad_arguments_give_one_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("x");
    let out = out.to_str().expect("utf-8");
    for args in [
        vec!["generate", "saxs", "--count", "many", "--out", out],
        vec!["generate", "saxs", "--count", "0", "--out", out],
        vec![
            "generate", "saxs", "--count", "2", "--size", "100", "--out", out,
        ],
        vec![
            "generate",
            "tem",
            "--count",
            "2",
            "--contrast",
            "3",
            "--out",
            out,
        ],
        vec![
            "generate", "saxs", "--count", "2", "--out", out, "--format", "jpeg",
        ],
        vec!["generate", "xrd", "--count", "2", "--out", out],
    ] {
        let o = synthscope(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error:"), "{args:?}: {err}");
    }
    assert!(
        !dir.path().join("x").join("labels.jsonl").exists(),
        "nothing written for bad arguments"
    );
    let o = synthscope(&[
        "generate", "saxs", "--count", "2", "--size", "100", "--out", out,
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("128 to 2048"));
}

#[test]
fn an_unwritable_output_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a_file");
    std::fs::write(&file, b"x").expect("write");
    let o = synthscope(&[
        "generate",
        "saxs",
        "--count",
        "1",
        "--out",
        file.to_str().expect("utf-8"),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot create the output directory"), "{err}");
}
