//! Who an exec runs as: its user spec resolved in the container's own
//! `/etc/passwd` and `/etc/group`, read where the runtime reads them (the
//! overlay root) or through the daemon's archive API.

use super::identity::{Identity, PinUser, UnpinnedStarts, is_pinned_form};
use super::permit::Judged;
use super::rootfs;
use super::user::{self, EffectiveUser};
use crate::daemon::archive;
use crate::daemon::inspect::{ContainerInfo, ExecInspect};
use crate::daemon::upstream::Control;
use crate::http::error::ProxyError;

/// Where the container's `/etc/passwd` and `/etc/group` are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserLookup {
    /// The overlay root when execgate can see it, else the archive API.
    Auto,
    /// Only the overlay root (`GraphDriver.Data.MergedDir`).
    Rootfs,
    /// Only the daemon's archive API (refused where a mount covers the file).
    Archive,
}

/// How the gate settles who an exec runs as.
#[derive(Debug, Clone, Copy)]
pub struct UserRules {
    /// Where the container's passwd and group files are read from.
    pub lookup: UserLookup,
    /// Whether the judged `uid:gid` is forwarded in place of the spec.
    pub pin: PinUser,
    /// What becomes of starts of execs whose user cannot be pinned.
    pub unpinned_starts: UnpinnedStarts,
}

/// Settles identities as its rules say.
pub(super) struct Users {
    pub rules: UserRules,
}

impl Users {
    /// Who a created exec would run as: its spec, or the container's user
    /// when it names none, resolved now.
    pub async fn at_create(
        &self,
        daemon: &Control<'_>,
        container: &ContainerInfo,
        requested: &str,
    ) -> Result<Identity, ProxyError> {
        let effective_spec = if requested.is_empty() { &container.user } else { requested };
        let (resolved, group) = self.effective_user(daemon, container, effective_spec).await?;
        Identity::at_create(requested, resolved, self.rules.pin)
            .with_applied_groups(&container.group_add, group.as_deref())
            .map_err(|reason| ProxyError::Denied(vec![reason]))
    }

    /// Who a starting exec runs as. One judged at create runs as judged: its
    /// pinned identity, or (unpinned) its spec resolved again now. One execgate
    /// never saw is read back from the daemon; if its stored user is a name the
    /// daemon will resolve again, it cannot be pinned and is refused unless
    /// `--unpinned-starts judge` hands it to policy.
    pub async fn at_start(
        &self,
        daemon: &Control<'_>,
        container: &ContainerInfo,
        exec_id: &str,
        inspect: &ExecInspect,
        judged: Option<&Judged>,
    ) -> Result<Identity, ProxyError> {
        // Podman reports an exec without a user as "", meaning the container's default.
        let stored = match inspect.process_config.user.as_str() {
            "" => &container.user,
            stored => stored,
        };
        // A judged, pinned exec runs as judged; its groups are checked again
        // against the group file as it is now, as the runtime will read it.
        let spec = match judged {
            Some(judged) if judged.identity.pinned => &judged.identity.forwarded,
            _ => stored,
        };
        if judged.is_none() && !is_pinned_form(stored) && self.rules.unpinned_starts == UnpinnedStarts::Refuse
        {
            return Err(ProxyError::Denied(vec![format!(
                "exec {exec_id} was not created through execgate and its user {stored:?} is looked up again \
                 in the container's files when it starts (only a numeric uid:gid is not), so what was judged \
                 might not be what runs: create the exec through execgate (or start execgate with \
                 --unpinned-starts judge)"
            )]));
        }
        let (resolved, group) = self.effective_user(daemon, container, spec).await?;
        let identity = match judged {
            Some(judged) if judged.identity.pinned => judged.identity.clone(),
            Some(judged) => Identity { resolved, ..judged.identity.clone() },
            None => Identity::stored(stored, resolved),
        };
        identity
            .with_applied_groups(&container.group_add, group.as_deref())
            .map_err(|reason| ProxyError::Denied(vec![reason]))
    }

    /// Who `spec` is in the container's files.
    pub async fn resolve(
        &self,
        daemon: &Control<'_>,
        container: &ContainerInfo,
        spec: &str,
    ) -> Result<EffectiveUser, ProxyError> {
        Ok(self.effective_user(daemon, container, spec).await?.0)
    }

    /// Returns the group file too: the identity's supplementary groups are
    /// checked against it.
    async fn effective_user(
        &self,
        daemon: &Control<'_>,
        container: &ContainerInfo,
        spec: &str,
    ) -> Result<(EffectiveUser, Option<Vec<u8>>), ProxyError> {
        let (passwd, group) = self.user_files(daemon, container).await?;
        let user = user::resolve(spec, &user::Files { passwd: passwd.as_deref(), group: group.as_deref() })
            .map_err(|e| ProxyError::Denied(vec![format!("cannot resolve user {spec:?}: {e}")]))?;
        Ok((user, group))
    }

    async fn user_files(
        &self,
        daemon: &Control<'_>,
        container: &ContainerInfo,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), ProxyError> {
        let root = container
            .merged_dir
            .as_deref()
            .filter(|root| self.rules.lookup != UserLookup::Archive && root.is_dir());
        if let Some(root) = root {
            // Read in place: two small files the page cache holds after the first
            // exec; a hop to the blocking pool and back costs more than the reads.
            let read = || {
                Ok::<_, std::io::Error>((rootfs::read(root, "etc/passwd")?, rootfs::read(root, "etc/group")?))
            };
            return read().map_err(|e| {
                ProxyError::Denied(vec![format!(
                    "cannot read the container's /etc/passwd or /etc/group: {e}"
                )])
            });
        }
        if self.rules.lookup == UserLookup::Rootfs {
            return Err(ProxyError::Denied(vec![format!(
                "cannot resolve users: container {} has no overlay root filesystem execgate can read \
                 (try --user-lookup auto)",
                container.name
            )]));
        }
        let passwd = archive::read(daemon, container, "/etc/passwd").await?;
        let group = archive::read(daemon, container, "/etc/group").await?;
        Ok((passwd, group))
    }
}
