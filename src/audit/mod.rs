//! The audit trail: a durable, hash-chained record of every exec decision and
//! session ([`log`]), session recordings ([`recording`]), anchors of the head
//! hash outside the log ([`anchor`]), and the tools that check and read it
//! back ([`verify`], [`show`]).

pub mod anchor;
pub mod chain;
mod clock;
pub mod log;
pub mod record;
pub mod recording;
pub mod show;
pub mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use record::{Bare, Ended, Measured};
use tracing::warn;

pub use log::{AuditError, AuditLog, LogConfig};
pub use record::{Capped, Counts, EndReason, Record, Subject, Summary};
pub use recording::{RecordMode, Recorder, Session};

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

impl Audit {
    /// Opens the log (continuing its chain), closes sessions a killed
    /// predecessor left open, and starts the recorder.
    pub async fn open(config: AuditConfig) -> Result<(Audit, std::thread::JoinHandle<()>)> {
        let dir = config.log.dir.clone();
        let opened = log::AuditLog::open(config.log)?;
        for key in &opened.unfinished {
            warn!(session = key, "session left open by a previous run; recording it as incomplete");
            let end = Ended {
                subject: Subject::of_key(key),
                reason: EndReason::Incomplete,
                exit_code: None,
                measured: None,
                detail: Some("execgate stopped without ending this session (killed or crashed)".into()),
                facts: Bare {},
            };
            opened.log.append(Record::end(end)).await?;
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

    /// Writes `exec.end` or `attach.end` for a session. The session is over
    /// either way, so the record is owed: if the log refuses it, it is kept and
    /// retried (see [`AuditLog::append_owed`]).
    pub async fn session_end(&self, subject: Subject, facts: impl Serialize, end: SessionEnd) {
        let session = subject.key().unwrap_or_default().to_owned();
        let record = Record::end(Ended {
            subject,
            reason: end.reason,
            exit_code: end.exit_code,
            measured: Some(Measured {
                duration_ms: u64::try_from(end.duration.as_millis()).unwrap_or(u64::MAX),
                bytes: end.counts,
                output_captured: end.output_captured,
                recording: end.recording,
                recording_error: end.recording_error,
            }),
            detail: end.detail,
            facts,
        });
        if let Err(err) = self.log.append_owed(record).await {
            warn!(
                session,
                error = %err,
                "the end of this session is not in the audit log yet; it is kept and written once the log \
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

/// Default location of the anchor file inside an audit directory.
pub fn default_anchor_file(dir: &std::path::Path) -> PathBuf {
    dir.join("anchors.jsonl")
}
