//! The image container.

/// A row-major, single-channel image: pixel `(x, y)` is at `pixels[y * width + x]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Image<T> {
    width: usize,
    height: usize,
    pixels: Vec<T>,
}

/// Errors building or converting an image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    /// The pixel buffer does not hold `width × height` values.
    #[error("pixel buffer holds {got} values but a {width}×{height} image needs {}", width * height)]
    SizeMismatch {
        /// Requested width in pixels.
        width: usize,
        /// Requested height in pixels.
        height: usize,
        /// Number of values supplied.
        got: usize,
    },
    /// Width or height is zero.
    #[error("an image needs a width and a height of at least 1 pixel (got {width}×{height})")]
    Empty {
        /// Requested width in pixels.
        width: usize,
        /// Requested height in pixels.
        height: usize,
    },
}

impl<T: Copy> Image<T> {
    /// An image filled with `value`.
    pub fn filled(width: usize, height: usize, value: T) -> Result<Self, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::Empty { width, height });
        }
        Ok(Self {
            width,
            height,
            pixels: vec![value; width * height],
        })
    }

    /// Wraps a row-major pixel buffer.
    pub fn from_vec(width: usize, height: usize, pixels: Vec<T>) -> Result<Self, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::Empty { width, height });
        }
        if pixels.len() != width * height {
            return Err(ImageError::SizeMismatch {
                width,
                height,
                got: pixels.len(),
            });
        }
        Ok(Self {
            width,
            height,
            pixels,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixel at column `x`, row `y`. Panics outside the image, like slice indexing.
    #[inline]
    pub fn get(&self, x: usize, y: usize) -> T {
        self.pixels[y * self.width + x]
    }

    /// Sets the pixel at column `x`, row `y`.
    #[inline]
    pub fn set(&mut self, x: usize, y: usize, value: T) {
        self.pixels[y * self.width + x] = value;
    }

    /// The row-major pixel buffer.
    pub fn pixels(&self) -> &[T] {
        &self.pixels
    }

    /// The mutable row-major pixel buffer.
    pub fn pixels_mut(&mut self) -> &mut [T] {
        &mut self.pixels
    }

    /// Consumes the image and returns its pixel buffer.
    pub fn into_pixels(self) -> Vec<T> {
        self.pixels
    }

    /// A new image of the same size with `f` applied to every pixel.
    pub fn map<U: Copy>(&self, f: impl Fn(T) -> U) -> Image<U> {
        Image {
            width: self.width,
            height: self.height,
            pixels: self.pixels.iter().map(|&p| f(p)).collect(),
        }
    }

    /// An image of the same size holding `pixels` (same length and order, by construction in
    /// the caller).
    pub(crate) fn with_pixels<U: Copy>(&self, pixels: Vec<U>) -> Image<U> {
        assert_eq!(
            pixels.len(),
            self.pixels.len(),
            "pixel count must not change"
        );
        Image {
            width: self.width,
            height: self.height,
            pixels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexing_is_row_major() {
        let img = Image::from_vec(3, 2, vec![0, 1, 2, 3, 4, 5]).expect("valid size");
        assert_eq!(img.get(2, 0), 2);
        assert_eq!(img.get(0, 1), 3);
        assert_eq!(img.map(|v| v * 10).get(1, 1), 40);
    }

    #[test]
    fn size_errors_are_reported() {
        assert_eq!(
            Image::from_vec(3, 2, vec![0u8; 5]),
            Err(ImageError::SizeMismatch {
                width: 3,
                height: 2,
                got: 5
            })
        );
        assert_eq!(
            Image::filled(0, 2, 0u8),
            Err(ImageError::Empty {
                width: 0,
                height: 2
            })
        );
    }
}
