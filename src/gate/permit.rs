//! What the gate hands the proxy for a request it allowed: the canonical
//! request that was judged, sealed. Only the gate makes permits, and the only
//! way to send the request inside one is to forward the permit.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Request, Response, Uri};

use super::create::ExecConfig;
use super::facts::{AttachFacts, ExecFacts};
use super::identity::Identity;
use super::start::StartConfig;
use crate::audit::Session;
use crate::daemon::upstream::{Pinned, Upstream};
use crate::http::body::{self, Body};
use crate::http::error::ProxyError;
use crate::http::framing;

/// Permission to forward one exec create: the canonical request that was
/// judged. Only the gate makes them, and only once the decision is durable
/// in the audit log.
pub struct CreatePermit {
    request: Sealed,
    judged: Judged,
}

/// Permission to forward one exec start, with the session it begins.
pub struct StartPermit {
    request: Sealed,
    plan: StartPlan,
}

/// Permission to forward one attach, with the session it begins.
pub struct AttachPermit {
    request: Sealed,
    plan: AttachPlan,
}

/// An allowed attach: what its session and its `attach.end` will need.
pub struct AttachPlan {
    attach_id: String,
    container_id: String,
    /// The container's `FinishedAt` when the attach was allowed.
    finished_at: String,
    facts: AttachFacts,
    stream: Stream,
}

/// What every allowed session carries for its stream, exec or attach.
pub struct Stream {
    tty: bool,
    recording: Option<Session>,
    allowed_at: Instant,
}

/// The request that goes to the daemon in place of a judged one: its path
/// pinned to the full id that was judged (the query kept) and its body the
/// canonical bytes that were judged, framed by an exact length. Sealed before
/// the decision is recorded, so a permit cannot fail to form after it.
pub(super) struct Sealed(Request<Body>);

/// An allowed exec start: what its session and its `exec.end` will need.
pub struct StartPlan {
    exec_id: String,
    facts: ExecFacts,
    start: StartConfig,
    stream: Stream,
}

/// An exec execgate judged at create, kept to check it again at start.
#[derive(Debug, Clone)]
pub struct Judged {
    /// Seq of the `exec.create` record, linked from the start's.
    pub(super) create_seq: u64,
    pub(super) container_id: String,
    pub(super) config: ExecConfig,
    /// Who it runs as, and the user spec forwarded for it.
    pub(super) identity: Identity,
}

impl CreatePermit {
    pub(super) fn new(request: Sealed, judged: Judged) -> Self {
        CreatePermit { request, judged }
    }

    /// Sends the judged create over the client's daemon connection; what was
    /// judged comes back with the answer, to be remembered under the new id.
    pub async fn forward(
        self,
        upstream: &Upstream,
        pinned: &Pinned,
    ) -> Result<(Response<Incoming>, Judged), ProxyError> {
        let response = pinned.send(upstream, self.request.0).await?;
        Ok((response, self.judged))
    }
}

impl StartPermit {
    pub(super) fn new(request: Sealed, plan: StartPlan) -> Self {
        StartPermit { request, plan }
    }

    /// Whether the start runs detached (no stream).
    pub fn detached(&self) -> bool {
        self.plan.start.detach
    }

    /// Sends the judged start: a detached one as a plain exchange over the
    /// client's daemon connection, an attached one (or one asking to upgrade)
    /// on a connection of its own that can carry the stream. The plan comes
    /// back whatever the daemon says: the start's end is owed either way.
    pub async fn forward(
        self,
        upstream: &Upstream,
        pinned: &Pinned,
        client_upgrade: bool,
    ) -> (Result<Response<Incoming>, ProxyError>, StartPlan) {
        let StartPermit { request: Sealed(request), plan } = self;
        let sent = if plan.start.detach && !client_upgrade {
            pinned.send(upstream, request).await
        } else {
            upstream.open_stream(request, client_upgrade).await
        };
        (sent, plan)
    }
}

impl AttachPermit {
    pub(super) fn new(request: Sealed, plan: AttachPlan) -> Self {
        AttachPermit { request, plan }
    }

    /// Sends the judged attach on a connection of its own that can carry the
    /// stream. The plan comes back whatever the daemon says: its end is owed.
    pub async fn forward(
        self,
        upstream: &Upstream,
        client_upgrade: bool,
    ) -> (Result<Response<Incoming>, ProxyError>, AttachPlan) {
        let AttachPermit { request: Sealed(request), plan } = self;
        (upstream.open_stream(request, client_upgrade).await, plan)
    }
}

impl AttachPlan {
    pub(super) fn new(
        attach_id: String,
        container: (String, String),
        facts: AttachFacts,
        tty: bool,
        recording: Option<Session>,
    ) -> Self {
        let (container_id, finished_at) = container;
        AttachPlan { attach_id, container_id, finished_at, facts, stream: Stream::new(tty, recording) }
    }

    /// The session's id.
    pub fn attach_id(&self) -> &str {
        &self.attach_id
    }

    /// The container (full id).
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// Whether PID 1 exited since the attach was allowed, given the
    /// container's `FinishedAt` now.
    pub fn exited_since(&self, finished_at: &str) -> bool {
        finished_at != self.finished_at
    }

    /// The facts every record of this session carries.
    pub fn facts(&self) -> &AttachFacts {
        &self.facts
    }

    /// Its stream.
    pub fn stream(&mut self) -> &mut Stream {
        &mut self.stream
    }
}

impl StartPlan {
    pub(super) fn new(
        exec_id: &str,
        facts: ExecFacts,
        start: StartConfig,
        recording: Option<Session>,
    ) -> Self {
        let stream = Stream::new(start.tty, recording);
        StartPlan { exec_id: exec_id.to_owned(), facts, start, stream }
    }

    /// The exec.
    pub fn exec_id(&self) -> &str {
        &self.exec_id
    }

    /// The facts every record of this exec carries.
    pub fn facts(&self) -> &ExecFacts {
        &self.facts
    }

    /// Its stream (none is recorded for a detached start).
    pub fn stream(&mut self) -> &mut Stream {
        &mut self.stream
    }
}

impl Stream {
    fn new(tty: bool, recording: Option<Session>) -> Self {
        Stream { tty, recording, allowed_at: Instant::now() }
    }

    /// Whether the stream is a raw TTY stream (else multiplexed frames).
    pub fn tty(&self) -> bool {
        self.tty
    }

    /// The session's recording.
    pub fn recording(&self) -> Option<&Session> {
        self.recording.as_ref()
    }

    /// Takes the recording out to finish it.
    pub fn take_recording(&mut self) -> Option<Session> {
        self.recording.take()
    }

    /// How long ago the session was allowed.
    pub fn elapsed(&self) -> Duration {
        self.allowed_at.elapsed()
    }
}

impl Sealed {
    /// `parts` as received, to go to `target` with the `canonical` body.
    pub(super) fn new(mut parts: Parts, target: &str, canonical: Bytes) -> Result<Self, ProxyError> {
        parts.uri = rewrite_path(&parts.uri, target)?;
        framing::set_length(&mut parts.headers, canonical.len());
        Ok(Sealed(Request::from_parts(parts, body::full(canonical))))
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
