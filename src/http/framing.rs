//! Request framing: the transfer codings every request may use, and the
//! bounded read and exact re-framing of the bodies execgate judges.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{HeaderMap, header};

use crate::http::body::Body;
use crate::http::error::ProxyError;

/// Largest exec body execgate reads into memory; real ones are well under 1 KiB.
pub const MAX_EXEC_BODY: usize = 1024 * 1024;

/// Refuses framing two parsers could read differently: any transfer coding but
/// a single `chunked`. (`Content-Length` beside `Transfer-Encoding` never gets
/// here: hyper drops the length, reads chunked and closes the connection after,
/// per RFC 9112 §6.3 — as Go's server does — and execgate re-frames exec bodies
/// with an exact length anyway.) The proxy applies it to every request, before
/// any body is read.
pub fn check_framing(headers: &HeaderMap) -> Result<(), ProxyError> {
    let codings: Vec<_> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
    if codings.is_empty() {
        return Ok(());
    }
    let chunked_only =
        codings.len() == 1 && codings[0].to_str().is_ok_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
    if !chunked_only {
        return Err(ProxyError::BadRequest(
            "unsupported Transfer-Encoding; only `chunked` is accepted".to_owned(),
        ));
    }
    Ok(())
}

/// Reads a whole exec body, refusing one larger than [`MAX_EXEC_BODY`] with 413
/// whether it declares its length or streams in chunks.
pub async fn read(headers: &HeaderMap, body: Body, what: &str) -> Result<Bytes, ProxyError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_EXEC_BODY as u64) {
        return Err(ProxyError::TooLarge { limit: MAX_EXEC_BODY });
    }
    match Limited::new(body, MAX_EXEC_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(ProxyError::TooLarge { limit: MAX_EXEC_BODY })
        }
        Err(err) => Err(ProxyError::BadRequest(format!("failed to read the {what} body: {err}"))),
    }
}

/// Replaces a request's body framing with an exact `Content-Length`.
pub fn set_length(headers: &mut HeaderMap, len: usize) {
    headers.remove(header::TRANSFER_ENCODING);
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                header::HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn framing_rules() {
        assert!(check_framing(&headers(&[("content-length", "2")])).is_ok());
        assert!(check_framing(&headers(&[("transfer-encoding", "chunked")])).is_ok());
        assert!(check_framing(&headers(&[("transfer-encoding", " Chunked ")])).is_ok());
        assert!(check_framing(&headers(&[("transfer-encoding", "gzip, chunked")])).is_err());
        assert!(
            check_framing(&headers(&[("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")]))
                .is_err()
        );
        assert!(check_framing(&headers(&[("transfer-encoding", "identity")])).is_err());
    }
}
