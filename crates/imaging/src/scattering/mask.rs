//! Detector masks: pixels that carry no scattering data and must be left out of every
//! integral and fit. `true` means excluded.
//!
//! Sources, combined by union: invalid pixels flagged by the detector (negative counts, as
//! Pilatus and Eiger write −1 for gaps and −2 for dead pixels; NaN), the module gaps of a known
//! detector, the beamstop shadow (found from the image around the beam centre), and shapes the
//! user paints (circles, rectangles, brush strokes).

use crate::Image;
use crate::detector::DetectorKind;

/// Beamstop search: the pattern around the stop must reach this median count to tell a shadow
/// from a weak exposure.
const MIN_MEDIAN_COUNTS: f32 = 5.0;
/// Beamstop search: a dark region larger than this fraction of the image is not a shadow.
const MAX_SHADOW_FRACTION: f64 = 0.25;

/// An exclusion mask the size of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    width: usize,
    height: usize,
    excluded: Vec<bool>,
}

impl Mask {
    /// Nothing excluded.
    pub fn empty(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            excluded: vec![false; width * height],
        }
    }

    /// A mask from row-major exclusion flags; `None` if their number is not `width × height`.
    pub fn from_flags(width: usize, height: usize, excluded: Vec<bool>) -> Option<Self> {
        (excluded.len() == width * height).then_some(Self {
            width,
            height,
            excluded,
        })
    }

    /// Pixels the detector flags as invalid: negative or not finite.
    pub fn invalid_pixels(image: &Image<f32>) -> Self {
        Self {
            width: image.width(),
            height: image.height(),
            excluded: image
                .pixels()
                .iter()
                .map(|&v| !v.is_finite() || v < 0.0)
                .collect(),
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Row-major exclusion flags.
    pub fn as_slice(&self) -> &[bool] {
        &self.excluded
    }

    /// Whether pixel (x, y) is excluded.
    pub fn is_excluded(&self, x: usize, y: usize) -> bool {
        self.excluded[y * self.width + x]
    }

    /// Fraction of the image excluded.
    pub fn excluded_fraction(&self) -> f64 {
        self.excluded.iter().filter(|&&e| e).count() as f64 / self.excluded.len().max(1) as f64
    }

    /// Adds another mask of the same size (union). Masks of another size are ignored and
    /// reported as `false`.
    pub fn union(&mut self, other: &Mask) -> bool {
        if other.width != self.width || other.height != self.height {
            return false;
        }
        for (a, &b) in self.excluded.iter_mut().zip(&other.excluded) {
            *a |= b;
        }
        true
    }

    /// Adds the module gaps of `detector`, where one reference (1000 px) pixel spans `scale`
    /// image pixels.
    pub fn add_detector_gaps(&mut self, detector: DetectorKind, scale: f64) {
        if let Some(gaps) = detector.gap_mask(self.width, self.height, scale) {
            for (a, b) in self.excluded.iter_mut().zip(gaps) {
                *a |= b;
            }
        }
    }

    /// Excludes the pixels whose centres lie within `radius_px` of `(cx, cy)`.
    pub fn add_circle(&mut self, cx: f64, cy: f64, radius_px: f64) {
        self.set_disc(cx, cy, radius_px, true);
    }

    /// Sets the flag of every pixel whose centre lies within `radius_px` of `(cx, cy)`.
    fn set_disc(&mut self, cx: f64, cy: f64, radius_px: f64, excluded: bool) {
        let y0 = (cy - radius_px).floor().max(0.0) as usize;
        let y1 = ((cy + radius_px).ceil().max(0.0) as usize).min(self.height);
        let x0 = (cx - radius_px).floor().max(0.0) as usize;
        let x1 = ((cx + radius_px).ceil().max(0.0) as usize).min(self.width);
        for y in y0..y1 {
            for x in x0..x1 {
                if (x as f64 + 0.5 - cx).hypot(y as f64 + 0.5 - cy) <= radius_px {
                    self.excluded[y * self.width + x] = excluded;
                }
            }
        }
    }

    /// Excludes the pixels whose centres lie in the rectangle `[x0, x1) × [y0, y1)`.
    pub fn add_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64) {
        let clamp = |v: f64, hi: usize| (v - 0.5).ceil().clamp(0.0, hi as f64) as usize;
        for y in clamp(y0.min(y1), self.height)..clamp(y0.max(y1), self.height) {
            for x in clamp(x0.min(x1), self.width)..clamp(x0.max(x1), self.width) {
                self.excluded[y * self.width + x] = true;
            }
        }
    }

    /// Excludes (or, with `erase`, includes again) a brush stroke of `radius_px` through
    /// `points`, as painted by a user.
    pub fn paint_stroke(&mut self, points: &[(f64, f64)], radius_px: f64, erase: bool) {
        // Stamps half a radius apart along each segment leave no holes.
        let step = (radius_px * 0.5).max(0.5);
        for pair in points.windows(2) {
            let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
            let n = ((bx - ax).hypot(by - ay) / step).ceil().max(1.0) as usize;
            for i in 0..=n {
                let t = i as f64 / n as f64;
                self.set_disc(ax + t * (bx - ax), ay + t * (by - ay), radius_px, !erase);
            }
        }
        if let [(x, y)] = points {
            self.set_disc(*x, *y, radius_px, !erase);
        }
    }

    /// Finds the beamstop's shadow: the connected region of very low counts that reaches to
    /// within `search_radius_px` of the beam centre (the stop's holder arm included), grown by
    /// `margin_px` to cover its blurred edge. Returns the number of pixels added.
    ///
    /// "Very low" is below 2 % of the median of the unmasked pixels in the annulus just outside
    /// the search radius: a shadow receives only parasitic counts. Nothing is added when that
    /// median is under 5 counts (a weak pattern: shadow and exposure look alike) or when the
    /// dark region would cover over a quarter of the image.
    pub fn add_beamstop(
        &mut self,
        image: &Image<f32>,
        beam_x: f64,
        beam_y: f64,
        search_radius_px: f64,
        margin_px: f64,
    ) -> usize {
        let (w, h) = (self.width, self.height);
        if image.width() != w || image.height() != h {
            return 0;
        }
        let px = image.pixels();
        let mut ring: Vec<f32> = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let r = (x as f64 + 0.5 - beam_x).hypot(y as f64 + 0.5 - beam_y);
                let i = y * w + x;
                if r >= search_radius_px && r < 2.0 * search_radius_px && !self.excluded[i] {
                    ring.push(px[i]);
                }
            }
        }
        if ring.is_empty() {
            return 0;
        }
        let mid = ring.len() / 2;
        let median = *ring.select_nth_unstable_by(mid, f32::total_cmp).1;
        // Around a weak pattern zero counts are common outside the shadow too: nothing to find.
        if median < MIN_MEDIAN_COUNTS {
            return 0;
        }
        let threshold = 0.02 * median;
        let dark = |i: usize| px[i].is_finite() && px[i] <= threshold && !self.excluded[i];
        // Flood fill from every dark pixel near the centre.
        let mut shadow = vec![false; w * h];
        let mut seeds = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if (x as f64 + 0.5 - beam_x).hypot(y as f64 + 0.5 - beam_y) < search_radius_px
                    && dark(i)
                {
                    shadow[i] = true;
                    seeds.push(i);
                }
            }
        }
        crate::regions::grow_4(w, h, &seeds, |j| {
            let join = !shadow[j] && dark(j);
            shadow[j] |= join;
            join
        });
        // A "shadow" covering much of the detector is a dark background, not a beamstop.
        if shadow.iter().filter(|&&s| s).count() as f64 > MAX_SHADOW_FRACTION * (w * h) as f64 {
            return 0;
        }
        // Grow by the margin (a square of side 2·margin: cheap and conservative).
        let m = margin_px.max(0.0).round() as usize;
        let mut added = 0;
        let mut grown = shadow.clone();
        if m > 0 {
            for y in 0..h {
                for x in 0..w {
                    if !shadow[y * w + x] {
                        continue;
                    }
                    for yy in y.saturating_sub(m)..(y + m + 1).min(h) {
                        for xx in x.saturating_sub(m)..(x + m + 1).min(w) {
                            grown[yy * w + xx] = true;
                        }
                    }
                }
            }
        }
        for (e, g) in self.excluded.iter_mut().zip(grown) {
            if g && !*e {
                *e = true;
                added += 1;
            }
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_pixels_and_shapes_are_excluded() {
        let img = Image::from_vec(4, 2, vec![1.0, -1.0, f32::NAN, 0.0, 5.0, -2.0, 3.0, 1.0])
            .expect("4×2");
        let m = Mask::invalid_pixels(&img);
        assert_eq!(
            m.as_slice(),
            &[false, true, true, false, false, true, false, false]
        );
        let mut m = Mask::empty(20, 20);
        m.add_circle(10.0, 10.0, 3.0);
        // π·3² ≈ 28 pixel centres within 3 px.
        let n = m.as_slice().iter().filter(|&&e| e).count();
        assert!((25..=32).contains(&n), "{n}");
        let mut r = Mask::empty(10, 10);
        r.add_rect(2.0, 3.0, 5.0, 4.0);
        assert_eq!(r.as_slice().iter().filter(|&&e| e).count(), 3);
        assert!(r.is_excluded(2, 3) && r.is_excluded(4, 3) && !r.is_excluded(5, 3));
    }

    #[test]
    fn painted_stroke_is_continuous_and_erasable() {
        let mut m = Mask::empty(50, 20);
        m.paint_stroke(&[(5.0, 10.0), (45.0, 10.0)], 2.0, false);
        for x in 5..45 {
            assert!(m.is_excluded(x, 10), "hole at x = {x}");
        }
        m.paint_stroke(&[(20.0, 10.0), (30.0, 10.0)], 3.0, true);
        assert!(!m.is_excluded(25, 10) && m.is_excluded(10, 10));
    }

    #[test]
    fn beamstop_shadow_with_its_arm_is_found() {
        // Bright everywhere except a disc of radius 8 at (32, 30) and its arm to the right edge.
        let (w, h) = (64, 60);
        let mut px = vec![100.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f64 + 0.5 - 32.0, y as f64 + 0.5 - 30.0);
                if dx.hypot(dy) < 8.0 || (dx > 0.0 && dy.abs() < 2.0) {
                    px[y * w + x] = 0.5;
                }
            }
        }
        let img = Image::from_vec(w, h, px).expect("64×60");
        let mut m = Mask::empty(w, h);
        let added = m.add_beamstop(&img, 32.0, 30.0, 10.0, 1.0);
        assert!(added > 200, "{added}");
        assert!(
            m.is_excluded(32, 30) && m.is_excluded(63, 30),
            "disc and arm end"
        );
        assert!(!m.is_excluded(5, 5) && !m.is_excluded(32, 45));
    }
}
