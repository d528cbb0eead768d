//! Processes: who we are, whether another one exists, signalling children, finding executables.

use std::env;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::sys;

/// True if the effective user id is 0.
pub fn is_root() -> bool {
    sys::geteuid() == 0
}

/// The effective user id.
pub fn euid() -> u32 {
    sys::geteuid()
}

/// `kill(pid, 0)`—true unless the kernel says the process does not exist (a process we may
/// not signal still counts as alive).
pub fn alive(pid: i32) -> bool {
    match sys::kill(pid, 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() != Some(libc::ESRCH),
    }
}

/// `kill(pid, sig)`—Sends `sig` to process `pid` (a child of ours). Errors (the child is gone
/// already) are ignored, and so is a `pid` of 0 or below: this never signals a process group
/// or every process by accident.
pub fn signal(pid: i32, sig: i32) {
    if pid <= 0 {
        return;
    }
    let _ = sys::kill(pid, sig);
}

/// The calling thread's id (for [`interrupt`]).
pub fn thread_id() -> i32 {
    sys::gettid()
}

/// The signal [`interrupt`] sends: `SIGUSR2`, with a handler that does nothing.
pub const INTERRUPT_SIGNAL: i32 = libc::SIGUSR2;

/// Makes thread `tid` of this process return from a blocking system call with `EINTR` (a long
/// `BPF_PROG_TEST_RUN`, a `poll`), by sending it [`INTERRUPT_SIGNAL`] with a do-nothing handler
/// installed (once, process-wide) first. A signal that arrives before the call starts is lost:
/// callers repeat until the thread shows it stopped.
///
/// # Errors
/// The handler cannot be installed, or no such thread.
pub fn interrupt(tid: i32) -> std::io::Result<()> {
    static HANDLER: std::sync::OnceLock<std::io::Result<()>> = std::sync::OnceLock::new();
    if let Err(e) = HANDLER.get_or_init(|| sys::install_wake_handler(INTERRUPT_SIGNAL)) {
        return Err(std::io::Error::new(e.kind(), e.to_string()));
    }
    sys::tgkill(tid, INTERRUPT_SIGNAL)
}

/// Installs the do-nothing handler of [`INTERRUPT_SIGNAL`] now (a thread that will be
/// interrupted calls this before it blocks, so that a signal can never kill the process).
///
/// # Errors
/// As `sigaction(2)`.
pub fn prepare_interrupt() -> std::io::Result<()> {
    sys::install_wake_handler(INTERRUPT_SIGNAL)
}

/// Whether `p` is a regular file with an execute bit set.
pub fn is_executable(p: &Path) -> bool {
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable file named `name` in the `PATH` directories.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    env::var_os("PATH").and_then(|p| {
        env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| is_executable(c))
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn finds_sh_and_not_nonsense() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("fastpath-no-such-command-xyz").is_none());
        assert!(is_executable(Path::new("/bin/sh")));
        assert!(!is_executable(Path::new("/etc/passwd")));
    }

    #[test]
    fn we_are_alive() {
        assert!(alive(std::process::id() as i32));
    }
}
