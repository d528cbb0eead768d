//! Opening a capture file safely: what [`PcapWriter::create`](super::PcapWriter::create) does
//! before the first byte is written.
//!
//! - New files get mode `0600` (owner read/write; the umask can only take bits away), as
//!   dumpcap's: a capture holds whatever crossed the wire, passwords included. An existing
//!   file keeps its mode and owner.
//! - The final path component is opened with `O_NOFOLLOW`. If it is a symbolic link, it is
//!   followed only when that is safe, the rule of Linux's `fs.protected_symlinks` widened to
//!   group-writable directories: the directory holding it is writable by no one but its owner,
//!   or the link belongs to the caller (effective uid) or to the directory's owner. So a link
//!   another user planted in `/tmp` (or a shared group directory) cannot make a capture run as
//!   root truncate `/etc/shadow`, while `-w /dev/stdout` still works. (A directory whose other
//!   writers can swap the link between the check and the open is theirs to race anyway: they
//!   could replace the file itself.)

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::{sys, Error, Result};

/// The mode of a new capture file (before the umask).
pub(super) const NEW_FILE_MODE: u32 = 0o600;

/// Opens `path` for writing, created with [`NEW_FILE_MODE`] or truncated, following a symbolic
/// link only as the module docs say.
///
/// # Errors
/// [`Error::OutputIsForeignSymlink`] for a link that is not followed; [`Error::CreateOutput`]
/// if the file cannot be opened.
pub(super) fn open_output(path: &Path) -> Result<File> {
    let label = || path.display().to_string();
    let open = |nofollow: bool| {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(NEW_FILE_MODE)
            .custom_flags(if nofollow { libc::O_NOFOLLOW } else { 0 })
            .open(path)
    };
    let source = match open(true) {
        Ok(f) => return Ok(f),
        Err(e) => e,
    };
    // A symbolic link: ELOOP (O_NOFOLLOW), or EACCES where the kernel refuses a link in a
    // sticky directory by itself.
    let is_link = matches!(source.raw_os_error(), Some(libc::ELOOP | libc::EACCES))
        && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return Err(Error::CreateOutput {
            path: label(),
            source,
        });
    }
    if !link_is_trusted(path).map_err(|source| Error::CreateOutput {
        path: label(),
        source,
    })? {
        return Err(Error::OutputIsForeignSymlink { path: label() });
    }
    open(false).map_err(|source| Error::CreateOutput {
        path: label(),
        source,
    })
}

/// Whether the symbolic link at `path` may be followed (see the module docs).
fn link_is_trusted(path: &Path) -> io::Result<bool> {
    let link = std::fs::symlink_metadata(path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::metadata(dir)?;
    let shared = dir.mode() & 0o022 != 0;
    Ok(!shared || link.uid() == sys::euid() || link.uid() == dir.uid())
}

#[cfg(test)]
mod test {
    use super::*;
    use fastpath_testutil::{is_root, require, TempDir};
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn new_files_are_private_and_existing_ones_keep_their_mode() {
        let dir = TempDir::new("fastpath-open");
        let new = dir.path().join("new.pcap");
        drop(open_output(&new).unwrap());
        let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !NEW_FILE_MODE, 0, "at most 0600: {mode:o}");
        let old = dir.path().join("old.pcap");
        std::fs::write(&old, b"previous capture").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o640)).unwrap();
        drop(open_output(&old).unwrap());
        let meta = std::fs::metadata(&old).unwrap();
        assert_eq!(meta.len(), 0, "truncated");
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    }

    #[test]
    fn own_links_and_links_in_private_directories_are_followed() {
        let dir = TempDir::new("fastpath-open");
        let target = dir.path().join("target.pcap");
        let link = dir.path().join("link.pcap");
        symlink(&target, &link).unwrap();
        // Our own link: followed, even in a directory others can write to.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        drop(open_output(&link).unwrap());
        assert!(target.exists());
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_link_planted_by_another_user_in_a_shared_directory_is_refused() {
        require!(is_root(), "needs root to give a link to another user");
        let dir = TempDir::new("fastpath-open");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = dir.path().join("out.pcap");
        symlink(&victim, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        let err = open_output(&link).unwrap_err();
        assert!(matches!(err, Error::OutputIsForeignSymlink { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // The same link in a directory only its owner can write to is followed.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(open_output(&link).unwrap());
        assert_eq!(std::fs::read(&victim).unwrap(), b"");
    }
}
