//! The mutation campaign on weights files, which users import (a fine-tuned realism round in
//! the Dataset page, `--model` files on the command line): the grain networks, the denoiser
//! file both generators share, the realism ensemble and the tagger (small networks of the
//! shipped layouts, so that 10 000 mutations take seconds). Mutated magic, JSON headers (sizes, shapes, hostile numbers) and
//! records must be read or refused with a message — never a panic — and no single allocation
//! may exceed [`ALLOCATION_LIMIT`]. The harness is shared with `imaging`'s campaign
//! (`imaging/tests/fuzzing/mod.rs`).

// The shared harness counts allocations with a `GlobalAlloc`, which is unsafe to implement.
#![allow(unsafe_code)]

#[allow(dead_code)]
#[path = "../../imaging/tests/fuzzing/mod.rs"]
mod fuzzing;

use burn::tensor::Device;
use fuzzing::{campaign, iterations, quietly, report_and_check};
use synthscope_models::diffusion::tem::{TemGenerator, default_tem_denoiser};
use synthscope_models::grain::GrainModel;
use synthscope_models::realism::{Ensemble, Family, MemberConfig};
use synthscope_models::tagger::{TaggerConfig, TaggerSet, View};
use synthscope_models::unet::UNetConfig;

/// A mutated file of a few hundred KB must not make the reader reserve more than this at once
/// (the largest shipped network, the 14 MB scattering generator, needs far less per tensor).
const ALLOCATION_LIMIT: usize = 64 << 20;

/// The JSON header of a weights file (magic, u32 length, JSON, records) and what follows it.
fn header_and_rest(file: &[u8]) -> (&[u8], &[u8]) {
    let len = u32::from_le_bytes([file[8], file[9], file[10], file[11]]) as usize;
    (&file[12..12 + len], &file[12 + len..])
}

/// `file`'s magic, then `json` with its length, then `rest`.
fn with_header(file: &[u8], json: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut out = file[..8].to_vec();
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(json);
    out.extend_from_slice(rest);
    out
}

#[test]
fn mutated_weights_files_are_read_or_refused_never_a_panic() {
    let device = Device::flex();
    let grain = GrainModel::init(UNetConfig::new(4, 4, 2), UNetConfig::new(6, 4, 1), &device)
        .to_bytes()
        .expect("grain file");
    let config = default_tem_denoiser()
        .with_base_width(8)
        .with_blocks_per_level(1)
        .with_groups(4);
    let tem = TemGenerator::init(config, 16, &device)
        .and_then(|g| g.to_bytes())
        .expect("TEM generator file");
    // What the Dataset page imports: a realism round (one small member of each family).
    let realism = Ensemble::init(
        Family::ALL
            .iter()
            .map(|&f| MemberConfig::new(f).with_width(4))
            .collect(),
        &device,
    )
    .to_bytes()
    .expect("realism file");
    let tagger = TaggerSet::init(
        vec![
            TaggerConfig::new(View::Joint)
                .with_image_channels(4)
                .with_coeff_hidden(8)
                .with_embedding(8),
        ],
        (0..15).map(|i| format!("tag{i}")).collect(),
        &device,
    )
    .to_bytes()
    .expect("tagger file");
    let n = iterations();
    let refused = |e: String| {
        assert!(!e.is_empty());
        false
    };
    let read_grain = |b: &[u8]| {
        GrainModel::from_bytes(b, &device).map_or_else(|e| refused(e.to_string()), |_| true)
    };
    let read_tem = |b: &[u8]| {
        TemGenerator::from_bytes(b, &device).map_or_else(|e| refused(e.to_string()), |_| true)
    };
    let read_realism = |b: &[u8]| {
        Ensemble::from_bytes(b, &device).map_or_else(|e| refused(e.to_string()), |_| true)
    };
    let read_tagger = |b: &[u8]| {
        TaggerSet::from_bytes(b, &device).map_or_else(|e| refused(e.to_string()), |_| true)
    };
    assert_eq!(
        GrainModel::from_bytes(&grain, &device)
            .err()
            .map(|e| e.to_string()),
        None
    );
    assert_eq!(
        TemGenerator::from_bytes(&tem, &device)
            .err()
            .map(|e| e.to_string()),
        None
    );
    assert_eq!(
        Ensemble::from_bytes(&realism, &device)
            .err()
            .map(|e| e.to_string()),
        None
    );
    assert_eq!(
        TaggerSet::from_bytes(&tagger, &device)
            .err()
            .map(|e| e.to_string()),
        None
    );
    // Whole files, and their JSON headers alone put back with a correct length (so that hostile
    // shapes and record sizes reach the reader instead of a length mismatch).
    let (grain_json, grain_rest) = header_and_rest(&grain);
    let (tem_json, tem_rest) = header_and_rest(&tem);
    let grain_header = |json: &[u8]| read_grain(&with_header(&grain, json, grain_rest));
    let tem_header = |json: &[u8]| read_tem(&with_header(&tem, json, tem_rest));
    let (realism_json, realism_rest) = header_and_rest(&realism);
    let realism_header = |json: &[u8]| read_realism(&with_header(&realism, json, realism_rest));
    let (tagger_json, tagger_rest) = header_and_rest(&tagger);
    let tagger_header = |json: &[u8]| read_tagger(&with_header(&tagger, json, tagger_rest));
    let results = [
        (
            "grain networks",
            quietly(|| campaign(&grain, n, 0x6A41, read_grain)),
        ),
        (
            "grain header",
            quietly(|| campaign(grain_json, n, 0x6A42, grain_header)),
        ),
        (
            "TEM generator",
            quietly(|| campaign(&tem, n, 0x7E3, read_tem)),
        ),
        (
            "TEM generator header",
            quietly(|| campaign(tem_json, n, 0x7E4, tem_header)),
        ),
        (
            "realism ensemble",
            quietly(|| campaign(&realism, n, 0x2EA1, read_realism)),
        ),
        (
            "realism header",
            quietly(|| campaign(realism_json, n, 0x2EA2, realism_header)),
        ),
        (
            "tagger",
            quietly(|| campaign(&tagger, n, 0x7A6, read_tagger)),
        ),
        (
            "tagger header",
            quietly(|| campaign(tagger_json, n, 0x7A7, tagger_header)),
        ),
    ];
    for (kind, tally) in &results {
        report_and_check(kind, tally, ALLOCATION_LIMIT);
    }
}

/// What the campaign found, kept: a grain file whose header asked `init` for a 2 TB network
/// (an out-of-memory abort, not a panic, before the budget check), and realism members of
/// width 0 (burn divides by the fan-in) or 13 (GroupNorm groups that do not divide 26).
#[test]
fn headers_the_campaign_found_are_refused() {
    let device = Device::flex();
    let grain = GrainModel::init(UNetConfig::new(4, 4, 2), UNetConfig::new(6, 4, 1), &device)
        .to_bytes()
        .expect("grain file");
    let (json, rest) = header_and_rest(&grain);
    let text =
        String::from_utf8_lossy(json).replace("\"base_channels\":4", "\"base_channels\":99999999");
    let e = GrainModel::from_bytes(&with_header(&grain, text.as_bytes(), rest), &device)
        .expect_err("a 2 TB network");
    assert!(e.to_string().contains("parameters"), "{e}");
    let realism = Ensemble::init(
        vec![MemberConfig::new(Family::Resnet).with_width(4)],
        &device,
    )
    .to_bytes()
    .expect("realism file");
    let (json, rest) = header_and_rest(&realism);
    for width in ["0", "13"] {
        let text =
            String::from_utf8_lossy(json).replace("\"width\":4", &format!("\"width\":{width}"));
        let e = Ensemble::from_bytes(&with_header(&realism, text.as_bytes(), rest), &device)
            .expect_err("a member that cannot be built");
        assert!(
            e.to_string().contains("cannot be built"),
            "width {width}: {e}"
        );
    }
}
