//! Anchoring the log's head hash outside the log. Root can rewrite a whole
//! chain, and a cut tail leaves no trace inside it; a head hash that already
//! left — to syslog/journald, to a file shipped off the host — pins what
//! existed at that moment.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use tracing::debug;

/// syslog facility `authpriv` (10) at severity `info` (6).
const PRIORITY: u32 = 10 * 8 + 6;

/// Where anchors go.
pub struct Anchors {
    file: PathBuf,
    syslog: Option<PathBuf>,
}

/// One anchor, as the anchor file and syslog get it.
#[derive(serde::Serialize)]
struct AnchorLine<'a> {
    time: &'a str,
    reason: &'a str,
    file: &'a str,
    seq: u64,
    hash: &'a str,
}

impl Anchors {
    /// Anchors to `file`, and to the syslog socket `syslog` when there is one.
    pub fn new(file: PathBuf, syslog: Option<PathBuf>) -> Self {
        Anchors { file, syslog }
    }

    /// Records that `seq` with `hash` (in log file `name`) is the head now.
    pub fn write(&self, reason: &str, name: &str, seq: u64, hash: &str) -> std::io::Result<()> {
        let time = super::clock::now_rfc3339();
        let line = serde_json::to_string(&AnchorLine { time: &time, reason, file: name, seq, hash })
            .map_err(std::io::Error::other)?;
        let mut file = OpenOptions::new().append(true).create(true).mode(0o600).open(&self.file)?;
        file.write_all(format!("{line}\n").as_bytes())?;
        file.sync_data()?;
        if let Some(syslog) = &self.syslog {
            let message = format!("<{PRIORITY}>execgate[{}]: audit anchor {line}", std::process::id());
            // Without a syslog daemon the file anchor stands alone (said once at start).
            let sent = UnixDatagram::unbound().and_then(|socket| socket.send_to(message.as_bytes(), syslog));
            if let Err(err) = sent {
                debug!(error = %err, "no syslog at /dev/log for the audit anchor");
            }
        }
        Ok(())
    }
}

/// One anchor line, as `verify` reads it back.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Anchor {
    /// Sequence number of the head record.
    pub seq: u64,
    /// Its hash (hex).
    pub hash: String,
    /// The log file it was in.
    pub file: String,
}

/// Reads an anchor file (lines that are not anchors are reported).
pub fn read(path: &std::path::Path) -> std::io::Result<Vec<Result<Anchor, String>>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Anchor>(l).map_err(|e| format!("unreadable anchor {l:?}: {e}")))
        .collect())
}
