//! The Docker stream demuxer (`docker_stream::Demux`) and the recorder's text/raw
//! split behind it; the properties are `execgate_fuzz::checks::demux`'s.
//!
//! Input: `[k][k split points, u16 LE][stream bytes]`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else { return };
    let k = usize::from(k % 16).min(rest.len() / 2);
    let (points, bytes) = rest.split_at(2 * k);
    let mut cuts: Vec<usize> =
        points.chunks(2).map(|p| usize::from(u16::from_le_bytes([p[0], p[1]])) % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    execgate_fuzz::checks::demux(bytes, &cuts);
});
