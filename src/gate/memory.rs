//! What the gate remembers between requests: the execs it judged at create
//! (to hold their starts to it) and the execs started through it (an exec
//! runs once).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::permit::Judged;
use crate::http::error::ProxyError;

/// How many created-but-not-started execs are remembered; older ones are
/// judged from the daemon's inspect alone when they start. As many started
/// execs are remembered too.
const REMEMBERED: usize = 16 * 1024;

/// Execs judged and started, shared by every connection.
#[derive(Default)]
pub(super) struct Memory {
    inner: Mutex<Remembered>,
}

#[derive(Default)]
struct Remembered {
    by_id: HashMap<String, Judged>,
    order: VecDeque<String>,
    /// Execs started through execgate (the most recent [`REMEMBERED`]). An exec
    /// runs once: the daemon refuses every start after the first, but still
    /// answers it with a stream, which must not pass for a second session.
    started: HashSet<String>,
    started_order: VecDeque<String>,
}

impl Memory {
    fn lock(&self) -> MutexGuard<'_, Remembered> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers a created exec under the id the daemon gave it.
    pub fn remember(&self, exec_id: String, judged: Judged) {
        let mut remembered = self.lock();
        if remembered.order.len() >= REMEMBERED
            && let Some(oldest) = remembered.order.pop_front()
        {
            remembered.by_id.remove(&oldest);
        }
        remembered.order.push_back(exec_id.clone());
        remembered.by_id.insert(exec_id, judged);
    }

    /// What was judged when `exec_id` was created, if it was created here.
    pub fn recall(&self, exec_id: &str) -> Option<Judged> {
        self.lock().by_id.get(exec_id).cloned()
    }

    /// Claims `exec_id` for the start being judged, or refuses a start of an
    /// exec that is already being started or has been started through execgate.
    pub fn claim_start(&self, exec_id: &str) -> Result<StartClaim<'_>, ProxyError> {
        let mut remembered = self.lock();
        if !remembered.started.insert(exec_id.to_owned()) {
            return Err(ProxyError::Conflict(format!(
                "exec {exec_id} was already started through execgate; an exec runs once (create a new one)"
            )));
        }
        remembered.started_order.push_back(exec_id.to_owned());
        if remembered.started_order.len() > REMEMBERED
            && let Some(oldest) = remembered.started_order.pop_front()
        {
            remembered.started.remove(&oldest);
        }
        Ok(StartClaim { memory: self, exec_id: exec_id.to_owned(), kept: false })
    }
}

/// An exec id claimed for one start while it is judged. Dropped without
/// [`StartClaim::keep`] (the start was refused), it frees the exec to be
/// started again.
pub(super) struct StartClaim<'a> {
    memory: &'a Memory,
    exec_id: String,
    kept: bool,
}

impl StartClaim<'_> {
    /// The start goes to the daemon: the exec stays claimed for good.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for StartClaim<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.memory.lock().started.remove(&self.exec_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_start_frees_its_claim_and_a_forwarded_one_keeps_it() {
        let memory = Memory::default();
        drop(memory.claim_start("e1").expect("first claim"));
        let claim = memory.claim_start("e1").expect("free again after a refusal");
        assert!(memory.claim_start("e1").is_err(), "claimed while judged");
        claim.keep();
        assert!(memory.claim_start("e1").is_err(), "an exec runs once");
    }
}
