//! Connections to the Docker daemon.
//!
//! Client requests are relayed over a daemon connection pinned to the client's
//! connection ([`Pinned`]): HTTP/1 carries one exchange at a time, so the pair
//! needs no shared pool and no lock contention, and each keep-alive client
//! reuses one daemon connection. Hijacking requests always get a fresh
//! connection of their own ([`Upstream::open_stream`]). execgate's own questions
//! while judging an exec ride the client's pinned connection ([`Control`]);
//! the version probe and background watchers use a small shared hyperlocal
//! pool ([`Upstream::control_get`]).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyperlocal::UnixConnector;
use tokio::net::UnixStream;
use tracing::{debug, info, warn};

use crate::http::body::Body;
use crate::http::error::{ProxyError, UpstreamCause};

/// The daemon's socket, and how to open connections to it. Clones share the
/// control pool.
#[derive(Clone)]
pub struct Upstream {
    socket: PathBuf,
    control: Client<UnixConnector, Empty<Bytes>>,
    control_base: Uri,
    /// The daemon's version, once it answered `/version`.
    version: Arc<OnceLock<String>>,
}

impl Upstream {
    /// Describes the daemon at `socket`; nothing is connected yet. Pooled
    /// connections idle for `idle_timeout` are closed (`None`: kept).
    pub fn new(socket: PathBuf, idle_timeout: Option<Duration>) -> Self {
        // Without a timer the pool never reaps: expired connections are only
        // dropped when a checkout happens to pop them, and checkouts pop the
        // most recently used one. So after a burst of session ends (each asks
        // the daemon about its exec over this pool), the burst's connections
        // stayed open for as long as any watcher kept polling with the newest.
        // The reaper checks every `idle_timeout`, so an idle connection is
        // closed between one and two of them after its last use.
        let control = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(idle_timeout)
            .build(UnixConnector);
        let control_base = hyperlocal::Uri::new(&socket, "/").into();
        Upstream { socket, control, control_base, version: Arc::default() }
    }

    /// The daemon's version (`28.5.2`…) as it said at start; `None` when it
    /// did not answer then.
    pub fn known_version(&self) -> Option<&str> {
        self.version.get().map(String::as_str)
    }

    /// The daemon's socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn error(&self, source: impl Into<UpstreamCause>) -> ProxyError {
        ProxyError::Upstream { socket: self.socket.clone(), source: source.into() }
    }

    async fn handshake(
        &self,
    ) -> Result<(SendRequest<Body>, http1::Connection<TokioIo<UnixStream>, Body>), ProxyError> {
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| self.error(e))?;
        http1::handshake(TokioIo::new(stream)).await.map_err(|e| self.error(e))
    }

    /// A new connection that may switch protocols (exec start, attach, any `Upgrade`).
    /// It serves this one exchange and then, if the daemon answers 101, the stream.
    async fn upgradable(&self) -> Result<SendRequest<Body>, ProxyError> {
        let (sender, conn) = self.handshake().await?;
        tokio::spawn(async move {
            if let Err(err) = conn.with_upgrades().await {
                debug!(error = %err, "daemon connection for an upgrade ended with an error");
            }
        });
        Ok(sender)
    }

    /// Sends a request that may take over the connection (exec start, attach,
    /// any `Upgrade`) on a fresh connection, always asking the daemon to
    /// upgrade. The daemon hijacks these routes whether or not the client asked
    /// to: with `Upgrade` it answers `101 UPGRADED`, without it `200 OK` and
    /// the raw stream until it closes (dockerode relies on the latter). The
    /// stream is the same bytes either way; the proxy answers the client in
    /// the form it asked for.
    pub async fn open_stream(
        &self,
        mut request: Request<Body>,
        client_upgrade: bool,
    ) -> Result<Response<Incoming>, ProxyError> {
        let headers = request.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if !client_upgrade {
            headers.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
        }
        let mut sender = self.upgradable().await?;
        sender.send_request(request).await.map_err(|e| self.error(e))
    }

    /// A new connection for plain keep-alive exchanges.
    async fn plain(&self) -> Result<SendRequest<Body>, ProxyError> {
        let (sender, conn) = self.handshake().await?;
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                debug!(error = %err, "daemon connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Asks the daemon a question of execgate's own (`GET path`), over the shared pool.
    pub async fn control_get(&self, path_and_query: &str) -> Result<Response<Incoming>, ProxyError> {
        let mut parts = self.control_base.clone().into_parts();
        parts.path_and_query = Some(path_and_query.parse().map_err(|_| {
            ProxyError::Internal(format!("cannot form a daemon request for {path_and_query:?}"))
        })?);
        let uri = Uri::from_parts(parts).map_err(|_| {
            ProxyError::Internal(format!("cannot form a daemon request for {path_and_query:?}"))
        })?;
        let request = Request::get(uri)
            .header(hyper::header::HOST, "docker")
            .body(Empty::new())
            .map_err(|e| ProxyError::Internal(format!("cannot form a daemon request: {e}")))?;
        self.control.request(request).await.map_err(|e| {
            let message = std::error::Error::source(&e)
                .map_or_else(|| e.to_string(), |source| format!("{e}: {source}"));
            self.error(std::io::Error::other(message))
        })
    }

    /// Logs the daemon's version, or a warning when it does not answer yet
    /// (execgate keeps running and recovers when the daemon comes back).
    pub async fn log_version(&self) {
        match self.version().await {
            Ok((version, api, runc)) => {
                info!(socket = %self.socket.display(), version, api_version = api, runc, "Docker daemon reachable");
                let _ = self.version.set(version);
                if runc.as_deref().is_some_and(runc_resolves_groups_by_name) {
                    warn!(
                        runc,
                        "SECURITY: this runc (before 1.3.0) looks an exec's supplementary gids up by name in the \
                         container's /etc/group when it starts, so a group named like a number can add another \
                         gid (0 included) to a pinned uid:gid. execgate refuses execs whose group file does \
                         that when it judges them, but cannot close the window between its check and runc's: \
                         upgrade runc to 1.3.0 or later"
                    );
                }
            }
            Err(err) => {
                warn!(error = %err, "Docker daemon not reachable yet; requests get 502 until it is")
            }
        }
    }

    /// The daemon's version, API version and runc version (from `Components`:
    /// `runc` on Docker, `OCI Runtime (runc)` on Podman), read tolerantly.
    async fn version(&self) -> Result<(String, String, Option<String>), ProxyError> {
        let response = self.control_get("/version").await?;
        let bytes = response.into_body().collect().await.map_err(|e| self.error(e))?.to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.error(std::io::Error::other(format!("unreadable /version answer: {e}"))))?;
        let field = |name: &str| value[name].as_str().unwrap_or("unknown").to_owned();
        let runc = value["Components"].as_array().into_iter().flatten().find_map(|c| {
            let name = c["Name"].as_str()?;
            let version = c["Version"].as_str()?;
            (name == "runc" || name.contains("(runc)")).then(|| runc_version(version).to_owned())
        });
        Ok((field("Version"), field("ApiVersion"), runc))
    }

    /// Warns when the daemon's socket is reachable by anyone but root: whoever can
    /// open it can go around execgate entirely.
    pub fn warn_if_exposed(&self) {
        let meta = match std::fs::metadata(&self.socket) {
            Ok(meta) => meta,
            Err(err) => {
                warn!(socket = %self.socket.display(), error = %err, "cannot stat the daemon socket");
                return;
            }
        };
        let mode = meta.permissions().mode() & 0o777;
        if meta.uid() != 0 || mode & 0o077 != 0 {
            warn!(
                socket = %self.socket.display(),
                mode = format!("{mode:04o}"),
                owner_uid = meta.uid(),
                group_gid = meta.gid(),
                "SECURITY: the daemon socket is reachable by more than root; anyone who can open it \
                 bypasses execgate. Make it root-only (chmod 0600, or dockerd --group root) and give \
                 users execgate's socket instead"
            );
        }
    }
}

/// The version number in a component version: `1.1.5+ds1`, or Podman's
/// `runc version 1.1.5+ds1\ncommit: …`.
fn runc_version(text: &str) -> &str {
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("runc version ").unwrap_or(first).trim()
}

/// Whether a runc of this version resolves an exec's supplementary gids by
/// group *name* inside the container (fixed by "libct: switch to numeric
/// UID/GID/groups", first released in 1.3.0). Unparseable versions count as old.
fn runc_resolves_groups_by_name(version: &str) -> bool {
    let mut parts = version.trim_start_matches('v').split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(major), Some(minor)) => (major, minor) < (1, 3),
        _ => true,
    }
}

/// Where execgate sends its own questions to the daemon (inspects, archives):
/// the client connection's pinned daemon connection when one is at hand — it
/// is idle while its request is being judged, and keeps the lookup off any
/// shared pool — else the shared control pool.
#[derive(Clone, Copy)]
pub struct Control<'a> {
    upstream: &'a Upstream,
    pinned: Option<&'a Pinned>,
}

impl<'a> Control<'a> {
    /// Lookups over `pinned`.
    pub fn pinned(upstream: &'a Upstream, pinned: &'a Pinned) -> Self {
        Control { upstream, pinned: Some(pinned) }
    }

    /// Lookups over the shared pool.
    pub fn pooled(upstream: &'a Upstream) -> Self {
        Control { upstream, pinned: None }
    }

    /// `GET path_and_query`; the caller must read the body to its end.
    pub async fn get(&self, path_and_query: &str) -> Result<Response<Incoming>, ProxyError> {
        let Some(pinned) = self.pinned else {
            return self.upstream.control_get(path_and_query).await;
        };
        let request = Request::get(path_and_query)
            .header(hyper::header::HOST, "docker")
            .body(crate::http::body::empty())
            .map_err(|e| {
                ProxyError::Internal(format!("cannot form a daemon request for {path_and_query:?}: {e}"))
            })?;
        pinned.send(self.upstream, request).await
    }
}

/// The daemon connection pinned to one client connection.
#[derive(Default)]
pub struct Pinned {
    sender: Mutex<Option<SendRequest<Body>>>,
}

impl Pinned {
    /// Sends a plain (non-upgrading) request, reusing the pinned connection when it
    /// is still open. A request the daemon closed the connection under before it
    /// was written is retried once on a fresh connection: it never reached the daemon.
    pub async fn send(
        &self,
        upstream: &Upstream,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let mut sender = match self.take() {
            Some(mut sender) => match sender.ready().await {
                Ok(()) => sender,
                Err(_) => upstream.plain().await?,
            },
            None => upstream.plain().await?,
        };
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut err) => match err.take_message() {
                Some(request) => {
                    debug!(error = %err.error(), "pinned daemon connection closed; retrying on a new one");
                    sender = upstream.plain().await?;
                    sender.send_request(request).await.map_err(|e| upstream.error(e))?
                }
                None => return Err(upstream.error(err.into_error())),
            },
        };
        self.put(sender);
        Ok(response)
    }

    fn take(&self) -> Option<SendRequest<Body>> {
        self.sender.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }

    fn put(&self, sender: SendRequest<Body>) {
        *self.sender.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(sender);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_versions_from_docker_and_podman() {
        assert_eq!(runc_version("1.1.5+ds1"), "1.1.5+ds1");
        assert_eq!(
            runc_version("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev"),
            "1.1.5+ds1"
        );
        for old in ["1.1.5+ds1", "1.2.6", "v1.0.0-rc92", "0.1", "garbage"] {
            assert!(runc_resolves_groups_by_name(old), "{old}");
        }
        for new in ["1.3.0", "1.3.6", "v1.4.0-rc.1", "2.0.0"] {
            assert!(!runc_resolves_groups_by_name(new), "{new}");
        }
    }
}
