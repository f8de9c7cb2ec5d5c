//! Resource bounds on the client side: how many connections execgate holds at
//! once (derived from its fd limit), the answer a client gets past that, and
//! the pause after a failed accept.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::http::error::ConnectionError;

/// The most fds one client connection can hold at once (measured with
/// `benches/fds.rs`): its own socket, the daemon connection pinned to it,
/// and, once it becomes an exec session, the daemon's stream and the
/// recording file. An idle connection holds two; most hold fewer than four.
pub const FDS_PER_CONNECTION: u64 = 4;

/// Fds kept out of the connection budget: what the process holds with no
/// client at all (stdio, the runtime's epoll and eventfd, the listener, the
/// audit log, anchor, lock and syslog sockets; about 15), pooled daemon
/// connections of background watchers, policy reloads reading files, and
/// [`REFUSALS`] connections being refused. Accepting a connection past the
/// limit needs an fd too, so this is what keeps the refusal itself from
/// failing with EMFILE.
pub const RESERVED_FDS: u64 = 96;

/// Connections being refused at once. Each holds one fd for at most
/// [`REFUSAL_WAIT`]; past this many, further ones are answered without
/// waiting for their request.
pub const REFUSALS: usize = 32;

/// How long a refused client may take to send its request head before the
/// refusal is written anyway.
const REFUSAL_WAIT: Duration = Duration::from_secs(1);

/// Bytes of a refused client's request read (and discarded) at most.
const REFUSAL_READ: usize = 16 * 1024;

/// First and longest pause after a failed accept (EMFILE and the like):
/// the listener stays readable while the backlog holds a connection, so
/// retrying at once would spin.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// The fd limit: the soft limit raised to the hard one first. Go programs
/// (dockerd among them) do the same at start; systemd's default soft limit
/// of 1024 exists for programs that use `select()`, which execgate does not.
pub fn raise_fd_limit() -> Result<(u64, u64)> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).context("failed to read the fd limit (RLIMIT_NOFILE)")?;
    if soft >= hard {
        return Ok((soft, hard));
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Ok((hard, hard)),
        Err(err) => {
            tracing::warn!(soft, hard, error = %err, "could not raise the soft fd limit to the hard one");
            Ok((soft, hard))
        }
    }
}

/// The default connection limit under an fd limit of `fds`: what is left after
/// [`RESERVED_FDS`], at [`FDS_PER_CONNECTION`] each, and at least one.
pub fn default_max_connections(fds: u64) -> usize {
    let connections = fds.saturating_sub(RESERVED_FDS) / FDS_PER_CONNECTION;
    usize::try_from(connections).unwrap_or(usize::MAX).clamp(1, Semaphore::MAX_PERMITS)
}

/// The fds `connections` client connections may need at most, reserve included.
pub fn fds_needed(connections: usize) -> u64 {
    (connections as u64).saturating_mul(FDS_PER_CONNECTION).saturating_add(RESERVED_FDS)
}

/// Places for client connections, and for refusals past them.
pub struct Admission {
    slots: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    limit: usize,
}

/// One client connection's place under the limit; dropping it frees the place.
/// It travels with the client's socket into a hijacked stream.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

/// A client past the limit, to be refused.
#[derive(Debug)]
pub struct Refusal {
    error: ConnectionError,
    /// A place among the refusals in flight, when one was free.
    permit: Option<OwnedSemaphorePermit>,
}

impl Admission {
    /// At most `limit` connections at once.
    pub fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Admission {
            slots: Arc::new(Semaphore::new(limit)),
            refusals: Arc::new(Semaphore::new(REFUSALS)),
            limit,
        }
    }

    /// The connection limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connections holding a place now.
    pub fn open(&self) -> usize {
        self.limit.saturating_sub(self.slots.available_permits())
    }

    /// A place for a new connection, or the refusal to give it.
    pub fn admit(&self) -> Result<Slot, Refusal> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(Slot(permit)),
            Err(_) => Err(Refusal {
                error: ConnectionError::TooMany { open: self.open(), limit: self.limit },
                permit: self.refusals.clone().try_acquire_owned().ok(),
            }),
        }
    }
}

impl Refusal {
    /// Answers `stream` with `503` and the reason, then closes it.
    ///
    /// The request head is read first (within [`REFUSAL_WAIT`]) so that the
    /// answer arrives as a reply: Go's HTTP client drops bytes that come
    /// before its request went out as an "unsolicited response" and reports
    /// a closed connection instead of the message. When too many refusals
    /// are in flight already, the answer is written at once instead.
    pub async fn answer(self, stream: UnixStream) {
        self.answer_within(stream, REFUSAL_WAIT).await;
    }

    async fn answer_within(self, mut stream: UnixStream, wait: Duration) {
        let answer = self.error.into_bytes();
        if self.permit.is_some() {
            let _ = tokio::time::timeout(wait, read_head(&mut stream)).await;
            let _ = tokio::time::timeout(wait, stream.write_all(&answer)).await;
        } else {
            // Never waits: a full socket buffer loses the answer, not the loop.
            let _ = stream.try_write(&answer);
        }
        // Closing with the request's body unread still delivers the answer
        // first (AF_UNIX queues it; the peer then reads ECONNRESET, not data).
        drop(stream);
    }
}

/// Reads until the end of a request head, EOF, or [`REFUSAL_READ`] bytes.
async fn read_head(stream: &mut UnixStream) {
    let mut buf = [0u8; 1024];
    // The blank line may straddle two reads: the last 3 bytes are carried over.
    let mut window = Vec::with_capacity(3 + buf.len());
    let mut total = 0;
    while total < REFUSAL_READ {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        window.extend_from_slice(&buf[..n]);
        if window.windows(4).any(|w| w == b"\r\n\r\n") {
            return;
        }
        window.drain(..window.len().saturating_sub(3));
        total += n;
    }
}

/// Paces retries of a failing `accept` and says so once per burst of failures.
#[derive(Debug)]
pub struct AcceptBackoff {
    next: Duration,
    failures: u64,
    since: Option<Instant>,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff { next: ACCEPT_BACKOFF_MIN, failures: 0, since: None }
    }
}

impl AcceptBackoff {
    /// Notes a failure; returns how long to wait before accepting again, and
    /// whether this failure starts a burst (the one to log).
    pub fn failed(&mut self) -> (Duration, bool) {
        let first = self.since.is_none();
        self.since.get_or_insert_with(Instant::now);
        self.failures += 1;
        let wait = self.next;
        self.next = (self.next * 2).min(ACCEPT_BACKOFF_MAX);
        (wait, first)
    }

    /// Notes a success; returns the failures and the time the burst that
    /// just ended took, if one did.
    pub fn succeeded(&mut self) -> Option<(u64, Duration)> {
        let since = self.since.take()?;
        let failures = std::mem::take(&mut self.failures);
        self.next = ACCEPT_BACKOFF_MIN;
        Some((failures, since.elapsed()))
    }
}

/// Counts events of one kind (refusals) between the first and the moment
/// they stop, so they are logged once per burst.
#[derive(Debug, Default)]
pub struct Burst {
    count: u64,
    since: Option<Instant>,
}

impl Burst {
    /// Notes one event; true when it starts a burst.
    pub fn hit(&mut self) -> bool {
        self.count += 1;
        self.since.get_or_insert_with(Instant::now);
        self.count == 1
    }

    /// Ends the burst, if one was on: its count and length.
    pub fn end(&mut self) -> Option<(u64, Duration)> {
        let since = self.since.take()?;
        Some((std::mem::take(&mut self.count), since.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limit_leaves_the_reserve_and_room_for_sessions() {
        assert_eq!(default_max_connections(1024), (1024 - 96) / 4);
        assert_eq!(default_max_connections(20_000), (20_000 - 96) / 4);
        // A limit below the reserve still admits one client rather than none.
        assert_eq!(default_max_connections(50), 1);
        assert!(default_max_connections(u64::MAX) <= Semaphore::MAX_PERMITS);
        assert!(fds_needed(default_max_connections(1024)) <= 1024);
    }

    #[test]
    fn slots_are_given_back_when_dropped() {
        let admission = Admission::new(2);
        let a = admission.admit().expect("first");
        let _b = admission.admit().expect("second");
        assert_eq!(admission.open(), 2);
        let refusal = admission.admit().expect_err("third refused");
        assert!(matches!(refusal.error, ConnectionError::TooMany { open: 2, limit: 2 }));
        assert!(refusal.permit.is_some());
        drop(a);
        assert_eq!(admission.open(), 1);
        assert!(admission.admit().is_ok());
    }

    #[test]
    fn refusals_past_their_own_bound_answer_without_waiting() {
        let admission = Admission::new(1);
        let _held = admission.admit().expect("the one slot");
        let refusals: Vec<Refusal> = (0..REFUSALS).map(|_| admission.admit().expect_err("refused")).collect();
        assert!(refusals.iter().all(|r| r.permit.is_some()));
        assert!(admission.admit().expect_err("refused").permit.is_none());
    }

    #[test]
    fn accept_backoff_grows_logs_once_and_resets() {
        let mut backoff = AcceptBackoff::default();
        assert_eq!(backoff.failed(), (ACCEPT_BACKOFF_MIN, true));
        assert_eq!(backoff.failed(), (ACCEPT_BACKOFF_MIN * 2, false));
        for _ in 0..20 {
            assert!(!backoff.failed().1);
        }
        assert_eq!(backoff.failed().0, ACCEPT_BACKOFF_MAX);
        assert_eq!(backoff.succeeded().map(|(n, _)| n), Some(23));
        assert_eq!(backoff.succeeded(), None);
        assert_eq!(backoff.failed(), (ACCEPT_BACKOFF_MIN, true));
    }

    #[tokio::test]
    async fn refusal_waits_for_the_head_even_across_reads() {
        let (mut client, server) = UnixStream::pair().expect("pair");
        let refusal = Refusal { error: ConnectionError::TooMany { open: 3, limit: 3 }, permit: None };
        // Without a permit: answered at once, before any request.
        refusal.answer(server).await;
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got).await;
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        assert!(text.contains("execgate: too many connections (3 open, limit 3); try again later"), "{text}");

        let admission = Admission::new(1);
        let _held = admission.admit().expect("slot");
        let refusal = admission.admit().expect_err("refused");
        let (mut client, server) = UnixStream::pair().expect("pair");
        // A long wait, so only the blank line can end it within this test.
        let answering = tokio::spawn(refusal.answer_within(server, Duration::from_secs(60)));
        client.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r").await.expect("write");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!answering.is_finished(), "answered before the head ended");
        client.write_all(b"\n").await.expect("write");
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got).await;
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 503 "));
    }
}
