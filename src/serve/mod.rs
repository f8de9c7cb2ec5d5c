//! `execgate serve`: start-up, the accept loop (`accept`), policy reloads
//! (`reload`) and shutdown (`shutdown`).

mod accept;
mod reload;
mod shutdown;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{info, warn};

use crate::audit::record::Bare;
use crate::audit::{Audit, AuditConfig, Record, Recorder};
use crate::daemon::upstream::Upstream;
use crate::gate::UserRules;
use crate::listener::Listener;
use crate::policy::Policies;
use crate::proxy::Proxy;
use accept::Door;
use reload::Reloads;
use shutdown::{CUT_WAIT, Shutdown};

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The socket clients connect to.
    pub listen: PathBuf,
    /// The daemon's socket.
    pub upstream: PathBuf,
    /// Mode of the listening socket.
    pub socket_mode: u32,
    /// Group of the listening socket.
    pub socket_gid: Option<u32>,
    /// How long live sessions may continue after a stop signal.
    pub shutdown_grace: Duration,
    /// Policy files or directories; empty means the built-in pack.
    pub policies: Vec<PathBuf>,
    /// How exec users are settled: lookup, pinning, unpinned starts.
    pub users: UserRules,
    /// The audit trail.
    pub audit: AuditConfig,
    /// How long a client may take to send a request head, counted from when
    /// the connection opened or its previous answer ended; `None`: no limit.
    pub head_timeout: Option<Duration>,
    /// Client connections held at once; `None`: derived from the fd limit.
    pub max_connections: Option<usize>,
    /// How long pooled daemon connections may stay idle; `None`: no limit.
    pub daemon_idle_timeout: Option<Duration>,
}

/// The signals `serve` obeys.
pub struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    fn install() -> Result<Self> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("failed to install the {name} handler"))
        };
        Ok(Signals {
            terminate: install(SignalKind::terminate(), "SIGTERM")?,
            interrupt: install(SignalKind::interrupt(), "SIGINT")?,
            hangup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }
}

/// Serves until SIGTERM or SIGINT, then drains; SIGHUP reloads the policy.
pub async fn run(config: Config) -> Result<()> {
    let mut signals = Signals::install()?;
    // Compiled before the socket exists: a bad policy fails start-up, naming the file.
    let policies = Arc::new(Policies::load(config.policies.clone())?);
    let (audit, audit_thread) = open_audit(&config, &policies).await?;
    let upstream = Upstream::new(config.upstream.clone(), config.daemon_idle_timeout);
    upstream.warn_if_exposed();
    upstream.log_version().await;

    let mut door = Door::new(config.max_connections, config.head_timeout)?;
    let listener = Listener::bind(&config.listen, config.socket_mode, config.socket_gid)?;
    info!(listen = %config.listen.display(), mode = format!("{:04o}", config.socket_mode), "execgate listening");

    let shutdown = Shutdown::new(config.shutdown_grace);
    let proxy =
        Arc::new(Proxy::new(upstream, policies.clone(), config.users, audit.clone(), shutdown.lifecycle()));
    let reloads = Reloads::new(policies, audit.clone());
    let background = [tokio::spawn(reloads.clone().watch()), tokio::spawn(tick(audit.recorder().clone()))];

    door.serve(&listener, &proxy, &shutdown, &mut signals, &reloads).await;
    listener.remove();
    drop(listener);
    shutdown.run().await;
    background.iter().for_each(tokio::task::JoinHandle::abort);
    drop((proxy, reloads));
    close_audit(audit, audit_thread).await;
    info!("execgate stopped");
    Ok(())
}

/// Opens the audit trail before anything is served (a predecessor's
/// unfinished sessions are closed in it first), and records the policy in force.
async fn open_audit(config: &Config, policies: &Policies) -> Result<(Audit, std::thread::JoinHandle<()>)> {
    let current = policies.current();
    info!(policy_hash = current.hash(), files = ?current.names(), "policy loaded");
    let (audit, audit_thread) = Audit::open(config.audit.clone()).await?;
    info!(dir = %config.audit.log.dir.display(), record = ?config.audit.record, "audit trail open");
    audit.log().append_later(Record::<Bare>::PolicyReload {
        result: "loaded",
        trigger: Some("start"),
        error: None,
        policy_hash: current.hash().to_owned(),
        files: current.names().to_vec(),
    });
    Ok((audit, audit_thread))
}

/// Lets live recordings checkpoint: the recorder counts time in these ticks.
async fn tick(recorder: Recorder) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        recorder.tick();
    }
}

/// Anchors the head and lets the writer finish. It ends once the last handle
/// is gone (the recorder thread holds one until its queue closes) and anchors
/// the head as it goes. A session task that outlived the grace may still hold
/// one: the head is anchored here already, so waiting is bounded.
async fn close_audit(audit: Audit, thread: std::thread::JoinHandle<()>) {
    audit.log().anchor("shutdown").await;
    drop(audit);
    let joined = tokio::task::spawn_blocking(move || thread.join());
    if tokio::time::timeout(CUT_WAIT, joined).await.is_err() {
        warn!("audit writer still busy at exit; its last records were anchored above");
    }
}
