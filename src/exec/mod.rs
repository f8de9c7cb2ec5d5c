//! The exec interception: every exec create and start is read as the daemon
//! reads it, placed in context, judged by policy and — only if allowed —
//! rewritten into the canonical request that was judged.
//!
//! body → context → policy → audit → permit. The proxy can forward an exec
//! request only by way of a [`CreatePermit`] or [`StartPermit`], and only this
//! module makes them.

pub mod archive;
pub mod context;
pub mod create;
pub mod facts;
pub mod gojson;
pub mod identity;
pub mod rootfs;
pub mod start;
pub mod user;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use hyper::{Request, StatusCode, Uri};
use serde::Serialize;
use tracing::{info, warn};

use crate::audit::record::{Decided, Verdict};
use crate::audit::{Audit, Capped, Record, Session, recording::Header};
use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::framing;
use crate::peer::CallerInfo;
use crate::policy::{Decision, Policies};
use crate::route::Prefix;
use crate::upstream::Control;
use context::{ContainerInfo, ExecInspect};
use create::ExecConfig;
use facts::{ExecFacts, RecordingPath, RefusedFacts, StartFacts};
use gojson::{Decoded, Ignored};
use identity::{Identity, PinUser, UnpinnedStarts, is_pinned_form};
use start::StartConfig;
use user::EffectiveUser;

/// How many created-but-not-started execs are remembered; older ones are
/// judged from the daemon's inspect alone when they start.
const REMEMBERED: usize = 16 * 1024;

/// Permission to forward one exec create: the canonical request that was
/// judged. Only [`ExecGate`] makes them, and only once the decision is durable
/// in the audit log.
pub struct CreatePermit {
    /// The request to forward.
    pub request: Request<Body>,
    /// What to remember once the daemon answers with the exec id.
    pub judged: Judged,
}

/// Permission to forward one exec start, with the session it begins.
pub struct StartPermit {
    /// The request to forward.
    pub request: Request<Body>,
    /// The session about to run.
    pub plan: StartPlan,
}

/// An allowed exec start: what its `exec.end` will need.
pub struct StartPlan {
    /// The exec.
    pub exec_id: String,
    /// The facts every record of this exec carries.
    pub facts: ExecFacts,
    /// The decoded start body.
    pub start: StartConfig,
    /// The recording, for an attached start.
    pub session: Option<Session>,
    /// When it was allowed.
    pub started: Instant,
}

/// An exec execgate judged at create, kept to check it again at start.
#[derive(Debug, Clone)]
pub struct Judged {
    /// Seq of the `exec.create` record, linked from the start's.
    create_seq: u64,
    container_id: String,
    config: ExecConfig,
    /// Who it runs as, and the user spec forwarded for it.
    identity: Identity,
}

/// The policy input (`input` in Rego); documented in policies/README.md.
#[derive(Serialize)]
struct Input<'a> {
    action: &'static str,
    exec: &'a ExecConfig,
    exec_seen: bool,
    start: Option<&'a StartConfig>,
    container: &'a ContainerInfo,
    user: &'a Identity,
    caller: &'a CallerInfo,
    request: &'a RequestInfo<'a>,
}

#[derive(Serialize)]
struct RequestInfo<'a> {
    method: String,
    path: String,
    api_version: Option<&'a str>,
    /// Body keys the daemon ignores (and execgate does not forward).
    ignored_fields: Ignored,
}

impl<'a> RequestInfo<'a> {
    /// The request as received, before execgate rewrites its path.
    fn new(parts: &hyper::http::request::Parts, prefix: &'a Prefix, ignored_fields: Ignored) -> Self {
        RequestInfo {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            api_version: prefix.version.as_deref(),
            ignored_fields,
        }
    }
}

/// Where the container's `/etc/passwd` and `/etc/group` are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserLookup {
    /// The overlay root when execgate can see it, else the archive API.
    Auto,
    /// Only the overlay root (`GraphDriver.Data.MergedDir`).
    Rootfs,
    /// Only the daemon's archive API (refused where a mount covers the file).
    Archive,
}

/// How the gate settles who an exec runs as.
#[derive(Debug, Clone, Copy)]
pub struct UserRules {
    /// Where the container's passwd and group files are read from.
    pub lookup: UserLookup,
    /// Whether the judged `uid:gid` is forwarded in place of the spec.
    pub pin: PinUser,
    /// What becomes of starts of execs whose user cannot be pinned.
    pub unpinned_starts: UnpinnedStarts,
}

/// The exec gate shared by every connection.
pub struct ExecGate {
    policies: Arc<Policies>,
    rules: UserRules,
    audit: Audit,
    judged: Mutex<Remembered>,
}

#[derive(Default)]
struct Remembered {
    by_id: HashMap<String, Judged>,
    order: VecDeque<String>,
    /// Execs started through execgate (the most recent [`REMEMBERED`]). An exec
    /// runs once: the daemon refuses every start after the first, but still
    /// answers it with a stream, which must not pass for a second session.
    started: HashSet<String>,
    started_order: VecDeque<String>,
}

/// An exec id claimed for one start while it is judged. Dropped without
/// [`StartClaim::keep`] (the start was refused), it frees the exec to be
/// started again.
struct StartClaim<'a> {
    gate: &'a ExecGate,
    exec_id: String,
    kept: bool,
}

impl StartClaim<'_> {
    /// The start goes to the daemon: the exec stays claimed for good.
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for StartClaim<'_> {
    fn drop(&mut self) {
        if !self.kept {
            let mut remembered = self.gate.judged.lock().unwrap_or_else(|p| p.into_inner());
            remembered.started.remove(&self.exec_id);
        }
    }
}

impl ExecGate {
    /// A gate judging with `policies`, settling users as `rules` say and
    /// recording every decision in `audit`.
    pub fn new(policies: Arc<Policies>, rules: UserRules, audit: Audit) -> Self {
        ExecGate { policies, rules, audit, judged: Mutex::new(Remembered::default()) }
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
        let (parts, body) = request.into_parts();
        let bytes = framing::read(&parts.headers, body, "exec create").await?;
        let Decoded { value: config, ignored } = ExecConfig::decode(&bytes)
            .map_err(|e| ProxyError::BadRequest(format!("malformed exec create body: {e}")))?;
        let request_info = RequestInfo::new(&parts, prefix, ignored);
        let (container, user) = match self.create_context(daemon, reference, &config).await {
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
        // Pin the container by full id: a rename or replacement after this
        // point cannot redirect what was judged.
        let target = format!("{}/containers/{}/exec", prefix.path(), context::segment(&container.id));
        // The judged identity, pinned: the daemon gets the numbers, not a name
        // it would look up again at start (see `identity`).
        let forwarded = ExecConfig { user: user.forwarded.clone(), ..config.clone() };
        let request = judged_request(parts, &target, Bytes::from(forwarded.encode()))?;
        let judged = Judged { create_seq, container_id: container.id.clone(), config, identity: user };
        Ok(CreatePermit { request, judged })
    }

    /// What a create is judged in: the running container it names, and who
    /// the exec would run as there.
    async fn create_context(
        &self,
        daemon: &Control<'_>,
        reference: &str,
        config: &ExecConfig,
    ) -> Result<(ContainerInfo, Identity), ProxyError> {
        self.require_no_owed_records()?;
        let container = context::container_inspect(daemon, reference).await?;
        require_running(&container)?;
        let effective_spec = if config.user.is_empty() { &container.user } else { &config.user };
        let (resolved, group) = self.effective_user(daemon, &container, effective_spec).await?;
        let user = Identity::at_create(&config.user, resolved, self.rules.pin)
            .with_applied_groups(&container.group_add, group.as_deref())
            .map_err(|reason| ProxyError::Denied(vec![reason]))?;
        Ok((container, user))
    }

    /// Remembers a created exec under the id the daemon gave it.
    pub fn remember(&self, exec_id: String, judged: Judged) {
        let mut remembered = self.judged.lock().unwrap_or_else(|p| p.into_inner());
        if remembered.order.len() >= REMEMBERED
            && let Some(oldest) = remembered.order.pop_front()
        {
            remembered.by_id.remove(&oldest);
        }
        remembered.order.push_back(exec_id.clone());
        remembered.by_id.insert(exec_id, judged);
    }

    /// Refuses new execs while records of finished ones wait for the log: the
    /// trail must catch up before anything more runs.
    fn require_no_owed_records(&self) -> Result<(), ProxyError> {
        match self.audit.log().pending() {
            0 => Ok(()),
            n => Err(ProxyError::AuditUnavailable(format!(
                "{n} audit records (session ends, denials) are waiting for the log to take them; new execs \
                 are refused until it does"
            ))),
        }
    }

    /// Claims `exec_id` for the start being judged, or refuses a start of an
    /// exec that is already being started or has been started through execgate.
    fn claim_start(&self, exec_id: &str) -> Result<StartClaim<'_>, ProxyError> {
        let mut remembered = self.judged.lock().unwrap_or_else(|p| p.into_inner());
        if !remembered.started.insert(exec_id.to_owned()) {
            return Err(ProxyError::Conflict(format!(
                "exec {exec_id} was already started through execgate; an exec runs once (create a new one)"
            )));
        }
        remembered.started_order.push_back(exec_id.to_owned());
        if remembered.started_order.len() > REMEMBERED
            && let Some(oldest) = remembered.started_order.pop_front()
        {
            remembered.started.remove(&oldest);
        }
        Ok(StartClaim { gate: self, exec_id: exec_id.to_owned(), kept: false })
    }

    fn recall(&self, exec_id: &str) -> Option<Judged> {
        let remembered = self.judged.lock().unwrap_or_else(|p| p.into_inner());
        remembered.by_id.get(exec_id).cloned()
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
        let (parts, body) = request.into_parts();
        let bytes = framing::read(&parts.headers, body, "exec start").await?;
        let Decoded { value: start, ignored } = StartConfig::decode(&bytes)
            .map_err(|e| ProxyError::BadRequest(format!("malformed exec start body: {e}")))?;
        let request_info = RequestInfo::new(&parts, prefix, ignored);
        let judged = self.recall(exec_id);
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
        let target = format!("{}/exec/{}/start", prefix.path(), context::segment(exec_id));
        let canonical = serde_json::to_vec(&start)
            .map(Bytes::from)
            .map_err(|e| ProxyError::Internal(format!("cannot encode the judged exec start body: {e}")))?;
        let request = judged_request(parts, &target, canonical)?;
        claim.keep();
        let plan = StartPlan { exec_id: exec_id.to_owned(), facts, start, session, started: Instant::now() };
        Ok(StartPermit { request, plan })
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
        self.require_no_owed_records()?;
        let claim = self.claim_start(exec_id)?;
        let inspect = context::exec_inspect(daemon, exec_id).await?;
        if inspect.running {
            return Err(ProxyError::Conflict(format!(
                "exec {exec_id} is already running; an exec runs once (create a new one)"
            )));
        }
        if let Some(judged) = judged {
            still_as_judged(exec_id, judged, &inspect)?;
        }
        let container = context::container_inspect(daemon, &inspect.container_id).await?;
        require_running(&container)?;
        let user = self.identity_at_start(daemon, &container, exec_id, &inspect, judged).await?;
        Ok((claim, inspect, container, user))
    }

    /// Makes a decision durable, as the record `kind` makes of it. An allowed
    /// exec whose record cannot be written is refused: nothing runs that the
    /// trail does not hold. A denial is returned as the error.
    async fn record<F: Serialize>(
        &self,
        kind: fn(Decided<F>) -> Record<F>,
        exec_id: Option<&str>,
        decision: &Decision,
        facts: F,
    ) -> Result<u64, ProxyError> {
        let verdict = if decision.allowed() { Verdict::Allow } else { Verdict::Deny };
        let record = kind(Decided {
            exec_id: exec_id.map(str::to_owned),
            decision: verdict,
            reasons: Capped::new(&decision.deny),
            warnings: Some(Capped::new(&decision.warn)),
            policy_hash: Some(decision.policy_hash.clone()),
            facts,
        });
        if verdict == Verdict::Allow {
            return self
                .audit
                .log()
                .append(record)
                .await
                .map_err(|e| ProxyError::AuditUnavailable(e.to_string()));
        }
        // A denial has happened once it is decided: its record is owed.
        if let Err(err) = self.audit.log().append_owed(record).await {
            warn!(error = %err, "a denial is not in the audit log yet; it is kept and retried");
        }
        Err(ProxyError::Denied(decision.deny.clone()))
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

    /// Records a refusal that came before any decision (the container or user
    /// could not be resolved, the exec changed) as the record `kind` makes of
    /// it, and returns the error.
    async fn refused(
        &self,
        kind: fn(Decided<RefusedFacts>) -> Record<RefusedFacts>,
        exec_id: Option<&str>,
        facts: RefusedFacts,
        err: ProxyError,
    ) -> ProxyError {
        let record = kind(Decided {
            exec_id: exec_id.map(str::to_owned),
            decision: Verdict::Deny,
            reasons: Capped::new([err.to_string()]),
            warnings: None,
            policy_hash: None,
            facts,
        });
        if let Err(audit_err) = self.audit.log().append_owed(record).await {
            warn!(error = %audit_err, "a refusal is not in the audit log yet; it is kept and retried");
        }
        err
    }

    /// Who a starting exec runs as. One judged at create runs as judged: its
    /// pinned identity, or (unpinned) its spec resolved again now. One execgate
    /// never saw is read back from the daemon; if its stored user is a name the
    /// daemon will resolve again, it cannot be pinned and is refused unless
    /// `--unpinned-starts judge` hands it to policy.
    async fn identity_at_start(
        &self,
        daemon: &Control<'_>,
        container: &ContainerInfo,
        exec_id: &str,
        inspect: &ExecInspect,
        judged: Option<&Judged>,
    ) -> Result<Identity, ProxyError> {
        // Podman reports an exec without a user as "", meaning the container's default.
        let stored = match inspect.process_config.user.as_str() {
            "" => &container.user,
            stored => stored,
        };
        // A judged, pinned exec runs as judged; its groups are checked again
        // against the group file as it is now, as the runtime will read it.
        let spec = match judged {
            Some(judged) if judged.identity.pinned => &judged.identity.forwarded,
            _ => stored,
        };
        if judged.is_none() && !is_pinned_form(stored) && self.rules.unpinned_starts == UnpinnedStarts::Refuse
        {
            return Err(ProxyError::Denied(vec![format!(
                "exec {exec_id} was not created through execgate and its user {stored:?} is looked up again \
                 in the container's files when it starts (only a numeric uid:gid is not), so what was judged \
                 might not be what runs: create the exec through execgate (or start execgate with \
                 --unpinned-starts judge)"
            )]));
        }
        let (resolved, group) = self.effective_user(daemon, container, spec).await?;
        let identity = match judged {
            Some(judged) if judged.identity.pinned => judged.identity.clone(),
            Some(judged) => Identity { resolved, ..judged.identity.clone() },
            None => Identity::stored(stored, resolved),
        };
        identity
            .with_applied_groups(&container.group_add, group.as_deref())
            .map_err(|reason| ProxyError::Denied(vec![reason]))
    }

    /// Returns the group file too: the identity's supplementary groups are
    /// checked against it.
    async fn effective_user(
        &self,
        daemon: &Control<'_>,
        container: &ContainerInfo,
        spec: &str,
    ) -> Result<(EffectiveUser, Option<Vec<u8>>), ProxyError> {
        let (passwd, group) = self.user_files(daemon, container).await?;
        let user = user::resolve(spec, &user::Files { passwd: passwd.as_deref(), group: group.as_deref() })
            .map_err(|e| ProxyError::Denied(vec![format!("cannot resolve user {spec:?}: {e}")]))?;
        Ok((user, group))
    }

    async fn user_files(
        &self,
        daemon: &Control<'_>,
        container: &ContainerInfo,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), ProxyError> {
        let root = container
            .merged_dir
            .as_deref()
            .filter(|root| self.rules.lookup != UserLookup::Archive && root.is_dir());
        if let Some(root) = root {
            // Read in place: two small files the page cache holds after the first
            // exec; a hop to the blocking pool and back costs more than the reads.
            let read = || {
                Ok::<_, std::io::Error>((rootfs::read(root, "etc/passwd")?, rootfs::read(root, "etc/group")?))
            };
            return read().map_err(|e| {
                ProxyError::Denied(vec![format!(
                    "cannot read the container's /etc/passwd or /etc/group: {e}"
                )])
            });
        }
        if self.rules.lookup == UserLookup::Rootfs {
            return Err(ProxyError::Denied(vec![format!(
                "cannot resolve users: container {} has no overlay root filesystem execgate can read \
                 (try --user-lookup auto)",
                container.name
            )]));
        }
        let passwd = archive::read(daemon, container, "/etc/passwd").await?;
        let group = archive::read(daemon, container, "/etc/group").await?;
        Ok((passwd, group))
    }

    /// Evaluates the policy and logs the decision.
    fn decide(&self, input: &Input<'_>, exec_id: Option<&str>) -> Decision {
        let started = std::time::Instant::now();
        let policies = self.policies.current();
        // An input that cannot be built is a denial, never an input judged without it.
        let decision = match serde_json::to_value(input) {
            Ok(value) => policies.decide(&value),
            Err(err) => Decision {
                deny: vec![format!("cannot build the policy input (fail closed): {err}")],
                warn: Vec::new(),
                policy_hash: policies.hash().to_owned(),
            },
        };
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

/// The request that goes to the daemon for a judged one: its path pinned to
/// `target` (the query kept) and its body the canonical bytes that were
/// judged, framed by an exact length.
fn judged_request(
    mut parts: hyper::http::request::Parts,
    target: &str,
    canonical: Bytes,
) -> Result<Request<Body>, ProxyError> {
    parts.uri = rewrite_path(&parts.uri, target)?;
    framing::set_length(&mut parts.headers, canonical.len());
    Ok(Request::from_parts(parts, body::full(canonical)))
}

/// The first line of an attached start's recording.
fn recording_header(input: &Input<'_>, exec_id: &str) -> Header {
    let start = input.start.copied().unwrap_or_default();
    Header {
        exec_id: exec_id.to_owned(),
        container: input.container.name.clone(),
        command: input.exec.cmd.clone().unwrap_or_default(),
        user: input.user.resolved.spec.clone(),
        tty: start.tty,
        console: start.console_size.or(input.exec.console_size).map(|c| c.0),
    }
}

/// `uri` with its path replaced and its query kept.
fn rewrite_path(uri: &Uri, path: &str) -> Result<Uri, ProxyError> {
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        path_and_query
            .parse()
            .map_err(|_| ProxyError::Internal(format!("cannot form request path {path_and_query:?}")))?,
    );
    Uri::from_parts(parts)
        .map_err(|_| ProxyError::Internal(format!("cannot form request path {path_and_query:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use context::ProcessConfig;

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
