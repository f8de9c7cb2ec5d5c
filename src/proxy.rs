//! One request's way through execgate: classify it, then relay it plainly or
//! bridge it as a hijacked stream.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Version, header};
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::exec::start::StartConfig;
use crate::listener::Caller;
use crate::route::{self, Route};
use crate::tunnel;
use crate::upstream::{Pinned, Upstream};

/// Largest exec body execgate reads into memory; the daemon's real ones are < 1 KiB.
pub const MAX_EXEC_BODY: usize = 1024 * 1024;

/// What every connection shares.
pub struct Proxy {
    upstream: Upstream,
    sessions: TaskTracker,
}

/// State of one client connection.
pub struct Connection {
    caller: Caller,
    pinned: Pinned,
}

impl Connection {
    /// A connection from `caller`.
    pub fn new(caller: Caller) -> Self {
        Connection {
            caller,
            pinned: Pinned::default(),
        }
    }
}

impl Proxy {
    /// A proxy towards `upstream`; hijacked sessions are tracked in `sessions` so
    /// shutdown can wait for them.
    pub fn new(upstream: Upstream, sessions: TaskTracker) -> Self {
        Proxy { upstream, sessions }
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
        let upgrade = asks_upgrade(&request);
        let request = request.map(|b| b.boxed());
        match route {
            Route::Other | Route::ExecCreate { .. } => self.relay(conn, request, upgrade).await,
            Route::Attach { .. } if upgrade => self.relay_upgradable(request).await,
            Route::Attach { .. } => Err(ProxyError::UpgradeRequired { what: "attach" }),
            Route::ExecStart { exec_id } => {
                let (request, start) = read_start(request).await?;
                debug!(
                    exec_id,
                    detach = start.detach,
                    tty = start.tty,
                    "exec start"
                );
                match (start.detach, upgrade) {
                    (true, _) => self.relay(conn, request, upgrade).await,
                    (false, true) => self.relay_upgradable(request).await,
                    (false, false) => Err(ProxyError::UpgradeRequired { what: "exec start" }),
                }
            }
        }
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
    async fn relay_upgradable(
        &self,
        mut request: Request<Body>,
    ) -> Result<Response<Body>, ProxyError> {
        // Taken before the request moves upstream: only the server side's handle
        // can complete the client's upgrade once the 101 has been written.
        let client_upgrade = hyper::upgrade::on(&mut request);
        let mut sender = self.upstream.upgradable().await?;
        let mut response =
            sender
                .send_request(request)
                .await
                .map_err(|e| ProxyError::Upstream {
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
                    Ok(t) => debug!(
                        to_daemon = t.to_daemon,
                        to_client = t.to_client,
                        "stream closed"
                    ),
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

/// Reads and decodes an exec start body; returns the request with the same bytes.
async fn read_start(request: Request<Body>) -> Result<(Request<Body>, StartConfig), ProxyError> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_EXEC_BODY as u64) {
        return Err(ProxyError::TooLarge {
            limit: MAX_EXEC_BODY,
        });
    }
    let bytes: Bytes = match Limited::new(body, MAX_EXEC_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            return Err(ProxyError::TooLarge {
                limit: MAX_EXEC_BODY,
            });
        }
        Err(err) => {
            return Err(ProxyError::BadRequest(format!(
                "failed to read the exec start body: {err}"
            )));
        }
    };
    let start = StartConfig::decode(&bytes)
        .map_err(|e| ProxyError::BadRequest(format!("malformed exec start body: {e}")))?;
    Ok((Request::from_parts(parts, body::full(bytes)), start))
}
