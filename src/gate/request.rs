//! The optional gate on every other door: requests that are neither exec nor
//! attach, judged by `data.execgate.request.deny` when the policy set defines
//! it (`input.action: "request"`). With no request policy nothing here runs:
//! no body is read, nothing is evaluated.
//!
//! A judged body is read once, decoded as the daemon decodes it for the
//! fields policy sees (`container_body`), and forwarded as the same bytes,
//! re-framed by exact length: what was judged is what the daemon reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::Request;
use hyper::header::{self, HeaderMap};
use serde::Serialize;
use tracing::{info, warn};

use super::container_body;
use super::judge;
use crate::audit::record::Subject;
use crate::audit::{Audit, Capped, Record};
use crate::daemon::inspect::{self, ContainerInfo};
use crate::daemon::upstream::Control;
use crate::http::api::Operation;
use crate::http::body::{self, Body};
use crate::http::error::ProxyError;
use crate::http::framing;
use crate::peer::CallerInfo;
use crate::policy::{Policies, PolicySet};

/// The request gate shared by every connection.
pub struct RequestGate {
    policies: Arc<Policies>,
    audit: Audit,
    own: Own,
}

/// What execgate itself holds on the host, for policies to protect
/// (`input.execgate`).
#[derive(Serialize)]
struct Own {
    /// The audit directory, absolute and with symlinks resolved.
    audit_dir: String,
}

/// Permission to forward a request the request policy allowed: the request
/// as received, its body (when it was read) re-framed by exact length.
pub struct RequestPermit {
    request: Request<Body>,
}

impl RequestPermit {
    /// The request that was judged, to be relayed as any other.
    pub fn into_request(self) -> Request<Body> {
        self.request
    }
}

/// What the request policy judges (`input` with `action: "request"`).
#[derive(Serialize)]
struct RequestInput<'a> {
    action: &'static str,
    method: &'a str,
    /// The API's `operationId`; `null` for a route the table does not know.
    route: Option<&'static str>,
    /// The path parameter (`{"name": …}` or `{"id": …}`), as the daemon reads it.
    params: BTreeMap<&'static str, String>,
    /// Every query value of every key, as Go parses the query.
    query: BTreeMap<String, Vec<String>>,
    path: &'a str,
    api_version: Option<&'a str>,
    /// Whether the request carries a body the daemon reads (more than 7
    /// bytes, or chunked: the daemon's own test on container start).
    has_body: bool,
    /// The body as the daemon decodes it, for the routes execgate decodes.
    body: Option<serde_json::Value>,
    /// The container a `/containers/{name}/…` route names, as the daemon
    /// describes it now; `null` for other routes.
    container: Option<ContainerInfo>,
    caller: &'a CallerInfo,
    /// What execgate holds on the host (its audit directory).
    execgate: &'a Own,
}

/// What a request record keeps.
#[derive(Serialize)]
struct RequestFacts {
    method: String,
    route: Option<&'static str>,
    params: Capped,
    path: Capped,
    api_version: Option<String>,
    query: Capped,
    body: Capped,
    container: Option<ContainerRef>,
    caller: CallerInfo,
}

#[derive(Serialize)]
struct ContainerRef {
    id: String,
    name: String,
    image: String,
    running: bool,
}

impl RequestGate {
    /// A gate judging with `policies`, recording in `audit`.
    pub fn new(policies: Arc<Policies>, audit: Audit) -> Self {
        let dir = audit.recorder().audit_dir();
        let audit_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned()).display().to_string();
        RequestGate { policies, audit, own: Own { audit_dir } }
    }

    /// The policy set in force when it judges a request on `operation`;
    /// `None` (the usual case: no request policy) means relay untouched.
    pub fn judging(
        &self,
        operation: impl FnOnce() -> Option<Operation>,
    ) -> Option<(Arc<PolicySet>, Option<Operation>)> {
        if !self.policies.judges_requests() {
            return None;
        }
        let set = self.policies.current();
        let operation = operation();
        set.judges_request(operation.as_ref().map(|o| o.name)).then_some((set, operation))
    }

    /// Judges `request` on `operation` by the request policy of `set`.
    pub async fn judge(
        &self,
        daemon: &Control<'_>,
        caller: &CallerInfo,
        request: Request<Body>,
        set: &PolicySet,
        operation: Option<Operation>,
        daemon_version: Option<&str>,
    ) -> Result<RequestPermit, ProxyError> {
        let started = std::time::Instant::now();
        let (mut parts, body) = request.into_parts();
        let route = operation.as_ref().map(|o| o.name);
        let has_body = has_body(&parts.headers);
        let decodes = route.is_some_and(decodes_body);
        let (bytes, body) = if decodes {
            let bytes = framing::read(&parts.headers, body, "request").await?;
            // Forwarded as read, framed by its exact length.
            framing::set_length(&mut parts.headers, bytes.len());
            (Some(bytes.clone()), body::full(bytes))
        } else {
            (None, body)
        };
        let query = crate::http::query::parse_query(parts.uri.query().unwrap_or_default())
            .map_err(|e| ProxyError::BadRequest(format!("malformed query: {e}")))?;
        let container = match operation.as_ref().and_then(container_param) {
            Some(reference) => Some(inspect::container_inspect(daemon, reference).await?),
            None => None,
        };
        let api_version = operation.as_ref().and_then(|o| o.prefix.version.clone());
        let body_view = match (route, &bytes) {
            (Some(route), Some(bytes)) => {
                decode_body(route, bytes, has_body, api_version.as_deref(), daemon_version)?
            }
            _ => None,
        };
        let path = parts.uri.path().to_owned();
        let input = RequestInput {
            action: "request",
            method: parts.method.as_str(),
            route,
            params: operation.iter().filter_map(|o| o.param.clone()).collect(),
            query,
            path: &path,
            api_version: api_version.as_deref(),
            has_body,
            body: body_view,
            container,
            caller,
            execgate: &self.own,
        };
        let decision = judge::evaluate_request(set, &input);
        // Every denial is recorded; allowed requests only on the routes a
        // policy lists, so the log does not grow with every `docker ps`.
        if !decision.allowed() || set.request_routes_listed() {
            let facts = RequestFacts {
                method: input.method.to_owned(),
                route,
                params: Capped::new(&input.params),
                path: Capped::new(&path),
                api_version: api_version.clone(),
                query: Capped::new(&input.query),
                body: Capped::new(&input.body),
                container: input.container.as_ref().map(|c| ContainerRef {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    image: c.image.clone(),
                    running: c.running,
                }),
                caller: caller.clone(),
            };
            let recorded = judge::record(
                &self.audit,
                Record::Request,
                Subject::Request {},
                &decision,
                facts,
                ProxyError::RequestDenied,
            )
            .await;
            log_decision(&input, &decision, started.elapsed().as_micros() as u64);
            recorded?;
        } else {
            log_decision(&input, &decision, started.elapsed().as_micros() as u64);
        }
        Ok(RequestPermit { request: Request::from_parts(parts, body) })
    }
}

/// The routes whose bodies execgate reads and decodes for policy.
fn decodes_body(route: &str) -> bool {
    matches!(route, "ContainerCreate" | "ContainerStart" | "ContainerUpdate")
}

/// A `/containers/{name}/…` route's container reference.
fn container_param(operation: &Operation) -> Option<&str> {
    match (operation.name, &operation.param) {
        (name, Some(("name", reference)))
            if name.starts_with("Container") || name == "PutContainerArchive" =>
        {
            Some(reference)
        }
        _ => None,
    }
}

/// The daemon's test for a start body it reads: `ContentLength > 7 || == -1`.
fn has_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > 7)
}

/// The body of `route` as the daemon at `daemon_version` decodes it; `None`
/// where the daemon reads none. A body it would refuse is refused here.
fn decode_body(
    route: &str,
    bytes: &Bytes,
    has_body: bool,
    api_version: Option<&str>,
    daemon_version: Option<&str>,
) -> Result<Option<serde_json::Value>, ProxyError> {
    let rules = decoding_rules(daemon_version);
    let refused = |e: String| ProxyError::BadRequest(format!("malformed {route} body: {e}"));
    let view = match route {
        "ContainerCreate" => {
            serde_json::to_value(container_body::decode_create(bytes, rules).map_err(refused)?)
        }
        "ContainerUpdate" => {
            serde_json::to_value(container_body::decode_update(bytes, rules).map_err(refused)?)
        }
        // Only an old-API start has a body the daemon reads (newer ones refuse it).
        "ContainerStart" if has_body && api_version.is_some_and(older_than_1_24) => {
            let host_config = container_body::decode_start_host_config(bytes).map_err(refused)?;
            serde_json::to_value(StartBody { host_config })
        }
        _ => return Ok(None),
    };
    view.map(Some).map_err(|e| ProxyError::Internal(format!("cannot encode the decoded {route} body: {e}")))
}

/// An old-API start body: the HostConfig that replaces the stored one
/// (`null`: the stored one stays).
#[derive(Serialize)]
struct StartBody {
    #[serde(rename = "HostConfig")]
    host_config: Option<container_body::HostConfigView>,
}

/// Which of the daemon's decoders applies: Docker 27.1 removed the HostConfig
/// fields at the top level of a create body. An unknown version (the daemon
/// did not answer at start, or Podman) gets 20.10's, which judges more.
fn decoding_rules(daemon_version: Option<&str>) -> container_body::Daemon {
    let parts: Vec<u64> = daemon_version
        .unwrap_or_default()
        .split(['.', '-', '+'])
        .take(2)
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    match parts.as_slice() {
        [major, minor] if (*major, *minor) >= (27, 1) => container_body::Daemon::Docker28,
        _ => container_body::Daemon::Docker20,
    }
}

/// The daemon's version compare (part by part, numerically, a part that is
/// not a number counting as 0) against 1.24.
fn older_than_1_24(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) < (1, 24)
}

/// Logs a decision with `judge_us`: all the gate added (body read and
/// decoded, lookups, evaluation, the durable record).
fn log_decision(input: &RequestInput<'_>, decision: &crate::policy::Decision, judge_us: u64) {
    if decision.allowed() {
        info!(
            route = input.route,
            method = input.method,
            path = input.path,
            caller.uid = input.caller.uid,
            judge_us,
            "request allowed"
        );
    } else {
        warn!(
            route = input.route, method = input.method, path = input.path, caller.uid = input.caller.uid,
            reasons = ?decision.deny, judge_us, "request denied"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_api_versions_compare_as_the_daemon_compares_them() {
        for old in ["1.23", "1.023", "1.23.9", "01.23", "1.2", "0.99", "1.x"] {
            assert!(older_than_1_24(old), "{old}");
        }
        for new in ["1.24", "1.41", "1.51", "2.0", "4.0.0"] {
            assert!(!older_than_1_24(new), "{new}");
        }
    }

    #[test]
    fn the_create_decoder_follows_the_daemons_version() {
        assert!(matches!(decoding_rules(Some("20.10.24+dfsg1")), container_body::Daemon::Docker20));
        assert!(matches!(decoding_rules(Some("27.0.3")), container_body::Daemon::Docker20));
        assert!(matches!(decoding_rules(Some("27.1.0")), container_body::Daemon::Docker28));
        assert!(matches!(decoding_rules(Some("28.5.2+dfsg4")), container_body::Daemon::Docker28));
        assert!(matches!(decoding_rules(None), container_body::Daemon::Docker20));
    }
}
