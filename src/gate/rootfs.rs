//! Reading a file from a container's root filesystem the way the daemon does
//! when it resolves an exec's user: from the image layers plus the container's
//! writable layer (overlay2's `MergedDir`), never through its bind mounts, with
//! every symlink confined to that root.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

/// Larger files than this are refused rather than read.
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// Reads `relative` (e.g. `etc/passwd`) inside `root`. `Ok(None)` when it does
/// not exist, which the runtime treats as an empty file. The bytes are
/// returned as they are: the runtime never decodes them.
pub fn read(root: &Path, relative: &str) -> io::Result<Option<Vec<u8>>> {
    let dir = File::open(root)?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(&dir, relative, how) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
        Err(errno) => return Err(io::Error::from(errno)),
    };
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!("/{relative} is not a regular file")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(io::Error::other(format!("/{relative} is larger than {MAX_FILE} bytes")));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let temp = tempfile::tempdir().expect("temp dir");
        let base = temp.path();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::write(base.join("passwd"), "outside:x:0:0::/:/bin/sh\n").expect("outside file");
        std::fs::write(root.join("inside"), "inside:x:1000:1000::/:/bin/sh\n").expect("inside file");
        // An absolute link resolves against the container root, not the host's.
        std::os::unix::fs::symlink("/inside", root.join("etc/passwd")).expect("symlink");
        // A `..` escape is clamped at the root.
        std::os::unix::fs::symlink("../../../../passwd", root.join("etc/group")).expect("symlink");
        assert_eq!(
            read(&root, "etc/passwd").expect("read").as_deref(),
            Some(&b"inside:x:1000:1000::/:/bin/sh\n"[..])
        );
        assert_eq!(read(&root, "etc/group").expect("read"), None);
        assert_eq!(read(&root, "etc/missing").expect("read"), None);
    }
}
