//! One request's way through execgate: classify it, then relay it plainly,
//! judge it as an exec, or bridge it as a hijacked (and recorded) stream.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode, Version, header};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::audit::{Audit, Counts, EndReason, SessionEnd};
use crate::body::{self, Body};
use crate::bounds::Slot;
use crate::error::ProxyError;
use crate::exec::context::{self, CallerInfo};
use crate::exec::{ExecGate, Judged, StartPlan, body::check_framing};
use crate::listener::Caller;
use crate::route::{self, Prefix, Route};
use crate::tunnel::{self, Ending, Transfer};
use crate::upstream::{Control, Pinned, Upstream};

/// Largest exec create answer execgate reads to learn the new exec's id.
const MAX_CREATE_ANSWER: usize = 64 * 1024;
/// How often a running exec is asked whether it has ended.
const EXIT_POLL: Duration = Duration::from_millis(500);

/// What every connection shares.
pub struct Proxy {
    upstream: Upstream,
    exec: ExecGate,
    audit: Audit,
    sessions: TaskTracker,
    /// Cancelled on a stop signal: watchers of detached execs end their records.
    stopping: CancellationToken,
    /// Cancelled when the grace period is over: live streams are cut.
    cut: CancellationToken,
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

/// A client socket taken over from HTTP: the stream, and the bytes the client
/// had already sent past its request (they belong to the stream).
pub struct Hijacked {
    /// The client's socket.
    pub stream: UnixStream,
    /// Bytes read past the request.
    pub pending: Bytes,
    /// The connection's place under the connection limit: a stream holds
    /// the client's fd, so it counts until it ends (held, never read).
    #[allow(dead_code)]
    pub slot: Slot,
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

/// The shutdown signals a [`Proxy`] obeys.
pub struct Lifecycle {
    /// Hijacked sessions and exec watchers, so shutdown can wait for them.
    pub sessions: TaskTracker,
    /// Cancelled on a stop signal.
    pub stopping: CancellationToken,
    /// Cancelled when the grace period is over.
    pub cut: CancellationToken,
}

impl Proxy {
    /// A proxy towards `upstream` judging execs with `exec` and recording
    /// sessions in `audit`.
    pub fn new(upstream: Upstream, exec: ExecGate, audit: Audit, lifecycle: Lifecycle) -> Self {
        let Lifecycle { sessions, stopping, cut } = lifecycle;
        Proxy { upstream, exec, audit, sessions, stopping, cut }
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
            Route::Attach { .. } => self.hijack(conn, request, upgrade, None).await,
            Route::ExecResize { exec_id } => {
                if let Some((width, height)) = terminal_size(request.uri().query()) {
                    self.audit.recorder().resize(&exec_id, width, height).await;
                }
                self.relay(conn, request, upgrade).await
            }
            Route::ExecCreate { container, prefix } => {
                let permit = self
                    .exec
                    .create(
                        &Control::pinned(&self.upstream, &conn.pinned),
                        conn.caller_info(),
                        request,
                        &container,
                        &prefix,
                    )
                    .await?;
                let response = conn.pinned.send(&self.upstream, permit.request).await?;
                if response.status() == StatusCode::CREATED {
                    self.learn_exec_id(response, permit.judged).await
                } else {
                    Ok(response.map(|b| b.boxed()))
                }
            }
            Route::ExecStart { exec_id, prefix } => {
                // Once a start is judged its records are owed, whatever the client
                // does: it runs in a tracked task a dropped connection cannot cancel.
                let (answer, answered) = oneshot::channel();
                let (proxy, conn) = (self.clone(), conn.clone());
                self.sessions.spawn(async move {
                    let response = proxy.start(&conn, request, &exec_id, &prefix, upgrade).await;
                    let _ = answer.send(response);
                });
                answered
                    .await
                    .unwrap_or_else(|_| Err(ProxyError::BadRequest("the exec start was abandoned".into())))
            }
        }
    }

    /// Judges an exec start and runs what it allows: a detached start, or a
    /// recorded session.
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
        let (request, plan) = (permit.request, permit.plan);
        if plan.start.detach {
            self.start_detached(conn, request, plan, upgrade).await
        } else {
            self.hijack(conn, request, upgrade, Some(plan)).await
        }
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
                ProxyError::BadRequest(format!("failed to read the daemon's exec create answer: {e}"))
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
            return self.hijack(conn, request, true, None).await;
        }
        let response = conn.pinned.send(&self.upstream, request).await?;
        Ok(response.map(|b| b.boxed()))
    }

    /// A detached start: no stream to record; a watcher records the exit code
    /// once the process ends.
    async fn start_detached(
        &self,
        conn: &Connection,
        request: Request<Body>,
        plan: StartPlan,
        upgrade: bool,
    ) -> Result<Response<Body>, ProxyError> {
        let response = match self.relay(conn, request, upgrade).await {
            Ok(response) => response,
            Err(err) => {
                self.end_unstarted(plan, err.to_string()).await;
                return Err(err);
            }
        };
        if response.status().is_success() {
            let watcher = self.watcher();
            self.sessions.spawn(async move {
                let exit_code = watcher.wait_exit(&plan.exec_id).await;
                // No exit code: execgate is stopping, or the daemon could not say
                // (it forgot the exec, or stopped answering).
                let (reason, detail) = match exit_code {
                    Some(_) => (EndReason::Detached, None),
                    None if watcher.stopping.is_cancelled() => (EndReason::ProxyShutdown, None),
                    None => {
                        (EndReason::DaemonError, Some("the daemon stopped reporting on the exec".to_owned()))
                    }
                };
                watcher.end(plan, reason, exit_code, detail, false).await;
            });
        } else {
            self.end_unstarted(plan, format!("the daemon answered {}", response.status())).await;
        }
        Ok(response)
    }

    /// Sends a request that may take over the connection (exec start, attach,
    /// any `Upgrade`) on a fresh daemon connection and, when the daemon switches
    /// protocols, bridges client and daemon in a tracked task — recording it
    /// when it is an exec session.
    ///
    /// The daemon hijacks these routes whether or not the client asked to
    /// upgrade: with `Upgrade` it answers `101 UPGRADED`, without it `200 OK`
    /// and the raw stream until it closes (dockerode relies on the latter).
    /// execgate always asks the daemon to upgrade, the stream being the same
    /// bytes either way, and answers the client in the form it asked for.
    async fn hijack(
        &self,
        conn: &Connection,
        mut request: Request<Body>,
        client_upgrade: bool,
        plan: Option<StartPlan>,
    ) -> Result<Response<Body>, ProxyError> {
        let headers = request.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if !client_upgrade {
            headers.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
        }
        let sent = async {
            let mut sender = self.upstream.upgradable().await?;
            sender.send_request(request).await.map_err(|e| ProxyError::Upstream {
                socket: self.upstream.socket().to_owned(),
                source: e.into(),
            })
        };
        let mut response = match sent.await {
            Ok(response) => response,
            Err(err) => {
                if let Some(plan) = plan {
                    self.end_unstarted(plan, err.to_string()).await;
                }
                return Err(err);
            }
        };
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            if let Some(plan) = plan {
                self.end_unstarted(plan, format!("the daemon answered {}", response.status())).await;
            }
            return Ok(response.map(|b| b.boxed()));
        }
        let daemon_upgrade = hyper::upgrade::on(&mut response);
        let client = conn.claim();
        let watcher = self.watcher();
        self.sessions.spawn(async move {
            let taps = plan.as_ref().and_then(|p| p.session.as_ref().map(|s| s.taps(p.start.tty)));
            let bridged = async {
                // The client may be gone before its answer was written.
                let client = match client.await {
                    Ok(client) => client,
                    Err(_) => {
                        debug!("client left before the stream began");
                        return Ok(Transfer { to_daemon: 0, to_client: 0, ending: Ending::ClientGone });
                    }
                };
                let daemon = daemon_upgrade.await.map_err(std::io::Error::other)?;
                tunnel::bridge((client.stream, client.pending), daemon, taps).await
            };
            let outcome = tokio::select! {
                outcome = bridged => Some(outcome),
                () = watcher.cut.cancelled() => None,
            };
            match plan {
                Some(plan) => watcher.end_session(plan, outcome).await,
                None => debug!(?outcome, "stream closed"),
            }
        });
        if client_upgrade { Ok(response.map(|b| b.boxed())) } else { Ok(raw_stream_answer(response)) }
    }

    /// Records the end of a start that never became a session.
    async fn end_unstarted(&self, plan: StartPlan, detail: String) {
        self.watcher().end(plan, EndReason::DaemonError, None, Some(detail), false).await;
    }

    fn watcher(&self) -> Watcher {
        Watcher {
            upstream: self.upstream.clone(),
            audit: self.audit.clone(),
            stopping: self.stopping.clone(),
            cut: self.cut.clone(),
        }
    }
}

/// What a session task needs once its request handler has returned.
struct Watcher {
    upstream: Upstream,
    audit: Audit,
    stopping: CancellationToken,
    cut: CancellationToken,
}

impl Watcher {
    /// Classifies how a bridged session ended and records it.
    async fn end_session(&self, plan: StartPlan, outcome: Option<std::io::Result<Transfer>>) {
        let inspect = context::exec(&Control::pooled(&self.upstream), &plan.exec_id).await;
        let running = inspect.as_ref().is_ok_and(|i| i.running);
        let (reason, detail) = match (&outcome, &inspect) {
            (None, _) => (EndReason::ProxyShutdown, None),
            (Some(Err(err)), _) => (EndReason::DaemonError, Some(err.to_string())),
            (Some(Ok(t)), _) if t.ending == Ending::DaemonGone => (EndReason::DaemonError, None),
            (Some(Ok(_)), Err(err)) => (EndReason::DaemonError, Some(err.to_string())),
            (Some(Ok(t)), Ok(_)) if t.ending == Ending::ClientGone => (EndReason::ClientHangup, None),
            // The daemon closed the stream while the process runs on: detach keys.
            (Some(Ok(_)), Ok(_)) if running => (EndReason::Detached, None),
            (Some(Ok(_)), Ok(_)) => (EndReason::Exited, None),
        };
        let exit_code = match (&inspect, reason) {
            (Ok(i), _) if !i.running => i.exit_code,
            (Ok(_), EndReason::ClientHangup | EndReason::Detached) => self.wait_exit(&plan.exec_id).await,
            _ => None,
        };
        self.end(plan, reason, exit_code, detail, true).await;
    }

    /// Polls the exec until it ends; `None` when execgate stops first or the
    /// daemon cannot tell.
    async fn wait_exit(&self, exec_id: &str) -> Option<i64> {
        loop {
            match context::exec(&Control::pooled(&self.upstream), exec_id).await {
                Ok(i) if !i.running => return i.exit_code,
                Ok(_) => {}
                Err(_) => return None,
            }
            tokio::select! {
                () = tokio::time::sleep(EXIT_POLL) => {}
                () = self.stopping.cancelled() => return None,
            }
        }
    }

    async fn end(
        &self,
        mut plan: StartPlan,
        reason: EndReason,
        exit_code: Option<i64>,
        detail: Option<String>,
        output_captured: bool,
    ) {
        // Only a session that streamed through execgate has bytes to count.
        let (recording, counts) = match plan.session.take() {
            Some(session) => session.finish().await,
            None => (None, Counts::default()),
        };
        let end = SessionEnd {
            reason,
            exit_code,
            duration: plan.started.elapsed(),
            counts,
            output_captured,
            recording,
            detail,
        };
        self.audit.exec_end(&plan.facts, end).await;
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
