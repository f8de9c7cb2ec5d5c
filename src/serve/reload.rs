//! Policy reloads: on SIGHUP, and whenever the policy files change on disk.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::audit::record::Bare;
use crate::audit::{Audit, Record};
use crate::policy::{Policies, ReloadError};

/// How often the policy files are checked for edits (SIGHUP reloads at once).
const POLICY_WATCH: Duration = Duration::from_secs(2);

/// Reloads the policy set in force, recording each reload in the audit log.
#[derive(Clone)]
pub struct Reloads {
    policies: Arc<Policies>,
    audit: Audit,
}

impl Reloads {
    /// Reloads of `policies`, recorded in `audit`.
    pub fn new(policies: Arc<Policies>, audit: Audit) -> Self {
        Reloads { policies, audit }
    }

    /// Reloads now (SIGHUP).
    pub async fn now(&self) {
        reload(&self.policies, &self.audit).await;
    }

    /// Reloads whenever the policy files change on disk (checked every
    /// [`POLICY_WATCH`]); returns at once for the built-in pack.
    pub async fn watch(self) {
        let mut seen = self.policies.fingerprint();
        if seen.is_none() {
            return;
        }
        loop {
            tokio::time::sleep(POLICY_WATCH).await;
            let now = self.policies.fingerprint();
            if now != seen {
                seen = now;
                self.now().await;
            }
        }
    }
}

/// Recompiles the policy set off the runtime thread; a set that fails to
/// compile leaves the last good one in force. Either way the audit log says so.
async fn reload(policies: &Arc<Policies>, audit: &Audit) {
    let reloading = policies.clone();
    let outcome = match tokio::task::spawn_blocking(move || reloading.reload()).await {
        Ok(outcome) => outcome,
        Err(err) => Err(ReloadError::Failed(err.into())),
    };
    let in_force = policies.current();
    let (result, error) = match &outcome {
        Ok(set) => {
            info!(policy_hash = set.hash(), files = ?set.names(), "policy reloaded");
            ("loaded", None)
        }
        Err(err) => {
            let result = match err {
                ReloadError::Failed(_) => "failed",
                ReloadError::Rejected(_) => "rejected",
            };
            warn!(error = %err, result, "policy reload failed; keeping the previous policy");
            (result, Some(err.to_string()))
        }
    };
    audit.log().append_later(Record::<Bare>::PolicyReload {
        result,
        trigger: None,
        error,
        policy_hash: in_force.hash().to_owned(),
        files: in_force.names().to_vec(),
    });
}
