//! One request's way through execgate: classify it, then relay it plainly,
//! have the exec gate judge it, or switch it to a stream. What becomes of a
//! judged start, once forwarded, is the `session` module's.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode, Version, header};
use tokio::sync::oneshot;
use tracing::warn;

use crate::audit::Audit;
use crate::daemon::inspect;
use crate::daemon::upstream::{Control, Pinned, Upstream};
use crate::gate::{AttachGate, ExecGate, Judged, RequestGate, UserRules};
use crate::http::api;
use crate::http::body::{self, Body};
use crate::http::error::ProxyError;
use crate::http::framing::check_framing;
use crate::http::query;
use crate::http::route::{self, Prefix, Route};
use crate::peer::{Caller, CallerInfo};
use crate::policy::Policies;
use crate::session::{Hijacked, Lifecycle, Plan, Sessions};

/// Largest exec create answer execgate reads to learn the new exec's id.
const MAX_CREATE_ANSWER: usize = 64 * 1024;

/// What every connection shares.
pub struct Proxy {
    upstream: Upstream,
    exec: ExecGate,
    attach: AttachGate,
    request: RequestGate,
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
    pub fn new(
        upstream: Upstream,
        policies: Arc<Policies>,
        users: UserRules,
        audit: Audit,
        lifecycle: Lifecycle,
    ) -> Self {
        let sessions = Sessions::new(upstream.clone(), audit.clone(), lifecycle);
        let exec = ExecGate::new(policies.clone(), users, audit.clone());
        let attach = AttachGate::new(policies.clone(), users, audit.clone());
        let request = RequestGate::new(policies, audit.clone());
        Proxy { upstream, exec, attach, request, audit, sessions }
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
            Route::Other => self.relay_judged(conn, request, upgrade).await,
            Route::Attach { container, prefix } => {
                let (proxy, conn) = (self.clone(), conn.clone());
                let what = format!("the attach to container {container:?}");
                self.owed(
                    what,
                    async move { proxy.attach(&conn, request, &container, &prefix, upgrade).await },
                )
                .await
            }
            Route::AttachWebsocket { container } => Err(ProxyError::AttachDenied(vec![format!(
                "an attach to container {container:?} over a WebSocket (GET …/attach/ws) cannot be judged \
                 and recorded by execgate; use POST /containers/{{id}}/attach"
            )])),
            Route::ExecResize { exec_id } => {
                let size = query::terminal_size(request.uri().query());
                let response = self.relay_judged(conn, request, upgrade).await?;
                // Recorded as applied: only what the daemon took.
                if let (Some((width, height)), true) = (size, response.status().is_success()) {
                    self.audit.recorder().resize(&exec_id, width, height).await;
                }
                Ok(response)
            }
            Route::ContainerResize { container } => {
                let size = query::terminal_size(request.uri().query());
                let response = self.relay_judged(conn, request, upgrade).await?;
                if let (Some((width, height)), true) = (size, response.status().is_success()) {
                    self.record_container_resize(conn, &container, width, height).await;
                }
                Ok(response)
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
                let (proxy, conn) = (self.clone(), conn.clone());
                let what = format!("the start of exec {exec_id:?}");
                self.owed(what, async move { proxy.start(&conn, request, &exec_id, &prefix, upgrade).await })
                    .await
            }
        }
    }

    /// Runs a judged request (an exec start, an attach) in a tracked task:
    /// once it is judged its records are owed, whatever the client does, so a
    /// dropped connection cannot cancel it. `what` names it in the error if
    /// the task ends without an answer.
    async fn owed(
        &self,
        what: String,
        judged: impl Future<Output = Result<Response<Body>, ProxyError>> + Send + 'static,
    ) -> Result<Response<Body>, ProxyError> {
        let (answer, answered) = oneshot::channel();
        self.sessions.spawn(async move {
            let _ = answer.send(judged.await);
        });
        answered.await.unwrap_or_else(|_| {
            Err(ProxyError::Internal(format!("the task judging {what} ended without an answer")))
        })
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
                self.sessions.never_started(Plan::Exec(Box::new(plan)), err.to_string()).await;
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
            self.sessions
                .never_started(Plan::Exec(Box::new(plan)), format!("the daemon answered {status}"))
                .await;
            return Ok(self.maybe_stream(conn, response, upgrade));
        }
        Ok(self.stream(conn, response, upgrade, Some(Plan::Exec(Box::new(plan)))))
    }

    /// Records a resize the daemon applied to `container` in its live attach
    /// sessions. The reference is resolved as the daemon resolved it (full id,
    /// name, id prefix), and only when some attach session is live.
    async fn record_container_resize(&self, conn: &Connection, container: &str, width: u64, height: u64) {
        let recorder = self.audit.recorder();
        if !recorder.has_attach_sessions() {
            return;
        }
        let daemon = Control::pinned(&self.upstream, &conn.pinned);
        match inspect::container_inspect(&daemon, container).await {
            Ok(found) => recorder.resize_container(&found.id, width, height).await,
            Err(err) => {
                warn!(container, error = %err, "cannot tell which container a recorded resize was for")
            }
        }
    }

    /// Judges an attach and runs the recorded session it allows.
    async fn attach(
        &self,
        conn: &Connection,
        request: Request<Body>,
        container: &str,
        prefix: &Prefix,
        upgrade: bool,
    ) -> Result<Response<Body>, ProxyError> {
        let daemon = Control::pinned(&self.upstream, &conn.pinned);
        let permit = self.attach.attach(&daemon, conn.caller_info(), request, container, prefix).await?;
        let (sent, plan) = permit.forward(&self.upstream, upgrade).await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                self.sessions.never_started(Plan::Attach(Box::new(plan)), err.to_string()).await;
                return Err(err);
            }
        };
        let status = response.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            // The daemon refused before streaming (no such container, bad detach keys, paused).
            self.sessions
                .never_started(Plan::Attach(Box::new(plan)), format!("the daemon answered {status}"))
                .await;
            return Ok(response.map(|b| b.boxed()));
        }
        Ok(self.stream(conn, response, upgrade, Some(Plan::Attach(Box::new(plan)))))
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

    /// Relays a request that is neither exec nor attach, judged first when the
    /// policy set has a request policy for its route. Without one nothing more
    /// happens than a flag read: no body read, nothing evaluated.
    async fn relay_judged(
        &self,
        conn: &Connection,
        request: Request<Body>,
        upgrade: bool,
    ) -> Result<Response<Body>, ProxyError> {
        let Some((set, operation)) =
            self.request.judging(|| api::operation(request.method(), request.uri().path()))
        else {
            return self.relay(conn, request, upgrade).await;
        };
        let daemon = Control::pinned(&self.upstream, &conn.pinned);
        let version = self.upstream.known_version();
        let permit =
            self.request.judge(&daemon, conn.caller_info(), request, &set, operation, version).await?;
        self.relay(conn, permit.into_request(), upgrade).await
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
        plan: Option<Plan>,
    ) -> Response<Body> {
        let daemon = hyper::upgrade::on(&mut response);
        self.sessions.bridge(plan, conn.claim(), daemon);
        if client_upgrade { response.map(|b| b.boxed()) } else { raw_stream_answer(response) }
    }
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

#[cfg(test)]
mod tests {
    //! Dispatch over a stub daemon: a hyper server on a Unix socket in a temp
    //! dir that answers canned Docker answers and records what reached it. The
    //! client side is hyper's client over an in-memory duplex served, as
    //! `serve_connection` does, by [`Proxy::handle`].

    use std::convert::Infallible;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper::{HeaderMap, Method};
    use hyper_util::rt::TokioIo;
    use serde_json::{Value, json};
    use tokio::net::UnixListener;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use super::*;
    use crate::audit::{AuditConfig, DEFAULT_REDACT, LogConfig, RecordMode};
    use crate::gate::identity::{PinUser, UnpinnedStarts};
    use crate::gate::{UserLookup, UserRules};
    use crate::policy::Policies;

    /// The full id the stub daemon gives container `web`.
    const WEB_ID: &str = "4f3c2b1a00112233445566778899aabbccddeeff00112233445566778899aabb";

    /// Longest a test waits for one answer (they take milliseconds).
    const EXCHANGE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

    /// A request as the stub daemon received it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: Method,
        /// Path and query.
        target: String,
        headers: HeaderMap,
        body: Bytes,
    }

    /// A canned daemon answer.
    struct Answer {
        status: StatusCode,
        headers: Vec<(&'static str, &'static str)>,
        body: String,
    }

    /// A JSON answer, with the headers dockerd sends on every answer.
    fn json_answer(status: StatusCode, body: Value) -> Answer {
        Answer {
            status,
            headers: vec![
                ("content-type", "application/json"),
                ("api-version", "1.41"),
                ("docker-experimental", "false"),
                ("ostype", "linux"),
                ("server", "Docker/20.10.24 (linux)"),
            ],
            body: body.to_string(),
        }
    }

    /// The stub daemon: every request is recorded before it is answered, so
    /// once the client has its answer, the record is there.
    struct Daemon {
        socket: PathBuf,
        seen: Arc<Mutex<Vec<Seen>>>,
        connections: Arc<AtomicUsize>,
    }

    impl Daemon {
        fn start(dir: &Path, script: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Daemon {
            let socket = dir.join("docker.sock");
            let listener = UnixListener::bind(&socket).expect("bind the stub daemon's socket");
            let seen = Arc::new(Mutex::new(Vec::new()));
            let connections = Arc::new(AtomicUsize::new(0));
            let script = Arc::new(script);
            let (log, count) = (seen.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    count.fetch_add(1, Ordering::SeqCst);
                    let (script, log) = (script.clone(), log.clone());
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (script, log) = (script.clone(), log.clone());
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let target =
                                parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                            let seen = Seen { method: parts.method, target, headers: parts.headers, body };
                            let answer = script(&seen);
                            log.lock().expect("stub log").push(seen);
                            let mut response = Response::new(Full::new(Bytes::from(answer.body)));
                            *response.status_mut() = answer.status;
                            for (name, value) in answer.headers {
                                response.headers_mut().insert(name, HeaderValue::from_static(value));
                            }
                            Ok::<_, hyper::Error>(response)
                        }
                    });
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            Daemon { socket, seen, connections }
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().expect("stub log").clone()
        }

        fn posts(&self) -> Vec<Seen> {
            self.seen().into_iter().filter(|s| s.method == Method::POST).collect()
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    /// The built-in policy pack, compiled once for the module.
    fn policies() -> Arc<Policies> {
        static POLICIES: OnceLock<Arc<Policies>> = OnceLock::new();
        POLICIES.get_or_init(|| Arc::new(Policies::load(Vec::new()).expect("built-in policy pack"))).clone()
    }

    /// A proxy towards the daemon at `socket`, auditing into `dir/audit`.
    async fn proxy(dir: &Path, socket: PathBuf) -> Arc<Proxy> {
        let config = AuditConfig {
            log: LogConfig::for_test(&dir.join("audit")),
            record: RecordMode::All,
            record_cap: 1 << 20,
            redact: DEFAULT_REDACT.iter().map(|s| (*s).to_owned()).collect(),
        };
        // The writer thread ends once the last handle is dropped with the proxy.
        let (audit, _writer) = Audit::open(config).await.expect("open the audit trail");
        let rules = UserRules {
            lookup: UserLookup::Rootfs,
            pin: PinUser::On,
            unpinned_starts: UnpinnedStarts::Refuse,
        };

        let lifecycle = Lifecycle {
            sessions: TaskTracker::new(),
            stopping: CancellationToken::new(),
            cut: CancellationToken::new(),
        };
        Arc::new(Proxy::new(Upstream::new(socket, None), policies(), rules, audit, lifecycle))
    }

    /// One client connection to the proxy, served as `serve_connection` serves it.
    struct Client(hyper::client::conn::http1::SendRequest<Full<Bytes>>);

    /// What the client got back.
    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    }

    impl Reply {
        /// The `message` of a Docker-style error body.
        fn message(&self) -> String {
            let value: Value = serde_json::from_slice(&self.body)
                .unwrap_or_else(|e| panic!("error body {:?} is not JSON: {e}", self.body));
            let message = value["message"].as_str().expect("a message field").to_owned();
            assert_eq!(value.as_object().map(|o| o.len()), Some(1), "only a message: {value}");
            assert_eq!(
                self.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
                Some("application/json")
            );
            message
        }
    }

    impl Client {
        async fn connect(proxy: &Arc<Proxy>) -> Client {
            let (client_io, server_io) = tokio::io::duplex(64 * 1024);
            let me = Caller {
                uid: nix::unistd::getuid().as_raw(),
                gid: nix::unistd::getgid().as_raw(),
                pid: Some(std::process::id() as i32),
            };
            let conn = Arc::new(Connection::new(me));
            let proxy = proxy.clone();
            let service = service_fn(move |request| {
                let (proxy, conn) = (proxy.clone(), conn.clone());
                async move { Ok::<_, Infallible>(proxy.handle(conn, request).await) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(server_io), service)
                    .await;
            });
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(client_io))
                .await
                .expect("client handshake");
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Client(sender)
        }

        /// Sends `request` and reads the whole answer; a proxy or daemon that
        /// never answers fails the test rather than hanging it.
        async fn send(&mut self, request: Request<Full<Bytes>>) -> Reply {
            let exchange = async {
                self.0.ready().await.expect("client connection ready");
                let response = self.0.send_request(request).await.expect("an answer from the proxy");
                let (parts, body) = response.into_parts();
                let body = body.collect().await.expect("the whole answer body").to_bytes();
                Reply { status: parts.status, headers: parts.headers, body }
            };
            tokio::time::timeout(EXCHANGE_LIMIT, exchange).await.expect("an answer within the limit")
        }
    }

    /// A request as the docker CLI would send it.
    fn request(method: Method, target: &str, body: &str) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(target)
            .header(header::HOST, "api.moby.localhost")
            .header(header::USER_AGENT, "Docker-Client/20.10.24 (linux)");
        if !body.is_empty() {
            builder = builder
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, body.len());
        }
        builder.body(Full::new(Bytes::from(body.to_owned()))).expect("a valid request")
    }

    /// A running container `web` whose root (`MergedDir`) holds an
    /// `/etc/passwd` and `/etc/group` with user `app` (1000:1000).
    fn web_container(dir: &Path) -> Value {
        let root = dir.join("merged");
        std::fs::create_dir_all(root.join("etc")).expect("container /etc");
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .expect("container /etc/passwd");
        std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\n").expect("container /etc/group");
        json!({
            "Id": WEB_ID,
            "Name": "/web",
            "Config": {"Image": "busybox:latest", "User": "", "Labels": {}},
            "HostConfig": {"Privileged": false, "CapAdd": null, "GroupAdd": null},
            "State": {"Running": true},
            "GraphDriver": {"Name": "overlay2", "Data": {"MergedDir": root.display().to_string()}},
            "Mounts": []
        })
    }

    fn not_found(seen: &Seen) -> Answer {
        json_answer(StatusCode::NOT_FOUND, json!({"message": format!("page not found: {}", seen.target)}))
    }

    #[tokio::test]
    async fn ordinary_requests_are_relayed_unchanged_both_ways() {
        let temp = tempfile::tempdir().expect("temp dir");
        let listing = json!([{"Id": WEB_ID, "Names": ["/web"], "State": "running"}]);
        let answer = listing.clone();
        let daemon =
            Daemon::start(temp.path(), move |seen| match (seen.method.as_str(), seen.target.as_str()) {
                ("GET", "/v1.41/containers/json?all=1") => json_answer(StatusCode::OK, answer.clone()),
                ("GET", "/v1.41/containers/nope/json") => {
                    json_answer(StatusCode::NOT_FOUND, json!({"message": "No such container: nope"}))
                }
                ("POST", "/v1.41/containers/create?name=db") => {
                    json_answer(StatusCode::CREATED, json!({"Id": "c0ffee", "Warnings": []}))
                }
                _ => not_found(seen),
            });
        let proxy = proxy(temp.path(), daemon.socket.clone()).await;
        let mut client = Client::connect(&proxy).await;

        let mut sent = request(Method::GET, "/v1.41/containers/json?all=1", "");
        sent.headers_mut().insert("x-registry-auth", HeaderValue::from_static("e30="));
        let sent_headers = sent.headers().clone();
        let reply = client.send(sent).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(serde_json::from_slice::<Value>(&reply.body).expect("JSON listing"), listing);
        assert_eq!(reply.body, listing.to_string().as_bytes(), "the daemon's bytes, unchanged");
        // The daemon's own headers, plus only what its HTTP server adds.
        for (name, value) in json_answer(StatusCode::OK, Value::Null).headers {
            assert_eq!(reply.headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}");
        }
        assert_eq!(
            reply.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()),
            Some(reply.body.len().to_string().as_str())
        );
        assert!(reply.headers.contains_key(header::DATE), "dockerd's Date header");
        assert_eq!(reply.headers.len(), 7, "no header added or dropped: {:?}", reply.headers);
        let seen = daemon.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].method, Method::GET);
        assert_eq!(seen[0].target, "/v1.41/containers/json?all=1");
        assert_eq!(seen[0].headers, sent_headers, "the client's headers, unchanged");
        assert!(seen[0].body.is_empty());

        // A body goes through as sent (no JSON rewriting off the exec routes),
        // and the daemon's status comes back as it is.
        let body = r#"{"Image":"busybox","Cmd":["sh"],"Unknown":{"kept":[1,null]} }"#;
        let sent = request(Method::POST, "/v1.41/containers/create?name=db", body);
        let sent_headers = sent.headers().clone();
        let reply = client.send(sent).await;
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(reply.body, json!({"Id": "c0ffee", "Warnings": []}).to_string().as_bytes());
        let reply = client.send(request(Method::GET, "/v1.41/containers/nope/json", "")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "the daemon's refusal is passed on");
        assert_eq!(reply.body, json!({"message": "No such container: nope"}).to_string().as_bytes());

        let seen = daemon.seen();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(
            (seen[1].method.as_str(), seen[1].target.as_str()),
            ("POST", "/v1.41/containers/create?name=db")
        );
        assert_eq!(seen[1].headers, sent_headers);
        assert_eq!(seen[1].body, body.as_bytes());
        assert_eq!(daemon.connections(), 1, "a keep-alive client keeps one daemon connection");
    }

    #[tokio::test]
    async fn malformed_requests_are_refused_before_the_daemon() {
        let temp = tempfile::tempdir().expect("temp dir");
        let daemon = Daemon::start(temp.path(), not_found);
        let proxy = proxy(temp.path(), daemon.socket.clone()).await;

        // A transfer coding the proxy and the daemon could read differently.
        let mut sent = Request::post("/v1.41/containers/create")
            .header(header::HOST, "docker")
            .header(header::TRANSFER_ENCODING, "gzip, chunked")
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("request");
        sent.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let reply = Client::connect(&proxy).await.send(sent).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.message(), "execgate: unsupported Transfer-Encoding; only `chunked` is accepted");

        // A path the daemon's router would not decode: execgate cannot tell
        // what it names, so it does not pass it on.
        for (method, path) in
            [(Method::GET, "/v1.41/containers/x%zz/json"), (Method::POST, "/containers/web/%6")]
        {
            let reply = Client::connect(&proxy).await.send(request(method.clone(), path, "")).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
            assert_eq!(
                reply.message(),
                format!("execgate: request path {path:?} has an invalid percent-encoding"),
                "{method} {path}"
            );
        }
        assert!(daemon.seen().is_empty(), "{:?}", daemon.seen());
        assert_eq!(daemon.connections(), 0, "the daemon was not even dialled");
    }

    #[tokio::test]
    async fn a_malformed_exec_create_is_refused_and_never_forwarded() {
        let temp = tempfile::tempdir().expect("temp dir");
        let container = web_container(temp.path());
        let daemon = Daemon::start(temp.path(), move |seen| match seen.target.as_str() {
            "/containers/web/json" => json_answer(StatusCode::OK, container.clone()),
            _ => json_answer(StatusCode::CREATED, json!({"Id": "e1"})),
        });
        let proxy = proxy(temp.path(), daemon.socket.clone()).await;
        let mut client = Client::connect(&proxy).await;
        for body in [r#"{"Cmd":"id"}"#, r#"{"Cmd":["id"],"Privileged":"true"}"#, r#"{"Cmd":["id"]}x"#, "[]"] {
            let reply = client.send(request(Method::POST, "/v1.41/containers/web/exec", body)).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
            let message = reply.message();
            assert!(message.starts_with("execgate: malformed exec create body: "), "{body}: {message}");
        }
        assert!(daemon.seen().is_empty(), "{:?}", daemon.seen());
    }

    #[tokio::test]
    async fn an_allowed_exec_create_is_forwarded_pinned_and_canonical() {
        let temp = tempfile::tempdir().expect("temp dir");
        let container = web_container(temp.path());
        let daemon =
            Daemon::start(temp.path(), move |seen| match (seen.method.as_str(), seen.target.as_str()) {
                ("GET", "/containers/web/json") => json_answer(StatusCode::OK, container.clone()),
                ("POST", target) if target == format!("/v1.41/containers/{WEB_ID}/exec") => {
                    json_answer(StatusCode::CREATED, json!({"Id": "e0e0"}))
                }
                _ => not_found(seen),
            });
        let proxy = proxy(temp.path(), daemon.socket.clone()).await;
        let mut client = Client::connect(&proxy).await;
        // As docker-py sends it: an unknown `Container` key, and a user by name;
        // once framed by its length, once chunked.
        let body =
            r#"{"User":"app","Cmd":["id","-u"],"AttachStdout":true,"attachstderr":true,"Container":"web"}"#;
        let canonical = r#"{"User":"1000:1000","Privileged":false,"Tty":false,"ConsoleSize":null,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["id","-u"]}"#;
        for chunked in [false, true] {
            let mut sent = request(Method::POST, "/v1.41/containers/web/exec", body);
            if chunked {
                sent.headers_mut().remove(header::CONTENT_LENGTH);
                sent.headers_mut().insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            }
            let reply = client.send(sent).await;
            assert_eq!(reply.status, StatusCode::CREATED, "chunked {chunked}: {:?}", reply.body);
            assert_eq!(
                reply.body,
                json!({"Id": "e0e0"}).to_string().as_bytes(),
                "the daemon's answer, unchanged"
            );

            let seen = daemon.seen();
            let targets: Vec<_> = seen.iter().map(|s| format!("{} {}", s.method, s.target)).collect();
            assert_eq!(
                targets[targets.len() - 2..],
                ["GET /containers/web/json".to_owned(), format!("POST /v1.41/containers/{WEB_ID}/exec")],
                "looked up, then forwarded to the full id (chunked {chunked})"
            );
            let forwarded = &seen[seen.len() - 1];
            assert_eq!(
                std::str::from_utf8(&forwarded.body).expect("UTF-8 body"),
                canonical,
                "the judged body, with the user pinned to uid:gid (chunked {chunked})"
            );
            assert_eq!(
                forwarded.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()),
                Some(canonical.len().to_string().as_str()),
                "framed by its exact length (chunked {chunked})"
            );
            assert!(!forwarded.headers.contains_key(header::TRANSFER_ENCODING), "chunked {chunked}");
            assert_eq!(
                forwarded.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()),
                Some("Docker-Client/20.10.24 (linux)"),
                "the client's other headers go along"
            );
        }
        assert_eq!(daemon.seen().len(), 4);
        assert_eq!(daemon.connections(), 1, "the lookup rode the client's pinned daemon connection");
    }

    #[tokio::test]
    async fn a_denied_exec_create_is_not_forwarded() {
        let temp = tempfile::tempdir().expect("temp dir");
        let container = web_container(temp.path());
        let daemon = Daemon::start(temp.path(), move |seen| match seen.target.as_str() {
            "/containers/web/json" => json_answer(StatusCode::OK, container.clone()),
            _ => json_answer(StatusCode::CREATED, json!({"Id": "e1"})),
        });
        let proxy = proxy(temp.path(), daemon.socket.clone()).await;
        let mut client = Client::connect(&proxy).await;
        for (body, reason) in [
            (r#"{"User":"app","Cmd":["sh"],"Privileged":true}"#, "privileged exec is not allowed"),
            (r#"{"User":"0","Cmd":["sh"]}"#, "exec as root"),
            (r#"{"Cmd":["sh"]}"#, "exec as root"),
        ] {
            let reply = client.send(request(Method::POST, "/v1.41/containers/web/exec", body)).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{body}");
            let message = reply.message();
            assert!(message.starts_with(&format!("execgate: exec denied: {reason}")), "{body}: {message}");
        }
        assert!(daemon.posts().is_empty(), "{:?}", daemon.posts());
    }

    #[tokio::test]
    async fn an_unreachable_daemon_is_a_502_naming_its_socket() {
        let temp = tempfile::tempdir().expect("temp dir");
        let socket = temp.path().join("nobody-listens.sock");
        let proxy = proxy(temp.path(), socket.clone()).await;
        let reply = Client::connect(&proxy)
            .await
            .send(request(Method::GET, "/v1.41/containers/json?all=1", ""))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        let message = reply.message();
        let expected = format!("execgate: cannot reach the Docker daemon at {}: ", socket.display());
        assert!(message.starts_with(&expected), "{message}");
        // An exec create fails the same way at its first lookup.
        let body = r#"{"User":"app","Cmd":["id"]}"#;
        let reply = Client::connect(&proxy)
            .await
            .send(request(Method::POST, "/v1.41/containers/web/exec", body))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        let message = reply.message();
        assert!(message.starts_with(&expected), "{message}");
    }

    /// The daemon's inspect of exec `e1` in `web`, created with user 1000:1000.
    fn exec_e1(running: bool) -> Value {
        json!({
            "ID": "e1",
            "Running": running,
            "ExitCode": if running { Value::Null } else { json!(0) },
            "ContainerID": WEB_ID,
            "ProcessConfig": {"tty": false, "entrypoint": "sleep", "arguments": ["1"], "privileged": false, "user": "1000:1000"},
        })
    }

    #[tokio::test]
    async fn a_start_of_a_running_exec_is_a_conflict_and_not_forwarded() {
        let temp = tempfile::tempdir().expect("temp dir");
        let container = web_container(temp.path());
        let daemon = Daemon::start(temp.path(), move |seen| match seen.target.as_str() {
            "/exec/e1/json" => json_answer(StatusCode::OK, exec_e1(true)),
            target if target == format!("/containers/{WEB_ID}/json") => {
                json_answer(StatusCode::OK, container.clone())
            }
            _ => json_answer(StatusCode::OK, Value::Null),
        });
        let proxy = proxy(temp.path(), daemon.socket.clone()).await;
        let mut client = Client::connect(&proxy).await;
        // Twice: a refused start does not keep the exec claimed, so the
        // second is refused for the daemon's reason again.
        for _ in 0..2 {
            let mut sent = request(Method::POST, "/v1.41/exec/e1/start", r#"{"Detach":false,"Tty":false}"#);
            sent.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            sent.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("tcp"));
            let reply = client.send(sent).await;
            assert_eq!(reply.status, StatusCode::CONFLICT);
            assert_eq!(
                reply.message(),
                "execgate: exec e1 is already running; an exec runs once (create a new one)"
            );
        }
        let targets: Vec<_> = daemon.seen().iter().map(|s| format!("{} {}", s.method, s.target)).collect();
        assert_eq!(targets, ["GET /exec/e1/json", "GET /exec/e1/json"], "only looked up, never started");
    }

    #[tokio::test]
    async fn a_detached_start_is_forwarded_once_and_a_second_is_a_conflict() {
        let temp = tempfile::tempdir().expect("temp dir");
        let container = web_container(temp.path());
        let daemon =
            Daemon::start(temp.path(), move |seen| match (seen.method.as_str(), seen.target.as_str()) {
                ("GET", "/exec/e1/json") => json_answer(StatusCode::OK, exec_e1(false)),
                ("GET", target) if target == format!("/containers/{WEB_ID}/json") => {
                    json_answer(StatusCode::OK, container.clone())
                }
                ("POST", "/v1.41/exec/e1/start") => {
                    Answer { status: StatusCode::OK, headers: vec![], body: String::new() }
                }
                _ => not_found(seen),
            });
        let proxy = proxy(temp.path(), daemon.socket.clone()).await;
        let mut client = Client::connect(&proxy).await;
        let body = r#"{"detach":true,"Tty":false,"OutputCapacity":null}"#;
        let reply = client.send(request(Method::POST, "/v1.41/exec/e1/start", body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let posts = daemon.posts();
        assert_eq!(posts.len(), 1, "{posts:?}");
        assert_eq!(posts[0].target, "/v1.41/exec/e1/start");
        assert_eq!(posts[0].body, r#"{"Detach":true,"Tty":false}"#.as_bytes(), "the canonical start body");

        let reply = client.send(request(Method::POST, "/v1.41/exec/e1/start", body)).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(
            reply.message(),
            "execgate: exec e1 was already started through execgate; an exec runs once (create a new one)"
        );
        assert_eq!(daemon.posts().len(), 1, "the second start never reached the daemon");
    }
}
