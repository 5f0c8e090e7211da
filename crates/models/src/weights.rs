//! The layout every Synthscope weights file shares: an 8-byte magic naming the model family, the
//! length of a JSON header (u32, little endian), the header, then the burnpack records of the
//! networks back to back. The header records each record's length, so a truncated or padded file
//! is refused before any weight is read.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A weights file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightsError {
    /// Not a file of this model family, or damaged.
    #[error("{0}")]
    Format(String),
    /// The weights do not fit the architecture in the header.
    #[error("{0}")]
    Weights(String),
}

/// The burnpack bytes of a module's weights.
pub fn record_bytes<M: Module>(module: &M) -> Result<Vec<u8>, WeightsError> {
    module
        .clone()
        .into_record()
        .into_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| WeightsError::Weights(e.to_string()))
}

/// Loads burnpack bytes into `module` (freshly initialised with the right shape).
pub fn load_record<M: Module>(module: M, bytes: &[u8]) -> Result<M, WeightsError> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| WeightsError::Weights(e.to_string()))?;
    module
        .try_load_record(record)
        .map_err(|e| WeightsError::Weights(e.to_string()))
}

/// A network shape that can say, without building it, how many parameters it has at least: a
/// header asking for more than its record can hold is refused before anything is allocated (a
/// damaged or hostile file could otherwise ask `init` for terabytes; the fuzzing campaign of
/// `tests/fuzz.rs` found such files).
pub trait Shape {
    /// A lower bound of the parameter count (saturating: never overflows).
    fn min_parameters(&self) -> usize;
    /// Whether the network can be built at all (no zero widths, GroupNorm groups that divide
    /// their widths): burn's `init` panics otherwise.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Whether the GroupNorm of `width` channels that the CNNs use (`(width / 8).max(1)` groups)
/// divides them.
pub fn group_norm_fits(width: usize) -> bool {
    width > 0 && width.is_multiple_of((width / 8).max(1))
}

/// Refuses `shape` when it cannot be built, or when its record of `record_bytes` cannot hold
/// its parameters at 2 bytes each (half precision, the smallest burn writes).
pub fn check_budget(shape: &impl Shape, record_bytes: usize) -> Result<(), WeightsError> {
    shape.check().map_err(|e| {
        WeightsError::Format(format!(
            "the header describes a network that cannot be built: {e}"
        ))
    })?;
    let at_least = shape.min_parameters();
    if at_least.saturating_mul(2) > record_bytes {
        return Err(WeightsError::Format(format!(
            "the header describes a network of at least {at_least} parameters, more than its \
             {record_bytes}-byte record holds: the file is damaged"
        )));
    }
    Ok(())
}

/// Joins magic, header and records into one file.
pub fn join(magic: &[u8; 8], header_json: &[u8], records: &[Vec<u8>]) -> Vec<u8> {
    let body: usize = records.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(12 + header_json.len() + body);
    out.extend_from_slice(magic);
    out.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
    out.extend_from_slice(header_json);
    for r in records {
        out.extend_from_slice(r);
    }
    out
}

/// Splits a file into its JSON header and everything after it; checks the magic.
pub fn split<'a>(magic: &[u8; 8], bytes: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), WeightsError> {
    if bytes.len() < 12 || &bytes[..8] != magic {
        return Err(WeightsError::Format(format!(
            "it does not start with {}",
            String::from_utf8_lossy(magic)
        )));
    }
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let json = bytes
        .get(12..12 + len)
        .ok_or_else(|| WeightsError::Format("the header is truncated".into()))?;
    Ok((json, &bytes[12 + len..]))
}

/// Cuts the records of the given lengths; the lengths must cover `body` exactly.
pub fn records<'a>(body: &'a [u8], lengths: &[usize]) -> Result<Vec<&'a [u8]>, WeightsError> {
    let expected: usize = lengths.iter().sum();
    if body.len() != expected {
        return Err(WeightsError::Format(format!(
            "{} bytes of weights, expected {expected}: the file is truncated or has trailing data",
            body.len()
        )));
    }
    let mut out = Vec::with_capacity(lengths.len());
    let mut start = 0;
    for &n in lengths {
        out.push(&body[start..start + n]);
        start += n;
    }
    Ok(out)
}

/// The JSON header of a file holding several networks of one family: it lists, besides
/// whatever describes the networks, the byte length of each record.
pub trait SetHeader: Serialize + DeserializeOwned + Clone {
    /// How many networks the header describes.
    fn networks(&self) -> usize;
    /// The byte length of each record, in order.
    fn record_lengths(&self) -> &[usize];
    /// Sets the byte lengths before writing.
    fn set_record_lengths(&mut self, lengths: Vec<usize>);
}

/// Serialises `nets` under `header` (whose record lengths are filled in).
pub fn write_set<M: Module, H: SetHeader>(
    magic: &[u8; 8],
    header: &H,
    nets: &[M],
) -> Result<Vec<u8>, WeightsError> {
    let records = nets
        .iter()
        .map(record_bytes)
        .collect::<Result<Vec<_>, _>>()?;
    let mut header = header.clone();
    header.set_record_lengths(records.iter().map(Vec::len).collect());
    let json = serde_json::to_vec(&header).map_err(|e| WeightsError::Format(e.to_string()))?;
    Ok(join(magic, &json, &records))
}

/// The header and the record of each network of a file written by [`write_set`].
pub fn read_set<'a, H: SetHeader>(
    magic: &[u8; 8],
    bytes: &'a [u8],
) -> Result<(H, Vec<&'a [u8]>), WeightsError> {
    let (json, body) = split(magic, bytes)?;
    let header: H = serde_json::from_slice(json)
        .map_err(|e| WeightsError::Format(format!("bad header: {e}")))?;
    if header.networks() != header.record_lengths().len() {
        return Err(WeightsError::Format(
            "the header does not describe the records that follow".into(),
        ));
    }
    let parts = records(body, header.record_lengths())?;
    Ok((header, parts))
}

/// Each network built by `init` from its config and loaded from its record (every shape is
/// checked against its record's size before any network is built).
pub fn load_all<C: Shape, M: Module>(
    configs: &[C],
    records: Vec<&[u8]>,
    init: impl Fn(&C) -> M,
) -> Result<Vec<M>, WeightsError> {
    for (c, bytes) in configs.iter().zip(&records) {
        check_budget(c, bytes.len())?;
    }
    configs
        .iter()
        .zip(records)
        .map(|(c, bytes)| load_record(init(c), bytes))
        .collect()
}
