//! CBF / miniCBF detector images as Pilatus and Eiger detectors (and fabio) write them: a CIF
//! text header, then one MIME-framed binary section compressed with the byte-offset scheme.
//!
//! What is read: the binary section's MIME fields (`conversions="x-CBF_BYTE_OFFSET"`,
//! element type, element count, the two dimensions, `X-Binary-Size`, `Content-MD5`), and from a
//! Pilatus-style header the geometry lines (`# Pixel_size`, `# Wavelength`,
//! `# Detector_distance`, `# Beam_xy`, `# Exposure_time`). The size is checked against the
//! file's length and [`crate::load::MAX_PIXELS`] before anything is allocated, the MD5 (when
//! present) before anything is decompressed, and the element count after.
//!
//! Written here rather than taken from a crate: no maintained pure-Rust CBF reader exists that
//! builds for wasm32 (the C `cbflib` does not); the byte-offset scheme is a few lines.
//!
//! Byte offset (Ellis & Bernstein, CBF 1.5): each value is the previous one plus a delta stored
//! as a signed byte; −128 announces a little-endian i16, whose −32 768 announces an i32, whose
//! minimum announces an i64.

use md5::{Digest, Md5};

use crate::Image;
use crate::codec::{CodecError, GrayImage};
use crate::detector::FileGeometry;

/// Start of the binary data after the MIME header.
const BINARY_MARKER: [u8; 4] = [0x0C, 0x1A, 0x04, 0xD5];
/// The header is searched for the binary marker within this many bytes.
const MAX_HEADER_BYTES: usize = 1 << 20;

/// The binary section's description.
#[derive(Debug, Clone, PartialEq)]
pub struct CbfHeader {
    /// Pixels per row (`X-Binary-Size-Fastest-Dimension`).
    pub width: usize,
    /// Rows (`X-Binary-Size-Second-Dimension`).
    pub height: usize,
    /// `X-Binary-Element-Type`, for example "signed 32-bit integer".
    pub element_type: String,
    /// Compressed bytes (`X-Binary-Size`).
    pub binary_size: usize,
    /// `Content-MD5` of the compressed bytes, decoded.
    pub md5: Option<[u8; 16]>,
    /// Offset of the compressed bytes in the file.
    pub data_offset: usize,
    /// The set-up, from the Pilatus header lines.
    pub geometry: FileGeometry,
}

fn bad(m: impl Into<String>) -> CodecError {
    CodecError::Unsupported(format!("not a readable CBF file: {}", m.into()))
}

/// Whether `bytes` look like a CBF file.
pub fn is_cbf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"###CBF")
}

/// Parses the header (no pixel is decoded; callers check the size first).
pub fn cbf_header(bytes: &[u8]) -> Result<CbfHeader, CodecError> {
    if !is_cbf(bytes) {
        return Err(bad("it does not start with ###CBF"));
    }
    let search = &bytes[..bytes.len().min(MAX_HEADER_BYTES)];
    let marker = search
        .windows(4)
        .position(|w| w == BINARY_MARKER)
        .ok_or_else(|| bad("no binary section (the file may be cut short)"))?;
    let text = String::from_utf8_lossy(&bytes[..marker]);
    let mut fields = std::collections::HashMap::new();
    let mut geometry = FileGeometry::default();
    let mut conversions = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# ") {
            read_pilatus_line(rest, &mut geometry);
        } else if let Some(i) = line.find("conversions=") {
            conversions = Some(line[i + 12..].trim_matches(['"', ';', ' ']).to_string());
        } else if let Some((k, v)) = line.split_once(':') {
            fields.insert(
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            );
        }
    }
    match conversions.as_deref() {
        Some(c) if c.eq_ignore_ascii_case("x-CBF_BYTE_OFFSET") => {}
        Some(c) => {
            return Err(bad(format!(
                "compression {c} is not read (only byte offset)"
            )));
        }
        None => return Err(bad("the binary section names no compression")),
    }
    if let Some(order) = fields.get("x-binary-element-byte-order")
        && !order.eq_ignore_ascii_case("LITTLE_ENDIAN")
    {
        return Err(bad(format!(
            "byte order {order} (byte offset is little-endian)"
        )));
    }
    let number = |k: &str| -> Result<usize, CodecError> {
        fields
            .get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| bad(format!("no valid {k}")))
    };
    let width = number("x-binary-size-fastest-dimension")?;
    let height = number("x-binary-size-second-dimension")?;
    let elements = number("x-binary-number-of-elements")?;
    if width.checked_mul(height) != Some(elements) || elements == 0 {
        return Err(bad(format!(
            "{elements} elements do not fill {width} × {height} pixels"
        )));
    }
    let md5 = match fields.get("content-md5") {
        Some(b64) => Some(decode_md5(b64).ok_or_else(|| bad("Content-MD5 is not base64"))?),
        None => None,
    };
    Ok(CbfHeader {
        width,
        height,
        element_type: fields
            .get("x-binary-element-type")
            .cloned()
            .unwrap_or_else(|| "signed 32-bit integer".into()),
        binary_size: number("x-binary-size")?,
        md5,
        data_offset: marker + BINARY_MARKER.len(),
        geometry,
    })
}

/// One `# Key value…` line of a Pilatus header into `g` (unknown lines are skipped).
fn read_pilatus_line(line: &str, g: &mut FileGeometry) {
    let mut words = line.split_whitespace();
    let key = words.next().unwrap_or_default();
    let numbers: Vec<f64> = line
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter_map(|w| w.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .collect();
    let first = numbers.first().copied();
    match key {
        "Pixel_size" if numbers.len() >= 2 => {
            g.pixel_size_um = Some((numbers[0] * 1e6, numbers[1] * 1e6));
        }
        "Wavelength" => g.wavelength_angstrom = first,
        "Detector_distance" => g.distance_m = first,
        "Beam_xy" if numbers.len() >= 2 => g.beam_xy_px = Some((numbers[0], numbers[1])),
        "Exposure_time" => g.exposure_s = first,
        _ => {}
    }
}

/// The 16 bytes of a base64 MD5 (24 characters with padding).
fn decode_md5(b64: &str) -> Option<[u8; 16]> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u32> = b64
        .trim()
        .trim_end_matches('=')
        .bytes()
        .map(value)
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(18);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for (i, d) in chunk.iter().enumerate() {
            acc |= d << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out.try_into().ok()
}

/// Decodes a CBF image: counts as `f32` (negative values, Pilatus's gaps and dead pixels, kept
/// for the mask), and the header's set-up.
pub fn decode_cbf(bytes: &[u8]) -> Result<(GrayImage, FileGeometry), CodecError> {
    let h = cbf_header(bytes)?;
    if h.width.saturating_mul(h.height) > crate::load::MAX_PIXELS {
        return Err(bad(format!(
            "{} × {} pixels is more than this tool holds",
            h.width, h.height
        )));
    }
    let data = bytes
        .get(h.data_offset..)
        .and_then(|d| d.get(..h.binary_size))
        .ok_or_else(|| {
            bad(format!(
                "truncated: the binary section says {} bytes, the file has {}",
                h.binary_size,
                bytes.len().saturating_sub(h.data_offset)
            ))
        })?;
    if let Some(want) = h.md5 {
        let got: [u8; 16] = Md5::digest(data).into();
        if got != want {
            return Err(bad("the binary data do not match their MD5 (damaged file)"));
        }
    }
    let (lo, hi) = element_range(&h.element_type)?;
    let values = byte_offset(data, h.width * h.height)?;
    if let Some(v) = values.iter().find(|&&v| v < lo || v > hi) {
        return Err(bad(format!("value {v} does not fit a {}", h.element_type)));
    }
    let image = Image::from_vec(
        h.width,
        h.height,
        values.iter().map(|&v| v as f32).collect(),
    )?;
    Ok((GrayImage::F32(image), h.geometry))
}

/// The range of an integer element type.
fn element_range(t: &str) -> Result<(i64, i64), CodecError> {
    let t = t.to_ascii_lowercase();
    let bits = [8u32, 16, 32]
        .into_iter()
        .find(|b| t.contains(&format!("{b}-bit")))
        .ok_or_else(|| {
            bad(format!(
                "element type \"{t}\" is not an 8/16/32-bit integer"
            ))
        })?;
    if !t.contains("integer") {
        return Err(bad(format!("element type \"{t}\" is not an integer")));
    }
    Ok(if t.contains("unsigned") {
        (0, (1i64 << bits) - 1)
    } else {
        (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
    })
}

/// Decompresses `count` values of byte-offset data.
fn byte_offset(data: &[u8], count: usize) -> Result<Vec<i64>, CodecError> {
    let short = || bad("the compressed data end before the last pixel");
    let mut out = Vec::with_capacity(count);
    let (mut at, mut value) = (0usize, 0i64);
    let take = |at: &mut usize, n: usize| -> Result<&[u8], CodecError> {
        let s = data.get(*at..*at + n).ok_or_else(short)?;
        *at += n;
        Ok(s)
    };
    while out.len() < count {
        let mut delta = i64::from(take(&mut at, 1)?[0] as i8);
        if delta == -128 {
            let b = take(&mut at, 2)?;
            delta = i64::from(i16::from_le_bytes([b[0], b[1]]));
            if delta == i64::from(i16::MIN) {
                let b = take(&mut at, 4)?;
                delta = i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                if delta == i64::from(i32::MIN) {
                    let b = take(&mut at, 8)?;
                    let mut w = [0u8; 8];
                    w.copy_from_slice(b);
                    delta = i64::from_le_bytes(w);
                }
            }
        }
        value = value
            .checked_add(delta)
            .ok_or_else(|| bad("a value overflows 64 bits (damaged data)"))?;
        out.push(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte-offset encoding as CBF 1.5 specifies it (the tests' writer).
    fn encode(values: &[i64]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut last = 0i64;
        for &v in values {
            let d = v - last;
            last = v;
            if (-127..=127).contains(&d) {
                out.push(d as i8 as u8);
                continue;
            }
            out.push(0x80);
            if (-32767..=32767).contains(&d) {
                out.extend_from_slice(&(d as i16).to_le_bytes());
                continue;
            }
            out.extend_from_slice(&i16::MIN.to_le_bytes());
            if (-(i32::MAX as i64)..=i32::MAX as i64).contains(&d) {
                out.extend_from_slice(&(d as i32).to_le_bytes());
                continue;
            }
            out.extend_from_slice(&i32::MIN.to_le_bytes());
            out.extend_from_slice(&d.to_le_bytes());
        }
        out
    }

    #[test]
    fn byte_offset_round_trips_every_escape() {
        let values = [
            0,
            5,
            -3,
            200,
            100_000,
            -2,
            40_000,
            3_000_000_000,
            -7,
            1 << 40,
            0,
        ];
        assert_eq!(
            byte_offset(&encode(&values), values.len()).expect("decode"),
            values
        );
        let data = encode(&values);
        assert!(byte_offset(&data[..data.len() - 1], values.len()).is_err());
    }

    #[test]
    fn md5_of_base64_decodes() {
        // fabio's Content-MD5 of its 5 × 7 test image (tools/cbf_reference.py).
        let d = decode_md5("klRjRdqqc/8TzmMtYXjh6g==").expect("base64");
        assert_eq!(d[0], 0x92);
        assert_eq!(d[15], 0xea);
        assert!(decode_md5("not base64!").is_none());
    }

    #[test]
    fn pilatus_lines_give_the_geometry() {
        let mut g = FileGeometry::default();
        for line in [
            "Pixel_size 172e-6 m x 172e-6 m",
            "Wavelength 1.0332 A",
            "Detector_distance 0.31234 m",
            "Beam_xy (1231.50, 1263.50) pixels",
            "Exposure_time 0.0990000 s",
            "Silicon sensor, thickness 0.001000 m",
        ] {
            read_pilatus_line(line, &mut g);
        }
        let (px, py) = g.pixel_size_um.expect("pixel");
        assert!((px - 172.0).abs() < 1e-9 && (py - 172.0).abs() < 1e-9);
        assert_eq!(g.wavelength_angstrom, Some(1.0332));
        assert_eq!(g.distance_m, Some(0.31234));
        assert_eq!(g.beam_xy_px, Some((1231.5, 1263.5)));
        assert_eq!(g.exposure_s, Some(0.099));
    }
}
