//! PNG and TIFF encoding and decoding in memory.
//!
//! PNG carries 8- and 16-bit grayscale; TIFF carries 8/16/32-bit unsigned integers and 32-bit
//! floats (what detectors write). Encoders favour speed: dataset generation writes millions of
//! files, so PNG uses the fast `fdeflate` path.

use std::io::Cursor;

use crate::Image;

/// Errors encoding or decoding image bytes.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The PNG encoder failed.
    #[error("could not encode PNG: {0}")]
    PngEncode(#[from] png::EncodingError),
    /// The PNG decoder rejected the bytes.
    #[error("not a readable PNG file: {0}")]
    PngDecode(#[from] png::DecodingError),
    /// The TIFF codec failed.
    #[error("TIFF error: {0}")]
    Tiff(#[from] tiff::TiffError),
    /// The file holds a pixel layout this crate does not read.
    #[error("unsupported image layout: {0}")]
    Unsupported(String),
    /// The header claims what the file cannot hold (refused before anything is allocated).
    #[error("the file is damaged: {0}")]
    Damaged(String),
    /// The decoded size does not match the pixel data.
    #[error(transparent)]
    Image(#[from] crate::ImageError),
}

/// Image file formats the encoders write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileFormat {
    /// Portable Network Graphics, lossless, compressed.
    #[default]
    Png,
    /// Tagged Image File Format, uncompressed.
    Tiff,
}

impl FileFormat {
    /// The file-name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Png => "png",
            FileFormat::Tiff => "tiff",
        }
    }
}

fn png_bytes(
    width: usize,
    height: usize,
    depth: png::BitDepth,
    data: &[u8],
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    {
        let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(depth);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(data)?;
        writer.finish()?;
    }
    Ok(out)
}

/// Encodes an 8-bit grayscale PNG.
pub fn encode_png_u8(image: &Image<u8>) -> Result<Vec<u8>, CodecError> {
    png_bytes(
        image.width(),
        image.height(),
        png::BitDepth::Eight,
        image.pixels(),
    )
}

/// Encodes a 16-bit grayscale PNG (PNG stores 16-bit samples big-endian).
pub fn encode_png_u16(image: &Image<u16>) -> Result<Vec<u8>, CodecError> {
    let mut bytes = Vec::with_capacity(image.pixels().len() * 2);
    for v in image.pixels() {
        bytes.extend_from_slice(&v.to_be_bytes());
    }
    png_bytes(
        image.width(),
        image.height(),
        png::BitDepth::Sixteen,
        &bytes,
    )
}

/// A decoded grayscale image, at the bit depth the file stores.
#[derive(Debug, Clone, PartialEq)]
pub enum GrayImage {
    /// 8-bit samples.
    U8(Image<u8>),
    /// 16-bit samples.
    U16(Image<u16>),
    /// 32-bit unsigned samples.
    U32(Image<u32>),
    /// 32-bit float samples.
    F32(Image<f32>),
}

impl GrayImage {
    /// The largest value of the integer sample type (255, 65 535, 4 294 967 295); `None` for
    /// floats. Detector files use it to mark masked or saturated pixels.
    pub fn full_scale(&self) -> Option<f64> {
        match self {
            GrayImage::U8(_) => Some(f64::from(u8::MAX)),
            GrayImage::U16(_) => Some(f64::from(u16::MAX)),
            GrayImage::U32(_) => Some(f64::from(u32::MAX)),
            GrayImage::F32(_) => None,
        }
    }

    /// Converts any depth to `f32` values (no rescaling), except that a 32-bit file's
    /// 2³² − 1 — the masked-pixel marker of Eiger detectors, never a count — becomes −1, the
    /// invalid-pixel flag every analysis masks (as Pilatus files write their gaps).
    pub fn to_f32(&self) -> Image<f32> {
        match self {
            GrayImage::U8(i) => i.map(f32::from),
            GrayImage::U16(i) => i.map(f32::from),
            GrayImage::U32(i) => i.map(|v| if v == u32::MAX { -1.0 } else { v as f32 }),
            GrayImage::F32(i) => i.clone(),
        }
    }
}

/// Decodes a grayscale PNG, TIFF or EDF, recognised by its first bytes.
pub fn decode_gray(bytes: &[u8]) -> Result<GrayImage, CodecError> {
    if bytes.starts_with(b"\x89PNG") {
        decode_png(bytes)
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        decode_tiff(bytes)
    } else if bytes.starts_with(b"{") {
        decode_edf(bytes)
    } else if bytes.is_empty() {
        Err(CodecError::Unsupported("the file is empty".into()))
    } else {
        Err(CodecError::Unsupported(
            "not a PNG or TIFF file (unrecognised first bytes)".into(),
        ))
    }
}

/// Decodes a grayscale PNG of 8 or 16 bits.
pub fn decode_png(bytes: &[u8]) -> Result<GrayImage, CodecError> {
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let mut reader = decoder.read_info()?;
    let info = reader.info().clone();
    if info.color_type != png::ColorType::Grayscale {
        return Err(CodecError::Unsupported(format!(
            "PNG colour type {:?}; expected grayscale",
            info.color_type
        )));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| CodecError::Unsupported("PNG too large to decode".into()))?;
    check_png_output(size, bytes.len()).map_err(CodecError::Damaged)?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf)?;
    let (w, h) = (frame.width as usize, frame.height as usize);
    buf.truncate(frame.buffer_size());
    match frame.bit_depth {
        png::BitDepth::Eight => Ok(GrayImage::U8(Image::from_vec(w, h, buf)?)),
        png::BitDepth::Sixteen => {
            let px = buf
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Ok(GrayImage::U16(Image::from_vec(w, h, px)?))
        }
        d => Err(CodecError::Unsupported(format!("PNG bit depth {d:?}"))),
    }
}

/// Refuses a classic TIFF whose first directory lists a tag with more data than the whole file
/// (the `tiff` crate would allocate for the claimed count before noticing: the fuzzing campaign
/// found a 4.7 KB file whose PhotometricInterpretation claimed 8 million values, 266 MB), or a
/// tag the crate reads the first value of with none. Run by every TIFF reader (`decode_tiff`
/// and `load::load_gray`) before the decoder sees the bytes.
pub(crate) fn check_tiff_tags(bytes: &[u8]) -> Result<(), String> {
    let little = bytes.starts_with(b"II");
    let u16_at = |at: usize| -> Option<usize> {
        let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(usize::from(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }))
    };
    let u32_at = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        } as usize)
    };
    // Offsets and counts that do not fit are left to the decoder, which refuses them.
    let Some(ifd) = u32_at(4) else { return Ok(()) };
    let Some(entries) = u16_at(ifd) else {
        return Ok(());
    };
    for k in 0..entries {
        let at = ifd + 2 + 12 * k;
        let (Some(tag), Some(kind), Some(count)) = (u16_at(at), u16_at(at + 2), u32_at(at + 4))
        else {
            break;
        };
        // Bytes per value of the TIFF 6 field types (unknown types: 1).
        let size = match kind {
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 | 16 | 17 | 18 => 8,
            _ => 1,
        };
        // The `tiff` crate (0.10) indexes the first value of these without checking that
        // there is one (the campaign found SampleFormat with no values: a panic).
        const INDEXED: [usize; 6] = [258, 273, 279, 324, 325, 339];
        if count == 0 && INDEXED.contains(&tag) {
            return Err(format!("tag {tag} has no values"));
        }
        if count.saturating_mul(size) > bytes.len() {
            return Err(format!(
                "tag {tag} claims {count} values, more than the file's {} bytes hold",
                bytes.len()
            ));
        }
    }
    Ok(())
}

/// Refuses a PNG whose header asks for an output of `size` bytes that a `file_len`-byte file
/// cannot hold: zlib expands at most 1032:1, so this is checked before the buffer is allocated
/// (the fuzzing campaign found 2 KB files asking for 80 MB).
pub(crate) fn check_png_output(size: usize, file_len: usize) -> Result<(), String> {
    if size > file_len.saturating_mul(1032).saturating_add(1 << 16) {
        return Err(format!(
            "the header asks for {size} bytes of pixels, more than a {file_len}-byte file can hold"
        ));
    }
    Ok(())
}

/// Encodes an 8-bit grayscale TIFF.
pub fn encode_tiff_u8(image: &Image<u8>) -> Result<Vec<u8>, CodecError> {
    let mut cursor = Cursor::new(Vec::new());
    tiff::encoder::TiffEncoder::new(&mut cursor)?.write_image::<tiff::encoder::colortype::Gray8>(
        image.width() as u32,
        image.height() as u32,
        image.pixels(),
    )?;
    Ok(cursor.into_inner())
}

/// Encodes a 16-bit grayscale TIFF.
pub fn encode_tiff_u16(image: &Image<u16>) -> Result<Vec<u8>, CodecError> {
    let mut cursor = Cursor::new(Vec::new());
    tiff::encoder::TiffEncoder::new(&mut cursor)?.write_image::<tiff::encoder::colortype::Gray16>(
        image.width() as u32,
        image.height() as u32,
        image.pixels(),
    )?;
    Ok(cursor.into_inner())
}

/// Encodes a 32-bit unsigned grayscale TIFF (photon counts beyond 65 535).
pub fn encode_tiff_u32(image: &Image<u32>) -> Result<Vec<u8>, CodecError> {
    let mut cursor = Cursor::new(Vec::new());
    tiff::encoder::TiffEncoder::new(&mut cursor)?.write_image::<tiff::encoder::colortype::Gray32>(
        image.width() as u32,
        image.height() as u32,
        image.pixels(),
    )?;
    Ok(cursor.into_inner())
}

/// Encodes a 32-bit float grayscale TIFF.
pub fn encode_tiff_f32(image: &Image<f32>) -> Result<Vec<u8>, CodecError> {
    let mut cursor = Cursor::new(Vec::new());
    tiff::encoder::TiffEncoder::new(&mut cursor)?
        .write_image::<tiff::encoder::colortype::Gray32Float>(
            image.width() as u32,
            image.height() as u32,
            image.pixels(),
        )?;
    Ok(cursor.into_inner())
}

/// Decodes a single-channel TIFF of 8/16/32-bit unsigned integers or 32-bit floats.
pub fn decode_tiff(bytes: &[u8]) -> Result<GrayImage, CodecError> {
    use tiff::decoder::{Decoder, DecodingResult};
    check_tiff_tags(bytes).map_err(CodecError::Damaged)?;
    let mut decoder = Decoder::new(Cursor::new(bytes))?;
    let (w, h) = decoder.dimensions()?;
    let (w, h) = (w as usize, h as usize);
    match decoder.read_image()? {
        DecodingResult::U8(v) => Ok(GrayImage::U8(Image::from_vec(w, h, v)?)),
        DecodingResult::U16(v) => Ok(GrayImage::U16(Image::from_vec(w, h, v)?)),
        DecodingResult::U32(v) => Ok(GrayImage::U32(Image::from_vec(w, h, v)?)),
        DecodingResult::F32(v) => Ok(GrayImage::F32(Image::from_vec(w, h, v)?)),
        // Signed detectors (Pilatus writes int32 with −1 in gaps, −2 for bad pixels): the
        // negative flags survive as negative floats.
        DecodingResult::I32(v) => Ok(GrayImage::F32(Image::from_vec(
            w,
            h,
            v.into_iter().map(|x| x as f32).collect(),
        )?)),
        DecodingResult::I16(v) => Ok(GrayImage::F32(Image::from_vec(
            w,
            h,
            v.into_iter().map(f32::from).collect(),
        )?)),
        DecodingResult::F64(v) => Ok(GrayImage::F32(Image::from_vec(
            w,
            h,
            v.into_iter().map(|x| x as f32).collect(),
        )?)),
        _ => Err(CodecError::Unsupported(
            "TIFF sample type other than 8/16/32-bit integer or 32/64-bit float".into(),
        )),
    }
}

/// The header of an EDF (ESRF data format) file: `{`, `key = value ;` lines, `}` and a newline,
/// padded to a multiple of 512 bytes; the raw pixel data follows.
#[derive(Debug, Clone, PartialEq)]
pub struct EdfHeader {
    /// `Dim_1`: pixels per row.
    pub width: usize,
    /// `Dim_2`: rows.
    pub height: usize,
    /// `DataType`.
    pub data_type: String,
    /// `ByteOrder` is `HighByteFirst`.
    pub big_endian: bool,
    /// Offset of the pixel data.
    pub data_offset: usize,
}

/// Parses an EDF header (only the header: callers check the size before reading pixels).
pub fn edf_header(bytes: &[u8]) -> Result<EdfHeader, CodecError> {
    let bad = |m: &str| CodecError::Unsupported(format!("not a readable EDF file: {m}"));
    if !bytes.starts_with(b"{") {
        return Err(bad("it does not start with {"));
    }
    let end = bytes
        .iter()
        .take(64 * 1024)
        .position(|&b| b == b'}')
        .ok_or_else(|| bad("the header has no closing }"))?;
    let text = std::str::from_utf8(&bytes[1..end]).map_err(|_| bad("the header is not text"))?;
    let mut fields = std::collections::HashMap::new();
    for item in text.split(';') {
        if let Some((k, v)) = item.split_once('=') {
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let dim = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| bad(&format!("no valid {k}")))
    };
    // Data starts after the "}" and its newline.
    let mut data_offset = end + 1;
    if bytes.get(data_offset) == Some(&b'\r') {
        data_offset += 1;
    }
    if bytes.get(data_offset) == Some(&b'\n') {
        data_offset += 1;
    }
    Ok(EdfHeader {
        width: dim("dim_1")?,
        height: dim("dim_2")?,
        data_type: fields
            .get("datatype")
            .cloned()
            .ok_or_else(|| bad("no DataType"))?,
        big_endian: fields
            .get("byteorder")
            .is_some_and(|v| v.eq_ignore_ascii_case("HighByteFirst")),
        data_offset,
    })
}

/// A single-image EDF file as beamline software writes it: the header (`DataType` as EDF names
/// it, for example `SignedInteger` or `UnsignedShort`; the byte order; `Dim_1` = width,
/// `Dim_2` = height) padded to a multiple of 512 bytes, then `data`, the samples as stored. Used
/// to make test and fuzzing seeds; nothing here checks that `data` matches the type and size.
pub fn encode_edf(
    data_type: &str,
    big_endian: bool,
    width: usize,
    height: usize,
    data: &[u8],
) -> Vec<u8> {
    let order = if big_endian {
        "HighByteFirst"
    } else {
        "LowByteFirst"
    };
    let mut head = format!(
        "{{\nHeaderID = EH:000001:000000:000000 ;\nImage = 1 ;\nByteOrder = {order} ;\nDataType = {data_type} ;\nDim_1 = {width} ;\nDim_2 = {height} ;\nSize = {} ;\n",
        data.len()
    );
    while (head.len() + 2) % 512 != 0 {
        head.push(' ');
    }
    head.push_str("}\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(data);
    out
}

/// Decodes a single-image EDF file (ESRF data format, as written by many beamlines): unsigned
/// and signed 8/16/32-bit integers, 32/64-bit floats, either byte order.
pub fn decode_edf(bytes: &[u8]) -> Result<GrayImage, CodecError> {
    let h = edf_header(bytes)?;
    let n = h
        .width
        .checked_mul(h.height)
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            CodecError::Unsupported(format!("EDF image of {} × {} pixels", h.width, h.height))
        })?;
    let t = h.data_type.to_ascii_lowercase();
    let size = match t.as_str() {
        "unsignedbyte" | "signedbyte" => 1,
        "unsignedshort" | "signedshort" => 2,
        "unsignedinteger" | "signedinteger" | "unsignedlong" | "signedlong" | "floatvalue"
        | "float" => 4,
        "doublevalue" | "double" => 8,
        other => {
            return Err(CodecError::Unsupported(format!(
                "EDF data type {other} is not read"
            )));
        }
    };
    let data = bytes
        .get(h.data_offset..)
        .and_then(|d| d.get(..n * size))
        .ok_or_else(|| {
            CodecError::Unsupported(format!(
                "the EDF file is truncated: {n} pixels of {size} bytes expected"
            ))
        })?;
    let word = |c: &[u8]| -> u64 {
        let mut v = 0u64;
        if h.big_endian {
            for &b in c {
                v = (v << 8) | u64::from(b);
            }
        } else {
            for &b in c.iter().rev() {
                v = (v << 8) | u64::from(b);
            }
        }
        v
    };
    let words = data.chunks_exact(size).map(word);
    let (w, hh) = (h.width, h.height);
    Ok(match t.as_str() {
        "unsignedbyte" => GrayImage::U8(Image::from_vec(w, hh, words.map(|v| v as u8).collect())?),
        "unsignedshort" => {
            GrayImage::U16(Image::from_vec(w, hh, words.map(|v| v as u16).collect())?)
        }
        "unsignedinteger" | "unsignedlong" => {
            GrayImage::U32(Image::from_vec(w, hh, words.map(|v| v as u32).collect())?)
        }
        "signedbyte" => GrayImage::F32(Image::from_vec(
            w,
            hh,
            words.map(|v| f32::from(v as u8 as i8)).collect(),
        )?),
        "signedshort" => GrayImage::F32(Image::from_vec(
            w,
            hh,
            words.map(|v| f32::from(v as u16 as i16)).collect(),
        )?),
        "signedinteger" | "signedlong" => GrayImage::F32(Image::from_vec(
            w,
            hh,
            words.map(|v| v as u32 as i32 as f32).collect(),
        )?),
        "floatvalue" | "float" => GrayImage::F32(Image::from_vec(
            w,
            hh,
            words.map(|v| f32::from_bits(v as u32)).collect(),
        )?),
        _ => GrayImage::F32(Image::from_vec(
            w,
            hh,
            words.map(|v| f64::from_bits(v) as f32).collect(),
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp16() -> Image<u16> {
        Image::from_vec(7, 5, (0..35u32).map(|i| (i * 1873 + 3) as u16).collect()).expect("7×5")
    }

    #[test]
    fn png16_roundtrip_is_exact() {
        let img = ramp16();
        let bytes = encode_png_u16(&img).expect("encode");
        assert_eq!(&bytes[1..4], b"PNG");
        assert_eq!(decode_png(&bytes).expect("decode"), GrayImage::U16(img));
    }

    #[test]
    fn png8_roundtrip_is_exact() {
        let img = Image::from_vec(4, 3, (0..12u8).map(|v| v * 20).collect()).expect("4×3");
        let bytes = encode_png_u8(&img).expect("encode");
        assert_eq!(decode_png(&bytes).expect("decode"), GrayImage::U8(img));
    }

    #[test]
    fn edf_reads_pilatus_style_signed_and_unsigned_data_in_both_byte_orders() {
        // 3 × 2 SignedInteger with −1 (gap) and −2 (bad pixel), little endian.
        let v: [i32; 6] = [0, 5, -1, 70_000, -2, 12];
        let le: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let img = decode_gray(&encode_edf("SignedInteger", false, 3, 2, &le)).expect("EDF");
        assert_eq!(
            img.to_f32().pixels(),
            &[0.0, 5.0, -1.0, 70_000.0, -2.0, 12.0]
        );
        // UnsignedShort, big endian.
        let u: [u16; 4] = [1, 256, 65_535, 7];
        let be: Vec<u8> = u.iter().flat_map(|x| x.to_be_bytes()).collect();
        let img = decode_edf(&encode_edf("UnsignedShort", true, 2, 2, &be)).expect("EDF");
        assert_eq!(
            img,
            GrayImage::U16(Image::from_vec(2, 2, u.to_vec()).expect("2×2"))
        );
        // Truncated data and unknown types are clear errors.
        let short = encode_edf("FloatValue", false, 4, 4, &[0u8; 10]);
        assert!(
            decode_edf(&short)
                .expect_err("truncated")
                .to_string()
                .contains("truncated")
        );
        assert!(decode_edf(&encode_edf("Complex", false, 1, 1, &[0; 8])).is_err());
    }

    #[test]
    fn pilatus_style_int32_tiff_keeps_its_negative_flags() {
        use tiff::encoder::{TiffEncoder, colortype::GrayI32};
        let v: Vec<i32> = vec![3, -1, 1_000_000, -2];
        let mut bytes = Vec::new();
        TiffEncoder::new(Cursor::new(&mut bytes))
            .expect("encoder")
            .write_image::<GrayI32>(2, 2, &v)
            .expect("write");
        let img = decode_gray(&bytes).expect("decodes");
        assert_eq!(img.to_f32().pixels(), &[3.0, -1.0, 1_000_000.0, -2.0]);
    }

    #[test]
    fn eiger_style_uint32_marks_masked_pixels_as_invalid() {
        let img = Image::from_vec(2, 2, vec![7, u32::MAX, 4_000_000, u32::MAX - 1]).expect("img");
        let decoded = decode_gray(&encode_tiff_u32(&img).expect("u32")).expect("decodes");
        // Only the marker is flagged; one below it stays a (damaged, implausible) count.
        assert_eq!(
            decoded.to_f32().pixels(),
            &[7.0, -1.0, 4_000_000.0, (u32::MAX - 1) as f32]
        );
    }

    #[test]
    fn tiff_roundtrips_every_depth() {
        let img16 = ramp16();
        assert_eq!(
            decode_tiff(&encode_tiff_u16(&img16).expect("u16")).expect("d"),
            GrayImage::U16(img16.clone())
        );
        let img32 = img16.map(|v| u32::from(v) * 60_000);
        assert_eq!(
            decode_tiff(&encode_tiff_u32(&img32).expect("u32")).expect("d"),
            GrayImage::U32(img32)
        );
        let imgf = img16.map(|v| f32::from(v) * 0.5 - 3.25);
        assert_eq!(
            decode_tiff(&encode_tiff_f32(&imgf).expect("f32")).expect("d"),
            GrayImage::F32(imgf)
        );
        let img8 = img16.map(|v| (v >> 8) as u8);
        assert_eq!(
            decode_tiff(&encode_tiff_u8(&img8).expect("u8")).expect("d"),
            GrayImage::U8(img8)
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_png(b"not a png").is_err());
        assert!(decode_tiff(&[0x49, 0x49, 42, 0, 8]).is_err());
        assert!(decode_png(&[]).is_err());
    }
}
