//! Who is on the other end of a client connection: the kernel's answer when it
//! is accepted, and what `/proc` adds once a request needs judging.

use std::io;
use std::path::PathBuf;

use serde::Serialize;
use tokio::net::UnixStream;

/// The peer credentials of a connection (SO_PEERCRED), read once when it is
/// accepted. The pid is racy by nature: it names the process that connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Effective uid of the connecting process.
    pub uid: u32,
    /// Effective gid of the connecting process.
    pub gid: u32,
    /// Pid of the connecting process, when the kernel reports one.
    pub pid: Option<i32>,
}

impl Caller {
    /// The peer of an accepted connection; fails when the peer is already gone.
    pub fn of(stream: &UnixStream) -> io::Result<Self> {
        let cred = stream.peer_cred()?;
        Ok(Caller { uid: cred.uid(), gid: cred.gid(), pid: cred.pid() })
    }
}

/// The calling process, as policy sees it (`input.caller`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallerInfo {
    /// Effective uid (SO_PEERCRED).
    pub uid: u32,
    /// Effective gid (SO_PEERCRED).
    pub gid: u32,
    /// Pid at connect time.
    pub pid: Option<i32>,
    /// `/proc/<pid>/exe`, best effort: a pid can be reused.
    pub exe: Option<String>,
    /// `/proc/<pid>/loginuid`: the uid of the person's login session, kept across
    /// `sudo` and `su`; `None` when unset.
    pub loginuid: Option<u32>,
}

impl CallerInfo {
    /// Reads what `/proc` says about `caller`.
    pub fn read(caller: &Caller) -> Self {
        let proc_dir = caller.pid.map(|pid| PathBuf::from(format!("/proc/{pid}")));
        let exe = proc_dir
            .as_ref()
            .and_then(|d| std::fs::read_link(d.join("exe")).ok())
            .map(|p| p.display().to_string());
        let loginuid = proc_dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("loginuid")).ok())
            .and_then(|t| t.trim().parse::<u32>().ok())
            .filter(|&uid| uid != u32::MAX);
        CallerInfo { uid: caller.uid, gid: caller.gid, pid: caller.pid, exe, loginuid }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_a_readable_caller() {
        let me = CallerInfo::read(&Caller { uid: 0, gid: 0, pid: Some(std::process::id() as i32) });
        assert!(me.exe.is_some_and(|e| !e.is_empty()));
    }
}
