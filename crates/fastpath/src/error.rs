//! The one error type of the library.
//!
//! Every variant names the problem and, where there is one, the fix. Display messages are lowercase
//! with no trailing period. The hot path never builds an [`Error`]: "no packet yet" is an empty
//! batch, not an error.

use std::io;

/// Result alias used throughout fastpath.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when opening or driving a receive handle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The interface name does not exist in the current network namespace.
    #[error("no such interface `{name}` (list interfaces with `ip link`)")]
    NoSuchInterface {
        /// The name that was asked for.
        name: String,
    },
    /// The interface exists but is administratively or operationally down.
    #[error("interface `{name}` is down (bring it up with `ip link set {name} up`)")]
    InterfaceDown {
        /// The interface name.
        name: String,
    },
    /// The calling process lacks a capability.
    #[error("{call}: operation not permitted: needs {needs} (run as root or grant it: `setcap cap_net_raw,cap_net_admin+ep <binary>`)")]
    NotPermitted {
        /// The syscall or operation that was refused.
        call: &'static str,
        /// The capability that would allow it, e.g. `CAP_NET_RAW`.
        needs: &'static str,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid {field}: {why}")]
    InvalidConfig {
        /// The option at fault, spelled as the user wrote it where possible (e.g. `snaplen`).
        field: &'static str,
        /// What is wrong and what would be accepted.
        why: String,
    },
    /// The backend cannot work here (kernel, build or interface lacks something).
    #[error("backend `{backend}` unsupported: {why} ({fix})")]
    Unsupported {
        /// The backend name (`recv`, `mmap`, `xdp`, `dpdk`).
        backend: &'static str,
        /// What is missing.
        why: String,
        /// What would make it work.
        fix: &'static str,
    },
    /// The kernel could not give us the memory we asked for.
    #[error("{what}: cannot allocate {asked} bytes ({why})")]
    OutOfMemory {
        /// What was being allocated (e.g. `PACKET_RX_RING`).
        what: &'static str,
        /// How many bytes were asked for.
        asked: u64,
        /// What limits it and how to lower the request.
        why: String,
    },
    /// The interface went away while it was in use.
    #[error("interface `{name}` disappeared while capturing")]
    InterfaceGone {
        /// The interface name.
        name: String,
    },
    /// A system call failed in a way not covered above.
    #[error("{call}: {source}")]
    Syscall {
        /// The call that failed, e.g. `setsockopt(PACKET_RX_RING)`.
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wrap the current `errno` as a [`Error::Syscall`] for `call`.
    pub(crate) fn last_os(call: &'static str) -> Self {
        Error::Syscall {
            call,
            source: io::Error::last_os_error(),
        }
    }

    /// Whether the error is the user's to fix by changing arguments (usage error, CLI exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::InvalidConfig { .. })
    }

    /// The raw OS error code, if the error came from a syscall.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Syscall { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
