//! Busy polling: the kernel polls the device from the receiving thread's syscalls instead of
//! waiting for an interrupt (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`, `SO_BUSY_POLL_BUDGET`); the
//! receive loop then drives NAPI with `recvfrom(MSG_DONTWAIT)` instead of sleeping in `poll`.
//!
//! The kernel busy-polls the NAPI instance whose id the socket carries. Since Linux 6.13
//! ("net: napi: Add napi_config" moved NAPI id assignment after the XDP receive queue is
//! registered; "xsk: Bring back busy polling support" resolves the id at bind time) an AF_XDP
//! socket gets a NAPI id only when it is bound in *zero-copy* mode. A copy-mode socket (veth,
//! drivers without AF_XDP zero-copy) has none, and every `recvfrom` would be a plain no-op
//! system call: [`check_busy_poll`] refuses that instead of pretending.

use std::os::fd::OwnedFd;

use crate::sys::{self, xdp as x};
use crate::{Error, Result};

/// After bind: the socket's NAPI id (`SO_INCOMING_NAPI_ID`) must be set for busy polling to
/// reach the device.
///
/// # Errors
/// [`Error::Unsupported`] when the socket has no NAPI id (copy mode).
pub(super) fn check_busy_poll(fd: &OwnedFd) -> Result<()> {
    let id: libc::c_int = sys::getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_INCOMING_NAPI_ID,
        "getsockopt(SO_INCOMING_NAPI_ID)",
    )?;
    if id == 0 {
        return Err(Error::Unsupported {
            backend: "xdp",
            why: "busy polling needs the socket's NAPI id, and the kernel gives one only to \
                  zero-copy AF_XDP sockets (Linux 6.13 and later); this one is in copy mode"
                .into(),
            fix: "busy-poll on a NIC with AF_XDP zero-copy, or drop --busy-poll",
        });
    }
    Ok(())
}

/// `SO_PREFER_BUSY_POLL = 1`, `SO_BUSY_POLL = usecs`, `SO_BUSY_POLL_BUDGET = budget`.
pub(super) fn busy_poll(fd: &OwnedFd, usecs: u32, budget: u32) -> Result<()> {
    let one: libc::c_int = 1;
    let admin = |e: Error| match e {
        Error::NotPermitted { call, .. } => Error::NotPermitted {
            call,
            needs: "CAP_NET_ADMIN (to busy-poll longer than net.core.busy_read allows)",
        },
        e => e,
    };
    sys::setsockopt(
        fd,
        libc::SOL_SOCKET,
        x::SO_PREFER_BUSY_POLL,
        &one,
        "setsockopt(SO_PREFER_BUSY_POLL)",
    )
    .map_err(admin)?;
    let us = usecs.min(i32::MAX as u32) as libc::c_int;
    sys::setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_BUSY_POLL,
        &us,
        "setsockopt(SO_BUSY_POLL)",
    )
    .map_err(admin)?;
    let b = budget as libc::c_int;
    sys::setsockopt(
        fd,
        libc::SOL_SOCKET,
        x::SO_BUSY_POLL_BUDGET,
        &b,
        "setsockopt(SO_BUSY_POLL_BUDGET)",
    )
    .map_err(admin)
}
