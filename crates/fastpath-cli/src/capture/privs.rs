//! `-Z USER`: once the capture sockets are open (they keep working), become USER, with its
//! groups, so that nothing after that (files, `-z` commands) runs as root.

use std::ffi::CString;
use std::os::fd::AsRawFd;

use anyhow::{bail, Context, Result};

/// A user from the password database.
#[derive(Debug)]
pub(super) struct User {
    name: CString,
    uid: libc::uid_t,
    gid: libc::gid_t,
}

/// Looks `name` up (`getpwnam_r`); a usage error if there is no such user.
pub(super) fn lookup(name: &str) -> Result<User> {
    let usage = |why: String| -> anyhow::Error {
        fastpath::Error::InvalidConfig {
            field: "user (-Z)",
            why,
        }
        .into()
    };
    let cname = CString::new(name).map_err(|_| usage(format!("`{name}` holds a NUL")))?;
    // SAFETY: passwd is a C struct of integers and pointers; all-zero is a valid value.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0u8; 16 << 10];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: `cname` NUL-terminated, `pw` and `out`
    // writable, `buf` of `buf.len()` bytes for the strings `pw` will point into.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut out,
        )
    };
    if rc != 0 || out.is_null() {
        return Err(usage(format!(
            "no such user `{name}` (give a user from /etc/passwd, e.g. nobody)"
        )));
    }
    Ok(User {
        name: cname,
        uid: pw.pw_uid,
        gid: pw.pw_gid,
    })
}

/// Gives `file` (the capture file created so far) to `user`, then becomes `user`: groups,
/// gid, uid, in that order, so that nothing of root is kept. Does nothing unless running as
/// root (as tcpdump).
pub(super) fn become_user(user: &User, file: Option<&std::fs::File>) -> Result<()> {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    if let Some(f) = file {
        // SAFETY: fchown on an open descriptor we own; no memory is passed.
        if unsafe { libc::fchown(f.as_raw_fd(), user.uid, user.gid) } != 0 {
            return Err(std::io::Error::last_os_error())
                .context("-Z: giving the capture file to the user");
        }
    }
    // SAFETY: `user.name` is NUL-terminated and lives for the call.
    if unsafe { libc::initgroups(user.name.as_ptr(), user.gid) } != 0 {
        return Err(std::io::Error::last_os_error()).context("-Z: initgroups");
    }
    // SAFETY: plain syscalls with integer arguments (glibc applies them to every thread).
    if unsafe { libc::setgid(user.gid) } != 0 {
        return Err(std::io::Error::last_os_error()).context("-Z: setgid");
    }
    // SAFETY: as above.
    if unsafe { libc::setuid(user.uid) } != 0 {
        return Err(std::io::Error::last_os_error()).context("-Z: setuid");
    }
    // SAFETY: as above; getting root back must now fail.
    if user.uid != 0 && unsafe { libc::setuid(0) } == 0 {
        bail!("-Z: root privileges could be regained after setuid");
    }
    Ok(())
}
