//! `execgate serve`: the accept loop, per-connection HTTP/1 serving and shutdown.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::Response;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::audit::record::Bare;
use crate::audit::{Audit, AuditConfig, Record};
use crate::bounds::{self, AcceptBackoff, Admission, Burst, Slot};
use crate::daemon::upstream::Upstream;
use crate::gate::{ExecGate, UserRules};
use crate::http::body::Body;
use crate::http::error::ConnectionError;
use crate::listener::Listener;
use crate::peer::Caller;
use crate::policy::{Policies, ReloadError};
use crate::proxy::{Connection, Proxy};
use crate::session::{Hijacked, Lifecycle};

/// After the last session ends on shutdown, how long open connections keep
/// serving: the CLI reads the exit code (`GET /exec/{id}/json`) on its
/// keep-alive connection right after the stream closes.
const DRAIN_LINGER: Duration = Duration::from_secs(1);

/// How often the policy files are checked for edits (SIGHUP reloads at once).
const POLICY_WATCH: Duration = Duration::from_secs(2);

/// How long cut sessions get to record their end.
const CUT_WAIT: Duration = Duration::from_secs(5);

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The socket clients connect to.
    pub listen: PathBuf,
    /// The daemon's socket.
    pub upstream: PathBuf,
    /// Mode of the listening socket.
    pub socket_mode: u32,
    /// Group of the listening socket.
    pub socket_gid: Option<u32>,
    /// How long live sessions may continue after a stop signal.
    pub shutdown_grace: Duration,
    /// Policy files or directories; empty means the built-in pack.
    pub policies: Vec<PathBuf>,
    /// How exec users are settled: lookup, pinning, unpinned starts.
    pub users: UserRules,
    /// The audit trail.
    pub audit: AuditConfig,
    /// How long a client may take to send a request head, counted from when
    /// the connection opened or its previous answer ended; `None`: no limit.
    pub head_timeout: Option<Duration>,
    /// Client connections held at once; `None`: derived from the fd limit.
    pub max_connections: Option<usize>,
    /// How long pooled daemon connections may stay idle; `None`: no limit.
    pub daemon_idle_timeout: Option<Duration>,
}

/// Serves until SIGTERM or SIGINT, then drains; SIGHUP reloads the policy.
pub async fn run(config: Config) -> Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("failed to install the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("failed to install the SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("failed to install the SIGHUP handler")?;

    // Compiled before the socket exists: a bad policy fails start-up, naming the file.
    let policies = Arc::new(Policies::load(config.policies.clone())?);
    let current = policies.current();
    info!(policy_hash = current.hash(), files = ?current.names(), "policy loaded");

    // The audit trail opens before anything is served: a predecessor's
    // unfinished sessions are closed in it first.
    let (audit, audit_thread) = Audit::open(config.audit.clone()).await?;
    info!(dir = %config.audit.log.dir.display(), record = ?config.audit.record, "audit trail open");
    audit.log().append_later(Record::<Bare>::PolicyReload {
        result: "loaded",
        trigger: Some("start"),
        error: None,
        policy_hash: current.hash().to_owned(),
        files: current.names().to_vec(),
    });

    let upstream = Upstream::new(config.upstream.clone(), config.daemon_idle_timeout);
    upstream.warn_if_exposed();
    upstream.log_version().await;

    let mut door = Door {
        admission: Admission::new(connection_limit(config.max_connections)?),
        refusing: Burst::default(),
        head_timeout: config.head_timeout,
    };
    let listener = Listener::bind(&config.listen, config.socket_mode, config.socket_gid)?;
    info!(listen = %config.listen.display(), mode = format!("{:04o}", config.socket_mode), "execgate listening");

    let connections = TaskTracker::new();
    let sessions = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let stopping = CancellationToken::new();
    let cut = CancellationToken::new();
    let lifecycle = Lifecycle { sessions: sessions.clone(), stopping: stopping.clone(), cut: cut.clone() };
    let watcher = tokio::spawn(watch_policy(policies.clone(), audit.clone()));
    let exec = ExecGate::new(policies.clone(), config.users, audit.clone());
    let proxy = Arc::new(Proxy::new(upstream, exec, audit.clone(), lifecycle));
    let ticker = tokio::spawn({
        let recorder = audit.recorder().clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                recorder.tick();
            }
        }
    });

    let mut backoff = AcceptBackoff::default();
    let mut paused_until: Option<tokio::time::Instant> = None;
    loop {
        // While paused after a failed accept the listener is not polled (it
        // stays readable with the connection still in its backlog, so polling
        // it would spin); signals are still served.
        let resume = tokio::time::sleep_until(paused_until.unwrap_or_else(tokio::time::Instant::now));
        tokio::select! {
            accepted = listener.accept(), if paused_until.is_none() => match accepted {
                Ok(stream) => {
                    if let Some((failures, lasted)) = backoff.succeeded() {
                        info!(failures, lasted_ms = lasted.as_millis() as u64, "accepting connections again");
                    }
                    door.enter(stream, &proxy, &connections, &shutdown);
                }
                // A failed accept is the listener's (EMFILE, ENFILE, ENOMEM), not
                // one client's: it must not end the proxy, nor be retried at once.
                Err(err) => {
                    let (wait, first) = backoff.failed();
                    if first {
                        warn!(
                            error = %err, open = door.admission.open(),
                            "accept failed; retrying with backoff (said once per burst)"
                        );
                    }
                    paused_until = Some(tokio::time::Instant::now() + wait);
                }
            },
            () = resume, if paused_until.is_some() => paused_until = None,
            _ = sighup.recv() => reload(&policies, &audit).await,
            _ = sigterm.recv() => { info!("SIGTERM received; shutting down"); break; }
            _ = sigint.recv() => { info!("SIGINT received; shutting down"); break; }
        }
    }

    listener.remove();
    drop(listener);
    stopping.cancel();
    drain(&connections, &sessions, &shutdown, &cut, config.shutdown_grace).await;
    ticker.abort();
    watcher.abort();
    audit.log().anchor("shutdown").await;
    drop(proxy);
    drop(audit);
    // The writer ends once the last handle is gone (the recorder thread holds
    // one until its queue closes) and anchors the head as it goes. A session
    // task that outlived the grace may still hold one: the head is anchored
    // above already, so waiting is bounded.
    let joined = tokio::task::spawn_blocking(move || audit_thread.join());
    if tokio::time::timeout(CUT_WAIT, joined).await.is_err() {
        warn!("audit writer still busy at exit; its last records were anchored above");
    }
    info!("execgate stopped");
    Ok(())
}

/// Reloads the policy whenever its files change on disk (checked every
/// [`POLICY_WATCH`]); does nothing for the built-in pack.
async fn watch_policy(policies: Arc<Policies>, audit: Audit) {
    let mut seen = policies.fingerprint();
    if seen.is_none() {
        return;
    }
    loop {
        tokio::time::sleep(POLICY_WATCH).await;
        let now = policies.fingerprint();
        if now != seen {
            seen = now;
            reload(&policies, &audit).await;
        }
    }
}

/// Recompiles the policy set off the runtime thread; a set that fails to
/// compile leaves the last good one in force. Either way the audit log says so.
async fn reload(policies: &Arc<Policies>, audit: &Audit) {
    let reloading = policies.clone();
    let outcome = match tokio::task::spawn_blocking(move || reloading.reload()).await {
        Ok(outcome) => outcome,
        Err(err) => Err(ReloadError::Failed(err.into())),
    };
    let in_force = policies.current();
    let (result, error) = match &outcome {
        Ok(set) => {
            info!(policy_hash = set.hash(), files = ?set.names(), "policy reloaded");
            ("loaded", None)
        }
        Err(err) => {
            let result = match err {
                ReloadError::Failed(_) => "failed",
                ReloadError::Rejected(_) => "rejected",
            };
            warn!(error = %err, result, "policy reload failed; keeping the previous policy");
            (result, Some(err.to_string()))
        }
    };
    audit.log().append_later(Record::<Bare>::PolicyReload {
        result,
        trigger: None,
        error,
        policy_hash: in_force.hash().to_owned(),
        files: in_force.names().to_vec(),
    });
}

/// Where accepted connections are let in under the connection limit, or
/// refused past it.
struct Door {
    admission: Admission,
    /// Refusals since the limit was last reached, logged once per burst.
    refusing: Burst,
    head_timeout: Option<Duration>,
}

impl Door {
    fn enter(
        &mut self,
        stream: UnixStream,
        proxy: &Arc<Proxy>,
        connections: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        match self.admission.admit() {
            Ok(slot) => {
                if let Some((refused, lasted)) = self.refusing.end() {
                    info!(
                        refused,
                        lasted_ms = lasted.as_millis() as u64,
                        open = self.admission.open(),
                        "below the connection limit again"
                    );
                }
                let served =
                    serve_connection(proxy.clone(), stream, slot, self.head_timeout, shutdown.clone());
                connections.spawn(served);
            }
            Err(refusal) => {
                if self.refusing.hit() {
                    warn!(
                        limit = self.admission.limit(),
                        "connection limit reached; new clients get 503 until connections close \
                         (--max-connections; said once per burst)"
                    );
                }
                connections.spawn(refusal.answer(stream));
            }
        }
    }
}

/// The connection limit: the one given, or what the fd limit (its soft limit
/// raised to the hard one first) leaves room for.
fn connection_limit(given: Option<usize>) -> Result<usize> {
    let (fds, hard) = bounds::raise_fd_limit()?;
    let limit = given.unwrap_or_else(|| bounds::default_max_connections(fds));
    let needed = bounds::fds_needed(limit);
    if needed > fds {
        warn!(
            max_connections = limit,
            fd_limit = fds,
            fds_needed = needed,
            "--max-connections is more than the fd limit has room for: busy, the proxy may fail \
             accepts and daemon connections with EMFILE instead of refusing clients; raise the fd \
             limit (LimitNOFILE=) or lower --max-connections"
        );
    }
    info!(max_connections = limit, fd_limit = fds, fd_hard_limit = hard, "connection limit");
    Ok(limit)
}

/// Lets live sessions finish within `grace`, then closes the connections.
async fn drain(
    connections: &TaskTracker,
    sessions: &TaskTracker,
    shutdown: &CancellationToken,
    cut: &CancellationToken,
    grace: Duration,
) {
    let deadline = tokio::time::Instant::now() + grace;
    sessions.close();
    connections.close();
    if !sessions.is_empty() {
        info!(sessions = sessions.len(), "waiting for live sessions to finish");
    }
    let finished = tokio::time::timeout_at(deadline, sessions.wait()).await.is_ok();
    if finished {
        tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + DRAIN_LINGER)).await;
    } else {
        // Cut sessions still write their exec.end (reason proxy_shutdown).
        cut.cancel();
        let _ = tokio::time::timeout(CUT_WAIT, sessions.wait()).await;
    }
    shutdown.cancel();
    let closed = tokio::time::timeout_at(deadline, connections.wait()).await.is_ok();
    if !(finished && closed) {
        warn!(
            sessions = sessions.len(),
            connections = connections.len(),
            grace_secs = grace.as_secs(),
            "grace period over; cutting what is still open"
        );
    }
}

/// Serves one client connection, holding its `slot` until it ends (or, when a
/// stream takes the socket over, handing the slot on with it).
async fn serve_connection(
    proxy: Arc<Proxy>,
    stream: UnixStream,
    slot: Slot,
    head_timeout: Option<Duration>,
    shutdown: CancellationToken,
) {
    let caller = match Caller::of(&stream) {
        Ok(caller) => caller,
        Err(err) => {
            debug!(error = %err, "client gone before its credentials were read");
            return;
        }
    };
    debug!(caller.uid = caller.uid, caller.gid = caller.gid, caller.pid = caller.pid, "connection accepted");
    let conn = Arc::new(Connection::new(caller));
    let service = service_fn({
        let conn = conn.clone();
        move |request| -> Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>> {
            let (proxy, conn) = (proxy.clone(), conn.clone());
            Box::pin(async move { Ok(proxy.handle(conn, request).await) })
        }
    });
    // The head timer runs whenever hyper waits for a request head: from the
    // connect, and again from the end of each answer. So it also closes
    // keep-alive connections left idle that long, as Go's server does with
    // only ReadHeaderTimeout set; their clients (Go's, hyper's, urllib3's)
    // see the close and dial anew. It never runs while an answer streams
    // (`docker events`, `logs -f`, `wait`), while a request body is read
    // (`build`), or once a stream took the connection over. It adds no
    // syscall per request (strace of 5,000 `/_ping`s: two reads and two
    // writes each, with or without it): arming a 30 s deadline never moves
    // the runtime's next wake-up, which the 1 s recorder tick keeps close.
    // Half-close is allowed: a client may end its side after a request whose
    // answer takes over the connection (stdin EOF), as it may with the daemon.
    let mut connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .half_close(true)
        .serve_connection(TokioIo::new(stream), service);
    // Served without hyper's own upgrade handling: when an answer takes the
    // connection over (a 101, or the daemon's close-delimited `200` stream),
    // hyper stops and returns the socket, which goes to the session that
    // claimed it. Otherwise the connection simply ended.
    let result = tokio::select! {
        result = poll_fn(|cx| connection.poll_without_shutdown(cx)) => result,
        _ = shutdown.cancelled() => {
            // Finish the exchange in flight, then close; idle connections close now.
            Pin::new(&mut connection).graceful_shutdown();
            poll_fn(|cx| connection.poll_without_shutdown(cx)).await
        }
    };
    match result {
        Err(err) if err.is_timeout() => {
            let parts = connection.into_parts();
            // Only a client that began a request is told why; one that sent
            // nothing since its last answer is an idle keep-alive connection,
            // and is simply closed (clients expect that of idle connections).
            if parts.read_buf.iter().any(|b| !b.is_ascii_whitespace()) {
                let answer = ConnectionError::HeadTimeout(head_timeout.unwrap_or_default()).into_bytes();
                // Never waits: a client that does not read loses the answer.
                let _ = parts.io.inner().try_write(&answer);
                debug!(caller.pid = caller.pid, received = parts.read_buf.len(), "request head timed out");
            } else {
                debug!(caller.pid = caller.pid, "idle connection closed (--head-timeout)");
            }
            return;
        }
        Err(err) => {
            debug!(caller.pid = caller.pid, error = %err, "client connection ended with an error");
            return;
        }
        Ok(()) => {}
    }
    let parts = connection.into_parts();
    let hijacked = Hijacked { stream: parts.io.into_inner(), pending: parts.read_buf, slot };
    if let Err(Hijacked { mut stream, .. }) = conn.hand_over(hijacked) {
        let _ = stream.shutdown().await;
    }
}
