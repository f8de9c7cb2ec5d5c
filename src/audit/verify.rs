//! `execgate audit verify`: recomputes the chain over every retained log file,
//! checks every recording a record names, and checks the anchors kept outside
//! the log. The first problem found is reported with its file, line and seq.
//!
//! Two kinds of session are on record: execs (`exec.start` … `exec.end`, named
//! by `exec_id`) and attach sessions (`attach.start` … `attach.end`, named by
//! `attach_id`). Both are paired and checked the same way.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path};

use serde_json::Value;

use super::anchor::{self, Anchor};
use super::chain::{self, GENESIS, Hash};

/// What an intact log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Log files checked.
    pub files: usize,
    /// Records checked.
    pub records: u64,
    /// Recording hashes checked (final and checkpoints).
    pub recordings: usize,
    /// Anchors checked against the log.
    pub anchors: usize,
    /// Seq of the last record.
    pub head_seq: u64,
    /// Hash of the last record.
    pub head: String,
    /// Sessions whose recording is missing or short although the log is
    /// intact: recordings that failed (the end record says why) or vanished.
    pub unrecorded: Vec<Unrecorded>,
}

/// A session the log says was recorded, whose recording is not all there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecorded {
    /// `file:line (seq N)` of the start record.
    pub place: String,
    /// An exec, or an attach session.
    pub kind: Kind,
    /// The session's id: the exec's, or the attach session's (`attach-…`).
    pub exec_id: String,
    /// What is missing, and why when the log says.
    pub reason: String,
}

/// The kind of a recorded session; displayed as `exec` or `attach`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An exec: `exec.start` … `exec.end`, named by `exec_id`.
    Exec,
    /// An attach to a container's stdio: `attach.start` … `attach.end`,
    /// named by `attach_id`.
    Attach,
}

impl Kind {
    /// The kind and id of the session `record` is about, when it names one.
    fn of(record: &Value) -> Option<(Kind, &str)> {
        match (record["attach_id"].as_str(), record["exec_id"].as_str()) {
            (Some(id), _) => Some((Kind::Attach, id)),
            (None, Some(id)) => Some((Kind::Exec, id)),
            (None, None) => None,
        }
    }

    /// The event of a decision that may open one.
    fn start(self) -> &'static str {
        match self {
            Kind::Exec => "exec.start",
            Kind::Attach => "attach.start",
        }
    }

    /// The event that closes one.
    fn end(self) -> &'static str {
        match self {
            Kind::Exec => "exec.end",
            Kind::Attach => "attach.end",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Exec => "exec",
            Kind::Attach => "attach",
        })
    }
}

/// An allowed `exec.start` or `attach.start` that names a recording, until
/// its end record.
struct Announced {
    place: String,
    path: String,
}

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {reason}")]
pub struct Broken {
    /// `file:line (seq N)`, or the anchor file.
    pub place: String,
    /// What is wrong.
    pub reason: String,
}

fn broken(place: impl Into<String>, reason: impl Into<String>) -> Broken {
    Broken { place: place.into(), reason: reason.into() }
}

/// Verifies the audit directory `dir`, with anchors from `anchor_file` (or the
/// directory's own anchor file when it exists).
pub fn verify(dir: &Path, anchor_file: Option<&Path>) -> Result<Report, Broken> {
    let files =
        chain::log_files(dir).map_err(|e| broken(dir.display().to_string(), format!("cannot list: {e}")))?;
    if files.is_empty() {
        return Err(broken(dir.display().to_string(), "no audit log files (audit-*.jsonl)"));
    }
    let default_anchor = super::default_anchor_file(dir);
    let anchor_path =
        anchor_file.map(Path::to_path_buf).or_else(|| default_anchor.exists().then_some(default_anchor));
    let anchors = match &anchor_path {
        Some(path) => read_anchors(path)?,
        None => Vec::new(),
    };
    let mut walk = Walk::new(dir, &anchors);
    for file in &files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = std::fs::read(file).map_err(|e| broken(&name, format!("cannot read: {e}")))?;
        walk.file(&name, &bytes)?;
    }
    let place = anchor_path.map(|p| p.display().to_string()).unwrap_or_default();
    walk.finish(files.len(), &place, &anchors)
}

fn read_anchors(path: &Path) -> Result<Vec<Anchor>, Broken> {
    let place = path.display().to_string();
    anchor::read(path)
        .map_err(|e| broken(&place, format!("cannot read: {e}")))?
        .into_iter()
        .map(|entry| entry.map_err(|e| broken(&place, e)))
        .collect()
}

/// The chain, walked record by record in order.
struct Walk<'a> {
    dir: &'a Path,
    /// The hash of each record an anchor names, once it is seen.
    anchored: HashMap<u64, Option<Hash>>,
    /// Recorded sessions started and not yet ended.
    announced: HashMap<(Kind, String), Announced>,
    /// Seq and hash of the last record.
    previous: Option<(u64, Hash)>,
    first_seq: Option<u64>,
    records: u64,
    recordings: usize,
    unrecorded: Vec<Unrecorded>,
}

impl<'a> Walk<'a> {
    fn new(dir: &'a Path, anchors: &[Anchor]) -> Self {
        Walk {
            dir,
            anchored: anchors.iter().map(|a| (a.seq, None)).collect(),
            announced: HashMap::new(),
            previous: None,
            first_seq: None,
            records: 0,
            recordings: 0,
            unrecorded: Vec::new(),
        }
    }

    /// Walks the records of one log file.
    fn file(&mut self, name: &str, bytes: &[u8]) -> Result<(), Broken> {
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            let line = bytes.split(|&b| b == b'\n').count();
            return Err(broken(format!("{name}:{line}"), "the last record is incomplete (cut mid-line)"));
        }
        for (index, line) in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            self.record(&format!("{name}:{}", index + 1), index == 0, line)?;
        }
        Ok(())
    }

    /// Checks one record at `place` (`file:line`) and follows it on.
    fn record(&mut self, place: &str, opens_file: bool, line: &[u8]) -> Result<(), Broken> {
        let record: Value =
            serde_json::from_slice(line).map_err(|e| broken(place, format!("not a JSON record: {e}")))?;
        let seq = record["seq"].as_u64().ok_or_else(|| broken(place, "record without a seq"))?;
        let at = format!("{place} (seq {seq})");
        let prev = record["prev"].as_str().ok_or_else(|| broken(&at, "record without a prev hash"))?;
        if opens_file && record["event"] != "audit.checkpoint" {
            return Err(broken(&at, "a log file must open with an audit.checkpoint record"));
        }
        self.links(seq, prev).map_err(|reason| broken(&at, reason))?;
        let hash = chain::hash(line);
        if let Some(slot) = self.anchored.get_mut(&seq) {
            *slot = Some(hash);
        }
        check_recording(self.dir, &record).map_err(|reason| broken(&at, reason))?;
        if record["recording"]["sha256"].is_string() {
            self.recordings += 1;
        }
        follow_session(self.dir, &record, at, &mut self.announced, &mut self.unrecorded);
        self.first_seq.get_or_insert(seq);
        self.previous = Some((seq, hash));
        self.records += 1;
        Ok(())
    }

    /// Whether a record with `seq` and `prev` follows the last one.
    fn links(&self, seq: u64, prev: &str) -> Result<(), String> {
        match self.previous {
            None if seq == 1 && prev != chain::hex(&GENESIS) => {
                Err("the first record of the log does not start from the genesis hash".into())
            }
            // Older files were removed by retention: the chain is verified
            // from this retained checkpoint on.
            None => Ok(()),
            Some((last_seq, last_hash)) if prev != chain::hex(&last_hash) => Err(format!(
                "does not chain to the record before it (seq {last_seq}): a record was edited, inserted, deleted or reordered"
            )),
            Some((last_seq, _)) if last_seq.checked_add(1) != Some(seq) => {
                Err(format!("sequence jumps from {last_seq} to {seq}"))
            }
            Some(_) => Ok(()),
        }
    }

    /// The report, once live sessions' recordings and the anchors (read from
    /// `place`) are checked.
    fn finish(mut self, files: usize, place: &str, anchors: &[Anchor]) -> Result<Report, Broken> {
        let (head_seq, head) = self
            .previous
            .ok_or_else(|| broken(self.dir.display().to_string(), "the log holds no records"))?;
        // Sessions still live (or cut by a crash the log has not seen yet):
        // their recording must at least exist.
        let mut live: Vec<((Kind, String), Announced)> =
            std::mem::take(&mut self.announced).into_iter().collect();
        live.sort_by(|a, b| a.1.place.cmp(&b.1.place));
        for ((kind, exec_id), start) in live {
            if let Err(reason) = exists(self.dir, &start.path) {
                self.unrecorded.push(Unrecorded { place: start.place, kind, exec_id, reason });
            }
        }
        let anchors = self.check_anchors(place, anchors, head_seq)?;
        Ok(Report {
            files,
            records: self.records,
            recordings: self.recordings,
            anchors,
            head_seq,
            head: chain::hex(&head),
            unrecorded: self.unrecorded,
        })
    }

    /// Checks each anchor against the record it names; returns how many were
    /// checked (anchors of records retention removed are skipped).
    fn check_anchors(&self, place: &str, anchors: &[Anchor], head_seq: u64) -> Result<usize, Broken> {
        let mut checked = 0;
        for a in anchors {
            if a.seq > head_seq {
                return Err(broken(
                    place,
                    format!(
                        "the log ends at seq {head_seq} but an anchor records seq {} (in {}): the tail was cut",
                        a.seq, a.file
                    ),
                ));
            }
            if self.first_seq.is_some_and(|first| a.seq < first) {
                continue;
            }
            match self.anchored.get(&a.seq).copied().flatten() {
                Some(hash) if chain::hex(&hash) == a.hash => checked += 1,
                _ => {
                    return Err(broken(
                        place,
                        format!("the record at seq {} does not match its anchor: it was rewritten", a.seq),
                    ));
                }
            }
        }
        Ok(checked)
    }
}

/// Pairs each recorded session's start with its end and notes, in
/// `unrecorded`, every one whose recording is not all there: an end that names
/// no recording (it failed, or was never made) or, for a session cut by a
/// crash, a recording that is missing. (An end that names one has it checked
/// whole by [`check_recording`].)
fn follow_session(
    dir: &Path,
    record: &Value,
    place: String,
    announced: &mut HashMap<(Kind, String), Announced>,
    unrecorded: &mut Vec<Unrecorded>,
) {
    let Some((kind, id)) = Kind::of(record) else { return };
    let key = (kind, id.to_owned());
    match record["event"].as_str() {
        Some(event) if event == kind.start() && record["decision"] == "allow" => {
            if let Some(path) = record["recording"]["path"].as_str() {
                announced.insert(key, Announced { place, path: path.to_owned() });
            }
        }
        Some(event) if event == kind.end() => {
            let Some(start) = announced.remove(&key) else { return };
            if record["recording"]["sha256"].is_string() {
                return;
            }
            let reason = match (record["reason"].as_str(), record["recording_error"].as_str()) {
                (Some("incomplete"), _) => match exists(dir, &start.path) {
                    Ok(()) => return,
                    Err(reason) => reason,
                },
                (_, Some(error)) => format!("recording {} is incomplete: {error}", start.path),
                _ => format!("the session ended without its recording {} (it was never written)", start.path),
            };
            let (kind, exec_id) = key;
            unrecorded.push(Unrecorded { place: start.place, kind, exec_id, reason });
        }
        _ => {}
    }
}

/// Whether the recording at `path` (relative to `dir`) is there.
fn exists(dir: &Path, path: &str) -> Result<(), String> {
    let relative = Path::new(path);
    if relative.is_absolute() || relative.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("recording path {path:?} points outside the audit directory"));
    }
    std::fs::metadata(dir.join(relative)).map(|_| ()).map_err(|e| format!("recording {path} is missing: {e}"))
}

/// Checks the recording a record names: the whole file for `exec.end` and
/// `attach.end`, the prefix it had for a `recording.checkpoint`.
fn check_recording(dir: &Path, record: &Value) -> Result<(), String> {
    let recording = &record["recording"];
    let (Some(path), Some(sha256), Some(bytes)) =
        (recording["path"].as_str(), recording["sha256"].as_str(), recording["bytes"].as_u64())
    else {
        return Ok(());
    };
    let relative = Path::new(path);
    if relative.is_absolute() || relative.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("recording path {path:?} points outside the audit directory"));
    }
    let file =
        std::fs::File::open(dir.join(relative)).map_err(|e| format!("recording {path} is missing: {e}"))?;
    let whole = matches!(record["event"].as_str(), Some("exec.end" | "attach.end"));
    let size = file.metadata().map_err(|e| format!("recording {path}: {e}"))?.len();
    if whole && size != bytes {
        return Err(format!("recording {path} is {size} bytes, the record says {bytes}: it was changed"));
    }
    let mut prefix = Vec::with_capacity(bytes.min(64 << 20) as usize);
    file.take(bytes).read_to_end(&mut prefix).map_err(|e| format!("recording {path}: {e}"))?;
    if chain::hex(&chain::hash(&prefix)) != sha256 {
        return Err(format!("recording {path} does not match its hash: it was changed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::audit::EndReason;
    use crate::audit::log::{AuditLog, LogConfig};
    use crate::audit::record::Counts;
    use crate::audit::record::{Capped, Decided, Ended, Measured, Record, Verdict};

    /// An audit directory whose log holds `records`, written by the real writer.
    fn log_of(records: Vec<Record<Value>>) -> tempfile::TempDir {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().to_owned();
        let config = LogConfig::for_test(&dir);
        let opened = AuditLog::open(config).expect("open");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            for record in records {
                opened.log.append(record).await.expect("durable");
            }
        });
        drop(opened.log);
        opened.thread.join().expect("writer");
        std::fs::create_dir_all(dir.join("sessions")).expect("sessions");
        temp
    }

    fn start(id: &str, decision: Verdict) -> Record<Value> {
        let recording = (decision == Verdict::Allow).then(|| json!({"path": format!("sessions/{id}.jsonl")}));
        Record::ExecStart(Decided {
            subject: crate::audit::Subject::exec(id),
            decision,
            reasons: Capped::new(Vec::<String>::new()),
            warnings: None,
            policy_hash: None,
            facts: json!({ "recording": recording }),
        })
    }

    fn end(id: &str, reason: EndReason, recording_error: Option<&str>) -> Record<Value> {
        let measured = (reason != EndReason::Incomplete).then(|| Measured {
            duration_ms: 1,
            bytes: Counts::default(),
            output_captured: true,
            recording: None,
            recording_error: recording_error.map(str::to_owned),
        });
        Record::ExecEnd(Ended {
            subject: crate::audit::Subject::exec(id),
            reason,
            exit_code: None,
            measured,
            detail: None,
            facts: json!({}),
        })
    }

    #[test]
    fn sessions_not_all_on_record_are_listed_while_the_chain_stays_intact() {
        let temp = log_of(vec![
            start("never", Verdict::Allow),
            end("never", EndReason::Exited, None),
            start("failed", Verdict::Allow),
            end("failed", EndReason::RecordingFailed, Some("write failed: disk full")),
            start("crashed", Verdict::Allow),
            end("crashed", EndReason::Incomplete, None),
            start("live-gone", Verdict::Allow),
            start("live-here", Verdict::Allow),
            start("denied", Verdict::Deny),
        ]);
        for id in ["crashed", "live-here"] {
            std::fs::write(temp.path().join(format!("sessions/{id}.jsonl")), "{}\n").expect("recording");
        }
        let report = verify(temp.path(), None).expect("the chain is intact");
        let listed: Vec<(&str, &str)> =
            report.unrecorded.iter().map(|u| (u.exec_id.as_str(), u.reason.as_str())).collect();
        assert_eq!(listed.len(), 3, "{listed:?}");
        assert!(listed[0].0 == "never" && listed[0].1.contains("never written"), "{listed:?}");
        assert!(listed[1].0 == "failed" && listed[1].1.contains("disk full"), "{listed:?}");
        assert!(listed[2].0 == "live-gone" && listed[2].1.contains("is missing"), "{listed:?}");
        assert!(report.unrecorded[0].place.contains("(seq 2)"), "{:?}", report.unrecorded[0]);
    }

    /// An audit directory whose one log file holds `records` (each without
    /// `seq`, `time` and `prev`) after a genesis checkpoint, chained as the
    /// writer chains them. For attach records, which are written here in the
    /// shape the log holds them; exec ones come from [`start`] and [`end`].
    fn chained_log(records: Vec<Value>) -> tempfile::TempDir {
        let temp = tempfile::tempdir().expect("temp dir");
        let opening = json!({"event": "audit.checkpoint", "reason": "genesis", "file": chain::file_name(1),
                             "open_sessions": []});
        let mut prev = chain::hex(&GENESIS);
        let mut text = String::new();
        for (index, mut record) in std::iter::once(opening).chain(records).enumerate() {
            record["seq"] = json!(index + 1);
            record["time"] = json!("2026-01-01T00:00:00Z");
            record["prev"] = json!(prev);
            let line = record.to_string();
            prev = chain::hex(&chain::hash(line.as_bytes()));
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(temp.path().join(chain::file_name(1)), text).expect("log file");
        std::fs::create_dir_all(temp.path().join("sessions")).expect("sessions");
        temp
    }

    /// A typed record as the log holds it.
    fn line_of(record: Record<Value>) -> Value {
        Value::Object(record.into_line().expect("serializes").0)
    }

    /// An `attach.start` as the attach gate writes it; an allowed one names
    /// its recording.
    fn attach_start(id: &str, decision: &str) -> Value {
        let recording = (decision == "allow").then(|| json!({"path": format!("sessions/x-{id}.cast")}));
        json!({"event": "attach.start", "attach_id": id, "decision": decision, "reasons": [], "warnings": [],
               "policy_hash": "sha256:p", "container": {"id": "c0ffee", "name": "web", "image": "busybox"},
               "process": {"command": ["sh"], "user": ""}, "tty": true,
               "attach": {"stdin": true, "stdout": true, "stderr": true, "logs": false, "stream": true,
                          "detach_keys": null},
               "caller": {"uid": 0, "gid": 0, "loginuid": null}, "request": {"method": "POST", "path": "/x"},
               "output_captured": true, "recording": recording})
    }

    /// An `attach.end`, with the recording it names (or none, and why).
    fn attach_end(id: &str, reason: &str, recording: Option<Value>, error: Option<&str>) -> Value {
        let mut end = json!({"event": "attach.end", "attach_id": id, "reason": reason, "exit_code": 0,
               "duration_ms": 3, "bytes": {"stdin": 1, "stdout": 2, "stderr": 0, "not_stored": 0},
               "output_captured": true, "recording": recording, "tty": true,
               "container": {"id": "c0ffee", "name": "web", "image": "busybox"}});
        if let Some(error) = error {
            end["recording_error"] = json!(error);
        }
        end
    }

    /// The `attach.end` a restarted execgate writes for a session it found open.
    fn attach_incomplete(id: &str) -> Value {
        json!({"event": "attach.end", "attach_id": id, "reason": "incomplete", "exit_code": null,
               "detail": "execgate stopped without ending this session (killed or crashed)"})
    }

    /// Writes `contents` as the recording at `path` in `dir`; the summary a
    /// record gives of it.
    fn recording(dir: &Path, path: &str, contents: &str) -> Value {
        std::fs::write(dir.join(path), contents).expect("recording");
        json!({"path": path, "bytes": contents.len(), "sha256": chain::hex(&chain::hash(contents.as_bytes()))})
    }

    #[test]
    fn attach_sessions_are_paired_and_listed_beside_exec_sessions() {
        const WHOLE: &str = "attach-00000000000000000000000000000001";
        const NEVER: &str = "attach-00000000000000000000000000000002";
        const FAILED: &str = "attach-00000000000000000000000000000003";
        const CRASHED_KEPT: &str = "attach-00000000000000000000000000000004";
        const CRASHED_GONE: &str = "attach-00000000000000000000000000000005";
        const LIVE_GONE: &str = "attach-00000000000000000000000000000006";
        const LIVE_HERE: &str = "attach-00000000000000000000000000000007";
        const DENIED: &str = "attach-00000000000000000000000000000008";
        let cast = |id: &str| format!("sessions/x-{id}.cast");
        let staging = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(staging.path().join("sessions")).expect("sessions");
        let partial = recording(staging.path(), &cast(WHOLE), "{\"version\":2}\n");
        let whole = recording(staging.path(), &cast(WHOLE), "{\"version\":2}\n[0.1,\"o\",\"hi\"]\n");
        let exec_whole = recording(staging.path(), "sessions/exec-ok.jsonl", "{}\n");
        let mut exec_ended = line_of(end("exec-ok", EndReason::Exited, None));
        exec_ended["recording"] = exec_whole;
        let temp = chained_log(vec![
            line_of(start("exec-ok", Verdict::Allow)),
            attach_start(WHOLE, "allow"),
            json!({"event": "recording.checkpoint", "attach_id": WHOLE, "recording": partial}),
            line_of(start("exec-never", Verdict::Allow)),
            attach_start(NEVER, "allow"),
            exec_ended,
            attach_end(WHOLE, "detached", Some(whole), None),
            attach_end(NEVER, "exited", None, None),
            line_of(end("exec-never", EndReason::Exited, None)),
            attach_start(FAILED, "allow"),
            attach_end(FAILED, "recording_failed", None, Some("write failed: disk full")),
            attach_start(CRASHED_KEPT, "allow"),
            attach_start(CRASHED_GONE, "allow"),
            attach_incomplete(CRASHED_KEPT),
            attach_incomplete(CRASHED_GONE),
            attach_start(LIVE_GONE, "allow"),
            attach_start(LIVE_HERE, "allow"),
            attach_start(DENIED, "deny"),
            attach_end(DENIED, "exited", None, None),
        ]);
        for path in [cast(WHOLE), "sessions/exec-ok.jsonl".into()] {
            std::fs::copy(staging.path().join(&path), temp.path().join(&path)).expect("copy");
        }
        for id in [CRASHED_KEPT, LIVE_HERE] {
            std::fs::write(temp.path().join(cast(id)), "{}\n").expect("recording");
        }
        let report = verify(temp.path(), None).expect("the chain is intact");
        assert_eq!(report.records, 20);
        // The attach end, its checkpoint and the exec end.
        assert_eq!(report.recordings, 3);
        let listed: Vec<(Kind, &str, &str)> =
            report.unrecorded.iter().map(|u| (u.kind, u.exec_id.as_str(), u.reason.as_str())).collect();
        assert_eq!(listed.len(), 5, "{listed:#?}");
        assert!(listed[0].1 == NEVER && listed[0].2.contains("never written"), "{listed:#?}");
        assert!(listed[1].0 == Kind::Exec && listed[1].1 == "exec-never", "{listed:#?}");
        assert!(listed[2].1 == FAILED && listed[2].2.contains("disk full"), "{listed:#?}");
        assert!(listed[3].1 == CRASHED_GONE && listed[3].2.contains("is missing"), "{listed:#?}");
        assert!(listed[4].1 == LIVE_GONE && listed[4].2.contains("is missing"), "{listed:#?}");
        assert!([0, 2, 3, 4].iter().all(|&i| listed[i].0 == Kind::Attach), "{listed:#?}");
        assert!(report.unrecorded[0].place.contains("(seq 6)"), "{:?}", report.unrecorded[0]);
        assert_eq!(
            format!("{} {}", report.unrecorded[0].kind, report.unrecorded[1].kind),
            "attach exec",
            "the kind reads as the CLI prints it"
        );
    }

    #[test]
    fn an_attach_recording_is_checked_whole_at_its_end_and_by_prefix_at_checkpoints() {
        const ID: &str = "attach-0123456789abcdef0123456789abcdef";
        let path = format!("sessions/x-{ID}.cast");
        let body = "{\"version\":2}\n[0.1,\"o\",\"hi\"]\n";
        let staging = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(staging.path().join("sessions")).expect("sessions");
        let prefix = recording(staging.path(), &path, &body[..14]);
        let final_summary = recording(staging.path(), &path, body);
        let records = || {
            vec![
                attach_start(ID, "allow"),
                json!({"event": "recording.checkpoint", "attach_id": ID, "recording": prefix.clone()}),
                attach_end(ID, "exited", Some(final_summary.clone()), None),
            ]
        };
        let temp = chained_log(records());
        let file = temp.path().join(&path);
        std::fs::write(&file, body).expect("recording");
        assert!(verify(temp.path(), None).expect("intact").unrecorded.is_empty());
        // Grown after its end: the prefix still matches, the size does not.
        std::fs::write(&file, format!("{body}[0.2,\"o\",\"more\"]\n")).expect("recording");
        let grown = verify(temp.path(), None).expect_err("a grown recording");
        assert!(grown.reason.contains("the record says") && grown.place.contains("(seq 4)"), "{grown}");
        // Changed within the checkpointed prefix.
        std::fs::write(&file, body.replacen("version", "VERSION", 1)).expect("recording");
        let changed = verify(temp.path(), None).expect_err("a changed recording");
        assert!(changed.reason.contains("does not match its hash") && changed.place.contains("(seq 3)"));
        // Gone.
        std::fs::remove_file(&file).expect("remove");
        let gone = verify(temp.path(), None).expect_err("a missing recording");
        assert!(gone.reason.contains("is missing"), "{gone}");
    }

    /// Writes `lines` as one log file in a fresh directory and verifies it.
    fn verify_lines(tag: &str, lines: &[String]) -> Result<Report, Broken> {
        let dir =
            tempfile::Builder::new().prefix(&format!("execgate-verify-{tag}-")).tempdir().expect("temp dir");
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.path().join(chain::file_name(1)), text).expect("log file");
        verify(dir.path(), None)
    }

    /// Regression (found by the `audit_verify` fuzz target): a chain whose seq
    /// wraps from `u64::MAX` to 0 overflowed `last_seq + 1` — a panic in a
    /// debug build, and in a release build the wrapped seq passed as the next.
    #[test]
    fn a_seq_past_u64_max_is_a_jump() {
        let first =
            serde_json::json!({"seq": u64::MAX, "prev": chain::hex(&[7; 32]), "event": "audit.checkpoint"})
                .to_string();
        let second =
            serde_json::json!({"seq": 0, "prev": chain::hex(&chain::hash(first.as_bytes())), "event": "x"})
                .to_string();
        let broken = verify_lines("wrap", &[first, second]).expect_err("a wrapped seq does not verify");
        assert_eq!(broken.reason, format!("sequence jumps from {} to 0", u64::MAX));
    }
}
