//! `execgate audit verify`: recomputes the chain over every retained log file,
//! checks every recording a record names, and checks the anchors kept outside
//! the log. The first problem found is reported with its file, line and seq.

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
    /// The exec.
    pub exec_id: String,
    /// What is missing, and why when the log says.
    pub reason: String,
}

/// An allowed `exec.start` that names a recording, until its `exec.end`.
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
    announced: HashMap<String, Announced>,
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
        let mut live: Vec<(String, Announced)> = std::mem::take(&mut self.announced).into_iter().collect();
        live.sort_by(|a, b| a.1.place.cmp(&b.1.place));
        for (exec_id, start) in live {
            if let Err(reason) = exists(self.dir, &start.path) {
                self.unrecorded.push(Unrecorded { place: start.place, exec_id, reason });
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
    announced: &mut HashMap<String, Announced>,
    unrecorded: &mut Vec<Unrecorded>,
) {
    let Some(exec_id) = record["exec_id"].as_str() else { return };
    match record["event"].as_str() {
        Some("exec.start") if record["decision"] == "allow" => {
            if let Some(path) = record["recording"]["path"].as_str() {
                announced.insert(exec_id.to_owned(), Announced { place, path: path.to_owned() });
            }
        }
        Some("exec.end") => {
            let Some(start) = announced.remove(exec_id) else { return };
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
            unrecorded.push(Unrecorded { place: start.place, exec_id: exec_id.to_owned(), reason });
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

/// Checks the recording a record names: the whole file for `exec.end`, the
/// prefix it had for a `recording.checkpoint`.
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
    let whole = record["event"] == "exec.end";
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
