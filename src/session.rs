//! A session once it is judged, end to end: the stream bridged and teed to
//! its recording, the exit code learned, the end reason settled, the end
//! recorded. The proxy hands each judged exec start and attach here and goes
//! back to dispatching.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::audit::recording::Tap;
use crate::audit::{Audit, Counts, EndReason, SessionEnd, Subject};
use crate::bounds::Slot;
use crate::daemon::inspect;
use crate::daemon::upstream::{Control, Upstream};
use crate::gate::{AttachPlan, StartPlan, Stream};
use crate::tunnel::{self, Ending};

/// How often a running exec is asked whether it has ended.
const EXIT_POLL: Duration = Duration::from_millis(500);

/// How many times a container whose attach stream the daemon closed is asked
/// again, [`EXIT_POLL`] apart, before it counts as detached rather than exited.
const ATTACH_EXIT_CHECKS: usize = 2;

/// A client socket taken over from HTTP: the stream, and the bytes the client
/// had already sent past its request (they belong to the stream).
pub struct Hijacked {
    /// The client's socket.
    pub stream: UnixStream,
    /// Bytes read past the request.
    pub pending: Bytes,
    /// The connection's place under the connection limit: a stream holds
    /// the client's fd, so it counts until the stream ends.
    pub slot: Slot,
}

/// The shutdown signals sessions obey.
pub struct Lifecycle {
    /// Hijacked sessions and exec watchers, so shutdown can wait for them.
    pub sessions: TaskTracker,
    /// Cancelled on a stop signal: watchers of detached execs end their records.
    pub stopping: CancellationToken,
    /// Cancelled when the grace period is over: live streams are cut.
    pub cut: CancellationToken,
}

/// Runs every session; cheap to clone into each session's task.
#[derive(Clone)]
pub struct Sessions {
    upstream: Upstream,
    audit: Audit,
    tasks: TaskTracker,
    stopping: CancellationToken,
    cut: CancellationToken,
}

/// A judged session: an exec start's, or an attach's.
pub enum Plan {
    /// An exec start.
    Exec(Box<StartPlan>),
    /// An attach to a container's stdio.
    Attach(Box<AttachPlan>),
}

impl Plan {
    fn stream(&mut self) -> &mut Stream {
        match self {
            Plan::Exec(p) => p.stream(),
            Plan::Attach(p) => p.stream(),
        }
    }
}

/// How a bridged session's task ended.
#[derive(Debug)]
enum Outcome {
    /// The bridge ran to its end.
    Bridged(std::io::Result<Ending>),
    /// execgate's grace period for stopping ran out.
    Cut,
    /// The session's recording failed, and execgate cut it.
    RecordingFailed,
}

impl Sessions {
    /// Sessions that ask `upstream` how execs ended and record them in `audit`.
    pub fn new(upstream: Upstream, audit: Audit, lifecycle: Lifecycle) -> Self {
        let Lifecycle { sessions, stopping, cut } = lifecycle;
        Sessions { upstream, audit, tasks: sessions, stopping, cut }
    }

    /// Runs `task` in the background: a dropped client cannot cancel it, and
    /// shutdown waits for it. Once a start is judged its records are owed,
    /// whatever the client does.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Bridges the client's socket, once the HTTP server hands it over, to the
    /// daemon's upgraded connection, in a tracked task; records the session
    /// when `plan` is an exec start's.
    pub fn bridge(&self, mut plan: Option<Plan>, client: oneshot::Receiver<Hijacked>, daemon: OnUpgrade) {
        let sessions = self.clone();
        self.tasks.spawn(async move {
            let stream = plan.as_mut().map(Plan::stream);
            let taps = stream.as_ref().and_then(|s| s.recording().map(|r| r.taps(s.tty())));
            // A recording that fails mid-session cuts it: what crossed from
            // then on would not be in the trail.
            let recording_failed = match stream.and_then(|s| s.recording()) {
                Some(session) => session.failed(),
                None => CancellationToken::new(),
            };
            let bridged = async {
                // The client may be gone before its answer was written.
                let client = match client.await {
                    Ok(client) => client,
                    Err(_) => {
                        debug!("client left before the stream began");
                        return Ok(Ending::ClientGone);
                    }
                };
                let daemon = daemon.await.map_err(std::io::Error::other)?;
                let Hijacked { stream, pending, slot } = client;
                let ending = tunnel::bridge((stream, pending), daemon, taps).await;
                drop(slot); // the connection's fd is closed now: its place is free
                ending
            };
            let outcome = tokio::select! {
                outcome = bridged => Outcome::Bridged(outcome),
                () = sessions.cut.cancelled() => Outcome::Cut,
                () = recording_failed.cancelled() => Outcome::RecordingFailed,
            };
            match plan {
                Some(Plan::Exec(plan)) => sessions.end_exec_session(plan, outcome).await,
                Some(Plan::Attach(plan)) => sessions.end_attach_session(plan, outcome).await,
                None => debug!(?outcome, "stream closed"),
            }
        });
    }

    /// Watches a detached exec the daemon started, in a tracked task, and
    /// records its end once the process ends.
    pub fn watch_detached(&self, plan: StartPlan) {
        let sessions = self.clone();
        self.tasks.spawn(async move {
            let exit_code = sessions.wait_exit(plan.exec_id()).await;
            // No exit code: execgate is stopping, or the daemon could not say
            // (it forgot the exec, or stopped answering).
            let (reason, detail) = match exit_code {
                Some(_) => (EndReason::Detached, None),
                None if sessions.stopping.is_cancelled() => (EndReason::ProxyShutdown, None),
                None => (EndReason::DaemonError, Some("the daemon stopped reporting on the exec".to_owned())),
            };
            sessions.end(Plan::Exec(Box::new(plan)), reason, exit_code, detail, false).await;
        });
    }

    /// Records the end of a session that never began.
    pub async fn never_started(&self, plan: Plan, detail: String) {
        self.end(plan, EndReason::DaemonError, None, Some(detail), false).await;
    }

    /// Classifies how a bridged exec session ended and records it.
    async fn end_exec_session(&self, plan: Box<StartPlan>, outcome: Outcome) {
        let inspect = inspect::exec_inspect(&Control::pooled(&self.upstream), plan.exec_id()).await;
        let running = inspect.as_ref().is_ok_and(|i| i.running);
        let (reason, detail) = match (&outcome, &inspect) {
            (Outcome::Cut, _) => (EndReason::ProxyShutdown, None),
            (Outcome::RecordingFailed, _) => (
                EndReason::RecordingFailed,
                running.then(|| "the process was still running when execgate cut its stream".to_owned()),
            ),
            (Outcome::Bridged(Err(err)), _) => (EndReason::DaemonError, Some(err.to_string())),
            (Outcome::Bridged(Ok(Ending::DaemonGone)), _) => (EndReason::DaemonError, None),
            (Outcome::Bridged(Ok(_)), Err(err)) => (EndReason::DaemonError, Some(err.to_string())),
            (Outcome::Bridged(Ok(Ending::ClientGone)), Ok(_)) => (EndReason::ClientHangup, None),
            // The daemon closed the stream while the process runs on: detach keys.
            (Outcome::Bridged(Ok(_)), Ok(_)) if running => (EndReason::Detached, None),
            (Outcome::Bridged(Ok(_)), Ok(_)) => (EndReason::Exited, None),
        };
        let exit_code = match (&inspect, reason) {
            (Ok(i), _) if !i.running => i.exit_code,
            // A session cut for its recording is ended now: the process may
            // run on for long, and the trail must say at once what happened.
            (Ok(_), EndReason::ClientHangup | EndReason::Detached) => self.wait_exit(plan.exec_id()).await,
            _ => None,
        };
        self.end(Plan::Exec(plan), reason, exit_code, detail, true).await;
    }

    /// Classifies how a bridged attach session ended and records it. The
    /// daemon ends an attach when PID 1 exits; one that ends while it runs on
    /// was detached (detach keys) or left by its client. Nothing is waited
    /// for: a container may run for months.
    async fn end_attach_session(&self, plan: Box<AttachPlan>, outcome: Outcome) {
        let daemon = Control::pooled(&self.upstream);
        let mut container = inspect::container_inspect(&daemon, plan.container_id()).await;
        // The stream closes as PID 1 exits; give the daemon a moment to say so.
        for _ in 0..ATTACH_EXIT_CHECKS {
            if !matches!(&container, Ok(c) if c.running)
                || !matches!(outcome, Outcome::Bridged(Ok(Ending::Closed)))
            {
                break;
            }
            tokio::time::sleep(EXIT_POLL).await;
            container = inspect::container_inspect(&daemon, plan.container_id()).await;
        }
        let running = container.as_ref().is_ok_and(|c| c.running);
        // An exit code counts only if PID 1 exited during the session.
        let exited = container.as_ref().is_ok_and(|c| !c.running && plan.exited_since(&c.finished_at));
        let (reason, detail) = match (&outcome, &container) {
            (Outcome::Cut, _) => (EndReason::ProxyShutdown, None),
            (Outcome::RecordingFailed, _) => (
                EndReason::RecordingFailed,
                running.then(|| "the container was still running when execgate cut its stream".to_owned()),
            ),
            (Outcome::Bridged(Err(err)), _) => (EndReason::DaemonError, Some(err.to_string())),
            (Outcome::Bridged(Ok(Ending::DaemonGone)), _) => (EndReason::DaemonError, None),
            (Outcome::Bridged(Ok(_)), Err(err)) => (EndReason::DaemonError, Some(err.to_string())),
            (Outcome::Bridged(Ok(Ending::ClientGone)), Ok(_)) => (EndReason::ClientHangup, None),
            (Outcome::Bridged(Ok(_)), Ok(_)) if running => (EndReason::Detached, None),
            (Outcome::Bridged(Ok(_)), Ok(_)) if exited => (EndReason::Exited, None),
            (Outcome::Bridged(Ok(_)), Ok(_)) => (EndReason::Closed, None),
        };
        let exit_code = container.ok().filter(|_| exited).and_then(|c| c.exit_code);
        self.end(Plan::Attach(plan), reason, exit_code, detail, true).await;
    }

    /// Polls the exec until it ends; `None` when execgate stops first or the
    /// daemon cannot tell.
    async fn wait_exit(&self, exec_id: &str) -> Option<i64> {
        loop {
            match inspect::exec_inspect(&Control::pooled(&self.upstream), exec_id).await {
                Ok(i) if !i.running => return i.exit_code,
                Ok(_) => {}
                Err(_) => return None,
            }
            tokio::select! {
                () = tokio::time::sleep(EXIT_POLL) => {}
                () = self.stopping.cancelled() => return None,
            }
        }
    }

    async fn end(
        &self,
        mut plan: Plan,
        reason: EndReason,
        exit_code: Option<i64>,
        detail: Option<String>,
        output_captured: bool,
    ) {
        // Only a session that streamed through execgate has bytes to count.
        let stream = plan.stream();
        let duration = stream.elapsed();
        let (recording, counts) = match stream.take_recording() {
            Some(session) => session.finish().await,
            None => (Ok(None), Counts::default()),
        };
        let (recording, recording_error) = match recording {
            Ok(summary) => (summary, None),
            Err(reason) => (None, Some(reason)),
        };
        let end = SessionEnd {
            reason,
            exit_code,
            duration,
            counts,
            output_captured,
            recording,
            recording_error,
            detail,
        };
        match plan {
            Plan::Exec(p) => self.audit.session_end(Subject::exec(p.exec_id()), p.facts(), end).await,
            Plan::Attach(p) => {
                let subject = Subject::Attach { attach_id: p.attach_id().to_owned() };
                self.audit.session_end(subject, p.facts(), end).await;
            }
        }
    }
}

/// The recorder's taps are what a session's bridge tees into.
impl tunnel::Tee for Tap {
    fn observe(&mut self, data: &[u8]) -> impl Future<Output = ()> + Send {
        Tap::observe(self, data)
    }
}
