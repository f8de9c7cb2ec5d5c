//! The audit log writer: one thread owns the files. Records are appended as
//! hash-chained JSON lines and made durable with group commit — everything
//! queued while one `fsync` runs is written and synced by the next — and each
//! caller is acknowledged only once its record is on disk.
//!
//! A failed write or sync is reported to every caller of that batch (an exec
//! waiting on it is then denied) and the partial batch is cut off again, so the
//! chain stays whole and the next batch can succeed once the disk recovers.

use std::collections::VecDeque;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tracing::{error, info, warn};

use super::anchor::Anchors;
use super::chain::{self, GENESIS, Hash};
use super::clock::now_rfc3339;
use super::record::{Bare, Record, Sessions};

/// Most records written and synced in one batch.
const MAX_BATCH: usize = 4096;
/// Most records of things that already happened (session ends, denials) kept
/// in memory until the log takes them. Past it, their writers wait.
pub const MAX_OWED: usize = 10_000;
/// How often owed records are tried again while the log refuses them.
const RETRY: Duration = Duration::from_secs(1);

/// Where and how the log is kept.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The audit directory.
    pub dir: PathBuf,
    /// Start a new file once the current one is this large.
    pub max_bytes: u64,
    /// How many log files to keep (older ones and their recordings are deleted).
    pub retain: usize,
    /// File the head hash is appended to (meant to be shipped off the host).
    pub anchor_file: PathBuf,
    /// How often the head hash is anchored while records keep coming.
    pub anchor_interval: Duration,
    /// Also anchor to syslog.
    pub syslog: bool,
    /// The syslog socket (`/dev/log`, read by journald or a syslog daemon).
    pub syslog_socket: PathBuf,
}

impl LogConfig {
    /// A log in `dir` for unit tests: no rotation, rare anchors, no syslog.
    #[cfg(test)]
    pub(crate) fn for_test(dir: &Path) -> Self {
        LogConfig {
            dir: dir.to_owned(),
            max_bytes: 1 << 20,
            retain: 5,
            anchor_file: dir.join("anchors.jsonl"),
            anchor_interval: Duration::from_secs(3600),
            syslog: false,
            syslog_socket: PathBuf::from("/dev/log"),
        }
    }
}

/// Why a record could not be made durable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AuditError(pub String);

/// A record as the writer chains it: the object, and what it does to open sessions.
type Line = (Map<String, Value>, Sessions);

/// Told the seq of a durable record, or why it is not.
type Ack = oneshot::Sender<Result<u64, AuditError>>;

enum Command {
    /// `owed` holds a slot of the owed queue for a record that must never be
    /// dropped: one whose first write fails is kept and written again.
    Append {
        record: Line,
        ack: Option<Ack>,
        owed: Option<OwnedSemaphorePermit>,
    },
    Anchor {
        reason: &'static str,
        ack: oneshot::Sender<()>,
    },
}

/// A handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Command>,
    /// Slots of the owed queue, [`MAX_OWED`] in all.
    owed_slots: Arc<Semaphore>,
    /// Records the writer holds because the log refused them.
    pending: Arc<AtomicUsize>,
}

/// What opening the log found.
pub struct Opened {
    /// The handle.
    pub log: AuditLog,
    /// Sessions a previous run started and never ended (it was killed).
    pub unfinished: Vec<String>,
    /// The writer thread; it ends once every handle is dropped.
    pub thread: std::thread::JoinHandle<()>,
}

impl AuditLog {
    /// Opens (or creates) the log in `config.dir`, continues its chain, and
    /// starts the writer thread.
    pub fn open(config: LogConfig) -> Result<Opened> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.dir)
            .with_context(|| format!("failed to create audit directory {}", config.dir.display()))?;
        // Before anything is written: two writers would interleave records
        // with the same seq numbers, and `verify` would report tampering.
        let lock = lock_dir(&config.dir)?;
        if config.syslog {
            warn_without_syslog(&config.syslog_socket);
        }
        let mut writer = Writer::resume(config)?;
        writer.lock = Some(lock);
        let unfinished = writer.open_sessions.list();
        let pending = writer.pending.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("execgate-audit".into())
            .spawn(move || writer.run(rx))
            .context("failed to start the audit writer thread")?;
        let log = AuditLog { tx, owed_slots: Arc::new(Semaphore::new(MAX_OWED)), pending };
        Ok(Opened { log, unfinished, thread })
    }

    /// Appends `record` (an object with at least `event`) and waits until it is
    /// on disk. Returns its sequence number. A record that fails is not kept:
    /// it is the precondition of something not yet done (an allowed exec),
    /// which the caller then refuses.
    pub async fn append<F: Serialize>(&self, record: Record<F>) -> Result<u64, AuditError> {
        let (ack, done) = oneshot::channel();
        self.send(record, Some(ack), None)?;
        done.await.map_err(|_| AuditError("the audit writer stopped".into()))?
    }

    /// Appends the record of something that already happened, and waits for
    /// its first write. It is never dropped: if that write fails, the writer
    /// keeps it and writes it again until the log takes it (the `Err` says it
    /// is pending). While [`MAX_OWED`] records are pending, this waits.
    pub async fn append_owed<F: Serialize>(&self, record: Record<F>) -> Result<u64, AuditError> {
        let slot = self.owed_slots.clone().acquire_owned().await.map_err(|_| stopped())?;
        let (ack, done) = oneshot::channel();
        self.send(record, Some(ack), Some(slot))?;
        done.await.map_err(|_| stopped())?
    }

    /// Appends an owed record without waiting (from threads that cannot). Only
    /// records a later one supersedes (recording checkpoints, superseded by
    /// the session's end) come this way: with the owed queue full, they are
    /// dropped, with a warning.
    pub fn append_later<F: Serialize>(&self, record: Record<F>) {
        let sent = match self.owed_slots.clone().try_acquire_owned() {
            Ok(slot) => self.send(record, None, Some(slot)),
            Err(_) => Err(AuditError(format!("{MAX_OWED} records are already waiting for the log"))),
        };
        if let Err(err) = sent {
            warn!(error = %err, "audit record dropped");
        }
    }

    /// How many records the writer holds because the log refused them.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    fn send<F: Serialize>(
        &self,
        record: Record<F>,
        ack: Option<Ack>,
        owed: Option<OwnedSemaphorePermit>,
    ) -> Result<(), AuditError> {
        let record = record.into_line().map_err(AuditError)?;
        self.tx.send(Command::Append { record, ack, owed }).map_err(|_| stopped())
    }

    /// Anchors the head hash now (to the anchor file and syslog).
    pub async fn anchor(&self, reason: &'static str) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Command::Anchor { reason, ack }).is_ok() {
            let _ = done.await;
        }
    }
}

fn stopped() -> AuditError {
    AuditError("the audit writer stopped".into())
}

/// Name of the lock file in the audit directory.
const LOCK_FILE: &str = ".execgate.lock";

/// Takes the audit directory for this process: an exclusive `flock` on a lock
/// file in it, which the kernel drops when the process ends, however it ends.
/// The file holds the owner's pid, to name it to a second instance.
fn lock_dir(dir: &Path) -> Result<Flock<File>> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("failed to open the audit directory lock {}", path.display()))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            let owner = owner.trim();
            let owner = if owner.is_empty() { "another process".to_owned() } else { format!("pid {owner}") };
            anyhow::bail!(
                "audit directory {} is in use by another execgate ({owner}); give each instance its own --audit-dir",
                dir.display()
            );
        }
        Err((_, errno)) => {
            return Err(anyhow::Error::new(errno))
                .with_context(|| format!("failed to lock {}", path.display()));
        }
    };
    lock.set_len(0)
        .and_then(|()| lock.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(lock)
}

/// Says once, at start, that syslog anchoring has nowhere to go: each anchor
/// would otherwise fail quietly.
fn warn_without_syslog(socket: &Path) {
    let is_socket = std::fs::metadata(socket).is_ok_and(|m| m.file_type().is_socket());
    if !is_socket {
        warn!(
            socket = %socket.display(),
            "no syslog socket: audit anchors go to the anchor file only (start a syslog daemon or journald, \
             or pass --no-syslog)"
        );
    }
}

struct Writer {
    /// The audit directory's lock, held as long as the writer runs.
    lock: Option<Flock<File>>,
    config: LogConfig,
    file: File,
    name: String,
    size: u64,
    day: String,
    seq: u64,
    head: Hash,
    open_sessions: OpenSessions,
    anchors: Anchors,
    anchored_seq: u64,
    last_anchor: Instant,
    failing: bool,
    /// Records the log refused that must still be written, oldest first.
    owed: VecDeque<(Line, OwnedSemaphorePermit)>,
    /// `owed.len()`, for the handles.
    pending: Arc<AtomicUsize>,
}

/// One record of a batch: the record, who waits for it, its owed-queue slot.
type Entry = (Line, Option<Ack>, Option<OwnedSemaphorePermit>);

impl Writer {
    /// Continues the chain of the newest file, or starts a new log.
    fn resume(config: LogConfig) -> Result<Self> {
        let anchors =
            Anchors::new(config.anchor_file.clone(), config.syslog.then(|| config.syslog_socket.clone()));
        let files = chain::log_files(&config.dir)
            .with_context(|| format!("failed to list audit directory {}", config.dir.display()))?;
        let Some(last) = files.last() else {
            let mut writer = Writer::create(config, anchors, 0, GENESIS, OpenSessions::default())?;
            writer.checkpoint("genesis", None)?;
            return Ok(writer);
        };
        let (state, cut) = scan_tail(last)?;
        let name = file_name_of(last);
        let file = OpenOptions::new()
            .append(true)
            .open(last)
            .with_context(|| format!("failed to open audit log {}", last.display()))?;
        let size = file.metadata()?.len();
        let mut writer = Writer {
            lock: None,
            day: today(),
            file,
            name,
            size,
            seq: state.seq,
            head: state.head,
            open_sessions: state.open_sessions,
            anchored_seq: 0,
            last_anchor: Instant::now(),
            anchors,
            failing: false,
            owed: VecDeque::new(),
            pending: Arc::default(),
            config,
        };
        if cut > 0 {
            warn!(file = %last.display(), bytes = cut, "cut an incomplete record left by a crash from the audit log");
        }
        writer.checkpoint("start", (cut > 0).then_some(cut))?;
        Ok(writer)
    }

    fn create(config: LogConfig, anchors: Anchors, seq: u64, head: Hash, open: OpenSessions) -> Result<Self> {
        let name = chain::file_name(seq + 1);
        let path = config.dir.join(&name);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("failed to create audit log {}", path.display()))?;
        Ok(Writer {
            lock: None,
            day: today(),
            file,
            name,
            size: 0,
            seq,
            head,
            open_sessions: open,
            anchored_seq: 0,
            last_anchor: Instant::now(),
            anchors,
            failing: false,
            owed: VecDeque::new(),
            pending: Arc::default(),
            config,
        })
    }

    fn run(mut self, rx: mpsc::Receiver<Command>) {
        loop {
            let mut wait = self.config.anchor_interval.saturating_sub(self.last_anchor.elapsed());
            if !self.owed.is_empty() {
                wait = wait.min(RETRY);
            }
            let first = match rx.recv_timeout(wait) {
                Ok(command) => command,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if !self.owed.is_empty() {
                        self.commit(Vec::new());
                    }
                    if self.last_anchor.elapsed() >= self.config.anchor_interval {
                        self.anchor("interval");
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = Vec::new();
            let mut anchors = Vec::new();
            let mut next = Some(first);
            while let Some(command) = next {
                match command {
                    Command::Append { record, ack, owed } => batch.push((record, ack, owed)),
                    Command::Anchor { reason, ack } => anchors.push((reason, ack)),
                }
                next = if batch.len() < MAX_BATCH { rx.try_recv().ok() } else { None };
            }
            if !batch.is_empty() {
                self.commit(batch);
            }
            for (reason, ack) in anchors {
                self.anchor(reason);
                let _ = ack.send(());
            }
            if self.last_anchor.elapsed() >= self.config.anchor_interval {
                self.anchor("interval");
            }
        }
        if !self.owed.is_empty() {
            self.commit(Vec::new());
        }
        // Stopping with the log still refusing them: the records go to
        // execgate's own log, the last place left to keep them.
        for ((record, _), _) in self.owed.drain(..) {
            let record = serde_json::Value::Object(record).to_string();
            error!(record, "audit log unwritable at shutdown; this record was never written to it");
        }
        self.anchor("shutdown");
    }

    /// Writes one batch, after the records still owed, and syncs it;
    /// acknowledges every record in it. When the write fails, owed records
    /// are kept for the next try and the others are refused.
    fn commit(&mut self, batch: Vec<Entry>) {
        if let Err(err) = self.rotate_if_due() {
            warn!(error = format!("{err:#}"), "audit log rotation failed; continuing in the current file");
        }
        let retried = self.owed.len();
        let batch: Vec<Entry> =
            self.owed.drain(..).map(|(record, slot)| (record, None, Some(slot))).chain(batch).collect();
        let saved = (self.seq, self.head, self.open_sessions.clone());
        let mut bytes = Vec::new();
        let mut seqs = Vec::with_capacity(batch.len());
        for ((record, sessions), _, _) in &batch {
            seqs.push(self.push_line(record.clone(), sessions, &mut bytes));
        }
        let result = self.file.write_all(&bytes).and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.size += bytes.len() as u64;
                if self.failing {
                    info!(owed_records_written = retried, "audit log writable again");
                    self.failing = false;
                }
                for ((_, ack, _), seq) in batch.into_iter().zip(seqs) {
                    if let Some(ack) = ack {
                        let _ = ack.send(Ok(seq));
                    }
                }
            }
            Err(err) => {
                // Cut whatever part of the batch reached the file, so the chain
                // continues from the last durable record.
                let _ = self.file.set_len(self.size);
                (self.seq, self.head, self.open_sessions) = saved;
                let message = format!("cannot write {}: {err}", self.config.dir.join(&self.name).display());
                if !self.failing {
                    warn!(error = %message, "audit log unavailable; execs are denied until it is writable");
                    self.failing = true;
                }
                for (record, ack, slot) in batch {
                    if let Some(ack) = ack {
                        let _ = ack.send(Err(AuditError(message.clone())));
                    }
                    if let Some(slot) = slot {
                        self.owed.push_back((record, slot));
                    }
                }
            }
        }
        self.pending.store(self.owed.len(), Ordering::Relaxed);
    }

    /// Serializes one record into `out`, chained to the one before.
    fn push_line(&mut self, mut record: Map<String, Value>, sessions: &Sessions, out: &mut Vec<u8>) -> u64 {
        self.seq += 1;
        record.insert("seq".into(), json!(self.seq));
        record.insert("time".into(), json!(now_rfc3339()));
        record.insert("prev".into(), json!(chain::hex(&self.head)));
        self.open_sessions.apply(sessions);
        // `Display` of a JSON value cannot fail, so no record becomes an empty line.
        let line = Value::Object(record).to_string().into_bytes();
        self.head = chain::hash(&line);
        out.extend_from_slice(&line);
        out.push(b'\n');
        self.seq
    }

    /// Writes an `audit.checkpoint` and syncs it.
    fn checkpoint(&mut self, reason: &'static str, cut_bytes: Option<u64>) -> Result<()> {
        let record: Record<Bare> = Record::AuditCheckpoint {
            reason,
            file: self.name.clone(),
            open_sessions: self.open_sessions.list(),
            cut_incomplete_bytes: cut_bytes,
        };
        let (record, sessions) = record.into_line().map_err(anyhow::Error::msg)?;
        let mut bytes = Vec::new();
        self.push_line(record, &sessions, &mut bytes);
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .context("failed to write an audit checkpoint")?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate_if_due(&mut self) -> Result<()> {
        let day = today();
        if self.size < self.config.max_bytes && day == self.day {
            return Ok(());
        }
        let previous = self.name.clone();
        let anchors = Anchors::new(
            self.config.anchor_file.clone(),
            self.config.syslog.then(|| self.config.syslog_socket.clone()),
        );
        let next =
            Writer::create(self.config.clone(), anchors, self.seq, self.head, self.open_sessions.clone())?;
        self.anchor("rotate");
        let (anchored_seq, last_anchor) = (self.anchored_seq, self.last_anchor);
        let (owed, pending) = (std::mem::take(&mut self.owed), self.pending.clone());
        *self = Writer { anchored_seq, last_anchor, lock: self.lock.take(), owed, pending, ..next };
        self.checkpoint("rotate", None)?;
        info!(previous, file = %self.name, "audit log rotated");
        self.apply_retention();
        Ok(())
    }

    /// Deletes the oldest files beyond `retain`, with the recordings they name.
    fn apply_retention(&self) {
        let Ok(files) = chain::log_files(&self.config.dir) else { return };
        let excess = files.len().saturating_sub(self.config.retain.max(1));
        for old in &files[..excess] {
            for recording in recordings_named_in(old) {
                let _ = std::fs::remove_file(self.config.dir.join(recording));
            }
            match std::fs::remove_file(old) {
                Ok(()) => info!(file = %old.display(), "audit log file past retention deleted"),
                Err(err) => warn!(file = %old.display(), error = %err, "cannot delete old audit log file"),
            }
        }
    }

    fn anchor(&mut self, reason: &str) {
        self.last_anchor = Instant::now();
        if self.seq == self.anchored_seq {
            return;
        }
        match self.anchors.write(reason, &self.name, self.seq, &chain::hex(&self.head)) {
            Ok(()) => self.anchored_seq = self.seq,
            Err(err) => warn!(error = %err, "cannot anchor the audit log head"),
        }
    }
}

fn today() -> String {
    now_rfc3339()[..10].to_owned()
}

fn file_name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

struct TailState {
    seq: u64,
    head: Hash,
    open_sessions: OpenSessions,
}

/// Exec sessions started and not yet ended. A multiset: an exec id started
/// twice (the daemon refuses the second) is still open after one end.
#[derive(Debug, Clone, Default)]
struct OpenSessions(BTreeMap<String, usize>);

impl OpenSessions {
    /// Follows one record: an allowed `exec.start` opens, an `exec.end` closes.
    fn apply(&mut self, sessions: &Sessions) {
        match sessions {
            Sessions::Opens(id) => *self.0.entry(id.clone()).or_default() += 1,
            Sessions::Closes(id) => {
                if let Some(count) = self.0.get_mut(id) {
                    *count -= 1;
                    if *count == 0 {
                        self.0.remove(id);
                    }
                }
            }
            Sessions::Unchanged => {}
        }
    }

    /// Every open session, an id once per open start.
    fn list(&self) -> Vec<String> {
        self.0.iter().flat_map(|(id, n)| std::iter::repeat_n(id.clone(), *n)).collect()
    }

    fn from_list<'a>(ids: impl Iterator<Item = &'a str>) -> Self {
        let mut open = OpenSessions::default();
        for id in ids {
            *open.0.entry(id.to_owned()).or_default() += 1;
        }
        open
    }
}

/// Reads the newest file: its last record's seq and hash, and the sessions
/// still open at its end. An incomplete last line (a crash mid-write, never
/// acknowledged) is cut off; returns how many bytes were cut.
fn scan_tail(path: &Path) -> Result<(TailState, u64)> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("failed to open audit log {}", path.display()))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).with_context(|| format!("failed to read audit log {}", path.display()))?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let cut = (bytes.len() - complete) as u64;
    if cut > 0 {
        file.set_len(complete as u64)?;
        file.seek(SeekFrom::End(0))?;
        file.sync_data()?;
    }
    let mut state = TailState { seq: 0, head: GENESIS, open_sessions: OpenSessions::default() };
    for line in bytes[..complete].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let record: Value = serde_json::from_slice(line).with_context(|| {
            format!("audit log {} holds a line that is not JSON; run `execgate audit verify`", path.display())
        })?;
        state.seq = record["seq"].as_u64().unwrap_or(state.seq);
        state.head = chain::hash(line);
        if record["event"] == "audit.checkpoint"
            && let Some(open) = record["open_sessions"].as_array()
        {
            state.open_sessions = OpenSessions::from_list(open.iter().filter_map(Value::as_str));
        }
        state.open_sessions.apply(&Sessions::of_line(&record));
    }
    Ok((state, cut))
}

/// Recording paths (relative to the audit dir) that a log file references.
pub fn recordings_named_in(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["recording"]["path"].as_str().map(str::to_owned))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::record::{Capped, Decided, Subject, Verdict};
    use super::*;

    #[test]
    fn a_session_started_twice_stays_open_until_both_end() {
        let mut open = OpenSessions::default();
        open.apply(&Sessions::Opens("e1".into()));
        open.apply(&Sessions::Opens("e1".into()));
        open.apply(&Sessions::Unchanged);
        assert_eq!(open.list(), ["e1", "e1"]);
        open.apply(&Sessions::Closes("e1".into()));
        assert_eq!(open.list(), ["e1"]);
        open.apply(&Sessions::Closes("e1".into()));
        assert!(open.list().is_empty());
        let restored = OpenSessions::from_list(["a", "b", "a"].into_iter());
        assert_eq!(restored.list(), ["a", "a", "b"]);
    }

    #[test]
    fn the_chain_continues_across_restarts_and_cuts_a_torn_tail() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().to_owned();
        let config = LogConfig::for_test(&dir);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let opened = AuditLog::open(config.clone()).expect("open");
        runtime.block_on(async {
            let seq = opened.log.append(Record::ExecStart(Decided {
                subject: Subject::exec("e1"),
                decision: Verdict::Allow,
                reasons: Capped::new(Vec::<String>::new()),
                warnings: None,
                policy_hash: None,
                facts: Bare {},
            }));
            let seq = seq.await;
            assert_eq!(seq.expect("durable"), 2, "after the genesis checkpoint");
        });
        drop(opened.log);
        opened.thread.join().expect("writer");
        // A crash mid-write leaves half a line behind.
        let file = dir.join(chain::file_name(1));
        let mut f = OpenOptions::new().append(true).open(&file).expect("open log");
        f.write_all(b"{\"event\":\"exec.e").expect("torn write");
        drop(f);
        let reopened = AuditLog::open(config).expect("reopen");
        assert_eq!(reopened.unfinished, ["e1"]);
        drop(reopened.log);
        reopened.thread.join().expect("writer");
        let report = super::super::verify::verify(&dir, None).expect("chain intact after the cut");
        assert_eq!(report.records, 3);
    }
}
