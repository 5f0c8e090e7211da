//! Reading a user's image file of any supported format into a grey image, with size limits
//! checked before decoding and a notice when colour was converted.
//!
//! Formats: PNG (grey, grey+alpha, RGB, RGBA, palette; 8 or 16 bit), TIFF (grey 8/16/32-bit
//! integer (signed too: Pilatus-style negative flags stay negative), 32/64-bit float; 8/16-bit
//! RGB), JPEG (grey or colour), EDF (ESRF data format: 8/16/32-bit integer, 32/64-bit float),
//! CBF (byte-offset), HDF5/NeXus (one frame of a stack, or the sum of a range: [`Frames`]).

use std::io::Cursor;

use crate::Image;
use crate::codec::{GrayImage, decode_tiff};

/// Larger images are refused before decoding (64 megapixels).
pub const MAX_PIXELS: usize = 64_000_000;

/// Why a file could not be read, phrased for the person who chose it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LoadError {
    /// Zero bytes.
    #[error("the file is empty")]
    Empty,
    /// Not a format this tool reads.
    #[error("not a supported image (PNG, TIFF, JPEG, EDF, CBF or HDF5/NeXus); {0}")]
    UnknownFormat(String),
    /// The format is known but the bytes are damaged or cut short.
    #[error("the {format} file is damaged or truncated ({detail})")]
    Damaged {
        /// PNG, TIFF, JPEG, EDF, CBF or HDF5.
        format: &'static str,
        /// What the decoder said.
        detail: String,
    },
    /// A layout inside a known format this tool does not read.
    #[error("{0}")]
    Unsupported(String),
    /// More pixels than [`MAX_PIXELS`].
    #[error(
        "the image is {width} × {height} pixels ({:.0} megapixels); the limit is {:.0} megapixels: crop or bin it first",
        (*width as f64) * (*height as f64) / 1e6,
        MAX_PIXELS as f64 / 1e6
    )]
    TooLarge {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// Fewer pixels than the caller needs.
    #[error("the image is only {width} × {height} pixels; at least {min} × {min} are needed")]
    TooSmall {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// Minimum side in pixels.
        min: usize,
    },
}

/// A decoded grey image and how it was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The samples, at the bit depth the file stores.
    pub image: GrayImage,
    /// "PNG", "TIFF", "JPEG", "EDF", "CBF" or "HDF5".
    pub format: &'static str,
    /// The file held colour that was converted to grey (Rec. 709 luma).
    pub converted_from_colour: bool,
    /// The set-up the file's header records (CBF, NeXus); `None` for formats without one.
    pub geometry: Option<crate::detector::FileGeometry>,
    /// For a stack of frames (HDF5/NeXus): how many it has and which were taken.
    pub stack: Option<StackRead>,
}

/// Which frames of a multi-frame file make the image: one frame, or the sum of a range
/// (both ends included). Single-image formats have only frame 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Frames {
    /// First frame (from 0).
    pub first: usize,
    /// Last frame; equal to `first` for one frame.
    pub last: usize,
}

impl Frames {
    /// Frame `index` alone.
    pub fn one(index: usize) -> Self {
        Self {
            first: index,
            last: index,
        }
    }
}

impl std::str::FromStr for Frames {
    type Err = String;

    /// "7" (frame 7) or "0-9" (the sum of frames 0 to 9), counting from 0.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("\"{text}\" is not a frame (7) or a range of frames (0-9), from 0");
        let number = |t: &str| t.trim().parse::<usize>().map_err(|_| bad());
        match text.split_once(['-', ':']) {
            Some((a, b)) => {
                let (first, last) = (number(a)?, number(b)?);
                if first > last {
                    return Err(format!(
                        "frames {first}-{last}: the first comes after the last"
                    ));
                }
                Ok(Self { first, last })
            }
            None => Ok(Self::one(number(text)?)),
        }
    }
}

impl std::fmt::Display for Frames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// What was read from a stack of frames.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StackRead {
    /// Where the frames are in the file (`/entry/data/data`, …).
    pub path: String,
    /// How many frames the stack has.
    pub frame_count: usize,
    /// Which were taken (summed when a range).
    pub frames: Frames,
    /// Counts above which the detector does not count reliably, if the file says.
    pub cutoff_counts: Option<f64>,
}

impl Loaded {
    /// A sentence for the user when something was changed on the way in.
    pub fn notice(&self) -> Option<String> {
        self.converted_from_colour.then(|| {
            format!(
                "this {} image is in colour; it was converted to grey (Rec. 709 luma)",
                self.format
            )
        })
    }
}

fn check_size(width: usize, height: usize, min_side_px: usize) -> Result<(), LoadError> {
    if width.saturating_mul(height) > MAX_PIXELS {
        return Err(LoadError::TooLarge { width, height });
    }
    if width < min_side_px || height < min_side_px {
        return Err(LoadError::TooSmall {
            width,
            height,
            min: min_side_px,
        });
    }
    Ok(())
}

/// Rec. 709 luma of `channels`-interleaved samples; alpha (the 2nd of 2 or 4th of 4) is ignored.
fn luma(samples: &[f32], channels: usize) -> Vec<f32> {
    samples
        .chunks_exact(channels)
        .map(|c| match channels {
            1 | 2 => c[0],
            _ => 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2],
        })
        .collect()
}

/// Decodes `bytes`, refusing images over [`MAX_PIXELS`] or with a side under `min_side_px`.
/// A stack (HDF5/NeXus) gives its first frame; see [`load_detector`] for others.
pub fn load_gray(bytes: &[u8], min_side_px: usize) -> Result<Loaded, LoadError> {
    load_detector(
        bytes,
        crate::hdf5::nothing_linked(),
        Frames::default(),
        min_side_px,
    )
}

/// Like [`load_gray`], with the `frames` of a stack to take and the files an HDF5 master
/// file's external links name (`linked`, by file name).
pub fn load_detector(
    bytes: &[u8],
    linked: crate::hdf5::Linked,
    frames: Frames,
    min_side_px: usize,
) -> Result<Loaded, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    if crate::hdf5::is_hdf5(bytes) {
        return load_hdf5(bytes, linked, frames, min_side_px);
    }
    if frames != Frames::default() {
        return Err(LoadError::Unsupported(format!(
            "frames {frames} asked for, but this file holds one image (frame 0)"
        )));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        load_png(bytes, min_side_px)
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        load_tiff(bytes, min_side_px)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        load_jpeg(bytes, min_side_px)
    } else if bytes.starts_with(b"{") {
        load_edf(bytes, min_side_px)
    } else if crate::cbf::is_cbf(bytes) {
        load_cbf(bytes, min_side_px)
    } else {
        let what = if bytes.starts_with(b"GIF8") {
            "GIF is not read; save it as PNG".to_owned()
        } else if bytes.starts_with(b"BM") {
            "BMP is not read; save it as PNG".to_owned()
        } else {
            "its first bytes match none of them".to_owned()
        };
        Err(LoadError::UnknownFormat(what))
    }
}

fn load_hdf5(
    bytes: &[u8],
    linked: crate::hdf5::Linked,
    frames: Frames,
    min_side_px: usize,
) -> Result<Loaded, LoadError> {
    let refused = |e: crate::codec::CodecError| match e {
        crate::codec::CodecError::Unsupported(text) => LoadError::Unsupported(text),
        other => LoadError::Damaged {
            format: "HDF5",
            detail: other.to_string(),
        },
    };
    // The dataspace gives the frame size: refused before any frame is read.
    let stack = crate::hdf5::open(bytes.into(), linked).map_err(refused)?;
    check_size(stack.width, stack.height, min_side_px)?;
    if frames.last >= stack.frames {
        return Err(LoadError::Unsupported(format!(
            "frames {frames} asked for; {} has {} frame{} (0 to {})",
            stack.path,
            stack.frames,
            if stack.frames == 1 { "" } else { "s" },
            stack.frames - 1
        )));
    }
    let image = stack.sum(frames.first, frames.last).map_err(refused)?;
    Ok(Loaded {
        image: GrayImage::F32(image),
        format: "HDF5",
        converted_from_colour: false,
        geometry: Some(stack.geometry.clone()),
        stack: Some(StackRead {
            path: stack.path.clone(),
            frame_count: stack.frames,
            frames,
            cutoff_counts: stack.cutoff_counts,
        }),
    })
}

fn load_cbf(bytes: &[u8], min_side_px: usize) -> Result<Loaded, LoadError> {
    let damaged = |e: crate::codec::CodecError| LoadError::Damaged {
        format: "CBF",
        detail: e.to_string(),
    };
    // The MIME header gives the size: refuse huge images before decompressing.
    let header = crate::cbf::cbf_header(bytes).map_err(damaged)?;
    check_size(header.width, header.height, min_side_px)?;
    let (image, geometry) = crate::cbf::decode_cbf(bytes).map_err(damaged)?;
    Ok(Loaded {
        image,
        format: "CBF",
        converted_from_colour: false,
        geometry: Some(geometry),
        stack: None,
    })
}

fn load_edf(bytes: &[u8], min_side_px: usize) -> Result<Loaded, LoadError> {
    let damaged = |e: crate::codec::CodecError| LoadError::Damaged {
        format: "EDF",
        detail: e.to_string(),
    };
    // The header gives the size: refuse huge images before reading any pixel.
    let header = crate::codec::edf_header(bytes).map_err(damaged)?;
    check_size(header.width, header.height, min_side_px)?;
    Ok(Loaded {
        image: crate::codec::decode_edf(bytes).map_err(damaged)?,
        format: "EDF",
        converted_from_colour: false,
        geometry: None,
        stack: None,
    })
}

fn load_png(bytes: &[u8], min_side_px: usize) -> Result<Loaded, LoadError> {
    let damaged = |e: png::DecodingError| LoadError::Damaged {
        format: "PNG",
        detail: e.to_string(),
    };
    // The IHDR chunk comes first: check the size before the decoder reads anything else.
    if bytes.len() >= 24 && &bytes[12..16] == b"IHDR" {
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        check_size(be(&bytes[16..20]), be(&bytes[20..24]), min_side_px)?;
    }
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    // Palettes to RGB, 1/2/4-bit grey to 8-bit, transparency to alpha.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(damaged)?;
    let (w, h) = {
        let info = reader.info();
        (info.width as usize, info.height as usize)
    };
    check_size(w, h, min_side_px)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| LoadError::Unsupported("PNG too large to decode".into()))?;
    crate::codec::check_png_output(size, bytes.len()).map_err(|detail| LoadError::Damaged {
        format: "PNG",
        detail,
    })?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(damaged)?;
    buf.truncate(frame.buffer_size());
    let channels = frame.color_type.samples();
    let sixteen = frame.bit_depth == png::BitDepth::Sixteen;
    let samples: Vec<f32> = if sixteen {
        buf.chunks_exact(2)
            .map(|c| f32::from(u16::from_be_bytes([c[0], c[1]])))
            .collect()
    } else {
        buf.iter().map(|&v| f32::from(v)).collect()
    };
    if samples.len() != w * h * channels {
        return Err(LoadError::Damaged {
            format: "PNG",
            detail: "pixel data shorter than the header says".into(),
        });
    }
    let grey = luma(&samples, channels);
    let image = to_gray_image(w, h, grey, if sixteen { 16 } else { 8 })?;
    Ok(Loaded {
        image,
        format: "PNG",
        converted_from_colour: channels >= 3,
        geometry: None,
        stack: None,
    })
}

fn to_gray_image(w: usize, h: usize, grey: Vec<f32>, bits: u8) -> Result<GrayImage, LoadError> {
    let bad = |e: crate::ImageError| LoadError::Unsupported(e.to_string());
    Ok(match bits {
        8 => GrayImage::U8(
            Image::from_vec(w, h, grey.iter().map(|&v| v.round() as u8).collect()).map_err(bad)?,
        ),
        16 => GrayImage::U16(
            Image::from_vec(w, h, grey.iter().map(|&v| v.round() as u16).collect()).map_err(bad)?,
        ),
        _ => GrayImage::F32(Image::from_vec(w, h, grey).map_err(bad)?),
    })
}

fn load_tiff(bytes: &[u8], min_side_px: usize) -> Result<Loaded, LoadError> {
    use tiff::ColorType;
    use tiff::decoder::{Decoder, DecodingResult};
    let damaged = |e: tiff::TiffError| LoadError::Damaged {
        format: "TIFF",
        detail: e.to_string(),
    };
    crate::codec::check_tiff_tags(bytes).map_err(|detail| LoadError::Damaged {
        format: "TIFF",
        detail,
    })?;
    let mut decoder = Decoder::new(Cursor::new(bytes)).map_err(damaged)?;
    let (w, h) = decoder.dimensions().map_err(damaged)?;
    let (w, h) = (w as usize, h as usize);
    check_size(w, h, min_side_px)?;
    let colour = decoder.colortype().map_err(damaged)?;
    let (channels, bits_per_sample) = match colour {
        ColorType::Gray(b) => (1, b),
        ColorType::GrayA(b) => (2, b),
        ColorType::RGB(b) => (3, b),
        ColorType::RGBA(b) => (4, b),
        other => {
            return Err(LoadError::Unsupported(format!(
                "TIFF colour type {other:?} is not read; save the image as grey or RGB"
            )));
        }
    };
    // An uncompressed file must hold every sample: refuse a header that claims more before the
    // decoder allocates its output for it (8 000 × 8 000 pixels claimed by a 4 KB file would
    // otherwise cost 64 MB before the first strip is found missing).
    let uncompressed = decoder
        .get_tag_u32(tiff::tags::Tag::Compression)
        .map_or(true, |c| c == 1);
    let claimed_bytes = w
        .saturating_mul(h)
        .saturating_mul(usize::from(bits_per_sample).div_ceil(8))
        .saturating_mul(channels);
    if uncompressed && claimed_bytes > bytes.len() {
        return Err(LoadError::Damaged {
            format: "TIFF",
            detail: format!(
                "the header says {w} × {h} pixels ({claimed_bytes} bytes uncompressed) but the file has {} bytes",
                bytes.len()
            ),
        });
    }

    if channels == 1 {
        return decode_tiff(bytes)
            .map(|image| Loaded {
                image,
                format: "TIFF",
                converted_from_colour: false,
                geometry: None,
                stack: None,
            })
            .map_err(|e| LoadError::Damaged {
                format: "TIFF",
                detail: e.to_string(),
            });
    }
    let (samples, bits): (Vec<f32>, u8) = match decoder.read_image().map_err(damaged)? {
        DecodingResult::U8(v) => (v.iter().map(|&x| f32::from(x)).collect(), 8),
        DecodingResult::U16(v) => (v.iter().map(|&x| f32::from(x)).collect(), 16),
        DecodingResult::F32(v) => (v, 32),
        _ => {
            return Err(LoadError::Unsupported(
                "colour TIFF with samples other than 8/16-bit integer or 32-bit float".into(),
            ));
        }
    };
    if samples.len() != w * h * channels {
        return Err(LoadError::Damaged {
            format: "TIFF",
            detail: "pixel data shorter than the header says".into(),
        });
    }
    Ok(Loaded {
        image: to_gray_image(w, h, luma(&samples, channels), bits)?,
        format: "TIFF",
        converted_from_colour: channels >= 3,
        geometry: None,
        stack: None,
    })
}

fn load_jpeg(bytes: &[u8], min_side_px: usize) -> Result<Loaded, LoadError> {
    let damaged = |e: image::ImageError| LoadError::Damaged {
        format: "JPEG",
        detail: e.to_string(),
    };
    let reader = image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Jpeg);
    let (w, h) = reader.into_dimensions().map_err(damaged)?;
    check_size(w as usize, h as usize, min_side_px)?;
    let decoded =
        image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).map_err(damaged)?;
    let colour = decoded.color().has_color();
    let rgb = decoded.to_rgb8();
    let samples: Vec<f32> = rgb.as_raw().iter().map(|&v| f32::from(v)).collect();
    Ok(Loaded {
        image: to_gray_image(w as usize, h as usize, luma(&samples, 3), 8)?,
        format: "JPEG",
        converted_from_colour: colour,
        geometry: None,
        stack: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn ramp(w: usize, h: usize) -> Image<u8> {
        Image::from_vec(w, h, (0..w * h).map(|i| (i % 251) as u8).collect()).expect("size")
    }

    #[test]
    fn grey_png_and_tiff_load_unchanged() {
        let img = ramp(40, 30);
        for bytes in [codec::encode_png_u8(&img), codec::encode_tiff_u8(&img)] {
            let loaded = load_gray(&bytes.expect("encode"), 16).expect("load");
            assert_eq!(loaded.image, GrayImage::U8(img.clone()));
            assert!(loaded.notice().is_none());
        }
        let f = img.map(|v| f32::from(v) * 0.5 - 3.0);
        let loaded = load_gray(&codec::encode_tiff_f32(&f).expect("encode"), 16).expect("load");
        assert_eq!(loaded.image, GrayImage::F32(f));
    }

    #[test]
    fn colour_png_and_jpeg_are_converted_with_a_notice() {
        let (w, h) = (32usize, 20usize);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| [200u8, (i % 200) as u8, 10])
            .collect();
        let mut png_bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png_bytes, w as u32, h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().expect("header");
            writer.write_image_data(&rgb).expect("data");
        }
        let loaded = load_gray(&png_bytes, 16).expect("load");
        assert!(loaded.converted_from_colour);
        assert!(loaded.notice().is_some_and(|n| n.contains("grey")));
        let GrayImage::U8(g) = loaded.image else {
            panic!("8-bit grey expected")
        };
        let expected = (0.2126f32 * 200.0 + 0.7152 * 5.0 + 0.0722 * 10.0).round() as u8;
        assert_eq!(g.get(5, 0), expected);

        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode(&rgb, w as u32, h as u32, image::ExtendedColorType::Rgb8)
            .expect("jpeg");
        let loaded = load_gray(&jpeg, 16).expect("load jpeg");
        assert_eq!(loaded.format, "JPEG");
        assert!(loaded.converted_from_colour);
    }

    #[test]
    fn bad_files_get_clear_errors() {
        assert_eq!(load_gray(b"", 16), Err(LoadError::Empty));
        assert!(matches!(
            load_gray(b"hello, world", 16),
            Err(LoadError::UnknownFormat(_))
        ));
        let png = codec::encode_png_u8(&ramp(40, 30)).expect("encode");
        let truncated = load_gray(&png[..png.len() / 2], 16);
        assert!(
            matches!(truncated, Err(LoadError::Damaged { format: "PNG", .. })),
            "{truncated:?}"
        );
        assert_eq!(
            load_gray(&png, 64),
            Err(LoadError::TooSmall {
                width: 40,
                height: 30,
                min: 64
            })
        );
        let tiff = codec::encode_tiff_u8(&ramp(40, 30)).expect("encode");
        assert!(matches!(
            load_gray(&tiff[..100], 16),
            Err(LoadError::Damaged { .. })
        ));
    }

    #[test]
    fn huge_images_are_refused_from_the_header_alone() {
        // A 9000 × 9000 PNG header (81 megapixels) with no pixel data behind it.
        let mut header = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut header, 9000, 9000);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let _ = enc.write_header().expect("header");
        }
        let err = load_gray(&header, 16).expect_err("too large");
        assert_eq!(
            err,
            LoadError::TooLarge {
                width: 9000,
                height: 9000
            }
        );
        assert!(err.to_string().contains("81 megapixels"));
    }
}
