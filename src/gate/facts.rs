//! What every audit record of an exec says about it, typed. Built from the
//! policy input, so what is recorded is what was judged; every field taken
//! from the request is [`Capped`].

use serde::Serialize;

use super::create::ExecConfig;
use super::gojson::Ignored;
use super::input::{AttachInput, Input, RequestInfo};
use super::query::AttachQuery;
use super::start::StartConfig;
use crate::audit::{Audit, Capped};
use crate::peer::CallerInfo;

/// The facts of a judged exec.
#[derive(Debug, Clone, Serialize)]
pub struct ExecFacts {
    container: ContainerFacts,
    command: Capped,
    user: UserFacts,
    privileged: bool,
    container_privileged: bool,
    tty: bool,
    env: Capped,
    working_dir: Capped,
    caller: CallerInfo,
    request: RequestFacts,
    ignored_fields: Ignored,
}

#[derive(Debug, Clone, Serialize)]
struct ContainerFacts {
    id: String,
    name: String,
    image: String,
}

#[derive(Debug, Clone, Serialize)]
struct UserFacts {
    requested: Capped,
    effective: Capped,
    name: Capped,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    pinned: bool,
    forwarded: Capped,
    applied_groups: Vec<u32>,
}

#[derive(Debug, Clone, Serialize)]
struct RequestFacts {
    method: String,
    path: Capped,
}

impl ExecFacts {
    /// The facts of what `input` put before the policy.
    pub(super) fn of(input: &Input<'_>, audit: &Audit) -> Self {
        let user = input.user;
        ExecFacts {
            container: ContainerFacts {
                id: input.container.id.clone(),
                name: input.container.name.clone(),
                image: input.container.image.clone(),
            },
            command: Capped::new(&input.exec.cmd),
            user: UserFacts {
                requested: Capped::new(&user.requested),
                effective: Capped::new(&user.resolved.spec),
                name: Capped::new(&user.resolved.name),
                uid: user.resolved.uid,
                gid: user.resolved.gid,
                groups: user.resolved.groups.clone(),
                pinned: user.pinned,
                forwarded: Capped::new(&user.forwarded),
                applied_groups: user.applied_groups.clone(),
            },
            privileged: input.exec.privileged,
            container_privileged: input.container.privileged,
            tty: input.exec.tty,
            env: Capped::new(audit.redact_env(input.exec.env.as_deref())),
            working_dir: Capped::new(&input.exec.working_dir),
            caller: input.caller.clone(),
            request: RequestFacts::of(input.request),
            ignored_fields: input.request.ignored_fields.clone(),
        }
    }
}

impl RequestFacts {
    fn of(request: &RequestInfo<'_>) -> Self {
        RequestFacts { method: request.method.clone(), path: Capped::new(&request.path) }
    }
}

/// The facts of an allowed or denied start: the exec's, and the start's own.
#[derive(Debug, Serialize)]
pub struct StartFacts<'a> {
    /// The decoded start body.
    pub start: &'a StartConfig,
    /// Seq of the create decision, for an exec judged at create.
    pub created_seq: Option<u64>,
    /// Whether the stream goes through execgate.
    pub output_captured: bool,
    /// Where its recording is being written.
    pub recording: Option<RecordingPath>,
    #[serde(flatten)]
    pub exec: &'a ExecFacts,
}

/// A recording named before it is complete.
#[derive(Debug, Serialize)]
pub struct RecordingPath {
    /// Relative to the audit directory.
    pub path: String,
}

/// The facts of an exec refused before any decision (its container or user
/// could not be resolved, it changed, a lookup failed): what the request said.
#[derive(Debug, Serialize)]
pub struct RefusedFacts {
    container: Reference,
    command: Capped,
    user: Requested,
    privileged: bool,
    tty: bool,
    env: Capped,
    caller: CallerInfo,
    request: RequestFacts,
    ignored_fields: Ignored,
}

#[derive(Debug, Serialize)]
struct Reference {
    reference: Capped,
}

#[derive(Debug, Serialize)]
struct Requested {
    requested: Capped,
}

impl RefusedFacts {
    /// The facts of a refused request for `config` in the container `reference`.
    pub(super) fn of(
        config: &ExecConfig,
        reference: &str,
        caller: &CallerInfo,
        request: &RequestInfo<'_>,
        audit: &Audit,
    ) -> Self {
        RefusedFacts {
            container: Reference { reference: Capped::new(reference) },
            command: Capped::new(&config.cmd),
            user: Requested { requested: Capped::new(&config.user) },
            privileged: config.privileged,
            tty: config.tty,
            env: Capped::new(audit.redact_env(config.env.as_deref())),
            caller: caller.clone(),
            request: RequestFacts::of(request),
            ignored_fields: request.ignored_fields.clone(),
        }
    }
}

/// The facts of an attach session: the container, its PID 1, what the attach
/// asked for, and who asked.
#[derive(Debug, Clone, Serialize)]
pub struct AttachFacts {
    container: AttachedContainer,
    process: ProcessFacts,
    tty: bool,
    attach: Capped,
    caller: CallerInfo,
    request: RequestFacts,
    /// Bytes of a request body execgate read and did not forward.
    #[serde(skip_serializing_if = "is_zero")]
    ignored_body_bytes: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The container attached to, or what the client named when it could not be found.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum AttachedContainer {
    Found(ContainerFacts),
    Named { reference: Capped },
}

#[derive(Debug, Clone, Serialize)]
struct ProcessFacts {
    command: Capped,
    user: Capped,
}

impl AttachFacts {
    /// The facts of what `input` put before the policy.
    pub(super) fn of(input: &AttachInput<'_>) -> Self {
        let container = input.container;
        AttachFacts {
            container: AttachedContainer::Found(ContainerFacts {
                id: container.id.clone(),
                name: container.name.clone(),
                image: container.image.clone(),
            }),
            process: ProcessFacts {
                command: Capped::new(&container.command),
                user: Capped::new(&container.user),
            },
            tty: container.tty,
            attach: Capped::new(input.attach.query),
            caller: input.caller.clone(),
            request: RequestFacts::of(input.request),
            ignored_body_bytes: input.attach.ignored_body_bytes,
        }
    }

    /// The facts of an attach refused before any decision.
    pub(super) fn refused(
        reference: &str,
        query: &AttachQuery,
        caller: &CallerInfo,
        request: &RequestInfo<'_>,
    ) -> Self {
        AttachFacts {
            container: AttachedContainer::Named { reference: Capped::new(reference) },
            process: ProcessFacts { command: Capped::new(Vec::<String>::new()), user: Capped::new("") },
            tty: false,
            attach: Capped::new(query),
            caller: caller.clone(),
            request: RequestFacts::of(request),
            ignored_body_bytes: 0,
        }
    }
}

/// The facts of an attach decision: the session's, and where it is recorded.
#[derive(Debug, Serialize)]
pub struct AttachStartFacts<'a> {
    /// Whether the stream goes through execgate (always, once allowed).
    pub output_captured: bool,
    /// Where its recording is being written.
    pub recording: Option<RecordingPath>,
    #[serde(flatten)]
    pub attach: &'a AttachFacts,
}
