//! PONI files written by pyFAI (`tools/poni_reference.py`): the beam centre and q per pixel
//! against pyFAI's own `getFit2D` and `qArray` on the same files.

use synthscope_imaging::poni::parse_poni;

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("test file")
}

/// (file, centre x, centre y, tilt °, [(column, row, q Å⁻¹)]) as pyFAI 2026.9.0 printed them.
type Reference = (&'static str, f64, f64, f64, [(usize, usize, f64); 4]);

const REFERENCE: [Reference; 2] = [
    (
        "pilatus1m_tilted.poni",
        469.486_860_940_7,
        401.240_853_820_1,
        0.795_973_557_5,
        [
            (0, 0, 1.973_781_528_398),
            (400, 500, 0.404_064_600_546),
            (900, 980, 2.297_782_777_034),
            (12, 700, 1.767_363_307_820),
        ],
    ),
    (
        "generic_flat.poni",
        506.666_666_666_7,
        500.0,
        0.0,
        [
            (0, 0, 0.403_692_330_869),
            (400, 500, 0.060_446_842_300),
            (900, 980, 0.352_935_984_561),
            (12, 700, 0.303_136_814_990),
        ],
    ),
];

#[test]
fn beam_centre_and_q_match_pyfai() {
    for (file, cx, cy, tilt, pixels) in REFERENCE {
        let p = parse_poni(&read(file)).expect("poni");
        let (x, y) = p.beam_centre_px();
        assert!(
            (x - cx).abs() < 1e-6 && (y - cy).abs() < 1e-6,
            "{file}: ({x}, {y})"
        );
        assert!(
            (p.tilt_deg() - tilt).abs() < 1e-6,
            "{file}: tilt {}",
            p.tilt_deg()
        );
        for (c, r, q) in pixels {
            let got = p.q_inv_angstrom(c as f64 + 0.5, r as f64 + 0.5);
            assert!(
                (got - q).abs() < 1e-6 * q.max(1.0),
                "{file} ({c}, {r}): {got} vs {q}"
            );
        }
    }
    let flat = parse_poni(&read("generic_flat.poni")).expect("poni");
    assert_eq!(flat.shape, Some((1000, 1000)));
    // The flat geometry of an untilted calibration gives pyFAI's q at every radius.
    let g = flat.geometry(1000, 1000);
    let (dx, dy) = (900.5 - g.beam_x_px, 980.5 - g.beam_y_px);
    let q = g.q_at_radius(dx.hypot(dy));
    assert!((q - 0.352_935_984_561).abs() < 1e-6, "{q}");
}
