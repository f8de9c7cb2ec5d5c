//! The one body type every branch of the proxy answers with.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};

/// A streamed or buffered HTTP body; errors are whatever the peer's stream reports.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// A body of fixed bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A body with no bytes.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A body with no bytes whose end is the connection's: answering with it,
/// hyper writes an HTTP/1.0 head without a length, stops serving the
/// connection, and hands the socket back (see `proxy::raw_stream_answer`).
pub fn until_close() -> Body {
    UntilClose.boxed()
}

/// An empty body of unknown length.
struct UntilClose;

impl hyper::body::Body for UntilClose {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        std::task::Poll::Ready(None)
    }
}
