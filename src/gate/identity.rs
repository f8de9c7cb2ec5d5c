//! Who an exec runs as, and how execgate makes the daemon run exactly that.
//!
//! The daemon resolves a user *name* against the container's `/etc/passwd` and
//! `/etc/group` when the exec starts, with the runtime's parser. Judging a name
//! and forwarding the name would leave a window (a file swapped between the two
//! reads) and a second parser between the judgement and the identity that runs.
//! So execgate *pins* the identity: it forwards the numeric `uid:gid` it judged.
//! With both parts numeric, the runtime's `GetExecUser` takes both numbers as
//! they are, whatever passwd and group say (passwd only supplies `HOME`), and
//! adds no supplementary groups from `/etc/group`, since a group was given.
//! Those supplementary groups are the one thing pinning changes: the exec API
//! cannot carry them. The container's own `--group-add` groups still apply.

use serde::Serialize;

use super::user::{EffectiveUser, LastLine, additional_groups};

/// Whether execgate forwards the judged `uid:gid` (`--pin-user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinUser {
    /// Forward the numeric `uid:gid` that was judged.
    On,
    /// Forward the spec as requested; the daemon resolves it again at start.
    Off,
}

/// What to do with the start of an exec execgate did not create and whose
/// stored user is a name it cannot pin (`--unpinned-starts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnpinnedStarts {
    /// Refuse it with an error that says why.
    Refuse,
    /// Let policy judge it; `input.user.pinned` is `false`.
    Judge,
}

/// The identity an exec runs with, as policy sees it (`input.user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The exec's own `User` (`-u`) as the client sent it; empty means the
    /// container's default.
    pub requested: String,
    /// What that spec resolves to in the container, as the daemon would
    /// resolve it (`spec`, `name`, `uid`, `gid`, `groups`, `is_root`);
    /// `groups` are the supplementary groups it would apply for a name.
    #[serde(flatten)]
    pub resolved: EffectiveUser,
    /// Whether the daemon runs exactly `uid:gid`, whatever the container's
    /// files say by the time it starts.
    pub pinned: bool,
    /// The `User` the daemon receives.
    pub forwarded: String,
    /// The supplementary gids the exec runs with: its own gid, the
    /// container's `--group-add` groups and, unpinned, `groups`.
    pub applied_groups: Vec<u32>,
}

impl Identity {
    /// The identity of an exec being created: pinned to the resolved numbers,
    /// or forwarded as requested.
    pub fn at_create(requested: &str, resolved: EffectiveUser, pin: PinUser) -> Self {
        let (pinned, forwarded) = match pin {
            PinUser::On => (true, format!("{}:{}", resolved.uid, resolved.gid)),
            PinUser::Off => (false, requested.to_owned()),
        };
        Identity { requested: requested.to_owned(), resolved, pinned, forwarded, applied_groups: Vec::new() }
    }

    /// The identity of an exec whose stored user spec is `stored` (read back
    /// from the daemon): pinned when the daemon cannot resolve it by name.
    pub fn stored(stored: &str, resolved: EffectiveUser) -> Self {
        Identity {
            requested: stored.to_owned(),
            resolved,
            pinned: is_pinned_form(stored),
            forwarded: stored.to_owned(),
            applied_groups: Vec::new(),
        }
    }

    /// Works out the supplementary gids the exec gets, and refuses when the
    /// runtime would make them others. The daemon passes the exec's gid, the
    /// container's `--group-add` groups (resolved in `group`) and, for a name,
    /// its `/etc/group` memberships; runc before 1.3 then looks each of those
    /// numbers up again *by name* in the container's group file, where a line
    /// named `1000` with gid 0 turns gid 1000 into root's group. The numbers
    /// cannot be pinned through the exec API, so a group file that renames
    /// them is refused.
    pub fn with_applied_groups(mut self, group_add: &[String], group: Option<&[u8]>) -> Result<Self, String> {
        let added = both_readings(group_add, group)
            .map_err(|e| format!("cannot resolve the container's --group-add {group_add:?}: {e}"))?;
        let mut daemon: Vec<u32> = vec![self.resolved.gid];
        if !self.pinned {
            daemon.extend(&self.resolved.groups);
        }
        daemon.extend(added);
        daemon.sort_unstable();
        daemon.dedup();
        let spelled: Vec<String> = daemon.iter().map(u32::to_string).collect();
        let runtime =
            both_readings(&spelled, group).map_err(|e| format!("cannot resolve gids {daemon:?}: {e}"))?;
        if runtime != daemon {
            return Err(format!(
                "the container's /etc/group names groups after numbers, so the runtime (runc before 1.3) \
                 would give this exec the supplementary gids {runtime:?} instead of {daemon:?}: fix the \
                 container's /etc/group"
            ));
        }
        self.applied_groups = daemon;
        Ok(self)
    }

    /// Whether `stored`, the exec's user as the daemon reports it
    /// (`ProcessConfig.user`), is the one forwarded. When none was, Docker
    /// reports the container's default and Podman an empty string.
    pub fn is_stored_as(&self, stored: &str) -> bool {
        stored == self.forwarded || (self.forwarded.is_empty() && stored == self.resolved.spec)
    }
}

/// [`additional_groups`] as runc 1.1.5 and as newer readers read the group
/// file; a file they read differently (its last line, see [`LastLine`]) is an
/// error rather than a guess.
fn both_readings(args: &[String], group: Option<&[u8]>) -> Result<Vec<u32>, String> {
    let old = additional_groups(args, group, LastLine::Lost).map_err(|e| e.to_string())?;
    let new = additional_groups(args, group, LastLine::Kept).map_err(|e| e.to_string())?;
    if old != new {
        return Err(format!(
            "runtimes read the container's /etc/group differently (its last line has no newline): \
             {old:?} or {new:?}; end the file with a newline"
        ));
    }
    Ok(old)
}

/// Whether the daemon runs `spec` without resolving any name: the empty spec
/// (the container's own process user, no lookup at all) or `uid:gid` with both
/// parts plain decimal numbers. Deliberately narrower than what Go's `Atoi`
/// accepts (no signs): anything else counts as a name, which is refused or
/// judged unpinned, never trusted.
pub fn is_pinned_form(spec: &str) -> bool {
    let number =
        |part: &str| !part.is_empty() && part.len() <= 10 && part.bytes().all(|b| b.is_ascii_digit());
    spec.is_empty() || spec.split_once(':').is_some_and(|(uid, gid)| number(uid) && number(gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(spec: &str, uid: u32, gid: u32) -> EffectiveUser {
        EffectiveUser {
            spec: spec.to_owned(),
            name: Some("app".to_owned()),
            uid,
            gid,
            groups: vec![10],
            is_root: uid == 0,
        }
    }

    #[test]
    fn a_pinned_create_forwards_the_numbers_it_judged() {
        let id = Identity::at_create("app", resolved("app", 1000, 1000), PinUser::On);
        assert!(id.pinned);
        assert_eq!(id.forwarded, "1000:1000");
        assert!(id.is_stored_as("1000:1000"));
        assert!(!id.is_stored_as("app") && !id.is_stored_as(""));
        // The container's default user is pinned the same way.
        let id = Identity::at_create("", resolved("app", 1000, 1000), PinUser::On);
        assert_eq!((id.requested.as_str(), id.forwarded.as_str()), ("", "1000:1000"));
    }

    #[test]
    fn unpinned_creates_forward_the_request_and_the_daemon_stores_the_default() {
        let id = Identity::at_create("", resolved("app", 1000, 1000), PinUser::Off);
        assert!(!id.pinned);
        assert_eq!(id.forwarded, "");
        assert!(id.is_stored_as("app"), "Docker stores the container's default");
        assert!(id.is_stored_as(""), "Podman stores what it was given");
        assert!(!id.is_stored_as("root"));
    }

    #[test]
    fn only_names_are_unpinned() {
        for spec in ["", "0:0", "1000:1000", "4294967295:0"] {
            assert!(is_pinned_form(spec), "{spec:?}");
        }
        for spec in [
            "app",
            "1000",
            "app:1000",
            "1000:app",
            "+1000:1000",
            "1000:-1",
            " 1000:1000",
            "1000:1000 ",
            ":",
            "1:",
        ] {
            assert!(!is_pinned_form(spec), "{spec:?}");
        }
        assert!(Identity::stored("1000:1000", resolved("1000:1000", 1000, 1000)).pinned);
        assert!(!Identity::stored("app", resolved("app", 1000, 1000)).pinned);
    }

    #[test]
    fn policy_sees_the_request_the_resolution_and_the_pin() {
        let id = Identity::at_create("app", resolved("app", 1000, 1000), PinUser::On);
        let value = serde_json::to_value(&id).expect("json");
        for key in [
            "requested",
            "spec",
            "name",
            "uid",
            "gid",
            "groups",
            "is_root",
            "pinned",
            "forwarded",
            "applied_groups",
        ] {
            assert!(value.get(key).is_some(), "{key} missing in {value}");
        }
    }

    #[test]
    fn a_group_file_that_renames_the_execs_gids_is_refused() {
        let pinned = || Identity::at_create("app", resolved("app", 1000, 1000), PinUser::On);
        let clean: &[u8] = b"root:x:0:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:\n";
        let id = pinned().with_applied_groups(&["audio".into()], Some(clean)).expect("clean file");
        assert_eq!(id.applied_groups, vec![29, 1000], "pinned: no /etc/group memberships");
        let unpinned = Identity::at_create("app", resolved("app", 1000, 1000), PinUser::Off);
        assert_eq!(
            unpinned.with_applied_groups(&[], Some(clean)).expect("clean").applied_groups,
            vec![10, 1000]
        );

        let renamed: &[u8] = b"root:x:0:\n1000:x:0:\napp:x:1000:\n";
        let err = pinned().with_applied_groups(&[], Some(renamed)).expect_err("gid 1000 would become 0");
        assert!(err.contains("[0] instead of [1000]"), "{err}");
        assert!(pinned().with_applied_groups(&["ghosts".into()], Some(clean)).is_err());
    }

    #[test]
    fn a_group_file_two_runtimes_read_differently_is_refused() {
        // The last line, without a newline, ends exactly on runc 1.1.5's 4 KiB
        // read chunk: runc 1.1.5 loses it, newer readers keep it.
        let mut group = b"0:x:1000:".to_vec();
        group.resize(4096, b'y');
        let id = Identity::at_create("app", resolved("app", 1000, 1000), PinUser::On);
        let err = id.with_applied_groups(&["0".into()], Some(&group)).expect_err("ambiguous");
        assert!(err.contains("read the container's /etc/group differently"), "{err}");
    }
}
