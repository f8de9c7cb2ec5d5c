//! Entry points for the fuzz targets (`fuzz/`) and the property tests
//! (`tests/properties.rs`): thin wrappers that reach the parsers of untrusted
//! input the public API does not expose. Not an API: hidden, and it may
//! change with them at any time.
//!
//! The parsers already public are used from where they live:
//! [`crate::gate::create::ExecConfig::decode`],
//! [`crate::gate::start::StartConfig::decode`], [`crate::gate::user`] and
//! [`crate::docker_stream::Demux`].

use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::audit::verify::{Broken, Report};
pub use crate::docker_stream::{Demux, Stream};
pub use crate::http::route::{BadPath, Prefix, Route};

/// `route::classify` for `method` and a raw (percent-encoded) `path`; `None`
/// when `method` is not an HTTP method token (hyper refuses those before
/// execgate sees them).
pub fn route(method: &str, path: &str) -> Option<Result<Route, BadPath>> {
    let method = hyper::Method::from_bytes(method.as_bytes()).ok()?;
    Some(crate::http::route::classify(&method, path))
}

/// The multiplexed stream fed to one [`Demux`] in `chunks`, in order: the
/// payload parts, with adjacent parts of the same stream joined (a recording
/// reads them as one run of bytes).
pub fn demux<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<(Stream, Vec<u8>)> {
    let mut demux = Demux::default();
    let mut out: Vec<(Stream, Vec<u8>)> = Vec::new();
    for chunk in chunks {
        for (stream, part) in demux.feed(chunk) {
            match out.last_mut() {
                Some((last, bytes)) if *last == stream => bytes.extend_from_slice(part),
                _ => out.push((stream, part.to_vec())),
            }
        }
    }
    out
}

/// The recorder's split of a stream's pending bytes into text and raw bytes
/// (`recording::split_utf8`): what comes back, and what stays in `buf` for
/// the next chunk.
pub fn split_utf8(buf: &mut Vec<u8>) -> (Option<String>, Option<Vec<u8>>) {
    crate::audit::recording::split_utf8(buf)
}

/// `audit verify` over a directory holding exactly `files` as the log files
/// (`audit-000000000001.jsonl`, `…2.jsonl`, … in order) and, when given,
/// `anchors` as its anchor file. The directory is a fresh one under the
/// system temp dir (`TMPDIR`), removed afterwards.
pub fn verify_log(files: &[&[u8]], anchors: Option<&[u8]>) -> Result<Report, Broken> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "execgate-fuzz-verify-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let written = (|| -> std::io::Result<()> {
        std::fs::create_dir(&dir)?;
        for (index, bytes) in files.iter().enumerate() {
            std::fs::write(dir.join(crate::audit::chain::file_name(index as u64 + 1)), bytes)?;
        }
        if let Some(anchors) = anchors {
            std::fs::write(crate::audit::default_anchor_file(&dir), anchors)?;
        }
        Ok(())
    })();
    let result = match written {
        Ok(()) => crate::audit::verify::verify(&dir, None),
        Err(err) => panic!("cannot prepare {}: {err}", dir.display()),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}
