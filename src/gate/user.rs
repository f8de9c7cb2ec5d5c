//! Which user an exec runs as, resolved the way the daemon resolves it at start:
//! the user spec read against the container's own `/etc/passwd` and `/etc/group`
//! with the parsing rules of the runtime's user package (runc 1.1.5's
//! `libcontainer/user`, which dockerd 20.10 vendors; moby/sys/user is the same
//! code), quirks included, byte for byte.
//!
//! dockerd calls `user.GetExecUserPath(spec, nil, passwd, group)` and converts
//! the ids it gets to `uint32` (`daemon/oci_linux.go`, `getUser`). [`exec_user`]
//! is `GetExecUser` with no defaults; [`resolve`] adds the conversion.
//! `tests/user_oracle.rs` checks both against the Go code itself.
//!
//! Where the runtime's reading is surprising, this module follows it:
//! - files are bytes, never decoded: names compare as raw bytes, so a name that
//!   is invalid UTF-8 never equals the spec (which the daemon got from JSON and
//!   is therefore valid UTF-8);
//! - every line goes through Go's `bytes.TrimSpace`, which trims the Unicode
//!   `White_Space` set (`\v`, U+0085, U+00A0, U+3000 …), not just ASCII;
//! - passwd is read with `bufio.Scanner`: a line of 64 KiB or more makes the
//!   read fail, and the runtime then refuses every spec;
//! - group is read with `bufio.Reader.ReadLine` in 4 KiB chunks: long lines are
//!   fine, `#` lines are comments (in passwd they are entries), and a last line
//!   with no newline whose length ends exactly on a chunk boundary is lost.
//!   Newer daemons (moby/sys/user after v0.4.0) keep it: a supplementary
//!   group only they apply is reported apart ([`ExecUser::lost_sgid`]) and
//!   [`resolve`] counts it, so policy sees the larger set;
//! - numeric fields are Go's `strconv.Atoi` with the error ignored: text reads
//!   as 0, a number past the `int64` range reads as the nearest bound.

use serde::Serialize;

/// The effective identity an exec runs with, as the daemon hands it to the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveUser {
    /// The spec as the daemon will read it (the exec's, else the container's default).
    pub spec: String,
    /// The name of the passwd entry the spec matched, if any (display only:
    /// bytes that are not UTF-8 are shown as U+FFFD).
    pub name: Option<String>,
    /// Resolved uid.
    pub uid: u32,
    /// Resolved primary gid.
    pub gid: u32,
    /// Supplementary gids from `/etc/group` membership.
    pub groups: Vec<u32>,
    /// `uid == 0`.
    pub is_root: bool,
}

/// What the runtime's `GetExecUser` answers, before the daemon's `uint32` conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// `Uid` (Go `int`).
    pub uid: i64,
    /// `Gid`.
    pub gid: i64,
    /// `Sgids`, in `/etc/group` order, duplicates kept.
    pub sgids: Vec<i64>,
    /// `Home`: the matched entry's sixth field.
    pub home: Vec<u8>,
    /// The matched passwd entry's name (the runtime's `matchedUserName`), if one matched.
    pub name: Option<Vec<u8>>,
    /// Not runc's: the gid of the group file's last line when runc 1.1.5
    /// loses it (no newline, and the file ends exactly on a 4 KiB chunk of
    /// it) and the user is a member. Newer daemons (moby/sys/user after
    /// v0.4.0, read with `bufio.Scanner`) keep the line and append this gid to
    /// the supplementary groups.
    pub lost_sgid: Option<i64>,
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
    /// The runtime cannot read the passwd file at all (`bufio.Scanner: token too long`).
    #[error("the container's /etc/passwd has a line of 64 KiB or more, which the runtime cannot read")]
    LongLine,
}

/// The files a spec is resolved against; `None` where the container has none.
pub struct Files<'a> {
    /// `/etc/passwd` contents.
    pub passwd: Option<&'a [u8]>,
    /// `/etc/group` contents.
    pub group: Option<&'a [u8]>,
}

/// Numeric ids without a passwd/group entry must lie in this range (runc's
/// `minID`/`maxID`); ids taken from an entry are not checked.
const ID_RANGE: std::ops::RangeInclusive<i64> = 0..=i32::MAX as i64;

fn in_range(id: i64) -> Result<i64, UserError> {
    if ID_RANGE.contains(&id) { Ok(id) } else { Err(UserError::Range(id)) }
}

/// Resolves `spec` as the daemon does: `GetExecUser` with no defaults, then
/// ids truncated to `uint32`. The supplementary groups are those of either
/// runtime lineage: runc 1.1.5's, plus [`ExecUser::lost_sgid`].
pub fn resolve(spec: &str, files: &Files) -> Result<EffectiveUser, UserError> {
    let user = exec_user(spec, files)?;
    // Go's uint32(int) keeps the low 32 bits, as `as` does.
    let uid = user.uid as u32;
    Ok(EffectiveUser {
        spec: spec.to_owned(),
        name: user.name.map(|name| String::from_utf8_lossy(&name).into_owned()),
        uid,
        gid: user.gid as u32,
        groups: user.sgids.iter().chain(&user.lost_sgid).map(|&g| g as u32).collect(),
        is_root: uid == 0,
    })
}

/// runc's `GetExecUser(spec, nil, passwd, group)`.
pub fn exec_user(spec: &str, files: &Files) -> Result<ExecUser, UserError> {
    // parseLine(spec, &userArg, &groupArg): parts past the second are ignored.
    let mut parts = spec.split(':');
    let user_arg = parts.next().unwrap_or_default();
    let group_arg = parts.next().unwrap_or_default();
    let uid_arg = go::atoi(user_arg.as_bytes()).ok();
    let gid_arg = go::atoi(group_arg.as_bytes()).ok();

    // The defaults are all zero: an empty spec looks for the first uid 0 entry.
    let mut user =
        ExecUser { uid: 0, gid: 0, sgids: Vec::new(), home: Vec::new(), name: None, lost_sgid: None };

    // A missing file is a nil reader: no entries, no error.
    let matched = match files.passwd {
        Some(passwd) => first_user(passwd, |u| {
            if user_arg.is_empty() {
                u.uid == 0
            } else if let Some(uid) = uid_arg {
                u.uid == uid
            } else {
                u.name == user_arg.as_bytes()
            }
        })?,
        None => None,
    };
    if let Some(entry) = matched {
        user.uid = entry.uid;
        user.gid = entry.gid;
        user.home = entry.home.to_vec();
        user.name = Some(entry.name.to_vec());
    } else if !user_arg.is_empty() {
        // Only a number may name a user without an entry.
        let uid = uid_arg.ok_or_else(|| UserError::NoUser(user_arg.to_owned()))?;
        user.uid = in_range(uid)?;
    }

    // The runtime tests `matchedUserName != ""`: an entry with an empty name
    // brings no supplementary groups.
    let matched_name = user.name.as_deref().filter(|name| !name.is_empty());
    if group_arg.is_empty() && matched_name.is_none() {
        return Ok(user);
    }
    let groups = files.group.map(|group| {
        matching_groups(group, |g| {
            if group_arg.is_empty() {
                g.members().any(|member| Some(member) == matched_name)
            } else if let Some(gid) = gid_arg {
                g.gid == gid
            } else {
                g.name == group_arg.as_bytes()
            }
        })
    });
    let (groups, lost) = groups.unwrap_or_default();
    if !group_arg.is_empty() {
        // A lost last line changes nothing here on any daemon: a gid matches
        // only its own number, and a name runc 1.1.5 cannot find is refused.
        user.gid = match groups.first() {
            Some(&gid) => gid,
            None => in_range(gid_arg.ok_or_else(|| UserError::NoGroup(group_arg.to_owned()))?)?,
        };
    } else {
        user.sgids = groups;
        user.lost_sgid = lost;
    }
    Ok(user)
}

/// `bufio.MaxScanTokenSize`: the passwd scanner's buffer never grows past this,
/// so a line (with its `\r`, without its `\n`) this long cannot be read.
const MAX_SCAN_TOKEN: usize = 64 * 1024;

/// `bufio.Reader`'s default size: group lines are read in chunks of this.
const READER_SIZE: usize = 4096;

/// One passwd entry, as `parseLine` fills `User`.
struct PasswdEntry<'a> {
    name: &'a [u8],
    uid: i64,
    gid: i64,
    home: &'a [u8],
}

/// One group entry, as `parseLine` fills `Group`.
struct GroupEntry<'a> {
    name: &'a [u8],
    gid: i64,
    /// The fourth field, unsplit.
    list: &'a [u8],
}

impl<'a> GroupEntry<'a> {
    /// `Group.List`: the list split on `,`; nothing when it is empty (not one
    /// empty name).
    fn members(&self) -> impl Iterator<Item = &'a [u8]> {
        let list = self.list;
        (!list.is_empty()).then(|| list.split(|&b| b == b',')).into_iter().flatten()
    }
}

/// `parseLine`'s split: every `:` separates, missing fields are empty.
fn field(line: &[u8], index: usize) -> &[u8] {
    line.split(|&b| b == b':').nth(index).unwrap_or_default()
}

/// A numeric field: `Atoi` with its error dropped, as `parseParts` does.
fn number(line: &[u8], index: usize) -> i64 {
    go::atoi(field(line, index)).unwrap_or_else(|lossy| lossy)
}

fn passwd_entry(line: &[u8]) -> PasswdEntry<'_> {
    // name:password:uid:gid:gecos:home:shell
    PasswdEntry { name: field(line, 0), uid: number(line, 2), gid: number(line, 3), home: field(line, 5) }
}

fn group_entry(line: &[u8]) -> GroupEntry<'_> {
    // name:password:gid:member,member…
    GroupEntry { name: field(line, 0), gid: number(line, 2), list: field(line, 3) }
}

/// `ParsePasswdFilter` keeping only the first match: every line is still read,
/// because a line too long for the scanner anywhere fails the whole read.
fn first_user<'a>(
    passwd: &'a [u8],
    matches: impl Fn(&PasswdEntry<'a>) -> bool,
) -> Result<Option<PasswdEntry<'a>>, UserError> {
    let mut found = None;
    for line in go::scan_lines(passwd, MAX_SCAN_TOKEN) {
        let line = go::trim_space(line.map_err(|_| UserError::LongLine)?);
        if line.is_empty() || found.is_some() {
            continue;
        }
        let entry = passwd_entry(line);
        if matches(&entry) {
            found = Some(entry);
        }
    }
    Ok(found)
}

/// The group file's entries in the order the runtime's loop reads them, and
/// the entry on the last line runc 1.1.5 loses, if it loses one.
fn group_entries(group: &[u8]) -> (Vec<GroupEntry<'_>>, Option<GroupEntry<'_>>) {
    let entry = |line| {
        let line = go::trim_space(line);
        (!line.is_empty() && line[0] != b'#').then(|| group_entry(line))
    };
    let mut lines = go::ReadLines::new(group, READER_SIZE);
    let entries = lines.by_ref().filter_map(entry).collect();
    (entries, lines.lost().and_then(entry))
}

/// `ParseGroupFilter`: the gids of matching entries, in file order; then the
/// gid of the last line runc 1.1.5 loses, if that line matches too.
fn matching_groups(group: &[u8], matches: impl Fn(&GroupEntry) -> bool) -> (Vec<i64>, Option<i64>) {
    let (entries, lost) = group_entries(group);
    let gids = entries.iter().filter(|e| matches(e)).map(|e| e.gid).collect();
    (gids, lost.filter(|e| matches(e)).map(|e| e.gid))
}

/// runc 1.1.5's `GetAdditionalGroups(args, group)`, with which the daemon
/// resolves a container's `--group-add` entries and runc before 1.3 resolves
/// an exec's supplementary gids again, spelled as decimal strings, inside the
/// container. For each argument the first entry in file order whose *name*
/// equals it, or whose gid in decimal does, and whose gid is not taken yet,
/// gives its gid; else a decimal number counts as itself (range-checked). So a
/// group line named `1000` with gid 0 turns gid 1000 into gid 0. `last` says
/// whether the last line runc 1.1.5 can lose (see [`ExecUser::lost_sgid`]) is
/// read, as newer readers do. Sorted and without repeats, as `uint32`s (Go
/// returns a map's keys; `setgroups` takes 32-bit gids).
pub fn additional_groups(
    args: &[String],
    group: Option<&[u8]>,
    last: LastLine,
) -> Result<Vec<u32>, UserError> {
    let (mut entries, lost) = group.map(group_entries).unwrap_or_default();
    if last == LastLine::Kept {
        entries.extend(lost);
    }
    let named = |e: &GroupEntry, arg: &str| e.name == arg.as_bytes() || e.gid.to_string() == arg;
    let mut gids = std::collections::BTreeSet::new();
    for arg in args {
        let found = entries.iter().find(|e| named(e, arg) && !gids.contains(&e.gid));
        match found {
            Some(entry) => gids.insert(entry.gid),
            None => {
                let gid = go::atoi(arg.as_bytes()).map_err(|_| UserError::NoGroup(arg.clone()))?;
                gids.insert(in_range(gid)?)
            }
        };
    }
    let gids: std::collections::BTreeSet<u32> = gids.into_iter().map(|gid| gid as u32).collect();
    Ok(gids.into_iter().collect())
}

/// Whether a group file's last line is read when it has no newline and ends
/// exactly on one of runc 1.1.5's 4 KiB read chunks: runc 1.1.5 loses it,
/// newer readers (moby/sys/user after v0.4.0) keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastLine {
    /// Read as runc 1.1.5 reads it.
    Lost,
    /// Read as newer readers do.
    Kept,
}

/// The Go standard library pieces the runtime's reader is made of (Go 1.19).
mod go {
    /// UTF-8 encodings of the runes `unicode.IsSpace` accepts: Latin-1's
    /// `\t \n \v \f \r`, space, U+0085, U+00A0, then Unicode `White_Space`.
    const SPACES: [&str; 25] = [
        "\t", "\n", "\u{b}", "\u{c}", "\r", " ", "\u{85}", "\u{a0}", "\u{1680}", "\u{2000}", "\u{2001}",
        "\u{2002}", "\u{2003}", "\u{2004}", "\u{2005}", "\u{2006}", "\u{2007}", "\u{2008}", "\u{2009}",
        "\u{200a}", "\u{2028}", "\u{2029}", "\u{202f}", "\u{205f}", "\u{3000}",
    ];

    /// `bytes.TrimSpace`. Go decodes runes from each end and stops at the
    /// first that is not a space; bytes that are not valid UTF-8 decode as
    /// U+FFFD, which is not one. A valid encoding decodes to its rune from
    /// either end, so matching the encodings is the same test.
    pub fn trim_space(mut s: &[u8]) -> &[u8] {
        while let Some(rest) = SPACES.iter().find_map(|sp| s.strip_prefix(sp.as_bytes())) {
            s = rest;
        }
        while let Some(rest) = SPACES.iter().find_map(|sp| s.strip_suffix(sp.as_bytes())) {
            s = rest;
        }
        s
    }

    /// `strconv.Atoi` on a 64-bit platform (`ParseInt(s, 10, 0)`; its fast
    /// path for short input gives the same answers). `Err` holds the value Go
    /// returns alongside the error: 0 for a syntax error, the nearest `int64`
    /// bound for a range error. Digits are checked one by one, so a number
    /// that overflows before a stray character is a range error.
    pub fn atoi(s: &[u8]) -> Result<i64, i64> {
        let (neg, digits) = match s.split_first() {
            None => return Err(0),
            Some((b'+', rest)) => (false, rest),
            Some((b'-', rest)) => (true, rest),
            Some(_) => (false, s),
        };
        let unsigned = parse_uint(digits)?;
        let limit = 1u64 << 63;
        match (neg, unsigned) {
            (false, Ok(n)) if n < limit => Ok(n as i64),
            (false, _) => Err(i64::MAX),
            (true, Ok(n)) if n <= limit => Ok((n as i64).wrapping_neg()),
            (true, _) => Err(i64::MIN),
        }
    }

    /// `ParseUint(s, 10, 64)`: `Err(0)` on a syntax error, `Ok(Err(()))` on overflow.
    fn parse_uint(s: &[u8]) -> Result<Result<u64, ()>, i64> {
        if s.is_empty() {
            return Err(0);
        }
        let mut n: u64 = 0;
        for &c in s {
            if !c.is_ascii_digit() {
                return Err(0);
            }
            match n.checked_mul(10).and_then(|n| n.checked_add(u64::from(c - b'0'))) {
                Some(next) => n = next,
                None => return Ok(Err(())),
            }
        }
        Ok(Ok(n))
    }

    /// A line `bufio.Scanner` cannot hold.
    #[derive(Debug, PartialEq, Eq)]
    pub struct TooLong;

    /// `bufio.Scanner` with `ScanLines` over a file read in full: lines split
    /// on `\n`, one trailing `\r` dropped, a last line without `\n` kept, and
    /// `ErrTooLong` (after which nothing more is read) for a line whose bytes
    /// before the `\n` fill the whole `max`-byte buffer.
    pub fn scan_lines(data: &[u8], max: usize) -> impl Iterator<Item = Result<&[u8], TooLong>> {
        let mut rest = Some(data);
        std::iter::from_fn(move || {
            let data = rest.filter(|d| !d.is_empty())?;
            let (line, next) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..i], &data[i + 1..]),
                None => (data, &data[data.len()..]),
            };
            if line.len() >= max {
                rest = None;
                return Some(Err(TooLong));
            }
            rest = Some(next);
            Some(Ok(line.strip_suffix(b"\r").unwrap_or(line)))
        })
    }

    /// The runtime's group loop over `bufio.Reader.ReadLine`, which returns a
    /// line in buffer-sized chunks: the whole lines, `\n` or `\r\n` dropped.
    /// Modelled on the reader's own state, reading from a regular file (a read
    /// fills what it can; the end of the file is a separate, empty read).
    pub struct ReadLines<'a> {
        src: &'a [u8],
        size: usize,
        /// Where in `src` the buffer's unread bytes start (`b.r`) and end (`b.w`).
        r: usize,
        w: usize,
        /// A read returned end-of-file and no one has seen it yet (`b.err`).
        eof: bool,
        /// The partial line the loop dropped at the end of the file.
        lost: Option<(usize, usize)>,
    }

    /// Why `ReadSlice` stopped short of a newline.
    enum Short {
        Full,
        Eof,
    }

    impl<'a> ReadLines<'a> {
        pub fn new(src: &'a [u8], size: usize) -> Self {
            Self { src, size, r: 0, w: 0, eof: false, lost: None }
        }

        /// The last line, when the runtime's loop lost it: it had no newline
        /// and ended exactly on a chunk boundary, so the end of the file came
        /// between its chunks.
        pub fn lost(&self) -> Option<&'a [u8]> {
            self.lost.map(|(start, end)| &self.src[start..end])
        }

        /// `fill`: slide the unread bytes to the front, then one read.
        fn fill(&mut self) {
            let room = self.size - (self.w - self.r);
            let n = room.min(self.src.len() - self.w);
            if n == 0 {
                self.eof = true;
            }
            self.w += n;
        }

        /// `ReadSlice('\n')`, as the range of `src` it returns.
        fn read_slice(&mut self) -> (usize, usize, Option<Short>) {
            let mut searched = 0;
            loop {
                let start = self.r;
                if let Some(i) = self.src[start + searched..self.w].iter().position(|&b| b == b'\n') {
                    self.r = start + searched + i + 1;
                    return (start, self.r, None);
                }
                if self.eof {
                    self.eof = false;
                    self.r = self.w;
                    return (start, self.w, Some(Short::Eof));
                }
                if self.w - self.r >= self.size {
                    self.r = self.w;
                    return (start, self.w, Some(Short::Full));
                }
                searched = self.w - self.r;
                self.fill();
            }
        }

        /// `ReadLine`: `(start, end, is_prefix)`, or `None` at the end of the file.
        fn read_line(&mut self) -> Option<(usize, usize, bool)> {
            let (start, mut end, short) = self.read_slice();
            if let Some(Short::Full) = short {
                // A `\r` that may begin a `\r\n` goes back for the next call.
                if end > start && self.src[end - 1] == b'\r' {
                    self.r -= 1;
                    end -= 1;
                }
                return Some((start, end, true));
            }
            if start == end {
                return match short {
                    Some(_) => None,
                    None => Some((start, end, false)),
                };
            }
            if self.src[end - 1] == b'\n' {
                end -= 1;
                if end > start && self.src[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            Some((start, end, false))
        }
    }

    impl<'a> Iterator for ReadLines<'a> {
        type Item = &'a [u8];

        /// One whole line. The chunks of a line are contiguous in the file
        /// (a `\r` put back is the next chunk's first byte), so the line is the
        /// span from the first chunk's start to the last one's end. The end of
        /// the file met between chunks ends the loop and loses the partial line,
        /// as the runtime's `return out, nil` does.
        fn next(&mut self) -> Option<&'a [u8]> {
            let mut whole: Option<(usize, usize)> = None;
            loop {
                let Some((start, end, is_prefix)) = self.read_line() else {
                    self.lost = self.lost.or(whole);
                    return None;
                };
                let span = match whole {
                    Some((first, _)) => (first, end),
                    None => (start, end),
                };
                whole = Some(span);
                if !is_prefix {
                    return Some(&self.src[span.0..span.1]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] =
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534:::\n";
    const GROUP: &[u8] = b"root:x:0:\napp:x:1000:\nwheel:x:10:app,other\nnogroup:x:65534:\n";

    fn ids(spec: &str, passwd: &[u8], group: &[u8]) -> Result<(u32, u32, Vec<u32>), UserError> {
        resolve(spec, &Files { passwd: Some(passwd), group: Some(group) }).map(|u| (u.uid, u.gid, u.groups))
    }

    fn uid(spec: &str, passwd: &[u8]) -> Result<u32, UserError> {
        ids(spec, passwd, b"").map(|i| i.0)
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
        let user = resolve("1000", &Files { passwd: Some(PASSWD), group: None }).expect("resolves");
        assert_eq!(user.name.as_deref(), Some("app"), "the matched entry's name is reported");
        let user = resolve("4242", &Files { passwd: Some(PASSWD), group: None }).expect("resolves");
        assert_eq!(user.name, None);
    }

    #[test]
    fn spellings_of_zero_are_root() {
        for spec in ["0", "00", "000", "+0", "-0", "root", "0:0", "0000000000000000000000000"] {
            let user = resolve(spec, &Files { passwd: Some(PASSWD), group: Some(GROUP) }).expect(spec);
            assert!(user.is_root, "{spec} -> {user:?}");
        }
    }

    #[test]
    fn runtime_passwd_quirks() {
        // First of duplicate names wins.
        assert_eq!(
            ids("dup", b"dup:x:0:0::/:/bin/sh\ndup:x:1000:1000::/:/bin/sh\n", b""),
            Ok((0, 0, vec![]))
        );
        // A non-numeric uid field reads as 0.
        assert_eq!(ids("weird", b"weird:x:abc:5::/:/bin/sh\n", b""), Ok((0, 5, vec![])));
        // A line holding just a name is uid 0, gid 0.
        assert_eq!(ids("bare", b"bare\n", b""), Ok((0, 0, vec![])));
        // `user:group:more` — the third part is ignored.
        assert_eq!(ids("app:x:0", PASSWD, b"x:x:33:\n"), Ok((1000, 33, vec![])));
        // Whitespace around lines is trimmed, blank lines skipped.
        assert_eq!(ids("app", b"\n  app:x:7:8::/:/bin/sh  \n", b""), Ok((7, 8, vec![])));
        // A spec overflowing int64 is not a number: it is looked up as a name.
        assert!(ids("99999999999999999999", PASSWD, GROUP).is_err());
        // Ids without an entry must be in 0..=2^31-1 (the runtime refuses the rest).
        assert_eq!(ids("-1", PASSWD, GROUP), Err(UserError::Range(-1)));
        assert_eq!(ids("4294967296", PASSWD, GROUP), Err(UserError::Range(4294967296)));
        assert_eq!(ids("app:4294967296", PASSWD, GROUP), Err(UserError::Range(4294967296)));
        assert_eq!(ids("2147483647", PASSWD, GROUP).map(|i| i.0), Ok(i32::MAX as u32));
        // A `#` line is an entry in passwd (not in group).
        assert_eq!(ids("#x", b"#x:x:5:6\n", b"#g:x:7:#x\n"), Ok((5, 6, vec![])));
    }

    #[test]
    fn ids_from_entries_are_not_range_checked_and_wrap_to_32_bits() {
        // Regression: an uid field past int64 reads as the nearest bound (Atoi's
        // value beside its range error), not as 0.
        assert_eq!(uid("a", b"a:x:99999999999999999999:0\n"), Ok(u32::MAX));
        assert_eq!(uid("a", b"a:x:-99999999999999999999:0\n"), Ok(0));
        // Overflow is found before the stray letter.
        assert_eq!(uid("a", b"a:x:99999999999999999999x:0\n"), Ok(u32::MAX));
        assert_eq!(uid("a", b"a:x:9x9999999999999999999:0\n"), Ok(0));
        // 2^32 from an entry is not refused: the daemon's uint32 makes it root.
        let user = resolve("a", &Files { passwd: Some(b"a:x:4294967296:1\n"), group: None }).expect("a");
        assert!(user.is_root);
        assert_eq!(uid("a", b"a:x:-1:0\n"), Ok(u32::MAX));
        assert_eq!(uid("a", b"a:x:+1000:0\n"), Ok(1000));
        assert_eq!(uid("-9223372036854775808", b"a:x:-9223372036854775808:0\n"), Ok(0));
    }

    /// Regression: each rune Go's `bytes.TrimSpace` trims hides a passwd line's
    /// real name from a checker that trims less (`\v` is not in Rust's ASCII
    /// whitespace). The daemon reads `<space>app` as `app`, uid 0.
    #[test]
    fn every_go_space_is_trimmed() {
        let spaces = [
            "\t", "\n", "\u{b}", "\u{c}", "\r", " ", "\u{85}", "\u{a0}", "\u{1680}", "\u{2000}", "\u{2001}",
            "\u{2002}", "\u{2003}", "\u{2004}", "\u{2005}", "\u{2006}", "\u{2007}", "\u{2008}", "\u{2009}",
            "\u{200a}", "\u{2028}", "\u{2029}", "\u{202f}", "\u{205f}", "\u{3000}",
        ];
        for space in spaces {
            for line in [format!("{space}app:x:0:0::/:/bin/sh"), format!("{space}{space}app{space}")] {
                let passwd = format!("{line}\napp:x:1000:1000::/home/app:/bin/sh\n");
                assert_eq!(uid("app", passwd.as_bytes()), Ok(0), "{space:?}");
            }
            // A group line is trimmed too.
            let group = format!("{space}wheel:x:10:app{space}\n");
            assert_eq!(ids("app", PASSWD, group.as_bytes()).map(|i| i.2), Ok(vec![10]), "{space:?}");
            // Inside a line it is part of the name.
            let passwd = format!("a{space}pp:x:0:0\napp:x:1000:1000\n");
            assert_eq!(uid("app", passwd.as_bytes()), Ok(1000), "{space:?}");
        }
        // Not Go spaces: U+200B, U+FEFF, U+180E, and the ASCII separators 0x1c-0x1f.
        for other in ["\u{200b}", "\u{feff}", "\u{180e}", "\u{1c}", "\u{1f}"] {
            let passwd = format!("{other}app:x:0:0\napp:x:1000:1000\n");
            assert_eq!(uid("app", passwd.as_bytes()), Ok(1000), "{other:?}");
        }
    }

    /// Regression: names are bytes. `\xff` is not U+FFFD, so a spec of U+FFFD
    /// (all a JSON body can carry for it) skips the `\xff` entry.
    #[test]
    fn names_compare_as_bytes() {
        let passwd = b"\xff:x:1000:1000\n\xef\xbf\xbd:x:0:0\n";
        assert_eq!(uid("\u{fffd}", passwd), Ok(0));
        // An invalid byte sequence is not trimmed, even next to a space.
        assert_eq!(uid("app", b"\x80 app:x:0:0\napp:x:7:7\n"), Ok(7));
        assert_eq!(uid("app", b"app\xc2:x:0:0\napp:x:7:7\n"), Ok(7));
        // A truncated U+3000 is not U+3000.
        assert_eq!(uid("app", b"\xe3\x80app:x:0:0\napp:x:7:7\n"), Ok(7));
        // NUL is an ordinary byte, neither trimmed nor a terminator.
        assert_eq!(uid("app", b"\0app:x:0:0\napp:x:7:7\n"), Ok(7));
        assert_eq!(uid("app\0", b"app:x:0:0\napp\0:x:7:7\n"), Ok(7));
        let user = resolve("1", &Files { passwd: Some(b"\xffroot:x:1:1\n"), group: None }).expect("1");
        assert_eq!(user.name.as_deref(), Some("\u{fffd}root"));
    }

    #[test]
    fn passwd_lines_of_64_kib_fail_the_read() {
        let long = |n: usize, end: &str| format!("app:x:1000:1000::/:/bin/sh\n{}{end}", "x".repeat(n));
        assert_eq!(uid("app", long(65535, "\n").as_bytes()), Ok(1000));
        assert_eq!(uid("app", long(65535, "").as_bytes()), Ok(1000));
        assert_eq!(uid("app", long(65534, "\r\n").as_bytes()), Ok(1000));
        assert_eq!(uid("app", long(65536, "\n").as_bytes()), Err(UserError::LongLine));
        assert_eq!(uid("app", long(65536, "").as_bytes()), Err(UserError::LongLine));
        assert_eq!(uid("app", long(65535, "\r\n").as_bytes()), Err(UserError::LongLine));
        assert_eq!(uid("1", long(70000, "\n").as_bytes()), Err(UserError::LongLine));
        // A missing file is not an error.
        assert_eq!(resolve("", &Files { passwd: None, group: None }).map(|u| u.uid), Ok(0));
    }

    #[test]
    fn group_lines_are_read_in_chunks() {
        let group = |pad: usize, end: &str| format!("wheel:x:10:app,{}{end}", "y".repeat(pad));
        // "wheel:x:10:app," is 15 bytes: runc 1.1.5 loses a last line of
        // exactly 4096 or 8192 bytes with no newline (newer daemons keep it);
        // one byte more or less, or a newline, and it counts everywhere.
        let sgids = |text: &str| {
            exec_user("app", &Files { passwd: Some(PASSWD), group: Some(text.as_bytes()) })
                .map(|u| (u.sgids, u.lost_sgid))
        };
        for (len, end, seen) in
            [(4096, "", false), (8192, "", false), (4095, "", true), (4097, "", true), (4096, "\n", true)]
        {
            let text = group(len - 15, end);
            let want = if seen { (vec![10], None) } else { (vec![], Some(10)) };
            assert_eq!(sgids(&text), Ok(want), "{len}{end:?}");
            // Policy sees the group either way.
            assert_eq!(ids("app", PASSWD, text.as_bytes()).map(|i| i.2), Ok(vec![10]), "{len}{end:?}");
        }
        // A lost line the user is not in, or a comment, changes nothing.
        let text = format!("g:x:10:app\nwheel:x:0:x,{}", "y".repeat(4096 - 13));
        assert_eq!(sgids(&text), Ok((vec![10], None)));
        let text = format!("g:x:10:app\n#heel:x:0:app,{}", "y".repeat(4096 - 15));
        assert_eq!(sgids(&text), Ok((vec![10], None)));
        // With an explicit group the lost line is simply absent, as in runc 1.1.5.
        let text = group(4096 - 15, "");
        assert_eq!(ids("app:wheel", PASSWD, text.as_bytes()), Err(UserError::NoGroup("wheel".into())));
        assert_eq!(ids("app:10", PASSWD, text.as_bytes()), Ok((1000, 10, vec![])));
        // A `\r` at a chunk's end goes to the next chunk: the line stays whole.
        let text = format!("wheel:x:10:app,{}\r", "y".repeat(4096 - 16));
        assert_eq!(sgids(&text), Ok((vec![10], None)));
        // Comments and blank lines.
        assert_eq!(
            ids("app", PASSWD, b"# wheel:x:10:app\n\n  #x:x:11:app\nw:x:12:app\n").map(|i| i.2),
            Ok(vec![12])
        );
    }

    #[test]
    fn supplementary_groups() {
        // Duplicates kept, in file order; empty members never match.
        let group = b"a:x:3:app\nb:x:2:x,app\nc:x:3:app\nd:x:4:,\ne:x:5:\n";
        assert_eq!(ids("app", PASSWD, group).map(|i| i.2), Ok(vec![3, 2, 3]));
        // An entry with an empty name brings no supplementary groups.
        assert_eq!(ids("", b":x:0:0\n", b"e:x:5:,\n"), Ok((0, 0, vec![])));
        // An empty spec matches the first uid-0 entry, whatever its name.
        assert_eq!(ids("", b"toor:x:0:7:::\n", b"g:x:9:toor\n"), Ok((0, 7, vec![9])));
        // A numeric group takes the first entry with that gid; `app:` is `app`.
        assert_eq!(ids("app:+10", PASSWD, b"w:x:010:\n"), Ok((1000, 10, vec![])));
        assert_eq!(ids("app:", PASSWD, GROUP), Ok((1000, 1000, vec![10])));
    }

    #[test]
    fn go_atoi() {
        use super::go::atoi;
        for (text, want) in [
            ("0", Ok(0)),
            ("-0", Ok(0)),
            ("+1000", Ok(1000)),
            ("007", Ok(7)),
            ("", Err(0)),
            ("+", Err(0)),
            ("-", Err(0)),
            ("+-1", Err(0)),
            (" 1", Err(0)),
            ("1_000", Err(0)),
            ("0x10", Err(0)),
            ("9223372036854775807", Ok(i64::MAX)),
            ("9223372036854775808", Err(i64::MAX)),
            ("-9223372036854775808", Ok(i64::MIN)),
            ("-9223372036854775809", Err(i64::MIN)),
            ("18446744073709551616", Err(i64::MAX)),
            ("-18446744073709551616x", Err(i64::MIN)),
            ("00000000000000000000000000042", Ok(42)),
        ] {
            assert_eq!(atoi(text.as_bytes()), want, "{text:?}");
        }
    }

    #[test]
    fn missing_files() {
        let none = Files { passwd: None, group: None };
        assert_eq!(resolve("1000", &none).map(|u| u.uid), Ok(1000));
        assert!(resolve("app", &none).is_err());
        assert!(resolve("", &none).is_ok_and(|u| u.is_root));
        assert_eq!(resolve("1:2", &none).map(|u| (u.uid, u.gid)), Ok((1, 2)));
        assert_eq!(resolve("1:g", &none), Err(UserError::NoGroup("g".into())));
    }

    #[test]
    fn additional_groups_match_names_before_numbers() {
        let args = |list: &[&str]| list.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        let group: &[u8] = b"root:x:0:\n1000:x:0:\n4242:x:27:\ng1000:x:1000:\naudio:x:29:\n";
        // The runc < 1.3 remap: gid 1000 spelled "1000" names the group "1000", gid 0.
        let additional_groups = |a: &[String], g| additional_groups(a, g, LastLine::Kept);
        assert_eq!(additional_groups(&args(&["1000", "4242"]), Some(group)), Ok(vec![0, 27]));
        assert_eq!(additional_groups(&args(&["audio", "29"]), Some(group)), Ok(vec![29]));
        assert_eq!(additional_groups(&args(&["1000"]), Some(GROUP)), Ok(vec![1000]));
        assert_eq!(additional_groups(&args(&["5000"]), None), Ok(vec![5000]), "a number needs no entry");
        assert_eq!(
            additional_groups(&args(&["ghosts"]), Some(GROUP)),
            Err(UserError::NoGroup("ghosts".into()))
        );
        assert_eq!(additional_groups(&args(&["-1"]), Some(GROUP)), Err(UserError::Range(-1)));
        // A taken gid moves on to the next matching entry.
        let twice: &[u8] = b"a:x:5:\na:x:6:\n";
        assert_eq!(additional_groups(&args(&["a", "a"]), Some(twice)), Ok(vec![5, 6]));
        // Sorted and unique after the conversion to 32 bits (found by the oracle test).
        assert_eq!(
            additional_groups(&args(&["a", "c"]), Some(b"a:x:-1:\nc:x:5:\n")),
            Ok(vec![5, 4294967295])
        );
        assert_eq!(additional_groups(&args(&["a", "0"]), Some(b"a:x:4294967296:\n")), Ok(vec![0]));
    }
}
