//! The mask-conditioned TEM generator: a two-dimensional denoising U-Net that draws a micrograph
//! for a given grain-boundary mask (seed 002's idea), and its weights file.
//!
//! The condition enters as two planes concatenated to the noisy image (the shared
//! [`Denoiser`]'s condition planes): the boundary mask itself and a ramp of the distance to the
//! nearest boundary, which tells every pixel how far it lies inside its grain. The network has
//! no self-attention, so it is purely convolutional: trained on patches, it samples any size
//! that is a multiple of its stride (96 × 496 up to 1024 × 1024) at a cost linear in the pixels.
//!
//! Diffusion runs on 2 × 2 blocks of pixels stacked as channels (space to depth, as "simple
//! diffusion" does, Hoogeboom et al. 2023): an exact, invertible reshaping that cuts the
//! network's work per image by four, which the native speed target (a 96 × 496 micrograph in
//! 20 steps within 1 s on two cores) needs.
//!
//! # Layout
//! A micrograph is row-major `[height, width]` grey values in [−1, 1] (8-bit grey `g` is
//! `g / 127.5 − 1`), `[batch, 1, height, width]` as a tensor; the network sees it as
//! `[batch, 4, height/2, width/2]` and the planes as `[batch, 8, height/2, width/2]`.

use super::denoiser::{Condition, Denoiser, DenoiserConfig, Guided};
use super::generator::{
    DenoiserFileHeader, GeneratorError, SampleSettings, read_denoiser_file, write_denoiser_file,
};
use super::sampler::{Prediction, Sampler};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"SSTEMD01";

/// Condition planes: the boundary mask and the distance ramp.
pub const CONDITION_PLANES: usize = 2;

/// Side of the pixel blocks stacked as channels.
pub const BLOCK_PX: usize = 2;

/// `[b, c, h, w]` → `[b, c·4, h/2, w/2]`: each 2 × 2 block of pixels as four channels
/// (channel `c·4 + 2·dy + dx`). h and w must be even.
pub fn space_to_depth(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let k = BLOCK_PX;
    x.reshape([b * c, h / k, k, w / k, k])
        .permute([0, 2, 4, 1, 3])
        .reshape([b, c * k * k, h / k, w / k])
}

/// The inverse of [`space_to_depth`]: `[b, c·4, h, w]` → `[b, c, 2h, 2w]`.
pub fn depth_to_space(x: Tensor<4>) -> Tensor<4> {
    let [b, ck, h, w] = x.dims();
    let k = BLOCK_PX;
    let c = ck / (k * k);
    x.reshape([b * c, k, k, h, w])
        .permute([0, 3, 1, 4, 2])
        .reshape([b, c, h * k, w * k])
}

/// What the weights file records besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemHeader {
    /// The network's shape.
    pub denoiser: DenoiserConfig,
    /// What the network predicts.
    pub prediction: Prediction,
    /// Side of the square patches it was trained on, pixels.
    pub patch_px: usize,
    /// Distance from a boundary at which the ramp plane reaches −1, pixels.
    pub ramp_px: f32,
    /// Free text: how the weights were trained.
    pub trained: String,
    /// Bytes of the denoiser's burnpack record after the header.
    pub denoiser_bytes: usize,
    /// The network is a regressor, not a denoiser: one pass ([`regress`]) gives the micrograph
    /// of a mask. Trained with an L1 loss on the same pairs, it is the distortion ceiling that
    /// issue 19 compares the sampler with (`psnr_deterministic`). `false` in files written
    /// before the field existed.
    #[serde(default)]
    pub deterministic: bool,
}

/// The regressor's one pass: the network at t = 1 on a zero image (the noise's mean), so the
/// condition planes alone decide the output.
///
/// # Shapes
/// - `planes`: `[batch, 8, h, w]` → `[batch, 4, h, w]` (the network's layout)
pub fn regress(net: &Denoiser, planes: Tensor<4>) -> Tensor<4> {
    let [b, _, h, w] = planes.dims();
    let zeros = Tensor::<4>::zeros([b, BLOCK_PX * BLOCK_PX, h, w], &planes.device());
    let condition = Condition {
        planes: Some(planes),
        tags: None,
        tags_given: None,
    };
    net.forward(zeros, &[1.0], &condition)
}

/// How a TEM network reads the mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditioning {
    /// The planes concatenated to the noisy input (the shipped design).
    Concatenated,
    /// A ControlNet-style branch on a frozen base that was trained without them.
    ControlBranch,
    /// Not at all: an unconditional base for a ControlNet-style branch.
    Unconditional,
}

impl Conditioning {
    /// For reports.
    pub fn name(self) -> &'static str {
        match self {
            Conditioning::Concatenated => "concatenated planes",
            Conditioning::ControlBranch => "ControlNet-style branch on a frozen base",
            Conditioning::Unconditional => "none (unconditional base)",
        }
    }
}

/// Which [`Conditioning`] a TEM network of this shape has, or why it is no TEM network.
fn check_shape(d: &DenoiserConfig) -> Result<Conditioning, String> {
    let block = BLOCK_PX * BLOCK_PX;
    let planes = CONDITION_PLANES * block;
    let conditioning = match (d.condition_channels, d.control_planes()) {
        (c, 0) if c == planes => Some(Conditioning::Concatenated),
        (0, c) if c == planes => Some(Conditioning::ControlBranch),
        (0, 0) => Some(Conditioning::Unconditional),
        _ => None,
    };
    match conditioning {
        Some(c) if d.channels == block && d.tags == 0 && !d.one_dimensional => Ok(c),
        _ => Err(format!(
            "the TEM generator needs a two-dimensional denoiser of {block} channels (2 × 2 pixel \
             blocks), no tags, and {planes} condition channels read either as input planes or \
             by a ControlNet-style branch (or none, for an unconditional base)"
        )),
    }
}

impl TemHeader {
    /// How the network reads the mask.
    pub fn conditioning(&self) -> Conditioning {
        check_shape(&self.denoiser).unwrap_or(Conditioning::Concatenated)
    }
}

impl DenoiserFileHeader for TemHeader {
    fn denoiser_config(&self) -> &DenoiserConfig {
        &self.denoiser
    }

    fn check(&self) -> Result<(), GeneratorError> {
        check_shape(&self.denoiser)
            .map(|_| ())
            .map_err(GeneratorError::Format)
    }

    fn denoiser_bytes(&mut self) -> &mut usize {
        &mut self.denoiser_bytes
    }
}

/// The generator's default network on 2 × 2 pixel blocks: widths 32/64/64 over half, quarter
/// and eighth resolution, two residual blocks per level, no attention.
pub fn default_tem_denoiser() -> DenoiserConfig {
    DenoiserConfig::new(BLOCK_PX * BLOCK_PX)
        .with_condition_channels(CONDITION_PLANES * BLOCK_PX * BLOCK_PX)
        .with_base_width(32)
        .with_multipliers(vec![1, 2, 2])
        .with_blocks_per_level(2)
        .with_groups(8)
        .with_attention(Some(false))
}

/// The ramp plane's default reach, pixels: about the width of a grain boundary's dark band
/// and its halo.
pub const DEFAULT_RAMP_PX: f32 = 8.0;

/// DPM-Solver++ steps `sample tem-diffusion`, `eval tem-diffusion` and the app take by default:
/// 6 keeps boundary F1 on the samples, ECD and S₂ at the 20-step figures and is 0.37× the time
/// (chosen on held-out engine masks, `docs/tem-diffusion.md`, "Steps and speed").
pub const DEFAULT_STEPS: usize = 6;

/// The denoiser and its settings.
#[derive(Debug, Clone)]
pub struct TemGenerator {
    /// The network.
    pub denoiser: Denoiser,
    /// Shape and training facts.
    pub header: TemHeader,
}

/// 8-bit grey to the network's value range.
pub fn gray_to_value(g: u8) -> f32 {
    f32::from(g) / 127.5 - 1.0
}

/// The network's value to 8-bit grey (clamped).
pub fn value_to_gray(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// The two condition planes of a `width × height` boundary mask, plane-major: the mask (+1 on
/// boundaries, −1 elsewhere) and the ramp `1 − 2·min(d / ramp_px, 1)` of the distance d to the
/// nearest boundary pixel (+1 on it, −1 from `ramp_px` on).
///
/// # Errors
/// A mask of the wrong length, without any boundary, or that is all boundary.
pub fn condition_planes(
    boundary: &[bool],
    width: usize,
    height: usize,
    ramp_px: f32,
) -> Result<Vec<f32>, GeneratorError> {
    if boundary.len() != width * height || boundary.is_empty() {
        return Err(GeneratorError::Input(format!(
            "the mask has {} pixels, not {width} × {height}",
            boundary.len()
        )));
    }
    let set = boundary.iter().filter(|&&b| b).count();
    if set == 0 {
        return Err(GeneratorError::Input(
            "the mask has no boundary pixels; draw the grain boundaries in white".into(),
        ));
    }
    if set == boundary.len() {
        return Err(GeneratorError::Input(
            "the mask is all boundary; draw the boundaries in white on black".into(),
        ));
    }
    let d = imaging::distance::distance_to_set(boundary, width, height);
    let mut planes = Vec::with_capacity(2 * boundary.len());
    planes.extend(boundary.iter().map(|&b| if b { 1.0 } else { -1.0 }));
    planes.extend(d.iter().map(|&d| 1.0 - 2.0 * (d / ramp_px).min(1.0)));
    Ok(planes)
}

/// A boundary mask from a grey image (white boundaries on black, any bit depth): every pixel
/// must be 0 or the image's one non-zero value.
///
/// # Errors
/// A mask with more than two grey levels, naming what was found.
pub fn mask_from_gray(values: &[f32]) -> Result<Vec<bool>, GeneratorError> {
    let white = values.iter().copied().fold(0.0f32, f32::max);
    if let Some(v) = values.iter().find(|&&v| v != 0.0 && v != white) {
        return Err(GeneratorError::Input(format!(
            "the mask is not binary (a pixel of grey {v} between 0 and {white}); give white \
             boundaries on black"
        )));
    }
    Ok(values.iter().map(|&v| v > 0.0).collect())
}

impl TemGenerator {
    /// A fresh, untrained generator for patches of `patch_px`.
    pub fn init(
        denoiser: DenoiserConfig,
        patch_px: usize,
        device: &Device,
    ) -> Result<Self, GeneratorError> {
        denoiser.validate().map_err(GeneratorError::Input)?;
        check_shape(&denoiser).map_err(GeneratorError::Input)?;
        let header = TemHeader {
            denoiser,
            prediction: Prediction::Velocity,
            patch_px,
            ramp_px: DEFAULT_RAMP_PX,
            trained: String::new(),
            denoiser_bytes: 0,
            deterministic: false,
        };
        header.check_size(patch_px, patch_px)?;
        Ok(Self {
            denoiser: header.denoiser.init(device),
            header,
        })
    }

    /// This unconditional generator as the frozen base of a ControlNet-style branch that reads
    /// the mask's planes (see [`Denoiser::with_control`]); it draws what the base draws until
    /// the branch is trained.
    pub fn with_control(mut self) -> Result<Self, GeneratorError> {
        if self.header.conditioning() != Conditioning::Unconditional || self.header.deterministic {
            return Err(GeneratorError::Input(
                "a ControlNet-style branch needs an unconditional base (train tem-diffusion \
                 --unconditional)"
                    .into(),
            ));
        }
        let planes = CONDITION_PLANES * BLOCK_PX * BLOCK_PX;
        self.denoiser = self
            .denoiser
            .with_control(planes)
            .map_err(GeneratorError::Input)?;
        self.header.denoiser.control_channels = Some(planes);
        Ok(self)
    }

    /// Serialises the generator (see [`crate::weights`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, GeneratorError> {
        write_denoiser_file(MAGIC, &self.header, &self.denoiser)
    }

    /// Reads a generator written by [`TemGenerator::to_bytes`] onto `device`.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self, GeneratorError> {
        let (header, denoiser) = read_denoiser_file(MAGIC, bytes, device)?;
        Ok(Self { denoiser, header })
    }

    /// The network with the condition planes of a batch of masks, ready for a sampler.
    ///
    /// # Shapes
    /// - `planes`: `[batch, 8, height/2, width/2]` (from [`TemGenerator::planes`])
    pub fn model(&self, planes: Tensor<4>) -> Result<Guided<'_>, GeneratorError> {
        let condition = Condition {
            planes: Some(planes),
            tags: None,
            tags_given: None,
        };
        Ok(Guided::new(
            &self.denoiser,
            self.header.prediction,
            condition,
            1.0,
        )?)
    }

    /// The planes of `masks` (each `width × height`) as one batch tensor in the network's
    /// layout, `[batch, 8, height/2, width/2]`.
    pub fn planes(
        &self,
        masks: &[&[bool]],
        width: usize,
        height: usize,
        device: &Device,
    ) -> Result<Tensor<4>, GeneratorError> {
        self.header.check_size(width, height)?;
        let mut values = Vec::with_capacity(masks.len() * CONDITION_PLANES * width * height);
        for m in masks {
            values.extend(condition_planes(m, width, height, self.header.ramp_px)?);
        }
        Ok(space_to_depth(Tensor::from_data(
            TensorData::new(values, [masks.len(), CONDITION_PLANES, height, width]),
            device,
        )))
    }

    /// Starts sampling one `width × height` micrograph per seed (in the network's layout:
    /// [`depth_to_space`] of its state is the image batch).
    pub fn sampler(
        &self,
        settings: &SampleSettings,
        seeds: &[u64],
        width: usize,
        height: usize,
        device: &Device,
    ) -> Result<Sampler, GeneratorError> {
        self.header.check_size(width, height)?;
        Ok(Sampler::new(
            settings.sampler,
            settings.steps,
            seeds,
            [BLOCK_PX * BLOCK_PX, height / BLOCK_PX, width / BLOCK_PX],
            device,
        )?
        .with_clip(1.0))
    }

    /// Samples one micrograph per mask (`masks[i]` with seed `seeds[i]`, all `width × height`);
    /// returns them row-major in [−1, 1]. Calls `progress(step, steps)` after every step; it
    /// returns `false` to stop early (then `None`).
    pub async fn sample(
        &self,
        settings: &SampleSettings,
        masks: &[&[bool]],
        (width, height): (usize, usize),
        seeds: &[u64],
        device: &Device,
        mut progress: impl FnMut(usize, usize) -> bool,
    ) -> Result<Option<Vec<Vec<f32>>>, GeneratorError> {
        if masks.len() != seeds.len() {
            return Err(GeneratorError::Input(format!(
                "{} masks for {} seeds",
                masks.len(),
                seeds.len()
            )));
        }
        let planes = self.planes(masks, width, height, device)?;
        let blocks = if self.header.deterministic {
            progress(1, 1);
            regress(&self.denoiser, planes).clamp(-1.0, 1.0)
        } else {
            let model = self.model(planes)?;
            let mut sampler = self.sampler(settings, seeds, width, height, device)?;
            while !sampler.is_done() {
                sampler.step(&model);
                if !progress(sampler.steps_done(), sampler.steps()) {
                    return Ok(None);
                }
            }
            sampler.current()
        };
        let values = depth_to_space(blocks)
            .into_data_async()
            .await
            .map_err(|e| GeneratorError::Device(format!("{e:?}")))?
            .try_into_vec::<f32>()
            .map_err(|e| GeneratorError::Device(format!("{e:?}")))?;
        Ok(Some(
            values.chunks(width * height).map(<[f32]>::to_vec).collect(),
        ))
    }
}

impl TemHeader {
    /// Whether the network can draw a `width × height` image.
    pub fn check_size(&self, width: usize, height: usize) -> Result<(), GeneratorError> {
        let m = self.denoiser.multiple_px() * BLOCK_PX;
        if width == 0 || height == 0 || !width.is_multiple_of(m) || !height.is_multiple_of(m) {
            return Err(GeneratorError::Input(format!(
                "a {width} × {height} image cannot be drawn: width and height must be positive \
                 multiples of {m} pixels"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(device: &Device) -> TemGenerator {
        let config = default_tem_denoiser()
            .with_base_width(8)
            .with_blocks_per_level(1)
            .with_groups(4);
        TemGenerator::init(config, 16, device).expect("generator")
    }

    /// A 16 × 12 mask with one vertical boundary at column 5.
    fn line_mask() -> Vec<bool> {
        (0..16 * 12).map(|i| i % 16 == 5).collect()
    }

    #[test]
    fn planes_mark_boundaries_and_ramp_away_from_them() {
        let m = line_mask();
        let p = condition_planes(&m, 16, 12, 4.0).expect("planes");
        assert_eq!(p.len(), 2 * 16 * 12);
        assert_eq!(p[5], 1.0);
        assert_eq!(p[6], -1.0);
        let ramp = &p[16 * 12..];
        // Column 7 is 2 px from the boundary: 1 − 2·(2/4) = 0; from column 9 on, −1.
        assert_eq!(ramp[5], 1.0);
        assert!((ramp[7] - 0.0).abs() < 1e-6);
        assert_eq!(ramp[12], -1.0);
        let err = condition_planes(&[false; 16], 4, 4, 4.0).expect_err("empty");
        assert!(err.to_string().contains("no boundary"), "{err}");
        let err = condition_planes(&[true; 16], 4, 4, 4.0).expect_err("all");
        assert!(err.to_string().contains("all boundary"), "{err}");
        assert!(condition_planes(&[true; 15], 4, 4, 4.0).is_err());
        assert_eq!(value_to_gray(gray_to_value(200)), 200);
        assert_eq!(
            mask_from_gray(&[0.0, 65535.0, 0.0]).expect("binary"),
            [false, true, false]
        );
        let err = mask_from_gray(&[0.0, 128.0, 255.0]).expect_err("grey");
        assert!(err.to_string().contains("not binary"), "{err}");
    }

    #[test]
    fn pixel_blocks_go_to_channels_and_back() {
        let device = Device::flex();
        // [1, 1, 4, 4] holding 0…15 row-major.
        let x = Tensor::<4>::from_data(
            TensorData::new((0..16).map(|v| v as f32).collect::<Vec<_>>(), [1, 1, 4, 4]),
            &device,
        );
        let d = space_to_depth(x.clone());
        assert_eq!(d.dims(), [1, 4, 2, 2]);
        let v = d.clone().into_data().try_to_vec::<f32>().expect("f32");
        // Channel 2·dy + dx holds pixel (2y + dy, 2x + dx): channel 0 = 0, 2, 8, 10;
        // channel 3 = 5, 7, 13, 15.
        assert_eq!(v[..4], [0.0, 2.0, 8.0, 10.0]);
        assert_eq!(v[12..], [5.0, 7.0, 13.0, 15.0]);
        let back = depth_to_space(d)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        assert_eq!(back, (0..16).map(|v| v as f32).collect::<Vec<_>>());
    }

    #[test]
    fn samples_any_multiple_of_the_stride_and_round_trips_its_file() {
        let device = Device::flex();
        let g = small(&device);
        assert_eq!(g.header.denoiser.multiple_px(), 4);
        assert!(g.header.check_size(16, 8).is_ok());
        let back = TemGenerator::from_bytes(&g.to_bytes().expect("bytes"), &device).expect("read");
        assert_eq!(back.header, {
            let mut h = g.header.clone();
            h.denoiser_bytes = back.header.denoiser_bytes;
            h
        });
        let m: Vec<bool> = (0..16 * 8).map(|i| i % 16 == 5).collect();
        let settings = SampleSettings {
            steps: 2,
            ..SampleSettings::default()
        };
        let out = crate::block_on(back.sample(
            &settings,
            &[&m, &m],
            (16, 8),
            &[1, 2],
            &device,
            |_, _| true,
        ))
        .expect("sample")
        .expect("not stopped");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), 16 * 8);
        assert!(
            out.iter()
                .flatten()
                .all(|v| v.is_finite() && v.abs() <= 1.0)
        );
        let err = g
            .sampler(&settings, &[1], 18, 12, &device)
            .err()
            .expect("not a multiple");
        assert!(err.to_string().contains("multiples of 8"), "{err}");
        assert!(TemGenerator::from_bytes(b"SSDIFF01xxxxxxxx", &device).is_err());
    }

    #[test]
    fn a_deterministic_generator_is_one_pass_whatever_the_seed() {
        let device = Device::flex();
        let mut g = small(&device);
        g.header.deterministic = true;
        let back = TemGenerator::from_bytes(&g.to_bytes().expect("bytes"), &device).expect("read");
        assert!(back.header.deterministic);
        let m: Vec<bool> = (0..16 * 8).map(|i| i % 16 == 5).collect();
        let mut calls = Vec::new();
        let out = crate::block_on(back.sample(
            &SampleSettings::default(),
            &[&m, &m],
            (16, 8),
            &[1, 2],
            &device,
            |done, of| {
                calls.push((done, of));
                true
            },
        ))
        .expect("sample")
        .expect("not stopped");
        assert_eq!(calls, [(1, 1)]);
        assert_eq!(out[0], out[1], "the seed plays no part");
        // The pass is `regress` on the planes, clipped to the grey range.
        let direct = depth_to_space(regress(
            &back.denoiser,
            back.planes(&[&m], 16, 8, &device).expect("planes"),
        ))
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32");
        for (a, b) in out[0].iter().zip(&direct) {
            assert!((a - b.clamp(-1.0, 1.0)).abs() < 1e-6);
        }
        // Files written before the field existed read as diffusion models.
        let mut json = serde_json::to_value(&g.header).expect("json");
        json.as_object_mut()
            .expect("object")
            .remove("deterministic");
        let old: TemHeader = serde_json::from_value(json).expect("old header");
        assert!(!old.deterministic);
    }

    #[test]
    fn a_controlnet_style_generator_reads_its_file_back_and_refuses_a_conditioned_base() {
        let device = Device::flex();
        let config = default_tem_denoiser()
            .with_condition_channels(0)
            .with_base_width(8)
            .with_blocks_per_level(1)
            .with_groups(4);
        let base = TemGenerator::init(config, 16, &device).expect("unconditional base");
        assert_eq!(base.header.conditioning(), Conditioning::Unconditional);
        let controlled = base.with_control().expect("branch");
        assert_eq!(
            controlled.header.conditioning(),
            Conditioning::ControlBranch
        );
        assert!(controlled.denoiser.has_control());
        let back = TemGenerator::from_bytes(&controlled.to_bytes().expect("bytes"), &device)
            .expect("read");
        assert_eq!(back.header.conditioning(), Conditioning::ControlBranch);
        let m: Vec<bool> = (0..16 * 8).map(|i| i % 16 == 5).collect();
        let draw = |g: &TemGenerator| {
            crate::block_on(g.sample(
                &SampleSettings {
                    steps: 2,
                    ..SampleSettings::default()
                },
                &[&m],
                (16, 8),
                &[3],
                &device,
                |_, _| true,
            ))
            .expect("sample")
            .expect("not stopped")
        };
        assert_eq!(draw(&back), draw(&controlled));
        // Only an unconditional base takes a branch.
        let err = small(&device).with_control().expect_err("refused");
        assert!(err.to_string().contains("unconditional base"), "{err}");
        let mut header = controlled.header.clone();
        header.denoiser.condition_channels = 8;
        let bytes = write_denoiser_file(MAGIC, &header, &controlled.denoiser).expect("bytes");
        let err = TemGenerator::from_bytes(&bytes, &device).expect_err("refused");
        assert!(err.to_string().contains("ControlNet-style branch"), "{err}");
    }

    #[test]
    fn the_shipped_files_still_read_after_the_network_grew_fields() {
        // Files written before `control_channels` (and the ControlNet-style branch) existed.
        let device = Device::flex();
        let tem = include_bytes!("../../../../public/models/tem-diffusion-v1.bin");
        let g = TemGenerator::from_bytes(tem, &device).expect("tem-diffusion-v1 reads");
        assert_eq!(g.header.conditioning(), Conditioning::Concatenated);
        assert!(!g.denoiser.has_control());
        // The shipped scattering generator, which reads the lattice-series plane.
        let scattering = include_bytes!("../../../../public/models/diffusion-v3.bin");
        let g = crate::diffusion::generator::Generator::from_bytes(scattering, &device)
            .expect("diffusion-v3 reads");
        assert_eq!(g.header.planes(), 1);
    }
}
