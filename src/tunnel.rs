//! Bridges a hijacked client connection to the daemon's, byte for byte.
//!
//! Two one-way pumps rather than `copy_bidirectional` because each direction's end
//! matters on its own: when the client ends stdin (`CloseWrite`), the daemon must
//! see EOF while its remaining output still flows back; the session is over only
//! when both directions are.

use std::io;

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

/// Read size of each pump: large enough that a bulk stream costs few syscalls.
const CHUNK: usize = 64 * 1024;

/// Bytes carried each way over one bridged session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// Client → daemon (stdin).
    pub to_daemon: u64,
    /// Daemon → client (output).
    pub to_client: u64,
}

/// Runs the bridge until both directions have ended.
pub async fn bridge(client: Upgraded, daemon: Upgraded) -> io::Result<Transfer> {
    let (client, client_pending) = into_stream(client)?;
    let (daemon, daemon_pending) = into_stream(daemon)?;
    let (client_read, client_write) = client.into_split();
    let (daemon_read, daemon_write) = daemon.into_split();
    let (up, down) = tokio::join!(
        pump(client_pending, client_read, daemon_write),
        pump(daemon_pending, daemon_read, client_write),
    );
    Ok(Transfer { to_daemon: up?, to_client: down? })
}

/// Recovers the Unix stream under an upgrade, with the bytes hyper had already
/// read past the HTTP head (they belong to the stream and go out first).
fn into_stream(upgraded: Upgraded) -> io::Result<(UnixStream, Bytes)> {
    match upgraded.downcast::<TokioIo<UnixStream>>() {
        Ok(parts) => Ok((parts.io.into_inner(), parts.read_buf)),
        Err(_) => Err(io::Error::other("upgraded connection is not a Unix stream")),
    }
}

/// Copies `pending` then everything from `from` into `to`; on EOF shuts down
/// `to`'s write side so the peer sees the half-close. Returns bytes copied.
async fn pump(
    pending: Bytes,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
) -> io::Result<u64> {
    let mut total = pending.len() as u64;
    to.write_all(&pending).await?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(total);
        }
        to.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pump_forwards_pending_bytes_first_and_half_closes() {
        let (mut source, from) = tokio::io::duplex(16);
        let (to, mut sink) = tokio::io::duplex(1024);
        let task = tokio::spawn(pump(Bytes::from_static(b"early:"), from, to));
        source.write_all(b"late").await.expect("write");
        drop(source);
        let mut out = Vec::new();
        sink.read_to_end(&mut out).await.expect("read to EOF");
        assert_eq!(out, b"early:late");
        assert_eq!(task.await.expect("join").expect("pump"), 10);
    }
}
