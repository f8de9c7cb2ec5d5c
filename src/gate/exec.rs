//! The exec gate: judges `POST /containers/{id}/exec` and `POST /exec/{id}/start`
//! (decode → context → policy → record → permit).

use std::sync::Arc;

use bytes::Bytes;
use hyper::http::request::Parts;
use hyper::{Request, StatusCode};
use serde::Serialize;
use tracing::{info, warn};

use super::create::ExecConfig;
use super::facts::{ExecFacts, RecordingPath, RefusedFacts, StartFacts};
use super::identity::Identity;
use super::input::{self, Input, RequestInfo};
use super::judge;
use super::memory::{Memory, StartClaim};
use super::permit::{CreatePermit, Judged, Sealed, StartPermit, StartPlan};
use super::start::StartConfig;
use super::users::{UserRules, Users};
use crate::audit::record::{Decided, Subject};
use crate::audit::{Audit, Record, recording::Header};
use crate::daemon::inspect::{self, ContainerInfo, ExecInspect};
use crate::daemon::upstream::Control;
use crate::http::body::Body;
use crate::http::error::ProxyError;
use crate::http::route::Prefix;
use crate::peer::CallerInfo;
use crate::policy::{Decision, Policies};

/// The exec gate shared by every connection.
pub struct ExecGate {
    policies: Arc<Policies>,
    users: Users,
    audit: Audit,
    memory: Memory,
}

impl ExecGate {
    /// A gate judging with `policies`, settling users as `rules` say and
    /// recording every decision in `audit`.
    pub fn new(policies: Arc<Policies>, rules: UserRules, audit: Audit) -> Self {
        ExecGate { policies, users: Users { rules }, audit, memory: Memory::default() }
    }

    /// Judges `POST /containers/{reference}/exec`.
    pub async fn create(
        &self,
        daemon: &Control<'_>,
        caller: &CallerInfo,
        request: Request<Body>,
        reference: &str,
        prefix: &Prefix,
    ) -> Result<CreatePermit, ProxyError> {
        let (parts, config, request_info) =
            input::decode(request, prefix, "exec create", ExecConfig::decode).await?;
        let (container, user, sealed) =
            match self.create_context(daemon, reference, &config, parts, prefix).await {
                Ok(found) => found,
                Err(err) => {
                    return Err(self
                        .refused(
                            Record::ExecCreate,
                            None,
                            self.refused_facts(&config, reference, caller, &request_info),
                            err,
                        )
                        .await);
                }
            };
        let input = Input {
            action: "create",
            exec: &config,
            exec_seen: true,
            start: None,
            container: &container,
            user: &user,
            caller,
            request: &request_info,
        };
        let decision = self.decide(&input, None);
        let create_seq =
            self.record(Record::ExecCreate, None, &decision, ExecFacts::of(&input, &self.audit)).await?;
        let judged = Judged { create_seq, container_id: container.id.clone(), config, identity: user };
        Ok(CreatePermit::new(sealed, judged))
    }

    /// What a create is judged in: the running container it names, and who
    /// the exec would run as there; with the request that will carry it.
    async fn create_context(
        &self,
        daemon: &Control<'_>,
        reference: &str,
        config: &ExecConfig,
        parts: Parts,
        prefix: &Prefix,
    ) -> Result<(ContainerInfo, Identity, Sealed), ProxyError> {
        judge::require_no_owed_records(&self.audit)?;
        let container = inspect::container_inspect(daemon, reference).await?;
        require_running(&container)?;
        let user = self.users.at_create(daemon, &container, &config.user).await?;
        // Pin the container by full id: a rename or replacement after this
        // point cannot redirect what was judged.
        let target = format!("{}/containers/{}/exec", prefix.path(), inspect::segment(&container.id));
        // The judged identity, pinned: the daemon gets the numbers, not a name
        // it would look up again at start (see `identity`).
        let forwarded = ExecConfig { user: user.forwarded.clone(), ..config.clone() };
        let sealed = Sealed::new(parts, &target, Bytes::from(forwarded.encode()))?;
        Ok((container, user, sealed))
    }

    /// Remembers a created exec under the id the daemon gave it.
    pub fn remember(&self, exec_id: String, judged: Judged) {
        self.memory.remember(exec_id, judged);
    }

    /// Judges `POST /exec/{id}/start` with the caller who starts it.
    pub async fn start(
        &self,
        daemon: &Control<'_>,
        caller: &CallerInfo,
        request: Request<Body>,
        exec_id: &str,
        prefix: &Prefix,
    ) -> Result<StartPermit, ProxyError> {
        let (parts, start, request_info) =
            input::decode(request, prefix, "exec start", StartConfig::decode).await?;
        let target = format!("{}/exec/{}/start", prefix.path(), inspect::segment(exec_id));
        let canonical = serde_json::to_vec(&start)
            .map_err(|e| ProxyError::Internal(format!("cannot encode the judged exec start body: {e}")))?;
        let sealed = Sealed::new(parts, &target, Bytes::from(canonical))?;
        let judged = self.memory.recall(exec_id);
        let (claim, inspect, container, user) =
            match self.start_context(daemon, exec_id, judged.as_ref()).await {
                Ok(found) => found,
                Err(err) => {
                    let config = judged.map(|j| j.config).unwrap_or_default();
                    return Err(self
                        .refused(
                            Record::ExecStart,
                            Some(exec_id),
                            self.refused_facts(&config, "", caller, &request_info),
                            err,
                        )
                        .await);
                }
            };
        let config = match &judged {
            Some(judged) => judged.config.clone(),
            None => from_inspect(&inspect),
        };
        let input = Input {
            action: "start",
            exec: &config,
            exec_seen: judged.is_some(),
            start: Some(&start),
            container: &container,
            user: &user,
            caller,
            request: &request_info,
        };
        let decision = self.decide(&input, Some(exec_id));
        let facts = ExecFacts::of(&input, &self.audit);
        // An attached start streams through execgate and is recorded; its
        // recording exists before the decision is durable, so the record can
        // name it, and a session that cannot be recorded does not start.
        let session = match (decision.allowed(), start.detach) {
            (true, false) => match self.audit.recorder().open(recording_header(&input, exec_id)).await {
                Ok(session) => Some(session),
                Err(err) => {
                    let facts = self.refused_facts(&config, "", caller, &request_info);
                    let err = ProxyError::RecordingUnavailable(err.to_string());
                    return Err(self.refused(Record::ExecStart, Some(exec_id), facts, err).await);
                }
            },
            _ => None,
        };
        let start_facts = StartFacts {
            start: &start,
            created_seq: judged.as_ref().map(|j| j.create_seq),
            output_captured: session.is_some(),
            recording: session
                .as_ref()
                .filter(|_| self.audit.recorder().enabled())
                .map(|s| RecordingPath { path: s.path.clone() }),
            exec: &facts,
        };
        if let Err(err) = self.record(Record::ExecStart, Some(exec_id), &decision, start_facts).await {
            // Refused after all: the recording holds only its first line.
            if let Some(session) = session {
                let _ = session.finish().await;
            }
            return Err(err);
        }
        claim.keep();
        Ok(StartPermit::new(sealed, StartPlan::new(exec_id, facts, start, session)))
    }

    /// What a start is judged in: the exec as the daemon holds it now (not
    /// running, and as judged at create), its running container, and who it
    /// runs as. Claims the exec for this start first.
    async fn start_context(
        &self,
        daemon: &Control<'_>,
        exec_id: &str,
        judged: Option<&Judged>,
    ) -> Result<(StartClaim<'_>, ExecInspect, ContainerInfo, Identity), ProxyError> {
        judge::require_no_owed_records(&self.audit)?;
        let claim = self.memory.claim_start(exec_id)?;
        let inspect = inspect::exec_inspect(daemon, exec_id).await?;
        if inspect.running {
            return Err(ProxyError::Conflict(format!(
                "exec {exec_id} is already running; an exec runs once (create a new one)"
            )));
        }
        if let Some(judged) = judged {
            still_as_judged(exec_id, judged, &inspect)?;
        }
        let container = inspect::container_inspect(daemon, &inspect.container_id).await?;
        require_running(&container)?;
        let user = self.users.at_start(daemon, &container, exec_id, &inspect, judged).await?;
        Ok((claim, inspect, container, user))
    }

    /// The facts of a request refused before any decision.
    fn refused_facts(
        &self,
        config: &ExecConfig,
        reference: &str,
        caller: &CallerInfo,
        request: &RequestInfo<'_>,
    ) -> RefusedFacts {
        RefusedFacts::of(config, reference, caller, request, &self.audit)
    }

    /// Records a refusal that came before any decision, and returns the error.
    async fn refused(
        &self,
        kind: fn(Decided<RefusedFacts>) -> Record<RefusedFacts>,
        exec_id: Option<&str>,
        facts: RefusedFacts,
        err: ProxyError,
    ) -> ProxyError {
        judge::refused(&self.audit, kind, exec_subject(exec_id), facts, err).await
    }

    /// Makes a decision durable (see [`judge::record`]).
    async fn record<F: Serialize>(
        &self,
        kind: fn(Decided<F>) -> Record<F>,
        exec_id: Option<&str>,
        decision: &Decision,
        facts: F,
    ) -> Result<u64, ProxyError> {
        judge::record(&self.audit, kind, exec_subject(exec_id), decision, facts, ProxyError::Denied).await
    }

    /// Evaluates the policy and logs the decision.
    fn decide(&self, input: &Input<'_>, exec_id: Option<&str>) -> Decision {
        let started = std::time::Instant::now();
        let decision = judge::evaluate(&self.policies, input);
        let decision_us = started.elapsed().as_micros() as u64;
        let cmd = input.exec.cmd.as_deref().unwrap_or_default().join(" ");
        if decision.allowed() {
            info!(
                action = input.action, exec_id, container = %input.container.name, user = %input.user.resolved.spec,
                uid = input.user.resolved.uid, cmd, caller.uid = input.caller.uid, caller.pid = input.caller.pid,
                warn = ?decision.warn, decision_us, "exec allowed"
            );
        } else {
            warn!(
                action = input.action, exec_id, container = %input.container.name, user = %input.user.resolved.spec,
                uid = input.user.resolved.uid, cmd, caller.uid = input.caller.uid, caller.pid = input.caller.pid,
                reasons = ?decision.deny, decision_us, "exec denied"
            );
        }
        decision
    }
}

/// An exec's records name it by its id; a create's by none yet.
fn exec_subject(exec_id: Option<&str>) -> Subject {
    Subject::Exec { exec_id: exec_id.map(str::to_owned) }
}

/// The daemon refuses execs into stopped containers; say so in its words rather
/// than fail on a root filesystem that is not mounted.
fn require_running(container: &ContainerInfo) -> Result<(), ProxyError> {
    if container.running {
        return Ok(());
    }
    Err(ProxyError::Daemon {
        status: StatusCode::CONFLICT,
        context: format!("cannot exec in container {}", container.name),
        message: format!("Container {} is not running", container.id),
    })
}

/// Checks that the exec about to start is the one judged at create.
fn still_as_judged(exec_id: &str, judged: &Judged, inspect: &ExecInspect) -> Result<(), ProxyError> {
    let p = &inspect.process_config;
    let cmd = judged.config.cmd.as_deref().unwrap_or_default();
    let same = inspect.container_id == judged.container_id
        && p.privileged == judged.config.privileged
        && p.tty == judged.config.tty
        && judged.identity.is_stored_as(&p.user)
        && cmd.first().map(String::as_str) == Some(p.entrypoint.as_str())
        && cmd.get(1..).unwrap_or_default() == p.arguments.as_slice();
    if same {
        Ok(())
    } else {
        Err(ProxyError::Denied(vec![format!("exec {exec_id} is not the exec that was judged at create")]))
    }
}

/// An exec execgate never saw created, rebuilt from the daemon's inspect.
/// `Env` and `WorkingDir` are not in the inspect: they stay unknown (null, "").
fn from_inspect(inspect: &ExecInspect) -> ExecConfig {
    let p = &inspect.process_config;
    let mut cmd = vec![p.entrypoint.clone()];
    cmd.extend(p.arguments.iter().cloned());
    ExecConfig {
        user: p.user.clone(),
        privileged: p.privileged,
        tty: p.tty,
        cmd: Some(cmd),
        ..ExecConfig::default()
    }
}

/// The first line of an attached start's recording.
fn recording_header(input: &Input<'_>, exec_id: &str) -> Header {
    let start = input.start.copied().unwrap_or_default();
    Header {
        subject: Subject::exec(exec_id),
        container_id: input.container.id.clone(),
        container: input.container.name.clone(),
        command: input.exec.cmd.clone().unwrap_or_default(),
        user: input.user.resolved.spec.clone(),
        tty: start.tty,
        console: start.console_size.or(input.exec.console_size).map(|c| c.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::inspect::ProcessConfig;
    use crate::gate::identity::PinUser;
    use crate::gate::user::EffectiveUser;

    fn judged() -> Judged {
        let config =
            ExecConfig { cmd: Some(vec!["sh".into(), "-c".into(), "id".into()]), ..ExecConfig::default() };
        let resolved = EffectiveUser {
            spec: "app".into(),
            name: Some("app".into()),
            uid: 1000,
            gid: 1000,
            groups: vec![],
            is_root: false,
        };
        let identity = Identity::at_create("", resolved, PinUser::Off);
        Judged { create_seq: 1, container_id: "c1".into(), config, identity }
    }

    fn inspect(container: &str, user: &str, args: &[&str]) -> ExecInspect {
        ExecInspect {
            container_id: container.into(),
            running: false,
            exit_code: None,
            process_config: ProcessConfig {
                tty: false,
                entrypoint: "sh".into(),
                arguments: args.iter().map(|a| (*a).to_owned()).collect(),
                privileged: false,
                user: user.into(),
            },
        }
    }

    #[test]
    fn a_start_must_match_what_was_judged() {
        assert!(still_as_judged("e", &judged(), &inspect("c1", "app", &["-c", "id"])).is_ok());
        assert!(still_as_judged("e", &judged(), &inspect("c2", "app", &["-c", "id"])).is_err());
        assert!(still_as_judged("e", &judged(), &inspect("c1", "root", &["-c", "id"])).is_err());
        assert!(still_as_judged("e", &judged(), &inspect("c1", "app", &["-c", "id; sh"])).is_err());
    }

    #[test]
    fn unseen_execs_are_rebuilt_from_inspect() {
        let config = from_inspect(&inspect("c1", "app", &["-c", "id"]));
        assert_eq!(config.cmd, Some(vec!["sh".to_owned(), "-c".to_owned(), "id".to_owned()]));
        assert_eq!(config.user, "app");
        assert_eq!(config.env, None);
    }
}
