//! One request's way through execgate: classify it, then relay it plainly,
//! have the exec gate judge it, or switch it to a stream. What becomes of a
//! judged start, once forwarded, is the `session` module's.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode, Version, header};
use tokio::sync::oneshot;
use tracing::warn;

use crate::audit::Audit;
use crate::daemon::upstream::{Control, Pinned, Upstream};
use crate::gate::{ExecGate, Judged, StartPlan};
use crate::http::body::{self, Body};
use crate::http::error::ProxyError;
use crate::http::framing::check_framing;
use crate::http::route::{self, Prefix, Route};
use crate::peer::{Caller, CallerInfo};
use crate::session::{Hijacked, Lifecycle, Sessions};

/// Largest exec create answer execgate reads to learn the new exec's id.
const MAX_CREATE_ANSWER: usize = 64 * 1024;

/// What every connection shares.
pub struct Proxy {
    upstream: Upstream,
    exec: ExecGate,
    audit: Audit,
    sessions: Sessions,
}

/// State of one client connection.
pub struct Connection {
    caller: Caller,
    caller_info: OnceLock<CallerInfo>,
    pinned: Pinned,
    /// Where the client's socket goes once the answer that hijacks it is
    /// written (see [`Connection::hand_over`]).
    hijack: Mutex<Option<oneshot::Sender<Hijacked>>>,
}

impl Connection {
    /// A connection from `caller`.
    pub fn new(caller: Caller) -> Self {
        Connection {
            caller,
            caller_info: OnceLock::new(),
            pinned: Pinned::default(),
            hijack: Mutex::new(None),
        }
    }

    /// Claims the client's socket for a stream, as the daemon hijacks it: the
    /// HTTP server hands it over once the current answer is written and the
    /// connection has stopped serving HTTP.
    fn claim(&self) -> oneshot::Receiver<Hijacked> {
        let (give, take) = oneshot::channel();
        *self.hijack.lock().unwrap_or_else(|p| p.into_inner()) = Some(give);
        take
    }

    /// Gives the socket to the stream that claimed it, or `Err` with the socket
    /// back when none did.
    pub fn hand_over(&self, hijacked: Hijacked) -> Result<(), Hijacked> {
        match self.hijack.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(give) => give.send(hijacked),
            None => Err(hijacked),
        }
    }

    /// The caller's `/proc` details, read on the first exec of the connection.
    fn caller_info(&self) -> &CallerInfo {
        self.caller_info.get_or_init(|| CallerInfo::read(&self.caller))
    }
}

impl Proxy {
    /// A proxy towards `upstream` judging execs with `exec` and recording
    /// sessions in `audit`.
    pub fn new(upstream: Upstream, exec: ExecGate, audit: Audit, lifecycle: Lifecycle) -> Self {
        let sessions = Sessions::new(upstream.clone(), audit.clone(), lifecycle);
        Proxy { upstream, exec, audit, sessions }
    }

    /// Answers one request; failures become Docker-style error responses here.
    pub async fn handle(
        self: Arc<Self>,
        conn: Arc<Connection>,
        request: Request<Incoming>,
    ) -> Response<Body> {
        match self.dispatch(&conn, request).await {
            Ok(response) => response,
            Err(err) => {
                warn!(caller.uid = conn.caller.uid, caller.pid = conn.caller.pid, error = %err, "request refused");
                err.into_response()
            }
        }
    }

    async fn dispatch(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, ProxyError> {
        let route = route::classify(request.method(), request.uri().path())
            .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
        check_framing(request.headers())?;
        let upgrade = asks_upgrade(&request);
        let request = request.map(|b| b.boxed());
        match route {
            Route::Other => self.relay(conn, request, upgrade).await,
            Route::Attach { .. } => self.hijack(conn, request, upgrade).await,
            Route::ExecResize { exec_id } => {
                if let Some((width, height)) = terminal_size(request.uri().query()) {
                    self.audit.recorder().resize(&exec_id, width, height).await;
                }
                self.relay(conn, request, upgrade).await
            }
            Route::ExecCreate { container, prefix } => {
                let daemon = Control::pinned(&self.upstream, &conn.pinned);
                let permit =
                    self.exec.create(&daemon, conn.caller_info(), request, &container, &prefix).await?;
                let (response, judged) = permit.forward(&self.upstream, &conn.pinned).await?;
                if response.status() == StatusCode::CREATED {
                    self.learn_exec_id(response, judged).await
                } else {
                    Ok(response.map(|b| b.boxed()))
                }
            }
            Route::ExecStart { exec_id, prefix } => {
                // Once a start is judged its records are owed, whatever the client
                // does: it runs in a tracked task a dropped connection cannot cancel.
                let (answer, answered) = oneshot::channel();
                let (proxy, conn, id) = (self.clone(), conn.clone(), exec_id.clone());
                self.sessions.spawn(async move {
                    let response = proxy.start(&conn, request, &id, &prefix, upgrade).await;
                    let _ = answer.send(response);
                });
                answered.await.unwrap_or_else(|_| {
                    Err(ProxyError::Internal(format!(
                        "the task judging the start of exec {exec_id:?} ended without an answer"
                    )))
                })
            }
        }
    }

    /// Judges an exec start and runs what it allows: a detached start, or a
    /// recorded session. Whatever the daemon answers, the start's end is
    /// recorded by the session module.
    async fn start(
        &self,
        conn: &Connection,
        request: Request<Body>,
        exec_id: &str,
        prefix: &Prefix,
        upgrade: bool,
    ) -> Result<Response<Body>, ProxyError> {
        let daemon = Control::pinned(&self.upstream, &conn.pinned);
        let permit = self.exec.start(&daemon, conn.caller_info(), request, exec_id, prefix).await?;
        let detached = permit.detached();
        let (sent, plan) = permit.forward(&self.upstream, &conn.pinned, upgrade).await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                self.sessions.never_started(plan, err.to_string()).await;
                return Err(err);
            }
        };
        let status = response.status();
        if detached && status.is_success() {
            // No stream to record: a watcher records the exit code once the process ends.
            self.sessions.watch_detached(plan);
            return Ok(response.map(|b| b.boxed()));
        }
        if detached || status != StatusCode::SWITCHING_PROTOCOLS {
            self.sessions.never_started(plan, format!("the daemon answered {status}")).await;
            return Ok(self.maybe_stream(conn, response, upgrade));
        }
        Ok(self.stream(conn, response, upgrade, Some(plan)))
    }

    /// Reads the id from a successful exec create answer, remembers what was
    /// judged under it, and passes the answer on unchanged.
    async fn learn_exec_id(
        &self,
        response: Response<Incoming>,
        judged: Judged,
    ) -> Result<Response<Body>, ProxyError> {
        let (parts, body) = response.into_parts();
        let bytes: Bytes = Limited::new(body, MAX_CREATE_ANSWER)
            .collect()
            .await
            .map_err(|e| {
                ProxyError::DaemonAnswer(format!("cannot read the daemon's answer to an exec create: {e}"))
            })?
            .to_bytes();
        match serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["Id"].as_str().map(str::to_owned))
        {
            Some(id) => self.exec.remember(id, judged),
            None => {
                warn!("exec create answer without an Id; its start will be judged from the daemon's inspect")
            }
        }
        Ok(Response::from_parts(parts, body::full(bytes)))
    }

    /// Relays a request that does not hijack by its route. One carrying upgrade
    /// headers still gets its own connection: the daemon may answer 101 on routes
    /// execgate does not model (`/session`, `/grpc`, `attach/ws`), and that stream
    /// is bridged rather than left half-handled.
    async fn relay(
        &self,
        conn: &Connection,
        request: Request<Body>,
        upgrade: bool,
    ) -> Result<Response<Body>, ProxyError> {
        if upgrade {
            return self.hijack(conn, request, true).await;
        }
        let response = conn.pinned.send(&self.upstream, request).await?;
        Ok(response.map(|b| b.boxed()))
    }

    /// Sends a request that may take over the connection (attach, any
    /// `Upgrade`) and bridges the stream if the daemon switches protocols.
    async fn hijack(
        &self,
        conn: &Connection,
        request: Request<Body>,
        client_upgrade: bool,
    ) -> Result<Response<Body>, ProxyError> {
        let response = self.upstream.open_stream(request, client_upgrade).await?;
        Ok(self.maybe_stream(conn, response, client_upgrade))
    }

    /// Bridges an unrecorded stream if the daemon switched protocols, else
    /// passes its answer on.
    fn maybe_stream(
        &self,
        conn: &Connection,
        response: Response<Incoming>,
        client_upgrade: bool,
    ) -> Response<Body> {
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            self.stream(conn, response, client_upgrade, None)
        } else {
            response.map(|b| b.boxed())
        }
    }

    /// Bridges client and daemon in a tracked task once the daemon switched
    /// protocols — recording it when it is an exec session — and answers the
    /// client in the form it asked for.
    fn stream(
        &self,
        conn: &Connection,
        mut response: Response<Incoming>,
        client_upgrade: bool,
        plan: Option<StartPlan>,
    ) -> Response<Body> {
        let daemon = hyper::upgrade::on(&mut response);
        self.sessions.bridge(plan, conn.claim(), daemon);
        if client_upgrade { response.map(|b| b.boxed()) } else { raw_stream_answer(response) }
    }
}

/// `h` and `w` of a resize query, as `(width, height)`.
fn terminal_size(query: Option<&str>) -> Option<(u64, u64)> {
    let (mut width, mut height) = (None, None);
    for pair in query?.split('&') {
        match pair.split_once('=') {
            Some(("w", v)) => width = v.parse().ok(),
            Some(("h", v)) => height = v.parse().ok(),
            _ => {}
        }
    }
    Some((width?, height?))
}

/// The daemon's answer to a hijack the client did not ask to upgrade:
/// `200 OK` with `application/vnd.docker.raw-stream`, then the stream until
/// the connection closes. It is written as HTTP/1.0 because that is the only
/// form in which hyper frames a body by the connection's close (for HTTP/1.1
/// it would chunk it); the daemon's own head says HTTP/1.1, and clients read
/// either the same way. The daemon's other headers (`Api-Version`, `Server`…)
/// are kept.
fn raw_stream_answer(daemon: Response<Incoming>) -> Response<Body> {
    let (mut parts, _) = daemon.into_parts();
    parts.status = StatusCode::OK;
    parts.version = Version::HTTP_10;
    // Drops the daemon's reason phrase ("UPGRADED") with the rest of the 101's extensions.
    parts.extensions = Default::default();
    for name in [header::CONNECTION, header::UPGRADE, header::CONTENT_LENGTH, header::TRANSFER_ENCODING] {
        parts.headers.remove(name);
    }
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.docker.raw-stream"));
    Response::from_parts(parts, body::until_close())
}

/// Whether the client asked to switch protocols. Only HTTP/1.1 can: hyper would
/// not complete an upgrade on an HTTP/1.0 connection.
fn asks_upgrade<B>(request: &Request<B>) -> bool {
    request.version() == Version::HTTP_11 && request.headers().contains_key(header::UPGRADE)
}
