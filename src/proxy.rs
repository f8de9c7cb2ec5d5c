//! One request's way through execgate: classify it, then relay it plainly,
//! judge it as an exec, or bridge it as a hijacked stream.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Version, header};
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::exec::context::CallerInfo;
use crate::exec::{ExecGate, Judged, body::check_framing};
use crate::listener::Caller;
use crate::route::{self, Route};
use crate::tunnel;
use crate::upstream::{Pinned, Upstream};

/// Largest exec create answer execgate reads to learn the new exec's id.
const MAX_CREATE_ANSWER: usize = 64 * 1024;

/// What every connection shares.
pub struct Proxy {
    upstream: Upstream,
    exec: ExecGate,
    sessions: TaskTracker,
}

/// State of one client connection.
pub struct Connection {
    caller: Caller,
    caller_info: OnceLock<CallerInfo>,
    pinned: Pinned,
}

impl Connection {
    /// A connection from `caller`.
    pub fn new(caller: Caller) -> Self {
        Connection { caller, caller_info: OnceLock::new(), pinned: Pinned::default() }
    }

    /// The caller's `/proc` details, read on the first exec of the connection.
    fn caller_info(&self) -> &CallerInfo {
        self.caller_info.get_or_init(|| CallerInfo::read(&self.caller))
    }
}

impl Proxy {
    /// A proxy towards `upstream` judging execs with `exec`; hijacked sessions
    /// are tracked in `sessions` so shutdown can wait for them.
    pub fn new(upstream: Upstream, exec: ExecGate, sessions: TaskTracker) -> Self {
        Proxy { upstream, exec, sessions }
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
        &self,
        conn: &Connection,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, ProxyError> {
        let route = route::classify(request.method(), request.uri().path())
            .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
        check_framing(request.headers())?;
        let upgrade = asks_upgrade(&request);
        let request = request.map(|b| b.boxed());
        match route {
            Route::Other => self.relay(conn, request, upgrade).await,
            Route::Attach { .. } if upgrade => self.relay_upgradable(request).await,
            Route::Attach { .. } => Err(ProxyError::UpgradeRequired { what: "attach" }),
            Route::ExecCreate { container, version } => {
                let permit = self
                    .exec
                    .create(&self.upstream, conn.caller_info(), request, &container, version.as_deref())
                    .await?;
                let (request, judged) = permit.into_parts();
                let response = conn.pinned.send(&self.upstream, request).await?;
                match judged {
                    Some(judged) if response.status() == StatusCode::CREATED => {
                        self.learn_exec_id(response, judged).await
                    }
                    _ => Ok(response.map(|b| b.boxed())),
                }
            }
            Route::ExecStart { exec_id, version } => {
                let permit = self
                    .exec
                    .start(&self.upstream, conn.caller_info(), request, &exec_id, version.as_deref())
                    .await?;
                let detach = permit.start.is_some_and(|s| s.detach);
                let (request, _) = permit.into_parts();
                match (detach, upgrade) {
                    (true, _) => self.relay(conn, request, upgrade).await,
                    (false, true) => self.relay_upgradable(request).await,
                    (false, false) => Err(ProxyError::UpgradeRequired { what: "exec start" }),
                }
            }
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
            return self.relay_upgradable(request).await;
        }
        let response = conn.pinned.send(&self.upstream, request).await?;
        Ok(response.map(|b| b.boxed()))
    }

    /// Sends a request on a fresh daemon connection and, when the daemon switches
    /// protocols, bridges the two upgraded connections in a tracked task.
    async fn relay_upgradable(&self, mut request: Request<Body>) -> Result<Response<Body>, ProxyError> {
        // Taken before the request moves upstream: only the server side's handle
        // can complete the client's upgrade once the 101 has been written.
        let client_upgrade = hyper::upgrade::on(&mut request);
        let mut sender = self.upstream.upgradable().await?;
        let mut response = sender.send_request(request).await.map_err(|e| ProxyError::Upstream {
            socket: self.upstream.socket().to_owned(),
            source: e.into(),
        })?;
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let daemon_upgrade = hyper::upgrade::on(&mut response);
            self.sessions.spawn(async move {
                let (client, daemon) = match tokio::try_join!(client_upgrade, daemon_upgrade) {
                    Ok(pair) => pair,
                    Err(err) => return warn!(error = %err, "upgrade did not complete"),
                };
                match tunnel::bridge(client, daemon).await {
                    Ok(t) => debug!(to_daemon = t.to_daemon, to_client = t.to_client, "stream closed"),
                    Err(err) => debug!(error = %err, "stream ended with an error"),
                }
            });
        }
        Ok(response.map(|b| b.boxed()))
    }
}

/// Whether the client asked to switch protocols. Only HTTP/1.1 can: hyper would
/// not complete an upgrade on an HTTP/1.0 connection.
fn asks_upgrade<B>(request: &Request<B>) -> bool {
    request.version() == Version::HTTP_11 && request.headers().contains_key(header::UPGRADE)
}
