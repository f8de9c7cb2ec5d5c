//! The hash chain shared by the writer and the verifier: each record carries
//! the SHA-256 of the previous record's exact line bytes.

use sha2::{Digest, Sha256};

/// A record's hash: SHA-256 of its line, without the newline.
pub type Hash = [u8; 32];

/// The `prev` of the very first record of a log.
pub const GENESIS: Hash = [0; 32];

/// Hashes one line.
pub fn hash(line: &[u8]) -> Hash {
    Sha256::digest(line).into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// Log file names sort in chain order: `audit-<first seq, 12 digits>.jsonl`.
pub fn file_name(first_seq: u64) -> String {
    format!("audit-{first_seq:012}.jsonl")
}

/// Whether `name` is a log file name.
pub fn is_log_file(name: &str) -> bool {
    name.starts_with("audit-") && name.ends_with(".jsonl")
}

/// The log files in `dir`, in chain order.
pub fn log_files(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(is_log_file))
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_names() {
        assert_eq!(hex(&[0x00, 0xab, 0x10]), "00ab10");
        assert_eq!(hex(&hash(b"")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(file_name(7), "audit-000000000007.jsonl");
        assert!(is_log_file(&file_name(7)) && !is_log_file("anchors.jsonl"));
    }
}
