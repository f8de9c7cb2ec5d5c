//! Shutdown, as a small state machine. Once the listener is gone:
//!
//! ```text
//! Draining ──all sessions ended──▶ Lingering ──▶ Closing ──▶ Closed
//!     │                                             ▲
//!     └──grace over──▶ Cutting ─────────────────────┘
//! ```
//!
//! Live sessions may finish within the grace period; past it they are cut
//! (each still records its end). Connections then finish the exchange in
//! flight and close.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::session::Lifecycle;

/// After the last session ends, how long open connections keep serving: the
/// CLI reads the exit code (`GET /exec/{id}/json`) on its keep-alive
/// connection right after the stream closes.
const LINGER: Duration = Duration::from_secs(1);

/// How long cut sessions get to record their end.
pub const CUT_WAIT: Duration = Duration::from_secs(5);

/// What is running, and the signals that stop it.
pub struct Shutdown {
    /// Client connections served over HTTP.
    connections: TaskTracker,
    /// Sessions and exec watchers.
    sessions: TaskTracker,
    /// Watchers of detached execs stop polling and record their end.
    stopping: CancellationToken,
    /// Live streams are cut.
    cut: CancellationToken,
    /// Connections finish the exchange in flight and close.
    close: CancellationToken,
    grace: Duration,
}

/// Where shutdown is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for live sessions until the deadline.
    Draining,
    /// Every session ended in time: connections get [`LINGER`] more.
    Lingering,
    /// The grace period ran out with sessions live: they are cut.
    Cutting,
    /// Connections are told to close; waiting for them until the deadline.
    Closing { sessions_ended: bool },
    /// Done.
    Closed,
}

impl Shutdown {
    /// Nothing stopped yet; live sessions get `grace` once shutdown begins.
    pub fn new(grace: Duration) -> Self {
        Shutdown {
            connections: TaskTracker::new(),
            sessions: TaskTracker::new(),
            stopping: CancellationToken::new(),
            cut: CancellationToken::new(),
            close: CancellationToken::new(),
            grace,
        }
    }

    /// The signals the session module obeys.
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle { sessions: self.sessions.clone(), stopping: self.stopping.clone(), cut: self.cut.clone() }
    }

    /// Where client connections are tracked.
    pub fn connections(&self) -> &TaskTracker {
        &self.connections
    }

    /// Cancelled when connections are to close.
    pub fn close_signal(&self) -> CancellationToken {
        self.close.clone()
    }

    /// Runs shutdown to its end; the listener must be gone already.
    pub async fn run(self) {
        let deadline = Instant::now() + self.grace;
        self.stopping.cancel();
        self.sessions.close();
        self.connections.close();
        let mut stage = Stage::Draining;
        while stage != Stage::Closed {
            debug!(?stage, "shutdown");
            stage = self.step(stage, deadline).await;
        }
    }

    /// Does what `stage` does; returns the next one.
    async fn step(&self, stage: Stage, deadline: Instant) -> Stage {
        match stage {
            Stage::Draining => {
                if !self.sessions.is_empty() {
                    info!(sessions = self.sessions.len(), "waiting for live sessions to finish");
                }
                match tokio::time::timeout_at(deadline, self.sessions.wait()).await {
                    Ok(()) => Stage::Lingering,
                    Err(_) => Stage::Cutting,
                }
            }
            Stage::Lingering => {
                tokio::time::sleep_until(deadline.min(Instant::now() + LINGER)).await;
                Stage::Closing { sessions_ended: true }
            }
            Stage::Cutting => {
                // Cut sessions still write their exec.end (reason proxy_shutdown).
                self.cut.cancel();
                let _ = tokio::time::timeout(CUT_WAIT, self.sessions.wait()).await;
                Stage::Closing { sessions_ended: false }
            }
            Stage::Closing { sessions_ended } => {
                self.close.cancel();
                let closed = tokio::time::timeout_at(deadline, self.connections.wait()).await.is_ok();
                if !(sessions_ended && closed) {
                    warn!(
                        sessions = self.sessions.len(),
                        connections = self.connections.len(),
                        grace_secs = self.grace.as_secs(),
                        "grace period over; cutting what is still open"
                    );
                }
                Stage::Closed
            }
            Stage::Closed => Stage::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sessions_that_end_in_time_are_not_cut() {
        let shutdown = Shutdown::new(Duration::from_secs(10));
        let lifecycle = shutdown.lifecycle();
        let cut = lifecycle.cut.clone();
        lifecycle.sessions.spawn(tokio::time::sleep(Duration::from_secs(3)));
        let started = Instant::now();
        shutdown.run().await;
        assert!(!cut.is_cancelled(), "a session that ended within the grace was cut");
        assert!(lifecycle.stopping.is_cancelled(), "watchers were not told to stop");
        // Three seconds for the session, then the linger.
        assert_eq!(started.elapsed(), Duration::from_secs(3) + LINGER);
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_past_the_grace_are_cut_and_get_time_to_record_their_end() {
        let shutdown = Shutdown::new(Duration::from_secs(2));
        let lifecycle = shutdown.lifecycle();
        let (cut, close) = (lifecycle.cut.clone(), shutdown.close_signal());
        let ended_after_cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        lifecycle.sessions.spawn({
            let (cut, ended) = (cut.clone(), ended_after_cut.clone());
            async move {
                cut.cancelled().await;
                tokio::time::sleep(Duration::from_millis(100)).await; // writing its end
                ended.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        shutdown.connections().spawn({
            let close = close.clone();
            async move { close.cancelled().await }
        });
        shutdown.run().await;
        assert!(cut.is_cancelled());
        assert!(close.is_cancelled());
        assert!(
            ended_after_cut.load(std::sync::atomic::Ordering::SeqCst),
            "shutdown did not wait for the cut session"
        );
    }
}
