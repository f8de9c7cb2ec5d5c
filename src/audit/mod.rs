//! The audit trail: a durable, hash-chained record of every exec decision and
//! session ([`log`]), session recordings ([`recording`]), anchors of the head
//! hash outside the log ([`anchor`]), and the tools that check and read it
//! back ([`verify`], [`show`]).

pub mod anchor;
pub mod chain;
mod clock;
pub mod log;
pub mod recording;
pub mod show;
pub mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};
use tracing::warn;

pub use log::{AuditError, AuditLog, LogConfig};
pub use recording::{Counts, RecordMode, Recorder, Session, Summary};

/// Env names that look secret, matched case-insensitively anywhere in the name.
pub const DEFAULT_REDACT: &[&str] = &["PASSWORD", "PASSWD", "TOKEN", "SECRET", "KEY", "CREDENTIAL"];

/// Everything the audit trail needs to start.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Log files, anchors and rotation.
    pub log: LogConfig,
    /// What session recordings keep.
    pub record: RecordMode,
    /// Bytes stored per session before the rest is only counted.
    pub record_cap: u64,
    /// Env name patterns whose values are redacted in records.
    pub redact: Vec<String>,
}

/// The audit trail's handle, shared by every connection.
#[derive(Clone)]
pub struct Audit {
    log: AuditLog,
    recorder: Recorder,
    redact: Arc<Vec<String>>,
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
}

impl Audit {
    /// Opens the log (continuing its chain), closes sessions a killed
    /// predecessor left open, and starts the recorder.
    pub async fn open(config: AuditConfig) -> Result<(Audit, std::thread::JoinHandle<()>)> {
        let dir = config.log.dir.clone();
        let opened = log::AuditLog::open(config.log)?;
        for exec_id in &opened.unfinished {
            warn!(exec_id, "session left open by a previous run; recording it as incomplete");
            opened
                .log
                .append(json!({
                    "event": "exec.end", "exec_id": exec_id, "reason": EndReason::Incomplete,
                    "exit_code": null, "detail": "execgate stopped without ending this session (killed or crashed)",
                }))
                .await?;
        }
        let recorder = Recorder::start(&dir, config.record, config.record_cap, opened.log.clone())?;
        let audit = Audit { log: opened.log, recorder, redact: Arc::new(config.redact) };
        Ok((audit, opened.thread))
    }

    /// The log.
    pub fn log(&self) -> &AuditLog {
        &self.log
    }

    /// The session recorder.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// `env` with the values of secret-looking names replaced.
    pub fn redact_env(&self, env: Option<&[String]>) -> Value {
        match env {
            None => Value::Null,
            Some(entries) => entries
                .iter()
                .map(|entry| {
                    let (name, _) = entry.split_once('=').unwrap_or((entry, ""));
                    let upper = name.to_ascii_uppercase();
                    let secret =
                        self.redact.iter().any(|p| upper.contains(&p.trim_matches('*').to_ascii_uppercase()));
                    if secret { format!("{name}=[REDACTED]") } else { entry.clone() }
                })
                .collect(),
        }
    }

    /// Writes `exec.end` for a session. The session is over either way, so the
    /// record is owed: if the log refuses it, it is kept and retried (see
    /// [`AuditLog::append_owed`]).
    pub async fn exec_end(&self, facts: &Value, end: SessionEnd) {
        let mut record = json!({
            "event": "exec.end",
            "reason": end.reason,
            "exit_code": end.exit_code,
            "duration_ms": end.duration.as_millis() as u64,
            "bytes": end.counts,
            "output_captured": end.output_captured,
            "recording": end.recording,
        });
        if let Some(error) = end.recording_error {
            record["recording_error"] = json!(error);
        }
        merge(&mut record, facts);
        if let Some(detail) = end.detail {
            record["detail"] = json!(detail);
        }
        let exec_id = record["exec_id"].as_str().unwrap_or_default().to_owned();
        if let Err(err) = self.log.append_owed(record).await {
            warn!(
                exec_id,
                error = %err,
                "the end of this exec session is not in the audit log yet; it is kept and written once the log \
                 takes it, and new execs are refused until then"
            );
        }
    }
}

/// What is known when a session is over.
#[derive(Debug, Clone)]
pub struct SessionEnd {
    /// Why it ended.
    pub reason: EndReason,
    /// The process's exit code, when it has one.
    pub exit_code: Option<i64>,
    /// From start to end.
    pub duration: Duration,
    /// Bytes through the session.
    pub counts: Counts,
    /// Whether the stream went through execgate (false for detached execs).
    pub output_captured: bool,
    /// The recording, when one was kept.
    pub recording: Option<Summary>,
    /// Why the recording is missing or incomplete, when it is.
    pub recording_error: Option<String>,
    /// Free text for the unusual.
    pub detail: Option<String>,
}

/// Longest field derived from a request that a record keeps whole, as JSON text.
pub const MAX_FIELD: usize = 4096;

/// A request-derived `value` as a record keeps it: whole when its JSON text is
/// at most [`MAX_FIELD`] bytes; else its length, SHA-256 and first bytes, so a
/// refused request cannot make a record as large as itself, and whoever holds
/// the original can still match it.
pub fn capped(value: impl serde::Serialize) -> Value {
    let value = match serde_json::to_value(value) {
        Ok(value) => value,
        // Not reachable with the field types records hold; said, not hidden, if it were.
        Err(err) => return json!({ "capped": { "error": format!("cannot serialize: {err}") } }),
    };
    let text = value.to_string();
    if text.len() <= MAX_FIELD {
        return value;
    }
    let mut end = MAX_FIELD;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    json!({ "capped": { "bytes": text.len(), "sha256": chain::hex(&chain::hash(text.as_bytes())), "head": &text[..end] } })
}

/// Copies the fields of object `facts` into object `record` (not overwriting).
pub fn merge(record: &mut Value, facts: &Value) {
    if let (Some(record), Some(facts)) = (record.as_object_mut(), facts.as_object()) {
        for (key, value) in facts {
            record.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
}

/// Default location of the anchor file inside an audit directory.
pub fn default_anchor_file(dir: &std::path::Path) -> PathBuf {
    dir.join("anchors.jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_request_fields_keep_their_length_and_hash() {
        assert_eq!(capped(vec!["id", "-u"]), json!(["id", "-u"]));
        let huge = vec!["x".repeat(850 * 1024)];
        let text = serde_json::to_string(&huge).expect("json");
        let kept = capped(&huge);
        assert_eq!(kept["capped"]["bytes"], text.len());
        assert_eq!(kept["capped"]["sha256"], chain::hex(&chain::hash(text.as_bytes())));
        assert_eq!(kept["capped"]["head"].as_str().map(str::len), Some(MAX_FIELD));
        assert!(kept.to_string().len() < 2 * MAX_FIELD);
        // A cut never splits a character.
        let wide = "é".repeat(3000);
        assert!(capped(&wide)["capped"]["head"].as_str().is_some_and(|h| h.len() <= MAX_FIELD));
    }
}
