//! SHA-256 checksums of weight files (`<file>.sha256`, in `sha256sum` format).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `model.bin` → `model.bin.sha256`.
pub(crate) fn sidecar(path: &Path) -> PathBuf {
    with_suffix(path, ".sha256")
}

/// The path with `suffix` appended to its file name (`grain.bin` → `grain.bin.ckpt`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}
