//! Bridges a hijacked client connection to the daemon's, byte for byte, and
//! tees what crosses it to the session recorder.
//!
//! Two one-way pumps rather than `copy_bidirectional` because each direction's end
//! matters on its own: when the client ends stdin (`CloseWrite`), the daemon must
//! see EOF while its remaining output still flows back; the session is over only
//! when both directions are, and which side failed says how it ended.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

/// Read size of each pump: large enough that a bulk stream costs few syscalls.
const CHUNK: usize = 64 * 1024;
/// How long the client may take to close its side once the daemon has closed
/// the stream (the process ended, or detached). A client that never does would
/// otherwise hold both sockets, and the session's end record, indefinitely.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// What sees every chunk crossing one direction of a bridge before it is
/// forwarded (the session recorder's taps). The pump waits for it, so a tee
/// can hold the stream back.
pub trait Tee: Send {
    /// Sees `data`, about to be forwarded.
    fn observe(&mut self, data: &[u8]) -> impl Future<Output = ()> + Send;
}

/// How a bridged session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Both sides closed their directions cleanly.
    Closed,
    /// The client's connection failed (it went away).
    ClientGone,
    /// The daemon's connection failed.
    DaemonGone,
}

/// A pump failure, by the side whose socket failed.
#[derive(Debug)]
enum PumpError {
    Read(io::Error),
    Write(io::Error),
}

/// Runs the bridge until both directions have ended (or the daemon's has,
/// and the client's [`LINGER`] is over); returns how it ended. `client` is the client's
/// socket with the bytes already read from it; `taps` (client→daemon,
/// daemon→client) see every byte before it is forwarded.
pub async fn bridge<T: Tee>(
    client: (UnixStream, Bytes),
    daemon: Upgraded,
    taps: Option<(T, T)>,
) -> io::Result<Ending> {
    let (client, client_pending) = client;
    let (daemon, daemon_pending) = into_stream(daemon)?;
    let (mut client_read, client_write) = client.into_split();
    let (daemon_read, daemon_write) = daemon.into_split();
    let (up_tap, down_tap) = taps.unzip();
    let output_done = AtomicBool::new(false);
    let up = async {
        let result = pump(client_pending, &mut client_read, daemon_write, up_tap).await;
        // A read of 0 means the client ended stdin — or vanished. Only a peer
        // that closed entirely leaves the socket hung up; a half-close does not.
        let vanished =
            result.is_ok() && !output_done.load(Ordering::Relaxed) && hung_up(client_read.as_ref());
        (result, vanished)
    };
    let down = async {
        let result = pump(daemon_pending, daemon_read, client_write, down_tap).await;
        output_done.store(true, Ordering::Relaxed);
        result
    };
    let (mut up, mut down) = (std::pin::pin!(up), std::pin::pin!(down));
    // The session is over once the daemon has closed its side: output is
    // flushed and the client's write half shut by then, and only a client that
    // still holds stdin open is waited for, briefly.
    let ((up, client_vanished), down) = tokio::select! {
        up = &mut up => (up, down.await),
        down = &mut down => match tokio::time::timeout(LINGER, up).await {
            Ok(up) => (up, down),
            Err(_) => {
                tracing::debug!("client kept its side open after the stream ended; closing it");
                ((Ok(()), false), down)
            }
        },
    };
    for (direction, result) in [("client to daemon", &up), ("daemon to client", &down)] {
        if let Err(PumpError::Read(err) | PumpError::Write(err)) = result {
            tracing::debug!(direction, error = %err, "stream pump failed");
        }
    }
    Ok(match (&up, &down) {
        (_, Err(PumpError::Read(_))) | (Err(PumpError::Write(_)), _) => Ending::DaemonGone,
        (Err(PumpError::Read(_)), _) | (_, Err(PumpError::Write(_))) => Ending::ClientGone,
        _ if client_vanished => Ending::ClientGone,
        _ => Ending::Closed,
    })
}

/// Whether the peer of `stream` has closed both directions (POLLHUP).
fn hung_up(stream: &UnixStream) -> bool {
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0].revents().is_some_and(|events| events.contains(PollFlags::POLLHUP))
}

/// Recovers the Unix stream under an upgrade, with the bytes hyper had already
/// read past the HTTP head (they belong to the stream and go out first).
fn into_stream(upgraded: Upgraded) -> io::Result<(UnixStream, Bytes)> {
    match upgraded.downcast::<TokioIo<UnixStream>>() {
        Ok(parts) => Ok((parts.io.into_inner(), parts.read_buf)),
        Err(_) => Err(io::Error::other("upgraded connection is not a Unix stream")),
    }
}

/// Copies `pending` then everything from `from` into `to`, showing each chunk
/// to `tap` first; on EOF shuts down `to`'s write side so the peer sees the
/// half-close.
async fn pump(
    pending: Bytes,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut tap: Option<impl Tee>,
) -> Result<(), PumpError> {
    if let Some(tap) = tap.as_mut() {
        tap.observe(&pending).await;
    }
    to.write_all(&pending).await.map_err(PumpError::Write)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await.map_err(PumpError::Read)?;
        if n == 0 {
            return to.shutdown().await.map_err(PumpError::Write);
        }
        if let Some(tap) = tap.as_mut() {
            tap.observe(&buf[..n]).await;
        }
        to.write_all(&buf[..n]).await.map_err(PumpError::Write)?;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A tee that keeps what it saw.
    struct Seen(Arc<Mutex<Vec<u8>>>);

    impl Tee for Seen {
        fn observe(&mut self, data: &[u8]) -> impl Future<Output = ()> + Send {
            self.0.lock().expect("seen").extend_from_slice(data);
            async {}
        }
    }

    #[tokio::test]
    async fn a_half_close_is_not_a_hang_up_but_a_close_is() {
        let (ours, mut theirs) = UnixStream::pair().expect("pair");
        theirs.shutdown().await.expect("half-close");
        assert!(!hung_up(&ours));
        drop(theirs);
        assert!(hung_up(&ours));
    }

    #[tokio::test]
    async fn pump_forwards_pending_bytes_first_and_half_closes() {
        let (mut source, from) = tokio::io::duplex(16);
        let (to, mut sink) = tokio::io::duplex(1024);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(pump(Bytes::from_static(b"early:"), from, to, Some(Seen(seen.clone()))));
        source.write_all(b"late").await.expect("write");
        drop(source);
        let mut out = Vec::new();
        sink.read_to_end(&mut out).await.expect("read to EOF");
        assert_eq!(out, b"early:late");
        assert_eq!(*seen.lock().expect("seen"), b"early:late", "the tee sees every byte, pending ones first");
        assert!(matches!(task.await.expect("join"), Ok(())));
    }
}
