//! The door clients come in by: the accept loop, the connection limit, and
//! HTTP/1 serving of each connection until it ends or a stream takes it over.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use hyper::Response;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Signals;
use super::reload::Reloads;
use super::shutdown::Shutdown;
use crate::bounds::{self, AcceptBackoff, Admission, Burst, Slot};
use crate::http::body::Body;
use crate::http::error::ConnectionError;
use crate::listener::Listener;
use crate::peer::Caller;
use crate::proxy::{Connection, Proxy};
use crate::session::Hijacked;

/// Where accepted connections are let in under the connection limit, or
/// refused past it.
pub struct Door {
    admission: Admission,
    /// Refusals since the limit was last reached, logged once per burst.
    refusing: Burst,
    head_timeout: Option<Duration>,
}

impl Door {
    /// A door admitting up to `max_connections` (default: what the fd limit
    /// leaves room for), giving clients `head_timeout` to send a request head.
    pub fn new(max_connections: Option<usize>, head_timeout: Option<Duration>) -> Result<Self> {
        Ok(Door {
            admission: Admission::new(connection_limit(max_connections)?),
            refusing: Burst::default(),
            head_timeout,
        })
    }

    /// Accepts connections until a stop signal, reloading the policy on SIGHUP.
    pub async fn serve(
        &mut self,
        listener: &Listener,
        proxy: &Arc<Proxy>,
        shutdown: &Shutdown,
        signals: &mut Signals,
        reloads: &Reloads,
    ) {
        let mut backoff = AcceptBackoff::default();
        let mut paused_until: Option<Instant> = None;
        loop {
            // While paused after a failed accept the listener is not polled (it
            // stays readable with the connection still in its backlog, so polling
            // it would spin); signals are still served.
            let resume = tokio::time::sleep_until(paused_until.unwrap_or_else(Instant::now));
            tokio::select! {
                accepted = listener.accept(), if paused_until.is_none() => match accepted {
                    Ok(stream) => {
                        if let Some((failures, lasted)) = backoff.succeeded() {
                            info!(failures, lasted_ms = lasted.as_millis() as u64, "accepting connections again");
                        }
                        self.enter(stream, proxy, shutdown);
                    }
                    // A failed accept is the listener's (EMFILE, ENFILE, ENOMEM), not
                    // one client's: it must not end the proxy, nor be retried at once.
                    Err(err) => {
                        let (wait, first) = backoff.failed();
                        if first {
                            warn!(
                                error = %err, open = self.admission.open(),
                                "accept failed; retrying with backoff (said once per burst)"
                            );
                        }
                        paused_until = Some(Instant::now() + wait);
                    }
                },
                () = resume, if paused_until.is_some() => paused_until = None,
                _ = signals.hangup.recv() => reloads.now().await,
                _ = signals.terminate.recv() => { info!("SIGTERM received; shutting down"); return; }
                _ = signals.interrupt.recv() => { info!("SIGINT received; shutting down"); return; }
            }
        }
    }

    fn enter(&mut self, stream: UnixStream, proxy: &Arc<Proxy>, shutdown: &Shutdown) {
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
                    serve_connection(proxy.clone(), stream, slot, self.head_timeout, shutdown.close_signal());
                shutdown.connections().spawn(served);
            }
            Err(refusal) => {
                if self.refusing.hit() {
                    warn!(
                        limit = self.admission.limit(),
                        "connection limit reached; new clients get 503 until connections close \
                         (--max-connections; said once per burst)"
                    );
                }
                shutdown.connections().spawn(refusal.answer(stream));
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
