//! Which user an exec runs as, resolved the way the daemon resolves it at start:
//! the user spec read against the container's own `/etc/passwd` and `/etc/group`
//! with the parsing rules of the runtime's user package (moby/sys/user, the
//! runc code dockerd vendors), quirks included.

use serde::Serialize;

/// The effective identity an exec runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveUser {
    /// The spec as the daemon will read it (the exec's, else the container's default).
    pub spec: String,
    /// Resolved uid.
    pub uid: u32,
    /// Resolved primary gid.
    pub gid: u32,
    /// Supplementary gids from `/etc/group` membership.
    pub groups: Vec<u32>,
    /// `uid == 0`.
    pub is_root: bool,
}

/// Why a user spec cannot be resolved; the daemon would refuse to start it too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// A name with no passwd entry.
    #[error("no user {0:?} in the container's /etc/passwd")]
    NoUser(String),
    /// A group name with no group entry.
    #[error("no group {0:?} in the container's /etc/group")]
    NoGroup(String),
    /// A numeric id without an entry, outside what the runtime accepts.
    #[error("{0} is outside the runtime's id range 0-2147483647")]
    Range(i64),
}

/// Numeric ids without a passwd/group entry must lie in this range (runc's
/// `minID`/`maxID`); checked on dockerd 20.10: `-u 4294967296` is refused.
const ID_RANGE: std::ops::RangeInclusive<i64> = 0..=i32::MAX as i64;

fn in_range(id: i64) -> Result<i64, UserError> {
    if ID_RANGE.contains(&id) { Ok(id) } else { Err(UserError::Range(id)) }
}

/// One passwd entry, as the runtime's reader fills it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: i64,
    gid: i64,
}

/// One group entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// Go's `strconv.Atoi` on 64-bit: optional sign, decimal digits, no overflow.
fn atoi(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok()
}

/// The runtime's `parseLine`: colon-separated fields, missing ones empty,
/// numeric ones `Atoi` with errors read as 0.
fn fields(line: &str) -> Vec<&str> {
    line.split(':').collect()
}

fn field<'a>(parts: &[&'a str], index: usize) -> &'a str {
    parts.get(index).copied().unwrap_or("")
}

fn number(parts: &[&str], index: usize) -> i64 {
    atoi(field(parts, index)).unwrap_or(0)
}

/// Lines as the runtime scans them: trimmed, blank ones skipped, nothing else
/// (a `#` line is an entry named `#…`, as in the runtime).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|l| l.trim_matches(|c: char| c.is_ascii_whitespace())).filter(|l| !l.is_empty())
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    lines(text)
        .map(|line| {
            let parts = fields(line);
            PasswdEntry { name: field(&parts, 0).to_owned(), uid: number(&parts, 2), gid: number(&parts, 3) }
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    lines(text)
        .map(|line| {
            let parts = fields(line);
            let list = field(&parts, 3);
            let members =
                if list.is_empty() { Vec::new() } else { list.split(',').map(str::to_owned).collect() };
            GroupEntry { name: field(&parts, 0).to_owned(), gid: number(&parts, 2), members }
        })
        .collect()
}

/// The files a spec is resolved against; `None` where the container has none.
pub struct Files<'a> {
    /// `/etc/passwd` contents.
    pub passwd: Option<&'a str>,
    /// `/etc/group` contents.
    pub group: Option<&'a str>,
}

/// Resolves `spec` as the runtime's `GetExecUser` does with no defaults. Ids
/// are truncated to 32 bits afterwards, as the daemon converts them to `uint32`.
pub fn resolve(spec: &str, files: &Files) -> Result<EffectiveUser, UserError> {
    let parts = fields(spec);
    let user_arg = field(&parts, 0);
    let group_arg = field(&parts, 1);
    let uid_arg = atoi(user_arg);
    let gid_arg = atoi(group_arg);

    let users = files.passwd.map(parse_passwd).unwrap_or_default();
    let matched = users.iter().find(|u| match (user_arg.is_empty(), uid_arg) {
        (true, _) => u.uid == 0,
        (false, Some(uid)) => u.uid == uid,
        (false, None) => u.name == user_arg,
    });
    let (uid, mut gid, matched_name) = match (matched, uid_arg) {
        (Some(u), _) => (u.uid, u.gid, Some(u.name.as_str())),
        (None, _) if user_arg.is_empty() => (0, 0, None),
        (None, Some(uid)) => (in_range(uid)?, 0, None),
        (None, None) => return Err(UserError::NoUser(user_arg.to_owned())),
    };
    let mut groups = Vec::new();
    if !group_arg.is_empty() || matched_name.is_some() {
        let all = files.group.map(parse_group).unwrap_or_default();
        if group_arg.is_empty() {
            let name = matched_name.unwrap_or_default();
            groups =
                all.iter().filter(|g| g.members.iter().any(|m| m == name)).map(|g| g.gid as u32).collect();
        } else {
            let found = all.iter().find(|g| match gid_arg {
                Some(gid) => g.gid == gid,
                None => g.name == group_arg,
            });
            gid = match (found, gid_arg) {
                (Some(g), _) => g.gid,
                (None, Some(gid)) => in_range(gid)?,
                (None, None) => return Err(UserError::NoGroup(group_arg.to_owned())),
            };
        }
    }
    let uid = uid as u32;
    Ok(EffectiveUser { spec: spec.to_owned(), uid, gid: gid as u32, groups, is_root: uid == 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534:::\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\nnogroup:x:65534:\n";

    fn ids(spec: &str, passwd: &str, group: &str) -> Result<(u32, u32, Vec<u32>), UserError> {
        resolve(spec, &Files { passwd: Some(passwd), group: Some(group) }).map(|u| (u.uid, u.gid, u.groups))
    }

    #[test]
    fn names_numbers_and_groups() {
        assert_eq!(ids("app", PASSWD, GROUP), Ok((1000, 1000, vec![10])));
        assert_eq!(ids("1000", PASSWD, GROUP), Ok((1000, 1000, vec![10])));
        assert_eq!(ids("4242", PASSWD, GROUP), Ok((4242, 0, vec![])), "unknown uid is allowed as is");
        assert_eq!(
            ids("app:wheel", PASSWD, GROUP),
            Ok((1000, 10, vec![])),
            "explicit group: no supplementary"
        );
        assert_eq!(ids("app:77", PASSWD, GROUP), Ok((1000, 77, vec![])));
        assert_eq!(ids("", PASSWD, GROUP), Ok((0, 0, vec![])));
        assert_eq!(ids("ghost", PASSWD, GROUP), Err(UserError::NoUser("ghost".into())));
        assert_eq!(ids("app:ghosts", PASSWD, GROUP), Err(UserError::NoGroup("ghosts".into())));
    }

    #[test]
    fn spellings_of_zero_are_root() {
        for spec in ["0", "00", "000", "+0", "-0", "root", "0:0"] {
            let user = resolve(spec, &Files { passwd: Some(PASSWD), group: Some(GROUP) }).expect(spec);
            assert!(user.is_root, "{spec} -> {user:?}");
        }
    }

    #[test]
    fn runtime_passwd_quirks() {
        // First of duplicate names wins.
        assert_eq!(ids("dup", "dup:x:0:0::/:/bin/sh\ndup:x:1000:1000::/:/bin/sh\n", ""), Ok((0, 0, vec![])));
        // A non-numeric uid field reads as 0.
        assert_eq!(ids("weird", "weird:x:abc:5::/:/bin/sh\n", ""), Ok((0, 5, vec![])));
        // A line holding just a name is uid 0, gid 0.
        assert_eq!(ids("bare", "bare\n", ""), Ok((0, 0, vec![])));
        // `user:group:more` — the third part is ignored.
        assert_eq!(ids("app:x:0", PASSWD, "x:x:33:\n"), Ok((1000, 33, vec![])));
        // Whitespace around lines is trimmed, blank lines skipped.
        assert_eq!(ids("app", "\n  app:x:7:8::/:/bin/sh  \n", ""), Ok((7, 8, vec![])));
        // A uid overflowing int64 is not a number: it is looked up as a name.
        assert!(ids("99999999999999999999", PASSWD, GROUP).is_err());
        // Ids without an entry must be in 0..=2^31-1 (the runtime refuses the rest).
        assert_eq!(ids("-1", PASSWD, GROUP), Err(UserError::Range(-1)));
        assert_eq!(ids("4294967296", PASSWD, GROUP), Err(UserError::Range(4294967296)));
        assert_eq!(ids("app:4294967296", PASSWD, GROUP), Err(UserError::Range(4294967296)));
        assert_eq!(ids("2147483647", PASSWD, GROUP).map(|i| i.0), Ok(i32::MAX as u32));
    }

    #[test]
    fn missing_files() {
        let none = Files { passwd: None, group: None };
        assert_eq!(resolve("1000", &none).map(|u| u.uid), Ok(1000));
        assert!(resolve("app", &none).is_err());
        assert!(resolve("", &none).is_ok_and(|u| u.is_root));
    }
}
