//! The policy input (`input` in Rego), as documented in policies/README.md.
//! Records are built from it too (`facts`), so what is recorded is what was
//! judged.

use hyper::Request;
use hyper::http::request::Parts;
use serde::Serialize;

use super::create::ExecConfig;
use super::gojson::{Decoded, Ignored};
use super::identity::Identity;
use super::query::AttachQuery;
use super::start::StartConfig;
use crate::daemon::inspect::ContainerInfo;
use crate::http::body::Body;
use crate::http::error::ProxyError;
use crate::http::framing;
use crate::http::route::Prefix;
use crate::peer::CallerInfo;

/// What the policy judges an exec create or start by.
#[derive(Serialize)]
pub(super) struct Input<'a> {
    pub action: &'static str,
    pub exec: &'a ExecConfig,
    pub exec_seen: bool,
    pub start: Option<&'a StartConfig>,
    pub container: &'a ContainerInfo,
    pub user: &'a Identity,
    pub caller: &'a CallerInfo,
    pub request: &'a RequestInfo<'a>,
}

/// The request as the client sent it.
#[derive(Serialize)]
pub(super) struct RequestInfo<'a> {
    pub method: String,
    pub path: String,
    pub api_version: Option<&'a str>,
    /// Body keys the daemon ignores (and execgate does not forward).
    pub ignored_fields: Ignored,
}

impl<'a> RequestInfo<'a> {
    /// The request as received, before execgate rewrites its path.
    pub fn new(parts: &hyper::http::request::Parts, prefix: &'a Prefix, ignored_fields: Ignored) -> Self {
        RequestInfo {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            api_version: prefix.version.as_deref(),
            ignored_fields,
        }
    }
}

/// Reads the body of a request the gate judges (`what` names it in errors)
/// and decodes it as the daemon does; returns the head, the decoded body and
/// the request as policy sees it.
pub(super) async fn decode<'p, T>(
    request: Request<Body>,
    prefix: &'p Prefix,
    what: &str,
    decode: fn(&[u8]) -> Result<Decoded<T>, serde_json::Error>,
) -> Result<(Parts, T, RequestInfo<'p>), ProxyError> {
    let (parts, body) = request.into_parts();
    let bytes = framing::read(&parts.headers, body, what).await?;
    let Decoded { value, ignored } =
        decode(&bytes).map_err(|e| ProxyError::BadRequest(format!("malformed {what} body: {e}")))?;
    let info = RequestInfo::new(&parts, prefix, ignored);
    Ok((parts, value, info))
}

/// What the policy judges an attach by (`input.action == "attach"`).
#[derive(Serialize)]
pub(super) struct AttachInput<'a> {
    pub action: &'static str,
    pub container: &'a ContainerInfo,
    pub attach: AttachView<'a>,
    pub process: Process,
    pub caller: &'a CallerInfo,
    pub request: &'a RequestInfo<'a>,
}

/// The attach's parameters, and what they amount to.
#[derive(Serialize)]
pub(super) struct AttachView<'a> {
    #[serde(flatten)]
    pub query: &'a AttachQuery,
    /// The client can type into PID 1: it streams, asks for stdin, and the
    /// container keeps stdin open (the daemon drops stdin otherwise).
    pub interactive: bool,
    /// Bytes of a (non-form) request body, read and not forwarded.
    pub ignored_body_bytes: usize,
}

/// PID 1 of the container attached to.
#[derive(Serialize)]
pub(super) struct Process {
    /// `Path` then `Args`.
    pub command: Vec<String>,
    /// The user spec it runs as (`Config.User`; empty: the image's default, root).
    pub user: String,
    /// The uid that spec resolves to in the container's files; `None` when
    /// they could not be read (the reason is in `user_error`).
    pub uid: Option<u32>,
    /// Whether that uid is 0; `None` when unknown.
    pub is_root: Option<bool>,
    /// Why the user could not be resolved.
    pub user_error: Option<String>,
}
