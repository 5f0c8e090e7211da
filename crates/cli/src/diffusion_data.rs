//! Training data of the scattering generator: each engine image as the sample's scattering on
//! the generator's polar grid (`synth::scattering::sample_polar`, exact, no instrument) with
//! the 15 tags of the detector image it was drawn for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use imaging::detector::{FileGeometry, Geometry, REFERENCE_PIXEL_SIZE_UM, REFERENCE_SIZE_PX};
use imaging::scattering::polar::PolarGrid;
use imaging::scattering::{FourierBessel, Prepared, prepare};
use models::diffusion::generator::LatticeSeries;
use models::tagger::TAG_COUNT;
use rayon::prelude::*;
use synth::scattering::{
    LatticeKind, SERIES_REFLECTIONS, SaxsConfig, SaxsParams, TRAINING_TAGS, Truth, reflections,
    render, sample_params, sample_polar, tagged_lattices,
};

use crate::saxs_data::tag_vector;

/// One training image.
#[derive(Debug, Clone)]
pub(crate) struct PolarSample {
    /// Row-major `[q_bins, chi_bins]` values in [−1, 1].
    pub polar: Vec<f32>,
    /// 1 for each tag of `TRAINING_TAGS` present in the detector image, else 0.
    pub tags: [f32; TAG_COUNT],
    /// The tagged lattices and their first peaks q₁ (Å⁻¹): what the lattice-series plane
    /// marks (`synth::scattering::tagged_lattices`; none for a scientist's own images, whose
    /// lattices are not known).
    pub lattices: Vec<(LatticeKind, f64)>,
}

impl PolarSample {
    /// The lattice-series plane of this image on `grid` (`q_bins` values) as `series` marks it.
    pub(crate) fn series_plane(&self, series: &LatticeSeries, grid: &PolarGrid) -> Vec<f32> {
        let lattices: Vec<(&str, f64)> = self.lattices.iter().map(|&(k, q)| (k.tag(), q)).collect();
        series.plane(grid, &lattices)
    }
}

/// Image `index` of engine batch `seed`: rendered for its tags (they are judged on the detector
/// image), its sample evaluated on `grid`.
pub(crate) fn engine_sample(
    config: &SaxsConfig,
    grid: &PolarGrid,
    seed: u64,
    index: u64,
) -> Result<PolarSample> {
    let params = sample_params(config, seed, index)?;
    let image = render(&params)?;
    let truth = Truth::of(&params, &image);
    let names: Vec<&str> = truth.tags.iter().map(String::as_str).collect();
    Ok(PolarSample {
        polar: sample_polar(&params, grid)?,
        tags: tag_vector(&names)?,
        lattices: tagged_lattices(&params, &names),
    })
}

/// Images `first..first + count` of engine batch `seed`, in parallel.
pub(crate) fn engine_samples(
    config: &SaxsConfig,
    grid: &PolarGrid,
    seed: u64,
    first: u64,
    count: usize,
) -> Result<Vec<PolarSample>> {
    (first..first + count as u64)
        .into_par_iter()
        .map(|i| engine_sample(config, grid, seed, i))
        .collect()
}

/// What a generator reading the lattice series learns of lattices from `samples`: each
/// engine lattice's first [`SERIES_REFLECTIONS`] reflections and the first peaks q₁ (Å⁻¹) of
/// the tagged lattices, per lattice tag (sampling draws requested lattices from them).
pub(crate) fn lattice_series<'a>(
    samples: impl IntoIterator<Item = &'a PolarSample>,
) -> Result<LatticeSeries> {
    let mut peaks: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in samples {
        for &(kind, q1) in &s.lattices {
            peaks.entry(kind.tag()).or_default().push(q1);
        }
    }
    let lattices: Vec<(&str, Vec<f64>, Vec<f64>)> = LatticeKind::ALL
        .iter()
        .map(|&k| {
            let ratios = reflections(k, SERIES_REFLECTIONS)
                .iter()
                .map(|r| r.ratio)
                .collect();
            (k.tag(), ratios, peaks.remove(k.tag()).unwrap_or_default())
        })
        .collect();
    Ok(LatticeSeries::new(&lattices)?)
}

/// [`lattice_series`] of `count` engine images of batch `seed`, without their polar images
/// (the tags need the rendered detector image, the peaks only the parameters).
pub(crate) fn engine_lattice_series(
    config: &SaxsConfig,
    seed: u64,
    count: usize,
) -> Result<LatticeSeries> {
    let lattices: Vec<Vec<(LatticeKind, f64)>> = (0..count as u64)
        .into_par_iter()
        .map(|i| {
            let params = sample_params(config, seed, i)?;
            if !params
                .components
                .iter()
                .any(|c| matches!(c, synth::scattering::Component::Lattice { .. }))
            {
                return Ok(Vec::new());
            }
            let image = render(&params)?;
            let truth = Truth::of(&params, &image);
            let names: Vec<&str> = truth.tags.iter().map(String::as_str).collect();
            Ok(tagged_lattices(&params, &names))
        })
        .collect::<Result<_>>()?;
    let samples: Vec<PolarSample> = lattices
        .into_iter()
        .map(|lattices| PolarSample {
            polar: Vec::new(),
            tags: [0.0; TAG_COUNT],
            lattices,
        })
        .collect();
    lattice_series(&samples)
}

/// The set-up of a scientist's own detector images (`train diffusion --data` on a directory
/// without `labels.jsonl`): what turns pixels into q.
#[derive(Debug, Clone)]
pub(crate) struct OwnSetup {
    /// Pixel pitch in µm (default: the reference detector's, scaled to the image's size).
    pub pixel_size_um: Option<f64>,
    /// Sample–detector distance in mm.
    pub distance_mm: f64,
    /// Photon energy in keV.
    pub energy_kev: f64,
    /// Beam centre in pixels for every image (default: estimated per image, as `classify`).
    pub beam_px: Option<(f64, f64)>,
    /// A pyFAI calibration of the detector: its geometry replaces all of the above.
    pub poni: Option<imaging::poni::Poni>,
}

impl OwnSetup {
    /// The geometry of a `width × height` image with its beam at `beam_px`.
    fn geometry(&self, (width, height): (usize, usize), beam_px: (f64, f64)) -> Geometry {
        let side = width.max(height).max(1);
        Geometry {
            width_px: width,
            height_px: height,
            pixel_size_um: self
                .pixel_size_um
                .unwrap_or(REFERENCE_PIXEL_SIZE_UM * REFERENCE_SIZE_PX as f64 / side as f64),
            distance_m: self.distance_mm / 1000.0,
            energy_kev: self.energy_kev,
            beam_x_px: beam_px.0,
            beam_y_px: beam_px.1,
        }
    }

    /// Checks the numbers; the message names the flag.
    pub(crate) fn validate(&self) -> Result<()> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !self.pixel_size_um.is_none_or(positive) {
            bail!("--pixel-size-um must be a positive number of micrometres");
        }
        if !positive(self.distance_mm) {
            bail!("--distance-mm must be a positive number of millimetres");
        }
        if !positive(self.energy_kev) {
            bail!("--energy-kev must be a positive number of keV");
        }
        Ok(())
    }
}

/// One of a scientist's images, prepared and binned onto the polar grid.
type Binned = (Prepared, Vec<f32>);

/// A scientist's own detector images (any file `classify` reads, in a directory without
/// `labels.jsonl`): each binned onto `grid` around its beam centre (given, or estimated as
/// `classify` does) with `setup`'s geometry, its tags the shipped tagger's verdict (p ≥ ½) as
/// pseudo-descriptions, as seed 000 describes its 300 experimental images. Unreadable files
/// are named and skipped; none readable is an error.
pub(crate) fn load_own_images(
    dir: &Path,
    limit: Option<usize>,
    grid: &PolarGrid,
    setup: &OwnSetup,
    device: &burn::tensor::Device,
) -> Result<Vec<PolarSample>> {
    setup.validate()?;
    let mut files = crate::classify::collect_files(&[dir.to_path_buf()])?;
    if let Some(n) = limit {
        files.truncate(n);
    }
    if files.is_empty() {
        bail!(
            "{} holds no detector images (PNG, TIFF, JPEG, EDF or CBF) and no labels.jsonl: give a \
             directory of your own images, or one written by `synthscope generate saxs`",
            dir.display()
        );
    }
    let (taggers, tagger_name, _) = crate::shipped::load_tagger(None, device, "--tagger")?;
    let (realism, _, _) = crate::shipped::load_realism(None, device, "--realism")?;
    let classifier = models::classify::Classifier::new(taggers, realism)?;
    let basis = FourierBessel::reference(128.0);
    let prepared: Vec<(PathBuf, Result<Binned>)> = files
        .into_par_iter()
        .map(|path| {
            let result = read_own(&path).and_then(|(image, header)| {
                // The file's header (CBF) stands in for flags not given.
                let header = header.unwrap_or_default();
                let poni_beam = setup.poni.as_ref().map(|p| p.beam_centre_px());
                let beam = poni_beam.or(setup.beam_px).or(header.beam_xy_px);
                let p = prepare(&image, None, beam, &basis)?;
                let mut geometry = setup.geometry(p.size_px, p.beam_px);
                if setup.pixel_size_um.is_none()
                    && let (Some((px, _)), Some(d), Some(l)) = (
                        header.pixel_size_um,
                        header.distance_m,
                        header.wavelength_angstrom,
                    )
                {
                    geometry.pixel_size_um = px;
                    geometry.distance_m = d;
                    geometry.energy_kev = imaging::detector::HC_KEV_ANGSTROM / l;
                }
                if let Some(poni) = &setup.poni {
                    geometry = poni.geometry(p.size_px.0, p.size_px.1);
                }
                let valid: Vec<bool> = p.mask.as_slice().iter().map(|e| !e).collect();
                let (polar, _) = grid
                    .from_detector(&image, Some(&valid), &geometry)
                    .map_err(anyhow::Error::msg)?;
                Ok((p, polar))
            });
            (path, result)
        })
        .collect();
    let mut ok = Vec::new();
    for (path, r) in prepared {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => eprintln!("skipped {}: {e:#}", path.display()),
        }
    }
    if ok.is_empty() {
        bail!("none of the images in {} could be read", dir.display());
    }
    let mut samples = Vec::with_capacity(ok.len());
    let mut counts = [0usize; TAG_COUNT];
    for chunk in ok.chunks(32) {
        let inputs: Vec<models::classify::Inputs> = chunk
            .iter()
            .map(|(p, _)| crate::classify::inputs(p))
            .collect();
        let probabilities = crate::device::block_on(classifier.tag(&inputs, device))?;
        for ((_, polar), probs) in chunk.iter().zip(probabilities) {
            let names: Vec<&str> = classifier
                .tags
                .iter()
                .zip(&probs)
                .filter(|&(_, &p)| p >= 0.5)
                .map(|(t, _)| t.as_str())
                .collect();
            let tags = tag_vector(&names)?;
            for (c, t) in counts.iter_mut().zip(tags) {
                *c += usize::from(t > 0.0);
            }
            samples.push(PolarSample {
                polar: polar.clone(),
                tags,
                lattices: Vec::new(),
            });
        }
    }
    let described: Vec<String> = TRAINING_TAGS
        .iter()
        .zip(counts)
        .filter(|&(_, c)| c > 0)
        .map(|(t, c)| format!("{t} {c}"))
        .collect();
    eprintln!(
        "{} has no labels.jsonl: {} of your images are described by {tagger_name}'s tags \
         (pseudo-descriptions; p ≥ 0.5: {}); beam centres {}, geometry {}",
        dir.display(),
        samples.len(),
        if described.is_empty() { "none".to_string() } else { described.join(", ") },
        if setup.poni.is_some() {
            "from the PONI file"
        } else if setup.beam_px.is_some() {
            "given"
        } else {
            "from CBF headers or estimated per image"
        },
        match (&setup.poni, setup.pixel_size_um) {
            (Some(p), _) => format!("of the PONI calibration ({} at {:.1} mm)", p.detector, p.distance_m * 1e3),
            (None, Some(px)) => format!(
                "{px} µm pixels at {} mm, {} keV",
                setup.distance_mm, setup.energy_kev
            ),
            (None, None) => "of the engine's reference set-up (give --pixel-size-um, --distance-mm and --energy-kev for yours)".to_string(),
        }
    );
    Ok(samples)
}

/// A detector image as counts and what its header says of the set-up.
fn read_own(path: &Path) -> Result<(imaging::Image<f32>, Option<FileGeometry>)> {
    let bytes = std::fs::read(path).context("cannot read the file")?;
    let loaded = imaging::load::load_gray(&bytes, 8)?;
    Ok((loaded.image.to_f32(), loaded.geometry))
}

/// Every image of a `generate saxs` directory: its recorded engine parameters evaluated on
/// `grid`, with its recorded tags.
pub(crate) fn load_dir(
    dir: &Path,
    limit: Option<usize>,
    grid: &PolarGrid,
) -> Result<Vec<PolarSample>> {
    let lines = crate::labels::read(dir, "saxs", limit)?;
    lines
        .par_iter()
        .map(|(n, v)| {
            let (params, tags) = parse_line(*n, v)?;
            let names: Vec<&str> = TRAINING_TAGS
                .iter()
                .zip(tags)
                .filter(|&(_, t)| t > 0.0)
                .map(|(n, _)| *n)
                .collect();
            Ok(PolarSample {
                polar: sample_polar(&params, grid)?,
                tags,
                lattices: tagged_lattices(&params, &names),
            })
        })
        .collect()
}

/// Checks every line of the `labels.jsonl` in `dir` (its engine parameters and tags) without
/// evaluating them: the number of usable images, or the first line that is not.
pub(crate) fn check_dir(dir: &Path) -> Result<usize> {
    let lines = crate::labels::read(dir, "saxs", None)?;
    for (n, v) in &lines {
        parse_line(*n, v)?;
    }
    Ok(lines.len())
}

/// The engine parameters and tag vector of line `n` of a `generate saxs` labels.jsonl.
fn parse_line(n: usize, v: &serde_json::Value) -> Result<(SaxsParams, [f32; TAG_COUNT])> {
    let params: SaxsParams = serde_json::from_value(
        v.get("params")
            .cloned()
            .with_context(|| format!("labels.jsonl line {n} has no \"params\""))?,
    )
    .with_context(|| format!("labels.jsonl line {n}: unreadable \"params\""))?;
    let names = crate::labels::tag_names(v, n)?;
    let tags = tag_vector(&names).with_context(|| format!("labels.jsonl line {n}"))?;
    Ok((params, tags))
}

/// `polar` (row-major `[rows, cols]`) turned by `shift` columns around χ and, if `mirror`,
/// reflected χ → −χ: the sample's tags do not depend on its orientation.
pub(crate) fn turn(polar: &[f32], cols: usize, shift: usize, mirror: bool) -> Vec<f32> {
    let mut out = vec![0.0; polar.len()];
    for (src, dst) in polar.chunks(cols).zip(out.chunks_mut(cols)) {
        for (k, &v) in src.iter().enumerate() {
            let k = if mirror { cols - 1 - k } else { k };
            dst[(k + shift) % cols] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turning_shifts_and_mirrors_each_row() {
        let polar = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0];
        assert_eq!(turn(&polar, 4, 0, false), polar);
        assert_eq!(
            turn(&polar, 4, 1, false),
            [3.0, 0.0, 1.0, 2.0, 13.0, 10.0, 11.0, 12.0]
        );
        assert_eq!(
            turn(&polar, 4, 0, true),
            [3.0, 2.0, 1.0, 0.0, 13.0, 12.0, 11.0, 10.0]
        );
    }

    #[test]
    fn engine_samples_are_reproducible_and_tagged() {
        let grid = PolarGrid::reference();
        let config = crate::stages::generated_saxs();
        let a = engine_samples(&config, &grid, 3, 0, 4).expect("samples");
        let b = engine_sample(&config, &grid, 3, 2).expect("sample");
        assert_eq!(a[2].polar, b.polar);
        assert_eq!(a[2].tags, b.tags);
        assert!(a.iter().all(|s| s.polar.len() == grid.len()));
        assert!(
            a.iter()
                .all(|s| s.polar.iter().all(|v| (-1.0..=1.0).contains(v)))
        );
        assert!(a.iter().any(|s| s.tags.iter().sum::<f32>() > 0.0));
    }

    /// By hand: the ripple of engine polar images along q, against samples' (the diagnostic
    /// of docs/diffusion.md). `cargo test -p synthscope-cli --release --bin synthscope
    /// engine_ripple -- --ignored --nocapture`
    #[test]
    #[ignore = "a diagnostic, run by hand"]
    fn engine_ripple() {
        let grid = PolarGrid::reference();
        let config = crate::stages::generated_saxs();
        let samples = engine_samples(&config, &grid, 8, 0, 16).expect("samples");
        let (mut nyquist, mut second) = (0.0, 0.0);
        for s in &samples {
            let profile: Vec<f64> = s
                .polar
                .chunks(grid.chi_bins)
                .map(|row| row.iter().map(|&v| f64::from(v)).sum::<f64>() / row.len() as f64)
                .collect();
            let n = profile.len() as f64;
            nyquist += profile
                .iter()
                .enumerate()
                .map(|(i, v)| if i % 2 == 0 { *v } else { -v })
                .sum::<f64>()
                .abs()
                / n;
            second += profile
                .windows(3)
                .map(|w| (w[1] - 0.5 * (w[0] + w[2])).abs())
                .sum::<f64>()
                / (n - 2.0);
        }
        let k = samples.len() as f64;
        println!(
            "engine batch 8, 16 images: Nyquist amplitude of the profile {:.5}, mean |second difference| {:.5}",
            nyquist / k,
            second / k
        );
    }
}
