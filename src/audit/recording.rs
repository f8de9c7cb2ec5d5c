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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::chain;
use super::log::AuditLog;
use super::record::{Bare, Counts, Record, Subject, Summary};
use crate::docker_stream::{Demux, Stream};

/// Messages queued to the recorder before a pump waits (backpressure, not loss).
const QUEUE: usize = 1024;
/// Most bytes of one session handed to the recorder and not yet written to
/// its file buffer. A pump waits past it, so a recording that starts failing
/// cuts its session within about this much (plus the file buffer).
const MAX_LAG: usize = 4 << 20;
/// Bytes of a recording buffered before they are written to the file.
const FILE_BUFFER: usize = 256 * 1024;
/// How often a live recording is synced and its prefix hash logged.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// What a session recording keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordMode {
    /// stdin, stdout and stderr.
    All,
    /// stdout and stderr only (keeps secrets typed into shells out of the trail).
    Output,
    /// Nothing: sessions are counted, not recorded.
    None,
}

/// What a recording starts with.
#[derive(Debug, Clone)]
pub struct Header {
    /// The session: an exec, or an attach.
    pub subject: Subject,
    /// Container id (full).
    pub container_id: String,
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

/// The first line of a recording: an asciicast v2 header for a TTY session,
/// execgate's own header for multiplexed frames.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum FirstLine<'a> {
    Asciicast {
        version: u8,
        width: u64,
        height: u64,
        timestamp: u64,
        command: String,
        title: String,
    },
    Frames {
        execgate_recording: u8,
        #[serde(flatten)]
        subject: &'a Subject,
        container: &'a str,
        command: &'a [String],
        user: &'a str,
        tty: bool,
        timestamp: u64,
    },
}

/// One event of a recording after its first line: an asciicast event
/// `[t, code, data]` for a TTY session, an object for multiplexed frames.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Line<'a> {
    Cast(f64, &'a str, &'a str),
    Text { t: f64, s: &'a str, d: &'a str },
    Bytes { t: f64, s: &'a str, b64: &'a str },
}

/// Events for the recorder thread, each naming its session by [`Shared::key`]:
/// one exec may be started more than once (the daemon refuses all but the
/// first), and each start's recording must hold only its own stream.
enum Event {
    Open {
        shared: Arc<Shared>,
        path: PathBuf,
        relative: String,
        header: Header,
        reply: oneshot::Sender<()>,
    },
    /// `lag` holds the bytes' share of [`MAX_LAG`] until the event is handled.
    Data {
        key: u64,
        at: Duration,
        stream: Stream,
        bytes: Bytes,
        lag: OwnedSemaphorePermit,
    },
    Resize {
        key: u64,
        at: Duration,
        width: u64,
        height: u64,
    },
    Marker {
        key: u64,
        at: Duration,
        text: String,
    },
    Finish {
        key: u64,
        reply: oneshot::Sender<Result<Summary, String>>,
    },
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
    next_key: Arc<AtomicU64>,
}

/// State shared by a session's two taps, its handle and the recorder thread.
struct Shared {
    /// Unique per session (not per exec).
    key: u64,
    /// The session's id in the log (exec id or attach id).
    id: Arc<str>,
    /// For an attach session, its container's full id (its resizes are recorded).
    container: Option<String>,
    started: Instant,
    /// Why the recording failed, set once by whoever saw it fail.
    failure: OnceLock<String>,
    /// Cancelled when the recording fails: the session must stop streaming.
    failed: CancellationToken,
    /// [`MAX_LAG`] bytes' worth of permits.
    lag: Arc<Semaphore>,
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

impl Shared {
    /// Marks the recording failed (the first reason wins) and tells the session.
    fn fail(&self, reason: String) {
        let _ = self.failure.set(reason);
        self.failed.cancel();
    }
}

/// Why a recording could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create session recording {path}: {reason}")]
pub struct OpenError {
    /// The recording's path relative to the audit directory.
    pub path: String,
    /// What the filesystem said.
    pub reason: String,
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
        Ok(Recorder {
            tx,
            dir: dir.to_owned(),
            mode,
            cap,
            live: Default::default(),
            next_key: Default::default(),
        })
    }

    /// The audit directory (recordings live in its `sessions/`).
    pub fn audit_dir(&self) -> &Path {
        &self.dir
    }

    /// Whether sessions are recorded at all.
    pub fn enabled(&self) -> bool {
        self.mode != RecordMode::None
    }

    /// Opens a recording for a session about to stream. The file exists, with
    /// its first line written, before this returns: a session whose recording
    /// cannot be created (full disk, read-only or immutable directory) must not
    /// start.
    pub async fn open(&self, header: Header) -> Result<Session, OpenError> {
        let id = header.subject.key().unwrap_or_default().to_owned();
        let name = format!("{}-{id}.{}", file_stamp(), if header.tty { "cast" } else { "jsonl" });
        let relative = format!("sessions/{name}");
        let shared = Arc::new(Shared {
            key: self.next_key.fetch_add(1, Ordering::Relaxed),
            id: Arc::from(id.as_str()),
            container: matches!(header.subject, Subject::Attach { .. }).then(|| header.container_id.clone()),
            started: Instant::now(),
            failure: OnceLock::new(),
            failed: CancellationToken::new(),
            lag: Arc::new(Semaphore::new(MAX_LAG)),
            stored: AtomicU64::new(0),
            capped: AtomicBool::new(false),
            stdin: AtomicU64::new(0),
            stdout: AtomicU64::new(0),
            stderr: AtomicU64::new(0),
            not_stored: AtomicU64::new(0),
        });
        if self.enabled() {
            let (reply, opened) = oneshot::channel();
            let path = self.dir.join(&relative);
            let event = Event::Open {
                shared: shared.clone(),
                path,
                relative: relative.clone(),
                header: header.clone(),
                reply,
            };
            let sent = self.tx.send(event).await.is_ok();
            if !sent || opened.await.is_err() {
                shared.fail("the recorder thread stopped".into());
            }
            if let Some(reason) = shared.failure.get() {
                return Err(OpenError { path: relative, reason: reason.clone() });
            }
        }
        // Resizes go to the first live session of an exec; a second start of
        // it is refused before it gets here, but must not take its place anyway.
        self.live.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_insert_with(|| shared.clone());
        Ok(Session { shared, recorder: self.clone(), path: relative })
    }

    /// Records a terminal resize of a live exec session (`POST /exec/{id}/resize`).
    pub async fn resize(&self, exec_id: &str, width: u64, height: u64) {
        let shared = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(exec_id).cloned();
        if let Some(shared) = shared {
            self.resize_session(&shared, width, height).await;
        }
    }

    /// Whether any attach session is live (container resizes matter then).
    pub fn has_attach_sessions(&self) -> bool {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).values().any(|shared| shared.container.is_some())
    }

    /// Records a resize of a container's terminal (`POST /containers/{name}/resize`)
    /// in every live attach session to the container with full id `container_id`.
    pub async fn resize_container(&self, container_id: &str, width: u64, height: u64) {
        let attached: Vec<Arc<Shared>> = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|shared| shared.container.as_deref() == Some(container_id))
            .cloned()
            .collect();
        for shared in attached {
            self.resize_session(&shared, width, height).await;
        }
    }

    async fn resize_session(&self, shared: &Arc<Shared>, width: u64, height: u64) {
        if !self.enabled() {
            return;
        }
        let at = shared.started.elapsed();
        if self.tx.send(Event::Resize { key: shared.key, at, width, height }).await.is_err() {
            shared.fail("the recorder thread stopped".into());
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

    /// Cancelled when the recording fails mid-session: the stream must stop,
    /// since what crosses it from then on would not be recorded.
    pub fn failed(&self) -> CancellationToken {
        self.shared.failed.clone()
    }

    /// Closes the recording; returns where it is (`Ok(None)` when sessions are
    /// not recorded, `Err` with the reason when the recording failed) and what
    /// crossed the session.
    pub async fn finish(self) -> (Result<Option<Summary>, String>, Counts) {
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
            return (Ok(None), counts);
        }
        let (reply, done) = oneshot::channel();
        let result = match self.recorder.tx.send(Event::Finish { key: s.key, reply }).await {
            Ok(()) => done.await.unwrap_or_else(|_| Err("the recorder thread stopped".into())),
            Err(_) => Err("the recorder thread stopped".into()),
        };
        // A failure seen on this side (a lost event) outranks a file that closed fine.
        let result = match (s.failure.get(), result) {
            (Some(reason), _) => Err(reason.clone()),
            (None, result) => result.map(Some),
        };
        if let Err(reason) = &result {
            warn!(session = %s.id, error = %reason, "session recording is incomplete");
        }
        (result, counts)
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
            // `kept` is at most one pump read, far below MAX_LAG.
            let permits = u32::try_from(kept.len()).unwrap_or(u32::MAX);
            let Ok(lag) = self.shared.lag.clone().acquire_many_owned(permits).await else { return };
            let bytes = Bytes::copy_from_slice(kept);
            self.send(Event::Data { key: self.shared.key, at, stream, bytes, lag }).await;
        }
        if kept.len() < data.len() && !self.shared.capped.swap(true, Ordering::Relaxed) {
            let text = format!(
                "execgate: recording cap of {} bytes reached; further bytes are counted, not stored",
                self.cap
            );
            self.send(Event::Marker { key: self.shared.key, at, text }).await;
        }
    }

    /// Queues an event; a recorder that cannot take it fails the recording.
    async fn send(&self, event: Event) {
        if self.tx.send(event).await.is_err() {
            self.shared.fail("the recorder thread stopped".into());
        }
    }
}

fn file_stamp() -> String {
    super::clock::now_rfc3339().replace([':', '-'], "").chars().take(15).collect()
}

/// One recording being written.
struct Open {
    file: BufWriter<File>,
    hasher: Sha256,
    written: u64,
    relative: String,
    tty: bool,
    carry: HashMap<&'static str, Vec<u8>>,
    last_checkpoint: Instant,
}

impl Open {
    fn create(path: &Path, relative: String, header: &Header) -> std::io::Result<Self> {
        let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        let mut open = Open {
            file: BufWriter::with_capacity(FILE_BUFFER, file),
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
            FirstLine::Asciicast {
                version: 2,
                width,
                height,
                timestamp: started,
                command: header.command.join(" "),
                title: match &header.subject {
                    Subject::Request {} => format!("session in {}", header.container),
                    Subject::Attach { attach_id } => {
                        format!(
                            "attach {attach_id} to {} ({} as {})",
                            header.container,
                            header.command.join(" "),
                            header.user
                        )
                    }
                    Subject::Exec { exec_id } => {
                        format!(
                            "exec {} in {} as {}",
                            exec_id.as_deref().unwrap_or_default(),
                            header.container,
                            header.user
                        )
                    }
                },
            }
        } else {
            FirstLine::Frames {
                execgate_recording: 1,
                subject: &header.subject,
                container: &header.container,
                command: &header.command,
                user: &header.user,
                tty: false,
                timestamp: started,
            }
        };
        open.line(&first)?;
        // Written through now, so a full or read-only filesystem refuses the
        // session here rather than after it has started.
        open.file.flush()?;
        Ok(open)
    }

    fn line(&mut self, value: &impl serde::Serialize) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
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
                self.line(&Line::Cast(t, code, &text))?;
            } else {
                self.line(&Line::Text { t, s: stream.name(), d: &text })?;
            }
        }
        if let Some(raw) = raw {
            let encoded = BASE64.encode(&raw);
            if self.tty {
                // Playable (lossy) text for players, exact bytes in an `x` event beside it.
                self.line(&Line::Cast(t, code, &String::from_utf8_lossy(&raw)))?;
                self.line(&Line::Cast(t, "x", &encoded))?;
            } else {
                self.line(&Line::Bytes { t, s: stream.name(), b64: &encoded })?;
            }
        }
        Ok(())
    }

    /// Flushes and syncs; returns the size and SHA-256 of the file so far.
    fn sync(&mut self) -> std::io::Result<(u64, String)> {
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
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

/// A recording being written, with the session it belongs to.
struct Live {
    file: Open,
    shared: Arc<Shared>,
}

impl Live {
    /// Runs one write; a failure fails the session's recording and closes it.
    fn write(
        slot: &mut HashMap<u64, Live>,
        key: u64,
        what: &str,
        op: impl FnOnce(&mut Open) -> std::io::Result<()>,
    ) {
        let Some(live) = slot.get_mut(&key) else { return };
        if let Err(err) = op(&mut live.file) {
            warn!(session = %live.shared.id, path = %live.file.relative, error = %err, "session recording {what} failed; cutting the session");
            live.shared.fail(format!("{what} of {} failed: {err}", live.file.relative));
            slot.remove(&key);
        }
    }
}

/// The recorder thread: owns every open recording.
fn run(mut rx: mpsc::Receiver<Event>, log: AuditLog) {
    let mut open: HashMap<u64, Live> = HashMap::new();
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::Open { shared, path, relative, header, reply } => {
                match Open::create(&path, relative, &header) {
                    Ok(file) => {
                        open.insert(shared.key, Live { file, shared });
                    }
                    Err(err) => {
                        warn!(session = %shared.id, path = %path.display(), error = %err, "cannot create session recording");
                        shared.fail(err.to_string());
                    }
                }
                let _ = reply.send(());
            }
            Event::Data { key, at, stream, bytes, lag } => {
                Live::write(&mut open, key, "write", |file| file.data(at, stream, &bytes));
                drop(lag);
            }
            Event::Resize { key, at, width, height } => {
                Live::write(&mut open, key, "write", |file| {
                    if !file.tty {
                        return Ok(());
                    }
                    let t = (at.as_secs_f64() * 1e6).round() / 1e6;
                    file.line(&Line::Cast(t, "r", &format!("{width}x{height}")))
                });
            }
            Event::Marker { key, at, text } => {
                Live::write(&mut open, key, "write", |file| {
                    let t = (at.as_secs_f64() * 1e6).round() / 1e6;
                    let line = if file.tty {
                        Line::Cast(t, "m", &text)
                    } else {
                        Line::Text { t, s: "marker", d: &text }
                    };
                    file.line(&line)
                });
            }
            Event::Finish { key, reply } => {
                let result = match open.remove(&key) {
                    Some(mut live) => finish(&mut live.file).map_err(|err| {
                        let reason = format!("closing {} failed: {err}", live.file.relative);
                        live.shared.fail(reason.clone());
                        reason
                    }),
                    // Failed earlier: the session holds the reason.
                    None => Err("the recording failed earlier".to_owned()),
                };
                let _ = reply.send(result);
            }
            Event::Tick => {
                let due: Vec<u64> = open
                    .iter()
                    .filter(|(_, live)| live.file.last_checkpoint.elapsed() >= CHECKPOINT_EVERY)
                    .map(|(key, _)| *key)
                    .collect();
                for key in due {
                    let mut synced = None;
                    Live::write(&mut open, key, "sync", |file| {
                        synced = Some(file.sync()?);
                        Ok(())
                    });
                    if let (Some((bytes, sha256)), Some(live)) = (synced, open.get(&key)) {
                        let recording = Summary { path: live.file.relative.clone(), bytes, sha256 };
                        let record: Record<Bare> = Record::RecordingCheckpoint {
                            subject: Subject::of_key(&live.shared.id),
                            recording,
                        };
                        log.append_later(record);
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
            Line::Cast(0.0, "x", &encoded)
        } else {
            Line::Bytes { t: 0.0, s: stream, b64: &encoded }
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
