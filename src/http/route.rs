//! Classifies a request exactly as the daemon's router would, so execgate and
//! dockerd agree on which requests create, start or attach to a process.
//!
//! The daemon (gorilla/mux) matches the **percent-decoded** path against anchored
//! patterns, each registered twice: with a `/v{version:[0-9.]+}` prefix and
//! without. Names are `.*`, so they may span slashes. Podman's service serves
//! the same routes plus its own under `/libpod/` (handled by the same exec
//! handlers), with versions of the form `[0-9][0-9A-Za-z.-]*` (`/v4.0.0/`).
//! Where execgate's reading could differ from the daemon's it errs towards
//! "this is an exec", never away from it: a request wrongly judged is refused at
//! worst, one wrongly passed is a bypass.

use hyper::Method;

/// What a request means to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /containers/{name}/exec`: creates an exec in a container.
    ExecCreate {
        /// The container reference as the daemon will read it (name, id or id prefix).
        container: String,
        /// What came before the route proper.
        prefix: Prefix,
    },
    /// `POST /exec/{id}/start`: starts an exec; hijacks the connection unless detached.
    ExecStart {
        /// The exec id.
        exec_id: String,
        /// What came before the route proper.
        prefix: Prefix,
    },
    /// `POST /exec/{id}/resize`: a terminal resize of a live exec (recorded).
    ExecResize {
        /// The exec id.
        exec_id: String,
    },
    /// `POST /containers/{name}/attach`: hijacks the connection to a container's stdio.
    Attach {
        /// The container reference.
        container: String,
        /// What came before the route proper.
        prefix: Prefix,
    },
    /// `GET /containers/{name}/attach/ws`: an attach over a WebSocket (refused).
    AttachWebsocket {
        /// The container reference.
        container: String,
    },
    /// `POST /containers/{name}/resize`: a resize of a container's terminal (recorded).
    ContainerResize {
        /// The container reference.
        container: String,
    },
    /// Anything else: relayed untouched.
    Other,
}

/// What a path held before the route proper: an API version, and Podman's
/// `/libpod` (whose version Podman checks against its own API, so a forwarded
/// path must keep it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefix {
    /// The API version, decoded, when the path had one.
    pub version: Option<String>,
    /// Whether the route was under `/libpod`.
    pub libpod: bool,
}

impl Prefix {
    /// The prefix as a path (`/v1.41`, `/v4.0.0/libpod`, or empty).
    pub fn path(&self) -> String {
        let version = self.version.as_deref().map(|v| format!("/v{v}")).unwrap_or_default();
        if self.libpod { format!("{version}/libpod") } else { version }
    }
}

/// A request target the daemon would refuse to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request path {path:?} has an invalid percent-encoding")]
pub struct BadPath {
    /// The path as received.
    pub path: String,
}

/// Classifies `method` + raw (still percent-encoded) `path`.
pub fn classify(method: &Method, path: &str) -> Result<Route, BadPath> {
    let decoded = percent_decode(path).ok_or_else(|| BadPath { path: path.to_owned() })?;
    let (version, rest) = split_version(&decoded);
    // Podman's libpod routes for exec and attach share the Docker-compatible
    // handlers; execgate's own lookups use the compatible routes.
    let libpod_rest = rest.strip_prefix("/libpod").filter(|r| r.starts_with('/'));
    let prefix = Prefix { version: version.map(str::to_owned), libpod: libpod_rest.is_some() };
    let rest = libpod_rest.unwrap_or(rest);
    if method == Method::GET
        && let Some(name) = between(rest, "/containers/", "/attach/ws")
    {
        return Ok(Route::AttachWebsocket { container: name.to_owned() });
    }
    if method != Method::POST {
        return Ok(Route::Other);
    }
    if let Some(name) = between(rest, "/containers/", "/exec") {
        return Ok(Route::ExecCreate { container: name.to_owned(), prefix });
    }
    if let Some(id) = between(rest, "/exec/", "/start") {
        return Ok(Route::ExecStart { exec_id: id.to_owned(), prefix });
    }
    if let Some(id) = between(rest, "/exec/", "/resize") {
        return Ok(Route::ExecResize { exec_id: id.to_owned() });
    }
    if let Some(name) = between(rest, "/containers/", "/attach") {
        return Ok(Route::Attach { container: name.to_owned(), prefix });
    }
    if let Some(name) = between(rest, "/containers/", "/resize") {
        return Ok(Route::ContainerResize { container: name.to_owned() });
    }
    Ok(Route::Other)
}

/// Splits off a version prefix segment, as the versioned routes do:
/// `(Some(version), rest)`. Docker's is `v[0-9.]+` and accepts any spelling
/// (`v1.041`, `v01.41`, `v1.41.0`), Podman's `v[0-9][0-9A-Za-z.-]*`
/// (`v4.0.0-dev`); either counts, so no range check: a version the daemon
/// later refuses is its answer to give.
pub(super) fn split_version(path: &str) -> (Option<&str>, &str) {
    let Some(after_v) = path.strip_prefix("/v") else {
        return (None, path);
    };
    let docker = after_v.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    let podman = if after_v.starts_with(|c: char| c.is_ascii_digit()) {
        after_v.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-').count()
    } else {
        0
    };
    let digits = docker.max(podman);
    if digits > 0 && after_v[digits..].starts_with('/') {
        (Some(&after_v[..digits]), &after_v[digits..])
    } else {
        (None, path)
    }
}

/// `^{prefix}(.*){suffix}$`: the middle, which may be empty and may hold slashes.
fn between<'a>(path: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)?.strip_suffix(suffix)
}

/// Go's `url.PathUnescape`: every `%` must be followed by two hex digits.
/// Decoded bytes that are not UTF-8 become U+FFFD, as Go's regexp reads them.
pub(super) fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The route with its version dropped, so cases compare on what they name.
    fn post(path: &str) -> Route {
        match classify(&Method::POST, path).expect("valid path") {
            Route::ExecCreate { container, .. } => Route::ExecCreate { container, prefix: Prefix::default() },
            Route::ExecStart { exec_id, .. } => Route::ExecStart { exec_id, prefix: Prefix::default() },
            Route::Attach { container, .. } => Route::Attach { container, prefix: Prefix::default() },
            other => other,
        }
    }

    fn create(name: &str) -> Route {
        Route::ExecCreate { container: name.to_owned(), prefix: Prefix::default() }
    }

    fn attach(name: &str) -> Route {
        Route::Attach { container: name.to_owned(), prefix: Prefix::default() }
    }

    fn start(id: &str) -> Route {
        Route::ExecStart { exec_id: id.to_owned(), prefix: Prefix::default() }
    }

    #[test]
    fn exec_create_with_and_without_versions() {
        for path in [
            "/containers/web/exec",
            "/v1.41/containers/web/exec",
            "/v1.041/containers/web/exec",
            "/v01.41/containers/web/exec",
            "/v1.41.0/containers/web/exec",
            "/v1.12/containers/web/exec",
            "/v1.99/containers/web/exec",
            "/v9/containers/web/exec",
        ] {
            assert_eq!(post(path), create("web"), "{path}");
        }
    }

    #[test]
    fn percent_encoded_paths_route_as_decoded() {
        // The daemon routes both of these to exec create (checked on dockerd 20.10).
        assert_eq!(post("/containers/x%2Fexec"), create("x"));
        assert_eq!(post("/containers/a/x%2Fexec"), create("a/x"));
        assert_eq!(post("/containers/x/%65xec"), create("x"));
        assert_eq!(post("/v1.41/containers/x/%65%78%65%63"), create("x"));
        assert_eq!(post("/%761.41/containers/x/exec"), create("x"));
        assert_eq!(post("/exec/abc/%73tart"), start("abc"));
        assert_eq!(post("/exec/a%2Fb/start"), start("a/b"));
    }

    #[test]
    fn names_span_slashes_like_the_daemons_dot_star() {
        assert_eq!(post("/containers/a/b/exec"), create("a/b"));
        assert_eq!(post("/containers//exec"), create(""));
        assert_eq!(post("/exec/x/start/start"), start("x/start"));
    }

    #[test]
    fn attach_is_recognised() {
        assert_eq!(post("/v1.41/containers/abc/attach"), attach("abc"));
        assert_eq!(post("/containers/abc/attach/ws"), Route::Other);
        assert_eq!(
            classify(&Method::GET, "/v1.41/containers/abc/attach/ws"),
            Ok(Route::AttachWebsocket { container: "abc".into() })
        );
        assert_eq!(classify(&Method::GET, "/containers/abc/attach"), Ok(Route::Other));
        assert_eq!(
            post("/v1.41/containers/a%2Fb/resize"),
            Route::ContainerResize { container: "a/b".into() }
        );
    }

    #[test]
    fn other_methods_and_shapes_pass() {
        assert_eq!(classify(&Method::GET, "/containers/web/exec"), Ok(Route::Other));
        assert_eq!(classify(&Method::PUT, "/exec/a/start"), Ok(Route::Other));
        assert_eq!(post("/containers/web/exec/"), Route::Other);
        assert_eq!(post("/containers/create"), Route::Other);
        assert_eq!(post("/v/containers/web/exec"), Route::Other);
        assert_eq!(post("/vx1/containers/web/exec"), Route::Other);
        assert_eq!(post("/exec/a/resize"), Route::ExecResize { exec_id: "a".into() });
    }

    #[test]
    fn podmans_libpod_routes_and_versions_are_exec_routes_too() {
        assert_eq!(post("/v4.0.0/libpod/containers/web/exec"), create("web"));
        assert_eq!(post("/libpod/containers/web/exec"), create("web"));
        assert_eq!(post("/v4.3.1-dev/libpod/exec/abc/start"), start("abc"));
        assert_eq!(post("/v4.0.0/containers/web/exec"), create("web"));
        assert_eq!(post("/v4.0.0/libpod/exec/abc/resize"), Route::ExecResize { exec_id: "abc".into() });
        assert_eq!(post("/v4.0.0/libpod/containers/abc/attach"), attach("abc"));
        assert_eq!(post("/%6cibpod/containers/web/exec"), create("web"));
        assert_eq!(post("/libpodx/containers/web/exec"), Route::Other);
        assert_eq!(
            classify(&Method::POST, "/v4.0.0/libpod/exec/e/start"),
            Ok(Route::ExecStart {
                exec_id: "e".into(),
                prefix: Prefix { version: Some("4.0.0".into()), libpod: true }
            })
        );
    }

    #[test]
    fn prefixes_become_paths_again() {
        assert_eq!(Prefix::default().path(), "");
        assert_eq!(Prefix { version: Some("1.41".into()), libpod: false }.path(), "/v1.41");
        assert_eq!(Prefix { version: Some("4.0.0".into()), libpod: true }.path(), "/v4.0.0/libpod");
        assert_eq!(Prefix { version: None, libpod: true }.path(), "/libpod");
    }

    #[test]
    fn invalid_escapes_are_refused() {
        for path in ["/containers/x/%6", "/containers/x/%zzexec", "/a%"] {
            assert!(classify(&Method::POST, path).is_err(), "{path}");
            assert!(classify(&Method::GET, path).is_err(), "{path}");
        }
    }

    #[test]
    fn version_prefix_needs_a_digit_and_a_slash() {
        assert_eq!(split_version("/v1.41/x"), (Some("1.41"), "/x"));
        assert_eq!(split_version("/v.../x"), (Some("..."), "/x"));
        assert_eq!(split_version("/v/x"), (None, "/v/x"));
        assert_eq!(split_version("/v1.41"), (None, "/v1.41"));
        assert_eq!(split_version("/version"), (None, "/version"));
        assert_eq!(split_version("/v4.0.0-dev/x"), (Some("4.0.0-dev"), "/x"));
        assert_eq!(split_version("/v.4/x"), (Some(".4"), "/x"));
        assert_eq!(split_version("/vabc/x"), (None, "/vabc/x"));
        assert_eq!(
            classify(&Method::POST, "/%761.40/exec/e/start"),
            Ok(Route::ExecStart {
                exec_id: "e".into(),
                prefix: Prefix { version: Some("1.40".into()), libpod: false }
            })
        );
    }
}
