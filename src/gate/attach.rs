//! The attach gate: judges `POST /containers/{id}/attach`, the other way into
//! a running container (`docker attach`, `start -ai`, the attach of
//! `run -it`): parameters → context → policy → record → permit. Attaching to a
//! container whose PID 1 is a shell is a shell, so it is judged and recorded
//! like an exec.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use hyper::http::request::Parts;
use hyper::{Request, header};
use tracing::{debug, info, warn};

use super::facts::{AttachFacts, AttachStartFacts, RecordingPath};
use super::gojson::Ignored;
use super::input::{AttachInput, AttachView, Process, RequestInfo};
use super::judge;
use super::permit::{AttachPermit, AttachPlan, Sealed};
use super::query::AttachQuery;
use super::users::{UserRules, Users};
use crate::audit::record::{ATTACH_PREFIX, Subject};
use crate::audit::recording::Header;
use crate::audit::{Audit, Record};
use crate::daemon::inspect::{self, ContainerInfo};
use crate::daemon::upstream::Control;
use crate::http::body::Body;
use crate::http::error::ProxyError;
use crate::http::framing;
use crate::http::route::Prefix;
use crate::peer::CallerInfo;
use crate::policy::Policies;

/// The attach gate shared by every connection.
pub struct AttachGate {
    policies: Arc<Policies>,
    users: Users,
    audit: Audit,
}

impl AttachGate {
    /// A gate judging attaches with `policies`, resolving PID 1's user as
    /// `rules` say, and recording every decision in `audit`.
    pub fn new(policies: Arc<Policies>, rules: UserRules, audit: Audit) -> Self {
        AttachGate { policies, users: Users { rules }, audit }
    }

    /// Judges `POST /containers/{reference}/attach`.
    pub async fn attach(
        &self,
        daemon: &Control<'_>,
        caller: &CallerInfo,
        request: Request<Body>,
        reference: &str,
        prefix: &Prefix,
    ) -> Result<AttachPermit, ProxyError> {
        let (parts, query, ignored_body_bytes) = read_request(request).await?;
        let request_info = RequestInfo::new(&parts, prefix, Ignored::default());
        let attach_id = new_attach_id();
        let subject = Subject::Attach { attach_id: attach_id.clone() };
        let (container, sealed) = match self.context(daemon, reference, parts, prefix).await {
            Ok(found) => found,
            Err(err) => {
                let facts = AttachFacts::refused(reference, &query, caller, &request_info);
                return Err(judge::refused(&self.audit, Record::AttachStart, subject, facts, err).await);
            }
        };
        let process = self.process(daemon, &container).await;
        let interactive = query.stream && query.stdin && container.open_stdin;
        let input = AttachInput {
            action: "attach",
            container: &container,
            attach: AttachView { query: &query, interactive, ignored_body_bytes },
            process,
            caller,
            request: &request_info,
        };
        let started = std::time::Instant::now();
        let decision = judge::evaluate(&self.policies, &input);
        log_decision(&input, &attach_id, &decision, started.elapsed().as_micros() as u64);
        let facts = AttachFacts::of(&input);
        let recording = if decision.allowed() {
            let header = Header {
                subject: subject.clone(),
                container_id: container.id.clone(),
                container: container.name.clone(),
                command: container.command.clone(),
                user: container.user.clone(),
                tty: container.tty,
                console: None,
            };
            match self.audit.recorder().open(header).await {
                Ok(session) => Some(session),
                Err(err) => {
                    let facts = AttachFacts::refused(reference, &query, caller, &request_info);
                    let err = ProxyError::RecordingUnavailable(err.to_string());
                    return Err(judge::refused(&self.audit, Record::AttachStart, subject, facts, err).await);
                }
            }
        } else {
            None
        };
        let start_facts = AttachStartFacts {
            output_captured: recording.is_some(),
            recording: recording
                .as_ref()
                .filter(|_| self.audit.recorder().enabled())
                .map(|s| RecordingPath { path: s.path.clone() }),
            attach: &facts,
        };
        let recorded = judge::record(
            &self.audit,
            Record::AttachStart,
            subject,
            &decision,
            start_facts,
            ProxyError::AttachDenied,
        )
        .await;
        if let Err(err) = recorded {
            if let Some(session) = recording {
                let _ = session.finish().await;
            }
            return Err(err);
        }
        let plan = AttachPlan::new(
            attach_id,
            (container.id.clone(), container.finished_at.clone()),
            facts,
            container.tty,
            recording,
        );
        Ok(AttachPermit::new(sealed, plan))
    }

    /// The container attached to, and the request that will carry the attach
    /// to it, pinned to its full id.
    async fn context(
        &self,
        daemon: &Control<'_>,
        reference: &str,
        parts: Parts,
        prefix: &Prefix,
    ) -> Result<(ContainerInfo, Sealed), ProxyError> {
        judge::require_no_owed_records(&self.audit)?;
        let container = inspect::container_inspect(daemon, reference).await?;
        // Pinned by full id: a rename or replacement after this point cannot
        // redirect what was judged.
        let target = format!("{}/containers/{}/attach", prefix.path(), inspect::segment(&container.id));
        let sealed = Sealed::new(parts, &target, Bytes::new())?;
        Ok((container, sealed))
    }

    /// PID 1 as policy sees it. Its user is resolved where the container's
    /// files can be read; an attach usually comes before the container starts
    /// (`run -it`, `start -ai`), so that may fail, and the input says so
    /// rather than guess.
    async fn process(&self, daemon: &Control<'_>, container: &ContainerInfo) -> Process {
        let resolved = self.users.resolve(daemon, container, &container.user).await;
        let (uid, is_root, user_error) = match resolved {
            Ok(user) => (Some(user.uid), Some(user.is_root), None),
            Err(err) => {
                debug!(container = %container.name, error = %err, "cannot resolve the user of PID 1");
                (None, None, Some(err.to_string()))
            }
        };
        Process { command: container.command.clone(), user: container.user.clone(), uid, is_root, user_error }
    }
}

/// The attach's parameters, read as the daemon reads them, and the size of
/// any other body. A form body is refused: the daemon would read parameters
/// from it, ahead of the query. Any other body (dockerode repeats its options
/// as JSON there) is read and not forwarded: the daemon ignores it as a body,
/// but after the hijack would take its bytes for the start of stdin,
/// unrecorded.
async fn read_request(request: Request<Body>) -> Result<(Parts, AttachQuery, usize), ProxyError> {
    let (parts, body) = request.into_parts();
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if form {
        return Err(ProxyError::BadRequest(
            "an attach with a form body is refused: the daemon would read its parameters from the body; \
             pass them in the query"
                .into(),
        ));
    }
    let ignored = framing::read(&parts.headers, body, "attach").await?.len();
    let query = AttachQuery::parse(parts.uri.query())
        .map_err(|e| ProxyError::BadRequest(format!("malformed attach query: {e}")))?;
    Ok((parts, query, ignored))
}

/// A new session id: `attach-` and 128 random bits in hex. std's
/// `RandomState` is seeded from the OS's random source for each instance.
fn new_attach_id() -> String {
    let word = || RandomState::new().build_hasher().finish();
    format!("{ATTACH_PREFIX}{:016x}{:016x}", word(), word())
}

fn log_decision(
    input: &AttachInput<'_>,
    attach_id: &str,
    decision: &crate::policy::Decision,
    decision_us: u64,
) {
    let cmd = input.container.command.join(" ");
    let (container, interactive) = (&input.container.name, input.attach.interactive);
    if decision.allowed() {
        info!(
            attach_id, container = %container, cmd, interactive, caller.uid = input.caller.uid,
            caller.pid = input.caller.pid, warn = ?decision.warn, decision_us, "attach allowed"
        );
    } else {
        warn!(
            attach_id, container = %container, cmd, interactive, caller.uid = input.caller.uid,
            caller.pid = input.caller.pid, reasons = ?decision.deny, decision_us, "attach denied"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_ids_are_distinct_and_never_look_like_exec_ids() {
        let (a, b) = (new_attach_id(), new_attach_id());
        assert_ne!(a, b);
        assert!(a.starts_with(ATTACH_PREFIX) && a.len() == ATTACH_PREFIX.len() + 32, "{a}");
        assert_eq!(Subject::of_key(&a), Subject::Attach { attach_id: a.clone() });
    }
}
