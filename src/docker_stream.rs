//! Docker's multiplexed stream, which non-TTY exec and attach sessions carry:
//! frames of an 8-byte header `[stream, 0, 0, 0, length as big-endian u32]`
//! and `length` bytes of payload. The one reader of it, shared by the
//! recorder, the tests and the benches.

/// Which stream bytes belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Typed by the client (id 0).
    Stdin,
    /// Process output (id 1).
    Stdout,
    /// Process error output (id 2).
    Stderr,
    /// The daemon's own error frames (id 3, and any other id).
    System,
}

impl Stream {
    /// The stream a frame header's first byte names.
    pub fn from_id(id: u8) -> Self {
        match id {
            0 => Stream::Stdin,
            1 => Stream::Stdout,
            2 => Stream::Stderr,
            _ => Stream::System,
        }
    }

    /// The id a frame header gives it (3 for every system frame).
    pub fn id(self) -> u8 {
        match self {
            Stream::Stdin => 0,
            Stream::Stdout => 1,
            Stream::Stderr => 2,
            Stream::System => 3,
        }
    }

    /// Its name in recordings.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdin => "stdin",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::System => "system",
        }
    }
}

/// Splits a multiplexed stream into per-stream parts as it arrives: frames
/// may split anywhere across reads, and only the headers are copied.
#[derive(Debug, Default)]
pub struct Demux {
    header: [u8; 8],
    filled: usize,
    remaining: usize,
    stream: Option<Stream>,
}

impl Demux {
    /// Feeds bytes; returns the payload parts they complete or continue, in
    /// order (a frame of length 0 gives none).
    pub fn feed<'a>(&mut self, mut data: &'a [u8]) -> Vec<(Stream, &'a [u8])> {
        let mut parts = Vec::new();
        while !data.is_empty() {
            if self.remaining == 0 {
                let take = (8 - self.filled).min(data.len());
                self.header[self.filled..self.filled + take].copy_from_slice(&data[..take]);
                self.filled += take;
                data = &data[take..];
                if self.filled == 8 {
                    self.filled = 0;
                    let [id, _, _, _, a, b, c, d] = self.header;
                    self.stream = Some(Stream::from_id(id));
                    self.remaining = u32::from_be_bytes([a, b, c, d]) as usize;
                }
                continue;
            }
            let take = self.remaining.min(data.len());
            parts.push((self.stream.unwrap_or(Stream::Stdout), &data[..take]));
            self.remaining -= take;
            data = &data[take..];
        }
        parts
    }

    /// Whether what was fed ends on a frame boundary (not inside a header or
    /// a payload).
    pub fn at_boundary(&self) -> bool {
        self.filled == 0 && self.remaining == 0
    }
}

/// The frames of a whole stream, one `(stream, payload)` each (empty ones left
/// out); `None` when it ends inside a frame.
pub fn frames(data: &[u8]) -> Option<Vec<(Stream, &[u8])>> {
    let mut demux = Demux::default();
    let parts = demux.feed(data);
    demux.at_boundary().then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_handles_frames_split_anywhere() {
        let mut stream = Vec::new();
        for (id, payload) in [(1u8, &b"hello "[..]), (2, b"oops"), (1, b"world")] {
            stream.extend_from_slice(&[id, 0, 0, 0]);
            stream.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            stream.extend_from_slice(payload);
        }
        for split in 1..stream.len() {
            let mut demux = Demux::default();
            let mut out: Vec<(Stream, Vec<u8>)> = Vec::new();
            for chunk in [&stream[..split], &stream[split..]] {
                for (s, part) in demux.feed(chunk) {
                    match out.last_mut() {
                        Some((last, bytes)) if *last == s => bytes.extend_from_slice(part),
                        _ => out.push((s, part.to_vec())),
                    }
                }
            }
            let joined: Vec<(Stream, &[u8])> = out.iter().map(|(s, b)| (*s, b.as_slice())).collect();
            assert_eq!(
                joined,
                vec![(Stream::Stdout, &b"hello "[..]), (Stream::Stderr, b"oops"), (Stream::Stdout, b"world")],
                "split at {split}"
            );
        }
    }

    #[test]
    fn whole_streams_split_into_frames_and_a_cut_one_is_refused() {
        let stream = [
            &[1u8, 0, 0, 0, 0, 0, 0, 2][..],
            b"hi",
            &[2, 0, 0, 0, 0, 0, 0, 0],
            &[3, 0, 0, 0, 0, 0, 0, 1],
            b"!",
        ]
        .concat();
        assert_eq!(frames(&stream), Some(vec![(Stream::Stdout, &b"hi"[..]), (Stream::System, &b"!"[..])]));
        assert_eq!(frames(&stream[..stream.len() - 1]), None);
        assert_eq!(frames(&stream[..3]), None);
        assert_eq!(Stream::from_id(Stream::Stderr.id()), Stream::Stderr);
    }
}
