//! HDF5 / NeXus detector files as Eiger detectors and beamline writers produce them.
//!
//! The file structure (superblocks, object headers, B-trees, chunk indices, deflate, shuffle
//! and LZ4 filters, external links) is read by the pure-Rust `hdf5-reader` crate: it builds for
//! wasm32, reads from memory, and bounds every chunk and read before allocating. What it lacks
//! is written here: the bitshuffle-LZ4 filter (HDF5 filter 32008) that Eiger detectors compress
//! every chunk with, finding the frames of a NeXus/Eiger file (`/entry/data/data`, or the
//! `data_000001`… links of a master file to its data files), the detector's `pixel_mask`, its
//! count cutoff, and the geometry of `/entry/instrument/detector`.
//!
//! A stack opens as a series of frames: [`Stack::frame`] reads one, [`Stack::sum`] adds a
//! range. Invalid pixels (the pixel mask, and 2³² − 1 in 32-bit data) come out as −1, the flag
//! every analysis masks.

use std::collections::HashMap;
use std::sync::Arc;

use hdf5_reader::filters::FilterRegistry;
use hdf5_reader::{Dataset, Hdf5File, OpenOptions, SliceInfo, SliceInfoElem};

use crate::Image;
use crate::codec::CodecError;
use crate::detector::FileGeometry;
use crate::load::MAX_PIXELS;

/// HDF5's format signature (at the start of the file, or after a user block of 512 · 2ⁿ bytes).
const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// The bitshuffle filter's registered id (`hdf5plugin.Bitshuffle`, Eiger's compression).
pub const FILTER_BITSHUFFLE: u16 = 32008;

/// Largest chunk any filter may produce: one frame of an Eiger 16M (4150 × 4371 32-bit
/// counts, 69 MiB), the largest detector written a frame a chunk.
const MAX_CHUNK_BYTES: usize = 96 * 1024 * 1024;

/// Whether `bytes` start like an HDF5 file (signature at 0 or 512).
pub fn is_hdf5(bytes: &[u8]) -> bool {
    bytes.starts_with(SIGNATURE) || bytes.get(512..520) == Some(SIGNATURE.as_slice())
}

/// The master file an Eiger data file belongs to, by Dectris's naming: `X_data_000001.h5` →
/// `X_master.h5`; `None` for other names. Its frames are read through that master file.
pub fn master_of(data_file_name: &str) -> Option<String> {
    let (stem, number) = data_file_name.rsplit_once("_data_")?;
    let digits = number.strip_suffix(".h5")?;
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{stem}_master.h5"))
}

fn damaged(what: impl std::fmt::Display) -> CodecError {
    CodecError::Damaged(what.to_string())
}

/// Reverses bitshuffle with LZ4 (filter 32008, compression 2): a 12-byte header (uncompressed
/// size, u64 big-endian; block size in bytes, u32 big-endian), then per block of `block`
/// elements a u32 big-endian compressed size and an LZ4 block whose output is bit-transposed;
/// the last block holds the remaining elements rounded down to a multiple of 8, and the final
/// `elements % 8` elements follow uncompressed.
pub fn bitshuffle_lz4_decode(input: &[u8], element_size: usize) -> Result<Vec<u8>, CodecError> {
    let be_u64 = |b: &[u8]| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let be_u32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if input.len() < 12 || element_size == 0 {
        return Err(damaged("bitshuffle chunk shorter than its header"));
    }
    let total_bytes = be_u64(&input[..8]);
    // LZ4 expands at most ≈ 255 : 1, so a header claiming more than that of its input lies.
    let bound = (input.len() as u64)
        .saturating_mul(256)
        .min(MAX_CHUNK_BYTES as u64);
    if total_bytes > bound {
        return Err(damaged(format!(
            "bitshuffle chunk claims {total_bytes} bytes from {} (limit {bound})",
            input.len()
        )));
    }
    let total_bytes = total_bytes as usize;
    if !total_bytes.is_multiple_of(element_size) {
        return Err(damaged(
            "bitshuffle chunk size is not a whole number of elements",
        ));
    }
    let elements = total_bytes / element_size;
    let block_bytes = be_u32(&input[8..12]);
    let block = if block_bytes == 0 {
        // bitshuffle's default: 8 KiB of elements, a multiple of 8, at least 128.
        ((8192 / element_size) / 8 * 8).max(128)
    } else {
        block_bytes / element_size
    };
    if block == 0 || !block.is_multiple_of(8) {
        return Err(damaged(format!(
            "bitshuffle block of {block} elements (must be a multiple of 8)"
        )));
    }
    let mut out = vec![0u8; total_bytes];
    let mut at = 12usize;
    let mut done = 0usize; // elements written
    let mut scratch = Vec::new();
    let last = (elements % block) / 8 * 8;
    let blocks = std::iter::repeat_n(block, elements / block).chain((last > 0).then_some(last));
    for n in blocks {
        let size = input
            .get(at..at + 4)
            .map(be_u32)
            .ok_or_else(|| damaged("bitshuffle chunk cut short"))?;
        at += 4;
        let compressed = input
            .get(at..at.saturating_add(size))
            .ok_or_else(|| damaged("bitshuffle block runs past the chunk"))?;
        at += size;
        scratch.resize(n * element_size, 0);
        let written = lz4_flex::block::decompress_into(compressed, &mut scratch)
            .map_err(|e| damaged(format!("LZ4 block: {e}")))?;
        if written != scratch.len() {
            return Err(damaged("LZ4 block shorter than its bitshuffle block"));
        }
        bit_untranspose(
            &scratch,
            &mut out[done * element_size..(done + n) * element_size],
            n,
            element_size,
        );
        done += n;
    }
    let rest = (elements - done) * element_size;
    let tail = input
        .get(at..at + rest)
        .ok_or_else(|| damaged("bitshuffle chunk lacks its last elements"))?;
    out[done * element_size..].copy_from_slice(tail);
    Ok(out)
}

/// Undoes bitshuffle's transpose of `n` elements (`n` a multiple of 8) of `size` bytes: row
/// `b·8 + j` of the input holds bit `j` of byte `b` of every element, element `i` at bit
/// `i % 8` of the row's byte `i / 8`.
fn bit_untranspose(input: &[u8], out: &mut [u8], n: usize, size: usize) {
    let row_bytes = n / 8;
    for b in 0..size {
        for group in 0..row_bytes {
            // The 8 rows' bytes for elements 8·group … 8·group + 7: an 8 × 8 bit matrix.
            let mut rows = [0u8; 8];
            for (j, r) in rows.iter_mut().enumerate() {
                *r = input[(b * 8 + j) * row_bytes + group];
            }
            for k in 0..8 {
                let mut byte = 0u8;
                for (j, r) in rows.iter().enumerate() {
                    byte |= ((r >> k) & 1) << j;
                }
                out[(group * 8 + k) * size + b] = byte;
            }
        }
    }
}

/// The registry `hdf5-reader` applies: its built-in filters and bitshuffle (with LZ4 only).
fn filters() -> FilterRegistry {
    let mut registry = FilterRegistry::new();
    registry.register(
        FILTER_BITSHUFFLE,
        Box::new(|description, data, element_size| {
            // client data: major, minor, element size, block size, compression (2 = LZ4).
            let cd = &description.client_data;
            let size = cd.get(2).map_or(element_size, |&s| s as usize);
            match cd.get(4).copied().unwrap_or(0) {
                2 => bitshuffle_lz4_decode(data, size)
                    .map_err(|e| hdf5_reader::error::Error::InvalidData(e.to_string())),
                0 => {
                    // Bitshuffle alone: the whole chunk is one transposed block, plus the
                    // elements past the last multiple of 8.
                    let n = data.len() / size.max(1) / 8 * 8;
                    let mut out = data.to_vec();
                    bit_untranspose(&data[..n * size], &mut out[..n * size], n, size);
                    Ok(out)
                }
                other => Err(hdf5_reader::error::Error::UnsupportedFilter(format!(
                    "bitshuffle with compression {other} (only LZ4 is read; zstd is not)"
                ))),
            }
        }),
    );
    registry
}

/// Gives the bytes of a file an external link names (by its file name, without folders), if
/// the user gave it: an Eiger master file's data files.
pub type Linked = Arc<dyn Fn(&str) -> Option<Arc<[u8]>> + Send + Sync>;

/// Files given in memory, by name, as a [`Linked`].
pub fn linked_from(files: Vec<(String, Arc<[u8]>)>) -> Linked {
    let files: HashMap<String, Arc<[u8]>> = files.into_iter().collect();
    Arc::new(move |name| files.get(name).cloned())
}

/// No other files.
pub fn nothing_linked() -> Linked {
    Arc::new(|_| None)
}

struct Siblings(Linked);

impl hdf5_reader::ExternalLinkResolver for Siblings {
    fn resolve_external_link(
        &self,
        filename: &str,
    ) -> hdf5_reader::error::Result<Option<Hdf5File>> {
        // Links name files relative to the master; only the name is matched.
        let name = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
        match (self.0)(name) {
            Some(bytes) => Hdf5File::from_shared_bytes_with_options(bytes, options(None)).map(Some),
            // An error, not `None` (which the reader takes as "leave the link out"), so the
            // user hears which file is missing.
            None => Err(hdf5_reader::error::Error::InvalidData(format!(
                "external link to {name}, which was not given"
            ))),
        }
    }
}

fn options(siblings: Option<Arc<Siblings>>) -> OpenOptions {
    let o = OpenOptions::default()
        .with_filter_registry(filters())
        .with_max_chunk_bytes(MAX_CHUNK_BYTES)
        // One frame at a time is read: at most the pixel limit of 8-byte values.
        .with_max_read_bytes(MAX_PIXELS * 8)
        .with_max_object_header_bytes(16 * 1024 * 1024);
    match siblings {
        Some(s) => o.with_external_link_resolver(s),
        None => o,
    }
}

/// The pixel type of a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// Unsigned integers of 1, 2, 4 or 8 bytes.
    Unsigned(u8),
    /// Signed integers of 1, 2, 4 or 8 bytes.
    Signed(u8),
    /// IEEE floats of 4 or 8 bytes.
    Float(u8),
}

impl Sample {
    fn of(dataset: &Dataset) -> Option<Self> {
        match *dataset.dtype() {
            hdf5_reader::Datatype::FixedPoint { size, signed, .. } => Some(if signed {
                Sample::Signed(size)
            } else {
                Sample::Unsigned(size)
            }),
            hdf5_reader::Datatype::FloatingPoint { size, .. } => Some(Sample::Float(size)),
            _ => None,
        }
    }

    /// "u32", "i16", "f32", …
    pub fn name(self) -> String {
        match self {
            Sample::Unsigned(s) => format!("u{}", 8 * u32::from(s)),
            Sample::Signed(s) => format!("i{}", 8 * u32::from(s)),
            Sample::Float(s) => format!("f{}", 8 * u32::from(s)),
        }
    }
}

/// A detector file's frames: one 2-D image or a 3-D stack of them.
pub struct Stack {
    dataset: Dataset,
    /// Where the frames are (`/entry/data/data`, `/entry/data/data_000001`, …).
    pub path: String,
    /// Number of frames (1 for a 2-D dataset).
    pub frames: usize,
    /// Frame width in pixels.
    pub width: usize,
    /// Frame height in pixels.
    pub height: usize,
    /// Pixel type.
    pub sample: Sample,
    /// `true` where the detector's `pixel_mask` flags a pixel (gap, dead, hot…).
    mask: Option<Vec<bool>>,
    /// Counts above which the detector does not count reliably
    /// (`countrate_correction_count_cutoff` or `saturation_value`).
    pub cutoff_counts: Option<f64>,
    /// What `/entry/instrument` says of the set-up.
    pub geometry: FileGeometry,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("path", &self.path)
            .field("frames", &self.frames)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("sample", &self.sample)
            .field(
                "masked",
                &self.mask.as_ref().map(|m| m.iter().filter(|x| **x).count()),
            )
            .field("cutoff_counts", &self.cutoff_counts)
            .field("geometry", &self.geometry)
            .finish()
    }
}

fn reader_error(e: hdf5_reader::error::Error) -> CodecError {
    damaged(e)
}

/// A numeric scalar (or the first value of a small array) as `f64`, in the dataset's `units`
/// converted by `scale` (unit → factor); `None` if absent or not a number.
fn number(file: &Hdf5File, path: &str, scale: &[(&str, f64)]) -> Option<f64> {
    let ds = file.dataset(path).ok()?;
    if ds.num_elements().ok()? > 16 {
        return None;
    }
    let value = match Sample::of(&ds)? {
        Sample::Float(8) => ds.read_array::<f64>().ok()?.iter().next().copied(),
        Sample::Float(4) => ds
            .read_array::<f32>()
            .ok()?
            .iter()
            .next()
            .map(|&v| f64::from(v)),
        Sample::Unsigned(4) => ds
            .read_array::<u32>()
            .ok()?
            .iter()
            .next()
            .map(|&v| f64::from(v)),
        Sample::Signed(4) => ds
            .read_array::<i32>()
            .ok()?
            .iter()
            .next()
            .map(|&v| f64::from(v)),
        Sample::Unsigned(8) => ds
            .read_array::<u64>()
            .ok()?
            .iter()
            .next()
            .map(|&v| v as f64),
        Sample::Signed(8) => ds
            .read_array::<i64>()
            .ok()?
            .iter()
            .next()
            .map(|&v| v as f64),
        Sample::Unsigned(2) => ds
            .read_array::<u16>()
            .ok()?
            .iter()
            .next()
            .map(|&v| f64::from(v)),
        _ => None,
    }?;
    let units = ds
        .attribute("units")
        .ok()
        .and_then(|a| a.read_string().ok())
        .unwrap_or_default();
    let factor = scale
        .iter()
        .find(|(u, _)| *u == units.trim())
        .map_or(1.0, |(_, f)| *f);
    value.is_finite().then_some(value * factor)
}

/// Whether `e` says an external link could not be followed (its target file is missing).
fn is_link_error(e: &hdf5_reader::error::Error) -> bool {
    e.to_string().contains("external link")
}

/// Where the frames are: `/entry/data/data`, else the first `/entry/data/data_NNNNNN`, else
/// the first 2-D or 3-D numeric dataset under `/entry/data` or `/entry`.
fn find_frames(file: &Hdf5File) -> Result<(String, Dataset), CodecError> {
    let image_like = |ds: &Dataset| (2..=3).contains(&ds.ndim()) && Sample::of(ds).is_some();
    if let Ok(ds) = file.dataset("/entry/data/data")
        && image_like(&ds)
    {
        return Ok(("/entry/data/data".into(), ds));
    }
    // An Eiger master file: its frames are in data files its links name.
    let first_link = "/entry/data/data_000001";
    match file.dataset(first_link) {
        Ok(ds) if image_like(&ds) => return Ok((first_link.into(), ds)),
        Ok(_) => {}
        Err(e) if file.group("/entry/data").is_ok() && is_link_error(&e) => {
            return Err(CodecError::Unsupported(format!(
                "{first_link} is in another file ({e}): give the data files \
                 (…_data_000001.h5) together with the master file"
            )));
        }
        Err(_) => {}
    }
    for group in ["/entry/data", "/entry"] {
        let Ok(g) = file.group(group) else { continue };
        let Ok((_, mut names)) = g.member_names() else {
            continue;
        };
        names.sort();
        for name in names {
            let path = format!("{group}/{name}");
            if let Ok(ds) = file.dataset(&path)
                && image_like(&ds)
            {
                return Ok((path, ds));
            }
        }
    }
    Err(CodecError::Unsupported(
        "no image data found (looked for /entry/data/data, /entry/data/data_000001 and any \
         2-D or 3-D numeric dataset under /entry)"
            .into(),
    ))
}

/// Opens an HDF5/NeXus file held in memory; `linked` gives the files its external links name
/// (an Eiger master file's data files).
pub fn open(bytes: Arc<[u8]>, linked: Linked) -> Result<Stack, CodecError> {
    let siblings = Arc::new(Siblings(linked));
    let file = Hdf5File::from_shared_bytes_with_options(bytes, options(Some(siblings)))
        .map_err(reader_error)?;
    let (path, dataset) = find_frames(&file)?;
    let sample = Sample::of(&dataset)
        .ok_or_else(|| CodecError::Unsupported(format!("{path} is not numeric")))?;
    let shape = dataset.shape().to_vec();
    let (frames, height, width) = match shape.as_slice() {
        [h, w] => (1, *h, *w),
        [n, h, w] => (*n, *h, *w),
        _ => return Err(CodecError::Unsupported(format!("{path} is not 2-D or 3-D"))),
    };
    let (width, height) = (width as usize, height as usize);
    if width == 0 || height == 0 || frames == 0 {
        return Err(CodecError::Unsupported(format!(
            "{path} holds no pixels ({shape:?})"
        )));
    }
    if width.saturating_mul(height) > MAX_PIXELS {
        return Err(damaged(format!(
            "{path}: frames of {width} × {height} pixels are beyond the {} megapixel limit",
            MAX_PIXELS / 1_000_000
        )));
    }
    let det = "/entry/instrument/detector";
    let mask = read_mask(
        &file,
        &format!("{det}/detectorSpecific/pixel_mask"),
        width,
        height,
    )
    .or_else(|| read_mask(&file, &format!("{det}/pixel_mask"), width, height));
    let metres = [
        ("m", 1.0),
        ("mm", 1e-3),
        ("um", 1e-6),
        ("µm", 1e-6),
        ("microns", 1e-6),
    ];
    let pixel = |axis: &str| number(&file, &format!("{det}/{axis}_pixel_size"), &metres);
    let geometry = FileGeometry {
        pixel_size_um: pixel("x").zip(pixel("y")).map(|(x, y)| (x * 1e6, y * 1e6)),
        wavelength_angstrom: number(
            &file,
            "/entry/instrument/beam/incident_wavelength",
            &[
                ("angstrom", 1.0),
                ("Angstrom", 1.0),
                ("A", 1.0),
                ("nm", 10.0),
                ("m", 1e10),
            ],
        ),
        distance_m: number(&file, &format!("{det}/detector_distance"), &metres)
            .or_else(|| number(&file, &format!("{det}/distance"), &metres)),
        beam_xy_px: number(&file, &format!("{det}/beam_center_x"), &[]).zip(number(
            &file,
            &format!("{det}/beam_center_y"),
            &[],
        )),
        exposure_s: number(
            &file,
            &format!("{det}/count_time"),
            &[("s", 1.0), ("ms", 1e-3)],
        ),
    };
    let cutoff_counts = number(
        &file,
        &format!("{det}/detectorSpecific/countrate_correction_count_cutoff"),
        &[],
    )
    .or_else(|| number(&file, &format!("{det}/saturation_value"), &[]));
    Ok(Stack {
        dataset,
        path,
        frames: frames as usize,
        width,
        height,
        sample,
        mask,
        cutoff_counts,
        geometry,
    })
}

/// `selection` of a numeric dataset, whatever its pixel type, each value through `convert`
/// (as `f64`, which holds every 32-bit value exactly).
fn read_numbers<O>(
    ds: &Dataset,
    selection: &SliceInfo,
    convert: impl Fn(f64) -> O,
) -> Result<Vec<O>, CodecError> {
    fn each<T: hdf5_reader::H5Type + Copy, O>(
        ds: &Dataset,
        selection: &SliceInfo,
        to_f64: impl Fn(T) -> f64,
        convert: impl Fn(f64) -> O,
    ) -> Result<Vec<O>, CodecError> {
        let values = ds.read_slice::<T>(selection).map_err(reader_error)?;
        Ok(values.iter().map(|&v| convert(to_f64(v))).collect())
    }
    match Sample::of(ds) {
        Some(Sample::Unsigned(1)) => each(ds, selection, |v: u8| f64::from(v), convert),
        Some(Sample::Unsigned(2)) => each(ds, selection, |v: u16| f64::from(v), convert),
        Some(Sample::Unsigned(4)) => each(ds, selection, |v: u32| f64::from(v), convert),
        Some(Sample::Signed(1)) => each(ds, selection, |v: i8| f64::from(v), convert),
        Some(Sample::Signed(2)) => each(ds, selection, |v: i16| f64::from(v), convert),
        Some(Sample::Signed(4)) => each(ds, selection, |v: i32| f64::from(v), convert),
        Some(Sample::Float(4)) => each(ds, selection, |v: f32| f64::from(v), convert),
        Some(Sample::Float(8)) => each(ds, selection, |v: f64| v, convert),
        other => Err(CodecError::Unsupported(format!(
            "{} holds {} values; 8/16/32-bit integers and 32/64-bit floats are read",
            ds.name(),
            other.map_or("non-numeric".to_string(), Sample::name)
        ))),
    }
}

/// A `pixel_mask` of the frame size (non-zero = excluded), if the file has one.
fn read_mask(file: &Hdf5File, path: &str, width: usize, height: usize) -> Option<Vec<bool>> {
    let ds = file.dataset(path).ok()?;
    if ds.shape() != [height as u64, width as u64] {
        return None;
    }
    read_numbers(&ds, &SliceInfo::all(2), |v| v != 0.0).ok()
}

impl Stack {
    /// Frame `index` as counts; masked pixels (and 2³² − 1 in 32-bit unsigned data) are −1.
    pub fn frame(&self, index: usize) -> Result<Image<f32>, CodecError> {
        if index >= self.frames {
            return Err(CodecError::Unsupported(format!(
                "frame {index} asked for; {} has frames 0 to {}",
                self.path,
                self.frames - 1
            )));
        }
        let selection = if self.dataset.ndim() == 3 {
            SliceInfo {
                selections: vec![
                    SliceInfoElem::Index(index as u64),
                    SliceInfoElem::Slice {
                        start: 0,
                        end: self.height as u64,
                        step: 1,
                    },
                    SliceInfoElem::Slice {
                        start: 0,
                        end: self.width as u64,
                        step: 1,
                    },
                ],
            }
        } else {
            SliceInfo::all(2)
        };
        let values = read_numbers(&self.dataset, &selection, |v| {
            // 2³² − 1 marks masked pixels in 32-bit unsigned (Eiger) data.
            if self.sample == Sample::Unsigned(4) && v == f64::from(u32::MAX) {
                -1.0
            } else {
                v as f32
            }
        })?;
        let mut image = Image::from_vec(self.width, self.height, values)?;
        if let Some(mask) = &self.mask {
            for (v, &m) in image.pixels_mut().iter_mut().zip(mask) {
                if m {
                    *v = -1.0;
                }
            }
        }
        Ok(image)
    }

    /// The sum of frames `first..=last`; a pixel invalid in any frame stays −1.
    pub fn sum(&self, first: usize, last: usize) -> Result<Image<f32>, CodecError> {
        if first > last {
            return Err(CodecError::Unsupported(format!(
                "frames {first} to {last}: the first must not come after the last"
            )));
        }
        if first == last {
            // One frame: no running total (it would double the memory of a large frame).
            return self.frame(first);
        }
        let mut total = vec![0f64; self.width * self.height];
        for index in first..=last {
            let frame = self.frame(index)?;
            for (t, &v) in total.iter_mut().zip(frame.pixels()) {
                *t = if v < 0.0 || *t < 0.0 {
                    -1.0
                } else {
                    *t + f64::from(v)
                };
            }
        }
        Ok(Image::from_vec(
            self.width,
            self.height,
            total.into_iter().map(|v| v as f32).collect(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bitshuffle's forward transpose, written from its definition, to test the inverse.
    fn bit_transpose(input: &[u8], n: usize, size: usize) -> Vec<u8> {
        let row_bytes = n / 8;
        let mut out = vec![0u8; input.len()];
        for i in 0..n {
            for b in 0..size {
                for j in 0..8 {
                    if (input[i * size + b] >> j) & 1 == 1 {
                        out[(b * 8 + j) * row_bytes + i / 8] |= 1 << (i % 8);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_bit_transpose_inverts() {
        let (n, size) = (24, 4);
        let data: Vec<u8> = (0..n * size).map(|i| (i * 37 + 11) as u8).collect();
        let shuffled = bit_transpose(&data, n, size);
        let mut back = vec![0u8; data.len()];
        bit_untranspose(&shuffled, &mut back, n, size);
        assert_eq!(back, data);
    }

    #[test]
    fn a_bitshuffle_lz4_stream_decodes_with_blocks_and_a_tail() {
        // 21 u16 elements in blocks of 8: two full blocks, then 5 raw elements.
        let (size, n) = (2usize, 21usize);
        let data: Vec<u8> = (0..n * size).map(|i| (i * 7) as u8).collect();
        let mut stream = Vec::new();
        stream.extend_from_slice(&((n * size) as u64).to_be_bytes());
        stream.extend_from_slice(&((8 * size) as u32).to_be_bytes());
        for block in 0..2 {
            let raw = &data[block * 8 * size..(block + 1) * 8 * size];
            let packed = lz4_flex::block::compress(&bit_transpose(raw, 8, size));
            stream.extend_from_slice(&(packed.len() as u32).to_be_bytes());
            stream.extend_from_slice(&packed);
        }
        stream.extend_from_slice(&data[16 * size..]);
        assert_eq!(bitshuffle_lz4_decode(&stream, size).expect("decodes"), data);
        // A header that claims far more than LZ4 can expand to is refused before allocating.
        let mut lying = stream.clone();
        lying[..8].copy_from_slice(&(1u64 << 40).to_be_bytes());
        let err = bitshuffle_lz4_decode(&lying, size).expect_err("refused");
        assert!(err.to_string().contains("claims"), "{err}");
        // Cut short: an error, not a panic.
        for cut in [0, 5, 12, 15, stream.len() - 1] {
            assert!(
                bitshuffle_lz4_decode(&stream[..cut], size).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn eiger_data_files_name_their_master() {
        assert_eq!(
            master_of("series_7_data_000001.h5").as_deref(),
            Some("series_7_master.h5")
        );
        for other in [
            "series_master.h5",
            "data_000001.h5",
            "x_data_01.h5",
            "x_data_000001.nxs",
        ] {
            assert_eq!(master_of(other), None, "{other}");
        }
    }

    #[test]
    fn hdf5_files_are_recognised_by_their_signature() {
        assert!(is_hdf5(b"\x89HDF\r\n\x1a\nrest"));
        let mut with_user_block = vec![0u8; 512];
        with_user_block.extend_from_slice(SIGNATURE);
        assert!(is_hdf5(&with_user_block));
        assert!(!is_hdf5(b"\x89PNG\r\n\x1a\n"));
    }
}
