//! HDF5/NeXus files written by h5py and hdf5plugin (`tools/hdf5_reference.py`) read back to the
//! same counts: an Eiger master file with its data file (bitshuffle-LZ4, pixel mask, geometry),
//! a gzip + shuffle NeXus stack with partial chunks, and the plain LZ4 filter.

use std::sync::Arc;

use synthscope_imaging::hdf5::{Sample, linked_from, nothing_linked, open};

fn read(name: &str) -> Arc<[u8]> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("test file")
        .into()
}

/// The script's `counts(frames, h, w)[f, y, x]`.
fn counts(f: usize, y: usize, x: usize) -> i64 {
    if (x * 5 + y * 3).is_multiple_of(37) {
        return 70_000 + x as i64 * 100 + y as i64;
    }
    ((x * 7 + y * 13 + f * 101) % 1000 + 1000 * f) as i64
}

#[test]
fn an_eiger_master_file_reads_its_linked_bitshuffle_frames_mask_and_geometry() {
    let stack = open(
        read("eiger_master.h5"),
        linked_from(vec![(
            "eiger_data_000001.h5".into(),
            read("eiger_data_000001.h5"),
        )]),
    )
    .expect("opens");
    assert_eq!(stack.path, "/entry/data/data_000001");
    assert_eq!((stack.frames, stack.width, stack.height), (3, 52, 40));
    assert_eq!(stack.sample, Sample::Unsigned(4));
    assert_eq!(stack.cutoff_counts, Some(120_000.0));
    let g = &stack.geometry;
    assert_eq!(g.beam_xy_px, Some((25.5, 18.25)));
    assert_eq!(g.distance_m, Some(0.4567));
    assert_eq!(g.wavelength_angstrom, Some(0.9537));
    assert_eq!(g.exposure_s, Some(0.05));
    let (px, py) = g.pixel_size_um.expect("pixel size");
    assert!((px - 75.0).abs() < 1e-9 && (py - 75.0).abs() < 1e-9);
    for f in 0..3 {
        let frame = stack.frame(f).expect("frame");
        for y in 0..40 {
            for x in 0..52 {
                let got = frame.get(x, y);
                // The gap column (2³² − 1 and masked) and the hot pixel (masked) are −1.
                let want = if x == 20 || (x, y) == (4, 3) {
                    -1.0
                } else {
                    counts(f, y, x) as f32
                };
                assert_eq!(got, want, "frame {f} ({x}, {y})");
            }
        }
    }
    let sum = stack.sum(0, 2).expect("sum");
    assert_eq!(sum.get(20, 7), -1.0);
    assert_eq!(
        sum.get(1, 2) as i64,
        (0..3).map(|f| counts(f, 2, 1)).sum::<i64>()
    );
    assert!(
        stack
            .frame(3)
            .expect_err("no frame 3")
            .to_string()
            .contains("0 to 2")
    );
}

#[test]
fn a_master_file_without_its_data_file_says_which_file_to_add() {
    let err = open(read("eiger_master.h5"), nothing_linked()).expect_err("no data file");
    let text = err.to_string();
    assert!(
        text.contains("data_000001") && text.contains("together with the master"),
        "{text}"
    );
}

#[test]
fn a_gzip_shuffle_nexus_stack_with_partial_chunks_reads_exactly() {
    let stack = open(read("nexus_gzip_u16.h5"), nothing_linked()).expect("opens");
    assert_eq!((stack.frames, stack.width, stack.height), (2, 44, 30));
    assert_eq!(stack.sample, Sample::Unsigned(2));
    assert_eq!(stack.geometry, Default::default());
    for f in 0..2 {
        let frame = stack.frame(f).expect("frame");
        for y in 0..30 {
            for x in 0..44 {
                assert_eq!(
                    frame.get(x, y) as i64,
                    counts(f, y, x) % 65_000,
                    "({x}, {y})"
                );
            }
        }
    }
}

#[test]
fn the_lz4_filter_reads_exactly() {
    let stack = open(read("lz4_u32.h5"), nothing_linked()).expect("opens");
    assert_eq!((stack.frames, stack.width, stack.height), (1, 31, 25));
    let frame = stack.frame(0).expect("frame");
    for y in 0..25 {
        for x in 0..31 {
            assert_eq!(frame.get(x, y) as i64, counts(0, y, x), "({x}, {y})");
        }
    }
}

#[test]
fn damaged_files_are_refused_with_a_reason() {
    let bytes = read("nexus_gzip_u16.h5");
    for cut in [8, 100, 1000, bytes.len() / 2] {
        let result = open(bytes[..cut].into(), nothing_linked()).and_then(|s| s.frame(0));
        assert!(result.is_err(), "cut at {cut}");
    }
}
