//! `execgate audit verify`'s log reader (`audit::verify::verify`, over a
//! temporary audit directory holding the input's files); the properties are
//! `execgate_fuzz::checks::verify_raw`'s and `verify_built`'s.
//!
//! Input, by the parity of its first byte (`arbitrary`): raw log files and an
//! anchor file, any bytes; or a log built as the writer builds it from
//! fuzzed records, anchors and one tampering.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use execgate_fuzz::checks::{self, Built};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Raw {
    files: Vec<Vec<u8>>,
    anchors: Option<Vec<u8>>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut u = Unstructured::new(rest);
    if mode & 1 == 0 {
        let Ok(raw) = Raw::arbitrary_take_rest(u) else { return };
        let files: Vec<&[u8]> = raw.files.iter().take(4).map(Vec::as_slice).collect();
        checks::verify_raw(&files, raw.anchors.as_deref());
    } else if let Ok(built) = Built::arbitrary(&mut u) {
        checks::verify_built(&built);
    }
});
