//! Errors of the proxy, and the one place they become Docker-style HTTP answers.
//!
//! The docker CLI prints the `message` field of a JSON error body after
//! `Error response from daemon:`, so every refusal carries a sentence that says
//! what execgate was doing and what to do about it.

use std::path::PathBuf;
use std::time::Duration;

use hyper::{Response, StatusCode, header};

use crate::http::body::{self, Body};

/// Why execgate answered a request itself instead of relaying the daemon's answer.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The daemon's socket could not be connected to or spoken with.
    #[error("cannot reach the Docker daemon at {}: {source}", socket.display())]
    Upstream {
        /// The daemon socket execgate tried.
        socket: PathBuf,
        /// What went wrong.
        source: UpstreamCause,
    },
    /// The request is malformed in a way the daemon would also refuse, or that
    /// execgate cannot classify safely.
    #[error("{0}")]
    BadRequest(String),
    /// A body execgate must read is larger than it will buffer.
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// Policy (or a failure on the way to it) refused an exec.
    #[error("exec denied: {}", .0.join("; "))]
    Denied(Vec<String>),
    /// The request policy refused a request on another route.
    #[error("request denied: {}", .0.join("; "))]
    RequestDenied(Vec<String>),
    /// Policy (or a failure on the way to it) refused an attach.
    #[error("attach denied: {}", .0.join("; "))]
    AttachDenied(Vec<String>),
    /// The request conflicts with the state of what it names (an exec that
    /// already ran).
    #[error("{0}")]
    Conflict(String),
    /// An allowed exec session cannot be recorded, so it does not start.
    #[error("exec refused: {0}")]
    RecordingUnavailable(String),
    /// The daemon answered a lookup execgate made with something it cannot
    /// use (a broken body, an unreadable archive): the daemon is failing.
    #[error("{0}")]
    DaemonAnswer(String),
    /// execgate itself failed at something that should not fail.
    #[error("internal error: {0}")]
    Internal(String),
    /// The audit log cannot take the record an allowed exec needs.
    #[error("audit log unavailable: {0}")]
    AuditUnavailable(String),
    /// The daemon refused a lookup execgate made on the way to a decision.
    #[error("{context}: {message}")]
    Daemon {
        /// The daemon's status, passed on.
        status: StatusCode,
        /// What execgate was doing.
        context: String,
        /// The daemon's message.
        message: String,
    },
}

/// The underlying failure when talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamCause {
    /// Connecting to the socket failed.
    #[error("{0}")]
    Connect(#[from] std::io::Error),
    /// The HTTP exchange failed.
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

impl ProxyError {
    fn status(&self) -> StatusCode {
        match self {
            ProxyError::Upstream { .. } | ProxyError::DaemonAnswer(_) => StatusCode::BAD_GATEWAY,
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Denied(_) | ProxyError::AttachDenied(_) | ProxyError::RequestDenied(_) => {
                StatusCode::FORBIDDEN
            }
            ProxyError::Conflict(_) => StatusCode::CONFLICT,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::RecordingUnavailable(_) | ProxyError::AuditUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Daemon { status, .. } => *status,
        }
    }

    /// The Docker-style answer: `{"message":"execgate: …"}` with a fitting status.
    pub fn into_response(self) -> Response<Body> {
        docker_error(self.status(), &self.to_string())
    }
}

/// Why execgate answers a client connection itself, outside of any request it
/// serves, and then closes it. These are written straight to the socket: no
/// HTTP exchange is running when they are needed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The connection limit is reached.
    #[error("too many connections ({open} open, limit {limit}); try again later")]
    TooMany {
        /// Connections holding a place.
        open: usize,
        /// The limit (`--max-connections`).
        limit: usize,
    },
    /// A request head was begun but not finished in time (`--head-timeout`).
    #[error("request head not received within {}; closing the connection", humantime::format_duration(*.0))]
    HeadTimeout(Duration),
}

impl ConnectionError {
    fn status(&self) -> StatusCode {
        match self {
            ConnectionError::TooMany { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ConnectionError::HeadTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The whole answer as bytes: an HTTP/1.1 head with `Connection: close`
    /// and the Docker-style JSON body.
    pub fn into_bytes(self) -> Vec<u8> {
        let status = self.status();
        let json = message_body(&self.to_string());
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            json.len()
        )
        .into_bytes()
    }
}

/// Docker's error body: `{"message": "…"}`.
#[derive(serde::Serialize)]
struct ErrorBody {
    message: String,
}

/// The error body for `message`, said to come from execgate.
fn message_body(message: &str) -> String {
    // Cannot fail: a struct of one string always serializes.
    serde_json::to_string(&ErrorBody { message: format!("execgate: {message}") }).unwrap_or_default()
}

/// Builds a JSON error response the docker CLI prints verbatim.
pub fn docker_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(body::full(message_body(message)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn connection_errors_are_whole_http_answers() {
        let bytes = ConnectionError::HeadTimeout(Duration::from_secs(30)).into_bytes();
        let text = String::from_utf8(bytes).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        assert!(head.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{head}");
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
        assert!(head.contains("Connection: close"), "{head}");
        let value: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(
            value["message"],
            "execgate: request head not received within 30s; closing the connection"
        );
    }

    #[tokio::test]
    async fn errors_become_docker_json_with_prefix() {
        let err = ProxyError::Upstream {
            socket: PathBuf::from("/nowhere.sock"),
            source: UpstreamCause::Connect(std::io::Error::from(std::io::ErrorKind::NotFound)),
        };
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let bytes = response.into_body().collect().await.map(|b| b.to_bytes());
        let value: serde_json::Value = serde_json::from_slice(&bytes.expect("body")).expect("json body");
        let message = value["message"].as_str().expect("message field");
        assert!(
            message.starts_with("execgate: cannot reach the Docker daemon at /nowhere.sock: "),
            "{message}"
        );
    }

    #[test]
    fn each_cause_has_its_status() {
        let cases = [
            (ProxyError::BadRequest("x".into()), StatusCode::BAD_REQUEST),
            (ProxyError::Denied(vec!["x".into()]), StatusCode::FORBIDDEN),
            (ProxyError::AttachDenied(vec!["x".into()]), StatusCode::FORBIDDEN),
            (ProxyError::RequestDenied(vec!["x".into()]), StatusCode::FORBIDDEN),
            (ProxyError::Conflict("x".into()), StatusCode::CONFLICT),
            (ProxyError::DaemonAnswer("x".into()), StatusCode::BAD_GATEWAY),
            (ProxyError::RecordingUnavailable("x".into()), StatusCode::SERVICE_UNAVAILABLE),
            (ProxyError::AuditUnavailable("x".into()), StatusCode::SERVICE_UNAVAILABLE),
            (ProxyError::Internal("x".into()), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status, "{err}");
        }
    }
}
