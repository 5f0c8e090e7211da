//! The tag-conditioned scattering generator: a one-dimensional denoising U-Net over the rows (q)
//! of the sample's polar image, with the χ bins as channels, and its weights file.
//!
//! Why this representation (measured; see `docs/diffusion.md`): the sample's scattering is a
//! function of (q, χ) around the beam centre, so the engine's own polar grid is an exact,
//! analytic encoder of it (`imaging::scattering::polar`), decoded onto any detector and beam
//! centre; the instrument (background, beamstop, direct beam, exposure, Poisson counting,
//! saturation, gaps) is drawn afterwards by the engine's detector model
//! (`synth::scattering::detect`), which knows the physics exactly. Convolving along q only, with
//! all χ bins mixed in each layer, costs 15× less per training image on this CPU than a 2-D
//! network on the same grid.
//!
//! # Layout
//! A polar image is row-major `[q_bins, chi_bins]` values in [−1, 1]; the network sees it as
//! `[batch, chi_bins, q_bins, 1]`.

use super::denoiser::{Condition, Denoiser, DenoiserConfig, Guided};
use super::sampler::{Prediction, Sampler, SamplerError, SamplerKind};
use crate::weights::{self, WeightsError, load_record, record_bytes};
use burn::tensor::{Device, Tensor, TensorData};
use imaging::scattering::polar::PolarGrid;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"SSDIFF01";

/// Errors loading or running a generator.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// The weights file is not one this version can read.
    #[error(
        "not a Synthscope diffusion model file ({0}); train one with `synthscope train diffusion` (scattering) or `synthscope train tem-diffusion` (micrographs)"
    )]
    Format(String),
    /// The weights do not fit the architecture in the file's header.
    #[error("the weights do not match the model architecture: {0}")]
    Weights(String),
    /// Sampler settings out of range.
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    /// A request that does not fit the model.
    #[error("{0}")]
    Input(String),
    /// Reading a tensor back from the device failed.
    #[error("reading a result from the device failed: {0}")]
    Device(String),
}

impl From<WeightsError> for GeneratorError {
    fn from(e: WeightsError) -> Self {
        match e {
            WeightsError::Format(m) => GeneratorError::Format(m),
            WeightsError::Weights(m) => GeneratorError::Weights(m),
        }
    }
}

/// The header of a weights file that holds one [`Denoiser`] after a JSON header (the
/// scattering and the TEM generator's files): both are written by [`write_denoiser_file`] and
/// read by [`read_denoiser_file`], so the two formats cannot drift apart.
pub(crate) trait DenoiserFileHeader:
    Serialize + serde::de::DeserializeOwned + Clone
{
    /// The network's shape.
    fn denoiser_config(&self) -> &DenoiserConfig;
    /// Bytes of the network's record after the header.
    fn denoiser_bytes(&mut self) -> &mut usize;
    /// Checks of the header beyond the network's own shape, before any weight is read.
    fn check(&self) -> Result<(), GeneratorError> {
        Ok(())
    }
}

/// `magic`, the JSON of `header` (with the record's length filled in) and `net`'s record.
pub(crate) fn write_denoiser_file<H: DenoiserFileHeader>(
    magic: &[u8; 8],
    header: &H,
    net: &Denoiser,
) -> Result<Vec<u8>, GeneratorError> {
    let record = record_bytes(net)?;
    let mut header = header.clone();
    *header.denoiser_bytes() = record.len();
    let json = serde_json::to_vec(&header).map_err(|e| GeneratorError::Format(e.to_string()))?;
    Ok(weights::join(magic, &json, &[record]))
}

/// The header and the network of a file written by [`write_denoiser_file`] with `magic`; the
/// header is checked before the weights are read onto `device`.
pub(crate) fn read_denoiser_file<H: DenoiserFileHeader>(
    magic: &[u8; 8],
    bytes: &[u8],
    device: &Device,
) -> Result<(H, Denoiser), GeneratorError> {
    let (json, body) = weights::split(magic, bytes)?;
    let mut header: H =
        serde_json::from_slice(json).map_err(|e| GeneratorError::Format(e.to_string()))?;
    header
        .denoiser_config()
        .validate()
        .map_err(GeneratorError::Format)?;
    header.check()?;
    let parts = weights::records(body, &[*header.denoiser_bytes()])?;
    weights::check_budget(header.denoiser_config(), parts[0].len())?;
    let net = load_record(header.denoiser_config().init(device), parts[0])?;
    Ok((header, net))
}

/// What the weights file records besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorHeader {
    /// The network's shape.
    pub denoiser: DenoiserConfig,
    /// What the network predicts.
    pub prediction: Prediction,
    /// The polar grid it draws on.
    pub layout: PolarGrid,
    /// The tag names of the condition vector, in order.
    pub tags: Vec<String>,
    /// Free text: how the weights were trained.
    pub trained: String,
    /// Bytes of the denoiser's burnpack record after the header.
    pub denoiser_bytes: usize,
    /// Angular harmonics |m| ≤ this kept in every estimate of the clean image while sampling
    /// (`imaging::scattering::polar::chi_low_pass`); `None` keeps all. Files written before
    /// the field existed get [`DEFAULT_CHI_HARMONICS`].
    #[serde(default = "default_chi_harmonics")]
    pub chi_harmonics: Option<usize>,
    /// Diffusion in the band of angular harmonics |m| ≤ this: the model was trained with
    /// noise (and clean images) projected on the band, and sampling keeps the whole trajectory
    /// there ([`Sampler::with_subspace`]). `None` (files written before the field existed):
    /// noise in every χ bin.
    #[serde(default)]
    pub noise_harmonics: Option<usize>,
    /// The network reads where each row lies in q: [`Q_POSITION_PLANES`] condition planes
    /// ([`q_position_features`]) beside the noisy image. Convolutions and attention are blind
    /// to absolute position, and a lattice's rings sit at fixed *ratios* of q, which in rows
    /// depends on where the first ring is. `false` (files written before the field existed):
    /// no planes.
    #[serde(default)]
    pub q_position: bool,
    /// The network reads a lattice-series plane ([`LATTICE_SERIES_PLANES`], after the q
    /// position's): where the reflections of each requested lattice lie
    /// (`synth::scattering::lattice_series_plane`), with the distribution of first peaks it
    /// was trained on, from which sampling draws them. `None` (files written before the field
    /// existed): no plane.
    #[serde(default)]
    pub lattice_series: Option<LatticeSeries>,
}

/// What a generator reading the lattice-series plane knows of lattices: for each lattice tag,
/// where its reflections lie relative to the first (from the engine's lattices) and the first
/// peaks q₁ of the training images that carry the tag, from which sampling draws a requested
/// lattice's. The file carries both, so the browser needs no lattice code of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatticeSeries {
    /// Per lattice tag.
    pub lattices: std::collections::BTreeMap<String, SeriesOf>,
    /// The plane's peak value. Adam moves the plane's zero-started input weights by about the
    /// learning rate a step whatever the plane's scale, so a larger gain is a larger step for
    /// what the plane adds (files written before the gain existed: 1).
    #[serde(default = "unit_gain")]
    pub gain: f32,
}

fn unit_gain() -> f32 {
    1.0
}

/// One lattice's reflections and first-peak distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesOf {
    /// q_i / q₁ of the reflections the plane marks, increasing from 1.
    pub ratios: Vec<f64>,
    /// [`FIRST_PEAK_QUANTILES`] quantiles of q₁ in Å⁻¹ (at 0, 1/(n−1), …, 1) among the
    /// training images with the tag.
    pub first_peak_quantiles: Vec<f64>,
    /// How many training images they were taken from.
    pub images: usize,
}

/// Quantiles of the first-peak distribution kept per lattice tag.
pub const FIRST_PEAK_QUANTILES: usize = 33;

impl LatticeSeries {
    /// The series of lattices `(tag, reflection ratios, first peaks q₁ in Å⁻¹ of the training
    /// images with the tag)`; lattices without any first peak are left out.
    ///
    /// # Errors
    /// When a q₁ is not a positive finite number, or ratios do not start at 1 and increase.
    pub fn new(lattices: &[(&str, Vec<f64>, Vec<f64>)]) -> Result<Self, GeneratorError> {
        let mut out = std::collections::BTreeMap::new();
        for (tag, ratios, peaks) in lattices {
            if let Some(bad) = peaks.iter().find(|q| !(q.is_finite() && **q > 0.0)) {
                return Err(GeneratorError::Input(format!(
                    "a first peak of {tag} at {bad} Å⁻¹; it must be a positive number"
                )));
            }
            if ratios.first() != Some(&1.0) || ratios.windows(2).any(|w| w[1] <= w[0]) {
                return Err(GeneratorError::Input(format!(
                    "the reflections of {tag} must start at ratio 1 and increase: {ratios:?}"
                )));
            }
            if peaks.is_empty() {
                continue;
            }
            let mut sorted = peaks.clone();
            sorted.sort_by(f64::total_cmp);
            let last = (sorted.len() - 1) as f64;
            let first_peak_quantiles = (0..FIRST_PEAK_QUANTILES)
                .map(|i| {
                    let at = last * i as f64 / (FIRST_PEAK_QUANTILES - 1) as f64;
                    let (lo, frac) = (at.floor() as usize, at - at.floor());
                    let hi = (lo + 1).min(sorted.len() - 1);
                    sorted[lo] + frac * (sorted[hi] - sorted[lo])
                })
                .collect();
            out.insert(
                tag.to_string(),
                SeriesOf {
                    ratios: ratios.clone(),
                    first_peak_quantiles,
                    images: peaks.len(),
                },
            );
        }
        Ok(Self {
            lattices: out,
            gain: 1.0,
        })
    }

    /// The same series with its plane peaking at `gain` instead of 1.
    ///
    /// # Errors
    /// When the gain is not a positive finite number.
    pub fn with_gain(mut self, gain: f32) -> Result<Self, GeneratorError> {
        if !(gain.is_finite() && gain > 0.0) {
            return Err(GeneratorError::Input(format!(
                "a lattice-series gain of {gain}; it must be a positive number"
            )));
        }
        self.gain = gain;
        Ok(self)
    }

    /// The first peak (Å⁻¹) at quantile `u` ∈ [0, 1] of `tag`'s distribution, linear between
    /// the kept quantiles; `None` for a tag the training data never showed.
    pub fn first_peak(&self, tag: &str, u: f64) -> Option<f64> {
        let q = &self.lattices.get(tag)?.first_peak_quantiles;
        let last = q.len().checked_sub(1)?;
        let at = u.clamp(0.0, 1.0) * last as f64;
        let lo = (at.floor() as usize).min(last);
        let hi = (lo + 1).min(last);
        Some(q[lo] + (at - lo as f64) * (q[hi] - q[lo]))
    }

    /// The plane marking `lattices` (tag, q₁ in Å⁻¹) on `grid`: `q_bins` values, a Gaussian of
    /// σ = 1 row (peak `gain`) on the row of each reflection q₁ · ratioᵢ, the largest where marks
    /// meet; 0 where nothing is asked (and for tags it does not know). It tells the network
    /// *where* a lattice's rings go: their ratios are what a lattice is, and a network that
    /// sees only the tag has to find them on its own.
    pub fn plane(&self, grid: &PolarGrid, lattices: &[(&str, f64)]) -> Vec<f32> {
        let mut plane = vec![0f32; grid.q_bins];
        for &(tag, q1) in lattices {
            let Some(series) = self.lattices.get(tag) else {
                continue;
            };
            for ratio in &series.ratios {
                // Row coordinate of the peak; row j's centre is j + ½.
                let centre = grid.row_of(q1 * ratio);
                if !centre.is_finite() || centre < -4.0 || centre > grid.q_bins as f64 + 4.0 {
                    continue;
                }
                for (j, v) in plane.iter_mut().enumerate() {
                    let d = j as f64 + 0.5 - centre;
                    if d.abs() <= 4.0 {
                        *v = v.max(self.gain * libm::exp(-0.5 * d * d) as f32);
                    }
                }
            }
        }
        plane
    }

    /// The plane that image `index` of batch `seed` asking for `tags` gets: each lattice tag
    /// among them with a first peak drawn from its distribution, at a quantile that depends
    /// only on (`seed`, `index`, tag), so the same request gives the same plane wherever it is
    /// sampled.
    pub fn requested_plane(
        &self,
        grid: &PolarGrid,
        tags: &[&str],
        seed: u64,
        index: u64,
    ) -> Vec<f32> {
        self.plane(grid, &self.requested_lattices(tags, seed, index))
    }

    /// The lattices (tag, first peak q₁ in Å⁻¹) that image `index` of batch `seed` asking for
    /// `tags` is drawn with ([`Self::requested_plane`] marks their reflections).
    pub fn requested_lattices(&self, tags: &[&str], seed: u64, index: u64) -> Vec<(&str, f64)> {
        self.lattices
            .keys()
            .enumerate()
            .filter(|(_, t)| tags.iter().any(|x| x.trim() == t.as_str()))
            .filter_map(|(k, t)| {
                let bits = noise_seed(seed ^ 0x1A77_1CE5_E41E_5000, index ^ ((k as u64) << 48));
                // The top 53 bits as a uniform number in [0, 1).
                let u = (bits >> 11) as f64 / (1u64 << 53) as f64;
                self.first_peak(t, u).map(|q1| (t.as_str(), q1))
            })
            .collect()
    }
}

/// Condition planes of a network that reads the lattice series (the header's
/// `lattice_series`).
pub const LATTICE_SERIES_PLANES: usize = 1;

impl DenoiserFileHeader for GeneratorHeader {
    fn denoiser_config(&self) -> &DenoiserConfig {
        &self.denoiser
    }

    fn denoiser_bytes(&mut self) -> &mut usize {
        &mut self.denoiser_bytes
    }

    fn check(&self) -> Result<(), GeneratorError> {
        let planes = self.planes();
        if self.denoiser.condition_channels != planes {
            return Err(GeneratorError::Format(format!(
                "the header asks for {} condition planes, the q position and lattice series \
                 need {planes}",
                self.denoiser.condition_channels
            )));
        }
        Ok(())
    }
}

impl GeneratorHeader {
    /// Condition planes the network reads: the q position's, then the lattice series'.
    pub fn planes(&self) -> usize {
        usize::from(self.q_position) * Q_POSITION_PLANES
            + usize::from(self.lattice_series.is_some()) * LATTICE_SERIES_PLANES
    }

    /// The `[chi_bins, chi_bins]` projection on the band of angular harmonics |m| ≤ `m`.
    pub fn chi_band(&self, m: usize, device: &Device) -> Tensor<2> {
        let c = self.layout.chi_bins;
        Tensor::from_data(
            TensorData::new(imaging::scattering::polar::chi_low_pass(c, m), [c, c]),
            device,
        )
    }

    /// The q-position planes of a batch of `batch` images when the network reads them.
    ///
    /// # Shapes
    /// → `[batch, Q_POSITION_PLANES, q_bins, 1]`
    pub fn position_planes(&self, batch: usize, device: &Device) -> Option<Tensor<4>> {
        if !self.q_position {
            return None;
        }
        let q = self.layout.q_bins;
        let planes = Tensor::<4>::from_data(
            TensorData::new(
                q_position_features(&self.layout),
                [1, Q_POSITION_PLANES, q, 1],
            ),
            device,
        );
        Some(planes.repeat_dim(0, batch))
    }

    /// The network's condition for a batch: tag vectors `[batch, tags]`, 1 where they are
    /// given `[batch, 1]`, and the planes the network reads: the q position's, and each
    /// image's lattice-series plane (`series[i]`, `q_bins` values; give none when the network
    /// does not read it, and an empty vector for an image that asks for no lattice).
    ///
    /// # Errors
    /// When `series` does not fit the network (planes for a network that reads none, or a
    /// count or length that is not the batch's and the grid's).
    pub fn condition(
        &self,
        tags: Tensor<2>,
        tags_given: Tensor<2>,
        series: &[Vec<f32>],
    ) -> Result<Condition, GeneratorError> {
        let [b, _] = tags.dims();
        let device = tags.device();
        let position = self.position_planes(b, &device);
        let series = match (&self.lattice_series, series.is_empty()) {
            (None, true) => None,
            (None, false) => {
                return Err(GeneratorError::Input(
                    "lattice-series planes given to a model that does not read them".into(),
                ));
            }
            (Some(_), _) => Some(self.series_planes(b, series, &device)?),
        };
        let planes = match (position, series) {
            (Some(p), Some(s)) => Some(Tensor::cat(vec![p, s], 1)),
            (p, s) => p.or(s),
        };
        Ok(Condition {
            planes,
            tags: Some(tags),
            tags_given: Some(tags_given),
        })
    }

    /// The lattice-series planes of a batch: `series[i]` for image i (`q_bins` values, or
    /// empty for zeros); no series at all gives zeros for every image.
    ///
    /// # Shapes
    /// → `[batch, LATTICE_SERIES_PLANES, q_bins, 1]`
    fn series_planes(
        &self,
        batch: usize,
        series: &[Vec<f32>],
        device: &Device,
    ) -> Result<Tensor<4>, GeneratorError> {
        let q = self.layout.q_bins;
        if !series.is_empty() && series.len() != batch {
            return Err(GeneratorError::Input(format!(
                "{} lattice-series planes for {batch} images",
                series.len()
            )));
        }
        let mut flat = vec![0f32; batch * q];
        for (dst, plane) in flat.chunks_mut(q).zip(series) {
            match plane.len() {
                0 => {}
                n if n == q => dst.copy_from_slice(plane),
                n => {
                    return Err(GeneratorError::Input(format!(
                        "a lattice-series plane of {n} values; the grid has {q} q rows"
                    )));
                }
            }
        }
        Ok(Tensor::from_data(
            TensorData::new(flat, [batch, LATTICE_SERIES_PLANES, q, 1]),
            device,
        ))
    }

    /// The projection the training noise and clean images go through (`noise_harmonics`).
    pub fn noise_subspace(&self, device: &Device) -> Option<Tensor<2>> {
        self.noise_harmonics.map(|m| self.chi_band(m, device))
    }
}

/// The band of angular harmonics sampling keeps by default. Engine polar images lose 0.013
/// (RMS, value scale) outside it; the band was chosen on the tuning batch 8 of
/// `eval diffusion` (4, 8, 12, 16 and all compared; `docs/diffusion.md`).
pub const DEFAULT_CHI_HARMONICS: usize = 8;

/// Condition planes of a network that reads q positions (the header's `q_position`).
pub const Q_POSITION_PLANES: usize = 3;

/// Where each row of `layout` lies in q, as [`Q_POSITION_PLANES`] planes of `q_bins` values
/// each (plane-major): the row coordinate, q / q_max and ln(q / q_max) / 4 (clamped at −2),
/// each in about [−2, 1]. The logarithm makes a fixed ratio of q a fixed offset.
pub fn q_position_features(layout: &PolarGrid) -> Vec<f32> {
    let n = layout.q_bins;
    let rows = (0..n).map(|r| r as f64 + 0.5);
    let q_max = layout.q_max_inv_angstrom;
    let mut out = Vec::with_capacity(Q_POSITION_PLANES * n);
    out.extend(rows.clone().map(|r| (2.0 * r / n as f64 - 1.0) as f32));
    out.extend(
        rows.clone()
            .map(|r| (2.0 * layout.q_at(r) / q_max - 1.0) as f32),
    );
    out.extend(rows.map(|r| ((layout.q_at(r) / q_max).max(1e-12).ln() / 4.0).max(-2.0) as f32));
    out
}

fn default_chi_harmonics() -> Option<usize> {
    Some(DEFAULT_CHI_HARMONICS)
}

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleSettings {
    /// Update rule.
    pub sampler: SamplerKind,
    /// Network evaluations (each doubled by guidance ≠ 1).
    pub steps: usize,
    /// Classifier-free guidance scale (1: the conditional network).
    pub guidance: f32,
    /// Guidance scale of the lattice-series plane, for models that read it (1: the plane read
    /// by both branches, plain guidance; larger follows the requested lattice's ring positions
    /// more closely; see [`Guided::with_plane_guidance`]).
    #[serde(default = "unit_gain")]
    pub lattice_guidance: f32,
}

/// The lattice-series plane's default guidance scale (docs/diffusion.md, probe 16).
pub const DEFAULT_LATTICE_GUIDANCE: f32 = 1.0;

impl Default for SampleSettings {
    fn default() -> Self {
        Self {
            sampler: SamplerKind::DpmSolver2M,
            steps: 20,
            guidance: 2.0,
            lattice_guidance: DEFAULT_LATTICE_GUIDANCE,
        }
    }
}

/// The denoiser and its settings.
#[derive(Debug, Clone)]
pub struct Generator {
    /// The network.
    pub denoiser: Denoiser,
    /// Shape, grid and tag names.
    pub header: GeneratorHeader,
}

/// The generator's default network for `layout` and `tags` tags: widths 64/128/128/256 over
/// q_bins/…/q_bins÷8 rows, attention over the coarsest rows.
pub fn default_denoiser(layout: &PolarGrid, tags: usize) -> DenoiserConfig {
    DenoiserConfig::new(layout.chi_bins)
        .with_tags(tags)
        .with_base_width(64)
        .with_multipliers(vec![1, 2, 2, 4])
        .with_attention_heads(4)
        .with_groups(8)
        .with_one_dimensional(true)
}

impl Generator {
    /// A fresh, untrained generator.
    pub fn init(
        denoiser: DenoiserConfig,
        layout: PolarGrid,
        tags: Vec<String>,
        device: &Device,
    ) -> Result<Self, GeneratorError> {
        denoiser.validate().map_err(GeneratorError::Input)?;
        if denoiser.channels != layout.chi_bins || !denoiser.one_dimensional {
            return Err(GeneratorError::Input(format!(
                "a one-dimensional denoiser with {} channels is needed for {} χ bins",
                layout.chi_bins, layout.chi_bins
            )));
        }
        if !layout.q_bins.is_multiple_of(denoiser.multiple_px()) {
            return Err(GeneratorError::Input(format!(
                "{} q bins are not a multiple of {}",
                layout.q_bins,
                denoiser.multiple_px()
            )));
        }
        // Fresh networks read the q position or nothing; the lattice series is added to a
        // network ([`Generator::with_lattice_series`]).
        if denoiser.condition_channels != 0 && denoiser.condition_channels != Q_POSITION_PLANES {
            return Err(GeneratorError::Input(format!(
                "the generator's condition planes are its {Q_POSITION_PLANES} q-position planes \
                 or none, not {}",
                denoiser.condition_channels
            )));
        }
        if denoiser.tags != tags.len() {
            return Err(GeneratorError::Input(format!(
                "the denoiser reads {} tags but {} are named",
                denoiser.tags,
                tags.len()
            )));
        }
        let q_position = denoiser.condition_channels == Q_POSITION_PLANES;
        Ok(Self {
            denoiser: denoiser.init(device),
            header: GeneratorHeader {
                denoiser,
                prediction: Prediction::Velocity,
                layout,
                tags,
                trained: String::new(),
                denoiser_bytes: 0,
                chi_harmonics: default_chi_harmonics(),
                noise_harmonics: None,
                q_position,
                lattice_series: None,
            },
        })
    }

    /// Serialises the generator (see [`crate::weights`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, GeneratorError> {
        write_denoiser_file(MAGIC, &self.header, &self.denoiser)
    }

    /// Reads a generator written by [`Generator::to_bytes`] onto `device`.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self, GeneratorError> {
        let (header, denoiser) = read_denoiser_file(MAGIC, bytes, device)?;
        Ok(Self { denoiser, header })
    }

    /// The same generator reading q positions: the input convolution gains the
    /// [`Q_POSITION_PLANES`] planes with zero weights, so it computes exactly what it did
    /// before until training moves them (a warm start for `train diffusion --init
    /// --q-position`). A generator that reads them already is returned as it is.
    pub fn with_q_position(mut self) -> Result<Self, GeneratorError> {
        if self.header.q_position {
            return Ok(self);
        }
        if self.header.lattice_series.is_some() {
            // Planes are appended, and the q position's come first.
            return Err(GeneratorError::Input(
                "add the q position before the lattice series, not after".into(),
            ));
        }
        self.denoiser = self
            .denoiser
            .with_condition_channels(Q_POSITION_PLANES)
            .map_err(GeneratorError::Device)?;
        self.header.denoiser.condition_channels = Q_POSITION_PLANES;
        self.header.q_position = true;
        Ok(self)
    }

    /// The same generator reading the lattice-series plane of `series` (its first-peak
    /// distribution replaces any the generator had): the input convolution gains the plane with
    /// zero weights, so it computes exactly what it did before until training moves them (a
    /// warm start for `train diffusion --init --lattice-series`).
    pub fn with_lattice_series(mut self, series: LatticeSeries) -> Result<Self, GeneratorError> {
        if self.header.lattice_series.is_none() {
            self.denoiser = self
                .denoiser
                .with_condition_channels(LATTICE_SERIES_PLANES)
                .map_err(GeneratorError::Device)?;
            self.header.denoiser.condition_channels += LATTICE_SERIES_PLANES;
        }
        self.header.lattice_series = Some(series);
        Ok(self)
    }

    /// The lattice-series planes of images `indices` of batch `seed`, image i asking for
    /// `tags[i]` ([`LatticeSeries::requested_plane`]), for [`Generator::sample`]; none when
    /// the network reads no plane.
    pub fn series_planes(&self, tags: &[Vec<String>], seed: u64, indices: &[u64]) -> Vec<Vec<f32>> {
        let Some(series) = &self.header.lattice_series else {
            return Vec::new();
        };
        tags.iter()
            .zip(indices)
            .map(|(t, &index)| {
                let names: Vec<&str> = t.iter().map(String::as_str).collect();
                series.requested_plane(&self.header.layout, &names, seed, index)
            })
            .collect()
    }

    /// The same generator with self-attention at the end of the way up of `levels` (0: the
    /// full q resolution), output projections at zero, so it computes exactly what it did
    /// before until training moves them (a warm start for `train diffusion --init
    /// --up-attention`). Levels it attends at already keep their weights.
    pub fn with_up_attention(
        mut self,
        levels: &[usize],
        device: &Device,
    ) -> Result<Self, GeneratorError> {
        let mut named = self
            .header
            .denoiser
            .up_attention
            .clone()
            .unwrap_or_default();
        named.extend_from_slice(levels);
        named.sort_unstable();
        named.dedup();
        let config = DenoiserConfig {
            up_attention: Some(named),
            ..self.header.denoiser.clone()
        };
        self.denoiser = self
            .denoiser
            .with_up_attention(&config, device)
            .map_err(GeneratorError::Input)?;
        self.header.denoiser = config;
        Ok(self)
    }

    /// The tag vector of `names` (each one of the header's tags).
    pub fn tag_vector(&self, names: &[&str]) -> Result<Vec<f32>, GeneratorError> {
        let mut v = vec![0.0; self.header.tags.len()];
        for name in names {
            let i = self
                .header
                .tags
                .iter()
                .position(|t| t == name.trim())
                .ok_or_else(|| {
                    GeneratorError::Input(format!(
                        "unknown tag \"{}\"; the model knows: {}",
                        name.trim(),
                        self.header.tags.join(", ")
                    ))
                })?;
            v[i] = 1.0;
        }
        Ok(v)
    }

    /// The lattices (tag, first peak q₁ in Å⁻¹) whose reflections image `index` of batch
    /// `seed` asking for `tags` gets marked in its lattice-series plane; none when the network
    /// reads no plane.
    pub fn requested_lattices(&self, tags: &[String], seed: u64, index: u64) -> Vec<(String, f64)> {
        let Some(series) = &self.header.lattice_series else {
            return Vec::new();
        };
        let names: Vec<&str> = tags.iter().map(String::as_str).collect();
        series
            .requested_lattices(&names, seed, index)
            .into_iter()
            .map(|(t, q1)| (t.to_string(), q1))
            .collect()
    }

    /// Starts sampling one polar image per seed.
    pub fn sampler(
        &self,
        settings: &SampleSettings,
        seeds: &[u64],
        device: &Device,
    ) -> Result<Sampler, GeneratorError> {
        let l = &self.header.layout;
        let sampler = Sampler::new(
            settings.sampler,
            settings.steps,
            seeds,
            [l.chi_bins, l.q_bins, 1],
            device,
        )?
        .with_clip(1.0);
        let h = &self.header;
        let sampler = match self.header.noise_subspace(device) {
            Some(p) => sampler.with_subspace(p),
            None => sampler,
        };
        // Estimates keep the narrower of the two bands.
        Ok(match (h.chi_harmonics, h.noise_harmonics) {
            (Some(m), Some(n)) if m < n => sampler.with_projection(h.chi_band(m, device)),
            (Some(m), None) => sampler.with_projection(h.chi_band(m, device)),
            _ => sampler,
        })
    }

    /// The guided network for a batch with these tag vectors (one per item, each as long as
    /// the header's tags) and, when the network reads them, lattice-series planes (one per
    /// item; none otherwise), at the guidance scales of `settings`.
    pub fn guided(
        &self,
        tags: &[Vec<f32>],
        series: &[Vec<f32>],
        settings: &SampleSettings,
        device: &Device,
    ) -> Result<Guided<'_>, GeneratorError> {
        let n = self.header.tags.len();
        if let Some(bad) = tags.iter().find(|t| t.len() != n) {
            return Err(GeneratorError::Input(format!(
                "a tag vector has {} values, the model reads {n}",
                bad.len()
            )));
        }
        let flat: Vec<f32> = tags.iter().flatten().copied().collect();
        let b = tags.len();
        let tags = Tensor::<2>::from_data(TensorData::new(flat, [b, n]), device);
        let condition =
            self.header
                .condition(tags.clone(), Tensor::ones([b, 1], device), series)?;
        let guided = Guided::new(
            &self.denoiser,
            self.header.prediction,
            condition,
            settings.guidance,
        )?;
        // A batch that asks for no lattice has nothing to guide (and skips the third pass).
        let marked = series.iter().flatten().any(|&v| v != 0.0);
        if let Some(lattices) = &self.header.lattice_series
            && settings.lattice_guidance != 1.0
            && marked
        {
            // P₀: the q position as before, the lattice-series plane all zeros; guided only on
            // the rows the plane marks, in proportion to the mark (the rest of a profile is
            // the tags' to say): m = plane / gain, [b, 1, q_bins, 1].
            let unmarked = self
                .header
                .condition(tags, Tensor::ones([b, 1], device), &[])?;
            let mask = self
                .header
                .series_planes(b, series, device)?
                .div_scalar(lattices.gain);
            if let Some(planes) = unmarked.planes {
                return Ok(guided.with_plane_guidance(planes, settings.lattice_guidance, mask)?);
            }
        }
        Ok(guided)
    }

    /// Samples polar images: `tags[i]` (and `series[i]`, see [`Generator::guided`]) for seed
    /// `seeds[i]`; returns them row-major `[q_bins, chi_bins]` each. Calls
    /// `progress(step, steps)` after every step; it returns `false` to stop early (then `None`).
    pub async fn sample(
        &self,
        settings: &SampleSettings,
        tags: &[Vec<f32>],
        series: &[Vec<f32>],
        seeds: &[u64],
        device: &Device,
        mut progress: impl FnMut(usize, usize) -> bool,
    ) -> Result<Option<Vec<Vec<f32>>>, GeneratorError> {
        if tags.len() != seeds.len() {
            return Err(GeneratorError::Input(format!(
                "{} tag vectors for {} seeds",
                tags.len(),
                seeds.len()
            )));
        }
        let model = self.guided(tags, series, settings, device)?;
        let mut sampler = self.sampler(settings, seeds, device)?;
        while !sampler.is_done() {
            sampler.step(&model);
            if !progress(sampler.steps_done(), sampler.steps()) {
                return Ok(None);
            }
        }
        Ok(Some(self.polar_images(sampler.current()).await?))
    }

    /// Polar images from the network's layout.
    ///
    /// # Shapes
    /// - `x`: `[batch, chi_bins, q_bins, 1]` → `batch` vectors of `q_bins × chi_bins`
    pub async fn polar_images(&self, x: Tensor<4>) -> Result<Vec<Vec<f32>>, GeneratorError> {
        let [b, c, q, _] = x.dims();
        let values = x
            .swap_dims(1, 2)
            .into_data_async()
            .await
            .map_err(|e| GeneratorError::Device(format!("{e:?}")))?
            .try_into_vec::<f32>()
            .map_err(|e| GeneratorError::Device(format!("{e:?}")))?;
        Ok(values.chunks(q * c).take(b).map(<[f32]>::to_vec).collect())
    }
}

/// One generated detector image's line of `labels.jsonl`, as `synthscope sample diffusion` and
/// the browser's Diffusion mode write it: what was asked for, with which model and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    /// Image file name in the dataset.
    pub file: String,
    /// Always "saxs".
    pub kind: String,
    /// Always "diffusion" (engine images have no such key).
    pub generated_by: String,
    /// Model name (for example "diffusion-v3").
    pub model: String,
    /// SHA-256 of the model file.
    pub model_sha256: String,
    /// Detector width in pixels.
    pub width: usize,
    /// Detector height in pixels.
    pub height: usize,
    /// The requested tags.
    pub tags: Vec<String>,
    /// Batch seed.
    pub seed: u64,
    /// Image index in the batch (its noise is `noise_seed(seed, index)`).
    pub index: u64,
    /// Sampler name ("dpm++", "ddim", "ddpm").
    pub sampler: String,
    /// Denoising steps.
    pub steps: usize,
    /// Classifier-free guidance scale.
    pub guidance: f32,
    /// Beam centre of the drawn instrument, pixels.
    pub beam_x_px: f64,
    /// Beam centre of the drawn instrument, pixels.
    pub beam_y_px: f64,
    /// The realism ensemble's score when it judged the image (`--keep-realistic`).
    pub realism_score: Option<f64>,
    /// First peak q₁ (Å⁻¹) of each requested lattice whose reflections the lattice-series plane
    /// marked (models that read the plane); the rings were asked for at q₁ × the lattice's
    /// ratios.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub lattice_first_peak_q_inv_angstrom: std::collections::BTreeMap<String, f64>,
    /// The lattice-series plane's guidance scale, where a lattice was marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lattice_guidance: Option<f32>,
}

impl SampleRecord {
    /// The record of image `index` of a batch drawn with `settings`; `kind` and
    /// `generated_by` filled in, `realism_score` and the lattices empty
    /// ([`SampleRecord::with_lattices`]).
    pub fn new(
        file: String,
        model: (&str, &str),
        size_px: (usize, usize),
        tags: Vec<String>,
        (seed, index): (u64, u64),
        settings: &SampleSettings,
        beam_px: (f64, f64),
    ) -> Self {
        Self {
            file,
            kind: "saxs".into(),
            generated_by: "diffusion".into(),
            model: model.0.into(),
            model_sha256: model.1.into(),
            width: size_px.0,
            height: size_px.1,
            tags,
            seed,
            index,
            sampler: settings.sampler.name().into(),
            steps: settings.steps,
            guidance: settings.guidance,
            beam_x_px: beam_px.0,
            beam_y_px: beam_px.1,
            realism_score: None,
            lattice_first_peak_q_inv_angstrom: std::collections::BTreeMap::new(),
            lattice_guidance: None,
        }
    }

    /// The same record with the lattices its lattice-series plane marked (tag, first peak q₁
    /// in Å⁻¹) and, when there are any, the plane's guidance scale of `settings`.
    pub fn with_lattices(
        mut self,
        lattices: Vec<(String, f64)>,
        settings: &SampleSettings,
    ) -> Self {
        self.lattice_guidance = (!lattices.is_empty()).then_some(settings.lattice_guidance);
        self.lattice_first_peak_q_inv_angstrom = lattices.into_iter().collect();
        self
    }
}

/// The starting-noise seed of image `index` of a batch with seed `seed` (splitmix64 of both):
/// image i of a batch is the same whatever the batch size and wherever it is sampled.
pub fn noise_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The network's input for a batch of polar images (row-major `[q_bins, chi_bins]` each).
///
/// # Shapes
/// - output: `[images.len(), chi_bins, q_bins, 1]`
pub fn polar_tensor(images: &[&[f32]], layout: &PolarGrid, device: &Device) -> Tensor<4> {
    let (q, c) = (layout.q_bins, layout.chi_bins);
    let flat: Vec<f32> = images.iter().flat_map(|i| i.iter().copied()).collect();
    // [b, q, c, 1] as stored → [b, c, q, 1]
    Tensor::<4>::from_data(TensorData::new(flat, [images.len(), q, c, 1]), device).swap_dims(1, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> PolarGrid {
        PolarGrid {
            q_bins: 16,
            chi_bins: 8,
            q_min_inv_angstrom: 0.0,
            q_max_inv_angstrom: 0.9,
            q_exponent: 0.5,
        }
    }

    fn small(device: &Device) -> Generator {
        let config = DenoiserConfig::new(8)
            .with_tags(3)
            .with_base_width(8)
            .with_multipliers(vec![1, 2])
            .with_attention_heads(2)
            .with_groups(4)
            .with_one_dimensional(true);
        let tags = vec!["ring".into(), "halo".into(), "BCC".into()];
        Generator::init(config, layout(), tags, device).expect("generator")
    }

    #[test]
    fn polar_images_round_trip_through_the_network_layout() {
        let device = Device::flex();
        let g = small(&device);
        let a: Vec<f32> = (0..128).map(|i| i as f32 / 128.0).collect();
        let b: Vec<f32> = a.iter().map(|v| -v).collect();
        let t = polar_tensor(&[&a, &b], &g.header.layout, &device);
        assert_eq!(t.dims(), [2, 8, 16, 1]);
        // Row 3, column 5 of image a is channel 5, height 3.
        let v = t
            .clone()
            .slice([0..1, 5..6, 3..4, 0..1])
            .into_scalar::<f32>();
        assert_eq!(v, a[3 * 8 + 5]);
        let back = crate::block_on(g.polar_images(t)).expect("read");
        assert_eq!(back, vec![a, b]);
    }

    #[test]
    fn files_without_a_band_get_the_default_and_null_keeps_all() {
        let device = Device::flex();
        let header = small(&device).header;
        assert_eq!(header.chi_harmonics, Some(DEFAULT_CHI_HARMONICS));
        let mut v = serde_json::to_value(&header).expect("json");
        v.as_object_mut().expect("object").remove("chi_harmonics");
        let old: GeneratorHeader = serde_json::from_value(v.clone()).expect("old header");
        assert_eq!(old.chi_harmonics, Some(DEFAULT_CHI_HARMONICS));
        v["chi_harmonics"] = serde_json::Value::Null;
        let all: GeneratorHeader = serde_json::from_value(v).expect("header");
        assert_eq!(all.chi_harmonics, None);
        // Noise in every χ bin unless the file says otherwise.
        assert_eq!(old.noise_harmonics, None);
    }

    #[test]
    fn attention_added_on_the_way_up_is_saved_with_its_level_and_changes_nothing_yet() {
        let device = Device::flex();
        let g = small(&device);
        let x = crate::diffusion::sampler::batch_noise(&[3], [8, 16, 1], &device);
        let condition = g
            .header
            .condition(
                Tensor::ones([1, 3], &device),
                Tensor::ones([1, 1], &device),
                &[],
            )
            .expect("condition");
        let before = g.denoiser.forward(x.clone(), &[0.4], &condition);
        let g = g
            .with_up_attention(&[0], &device)
            .expect("attention at level 0");
        // Naming a level twice keeps one layer.
        let g = g.with_up_attention(&[0], &device).expect("again");
        assert_eq!(g.header.denoiser.up_attention, Some(vec![0]));
        let after = g.denoiser.forward(x.clone(), &[0.4], &condition);
        assert_eq!(after.into_data(), before.clone().into_data());
        let back = Generator::from_bytes(&g.to_bytes().expect("bytes"), &device).expect("read");
        assert_eq!(back.header.denoiser.up_attention, Some(vec![0]));
        let reread = back.denoiser.forward(x, &[0.4], &condition);
        assert_eq!(reread.into_data(), before.into_data());
        let Err(e) = small(&device).with_up_attention(&[2], &device) else {
            panic!("a level the network does not have was accepted");
        };
        assert!(e.to_string().contains("levels are 0 to 1"), "{e}");
    }

    #[test]
    fn a_model_diffusing_in_the_band_samples_in_the_band() {
        let device = Device::flex();
        let mut g = small(&device);
        // 8 χ bins; noise in |m| ≤ 1, estimates in |m| ≤ 3 (the narrower band wins).
        g.header.noise_harmonics = Some(1);
        g.header.chi_harmonics = Some(3);
        let settings = SampleSettings {
            steps: 3,
            sampler: SamplerKind::Ddpm,
            guidance: 1.0,
            lattice_guidance: 1.0,
        };
        let tags = vec![vec![1.0, 0.0, 0.0]];
        let mut sampler = g.sampler(&settings, &[7], &device).expect("sampler");
        let model = g.guided(&tags, &[], &settings, &device).expect("model");
        let p = imaging::scattering::polar::chi_low_pass(8, 1);
        let outside = |x: Tensor<4>| {
            let rows = crate::block_on(g.polar_images(x)).expect("read").remove(0);
            rows.chunks(8)
                .map(|row| {
                    (0..8)
                        .map(|j| {
                            let kept: f32 = (0..8).map(|k| p[j * 8 + k] * row[k]).sum();
                            (row[j] - kept).abs()
                        })
                        .fold(0.0f32, f32::max)
                })
                .fold(0.0f32, f32::max)
        };
        assert!(outside(sampler.current()) < 1e-5);
        // Every state before the last (which is clipped to the value range) stays in the band.
        while sampler.steps_done() + 1 < sampler.steps() {
            sampler.step(&model);
            assert!(outside(sampler.current()) < 1e-5);
        }
        let noise = g.header.noise_subspace(&device).expect("band");
        assert_eq!(noise.dims(), [8, 8]);
    }

    #[test]
    fn q_position_planes_follow_the_grid_and_survive_the_file() {
        let device = Device::flex();
        let grid = layout();
        let f = q_position_features(&grid);
        assert_eq!(f.len(), Q_POSITION_PLANES * 16);
        // Row 12 of 16 has its centre at 12.5/16 of the √q axis: q = 0.9·(12.5/16)².
        let q12 = 0.9 * (12.5f64 / 16.0).powi(2);
        assert!((f[12] - (25.0 / 16.0 - 1.0) as f32).abs() < 1e-6);
        assert!((f[16 + 12] - (2.0 * q12 / 0.9 - 1.0) as f32).abs() < 1e-6);
        assert!((f[32 + 12] - ((q12 / 0.9).ln() / 4.0) as f32).abs() < 1e-6);
        // A fixed ratio of q is a fixed step of the log plane (row centres 0.5, 1.5, 4.5: q × 9).
        let ratio = |a: usize, b: usize| f[32 + b] - f[32 + a];
        assert!((ratio(0, 1) - ratio(1, 4)).abs() < 1e-6);
        assert!(f.iter().all(|v| (-2.0..=1.0).contains(v)));

        let g = small(&device);
        assert!(g.header.position_planes(2, &device).is_none());
        let wide = g.with_q_position().expect("widen");
        assert!(wide.header.q_position);
        assert_eq!(wide.header.denoiser.condition_channels, Q_POSITION_PLANES);
        let planes = wide.header.position_planes(2, &device).expect("planes");
        assert_eq!(planes.dims(), [2, Q_POSITION_PLANES, 16, 1]);
        let back = Generator::from_bytes(&wide.to_bytes().expect("bytes"), &device).expect("read");
        assert!(back.header.q_position);
        // It samples (the planes reach the guided batch).
        let settings = SampleSettings {
            steps: 2,
            ..SampleSettings::default()
        };
        let out = crate::block_on(back.sample(
            &settings,
            &[vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 1.0]],
            &[],
            &[1, 2],
            &device,
            |_, _| true,
        ))
        .expect("sample")
        .expect("not stopped");
        assert_eq!(out.len(), 2);
        // A header claiming planes its network does not read is refused.
        let mut bad = g_header_json(&back);
        bad["q_position"] = serde_json::Value::Bool(false);
        let bytes = rewrite_header(&back, bad);
        let err = Generator::from_bytes(&bytes, &device).expect_err("inconsistent");
        assert!(err.to_string().contains("condition planes"), "{err}");
    }

    #[test]
    fn the_lattice_series_plane_starts_silent_follows_the_q_position_and_survives_the_file() {
        let device = Device::flex();
        let bcc = vec![1.0, 2f64.sqrt(), 3f64.sqrt(), 2.0];
        let series = LatticeSeries::new(&[
            ("BCC", bcc.clone(), vec![0.04, 0.02, 0.03]),
            ("FCC", vec![1.0, 1.15], vec![]),
        ])
        .expect("series");
        // Quantiles of 0.02, 0.03, 0.04: the ends and the median; tags never seen: none.
        assert_eq!(series.first_peak("BCC", 0.0), Some(0.02));
        assert!((series.first_peak("BCC", 0.5).expect("median") - 0.03).abs() < 1e-12);
        assert_eq!(series.first_peak("BCC", 1.0), Some(0.04));
        assert!((series.first_peak("BCC", 0.25).expect("q") - 0.025).abs() < 1e-12);
        assert_eq!(series.first_peak("FCC", 0.5), None);
        assert_eq!(series.first_peak("lamellar", 0.5), None);
        assert!(LatticeSeries::new(&[("BCC", bcc.clone(), vec![-0.1])]).is_err());
        assert!(LatticeSeries::new(&[("BCC", vec![1.0, 0.9], vec![0.1])]).is_err());

        // The plane marks each reflection on its row and nothing between (a 256-row grid).
        let grid = PolarGrid::reference();
        let q1 = 0.03;
        let plane = series.plane(&grid, &[("BCC", q1)]);
        assert_eq!(plane.len(), grid.q_bins);
        for ratio in &bcc {
            let row = grid.row_of(q1 * ratio).floor() as usize;
            assert!(plane[row] > 0.6, "row {row}: {}", plane[row]);
        }
        let (a, b) = (grid.row_of(q1), grid.row_of(q1 * bcc[1]));
        assert!(b - a > 8.0, "{a} {b}");
        assert!(plane[((a + b) / 2.0) as usize] < 1e-3);
        assert!(plane.iter().all(|v| (0.0..=1.0).contains(v)));
        // A gain scales the plane and nothing else; it must be positive.
        let loud = series.clone().with_gain(8.0).expect("gain");
        for (a, b) in plane.iter().zip(loud.plane(&grid, &[("BCC", q1)])) {
            assert!((8.0 * a - b).abs() < 1e-6, "{a} {b}");
        }
        assert!(series.clone().with_gain(0.0).is_err());
        assert!(series.clone().with_gain(f32::NAN).is_err());
        assert!(series.plane(&grid, &[]).iter().all(|&v| v == 0.0));
        assert!(
            series
                .plane(&grid, &[("lamellar", q1)])
                .iter()
                .all(|&v| v == 0.0)
        );
        // Requests: reproducible per image, different between images, empty without a lattice
        // tag the model knows.
        let ask = |tags: &[&str], index| series.requested_plane(&grid, tags, 5, index);
        let a = ask(&["BCC", "ring"], 1);
        assert_eq!(a, ask(&["BCC", "ring"], 1));
        assert_ne!(a, ask(&["BCC", "ring"], 2));
        assert!(a.iter().any(|&v| v > 0.9));
        assert!(ask(&["ring", "halo"], 1).iter().all(|&v| v == 0.0));
        assert!(ask(&["FCC"], 1).iter().all(|&v| v == 0.0));

        let g = small(&device).with_q_position().expect("q position");
        let settings = SampleSettings {
            steps: 2,
            ..SampleSettings::default()
        };
        let tags = [vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 1.0]];
        let before =
            crate::block_on(g.sample(&settings, &tags, &[], &[1, 2], &device, |_, _| true))
                .expect("sample")
                .expect("not stopped");
        let wide = g
            .clone()
            .with_lattice_series(series.clone())
            .expect("widen");
        assert_eq!(
            wide.header.denoiser.condition_channels,
            Q_POSITION_PLANES + 1
        );
        assert_eq!(wide.header.planes(), Q_POSITION_PLANES + 1);
        // The planes added to this untrained network read with zero weights, the image not.
        let norms = wide.denoiser.input_weight_norms().expect("norms");
        let images = norms.len() - Q_POSITION_PLANES - 1;
        assert!(norms[..images].iter().all(|&n| n > 0.01), "{norms:?}");
        assert!(norms[images..].iter().all(|&n| n == 0.0), "{norms:?}");
        let asked = [vec!["BCC".to_string()], vec!["ring".to_string()]];
        let planes = wide.series_planes(&asked, 5, &[0, 1]);
        assert_eq!(planes.len(), 2);
        assert!(planes.iter().all(|p| p.len() == 16));
        assert!(planes[0].iter().any(|&v| v > 0.5) && planes[1].iter().all(|&v| v == 0.0));
        assert!(g.series_planes(&asked, 5, &[0, 1]).is_empty());
        // The q position cannot come after the series (planes are appended in order).
        assert!(wide.clone().with_q_position().is_ok(), "already reads it");
        assert!(
            small(&device)
                .with_lattice_series(series.clone())
                .expect("s")
                .with_q_position()
                .is_err()
        );
        // Silent at first: the same samples with a plane marking rows as without.
        let mut plane = vec![0f32; 16];
        plane[5] = 1.0;
        let sample = |g: &Generator, s: &SampleSettings| {
            crate::block_on(g.sample(
                s,
                &tags,
                &[plane.clone(), Vec::new()],
                &[1, 2],
                &device,
                |_, _| true,
            ))
            .expect("sample")
            .expect("not stopped")
        };
        let after = sample(&wide, &settings);
        for (a, b) in before.iter().flatten().zip(after.iter().flatten()) {
            assert!((a - b).abs() < 1e-5, "{a} {b}");
        }
        // Guiding the plane (three passes, the mask broadcast over χ) changes nothing while
        // the network does not read it; once it does, the marked image changes.
        let lattice_guided = SampleSettings {
            lattice_guidance: 8.0,
            ..settings
        };
        let guided = sample(&wide, &lattice_guided);
        for (a, b) in after.iter().flatten().zip(guided.iter().flatten()) {
            assert!((a - b).abs() < 1e-5, "{a} {b}");
        }
        let reading = Generator {
            denoiser: wide.denoiser.clone().with_outer_weights_shifted(0.05),
            ..wide.clone()
        };
        let plain = sample(&reading, &settings);
        let guided = sample(&reading, &lattice_guided);
        let diff = |i: usize| {
            plain[i]
                .iter()
                .zip(&guided[i])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max)
        };
        assert!(diff(0) > 1e-4, "the marked image did not change");
        assert!(diff(1) < 1e-5, "the unmarked image changed by {}", diff(1));
        // Requests that do not fit are refused with what was wrong.
        let err = wide
            .guided(&tags, &[plane.clone()], &settings, &device)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("1 lattice-series planes for 2 images")));
        let err = wide
            .guided(&tags, &[vec![0.0; 3], Vec::new()], &settings, &device)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("16 q rows")));
        let err = g
            .guided(&tags, &[plane.clone(), plane], &settings, &device)
            .err();
        assert!(err.is_some_and(|e| e.to_string().contains("does not read them")));
        // The file keeps the plane and the distribution.
        let back = Generator::from_bytes(&wide.to_bytes().expect("bytes"), &device).expect("read");
        assert_eq!(back.header.lattice_series, Some(series));
        let mut bad = g_header_json(&back);
        bad["lattice_series"] = serde_json::Value::Null;
        let err = Generator::from_bytes(&rewrite_header(&back, bad), &device).expect_err("bad");
        assert!(err.to_string().contains("condition planes"), "{err}");
    }

    fn g_header_json(g: &Generator) -> serde_json::Value {
        serde_json::to_value(&g.header).expect("json")
    }

    fn rewrite_header(g: &Generator, header: serde_json::Value) -> Vec<u8> {
        let header: GeneratorHeader = serde_json::from_value(header).expect("header");
        write_denoiser_file(MAGIC, &header, &g.denoiser).expect("file")
    }

    #[test]
    fn file_round_trips_and_bad_requests_are_refused() {
        let device = Device::flex();
        let g = small(&device);
        let bytes = g.to_bytes().expect("bytes");
        let back = Generator::from_bytes(&bytes, &device).expect("read");
        assert_eq!(back.header.tags, g.header.tags);
        assert_eq!(back.to_bytes().expect("bytes"), bytes);
        assert!(Generator::from_bytes(&bytes[..bytes.len() - 3], &device).is_err());
        let err = Generator::from_bytes(b"SSGRAIN1xxxxxxxx", &device).expect_err("magic");
        assert!(err.to_string().contains("train diffusion"), "{err}");
        assert_eq!(
            g.tag_vector(&["halo", " BCC"]).expect("tags"),
            vec![0.0, 1.0, 1.0]
        );
        let err = g.tag_vector(&["rings"]).expect_err("unknown");
        assert!(err.to_string().contains("ring, halo, BCC"), "{err}");
        let settings = SampleSettings {
            steps: 0,
            ..SampleSettings::default()
        };
        assert!(g.sampler(&settings, &[1], &device).is_err());
        let at = |guidance: f32| SampleSettings {
            guidance,
            ..SampleSettings::default()
        };
        assert!(g.guided(&[vec![1.0]], &[], &at(2.0), &device).is_err());
        assert!(
            g.guided(&[vec![1.0, 0.0, 0.0]], &[], &at(f32::NAN), &device)
                .is_err()
        );
    }

    #[test]
    fn sampling_gives_one_bounded_image_per_seed_and_can_stop() {
        let device = Device::flex();
        let g = small(&device);
        let settings = SampleSettings {
            steps: 4,
            ..SampleSettings::default()
        };
        let tags = vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]];
        let mut seen = Vec::new();
        let out = crate::block_on(g.sample(&settings, &tags, &[], &[1, 2], &device, |s, n| {
            seen.push((s, n));
            true
        }))
        .expect("sample")
        .expect("not stopped");
        assert_eq!(seen, vec![(1, 4), (2, 4), (3, 4), (4, 4)]);
        assert_eq!(out.len(), 2);
        assert!(
            out.iter()
                .all(|i| i.len() == 128 && i.iter().all(|v| v.abs() <= 1.0))
        );
        let stopped =
            crate::block_on(g.sample(&settings, &tags, &[], &[1, 2], &device, |s, _| s < 2))
                .expect("sample");
        assert!(stopped.is_none());
    }
}
