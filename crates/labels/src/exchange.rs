//! The files labels travel in: label exports and annotation packs.
//!
//! - A **label export** is `labels.jsonl` alone, or a zip holding `labels.jsonl` and, optionally,
//!   the labelled images under `images/`.
//! - An **annotation pack** is a zip holding `pack.json` (format tag, pack id, instructions, the
//!   items in the lead's order), `instructions.md` (the same instructions, for a person reading
//!   the zip) and the images under `images/`.
//!
//! [`read`] reads either kind completely and validates everything (every label line, every
//! image's SHA-256 against the pack's list, sizes) before returning, so a caller that writes only
//! after `read` succeeded never stores half a file.

use std::collections::HashSet;
use std::io::{Cursor, Read, Write};

use serde::{Deserialize, Serialize};

use crate::{Label, LabelError, item_id, parse_jsonl, to_jsonl};

/// Largest file accepted, packed and unpacked: everything is held in memory (in the browser
/// too), and larger packs should be split.
pub const MAX_BYTES: u64 = 1 << 30;

/// The `format` field of `pack.json`.
pub const PACK_FORMAT: &str = "synthscope-annotation-pack";
/// The pack layout version this build writes and reads.
pub const PACK_VERSION: u32 = 1;

/// An image carried in an export or a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Hex SHA-256 of `bytes`.
    pub item: String,
    /// File name (no directories).
    pub file: String,
    /// The file's bytes, as uploaded or generated.
    pub bytes: Vec<u8>,
}

impl Image {
    /// An image from its file name and bytes (the item key is computed).
    pub fn new(file: &str, bytes: Vec<u8>) -> Self {
        Self {
            item: item_id(&bytes),
            file: base_name(file),
            bytes,
        }
    }
}

/// One image of a pack, in the order the lead wants it annotated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackItem {
    /// Hex SHA-256 of the image bytes.
    pub item: String,
    /// Path of the image inside the zip (`images/...`).
    pub path: String,
}

/// `pack.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackInfo {
    /// Always [`PACK_FORMAT`].
    pub format: String,
    /// Always [`PACK_VERSION`] for packs this build writes.
    pub version: u32,
    /// The pack id the experts' exports refer to.
    pub id: String,
    /// What the lead asks the experts to do.
    pub instructions: String,
    /// Who made the pack.
    #[serde(default)]
    pub created_by: String,
    /// When, RFC 3339.
    pub created_at: String,
    /// The images, in annotation order.
    pub items: Vec<PackItem>,
}

/// Everything in a label export or a pack, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Archive {
    /// `pack.json` if the file is a pack.
    pub pack: Option<PackInfo>,
    /// The labels of `labels.jsonl` (empty for a pack without labels).
    pub labels: Vec<Label>,
    /// The images under `images/`, in pack order for a pack, else in zip order.
    pub images: Vec<Image>,
}

fn file_error(name: &str, what: impl std::fmt::Display) -> LabelError {
    LabelError::File(format!("{name}: {what}"))
}

/// Reads a label export (zip or bare `labels.jsonl`) or an annotation pack. `name` is the file
/// name, used in messages.
pub fn read(name: &str, bytes: &[u8]) -> Result<Archive, LabelError> {
    read_limited(name, bytes, MAX_BYTES)
}

/// [`read`] with a size limit of `max_bytes` (packed and unpacked).
fn read_limited(name: &str, bytes: &[u8], max_bytes: u64) -> Result<Archive, LabelError> {
    if bytes.is_empty() {
        return Err(file_error(name, "the file is empty"));
    }
    if bytes.len() as u64 > max_bytes {
        return Err(file_error(name, too_large(bytes.len() as u64, max_bytes)));
    }
    if !bytes.starts_with(b"PK\x03\x04") && !bytes.starts_with(b"PK\x05\x06") {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            file_error(
                name,
                "neither a zip nor a labels.jsonl text file; choose a label export or an annotation pack",
            )
        })?;
        let labels = parse_jsonl(text).map_err(|e| in_file(name, e))?;
        if labels.is_empty() {
            return Err(file_error(name, "holds no labels"));
        }
        return Ok(Archive {
            labels,
            ..Archive::default()
        });
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| file_error(name, format!("not a readable zip ({e})")))?;
    let mut unpacked = 0u64;
    let mut pack: Option<PackInfo> = None;
    let mut labels: Option<Vec<Label>> = None;
    let mut images: Vec<(String, Image)> = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| file_error(name, format!("damaged zip entry {} ({e})", i + 1)))?;
        if entry.is_dir() {
            continue;
        }
        let path = entry.name().to_string();
        let wanted = path == "pack.json" || path == "labels.jsonl" || path.starts_with("images/");
        if !wanted {
            continue;
        }
        // Declared sizes can lie (zip bombs): read at most what is left of the budget + 1.
        let budget = max_bytes - unpacked;
        let mut data = Vec::new();
        (&mut entry)
            .take(budget + 1)
            .read_to_end(&mut data)
            .map_err(|e| file_error(name, format!("cannot unpack {path} ({e})")))?;
        unpacked += data.len() as u64;
        if unpacked > max_bytes {
            return Err(file_error(name, too_large(unpacked, max_bytes)));
        }
        match path.as_str() {
            "pack.json" => {
                let info: PackInfo = serde_json::from_slice(&data).map_err(|e| {
                    file_error(name, format!("pack.json is not an annotation pack ({e})"))
                })?;
                if info.format != PACK_FORMAT {
                    return Err(file_error(
                        name,
                        format!(
                            "pack.json has format {:?}, expected {PACK_FORMAT:?}",
                            info.format
                        ),
                    ));
                }
                if info.version > PACK_VERSION {
                    return Err(file_error(
                        name,
                        format!(
                            "pack version {} is newer than this app reads ({PACK_VERSION}); reload the app to update it",
                            info.version
                        ),
                    ));
                }
                pack = Some(info);
            }
            "labels.jsonl" => {
                let text = String::from_utf8(data)
                    .map_err(|_| file_error(name, "labels.jsonl is not UTF-8 text"))?;
                labels = Some(parse_jsonl(&text).map_err(|e| in_file(name, e))?);
            }
            _ => {
                let file = base_name(&path);
                if !file.is_empty() {
                    let mut image = Image::new(&file, data);
                    // Undo the hash prefix `image_paths` adds to a repeated file name.
                    if let Some(plain) = image.file.strip_prefix(&format!("{}-", &image.item[..12]))
                    {
                        image.file = plain.to_string();
                    }
                    images.push((path, image));
                }
            }
        }
    }
    let images = match &pack {
        Some(info) => order_pack_images(name, info, images)?,
        None => images.into_iter().map(|(_, image)| image).collect(),
    };
    if pack.is_none() && labels.is_none() {
        return Err(file_error(
            name,
            "this zip has neither labels.jsonl (a label export) nor pack.json (an annotation pack)",
        ));
    }
    Ok(Archive {
        pack,
        labels: labels.unwrap_or_default(),
        images,
    })
}

/// The pack's images in its order, each checked against the SHA-256 the pack lists for it.
fn order_pack_images(
    name: &str,
    info: &PackInfo,
    images: Vec<(String, Image)>,
) -> Result<Vec<Image>, LabelError> {
    let mut by_path: std::collections::HashMap<String, Image> = images.into_iter().collect();
    let mut ordered = Vec::with_capacity(info.items.len());
    for entry in &info.items {
        let image = by_path.remove(&entry.path).ok_or_else(|| {
            file_error(
                name,
                format!("pack.json lists {} but the zip lacks it", entry.path),
            )
        })?;
        if image.item != entry.item.to_ascii_lowercase() {
            return Err(file_error(
                name,
                format!(
                    "{} is damaged: its SHA-256 differs from the one in pack.json",
                    entry.path
                ),
            ));
        }
        ordered.push(image);
    }
    Ok(ordered)
}

fn in_file(name: &str, e: LabelError) -> LabelError {
    match e {
        LabelError::Line { line, reason } => {
            LabelError::File(format!("{name}: labels.jsonl line {line}: {reason}"))
        }
        LabelError::File(m) => LabelError::File(format!("{name}: {m}")),
    }
}

fn too_large(bytes: u64, max_bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    format!(
        "more than the {:.0} MiB this app reads at once ({:.0} MiB or more); split it into smaller packs or exports",
        max_bytes as f64 / MIB,
        bytes as f64 / MIB
    )
}

/// The last path component, without control characters.
fn base_name(path: &str) -> String {
    path.rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// Zip paths `images/<file>` for `images`, made unique by prefixing a short hash on collision.
fn image_paths(images: &[Image]) -> Vec<String> {
    let mut seen = HashSet::new();
    images
        .iter()
        .map(|image| {
            let plain = format!("images/{}", image.file);
            if !image.file.is_empty() && seen.insert(plain.clone()) {
                plain
            } else {
                let unique = format!("images/{}-{}", &image.item[..12], image.file);
                seen.insert(unique.clone());
                unique
            }
        })
        .collect()
}

fn zip_with(entries: &[(&str, &[u8], bool)]) -> Result<Vec<u8>, LabelError> {
    let err = |e: zip::result::ZipError| LabelError::File(format!("could not build the zip: {e}"));
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (path, data, deflate) in entries {
        // Images are already compressed (PNG) or barely compressible (noisy TIFF): store them.
        let method = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(data.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(*path, options).map_err(err)?;
        zip.write_all(data)
            .map_err(|e| LabelError::File(format!("could not build the zip: {e}")))?;
    }
    Ok(zip.finish().map_err(err)?.into_inner())
}

/// A label export: `labels.jsonl` and the given images under `images/`.
pub fn write_export(labels: &[Label], images: &[Image]) -> Result<Vec<u8>, LabelError> {
    let jsonl = to_jsonl(labels);
    let paths = image_paths(images);
    let mut entries: Vec<(&str, &[u8], bool)> = vec![("labels.jsonl", jsonl.as_bytes(), true)];
    for (path, image) in paths.iter().zip(images) {
        entries.push((path, &image.bytes, false));
    }
    zip_with(&entries)
}

/// An annotation pack of `images` (in that order) with the lead's instructions.
pub fn write_pack(
    id: &str,
    instructions: &str,
    created_by: &str,
    created_at: &str,
    images: &[Image],
) -> Result<Vec<u8>, LabelError> {
    if id.trim().is_empty() {
        return Err(LabelError::File("a pack needs an id".into()));
    }
    if images.is_empty() {
        return Err(LabelError::File(
            "a pack needs at least one image; select some first".into(),
        ));
    }
    let paths = image_paths(images);
    let info = PackInfo {
        format: PACK_FORMAT.into(),
        version: PACK_VERSION,
        id: id.trim().into(),
        instructions: instructions.into(),
        created_by: created_by.into(),
        created_at: created_at.into(),
        items: paths
            .iter()
            .zip(images)
            .map(|(path, image)| PackItem {
                item: image.item.clone(),
                path: path.clone(),
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&info)
        .map_err(|e| LabelError::File(format!("could not write pack.json: {e}")))?;
    let readme = format!(
        "# Annotation pack {}\n\n{}\n\nOpen Synthscope, go to Annotate, and import this zip. Nothing is uploaded: \
         your labels stay in your browser until you export them and send the export back.\n",
        info.id, instructions
    );
    let mut entries: Vec<(&str, &[u8], bool)> = vec![
        ("pack.json", &json, true),
        ("instructions.md", readme.as_bytes(), true),
    ];
    for (path, image) in paths.iter().zip(images) {
        entries.push((path, &image.bytes, false));
    }
    zip_with(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(image: &Image, annotator: &str, realistic: Option<bool>) -> Label {
        Label {
            item: image.item.clone(),
            file: image.file.clone(),
            annotator: annotator.into(),
            realistic,
            tags: vec!["ring".into()],
            note: "looks fine".into(),
            updated_at: "2026-11-23T09:00:00.123Z".into(),
        }
    }

    fn images() -> Vec<Image> {
        vec![
            Image::new("a.png", vec![1, 2, 3]),
            Image::new("dir/a.png", vec![4, 5]),
            Image::new("c.tif", vec![6; 1000]),
        ]
    }

    #[test]
    fn export_round_trips() {
        let images = images();
        let labels: Vec<Label> = images.iter().map(|i| label(i, "ann", Some(true))).collect();
        let zip = write_export(&labels, &images).expect("zip");
        let back = read("export.zip", &zip).expect("read");
        assert_eq!(back.labels, labels);
        assert_eq!(back.images, images);
        assert!(back.pack.is_none());
        // A bare labels.jsonl is an export too.
        let bare = read("labels.jsonl", to_jsonl(&labels).as_bytes()).expect("jsonl");
        assert_eq!(bare.labels, labels);
    }

    #[test]
    fn pack_round_trips_in_order() {
        let images = images();
        let zip = write_pack(
            "round-1",
            "Realistic or fake?",
            "lead",
            "2026-11-23T09:00:00Z",
            &images,
        )
        .expect("zip");
        let back = read("pack.zip", &zip).expect("read");
        let info = back.pack.expect("a pack");
        assert_eq!(info.id, "round-1");
        // Two files named a.png: the second gets a unique path.
        assert_eq!(info.items[0].path, "images/a.png");
        assert!(info.items[1].path.ends_with("-a.png"));
        assert_eq!(back.images, images);
        assert!(back.labels.is_empty());
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let images = images();
        let labels = vec![label(&images[0], "ann", None)];
        let good = write_export(&labels, &images).expect("zip");
        let expect_err = |name: &str, bytes: &[u8], needle: &str| {
            let e = read(name, bytes).expect_err(name).to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
            assert!(e.starts_with(name), "{e}");
        };
        expect_err("empty.zip", &[], "empty");
        expect_err("cut.zip", &good[..good.len() / 2], "not a readable zip");
        expect_err(
            "photo.jpg",
            &[0xff, 0xd8, 0xff, 0xe0, 0x80],
            "neither a zip",
        );
        let mut bad_line = to_jsonl(&labels);
        bad_line.push_str("{\"item\": 3}\n");
        expect_err("labels.jsonl", bad_line.as_bytes(), "labels.jsonl line 2");
        let zip = zip_with(&[("labels.jsonl", bad_line.as_bytes(), true)]).expect("zip");
        expect_err("export.zip", &zip, "line 2");
        let zip = zip_with(&[("notes.txt", b"hello".as_slice(), true)]).expect("zip");
        expect_err("other.zip", &zip, "neither labels.jsonl");
        let zip = zip_with(&[("pack.json", b"{\"format\": 1}".as_slice(), true)]).expect("zip");
        expect_err("pack.zip", &zip, "not an annotation pack");
        // A pack whose image was swapped after packing.
        let pack = write_pack("p", "", "", "2026-11-23T09:00:00Z", &images[..1]).expect("zip");
        let archive = zip::ZipArchive::new(Cursor::new(pack.as_slice())).expect("zip");
        let json: Vec<u8> = {
            let mut a = archive;
            let mut s = Vec::new();
            a.by_name("pack.json")
                .expect("entry")
                .read_to_end(&mut s)
                .expect("read");
            s
        };
        let swapped = zip_with(&[
            ("pack.json", json.as_slice(), true),
            ("images/a.png", [9u8, 9].as_slice(), false),
        ])
        .expect("zip");
        expect_err("pack.zip", &swapped, "damaged");
        let missing = zip_with(&[("pack.json", json.as_slice(), true)]).expect("zip");
        expect_err("pack.zip", &missing, "lacks it");
    }

    #[test]
    fn a_zip_bomb_is_stopped_at_the_limit() {
        // 8 MiB of zeros deflates to 8 KiB; with a 4 MiB limit reading stops after 4 MiB + 1.
        let zeros = vec![0u8; 8 << 20];
        let zip = zip_with(&[
            ("labels.jsonl", b"".as_slice(), true),
            ("images/zeros.raw", zeros.as_slice(), true),
        ])
        .expect("zip");
        assert!(zip.len() < 100_000);
        let e = read_limited("bomb.zip", &zip, 4 << 20)
            .expect_err("too large")
            .to_string();
        assert!(e.contains("4 MiB") && e.contains("split it"), "{e}");
        assert!(read_limited("bomb.zip", &zip, 16 << 20).is_ok());
    }
}
