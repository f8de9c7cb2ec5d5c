//! The steps every judged request shares, exec or attach: the policy's
//! decision on an input, and that decision (or a refusal before it) made
//! durable in the audit log before anything runs.

use serde::Serialize;
use tracing::warn;

use crate::audit::record::{Decided, Subject, Verdict};
use crate::audit::{Audit, Capped, Record};
use crate::http::error::ProxyError;
use crate::policy::{Decision, Policies, PolicySet};

/// The current policy set's decision on `input`. An input that cannot be
/// built is a denial, never an input judged without it.
pub(super) fn evaluate(policies: &Policies, input: &impl Serialize) -> Decision {
    let policies = policies.current();
    match serde_json::to_value(input) {
        Ok(value) => policies.decide(&value),
        Err(err) => Decision {
            deny: vec![format!("cannot build the policy input (fail closed): {err}")],
            warn: Vec::new(),
            policy_hash: policies.hash().to_owned(),
        },
    }
}

/// The request policy's decision on `input` (see [`evaluate`]).
pub(super) fn evaluate_request(set: &PolicySet, input: &impl Serialize) -> Decision {
    match serde_json::to_value(input) {
        Ok(value) => set.decide_request(&value),
        Err(err) => Decision {
            deny: vec![format!("cannot build the policy input (fail closed): {err}")],
            warn: Vec::new(),
            policy_hash: set.hash().to_owned(),
        },
    }
}

/// Refuses new sessions while records of finished ones wait for the log: the
/// trail must catch up before anything more runs.
pub(super) fn require_no_owed_records(audit: &Audit) -> Result<(), ProxyError> {
    match audit.log().pending() {
        0 => Ok(()),
        n => Err(ProxyError::AuditUnavailable(format!(
            "{n} audit records (session ends, denials) are waiting for the log to take them; new execs \
             are refused until it does"
        ))),
    }
}

/// Makes a decision durable, as the record `kind` makes of it. An allowed
/// request whose record cannot be written is refused: nothing runs that the
/// trail does not hold. A denial is returned as the error `denied` makes.
pub(super) async fn record<F: Serialize>(
    audit: &Audit,
    kind: fn(Decided<F>) -> Record<F>,
    subject: Subject,
    decision: &Decision,
    facts: F,
    denied: fn(Vec<String>) -> ProxyError,
) -> Result<u64, ProxyError> {
    let verdict = if decision.allowed() { Verdict::Allow } else { Verdict::Deny };
    let record = kind(Decided {
        subject,
        decision: verdict,
        reasons: Capped::new(&decision.deny),
        warnings: Some(Capped::new(&decision.warn)),
        policy_hash: Some(decision.policy_hash.clone()),
        facts,
    });
    if verdict == Verdict::Allow {
        return audit.log().append(record).await.map_err(|e| ProxyError::AuditUnavailable(e.to_string()));
    }
    // A denial has happened once it is decided: its record is owed.
    if let Err(err) = audit.log().append_owed(record).await {
        warn!(error = %err, "a denial is not in the audit log yet; it is kept and retried");
    }
    Err(denied(decision.deny.clone()))
}

/// Records a refusal that came before any decision (the container or user
/// could not be resolved, the exec changed) as the record `kind` makes of
/// it, and returns the error.
pub(super) async fn refused<F: Serialize>(
    audit: &Audit,
    kind: fn(Decided<F>) -> Record<F>,
    subject: Subject,
    facts: F,
    err: ProxyError,
) -> ProxyError {
    let record = kind(Decided {
        subject,
        decision: Verdict::Deny,
        reasons: Capped::new([err.to_string()]),
        warnings: None,
        policy_hash: None,
        facts,
    });
    if let Err(audit_err) = audit.log().append_owed(record).await {
        warn!(error = %audit_err, "a refusal is not in the audit log yet; it is kept and retried");
    }
    err
}
