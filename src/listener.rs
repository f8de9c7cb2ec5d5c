//! The socket clients connect to: created with its final mode already in force,
//! never stealing a live socket, and removed again on shutdown.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tokio::net::{UnixListener, UnixStream};
use tracing::{info, warn};

/// A bound listening socket that knows which file on disk is its own.
pub struct Listener {
    inner: UnixListener,
    path: PathBuf,
    inode: (u64, u64),
}

impl Listener {
    /// Binds `path` with `mode` (and group `gid`) in force before anyone can connect.
    ///
    /// The socket is bound inside a fresh directory only root can enter, given its
    /// mode and group there, then renamed over `path`. A stale socket left by a dead
    /// process is replaced by that rename; a live one is an error.
    pub fn bind(path: &Path, mode: u32, gid: Option<u32>) -> Result<Self> {
        refuse_live_or_foreign(path)?;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let file_name = path.file_name().context("listen path has no file name")?;
        let staging = parent.join(format!(".{}.{}.tmp", file_name.to_string_lossy(), std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .with_context(|| format!("failed to create staging directory {}", staging.display()))?;
        let result = bind_staged(&staging.join(file_name), path, mode, gid);
        if let Err(err) = std::fs::remove_dir(&staging) {
            warn!(dir = %staging.display(), error = %err, "could not remove staging directory");
        }
        result
    }

    /// Accepts the next connection. An error here is the listener's (EMFILE,
    /// ENFILE, ENOMEM…), not one client's: the caller should pause.
    pub async fn accept(&self) -> io::Result<UnixStream> {
        let (stream, _) = self.inner.accept().await?;
        Ok(stream)
    }

    /// Removes the socket file, if it is still the one this listener created.
    pub fn remove(&self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.inode => {
                if let Err(err) = std::fs::remove_file(&self.path) {
                    warn!(path = %self.path.display(), error = %err, "could not remove socket");
                }
            }
            _ => {
                info!(path = %self.path.display(), "socket file was replaced by someone else; left in place")
            }
        }
    }
}

fn bind_staged(staged: &Path, path: &Path, mode: u32, gid: Option<u32>) -> Result<Listener> {
    let inner = UnixListener::bind(staged).with_context(|| format!("failed to bind {}", staged.display()))?;
    std::fs::set_permissions(staged, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to set mode {mode:04o} on {}", staged.display()))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(staged, None, Some(gid))
            .with_context(|| format!("failed to give {} to group {gid}", staged.display()))?;
    }
    std::fs::rename(staged, path)
        .with_context(|| format!("failed to move the socket into place at {}", path.display()))?;
    let meta =
        std::fs::symlink_metadata(path).with_context(|| format!("failed to stat {}", path.display()))?;
    Ok(Listener { inner, path: path.to_owned(), inode: (meta.dev(), meta.ino()) })
}

/// Errors unless `path` is absent or a socket nobody answers on.
fn refuse_live_or_foreign(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(err).with_context(|| format!("failed to inspect {}", path.display()));
        }
    };
    if !meta.file_type().is_socket() {
        bail!("{} exists and is not a socket; remove it or choose another --listen path", path.display());
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => bail!(
            "{} is in use by a running process; stop it or choose another --listen path",
            path.display()
        ),
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
            info!(path = %path.display(), "replacing stale socket");
            Ok(())
        }
        Err(err) => Err(err).with_context(|| format!("failed to probe existing socket {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_with_mode_and_replaces_only_stale_sockets() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("gate.sock");

        // A stale socket: bound, then its listener dropped (nobody accepts).
        drop(std::os::unix::net::UnixListener::bind(&path).expect("stale bind"));
        let listener = Listener::bind(&path, 0o640, None).expect("replaces stale socket");
        let meta = std::fs::metadata(&path).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);

        // Live: the listener above answers, so a second bind must fail.
        let err = Listener::bind(&path, 0o640, None).err().expect("live socket refused");
        assert!(err.to_string().contains("in use"), "{err:#}");

        listener.remove();
        assert!(!path.exists());

        // A regular file is never deleted.
        std::fs::write(&path, b"data").expect("write");
        let err = Listener::bind(&path, 0o660, None).err().expect("regular file refused");
        assert!(err.to_string().contains("not a socket"), "{err:#}");
        assert_eq!(std::fs::read(&path).expect("still there"), b"data");
    }
}
