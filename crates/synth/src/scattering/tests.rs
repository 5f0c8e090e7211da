//! Physics checks of the scattering generator on rendered images.

use crate::math::Portable;

use super::*;
use imaging::profile::{azimuthal_profile, radial_profile};

/// Parameters with only `components`, no beamstop, background, streak, zingers or noise.
fn bare(size_px: usize, components: Vec<Component>) -> SaxsParams {
    SaxsParams {
        geometry: Geometry::reference(size_px, 0.5, 0.5),
        detector: DetectorKind::Plain,
        components,
        background: None,
        beamstop: None,
        direct_beam: DirectBeam {
            width_px: 4.0,
            height_px: 3.0,
            peak_counts: 0.0,
        },
        streak: None,
        zingers: Vec::new(),
        exposure: 1.0,
        poisson_noise: false,
        saturation_counts: SATURATION_COUNTS,
        noise_seed: 1,
    }
}

fn ring(q0: f64, width_rel: f64, eta: f64, symmetry: u32) -> Component {
    Component::Ring {
        q0_inv_angstrom: q0,
        width_rel,
        eta,
        symmetry,
        chi0_deg: 20.0,
        amplitude: 1000.0,
        halo: false,
    }
}

fn as_f32(img: &SaxsImage) -> imaging::Image<f32> {
    img.counts.map(|v| v as f32)
}

/// Radius (px) of the maximum of the radial profile beyond `r_min`, refined by a parabola.
fn radial_peak(img: &SaxsImage, p: &SaxsParams, r_min: usize) -> f64 {
    let prof = radial_profile(
        &as_f32(img),
        p.geometry.beam_x_px,
        p.geometry.beam_y_px,
        None,
    );
    let k = (r_min..prof.len() - 1)
        .max_by(|&a, &b| prof[a].0.total_cmp(&prof[b].0))
        .expect("bins");
    let (a, b, c) = (prof[k - 1].0, prof[k].0, prof[k + 1].0);
    // Bin k holds radii [k, k+1): its centre is k + 0.5.
    k as f64 + 0.5 + 0.5 * (a - c) / (a - 2.0 * b + c)
}

#[test]
fn a_ring_at_q0_peaks_at_q0_within_2_percent() {
    for (size, q0) in [(256, 0.05), (1000, 0.02), (1000, 0.09), (512, 0.15)] {
        let p = bare(size, vec![ring(q0, 0.03, 0.0, 2)]);
        let img = render(&p).expect("renders");
        let r = radial_peak(&img, &p, 3);
        let q = p.geometry.q_at_radius(r);
        assert!(
            (q / q0 - 1.0).abs() < 0.02,
            "size {size}: ring at q0={q0} peaks at q={q}"
        );
    }
}

#[test]
fn symmetry_order_n_gives_n_fold_azimuthal_modulation() {
    for n in [2u32, 4, 6, 10] {
        let p = bare(512, vec![ring(0.05, 0.05, 0.8, n)]);
        let img = render(&p).expect("renders");
        let r = p.geometry.radius_at_q(0.05).expect("on detector");
        let az = azimuthal_profile(&as_f32(&img), 256.0, 256.0, r - 3.0, r + 3.0, 360);
        // Power of the χ profile's Fourier harmonics: harmonic n must dominate 1..n.
        let power = |m: usize| {
            let (mut re, mut im) = (0.0, 0.0);
            for (k, v) in az.iter().enumerate() {
                let a = std::f64::consts::TAU * (m * k) as f64 / az.len() as f64;
                re += v * a.cos_p();
                im += v * a.sin_p();
            }
            re.hypot_p(im)
        };
        let pn = power(n as usize);
        for m in 1..n as usize {
            assert!(pn > 10.0 * power(m), "n={n}: harmonic {m} too strong");
        }
        // Count arcs: bins above the mean that are the largest within ±(half an arc period),
        // after a 3-bin average (pixel binning jitters neighbouring χ bins).
        let m = az.len();
        let mean = az.iter().sum::<f64>() / m as f64;
        let smooth: Vec<f64> = (0..m)
            .map(|k| (az[(k + m - 1) % m] + az[k] + az[(k + 1) % m]) / 3.0)
            .collect();
        let half = m / (2 * n as usize) - 1;
        let maxima = (0..m)
            .filter(|&i| {
                smooth[i] > mean
                    && (1..=half).all(|d| {
                        smooth[i] > smooth[(i + d) % m] && smooth[i] >= smooth[(i + m - d) % m]
                    })
            })
            .count();
        assert_eq!(maxima, n as usize, "n={n}");
    }
}

#[test]
fn lattice_peaks_fall_at_the_lattice_ratios() {
    for (kind, want) in [
        (LatticeKind::Bcc, vec![1.0, 2f64.sqrt(), 3f64.sqrt()]),
        (
            LatticeKind::Fcc,
            vec![1.0, (4.0f64 / 3.0).sqrt(), (8.0f64 / 3.0).sqrt()],
        ),
        (LatticeKind::Hexagonal, vec![1.0, 3f64.sqrt(), 2.0]),
        (LatticeKind::Lamellar, vec![1.0, 2.0, 3.0]),
    ] {
        let q1 = 0.03;
        let p = bare(
            1000,
            vec![Component::Lattice {
                lattice: kind,
                q1_inv_angstrom: q1,
                width_rel: 0.015,
                eta: 0.0,
                symmetry: 2,
                chi0_deg: 0.0,
                amplitude: 2000.0,
                debye_waller_sigma_angstrom: 0.0,
                peak_count: 6,
            }],
        );
        let img = render(&p).expect("renders");
        let prof = radial_profile(&as_f32(&img), 500.0, 500.0, None);
        // Local maxima above 5 % of the first peak, as q ratios.
        let peaks: Vec<f64> = (2..prof.len() - 1)
            .filter(|&k| {
                prof[k].0 > prof[k - 1].0 && prof[k].0 >= prof[k + 1].0 && prof[k].0 > 50.0
            })
            .map(|k| p.geometry.q_at_radius(k as f64 + 0.5) / q1)
            .collect();
        for (i, w) in want.iter().enumerate() {
            assert!(
                (peaks[i] / w - 1.0).abs() < 0.03,
                "{kind:?}: peak {i} at ratio {} (want {w}); all {peaks:?}",
                peaks[i]
            );
        }
    }
}

#[test]
fn beamstop_shadow_lies_where_its_parameters_say() {
    let mut p = bare(512, vec![]);
    p.background = Some(Background::Constant { level: 1000.0 });
    p.beamstop = Some(Beamstop::Circular {
        radius_px: 30.0,
        blur_px: 1.0,
        arm_width_px: 8.0,
        arm_angle_deg: 90.0,
    });
    let img = render(&p).expect("renders");
    let (cx, cy) = (256usize, 256usize);
    assert!(img.counts.get(cx + 20, cy) < 10, "inside the disc");
    assert!(img.counts.get(cx + 40, cy) > 990, "outside the disc");
    assert!(
        img.counts.get(cx, cy - 150) < 10,
        "on the arm (χ = 90°, up)"
    );
    assert!(img.counts.get(cx, cy + 150) > 990, "opposite the arm");

    p.beamstop = Some(Beamstop::Linear {
        width_px: 20.0,
        overhang_px: 40.0,
        angle_deg: 0.0,
        blur_px: 1.0,
    });
    let img = render(&p).expect("renders");
    assert!(img.counts.get(cx + 200, cy + 5) < 10, "on the bar");
    assert!(img.counts.get(cx + 200, cy + 15) > 990, "beside the bar");
    assert!(img.counts.get(cx - 30, cy) < 10, "within the overhang");
    assert!(img.counts.get(cx - 50, cy) > 990, "past the overhang");
}

#[test]
fn poisson_noise_has_variance_equal_to_mean() {
    for level in [3.0, 50.0, 800.0] {
        let mut p = bare(256, vec![]);
        p.background = Some(Background::Constant { level });
        p.poisson_noise = true;
        p.direct_beam.peak_counts = 0.0;
        let img = render(&p).expect("renders");
        let v: Vec<f64> = img.counts.pixels().iter().map(|&c| f64::from(c)).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m).powi_p(2)).sum::<f64>() / (v.len() - 1) as f64;
        assert!((m / level - 1.0).abs() < 0.02, "mean {m} for {level}");
        assert!((var / m - 1.0).abs() < 0.05, "variance {var} vs mean {m}");
    }
}

#[test]
fn saturation_clips_and_is_reported() {
    let mut p = bare(256, vec![]);
    p.direct_beam.peak_counts = 1e5;
    let img = render(&p).expect("renders");
    assert_eq!(img.counts.get(128, 128), SATURATION_COUNTS);
    assert!(img.saturated_pixels > 0);
    let truth = Truth::of(&p, &img);
    assert!(truth.attributes.contains(&"saturation".to_string()));
}

#[test]
fn detector_gaps_read_zero() {
    let mut p = bare(1000, vec![]);
    p.background = Some(Background::Constant { level: 100.0 });
    p.detector = DetectorKind::Pilatus;
    let img = render(&p).expect("renders");
    assert_eq!(img.counts.get(490, 10), 0);
    assert_eq!(img.counts.get(480, 10), 100);
}

#[test]
fn same_seed_gives_identical_images_and_different_index_differs() {
    let cfg = SaxsConfig::default();
    let a = render(&sample_params(&cfg, 42, 3).expect("valid")).expect("renders");
    let b = render(&sample_params(&cfg, 42, 3).expect("valid")).expect("renders");
    let c = render(&sample_params(&cfg, 42, 4).expect("valid")).expect("renders");
    assert!(a == b, "same (seed, index) gave different images");
    assert!(a.counts != c.counts, "different index gave the same image");
}

#[test]
fn params_survive_a_json_roundtrip_and_reproduce_the_image() {
    let cfg = SaxsConfig {
        size_px: 128,
        ..SaxsConfig::default()
    };
    for i in 0..20 {
        let p = sample_params(&cfg, 9, i).expect("valid");
        let json = serde_json::to_string(&p).expect("serialises");
        let back: SaxsParams = serde_json::from_str(&json).expect("parses");
        let same = render(&p).expect("renders").counts == render(&back).expect("renders").counts;
        assert!(
            same,
            "image {i} differs after a JSON roundtrip of its parameters"
        );
    }
}

#[test]
fn tags_follow_the_parameters() {
    let mut p = bare(256, vec![ring(0.05, 0.02, 0.9, 6)]);
    p.beamstop = Some(Beamstop::Wedge {
        opening_deg: 15.0,
        direction_deg: 0.0,
        tip_radius_px: 8.0,
        blur_px: 1.0,
    });
    // The wedge shadows only empty detector: nothing shows it.
    let img = render(&p).expect("renders");
    assert_eq!(Truth::of(&p, &img).tags, vec!["ring", "symmetry ring"]);
    // Over a 50-count background it does.
    p.background = Some(Background::Constant { level: 50.0 });
    let img = render(&p).expect("renders");
    let t = Truth::of(&p, &img);
    assert_eq!(t.tags, vec!["ring", "symmetry ring", "wedge beamstop"]);
    assert!(
        t.attributes.contains(&"ring width sharp".to_string()),
        "{:?}",
        t.attributes
    );
    assert_eq!(t.rings.len(), 1);
    assert!((t.rings[0].radius_px - p.geometry.radius_at_q(0.05).expect("on")).abs() < 1e-9);

    // The same ring with the beam off the image: still crossing it, still tagged.
    p.geometry = Geometry::reference(256, 1.05, 0.5);
    let far = p.geometry.radius_at_q(0.05).expect("on");
    assert!(far > 0.05 * 256.0, "ring radius {far}");
    let img = render(&p).expect("renders");
    let t = Truth::of(&p, &img);
    assert!(t.tags.contains(&"beam off image".to_string()));
    assert!(t.tags.contains(&"ring".to_string()), "{:?}", t.tags);

    // Too faint to see under the background: not tagged, though in the parameters.
    p.components = vec![Component::Ring {
        q0_inv_angstrom: 0.05,
        width_rel: 0.02,
        eta: 0.9,
        symmetry: 6,
        chi0_deg: 20.0,
        amplitude: 1.0,
        halo: false,
    }];
    let img = render(&p).expect("renders");
    let t = Truth::of(&p, &img);
    assert!(!t.tags.contains(&"ring".to_string()), "{:?}", t.tags);
    assert!(t.rings.is_empty());
}

#[test]
fn a_lattice_is_named_only_when_two_peaks_are_resolved_and_arcs_only_when_they_show() {
    let fcc = |width_rel: f64, peak_count: usize| Component::Lattice {
        lattice: LatticeKind::Fcc,
        q1_inv_angstrom: 0.05,
        width_rel,
        eta: 0.0,
        symmetry: 2,
        chi0_deg: 0.0,
        amplitude: 2e4,
        debye_waller_sigma_angstrom: 0.0,
        peak_count,
    };
    let tags = |components: Vec<Component>| {
        let mut p = bare(256, components);
        p.background = Some(Background::Constant { level: 20.0 });
        let img = render(&p).expect("renders");
        Truth::of(&p, &img).tags
    };
    // FCC's first two peaks (q/q₁ = 1, 2/√3) at a 2 % FWHM are 3 px apart: named.
    let sharp = tags(vec![fcc(0.02, 2)]);
    assert!(sharp.contains(&"FCC".to_string()), "{sharp:?}");
    assert!(sharp.contains(&"higher orders".to_string()), "{sharp:?}");
    // At a 20 % FWHM they merge into one broad ring: a ring, not a lattice.
    let merged = tags(vec![fcc(0.2, 2)]);
    assert!(merged.contains(&"ring".to_string()), "{merged:?}");
    assert!(!merged.contains(&"FCC".to_string()), "{merged:?}");
    assert!(!merged.contains(&"higher orders".to_string()), "{merged:?}");

    // A clearly 6-fold ring is a symmetry ring…
    let six = tags(vec![ring(0.05, 0.02, 0.9, 6)]);
    assert!(six.contains(&"symmetry ring".to_string()), "{six:?}");
    // …but 20 arcs on a ring of 12 px (3.8 px apart) cannot be counted.
    let small = tags(vec![ring(0.026, 0.05, 0.9, 20)]);
    assert!(small.contains(&"ring".to_string()), "{small:?}");
    assert!(!small.contains(&"symmetry ring".to_string()), "{small:?}");
    // Two arcs are a 2-fold symmetry ring (orders 2–20, DOMAIN.md).
    let two = tags(vec![ring(0.05, 0.02, 0.9, 2)]);
    assert!(two.contains(&"symmetry ring".to_string()), "{two:?}");
    // Arcs 2.25× as bright as the gaps (η = 0.2) show; 1.49× (η = 0.1) is an uneven ring.
    let broad = tags(vec![ring(0.05, 0.02, 0.2, 4)]);
    assert!(broad.contains(&"symmetry ring".to_string()), "{broad:?}");
    let uneven = tags(vec![ring(0.05, 0.02, 0.1, 4)]);
    assert!(uneven.contains(&"ring".to_string()), "{uneven:?}");
    assert!(!uneven.contains(&"symmetry ring".to_string()), "{uneven:?}");
}

#[test]
fn arcs_contrast_twice_the_gaps_from_eta_0_17() {
    // ((1 + η)/(1 − η))² = 2 at η = (√2 − 1)/(√2 + 1) = 0.1716.
    let eta_min = (2f64.sqrt() - 1.0) / (2f64.sqrt() + 1.0);
    assert!((eta_min - 0.171_57).abs() < 1e-4);
    assert!(super::tags::arcs_contrasted(eta_min + 1e-6));
    assert!(!super::tags::arcs_contrasted(eta_min - 1e-6));
    assert!(!super::tags::arcs_contrasted(0.0));
    assert!(super::tags::arcs_contrasted(0.99));
}

#[test]
fn random_batches_cover_the_training_tags() {
    let cfg = SaxsConfig {
        size_px: 128,
        ..SaxsConfig::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..400 {
        let p = sample_params(&cfg, 1, i).expect("valid");
        let img = render(&p).expect("renders");
        seen.extend(Truth::of(&p, &img).tags);
    }
    for tag in TRAINING_TAGS {
        assert!(seen.contains(tag), "tag {tag} never drawn in 400 images");
    }
}

#[test]
fn the_wide_variety_draws_what_real_beamlines_show() {
    let cfg = SaxsConfig {
        size_px: 128,
        variety: Variety::Wide,
        ..SaxsConfig::default()
    };
    let count = 600;
    let (mut no_stop, mut well_off, mut only_fall_off, mut low_q_alone) = (0, 0, 0, 0);
    let mut bright_beams = 0;
    // Where isotropic rings and lattice first peaks fall between the image's pixel nearest the
    // beam (0) and its farthest corner (1).
    let mut ring_at = Vec::new();
    let mut detectors = std::collections::BTreeSet::new();
    let (mut d_min, mut d_max) = (f64::MAX, 0f64);
    for i in 0..count {
        let p = sample_params(&cfg, 3, i).expect("valid");
        let g = &p.geometry;
        no_stop += usize::from(p.beamstop.is_none());
        // A beam that meets no stop is at full flux (10⁵–10⁹ counts); behind one, 10⁵.
        let full_flux = p.direct_beam.peak_counts;
        if p.beamstop.is_none() {
            assert!((1e5..=1e9).contains(&full_flux), "{full_flux}");
            bright_beams += usize::from(full_flux > 1e7);
        } else {
            assert_eq!(full_flux, 1e5);
        }
        let off_by = |c: f64, size: usize| (-c).max(c - size as f64) / size as f64;
        well_off += usize::from(off_by(g.beam_x_px, 128).max(off_by(g.beam_y_px, 128)) > 0.05);
        only_fall_off += usize::from(
            p.components.len() <= 2
                && p.components.iter().all(|c| {
                    matches!(
                        c,
                        Component::PowerLaw { .. }
                            | Component::OrnsteinZernike { .. }
                            | Component::DebyeBueche { .. }
                            | Component::Guinier { .. }
                            | Component::HighQ { .. }
                    )
                }),
        );
        let (near, far) = g.radius_range_px();
        for c in &p.components {
            let q = match c {
                Component::Ring {
                    q0_inv_angstrom, ..
                } => *q0_inv_angstrom,
                Component::Lattice {
                    q1_inv_angstrom, ..
                } => *q1_inv_angstrom,
                _ => continue,
            };
            let r = g.radius_at_q(q).expect("a ring on the detector side");
            ring_at.push((r - near) / (far - near));
        }
        detectors.insert(format!("{:?}", p.detector));
        (d_min, d_max) = (d_min.min(g.distance_m), d_max.max(g.distance_m));
        let tags = Truth::of(&p, &render(&p).expect("renders")).tags;
        low_q_alone += usize::from(
            tags.iter()
                .all(|t| t == "low-q" || t.contains("beamstop") || t == "beam off image")
                && tags.iter().any(|t| t == "low-q"),
        );
    }
    let frac = |n: usize| n as f64 / count as f64;
    // 30 % drawn without a stop; 20 % drawn well off (beyond 5 %), and the reference band
    // never is; a quarter only a fall-off (plus the odd high-q term).
    assert!((0.25..0.36).contains(&frac(no_stop)), "{no_stop}");
    // Half of the beams without a stop are brighter than 10⁷ (log-uniform 10⁵–10⁹).
    let bright = bright_beams as f64 / no_stop as f64;
    assert!(
        (0.35..0.65).contains(&bright),
        "{bright_beams} of {no_stop}"
    );
    assert!((0.15..0.25).contains(&frac(well_off)), "{well_off}");
    assert!(
        (0.2..0.32).contains(&frac(only_fall_off)),
        "{only_fall_off}"
    );
    // Rings and first peaks lie on the image, from next to the beam out to the far corner
    // (lattice series are capped so that higher orders fit, so fewer sit far out).
    assert!(ring_at.len() > 150, "{}", ring_at.len());
    assert!(
        ring_at.iter().all(|&t| (0.0..=1.0 + 1e-9).contains(&t)),
        "{ring_at:?}"
    );
    let far_out = ring_at.iter().filter(|&&t| t > 0.6).count() as f64 / ring_at.len() as f64;
    assert!((0.08..0.4).contains(&far_out), "{far_out}");
    // Most of those show as a low-q pattern and nothing else the taggers name.
    assert!(frac(low_q_alone) > 0.12, "{low_q_alone}");
    assert_eq!(
        detectors.len(),
        geometry::DETECTOR_KINDS.len(),
        "{detectors:?}"
    );
    assert!(d_min < 0.2 && d_max > 1.8, "{d_min} … {d_max} m");
    // The reference mix is untouched by the field: the same seed draws the same image.
    let reference = SaxsConfig {
        size_px: 128,
        ..SaxsConfig::default()
    };
    let p = sample_params(&reference, 3, 0).expect("valid");
    assert_eq!(p.geometry.distance_m, geometry::REFERENCE_DISTANCE_M);
    assert_eq!(p.detector, DetectorKind::Plain);
}

#[test]
fn bad_config_is_rejected_with_the_parameter_name() {
    let err = sample_params(
        &SaxsConfig {
            size_px: 100,
            ..SaxsConfig::default()
        },
        0,
        0,
    )
    .expect_err("invalid");
    assert!(err.to_string().starts_with("size = 100"), "{err}");
}

#[test]
fn anisotropic_diffuse_scattering_is_elongated_along_chi0() {
    // Elongated along χ₀ = 0 (horizontal) with ε = 3: the intensity at radius r perpendicular
    // to χ₀ equals the one at 3r along χ₀.
    for c in [
        Component::OrnsteinZernike {
            xi_angstrom: 300.0,
            amplitude: 1000.0,
            epsilon: 3.0,
            chi0_deg: 0.0,
        },
        Component::HighQ {
            c: 1000.0,
            sigma_a2: 100.0,
            epsilon: 3.0,
            chi0_deg: 0.0,
        },
    ] {
        let p = bare(512, vec![c.clone()]);
        let img = render(&p).expect("renders");
        let at =
            |dx: i64, dy: i64| f64::from(img.counts.get((256 + dx) as usize, (256 + dy) as usize));
        let (along, across) = (at(60, 0), at(0, 20));
        assert!(
            (across / along - 1.0).abs() < 0.05,
            "{c:?}: I(0, 20 px) = {across}, I(60 px, 0) = {along}"
        );
        assert!(
            (at(0, 60) - at(60, 0)).abs() > 0.1 * at(60, 0),
            "{c:?}: not anisotropic"
        );
    }
}

/// The analysis side (imaging::scattering) on the engine's own images: the beam centre found from
/// the pattern matches the truth for most beams on the detector. The misses (a third, seed 11)
/// are weak patterns whose beamstop arm cannot be told from the exposure and so stays unmasked
/// (its straight edges are fitted by rings around a far-away point) and strong off-centre window
/// backgrounds: for those the app takes the centre from the user or the file.
#[test]
fn beam_centre_is_recovered_from_engine_images() {
    use imaging::scattering::{Mask, estimate_beam_centre};
    let config = SaxsConfig {
        size_px: 256,
        ..SaxsConfig::default()
    };
    let (mut tried, mut found) = (0, 0);
    let mut misses = Vec::new();
    for index in 0..60 {
        let p = sample_params(&config, 11, index).expect("params");
        let g = p.geometry;
        let inside = |v: f64, n: usize| v > 0.15 * n as f64 && v < 0.85 * n as f64;
        if !inside(g.beam_x_px, g.width_px) || !inside(g.beam_y_px, g.height_px) {
            continue;
        }
        let img = render(&p).expect("render");
        let counts = as_f32(&img);
        let mut mask = img
            .gap_mask
            .clone()
            .and_then(|gaps| Mask::from_flags(g.width_px, g.height_px, gaps))
            .unwrap_or_else(|| Mask::empty(g.width_px, g.height_px));
        mask.add_beamstop(&counts, g.beam_x_px, g.beam_y_px, 30.0, 2.0);
        tried += 1;
        match estimate_beam_centre(&counts, Some(mask.as_slice())) {
            Some(b) if (b.x_px - g.beam_x_px).hypot(b.y_px - g.beam_y_px) < 1.5 => found += 1,
            other => misses.push((index, g.beam_x_px, g.beam_y_px, other)),
        }
    }
    assert!(tried >= 15, "only {tried} images with the beam inside");
    assert!(
        found as f64 >= 0.6 * tried as f64,
        "{found}/{tried} within 1.5 px; misses {misses:?}"
    );
}

#[test]
fn detecting_the_sample_intensity_reproduces_render() {
    // The generator's split: the sample's own scattering, then the instrument. For engine
    // images of every kind the two halves together must give render's counts: the only
    // difference is the sample image's rounding to f32, which can move a Poisson draw by one
    // count now and then.
    let config = SaxsConfig::default();
    let mut moved = 0usize;
    let mut pixels = 0usize;
    for index in 0..24 {
        let p = sample_params(&config, 77, index).expect("params");
        let want = render(&p).expect("render");
        let sample = sample_intensity(&p).expect("sample");
        let got = detect(&p, &sample).expect("detect");
        assert_eq!(got.gap_mask, want.gap_mask);
        for (a, b) in got.counts.pixels().iter().zip(want.counts.pixels()) {
            let d = a.abs_diff(*b);
            assert!(d <= 1 + b / 1000, "image {index}: {a} vs {b}");
            moved += usize::from(d > 0);
        }
        pixels += want.counts.pixels().len();
        assert!(sample.pixels().iter().all(|v| v.is_finite() && *v >= 0.0));
    }
    assert!(
        (moved as f64) < 1e-3 * pixels as f64,
        "{moved} of {pixels} pixels moved"
    );
}

#[test]
fn the_sample_intensity_has_no_instrument_in_it() {
    // A ring behind a circular beamstop: the sample image keeps the ring under the beamstop
    // and has no direct beam; detect() puts the shadow and the beam back.
    let mut p = bare(128, vec![ring(0.067, 0.05, 0.0, 2)]);
    p.beamstop = Some(Beamstop::Circular {
        radius_px: 30.0,
        blur_px: 1.0,
        arm_width_px: 4.0,
        arm_angle_deg: 0.0,
    });
    p.direct_beam.peak_counts = 1e5;
    let sample = sample_intensity(&p).expect("sample");
    let r = p.geometry.radius_at_q(0.067).expect("radius");
    let (cx, cy) = (p.geometry.beam_x_px, p.geometry.beam_y_px);
    let on_ring = sample.get((cx + r) as usize, cy as usize);
    assert!(on_ring > 100.0, "ring under the beamstop: {on_ring}");
    assert!(sample.get(cx as usize, cy as usize) < 1.0, "no direct beam");
    let counts = detect(&p, &sample).expect("detect").counts;
    let shadowed = counts.get((cx + r) as usize, cy as usize);
    assert!(
        f64::from(shadowed) < 0.01 * f64::from(on_ring),
        "shadowed: {shadowed}"
    );
    let wrong = imaging::Image::filled(64, 64, 0.0f32).expect("image");
    assert!(detect(&p, &wrong).is_err());
}
