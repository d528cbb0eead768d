//! Busy polling: the kernel polls the device from the receiving thread's syscalls instead of
//! waiting for an interrupt (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`, `SO_BUSY_POLL_BUDGET`).

use std::os::fd::OwnedFd;

use crate::sys::{self, xdp as x};
use crate::{Error, Result};

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
