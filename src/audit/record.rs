//! Every kind of audit record, with typed fields. A record is serialized in
//! one place ([`Record::into_line`]): flat, with `event` naming its kind, as
//! the log has always held them.
//!
//! Exec records carry facts about the exec that the exec gate owns (the
//! container, command, user, caller…); they are the type parameter `F`,
//! flattened into the record. Records without such facts use [`Bare`].

use serde::Serialize;
use serde_json::{Map, Value};

use super::chain;

/// A record of one kind, ready to be chained into the log.
#[derive(Debug, Serialize)]
#[serde(tag = "event")]
pub enum Record<F> {
    /// A decision on an exec create.
    #[serde(rename = "exec.create")]
    ExecCreate(Decided<F>),
    /// A decision on an exec start.
    #[serde(rename = "exec.start")]
    ExecStart(Decided<F>),
    /// The end of a session an allowed start began.
    #[serde(rename = "exec.end")]
    ExecEnd(Ended<F>),
    /// A decision on an attach to a container's stdio.
    #[serde(rename = "attach.start")]
    AttachStart(Decided<F>),
    /// A decision of the request policy on another route.
    #[serde(rename = "request")]
    Request(Decided<F>),
    /// The end of a session an allowed attach began.
    #[serde(rename = "attach.end")]
    AttachEnd(Ended<F>),
    /// The prefix of a live recording, synced.
    #[serde(rename = "recording.checkpoint")]
    RecordingCheckpoint {
        /// The session.
        #[serde(flatten)]
        subject: Subject,
        /// Its recording so far.
        recording: Summary,
    },
    /// The first record of each log file, and the one at each start.
    #[serde(rename = "audit.checkpoint")]
    AuditCheckpoint {
        /// `genesis`, `start` or `rotate`.
        reason: &'static str,
        /// The log file it opens or continues.
        file: String,
        /// Sessions started and not yet ended.
        open_sessions: Vec<String>,
        /// Bytes of a torn last record cut at start, after a crash.
        #[serde(skip_serializing_if = "Option::is_none")]
        cut_incomplete_bytes: Option<u64>,
    },
    /// A policy set loaded, or a reload that left the last good one in force.
    #[serde(rename = "policy.reload")]
    PolicyReload {
        /// `loaded`, `failed` or `rejected`.
        result: &'static str,
        /// `start` for the load at start.
        #[serde(skip_serializing_if = "Option::is_none")]
        trigger: Option<&'static str>,
        /// Why a reload failed or was rejected.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The set in force afterwards.
        policy_hash: String,
        /// Its files.
        files: Vec<String>,
    },
}

/// The facts of a record that has none.
#[derive(Debug, Serialize)]
pub struct Bare {}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The exec goes ahead.
    Allow,
    /// It is refused.
    Deny,
}

/// What a session record is about: an exec, or an attach session. Their ids
/// cannot be confused: an attach id starts with `attach-`, an exec id never does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Subject {
    /// An exec (`null` at create: the daemon has not named it yet).
    Exec {
        /// The daemon's exec id.
        exec_id: Option<String>,
    },
    /// An attach to a container's stdio.
    Attach {
        /// execgate's id for the session.
        attach_id: String,
    },
    /// A request on another route: no session.
    Request {},
}

/// How every attach session id begins.
pub const ATTACH_PREFIX: &str = "attach-";

impl Subject {
    /// The exec `exec_id`.
    pub fn exec(exec_id: impl Into<String>) -> Self {
        Subject::Exec { exec_id: Some(exec_id.into()) }
    }

    /// The session a log key names (see [`Subject::key`]).
    pub fn of_key(key: &str) -> Self {
        if key.starts_with(ATTACH_PREFIX) {
            Subject::Attach { attach_id: key.to_owned() }
        } else {
            Subject::exec(key)
        }
    }

    /// The id that names the session in the log, when it has one yet.
    pub fn key(&self) -> Option<&str> {
        match self {
            Subject::Exec { exec_id } => exec_id.as_deref(),
            Subject::Attach { attach_id } => Some(attach_id),
            Subject::Request {} => None,
        }
    }
}

/// A decision, with the facts it was made on.
#[derive(Debug, Serialize)]
pub struct Decided<F> {
    /// The session it is about.
    #[serde(flatten)]
    pub subject: Subject,
    /// What was decided.
    pub decision: Verdict,
    /// Why not, for a denial (capped, like every request-derived field).
    pub reasons: Capped,
    /// The policy's advisories; absent when no policy ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Capped>,
    /// The policy set that decided; absent when none did (a refusal before
    /// policy, e.g. an unresolvable container).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
    /// What the decision was made on.
    #[serde(flatten)]
    pub facts: F,
}

/// How a session ended.
#[derive(Debug, Serialize)]
pub struct Ended<F> {
    /// The session.
    #[serde(flatten)]
    pub subject: Subject,
    /// Why it ended.
    pub reason: EndReason,
    /// The process's exit code, when known.
    pub exit_code: Option<i64>,
    /// What the session carried; absent for one a killed execgate left open.
    #[serde(flatten)]
    pub measured: Option<Measured>,
    /// Free text for the unusual.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The facts of the start it ends.
    #[serde(flatten)]
    pub facts: F,
}

/// What a finished session carried.
#[derive(Debug, Serialize)]
pub struct Measured {
    /// From start to end.
    pub duration_ms: u64,
    /// Bytes through the session.
    pub bytes: Counts,
    /// Whether the stream went through execgate (false for detached execs).
    pub output_captured: bool,
    /// The recording, when one was kept whole.
    pub recording: Option<Summary>,
    /// Why the recording is missing or incomplete, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_error: Option<String>,
}

/// What a record does to the set of open sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sessions {
    /// An allowed start opens one.
    Opens(String),
    /// An end closes one.
    Closes(String),
    /// Nothing.
    Unchanged,
}

impl<F> Record<F> {
    /// The end of a session: `attach.end` for an attach, else `exec.end`.
    pub fn end(ended: Ended<F>) -> Self {
        match ended.subject {
            Subject::Attach { .. } => Record::AttachEnd(ended),
            _ => Record::ExecEnd(ended),
        }
    }
}

impl<F: Serialize> Record<F> {
    /// The record as the object the log chains (without `seq`, `time` and
    /// `prev`, which the writer adds), and what it does to open sessions.
    pub fn into_line(self) -> Result<(Map<String, Value>, Sessions), String> {
        let sessions = match &self {
            Record::ExecStart(d) | Record::AttachStart(d) if d.decision == Verdict::Allow => {
                d.subject.key().map_or(Sessions::Unchanged, |key| Sessions::Opens(key.to_owned()))
            }
            Record::ExecEnd(e) | Record::AttachEnd(e) => {
                e.subject.key().map_or(Sessions::Unchanged, |key| Sessions::Closes(key.to_owned()))
            }
            _ => Sessions::Unchanged,
        };
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => Ok((map, sessions)),
            Ok(other) => Err(format!("an audit record must be a JSON object, not {other}")),
            Err(err) => Err(format!("cannot serialize an audit record: {err}")),
        }
    }
}

impl Sessions {
    /// What a record read back from the log does (on resume).
    pub fn of_line(record: &Value) -> Self {
        let Some(id) = record["exec_id"].as_str().or_else(|| record["attach_id"].as_str()) else {
            return Sessions::Unchanged;
        };
        match (record["event"].as_str(), record["decision"].as_str()) {
            (Some("exec.start" | "attach.start"), Some("allow")) => Sessions::Opens(id.to_owned()),
            (Some("exec.end" | "attach.end"), _) => Sessions::Closes(id.to_owned()),
            _ => Sessions::Unchanged,
        }
    }
}

/// Longest field derived from a request that a record keeps whole, as JSON text.
pub const MAX_FIELD: usize = 4096;

/// A request-derived value as a record keeps it: whole when its JSON text is
/// at most [`MAX_FIELD`] bytes; else its length, SHA-256 and first bytes, so a
/// refused request cannot make a record as large as itself, and whoever holds
/// the original can still match it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Capped {
    /// The value, whole.
    Whole(Value),
    /// What is kept of a value too large to keep.
    Cut {
        /// Its summary.
        capped: Cut,
    },
}

/// What a record keeps of a value it does not keep whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cut {
    /// A value over [`MAX_FIELD`]: the length, hash and first bytes of its JSON text.
    Summary {
        /// Length of its JSON text.
        bytes: usize,
        /// SHA-256 of its JSON text.
        sha256: String,
        /// Its first bytes, at most [`MAX_FIELD`].
        head: String,
    },
    /// A value that could not be serialized (not reachable with the field
    /// types records hold; said, not hidden, if it were).
    Unserializable {
        /// Why.
        error: String,
    },
}

impl Capped {
    /// `value`, capped.
    pub fn new(value: impl Serialize) -> Self {
        let value = match serde_json::to_value(value) {
            Ok(value) => value,
            Err(err) => {
                return Capped::Cut {
                    capped: Cut::Unserializable { error: format!("cannot serialize: {err}") },
                };
            }
        };
        let text = value.to_string();
        if text.len() <= MAX_FIELD {
            return Capped::Whole(value);
        }
        let mut end = MAX_FIELD;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let sha256 = chain::hex(&chain::hash(text.as_bytes()));
        Capped::Cut { capped: Cut::Summary { bytes: text.len(), sha256, head: text[..end].to_owned() } }
    }
}

/// How a session ended, for its `exec.end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The process exited and the stream closed.
    Exited,
    /// The client went away first.
    ClientHangup,
    /// The daemon's side failed or vanished.
    DaemonError,
    /// execgate stopped while the session ran.
    ProxyShutdown,
    /// A detached exec (`-d`, or detach keys) whose end was observed by polling.
    Detached,
    /// A previous execgate was killed mid-session; found on the next start.
    Incomplete,
    /// The session's recording could not be written, so execgate cut it.
    RecordingFailed,
    /// The daemon ended an attach stream while PID 1 neither ran on nor
    /// exited during it: a logs-only attach, or one to a container that did
    /// not run meanwhile.
    Closed,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn large_request_fields_keep_their_length_and_hash() {
        assert_eq!(serde_json::to_value(Capped::new(vec!["id", "-u"])).expect("json"), json!(["id", "-u"]));
        let huge = vec!["x".repeat(850 * 1024)];
        let text = serde_json::to_string(&huge).expect("json");
        let kept = serde_json::to_value(Capped::new(&huge)).expect("json");
        assert_eq!(kept["capped"]["bytes"], text.len());
        assert_eq!(kept["capped"]["sha256"], chain::hex(&chain::hash(text.as_bytes())));
        assert_eq!(kept["capped"]["head"].as_str().map(str::len), Some(MAX_FIELD));
        assert!(kept.to_string().len() < 2 * MAX_FIELD);
        // A cut never splits a character.
        let wide = "é".repeat(3000);
        assert!(
            serde_json::to_value(Capped::new(&wide)).expect("json")["capped"]["head"]
                .as_str()
                .is_some_and(|h| h.len() <= MAX_FIELD)
        );
    }

    #[test]
    fn records_serialize_flat_as_the_log_has_always_held_them() {
        #[derive(Serialize)]
        struct Facts {
            command: Capped,
        }
        let start = Record::ExecStart(Decided {
            subject: Subject::exec("e1"),
            decision: Verdict::Allow,
            reasons: Capped::new(Vec::<String>::new()),
            warnings: Some(Capped::new(Vec::<String>::new())),
            policy_hash: Some("sha256:p".into()),
            facts: Facts { command: Capped::new(["id"]) },
        });
        let (line, sessions) = start.into_line().expect("serializes");
        assert_eq!(
            Value::Object(line),
            json!({"event": "exec.start", "exec_id": "e1", "decision": "allow", "reasons": [], "warnings": [],
                   "policy_hash": "sha256:p", "command": ["id"]})
        );
        assert_eq!(sessions, Sessions::Opens("e1".into()));
        let end: Record<Bare> = Record::ExecEnd(Ended {
            subject: Subject::exec("e1"),
            reason: EndReason::Incomplete,
            exit_code: None,
            measured: None,
            detail: Some("killed".into()),
            facts: Bare {},
        });
        let (line, sessions) = end.into_line().expect("serializes");
        assert_eq!(
            Value::Object(line),
            json!({"event": "exec.end", "exec_id": "e1", "reason": "incomplete", "exit_code": null, "detail": "killed"})
        );
        assert_eq!(sessions, Sessions::Closes("e1".into()));
    }
}
