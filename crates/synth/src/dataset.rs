//! One generated image as dataset files plus its `labels.jsonl` line.
//!
//! The CLI writes these files to a directory and the web app packs them into a zip; both call
//! the functions here, so a dataset is byte-identical whichever produced it.

use imaging::codec::{self, FileFormat};
use serde_json::{Value, json};

use crate::SynthError;
use crate::scattering::{self, SaxsConfig, SaxsImage, SaxsParams, Truth};
use crate::tem::{self, TemConfig, TemImage, TemParams};

/// A file of a dataset: its name inside the dataset directory and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetFile {
    /// File name, no directories.
    pub name: String,
    /// File contents.
    pub bytes: Vec<u8>,
}

/// The files of one image and its label line (one JSON object, no trailing newline).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Image and ground-truth files.
    pub files: Vec<DatasetFile>,
    /// The `labels.jsonl` line.
    pub label_line: String,
}

/// A generated scattering image with its parameters and ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct SaxsSample {
    /// Every parameter.
    pub params: SaxsParams,
    /// Photon counts.
    pub image: SaxsImage,
    /// Ground truth.
    pub truth: Truth,
}

/// A generated micrograph with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct TemSample {
    /// Every parameter.
    pub params: TemParams,
    /// Micrograph and ground truth.
    pub image: TemImage,
}

/// Generates scattering image `index` of the batch `seed`.
pub fn generate_saxs(config: &SaxsConfig, seed: u64, index: u64) -> Result<SaxsSample, SynthError> {
    let params = scattering::sample_params(config, seed, index)?;
    let image = scattering::render(&params)?;
    let truth = Truth::of(&params, &image);
    Ok(SaxsSample {
        params,
        image,
        truth,
    })
}

/// Generates micrograph `index` of the batch `seed`.
pub fn generate_tem(config: &TemConfig, seed: u64, index: u64) -> Result<TemSample, SynthError> {
    let params = tem::sample_params(config, seed, index)?;
    let image = tem::render(&params)?;
    Ok(TemSample { params, image })
}

fn encode_err(e: codec::CodecError) -> SynthError {
    SynthError::Encode(e.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, SynthError> {
    serde_json::to_value(v).map_err(|e| SynthError::Encode(e.to_string()))
}

/// Files and label line of a scattering image: `saxs_NNNNNN.png` (16-bit counts, clipped at
/// 65 535) or `.tiff` (32-bit counts).
pub fn saxs_record(
    sample: &SaxsSample,
    seed: u64,
    index: u64,
    format: FileFormat,
) -> Result<Record, SynthError> {
    let name = format!("saxs_{index:06}.{}", format.extension());
    let counts = &sample.image.counts;
    let bytes = match format {
        FileFormat::Png => {
            codec::encode_png_u16(&counts.map(|c| c.min(u32::from(u16::MAX)) as u16))
        }
        FileFormat::Tiff => codec::encode_tiff_u32(counts),
    }
    .map_err(encode_err)?;
    let t = &sample.truth;
    let line = json!({
        "file": name,
        "index": index,
        "seed": seed,
        "kind": "saxs",
        "width": counts.width(),
        "height": counts.height(),
        "tags": t.tags,
        "attributes": t.attributes,
        "rings": to_json(&t.rings)?,
        "beam_x_px": t.beam_x_px,
        "beam_y_px": t.beam_y_px,
        "saturated_pixels": t.saturated_pixels,
        "params": to_json(&sample.params)?,
    });
    Ok(Record {
        files: vec![DatasetFile { name, bytes }],
        label_line: line.to_string(),
    })
}

/// Files and label line of a micrograph drawn for a boundary mask (by the mask-conditioned
/// generator, in the CLI or the browser) in the `generate tem` layout: `<stem>.png`, the mask
/// as `<stem>_boundary.png` (255 on boundaries), the grains it encloses as `<stem>_grains.png`
/// (16-bit ids) and their sizes; `origin`'s fields (model, seeds, mask file) join the line.
pub fn drawn_tem_record(
    stem: &str,
    boundary: &[bool],
    (width, height): (usize, usize),
    micrograph: Vec<u8>,
    origin: &serde_json::Map<String, Value>,
) -> Result<Record, SynthError> {
    let labels = imaging::grains::label_grains(boundary, width, height, 1).filled();
    let areas = labels.areas_px();
    let ids: Vec<u16> = labels
        .ids
        .iter()
        .map(|&id| u16::try_from(id).unwrap_or(u16::MAX))
        .collect();
    let mask: Vec<u8> = boundary.iter().map(|&b| if b { 255 } else { 0 }).collect();
    let image = |v| imaging::Image::from_vec(width, height, v).map_err(encode_err_image);
    let files = vec![
        DatasetFile {
            name: format!("{stem}.png"),
            bytes: codec::encode_png_u8(&image(micrograph)?).map_err(encode_err)?,
        },
        DatasetFile {
            name: format!("{stem}_boundary.png"),
            bytes: codec::encode_png_u8(&image(mask)?).map_err(encode_err)?,
        },
        DatasetFile {
            name: format!("{stem}_grains.png"),
            bytes: codec::encode_png_u16(
                &imaging::Image::from_vec(width, height, ids).map_err(encode_err_image)?,
            )
            .map_err(encode_err)?,
        },
    ];
    let mut line = json!({
        "file": files[0].name,
        "boundary": files[1].name,
        "grains": files[2].name,
        "kind": "tem",
        "width": width,
        "height": height,
        "tags": Vec::<String>::new(),
        "grain_count": areas.len(),
        "grain_area_px": areas,
        "grain_ecd_px": areas
            .iter()
            .map(|&a| (imaging::grains::ecd(a as f64) * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>(),
    });
    if let Some(l) = line.as_object_mut() {
        l.extend(origin.clone());
    }
    Ok(Record {
        files,
        label_line: line.to_string(),
    })
}

fn encode_err_image(e: imaging::ImageError) -> SynthError {
    SynthError::Encode(e.to_string())
}

/// Files and label line of a micrograph: `tem_NNNNNN.png` (8-bit), `tem_NNNNNN_boundary.png`
/// (0/255) and `tem_NNNNNN_grains.png` (16-bit ids), or the same as `.tiff`.
pub fn tem_record(
    sample: &TemSample,
    seed: u64,
    index: u64,
    format: FileFormat,
) -> Result<Record, SynthError> {
    let ext = format.extension();
    let (name, boundary, grains) = (
        format!("tem_{index:06}.{ext}"),
        format!("tem_{index:06}_boundary.{ext}"),
        format!("tem_{index:06}_grains.{ext}"),
    );
    let t = &sample.image;
    let (img, bnd, grn) = match format {
        FileFormat::Png => (
            codec::encode_png_u8(&t.image),
            codec::encode_png_u8(&t.boundary),
            codec::encode_png_u16(&t.grains),
        ),
        FileFormat::Tiff => (
            codec::encode_tiff_u8(&t.image),
            codec::encode_tiff_u8(&t.boundary),
            codec::encode_tiff_u16(&t.grains),
        ),
    };
    let line = json!({
        "file": name,
        "boundary": boundary,
        "grains": grains,
        "index": index,
        "seed": seed,
        "kind": "tem",
        "width": t.image.width(),
        "height": t.image.height(),
        "tags": Vec::<String>::new(),
        "grain_count": t.grain_area_px.len(),
        "grain_area_px": t.grain_area_px,
        "grain_ecd_px": t.grain_ecd_px.iter().map(|d| (d * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        "params": to_json(&sample.params)?,
    });
    Ok(Record {
        files: vec![
            DatasetFile {
                name,
                bytes: img.map_err(encode_err)?,
            },
            DatasetFile {
                name: boundary,
                bytes: bnd.map_err(encode_err)?,
            },
            DatasetFile {
                name: grains,
                bytes: grn.map_err(encode_err)?,
            },
        ],
        label_line: line.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imaging::codec::{GrayImage, decode_png};

    #[test]
    fn saxs_record_roundtrips_counts_and_labels() {
        let cfg = SaxsConfig {
            size_px: 128,
            ..SaxsConfig::default()
        };
        let s = generate_saxs(&cfg, 5, 7).expect("valid");
        let rec = saxs_record(&s, 5, 7, FileFormat::Png).expect("encodes");
        assert_eq!(rec.files[0].name, "saxs_000007.png");
        let GrayImage::U16(img) = decode_png(&rec.files[0].bytes).expect("png") else {
            panic!("16-bit")
        };
        assert_eq!(
            img.pixels()
                .iter()
                .map(|&v| u32::from(v))
                .collect::<Vec<_>>(),
            s.image.counts.pixels()
        );
        let v: Value = serde_json::from_str(&rec.label_line).expect("json");
        assert_eq!(v["file"], "saxs_000007.png");
        assert_eq!(
            v["tags"].as_array().expect("tags").len(),
            s.truth.tags.len()
        );
        let back: SaxsParams =
            serde_json::from_value(v["params"].clone()).expect("params parse back");
        assert_eq!(back, s.params);
    }

    #[test]
    fn tem_record_has_three_files_and_grain_stats() {
        let s = generate_tem(&TemConfig::default(), 1, 0).expect("valid");
        let rec = tem_record(&s, 1, 0, FileFormat::Png).expect("encodes");
        let names: Vec<&str> = rec.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tem_000000.png",
                "tem_000000_boundary.png",
                "tem_000000_grains.png"
            ]
        );
        let v: Value = serde_json::from_str(&rec.label_line).expect("json");
        assert_eq!(
            v["grain_count"].as_u64(),
            Some(s.image.grain_area_px.len() as u64)
        );
        assert_eq!(
            v["grain_ecd_px"].as_array().expect("list").len(),
            s.image.grain_area_px.len()
        );
        assert_eq!(v["tags"], json!([]));
        let GrayImage::U8(b) = decode_png(&rec.files[1].bytes).expect("png") else {
            panic!("8-bit")
        };
        assert!(b.pixels().iter().all(|&p| p == 0 || p == 255));
        let GrayImage::U16(g) = decode_png(&rec.files[2].bytes).expect("png") else {
            panic!("16-bit")
        };
        assert_eq!(g, s.image.grains);
    }
}
