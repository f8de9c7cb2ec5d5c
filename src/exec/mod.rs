//! The exec interception: every exec create and start is read as the daemon
//! reads it, placed in context, judged by policy and — only if allowed —
//! rewritten into the canonical request that was judged.
//!
//! body → context → policy → [`Permit`]. The proxy can forward an exec request
//! only by way of a `Permit`, and only this module makes them.

pub mod archive;
pub mod body;
pub mod context;
pub mod create;
pub mod gojson;
pub mod rootfs;
pub mod start;
pub mod user;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::{Request, StatusCode, Uri};
use serde::Serialize;
use tracing::{info, warn};

use crate::body::{self as http_body, Body};
use crate::error::ProxyError;
use crate::policy::{Decision, Policies};
use crate::upstream::Upstream;
use context::{CallerInfo, ContainerInfo, ExecInspect};
use create::ExecConfig;
use start::StartConfig;
use user::EffectiveUser;

/// How many created-but-not-started execs are remembered; older ones are
/// judged from the daemon's inspect alone when they start.
const REMEMBERED: usize = 16 * 1024;

/// Permission to forward one exec request, carrying the canonical request that
/// was judged. Only [`ExecGate`] makes them.
pub struct Permit {
    request: Request<Body>,
    /// For a create: what to remember once the daemon answers with the exec id.
    pending: Option<Judged>,
    /// For a start: the decoded start body.
    pub start: Option<StartConfig>,
}

impl Permit {
    /// The request to forward.
    pub fn into_parts(self) -> (Request<Body>, Option<Judged>) {
        (self.request, self.pending)
    }
}

/// An exec execgate judged at create, kept to check it again at start.
#[derive(Debug, Clone)]
pub struct Judged {
    container_id: String,
    config: ExecConfig,
    /// The spec the daemon will resolve: the exec's user or the container's default.
    effective_spec: String,
}

/// The policy input (`input` in Rego); documented in policies/README.md.
#[derive(Serialize)]
struct Input<'a> {
    action: &'static str,
    exec: &'a ExecConfig,
    exec_seen: bool,
    start: Option<&'a StartConfig>,
    container: &'a ContainerInfo,
    user: &'a EffectiveUser,
    caller: &'a CallerInfo,
    request: RequestInfo<'a>,
}

#[derive(Serialize)]
struct RequestInfo<'a> {
    method: &'a str,
    path: &'a str,
    api_version: Option<&'a str>,
}

/// Where the container's `/etc/passwd` and `/etc/group` are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UserLookup {
    /// The overlay root when execgate can see it, else the archive API.
    Auto,
    /// Only the overlay root (`GraphDriver.Data.MergedDir`).
    Rootfs,
    /// Only the daemon's archive API (refused where a mount covers the file).
    Archive,
}

/// The exec gate shared by every connection.
pub struct ExecGate {
    policies: Arc<Policies>,
    lookup: UserLookup,
    judged: Mutex<Remembered>,
}

#[derive(Default)]
struct Remembered {
    by_id: HashMap<String, Judged>,
    order: VecDeque<String>,
}

impl ExecGate {
    /// A gate judging with `policies`, reading users as `lookup` says.
    pub fn new(policies: Arc<Policies>, lookup: UserLookup) -> Self {
        ExecGate { policies, lookup, judged: Mutex::new(Remembered::default()) }
    }

    /// Judges `POST /containers/{reference}/exec`.
    pub async fn create(
        &self,
        upstream: &Upstream,
        caller: &CallerInfo,
        request: Request<Body>,
        reference: &str,
        version: Option<&str>,
    ) -> Result<Permit, ProxyError> {
        let (mut parts, body) = request.into_parts();
        body::check_framing(&parts.headers)?;
        let bytes = body::read(&parts.headers, body, "exec create").await?;
        let config = ExecConfig::decode(&bytes)
            .map_err(|e| ProxyError::BadRequest(format!("malformed exec create body: {e}")))?;
        let container = context::container(upstream, reference).await?;
        require_running(&container)?;
        let effective_spec =
            if config.user.is_empty() { container.user.clone() } else { config.user.clone() };
        let user = self.effective_user(upstream, &container, &effective_spec).await?;
        let path = parts.uri.path().to_owned();
        let input = Input {
            action: "create",
            exec: &config,
            exec_seen: true,
            start: None,
            container: &container,
            user: &user,
            caller,
            request: RequestInfo { method: parts.method.as_str(), path: &path, api_version: version },
        };
        let decision = self.decide(&input, None);
        if !decision.allowed() {
            return Err(ProxyError::Denied(decision.deny));
        }
        // Pin the container by full id: a rename or replacement after this
        // point cannot redirect what was judged.
        let target = format!("{}/containers/{}/exec", prefix(version), context::segment(&container.id));
        parts.uri = rewrite_path(&parts.uri, &target)?;
        let canonical = Bytes::from(config.encode());
        body::set_length(&mut parts.headers, canonical.len());
        let pending = Judged { container_id: container.id.clone(), config, effective_spec };
        Ok(Permit {
            request: Request::from_parts(parts, http_body::full(canonical)),
            pending: Some(pending),
            start: None,
        })
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

    fn recall(&self, exec_id: &str) -> Option<Judged> {
        let remembered = self.judged.lock().unwrap_or_else(|p| p.into_inner());
        remembered.by_id.get(exec_id).cloned()
    }

    /// Judges `POST /exec/{id}/start` with the caller who starts it.
    pub async fn start(
        &self,
        upstream: &Upstream,
        caller: &CallerInfo,
        request: Request<Body>,
        exec_id: &str,
        version: Option<&str>,
    ) -> Result<Permit, ProxyError> {
        let (mut parts, body) = request.into_parts();
        body::check_framing(&parts.headers)?;
        let bytes = body::read(&parts.headers, body, "exec start").await?;
        let start = StartConfig::decode(&bytes)
            .map_err(|e| ProxyError::BadRequest(format!("malformed exec start body: {e}")))?;
        let inspect = context::exec(upstream, exec_id).await?;
        let judged = self.recall(exec_id);
        if let Some(judged) = &judged {
            still_as_judged(exec_id, judged, &inspect)?;
        }
        let container = context::container(upstream, &inspect.container_id).await?;
        require_running(&container)?;
        let user = self.effective_user(upstream, &container, &inspect.process_config.user).await?;
        let config = match &judged {
            Some(judged) => judged.config.clone(),
            None => from_inspect(&inspect),
        };
        let path = parts.uri.path().to_owned();
        let input = Input {
            action: "start",
            exec: &config,
            exec_seen: judged.is_some(),
            start: Some(&start),
            container: &container,
            user: &user,
            caller,
            request: RequestInfo { method: parts.method.as_str(), path: &path, api_version: version },
        };
        let decision = self.decide(&input, Some(exec_id));
        if !decision.allowed() {
            return Err(ProxyError::Denied(decision.deny));
        }
        let target = format!("{}/exec/{}/start", prefix(version), context::segment(exec_id));
        parts.uri = rewrite_path(&parts.uri, &target)?;
        let canonical = Bytes::from(serde_json::to_vec(&start).unwrap_or_default());
        body::set_length(&mut parts.headers, canonical.len());
        Ok(Permit {
            request: Request::from_parts(parts, http_body::full(canonical)),
            pending: None,
            start: Some(start),
        })
    }

    /// Resolves `spec` against the container's own passwd and group files.
    async fn effective_user(
        &self,
        upstream: &Upstream,
        container: &ContainerInfo,
        spec: &str,
    ) -> Result<EffectiveUser, ProxyError> {
        let (passwd, group) = self.user_files(upstream, container).await?;
        user::resolve(spec, &user::Files { passwd: passwd.as_deref(), group: group.as_deref() })
            .map_err(|e| ProxyError::Denied(vec![format!("cannot resolve user {spec:?}: {e}")]))
    }

    async fn user_files(
        &self,
        upstream: &Upstream,
        container: &ContainerInfo,
    ) -> Result<(Option<String>, Option<String>), ProxyError> {
        let root =
            container.merged_dir.clone().filter(|root| self.lookup != UserLookup::Archive && root.is_dir());
        if let Some(root) = root {
            let read = tokio::task::spawn_blocking(move || {
                Ok::<_, std::io::Error>((
                    rootfs::read(&root, "etc/passwd")?,
                    rootfs::read(&root, "etc/group")?,
                ))
            });
            return read
                .await
                .map_err(|e| {
                    ProxyError::Denied(vec![format!("cannot read the container's user files: {e}")])
                })?
                .map_err(|e| {
                    ProxyError::Denied(vec![format!(
                        "cannot read the container's /etc/passwd or /etc/group: {e}"
                    )])
                });
        }
        if self.lookup == UserLookup::Rootfs {
            return Err(ProxyError::Denied(vec![format!(
                "cannot resolve users: container {} has no overlay root filesystem execgate can read \
                 (try --user-lookup auto)",
                container.name
            )]));
        }
        let passwd = archive::read(upstream, container, "/etc/passwd").await?;
        let group = archive::read(upstream, container, "/etc/group").await?;
        Ok((passwd, group))
    }

    /// Evaluates the policy and logs the decision.
    fn decide(&self, input: &Input<'_>, exec_id: Option<&str>) -> Decision {
        let value = match serde_json::to_value(input) {
            Ok(value) => value,
            Err(err) => serde_json::json!({ "unserializable": err.to_string() }),
        };
        let started = std::time::Instant::now();
        let decision = self.policies.current().decide(&value);
        let decision_us = started.elapsed().as_micros() as u64;
        let cmd = input.exec.cmd.as_deref().unwrap_or_default().join(" ");
        if decision.allowed() {
            info!(
                action = input.action, exec_id, container = %input.container.name, user = %input.user.spec,
                uid = input.user.uid, cmd, caller.uid = input.caller.uid, caller.pid = input.caller.pid,
                warn = ?decision.warn, decision_us, "exec allowed"
            );
        } else {
            warn!(
                action = input.action, exec_id, container = %input.container.name, user = %input.user.spec,
                uid = input.user.uid, cmd, caller.uid = input.caller.uid, caller.pid = input.caller.pid,
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
        && p.user == judged.effective_spec
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

fn prefix(version: Option<&str>) -> String {
    version.map(|v| format!("/v{v}")).unwrap_or_default()
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
            .map_err(|_| ProxyError::BadRequest(format!("cannot form request path {path_and_query:?}")))?,
    );
    Uri::from_parts(parts)
        .map_err(|_| ProxyError::BadRequest(format!("cannot form request path {path_and_query:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use context::ProcessConfig;

    fn judged() -> Judged {
        let config =
            ExecConfig { cmd: Some(vec!["sh".into(), "-c".into(), "id".into()]), ..ExecConfig::default() };
        Judged { container_id: "c1".into(), config, effective_spec: "app".into() }
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
