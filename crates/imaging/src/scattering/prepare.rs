//! One detector image made ready for the classifiers: its mask, its beam centre (estimated or
//! given) and the taggers' two views (the realism ensemble reads the image view too). The browser's Classify page and
//! `synthscope classify` both go through [`prepare`], so they see images the same way.

use crate::{Image, ImageError};

use super::beam::{BeamCentre, estimate_beam_centre};
use super::fourier_bessel::FourierBessel;
use super::input::{TaggerInput, tagger_input};
use super::mask::Mask;

/// Side of the taggers' image view.
pub const TAGGER_SIDE_PX: usize = 256;

/// Where a beam centre came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BeamSource {
    /// Given by the user (or the file's metadata).
    Given,
    /// Estimated from the rings ([`estimate_beam_centre`]); `explained` says how well.
    Estimated {
        /// Fraction of the variance the rings around it explain.
        explained: f64,
    },
    /// Nothing to estimate from (too few valid pixels): the image centre.
    ImageCentre,
}

/// Below this fraction of the variance explained, an estimated beam centre deserves a look. On
/// 500 engine images (`generate saxs --count 500 --seed 2`) 62 % of the estimates below it were
/// more than 5 px off the true centre, against 11 % of those above it; 42 % of the images fall
/// below it (weak patterns beside beamstop arms, beams off the detector).
pub const DOUBTFUL_EXPLAINED: f64 = 0.1;

impl BeamSource {
    /// Whether the centre should be checked by eye before the tags are trusted: an estimate
    /// that explains less than [`DOUBTFUL_EXPLAINED`], or the image centre for want of one.
    pub fn doubtful(&self) -> bool {
        match *self {
            BeamSource::Given => false,
            // NaN (nothing to score) is doubtful too.
            BeamSource::Estimated { explained } => {
                explained.is_nan() || explained < DOUBTFUL_EXPLAINED
            }
            BeamSource::ImageCentre => true,
        }
    }
}

/// A detector image ready for the classifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Detector width and height in pixels.
    pub size_px: (usize, usize),
    /// Excluded pixels: invalid ones (negative, not finite) and the user's.
    pub mask: Mask,
    /// Beam centre in detector pixels (column, row).
    pub beam_px: (f64, f64),
    /// How the beam centre was found.
    pub beam_source: BeamSource,
    /// The taggers' views.
    pub tagger: TaggerInput,
}

/// Why an image cannot be prepared.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PrepareError {
    /// The mask is for another image size.
    #[error("the mask is {mask_w}×{mask_h} px but the image is {w}×{h} px")]
    MaskSize {
        /// Mask width.
        mask_w: usize,
        /// Mask height.
        mask_h: usize,
        /// Image width.
        w: usize,
        /// Image height.
        h: usize,
    },
    /// Every pixel is masked or invalid.
    #[error("every pixel is masked or invalid (negative or not a number): nothing to classify")]
    NothingValid,
    /// The image itself is unusable.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// Prepares `counts`: masks invalid pixels and `user_mask`, finds the beam centre unless
/// `beam_px` gives it, and computes both classifiers' inputs. `basis` must be
/// `FourierBessel::reference(128.0)` (built once by the caller).
pub fn prepare(
    counts: &Image<f32>,
    user_mask: Option<&Mask>,
    beam_px: Option<(f64, f64)>,
    basis: &FourierBessel,
) -> Result<Prepared, PrepareError> {
    let (w, h) = (counts.width(), counts.height());
    let mut mask = Mask::invalid_pixels(counts);
    if let Some(user) = user_mask {
        if (user.width(), user.height()) != (w, h) {
            return Err(PrepareError::MaskSize {
                mask_w: user.width(),
                mask_h: user.height(),
                w,
                h,
            });
        }
        mask.union(user);
    }
    if mask.excluded_fraction() >= 1.0 {
        return Err(PrepareError::NothingValid);
    }
    let (beam_px, beam_source) = match beam_px {
        Some(b) => (b, BeamSource::Given),
        None => match estimate_beam_centre(counts, Some(mask.as_slice())) {
            Some(BeamCentre {
                x_px,
                y_px,
                explained,
            }) => ((x_px, y_px), BeamSource::Estimated { explained }),
            None => ((w as f64 / 2.0, h as f64 / 2.0), BeamSource::ImageCentre),
        },
    };
    let tagger = tagger_input(
        counts,
        Some(mask.as_slice()),
        beam_px.0,
        beam_px.1,
        TAGGER_SIDE_PX,
        basis,
    )?;
    Ok(Prepared {
        size_px: (w, h),
        mask,
        beam_px,
        beam_source,
        tagger,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_estimates_and_the_image_centre_are_doubtful() {
        let estimated = |explained| BeamSource::Estimated { explained };
        assert!(!BeamSource::Given.doubtful());
        assert!(BeamSource::ImageCentre.doubtful());
        assert!(!estimated(0.63).doubtful());
        assert!(!estimated(DOUBTFUL_EXPLAINED).doubtful());
        assert!(estimated(0.09).doubtful());
        assert!(estimated(f64::NAN).doubtful());
    }

    /// A ring of radius 40 px around (70, 60) on a 10-count floor, 160 × 128 px.
    fn ring_image() -> Image<f32> {
        let (w, h) = (160usize, 128usize);
        let px = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f64 + 0.5, (i / w) as f64 + 0.5);
                let r = (x - 70.0).hypot(y - 60.0);
                (10.0 + 5000.0 * (-0.5 * ((r - 40.0) / 2.0).powi(2)).exp()) as f32
            })
            .collect();
        Image::from_vec(w, h, px).expect("sized")
    }

    #[test]
    fn prepares_both_inputs_around_the_found_or_given_centre() {
        let basis = FourierBessel::reference(128.0);
        let img = ring_image();
        let p = prepare(&img, None, None, &basis).expect("prepares");
        assert!((p.beam_px.0 - 70.0).abs() < 1.0 && (p.beam_px.1 - 60.0).abs() < 1.0);
        assert!(matches!(p.beam_source, BeamSource::Estimated { explained } if explained > 0.5));
        assert_eq!(p.tagger.image.len(), TAGGER_SIDE_PX * TAGGER_SIDE_PX);
        assert_eq!(
            p.tagger.coefficients.len(),
            880 + crate::scattering::RING_FEATURES
                + crate::scattering::PEAK_FEATURES
                + crate::scattering::FOLD_FEATURES
                + crate::scattering::OUTER_FEATURES
        );
        let given = prepare(&img, None, Some((10.0, 20.0)), &basis).expect("prepares");
        assert_eq!(given.beam_source, BeamSource::Given);
        assert_eq!(given.beam_px, (10.0, 20.0));
        assert_ne!(given.tagger.coefficients, p.tagger.coefficients);
    }

    #[test]
    fn masks_invalid_and_user_pixels_and_refuses_what_cannot_work() {
        let basis = FourierBessel::reference(128.0);
        let mut img = ring_image();
        img.pixels_mut()[0] = -1.0;
        let mut user = Mask::empty(160, 128);
        user.add_rect(100.0, 0.0, 160.0, 128.0);
        let p = prepare(&img, Some(&user), None, &basis).expect("prepares");
        assert!(p.mask.is_excluded(0, 0) && p.mask.is_excluded(120, 64));
        assert!(!p.mask.is_excluded(50, 64));
        let wrong = Mask::empty(10, 10);
        assert!(matches!(
            prepare(&img, Some(&wrong), None, &basis),
            Err(PrepareError::MaskSize { .. })
        ));
        let all = Mask::from_flags(160, 128, vec![true; 160 * 128]).expect("sized");
        assert_eq!(
            prepare(&img, Some(&all), None, &basis),
            Err(PrepareError::NothingValid)
        );
    }
}
