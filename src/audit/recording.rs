//! Session recordings ("tee"): everything typed and printed in an exec, with
//! timestamps, written by one recorder thread so the stream never waits on a
//! disk or a hash.
//!
//! The stream pumps hold [`Tap`]s: they demultiplex output frames (cheap: only
//! the 8-byte headers are read), count bytes, apply the size cap and pass
//! copies to the recorder. TTY sessions become asciicast v2 (`asciinema play`
//! replays them); others become JSON lines naming the stream of each event.
//! Valid UTF-8 is stored as text; anything else as base64 beside it, so a
//! recording is lossless.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::chain;
use super::log::AuditLog;

/// Messages queued to the recorder before a pump waits (backpressure, not loss).
const QUEUE: usize = 1024;
/// How often a live recording is synced and its prefix hash logged.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// What a session recording keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordMode {
    /// stdin, stdout and stderr.
    All,
    /// stdout and stderr only (keeps secrets typed into shells out of the trail).
    Output,
    /// Nothing: sessions are counted, not recorded.
    None,
}

/// Which stream bytes belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Typed by the client.
    Stdin,
    /// Process output.
    Stdout,
    /// Process error output.
    Stderr,
    /// The daemon's own error frames.
    System,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdin => "stdin",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::System => "system",
        }
    }
}

/// What a recording starts with.
#[derive(Debug, Clone)]
pub struct Header {
    /// The exec.
    pub exec_id: String,
    /// Container name.
    pub container: String,
    /// Command and arguments.
    pub command: Vec<String>,
    /// Effective user spec.
    pub user: String,
    /// Raw TTY stream (asciicast) or multiplexed frames (JSON lines).
    pub tty: bool,
    /// Initial terminal size `[height, width]`.
    pub console: Option<[u64; 2]>,
}

/// How a finished recording ended up on disk.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Path relative to the audit directory.
    pub path: String,
    /// Size of the file.
    pub bytes: u64,
    /// SHA-256 of the file.
    pub sha256: String,
}

/// Bytes that crossed a session, stored or not.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Counts {
    /// Typed by the client.
    pub stdin: u64,
    /// Process output.
    pub stdout: u64,
    /// Process error output.
    pub stderr: u64,
    /// Counted but not stored (cap, or `--record output` for stdin).
    pub not_stored: u64,
}

enum Event {
    Open { id: Arc<str>, path: PathBuf, relative: String, header: Header },
    Data { id: Arc<str>, at: Duration, stream: Stream, bytes: Bytes },
    Resize { id: Arc<str>, at: Duration, width: u64, height: u64 },
    Marker { id: Arc<str>, at: Duration, text: String },
    Finish { id: Arc<str>, reply: oneshot::Sender<std::io::Result<Summary>> },
    Tick,
}

/// The recorder thread's handle.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Event>,
    dir: PathBuf,
    mode: RecordMode,
    cap: u64,
    live: Arc<std::sync::Mutex<HashMap<String, Arc<Shared>>>>,
}

/// State shared by a session's two taps.
struct Shared {
    id: Arc<str>,
    started: Instant,
    stored: AtomicU64,
    capped: AtomicBool,
    stdin: AtomicU64,
    stdout: AtomicU64,
    stderr: AtomicU64,
    not_stored: AtomicU64,
}

/// One direction of a live session, held by its stream pump.
pub struct Tap {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Event>,
    mode: RecordMode,
    cap: u64,
    /// `Some` on the output side of a non-TTY session.
    demux: Option<Demux>,
    input: bool,
}

/// A live session's recording: its taps and what closes it.
pub struct Session {
    shared: Arc<Shared>,
    recorder: Recorder,
    /// Relative path the recording will have.
    pub path: String,
}

impl Recorder {
    /// Starts the recorder thread, writing under `dir/sessions`.
    pub fn start(dir: &Path, mode: RecordMode, cap: u64, log: AuditLog) -> anyhow::Result<Self> {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir.join("sessions"))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new().name("execgate-recorder".into()).spawn(move || run(rx, log))?;
        Ok(Recorder { tx, dir: dir.to_owned(), mode, cap, live: Default::default() })
    }

    /// Whether sessions are recorded at all.
    pub fn enabled(&self) -> bool {
        self.mode != RecordMode::None
    }

    /// Opens a recording for a session about to stream.
    pub async fn open(&self, header: Header) -> Session {
        let name =
            format!("{}-{}.{}", file_stamp(), header.exec_id, if header.tty { "cast" } else { "jsonl" });
        let relative = format!("sessions/{name}");
        let shared = Arc::new(Shared {
            id: Arc::from(header.exec_id.as_str()),
            started: Instant::now(),
            stored: AtomicU64::new(0),
            capped: AtomicBool::new(false),
            stdin: AtomicU64::new(0),
            stdout: AtomicU64::new(0),
            stderr: AtomicU64::new(0),
            not_stored: AtomicU64::new(0),
        });
        if self.enabled() {
            let path = self.dir.join(&relative);
            let event = Event::Open {
                id: shared.id.clone(),
                path,
                relative: relative.clone(),
                header: header.clone(),
            };
            let _ = self.tx.send(event).await;
        }
        // A second start of the same exec (the daemon refuses it) must not take
        // the live session's place.
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(header.exec_id.clone())
            .or_insert_with(|| shared.clone());
        Session { shared, recorder: self.clone(), path: relative }
    }

    /// Records a terminal resize of a live session (`POST /exec/{id}/resize`).
    pub async fn resize(&self, exec_id: &str, width: u64, height: u64) {
        let shared = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(exec_id).cloned();
        if let (Some(shared), true) = (shared, self.enabled()) {
            let at = shared.started.elapsed();
            let _ = self.tx.send(Event::Resize { id: shared.id.clone(), at, width, height }).await;
        }
    }

    /// Asks the thread to sync live recordings that are due a checkpoint.
    pub fn tick(&self) {
        let _ = self.tx.try_send(Event::Tick);
    }
}

impl Session {
    /// The taps for the client→daemon and daemon→client pumps.
    pub fn taps(&self, tty: bool) -> (Tap, Tap) {
        let tap = |input: bool, demux: Option<Demux>| Tap {
            shared: self.shared.clone(),
            tx: self.recorder.tx.clone(),
            mode: self.recorder.mode,
            cap: self.recorder.cap,
            demux,
            input,
        };
        (tap(true, None), tap(false, (!tty).then(Demux::default)))
    }

    /// Closes the recording; returns where it is and what crossed the session.
    pub async fn finish(self) -> (Option<Summary>, Counts) {
        {
            let mut live = self.recorder.live.lock().unwrap_or_else(|p| p.into_inner());
            if live.get(&*self.shared.id).is_some_and(|s| Arc::ptr_eq(s, &self.shared)) {
                live.remove(&*self.shared.id);
            }
        }
        let s = &self.shared;
        let counts = Counts {
            stdin: s.stdin.load(Ordering::Relaxed),
            stdout: s.stdout.load(Ordering::Relaxed),
            stderr: s.stderr.load(Ordering::Relaxed),
            not_stored: s.not_stored.load(Ordering::Relaxed),
        };
        if !self.recorder.enabled() {
            return (None, counts);
        }
        let (reply, done) = oneshot::channel();
        if self.recorder.tx.send(Event::Finish { id: s.id.clone(), reply }).await.is_err() {
            return (None, counts);
        }
        match done.await {
            Ok(Ok(summary)) => (Some(summary), counts),
            Ok(Err(err)) => {
                warn!(exec_id = %s.id, error = %err, "session recording could not be completed");
                (None, counts)
            }
            Err(_) => (None, counts),
        }
    }
}

impl Tap {
    /// Sees bytes crossing the session in this tap's direction.
    pub async fn observe(&mut self, data: &[u8]) {
        if self.input {
            self.shared.stdin.fetch_add(data.len() as u64, Ordering::Relaxed);
            self.store(Stream::Stdin, data).await;
            return;
        }
        match self.demux.take() {
            None => {
                self.shared.stdout.fetch_add(data.len() as u64, Ordering::Relaxed);
                self.store(Stream::Stdout, data).await;
            }
            Some(mut demux) => {
                for (stream, part) in demux.feed(data) {
                    let counter =
                        if stream == Stream::Stderr { &self.shared.stderr } else { &self.shared.stdout };
                    counter.fetch_add(part.len() as u64, Ordering::Relaxed);
                    self.store(stream, part).await;
                }
                self.demux = Some(demux);
            }
        }
    }

    async fn store(&self, stream: Stream, data: &[u8]) {
        let skip =
            self.mode == RecordMode::None || (stream == Stream::Stdin && self.mode == RecordMode::Output);
        if skip || data.is_empty() {
            self.shared.not_stored.fetch_add(data.len() as u64, Ordering::Relaxed);
            return;
        }
        let before = self.shared.stored.fetch_add(data.len() as u64, Ordering::Relaxed);
        let room = self.cap.saturating_sub(before) as usize;
        let kept = &data[..room.min(data.len())];
        self.shared.not_stored.fetch_add((data.len() - kept.len()) as u64, Ordering::Relaxed);
        let at = self.shared.started.elapsed();
        if !kept.is_empty() {
            let event =
                Event::Data { id: self.shared.id.clone(), at, stream, bytes: Bytes::copy_from_slice(kept) };
            let _ = self.tx.send(event).await;
        }
        if kept.len() < data.len() && !self.shared.capped.swap(true, Ordering::Relaxed) {
            let text = format!(
                "execgate: recording cap of {} bytes reached; further bytes are counted, not stored",
                self.cap
            );
            let _ = self.tx.send(Event::Marker { id: self.shared.id.clone(), at, text }).await;
        }
    }
}

/// Splits the daemon's multiplexed stream (`[stream, 0, 0, 0, len u32 BE]
/// payload`) into per-stream parts; frames may split anywhere across reads.
#[derive(Debug, Default)]
pub struct Demux {
    header: Vec<u8>,
    remaining: usize,
    stream: Option<Stream>,
}

impl Demux {
    /// Feeds bytes; returns the payload parts they complete or continue.
    pub fn feed<'a>(&mut self, mut data: &'a [u8]) -> Vec<(Stream, &'a [u8])> {
        let mut parts = Vec::new();
        while !data.is_empty() {
            if self.remaining == 0 {
                let need = 8 - self.header.len();
                let take = need.min(data.len());
                self.header.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.header.len() == 8 {
                    self.stream = Some(match self.header[0] {
                        0 => Stream::Stdin,
                        1 => Stream::Stdout,
                        2 => Stream::Stderr,
                        _ => Stream::System,
                    });
                    self.remaining =
                        u32::from_be_bytes([self.header[4], self.header[5], self.header[6], self.header[7]])
                            as usize;
                    self.header.clear();
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
}

fn file_stamp() -> String {
    super::log::now_rfc3339().replace([':', '-'], "").chars().take(15).collect()
}

/// One recording being written.
struct Open {
    file: BufWriter<File>,
    raw: File,
    hasher: Sha256,
    written: u64,
    relative: String,
    tty: bool,
    carry: HashMap<&'static str, Vec<u8>>,
    last_checkpoint: Instant,
}

impl Open {
    fn create(path: &Path, relative: String, header: &Header) -> std::io::Result<Self> {
        let raw = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        let mut open = Open {
            file: BufWriter::with_capacity(256 * 1024, raw.try_clone()?),
            raw,
            hasher: Sha256::new(),
            written: 0,
            relative,
            tty: header.tty,
            carry: HashMap::new(),
            last_checkpoint: Instant::now(),
        };
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let first = if header.tty {
            let [height, width] = header.console.unwrap_or([24, 80]);
            json!({
                "version": 2, "width": width, "height": height, "timestamp": started,
                "command": header.command.join(" "),
                "title": format!("exec {} in {} as {}", header.exec_id, header.container, header.user),
            })
        } else {
            json!({
                "execgate_recording": 1, "exec_id": header.exec_id, "container": header.container,
                "command": header.command, "user": header.user, "tty": false, "timestamp": started,
            })
        };
        open.line(&first)?;
        Ok(open)
    }

    fn line(&mut self, value: &Value) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(value).unwrap_or_default();
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.hasher.update(&bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn data(&mut self, at: Duration, stream: Stream, bytes: &[u8]) -> std::io::Result<()> {
        let t = (at.as_secs_f64() * 1e6).round() / 1e6;
        let carry = self.carry.entry(stream.name()).or_default();
        carry.extend_from_slice(bytes);
        let (mut text, mut raw) = split_utf8(carry);
        // Binary that happens to be valid UTF-8 (runs of NULs) would cost six
        // bytes a byte as JSON escapes; base64 keeps it exact at four per three.
        if !self.tty && text.as_deref().is_some_and(mostly_control) {
            raw = text.take().map(String::into_bytes);
        }
        let code = if stream == Stream::Stdin { "i" } else { "o" };
        if let Some(text) = text {
            if self.tty {
                self.line(&json!([t, code, text]))?;
            } else {
                self.line(&json!({ "t": t, "s": stream.name(), "d": text }))?;
            }
        }
        if let Some(raw) = raw {
            let encoded = BASE64.encode(&raw);
            if self.tty {
                // Playable (lossy) text for players, exact bytes in an `x` event beside it.
                self.line(&json!([t, code, String::from_utf8_lossy(&raw)]))?;
                self.line(&json!([t, "x", encoded]))?;
            } else {
                self.line(&json!({ "t": t, "s": stream.name(), "b64": encoded }))?;
            }
        }
        Ok(())
    }

    /// Flushes and syncs; returns the size and SHA-256 of the file so far.
    fn sync(&mut self) -> std::io::Result<(u64, String)> {
        self.file.flush()?;
        self.raw.sync_data()?;
        self.last_checkpoint = Instant::now();
        Ok((self.written, chain::hex(&self.hasher.clone().finalize())))
    }
}

/// Whether more than one byte in eight is a control character other than the
/// ones text is made of (tab, newline, carriage return, escape).
fn mostly_control(text: &str) -> bool {
    let controls = text
        .bytes()
        .filter(|b| (*b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x1b)) || *b == 0x7f)
        .count();
    controls * 8 > text.len()
}

/// Takes the longest valid UTF-8 text from `buf`, keeping an incomplete
/// trailing character for the next chunk. Bytes that are not UTF-8 at all come
/// back raw (the whole buffer), so nothing is lost or guessed.
pub(crate) fn split_utf8(buf: &mut Vec<u8>) -> (Option<String>, Option<Vec<u8>>) {
    let text = |bytes: Vec<u8>| {
        let text =
            String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Some(text).filter(|t| !t.is_empty())
    };
    match std::str::from_utf8(buf) {
        Ok(_) => (text(std::mem::take(buf)), None),
        Err(err) if err.error_len().is_none() => {
            let tail = buf.split_off(err.valid_up_to());
            (text(std::mem::replace(buf, tail)), None)
        }
        Err(_) => (None, Some(std::mem::take(buf))),
    }
}

/// The recorder thread: owns every open recording.
fn run(mut rx: mpsc::Receiver<Event>, log: AuditLog) {
    let mut open: HashMap<Arc<str>, Open> = HashMap::new();
    let mut failed: HashMap<Arc<str>, String> = HashMap::new();
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::Open { id, path, relative, header } => match Open::create(&path, relative, &header) {
                Ok(recording) => {
                    open.insert(id, recording);
                }
                Err(err) => {
                    warn!(exec_id = %id, path = %path.display(), error = %err, "cannot create session recording");
                    failed.insert(id, err.to_string());
                }
            },
            Event::Data { id, at, stream, bytes } => {
                if let Some(recording) = open.get_mut(&id)
                    && let Err(err) = recording.data(at, stream, &bytes)
                {
                    warn!(exec_id = %id, error = %err, "session recording write failed");
                    failed.insert(id.clone(), err.to_string());
                    open.remove(&id);
                }
            }
            Event::Resize { id, at, width, height } => {
                if let Some(recording) = open.get_mut(&id).filter(|r| r.tty) {
                    let t = (at.as_secs_f64() * 1e6).round() / 1e6;
                    let _ = recording.line(&json!([t, "r", format!("{width}x{height}")]));
                }
            }
            Event::Marker { id, at, text } => {
                if let Some(recording) = open.get_mut(&id) {
                    let t = (at.as_secs_f64() * 1e6).round() / 1e6;
                    let line = if recording.tty {
                        json!([t, "m", text])
                    } else {
                        json!({ "t": t, "s": "marker", "d": text })
                    };
                    let _ = recording.line(&line);
                }
            }
            Event::Finish { id, reply } => {
                let result = match (open.remove(&id), failed.remove(&id)) {
                    (Some(mut recording), _) => finish(&mut recording),
                    (None, Some(err)) => Err(std::io::Error::other(err)),
                    (None, None) => Err(std::io::Error::other("no recording was opened")),
                };
                let _ = reply.send(result);
            }
            Event::Tick => {
                for (id, recording) in
                    open.iter_mut().filter(|(_, r)| r.last_checkpoint.elapsed() >= CHECKPOINT_EVERY)
                {
                    match recording.sync() {
                        Ok((bytes, sha256)) => log.append_later(json!({
                            "event": "recording.checkpoint",
                            "exec_id": &**id,
                            "recording": { "path": recording.relative, "bytes": bytes, "sha256": sha256 },
                        })),
                        Err(err) => warn!(exec_id = %id, error = %err, "session recording sync failed"),
                    }
                }
            }
        }
    }
}

fn finish(recording: &mut Open) -> std::io::Result<Summary> {
    // Whatever is still held back as an incomplete character is flushed raw.
    let leftovers: Vec<(&'static str, Vec<u8>)> = recording
        .carry
        .iter_mut()
        .map(|(k, v)| (*k, std::mem::take(v)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    for (stream, bytes) in leftovers {
        let encoded = BASE64.encode(&bytes);
        let line = if recording.tty {
            json!([0, "x", encoded])
        } else {
            json!({ "t": 0, "s": stream, "b64": encoded })
        };
        recording.line(&line)?;
    }
    let (bytes, sha256) = recording.sync()?;
    Ok(Summary { path: recording.relative.clone(), bytes, sha256 })
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
    fn control_heavy_text_counts_as_binary() {
        assert!(mostly_control("\0\0\0\0"));
        assert!(!mostly_control("plain text\r\n\ttabbed \x1b[1mbold\x1b[0m"));
        assert!(!mostly_control(""));
    }

    #[test]
    fn utf8_split_across_chunks_stays_text_and_garbage_is_raw() {
        let mut buf = "héllo".as_bytes()[..2].to_vec(); // "h" + first byte of "é"
        assert_eq!(split_utf8(&mut buf), (Some("h".to_owned()), None));
        assert_eq!(buf, vec![0xC3]);
        buf.extend_from_slice(&"héllo".as_bytes()[2..]);
        assert_eq!(split_utf8(&mut buf), (Some("éllo".to_owned()), None));
        let mut bad = vec![b'a', 0xff, b'b'];
        assert_eq!(split_utf8(&mut bad), (None, Some(vec![b'a', 0xff, b'b'])));
    }
}
